//! This proxy's iptables rules. Every chain is named after the node, so that
//! proxies sharing a network namespace keep apart:
//!
//! * `HORTATOR-SVC-<suffix>` (nat, jumped to from PREROUTING and OUTPUT):
//!   one entry per ClusterIP port — a `REDIRECT` to the local listener in
//!   userspace mode; in kernel mode a masquerade mark for sources outside
//!   the cluster CIDR and a jump to the port's `HSVC-` chain. Its last rule
//!   jumps to the NodePort chain.
//! * `HORTATOR-NP-<suffix>` (nat): NodePorts on the node-port addresses
//!   (kernel mode), always marked for masquerade.
//! * `HSVC-<tag>-<hash>` (nat, kernel mode): one per service port; `-m
//!   recent` checks for ClientIP affinity, then a `statistic` random choice
//!   among the endpoints (probability 1/n, 1/(n-1), … so that the spread is
//!   even).
//! * `HSEP-<tag>-<hash>` (nat, kernel mode): one per endpoint; marks hairpin
//!   traffic (the endpoint reaching itself), records the client for affinity
//!   and DNATs to the endpoint.
//! * `HORTATOR-SMASQ-<suffix>` (nat, from POSTROUTING): masquerades packets
//!   carrying [`MASQUERADE_MARK`].
//! * `HORTATOR-NOEP-<suffix>` (filter, from INPUT, FORWARD and OUTPUT for new
//!   connections): kernel mode rejects service ports without endpoints.
//!
//! `<tag>` is a hash of the node name; `<hash>` one of the service port (and
//! endpoint). The rules are rendered whole and swapped in by one
//! `iptables-restore --noflush`, which also deletes the `HSVC-`/`HSEP-`
//! chains of this node that are no longer rendered.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::Command;
use std::sync::Mutex;

use hortator_netfilter::{MAX_CHAIN_NAME, chain_suffix, fnv1a32};

use ipnet::Ipv4Net;

use crate::ProxyError;
use crate::model::{PortKey, Protocol, ServicePort};

/// Chain names are at most 28 characters; the suffix gets what the longest
/// prefix leaves.
const MAX_SUFFIX: usize = MAX_CHAIN_NAME - "HORTATOR-SMASQ-".len();

/// The mark (value/mask) of packets to masquerade, as kube-proxy's.
pub(crate) const MASQUERADE_MARK: &str = "0x4000/0x4000";

/// The names of one node's chains.
#[derive(Debug, Clone)]
pub(crate) struct Chains {
    /// nat: the ClusterIP entries (from PREROUTING and OUTPUT).
    pub(crate) services: String,
    /// nat: the NodePort entries (from the end of `services`).
    pub(crate) node_ports: String,
    /// nat: masquerading of marked packets (from POSTROUTING).
    pub(crate) masquerade: String,
    /// filter: rejections of ports without endpoints.
    pub(crate) no_endpoints: String,
    /// Distinguishes this node's per-service and per-endpoint chains.
    tag: String,
}

impl Chains {
    /// The chains of node `node_name`.
    pub(crate) fn new(node_name: &str) -> Self {
        let suffix = chain_suffix(node_name, MAX_SUFFIX);
        Chains {
            services: format!("HORTATOR-SVC-{suffix}"),
            node_ports: format!("HORTATOR-NP-{suffix}"),
            masquerade: format!("HORTATOR-SMASQ-{suffix}"),
            no_endpoints: format!("HORTATOR-NOEP-{suffix}"),
            tag: format!("{:08x}", fnv1a32(node_name.as_bytes())),
        }
    }

    /// The chain choosing among the endpoints of a service port.
    pub(crate) fn service_chain(&self, key: &PortKey) -> String {
        format!("HSVC-{}-{}", self.tag, hash14(&port_identity(key)))
    }

    /// The chain DNATing to one endpoint of a service port.
    pub(crate) fn endpoint_chain(&self, key: &PortKey, endpoint: SocketAddrV4) -> String {
        format!(
            "HSEP-{}-{}",
            self.tag,
            hash14(&format!("{}/{endpoint}", port_identity(key)))
        )
    }

