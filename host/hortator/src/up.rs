//! `hortator up`: the whole cluster on one machine — store, API server, scheduler, controllers,
//! node agent and service proxy — until SIGINT or SIGTERM.

use std::sync::Arc;

use anyhow::Context;
use hortator_apiserver::{ApiServer, ApiServerConfig};
use hortator_store::{MeteredStore, RocksOptions, RocksStore};
use prometheus_client::registry::Registry;

use crate::config::Config;

/// Write a kubeconfig pointing at `server`.
pub fn write_kubeconfig(path: &std::path::Path, server: &str) -> std::io::Result<()> {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: hortator\n  cluster:\n    server: {server}\ncontexts:\n- name: hortator\n  context:\n    cluster: hortator\n    user: admin\n    namespace: default\ncurrent-context: hortator\nusers:\n- name: admin\n  user: {{}}\n"
    );
    std::fs::write(path, text)
}

/// Run until a shutdown signal.
pub async fn run(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let store_dir = config.data_dir.join("store");
    let store = RocksStore::open(
        &store_dir,
        RocksOptions {
            sync: config.store_sync,
            ..RocksOptions::default()
        },
    )
    .with_context(|| format!("cannot open store at {}", store_dir.display()))?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    let metered = Arc::new(MeteredStore::new(store.clone()));
    let store_handle = metered.clone() as Arc<dyn hortator_store::Store>;
    let plugins = crate::plugins::start(&config, store_handle.clone())?;
    if let Some(path) = &config.config_file {
        crate::plugins::watch(
            plugins.clone(),
            path.clone(),
            &config.plugins,
            config.plugin_base_dir.clone(),
        )?;
    }
    let api = ApiServer::start_with_plugins(
        store_handle,
        ApiServerConfig {
            service_cidr: config.service_cidr,
            node_port_range: config.node_port_range.clone(),
            advertise_address: address.to_string(),
            compaction_interval: config.compaction_interval,
        },
        Some(plugins.clone()),
    )
    .await
    .context("cannot start the API server")?;
    // Components are API clients; in one process they reach the router directly, each under
    // its own User-Agent (its field manager in managedFields).
    let client = |agent: &'static str| kube::Client::new(named_router(&api, agent), "default");
    let scheduler = config
        .scheduler
        .then(|| hortator_scheduler::spawn(client("hortator-scheduler"), plugins.clone()))
        .transpose()
        .context("cannot start the scheduler")?;
    let _controllers = config.controllers.clone().map(|controllers| {
        hortator_controllers::spawn(client("hortator-controllers"), controllers)
    });
    let agent = if config.agent.enabled {
        // In one process the API server reaches the agent directly: no port is opened.
        let mut kubelet_config = config.agent.kubelet.clone();
        kubelet_config.port = None;
        let node = kubelet_config.node_name.clone();
        let kubelet = hortator_kubelet::Kubelet::start(
            client("hortator-kubelet"),
            plugins.clone(),
            kubelet_config,
        )
        .await
        .context("cannot start the node agent")?;
        Some((node, kubelet))
    } else {
        None
    };
    let proxy = match (&config.proxy, config.agent.enabled) {
        (Some(proxy_config), true) => Some(
            hortator_proxy::Proxy::start(client("hortator-proxy"), proxy_config.clone())
                .await
                .context("cannot start the service proxy")?,
        ),
        _ => None,
    };
    let mut registry = Registry::default();
    metered.register_metrics(&mut registry);
    api.register_metrics(&mut registry);
    plugins.register_metrics(&mut registry);
    if let Some(scheduler) = &scheduler {
        scheduler.register_metrics(&mut registry);
    }
    if let Some((_, kubelet)) = &agent {
        kubelet.register_metrics(&mut registry);
    }
    if let Some(proxy) = &proxy {
        proxy.register_metrics(&mut registry);
    }
    let registry = Arc::new(registry);
    // The node's agent answers `nodes/{name}/proxy/…`: its stats, and this process's metrics.
    if let Some((node, kubelet)) = &agent {
        let routes = kubelet
            .router()
            .merge(crate::metrics::router(registry.clone()));
        api.node_endpoints().register(node, routes);
    }
    let kubeconfig = config.data_dir.join("kubeconfig.yaml");
    write_kubeconfig(&kubeconfig, &format!("http://{address}"))
        .with_context(|| format!("cannot write {}", kubeconfig.display()))?;
    tracing::info!(%address, data_dir = %config.data_dir.display(), "hortator is up");
    println!("Hortator is up: API server on http://{address}");
    println!("  kubectl --kubeconfig {} get nodes", kubeconfig.display());
    println!("  export KUBECONFIG={}", kubeconfig.display());
    let stopping = api.clone();
    axum::serve(
        listener,
        api.router().merge(crate::metrics::router(registry)),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
        stopping.shutdown();
    })
    .await
    .context("API server failed")?;
    if let Some(proxy) = proxy
        && let Err(e) = proxy.shutdown().await
    {
        tracing::warn!(error = %e, "cannot remove the service proxy's rules");
    }
    drop(agent);
    store.close();
    tracing::info!("hortator stopped");
    Ok(())
}

/// The API server's router for an in-process component, whose requests carry `agent` as
/// their User-Agent.
fn named_router(api: &ApiServer, agent: &'static str) -> axum::Router {
    api.router().layer(axum::middleware::map_request(
        move |mut request: axum::extract::Request| async move {
            request.headers_mut().insert(
                http::header::USER_AGENT,
                http::HeaderValue::from_static(agent),
            );
            request
        },
    ))
}

/// Wait for SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received, shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
    }
}
