//! The resource verbs: get, list, create, update, patch, delete, deletecollection, and the
//! status, scale and binding subresources.

use std::net::Ipv4Addr;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;

use hortator_api::managed::{self, ManagedFields, Writer};
use hortator_api::protobuf::{self, ProtobufError};
use hortator_api::selector::{FieldSelector, LabelSelector};
use hortator_api::validation::Cause;
use hortator_api::{convert, patch, table};
use hortator_store::{KeyValue, RangeRequest, StoreError};
use serde_json::{Value, json};

use hortator_plugin_runtime::Operation;

use crate::admission;
use crate::codec;
use crate::error::ApiError;
use crate::objects;
use crate::request::{Query, Target};
use crate::state::Ctx;

/// How the client wants objects rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Plain objects and lists.
    Json,
    /// meta.k8s.io/v1 Table, with the row objects as asked by `includeObject`.
    Table(Include),
    /// PartialObjectMetadata(List).
    Metadata,
}

/// `includeObject` of Table requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    /// No object in rows.
    None,
    /// PartialObjectMetadata in rows (the default).
    Metadata,
    /// The full object in rows.
    Object,
}

impl Output {
    /// From the Accept header and the `includeObject` parameter.
    pub fn from_request(headers: &HeaderMap, query: &Query) -> Output {
        let accept = headers
            .get(axum::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let first_known = accept.split(',').map(str::trim).find(|part| {
            part.starts_with("application/json") || part.starts_with("*/*") || part.is_empty()
        });
        match first_known {
            Some(p) if p.contains("as=Table") => Output::Table(match query.get("includeObject") {
                Some("None") => Include::None,
                Some("Object") => Include::Object,
                _ => Include::Metadata,
            }),
            Some(p) if p.contains("as=PartialObjectMetadata") => Output::Metadata,
            _ => Output::Json,
        }
    }
}

/// Now, as Kubernetes writes timestamps (RFC 3339, seconds).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn json_response(code: StatusCode, body: Vec<u8>, warnings: &[String]) -> Response {
    let mut resp = (
        code,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('"', "\\\""));
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append("Warning", v);
        }
    }
    resp
}

fn partial_metadata(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object.get("metadata").cloned().unwrap_or(json!({})),
    })
}

/// A Table of `objects` (already decoded, resourceVersion set).
pub fn table_of(kind: &str, objects: &[Value], include: Include, list_meta: Value) -> Value {
    let now = jiff::Timestamp::now();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut row = json!({"cells": table::cells(kind, o, now)});
            match include {
                Include::None => {}
                Include::Metadata => row["object"] = partial_metadata(o),
                Include::Object => row["object"] = o.clone(),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": table::columns(kind),
        "rows": rows,
    })
}

/// The v1beta1 form of a stored object, with its v1 `metadata` alongside so that current clients
/// (which look for `metadata.name`) can name it too.
pub fn legacy(object: &Value) -> Result<Value, ApiError> {
    let mut out = convert::v1_to_v1beta1(object).map_err(ApiError::internal)?;
    if let (Some(m), Some(meta)) = (out.as_object_mut(), object.get("metadata")) {
        m.insert("metadata".into(), meta.clone());
    }
    Ok(out)
}

/// Render one object for the client.
pub fn render_object(target: &Target, object: Value, output: Output) -> Result<Vec<u8>, ApiError> {
    let kind = target.info.storage().kind;
    let value = match output {
        Output::Table(include) => table_of(kind, &[object], include, json!({})),
        Output::Metadata => partial_metadata(&object),
        Output::Json if target.info.legacy => legacy(&object)?,
        Output::Json => object,
    };
    serde_json::to_vec(&value).map_err(ApiError::internal)
}

fn respond(
    target: &Target,
    code: StatusCode,
    object: Value,
    output: Output,
    warnings: &[String],
) -> Result<Response, ApiError> {
    Ok(json_response(
        code,
        render_object(target, object, output)?,
        warnings,
    ))
}

/// Read the current object.
pub fn current(ctx: &Ctx, target: &Target) -> Result<(KeyValue, Value), ApiError> {
    match ctx.store.get(target.key().as_bytes()) {
        Ok(Some(kv)) => {
            let value = codec::decode(&kv).map_err(ApiError::internal)?;
            Ok((kv, value))
        }
        Ok(None) => Err(ApiError::not_found(target.subject())),
        Err(e) => Err(ApiError::from_store(e, target.subject())),
    }
}

fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let value = if content_type.contains("yaml") {
        serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
    } else if content_type.contains("protobuf") {
        protobuf::decode(body).map_err(|e| match e {
            ProtobufError::UnknownKind { .. } => ApiError::with_code(
                415,
                format!("{e}; send the object as application/json or application/yaml"),
            ),
            _ => ApiError::bad_request(e.to_string()),
        })?
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))?
    };
    require_object(value)
}

/// Objects are JSON objects; anything else (array, string, number) is a bad request.
fn require_object(value: Value) -> Result<Value, ApiError> {
    if value.is_object() {
        Ok(value)
    } else {
        Err(ApiError::bad_request(format!(
            "the request body must be a JSON object, not {}",
            match value {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "null",
            }
        )))
    }
}

/// The request body as a v1 object (v1beta1 bodies are converted).
fn decode_request(target: &Target, headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let object = parse_body(headers, body)?;
    if target.info.legacy {
        convert::v1beta1_to_v1(&object).map_err(|e| ApiError::bad_request(e.to_string()))
    } else {
        Ok(object)
    }
}

fn meta_mut(object: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    match object.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        _ => unreachable!("metadata was just set to an object"),
    }
}

fn str_at<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Value::as_str)
}

/// After a mutating admission plugin: the fields of `metadata` that only the
/// server sets are put back; a changed name is refused.
fn keep_identity(before: &Value, mut after: Value, fields: &[&str]) -> Result<Value, ApiError> {
    if str_at(before, "/metadata/name") != str_at(&after, "/metadata/name") {
        return Err(ApiError::internal(
            "an admission plugin tried to change metadata.name",
        ));
    }
    let before_meta = before.get("metadata").cloned().unwrap_or_default();
    let meta = meta_mut(&mut after);
    for field in fields {
        match before_meta.get(*field) {
            Some(v) => meta.insert((*field).into(), v.clone()),
            None => meta.remove(*field),
        };
    }
    Ok(after)
}

