//! The resource metrics API, `metrics.k8s.io/v1beta1` (what `kubectl top` reads): NodeMetrics
//! (`nodes`) and PodMetrics (`pods`, namespaced), get and list with label and field selectors.
//!
//! Where Kubernetes runs metrics-server behind the aggregation layer, the API server here asks
//! each node's agent for its kubelet Summary (`/stats/summary`) when a request comes: in
//! process through [`crate::NodeEndpoints`], otherwise over HTTP at the node's address. CPU
//! usage is the agent's rate over its last two samples and `window` is their span; memory is
//! the working set. Nodes or pods an agent does not report (unreachable agent, containers not
//! sampled twice yet) are left out, as metrics-server leaves them out. Simulated nodes
//! (labelled with `hortator_sim::SIM_LABEL`) have no agent and no containers: they are never
//! contacted and never have metrics (`kubectl top nodes` prints `<unknown>` for them).

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hortator_api::registry;
use hortator_api::selector::{FieldSelector, LabelSelector};
use hortator_monitor::{CpuStats, MemoryStats, Summary};
use hortator_store::RangeRequest;
use serde_json::{Value, json};

use crate::error::{ApiError, Subject};
use crate::request::Query;
use crate::state::Ctx;

/// The group served here.
pub const GROUP: &str = "metrics.k8s.io";
const VERSION: &str = "v1beta1";
const GROUP_VERSION: &str = "metrics.k8s.io/v1beta1";
/// How long an agent has to answer with its summary.
const AGENT_TIMEOUT: Duration = Duration::from_secs(5);

/// `/apis` lists the group (legacy discovery).
pub fn api_group() -> Value {
    let version = json!({"groupVersion": GROUP_VERSION, "version": VERSION});
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": GROUP,
        "versions": [version],
        "preferredVersion": version,
    })
}

/// The group in aggregated discovery (apidiscovery.k8s.io/v2 and v2beta1 alike).
pub fn aggregated_group() -> Value {
    let resource = |plural: &str, kind: &str, scope: &str| {
        json!({
            "resource": plural,
            "responseKind": {"group": GROUP, "version": VERSION, "kind": kind},
            "scope": scope,
            "singularResource": "",
            "verbs": ["get", "list"],
        })
    };
    json!({
        "metadata": {"name": GROUP, "creationTimestamp": null},
        "versions": [{
            "version": VERSION,
            "resources": [
                resource("nodes", "NodeMetrics", "Cluster"),
                resource("pods", "PodMetrics", "Namespaced"),
            ],
            "freshness": "Current",
        }],
    })
}

fn resource_list() -> Value {
    let resource = |plural: &str, kind: &str, namespaced: bool| json!({"name": plural, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": ["get", "list"]});
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": GROUP_VERSION,
        "resources": [
            resource("nodes", "NodeMetrics", false),
            resource("pods", "PodMetrics", true),
        ],
    })
}

fn json_response(body: &Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Answer a request under `/apis/metrics.k8s.io`; `rest` is the path after it.
pub async fn serve(
    ctx: &Ctx,
    rest: &str,
    method: &Method,
    uri: &Uri,
) -> Result<Response, ApiError> {
    if method != Method::GET {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({method} {})",
            uri.path()
        )));
    }
    let query = Query::parse(uri.query());
    if query.flag("watch") {
        return Err(ApiError::method_not_allowed(
            "the metrics API does not support watch",
        ));
    }
    let selector = Selectors {
        labels: match query.get("labelSelector") {
            Some(s) => LabelSelector::parse(s).map_err(|e| ApiError::bad_request(e.to_string()))?,
            None => LabelSelector::everything(),
        },
        fields: FieldSelector::parse(query.get("fieldSelector").unwrap_or_default())
            .map_err(|e| ApiError::bad_request(e.to_string()))?,
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let body = match segments.as_slice() {
        [] => api_group(),
        [VERSION] => resource_list(),
        [VERSION, "nodes"] => list("NodeMetricsList", node_metrics(ctx, None, &selector).await?),
        [VERSION, "nodes", name] => single(
            node_metrics(ctx, Some(name), &selector).await?,
            "nodemetrics",
            name,
        )?,
        [VERSION, "pods"] => list(
            "PodMetricsList",
            pod_metrics(ctx, None, None, &selector).await?,
        ),
        [VERSION, "namespaces", namespace, "pods"] => list(
            "PodMetricsList",
            pod_metrics(ctx, Some(namespace), None, &selector).await?,
        ),
        [VERSION, "namespaces", namespace, "pods", name] => single(
            pod_metrics(ctx, Some(namespace), Some(name), &selector).await?,
            "podmetrics",
            name,
        )?,
        _ => return Err(ApiError::no_route()),
    };
    Ok(json_response(&body))
}

