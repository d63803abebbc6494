//! Build strategies: decide how a Build becomes an image.
//!
//! The host checks out the Build's source, calls [`BuildStrategy::plan`] with
//! the Build object and a listing of the source tree, then carries out the
//! returned plan with Docker: build, label, tag and optionally push.
//!
//! ```no_run
//! use hortator_sdk::build::{BuildOutput, BuildPlan, BuildStrategy, DockerfileBuild, SourceEntry};
//! use hortator_sdk::serde_json::Value;
//!
//! /// Builds every source tree from its Dockerfile.
//! struct DockerfileOnly;
//!
//! impl BuildStrategy for DockerfileOnly {
//!     fn init(_config: Value) -> Result<Self, String> {
//!         Ok(DockerfileOnly)
//!     }
//!
//!     fn plan(&self, build: &Value, _source: &[SourceEntry]) -> Result<BuildOutput, String> {
//!         let image = build["spec"]["output"]["to"]["name"]
//!             .as_str()
//!             .ok_or("the Build names no output image")?;
//!         Ok(BuildOutput {
//!             plan: BuildPlan::Dockerfile(DockerfileBuild {
//!                 context_dir: ".".into(),
//!                 dockerfile_path: "Dockerfile".into(),
//!                 dockerfile: None,
//!                 build_args: Vec::new(),
//!                 no_cache: false,
//!                 from_image: None,
//!             }),
//!             output_image: image.into(),
//!             push: true,
//!             labels: Vec::new(),
//!         })
//!     }
//! }
//!
//! hortator_sdk::export_build_strategy!(DockerfileOnly);
//! ```

use serde_json::Value;

pub use crate::KeyValue;
pub use crate::bindings::build_strategy::hortator::plugin::build_types::{
    BuildOutput, BuildPlan, DockerfileBuild, SourceBuild, SourceEntry,
};

/// A build strategy.
///
/// The host calls [`BuildStrategy::init`] once, then [`BuildStrategy::plan`]
/// for every Build; calls never overlap.
pub trait BuildStrategy: Sized + 'static {
    /// Builds the strategy from its configuration: the plugin's TOML table as
    /// JSON, an empty object when there is none. An error refuses the plugin.
    fn init(config: Value) -> Result<Self, String>;

    /// Plans one build from the Build object (`build.openshift.io/v1` JSON)
    /// and the listing of its checked-out source. An error fails the Build
    /// with that message.
    fn plan(&self, build: &Value, source: &[SourceEntry]) -> Result<BuildOutput, String>;
}

/// Exports a type implementing [`BuildStrategy`] as the plugin's
/// `build-strategy` world.
///
/// ```ignore
/// hortator_sdk::export_build_strategy!(MyStrategy);
/// ```
///
/// The plugin's metadata is the package name and version of the crate that
/// invokes the macro, and [`SDK_VERSION`](crate::SDK_VERSION).
#[macro_export]
macro_rules! export_build_strategy {
    ($plugin:ty) => {
        const _: () = {
            $crate::__plugin_instance!($plugin);

            struct HortatorBuildStrategyExport;

            impl $crate::__private::build_strategy::Guest for HortatorBuildStrategyExport {
                $crate::__plugin_lifecycle!($plugin, $crate::build::BuildStrategy);

                fn plan(
                    build: ::std::string::String,
                    source: ::std::vec::Vec<$crate::build::SourceEntry>,
                ) -> ::core::result::Result<$crate::build::BuildOutput, ::std::string::String>
                {
                    let build = $crate::build::parse_build(&build)?;
                    $crate::__private::with(&INSTANCE, |plugin| {
                        $crate::build::BuildStrategy::plan(plugin, &build, &source)
                    })
                }
            }

            $crate::__private::build_strategy::export!(
                HortatorBuildStrategyExport with_types_in $crate::__private::build_strategy
            );
        };
    };
}

/// Parses the Build JSON the host passes to `plan`.
#[doc(hidden)]
pub fn parse_build(json: &str) -> Result<Value, String> {
    serde_json::from_str(json).map_err(|error| format!("invalid Build JSON: {error}"))
}
