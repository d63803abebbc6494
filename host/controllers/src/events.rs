//! Events the controllers record (`SuccessfulCreate`, `FailedCreate`, `SuccessfulDelete`,
//! `NodeNotReady`, ...), written in the background so that a slow API never delays a
//! reconcile. Events about cluster-scoped objects (nodes) go to the `default` namespace, as
//! client-go puts them.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Resource;
use kube::api::{Api, PostParams};
use tokio::sync::mpsc;

use crate::replication::generate_name;

/// Records beyond this many waiting are dropped (and logged), like client-go's broadcaster.
const BACKLOG: usize = 4096;

/// Writes events as one controller component.
#[derive(Clone)]
pub(crate) struct Recorder {
    sender: mpsc::Sender<Event>,
    component: &'static str,
}

impl Recorder {
    /// A recorder for `component`; the writer runs until every clone is dropped.
    pub(crate) fn spawn(client: kube::Client, component: &'static str) -> Recorder {
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
        Recorder { sender, component }
    }

    /// A `Normal` event about `object`.
    pub(crate) fn normal<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        reason: &str,
        message: String,
    ) {
        self.record(object, "Normal", reason, message);
    }

    /// A `Warning` event about `object`.
    pub(crate) fn warning<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        reason: &str,
        message: String,
    ) {
        self.record(object, "Warning", reason, message);
    }

    fn record<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        kind: &str,
        reason: &str,
        message: String,
    ) {
        let meta = object.meta();
        let namespace = meta
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let name = meta.name.clone().unwrap_or_default();
        let now = jiff::Timestamp::now();
        let event = Event {
            metadata: ObjectMeta {
                namespace: Some(namespace.clone()),
                // client-go's naming: the object's name (made valid) and the time in hex.
                name: Some(format!(
                    "{}.{:x}",
                    generate_name(&name).trim_end_matches('-'),
                    now.as_nanosecond()
                )),
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
                component: Some(self.component.into()),
                host: None,
            }),
            reporting_component: Some(self.component.into()),
            reporting_instance: Some(self.component.into()),
            ..Event::default()
        };
        if self.sender.try_send(event).is_err() {
            tracing::warn!(%reason, "event backlog full; event dropped");
        }
    }
}
