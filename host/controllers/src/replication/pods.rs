//! Pure pod logic of the replication controllers: which pods count, which are ready or
//! available, how a pod is made from a template, and which pods go first on scale-down
//! (Kubernetes' `ActivePodsWithRanks`).

use std::cmp::Ordering;
use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// The annotation that orders pods on scale-down (lower cost goes first).
const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// The longest `generateName` prefix: the API server appends five random characters and a
/// pod name must fit in 63 characters.
const MAX_PREFIX: usize = 58;

/// Whether the pod counts towards the replicas: not being deleted, not terminated.
pub(crate) fn is_active(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase(pod), Some("Succeeded" | "Failed"))
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.phase.as_deref()
}

/// When the pod's `Ready` condition last became `True`; `None` when it is not ready.
/// A ready pod without a transition time is ready since the beginning of time.
fn ready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    let condition = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    (condition.status == "True").then(|| condition.last_transition_time.as_ref().map(|t| t.0))
}

/// Whether the pod's `Ready` condition is `True`.
pub(crate) fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// When a ready pod becomes available (ready for `min_ready_seconds`); `None` when not ready.
pub(crate) fn available_at(pod: &Pod, min_ready_seconds: i32) -> Option<Timestamp> {
    let since = ready_since(pod)?;
    if min_ready_seconds <= 0 {
        return Some(Timestamp::MIN);
    }
    Some(match since {
        Some(t) => t
            .checked_add(SignedDuration::from_secs(i64::from(min_ready_seconds)))
            .unwrap_or(Timestamp::MAX),
        None => Timestamp::MIN,
    })
}

/// Whether the pod has been ready for `min_ready_seconds` at `now`.
pub(crate) fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    available_at(pod, min_ready_seconds).is_some_and(|at| at <= now)
}

/// The pod's controller ownerReference, if any.
pub(crate) fn controller_of(pod: &Pod) -> Option<&OwnerReference> {
    pod.metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// The `generateName` of the pods of controller `name`: the name, made a valid DNS subdomain
/// (v1beta1 names may hold capitals), then `-`.
pub(crate) fn generate_name(name: &str) -> String {
    let mut prefix: String = name
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '.' | '-') => c,
            _ => '-',
        })
        .take(MAX_PREFIX - 1)
        .collect();
    let trimmed = prefix.trim_start_matches(['-', '.']).len();
    prefix.drain(..prefix.len() - trimmed);
    if prefix.is_empty() {
        prefix.push_str("pod");
    }
    prefix.push('-');
    prefix
}

/// A new pod from `template`, owned by `owner` (Kubernetes' `GetPodFromTemplate`).
pub(crate) fn pod_from_template(
    template: &PodTemplateSpec,
    namespace: &str,
    generate_name: String,
    owner: OwnerReference,
) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name),
            namespace: Some(namespace.to_string()),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// The `n` pods to delete first on scale-down, in order.
pub(crate) fn pods_to_delete<'a>(pods: &[&'a Pod], n: usize) -> Vec<&'a Pod> {
    // Rank: how many of the controller's pods share the pod's node ("doubled up").
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    for pod in pods {
        if let Some(node) = node_name(pod) {
            *per_node.entry(node).or_default() += 1;
        }
    }
    let mut ranked: Vec<(&Pod, usize)> = pods
        .iter()
        .map(|pod| {
            let rank = node_name(pod).map_or(0, |node| per_node[node]);
            (*pod, rank)
        })
        .collect();
    ranked.sort_by(deletion_order);
    ranked.into_iter().take(n).map(|(pod, _)| pod).collect()
}

fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()?
        .node_name
        .as_deref()
        .filter(|n| !n.is_empty())
}

fn phase_ordinal(pod: &Pod) -> u8 {
    match phase(pod) {
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 0,
    }
}

fn deletion_cost(pod: &Pod) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DELETION_COST))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn max_restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|statuses| statuses.iter().map(|c| c.restart_count).max())
        .unwrap_or(0)
}

/// "Empty < newer < older": a missing time sorts first, then the later one.
fn newer_first(a: Option<Timestamp>, b: Option<Timestamp>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => b.cmp(&a),
    }
}

