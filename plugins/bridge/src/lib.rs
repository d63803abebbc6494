//! The built-in bridge network driver (`builtin:bridge`).
//!
//! * Node subnets: the first /24 of the cluster range that overlaps no
//!   allocated subnet.
//! * Pods: a node bridge holding the subnet's first address (the pods'
//!   gateway); per pod a veth pair `veth<first 11 letters and digits of the
//!   pod uid>` / `eth0` attached to it, the first free address from the
//!   subnet's second on, and a default route via the gateway. Traffic from
//!   the node subnet to outside the cluster range is masqueraded.
//! * Teardown deletes the host end of the veth pair (which deletes both).
//!
//! Configuration:
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `mtu` | MTU of the bridge and the veth pairs, 576–9000 | 1500 |
//! | `bridge` | name of the node bridge (agents sharing a machine need one each) | `"hbr0"` |
//! | `cluster-cidr` | the cluster's pod range, which is not masqueraded; must be the range the host passes | `"10.20.0.0/16"` |
//!
//! Any other key refuses the configuration.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use hortator_sdk::network::{
    Address, Attach, Bridge, LinkOp, Masquerade, Namespace, NetworkDriver, NetworkOp, NetworkPlan,
    PodRequest, Route, RouteOp, SubnetRequest, Veth,
};
use hortator_sdk::serde_json::Value;

/// The configuration keys this plugin reads.
const KEYS: [&str; 3] = ["mtu", "bridge", "cluster-cidr"];
const DEFAULT_BRIDGE: &str = "hbr0";
const DEFAULT_CLUSTER_CIDR: &str = "10.20.0.0/16";
const DEFAULT_MTU: u32 = 1500;
const POD_INTERFACE: &str = "eth0";

struct BridgeDriver {
    mtu: u32,
    bridge: String,
    cluster: Cidr,
}

impl NetworkDriver for BridgeDriver {
    fn init(config: Value) -> Result<Self, String> {
        let table = config
            .as_object()
            .ok_or_else(|| format!("the configuration must be a table, not {config}"))?;
        if let Some(unknown) = table.keys().find(|key| !KEYS.contains(&key.as_str())) {
            return Err(format!(
                "unknown configuration key {unknown:?} (known: {})",
                KEYS.join(", ")
            ));
        }
        let mtu = match table.get("mtu") {
            None => DEFAULT_MTU,
            Some(mtu) => mtu
                .as_u64()
                .and_then(|mtu| u32::try_from(mtu).ok())
                .filter(|mtu| (576..=9000).contains(mtu))
                .ok_or_else(|| format!("mtu must be an integer from 576 to 9000, not {mtu}"))?,
        };
        let bridge = match table.get("bridge") {
            None => DEFAULT_BRIDGE.to_owned(),
            Some(Value::String(name)) if is_link_name(name) => name.clone(),
            Some(other) => {
                return Err(format!(
                    "bridge must be an interface name (1 to 15 characters: letters, digits, '-', '_', '.'), not {other}"
                ));
            }
        };
        let cluster = match table.get("cluster-cidr") {
            None => Cidr::parse(DEFAULT_CLUSTER_CIDR)?,
            Some(Value::String(text)) => {
                Cidr::parse(text).map_err(|reason| format!("cluster-cidr: {reason}"))?
            }
            Some(other) => return Err(format!("cluster-cidr must be a string, not {other}")),
        };
        if cluster.prefix > 24 {
            return Err(format!("cluster-cidr {cluster} is smaller than a /24"));
        }
        Ok(BridgeDriver {
            mtu,
            bridge,
            cluster,
        })
    }

