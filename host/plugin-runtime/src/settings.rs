//! Plugin configuration as the operator writes it in `hortator.toml`
//! (`[plugins]`), and its validated form.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// The `[plugins]` table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PluginsConfig {
    /// Directory for compiled components (default: `<data-dir>/plugin-cache`).
    pub cache_dir: Option<PathBuf>,
    /// The admission chain, in order; mutating plugins run before validating
    /// ones. When absent, the built-in chain is used (see [`default_admission_chain`]).
    pub admission: Option<Vec<PluginEntry>>,
    /// Scheduler profiles: each entry's `name` is the `spec.schedulerName` it
    /// serves. When absent, one profile `default-scheduler` runs the built-in
    /// (see [`default_scheduler_profiles`]); an empty list runs no scheduler.
    pub scheduler: Option<Vec<PluginEntry>>,
    /// The network driver plugin. When absent, the built-in `bridge` (see
    /// [`default_network_driver`]).
    pub network_driver: Option<PluginEntry>,
    /// Build strategies, by name (e.g. `docker`, `source`).
    pub build_strategy: Option<Vec<PluginEntry>>,
}

/// When an admission plugin runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// May change the object (its JSON patch is applied); runs first.
    Mutating,
    /// May only allow or deny; runs after every mutating plugin.
    Validating,
}

/// What happens to a request when its plugin fails (trap, timeout, OOM, bad output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailurePolicy {
    /// The request is rejected.
    #[default]
    FailClosed,
    /// The plugin is skipped and the request proceeds, with a warning.
    FailOpen,
}

/// One plugin as configured.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PluginEntry {
    /// Name in logs, `hortctl plugin list` and denial messages (default: the
    /// built-in's name or the file's stem).
    pub name: Option<String>,
    /// `builtin:<name>` or a path to a `.wasm` component.
    pub module: String,
    /// Admission only: `mutating` or `validating` (default).
    pub phase: Option<Phase>,
    /// Deadline per call, in milliseconds (default 250).
    pub timeout_ms: Option<u64>,
    /// Memory cap per instance, in MiB (default 64).
    pub memory_mb: Option<u64>,
    /// `fail-closed` (default) or `fail-open`.
    pub failure_policy: Option<FailurePolicy>,
    /// Grant read-only cluster lookups (get/list).
    pub cluster_read: Option<bool>,
    /// The plugin's own configuration, handed to its `init` as JSON.
    pub config: Option<toml::Table>,
}

/// Where a module comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleSource {
    /// Embedded in the binary.
    Builtin(String),
    /// A component file.
    File(PathBuf),
}

impl std::fmt::Display for ModuleSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModuleSource::Builtin(name) => write!(f, "builtin:{name}"),
            ModuleSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A validated plugin entry.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginSettings {
    /// Display name.
    pub name: String,
    /// Where the module comes from.
    pub module: ModuleSource,
    /// The `config` table as JSON text (`{}` when absent).
    pub config: String,
    /// Deadline per call.
    pub timeout: Duration,
    /// Memory cap per instance, bytes.
    pub memory_limit: usize,
    /// What a failure means for the caller.
    pub failure_policy: FailurePolicy,
    /// Whether cluster lookups are granted.
    pub cluster_read: bool,
}

/// A configuration value that cannot be used: the TOML key and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct SettingsError {
    /// Dotted key, e.g. `plugins.admission[1].timeout-ms`.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

/// Default deadline per call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);
/// Default memory cap per instance.
pub const DEFAULT_MEMORY_MB: u64 = 64;