    /// Whether `chain` is one of this node's per-service or per-endpoint chains.
    fn owns(&self, chain: &str) -> bool {
        ["HSVC-", "HSEP-"].iter().any(|prefix| {
            chain
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix(self.tag.as_str()))
                .is_some_and(|rest| rest.starts_with('-'))
        })
    }

    /// (table, built-in chain, rule) for every jump into this node's chains.
    fn jumps(&self) -> [(&'static str, &'static str, String); 6] {
        let services = format!("-j {}", self.services);
        let reject = format!("-m conntrack --ctstate NEW -j {}", self.no_endpoints);
        [
            ("nat", "PREROUTING", services.clone()),
            ("nat", "OUTPUT", services),
            ("nat", "POSTROUTING", format!("-j {}", self.masquerade)),
            ("filter", "INPUT", reject.clone()),
            ("filter", "FORWARD", reject.clone()),
            ("filter", "OUTPUT", reject),
        ]
    }
}

/// The chains one table declares (created, or flushed if they exist) and the
/// rules appended to them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Table {
    chains: Vec<String>,
    rules: Vec<String>,
}

/// The complete rules of one node: what one `iptables-restore` installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ruleset {
    nat: Table,
    filter: Table,
}

impl Ruleset {
    /// The base chains, with the masquerade rule.
    fn new(chains: &Chains) -> Self {
        Ruleset {
            nat: Table {
                chains: vec![
                    chains.services.clone(),
                    chains.node_ports.clone(),
                    chains.masquerade.clone(),
                ],
                rules: vec![format!(
                    "-A {} -m mark --mark {MASQUERADE_MARK} -m comment --comment \"hortator service traffic requiring SNAT\" -j MASQUERADE",
                    chains.masquerade
                )],
            },
            filter: Table {
                chains: vec![chains.no_endpoints.clone()],
                rules: Vec::new(),
            },
        }
    }

    /// Ends the ClusterIP chain with the jump to the NodePort chain.
    fn finish(mut self, chains: &Chains) -> Self {
        self.nat.rules.push(format!(
            "-A {} -m comment --comment \"hortator node ports\" -j {}",
            chains.services, chains.node_ports
        ));
        self
    }

    /// The `iptables-restore --noflush` input installing these rules and
    /// deleting the `stale` nat chains.
    pub(crate) fn restore_input(&self, stale: &[String]) -> String {
        let mut text = String::from("*nat\n");
        for chain in self.nat.chains.iter().chain(stale) {
            let _ = writeln!(text, ":{chain} - [0:0]");
        }
        for rule in &self.nat.rules {
            let _ = writeln!(text, "{rule}");
        }
        for chain in stale {
            let _ = writeln!(text, "-X {chain}");
        }
        text += "COMMIT\n*filter\n";
        for chain in &self.filter.chains {
            let _ = writeln!(text, ":{chain} - [0:0]");
        }
        for rule in &self.filter.rules {
            let _ = writeln!(text, "{rule}");
        }
        text + "COMMIT\n"
    }
}

/// The match of each NodePort destination: the given addresses, or every
/// local address when there are none.
fn node_port_destinations(addresses: &[Ipv4Addr]) -> Vec<String> {
    if addresses.is_empty() {
        return vec!["-m addrtype --dst-type LOCAL".to_string()];
    }
    addresses.iter().map(|a| format!("-d {a}/32")).collect()
}

