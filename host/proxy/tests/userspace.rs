//! The userspace proxy for real, in a network namespace of the test's own:
//! services from an in-process API server, echo servers on 127.0.0.x as
//! endpoints, clients reaching them through ClusterIPs and NodePorts.

mod common;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use common::{Cluster, eventually, hello, in_netns, ip, iptables_save, udp_ask, udp_client};
use hortator_proxy::{Proxy, ProxyConfig, ProxyMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const A: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
const B: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 12);
/// The address clients use towards ClusterIPs (on a veth of the test's own).
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);

/// A route for the service CIDR, so that clients can address ClusterIPs; the
/// veth's other end has no address, so nothing answers unredirected traffic.
fn route_service_cidr() {
    ip(&[
        "link", "add", "svc0", "type", "veth", "peer", "name", "svc1",
    ]);
    ip(&["addr", "add", &format!("{CLIENT}/24"), "dev", "svc0"]);
    ip(&["link", "set", "svc0", "up"]);
    ip(&["link", "set", "svc1", "up"]);
    ip(&["route", "add", "10.254.0.0/16", "dev", "svc0"]);
}

fn config(node: &str) -> ProxyConfig {
    ProxyConfig {
        mode: ProxyMode::Userspace,
        node_port_addresses: vec![Ipv4Addr::LOCALHOST],
        sync_period: Duration::from_secs(5),
        ..ProxyConfig::new(node)
    }
}

/// Waits until the proxy redirects `ip`.
async fn redirected(ip: Ipv4Addr) {
    eventually("the ClusterIP to be redirected", || async {
        iptables_save()
            .contains(&format!("-A HORTATOR-SVC-node-a -d {ip}/32"))
            .then_some(())
    })
    .await;
}

async fn start_servers() {
    common::tcp_server(SocketAddrV4::new(A, 8080), "a").await;
    common::tcp_server(SocketAddrV4::new(B, 8080), "b").await;
    common::udp_server(SocketAddrV4::new(A, 5353), "a").await;
    common::udp_server(SocketAddrV4::new(B, 5353), "b").await;
}

#[test]
fn tcp_and_udp_through_cluster_ip_and_node_port() {
    in_netns(|| async {
        route_service_cidr();
        start_servers().await;
        let cluster = Cluster::start().await;
        let service = cluster
            .create_service(serde_json::json!({
                "metadata": {"name": "echo"},
                "spec": {"type": "NodePort", "ports": [
                    {"name": "tcp", "port": 80, "protocol": "TCP"},
                    {"name": "udp", "port": 53, "protocol": "UDP"},
                ]},
            }))
            .await;
        cluster
            .set_endpoints(
                "echo",
                &[A, B],
                &[("tcp", 8080, "TCP"), ("udp", 5353, "UDP")],
            )
            .await;
        let (ip, ports) = common::service_ports(&service);
        let (tcp_node_port, udp_node_port) = (ports[0].1.unwrap(), ports[1].1.unwrap());
        let proxy = Proxy::start(cluster.client.clone(), config("node-a"))
            .await
            .expect("start the proxy");

        let frontend = SocketAddrV4::new(ip, 80);
        redirected(ip).await;
        let (first, mut connection) = eventually("the ClusterIP to answer", || async {
            hello(frontend).await.ok()
        })
        .await;
        connection.write_all(b"ping\n").await.unwrap();
        let mut echoed = [0u8; 5];
        connection.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"ping\n");
        // Round robin: the next connections alternate.
        let mut names = vec![first];
        for _ in 0..3 {
            names.push(hello(frontend).await.unwrap().0);
        }
        assert!(
            names == ["a", "b", "a", "b"] || names == ["b", "a", "b", "a"],
            "{names:?}"
        );

        // UDP: each client address is an association with one endpoint;
        // replies come back from the ClusterIP (the socket is connected).
        let one = udp_client(CLIENT, SocketAddrV4::new(ip, 53)).await;
        let two = udp_client(CLIENT, SocketAddrV4::new(ip, 53)).await;
        let reply = udp_ask(&one, "x")
            .await
            .expect("a UDP reply through the ClusterIP");
        let other = udp_ask(&two, "y")
            .await
            .expect("a UDP reply for a second client");
        assert_ne!(reply[..1], other[..1], "{reply} {other}");
        assert_eq!(
            udp_ask(&one, "z").await.unwrap(),
            format!("{}:z", &reply[..1])
        );

        // NodePorts on 127.0.0.1, TCP and UDP.
        let (name, _) = hello(SocketAddrV4::new(Ipv4Addr::LOCALHOST, tcp_node_port))
            .await
            .expect("the TCP NodePort");
        assert!(name == "a" || name == "b", "{name}");
        let node = udp_client(
            Ipv4Addr::LOCALHOST,
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, udp_node_port),
        )
        .await;
        let reply = udp_ask(&node, "n").await.expect("the UDP NodePort");
        assert!(reply == "a:n" || reply == "b:n", "{reply}");

        let rules = iptables_save();
        assert!(
            rules.contains(&format!("-A HORTATOR-SVC-node-a -d {ip}/32 -p tcp -m comment --comment \"default/echo:tcp\" -m tcp --dport 80 -j REDIRECT --to-ports")),
            "{rules}"
        );

        // The service goes: its listeners close and its rules go.
        cluster.delete_service("echo").await;
        eventually("the node port to close", || async {
            hello(SocketAddrV4::new(Ipv4Addr::LOCALHOST, tcp_node_port))
                .await
                .is_err()
                .then_some(())
        })
        .await;
        eventually("the service's rules to go", || async {
            (!iptables_save().contains("default/echo")).then_some(())
        })
        .await;

        proxy.shutdown().await.expect("shut the proxy down");
        let rules = iptables_save();
        assert!(!rules.contains("HORTATOR"), "{rules}");
    });
}

