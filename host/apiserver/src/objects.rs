//! Per-kind rules for objects: decoding through the `k8s-openapi` types (which prunes unknown
//! fields and rejects wrong types), defaulting, validation and the fields selectors can use.

use hortator_api::registry::ResourceInfo;
use hortator_api::selector::field_value;
use hortator_api::validation::{self, Cause};
use k8s_openapi::api::{apps, coordination, core};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

/// Decode `object` as the typed `K` and encode it again, so that what is stored has exactly the
/// Kubernetes shape. Returns the paths of fields the type does not know.
fn roundtrip<K: DeserializeOwned + Serialize>(
    object: &Value,
) -> Result<(Value, Vec<String>), String> {
    let typed = K::deserialize(object).map_err(|e| e.to_string())?;
    let out = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    let mut unknown = Vec::new();
    unknown_fields(object, &out, &mut Vec::new(), &mut unknown);
    Ok((out, unknown))
}

/// One step of the path to a field: a key or a list index.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Collect the fields of `input` that `output` (its typed round trip) lost, as dotted paths.
/// The path is a stack of steps, formatted only for the (rare) unknown field.
fn unknown_fields<'a>(
    input: &'a Value,
    output: &Value,
    path: &mut Vec<Step<'a>>,
    found: &mut Vec<String>,
) {
    match (input, output) {
        (Value::Object(i), Value::Object(o)) => {
            for (k, v) in i {
                path.push(Step::Key(k));
                match o.get(k) {
                    Some(ov) => unknown_fields(v, ov, path, found),
                    None if v.is_null() => {}
                    // Free-form maps (labels, data, selectors) keep every key; a missing key here
                    // means the typed struct did not know the field.
                    None => found.push(dotted(path)),
                }
                path.pop();
            }
        }
        (Value::Array(i), Value::Array(o)) => {
            for (n, (iv, ov)) in i.iter().zip(o.iter()).enumerate() {
                path.push(Step::Index(n));
                unknown_fields(iv, ov, path, found);
                path.pop();
            }
        }
        _ => {}
    }
}

/// `spec.containers[0].foo` for a path of steps.
fn dotted(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) if out.is_empty() => out.push_str(k),
            Step::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Step::Index(n) => out.push_str(&format!("[{n}]")),
        }
    }
    out
}

/// Decode and re-encode through the typed kind. Errors are decoding errors (400 BadRequest).
pub fn normalize(kind: &str, object: &Value) -> Result<(Value, Vec<String>), String> {
    match kind {
        "Pod" => roundtrip::<core::v1::Pod>(object),
        "Service" => roundtrip::<core::v1::Service>(object),
        "Endpoints" => roundtrip::<core::v1::Endpoints>(object),
        "ReplicationController" => roundtrip::<core::v1::ReplicationController>(object),
        "Node" => roundtrip::<core::v1::Node>(object),
        "Namespace" => roundtrip::<core::v1::Namespace>(object),
        "Event" => roundtrip::<core::v1::Event>(object),
        "ConfigMap" => roundtrip::<core::v1::ConfigMap>(object),
        "LimitRange" => roundtrip::<core::v1::LimitRange>(object),
        "Secret" => roundtrip::<core::v1::Secret>(object),
        "Deployment" => roundtrip::<apps::v1::Deployment>(object),
        "ReplicaSet" => roundtrip::<apps::v1::ReplicaSet>(object),
        "Lease" => roundtrip::<coordination::v1::Lease>(object),
        other => Err(format!("no storage for kind {other}")),
    }
}

/// Whether the kind's `spec` changes bump `metadata.generation`.
pub fn has_generation(kind: &str) -> bool {
    matches!(
        kind,
        "Pod" | "Service" | "ReplicationController" | "Deployment" | "ReplicaSet"
    )
}

/// Whether writes to the main resource keep the stored status (status is its own subresource).
pub fn has_status_subresource(info: &ResourceInfo) -> bool {
    info.storage().subresource("status").is_some()
}

fn obj<'a>(v: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !v.get(key).is_some_and(Value::is_object) {
        v[key] = json!({});
    }
    match v.get_mut(key) {
        Some(Value::Object(m)) => m,
        _ => unreachable!("just set to an object"),
    }
}

fn default_str(m: &mut Map<String, Value>, key: &str, value: &str) {
    if m.get(key)
        .is_none_or(|v| v.is_null() || v.as_str() == Some(""))
    {
        m.insert(key.to_string(), json!(value));
    }
}

fn default_value(m: &mut Map<String, Value>, key: &str, value: Value) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.to_string(), value);
    }
}

