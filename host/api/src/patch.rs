//! Patches on JSON documents: RFC 7386 merge patch, RFC 6902 JSON patch and Kubernetes strategic
//! merge patch (`k8s.io/apimachinery/pkg/util/strategicpatch`, as applied by the API server).

use serde_json::{Map, Value};

/// An error applying a patch.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The JSON patch document is malformed (not a list of valid operations).
    #[error("invalid JSON patch: {0}")]
    MalformedJsonPatch(String),
    /// A JSON patch operation failed (failed `test`, missing path, ...).
    #[error("{0}")]
    JsonPatchFailed(String),
    /// The strategic merge patch is invalid (bad directive, missing merge key, ...).
    #[error("{0}")]
    InvalidStrategicPatch(String),
}

/// Applies an RFC 7386 JSON merge patch in place.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Applies an RFC 6902 JSON patch in place; on error `target` is left unchanged.
pub fn json_patch(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| PatchError::MalformedJsonPatch(e.to_string()))?;
    json_patch::patch(target, &ops).map_err(|e| PatchError::JsonPatchFailed(e.to_string()))
}

// ---------------------------------------------------------------------------------------------
// Patch metadata (from the Go struct tags `patchStrategy` / `patchMergeKey`)
// ---------------------------------------------------------------------------------------------

/// Strategic-merge metadata of one field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatchMeta {
    /// `patchStrategy:"merge"`: lists are merged instead of replaced.
    pub merge: bool,
    /// `patchMergeKey`: the key identifying list elements (None for primitive lists).
    pub merge_key: Option<&'static str>,
    /// `patchStrategy:"retainKeys"`.
    pub retain_keys: bool,
}

const fn merge_by(key: &'static str) -> PatchMeta {
    PatchMeta {
        merge: true,
        merge_key: Some(key),
        retain_keys: false,
    }
}

const fn merge_retain_by(key: &'static str) -> PatchMeta {
    PatchMeta {
        merge: true,
        merge_key: Some(key),
        retain_keys: true,
    }
}

const MERGE_PRIMITIVE: PatchMeta = PatchMeta {
    merge: true,
    merge_key: None,
    retain_keys: false,
};

const RETAIN_KEYS: PatchMeta = PatchMeta {
    merge: false,
    merge_key: None,
    retain_keys: true,
};

type Table = &'static [(&'static str, PatchMeta)];

const OBJECT_META: Table = &[
    ("finalizers", MERGE_PRIMITIVE),
    ("ownerReferences", merge_by("uid")),
];

const POD_SPEC: Table = &[
    ("volumes", merge_retain_by("name")),
    ("containers", merge_by("name")),
    ("containers.ports", merge_by("containerPort")),
    ("containers.env", merge_by("name")),
    ("containers.volumeMounts", merge_by("mountPath")),
    ("containers.volumeDevices", merge_by("devicePath")),
    ("initContainers", merge_by("name")),
    ("initContainers.ports", merge_by("containerPort")),
    ("initContainers.env", merge_by("name")),
    ("initContainers.volumeMounts", merge_by("mountPath")),
    ("initContainers.volumeDevices", merge_by("devicePath")),
    ("ephemeralContainers", merge_by("name")),
    ("ephemeralContainers.ports", merge_by("containerPort")),
    ("ephemeralContainers.env", merge_by("name")),
    ("ephemeralContainers.volumeMounts", merge_by("mountPath")),
    ("ephemeralContainers.volumeDevices", merge_by("devicePath")),
    ("imagePullSecrets", merge_by("name")),
    ("hostAliases", merge_by("ip")),
    ("topologySpreadConstraints", merge_by("topologyKey")),
    ("resourceClaims", merge_retain_by("name")),
    ("schedulingGates", merge_by("name")),
];

const POD_STATUS: Table = &[
    ("conditions", merge_by("type")),
    ("podIPs", merge_by("ip")),
    ("hostIPs", merge_by("ip")),
    ("resourceClaimStatuses", merge_retain_by("name")),
];

