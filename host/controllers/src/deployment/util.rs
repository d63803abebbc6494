//! Deployment bookkeeping shared by planning and reconciling, as in Kubernetes'
//! `pkg/controller/deployment/util`: template hashes, template equality, revisions and the
//! replica annotations, rolling-update fenceposts, and ReplicaSet accessors.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::Error;

/// The label that tells a Deployment's ReplicaSets (and their pods) apart.
pub(super) const HASH_LABEL: &str = "pod-template-hash";
/// The revision of a Deployment and of each of its ReplicaSets.
pub(super) const REVISION: &str = "deployment.kubernetes.io/revision";
/// The revisions a re-used ReplicaSet served before (a rollback).
pub(super) const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// `spec.replicas` of the Deployment when the ReplicaSet was last scaled.
pub(super) const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// `spec.replicas + maxSurge` of the Deployment when the ReplicaSet was last scaled.
pub(super) const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// Longest `revision-history` annotation kept, in characters.
const MAX_REVISION_HISTORY_CHARS: usize = 2000;

/// Deployment annotations that are never copied to a ReplicaSet (nor back on a rollback).
const NOT_COPIED: [&str; 7] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deployment.kubernetes.io/error-selector-overlapping-with",
    "deployment.kubernetes.io/selector-updated-at",
];

/// The alphabet of `rand.SafeEncodeString`: no vowels, no look-alike characters.
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// 32-bit FNV-1a.
fn fnv32a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, b| {
        (hash ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// `rand.SafeEncodeString`: each character mapped into [`SAFE_ALPHABET`].
fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| char::from(SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()]))
        .collect()
}

/// The pod template as comparable JSON: no `pod-template-hash` label, and no null or empty
/// fields (Kubernetes' semantic equality does not tell nil from empty).
fn canonical(template: &PodTemplateSpec) -> Value {
    let mut value = serde_json::to_value(template).unwrap_or(Value::Null);
    if let Some(labels) = value
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH_LABEL);
    }
    prune(&mut value);
    value
}

/// Remove null, empty-object and empty-array members of objects, recursively.
fn prune(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for member in map.values_mut() {
                prune(member);
            }
            map.retain(|_, v| match v {
                Value::Null => false,
                Value::Object(m) => !m.is_empty(),
                Value::Array(a) => !a.is_empty(),
                _ => true,
            });
        }
        Value::Array(items) => items.iter_mut().for_each(prune),
        _ => {}
    }
}

/// The `pod-template-hash` of a template: FNV-1a of the template and the collision count,
/// rendered like Kubernetes' `ComputeHash` (decimal digits mapped to a safe alphabet).
pub(super) fn compute_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut bytes = serde_json::to_vec(&canonical(template)).unwrap_or_default();
    if let Some(count) = collision_count {
        // Kubernetes writes the count as 4 little-endian bytes into an 8-byte buffer.
        bytes.extend_from_slice(&count.to_le_bytes());
        bytes.extend_from_slice(&[0; 4]);
    }
    safe_encode(&fnv32a(&bytes).to_string())
}

/// Whether two templates are the same apart from their `pod-template-hash` label.
pub(super) fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    canonical(a) == canonical(b)
}

/// The template of a ReplicaSet (empty when it has none).
pub(super) fn rs_template(rs: &ReplicaSet) -> PodTemplateSpec {
    rs.spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .unwrap_or_default()
}

/// `spec.replicas` of a ReplicaSet (the API's default is 1).
pub(super) fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// `status.replicas` of a ReplicaSet.
pub(super) fn status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map_or(0, |s| s.replicas)
}

/// The pods a ReplicaSet has or is about to have: the larger of `spec.replicas` and
/// `status.replicas`, so that pods still being removed count against the surge.
pub(super) fn pods_or_wanted(rs: &ReplicaSet) -> i32 {
    spec_replicas(rs).max(status_replicas(rs))
}