fn default_pod_spec(spec: &mut Value) {
    let Some(spec) = spec.as_object_mut() else {
        return;
    };
    default_str(spec, "restartPolicy", "Always");
    default_str(spec, "dnsPolicy", "ClusterFirst");
    default_str(spec, "schedulerName", "default-scheduler");
    default_value(spec, "terminationGracePeriodSeconds", json!(30));
    default_value(spec, "securityContext", json!({}));
    default_value(spec, "enableServiceLinks", json!(true));
    for list in ["initContainers", "containers"] {
        if let Some(Value::Array(containers)) = spec.get_mut(list) {
            for c in containers.iter_mut().filter_map(Value::as_object_mut) {
                let image = c.get("image").and_then(Value::as_str).unwrap_or("");
                let tag = image.rsplit('/').next().unwrap_or("");
                let policy =
                    if !image.contains('@') && (!tag.contains(':') || tag.ends_with(":latest")) {
                        "Always"
                    } else {
                        "IfNotPresent"
                    };
                default_str(c, "imagePullPolicy", policy);
                default_str(c, "terminationMessagePath", "/dev/termination-log");
                default_str(c, "terminationMessagePolicy", "File");
                default_value(c, "resources", json!({}));
                if let Some(Value::Array(ports)) = c.get_mut("ports") {
                    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                        default_str(p, "protocol", "TCP");
                    }
                }
            }
        }
    }
}

fn default_template(object: &mut Value) {
    let spec = obj(object, "spec");
    let template_labels = spec
        .get("template")
        .and_then(|t| t.pointer("/metadata/labels"))
        .cloned();
    if let Some(template) = spec.get_mut("template")
        && let Some(pod_spec) = template.get_mut("spec")
    {
        default_pod_spec(pod_spec);
    }
    default_value(spec, "replicas", json!(1));
    if let Some(labels) = template_labels {
        default_value(spec, "selector", labels.clone());
        let meta = obj(object, "metadata");
        if meta
            .get("labels")
            .is_none_or(|l| l.as_object().is_none_or(Map::is_empty))
        {
            meta.insert("labels".to_string(), labels);
        }
    }
}

/// Apply the defaults kube-apiserver applies to a new or updated object of `kind`.
pub fn apply_defaults(kind: &str, object: &mut Value) {
    match kind {
        "Pod" => {
            obj(object, "spec");
            default_pod_spec(&mut object["spec"]);
            let qos = qos_class(&object["spec"]);
            let status = obj(object, "status");
            default_str(status, "phase", "Pending");
            default_str(status, "qosClass", qos);
        }
        "Service" => {
            let spec = obj(object, "spec");
            default_str(spec, "type", "ClusterIP");
            default_str(spec, "sessionAffinity", "None");
            default_str(spec, "internalTrafficPolicy", "Cluster");
            if let Some(Value::Array(ports)) = spec.get_mut("ports") {
                for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                    default_str(p, "protocol", "TCP");
                    if p.get("targetPort").is_none_or(Value::is_null)
                        && let Some(port) = p.get("port").cloned()
                    {
                        p.insert("targetPort".into(), port);
                    }
                }
            }
            default_value(obj(object, "status"), "loadBalancer", json!({}));
        }
        "ReplicationController" => {
            default_template(object);
            // The RC selector is a plain map; ReplicaSet and Deployment use matchLabels.
        }
        "ReplicaSet" | "Deployment" => {
            let spec = obj(object, "spec");
            if spec.get("selector").is_none()
                && let Some(labels) = spec
                    .get("template")
                    .and_then(|t| t.pointer("/metadata/labels"))
                    .cloned()
            {
                spec.insert("selector".into(), json!({"matchLabels": labels}));
            }
            default_template(object);
            if kind == "Deployment" {
                let strategy = obj(&mut object["spec"], "strategy");
                default_str(strategy, "type", "RollingUpdate");
                if strategy.get("type") == Some(&json!("RollingUpdate")) {
                    let rolling = obj(&mut object["spec"]["strategy"], "rollingUpdate");
                    default_str(rolling, "maxUnavailable", "25%");
                    default_str(rolling, "maxSurge", "25%");
                }
                let spec = obj(object, "spec");
                default_value(spec, "revisionHistoryLimit", json!(10));
                default_value(spec, "progressDeadlineSeconds", json!(600));
            }
        }
        "Namespace" => {
            default_value(obj(object, "spec"), "finalizers", json!(["kubernetes"]));
            default_str(obj(object, "status"), "phase", "Active");
        }
        "Secret" => {
            if object.get("type").is_none_or(Value::is_null) {
                object["type"] = json!("Opaque");
            }
            // stringData is write-only: it is merged into data, base64-encoded.
            if let Some(Value::Object(strings)) =
                object.as_object_mut().and_then(|m| m.remove("stringData"))
            {
                use base64::Engine;
                let data = obj(object, "data");
                for (k, v) in strings {
                    let text = v.as_str().unwrap_or_default().to_string();
                    data.insert(
                        k,
                        json!(base64::engine::general_purpose::STANDARD.encode(text)),
                    );
                }
            }
        }
        _ => {}
    }
}

