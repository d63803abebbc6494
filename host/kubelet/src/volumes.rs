//! Pod volumes on the node: emptyDir (a directory, or tmpfs for `medium: Memory`), hostPath,
//! configMap and secret (their keys written as files), bind-mounted into the containers.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, Container, KeyToPath, Pod, Secret, Volume};
use kube::Api;

use crate::env::ConfigError;

/// A prepared volume: where it lives on the node, and whether it must be mounted read-only.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    path: PathBuf,
    read_only: bool,
}

/// Directory of one pod's volumes.
pub(crate) fn volumes_dir(pod_dir: &Path) -> PathBuf {
    pod_dir.join("volumes")
}

/// Directory of one pod's emptyDir volumes, one directory each, named after the volume.
pub(crate) fn empty_dirs(pod_dir: &Path) -> PathBuf {
    volumes_dir(pod_dir).join("empty-dir")
}

/// Create or refresh every volume of `pod` under `pod_dir`.
pub(crate) async fn prepare(
    pod: &Pod,
    client: &kube::Client,
    pod_dir: &Path,
) -> Result<BTreeMap<String, Prepared>, ConfigError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut prepared = BTreeMap::new();
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or_default();
    for volume in volumes {
        let path = prepare_one(volume, namespace, client, pod_dir).await?;
        prepared.insert(volume.name.clone(), path);
    }
    Ok(prepared)
}

async fn prepare_one(
    volume: &Volume,
    namespace: &str,
    client: &kube::Client,
    pod_dir: &Path,
) -> Result<Prepared, ConfigError> {
    let dir = volumes_dir(pod_dir);
    let fail = |what: &str, e: std::io::Error| {
        ConfigError(format!("volume {:?}: {what}: {e}", volume.name))
    };
    if let Some(empty) = &volume.empty_dir {
        let path = empty_dirs(pod_dir).join(&volume.name);
        std::fs::create_dir_all(&path).map_err(|e| fail("cannot create the directory", e))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))
            .map_err(|e| fail("cannot set permissions", e))?;
        if empty.medium.as_deref() == Some("Memory") && !is_mount_point(&path) {
            let size = empty
                .size_limit
                .as_ref()
                .and_then(|q| hortator_api::validation::quantity_value(&q.0))
                .map(|bytes| format!(",size={bytes}"))
                .unwrap_or_default();
            nix::mount::mount(
                Some("tmpfs"),
                &path,
                Some("tmpfs"),
                nix::mount::MsFlags::empty(),
                Some(format!("mode=0777{size}").as_str()),
            )
            .map_err(|e| fail("cannot mount tmpfs", e.into()))?;
        }
        return Ok(Prepared {
            path,
            read_only: false,
        });
    }
    if let Some(host) = &volume.host_path {
        let path = PathBuf::from(&host.path);
        check_host_path(&path, host.type_.as_deref().unwrap_or_default())
            .map_err(|reason| ConfigError(format!("volume {:?}: {reason}", volume.name)))?;
        return Ok(Prepared {
            path,
            read_only: false,
        });
    }
    if let Some(source) = &volume.config_map {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        let optional = source.optional.unwrap_or(false);
        let data = match api.get_opt(&source.name).await {
            Ok(Some(map)) => {
                let mut data: BTreeMap<String, Vec<u8>> = map
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.into_bytes()))
                    .collect();
                data.extend(
                    map.binary_data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.0)),
                );
                data
            }
            Ok(None) if optional => BTreeMap::new(),
            Ok(None) => {
                return Err(ConfigError(format!(
                    "configmap {:?} not found",
                    source.name
                )));
            }
            Err(e) => return Err(ConfigError(format!("cannot read configmap: {e}"))),
        };
        let path = dir.join("configmap").join(&volume.name);
        write_keys(&path, &data, source.items.as_deref(), source.default_mode)
            .map_err(|reason| ConfigError(format!("volume {:?}: {reason}", volume.name)))?;
        return Ok(Prepared {
            path,
            read_only: true,
        });
    }
    if let Some(source) = &volume.secret {
        let name = source.secret_name.clone().unwrap_or_default();
        let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
        let optional = source.optional.unwrap_or(false);
        let data = match api.get_opt(&name).await {
            Ok(Some(secret)) => secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect(),
            Ok(None) if optional => BTreeMap::new(),
            Ok(None) => return Err(ConfigError(format!("secret {name:?} not found"))),
            Err(e) => return Err(ConfigError(format!("cannot read secret: {e}"))),
        };
        let path = dir.join("secret").join(&volume.name);
        write_keys(&path, &data, source.items.as_deref(), source.default_mode)
            .map_err(|reason| ConfigError(format!("volume {:?}: {reason}", volume.name)))?;
        return Ok(Prepared {
            path,
            read_only: true,
        });
    }
    Err(ConfigError(format!(
        "volume {:?}: only emptyDir, hostPath, configMap and secret volumes are supported",
        volume.name
    )))
}