/// Kernel mode: DNAT straight to the endpoints.
pub(crate) fn render_kernel(
    chains: &Chains,
    ports: &[ServicePort],
    node_port_addresses: &[Ipv4Addr],
    cluster_cidr: Ipv4Net,
) -> Ruleset {
    let mut set = Ruleset::new(chains);
    let destinations = node_port_destinations(node_port_addresses);
    let mark = format!("-j MARK --set-xmark {MASQUERADE_MARK}");
    for sp in ports {
        let protocol = sp.key.protocol.as_str();
        let key = comment_text(&sp.key.to_string());
        if sp.endpoints.is_empty() {
            let reject = match sp.key.protocol {
                Protocol::Tcp => "tcp-reset",
                Protocol::Udp => "icmp-port-unreachable",
            };
            let comment = format!("-m comment --comment \"{key} has no endpoints\"");
            let chain = &chains.no_endpoints;
            if let Some(ip) = sp.cluster_ip {
                set.filter.rules.push(format!(
                    "-A {chain} -d {ip}/32 -p {protocol} {comment} -m {protocol} --dport {} -j REJECT --reject-with {reject}",
                    sp.port
                ));
            }
            if let Some(node_port) = sp.node_port {
                for destination in &destinations {
                    set.filter.rules.push(format!(
                        "-A {chain} {destination} -p {protocol} {comment} -m {protocol} --dport {node_port} -j REJECT --reject-with {reject}"
                    ));
                }
            }
            continue;
        }
        let service_chain = chains.service_chain(&sp.key);
        set.nat.chains.push(service_chain.clone());
        if let Some(ip) = sp.cluster_ip {
            let matches = format!(
                "-d {ip}/32 -p {protocol} -m comment --comment \"{key} cluster IP\" -m {protocol} --dport {}",
                sp.port
            );
            let chain = &chains.services;
            set.nat
                .rules
                .push(format!("-A {chain} ! -s {cluster_cidr} {matches} {mark}"));
            set.nat
                .rules
                .push(format!("-A {chain} {matches} -j {service_chain}"));
        }
        if let Some(node_port) = sp.node_port {
            for destination in &destinations {
                let matches = format!(
                    "{destination} -p {protocol} -m comment --comment \"{key}\" -m {protocol} --dport {node_port}"
                );
                let chain = &chains.node_ports;
                set.nat.rules.push(format!("-A {chain} {matches} {mark}"));
                set.nat
                    .rules
                    .push(format!("-A {chain} {matches} -j {service_chain}"));
            }
        }
        let comment = format!("-m comment --comment \"{key}\"");
        let endpoint_chains: Vec<String> = sp
            .endpoints
            .iter()
            .map(|e| chains.endpoint_chain(&sp.key, *e))
            .collect();
        if let Some(timeout) = sp.affinity {
            for chain in &endpoint_chains {
                set.nat.rules.push(format!(
                    "-A {service_chain} {comment} -m recent --name {chain} --mask 255.255.255.255 --rsource --rcheck --seconds {} --reap -j {chain}",
                    timeout.as_secs()
                ));
            }
        }
        let count = endpoint_chains.len();
        for (i, chain) in endpoint_chains.iter().enumerate() {
            let remaining = count - i;
            set.nat.rules.push(if remaining > 1 {
                format!(
                    "-A {service_chain} {comment} -m statistic --mode random --probability {:.10} -j {chain}",
                    1.0 / remaining as f64
                )
            } else {
                format!("-A {service_chain} {comment} -j {chain}")
            });
        }
        for (endpoint, chain) in sp.endpoints.iter().zip(endpoint_chains) {
            set.nat.rules.push(format!(
                "-A {chain} -s {}/32 {comment} {mark}",
                endpoint.ip()
            ));
            let recent = if sp.affinity.is_some() {
                format!(" -m recent --name {chain} --mask 255.255.255.255 --rsource --set")
            } else {
                String::new()
            };
            set.nat.rules.push(format!(
                "-A {chain} -p {protocol} {comment}{recent} -m {protocol} -j DNAT --to-destination {endpoint}"
            ));
            set.nat.chains.push(chain);
        }
    }
    set.finish(chains)
}

/// Userspace mode: ClusterIP ports redirected to the local listener on the
/// paired port (NodePorts are real listeners, no rules).
pub(crate) fn render_userspace<'a>(
    chains: &Chains,
    ports: impl IntoIterator<Item = (&'a ServicePort, u16)>,
) -> Ruleset {
    let mut set = Ruleset::new(chains);
    for (sp, proxy_port) in ports {
        let Some(ip) = sp.cluster_ip else { continue };
        let protocol = sp.key.protocol.as_str();
        set.nat.rules.push(format!(
            "-A {} -d {ip}/32 -p {protocol} -m comment --comment \"{}\" -m {protocol} --dport {} -j REDIRECT --to-ports {proxy_port}",
            chains.services,
            comment_text(&sp.key.to_string()),
            sp.port
        ));
    }
    set.finish(chains)
}

