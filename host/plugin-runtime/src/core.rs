//! What every loaded plugin shares, whatever its world: loading and checking
//! the component, a pool of initialised instances, calls under a deadline,
//! trap isolation and metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::Store;
use wasmtime::component::InstancePre;

use crate::bindings::admission::hortator::plugin::types::PluginMetadata;
use crate::error::{CallError, LoadError};
use crate::host::{ClusterReader, HostState, STDERR_CAPACITY};
use crate::metrics::Metrics;
use crate::runtime::{EPOCH_TICK, EpochTicker, Runtime, SDK_VERSION, sdk_compatible};
use crate::settings::PluginSettings;

/// The glue between the generic core and one `bindgen!` world.
pub(crate) trait WorldBinding: Sized + Send + 'static {
    /// The world's WIT name.
    const WORLD: &'static str;
    /// The world's pre-instantiated form.
    type Pre: Send + Sync + 'static;

    fn pre(instance_pre: InstancePre<HostState>) -> wasmtime::Result<Self::Pre>;
    fn instantiate(pre: &Self::Pre, store: &mut Store<HostState>) -> wasmtime::Result<Self>;
    fn metadata(&self, store: &mut Store<HostState>) -> wasmtime::Result<PluginMetadata>;
    fn init(
        &self,
        store: &mut Store<HostState>,
        config: &str,
    ) -> wasmtime::Result<Result<(), String>>;
}

/// Implements [`WorldBinding`] for a `bindgen!` world and its `*Pre` type.
macro_rules! world_binding {
    ($world:ident, $pre:ident, $name:literal) => {
        impl $crate::core::WorldBinding for $world {
            const WORLD: &'static str = $name;
            type Pre = $pre<$crate::host::HostState>;

            fn pre(
                instance_pre: wasmtime::component::InstancePre<$crate::host::HostState>,
            ) -> wasmtime::Result<Self::Pre> {
                $pre::new(instance_pre)
            }
            fn instantiate(
                pre: &Self::Pre,
                store: &mut wasmtime::Store<$crate::host::HostState>,
            ) -> wasmtime::Result<Self> {
                pre.instantiate(store)
            }
            fn metadata(
                &self,
                store: &mut wasmtime::Store<$crate::host::HostState>,
            ) -> wasmtime::Result<$crate::PluginMetadata> {
                self.call_metadata(store)
            }
            fn init(
                &self,
                store: &mut wasmtime::Store<$crate::host::HostState>,
                config: &str,
            ) -> wasmtime::Result<Result<(), String>> {
                self.call_init(store, config)
            }
        }
    };
}

/// The accessors every plugin type (a struct with a `core: Core<_>`) shares.
macro_rules! plugin_accessors {
    () => {
        /// Name, version, digest, timings.
        pub fn info(&self) -> &$crate::core::PluginInfo {
            self.core.info()
        }

        /// The settings it was loaded with.
        pub fn settings(&self) -> &$crate::settings::PluginSettings {
            self.core.settings()
        }

        /// Its call metrics.
        pub fn metrics(&self) -> &std::sync::Arc<$crate::metrics::Metrics> {
            self.core.metrics()
        }

        /// Whether a recent call took long (a timeout, or tens of milliseconds).
        /// Callers on an async runtime run a slow plugin on a blocking thread and a fast
        /// one in place.
        pub fn is_slow(&self) -> bool {
            self.core.is_slow()
        }
    };
}

pub(crate) use {plugin_accessors, world_binding};

/// An initialised instance, ready for calls.
struct Live<W> {
    store: Store<HostState>,
    world: W,
    stderr_seen: usize,
}

/// What a plugin reports about itself and how it was loaded.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    /// The configured name (the admission chain entry, or the extension point).
    pub name: String,
    /// The world the plugin implements.
    pub world: &'static str,
    /// The name the plugin gives itself.
    pub plugin_name: String,
    /// The plugin's own version.
    pub version: String,
    /// The SDK version the plugin says it was built with.
    pub sdk_version: String,
    /// `sha256:<hex>` of the component bytes.
    pub digest: String,
    /// Where the module came from (`builtin:<name>` or a path).
    pub source: String,
    /// Compile time, or cache-load time when the component was cached.
    pub compile_time: Duration,
    /// Time to instantiate and `init` the first instance.
    pub start_time: Duration,
}

/// A call that takes this long (wall clock: a call preempted on a busy machine counts too)
/// marks its plugin slow for [`SLOW_FOR`].
const SLOW_CALL: Duration = Duration::from_millis(50);

