//! Compiled components on disk, keyed by the component's content hash and the engine's
//! compatibility hash (wasmtime's version and every compilation setting).
//!
//! A cached component is mapped from its file, so its code costs resident memory only where
//! it runs. A missing one is compiled on an engine and a thread of its own, which end with
//! the compiler's working memory, and written before it is mapped.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use wasmtime::component::Component;
use wasmtime::{Config, Engine};

use crate::error::LoadError;

/// Entries not used for this long are removed when the cache is opened.
const UNUSED_ENTRY_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// The file name ending of a cached component.
const EXTENSION: &str = "cwasm";

/// A directory of precompiled components for one engine configuration.
pub(crate) struct ComponentCache {
    dir: PathBuf,
    /// The engine's compatibility hash, in hex: part of every entry's name.
    engine_key: String,
    /// The engine's configuration, for the engines that compile.
    config: Config,
}

impl ComponentCache {
    /// Open (creating) the cache in `dir` for `engine`, built from `config`; entries unused
    /// for a month go.
    pub(crate) fn open(dir: &Path, engine: &Engine, config: &Config) -> Result<Self, LoadError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| LoadError::Engine(format!("cache directory {}: {e}", dir.display())))?;
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let cache = ComponentCache {
            dir: dir.to_path_buf(),
            engine_key: format!("{:016x}", hasher.finish()),
            config: config.clone(),
        };
        cache.remove_unused();
        Ok(cache)
    }

    /// The component of `bytes` (whose digest is `digest`) for `engine`: mapped from the cache,
    /// compiled into it when absent or unreadable.
    pub(crate) fn load(
        &self,
        name: &str,
        engine: &Engine,
        bytes: &[u8],
        digest: &str,
    ) -> Result<Component, LoadError> {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        let path = self
            .dir
            .join(format!("{hex}-{}.{EXTENSION}", self.engine_key));
        if path.exists() {
            match map(engine, &path) {
                Ok(component) => {
                    touch(&path);
                    return Ok(component);
                }
                Err(e) => {
                    tracing::warn!(plugin = name, path = %path.display(), error = %format!("{e:#}"),
                    "cached component unreadable: compiling again")
                }
            }
        }
        // On a thread of its own too: the pages its allocator keeps go when it ends.
        let compiled = std::thread::scope(|scope| {
            let compiling = std::thread::Builder::new()
                .name("plugin-compile".into())
                .spawn_scoped(scope, || {
                    let compiler = Engine::new(&self.config)
                        .map_err(|e| LoadError::Engine(format!("{e:#}")))?;
                    compiler
                        .precompile_component(bytes)
                        .map_err(|e| LoadError::compile(name, format!("{e:#}")))
                })
                .map_err(|e| LoadError::Engine(format!("start a compile thread: {e}")))?;
            compiling
                .join()
                .map_err(|_| LoadError::compile(name, "the compiler panicked"))?
        })?;
        let loaded = self
            .write(&path, &compiled)
            .and_then(|()| map(engine, &path).map_err(|e| format!("{e:#}")));
        match loaded {
            Ok(component) => Ok(component),
            Err(e) => {
                tracing::warn!(plugin = name, path = %path.display(), error = %e,
                    "cannot cache the compiled component: loading it from memory");
                from_memory(engine, &compiled)
                    .map_err(|e| LoadError::compile(name, format!("{e:#}")))
            }
        }
    }

    /// Write an entry whole: to a temporary file first, renamed into place, so that no reader
    /// maps a partial file and a mapped file is never changed.
    fn write(&self, path: &Path, compiled: &[u8]) -> Result<(), String> {
        // Unique per process and write: two loads of one component may compile it at once.
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let temporary = self.dir.join(format!(
            ".{}.{}.{}.tmp",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("entry"),
            std::process::id(),
            WRITES.fetch_add(1, Ordering::Relaxed)
        ));
        let written = std::fs::File::create(&temporary)
            .and_then(|mut file| file.write_all(compiled).and_then(|()| file.sync_all()))
            .and_then(|()| std::fs::rename(&temporary, path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temporary);
            return Err(format!("write {}: {e}", path.display()));
        }
        Ok(())
    }

    /// Remove the entries not used for [`UNUSED_ENTRY_LIFETIME`] (those of earlier versions
    /// and configurations, of plugins no longer configured).
    fn remove_unused(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != EXTENSION) {
                continue;
            }
            let unused_for = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| now.duration_since(modified).ok());
            if unused_for.is_some_and(|age| age > UNUSED_ENTRY_LIFETIME) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// Record that an entry was used (its modification time), so it is kept.
