//! The status of a replication controller or replica set (the two kinds share its shape):
//! computed from the controller's active pods, compared with what is stored, and written as
//! a merge patch of `/status`.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{
    Pod, ReplicationControllerCondition, ReplicationControllerStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};

use super::pods::{is_available, is_ready};

/// The condition type reporting failed creates or deletes.
pub(crate) const REPLICA_FAILURE: &str = "ReplicaFailure";

/// One status condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Condition {
    /// `ReplicaFailure`, or a type some other writer set.
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine-readable reason.
    pub reason: Option<String>,
    /// Human-readable message.
    pub message: Option<String>,
    /// When the status last changed.
    pub last_transition_time: Option<Timestamp>,
}

/// The status fields common to ReplicationController and ReplicaSet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ReplicaStatus {
    /// Active pods.
    pub replicas: i32,
    /// Active pods carrying every label of the template.
    pub fully_labeled_replicas: i32,
    /// Active pods whose Ready condition is True.
    pub ready_replicas: i32,
    /// Active pods ready for at least minReadySeconds.
    pub available_replicas: i32,
    /// The generation the status was computed for.
    pub observed_generation: i64,
    /// Conditions.
    pub conditions: Vec<Condition>,
}

/// Why managing the replicas failed, to report as a `ReplicaFailure` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    /// `FailedCreate` or `FailedDelete`.
    pub reason: &'static str,
    /// The error.
    pub message: String,
}

/// What goes into a status, besides the pods.
pub(crate) struct Inputs<'a> {
    /// The labels of the pod template.
    pub template_labels: &'a BTreeMap<String, String>,
    /// `spec.minReadySeconds`.
    pub min_ready_seconds: i32,
    /// `metadata.generation`.
    pub generation: i64,
    /// The outcome of managing the replicas this round (`None`: success or nothing done).
    pub failure: Option<Failure>,
    /// The current time.
    pub now: Timestamp,
}

impl ReplicaStatus {
    /// The new status given the stored one and the controller's active pods (Kubernetes'
    /// `calculateStatus`).
    pub(crate) fn calculate(&self, active: &[&Pod], inputs: Inputs<'_>) -> ReplicaStatus {
        let mut status = ReplicaStatus {
            replicas: count(active.len()),
            fully_labeled_replicas: count(
                active
                    .iter()
                    .filter(|p| {
                        let labels = p.metadata.labels.as_ref();
                        inputs
                            .template_labels
                            .iter()
                            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
                    })
                    .count(),
            ),
            ready_replicas: count(active.iter().filter(|p| is_ready(p)).count()),
            available_replicas: count(
                active
                    .iter()
                    .filter(|p| is_available(p, inputs.min_ready_seconds, inputs.now))
                    .count(),
            ),
            observed_generation: inputs.generation,
            conditions: self.conditions.clone(),
        };
        let has_failure = status.conditions.iter().any(|c| c.type_ == REPLICA_FAILURE);
        match inputs.failure {
            Some(failure) if !has_failure => status.conditions.push(Condition {
                type_: REPLICA_FAILURE.into(),
                status: "True".into(),
                reason: Some(failure.reason.into()),
                message: Some(failure.message),
                last_transition_time: Some(inputs.now),
            }),
            None if has_failure => status.conditions.retain(|c| c.type_ != REPLICA_FAILURE),
            _ => {}
        }
        status
    }

