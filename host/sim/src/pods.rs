//! The pod runner: pods bound to simulated nodes are marked Running without containers, and
//! pods being deleted get the kubelet's final delete.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStatus,
    HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, ListParams, PostParams, Preconditions};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use tracing::Instrument;

use crate::ipam::Pool;
use crate::{Error, SimNode};

/// Only bound pods.
const BOUND: &str = "spec.nodeName!=";

/// The conditions of a running pod, in the kubelet's order.
const CONDITIONS: [&str; 5] = [
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
];

struct Node {
    ip: Ipv4Addr,
    pool: Mutex<Pool>,
}

struct Ctx {
    client: kube::Client,
    nodes: HashMap<String, Node>,
    store: Store<Pod>,
}

/// Run the pod runner for `nodes` until `shutdown` completes.
pub async fn run(
    client: kube::Client,
    nodes: &[SimNode],
    concurrency: usize,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let nodes: HashMap<String, Node> = nodes
        .iter()
        .map(|n| {
            let node = Node {
                ip: n.internal_ip,
                pool: Mutex::new(Pool::new(n.pod_block)),
            };
            (n.name.clone(), node)
        })
        .collect();
    let all: Api<Pod> = Api::all(client.clone());
    // Learn the addresses pods already hold before handing out new ones.
    seed(&all, &nodes).await;
    let controller = Controller::new(all, watcher::Config::default().fields(BOUND))
        .with_config(controller::Config::default().concurrency(concurrency.min(1 << 15) as u16))
        .graceful_shutdown_on(shutdown);
    let ctx = Arc::new(Ctx {
        client,
        nodes,
        store: controller.store(),
    });
    controller
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok(_) => {}
                // Deleted before its turn, or not ours to run: nothing to do.
                Err(controller::Error::ObjectNotFound(_)) => {}
                Err(e) => tracing::warn!(error = %e, "pod runner"),
            }
        })
        .await;
}

/// Claim the pod IPs in the status of pods already on our nodes.
async fn seed(api: &Api<Pod>, nodes: &HashMap<String, Node>) {
    let mut params = ListParams::default().fields(BOUND).limit(500);
    loop {
        let list = match api.list(&params).await {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list bound pods; their addresses are learnt as they are reconciled");
                return;
            }
        };
        for pod in &list.items {
            if let (Some(node), Some(uid), Some(ip)) = (our_node(nodes, pod), uid(pod), pod_ip(pod))
            {
                node.pool.lock().expect("pool lock").claim(uid, ip);
            }
        }
        match list.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return,
        }
    }
}

fn our_node<'a>(nodes: &'a HashMap<String, Node>, pod: &Pod) -> Option<&'a Node> {
    nodes.get(pod.spec.as_ref()?.node_name.as_deref()?)
}

fn uid(pod: &Pod) -> Option<&str> {
    pod.metadata.uid.as_deref()
}

fn pod_ip(pod: &Pod) -> Option<Ipv4Addr> {
    pod.status.as_ref()?.pod_ip.as_deref()?.parse().ok()
}

fn error_policy(pod: Arc<Pod>, error: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(
        pod = %format!("{}/{}", pod.metadata.namespace.as_deref().unwrap_or_default(),
            pod.metadata.name.as_deref().unwrap_or_default()),
        %error,
        "reconcile failed; retrying"
    );
    Action::requeue(Duration::from_secs(2))
}

