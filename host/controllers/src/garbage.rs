//! The garbage collector: dependents follow their owners through `ownerReferences`.
//!
//! A graph of every object with owners or dependents is kept from watches of all resources.
//! An object whose owners are all gone is deleted (background deletion); an owner deleted with
//! the `orphan` finalizer first has its dependents' references to it removed; an owner deleted
//! with `foregroundDeletion` first sees its dependents deleted, and is released once the last
//! one that blocks its deletion is gone. An owner absent from the graph is looked up in the
//! API before a dependent is judged orphaned, so a lagging watch never deletes anything.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use hortator_api::registry::{self, ResourceInfo};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, DynamicObject, PostParams, PropagationPolicy};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::{Error, api_resource};

const ORPHAN: &str = "orphan";
const FOREGROUND: &str = "foregroundDeletion";

/// What the graph knows of one object.
#[derive(Clone, Debug)]
struct GraphNode {
    info: &'static ResourceInfo,
    namespace: Option<String>,
    name: String,
    owners: Vec<OwnerReference>,
    deleting: bool,
    finalizers: Vec<String>,
}

impl GraphNode {
    fn has_finalizer(&self, finalizer: &str) -> bool {
        self.finalizers.iter().any(|f| f == finalizer)
    }
}

/// Objects by uid, and each owner's dependents.
#[derive(Default)]
struct Graph {
    nodes: HashMap<String, GraphNode>,
    dependents: HashMap<String, HashSet<String>>,
}

/// A unit of work, by uid.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Work {
    /// Check whether this object's owners are still there.
    Dependent(String),
    /// Orphan or delete this deleting owner's dependents.
    Owner(String),
}

impl Graph {
    /// Record `object`; returns the work its new state calls for.
    fn upsert(&mut self, info: &'static ResourceInfo, object: &DynamicObject) -> Vec<Work> {
        let Some(uid) = object.metadata.uid.clone() else {
            return Vec::new();
        };
        let node = GraphNode {
            info,
            namespace: object.metadata.namespace.clone(),
            name: object.name_any(),
            owners: object.metadata.owner_references.clone().unwrap_or_default(),
            deleting: object.metadata.deletion_timestamp.is_some(),
            finalizers: object.metadata.finalizers.clone().unwrap_or_default(),
        };
        if let Some(old) = self.nodes.get(&uid) {
            for owner in &old.owners {
                if let Some(set) = self.dependents.get_mut(&owner.uid) {
                    set.remove(&uid);
                }
            }
        }
        for owner in &node.owners {
            self.dependents
                .entry(owner.uid.clone())
                .or_default()
                .insert(uid.clone());
        }
        let mut work = Vec::new();
        if !node.owners.is_empty() {
            work.push(Work::Dependent(uid.clone()));
        }
        if node.deleting && (node.has_finalizer(ORPHAN) || node.has_finalizer(FOREGROUND)) {
            work.push(Work::Owner(uid.clone()));
        }
        self.nodes.insert(uid, node);
        work
    }

    /// Forget a deleted object; returns the work its absence calls for.
    fn remove(&mut self, object: &DynamicObject) -> Vec<Work> {
        let Some(uid) = object.metadata.uid.as_deref() else {
            return Vec::new();
        };
        let mut work = Vec::new();
        if let Some(node) = self.nodes.remove(uid) {
            for owner in &node.owners {
                if let Some(set) = self.dependents.get_mut(&owner.uid) {
                    set.remove(uid);
                    if set.is_empty() {
                        self.dependents.remove(&owner.uid);
                    }
                }
                if self
                    .nodes
                    .get(&owner.uid)
                    .is_some_and(|o| o.deleting && o.has_finalizer(FOREGROUND))
                {
                    work.push(Work::Owner(owner.uid.clone()));
                }
            }
        }
        if let Some(dependents) = self.dependents.get(uid) {
            work.extend(dependents.iter().cloned().map(Work::Dependent));
        }
        work
    }

    fn dependents_of(&self, uid: &str) -> Vec<(String, GraphNode)> {
        self.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|d| Some((d.clone(), self.nodes.get(d)?.clone())))
            .collect()
    }
}

