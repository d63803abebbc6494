//! Admission plugins: admit, deny or patch every API request the operator
//! routes to them.
//!
//! Implement [`Admission`] and export it with [`export_admission!`]. Mutating
//! plugins (configured as such by the operator) may return an RFC 6902 JSON
//! patch with [`Response::with_patch`]; validating plugins only allow or deny.
//!
//! [`export_admission!`]: crate::export_admission

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use crate::bindings::admission::hortator::plugin::admission_types::{
    AdmissionRequest as Request, AdmissionResponse as Response, Operation, UserInfo,
};

/// An admission plugin.
///
/// The host calls [`Admission::init`] once with the plugin's configuration,
/// then [`Admission::admit`] for every request. Calls never overlap.
pub trait Admission: Sized + 'static {
    /// Builds the plugin from its configuration: the plugin's TOML table as
    /// JSON, an empty object when there is none. An error refuses the plugin.
    fn init(config: Value) -> Result<Self, String>;

    /// Admits, denies or (for mutating plugins) patches one request.
    fn admit(&self, request: &Request) -> Response;
}

/// Exports a type implementing [`Admission`] as the plugin's `admission` world.
///
/// ```ignore
/// hortator_sdk::export_admission!(MyPlugin);
/// ```
///
/// The plugin's metadata is the package name and version of the crate that
/// invokes the macro, and [`SDK_VERSION`](crate::SDK_VERSION).
#[macro_export]
macro_rules! export_admission {
    ($plugin:ty) => {
        const _: () = {
            $crate::__plugin_instance!($plugin);

            struct HortatorAdmissionExport;

            impl $crate::__private::admission::Guest for HortatorAdmissionExport {
                $crate::__plugin_lifecycle!($plugin, $crate::admission::Admission);

                fn admit(request: $crate::admission::Request) -> $crate::admission::Response {
                    $crate::__private::with(&INSTANCE, |plugin| {
                        $crate::admission::Admission::admit(plugin, &request)
                    })
                }
            }

            $crate::__private::admission::export!(
                HortatorAdmissionExport with_types_in $crate::__private::admission
            );
        };
    };
}

/// Why [`Request::object`] or [`Request::old_object`] returned no object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectError {
    /// The request carries no such object: there is no new object on delete,
    /// and no old object on create.
    Missing(&'static str),
    /// The object's JSON did not decode into the requested type.
    Invalid {
        /// `"object"` or `"old object"`.
        which: &'static str,
        /// The decoder's message.
        message: String,
    },
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectError::Missing(which) => write!(f, "the request has no {which}"),
            ObjectError::Invalid { which, message } => {
                write!(f, "cannot decode the request's {which}: {message}")
            }
        }
    }
}

impl std::error::Error for ObjectError {}

impl From<ObjectError> for Response {
    /// Denies the request with code 400 (bad request) and the error's text.
    fn from(error: ObjectError) -> Self {
        Response::deny(error.to_string()).with_code(400)
    }
}

impl Request {
    /// Decodes the new object: a `k8s-openapi` type such as
    /// [`Pod`](crate::k8s::api::core::v1::Pod), any other `serde` type, or a
    /// [`serde_json::Value`].
    pub fn object<T: DeserializeOwned>(&self) -> Result<T, ObjectError> {
        decode(self.object.as_deref(), "object")
    }

    /// Decodes the current object of an update or delete, like
    /// [`Request::object`].
    pub fn old_object<T: DeserializeOwned>(&self) -> Result<T, ObjectError> {
        decode(self.old_object.as_deref(), "old object")
    }
}

fn decode<T: DeserializeOwned>(json: Option<&str>, which: &'static str) -> Result<T, ObjectError> {
    let json = json.ok_or(ObjectError::Missing(which))?;
    serde_json::from_str(json).map_err(|error| ObjectError::Invalid {
        which,
        message: error.to_string(),
    })
}

impl Response {
    /// Lets the request through.
    pub fn allow() -> Self {
        Response {
            allowed: true,
            reason: String::new(),
            code: 0,
            patch: None,
            warnings: Vec::new(),
        }
    }

    /// Refuses the request with code 403 (forbidden) and `reason`, which the
    /// client is shown.
    pub fn deny(reason: impl Into<String>) -> Self {
        Response {
            allowed: false,
            reason: reason.into(),
            code: 403,
            patch: None,
            warnings: Vec::new(),
        }
    }

    /// Sets the HTTP status of a denial, e.g. 404 or 422.
    pub fn with_code(mut self, code: u16) -> Self {
        self.code = code;
        self
    }

    /// Attaches a JSON patch to apply to the object (mutating plugins only).
    /// An empty list attaches no patch.
    pub fn with_patch(mut self, operations: Vec<PatchOp>) -> Self {
        self.patch = if operations.is_empty() {
            None
        } else {
            Some(
                serde_json::to_string(&operations)
                    .expect("a JSON patch of JSON values always serializes"),
            )
        };
        self
    }

    /// Attaches a patch given as text, unchecked: the host parses it.
    pub fn with_raw_patch(mut self, patch: impl Into<String>) -> Self {
        self.patch = Some(patch.into());
        self
    }

    /// Adds a warning, returned to the client as a `Warning:` header.
    pub fn warn(mut self, message: impl Into<String>) -> Self {
        self.warnings.push(message.into());
        self
    }
}

