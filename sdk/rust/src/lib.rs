//! Write [Hortator](https://example.invalid/hortator) policy plugins in Rust.
//!
//! Hortator loads every policy — admission, scheduling, build strategies and
//! pod networking — as a WebAssembly component written against the WIT package
//! `hortator:plugin@0.1.0`. This crate wraps the generated bindings so that a
//! plugin is a plain Rust type implementing one trait, exported with one macro:
//!
//! | extension point | trait | export macro |
//! |---|---|---|
//! | admission | [`admission::Admission`] | [`export_admission!`] |
//! | scheduler | [`scheduler::Scheduler`] | [`export_scheduler!`] |
//! | build strategy | [`build::BuildStrategy`] | [`export_build_strategy!`] |
//! | network driver | [`network::NetworkDriver`] | [`export_network_driver!`] |
//!
//! The macros fill in the plugin's metadata (the plugin crate's package name
//! and version, and [`SDK_VERSION`]), parse the plugin's configuration (its
//! TOML table, handed over as JSON) and keep the instance `init` returns for
//! the later calls.
//!
//! A plugin is a `cdylib` crate built for `wasm32-wasip2`:
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! hortator-sdk = "0.1"
//! ```
//!
//! ```no_run
//! use hortator_sdk::admission::{Admission, Request, Response};
//! use hortator_sdk::k8s::api::core::v1::Pod;
//!
//! /// Refuses pods without a `team` label.
//! struct RequireTeam;
//!
//! impl Admission for RequireTeam {
//!     fn init(_config: hortator_sdk::serde_json::Value) -> Result<Self, String> {
//!         Ok(RequireTeam)
//!     }
//!
//!     fn admit(&self, request: &Request) -> Response {
//!         let pod: Pod = match request.object() {
//!             Ok(pod) => pod,
//!             Err(error) => return error.into(),
//!         };
//!         let labelled = pod.metadata.labels.is_some_and(|labels| labels.contains_key("team"));
//!         if labelled {
//!             Response::allow()
//!         } else {
//!             Response::deny("pods must carry a team label")
//!         }
//!     }
//! }
//!
//! hortator_sdk::export_admission!(RequireTeam);
//! ```
//!
//! ```sh
//! cargo build --release --target wasm32-wasip2
//! ```
#![warn(missing_docs)]
#![deny(unsafe_code)]

#[doc(hidden)]
#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod bindings;

pub mod admission;
pub mod build;
pub mod cluster;
pub mod network;
pub mod quantity;
pub mod scheduler;

/// The Kubernetes API types (`k8s-openapi`, API version 1.33), for decoding
/// objects with [`admission::Request::object`] and [`cluster::get`].
pub use k8s_openapi as k8s;
/// The `serde_json` this SDK is built with: configuration and untyped objects
/// are [`serde_json::Value`]s.
pub use serde_json;

pub use bindings::admission::hortator::plugin::types::{
    GroupVersionResource, KeyValue, PluginMetadata,
};

/// The version of the `hortator:plugin` WIT package this SDK implements. Every
/// plugin reports it in its metadata; the host refuses plugins built against
/// versions it does not support.
pub const SDK_VERSION: &str = "0.1.0";

impl GroupVersionResource {
    /// A resource from its API group (`""` for the core group), version and
    /// plural resource name, e.g. `GroupVersionResource::new("apps", "v1", "deployments")`.
    pub fn new(group: &str, version: &str, resource: &str) -> Self {
        GroupVersionResource {
            group: group.to_owned(),
            version: version.to_owned(),
            resource: resource.to_owned(),
        }
    }

    /// The resource that serves the `k8s-openapi` type `K`, e.g.
    /// `GroupVersionResource::of::<Namespace>()` is `("", "v1", "namespaces")`.
    pub fn of<K: k8s_openapi::Resource>() -> Self {
        Self::new(K::GROUP, K::VERSION, K::URL_PATH_SEGMENT)
    }
}

impl KeyValue {
    /// A label or annotation.
    pub fn new(key: &str, value: &str) -> Self {
        KeyValue {
            key: key.to_owned(),
            value: value.to_owned(),
        }
    }
}

/// Looks `key` up in a list of labels or annotations.
pub fn lookup<'a>(entries: &'a [KeyValue], key: &str) -> Option<&'a str> {
    entries
        .iter()
        .find(|entry| str_eq(&entry.key, key))
        .map(|entry| entry.value.as_str())
}

/// String equality without a call to `memcmp`, which WebAssembly runs a
/// byte at a time: label keys and values are short, and compared often
/// (selectors, node affinity).
#[inline]
pub(crate) fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut a_words = a.chunks_exact(8);
    let mut b_words = b.chunks_exact(8);
    for (a, b) in (&mut a_words).zip(&mut b_words) {
        let word = |bytes: &[u8]| u64::from_ne_bytes(bytes.try_into().expect("8 bytes"));
        if word(a) != word(b) {
            return false;
        }
    }
    let (a, b) = (a_words.remainder(), b_words.remainder());
    (0..a.len()).all(|i| a[i] == b[i])
}

/// Declares the thread-local slot an export macro keeps the plugin in; not a
/// public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __plugin_instance {
    ($plugin:ty) => {
        ::std::thread_local! {
            static INSTANCE: ::core::cell::RefCell<::core::option::Option<$plugin>> =
                const { ::core::cell::RefCell::new(::core::option::Option::None) };
        }
    };
}

