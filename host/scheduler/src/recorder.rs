//! What the scheduler tells users: `Scheduled` and `FailedScheduling` Events
//! and the pod's `PodScheduled` condition. Writes happen off the scheduling
//! thread; like client-go's event broadcaster, records are dropped (and
//! counted) when the writer falls too far behind, so a slow API never stalls
//! scheduling.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::mpsc;

use crate::stats::Stats;

/// Records waiting to be written, at most.
const BACKLOG: usize = 16_384;
/// `Scheduled` events written at once.
const CONCURRENT_WRITES: usize = 32;

/// One thing to tell the user about a pod.
#[derive(Debug)]
pub enum Record {
    /// The pod was bound to `node` by the scheduler `scheduler`.
    Scheduled {
        pod: Arc<Pod>,
        node: String,
        scheduler: String,
    },
    /// No node fits the pod.
    FailedScheduling {
        pod: Arc<Pod>,
        message: String,
        scheduler: String,
    },
    /// The pod left the queue: forget what was recorded about it.
    Forget(String),
}

/// Sends records to the writer task.
#[derive(Clone)]
pub struct Recorder {
    sender: mpsc::Sender<Record>,
    stats: Arc<Stats>,
}

impl Recorder {
    /// Start the writer on the current runtime.
    pub fn spawn(client: kube::Client, stats: Arc<Stats>) -> Recorder {
        let (sender, receiver) = mpsc::channel(BACKLOG);
        tokio::spawn(write_records(client, receiver));
        Recorder { sender, stats }
    }

    /// Queue a record; drops it when the backlog is full.
    pub fn record(&self, record: Record) {
        if self.sender.try_send(record).is_err() {
            let dropped = self.stats.record_dropped();
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "event backlog full; dropping scheduler events");
            }
        }
    }
}

/// What was last written about an unschedulable pod.
struct Failure {
    event: String,
    message: String,
    count: i32,
}

async fn write_records(client: kube::Client, mut receiver: mpsc::Receiver<Record>) {
    let mut failures: HashMap<String, Failure> = HashMap::new();
    let writes = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_WRITES));
    while let Some(record) = receiver.recv().await {
        match record {
            Record::Scheduled {
                pod,
                node,
                scheduler,
            } => {
                let Ok(permit) = writes.clone().acquire_owned().await else {
                    return;
                };
                let client = client.clone();
                tokio::spawn(async move {
                    let message = format!(
                        "Successfully assigned {}/{} to {node}",
                        namespace(&pod),
                        name(&pod)
                    );
                    create_event(&client, &pod, "Normal", "Scheduled", &message, &scheduler).await;
                    drop(permit);
                });
            }
            Record::FailedScheduling {
                pod,
                message,
                scheduler,
            } => {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                let events: Api<Event> = Api::namespaced(client.clone(), namespace(&pod));
                match failures.get_mut(&uid) {
                    Some(failure) if failure.message == message => {
                        failure.count += 1;
                        let now = jiff::Timestamp::now().to_string();
                        let patch = json!({"count": failure.count, "lastTimestamp": now});
                        if let Err(e) = events
                            .patch(
                                &failure.event,
                                &PatchParams::default(),
                                &Patch::Merge(&patch),
                            )
                            .await
                        {
                            tracing::debug!(error = %e, event = %failure.event, "cannot update event");
                        }
                    }
                    _ => {
                        let event = create_event(
                            &client,
                            &pod,
                            "Warning",
                            "FailedScheduling",
                            &message,
                            &scheduler,
                        )
                        .await;
                        set_unschedulable(&client, &pod, &message).await;
                        if let Some(event) = event {
                            failures.insert(
                                uid,
                                Failure {
                                    event,
                                    message,
                                    count: 1,
                                },
                            );
                        }
                    }
                }
            }
            Record::Forget(uid) => {
                failures.remove(&uid);
            }
        }
    }
}

fn namespace(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or("default")
}

fn name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or_default()
}

