//! The Kubernetes API model of Hortator: the resource registry, label and field selectors,
//! validation, strategic merge patch, field management for server-side apply, v1beta1
//! conversion, protobuf request bodies and server-side Table printing.
//!
//! Everything here is pure: no I/O, no async. The API server (`hortator-apiserver`) wires it to
//! HTTP and the store.

pub mod convert;
pub mod managed;
pub mod patch;
pub mod protobuf;
pub mod registry;
pub mod selector;
pub mod table;
pub mod validation;