/// Kubernetes' `ActivePodsWithRanks.Less`: the pod to delete first sorts first.
fn deletion_order((a, rank_a): &(&Pod, usize), (b, rank_b): &(&Pod, usize)) -> Ordering {
    let (node_a, node_b) = (node_name(a), node_name(b));
    // 1. Unassigned before assigned.
    if node_a.is_none() != node_b.is_none() {
        return if node_a.is_none() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    // 2. Pending < Unknown < Running.
    phase_ordinal(a)
        .cmp(&phase_ordinal(b))
        // 3. Not ready before ready.
        .then_with(|| is_ready(a).cmp(&is_ready(b)))
        // 4. Lower deletion cost first.
        .then_with(|| deletion_cost(a).cmp(&deletion_cost(b)))
        // 5. Doubled up (more pods on the same node) first.
        .then_with(|| rank_b.cmp(rank_a))
        // 6. Ready for less time first.
        .then_with(|| match (ready_since(a), ready_since(b)) {
            (Some(ra), Some(rb)) => newer_first(ra, rb),
            _ => Ordering::Equal,
        })
        // 7. More restarts first.
        .then_with(|| max_restarts(b).cmp(&max_restarts(a)))
        // 8. Newer first.
        .then_with(|| {
            newer_first(
                a.metadata.creation_timestamp.as_ref().map(|t| t.0),
                b.metadata.creation_timestamp.as_ref().map(|t| t.0),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, node: &str, phase: &str, ready: Option<&str>, created: &str) -> Pod {
        let mut conditions = vec![];
        if let Some(since) = ready {
            conditions
                .push(json!({"type": "Ready", "status": "True", "lastTransitionTime": since}));
        }
        serde_json::from_value(json!({
            "metadata": {"name": name, "creationTimestamp": created},
            "spec": {"nodeName": node, "containers": []},
            "status": {"phase": phase, "conditions": conditions},
        }))
        .unwrap()
    }

    fn names(pods: Vec<&Pod>) -> Vec<&str> {
        pods.iter()
            .map(|p| p.metadata.name.as_deref().unwrap())
            .collect()
    }

    const T0: &str = "2025-01-01T00:00:00Z";
    const T1: &str = "2025-01-01T00:01:00Z";
    const T2: &str = "2025-01-01T00:02:00Z";

    #[test]
    fn unscheduled_then_pending_then_not_ready_then_newest() {
        let running_old = pod("running-old", "n1", "Running", Some(T0), T0);
        let running_new = pod("running-new", "n2", "Running", Some(T1), T1);
        let not_ready = pod("not-ready", "n3", "Running", None, T0);
        let pending = pod("pending", "n4", "Pending", None, T0);
        let unscheduled = pod("unscheduled", "", "Pending", None, T0);
        let all = [
            &running_old,
            &running_new,
            &not_ready,
            &pending,
            &unscheduled,
        ];
        assert_eq!(
            names(pods_to_delete(&all, 5)),
            [
                "unscheduled",
                "pending",
                "not-ready",
                "running-new",
                "running-old"
            ]
        );
        assert_eq!(names(pods_to_delete(&all, 2)), ["unscheduled", "pending"]);
    }

    #[test]
    fn doubled_up_and_deletion_cost_come_first() {
        let a = pod("a", "n1", "Running", Some(T0), T0);
        let b = pod("b", "n2", "Running", Some(T0), T0);
        let c = pod("c", "n2", "Running", Some(T0), T0);
        let first = names(pods_to_delete(&[&a, &b, &c], 1));
        assert!(first == ["b"] || first == ["c"], "{first:?}");
        let mut cheap = a.clone();
        cheap
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(DELETION_COST.into(), "-5".into());
        assert_eq!(names(pods_to_delete(&[&b, &c, &cheap], 1)), ["a"]);
    }

    #[test]
    fn ready_for_less_time_then_newer() {
        let long = pod("long", "n1", "Running", Some(T0), T2);
        let short = pod("short", "n2", "Running", Some(T1), T0);
        assert_eq!(names(pods_to_delete(&[&long, &short], 1)), ["short"]);
        let old = pod("old", "n1", "Running", Some(T0), T0);
        let new = pod("new", "n2", "Running", Some(T0), T1);
        assert_eq!(names(pods_to_delete(&[&old, &new], 1)), ["new"]);
    }

    #[test]
    fn activity_readiness_and_availability() {
        let ready = pod("r", "n1", "Running", Some(T0), T0);
        assert!(is_active(&ready) && is_ready(&ready));
        let t0: Timestamp = T0.parse().unwrap();
        assert!(is_available(&ready, 0, t0));
        assert!(!is_available(&ready, 30, t0));
        assert!(is_available(&ready, 30, t0 + SignedDuration::from_secs(30)));
        let done = pod("d", "n1", "Succeeded", None, T0);
        assert!(!is_active(&done) && !is_available(&done, 0, t0));
        let mut deleting = ready.clone();
        deleting.metadata.deletion_timestamp = ready.metadata.creation_timestamp.clone();
        assert!(!is_active(&deleting));
    }

    #[test]
    fn generated_names_are_valid_prefixes() {
        assert_eq!(generate_name("httpd"), "httpd-");
        assert_eq!(generate_name("httpdController"), "httpdcontroller-");
        assert_eq!(generate_name("_Odd_Name"), "odd-name-");
        assert_eq!(generate_name("__"), "pod-");
        assert_eq!(generate_name(&"x".repeat(80)).len(), MAX_PREFIX);
    }

    #[test]
    fn template_pods_carry_labels_and_owner() {
        let template: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        }))
        .unwrap();
        let owner = OwnerReference {
            api_version: "v1".into(),
            kind: "ReplicationController".into(),
            name: "web".into(),
            uid: "u1".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        let pod = pod_from_template(&template, "ns", generate_name("web"), owner);
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("web-"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(pod.metadata.labels.as_ref().unwrap()["app"], "web");
        assert_eq!(controller_of(&pod).unwrap().uid, "u1");
        assert_eq!(
            pod.spec.unwrap().containers[0].image.as_deref(),
            Some("busybox")
        );
    }
}
