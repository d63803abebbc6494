//! The pod sync loop: one worker per pod bound to this node, reconciling the pod's spec with
//! the containers that exist (sandbox, network, volumes, images, containers, restarts,
//! probes), reporting status, and tearing everything down when the pod is deleted.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bollard::models::{ContainerCreateBody, ContainerInspectResponse, HostConfig};
use hortator_events::Recorder;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tracing::Instrument;

use crate::env::{ConfigError, Sources, expand};
use crate::hooks::{self, Hook};
use crate::metrics::KubeletMetrics;
use crate::network::{HostPortMapping, PodIdentity, PodNetworking, Protocol};
use crate::pause::{PAUSE_COMMAND, PAUSE_IMAGE};
use crate::probes::{self, Outcome, Tracker};
use crate::runtime::{Instance, Runtime, RuntimeError, SANDBOX};
use crate::server::LookupError;
use crate::volumes;

/// The first restart delay of a crashing container; it doubles up to [`MAX_BACKOFF`].
const INITIAL_BACKOFF: Duration = Duration::from_secs(10);
/// The longest restart delay.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A container that ran this long restarts without delay.
const BACKOFF_RESET: Duration = Duration::from_secs(600);
/// How often a worker looks again when nothing wakes it.
const RESYNC: Duration = Duration::from_secs(10);
/// How long containers of a pod removed from the API (not gracefully deleted) get.
const ORPHAN_GRACE: Duration = Duration::from_secs(2);
/// The least a container gets between SIGTERM and SIGKILL after its preStop hook (the
/// kubelet's minimum).
const GRACE_AFTER_PRE_STOP: Duration = Duration::from_secs(2);
/// How long a postStart hook may run before it counts as failed.
const POST_START_TIMEOUT: Duration = Duration::from_secs(120);

/// What every worker shares.
pub(crate) struct Context {
    /// API client.
    pub client: kube::Client,
    /// The engine.
    pub runtime: Runtime,
    /// Pod networking.
    pub network: Arc<PodNetworking>,
    /// Services, for the environment.
    pub services: kube::runtime::reflector::Store<k8s_openapi::api::core::v1::Service>,
    /// Where pods' directories live.
    pub pods_dir: PathBuf,
    /// The node's address.
    pub node_ip: Ipv4Addr,
    /// The node's name.
    pub node_name: String,
    /// Which engine container serves each pod container (logs and exec).
    pub registry: Registry,
    /// Event writer.
    pub recorder: Recorder,
    /// Pod start latency and restarts.
    pub metrics: KubeletMetrics,
}

/// Engine ids of one pod container's instances.
#[derive(Debug, Clone, Default)]
pub(crate) struct ContainerIds {
    /// The newest instance.
    pub current: Option<String>,
    /// The one before it.
    pub previous: Option<String>,
    /// Whether the newest instance is running or has run.
    pub started: bool,
    /// Why it is not running yet.
    pub waiting: Option<String>,
}

/// Pod (namespace, name) → container name → instances.
/// A pod's containers by name.
type PodContainers = BTreeMap<String, ContainerIds>;

#[derive(Clone, Default)]
pub(crate) struct Registry {
    pods: Arc<RwLock<HashMap<(String, String), PodContainers>>>,
}

impl Registry {
    fn set(&self, namespace: &str, name: &str, containers: PodContainers) {
        self.pods
            .write()
            .expect("registry lock")
            .insert((namespace.to_string(), name.to_string()), containers);
    }

    fn remove(&self, namespace: &str, name: &str) {
        self.pods
            .write()
            .expect("registry lock")
            .remove(&(namespace.to_string(), name.to_string()));
    }

    /// A pod's containers, if the pod runs here.
    pub fn get(&self, namespace: &str, name: &str) -> Option<PodContainers> {
        self.pods
            .read()
            .expect("registry lock")
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }
}

impl crate::server::ContainerLookup for Registry {
    fn container_id(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
    ) -> Result<String, LookupError> {
        let containers = self.get(namespace, pod).ok_or(LookupError::PodNotFound)?;
        let ids = containers
            .get(container)
            .ok_or(LookupError::ContainerNotFound)?;
        if previous {
            return ids.previous.clone().ok_or(LookupError::NoPrevious);
        }
        match &ids.current {
            Some(id) if ids.started => Ok(id.clone()),
            _ => Err(LookupError::Waiting {
                reason: ids
                    .waiting
                    .clone()
                    .unwrap_or_else(|| "ContainerCreating".to_string()),
            }),
        }
    }
}

/// The handle of one pod's worker.
pub(crate) struct WorkerHandle {
    /// The latest pod; `None` once it is gone from the API.
    pub pod: watch::Sender<Option<Pod>>,
    /// Wakes the worker (a container died).
    pub wake: Arc<Notify>,
}

/// Start a worker for `pod`; it runs until the pod is torn down.
pub(crate) fn spawn_worker(
    ctx: Arc<Context>,
    pod: Pod,
    on_exit: impl FnOnce() + Send + 'static,
) -> WorkerHandle {
    let (tx, rx) = watch::channel(Some(pod.clone()));
    let wake = Arc::new(Notify::new());
    // A pod that ran before this agent started is not timed.
    let start_timed = pod.status.as_ref().is_some_and(|s| s.start_time.is_some());
    let worker = Worker {
        uid: pod.metadata.uid.clone().unwrap_or_default(),
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        ctx,
        pod,
        containers: BTreeMap::new(),
        pod_ip: None,
        last_status: None,
        start_time: None,
        engine_changed: false,
        seen: Instant::now(),
        start_timed,
    };
    let wake_worker = wake.clone();
    let span = tracing::info_span!("pod", pod = %worker.pod_ref(), uid = %worker.uid);
    tokio::spawn(
        async move {
            worker.run(rx, wake_worker).await;
            on_exit();
        }
        .instrument(span),
    );
    WorkerHandle { pod: tx, wake }
}

