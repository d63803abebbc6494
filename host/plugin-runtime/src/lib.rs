//! The Hortator plugin runtime: a wasmtime engine that loads WebAssembly
//! components written against the `hortator:plugin` WIT package, runs each call
//! under a deadline and a memory cap, isolates traps, and swaps plugins at
//! runtime without dropping calls in flight.
//!
//! One [`Runtime`] per process; one [`Plugin`] per loaded component, typed by
//! its world ([`Admission`], [`Scheduler`], [`BuildStrategy`], [`NetworkDriver`]);
//! one [`PluginSlot`] per extension point, holding the active plugin.

mod admission;
mod bindings;
mod build_strategy;
pub mod builtin;
mod cache;
mod core;
mod error;
mod host;
mod manager;
mod metrics;
mod network;
mod runtime;
mod scheduler;
mod settings;
mod stdio;

/// What a plugin says about itself (`metadata()`).
pub use bindings::admission::hortator::plugin::types::PluginMetadata;

pub use crate::admission::{
    AdmissionPlugin, AdmissionRequest, AdmissionResponse, GroupVersionResource, Operation,
    UserInfo, Verdict,
};
pub use crate::core::PluginInfo;
pub use crate::error::{CallError, LoadError};
pub use crate::host::{ClusterReader, LookupError, Resource};
pub use crate::manager::{
    ActivePlugin, ChainEntry, PluginEvent, PluginManager, PluginSlot, PluginStatus,
    SchedulerProfile, SwapError,
};
pub use crate::metrics::{LATENCY_BUCKETS, Metrics, MetricsSnapshot};
pub use crate::runtime::{Runtime, RuntimeConfig, SDK_VERSION};
pub use crate::settings::{
    DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT, FailurePolicy, ModuleSource, Phase, PluginEntry,
    PluginSettings, PluginsConfig, SettingsError, ValidatedPlugins, default_admission_chain,
    default_network_driver, default_scheduler_profiles,
};

/// The scheduler world.
pub mod scheduling {
    pub use crate::scheduler::*;
}
/// The build-strategy world.
pub mod builds {
    pub use crate::build_strategy::*;
}
/// The network-driver world.
pub mod networking {
    pub use crate::network::*;
}
