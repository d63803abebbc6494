//! Kernel mode: the service ports become DNAT rules (see [`crate::rules`]);
//! the proxy only renders them, applies them when they change, and ends the
//! connections of removed endpoints.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Arc;

use ipnet::Ipv4Net;

use crate::conntrack::{self, Flow};
use crate::model::ServicePort;
use crate::rules::{Rules, Ruleset, render_kernel};
use crate::{ProxyConfig, ProxyError, blocking};

/// The kernel-mode proxy of one node.
pub(crate) struct Kernel {
    rules: Arc<Rules>,
    node_port_addresses: Vec<Ipv4Addr>,
    cluster_cidr: Ipv4Net,
    /// Whether `conntrack` can run (checked at start).
    conntrack: bool,
    /// The rules installed last.
    applied: Option<Ruleset>,
    /// The service ports the installed rules were rendered from.
    programmed: Vec<ServicePort>,
}

impl Kernel {
    /// A kernel-mode proxy installing `rules`; checks for `conntrack`.
    pub(crate) async fn new(rules: Arc<Rules>, config: &ProxyConfig) -> Self {
        let conntrack = blocking(|| Ok(conntrack::available()))
            .await
            .unwrap_or(false);
        if !conntrack {
            tracing::warn!(
                "the conntrack tool (conntrack-tools) is missing: connections to removed endpoints are not ended"
            );
        }
        Kernel {
            rules,
            node_port_addresses: config.node_port_addresses.clone(),
            cluster_cidr: config.cluster_cidr.trunc(),
            conntrack,
            applied: None,
            programmed: Vec::new(),
        }
    }

    /// Installs the rules of `ports` if they changed (on a `periodic` sync,
    /// also re-adds missing jumps), then deletes the conntrack entries of
    /// flows to endpoints that are gone.
    pub(crate) async fn sync(
        &mut self,
        ports: &[ServicePort],
        periodic: bool,
    ) -> Result<(), ProxyError> {
        let set = render_kernel(
            self.rules.chains(),
            ports,
            &self.node_port_addresses,
            self.cluster_cidr,
        );
        let rules = self.rules.clone();
        if self.applied.as_ref() != Some(&set) {
            let text = set.clone();
            blocking(move || rules.apply(&text)).await?;
            tracing::info!(ports = ports.len(), "iptables rules applied");
            self.applied = Some(set);
        } else if periodic {
            blocking(move || rules.ensure_jumps()).await?;
        }
        let stale = stale_flows(&self.programmed, ports, &self.node_port_addresses);
        self.programmed = ports.to_vec();
        if self.conntrack && !stale.is_empty() {
            blocking(move || {
                for flow in &stale {
                    if let Err(e) = conntrack::delete(flow) {
                        tracing::warn!(error = %e, "conntrack entries of a removed endpoint not deleted");
                    }
                }
                Ok(())
            })
            .await?;
        }
        Ok(())
    }
}

/// Every (frontend, endpoint) flow of `port`: its ClusterIP and its NodePort
/// on each node-port address (any address when there are none).
fn flows(port: &ServicePort, node_port_addresses: &[Ipv4Addr]) -> BTreeSet<Flow> {
    let mut frontends = Vec::new();
    if let Some(ip) = port.cluster_ip {
        frontends.push((Some(ip), port.port));
    }
    if let Some(node_port) = port.node_port {
        if node_port_addresses.is_empty() {
            frontends.push((None, node_port));
        }
        for address in node_port_addresses {
            frontends.push((Some(*address), node_port));
        }
    }
    let mut flows = BTreeSet::new();
    for (destination, frontend_port) in frontends {
        for endpoint in &port.endpoints {
            flows.insert(Flow {
                protocol: port.key.protocol,
                destination,
                port: frontend_port,
                endpoint: *endpoint,
            });
        }
    }
    flows
}

/// The flows `before` had that `after` no longer has.
fn stale_flows(
    before: &[ServicePort],
    after: &[ServicePort],
    node_port_addresses: &[Ipv4Addr],
) -> Vec<Flow> {
    let all = |ports: &[ServicePort]| -> BTreeSet<Flow> {
        ports
            .iter()
            .flat_map(|p| flows(p, node_port_addresses))
            .collect()
    };
    let kept = all(after);
    all(before).difference(&kept).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PortKey, Protocol};

    fn port(endpoints: &[&str]) -> ServicePort {
        ServicePort {
            key: PortKey {
                namespace: "default".into(),
                name: "web".into(),
                port: String::new(),
                protocol: Protocol::Tcp,
            },
            cluster_ip: Some(Ipv4Addr::new(10, 254, 0, 7)),
            port: 80,
            node_port: Some(30080),
            affinity: None,
            endpoints: endpoints.iter().map(|e| e.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn removed_endpoints_have_their_flows_deleted() {
        let addresses = [Ipv4Addr::new(127, 0, 0, 1)];
        let before = [port(&["10.20.0.2:8080", "10.20.0.3:8080"])];
        let after = [port(&["10.20.0.3:8080"])];
        let stale = stale_flows(&before, &after, &addresses);
        let endpoint = "10.20.0.2:8080".parse().unwrap();
        assert_eq!(
            stale,
            [
                Flow {
                    protocol: Protocol::Tcp,
                    destination: Some(Ipv4Addr::new(10, 254, 0, 7)),
                    port: 80,
                    endpoint,
                },
                Flow {
                    protocol: Protocol::Tcp,
                    destination: Some(Ipv4Addr::new(127, 0, 0, 1)),
                    port: 30080,
                    endpoint,
                },
            ]
        );
        assert!(stale_flows(&after, &before, &addresses).is_empty());
        let gone = stale_flows(&after, &[], &[]);
        assert_eq!(gone.len(), 2);
        assert_eq!(gone[0].destination, None);
    }
}
