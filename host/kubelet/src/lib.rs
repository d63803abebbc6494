//! Hortator's node agent (kubelet): registers its Node and heartbeats, and runs the pods
//! bound to it as Docker containers behind a pause container, wired into the pod network by
//! the network-driver plugin. Its HTTP endpoint serves container logs and exec, and the
//! node's and pods' statistics at `/stats/summary` (see `hortator-monitor`).
//!
//! ```no_run
//! # async fn demo(client: kube::Client, plugins: std::sync::Arc<hortator_plugin_runtime::PluginManager>) -> Result<(), hortator_kubelet::Error> {
//! let config = hortator_kubelet::KubeletConfig::new("node-1", "/var/lib/hortator/agent".into());
//! let agent = hortator_kubelet::Kubelet::start(client, plugins, config).await?;
//! let router = agent.router(); // what the API server forwards logs and exec to
//! # let _ = router; Ok(()) }
//! ```

mod config;
mod env;
mod hooks;
mod manager;
mod metrics;
mod network;
mod node;
mod pause;
mod pods;
mod probes;
mod runtime;
mod server;
mod volumes;

use std::sync::Arc;
use std::time::Duration;

use axum::response::IntoResponse;
use hortator_plugin_runtime::PluginManager;
use tokio::sync::{OnceCell, watch};
use tokio::task::JoinHandle;

pub use config::{
    DEFAULT_CLUSTER_CIDR, DEFAULT_PORT, KubeletConfig, default_node_ip, default_node_name,
};
pub use node::KUBELET_VERSION;
pub use pause::PAUSE_IMAGE;

/// The pods' directories (volumes), by uid, under the agent's root directory.
const PODS_DIR: &str = "pods";

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A directory could not be created.
    #[error("cannot create {path}: {source}")]
    Directory {
        /// The directory.
        path: String,
        /// The reason.
        source: std::io::Error,
    },
    /// Pod networking could not be set up.
    #[error("pod network: {0}")]
    Network(String),
}

/// Remove the iptables rules of node `node_name`'s agent (host ports, masquerading,
/// forwarding), for a node taken out of service: a running agent keeps them, since its pods
/// outlive it. A new agent rebuilds them.
pub fn remove_network_rules(node_name: &str) -> Result<(), Error> {
    network::remove_rules(node_name).map_err(|e| Error::Network(e.to_string()))
}

/// A running node agent; dropping it stops the agent (the pods keep running, and a new
/// agent adopts them).
pub struct Kubelet {
    router: axum::Router,
    task: JoinHandle<()>,
    metrics: metrics::KubeletMetrics,
}

