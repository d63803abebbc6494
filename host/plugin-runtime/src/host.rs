//! What a plugin instance can reach: a locked-down WASI context (no files,
//! network, environment or real clock), a memory cap, a captured stderr, and —
//! only if the operator granted it — read-only cluster lookups.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use crate::bindings::admission::hortator::plugin::cluster;
use crate::bindings::admission::hortator::plugin::types::GroupVersionResource;

/// Bytes of guest stderr kept per instance; an instance that wrote more than
/// half of it is retired after the call so that writes never fail.
pub(crate) const STDERR_CAPACITY: usize = 256 * 1024;

/// Read-only access to cluster objects, implemented by the API server and
/// handed to plugins whose configuration grants `cluster-read`.
pub trait ClusterReader: Send + Sync {
    /// One object as JSON, or `None` when it does not exist.
    fn get(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
    ) -> Result<Option<String>, LookupError>;
    /// Objects as JSON, in a namespace (empty: all) matching a label selector (empty: all).
    fn list(
        &self,
        resource: &Resource,
        namespace: &str,
        label_selector: &str,
    ) -> Result<Vec<String>, LookupError>;
}

/// A resource named by group ("" for core), version and plural name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// API group, "" for the core group.
    pub group: String,
    /// API version, e.g. "v1".
    pub version: String,
    /// Plural resource name, e.g. "namespaces".
    pub resource: String,
}

/// Why a cluster lookup failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The resource is not served.
    #[error("unknown resource {0}")]
    UnknownResource(String),
    /// Anything else: bad selector, store unavailable.
    #[error("{0}")]
    Failed(String),
}

/// The data of one plugin instance's store.
pub(crate) struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: StoreLimits,
    pub(crate) stderr: MemoryOutputPipe,
    cluster: Option<Arc<dyn ClusterReader>>,
}

impl HostState {
    pub(crate) fn new(memory_limit: usize, cluster: Option<Arc<dyn ClusterReader>>) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let wasi = WasiCtx::builder()
            .stderr(stderr.clone())
            .wall_clock(FrozenClock)
            .monotonic_clock(FrozenClock)
            .allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false)
            .build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(memory_limit)
            .trap_on_grow_failure(true)
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            limits,
            stderr,
            cluster,
        }
    }
}

impl HostState {
    /// The instance's resource table (WASI streams, pollables).
    pub(crate) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Plugins get no clock: time stands still at the epoch.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }
    fn now(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

fn resource(gvr: GroupVersionResource) -> Resource {
    Resource {
        group: gvr.group,
        version: gvr.version,
        resource: gvr.resource,
    }
}

fn lookup_error(err: LookupError) -> cluster::LookupError {
    match err {
        LookupError::UnknownResource(r) => cluster::LookupError::UnknownResource(r),
        LookupError::Failed(m) => cluster::LookupError::Failed(m),
    }
}

impl cluster::Host for HostState {
    fn get(
        &mut self,
        gvr: GroupVersionResource,
        namespace: String,
        name: String,
    ) -> Result<Option<String>, cluster::LookupError> {
        let reader = self
            .cluster
            .as_ref()
            .ok_or(cluster::LookupError::NotGranted)?;
        reader
            .get(&resource(gvr), &namespace, &name)
            .map_err(lookup_error)
    }

    fn list(
        &mut self,
        gvr: GroupVersionResource,
        namespace: String,
        label_selector: String,
    ) -> Result<Vec<String>, cluster::LookupError> {
        let reader = self
            .cluster
            .as_ref()
            .ok_or(cluster::LookupError::NotGranted)?;
        reader
            .list(&resource(gvr), &namespace, &label_selector)
            .map_err(lookup_error)
    }
}