/// The label and field selectors of a request, matched against the stored node or pod.
struct Selectors {
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Selectors {
    fn matches(&self, object: &Value) -> bool {
        self.labels.matches_json(labels(object)) && self.fields.matches_object(object)
    }
}

fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"kind": kind, "apiVersion": GROUP_VERSION, "metadata": {}, "items": items})
}

fn single(items: Vec<Value>, plural: &str, name: &str) -> Result<Value, ApiError> {
    items.into_iter().next().ok_or_else(|| {
        ApiError::not_found(Subject {
            group: GROUP,
            plural,
            name,
        })
    })
}

/// The stored objects of a core resource, optionally in one namespace.
fn stored(ctx: &Ctx, plural: &str, namespace: Option<&str>) -> Result<Vec<Value>, ApiError> {
    let info = registry::find("", "v1", plural)
        .ok_or_else(|| ApiError::internal(format!("no {plural} resource")))?;
    let mut prefix = info.key_prefix();
    if let Some(ns) = namespace {
        prefix.push_str(ns);
        prefix.push('/');
    }
    let range = ctx
        .store
        .range(RangeRequest {
            prefix: prefix.into_bytes(),
            ..RangeRequest::default()
        })
        .map_err(ApiError::internal)?;
    range
        .kvs
        .iter()
        .map(|kv| crate::codec::decode(kv).map_err(ApiError::internal))
        .collect()
}

fn labels(object: &Value) -> Option<&serde_json::Map<String, Value>> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
}

fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Whether a node is simulated (no agent to ask).
fn simulated(node: &Value) -> bool {
    let (key, value) = hortator_sim::SIM_LABEL;
    labels(node)
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
        == Some(value)
}

