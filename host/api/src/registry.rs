//! The resource registry: every resource the API server serves, with its group/version/kind,
//! plural and singular names, short names, scope, categories, verbs and subresources.

use serde_json::{Value, json};

/// Whether objects of a resource live in a namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Objects belong to a namespace.
    Namespaced,
    /// Objects are cluster-wide.
    Cluster,
}

/// A subresource of a resource (`pods/status`, `replicationcontrollers/scale`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subresource {
    /// The subresource name after the object name in the URL.
    pub name: &'static str,
    /// Group of the kind it answers with.
    pub group: &'static str,
    /// Version of the kind it answers with.
    pub version: &'static str,
    /// Kind it answers with.
    pub kind: &'static str,
    /// Verbs it supports.
    pub verbs: &'static [&'static str],
}

/// One served resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group ("" for core).
    pub group: &'static str,
    /// API version within the group.
    pub version: &'static str,
    /// Kind of the objects.
    pub kind: &'static str,
    /// Lower-case plural resource name used in URLs.
    pub plural: &'static str,
    /// Lower-case singular name.
    pub singular: &'static str,
    /// Short names (`po`, `svc`, ...).
    pub short_names: &'static [&'static str],
    /// Namespaced or cluster-scoped.
    pub scope: Scope,
    /// Categories (`all`).
    pub categories: &'static [&'static str],
    /// Verbs on the resource itself.
    pub verbs: &'static [&'static str],
    /// Subresources.
    pub subresources: &'static [Subresource],
    /// Served only for legacy clients (v1beta1); objects are stored as `storage_kind` in v1.
    pub legacy: bool,
}

impl ResourceInfo {
    /// `group/version`, or just `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether objects live in namespaces.
    pub fn namespaced(&self) -> bool {
        self.scope == Scope::Namespaced
    }

    /// The resource whose storage this resource shares (itself, except for legacy resources).
    pub fn storage(&self) -> &'static ResourceInfo {
        if self.legacy {
            let plural = match self.plural {
                "minions" => "nodes",
                other => other,
            };
            if let Some(info) = find("", "v1", plural) {
                return info;
            }
        }
        find(self.group, self.version, self.plural).unwrap_or(&RESOURCES[0])
    }

    /// The subresource with this name.
    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// The storage key prefix of this resource: `/registry/<group>/<plural>/`.
    pub fn key_prefix(&self) -> String {
        let storage = self.storage();
        let group = if storage.group.is_empty() {
            "core"
        } else {
            storage.group
        };
        format!("/registry/{group}/{}/", storage.plural)
    }

    /// The storage key of an object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced() => format!("{}{ns}/{name}", self.key_prefix()),
            _ => format!("{}{name}", self.key_prefix()),
        }
    }
}

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const STATUS_VERBS: &[&str] = &["get", "patch", "update"];
const LEGACY_VERBS: &[&str] = &["create", "delete", "get", "list", "update", "watch"];

const fn status(group: &'static str, version: &'static str, kind: &'static str) -> Subresource {
    Subresource {
        name: "status",
        group,
        version,
        kind,
        verbs: STATUS_VERBS,
    }
}

const SCALE: Subresource = Subresource {
    name: "scale",
    group: "autoscaling",
    version: "v1",
    kind: "Scale",
    verbs: STATUS_VERBS,
};

