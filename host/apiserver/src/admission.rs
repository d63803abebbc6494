//! The admission chain on the write path. Mutating plugins see the object
//! after defaulting and may patch it; validating plugins see the final object.
//! A plugin call takes microseconds, so the chain runs in place on the
//! request's worker thread (the plugin runtime's stdio never blocks); a hand-off
//! to another thread would cost more than the calls. A plugin whose recent call
//! was slow (a timeout, or tens of milliseconds) runs on the blocking pool
//! instead, so that it cannot stall the worker's other requests; any plugin
//! holds its thread for at most its deadline.

use std::sync::Arc;

use hortator_plugin_runtime::{
    AdmissionPlugin, AdmissionRequest, CallError, FailurePolicy, GroupVersionResource, Operation,
    Phase, UserInfo, Verdict,
};
use serde_json::Value;

use crate::error::ApiError;
use crate::request::Target;
use crate::state::Ctx;

/// Who the request is made for (no authentication yet: the cluster admin).
fn admin() -> UserInfo {
    UserInfo {
        username: "system:admin".into(),
        uid: String::new(),
        groups: vec!["system:masters".into(), "system:authenticated".into()],
    }
}

/// One admission review: what is being done to which object.
pub struct Review<'a> {
    /// The operation.
    pub operation: Operation,
    /// The request target.
    pub target: &'a Target,
    /// The stored object (update, delete).
    pub old: Option<&'a Value>,
    /// Whether the request is a dry run.
    pub dry_run: bool,
}