    fn node_subnet(&self, request: &SubnetRequest) -> Result<String, String> {
        let cluster = Cidr::parse(&request.cluster_cidr)?;
        if cluster != self.cluster {
            return Err(format!(
                "the cluster range is {cluster} but the bridge driver is configured for {} (set cluster-cidr in its configuration)",
                self.cluster
            ));
        }
        let allocated = request
            .allocated
            .iter()
            .map(|subnet| Cidr::parse(subnet))
            .collect::<Result<Vec<_>, _>>()?;
        (0..1u32 << (24 - cluster.prefix))
            .map(|index| Cidr {
                network: cluster.network | (index << 8),
                prefix: 24,
            })
            .find(|candidate| !allocated.iter().any(|taken| taken.overlaps(candidate)))
            .map(|subnet| subnet.to_string())
            .ok_or_else(|| format!("no free /24 left in {cluster}"))
    }

    fn setup_pod(&self, request: &PodRequest) -> Result<NetworkPlan, String> {
        let subnet = Cidr::parse(&request.node_subnet)?;
        if subnet.prefix > 30 {
            return Err(format!("node subnet {subnet} has no room for pods"));
        }
        if subnet.prefix < self.cluster.prefix || !self.cluster.overlaps(&subnet) {
            return Err(format!(
                "node subnet {subnet} is outside the cluster range {} (set cluster-cidr in the bridge driver's configuration)",
                self.cluster
            ));
        }
        let gateway = Ipv4Addr::from(subnet.network + 1);
        let used = request
            .allocated
            .iter()
            .map(|address| parse_address(address.split('/').next().unwrap_or_default()))
            .collect::<Result<BTreeSet<_>, _>>()?;
        let broadcast = subnet.network | !mask(subnet.prefix);
        let address = (subnet.network + 2..broadcast)
            .map(Ipv4Addr::from)
            .find(|candidate| !used.contains(candidate))
            .ok_or_else(|| format!("no free address left in {subnet}"))?;
        let host_veth = veth_name(&request.uid)?;
        let pod_cidr = format!("{address}/{}", subnet.prefix);
        let default_route = Route {
            destination: "0.0.0.0/0".into(),
            gateway: gateway.to_string(),
        };
        let up = |ns, device: &str| {
            NetworkOp::SetUp(LinkOp {
                ns,
                device: device.into(),
            })
        };
        let operations = vec![
            NetworkOp::EnsureBridge(Bridge {
                name: self.bridge.clone(),
                address: format!("{gateway}/{}", subnet.prefix),
                mtu: self.mtu,
            }),
            up(Namespace::Host, &self.bridge),
            NetworkOp::CreateVeth(Veth {
                host_name: host_veth.clone(),
                pod_name: POD_INTERFACE.into(),
                mtu: self.mtu,
            }),
            NetworkOp::AttachToBridge(Attach {
                device: host_veth.clone(),
                bridge: self.bridge.clone(),
            }),
            up(Namespace::Host, &host_veth),
            NetworkOp::AddAddress(Address {
                ns: Namespace::Pod,
                device: POD_INTERFACE.into(),
                cidr: pod_cidr.clone(),
            }),
            up(Namespace::Pod, POD_INTERFACE),
            NetworkOp::AddRoute(RouteOp {
                ns: Namespace::Pod,
                route: default_route.clone(),
                device: POD_INTERFACE.into(),
            }),
            NetworkOp::EnsureMasquerade(Masquerade {
                source: subnet.to_string(),
                except: self.cluster.to_string(),
            }),
        ];
        Ok(NetworkPlan {
            address: pod_cidr,
            gateway: gateway.to_string(),
            routes: vec![default_route],
            mtu: self.mtu,
            operations,
        })
    }

    fn teardown_pod(&self, request: &PodRequest) -> Result<Vec<NetworkOp>, String> {
        Ok(vec![NetworkOp::DeleteLink(LinkOp {
            ns: Namespace::Host,
            device: veth_name(&request.uid)?,
        })])
    }
}

hortator_sdk::export_network_driver!(BridgeDriver);

/// The host end of a pod's veth pair: `veth` and the first 11 letters and
/// digits of the pod's uid (15 characters, the longest interface name).
fn veth_name(uid: &str) -> Result<String, String> {
    let id: String = uid
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(11)
        .collect::<String>()
        .to_ascii_lowercase();
    if id.is_empty() {
        return Err(format!("pod uid {uid:?} has no letters or digits"));
    }
    Ok(format!("veth{id}"))
}

