//! Kubernetes' `PodSecurity` admission (validating), enforcing the
//! `baseline` level of the Pod Security Standards on pods.
//!
//! A pod is refused if it sets, on any container, init container or
//! ephemeral container, `securityContext.privileged=true`, a host port, or a
//! capability outside the baseline set; or if it uses the host's network,
//! PID or IPC namespace or a `hostPath` volume. The message names every
//! violation, as Kubernetes does:
//!
//! ```text
//! violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true), privileged (container "c" must not set securityContext.privileged=true)
//! ```
//!
//! Namespaces labelled `pod-security.kubernetes.io/enforce=privileged`, and
//! those listed in the configuration's `exempt-namespaces`, are not checked.
//!
//! Host ports are allowed unless the configuration sets
//! `"forbid-host-ports": true`: Kubernetes' baseline allows a list of known
//! ports, and Hortator's reference workloads (the seed talk's pods) publish
//! theirs on the host.
//! Updates are checked only when they change something the checks look at
//! (container images, the number of containers), as in Kubernetes.
//!
//! Needs `cluster-read` to read namespace labels.

use std::collections::BTreeSet;

use hortator_sdk::admission::{Admission, Operation, Request, Response};
use hortator_sdk::k8s::api::core::v1::Namespace;
use hortator_sdk::serde_json::Value;
use hortator_sdk::{GroupVersionResource, cluster};

use view::{Container, NamespaceView, Pod, PodSpec};

/// The label that selects the enforced level.
const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";
/// The label that pins the enforced level's version.
const ENFORCE_VERSION_LABEL: &str = "pod-security.kubernetes.io/enforce-version";

/// The capabilities baseline allows containers to add.
const BASELINE_CAPABILITIES: [&str; 13] = [
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

struct PodSecurity {
    exempt_namespaces: BTreeSet<String>,
    forbid_host_ports: bool,
    /// The resource of namespaces, built once.
    namespaces: GroupVersionResource,
}

impl Admission for PodSecurity {
    fn init(config: Value) -> Result<Self, String> {
        let exempt_namespaces = match config.get("exempt-namespaces") {
            None => BTreeSet::new(),
            Some(names) => names
                .as_array()
                .and_then(|names| {
                    names
                        .iter()
                        .map(|name| name.as_str().map(str::to_owned))
                        .collect()
                })
                .ok_or("exempt-namespaces must be a list of namespace names")?,
        };
        let forbid_host_ports = match config.get("forbid-host-ports") {
            None => false,
            Some(value) => value
                .as_bool()
                .ok_or("forbid-host-ports must be true or false")?,
        };
        Ok(PodSecurity {
            exempt_namespaces,
            forbid_host_ports,
            namespaces: GroupVersionResource::of::<Namespace>(),
        })
    }

    fn admit(&self, request: &Request) -> Response {
        self.decide(request, |name| cluster::get(&self.namespaces, "", name))
    }
}

hortator_sdk::export_admission!(PodSecurity);

impl PodSecurity {
    /// The decision, with the pod's namespace looked up through `lookup`.
    fn decide(
        &self,
        request: &Request,
        lookup: impl FnOnce(&str) -> Result<Option<NamespaceView>, cluster::Error>,
    ) -> Response {
        let is_pod = request.resource.group.is_empty()
            && request.resource.resource == "pods"
            && request.sub_resource.is_empty();
        if !is_pod
            || !matches!(request.operation, Operation::Create | Operation::Update)
            || self.exempt_namespaces.contains(&request.namespace)
        {
            return Response::allow();
        }
        let pod: Pod = match request.object() {
            Ok(pod) => pod,
            Err(error) => return error.into(),
        };
        if request.operation == Operation::Update
            && let Ok(old) = request.old_object::<Pod>()
            && !significant_update(&old, &pod)
        {
            return Response::allow();
        }

        let labels = match lookup(&request.namespace) {
            Ok(namespace) => namespace.and_then(|namespace| namespace.metadata.labels),
            Err(cluster::Error::NotGranted) => {
                return Response::deny(
                    "pod-security needs cluster-read: set cluster-read = true in its plugin configuration",
                )
                .with_code(500);
            }
            Err(error) => {
                return Response::deny(format!(
                    "pod-security cannot look up namespace {}: {error}",
                    request.namespace
                ))
                .with_code(500);
            }
        };
        let label = |key: &str| labels.as_ref().and_then(|labels| labels.get(key));
        if label(ENFORCE_LABEL).is_some_and(|level| level == "privileged") {
            return Response::allow();
        }
        let version = label(ENFORCE_VERSION_LABEL).map_or("latest", String::as_str);

        let violations = pod
            .spec
            .as_ref()
            .map(|spec| baseline_violations(spec, self.forbid_host_ports))
            .unwrap_or_default();
        if violations.is_empty() {
            return Response::allow();
        }
        let details: Vec<String> = violations
            .iter()
            .map(|(reason, detail)| format!("{reason} ({detail})"))
            .collect();
        Response::deny(format!(
            "violates PodSecurity \"baseline:{version}\": {}",
            details.join(", ")
        ))
    }
}

/// Whether an update changes something the checks look at: Kubernetes only
/// re-checks a pod when containers come or go or an image changes.
fn significant_update(old: &Pod, new: &Pod) -> bool {
    let (Some(old), Some(new)) = (&old.spec, &new.spec) else {
        return true;
    };
    let images = |containers: &[Container]| -> Vec<Option<String>> {
        containers.iter().map(|c| c.image.clone()).collect()
    };
    images(&old.containers) != images(&new.containers)
        || images(&old.init_containers) != images(&new.init_containers)
        || old.ephemeral_containers.len() != new.ephemeral_containers.len()
}

/// What the checks need of a container, an init container or an ephemeral
/// container.
struct ContainerView<'a> {
    name: &'a str,
    security_context: Option<&'a view::SecurityContext>,
    host_ports: Vec<i32>,
}