/// The longest generateName prefix kept: 63 minus the 5 random characters.
const MAX_GENERATE_NAME_PREFIX: usize = 58;

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(5)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// Check the apiVersion/kind of a request body against the target.
fn check_type(target: &Target, object: &mut Value) -> Result<(), ApiError> {
    let storage = target.info.storage();
    let expected_version = storage.api_version();
    if !target.info.legacy {
        if let Some(v) = object.get("apiVersion").and_then(Value::as_str)
            && v != expected_version
        {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({expected_version})"
            )));
        }
        if let Some(k) = object.get("kind").and_then(Value::as_str)
            && k != storage.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                storage.kind
            )));
        }
    }
    object["apiVersion"] = json!(expected_version);
    object["kind"] = json!(storage.kind);
    Ok(())
}

/// Decode through the typed kind; report unknown fields per `fieldValidation`.
fn normalize(
    target: &Target,
    query: &Query,
    object: &Value,
    warnings: &mut Vec<String>,
) -> Result<Value, ApiError> {
    let kind = target.info.storage().kind;
    let (out, unknown) = objects::normalize(kind, object)
        .map_err(|e| ApiError::bad_request(format!("error decoding {kind}: {e}")))?;
    if !unknown.is_empty() && !target.info.legacy {
        match query.get("fieldValidation").unwrap_or("Warn") {
            "Strict" => {
                let list: Vec<String> = unknown
                    .iter()
                    .map(|f| format!("unknown field \"{f}\""))
                    .collect();
                return Err(ApiError::bad_request(format!(
                    "{kind} in version \"{}\" cannot be handled as a {kind}: strict decoding error: {}",
                    target.info.version,
                    list.join(", ")
                )));
            }
            "Ignore" => {}
            _ => warnings.extend(unknown.iter().map(|f| format!("unknown field \"{f}\""))),
        }
    }
    Ok(out)
}

/// Validate before a write. Names are checked on create only (they are immutable; objects made
/// through the v1beta1 API may carry names that v1 would not accept).
fn validate(target: &Target, object: &Value, creating: bool) -> Result<(), ApiError> {
    let causes = objects::validate(target.info, object, target.info.legacy || !creating);
    if causes.is_empty() {
        Ok(())
    } else {
        let storage = target.info.storage();
        let name = str_at(object, "/metadata/name").unwrap_or("");
        Err(ApiError::invalid(storage.kind, storage.group, name, causes))
    }
}

/// Addresses and ports taken for a service write, given back if the write fails.
#[derive(Default)]
struct Taken {
    ips: Vec<Ipv4Addr>,
    ports: Vec<u16>,
}

impl Taken {
    fn release(&self, ctx: &Ctx) {
        self.ips.iter().for_each(|ip| ctx.ips.release(*ip));
        self.ports.iter().for_each(|p| ctx.ports.release(*p));
    }
}

