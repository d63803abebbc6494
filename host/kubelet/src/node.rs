//! The Node object: registration with the machine's capacity, addresses and pod subnet; the
//! Lease heartbeat in `kube-node-lease`; and the `Ready` condition, which names the engine's
//! socket when the engine cannot be reached.

use std::collections::BTreeMap;
use std::time::Duration;

use ipnet::Ipv4Net;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::config::KubeletConfig;
use crate::network::PodNetworking;

/// The version the agent reports as its kubelet version.
pub const KUBELET_VERSION: &str = "v1.32.0-hortator";

/// Namespace of node leases.
const LEASE_NAMESPACE: &str = "kube-node-lease";

/// Seconds a lease lasts without renewal.
const LEASE_DURATION_SECONDS: i32 = 40;

/// Whether the container engine answers: its version, or why not.
pub(crate) type EngineHealth = Result<String, String>;

/// Why the node could not be registered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NodeError {
    /// The API refused.
    #[error("cannot register node {node}: {source}")]
    Api {
        /// The node.
        node: String,
        /// The API error.
        source: kube::Error,
    },
    /// No pod subnet could be chosen.
    #[error("cannot choose a pod subnet for node {node}: {reason}")]
    Subnet {
        /// The node.
        node: String,
        /// The driver's reason.
        reason: String,
    },
}

/// Register (or update) the Node and return its pod subnet.
pub(crate) async fn register(
    client: &kube::Client,
    config: &KubeletConfig,
    network: &PodNetworking,
    health: &EngineHealth,
) -> Result<Ipv4Net, NodeError> {
    let api: Api<Node> = Api::all(client.clone());
    let api_error = |source| NodeError::Api {
        node: config.node_name.clone(),
        source,
    };
    let nodes = api.list(&ListParams::default()).await.map_err(api_error)?;
    let existing = nodes
        .items
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(config.node_name.as_str()));
    let existing_subnet = existing
        .and_then(|n| n.spec.as_ref())
        .and_then(|s| s.pod_cidr.as_deref())
        .and_then(|c| c.parse::<Ipv4Net>().ok())
        .filter(|c| config.cluster_cidr.contains(c));
    let subnet = match existing_subnet {
        Some(subnet) => subnet,
        None => {
            let allocated: Vec<Ipv4Net> = nodes
                .items
                .iter()
                .filter(|n| n.metadata.name.as_deref() != Some(config.node_name.as_str()))
                .filter_map(|n| n.spec.as_ref()?.pod_cidr.as_deref()?.parse().ok())
                .collect();
            network
                .node_subnet(allocated)
                .await
                .map_err(|e| NodeError::Subnet {
                    node: config.node_name.clone(),
                    reason: e.to_string(),
                })?
        }
    };
    let object = node_object(config, subnet, health);
    if existing.is_some() {
        let params = PatchParams::default();
        api.patch(&config.node_name, &params, &Patch::Merge(&object))
            .await
            .map_err(api_error)?;
        api.patch_status(&config.node_name, &params, &Patch::Merge(&object))
            .await
            .map_err(api_error)?;
    } else {
        let node: Node = serde_json::from_value(object).expect("a well-formed Node");
        match api.create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {}
            Err(e) => return Err(api_error(e)),
        }
    }
    tracing::info!(node = %config.node_name, %subnet, ip = %config.node_ip, "node registered");
    Ok(subnet)
}

/// The whole Node (spec and status) as JSON, for create or merge patch.
fn node_object(config: &KubeletConfig, subnet: Ipv4Net, health: &EngineHealth) -> Value {
    let mut labels: BTreeMap<String, String> = [
        ("kubernetes.io/hostname", config.node_name.as_str()),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", arch()),
        ("beta.kubernetes.io/os", "linux"),
        ("beta.kubernetes.io/arch", arch()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    labels.extend(config.labels.clone());
    let capacity = json!({
        "cpu": std::thread::available_parallelism().map_or(1, |n| n.get()).to_string(),
        "memory": format!("{}Ki", memory_kib()),
        "pods": config.max_pods.to_string(),
        "ephemeral-storage": format!("{}Ki", disk_kib(&config.root_dir)),
    });
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let os_image = read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into());
    let cidr = subnet.to_string();
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": config.node_name,
            "labels": labels,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": conditions(health),
            "addresses": [
                {"type": "InternalIP", "address": config.node_ip.to_string()},
                {"type": "Hostname", "address": config.node_name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": config.port.unwrap_or(0)}},
            "nodeInfo": {
                "machineID": read("/etc/machine-id"),
                "systemUUID": read("/etc/machine-id"),
                "bootID": read("/proc/sys/kernel/random/boot_id"),
                "kernelVersion": kernel,
                "osImage": os_image,
                "containerRuntimeVersion": match health {
                    Ok(version) => format!("docker://{version}"),
                    Err(_) => "docker://unknown".to_string(),
                },
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": arch(),
            },
        },
    })
}

