//! Prometheus metrics of the scheduler, named as kube-scheduler names them: attempts and
//! their latency by result and profile, and the pods waiting in each part of the queue.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::queue::Depths;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    result: &'static str,
    profile: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: &'static str,
}

/// The scheduler's metric families; cheap to clone.
#[derive(Clone)]
pub(crate) struct SchedulerMetrics {
    attempts: Family<AttemptLabels, Counter>,
    latency: Family<AttemptLabels, Histogram, fn() -> Histogram>,
    pending: Family<QueueLabels, Gauge>,
}

impl Default for SchedulerMetrics {
    fn default() -> Self {
        SchedulerMetrics {
            attempts: Family::default(),
            // 10 µs .. ~2.6 s.
            latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.000_01, 4.0, 10))
            }),
            pending: Family::default(),
        }
    }
}

/// What became of one scheduling attempt.
#[derive(Clone, Copy)]
pub(crate) enum Outcome {
    /// A node was chosen.
    Scheduled,
    /// No node fits.
    Unschedulable,
    /// The plugin failed or chose nonsense.
    Error,
}

/// The attempt counters and histograms of one profile, looked up once.
pub(crate) struct ProfileMetrics {
    by_outcome: [(Counter, Histogram); 3],
}

impl ProfileMetrics {
    /// Count one attempt that took `took`.
    pub fn attempt(&self, outcome: Outcome, took: Duration) {
        let (count, latency) = &self.by_outcome[outcome as usize];
        count.inc();
        latency.observe(took.as_secs_f64());
    }
}

impl SchedulerMetrics {
    /// Register every family in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "scheduler_schedule_attempts",
            "Scheduling attempts by result (scheduled, unschedulable, error) and profile",
            self.attempts.clone(),
        );
        registry.register_with_unit(
            "scheduler_scheduling_attempt_duration",
            "Latency of scheduling attempts (the plugin's decision) by result and profile",
            Unit::Seconds,
            self.latency.clone(),
        );
        registry.register(
            "scheduler_pending_pods",
            "Pending pods by queue (active, backoff, unschedulable)",
            self.pending.clone(),
        );
    }

    /// The handles of profile `profile`.
    pub fn profile(&self, profile: &str) -> ProfileMetrics {
        let handles = |result: &'static str| {
            let labels = AttemptLabels {
                result,
                profile: profile.to_string(),
            };
            (
                self.attempts.get_or_create_owned(&labels),
                self.latency.get_or_create_owned(&labels),
            )
        };
        ProfileMetrics {
            by_outcome: [
                handles("scheduled"),
                handles("unschedulable"),
                handles("error"),
            ],
        }
    }

    /// Publish the queue's depths.
    pub fn queue(&self, depths: Depths) {
        for (queue, count) in [
            ("active", depths.active),
            ("backoff", depths.backoff),
            ("unschedulable", depths.unschedulable),
        ] {
            self.pending
                .get_or_create(&QueueLabels { queue })
                .set(count as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_and_queue_depths_are_exposed() {
        let metrics = SchedulerMetrics::default();
        let profile = metrics.profile("default-scheduler");
        profile.attempt(Outcome::Scheduled, Duration::from_micros(50));
        profile.attempt(Outcome::Unschedulable, Duration::from_micros(70));
        profile.attempt(Outcome::Scheduled, Duration::from_micros(20));
        metrics.queue(Depths {
            active: 3,
            backoff: 1,
            unschedulable: 2,
        });
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            "scheduler_schedule_attempts_total{result=\"scheduled\",profile=\"default-scheduler\"} 2",
            "scheduler_schedule_attempts_total{result=\"unschedulable\",profile=\"default-scheduler\"} 1",
            "scheduler_schedule_attempts_total{result=\"error\",profile=\"default-scheduler\"} 0",
            "scheduler_scheduling_attempt_duration_seconds_count{result=\"scheduled\",profile=\"default-scheduler\"} 2",
            "scheduler_pending_pods{queue=\"unschedulable\"} 2",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
