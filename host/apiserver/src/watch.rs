//! Watch: newline-delimited JSON events, as kube-apiserver streams them.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use hortator_store::{Event, EventKind, KeyValue, RangeRequest, StoreError};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::codec;
use crate::error::ApiError;
use crate::handlers::{Output, Selectors, table_of};
use crate::request::{Query, Target};
use crate::state::Ctx;

/// Default lifetime of a watch without `timeoutSeconds`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How often an idle watch that allows bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(30);

struct Encoder {
    target: Target,
    output: Output,
}

impl Encoder {
    fn event(&self, ty: &str, stored: &[u8], rv: i64) -> Option<Bytes> {
        let mut out = Vec::with_capacity(stored.len() + 64);
        out.extend_from_slice(b"{\"type\":\"");
        out.extend_from_slice(ty.as_bytes());
        out.extend_from_slice(b"\",\"object\":");
        match self.output {
            Output::Json if !self.target.info.legacy => codec::write_with_rv(&mut out, stored, rv),
            _ => {
                let object = codec::decode_at(stored, rv).ok()?;
                let rendered = match self.output {
                    Output::Table(include) => table_of(
                        self.target.info.storage().kind,
                        &[object],
                        include,
                        json!({"resourceVersion": rv.to_string()}),
                    ),
                    Output::Metadata => json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": object.get("metadata").cloned().unwrap_or(json!({})),
                    }),
                    Output::Json => crate::handlers::legacy(&object).ok()?,
                };
                out.extend_from_slice(serde_json::to_string(&rendered).ok()?.as_bytes());
            }
        }
        out.extend_from_slice(b"}\n");
        Some(Bytes::from(out))
    }

    fn bookmark(&self, rv: i64, initial_end: bool) -> Bytes {
        let storage = self.target.info.storage();
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let event = json!({
            "type": "BOOKMARK",
            "object": {"kind": storage.kind, "apiVersion": storage.api_version(), "metadata": meta},
        });
        Bytes::from(format!("{event}\n"))
    }
}

fn error_event(err: &ApiError) -> Bytes {
    Bytes::from(format!(
        "{}\n",
        json!({"type": "ERROR", "object": err.status()})
    ))
}

fn selected(selectors: &Selectors, stored: &[u8]) -> bool {
    selectors.is_empty()
        || serde_json::from_slice::<Value>(stored).is_ok_and(|o| selectors.matches(&o))
}

/// Translate a store event into the watch event the client sees, honouring selectors: an
/// object leaving the selection is DELETED, one entering it ADDED.
fn translate(encoder: &Encoder, selectors: &Selectors, event: &Event) -> Option<Bytes> {
    let rv = event.kv.mod_revision;
    let prev = event.prev_kv.as_ref();
    match event.kind {
        EventKind::Put => {
            let now = selected(selectors, &event.kv.value);
            let before = prev.is_some_and(|p| selected(selectors, &p.value));
            match (before, now) {
                (false, true) => encoder.event("ADDED", &event.kv.value, rv),
                (true, true) => encoder.event("MODIFIED", &event.kv.value, rv),
                (true, false) => encoder.event("DELETED", &event.kv.value, rv),
                (false, false) => None,
            }
        }
        EventKind::Delete => {
            let prev = prev?;
            selected(selectors, &prev.value).then(|| encoder.event("DELETED", &prev.value, rv))?
        }
    }
}

/// GET with `watch=true`.
pub fn watch(
    ctx: Arc<Ctx>,
    target: Target,
    query: &Query,
    output: Output,
) -> Result<Response, ApiError> {
    let selectors = Selectors::parse(&target, query)?;
    let bookmarks = query.flag("allowWatchBookmarks");
    let timeout = query
        .int("timeoutSeconds")?
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64))
        .unwrap_or(DEFAULT_TIMEOUT);
    let rv = query.get("resourceVersion");
    let watch_list = query.get("sendInitialEvents") == Some("true");
    let send_initial = match query.get("sendInitialEvents") {
        Some("true") => true,
        Some(_) => false,
        None => rv.is_none() || rv == Some("0"),
    };
    let mut prefix = target.collection_prefix();
    if let Some(name) = target.name.clone().or_else(|| {
        selectors
            .fields
            .value_for("metadata.name")
            .map(str::to_string)
    }) && (target.namespace.is_some() || !target.info.namespaced())
    {
        prefix = target.info.key(target.namespace.as_deref(), &name);
    }
    let encoder = Encoder {
        target: target.clone(),
        output,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);

    let mut initial: Vec<KeyValue> = Vec::new();
    let after = if send_initial {
        let page = ctx
            .store
            .range(RangeRequest {
                prefix: prefix.clone().into_bytes(),
                ..Default::default()
            })
            .map_err(|e| ApiError::from_store(e, target.subject()))?;
        initial = page
            .kvs
            .into_iter()
            .filter(|kv| {
                kv.key.starts_with(prefix.as_bytes())
                    && (prefix.ends_with('/') || kv.key == prefix.as_bytes())
            })
            .collect();
        page.revision
    } else {
        let rv = rv.unwrap_or("0");
        rv.parse::<i64>()
            .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv:?}")))?
    };
    let stream = match ctx.store.watch(prefix.as_bytes(), after) {
        Ok(s) => Some(s),
        Err(StoreError::Compacted {
            requested,
            compacted,
        }) => {
            let err = ApiError::expired(format!(
                "too old resource version: {requested} ({compacted})"
            ));
            let _ = tx.try_send(error_event(&err));
            None
        }
        Err(e) => return Err(ApiError::from_store(e, target.subject())),
    };
    let exact_key = !prefix.ends_with('/');
    let mut stopped = ctx.shutdown.clone();
    let watching = ctx.metrics.watching(&target);
    tokio::spawn(async move {
        let _watching = watching;
        let Some(mut stream) = stream else { return };
        for kv in &initial {
            if !selected(&selectors, &kv.value) {
                continue;
            }
            if let Some(line) = encoder.event("ADDED", &kv.value, kv.mod_revision)
                && tx.send(line).await.is_err()
            {
                return;
            }
        }
        let mut last_rv = after;
        if watch_list && bookmarks && tx.send(encoder.bookmark(after, true)).await.is_err() {
            return;
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = stopped.changed() => return,
                _ = ticker.tick(), if bookmarks => {
                    if tx.send(encoder.bookmark(last_rv, false)).await.is_err() {
                        return;
                    }
                }
                _ = tx.closed() => return,
                next = stream.next() => match next {
                    None => return,
                    Some(Err(e)) => {
                        let _ = tx.send(error_event(&ApiError::from_store(e, encoder.target.subject()))).await;
                        return;
                    }
                    Some(Ok(event)) => {
                        last_rv = event.kv.mod_revision;
                        if exact_key && event.kv.key != prefix.as_bytes() {
                            continue;
                        }
                        if let Some(line) = translate(&encoder, &selectors, &event)
                            && tx.send(line).await.is_err() {
                                return;
                            }
                    }
                },
            }
        }
    });
    let body =
        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, Infallible>));
    Ok((
        StatusCode::OK,
        [
            (axum::http::header::CONTENT_TYPE, "application/json"),
            (axum::http::header::CACHE_CONTROL, "no-cache, private"),
        ],
        body,
    )
        .into_response())
}
