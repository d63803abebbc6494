//! The subresources the node answers, `pods/log`, `pods/exec` and `nodes/proxy`: the API
//! server resolves the pod's container and node, then hands the request to that node's agent
//! at the kubelet's paths (`/containerLogs/{ns}/{pod}/{container}`,
//! `/exec/{ns}/{pod}/{container}`; `nodes/{name}/proxy/{path}` is a GET of `{path}`, such as
//! `/stats/summary` or `/metrics`) — in process
//! through the agent's router when it is registered in [`NodeEndpoints`], otherwise over HTTP
//! at the node's InternalIP and `status.daemonEndpoints.kubeletEndpoint.Port`. A WebSocket
//! upgrade flows through to the agent: in process the request keeps hyper's upgrade handle, over
//! the network the two upgraded connections are spliced.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{Extensions, HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use bytes::Bytes;
use hortator_api::registry;
use hortator_api::validation::Cause;
use http_body_util::Empty;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tower::ServiceExt;

use crate::error::ApiError;
use crate::handlers;
use crate::request::{Query, Target};
use crate::state::Ctx;

/// The kubelet's port when a Node does not publish one.
const DEFAULT_AGENT_PORT: u16 = 10250;
/// How long connecting to an agent, and its answer's headers, may take.
const AGENT_TIMEOUT: Duration = Duration::from_secs(10);

/// The node agents reachable in process, by node name; cheap to clone.
#[derive(Clone, Default)]
pub struct NodeEndpoints {
    agents: Arc<RwLock<HashMap<String, Router>>>,
}

impl NodeEndpoints {
    /// Serve `node`'s logs and exec through `router` (the agent's router), in process.
    pub fn register(&self, node: &str, router: Router) {
        self.agents
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(node.to_string(), router);
    }

    /// Forget `node`'s in-process agent; its address (if any) is used again.
    pub fn unregister(&self, node: &str) {
        self.agents
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(node);
    }

    fn get(&self, node: &str) -> Option<Router> {
        self.agents
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(node)
            .cloned()
    }
}

/// Whether the node answers this request (`pods/log`, `pods/exec`, `nodes/proxy`).
pub fn serves(target: &Target) -> bool {
    let subresource = target.subresource.as_deref();
    target.name.is_some()
        && match target.info.storage().plural {
            "pods" => matches!(subresource, Some("log" | "exec")),
            "nodes" => subresource == Some("proxy"),
            _ => false,
        }
}

/// Answer `pods/log`, `pods/exec` or `nodes/proxy` by forwarding to the node.
pub async fn forward(ctx: &Ctx, target: &Target, request: Request) -> Result<Response, ApiError> {
    if target.subresource.as_deref() == Some("proxy") {
        return forward_node_proxy(ctx, target, request).await;
    }
    let exec = target.subresource.as_deref() == Some("exec");
    let method = request.method();
    if !(method == Method::GET || exec && method == Method::POST) {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method} {})",
            request.uri().path()
        )));
    }
    let query = Query::parse(request.uri().query());
    let name = target.name.as_deref().unwrap_or_default();
    if !exec {
        check_log_options(name, &query)?;
    }
    let (_, pod) = handlers::current(ctx, target)?;
    let container = container_of(&pod, name, query.get("container"))?;
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(format!("pod \"{name}\" does not have a host assigned"))
        })?;
    let upgrade = request.headers().contains_key(header::UPGRADE);
    if exec && !upgrade {
        return Err(ApiError::bad_request(
            "exec needs a WebSocket upgrade (Connection: Upgrade, Upgrade: websocket) with protocol v5.channel.k8s.io or v4.channel.k8s.io",
        ));
    }
    let namespace = target.namespace.as_deref().unwrap_or_default();
    let path = format!(
        "/{}/{namespace}/{name}/{container}",
        if exec { "exec" } else { "containerLogs" }
    );
    let uri = agent_uri(&path, request.uri().query())?;
    if let Some(agent) = ctx.nodes.get(node) {
        let (mut parts, body) = request.into_parts();
        parts.uri = uri;
        parts.extensions = connection_extensions(&mut parts.extensions);
        let response = agent.oneshot(Request::from_parts(parts, body)).await;
        return Ok(response.unwrap_or_else(|never| match never {}));
    }
    let address = node_address(ctx, node)?;
    if upgrade {
        proxy_upgrade(node, address, uri, request).await
    } else {
        proxy(node, address, uri, request.headers()).await
    }
}

