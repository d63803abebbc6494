//! Events about objects (`Started`, `BackOff`, `SuccessfulCreate`, `NodeNotReady`, …), as
//! client-go's recorder writes them: queued and created in the background, so that a slow API
//! never delays a pod or a reconcile, and dropped (with a log line) when the backlog is full.
//! Events about cluster-scoped objects (nodes) go to the `default` namespace.
//!
//! ```no_run
//! # async fn demo(client: kube::Client, pod: k8s_openapi::api::core::v1::Pod) {
//! let recorder = hortator_events::Recorder::spawn(client, "kubelet", Some("node-1"));
//! recorder.normal(&pod, "Started", "Started container web");
//! # }
//! ```

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Resource;
use kube::api::{Api, PostParams};
use tokio::sync::mpsc;

/// Records beyond this many waiting are dropped (and logged), like client-go's broadcaster.
const BACKLOG: usize = 4096;
/// The longest object name; an event's name adds `.` and 16 hex digits.
const MAX_NAME: usize = 253 - 17;

/// Writes events as one component (and, for node agents, one host); cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    sender: mpsc::Sender<Event>,
    component: String,
    host: Option<String>,
}

impl Recorder {
    /// A recorder for `component` on `host` (a node agent's node); the writer runs until
    /// every clone is dropped.
    pub fn spawn(client: kube::Client, component: &str, host: Option<&str>) -> Recorder {
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
            component: component.to_string(),
            host: host.map(str::to_string),
        }
    }

    /// A `Normal` event about `object`.
    pub fn normal<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        reason: &str,
        message: impl Into<String>,
    ) {
        self.record(object, "Normal", reason, message.into());
    }

    /// A `Warning` event about `object`.
    pub fn warning<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        reason: &str,
        message: impl Into<String>,
    ) {
        self.record(object, "Warning", reason, message.into());
    }

    fn record<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        kind: &str,
        reason: &str,
        message: String,
    ) {
        let event = self.event(object, kind, reason, message, jiff::Timestamp::now());
        if self.sender.try_send(event).is_err() {
            tracing::warn!(%reason, "event backlog full; event dropped");
        }
    }

    fn event<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        kind: &str,
        reason: &str,
        message: String,
        now: jiff::Timestamp,
    ) -> Event {
        let meta = object.meta();
        let namespace = meta
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let name = meta.name.clone().unwrap_or_default();
        Event {
            metadata: ObjectMeta {
                namespace: Some(namespace),
                // client-go's naming: the object's name and the time in hex.
                name: Some(format!("{}.{:x}", name_part(&name), now.as_nanosecond())),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some(K::api_version(&()).into_owned()),
                kind: Some(K::kind(&()).into_owned()),
                namespace: meta.namespace.clone(),
                name: Some(name),
                uid: meta.uid.clone(),
                resource_version: meta.resource_version.clone(),
                ..ObjectReference::default()
            },
            reason: Some(reason.to_string()),
            message: Some(message),
            type_: Some(kind.to_string()),
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: self.host.clone(),
            }),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.host.clone().unwrap_or_else(|| self.component.clone())),
            ..Event::default()
        }
    }
}

/// `name` made the start of a valid event name: lower case, `[a-z0-9.-]`, starting with a
/// letter or digit (legacy v1beta1 names may hold capitals), short enough for the suffix.
fn name_part(name: &str) -> String {
    let part: String = name
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '.' | '-') => c,
            _ => '-',
        })
        .take(MAX_NAME)
        .collect();
    let part = part
        .trim_start_matches(['-', '.'])
        .trim_end_matches(['-', '.']);
    if part.is_empty() {
        "object".to_string()
    } else {
        part.to_string()
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Node, Pod};

    use super::*;

    fn recorder() -> (Recorder, mpsc::Receiver<Event>) {
        let (sender, receiver) = mpsc::channel(4);
        let recorder = Recorder {
            sender,
            component: "kubelet".into(),
            host: Some("node-1".into()),
        };
        (recorder, receiver)
    }

    #[test]
    fn events_reference_their_object_and_source() {
        let (recorder, mut receiver) = recorder();
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("shop".into()),
                uid: Some("u1".into()),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        };
        recorder.warning(&pod, "BackOff", "Back-off restarting failed container");
        let event = receiver.try_recv().unwrap();
        assert_eq!(event.metadata.namespace.as_deref(), Some("shop"));
        assert!(event.metadata.name.unwrap().starts_with("web."));
        let involved = &event.involved_object;
        assert_eq!(involved.kind.as_deref(), Some("Pod"));
        assert_eq!(involved.api_version.as_deref(), Some("v1"));
        assert_eq!(involved.uid.as_deref(), Some("u1"));
        assert_eq!(event.type_.as_deref(), Some("Warning"));
        assert_eq!(event.source.unwrap().host.as_deref(), Some("node-1"));
        assert_eq!(event.reporting_instance.as_deref(), Some("node-1"));
    }

    #[test]
    fn cluster_scoped_objects_go_to_default_and_names_are_made_valid() {
        let (recorder, mut receiver) = recorder();
        let node = Node {
            metadata: ObjectMeta {
                name: Some("-Big_Node".into()),
                ..ObjectMeta::default()
            },
            ..Node::default()
        };
        recorder.normal(&node, "NodeNotReady", String::from("Node is not ready"));
        let event = receiver.try_recv().unwrap();
        assert_eq!(event.metadata.namespace.as_deref(), Some("default"));
        assert!(event.metadata.name.unwrap().starts_with("big-node."));
        assert_eq!(event.involved_object.namespace, None);
        assert_eq!(event.involved_object.name.as_deref(), Some("-Big_Node"));
        assert_eq!(name_part("..."), "object");
    }
}
