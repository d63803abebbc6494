//! Prometheus metrics of the service proxy: connections relayed by the userspace mode and
//! the time each sync of the rules takes (`kubeproxy_sync_proxy_rules_duration_seconds`, as
//! kube-proxy names it).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabels {
    protocol: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabels {
    protocol: &'static str,
}

/// The proxy's metric families; cheap to clone.
#[derive(Clone)]
pub(crate) struct ProxyMetrics {
    connections: Family<ConnectionLabels, Counter>,
    active: Family<ProtocolLabels, Gauge>,
    sync: Histogram,
}

impl Default for ProxyMetrics {
    fn default() -> Self {
        ProxyMetrics {
            connections: Family::default(),
            active: Family::default(),
            // 1 ms .. ~16 s.
            sync: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
        }
    }
}

impl ProxyMetrics {
    /// Register every family in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "hortator_proxy_connections",
            "Client connections (TCP) and associations (UDP) by protocol and result (proxied, no_endpoint)",
            self.connections.clone(),
        );
        registry.register(
            "hortator_proxy_active_connections",
            "Connections and associations being relayed now, by protocol",
            self.active.clone(),
        );
        registry.register_with_unit(
            "kubeproxy_sync_proxy_rules_duration",
            "Time each sync of the proxy's listeners and rules takes",
            Unit::Seconds,
            self.sync.clone(),
        );
    }

    /// Count a new connection (`protocol` is `tcp` or `udp`); an endpoint was found or not.
    pub fn connection(&self, protocol: &'static str, proxied: bool) {
        let result = if proxied { "proxied" } else { "no_endpoint" };
        self.connections
            .get_or_create(&ConnectionLabels { protocol, result })
            .inc();
    }

    /// Count one relayed connection as active until the guard is dropped.
    pub fn relaying(&self, protocol: &'static str) -> Relaying {
        let gauge = self
            .active
            .get_or_create_owned(&ProtocolLabels { protocol });
        gauge.inc();
        Relaying(gauge)
    }

    /// A sync took `seconds`.
    pub fn synced(&self, seconds: f64) {
        self.sync.observe(seconds);
    }
}

/// Holds one count of `hortator_proxy_active_connections`.
pub(crate) struct Relaying(Gauge);

impl Drop for Relaying {
    fn drop(&mut self) {
        self.0.dec();
    }
}
