//! `pods/log` and `pods/exec` forwarded to a node's agent — in process through the router
//! registered in `NodeEndpoints`, and over the network at the Node's address and kubelet
//! port — with a small stand-in agent, the API server served on a real loopback socket.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade, close_code};
use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use hortator_apiserver::{ApiServer, ApiServerConfig};
use hortator_store::{RocksOptions, RocksStore, Store};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// A running API server with a stand-in agent in process (`node-a`) and one over TCP (`node-b`).
struct Cluster {
    api: ApiServer,
    addr: SocketAddr,
    client: kube::Client,
    /// Tells when a followed log stream of the agents is dropped.
    dropped: mpsc::UnboundedReceiver<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.api.shutdown();
    }
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

async fn start() -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(dir.path(), RocksOptions::default()).unwrap();
    let api = ApiServer::start(store as Arc<dyn Store>, ApiServerConfig::default())
        .await
        .unwrap();
    let addr = serve(api.router()).await;
    let client = kube::Client::new(api.router(), "default");
    let (dropped_tx, dropped) = mpsc::unbounded_channel();
    api.node_endpoints()
        .register("node-a", agent(dropped_tx.clone()));
    let remote = serve(agent(dropped_tx)).await;
    add_node(&client, "node-b", "127.0.0.1", remote.port()).await;
    let cluster = Cluster {
        api,
        addr,
        client,
        dropped,
        _dir: dir,
    };
    cluster.add_pod("web", Some("node-a"), &["app"]).await;
    cluster.add_pod("remote", Some("node-b"), &["a", "b"]).await;
    cluster
}

