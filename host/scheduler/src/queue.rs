//! The scheduling queue: pending pods in priority order, then first come
//! first served; pods that did not fit wait until the cluster changes (or a
//! minute passes) and back off exponentially between attempts.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;

/// First wait after a failed attempt; doubles per attempt up to [`MAX_BACKOFF`].
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// An unschedulable pod is retried after this long even if nothing changed.
pub const UNSCHEDULABLE_FLUSH: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Waiting for its turn.
    Active,
    /// Waiting until the instant, then active.
    Backoff(Instant),
    /// Did not fit; waits for a cluster change (or the flush).
    Unschedulable { until: Instant },
    /// Handed out by `pop`; the caller reports the outcome.
    InFlight,
    /// A binding is on its way; the pod leaves the queue once the watch
    /// shows it bound, or returns if the binding fails.
    Binding,
}

struct Queued {
    pod: Arc<Pod>,
    priority: i32,
    place: Place,
    attempts: u32,
    /// The sequence number of this pod's live heap entry.
    seq: u64,
}

#[derive(PartialEq, Eq)]
struct Ticket {
    priority: i32,
    seq: u64,
    uid: Arc<str>,
}

impl Ord for Ticket {
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Ticket {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// How many pods wait in each part of the queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depths {
    /// Ready to be tried (or being tried).
    pub active: usize,
    /// Waiting out a back-off.
    pub backoff: usize,
    /// Waiting for the cluster to change.
    pub unschedulable: usize,
}

/// Pending pods by uid and where each one waits.
#[derive(Default)]
pub struct Queue {
    pods: HashMap<Arc<str>, Queued>,
    active: BinaryHeap<Ticket>,
    backoff: BinaryHeap<Reverse<(Instant, u64, Arc<str>)>>,
    /// Pods in `Place::Unschedulable`.
    unschedulable: HashSet<Arc<str>>,
    /// When each unschedulable pod is flushed, by sequence number.
    flush: BinaryHeap<Reverse<(Instant, u64, Arc<str>)>>,
    next_seq: u64,
}

impl Queue {
    /// Add a pending pod, or record its new version. A changed pod that was
    /// unschedulable gets another attempt after its backoff.
    pub fn upsert(&mut self, uid: &str, pod: Arc<Pod>, now: Instant) {
        let priority = pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
        if let Some(queued) = self.pods.get_mut(uid) {
            queued.pod = pod;
            if let Place::Unschedulable { until, .. } = queued.place {
                self.schedule_at(uid, until.max(now), now);
            }
            return;
        }
        let uid: Arc<str> = uid.into();
        self.pods.insert(
            uid.clone(),
            Queued {
                pod,
                priority,
                place: Place::Active,
                attempts: 0,
                seq: 0,
            },
        );
        self.activate(&uid);
    }

    /// Forget a pod (bound, deleted, or no longer ours).
    pub fn remove(&mut self, uid: &str) -> Option<Arc<Pod>> {
        self.unschedulable.remove(uid);
        self.pods.remove(uid).map(|q| q.pod)
    }

    /// The next pod to schedule, marked in flight.
    pub fn pop(&mut self, now: Instant) -> Option<Arc<Pod>> {
        self.promote(now);
        while let Some(ticket) = self.active.pop() {
            if let Some(queued) = self.pods.get_mut(&ticket.uid)
                && queued.seq == ticket.seq
                && queued.place == Place::Active
            {
                queued.place = Place::InFlight;
                return Some(queued.pod.clone());
            }
        }
        None
    }

    /// The in-flight pod is being bound.
    pub fn binding(&mut self, uid: &str) {
        if let Some(queued) = self.pods.get_mut(uid) {
            queued.place = Place::Binding;
        }
    }

    /// The pod did not fit: wait for a cluster change, then back off.
    pub fn unschedulable(&mut self, uid: &str, now: Instant) {
        let seq = self.next_seq();
        let Some(uid) = self.key(uid) else {
            return;
        };
        if let Some(queued) = self.pods.get_mut(&uid) {
            queued.attempts += 1;
            queued.seq = seq;
            let until = now + backoff(queued.attempts);
            queued.place = Place::Unschedulable { until };
            self.flush
                .push(Reverse((now + UNSCHEDULABLE_FLUSH, seq, uid.clone())));
            self.unschedulable.insert(uid);
        }
    }

    /// Scheduling or binding failed for another reason: retry after a backoff.
    pub fn retry(&mut self, uid: &str, now: Instant) {
        if let Some(queued) = self.pods.get_mut(uid) {
            queued.attempts += 1;
            let at = now + backoff(queued.attempts);
            self.schedule_at(uid, at, now);
        }
    }

    /// The cluster changed in a way that may help: every unschedulable pod
    /// gets another attempt once its backoff has passed.
    pub fn cluster_changed(&mut self, now: Instant) {
        for uid in std::mem::take(&mut self.unschedulable) {
            if let Some(Place::Unschedulable { until, .. }) = self.pods.get(&uid).map(|q| q.place) {
                self.schedule_at(&uid, until, now);
            }
        }
    }

    /// When `pop` may next have something that is not there now.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let backoff = self.backoff.peek().map(|Reverse((at, _, _))| *at);
        let flush = self.flush.peek().map(|Reverse((at, _, _))| *at);
        backoff.into_iter().chain(flush).min()
    }

    /// The pods in each part of the queue (bindings in flight are not counted).
    pub fn depths(&self) -> Depths {
        let mut depths = Depths::default();
        for queued in self.pods.values() {
            match queued.place {
                Place::Active | Place::InFlight => depths.active += 1,
                Place::Backoff(_) => depths.backoff += 1,
                Place::Unschedulable { .. } => depths.unschedulable += 1,
                Place::Binding => {}
            }
        }
        depths
    }

