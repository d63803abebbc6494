//! An admission plugin built against `hortator:plugin@0.2.0` (a copy of the
//! SDK's WIT under `wit/` with only the package version changed), with
//! `wit-bindgen` directly rather than the SDK. It allows everything; it exists
//! so the host's tests can check that a plugin built for an SDK version the
//! host does not support is refused, with both versions named.

wit_bindgen::generate!({
    path: "wit",
    world: "hortator:plugin/admission@0.2.0",
});

/// The WIT package version this plugin was built against.
const FUTURE_SDK_VERSION: &str = "0.2.0";

struct FutureSdk;

impl Guest for FutureSdk {
    fn metadata() -> PluginMetadata {
        PluginMetadata {
            name: env!("CARGO_PKG_NAME").to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            sdk_version: FUTURE_SDK_VERSION.to_owned(),
        }
    }

    fn init(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn admit(_request: AdmissionRequest) -> AdmissionResponse {
        AdmissionResponse {
            allowed: true,
            reason: String::new(),
            code: 0,
            patch: None,
            warnings: Vec::new(),
        }
    }
}

export!(FutureSdk);
