//! `hortator.toml`: parsed and validated in one place.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use hortator_plugin_runtime::{PluginsConfig, ValidatedPlugins};
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
        Ok(Config {
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
    }

    #[test]
    fn file_values_and_overrides() {
        let c =
            load_text("[server]\nlisten = \"127.0.0.1:7000\"\nservice-cidr = \"10.96.0.0/12\"\n")
                .unwrap();
        assert_eq!(c.listen.port(), 7000);
        assert_eq!(c.service_cidr.prefix_len(), 12);
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
