//! The scheduling loop: one thread that owns the cluster mirror, the queue
//! and the plugin calls; watchers feed it, binding tasks report back to it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use futures::StreamExt;
use hortator_plugin_runtime::PluginManager;
use hortator_plugin_runtime::scheduling::{
    AssignedPod, ClusterEvent, KeyValue, Node, Pod as PodRecord, ScheduleResult, SchedulerPlugin,
};
use k8s_openapi::api::core::v1::{Node as KubeNode, Pod, ReplicationController, Service};
use kube::api::{Api, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::convert;
use crate::metrics::{Outcome, ProfileMetrics, SchedulerMetrics};
use crate::queue::Queue;
use crate::recorder::{Record, Recorder, unschedulable_message};
use crate::stats::Stats;

/// Events per `update` call, so that a replay of a large cluster is many
/// short calls rather than one long one.
const UPDATE_CHUNK: usize = 2_048;
/// Binding requests in flight at most.
const MAX_BINDS_IN_FLIGHT: usize = 256;
/// How often the queue's depths are published.
const DEPTHS_EVERY: Duration = Duration::from_secs(1);

/// What the watchers and binding tasks tell the scheduling thread.
enum Input {
    Node(Event<KubeNode>),
    Pod(Event<Pod>),
    Service(Event<Service>),
    Controller(Event<ReplicationController>),
    /// A binding failed; the pod is retried.
    BindFailed {
        uid: String,
        node: String,
        error: String,
    },
}

/// Start the watchers and the scheduling thread. Runs until `stop` is set
/// or the runtime shuts down.
pub(crate) fn start(
    client: kube::Client,
    plugins: Arc<PluginManager>,
    stats: Arc<Stats>,
    metrics: SchedulerMetrics,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let (sender, receiver) = std::sync::mpsc::channel();
    let inputs = sender;
    watch::<KubeNode>(&client, inputs.clone(), Input::Node);
    watch::<Pod>(&client, inputs.clone(), Input::Pod);
    watch::<Service>(&client, inputs.clone(), Input::Service);
    watch::<ReplicationController>(&client, inputs.clone(), Input::Controller);
    let runtime = tokio::runtime::Handle::current();
    let recorder = Recorder::spawn(client.clone(), stats.clone());
    let state = Loop {
        client,
        runtime,
        recorder,
        plugins,
        stats,
        metrics,
        stop,
        inputs,
        binds: Arc::new(Semaphore::new(MAX_BINDS_IN_FLIGHT)),
        cluster: Cluster::default(),
        queue: Queue::default(),
        others: HashMap::new(),
        profiles: Vec::new(),
        relisting: HashMap::new(),
        synced: HashSet::new(),
        failed: HashSet::new(),
    };
    std::thread::Builder::new()
        .name("scheduler".into())
        .spawn(move || state.run(receiver))
}

/// Forward every event of one resource to the scheduling thread.
fn watch<K>(client: &kube::Client, inputs: Sender<Input>, wrap: fn(Event<K>) -> Input)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + 'static,
{
    let api: Api<K> = Api::all(client.clone());
    tokio::spawn(async move {
        let mut stream = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(event) = stream.next().await {
            match event {
                Ok(event) => {
                    if inputs.send(wrap(event)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, kind = K::kind(&()).as_ref(), "watch failed; retrying")
                }
            }
        }
    });
}

/// A pod that occupies a node in the mirror.
struct Placed {
    record: PodRecord,
    node: String,
    /// Placed by this scheduler and not yet seen bound by the watch.
    assumed: bool,
}

/// The scheduler's view of the cluster, which every plugin is fed from.
#[derive(Default)]
struct Cluster {
    nodes: BTreeMap<String, Node>,
    placed: HashMap<String, Placed>,
    /// Label selectors by namespace, for spreading: (kind/name) → selector.
    selectors: HashMap<String, BTreeMap<String, Vec<KeyValue>>>,
}

/// One scheduler profile and what its plugin has not been told yet.
struct Profile {
    name: String,
    plugin: Arc<SchedulerPlugin>,
    pending: Vec<ClusterEvent>,
    /// The plugin's view is empty or stale: send the whole cluster.
    replay: bool,
    metrics: ProfileMetrics,
}

struct Loop {
    client: kube::Client,
    runtime: tokio::runtime::Handle,
    recorder: Recorder,
    plugins: Arc<PluginManager>,
    stats: Arc<Stats>,
    metrics: SchedulerMetrics,
    stop: Arc<AtomicBool>,
    inputs: Sender<Input>,
    binds: Arc<Semaphore>,
    cluster: Cluster,
    queue: Queue,
    /// Pending pods that name a scheduler no profile serves (yet).
    others: HashMap<String, Arc<Pod>>,
    profiles: Vec<Profile>,
    /// Objects seen since a watch restarted, by kind, to find the deleted ones.
    relisting: HashMap<&'static str, HashSet<String>>,
    /// Kinds whose first list is complete. Nothing is scheduled before nodes
    /// and pods are (a partial view would place pods badly).
    synced: HashSet<&'static str>,
    /// Pods with a `FailedScheduling` record.
    failed: HashSet<String>,
}

impl Loop {
    fn run(mut self, receiver: Receiver<Input>) {
        tracing::info!("scheduler started");
        let mut changed = false;
        let mut depths_published = Instant::now();
        loop {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            // Wait for input only when there is nothing to schedule.
            let now = Instant::now();
            if now.duration_since(depths_published) >= DEPTHS_EVERY {
                self.metrics.queue(self.queue.depths());
                depths_published = now;
            }
            if !self.queue.has_active() || self.synced.len() < 2 {
                let wait = self
                    .queue
                    .next_wakeup()
                    .map_or(Duration::from_millis(500), |at| {
                        at.saturating_duration_since(now)
                    })
                    .min(Duration::from_millis(500));
                match receiver.recv_timeout(wait) {
                    Ok(input) => changed |= self.apply(input),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            while let Ok(input) = receiver.try_recv() {
                changed |= self.apply(input);
            }
            if changed {
                self.queue.cluster_changed(Instant::now());
                changed = false;
            }
            self.sync_profiles();
            if !(self.synced.contains("Node") && self.synced.contains("Pod")) {
                continue;
            }
            if let Some(pod) = self.queue.pop(Instant::now()) {
                self.schedule(pod);
            }
        }
    }

    /// Apply one input to the mirror and the queue; true if the cluster
    /// changed in a way that may make an unschedulable pod fit.
    fn apply(&mut self, input: Input) -> bool {
        match input {
            Input::Node(event) => self.node_event(event),
            Input::Pod(event) => self.pod_event(event),
            Input::Service(event) => {
                self.selector_event(event, "Service", |s| {
                    s.spec.as_ref().and_then(|s| s.selector.clone())
                });
                false
            }
            Input::Controller(event) => {
                self.selector_event(event, "ReplicationController", |rc| {
                    rc.spec.as_ref().and_then(|s| s.selector.clone())
                });
                false
            }
            Input::BindFailed { uid, node, error } => {
                tracing::warn!(%uid, %node, %error, "binding failed; the pod will be retried");
                self.stats.bind_failed();
                if self
                    .cluster
                    .placed
                    .get(&uid)
                    .is_some_and(|p| p.assumed && p.node == node)
                {
                    self.cluster.placed.remove(&uid);
                    self.broadcast(ClusterEvent::PodUnassigned(uid.clone()));
                }
                self.queue.retry(&uid, Instant::now());
                true
            }
        }
    }

    fn node_event(&mut self, event: Event<KubeNode>) -> bool {
        match event {
            Event::Init => {
                self.relisting.insert("Node", HashSet::new());
                false
            }
            Event::InitApply(node) | Event::Apply(node) => {
                let record = convert::node(&node);
                if let Some(seen) = self.relisting.get_mut("Node") {
                    seen.insert(record.name.clone());
                }
                match self.cluster.nodes.get(&record.name) {
                    Some(old) if *old == record => false,
                    Some(_) => {
                        self.cluster
                            .nodes
                            .insert(record.name.clone(), record.clone());
                        self.broadcast(ClusterEvent::NodeUpdated(record));
                        true
                    }
                    None => {
                        self.cluster
                            .nodes
                            .insert(record.name.clone(), record.clone());
                        self.broadcast(ClusterEvent::NodeAdded(record));
                        true
                    }
                }
            }
            Event::Delete(node) => {
                let name = node.metadata.name.unwrap_or_default();
                self.remove_node(&name);
                false
            }
            Event::InitDone => {
                self.synced.insert("Node");
                let seen = self.relisting.remove("Node").unwrap_or_default();
                let gone: Vec<String> = self
                    .cluster
                    .nodes
                    .keys()
                    .filter(|n| !seen.contains(*n))
                    .cloned()
                    .collect();
                for name in gone {
                    self.remove_node(&name);
                }
                false
            }
        }
    }

    fn remove_node(&mut self, name: &str) {
        if self.cluster.nodes.remove(name).is_some() {
            self.broadcast(ClusterEvent::NodeRemoved(name.to_string()));
        }
    }

    fn pod_event(&mut self, event: Event<Pod>) -> bool {
        match event {
            Event::Init => {
                self.relisting.insert("Pod", HashSet::new());
                false
            }
            Event::InitApply(pod) | Event::Apply(pod) => {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                if let Some(seen) = self.relisting.get_mut("Pod") {
                    seen.insert(uid.clone());
                }
                self.pod_changed(uid, pod)
            }
            Event::Delete(pod) => {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                self.pod_gone(&uid)
            }
            Event::InitDone => {
                self.synced.insert("Pod");
                let seen = self.relisting.remove("Pod").unwrap_or_default();
                let gone: Vec<String> = self
                    .cluster
                    .placed
                    .iter()
                    .filter(|(uid, p)| !p.assumed && !seen.contains(*uid))
                    .map(|(uid, _)| uid.clone())
                    .collect();
                let mut changed = false;
                for uid in gone {
                    changed |= self.pod_gone(&uid);
                }
                changed
            }
        }
    }

    fn pod_changed(&mut self, uid: String, pod: Pod) -> bool {
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty());
        match node {
            Some(_) if convert::is_terminal(&pod) => self.pod_gone(&uid),
            Some(node) => {
                self.others.remove(&uid);
                self.queue.remove(&uid);
                self.forget_failures(&uid);
                match self.cluster.placed.get_mut(&uid) {
                    Some(placed) if placed.node == node => {
                        placed.assumed = false;
                        false
                    }
                    Some(_) => {
                        self.broadcast(ClusterEvent::PodUnassigned(uid.clone()));
                        self.place(uid, &pod, node);
                        true
                    }
                    None => {
                        self.place(uid, &pod, node);
                        false
                    }
                }
            }
            None => {
                let ours = self.profiles.iter().any(|p| p.name == scheduler_name(&pod));
                if pod.metadata.deletion_timestamp.is_some() {
                    self.pod_gone(&uid);
                } else if !ours {
                    self.queue.remove(&uid);
                    self.others.insert(uid, Arc::new(pod));
                } else if !self.cluster.placed.contains_key(&uid) {
                    self.others.remove(&uid);
                    self.queue.upsert(&uid, Arc::new(pod), Instant::now());
                }
                false
            }
        }
    }

    fn place(&mut self, uid: String, pod: &Pod, node: String) {
        let record = convert::pod(pod);
        self.broadcast(ClusterEvent::PodAssigned(AssignedPod {
            pod: record.clone(),
            node_name: node.clone(),
        }));
        self.cluster.placed.insert(
            uid,
            Placed {
                record,
                node,
                assumed: false,
            },
        );
    }

    /// The pod is deleted or finished: it frees its node and leaves the queue.
    fn pod_gone(&mut self, uid: &str) -> bool {
        self.others.remove(uid);
        self.queue.remove(uid);
        self.forget_failures(uid);
        if self.cluster.placed.remove(uid).is_some() {
            self.broadcast(ClusterEvent::PodUnassigned(uid.to_string()));
            return true;
        }
        false
    }

    fn selector_event<K: kube::Resource>(
        &mut self,
        event: Event<K>,
        kind: &'static str,
        selector: fn(&K) -> Option<BTreeMap<String, String>>,
    ) {
        let key = |object: &K| {
            (
                object.meta().namespace.clone().unwrap_or_default(),
                format!("{kind}/{}", object.meta().name.clone().unwrap_or_default()),
            )
        };
        match event {
            Event::Init => {
                self.relisting.insert(kind, HashSet::new());
            }
            Event::InitApply(object) | Event::Apply(object) => {
                let (namespace, name) = key(&object);
                if let Some(seen) = self.relisting.get_mut(kind) {
                    seen.insert(format!("{namespace}/{name}"));
                }
                let selectors = self.cluster.selectors.entry(namespace).or_default();
                match selector(&object).filter(|s| !s.is_empty()) {
                    Some(s) => {
                        selectors.insert(
                            name,
                            s.into_iter()
                                .map(|(key, value)| KeyValue { key, value })
                                .collect(),
                        );
                    }
                    None => {
                        selectors.remove(&name);
                    }
                }
            }
            Event::Delete(object) => {
                let (namespace, name) = key(&object);
                if let Some(selectors) = self.cluster.selectors.get_mut(&namespace) {
                    selectors.remove(&name);
                }
            }
            Event::InitDone => {
                let seen = self.relisting.remove(kind).unwrap_or_default();
                let prefix = format!("{kind}/");
                for (namespace, selectors) in &mut self.cluster.selectors {
                    selectors.retain(|name, _| {
                        !name.starts_with(&prefix) || seen.contains(&format!("{namespace}/{name}"))
                    });
                }
            }
        }
    }

    /// The pod left the queue: the recorder forgets its failures.
    fn forget_failures(&mut self, uid: &str) {
        if self.failed.remove(uid) {
            self.recorder.record(Record::Forget(uid.to_string()));
        }
    }

    /// Queue a change for every profile's plugin.
    fn broadcast(&mut self, event: ClusterEvent) {
        if let Some((last, rest)) = self.profiles.split_last_mut() {
            for profile in rest {
                if !profile.replay {
                    profile.pending.push(event.clone());
                }
            }
            if !last.replay {
                last.pending.push(event);
            }
        }
    }

    /// Follow the configured profiles: new ones and swapped plugins start
    /// from a replay of the whole cluster.
    fn sync_profiles(&mut self) {
        let configured = self.plugins.scheduler_profiles();
        let mut profiles = Vec::with_capacity(configured.len());
        for profile in configured.iter() {
            let plugin = profile.slot.current();
            let previous = self
                .profiles
                .iter()
                .position(|p| p.name == profile.scheduler_name)
                .map(|i| self.profiles.swap_remove(i));
            profiles.push(match previous {
                Some(p) if Arc::ptr_eq(&p.plugin, &plugin) => p,
                _ => {
                    tracing::info!(profile = %profile.scheduler_name, plugin = %plugin.info().plugin_name, "scheduler plugin (re)loaded; replaying the cluster");
                    Profile {
                        name: profile.scheduler_name.clone(),
                        plugin,
                        pending: Vec::new(),
                        replay: true,
                        metrics: self.metrics.profile(&profile.scheduler_name),
                    }
                }
            });
        }
        // New profiles (and swapped plugins) start with a replay.
        let added = profiles.iter().any(|p| p.replay);
        self.profiles = profiles;
        if added {
            self.adopt_others();
        }
        for i in 0..self.profiles.len() {
            self.flush(i);
        }
    }

    /// Queue the pending pods of schedulers that now have a profile.
    fn adopt_others(&mut self) {
        let names: HashSet<&str> = self.profiles.iter().map(|p| p.name.as_str()).collect();
        let adopted: Vec<String> = self
            .others
            .iter()
            .filter(|(_, pod)| names.contains(scheduler_name(pod)))
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in adopted {
            if let Some(pod) = self.others.remove(&uid) {
                self.queue.upsert(&uid, pod, Instant::now());
            }
        }
    }

    /// Bring one profile's plugin up to date.
    fn flush(&mut self, index: usize) {
        let profile = &mut self.profiles[index];
        if profile.plugin.take_state_lost() {
            tracing::warn!(profile = %profile.name, "scheduler plugin lost its state; replaying the cluster");
            profile.replay = true;
        }
        let events = if profile.replay {
            profile.pending.clear();
            let mut events: Vec<ClusterEvent> = self
                .cluster
                .nodes
                .values()
                .cloned()
                .map(ClusterEvent::NodeAdded)
                .collect();
            events.extend(self.cluster.placed.values().map(|p| {
                ClusterEvent::PodAssigned(AssignedPod {
                    pod: p.record.clone(),
                    node_name: p.node.clone(),
                })
            }));
            events
        } else {
            std::mem::take(&mut profile.pending)
        };
        if events.is_empty() && !profile.replay {
            return;
        }
        profile.replay = false;
        let started = Instant::now();
        for chunk in events.chunks(UPDATE_CHUNK) {
            if let Err(e) = profile.plugin.update(chunk) {
                tracing::error!(profile = %profile.name, error = %e, "scheduler plugin failed to take cluster changes; replaying");
                profile.replay = true;
                break;
            }
        }
        self.stats.updated(events.len(), started.elapsed());
    }

    fn schedule(&mut self, pod: Arc<Pod>) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let name = scheduler_name(&pod).to_string();
        let Some(index) = self.profiles.iter().position(|p| p.name == name) else {
            self.queue.remove(&uid);
            self.others.insert(uid, pod);
            return;
        };
        let span = tracing::debug_span!("schedule", pod = pod.metadata.name.as_deref().unwrap_or_default(), profile = %name);
        let _entered = span.enter();
        let mut record = convert::pod(&pod);
        record.spread_selectors = self.spread_selectors(&record);
        self.flush(index);
        let started = Instant::now();
        let result = self.profiles[index].plugin.schedule(&record);
        let took = started.elapsed();
        self.stats.scheduled(took);
        let outcome = match &result {
            Ok(ScheduleResult::Node(node)) if self.cluster.nodes.contains_key(node) => {
                Outcome::Scheduled
            }
            Ok(ScheduleResult::Unschedulable(_)) => Outcome::Unschedulable,
            Ok(ScheduleResult::Node(_)) | Err(_) => Outcome::Error,
        };
        self.profiles[index].metrics.attempt(outcome, took);
        match result {
            Ok(ScheduleResult::Node(node)) if self.cluster.nodes.contains_key(&node) => {
                self.assume(uid, &pod, record, node, &name);
            }
            Ok(ScheduleResult::Node(node)) => {
                tracing::warn!(%node, "the scheduler plugin chose a node that does not exist");
                self.queue.retry(&uid, Instant::now());
            }
            Ok(ScheduleResult::Unschedulable(reasons)) => {
                let reasons: Vec<String> = reasons.into_iter().map(|r| r.reason).collect();
                let message = unschedulable_message(self.cluster.nodes.len(), &reasons);
                tracing::debug!(%message, "unschedulable");
                self.stats.unschedulable();
                self.queue.unschedulable(&uid, Instant::now());
                self.failed.insert(uid);
                self.recorder.record(Record::FailedScheduling {
                    pod,
                    message,
                    scheduler: name,
                });
            }
            Err(e) => {
                tracing::error!(error = %e, "scheduler plugin failed; the pod will be retried");
                self.queue.retry(&uid, Instant::now());
            }
        }
    }

    /// Take the placement as done, tell every plugin, and bind in the background.
    fn assume(
        &mut self,
        uid: String,
        pod: &Arc<Pod>,
        mut record: PodRecord,
        node: String,
        scheduler: &str,
    ) {
        record.spread_selectors.clear();
        self.broadcast(ClusterEvent::PodAssigned(AssignedPod {
            pod: record.clone(),
            node_name: node.clone(),
        }));
        self.cluster.placed.insert(
            uid.clone(),
            Placed {
                record,
                node: node.clone(),
                assumed: true,
            },
        );
        self.queue.binding(&uid);
        let client = self.client.clone();
        let inputs = self.inputs.clone();
        let recorder = self.recorder.clone();
        let stats = self.stats.clone();
        let binds = self.binds.clone();
        let pod = pod.clone();
        let scheduler = scheduler.to_string();
        self.runtime.spawn(async move {
            let Ok(_permit) = binds.acquire().await else {
                return;
            };
            match bind(&client, &pod, &uid, &node).await {
                Ok(()) => {
                    stats.bound();
                    recorder.record(Record::Scheduled {
                        pod,
                        node,
                        scheduler,
                    });
                }
                Err(error) => {
                    let _ = inputs.send(Input::BindFailed { uid, node, error });
                }
            }
        });
    }

    /// The selectors of the services and replication controllers in the
    /// pod's namespace that select it.
    fn spread_selectors(&self, pod: &PodRecord) -> Vec<Vec<KeyValue>> {
        let Some(selectors) = self.cluster.selectors.get(&pod.namespace) else {
            return Vec::new();
        };
        selectors
            .values()
            .filter(|selector| {
                selector.iter().all(|kv| {
                    pod.labels
                        .iter()
                        .any(|l| l.key == kv.key && l.value == kv.value)
                })
            })
            .cloned()
            .collect()
    }
}

fn scheduler_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.scheduler_name.as_deref())
        .unwrap_or("default-scheduler")
}

/// POST pods/<name>/binding, with the pod's uid as a precondition.
async fn bind(client: &kube::Client, pod: &Pod, uid: &str, node: &str) -> Result<(), String> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let binding = json!({
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name, "namespace": namespace, "uid": uid},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    });
    api.create_subresource::<_, serde_json::Value>(
        "binding",
        name,
        &PostParams::default(),
        &binding,
    )
    .await
    .map(drop)
    .map_err(|e| e.to_string())
}