/// `nodes/{name}/proxy/{path}`: a GET of `{path}` (query included) on the node's agent,
/// relayed.
async fn forward_node_proxy(
    ctx: &Ctx,
    target: &Target,
    request: Request,
) -> Result<Response, ApiError> {
    if request.method() != Method::GET {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({} {})",
            request.method(),
            request.uri().path()
        )));
    }
    let node = target.name.as_deref().unwrap_or_default();
    handlers::current(ctx, target)?;
    let uri = request.uri();
    let marker = format!("/{node}/proxy");
    let path = uri.path();
    let tail = path
        .find(&marker)
        .map_or("", |at| &path[at + marker.len()..]);
    let tail = if tail.is_empty() { "/" } else { tail };
    let uri = match uri.query() {
        Some(query) => format!("{tail}?{query}"),
        None => tail.to_string(),
    };
    let uri: Uri = uri
        .parse()
        .map_err(|e| ApiError::bad_request(format!("invalid request URI {uri:?}: {e}")))?;
    if let Some(agent) = ctx.nodes.get(node) {
        let (mut parts, body) = request.into_parts();
        parts.uri = uri;
        parts.extensions = Extensions::new();
        let response = agent.oneshot(Request::from_parts(parts, body)).await;
        return Ok(response.unwrap_or_else(|never| match never {}));
    }
    let address = node_address(ctx, node)?;
    proxy(node, address, uri, request.headers()).await
}

/// GET `path` from `node`'s agent (in process, or over HTTP at its address) and return the
/// body of a successful answer; `timeout` bounds the whole exchange.
pub(crate) async fn agent_get(
    ctx: &Ctx,
    node: &str,
    path: &str,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let uri: Uri = path.parse().map_err(ApiError::internal)?;
    let exchange = async {
        let response = if let Some(agent) = ctx.nodes.get(node) {
            let request = Request::get(uri)
                .body(Body::empty())
                .map_err(ApiError::internal)?;
            let response = agent
                .oneshot(request)
                .await
                .unwrap_or_else(|never| match never {});
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(ApiError::internal)?;
            (status, body.to_bytes())
        } else {
            let address = node_address(ctx, node)?;
            let mut sender = connect(node, address).await?;
            let request = agent_request(address, &Method::GET, uri, &HeaderMap::new(), false)?;
            let response = send(node, address, &mut sender, request).await?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| unreachable(node, address, e))?;
            (status, body.to_bytes())
        };
        match response {
            (status, body) if status.is_success() => Ok(body),
            (status, body) => Err(ApiError::with_code(
                503,
                format!(
                    "the agent of node \"{node}\" answered {status}: {}",
                    String::from_utf8_lossy(&body)
                ),
            )),
        }
    };
    tokio::time::timeout(timeout, exchange).await.map_err(|_| {
        ApiError::with_code(
            503,
            format!("the agent of node \"{node}\" did not answer in time"),
        )
    })?
}

/// What the agent's router needs of the request's extensions: hyper's upgrade handle (and the
/// HTTP/2 `:protocol`), so that a WebSocket upgrade reaches the agent's handler. The rest —
/// this router's path parameters above all — stays behind.
fn connection_extensions(extensions: &mut Extensions) -> Extensions {
    let mut kept = Extensions::new();
    if let Some(upgrade) = extensions.remove::<hyper::upgrade::OnUpgrade>() {
        kept.insert(upgrade);
    }
    if let Some(protocol) = extensions.remove::<hyper::ext::Protocol>() {
        kept.insert(protocol);
    }
    kept
}

/// The kube-apiserver's checks of `PodLogOptions`.
fn check_log_options(name: &str, query: &Query) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    let mut at_least = |field: &str, min: i64, detail: &str| -> Result<bool, ApiError> {
        let value = query.int(field)?;
        if let Some(v) = value.filter(|v| *v < min) {
            causes.push(Cause::invalid_raw(field, &v.to_string(), detail));
        }
        Ok(value.is_some())
    };
    at_least("tailLines", 0, "must be greater than or equal to 0")?;
    at_least("limitBytes", 1, "must be greater than 0")?;
    let since_seconds = at_least("sinceSeconds", 1, "must be greater than 0")?;
    if let Some(time) = query.get("sinceTime") {
        if time.parse::<jiff::Timestamp>().is_err() {
            return Err(ApiError::bad_request(format!(
                "invalid value for sinceTime: {time:?} (expected an RFC 3339 time)"
            )));
        }
        if since_seconds {
            causes.push(Cause::forbidden(
                "sinceSeconds",
                "at most one of `sinceTime` or `sinceSeconds` may be specified",
            ));
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("PodLogOptions", "", name, causes))
    }
}