fn is_link_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn parse_address(text: &str) -> Result<Ipv4Addr, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not an IPv4 address"))
}

fn mask(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

/// An IPv4 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    network: u32,
    prefix: u8,
}

impl Cidr {
    fn parse(text: &str) -> Result<Self, String> {
        let invalid = || format!("{text:?} is not an IPv4 CIDR");
        let (address, prefix) = text.split_once('/').ok_or_else(invalid)?;
        let address = parse_address(address)?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|prefix| *prefix <= 32)
            .ok_or_else(invalid)?;
        Ok(Cidr {
            network: u32::from(address) & mask(prefix),
            prefix,
        })
    }

    fn overlaps(&self, other: &Cidr) -> bool {
        let common = mask(self.prefix.min(other.prefix));
        self.network & common == other.network & common
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.network), self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hortator_sdk::network::NodeInfo;
    use hortator_sdk::serde_json::json;

    fn node() -> NodeInfo {
        NodeInfo {
            name: "n1".into(),
            addresses: vec!["192.168.1.10".into()],
            labels: Vec::new(),
        }
    }

    fn driver(config: Value) -> BridgeDriver {
        BridgeDriver::init(config).unwrap()
    }

    fn subnet(config: Value, cluster: &str, allocated: &[&str]) -> Result<String, String> {
        driver(config).node_subnet(&SubnetRequest {
            node: node(),
            cluster_cidr: cluster.into(),
            allocated: allocated.iter().map(|s| (*s).to_owned()).collect(),
        })
    }

    fn pod(allocated: &[&str]) -> PodRequest {
        PodRequest {
            namespace: "default".into(),
            name: "p".into(),
            uid: "0123abcd-4567-89ef-0123-456789abcdef".into(),
            sandbox_id: "sandbox".into(),
            node: node(),
            node_subnet: "10.20.1.0/24".into(),
            allocated: allocated.iter().map(|s| (*s).to_owned()).collect(),
            address: String::new(),
        }
    }

    #[test]
    fn node_subnets() {
        let default = || json!({});
        assert_eq!(
            subnet(default(), "10.20.0.0/16", &[]).unwrap(),
            "10.20.0.0/24"
        );
        assert_eq!(
            subnet(default(), "10.20.0.0/16", &["10.20.0.0/24", "10.20.2.0/24"]).unwrap(),
            "10.20.1.0/24"
        );
        // A larger allocation covers several /24s.
        assert_eq!(
            subnet(default(), "10.20.0.0/16", &["10.20.0.0/23"]).unwrap(),
            "10.20.2.0/24"
        );
        let small = || json!({"cluster-cidr": "10.0.0.0/24"});
        assert_eq!(subnet(small(), "10.0.0.0/24", &[]).unwrap(), "10.0.0.0/24");
        assert_eq!(
            subnet(small(), "10.0.0.0/24", &["10.0.0.0/24"]).unwrap_err(),
            "no free /24 left in 10.0.0.0/24"
        );
        assert_eq!(
            subnet(default(), "10.244.0.0/16", &[]).unwrap_err(),
            "the cluster range is 10.244.0.0/16 but the bridge driver is configured for 10.20.0.0/16 (set cluster-cidr in its configuration)"
        );
        assert!(subnet(default(), "not a cidr", &[]).is_err());
    }

    #[test]
    fn setup_plan() {
        let driver = driver(json!({"mtu": 1450, "bridge": "br-test"}));
        let plan = driver
            .setup_pod(&pod(&["10.20.1.2", "10.20.1.3/24"]))
            .unwrap();
        assert_eq!(plan.address, "10.20.1.4/24");
        assert_eq!(plan.gateway, "10.20.1.1");
        assert_eq!(plan.mtu, 1450);
        let default_route = Route {
            destination: "0.0.0.0/0".into(),
            gateway: "10.20.1.1".into(),
        };
        assert_eq!(plan.routes, vec![default_route.clone()]);
        let link = |ns, device: &str| LinkOp {
            ns,
            device: device.into(),
        };
        assert_eq!(
            plan.operations,
            vec![
                NetworkOp::EnsureBridge(Bridge {
                    name: "br-test".into(),
                    address: "10.20.1.1/24".into(),
                    mtu: 1450
                }),
                NetworkOp::SetUp(link(Namespace::Host, "br-test")),
                NetworkOp::CreateVeth(Veth {
                    host_name: "veth0123abcd456".into(),
                    pod_name: "eth0".into(),
                    mtu: 1450
                }),
                NetworkOp::AttachToBridge(Attach {
                    device: "veth0123abcd456".into(),
                    bridge: "br-test".into()
                }),
                NetworkOp::SetUp(link(Namespace::Host, "veth0123abcd456")),
                NetworkOp::AddAddress(Address {
                    ns: Namespace::Pod,
                    device: "eth0".into(),
                    cidr: "10.20.1.4/24".into()
                }),
                NetworkOp::SetUp(link(Namespace::Pod, "eth0")),
                NetworkOp::AddRoute(RouteOp {
                    ns: Namespace::Pod,
                    route: default_route,
                    device: "eth0".into()
                }),
                NetworkOp::EnsureMasquerade(Masquerade {
                    source: "10.20.1.0/24".into(),
                    except: "10.20.0.0/16".into()
                }),
            ]
        );
        let plan = BridgeDriver::init(json!({}))
            .unwrap()
            .setup_pod(&pod(&[]))
            .unwrap();
        assert_eq!(plan.mtu, 1500);
        assert_eq!(plan.address, "10.20.1.2/24");
        assert!(matches!(&plan.operations[0], NetworkOp::EnsureBridge(b) if b.name == "hbr0"));
    }

    #[test]
    fn configuration_is_checked() {
        let err = |config| BridgeDriver::init(config).err().unwrap();
        assert_eq!(
            err(json!({"mtu": 1500, "bridg": "x"})),
            "unknown configuration key \"bridg\" (known: mtu, bridge, cluster-cidr)"
        );
        assert_eq!(
            err(json!({"mtu": 20})),
            "mtu must be an integer from 576 to 9000, not 20"
        );
        assert!(err(json!({"bridge": "a-name-far-too-long"})).starts_with("bridge must be"));
        assert!(err(json!({"bridge": 7})).starts_with("bridge must be"));
        assert_eq!(
            err(json!({"cluster-cidr": "10.0.0.0/25"})),
            "cluster-cidr 10.0.0.0/25 is smaller than a /24"
        );
        assert!(err(json!({"cluster-cidr": "ten"})).starts_with("cluster-cidr: "));
        assert!(err(json!([])).starts_with("the configuration must be a table"));
    }

    #[test]
    fn subnets_outside_the_cluster_and_full_subnets() {
        let driver = driver(json!({}));
        let mut outside = pod(&[]);
        outside.node_subnet = "10.30.1.0/24".into();
        assert!(
            driver
                .setup_pod(&outside)
                .unwrap_err()
                .starts_with("node subnet 10.30.1.0/24 is outside the cluster range 10.20.0.0/16")
        );
        let mut small = pod(&["10.20.1.2"]);
        small.node_subnet = "10.20.1.0/30".into();
        assert_eq!(
            driver.setup_pod(&small).unwrap_err(),
            "no free address left in 10.20.1.0/30"
        );
    }

    #[test]
    fn teardown_deletes_the_host_veth() {
        assert_eq!(
            driver(json!({})).teardown_pod(&pod(&[])).unwrap(),
            vec![NetworkOp::DeleteLink(LinkOp {
                ns: Namespace::Host,
                device: "veth0123abcd456".into()
            })]
        );
        let mut nameless = pod(&[]);
        nameless.uid = "--".into();
        assert!(driver(json!({})).teardown_pod(&nameless).is_err());
    }
}