impl Kubelet {
    /// Start the agent: connect to the engine (retrying while it is unreachable), register
    /// the Node, heartbeat, and run the pods bound to it.
    pub async fn start(
        client: kube::Client,
        plugins: Arc<PluginManager>,
        config: KubeletConfig,
    ) -> Result<Kubelet, Error> {
        let pods_dir = config.root_dir.join(PODS_DIR);
        let network_dir = config.root_dir.join("network");
        for dir in [&pods_dir, &network_dir] {
            std::fs::create_dir_all(dir).map_err(|source| Error::Directory {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let node_info = hortator_plugin_runtime::networking::NodeInfo {
            name: config.node_name.clone(),
            addresses: vec![config.node_ip.to_string()],
            labels: config
                .labels
                .iter()
                .map(|(k, v)| hortator_plugin_runtime::scheduling::KeyValue {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
        };
        let network = Arc::new(
            network::PodNetworking::new(
                plugins,
                node_info,
                config.cluster_cidr,
                network_dir,
                &config.node_name,
            )
            .map_err(|e| Error::Network(e.to_string()))?,
        );
        let engine: Arc<OnceCell<axum::Router>> = Arc::default();
        let router = deferred(engine.clone());
        let metrics = metrics::KubeletMetrics::default();
        let task = tokio::spawn(run(client, config, network, engine, metrics.clone()));
        Ok(Kubelet {
            router,
            task,
            metrics,
        })
    }

    /// The agent's endpoint (logs, exec, stats), which the caller serves on
    /// `config.port` or hands to an API server in the same process.
    pub fn router(&self) -> axum::Router {
        self.router.clone()
    }

    /// Register the agent's metric families (pod start latency, container restarts) in
    /// `registry`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.metrics.register(registry);
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connect to the engine, register, heartbeat, run pods; keep retrying what fails.
async fn run(
    client: kube::Client,
    config: KubeletConfig,
    network: Arc<network::PodNetworking>,
    engine: Arc<OnceCell<axum::Router>>,
    metrics: metrics::KubeletMetrics,
) {
    let socket = config.docker_socket.display().to_string();
    let (health_tx, health_rx) = watch::channel::<node::EngineHealth>(Err(format!(
        "cannot connect to the Docker engine at unix://{socket}"
    )));
    let mut docker = connect(&config, &health_tx).await;
    let subnet = loop {
        let health = health_rx.borrow().clone();
        match node::register(&client, &config, &network, &health).await {
            Ok(subnet) => break subnet,
            Err(e) => {
                tracing::warn!(error = %e, "node registration failed; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    };
    network.set_subnet(subnet);
    let _heartbeat = AbortOnDrop(tokio::spawn(node::heartbeat(
        client.clone(),
        config.clone(),
        health_rx,
    )));
    let docker = loop {
        if let Some(docker) = docker.take() {
            break docker;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        docker = connect(&config, &health_tx).await;
    };
    let runtime = runtime::Runtime::new(docker.clone(), &config.node_name);
    while let Err(e) = runtime.ensure_pause_image().await {
        tracing::error!(error = %e, "cannot create the pause image; retrying");
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let services_api: kube::Api<k8s_openapi::api::core::v1::Service> =
        kube::Api::all(client.clone());
    let (services, writer) = kube::runtime::reflector::store();
    let services_task = AbortOnDrop(tokio::spawn(async move {
        use futures::StreamExt;
        use kube::runtime::WatchStreamExt;
        let stream = kube::runtime::watcher(services_api, Default::default()).default_backoff();
        kube::runtime::reflector(writer, stream)
            .for_each(|_| async {})
            .await;
    }));
    let registry = pods::Registry::default();
    let ctx = Arc::new(pods::Context {
        recorder: hortator_events::Recorder::spawn(
            client.clone(),
            "kubelet",
            Some(&config.node_name),
        ),
        client,
        runtime,
        network,
        services,
        pods_dir: config.root_dir.join(PODS_DIR),
        node_ip: config.node_ip,
        node_name: config.node_name.clone(),
        registry: registry.clone(),
        metrics,
    });
    let (monitor, _sampling) =
        hortator_monitor::Monitor::start(docker.clone(), runtime::monitor_config(&config));
    let routes = server::router(docker.clone(), Arc::new(registry)).merge(stats_router(monitor));
    let _ = engine.set(routes);
    let _health = AbortOnDrop(tokio::spawn(watch_engine(docker, socket, health_tx)));
    // Services must be known before the first container starts (their variables).
    let _ = tokio::time::timeout(Duration::from_secs(10), ctx.services.wait_until_ready()).await;
    manager::run(ctx).await;
    drop(services_task);
}

/// `/stats/summary`: the kubelet's stats/v1alpha1 Summary of this node and its pods.
fn stats_router(monitor: hortator_monitor::Monitor) -> axum::Router {
    axum::Router::new().route(
        "/stats/summary",
        axum::routing::get(move || {
            let monitor = monitor.clone();
            async move { axum::Json(monitor.summary()) }
        }),
    )
}

/// Try the engine once; report the outcome through `health`.
async fn connect(
    config: &KubeletConfig,
    health: &watch::Sender<node::EngineHealth>,
) -> Option<bollard::Docker> {
    let socket = config.docker_socket.display();
    match runtime::connect(&config.docker_socket).await {
        Ok(docker) => {
            let version = docker
                .version()
                .await
                .ok()
                .and_then(|v| v.version)
                .unwrap_or_default();
            tracing::info!(socket = %socket, %version, "connected to the Docker engine");
            let _ = health.send_replace(Ok(version));
            Some(docker)
        }
        Err(e) => {
            let why = format!("cannot connect to the Docker engine at unix://{socket}: {e}");
            tracing::error!("{why}; retrying every 5s");
            let _ = health.send_replace(Err(why));
            None
        }
    }
}

/// Ping the engine every few seconds; health follows.
async fn watch_engine(
    docker: bollard::Docker,
    socket: String,
    health: watch::Sender<node::EngineHealth>,
) {
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let now = match docker.version().await {
            Ok(v) => Ok(v.version.unwrap_or_default()),
            Err(e) => Err(format!(
                "cannot connect to the Docker engine at unix://{socket}: {e}"
            )),
        };
        let changed = match (&*health.borrow(), &now) {
            (Ok(_), Ok(_)) => false,
            (Err(a), Err(b)) => a != b,
            _ => true,
        };
        if changed {
            match &now {
                Ok(_) => tracing::info!("the Docker engine is reachable again"),
                Err(why) => tracing::error!("{why}"),
            }
            let _ = health.send_replace(now);
        }
    }
}

/// The agent's router once the engine is connected; until then every request gets 503.
fn deferred(engine: Arc<OnceCell<axum::Router>>) -> axum::Router {
    use tower::ServiceExt;
    axum::Router::new().fallback(move |request: axum::extract::Request| {
        let engine = engine.clone();
        async move {
            match engine.get() {
                Some(router) => router.clone().oneshot(request).await.into_response(),
                None => (
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    "the node agent is not connected to its container engine yet",
                )
                    .into_response(),
            }
        }
    })
}

/// Aborts a task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
