//! The agent's settings; `hortator.toml` and the command line fill them in (and validate
//! them) in `host/hortator`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::Ipv4Net;

/// The pod range nodes' subnets are carved from, as in the seed.
pub const DEFAULT_CLUSTER_CIDR: &str = "10.20.0.0/16";

/// The port the real kubelet serves logs and exec on.
pub const DEFAULT_PORT: u16 = 10250;

/// How one node agent runs.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    /// The Node's name.
    pub node_name: String,
    /// The node's InternalIP: pods' hostIP, host ports, the agent's endpoint.
    pub node_ip: Ipv4Addr,
    /// The Docker engine's socket.
    pub docker_socket: PathBuf,
    /// Where pod volumes and network state live.
    pub root_dir: PathBuf,
    /// The cluster's pod range.
    pub cluster_cidr: Ipv4Net,
    /// Port of the agent's HTTP endpoint (logs, exec, stats) on `node_ip`, where the
    /// `hortator agent` binary serves [`crate::Kubelet::router`]; `None` under `hortator up`,
    /// whose API server reaches the agent in process.
    pub port: Option<u16>,
    /// Lease renewal interval.
    pub heartbeat: Duration,
    /// Pod capacity.
    pub max_pods: u32,
    /// Extra node labels.
    pub labels: BTreeMap<String, String>,
    /// Time between two samples of the containers' CPU, memory and network.
    pub stats_interval: Duration,
    /// Time between two measurements of a container's or volume's disk usage.
    pub fs_stats_interval: Duration,
}

impl KubeletConfig {
    /// Defaults for node `node_name` keeping its state under `root_dir`.
    pub fn new(node_name: &str, root_dir: PathBuf) -> KubeletConfig {
        KubeletConfig {
            node_name: node_name.to_string(),
            node_ip: default_node_ip(),
            docker_socket: PathBuf::from("/var/run/docker.sock"),
            root_dir,
            cluster_cidr: DEFAULT_CLUSTER_CIDR.parse().expect("a valid CIDR"),
            port: Some(DEFAULT_PORT),
            heartbeat: Duration::from_secs(10),
            max_pods: 110,
            labels: BTreeMap::new(),
            stats_interval: Duration::from_secs(10),
            fs_stats_interval: Duration::from_secs(60),
        }
    }
}

/// The address of the interface holding the default route (the address the kernel picks
/// to reach outside — no packet is sent), else 127.0.0.1.
pub fn default_node_ip() -> Ipv4Addr {
    std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|socket| {
            // connect() on UDP only selects a route and a source address.
            socket.connect("192.0.2.1:9")?;
            socket.local_addr()
        })
        .ok()
        .and_then(|address| match address.ip() {
            std::net::IpAddr::V4(ip) if !ip.is_unspecified() => Some(ip),
            _ => None,
        })
        .unwrap_or(Ipv4Addr::LOCALHOST)
}

/// The machine's host name, lower-cased, as a node name.
pub fn default_node_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .map(|name| name.to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