/// Every served resource. The first entry of a group/version is listed first in discovery.
pub static RESOURCES: &[ResourceInfo] = &[
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "Pod",
        plural: "pods",
        singular: "pod",
        short_names: &["po"],
        scope: Scope::Namespaced,
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: &[
            status("", "v1", "Pod"),
            Subresource {
                name: "binding",
                group: "",
                version: "v1",
                kind: "Binding",
                verbs: &["create"],
            },
            Subresource {
                name: "exec",
                group: "",
                version: "v1",
                kind: "PodExecOptions",
                verbs: &["create", "get"],
            },
            Subresource {
                name: "log",
                group: "",
                version: "v1",
                kind: "Pod",
                verbs: &["get"],
            },
        ],
        legacy: false,
    },
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "Service",
        plural: "services",
        singular: "service",
        short_names: &["svc"],
        scope: Scope::Namespaced,
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: &[status("", "v1", "Service")],
        legacy: false,
    },
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "Endpoints",
        plural: "endpoints",
        singular: "endpoints",
        short_names: &["ep"],
        scope: Scope::Namespaced,
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        legacy: false,
    },
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "ReplicationController",
        plural: "replicationcontrollers",
        singular: "replicationcontroller",
        short_names: &["rc"],
        scope: Scope::Namespaced,
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: &[status("", "v1", "ReplicationController"), SCALE],
        legacy: false,
    },
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "Node",
        plural: "nodes",
        singular: "node",
        short_names: &["no"],
        scope: Scope::Cluster,
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[
            status("", "v1", "Node"),
            Subresource {
                name: "proxy",
                group: "",
                version: "v1",
                kind: "NodeProxyOptions",
                verbs: &["get"],
            },
        ],
        legacy: false,
    },
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        singular: "namespace",
        short_names: &["ns"],
        scope: Scope::Cluster,
        categories: &[],
        verbs: &[
            "create", "delete", "get", "list", "patch", "update", "watch",
        ],
        subresources: &[
            status("", "v1", "Namespace"),
            Subresource {
                name: "finalize",
                group: "",
                version: "v1",
                kind: "Namespace",
                verbs: &["update"],
            },
        ],
        legacy: false,
    },
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "Event",
        plural: "events",
        singular: "event",
        short_names: &["ev"],
        scope: Scope::Namespaced,
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        legacy: false,
    },
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "LimitRange",
        plural: "limitranges",
        singular: "limitrange",
        short_names: &["limits"],
        scope: Scope::Namespaced,
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        legacy: false,
    },
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        singular: "configmap",
        short_names: &["cm"],
        scope: Scope::Namespaced,
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        legacy: false,
    },
    ResourceInfo {
        group: "",
        version: "v1",
        kind: "Secret",
        plural: "secrets",
        singular: "secret",
        short_names: &[],
        scope: Scope::Namespaced,
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        legacy: false,
    },
    ResourceInfo {
        group: "apps",
        version: "v1",
        kind: "Deployment",
        plural: "deployments",
        singular: "deployment",
        short_names: &["deploy"],
        scope: Scope::Namespaced,
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: &[status("apps", "v1", "Deployment"), SCALE],
        legacy: false,
    },
    ResourceInfo {
        group: "apps",
        version: "v1",
        kind: "ReplicaSet",
        plural: "replicasets",
        singular: "replicaset",
        short_names: &["rs"],
        scope: Scope::Namespaced,
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: &[status("apps", "v1", "ReplicaSet"), SCALE],
        legacy: false,
    },
    ResourceInfo {
        group: "coordination.k8s.io",
        version: "v1",
        kind: "Lease",
        plural: "leases",
        singular: "lease",
        short_names: &[],
        scope: Scope::Namespaced,
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        legacy: false,
    },
    ResourceInfo {
        group: "",
        version: "v1beta1",
        kind: "Pod",
        plural: "pods",
        singular: "pod",
        short_names: &[],
        scope: Scope::Namespaced,
        categories: &[],
        verbs: LEGACY_VERBS,
        subresources: &[],
        legacy: true,
    },
    ResourceInfo {
        group: "",
        version: "v1beta1",
        kind: "Service",
        plural: "services",
        singular: "service",
        short_names: &[],
        scope: Scope::Namespaced,
        categories: &[],
        verbs: LEGACY_VERBS,
        subresources: &[],
        legacy: true,
    },
    ResourceInfo {
        group: "",
        version: "v1beta1",
        kind: "ReplicationController",
        plural: "replicationcontrollers",
        singular: "replicationcontroller",
        short_names: &[],
        scope: Scope::Namespaced,
        categories: &[],
        verbs: LEGACY_VERBS,
        subresources: &[],
        legacy: true,
    },
    ResourceInfo {
        group: "",
        version: "v1beta1",
        kind: "Minion",
        plural: "minions",
        singular: "minion",
        short_names: &["minion"],
        scope: Scope::Cluster,
        categories: &[],
        verbs: &["get", "list", "watch"],
        subresources: &[],
        legacy: true,
    },
];

/// A served group with its versions, preferred first.
#[derive(Clone, Copy, Debug)]
pub struct GroupInfo {
    /// Group name ("" for core).
    pub name: &'static str,
    /// Versions, preferred first.
    pub versions: &'static [&'static str],
}