/// Init containers, containers, then ephemeral containers, as Kubernetes
/// visits them.
fn containers(spec: &PodSpec) -> Vec<ContainerView<'_>> {
    spec.init_containers
        .iter()
        .chain(&spec.containers)
        .chain(&spec.ephemeral_containers)
        .map(|c| ContainerView {
            name: &c.name,
            security_context: c.security_context.as_ref(),
            host_ports: c
                .ports
                .iter()
                .filter_map(|port| port.host_port)
                .filter(|port| *port != 0)
                .collect(),
        })
        .collect()
}

/// The baseline violations as (reason, detail), in the order of Kubernetes'
/// check identifiers.
fn baseline_violations(spec: &PodSpec, forbid_host_ports: bool) -> Vec<(&'static str, String)> {
    let containers = containers(spec);
    let mut violations = Vec::new();

    // capabilities_baseline
    let mut forbidden = BTreeSet::new();
    let bad: Vec<&str> = containers
        .iter()
        .filter(|c| {
            let added = c
                .security_context
                .and_then(|sc| sc.capabilities.as_ref())
                .map(|caps| caps.add.as_slice());
            let mut valid = true;
            for capability in added.into_iter().flatten() {
                if !BASELINE_CAPABILITIES.contains(&capability.as_str()) {
                    forbidden.insert(capability.as_str());
                    valid = false;
                }
            }
            !valid
        })
        .map(|c| c.name)
        .collect();
    if !bad.is_empty() {
        violations.push((
            "non-default capabilities",
            format!(
                "{} {} must not include {} in securityContext.capabilities.add",
                pluralize("container", "containers", bad.len()),
                join_quoted(bad),
                join_quoted(forbidden),
            ),
        ));
    }

    // hostNamespaces
    let namespaces: Vec<&str> = [
        (spec.host_network, "hostNetwork=true"),
        (spec.host_pid, "hostPID=true"),
        (spec.host_ipc, "hostIPC=true"),
    ]
    .into_iter()
    .filter(|(set, _)| *set == Some(true))
    .map(|(_, detail)| detail)
    .collect();
    if !namespaces.is_empty() {
        violations.push(("host namespaces", namespaces.join(", ")));
    }

    // hostPathVolumes
    let host_paths: Vec<&str> = spec
        .volumes
        .iter()
        .filter(|volume| volume.host_path.is_some())
        .map(|volume| volume.name.as_str())
        .collect();
    if !host_paths.is_empty() {
        violations.push((
            "hostPath volumes",
            format!(
                "{} {}",
                pluralize("volume", "volumes", host_paths.len()),
                join_quoted(host_paths)
            ),
        ));
    }

    // hostPorts: the ports sort as text, like Kubernetes' string set.
    let ports: BTreeSet<String> = containers
        .iter()
        .flat_map(|c| c.host_ports.iter().map(i32::to_string))
        .collect();
    let bad: Vec<&str> = containers
        .iter()
        .filter(|c| !c.host_ports.is_empty())
        .map(|c| c.name)
        .collect();
    if forbid_host_ports && !bad.is_empty() {
        violations.push((
            "hostPort",
            format!(
                "{} {} {} {} {}",
                pluralize("container", "containers", bad.len()),
                join_quoted(bad.iter().copied()),
                pluralize("uses", "use", bad.len()),
                pluralize("hostPort", "hostPorts", ports.len()),
                ports.into_iter().collect::<Vec<_>>().join(", "),
            ),
        ));
    }

    // privileged
    let bad: Vec<&str> = containers
        .iter()
        .filter(|c| c.security_context.and_then(|sc| sc.privileged) == Some(true))
        .map(|c| c.name)
        .collect();
    if !bad.is_empty() {
        violations.push((
            "privileged",
            format!(
                "{} {} must not set securityContext.privileged=true",
                pluralize("container", "containers", bad.len()),
                join_quoted(bad)
            ),
        ));
    }

    violations
}

