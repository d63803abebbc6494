//! Sibling counts per node for the spreading of pending pods, kept up to date
//! on every pod event.
//!
//! Two indexes follow every bound pod: for each owner uid and for each label
//! pair, the number of such pods per node. A pod without spread selectors
//! counts its siblings from the owner index alone.
//!
//! For spread selectors, a *group* is what makes pods siblings of a pending
//! pod: its namespace, its controlling owner's uid and its non-empty spread
//! selectors. For each group the index keeps the number of matching pods on
//! each node. When a group is created, the nodes where a selector may match
//! (those with pods carrying one of its pairs) are marked unknown and every
//! other node gets its count from the owner index; an unknown node is counted
//! the first time it is scored (one pass over its pods). From then on a pod
//! event only looks at the groups reachable from the pod's owner uid or from
//! one of its labels (each selector is indexed by its first pair), so that
//! each node costs O(1).

use super::cache::NodeInfo;
use super::hash::{FxBuildHasher, FxHashMap, FxHasher};
use super::plugins::selector_matches;
use super::{KeyValue, Pod};
use crate::str_eq;
use std::hash::{BuildHasher, Hash, Hasher};

/// Groups kept at most; the least recently used one makes way.
const MAX_GROUPS: usize = 1024;
/// A count not worked out yet.
const UNKNOWN: u32 = u32::MAX;

/// Whether the pod has a non-empty spread selector.
pub(crate) fn has_selectors(pod: &Pod) -> bool {
    pod.spread_selectors
        .iter()
        .any(|selector| !selector.is_empty())
}

/// The non-empty spread selectors of a pod (an empty selector selects nothing).
fn selectors(pod: &Pod) -> impl Iterator<Item = &[KeyValue]> + Clone {
    pod.spread_selectors
        .iter()
        .filter(|selector| !selector.is_empty())
        .map(Vec::as_slice)
}

#[derive(Debug, Clone)]
struct Group {
    key_hash: u64,
    namespace: String,
    owner_uid: Option<String>,
    selectors: Vec<Vec<KeyValue>>,
    /// The hash of the first pair of each selector.
    first_pairs: Vec<u64>,
    /// Matching pods per cache slot ([`UNKNOWN`]: not worked out; missing:
    /// a slot created since, 0).
    counts: Vec<u32>,
    last_used: u64,
}

impl Group {
    /// Whether `other` (a bound pod) belongs to the group: the same rule as
    /// [`is_sibling`](super::plugins::is_sibling).
    fn matches(&self, other: &Pod) -> bool {
        let same_owner = self.owner_uid.as_deref().is_some_and(|uid| {
            other
                .owner
                .as_ref()
                .is_some_and(|owner| str_eq(&owner.uid, uid))
        });
        same_owner
            || (str_eq(&other.namespace, &self.namespace)
                && self
                    .selectors
                    .iter()
                    .any(|selector| selector_matches(selector, &other.labels)))
    }

    /// Whether this is the group of the pending pod `pod`.
    fn is_of(&self, pod: &Pod) -> bool {
        self.namespace == pod.namespace
            && self.owner_uid.as_deref() == pod.owner.as_ref().map(|owner| owner.uid.as_str())
            && self.selectors.iter().map(Vec::as_slice).eq(selectors(pod))
    }

    /// The count of a node, worked out if need be.
    fn count(&mut self, slot: usize, node: &NodeInfo) -> u32 {
        match self.counts.get(slot) {
            None => 0,
            Some(&UNKNOWN) => {
                let count = node
                    .pods()
                    .iter()
                    .filter(|other| self.matches(other))
                    .count() as u32;
                self.counts[slot] = count;
                count
            }
            Some(&count) => count,
        }
    }
}

/// The hash of a label pair, for the cache's label index. Collisions only
/// cost time: a pair that seems present is checked on the pods.
fn pair_hash(key: &str, value: &str) -> u64 {
    let mut hasher = FxHasher::default();
    hasher.write(key.as_bytes());
    hasher.write_u8(0xff);
    hasher.write(value.as_bytes());
    hasher.finish()
}

/// The hash of a pending pod's group.
fn key_hash(pod: &Pod) -> u64 {
    let mut hasher = FxBuildHasher::default().build_hasher();
    pod.namespace.hash(&mut hasher);
    pod.owner.as_ref().map(|owner| &owner.uid).hash(&mut hasher);
    for selector in selectors(pod) {
        hasher.write_usize(selector.len());
        for pair in selector {
            pair.key.hash(&mut hasher);
            pair.value.hash(&mut hasher);
        }
    }
    hasher.finish()
}

