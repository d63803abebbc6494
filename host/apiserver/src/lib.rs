//! The Hortator API server: the Kubernetes REST API over axum, backed by a [`Store`].
//!
//! Build it with [`ApiServer::start`] and serve [`ApiServer::router`] over TCP, or hand the
//! router to `kube::Client::new` to talk to it in process.

mod admission;
mod alloc;
mod codec;
mod discovery;
mod error;
mod handlers;
mod metrics;
mod metrics_api;
mod nodes;
mod objects;
mod plugins;
mod request;
mod state;
mod watch;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use hortator_plugin_runtime::PluginManager;
use hortator_store::Store;

pub use error::ApiError;
pub use nodes::NodeEndpoints;
pub use plugins::{StoreReader, record_plugin_events};
pub use state::{ApiServerConfig, SYSTEM_NAMESPACES, StartError};

use handlers::Output;
use request::{Query, Route};
use state::Ctx;

/// A running API server's state; cheap to clone.
#[derive(Clone)]
pub struct ApiServer {
    ctx: Arc<Ctx>,
    shutdown: Arc<tokio::sync::watch::Sender<bool>>,
}

impl ApiServer {
    /// Prepare the server over `store`: rebuild allocations, create the system namespaces and
    /// start compacting the store's history every `config.compaction_interval`.
    pub async fn start(store: Arc<dyn Store>, config: ApiServerConfig) -> Result<Self, StartError> {
        Self::start_with_plugins(store, config, None).await
    }

    /// Like [`ApiServer::start`], with an admission chain and `hortctl plugin`
    /// management served from `plugins` (see [`record_plugin_events`]).
    pub async fn start_with_plugins(
        store: Arc<dyn Store>,
        config: ApiServerConfig,
        plugins: Option<Arc<PluginManager>>,
    ) -> Result<Self, StartError> {
        let (shutdown, stopped) = tokio::sync::watch::channel(false);
        let ctx = Ctx::start(store, config, stopped, plugins).await?;
        tokio::spawn(compact(ctx.clone()));
        Ok(ApiServer {
            ctx,
            shutdown: Arc::new(shutdown),
        })
    }

    /// The directory of node agents reached in process for `pods/log` and `pods/exec`.
    pub fn node_endpoints(&self) -> NodeEndpoints {
        self.ctx.nodes.clone()
    }

    /// Register the API server's metric families (requests, latency, watches) in `registry`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.ctx.metrics.register(registry);
    }

    /// Begin shutting down: open watches end so that in-flight requests can drain.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// The HTTP routes of the Kubernetes API.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/version", get(|| async { discovery::version() }))
            .route("/healthz", get(health))
            .route("/livez", get(health))
            .route("/readyz", get(health))
            .route("/api", get(api_root))
            .route("/apis", get(|headers: HeaderMap| async move { discovery::apis_root(&headers) }))
            .route("/api/{*rest}", any(resource_api))
            .route("/apis/{*rest}", any(resource_api))
            .route("/hortator/v1/plugins", get(plugins::list))
            .route(
                "/hortator/v1/plugins/{*point}",
                axum::routing::put(plugins::swap).layer(axum::extract::DefaultBodyLimit::max(plugins::MAX_COMPONENT_BYTES)),
            )
            .route("/openapi/v2", get(|headers: HeaderMap| async move { discovery::openapi_v2(&headers) }))
            .route("/openapi/v3", get(|| async { discovery::openapi_v3_index() }))
            .route("/openapi/v3/{*path}", get(openapi_v3))
            .fallback(|| async { ApiError::no_route() })
            .layer(axum::middleware::from_fn_with_state(self.ctx.clone(), metrics::track))
            .layer(
                tower_http::trace::TraceLayer::new_for_http()
                    .make_span_with(|req: &axum::http::Request<_>| {
                        tracing::info_span!("request", method = %req.method(), uri = %req.uri())
                    }),
            )
            .with_state(self.ctx.clone())
    }
}

/// Keep one compaction interval of history, as kube-apiserver does with etcd: every interval,
/// compact to the revision seen at the previous tick.
async fn compact(ctx: Arc<Ctx>) {
    let mut stopped = ctx.shutdown.clone();
    let mut ticker = tokio::time::interval(ctx.config.compaction_interval);
    ticker.tick().await;
    let mut previous = ctx.store.current_revision();
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stopped.changed() => return,
        }
        if previous > ctx.store.compacted_revision() {
            match ctx.store.compact(previous).await {
                Ok(()) => tracing::debug!(revision = previous, "compacted store history"),
                Err(e) => tracing::warn!(error = %e, revision = previous, "compaction failed"),
            }
        }
        previous = ctx.store.current_revision();
    }
}

