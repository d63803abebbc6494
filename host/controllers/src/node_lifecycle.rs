//! The node lifecycle controller: a node whose agent stops renewing its Lease (and posting
//! status) for longer than the grace period gets its conditions set to Unknown, the
//! `node.kubernetes.io/unreachable` taints and its pods marked not ready; a node that reports
//! itself not ready gets the `node.kubernetes.io/not-ready` taints. Pods on a node tainted
//! `NoExecute` are deleted once the eviction timeout (or their own toleration seconds) has
//! passed, so that their controllers recreate them elsewhere.
//!
//! Heartbeats are judged by when this controller *saw* them change, never by the timestamps
//! they carry, so clocks need not agree.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use hortator_events::Recorder;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use serde_json::json;

use crate::{ControllersConfig, Error};

/// How often every node is looked at (Kubernetes' node-monitor-period).
const MONITOR_PERIOD: Duration = Duration::from_secs(2);
const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
const NOT_READY: &str = "node.kubernetes.io/not-ready";
const LEASE_NAMESPACE: &str = "kube-node-lease";

/// What this controller last saw of a node's heartbeat.
struct Health {
    /// The heartbeat signature (lease renew time, Ready heartbeat time) last seen.
    signature: (Option<String>, Option<String>),
    /// When the signature last changed.
    probed: Instant,
}

/// The taint a node's Ready condition calls for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Readiness {
    Ready,
    NotReady,
    Unknown,
}

/// Run the node lifecycle controller until the API goes away.
pub(crate) async fn run(client: kube::Client, config: Arc<ControllersConfig>) {
    let recorder = Recorder::spawn(client.clone(), "node-controller", None);
    let (nodes, nodes_writer) = reflector::store();
    let (leases, leases_writer) = reflector::store();
    let (pods, pods_writer) = reflector::store();
    tokio::spawn(
        reflector::reflector(
            nodes_writer,
            watcher(Api::<Node>::all(client.clone()), watcher::Config::default()),
        )
        .default_backoff()
        .for_each(|_| async {}),
    );
    tokio::spawn(
        reflector::reflector(
            leases_writer,
            watcher(
                Api::<Lease>::namespaced(client.clone(), LEASE_NAMESPACE),
                watcher::Config::default(),
            ),
        )
        .default_backoff()
        .for_each(|_| async {}),
    );
    tokio::spawn(
        reflector::reflector(
            pods_writer,
            watcher(Api::<Pod>::all(client.clone()), watcher::Config::default()),
        )
        .default_backoff()
        .for_each(|_| async {}),
    );
    for store_ready in [
        nodes.wait_until_ready().await,
        leases.wait_until_ready().await,
        pods.wait_until_ready().await,
    ] {
        if store_ready.is_err() {
            return;
        }
    }
    let mut health: HashMap<String, Health> = HashMap::new();
    let mut ticker = tokio::time::interval(MONITOR_PERIOD);
    loop {
        ticker.tick().await;
        let now = Instant::now();
        let current = nodes.state();
        health.retain(|name, _| current.iter().any(|n| &n.name_any() == name));
        for node in current {
            let name = node.name_any();
            let signature = heartbeat_signature(&node, &leases);
            let seen = health.entry(name.clone()).or_insert_with(|| Health {
                signature: signature.clone(),
                probed: now,
            });
            if seen.signature != signature {
                seen.signature = signature;
                seen.probed = now;
            }
            let silent = now.duration_since(seen.probed) > config.node_monitor_grace_period;
            if let Err(e) = reconcile(&client, &recorder, &config, &node, silent, &pods).await {
                tracing::warn!(node = %name, error = %e, "node lifecycle reconcile failed");
            }
        }
    }
}

/// What changes when an agent is alive: its lease's renew time and its Ready heartbeat.
fn heartbeat_signature(node: &Node, leases: &Store<Lease>) -> (Option<String>, Option<String>) {
    let lease = leases
        .get(&ObjectRef::new(&node.name_any()).within(LEASE_NAMESPACE))
        .and_then(|l| {
            l.spec
                .as_ref()?
                .renew_time
                .as_ref()
                .map(|t| t.0.to_string())
        });
    let ready = condition(node, "Ready")
        .and_then(|c| c.last_heartbeat_time.as_ref().map(|t| t.0.to_string()));
    (lease, ready)
}

fn condition<'a>(
    node: &'a Node,
    type_: &str,
) -> Option<&'a k8s_openapi::api::core::v1::NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

