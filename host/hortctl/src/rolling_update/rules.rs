//! The pure rules of a rolling update: durations, annotations, selector checks, the scaling
//! arithmetic (max surge 1, max unavailable 0) and the new controller of `--image`.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// On the new controller: `<old name>:<old uid>`, the controller it replaces.
pub const SOURCE_ID: &str = "kubectl.kubernetes.io/update-source-id";
/// On the new controller: how many replicas it must reach.
pub const DESIRED_REPLICAS: &str = "kubectl.kubernetes.io/desired-replicas";
/// On the old controller: its replicas before the update (for a rollback).
pub const ORIGINAL_REPLICAS: &str = "kubectl.kubernetes.io/original-replicas";
/// On the old controller: the name of the controller replacing it.
pub const NEXT_CONTROLLER: &str = "kubectl.kubernetes.io/next-controller-id";

/// Pods above the desired count that may exist during the update.
pub const MAX_SURGE: i32 = 1;

/// Parse a Go duration (`300ms`, `1m30s`, `1.5h`; units ns, us, µs, ms, s, m, h).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {text:?}");
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(|| format!("missing unit in duration {text:?}"))?;
        let number: f64 = rest[..number_len].parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            unit => return Err(format!("unknown unit {unit:?} in duration {text:?}")),
        };
        rest = &rest[unit_len..];
        total += number * seconds;
    }
    Duration::try_from_secs_f64(total).map_err(|_| invalid())
}

/// Adler-32, the checksum kubectl names new controllers with.
pub fn adler32(bytes: &[u8]) -> u32 {
    const MOD: u32 = 65521;
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in bytes.chunks(5552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// The hash of a controller: the Adler-32 of its JSON, in hex.
pub fn hash(rc: &ReplicationController) -> String {
    format!("{:x}", adler32(&serde_json::to_vec(rc).unwrap_or_default()))
}

/// The selector of a controller (empty when unset).
pub fn selector(rc: &ReplicationController) -> BTreeMap<String, String> {
    rc.spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default()
}

/// `k1=v1,k2=v2`, to list the pods of a selector.
pub fn selector_string(selector: &BTreeMap<String, String>) -> String {
    selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether the new selector has a key of the old one with another value: only then do the
/// two controllers select disjoint pods.
pub fn selectors_differ(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> bool {
    old.iter()
        .any(|(k, v)| new.get(k).is_some_and(|new_value| new_value != v))
}

/// `spec.replicas` (default 1).
pub fn replicas(rc: &ReplicationController) -> i32 {
    rc.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// The annotation `key` of `rc`.
pub fn annotation<'a>(rc: &'a ReplicationController, key: &str) -> Option<&'a str> {
    rc.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// The replica count recorded in annotation `key` of `rc`.
pub fn annotated_replicas(rc: &ReplicationController, key: &str) -> Result<i32, String> {
    let value = annotation(rc, key).unwrap_or_default();
    value
        .parse::<i32>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| {
            format!(
                "unable to parse annotation for {}: {key}={value}",
                rc.metadata.name.as_deref().unwrap_or_default()
            )
        })
}

/// The lowest number of available pods during an update to `desired` pods.
pub fn min_available(desired: i32) -> i32 {
    desired.max(0)
}

/// The next replica count of the new controller, if it can grow without exceeding
/// `desired + MAX_SURGE` pods in all.
pub fn scale_up_to(desired: i32, old: i32, new: i32) -> Option<i32> {
    if new == desired {
        return None;
    }
    let increment = if old == 0 {
        desired - new
    } else {
        desired + MAX_SURGE - (old + new)
    };
    (increment > 0).then(|| (new + increment).min(desired))
}

/// The next replica count of the old controller, if it can shrink while keeping
/// `min_available` pods available.
pub fn scale_down_to(
    desired: i32,
    min_available: i32,
    old: i32,
    new: i32,
    new_available: i32,
) -> Option<i32> {
    if old == 0 {
        return None;
    }
    let new_unavailable = (new - new_available).max(0);
    let decrement = old + new - min_available - new_unavailable;
    if decrement <= 0 {
        return None;
    }
    if new == desired && new_available >= desired {
        return Some(0);
    }
    Some((old - decrement).max(0))
}

/// Whether a pod counts as available: not being deleted, ready for `min_ready_seconds`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    if pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let Some(ready) = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .filter(|c| c.status == "True")
    else {
        return false;
    };
    if min_ready_seconds <= 0 {
        return true;
    }
    ready.last_transition_time.as_ref().is_none_or(|t| {
        t.0.checked_add(SignedDuration::from_secs(i64::from(min_ready_seconds)))
            .is_ok_and(|at| at <= now)
    })
}

/// The index of the container whose image changes: `container` by name, or the only one.
pub fn container_index(
    rc: &ReplicationController,
    container: Option<&str>,
) -> Result<usize, String> {
    let containers = rc
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.spec.as_ref())
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    match container {
        Some(name) => containers
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| format!("container {name} not found in pod")),
        None if containers.is_empty() => Err("the pod template has no containers".into()),
        None if containers.len() > 1 => {
            Err("must specify --container to update when updating a multi-container pod".into())
        }
        None => Ok(0),
    }
}

