//! Pod networking: the network-driver plugin plans, this module applies the
//! plan with netlink (links, addresses, routes) and iptables (masquerade,
//! forwarding, host ports), and records per pod what it did under a state
//! directory, so that a restarted agent still knows the pods' addresses and
//! can undo their networking.
//!
//! Plugin calls block (wasmtime) and run on Tokio's blocking pool; iptables
//! runs as child processes, also off the async workers. Setups and teardowns
//! are serialised, so the addresses handed to the driver as allocated are
//! always complete.

mod netlink;
mod rules;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hortator_plugin_runtime::PluginManager;
use hortator_plugin_runtime::networking::{
    NetworkDriverPlugin, NetworkError as DriverError, NetworkOp, NodeInfo, PodRequest,
    SubnetRequest,
};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use self::netlink::{Applier, Effect, Netlink, PodNamespace};
use self::rules::Rules;

/// Why pod networking failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NetworkError {
    /// No `[plugins.network-driver]` is loaded.
    #[error("no network driver is loaded")]
    NoDriver,
    /// The pod subnet is needed before [`PodNetworking::set_subnet`].
    #[error("the node's pod subnet is not known yet")]
    NoSubnet,
    /// The driver failed or refused.
    #[error("{subject}: network driver: {message}")]
    Driver {
        /// `pod <namespace>/<name>` or `node <name>`.
        subject: String,
        /// What the driver (or the runtime) said.
        message: String,
    },
    /// Wiring a pod failed.
    #[error("pod {pod}: {operation}: {reason}")]
    Pod {
        /// `<namespace>/<name>`.
        pod: String,
        /// What was being done.
        operation: String,
        /// Why it failed.
        reason: String,
    },
    /// Node-wide work failed (state directory, iptables chains, sysctls).
    #[error("{operation}: {reason}")]
    Node {
        /// What was being done.
        operation: String,
        /// Why it failed.
        reason: String,
    },
}

fn node_error(operation: impl Into<String>, reason: impl fmt::Display) -> NetworkError {
    NetworkError::Node {
        operation: operation.into(),
        reason: reason.to_string(),
    }
}

/// A pod as the network sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PodIdentity {
    /// The pod's namespace.
    pub(crate) namespace: String,
    /// The pod's name.
    pub(crate) name: String,
    /// The pod's uid; names its state file and, through the driver, its links.
    pub(crate) uid: String,
}

impl fmt::Display for PodIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Transport protocol of a host port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// A container port published on the node (`ports[].hostPort`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HostPortMapping {
    /// The node address to publish on; `None` (or 0.0.0.0) means every
    /// address of the node.
    pub(crate) host_ip: Option<Ipv4Addr>,
    /// The port on the node.
    pub(crate) host_port: u16,
    /// The port in the pod.
    pub(crate) container_port: u16,
    /// TCP or UDP.
    pub(crate) protocol: Protocol,
}

/// Identifies a sandbox's network namespace across agent restarts: the
/// namespace file of `pid`, as long as its device and inode still match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct NetnsId {
    pid: u32,
    dev: u64,
    ino: u64,
}

impl NetnsId {
    fn open(pid: u32) -> Result<(File, NetnsId), String> {
        let path = format!("/proc/{pid}/ns/net");
        let file = File::open(&path).map_err(|e| format!("open {path}: {e}"))?;
        let meta = file
            .metadata()
            .map_err(|e| format!("inspect {path}: {e}"))?;
        let id = NetnsId {
            pid,
            dev: meta.dev(),
            ino: meta.ino(),
        };
        Ok((file, id))
    }

    /// The namespace, if it still exists and is still `pid`'s.
    fn reopen(&self) -> Option<File> {
        NetnsId::open(self.pid)
            .ok()
            .filter(|(_, id)| id == self)
            .map(|(file, _)| file)
    }
}