/// The `metadata` and `init` exports every world shares, for use inside an
/// export macro's `Guest` impl next to [`__plugin_instance!`]; not a public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __plugin_lifecycle {
    ($plugin:ty, $world_trait:path) => {
        fn metadata() -> $crate::PluginMetadata {
            $crate::__private::metadata(
                ::core::env!("CARGO_PKG_NAME"),
                ::core::env!("CARGO_PKG_VERSION"),
            )
        }

        fn init(
            config: ::std::string::String,
        ) -> ::core::result::Result<(), ::std::string::String> {
            $crate::__private::init(&INSTANCE, &config, <$plugin as $world_trait>::init)
        }
    };
}

/// Support code for the export macros; not a public API.
#[doc(hidden)]
pub mod __private {
    use std::cell::RefCell;
    use std::thread::LocalKey;

    use serde_json::Value;

    pub use crate::bindings::{admission, build_strategy, network_driver, scheduler};
    use crate::{PluginMetadata, SDK_VERSION};

    /// Where an export macro keeps the plugin instance.
    pub type Slot<T> = LocalKey<RefCell<Option<T>>>;

    /// The metadata of a plugin crate.
    pub fn metadata(name: &str, version: &str) -> PluginMetadata {
        PluginMetadata {
            name: name.to_owned(),
            version: version.to_owned(),
            sdk_version: SDK_VERSION.to_owned(),
        }
    }

    /// Parses the configuration text the host passes to `init`: JSON, where
    /// an empty text means an empty table.
    pub fn parse_config(text: &str) -> Result<Value, String> {
        if text.trim().is_empty() {
            return Ok(Value::Object(serde_json::Map::new()));
        }
        serde_json::from_str(text).map_err(|error| format!("invalid plugin configuration: {error}"))
    }

    /// Runs a plugin's `init` on its parsed configuration and keeps the instance.
    pub fn init<T: 'static>(
        slot: &'static Slot<T>,
        config: &str,
        init: fn(Value) -> Result<T, String>,
    ) -> Result<(), String> {
        let plugin = init(parse_config(config)?)?;
        slot.with(|cell| *cell.borrow_mut() = Some(plugin));
        Ok(())
    }

    /// Calls `f` on the instance `init` created.
    ///
    /// # Panics
    ///
    /// If `init` has not succeeded: the host never calls a plugin it could not
    /// initialise, so this is a host bug and traps the call.
    pub fn with<T: 'static, R>(slot: &'static Slot<T>, f: impl FnOnce(&mut T) -> R) -> R {
        slot.with(|cell| {
            let mut plugin = cell.borrow_mut();
            let plugin = plugin
                .as_mut()
                .expect("hortator plugin called before `init` succeeded");
            f(plugin)
        })
    }
}

/// The Rust snippets of the plugin author's guide, `sdk/README.md`, compiled
/// as doc tests so that they keep compiling.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeSnippets;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_version_is_the_wit_package_version() {
        let wit = include_str!("../../wit/types.wit");
        assert!(wit.contains(&format!("package hortator:plugin@{SDK_VERSION};")));
    }

    /// The guide's walkthrough shows the bin-packing example as it is.
    #[test]
    fn readme_shows_the_binpack_example() {
        let readme = include_str!("../../README.md");
        let example = include_str!("../../../examples/plugins/binpack/src/lib.rs");
        let start = example.find("use hortator_sdk").unwrap();
        let end = example.find("#[cfg(test)]").unwrap();
        let code = example[start..end].trim_end();
        assert!(
            readme.contains(&format!("```rust\n{code}\n```")),
            "sdk/README.md must show examples/plugins/binpack/src/lib.rs up to its tests"
        );
    }

    #[test]
    fn empty_configuration_is_an_empty_table() {
        for text in ["", "  ", "{}"] {
            assert_eq!(
                __private::parse_config(text).unwrap(),
                serde_json::json!({})
            );
        }
        assert_eq!(
            __private::parse_config(r#"{"mode": "deny"}"#).unwrap()["mode"],
            "deny"
        );
        assert!(__private::parse_config("mode = 'deny'").is_err());
    }

    #[test]
    fn resource_of_a_k8s_type() {
        use k8s_openapi::api::apps::v1::Deployment;
        use k8s_openapi::api::core::v1::Namespace;
        assert_eq!(
            GroupVersionResource::of::<Namespace>(),
            GroupVersionResource::new("", "v1", "namespaces")
        );
        assert_eq!(
            GroupVersionResource::of::<Deployment>(),
            GroupVersionResource::new("apps", "v1", "deployments")
        );
    }

    #[test]
    fn lookup_finds_labels() {
        let labels = [KeyValue::new("a", "1"), KeyValue::new("b", "2")];
        assert_eq!(lookup(&labels, "b"), Some("2"));
        assert_eq!(lookup(&labels, "c"), None);
    }

    #[test]
    fn strings_compare() {
        let words = [
            "",
            "a",
            "b",
            "ab",
            "topology.kubernetes.io/zone",
            "topology.kubernetes.io/zonE",
            "Topology.kubernetes.io/zone",
            "topology.kubernetes.io/zon",
            "12345678",
            "12345679",
            "123456789",
        ];
        for a in words {
            for b in words {
                assert_eq!(str_eq(a, b), a == b, "{a:?} {b:?}");
            }
        }
    }
}
