//! Errors of loading a plugin and of calling one.

use std::time::Duration;

/// Why a plugin could not be loaded; the previously active plugin (if any) stays.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// The engine could not be set up.
    #[error("plugin engine: {0}")]
    Engine(String),
    /// The module could not be read.
    #[error("plugin {plugin}: cannot read {path}: {message}")]
    Read {
        /// Configured plugin name.
        plugin: String,
        /// The file.
        path: String,
        /// The I/O error.
        message: String,
    },
    /// `builtin:<name>` names no built-in plugin.
    #[error("plugin {plugin}: no built-in plugin named {builtin:?} (built-ins: {available})")]
    UnknownBuiltin {
        /// Configured plugin name.
        plugin: String,
        /// The requested built-in.
        builtin: String,
        /// The names that exist.
        available: String,
    },
    /// The bytes are not a WebAssembly component (perhaps a core module).
    #[error("plugin {plugin}: not a WebAssembly component (build it for wasm32-wasip2)")]
    NotAComponent {
        /// Configured plugin name.
        plugin: String,
    },
    /// wasmtime rejected the component.
    #[error("plugin {plugin}: invalid component: {message}")]
    Compile {
        /// Configured plugin name.
        plugin: String,
        /// wasmtime's reason.
        message: String,
    },
    /// Built for an incompatible `hortator:plugin` version.
    #[error(
        "plugin {plugin} was built for hortator:plugin@{plugin_version}, but this host supports hortator:plugin@{host_version} (compatible: same major version, and same minor while 0.x)"
    )]
    SdkVersion {
        /// Configured plugin name.
        plugin: String,
        /// What the plugin was built against.
        plugin_version: String,
        /// What the host implements.
        host_version: String,
    },
    /// The component does not implement the extension point's world, or needs
    /// imports the host does not give.
    #[error("plugin {plugin} does not fit the {world} world: {message}")]
    World {
        /// Configured plugin name.
        plugin: String,
        /// The expected world.
        world: &'static str,
        /// wasmtime's reason.
        message: String,
    },
    /// Instantiating, `metadata()` or `init()` failed.
    #[error("plugin {plugin}: {message}")]
    Start {
        /// Configured plugin name.
        plugin: String,
        /// What failed.
        message: String,
    },
    /// `init(config)` returned an error.
    #[error("plugin {plugin} refused its configuration: {message}")]
    Init {
        /// Configured plugin name.
        plugin: String,
        /// The plugin's message.
        message: String,
    },
}

impl LoadError {
    /// wasmtime could not compile (or load the compiled form of) `plugin`'s component.
    pub(crate) fn compile(plugin: &str, reason: impl std::fmt::Display) -> Self {
        LoadError::Compile {
            plugin: plugin.to_string(),
            message: reason.to_string(),
        }
    }
}

/// Why one call into a plugin failed. The instance involved is discarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The call ran past its deadline.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The instance tried to grow its memory beyond the cap.
    #[error("exceeded its memory limit of {0} bytes")]
    OutOfMemory(usize),
    /// The guest trapped (panic, unreachable, out-of-bounds ...).
    #[error("trapped: {0}")]
    Trap(String),
    /// The guest returned something the host cannot accept.
    #[error("returned malformed output: {0}")]
    Malformed(String),
    /// A fresh instance could not be started.
    #[error("could not be restarted: {0}")]
    Restart(String),
}

impl CallError {
    /// Short label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Timeout(_) => "timeout",
            CallError::OutOfMemory(_) => "out-of-memory",
            CallError::Trap(_) => "trap",
            CallError::Malformed(_) => "malformed",
            CallError::Restart(_) => "restart",
        }
    }
}