/// What the agent did for one pod, persisted as `<state-dir>/<uid>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodState {
    namespace: String,
    name: String,
    uid: String,
    sandbox_id: String,
    netns: NetnsId,
    /// The pod's address with the subnet's prefix.
    address: Ipv4Net,
    gateway: Ipv4Addr,
    /// Links created in the node's namespace for this pod.
    links: Vec<String>,
    /// Bridges the pod is attached to (forwarded).
    bridges: Vec<String>,
    /// (source, except): traffic from source to outside except is masqueraded.
    masquerade: Vec<(Ipv4Net, Ipv4Net)>,
    host_ports: Vec<HostPortMapping>,
}

impl PodState {
    fn pod(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Pod networking on one node.
pub(crate) struct PodNetworking {
    plugins: Arc<PluginManager>,
    node: NodeInfo,
    cluster_cidr: Ipv4Net,
    state_dir: PathBuf,
    rules: Arc<Rules>,
    subnet: Mutex<Option<Ipv4Net>>,
    pods: Mutex<BTreeMap<String, PodState>>,
    /// The rules installed last.
    applied: Mutex<Option<String>>,
    /// Held through every setup and teardown.
    serial: tokio::sync::Mutex<()>,
}

/// Removes the iptables chains of the agent whose chains are named with `chain_suffix`, and
/// the jumps to them (a node taken out of service); [`PodNetworking::new`] rebuilds them.
/// Blocks on iptables.
pub(crate) fn remove_rules(chain_suffix: &str) -> Result<(), NetworkError> {
    Rules::new(chain_suffix)
        .and_then(|rules| rules.remove())
        .map_err(|e| node_error("remove the iptables rules", e))
}

impl PodNetworking {
    /// Loads the pods recorded in `state_dir` (created if missing), enables
    /// IPv4 forwarding and `route_localnet` (host ports on loopback
    /// addresses), and (re)builds this agent's iptables chains — named with
    /// `chain_suffix`, so that agents sharing a machine keep apart — and the
    /// jumps to them, without duplicating any. Blocks on iptables.
    pub(crate) fn new(
        plugins: Arc<PluginManager>,
        node: NodeInfo,
        cluster_cidr: Ipv4Net,
        state_dir: PathBuf,
        chain_suffix: &str,
    ) -> Result<Self, NetworkError> {
        std::fs::create_dir_all(&state_dir)
            .map_err(|e| node_error(format!("create {}", state_dir.display()), e))?;
        let pods = load_states(&state_dir)?;
        for (key, value) in [
            ("net/ipv4/ip_forward", "1"),
            ("net/ipv4/conf/all/route_localnet", "1"),
        ] {
            let path = format!("/proc/sys/{key}");
            std::fs::write(&path, value).map_err(|e| node_error(format!("write {path}"), e))?;
        }
        let rules = Rules::new(chain_suffix).map_err(|e| node_error("iptables", e))?;
        let networking = PodNetworking {
            plugins,
            node,
            cluster_cidr: cluster_cidr.trunc(),
            state_dir,
            rules: Arc::new(rules),
            subnet: Mutex::new(None),
            pods: Mutex::new(pods),
            applied: Mutex::new(None),
            serial: tokio::sync::Mutex::new(()),
        };
        let text = networking.render();
        networking
            .rules
            .apply(&text)
            .map_err(|e| node_error("install the iptables rules", e))?;
        *networking.applied.lock().expect("applied lock") = Some(text);
        Ok(networking)
    }

    /// Asks the driver for this node's pod subnet; `allocated` holds the
    /// other nodes' subnets.
    pub(crate) async fn node_subnet(
        &self,
        allocated: Vec<Ipv4Net>,
    ) -> Result<Ipv4Net, NetworkError> {
        let driver = self.driver()?;
        let request = SubnetRequest {
            node: self.node.clone(),
            cluster_cidr: self.cluster_cidr.to_string(),
            allocated: allocated.iter().map(ToString::to_string).collect(),
        };
        blocking(move || driver.node_subnet(&request))
            .await
            .map_err(|message| NetworkError::Driver {
                subject: format!("node {}", self.node.name),
                message,
            })
    }

    /// Sets the node's pod subnet (`Node.spec.podCIDR`); pods are wired
    /// only once it is known.
    pub(crate) fn set_subnet(&self, subnet: Ipv4Net) {
        *self.subnet.lock().expect("subnet lock") = Some(subnet.trunc());
    }

    /// Wires a pod's sandbox — `sandbox_pid` is its (pause) process, whose
    /// network namespace the pod uses — into the network, publishes
    /// `host_ports` on the node and returns the pod's address. Idempotent:
    /// for a pod already wired in the same sandbox whose links exist, returns
    /// the recorded address (after making sure its rules are in place).
    /// Everything done is undone when a step fails.
    pub(crate) async fn setup_pod(
        &self,
        pod: &PodIdentity,
        sandbox_id: &str,
        sandbox_pid: u32,
        host_ports: &[HostPortMapping],
    ) -> Result<Ipv4Addr, NetworkError> {
        let pod_error = |operation: &str, reason: String| NetworkError::Pod {
            pod: pod.to_string(),
            operation: operation.to_string(),
            reason,
        };
        check_uid(&pod.uid).map_err(|reason| pod_error("check the uid", reason))?;
        let _serial = self.serial.lock().await;
        let subnet = self
            .subnet
            .lock()
            .expect("subnet lock")
            .ok_or(NetworkError::NoSubnet)?;
        let host = Netlink::connect().map_err(|e| pod_error("connect to netlink", e))?;
        let recorded = self.pods.lock().expect("pods lock").get(&pod.uid).cloned();
        if let Some(state) = recorded {
            if let Some(address) = self.reuse(state, sandbox_id, host_ports, &host).await? {
                return Ok(address);
            }
            self.teardown_locked(&pod.uid).await?;
        }
        let state = self
            .wire(pod, sandbox_id, sandbox_pid, subnet, host_ports, &host)
            .await?;
        self.pods
            .lock()
            .expect("pods lock")
            .insert(pod.uid.clone(), state.clone());
        if let Err(e) = self.sync_rules().await {
            self.forget(&pod.uid);
            if let Err(removal) = self.remove_state(&pod.uid) {
                tracing::warn!(pod = %pod, error = %removal, "rolling back: state not removed");
            }
            delete_links(&host, &state).await;
            if let Err(again) = self.sync_rules().await {
                tracing::warn!(pod = %pod, error = %again, "rolling back: iptables rules not restored");
            }
            return Err(pod_error("install the iptables rules", e));
        }
        tracing::info!(pod = %pod, address = %state.address, "pod network set up");
        Ok(state.address.addr())
    }

    /// The recorded address of a pod wired in `sandbox_id` whose links all
    /// exist (its host ports updated and its rules ensured), or `None` when
    /// the recorded wiring is stale.
    async fn reuse(
        &self,
        mut state: PodState,
        sandbox_id: &str,
        host_ports: &[HostPortMapping],
        host: &Netlink,
    ) -> Result<Option<Ipv4Addr>, NetworkError> {
        let pod = state.pod();
        let pod_error = |operation: &str, reason: String| NetworkError::Pod {
            pod: pod.clone(),
            operation: operation.to_string(),
            reason,
        };
        if state.sandbox_id != sandbox_id {
            return Ok(None);
        }
        for link in &state.links {
            let exists = netlink::link_exists(&host.handle(), link)
                .await
                .map_err(|e| pod_error(&format!("look up link {link}"), e))?;
            if !exists {
                return Ok(None);
            }
        }
        if state.host_ports != host_ports {
            state.host_ports = host_ports.to_vec();
            self.save(&state)
                .map_err(|e| pod_error("record the network state", e))?;
            self.pods
                .lock()
                .expect("pods lock")
                .insert(state.uid.clone(), state.clone());
        }
        self.sync_rules()
            .await
            .map_err(|e| pod_error("install the iptables rules", e))?;
        Ok(Some(state.address.addr()))
    }

    /// Asks the driver for a plan and applies it in the sandbox of process
    /// `sandbox_pid`; returns the recorded state (written to its file). The
    /// links created are deleted when a step fails.
    async fn wire(
        &self,
        pod: &PodIdentity,
        sandbox_id: &str,
        sandbox_pid: u32,
        subnet: Ipv4Net,
        host_ports: &[HostPortMapping],
        host: &Netlink,
    ) -> Result<PodState, NetworkError> {
        let pod_error = |operation: &str, reason: String| NetworkError::Pod {
            pod: pod.to_string(),
            operation: operation.to_string(),
            reason,
        };
        let (netns, netns_id) = NetnsId::open(sandbox_pid).map_err(|e| {
            pod_error(
                &format!("open the network namespace of sandbox process {sandbox_pid}"),
                e,
            )
        })?;
        let driver = self.driver()?;
        let request = PodRequest {
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
            uid: pod.uid.clone(),
            sandbox_id: sandbox_id.to_string(),
            node: self.node.clone(),
            node_subnet: subnet.to_string(),
            allocated: self.allocated(),
            address: String::new(),
        };
        let driver_error = |message| NetworkError::Driver {
            subject: format!("pod {pod}"),
            message,
        };
        let plan = blocking(move || driver.setup_pod(&request))
            .await
            .map_err(driver_error)?;
        let address: Ipv4Net = plan
            .address
            .parse()
            .map_err(|_| driver_error(format!("{:?} is not an address", plan.address)))?;
        let gateway: Ipv4Addr = plan
            .gateway
            .parse()
            .map_err(|_| driver_error(format!("{:?} is not a gateway", plan.gateway)))?;
        for op in &plan.operations {
            if let NetworkOp::CreateVeth(veth) = op
                && let Some(owner) = self.link_owner(&veth.host_name)
            {
                return Err(pod_error(
                    &netlink::describe(op),
                    format!("{} belongs to pod {owner}", veth.host_name),
                ));
            }
        }

        let mut state = PodState {
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
            uid: pod.uid.clone(),
            sandbox_id: sandbox_id.to_string(),
            netns: netns_id,
            address,
            gateway,
            links: Vec::new(),
            bridges: Vec::new(),
            masquerade: Vec::new(),
            host_ports: host_ports.to_vec(),
        };
        let applied = async {
            let namespace = PodNamespace::enter(&netns)
                .await
                .map_err(|e| pod_error("enter the pod's network namespace", e))?;
            namespace
                .run(|handle| async move { netlink::set_up(&handle, "lo").await })
                .await
                .map_err(|e| pod_error("set lo up in the pod namespace", e))?;
            let applier = Applier {
                host: host.handle(),
                pod: Some(&namespace),
                netns: Some(&netns),
            };
            for op in &plan.operations {
                let effect = applier
                    .apply(op)
                    .await
                    .map_err(|e| pod_error(&netlink::describe(op), e))?;
                state.record(effect);
            }
            self.save(&state)
                .map_err(|e| pod_error("record the network state", e))
        }
        .await;
        match applied {
            Ok(()) => Ok(state),
            Err(e) => {
                delete_links(host, &state).await;
                Err(e)
            }
        }
    }

    /// Undoes everything done for the pod `uid`: the driver's teardown
    /// operations, its links, its host ports and other rules, its state (and
    /// so its address). Idempotent; works from the state file after an agent
    /// restart and when the sandbox is gone (operations inside it are then
    /// skipped: its namespace went with it). A failing driver is logged and
    /// the host's own cleanup still happens, so that an address is never
    /// held by a broken plugin.
    pub(crate) async fn teardown_pod(&self, uid: &str) -> Result<(), NetworkError> {
        let _serial = self.serial.lock().await;
        self.teardown_locked(uid).await
    }

    /// Uids of the pods with recorded network state.
    pub(crate) fn known_pods(&self) -> Vec<String> {
        self.pods
            .lock()
            .expect("pods lock")
            .keys()
            .cloned()
            .collect()
    }

    async fn teardown_locked(&self, uid: &str) -> Result<(), NetworkError> {
        let Some(state) = self.pods.lock().expect("pods lock").get(uid).cloned() else {
            return Ok(());
        };
        let pod = state.pod();
        let pod_error = |operation: &str, reason: String| NetworkError::Pod {
            pod: pod.clone(),
            operation: operation.to_string(),
            reason,
        };
        let host = Netlink::connect().map_err(|e| pod_error("connect to netlink", e))?;
        match self.teardown_plan(&state).await {
            Ok(operations) => {
                let netns = state.netns.reopen();
                let namespace = match &netns {
                    Some(netns) => PodNamespace::enter(netns).await.ok(),
                    None => None,
                };
                let applier = Applier {
                    host: host.handle(),
                    pod: namespace.as_ref(),
                    netns: netns.as_ref(),
                };
                for op in &operations {
                    applier
                        .apply(op)
                        .await
                        .map_err(|e| pod_error(&netlink::describe(op), e))?;
                }
            }
            Err(e) => {
                tracing::warn!(pod = %pod, error = %e, "no teardown plan from the network driver; removing what the node recorded");
            }
        }
        for link in &state.links {
            netlink::delete_link(&host.handle(), link)
                .await
                .map_err(|e| pod_error(&format!("delete link {link}"), e))?;
        }
        self.forget(uid);
        if let Err(e) = self.sync_rules().await {
            self.pods
                .lock()
                .expect("pods lock")
                .insert(uid.to_string(), state);
            return Err(pod_error("remove the iptables rules", e));
        }
        self.remove_state(uid)
            .map_err(|e| pod_error("remove the network state", e))?;
        tracing::info!(pod = %pod, address = %state.address, "pod network torn down");
        Ok(())
    }

    async fn teardown_plan(&self, state: &PodState) -> Result<Vec<NetworkOp>, NetworkError> {
        let driver = self.driver()?;
        let request = PodRequest {
            namespace: state.namespace.clone(),
            name: state.name.clone(),
            uid: state.uid.clone(),
            sandbox_id: state.sandbox_id.clone(),
            node: self.node.clone(),
            node_subnet: state.address.trunc().to_string(),
            allocated: self.allocated(),
            address: state.address.to_string(),
        };
        blocking(move || driver.teardown_pod(&request))
            .await
            .map_err(|message| NetworkError::Driver {
                subject: format!("pod {}", state.pod()),
                message,
            })
    }

    fn driver(&self) -> Result<Arc<NetworkDriverPlugin>, NetworkError> {
        self.plugins
            .network_driver()
            .map(|slot| slot.current())
            .ok_or(NetworkError::NoDriver)
    }

    /// The addresses of this node's pods.
    fn allocated(&self) -> Vec<String> {
        self.pods
            .lock()
            .expect("pods lock")
            .values()
            .map(|state| state.address.addr().to_string())
            .collect()
    }

    /// The pod whose recorded links include `link`.
    fn link_owner(&self, link: &str) -> Option<String> {
        self.pods
            .lock()
            .expect("pods lock")
            .values()
            .find(|state| state.links.iter().any(|l| l == link))
            .map(PodState::pod)
    }

    fn forget(&self, uid: &str) {
        self.pods.lock().expect("pods lock").remove(uid);
    }

    fn state_path(&self, uid: &str) -> PathBuf {
        self.state_dir.join(format!("{uid}.json"))
    }

    /// Writes the state file atomically (a temporary file renamed over it).
    fn save(&self, state: &PodState) -> Result<(), String> {
        let path = self.state_path(&state.uid);
        let temporary = path.with_extension("json.tmp");
        let json = serde_json::to_vec_pretty(state).map_err(|e| e.to_string())?;
        std::fs::write(&temporary, json)
            .and_then(|()| std::fs::rename(&temporary, &path))
            .map_err(|e| format!("write {}: {e}", path.display()))
    }

    /// Removes the state file; a missing one is fine.
    fn remove_state(&self, uid: &str) -> Result<(), String> {
        let path = self.state_path(uid);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("remove {}: {e}", path.display())),
        }
    }

