//! The desired state: every service port this node proxies, with its
//! frontends (ClusterIP, NodePort) and ready endpoints, computed from the
//! Services and Endpoints seen by the watchers.

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::{Endpoints, Service};

/// `sessionAffinityConfig.clientIP.timeoutSeconds` when unset, as in Kubernetes.
const DEFAULT_AFFINITY_SECONDS: u32 = 10800;
/// The largest affinity timeout Kubernetes accepts (one day).
const MAX_AFFINITY_SECONDS: u32 = 86400;

/// Transport protocol of a service port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// The name iptables and conntrack use.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }

    /// The protocol of a Kubernetes `protocol` field (TCP when unset); `None`
    /// for protocols this proxy does not handle (SCTP).
    fn parse(value: Option<&str>) -> Option<Protocol> {
        match value.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            _ => None,
        }
    }
}

/// Identifies a service port: namespace, service, port name, protocol.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct PortKey {
    pub(crate) namespace: String,
    pub(crate) name: String,
    /// The port's name; empty for the single unnamed port of a service.
    pub(crate) port: String,
    pub(crate) protocol: Protocol,
}

impl fmt::Display for PortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)?;
        if !self.port.is_empty() {
            write!(f, ":{}", self.port)?;
        }
        if self.protocol == Protocol::Udp {
            write!(f, "/udp")?;
        }
        Ok(())
    }
}

/// One service port as the proxy programs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServicePort {
    pub(crate) key: PortKey,
    /// The ClusterIP; `None` for headless services.
    pub(crate) cluster_ip: Option<Ipv4Addr>,
    /// The port on the ClusterIP.
    pub(crate) port: u16,
    /// The NodePort, for NodePort and LoadBalancer services.
    pub(crate) node_port: Option<u16>,
    /// The ClientIP session affinity timeout, when affinity is on.
    pub(crate) affinity: Option<Duration>,
    /// The ready endpoints, sorted, without duplicates.
    pub(crate) endpoints: Vec<SocketAddrV4>,
}