fn pluralize(singular: &'static str, plural: &'static str, count: usize) -> &'static str {
    if count == 1 { singular } else { plural }
}

/// `"a", "b"`
fn join_quoted<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    items
        .into_iter()
        .map(|item| format!("{item:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the plugin reads of a Pod and a Namespace: private `serde` views,
/// much cheaper to decode than the `k8s-openapi` types. Like those, they
/// ignore unknown fields and take `null` for absent.
mod view {
    use std::collections::BTreeMap;

    // The SDK's `serde` (with `derive`), reached through `k8s-openapi`'s
    // re-export so that this crate needs no dependency of its own.
    use hortator_sdk::k8s::serde::de::IgnoredAny;
    use hortator_sdk::k8s::serde::{Deserialize, Deserializer};

    #[derive(Default, Deserialize)]
    #[serde(crate = "hortator_sdk::k8s::serde", default, rename_all = "camelCase")]
    pub struct Pod {
        pub spec: Option<PodSpec>,
    }

    #[derive(Default, Deserialize)]
    #[serde(crate = "hortator_sdk::k8s::serde", default, rename_all = "camelCase")]
    pub struct PodSpec {
        #[serde(deserialize_with = "nullable")]
        pub containers: Vec<Container>,
        #[serde(deserialize_with = "nullable")]
        pub init_containers: Vec<Container>,
        /// Ephemeral containers carry the same fields as far as the checks go.
        #[serde(deserialize_with = "nullable")]
        pub ephemeral_containers: Vec<Container>,
        pub host_network: Option<bool>,
        #[serde(rename = "hostPID")]
        pub host_pid: Option<bool>,
        #[serde(rename = "hostIPC")]
        pub host_ipc: Option<bool>,
        #[serde(deserialize_with = "nullable")]
        pub volumes: Vec<Volume>,
    }

    #[derive(Default, Deserialize)]
    #[serde(crate = "hortator_sdk::k8s::serde", default, rename_all = "camelCase")]
    pub struct Container {
        #[serde(deserialize_with = "nullable")]
        pub name: String,
        pub image: Option<String>,
        pub security_context: Option<SecurityContext>,
        #[serde(deserialize_with = "nullable")]
        pub ports: Vec<ContainerPort>,
    }

    #[derive(Default, Deserialize)]
    #[serde(crate = "hortator_sdk::k8s::serde", default, rename_all = "camelCase")]
    pub struct SecurityContext {
        pub privileged: Option<bool>,
        pub capabilities: Option<Capabilities>,
    }

    #[derive(Default, Deserialize)]
    #[serde(crate = "hortator_sdk::k8s::serde", default, rename_all = "camelCase")]
    pub struct Capabilities {
        #[serde(deserialize_with = "nullable")]
        pub add: Vec<String>,
    }

    #[derive(Default, Deserialize)]
    #[serde(crate = "hortator_sdk::k8s::serde", default, rename_all = "camelCase")]
    pub struct ContainerPort {
        pub host_port: Option<i32>,
    }

    #[derive(Default, Deserialize)]
    #[serde(crate = "hortator_sdk::k8s::serde", default, rename_all = "camelCase")]
    pub struct Volume {
        #[serde(deserialize_with = "nullable")]
        pub name: String,
        /// Only its presence matters.
        pub host_path: Option<IgnoredAny>,
    }

    #[derive(Default, Deserialize)]
    #[serde(crate = "hortator_sdk::k8s::serde", default, rename_all = "camelCase")]
    pub struct NamespaceView {
        #[serde(deserialize_with = "nullable")]
        pub metadata: Metadata,
    }

    #[derive(Default, Deserialize)]
    #[serde(crate = "hortator_sdk::k8s::serde", default, rename_all = "camelCase")]
    pub struct Metadata {
        pub labels: Option<BTreeMap<String, String>>,
    }

    /// `null` decodes as the default, as in `k8s-openapi`.
    fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + Default,
    {
        Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hortator_sdk::admission::UserInfo;
    use hortator_sdk::serde_json::{from_value, json};

    fn request(operation: Operation, pod: Value, old: Option<Value>) -> Request {
        Request {
            uid: "1".into(),
            operation,
            resource: GroupVersionResource::new("", "v1", "pods"),
            sub_resource: String::new(),
            kind: "Pod".into(),
            namespace: "team".into(),
            name: "p".into(),
            user_info: UserInfo {
                username: "admin".into(),
                uid: String::new(),
                groups: Vec::new(),
            },
            object: Some(pod.to_string()),
            old_object: old.map(|old| old.to_string()),
            dry_run: false,
        }
    }

    fn plugin(config: Value) -> PodSecurity {
        PodSecurity::init(config).unwrap()
    }

    fn namespace(labels: Value) -> Result<Option<NamespaceView>, cluster::Error> {
        Ok(Some(
            from_value(json!({"metadata": {"name": "team", "labels": labels}})).unwrap(),
        ))
    }

    fn unlabelled(_: &str) -> Result<Option<NamespaceView>, cluster::Error> {
        namespace(json!({}))
    }

    fn pod(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
    }

    fn reason(spec: Value) -> String {
        let response = plugin(json!({"forbid-host-ports": true}))
            .decide(&request(Operation::Create, pod(spec), None), unlabelled);
        assert!(!response.allowed);
        assert_eq!(response.code, 403);
        response.reason
    }

    #[test]
    fn allows_a_baseline_pod() {
        let spec = json!({"containers": [{"name": "c", "image": "nginx",
            "ports": [{"containerPort": 80}],
            "securityContext": {"privileged": false, "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}}}],
            "volumes": [{"name": "data", "emptyDir": {}}]});
        let response =
            plugin(json!({})).decide(&request(Operation::Create, pod(spec), None), unlabelled);
        assert!(response.allowed, "{}", response.reason);
    }

    #[test]
    fn privileged_and_host_namespaces() {
        assert_eq!(
            reason(
                json!({"hostNetwork": true, "containers": [{"name": "c", "securityContext": {"privileged": true}}]})
            ),
            r#"violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true), privileged (container "c" must not set securityContext.privileged=true)"#
        );
    }

    #[test]
    fn every_check_with_plurals() {
        let spec = json!({
            "hostPID": true,
            "hostIPC": true,
            "initContainers": [{"name": "init", "securityContext": {"privileged": true}}],
            "containers": [
                {"name": "a", "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 443, "hostPort": 443}],
                 "securityContext": {"capabilities": {"add": ["SYS_ADMIN", "CHOWN"]}}},
                {"name": "b", "ports": [{"containerPort": 53, "hostPort": 53, "protocol": "UDP"}],
                 "securityContext": {"privileged": true, "capabilities": {"add": ["NET_ADMIN"]}}},
            ],
            "ephemeralContainers": [{"name": "debug", "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}}}],
            "volumes": [{"name": "root", "hostPath": {"path": "/"}}, {"name": "logs", "hostPath": {"path": "/var/log"}}],
        });
        assert_eq!(
            reason(spec),
            concat!(
                r#"violates PodSecurity "baseline:latest": "#,
                r#"non-default capabilities (containers "a", "b", "debug" must not include "NET_ADMIN", "SYS_ADMIN", "SYS_PTRACE" in securityContext.capabilities.add), "#,
                r#"host namespaces (hostPID=true, hostIPC=true), "#,
                r#"hostPath volumes (volumes "root", "logs"), "#,
                r#"hostPort (containers "a", "b" use hostPorts 443, 53, 8080), "#,
                r#"privileged (containers "init", "b" must not set securityContext.privileged=true)"#,
            )
        );
    }

    #[test]
    fn nulls_are_absent_and_unknown_fields_ignored() {
        let spec = json!({"hostNetwork": null, "initContainers": null, "ephemeralContainers": null,
            "volumes": [{"name": "v", "hostPath": null, "emptyDir": {}}],
            "containers": [{"name": "c", "image": null, "ports": null, "resources": {"limits": {"cpu": "1"}},
                "securityContext": {"privileged": null, "capabilities": {"add": null, "drop": ["ALL"]}}}]});
        let response = plugin(json!({"forbid-host-ports": true})).decide(
            &request(Operation::Create, pod(spec), None),
            |_| {
                Ok(Some(
                    from_value(json!({"metadata": {"labels": null}})).unwrap(),
                ))
            },
        );
        assert!(response.allowed, "{}", response.reason);

        let invalid =
            pod(json!({"containers": [{"name": "c", "securityContext": {"privileged": "yes"}}]}));
        let response = plugin(json!({})).decide(&request(Operation::Create, invalid, None), |_| {
            panic!("no lookup")
        });
        assert_eq!(response.code, 400);
    }

    #[test]
    fn single_host_port() {
        assert_eq!(
            reason(
                json!({"containers": [{"name": "web", "ports": [{"containerPort": 80, "hostPort": 80}]}]})
            ),
            r#"violates PodSecurity "baseline:latest": hostPort (container "web" uses hostPort 80)"#
        );
    }

    #[test]
    fn host_ports_are_allowed_by_default() {
        let spec = json!({"containers": [{"name": "web", "ports": [{"containerPort": 80, "hostPort": 80}]}]});
        let response =
            plugin(json!({})).decide(&request(Operation::Create, pod(spec), None), unlabelled);
        assert!(response.allowed, "{}", response.reason);
        assert!(PodSecurity::init(json!({"forbid-host-ports": "yes"})).is_err());
    }

    #[test]
    fn privileged_namespaces_and_exemptions() {
        let spec = pod(json!({"hostNetwork": true, "containers": [{"name": "c"}]}));
        let privileged = plugin(json!({}))
            .decide(&request(Operation::Create, spec.clone(), None), |_| {
                namespace(json!({ENFORCE_LABEL: "privileged"}))
            });
        assert!(privileged.allowed);

        let pinned = plugin(json!({}))
            .decide(&request(Operation::Create, spec.clone(), None), |_| {
                namespace(json!({ENFORCE_LABEL: "baseline", ENFORCE_VERSION_LABEL: "v1.33"}))
            });
        assert!(
            pinned
                .reason
                .starts_with(r#"violates PodSecurity "baseline:v1.33": "#)
        );

        let exempt = plugin(json!({"exempt-namespaces": ["kube-system", "team"]}));
        assert!(
            exempt
                .decide(&request(Operation::Create, spec, None), |_| panic!(
                    "no lookup"
                ))
                .allowed
        );
        assert!(PodSecurity::init(json!({"exempt-namespaces": "team"})).is_err());
        assert!(PodSecurity::init(json!({"exempt-namespaces": [1]})).is_err());
    }

    #[test]
    fn updates_are_checked_when_significant() {
        let bad = |image: &str| {
            pod(json!({"hostNetwork": true, "containers": [{"name": "c", "image": image}]}))
        };
        let relabel = request(Operation::Update, bad("nginx:1"), Some(bad("nginx:1")));
        assert!(plugin(json!({})).decide(&relabel, unlabelled).allowed);
        let new_image = request(Operation::Update, bad("nginx:2"), Some(bad("nginx:1")));
        assert!(!plugin(json!({})).decide(&new_image, unlabelled).allowed);
    }

    #[test]
    fn other_requests_pass() {
        let spec = pod(json!({"hostNetwork": true, "containers": [{"name": "c"}]}));
        let mut status = request(Operation::Update, spec.clone(), None);
        status.sub_resource = "status".into();
        assert!(
            plugin(json!({}))
                .decide(&status, |_| panic!("no lookup"))
                .allowed
        );
        let mut delete = request(Operation::Delete, spec, None);
        delete.object = None;
        assert!(
            plugin(json!({}))
                .decide(&delete, |_| panic!("no lookup"))
                .allowed
        );
    }

    #[test]
    fn lookup_failures() {
        let spec = pod(json!({"containers": [{"name": "c"}]}));
        let response = plugin(json!({})).decide(&request(Operation::Create, spec, None), |_| {
            Err(cluster::Error::NotGranted)
        });
        assert!(!response.allowed);
        assert_eq!(response.code, 500);
        assert!(
            response
                .reason
                .starts_with("pod-security needs cluster-read")
        );
    }
}
