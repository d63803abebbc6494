//! TCP in userspace: accept, connect to an endpoint, copy both ways.

use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::Shared;

/// The connect timeout of each attempt, as kube-proxy's userspace mode: an
/// attempt that fails moves on to the next endpoint.
const DIAL_TIMEOUTS: [Duration; 4] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
];

/// How long a connection to a removed endpoint may go on before it is closed.
const REMOVED_ENDPOINT_DRAIN: Duration = Duration::from_secs(1);

/// Accepts connections on `listener` and proxies each to an endpoint until
/// aborted (which closes the listener and every connection).
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, client)) => {
                    // Requests and responses are forwarded as they come: no Nagle delay.
                    let _ = stream.set_nodelay(true);
                    connections.spawn(proxy(stream, client, shared.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Proxies one connection; it ends when either side closes or when its
/// endpoint is removed. Without a reachable endpoint the client is closed.
async fn proxy(mut client: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let Some((mut upstream, endpoint)) = connect(&shared, peer.ip()).await else {
        shared.metrics.connection("tcp", false);
        tracing::debug!(client = %peer, "no endpoint reachable: connection closed");
        return;
    };
    shared.metrics.connection("tcp", true);
    let _relaying = shared.metrics.relaying("tcp");
    let mut endpoints = shared.endpoints.subscribe();
    let relay = tokio::io::copy_bidirectional(&mut client, &mut upstream);
    tokio::pin!(relay);
    let removed = async {
        let _ = endpoints
            .wait_for(|current| !current.contains(&endpoint))
            .await;
    };
    let result = tokio::select! {
        result = &mut relay => result,
        () = removed => {
            // What is in flight may finish: a terminating pod leaves the endpoints while
            // it still answers.
            match tokio::time::timeout(REMOVED_ENDPOINT_DRAIN, &mut relay).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::debug!(client = %peer, %endpoint, "endpoint removed: connection closed");
                    return;
                }
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(client = %peer, %endpoint, error = %e, "connection ended");
    }
}

/// Connects to the endpoint the balancer picks, trying others on failure.
async fn connect(shared: &Shared, client: IpAddr) -> Option<(TcpStream, SocketAddrV4)> {
    for (attempt, timeout) in DIAL_TIMEOUTS.iter().enumerate() {
        let endpoint = shared.pick(client, Instant::now(), attempt > 0)?;
        match tokio::time::timeout(*timeout, TcpStream::connect(endpoint)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Some((stream, endpoint));
            }
            Ok(Err(e)) => tracing::debug!(%endpoint, error = %e, "connect failed"),
            Err(_) => tracing::debug!(%endpoint, ?timeout, "connect timed out"),
        }
    }
    None
}