/// Installs and removes one node's rules.
pub(crate) struct Rules {
    chains: Chains,
    iptables: iptables::IPTables,
    /// Set by [`Rules::remove`]: later applications are refused, so that a
    /// sync still running cannot bring the rules back.
    removed: Mutex<bool>,
}

fn iptables_error(operation: impl Into<String>, reason: impl ToString) -> ProxyError {
    ProxyError::Iptables {
        operation: operation.into(),
        reason: reason.to_string(),
    }
}

impl Rules {
    /// The rules of node `node_name`; fails when `iptables` cannot run.
    pub(crate) fn new(node_name: &str) -> Result<Self, ProxyError> {
        let mut iptables = iptables::new(false).map_err(|e| iptables_error("run iptables", e))?;
        iptables.set_numeric(true);
        Ok(Rules {
            chains: Chains::new(node_name),
            iptables,
            removed: Mutex::new(false),
        })
    }

    /// The chain names.
    pub(crate) fn chains(&self) -> &Chains {
        &self.chains
    }

    /// Checks that `iptables-restore` runs and that the nat and filter tables
    /// can be read, creates the base chains when missing (existing ones keep
    /// their rules until the first sync) and adds the missing jumps.
    pub(crate) fn ensure(&self) -> Result<(), ProxyError> {
        let restore = Command::new("iptables-restore")
            .arg("--version")
            .output()
            .map_err(|e| iptables_error("run iptables-restore", e))?;
        if !restore.status.success() {
            return Err(iptables_error(
                "run iptables-restore",
                String::from_utf8_lossy(&restore.stderr).trim(),
            ));
        }
        for table in ["nat", "filter"] {
            let output = self
                .iptables
                .execute(table, "-S INPUT")
                .map_err(|e| iptables_error(format!("list the {table} table"), e))?;
            if !output.status.success() {
                return Err(iptables_error(
                    format!("list the {table} table"),
                    String::from_utf8_lossy(&output.stderr).trim(),
                ));
            }
        }
        for (table, chain) in [
            ("nat", &self.chains.services),
            ("nat", &self.chains.node_ports),
            ("nat", &self.chains.masquerade),
            ("filter", &self.chains.no_endpoints),
        ] {
            let exists = self
                .iptables
                .chain_exists(table, chain)
                .map_err(|e| iptables_error(format!("look up {table} {chain}"), e))?;
            if !exists {
                self.iptables
                    .new_chain(table, chain)
                    .map_err(|e| iptables_error(format!("create {table} {chain}"), e))?;
            }
        }
        self.ensure_jumps()
    }

    /// Adds each missing jump into this node's chains.
    pub(crate) fn ensure_jumps(&self) -> Result<(), ProxyError> {
        for (table, chain, rule) in self.chains.jumps() {
            let present = self
                .iptables
                .exists(table, chain, &rule)
                .map_err(|e| iptables_error(format!("check {table} {chain} {rule}"), e))?;
            if !present {
                self.iptables
                    .insert(table, chain, &rule, 1)
                    .map_err(|e| iptables_error(format!("insert {table} {chain} {rule}"), e))?;
            }
        }
        Ok(())
    }

    /// Installs `set` in one `iptables-restore`, deleting this node's
    /// per-service chains it no longer has, then ensures the jumps. Does
    /// nothing once [`Rules::remove`] ran.
    pub(crate) fn apply(&self, set: &Ruleset) -> Result<(), ProxyError> {
        let removed = self.removed.lock().unwrap_or_else(|e| e.into_inner());
        if *removed {
            return Ok(());
        }
        let stale: Vec<String> = self
            .list_chains("nat")?
            .into_iter()
            .filter(|c| self.chains.owns(c) && !set.nat.chains.contains(c))
            .collect();
        restore(&set.restore_input(&stale))?;
        self.ensure_jumps()
    }