/// A work queue without duplicates.
#[derive(Clone)]
struct Queue {
    sender: mpsc::UnboundedSender<Work>,
    pending: Arc<Mutex<HashSet<Work>>>,
}

impl Queue {
    fn push(&self, work: Work) {
        let fresh = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(work.clone());
        if fresh {
            // The receiver lives as long as the collector; a send fails only at shutdown.
            let _ = self.sender.send(work);
        }
    }

    fn taken(&self, work: &Work) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(work);
    }
}

struct Collector {
    client: kube::Client,
    graph: Mutex<Graph>,
    queue: Queue,
}

/// Run the garbage collector until the API goes away.
pub(crate) async fn run(client: kube::Client) {
    let (sender, mut receiver) = mpsc::unbounded_channel();
    let collector = Arc::new(Collector {
        client: client.clone(),
        graph: Mutex::new(Graph::default()),
        queue: Queue {
            sender,
            pending: Arc::default(),
        },
    });
    for info in watched_resources() {
        tokio::spawn(watch_resource(collector.clone(), info));
    }
    while let Some(work) = receiver.recv().await {
        collector.queue.taken(&work);
        let span = tracing::debug_span!("garbage collect", ?work);
        if let Err(e) = collector.process(&work).instrument(span).await {
            tracing::debug!(?work, error = %e, "garbage collection failed; retrying");
            let queue = collector.queue.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                queue.push(work);
            });
        }
    }
}

/// Every resource that can own or depend (events neither own nor depend).
fn watched_resources() -> impl Iterator<Item = &'static ResourceInfo> {
    registry::RESOURCES
        .iter()
        .filter(|r| !r.legacy && r.kind != "Event" && r.verbs.contains(&"watch"))
}

async fn watch_resource(collector: Arc<Collector>, info: &'static ResourceInfo) {
    let api: Api<DynamicObject> = Api::all_with(collector.client.clone(), &api_resource(info));
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = events.next().await {
        let work = {
            let mut graph = collector
                .graph
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match event {
                Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) => {
                    graph.upsert(info, &object)
                }
                Ok(watcher::Event::Delete(object)) => graph.remove(&object),
                Ok(watcher::Event::Init | watcher::Event::InitDone) => Vec::new(),
                Err(e) => {
                    tracing::debug!(resource = info.plural, error = %e, "watch failed");
                    Vec::new()
                }
            }
        };
        for item in work {
            collector.queue.push(item);
        }
    }
}

/// How an owner stands for one of its dependents.
#[derive(Debug, PartialEq, Eq)]
enum OwnerState {
    /// Exists and is not being deleted in the foreground.
    Solid,
    /// Being deleted in the foreground: waits for its dependents.
    Waiting,
    /// Gone (or replaced by another object of the same name).
    Dangling,
}

impl Collector {
    fn node(&self, uid: &str) -> Option<GraphNode> {
        self.graph
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .nodes
            .get(uid)
            .cloned()
    }

    async fn process(&self, work: &Work) -> Result<(), Error> {
        match work {
            Work::Dependent(uid) => self.check_owners(uid).await,
            Work::Owner(uid) => self.release_dependents(uid).await,
        }
    }

