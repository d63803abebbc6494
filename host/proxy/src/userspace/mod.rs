//! Userspace mode, as kube-proxy ≤ 1.1: every service port gets a listener
//! on 0.0.0.0 at a random port, to which iptables redirects its ClusterIP
//! (see [`crate::rules`]), and a listener on each node-port address at its
//! NodePort. The proxy relays each connection (TCP) or client association
//! (UDP) to an endpoint chosen by a [`Balancer`].

mod balancer;
mod tcp;
mod udp;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use self::balancer::Balancer;
use crate::metrics::ProxyMetrics;
use crate::model::{PortKey, Protocol, ServicePort};
use crate::rules::{Rules, Ruleset, render_userspace};
use crate::{ProxyConfig, ProxyError, blocking};

/// Aborts its task when dropped.
pub(crate) struct AbortOnDrop(pub(crate) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the listeners of one service port share.
pub(crate) struct Shared {
    balancer: Mutex<Balancer>,
    /// The current endpoints; connections watch it to end when theirs goes.
    endpoints: watch::Sender<Vec<SocketAddrV4>>,
    metrics: ProxyMetrics,
}

impl Shared {
    fn new(metrics: ProxyMetrics) -> Self {
        Shared {
            balancer: Mutex::new(Balancer::default()),
            endpoints: watch::Sender::new(Vec::new()),
            metrics,
        }
    }

    fn update(&self, endpoints: &[SocketAddrV4], affinity: Option<Duration>) {
        self.balancer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .update(endpoints, affinity, Instant::now());
        self.endpoints.send_if_modified(|current| {
            let changed = current != endpoints;
            if changed {
                *current = endpoints.to_vec();
            }
            changed
        });
    }

    /// See [`Balancer::pick`].
    fn pick(&self, client: IpAddr, now: Instant, reset: bool) -> Option<SocketAddrV4> {
        self.balancer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pick(client, now, reset)
    }
}

/// Starts serving `protocol` on `address`; the task ends when dropped.
async fn listen(
    protocol: Protocol,
    address: SocketAddrV4,
    shared: &Arc<Shared>,
) -> std::io::Result<(u16, AbortOnDrop)> {
    let shared = shared.clone();
    let (port, task) = match protocol {
        Protocol::Tcp => {
            let listener = TcpListener::bind(address).await?;
            let port = listener.local_addr()?.port();
            (port, tokio::spawn(tcp::serve(listener, shared)))
        }
        Protocol::Udp => {
            let socket = udp::bind(address).await?;
            let port = socket.local_addr()?.port();
            (port, tokio::spawn(udp::serve(socket, shared)))
        }
    };
    Ok((port, AbortOnDrop(task)))
}

/// The listeners of one service port.
struct PortProxy {
    shared: Arc<Shared>,
    /// The port of the 0.0.0.0 listener the ClusterIP is redirected to.
    proxy_port: u16,
    _listener: AbortOnDrop,
    /// The NodePort the node listeners serve.
    node_port: Option<u16>,
    node_listeners: BTreeMap<Ipv4Addr, AbortOnDrop>,
}

/// The userspace proxy of one node.
pub(crate) struct Userspace {
    rules: Arc<Rules>,
    /// Where NodePorts listen: the node-port addresses, or 0.0.0.0.
    node_port_addresses: Vec<Ipv4Addr>,
    ports: BTreeMap<PortKey, PortProxy>,
    /// The rules installed last.
    applied: Option<Ruleset>,
    metrics: ProxyMetrics,
}

impl Userspace {
    /// A userspace proxy redirecting through `rules`.
    pub(crate) fn new(rules: Arc<Rules>, config: &ProxyConfig, metrics: ProxyMetrics) -> Self {
        let node_port_addresses = if config.node_port_addresses.is_empty() {
            vec![Ipv4Addr::UNSPECIFIED]
        } else {
            config.node_port_addresses.clone()
        };
        Userspace {
            rules,
            node_port_addresses,
            ports: BTreeMap::new(),
            applied: None,
            metrics,
        }
    }

    /// Opens and closes listeners to match `ports`, hands the endpoints to
    /// them, then installs the redirections if they changed (on a
    /// `periodic` sync, also re-adds missing jumps). A listener that cannot
    /// be opened is reported and tried again at the next sync.
    pub(crate) async fn sync(
        &mut self,
        ports: &[ServicePort],
        periodic: bool,
    ) -> Result<(), ProxyError> {
        let wanted: BTreeSet<&PortKey> = ports.iter().map(|p| &p.key).collect();
        self.ports.retain(|key, _| wanted.contains(key));
        for sp in ports {
            if !self.ports.contains_key(&sp.key) {
                let shared = Arc::new(Shared::new(self.metrics.clone()));
                let any = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
                match listen(sp.key.protocol, any, &shared).await {
                    Ok((proxy_port, listener)) => {
                        tracing::info!(service = %sp.key, proxy_port, "listening");
                        self.ports.insert(
                            sp.key.clone(),
                            PortProxy {
                                shared,
                                proxy_port,
                                _listener: listener,
                                node_port: None,
                                node_listeners: BTreeMap::new(),
                            },
                        );
                    }
                    Err(e) => {
                        tracing::warn!(service = %sp.key, error = %e, "cannot open a proxy port");
                        continue;
                    }
                }
            }
            let Some(proxy) = self.ports.get_mut(&sp.key) else {
                continue;
            };
            proxy.shared.update(&sp.endpoints, sp.affinity);
            if proxy.node_port != sp.node_port {
                proxy.node_listeners.clear();
                proxy.node_port = sp.node_port;
            }
            if let Some(node_port) = sp.node_port {
                for address in &self.node_port_addresses {
                    if proxy.node_listeners.contains_key(address) {
                        continue;
                    }
                    let at = SocketAddrV4::new(*address, node_port);
                    match listen(sp.key.protocol, at, &proxy.shared).await {
                        Ok((_, listener)) => {
                            tracing::info!(service = %sp.key, address = %at, "node port listening");
                            proxy.node_listeners.insert(*address, listener);
                        }
                        Err(e) => {
                            tracing::warn!(service = %sp.key, address = %at, error = %e,
                                "cannot open the node port");
                        }
                    }
                }
            }
        }
        let set = render_userspace(
            self.rules.chains(),
            ports
                .iter()
                .filter_map(|sp| self.ports.get(&sp.key).map(|p| (sp, p.proxy_port))),
        );
        let rules = self.rules.clone();
        if self.applied.as_ref() != Some(&set) {
            let text = set.clone();
            blocking(move || rules.apply(&text)).await?;
            tracing::info!(ports = self.ports.len(), "iptables rules applied");
            self.applied = Some(set);
        } else if periodic {
            blocking(move || rules.ensure_jumps()).await?;
        }
        Ok(())
    }
}