/// The pod's QoS class, from its containers' requests and limits.
fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .filter_map(|l| spec.get(*l).and_then(Value::as_array))
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in containers {
        let requests = c.pointer("/resources/requests").and_then(Value::as_object);
        let limits = c.pointer("/resources/limits").and_then(Value::as_object);
        any |= requests.is_some_and(|r| !r.is_empty()) || limits.is_some_and(|l| !l.is_empty());
        let full = ["cpu", "memory"].iter().all(|r| {
            let limit = limits.and_then(|l| l.get(*r));
            let request = requests.and_then(|q| q.get(*r)).or(limit);
            limit.is_some() && request == limit
        });
        guaranteed &= full;
    }
    match (guaranteed, any) {
        (true, _) => "Guaranteed",
        (false, true) => "Burstable",
        (false, false) => "BestEffort",
    }
}

fn validate_typed<K: DeserializeOwned>(object: &Value) -> Result<K, Vec<Cause>> {
    K::deserialize(object).map_err(|e| vec![Cause::invalid("", "", &e.to_string())])
}

/// The shape of a `managedFields` entry, its field set skipped rather than copied.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManagedFieldsShape {
    #[serde(rename = "apiVersion")]
    _api_version: Option<String>,
    #[serde(rename = "fieldsType")]
    _fields_type: Option<String>,
    #[serde(rename = "fieldsV1")]
    _fields_v1: Option<serde::de::IgnoredAny>,
    #[serde(rename = "manager")]
    _manager: Option<String>,
    #[serde(rename = "operation")]
    _operation: Option<String>,
    #[serde(rename = "subresource")]
    _subresource: Option<String>,
    #[serde(rename = "time")]
    _time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
}

/// Decode metadata for validation. `managedFields` (large, written by the server) is checked
/// for its shape only, not copied into the typed metadata.
fn decode_meta(meta: &Value) -> Result<ObjectMeta, serde_json::Error> {
    match meta.as_object() {
        Some(map) if map.contains_key("managedFields") => {
            Option::<Vec<ManagedFieldsShape>>::deserialize(&map["managedFields"])?;
            let rest: Map<String, Value> = map
                .iter()
                .filter(|(key, _)| *key != "managedFields")
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect();
            ObjectMeta::deserialize(Value::Object(rest))
        }
        _ => ObjectMeta::deserialize(meta),
    }
}

fn name_check(info: &ResourceInfo) -> fn(&str) -> Vec<String> {
    match info.storage().kind {
        "Namespace" | "Service" => validation::dns1123_label,
        _ => validation::dns1123_subdomain,
    }
}