fn service_ports_in_use(object: &Value) -> Vec<u16> {
    object
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
                .filter_map(|p| u16::try_from(p).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn service_ip(object: &Value) -> Option<Ipv4Addr> {
    str_at(object, "/spec/clusterIP").and_then(|s| s.parse().ok())
}

/// Give a service its ClusterIP and NodePorts; `old` is the stored version on update.
fn allocate_service(ctx: &Ctx, object: &mut Value, old: Option<&Value>) -> Result<Taken, ApiError> {
    let mut taken = Taken::default();
    let name = str_at(object, "/metadata/name").unwrap_or("").to_string();
    let invalid = |field: &str, value: &str, detail: &str| {
        ApiError::invalid(
            "Service",
            "",
            &name,
            vec![Cause::invalid(field, value, detail)],
        )
    };
    let ty = str_at(object, "/spec/type")
        .unwrap_or("ClusterIP")
        .to_string();
    let old_ip = old
        .and_then(|o| str_at(o, "/spec/clusterIP"))
        .map(str::to_string);
    let requested = str_at(object, "/spec/clusterIP").map(str::to_string);
    match (&old_ip, requested.as_deref()) {
        (Some(old_ip), None | Some("")) => object["spec"]["clusterIP"] = json!(old_ip),
        (Some(old_ip), Some(new)) if new != old_ip => {
            return Err(invalid("spec.clusterIP", new, "field is immutable"));
        }
        (Some(_), Some(_)) => {}
        (None, Some("None")) => {}
        (None, Some(ip)) if !ip.is_empty() => {
            let parsed: Ipv4Addr = ip.parse().map_err(|_| {
                invalid(
                    "spec.clusterIP",
                    ip,
                    "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                )
            })?;
            ctx.ips
                .reserve(parsed)
                .map_err(|e| invalid("spec.clusterIP", ip, &e.to_string()))?;
            taken.ips.push(parsed);
        }
        (None, _) if ty != "ExternalName" => {
            let ip = ctx
                .ips
                .allocate()
                .map_err(|e| ApiError::internal(format!("failed to allocate a serviceIP: {e}")))?;
            taken.ips.push(ip);
            object["spec"]["clusterIP"] = json!(ip.to_string());
        }
        (None, _) => {}
    }
    if let Some(ip) = str_at(object, "/spec/clusterIP").map(str::to_string) {
        object["spec"]["clusterIPs"] = json!([ip]);
        if ip != "None" {
            object["spec"]["ipFamilies"] = json!(["IPv4"]);
            object["spec"]["ipFamilyPolicy"] = json!("SingleStack");
        }
    }
    let old_ports = old.map(service_ports_in_use).unwrap_or_default();
    let wants_node_ports = ty == "NodePort" || ty == "LoadBalancer";
    if let Some(Value::Array(ports)) = object.pointer_mut("/spec/ports") {
        for (i, port) in ports.iter_mut().enumerate() {
            let requested = port
                .get("nodePort")
                .and_then(Value::as_u64)
                .filter(|p| *p != 0);
            match requested {
                Some(p) if !wants_node_ports => {
                    taken.release(ctx);
                    return Err(invalid(
                        &format!("spec.ports[{i}].nodePort"),
                        &p.to_string(),
                        "may not be used when `type` is 'ClusterIP'",
                    ));
                }
                Some(p) => {
                    let p = u16::try_from(p).unwrap_or(0);
                    if !old_ports.contains(&p) {
                        if let Err(e) = ctx.ports.reserve(p) {
                            taken.release(ctx);
                            return Err(invalid(
                                &format!("spec.ports[{i}].nodePort"),
                                &p.to_string(),
                                &e.to_string(),
                            ));
                        }
                        taken.ports.push(p);
                    }
                }
                None if wants_node_ports => match ctx.ports.allocate() {
                    Ok(p) => {
                        taken.ports.push(p);
                        port["nodePort"] = json!(p);
                    }
                    Err(e) => {
                        taken.release(ctx);
                        return Err(ApiError::internal(format!(
                            "failed to allocate a nodePort: {e}"
                        )));
                    }
                },
                None => {}
            }
        }
    }
    Ok(taken)
}

/// After a service write or delete: free what the old version held that the new one does not.
fn release_unused(ctx: &Ctx, old: &Value, new: Option<&Value>) {
    let new_ports = new.map(service_ports_in_use).unwrap_or_default();
    for p in service_ports_in_use(old) {
        if !new_ports.contains(&p) {
            ctx.ports.release(p);
        }
    }
    if let Some(ip) = service_ip(old)
        && new.and_then(service_ip) != Some(ip)
    {
        ctx.ips.release(ip);
    }
}

/// GET of one object or subresource.
pub fn get(ctx: &Ctx, target: &Target, output: Output) -> Result<Response, ApiError> {
    let (_, object) = current(ctx, target)?;
    if target.subresource.as_deref() == Some("scale") {
        return Ok(json_response(
            StatusCode::OK,
            serde_json::to_vec(&scale_of(&object)).map_err(ApiError::internal)?,
            &[],
        ));
    }
    respond(target, StatusCode::OK, object, output, &[])
}

/// POST to a collection.
pub async fn create(
    ctx: &Arc<Ctx>,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
    output: Output,
) -> Result<Response, ApiError> {
    let mut object = decode_request(target, headers, body)?;
    check_type(target, &mut object)?;
    let storage = target.info.storage();
    let namespace = if storage.namespaced() {
        let path_ns = target.namespace.clone().unwrap_or_else(|| "default".into());
        match str_at(&object, "/metadata/namespace") {
            Some(ns) if !ns.is_empty() && ns != path_ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => Some(path_ns),
        }
    } else {
        None
    };
    let now = now_rfc3339();
    {
        let meta = meta_mut(&mut object);
        match &namespace {
            Some(ns) => {
                meta.insert("namespace".into(), json!(ns));
            }
            None => {
                meta.remove("namespace");
            }
        }
        let has_name = meta
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        if !has_name
            && let Some(prefix) = meta
                .get("generateName")
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty())
        {
            // As kube-apiserver: the prefix is cut to 58 characters so that the name stays
            // within 63.
            let prefix = prefix.get(..MAX_GENERATE_NAME_PREFIX).unwrap_or(prefix);
            let name = format!("{prefix}{}", random_suffix());
            meta.insert("name".into(), json!(name));
        }
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert("creationTimestamp".into(), json!(now));
        for field in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            meta.remove(field);
        }
        if objects::has_generation(storage.kind) {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
    }
    if storage.kind == "Pod" {
        // Status is the kubelet's; a new pod starts Pending.
        object["status"] = json!({});
    }
    objects::apply_defaults(storage.kind, &mut object);
    let mut warnings = Vec::new();
    let object = normalize(target, query, &object, &mut warnings)?;
    let dry_run = query.dry_run()?;
    let review = admission::Review {
        operation: Operation::Create,
        target,
        old: None,
        dry_run,
    };
    let mut object =
        if let Some(mutated) = admission::mutate(ctx, &review, &object, &mut warnings).await? {
            keep_identity(
                &object,
                mutated,
                &["namespace", "uid", "creationTimestamp", "generation"],
            )
            .and_then(|mut mutated| {
                if storage.kind == "Pod" {
                    // Status is derived again from the mutated spec (qosClass).
                    mutated["status"] = json!({});
                }
                objects::apply_defaults(storage.kind, &mut mutated);
                normalize(target, query, &mutated, &mut warnings)
            })?
        } else {
            object
        };
    if object.pointer("/metadata/managedFields").is_none() {
        record_update(storage.kind, None, &mut object, query, None);
    }
    validate(target, &object, true)?;
    let name = str_at(&object, "/metadata/name").unwrap_or("").to_string();
    let target = Target {
        name: Some(name),
        ..target.clone()
    };
    let review = admission::Review {
        target: &target,
        ..review
    };
    admission::validate(ctx, &review, Some(&object), &mut warnings).await?;
    let taken = if storage.kind == "Service" {
        allocate_service(ctx, &mut object, None)?
    } else {
        Taken::default()
    };
    if dry_run {
        taken.release(ctx);
        return respond(&target, StatusCode::CREATED, object, output, &warnings);
    }
    let key = target.key();
    let stored = codec::encode(&object);
    match ctx.store.create(key.into_bytes(), stored.clone()).await {
        Ok(kv) if matches!(output, Output::Json) && !target.info.legacy => {
            // The stored bytes are the response: no second encoding.
            let mut body = Vec::with_capacity(stored.len() + 32);
            codec::write_with_rv(&mut body, &stored, kv.mod_revision);
            Ok(json_response(StatusCode::CREATED, body, &warnings))
        }
        Ok(kv) => {
            meta_mut(&mut object)
                .insert("resourceVersion".into(), json!(kv.mod_revision.to_string()));
            respond(&target, StatusCode::CREATED, object, output, &warnings)
        }
        Err(e) => {
            taken.release(ctx);
            Err(ApiError::from_store(e, target.subject()))
        }
    }
}

fn spec_changed(old: &Value, new: &Value) -> bool {
    old.get("spec") != new.get("spec")
}

/// Mask the pod spec fields an update may change, so the rest can be compared.
fn pod_spec_mask(spec: Option<&Value>) -> Value {
    let mut spec = spec.cloned().unwrap_or(json!({}));
    for list in ["containers", "initContainers"] {
        if let Some(Value::Array(cs)) = spec.get_mut(list) {
            for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                c.remove("image");
            }
        }
    }
    if let Some(m) = spec.as_object_mut() {
        for f in [
            "activeDeadlineSeconds",
            "tolerations",
            "terminationGracePeriodSeconds",
        ] {
            m.remove(f);
        }
    }
    spec
}

/// Turn a requested new version of an object into what is stored, given the stored `old`.
fn prepare_update(
    ctx: &Ctx,
    target: &Target,
    query: &Query,
    old: &Value,
    mut new: Value,
    warnings: &mut Vec<String>,
) -> Result<(Value, Taken), ApiError> {
    let storage = target.info.storage();
    check_type(target, &mut new)?;
    // A UID in the new version is a precondition: it must name the stored object.
    if let Some(uid) = str_at(&new, "/metadata/uid").filter(|u| !u.is_empty())
        && Some(uid) != str_at(old, "/metadata/uid")
    {
        return Err(ApiError::conflict(
            target.subject(),
            format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                str_at(old, "/metadata/uid").unwrap_or("")
            ),
        ));
    }
    let sub = target.subresource.as_deref();
    if storage.kind == "Namespace" {
        // spec.finalizers changes only through `finalize` (the namespace controller's
        // subresource), and only spec changes there.
        if sub == Some("finalize") {
            let mut merged = old.clone();
            merged["spec"] = new.get("spec").cloned().unwrap_or(json!({}));
            new = merged;
        } else {
            new["spec"] = old.get("spec").cloned().unwrap_or(json!({}));
        }
    }
    if sub == Some("status") {
        // Only the status changes; managed fields the writer set (a server-side apply's) stay.
        let mut merged = old.clone();
        merged["status"] = new.get("status").cloned().unwrap_or(json!({}));
        if let Some(fields) = new.pointer("/metadata/managedFields") {
            meta_mut(&mut merged).insert("managedFields".into(), fields.clone());
        }
        new = merged;
    } else if objects::has_status_subresource(target.info) {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    }
    let old_meta = old.get("metadata").cloned().unwrap_or(json!({}));
    {
        let meta = meta_mut(&mut new);
        for field in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            match old_meta.get(field) {
                Some(v) => {
                    meta.insert(field.into(), v.clone());
                }
                None => {
                    meta.remove(field);
                }
            }
        }
        meta.remove("resourceVersion");
        meta.remove("selfLink");
    }
    if old_meta.get("deletionTimestamp").is_some() {
        let old_f: Vec<&Value> = old_meta
            .get("finalizers")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let new_f = new
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if new_f.iter().any(|f| !old_f.contains(&f)) {
            let name = str_at(old, "/metadata/name").unwrap_or("");
            return Err(ApiError::invalid(
                storage.kind,
                storage.group,
                name,
                vec![Cause {
                    reason: "FieldValueForbidden".into(),
                    message:
                        "Forbidden: no new finalizers can be added if the object is being deleted"
                            .into(),
                    field: "metadata.finalizers".into(),
                }],
            ));
        }
    }
    objects::apply_defaults(storage.kind, &mut new);
    let mut new = normalize(target, query, &new, warnings)?;
    if objects::has_generation(storage.kind) {
        let generation = old_meta
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let generation = if spec_changed(old, &new) {
            generation + 1
        } else {
            generation
        };
        meta_mut(&mut new).insert("generation".into(), json!(generation));
    }
    if !ManagedFields::set_by_writer(old, &new) {
        record_update(storage.kind, Some(old), &mut new, query, sub);
    }
    if storage.kind == "Pod"
        && sub != Some("status")
        && pod_spec_mask(old.get("spec")) != pod_spec_mask(new.get("spec"))
    {
        let name = str_at(old, "/metadata/name").unwrap_or("");
        return Err(ApiError::invalid("Pod", "", name, vec![Cause {
            reason: "FieldValueForbidden".into(),
            message: "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)".into(),
            field: "spec".into(),
        }]));
    }
    validate(target, &new, false)?;
    let taken = if storage.kind == "Service" {
        allocate_service(ctx, &mut new, Some(old))?
    } else {
        Taken::default()
    };
    Ok((new, taken))
}

