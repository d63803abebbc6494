//! Hortator's controllers: level-triggered reconcile loops over watched API objects, in the
//! manner of kube-controller-manager.
//!
//! Each controller is a `kube::runtime::Controller` (or a watcher feeding one reconcile
//! function) with a `reconcile` that is idempotent and an `error_policy` that requeues with a
//! back-off. They talk only to the API, so any of them can restart at any time.
//!
//! * replication — ReplicationControllers and ReplicaSets keep N pods, adopt and release them;
//! * deployment — Deployments roll ReplicaSets (RollingUpdate, Recreate), keep revisions;
//! * endpoints — Endpoints from services' selectors and ready pods;
//! * node lifecycle — silent nodes become NotReady, then their pods are evicted;
//! * namespace — a deleted namespace is emptied, then finalized;
//! * garbage — dependents follow their owners (background, foreground, orphan);
//! * pod GC — terminated pods beyond a threshold, pods of vanished nodes and unscheduled
//!   terminating pods are deleted.

mod deployment;
mod endpoints;
mod garbage;
mod namespace;
mod node_lifecycle;
mod pod_gc;
mod replication;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

/// The dynamic-client description of a served resource.
pub(crate) fn api_resource(info: &hortator_api::registry::ResourceInfo) -> kube::api::ApiResource {
    kube::api::ApiResource {
        group: info.group.to_string(),
        version: info.version.to_string(),
        api_version: info.api_version(),
        kind: info.kind.to_string(),
        plural: info.plural.to_string(),
    }
}

/// Settings of the controllers (`[controllers]` in `hortator.toml`).
#[derive(Clone, Debug)]
pub struct ControllersConfig {
    /// How long a node may go without a heartbeat before it is marked NotReady.
    pub node_monitor_grace_period: Duration,
    /// How long a node stays NotReady before its pods are deleted.
    pub pod_eviction_timeout: Duration,
    /// How many terminated pods may exist before the oldest are deleted.
    pub terminated_pod_gc_threshold: usize,
}

impl Default for ControllersConfig {
    fn default() -> Self {
        ControllersConfig {
            node_monitor_grace_period: Duration::from_secs(40),
            pod_eviction_timeout: Duration::from_secs(300),
            terminated_pod_gc_threshold: 12_500,
        }
    }
}

/// Why a reconcile failed; the controller retries it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The API refused or could not be reached.
    #[error("API request failed: {0}")]
    Api(#[from] kube::Error),
}

/// The running controllers. Dropping the handle stops them.
pub struct Controllers {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Controllers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Start every controller against the API behind `client`. Must be called inside a Tokio
/// runtime.
pub fn spawn(client: kube::Client, config: ControllersConfig) -> Controllers {
    let config = Arc::new(config);
    let tasks = vec![
        tokio::spawn(replication::run_replication_controllers(client.clone())),
        tokio::spawn(replication::run_replica_sets(client.clone())),
        tokio::spawn(deployment::run(client.clone())),
        tokio::spawn(endpoints::run(client.clone())),
        tokio::spawn(node_lifecycle::run(client.clone(), config.clone())),
        tokio::spawn(namespace::run(client.clone())),
        tokio::spawn(garbage::run(client.clone())),
        tokio::spawn(pod_gc::run(client, config)),
    ];
    Controllers { tasks }
}
