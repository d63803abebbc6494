//! The plugin's view of the cluster, kept up to date from `update` events.

use std::cell::RefCell;

use super::hash::FxHashMap;
use super::spread::SiblingIndex;
use super::{ClusterEvent, HostPort, Node, Pod, Resources};

/// The CPU kube-scheduler assumes for scoring a pod that requests none.
pub(crate) const DEFAULT_MILLI_CPU_REQUEST: u64 = 100;
/// The memory kube-scheduler assumes for scoring a pod that requests none.
pub(crate) const DEFAULT_MEMORY_REQUEST: u64 = 200 * 1024 * 1024;

/// The slot of a [`NodeInfo`] that belongs to no [`NodeCache`].
const NO_SLOT: u32 = u32::MAX;

/// A node with the pods bound to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    node: Node,
    requested: Resources,
    non_zero_requested: Resources,
    pods: Vec<Pod>,
    used_ports: Vec<HostPort>,
    /// Owner uid → number of pods on the node with that controlling owner.
    owners: FxHashMap<String, u32>,
    /// Where the cache keeps this node ([`NO_SLOT`] outside a cache).
    slot: u32,
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
            owners: FxHashMap::default(),
            slot: NO_SLOT,
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

    /// The number of pods on the node whose controlling owner has this uid,
    /// from an index: O(1).
    pub fn pods_of_owner(&self, owner_uid: &str) -> usize {
        self.owners
            .get(owner_uid)
            .map_or(0, |&count| count as usize)
    }

    /// The number of pods on the node that are siblings of `pod`
    /// ([`is_sibling`](super::plugins::is_sibling)): O(1) for a pod without
    /// spread selectors, else one pass over the node's pods. To count them
    /// on many nodes of a cache, [`NodeCache::sibling_counts`] is faster.
    pub fn siblings(&self, pod: &Pod) -> usize {
        if super::spread::has_selectors(pod) {
            let pods = self.pods.iter();
            pods.filter(|other| super::plugins::is_sibling(pod, other))
                .count()
        } else {
            pod.owner
                .as_ref()
                .map_or(0, |owner| self.pods_of_owner(&owner.uid))
        }
    }

    /// Accounts for one more pod on the node.
    pub fn add_pod(&mut self, pod: Pod) {
        add(&mut self.requested, &pod.requests);
        add(&mut self.non_zero_requested, &non_zero_requests(&pod));
        self.used_ports.extend(pod.host_ports.iter().cloned());
        if let Some(owner) = &pod.owner {
            match self.owners.get_mut(owner.uid.as_str()) {
                Some(count) => *count += 1,
                None => {
                    self.owners.insert(owner.uid.clone(), 1);
                }
            }
        }
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
                self.used_ports.swap_remove(index);
            }
        }
        if let Some(owner) = &pod.owner
            && let Some(count) = self.owners.get_mut(owner.uid.as_str())
        {
            *count -= 1;
            if *count == 0 {
                self.owners.remove(owner.uid.as_str());
            }
        }
        self.requested.pods = self.pods.len() as u32;
        self.non_zero_requested.pods = self.requested.pods;
        Some(pod)
    }

    /// Where the cache keeps this node, if it belongs to one.
    pub(crate) fn slot(&self) -> Option<usize> {
        (self.slot != NO_SLOT).then_some(self.slot as usize)
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

/// One entry of the cache: a node, or the pods bound to a node the host has
/// not reported (yet, or any more).
#[derive(Debug, Clone)]
struct Slot {
    info: NodeInfo,
    /// The host reported the node (and did not remove it since).
    known: bool,
}

/// Every node the host reported, with the pods bound to it.
///
/// Events may arrive in any order: pods bound to a node the cache does not
/// know (yet, or any more) are kept aside and counted once the node appears.
///
/// Every event costs O(1) hash map operations, plus the pods of the node
/// concerned for a pod leaving it, plus a binary search and a shift of an
/// array of integers for a node added or removed. Nodes are kept in name
/// order; looking one up by name is O(1).
#[derive(Debug, Clone, Default)]
pub struct NodeCache {
    /// Stable storage: a slot keeps its number until its node is removed and
    /// holds no pod any more; then it is reused.
    slots: Vec<Slot>,
    free_slots: Vec<u32>,
    /// Node name → slot, for known and unknown nodes.
    by_name: FxHashMap<String, u32>,
    /// The slots of the known nodes, by node name.
    order: Vec<u32>,
    /// Pod uid → the slot of its node.
    node_of_pod: FxHashMap<String, u32>,
    /// Sibling counts per node for the spread selectors of pending pods.
    pub(crate) siblings: RefCell<SiblingIndex>,
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
            ClusterEvent::PodAssigned(assigned) => self.assign(assigned.pod, &assigned.node_name),
            ClusterEvent::PodUnassigned(uid) => self.unassign(&uid),
        }
    }

    /// The known nodes, sorted by name.
    pub fn nodes(&self) -> impl ExactSizeIterator<Item = &NodeInfo> + DoubleEndedIterator {
        self.order
            .iter()
            .map(|&slot| &self.slots[slot as usize].info)
    }

    /// The number of known nodes.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether the cache knows no node.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The node at this position of [`NodeCache::nodes`] (the name order).
    ///
    /// # Panics
    ///
    /// If `position` is not below [`NodeCache::len`].
    pub fn node_at(&self, position: usize) -> &NodeInfo {
        &self.slots[self.order[position] as usize].info
    }

    /// The node with this name: O(1).
    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        let slot = &self.slots[*self.by_name.get(name)? as usize];
        slot.known.then_some(&slot.info)
    }

    /// The name of the node the pod with this uid is bound to.
    pub fn node_of(&self, pod_uid: &str) -> Option<&str> {
        let slot = *self.node_of_pod.get(pod_uid)?;
        Some(self.slots[slot as usize].info.name())
    }

    /// For each of `nodes` (nodes of this cache), the number of pods on it
    /// that are siblings of `pod` ([`is_sibling`](super::plugins::is_sibling)),
    /// into `counts` (`counts[i]` for `nodes[i]`).
    ///
    /// A pod without spread selectors is counted from an index of the pods
    /// per owner and node: O(1) per node. For spread selectors, the counts of
    /// a (namespace, owner, selectors) combination are kept per node and
    /// brought up to date by every pod event: O(1) per node too, except the
    /// first time a node with pods carrying the selectors' labels is counted
    /// for the combination (one pass over its pods). Up to 1,024
    /// combinations are kept, the least recently used ones making way.
    ///
    /// # Panics
    ///
    /// If `counts` is shorter than `nodes`.
    pub fn sibling_counts(&self, pod: &Pod, nodes: &[&NodeInfo], counts: &mut [i64]) {
        self.siblings
            .borrow_mut()
            .counts(pod, self.slots.len(), nodes, &mut counts[..nodes.len()]);
    }

    fn set_node(&mut self, node: Node) {
        if let Some(&slot) = self.by_name.get(node.name.as_str()) {
            let entry = &mut self.slots[slot as usize];
            entry.info.node = node;
            if !entry.known {
                entry.known = true;
                self.insert_in_order(slot);
            }
            return;
        }
        let slot = self.new_slot(node);
        self.slots[slot as usize].known = true;
        self.insert_in_order(slot);
    }

    fn remove_node(&mut self, name: &str) {
        let Some(&slot) = self.by_name.get(name) else {
            return;
        };
        let entry = &mut self.slots[slot as usize];
        if !entry.known {
            return;
        }
        entry.known = false;
        let empty = entry.info.pods.is_empty();
        let position = self.position(slot);
        self.order.remove(position);
        if empty {
            self.free_slot(slot);
        }
    }

    fn assign(&mut self, pod: Pod, node_name: &str) {
        self.unassign(&pod.uid);
        let slot = match self.by_name.get(node_name) {
            Some(&slot) => slot,
            None => self.new_slot(Node {
                name: node_name.to_owned(),
                labels: Vec::new(),
                allocatable: Resources::ZERO,
                taints: Vec::new(),
                unschedulable: false,
                ready: false,
            }),
        };
        self.siblings.get_mut().pod_added(&pod, slot as usize);
        self.node_of_pod.insert(pod.uid.clone(), slot);
        self.slots[slot as usize].info.add_pod(pod);
    }

    fn unassign(&mut self, uid: &str) {
        let Some(slot) = self.node_of_pod.remove(uid) else {
            return;
        };
        let entry = &mut self.slots[slot as usize];
        if let Some(pod) = entry.info.remove_pod(uid) {
            self.siblings.get_mut().pod_removed(&pod, slot as usize);
        }
        if !entry.known && entry.info.pods.is_empty() {
            self.free_slot(slot);
        }
    }

    /// A slot for a node, known or not (the caller says).
    fn new_slot(&mut self, node: Node) -> u32 {
        let name = node.name.clone();
        let mut info = NodeInfo::new(node);
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                info.slot = slot;
                self.slots[slot as usize] = Slot { info, known: false };
                slot
            }
            None => {
                let slot = u32::try_from(self.slots.len()).expect("fewer than 2^32 nodes");
                info.slot = slot;
                self.slots.push(Slot { info, known: false });
                slot
            }
        };
        self.by_name.insert(name, slot);
        slot
    }

    /// Forgets an unknown node without pods.
    fn free_slot(&mut self, slot: u32) {
        let entry = &mut self.slots[slot as usize];
        self.by_name.remove(entry.info.name());
        // Drop the node's strings now rather than when the slot is reused.
        entry.info = NodeInfo::new(Node {
            name: String::new(),
            labels: Vec::new(),
            allocatable: Resources::ZERO,
            taints: Vec::new(),
            unschedulable: false,
            ready: false,
        });
        entry.info.slot = slot;
        self.free_slots.push(slot);
    }

    /// Where a known node's slot is, or would go, in `order`.
    fn position(&self, slot: u32) -> usize {
        let name = self.slots[slot as usize].info.name();
        let slots = &self.slots;
        self.order
            .partition_point(|&other| slots[other as usize].info.name() < name)
    }

    fn insert_in_order(&mut self, slot: u32) {
        let position = self.position(slot);
        self.order.insert(position, slot);
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

    fn names(cache: &NodeCache) -> Vec<&str> {
        cache.nodes().map(NodeInfo::name).collect()
    }

    #[test]
    fn nodes_are_sorted_by_name() {
        let mut cache = NodeCache::new();
        for name in ["c", "a", "b", "e", "d"] {
            cache.apply(ClusterEvent::NodeAdded(node(name, 1000, 1 << 30)));
        }
        assert_eq!(names(&cache), ["a", "b", "c", "d", "e"]);
        assert_eq!(cache.len(), 5);
        assert_eq!(cache.node_at(3).name(), "d");

        // Removing frees the slot (no pods); a new node reuses it, in order.
        cache.apply(ClusterEvent::NodeRemoved("b".into()));
        cache.apply(ClusterEvent::NodeRemoved("nope".into()));
        assert_eq!(names(&cache), ["a", "c", "d", "e"]);
        assert!(cache.node("b").is_none());
        cache.apply(ClusterEvent::NodeAdded(node("aa", 1000, 1 << 30)));
        assert_eq!(names(&cache), ["a", "aa", "c", "d", "e"]);
        assert_eq!(cache.node("aa").unwrap().name(), "aa");
        assert_eq!(cache.slots.len(), 5);

        // An update keeps the place and the pods.
        cache.apply(assigned(pod("p", 100, 0), "c"));
        let mut bigger = node("c", 8000, 1 << 30);
        bigger.labels = vec![crate::KeyValue::new("zone", "z")];
        cache.apply(ClusterEvent::NodeUpdated(bigger));
        assert_eq!(names(&cache), ["a", "aa", "c", "d", "e"]);
        let c = cache.node("c").unwrap();
        assert_eq!(c.node().allocatable.milli_cpu, 8000);
        assert_eq!(c.pods().len(), 1);

        // Every node's slot is where the name index says.
        for (position, info) in cache.nodes().enumerate() {
            assert_eq!(cache.node_at(position), info);
            assert_eq!(cache.by_name[info.name()] as usize, info.slot().unwrap());
        }
    }

    #[test]
    fn many_nodes_in_any_order() {
        let mut cache = NodeCache::new();
        // A permutation of 0..1000.
        for i in 0..1000u32 {
            let name = format!("n{:04}", (i * 379) % 1000);
            cache.apply(ClusterEvent::NodeAdded(node(&name, 1000, 1 << 30)));
        }
        let expected: Vec<String> = (0..1000).map(|i| format!("n{i:04}")).collect();
        assert_eq!(names(&cache), expected);
        for i in (0..1000).step_by(3) {
            cache.apply(ClusterEvent::NodeRemoved(format!("n{i:04}")));
        }
        let expected: Vec<String> = (0..1000)
            .filter(|i| i % 3 != 0)
            .map(|i| format!("n{i:04}"))
            .collect();
        assert_eq!(names(&cache), expected);
        assert!(cache.node("n0003").is_none());
        assert!(cache.node("n0004").is_some());
    }

    #[test]
    fn owner_index_follows_pods() {
        let mut cache = NodeCache::new();
        cache.apply(ClusterEvent::NodeAdded(node("a", 4000, 8 << 30)));
        cache.apply(ClusterEvent::NodeAdded(node("b", 4000, 8 << 30)));
        let replica = |name: &str| {
            let mut p = pod(name, 100, 0);
            p.owner = Some(crate::scheduler::testing::owner("rs-1"));
            p
        };
        cache.apply(assigned(replica("r1"), "a"));
        cache.apply(assigned(replica("r2"), "a"));
        cache.apply(assigned(replica("r3"), "b"));
        cache.apply(assigned(pod("bare", 100, 0), "b"));
        assert_eq!(cache.node("a").unwrap().pods_of_owner("rs-1"), 2);
        assert_eq!(cache.node("b").unwrap().pods_of_owner("rs-1"), 1);
        assert_eq!(cache.node("b").unwrap().pods_of_owner("rs-2"), 0);

        // Moving r1 to b, then deleting r2 and r3.
        cache.apply(assigned(replica("r1"), "b"));
        cache.apply(ClusterEvent::PodUnassigned("r2-uid".into()));
        cache.apply(ClusterEvent::PodUnassigned("r3-uid".into()));
        assert_eq!(cache.node("a").unwrap().pods_of_owner("rs-1"), 0);
        assert_eq!(cache.node("b").unwrap().pods_of_owner("rs-1"), 1);
        assert!(cache.node("a").unwrap().owners.is_empty());
    }
}
