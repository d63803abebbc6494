//! Node heartbeats: each node's Lease in `kube-node-lease`, renewed like the kubelet's.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::SimNode;

/// The namespace of node leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// The kubelet's lease duration.
pub const LEASE_DURATION_SECONDS: i32 = 40;

/// Renew every node's lease now and then every `interval`, until `shutdown` completes.
pub async fn run(
    client: kube::Client,
    nodes: &[SimNode],
    interval: Duration,
    concurrency: usize,
    shutdown: impl Future<Output = ()>,
) {
    let api: Api<Lease> = Api::namespaced(client, LEASE_NAMESPACE);
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let beat = async {
        loop {
            ticks.tick().await;
            renew_all(&api, nodes, concurrency).await;
        }
    };
    tokio::select! {
        () = beat => {}
        () = shutdown => {}
    }
}

/// Renew (or create) every node's lease; failures are logged and retried at the next beat.
pub async fn renew_all(api: &Api<Lease>, nodes: &[SimNode], concurrency: usize) {
    // Owned per request: a future borrowing across `buffer_unordered` is not `Send` enough
    // for `tokio::spawn`.
    let failures: Vec<(String, kube::Error)> = futures::stream::iter(nodes.iter().cloned())
        .map(|node| {
            let api = api.clone();
            async move {
                crate::node::with_retries(|| renew(&api, &node))
                    .await
                    .err()
                    .map(|e| (node.name, e))
            }
        })
        .buffer_unordered(concurrency)
        .filter_map(std::future::ready)
        .collect()
        .await;
    if let Some((node, error)) = failures.first() {
        tracing::warn!(failed = failures.len(), %node, %error, "lease renewal failed");
    }
}

/// Renew `node`'s lease, creating it when missing.
async fn renew(api: &Api<Lease>, node: &SimNode) -> Result<(), kube::Error> {
    let now = MicroTime(jiff::Timestamp::now());
    let spec = json!({
        "holderIdentity": node.name,
        "leaseDurationSeconds": LEASE_DURATION_SECONDS,
        "renewTime": now,
    });
    let patch = json!({ "spec": spec });
    match api
        .patch(&node.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => return Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(e),
    }
    let lease: Lease = serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": node.name,
            "namespace": LEASE_NAMESPACE,
            // Like the kubelet's: goes away with its node.
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "Node", "name": node.name, "uid": node.uid,
            }],
        },
        "spec": spec,
    }))
    .expect("a well-formed Lease");
    match api.create(&PostParams::default(), &lease).await {
        Ok(_) => Ok(()),
        // Created meanwhile (another sim with the same prefix): renewed next beat.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}
