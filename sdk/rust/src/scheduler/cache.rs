//! The plugin's view of the cluster, kept up to date from `update` events.

use std::collections::{BTreeMap, HashMap};

use super::{ClusterEvent, HostPort, Node, Pod, Resources};

/// The CPU kube-scheduler assumes for scoring a pod that requests none.
pub(crate) const DEFAULT_MILLI_CPU_REQUEST: u64 = 100;
/// The memory kube-scheduler assumes for scoring a pod that requests none.
pub(crate) const DEFAULT_MEMORY_REQUEST: u64 = 200 * 1024 * 1024;

/// A node with the pods bound to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    node: Node,
    requested: Resources,
    non_zero_requested: Resources,
    pods: Vec<Pod>,
    used_ports: Vec<HostPort>,
}

impl NodeInfo {
    /// A node with no pods.
    pub fn new(node: Node) -> Self {
        NodeInfo {
            node,
            requested: Resources::ZERO,
            non_zero_requested: Resources::ZERO,
            pods: Vec::new(),
            used_ports: Vec::new(),
        }
    }

    /// The node record, as the host last reported it.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.node.name
    }

    /// The sum of the requests of the pods on the node; `pods` is their number.
    pub fn requested(&self) -> Resources {
        self.requested
    }

    /// Like [`NodeInfo::requested`], but counting a pod that requests no CPU
    /// as 100 millicores and one that requests no memory as 200 MiB, as
    /// kube-scheduler does when it scores nodes.
    pub fn non_zero_requested(&self) -> Resources {
        self.non_zero_requested
    }

    /// The pods on the node, in the order they were bound.
    pub fn pods(&self) -> &[Pod] {
        &self.pods
    }

    /// The host ports the pods on the node use (one entry per pod and port).
    pub fn used_ports(&self) -> &[HostPort] {
        &self.used_ports
    }

    /// Accounts for one more pod on the node.
    pub fn add_pod(&mut self, pod: Pod) {
        add(&mut self.requested, &pod.requests);
        add(&mut self.non_zero_requested, &non_zero_requests(&pod));
        self.used_ports.extend(pod.host_ports.iter().cloned());
        self.pods.push(pod);
        self.requested.pods = self.pods.len() as u32;
        self.non_zero_requested.pods = self.requested.pods;
    }

    /// Takes the pod with this uid off the node, if it is there.
    pub fn remove_pod(&mut self, uid: &str) -> Option<Pod> {
        let index = self.pods.iter().position(|pod| pod.uid == uid)?;
        let pod = self.pods.remove(index);
        subtract(&mut self.requested, &pod.requests);
        subtract(&mut self.non_zero_requested, &non_zero_requests(&pod));
        for port in &pod.host_ports {
            if let Some(index) = self.used_ports.iter().position(|used| used == port) {
                self.used_ports.remove(index);
            }
        }
        self.requested.pods = self.pods.len() as u32;
        self.non_zero_requested.pods = self.requested.pods;
        Some(pod)
    }
}

/// A pod's requests with kube-scheduler's defaults for scoring in place of
/// zero CPU and memory.
pub(crate) fn non_zero_requests(pod: &Pod) -> Resources {
    let requests = pod.requests;
    Resources {
        milli_cpu: if requests.milli_cpu == 0 {
            DEFAULT_MILLI_CPU_REQUEST
        } else {
            requests.milli_cpu
        },
        memory: if requests.memory == 0 {
            DEFAULT_MEMORY_REQUEST
        } else {
            requests.memory
        },
        ..requests
    }
}

fn add(total: &mut Resources, amount: &Resources) {
    total.milli_cpu = total.milli_cpu.saturating_add(amount.milli_cpu);
    total.memory = total.memory.saturating_add(amount.memory);
    total.ephemeral_storage = total
        .ephemeral_storage
        .saturating_add(amount.ephemeral_storage);
}

fn subtract(total: &mut Resources, amount: &Resources) {
    total.milli_cpu = total.milli_cpu.saturating_sub(amount.milli_cpu);
    total.memory = total.memory.saturating_sub(amount.memory);
    total.ephemeral_storage = total
        .ephemeral_storage
        .saturating_sub(amount.ephemeral_storage);
}

/// Every node the host reported, with the pods bound to it.
///
/// Events may arrive in any order: pods bound to a node the cache does not
/// know (yet, or any more) are kept aside and counted once the node appears.
#[derive(Debug, Clone, Default)]
pub struct NodeCache {
    nodes: BTreeMap<String, NodeInfo>,
    pods_of_unknown_nodes: HashMap<String, Vec<Pod>>,
    node_of_pod: HashMap<String, String>,
}

