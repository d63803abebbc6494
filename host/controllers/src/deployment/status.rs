//! Deployment status as Kubernetes computes it (`sync.go`, `progress.go`): replica counts
//! summed over the ReplicaSets, the Available condition, and the Progressing condition with
//! its deadline.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::util::{Limits, available_replicas, ready_replicas, spec_replicas, status_replicas};

/// The Available condition type.
pub(super) const AVAILABLE: &str = "Available";
/// The Progressing condition type.
pub(super) const PROGRESSING: &str = "Progressing";
/// Progressing: a new ReplicaSet was created.
pub(super) const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
/// Progressing: an existing ReplicaSet matches the template.
pub(super) const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
/// Progressing: the rollout moved on.
pub(super) const RS_UPDATED: &str = "ReplicaSetUpdated";
/// Progressing: the new ReplicaSet is complete.
pub(super) const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
/// Progressing: no progress within `progressDeadlineSeconds`.
pub(super) const TIMED_OUT: &str = "ProgressDeadlineExceeded";
/// Progressing: the new ReplicaSet could not be created.
pub(super) const RS_CREATE_ERROR: &str = "ReplicaSetCreateError";
/// Progressing: the Deployment is paused.
pub(super) const PAUSED: &str = "DeploymentPaused";
/// Progressing: the Deployment was resumed.
pub(super) const RESUMED: &str = "DeploymentResumed";

/// Now, at the API's one-second resolution.
pub(super) fn now() -> jiff::Timestamp {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second()).unwrap_or(now)
}

/// A condition whose times are `now`.
pub(super) fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: jiff::Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// The condition of a type.
pub(super) fn get_condition<'a>(
    status: Option<&'a DeploymentStatus>,
    type_: &str,
) -> Option<&'a DeploymentCondition> {
    status?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// Set a condition, unless one with the same status and reason is there; the transition time
/// stays when the status does not change.
pub(super) fn set_condition(status: &mut DeploymentStatus, mut new: DeploymentCondition) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    if let Some(current) = conditions.iter().find(|c| c.type_ == new.type_) {
        if current.status == new.status && current.reason == new.reason {
            return;
        }
        if current.status == new.status {
            new.last_transition_time = current.last_transition_time.clone();
        }
    }
    conditions.retain(|c| c.type_ != new.type_);
    conditions.push(new);
}

/// Remove the condition of a type.
pub(super) fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| c.type_ != type_);
        if conditions.is_empty() {
            status.conditions = None;
        }
    }
}

/// `spec.progressDeadlineSeconds`, unless unset or "never" (MaxInt32).
pub(super) fn progress_deadline(d: &Deployment) -> Option<i32> {
    d.spec
        .as_ref()?
        .progress_deadline_seconds
        .filter(|&s| s != i32::MAX)
}

/// Zero is left out of the status, as Go's `omitempty` does.
fn non_zero(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

/// The status from the ReplicaSets (`calculateStatus`): counts, observed generation and the
/// Available condition; other conditions are kept.
pub(super) fn calculate(
    d: &Deployment,
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    limits: &Limits,
    now: jiff::Timestamp,
) -> DeploymentStatus {
    let available: i32 = all.iter().map(|rs| available_replicas(rs)).sum();
    let wanted: i32 = all.iter().map(|rs| spec_replicas(rs)).sum();
    let old = d.status.as_ref();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: non_zero(all.iter().map(|rs| status_replicas(rs)).sum()),
        updated_replicas: non_zero(new.map_or(0, status_replicas)),
        ready_replicas: non_zero(all.iter().map(|rs| ready_replicas(rs)).sum()),
        available_replicas: non_zero(available),
        unavailable_replicas: non_zero((wanted - available).max(0)),
        collision_count: old.and_then(|s| s.collision_count),
        conditions: old.and_then(|s| s.conditions.clone()),
        terminating_replicas: None,
    };
    let availability = if available >= limits.min_available() {
        condition(
            AVAILABLE,
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
            now,
        )
    } else {
        condition(
            AVAILABLE,
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
            now,
        )
    };
    set_condition(&mut status, availability);
    status
}

