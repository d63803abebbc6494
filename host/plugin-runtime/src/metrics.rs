//! Per-plugin call metrics: calls, errors by kind, latency histogram; and their Prometheus
//! exposition.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use crate::error::CallError;
use crate::manager::PluginManager;

/// Upper bounds (seconds) of the latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005, 0.025, 0.1,
    1.0,
];

/// Counters of one plugin; shared by every instance of it.
#[derive(Debug, Default)]
pub struct Metrics {
    calls: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    traps: AtomicU64,
    out_of_memory: AtomicU64,
    malformed: AtomicU64,
    latency_nanos: AtomicU64,
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
}

/// A point-in-time copy of [`Metrics`].
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsSnapshot {
    /// Calls made (successful or not).
    pub calls: u64,
    /// Calls that failed for any reason.
    pub errors: u64,
    /// Calls that ran past their deadline.
    pub timeouts: u64,
    /// Calls that trapped.
    pub traps: u64,
    /// Calls that hit the memory cap.
    pub out_of_memory: u64,
    /// Calls whose output was rejected.
    pub malformed: u64,
    /// Total time spent in calls, seconds.
    pub latency_seconds_sum: f64,
    /// Cumulative count of calls per bucket of [`LATENCY_BUCKETS`].
    pub latency_buckets: Vec<u64>,
}

impl Metrics {
    fn observe(&self, elapsed: Duration) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.latency_nanos
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
        let seconds = elapsed.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn record_ok(&self, elapsed: Duration) {
        self.observe(elapsed);
    }

    pub(crate) fn record_error(&self, err: &CallError, elapsed: Duration) {
        self.observe(elapsed);
        self.count_error(err);
    }

    /// A call already counted as successful whose output was then rejected.
    pub(crate) fn reclassify_as_error(&self, err: &CallError) {
        self.count_error(err);
    }

    fn count_error(&self, err: &CallError) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let counter = match err {
            CallError::Timeout(_) => &self.timeouts,
            CallError::OutOfMemory(_) => &self.out_of_memory,
            CallError::Trap(_) | CallError::Restart(_) => &self.traps,
            CallError::Malformed(_) => &self.malformed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Copy the counters.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let mut cumulative = 0;
        let latency_buckets = self
            .buckets
            .iter()
            .map(|b| {
                cumulative += b.load(Ordering::Relaxed);
                cumulative
            })
            .collect();
        MetricsSnapshot {
            calls: self.calls.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            traps: self.traps.load(Ordering::Relaxed),
            out_of_memory: self.out_of_memory.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            latency_seconds_sum: self.latency_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            latency_buckets,
        }
    }
}

/// Exposes the call metrics of every active plugin to Prometheus at scrape time:
/// `hortator_plugin_calls_total`, `hortator_plugin_call_errors_total` (by reason) and
/// `hortator_plugin_call_duration_seconds`, labelled by extension point and plugin name.
pub(crate) struct PluginCollector(pub(crate) Arc<PluginManager>);

impl std::fmt::Debug for PluginCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PluginCollector")
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabels {
    point: String,
    plugin: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    point: String,
    plugin: String,
    reason: &'static str,
}

impl Collector for PluginCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let plugins: Vec<(PluginLabels, MetricsSnapshot)> = self
            .0
            .list()
            .into_iter()
            .filter_map(|status| {
                let active = status.active?;
                let labels = PluginLabels {
                    point: status.point,
                    plugin: active.name,
                };
                Some((labels, active.metrics))
            })
            .collect();
        let mut calls = encoder.encode_descriptor(
            "hortator_plugin_calls",
            "Calls made to plugins, by extension point and plugin",
            None,
            MetricType::Counter,
        )?;
        for (labels, metrics) in &plugins {
            calls
                .encode_family(labels)?
                .encode_counter::<NoLabelSet, _, u64>(&metrics.calls, None)?;
        }
        let mut errors = encoder.encode_descriptor(
            "hortator_plugin_call_errors",
            "Plugin calls that failed, by extension point, plugin and reason",
            None,
            MetricType::Counter,
        )?;
        for (labels, metrics) in &plugins {
            for (reason, count) in [
                ("timeout", metrics.timeouts),
                ("trap", metrics.traps),
                ("out_of_memory", metrics.out_of_memory),
                ("malformed", metrics.malformed),
            ] {
                let labels = ErrorLabels {
                    point: labels.point.clone(),
                    plugin: labels.plugin.clone(),
                    reason,
                };
                errors
                    .encode_family(&labels)?
                    .encode_counter::<NoLabelSet, _, u64>(&count, None)?;
            }
        }
        let unit = Unit::Seconds;
        let mut latency = encoder.encode_descriptor(
            "hortator_plugin_call_duration",
            "Latency of plugin calls, by extension point and plugin",
            Some(&unit),
            MetricType::Histogram,
        )?;
        for (labels, metrics) in &plugins {
            let mut previous = 0;
            let mut buckets: Vec<(f64, u64)> = LATENCY_BUCKETS
                .iter()
                .zip(&metrics.latency_buckets)
                .map(|(bound, cumulative)| {
                    // The counters are read one by one while calls go on.
                    let in_bucket = cumulative.saturating_sub(previous);
                    previous = *cumulative;
                    (*bound, in_bucket)
                })
                .collect();
            buckets.push((f64::INFINITY, metrics.calls.saturating_sub(previous)));
            latency
                .encode_family(labels)?
                .encode_histogram::<NoLabelSet>(
                    metrics.latency_seconds_sum,
                    metrics.calls,
                    &buckets,
                    None,
                )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_errors_counted_by_kind() {
        let m = Metrics::default();
        m.record_ok(Duration::from_micros(3));
        m.record_ok(Duration::from_micros(30));
        m.record_error(
            &CallError::Timeout(Duration::from_millis(10)),
            Duration::from_millis(11),
        );
        m.reclassify_as_error(&CallError::Malformed("x".into()));
        let s = m.snapshot();
        assert_eq!(s.calls, 3);
        assert_eq!(s.errors, 2);
        assert_eq!((s.timeouts, s.malformed, s.traps), (1, 1, 0));
        assert_eq!(s.latency_buckets[0], 1);
        assert_eq!(s.latency_buckets[3], 2);
        assert_eq!(*s.latency_buckets.last().unwrap(), 3);
    }
}