fn conditions(health: &EngineHealth) -> Value {
    let now = Time(jiff::Timestamp::now());
    let condition = |ty: &str, status: &str, reason: &str, message: &str| {
        json!({
            "type": ty, "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": now, "lastTransitionTime": now,
        })
    };
    let ready = match health {
        Ok(_) => condition(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        ),
        Err(why) => condition(
            "Ready",
            "False",
            "KubeletNotReady",
            &format!("container runtime is down: {why}"),
        ),
    };
    json!([
        condition(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available"
        ),
        condition(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure"
        ),
        condition(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available"
        ),
        ready,
    ])
}

/// Keep the lease fresh every `config.heartbeat`, and the Ready condition in step with the
/// engine's health (on every change, and at least every minute).
pub(crate) async fn heartbeat(
    client: kube::Client,
    config: KubeletConfig,
    mut health: watch::Receiver<EngineHealth>,
) {
    let nodes: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client, LEASE_NAMESPACE);
    let mut ticker = tokio::time::interval(config.heartbeat);
    let mut last_status = tokio::time::Instant::now();
    loop {
        let health_changed = tokio::select! {
            _ = ticker.tick() => false,
            changed = health.changed() => {
                if changed.is_err() {
                    return;
                }
                true
            }
        };
        if let Err(e) = renew(&leases, &nodes, &config.node_name).await {
            tracing::warn!(node = %config.node_name, error = %e, "lease renewal failed");
        }
        // The node lifecycle controller sets Ready to Unknown when it missed heartbeats:
        // say again what is true as soon as the API shows something else.
        let overridden = !health_changed && ready_differs(&nodes, &config.node_name, &health).await;
        if health_changed || overridden || last_status.elapsed() >= Duration::from_secs(60) {
            let current = health.borrow().clone();
            let patch = json!({"status": {"conditions": conditions(&current)}});
            match nodes
                .patch_status(
                    &config.node_name,
                    &PatchParams::default(),
                    &Patch::Strategic(&patch),
                )
                .await
            {
                Ok(_) => last_status = tokio::time::Instant::now(),
                Err(e) => {
                    tracing::warn!(node = %config.node_name, error = %e, "node status update failed")
                }
            }
        }
    }
}

/// Whether the API's Ready condition of the node differs from the engine's health.
async fn ready_differs(
    nodes: &Api<Node>,
    name: &str,
    health: &watch::Receiver<EngineHealth>,
) -> bool {
    let ours = if health.borrow().is_ok() {
        "True"
    } else {
        "False"
    };
    match nodes.get_opt(name).await {
        Ok(Some(node)) => node
            .status
            .and_then(|s| s.conditions)
            .and_then(|cs| cs.into_iter().find(|c| c.type_ == "Ready"))
            .is_none_or(|c| c.status != ours),
        _ => false,
    }
}

/// Renew the node's lease, creating it (owned by the Node) when missing.
async fn renew(leases: &Api<Lease>, nodes: &Api<Node>, node: &str) -> Result<(), kube::Error> {
    let spec = json!({
        "holderIdentity": node,
        "leaseDurationSeconds": LEASE_DURATION_SECONDS,
        "renewTime": MicroTime(jiff::Timestamp::now()),
    });
    match leases
        .patch(
            node,
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": spec})),
        )
        .await
    {
        Ok(_) => return Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(e),
    }
    let uid = nodes.get(node).await?.metadata.uid.unwrap_or_default();
    let lease: Lease = serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": node,
            "namespace": LEASE_NAMESPACE,
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": uid}],
        },
        "spec": spec,
    }))
    .expect("a well-formed Lease");
    match leases.create(&PostParams::default(), &lease).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn memory_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn disk_kib(path: &std::path::Path) -> u64 {
    nix::sys::statvfs::statvfs(path)
        .map(|s| s.blocks() * s.fragment_size() / 1024)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_object_carries_capacity_subnet_and_health() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = KubeletConfig::new("n1", dir.path().to_path_buf());
        config.node_ip = "127.0.0.2".parse().unwrap();
        let subnet: Ipv4Net = "10.20.3.0/24".parse().unwrap();
        let object = node_object(&config, subnet, &Ok("20.10.24".into()));
        let node: Node = serde_json::from_value(object).unwrap();
        let spec = node.spec.unwrap();
        assert_eq!(spec.pod_cidr.as_deref(), Some("10.20.3.0/24"));
        let status = node.status.unwrap();
        let capacity = status.capacity.unwrap();
        assert_eq!(capacity["pods"].0, "110");
        assert!(memory_kib() > 0);
        assert_eq!(status.addresses.unwrap()[0].address, "127.0.0.2");
        let ready = status
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.status, "True");
        let down = conditions(&Err("cannot connect to unix:///x.sock".into()));
        assert!(
            down[3]["message"]
                .as_str()
                .unwrap()
                .contains("unix:///x.sock")
        );
        assert_eq!(down[3]["status"], "False");
    }
}