/// How long a plugin stays slow after a slow call.
const SLOW_FOR: Duration = Duration::from_secs(30);

/// A loaded plugin of world `W`.
pub(crate) struct Core<W: WorldBinding> {
    pre: W::Pre,
    settings: PluginSettings,
    cluster: Option<Arc<dyn ClusterReader>>,
    deadline_ticks: u64,
    idle: Mutex<Vec<Live<W>>>,
    info: PluginInfo,
    metrics: Arc<Metrics>,
    engine: wasmtime::Engine,
    ticker: EpochTicker,
    /// When the plugin was loaded: the origin of `slow_until`.
    loaded: Instant,
    /// Until when (milliseconds after `loaded`) the plugin counts as slow.
    slow_until: AtomicU64,
}

impl<W: WorldBinding> Core<W> {
    /// Compile, link, instantiate, check metadata and `init` — any failure
    /// refuses the plugin.
    pub(crate) fn load(
        runtime: &Runtime,
        settings: PluginSettings,
        source: String,
        bytes: &[u8],
        cluster: Option<Arc<dyn ClusterReader>>,
    ) -> Result<Self, LoadError> {
        let name = settings.name.clone();
        let compiled = runtime.compile(&name, bytes)?;
        let world_error = |e: wasmtime::Error| LoadError::World {
            plugin: name.clone(),
            world: W::WORLD,
            message: format!("{e:#}"),
        };
        let instance_pre = runtime
            .linker()
            .instantiate_pre(&compiled.component)
            .map_err(world_error)?;
        let pre = W::pre(instance_pre).map_err(world_error)?;
        let cluster = if settings.cluster_read { cluster } else { None };
        let deadline_ticks =
            (settings.timeout.as_micros() / EPOCH_TICK.as_micros()).max(1) as u64 + 1;
        let started = Instant::now();
        let mut core: Core<W> = Core {
            pre,
            cluster,
            deadline_ticks,
            idle: Mutex::new(Vec::new()),
            info: PluginInfo {
                name: name.clone(),
                world: W::WORLD,
                plugin_name: String::new(),
                version: String::new(),
                sdk_version: String::new(),
                digest: compiled.digest,
                source,
                compile_time: compiled.compile_time,
                start_time: Duration::ZERO,
            },
            metrics: Arc::new(Metrics::default()),
            engine: runtime.engine().clone(),
            ticker: runtime.ticker().clone(),
            settings,
            loaded: Instant::now(),
            slow_until: AtomicU64::new(0),
        };
        let _running = runtime.ticker().running();
        let mut live = core.instantiate().map_err(|message| LoadError::Start {
            plugin: name.clone(),
            message,
        })?;
        live.store.set_epoch_deadline(core.deadline_ticks);
        let metadata = live
            .world
            .metadata(&mut live.store)
            .map_err(|e| LoadError::Start {
                plugin: name.clone(),
                message: format!("metadata() {}", core.classify(e, &live)),
            })?;
        let host = semver::Version::parse(SDK_VERSION).expect("SDK_VERSION is semver");
        if !semver::Version::parse(&metadata.sdk_version).is_ok_and(|v| sdk_compatible(&host, &v)) {
            return Err(LoadError::SdkVersion {
                plugin: name,
                plugin_version: metadata.sdk_version,
                host_version: SDK_VERSION.to_string(),
            });
        }
        core.init(&mut live).map_err(|e| match e {
            StartFailure::Refused(message) => LoadError::Init {
                plugin: name.clone(),
                message,
            },
            StartFailure::Failed(message) => LoadError::Start {
                plugin: name.clone(),
                message,
            },
        })?;
        core.info.plugin_name = metadata.name;
        core.info.version = metadata.version;
        core.info.sdk_version = metadata.sdk_version;
        core.info.start_time = started.elapsed();
        core.idle.get_mut().expect("fresh mutex").push(live);
        Ok(core)
    }

    pub(crate) fn info(&self) -> &PluginInfo {
        &self.info
    }

    pub(crate) fn settings(&self) -> &PluginSettings {
        &self.settings
    }

    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub(crate) fn is_slow(&self) -> bool {
        self.since_loaded_ms() < self.slow_until.load(Ordering::Relaxed)
    }

    fn since_loaded_ms(&self) -> u64 {
        self.loaded.elapsed().as_millis() as u64
    }

    fn note_duration(&self, elapsed: Duration) {
        if elapsed >= SLOW_CALL {
            let until = self.since_loaded_ms() + SLOW_FOR.as_millis() as u64;
            self.slow_until.store(until, Ordering::Relaxed);
        }
    }

