//! Discovery (`/api`, `/apis`, per group-version lists, aggregated v2), `/version` and the
//! OpenAPI documents kubectl reads before it writes.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hortator_api::registry::{self, GROUPS, ResourceInfo};
use serde_json::{Value, json};

use crate::error::ApiError;

/// The Kubernetes version Hortator's API corresponds to.
pub const KUBERNETES_VERSION: &str = "v1.33.0";

const AGGREGATED_V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
const AGGREGATED_V2BETA1: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

fn json_ok(content_type: &'static str, body: Value) -> Response {
    (
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, content_type)],
        body.to_string(),
    )
        .into_response()
}

/// Which aggregated discovery format (if any) the client accepts first.
fn aggregated(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())?;
    for part in accept.split(',') {
        let p: String = part.chars().filter(|c| !c.is_whitespace()).collect();
        if p.contains("as=APIGroupDiscoveryList") && p.contains("g=apidiscovery.k8s.io") {
            if p.contains("v=v2beta1") {
                return Some(AGGREGATED_V2BETA1);
            }
            if p.contains("v=v2") {
                return Some(AGGREGATED_V2);
            }
        }
        if p.starts_with("application/json") && !p.contains("as=") {
            return None;
        }
    }
    None
}

fn group_discovery(name: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| {
            let resources: Vec<Value> = registry::resources_of(name, v)
                .map(registry::discovery_v2_json)
                .collect();
            json!({"version": v, "resources": resources, "freshness": "Current"})
        })
        .collect();
    json!({"metadata": {"name": name, "creationTimestamp": null}, "versions": versions})
}

/// `/api`: the core versions, or aggregated discovery of the core group.
pub fn api_root(headers: &HeaderMap, server_address: &str) -> Response {
    if let Some(ct) = aggregated(headers) {
        let api_version = if ct == AGGREGATED_V2 {
            "apidiscovery.k8s.io/v2"
        } else {
            "apidiscovery.k8s.io/v2beta1"
        };
        let core = GROUPS.iter().find(|g| g.name.is_empty());
        let items: Vec<Value> = core
            .iter()
            .map(|g| group_discovery(g.name, g.versions))
            .collect();
        return json_ok(
            ct,
            json!({"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items}),
        );
    }
    let versions = GROUPS
        .iter()
        .find(|g| g.name.is_empty())
        .map(|g| g.versions)
        .unwrap_or(&["v1"]);
    json_ok(
        "application/json",
        json!({
            "kind": "APIVersions",
            "versions": versions,
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
        }),
    )
}

fn api_group(name: &str, versions: &[&str]) -> Value {
    let list: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": name,
        "versions": list,
        "preferredVersion": list.first().cloned().unwrap_or(json!({})),
    })
}