impl PluginEntry {
    /// Check the entry; `key` names it in errors (e.g. `plugins.scheduler`).
    pub fn validate(&self, key: &str) -> Result<PluginSettings, SettingsError> {
        let err = |field: &str, reason: String| SettingsError {
            key: format!("{key}.{field}"),
            reason,
        };
        let module = if let Some(name) = self.module.strip_prefix("builtin:") {
            if !crate::builtin::NAMES.contains(&name) {
                return Err(err(
                    "module",
                    format!(
                        "no built-in plugin named {name:?} (built-ins: {})",
                        crate::builtin::NAMES.join(", ")
                    ),
                ));
            }
            ModuleSource::Builtin(name.to_string())
        } else if self.module.is_empty() {
            return Err(err(
                "module",
                "must be \"builtin:<name>\" or a path to a .wasm component".into(),
            ));
        } else {
            ModuleSource::File(PathBuf::from(&self.module))
        };
        let name = match &self.name {
            Some(name) => name.clone(),
            None => match &module {
                ModuleSource::Builtin(name) => name.clone(),
                ModuleSource::File(path) => path
                    .file_stem()
                    .map(|s| s.to_string_lossy().replace('_', "-"))
                    .unwrap_or_default(),
            },
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(err(
                "name",
                format!("{name:?} must be non-empty and use only letters, digits, '-' and '.'"),
            ));
        }
        let timeout = match self.timeout_ms {
            None => DEFAULT_TIMEOUT,
            Some(0) => return Err(err("timeout-ms", "must be at least 1".into())),
            Some(ms) if ms > 60_000 => {
                return Err(err(
                    "timeout-ms",
                    format!("{ms} is more than 60000 (one minute)"),
                ));
            }
            Some(ms) => Duration::from_millis(ms),
        };
        let memory_mb = self.memory_mb.unwrap_or(DEFAULT_MEMORY_MB);
        if !(1..=4096).contains(&memory_mb) {
            return Err(err("memory-mb", format!("{memory_mb} is outside 1..=4096")));
        }
        let config = serde_json::to_string(&self.config.clone().unwrap_or_default())
            .map_err(|e| err("config", format!("cannot be expressed as JSON: {e}")))?;
        Ok(PluginSettings {
            name,
            module,
            config,
            timeout,
            memory_limit: (memory_mb as usize) << 20,
            failure_policy: self.failure_policy.unwrap_or_default(),
            cluster_read: self.cluster_read.unwrap_or(false),
        })
    }
}

/// The `[plugins]` table after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedPlugins {
    /// Where compiled components are cached, if configured.
    pub cache_dir: Option<PathBuf>,
    /// The admission chain in configuration order.
    pub admission: Vec<(Phase, PluginSettings)>,
    /// Scheduler profiles; each one's name is the `schedulerName` it serves.
    pub schedulers: Vec<PluginSettings>,
    /// The network driver (`None` runs none; [`PluginsConfig::validate`]
    /// always sets one).
    pub network_driver: Option<PluginSettings>,
    /// Build strategies.
    pub build_strategies: Vec<PluginSettings>,
}

impl ValidatedPlugins {
    /// The names of every configured point (`admission/<name>`, `scheduler`, ...).
    pub fn points(&self) -> Vec<String> {
        self.entries().map(|(point, _)| point).collect()
    }

    /// Every configured plugin with its point name, in configuration order.
    pub fn entries(&self) -> impl Iterator<Item = (String, &PluginSettings)> {
        let admission = self
            .admission
            .iter()
            .map(|(_, s)| (format!("admission/{}", s.name), s));
        let scheduler = self
            .schedulers
            .iter()
            .map(|s| (format!("scheduler/{}", s.name), s));
        let network = self
            .network_driver
            .iter()
            .map(|s| ("network-driver".to_string(), s));
        let builds = self
            .build_strategies
            .iter()
            .map(|s| (format!("build-strategy/{}", s.name), s));
        admission.chain(scheduler).chain(network).chain(builds)
    }
}