fn readiness(node: &Node) -> Readiness {
    match condition(node, "Ready").map(|c| c.status.as_str()) {
        Some("True") => Readiness::Ready,
        Some("False") => Readiness::NotReady,
        _ => Readiness::Unknown,
    }
}

/// One node: conditions to Unknown when silent, taints to match readiness, pods marked not
/// ready or evicted.
#[tracing::instrument(name = "reconcile node", level = "debug", skip_all,
    fields(node = node.metadata.name.as_deref()))]
async fn reconcile(
    client: &kube::Client,
    recorder: &Recorder,
    config: &ControllersConfig,
    node: &Node,
    silent: bool,
    pods: &Store<Pod>,
) -> Result<(), Error> {
    let name = node.name_any();
    let nodes: Api<Node> = Api::all(client.clone());
    if silent && readiness(node) != Readiness::Unknown {
        nodes
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Strategic(unknown_conditions(node)),
            )
            .await?;
        tracing::info!(node = %name, "node stopped posting status: marked NotReady (Unknown)");
        recorder.normal(
            node,
            "NodeNotReady",
            format!("Node {name} status is now: NodeNotReady"),
        );
        mark_pods_not_ready(client, &name, pods).await;
        // The next pass sees the new conditions and taints the node.
        return Ok(());
    }
    let readiness = if silent {
        Readiness::Unknown
    } else {
        readiness(node)
    };
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let wanted = desired_taints(&taints, readiness, jiff::Timestamp::now());
    if wanted != taints {
        let patch = json!({
            "metadata": {"resourceVersion": node.metadata.resource_version},
            "spec": {"taints": wanted},
        });
        nodes
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        tracing::info!(node = %name, ?readiness, "node taints updated");
        return Ok(());
    }
    let now = jiff::Timestamp::now();
    for pod in pods.state() {
        if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(name.as_str())
            || pod.metadata.deletion_timestamp.is_some()
        {
            continue;
        }
        if let Some(due) = eviction_due(&pod, &taints, config.pod_eviction_timeout)
            && due <= now
        {
            evict(client, recorder, &pod, &name).await;
        }
    }
    Ok(())
}

/// A strategic merge patch setting the agent's conditions to Unknown.
fn unknown_conditions(node: &Node) -> serde_json::Value {
    let now = Time(jiff::Timestamp::now());
    let conditions: Vec<serde_json::Value> =
        ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"]
            .into_iter()
            .map(|type_| {
                let previous = condition(node, type_);
                json!({
                    "type": type_,
                    "status": "Unknown",
                    "reason": "NodeStatusUnknown",
                    "message": "Kubelet stopped posting node status.",
                    "lastHeartbeatTime": previous.and_then(|c| c.last_heartbeat_time.clone()),
                    "lastTransitionTime": now,
                })
            })
            .collect();
    json!({"status": {"conditions": conditions}})
}

/// The node's taints with the readiness taints set for `readiness`: the others kept, ours
/// keeping their time when already present.
fn desired_taints(current: &[Taint], readiness: Readiness, now: jiff::Timestamp) -> Vec<Taint> {
    let key = match readiness {
        Readiness::Ready => None,
        Readiness::NotReady => Some(NOT_READY),
        Readiness::Unknown => Some(UNREACHABLE),
    };
    let mut taints: Vec<Taint> = current
        .iter()
        .filter(|t| (t.key != UNREACHABLE && t.key != NOT_READY) || Some(t.key.as_str()) == key)
        .cloned()
        .collect();
    if let Some(key) = key {
        for effect in ["NoSchedule", "NoExecute"] {
            if !taints.iter().any(|t| t.key == key && t.effect == effect) {
                taints.push(Taint {
                    key: key.to_string(),
                    effect: effect.to_string(),
                    time_added: (effect == "NoExecute").then_some(Time(now)),
                    value: None,
                });
            }
        }
    }
    taints
}

