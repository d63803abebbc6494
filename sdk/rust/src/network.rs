//! Network drivers: give nodes pod subnets and wire pods into the network.
//!
//! A driver only decides: it returns plans — lists of [`NetworkOp`]s such as
//! "ensure bridge", "create veth", "add route" — and the host validates and
//! applies them. Addresses are text (`"10.244.1.7"`, `"10.244.1.0/24"`).
//!
//! Implement [`NetworkDriver`] and export it with [`export_network_driver!`].
//!
//! [`export_network_driver!`]: crate::export_network_driver

use serde_json::Value;

pub use crate::KeyValue;
pub use crate::bindings::network_driver::hortator::plugin::network_types::{
    Address, Attach, Bridge, LinkOp, Masquerade, Namespace, NetworkOp, NetworkPlan, NodeInfo,
    PodRequest, Route, RouteOp, SubnetRequest, Veth, Vxlan, VxlanPeer,
};

/// A pod network driver.
///
/// The host calls [`NetworkDriver::init`] once, then the other methods as
/// nodes join and pods start and stop; calls never overlap. The host passes
/// what is already allocated with every request, so a driver needs no state
/// of its own.
pub trait NetworkDriver: Sized + 'static {
    /// Builds the driver from its configuration: the plugin's TOML table as
    /// JSON, an empty object when there is none. An error refuses the plugin.
    fn init(config: Value) -> Result<Self, String>;

    /// Chooses the pod subnet of a node, e.g. `"10.244.1.0/24"`.
    fn node_subnet(&self, request: &SubnetRequest) -> Result<String, String>;

    /// Plans the network of a new pod.
    fn setup_pod(&self, request: &PodRequest) -> Result<NetworkPlan, String>;

    /// Plans the removal of a pod's network.
    fn teardown_pod(&self, request: &PodRequest) -> Result<Vec<NetworkOp>, String>;
}

/// Exports a type implementing [`NetworkDriver`] as the plugin's
/// `network-driver` world.
///
/// ```ignore
/// hortator_sdk::export_network_driver!(MyDriver);
/// ```
///
/// The plugin's metadata is the package name and version of the crate that
/// invokes the macro, and [`SDK_VERSION`](crate::SDK_VERSION).
#[macro_export]
macro_rules! export_network_driver {
    ($plugin:ty) => {
        const _: () = {
            $crate::__plugin_instance!($plugin);

            struct HortatorNetworkDriverExport;

            impl $crate::__private::network_driver::Guest for HortatorNetworkDriverExport {
                $crate::__plugin_lifecycle!($plugin, $crate::network::NetworkDriver);

                fn node_subnet(
                    request: $crate::network::SubnetRequest,
                ) -> ::core::result::Result<::std::string::String, ::std::string::String> {
                    $crate::__private::with(&INSTANCE, |plugin| {
                        $crate::network::NetworkDriver::node_subnet(plugin, &request)
                    })
                }

                fn setup_pod(
                    request: $crate::network::PodRequest,
                ) -> ::core::result::Result<$crate::network::NetworkPlan, ::std::string::String>
                {
                    $crate::__private::with(&INSTANCE, |plugin| {
                        $crate::network::NetworkDriver::setup_pod(plugin, &request)
                    })
                }

                fn teardown_pod(
                    request: $crate::network::PodRequest,
                ) -> ::core::result::Result<
                    ::std::vec::Vec<$crate::network::NetworkOp>,
                    ::std::string::String,
                > {
                    $crate::__private::with(&INSTANCE, |plugin| {
                        $crate::network::NetworkDriver::teardown_pod(plugin, &request)
                    })
                }
            }

            $crate::__private::network_driver::export!(
                HortatorNetworkDriverExport with_types_in $crate::__private::network_driver
            );
        };
    };
}
