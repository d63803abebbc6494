//! Hortator service proxy (kube-proxy): makes every service's ClusterIP and
//! NodePorts reach the service's ready endpoints from this node.
//!
//! [`Proxy::start`] watches Services and Endpoints through the API and runs a
//! level-triggered sync loop: on any change (debounced) and every
//! [`ProxyConfig::sync_period`] it renders the complete desired state and
//! applies it idempotently. Two modes:
//!
//! * [`ProxyMode::Userspace`] (kube-proxy ≤ 1.1): the proxy listens on a
//!   random port per service port, iptables redirects the ClusterIP there,
//!   NodePorts are real listeners; connections are relayed round-robin (or
//!   with ClientIP affinity) to the endpoints.
//! * [`ProxyMode::Iptables`]: DNAT rules straight to the endpoints.
//!
//! Masquerading (kernel mode) is the simplest correct set: connections to a
//! ClusterIP from outside the cluster CIDR (the node itself, loopback
//! sources, other hosts), every NodePort connection, and hairpin connections
//! (an endpoint reaching itself through its service) are masqueraded;
//! pod-to-service connections keep the pod's address. Forwarding of pod
//! traffic is the agent's (its `HORTATOR-FWD-` chain); kernel mode enables
//! `ip_forward`, `route_localnet` (NodePorts on 127.0.0.1) and, when the
//! bridge netfilter module is loaded, `bridge-nf-call-iptables` (replies
//! between pods of one bridge must pass conntrack).
//!
//! Every chain is named after the node (see the `rules` module), so proxies
//! of several nodes can share a network namespace; [`remove_rules`] removes
//! one node's rules and leaves the others'.

mod conntrack;
mod kernel;
mod metrics;
mod model;
mod rules;
mod userspace;

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use kube::Api;
use kube::runtime::reflector::{self, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::kernel::Kernel;
use crate::metrics::ProxyMetrics;
use crate::model::ServicePort;
use crate::rules::Rules;
use crate::userspace::{AbortOnDrop, Userspace};

/// How long changes are collected before a sync.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// How soon a failed sync is retried.
const RETRY: Duration = Duration::from_secs(1);

/// How service traffic is proxied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyMode {
    /// Listeners in the proxy relay the connections (`"userspace"`).
    Userspace,
    /// iptables DNAT rules in the kernel (`"iptables"`).
    #[default]
    Iptables,
}

impl FromStr for ProxyMode {
    type Err = ProxyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "userspace" => Ok(ProxyMode::Userspace),
            "iptables" => Ok(ProxyMode::Iptables),
            _ => Err(ProxyError::UnknownMode(text.to_string())),
        }
    }
}

impl fmt::Display for ProxyMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProxyMode::Userspace => "userspace",
            ProxyMode::Iptables => "iptables",
        })
    }
}

/// Settings of one node's proxy.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The node's name; names its iptables chains.
    pub node_name: String,
    /// Userspace or iptables.
    pub mode: ProxyMode,
    /// The addresses NodePorts are served on; empty means every local
    /// address (0.0.0.0 in userspace mode).
    pub node_port_addresses: Vec<Ipv4Addr>,
    /// The range of ClusterIPs; services with a ClusterIP outside it get no
    /// ClusterIP rules.
    pub service_cidr: Ipv4Net,
    /// Every pod's address is in it; ClusterIP traffic from outside it is
    /// masqueraded (kernel mode).
    pub cluster_cidr: Ipv4Net,
    /// How often the complete state is applied again without any change.
    pub sync_period: Duration,
}

impl ProxyConfig {
    /// The defaults for node `node_name`: iptables mode, NodePorts on every
    /// address, service CIDR 10.254.0.0/16, cluster CIDR 10.20.0.0/16, a sync
    /// every 30 s.
    pub fn new(node_name: impl Into<String>) -> Self {
        ProxyConfig {
            node_name: node_name.into(),
            mode: ProxyMode::default(),
            node_port_addresses: Vec::new(),
            service_cidr: Ipv4Net::new(Ipv4Addr::new(10, 254, 0, 0), 16).unwrap_or_default(),
            cluster_cidr: Ipv4Net::new(Ipv4Addr::new(10, 20, 0, 0), 16).unwrap_or_default(),
            sync_period: Duration::from_secs(30),
        }
    }
}