/// Adds `delta` to `map[key][slot]`, dropping entries that reach 0.
fn count_in<K: Hash + Eq>(
    map: &mut FxHashMap<K, FxHashMap<u32, u32>>,
    key: K,
    slot: u32,
    delta: i32,
) {
    if delta > 0 {
        *map.entry(key).or_default().entry(slot).or_default() += delta as u32;
        return;
    }
    let Some(slots) = map.get_mut(&key) else {
        return;
    };
    if let Some(count) = slots.get_mut(&slot) {
        *count = count.saturating_add_signed(delta);
        if *count == 0 {
            slots.remove(&slot);
            if slots.is_empty() {
                map.remove(&key);
            }
        }
    }
}

/// The indexes of bound pods, the groups and the indexes from pods to the
/// groups they may belong to.
#[derive(Debug, Clone)]
pub(crate) struct SiblingIndex {
    /// Owner uid → slot → pods of that owner on the node.
    owner_slots: FxHashMap<String, FxHashMap<u32, u32>>,
    /// Label pair hash ([`pair_hash`]) → slot → pods with that pair.
    pair_slots: FxHashMap<u64, FxHashMap<u32, u32>>,
    /// Groups kept at most.
    max_groups: usize,
    groups: Vec<Option<Group>>,
    free: Vec<u32>,
    live: usize,
    by_hash: FxHashMap<u64, Vec<u32>>,
    by_owner: FxHashMap<String, Vec<u32>>,
    /// The hash of a label pair → the groups with a selector whose first
    /// pair it is (a collision only adds a candidate, checked in full).
    by_first_pair: FxHashMap<u64, Vec<u32>>,
    clock: u64,
    scratch: Vec<u32>,
}

impl Default for SiblingIndex {
    fn default() -> Self {
        SiblingIndex {
            owner_slots: FxHashMap::default(),
            pair_slots: FxHashMap::default(),
            max_groups: MAX_GROUPS,
            groups: Vec::new(),
            free: Vec::new(),
            live: 0,
            by_hash: FxHashMap::default(),
            by_owner: FxHashMap::default(),
            by_first_pair: FxHashMap::default(),
            clock: 0,
            scratch: Vec::new(),
        }
    }
}

impl SiblingIndex {
    /// Fills `counts[i]` with the siblings of `pod` on `nodes[i]`; `slots`
    /// is the number of slots of the cache.
    pub(crate) fn counts(
        &mut self,
        pod: &Pod,
        slots: usize,
        nodes: &[&NodeInfo],
        counts: &mut [i64],
    ) {
        if !has_selectors(pod) {
            let Some(owner) = &pod.owner else {
                counts.fill(0);
                return;
            };
            let Some(per_slot) = self.owner_slots.get(owner.uid.as_str()) else {
                counts.fill(0);
                return;
            };
            for (count, node) in counts.iter_mut().zip(nodes) {
                *count = match node.slot() {
                    Some(slot) => per_slot.get(&(slot as u32)).map_or(0, |&c| i64::from(c)),
                    None => node.pods_of_owner(&owner.uid) as i64,
                };
            }
            return;
        }
        self.clock += 1;
        let key_hash = key_hash(pod);
        let id = match self.find(key_hash, pod) {
            Some(id) => id,
            None => self.create(key_hash, pod, slots),
        };
        let group = self.groups[id as usize]
            .as_mut()
            .expect("indexed groups exist");
        group.last_used = self.clock;
        for (count, node) in counts.iter_mut().zip(nodes) {
            *count = match node.slot() {
                Some(slot) => i64::from(group.count(slot, node)),
                None => node.siblings(pod) as i64,
            };
        }
    }

    /// Accounts for a pod bound to the node in `slot`.
    pub(crate) fn pod_added(&mut self, pod: &Pod, slot: usize) {
        self.pod_moved(pod, slot, 1);
    }

    /// Accounts for a pod that left the node in `slot`.
    pub(crate) fn pod_removed(&mut self, pod: &Pod, slot: usize) {
        self.pod_moved(pod, slot, -1);
    }

