//! The Docker engine through bollard: the agent's containers are found by their labels, so
//! a restarted agent adopts what is already running.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, ContainerInspectResponse, ContainerSummary};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, KillContainerOptionsBuilder,
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use futures::TryStreamExt;

use crate::pause::{PAUSE_IMAGE, image_tar};

/// Label: the node (agent) that owns the container.
pub(crate) const LABEL_NODE: &str = "io.hortator.node";
/// Label: the pod's uid.
pub(crate) const LABEL_POD_UID: &str = "io.hortator.pod.uid";
/// Label: the pod's namespace.
pub(crate) const LABEL_POD_NAMESPACE: &str = "io.hortator.pod.namespace";
/// Label: the pod's name.
pub(crate) const LABEL_POD_NAME: &str = "io.hortator.pod.name";
/// Label: the container's name in the pod spec (`POD` for the sandbox).
pub(crate) const LABEL_CONTAINER: &str = "io.hortator.container.name";
/// Label: how many times this container was started before this instance.
pub(crate) const LABEL_ATTEMPT: &str = "io.hortator.container.attempt";
/// Label: hash of the container's spec; a changed spec restarts the container.
pub(crate) const LABEL_HASH: &str = "io.hortator.container.hash";
/// The container name the sandbox carries in [`LABEL_CONTAINER`].
pub(crate) const SANDBOX: &str = "POD";

/// What the monitor samples: this node's containers, tied to their pods by our labels, and
/// their emptyDir volumes; the data directory's filesystem is the node's.
pub(crate) fn monitor_config(config: &crate::KubeletConfig) -> hortator_monitor::MonitorConfig {
    let node = &config.node_name;
    let labels = hortator_monitor::Labels {
        pod_uid: LABEL_POD_UID.into(),
        pod_namespace: LABEL_POD_NAMESPACE.into(),
        pod_name: LABEL_POD_NAME.into(),
        container: LABEL_CONTAINER.into(),
        sandbox: SANDBOX.into(),
    };
    let mut monitor = hortator_monitor::MonitorConfig::new(
        node,
        &format!("{LABEL_NODE}={node}"),
        labels,
        config.root_dir.clone(),
    );
    monitor.volumes = Some(hortator_monitor::VolumeLayout {
        pods_dir: config.root_dir.join(crate::PODS_DIR),
        empty_dirs: crate::volumes::empty_dirs(Path::new("")),
    });
    monitor.interval = config.stats_interval;
    monitor.fs_interval = config.fs_stats_interval;
    monitor
}

/// Why the engine refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RuntimeError {
    /// Any engine error.
    #[error(transparent)]
    Docker(#[from] bollard::errors::Error),
    /// The pause image tar could not be built.
    #[error("cannot build the pause image: {0}")]
    PauseImage(std::io::Error),
}

/// Connect to the engine at `socket` and agree on an API version.
pub(crate) async fn connect(socket: &Path) -> Result<Docker, bollard::errors::Error> {
    let docker = Docker::connect_with_unix(
        &socket.display().to_string(),
        120,
        bollard::API_DEFAULT_VERSION,
    )?;
    let docker = docker.negotiate_version().await?;
    docker.ping().await?;
    Ok(docker)
}

/// One container the agent created, as listed by the engine.
#[derive(Debug, Clone)]
pub(crate) struct Instance {
    /// Engine id.
    pub id: String,
    /// Pod uid.
    pub uid: String,
    /// Container name ([`SANDBOX`] for the sandbox).
    pub container: String,
    /// Start attempt (0 for the first).
    pub attempt: u32,
    /// Spec hash.
    pub hash: String,
    /// Whether it is running.
    pub running: bool,
}

impl Instance {
    fn from_summary(summary: ContainerSummary) -> Option<Instance> {
        let labels = summary.labels?;
        let get = |key: &str| labels.get(key).cloned();
        Some(Instance {
            id: summary.id?,
            uid: get(LABEL_POD_UID)?,
            container: get(LABEL_CONTAINER)?,
            attempt: get(LABEL_ATTEMPT).and_then(|a| a.parse().ok()).unwrap_or(0),
            hash: get(LABEL_HASH).unwrap_or_default(),
            running: matches!(
                summary.state,
                Some(bollard::models::ContainerSummaryStateEnum::RUNNING)
                    | Some(bollard::models::ContainerSummaryStateEnum::RESTARTING)
            ),
        })
    }
}

/// The engine, scoped to one node's containers.
#[derive(Clone)]
pub(crate) struct Runtime {
    /// The engine client.
    pub docker: Docker,
    node: String,
}

impl Runtime {
    /// The engine seen by node `node`.
    pub fn new(docker: Docker, node: &str) -> Runtime {
        Runtime {
            docker,
            node: node.to_string(),
        }
    }