/// The summaries of `nodes`' agents, asked all at once; agents that fail are left out.
async fn summaries(ctx: &Ctx, nodes: BTreeSet<String>) -> HashMap<String, Summary> {
    let asks = nodes.into_iter().map(|node| async move {
        let summary = crate::nodes::agent_get(ctx, &node, "/stats/summary", AGENT_TIMEOUT)
            .await
            .and_then(|body| {
                serde_json::from_slice::<Summary>(&body).map_err(|e| {
                    ApiError::internal(format!("the agent's summary is malformed: {e}"))
                })
            });
        match summary {
            Ok(summary) => Some((node, summary)),
            Err(e) => {
                tracing::debug!(%node, error = %e.message, "no metrics from the node's agent");
                None
            }
        }
    });
    futures::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// A sample time as metav1.Time (whole seconds).
fn timestamp(time: &str) -> String {
    time.parse::<jiff::Timestamp>()
        .ok()
        .and_then(|t| jiff::Timestamp::from_second(t.as_second()).ok())
        .map(|t| t.to_string())
        .unwrap_or_else(|| time.to_string())
}

/// `{cpu, memory}` quantities from a CPU rate and a working set, if both are known.
fn usage(cpu: Option<&CpuStats>, memory: Option<&MemoryStats>) -> Option<Value> {
    let nanocores = cpu?.usage_nano_cores?;
    let working_set = memory?.working_set_bytes?;
    Some(json!({
        "cpu": format!("{nanocores}n"),
        "memory": format!("{}Ki", working_set / 1024),
    }))
}

fn metadata(object: &Value, now: &str) -> Value {
    let mut meta = json!({"name": text(object, "/metadata/name"), "creationTimestamp": now});
    if let Some(ns) = object.pointer("/metadata/namespace") {
        meta["namespace"] = ns.clone();
    }
    if let Some(labels) = labels(object) {
        meta["labels"] = Value::Object(labels.clone());
    }
    meta
}

async fn node_metrics(
    ctx: &Ctx,
    name: Option<&str>,
    selector: &Selectors,
) -> Result<Vec<Value>, ApiError> {
    let nodes: Vec<Value> = stored(ctx, "nodes", None)?
        .into_iter()
        .filter(|n| name.is_none_or(|name| text(n, "/metadata/name") == name))
        .filter(|n| selector.matches(n) && !simulated(n))
        .collect();
    let names = nodes
        .iter()
        .map(|n| text(n, "/metadata/name").to_string())
        .collect();
    let summaries = summaries(ctx, names).await;
    let now = timestamp(&jiff::Timestamp::now().to_string());
    Ok(nodes
        .iter()
        .filter_map(|node| {
            let stats = &summaries.get(text(node, "/metadata/name"))?.node;
            let cpu = stats.cpu.as_ref()?;
            Some(json!({
                "kind": "NodeMetrics",
                "apiVersion": GROUP_VERSION,
                "metadata": metadata(node, &now),
                "timestamp": timestamp(&cpu.time),
                "window": cpu.usage_window.clone()?,
                "usage": usage(Some(cpu), stats.memory.as_ref())?,
            }))
        })
        .collect())
}

async fn pod_metrics(
    ctx: &Ctx,
    namespace: Option<&str>,
    name: Option<&str>,
    selector: &Selectors,
) -> Result<Vec<Value>, ApiError> {
    let pods: Vec<Value> = stored(ctx, "pods", namespace)?
        .into_iter()
        .filter(|p| name.is_none_or(|name| text(p, "/metadata/name") == name))
        .filter(|p| selector.matches(p) && !text(p, "/spec/nodeName").is_empty())
        .collect();
    let nodes: Vec<Value> = stored(ctx, "nodes", None)?;
    let wanted: BTreeSet<&str> = pods.iter().map(|p| text(p, "/spec/nodeName")).collect();
    let asked = nodes
        .iter()
        .filter(|n| wanted.contains(text(n, "/metadata/name")) && !simulated(n))
        .map(|n| text(n, "/metadata/name").to_string())
        .collect();
    let summaries = summaries(ctx, asked).await;
    let by_uid: HashMap<&str, &hortator_monitor::PodStats> = summaries
        .values()
        .flat_map(|s| &s.pods)
        .map(|p| (p.pod_ref.uid.as_str(), p))
        .collect();
    let now = timestamp(&jiff::Timestamp::now().to_string());
    Ok(pods
        .iter()
        .filter_map(|pod| {
            let stats = by_uid.get(text(pod, "/metadata/uid"))?;
            let cpu = stats.cpu.as_ref()?;
            // Like metrics-server: a pod is reported only once every container has usage.
            let containers = stats
                .containers
                .iter()
                .map(|c| {
                    let usage = usage(c.cpu.as_ref(), c.memory.as_ref())?;
                    Some(json!({"name": c.name, "usage": usage}))
                })
                .collect::<Option<Vec<Value>>>()?;
            if containers.is_empty() {
                return None;
            }
            Some(json!({
                "kind": "PodMetrics",
                "apiVersion": GROUP_VERSION,
                "metadata": metadata(pod, &now),
                "timestamp": timestamp(&cpu.time),
                "window": cpu.usage_window.clone()?,
                "containers": containers,
            }))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_nanocores_and_kibibytes() {
        let cpu = CpuStats {
            time: "2025-01-01T00:00:10.5Z".into(),
            usage_nano_cores: Some(250_000_000),
            usage_core_nano_seconds: Some(1),
            usage_window: Some("10.000s".into()),
        };
        let memory = MemoryStats {
            working_set_bytes: Some(100 * 1024 * 1024),
            ..MemoryStats::default()
        };
        assert_eq!(
            usage(Some(&cpu), Some(&memory)).unwrap(),
            json!({"cpu": "250000000n", "memory": "102400Ki"})
        );
        let first_sample = CpuStats {
            usage_nano_cores: None,
            ..cpu.clone()
        };
        assert!(usage(Some(&first_sample), Some(&memory)).is_none());
        assert_eq!(timestamp(&cpu.time), "2025-01-01T00:00:10Z");
    }

    #[test]
    fn discovery_names_both_resources() {
        let list = resource_list();
        assert_eq!(list["groupVersion"], "metrics.k8s.io/v1beta1");
        assert_eq!(list["resources"][1]["kind"], "PodMetrics");
        assert_eq!(
            aggregated_group()["versions"][0]["resources"][0]["scope"],
            "Cluster"
        );
        assert_eq!(api_group()["preferredVersion"]["version"], "v1beta1");
    }
}