    /// Removes the jumps and every chain of this node; what is already gone
    /// is fine.
    pub(crate) fn remove(&self) -> Result<(), ProxyError> {
        let mut removed = self.removed.lock().unwrap_or_else(|e| e.into_inner());
        *removed = true;
        for (table, chain, rule) in self.chains.jumps() {
            self.iptables
                .delete_all(table, chain, &rule)
                .map_err(|e| iptables_error(format!("delete {table} {chain} {rule}"), e))?;
        }
        let base = [
            &self.chains.services,
            &self.chains.node_ports,
            &self.chains.masquerade,
        ];
        let nat: Vec<String> = self
            .list_chains("nat")?
            .into_iter()
            .filter(|c| base.contains(&c) || self.chains.owns(c))
            .collect();
        let filter: Vec<String> = self
            .list_chains("filter")?
            .into_iter()
            .filter(|c| *c == self.chains.no_endpoints)
            .collect();
        if nat.is_empty() && filter.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for (table, chains) in [("nat", &nat), ("filter", &filter)] {
            let _ = writeln!(text, "*{table}");
            for chain in chains {
                let _ = writeln!(text, ":{chain} - [0:0]");
            }
            for chain in chains {
                let _ = writeln!(text, "-X {chain}");
            }
            text += "COMMIT\n";
        }
        restore(&text)
    }

    fn list_chains(&self, table: &str) -> Result<Vec<String>, ProxyError> {
        self.iptables
            .list_chains(table)
            .map_err(|e| iptables_error(format!("list the {table} chains"), e))
    }
}

/// Feeds `rules` to `iptables-restore --noflush`: the chains it declares are
/// replaced atomically, the rest of the tables is left alone.
fn restore(rules: &str) -> Result<(), ProxyError> {
    hortator_netfilter::restore(rules).map_err(|e| iptables_error("apply the rules", e))
}

/// `text` reduced to characters safe inside a quoted rule comment.
fn comment_text(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':'))
        .collect()
}

/// The stable identity of a service port in chain-name hashes.
fn port_identity(key: &PortKey) -> String {
    format!(
        "{}/{}:{}/{}",
        key.namespace,
        key.name,
        key.port,
        key.protocol.as_str()
    )
}