    fn pod_moved(&mut self, pod: &Pod, slot: usize, delta: i32) {
        let slot_key = slot as u32;
        if let Some(owner) = &pod.owner {
            if delta > 0 && !self.owner_slots.contains_key(owner.uid.as_str()) {
                self.owner_slots
                    .insert(owner.uid.clone(), FxHashMap::default());
            }
            if let Some(slots) = self.owner_slots.get_mut(owner.uid.as_str()) {
                if delta > 0 {
                    *slots.entry(slot_key).or_default() += 1;
                } else if let Some(count) = slots.get_mut(&slot_key) {
                    *count -= 1;
                    if *count == 0 {
                        slots.remove(&slot_key);
                        if slots.is_empty() {
                            self.owner_slots.remove(owner.uid.as_str());
                        }
                    }
                }
            }
        }
        for label in &pod.labels {
            count_in(
                &mut self.pair_slots,
                pair_hash(&label.key, &label.value),
                slot_key,
                delta,
            );
        }
        if self.live == 0 {
            return;
        }
        self.candidates(pod);
        for &id in &self.scratch {
            let group = self.groups[id as usize]
                .as_mut()
                .expect("indexed groups exist");
            if group.counts.len() <= slot {
                group.counts.resize(slot + 1, 0);
            }
            if group.counts[slot] != UNKNOWN && group.matches(pod) {
                group.counts[slot] = group.counts[slot].saturating_add_signed(delta);
            }
        }
    }

    /// The groups `pod` may belong to, into `scratch`, each once.
    fn candidates(&mut self, pod: &Pod) {
        self.scratch.clear();
        if let Some(owner) = &pod.owner
            && let Some(ids) = self.by_owner.get(owner.uid.as_str())
        {
            self.scratch.extend_from_slice(ids);
        }
        if !self.by_first_pair.is_empty() {
            for label in &pod.labels {
                if let Some(ids) = self.by_first_pair.get(&pair_hash(&label.key, &label.value)) {
                    self.scratch.extend_from_slice(ids);
                }
            }
        }
        if self.scratch.len() > 1 {
            self.scratch.sort_unstable();
            self.scratch.dedup();
        }
    }

    fn find(&self, key_hash: u64, pod: &Pod) -> Option<u32> {
        self.by_hash.get(&key_hash)?.iter().copied().find(|&id| {
            self.groups[id as usize]
                .as_ref()
                .is_some_and(|group| group.is_of(pod))
        })
    }