/// Validate an object about to be stored. `any_name` relaxes the name rules (v1beta1 API, and
/// updates of objects whose name is already stored).
pub fn validate(info: &ResourceInfo, object: &Value, any_name: bool) -> Vec<Cause> {
    let storage = info.storage();
    let mut causes = Vec::new();
    let decoded = match object.get("metadata") {
        Some(m) => decode_meta(m),
        None => Ok(ObjectMeta::default()),
    };
    let meta = match decoded {
        Ok(m) => m,
        Err(e) => return vec![Cause::invalid("metadata", "", &e.to_string())],
    };
    let check: fn(&str) -> Vec<String> = if any_name {
        legacy_name
    } else {
        name_check(storage)
    };
    causes.extend(validation::validate_object_meta(
        &meta,
        storage.namespaced(),
        check,
    ));
    match storage.kind {
        // The spec alone: the metadata was decoded above.
        "Pod" => match object.get("spec") {
            Some(spec) => match validate_typed::<core::v1::PodSpec>(spec) {
                Ok(spec) => causes.extend(validation::validate_pod_spec(&spec, "spec")),
                Err(c) => causes.extend(c),
            },
            None => causes.push(Cause::required("spec")),
        },
        "ReplicationController" => {
            match validate_typed::<core::v1::ReplicationController>(object) {
                Ok(rc) => {
                    let spec = rc.spec.unwrap_or_default();
                    if spec.replicas.is_some_and(|r| r < 0) {
                        causes.push(Cause::invalid(
                            "spec.replicas",
                            &spec.replicas.unwrap_or_default().to_string(),
                            "must be greater than or equal to 0",
                        ));
                    }
                    let selector = spec.selector.unwrap_or_default();
                    if selector.is_empty() {
                        causes.push(Cause::required("spec.selector"));
                    }
                    match spec.template {
                        Some(t) => {
                            let labels = t.metadata.and_then(|m| m.labels).unwrap_or_default();
                            if !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                                causes.push(Cause::invalid(
                                    "spec.template.metadata.labels",
                                    &format!("{labels:?}"),
                                    "`selector` does not match template `labels`",
                                ));
                            }
                            match t.spec {
                                Some(s) => causes.extend(validation::validate_pod_spec(
                                    &s,
                                    "spec.template.spec",
                                )),
                                None => causes.push(Cause::required("spec.template.spec")),
                            }
                        }
                        None => causes.push(Cause::required("spec.template")),
                    }
                }
                Err(c) => causes.extend(c),
            }
        }
        "ReplicaSet" | "Deployment" => {
            let spec_field = |name: &str| object.get("spec").and_then(|s| s.get(name));
            let selector: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector> =
                spec_field("selector").and_then(|s| Deserialize::deserialize(s).ok());
            let template: Option<core::v1::PodTemplateSpec> =
                spec_field("template").and_then(|s| Deserialize::deserialize(s).ok());
            match selector
                .as_ref()
                .map(hortator_api::selector::LabelSelector::from_label_selector)
            {
                Some(Ok(sel)) if !sel.is_empty() => {
                    let labels = template
                        .as_ref()
                        .and_then(|t| t.metadata.as_ref())
                        .and_then(|m| m.labels.clone())
                        .unwrap_or_default();
                    if !sel.matches(&labels) {
                        causes.push(Cause::invalid(
                            "spec.template.metadata.labels",
                            &format!("{labels:?}"),
                            "`selector` does not match template `labels`",
                        ));
                    }
                }
                Some(Err(e)) => causes.push(Cause::invalid("spec.selector", "", &e.to_string())),
                _ => causes.push(Cause::invalid(
                    "spec.selector",
                    "null",
                    "empty selector is invalid for deployment",
                )),
            }
            match template.and_then(|t| t.spec) {
                Some(s) => causes.extend(validation::validate_pod_spec(&s, "spec.template.spec")),
                None => causes.push(Cause::required("spec.template.spec")),
            }
            if let Some(replicas) = spec_field("replicas")
                .and_then(Value::as_i64)
                .filter(|r| *r < 0)
            {
                causes.push(Cause::invalid(
                    "spec.replicas",
                    &replicas.to_string(),
                    "must be greater than or equal to 0",
                ));
            }
        }
        "Service" => match validate_typed::<core::v1::Service>(object) {
            Ok(svc) => {
                let spec = svc.spec.unwrap_or_default();
                let ports = spec.ports.unwrap_or_default();
                let ty = spec.type_.unwrap_or_else(|| "ClusterIP".into());
                if ports.is_empty()
                    && spec.cluster_ip.as_deref() != Some("None")
                    && ty != "ExternalName"
                {
                    causes.push(Cause::required("spec.ports"));
                }
                if !["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"].contains(&ty.as_str())
                {
                    causes.push(Cause::not_supported(
                        "spec.type",
                        &ty,
                        &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
                    ));
                }
                let mut seen = std::collections::HashSet::new();
                for (i, p) in ports.iter().enumerate() {
                    if !(1..=65535).contains(&p.port) {
                        causes.push(Cause::invalid(
                            format!("spec.ports[{i}].port"),
                            &p.port.to_string(),
                            "must be between 1 and 65535, inclusive",
                        ));
                    }
                    if ports.len() > 1 && p.name.as_deref().unwrap_or("").is_empty() {
                        causes.push(Cause::required(format!("spec.ports[{i}].name")));
                    }
                    let key = (p.port, p.protocol.clone().unwrap_or_else(|| "TCP".into()));
                    if !seen.insert(key) {
                        causes.push(Cause::duplicate(
                            format!("spec.ports[{i}]"),
                            &format!("{}/{}", p.port, p.protocol.clone().unwrap_or_default()),
                        ));
                    }
                    let proto = p.protocol.as_deref().unwrap_or("TCP");
                    if !["TCP", "UDP", "SCTP"].contains(&proto) {
                        causes.push(Cause::not_supported(
                            format!("spec.ports[{i}].protocol"),
                            proto,
                            &["SCTP", "TCP", "UDP"],
                        ));
                    }
                }
                let affinity = spec.session_affinity.as_deref().unwrap_or("None");
                if !["None", "ClientIP"].contains(&affinity) {
                    causes.push(Cause::not_supported(
                        "spec.sessionAffinity",
                        affinity,
                        &["ClientIP", "None"],
                    ));
                }
            }
            Err(c) => causes.extend(c),
        },
        "Namespace" => {}
        "Node" => {
            if let Err(c) = validate_typed::<core::v1::Node>(object) {
                causes.extend(c)
            }
        }
        "Event" => match validate_typed::<core::v1::Event>(object) {
            Ok(ev) => {
                if ev.involved_object.kind.as_deref().unwrap_or("").is_empty() {
                    causes.push(Cause::required("involvedObject.kind"));
                }
            }
            Err(c) => causes.extend(c),
        },
        "ConfigMap" | "Secret" => {
            for field in ["data", "binaryData", "stringData"] {
                if let Some(Value::Object(data)) = object.get(field) {
                    for key in data.keys() {
                        if !config_key_ok(key) {
                            causes.push(Cause::invalid(
                                format!("{field}[{key}]"),
                                key,
                                "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                            ));
                        }
                    }
                }
            }
        }
        _ => {}
    }
    causes
}

fn config_key_ok(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key != "."
        && key != ".."
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
}

/// Names of the 2014 v1beta1 API: anything that is safe in a URL path segment.
fn legacy_name(name: &str) -> Vec<String> {
    if name.is_empty()
        || name.len() > 253
        || name.contains('/')
        || name.contains('%')
        || name == "."
        || name == ".."
    {
        vec!["a legacy name must be 1-253 characters without '/' or '%'".into()]
    } else {
        Vec::new()
    }
}

/// Field paths a field selector may use for this kind, besides `metadata.name` and
/// `metadata.namespace`.
pub fn selectable_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pod" => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        "Event" => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        "Node" => &["spec.unschedulable"],
        "Namespace" => &["status.phase"],
        "Secret" => &["type"],
        "ReplicationController" | "ReplicaSet" => &["status.replicas"],
        _ => &[],
    }
}