/// One operation of an RFC 6902 JSON patch. Paths are JSON pointers; build
/// them with [`json_pointer`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum PatchOp {
    /// Adds `value` at `path`, replacing an existing object member.
    Add {
        /// Where to add.
        path: String,
        /// What to add.
        value: Value,
    },
    /// Removes the value at `path`.
    Remove {
        /// What to remove.
        path: String,
    },
    /// Replaces the existing value at `path`.
    Replace {
        /// What to replace.
        path: String,
        /// The new value.
        value: Value,
    },
    /// Moves the value at `from` to `path`.
    Move {
        /// Where the value is now.
        from: String,
        /// Where it goes.
        path: String,
    },
    /// Copies the value at `from` to `path`.
    Copy {
        /// Where the value is.
        from: String,
        /// Where the copy goes.
        path: String,
    },
    /// Fails the whole patch unless the value at `path` equals `value`.
    Test {
        /// What to check.
        path: String,
        /// The expected value.
        value: Value,
    },
}

impl PatchOp {
    /// An `add` operation.
    pub fn add(path: impl Into<String>, value: impl Into<Value>) -> Self {
        PatchOp::Add {
            path: path.into(),
            value: value.into(),
        }
    }

    /// A `remove` operation.
    pub fn remove(path: impl Into<String>) -> Self {
        PatchOp::Remove { path: path.into() }
    }

    /// A `replace` operation.
    pub fn replace(path: impl Into<String>, value: impl Into<Value>) -> Self {
        PatchOp::Replace {
            path: path.into(),
            value: value.into(),
        }
    }
}

/// Builds a JSON pointer (RFC 6901) from path segments, escaping `~` and `/`:
/// `json_pointer(["metadata", "annotations", "example.com/x"])` is
/// `/metadata/annotations/example.com~1x`.
pub fn json_pointer<I, S>(segments: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut pointer = String::new();
    for segment in segments {
        pointer.push('/');
        pointer.push_str(&segment.as_ref().replace('~', "~0").replace('/', "~1"));
    }
    pointer
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GroupVersionResource;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    fn request(object: Option<&str>) -> Request {
        Request {
            uid: "u".into(),
            operation: Operation::Create,
            resource: GroupVersionResource::new("", "v1", "pods"),
            sub_resource: String::new(),
            kind: "Pod".into(),
            namespace: "default".into(),
            name: "p".into(),
            user_info: UserInfo {
                username: "admin".into(),
                uid: String::new(),
                groups: Vec::new(),
            },
            object: object.map(str::to_owned),
            old_object: None,
            dry_run: false,
        }
    }

    #[test]
    fn decodes_typed_and_untyped_objects() {
        let request = request(Some(
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c"}]}}"#,
        ));
        let pod: Pod = request.object().unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("p"));
        let value: Value = request.object().unwrap();
        assert_eq!(value["spec"]["containers"][0]["name"], "c");
        assert_eq!(
            request.old_object::<Value>(),
            Err(ObjectError::Missing("old object"))
        );
    }

    #[test]
    fn undecodable_object_denies_with_400() {
        let request = request(Some(r#"{"spec": 3}"#));
        let error = request.object::<Pod>().unwrap_err();
        assert!(matches!(
            error,
            ObjectError::Invalid {
                which: "object",
                ..
            }
        ));
        let response = Response::from(error);
        assert!(!response.allowed);
        assert_eq!(response.code, 400);
        assert!(
            response
                .reason
                .starts_with("cannot decode the request's object: ")
        );
    }

    #[test]
    fn response_builders() {
        let allowed = Response::allow().warn("careful");
        assert!(allowed.allowed);
        assert_eq!(allowed.warnings, vec!["careful".to_owned()]);
        assert_eq!(allowed.patch, None);

        let denied = Response::deny("no").with_code(404);
        assert!(!denied.allowed);
        assert_eq!((denied.reason.as_str(), denied.code), ("no", 404));
        assert_eq!(Response::deny("no").code, 403);

        assert_eq!(Response::allow().with_patch(Vec::new()).patch, None);
        assert_eq!(
            Response::allow()
                .with_raw_patch("nonsense")
                .patch
                .as_deref(),
            Some("nonsense")
        );
    }

    #[test]
    fn patch_serializes_as_rfc6902() {
        let response = Response::allow().with_patch(vec![
            PatchOp::add("/metadata/labels", json!({"a": "b"})),
            PatchOp::remove("/spec/x"),
            PatchOp::replace("/spec/y", 3),
            PatchOp::Move {
                from: "/a".into(),
                path: "/b".into(),
            },
            PatchOp::Test {
                path: "/c".into(),
                value: Value::Null,
            },
        ]);
        let patch: Value = serde_json::from_str(response.patch.as_deref().unwrap()).unwrap();
        assert_eq!(
            patch,
            json!([
                {"op": "add", "path": "/metadata/labels", "value": {"a": "b"}},
                {"op": "remove", "path": "/spec/x"},
                {"op": "replace", "path": "/spec/y", "value": 3},
                {"op": "move", "from": "/a", "path": "/b"},
                {"op": "test", "path": "/c", "value": null},
            ])
        );
    }

    #[test]
    fn json_pointer_escapes() {
        assert_eq!(
            json_pointer(["metadata", "annotations", "kubernetes.io/limit-ranger"]),
            "/metadata/annotations/kubernetes.io~1limit-ranger"
        );
        assert_eq!(json_pointer(["a~b", "0"]), "/a~0b/0");
        assert_eq!(json_pointer(Vec::<String>::new()), "");
    }
}