    /// Creates and indexes the group of `pod`: counts from the owner index,
    /// unknown where a selector may match.
    fn create(&mut self, key_hash: u64, pod: &Pod, slots: usize) -> u32 {
        if self.live >= self.max_groups {
            self.evict_least_recently_used();
        }
        let owner_uid = pod.owner.as_ref().map(|owner| owner.uid.clone());
        let selectors: Vec<Vec<KeyValue>> = selectors(pod).map(<[KeyValue]>::to_vec).collect();
        let mut counts = vec![0; slots];
        if let Some(per_slot) = owner_uid
            .as_deref()
            .and_then(|uid| self.owner_slots.get(uid))
        {
            for (&slot, &count) in per_slot {
                counts[slot as usize] = count;
            }
        }
        for selector in &selectors {
            // Only nodes with pods carrying every pair may match: those with
            // the rarest pair are enough to look at.
            let rarest = selector
                .iter()
                .map(|pair| self.pair_slots.get(&pair_hash(&pair.key, &pair.value)))
                .min_by_key(|per_slot| per_slot.map_or(0, |per_slot| per_slot.len()))
                .flatten();
            for &slot in rarest.into_iter().flat_map(|per_slot| per_slot.keys()) {
                counts[slot as usize] = UNKNOWN;
            }
        }
        let group = Group {
            key_hash,
            namespace: pod.namespace.clone(),
            first_pairs: selectors
                .iter()
                .map(|selector| pair_hash(&selector[0].key, &selector[0].value))
                .collect(),
            owner_uid,
            selectors,
            counts,
            last_used: self.clock,
        };
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.groups.push(None);
                (self.groups.len() - 1) as u32
            }
        };
        self.by_hash.entry(key_hash).or_default().push(id);
        if let Some(uid) = &group.owner_uid {
            self.by_owner.entry(uid.clone()).or_default().push(id);
        }
        for &first in &group.first_pairs {
            let ids = self.by_first_pair.entry(first).or_default();
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        self.groups[id as usize] = Some(group);
        self.live += 1;
        id
    }

    fn evict_least_recently_used(&mut self) {
        let Some(id) = self
            .groups
            .iter()
            .enumerate()
            .filter_map(|(id, group)| Some((id, group.as_ref()?.last_used)))
            .min_by_key(|&(_, last_used)| last_used)
            .map(|(id, _)| id as u32)
        else {
            return;
        };
        let group = self.groups[id as usize].take().expect("found above");
        fn unlist<K: Hash + Eq + std::borrow::Borrow<Q>, Q: Hash + Eq + ?Sized>(
            map: &mut FxHashMap<K, Vec<u32>>,
            key: &Q,
            id: u32,
        ) {
            if let Some(ids) = map.get_mut(key) {
                ids.retain(|&other| other != id);
                if ids.is_empty() {
                    map.remove(key);
                }
            }
        }
        unlist(&mut self.by_hash, &group.key_hash, id);
        if let Some(uid) = &group.owner_uid {
            unlist(&mut self.by_owner, uid.as_str(), id);
        }
        for first in &group.first_pairs {
            unlist(&mut self.by_first_pair, first, id);
        }
        self.free.push(id);
        self.live -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::plugins::is_sibling;
    use crate::scheduler::testing::{assigned, labels, node, owner, pod};
    use crate::scheduler::{ClusterEvent, NodeCache};

    /// xorshift: deterministic test data.
    struct Random(u64);

    impl Random {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    const NAMESPACES: [&str; 2] = ["ns1", "ns2"];
    const OWNERS: [Option<&str>; 4] = [None, Some("o1"), Some("o2"), Some("o3")];
    const APPS: [&str; 3] = ["a", "b", "c"];
    const TIERS: [&str; 2] = ["x", "y"];

    fn random_pod(random: &mut Random, name: &str) -> Pod {
        let mut p = pod(name, 10, 0);
        p.namespace = NAMESPACES[random.below(2)].into();
        p.owner = OWNERS[random.below(4)].map(owner);
        let mut pairs = vec![("app", APPS[random.below(3)])];
        if random.below(2) == 0 {
            pairs.push(("tier", TIERS[random.below(2)]));
        }
        p.labels = labels(&pairs);
        p
    }

    fn random_selectors(random: &mut Random) -> Vec<Vec<KeyValue>> {
        (0..random.below(3))
            .map(|_| match random.below(4) {
                0 => labels(&[("app", APPS[random.below(3)])]),
                1 => labels(&[
                    ("tier", TIERS[random.below(2)]),
                    ("app", APPS[random.below(3)]),
                ]),
                2 => labels(&[
                    ("app", APPS[random.below(3)]),
                    ("tier", TIERS[random.below(2)]),
                ]),
                _ => Vec::new(),
            })
            .collect()
    }

    /// The index always gives what scanning every node's pods gives, through
    /// pods coming and going, nodes removed and re-added, groups evicted.
    #[test]
    fn counts_match_a_scan() {
        for max_groups in [3, MAX_GROUPS] {
            let mut random = Random(0x2545_f491_4f6c_dd1d);
            let mut cache = NodeCache::new();
            cache.siblings.get_mut().max_groups = max_groups;
            let node_name = |i: usize| format!("n{i:02}");
            for i in 0..12 {
                cache.apply(ClusterEvent::NodeAdded(node(
                    &node_name(i),
                    100_000,
                    1 << 40,
                )));
            }
            let mut next_pod = 0;
            for step in 0..3000 {
                match random.below(10) {
                    0..=4 => {
                        next_pod += 1;
                        let p = random_pod(&mut random, &format!("p{next_pod}"));
                        // Some pods go to nodes the cache does not know.
                        cache.apply(assigned(p, &node_name(random.below(14))));
                    }
                    5 | 6 => {
                        let uid = format!("p{}-uid", random.below(next_pod + 1));
                        cache.apply(ClusterEvent::PodUnassigned(uid));
                    }
                    7 => {
                        // Move an existing pod (kept as it was) to another node.
                        let uid = format!("p{}-uid", random.below(next_pod + 1));
                        let moved = cache
                            .nodes()
                            .flat_map(NodeInfo::pods)
                            .find(|p| p.uid == uid)
                            .cloned();
                        if let Some(moved) = moved {
                            cache.apply(assigned(moved, &node_name(random.below(12))));
                        }
                    }
                    8 => {
                        let name = node_name(random.below(14));
                        if cache.node(&name).is_some() && random.below(3) == 0 {
                            cache.apply(ClusterEvent::NodeRemoved(name));
                        } else {
                            cache.apply(ClusterEvent::NodeAdded(node(&name, 100_000, 1 << 40)));
                        }
                    }
                    _ => {}
                }
                let mut pending = random_pod(&mut random, "pending");
                pending.spread_selectors = random_selectors(&mut random);
                let nodes: Vec<&NodeInfo> = cache.nodes().collect();
                let expected: Vec<i64> = nodes
                    .iter()
                    .map(|n| n.pods().iter().filter(|o| is_sibling(&pending, o)).count() as i64)
                    .collect();
                // Twice: the first call works the counts out, the second reads them.
                for _ in 0..2 {
                    let mut counts = vec![-1; nodes.len()];
                    cache.sibling_counts(&pending, &nodes, &mut counts);
                    assert_eq!(counts, expected, "step {step}: {pending:?}");
                }
                assert!(cache.siblings.borrow().live <= max_groups);
            }
            assert!(cache.siblings.borrow().live > 0);
        }
    }
}
