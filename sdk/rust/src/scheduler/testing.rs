//! Builders for the scheduler's unit tests.

use super::{AssignedPod, ClusterEvent, HostPort, Node, Pod, Protocol, Resources};

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
        tolerations: Vec::new(),
        owner: None,
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
