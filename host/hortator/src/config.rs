//! `hortator.toml`: parsed and validated in one place.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use hortator_controllers::ControllersConfig;
use hortator_kubelet::KubeletConfig;
use hortator_plugin_runtime::{PluginsConfig, ValidatedPlugins};
use hortator_proxy::ProxyConfig;
use ipnet::Ipv4Net;
use serde::Deserialize;

/// A configuration problem, naming the file, the key and the reason.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct ConfigError {
    /// The file (or `command line`).
    pub file: String,
    /// What is wrong, naming the key.
    pub message: String,
}

/// The whole configuration, defaults filled in.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the store, kubeconfig and other state live.
    pub data_dir: PathBuf,
    /// Address the API server listens on.
    pub listen: SocketAddr,
    /// Service ClusterIP range.
    pub service_cidr: Ipv4Net,
    /// NodePort range.
    pub node_port_range: RangeInclusive<u16>,
    /// fsync every acknowledged write.
    pub store_sync: bool,
    /// How often store history is compacted (one interval of history is kept).
    pub compaction_interval: std::time::Duration,
    /// The plugins of every extension point.
    pub plugins: ValidatedPlugins,
    /// Where compiled plugin components are cached.
    pub plugin_cache_dir: PathBuf,
    /// Plugin module paths are relative to this directory (the file's own).
    pub plugin_base_dir: PathBuf,
    /// The configuration file, watched for plugin changes.
    pub config_file: Option<PathBuf>,
    /// The node agent (`[agent]`).
    pub agent: AgentConfig,
    /// The controllers (`[controllers]`); `None` when disabled.
    pub controllers: Option<ControllersConfig>,
    /// Whether `hortator up` runs the scheduler (`[scheduler] enabled`).
    pub scheduler: bool,
    /// The service proxy of the node agent (`[proxy]`); `None` when disabled.
    pub proxy: Option<ProxyConfig>,
}

