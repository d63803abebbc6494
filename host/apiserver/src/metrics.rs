//! Prometheus metrics of the API server: requests by verb, resource and code, their latency,
//! and the watches open — named as kube-apiserver names them.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::request::Target;
use crate::state::Ctx;

/// What a request was, attached by the handler to its response for [`track`] to count.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestKind {
    verb: &'static str,
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    subresource: &'static str,
}

impl RequestKind {
    /// A request on `target` with `method`; `watch` when it asked for a watch.
    pub fn of(target: &Target, method: &Method, watch: bool) -> Self {
        let named = target.name.is_some();
        let subresource = target.subresource.as_deref().map_or("", |name| {
            target
                .info
                .subresources
                .iter()
                .find(|s| s.name == name)
                .map_or("", |s| s.name)
        });
        let verb = match *method {
            Method::GET if watch => "WATCH",
            Method::GET if matches!(subresource, "exec" | "proxy") => "CONNECT",
            Method::GET if named => "GET",
            Method::GET => "LIST",
            Method::POST if subresource == "exec" => "CONNECT",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::PATCH => "PATCH",
            Method::DELETE if named => "DELETE",
            Method::DELETE => "DELETECOLLECTION",
            _ => "OTHER",
        };
        RequestKind {
            verb,
            group: target.info.group,
            version: target.info.version,
            resource: target.info.plural,
            subresource,
        }
    }

    /// A request outside the resource paths (discovery, OpenAPI, health).
    fn non_resource(method: &Method) -> Self {
        let verb = match *method {
            Method::GET | Method::HEAD => "GET",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::PATCH => "PATCH",
            Method::DELETE => "DELETE",
            _ => "OTHER",
        };
        RequestKind {
            verb,
            group: "",
            version: "",
            resource: "",
            subresource: "",
        }
    }

    /// Long-running requests are counted but left out of the latency histogram.
    fn long_running(&self) -> bool {
        matches!(self.verb, "WATCH" | "CONNECT") || self.subresource == "log"
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    #[prometheus(flatten)]
    kind: RequestKind,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WatchLabels {
    group: &'static str,
    version: &'static str,
    resource: &'static str,
}

/// The API server's metric families.
#[derive(Clone)]
pub struct ApiMetrics {
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestKind, Histogram, fn() -> Histogram>,
    watchers: Family<WatchLabels, Gauge>,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        ApiMetrics {
            requests: Family::default(),
            // 1 ms .. ~16 s.
            latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 15))
            }),
            watchers: Family::default(),
        }
    }
}

impl ApiMetrics {
    /// Register every family in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "apiserver_request",
            "Requests by verb, group, version, resource, subresource and HTTP code",
            self.requests.clone(),
        );
        registry.register_with_unit(
            "apiserver_request_duration",
            "Latency of requests by verb, group, version, resource and subresource (watches and connections left out)",
            Unit::Seconds,
            self.latency.clone(),
        );
        registry.register(
            "apiserver_registered_watchers",
            "Watches open, by group, version and resource",
            self.watchers.clone(),
        );
    }

    /// Count one open watch on `target` until the guard is dropped.
    pub fn watching(&self, target: &Target) -> WatchGuard {
        let labels = WatchLabels {
            group: target.info.group,
            version: target.info.version,
            resource: target.info.plural,
        };
        let gauge = self.watchers.get_or_create_owned(&labels);
        gauge.inc();
        WatchGuard(gauge)
    }
}

/// Holds one count of `apiserver_registered_watchers`.
pub struct WatchGuard(Gauge);

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Middleware: count and time every request by the [`RequestKind`] its handler attached.
pub async fn track(State(ctx): State<Arc<Ctx>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let response = next.run(request).await;
    let kind = response
        .extensions()
        .get::<RequestKind>()
        .copied()
        .unwrap_or_else(|| RequestKind::non_resource(&method));
    let metrics = &ctx.metrics;
    metrics
        .requests
        .get_or_create(&RequestLabels {
            kind,
            code: response.status().as_u16(),
        })
        .inc();
    if !kind.long_running() {
        metrics
            .latency
            .get_or_create(&kind)
            .observe(started.elapsed().as_secs_f64());
    }
    response
}
