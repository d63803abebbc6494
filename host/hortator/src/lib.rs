//! The `hortator` binary's library: configuration and the wiring of `up` and `agent`.

pub mod agent;
pub mod config;
mod metrics;
pub mod plugins;
pub mod up;
