//! Shared by the integration tests. Each test runs in a network namespace of
//! its own (created by `unshare`, gone when the test's thread ends), so its
//! iptables rules and traffic never touch the machine's: the rules vanish
//! with the namespace even when the test fails. They need root.

#![allow(dead_code)]

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use hortator_apiserver::{ApiServer, ApiServerConfig};
use hortator_store::{RocksOptions, RocksStore, Store};
use k8s_openapi::api::core::v1::{Endpoints, Service};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use nix::sched::CloneFlags;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};

/// Runs `test` on a fresh thread in a new network namespace (loopback up),
/// on a runtime of its own; the test's panic is the caller's.
pub fn in_netns<F, Fut>(test: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let thread = std::thread::spawn(move || {
        nix::sched::unshare(CloneFlags::CLONE_NEWNET)
            .expect("unshare(CLONE_NEWNET): these tests must run as root");
        ip(&["link", "set", "lo", "up"]);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        runtime.block_on(async move {
            tokio::time::timeout(Duration::from_secs(180), test())
                .await
                .expect("the test timed out");
        });
    });
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

/// Runs `ip` with `args` in the caller's namespace; panics on failure.
pub fn ip(args: &[&str]) {
    let output = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        output.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The namespace's rules, as `iptables-save` prints them (without comments
/// and counters, so that two dumps compare).
pub fn iptables_save() -> String {
    let output = Command::new("iptables-save")
        .output()
        .expect("run iptables-save");
    assert!(output.status.success(), "iptables-save failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| match l.strip_prefix(':') {
            Some(chain) => format!(":{}", chain.split(' ').next().unwrap_or_default()),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Retries `probe` every 100 ms until it yields a value; panics after 20 s.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An API server in process, over a store in a temporary directory.
pub struct Cluster {
    pub api: ApiServer,
    pub client: kube::Client,
    _dir: tempfile::TempDir,
}

impl Cluster {
    pub async fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = RocksStore::open(dir.path(), RocksOptions::default()).expect("open the store");
        let api = ApiServer::start(store as Arc<dyn Store>, ApiServerConfig::default())
            .await
            .expect("start the API server");
        let client = kube::Client::new(api.router(), "default");
        Cluster {
            api,
            client,
            _dir: dir,
        }
    }

    /// Creates a service in `default` from its JSON form.
    pub async fn create_service(&self, service: serde_json::Value) -> Service {
        let service: Service = serde_json::from_value(service).expect("a service");
        Api::<Service>::default_namespaced(self.client.clone())
            .create(&PostParams::default(), &service)
            .await
            .expect("create the service")
    }

    pub async fn delete_service(&self, name: &str) {
        Api::<Service>::default_namespaced(self.client.clone())
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete the service");
    }

    /// Sets the ready addresses of service `name`: `addresses` × `ports`
    /// (name, port, protocol).
    pub async fn set_endpoints(
        &self,
        name: &str,
        addresses: &[Ipv4Addr],
        ports: &[(&str, u16, &str)],
    ) {
        let subsets = if addresses.is_empty() {
            serde_json::json!([])
        } else {
            serde_json::json!([{
                "addresses": addresses.iter().map(|a| serde_json::json!({"ip": a.to_string()})).collect::<Vec<_>>(),
                "ports": ports.iter().map(|(n, p, proto)| serde_json::json!({"name": n, "port": p, "protocol": proto})).collect::<Vec<_>>(),
            }])
        };
        let api = Api::<Endpoints>::default_namespaced(self.client.clone());
        let mut endpoints: Endpoints = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "subsets": subsets,
        }))
        .expect("endpoints");
        match api.get_opt(name).await.expect("get endpoints") {
            Some(existing) => {
                endpoints.metadata.resource_version = existing.metadata.resource_version;
                api.replace(name, &PostParams::default(), &endpoints)
                    .await
                    .expect("replace endpoints");
            }
            None => {
                api.create(&PostParams::default(), &endpoints)
                    .await
                    .expect("create endpoints");
            }
        }
    }
}

/// The ClusterIP and the port numbers (port, nodePort) of a created service.
pub fn service_ports(service: &Service) -> (Ipv4Addr, Vec<(u16, Option<u16>)>) {
    let spec = service.spec.as_ref().expect("spec");
    let ip = spec
        .cluster_ip
        .as_deref()
        .and_then(|ip| ip.parse().ok())
        .expect("a ClusterIP");
    let ports = spec
        .ports
        .iter()
        .flatten()
        .map(|p| (p.port as u16, p.node_port.map(|n| n as u16)))
        .collect();
    (ip, ports)
}

/// Serves TCP on `address`: greets each connection with `name` and a
/// newline, then echoes.
pub async fn tcp_server(address: SocketAddrV4, name: &'static str) {
    let listener = TcpListener::bind(address).await.expect("bind a TCP server");
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                if stream
                    .write_all(format!("{name}\n").as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
                let (mut reader, mut writer) = stream.split();
                let _ = tokio::io::copy(&mut reader, &mut writer).await;
            });
        }
    });
}