/// Every replica updated and available, and the latest spec observed.
pub(super) fn is_complete(
    d: &Deployment,
    status: Option<&DeploymentStatus>,
    replicas: i32,
) -> bool {
    let Some(s) = status else {
        return false;
    };
    s.updated_replicas.unwrap_or(0) == replicas
        && s.replicas.unwrap_or(0) == replicas
        && s.available_replicas.unwrap_or(0) == replicas
        && s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// Whether `new` shows progress over the Deployment's current status.
fn is_progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let count = |n: Option<i32>| n.unwrap_or(0);
    let old_old = count(old.replicas) - count(old.updated_replicas);
    let new_old = count(new.replicas) - count(new.updated_replicas);
    count(new.updated_replicas) > count(old.updated_replicas)
        || new_old < old_old
        || count(new.ready_replicas) > count(old.ready_replicas)
        || count(new.available_replicas) > count(old.available_replicas)
}

/// Whether the Progressing condition of `status` is older than the deadline.
fn is_timed_out(d: &Deployment, status: &DeploymentStatus, now: jiff::Timestamp) -> bool {
    let Some(deadline) = progress_deadline(d) else {
        return false;
    };
    let Some(cond) = get_condition(Some(status), PROGRESSING) else {
        return false;
    };
    match cond.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => false,
        Some(TIMED_OUT) => true,
        _ => cond
            .last_update_time
            .as_ref()
            .is_some_and(|t| t.0.as_second() + i64::from(deadline) < now.as_second()),
    }
}

/// The status after a rollout step (`syncRolloutStatus`): [`calculate`] plus the Progressing
/// condition: complete, progressing (its update time refreshed), or timed out.
pub(super) fn rollout(
    d: &Deployment,
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    limits: &Limits,
    now: jiff::Timestamp,
) -> DeploymentStatus {
    let mut status = calculate(d, all, new, limits, now);
    if progress_deadline(d).is_none() {
        remove_condition(&mut status, PROGRESSING);
        return status;
    }
    let current = get_condition(d.status.as_ref(), PROGRESSING);
    let complete_already = status.replicas == status.updated_replicas
        && current.is_some_and(|c| c.reason.as_deref() == Some(NEW_RS_AVAILABLE));
    if complete_already {
        return status;
    }
    let name = d.metadata.name.as_deref().unwrap_or_default();
    let subject = match new.and_then(|rs| rs.metadata.name.as_deref()) {
        Some(rs) => format!("ReplicaSet {rs:?}"),
        None => format!("Deployment {name:?}"),
    };
    if is_complete(d, Some(&status), limits.replicas) {
        set_condition(
            &mut status,
            condition(
                PROGRESSING,
                "True",
                NEW_RS_AVAILABLE,
                format!("{subject} has successfully progressed."),
                now,
            ),
        );
    } else if is_progressing(d, &status) {
        let mut cond = condition(
            PROGRESSING,
            "True",
            RS_UPDATED,
            format!("{subject} is progressing."),
            now,
        );
        if let Some(current) = current.filter(|c| c.status == "True") {
            cond.last_transition_time = current.last_transition_time.clone();
        }
        remove_condition(&mut status, PROGRESSING);
        set_condition(&mut status, cond);
    } else if is_timed_out(d, &status, now) {
        set_condition(
            &mut status,
            condition(
                PROGRESSING,
                "False",
                TIMED_OUT,
                format!("{subject} has timed out progressing."),
                now,
            ),
        );
    }
    status
}

/// When to look again at a rollout that shows no progress, to time it out
/// (`requeueStuckDeployment`); `None` when no deadline applies.
pub(super) fn recheck_after(
    d: &Deployment,
    new: &DeploymentStatus,
    replicas: i32,
    now: jiff::Timestamp,
) -> Option<Duration> {
    let deadline = progress_deadline(d)?;
    let current = get_condition(d.status.as_ref(), PROGRESSING)?;
    if is_complete(d, Some(new), replicas) || current.reason.as_deref() == Some(TIMED_OUT) {
        return None;
    }
    let updated = current.last_update_time.as_ref()?.0.as_second();
    let left = updated + i64::from(deadline) - now.as_second();
    Some(Duration::from_secs(
        u64::try_from(left.max(0)).unwrap_or(0) + 1,
    ))
}