/// Every service port with a ClusterIP (inside `service_cidr`) or a
/// NodePort, sorted by key, with the ready addresses of the same-named
/// Endpoints object whose port has the same name and protocol.
pub(crate) fn service_ports(
    services: &[Arc<Service>],
    endpoints: &[Arc<Endpoints>],
    service_cidr: Ipv4Net,
) -> Vec<ServicePort> {
    let endpoints: HashMap<(&str, &str), &Endpoints> = endpoints
        .iter()
        .filter_map(|e| {
            let meta = &e.metadata;
            Some(((meta.namespace.as_deref()?, meta.name.as_deref()?), &**e))
        })
        .collect();
    let mut ports = Vec::new();
    for service in services {
        let (Some(namespace), Some(name), Some(spec)) = (
            service.metadata.namespace.as_deref(),
            service.metadata.name.as_deref(),
            service.spec.as_ref(),
        ) else {
            continue;
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let cluster_ip = spec
            .cluster_ip
            .as_deref()
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok());
        let cluster_ip = match cluster_ip {
            Some(ip) if !service_cidr.contains(&ip) => {
                tracing::debug!(service = %format!("{namespace}/{name}"), %ip, %service_cidr,
                    "ClusterIP outside the service CIDR: ignored");
                None
            }
            ip => ip,
        };
        let affinity = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            let seconds = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .and_then(|s| u32::try_from(s).ok())
                .filter(|s| (1..=MAX_AFFINITY_SECONDS).contains(s))
                .unwrap_or(DEFAULT_AFFINITY_SECONDS);
            Duration::from_secs(u64::from(seconds))
        });
        let subsets = endpoints
            .get(&(namespace, name))
            .and_then(|e| e.subsets.as_deref())
            .unwrap_or_default();
        for service_port in spec.ports.iter().flatten() {
            let Some(protocol) = Protocol::parse(service_port.protocol.as_deref()) else {
                continue;
            };
            let Some(port) = u16::try_from(service_port.port).ok().filter(|p| *p != 0) else {
                continue;
            };
            let node_port = service_port
                .node_port
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p != 0);
            if cluster_ip.is_none() && node_port.is_none() {
                continue;
            }
            let port_name = service_port.name.clone().unwrap_or_default();
            let mut addresses = Vec::new();
            for subset in subsets {
                for endpoint_port in subset.ports.iter().flatten() {
                    if endpoint_port.name.as_deref().unwrap_or_default() != port_name
                        || Protocol::parse(endpoint_port.protocol.as_deref()) != Some(protocol)
                    {
                        continue;
                    }
                    let Some(target) = u16::try_from(endpoint_port.port).ok().filter(|p| *p != 0)
                    else {
                        continue;
                    };
                    for address in subset.addresses.iter().flatten() {
                        if let Ok(ip) = address.ip.parse::<Ipv4Addr>() {
                            addresses.push(SocketAddrV4::new(ip, target));
                        }
                    }
                }
            }
            addresses.sort();
            addresses.dedup();
            ports.push(ServicePort {
                key: PortKey {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                    port: port_name,
                    protocol,
                },
                cluster_ip,
                port,
                node_port,
                affinity,
                endpoints: addresses,
            });
        }
    }
    ports.sort_by(|a, b| a.key.cmp(&b.key));
    ports.dedup_by(|a, b| a.key == b.key);
    ports
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(value: serde_json::Value) -> Arc<Service> {
        Arc::new(serde_json::from_value(value).unwrap())
    }

    fn endpoints(value: serde_json::Value) -> Arc<Endpoints> {
        Arc::new(serde_json::from_value(value).unwrap())
    }

    fn cidr() -> Ipv4Net {
        "10.254.0.0/16".parse().unwrap()
    }

    #[test]
    fn ports_get_the_endpoints_of_their_name_and_protocol() {
        let services = [service(serde_json::json!({
            "metadata": {"namespace": "default", "name": "dns"},
            "spec": {
                "clusterIP": "10.254.0.10",
                "type": "NodePort",
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053},
                    {"name": "dns-tcp", "port": 53, "nodePort": 30054},
                    {"name": "sctp", "port": 99, "protocol": "SCTP"},
                ],
            },
        }))];
        let found = [endpoints(serde_json::json!({
            "metadata": {"namespace": "default", "name": "dns"},
            "subsets": [
                {
                    "addresses": [{"ip": "10.20.1.3"}, {"ip": "10.20.0.2"}],
                    "notReadyAddresses": [{"ip": "10.20.0.9"}],
                    "ports": [
                        {"name": "dns", "port": 5353, "protocol": "UDP"},
                        {"name": "dns-tcp", "port": 5354, "protocol": "TCP"},
                    ],
                },
                {
                    "addresses": [{"ip": "10.20.0.2"}, {"ip": "fd00::1"}],
                    "ports": [{"name": "dns", "port": 5353, "protocol": "UDP"}],
                },
            ],
        }))];
        let ports = service_ports(&services, &found, cidr());
        assert_eq!(ports.len(), 2, "{ports:?}");
        assert_eq!(ports[0].key.to_string(), "default/dns:dns/udp");
        assert_eq!(ports[0].cluster_ip, Some(Ipv4Addr::new(10, 254, 0, 10)));
        assert_eq!(ports[0].node_port, Some(30053));
        assert_eq!(
            ports[0].endpoints,
            [
                "10.20.0.2:5353".parse().unwrap(),
                "10.20.1.3:5353".parse().unwrap()
            ]
        );
        assert_eq!(ports[1].key.to_string(), "default/dns:dns-tcp");
        assert_eq!(ports[1].port, 53);
        assert_eq!(
            ports[1].endpoints,
            [
                "10.20.0.2:5354".parse().unwrap(),
                "10.20.1.3:5354".parse().unwrap()
            ]
        );
        assert_eq!(ports[1].affinity, None);
    }

    #[test]
    fn affinity_headless_external_and_foreign_addresses() {
        let services = [
            service(serde_json::json!({
                "metadata": {"namespace": "a", "name": "sticky"},
                "spec": {"clusterIP": "10.254.0.2", "ports": [{"port": 80}],
                         "sessionAffinity": "ClientIP"},
            })),
            service(serde_json::json!({
                "metadata": {"namespace": "a", "name": "short"},
                "spec": {"clusterIP": "10.254.0.3", "ports": [{"port": 80}],
                         "sessionAffinity": "ClientIP",
                         "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}},
            })),
            service(serde_json::json!({
                "metadata": {"namespace": "a", "name": "headless"},
                "spec": {"clusterIP": "None", "ports": [{"port": 80}]},
            })),
            service(serde_json::json!({
                "metadata": {"namespace": "a", "name": "external"},
                "spec": {"type": "ExternalName", "externalName": "example.com"},
            })),
            service(serde_json::json!({
                "metadata": {"namespace": "a", "name": "foreign"},
                "spec": {"clusterIP": "192.168.0.1", "ports": [{"port": 80}]},
            })),
            service(serde_json::json!({
                "metadata": {"namespace": "a", "name": "foreign-np"},
                "spec": {"clusterIP": "192.168.0.2", "type": "LoadBalancer",
                         "ports": [{"port": 80, "nodePort": 31000}]},
            })),
        ];
        let ports = service_ports(&services, &[], cidr());
        let names: Vec<String> = ports.iter().map(|p| p.key.to_string()).collect();
        assert_eq!(names, ["a/foreign-np", "a/short", "a/sticky"]);
        assert_eq!(ports[0].cluster_ip, None);
        assert_eq!(ports[0].node_port, Some(31000));
        assert_eq!(ports[1].affinity, Some(Duration::from_secs(60)));
        assert_eq!(ports[2].affinity, Some(Duration::from_secs(10800)));
        assert!(ports.iter().all(|p| p.endpoints.is_empty()));
    }
}