fn check_host_path(path: &Path, kind: &str) -> Result<(), String> {
    let metadata = std::fs::metadata(path);
    let shown = path.display();
    match kind {
        "" => Ok(()),
        "DirectoryOrCreate" => std::fs::create_dir_all(path)
            .map_err(|e| format!("cannot create directory {shown}: {e}")),
        "Directory" if metadata.as_ref().is_ok_and(|m| m.is_dir()) => Ok(()),
        "Directory" => Err(format!(
            "hostPath type check failed: {shown} is not a directory"
        )),
        "FileOrCreate" => {
            if !path.exists() {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
                }
                std::fs::File::create(path)
                    .map_err(|e| format!("cannot create file {shown}: {e}"))?;
            }
            Ok(())
        }
        "File" if metadata.as_ref().is_ok_and(|m| m.is_file()) => Ok(()),
        "File" => Err(format!("hostPath type check failed: {shown} is not a file")),
        "Socket" | "CharDevice" | "BlockDevice" => {
            use std::os::unix::fs::FileTypeExt;
            let t = metadata
                .map_err(|e| format!("hostPath type check failed: {shown}: {e}"))?
                .file_type();
            let ok = match kind {
                "Socket" => t.is_socket(),
                "CharDevice" => t.is_char_device(),
                _ => t.is_block_device(),
            };
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "hostPath type check failed: {shown} is not a {kind}"
                ))
            }
        }
        other => Err(format!("unknown hostPath type {other:?}")),
    }
}

/// A relative path without `..`: the only paths `items` may name.
fn safe_relative(path: &str) -> Option<&Path> {
    let p = Path::new(path);
    p.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then_some(p)
}

/// Write `data` (all keys, or the `items` chosen) as files under `dir`, replacing what was
/// there. The directory itself is kept: it may be bind-mounted already.
fn write_keys(
    dir: &Path,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    default_mode: Option<i32>,
) -> Result<(), String> {
    let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
    std::fs::create_dir_all(dir).map_err(|e| io("cannot create the directory", e))?;
    for entry in std::fs::read_dir(dir).map_err(|e| io("cannot read the directory", e))? {
        let entry = entry.map_err(|e| io("cannot read the directory", e))?;
        let path = entry.path();
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(|e| io("cannot clear the directory", e))?;
    }
    let files: Vec<(&str, &[u8], Option<i32>)> = match items {
        Some(items) => items
            .iter()
            .map(|item| {
                data.get(&item.key)
                    .map(|value| (item.path.as_str(), value.as_slice(), item.mode))
                    .ok_or_else(|| format!("key {:?} not found", item.key))
            })
            .collect::<Result<_, _>>()?,
        None => data
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_slice(), None))
            .collect(),
    };
    for (relative, value, mode) in files {
        let relative =
            safe_relative(relative).ok_or_else(|| format!("invalid item path {relative:?}"))?;
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io("cannot create a directory", e))?;
        }
        std::fs::write(&path, value).map_err(|e| io("cannot write a file", e))?;
        let mode = mode.or(default_mode).unwrap_or(0o644) as u32 & 0o777;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| io("cannot set a file's mode", e))?;
    }
    Ok(())
}

