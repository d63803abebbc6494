//! Hortator's scheduler: the mechanics around a scheduler plugin.
//!
//! The host side watches nodes, pods, services and replication controllers
//! through the API, keeps a mirror of which pod occupies which node, and
//! streams every change into the plugin of each scheduler profile (one
//! profile per `spec.schedulerName`, see `[[plugins.scheduler]]`). Pending
//! pods wait in a queue (priority, then first come first served); for each
//! one the profile's plugin is asked for a node. The placement is assumed at
//! once — the plugins hear `pod-assigned` before the binding is written — and
//! confirmed when the watch shows the pod bound; a failed binding is undone
//! and the pod retried. Pods that fit nowhere get a `FailedScheduling` Event
//! and `PodScheduled=False`, and wait until the cluster changes (or a minute
//! passes), backing off from 1 s to 10 s between attempts.
//!
//! A pod is never bound twice: the API server refuses a second binding, and
//! the scheduler does not hand out a pod again while its binding is in
//! flight. A pod is never lost: it stays pending in the API until a binding
//! succeeds, so a restarted scheduler or a swapped plugin (which is replayed
//! the whole cluster before its first decision) picks it up again.

mod convert;
mod metrics;
mod queue;
mod recorder;
mod scheduler;
mod stats;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hortator_plugin_runtime::PluginManager;

pub use crate::recorder::unschedulable_message;
pub use crate::stats::{Stats, StatsSnapshot};

/// A running scheduler. Dropping the handle stops it.
pub struct SchedulerHandle {
    stats: Arc<Stats>,
    metrics: metrics::SchedulerMetrics,
    stop: Arc<AtomicBool>,
}

impl SchedulerHandle {
    /// What the scheduler has done so far.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Register the scheduler's metric families (attempts, their latency, pending pods)
    /// in `registry`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.metrics.register(registry);
    }
}

impl Drop for SchedulerHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Start scheduling with the profiles of `plugins`, talking to the API
/// through `client`. Must be called inside a Tokio runtime, which runs the
/// watchers and bindings; the plugin calls run on a thread of their own.
pub fn spawn(
    client: kube::Client,
    plugins: Arc<PluginManager>,
) -> std::io::Result<SchedulerHandle> {
    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let metrics = metrics::SchedulerMetrics::default();
    scheduler::start(
        client,
        plugins,
        stats.clone(),
        metrics.clone(),
        stop.clone(),
    )?;
    Ok(SchedulerHandle {
        stats,
        metrics,
        stop,
    })
}