/// Store `new` over the version `old_kv`, finishing a deletion when the last finalizer left.
async fn write_update(
    ctx: &Ctx,
    target: &Target,
    old_kv: &KeyValue,
    old: &Value,
    mut new: Value,
    taken: Taken,
) -> Result<Value, StoreError> {
    let storage = target.info.storage();
    let deleting = new.pointer("/metadata/deletionTimestamp").is_some();
    let no_finalizers = new
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    let spec_finalizers = new
        .pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let result = if deleting && no_finalizers && !spec_finalizers && !is_graceful_pod(&new) {
        ctx.store
            .delete(target.key().into_bytes(), Some(old_kv.mod_revision))
            .await
            .map(|kv| {
                if storage.kind == "Service" {
                    release_unused(ctx, old, None);
                }
                kv.mod_revision
            })
    } else {
        ctx.store
            .update(
                target.key().into_bytes(),
                codec::encode(&new),
                old_kv.mod_revision,
            )
            .await
            .map(|kv| {
                if storage.kind == "Service" {
                    release_unused(ctx, old, Some(&new));
                }
                kv.mod_revision
            })
    };
    match result {
        Ok(rv) => {
            meta_mut(&mut new).insert("resourceVersion".into(), json!(rv.to_string()));
            Ok(new)
        }
        Err(e) => {
            taken.release(ctx);
            Err(e)
        }
    }
}

/// A pod that is being deleted gracefully waits for its kubelet.
fn is_graceful_pod(object: &Value) -> bool {
    object.get("kind").and_then(Value::as_str) == Some("Pod")
        && object
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            > 0
}

/// PUT of an object or its status/scale.
pub async fn update(
    ctx: &Arc<Ctx>,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
    output: Output,
) -> Result<Response, ApiError> {
    let new = decode_request(target, headers, body)?;
    if target.subresource.as_deref() == Some("scale") {
        return write_scale(ctx, target, query, |_| Ok(new.clone()), None).await;
    }
    let url_name = target.name.as_deref().unwrap_or("");
    if let Some(name) = str_at(&new, "/metadata/name")
        && name != url_name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({name}) does not match the name on the URL ({url_name})"
        )));
    }
    let precondition: Option<i64> = match str_at(&new, "/metadata/resourceVersion") {
        Some(rv) if !rv.is_empty() => Some(
            rv.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        ),
        _ => None,
    };
    guaranteed_update(
        ctx,
        target,
        query,
        output,
        precondition,
        |_| Ok(new.clone()),
    )
    .await
}

/// Read-modify-write with retries on conflicting writes; `precondition` pins the version.
async fn guaranteed_update(
    ctx: &Arc<Ctx>,
    target: &Target,
    query: &Query,
    output: Output,
    precondition: Option<i64>,
    mutate: impl Fn(&Value) -> Result<Value, ApiError>,
) -> Result<Response, ApiError> {
    for _ in 0..16 {
        let (kv, old) = current(ctx, target)?;
        if let Some(rv) = precondition
            && rv != kv.mod_revision
        {
            return Err(ApiError::from_store(
                StoreError::Conflict {
                    expected: rv,
                    current: kv,
                },
                target.subject(),
            ));
        }
        let new = require_object(mutate(&old)?)?;
        let mut warnings = Vec::new();
        let (new, taken) = prepare_update(ctx, target, query, &old, new, &mut warnings)?;
        let review = admission::Review {
            operation: Operation::Update,
            target,
            old: Some(&old),
            dry_run: query.dry_run()?,
        };
        let (new, taken) = match admission::mutate(ctx, &review, &new, &mut warnings).await {
            Ok(Some(mutated)) => {
                taken.release(ctx);
                prepare_update(ctx, target, query, &old, mutated, &mut warnings)?
            }
            Ok(None) => (new, taken),
            Err(e) => {
                taken.release(ctx);
                return Err(e);
            }
        };
        if let Err(e) = admission::validate(ctx, &review, Some(&new), &mut warnings).await {
            taken.release(ctx);
            return Err(e);
        }
        if review.dry_run {
            taken.release(ctx);
            return respond(target, StatusCode::OK, new, output, &warnings);
        }
        if new.get("spec") == old.get("spec")
            && new.get("status") == old.get("status")
            && strip_rv(&new) == strip_rv(&old)
        {
            taken.release(ctx);
            return respond(target, StatusCode::OK, old, output, &warnings);
        }
        match write_update(ctx, target, &kv, &old, new, taken).await {
            Ok(stored) => return respond(target, StatusCode::OK, stored, output, &warnings),
            Err(StoreError::Conflict { .. }) if precondition.is_none() => continue,
            Err(e) => return Err(ApiError::from_store(e, target.subject())),
        }
    }
    Err(ApiError::conflict(
        target.subject(),
        "too many concurrent writes; please try again",
    ))
}