    /// The rules every recorded pod needs, as `iptables-restore` input.
    fn render(&self) -> String {
        let addresses: Vec<Ipv4Addr> = self
            .node
            .addresses
            .iter()
            .filter_map(|address| address.parse().ok())
            .collect();
        self.rules
            .render(self.pods.lock().expect("pods lock").values(), &addresses)
    }

    /// Installs the rules every recorded pod needs, unless they are what was installed
    /// last (most pods have no host port: wiring one changes no rule).
    async fn sync_rules(&self) -> Result<(), String> {
        let text = self.render();
        if self.applied.lock().expect("applied lock").as_deref() == Some(text.as_str()) {
            return Ok(());
        }
        let rules = self.rules.clone();
        let installing = text.clone();
        let result = tokio::task::spawn_blocking(move || rules.apply(&installing))
            .await
            .map_err(|e| format!("iptables task: {e}"))
            .and_then(|applied| applied);
        *self.applied.lock().expect("applied lock") = result.is_ok().then_some(text);
        result
    }
}

impl PodState {
    fn record(&mut self, effect: Effect) {
        match effect {
            Effect::CreatedLink(link) if !self.links.contains(&link) => self.links.push(link),
            Effect::Bridge(bridge) if !self.bridges.contains(&bridge) => self.bridges.push(bridge),
            Effect::Masquerade(source, except) if !self.masquerade.contains(&(source, except)) => {
                self.masquerade.push((source, except));
            }
            _ => {}
        }
    }
}