/// The container a request is about: `?container=`, or the pod's only container.
fn container_of(pod: &Value, name: &str, requested: Option<&str>) -> Result<String, ApiError> {
    let names = |field: &str| -> Vec<&str> {
        pod.pointer(&format!("/spec/{field}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("name").and_then(Value::as_str))
            .collect()
    };
    let containers = names("containers");
    let all: Vec<&str> = names("initContainers")
        .into_iter()
        .chain(containers.iter().copied())
        .chain(names("ephemeralContainers"))
        .collect();
    match (requested, containers.as_slice()) {
        (Some(container), _) if all.contains(&container) => Ok(container.to_string()),
        (Some(container), _) => Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {name}"
        ))),
        (None, [only]) => Ok((*only).to_string()),
        (None, []) => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}"
        ))),
        (None, _) => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            all.join(" ")
        ))),
    }
}

/// `path` with the request's query parameters except `container`, which the path now names.
fn agent_uri(path: &str, query: Option<&str>) -> Result<Uri, ApiError> {
    let rest: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|pair| {
            let key = pair.split_once('=').map_or(*pair, |(k, _)| k);
            !pair.is_empty() && key != "container"
        })
        .collect();
    let uri = if rest.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", rest.join("&"))
    };
    uri.parse()
        .map_err(|e| ApiError::bad_request(format!("invalid request URI {uri:?}: {e}")))
}

/// Where `node`'s agent listens: its InternalIP (or ExternalIP) and kubelet port.
fn node_address(ctx: &Ctx, node: &str) -> Result<SocketAddr, ApiError> {
    let unavailable = |why: String| ApiError::with_code(503, why);
    let nodes =
        registry::find("", "v1", "nodes").ok_or_else(|| ApiError::internal("no nodes resource"))?;
    let kv = ctx
        .store
        .get(nodes.key(None, node).as_bytes())
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            unavailable(format!(
                "no agent is known for node \"{node}\": the node is not registered"
            ))
        })?;
    let object = crate::codec::decode(&kv).map_err(ApiError::internal)?;
    let addresses: Vec<(&str, &str)> = object
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| {
            Some((
                a.get("type").and_then(Value::as_str)?,
                a.get("address").and_then(Value::as_str)?,
            ))
        })
        .collect();
    let address = ["InternalIP", "ExternalIP"]
        .iter()
        .find_map(|wanted| addresses.iter().find(|(ty, _)| ty == wanted))
        .map(|(_, address)| *address)
        .ok_or_else(|| {
            unavailable(format!(
                "node \"{node}\" has no InternalIP or ExternalIP address to reach its agent at"
            ))
        })?;
    let ip: IpAddr = address.parse().map_err(|_| {
        unavailable(format!(
            "node \"{node}\" has an invalid address {address:?}"
        ))
    })?;
    let port = object
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .unwrap_or(DEFAULT_AGENT_PORT);
    Ok(SocketAddr::new(ip, port))
}

fn unreachable(node: &str, address: SocketAddr, why: impl std::fmt::Display) -> ApiError {
    ApiError::with_code(
        503,
        format!("the agent of node \"{node}\" at {address} is unreachable: {why}"),
    )
}

/// An HTTP/1 connection to `node`'s agent, driven in the background (upgrades allowed).
async fn connect(node: &str, address: SocketAddr) -> Result<SendRequest<Empty<Bytes>>, ApiError> {
    let stream = tokio::time::timeout(AGENT_TIMEOUT, tokio::net::TcpStream::connect(address))
        .await
        .map_err(|_| unreachable(node, address, "connection timed out"))?
        .map_err(|e| unreachable(node, address, e))?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| unreachable(node, address, e))?;
    let node = node.to_string();
    tokio::spawn(async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!(%node, error = %e, "agent connection ended");
        }
    });
    Ok(sender)
}

