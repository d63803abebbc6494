//! Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`),
//! turned into the JSON objects the rest of the API server works on.
//!
//! Typed Go clients — kubectl's `create namespace|deployment|configmap|secret`, `run`,
//! `expose` — send their objects this way and do not fall back to JSON. A body is the magic
//! `k8s\0` and a `runtime.Unknown` envelope naming apiVersion and kind around the object's own
//! bytes. The object is decoded with the descriptors of Kubernetes' `generated.proto` files
//! (`proto/kubernetes.binpb`, see `proto/extract-descriptors.py`) and converted the way the
//! Go API server's JSON encoding would print it:
//!
//! - Go value fields are always on the wire; a zero one (`0`, `false`, `""`, a zero time or
//!   int-or-string) means "unset" and is left out, as `omitempty` or the JSON types' defaults
//!   would. The pointer fields for which a zero is a real value are listed in
//!   `ZERO_IS_A_VALUE` and kept;
//! - `Time`, `MicroTime`, `Quantity`, `IntOrString`, `RawExtension` and `FieldsV1` take their
//!   JSON forms; `bytes` become base64; fields that Go inlines into their parent are inlined.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use base64::Engine as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MapKey, ReflectMessage, Value};
use serde_json::{Map, Value as Json};

/// The first bytes of every body in Kubernetes' protobuf encoding.
pub const MAGIC: &[u8] = b"k8s\0";
const DESCRIPTORS: &[u8] = include_bytes!("../proto/kubernetes.binpb");
const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";
const META_PACKAGE: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";
const INT_OR_STRING: &str = "k8s.io.apimachinery.pkg.util.intstr.IntOrString";

/// Pointer fields (`message.field`) whose zero value differs from leaving them unset.
const ZERO_IS_A_VALUE: &[&str] = &[
    "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions.gracePeriodSeconds",
    "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions.orphanDependents",
    "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta.deletionGracePeriodSeconds",
    "k8s.io.api.core.v1.PodSpec.terminationGracePeriodSeconds",
    "k8s.io.api.core.v1.PodSpec.activeDeadlineSeconds",
    "k8s.io.api.core.v1.PodSpec.automountServiceAccountToken",
    "k8s.io.api.core.v1.PodSpec.enableServiceLinks",
    "k8s.io.api.core.v1.PodSpec.priority",
    "k8s.io.api.core.v1.PodSpec.hostUsers",
    "k8s.io.api.core.v1.Probe.terminationGracePeriodSeconds",
    "k8s.io.api.core.v1.SecurityContext.runAsUser",
    "k8s.io.api.core.v1.SecurityContext.runAsGroup",
    "k8s.io.api.core.v1.SecurityContext.allowPrivilegeEscalation",
    "k8s.io.api.core.v1.PodSecurityContext.runAsUser",
    "k8s.io.api.core.v1.PodSecurityContext.runAsGroup",
    "k8s.io.api.core.v1.PodSecurityContext.fsGroup",
    "k8s.io.api.core.v1.Toleration.tolerationSeconds",
    "k8s.io.api.core.v1.ConfigMapVolumeSource.defaultMode",
    "k8s.io.api.core.v1.SecretVolumeSource.defaultMode",
    "k8s.io.api.core.v1.KeyToPath.mode",
    "k8s.io.api.core.v1.ServiceSpec.allocateLoadBalancerNodePorts",
    "k8s.io.api.core.v1.ClientIPConfig.timeoutSeconds",
    "k8s.io.api.core.v1.ReplicationControllerSpec.replicas",
    "k8s.io.api.apps.v1.DeploymentSpec.replicas",
    "k8s.io.api.apps.v1.DeploymentSpec.revisionHistoryLimit",
    "k8s.io.api.apps.v1.ReplicaSetSpec.replicas",
    "k8s.io.api.apps.v1.RollingUpdateDeployment.maxSurge",
    "k8s.io.api.apps.v1.RollingUpdateDeployment.maxUnavailable",
    "k8s.io.api.coordination.v1.LeaseSpec.leaseDurationSeconds",
    "k8s.io.api.coordination.v1.LeaseSpec.leaseTransitions",
];

/// Fields that Go's JSON encoding inlines into their parent (`json:",inline"`).
const INLINE: &[&str] = &[
    "k8s.io.api.core.v1.Volume.volumeSource",
    "k8s.io.api.core.v1.Probe.handler",
    "k8s.io.api.core.v1.PersistentVolumeSpec.persistentVolumeSource",
    "k8s.io.api.core.v1.EphemeralContainer.ephemeralContainerCommon",
];