/// Serves UDP on `address`: answers each datagram with `name:` and the
/// datagram.
pub async fn udp_server(address: SocketAddrV4, name: &'static str) {
    let socket = UdpSocket::bind(address).await.expect("bind a UDP server");
    tokio::spawn(async move {
        let mut buffer = [0u8; 1500];
        loop {
            let Ok((len, from)) = socket.recv_from(&mut buffer).await else {
                continue;
            };
            let mut reply = format!("{name}:").into_bytes();
            reply.extend_from_slice(&buffer[..len]);
            let _ = socket.send_to(&reply, from).await;
        }
    });
}

/// Connects to `address` and reads the server's greeting.
pub async fn hello(address: SocketAddrV4) -> std::io::Result<(String, BufReader<TcpStream>)> {
    let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(address))
        .await
        .map_err(|_| std::io::Error::other("connect timed out"))??;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(5), reader.read_line(&mut line))
        .await
        .map_err(|_| std::io::Error::other("no greeting"))??;
    if line.is_empty() {
        return Err(std::io::Error::other("closed without a greeting"));
    }
    Ok((line.trim().to_string(), reader))
}

/// Sends `data` from a socket connected to `address` (so that only replies
/// from `address` are accepted) and returns the reply.
pub async fn udp_ask(socket: &UdpSocket, data: &str) -> Option<String> {
    socket.send(data.as_bytes()).await.ok()?;
    let mut buffer = [0u8; 1500];
    let len = tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buffer))
        .await
        .ok()?
        .ok()?;
    Some(String::from_utf8_lossy(&buffer[..len]).into_owned())
}

/// A UDP socket on `local` connected to `address`.
pub async fn udp_client(local: Ipv4Addr, address: SocketAddrV4) -> UdpSocket {
    let socket = UdpSocket::bind(SocketAddrV4::new(local, 0))
        .await
        .expect("bind a UDP client");
    socket
        .connect(address)
        .await
        .expect("connect the UDP client");
    socket
}

/// What a pod can be asked to do.
enum PodRequest {
    /// Connect to the address and report the greeting.
    Hello(SocketAddrV4, oneshot::Sender<std::io::Result<String>>),
}

/// A "pod": a network namespace of its own behind a veth pair whose host end
/// has the gateway address, running TCP and UDP servers. Its thread, and so
/// its namespace, ends when the pod is dropped.
pub struct Pod {
    requests: Option<mpsc::Sender<PodRequest>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A server in a pod: TCP or UDP, address, name.
pub enum Server {
    Tcp(SocketAddrV4, &'static str),
    Udp(SocketAddrV4, &'static str),
}

impl Pod {
    /// Creates the veth pair `host_link`/`pod_link`, gives `host_link`
    /// `gateway/24` and `pod_link` `addresses` (/24) in the pod, which routes
    /// everything through the gateway, and starts `servers`. Blocks until
    /// they listen.
    pub fn start(
        host_link: &str,
        pod_link: &'static str,
        gateway: Ipv4Addr,
        addresses: Vec<Ipv4Addr>,
        servers: Vec<Server>,
    ) -> Pod {
        ip(&[
            "link", "add", host_link, "type", "veth", "peer", "name", pod_link,
        ]);
        ip(&["addr", "add", &format!("{gateway}/24"), "dev", host_link]);
        ip(&["link", "set", host_link, "up"]);
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (moved_tx, moved_rx) = std::sync::mpsc::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        let (requests, mut incoming) = mpsc::channel::<PodRequest>(8);
        let thread = std::thread::spawn(move || {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET).expect("unshare the pod namespace");
            tid_tx
                .send(nix::unistd::gettid().as_raw())
                .expect("report the thread id");
            if moved_rx.recv().is_err() {
                return;
            }
            ip(&["link", "set", "lo", "up"]);
            for address in &addresses {
                ip(&["addr", "add", &format!("{address}/24"), "dev", pod_link]);
            }
            ip(&["link", "set", pod_link, "up"]);
            ip(&["route", "add", "default", "via", &gateway.to_string()]);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("pod runtime");
            runtime.block_on(async move {
                for server in servers {
                    match server {
                        Server::Tcp(address, name) => tcp_server(address, name).await,
                        Server::Udp(address, name) => udp_server(address, name).await,
                    }
                }
                let _ = ready_tx.send(());
                while let Some(request) = incoming.recv().await {
                    match request {
                        PodRequest::Hello(address, reply) => {
                            tokio::spawn(async move {
                                let _ = reply.send(hello(address).await.map(|(name, _)| name));
                            });
                        }
                    }
                }
            });
        });
        let tid: i32 = tid_rx.recv().expect("the pod thread's id");
        ip(&["link", "set", pod_link, "netns", &tid.to_string()]);
        moved_tx.send(()).expect("the pod thread");
        ready_rx.recv().expect("the pod's servers");
        Pod {
            requests: Some(requests),
            thread: Some(thread),
        }
    }

    /// Connects from the pod to `address` and returns the greeting.
    pub async fn hello(&self, address: SocketAddrV4) -> std::io::Result<String> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .as_ref()
            .expect("a running pod")
            .send(PodRequest::Hello(address, reply))
            .await
            .map_err(|_| std::io::Error::other("the pod is gone"))?;
        answer
            .await
            .map_err(|_| std::io::Error::other("the pod is gone"))?
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
