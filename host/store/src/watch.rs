//! In-memory event ring and watch streams.
//!
//! The writer appends every committed event to a bounded ring (contiguous in revision) and
//! then bumps a `tokio::sync::watch` channel. Each watcher keeps its own cursor: it copies
//! matching events out of the ring, falls back to the RocksDB log when it is behind the ring
//! (history or lag), and parks on the watch channel when caught up. Writers never wait on
//! watchers and a slow watcher never loses events.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::rocks::Shared;
use crate::{Event, Revision, StoreError, WatchStream};

/// Events copied out per step (bounds lock hold time and memory per watcher).
const STEP: usize = 1024;

/// Bounded ring of the most recent events; covers revisions `[first_rev, first_rev + len)`.
pub(crate) struct Hub {
    ring: Mutex<Ring>,
    capacity: usize,
}

struct Ring {
    first_rev: Revision,
    events: VecDeque<Event>,
}

impl Hub {
    /// `first_rev` is the revision of `events[0]` (or current revision + 1 if empty).
    pub(crate) fn new(capacity: usize, first_rev: Revision, events: VecDeque<Event>) -> Self {
        Hub {
            ring: Mutex::new(Ring { first_rev, events }),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        // A poisoned lock only means a panic elsewhere; the ring itself stays consistent.
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Append consecutive events (called by the writer after a durable commit).
    pub(crate) fn push(&self, events: Vec<Event>) {
        let mut ring = self.lock();
        for ev in events {
            let expected = ring.first_rev + ring.events.len() as Revision;
            if ev.revision() != expected {
                // Should not happen; keep the contiguity invariant by restarting the ring.
                tracing::warn!(expected, got = ev.revision(), "watch ring discontinuity");
                ring.events.clear();
                ring.first_rev = ev.revision();
            }
            ring.events.push_back(ev);
            if ring.events.len() > self.capacity {
                ring.events.pop_front();
                ring.first_rev += 1;
            }
        }
    }

    /// Drop events at or below a compaction point.
    pub(crate) fn trim(&self, compacted: Revision) {
        let mut ring = self.lock();
        while ring.first_rev <= compacted && !ring.events.is_empty() {
            ring.events.pop_front();
            ring.first_rev += 1;
        }
    }
}

enum Step {
    Got,
    FromLog { end: Revision },
    Wait,
}

struct Watcher {
    shared: Arc<Shared>,
    prefix: Vec<u8>,
    /// Last revision examined (everything <= cursor was delivered or filtered out).
    cursor: Revision,
    rx: watch::Receiver<Revision>,
    buf: VecDeque<Event>,
    done: bool,
}

impl Watcher {
    async fn next_item(&mut self) -> Option<Result<Event, StoreError>> {
        loop {
            if let Some(ev) = self.buf.pop_front() {
                return Some(Ok(ev));
            }
            if self.done {
                return None;
            }
            // Mark the current notification as seen *before* looking at the ring, so a push
            // that happens after the look is guaranteed to wake `changed()` below.
            self.rx.mark_unchanged();
            match self.step_ring() {
                Step::Got => continue,
                Step::Wait => {
                    if self.rx.changed().await.is_err() {
                        self.done = true;
                        return Some(Err(StoreError::Closed));
                    }
                }
                Step::FromLog { end } => {
                    let from = self.cursor + 1;
                    let to = end.min(from + STEP as Revision);
                    let shared = self.shared.clone();
                    let prefix = self.prefix.clone();
                    let res = tokio::task::spawn_blocking(move || {
                        shared.read_log_for_watch(&prefix, from, to)
                    })
                    .await
                    .unwrap_or_else(|e| Err(StoreError::Backend(format!("log reader: {e}"))));
                    match res {
                        Ok(events) => {
                            self.buf.extend(events);
                            self.cursor = to - 1;
                        }
                        Err(e) => {
                            self.done = true;
                            return Some(Err(e));
                        }
                    }
                }
            }
        }
    }

    fn step_ring(&mut self) -> Step {
        let ring = self.shared.hub.lock();
        let next = self.cursor + 1;
        if next < ring.first_rev {
            return Step::FromLog {
                end: ring.first_rev,
            };
        }
        let idx = (next - ring.first_rev) as usize;
        if idx >= ring.events.len() {
            return Step::Wait;
        }
        let end = (idx + STEP).min(ring.events.len());
        for ev in ring.events.range(idx..end) {
            if ev.kv.key.starts_with(&self.prefix) {
                self.buf.push_back(ev.clone());
            }
        }
        self.cursor = ring.first_rev + end as Revision - 1;
        Step::Got
    }
}

/// Build a watch stream for `prefix` delivering events with revision > `after`.
pub(crate) fn stream(
    shared: Arc<Shared>,
    rx: watch::Receiver<Revision>,
    prefix: Vec<u8>,
    after: Revision,
) -> WatchStream {
    let w = Watcher {
        shared,
        prefix,
        cursor: after.max(0),
        rx,
        buf: VecDeque::new(),
        done: false,
    };
    Box::pin(futures::stream::unfold(w, |mut w| async move {
        let item = w.next_item().await?;
        Some((item, w))
    }))
}
