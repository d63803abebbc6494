//! The engine every plugin runs on: compilation with an on-disk cache, one
//! linker for all worlds, and the epoch ticker that enforces call deadlines.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

use crate::bindings::admission::hortator::plugin::cluster;
use crate::cache::ComponentCache;
use crate::error::LoadError;
use crate::host::HostState;

/// How often the engine's epoch advances while a plugin runs; call deadlines are counted in
/// ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(1);

/// The version of the `hortator:plugin` WIT package this host implements.
pub const SDK_VERSION: &str = "0.1.0";

/// Settings of the [`Runtime`].
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    /// Where compiled components are cached (keyed by content hash and wasmtime
    /// version); `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
}

/// A wasmtime engine shared by every plugin of the process. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    cache: Option<ComponentCache>,
    linker: Linker<HostState>,
    ticker: EpochTicker,
    ticker_thread: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ticker.shared.stop.store(true, Ordering::SeqCst);
        self.ticker.thread.unpark();
        if let Some(handle) = self.ticker_thread.take() {
            let _ = handle.join();
        }
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] while some plugin code runs, and sleeps
/// once no plugin has run for [`EPOCH_LINGER`]: an idle host does not wake a thousand times
/// a second, and a busy one does not wake the ticker on every call.
#[derive(Clone)]
pub(crate) struct EpochTicker {
    shared: Arc<TickerShared>,
    thread: std::thread::Thread,
}

/// How long the ticker keeps ticking after the last plugin call ended.
const EPOCH_LINGER: Duration = Duration::from_millis(100);

#[derive(Default)]
struct TickerShared {
    /// Plugin calls (and loads) in progress.
    active: AtomicUsize,
    /// The ticker is parked (or about to park): the next call must wake it.
    parked: AtomicBool,
    stop: AtomicBool,
}

/// Keeps the epoch advancing while it lives; taken around every entry into plugin code.
pub(crate) struct Running<'a>(&'a EpochTicker);

impl EpochTicker {
    fn spawn(engine: Engine) -> std::io::Result<(EpochTicker, JoinHandle<()>)> {
        let shared = Arc::new(TickerShared::default());
        let state = shared.clone();
        let handle = std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                let mut idle_since = Instant::now();
                while !state.stop.load(Ordering::SeqCst) {
                    if state.active.load(Ordering::SeqCst) > 0 {
                        idle_since = Instant::now();
                    } else if idle_since.elapsed() >= EPOCH_LINGER {
                        // Announce the park before the last look at `active`: a call that
                        // starts after this look sees `parked` and unparks (an unpark that
                        // comes before the park makes it return at once).
                        state.parked.store(true, Ordering::SeqCst);
                        if state.active.load(Ordering::SeqCst) == 0
                            && !state.stop.load(Ordering::SeqCst)
                        {
                            std::thread::park();
                        }
                        state.parked.store(false, Ordering::SeqCst);
                        idle_since = Instant::now();
                        continue;
                    }
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        let thread = handle.thread().clone();
        Ok((EpochTicker { shared, thread }, handle))
    }

    /// Mark plugin code as running until the guard is dropped.
    pub(crate) fn running(&self) -> Running<'_> {
        self.shared.active.fetch_add(1, Ordering::SeqCst);
        if self.shared.parked.load(Ordering::SeqCst) {
            self.thread.unpark();
        }
        Running(self)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.shared.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A compiled component and what it took to get it.
pub(crate) struct Compiled {
    pub(crate) component: Component,
    pub(crate) digest: String,
    pub(crate) compile_time: Duration,
}

impl Runtime {
    /// Build the engine, the linker and start the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self, LoadError> {
        let mut wasm_config = Config::new();
        wasm_config
            .wasm_component_model(true)
            .concurrency_support(false)
            .epoch_interruption(true);
        let engine = Engine::new(&wasm_config).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        let cache = config
            .cache_dir
            .as_deref()
            .map(|dir| ComponentCache::open(dir, &engine, &wasm_config))
            .transpose()?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .and_then(|()| crate::stdio::add_to_linker(&mut linker))
            .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        cluster::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
            &mut linker,
            |state| state,
        )
        .map_err(|e| LoadError::Engine(format!("{e:#}")))?;

        let (ticker, ticker_thread) = EpochTicker::spawn(engine.clone())
            .map_err(|e| LoadError::Engine(format!("epoch thread: {e}")))?;
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                cache,
                linker,
                ticker,
                ticker_thread: Some(ticker_thread),
            }),
        })
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub(crate) fn ticker(&self) -> &EpochTicker {
        &self.inner.ticker
    }

    pub(crate) fn linker(&self) -> &Linker<HostState> {
        &self.inner.linker
    }

    /// Compile (or fetch from the cache) a component, after checking that it
    /// was built for a `hortator:plugin` version this host supports.
    pub(crate) fn compile(&self, name: &str, bytes: &[u8]) -> Result<Compiled, LoadError> {
        let digest = digest(bytes);
        if !wasmparser_is_component(bytes) {
            return Err(LoadError::NotAComponent {
                plugin: name.to_string(),
            });
        }
        let started = Instant::now();
        let component = match &self.inner.cache {
            Some(cache) => cache.load(name, &self.inner.engine, bytes, &digest)?,
            None => Component::new(&self.inner.engine, bytes)
                .map_err(|e| LoadError::compile(name, format!("{e:#}")))?,
        };
        let compile_time = started.elapsed();
        check_sdk_version(name, &self.inner.engine, &component)?;
        Ok(Compiled {
            component,
            digest,
            compile_time,
        })
    }
}