/// `status.readyReplicas` of a ReplicaSet.
pub(super) fn ready_replicas(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

/// `status.availableReplicas` of a ReplicaSet.
pub(super) fn available_replicas(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

/// An annotation of an object's metadata.
pub(super) fn annotation<'a>(
    annotations: Option<&'a BTreeMap<String, String>>,
    key: &str,
) -> Option<&'a str> {
    annotations?.get(key).map(String::as_str)
}

/// The revision recorded on a ReplicaSet (0 when absent; `None` when not a number).
pub(super) fn revision(rs: &ReplicaSet) -> Option<i64> {
    match annotation(rs.metadata.annotations.as_ref(), REVISION) {
        None => Some(0),
        Some(text) => text.parse().ok(),
    }
}

/// The highest revision among `sets`.
pub(super) fn max_revision<'a>(sets: impl IntoIterator<Item = &'a ReplicaSet>) -> i64 {
    sets.into_iter().filter_map(revision).max().unwrap_or(0)
}

/// An integer annotation of a ReplicaSet.
pub(super) fn int_annotation(rs: &ReplicaSet, key: &str) -> Option<i32> {
    annotation(rs.metadata.annotations.as_ref(), key)?
        .parse()
        .ok()
}

/// Order ReplicaSets oldest first (creation time, then name).
pub(super) fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let time = |rs: &ReplicaSet| rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
    time(a)
        .cmp(&time(b))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// The ReplicaSet running the Deployment's current template: the oldest one whose template
/// equals it (ignoring the hash label).
pub(super) fn find_new(d: &Deployment, sets: &[ReplicaSet]) -> Option<usize> {
    let template = d.spec.as_ref().map(|s| &s.template)?;
    let mut matching: Vec<usize> = (0..sets.len())
        .filter(|&i| equal_ignore_hash(&rs_template(&sets[i]), template))
        .collect();
    matching.sort_by(|&a, &b| by_creation(&sets[a], &sets[b]));
    matching.first().copied()
}

/// The rollout strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Strategy {
    /// Replace pods a few at a time.
    RollingUpdate,
    /// Remove every old pod before starting new ones.
    Recreate,
}

/// A Deployment's sizes, resolved once per reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Limits {
    /// `spec.replicas`.
    pub replicas: i32,
    /// How many pods may exist above `replicas` (0 for Recreate).
    pub max_surge: i32,
    /// How many of `replicas` may be unavailable (0 for Recreate).
    pub max_unavailable: i32,
    /// The strategy.
    pub strategy: Strategy,
}

impl Limits {
    /// Resolve the strategy of `d`; `maxSurge`/`maxUnavailable` default to 25%.
    pub(super) fn of(d: &Deployment) -> Result<Limits, Error> {
        let spec = d.spec.as_ref();
        let replicas = spec.and_then(|s| s.replicas).unwrap_or(1);
        let strategy = spec.and_then(|s| s.strategy.as_ref());
        match strategy.and_then(|s| s.type_.as_deref()) {
            Some("Recreate") => Ok(Limits {
                replicas,
                max_surge: 0,
                max_unavailable: 0,
                strategy: Strategy::Recreate,
            }),
            None | Some("RollingUpdate") => {
                let rolling = strategy.and_then(|s| s.rolling_update.as_ref());
                let quarter = IntOrString::String("25%".into());
                let surge = rolling
                    .and_then(|r| r.max_surge.as_ref())
                    .unwrap_or(&quarter);
                let unavailable = rolling
                    .and_then(|r| r.max_unavailable.as_ref())
                    .unwrap_or(&quarter);
                let (max_surge, max_unavailable) = fenceposts(surge, unavailable, replicas)?;
                Ok(Limits {
                    replicas,
                    max_surge,
                    max_unavailable: if replicas == 0 {
                        0
                    } else {
                        max_unavailable.min(replicas)
                    },
                    strategy: Strategy::RollingUpdate,
                })
            }
            Some(other) => Err(Error::InvalidSpec(format!(
                "unsupported strategy type {other:?}"
            ))),
        }
    }

    /// The most replicas all ReplicaSets may have together: `replicas + maxSurge`.
    pub(super) fn max_total(&self) -> i32 {
        self.replicas.saturating_add(self.max_surge)
    }