/// Docker bind specs (`host:container[:ro]`) for `container`'s volume mounts.
pub(crate) fn binds(
    container: &Container,
    volumes: &BTreeMap<String, Prepared>,
) -> Result<Vec<String>, ConfigError> {
    let mut binds = Vec::new();
    for mount in container.volume_mounts.as_deref().unwrap_or_default() {
        let volume = volumes.get(&mount.name).ok_or_else(|| {
            ConfigError(format!(
                "container {}: volume mount {:?} names no volume of the pod",
                container.name, mount.name
            ))
        })?;
        let mut source = volume.path.clone();
        if let Some(sub) = mount.sub_path.as_deref().filter(|s| !s.is_empty()) {
            let sub = safe_relative(sub)
                .ok_or_else(|| ConfigError(format!("invalid subPath {sub:?}")))?;
            source = source.join(sub);
            if !source.exists() {
                std::fs::create_dir_all(&source).map_err(|e| {
                    ConfigError(format!("cannot create subPath {}: {e}", source.display()))
                })?;
            }
        }
        let read_only = volume.read_only || mount.read_only.unwrap_or(false);
        binds.push(format!(
            "{}:{}{}",
            source.display(),
            mount.mount_path,
            if read_only { ":ro" } else { "" }
        ));
    }
    Ok(binds)
}

fn is_mount_point(path: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo").is_ok_and(|text| {
        let wanted = path.display().to_string();
        text.lines()
            .filter_map(|line| line.split(' ').nth(4))
            .any(|mount_point| mount_point == wanted)
    })
}

/// Remove a pod's volumes from the node (tmpfs unmounted first).
pub(crate) fn remove(pod_dir: &Path) -> std::io::Result<()> {
    let empty = empty_dirs(pod_dir);
    if let Ok(entries) = std::fs::read_dir(&empty) {
        for entry in entries.flatten() {
            if is_mount_point(&entry.path()) {
                nix::mount::umount2(&entry.path(), nix::mount::MntFlags::MNT_DETACH)?;
            }
        }
    }
    match std::fs::remove_dir_all(pod_dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_files_with_modes_and_items() {
        let dir = tempfile::tempdir().unwrap();
        let data = BTreeMap::from([
            ("a".to_string(), b"1".to_vec()),
            ("b".to_string(), b"2".to_vec()),
        ]);
        write_keys(dir.path(), &data, None, Some(0o600)).unwrap();
        assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"1");
        let mode = std::fs::metadata(dir.path().join("b"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let items = [KeyToPath {
            key: "b".into(),
            path: "sub/b.txt".into(),
            mode: None,
        }];
        write_keys(dir.path(), &data, Some(&items), None).unwrap();
        assert!(!dir.path().join("a").exists(), "old keys are removed");
        assert_eq!(std::fs::read(dir.path().join("sub/b.txt")).unwrap(), b"2");
        let escape = [KeyToPath {
            key: "a".into(),
            path: "../x".into(),
            mode: None,
        }];
        assert!(write_keys(dir.path(), &data, Some(&escape), None).is_err());
    }

    #[test]
    fn host_path_types_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("d");
        check_host_path(&d, "DirectoryOrCreate").unwrap();
        check_host_path(&d, "Directory").unwrap();
        assert!(check_host_path(&d, "File").is_err());
        let f = dir.path().join("x/f");
        check_host_path(&f, "FileOrCreate").unwrap();
        check_host_path(&f, "File").unwrap();
        assert!(check_host_path(&f, "Socket").is_err());
        assert!(check_host_path(&f, "Weird").is_err());
    }
}
