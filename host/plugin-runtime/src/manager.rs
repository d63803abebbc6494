//! The plugins of a running cluster: one slot per extension point, loaded from
//! the configuration, swapped atomically from a new configuration or from
//! `hortctl plugin swap`, listed for `hortctl plugin list`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwap;
use serde::Serialize;

use crate::admission::AdmissionPlugin;
use crate::build_strategy::BuildStrategyPlugin;
use crate::core::PluginInfo;
use crate::error::LoadError;
use crate::host::ClusterReader;
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::network::NetworkDriverPlugin;
use crate::runtime::Runtime;
use crate::scheduler::SchedulerPlugin;
use crate::settings::{FailurePolicy, ModuleSource, Phase, PluginSettings, ValidatedPlugins};

/// The active plugin of one extension point. Readers take an `Arc` of the
/// current plugin, so calls in flight finish on the plugin they started with.
pub struct PluginSlot<P> {
    active: ArcSwap<P>,
}

impl<P> PluginSlot<P> {
    fn new(plugin: P) -> Self {
        PluginSlot {
            active: ArcSwap::from_pointee(plugin),
        }
    }

    /// The active plugin.
    pub fn current(&self) -> Arc<P> {
        self.active.load_full()
    }

    fn replace(&self, plugin: P) {
        self.active.store(Arc::new(plugin));
    }
}

/// An admission plugin's place in the chain.
pub struct ChainEntry {
    /// `admission/<name>`.
    pub point: String,
    /// When it runs.
    pub phase: Phase,
    /// The plugin.
    pub slot: Arc<PluginSlot<AdmissionPlugin>>,
}

/// A scheduler profile: the plugin that places pods naming this scheduler.
pub struct SchedulerProfile {
    /// The `spec.schedulerName` it serves.
    pub scheduler_name: String,
    /// The plugin.
    pub slot: Arc<PluginSlot<SchedulerPlugin>>,
}

/// What happened to a plugin, for logs and cluster Events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginEvent {
    /// The extension point, e.g. `admission/pod-security`.
    pub point: String,
    /// Whether the plugin was (re)loaded; false means the old one stayed.
    pub loaded: bool,
    /// What happened.
    pub message: String,
}

/// One row of `hortctl plugin list`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginStatus {
    /// `admission/<name>`, `scheduler/<name>`, `network-driver` or `build-strategy/<name>`.
    pub point: String,
    /// Admission phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The active plugin, if one could be loaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<ActivePlugin>,
    /// The last load or swap failure of this point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// The active plugin of a point.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivePlugin {
    /// The name the plugin gives itself.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The SDK version it was built with.
    pub sdk_version: String,
    /// `sha256:<hex>` of the component.
    pub digest: String,
    /// `builtin:<name>` or the file it was loaded from.
    pub source: String,
    /// Deadline per call, milliseconds.
    pub timeout_ms: u64,
    /// Memory cap per instance, MiB.
    pub memory_mb: u64,
    /// Failure policy.
    pub failure_policy: FailurePolicy,
    /// Whether it may read the cluster.
    pub cluster_read: bool,
    /// Compile (or cache load) time, milliseconds.
    pub compile_ms: f64,
    /// Time to instantiate and initialise, milliseconds.
    pub start_ms: f64,
    /// Call metrics.
    pub metrics: MetricsSnapshot,
}

/// A loadable world, for the generic parts of the manager.
trait Loadable: Sized + Send + Sync + 'static {
    fn load_plugin(
        runtime: &Runtime,
        settings: PluginSettings,
        source: String,
        bytes: &[u8],
        cluster: Option<Arc<dyn ClusterReader>>,
    ) -> Result<Self, LoadError>;
    fn info(&self) -> &PluginInfo;
    fn settings(&self) -> &PluginSettings;
    fn metrics(&self) -> &Arc<Metrics>;
}

