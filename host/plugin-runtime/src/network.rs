//! The network-driver world: subnets per node and network plans per pod,
//! which the host validates here before anything is applied.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::bindings::network_driver::{NetworkDriver, NetworkDriverPre};
use crate::core::{Core, plugin_accessors, world_binding};
use crate::error::{CallError, LoadError};
use crate::runtime::Runtime;
use crate::settings::PluginSettings;

pub use crate::bindings::network_driver::hortator::plugin::network_types::{
    Address, Attach, Bridge, LinkOp, Masquerade, Namespace, NetworkOp, NetworkPlan, NodeInfo,
    PodRequest, Route, RouteOp, SubnetRequest, Veth, Vxlan, VxlanPeer,
};

world_binding!(NetworkDriver, NetworkDriverPre, "network-driver");

/// Why the driver could not produce a usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    /// The plugin failed (trap, timeout, memory) or its plan is invalid.
    #[error("network driver failed: {0}")]
    Plugin(#[from] CallError),
    /// The plugin returned an error of its own.
    #[error("{0}")]
    Declined(String),
}

/// A loaded network-driver plugin.
pub struct NetworkDriverPlugin {
    core: Core<NetworkDriver>,
}

impl NetworkDriverPlugin {
    /// Load, check and initialise a component.
    pub fn load(
        runtime: &Runtime,
        settings: PluginSettings,
        source: String,
        bytes: &[u8],
    ) -> Result<Self, LoadError> {
        Ok(NetworkDriverPlugin {
            core: Core::load(runtime, settings, source, bytes, None)?,
        })
    }

    /// Choose a node's pod subnet: inside the cluster range, overlapping no
    /// allocated subnet.
    pub fn node_subnet(&self, request: &SubnetRequest) -> Result<Ipv4Net, NetworkError> {
        let subnet = self
            .core
            .call(|world, store| world.call_node_subnet(store, request))?
            .map_err(NetworkError::Declined)?;
        self.checked(check_subnet(request, &subnet))
    }

    /// Plan a pod's network; every address, name and operation is checked.
    pub fn setup_pod(&self, request: &PodRequest) -> Result<NetworkPlan, NetworkError> {
        let plan = self
            .core
            .call(|world, store| world.call_setup_pod(store, request))?
            .map_err(NetworkError::Declined)?;
        self.checked(check_plan(request, &plan).map(|()| plan))
    }

    /// Plan the removal of a pod's network.
    pub fn teardown_pod(&self, request: &PodRequest) -> Result<Vec<NetworkOp>, NetworkError> {
        let ops = self
            .core
            .call(|world, store| world.call_teardown_pod(store, request))?
            .map_err(NetworkError::Declined)?;
        self.checked(ops.iter().try_for_each(check_op).map(|()| ops))
    }

    fn checked<T>(&self, result: Result<T, String>) -> Result<T, NetworkError> {
        result.map_err(|reason| {
            let err = CallError::Malformed(reason);
            self.core.record_malformed(&err);
            NetworkError::Plugin(err)
        })
    }

    plugin_accessors!();
}

fn net(text: &str, what: &str) -> Result<Ipv4Net, String> {
    text.parse()
        .map_err(|_| format!("{what} {text:?} is not an IPv4 CIDR"))
}

fn addr(text: &str, what: &str) -> Result<Ipv4Addr, String> {
    text.parse()
        .map_err(|_| format!("{what} {text:?} is not an IPv4 address"))
}

fn check_subnet(request: &SubnetRequest, subnet: &str) -> Result<Ipv4Net, String> {
    let cluster = net(&request.cluster_cidr, "cluster range")?;
    let subnet = net(subnet, "node subnet")?;
    if subnet != subnet.trunc() {
        return Err(format!("node subnet {subnet} has host bits set"));
    }
    if !cluster.contains(&subnet) {
        return Err(format!(
            "node subnet {subnet} is outside the cluster range {cluster}"
        ));
    }
    for taken in &request.allocated {
        let taken = net(taken, "allocated subnet")?;
        if taken.contains(&subnet.network()) || subnet.contains(&taken.network()) {
            return Err(format!(
                "node subnet {subnet} overlaps {taken}, already allocated"
            ));
        }
    }
    Ok(subnet)
}

/// Linux interface names: 1–15 bytes, no '/', ':' or whitespace.
fn check_link_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(format!("{name:?} is not a valid interface name"))
    }
}

fn check_mtu(mtu: u32) -> Result<(), String> {
    if (576..=9000).contains(&mtu) {
        Ok(())
    } else {
        Err(format!("MTU {mtu} is outside 576..=9000"))
    }
}

fn check_route(route: &Route) -> Result<(), String> {
    net(&route.destination, "route destination")?;
    if !route.gateway.is_empty() {
        addr(&route.gateway, "route gateway")?;
    }
    Ok(())
}