async fn health() -> &'static str {
    "ok"
}

async fn api_root(State(ctx): State<Arc<Ctx>>, headers: HeaderMap) -> Response {
    discovery::api_root(&headers, &ctx.config.advertise_address)
}

async fn openapi_v3(Path(path): Path<String>) -> Response {
    discovery::openapi_v3_document(&path).into_response()
}

/// Everything under `/api` (core group) and `/apis` (named groups).
async fn resource_api(State(ctx): State<Arc<Ctx>>, request: Request) -> Response {
    let uri = request.uri().clone();
    let full = uri.path();
    // metrics.k8s.io is not a stored resource: node agents answer it.
    if let Some(rest) = full.strip_prefix("/apis/metrics.k8s.io")
        && (rest.is_empty() || rest.starts_with('/'))
    {
        return metrics_api::serve(&ctx, rest, request.method(), &uri)
            .await
            .unwrap_or_else(IntoResponse::into_response);
    }
    let (core, path) = match full.strip_prefix("/apis") {
        Some(rest) => (false, rest),
        None => (true, full.strip_prefix("/api").unwrap_or(full)),
    };
    let route = match request::parse(core, path) {
        Ok(route) => route,
        Err(e) => return e.into_response(),
    };
    // Logs and exec stream from the node; the request goes on whole (upgrade included).
    if let Route::Resource(target) = &route
        && nodes::serves(target)
    {
        let kind = metrics::RequestKind::of(target, request.method(), false);
        let mut response = nodes::forward(&ctx, target, request)
            .await
            .unwrap_or_else(IntoResponse::into_response);
        response.extensions_mut().insert(kind);
        return response;
    }
    let method = request.method().clone();
    let headers = request.headers().clone();
    let body = match Bytes::from_request(request, &ctx).await {
        Ok(body) => body,
        Err(rejection) => return rejection.into_response(),
    };
    dispatch(ctx, route, method, &uri, headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn dispatch(
    ctx: Arc<Ctx>,
    route: Route,
    method: Method,
    uri: &Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let target = match route {
        Route::Root { core: true } => {
            return Ok(discovery::api_root(&headers, &ctx.config.advertise_address));
        }
        Route::Root { core: false } => return Ok(discovery::apis_root(&headers)),
        Route::Group(group) => return discovery::group(&group),
        Route::GroupVersion { group, version } => {
            return Ok(discovery::group_version(&group, &version));
        }
        Route::Resource(target) => target,
    };
    let user_agent = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let query = Query::parse(uri.query()).with_user_agent(user_agent);
    let output = Output::from_request(&headers, &query);
    let verb_allowed = |verb: &str| target.info.verbs.contains(&verb);
    let kind = metrics::RequestKind::of(&target, &method, query.flag("watch"));
    let sub = target.subresource.clone();
    let result = match (method, target.name.is_some(), sub.as_deref()) {
        (Method::GET, false, None) if query.flag("watch") && verb_allowed("watch") => {
            watch::watch(ctx, target, &query, output)
        }
        (Method::GET, false, None) if verb_allowed("list") => {
            handlers::list(&ctx, &target, &query, output)
        }
        (Method::GET, true, None | Some("status" | "scale")) if verb_allowed("get") => {
            handlers::get(&ctx, &target, output)
        }
        (Method::POST, false, None) if verb_allowed("create") => {
            handlers::create(&ctx, &target, &query, &headers, &body, output).await
        }
        (Method::POST, true, Some("binding")) => {
            handlers::bind(&ctx, &target, &query, &headers, &body).await
        }
        (Method::PUT, true, None | Some("status" | "scale" | "finalize"))
            if verb_allowed("update") =>
        {
            handlers::update(&ctx, &target, &query, &headers, &body, output).await
        }
        (Method::PATCH, true, None | Some("status" | "scale")) if verb_allowed("patch") => {
            handlers::patch(&ctx, &target, &query, &headers, &body, output).await
        }
        (Method::DELETE, true, None) if verb_allowed("delete") => {
            handlers::delete(&ctx, &target, &query, &body, output).await
        }
        (Method::DELETE, false, None) if verb_allowed("deletecollection") => {
            handlers::delete_collection(&ctx, &target, &query, &body).await
        }
        (method, _, _) => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method} {})",
            uri.path()
        ))),
    };
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    response.extensions_mut().insert(kind);
    Ok(response)
}