/// `sha256:<hex>` of a component's bytes, as shown by `plugin list`.
pub(crate) fn digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// A component starts with the wasm magic and the component-model layer.
fn wasmparser_is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[0..4] == *b"\0asm" && bytes[6..8] == [0x01, 0x00]
}

/// Every `hortator:plugin/...@x.y.z` name the component imports or exports must
/// be semver-compatible with [`SDK_VERSION`].
fn check_sdk_version(name: &str, engine: &Engine, component: &Component) -> Result<(), LoadError> {
    let host = semver::Version::parse(SDK_VERSION).expect("SDK_VERSION is semver");
    let ty = component.component_type();
    let names = ty
        .imports(engine)
        .map(|(n, _)| n)
        .chain(ty.exports(engine).map(|(n, _)| n));
    for item in names {
        let Some(rest) = item.strip_prefix("hortator:plugin/") else {
            continue;
        };
        let Some((_, version)) = rest.split_once('@') else {
            continue;
        };
        let compatible = semver::Version::parse(version).is_ok_and(|v| sdk_compatible(&host, &v));
        if !compatible {
            return Err(LoadError::SdkVersion {
                plugin: name.to_string(),
                plugin_version: version.to_string(),
                host_version: SDK_VERSION.to_string(),
            });
        }
    }
    Ok(())
}

/// Cargo's rule: same major, and for 0.x the same minor.
pub(crate) fn sdk_compatible(host: &semver::Version, plugin: &semver::Version) -> bool {
    if host.major != plugin.major {
        return false;
    }
    host.major != 0 || host.minor == plugin.minor
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eventually(what: &str, check: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !check() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn the_ticker_parks_when_idle_and_wakes_for_a_call() {
        let engine = Engine::new(Config::new().epoch_interruption(true)).unwrap();
        let (ticker, handle) = EpochTicker::spawn(engine).unwrap();
        let parked = || ticker.shared.parked.load(Ordering::SeqCst);
        eventually("the idle ticker parks", parked);
        {
            let _running = ticker.running();
            eventually("a call wakes the ticker", || !parked());
            std::thread::sleep(EPOCH_LINGER * 3);
            assert!(!parked(), "the ticker must tick while a call runs");
        }
        eventually("the ticker parks again after the linger", parked);
        ticker.shared.stop.store(true, Ordering::SeqCst);
        ticker.thread.unpark();
        handle.join().unwrap();
    }

    #[test]
    fn semver_rules() {
        let v = |s| semver::Version::parse(s).unwrap();
        assert!(sdk_compatible(&v("0.1.0"), &v("0.1.7")));
        assert!(sdk_compatible(&v("0.1.9"), &v("0.1.0")));
        assert!(!sdk_compatible(&v("0.1.0"), &v("0.2.0")));
        assert!(!sdk_compatible(&v("0.1.0"), &v("1.1.0")));
        assert!(sdk_compatible(&v("1.2.0"), &v("1.0.3")));
    }

    #[test]
    fn core_modules_are_not_components() {
        assert!(!wasmparser_is_component(b"\0asm\x01\0\0\0"));
        assert!(wasmparser_is_component(b"\0asm\x0d\0\x01\0"));
        assert!(!wasmparser_is_component(b"hello"));
    }
}