/// 14 hex digits of the FNV-1a (64-bit) hash of `text`.
fn hash14(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{:014x}", hash >> 8)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn port(name: &str, protocol: Protocol, endpoints: &[&str]) -> ServicePort {
        ServicePort {
            key: PortKey {
                namespace: "default".into(),
                name: name.into(),
                port: "http".into(),
                protocol,
            },
            cluster_ip: Some(Ipv4Addr::new(10, 254, 0, 7)),
            port: 80,
            node_port: None,
            affinity: None,
            endpoints: endpoints.iter().map(|e| e.parse().unwrap()).collect(),
        }
    }

    fn cluster() -> Ipv4Net {
        "10.20.0.0/16".parse().unwrap()
    }

    #[test]
    fn chain_names_are_per_node_and_fit() {
        let a = Chains::new("node-a");
        let b = Chains::new("node-b");
        assert_eq!(a.services, "HORTATOR-SVC-node-a");
        assert_eq!(a.masquerade, "HORTATOR-SMASQ-node-a");
        let key = port("web", Protocol::Tcp, &[]).key;
        let endpoint = "10.20.0.2:8080".parse().unwrap();
        assert_ne!(a.service_chain(&key), b.service_chain(&key));
        assert_ne!(
            a.endpoint_chain(&key, endpoint),
            b.endpoint_chain(&key, endpoint)
        );
        assert!(a.owns(&a.service_chain(&key)));
        assert!(a.owns(&a.endpoint_chain(&key, endpoint)));
        assert!(!b.owns(&a.service_chain(&key)));
        assert!(!a.owns(&a.services));
        let long = Chains::new("a-rather-long-node-name.example.com");
        for name in [
            long.services.clone(),
            long.node_ports.clone(),
            long.masquerade.clone(),
            long.no_endpoints.clone(),
            long.service_chain(&key),
            long.endpoint_chain(&key, endpoint),
        ] {
            assert!(name.len() <= 28, "{name}");
        }
        assert!(chain_suffix("127.0.0.2", MAX_SUFFIX).starts_with("1270-"));
    }

    #[test]
    fn kernel_rules_spread_evenly_and_masquerade() {
        let chains = Chains::new("n1");
        let mut web = port(
            "web",
            Protocol::Tcp,
            &["10.20.0.2:8080", "10.20.0.3:8080", "10.20.1.2:8080"],
        );
        web.node_port = Some(30080);
        let svc = chains.service_chain(&web.key);
        let eps: Vec<String> = web
            .endpoints
            .iter()
            .map(|e| chains.endpoint_chain(&web.key, *e))
            .collect();
        let text = render_kernel(&chains, &[web], &[Ipv4Addr::new(127, 0, 0, 1)], cluster())
            .restore_input(&[]);
        let c = "-m comment --comment \"default/web:http\"";
        let expected = format!(
            "*nat
:HORTATOR-SVC-n1 - [0:0]
:HORTATOR-NP-n1 - [0:0]
:HORTATOR-SMASQ-n1 - [0:0]
:{svc} - [0:0]
:{e0} - [0:0]
:{e1} - [0:0]
:{e2} - [0:0]
-A HORTATOR-SMASQ-n1 -m mark --mark 0x4000/0x4000 -m comment --comment \"hortator service traffic requiring SNAT\" -j MASQUERADE
-A HORTATOR-SVC-n1 ! -s 10.20.0.0/16 -d 10.254.0.7/32 -p tcp -m comment --comment \"default/web:http cluster IP\" -m tcp --dport 80 -j MARK --set-xmark 0x4000/0x4000
-A HORTATOR-SVC-n1 -d 10.254.0.7/32 -p tcp -m comment --comment \"default/web:http cluster IP\" -m tcp --dport 80 -j {svc}
-A HORTATOR-NP-n1 -d 127.0.0.1/32 -p tcp {c} -m tcp --dport 30080 -j MARK --set-xmark 0x4000/0x4000
-A HORTATOR-NP-n1 -d 127.0.0.1/32 -p tcp {c} -m tcp --dport 30080 -j {svc}
-A {svc} {c} -m statistic --mode random --probability 0.3333333333 -j {e0}
-A {svc} {c} -m statistic --mode random --probability 0.5000000000 -j {e1}
-A {svc} {c} -j {e2}
-A {e0} -s 10.20.0.2/32 {c} -j MARK --set-xmark 0x4000/0x4000
-A {e0} -p tcp {c} -m tcp -j DNAT --to-destination 10.20.0.2:8080
-A {e1} -s 10.20.0.3/32 {c} -j MARK --set-xmark 0x4000/0x4000
-A {e1} -p tcp {c} -m tcp -j DNAT --to-destination 10.20.0.3:8080
-A {e2} -s 10.20.1.2/32 {c} -j MARK --set-xmark 0x4000/0x4000
-A {e2} -p tcp {c} -m tcp -j DNAT --to-destination 10.20.1.2:8080
-A HORTATOR-SVC-n1 -m comment --comment \"hortator node ports\" -j HORTATOR-NP-n1
COMMIT
*filter
:HORTATOR-NOEP-n1 - [0:0]
COMMIT
",
            e0 = eps[0],
            e1 = eps[1],
            e2 = eps[2],
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn kernel_rules_pin_clients_with_recent() {
        let chains = Chains::new("n1");
        let mut sticky = port("sticky", Protocol::Udp, &["10.20.0.2:53", "10.20.0.3:53"]);
        sticky.affinity = Some(Duration::from_secs(600));
        let svc = chains.service_chain(&sticky.key);
        let e0 = chains.endpoint_chain(&sticky.key, sticky.endpoints[0]);
        let e1 = chains.endpoint_chain(&sticky.key, sticky.endpoints[1]);
        let text = render_kernel(&chains, &[sticky], &[], cluster()).restore_input(&[]);
        let c = "-m comment --comment \"default/sticky:http/udp\"";
        for rule in [
            format!(
                "-A {svc} {c} -m recent --name {e0} --mask 255.255.255.255 --rsource --rcheck --seconds 600 --reap -j {e0}"
            ),
            format!(
                "-A {svc} {c} -m recent --name {e1} --mask 255.255.255.255 --rsource --rcheck --seconds 600 --reap -j {e1}"
            ),
            format!("-A {svc} {c} -m statistic --mode random --probability 0.5000000000 -j {e0}"),
            format!("-A {svc} {c} -j {e1}"),
            format!(
                "-A {e0} -p udp {c} -m recent --name {e0} --mask 255.255.255.255 --rsource --set -m udp -j DNAT --to-destination 10.20.0.2:53"
            ),
        ] {
            assert!(
                text.contains(&format!("{rule}\n")),
                "{rule}\nnot in\n{text}"
            );
        }
        let recent_checks = text.find("--rcheck").unwrap();
        assert!(recent_checks < text.find("statistic").unwrap(), "{text}");
    }

    #[test]
    fn ports_without_endpoints_are_rejected() {
        let chains = Chains::new("n1");
        let mut web = port("web", Protocol::Tcp, &[]);
        web.node_port = Some(30080);
        let mut dns = port("dns", Protocol::Udp, &[]);
        dns.cluster_ip = None;
        dns.node_port = Some(30053);
        let text = render_kernel(&chains, &[dns, web], &[], cluster()).restore_input(&[]);
        assert_eq!(
            text,
            "*nat
:HORTATOR-SVC-n1 - [0:0]
:HORTATOR-NP-n1 - [0:0]
:HORTATOR-SMASQ-n1 - [0:0]
-A HORTATOR-SMASQ-n1 -m mark --mark 0x4000/0x4000 -m comment --comment \"hortator service traffic requiring SNAT\" -j MASQUERADE
-A HORTATOR-SVC-n1 -m comment --comment \"hortator node ports\" -j HORTATOR-NP-n1
COMMIT
*filter
:HORTATOR-NOEP-n1 - [0:0]
-A HORTATOR-NOEP-n1 -m addrtype --dst-type LOCAL -p udp -m comment --comment \"default/dns:http/udp has no endpoints\" -m udp --dport 30053 -j REJECT --reject-with icmp-port-unreachable
-A HORTATOR-NOEP-n1 -d 10.254.0.7/32 -p tcp -m comment --comment \"default/web:http has no endpoints\" -m tcp --dport 80 -j REJECT --reject-with tcp-reset
-A HORTATOR-NOEP-n1 -m addrtype --dst-type LOCAL -p tcp -m comment --comment \"default/web:http has no endpoints\" -m tcp --dport 30080 -j REJECT --reject-with tcp-reset
COMMIT
"
        );
    }

    #[test]
    fn userspace_rules_redirect_and_stale_chains_go() {
        let chains = Chains::new("n1");
        let web = port("web", Protocol::Tcp, &["10.20.0.2:8080"]);
        let mut headless = port("nodeport-only", Protocol::Udp, &[]);
        headless.cluster_ip = None;
        headless.node_port = Some(30053);
        let stale = vec![chains.service_chain(&web.key)];
        let text =
            render_userspace(&chains, [(&web, 41000), (&headless, 41001)]).restore_input(&stale);
        assert_eq!(
            text,
            format!(
                "*nat
:HORTATOR-SVC-n1 - [0:0]
:HORTATOR-NP-n1 - [0:0]
:HORTATOR-SMASQ-n1 - [0:0]
:{s} - [0:0]
-A HORTATOR-SMASQ-n1 -m mark --mark 0x4000/0x4000 -m comment --comment \"hortator service traffic requiring SNAT\" -j MASQUERADE
-A HORTATOR-SVC-n1 -d 10.254.0.7/32 -p tcp -m comment --comment \"default/web:http\" -m tcp --dport 80 -j REDIRECT --to-ports 41000
-A HORTATOR-SVC-n1 -m comment --comment \"hortator node ports\" -j HORTATOR-NP-n1
-X {s}
COMMIT
*filter
:HORTATOR-NOEP-n1 - [0:0]
COMMIT
",
                s = stale[0]
            )
        );
    }

    #[test]
    fn comments_are_tame() {
        assert_eq!(comment_text("a/b:c\" -j ACCEPT"), "a/b:c-jACCEPT");
    }
}
