//! The admission world: `admit(request) -> response`.

use std::sync::Arc;

use crate::bindings::admission::{Admission, AdmissionPre};
use crate::core::{Core, plugin_accessors, world_binding};
use crate::error::{CallError, LoadError};
use crate::host::ClusterReader;
use crate::runtime::Runtime;
use crate::settings::PluginSettings;

pub use crate::bindings::admission::hortator::plugin::admission_types::{
    AdmissionRequest, AdmissionResponse, Operation, UserInfo,
};
pub use crate::bindings::admission::hortator::plugin::types::GroupVersionResource;

world_binding!(Admission, AdmissionPre, "admission");

/// A plugin's checked verdict on one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Why (shown to the client on denial).
    pub reason: String,
    /// HTTP status of a denial, 400–599.
    pub code: u16,
    /// RFC 6902 operations to apply to the object.
    pub patch: Option<json_patch::Patch>,
    /// Warnings for the client.
    pub warnings: Vec<String>,
}

/// A loaded admission plugin.
pub struct AdmissionPlugin {
    core: Core<Admission>,
}

impl AdmissionPlugin {
    /// Load, check and initialise a component; `source` describes where the
    /// bytes came from (for `plugin list`).
    pub fn load(
        runtime: &Runtime,
        settings: PluginSettings,
        source: String,
        bytes: &[u8],
        cluster: Option<Arc<dyn ClusterReader>>,
    ) -> Result<Self, LoadError> {
        Ok(AdmissionPlugin {
            core: Core::load(runtime, settings, source, bytes, cluster)?,
        })
    }

    /// Ask the plugin about one request. A trap, timeout, memory exhaustion or
    /// malformed response is an error; the caller applies the failure policy.
    pub fn admit(&self, request: &AdmissionRequest) -> Result<Verdict, CallError> {
        let response = self
            .core
            .call(|world, store| world.call_admit(store, request))?;
        check_response(response).inspect_err(|e| self.core.record_malformed(e))
    }

    plugin_accessors!();

    /// Instantiate and initialise a throw-away instance, returning the time taken.
    pub fn measure_instantiate(&self) -> Result<std::time::Duration, String> {
        self.core.measure_instantiate()
    }
}

fn check_response(response: AdmissionResponse) -> Result<Verdict, CallError> {
    let code = match (response.allowed, response.code) {
        (true, _) => 200,
        (false, 0) => 403,
        (false, code @ 400..=599) => code,
        (false, code) => {
            return Err(CallError::Malformed(format!(
                "denial code {code} is not an HTTP error status (400-599)"
            )));
        }
    };
    let patch = match &response.patch {
        None => None,
        Some(text) => Some(
            serde_json::from_str::<json_patch::Patch>(text).map_err(|e| {
                CallError::Malformed(format!("patch is not an RFC 6902 JSON patch: {e}"))
            })?,
        ),
    };
    if !response.allowed && patch.is_some() {
        return Err(CallError::Malformed("a denial carries a patch".into()));
    }
    Ok(Verdict {
        allowed: response.allowed,
        reason: response.reason,
        code,
        patch,
        warnings: response.warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(allowed: bool, code: u16, patch: Option<&str>) -> AdmissionResponse {
        AdmissionResponse {
            allowed,
            reason: "r".into(),
            code,
            patch: patch.map(String::from),
            warnings: vec![],
        }
    }

    #[test]
    fn responses_are_checked() {
        assert_eq!(check_response(response(false, 0, None)).unwrap().code, 403);
        assert_eq!(
            check_response(response(false, 404, None)).unwrap().code,
            404
        );
        assert!(matches!(
            check_response(response(false, 99, None)),
            Err(CallError::Malformed(_))
        ));
        assert!(matches!(
            check_response(response(true, 0, Some("nope"))),
            Err(CallError::Malformed(_))
        ));
        let v = check_response(response(
            true,
            0,
            Some(r#"[{"op":"add","path":"/a","value":1}]"#),
        ))
        .unwrap();
        assert_eq!(v.patch.unwrap().0.len(), 1);
        assert!(matches!(
            check_response(response(false, 403, Some("[]"))),
            Err(CallError::Malformed(_))
        ));
    }
}
