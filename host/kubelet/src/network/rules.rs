//! This agent's iptables rules, in three chains of its own:
//!
//! * `HORTATOR-HP-<suffix>` (nat, jumped to from PREROUTING and OUTPUT):
//!   host ports, DNAT from a node address to the pod;
//! * `HORTATOR-MASQ-<suffix>` (nat, from POSTROUTING): the driver's
//!   masquerades, and host-port traffic from loopback addresses or from the
//!   node's own pods (which could not otherwise be answered);
//! * `HORTATOR-FWD-<suffix>` (filter, from FORWARD): pod bridges are
//!   forwarded (Docker sets FORWARD's policy to DROP).
//!
//! The chains' contents are always rendered whole from the recorded pods and
//! swapped in atomically by `iptables-restore --noflush`.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use hortator_netfilter::{MAX_CHAIN_NAME, restore};

use super::PodState;

/// The suffix gets what the longest prefix leaves of a chain name.
const MAX_SUFFIX: usize = MAX_CHAIN_NAME - "HORTATOR-MASQ-".len();

pub(super) struct Rules {
    iptables: iptables::IPTables,
    hostports: String,
    masquerade: String,
    forward: String,
}

impl Rules {
    pub(super) fn new(suffix: &str) -> Result<Self, String> {
        let mut iptables = iptables::new(false).map_err(|e| format!("run iptables: {e}"))?;
        iptables.set_numeric(true);
        let suffix = hortator_netfilter::chain_suffix(suffix, MAX_SUFFIX);
        Ok(Rules {
            iptables,
            hostports: format!("HORTATOR-HP-{suffix}"),
            masquerade: format!("HORTATOR-MASQ-{suffix}"),
            forward: format!("HORTATOR-FWD-{suffix}"),
        })
    }

    /// (table, built-in chain, our chain) for every jump.
    fn jumps(&self) -> [(&'static str, &'static str, &str); 4] {
        [
            ("nat", "PREROUTING", &self.hostports),
            ("nat", "OUTPUT", &self.hostports),
            ("nat", "POSTROUTING", &self.masquerade),
            ("filter", "FORWARD", &self.forward),
        ]
    }