fn strip_rv(object: &Value) -> Value {
    let mut o = object.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    o
}

/// The kind of patch a PATCH request carries.
fn patch_type(headers: &HeaderMap) -> Result<&'static str, ApiError> {
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let base = ct.split(';').next().unwrap_or("").trim();
    match base {
        "application/json-patch+json" => Ok("json"),
        "application/merge-patch+json" => Ok("merge"),
        "application/strategic-merge-patch+json" => Ok("strategic"),
        "application/apply-patch+yaml" | "application/apply-patch+json" => Ok("apply"),
        other => Err(ApiError::unsupported_media_type(
            other,
            &[
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/strategic-merge-patch+json",
                "application/apply-patch+yaml",
            ],
        )),
    }
}

fn apply_patch(kind: &str, ty: &str, target: &Value, patch_doc: &Value) -> Result<Value, ApiError> {
    let mut out = target.clone();
    match ty {
        "json" => patch::json_patch(&mut out, patch_doc).map_err(|e| {
            ApiError::invalid(kind, "", "", vec![Cause::invalid("", "", &e.to_string())])
        })?,
        "merge" => patch::merge_patch(&mut out, patch_doc),
        _ => {
            out = patch::strategic_merge_patch(target, patch_doc, kind)
                .map_err(|e| ApiError::bad_request(e.to_string()))?
        }
    }
    Ok(out)
}

