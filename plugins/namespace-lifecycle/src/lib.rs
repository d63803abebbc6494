//! Kubernetes' `NamespaceLifecycle` admission plugin (validating).
//!
//! * Objects can only be created, updated or connected to in a namespace that
//!   exists: otherwise `namespaces "<ns>" not found` (404).
//! * Nothing new can be created in a namespace being deleted (phase
//!   `Terminating`, or a deletion timestamp): `unable to create new content in
//!   namespace <ns> because it is being terminated` (403).
//! * The namespaces `default`, `kube-system` and `kube-public` cannot be
//!   deleted: `this namespace may not be deleted` (403).
//!
//! Needs `cluster-read` to look namespaces up.

use hortator_sdk::admission::{Admission, Operation, Request, Response};
use hortator_sdk::k8s::api::core::v1::Namespace;
use hortator_sdk::serde_json::Value;
use hortator_sdk::{GroupVersionResource, cluster};

/// Namespaces that always exist.
const IMMORTAL_NAMESPACES: [&str; 3] = ["default", "kube-system", "kube-public"];

struct NamespaceLifecycle;

impl Admission for NamespaceLifecycle {
    fn init(_config: Value) -> Result<Self, String> {
        Ok(NamespaceLifecycle)
    }

    fn admit(&self, request: &Request) -> Response {
        admit(request, |name| {
            cluster::get(&GroupVersionResource::of::<Namespace>(), "", name)
        })
    }
}

hortator_sdk::export_admission!(NamespaceLifecycle);

/// The decision, with namespaces looked up through `lookup`.
fn admit(
    request: &Request,
    lookup: impl FnOnce(&str) -> Result<Option<Namespace>, cluster::Error>,
) -> Response {
    let resource = &request.resource;
    if resource.group.is_empty() && resource.resource == "namespaces" {
        if request.operation == Operation::Delete
            && IMMORTAL_NAMESPACES.contains(&request.name.as_str())
        {
            return Response::deny("this namespace may not be deleted");
        }
        return Response::allow();
    }
    // Cluster-scoped objects, deletions and access reviews (whose answer
    // must not leak whether a namespace exists) are never held up.
    if request.namespace.is_empty()
        || request.operation == Operation::Delete
        || (resource.group == "authorization.k8s.io"
            && resource.resource == "localsubjectaccessreviews")
    {
        return Response::allow();
    }

    let namespace = match lookup(&request.namespace) {
        Ok(Some(namespace)) => namespace,
        Ok(None) => {
            return Response::deny(format!("namespaces \"{}\" not found", request.namespace))
                .with_code(404);
        }
        Err(cluster::Error::NotGranted) => {
            return Response::deny(
                "namespace-lifecycle needs cluster-read: set cluster-read = true in its plugin configuration",
            )
            .with_code(500);
        }
        Err(error) => {
            return Response::deny(format!(
                "namespace-lifecycle cannot look up namespace {}: {error}",
                request.namespace
            ))
            .with_code(500);
        }
    };

    let terminating = namespace.metadata.deletion_timestamp.is_some()
        || namespace
            .status
            .as_ref()
            .and_then(|status| status.phase.as_deref())
            == Some("Terminating");
    if request.operation == Operation::Create && terminating {
        return Response::deny(format!(
            "unable to create new content in namespace {} because it is being terminated",
            request.namespace
        ));
    }
    Response::allow()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hortator_sdk::admission::UserInfo;
    use hortator_sdk::serde_json::{from_value, json};

    fn request(
        operation: Operation,
        group: &str,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Request {
        Request {
            uid: "1".into(),
            operation,
            resource: GroupVersionResource::new(group, "v1", resource),
            sub_resource: String::new(),
            kind: String::new(),
            namespace: namespace.into(),
            name: name.into(),
            user_info: UserInfo {
                username: "admin".into(),
                uid: String::new(),
                groups: Vec::new(),
            },
            object: None,
            old_object: None,
            dry_run: false,
        }
    }

    fn namespace(value: Value) -> Result<Option<Namespace>, cluster::Error> {
        Ok(Some(from_value(value).unwrap()))
    }

    fn active() -> Result<Option<Namespace>, cluster::Error> {
        namespace(json!({"metadata": {"name": "team"}, "status": {"phase": "Active"}}))
    }

    fn unused(_: &str) -> Result<Option<Namespace>, cluster::Error> {
        panic!("no lookup expected")
    }

    #[test]
    fn creates_in_an_active_namespace() {
        let response = admit(
            &request(Operation::Create, "", "pods", "team", "p"),
            |name| {
                assert_eq!(name, "team");
                active()
            },
        );
        assert!(response.allowed);
    }

    #[test]
    fn missing_namespace_is_404() {
        for operation in [Operation::Create, Operation::Update] {
            let response = admit(&request(operation, "", "pods", "ghost", "p"), |_| Ok(None));
            assert!(!response.allowed);
            assert_eq!(response.code, 404);
            assert_eq!(response.reason, r#"namespaces "ghost" not found"#);
        }
    }

    #[test]
    fn terminating_namespace_refuses_creates_only() {
        let by_phase =
            || namespace(json!({"metadata": {"name": "team"}, "status": {"phase": "Terminating"}}));
        let by_timestamp = || {
            namespace(
                json!({"metadata": {"name": "team", "deletionTimestamp": "2026-01-01T00:00:00Z"}}),
            )
        };
        for lookup in [by_phase, by_timestamp] {
            let response = admit(
                &request(Operation::Create, "apps", "deployments", "team", "d"),
                |_| lookup(),
            );
            assert!(!response.allowed);
            assert_eq!(response.code, 403);
            assert_eq!(
                response.reason,
                "unable to create new content in namespace team because it is being terminated"
            );
            assert!(
                admit(&request(Operation::Update, "", "pods", "team", "p"), |_| {
                    lookup()
                })
                .allowed
            );
        }
    }

    #[test]
    fn immortal_namespaces() {
        for name in IMMORTAL_NAMESPACES {
            let response = admit(
                &request(Operation::Delete, "", "namespaces", "", name),
                unused,
            );
            assert!(!response.allowed);
            assert_eq!(response.code, 403);
            assert_eq!(response.reason, "this namespace may not be deleted");
        }
        assert!(
            admit(
                &request(Operation::Delete, "", "namespaces", "", "team"),
                unused
            )
            .allowed
        );
        assert!(
            admit(
                &request(Operation::Create, "", "namespaces", "", "team"),
                unused
            )
            .allowed
        );
    }

    #[test]
    fn exempt_requests() {
        assert!(admit(&request(Operation::Create, "", "nodes", "", "n1"), unused).allowed);
        assert!(
            admit(
                &request(Operation::Delete, "", "pods", "ghost", "p"),
                unused
            )
            .allowed
        );
        assert!(
            admit(
                &request(
                    Operation::Create,
                    "authorization.k8s.io",
                    "localsubjectaccessreviews",
                    "ghost",
                    ""
                ),
                unused
            )
            .allowed
        );
    }

    #[test]
    fn lookup_failures() {
        let response = admit(&request(Operation::Create, "", "pods", "team", "p"), |_| {
            Err(cluster::Error::NotGranted)
        });
        assert!(!response.allowed);
        assert_eq!(response.code, 500);
        assert!(
            response
                .reason
                .starts_with("namespace-lifecycle needs cluster-read")
        );

        let response = admit(&request(Operation::Create, "", "pods", "team", "p"), |_| {
            Err(cluster::Error::Failed("store down".into()))
        });
        assert_eq!(
            response.reason,
            "namespace-lifecycle cannot look up namespace team: cluster lookup failed: store down"
        );
    }
}