    /// A fresh instance from the `InstancePre` (not yet initialised).
    fn instantiate(&self) -> Result<Live<W>, String> {
        let state = HostState::new(self.settings.memory_limit, self.cluster.clone());
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(self.deadline_ticks);
        let world =
            W::instantiate(&self.pre, &mut store).map_err(|e| format!("instantiate: {e:#}"))?;
        Ok(Live {
            store,
            world,
            stderr_seen: 0,
        })
    }

    fn init(&self, live: &mut Live<W>) -> Result<(), StartFailure> {
        live.store.set_epoch_deadline(self.deadline_ticks);
        match live.world.init(&mut live.store, &self.settings.config) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(StartFailure::Refused(message)),
            Err(e) => Err(StartFailure::Failed(format!(
                "init() {}",
                self.classify(e, live)
            ))),
        }
    }

    /// Time to instantiate a fresh instance from the `InstancePre` and `init` it.
    pub(crate) fn measure_instantiate(&self) -> Result<Duration, String> {
        let _running = self.ticker.running();
        let started = Instant::now();
        let mut live = self.instantiate()?;
        self.init(&mut live).map_err(|e| match e {
            StartFailure::Refused(m) | StartFailure::Failed(m) => m,
        })?;
        Ok(started.elapsed())
    }

    /// Run `call` on an idle instance (starting one if none is idle). A failed
    /// call discards its instance; the next call gets a fresh one.
    pub(crate) fn call<R>(
        &self,
        call: impl FnOnce(&W, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let _running = self.ticker.running();
        let started = Instant::now();
        let idle = self.idle.lock().expect("instance pool lock").pop();
        let mut live = match idle {
            Some(live) => live,
            None => {
                let restarted = self.instantiate().and_then(|mut live| {
                    self.init(&mut live).map_err(|e| match e {
                        StartFailure::Refused(m) => format!("init() refused: {m}"),
                        StartFailure::Failed(m) => m,
                    })?;
                    Ok(live)
                });
                match restarted {
                    Ok(live) => live,
                    Err(message) => {
                        let err = CallError::Restart(message);
                        self.metrics.record_error(&err, started.elapsed());
                        return Err(err);
                    }
                }
            }
        };
        live.store.set_epoch_deadline(self.deadline_ticks);
        let result = call(&live.world, &mut live.store);
        let elapsed = started.elapsed();
        self.note_duration(elapsed);
        self.forward_stderr(&mut live);
        match result {
            Ok(value) => {
                self.metrics.record_ok(elapsed);
                if live.stderr_seen < STDERR_CAPACITY / 2 {
                    self.idle.lock().expect("instance pool lock").push(live);
                }
                Ok(value)
            }
            Err(e) => {
                let err = self.classify(e, &live);
                self.metrics.record_error(&err, elapsed);
                tracing::warn!(plugin = %self.info.name, error = %err, "plugin call failed; instance discarded");
                Err(err)
            }
        }
    }

    /// Count a call whose output the host rejected.
    pub(crate) fn record_malformed(&self, err: &CallError) {
        self.metrics.reclassify_as_error(err);
        tracing::warn!(plugin = %self.info.name, error = %err, "plugin returned malformed output");
    }

    fn classify(&self, e: wasmtime::Error, live: &Live<W>) -> CallError {
        if e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
            return CallError::Timeout(self.settings.timeout);
        }
        if e.chain().any(|cause| cause.to_string().contains("forcing")) {
            return CallError::OutOfMemory(self.settings.memory_limit);
        }
        let mut message = e.root_cause().to_string();
        let stderr = live.store.data().stderr.contents();
        let tail: Vec<&str> = std::str::from_utf8(&stderr)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.contains("RUST_BACKTRACE"))
            .collect();
        if !tail.is_empty() {
            let from = tail.len().saturating_sub(3);
            message.push_str(&format!(" ({})", tail[from..].join(" ")));
        }
        CallError::Trap(message)
    }

    fn forward_stderr(&self, live: &mut Live<W>) {
        let contents = live.store.data().stderr.contents();
        if contents.len() > live.stderr_seen {
            let new = String::from_utf8_lossy(&contents[live.stderr_seen..]);
            for line in new.lines().filter(|l| !l.is_empty()) {
                tracing::info!(plugin = %self.info.name, "{line}");
            }
            live.stderr_seen = contents.len();
        }
    }
}

enum StartFailure {
    /// `init` returned an error.
    Refused(String),
    /// Instantiation or the call itself failed.
    Failed(String),
}
