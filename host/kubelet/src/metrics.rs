//! Prometheus metrics of the node agent, named as the kubelet names them.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// The agent's metric families; cheap to clone.
#[derive(Clone)]
pub(crate) struct KubeletMetrics {
    pod_start: Histogram,
    restarts: Counter,
}

impl Default for KubeletMetrics {
    fn default() -> Self {
        KubeletMetrics {
            // 50 ms .. ~100 s.
            pod_start: Histogram::new(exponential_buckets(0.05, 2.0, 12)),
            restarts: Counter::default(),
        }
    }
}

impl KubeletMetrics {
    /// Register every family in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register_with_unit(
            "kubelet_pod_start_duration",
            "Time from the agent first seeing a pod to all its containers running",
            Unit::Seconds,
            self.pod_start.clone(),
        );
        registry.register(
            "kubelet_container_restarts",
            "Containers started again after their previous instance ended",
            self.restarts.clone(),
        );
    }

    /// A pod's containers all run, `took` after the agent first saw it.
    pub fn pod_started(&self, took: Duration) {
        self.pod_start.observe(took.as_secs_f64());
    }

    /// A container was restarted.
    pub fn container_restarted(&self) {
        self.restarts.inc();
    }
}