/// What the worker remembers about a container between syncs.
#[derive(Default)]
struct ContainerMemory {
    /// The engine instance the probes below belong to.
    instance: Option<String>,
    liveness: Option<Tracker>,
    readiness: Option<Tracker>,
    startup: Option<Tracker>,
    /// Why the container is not running (image pull, config, back-off).
    waiting: Option<(String, String)>,
    /// Don't start before this (back-off after a crash or a failed pull).
    not_before: Option<Instant>,
    /// Failed image pulls in a row.
    pull_failures: u32,
    /// The instance a BackOff event was recorded for.
    backoff_reported: Option<String>,
}

/// One instance of a container, as the engine describes it.
struct Observed {
    instance: Instance,
    inspect: ContainerInspectResponse,
}

impl Observed {
    fn running(&self) -> bool {
        self.state().and_then(|s| s.running).unwrap_or(false)
    }

    fn state(&self) -> Option<&bollard::models::ContainerState> {
        self.inspect.state.as_ref()
    }

    fn exit_code(&self) -> i64 {
        self.state().and_then(|s| s.exit_code).unwrap_or(0)
    }

    fn started_at(&self) -> Option<jiff::Timestamp> {
        docker_time(self.state().and_then(|s| s.started_at.as_deref()))
    }

    fn finished_at(&self) -> Option<jiff::Timestamp> {
        docker_time(self.state().and_then(|s| s.finished_at.as_deref()))
    }

    fn terminated(&self) -> ContainerStateTerminated {
        let oom = self.state().and_then(|s| s.oom_killed).unwrap_or(false);
        let code = self.exit_code();
        ContainerStateTerminated {
            exit_code: i32::try_from(code).unwrap_or(-1),
            reason: Some(
                if oom {
                    "OOMKilled"
                } else if code == 0 {
                    "Completed"
                } else {
                    "Error"
                }
                .to_string(),
            ),
            started_at: self.started_at().map(Time),
            finished_at: self.finished_at().map(Time),
            container_id: Some(format!("docker://{}", self.instance.id)),
            message: self
                .state()
                .and_then(|s| s.error.clone())
                .filter(|e| !e.is_empty()),
            signal: None,
        }
    }
}

/// Docker's timestamps; the zero time means "never".
fn docker_time(text: Option<&str>) -> Option<jiff::Timestamp> {
    text.and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .filter(|t| t.as_second() > 0)
}

struct Worker {
    ctx: Arc<Context>,
    uid: String,
    namespace: String,
    name: String,
    pod: Pod,
    containers: BTreeMap<String, ContainerMemory>,
    pod_ip: Option<Ipv4Addr>,
    last_status: Option<serde_json::Value>,
    start_time: Option<Time>,
    /// This pass started or stopped a container.
    engine_changed: bool,
    /// When this agent first saw the pod.
    seen: Instant,
    /// Whether the pod's start latency has been recorded (or will not be).
    start_timed: bool,
}

/// How a sync ended.
enum Next {
    /// Sync again after this long (or when woken).
    After(Duration),
    /// The pod is gone: the worker ends.
    Done,
}

