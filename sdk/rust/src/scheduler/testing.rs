//! Builders for the scheduler's unit tests.

use super::{
    ClusterEvent, HostPort, KeyValue, Node, NodeSelectorRequirement, NodeSelectorTerm, Owner, Pod,
    Protocol, SelectorOperator, Taint, TaintEffect, Toleration, TolerationOperator,
};

/// A ready, schedulable node allowing 110 pods.
pub(crate) fn node(name: &str, milli_cpu: u64, memory: u64) -> Node {
    Node::new(name, milli_cpu, memory)
}

/// A pod in namespace `default` with uid `<name>-uid`.
pub(crate) fn pod(name: &str, milli_cpu: u64, memory: u64) -> Pod {
    Pod::new(name, milli_cpu, memory)
}

pub(crate) fn assigned(pod: Pod, node_name: &str) -> ClusterEvent {
    ClusterEvent::assigned(pod, node_name)
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