/// Why the proxy failed.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// A mode name other than `userspace` or `iptables`.
    #[error("unknown proxy mode {0:?}: expected \"userspace\" or \"iptables\"")]
    UnknownMode(String),
    /// iptables (or iptables-restore) could not run or refused the rules.
    #[error("iptables: {operation}: {reason}")]
    Iptables {
        /// What was being done.
        operation: String,
        /// Why it failed.
        reason: String,
    },
    /// Node settings (sysctls) could not be changed.
    #[error("{operation}: {reason}")]
    Host {
        /// What was being done.
        operation: String,
        /// Why it failed.
        reason: String,
    },
}

/// A running service proxy. Dropping it stops it and removes its rules
/// (best effort); [`Proxy::shutdown`] does so reporting errors.
pub struct Proxy {
    running: Option<Running>,
    metrics: ProxyMetrics,
}

struct Running {
    stop: watch::Sender<bool>,
    sync: JoinHandle<()>,
    watchers: [AbortOnDrop; 2],
    rules: Arc<Rules>,
}

impl Proxy {
    /// Checks iptables (failing when it is unusable), creates this node's
    /// chains and jumps if missing (existing rules stay until the first sync
    /// replaces them), sets the kernel mode's sysctls, then watches services
    /// and endpoints through `client` and programs them until shut down.
    pub async fn start(client: kube::Client, config: ProxyConfig) -> Result<Proxy, ProxyError> {
        let node = config.node_name.clone();
        let rules = Arc::new(
            blocking(move || {
                let rules = Rules::new(&node)?;
                rules.ensure()?;
                Ok(rules)
            })
            .await?,
        );
        let metrics = ProxyMetrics::default();
        let backend = match config.mode {
            ProxyMode::Userspace => {
                Backend::Userspace(Userspace::new(rules.clone(), &config, metrics.clone()))
            }
            ProxyMode::Iptables => {
                blocking(kernel_sysctls).await?;
                Backend::Kernel(Kernel::new(rules.clone(), &config).await)
            }
        };
        let changed = Arc::new(Notify::new());
        let (services, services_writer) = reflector::store();
        let (endpoints, endpoints_writer) = reflector::store();
        let span = tracing::info_span!("proxy", node = %config.node_name, mode = %config.mode);
        let watchers = [
            AbortOnDrop(tokio::spawn(
                watch_objects(
                    Api::<Service>::all(client.clone()),
                    services_writer,
                    changed.clone(),
                )
                .instrument(span.clone()),
            )),
            AbortOnDrop(tokio::spawn(
                watch_objects(
                    Api::<Endpoints>::all(client),
                    endpoints_writer,
                    changed.clone(),
                )
                .instrument(span.clone()),
            )),
        ];
        let (stop, stopped) = watch::channel(false);
        let sync = tokio::spawn(
            run(
                backend,
                services,
                endpoints,
                changed,
                stopped,
                config,
                metrics.clone(),
            )
            .instrument(span),
        );
        Ok(Proxy {
            running: Some(Running {
                stop,
                sync,
                watchers,
                rules,
            }),
            metrics,
        })
    }

    /// Register the proxy's metric families (connections, sync latency) in `registry`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.metrics.register(registry);
    }

    /// Stops watching, closes the listeners and removes this proxy's rules.
    pub async fn shutdown(mut self) -> Result<(), ProxyError> {
        let Some(running) = self.running.take() else {
            return Ok(());
        };
        let _ = running.stop.send(true);
        drop(running.watchers);
        if let Err(e) = running.sync.await {
            tracing::warn!(error = %e, "the proxy's sync task failed");
        }
        let rules = running.rules;
        blocking(move || rules.remove()).await
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.sync.abort();
            drop(running.watchers);
            if let Err(e) = running.rules.remove() {
                tracing::warn!(error = %e, "the proxy's iptables rules were not removed");
            }
        }
    }
}