async fn reconcile(pod: Arc<Pod>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let Some(node) = our_node(&ctx.nodes, &pod) else {
        return Ok(Action::await_change());
    };
    let (Some(name), Some(namespace), Some(uid)) = (
        pod.metadata.name.as_deref(),
        pod.metadata.namespace.as_deref(),
        uid(&pod),
    ) else {
        return Ok(Action::await_change());
    };
    let span = tracing::debug_span!("reconcile", pod = %format!("{namespace}/{name}"),
        node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or_default());
    async {
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
        if pod.metadata.deletion_timestamp.is_some() {
            return finish_deletion(&api, name, uid, node).await;
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            return Ok(Action::await_change());
        }
        // A host-network pod has its node's address; any other keeps the address in its
        // status while that is still its own.
        let host_network = pod.spec.as_ref().and_then(|s| s.host_network) == Some(true);
        let ip = match pod_ip(&pod) {
            _ if host_network => node.ip,
            Some(ip) if node.pool.lock().expect("pool lock").claim(uid, ip) => ip,
            _ => allocate(&ctx, node, &pod, uid)?,
        };
        if is_running(&pod, node.ip, ip) {
            return Ok(Action::await_change());
        }
        let mut running = (*pod).clone();
        running.status = Some(running_status(&pod, node.ip, ip, jiff::Timestamp::now()));
        match api
            .replace_status(name, &PostParams::default(), &running)
            .await
        {
            Ok(_) => {
                tracing::debug!(%ip, "pod running");
                Ok(Action::await_change())
            }
            // A newer version is on its way through the watch: reconcile that one.
            Err(kube::Error::Api(s)) if s.code == 409 => {
                Ok(Action::requeue(Duration::from_millis(500)))
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {
                node.pool.lock().expect("pool lock").release(uid);
                Ok(Action::await_change())
            }
            Err(e) => Err(e.into()),
        }
    }
    .instrument(span)
    .await
}

/// The kubelet's final delete: grace period 0, only this incarnation of the pod.
async fn finish_deletion(
    api: &Api<Pod>,
    name: &str,
    uid: &str,
    node: &Node,
) -> Result<Action, Error> {
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => {}
        // Gone already, or the name now belongs to another pod.
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    tracing::debug!("pod deleted");
    node.pool.lock().expect("pool lock").release(uid);
    Ok(Action::await_change())
}

/// A new address for `pod`; when the block is full, forget the addresses of pods that are
/// gone (deleted without our final delete) and try again.
fn allocate(ctx: &Ctx, node: &Node, pod: &Pod, uid: &str) -> Result<Ipv4Addr, Error> {
    let mut pool = node.pool.lock().expect("pool lock");
    if let Some(ip) = pool.allocate(uid) {
        return Ok(ip);
    }
    let node_name = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
    let live: std::collections::HashSet<String> = ctx
        .store
        .state()
        .iter()
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == node_name)
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    pool.retain(|uid| live.contains(uid));
    pool.allocate(uid).ok_or_else(|| Error::NoPodAddress {
        node: node_name.unwrap_or_default().to_string(),
    })
}

/// Whether `pod` already shows everything [`running_status`] writes.
fn is_running(pod: &Pod, host_ip: Ipv4Addr, ip: Ipv4Addr) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    let containers = pod.spec.as_ref().map_or(0, |s| s.containers.len());
    let statuses = status.container_statuses.as_deref().unwrap_or_default();
    status.phase.as_deref() == Some("Running")
        && status.host_ip.as_deref() == Some(host_ip.to_string().as_str())
        && status.pod_ip.as_deref() == Some(ip.to_string().as_str())
        && statuses.len() == containers
        && statuses.iter().all(|c| c.ready)
        && CONDITIONS.iter().all(|ty| {
            status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == *ty && c.status == "True")
        })
}

/// The status of `pod` running on a node at `host_ip` with address `ip`; keeps what the
/// API server set (qosClass) and the times of what was already true.
pub(crate) fn running_status(
    pod: &Pod,
    host_ip: Ipv4Addr,
    ip: Ipv4Addr,
    now: jiff::Timestamp,
) -> PodStatus {
    let mut status = pod.status.clone().unwrap_or_default();
    let now = Time(now);
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();

    let mut conditions: BTreeMap<String, PodCondition> = status
        .conditions
        .take()
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.type_.clone(), c))
        .collect();
    let mut ordered = Vec::new();
    for ty in CONDITIONS {
        let condition = match conditions.remove(ty) {
            Some(c) if c.status == "True" => c,
            _ => PodCondition {
                type_: ty.into(),
                status: "True".into(),
                last_transition_time: Some(now.clone()),
                ..PodCondition::default()
            },
        };
        ordered.push(condition);
    }
    ordered.extend(conditions.into_values());

    let started_at = status.start_time.clone().unwrap_or(now.clone());
    let previous: HashMap<String, ContainerStatus> = status
        .container_statuses
        .take()
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.name.clone(), c))
        .collect();
    let container_statuses = spec
        .containers
        .iter()
        .map(|c| {
            let since = previous
                .get(&c.name)
                .and_then(|s| s.state.as_ref()?.running.as_ref()?.started_at.clone())
                .unwrap_or(now.clone());
            container_status(uid, c, true, running(since))
        })
        .collect();
    let init_statuses: Vec<ContainerStatus> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| {
            if c.restart_policy.as_deref() == Some("Always") {
                // A sidecar keeps running.
                container_status(uid, c, true, running(started_at.clone()))
            } else {
                let done = ContainerState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code: 0,
                        reason: Some("Completed".into()),
                        started_at: Some(started_at.clone()),
                        finished_at: Some(started_at.clone()),
                        container_id: Some(container_id(uid, &c.name)),
                        ..ContainerStateTerminated::default()
                    }),
                    ..ContainerState::default()
                };
                let mut s = container_status(uid, c, true, done);
                s.started = Some(false);
                s
            }
        })
        .collect();

    status.phase = Some("Running".into());
    status.reason = None;
    status.message = None;
    status.conditions = Some(ordered);
    status.host_ip = Some(host_ip.to_string());
    status.host_ips = Some(vec![HostIP {
        ip: host_ip.to_string(),
    }]);
    status.pod_ip = Some(ip.to_string());
    status.pod_ips = Some(vec![PodIP { ip: ip.to_string() }]);
    status.start_time = Some(started_at);
    status.container_statuses = Some(container_statuses);
    status.init_container_statuses = (!init_statuses.is_empty()).then_some(init_statuses);
    status
}

