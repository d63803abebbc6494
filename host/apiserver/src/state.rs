//! The shared state of the API server and its construction.

use std::ops::RangeInclusive;
use std::sync::Arc;

use hortator_api::registry;
use hortator_store::{RangeRequest, Store, StoreError};
use ipnet::Ipv4Net;
use serde_json::{Value, json};

use hortator_plugin_runtime::PluginManager;

use crate::alloc::{IpAllocator, PortAllocator};
use crate::codec;
use crate::metrics::ApiMetrics;
use crate::nodes::NodeEndpoints;

/// Settings of the API server.
#[derive(Clone, Debug)]
pub struct ApiServerConfig {
    /// Range service ClusterIPs come from.
    pub service_cidr: Ipv4Net,
    /// Range NodePorts come from.
    pub node_port_range: RangeInclusive<u16>,
    /// The address clients reach the server at, for discovery.
    pub advertise_address: String,
    /// How often the store's history is compacted (history older than one interval goes).
    pub compaction_interval: std::time::Duration,
}

impl Default for ApiServerConfig {
    fn default() -> Self {
        ApiServerConfig {
            service_cidr: Ipv4Net::new(std::net::Ipv4Addr::new(10, 254, 0, 0), 16)
                .unwrap_or_default(),
            node_port_range: 30000..=32767,
            advertise_address: "127.0.0.1:6443".into(),
            compaction_interval: std::time::Duration::from_secs(300),
        }
    }
}

/// What every request handler shares.
pub struct Ctx {
    /// The object store.
    pub store: Arc<dyn Store>,
    /// ClusterIP allocator.
    pub ips: IpAllocator,
    /// NodePort allocator.
    pub ports: PortAllocator,
    /// Settings.
    pub config: ApiServerConfig,
    /// Becomes true when the server shuts down; long-running requests (watches) end then.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// The plugins: the admission chain, and `hortctl plugin` management.
    pub plugins: Option<Arc<PluginManager>>,
    /// The node agents served in process (logs and exec).
    pub nodes: NodeEndpoints,
    /// Request and watch metrics.
    pub metrics: ApiMetrics,
}

/// Errors starting the API server.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A stored object could not be decoded.
    #[error("stored object {key} is corrupt: {reason}")]
    Corrupt {
        /// Storage key.
        key: String,
        /// Decoding error.
        reason: String,
    },
}

/// Namespaces that exist from the start.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

impl Ctx {
    /// Build the state: rebuild the allocators from stored services and create the system
    /// namespaces that are missing.
    pub async fn start(
        store: Arc<dyn Store>,
        config: ApiServerConfig,
        shutdown: tokio::sync::watch::Receiver<bool>,
        plugins: Option<Arc<PluginManager>>,
    ) -> Result<Arc<Ctx>, StartError> {
        let ctx = Ctx {
            shutdown,
            plugins,
            nodes: NodeEndpoints::default(),
            metrics: ApiMetrics::default(),
            ips: IpAllocator::new(config.service_cidr),
            ports: PortAllocator::new(config.node_port_range.clone()),
            store,
            config,
        };
        let services = registry::find("", "v1", "services")
            .map(|i| i.key_prefix())
            .unwrap_or_default();
        let page = ctx.store.range(RangeRequest {
            prefix: services.into_bytes(),
            ..Default::default()
        })?;
        for kv in page.kvs {
            let svc = codec::decode(&kv).map_err(|e| StartError::Corrupt {
                key: String::from_utf8_lossy(&kv.key).into_owned(),
                reason: e.to_string(),
            })?;
            if let Some(ip) = svc
                .pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
            {
                // A service outside the current range keeps its address; nothing to reserve.
                let _ = ctx.ips.reserve(ip);
            }
            for port in svc
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(p) = port
                    .get("nodePort")
                    .and_then(Value::as_u64)
                    .and_then(|p| u16::try_from(p).ok())
                {
                    let _ = ctx.ports.reserve(p);
                }
            }
        }
        let namespaces = registry::find("", "v1", "namespaces").ok_or(StoreError::NotFound)?;
        for ns in SYSTEM_NAMESPACES {
            let key = namespaces.key(None, ns);
            if ctx.store.get(key.as_bytes())?.is_some() {
                continue;
            }
            let object = json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": ns,
                    "uid": uuid::Uuid::new_v4().to_string(),
                    "creationTimestamp": crate::handlers::now_rfc3339(),
                    "labels": {"kubernetes.io/metadata.name": ns},
                },
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            });
            match ctx
                .store
                .create(key.into_bytes(), codec::encode(&object))
                .await
            {
                Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Arc::new(ctx))
    }
}