/// Hop-by-hop headers, which a proxy does not pass on.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The request for the agent: `uri`, the client's end-to-end headers (plus the upgrade ones
/// when `upgrade`), no credentials.
fn agent_request(
    address: SocketAddr,
    method: &Method,
    uri: Uri,
    headers: &HeaderMap,
    upgrade: bool,
) -> Result<hyper::Request<Empty<Bytes>>, ApiError> {
    let mut request = hyper::Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        let skip = name == header::HOST
            || name == header::AUTHORIZATION
            || !upgrade && HOP_BY_HOP.contains(&name.as_str());
        if !skip {
            request = request.header(name, value);
        }
    }
    request
        .header(header::HOST, address.to_string())
        .body(Empty::new())
        .map_err(ApiError::internal)
}

async fn send(
    node: &str,
    address: SocketAddr,
    sender: &mut SendRequest<Empty<Bytes>>,
    request: hyper::Request<Empty<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, ApiError> {
    tokio::time::timeout(AGENT_TIMEOUT, sender.send_request(request))
        .await
        .map_err(|_| unreachable(node, address, "no answer in time"))?
        .map_err(|e| unreachable(node, address, e))
}

/// The agent's answer, streamed to the client without its hop-by-hop headers.
fn relay(response: hyper::Response<hyper::body::Incoming>) -> Response {
    let mut response = response.map(Body::new);
    for name in HOP_BY_HOP {
        response.headers_mut().remove(*name);
    }
    response
}

/// A plain request (logs): the agent's answer is streamed back as it comes.
async fn proxy(
    node: &str,
    address: SocketAddr,
    uri: Uri,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let mut sender = connect(node, address).await?;
    let request = agent_request(address, &Method::GET, uri, headers, false)?;
    Ok(relay(send(node, address, &mut sender, request).await?))
}

/// An upgrade request (exec): once the agent switches protocols, the client's and the
/// agent's connections are spliced; any other answer is relayed as is.
async fn proxy_upgrade(
    node: &str,
    address: SocketAddr,
    uri: Uri,
    mut incoming: Request,
) -> Result<Response, ApiError> {
    let mut sender = connect(node, address).await?;
    let request = agent_request(address, incoming.method(), uri, incoming.headers(), true)?;
    let mut response = send(node, address, &mut sender, request).await?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(relay(response));
    }
    let client = hyper::upgrade::on(&mut incoming);
    let agent = hyper::upgrade::on(&mut response);
    let node = node.to_string();
    tokio::spawn(async move {
        match tokio::try_join!(client, agent) {
            Ok((client, agent)) => {
                let (mut client, mut agent) = (TokioIo::new(client), TokioIo::new(agent));
                if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut agent).await {
                    tracing::debug!(%node, error = %e, "exec stream ended");
                }
            }
            Err(e) => tracing::warn!(%node, error = %e, "upgrading the exec stream failed"),
        }
    });
    let mut switching = Response::new(Body::empty());
    *switching.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    *switching.headers_mut() = response.headers().clone();
    Ok(switching)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn container_is_named_or_the_only_one() {
        let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}], "initContainers": [{"name": "init"}]}});
        assert_eq!(container_of(&pod, "x", Some("b")).unwrap(), "b");
        assert_eq!(container_of(&pod, "x", Some("init")).unwrap(), "init");
        assert_eq!(
            container_of(&pod, "x", None).unwrap_err().message,
            "a container name must be specified for pod x, choose one of: [init a b]"
        );
        assert_eq!(
            container_of(&pod, "x", Some("y")).unwrap_err().message,
            "container y is not valid for pod x"
        );
        let single = json!({"spec": {"containers": [{"name": "only"}]}});
        assert_eq!(container_of(&single, "x", None).unwrap(), "only");
    }

    #[test]
    fn the_container_parameter_moves_into_the_path() {
        let uri = agent_uri(
            "/exec/ns/p/c",
            Some("command=echo&container=c&command=a%20b&stdout=true"),
        )
        .unwrap();
        assert_eq!(uri, "/exec/ns/p/c?command=echo&command=a%20b&stdout=true");
        assert_eq!(
            agent_uri("/containerLogs/ns/p/c", Some("container=c")).unwrap(),
            "/containerLogs/ns/p/c"
        );
    }
}