macro_rules! loadable {
    ($plugin:ty, |$runtime:ident, $settings:ident, $source:ident, $bytes:ident, $cluster:ident| $load:expr) => {
        impl Loadable for $plugin {
            fn load_plugin(
                $runtime: &Runtime,
                $settings: PluginSettings,
                $source: String,
                $bytes: &[u8],
                $cluster: Option<Arc<dyn ClusterReader>>,
            ) -> Result<Self, LoadError> {
                $load
            }
            fn info(&self) -> &PluginInfo {
                <$plugin>::info(self)
            }
            fn settings(&self) -> &PluginSettings {
                <$plugin>::settings(self)
            }
            fn metrics(&self) -> &Arc<Metrics> {
                <$plugin>::metrics(self)
            }
        }
    };
}

loadable!(AdmissionPlugin, |runtime,
                            settings,
                            source,
                            bytes,
                            cluster| {
    AdmissionPlugin::load(runtime, settings, source, bytes, cluster)
});
loadable!(SchedulerPlugin, |runtime,
                            settings,
                            source,
                            bytes,
                            _cluster| {
    SchedulerPlugin::load(runtime, settings, source, bytes)
});
loadable!(
    NetworkDriverPlugin,
    |runtime, settings, source, bytes, _cluster| NetworkDriverPlugin::load(
        runtime, settings, source, bytes
    )
);
loadable!(
    BuildStrategyPlugin,
    |runtime, settings, source, bytes, _cluster| BuildStrategyPlugin::load(
        runtime, settings, source, bytes
    )
);

/// A slot together with what the configuration last asked of it.
struct Point<P> {
    slot: Arc<PluginSlot<P>>,
    /// Settings and module digest last loaded from the configuration; a manual
    /// swap does not change them, so a reload only touches points whose
    /// configuration changed.
    configured: (PluginSettings, String),
}

#[derive(Default)]
struct Points {
    admission: BTreeMap<String, Point<AdmissionPlugin>>,
    schedulers: BTreeMap<String, Point<SchedulerPlugin>>,
    network_driver: Option<Point<NetworkDriverPlugin>>,
    build_strategies: BTreeMap<String, Point<BuildStrategyPlugin>>,
    /// Admission points in configuration order, with their phase.
    admission_order: Vec<(String, Phase)>,
    build_order: Vec<String>,
    /// Scheduler points in configuration order.
    scheduler_order: Vec<String>,
}

type EventSink = Box<dyn Fn(&PluginEvent) + Send + Sync>;

/// Every plugin of the process.
pub struct PluginManager {
    runtime: Runtime,
    cluster: Option<Arc<dyn ClusterReader>>,
    points: Mutex<Points>,
    chain: ArcSwap<Vec<ChainEntry>>,
    profiles: ArcSwap<Vec<SchedulerProfile>>,
    errors: Mutex<BTreeMap<String, String>>,
    sink: OnceLock<EventSink>,
}