/// The image of container `index` of `rc`'s template.
pub fn image(rc: &ReplicationController, index: usize) -> Option<&str> {
    rc.spec
        .as_ref()?
        .template
        .as_ref()?
        .spec
        .as_ref()?
        .containers
        .get(index)?
        .image
        .as_deref()
}

/// What `--image` changes.
pub struct ImageChange<'a> {
    /// The new image.
    pub image: &'a str,
    /// The container, when the pod has several.
    pub container: Option<&'a str>,
    /// `--image-pull-policy`.
    pub pull_policy: Option<&'a str>,
    /// The label key that tells old and new pods apart.
    pub deployment_key: &'a str,
    /// The name of the new controller (default `<old>-<hash>`).
    pub name: Option<&'a str>,
}

/// The new controller of `--image` (kubectl's `CreateNewControllerFromCurrentController`):
/// the old one with the new image, named `<old>-<hash>`, with `<key>=<hash>` added to its
/// selector and template labels.
pub fn controller_for_image(
    old: &ReplicationController,
    change: &ImageChange<'_>,
) -> Result<ReplicationController, String> {
    let index = container_index(old, change.container)?;
    if image(old, index) == Some(change.image) && change.pull_policy.is_none() {
        return Err("--image-pull-policy (Always|Never|IfNotPresent) must be provided when --image is the same as the existing container image".into());
    }
    let mut new = old.clone();
    let container = new
        .spec
        .as_mut()
        .and_then(|s| s.template.as_mut())
        .and_then(|t| t.spec.as_mut())
        .and_then(|s| s.containers.get_mut(index))
        .ok_or("the pod template has no containers")?;
    container.image = Some(change.image.to_string());
    if let Some(policy) = change.pull_policy {
        container.image_pull_policy = Some(policy.to_string());
    }
    // The hash covers the whole object, resourceVersion included: the same image twice gets
    // two names.
    let hash = hash(&new);
    let old_name = old.metadata.name.clone().unwrap_or_default();
    let mut annotations = old.metadata.annotations.clone().unwrap_or_default();
    for key in [
        SOURCE_ID,
        DESIRED_REPLICAS,
        ORIGINAL_REPLICAS,
        NEXT_CONTROLLER,
    ] {
        annotations.remove(key);
    }
    new.metadata = ObjectMeta {
        name: Some(
            change
                .name
                .map_or_else(|| format!("{old_name}-{hash}"), str::to_string),
        ),
        namespace: old.metadata.namespace.clone(),
        labels: old.metadata.labels.clone(),
        annotations: (!annotations.is_empty()).then_some(annotations),
        ..ObjectMeta::default()
    };
    new.status = None;
    if let Some(spec) = new.spec.as_mut() {
        spec.selector
            .get_or_insert_default()
            .insert(change.deployment_key.to_string(), hash.clone());
        if let Some(template) = spec.template.as_mut() {
            template
                .metadata
                .get_or_insert_default()
                .labels
                .get_or_insert_default()
                .insert(change.deployment_key.to_string(), hash);
        }
    }
    Ok(new)
}