impl Review<'_> {
    fn request(&self, object: Option<&Value>) -> AdmissionRequest {
        let storage = self.target.info.storage();
        let name = self
            .target
            .name
            .clone()
            .or_else(|| {
                object
                    .and_then(|o| o.pointer("/metadata/name"))
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .unwrap_or_default();
        let kind = object
            .and_then(|o| o.get("kind"))
            .and_then(Value::as_str)
            .unwrap_or(storage.kind)
            .to_string();
        AdmissionRequest {
            uid: uuid::Uuid::new_v4().to_string(),
            operation: self.operation,
            resource: GroupVersionResource {
                group: storage.group.into(),
                version: storage.version.into(),
                resource: storage.plural.into(),
            },
            sub_resource: self.target.subresource.clone().unwrap_or_default(),
            kind,
            namespace: if storage.namespaced() {
                self.target.namespace.clone().unwrap_or_default()
            } else {
                String::new()
            },
            name,
            user_info: admin(),
            object: object.map(Value::to_string),
            old_object: self.old.map(Value::to_string),
            dry_run: self.dry_run,
        }
    }
}

fn denial(plugin: &str, verdict: &Verdict) -> ApiError {
    let reason = if verdict.reason.is_empty() {
        "no reason given"
    } else {
        &verdict.reason
    };
    ApiError::with_code(
        verdict.code,
        format!("admission webhook \"{plugin}\" denied the request: {reason}"),
    )
}

/// A plugin failed: fail-closed rejects the request, fail-open skips the plugin.
fn failure(
    plugin: &AdmissionPlugin,
    err: &CallError,
    warnings: &mut Vec<String>,
) -> Result<(), ApiError> {
    let name = &plugin.settings().name;
    match plugin.settings().failure_policy {
        FailurePolicy::FailClosed => Err(ApiError::internal(format!(
            "failed calling webhook \"{name}\": plugin {err}"
        ))),
        FailurePolicy::FailOpen => {
            warnings.push(format!(
                "admission plugin \"{name}\" was skipped (fail-open): plugin {err}"
            ));
            Ok(())
        }
    }
}

/// The outcome of one phase.
struct PhaseOutcome {
    object: Option<Value>,
    changed: bool,
    warnings: Vec<String>,
}

fn run_phase(
    plugins: Vec<Arc<AdmissionPlugin>>,
    request: AdmissionRequest,
    mut object: Option<Value>,
    mutating: bool,
) -> Result<PhaseOutcome, ApiError> {
    let mut request = request;
    let mut warnings = Vec::new();
    let mut changed = false;
    // `request.object` is the text of `object` until a patch changes it.
    let mut stale = false;
    for plugin in plugins {
        if stale {
            request.object = object.as_ref().map(Value::to_string);
            stale = false;
        }
        let verdict = match plugin.admit(&request) {
            Ok(verdict) => verdict,
            Err(err) => {
                failure(&plugin, &err, &mut warnings)?;
                continue;
            }
        };
        warnings.extend(verdict.warnings.iter().cloned());
        if !verdict.allowed {
            return Err(denial(&plugin.settings().name, &verdict));
        }
        match (&verdict.patch, object.as_mut()) {
            (Some(patch), Some(current)) if mutating && !patch.0.is_empty() => {
                let mut patched = current.clone();
                match json_patch::patch(&mut patched, patch) {
                    Ok(()) if patched.is_object() => {
                        if patched != *current {
                            changed = true;
                            stale = true;
                            *current = patched;
                        }
                    }
                    Ok(()) => failure(
                        &plugin,
                        &CallError::Malformed("patch replaced the object with a non-object".into()),
                        &mut warnings,
                    )?,
                    Err(e) => failure(
                        &plugin,
                        &CallError::Malformed(format!("patch does not apply: {e}")),
                        &mut warnings,
                    )?,
                }
            }
            (Some(patch), _) if !patch.0.is_empty() => {
                tracing::warn!(plugin = %plugin.settings().name, "patch from a validating admission plugin ignored");
            }
            _ => {}
        }
    }
    Ok(PhaseOutcome {
        object,
        changed,
        warnings,
    })
}

/// Run the chain's plugins of `phases` on `object` (copied only when some plugin runs);
/// returns the patched object when a mutating plugin changed it.
async fn phase(
    ctx: &Ctx,
    review: &Review<'_>,
    phases: &[Phase],
    object: Option<&Value>,
    mutating: bool,
    warnings: &mut Vec<String>,
) -> Result<Option<Value>, ApiError> {
    let Some(manager) = &ctx.plugins else {
        return Ok(None);
    };
    let plugins: Vec<Arc<AdmissionPlugin>> = manager
        .admission_chain()
        .iter()
        .filter(|entry| phases.contains(&entry.phase))
        .map(|entry| entry.slot.current())
        .collect();
    if plugins.is_empty() {
        return Ok(None);
    }
    let request = review.request(object);
    let object = object.cloned();
    let outcome = if plugins.iter().any(|p| p.is_slow()) {
        tokio::task::spawn_blocking(move || run_phase(plugins, request, object, mutating))
            .await
            .map_err(|e| ApiError::internal(format!("admission: {e}")))??
    } else {
        run_phase(plugins, request, object, mutating)?
    };
    warnings.extend(outcome.warnings);
    Ok(outcome.object.filter(|_| outcome.changed))
}

/// Run the mutating plugins on `object`; returns the patched object if any plugin changed
/// it. The object is copied only when there are plugins to run.
pub async fn mutate(
    ctx: &Ctx,
    review: &Review<'_>,
    object: &Value,
    warnings: &mut Vec<String>,
) -> Result<Option<Value>, ApiError> {
    phase(
        ctx,
        review,
        &[Phase::Mutating],
        Some(object),
        true,
        warnings,
    )
    .await
}

/// Run the validating plugins on the final `object` (`None` for deletes).
pub async fn validate(
    ctx: &Ctx,
    review: &Review<'_>,
    object: Option<&Value>,
    warnings: &mut Vec<String>,
) -> Result<(), ApiError> {
    phase(ctx, review, &[Phase::Validating], object, false, warnings)
        .await
        .map(drop)
}

/// Deletes have no object to mutate: every plugin of the chain may only allow or deny.
pub async fn review_delete(
    ctx: &Ctx,
    review: &Review<'_>,
    warnings: &mut Vec<String>,
) -> Result<(), ApiError> {
    phase(
        ctx,
        review,
        &[Phase::Mutating, Phase::Validating],
        None,
        false,
        warnings,
    )
    .await
    .map(drop)
}