impl PluginsConfig {
    /// Check every entry; errors name the TOML key.
    pub fn validate(&self) -> Result<ValidatedPlugins, SettingsError> {
        let admission_entries = self
            .admission
            .clone()
            .unwrap_or_else(default_admission_chain);
        let mut admission = Vec::new();
        for (i, entry) in admission_entries.iter().enumerate() {
            let key = format!("plugins.admission[{i}]");
            let settings = entry.validate(&key)?;
            if admission
                .iter()
                .any(|(_, s): &(Phase, PluginSettings)| s.name == settings.name)
            {
                return Err(SettingsError {
                    key: format!("{key}.name"),
                    reason: format!("{:?} is used twice", settings.name),
                });
            }
            admission.push((entry.phase.unwrap_or(Phase::Validating), settings));
        }
        let schedulers = named_list(
            &self
                .scheduler
                .clone()
                .unwrap_or_else(default_scheduler_profiles),
            "plugins.scheduler",
        )?;
        let network_driver = without_phase(
            &self
                .network_driver
                .clone()
                .unwrap_or_else(default_network_driver),
            "plugins.network-driver",
        )?;
        let build_strategies = named_list(
            self.build_strategy.as_deref().unwrap_or_default(),
            "plugins.build-strategy",
        )?;
        Ok(ValidatedPlugins {
            cache_dir: self.cache_dir.clone(),
            admission,
            schedulers,
            network_driver: Some(network_driver),
            build_strategies,
        })
    }
}

/// Validates an entry of a point other than admission (which has no phase).
fn without_phase(entry: &PluginEntry, key: &str) -> Result<PluginSettings, SettingsError> {
    if entry.phase.is_some() {
        return Err(SettingsError {
            key: format!("{key}.phase"),
            reason: "only admission plugins have a phase".into(),
        });
    }
    entry.validate(key)
}

/// Validates a list of non-admission entries whose names must be unique.
fn named_list(entries: &[PluginEntry], key: &str) -> Result<Vec<PluginSettings>, SettingsError> {
    let mut list: Vec<PluginSettings> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let key = format!("{key}[{i}]");
        let settings = without_phase(entry, &key)?;
        if list.iter().any(|s| s.name == settings.name) {
            return Err(SettingsError {
                key: format!("{key}.name"),
                reason: format!("{:?} is used twice", settings.name),
            });
        }
        list.push(settings);
    }
    Ok(list)
}

/// The scheduler profiles used when `[[plugins.scheduler]]` is absent: the
/// built-in `default-scheduler`, which serves pods whose `schedulerName` is
/// `default-scheduler` (every pod that names none). It holds the whole cluster
/// in its instance, so its memory cap and deadline are larger than the
/// defaults of other plugins.
pub fn default_scheduler_profiles() -> Vec<PluginEntry> {
    vec![PluginEntry {
        name: None,
        module: "builtin:default-scheduler".into(),
        phase: None,
        timeout_ms: Some(2_000),
        memory_mb: Some(1_024),
        failure_policy: None,
        cluster_read: None,
        config: None,
    }]
}

/// The network driver used when `[plugins.network-driver]` is absent: the
/// built-in `bridge` with its defaults.
pub fn default_network_driver() -> PluginEntry {
    PluginEntry {
        name: None,
        module: "builtin:bridge".into(),
        phase: None,
        timeout_ms: None,
        memory_mb: None,
        failure_policy: None,
        cluster_read: None,
        config: None,
    }
}