/// The module bytes a setting names, with their digest.
fn read_module(
    settings: &PluginSettings,
    base_dir: &Path,
) -> Result<(Vec<u8>, String, String), LoadError> {
    let (bytes, source) = match &settings.module {
        ModuleSource::Builtin(name) => {
            let bytes = crate::builtin::get(name).ok_or_else(|| LoadError::UnknownBuiltin {
                plugin: settings.name.clone(),
                builtin: name.clone(),
                available: crate::builtin::NAMES.join(", "),
            })?;
            (bytes.to_vec(), settings.module.to_string())
        }
        ModuleSource::File(path) => {
            let path = base_dir.join(path);
            let bytes = std::fs::read(&path).map_err(|e| LoadError::Read {
                plugin: settings.name.clone(),
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            (bytes, path.display().to_string())
        }
    };
    let digest = crate::runtime::digest(&bytes);
    Ok((bytes, source, digest))
}

impl PluginManager {
    /// An empty manager; `cluster` serves lookups of plugins granted `cluster-read`.
    pub fn new(runtime: Runtime, cluster: Option<Arc<dyn ClusterReader>>) -> Self {
        PluginManager {
            runtime,
            cluster,
            points: Mutex::new(Points::default()),
            chain: ArcSwap::from_pointee(Vec::new()),
            profiles: ArcSwap::from_pointee(Vec::new()),
            errors: Mutex::new(BTreeMap::new()),
            sink: OnceLock::new(),
        }
    }

    /// Where load and swap outcomes are reported (in addition to the log);
    /// only the first sink set is used.
    pub fn set_event_sink(&self, sink: impl Fn(&PluginEvent) + Send + Sync + 'static) {
        let _ = self.sink.set(Box::new(sink));
    }

    fn report(&self, point: &str, outcome: Result<&PluginInfo, &LoadError>) {
        let event = match outcome {
            Ok(info) => {
                self.errors.lock().expect("errors lock").remove(point);
                tracing::info!(point, plugin = %info.plugin_name, version = %info.version, digest = %info.digest, "plugin loaded");
                PluginEvent {
                    point: point.to_string(),
                    loaded: true,
                    message: format!(
                        "loaded {} {} ({}) from {}",
                        info.plugin_name, info.version, info.digest, info.source
                    ),
                }
            }
            Err(err) => {
                self.errors
                    .lock()
                    .expect("errors lock")
                    .insert(point.to_string(), err.to_string());
                tracing::error!(point, error = %err, "plugin not loaded; the previous one (if any) stays active");
                PluginEvent {
                    point: point.to_string(),
                    loaded: false,
                    message: err.to_string(),
                }
            }
        };
        if let Some(sink) = self.sink.get() {
            sink(&event);
        }
    }

    /// Bring every point in line with `config` (module paths are relative to
    /// `base_dir`). Points whose settings and module are unchanged are left
    /// alone; a plugin that fails to load leaves the previous one active.
    /// Returns the failures.
    pub fn apply(&self, config: &ValidatedPlugins, base_dir: &Path) -> Vec<LoadError> {
        let mut points = self.points.lock().expect("points lock");
        let mut failures = Vec::new();

        let mut admission = BTreeMap::new();
        let mut order = Vec::new();
        for (phase, settings) in &config.admission {
            let point = format!("admission/{}", settings.name);
            let previous = points.admission.remove(&point);
            if let Some(p) =
                self.reconcile_point(&point, previous, settings, base_dir, &mut failures)
            {
                admission.insert(point.clone(), p);
                order.push((point, *phase));
            }
        }
        points.admission = admission;
        points.admission_order = order;

        let mut schedulers = BTreeMap::new();
        let mut scheduler_order = Vec::new();
        for settings in &config.schedulers {
            let point = format!("scheduler/{}", settings.name);
            let previous = points.schedulers.remove(&point);
            if let Some(p) =
                self.reconcile_point(&point, previous, settings, base_dir, &mut failures)
            {
                schedulers.insert(point.clone(), p);
                scheduler_order.push(point);
            }
        }
        points.schedulers = schedulers;
        points.scheduler_order = scheduler_order;
        let previous = points.network_driver.take();
        points.network_driver = match &config.network_driver {
            Some(settings) => self.reconcile_point(
                "network-driver",
                previous,
                settings,
                base_dir,
                &mut failures,
            ),
            None => None,
        };
        let mut builds = BTreeMap::new();
        let mut build_order = Vec::new();
        for settings in &config.build_strategies {
            let point = format!("build-strategy/{}", settings.name);
            let previous = points.build_strategies.remove(&point);
            if let Some(p) =
                self.reconcile_point(&point, previous, settings, base_dir, &mut failures)
            {
                builds.insert(point.clone(), p);
                build_order.push(point);
            }
        }
        points.build_strategies = builds;
        points.build_order = build_order;

        let configured: Vec<String> = config.points();
        self.errors
            .lock()
            .expect("errors lock")
            .retain(|point, _| configured.contains(point));
        self.publish_chain(&points);
        self.publish_profiles(&points);
        failures
    }

    fn reconcile_point<P: Loadable>(
        &self,
        point: &str,
        previous: Option<Point<P>>,
        settings: &PluginSettings,
        base_dir: &Path,
        failures: &mut Vec<LoadError>,
    ) -> Option<Point<P>> {
        let loaded = read_module(settings, base_dir).and_then(|(bytes, source, digest)| {
            if let Some(previous) = &previous
                && previous.configured == (settings.clone(), digest.clone())
            {
                return Ok(None);
            }
            let plugin = P::load_plugin(
                &self.runtime,
                settings.clone(),
                source,
                &bytes,
                self.cluster.clone(),
            )?;
            Ok(Some((plugin, digest)))
        });
        match (loaded, previous) {
            (Ok(None), previous) => previous,
            (Ok(Some((plugin, digest))), previous) => {
                self.report(point, Ok(plugin.info()));
                let configured = (settings.clone(), digest);
                match previous {
                    Some(previous) => {
                        previous.slot.replace(plugin);
                        Some(Point {
                            slot: previous.slot,
                            configured,
                        })
                    }
                    None => Some(Point {
                        slot: Arc::new(PluginSlot::new(plugin)),
                        configured,
                    }),
                }
            }
            (Err(err), previous) => {
                self.report(point, Err(&err));
                failures.push(err);
                previous
            }
        }
    }

    fn publish_chain(&self, points: &Points) {
        let entries = |phase: Phase| {
            points
                .admission_order
                .iter()
                .filter(move |(_, p)| *p == phase)
                .filter_map(|(point, phase)| {
                    points.admission.get(point).map(|p| ChainEntry {
                        point: point.clone(),
                        phase: *phase,
                        slot: p.slot.clone(),
                    })
                })
        };
        let chain: Vec<ChainEntry> = entries(Phase::Mutating)
            .chain(entries(Phase::Validating))
            .collect();
        self.chain.store(Arc::new(chain));
    }

    fn publish_profiles(&self, points: &Points) {
        let profiles = points
            .scheduler_order
            .iter()
            .filter_map(|point| {
                points.schedulers.get(point).map(|p| SchedulerProfile {
                    scheduler_name: point.trim_start_matches("scheduler/").to_string(),
                    slot: p.slot.clone(),
                })
            })
            .collect();
        self.profiles.store(Arc::new(profiles));
    }

    /// Replace the plugin of `point` with a new component, keeping the point's
    /// settings. The new plugin is loaded, initialised and checked first; on
    /// any failure the old one stays and the error is returned. `scheduler`
    /// alone names the scheduler profile when there is exactly one.
    pub fn swap(&self, point: &str, bytes: &[u8], source: &str) -> Result<PluginInfo, SwapError> {
        let points = self.points.lock().expect("points lock");
        fn swap_in<P: Loadable>(
            manager: &PluginManager,
            point: &str,
            slot: &PluginSlot<P>,
            bytes: &[u8],
            source: &str,
        ) -> Result<PluginInfo, SwapError> {
            let settings = slot.current().settings().clone();
            let loaded = P::load_plugin(
                &manager.runtime,
                settings,
                source.to_string(),
                bytes,
                manager.cluster.clone(),
            );
            match loaded {
                Ok(plugin) => {
                    let info = plugin.info().clone();
                    manager.report(point, Ok(&info));
                    slot.replace(plugin);
                    Ok(info)
                }
                Err(err) => {
                    manager.report(point, Err(&err));
                    Err(SwapError::Load(err))
                }
            }
        }
        let unknown = || SwapError::UnknownPoint {
            point: point.to_string(),
            known: Self::point_names(&points).join(", "),
        };
        if point.starts_with("admission/") {
            let p = points.admission.get(point).ok_or_else(unknown)?;
            swap_in(self, point, &p.slot, bytes, source)
        } else if point.starts_with("build-strategy/") {
            let p = points.build_strategies.get(point).ok_or_else(unknown)?;
            swap_in(self, point, &p.slot, bytes, source)
        } else if point.starts_with("scheduler/") {
            let p = points.schedulers.get(point).ok_or_else(unknown)?;
            swap_in(self, point, &p.slot, bytes, source)
        } else if point == "scheduler" {
            let [only] = points.scheduler_order.as_slice() else {
                return Err(unknown());
            };
            swap_in(self, only, &points.schedulers[only].slot, bytes, source)
        } else if point == "network-driver" {
            let p = points.network_driver.as_ref().ok_or_else(unknown)?;
            swap_in(self, point, &p.slot, bytes, source)
        } else {
            Err(unknown())
        }
    }

    fn point_names(points: &Points) -> Vec<String> {
        let mut names: Vec<String> = points
            .admission_order
            .iter()
            .map(|(p, _)| p.clone())
            .collect();
        names.extend(points.scheduler_order.iter().cloned());
        names.extend(
            points
                .network_driver
                .iter()
                .map(|_| "network-driver".to_string()),
        );
        names.extend(points.build_order.iter().cloned());
        names
    }

    /// The admission chain: mutating plugins first, then validating, each in
    /// configuration order.
    pub fn admission_chain(&self) -> Arc<Vec<ChainEntry>> {
        self.chain.load_full()
    }

    /// The scheduler profiles, in configuration order.
    pub fn scheduler_profiles(&self) -> Arc<Vec<SchedulerProfile>> {
        self.profiles.load_full()
    }

    /// The network driver slot, if one is configured.
    pub fn network_driver(&self) -> Option<Arc<PluginSlot<NetworkDriverPlugin>>> {
        self.points
            .lock()
            .expect("points lock")
            .network_driver
            .as_ref()
            .map(|p| p.slot.clone())
    }

    /// A build strategy slot by name.
    pub fn build_strategy(&self, name: &str) -> Option<Arc<PluginSlot<BuildStrategyPlugin>>> {
        let points = self.points.lock().expect("points lock");
        points
            .build_strategies
            .get(&format!("build-strategy/{name}"))
            .map(|p| p.slot.clone())
    }

    /// Expose every active plugin's call metrics in `registry`, read at each scrape.
    pub fn register_metrics(
        self: &Arc<Self>,
        registry: &mut prometheus_client::registry::Registry,
    ) {
        registry.register_collector(Box::new(crate::metrics::PluginCollector(self.clone())));
    }

    /// Every point with its active plugin and last error, in configuration order.
    pub fn list(&self) -> Vec<PluginStatus> {
        let points = self.points.lock().expect("points lock");
        let errors = self.errors.lock().expect("errors lock").clone();
        fn active<P: Loadable>(slot: &PluginSlot<P>) -> ActivePlugin {
            let plugin = slot.current();
            let (info, settings) = (plugin.info(), plugin.settings());
            ActivePlugin {
                name: info.plugin_name.clone(),
                version: info.version.clone(),
                sdk_version: info.sdk_version.clone(),
                digest: info.digest.clone(),
                source: info.source.clone(),
                timeout_ms: settings.timeout.as_millis() as u64,
                memory_mb: (settings.memory_limit >> 20) as u64,
                failure_policy: settings.failure_policy,
                cluster_read: settings.cluster_read,
                compile_ms: info.compile_time.as_secs_f64() * 1e3,
                start_ms: info.start_time.as_secs_f64() * 1e3,
                metrics: plugin.metrics().snapshot(),
            }
        }
        let mut rows = Vec::new();
        let mut seen = Vec::new();
        let row = |point: &str, phase, active| PluginStatus {
            point: point.to_string(),
            phase,
            active,
            last_error: errors.get(point).cloned(),
        };
        for (point, phase) in &points.admission_order {
            rows.push(row(
                point,
                Some(*phase),
                points.admission.get(point).map(|p| active(&p.slot)),
            ));
            seen.push(point.clone());
        }
        for point in &points.scheduler_order {
            rows.push(row(
                point,
                None,
                points.schedulers.get(point).map(|p| active(&p.slot)),
            ));
            seen.push(point.clone());
        }
        if let Some(p) = &points.network_driver {
            rows.push(row("network-driver", None, Some(active(&p.slot))));
            seen.push("network-driver".into());
        }
        for point in &points.build_order {
            rows.push(row(
                point,
                None,
                points.build_strategies.get(point).map(|p| active(&p.slot)),
            ));
            seen.push(point.clone());
        }
        for point in errors.keys().filter(|p| !seen.contains(p)) {
            rows.push(row(point, None, None));
        }
        rows
    }
}

/// Why `swap` did not happen.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SwapError {
    /// No such extension point is configured.
    #[error("no plugin point {point:?} is configured (configured: {known})")]
    UnknownPoint {
        /// The requested point.
        point: String,
        /// The configured ones.
        known: String,
    },
    /// The new plugin could not be loaded; the old one stays active.
    #[error("{0}; the previous plugin stays active")]
    Load(LoadError),
}