    /// Labels every container of `uid` carries.
    pub fn labels(
        &self,
        namespace: &str,
        pod: &str,
        uid: &str,
        container: &str,
        attempt: u32,
        hash: &str,
    ) -> HashMap<String, String> {
        [
            (LABEL_NODE, self.node.as_str()),
            (LABEL_POD_UID, uid),
            (LABEL_POD_NAMESPACE, namespace),
            (LABEL_POD_NAME, pod),
            (LABEL_CONTAINER, container),
            (LABEL_ATTEMPT, &attempt.to_string()),
            (LABEL_HASH, hash),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Every container of this node (running or not), optionally of one pod only.
    pub async fn list(&self, uid: Option<&str>) -> Result<Vec<Instance>, RuntimeError> {
        let mut labels = vec![format!("{LABEL_NODE}={}", self.node)];
        if let Some(uid) = uid {
            labels.push(format!("{LABEL_POD_UID}={uid}"));
        }
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&HashMap::from([("label".to_string(), labels)]))
            .build();
        let list = self.docker.list_containers(Some(options)).await?;
        Ok(list
            .into_iter()
            .filter_map(Instance::from_summary)
            .collect())
    }

    /// Details of one container.
    pub async fn inspect(&self, id: &str) -> Result<ContainerInspectResponse, RuntimeError> {
        Ok(self.docker.inspect_container(id, None).await?)
    }

    /// Create and start a container.
    pub async fn run(&self, name: &str, body: ContainerCreateBody) -> Result<String, RuntimeError> {
        let options = CreateContainerOptionsBuilder::new().name(name).build();
        let created = match self
            .docker
            .create_container(Some(options), body.clone())
            .await
        {
            Ok(created) => created,
            // A leftover with the same name (a crash between create and start): replace it.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => {
                self.remove(name).await?;
                let options = CreateContainerOptionsBuilder::new().name(name).build();
                self.docker.create_container(Some(options), body).await?
            }
            Err(e) => return Err(e.into()),
        };
        if let Err(e) = self.docker.start_container(&created.id, None).await {
            // Keep the engine clean: a container that never started is of no use.
            let _ = self.remove(&created.id).await;
            return Err(e.into());
        }
        Ok(created.id)
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub async fn stop(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        let seconds = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::new().t(seconds).build();
        match self.docker.stop_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_gone(&e) || is_not_modified(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// SIGKILL now.
    pub async fn kill(&self, id: &str) -> Result<(), RuntimeError> {
        let options = KillContainerOptionsBuilder::new().signal("SIGKILL").build();
        match self.docker.kill_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_gone(&e) || is_conflict(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Remove a container (forcefully) and its anonymous volumes; absent is fine.
    pub async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_gone(&e) => Ok(()),
            // Removal already in progress.
            Err(e) if is_conflict(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether `image` is present locally.
    pub async fn has_image(&self, image: &str) -> Result<bool, RuntimeError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) if is_gone(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Pull `image` (a missing tag means `latest`).
    pub async fn pull(&self, image: &str) -> Result<(), RuntimeError> {
        let (repository, tag) = split_image(image);
        let options = CreateImageOptionsBuilder::new()
            .from_image(repository)
            .tag(tag)
            .build();
        self.docker
            .create_image(Some(options), None, None)
            .try_for_each(|_| async { Ok(()) })
            .await?;
        Ok(())
    }

    /// Build the pause image with `docker import` unless it exists.
    pub async fn ensure_pause_image(&self) -> Result<(), RuntimeError> {
        if self.has_image(PAUSE_IMAGE).await? {
            return Ok(());
        }
        let tar = image_tar().map_err(RuntimeError::PauseImage)?;
        let (repository, tag) = split_image(PAUSE_IMAGE);
        let options = CreateImageOptionsBuilder::new()
            .from_src("-")
            .repo(repository)
            .tag(tag)
            .message("hortator pause image")
            .build();
        self.docker
            .create_image(
                Some(options),
                Some(bollard::body_full(bytes::Bytes::from(tar))),
                None,
            )
            .try_for_each(|_| async { Ok(()) })
            .await?;
        tracing::info!(image = PAUSE_IMAGE, "built the pause image");
        Ok(())
    }
}

/// `registry:5000/name:tag` → (`registry:5000/name`, `tag`); no tag → `latest`. A digest
/// (`name@sha256:…`) is passed whole as the repository.
pub(crate) fn split_image(image: &str) -> (&str, &str) {
    if image.contains('@') {
        return (image, "");
    }
    let name_start = image.rfind('/').map_or(0, |i| i + 1);
    match image[name_start..].rfind(':') {
        Some(i) => (&image[..name_start + i], &image[name_start + i + 1..]),
        None => (image, "latest"),
    }
}

fn status_code(e: &bollard::errors::Error) -> Option<u16> {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// The engine answered 404.
pub(crate) fn is_gone(e: &bollard::errors::Error) -> bool {
    status_code(e) == Some(404)
}

fn is_conflict(e: &bollard::errors::Error) -> bool {
    status_code(e) == Some(409)
}

fn is_not_modified(e: &bollard::errors::Error) -> bool {
    status_code(e) == Some(304)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_split_into_repository_and_tag() {
        assert_eq!(split_image("busybox"), ("busybox", "latest"));
        assert_eq!(split_image("busybox:1.36"), ("busybox", "1.36"));
        assert_eq!(
            split_image("127.0.0.1:5000/httpd"),
            ("127.0.0.1:5000/httpd", "latest")
        );
        assert_eq!(
            split_image("127.0.0.1:5000/web/httpd:v2"),
            ("127.0.0.1:5000/web/httpd", "v2")
        );
        assert_eq!(split_image("a@sha256:00"), ("a@sha256:00", ""));
    }
}