    /// The fewest available replicas a rollout keeps: `replicas - maxUnavailable`.
    pub(super) fn min_available(&self) -> i32 {
        self.replicas - self.max_unavailable
    }
}

/// An int-or-percent scaled against `total`: percentages round up or down.
pub(super) fn scaled_value(value: &IntOrString, total: i32, round_up: bool) -> Result<i32, Error> {
    match value {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(text) => {
            let percent: i64 = text
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| {
                    Error::InvalidSpec(format!(
                        "invalid value for IntOrString: {text:?} is not an integer or percentage"
                    ))
                })?;
            let scaled = percent * i64::from(total);
            let value = if round_up {
                scaled.div_euclid(100) + i64::from(scaled.rem_euclid(100) != 0)
            } else {
                scaled.div_euclid(100)
            };
            i32::try_from(value)
                .map_err(|_| Error::InvalidSpec(format!("{text:?} of {total} is out of range")))
        }
    }
}

/// Kubernetes' `ResolveFenceposts`: surge rounds up, unavailable rounds down, and when both
/// come to zero one pod may be unavailable.
pub(super) fn fenceposts(
    surge: &IntOrString,
    unavailable: &IntOrString,
    replicas: i32,
) -> Result<(i32, i32), Error> {
    let surge = scaled_value(surge, replicas, true)?;
    let unavailable = scaled_value(unavailable, replicas, false)?;
    if surge < 0 || unavailable < 0 {
        return Err(Error::InvalidSpec(
            "maxSurge and maxUnavailable must not be negative".into(),
        ));
    }
    if surge == 0 && unavailable == 0 {
        return Ok((0, 1));
    }
    Ok((surge, unavailable))
}

/// Set the desired/max replica annotations; whether anything changed.
pub(super) fn set_replicas_annotations(
    annotations: &mut BTreeMap<String, String>,
    limits: &Limits,
) -> bool {
    let mut changed = false;
    for (key, value) in [
        (DESIRED_REPLICAS, limits.replicas),
        (MAX_REPLICAS, limits.max_total()),
    ] {
        let value = value.to_string();
        if annotations.get(key) != Some(&value) {
            annotations.insert(key.to_string(), value);
            changed = true;
        }
    }
    changed
}

/// Whether a ReplicaSet's desired/max annotations differ from what `limits` would write.
pub(super) fn replicas_annotations_differ(rs: &ReplicaSet, limits: &Limits) -> bool {
    int_annotation(rs, DESIRED_REPLICAS) != Some(limits.replicas)
        || int_annotation(rs, MAX_REPLICAS) != Some(limits.max_total())
}

