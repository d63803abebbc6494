//! The API server's side of the plugin platform: cluster lookups for plugins
//! granted `cluster-read`, the `hortctl plugin` endpoints, and Events for
//! plugin loads, swaps and failing calls.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hortator_api::registry;
use hortator_api::selector::LabelSelector;
use hortator_plugin_runtime::{
    ClusterReader, LookupError, MetricsSnapshot, PluginEvent, PluginManager, Resource, SwapError,
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

/// How often plugin call failures are summed up into one Event per plugin.
const FAILURES_EVERY: Duration = Duration::from_secs(10);

/// Write every plugin load and swap outcome of `manager` as an Event in the
/// `default` namespace, and every 10 s a `PluginCallsFailed` Event for each plugin
/// whose calls failed since. Call it before the first load so that none is missed.
pub fn record_plugin_events(manager: &Arc<PluginManager>, store: Arc<dyn Store>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let writer = EventWriter {
        prefix: registry::find("", "v1", "events")
            .map(|info| info.key_prefix())
            .unwrap_or_default(),
        store,
        runtime: runtime.clone(),
    };
    let loads = writer.clone();
    manager.set_event_sink(move |event: &PluginEvent| {
        let (reason, kind) = if event.loaded {
            ("PluginLoaded", "Normal")
        } else {
            ("PluginLoadFailed", "Warning")
        };
        loads.write(&event.point, reason, kind, &event.message);
    });
    runtime.spawn(report_failures(Arc::downgrade(manager), writer));
}

/// Writes Events about plugins straight to the store.
#[derive(Clone)]
struct EventWriter {
    store: Arc<dyn Store>,
    /// The storage prefix of events.
    prefix: String,
    runtime: tokio::runtime::Handle,
}

impl EventWriter {
    /// Record an Event about plugin point `point` in the background.
    fn write(&self, point: &str, reason: &str, kind: &str, message: &str) {
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
            "involvedObject": {"apiVersion": "hortator.io/v1", "kind": "Plugin", "name": point},
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": "hortator-plugins"},
            "reportingComponent": "hortator-plugins",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        });
        let key = format!("{}default/{name}", self.prefix);
        let store = self.store.clone();
        self.runtime.spawn(async move {
            if let Err(e) = store.create(key.into_bytes(), codec::encode(&object)).await {
                tracing::warn!(error = %e, "could not record a plugin Event");
            }
        });
    }
}

/// Every [`FAILURES_EVERY`], compare each active plugin's call metrics with the previous
/// look and record the failures in between; ends when the manager goes.
async fn report_failures(manager: Weak<PluginManager>, writer: EventWriter) {
    // Point → (digest of the plugin, its metrics at the previous look).
    let mut seen: HashMap<String, (String, MetricsSnapshot)> = HashMap::new();
    let mut ticker = tokio::time::interval(FAILURES_EVERY);
    loop {
        ticker.tick().await;
        let Some(manager) = manager.upgrade() else {
            return;
        };
        for status in manager.list() {
            let Some(active) = status.active else {
                continue;
            };
            let previous = seen.insert(
                status.point.clone(),
                (active.digest.clone(), active.metrics.clone()),
            );
            // A swapped plugin starts from zero.
            let before = match previous {
                Some((digest, metrics)) if digest == active.digest => metrics,
                _ => MetricsSnapshot::default(),
            };
            if let Some(message) = failure_summary(&status.point, &before, &active.metrics) {
                writer.write(&status.point, "PluginCallsFailed", "Warning", &message);
            }
        }
    }
}

/// What failed between two looks at a plugin's metrics, or `None` if nothing did.
fn failure_summary(point: &str, before: &MetricsSnapshot, now: &MetricsSnapshot) -> Option<String> {
    let failed = now.errors.saturating_sub(before.errors);
    if failed == 0 {
        return None;
    }
    let calls = now.calls.saturating_sub(before.calls);
    let kinds: Vec<String> = [
        (now.timeouts.saturating_sub(before.timeouts), "timed out"),
        (now.traps.saturating_sub(before.traps), "trapped"),
        (
            now.out_of_memory.saturating_sub(before.out_of_memory),
            "exceeded the memory limit",
        ),
        (
            now.malformed.saturating_sub(before.malformed),
            "returned malformed output",
        ),
    ]
    .into_iter()
    .filter(|(count, _)| *count > 0)
    .map(|(count, what)| format!("{count} {what}"))
    .collect();
    Some(format!(
        "{failed} of {calls} calls to plugin {point} failed in the last {}s ({})",
        FAILURES_EVERY.as_secs(),
        kinds.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_between_two_looks_are_summed_up_by_kind() {
        let before = MetricsSnapshot {
            calls: 10,
            errors: 1,
            traps: 1,
            ..MetricsSnapshot::default()
        };
        assert_eq!(failure_summary("admission/x", &before, &before), None);
        let now = MetricsSnapshot {
            calls: 25,
            errors: 5,
            traps: 3,
            timeouts: 2,
            ..MetricsSnapshot::default()
        };
        assert_eq!(
            failure_summary("admission/x", &before, &now).as_deref(),
            Some(
                "4 of 15 calls to plugin admission/x failed in the last 10s (2 timed out, 2 trapped)"
            )
        );
    }
}