/// The node agent's settings (`[agent]`), defaults filled in.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Whether `hortator up` runs an agent (`--no-agent` turns it off).
    pub enabled: bool,
    /// The agent's settings.
    pub kubelet: KubeletConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    server: ServerSection,
    #[serde(default)]
    store: StoreSection,
    #[serde(default)]
    plugins: PluginsConfig,
    #[serde(default)]
    agent: AgentSection,
    #[serde(default)]
    controllers: ControllersSection,
    #[serde(default)]
    scheduler: SchedulerSection,
    #[serde(default)]
    proxy: ProxySection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct SchedulerSection {
    enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ProxySection {
    enabled: Option<bool>,
    mode: Option<String>,
    node_port_addresses: Option<Vec<String>>,
    sync_period_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ControllersSection {
    enabled: Option<bool>,
    node_monitor_grace_period_seconds: Option<u64>,
    pod_eviction_timeout_seconds: Option<u64>,
    terminated_pod_gc_threshold: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct AgentSection {
    enabled: Option<bool>,
    node_name: Option<String>,
    node_ip: Option<String>,
    docker_socket: Option<PathBuf>,
    cluster_cidr: Option<String>,
    port: Option<u16>,
    max_pods: Option<u32>,
    heartbeat_seconds: Option<u64>,
    stats_interval_seconds: Option<u64>,
    fs_stats_interval_seconds: Option<u64>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ServerSection {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    service_cidr: Option<String>,
    node_port_range: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct StoreSection {
    backend: Option<String>,
    sync: Option<bool>,
    compaction_interval_seconds: Option<u64>,
}

/// Overrides from the command line; they win over the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<String>,
    /// `--no-agent`.
    pub no_agent: bool,
    /// `--node-name`.
    pub node_name: Option<String>,
    /// `--node-ip`.
    pub node_ip: Option<String>,
    /// `--port` (agent endpoint).
    pub agent_port: Option<u16>,
}

impl Config {
    /// Load `path` (if given) and apply the command-line overrides.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let (file_name, file) = read_file(path)?;
        let err = |file: &str, key: &str, reason: String| ConfigError {
            file: file.to_string(),
            message: format!("{key}: {reason}"),
        };
        let (listen_src, listen) = match &overrides.listen {
            Some(l) => ("command line", l.clone()),
            None => (
                file_name.as_str(),
                file.server
                    .listen
                    .clone()
                    .unwrap_or_else(|| "127.0.0.1:6443".into()),
            ),
        };
        let listen: SocketAddr = listen.parse().map_err(|e| {
            err(
                listen_src,
                if listen_src == "command line" {
                    "--listen"
                } else {
                    "server.listen"
                },
                format!("{listen:?} is not an address:port ({e})"),
            )
        })?;
        let data_dir = overrides
            .data_dir
            .clone()
            .or(file.server.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from("hortator-data"));
        let cidr_text = file
            .server
            .service_cidr
            .clone()
            .unwrap_or_else(|| "10.254.0.0/16".into());
        let service_cidr: Ipv4Net = cidr_text.parse().map_err(|e| {
            err(
                &file_name,
                "server.service-cidr",
                format!("{cidr_text:?} is not an IPv4 CIDR ({e})"),
            )
        })?;
        if service_cidr.prefix_len() > 30 {
            return Err(err(
                &file_name,
                "server.service-cidr",
                format!("{cidr_text:?} is too small (at most /30)"),
            ));
        }
        let range_text = file
            .server
            .node_port_range
            .clone()
            .unwrap_or_else(|| "30000-32767".into());
        let node_port_range = parse_port_range(&range_text).ok_or_else(|| {
            err(
                &file_name,
                "server.node-port-range",
                format!("{range_text:?} is not a range like 30000-32767"),
            )
        })?;
        match file.store.backend.as_deref() {
            None | Some("rocksdb") => {}
            Some(other) => {
                return Err(err(
                    &file_name,
                    "store.backend",
                    format!("{other:?} is not supported (supported: \"rocksdb\")"),
                ));
            }
        }
        let compaction = file.store.compaction_interval_seconds.unwrap_or(300);
        if compaction == 0 {
            return Err(err(
                &file_name,
                "store.compaction-interval-seconds",
                "must be at least 1".into(),
            ));
        }
        let plugins = file
            .plugins
            .validate()
            .map_err(|e| err(&file_name, &e.key, e.reason))?;
        let plugin_base_dir = path
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let plugin_cache_dir = match &plugins.cache_dir {
            Some(dir) => plugin_base_dir.join(dir),
            None => data_dir.join("plugin-cache"),
        };
        let agent = agent_config(&file.agent, overrides, &data_dir, &file_name)?;
        let controllers = controllers_config(&file.controllers, &file_name)?;
        let proxy = proxy_config(&file.proxy, &agent, service_cidr, &file_name)?;
        Ok(Config {
            proxy,
            agent,
            controllers,
            scheduler: file.scheduler.enabled.unwrap_or(true),
            config_file: path.map(Path::to_path_buf),
            plugins,
            plugin_cache_dir,
            plugin_base_dir,
            compaction_interval: std::time::Duration::from_secs(compaction),
            data_dir,
            listen,
            service_cidr,
            node_port_range,
            store_sync: file.store.sync.unwrap_or(true),
        })
    }
}

/// `[proxy]`: validated here, once. NodePorts are served on the node address and on
/// `node-port-addresses` (default: 127.0.0.1).
fn proxy_config(
    section: &ProxySection,
    agent: &AgentConfig,
    service_cidr: Ipv4Net,
    file_name: &str,
) -> Result<Option<ProxyConfig>, ConfigError> {
    let err = |key: &str, reason: String| ConfigError {
        file: file_name.to_string(),
        message: format!("proxy.{key}: {reason}"),
    };
    let mut config = ProxyConfig::new(agent.kubelet.node_name.clone());
    if let Some(mode) = &section.mode {
        config.mode = mode.parse().map_err(|_| {
            err(
                "mode",
                format!("{mode:?} is not a proxy mode (\"iptables\" or \"userspace\")"),
            )
        })?;
    }
    let extra = match &section.node_port_addresses {
        Some(list) => list.clone(),
        None => vec!["127.0.0.1".to_string()],
    };
    config.node_port_addresses = vec![agent.kubelet.node_ip];
    for address in extra {
        let ip: std::net::Ipv4Addr = address.parse().map_err(|_| {
            err(
                "node-port-addresses",
                format!("{address:?} is not an IPv4 address"),
            )
        })?;
        if !config.node_port_addresses.contains(&ip) {
            config.node_port_addresses.push(ip);
        }
    }
    match section.sync_period_seconds {
        Some(0) => return Err(err("sync-period-seconds", "must be at least 1".into())),
        Some(seconds) => config.sync_period = std::time::Duration::from_secs(seconds),
        None => {}
    }
    config.service_cidr = service_cidr;
    config.cluster_cidr = agent.kubelet.cluster_cidr;
    Ok(section.enabled.unwrap_or(true).then_some(config))
}

/// `[controllers]`: validated here, once; `None` when `enabled = false`.
fn controllers_config(
    section: &ControllersSection,
    file_name: &str,
) -> Result<Option<ControllersConfig>, ConfigError> {
    let mut config = ControllersConfig::default();
    let positive = |key: &str, value: Option<u64>| match value {
        Some(0) => Err(ConfigError {
            file: file_name.to_string(),
            message: format!("controllers.{key}: must be at least 1"),
        }),
        Some(seconds) => Ok(Some(std::time::Duration::from_secs(seconds))),
        None => Ok(None),
    };
    if let Some(grace) = positive(
        "node-monitor-grace-period-seconds",
        section.node_monitor_grace_period_seconds,
    )? {
        config.node_monitor_grace_period = grace;
    }
    if let Some(timeout) = positive(
        "pod-eviction-timeout-seconds",
        section.pod_eviction_timeout_seconds,
    )? {
        config.pod_eviction_timeout = timeout;
    }
    if let Some(threshold) = section.terminated_pod_gc_threshold {
        config.terminated_pod_gc_threshold = threshold;
    }
    Ok(section.enabled.unwrap_or(true).then_some(config))
}

/// `[agent]` and the agent flags: validated here, once.
fn agent_config(
    section: &AgentSection,
    overrides: &Overrides,
    data_dir: &Path,
    file_name: &str,
) -> Result<AgentConfig, ConfigError> {
    let err = |from_cli: bool, key: &str, flag: &str, reason: String| ConfigError {
        file: if from_cli { "command line" } else { file_name }.to_string(),
        message: format!("{}: {reason}", if from_cli { flag } else { key }),
    };
    let node_name = match (&overrides.node_name, &section.node_name) {
        (Some(n), _) => Some((true, n.clone())),
        (None, Some(n)) => Some((false, n.clone())),
        (None, None) => None,
    };
    let node_name = match node_name {
        Some((cli, name)) => {
            let valid = !name.is_empty()
                && name.len() <= 253
                && name.split('.').all(|part| {
                    !part.is_empty()
                        && part.len() <= 63
                        && part
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                        && !part.starts_with('-')
                        && !part.ends_with('-')
                });
            if !valid {
                return Err(err(
                    cli,
                    "agent.node-name",
                    "--node-name",
                    format!("{name:?} is not a valid node name (lower-case DNS subdomain)"),
                ));
            }
            name
        }
        None => hortator_kubelet::default_node_name(),
    };
    let mut kubelet = KubeletConfig::new(&node_name, data_dir.join("agent"));
    let node_ip = match (&overrides.node_ip, &section.node_ip) {
        (Some(ip), _) => Some((true, ip)),
        (None, Some(ip)) => Some((false, ip)),
        (None, None) => None,
    };
    if let Some((cli, ip)) = node_ip {
        kubelet.node_ip = ip.parse().map_err(|_| {
            err(
                cli,
                "agent.node-ip",
                "--node-ip",
                format!("{ip:?} is not an IPv4 address"),
            )
        })?;
    }
    if let Some(socket) = &section.docker_socket {
        kubelet.docker_socket = socket.clone();
    }
    if let Some(cidr) = &section.cluster_cidr {
        kubelet.cluster_cidr = cidr.parse().map_err(|_| {
            err(
                false,
                "agent.cluster-cidr",
                "",
                format!("{cidr:?} is not an IPv4 CIDR"),
            )
        })?;
        if kubelet.cluster_cidr.prefix_len() > 24 {
            return Err(err(
                false,
                "agent.cluster-cidr",
                "",
                format!("{cidr:?} is smaller than a /24"),
            ));
        }
    }
    match (overrides.agent_port, section.port) {
        (Some(0), _) => return Err(err(true, "", "--port", "must be from 1 to 65535".into())),
        (Some(port), _) => kubelet.port = Some(port),
        (None, Some(0)) => {
            return Err(err(
                false,
                "agent.port",
                "",
                "must be from 1 to 65535".into(),
            ));
        }
        (None, Some(port)) => kubelet.port = Some(port),
        (None, None) => {}
    }
    if let Some(pods) = section.max_pods {
        if pods == 0 {
            return Err(err(
                false,
                "agent.max-pods",
                "",
                "must be at least 1".into(),
            ));
        }
        kubelet.max_pods = pods;
    }
    let seconds = |value: Option<u64>, key: &str| match value {
        Some(0) => Err(err(false, key, "", "must be at least 1".into())),
        value => Ok(value.map(std::time::Duration::from_secs)),
    };
    if let Some(every) = seconds(section.heartbeat_seconds, "agent.heartbeat-seconds")? {
        kubelet.heartbeat = every;
    }
    if let Some(every) = seconds(
        section.stats_interval_seconds,
        "agent.stats-interval-seconds",
    )? {
        kubelet.stats_interval = every;
    }
    if let Some(every) = seconds(
        section.fs_stats_interval_seconds,
        "agent.fs-stats-interval-seconds",
    )? {
        kubelet.fs_stats_interval = every;
    }
    kubelet.labels = section.labels.clone();
    Ok(AgentConfig {
        enabled: section.enabled.unwrap_or(true) && !overrides.no_agent,
        kubelet,
    })
}

fn read_file(path: Option<&Path>) -> Result<(String, File), ConfigError> {
    let Some(p) = path else {
        return Ok(("defaults".to_string(), File::default()));
    };
    let name = p.display().to_string();
    let text = std::fs::read_to_string(p).map_err(|e| ConfigError {
        file: name.clone(),
        message: format!("cannot read: {e}"),
    })?;
    let parsed: File = toml::from_str(&text).map_err(|e| ConfigError {
        file: name.clone(),
        message: one_line(&e),
    })?;
    Ok((name, parsed))
}

/// Re-read only the `[plugins]` table of `path`, for a reload while running.
pub fn reload_plugins(path: &Path) -> Result<ValidatedPlugins, ConfigError> {
    let (file_name, file) = read_file(Some(path))?;
    file.plugins.validate().map_err(|e| ConfigError {
        file: file_name,
        message: format!("{}: {}", e.key, e.reason),
    })
}

fn parse_port_range(text: &str) -> Option<RangeInclusive<u16>> {
    let (a, b) = text.split_once('-')?;
    let (a, b): (u16, u16) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a > 0 && a <= b).then_some(a..=b)
}

fn one_line(e: &toml::de::Error) -> String {
    let mut message = e.message().to_string();
    if let Some(span) = e.span() {
        message = format!("at byte {}: {message}", span.start);
    }
    message.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn load_text(text: &str) -> Result<Config, ConfigError> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        Config::load(Some(f.path()), &Overrides::default())
    }

    #[test]
    fn defaults() {
        let c = Config::load(None, &Overrides::default()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:6443");
        assert_eq!(c.service_cidr.to_string(), "10.254.0.0/16");
        assert_eq!(c.node_port_range, 30000..=32767);
        assert!(c.agent.enabled);
        assert_eq!(c.agent.kubelet.cluster_cidr.to_string(), "10.20.0.0/16");
        assert_eq!(
            c.agent.kubelet.root_dir,
            PathBuf::from("hortator-data/agent")
        );
    }

    #[test]
    fn the_example_configuration_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hortator.toml");
        let c = Config::load(Some(&path), &Overrides::default()).unwrap();
        assert!(c.agent.enabled);
        assert_eq!(c.agent.kubelet.port, Some(10250));
    }

    #[test]
    fn agent_settings_and_flags() {
        let c = load_text("[agent]\nnode-name = \"n1\"\nnode-ip = \"127.0.0.2\"\nport = 10251\nlabels = { zone = \"a\" }\n").unwrap();
        assert_eq!(c.agent.kubelet.node_name, "n1");
        assert_eq!(c.agent.kubelet.node_ip.to_string(), "127.0.0.2");
        assert_eq!(c.agent.kubelet.port, Some(10251));
        assert_eq!(c.agent.kubelet.labels["zone"], "a");
        let overrides = Overrides {
            no_agent: true,
            node_name: Some("n2".into()),
            ..Overrides::default()
        };
        let c = Config::load(None, &overrides).unwrap();
        assert!(!c.agent.enabled);
        assert_eq!(c.agent.kubelet.node_name, "n2");
        let bad = Overrides {
            node_ip: Some("nope".into()),
            ..Overrides::default()
        };
        let e = Config::load(None, &bad).unwrap_err().to_string();
        assert!(e.starts_with("command line: --node-ip"), "{e}");
    }

    #[test]
    fn controllers_can_be_left_out() {
        assert!(load_text("").unwrap().controllers.is_some());
        let c = load_text("[controllers]\nenabled = false\n").unwrap();
        assert!(c.controllers.is_none());
        assert!(load_text("").unwrap().scheduler);
        assert!(
            !load_text("[scheduler]\nenabled = false\n")
                .unwrap()
                .scheduler
        );
        let e = load_text("[controllers]\npod-eviction-timeout-seconds = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("controllers.pod-eviction-timeout-seconds: must be at least 1"),
            "{e}"
        );
    }

    #[test]
    fn file_values_and_overrides() {
        let c =
            load_text("[server]\nlisten = \"127.0.0.1:7000\"\nservice-cidr = \"10.96.0.0/12\"\n")
                .unwrap();
        assert_eq!(c.listen.port(), 7000);
        assert_eq!(c.service_cidr.prefix_len(), 12);
        let c = load_text("[agent]\nstats-interval-seconds = 2\nfs-stats-interval-seconds = 5\n")
            .unwrap();
        assert_eq!(c.agent.kubelet.stats_interval.as_secs(), 2);
        assert_eq!(c.agent.kubelet.fs_stats_interval.as_secs(), 5);
    }

    #[test]
    fn errors_name_the_key() {
        let e = load_text("[server]\nlisten = \"nowhere\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.listen"), "{e}");
        let e = load_text("[server]\nbogus = 1\n").unwrap_err().to_string();
        assert!(e.contains("bogus"), "{e}");
        let e = load_text("[server]\nnode-port-range = \"9-1\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.node-port-range"), "{e}");
        let e = load_text("[agent]\nnode-ip = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("agent.node-ip"), "{e}");
        let e = load_text("[agent]\nnode-name = \"Big_Name\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("agent.node-name"), "{e}");
        let e = load_text("[agent]\ncluster-cidr = \"10.0.0.0/28\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("agent.cluster-cidr"), "{e}");
        let e = load_text("[agent]\nfs-stats-interval-seconds = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("agent.fs-stats-interval-seconds: must be at least 1"),
            "{e}"
        );
        let e = load_text("[store]\nbackend = \"sqlite\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("store.backend"), "{e}");
        let e = load_text("[[plugins.admission]]\nmodule = \"builtin:nope\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("plugins.admission[0].module") && e.contains("nope"),
            "{e}"
        );
        let e =
            load_text("[[plugins.admission]]\nmodule = \"x.wasm\"\nfailure-policy = \"maybe\"\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("maybe"), "{e}");
        let e = load_text("[[plugins.scheduler]]\nmodule = \"x.wasm\"\ntimeout-ms = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("plugins.scheduler[0].timeout-ms: must be at least 1"),
            "{e}"
        );
    }
}
