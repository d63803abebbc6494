//! The `hortator` binary's library: configuration and the `up` command's wiring.

pub mod config;
pub mod plugins;
pub mod up;
