//! Kubernetes objects as the scheduler plugin sees them: the typed records of
//! the `scheduler` world, built once per object change.

use std::collections::BTreeMap;

use hortator_api::validation::{quantity_milli_value, quantity_value};
use hortator_plugin_runtime::scheduling::{
    HostPort, KeyValue, Node, NodeSelectorRequirement, NodeSelectorTerm, Owner, Pod, PreferredTerm,
    Protocol, Resources, SelectorOperator, Taint, TaintEffect, Toleration, TolerationOperator,
};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The pod as a plugin record. `spread_selectors` is left empty; the caller
/// fills it for pending pods.
pub fn pod(pod: &core::Pod) -> Pod {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let affinity = spec
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref());
    Pod {
        uid: meta.uid.clone().unwrap_or_default(),
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        labels: key_values(meta.labels.as_ref()),
        requests: spec.map(requests).unwrap_or(Resources {
            milli_cpu: 0,
            memory: 0,
            ephemeral_storage: 0,
            pods: 1,
        }),
        host_ports: spec.map(host_ports).unwrap_or_default(),
        node_selector: key_values(spec.and_then(|s| s.node_selector.as_ref())),
        required_node_affinity: affinity
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|r| r.node_selector_terms.iter().map(term).collect())
            .unwrap_or_default(),
        preferred_node_affinity: affinity
            .and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|terms| {
                terms
                    .iter()
                    .map(|t| PreferredTerm {
                        weight: t.weight,
                        term: term(&t.preference),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        tolerations: spec
            .and_then(|s| s.tolerations.as_ref())
            .map(|ts| ts.iter().filter_map(toleration).collect())
            .unwrap_or_default(),
        owner: meta.owner_references.as_ref().and_then(|refs| {
            refs.iter()
                .find(|r| r.controller == Some(true))
                .map(|r| Owner {
                    kind: r.kind.clone(),
                    name: r.name.clone(),
                    uid: r.uid.clone(),
                })
        }),
        spread_selectors: Vec::new(),
        priority: spec.and_then(|s| s.priority).unwrap_or(0),
    }
}

/// The node as a plugin record.
pub fn node(node: &core::Node) -> Node {
    let spec = node.spec.as_ref();
    let status = node.status.as_ref();
    let allocatable = status.and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref()));
    Node {
        name: node.metadata.name.clone().unwrap_or_default(),
        labels: key_values(node.metadata.labels.as_ref()),
        allocatable: Resources {
            milli_cpu: amount(allocatable, "cpu", true),
            memory: amount(allocatable, "memory", false),
            ephemeral_storage: amount(allocatable, "ephemeral-storage", false),
            pods: u32::try_from(amount(allocatable, "pods", false)).unwrap_or(u32::MAX),
        },
        taints: spec
            .and_then(|s| s.taints.as_ref())
            .map(|ts| {
                ts.iter()
                    .filter_map(|t| {
                        Some(Taint {
                            key: t.key.clone(),
                            value: t.value.clone().unwrap_or_default(),
                            effect: effect(&t.effect)?,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default(),
        unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
        ready: status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .is_some_and(|c| c.status == "True"),
    }
}

/// Whether the pod no longer occupies its node: it finished.
pub fn is_terminal(pod: &core::Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn key_values(map: Option<&BTreeMap<String, String>>) -> Vec<KeyValue> {
    map.map(|m| {
        m.iter()
            .map(|(k, v)| KeyValue {
                key: k.clone(),
                value: v.clone(),
            })
            .collect()
    })
    .unwrap_or_default()
}

fn amount(map: Option<&BTreeMap<String, Quantity>>, name: &str, milli: bool) -> u64 {
    let Some(q) = map.and_then(|m| m.get(name)) else {
        return 0;
    };
    let value = if milli {
        quantity_milli_value(&q.0)
    } else {
        quantity_value(&q.0)
    };
    value.map_or(0, |v| v.max(0) as u64)
}

/// Effective requests, as kube-scheduler computes them: the sum over the app
/// containers, at least the largest init container, plus the pod overhead.
/// One pod slot.
fn requests(spec: &core::PodSpec) -> Resources {
    let of = |c: &core::Container, name: &str, milli: bool| {
        amount(
            c.resources.as_ref().and_then(|r| r.requests.as_ref()),
            name,
            milli,
        )
    };
    let mut total = [0u64; 3];
    for c in &spec.containers {
        total[0] += of(c, "cpu", true);
        total[1] += of(c, "memory", false);
        total[2] += of(c, "ephemeral-storage", false);
    }
    for c in spec.init_containers.iter().flatten() {
        total[0] = total[0].max(of(c, "cpu", true));
        total[1] = total[1].max(of(c, "memory", false));
        total[2] = total[2].max(of(c, "ephemeral-storage", false));
    }
    let overhead = spec.overhead.as_ref();
    Resources {
        milli_cpu: total[0] + amount(overhead, "cpu", true),
        memory: total[1] + amount(overhead, "memory", false),
        ephemeral_storage: total[2] + amount(overhead, "ephemeral-storage", false),
        pods: 1,
    }
}

fn host_ports(spec: &core::PodSpec) -> Vec<HostPort> {
    spec.containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = u16::try_from(p.host_port?).ok().filter(|&p| p > 0)?;
            Some(HostPort {
                port,
                protocol: match p.protocol.as_deref() {
                    Some("UDP") => Protocol::Udp,
                    Some("SCTP") => Protocol::Sctp,
                    _ => Protocol::Tcp,
                },
                host_ip: p
                    .host_ip
                    .clone()
                    .filter(|ip| ip != "0.0.0.0")
                    .unwrap_or_default(),
            })
        })
        .collect()
}

fn term(term: &core::NodeSelectorTerm) -> NodeSelectorTerm {
    let requirements = |reqs: Option<&Vec<core::NodeSelectorRequirement>>| {
        reqs.map(|rs| {
            rs.iter()
                .map(|r| NodeSelectorRequirement {
                    key: r.key.clone(),
                    operator: match r.operator.as_str() {
                        "In" => SelectorOperator::In,
                        "NotIn" => SelectorOperator::NotIn,
                        "Exists" => SelectorOperator::Exists,
                        "DoesNotExist" => SelectorOperator::DoesNotExist,
                        "Gt" => SelectorOperator::Gt,
                        "Lt" => SelectorOperator::Lt,
                        // Validation rejects other operators; one that slips
                        // through matches nothing, as in Kubernetes.
                        _ => SelectorOperator::In,
                    },
                    values: if matches!(r.operator.as_str(), "In" | "NotIn" | "Gt" | "Lt") {
                        r.values.clone().unwrap_or_default()
                    } else {
                        Vec::new()
                    },
                })
                .collect()
        })
        .unwrap_or_default()
    };
    NodeSelectorTerm {
        match_expressions: requirements(term.match_expressions.as_ref()),
        match_fields: requirements(term.match_fields.as_ref()),
    }
}

fn effect(effect: &str) -> Option<TaintEffect> {
    match effect {
        "NoSchedule" => Some(TaintEffect::NoSchedule),
        "PreferNoSchedule" => Some(TaintEffect::PreferNoSchedule),
        "NoExecute" => Some(TaintEffect::NoExecute),
        _ => None,
    }
}

fn toleration(t: &core::Toleration) -> Option<Toleration> {
    let effect = match t.effect.as_deref() {
        None | Some("") => None,
        Some(e) => Some(effect(e)?),
    };
    Some(Toleration {
        key: t.key.clone().unwrap_or_default(),
        operator: match t.operator.as_deref() {
            Some("Exists") => TolerationOperator::Exists,
            _ => TolerationOperator::Equal,
        },
        value: t.value.clone().unwrap_or_default(),
        effect,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_record() {
        let pod: core::Pod = serde_json::from_value(json!({
            "metadata": {"name": "web-1", "namespace": "default", "uid": "u1",
                "labels": {"app": "web"},
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "ReplicationController", "name": "web", "uid": "rc", "controller": true}
                ]},
            "spec": {
                "containers": [
                    {"name": "a", "image": "x", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}},
                     "ports": [{"containerPort": 80, "hostPort": 80}]},
                    {"name": "b", "image": "x", "resources": {"requests": {"cpu": "1"}},
                     "ports": [{"containerPort": 53, "hostPort": 53, "protocol": "UDP", "hostIP": "127.0.0.1"},
                               {"containerPort": 8080}]}
                ],
                "initContainers": [{"name": "i", "image": "x", "resources": {"requests": {"cpu": "2", "memory": "1Mi"}}}],
                "overhead": {"memory": "1Mi"},
                "nodeSelector": {"disk": "ssd"},
                "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}, {"operator": "Exists"}],
                "priority": 7,
                "affinity": {"nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]},
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 10, "preference": {"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}}]
                }}
            }
        }))
        .unwrap();
        let p = super::pod(&pod);
        assert_eq!((p.uid.as_str(), p.name.as_str()), ("u1", "web-1"));
        assert_eq!(p.requests.milli_cpu, 2000);
        assert_eq!(p.requests.memory, (64 << 20) + (1 << 20));
        assert_eq!(p.requests.pods, 1);
        assert_eq!(p.host_ports.len(), 2);
        assert_eq!(p.host_ports[1].protocol, Protocol::Udp);
        assert_eq!(p.host_ports[1].host_ip, "127.0.0.1");
        assert_eq!(p.node_selector[0].key, "disk");
        assert_eq!(p.tolerations.len(), 2);
        assert_eq!(p.tolerations[1].effect, None);
        assert_eq!(
            p.required_node_affinity[0].match_expressions[0].values,
            ["a"]
        );
        assert_eq!(p.preferred_node_affinity[0].weight, 10);
        assert_eq!(p.owner.unwrap().uid, "rc");
        assert_eq!(p.priority, 7);
    }

    #[test]
    fn node_record() {
        let node: core::Node = serde_json::from_value(json!({
            "metadata": {"name": "n1", "labels": {"zone": "a"}},
            "spec": {"unschedulable": true, "taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]},
            "status": {
                "capacity": {"cpu": "8", "memory": "16Gi", "pods": "110"},
                "allocatable": {"cpu": "7500m", "memory": "15Gi", "pods": "100", "ephemeral-storage": "10Gi"},
                "conditions": [{"type": "Ready", "status": "True"}]
            }
        }))
        .unwrap();
        let n = super::node(&node);
        assert_eq!(n.allocatable.milli_cpu, 7500);
        assert_eq!(n.allocatable.memory, 15 << 30);
        assert_eq!(n.allocatable.pods, 100);
        assert_eq!(n.allocatable.ephemeral_storage, 10 << 30);
        assert!(n.unschedulable && n.ready);
        assert_eq!(n.taints[0].effect, TaintEffect::NoSchedule);
        let bare: core::Node = serde_json::from_value(json!({"metadata": {"name": "n2"}})).unwrap();
        let n = super::node(&bare);
        assert!(!n.ready);
        assert_eq!(n.allocatable.pods, 0);
    }
}
