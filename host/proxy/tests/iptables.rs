//! The kernel (iptables) mode for real, in a network namespace of the
//! test's own: two nodes' proxies side by side, restarts, removal, and
//! traffic through ClusterIP and NodePort DNAT to a "pod" namespace.

mod common;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use common::{
    Cluster, Pod, Server, eventually, hello, in_netns, ip, iptables_save, udp_ask, udp_client,
};
use hortator_proxy::{Proxy, ProxyConfig, ProxyMode, remove_rules};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn config(node: &str, node_port_address: Ipv4Addr) -> ProxyConfig {
    ProxyConfig {
        mode: ProxyMode::Iptables,
        node_port_addresses: vec![node_port_address],
        sync_period: Duration::from_secs(5),
        ..ProxyConfig::new(node)
    }
}

/// The user-defined chains of the namespace.
fn chains(rules: &str) -> BTreeSet<String> {
    const BUILT_IN: [&str; 5] = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];
    rules
        .lines()
        .filter_map(|l| l.strip_prefix(':'))
        .filter(|c| !BUILT_IN.contains(c))
        .map(str::to_string)
        .collect()
}

/// The tag of a node's per-service chains, read from its ClusterIP chain.
fn tag(rules: &str, node: &str) -> Option<String> {
    let prefix = format!("-A HORTATOR-SVC-{node} ");
    rules
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .find_map(|l| l.split("-j HSVC-").nth(1))
        .and_then(|rest| rest.split('-').next())
        .map(str::to_string)
}

/// The number of rules in `rules` equal to `rule`.
fn count(rules: &str, rule: &str) -> usize {
    rules.lines().filter(|l| *l == rule).count()
}

/// Runs node `node`'s proxy on a runtime of its own until the rules show
/// `endpoint`, then kills the runtime without shutting the proxy down, as a
/// crash would: the rules stay.
async fn crash(cluster: &Cluster, node: &'static str, address: Ipv4Addr, endpoint: &'static str) {
    let client = cluster.client.clone();
    tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async move {
            let proxy = Proxy::start(client, config(node, address))
                .await
                .expect("start");
            eventually("the crashing proxy's rules", || async {
                let rules = iptables_save();
                (tag(&rules, node).is_some() && rules.contains(endpoint)).then_some(())
            })
            .await;
            std::mem::forget(proxy);
        });
    })
    .await
    .expect("the crashing proxy");
}

