//! The pod garbage collector: every 20 seconds, terminated pods beyond the threshold (oldest
//! first), pods bound to nodes that no longer exist, and terminating pods that were never
//! scheduled are deleted at once (no grace period: no agent will act on them).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, ListParams};
use kube::{Api, ResourceExt};

use crate::{ControllersConfig, Error};

const PERIOD: Duration = Duration::from_secs(20);

/// Run the pod garbage collector until the task is stopped.
pub(crate) async fn run(client: kube::Client, config: Arc<ControllersConfig>) {
    let mut ticker = tokio::time::interval(PERIOD);
    loop {
        ticker.tick().await;
        if let Err(e) = collect(&client, config.terminated_pod_gc_threshold).await {
            tracing::warn!(error = %e, "pod garbage collection failed");
        }
    }
}

#[tracing::instrument(name = "pod gc", skip(client))]
async fn collect(client: &kube::Client, threshold: usize) -> Result<(), Error> {
    let pods = Api::<Pod>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let nodes: HashSet<String> = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    for (pod, reason) in doomed(&pods, &nodes, threshold) {
        // A node missing from the list may just have been created: look again.
        if reason == "its node is gone"
            && let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref())
            && Api::<Node>::all(client.clone())
                .get_opt(node)
                .await?
                .is_some()
        {
            continue;
        }
        force_delete(client, pod, reason).await?;
    }
    Ok(())
}

/// The pods to delete, each with the reason.
fn doomed<'a>(
    pods: &'a [Pod],
    nodes: &HashSet<String>,
    threshold: usize,
) -> Vec<(&'a Pod, &'static str)> {
    let mut out = Vec::new();
    let mut terminated: Vec<&Pod> = pods
        .iter()
        .filter(|p| {
            matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        })
        .collect();
    if terminated.len() > threshold {
        terminated.sort_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0));
        let excess = terminated.len() - threshold;
        out.extend(
            terminated
                .into_iter()
                .take(excess)
                .map(|p| (p, "too many terminated pods")),
        );
    }
    for pod in pods {
        if out.iter().any(|(p, _)| std::ptr::eq(*p, pod)) {
            continue;
        }
        match pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            Some(node) if !node.is_empty() && !nodes.contains(node) => {
                out.push((pod, "its node is gone"));
            }
            None | Some("") if pod.metadata.deletion_timestamp.is_some() => {
                out.push((pod, "terminating and never scheduled"));
            }
            _ => {}
        }
    }
    out
}

async fn force_delete(client: &kube::Client, pod: &Pod, reason: &str) -> Result<(), Error> {
    let namespace = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let mut params = DeleteParams::default().grace_period(0);
    params.preconditions = Some(kube::api::Preconditions {
        uid: pod.metadata.uid.clone(),
        resource_version: None,
    });
    match api.delete(&name, &params).await {
        Ok(_) => {
            tracing::info!(%namespace, pod = %name, reason, "pod garbage-collected");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, node: Option<&str>, phase: &str, created: &str, deleting: bool) -> Pod {
        let mut meta = json!({"name": name, "namespace": "default", "uid": name,
                              "creationTimestamp": created});
        if deleting {
            meta["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        serde_json::from_value(json!({
            "metadata": meta,
            "spec": {"nodeName": node, "containers": []},
            "status": {"phase": phase}
        }))
        .unwrap()
    }

    #[test]
    fn oldest_terminated_pods_beyond_the_threshold_go_first() {
        let pods = [
            pod(
                "new",
                Some("n1"),
                "Succeeded",
                "2026-01-03T00:00:00Z",
                false,
            ),
            pod("old", Some("n1"), "Failed", "2026-01-01T00:00:00Z", false),
            pod(
                "mid",
                Some("n1"),
                "Succeeded",
                "2026-01-02T00:00:00Z",
                false,
            ),
            pod(
                "running",
                Some("n1"),
                "Running",
                "2025-01-01T00:00:00Z",
                false,
            ),
        ];
        let nodes = HashSet::from(["n1".to_string()]);
        let names: Vec<_> = doomed(&pods, &nodes, 1)
            .iter()
            .map(|(p, _)| p.name_any())
            .collect();
        assert_eq!(names, ["old", "mid"]);
        assert!(doomed(&pods, &nodes, 3).is_empty());
    }

    #[test]
    fn pods_of_missing_nodes_and_unscheduled_terminating_pods_go() {
        let pods = [
            pod(
                "lost",
                Some("gone"),
                "Running",
                "2026-01-01T00:00:00Z",
                false,
            ),
            pod("pending", None, "Pending", "2026-01-01T00:00:00Z", false),
            pod("cancelled", None, "Pending", "2026-01-01T00:00:00Z", true),
            pod("fine", Some("n1"), "Running", "2026-01-01T00:00:00Z", false),
        ];
        let nodes = HashSet::from(["n1".to_string()]);
        let found: Vec<_> = doomed(&pods, &nodes, 100)
            .iter()
            .map(|(p, r)| (p.name_any(), *r))
            .collect();
        assert_eq!(
            found,
            [
                ("lost".to_string(), "its node is gone"),
                ("cancelled".to_string(), "terminating and never scheduled")
            ]
        );
    }
}