/// PATCH of an object, its status or its scale; server-side apply creates when absent.
pub async fn patch(
    ctx: &Arc<Ctx>,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
    output: Output,
) -> Result<Response, ApiError> {
    let ty = patch_type(headers)?;
    let doc: Value = if ty == "apply" {
        require_object(
            serde_yaml::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?,
        )?
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?
    };
    let kind = target.info.storage().kind;
    let applier = if ty == "apply" {
        let manager = query.get("fieldManager").ok_or_else(|| {
            ApiError::bad_request(
                "PATCH requests with the apply content type must specify a fieldManager",
            )
        })?;
        Some((manager, query.flag("force")))
    } else {
        None
    };
    if target.subresource.as_deref() == Some("scale") {
        let scale_applied = applier.map(|(manager, force)| ScaleApply {
            manager,
            force,
            replicas: doc.pointer("/spec/replicas").cloned(),
        });
        return write_scale(
            ctx,
            target,
            query,
            |scale| apply_patch("Scale", ty, scale, &doc),
            scale_applied,
        )
        .await;
    }
    if let Some((manager, force)) = applier {
        // An apply creates a missing object, but not through a subresource.
        if let (None, Err(ApiError { code: 404, .. })) =
            (target.subresource.as_deref(), current(ctx, target))
        {
            let mut object = doc.clone();
            apply_fields(target, &json!({}), &doc, &mut object, manager, force)?;
            let body = serde_json::to_vec(&object).map_err(ApiError::internal)?;
            let mut json_headers = HeaderMap::new();
            json_headers.insert(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            let collection = Target {
                name: None,
                subresource: None,
                ..target.clone()
            };
            return create(ctx, &collection, query, &json_headers, &body, output).await;
        }
        return guaranteed_update(ctx, target, query, output, None, |old| {
            let mut new = apply_patch(kind, "strategic", old, &doc)?;
            keeps_uid(target, old, &new)?;
            apply_fields(target, old, &doc, &mut new, manager, force)?;
            Ok(new)
        })
        .await;
    }
    let precondition = match doc
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
    {
        Some(rv) => Some(
            rv.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        ),
        None => None,
    };
    guaranteed_update(ctx, target, query, output, precondition, |old| {
        let mut new = apply_patch(kind, ty, old, &doc)?;
        keeps_uid(target, old, &new)?;
        // The patch cannot move the object, and any resourceVersion in it was a precondition.
        if let Some(m) = new.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        Ok(new)
    })
    .await
}

/// A patch cannot change the UID: as kube-apiserver, that is an invalid update of an immutable
/// field (a PUT's UID is a precondition instead, see `prepare_update`).
fn keeps_uid(target: &Target, old: &Value, new: &Value) -> Result<(), ApiError> {
    let uid = str_at(new, "/metadata/uid").unwrap_or("");
    // A patch that made something other than an object is refused as such later.
    if !new.is_object() || uid == str_at(old, "/metadata/uid").unwrap_or("") {
        return Ok(());
    }
    let storage = target.info.storage();
    Err(ApiError::invalid(
        storage.kind,
        storage.group,
        str_at(old, "/metadata/name").unwrap_or(""),
        vec![Cause::invalid("metadata.uid", uid, "field is immutable")],
    ))
}

/// Give the writer of a create (`old` is `None`), update or patch the fields it changed,
/// through `subresource` if one was written.
fn record_update(
    kind: &str,
    old: Option<&Value>,
    new: &mut Value,
    query: &Query,
    subresource: Option<&str>,
) {
    let api_version = str_at(new, "/apiVersion").unwrap_or_default().to_owned();
    let time = now_rfc3339();
    let writer = Writer {
        manager: &query.field_manager(),
        operation: managed::Operation::Update,
        api_version: &api_version,
        time: &time,
        subresource,
    };
    managed::record_write(kind, old, new, &writer);
}

/// Server-side apply's field management: `merged` is `old` with the applied `config` merged
/// in; conflicts with other managers are a 409 unless `force`.
fn apply_fields(
    target: &Target,
    old: &Value,
    config: &Value,
    merged: &mut Value,
    manager: &str,
    force: bool,
) -> Result<(), ApiError> {
    let kind = target.info.storage().kind;
    let api_version = str_at(config, "/apiVersion").unwrap_or_default().to_owned();
    let time = now_rfc3339();
    let mut managed = ManagedFields::of(old);
    let writer = Writer {
        manager,
        operation: managed::Operation::Apply,
        api_version: &api_version,
        time: &time,
        subresource: target.subresource.as_deref(),
    };
    managed
        .apply(kind, old, config, merged, &writer, force)
        .map_err(|conflicts| ApiError::apply_conflict(target.subject(), &conflicts))?;
    managed.write(merged);
    Ok(())
}

fn scale_of(object: &Value) -> Value {
    let selector = match object.pointer("/spec/selector") {
        Some(Value::Object(m))
            if m.contains_key("matchLabels") || m.contains_key("matchExpressions") =>
        {
            serde_json::from_value::<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>(
                Value::Object(m.clone()),
            )
            .ok()
            .and_then(|s| LabelSelector::from_label_selector(&s).ok())
            .map(|s| s.to_string())
            .unwrap_or_default()
        }
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    };
    let meta = object.get("metadata").cloned().unwrap_or(json!({}));
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
            "creationTimestamp": meta.get("creationTimestamp"),
        },
        "spec": {"replicas": object.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": object.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

/// A server-side apply through `scale`: its manager owns the parent's `.spec.replicas`, as
/// kube-apiserver maps a Scale's fields onto the object it scales.
struct ScaleApply<'a> {
    manager: &'a str,
    force: bool,
    /// `.spec.replicas` of the applied Scale, if it sets it.
    replicas: Option<Value>,
}

/// Write `target`'s scale: `mutate` makes the new Scale from the current one.
async fn write_scale(
    ctx: &Arc<Ctx>,
    target: &Target,
    query: &Query,
    mutate: impl Fn(&Value) -> Result<Value, ApiError>,
    applied: Option<ScaleApply<'_>>,
) -> Result<Response, ApiError> {
    let parent = Target {
        subresource: None,
        ..target.clone()
    };
    for _ in 0..16 {
        let (kv, old) = current(ctx, &parent)?;
        let scale = mutate(&scale_of(&old))?;
        if let Some(rv) = scale
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            && rv != kv.mod_revision.to_string()
        {
            return Err(ApiError::conflict(
                parent.subject(),
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        let replicas = match scale.pointer("/spec/replicas") {
            Some(v) => v.as_i64().filter(|r| *r >= 0).ok_or_else(|| {
                ApiError::invalid(
                    "Scale",
                    "autoscaling",
                    parent.name.as_deref().unwrap_or(""),
                    vec![Cause::invalid(
                        "spec.replicas",
                        &v.to_string(),
                        "must be greater than or equal to 0",
                    )],
                )
            })?,
            None => 0,
        };
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(replicas);
        if let Some(apply) = &applied {
            // The applied configuration, in the parent's terms.
            let mut config = json!({
                "apiVersion": old.get("apiVersion"),
                "kind": old.get("kind"),
                "metadata": {"name": parent.name},
            });
            if let Some(replicas) = &apply.replicas {
                config["spec"] = json!({ "replicas": replicas });
            }
            apply_fields(target, &old, &config, &mut new, apply.manager, apply.force)?;
        }
        let mut warnings = Vec::new();
        // Prepared as a write through `scale`, so that its manager's entry says so.
        let (new, taken) = prepare_update(ctx, target, query, &old, new, &mut warnings)?;
        if query.dry_run()? {
            return Ok(json_response(
                StatusCode::OK,
                serde_json::to_vec(&scale_of(&new)).map_err(ApiError::internal)?,
                &warnings,
            ));
        }
        match write_update(ctx, &parent, &kv, &old, new, taken).await {
            Ok(stored) => {
                return Ok(json_response(
                    StatusCode::OK,
                    serde_json::to_vec(&scale_of(&stored)).map_err(ApiError::internal)?,
                    &warnings,
                ));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(ApiError::from_store(e, parent.subject())),
        }
    }
    Err(ApiError::conflict(
        parent.subject(),
        "too many concurrent writes; please try again",
    ))
}

/// POST pods/<name>/binding: assign a pod to a node, once.
pub async fn bind(
    ctx: &Arc<Ctx>,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let binding = parse_body(headers, body)?;
    let node = str_at(&binding, "/target/name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::invalid(
                "Binding",
                "",
                target.name.as_deref().unwrap_or(""),
                vec![Cause::required("target.name")],
            )
        })?
        .to_string();
    let pod_target = Target {
        subresource: None,
        ..target.clone()
    };
    for _ in 0..16 {
        let (kv, old) = current(ctx, &pod_target)?;
        if let Some(existing) = str_at(&old, "/spec/nodeName").filter(|n| !n.is_empty()) {
            return Err(ApiError::conflict(
                pod_target.subject(),
                format!(
                    "pod {} is already assigned to node \"{existing}\"",
                    pod_target.name.as_deref().unwrap_or("")
                ),
            ));
        }
        if old.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(ApiError::conflict(
                pod_target.subject(),
                "pod is being deleted, cannot be assigned to a host",
            ));
        }
        if let Some(uid) = str_at(&binding, "/metadata/uid")
            && Some(uid) != str_at(&old, "/metadata/uid")
        {
            return Err(ApiError::conflict(
                pod_target.subject(),
                "Precondition failed: UID in precondition does not match the UID of the object",
            ));
        }
        let mut new = old.clone();
        new["spec"]["nodeName"] = json!(node);
        let mut conditions: Vec<Value> = new
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        conditions.retain(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled"));
        conditions.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now_rfc3339()}));
        new["status"]["conditions"] = json!(conditions);
        if query.dry_run()? {
            break;
        }
        match ctx
            .store
            .update(
                pod_target.key().into_bytes(),
                codec::encode(&new),
                kv.mod_revision,
            )
            .await
        {
            Ok(_) => break,
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(ApiError::from_store(e, pod_target.subject())),
        }
    }
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
    Ok(json_response(
        StatusCode::CREATED,
        status.to_string().into_bytes(),
        &[],
    ))
}

/// Options of a DELETE, from the query and the DeleteOptions body.
struct DeleteOptions {
    grace: Option<i64>,
    propagation: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    dry_run: bool,
}