impl Worker {
    fn pod_ref(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The pod as the kubelet's messages name it: `name_namespace(uid)`.
    fn pod_label(&self) -> String {
        format!("{}_{}({})", self.name, self.namespace, self.uid)
    }

    /// Where probes and hooks of container `id` run.
    fn target<'a>(
        &self,
        docker: &'a bollard::Docker,
        id: &'a str,
        container: &'a Container,
    ) -> probes::Target<'a> {
        probes::Target {
            docker,
            container_id: id,
            container,
            pod_ip: IpAddr::V4(self.pod_ip.unwrap_or(self.ctx.node_ip)),
        }
    }

    /// Run `container`'s `hook` (if it has one) in its instance `id`, for at most `timeout`;
    /// a failure is reported as a Warning event and returned.
    async fn run_hook(
        &self,
        hook: Hook,
        container: &Container,
        id: &str,
        timeout: Duration,
    ) -> Result<(), String> {
        let lifecycle = container.lifecycle.as_ref();
        let handler = match hook {
            Hook::PostStart => lifecycle.and_then(|l| l.post_start.as_ref()),
            Hook::PreStop => lifecycle.and_then(|l| l.pre_stop.as_ref()),
        };
        let Some(handler) = handler else {
            return Ok(());
        };
        let docker = self.ctx.runtime.docker.clone();
        let target = self.target(&docker, id, container);
        let result = hooks::run(handler, &target, &self.pod_label(), timeout).await;
        if let Err(message) = &result {
            tracing::info!(pod = %self.pod_ref(), container = %container.name, %message, "lifecycle hook failed");
            self.ctx
                .recorder
                .warning(&self.pod, hook.failure_reason(), message);
        }
        result
    }

    /// Stop instance `id` of container `name` within `grace`: its preStop hook first, then
    /// SIGTERM with what is left of the grace period (at least 2 s after a hook), then
    /// SIGKILL.
    async fn stop_container(&self, name: &str, id: &str, grace: Duration) {
        let mut left = grace;
        let hooked = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.containers.iter().find(|c| c.name == name))
            .filter(|c| c.lifecycle.as_ref().is_some_and(|l| l.pre_stop.is_some()));
        if let Some(container) = hooked.filter(|_| !grace.is_zero()) {
            let started = Instant::now();
            let _ = self.run_hook(Hook::PreStop, container, id, grace).await;
            left = grace
                .saturating_sub(started.elapsed())
                .max(GRACE_AFTER_PRE_STOP);
        }
        if let Err(e) = self.ctx.runtime.stop(id, left).await {
            tracing::warn!(pod = %self.pod_ref(), container = %name, error = %e, "cannot stop container");
        }
    }

    fn pod_dir(&self) -> PathBuf {
        self.ctx.pods_dir.join(&self.uid)
    }

    async fn run(mut self, mut updates: watch::Receiver<Option<Pod>>, wake: Arc<Notify>) {
        self.start_time = self.pod.status.as_ref().and_then(|s| s.start_time.clone());
        let mut gone = false;
        loop {
            let delay = match self.sync(gone).await {
                Next::Done => break,
                Next::After(delay) => delay,
            };
            tokio::select! {
                changed = updates.changed() => {
                    if changed.is_err() {
                        gone = true;
                    } else {
                        match updates.borrow_and_update().clone() {
                            Some(pod) => self.pod = pod,
                            None => gone = true,
                        }
                    }
                }
                () = wake.notified() => {}
                () = tokio::time::sleep(delay) => {}
            }
        }
        self.ctx.registry.remove(&self.namespace, &self.name);
    }

    /// One reconcile pass; idempotent.
    async fn sync(&mut self, gone: bool) -> Next {
        self.engine_changed = false;
        let mut observed = match self.observe().await {
            Ok(observed) => observed,
            Err(e) => {
                tracing::warn!(pod = %self.pod_ref(), error = %e, "cannot list containers");
                return Next::After(Duration::from_secs(2));
            }
        };
        if gone || self.pod.metadata.deletion_timestamp.is_some() {
            let instances: Vec<Instance> = observed
                .values()
                .flatten()
                .map(|o| o.instance.clone())
                .collect();
            if gone {
                self.teardown(&instances, ORPHAN_GRACE).await;
                return Next::Done;
            }
            let grace = self
                .pod
                .metadata
                .deletion_grace_period_seconds
                .or_else(|| {
                    self.pod
                        .spec
                        .as_ref()
                        .and_then(|s| s.termination_grace_period_seconds)
                })
                .unwrap_or(30)
                .max(0) as u64;
            self.teardown(&instances, Duration::from_secs(grace)).await;
            return self.delete_object().await;
        }
        if self.terminal(&observed) {
            // Nothing will run again: release the sandbox and the address, keep the status.
            if let Some(sandboxes) = observed.remove(SANDBOX) {
                for sandbox in sandboxes {
                    let _ = self.ctx.runtime.remove(&sandbox.instance.id).await;
                }
                if let Err(e) = self.ctx.network.teardown_pod(&self.uid).await {
                    tracing::warn!(pod = %self.pod_ref(), error = %e, "network teardown failed");
                }
            }
            self.publish(&observed, false).await;
            return Next::After(RESYNC * 6);
        }
        let sandbox = match self.ensure_sandbox(&mut observed).await {
            Ok(sandbox) => sandbox,
            Err(message) => {
                tracing::warn!(pod = %self.pod_ref(), %message, "sandbox not ready");
                self.ctx.recorder.warning(
                    &self.pod,
                    "FailedCreatePodSandBox",
                    format!("Failed to create pod sandbox: {message}"),
                );
                for name in self.container_names() {
                    self.containers.entry(name).or_default().waiting =
                        Some(("ContainerCreating".into(), String::new()));
                }
                self.publish(&observed, false).await;
                return Next::After(Duration::from_secs(3));
            }
        };
        if self.engine_changed {
            // The sandbox was replaced and its containers killed: see them as they are now.
            match self.observe().await {
                Ok(mut refreshed) => {
                    refreshed.remove(SANDBOX);
                    observed = refreshed;
                }
                Err(e) => {
                    tracing::warn!(pod = %self.pod_ref(), error = %e, "cannot list containers");
                    return Next::After(Duration::from_secs(2));
                }
            }
        }
        let mut next = RESYNC;
        let specs = self.container_specs();
        self.engine_changed = false;
        for container in &specs {
            let wait = self
                .sync_container(container, &sandbox, observed.get(&container.name))
                .await;
            next = next.min(wait);
        }
        // Containers were started or stopped: look again to report their new state.
        if self.engine_changed {
            match self.observe().await {
                Ok(refreshed) => observed = refreshed,
                Err(e) => {
                    tracing::warn!(pod = %self.pod_ref(), error = %e, "cannot list containers");
                    return Next::After(Duration::from_secs(2));
                }
            }
        }
        self.collect_garbage(&observed, &specs).await;
        self.publish(&observed, true).await;
        Next::After(next.max(Duration::from_millis(100)))
    }

    /// This pod's containers in the engine, by container name, oldest instance first.
    async fn observe(&self) -> Result<BTreeMap<String, Vec<Observed>>, RuntimeError> {
        let mut observed: BTreeMap<String, Vec<Observed>> = BTreeMap::new();
        for instance in self.ctx.runtime.list(Some(&self.uid)).await? {
            // One removed meanwhile is simply not there.
            if let Ok(inspect) = self.ctx.runtime.inspect(&instance.id).await {
                observed
                    .entry(instance.container.clone())
                    .or_default()
                    .push(Observed { instance, inspect });
            }
        }
        for list in observed.values_mut() {
            list.sort_by_key(|o| o.instance.attempt);
        }
        Ok(observed)
    }

    fn container_specs(&self) -> Vec<Container> {
        self.pod
            .spec
            .as_ref()
            .map(|s| s.containers.clone())
            .unwrap_or_default()
    }

    fn container_names(&self) -> Vec<String> {
        self.container_specs().into_iter().map(|c| c.name).collect()
    }

    fn restart_policy(&self) -> &str {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.as_deref())
            .unwrap_or("Always")
    }

    fn host_network(&self) -> bool {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false)
    }

    /// Whether the exited `latest` instance is to be started again.
    fn restarts(&self, latest: &Observed) -> bool {
        match self.restart_policy() {
            "Never" => false,
            "OnFailure" => latest.exit_code() != 0,
            _ => true,
        }
    }

    /// Every container has exited for good (restart policy Never/OnFailure).
    fn terminal(&self, observed: &BTreeMap<String, Vec<Observed>>) -> bool {
        let specs = self.container_specs();
        !specs.is_empty()
            && self.restart_policy() != "Always"
            && specs.iter().all(|c| {
                observed
                    .get(&c.name)
                    .and_then(|l| l.last())
                    .is_some_and(|latest| !latest.running() && !self.restarts(latest))
            })
    }

    /// The running sandbox (created, and wired into the network, when missing).
    async fn ensure_sandbox(
        &mut self,
        observed: &mut BTreeMap<String, Vec<Observed>>,
    ) -> Result<String, String> {
        let sandboxes = observed.remove(SANDBOX).unwrap_or_default();
        let running = sandboxes.iter().rev().find(|s| s.running());
        if let Some(sandbox) = running {
            let id = sandbox.instance.id.clone();
            if self.host_network() {
                self.pod_ip = Some(self.ctx.node_ip);
            } else if self.pod_ip.is_none() {
                let pid = sandbox.state().and_then(|s| s.pid).unwrap_or(0) as u32;
                self.pod_ip = Some(self.wire(&id, pid).await?);
            }
            for stale in sandboxes.iter().filter(|s| s.instance.id != id) {
                let _ = self.ctx.runtime.remove(&stale.instance.id).await;
            }
            return Ok(id);
        }
        // No running sandbox: the network namespace is gone; so is every container in it.
        let attempt = sandboxes.last().map_or(0, |s| s.instance.attempt + 1);
        if !sandboxes.is_empty() {
            tracing::info!(pod = %self.pod_ref(), "sandbox exited; recreating the pod's containers");
            for list in observed.values() {
                for instance in list.iter().filter(|o| o.running()) {
                    let _ = self.ctx.runtime.kill(&instance.instance.id).await;
                    self.engine_changed = true;
                }
            }
            if let Err(e) = self.ctx.network.teardown_pod(&self.uid).await {
                return Err(format!("network teardown: {e}"));
            }
            for sandbox in &sandboxes {
                let _ = self.ctx.runtime.remove(&sandbox.instance.id).await;
            }
            self.pod_ip = None;
        }
        let labels =
            self.ctx
                .runtime
                .labels(&self.namespace, &self.name, &self.uid, SANDBOX, attempt, "");
        let hostname: String = self.name.chars().take(63).collect();
        let body = ContainerCreateBody {
            image: Some(PAUSE_IMAGE.to_string()),
            cmd: Some(vec![PAUSE_COMMAND.to_string()]),
            hostname: (!self.host_network()).then_some(hostname),
            labels: Some(labels),
            host_config: Some(HostConfig {
                network_mode: Some(if self.host_network() { "host" } else { "none" }.into()),
                ipc_mode: Some("shareable".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let name = self.engine_name(SANDBOX, attempt);
        let id = self
            .ctx
            .runtime
            .run(&name, body)
            .await
            .map_err(|e| format!("cannot start the sandbox: {e}"))?;
        if self.host_network() {
            self.pod_ip = Some(self.ctx.node_ip);
            return Ok(id);
        }
        let pid = self
            .ctx
            .runtime
            .inspect(&id)
            .await
            .ok()
            .and_then(|i| i.state.and_then(|s| s.pid))
            .unwrap_or(0) as u32;
        match self.wire(&id, pid).await {
            Ok(ip) => {
                self.pod_ip = Some(ip);
                Ok(id)
            }
            Err(e) => {
                let _ = self.ctx.runtime.remove(&id).await;
                Err(e)
            }
        }
    }

    /// Wire sandbox `id` (process `pid`) into the pod network.
    async fn wire(&self, id: &str, pid: u32) -> Result<Ipv4Addr, String> {
        if pid == 0 {
            return Err("the sandbox has no process".into());
        }
        let pod = PodIdentity {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
        };
        self.ctx
            .network
            .setup_pod(&pod, id, pid, &self.host_ports())
            .await
            .map_err(|e| e.to_string())
    }

    fn host_ports(&self) -> Vec<HostPortMapping> {
        self.container_specs()
            .iter()
            .flat_map(|c| c.ports.clone().unwrap_or_default())
            .filter_map(|p| {
                let host_port = u16::try_from(p.host_port?).ok().filter(|p| *p > 0)?;
                Some(HostPortMapping {
                    host_ip: p.host_ip.as_deref().and_then(|ip| ip.parse().ok()),
                    host_port,
                    container_port: u16::try_from(p.container_port).ok()?,
                    protocol: if p.protocol.as_deref() == Some("UDP") {
                        Protocol::Udp
                    } else {
                        Protocol::Tcp
                    },
                })
            })
            .collect()
    }

    fn engine_name(&self, container: &str, attempt: u32) -> String {
        let uid: String = self.uid.chars().take(8).collect();
        format!(
            "hortator_{container}_{}_{}_{uid}_{attempt}",
            self.name, self.namespace
        )
    }

    /// Reconcile one container; returns how soon it wants another look.
    async fn sync_container(
        &mut self,
        container: &Container,
        sandbox: &str,
        instances: Option<&Vec<Observed>>,
    ) -> Duration {
        let latest = instances.and_then(|l| l.last());
        let hash = spec_hash(container);
        let now = Instant::now();
        if let Some(latest) = latest.filter(|l| l.running()) {
            if latest.instance.hash != hash {
                tracing::info!(pod = %self.pod_ref(), container = %container.name, "spec changed; restarting");
                self.ctx.recorder.normal(
                    &self.pod,
                    "Killing",
                    format!(
                        "Container {} definition changed, will be restarted",
                        container.name
                    ),
                );
                self.stop_container(&container.name, &latest.instance.id, self.grace())
                    .await;
                self.engine_changed = true;
                return Duration::ZERO;
            }
            return self.probe(container, latest).await;
        }
        let attempt = latest.map_or(0, |l| l.instance.attempt + 1);
        if let Some(latest) = latest {
            if !self.restarts(latest) && latest.instance.hash == hash {
                return RESYNC;
            }
            // Crashed: back off before starting it again.
            let ran = match (latest.started_at(), latest.finished_at()) {
                (Some(s), Some(f)) => f.duration_since(s).unsigned_abs(),
                _ => Duration::ZERO,
            };
            let delay = if ran >= BACKOFF_RESET || latest.instance.attempt == 0 {
                Duration::ZERO
            } else {
                backoff(latest.instance.attempt)
            };
            let finished = latest.finished_at().unwrap_or_else(jiff::Timestamp::now);
            let since = jiff::Timestamp::now()
                .duration_since(finished)
                .unsigned_abs();
            if since < delay {
                let left = delay - since;
                let memory = self.containers.entry(container.name.clone()).or_default();
                memory.waiting = Some((
                    "CrashLoopBackOff".into(),
                    format!(
                        "back-off {}s restarting failed container={} pod={}_{}({})",
                        delay.as_secs(),
                        container.name,
                        self.name,
                        self.namespace,
                        self.uid
                    ),
                ));
                if memory.backoff_reported.as_deref() != Some(&latest.instance.id) {
                    memory.backoff_reported = Some(latest.instance.id.clone());
                    self.ctx.recorder.warning(
                        &self.pod,
                        "BackOff",
                        "Back-off restarting failed container",
                    );
                }
                return left;
            }
        }
        let memory = self.containers.entry(container.name.clone()).or_default();
        if memory.not_before.is_some_and(|t| t > now) {
            return memory.not_before.map_or(RESYNC, |t| t - now);
        }
        match self
            .start_container(container, sandbox, attempt, &hash)
            .await
        {
            Ok(()) => {
                if attempt > 0 {
                    self.ctx.metrics.container_restarted();
                }
                let memory = self.containers.entry(container.name.clone()).or_default();
                memory.waiting = None;
                memory.not_before = None;
                memory.pull_failures = 0;
                self.engine_changed = true;
                // Probes start soon; otherwise the engine's events wake the worker.
                let probed = container.liveness_probe.is_some()
                    || container.readiness_probe.is_some()
                    || container.startup_probe.is_some();
                if probed {
                    Duration::from_millis(500)
                } else {
                    RESYNC
                }
            }
            Err((reason, message)) => {
                tracing::warn!(pod = %self.pod_ref(), container = %container.name, %reason, %message, "cannot start container");
                let memory = self.containers.entry(container.name.clone()).or_default();
                let retry = if reason == "ErrImagePull" || reason == "ImagePullBackOff" {
                    memory.pull_failures += 1;
                    backoff(memory.pull_failures)
                } else {
                    Duration::from_secs(2)
                };
                memory.not_before = Some(now + retry);
                memory.waiting = Some((reason, message));
                retry
            }
        }
    }

    fn grace(&self) -> Duration {
        Duration::from_secs(
            self.pod
                .spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
                .unwrap_or(30)
                .max(0) as u64,
        )
    }

    /// Pull if the policy says so, build the configuration, create and start.
    async fn start_container(
        &mut self,
        container: &Container,
        sandbox: &str,
        attempt: u32,
        hash: &str,
    ) -> Result<(), (String, String)> {
        let image = container.image.clone().unwrap_or_default();
        self.ensure_image(container, &image).await?;
        let config_error = |e: ConfigError| ("CreateContainerConfigError".to_string(), e.0);
        let pod_ip = self.pod_ip.map(|ip| ip.to_string()).unwrap_or_default();
        let host_ip = self.ctx.node_ip.to_string();
        let services = self
            .ctx
            .services
            .state()
            .iter()
            .map(|s| (**s).clone())
            .collect::<Vec<_>>();
        let sources = Sources {
            pod: &self.pod,
            services: &services,
            client: &self.ctx.client,
            host_ip: &host_ip,
            pod_ip: &pod_ip,
        };
        let env = sources.environment(container).await.map_err(config_error)?;
        let volumes = volumes::prepare(&self.pod, &self.ctx.client, &self.pod_dir())
            .await
            .map_err(config_error)?;
        let binds = volumes::binds(container, &volumes).map_err(config_error)?;
        let expand_all = |list: &Option<Vec<String>>| {
            list.as_ref()
                .map(|l| l.iter().map(|a| expand(a, &env)).collect::<Vec<_>>())
        };
        let limits = container
            .resources
            .as_ref()
            .and_then(|r| r.limits.clone())
            .unwrap_or_default();
        let requests = container
            .resources
            .as_ref()
            .and_then(|r| r.requests.clone())
            .unwrap_or_default();
        let memory = limits
            .get("memory")
            .and_then(|q| hortator_api::validation::quantity_value(&q.0));
        let nano_cpus = limits
            .get("cpu")
            .and_then(|q| hortator_api::validation::quantity_milli_value(&q.0))
            .map(|m| m * 1_000_000);
        let cpu_shares = requests
            .get("cpu")
            .or(limits.get("cpu"))
            .and_then(|q| hortator_api::validation::quantity_milli_value(&q.0))
            .map(|m| (m * 1024 / 1000).max(2));
        let security = container.security_context.as_ref();
        let user = security
            .and_then(|s| s.run_as_user)
            .or_else(|| {
                self.pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.security_context.as_ref())
                    .and_then(|s| s.run_as_user)
            })
            .map(|uid| uid.to_string());
        let body = ContainerCreateBody {
            image: Some(image.clone()),
            entrypoint: expand_all(&container.command),
            cmd: expand_all(&container.args),
            env: Some(env.to_docker()),
            working_dir: container.working_dir.clone(),
            tty: container.tty,
            open_stdin: container.stdin,
            stdin_once: container.stdin_once,
            user,
            labels: Some(self.ctx.runtime.labels(
                &self.namespace,
                &self.name,
                &self.uid,
                &container.name,
                attempt,
                hash,
            )),
            host_config: Some(HostConfig {
                network_mode: Some(format!("container:{sandbox}")),
                ipc_mode: Some(format!("container:{sandbox}")),
                binds: Some(binds),
                memory,
                nano_cpus,
                cpu_shares,
                privileged: security.and_then(|s| s.privileged),
                readonly_rootfs: security.and_then(|s| s.read_only_root_filesystem),
                ..Default::default()
            }),
            ..Default::default()
        };
        let name = self.engine_name(&container.name, attempt);
        let id = self.ctx.runtime.run(&name, body).await.map_err(|e| {
            self.ctx
                .recorder
                .warning(&self.pod, "Failed", format!("Error: {e}"));
            ("RunContainerError".to_string(), e.to_string())
        })?;
        self.ctx.recorder.normal(
            &self.pod,
            "Created",
            format!("Created container {}", container.name),
        );
        self.ctx.recorder.normal(
            &self.pod,
            "Started",
            format!("Started container {}", container.name),
        );
        // A failed postStart hook kills the container; its restart policy decides what next.
        if let Err(message) = self
            .run_hook(Hook::PostStart, container, &id, POST_START_TIMEOUT)
            .await
        {
            self.stop_container(&container.name, &id, self.grace())
                .await;
            return Err(("PostStartHookError".to_string(), message));
        }
        Ok(())
    }

    async fn ensure_image(
        &mut self,
        container: &Container,
        image: &str,
    ) -> Result<(), (String, String)> {
        if image.is_empty() {
            return Err((
                "InvalidImageName".into(),
                "the container has no image".into(),
            ));
        }
        let (_, tag) = crate::runtime::split_image(image);
        let policy = container.image_pull_policy.clone().unwrap_or_else(|| {
            if tag == "latest" {
                "Always"
            } else {
                "IfNotPresent"
            }
            .to_string()
        });
        let present = self
            .ctx
            .runtime
            .has_image(image)
            .await
            .map_err(|e| ("ErrImagePull".to_string(), e.to_string()))?;
        let pull = match policy.as_str() {
            "Never" if !present => {
                let message =
                    format!("Container image \"{image}\" is not present with pull policy of Never");
                self.ctx
                    .recorder
                    .warning(&self.pod, "ErrImageNeverPull", &message);
                return Err(("ErrImageNeverPull".into(), message));
            }
            "Never" => false,
            "Always" => true,
            _ => !present,
        };
        if !pull {
            self.ctx.recorder.normal(
                &self.pod,
                "Pulled",
                format!("Container image \"{image}\" already present on machine"),
            );
            return Ok(());
        }
        self.ctx
            .recorder
            .normal(&self.pod, "Pulling", format!("Pulling image \"{image}\""));
        let started = Instant::now();
        match self.ctx.runtime.pull(image).await {
            Ok(()) => {
                self.ctx.recorder.normal(
                    &self.pod,
                    "Pulled",
                    format!(
                        "Successfully pulled image \"{image}\" in {:.3}s",
                        started.elapsed().as_secs_f64()
                    ),
                );
                Ok(())
            }
            Err(e) => {
                let memory = self.containers.entry(container.name.clone()).or_default();
                let reason = if memory.pull_failures == 0 {
                    "ErrImagePull"
                } else {
                    "ImagePullBackOff"
                };
                let message = format!("Failed to pull image \"{image}\": {e}");
                self.ctx.recorder.warning(&self.pod, "Failed", &message);
                Err((reason.into(), message))
            }
        }
    }

    /// Run the due probes of a running container; a failed liveness or startup probe
    /// stops it (it is then restarted by policy). Returns when the next probe is due.
    async fn probe(&mut self, container: &Container, latest: &Observed) -> Duration {
        let id = latest.instance.id.clone();
        let started = {
            let age = latest
                .started_at()
                .map(|s| jiff::Timestamp::now().duration_since(s).unsigned_abs())
                .unwrap_or_default();
            Instant::now().checked_sub(age).unwrap_or_else(Instant::now)
        };
        let memory = self.containers.entry(container.name.clone()).or_default();
        if memory.instance.as_deref() != Some(&id) {
            *memory = ContainerMemory {
                instance: Some(id.clone()),
                liveness: container
                    .liveness_probe
                    .clone()
                    .map(|p| Tracker::new(p, started)),
                readiness: container
                    .readiness_probe
                    .clone()
                    .map(|p| Tracker::new(p, started)),
                startup: container
                    .startup_probe
                    .clone()
                    .map(|p| Tracker::new(p, started)),
                ..ContainerMemory::default()
            };
        }
        let docker = self.ctx.runtime.docker.clone();
        let target = self.target(&docker, &id, container);
        let memory = self
            .containers
            .get_mut(&container.name)
            .expect("inserted above");
        let startup_done = memory
            .startup
            .as_ref()
            .is_none_or(|t| t.verdict == Some(true));
        let now = Instant::now();
        let (recorder, pod) = (&self.ctx.recorder, &self.pod);
        let kill_reason = if !startup_done {
            run_due(
                memory.startup.as_mut(),
                "Startup",
                now,
                &target,
                recorder,
                pod,
            )
            .await
        } else {
            let failed = run_due(
                memory.liveness.as_mut(),
                "Liveness",
                now,
                &target,
                recorder,
                pod,
            )
            .await;
            run_due(
                memory.readiness.as_mut(),
                "Readiness",
                now,
                &target,
                recorder,
                pod,
            )
            .await;
            failed
        };
        if let Some((kind, message)) = kill_reason {
            let kind = kind.as_str();
            tracing::info!(pod = %self.pod_ref(), container = %container.name, %message, "{kind} probe failed; restarting");
            self.ctx.recorder.normal(
                &self.pod,
                "Killing",
                format!(
                    "Container {} failed {} probe, will be restarted",
                    container.name,
                    kind.to_ascii_lowercase()
                ),
            );
            self.stop_container(&container.name, &id, self.grace())
                .await;
            self.engine_changed = true;
            return Duration::ZERO;
        }
        let memory = &self.containers[&container.name];
        [&memory.liveness, &memory.readiness, &memory.startup]
            .into_iter()
            .flatten()
            .map(|t| t.due().saturating_duration_since(Instant::now()))
            .min()
            .unwrap_or(RESYNC)
    }

    /// Keep the newest instance of each container and the one before it (for `--previous`);
    /// remove the rest, and containers no longer in the spec.
    async fn collect_garbage(
        &self,
        observed: &BTreeMap<String, Vec<Observed>>,
        specs: &[Container],
    ) {
        for (name, list) in observed {
            let keep = if name == SANDBOX {
                1
            } else if specs.iter().any(|c| &c.name == name) {
                2
            } else {
                0
            };
            let excess = list.len().saturating_sub(keep);
            for old in list.iter().take(excess) {
                if !old.running() || keep == 0 {
                    let _ = self.ctx.runtime.remove(&old.instance.id).await;
                }
            }
        }
    }

    /// Kill every container (app containers get `grace`), free the network and the
    /// volumes, forget the pod.
    async fn teardown(&mut self, instances: &[Instance], grace: Duration) {
        let running: Vec<&Instance> = instances
            .iter()
            .filter(|i| i.running && i.container != SANDBOX)
            .collect();
        if !running.is_empty() {
            for instance in &running {
                self.ctx.recorder.normal(
                    &self.pod,
                    "Killing",
                    format!("Stopping container {}", instance.container),
                );
            }
            futures::future::join_all(
                running
                    .iter()
                    .map(|i| self.stop_container(&i.container, &i.id, grace)),
            )
            .await;
        }
        if let Err(e) = self.ctx.network.teardown_pod(&self.uid).await {
            tracing::warn!(pod = %self.pod_ref(), error = %e, "network teardown failed");
        }
        for instance in instances {
            if let Err(e) = self.ctx.runtime.remove(&instance.id).await {
                tracing::warn!(pod = %self.pod_ref(), error = %e, "cannot remove container");
            }
        }
        if let Err(e) = volumes::remove(&self.pod_dir()) {
            tracing::warn!(pod = %self.pod_ref(), error = %e, "cannot remove volumes");
        }
        self.ctx.registry.remove(&self.namespace, &self.name);
    }

    /// The pod's containers are gone: remove the object (grace 0, this pod only).
    async fn delete_object(&self) -> Next {
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&self.name, &params).await {
            Ok(_) => Next::Done,
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Next::Done,
            Err(e) => {
                tracing::warn!(pod = %self.pod_ref(), error = %e, "cannot delete the pod object");
                Next::After(Duration::from_secs(2))
            }
        }
    }

    /// Compute the status; patch it when it changed; update the registry.
    async fn publish(&mut self, observed: &BTreeMap<String, Vec<Observed>>, sandbox_ready: bool) {
        let specs = self.container_specs();
        let mut statuses = Vec::new();
        let mut ids = BTreeMap::new();
        for container in &specs {
            let list = observed.get(&container.name);
            let latest = list.and_then(|l| l.last());
            let previous = list.and_then(|l| l.len().checked_sub(2).map(|i| &l[i]));
            let memory = self.containers.get(&container.name);
            let waiting = memory.and_then(|m| m.waiting.clone());
            let ready = latest.is_some_and(|l| l.running())
                && memory.is_some_and(|m| {
                    m.instance.as_deref() == latest.map(|l| l.instance.id.as_str())
                        && m.startup.as_ref().is_none_or(|t| t.verdict == Some(true))
                        && m.readiness.as_ref().is_none_or(|t| t.verdict == Some(true))
                });
            let started = latest.is_some_and(|l| l.running())
                && memory
                    .is_none_or(|m| m.startup.as_ref().is_none_or(|t| t.verdict == Some(true)));
            let state = match latest {
                Some(l) if l.running() => ContainerState {
                    running: Some(ContainerStateRunning {
                        started_at: l.started_at().map(Time),
                    }),
                    ..ContainerState::default()
                },
                Some(l) if waiting.is_none() || !self.restarts(l) => ContainerState {
                    terminated: Some(l.terminated()),
                    ..ContainerState::default()
                },
                _ => {
                    let (reason, message) = waiting
                        .clone()
                        .unwrap_or(("ContainerCreating".into(), String::new()));
                    ContainerState {
                        waiting: Some(ContainerStateWaiting {
                            reason: Some(reason),
                            message: (!message.is_empty()).then_some(message),
                        }),
                        ..ContainerState::default()
                    }
                }
            };
            // The previous instance's end, or the latest's while it waits to restart.
            let last = match latest {
                Some(l) if state.waiting.is_some() => Some(l),
                _ => previous,
            };
            let last_state = last.map(|l| ContainerState {
                terminated: Some(l.terminated()),
                ..ContainerState::default()
            });
            let image_id = latest
                .and_then(|l| l.inspect.image.clone())
                .map(|id| format!("docker://{id}"))
                .unwrap_or_default();
            statuses.push(ContainerStatus {
                name: container.name.clone(),
                image: container.image.clone().unwrap_or_default(),
                image_id,
                container_id: latest.map(|l| format!("docker://{}", l.instance.id)),
                ready,
                started: Some(started),
                restart_count: latest.map_or(0, |l| l.instance.attempt as i32),
                state: Some(state.clone()),
                last_state,
                ..ContainerStatus::default()
            });
            ids.insert(
                container.name.clone(),
                crate::pods::ContainerIds {
                    current: latest.map(|l| l.instance.id.clone()),
                    previous: previous.map(|l| l.instance.id.clone()),
                    started: latest.is_some_and(|l| l.started_at().is_some()),
                    waiting: state.waiting.as_ref().and_then(|w| w.reason.clone()),
                },
            );
        }
        self.ctx.registry.set(&self.namespace, &self.name, ids);
        let phase = phase(&statuses);
        let all_ready = !statuses.is_empty() && statuses.iter().all(|s| s.ready);
        let all_running = !statuses.is_empty()
            && statuses
                .iter()
                .all(|s| s.state.as_ref().is_some_and(|s| s.running.is_some()));
        if all_running && !self.start_timed {
            self.start_timed = true;
            self.ctx.metrics.pod_started(self.seen.elapsed());
        }
        if self.start_time.is_none() {
            self.start_time = Some(Time(jiff::Timestamp::now()));
        }
        let previous = self.pod.status.clone().unwrap_or_default();
        let condition = |kind: &str, value: bool| {
            let status = if value { "True" } else { "False" };
            let transition = previous
                .conditions
                .as_deref()
                .unwrap_or_default()
                .iter()
                .find(|c| c.type_ == kind && c.status == status)
                .and_then(|c| c.last_transition_time.clone())
                .unwrap_or_else(|| Time(jiff::Timestamp::now()));
            PodCondition {
                type_: kind.to_string(),
                status: status.to_string(),
                last_transition_time: Some(transition),
                reason: (!value && (kind == "Ready" || kind == "ContainersReady"))
                    .then(|| "ContainersNotReady".to_string()),
                ..PodCondition::default()
            }
        };
        let scheduled = previous
            .conditions
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|c| c.type_ == "PodScheduled")
            .cloned()
            .unwrap_or_else(|| condition("PodScheduled", true));
        let conditions = vec![
            condition("PodReadyToStartContainers", sandbox_ready),
            condition("Initialized", true),
            condition("Ready", all_ready),
            condition("ContainersReady", all_ready),
            scheduled,
        ];
        let pod_ip = self.pod_ip.filter(|_| sandbox_ready || phase != "Pending");
        let status = PodStatus {
            phase: Some(phase.to_string()),
            conditions: Some(conditions),
            host_ip: Some(self.ctx.node_ip.to_string()),
            host_ips: Some(vec![HostIP {
                ip: self.ctx.node_ip.to_string(),
            }]),
            pod_ip: pod_ip.map(|ip| ip.to_string()),
            pod_ips: pod_ip.map(|ip| vec![PodIP { ip: ip.to_string() }]),
            start_time: self.start_time.clone(),
            container_statuses: Some(statuses),
            ..PodStatus::default()
        };
        let value = serde_json::to_value(&status).unwrap_or_default();
        // Publish on change, and when someone else (the node lifecycle controller) changed
        // the pod's readiness in the API.
        let api_ready = previous
            .conditions
            .as_deref()
            .unwrap_or_default()
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.status == "True");
        if self.last_status.as_ref() == Some(&value) && api_ready == Some(all_ready) {
            return;
        }
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
        let patch = serde_json::json!({ "status": value });
        match api
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(pod) => {
                self.pod.status = pod.status;
                self.last_status = Some(value);
            }
            Err(e) => {
                tracing::debug!(pod = %self.pod_ref(), error = %e, "status update failed");
            }
        }
    }
}

