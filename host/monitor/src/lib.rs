//! Container and node statistics, in the way of cAdvisor: every `interval` (10 s by default)
//! the sampler lists the node's running containers (one Docker call), finds each new one's
//! cgroup through its pid (`/proc/<pid>/cgroup`, whichever cgroup version and driver), and
//! reads its CPU and memory accounting (cgroup v2 `cpu.stat`/`memory.current`/`memory.stat`,
//! v1 `cpuacct.usage`/`memory.usage_in_bytes`/`memory.stat`); a pod's network counters come
//! from its sandbox's network namespace (`/proc/<pid>/net/dev`), node totals from `/proc`
//! and the data filesystem from `statvfs`. CPU samples are kept for a short window (bounded
//! rings) so that usage rates can be computed; [`Monitor::summary`] answers with the
//! kubelet's `stats/v1alpha1` [`Summary`].
//!
//! Disk usage is slower to read, so it has its own interval (`fs_interval`, a minute by
//! default, as cAdvisor's): each container's writable layer (a walk of its overlay upper
//! directory, or the engine's `SizeRw` for other storage drivers) and log files, each pod's
//! emptyDir volumes, and the engine's image filesystem. A new container is measured at the
//! first sample that finds it. The walks run on the blocking pool.
//!
//! ```no_run
//! # async fn demo(docker: bollard::Docker) {
//! let config = hortator_monitor::MonitorConfig::new(
//!     "node-1",
//!     "io.hortator.node=node-1",
//!     hortator_monitor::Labels {
//!         pod_uid: "io.hortator.pod.uid".into(),
//!         pod_namespace: "io.hortator.pod.namespace".into(),
//!         pod_name: "io.hortator.pod.name".into(),
//!         container: "io.hortator.container.name".into(),
//!         sandbox: "POD".into(),
//!     },
//!     "/var/lib/hortator".into(),
//! );
//! let (monitor, _sampling) = hortator_monitor::Monitor::start(docker, config);
//! println!("{}", monitor.summary().pods.len());
//! # }
//! ```

mod cgroup;
mod disk;
mod procfs;
mod summary;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::{
    InspectContainerOptionsBuilder, ListContainersOptionsBuilder, ListImagesOptions,
};
use jiff::Timestamp;
use tokio::task::JoinHandle;

use cgroup::{CgroupFiles, Hierarchy, Usage, read_into};
pub use summary::{
    ContainerStats, CpuStats, FsStats, InterfaceStats, MemoryStats, NetworkStats, NodeStats,
    PodReference, PodStats, RuntimeStats, Summary, VolumeStats,
};

/// The container labels that tie an engine container to its pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    /// The pod's uid.
    pub pod_uid: String,
    /// The pod's namespace.
    pub pod_namespace: String,
    /// The pod's name.
    pub pod_name: String,
    /// The container's name in the pod.
    pub container: String,
    /// The value of `container` that marks the pod's sandbox (holder of its network).
    pub sandbox: String,
}

/// Where a pod's emptyDir volumes live on the node: `<pods_dir>/<pod uid>/<empty_dirs>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeLayout {
    /// The directory of the pods' directories.
    pub pods_dir: PathBuf,
    /// The emptyDir volumes' directory inside a pod's directory.
    pub empty_dirs: PathBuf,
}

/// What to monitor and how often.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// The node's name, for the summary.
    pub node_name: String,
    /// The label (`key=value`) every monitored container carries.
    pub selector: String,
    /// How a container names its pod.
    pub labels: Labels,
    /// A path on the filesystem reported as the node's (the agent's data directory).
    pub fs_path: PathBuf,
    /// Where pods' emptyDir volumes are measured; `None` measures none.
    pub volumes: Option<VolumeLayout>,
    /// Time between samples.
    pub interval: Duration,
    /// Time between two measurements of the same container's, volume's or the image
    /// filesystem's disk usage.
    pub fs_interval: Duration,
    /// CPU samples kept per container and for the node.
    pub window: usize,
    /// Where the cgroup hierarchy is mounted.
    pub cgroup_root: PathBuf,
    /// Where procfs is mounted.
    pub proc_root: PathBuf,
}

impl MonitorConfig {
    /// Sample every 10 s and keep 5 minutes, measure disk usage every minute, from
    /// `/sys/fs/cgroup` and `/proc`; no volumes.
    pub fn new(node_name: &str, selector: &str, labels: Labels, fs_path: PathBuf) -> Self {
        MonitorConfig {
            node_name: node_name.to_string(),
            selector: selector.to_string(),
            labels,
            fs_path,
            volumes: None,
            interval: Duration::from_secs(10),
            fs_interval: Duration::from_secs(60),
            window: 30,
            cgroup_root: "/sys/fs/cgroup".into(),
            proc_root: "/proc".into(),
        }
    }
}

