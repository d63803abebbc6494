//! Builders for the scheduler's unit tests.

use super::{
    AssignedPod, ClusterEvent, HostPort, KeyValue, Node, NodeSelectorRequirement, NodeSelectorTerm,
    Owner, Pod, Protocol, Resources, SelectorOperator, Taint, TaintEffect, Toleration,
    TolerationOperator,
};

/// A ready, schedulable node allowing 110 pods.
pub(crate) fn node(name: &str, milli_cpu: u64, memory: u64) -> Node {
    Node {
        name: name.into(),
        labels: Vec::new(),
        allocatable: Resources {
            milli_cpu,
            memory,
            ephemeral_storage: 100 << 30,
            pods: 110,
        },
        taints: Vec::new(),
        unschedulable: false,
        ready: true,
    }
}

/// A pod in namespace `default` with uid `<name>-uid`.
pub(crate) fn pod(name: &str, milli_cpu: u64, memory: u64) -> Pod {
    Pod {
        uid: format!("{name}-uid"),
        namespace: "default".into(),
        name: name.into(),
        labels: Vec::new(),
        requests: Resources {
            milli_cpu,
            memory,
            ephemeral_storage: 0,
            pods: 1,
        },
        host_ports: Vec::new(),
        node_selector: Vec::new(),
        required_node_affinity: Vec::new(),
        preferred_node_affinity: Vec::new(),
        tolerations: Vec::new(),
        owner: None,
        spread_selectors: Vec::new(),
        priority: 0,
    }
}

pub(crate) fn assigned(pod: Pod, node_name: &str) -> ClusterEvent {
    ClusterEvent::PodAssigned(AssignedPod {
        pod,
        node_name: node_name.into(),
    })
}

pub(crate) fn port(port: u16, host_ip: &str) -> HostPort {
    HostPort {
        port,
        protocol: Protocol::Tcp,
        host_ip: host_ip.into(),
    }
}

pub(crate) fn labels(pairs: &[(&str, &str)]) -> Vec<KeyValue> {
    pairs.iter().map(|(k, v)| KeyValue::new(k, v)).collect()
}

pub(crate) fn taint(key: &str, value: &str, effect: TaintEffect) -> Taint {
    Taint {
        key: key.into(),
        value: value.into(),
        effect,
    }
}

pub(crate) fn toleration(
    key: &str,
    operator: TolerationOperator,
    value: &str,
    effect: Option<TaintEffect>,
) -> Toleration {
    Toleration {
        key: key.into(),
        operator,
        value: value.into(),
        effect,
    }
}

pub(crate) fn requirement(
    key: &str,
    operator: SelectorOperator,
    values: &[&str],
) -> NodeSelectorRequirement {
    NodeSelectorRequirement {
        key: key.into(),
        operator,
        values: values.iter().map(|v| (*v).to_owned()).collect(),
    }
}

pub(crate) fn term(
    expressions: Vec<NodeSelectorRequirement>,
    fields: Vec<NodeSelectorRequirement>,
) -> NodeSelectorTerm {
    NodeSelectorTerm {
        match_expressions: expressions,
        match_fields: fields,
    }
}

pub(crate) fn owner(uid: &str) -> Owner {
    Owner {
        kind: "ReplicaSet".into(),
        name: uid.into(),
        uid: uid.into(),
    }
}