/// Run `tracker`'s probe if it is due, recording an `Unhealthy` event for a failure.
/// Returns the probe kind and the last failure once its verdict is a failure.
async fn run_due(
    tracker: Option<&mut Tracker>,
    kind: &str,
    now: Instant,
    target: &probes::Target<'_>,
    recorder: &Recorder,
    pod: &Pod,
) -> Option<(String, String)> {
    let tracker = tracker.filter(|t| t.due() <= now)?;
    let outcome = probes::run(tracker.probe(), target).await;
    if let Outcome::Failure(message) = &outcome {
        recorder.warning(pod, "Unhealthy", format!("{kind} probe failed: {message}"));
    }
    tracker.record(outcome, Instant::now());
    (tracker.verdict == Some(false)).then(|| {
        (
            kind.to_string(),
            tracker.last_failure.clone().unwrap_or_default(),
        )
    })
}

/// The delay before the `restarts`-th restart: 10 s, 20 s, 40 s … 5 min.
fn backoff(restarts: u32) -> Duration {
    let factor = 1u32 << restarts.saturating_sub(1).min(16);
    (INITIAL_BACKOFF * factor).min(MAX_BACKOFF)
}

/// A pod's phase from its containers' states, as the kubelet derives it.
fn phase(statuses: &[ContainerStatus]) -> &'static str {
    let (mut pending, mut running, mut restarting, mut failed) = (0, 0, 0, 0);
    for status in statuses {
        let state = status.state.clone().unwrap_or_default();
        if state.running.is_some() {
            running += 1;
        } else if let Some(t) = &state.terminated {
            if t.exit_code != 0 {
                failed += 1;
            }
        } else if status
            .last_state
            .as_ref()
            .is_some_and(|s| s.terminated.is_some())
        {
            restarting += 1;
        } else {
            pending += 1;
        }
    }
    if statuses.is_empty() || pending > 0 {
        "Pending"
    } else if running > 0 || restarting > 0 {
        "Running"
    } else if failed > 0 {
        "Failed"
    } else {
        "Succeeded"
    }
}