/// Kubernetes' `SetNewReplicaSetAnnotations`: copy the Deployment's annotations, raise the
/// revision to `new_revision` (recording the one it replaces in `revision-history`) and, for a
/// ReplicaSet about to be created, set the replica annotations. Whether anything changed.
pub(super) fn set_new_rs_annotations(
    d: &Deployment,
    annotations: &mut BTreeMap<String, String>,
    new_revision: i64,
    exists: bool,
    limits: &Limits,
) -> bool {
    let mut changed = false;
    for (key, value) in d.metadata.annotations.iter().flatten() {
        if !NOT_COPIED.contains(&key.as_str()) && annotations.get(key) != Some(value) {
            annotations.insert(key.clone(), value.clone());
            changed = true;
        }
    }
    let old = annotations.get(REVISION).cloned();
    let old_number = match old.as_deref() {
        None | Some("") => 0,
        Some(text) => match text.parse::<i64>() {
            Ok(n) => n,
            // An unreadable revision is left alone, as Kubernetes does.
            Err(_) => return changed,
        },
    };
    if old_number < new_revision {
        annotations.insert(REVISION.to_string(), new_revision.to_string());
        changed = true;
        if let Some(old) = old.filter(|o| !o.is_empty()) {
            let history = annotations
                .get(REVISION_HISTORY)
                .cloned()
                .unwrap_or_default();
            let mut entries: Vec<&str> = history.split(',').filter(|e| !e.is_empty()).collect();
            entries.push(&old);
            while entries.iter().map(|e| e.len() + 1).sum::<usize>() - 1
                > MAX_REVISION_HISTORY_CHARS
                && entries.len() > 1
            {
                entries.remove(0);
            }
            annotations.insert(REVISION_HISTORY.to_string(), entries.join(","));
        }
    }
    if !exists && set_replicas_annotations(annotations, limits) {
        changed = true;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..ObjectMeta::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "web".into(),
                    image: Some(image.into()),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
        }
    }

    fn rolling(replicas: i32, surge: IntOrString, unavailable: IntOrString) -> Deployment {
        Deployment {
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(surge),
                        max_unavailable: Some(unavailable),
                    }),
                }),
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        }
    }

    fn pct(p: &str) -> IntOrString {
        IntOrString::String(p.into())
    }

    #[test]
    fn fnv32a_matches_reference_vectors() {
        assert_eq!(fnv32a(b""), 0x811c_9dc5);
        assert_eq!(fnv32a(b"a"), 0xe40c_292c);
        assert_eq!(fnv32a(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn safe_encoding_uses_the_kubernetes_alphabet() {
        // '0' is 48, 48 % 27 = 21 → '4'; '9' is 57, 57 % 27 = 3 → 'f'.
        assert_eq!(safe_encode("09"), "4f");
        let hash = compute_hash(&template("nginx:1"), None);
        assert!((1..=10).contains(&hash.len()), "{hash}");
        assert!(hash.bytes().all(|b| SAFE_ALPHABET.contains(&b)), "{hash}");
    }

    #[test]
    fn hash_is_stable_and_tracks_the_template() {
        let a = compute_hash(&template("nginx:1"), None);
        assert_eq!(a, compute_hash(&template("nginx:1"), None));
        assert_ne!(a, compute_hash(&template("nginx:2"), None));
        assert_ne!(a, compute_hash(&template("nginx:1"), Some(1)));
        assert_ne!(
            compute_hash(&template("nginx:1"), Some(1)),
            compute_hash(&template("nginx:1"), Some(2))
        );
        // The hash label itself, and empty fields, do not count.
        let mut labelled = template("nginx:1");
        if let Some(labels) = labelled.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.insert(HASH_LABEL.into(), "abc".into());
        }
        if let Some(spec) = labelled.spec.as_mut() {
            spec.volumes = Some(Vec::new());
        }
        assert_eq!(a, compute_hash(&labelled, None));
        assert!(equal_ignore_hash(&labelled, &template("nginx:1")));
        assert!(!equal_ignore_hash(&labelled, &template("nginx:2")));
    }

    #[test]
    fn percentages_round_like_kubernetes() {
        assert_eq!(scaled_value(&pct("25%"), 3, true).ok(), Some(1));
        assert_eq!(scaled_value(&pct("25%"), 3, false).ok(), Some(0));
        assert_eq!(scaled_value(&pct("25%"), 4, true).ok(), Some(1));
        assert_eq!(scaled_value(&pct("25%"), 10, true).ok(), Some(3));
        assert_eq!(scaled_value(&pct("25%"), 10, false).ok(), Some(2));
        assert_eq!(scaled_value(&pct("100%"), 7, false).ok(), Some(7));
        assert_eq!(scaled_value(&IntOrString::Int(2), 10, false).ok(), Some(2));
        assert!(scaled_value(&pct("x%"), 10, false).is_err());
        assert!(scaled_value(&pct("5"), 10, false).is_err());
    }

    #[test]
    fn limits_resolve_fenceposts() {
        let limits = Limits::of(&rolling(10, pct("25%"), pct("25%"))).ok();
        assert_eq!(
            limits.map(|l| (l.max_surge, l.max_unavailable)),
            Some((3, 2))
        );
        // Both zero after rounding: one pod may be unavailable.
        let limits = Limits::of(&rolling(1, IntOrString::Int(0), pct("25%"))).ok();
        assert_eq!(
            limits.map(|l| (l.max_surge, l.max_unavailable)),
            Some((0, 1))
        );
        // Unavailable never exceeds replicas; zero replicas allow none.
        let limits = Limits::of(&rolling(2, IntOrString::Int(0), IntOrString::Int(5))).ok();
        assert_eq!(limits.map(|l| l.max_unavailable), Some(2));
        let limits = Limits::of(&rolling(0, pct("25%"), pct("25%"))).ok();
        assert_eq!(limits.map(|l| l.max_unavailable), Some(0));
        // Missing fields default to 25%.
        let mut d = rolling(4, pct("1%"), pct("1%"));
        if let Some(s) = d.spec.as_mut() {
            s.strategy = None;
        }
        let limits = Limits::of(&d).ok();
        assert_eq!(
            limits.map(|l| (l.max_surge, l.max_unavailable)),
            Some((1, 1))
        );
        if let Some(s) = d.spec.as_mut() {
            s.strategy = Some(DeploymentStrategy {
                type_: Some("Recreate".into()),
                rolling_update: None,
            });
        }
        let limits = Limits::of(&d).ok();
        assert_eq!(
            limits.map(|l| (l.strategy, l.max_surge, l.max_unavailable)),
            Some((Strategy::Recreate, 0, 0))
        );
        if let Some(s) = d.spec.as_mut() {
            s.strategy = Some(DeploymentStrategy {
                type_: Some("BlueGreen".into()),
                rolling_update: None,
            });
        }
        assert!(Limits::of(&d).is_err());
    }

    #[test]
    fn new_rs_annotations_track_revisions() {
        let mut d = rolling(3, pct("25%"), pct("25%"));
        d.metadata.annotations = Some(
            [
                ("kubernetes.io/change-cause", "set image"),
                (REVISION, "7"),
                ("kubectl.kubernetes.io/last-applied-configuration", "{}"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        );
        let limits = Limits::of(&d).expect("limits");
        // A new ReplicaSet: revision, change cause, replica annotations.
        let mut fresh = BTreeMap::new();
        assert!(set_new_rs_annotations(&d, &mut fresh, 2, false, &limits));
        assert_eq!(fresh.get(REVISION).map(String::as_str), Some("2"));
        assert_eq!(
            fresh.get("kubernetes.io/change-cause").map(String::as_str),
            Some("set image")
        );
        assert_eq!(fresh.get(DESIRED_REPLICAS).map(String::as_str), Some("3"));
        assert_eq!(fresh.get(MAX_REPLICAS).map(String::as_str), Some("4"));
        assert!(!fresh.contains_key("kubectl.kubernetes.io/last-applied-configuration"));
        assert!(!fresh.contains_key(REVISION_HISTORY));
        // Unchanged on a second pass.
        assert!(!set_new_rs_annotations(&d, &mut fresh, 2, true, &limits));
        // Rolled back to: the revision rises and the old ones are remembered.
        assert!(set_new_rs_annotations(&d, &mut fresh, 4, true, &limits));
        assert_eq!(fresh.get(REVISION).map(String::as_str), Some("4"));
        assert_eq!(fresh.get(REVISION_HISTORY).map(String::as_str), Some("2"));
        assert!(set_new_rs_annotations(&d, &mut fresh, 6, true, &limits));
        assert_eq!(fresh.get(REVISION_HISTORY).map(String::as_str), Some("2,4"));
        // A lower revision never replaces a higher one.
        assert!(!set_new_rs_annotations(&d, &mut fresh, 5, true, &limits));
        assert_eq!(fresh.get(REVISION).map(String::as_str), Some("6"));
    }

    #[test]
    fn revisions_parse() {
        let mut rs = ReplicaSet::default();
        assert_eq!(revision(&rs), Some(0));
        rs.metadata.annotations = Some([(REVISION.to_string(), "12".to_string())].into());
        assert_eq!(revision(&rs), Some(12));
        let mut bad = ReplicaSet::default();
        bad.metadata.annotations = Some([(REVISION.to_string(), "x".to_string())].into());
        assert_eq!(revision(&bad), None);
        assert_eq!(max_revision([&rs, &bad]), 12);
    }
}
