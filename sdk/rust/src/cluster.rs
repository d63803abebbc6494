//! Read-only lookups into the cluster, for admission plugins.
//!
//! The operator grants them per plugin (`cluster-read = true` in the plugin's
//! configuration); without the grant every lookup fails with
//! [`Error::NotGranted`]. Only the `admission` world imports these functions:
//! calling them from another kind of plugin yields a component the host
//! cannot instantiate.

use std::fmt;

use serde::de::DeserializeOwned;

use crate::GroupVersionResource;
use crate::bindings::admission::hortator::plugin::cluster as raw;

/// Why a lookup failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The operator did not grant this plugin cluster reads.
    NotGranted,
    /// The cluster does not serve this resource.
    UnknownResource(String),
    /// The lookup failed in the host (store unavailable, bad selector ...).
    Failed(String),
    /// An object did not decode into the requested type.
    Decode(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotGranted => f.write_str("cluster reads are not granted to this plugin"),
            Error::UnknownResource(resource) => write!(f, "unknown resource {resource}"),
            Error::Failed(message) => write!(f, "cluster lookup failed: {message}"),
            Error::Decode(message) => write!(f, "cannot decode a looked-up object: {message}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<raw::LookupError> for Error {
    fn from(error: raw::LookupError) -> Self {
        match error {
            raw::LookupError::NotGranted => Error::NotGranted,
            raw::LookupError::UnknownResource(resource) => Error::UnknownResource(resource),
            raw::LookupError::Failed(message) => Error::Failed(message),
        }
    }
}

/// Fetches one object: `Ok(None)` if it does not exist. `namespace` is empty
/// for cluster-scoped resources. `T` is a `k8s-openapi` type, any other
/// `serde` type or a [`serde_json::Value`].
///
/// ```no_run
/// use hortator_sdk::GroupVersionResource;
/// use hortator_sdk::k8s::api::core::v1::Namespace;
///
/// let namespace: Option<Namespace> =
///     hortator_sdk::cluster::get(&GroupVersionResource::of::<Namespace>(), "", "default")?;
/// # Ok::<(), hortator_sdk::cluster::Error>(())
/// ```
pub fn get<T: DeserializeOwned>(
    resource: &GroupVersionResource,
    namespace: &str,
    name: &str,
) -> Result<Option<T>, Error> {
    raw::get(resource, namespace, name)?
        .map(|json| decode(&json))
        .transpose()
}

/// Lists the objects of a resource in a namespace (empty: all namespaces)
/// that match a label selector in Kubernetes syntax (empty: all objects).
pub fn list<T: DeserializeOwned>(
    resource: &GroupVersionResource,
    namespace: &str,
    label_selector: &str,
) -> Result<Vec<T>, Error> {
    raw::list(resource, namespace, label_selector)?
        .iter()
        .map(|json| decode(json))
        .collect()
}

fn decode<T: DeserializeOwned>(json: &str) -> Result<T, Error> {
    serde_json::from_str(json).map_err(|error| Error::Decode(error.to_string()))
}