#[test]
fn rules_are_per_node_rebuilt_on_restart_and_removed_alone() {
    in_netns(|| async {
        let cluster = Cluster::start().await;
        cluster
            .create_service(serde_json::json!({
                "metadata": {"name": "web"},
                "spec": {"type": "NodePort", "ports": [{"port": 80}]},
            }))
            .await;
        let empty = cluster
            .create_service(serde_json::json!({
                "metadata": {"name": "empty"},
                "spec": {"ports": [{"port": 80}]},
            }))
            .await;
        let empty_ip = common::service_ports(&empty).0;
        let two = [Ipv4Addr::new(10, 20, 0, 2), Ipv4Addr::new(10, 20, 1, 2)];
        cluster
            .set_endpoints("web", &two, &[("", 8080, "TCP")])
            .await;
        let node_a = Ipv4Addr::new(127, 0, 0, 2);
        let node_b = Ipv4Addr::new(127, 0, 0, 3);

        let b = Proxy::start(cluster.client.clone(), config("node-b", node_b))
            .await
            .expect("start node-b's proxy");
        crash(&cluster, "node-a", node_a, "10.20.1.2:8080").await;
        let rules = eventually("both nodes' rules", || async {
            let rules = iptables_save();
            (tag(&rules, "node-a").is_some() && tag(&rules, "node-b").is_some()).then_some(rules)
        })
        .await;
        let (tag_a, tag_b) = (
            tag(&rules, "node-a").unwrap(),
            tag(&rules, "node-b").unwrap(),
        );
        assert_ne!(tag_a, tag_b);
        for chain in chains(&rules) {
            assert!(
                chain.starts_with("HORTATOR-")
                    || chain.starts_with("HSVC-")
                    || chain.starts_with("HSEP-"),
                "{chain}: not a proxy chain\n{rules}"
            );
        }
        assert!(
            rules.contains("-A HORTATOR-NP-node-a -d 127.0.0.2/32 -p tcp"),
            "{rules}"
        );
        assert!(
            rules.contains("-A HORTATOR-NP-node-b -d 127.0.0.3/32 -p tcp"),
            "{rules}"
        );
        assert!(
            !rules.contains("-A HORTATOR-NP-node-a -d 127.0.0.3/32"),
            "{rules}"
        );
        assert!(
            rules.contains(&format!("-A HORTATOR-NOEP-node-a -d {empty_ip}/32 -p tcp")),
            "{rules}"
        );
        assert!(rules.contains("--reject-with tcp-reset"), "{rules}");

        // node-a restarts over its leftover rules while an endpoint changes:
        // nothing is duplicated and the stale endpoint chain goes.
        let a = Proxy::start(cluster.client.clone(), config("node-a", node_a))
            .await
            .expect("restart node-a's proxy");
        let three = [Ipv4Addr::new(10, 20, 0, 2), Ipv4Addr::new(10, 20, 0, 3)];
        cluster
            .set_endpoints("web", &three, &[("", 8080, "TCP")])
            .await;
        let rules = eventually("the new endpoint in both nodes' rules", || async {
            let rules = iptables_save();
            let node = |tag: &str| {
                rules
                    .lines()
                    .filter(|l| {
                        l.starts_with(&format!("-A HSEP-{tag}-"))
                            && l.contains("DNAT --to-destination 10.20.0.3:8080")
                    })
                    .count()
                    == 1
            };
            (node(&tag_a) && node(&tag_b) && !rules.contains("10.20.1.2")).then_some(rules)
        })
        .await;
        for node in ["node-a", "node-b"] {
            for builtin in ["PREROUTING", "OUTPUT"] {
                assert_eq!(
                    count(&rules, &format!("-A {builtin} -j HORTATOR-SVC-{node}")),
                    1,
                    "{rules}"
                );
            }
            assert_eq!(
                count(&rules, &format!("-A POSTROUTING -j HORTATOR-SMASQ-{node}")),
                1,
                "{rules}"
            );
            for builtin in ["INPUT", "FORWARD", "OUTPUT"] {
                let jump =
                    format!("-A {builtin} -m conntrack --ctstate NEW -j HORTATOR-NOEP-{node}");
                assert_eq!(count(&rules, &jump), 1, "{rules}");
            }
        }
        let all = chains(&rules);
        for tag in [&tag_a, &tag_b] {
            assert_eq!(
                all.iter()
                    .filter(|c| c.starts_with(&format!("HSVC-{tag}-")))
                    .count(),
                1,
                "{rules}"
            );
            assert_eq!(
                all.iter()
                    .filter(|c| c.starts_with(&format!("HSEP-{tag}-")))
                    .count(),
                2,
                "{rules}"
            );
        }
        assert_eq!(
            rules
                .lines()
                .filter(|l| l.contains("--probability 0.5000000000"))
                .count(),
            2,
            "{rules}"
        );

        // node-a shuts down: its rules go, node-b's stay.
        let before_b: Vec<String> = rules
            .lines()
            .filter(|l| l.contains("node-b") || l.contains(tag_b.as_str()))
            .map(str::to_string)
            .collect();
        a.shutdown().await.expect("shut node-a's proxy down");
        let rules = iptables_save();
        assert!(
            !rules.contains("node-a") && !rules.contains(tag_a.as_str()),
            "{rules}"
        );
        let after_b: Vec<String> = rules
            .lines()
            .filter(|l| l.contains("node-b") || l.contains(tag_b.as_str()))
            .map(str::to_string)
            .collect();
        assert_eq!(before_b, after_b);

        // remove_rules (agent --cleanup) removes a crashed proxy's rules alone.
        crash(&cluster, "node-a", node_a, "10.20.0.3:8080").await;
        remove_rules("node-a").expect("remove node-a's rules");
        let rules = iptables_save();
        assert!(
            !rules.contains("node-a") && !rules.contains(tag_a.as_str()),
            "{rules}"
        );
        let still_b: Vec<String> = rules
            .lines()
            .filter(|l| l.contains("node-b") || l.contains(tag_b.as_str()))
            .map(str::to_string)
            .collect();
        assert_eq!(before_b, still_b);

        drop(b);
        let rules = iptables_save();
        assert!(chains(&rules).is_empty(), "{rules}");
        assert!(!rules.contains("HORTATOR"), "{rules}");
    });
}