/// Deletes the links created for a pod (rolling back a failed setup).
async fn delete_links(host: &Netlink, state: &PodState) {
    for link in &state.links {
        if let Err(e) = netlink::delete_link(&host.handle(), link).await {
            tracing::warn!(pod = %state.pod(), link, error = %e, "rolling back: link not deleted");
        }
    }
}

/// Runs a driver call on the blocking pool (wasmtime calls block).
async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, DriverError> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(DriverError::Declined(message))) => Err(message),
        Ok(Err(DriverError::Plugin(e))) => Err(e.to_string()),
        Err(e) => Err(format!("the call failed: {e}")),
    }
}

/// A uid names a file: letters, digits and '-' only.
fn check_uid(uid: &str) -> Result<(), String> {
    if !uid.is_empty() && uid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        Ok(())
    } else {
        Err(format!("{uid:?} is not a uid (letters, digits and '-')"))
    }
}

fn load_states(dir: &Path) -> Result<BTreeMap<String, PodState>, NetworkError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| node_error(format!("read {}", dir.display()), e))?;
    let mut pods = BTreeMap::new();
    for entry in entries {
        let path = entry
            .map_err(|e| node_error(format!("read {}", dir.display()), e))?
            .path();
        if path.extension().is_none_or(|extension| extension != "json") {
            continue;
        }
        let text =
            std::fs::read(&path).map_err(|e| node_error(format!("read {}", path.display()), e))?;
        let state: PodState = serde_json::from_slice(&text)
            .map_err(|e| node_error(format!("read {}", path.display()), e))?;
        if path.file_stem() != Some(state.uid.as_ref()) {
            return Err(node_error(
                format!("read {}", path.display()),
                format!("it holds the state of pod uid {}", state.uid),
            ));
        }
        pods.insert(state.uid.clone(), state);
    }
    Ok(pods)
}