/// When `pod` is to be evicted because of the node's `NoExecute` readiness taints: the taint's
/// time plus the pod's toleration seconds, or plus `timeout` when it has no toleration of its
/// own; `None` when it tolerates the taint for ever or there is no such taint.
fn eviction_due(pod: &Pod, taints: &[Taint], timeout: Duration) -> Option<jiff::Timestamp> {
    let taint = taints
        .iter()
        .find(|t| t.effect == "NoExecute" && (t.key == UNREACHABLE || t.key == NOT_READY))?;
    let added = taint.time_added.as_ref()?.0;
    let toleration = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_ref())
        .and_then(|ts| {
            ts.iter().find(|t| {
                let key_matches = match t.key.as_deref() {
                    None | Some("") => t.operator.as_deref() == Some("Exists"),
                    Some(k) => k == taint.key,
                };
                let effect_matches = t
                    .effect
                    .as_deref()
                    .is_none_or(|e| e.is_empty() || e == "NoExecute");
                key_matches && effect_matches
            })
        });
    let seconds = match toleration {
        Some(t) => t.toleration_seconds?,
        None => i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
    };
    added
        .checked_add(jiff::SignedDuration::from_secs(seconds.max(0)))
        .ok()
}

/// Pods on a silent node are no longer ready: services stop sending to them.
async fn mark_pods_not_ready(client: &kube::Client, node: &str, pods: &Store<Pod>) {
    let now = Time(jiff::Timestamp::now());
    for pod in pods.state() {
        if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(node) {
            continue;
        }
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if !ready {
            continue;
        }
        let namespace = pod.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
        let patch = json!({"status": {"conditions": [
            {"type": "Ready", "status": "False", "lastTransitionTime": now,
             "reason": "NodeNotReady", "message": "the node stopped posting status"}
        ]}});
        if let Err(e) = api
            .patch_status(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Strategic(patch),
            )
            .await
        {
            tracing::warn!(pod = %pod.name_any(), %namespace, error = %e, "cannot mark pod not ready");
        }
    }
}

/// Delete a pod of a failed node (gracefully: its controller replaces it at once).
async fn evict(client: &kube::Client, recorder: &Recorder, pod: &Pod, node: &str) {
    let namespace = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let params = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => {
            tracing::info!(%namespace, pod = %name, %node, "pod evicted from a failed node");
            recorder.normal(
                pod,
                "TaintManagerEviction",
                format!("Marking for deletion Pod {namespace}/{name}"),
            );
        }
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
        Err(e) => tracing::warn!(%namespace, pod = %name, error = %e, "cannot evict pod"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            time_added: None,
            value: None,
        }
    }

    #[test]
    fn readiness_taints_follow_readiness_and_others_stay() {
        let now = jiff::Timestamp::now();
        let own = taint("dedicated", "NoSchedule");
        let unknown = desired_taints(std::slice::from_ref(&own), Readiness::Unknown, now);
        assert_eq!(unknown.len(), 3);
        assert!(
            unknown
                .iter()
                .any(|t| t.key == UNREACHABLE && t.effect == "NoExecute" && t.time_added.is_some())
        );
        assert!(
            unknown
                .iter()
                .any(|t| t.key == UNREACHABLE && t.effect == "NoSchedule")
        );
        // Stable: asking again changes nothing (the time is kept).
        let later = now.checked_add(jiff::SignedDuration::from_secs(5)).unwrap();
        assert_eq!(desired_taints(&unknown, Readiness::Unknown, later), unknown);
        let not_ready = desired_taints(&unknown, Readiness::NotReady, now);
        assert!(not_ready.iter().all(|t| t.key != UNREACHABLE));
        assert!(not_ready.iter().any(|t| t.key == NOT_READY));
        assert_eq!(desired_taints(&not_ready, Readiness::Ready, now), vec![own]);
    }

    fn pod(tolerations: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [], "tolerations": tolerations}
        }))
        .unwrap()
    }

    #[test]
    fn eviction_waits_for_the_timeout_or_the_pods_toleration() {
        let added = jiff::Timestamp::from_second(1_000_000).unwrap();
        let mut noexec = taint(UNREACHABLE, "NoExecute");
        noexec.time_added = Some(Time(added));
        let taints = [taint(UNREACHABLE, "NoSchedule"), noexec];
        let timeout = Duration::from_secs(40);
        let at = |s: i64| {
            Some(
                added
                    .checked_add(jiff::SignedDuration::from_secs(s))
                    .unwrap(),
            )
        };
        assert_eq!(eviction_due(&pod(json!([])), &taints, timeout), at(40));
        let seconds = json!([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 7}]);
        assert_eq!(eviction_due(&pod(seconds), &taints, timeout), at(7));
        let forever = json!([{"operator": "Exists"}]);
        assert_eq!(eviction_due(&pod(forever), &taints, timeout), None);
        assert_eq!(eviction_due(&pod(json!([])), &taints[..1], timeout), None);
    }
}