const CONDITIONS: Table = &[("conditions", merge_by("type"))];

const SERVICE_SPEC: Table = &[("ports", merge_by("port"))];

const NODE_SPEC: Table = &[("podCIDRs", MERGE_PRIMITIVE)];

const NODE_STATUS: Table = &[
    ("conditions", merge_by("type")),
    ("addresses", merge_by("type")),
];

const DEPLOYMENT_SPEC: Table = &[("strategy", RETAIN_KEYS)];

type Sections = &'static [(&'static str, Table)];

const WORKLOAD: Sections = &[
    ("metadata", OBJECT_META),
    ("spec.template.metadata", OBJECT_META),
    ("spec.template.spec", POD_SPEC),
    ("status", CONDITIONS),
];

/// The strategic-merge sections of a kind: (path prefix, table relative to it).
fn sections(kind: &str) -> Option<Sections> {
    Some(match kind {
        "Pod" => &[
            ("metadata", OBJECT_META),
            ("spec", POD_SPEC),
            ("status", POD_STATUS),
        ],
        "PodTemplate" => &[
            ("metadata", OBJECT_META),
            ("template.metadata", OBJECT_META),
            ("template.spec", POD_SPEC),
        ],
        "ReplicationController" | "ReplicaSet" | "DaemonSet" | "StatefulSet" | "Job" => WORKLOAD,
        "Deployment" => &[
            ("metadata", OBJECT_META),
            ("spec", DEPLOYMENT_SPEC),
            ("spec.template.metadata", OBJECT_META),
            ("spec.template.spec", POD_SPEC),
            ("status", CONDITIONS),
        ],
        "CronJob" => &[
            ("metadata", OBJECT_META),
            ("spec.jobTemplate.metadata", OBJECT_META),
            ("spec.jobTemplate.spec.template.metadata", OBJECT_META),
            ("spec.jobTemplate.spec.template.spec", POD_SPEC),
        ],
        "Service" => &[
            ("metadata", OBJECT_META),
            ("spec", SERVICE_SPEC),
            ("status", CONDITIONS),
        ],
        "Node" => &[
            ("metadata", OBJECT_META),
            ("spec", NODE_SPEC),
            ("status", NODE_STATUS),
        ],
        "Namespace" | "PersistentVolumeClaim" => {
            &[("metadata", OBJECT_META), ("status", CONDITIONS)]
        }
        "Endpoints" | "Event" | "ConfigMap" | "Secret" | "Lease" | "ServiceAccount"
        | "PersistentVolume" | "LimitRange" | "ResourceQuota" | "EndpointSlice"
        | "PriorityClass" | "StorageClass" | "Role" | "RoleBinding" | "ClusterRole"
        | "ClusterRoleBinding" | "Binding" => &[("metadata", OBJECT_META)],
        _ => return None,
    })
}

/// Whether `kind` is a built-in kind with strategic-merge metadata (others get plain JSON merge
/// semantics from [`strategic_merge_patch`]).
pub fn has_patch_meta(kind: &str) -> bool {
    sections(kind).is_some()
}