/// The value of a selectable field of an object.
pub fn field(object: &Value, path: &str) -> Option<String> {
    match path {
        "source" => object
            .pointer("/source/component")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or(Some(String::new())),
        "spec.hostNetwork" | "spec.unschedulable" => {
            Some(field_value(object, path).unwrap_or_else(|| "false".into()))
        }
        _ => field_value(object, path).or(Some(String::new())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment_strategy(strategy: Value) -> Value {
        let mut object = json!({"spec": {"strategy": strategy}});
        apply_defaults("Deployment", &mut object);
        object["spec"]["strategy"].clone()
    }

    #[test]
    fn managed_fields_are_checked_for_shape() {
        let entry = json!({"manager": "kubectl", "operation": "Apply", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {}}, "time": "2026-11-28T00:00:00Z"});
        let meta = decode_meta(&json!({"name": "a", "managedFields": [entry]})).unwrap();
        assert_eq!(meta.name.as_deref(), Some("a"));
        assert!(meta.managed_fields.is_none());
        for bad in [
            json!("x"),
            json!([{"manager": 1}]),
            json!([{"time": "yesterday"}]),
        ] {
            assert!(decode_meta(&json!({"name": "a", "managedFields": bad})).is_err());
        }
    }

    #[test]
    fn unknown_fields_are_named_by_path() {
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "a", "labels": {"free": "form"}, "bogus": 1},
            "spec": {"containers": [{"name": "c", "image": "i"}, {"name": "d", "image": "i", "colour": "red"}]},
        });
        let (_, unknown) = normalize("Pod", &pod).unwrap();
        assert_eq!(unknown, ["metadata.bogus", "spec.containers[1].colour"]);
    }

    #[test]
    fn deployment_strategy_defaults_as_kube_apiserver() {
        let rolling = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}});
        assert_eq!(deployment_strategy(Value::Null), rolling);
        assert_eq!(deployment_strategy(json!({})), rolling);
        assert_eq!(
            deployment_strategy(json!({"type": "RollingUpdate"})),
            rolling
        );
        assert_eq!(
            deployment_strategy(json!({"rollingUpdate": {"maxSurge": 0}})),
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "25%"}})
        );
        assert_eq!(
            deployment_strategy(json!({"type": "Recreate"})),
            json!({"type": "Recreate"})
        );
    }
}