fn running(since: Time) -> ContainerState {
    ContainerState {
        running: Some(ContainerStateRunning {
            started_at: Some(since),
        }),
        ..ContainerState::default()
    }
}

fn container_id(uid: &str, name: &str) -> String {
    format!("sim://{uid}/{name}")
}

fn container_status(
    uid: &str,
    c: &Container,
    ready: bool,
    state: ContainerState,
) -> ContainerStatus {
    let image = c.image.clone().unwrap_or_default();
    ContainerStatus {
        name: c.name.clone(),
        image_id: format!("sim://{image}"),
        image,
        container_id: Some(container_id(uid, &c.name)),
        ready,
        started: Some(true),
        restart_count: 0,
        state: Some(state),
        ..ContainerStatus::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
            "spec": {
                "nodeName": "sim-0001",
                "initContainers": [{"name": "init", "image": "busybox"}],
                "containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "redis:7"}],
            },
            "status": {"phase": "Pending", "qosClass": "BestEffort",
                "conditions": [{"type": "PodScheduled", "status": "True",
                    "lastTransitionTime": "2025-01-01T00:00:00Z"}]},
        }))
        .unwrap()
    }

    #[test]
    fn running_status_is_complete_and_stable() {
        let host = Ipv4Addr::new(10, 250, 0, 1);
        let ip = Ipv4Addr::new(100, 64, 0, 7);
        let mut p = pod();
        assert!(!is_running(&p, host, ip));
        let now = jiff::Timestamp::from_second(1_750_000_000).unwrap();
        let status = running_status(&p, host, ip, now);
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert_eq!(status.qos_class.as_deref(), Some("BestEffort"));
        assert_eq!(status.pod_ip.as_deref(), Some("100.64.0.7"));
        assert_eq!(status.host_ips.as_ref().unwrap()[0].ip, "10.250.0.1");
        let conditions = status.conditions.as_ref().unwrap();
        assert_eq!(conditions.len(), 5);
        assert!(conditions.iter().all(|c| c.status == "True"));
        let scheduled = conditions
            .iter()
            .find(|c| c.type_ == "PodScheduled")
            .unwrap();
        assert_eq!(
            scheduled
                .last_transition_time
                .as_ref()
                .unwrap()
                .0
                .to_string(),
            "2025-01-01T00:00:00Z",
            "a condition already true keeps its time"
        );
        let cs = status.container_statuses.as_ref().unwrap();
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[1].container_id.as_deref(), Some("sim://u1/b"));
        assert_eq!(cs[1].image, "redis:7");
        assert!(
            cs.iter()
                .all(|c| c.ready && c.started == Some(true) && c.restart_count == 0)
        );
        let init = &status.init_container_statuses.as_ref().unwrap()[0];
        assert_eq!(
            init.state
                .as_ref()
                .unwrap()
                .terminated
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("Completed")
        );
        p.status = Some(status.clone());
        assert!(is_running(&p, host, ip));
        assert!(!is_running(&p, host, Ipv4Addr::new(100, 64, 0, 8)));
        // Writing again later changes nothing: the reconcile is idempotent.
        let later = running_status(&p, host, ip, now + jiff::SignedDuration::from_secs(60));
        assert_eq!(later, status);
    }
}