/// The strategic-merge metadata of the field at `path` (dotted JSON field names, list levels
/// skipped, e.g. `spec.template.spec.containers.env`) of `kind`.
pub fn patch_meta(kind: &str, path: &str) -> Option<PatchMeta> {
    for (prefix, table) in sections(kind)? {
        if let Some(rest) = path.strip_prefix(prefix).and_then(|r| r.strip_prefix('.'))
            && let Some((_, meta)) = table.iter().find(|(p, _)| *p == rest)
        {
            return Some(*meta);
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Strategic merge patch
// ---------------------------------------------------------------------------------------------

const PATCH_DIRECTIVE: &str = "$patch";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList/";

fn bad(msg: impl Into<String>) -> PatchError {
    PatchError::InvalidStrategicPatch(msg.into())
}

fn is_directive_key(k: &str) -> bool {
    k == PATCH_DIRECTIVE
        || k == RETAIN_KEYS_DIRECTIVE
        || k.starts_with(SET_ELEMENT_ORDER_PREFIX)
        || k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
}

/// Applies a Kubernetes strategic merge patch to `original` (a built-in object of `kind`) and
/// returns the result. Unknown kinds get JSON-merge semantics (lists replaced); directives are
/// always interpreted and never end up in the result.
pub fn strategic_merge_patch(
    original: &Value,
    patch: &Value,
    kind: &str,
) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(bad("strategic merge patch must be a JSON object"));
    };
    let original = match original {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        _ => return Err(bad("the object to patch must be a JSON object")),
    };
    let ctx = Ctx { kind };
    Ok(Value::Object(ctx.merge_map(original, patch.clone(), "")?))
}

struct Ctx<'a> {
    kind: &'a str,
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The value identifying a list element: its merge key for maps, itself otherwise.
fn element_key<'v>(v: &'v Value, merge_key: Option<&str>) -> Option<&'v Value> {
    match (v, merge_key) {
        (Value::Object(m), Some(k)) => m.get(k),
        _ => Some(v),
    }
}

fn index_of(list: &[Value], item: &Value, merge_key: Option<&str>) -> Option<usize> {
    let key = element_key(item, merge_key)?;
    list.iter()
        .position(|v| element_key(v, merge_key) == Some(key))
}

fn to_string_compact(m: &Map<String, Value>) -> String {
    serde_json::to_string(m).unwrap_or_default()
}

