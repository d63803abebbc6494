//! `hortator agent`: one node agent and its service proxy against a remote API server, until
//! SIGINT or SIGTERM.

use anyhow::Context;
use hortator_kubelet::Kubelet;
use prometheus_client::registry::Registry;

use crate::config::Config;

/// Run until a shutdown signal.
pub async fn run(config: Config, server: http::Uri) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let client = kube::Client::try_from(kube::Config::new(server.clone()))
        .with_context(|| format!("cannot make a client for {server}"))?;
    let plugins = crate::plugins::start_agent(&config)?;
    let kubelet_config = config.agent.kubelet.clone();
    let listener = match kubelet_config.port {
        Some(port) => {
            let address = std::net::SocketAddr::from((kubelet_config.node_ip, port));
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address}"))?;
            Some(listener)
        }
        None => None,
    };
    let kubelet = Kubelet::start(client.clone(), plugins.clone(), kubelet_config.clone())
        .await
        .context("cannot start the node agent")?;
    let proxy = match &config.proxy {
        Some(proxy_config) => Some(
            hortator_proxy::Proxy::start(client, proxy_config.clone())
                .await
                .context("cannot start the service proxy")?,
        ),
        None => None,
    };
    let mut registry = Registry::default();
    plugins.register_metrics(&mut registry);
    kubelet.register_metrics(&mut registry);
    if let Some(proxy) = &proxy {
        proxy.register_metrics(&mut registry);
    }
    // Logs, exec, stats and metrics on the agent's port.
    let endpoint = listener.map(|listener| {
        let routes = kubelet
            .router()
            .merge(crate::metrics::router(std::sync::Arc::new(registry)));
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, routes).await {
                tracing::error!(error = %e, "agent endpoint failed");
            }
        })
    });
    tracing::info!(node = %kubelet_config.node_name, %server, "agent is up");
    println!(
        "Hortator agent is up: node {} at {}, API server {server}",
        kubelet_config.node_name, kubelet_config.node_ip
    );
    crate::up::shutdown_signal().await;
    if let Some(endpoint) = endpoint {
        endpoint.abort();
    }
    if let Some(proxy) = proxy
        && let Err(e) = proxy.shutdown().await
    {
        tracing::warn!(error = %e, "cannot remove the service proxy's rules");
    }
    drop(kubelet);
    tracing::info!("agent stopped");
    Ok(())
}