/// The Progressing condition for a pause or a resume (`checkPausedConditions`); `None` when
/// nothing changes.
pub(super) fn paused_condition(d: &Deployment, now: jiff::Timestamp) -> Option<DeploymentStatus> {
    progress_deadline(d)?;
    let current = get_condition(d.status.as_ref(), PROGRESSING);
    let reason = current.and_then(|c| c.reason.as_deref());
    if reason == Some(TIMED_OUT) {
        return None;
    }
    let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
    let cond = if paused && reason != Some(PAUSED) {
        condition(
            PROGRESSING,
            "Unknown",
            PAUSED,
            "Deployment is paused".into(),
            now,
        )
    } else if !paused && reason == Some(PAUSED) {
        condition(
            PROGRESSING,
            "Unknown",
            RESUMED,
            "Deployment is resumed".into(),
            now,
        )
    } else {
        return None;
    };
    let mut status = d.status.clone().unwrap_or_default();
    set_condition(&mut status, cond);
    Some(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, ReplicaSetSpec, ReplicaSetStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::super::util::Strategy;

    fn at(second: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_700_000_000 + second).expect("timestamp")
    }

    fn deployment(replicas: i32, generation: i64, status: Option<DeploymentStatus>) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("web".into()),
                generation: Some(generation),
                ..ObjectMeta::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                progress_deadline_seconds: Some(600),
                ..DeploymentSpec::default()
            }),
            status,
        }
    }

    fn rs(name: &str, spec: i32, replicas: i32, ready: i32, available: i32) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(spec),
                ..ReplicaSetSpec::default()
            }),
            status: Some(ReplicaSetStatus {
                replicas,
                ready_replicas: Some(ready),
                available_replicas: Some(available),
                ..ReplicaSetStatus::default()
            }),
        }
    }

    const LIMITS: Limits = Limits {
        replicas: 3,
        max_surge: 1,
        max_unavailable: 0,
        strategy: Strategy::RollingUpdate,
    };

    fn reason<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a str> {
        get_condition(Some(status), type_)?.reason.as_deref()
    }

    #[test]
    fn counts_sum_over_replica_sets() {
        let d = deployment(3, 4, None);
        let old = rs("old", 1, 2, 2, 2);
        let new = rs("new", 3, 2, 1, 1);
        let status = calculate(&d, &[&old, &new], Some(&new), &LIMITS, at(0));
        assert_eq!(status.observed_generation, Some(4));
        assert_eq!(status.replicas, Some(4));
        assert_eq!(status.updated_replicas, Some(2));
        assert_eq!(status.ready_replicas, Some(3));
        assert_eq!(status.available_replicas, Some(3));
        assert_eq!(status.unavailable_replicas, Some(1));
        assert_eq!(reason(&status, AVAILABLE), Some("MinimumReplicasAvailable"));
        // Zeros are omitted, and too few available pods make it unavailable.
        let status = calculate(&d, &[&rs("new", 3, 0, 0, 0)], None, &LIMITS, at(0));
        assert_eq!(status.updated_replicas, None);
        assert_eq!(status.unavailable_replicas, Some(3));
        assert_eq!(
            reason(&status, AVAILABLE),
            Some("MinimumReplicasUnavailable")
        );
    }

    #[test]
    fn conditions_keep_their_times_until_they_change() {
        let mut status = DeploymentStatus::default();
        set_condition(
            &mut status,
            condition(AVAILABLE, "True", "A", "a".into(), at(0)),
        );
        set_condition(
            &mut status,
            condition(AVAILABLE, "True", "A", "b".into(), at(5)),
        );
        let c = get_condition(Some(&status), AVAILABLE)
            .cloned()
            .unwrap_or_default();
        assert_eq!(c.message.as_deref(), Some("a"));
        // Same status, new reason: transition time kept, update time moves.
        set_condition(
            &mut status,
            condition(AVAILABLE, "True", "B", "b".into(), at(9)),
        );
        let c = get_condition(Some(&status), AVAILABLE)
            .cloned()
            .unwrap_or_default();
        assert_eq!(c.last_transition_time, Some(Time(at(0))));
        assert_eq!(c.last_update_time, Some(Time(at(9))));
        remove_condition(&mut status, AVAILABLE);
        assert_eq!(status.conditions, None);
    }

    #[test]
    fn progressing_moves_to_complete() {
        let created = condition(PROGRESSING, "True", NEW_RS_CREATED, "x".into(), at(0));
        let d = deployment(
            3,
            1,
            Some(DeploymentStatus {
                conditions: Some(vec![created]),
                ..DeploymentStatus::default()
            }),
        );
        // Some pods came up: progressing, transition time kept.
        let new = rs("web-abc", 3, 2, 2, 2);
        let status = rollout(&d, &[&new], Some(&new), &LIMITS, at(10));
        let c = get_condition(Some(&status), PROGRESSING)
            .cloned()
            .unwrap_or_default();
        assert_eq!(c.reason.as_deref(), Some(RS_UPDATED));
        assert_eq!(
            c.message.as_deref(),
            Some("ReplicaSet \"web-abc\" is progressing.")
        );
        assert_eq!(c.last_transition_time, Some(Time(at(0))));
        assert_eq!(c.last_update_time, Some(Time(at(10))));
        // All of them: complete.
        let new = rs("web-abc", 3, 3, 3, 3);
        let status = rollout(&d, &[&new], Some(&new), &LIMITS, at(20));
        assert_eq!(reason(&status, PROGRESSING), Some(NEW_RS_AVAILABLE));
        assert!(is_complete(&d, Some(&status), 3));
        assert_eq!(recheck_after(&d, &status, 3, at(20)), None);
        // A newer generation is not complete until observed.
        let d2 = deployment(3, 2, d.status.clone());
        assert!(!is_complete(&d2, d.status.as_ref(), 3));
    }

    #[test]
    fn no_progress_times_out_after_the_deadline() {
        let updated = condition(PROGRESSING, "True", RS_UPDATED, "x".into(), at(0));
        let status = DeploymentStatus {
            replicas: Some(1),
            updated_replicas: Some(1),
            conditions: Some(vec![updated]),
            ..DeploymentStatus::default()
        };
        let d = deployment(3, 1, Some(status));
        let new = rs("web-abc", 3, 1, 0, 0);
        let early = rollout(&d, &[&new], Some(&new), &LIMITS, at(100));
        assert_eq!(reason(&early, PROGRESSING), Some(RS_UPDATED));
        assert_eq!(
            recheck_after(&d, &early, 3, at(100)),
            Some(Duration::from_secs(501))
        );
        let late = rollout(&d, &[&new], Some(&new), &LIMITS, at(601));
        let c = get_condition(Some(&late), PROGRESSING)
            .cloned()
            .unwrap_or_default();
        assert_eq!(c.reason.as_deref(), Some(TIMED_OUT));
        assert_eq!(c.status, "False");
        // No deadline, no Progressing condition.
        let mut never = d.clone();
        if let Some(s) = never.spec.as_mut() {
            s.progress_deadline_seconds = Some(i32::MAX);
        }
        let status = rollout(&never, &[&new], Some(&new), &LIMITS, at(10_000));
        assert_eq!(get_condition(Some(&status), PROGRESSING), None);
    }

    #[test]
    fn pause_and_resume_set_unknown_progress() {
        let mut d = deployment(3, 1, None);
        assert_eq!(paused_condition(&d, at(0)), None);
        if let Some(s) = d.spec.as_mut() {
            s.paused = Some(true);
        }
        let paused = paused_condition(&d, at(0));
        assert_eq!(
            paused.as_ref().and_then(|s| reason(s, PROGRESSING)),
            Some(PAUSED)
        );
        d.status = paused;
        assert_eq!(paused_condition(&d, at(1)), None);
        if let Some(s) = d.spec.as_mut() {
            s.paused = Some(false);
        }
        let resumed = paused_condition(&d, at(2));
        let c = resumed
            .as_ref()
            .and_then(|s| get_condition(Some(s), PROGRESSING))
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref()),
            ("Unknown", Some(RESUMED))
        );
    }
}
