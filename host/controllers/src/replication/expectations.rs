//! Expectations: the pods a controller created or deleted and has not yet seen in its pod
//! cache. While any are outstanding the controller does not create or delete more, so a
//! watch lagging behind its own writes cannot make it overshoot (Kubernetes'
//! `ControllerExpectations`, keyed by pod UID instead of counts).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;

use super::pods::controller_of;

/// After this long, outstanding expectations are dropped: a missed watch event must not
/// stall a controller forever.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(120);

/// What the pod cache shows of one pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// No pod of that name and UID.
    Absent,
    /// Present, not being deleted.
    Present,
    /// Present, with a deletion timestamp.
    Deleting,
}

/// Outstanding writes of one controller.
#[derive(Debug)]
struct Pending {
    /// Created pods not yet seen: UID → name.
    creates: HashMap<String, String>,
    /// Deleted pods still seen alive: UID → name.
    deletes: HashMap<String, String>,
    /// When the oldest outstanding write was recorded.
    since: Instant,
}

/// The outstanding writes of every controller, by controller UID.
#[derive(Debug, Default)]
pub(crate) struct Expectations {
    pending: Mutex<HashMap<String, Pending>>,
}

impl Expectations {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn entry<'a>(pending: &'a mut HashMap<String, Pending>, controller: &str) -> &'a mut Pending {
        pending
            .entry(controller.to_string())
            .or_insert_with(|| Pending {
                creates: HashMap::new(),
                deletes: HashMap::new(),
                since: Instant::now(),
            })
    }

    /// Controller `controller` created pod `name` with UID `uid`.
    pub(crate) fn expect_create(&self, controller: &str, uid: &str, name: &str) {
        let mut pending = self.lock();
        Self::entry(&mut pending, controller)
            .creates
            .insert(uid.to_string(), name.to_string());
    }

    /// Controller `controller` is deleting pod `name` with UID `uid`.
    pub(crate) fn expect_delete(&self, controller: &str, uid: &str, name: &str) {
        let mut pending = self.lock();
        Self::entry(&mut pending, controller)
            .deletes
            .insert(uid.to_string(), name.to_string());
    }

    /// The delete of pod `uid` failed: it is not expected any more.
    pub(crate) fn delete_failed(&self, controller: &str, uid: &str) {
        let mut pending = self.lock();
        if let Some(p) = pending.get_mut(controller) {
            p.deletes.remove(uid);
            if p.creates.is_empty() && p.deletes.is_empty() {
                pending.remove(controller);
            }
        }
    }

    /// A watch event about `pod` (`deleted` when it is gone).
    pub(crate) fn observe(&self, pod: &Pod, deleted: bool) {
        let (Some(owner), Some(uid)) = (controller_of(pod), pod.metadata.uid.as_deref()) else {
            return;
        };
        let mut pending = self.lock();
        if let Some(p) = pending.get_mut(&owner.uid) {
            p.creates.remove(uid);
            if deleted || pod.metadata.deletion_timestamp.is_some() {
                p.deletes.remove(uid);
            }
            if p.creates.is_empty() && p.deletes.is_empty() {
                pending.remove(&owner.uid);
            }
        }
    }

    /// Whether controller `controller` may create or delete pods: every expected write has
    /// been seen through `seen(name, uid)`, or they timed out. Otherwise how long until they
    /// time out.
    pub(crate) fn satisfied(
        &self,
        controller: &str,
        seen: impl Fn(&str, &str) -> Seen,
    ) -> Result<(), Duration> {
        let mut pending = self.lock();
        let Some(p) = pending.get_mut(controller) else {
            return Ok(());
        };
        p.creates
            .retain(|uid, name| seen(name, uid) == Seen::Absent);
        p.deletes
            .retain(|uid, name| seen(name, uid) == Seen::Present);
        let elapsed = p.since.elapsed();
        if (p.creates.is_empty() && p.deletes.is_empty()) || elapsed >= TIMEOUT {
            if !p.creates.is_empty() || !p.deletes.is_empty() {
                tracing::warn!(
                    controller,
                    creates = p.creates.len(),
                    deletes = p.deletes.len(),
                    "expected pod changes not observed in time; resyncing"
                );
            }
            pending.remove(controller);
            return Ok(());
        }
        Err(TIMEOUT - elapsed)
    }

    /// Drop what is expected of controller `controller` (it was deleted).
    pub(crate) fn forget(&self, controller: &str) {
        self.lock().remove(controller);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(uid: &str, owner: &str, deleting: bool) -> Pod {
        let mut meta = json!({
            "name": format!("p-{uid}"), "uid": uid,
            "ownerReferences": [{"apiVersion": "v1", "kind": "ReplicationController",
                "name": "rc", "uid": owner, "controller": true}],
        });
        if deleting {
            meta["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        }
        serde_json::from_value(json!({"metadata": meta})).unwrap()
    }

    #[test]
    fn creates_are_satisfied_by_the_cache_or_an_event() {
        let e = Expectations::default();
        assert_eq!(e.satisfied("rc", |_, _| Seen::Absent), Ok(()));
        e.expect_create("rc", "a", "p-a");
        e.expect_create("rc", "b", "p-b");
        assert!(e.satisfied("rc", |_, _| Seen::Absent).is_err());
        // "a" reaches the cache; "b" shows up in a watch event.
        assert!(
            e.satisfied("rc", |_, uid| if uid == "a" {
                Seen::Present
            } else {
                Seen::Absent
            })
            .is_err()
        );
        e.observe(&pod("b", "rc", false), false);
        assert_eq!(e.satisfied("rc", |_, _| Seen::Absent), Ok(()));
    }

    #[test]
    fn deletes_are_satisfied_once_terminating_or_gone() {
        let e = Expectations::default();
        e.expect_delete("rc", "a", "p-a");
        e.expect_delete("rc", "b", "p-b");
        e.expect_delete("rc", "c", "p-c");
        e.observe(&pod("a", "rc", true), false);
        e.delete_failed("rc", "c");
        let pending = e.satisfied("rc", |_, _| Seen::Present);
        assert!(pending.is_err_and(|left| left <= TIMEOUT));
        assert_eq!(e.satisfied("rc", |_, _| Seen::Deleting), Ok(()));
    }

    #[test]
    fn events_of_other_controllers_change_nothing() {
        let e = Expectations::default();
        e.expect_create("rc", "a", "p-a");
        e.observe(&pod("a", "other", false), false);
        assert!(e.satisfied("rc", |_, _| Seen::Absent).is_err());
        e.forget("rc");
        assert_eq!(e.satisfied("rc", |_, _| Seen::Absent), Ok(()));
    }
}