/// Create an Event about `pod`; returns its name.
async fn create_event(
    client: &kube::Client,
    pod: &Pod,
    type_: &str,
    reason: &str,
    message: &str,
    scheduler: &str,
) -> Option<String> {
    let now = jiff::Timestamp::now();
    let event_name = format!(
        "{}.{:x}",
        name(pod),
        now.as_nanosecond() as u64 ^ u64::from(std::process::id())
    );
    let event = Event {
        metadata: ObjectMeta {
            name: Some(event_name.clone()),
            namespace: Some(namespace(pod).to_string()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: pod.metadata.name.clone(),
            namespace: pod.metadata.namespace.clone(),
            uid: pod.metadata.uid.clone(),
            resource_version: pod.metadata.resource_version.clone(),
            ..ObjectReference::default()
        },
        type_: Some(type_.into()),
        reason: Some(reason.into()),
        message: Some(message.into()),
        source: Some(EventSource {
            component: Some(scheduler.into()),
            host: None,
        }),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: Some(MicroTime(now)),
        count: Some(1),
        action: Some(
            if type_ == "Normal" {
                "Binding"
            } else {
                "Scheduling"
            }
            .into(),
        ),
        reporting_component: Some(scheduler.into()),
        reporting_instance: Some(format!("{scheduler}-hortator")),
        ..Event::default()
    };
    let events: Api<Event> = Api::namespaced(client.clone(), namespace(pod));
    match events.create(&PostParams::default(), &event).await {
        Ok(_) => Some(event_name),
        Err(e) => {
            tracing::debug!(error = %e, pod = name(pod), reason, "cannot record event");
            None
        }
    }
}

/// Set `PodScheduled=False` with reason `Unschedulable`, as kube-scheduler does.
async fn set_unschedulable(client: &kube::Client, pod: &Pod, message: &str) {
    let current = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"));
    if current.is_some_and(|c| c.status == "False" && c.message.as_deref() == Some(message)) {
        return;
    }
    let condition: BTreeMap<&str, serde_json::Value> = BTreeMap::from([
        ("type", json!("PodScheduled")),
        ("status", json!("False")),
        ("reason", json!("Unschedulable")),
        ("message", json!(message)),
        ("lastProbeTime", serde_json::Value::Null),
        (
            "lastTransitionTime",
            json!(jiff::Timestamp::now().to_string()),
        ),
    ]);
    let patch = json!({"status": {"conditions": [condition]}});
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace(pod));
    if let Err(e) = pods
        .patch_status(
            name(pod),
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        )
        .await
    {
        tracing::debug!(error = %e, pod = name(pod), "cannot set the PodScheduled condition");
    }
}

/// kube-scheduler's message for a pod no node fits: the per-node reasons
/// counted, sorted and joined, e.g. `0/2 nodes are available: 2 node(s)
/// didn't have free ports for the requested pod ports.`
pub fn unschedulable_message(total_nodes: usize, reasons: &[String]) -> String {
    if total_nodes == 0 {
        return "no nodes available to schedule pods".into();
    }
    // A node can fail for several reasons at once ("Insufficient cpu,
    // Insufficient memory"); each is counted on its own, as kube-scheduler does.
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for reason in reasons.iter().flat_map(|r| r.split(", ")) {
        *counts.entry(reason).or_default() += 1;
    }
    let mut parts: Vec<String> = counts
        .into_iter()
        .map(|(reason, count)| format!("{count} {reason}"))
        .collect();
    parts.sort();
    format!("0/{total_nodes} nodes are available: {}.", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_kube_scheduler() {
        let ports = "node(s) didn't have free ports for the requested pod ports".to_string();
        assert_eq!(
            unschedulable_message(2, &[ports.clone(), ports.clone()]),
            "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports."
        );
        assert_eq!(
            unschedulable_message(
                3,
                &["Insufficient cpu".into(), ports, "Insufficient cpu".into()]
            ),
            "0/3 nodes are available: 1 node(s) didn't have free ports for the requested pod ports, 2 Insufficient cpu."
        );
        assert_eq!(
            unschedulable_message(
                2,
                &[
                    "Insufficient cpu, Insufficient memory".into(),
                    "Insufficient memory".into()
                ]
            ),
            "0/2 nodes are available: 1 Insufficient cpu, 2 Insufficient memory."
        );
        assert_eq!(
            unschedulable_message(0, &[]),
            "no nodes available to schedule pods"
        );
    }
}