/// Seconds from 0001-01-01 to 1970-01-01: Go's zero `time.Time` as a Unix time.
const GO_ZERO_TIME: i64 = -62_135_596_800;

static POOL: LazyLock<Result<DescriptorPool, String>> =
    LazyLock::new(|| DescriptorPool::decode(DESCRIPTORS).map_err(|e| e.to_string()));

/// Why a protobuf body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    /// The body does not start with Kubernetes' `k8s\0` magic.
    #[error("the protobuf body does not start with the Kubernetes magic number")]
    NoMagic,
    /// The body names a kind for which there is no protobuf schema here.
    #[error("no protobuf schema for kind {kind:?} in {api_version:?}")]
    UnknownKind {
        /// The envelope's apiVersion.
        api_version: String,
        /// The envelope's kind.
        kind: String,
    },
    /// The envelope or the object's bytes are not valid protobuf for their schema.
    #[error("error decoding protobuf: {0}")]
    Decode(String),
}

/// Decode a request body in Kubernetes' protobuf encoding into the object's JSON form.
pub fn decode(body: &[u8]) -> Result<Json, ProtobufError> {
    let pool = POOL
        .as_ref()
        .map_err(|e| ProtobufError::Decode(e.clone()))?;
    let envelope = body.strip_prefix(MAGIC).ok_or(ProtobufError::NoMagic)?;
    let unknown_desc = pool
        .get_message_by_name(UNKNOWN)
        .ok_or_else(|| ProtobufError::Decode(format!("{UNKNOWN} missing from the schema")))?;
    let unknown = DynamicMessage::decode(unknown_desc, envelope)
        .map_err(|e| ProtobufError::Decode(e.to_string()))?;
    let type_meta = match unknown.get_field_by_name("typeMeta").as_deref() {
        Some(Value::Message(m)) => m.clone(),
        _ => return Err(ProtobufError::Decode("the envelope has no typeMeta".into())),
    };
    let api_version = string_field(&type_meta, "apiVersion");
    let kind = string_field(&type_meta, "kind");
    let raw = match unknown.get_field_by_name("raw").as_deref() {
        Some(Value::Bytes(b)) => b.clone(),
        _ => Default::default(),
    };
    let desc =
        message_for(pool, &api_version, &kind).ok_or_else(|| ProtobufError::UnknownKind {
            api_version: api_version.clone(),
            kind: kind.clone(),
        })?;
    let message =
        DynamicMessage::decode(desc, raw).map_err(|e| ProtobufError::Decode(e.to_string()))?;
    let mut object = Map::new();
    if !api_version.is_empty() {
        object.insert("apiVersion".into(), Json::String(api_version));
    }
    if !kind.is_empty() {
        object.insert("kind".into(), Json::String(kind));
    }
    write_fields(&message, &mut object)?;
    Ok(Json::Object(object))
}

