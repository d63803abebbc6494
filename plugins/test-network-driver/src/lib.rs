//! A bridge network driver for the host's tests.
//!
//! * Node subnets: the first /24 of the cluster CIDR that overlaps no
//!   allocated subnet.
//! * Pods: bridge `hbr0` holding the subnet's first address (the gateway), a
//!   veth pair `veth<first 8 characters of the pod uid>` / `eth0`, the first
//!   free address from the subnet's second on, and a default route via the
//!   gateway.
//! * Configuration: `mtu` (default 1500).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use hortator_sdk::network::{
    Address, Attach, Bridge, LinkOp, Namespace, NetworkDriver, NetworkOp, NetworkPlan, PodRequest,
    Route, RouteOp, SubnetRequest, Veth,
};
use hortator_sdk::serde_json::Value;

const BRIDGE: &str = "hbr0";
const POD_INTERFACE: &str = "eth0";
const DEFAULT_MTU: u32 = 1500;

struct BridgeDriver {
    mtu: u32,
}

impl NetworkDriver for BridgeDriver {
    fn init(config: Value) -> Result<Self, String> {
        let mtu = match config.get("mtu") {
            None => DEFAULT_MTU,
            Some(mtu) => mtu
                .as_u64()
                .and_then(|mtu| u32::try_from(mtu).ok())
                .filter(|mtu| (68..=65535).contains(mtu))
                .ok_or_else(|| format!("mtu must be an integer from 68 to 65535, not {mtu}"))?,
        };
        Ok(BridgeDriver { mtu })
    }

    fn node_subnet(&self, request: &SubnetRequest) -> Result<String, String> {
        let cluster = Cidr::parse(&request.cluster_cidr)?;
        if cluster.prefix > 24 {
            return Err(format!(
                "cluster CIDR {} is smaller than a /24",
                request.cluster_cidr
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
            .ok_or_else(|| format!("no free /24 left in {}", request.cluster_cidr))
    }

    fn setup_pod(&self, request: &PodRequest) -> Result<NetworkPlan, String> {
        let subnet = Cidr::parse(&request.node_subnet)?;
        if subnet.prefix > 30 {
            return Err(format!("node subnet {subnet} has no room for pods"));
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
        let link = |ns, device: &str| LinkOp {
            ns,
            device: device.into(),
        };
        let operations = vec![
            NetworkOp::EnsureBridge(Bridge {
                name: BRIDGE.into(),
                address: format!("{gateway}/{}", subnet.prefix),
                mtu: self.mtu,
            }),
            NetworkOp::SetUp(link(Namespace::Host, BRIDGE)),
            NetworkOp::CreateVeth(Veth {
                host_name: host_veth.clone(),
                pod_name: POD_INTERFACE.into(),
                mtu: self.mtu,
            }),
            NetworkOp::AttachToBridge(Attach {
                device: host_veth.clone(),
                bridge: BRIDGE.into(),
            }),
            NetworkOp::SetUp(link(Namespace::Host, &host_veth)),
            NetworkOp::AddAddress(Address {
                ns: Namespace::Pod,
                device: POD_INTERFACE.into(),
                cidr: pod_cidr.clone(),
            }),
            NetworkOp::SetUp(link(Namespace::Pod, POD_INTERFACE)),
            NetworkOp::AddRoute(RouteOp {
                ns: Namespace::Pod,
                route: default_route.clone(),
                device: POD_INTERFACE.into(),
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

/// The host end of a pod's veth pair.
fn veth_name(uid: &str) -> Result<String, String> {
    if uid.is_empty() {
        return Err("the pod has no uid".into());
    }
    Ok(format!("veth{}", uid.chars().take(8).collect::<String>()))
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

    fn subnet(cluster: &str, allocated: &[&str]) -> Result<String, String> {
        BridgeDriver::init(json!({}))
            .unwrap()
            .node_subnet(&SubnetRequest {
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
            node_subnet: "10.244.1.0/24".into(),
            allocated: allocated.iter().map(|s| (*s).to_owned()).collect(),
            address: String::new(),
        }
    }

    #[test]
    fn node_subnets() {
        assert_eq!(subnet("10.244.0.0/16", &[]).unwrap(), "10.244.0.0/24");
        assert_eq!(
            subnet("10.244.0.0/16", &["10.244.0.0/24", "10.244.2.0/24"]).unwrap(),
            "10.244.1.0/24"
        );
        // A larger allocation covers several /24s.
        assert_eq!(
            subnet("10.244.0.0/16", &["10.244.0.0/23"]).unwrap(),
            "10.244.2.0/24"
        );
        assert_eq!(subnet("10.0.0.0/24", &[]).unwrap(), "10.0.0.0/24");
        assert!(subnet("10.0.0.0/24", &["10.0.0.0/24"]).is_err());
        assert!(subnet("10.0.0.0/25", &[]).is_err());
        assert!(subnet("not a cidr", &[]).is_err());
    }

    #[test]
    fn setup_plan() {
        let driver = BridgeDriver::init(json!({"mtu": 1450})).unwrap();
        let plan = driver
            .setup_pod(&pod(&["10.244.1.2", "10.244.1.3/24"]))
            .unwrap();
        assert_eq!(plan.address, "10.244.1.4/24");
        assert_eq!(plan.gateway, "10.244.1.1");
        assert_eq!(plan.mtu, 1450);
        assert_eq!(
            plan.routes,
            vec![Route {
                destination: "0.0.0.0/0".into(),
                gateway: "10.244.1.1".into()
            }]
        );
        assert_eq!(
            plan.operations[0],
            NetworkOp::EnsureBridge(Bridge {
                name: "hbr0".into(),
                address: "10.244.1.1/24".into(),
                mtu: 1450
            })
        );
        assert!(plan.operations.contains(&NetworkOp::CreateVeth(Veth {
            host_name: "veth0123abcd".into(),
            pod_name: "eth0".into(),
            mtu: 1450
        })));
        assert_eq!(
            plan.operations.last(),
            Some(&NetworkOp::AddRoute(RouteOp {
                ns: Namespace::Pod,
                route: plan.routes[0].clone(),
                device: "eth0".into()
            }))
        );
        assert_eq!(
            BridgeDriver::init(json!({}))
                .unwrap()
                .setup_pod(&pod(&[]))
                .unwrap()
                .mtu,
            1500
        );
        assert!(BridgeDriver::init(json!({"mtu": 20})).is_err());
    }

    #[test]
    fn full_subnet_and_teardown() {
        let driver = BridgeDriver::init(json!({})).unwrap();
        let mut small = pod(&["10.244.1.2"]);
        small.node_subnet = "10.244.1.0/30".into();
        assert_eq!(
            driver.setup_pod(&small).unwrap_err(),
            "no free address left in 10.244.1.0/30"
        );
        assert_eq!(
            driver.teardown_pod(&pod(&[])).unwrap(),
            vec![NetworkOp::DeleteLink(LinkOp {
                ns: Namespace::Host,
                device: "veth0123abcd".into()
            })]
        );
    }
}