fn delete_options(query: &Query, body: &[u8]) -> Result<DeleteOptions, ApiError> {
    let body: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else if body.starts_with(protobuf::MAGIC) {
        protobuf::decode(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?
    };
    let mut propagation = body
        .get("propagationPolicy")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| query.get("propagationPolicy").map(str::to_string));
    if propagation.is_none()
        && (body.get("orphanDependents") == Some(&json!(true)) || query.flag("orphanDependents"))
    {
        propagation = Some("Orphan".into());
    }
    if let Some(p) = &propagation
        && !["Orphan", "Background", "Foreground"].contains(&p.as_str())
    {
        return Err(ApiError::invalid(
            "DeleteOptions",
            "",
            "",
            vec![Cause::not_supported(
                "propagationPolicy",
                p,
                &["Foreground", "Background", "Orphan"],
            )],
        ));
    }
    let dry_run = query.dry_run()?
        || body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    Ok(DeleteOptions {
        grace: body
            .get("gracePeriodSeconds")
            .and_then(Value::as_i64)
            .or(query.int("gracePeriodSeconds")?),
        propagation,
        uid: str_at(&body, "/preconditions/uid").map(str::to_string),
        resource_version: str_at(&body, "/preconditions/resourceVersion").map(str::to_string),
        dry_run,
    })
}

/// DELETE of one object.
pub async fn delete(
    ctx: &Arc<Ctx>,
    target: &Target,
    query: &Query,
    body: &[u8],
    output: Output,
) -> Result<Response, ApiError> {
    let options = delete_options(query, body)?;
    let (object, gone) = delete_one(ctx, target, &options).await?;
    // 200 when the object is gone; 202 while finalizers or a grace period hold it.
    let code = if gone {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    respond(target, code, object, output, &[])
}

async fn delete_one(
    ctx: &Arc<Ctx>,
    target: &Target,
    options: &DeleteOptions,
) -> Result<(Value, bool), ApiError> {
    let kind = target.info.storage().kind;
    for _ in 0..16 {
        let (kv, old) = current(ctx, target)?;
        if let Some(uid) = &options.uid
            && Some(uid.as_str()) != str_at(&old, "/metadata/uid")
        {
            return Err(ApiError::conflict(
                target.subject(),
                format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    str_at(&old, "/metadata/uid").unwrap_or("")
                ),
            ));
        }
        if let Some(rv) = &options.resource_version
            && *rv != kv.mod_revision.to_string()
        {
            return Err(ApiError::conflict(
                target.subject(),
                format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    kv.mod_revision
                ),
            ));
        }
        let review = admission::Review {
            operation: Operation::Delete,
            target,
            old: Some(&old),
            dry_run: options.dry_run,
        };
        admission::review_delete(ctx, &review, &mut Vec::new()).await?;
        let mut new = old.clone();
        let mut finalizers: Vec<Value> = old
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        match options.propagation.as_deref() {
            Some("Orphan") if !finalizers.contains(&json!("orphan")) => {
                finalizers.push(json!("orphan"))
            }
            Some("Foreground") if !finalizers.contains(&json!("foregroundDeletion")) => {
                finalizers.push(json!("foregroundDeletion"))
            }
            _ => {}
        }
        let mut grace = 0;
        if kind == "Pod" {
            let assigned = str_at(&old, "/spec/nodeName").is_some_and(|n| !n.is_empty());
            let terminal = matches!(str_at(&old, "/status/phase"), Some("Succeeded" | "Failed"));
            let default = old
                .pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(30);
            grace = options.grace.unwrap_or(default).max(0);
            if !assigned || terminal {
                grace = 0;
            }
            if let Some(current) = old
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
            {
                grace = grace.min(current);
            }
        }
        let spec_finalizers = kind == "Namespace"
            && old
                .pointer("/spec/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty());
        if finalizers.is_empty() && grace == 0 && !spec_finalizers {
            if options.dry_run {
                return Ok((old, true));
            }
            return match ctx
                .store
                .delete(target.key().into_bytes(), Some(kv.mod_revision))
                .await
            {
                Ok(deleted) => {
                    if kind == "Service" {
                        release_unused(ctx, &old, None);
                    }
                    let mut gone = old;
                    meta_mut(&mut gone).insert(
                        "resourceVersion".into(),
                        json!(deleted.mod_revision.to_string()),
                    );
                    Ok((gone, true))
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => Err(ApiError::from_store(e, target.subject())),
            };
        }
        {
            let meta = meta_mut(&mut new);
            if !meta.contains_key("deletionTimestamp") || kind == "Pod" {
                let at = jiff::Timestamp::now()
                    .checked_add(jiff::SignedDuration::from_secs(grace))
                    .unwrap_or_else(|_| jiff::Timestamp::now());
                meta.insert(
                    "deletionTimestamp".into(),
                    json!(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
                );
            }
            meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
            if !finalizers.is_empty() {
                meta.insert("finalizers".into(), json!(finalizers));
            }
        }
        if kind == "Namespace" {
            new["status"]["phase"] = json!("Terminating");
        }
        if options.dry_run {
            return Ok((new, false));
        }
        match ctx
            .store
            .update(
                target.key().into_bytes(),
                codec::encode(&new),
                kv.mod_revision,
            )
            .await
        {
            Ok(kv) => {
                meta_mut(&mut new)
                    .insert("resourceVersion".into(), json!(kv.mod_revision.to_string()));
                return Ok((new, false));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(ApiError::from_store(e, target.subject())),
        }
    }
    Err(ApiError::conflict(
        target.subject(),
        "too many concurrent writes; please try again",
    ))
}

/// Parsed selectors of a list or watch.
pub struct Selectors {
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
}

impl Selectors {
    /// Parse and check the selectors of a request.
    pub fn parse(target: &Target, query: &Query) -> Result<Self, ApiError> {
        let labels = LabelSelector::parse(query.get("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let fields = FieldSelector::parse(query.get("fieldSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("invalid field selector: {e}")))?;
        let kind = target.info.storage().kind;
        for req in fields.requirements() {
            let known = req.field == "metadata.name"
                || req.field == "metadata.namespace"
                || objects::selectable_fields(kind).contains(&req.field.as_str());
            if !known {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {}",
                    req.field
                )));
            }
        }
        Ok(Selectors { labels, fields })
    }

    /// Whether no selector was given.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.requirements().is_empty()
    }

    /// Whether an object is selected.
    pub fn matches(&self, object: &Value) -> bool {
        self.labels.matches_json(
            object
                .pointer("/metadata/labels")
                .and_then(Value::as_object),
        ) && self.fields.matches(|path| objects::field(object, path))
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Continue {
    rv: i64,
    start: String,
}

/// GET of a collection.
pub fn list(
    ctx: &Ctx,
    target: &Target,
    query: &Query,
    output: Output,
) -> Result<Response, ApiError> {
    let selectors = Selectors::parse(target, query)?;
    let limit = query.int("limit")?.filter(|l| *l > 0).map(|l| l as usize);
    let mut prefix = target.collection_prefix();
    let mut start_after = None;
    let mut revision = None;
    if let Some(token) = query.get("continue") {
        let bad = || {
            ApiError::bad_request(
                "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
            )
        };
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| bad())?;
        let c: Continue = serde_json::from_slice(&raw).map_err(|_| bad())?;
        if !c.start.starts_with(&prefix) {
            return Err(bad());
        }
        start_after = Some(c.start.into_bytes());
        revision = Some(c.rv);
    } else if let Some(rv) = query.get("resourceVersion").filter(|rv| *rv != "0") {
        let rv: i64 = rv
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv:?}")))?;
        match query.get("resourceVersionMatch") {
            Some("Exact") => revision = Some(rv),
            _ => {
                let current = ctx.store.current_revision();
                if rv > current {
                    return Err(ApiError::timeout(format!(
                        "Too large resource version: {rv}, current: {current}"
                    )));
                }
            }
        }
    }
    // A name field selector narrows the range to one key.
    if let (Some(name), true) = (
        selectors.fields.value_for("metadata.name"),
        target.namespace.is_some() || !target.info.namespaced(),
    ) {
        prefix = target.info.key(target.namespace.as_deref(), name);
    }
    let mut items: Vec<(Vec<u8>, KeyValue)> = Vec::new();
    let mut read_at;
    let mut more;
    loop {
        let want = limit.map(|l| l - items.len()).unwrap_or(0);
        let page = ctx
            .store
            .range(RangeRequest {
                prefix: prefix.clone().into_bytes(),
                start_after: start_after.clone(),
                limit: if selectors.is_empty() { want } else { want.max(256) },
                revision,
            })
            .map_err(|e| match e {
                StoreError::Compacted { .. } if query.get("continue").is_some() => ApiError::expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                ),
                e => ApiError::from_store(e, target.subject()),
            })?;
        read_at = page.revision;
        revision = Some(page.revision);
        more = page.more;
        let mut last_key = None;
        for kv in page.kvs {
            last_key = Some(kv.key.clone());
            if prefix.ends_with('/') || kv.key == prefix.as_bytes() {
                if !selectors.is_empty() {
                    let object = codec::decode(&kv).map_err(ApiError::internal)?;
                    if !selectors.matches(&object) {
                        continue;
                    }
                }
                if limit.is_some_and(|l| items.len() >= l) {
                    more = true;
                    break;
                }
                items.push((kv.key.clone(), kv));
            }
        }
        if !more || limit.is_some_and(|l| items.len() >= l) {
            if limit.is_some_and(|l| items.len() >= l)
                && items.last().map(|i| &i.0) != last_key.as_ref()
            {
                more = true;
            }
            break;
        }
        start_after = last_key;
    }
    let continue_token = if more {
        items.last().map(|(key, _)| {
            let c = Continue {
                rv: read_at,
                start: String::from_utf8_lossy(key).into_owned(),
            };
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(serde_json::to_vec(&c).unwrap_or_default())
        })
    } else {
        None
    };
    let mut list_meta = json!({"resourceVersion": read_at.to_string()});
    if let Some(token) = &continue_token {
        list_meta["continue"] = json!(token);
    }
    let storage = target.info.storage();
    match output {
        Output::Table(include) => {
            let objects: Vec<Value> = items
                .iter()
                .map(|(_, kv)| codec::decode(kv))
                .collect::<Result<_, _>>()
                .map_err(ApiError::internal)?;
            let body = serde_json::to_vec(&table_of(storage.kind, &objects, include, list_meta))
                .map_err(ApiError::internal)?;
            Ok(json_response(StatusCode::OK, body, &[]))
        }
        Output::Metadata => {
            let objects: Vec<Value> = items
                .iter()
                .map(|(_, kv)| codec::decode(kv).map(|o| partial_metadata(&o)))
                .collect::<Result<_, _>>()
                .map_err(ApiError::internal)?;
            let body = json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "items": objects});
            Ok(json_response(
                StatusCode::OK,
                body.to_string().into_bytes(),
                &[],
            ))
        }
        Output::Json if target.info.legacy => {
            let objects: Vec<Value> = items
                .iter()
                .map(|(_, kv)| {
                    codec::decode(kv)
                        .map_err(ApiError::internal)
                        .and_then(|o| legacy(&o))
                })
                .collect::<Result<_, _>>()?;
            let body = json!({"kind": format!("{}List", target.info.kind), "apiVersion": "v1beta1", "metadata": list_meta, "items": objects});
            Ok(json_response(
                StatusCode::OK,
                body.to_string().into_bytes(),
                &[],
            ))
        }
        Output::Json => {
            let total: usize = items.iter().map(|(_, kv)| kv.value.len() + 32).sum();
            let mut body = Vec::with_capacity(total + 256);
            body.extend_from_slice(b"{\"kind\":\"");
            body.extend_from_slice(storage.kind.as_bytes());
            body.extend_from_slice(b"List\",\"apiVersion\":\"");
            body.extend_from_slice(storage.api_version().as_bytes());
            body.extend_from_slice(b"\",\"metadata\":");
            body.extend_from_slice(list_meta.to_string().as_bytes());
            body.extend_from_slice(b",\"items\":[");
            for (i, (_, kv)) in items.iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                codec::write_with_rv(&mut body, &kv.value, kv.mod_revision);
            }
            body.extend_from_slice(b"]}");
            Ok(json_response(StatusCode::OK, body, &[]))
        }
    }
}