/// Removes the iptables chains of node `node_name`'s proxy and the jumps to
/// them (a node taken out of service); other nodes' rules stay. Blocks on
/// iptables.
pub fn remove_rules(node_name: &str) -> Result<(), ProxyError> {
    Rules::new(node_name)?.remove()
}

/// The proxy of one mode.
enum Backend {
    Userspace(Userspace),
    Kernel(Kernel),
}

impl Backend {
    async fn sync(&mut self, ports: &[ServicePort], periodic: bool) -> Result<(), ProxyError> {
        match self {
            Backend::Userspace(proxy) => proxy.sync(ports, periodic).await,
            Backend::Kernel(proxy) => proxy.sync(ports, periodic).await,
        }
    }
}

/// Keeps `writer`'s store in step with the API and signals every change.
async fn watch_objects<K>(api: Api<K>, writer: Writer<K>, changed: Arc<Notify>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + k8s_openapi::serde::de::DeserializeOwned
        + fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let mut events = std::pin::pin!(
        watcher(api, watcher::Config::default())
            .default_backoff()
            .reflect(writer)
    );
    while let Some(event) = events.next().await {
        match event {
            Ok(_) => changed.notify_one(),
            Err(e) => tracing::warn!(kind = %K::kind(&()), error = %e, "watch failed; retrying"),
        }
    }
}

/// The sync loop: once both stores are filled, syncs at once, then after
/// every (debounced) change and every `sync_period`, until `stop`.
async fn run(
    mut backend: Backend,
    services: Store<Service>,
    endpoints: Store<Endpoints>,
    changed: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
    config: ProxyConfig,
    metrics: ProxyMetrics,
) {
    let ready = async {
        let _ = services.wait_until_ready().await;
        let _ = endpoints.wait_until_ready().await;
    };
    tokio::select! {
        _ = ready => {}
        _ = stop.changed() => return,
    }
    let mut periodic = true;
    let mut generation = 0u64;
    loop {
        generation += 1;
        let ports =
            model::service_ports(&services.state(), &endpoints.state(), config.service_cidr);
        let span = tracing::info_span!("sync", generation, periodic, ports = ports.len());
        let started = std::time::Instant::now();
        let result = backend
            .sync(&ports, periodic)
            .instrument(span.clone())
            .await;
        metrics.synced(started.elapsed().as_secs_f64());
        let wait = match result {
            Ok(()) => {
                span.in_scope(|| tracing::debug!(elapsed = ?started.elapsed(), "synced"));
                config.sync_period
            }
            Err(e) => {
                span.in_scope(|| tracing::warn!(error = %e, "sync failed; retrying"));
                RETRY.min(config.sync_period)
            }
        };
        periodic = tokio::select! {
            _ = changed.notified() => false,
            _ = tokio::time::sleep(wait) => true,
            _ = stop.changed() => return,
        };
        if !periodic {
            tokio::select! {
                _ = tokio::time::sleep(DEBOUNCE) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// Runs blocking work (iptables, conntrack, sysctls) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ProxyError> + Send + 'static,
) -> Result<T, ProxyError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ProxyError::Host {
            operation: "run a blocking task".into(),
            reason: e.to_string(),
        })?
}

/// Enables forwarding and `route_localnet`, and bridge netfilter if its
/// module is loaded.
fn kernel_sysctls() -> Result<(), ProxyError> {
    for key in ["net/ipv4/ip_forward", "net/ipv4/conf/all/route_localnet"] {
        let path = format!("/proc/sys/{key}");
        std::fs::write(&path, "1").map_err(|e| ProxyError::Host {
            operation: format!("write {path}"),
            reason: e.to_string(),
        })?;
    }
    let bridge = "/proc/sys/net/bridge/bridge-nf-call-iptables";
    match std::fs::read_to_string(bridge) {
        Ok(value) if value.trim() != "1" => {
            if let Err(e) = std::fs::write(bridge, "1") {
                tracing::warn!(path = bridge, error = %e, "bridge netfilter not enabled");
            }
        }
        Ok(_) => {}
        Err(_) => tracing::info!(
            "bridge netfilter (br_netfilter) is not loaded: replies between pods of one bridge bypass service NAT"
        ),
    }
    Ok(())
}