/// A copy of `rc` to create under `name`: same labels, spec and annotations (without the
/// update's), nothing the server set.
pub fn renamed(rc: &ReplicationController, name: &str) -> ReplicationController {
    let mut annotations = rc.metadata.annotations.clone().unwrap_or_default();
    for key in [
        SOURCE_ID,
        DESIRED_REPLICAS,
        ORIGINAL_REPLICAS,
        NEXT_CONTROLLER,
    ] {
        annotations.remove(key);
    }
    ReplicationController {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: rc.metadata.namespace.clone(),
            labels: rc.metadata.labels.clone(),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..ObjectMeta::default()
        },
        spec: rc.spec.clone(),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rc(value: serde_json::Value) -> ReplicationController {
        serde_json::from_value(value).unwrap()
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("10µs"), Ok(Duration::from_micros(10)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("5").unwrap_err().contains("missing unit"));
        assert!(parse_duration("3d").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn adler32_matches_the_reference() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        let long = vec![0xffu8; 100_000];
        // zlib.adler32(b"\xff" * 100000)
        assert_eq!(adler32(&long), 0x149a_302c);
    }

    #[test]
    fn selectors_must_differ_in_a_shared_key() {
        let old = map(&[("name", "httpd")]);
        assert!(selectors_differ(&old, &map(&[("name", "httpd-v2")])));
        assert!(!selectors_differ(
            &old,
            &map(&[("name", "httpd"), ("v", "2")])
        ));
        assert!(!selectors_differ(&old, &map(&[("app", "other")])));
        assert_eq!(selector_string(&map(&[("b", "2"), ("a", "1")])), "a=1,b=2");
    }

    #[test]
    fn annotations_parse() {
        let with = rc(json!({"metadata": {"name": "web-2",
            "annotations": {DESIRED_REPLICAS: "3", ORIGINAL_REPLICAS: "x"}}}));
        assert_eq!(annotated_replicas(&with, DESIRED_REPLICAS), Ok(3));
        let err = annotated_replicas(&with, ORIGINAL_REPLICAS).unwrap_err();
        assert_eq!(
            err,
            "unable to parse annotation for web-2: kubectl.kubernetes.io/original-replicas=x"
        );
        assert!(annotated_replicas(&with, SOURCE_ID).is_err());
    }

    /// Play a whole update of 3 replicas where new pods become available at once.
    #[test]
    fn scaling_never_exceeds_the_surge_nor_drops_availability() {
        let desired = 3;
        let min = min_available(desired);
        let (mut old, mut new) = (3, 0);
        let mut steps = Vec::new();
        while new != desired || old != 0 {
            if let Some(to) = scale_up_to(desired, old, new) {
                new = to;
                steps.push(format!("up {new}"));
            }
            assert!(old + new <= desired + MAX_SURGE);
            if let Some(to) = scale_down_to(desired, min, old, new, new) {
                old = to;
                steps.push(format!("down {old}"));
            }
            assert!(old + new >= min);
        }
        assert_eq!(
            steps,
            ["up 1", "down 2", "up 2", "down 1", "up 3", "down 0"]
        );
    }

    #[test]
    fn no_scale_down_while_new_pods_are_unavailable() {
        assert_eq!(scale_down_to(3, 3, 3, 1, 0), None);
        assert_eq!(scale_down_to(3, 3, 3, 1, 1), Some(2));
        assert_eq!(scale_up_to(3, 3, 1), None);
        // Old already gone: all the way up.
        assert_eq!(scale_up_to(3, 0, 1), Some(3));
        assert_eq!(scale_down_to(3, 3, 0, 3, 3), None);
    }

    #[test]
    fn availability_needs_readiness_for_min_ready_seconds() {
        let pod: Pod = serde_json::from_value(json!({"status": {"conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"}]}}))
        .unwrap();
        let now: Timestamp = "2025-01-01T00:00:05Z".parse().unwrap();
        assert!(is_available(&pod, 0, now));
        assert!(is_available(&pod, 5, now));
        assert!(!is_available(&pod, 6, now));
        let mut deleting = pod.clone();
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now));
        assert!(!is_available(&deleting, 0, now));
    }

    fn web() -> ReplicationController {
        rc(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u", "resourceVersion": "7",
                "labels": {"app": "web"}, "annotations": {NEXT_CONTROLLER: "x", "keep": "1"}},
            "spec": {"replicas": 2, "selector": {"app": "web"},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "img:1"}]}}},
            "status": {"replicas": 2},
        }))
    }

    #[test]
    fn image_updates_make_a_distinct_controller() {
        let old = web();
        let change = ImageChange {
            image: "img:2",
            container: None,
            pull_policy: None,
            deployment_key: "deployment",
            name: None,
        };
        let new = controller_for_image(&old, &change).unwrap();
        let name = new.metadata.name.clone().unwrap();
        let hash = name.strip_prefix("web-").unwrap();
        assert!(u32::from_str_radix(hash, 16).is_ok(), "{name}");
        assert_eq!(image(&new, 0), Some("img:2"));
        assert_eq!(selector(&new)["deployment"], hash);
        assert!(selectors_differ(
            &BTreeMap::from([("deployment".into(), "orig".into())]),
            &selector(&new)
        ));
        assert!(new.metadata.uid.is_none() && new.metadata.resource_version.is_none());
        assert!(new.status.is_none());
        let annotations = new.metadata.annotations.unwrap();
        assert!(annotations.contains_key("keep") && !annotations.contains_key(NEXT_CONTROLLER));

        // Same image: needs a pull policy. Unknown container: an error.
        let same = ImageChange {
            image: "img:1",
            ..change
        };
        assert!(controller_for_image(&old, &same).is_err());
        let missing = ImageChange {
            container: Some("nope"),
            ..change
        };
        assert_eq!(
            controller_for_image(&old, &missing).unwrap_err(),
            "container nope not found in pod"
        );
    }

    #[test]
    fn renamed_copies_drop_server_fields_and_update_annotations() {
        let copy = renamed(&web(), "web2");
        assert_eq!(copy.metadata.name.as_deref(), Some("web2"));
        assert!(copy.metadata.uid.is_none() && copy.status.is_none());
        assert_eq!(
            copy.metadata.annotations,
            Some(BTreeMap::from([("keep".into(), "1".into())]))
        );
        assert_eq!(replicas(&copy), 2);
    }
}
