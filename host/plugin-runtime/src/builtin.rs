//! The built-in plugins, compiled from `plugins/` by the build script and
//! embedded in the binary.

/// Names accepted in `module = "builtin:<name>"`.
pub const NAMES: &[&str] = &[
    "bridge",
    "default-scheduler",
    "limit-ranger",
    "namespace-lifecycle",
    "pod-security",
];

/// Directory where the build put every guest component it compiled (the
/// built-ins and the test plugins of `plugins/`).
pub const ARTIFACT_DIR: &str = env!("HORTATOR_PLUGIN_DIR");

/// The component bytes of a built-in plugin.
pub fn get(name: &str) -> Option<&'static [u8]> {
    match name {
        "bridge" => Some(include_bytes!(concat!(
            env!("HORTATOR_PLUGIN_DIR"),
            "/bridge.wasm"
        ))),
        "default-scheduler" => Some(include_bytes!(concat!(
            env!("HORTATOR_PLUGIN_DIR"),
            "/default_scheduler.wasm"
        ))),
        "limit-ranger" => Some(include_bytes!(concat!(
            env!("HORTATOR_PLUGIN_DIR"),
            "/limit_ranger.wasm"
        ))),
        "namespace-lifecycle" => Some(include_bytes!(concat!(
            env!("HORTATOR_PLUGIN_DIR"),
            "/namespace_lifecycle.wasm"
        ))),
        "pod-security" => Some(include_bytes!(concat!(
            env!("HORTATOR_PLUGIN_DIR"),
            "/pod_security.wasm"
        ))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_name_is_embedded() {
        for name in super::NAMES {
            let bytes = super::get(name).unwrap();
            assert_eq!(&bytes[..4], b"\0asm", "{name}");
        }
    }
}