    /// Delete a dependent whose owners are all gone or waiting; drop references to vanished
    /// owners from one that still has a live owner.
    async fn check_owners(&self, uid: &str) -> Result<(), Error> {
        let Some(node) = self.node(uid) else {
            return Ok(());
        };
        if node.owners.is_empty() || (node.deleting && !node.has_finalizer(FOREGROUND)) {
            return Ok(());
        }
        let mut states = Vec::new();
        for owner in &node.owners {
            states.push(self.owner_state(&node, owner).await?);
        }
        let solid = states.contains(&OwnerState::Solid);
        let dangling = states.contains(&OwnerState::Dangling);
        let waiting = states.contains(&OwnerState::Waiting);
        if solid {
            if dangling || waiting {
                let keep: Vec<(String, OwnerState)> = node
                    .owners
                    .iter()
                    .zip(states)
                    .map(|(o, s)| (o.uid.clone(), s))
                    .collect();
                self.edit(&node, uid, |object| {
                    let refs = object.metadata.owner_references.get_or_insert_default();
                    refs.retain(|r| {
                        keep.iter()
                            .all(|(u, s)| u != &r.uid || *s != OwnerState::Dangling)
                    });
                    for r in refs.iter_mut() {
                        if keep
                            .iter()
                            .any(|(u, s)| u == &r.uid && *s == OwnerState::Waiting)
                        {
                            r.block_owner_deletion = Some(false);
                        }
                    }
                })
                .await?;
            }
            return Ok(());
        }
        if node.deleting {
            return Ok(());
        }
        let has_dependents = self
            .graph
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .dependents
            .get(uid)
            .is_some_and(|d| !d.is_empty());
        let mut params = if waiting && has_dependents {
            DeleteParams::foreground()
        } else {
            DeleteParams::background()
        };
        params.preconditions = Some(kube::api::Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        });
        match self.api(&node).delete(&node.name, &params).await {
            Ok(_) => tracing::info!(
                kind = node.info.kind,
                namespace = node.namespace.as_deref().unwrap_or(""),
                name = %node.name,
                propagation = ?params.propagation_policy.unwrap_or(PropagationPolicy::Background),
                "deleted: its owners are gone"
            ),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    async fn owner_state(
        &self,
        dependent: &GraphNode,
        owner: &OwnerReference,
    ) -> Result<OwnerState, Error> {
        if let Some(node) = self.node(&owner.uid) {
            return Ok(if node.deleting && node.has_finalizer(FOREGROUND) {
                OwnerState::Waiting
            } else {
                OwnerState::Solid
            });
        }
        // Not (yet) in the graph: ask the API.
        let group = owner.api_version.split_once('/').map_or("", |(g, _)| g);
        let Some(info) = registry::by_kind(group, &owner.kind) else {
            // An owner of a kind this server does not serve cannot be judged: leave it.
            return Ok(OwnerState::Solid);
        };
        let resource = api_resource(info);
        let api: Api<DynamicObject> = match (&dependent.namespace, info.namespaced()) {
            (Some(ns), true) => Api::namespaced_with(self.client.clone(), ns, &resource),
            (None, true) => return Ok(OwnerState::Dangling),
            (_, false) => Api::all_with(self.client.clone(), &resource),
        };
        match api.get_opt(&owner.name).await? {
            Some(found) if found.metadata.uid.as_deref() == Some(owner.uid.as_str()) => {
                let foreground = found.metadata.deletion_timestamp.is_some()
                    && found
                        .metadata
                        .finalizers
                        .iter()
                        .flatten()
                        .any(|f| f == FOREGROUND);
                Ok(if foreground {
                    OwnerState::Waiting
                } else {
                    OwnerState::Solid
                })
            }
            _ => Ok(OwnerState::Dangling),
        }
    }

    /// For an owner being deleted: orphan its dependents, or delete them (foreground) and
    /// release it once none blocks it.
    async fn release_dependents(&self, uid: &str) -> Result<(), Error> {
        let Some(owner) = self.node(uid) else {
            return Ok(());
        };
        if !owner.deleting {
            return Ok(());
        }
        let dependents = self
            .graph
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .dependents_of(uid);
        if owner.has_finalizer(ORPHAN) {
            for (dependent_uid, dependent) in &dependents {
                self.edit(dependent, dependent_uid, |object| {
                    if let Some(refs) = object.metadata.owner_references.as_mut() {
                        refs.retain(|r| r.uid != uid);
                    }
                })
                .await?;
            }
            self.edit(&owner, uid, |object| {
                if let Some(f) = object.metadata.finalizers.as_mut() {
                    f.retain(|f| f != ORPHAN);
                }
            })
            .await?;
            tracing::info!(kind = owner.info.kind, name = %owner.name, orphaned = dependents.len(), "dependents orphaned");
            return Ok(());
        }
        if owner.has_finalizer(FOREGROUND) {
            let blocking = dependents.iter().any(|(_, d)| {
                d.owners
                    .iter()
                    .any(|r| r.uid == uid && r.block_owner_deletion == Some(true))
            });
            if blocking {
                for (dependent_uid, dependent) in dependents {
                    if !dependent.deleting {
                        self.queue.push(Work::Dependent(dependent_uid));
                    }
                }
                return Ok(());
            }
            self.edit(&owner, uid, |object| {
                if let Some(f) = object.metadata.finalizers.as_mut() {
                    f.retain(|f| f != FOREGROUND);
                }
            })
            .await?;
            tracing::info!(kind = owner.info.kind, name = %owner.name, "foreground deletion done");
        }
        Ok(())
    }

    fn api(&self, node: &GraphNode) -> Api<DynamicObject> {
        let resource = api_resource(node.info);
        match &node.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        }
    }