/// Every served group, core first.
pub static GROUPS: &[GroupInfo] = &[
    GroupInfo {
        name: "",
        versions: &["v1", "v1beta1"],
    },
    GroupInfo {
        name: "apps",
        versions: &["v1"],
    },
    GroupInfo {
        name: "coordination.k8s.io",
        versions: &["v1"],
    },
];

/// The resource served at `group/version/plural`.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resources of one group/version, in discovery order.
pub fn resources_of(group: &str, version: &str) -> impl Iterator<Item = &'static ResourceInfo> {
    let (group, version) = (group.to_string(), version.to_string());
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

/// Whether a group/version is served.
pub fn serves(group: &str, version: &str) -> bool {
    GROUPS
        .iter()
        .any(|g| g.name == group && g.versions.contains(&version))
}

/// The non-legacy resource of a kind (for ownerReferences, events, ...).
pub fn by_kind(group: &str, kind: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.kind == kind && !r.legacy)
}

/// A metav1.APIResource entry for `/api/v1` and `/apis/<g>/<v>` discovery.
pub fn api_resource_json(info: &ResourceInfo) -> Vec<Value> {
    let mut out = vec![json!({
        "name": info.plural,
        "singularName": info.singular,
        "namespaced": info.namespaced(),
        "kind": info.kind,
        "verbs": info.verbs,
        "shortNames": info.short_names,
        "categories": info.categories,
    })];
    for sub in info.subresources {
        let mut entry = json!({
            "name": format!("{}/{}", info.plural, sub.name),
            "singularName": "",
            "namespaced": info.namespaced(),
            "kind": sub.kind,
            "verbs": sub.verbs,
        });
        if sub.group != info.group || sub.version != info.version {
            entry["group"] = json!(sub.group);
            entry["version"] = json!(sub.version);
        }
        out.push(entry);
    }
    out
}

/// An apidiscovery.k8s.io/v2 APIResourceDiscovery entry for aggregated discovery.
pub fn discovery_v2_json(info: &ResourceInfo) -> Value {
    let subresources: Vec<Value> = info
        .subresources
        .iter()
        .map(|sub| {
            json!({
                "subresource": sub.name,
                "responseKind": {"group": sub.group, "version": sub.version, "kind": sub.kind},
                "verbs": sub.verbs,
            })
        })
        .collect();
    let mut entry = json!({
        "resource": info.plural,
        "responseKind": {"group": info.group, "version": info.version, "kind": info.kind},
        "scope": if info.namespaced() { "Namespaced" } else { "Cluster" },
        "singularResource": info.singular,
        "verbs": info.verbs,
    });
    if !info.short_names.is_empty() {
        entry["shortNames"] = json!(info.short_names);
    }
    if !info.categories.is_empty() {
        entry["categories"] = json!(info.categories);
    }
    if !subresources.is_empty() {
        entry["subresources"] = json!(subresources);
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_is_in_a_served_group_version() {
        for r in RESOURCES {
            assert!(serves(r.group, r.version), "{} {}", r.plural, r.version);
        }
    }

    #[test]
    fn legacy_resources_share_v1_storage() {
        let minions = find("", "v1beta1", "minions").unwrap();
        assert_eq!(minions.storage().plural, "nodes");
        assert_eq!(minions.key(None, "n1"), "/registry/core/nodes/n1");
        let pods = find("", "v1beta1", "pods").unwrap();
        assert_eq!(
            pods.key(Some("default"), "httpd"),
            "/registry/core/pods/default/httpd"
        );
    }

    #[test]
    fn keys_are_scoped() {
        let deploy = find("apps", "v1", "deployments").unwrap();
        assert_eq!(
            deploy.key(Some("ns"), "d"),
            "/registry/apps/deployments/ns/d"
        );
        let node = find("", "v1", "nodes").unwrap();
        assert_eq!(node.key(Some("ignored"), "n"), "/registry/core/nodes/n");
    }

    #[test]
    fn discovery_lists_subresources() {
        let rc = find("", "v1", "replicationcontrollers").unwrap();
        let entries = api_resource_json(rc);
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[2]["name"], "replicationcontrollers/scale");
        assert_eq!(entries[2]["group"], "autoscaling");
        let v2 = discovery_v2_json(rc);
        assert_eq!(v2["shortNames"][0], "rc");
        assert_eq!(v2["subresources"][1]["responseKind"]["kind"], "Scale");
    }
}
