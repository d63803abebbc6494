//! Pod networking on the real kernel (run as root): sandboxes are processes
//! in network namespaces of their own (`unshare --net`), the driver is the
//! built-in `bridge` plugin in a real plugin manager, every test has its own
//! cluster range, bridge, chains and loopback node address, and a guard
//! removes them even when the test fails.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hortator_plugin_runtime::networking::{
    LinkOp, Namespace, NetworkOp, NodeInfo, Vxlan, VxlanPeer,
};
use hortator_plugin_runtime::{
    DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT, FailurePolicy, ModuleSource, PluginManager, PluginSettings,
    Runtime, RuntimeConfig, ValidatedPlugins,
};
use ipnet::Ipv4Net;

use super::netlink::{Applier, PodNamespace};
use super::rules::Rules;
use super::*;

/// A test's own names and resources, removed on drop.
struct Fixture {
    id: String,
    bridge: String,
    suffix: String,
    cluster: Ipv4Net,
    node_ip: Ipv4Addr,
    state: tempfile::TempDir,
    sandboxes: Vec<Child>,
    runtime: tokio::runtime::Runtime,
}

impl Fixture {
    fn new(cluster: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let seed = (nanos ^ std::process::id().rotate_left(13))
            .wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed) * 7919)
            & 0xff_ffff;
        let id = format!("{seed:06x}");
        Fixture {
            bridge: format!("htest{id}"),
            suffix: format!("t{id}"),
            cluster: cluster.parse().unwrap(),
            node_ip: Ipv4Addr::new(127, 231, 1 + (seed >> 8) as u8 % 250, 1 + seed as u8 % 250),
            state: tempfile::tempdir().unwrap(),
            sandboxes: Vec::new(),
            runtime: tokio::runtime::Runtime::new().unwrap(),
            id,
        }
    }

    /// A plugin manager running the built-in bridge driver for this test.
    fn plugins(&self) -> Arc<PluginManager> {
        let manager = PluginManager::new(Runtime::new(RuntimeConfig::default()).unwrap(), None);
        let driver = PluginSettings {
            name: "bridge".into(),
            module: ModuleSource::Builtin("bridge".into()),
            config:
                serde_json::json!({"bridge": self.bridge, "cluster-cidr": self.cluster.to_string()})
                    .to_string(),
            timeout: DEFAULT_TIMEOUT,
            memory_limit: (DEFAULT_MEMORY_MB as usize) << 20,
            failure_policy: FailurePolicy::FailClosed,
            cluster_read: false,
        };
        let failures = manager.apply(
            &ValidatedPlugins {
                cache_dir: None,
                admission: vec![],
                schedulers: vec![],
                network_driver: Some(driver),
                build_strategies: vec![],
            },
            Path::new("/"),
        );
        assert!(failures.is_empty(), "{failures:?}");
        Arc::new(manager)
    }

    fn networking(&self, plugins: &Arc<PluginManager>) -> PodNetworking {
        PodNetworking::new(
            plugins.clone(),
            NodeInfo {
                name: format!("node-{}", self.id),
                addresses: vec![self.node_ip.to_string()],
                labels: vec![],
            },
            self.cluster,
            self.state.path().to_path_buf(),
            &self.suffix,
        )
        .unwrap()
    }

    fn pod(&self, name: &str) -> PodIdentity {
        // The driver names the host veth after the uid's first 11 letters and digits.
        PodIdentity {
            namespace: "default".into(),
            name: name.into(),
            uid: format!("{}{name:x>5}-0000-4000-8000-000000000000", self.id),
        }
    }

    fn veth(&self, pod: &PodIdentity) -> String {
        format!("veth{}", &pod.uid.replace('-', "")[..11])
    }

    /// A process in a new network namespace; returns its pid.
    fn sandbox(&mut self) -> u32 {
        let child = Command::new("unshare")
            .args(["--net", "sleep", "600"])
            .spawn()
            .expect("run unshare");
        let pid = child.id();
        self.sandboxes.push(child);
        let own = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
        eventually("the sandbox's namespace", || {
            std::fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| m.ino() != own)
        });
        pid
    }

    fn kill_sandbox(&mut self, pid: u32) {
        let index = self.sandboxes.iter().position(|c| c.id() == pid).unwrap();
        let mut child = self.sandboxes.remove(index);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    fn chains(&self) -> [(&'static str, String); 3] {
        [
            ("nat", format!("HORTATOR-HP-{}", self.suffix)),
            ("nat", format!("HORTATOR-MASQ-{}", self.suffix)),
            ("filter", format!("HORTATOR-FWD-{}", self.suffix)),
        ]
    }

    /// Every rule of this test's chains and every jump to them.
    fn rules(&self) -> Vec<String> {
        let mut rules = Vec::new();
        for table in ["nat", "filter"] {
            for line in run("iptables", &["-w", "-t", table, "-S"]).lines() {
                if line.contains(&format!("-{}", self.suffix)) {
                    rules.push(format!("{table} {line}"));
                }
            }
        }
        rules
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for mut child in self.sandboxes.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(std::process::Stdio::null())
            .status();
        if let Ok(rules) = Rules::new(&self.suffix) {
            let _ = rules.remove();
        }
    }
}

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `ip ARGS` inside the namespace of `pid`.
fn ip_in(pid: u32, args: &str) -> String {
    let pid = pid.to_string();
    let mut full = vec!["-t", &pid, "-n", "ip"];
    full.extend(args.split(' '));
    run("nsenter", &full)
}

fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", "dev", name])
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// Runs `f` on a thread inside the network namespace of `pid` (sockets it
/// creates stay in that namespace).
fn in_netns<T: Send + 'static>(pid: u32, f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        let netns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
        nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

/// Serves `connections` connections, answering each with the client's address.
fn echo_peer(listener: TcpListener, connections: usize) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let mut stream = stream.unwrap();
            let peer = stream.peer_addr().unwrap().ip().to_string();
            stream.write_all(peer.as_bytes()).unwrap();
        }
    })
}