/// A stable digest of what the engine runs for `container`: a change restarts it.
fn spec_hash(container: &Container) -> String {
    use sha2::Digest;
    let relevant = serde_json::json!({
        "image": container.image,
        "command": container.command,
        "args": container.args,
        "env": container.env,
        "envFrom": container.env_from,
        "workingDir": container.working_dir,
        "ports": container.ports,
        "volumeMounts": container.volume_mounts,
        "resources": container.resources,
        "securityContext": container.security_context,
    });
    let digest = sha2::Sha256::digest(relevant.to_string().as_bytes());
    hex::encode(&digest[..8])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status(state: serde_json::Value, last: Option<serde_json::Value>) -> ContainerStatus {
        serde_json::from_value(json!({
            "name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": state, "lastState": last,
        }))
        .unwrap()
    }

    #[test]
    fn phases_follow_the_kubelet() {
        let running = status(json!({"running": {}}), None);
        let creating = status(json!({"waiting": {"reason": "ContainerCreating"}}), None);
        let crash = status(
            json!({"waiting": {"reason": "CrashLoopBackOff"}}),
            Some(json!({"terminated": {"exitCode": 1}})),
        );
        let ok = status(json!({"terminated": {"exitCode": 0}}), None);
        let bad = status(json!({"terminated": {"exitCode": 2}}), None);
        assert_eq!(phase(&[]), "Pending");
        assert_eq!(phase(&[running.clone(), creating]), "Pending");
        assert_eq!(phase(&[running.clone(), crash.clone()]), "Running");
        assert_eq!(phase(&[crash]), "Running");
        assert_eq!(phase(&[ok.clone(), running]), "Running");
        assert_eq!(phase(std::slice::from_ref(&ok)), "Succeeded");
        assert_eq!(phase(&[ok, bad]), "Failed");
    }

    #[test]
    fn backoff_doubles_to_five_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(2), Duration::from_secs(20));
        assert_eq!(backoff(4), Duration::from_secs(80));
        assert_eq!(backoff(9), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn spec_hash_changes_with_the_image_only_when_relevant() {
        let a: Container = serde_json::from_value(json!({"name": "c", "image": "a"})).unwrap();
        let mut b = a.clone();
        assert_eq!(spec_hash(&a), spec_hash(&b));
        b.termination_message_path = Some("/x".into());
        assert_eq!(spec_hash(&a), spec_hash(&b));
        b.image = Some("b".into());
        assert_ne!(spec_hash(&a), spec_hash(&b));
    }
}
