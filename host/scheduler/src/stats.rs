//! Counters of the scheduler's work, for benchmarks and diagnostics.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What the scheduler has done so far.
#[derive(Default)]
pub struct Stats {
    schedule_calls: AtomicU64,
    schedule_nanos: AtomicU64,
    update_calls: AtomicU64,
    update_events: AtomicU64,
    update_nanos: AtomicU64,
    unschedulable: AtomicU64,
    bound: AtomicU64,
    bind_failures: AtomicU64,
    records_dropped: AtomicU64,
    binds: Mutex<Option<(Instant, Instant)>>,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatsSnapshot {
    /// `schedule` calls made to plugins.
    pub schedule_calls: u64,
    /// Time spent in those calls, host side (includes crossing the boundary).
    pub schedule_time: Duration,
    /// `update` calls made to plugins (a batch of cluster changes each).
    pub update_calls: u64,
    /// Cluster changes sent with them.
    pub update_events: u64,
    /// Time spent in those calls.
    pub update_time: Duration,
    /// Attempts that found no node.
    pub unschedulable: u64,
    /// Pods bound.
    pub bound: u64,
    /// Bindings the API refused or that failed.
    pub bind_failures: u64,
    /// Events and conditions not written because the writer fell behind.
    pub records_dropped: u64,
    /// When the first and the latest binding was acknowledged.
    pub binds: Option<(Instant, Instant)>,
}

impl Stats {
    pub(crate) fn scheduled(&self, took: Duration) {
        self.schedule_calls.fetch_add(1, Ordering::Relaxed);
        self.schedule_nanos
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    pub(crate) fn updated(&self, events: usize, took: Duration) {
        self.update_calls.fetch_add(1, Ordering::Relaxed);
        self.update_events
            .fetch_add(events as u64, Ordering::Relaxed);
        self.update_nanos
            .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }

    pub(crate) fn unschedulable(&self) {
        self.unschedulable.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn bound(&self) {
        let now = Instant::now();
        let mut binds = self.binds.lock().expect("stats lock");
        *binds = Some(binds.map_or((now, now), |(first, _)| (first, now)));
        self.bound.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn bind_failed(&self) {
        self.bind_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one dropped record; returns the total.
    pub(crate) fn record_dropped(&self) -> u64 {
        self.records_dropped.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            schedule_calls: self.schedule_calls.load(Ordering::Relaxed),
            schedule_time: Duration::from_nanos(self.schedule_nanos.load(Ordering::Relaxed)),
            update_calls: self.update_calls.load(Ordering::Relaxed),
            update_events: self.update_events.load(Ordering::Relaxed),
            update_time: Duration::from_nanos(self.update_nanos.load(Ordering::Relaxed)),
            unschedulable: self.unschedulable.load(Ordering::Relaxed),
            bound: self.bound.load(Ordering::Relaxed),
            bind_failures: self.bind_failures.load(Ordering::Relaxed),
            records_dropped: self.records_dropped.load(Ordering::Relaxed),
            binds: *self.binds.lock().expect("stats lock"),
        }
    }
}