fn touch(path: &Path) {
    if let Ok(file) = std::fs::File::options().append(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

#[allow(unsafe_code)]
fn map(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: the file is one this cache wrote from the output of `precompile_component`
    // for an engine of the same compatibility hash, in the host's own data directory; entries
    // are replaced by rename, never changed in place, so a mapped file stays as it was.
    // wasmtime checks the header (its version and the engine's settings) before use.
    unsafe { Component::deserialize_file(engine, path) }
}

#[allow(unsafe_code)]
fn from_memory(engine: &Engine, compiled: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `compiled` was just produced by `precompile_component` in this process, for an
    // engine of the same configuration.
    unsafe { Component::deserialize(engine, compiled) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPONENT: &[u8] = b"(component (core module))";

    fn engine() -> (Engine, Config) {
        let mut config = Config::new();
        config.wasm_component_model(true);
        (Engine::new(&config).unwrap(), config)
    }

    fn entries(dir: &Path) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        found.sort();
        found
    }

    #[test]
    fn compiles_once_then_maps_and_recovers_from_a_damaged_entry() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, config) = engine();
        let cache = ComponentCache::open(dir.path(), &engine, &config).unwrap();
        cache.load("p", &engine, COMPONENT, "sha256:ab").unwrap();
        let written = entries(dir.path());
        assert_eq!(written.len(), 1, "{written:?}");
        let name = written[0].file_name().unwrap().to_str().unwrap().to_owned();
        assert!(
            name.starts_with("ab-") && name.ends_with(".cwasm"),
            "{name}"
        );
        let first = std::fs::read(&written[0]).unwrap();

        // The second load maps the entry: nothing is written.
        cache.load("p", &engine, COMPONENT, "sha256:ab").unwrap();
        assert_eq!(entries(dir.path()), written);

        // A damaged entry is compiled again and replaced.
        std::fs::write(&written[0], b"not a component").unwrap();
        cache.load("p", &engine, COMPONENT, "sha256:ab").unwrap();
        assert_eq!(entries(dir.path()), written);
        assert_eq!(std::fs::read(&written[0]).unwrap(), first);
    }

    #[test]
    fn an_engine_of_other_settings_has_entries_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, config) = engine();
        let cache = ComponentCache::open(dir.path(), &engine, &config).unwrap();
        cache.load("p", &engine, COMPONENT, "sha256:ab").unwrap();
        let mut other_config = config.clone();
        other_config.epoch_interruption(true);
        let other = Engine::new(&other_config).unwrap();
        let other_cache = ComponentCache::open(dir.path(), &other, &other_config).unwrap();
        other_cache
            .load("p", &other, COMPONENT, "sha256:ab")
            .unwrap();
        assert_eq!(entries(dir.path()).len(), 2);
    }

    #[test]
    fn entries_unused_for_a_month_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("cd-0000000000000000.cwasm");
        let recent = dir.path().join("ef-0000000000000000.cwasm");
        for path in [&old, &recent] {
            std::fs::write(path, b"x").unwrap();
        }
        let long_ago = SystemTime::now() - UNUSED_ENTRY_LIFETIME - Duration::from_secs(60);
        std::fs::File::options()
            .append(true)
            .open(&old)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        let (engine, config) = engine();
        ComponentCache::open(dir.path(), &engine, &config).unwrap();
        assert_eq!(entries(dir.path()), [recent]);
    }

    #[test]
    fn an_invalid_component_is_a_compile_error() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, config) = engine();
        let cache = ComponentCache::open(dir.path(), &engine, &config).unwrap();
        match cache.load("broken", &engine, b"(component (junk))", "sha256:cd") {
            Err(LoadError::Compile { plugin, .. }) => assert_eq!(plugin, "broken"),
            Err(other) => panic!("expected a compile error, got {other}"),
            Ok(_) => panic!("expected a compile error"),
        }
        assert!(entries(dir.path()).is_empty());
    }
}