fn check_op(op: &NetworkOp) -> Result<(), String> {
    match op {
        NetworkOp::EnsureBridge(b) => {
            check_link_name(&b.name)?;
            net(&b.address, "bridge address")?;
            check_mtu(b.mtu)
        }
        NetworkOp::CreateVeth(v) => {
            check_link_name(&v.host_name)?;
            check_link_name(&v.pod_name)?;
            check_mtu(v.mtu)
        }
        NetworkOp::AttachToBridge(a) => {
            check_link_name(&a.device)?;
            check_link_name(&a.bridge)
        }
        NetworkOp::AddAddress(a) => {
            check_link_name(&a.device)?;
            net(&a.cidr, "address").map(drop)
        }
        NetworkOp::SetUp(l) | NetworkOp::DeleteLink(l) => check_link_name(&l.device),
        NetworkOp::AddRoute(r) => {
            if !r.device.is_empty() {
                check_link_name(&r.device)?;
            }
            check_route(&r.route)
        }
        NetworkOp::EnsureVxlan(v) => {
            check_link_name(&v.name)?;
            addr(&v.local, "VXLAN local address")?;
            if v.vni == 0 || v.vni >= 1 << 24 {
                return Err(format!("VNI {} is outside 1..2^24", v.vni));
            }
            check_mtu(v.mtu)
        }
        NetworkOp::AddVxlanPeer(p) => {
            check_link_name(&p.device)?;
            net(&p.destination, "peer subnet")?;
            addr(&p.remote, "peer address").map(drop)
        }
        NetworkOp::EnsureMasquerade(m) => {
            net(&m.source, "masquerade source")?;
            net(&m.except, "masquerade exception").map(drop)
        }
    }
}

fn check_plan(request: &PodRequest, plan: &NetworkPlan) -> Result<(), String> {
    let subnet = net(&request.node_subnet, "node subnet")?;
    let address = net(&plan.address, "pod address")?;
    if address.prefix_len() != subnet.prefix_len() || !subnet.contains(&address.addr()) {
        return Err(format!(
            "pod address {address} is not in the node subnet {subnet}"
        ));
    }
    if address.addr() == subnet.network() || address.addr() == subnet.broadcast() {
        return Err(format!(
            "pod address {address} is the subnet's network or broadcast address"
        ));
    }
    let gateway = addr(&plan.gateway, "gateway")?;
    if !subnet.contains(&gateway) || gateway == address.addr() {
        return Err(format!(
            "gateway {gateway} must be another address of {subnet}"
        ));
    }
    for used in &request.allocated {
        let used_addr = used.split('/').next().unwrap_or_default();
        if addr(used_addr, "allocated address")? == address.addr() {
            return Err(format!(
                "pod address {} is already used on this node",
                address.addr()
            ));
        }
    }
    check_mtu(plan.mtu)?;
    plan.routes.iter().try_for_each(check_route)?;
    plan.operations.iter().try_for_each(check_op)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeInfo {
        NodeInfo {
            name: "n1".into(),
            addresses: vec!["192.168.1.2".into()],
            labels: vec![],
        }
    }

    fn pod_request() -> PodRequest {
        PodRequest {
            namespace: "default".into(),
            name: "p".into(),
            uid: "u".into(),
            sandbox_id: "s".into(),
            node: node(),
            node_subnet: "10.244.1.0/24".into(),
            allocated: vec!["10.244.1.2".into()],
            address: String::new(),
        }
    }

    fn plan(address: &str, gateway: &str, veth: &str) -> NetworkPlan {
        NetworkPlan {
            address: address.into(),
            gateway: gateway.into(),
            routes: vec![Route {
                destination: "0.0.0.0/0".into(),
                gateway: gateway.into(),
            }],
            mtu: 1500,
            operations: vec![NetworkOp::CreateVeth(Veth {
                host_name: veth.into(),
                pod_name: "eth0".into(),
                mtu: 1500,
            })],
        }
    }

    #[test]
    fn plans_are_validated() {
        let req = pod_request();
        assert_eq!(
            check_plan(&req, &plan("10.244.1.3/24", "10.244.1.1", "veth1")),
            Ok(())
        );
        assert!(
            check_plan(&req, &plan("10.244.1.2/24", "10.244.1.1", "veth1"))
                .unwrap_err()
                .contains("already used")
        );
        assert!(
            check_plan(&req, &plan("10.244.2.3/24", "10.244.1.1", "veth1"))
                .unwrap_err()
                .contains("not in the node subnet")
        );
        assert!(check_plan(&req, &plan("10.244.1.255/24", "10.244.1.1", "veth1")).is_err());
        assert!(check_plan(&req, &plan("10.244.1.3/24", "10.9.9.9", "veth1")).is_err());
        assert!(
            check_plan(
                &req,
                &plan("10.244.1.3/24", "10.244.1.1", "a-name-that-is-too-long")
            )
            .is_err()
        );
        assert!(check_plan(&req, &plan("nonsense", "10.244.1.1", "veth1")).is_err());
    }

    #[test]
    fn subnets_are_validated() {
        let req = SubnetRequest {
            node: node(),
            cluster_cidr: "10.244.0.0/16".into(),
            allocated: vec!["10.244.0.0/24".into()],
        };
        assert!(check_subnet(&req, "10.244.1.0/24").is_ok());
        assert!(
            check_subnet(&req, "10.244.0.0/24")
                .unwrap_err()
                .contains("overlaps")
        );
        assert!(
            check_subnet(&req, "10.245.0.0/24")
                .unwrap_err()
                .contains("outside")
        );
        assert!(
            check_subnet(&req, "10.244.1.1/24")
                .unwrap_err()
                .contains("host bits")
        );
    }
}