impl Ctx<'_> {
    fn meta(&self, path: &str) -> Option<PatchMeta> {
        patch_meta(self.kind, path)
    }

    fn merge_map(
        &self,
        mut original: Map<String, Value>,
        mut patch: Map<String, Value>,
        path: &str,
    ) -> Result<Map<String, Value>, PatchError> {
        if let Some(directive) = patch.get(PATCH_DIRECTIVE) {
            match directive.as_str() {
                Some("replace") => {
                    patch.remove(PATCH_DIRECTIVE);
                    return self.merge_map(Map::new(), patch, path);
                }
                Some("delete") => return Ok(Map::new()),
                Some("merge") => {
                    patch.remove(PATCH_DIRECTIVE);
                }
                _ => {
                    return Err(bad(format!(
                        "unknown patch type: {} in map: {}",
                        directive,
                        to_string_compact(&patch)
                    )));
                }
            }
        }

        // $retainKeys: drop the original keys that are not listed.
        if let Some(retain) = patch.remove(RETAIN_KEYS_DIRECTIVE) {
            let Value::Array(list) = retain else {
                return Err(bad("invalid patch format of retainKeys"));
            };
            let keep: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
            for (k, v) in &patch {
                if v.is_null() || is_directive_key(k) {
                    continue;
                }
                if !keep.contains(&k.as_str()) {
                    return Err(bad("invalid patch format of retainKeys"));
                }
            }
            original.retain(|k, _| keep.contains(&k.as_str()));
        }

        // $setElementOrder/<field>: merge the list and enforce the order.
        let order_keys: Vec<String> = patch
            .keys()
            .filter(|k| k.starts_with(SET_ELEMENT_ORDER_PREFIX))
            .cloned()
            .collect();
        for order_key in order_keys {
            let Some(Value::Array(order)) = patch.remove(&order_key) else {
                return Err(bad(format!(
                    "invalid patch format of {order_key}: expected a list"
                )));
            };
            let field = &order_key[SET_ELEMENT_ORDER_PREFIX.len()..];
            let field_path = child(path, field);
            let meta = self.meta(&field_path);
            let merge_key = meta.and_then(|m| m.merge_key);
            let orig_list = match original.get(field) {
                Some(Value::Array(a)) => Some(a.clone()),
                _ => None,
            };
            let patch_list = match patch.get(field) {
                Some(Value::Array(_)) => match patch.remove(field) {
                    Some(Value::Array(a)) => Some(a),
                    _ => None,
                },
                _ => None,
            };
            let merged = match (orig_list.clone(), patch_list) {
                (Some(o), None) => o,
                (None, Some(p)) => self.merge_list(Vec::new(), p, meta, &field_path)?,
                (Some(o), Some(p)) => self.merge_list(o, p, meta, &field_path)?,
                (None, None) => continue,
            };
            let (patch_items, server_only): (Vec<Value>, Vec<Value>) = merged
                .into_iter()
                .partition(|v| index_of(&order, v, merge_key).is_some());
            let result = normalize_element_order(
                patch_items,
                server_only,
                &order,
                orig_list.as_deref().unwrap_or(&[]),
                merge_key,
            );
            original.insert(field.to_string(), Value::Array(result));
        }

        for (k, patch_v) in patch {
            if let Some(field) = k.strip_prefix(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
                let Value::Array(to_delete) = patch_v else {
                    return Err(bad(format!("invalid patch format of {k}: expected a list")));
                };
                if let Some(Value::Array(list)) = original.get_mut(field) {
                    list.retain(|v| !to_delete.contains(v));
                }
                continue;
            }
            if is_directive_key(&k) {
                continue;
            }
            if patch_v.is_null() {
                original.shift_remove(&k);
                continue;
            }
            let field_path = child(path, &k);
            let new_value = match (original.get_mut(&k).map(std::mem::take), patch_v) {
                (Some(Value::Object(o)), Value::Object(p)) => {
                    Value::Object(self.merge_map(o, p, &field_path)?)
                }
                (Some(Value::Array(o)), Value::Array(p)) => {
                    let meta = self.meta(&field_path);
                    Value::Array(self.merge_list(o, p, meta, &field_path)?)
                }
                (_, p) => self.fresh(p, &field_path)?,
            };
            original.insert(k, new_value);
        }
        Ok(original)
    }

    /// A patch value with nothing to merge into: interpret its directives and drop nulls.
    fn fresh(&self, value: Value, path: &str) -> Result<Value, PatchError> {
        Ok(match value {
            Value::Object(p) => Value::Object(self.merge_map(Map::new(), p, path)?),
            Value::Array(p) => {
                let meta = self.meta(path);
                Value::Array(self.merge_list(Vec::new(), p, meta, path)?)
            }
            v => v,
        })
    }

    fn merge_list(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        meta: Option<PatchMeta>,
        path: &str,
    ) -> Result<Vec<Value>, PatchError> {
        match meta {
            Some(m) if m.merge => self.merge_slice(original, patch, m.merge_key, path),
            _ => self.replace_list(patch, path),
        }
    }

    /// A list replacing the original: elements are cleaned of directives and nulls.
    fn replace_list(&self, patch: Vec<Value>, path: &str) -> Result<Vec<Value>, PatchError> {
        let mut out = Vec::with_capacity(patch.len());
        for v in patch {
            match v {
                Value::Object(m) => {
                    match m.get(PATCH_DIRECTIVE).and_then(Value::as_str) {
                        Some("delete") => continue,
                        Some("replace") if m.len() == 1 => continue,
                        _ => {}
                    }
                    out.push(Value::Object(self.merge_map(Map::new(), m, path)?));
                }
                v => out.push(v),
            }
        }
        Ok(out)
    }

    fn merge_slice(
        &self,
        mut original: Vec<Value>,
        patch: Vec<Value>,
        merge_key: Option<&str>,
        path: &str,
    ) -> Result<Vec<Value>, PatchError> {
        if original.is_empty() && patch.is_empty() {
            return Ok(original);
        }
        let is_maps =
            merge_key.is_some() && original.iter().chain(patch.iter()).any(|v| v.is_object());
        let Some(key) = merge_key.filter(|_| is_maps) else {
            // Primitive list (set union, de-duplicated, original order first).
            let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
            for v in original.iter().chain(patch.iter()) {
                if !merged.contains(v) {
                    merged.push(v.clone());
                }
            }
            let (patch_items, server_only): (Vec<Value>, Vec<Value>) = merged
                .into_iter()
                .partition(|v| index_of(&patch, v, None).is_some());
            return Ok(normalize_element_order(
                patch_items,
                server_only,
                &patch,
                &original,
                None,
            ));
        };

        // Special elements: {"$patch": "delete"|"replace"}.
        let mut plain: Vec<Map<String, Value>> = Vec::with_capacity(patch.len());
        let mut replace = false;
        for v in patch {
            let Value::Object(m) = v else {
                return Err(bad(format!(
                    "map: {v} does not contain declared merge key: {key}"
                )));
            };
            match m.get(PATCH_DIRECTIVE) {
                None => plain.push(m),
                Some(d) => match d.as_str() {
                    Some("delete") => {
                        let Some(kv) = m.get(key) else {
                            return Err(bad(format!(
                                "map: {} does not contain declared merge key: {key}",
                                to_string_compact(&m)
                            )));
                        };
                        original.retain(|o| element_key(o, Some(key)) != Some(kv));
                    }
                    Some("replace") => replace = true,
                    Some("merge") => {
                        return Err(bad("merging lists cannot yet be specified in the patch"));
                    }
                    _ => {
                        return Err(bad(format!(
                            "unknown patch type: {} in map: {}",
                            d,
                            to_string_compact(&m)
                        )));
                    }
                },
            }
        }
        if replace {
            let mut out = Vec::with_capacity(plain.len());
            for m in plain {
                out.push(Value::Object(self.merge_map(Map::new(), m, path)?));
            }
            return Ok(out);
        }

        let server_order = original.clone();
        let mut merged = original;
        let mut patch_order: Vec<Value> = Vec::with_capacity(plain.len());
        for m in plain {
            let Some(kv) = m.get(key).cloned() else {
                return Err(bad(format!(
                    "map: {} does not contain declared merge key: {key}",
                    to_string_compact(&m)
                )));
            };
            let mut order_entry = Map::new();
            order_entry.insert(key.to_string(), kv.clone());
            patch_order.push(Value::Object(order_entry));
            let pos = merged
                .iter()
                .position(|o| element_key(o, Some(key)) == Some(&kv));
            match pos {
                Some(i) => {
                    let existing = std::mem::take(&mut merged[i]);
                    merged[i] = match existing {
                        Value::Object(o) => Value::Object(self.merge_map(o, m, path)?),
                        _ => Value::Object(self.merge_map(Map::new(), m, path)?),
                    };
                }
                None => merged.push(Value::Object(self.merge_map(Map::new(), m, path)?)),
            }
        }
        let (patch_items, server_only): (Vec<Value>, Vec<Value>) = merged
            .into_iter()
            .partition(|v| index_of(&patch_order, v, Some(key)).is_some());
        Ok(normalize_element_order(
            patch_items,
            server_only,
            &patch_order,
            &server_order,
            Some(key),
        ))
    }
}