impl NodeCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one cluster change.
    pub fn apply(&mut self, event: ClusterEvent) {
        match event {
            ClusterEvent::NodeAdded(node) | ClusterEvent::NodeUpdated(node) => self.set_node(node),
            ClusterEvent::NodeRemoved(name) => self.remove_node(&name),
            ClusterEvent::PodAssigned(assigned) => self.assign(assigned.pod, assigned.node_name),
            ClusterEvent::PodUnassigned(uid) => self.unassign(&uid),
        }
    }

    /// The known nodes, sorted by name.
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = &NodeInfo> {
        self.nodes.values()
    }

    /// The node with this name.
    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.nodes.get(name)
    }

    /// The name of the node the pod with this uid is bound to.
    pub fn node_of(&self, pod_uid: &str) -> Option<&str> {
        self.node_of_pod.get(pod_uid).map(String::as_str)
    }

    fn set_node(&mut self, node: Node) {
        if let Some(info) = self.nodes.get_mut(&node.name) {
            info.node = node;
            return;
        }
        let name = node.name.clone();
        let mut info = NodeInfo::new(node);
        for pod in self.pods_of_unknown_nodes.remove(&name).unwrap_or_default() {
            info.add_pod(pod);
        }
        self.nodes.insert(name, info);
    }

    fn remove_node(&mut self, name: &str) {
        if let Some(info) = self.nodes.remove(name)
            && !info.pods.is_empty()
        {
            self.pods_of_unknown_nodes
                .insert(name.to_owned(), info.pods);
        }
    }

    fn assign(&mut self, pod: Pod, node_name: String) {
        self.unassign(&pod.uid);
        self.node_of_pod.insert(pod.uid.clone(), node_name.clone());
        match self.nodes.get_mut(&node_name) {
            Some(info) => info.add_pod(pod),
            None => self
                .pods_of_unknown_nodes
                .entry(node_name)
                .or_default()
                .push(pod),
        }
    }

    fn unassign(&mut self, uid: &str) {
        let Some(node_name) = self.node_of_pod.remove(uid) else {
            return;
        };
        if let Some(info) = self.nodes.get_mut(&node_name) {
            info.remove_pod(uid);
        } else if let Some(pods) = self.pods_of_unknown_nodes.get_mut(&node_name) {
            pods.retain(|pod| pod.uid != uid);
            if pods.is_empty() {
                self.pods_of_unknown_nodes.remove(&node_name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::testing::{assigned, node, pod};

    #[test]
    fn accounts_pods_and_ports() {
        let mut cache = NodeCache::new();
        cache.apply(ClusterEvent::NodeAdded(node("n1", 4000, 8 << 30)));
        let mut web = pod("web", 500, 1 << 30);
        web.host_ports = vec![crate::scheduler::testing::port(80, "")];
        cache.apply(assigned(web, "n1"));
        cache.apply(assigned(pod("idle", 0, 0), "n1"));

        let info = cache.node("n1").unwrap();
        assert_eq!(info.pods().len(), 2);
        assert_eq!(info.requested().milli_cpu, 500);
        assert_eq!(info.requested().memory, 1 << 30);
        assert_eq!(info.requested().pods, 2);
        assert_eq!(info.non_zero_requested().milli_cpu, 600);
        assert_eq!(
            info.non_zero_requested().memory,
            (1 << 30) + DEFAULT_MEMORY_REQUEST
        );
        assert_eq!(info.used_ports().len(), 1);
        assert_eq!(cache.node_of("web-uid"), Some("n1"));

        cache.apply(ClusterEvent::PodUnassigned("web-uid".into()));
        let info = cache.node("n1").unwrap();
        assert_eq!(
            info.requested(),
            Resources {
                pods: 1,
                ..Resources::ZERO
            }
        );
        assert!(info.used_ports().is_empty());
        assert_eq!(cache.node_of("web-uid"), None);
    }

    #[test]
    fn reassigning_a_pod_moves_it() {
        let mut cache = NodeCache::new();
        cache.apply(ClusterEvent::NodeAdded(node("n1", 1000, 1 << 30)));
        cache.apply(ClusterEvent::NodeAdded(node("n2", 1000, 1 << 30)));
        cache.apply(assigned(pod("p", 100, 0), "n1"));
        cache.apply(assigned(pod("p", 100, 0), "n2"));
        assert!(cache.node("n1").unwrap().pods().is_empty());
        assert_eq!(cache.node("n1").unwrap().requested().milli_cpu, 0);
        assert_eq!(cache.node("n2").unwrap().requested().milli_cpu, 100);
    }

    #[test]
    fn pods_of_unknown_nodes_wait_for_the_node() {
        let mut cache = NodeCache::new();
        cache.apply(assigned(pod("early", 200, 0), "late"));
        cache.apply(assigned(pod("gone", 200, 0), "late"));
        cache.apply(ClusterEvent::PodUnassigned("gone-uid".into()));
        assert_eq!(cache.nodes().len(), 0);

        cache.apply(ClusterEvent::NodeAdded(node("late", 1000, 1 << 30)));
        assert_eq!(cache.node("late").unwrap().requested().milli_cpu, 200);

        let mut updated = node("late", 2000, 1 << 30);
        updated.unschedulable = true;
        cache.apply(ClusterEvent::NodeUpdated(updated));
        let info = cache.node("late").unwrap();
        assert!(info.node().unschedulable);
        assert_eq!(info.pods().len(), 1);

        cache.apply(ClusterEvent::NodeRemoved("late".into()));
        assert!(cache.node("late").is_none());
        cache.apply(ClusterEvent::NodeAdded(node("late", 1000, 1 << 30)));
        assert_eq!(cache.node("late").unwrap().pods().len(), 1);
    }

    #[test]
    fn nodes_are_sorted_by_name() {
        let mut cache = NodeCache::new();
        for name in ["c", "a", "b"] {
            cache.apply(ClusterEvent::NodeAdded(node(name, 1000, 1 << 30)));
        }
        let names: Vec<_> = cache.nodes().map(NodeInfo::name).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }
}