#[test]
fn removed_endpoints_lose_their_connections_and_affinity_pins_clients() {
    in_netns(|| async {
        route_service_cidr();
        start_servers().await;
        let cluster = Cluster::start().await;
        let service = cluster
            .create_service(serde_json::json!({
                "metadata": {"name": "sticky"},
                "spec": {
                    "ports": [{"port": 80}],
                    "sessionAffinity": "ClientIP",
                    "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 600}},
                },
            }))
            .await;
        cluster
            .set_endpoints("sticky", &[A, B], &[("", 8080, "TCP")])
            .await;
        let frontend = SocketAddrV4::new(common::service_ports(&service).0, 80);
        let proxy = Proxy::start(cluster.client.clone(), config("node-a"))
            .await
            .expect("start the proxy");
        redirected(*frontend.ip()).await;

        let (pinned, mut open) = eventually("the ClusterIP to answer", || async {
            hello(frontend).await.ok()
        })
        .await;
        let mut seen = BTreeSet::new();
        for _ in 0..6 {
            seen.insert(hello(frontend).await.unwrap().0);
        }
        assert_eq!(seen, BTreeSet::from([pinned.clone()]), "ClientIP affinity");

        // The pinned endpoint goes: its connection is closed, new ones go to
        // the other endpoint.
        let (remaining, other) = if pinned == "a" { (B, "b") } else { (A, "a") };
        cluster
            .set_endpoints("sticky", &[remaining], &[("", 8080, "TCP")])
            .await;
        let mut buffer = [0u8; 16];
        let closed = tokio::time::timeout(Duration::from_secs(10), open.read(&mut buffer))
            .await
            .expect("the connection to the removed endpoint was not closed");
        assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
        let moved = eventually("the other endpoint", || async {
            hello(frontend).await.ok().filter(|(name, _)| name == other)
        })
        .await;
        drop(moved);

        // No endpoints: connections are accepted and closed.
        cluster.set_endpoints("sticky", &[], &[]).await;
        eventually("connections to be refused", || async {
            hello(frontend).await.is_err().then_some(())
        })
        .await;
        drop(proxy);
        let rules = iptables_save();
        assert!(!rules.contains("HORTATOR"), "{rules}");
    });
}