    /// Read the object, change it with `change` and write it back if it is still the object
    /// with `uid`; a conflict is an error (retried).
    async fn edit(
        &self,
        node: &GraphNode,
        uid: &str,
        change: impl FnOnce(&mut DynamicObject),
    ) -> Result<(), Error> {
        let api = self.api(node);
        let Some(mut object) = api.get_opt(&node.name).await? else {
            return Ok(());
        };
        if object.metadata.uid.as_deref() != Some(uid) {
            return Ok(());
        }
        let before = object.metadata.clone();
        change(&mut object);
        if object.metadata == before {
            return Ok(());
        }
        match api
            .replace(&node.name, &PostParams::default(), &object)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(uid: &str, owners: &[&str], finalizers: &[&str], deleting: bool) -> DynamicObject {
        let refs: Vec<_> = owners
            .iter()
            .map(|o| json!({"apiVersion": "v1", "kind": "ReplicationController", "name": o, "uid": o}))
            .collect();
        let mut meta = json!({"name": uid, "namespace": "default", "uid": uid,
                              "ownerReferences": refs, "finalizers": finalizers});
        if deleting {
            meta["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta}))
            .unwrap()
    }

    fn pods() -> &'static ResourceInfo {
        registry::find("", "v1", "pods").unwrap()
    }

    #[test]
    fn dependents_are_indexed_and_rechecked_when_their_owner_goes() {
        let mut graph = Graph::default();
        assert_eq!(graph.upsert(pods(), &object("rc", &[], &[], false)), vec![]);
        assert_eq!(
            graph.upsert(pods(), &object("p1", &["rc"], &[], false)),
            vec![Work::Dependent("p1".into())]
        );
        graph.upsert(pods(), &object("p2", &["rc"], &[], false));
        let mut work = graph.remove(&object("rc", &[], &[], false));
        work.sort_by_key(|w| format!("{w:?}"));
        assert_eq!(
            work,
            vec![Work::Dependent("p1".into()), Work::Dependent("p2".into())]
        );
    }

    #[test]
    fn deleting_owners_with_finalizers_are_worked_on_and_dependents_leaving_wake_them() {
        let mut graph = Graph::default();
        graph.upsert(pods(), &object("p1", &["rc"], &[], false));
        assert_eq!(
            graph.upsert(pods(), &object("rc", &[], &[FOREGROUND], true)),
            vec![Work::Owner("rc".into())]
        );
        assert_eq!(
            graph.remove(&object("p1", &["rc"], &[], false)),
            vec![Work::Owner("rc".into())]
        );
        assert!(graph.dependents_of("rc").is_empty());
        assert_eq!(
            graph.upsert(pods(), &object("rc2", &[], &[ORPHAN], true)),
            vec![Work::Owner("rc2".into())]
        );
    }

    #[test]
    fn a_changed_owner_list_moves_the_dependent() {
        let mut graph = Graph::default();
        graph.upsert(pods(), &object("p1", &["a"], &[], false));
        graph.upsert(pods(), &object("p1", &["b"], &[], false));
        assert!(graph.dependents_of("a").is_empty());
        assert_eq!(graph.dependents_of("b").len(), 1);
    }
}