    /// The `iptables-restore` input that gives the chains exactly the rules
    /// `pods` need; `node_addresses` publish host ports without a host IP.
    pub(super) fn render<'a>(
        &self,
        pods: impl IntoIterator<Item = &'a PodState>,
        node_addresses: &[Ipv4Addr],
    ) -> String {
        let mut hostports = BTreeSet::new();
        let mut masquerade = BTreeSet::new();
        let mut forward = BTreeSet::new();
        for pod in pods {
            let comment = format!("-m comment --comment \"{}/{}\"", pod.namespace, pod.name);
            for (source, except) in &pod.masquerade {
                masquerade.insert(format!("-s {source} ! -d {except} -j MASQUERADE"));
            }
            for bridge in &pod.bridges {
                forward.insert(format!("-i {bridge} -j ACCEPT"));
                forward.insert(format!("-o {bridge} -j ACCEPT"));
            }
            let address = pod.address.addr();
            for port in &pod.host_ports {
                let protocol = port.protocol.as_str();
                let destinations = match port.host_ip {
                    Some(ip) if !ip.is_unspecified() => vec![ip],
                    _ => node_addresses.to_vec(),
                };
                for destination in destinations {
                    hostports.insert(format!(
                        "-d {destination}/32 -p {protocol} -m {protocol} --dport {} {comment} -j DNAT --to-destination {address}:{}",
                        port.host_port, port.container_port
                    ));
                }
                for source in ["127.0.0.0/8".to_string(), pod.address.trunc().to_string()] {
                    masquerade.insert(format!(
                        "-s {source} -d {address}/32 -p {protocol} -m {protocol} --dport {} -m conntrack --ctstate DNAT {comment} -j MASQUERADE",
                        port.container_port
                    ));
                }
            }
        }
        let chain = |name: &str, rules: &BTreeSet<String>| {
            let mut text = String::new();
            for rule in rules {
                text += &format!("-A {name} {rule}\n");
            }
            text
        };
        format!(
            "*nat\n:{hp} - [0:0]\n:{masq} - [0:0]\n{}{}COMMIT\n*filter\n:{fwd} - [0:0]\n{}COMMIT\n",
            chain(&self.hostports, &hostports),
            chain(&self.masquerade, &masquerade),
            chain(&self.forward, &forward),
            hp = self.hostports,
            masq = self.masquerade,
            fwd = self.forward,
        )
    }

    /// Sets the chains to `rules` (from [`Rules::render`]), creating them if
    /// needed, and adds each missing jump to them.
    pub(super) fn apply(&self, rules: &str) -> Result<(), String> {
        restore(rules).map_err(|e| e.to_string())?;
        for (table, chain, target) in self.jumps() {
            let rule = format!("-j {target}");
            let present = self
                .iptables
                .exists(table, chain, &rule)
                .map_err(|e| format!("check {table} {chain} {rule}: {e}"))?;
            if !present {
                self.iptables
                    .insert(table, chain, &rule, 1)
                    .map_err(|e| format!("insert {table} {chain} {rule}: {e}"))?;
            }
        }
        Ok(())
    }

    /// Removes the jumps and the chains; what is already gone is fine.
    pub(super) fn remove(&self) -> Result<(), String> {
        for (table, chain, target) in self.jumps() {
            let rule = format!("-j {target}");
            self.iptables
                .delete_all(table, chain, &rule)
                .map_err(|e| format!("delete {table} {chain} {rule}: {e}"))?;
        }
        for (table, chain) in [
            ("nat", &self.hostports),
            ("nat", &self.masquerade),
            ("filter", &self.forward),
        ] {
            let exists = self
                .iptables
                .chain_exists(table, chain)
                .map_err(|e| format!("look up {table} {chain}: {e}"))?;
            if exists {
                self.iptables
                    .flush_chain(table, chain)
                    .and_then(|()| self.iptables.delete_chain(table, chain))
                    .map_err(|e| format!("delete {table} {chain}: {e}"))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{HostPortMapping, NetnsId, Protocol};
    use super::*;

    fn pod(name: &str, address: &str, host_ports: Vec<HostPortMapping>) -> PodState {
        PodState {
            namespace: "default".into(),
            name: name.into(),
            uid: name.into(),
            sandbox_id: "sandbox".into(),
            netns: NetnsId {
                pid: 1,
                dev: 2,
                ino: 3,
            },
            address: address.parse().unwrap(),
            gateway: Ipv4Addr::new(10, 20, 1, 1),
            links: vec![format!("veth{name}")],
            bridges: vec!["hbr0".into()],
            masquerade: vec![(
                "10.20.1.0/24".parse().unwrap(),
                "10.20.0.0/16".parse().unwrap(),
            )],
            host_ports,
        }
    }

    #[test]
    fn chains_are_rendered_whole_from_the_pods() {
        let rules = Rules::new("n1").unwrap();
        let web = pod(
            "web",
            "10.20.1.2/24",
            vec![HostPortMapping {
                host_ip: None,
                host_port: 8080,
                container_port: 80,
                protocol: Protocol::Tcp,
            }],
        );
        let dns = pod(
            "dns",
            "10.20.1.3/24",
            vec![HostPortMapping {
                host_ip: Some(Ipv4Addr::new(127, 0, 0, 5)),
                host_port: 53,
                container_port: 5353,
                protocol: Protocol::Udp,
            }],
        );
        let nodes = [Ipv4Addr::new(192, 168, 1, 10), Ipv4Addr::new(127, 0, 0, 2)];
        assert_eq!(
            rules.render([&web, &dns], &nodes),
            "*nat
:HORTATOR-HP-n1 - [0:0]
:HORTATOR-MASQ-n1 - [0:0]
-A HORTATOR-HP-n1 -d 127.0.0.2/32 -p tcp -m tcp --dport 8080 -m comment --comment \"default/web\" -j DNAT --to-destination 10.20.1.2:80
-A HORTATOR-HP-n1 -d 127.0.0.5/32 -p udp -m udp --dport 53 -m comment --comment \"default/dns\" -j DNAT --to-destination 10.20.1.3:5353
-A HORTATOR-HP-n1 -d 192.168.1.10/32 -p tcp -m tcp --dport 8080 -m comment --comment \"default/web\" -j DNAT --to-destination 10.20.1.2:80
-A HORTATOR-MASQ-n1 -s 10.20.1.0/24 ! -d 10.20.0.0/16 -j MASQUERADE
-A HORTATOR-MASQ-n1 -s 10.20.1.0/24 -d 10.20.1.2/32 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -m comment --comment \"default/web\" -j MASQUERADE
-A HORTATOR-MASQ-n1 -s 10.20.1.0/24 -d 10.20.1.3/32 -p udp -m udp --dport 5353 -m conntrack --ctstate DNAT -m comment --comment \"default/dns\" -j MASQUERADE
-A HORTATOR-MASQ-n1 -s 127.0.0.0/8 -d 10.20.1.2/32 -p tcp -m tcp --dport 80 -m conntrack --ctstate DNAT -m comment --comment \"default/web\" -j MASQUERADE
-A HORTATOR-MASQ-n1 -s 127.0.0.0/8 -d 10.20.1.3/32 -p udp -m udp --dport 5353 -m conntrack --ctstate DNAT -m comment --comment \"default/dns\" -j MASQUERADE
COMMIT
*filter
:HORTATOR-FWD-n1 - [0:0]
-A HORTATOR-FWD-n1 -i hbr0 -j ACCEPT
-A HORTATOR-FWD-n1 -o hbr0 -j ACCEPT
COMMIT
"
        );
        assert_eq!(
            rules.render([], &nodes),
            "*nat\n:HORTATOR-HP-n1 - [0:0]\n:HORTATOR-MASQ-n1 - [0:0]\nCOMMIT\n*filter\n:HORTATOR-FWD-n1 - [0:0]\nCOMMIT\n"
        );
    }
}