/// Kubernetes' `normalizeElementOrder`: sorts the patch items by `patch_order`, the server-only
/// items by `server_order`, then interleaves them keeping both relative orders.
fn normalize_element_order(
    mut patch_items: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: Option<&str>,
) -> Vec<Value> {
    patch_items.sort_by_key(|v| index_of(patch_order, v, merge_key).unwrap_or(usize::MAX));
    server_only.sort_by_key(|v| index_of(server_order, v, merge_key).unwrap_or(usize::MAX));
    // mergeSortedSlice(left = server-only items, right = patch items): a server-only item goes
    // first only when both are in the live list and it precedes the patch item there, so new
    // patch items are placed before the remaining server-only items (as in Kubernetes).
    let mut out = Vec::with_capacity(patch_items.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = patch_items.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                match (
                    index_of(server_order, l, merge_key),
                    index_of(server_order, r, merge_key),
                ) {
                    (Some(li), Some(ri)) => li < ri,
                    _ => false,
                }
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        if let Some(v) = next {
            out.push(v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn smp(original: Value, patch: Value, kind: &str) -> Value {
        strategic_merge_patch(&original, &patch, kind).unwrap()
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "default",
                "labels": {"app": "web"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"old\":true}\n"},
                "finalizers": ["a"]
            },
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "nginx",
                                "image": "nginx:1.14",
                                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
                            },
                            {"name": "sidecar", "image": "busybox"}
                        ],
                        "restartPolicy": "Always"
                    }
                }
            },
            "status": {"replicas": 1}
        })
    }

    #[test]
    fn kubectl_apply_second_time() {
        let patch = json!({
            "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"new\":true}\n"}},
            "spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
                "containers": [{"image": "nginx:1.16", "name": "nginx"}]
            }}}
        });
        let out = smp(deployment(), patch, "Deployment");
        let containers = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers[0]["image"], "nginx:1.16");
        assert_eq!(containers[0]["ports"][0]["containerPort"], 80);
        assert_eq!(containers[0]["env"].as_array().unwrap().len(), 2);
        assert_eq!(containers[1]["name"], "sidecar");
        assert_eq!(containers.as_array().unwrap().len(), 2);
        assert_eq!(
            out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
            "{\"new\":true}\n"
        );
        assert!(!out.to_string().contains('$'));
    }

    #[test]
    fn apply_reorder_add_and_remove() {
        // Reverse the order, add a container, remove a port and an env var.
        let patch = json!({
            "spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "new"}, {"name": "nginx"}],
                "containers": [
                    {"name": "new", "image": "redis"},
                    {
                        "name": "nginx",
                        "$setElementOrder/env": [{"name": "B"}],
                        "env": [{"$patch": "delete", "name": "A"}],
                        "ports": null
                    }
                ]
            }}}
        });
        let out = smp(deployment(), patch, "Deployment");
        let containers = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        let names: Vec<&str> = containers
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["sidecar", "new", "nginx"]);
        assert_eq!(containers[2]["env"], json!([{"name": "B", "value": "2"}]));
        assert!(containers[2].get("ports").is_none());
        assert!(!out.to_string().contains('$'));
    }

    #[test]
    fn labels_annotations_scale() {
        let out = smp(
            deployment(),
            json!({"metadata": {"labels": {"a": "b"}}}),
            "Deployment",
        );
        assert_eq!(out["metadata"]["labels"], json!({"app": "web", "a": "b"}));
        let out = smp(
            out,
            json!({"metadata": {"labels": {"a": null}}}),
            "Deployment",
        );
        assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
        let out = smp(
            out,
            json!({"metadata": {"annotations": {"note": "x"}}}),
            "Deployment",
        );
        assert_eq!(out["metadata"]["annotations"]["note"], "x");
        let out = smp(out, json!({"spec": {"replicas": 3}}), "Deployment");
        assert_eq!(out["spec"]["replicas"], 3);
        // Null for a missing key is ignored.
        let out = smp(
            out,
            json!({"metadata": {"labels": {"zzz": null}}}),
            "Deployment",
        );
        assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
    }

    #[test]
    fn container_merge_by_name() {
        let pod = json!({"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "b:1"}
        ]}});
        let out = smp(
            pod.clone(),
            json!({"spec": {"containers": [{"name": "b", "image": "b:2"}]}}),
            "Pod",
        );
        assert_eq!(
            out["spec"]["containers"],
            json!([
                {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
                {"name": "b", "image": "b:2"}
            ])
        );
        // Delete a container.
        let out = smp(
            pod.clone(),
            json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}),
            "Pod",
        );
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "b", "image": "b:1"}])
        );
        // Env merge by name: update one, add one (patch order wins, as in Kubernetes).
        let out = smp(
            pod.clone(),
            json!({"spec": {"containers": [{"name": "a", "env": [{"name": "Y", "value": "2"}, {"name": "X", "value": "9"}]}]}}),
            "Pod",
        );
        assert_eq!(
            out["spec"]["containers"][0]["env"],
            json!([{"name": "Y", "value": "2"}, {"name": "X", "value": "9"}])
        );
        // Updating a middle element keeps the original order; new elements go first (Kubernetes'
        // mergeSortedSlice places patch items not in the live list before server-only items).
        let three = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}});
        let out = smp(
            three,
            json!({"spec": {"containers": [{"name": "d"}, {"name": "b", "image": "x"}]}}),
            "Pod",
        );
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "d"}, {"name": "a"}, {"name": "b", "image": "x"}, {"name": "c"}])
        );
        // Unknown kind: lists are replaced.
        let out = smp(
            pod.clone(),
            json!({"spec": {"containers": [{"name": "b", "image": "b:2"}]}}),
            "Widget",
        );
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "b", "image": "b:2"}])
        );
        // Replace directive on a list.
        let out = smp(
            pod,
            json!({"spec": {"containers": [{"name": "c", "image": "c"}, {"$patch": "replace"}]}}),
            "Pod",
        );
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "c", "image": "c"}])
        );
    }

    #[test]
    fn rc_template_and_tolerations() {
        let rc = json!({"spec": {"template": {"spec": {
            "containers": [{"name": "a", "image": "a:1", "ports": [{"containerPort": 80}]}],
            "tolerations": [{"key": "k1", "operator": "Exists"}]
        }}}});
        let out = smp(
            rc,
            json!({"spec": {"template": {"spec": {
                "containers": [{"name": "a", "ports": [{"containerPort": 81}]}],
                "tolerations": [{"key": "k2", "operator": "Exists"}]
            }}}}),
            "ReplicationController",
        );
        let spec = &out["spec"]["template"]["spec"];
        assert_eq!(
            spec["containers"][0]["ports"],
            json!([{"containerPort": 81}, {"containerPort": 80}])
        );
        assert_eq!(
            spec["tolerations"],
            json!([{"key": "k2", "operator": "Exists"}])
        );
    }

    #[test]
    fn finalizers_and_primitive_lists() {
        let obj = json!({"metadata": {"finalizers": ["a", "b"]}});
        let out = smp(
            obj.clone(),
            json!({"metadata": {"finalizers": ["c", "a"]}}),
            "ConfigMap",
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
        let out = smp(
            obj.clone(),
            json!({"metadata": {"finalizers": ["c"]}}),
            "Pod",
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
        let out = smp(
            obj.clone(),
            json!({"metadata": {"finalizers": ["b"]}}),
            "Pod",
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b"]));
        let out = smp(
            obj.clone(),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
            "Pod",
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
        let out = smp(
            obj.clone(),
            json!({"metadata": {"$setElementOrder/finalizers": ["b", "a"]}}),
            "Pod",
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["b", "a"]));
        let out = smp(obj, json!({"metadata": {"finalizers": null}}), "Pod");
        assert!(out["metadata"].get("finalizers").is_none());
    }

    #[test]
    fn retain_keys_and_map_directives() {
        let d = deployment();
        let out = smp(
            d.clone(),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
            "Deployment",
        );
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        let err = strategic_merge_patch(
            &d,
            &json!({"spec": {"strategy": {"$retainKeys": ["type"], "other": 1}}}),
            "Deployment",
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "invalid patch format of retainKeys");

        let out = smp(
            d.clone(),
            json!({"spec": {"selector": {"$patch": "replace", "matchLabels": {"x": "y"}}}}),
            "Deployment",
        );
        assert_eq!(out["spec"]["selector"], json!({"matchLabels": {"x": "y"}}));
        let out = smp(
            d.clone(),
            json!({"metadata": {"labels": {"$patch": "delete"}}}),
            "Deployment",
        );
        assert_eq!(out["metadata"]["labels"], json!({}));
        let out = smp(
            d.clone(),
            json!({"metadata": {"labels": {"$patch": "merge", "x": "y"}}}),
            "Deployment",
        );
        assert_eq!(out["metadata"]["labels"], json!({"app": "web", "x": "y"}));
        assert!(
            strategic_merge_patch(&d, &json!({"spec": {"$patch": "bogus"}}), "Deployment").is_err()
        );
        // New fields with directives are cleaned too.
        let out = smp(
            json!({}),
            json!({"spec": {"containers": [{"name": "a", "$setElementOrder/env": [{"name": "X"}], "env": [{"name": "X", "value": "1"}, {"name": "Y", "$patch": "delete"}]}]}}),
            "Pod",
        );
        assert_eq!(
            out,
            json!({"spec": {"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}]}]}})
        );
    }

    #[test]
    fn missing_merge_key_is_an_error() {
        let err = strategic_merge_patch(
            &json!({"spec": {"containers": [{"name": "a"}]}}),
            &json!({"spec": {"containers": [{"image": "x"}]}}),
            "Pod",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "map: {\"image\":\"x\"} does not contain declared merge key: name"
        );
        assert!(strategic_merge_patch(&json!({}), &json!([1]), "Pod").is_err());
    }

    #[test]
    fn service_ports_and_node_conditions() {
        let svc = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}});
        let out = smp(
            svc,
            json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}),
            "Service",
        );
        assert_eq!(
            out["spec"]["ports"],
            json!([{"port": 80, "targetPort": 9090}, {"port": 443}])
        );
        let node = json!({"status": {"conditions": [
            {"type": "Ready", "status": "False"},
            {"type": "MemoryPressure", "status": "False"}
        ]}, "spec": {"taints": [{"key": "a", "effect": "NoSchedule"}]}});
        let out = smp(
            node,
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}, "spec": {"taints": []}}),
            "Node",
        );
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "False"}])
        );
        assert_eq!(out["spec"]["taints"], json!([]));
    }

    #[test]
    fn json_merge_and_json_patch() {
        let mut doc = json!({"a": 1, "b": {"c": 2, "d": [1]}});
        merge_patch(&mut doc, &json!({"a": null, "b": {"c": 3, "d": [2]}}));
        assert_eq!(doc, json!({"b": {"c": 3, "d": [2]}}));

        let mut doc = json!({"spec": {"replicas": 1}, "metadata": {"labels": {"a": "b"}}});
        json_patch(
            &mut doc,
            &json!([
                {"op": "test", "path": "/spec/replicas", "value": 1},
                {"op": "replace", "path": "/spec/replicas", "value": 5},
                {"op": "add", "path": "/metadata/labels/x", "value": "y"},
                {"op": "remove", "path": "/metadata/labels/a"}
            ]),
        )
        .unwrap();
        assert_eq!(
            doc,
            json!({"spec": {"replicas": 5}, "metadata": {"labels": {"x": "y"}}})
        );

        let before = doc.clone();
        let err = json_patch(
            &mut doc,
            &json!([
                {"op": "replace", "path": "/spec/replicas", "value": 7},
                {"op": "test", "path": "/spec/replicas", "value": 1}
            ]),
        )
        .unwrap_err();
        assert!(matches!(err, PatchError::JsonPatchFailed(_)));
        assert_eq!(doc, before);
        assert!(matches!(
            json_patch(&mut doc, &json!([{"op": "remove", "path": "/nope"}])),
            Err(PatchError::JsonPatchFailed(_))
        ));
        assert!(matches!(
            json_patch(&mut doc, &json!({"op": "add"})),
            Err(PatchError::MalformedJsonPatch(_))
        ));
        assert!(matches!(
            json_patch(&mut doc, &json!([{"op": "frobnicate", "path": "/a"}])),
            Err(PatchError::MalformedJsonPatch(_))
        ));
    }

    #[test]
    fn meta_lookup() {
        assert_eq!(
            patch_meta("Deployment", "spec.template.spec.containers.env"),
            Some(merge_by("name"))
        );
        assert_eq!(
            patch_meta("Pod", "spec.containers.ports"),
            Some(merge_by("containerPort"))
        );
        assert_eq!(patch_meta("Pod", "spec.tolerations"), None);
        assert_eq!(patch_meta("Endpoints", "subsets"), None);
        assert_eq!(patch_meta("Widget", "metadata.finalizers"), None);
        assert!(
            patch_meta("Deployment", "spec.strategy")
                .unwrap()
                .retain_keys
        );
        assert!(has_patch_meta("Secret") && !has_patch_meta("Widget"));
    }
}