/// The admission chain used when `[[plugins.admission]]` is absent.
pub fn default_admission_chain() -> Vec<PluginEntry> {
    let builtin = |name: &str, phase| PluginEntry {
        name: None,
        module: format!("builtin:{name}"),
        phase: Some(phase),
        timeout_ms: None,
        memory_mb: None,
        failure_policy: None,
        cluster_read: Some(true),
        config: None,
    };
    vec![
        builtin("limit-ranger", Phase::Mutating),
        builtin("namespace-lifecycle", Phase::Validating),
        builtin("pod-security", Phase::Validating),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(toml_text: &str) -> PluginEntry {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn defaults_and_names() {
        let s = entry("module = \"builtin:pod-security\"")
            .validate("plugins.x")
            .unwrap();
        assert_eq!(s.name, "pod-security");
        assert_eq!(s.timeout, DEFAULT_TIMEOUT);
        assert_eq!(s.memory_limit, 64 << 20);
        assert_eq!(s.failure_policy, FailurePolicy::FailClosed);
        assert_eq!(s.config, "{}");
        let s = entry("module = \"/tmp/require_labels.wasm\"\nconfig = { labels = [\"app\"] }")
            .validate("k")
            .unwrap();
        assert_eq!(s.name, "require-labels");
        assert_eq!(s.config, r#"{"labels":["app"]}"#);
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = entry("module = \"builtin:nope\"")
            .validate("plugins.admission[0]")
            .unwrap_err();
        assert_eq!(e.key, "plugins.admission[0].module");
        assert!(e.reason.contains("nope"), "{e}");
        let e = entry("module = \"x.wasm\"\ntimeout-ms = 0")
            .validate("p")
            .unwrap_err();
        assert_eq!(e.to_string(), "p.timeout-ms: must be at least 1");
        let e = entry("module = \"x.wasm\"\nmemory-mb = 0")
            .validate("p")
            .unwrap_err();
        assert_eq!(e.key, "p.memory-mb");
        assert!(toml::from_str::<PluginEntry>("module = \"x\"\ntimeout = 3").is_err());
        let e = toml::from_str::<PluginEntry>("module = \"x\"\nphase = \"sideways\"").unwrap_err();
        assert!(e.to_string().contains("sideways"), "{e}");
    }

    #[test]
    fn plugins_table() {
        let defaults = PluginsConfig::default().validate().unwrap();
        let names: Vec<_> = defaults
            .admission
            .iter()
            .map(|(p, s)| (*p, s.name.as_str(), s.cluster_read))
            .collect();
        assert_eq!(
            names,
            [
                (Phase::Mutating, "limit-ranger", true),
                (Phase::Validating, "namespace-lifecycle", true),
                (Phase::Validating, "pod-security", true)
            ]
        );
        let config: PluginsConfig = toml::from_str(
            "[[admission]]\nmodule = \"a.wasm\"\n[[admission]]\nmodule = \"b/a.wasm\"\n",
        )
        .unwrap();
        assert_eq!(
            config.validate().unwrap_err().key,
            "plugins.admission[1].name"
        );
        let config: PluginsConfig =
            toml::from_str("[[scheduler]]\nmodule = \"s.wasm\"\nphase = \"mutating\"\n").unwrap();
        assert_eq!(
            config.validate().unwrap_err().key,
            "plugins.scheduler[0].phase"
        );
        let config: PluginsConfig = toml::from_str(
            "[[scheduler]]\nmodule = \"s.wasm\"\n[[scheduler]]\nname = \"s\"\nmodule = \"builtin:default-scheduler\"\n",
        )
        .unwrap();
        assert_eq!(
            config.validate().unwrap_err().key,
            "plugins.scheduler[1].name"
        );
        let config: PluginsConfig = toml::from_str(
            "[[scheduler]]\nmodule = \"builtin:default-scheduler\"\n[[scheduler]]\nname = \"packer\"\nmodule = \"binpack.wasm\"\n",
        )
        .unwrap();
        assert_eq!(
            config.validate().unwrap().points(),
            [
                "admission/limit-ranger",
                "admission/namespace-lifecycle",
                "admission/pod-security",
                "scheduler/default-scheduler",
                "scheduler/packer",
                "network-driver"
            ]
        );
        let config: PluginsConfig = toml::from_str("scheduler = []\n").unwrap();
        assert!(config.validate().unwrap().schedulers.is_empty());
        let defaults = PluginsConfig::default().validate().unwrap();
        assert_eq!(defaults.schedulers.len(), 1);
        assert_eq!(defaults.schedulers[0].name, "default-scheduler");
        assert_eq!(defaults.schedulers[0].memory_limit, 1 << 30);
        let driver = defaults.network_driver.unwrap();
        assert_eq!(driver.module, ModuleSource::Builtin("bridge".into()));
        assert_eq!(driver.config, "{}");
        let config: PluginsConfig = toml::from_str(
            "[network-driver]\nmodule = \"builtin:bridge\"\nconfig = { bridge = \"hbr1\" }\n",
        )
        .unwrap();
        assert_eq!(
            config.validate().unwrap().network_driver.unwrap().config,
            r#"{"bridge":"hbr1"}"#
        );
        let config: PluginsConfig =
            toml::from_str("[network-driver]\nmodule = \"builtin:bridge\"\nphase = \"mutating\"\n")
                .unwrap();
        assert_eq!(
            config.validate().unwrap_err().key,
            "plugins.network-driver.phase"
        );
    }
}
