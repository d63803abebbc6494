//! The build-strategy world: a Build and its source listing in, a checked
//! build plan out.

use crate::bindings::build_strategy::{BuildStrategy, BuildStrategyPre};
use crate::core::{Core, plugin_accessors, world_binding};
use crate::error::{CallError, LoadError};
use crate::runtime::Runtime;
use crate::settings::PluginSettings;

pub use crate::bindings::build_strategy::hortator::plugin::build_types::{
    BuildOutput, BuildPlan, DockerfileBuild, SourceBuild, SourceEntry,
};

world_binding!(BuildStrategy, BuildStrategyPre, "build-strategy");

/// Why a build could not be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The plugin failed (trap, timeout, memory, malformed plan).
    #[error("build strategy failed: {0}")]
    Plugin(#[from] CallError),
    /// The plugin declined this build, with its reason.
    #[error("{0}")]
    Declined(String),
}

/// A loaded build-strategy plugin.
pub struct BuildStrategyPlugin {
    core: Core<BuildStrategy>,
}

impl BuildStrategyPlugin {
    /// Load, check and initialise a component.
    pub fn load(
        runtime: &Runtime,
        settings: PluginSettings,
        source: String,
        bytes: &[u8],
    ) -> Result<Self, LoadError> {
        Ok(BuildStrategyPlugin {
            core: Core::load(runtime, settings, source, bytes, None)?,
        })
    }

    /// Plan a build; the plan is checked before it is returned.
    pub fn plan(&self, build_json: &str, source: &[SourceEntry]) -> Result<BuildOutput, PlanError> {
        let output = self
            .core
            .call(|world, store| world.call_plan(store, build_json, source))?
            .map_err(PlanError::Declined)?;
        check_output(&output).map_err(|reason| {
            let err = CallError::Malformed(reason);
            self.core.record_malformed(&err);
            PlanError::Plugin(err)
        })?;
        Ok(output)
    }

    plugin_accessors!();
}

/// A relative path that stays inside the source tree.
fn inside_tree(path: &str) -> bool {
    !path.starts_with('/') && !path.split('/').any(|part| part == "..")
}

fn check_output(output: &BuildOutput) -> Result<(), String> {
    if output.output_image.is_empty() || output.output_image.chars().any(|c| c.is_whitespace()) {
        return Err(format!(
            "output image {:?} is not an image reference",
            output.output_image
        ));
    }
    match &output.plan {
        BuildPlan::Dockerfile(plan) => {
            if !inside_tree(&plan.context_dir) {
                return Err(format!(
                    "context directory {:?} leaves the source tree",
                    plan.context_dir
                ));
            }
            if plan.dockerfile_path.is_empty() || !inside_tree(&plan.dockerfile_path) {
                return Err(format!(
                    "Dockerfile path {:?} leaves the context",
                    plan.dockerfile_path
                ));
            }
        }
        BuildPlan::Source(plan) => {
            if plan.builder_image.is_empty() {
                return Err("source build without a builder image".into());
            }
            if plan.assemble.is_empty() || plan.run.is_empty() {
                return Err("source build needs both an assemble and a run command".into());
            }
            if !plan.source_dir.starts_with('/') {
                return Err(format!(
                    "source directory {:?} must be absolute",
                    plan.source_dir
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dockerfile(context: &str, path: &str) -> BuildOutput {
        BuildOutput {
            plan: BuildPlan::Dockerfile(DockerfileBuild {
                context_dir: context.into(),
                dockerfile_path: path.into(),
                dockerfile: None,
                build_args: vec![],
                no_cache: false,
                from_image: None,
            }),
            output_image: "127.0.0.1:5000/app:latest".into(),
            push: true,
            labels: vec![],
        }
    }

    #[test]
    fn plans_cannot_escape_the_source_tree() {
        assert!(check_output(&dockerfile("", "Dockerfile")).is_ok());
        assert!(check_output(&dockerfile("app", "docker/Dockerfile")).is_ok());
        assert!(check_output(&dockerfile("../etc", "Dockerfile")).is_err());
        assert!(check_output(&dockerfile("", "/etc/passwd")).is_err());
        let mut no_image = dockerfile("", "Dockerfile");
        no_image.output_image = String::new();
        assert!(check_output(&no_image).is_err());
    }
}