async fn add_node(client: &kube::Client, name: &str, ip: &str, port: u16) {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    let status = json!({"status": {
        "addresses": [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": ip}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
    }});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap();
}

impl Cluster {
    async fn add_pod(&self, name: &str, node: Option<&str>, containers: &[&str]) {
        let containers: Vec<Value> = containers
            .iter()
            .map(|c| json!({"name": c, "image": "busybox"}))
            .collect();
        let mut pod = json!({"metadata": {"name": name}, "spec": {"containers": containers}});
        if let Some(node) = node {
            pod["spec"]["nodeName"] = json!(node);
        }
        let pods: Api<Pod> = Api::default_namespaced(self.client.clone());
        pods.create(
            &PostParams::default(),
            &serde_json::from_value(pod).unwrap(),
        )
        .await
        .unwrap();
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> hyper::Response<hyper::body::Incoming> {
        let stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        sender
            .send_request(req.body(http_body_util::Empty::<Bytes>::new()).unwrap())
            .await
            .unwrap()
    }

    async fn get(&self, path: &str) -> (u16, String) {
        self.call("GET", path, &[]).await
    }

    async fn call(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        let response = self.request(method, path, headers).await;
        let code = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (code, String::from_utf8_lossy(&body).into_owned())
    }

    /// A followed log: the first chunk arrives, then the client leaves and the agent's
    /// stream is dropped.
    async fn follow_then_leave(&mut self, path: &str) {
        let response = self.request("GET", path, &[]).await;
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
            .into_data()
            .unwrap();
        assert_eq!(first, "line 1\n");
        drop(body);
        tokio::time::timeout(Duration::from_secs(5), self.dropped.recv())
            .await
            .expect("the agent's stream ends when the client leaves");
    }
}

/// A stream that yields one line, then waits forever; it reports being dropped.
struct Followed(mpsc::UnboundedSender<()>);

impl Drop for Followed {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

fn status(code: u16, message: &str) -> Response {
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "code": code});
    (
        axum::http::StatusCode::from_u16(code).unwrap(),
        [("content-type", "application/json")],
        status.to_string(),
    )
        .into_response()
}

/// The stand-in agent: logs echo what was asked; exec echoes stdin to stdout.
fn agent(dropped: mpsc::UnboundedSender<()>) -> Router {
    let logs = move |Path((ns, pod, c)): Path<(String, String, String)>,
                     RawQuery(query): RawQuery| async move {
        let query = query.unwrap_or_default();
        if query.contains("follow=true") {
            let guard = Followed(dropped);
            let lines = futures::stream::once(async { Ok::<_, std::io::Error>("line 1\n") })
                .chain(futures::stream::pending())
                .map(move |line| {
                    let _ = &guard;
                    line
                });
            return Body::from_stream(lines).into_response();
        }
        format!("logs {ns}/{pod}/{c}?{query}").into_response()
    };
    let exec = |Path((ns, pod, c)): Path<(String, String, String)>,
                RawQuery(query): RawQuery,
                upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>| async move {
        let Ok(upgrade) = upgrade else {
            return status(400, "agent: not a WebSocket upgrade");
        };
        let hello = format!("exec {ns}/{pod}/{c}?{}", query.unwrap_or_default());
        upgrade
            .protocols(["v5.channel.k8s.io", "v4.channel.k8s.io"])
            .on_upgrade(move |mut socket| async move {
                let frame = |channel: u8, data: &[u8]| {
                    Message::Binary([&[channel][..], data].concat().into())
                };
                socket.send(frame(1, hello.as_bytes())).await.unwrap();
                while let Some(Ok(message)) = socket.next().await {
                    let Message::Binary(data) = message else {
                        continue;
                    };
                    match data[0] {
                        0 => socket.send(frame(1, &data[1..])).await.unwrap(),
                        255 => {
                            let done = br#"{"metadata":{},"status":"Success"}"#;
                            socket.send(frame(3, done)).await.unwrap();
                            let close = CloseFrame {
                                code: close_code::NORMAL,
                                reason: "".into(),
                            };
                            socket.send(Message::Close(Some(close))).await.unwrap();
                        }
                        _ => {}
                    }
                }
            })
    };
    Router::new()
        .route("/containerLogs/{ns}/{pod}/{c}", get(logs))
        .route("/exec/{ns}/{pod}/{c}", get(exec).post(exec))
}

fn message(body: &str) -> String {
    let status: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{body}"));
    assert_eq!(status["kind"], "Status", "{body}");
    status["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn logs_are_forwarded_in_process_and_over_the_network() {
    let mut cluster = start().await;
    assert_eq!(
        cluster
            .get("/api/v1/namespaces/default/pods/web/log?tailLines=3&timestamps=true")
            .await,
        (
            200,
            "logs default/web/app?tailLines=3&timestamps=true".into()
        )
    );
    assert_eq!(
        cluster
            .get("/api/v1/namespaces/default/pods/remote/log?container=b&previous=true")
            .await,
        (200, "logs default/remote/b?previous=true".into())
    );
    cluster
        .follow_then_leave("/api/v1/namespaces/default/pods/web/log?follow=true")
        .await;
    cluster
        .follow_then_leave("/api/v1/namespaces/default/pods/remote/log?container=a&follow=true")
        .await;

    // The in-process transport of `hortator up` components reads logs too.
    let pods: Api<Pod> = Api::default_namespaced(cluster.client.clone());
    let logs = pods.logs("web", &Default::default()).await.unwrap();
    assert_eq!(logs, "logs default/web/app?");
}

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn recv(ws: &mut Client) -> Option<WsMessage> {
    tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("a message in time")
        .map(Result::unwrap)
}

#[tokio::test]
async fn exec_upgrades_are_forwarded_both_ways() {
    let cluster = start().await;
    for (pod, container) in [("web", "app"), ("remote", "b")] {
        let path = format!(
            "/api/v1/namespaces/default/pods/{pod}/exec?command=sh&command=-c&command=echo%20hi&container={container}&stdin=true&stdout=true"
        );
        let mut req = format!("ws://{}{path}", cluster.addr)
            .into_client_request()
            .unwrap();
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "v5.channel.k8s.io, v4.channel.k8s.io".parse().unwrap(),
        );
        let (mut ws, response) = tokio_tungstenite::connect_async(req).await.unwrap();
        assert_eq!(
            response.headers()["Sec-WebSocket-Protocol"],
            "v5.channel.k8s.io"
        );
        let hello = format!(
            "\x01exec default/{pod}/{container}?command=sh&command=-c&command=echo%20hi&stdin=true&stdout=true"
        );
        assert_eq!(recv(&mut ws).await, Some(WsMessage::Binary(hello.into())));
        ws.send(WsMessage::Binary(Bytes::from_static(b"\x00ping")))
            .await
            .unwrap();
        assert_eq!(
            recv(&mut ws).await,
            Some(WsMessage::Binary(Bytes::from_static(b"\x01ping")))
        );
        ws.send(WsMessage::Binary(Bytes::from_static(&[255, 0])))
            .await
            .unwrap();
        let mut rest = Vec::new();
        while let Some(message) = recv(&mut ws).await {
            rest.push(message);
        }
        assert_eq!(
            rest[0],
            WsMessage::Binary(Bytes::from_static(
                b"\x03{\"metadata\":{},\"status\":\"Success\"}"
            ))
        );
        match &rest[1] {
            WsMessage::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Normal),
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn bad_requests_get_a_status() {
    let cluster = start().await;
    cluster.add_pod("idle", None, &["app"]).await;
    cluster.add_pod("lost", Some("ghost"), &["app"]).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    add_node(&cluster.client, "down", "127.0.0.1", closed).await;
    cluster.add_pod("stranded", Some("down"), &["app"]).await;
    let base = "/api/v1/namespaces/default/pods";

    let cases: &[(&str, u16, &str)] = &[
        ("missing/log", 404, "pods \"missing\" not found"),
        ("missing/exec?command=ls", 404, "pods \"missing\" not found"),
        (
            "idle/log",
            400,
            "pod \"idle\" does not have a host assigned",
        ),
        (
            "remote/log",
            400,
            "a container name must be specified for pod remote, choose one of: [a b]",
        ),
        (
            "remote/log?container=zzz",
            400,
            "container zzz is not valid for pod remote",
        ),
        (
            "web/log?tailLines=-1",
            422,
            "PodLogOptions \"web\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0",
        ),
        (
            "web/log?tailLines=ten",
            400,
            "invalid value for tailLines: \"ten\"",
        ),
        (
            "lost/log",
            503,
            "no agent is known for node \"ghost\": the node is not registered",
        ),
    ];
    for (path, code, text) in cases {
        let (got, body) = cluster.get(&format!("{base}/{path}")).await;
        assert_eq!((got, message(&body)), (*code, text.to_string()), "{path}");
    }

    let (code, body) = cluster.get(&format!("{base}/stranded/log")).await;
    assert_eq!(code, 503);
    assert!(
        message(&body).starts_with(&format!(
            "the agent of node \"down\" at 127.0.0.1:{closed} is unreachable: "
        )),
        "{body}"
    );
    let (code, body) = cluster
        .get(&format!("{base}/web/exec?command=ls&stdout=true"))
        .await;
    assert_eq!(code, 400);
    assert!(message(&body).contains("WebSocket upgrade"), "{body}");
    let (code, body) = cluster
        .call("DELETE", &format!("{base}/web/log"), &[])
        .await;
    assert_eq!(code, 405, "{body}");

    // An upgrade the agent refuses (SPDY): its answer is relayed, in process and over the network.
    let spdy = [("connection", "Upgrade"), ("upgrade", "SPDY/3.1")];
    for pod in ["web", "remote"] {
        let path = format!("{base}/{pod}/exec?command=ls&stdout=true&container=a");
        let path = if pod == "web" {
            path.replace("&container=a", "")
        } else {
            path
        };
        let (code, body) = cluster.call("POST", &path, &spdy).await;
        assert_eq!(
            (code, message(&body)),
            (400, "agent: not a WebSocket upgrade".to_string()),
            "{pod}"
        );
    }

    let (_, discovery) = cluster.get("/api/v1").await;
    let discovery: Value = serde_json::from_str(&discovery).unwrap();
    let resources = discovery["resources"].as_array().unwrap();
    let find = |name: &str| resources.iter().find(|r| r["name"] == name).cloned();
    assert_eq!(find("pods/log").unwrap()["verbs"], json!(["get"]));
    assert_eq!(find("pods/exec").unwrap()["kind"], json!("PodExecOptions"));
}