/// Connects to `to` and returns what the server says.
fn ask(to: SocketAddr) -> String {
    let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to {to}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn pods_reach_each_other_and_host_ports_and_everything_is_undone() {
    let mut fx = Fixture::new("10.231.0.0/16");
    let plugins = fx.plugins();
    let net = fx.networking(&plugins);
    let a = fx.pod("a");
    let b = fx.pod("b");
    let (a_pid, b_pid) = (fx.sandbox(), fx.sandbox());
    let host_port = 20_000 + (fx.node_ip.octets()[3] as u16) * 100;
    let ports = [HostPortMapping {
        host_ip: None,
        host_port,
        container_port: 8080,
        protocol: Protocol::Tcp,
    }];

    let early = fx
        .runtime
        .block_on(net.setup_pod(&a, "sandbox-a", a_pid, &ports));
    assert_eq!(
        early.unwrap_err().to_string(),
        "the node's pod subnet is not known yet"
    );
    let subnet = fx
        .runtime
        .block_on(net.node_subnet(vec!["10.231.0.0/24".parse().unwrap()]))
        .unwrap();
    assert_eq!(subnet.to_string(), "10.231.1.0/24");
    net.set_subnet(subnet);
    let a_ip = fx
        .runtime
        .block_on(net.setup_pod(&a, "sandbox-a", a_pid, &ports))
        .unwrap();
    let b_ip = fx
        .runtime
        .block_on(net.setup_pod(&b, "sandbox-b", b_pid, &[]))
        .unwrap();
    assert_eq!(a_ip, Ipv4Addr::new(10, 231, 1, 2));
    assert_eq!(b_ip, Ipv4Addr::new(10, 231, 1, 3));
    assert!(ip_in(a_pid, "-4 -o addr show dev eth0").contains("inet 10.231.1.2/24"));
    assert!(ip_in(a_pid, "route show default").contains("default via 10.231.1.1 dev eth0"));
    assert!(ip_in(a_pid, "link show dev lo").contains(",UP"));
    assert!(
        run("ip", &["-o", "link", "show", "dev", &fx.veth(&a)])
            .contains(&format!("master {}", fx.bridge))
    );
    assert!(
        run("ip", &["-4", "-o", "addr", "show", "dev", &fx.bridge]).contains("inet 10.231.1.1/24")
    );

    // Pod to pod through the bridge, node to pod, and the host port on the
    // node's loopback address (masqueraded to the bridge's address).
    let listener = in_netns(a_pid, || TcpListener::bind("0.0.0.0:8080").unwrap());
    let server = echo_peer(listener, 4);
    let from_b = in_netns(b_pid, move || ask(SocketAddr::from((a_ip, 8080))));
    assert_eq!(from_b, b_ip.to_string());
    assert_eq!(ask(SocketAddr::from((a_ip, 8080))), "10.231.1.1");
    assert_eq!(ask(SocketAddr::from((fx.node_ip, host_port))), "10.231.1.1");
    let rules = fx.rules();
    let dnat = format!(
        "-A HORTATOR-HP-{} -d {}/32 -p tcp -m tcp --dport {host_port} -m comment --comment \"default/a\" -j DNAT --to-destination 10.231.1.2:8080",
        fx.suffix, fx.node_ip
    );
    assert!(rules.iter().any(|r| r.ends_with(&dnat)), "{rules:#?}");
    assert!(
        rules
            .iter()
            .any(|r| r.contains("-s 10.231.1.0/24 ! -d 10.231.0.0/16 -j MASQUERADE")),
        "{rules:#?}"
    );

    // A restarted agent knows the pods, sets them up again idempotently and
    // duplicates no rule.
    drop(net);
    let net = fx.networking(&plugins);
    let mut known = net.known_pods();
    known.sort();
    let mut expected = vec![a.uid.clone(), b.uid.clone()];
    expected.sort();
    assert_eq!(known, expected);
    net.set_subnet(subnet);
    let again = fx
        .runtime
        .block_on(net.setup_pod(&a, "sandbox-a", a_pid, &ports))
        .unwrap();
    assert_eq!(again, a_ip);
    assert_eq!(fx.rules(), rules);
    // Changed host ports are applied to the wired pod.
    let more = [
        ports[0],
        HostPortMapping {
            host_ip: Some(Ipv4Addr::new(127, 231, 0, 9)),
            host_port: 53,
            container_port: 5353,
            protocol: Protocol::Udp,
        },
    ];
    let same = fx
        .runtime
        .block_on(net.setup_pod(&a, "sandbox-a", a_pid, &more));
    assert_eq!(same.unwrap(), a_ip);
    assert!(
        fx.rules()
            .iter()
            .any(|r| r.contains("-d 127.231.0.9/32 -p udp -m udp --dport 53")),
        "{:#?}",
        fx.rules()
    );
    fx.runtime
        .block_on(net.setup_pod(&a, "sandbox-a", a_pid, &ports))
        .unwrap();
    assert_eq!(fx.rules(), rules);
    assert_eq!(ask(SocketAddr::from((fx.node_ip, host_port))), "10.231.1.1");
    server.join().unwrap();

    // Teardown: no link, no state, no rule for the pod; twice is fine.
    fx.runtime.block_on(net.teardown_pod(&a.uid)).unwrap();
    assert!(!link_exists(&fx.veth(&a)));
    assert!(!fx.state.path().join(format!("{}.json", a.uid)).exists());
    assert!(
        !fx.rules().iter().any(|r| r.contains("10.231.1.2")),
        "{:#?}",
        fx.rules()
    );
    assert_eq!(net.known_pods(), vec![b.uid.clone()]);
    fx.runtime.block_on(net.teardown_pod(&a.uid)).unwrap();
    // The address is free again.
    let c = fx.pod("c");
    let c_pid = fx.sandbox();
    let c_ip = fx
        .runtime
        .block_on(net.setup_pod(&c, "sandbox-c", c_pid, &[]))
        .unwrap();
    assert_eq!(c_ip, a_ip);
    fx.runtime.block_on(net.teardown_pod(&c.uid)).unwrap();

    // A pod whose sandbox is gone, torn down by an agent that restarted.
    fx.kill_sandbox(b_pid);
    drop(net);
    let net = fx.networking(&plugins);
    fx.runtime.block_on(net.teardown_pod(&b.uid)).unwrap();
    assert!(!link_exists(&fx.veth(&b)));
    assert!(net.known_pods().is_empty());
    let mut left = fx.rules();
    left.retain(|r| r.contains(" -A HORTATOR-"));
    assert!(left.is_empty(), "{left:#?}");

    remove_rules(&fx.suffix).unwrap();
    assert!(fx.rules().is_empty(), "{:#?}", fx.rules());
    for (table, chain) in fx.chains() {
        assert!(!run("iptables", &["-w", "-t", table, "-S"]).contains(&chain));
    }
    // Removing twice is fine.
    remove_rules(&fx.suffix).unwrap();
}

#[test]
fn a_failed_setup_is_rolled_back_and_named() {
    let mut fx = Fixture::new("10.232.0.0/16");
    let plugins = fx.plugins();
    let net = fx.networking(&plugins);
    net.set_subnet("10.232.0.0/24".parse().unwrap());
    // The sandbox already has a default route: the plan's last route fails
    // after the veth pair exists.
    let pid = fx.sandbox();
    for args in [
        "link add spare0 type veth peer name spare1",
        "link set spare1 up",
        "link set spare0 up",
        "addr add 192.0.2.1/24 dev spare0",
        "route add default via 192.0.2.254",
    ] {
        ip_in(pid, args);
    }
    let broken = fx.pod("broken");
    let ports = [HostPortMapping {
        host_ip: Some(fx.node_ip),
        host_port: 20_000,
        container_port: 80,
        protocol: Protocol::Udp,
    }];
    let error = fx
        .runtime
        .block_on(net.setup_pod(&broken, "sandbox", pid, &ports))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "pod default/broken: add route 0.0.0.0/0 via 10.232.0.1 dev eth0 in the pod namespace: File exists"
    );
    assert!(!link_exists(&fx.veth(&broken)));
    assert!(!ip_in(pid, "-o link").contains("eth0"));
    assert!(net.known_pods().is_empty());
    assert!(std::fs::read_dir(fx.state.path()).unwrap().next().is_none());
    assert!(
        !fx.rules().iter().any(|r| r.contains("DNAT")),
        "{:#?}",
        fx.rules()
    );

    // No address leaked; a sandbox that is gone is named.
    let fine = fx.pod("fine");
    let fine_pid = fx.sandbox();
    let address = fx
        .runtime
        .block_on(net.setup_pod(&fine, "sandbox", fine_pid, &ports))
        .unwrap();
    assert_eq!(address, Ipv4Addr::new(10, 232, 0, 2));
    assert!(
        fx.rules()
            .iter()
            .any(|r| r.contains("-p udp -m udp --dport 20000"))
    );
    // A uid whose first letters and digits match another pod's gives the
    // same veth name: the other pod's link is left alone.
    let twin = PodIdentity {
        name: "twin".into(),
        uid: format!("{}-twin", fine.uid),
        ..fine.clone()
    };
    let twin_pid = fx.sandbox();
    let error = fx
        .runtime
        .block_on(net.setup_pod(&twin, "sandbox", twin_pid, &[]))
        .unwrap_err();
    let veth = fx.veth(&fine);
    assert_eq!(
        error.to_string(),
        format!(
            "pod default/twin: create veth pair {veth}/eth0: {veth} belongs to pod default/fine"
        )
    );
    assert!(link_exists(&veth));
    fx.kill_sandbox(pid);
    let error = fx
        .runtime
        .block_on(net.setup_pod(&fx.pod("gone"), "sandbox", pid, &[]))
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(&format!(
            "pod default/gone: open the network namespace of sandbox process {pid}: open /proc/{pid}/ns/net: "
        )),
        "{error}"
    );
    fx.runtime.block_on(net.teardown_pod(&fine.uid)).unwrap();
    remove_rules(&fx.suffix).unwrap();
}

