//! Plugins in `hortator up`: load the configured ones at start (a failure
//! refuses to start), then reload whenever `hortator.toml` or a module file
//! changes; a reload that fails keeps the old plugins.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use hortator_apiserver::{StoreReader, record_plugin_events};
use hortator_plugin_runtime::{
    ModuleSource, PluginManager, Runtime, RuntimeConfig, ValidatedPlugins,
};
use hortator_store::Store;
use notify::Watcher;

use crate::config::{Config, reload_plugins};

/// How long file events are gathered before one reload.
const SETTLE: Duration = Duration::from_millis(200);

/// Build the runtime and load every configured plugin; loads and swaps are
/// recorded as Events from the start.
pub fn start(config: &Config, store: Arc<dyn Store>) -> anyhow::Result<Arc<PluginManager>> {
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(config.plugin_cache_dir.clone()),
    })
    .context("cannot start the plugin runtime")?;
    let manager = Arc::new(PluginManager::new(
        runtime,
        Some(Arc::new(StoreReader::new(store.clone()))),
    ));
    record_plugin_events(&manager, store);
    let failures = manager.apply(&config.plugins, &config.plugin_base_dir);
    if let Some(first) = failures.first() {
        anyhow::bail!("{first}");
    }
    Ok(manager)
}

/// The plugins a node agent needs on its own (`hortator agent`): the network driver.
pub fn start_agent(config: &Config) -> anyhow::Result<Arc<PluginManager>> {
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(config.plugin_cache_dir.clone()),
    })
    .context("cannot start the plugin runtime")?;
    let manager = Arc::new(PluginManager::new(runtime, None));
    let network_only = ValidatedPlugins {
        cache_dir: config.plugins.cache_dir.clone(),
        admission: Vec::new(),
        schedulers: Vec::new(),
        network_driver: config.plugins.network_driver.clone(),
        build_strategies: Vec::new(),
    };
    let failures = manager.apply(&network_only, &config.plugin_base_dir);
    if let Some(first) = failures.first() {
        anyhow::bail!("{first}");
    }
    Ok(manager)
}

/// Files whose change triggers a reload: the configuration and every module file.
fn watched_files(
    config_file: &Path,
    plugins: &ValidatedPlugins,
    base_dir: &Path,
) -> BTreeSet<PathBuf> {
    let mut files = BTreeSet::from([absolute(config_file)]);
    for (_, settings) in plugins.entries() {
        if let ModuleSource::File(path) = &settings.module {
            files.insert(absolute(&base_dir.join(path)));
        }
    }
    files
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Reload plugins whenever `config_file` or a module it names changes, for
/// the life of the process.
pub fn watch(
    manager: Arc<PluginManager>,
    config_file: PathBuf,
    plugins: &ValidatedPlugins,
    base_dir: PathBuf,
) -> anyhow::Result<()> {
    let files = Arc::new(Mutex::new(watched_files(&config_file, plugins, &base_dir)));
    let (changed, mut changes) = tokio::sync::mpsc::unbounded_channel::<()>();
    let relevant = files.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() {
            return;
        }
        let files = relevant.lock().expect("watched files lock");
        if event.paths.iter().any(|p| files.contains(p)) {
            let _ = changed.send(());
        }
    })
    .context("cannot watch the configuration")?;
    let mut dirs = BTreeSet::new();
    watch_dirs(
        &mut watcher,
        &mut dirs,
        &files.lock().expect("watched files lock"),
    );
    tokio::spawn(async move {
        while changes.recv().await.is_some() {
            tokio::time::sleep(SETTLE).await;
            while changes.try_recv().is_ok() {}
            let plugins = match reload_plugins(&config_file) {
                Ok(plugins) => plugins,
                Err(e) => {
                    tracing::error!(error = %e, "configuration not reloaded; the active plugins stay");
                    continue;
                }
            };
            let now_watched = watched_files(&config_file, &plugins, &base_dir);
            *files.lock().expect("watched files lock") = now_watched.clone();
            watch_dirs(&mut watcher, &mut dirs, &now_watched);
            let manager = manager.clone();
            let base_dir = base_dir.clone();
            let applied =
                tokio::task::spawn_blocking(move || manager.apply(&plugins, &base_dir)).await;
            match applied {
                Ok(failures) if failures.is_empty() => tracing::info!("plugins reloaded"),
                Ok(failures) => tracing::warn!(
                    failures = failures.len(),
                    "plugins reloaded with failures; see plugin list"
                ),
                Err(e) => tracing::error!(error = %e, "plugin reload panicked"),
            }
        }
    });
    Ok(())
}

/// Watch the directories of `files` (editors replace files, so the file
/// itself is not enough).
fn watch_dirs(
    watcher: &mut notify::RecommendedWatcher,
    dirs: &mut BTreeSet<PathBuf>,
    files: &BTreeSet<PathBuf>,
) {
    for dir in files.iter().filter_map(|f| f.parent()) {
        if dirs.contains(dir) {
            continue;
        }
        match watcher.watch(dir, notify::RecursiveMode::NonRecursive) {
            Ok(()) => {
                dirs.insert(dir.to_path_buf());
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch for plugin changes")
            }
        }
    }
}