/// `/apis`: the named groups, or their aggregated discovery.
pub fn apis_root(headers: &HeaderMap) -> Response {
    let named = GROUPS.iter().filter(|g| !g.name.is_empty());
    if let Some(ct) = aggregated(headers) {
        let api_version = if ct == AGGREGATED_V2 {
            "apidiscovery.k8s.io/v2"
        } else {
            "apidiscovery.k8s.io/v2beta1"
        };
        let items: Vec<Value> = named
            .map(|g| group_discovery(g.name, g.versions))
            .chain([crate::metrics_api::aggregated_group()])
            .collect();
        return json_ok(
            ct,
            json!({"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items}),
        );
    }
    let groups: Vec<Value> = named
        .map(|g| api_group(g.name, g.versions))
        .chain([crate::metrics_api::api_group()])
        .collect();
    json_ok(
        "application/json",
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
    )
}

/// `/apis/<group>`.
pub fn group(name: &str) -> Result<Response, ApiError> {
    let group = GROUPS
        .iter()
        .find(|g| g.name == name && !name.is_empty())
        .ok_or_else(ApiError::no_route)?;
    Ok(json_ok(
        "application/json",
        api_group(group.name, group.versions),
    ))
}

/// `/api/<v>` or `/apis/<g>/<v>`: the APIResourceList.
pub fn group_version(group: &str, version: &str) -> Response {
    let resources: Vec<Value> = registry::resources_of(group, version)
        .flat_map(registry::api_resource_json)
        .collect();
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json_ok(
        "application/json",
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

/// `/version`.
pub fn version() -> Response {
    json_ok(
        "application/json",
        json!({
            "major": "1",
            "minor": "33",
            "gitVersion": format!("{KUBERNETES_VERSION}+hortator-{}", env!("CARGO_PKG_VERSION")),
            "gitCommit": "",
            "gitTreeState": "clean",
            "buildDate": "",
            "goVersion": "",
            "compiler": "rustc",
            "platform": format!("{}/{}", std::env::consts::OS, if std::env::consts::ARCH == "x86_64" { "amd64" } else { std::env::consts::ARCH }),
        }),
    )
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The media type of an OpenAPI v2 document in gnostic's protobuf encoding. client-go asks for
/// `…spec.v2@v1.0+protobuf` but cannot parse an `@` in a response's Content-Type, so the
/// answer uses the dotted form, as kube-apiserver's does.
const OPENAPI_V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// `/openapi/v2`: a Swagger 2.0 document without definitions.
///
/// kubectl validates a document against it only where the server cannot validate fields
/// itself — a `kind: List` — and skips kinds the document does not define. The items of a
/// List are then created one by one with `fieldValidation`, so the server's own validation
/// (the same as for any other create) is what checks them. kubectl asks for gnostic's
/// protobuf encoding; other clients get JSON.
pub fn openapi_v2(headers: &HeaderMap) -> Response {
    let accept = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.contains("protobuf") {
        // openapi.v2.Document { swagger = 1, info = 2 { title = 1, version = 2 }, paths = 8 }
        let mut info = Vec::new();
        protobuf_field(&mut info, 1, b"Hortator");
        protobuf_field(&mut info, 2, KUBERNETES_VERSION.as_bytes());
        let mut document = Vec::new();
        protobuf_field(&mut document, 1, b"2.0");
        protobuf_field(&mut document, 2, &info);
        protobuf_field(&mut document, 8, &[]);
        return (
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, OPENAPI_V2_PROTOBUF)],
            document,
        )
            .into_response();
    }
    json_ok(
        "application/json",
        json!({
            "swagger": "2.0",
            "info": {"title": "Hortator", "version": KUBERNETES_VERSION},
            "paths": {},
        }),
    )
}

/// Append a length-delimited protobuf field.
fn protobuf_field(out: &mut Vec<u8>, number: u32, payload: &[u8]) {
    protobuf_varint(out, u64::from(number << 3 | 2));
    protobuf_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

fn protobuf_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// `/openapi/v3`: the index of per-group-version documents.
pub fn openapi_v3_index() -> Response {
    let mut paths = serde_json::Map::new();
    for g in GROUPS {
        for v in g.versions {
            let path = gv_path(g.name, v);
            paths.insert(
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", document_hash(g.name, v))}),
            );
        }
    }
    json_ok("application/json", json!({"paths": paths}))
}

fn document_hash(group: &str, version: &str) -> String {
    // The documents change only with the binary: a hash of the version and the GV is stable.
    let text = format!("{}{group}{version}", env!("CARGO_PKG_VERSION"));
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016X}")
}

fn operation(info: &ResourceInfo, verb: &str, with_body: bool) -> Value {
    let mut params = vec![
        json!({"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}}),
        json!({"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}}),
        json!({"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}}),
    ];
    if verb == "patch" {
        params.push(json!({"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}}));
    }
    let ref_schema = json!({"$ref": format!("#/components/schemas/{}", schema_name(info))});
    let mut op = json!({
        "operationId": format!("{verb}{}", info.kind),
        "parameters": params,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": ref_schema}}}},
        "x-kubernetes-action": verb,
        "x-kubernetes-group-version-kind": {"group": info.group, "version": info.version, "kind": info.kind},
    });
    if with_body {
        let content = if verb == "patch" {
            // Strategic merge patches are computed by kubectl from its compiled-in types;
            // advertising them here would make it look for schemas instead.
            json!({
                "application/json-patch+json": {"schema": {"type": "object"}},
                "application/merge-patch+json": {"schema": {"type": "object"}},
                "application/apply-patch+yaml": {"schema": {"type": "object"}},
            })
        } else {
            json!({"*/*": {"schema": ref_schema}})
        };
        op["requestBody"] = json!({"content": content, "required": true});
    }
    op
}

fn schema_name(info: &ResourceInfo) -> String {
    let group = if info.group.is_empty() {
        "core"
    } else {
        info.group.split('.').next().unwrap_or(info.group)
    };
    format!("io.k8s.api.{group}.{}.{}", info.version, info.kind)
}

/// `/openapi/v3/<api|apis/group>/<version>`: paths with the parameters kubectl checks for
/// server-side field validation, and object schemas that accept any Kubernetes object.
pub fn openapi_v3_document(path: &str) -> Result<Response, ApiError> {
    let path = path.trim_matches('/');
    let (group, version) = match path.split('/').collect::<Vec<_>>()[..] {
        ["api", v] => ("", v),
        ["apis", g, v] => (g, v),
        _ => return Err(ApiError::no_route()),
    };
    if !registry::serves(group, version) {
        return Err(ApiError::no_route());
    }
    let prefix = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for info in registry::resources_of(group, version) {
        let (collection, item) = if info.namespaced() {
            (
                format!("{prefix}/namespaces/{{namespace}}/{}", info.plural),
                format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", info.plural),
            )
        } else {
            (
                format!("{prefix}/{}", info.plural),
                format!("{prefix}/{}/{{name}}", info.plural),
            )
        };
        paths.insert(
            collection,
            json!({"post": operation(info, "post", true), "get": operation(info, "list", false)}),
        );
        paths.insert(
            item,
            json!({
                "get": operation(info, "get", false),
                "put": operation(info, "put", true),
                "patch": operation(info, "patch", true),
                "delete": operation(info, "delete", false),
            }),
        );
        schemas.insert(
            schema_name(info),
            json!({
                "type": "object",
                "description": format!("{} ({}).", info.kind, info.api_version()),
                "x-kubernetes-group-version-kind": [{"group": info.group, "version": info.version, "kind": info.kind}],
                "x-kubernetes-preserve-unknown-fields": true,
            }),
        );
    }
    Ok(json_ok(
        "application/json",
        json!({
            "openapi": "3.0.0",
            "info": {"title": "Hortator", "version": KUBERNETES_VERSION},
            "paths": paths,
            "components": {"schemas": schemas},
        }),
    ))
}