#[test]
fn vxlan_and_bridge_operations_in_a_namespace() {
    let mut fx = Fixture::new("10.233.0.0/16");
    let pid = fx.sandbox();
    ip_in(pid, "link add notbridge type veth peer name other");
    let netns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
    let ops = vec![
        NetworkOp::EnsureVxlan(Vxlan {
            name: "vx0".into(),
            vni: 42,
            local: "192.0.2.1".into(),
            port: 4789,
            mtu: 1450,
        }),
        NetworkOp::AddVxlanPeer(VxlanPeer {
            device: "vx0".into(),
            destination: "10.233.5.0/24".into(),
            remote: "192.0.2.2".into(),
        }),
        NetworkOp::AddVxlanPeer(VxlanPeer {
            device: "vx0".into(),
            destination: "10.233.6.0/24".into(),
            remote: "192.0.2.3".into(),
        }),
    ];
    let results = fx.runtime.block_on(async {
        let namespace = PodNamespace::enter(&netns).await.unwrap();
        namespace
            .run(move |handle| async move {
                let applier = Applier {
                    host: handle,
                    pod: None,
                    netns: None,
                };
                let mut results = Vec::new();
                // Twice: every operation is idempotent.
                for op in ops.iter().chain(&ops) {
                    results.push(applier.apply(op).await);
                }
                let not_a_bridge =
                    NetworkOp::EnsureBridge(hortator_plugin_runtime::networking::Bridge {
                        name: "notbridge".into(),
                        address: "10.233.0.1/24".into(),
                        mtu: 1500,
                    });
                results.push(applier.apply(&not_a_bridge).await);
                let gone = NetworkOp::DeleteLink(LinkOp {
                    ns: Namespace::Host,
                    device: "nosuchlink".into(),
                });
                results.push(applier.apply(&gone).await);
                Ok(results)
            })
            .await
            .unwrap()
    });
    for result in &results[..6] {
        assert_eq!(result.as_ref(), Ok(&super::netlink::Effect::None));
    }
    assert_eq!(
        results[6].as_ref().unwrap_err(),
        "notbridge exists and is not a bridge device"
    );
    assert_eq!(results[7].as_ref(), Ok(&super::netlink::Effect::None));
    let details = ip_in(pid, "-d link show dev vx0");
    assert!(
        details.contains("vxlan id 42 local 192.0.2.1") && details.contains("mtu 1450"),
        "{details}"
    );
    let fdb = run(
        "nsenter",
        &[
            "-t",
            &pid.to_string(),
            "-n",
            "bridge",
            "fdb",
            "show",
            "dev",
            "vx0",
        ],
    );
    for remote in ["192.0.2.2", "192.0.2.3"] {
        assert!(
            fdb.contains(&format!("00:00:00:00:00:00 dst {remote}")),
            "{fdb}"
        );
    }
    let routes = ip_in(pid, "route");
    assert!(
        routes.contains("10.233.5.0/24 dev vx0 proto static scope link"),
        "{routes}"
    );
    assert!(
        routes.contains("10.233.6.0/24 dev vx0 proto static scope link"),
        "{routes}"
    );
    let proxy_arp = in_netns(pid, || {
        std::fs::read_to_string("/proc/sys/net/ipv4/conf/vx0/proxy_arp").unwrap()
    });
    assert_eq!(proxy_arp.trim(), "1");
}
