//! Simulated nodes, like [KWOK](https://kwok.sigs.k8s.io/): register fake nodes against a
//! Hortator (or any Kubernetes) API server, keep their leases fresh, and mark the pods bound to
//! them Running without starting any container.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> Result<(), hortator_sim::Error> {
//! let mut config = hortator_sim::SimConfig::new(100);
//! config.labels.insert("topology.kubernetes.io/zone".into(), "z1".into());
//! let sim = hortator_sim::Simulator::register(client, config).await?;
//! println!("{} nodes in {:?}", sim.nodes().len(), sim.registration_time());
//! sim.run(async { tokio::signal::ctrl_c().await.ok(); }).await;
//! # Ok(()) }
//! ```
//!
//! Node `i` (0-based) is `<prefix><i+1>` with InternalIP `10.250.0.0 + i + 1` and pod block
//! `i` of `100.64.0.0/10` (a `/24` for up to 254 pods): addresses that are never contacted.
//! Two simulators against one cluster should use different prefixes; their addresses overlap.
//! Simulated nodes run no containers and have no agent: the metrics API never asks them
//! (they carry [`SIM_LABEL`]) and they have no NodeMetrics or PodMetrics.

mod config;
mod ipam;
mod lease;
mod node;
mod pods;

use std::path::Path;
use std::time::{Duration, Instant};

pub use config::{
    ConfigError, MAX_NODES, MAX_PODS_PER_NODE, ParseError, SimConfig, parse_label, parse_quantity,
    parse_taint,
};
pub use lease::{LEASE_DURATION_SECONDS, LEASE_NAMESPACE};
pub use node::{KUBELET_VERSION, SIM_LABEL, SimNode, register_nodes};

/// What can go wrong while simulating.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No kubeconfig could be loaded or used.
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    /// A node could not be registered.
    #[error("cannot register node {node}: {source}")]
    Register {
        /// The node.
        node: String,
        /// The API error.
        source: kube::Error,
    },
    /// A node's pod block has no free address.
    #[error("node {node} has no free pod address")]
    NoPodAddress {
        /// The node.
        node: String,
    },
    /// Any other API error.
    #[error(transparent)]
    Api(#[from] kube::Error),
}

/// A client from the kubeconfig at `path`, or else the usual places: `$KUBECONFIG`,
/// `~/.kube/config`, the in-cluster service account.
pub async fn client(kubeconfig: Option<&Path>) -> Result<kube::Client, Error> {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let config = match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path)
                .map_err(|e| Error::Kubeconfig(format!("{}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
                .await
                .map_err(|e| Error::Kubeconfig(format!("{}: {e}", path.display())))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| Error::Kubeconfig(e.to_string()))?,
    };
    kube::Client::try_from(config).map_err(|e| Error::Kubeconfig(e.to_string()))
}

/// A set of registered simulated nodes, ready to [`run`](Simulator::run).
pub struct Simulator {
    client: kube::Client,
    config: SimConfig,
    nodes: Vec<SimNode>,
    elapsed: Duration,
}

impl Simulator {
    /// Validate `config` and register its nodes (see [`register_nodes`]).
    pub async fn register(client: kube::Client, config: SimConfig) -> Result<Simulator, Error> {
        let started = Instant::now();
        let nodes = register_nodes(&client, &config).await?;
        Ok(Simulator {
            client,
            config,
            nodes,
            elapsed: started.elapsed(),
        })
    }

    /// The registered nodes, sorted by name.
    pub fn nodes(&self) -> &[SimNode] {
        &self.nodes
    }

    /// How long registration took.
    pub fn registration_time(&self) -> Duration {
        self.elapsed
    }

    /// Renew the nodes' leases and run their pods until `shutdown` completes. Errors are
    /// logged and retried; this returns only on shutdown. The nodes stay registered.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let until_stopped = move || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|s| *s).await;
            }
        };
        let heartbeats = (!self.config.heartbeat.is_zero()).then(|| {
            let (client, nodes) = (self.client.clone(), self.nodes.clone());
            let (interval, concurrency) = (self.config.heartbeat, self.config.concurrency);
            let stop = until_stopped();
            tokio::spawn(async move {
                lease::run(client, &nodes, interval, concurrency, stop).await;
            })
        });
        let pods = self.config.run_pods.then(|| {
            let (client, nodes, concurrency) = (
                self.client.clone(),
                self.nodes.clone(),
                self.config.concurrency,
            );
            let stop = until_stopped();
            tokio::spawn(async move { pods::run(client, &nodes, concurrency, stop).await })
        });
        shutdown.await;
        let _ = stop.send(true);
        for task in [heartbeats, pods].into_iter().flatten() {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "simulator task failed");
            }
        }
    }
}

/// Register `config`'s nodes, then run them (see [`Simulator::run`]) until `shutdown`.
pub async fn run(
    client: kube::Client,
    config: SimConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    Simulator::register(client, config)
        .await?
        .run(shutdown)
        .await;
    Ok(())
}
