//! The API server's side of the plugin platform: cluster lookups for plugins
//! granted `cluster-read`, the `hortctl plugin` endpoints, and Events for
//! plugin loads and swaps.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hortator_api::registry;
use hortator_api::selector::LabelSelector;
use hortator_plugin_runtime::{
    ClusterReader, LookupError, PluginEvent, PluginManager, Resource, SwapError,
};
use hortator_store::{RangeRequest, Store};
use serde_json::{Value, json};

use crate::codec;
use crate::error::ApiError;
use crate::request::Query;
use crate::state::Ctx;

/// Largest component `hortctl plugin swap` may upload.
pub const MAX_COMPONENT_BYTES: usize = 256 << 20;

/// Read-only cluster lookups straight from the store, for admission plugins.
pub struct StoreReader {
    store: Arc<dyn Store>,
}

impl StoreReader {
    /// Lookups over `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        StoreReader { store }
    }

    fn info(resource: &Resource) -> Result<&'static registry::ResourceInfo, LookupError> {
        registry::find(&resource.group, &resource.version, &resource.resource).ok_or_else(|| {
            let group = if resource.group.is_empty() {
                "core".to_string()
            } else {
                resource.group.clone()
            };
            LookupError::UnknownResource(format!(
                "{group}/{}/{}",
                resource.version, resource.resource
            ))
        })
    }
}

fn with_rv(stored: &[u8], rv: i64) -> String {
    let mut out = Vec::with_capacity(stored.len() + 32);
    codec::write_with_rv(&mut out, stored, rv);
    String::from_utf8_lossy(&out).into_owned()
}

impl ClusterReader for StoreReader {
    fn get(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
    ) -> Result<Option<String>, LookupError> {
        let info = Self::info(resource)?;
        let namespace = info.namespaced().then_some(namespace);
        let key = info.key(namespace, name);
        let kv = self
            .store
            .get(key.as_bytes())
            .map_err(|e| LookupError::Failed(e.to_string()))?;
        Ok(kv.map(|kv| with_rv(&kv.value, kv.mod_revision)))
    }

    fn list(
        &self,
        resource: &Resource,
        namespace: &str,
        label_selector: &str,
    ) -> Result<Vec<String>, LookupError> {
        let info = Self::info(resource)?;
        let selector =
            LabelSelector::parse(label_selector).map_err(|e| LookupError::Failed(e.to_string()))?;
        let prefix = if info.namespaced() && !namespace.is_empty() {
            format!("{}{namespace}/", info.key_prefix())
        } else {
            info.key_prefix()
        };
        let page = self
            .store
            .range(RangeRequest {
                prefix: prefix.into_bytes(),
                ..Default::default()
            })
            .map_err(|e| LookupError::Failed(e.to_string()))?;
        let mut items = Vec::new();
        for kv in page.kvs {
            if !selector.is_empty() {
                let object = codec::decode(&kv).map_err(|e| LookupError::Failed(e.to_string()))?;
                if !selector.matches_json(
                    object
                        .pointer("/metadata/labels")
                        .and_then(Value::as_object),
                ) {
                    continue;
                }
            }
            items.push(with_rv(&kv.value, kv.mod_revision));
        }
        Ok(items)
    }
}

fn disabled() -> ApiError {
    ApiError::with_code(404, "this server runs without plugins")
}

/// `GET /hortator/v1/plugins`: every extension point with its active plugin.
pub async fn list(State(ctx): State<Arc<Ctx>>) -> Response {
    let Some(manager) = &ctx.plugins else {
        return disabled().into_response();
    };
    let body =
        json!({"apiVersion": "hortator.io/v1", "kind": "PluginList", "items": manager.list()});
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// `PUT /hortator/v1/plugins/{point}` with a component as the body: swap the
/// point's plugin. `?source=` names the upload in `plugin list`.
pub async fn swap(
    State(ctx): State<Arc<Ctx>>,
    Path(point): Path<String>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    let Some(manager) = ctx.plugins.clone() else {
        return disabled().into_response();
    };
    let query = Query::parse(raw.as_deref());
    let source = format!("upload:{}", query.get("source").unwrap_or("hortctl"));
    let swapped = {
        let point = point.clone();
        tokio::task::spawn_blocking(move || manager.swap(&point, &body, &source)).await
    };
    match swapped {
        Ok(Ok(_)) => {
            let row = ctx
                .plugins
                .as_ref()
                .and_then(|m| m.list().into_iter().find(|row| row.point == point));
            (StatusCode::OK, axum::Json(row)).into_response()
        }
        Ok(Err(err @ SwapError::UnknownPoint { .. })) => {
            ApiError::with_code(404, err.to_string()).into_response()
        }
        Ok(Err(err @ SwapError::Load(_))) => {
            ApiError::with_code(422, err.to_string()).into_response()
        }
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// Write every plugin load and swap outcome of `manager` as an Event in the
/// `default` namespace. Call it before the first load so that none is missed.
pub fn record_plugin_events(manager: &PluginManager, store: Arc<dyn Store>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let events = registry::find("", "v1", "events")
        .map(|info| info.key_prefix())
        .unwrap_or_default();
    manager.set_event_sink(move |event: &PluginEvent| {
        let name = format!("plugin.{}", uuid::Uuid::new_v4().simple());
        let now = crate::handlers::now_rfc3339();
        let object = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": name,
                "namespace": "default",
                "uid": uuid::Uuid::new_v4().to_string(),
                "creationTimestamp": now,
            },
            "involvedObject": {"apiVersion": "hortator.io/v1", "kind": "Plugin", "name": event.point},
            "reason": if event.loaded { "PluginLoaded" } else { "PluginLoadFailed" },
            "message": event.message,
            "type": if event.loaded { "Normal" } else { "Warning" },
            "source": {"component": "hortator-plugins"},
            "reportingComponent": "hortator-plugins",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        });
        let key = format!("{events}default/{name}");
        let store = store.clone();
        runtime.spawn(async move {
            if let Err(e) = store.create(key.into_bytes(), codec::encode(&object)).await {
                tracing::warn!(error = %e, "could not record a plugin Event");
            }
        });
    });
}