    /// The merge patch that writes this status; zero counts and no conditions are removed,
    /// as Kubernetes omits them.
    pub(crate) fn patch(&self) -> Value {
        let zero_is_null = |n: i32| if n == 0 { Value::Null } else { json!(n) };
        let conditions: Vec<Value> = self
            .conditions
            .iter()
            .map(|c| {
                let mut v = json!({"type": c.type_, "status": c.status});
                if let Some(t) = c.last_transition_time {
                    v["lastTransitionTime"] = json!(Time(t));
                }
                if let Some(r) = &c.reason {
                    v["reason"] = json!(r);
                }
                if let Some(m) = &c.message {
                    v["message"] = json!(m);
                }
                v
            })
            .collect();
        json!({"status": {
            "replicas": self.replicas,
            "fullyLabeledReplicas": zero_is_null(self.fully_labeled_replicas),
            "readyReplicas": zero_is_null(self.ready_replicas),
            "availableReplicas": zero_is_null(self.available_replicas),
            "observedGeneration": self.observed_generation,
            "conditions": if conditions.is_empty() { Value::Null } else { Value::Array(conditions) },
        }})
    }
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl From<Option<&ReplicationControllerStatus>> for ReplicaStatus {
    fn from(status: Option<&ReplicationControllerStatus>) -> Self {
        let Some(s) = status else {
            return ReplicaStatus::default();
        };
        ReplicaStatus {
            replicas: s.replicas,
            fully_labeled_replicas: s.fully_labeled_replicas.unwrap_or(0),
            ready_replicas: s.ready_replicas.unwrap_or(0),
            available_replicas: s.available_replicas.unwrap_or(0),
            observed_generation: s.observed_generation.unwrap_or(0),
            conditions: s
                .conditions
                .iter()
                .flatten()
                .map(|c: &ReplicationControllerCondition| Condition {
                    type_: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    last_transition_time: c.last_transition_time.as_ref().map(|t| t.0),
                })
                .collect(),
        }
    }
}

impl From<Option<&ReplicaSetStatus>> for ReplicaStatus {
    fn from(status: Option<&ReplicaSetStatus>) -> Self {
        let Some(s) = status else {
            return ReplicaStatus::default();
        };
        ReplicaStatus {
            replicas: s.replicas,
            fully_labeled_replicas: s.fully_labeled_replicas.unwrap_or(0),
            ready_replicas: s.ready_replicas.unwrap_or(0),
            available_replicas: s.available_replicas.unwrap_or(0),
            observed_generation: s.observed_generation.unwrap_or(0),
            conditions: s
                .conditions
                .iter()
                .flatten()
                .map(|c: &ReplicaSetCondition| Condition {
                    type_: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                    last_transition_time: c.last_transition_time.as_ref().map(|t| t.0),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(labels: Value, ready_since: Option<&str>) -> Pod {
        let conditions = match ready_since {
            Some(t) => json!([{"type": "Ready", "status": "True", "lastTransitionTime": t}]),
            None => json!([{"type": "Ready", "status": "False"}]),
        };
        serde_json::from_value(json!({
            "metadata": {"name": "p", "labels": labels},
            "status": {"phase": "Running", "conditions": conditions},
        }))
        .unwrap()
    }

    fn inputs<'a>(labels: &'a BTreeMap<String, String>, failure: Option<Failure>) -> Inputs<'a> {
        Inputs {
            template_labels: labels,
            min_ready_seconds: 10,
            generation: 3,
            failure,
            now: "2025-01-01T00:01:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn counts_labels_readiness_and_availability() {
        let labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
        let full = pod(
            json!({"app": "web", "x": "y"}),
            Some("2025-01-01T00:00:00Z"),
        );
        let fresh = pod(json!({"app": "web"}), Some("2025-01-01T00:00:55Z"));
        let partial = pod(json!({"other": "1"}), None);
        let status =
            ReplicaStatus::default().calculate(&[&full, &fresh, &partial], inputs(&labels, None));
        assert_eq!(
            status,
            ReplicaStatus {
                replicas: 3,
                fully_labeled_replicas: 2,
                ready_replicas: 2,
                available_replicas: 1,
                observed_generation: 3,
                conditions: vec![],
            }
        );
    }

    #[test]
    fn failure_condition_is_set_once_then_cleared() {
        let labels = BTreeMap::new();
        let failure = Failure {
            reason: "FailedCreate",
            message: "forbidden".into(),
        };
        let failed = ReplicaStatus::default().calculate(&[], inputs(&labels, Some(failure)));
        assert_eq!(failed.conditions.len(), 1);
        assert_eq!(failed.conditions[0].reason.as_deref(), Some("FailedCreate"));
        // A later failure keeps the first condition (and its transition time).
        let again = failed.calculate(
            &[],
            inputs(
                &labels,
                Some(Failure {
                    reason: "FailedCreate",
                    message: "other".into(),
                }),
            ),
        );
        assert_eq!(again, failed);
        let patch = failed.patch();
        assert_eq!(patch["status"]["conditions"][0]["type"], REPLICA_FAILURE);
        assert_eq!(patch["status"]["readyReplicas"], Value::Null);
        let cleared = failed.calculate(&[], inputs(&labels, None));
        assert!(cleared.conditions.is_empty());
        assert_eq!(cleared.patch()["status"]["conditions"], Value::Null);
    }

    #[test]
    fn stored_statuses_convert() {
        let rc: ReplicationControllerStatus = serde_json::from_value(json!({
            "replicas": 2, "readyReplicas": 1, "observedGeneration": 4,
            "conditions": [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate"}],
        }))
        .unwrap();
        let status = ReplicaStatus::from(Some(&rc));
        assert_eq!(status.replicas, 2);
        assert_eq!(status.available_replicas, 0);
        assert_eq!(status.observed_generation, 4);
        assert_eq!(status.conditions[0].type_, REPLICA_FAILURE);
        assert_eq!(
            ReplicaStatus::from(None::<&ReplicaSetStatus>),
            ReplicaStatus::default()
        );
    }
}