/// DELETE of a collection.
pub async fn delete_collection(
    ctx: &Arc<Ctx>,
    target: &Target,
    query: &Query,
    body: &[u8],
) -> Result<Response, ApiError> {
    let options = delete_options(query, body)?;
    let selectors = Selectors::parse(target, query)?;
    let page = ctx
        .store
        .range(RangeRequest {
            prefix: target.collection_prefix().into_bytes(),
            ..Default::default()
        })
        .map_err(|e| ApiError::from_store(e, target.subject()))?;
    let mut deleted = Vec::new();
    for kv in page.kvs {
        let object = codec::decode(&kv).map_err(ApiError::internal)?;
        if !selectors.matches(&object) {
            continue;
        }
        let one = Target {
            namespace: str_at(&object, "/metadata/namespace").map(str::to_string),
            name: str_at(&object, "/metadata/name").map(str::to_string),
            subresource: None,
            ..target.clone()
        };
        match delete_one(ctx, &one, &options).await {
            Ok((object, _)) => deleted.push(object),
            Err(ApiError { code: 404, .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let storage = target.info.storage();
    let body = json!({
        "kind": format!("{}List", storage.kind),
        "apiVersion": storage.api_version(),
        "metadata": {"resourceVersion": ctx.store.current_revision().to_string()},
        "items": deleted,
    });
    Ok(json_response(
        StatusCode::OK,
        body.to_string().into_bytes(),
        &[],
    ))
}
