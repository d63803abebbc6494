//! A build strategy for the host's tests: a Dockerfile build when the source
//! has a `Dockerfile` at its root, else a source-to-image build with the
//! builder image the Build names in `spec.strategy.sourceStrategy.from.name`;
//! the output image is `spec.output.to.name`.

use hortator_sdk::KeyValue;
use hortator_sdk::build::{
    BuildOutput, BuildPlan, BuildStrategy, DockerfileBuild, SourceBuild, SourceEntry,
};
use hortator_sdk::serde_json::Value;

struct TestStrategy;

impl BuildStrategy for TestStrategy {
    fn init(_config: Value) -> Result<Self, String> {
        Ok(TestStrategy)
    }

    fn plan(&self, build: &Value, source: &[SourceEntry]) -> Result<BuildOutput, String> {
        let spec = &build["spec"];
        let has_dockerfile = source
            .iter()
            .any(|entry| entry.path == "Dockerfile" && !entry.is_dir);
        let builder_image = spec["strategy"]["sourceStrategy"]["from"]["name"].as_str();
        let plan = match (has_dockerfile, builder_image) {
            (true, _) => BuildPlan::Dockerfile(DockerfileBuild {
                context_dir: ".".into(),
                dockerfile_path: "Dockerfile".into(),
                dockerfile: None,
                build_args: Vec::new(),
                no_cache: spec["strategy"]["dockerStrategy"]["noCache"]
                    .as_bool()
                    .unwrap_or(false),
                from_image: spec["strategy"]["dockerStrategy"]["from"]["name"]
                    .as_str()
                    .map(str::to_owned),
            }),
            (false, Some(builder_image)) => BuildPlan::Source(SourceBuild {
                builder_image: builder_image.into(),
                source_dir: "/tmp/src".into(),
                assemble: vec!["/usr/libexec/s2i/assemble".into()],
                run: vec!["/usr/libexec/s2i/run".into()],
                env: environment(&spec["strategy"]["sourceStrategy"]["env"]),
                workdir: "/opt/app-root/src".into(),
                user: "1001".into(),
            }),
            (false, None) => {
                return Err(
                    "the source has no Dockerfile and the Build names no builder image \
                            (spec.strategy.sourceStrategy.from.name)"
                        .into(),
                );
            }
        };
        let output_image = spec["output"]["to"]["name"]
            .as_str()
            .ok_or("the Build names no output image (spec.output.to.name)")?;
        let mut labels = Vec::new();
        if let Some(name) = build["metadata"]["name"].as_str() {
            labels.push(KeyValue::new("hortator.io/build.name", name));
        }
        Ok(BuildOutput {
            plan,
            output_image: output_image.into(),
            push: true,
            labels,
        })
    }
}

/// `[{name, value}]` environment entries as key-values; entries without a
/// name are skipped.
fn environment(env: &Value) -> Vec<KeyValue> {
    env.as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let name = entry["name"].as_str()?;
            Some(KeyValue::new(name, entry["value"].as_str().unwrap_or("")))
        })
        .collect()
}

hortator_sdk::export_build_strategy!(TestStrategy);

#[cfg(test)]
mod tests {
    use super::*;
    use hortator_sdk::serde_json::json;

    fn entry(path: &str, is_dir: bool) -> SourceEntry {
        SourceEntry {
            path: path.into(),
            is_dir,
            size: 0,
            executable: false,
        }
    }

    fn build() -> Value {
        json!({
            "metadata": {"name": "app-1"},
            "spec": {
                "strategy": {"sourceStrategy": {
                    "from": {"name": "builder:latest"},
                    "env": [{"name": "MODE", "value": "prod"}, {"value": "nameless"}],
                }},
                "output": {"to": {"name": "127.0.0.1:5000/app:latest"}},
            }
        })
    }

    #[test]
    fn dockerfile_wins() {
        let output = TestStrategy
            .plan(&build(), &[entry("src", true), entry("Dockerfile", false)])
            .unwrap();
        assert!(
            matches!(output.plan, BuildPlan::Dockerfile(ref d) if d.dockerfile_path == "Dockerfile")
        );
        assert_eq!(output.output_image, "127.0.0.1:5000/app:latest");
        assert_eq!(
            output.labels,
            vec![KeyValue::new("hortator.io/build.name", "app-1")]
        );
    }

    #[test]
    fn source_build_without_dockerfile() {
        let output = TestStrategy
            .plan(&build(), &[entry("app.py", false)])
            .unwrap();
        let BuildPlan::Source(source) = output.plan else {
            panic!("expected a source build");
        };
        assert_eq!(source.builder_image, "builder:latest");
        assert_eq!(source.env, vec![KeyValue::new("MODE", "prod")]);
    }

    #[test]
    fn neither() {
        let mut build = build();
        build["spec"]["strategy"] = json!({});
        assert!(
            TestStrategy
                .plan(&build, &[])
                .unwrap_err()
                .contains("no Dockerfile")
        );
        let mut no_output = self::build();
        no_output["spec"]["output"] = json!({});
        assert!(
            TestStrategy
                .plan(&no_output, &[])
                .unwrap_err()
                .contains("spec.output.to.name")
        );
    }
}