/// Reads the latest statistics; cheap to clone.
#[derive(Clone)]
pub struct Monitor {
    node_name: String,
    state: Arc<Mutex<State>>,
}

/// The sampling task; dropping it stops sampling.
pub struct Sampling(JoinHandle<()>);

impl Drop for Sampling {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Monitor {
    /// Start sampling the containers selected by `config` through `docker`.
    pub fn start(docker: Docker, config: MonitorConfig) -> (Monitor, Sampling) {
        let state = Arc::new(Mutex::new(State::new(config.window)));
        let monitor = Monitor {
            node_name: config.node_name.clone(),
            state: state.clone(),
        };
        let task = tokio::spawn(Sampler::new(docker, config, state).run());
        (monitor, Sampling(task))
    }

    /// The latest statistics of the node and its pods.
    pub fn summary(&self) -> Summary {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.summary(&self.node_name)
    }
}

/// One CPU reading.
#[derive(Debug, Clone, Copy)]
struct Point {
    time: Timestamp,
    cpu_ns: u64,
}

/// The last few CPU readings, oldest first; never holds more than `capacity`.
#[derive(Debug)]
struct Ring {
    points: VecDeque<Point>,
    capacity: usize,
}

impl Ring {
    fn new(capacity: usize) -> Ring {
        let capacity = capacity.max(2);
        Ring {
            points: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    fn push(&mut self, point: Point) {
        if self.points.len() == self.capacity {
            self.points.pop_front();
        }
        self.points.push_back(point);
    }

    fn last(&self) -> Option<&Point> {
        self.points.back()
    }

    /// Usage between the last two readings: nanocores and the span.
    fn rate(&self) -> Option<(u64, Duration)> {
        let mut newest = self.points.iter().rev();
        let (last, before) = (newest.next()?, newest.next()?);
        let span = last.time.duration_since(before.time);
        let span_ns = u64::try_from(span.as_nanos()).ok().filter(|ns| *ns > 0)?;
        let used = last.cpu_ns.checked_sub(before.cpu_ns)?;
        let nanocores = u128::from(used) * 1_000_000_000 / u128::from(span_ns);
        Some((
            u64::try_from(nanocores).unwrap_or(u64::MAX),
            Duration::from_nanos(span_ns),
        ))
    }

    fn stats(&self) -> Option<CpuStats> {
        let last = self.last()?;
        let rate = self.rate();
        Some(CpuStats {
            time: last.time.to_string(),
            usage_nano_cores: rate.map(|(n, _)| n),
            usage_core_nano_seconds: Some(last.cpu_ns),
            usage_window: rate.map(|(_, span)| window(span)),
        })
    }
}

/// A span as a Go duration string (`"10.002s"`).
fn window(span: Duration) -> String {
    format!("{:.3}s", span.as_secs_f64())
}

/// One monitored container.
struct Tracked {
    pod: PodReference,
    name: String,
    sandbox: bool,
    pid: i64,
    files: CgroupFiles,
    start_time: Option<String>,
    cpu: Ring,
    memory: Option<(Timestamp, Usage)>,
    /// The pod's network (sandbox only).
    network: Option<NetworkStats>,
    /// Where its writable layer is measured.
    layer: Layer,
    /// Its log file, if the engine keeps one.
    log_path: Option<PathBuf>,
    /// Its latest disk usage.
    disk: Option<ContainerDisk>,
}

/// Where a container's writable layer is measured.
#[derive(Debug, Clone)]
enum Layer {
    /// A directory walked here (overlay's upper directory).
    Dir(PathBuf),
    /// The engine's `SizeRw` (other storage drivers, or an unreadable directory).
    Engine,
}

/// A container's disk usage (used bytes and inodes only), measured at `measured`.
#[derive(Debug, Clone)]
struct ContainerDisk {
    measured: Instant,
    rootfs: Option<FsStats>,
    logs: Option<FsStats>,
}

/// A pod's emptyDir volumes, measured at `measured`.
#[derive(Debug, Clone)]
struct PodVolumes {
    measured: Instant,
    /// Each volume, and whether it is on the node's disk (not a tmpfs of its own).
    volumes: Vec<(VolumeStats, bool)>,
}

impl Tracked {
    fn memory_stats(&self) -> Option<MemoryStats> {
        let (time, usage) = self.memory?;
        Some(MemoryStats {
            time: time.to_string(),
            available_bytes: None,
            usage_bytes: Some(usage.memory_bytes),
            working_set_bytes: Some(usage.working_set_bytes),
            rss_bytes: Some(usage.rss_bytes),
        })
    }
}

/// The node's own readings.
struct NodeState {
    cpu: Ring,
    memory: Option<(Timestamp, procfs::MemInfo)>,
    network: Option<NetworkStats>,
    fs: Option<FsStats>,
    /// The engine's image filesystem, and when it was measured.
    image_fs: Option<(Instant, FsStats)>,
    boot: Option<String>,
}

/// Everything the sampler knows.
struct State {
    node: NodeState,
    containers: HashMap<String, Tracked>,
    /// emptyDir usage by pod uid.
    volumes: HashMap<String, PodVolumes>,
}

/// A pod's totals while a summary is built.
#[derive(Default)]
struct PodTotals {
    time: Option<Timestamp>,
    cpu_ns: u64,
    nanocores: Option<u64>,
    window: Option<Duration>,
    usage: Usage,
    /// Ephemeral storage: layers and logs of its containers.
    disk: Option<(u64, u64)>,
}

/// `usage` (used bytes and inodes) with the capacity, availability and inodes of the
/// filesystem it is on.
fn on_filesystem(usage: &FsStats, fs: Option<&FsStats>) -> FsStats {
    let mut stats = usage.clone();
    if let Some(fs) = fs {
        stats.available_bytes = fs.available_bytes;
        stats.capacity_bytes = fs.capacity_bytes;
        stats.inodes_free = fs.inodes_free;
        stats.inodes = fs.inodes;
    }
    stats
}

/// Used bytes and inodes measured at `time`.
fn used(time: &str, usage: disk::DiskUsage) -> FsStats {
    FsStats {
        time: time.to_string(),
        used_bytes: Some(usage.bytes),
        inodes_used: Some(usage.inodes),
        ..FsStats::default()
    }
}

impl State {
    fn new(window: usize) -> State {
        State {
            node: NodeState {
                cpu: Ring::new(window),
                memory: None,
                network: None,
                fs: None,
                image_fs: None,
                boot: None,
            },
            containers: HashMap::new(),
            volumes: HashMap::new(),
        }
    }

    fn summary(&self, node_name: &str) -> Summary {
        let node = &self.node;
        let image_fs = node.image_fs.as_ref().map(|(_, fs)| fs);
        let mut pods: BTreeMap<(&str, &str, &str), (PodStats, PodTotals)> = BTreeMap::new();
        for tracked in self.containers.values() {
            let key = (
                tracked.pod.namespace.as_str(),
                tracked.pod.name.as_str(),
                tracked.pod.uid.as_str(),
            );
            let (pod, totals) = pods.entry(key).or_insert_with(|| {
                let stats = PodStats {
                    pod_ref: tracked.pod.clone(),
                    ..PodStats::default()
                };
                (stats, PodTotals::default())
            });
            let disk = tracked.disk.as_ref();
            let rootfs = disk.and_then(|d| d.rootfs.as_ref());
            let logs = disk.and_then(|d| d.logs.as_ref());
            for usage in rootfs.into_iter().chain(logs) {
                let (bytes, inodes) = totals.disk.get_or_insert((0, 0));
                *bytes += usage.used_bytes.unwrap_or(0);
                *inodes += usage.inodes_used.unwrap_or(0);
            }
            if tracked.sandbox {
                pod.start_time.clone_from(&tracked.start_time);
                pod.network.clone_from(&tracked.network);
            } else {
                pod.containers.push(ContainerStats {
                    name: tracked.name.clone(),
                    start_time: tracked.start_time.clone(),
                    cpu: tracked.cpu.stats(),
                    memory: tracked.memory_stats(),
                    rootfs: rootfs.map(|u| on_filesystem(u, image_fs)),
                    logs: logs.map(|u| on_filesystem(u, image_fs)),
                });
            }
            if let Some(last) = tracked.cpu.last() {
                totals.cpu_ns += last.cpu_ns;
                totals.time = totals.time.max(Some(last.time));
            }
            if let Some((nanocores, span)) = tracked.cpu.rate() {
                totals.nanocores = Some(totals.nanocores.unwrap_or(0) + nanocores);
                totals.window = totals.window.max(Some(span));
            }
            if let Some((_, usage)) = tracked.memory {
                totals.usage.memory_bytes += usage.memory_bytes;
                totals.usage.working_set_bytes += usage.working_set_bytes;
                totals.usage.rss_bytes += usage.rss_bytes;
            }
        }
        let pods = pods
            .into_values()
            .map(|(mut pod, totals)| {
                pod.containers.sort_by(|a, b| a.name.cmp(&b.name));
                if let Some(time) = totals.time {
                    let time = time.to_string();
                    pod.cpu = Some(CpuStats {
                        time: time.clone(),
                        usage_nano_cores: totals.nanocores,
                        usage_core_nano_seconds: Some(totals.cpu_ns),
                        usage_window: totals.window.map(window),
                    });
                    pod.memory = Some(MemoryStats {
                        time,
                        available_bytes: None,
                        usage_bytes: Some(totals.usage.memory_bytes),
                        working_set_bytes: Some(totals.usage.working_set_bytes),
                        rss_bytes: Some(totals.usage.rss_bytes),
                    });
                }
                let mut disk = totals.disk;
                if let Some(volumes) = self.volumes.get(&pod.pod_ref.uid) {
                    for (volume, on_disk) in &volumes.volumes {
                        if *on_disk {
                            let (bytes, inodes) = disk.get_or_insert((0, 0));
                            *bytes += volume.fs.used_bytes.unwrap_or(0);
                            *inodes += volume.fs.inodes_used.unwrap_or(0);
                        }
                        pod.volume.push(volume.clone());
                    }
                }
                pod.ephemeral_storage = disk.map(|(bytes, inodes)| {
                    let usage = FsStats {
                        time: node
                            .fs
                            .as_ref()
                            .map(|fs| fs.time.clone())
                            .unwrap_or_default(),
                        used_bytes: Some(bytes),
                        inodes_used: Some(inodes),
                        ..FsStats::default()
                    };
                    on_filesystem(&usage, node.fs.as_ref())
                });
                pod
            })
            .collect();
        Summary {
            node: NodeStats {
                node_name: node_name.to_string(),
                start_time: node.boot.clone(),
                cpu: node.cpu.stats(),
                memory: node.memory.map(|(time, info)| MemoryStats {
                    time: time.to_string(),
                    available_bytes: Some(info.total.saturating_sub(info.working_set())),
                    usage_bytes: Some(info.usage()),
                    working_set_bytes: Some(info.working_set()),
                    rss_bytes: Some(info.anon),
                }),
                network: node.network.clone(),
                fs: node.fs.clone(),
                runtime: image_fs.map(|fs| RuntimeStats {
                    image_fs: Some(fs.clone()),
                }),
            },
            pods,
        }
    }
}

/// The running container ids, and the new containers among them.
type Discovered = (HashSet<String>, Vec<(String, Tracked)>);

/// The sampling loop's own state: the engine, the paths, a reused read buffer.
struct Sampler {
    docker: Docker,
    config: MonitorConfig,
    hierarchy: Hierarchy,
    state: Arc<Mutex<State>>,
    buf: String,
    interfaces: Vec<InterfaceStats>,
    clock_ticks: u64,
    /// The engine's data directory, once known.
    engine_root: Option<PathBuf>,
}

impl Sampler {
    fn new(docker: Docker, config: MonitorConfig, state: Arc<Mutex<State>>) -> Sampler {
        let clock_ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .and_then(|t| u64::try_from(t).ok())
            .filter(|t| *t > 0)
            .unwrap_or(100);
        Sampler {
            hierarchy: Hierarchy::detect(&config.cgroup_root),
            docker,
            config,
            state,
            buf: String::with_capacity(4096),
            interfaces: Vec::new(),
            clock_ticks,
            engine_root: None,
        }
    }

    async fn run(mut self) {
        tracing::info!(
            hierarchy = ?self.hierarchy,
            interval = ?self.config.interval,
            "container monitoring started"
        );
        let mut ticker = tokio::time::interval(self.config.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let discovered = self.discover().await;
            self.sample(discovered);
            self.measure_disks().await;
            self.measure_image_fs().await;
        }
    }

    /// The running containers: those already tracked (by id) and the new ones, inspected.
    async fn discover(&mut self) -> Option<Discovered> {
        let filters = HashMap::from([
            ("label".to_string(), vec![self.config.selector.clone()]),
            ("status".to_string(), vec!["running".to_string()]),
        ]);
        let options = ListContainersOptionsBuilder::new()
            .filters(&filters)
            .build();
        let listed = match self.docker.list_containers(Some(options)).await {
            Ok(listed) => listed,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list containers to monitor");
                return None;
            }
        };
        let known: HashSet<String> = {
            let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.containers.keys().cloned().collect()
        };
        let mut running = HashSet::new();
        let mut new = Vec::new();
        for summary in listed {
            let Some(id) = summary.id else { continue };
            if !known.contains(&id)
                && let Some(tracked) = self.track(&id, summary.labels.unwrap_or_default()).await
            {
                new.push((id.clone(), tracked));
            }
            running.insert(id);
        }
        Some((running, new))
    }

    /// Find a new container's pod, process and cgroup.
    async fn track(&mut self, id: &str, labels: HashMap<String, String>) -> Option<Tracked> {
        let names = &self.config.labels;
        let label = |key: &str| labels.get(key).cloned();
        let pod = PodReference {
            name: label(&names.pod_name)?,
            namespace: label(&names.pod_namespace)?,
            uid: label(&names.pod_uid)?,
        };
        let name = label(&names.container)?;
        let inspect = match self.docker.inspect_container(id, None).await {
            Ok(inspect) => inspect,
            Err(e) => {
                tracing::debug!(%id, error = %e, "cannot inspect container to monitor");
                return None;
            }
        };
        let state = inspect.state?;
        let pid = state.pid.filter(|p| *p > 0)?;
        let path = self.config.proc_root.join(format!("{pid}/cgroup"));
        if let Err(e) = read_into(&path, &mut self.buf) {
            tracing::debug!(%id, error = %e, "cannot read the container's cgroup");
            return None;
        }
        let Some(files) = self.hierarchy.locate(&self.buf) else {
            tracing::warn!(%id, cgroups = %self.buf, "cannot find the container's cgroup");
            return None;
        };
        let layer = match &inspect.graph_driver {
            Some(driver) if driver.name.starts_with("overlay") => driver
                .data
                .get("UpperDir")
                .map_or(Layer::Engine, |dir| Layer::Dir(dir.into())),
            _ => Layer::Engine,
        };
        Some(Tracked {
            sandbox: name == names.sandbox,
            layer,
            log_path: inspect
                .log_path
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
            disk: None,
            pod,
            name,
            pid,
            files,
            start_time: state.started_at.filter(|s| !s.starts_with("0001-")),
            cpu: Ring::new(self.config.window),
            memory: None,
            network: None,
        })
    }

    /// Read every container's cgroup and the node's totals.
    fn sample(&mut self, discovered: Option<Discovered>) {
        let state = self.state.clone();
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((running, new)) = discovered {
            state.containers.retain(|id, _| running.contains(id));
            state.containers.extend(new);
            let State {
                containers,
                volumes,
                ..
            } = &mut *state;
            let pods: HashSet<&str> = containers.values().map(|t| t.pod.uid.as_str()).collect();
            volumes.retain(|uid, _| pods.contains(uid.as_str()));
        }
        let mut gone = Vec::new();
        for (id, tracked) in &mut state.containers {
            let time = Timestamp::now();
            match tracked.files.read(&mut self.buf) {
                Ok(usage) => {
                    tracked.cpu.push(Point {
                        time,
                        cpu_ns: usage.cpu_ns,
                    });
                    tracked.memory = Some((time, usage));
                }
                // The container exited between two listings.
                Err(_) => gone.push(id.clone()),
            }
            if tracked.sandbox {
                let path = self
                    .config
                    .proc_root
                    .join(format!("{}/net/dev", tracked.pid));
                tracked.network = self.network(&path, None);
            }
        }
        for id in gone {
            state.containers.remove(&id);
        }
        self.sample_node(&mut state.node);
    }

    /// Measure the disk usage that is due: containers' layers and logs, pods' emptyDirs.
    async fn measure_disks(&mut self) {
        let every = self.config.fs_interval;
        let due = |measured: Option<Instant>| measured.is_none_or(|m| m.elapsed() >= every);
        let (containers, pods) = {
            let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let containers: Vec<(String, Layer, Option<PathBuf>)> = state
                .containers
                .iter()
                .filter(|(_, t)| due(t.disk.as_ref().map(|d| d.measured)))
                .map(|(id, t)| (id.clone(), t.layer.clone(), t.log_path.clone()))
                .collect();
            let pods: HashSet<String> = state
                .containers
                .values()
                .map(|t| &t.pod.uid)
                .filter(|uid| due(state.volumes.get(*uid).map(|v| v.measured)))
                .cloned()
                .collect();
            (containers, pods)
        };
        if containers.is_empty() && pods.is_empty() {
            return;
        }
        let layout = self.config.volumes.clone();
        let walk = tokio::task::spawn_blocking(move || {
            let time = Timestamp::now().to_string();
            let containers: Vec<(String, ContainerDisk)> = containers
                .into_iter()
                .map(|(id, layer, log)| {
                    let rootfs = match layer {
                        Layer::Dir(dir) => disk::usage(&dir).ok().map(|u| used(&time, u)),
                        Layer::Engine => None,
                    };
                    let logs = log.map(|path| used(&time, disk::log_usage(&path)));
                    let disk = ContainerDisk {
                        measured: Instant::now(),
                        rootfs,
                        logs,
                    };
                    (id, disk)
                })
                .collect();
            let volumes: Vec<(String, PodVolumes)> = match &layout {
                Some(layout) => pods
                    .into_iter()
                    .map(|uid| {
                        let volumes = PodVolumes {
                            measured: Instant::now(),
                            volumes: measure_volumes(layout, &uid),
                        };
                        (uid, volumes)
                    })
                    .collect(),
                None => Vec::new(),
            };
            (containers, volumes)
        });
        let Ok((mut containers, volumes)) = walk.await else {
            return;
        };
        for (id, disk) in &mut containers {
            if disk.rootfs.is_none() {
                disk.rootfs = self.engine_layer_size(id).await;
            }
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for (id, disk) in containers {
            if let Some(tracked) = state.containers.get_mut(&id) {
                tracked.disk = Some(disk);
            }
        }
        state.volumes.extend(volumes);
    }

    /// The size of container `id`'s writable layer as the engine computes it.
    async fn engine_layer_size(&self, id: &str) -> Option<FsStats> {
        let options = InspectContainerOptionsBuilder::new().size(true).build();
        let inspect = self
            .docker
            .inspect_container(id, Some(options))
            .await
            .ok()?;
        let bytes = u64::try_from(inspect.size_rw?).ok()?;
        Some(FsStats {
            time: Timestamp::now().to_string(),
            used_bytes: Some(bytes),
            ..FsStats::default()
        })
    }

    /// The engine's image filesystem: the filesystem of its data directory, the bytes its
    /// images take (as listed, so layers shared by several images count for each).
    async fn measure_image_fs(&mut self) {
        let every = self.config.fs_interval;
        {
            let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((measured, _)) = &state.node.image_fs
                && measured.elapsed() < every
            {
                return;
            }
        }
        if self.engine_root.is_none() {
            match self.docker.info().await {
                Ok(info) => self.engine_root = info.docker_root_dir.map(PathBuf::from),
                Err(e) => {
                    tracing::debug!(error = %e, "cannot ask the engine for its data directory")
                }
            }
        }
        let Some(mut stats) = self
            .engine_root
            .as_deref()
            .and_then(|root| fs_stats(root, Timestamp::now()))
        else {
            return;
        };
        stats.used_bytes = match self.docker.list_images(None::<ListImagesOptions>).await {
            Ok(images) => Some(
                images
                    .iter()
                    .map(|image| u64::try_from(image.size).unwrap_or(0))
                    .sum(),
            ),
            Err(e) => {
                tracing::debug!(error = %e, "cannot list the engine's images");
                None
            }
        };
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.node.image_fs = Some((Instant::now(), stats));
    }

    /// Counters of the interfaces in a `net/dev` file; the main one is `main` if given, else
    /// the first.
    fn network(&mut self, net_dev: &std::path::Path, main: Option<&str>) -> Option<NetworkStats> {
        let time = Timestamp::now();
        read_into(net_dev, &mut self.buf).ok()?;
        procfs::interfaces(&self.buf, &mut self.interfaces);
        let main = main
            .and_then(|name| self.interfaces.iter().find(|i| i.name == name))
            .or(self.interfaces.first())?
            .clone();
        Some(NetworkStats {
            time: time.to_string(),
            main,
            interfaces: self.interfaces.clone(),
        })
    }

    fn sample_node(&mut self, node: &mut NodeState) {
        let proc = self.config.proc_root.clone();
        let time = Timestamp::now();
        if read_into(&proc.join("stat"), &mut self.buf).is_ok() {
            if let Some(ticks) = procfs::busy_ticks(&self.buf) {
                node.cpu.push(Point {
                    time,
                    cpu_ns: ticks.saturating_mul(1_000_000_000 / self.clock_ticks),
                });
            }
            if node.boot.is_none() {
                node.boot = procfs::boot_time(&self.buf)
                    .and_then(|s| Timestamp::from_second(s).ok())
                    .map(|t| t.to_string());
            }
        }
        if read_into(&proc.join("meminfo"), &mut self.buf).is_ok() {
            node.memory = Some((time, procfs::MemInfo::parse(&self.buf)));
        }
        let main = read_into(&proc.join("net/route"), &mut self.buf)
            .ok()
            .and_then(|()| procfs::default_interface(&self.buf).map(str::to_string));
        node.network = self.network(&proc.join("net/dev"), main.as_deref());
        node.fs = fs_stats(&self.config.fs_path, time);
    }
}

/// Space and inodes of the filesystem holding `path`.
fn fs_stats(path: &std::path::Path, time: Timestamp) -> Option<FsStats> {
    let vfs = nix::sys::statvfs::statvfs(path).ok()?;
    let block = vfs.fragment_size();
    let capacity = vfs.blocks() * block;
    let inodes = vfs.files();
    Some(FsStats {
        time: time.to_string(),
        available_bytes: Some(vfs.blocks_available() * block),
        capacity_bytes: Some(capacity),
        used_bytes: Some(capacity.saturating_sub(vfs.blocks_free() * block)),
        inodes_free: Some(vfs.files_free()),
        inodes: Some(inodes),
        inodes_used: Some(inodes.saturating_sub(vfs.files_free())),
    })
}

/// The emptyDir volumes of pod `uid` under `layout`, each with its usage, its filesystem's
/// capacity and whether it shares the node's disk (a tmpfs volume is a mount of its own).
fn measure_volumes(layout: &VolumeLayout, uid: &str) -> Vec<(VolumeStats, bool)> {
    use std::os::unix::fs::MetadataExt;
    let dir = layout.pods_dir.join(uid).join(&layout.empty_dirs);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let Ok(parent) = std::fs::metadata(&dir) else {
        return Vec::new();
    };
    let mut volumes = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(metadata) = std::fs::metadata(&path) else {
            continue;
        };
        if !metadata.is_dir() {
            continue;
        }
        let Ok(usage) = disk::usage(&path) else {
            continue;
        };
        let time = Timestamp::now();
        let mut fs = fs_stats(&path, time).unwrap_or_else(|| FsStats {
            time: time.to_string(),
            ..FsStats::default()
        });
        fs.used_bytes = Some(usage.bytes);
        fs.inodes_used = Some(usage.inodes);
        let name = entry.file_name().to_string_lossy().into_owned();
        volumes.push((VolumeStats { name, fs }, metadata.dev() == parent.dev()));
    }
    volumes.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    volumes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    #[test]
    fn ring_keeps_its_capacity_and_rates_the_last_two_points() {
        let mut ring = Ring::new(3);
        assert!(ring.rate().is_none());
        for (i, cpu) in [0u64, 1_000_000_000, 3_000_000_000, 8_000_000_000]
            .into_iter()
            .enumerate()
        {
            ring.push(Point {
                time: at(10 * i as i64),
                cpu_ns: cpu,
            });
        }
        assert_eq!(ring.points.len(), 3);
        // 5 s of CPU in 10 s: half a core.
        assert_eq!(ring.rate(), Some((500_000_000, Duration::from_secs(10))));
        let stats = ring.stats().unwrap();
        assert_eq!(stats.usage_core_nano_seconds, Some(8_000_000_000));
        assert_eq!(stats.usage_window.as_deref(), Some("10.000s"));
    }

    #[test]
    fn volumes_are_the_directories_of_the_pods_empty_dir_root() {
        let dir = tempfile::tempdir().unwrap();
        let layout = VolumeLayout {
            pods_dir: dir.path().into(),
            empty_dirs: "volumes/empty-dir".into(),
        };
        assert!(measure_volumes(&layout, "none").is_empty());
        let root = dir.path().join("uid/volumes/empty-dir");
        std::fs::create_dir_all(root.join("b")).unwrap();
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(root.join("a/data"), vec![1u8; 100_000]).unwrap();
        std::fs::write(root.join("stray-file"), b"x").unwrap();
        let volumes = measure_volumes(&layout, "uid");
        let names: Vec<&str> = volumes.iter().map(|(v, _)| v.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let (a, on_disk) = &volumes[0];
        assert!(*on_disk);
        assert!(a.fs.used_bytes >= Some(100_000), "{a:?}");
        assert_eq!(a.fs.inodes_used, Some(2));
        assert!(a.fs.capacity_bytes > Some(0));
    }

    #[test]
    fn a_restarted_counter_has_no_rate() {
        let mut ring = Ring::new(3);
        ring.push(Point {
            time: at(0),
            cpu_ns: 5,
        });
        ring.push(Point {
            time: at(10),
            cpu_ns: 1,
        });
        assert!(ring.rate().is_none());
    }

    #[test]
    fn pods_sum_their_containers_and_take_the_sandbox_network() {
        let mut state = State::new(4);
        let pod = PodReference {
            name: "p".into(),
            namespace: "ns".into(),
            uid: "u".into(),
        };
        for (id, name, cpu, memory) in [("a", "POD", 1u64, 1u64), ("b", "app", 2, 100)] {
            let mut cpu_ring = Ring::new(4);
            cpu_ring.push(Point {
                time: at(0),
                cpu_ns: 0,
            });
            cpu_ring.push(Point {
                time: at(10),
                cpu_ns: cpu * 1_000_000_000,
            });
            state.containers.insert(
                id.into(),
                Tracked {
                    pod: pod.clone(),
                    name: name.into(),
                    sandbox: name == "POD",
                    pid: 1,
                    files: CgroupFiles::V2("/".into()),
                    start_time: Some("2024-01-01T00:00:00Z".into()),
                    cpu: cpu_ring,
                    memory: Some((
                        at(10),
                        Usage {
                            cpu_ns: cpu,
                            memory_bytes: memory,
                            working_set_bytes: memory,
                            rss_bytes: memory,
                        },
                    )),
                    network: (name == "POD").then(|| NetworkStats {
                        time: "t".into(),
                        ..NetworkStats::default()
                    }),
                    layer: Layer::Engine,
                    log_path: None,
                    disk: Some(ContainerDisk {
                        measured: Instant::now(),
                        rootfs: Some(used(
                            "t",
                            disk::DiskUsage {
                                bytes: 1000 * memory,
                                inodes: 1,
                            },
                        )),
                        logs: Some(used(
                            "t",
                            disk::DiskUsage {
                                bytes: 10,
                                inodes: 1,
                            },
                        )),
                    }),
                },
            );
        }
        let filesystem = FsStats {
            time: "t".into(),
            available_bytes: Some(7),
            capacity_bytes: Some(9),
            ..FsStats::default()
        };
        state.node.image_fs = Some((Instant::now(), filesystem.clone()));
        state.node.fs = Some(filesystem);
        let volume = |name: &str, bytes| VolumeStats {
            name: name.into(),
            fs: used("t", disk::DiskUsage { bytes, inodes: 2 }),
        };
        state.volumes.insert(
            "u".into(),
            PodVolumes {
                measured: Instant::now(),
                volumes: vec![(volume("cache", 5000), true), (volume("shm", 300), false)],
            },
        );
        let summary = state.summary("n");
        assert_eq!(summary.node.node_name, "n");
        let [pod] = summary.pods.as_slice() else {
            panic!("one pod expected: {summary:?}")
        };
        assert_eq!(pod.containers.len(), 1);
        assert_eq!(pod.containers[0].name, "app");
        let cpu = pod.cpu.as_ref().unwrap();
        assert_eq!(cpu.usage_nano_cores, Some(300_000_000));
        assert_eq!(pod.memory.as_ref().unwrap().working_set_bytes, Some(101));
        assert!(pod.network.is_some());
        // Layers, logs and on-disk volumes; the tmpfs volume is memory.
        let ephemeral = pod.ephemeral_storage.as_ref().unwrap();
        assert_eq!(ephemeral.used_bytes, Some(1000 + 100_000 + 20 + 5000));
        assert_eq!(ephemeral.inodes_used, Some(6));
        assert_eq!(ephemeral.capacity_bytes, Some(9));
        assert_eq!(pod.volume.len(), 2);
        let rootfs = pod.containers[0].rootfs.as_ref().unwrap();
        assert_eq!(rootfs.used_bytes, Some(100_000));
        assert_eq!(rootfs.available_bytes, Some(7));
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["pods"][0]["podRef"]["uid"], "u");
        assert_eq!(
            json["pods"][0]["containers"][0]["cpu"]["usageNanoCores"],
            200_000_000
        );
        assert_eq!(json["pods"][0]["ephemeral-storage"]["usedBytes"], 106_020);
        assert_eq!(json["pods"][0]["volume"][0]["name"], "cache");
        assert_eq!(json["pods"][0]["volume"][0]["usedBytes"], 5000);
        assert_eq!(json["node"]["runtime"]["imageFs"]["capacityBytes"], 9);
    }
}
