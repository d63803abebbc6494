//! Events about pods (`Pulling`, `Started`, `BackOff`, `Unhealthy`, …), written in the
//! background so that a slow API never delays a pod.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, PostParams};
use tokio::sync::mpsc;

/// Records beyond this many waiting are dropped (and logged), like client-go's broadcaster.
const BACKLOG: usize = 4096;

/// Writes events as the kubelet of one node.
#[derive(Clone)]
pub(crate) struct Recorder {
    sender: mpsc::Sender<Event>,
    node: String,
}

impl Recorder {
    /// A recorder for node `node`; the writer runs until every clone is dropped.
    pub fn spawn(client: kube::Client, node: &str) -> Recorder {
        let (sender, mut receiver) = mpsc::channel::<Event>(BACKLOG);
        tokio::spawn(async move {
            while let Some(event) = receiver.recv().await {
                let namespace = event.metadata.namespace.clone().unwrap_or_default();
                let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
                if let Err(e) = api.create(&PostParams::default(), &event).await {
                    tracing::debug!(error = %e, "cannot record event");
                }
            }
        });
        Recorder {
            sender,
            node: node.to_string(),
        }
    }

    /// A `Normal` event about `pod`.
    pub fn normal(&self, pod: &Pod, reason: &str, message: &str) {
        self.record(pod, "Normal", reason, message);
    }

    /// A `Warning` event about `pod`.
    pub fn warning(&self, pod: &Pod, reason: &str, message: &str) {
        self.record(pod, "Warning", reason, message);
    }

    fn record(&self, pod: &Pod, kind: &str, reason: &str, message: &str) {
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let now = jiff::Timestamp::now();
        let event = Event {
            metadata: ObjectMeta {
                namespace: Some(namespace.clone()),
                // client-go's naming: the object's name and the time in hex.
                name: Some(format!("{name}.{:x}", now.as_nanosecond())),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                namespace: Some(namespace),
                name: Some(name),
                uid: pod.metadata.uid.clone(),
                resource_version: pod.metadata.resource_version.clone(),
                ..ObjectReference::default()
            },
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
            type_: Some(kind.to_string()),
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            source: Some(EventSource {
                component: Some("kubelet".into()),
                host: Some(self.node.clone()),
            }),
            reporting_component: Some("kubelet".into()),
            reporting_instance: Some(self.node.clone()),
            ..Event::default()
        };
        if self.sender.try_send(event).is_err() {
            tracing::warn!(%reason, "event backlog full; event dropped");
        }
    }
}