#[test]
fn traffic_through_cluster_ip_and_node_port_dnat() {
    in_netns(|| async {
        let gateway = Ipv4Addr::new(10, 20, 0, 1);
        let a = Ipv4Addr::new(10, 20, 0, 2);
        let b = Ipv4Addr::new(10, 20, 0, 3);
        let pod = Pod::start(
            "pod0",
            "pod1",
            gateway,
            vec![a, b],
            vec![
                Server::Tcp(SocketAddrV4::new(a, 8080), "a"),
                Server::Tcp(SocketAddrV4::new(b, 8080), "b"),
                Server::Udp(SocketAddrV4::new(a, 5353), "a"),
                Server::Udp(SocketAddrV4::new(b, 5353), "b"),
            ],
        );
        // ClusterIPs are routed towards the pods; only DNAT makes them answer.
        ip(&["route", "add", "10.254.0.0/16", "dev", "pod0"]);
        let cluster = Cluster::start().await;
        let web = cluster
            .create_service(serde_json::json!({
                "metadata": {"name": "web"},
                "spec": {"type": "NodePort", "ports": [
                    {"name": "http", "port": 80},
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                ]},
            }))
            .await;
        let sticky = cluster
            .create_service(serde_json::json!({
                "metadata": {"name": "sticky"},
                "spec": {"ports": [{"port": 80}], "sessionAffinity": "ClientIP"},
            }))
            .await;
        let empty = cluster
            .create_service(serde_json::json!({
                "metadata": {"name": "empty"},
                "spec": {"ports": [{"port": 80}]},
            }))
            .await;
        let hairpin = cluster
            .create_service(serde_json::json!({
                "metadata": {"name": "hairpin"},
                "spec": {"ports": [{"port": 80}]},
            }))
            .await;
        cluster
            .set_endpoints("hairpin", &[a], &[("", 8080, "TCP")])
            .await;
        let hairpin_ip = common::service_ports(&hairpin).0;
        let ports = [("http", 8080, "TCP"), ("dns", 5353, "UDP")];
        cluster.set_endpoints("web", &[a, b], &ports).await;
        cluster
            .set_endpoints("sticky", &[a, b], &[("", 8080, "TCP")])
            .await;
        let (web_ip, web_ports) = common::service_ports(&web);
        let node_port = web_ports[0].1.unwrap();
        let sticky_ip = common::service_ports(&sticky).0;
        let empty_ip = common::service_ports(&empty).0;
        let _proxy = Proxy::start(
            cluster.client.clone(),
            config("node-a", Ipv4Addr::LOCALHOST),
        )
        .await
        .expect("start the proxy");
        eventually("the rules", || async {
            let rules = iptables_save();
            (rules.contains("DNAT") && rules.contains("default/empty has no endpoints"))
                .then_some(())
        })
        .await;

        // From the node (a source inside the cluster CIDR): spread over both.
        let frontend = SocketAddrV4::new(web_ip, 80);
        let mut seen = BTreeSet::new();
        for _ in 0..40 {
            seen.insert(hello(frontend).await.expect("the ClusterIP").0);
        }
        assert_eq!(seen, BTreeSet::from(["a".to_string(), "b".to_string()]));

        // UDP; the reply comes from the ClusterIP (the socket is connected).
        let client = udp_client(gateway, SocketAddrV4::new(web_ip, 53)).await;
        let reply = udp_ask(&client, "q").await.expect("a UDP reply");
        assert!(reply == "a:q" || reply == "b:q", "{reply}");

        // NodePort on 127.0.0.1: loopback sources are masqueraded.
        let (name, _) = hello(SocketAddrV4::new(Ipv4Addr::LOCALHOST, node_port))
            .await
            .expect("the NodePort on 127.0.0.1");
        assert!(name == "a" || name == "b", "{name}");

        // ClientIP affinity.
        let sticky_frontend = SocketAddrV4::new(sticky_ip, 80);
        let mut seen = BTreeSet::new();
        for _ in 0..10 {
            seen.insert(
                hello(sticky_frontend)
                    .await
                    .expect("the sticky ClusterIP")
                    .0,
            );
        }
        assert_eq!(seen.len(), 1, "{seen:?}");

        // No endpoints: rejected at once.
        let refused = hello(SocketAddrV4::new(empty_ip, 80)).await;
        let error = refused.expect_err("a service without endpoints answered");
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::ConnectionRefused,
            "{error}"
        );

        // Hairpin: a pod (source a) reaching itself through its service.
        let name = pod
            .hello(SocketAddrV4::new(hairpin_ip, 80))
            .await
            .expect("the pod reaching itself through its ClusterIP");
        assert_eq!(name, "a");

        // A removed endpoint loses its connections (conntrack entries deleted).
        let (name, mut open) = hello(frontend).await.unwrap();
        let remaining = if name == "a" { b } else { a };
        cluster.set_endpoints("web", &[remaining], &ports).await;
        eventually("the endpoint to leave the rules", || async {
            let gone = if name == "a" { a } else { b };
            let target = format!("--to-destination {gone}:8080");
            let web_rules = iptables_save();
            let mut dnat = web_rules
                .lines()
                .filter(|l| l.contains("default/web:http") && l.contains(&target));
            dnat.next().is_none().then_some(())
        })
        .await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let mut buffer = [0u8; 16];
            if open.write_all(b"ping\n").await.is_err() {
                break;
            }
            match tokio::time::timeout(Duration::from_millis(500), open.read(&mut buffer)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                _ => {}
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the connection to the removed endpoint still works"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}
