//! Node objects and their registration.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::{Error, SimConfig, ipam};

/// The label every simulated node carries (`type=hortator-sim`).
pub const SIM_LABEL: (&str, &str) = ("type", "hortator-sim");

/// The kubelet version simulated nodes report.
pub const KUBELET_VERSION: &str = "v1.32.0-hortator-sim";

/// One registered simulated node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimNode {
    /// Node name.
    pub name: String,
    /// The Node object's uid (owner of its Lease).
    pub uid: String,
    /// Its InternalIP (fake, never contacted): the hostIP of its pods.
    pub internal_ip: Ipv4Addr,
    /// Its pod block: first address and size.
    pub pod_block: (Ipv4Addr, u32),
}

/// The Node object for node `index` of `config`, status included.
pub(crate) fn node_object(config: &SimConfig, index: u32) -> Node {
    let name = config.node_name(index);
    let ip = ipam::node_ip(index);
    let cidr = ipam::cidr(ipam::pod_block(index, config.pods));
    let mut labels: BTreeMap<String, String> = [
        ("kubernetes.io/hostname", name.as_str()),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("beta.kubernetes.io/os", "linux"),
        ("beta.kubernetes.io/arch", "amd64"),
        SIM_LABEL,
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    labels.extend(config.labels.clone());
    let resources = json!({
        "cpu": config.cpu,
        "memory": config.memory,
        "pods": config.pods.to_string(),
        "ephemeral-storage": config.ephemeral_storage,
    });
    let now = Time(jiff::Timestamp::now());
    let condition = |ty: &str, status: &str, reason: &str, message: &str| {
        json!({
            "type": ty, "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": now, "lastTransitionTime": now,
        })
    };
    // Stable per node, so re-registering does not look like a reboot.
    let id = format!(
        "{:032x}",
        u128::from(u32::from(ip)) << 64 | u128::from(index)
    );
    let node = json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "hortator.io/simulated": "true",
            },
        },
        "spec": {
            "podCIDR": cidr,
            "podCIDRs": [cidr],
            "providerID": format!("sim://{name}"),
            "taints": if config.taints.is_empty() { json!(null) } else { json!(config.taints) },
        },
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure",
                    "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID",
                    "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": ip.to_string()},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": id,
                "systemUUID": id,
                "bootID": id,
                "kernelVersion": "6.1.0-hortator-sim",
                "osImage": "Hortator simulated node",
                "containerRuntimeVersion": "sim://",
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    });
    serde_json::from_value(node).expect("a well-formed Node")
}

/// Register `config.nodes` nodes, `config.concurrency` at a time: create each, or bring an
/// existing one up to date (labels, annotations, spec and status), so running again is
/// idempotent. Fails with the first node that could not be registered after retries.
pub async fn register_nodes(
    client: &kube::Client,
    config: &SimConfig,
) -> Result<Vec<SimNode>, Error> {
    config.validate()?;
    let api: Api<Node> = Api::all(client.clone());
    let started = Instant::now();
    let mut nodes: Vec<SimNode> = futures::stream::iter(0..config.nodes)
        .map(|index| {
            let api = api.clone();
            async move {
                let node = node_object(config, index);
                let name = config.node_name(index);
                let uid = with_retries(|| register_one(&api, &node))
                    .await
                    .map_err(|source| Error::Register {
                        node: name.clone(),
                        source,
                    })?;
                Ok::<_, Error>(SimNode {
                    name,
                    uid,
                    internal_ip: ipam::node_ip(index),
                    pod_block: ipam::pod_block(index, config.pods),
                })
            }
        })
        .buffer_unordered(config.concurrency)
        .try_collect()
        .await?;
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    tracing::info!(
        nodes = nodes.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "simulated nodes registered"
    );
    Ok(nodes)
}

/// Create `node`, or update the existing one; returns its uid.
async fn register_one(api: &Api<Node>, node: &Node) -> Result<String, kube::Error> {
    let name = node.metadata.name.as_deref().unwrap_or_default();
    match api.create(&PostParams::default(), node).await {
        Ok(created) => return Ok(created.metadata.uid.unwrap_or_default()),
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(e) => return Err(e),
    }
    // It exists: merge our labels, annotations and spec, then replace the status fields.
    let spec = serde_json::to_value(&node.spec).unwrap_or_default();
    let patch = json!({
        "metadata": {
            "labels": node.metadata.labels,
            "annotations": node.metadata.annotations,
        },
        "spec": {
            "podCIDR": spec.get("podCIDR"),
            "podCIDRs": spec.get("podCIDRs"),
            "providerID": spec.get("providerID"),
            "taints": spec.get("taints"),
            "unschedulable": null,
        },
    });
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let status = json!({ "status": node.status });
    let updated = api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(updated.metadata.uid.unwrap_or_default())
}

/// Whether an error is worth another try: transport errors, 409 conflicts, 429 and 5xx.
pub(crate) fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) => status.code == 409 || status.code == 429 || status.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Run `f` up to five times while it fails transiently, backing off from 100 ms.
pub(crate) async fn with_retries<T, F, Fut>(mut f: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut delay = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        match f().await {
            Err(e) if attempt < 5 && transient(&e) => {
                tracing::debug!(error = %e, attempt, "retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_looks_real() {
        let mut config = SimConfig::new(3);
        config.labels.insert("zone".into(), "z1".into());
        config
            .taints
            .push(crate::parse_taint("sim=true:NoSchedule").unwrap());
        let node = node_object(&config, 1);
        assert_eq!(node.metadata.name.as_deref(), Some("sim-0002"));
        let labels = node.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["kubernetes.io/hostname"], "sim-0002");
        assert_eq!(labels["type"], "hortator-sim");
        assert_eq!(labels["zone"], "z1");
        let spec = node.spec.as_ref().unwrap();
        assert_eq!(spec.pod_cidr.as_deref(), Some("100.64.1.0/24"));
        assert_eq!(spec.taints.as_ref().unwrap()[0].effect, "NoSchedule");
        let status = node.status.as_ref().unwrap();
        assert_eq!(status.capacity, status.allocatable);
        assert_eq!(status.capacity.as_ref().unwrap()["memory"].0, "256Gi");
        assert_eq!(status.capacity.as_ref().unwrap()["pods"].0, "110");
        let ready = status
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.status, "True");
        assert!(ready.last_heartbeat_time.is_some());
        assert_eq!(status.addresses.as_ref().unwrap()[0].address, "10.250.0.2");
        let info = status.node_info.as_ref().unwrap();
        assert_eq!(info.container_runtime_version, "sim://");
        assert_eq!(info.kubelet_version, KUBELET_VERSION);
        assert!(
            node_object(&SimConfig::new(1), 0)
                .spec
                .unwrap()
                .taints
                .is_none()
        );
    }
}