fn string_field(message: &DynamicMessage, name: &str) -> String {
    match message.get_field_by_name(name).as_deref() {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

/// The message for `kind` in the protobuf package of `api_version`'s group, or in
/// `meta/v1` for the options types every group version shares (DeleteOptions …).
fn message_for(
    pool: &DescriptorPool,
    api_version: &str,
    kind: &str,
) -> Option<prost_reflect::MessageDescriptor> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let group_name = match group.split('.').next() {
        Some("") | None => "core",
        Some(name) => name,
    };
    pool.get_message_by_name(&format!("k8s.io.api.{group_name}.{version}.{kind}"))
        .or_else(|| pool.get_message_by_name(&format!("{META_PACKAGE}.{kind}")))
}

/// Write the fields present in `message` into `out`, by their JSON names.
fn write_fields(
    message: &DynamicMessage,
    out: &mut Map<String, Json>,
) -> Result<(), ProtobufError> {
    for (field, value) in message.fields() {
        let full_name = field.full_name();
        if INLINE.contains(&full_name) {
            if let Value::Message(inner) = value {
                write_fields(inner, out)?;
            }
            continue;
        }
        let keep_zero = ZERO_IS_A_VALUE.contains(&full_name);
        if let Some(json) = field_json(value, keep_zero)? {
            out.insert(field.name().to_owned(), json);
        }
    }
    Ok(())
}

/// A field's JSON value, or `None` when it is a zero that means "unset".
fn field_json(value: &Value, keep_zero: bool) -> Result<Option<Json>, ProtobufError> {
    match value {
        Value::List(items) => {
            let items = items.iter().map(to_json).collect::<Result<Vec<_>, _>>()?;
            Ok(Some(Json::Array(items.into_iter().flatten().collect())))
        }
        Value::Map(entries) => {
            let mut sorted = BTreeMap::new();
            for (key, entry) in entries {
                if let Some(json) = to_json(entry)? {
                    sorted.insert(map_key(key), json);
                }
            }
            Ok(Some(Json::Object(sorted.into_iter().collect())))
        }
        _ if !keep_zero && is_zero(value) => Ok(None),
        _ => to_json(value),
    }
}

/// Whether a singular value is its type's zero (a zero time is left out by [`message_json`]).
fn is_zero(value: &Value) -> bool {
    match value {
        Value::Bool(b) => !b,
        Value::I32(n) | Value::EnumNumber(n) => *n == 0,
        Value::I64(n) => *n == 0,
        Value::U32(n) => *n == 0,
        Value::U64(n) => *n == 0,
        Value::F32(n) => *n == 0.0,
        Value::F64(n) => *n == 0.0,
        Value::String(s) => s.is_empty(),
        Value::Bytes(b) => b.is_empty(),
        Value::Message(m) => {
            m.descriptor().full_name() == INT_OR_STRING
                && int_field(m, "type") == 0
                && int_field(m, "intVal") == 0
        }
        Value::List(_) | Value::Map(_) => false,
    }
}

fn map_key(key: &MapKey) -> String {
    match key {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

/// A value's JSON form; `None` for a zero time, which Go prints as `null`.
fn to_json(value: &Value) -> Result<Option<Json>, ProtobufError> {
    Ok(Some(match value {
        Value::Bool(b) => Json::Bool(*b),
        Value::I32(n) | Value::EnumNumber(n) => Json::from(*n),
        Value::I64(n) => Json::from(*n),
        Value::U32(n) => Json::from(*n),
        Value::U64(n) => Json::from(*n),
        Value::F32(n) => Json::from(f64::from(*n)),
        Value::F64(n) => Json::from(*n),
        Value::String(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Value::Message(m) => return message_json(m),
        Value::List(_) | Value::Map(_) => {
            return Err(ProtobufError::Decode("nested repeated field".into()));
        }
    }))
}

fn message_json(message: &DynamicMessage) -> Result<Option<Json>, ProtobufError> {
    let desc = message.descriptor();
    Ok(Some(match desc.full_name() {
        "k8s.io.apimachinery.pkg.apis.meta.v1.Time" => match time(message, false) {
            Some(t) => Json::String(t),
            None => return Ok(None),
        },
        "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime" => match time(message, true) {
            Some(t) => Json::String(t),
            None => return Ok(None),
        },
        "k8s.io.apimachinery.pkg.api.resource.Quantity" => {
            Json::String(string_field(message, "string"))
        }
        INT_OR_STRING => {
            if int_field(message, "type") == 1 {
                Json::String(string_field(message, "strVal"))
            } else {
                Json::from(int_field(message, "intVal"))
            }
        }
        "k8s.io.apimachinery.pkg.runtime.RawExtension"
        | "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1" => {
            // Both hold one bytes field, number 1 (`raw`, `Raw`): JSON text.
            let raw = match message.get_field_by_number(1).as_deref() {
                Some(Value::Bytes(b)) => b.clone(),
                _ => return Ok(None),
            };
            serde_json::from_slice(&raw)
                .map_err(|e| ProtobufError::Decode(format!("{} is not JSON: {e}", desc.name())))?
        }
        _ => {
            let mut object = Map::new();
            write_fields(message, &mut object)?;
            Json::Object(object)
        }
    }))
}

fn int_field(message: &DynamicMessage, name: &str) -> i64 {
    match message.get_field_by_name(name).as_deref() {
        Some(Value::I32(n)) => i64::from(*n),
        Some(Value::I64(n)) => *n,
        _ => 0,
    }
}

fn time_seconds(message: &DynamicMessage) -> i64 {
    match int_field(message, "seconds") {
        GO_ZERO_TIME => 0,
        seconds => seconds,
    }
}

/// RFC 3339 in UTC, with microseconds for MicroTime; `None` for Go's zero time.
fn time(message: &DynamicMessage, micro: bool) -> Option<String> {
    let seconds = time_seconds(message);
    let nanos = int_field(message, "nanos");
    if seconds == 0 && nanos == 0 {
        return None;
    }
    let nanos = i32::try_from(nanos).ok()?;
    let at = jiff::Timestamp::new(seconds, if micro { nanos / 1000 * 1000 } else { 0 }).ok()?;
    Some(if micro {
        at.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
    } else {
        at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    })
}

#[cfg(test)]
mod tests;