    /// Whether `pop` would return a pod now.
    pub fn has_active(&self) -> bool {
        !self.active.is_empty()
    }

    fn key(&self, uid: &str) -> Option<Arc<str>> {
        self.pods.get_key_value(uid).map(|(k, _)| k.clone())
    }

    fn schedule_at(&mut self, uid: &str, at: Instant, now: Instant) {
        let seq = self.next_seq();
        let Some(uid) = self.key(uid) else {
            return;
        };
        self.unschedulable.remove(&uid);
        let Some(queued) = self.pods.get_mut(&uid) else {
            return;
        };
        queued.seq = seq;
        if at <= now {
            queued.place = Place::Active;
            self.active.push(Ticket {
                priority: queued.priority,
                seq,
                uid: uid.clone(),
            });
        } else {
            queued.place = Place::Backoff(at);
            self.backoff.push(Reverse((at, seq, uid.clone())));
        }
    }

    fn activate(&mut self, uid: &Arc<str>) {
        let seq = self.next_seq();
        self.unschedulable.remove(uid);
        if let Some(queued) = self.pods.get_mut(uid) {
            queued.seq = seq;
            queued.place = Place::Active;
            self.active.push(Ticket {
                priority: queued.priority,
                seq,
                uid: uid.clone(),
            });
        }
    }

    /// Backoffs that ended, and unschedulable pods that waited a full flush
    /// interval, become active.
    fn promote(&mut self, now: Instant) {
        while let Some(Reverse((at, seq, uid))) = self.backoff.peek().cloned() {
            if at > now {
                break;
            }
            self.backoff.pop();
            if self
                .pods
                .get(&uid)
                .is_some_and(|q| q.seq == seq && q.place == Place::Backoff(at))
            {
                self.activate(&uid);
            }
        }
        while let Some(Reverse((at, seq, uid))) = self.flush.peek().cloned() {
            if at > now {
                break;
            }
            self.flush.pop();
            if self
                .pods
                .get(&uid)
                .is_some_and(|q| q.seq == seq && matches!(q.place, Place::Unschedulable { .. }))
            {
                self.activate(&uid);
            }
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }
}

/// The wait before attempt `attempts + 1`: 1 s, 2 s, 4 s, 8 s, then 10 s.
fn backoff(attempts: u32) -> Duration {
    INITIAL_BACKOFF
        .saturating_mul(1u32 << attempts.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, priority: i32) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "uid": name},
                "spec": {"containers": [], "priority": priority}
            }))
            .unwrap(),
        )
    }

    fn name(pod: Option<Arc<Pod>>) -> Option<String> {
        pod.and_then(|p| p.metadata.name.clone())
    }

    #[test]
    fn priority_then_fifo() {
        let now = Instant::now();
        let mut q = Queue::default();
        for (n, p) in [("a", 0), ("b", 10), ("c", 0), ("d", 10)] {
            q.upsert(n, pod(n, p), now);
        }
        let order: Vec<_> = std::iter::from_fn(|| name(q.pop(now))).collect();
        assert_eq!(order, ["b", "d", "a", "c"]);
        assert_eq!(q.pods.len(), 4, "in-flight pods stay until removed");
    }

    #[test]
    fn unschedulable_waits_for_a_change_then_backs_off() {
        let t0 = Instant::now();
        let mut q = Queue::default();
        q.upsert("a", pod("a", 0), t0);
        assert_eq!(name(q.pop(t0)).as_deref(), Some("a"));
        q.unschedulable("a", t0);
        assert!(
            q.pop(t0 + Duration::from_secs(5)).is_none(),
            "no change yet"
        );
        q.cluster_changed(t0 + Duration::from_millis(100));
        assert!(q.pop(t0 + Duration::from_millis(500)).is_none(), "backoff");
        assert_eq!(q.next_wakeup(), Some(t0 + INITIAL_BACKOFF));
        assert_eq!(name(q.pop(t0 + INITIAL_BACKOFF)).as_deref(), Some("a"));
        // The second failure backs off twice as long.
        q.unschedulable("a", t0);
        q.cluster_changed(t0 + Duration::from_secs(5));
        assert_eq!(
            name(q.pop(t0 + Duration::from_secs(5))).as_deref(),
            Some("a")
        );
    }

    #[test]
    fn unschedulable_pods_are_flushed_after_a_minute() {
        let t0 = Instant::now();
        let mut q = Queue::default();
        q.upsert("a", pod("a", 0), t0);
        q.pop(t0);
        q.unschedulable("a", t0);
        assert_eq!(q.next_wakeup(), Some(t0 + UNSCHEDULABLE_FLUSH));
        assert!(q.pop(t0 + Duration::from_secs(59)).is_none());
        assert!(q.pop(t0 + UNSCHEDULABLE_FLUSH).is_some());
    }

    #[test]
    fn binding_pods_are_not_handed_out_again() {
        let now = Instant::now();
        let mut q = Queue::default();
        q.upsert("a", pod("a", 0), now);
        q.pop(now);
        q.binding("a");
        q.upsert("a", pod("a", 0), now);
        q.cluster_changed(now);
        assert!(q.pop(now).is_none());
        q.retry("a", now);
        assert!(q.pop(now).is_none());
        assert!(q.pop(now + INITIAL_BACKOFF).is_some());
        assert!(q.remove("a").is_some());
        assert!(q.pop(now + MAX_BACKOFF).is_none());
    }

    #[test]
    fn backoff_grows_to_the_cap() {
        let secs: Vec<u64> = (1..=6).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 10, 10]);
    }
}
