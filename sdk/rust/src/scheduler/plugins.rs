//! The built-in filters and scores, after kube-scheduler's plugins of the
//! same purpose, with its messages.
//!
//! [`Framework::with_defaults`](super::Framework::with_defaults) uses all of
//! them; add them one by one to [`Framework::new`](super::Framework::new) for
//! another selection.

use super::cache::non_zero_requests;
use super::{
    Filter, HostPort, KeyValue, Node, NodeCache, NodeInfo, NodeSelectorRequirement,
    NodeSelectorTerm, Pod, PreferredTerm, Resources, Score, SelectorOperator, Taint, TaintEffect,
    Toleration,
};
use crate::str_eq;

/// The taint the node controller puts on cordoned nodes.
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
/// The taint the node controller puts on nodes that are not ready.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";

/// Whether one of `tolerations` tolerates the taint `key` (empty value) with
/// effect `NoSchedule`, which the node controller puts on nodes in a
/// condition.
fn condition_tolerated(tolerations: &[Toleration], key: &str) -> bool {
    tolerations
        .iter()
        .any(|toleration| toleration.tolerates_parts(key, "", TaintEffect::NoSchedule))
}

/// The first `NoSchedule` or `NoExecute` taint of the node that the pod does
/// not tolerate.
fn untolerated_taint<'a>(pod: &Pod, node: &'a Node) -> Option<&'a Taint> {
    node.taints.iter().find(|taint| {
        matches!(
            taint.effect,
            TaintEffect::NoSchedule | TaintEffect::NoExecute
        ) && !pod
            .tolerations
            .iter()
            .any(|toleration| toleration.tolerates(taint))
    })
}

/// Rules out cordoned nodes (`spec.unschedulable`), unless the pod tolerates
/// the `node.kubernetes.io/unschedulable:NoSchedule` taint.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeUnschedulable;

impl Filter for NodeUnschedulable {
    fn name(&self) -> &str {
        "node-unschedulable"
    }

    fn passes(&self, pod: &Pod, node: &NodeInfo) -> bool {
        !node.node().unschedulable || condition_tolerated(&pod.tolerations, TAINT_UNSCHEDULABLE)
    }

    fn passes_nodes(&self, pod: &Pod, nodes: &[&NodeInfo], keep: &mut [bool]) {
        if !condition_tolerated(&pod.tolerations, TAINT_UNSCHEDULABLE) {
            for (keep, node) in keep.iter_mut().zip(nodes) {
                *keep = !node.node().unschedulable;
            }
        }
    }

    fn filter(&self, pod: &Pod, node: &NodeInfo) -> Result<(), String> {
        if self.passes(pod, node) {
            Ok(())
        } else {
            Err("node(s) were unschedulable".into())
        }
    }
}

/// Rules out nodes whose Ready condition is not True, unless the pod
/// tolerates the `node.kubernetes.io/not-ready:NoSchedule` taint.
///
/// kube-scheduler sees that taint, which the node controller puts on such
/// nodes, through its `TaintToleration` plugin; the reason is the same:
/// `node(s) had untolerated taint {node.kubernetes.io/not-ready: }`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeReady;

impl Filter for NodeReady {
    fn name(&self) -> &str {
        "node-ready"
    }

    fn passes(&self, pod: &Pod, node: &NodeInfo) -> bool {
        node.node().ready || condition_tolerated(&pod.tolerations, TAINT_NOT_READY)
    }

    fn passes_nodes(&self, pod: &Pod, nodes: &[&NodeInfo], keep: &mut [bool]) {
        if !condition_tolerated(&pod.tolerations, TAINT_NOT_READY) {
            for (keep, node) in keep.iter_mut().zip(nodes) {
                *keep = node.node().ready;
            }
        }
    }

    fn filter(&self, pod: &Pod, node: &NodeInfo) -> Result<(), String> {
        if self.passes(pod, node) {
            Ok(())
        } else {
            Err(format!(
                "node(s) had untolerated taint {{{TAINT_NOT_READY}: }}"
            ))
        }
    }
}

/// Rules out nodes with a `NoSchedule` or `NoExecute` taint the pod does not
/// tolerate (the filtering half of kube-scheduler's `TaintToleration`). The
/// reason names the first such taint: `node(s) had untolerated taint {key:
/// value}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TaintToleration;

impl Filter for TaintToleration {
    fn name(&self) -> &str {
        "taint-toleration"
    }

    fn passes(&self, pod: &Pod, node: &NodeInfo) -> bool {
        untolerated_taint(pod, node.node()).is_none()
    }

    fn filter(&self, pod: &Pod, node: &NodeInfo) -> Result<(), String> {
        match untolerated_taint(pod, node.node()) {
            Some(taint) => Err(format!(
                "node(s) had untolerated taint {{{}: {}}}",
                taint.key, taint.value
            )),
            None => Ok(()),
        }
    }
}

/// Rules out nodes that miss the pod's node selector (every label must be
/// equal) or its required node affinity (any term must match).
///
/// A term matches when all its expressions match the node's labels and all
/// its fields match the node; `metadata.name` with `In`/`NotIn` is the only
/// field. A term with neither matches no node. `Gt` and `Lt` compare the
/// label and their single value as integers.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeAffinity;

impl Filter for NodeAffinity {
    fn name(&self) -> &str {
        "node-affinity"
    }

    fn passes(&self, pod: &Pod, node: &NodeInfo) -> bool {
        let node = node.node();
        let selector_matches = pod.node_selector.iter().all(|wanted| {
            node.label(&wanted.key)
                .is_some_and(|value| str_eq(value, &wanted.value))
        });
        selector_matches
            && (pod.required_node_affinity.is_empty()
                || pod
                    .required_node_affinity
                    .iter()
                    .any(|term| term_matches(term, node)))
    }

    fn passes_nodes(&self, pod: &Pod, nodes: &[&NodeInfo], keep: &mut [bool]) {
        if pod.node_selector.is_empty() && pod.required_node_affinity.is_empty() {
            return;
        }
        for (keep, node) in keep.iter_mut().zip(nodes) {
            *keep = self.passes(pod, node);
        }
    }

    fn filter(&self, pod: &Pod, node: &NodeInfo) -> Result<(), String> {
        if self.passes(pod, node) {
            Ok(())
        } else {
            Err("node(s) didn't match Pod's node affinity/selector".into())
        }
    }
}

/// Whether a node selector term matches a node.
pub fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    if term.match_expressions.is_empty() && term.match_fields.is_empty() {
        return false;
    }
    term.match_expressions
        .iter()
        .all(|requirement| requirement_matches(requirement, node.label(&requirement.key)))
        && term.match_fields.iter().all(|requirement| {
            requirement.key == "metadata.name"
                && matches!(
                    requirement.operator,
                    SelectorOperator::In | SelectorOperator::NotIn
                )
                && requirement_matches(requirement, Some(&node.name))
        })
}

/// Whether a requirement holds for a value (`None`: the label is absent).
pub fn requirement_matches(requirement: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let listed = |value: &str| {
        requirement
            .values
            .iter()
            .any(|listed| str_eq(listed, value))
    };
    match requirement.operator {
        SelectorOperator::In => value.is_some_and(listed),
        SelectorOperator::NotIn => value.is_none_or(|value| !listed(value)),
        SelectorOperator::Exists => value.is_some(),
        SelectorOperator::DoesNotExist => value.is_none(),
        SelectorOperator::Gt | SelectorOperator::Lt => {
            let (Some(value), [bound]) = (value, requirement.values.as_slice()) else {
                return false;
            };
            let (Ok(value), Ok(bound)) = (value.parse::<i64>(), bound.parse::<i64>()) else {
                return false;
            };
            if requirement.operator == SelectorOperator::Gt {
                value > bound
            } else {
                value < bound
            }
        }
    }
}

/// Rules out nodes where a pod already uses one of the pod's host ports:
/// same port and protocol, and the same address or either one unspecified
/// (empty or `0.0.0.0`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NodePorts;

impl Filter for NodePorts {
    fn name(&self) -> &str {
        "node-ports"
    }

    fn passes(&self, pod: &Pod, node: &NodeInfo) -> bool {
        !pod.host_ports
            .iter()
            .filter(|wanted| wanted.port != 0)
            .any(|wanted| {
                node.used_ports()
                    .iter()
                    .any(|used| ports_conflict(wanted, used))
            })
    }

    fn passes_nodes(&self, pod: &Pod, nodes: &[&NodeInfo], keep: &mut [bool]) {
        if pod.host_ports.iter().all(|wanted| wanted.port == 0) {
            return;
        }
        for (keep, node) in keep.iter_mut().zip(nodes) {
            *keep = self.passes(pod, node);
        }
    }

    fn filter(&self, pod: &Pod, node: &NodeInfo) -> Result<(), String> {
        if self.passes(pod, node) {
            Ok(())
        } else {
            Err("node(s) didn't have free ports for the requested pod ports".into())
        }
    }
}

fn ports_conflict(a: &HostPort, b: &HostPort) -> bool {
    let unspecified = |ip: &str| ip.is_empty() || ip == "0.0.0.0";
    a.port == b.port
        && a.protocol == b.protocol
        && (unspecified(&a.host_ip) || unspecified(&b.host_ip) || a.host_ip == b.host_ip)
}

/// Rules out nodes without room for the pod: `Too many pods` when the node's
/// pod slots are taken, `Insufficient cpu`, `Insufficient memory`,
/// `Insufficient ephemeral-storage` for a requested amount beyond what is
/// left of the node's allocatable (several joined by `, `, in that order).
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeResourcesFit;

impl NodeResourcesFit {
    /// What the node lacks for the pod: pod slots, CPU, memory, ephemeral storage.
    fn shortages(pod: &Pod, node: &NodeInfo) -> [bool; 4] {
        let allocatable = node.node().allocatable;
        let requested = node.requested();
        let wanted = pod.requests;
        let short = |wanted: u64, allocatable: u64, requested: u64| {
            wanted > 0 && wanted > allocatable.saturating_sub(requested)
        };
        [
            node.pods().len() as u64 + 1 > u64::from(allocatable.pods),
            short(wanted.milli_cpu, allocatable.milli_cpu, requested.milli_cpu),
            short(wanted.memory, allocatable.memory, requested.memory),
            short(
                wanted.ephemeral_storage,
                allocatable.ephemeral_storage,
                requested.ephemeral_storage,
            ),
        ]
    }
}

impl Filter for NodeResourcesFit {
    fn name(&self) -> &str {
        "node-resources-fit"
    }

    fn passes(&self, pod: &Pod, node: &NodeInfo) -> bool {
        Self::shortages(pod, node) == [false; 4]
    }

    fn filter(&self, pod: &Pod, node: &NodeInfo) -> Result<(), String> {
        const REASONS: [&str; 4] = [
            "Too many pods",
            "Insufficient cpu",
            "Insufficient memory",
            "Insufficient ephemeral-storage",
        ];
        let shortages = Self::shortages(pod, node);
        if shortages == [false; 4] {
            return Ok(());
        }
        let reasons: Vec<&str> = REASONS
            .into_iter()
            .zip(shortages)
            .filter_map(|(reason, short)| short.then_some(reason))
            .collect();
        Err(reasons.join(", "))
    }
}

/// The requests of the node once `pod` is on it, as kube-scheduler scores
/// them (`non_zero` applies its defaults for pods that request no CPU or
/// memory).
fn requested_with(pod: &Pod, node: &NodeInfo, non_zero: bool) -> Resources {
    let (on_node, wanted) = if non_zero {
        (node.non_zero_requested(), non_zero_requests(pod))
    } else {
        (node.requested(), pod.requests)
    };
    Resources {
        milli_cpu: on_node.milli_cpu.saturating_add(wanted.milli_cpu),
        memory: on_node.memory.saturating_add(wanted.memory),
        ephemeral_storage: on_node
            .ephemeral_storage
            .saturating_add(wanted.ephemeral_storage),
        pods: on_node.pods.saturating_add(1),
    }
}

/// `100 * part / whole` (rounded down) for `part <= whole`, in 64-bit
/// arithmetic: 128-bit multiplications are library calls in WebAssembly.
fn share(part: u64, whole: u64) -> i64 {
    if whole <= u64::MAX / 100 {
        (part * 100 / whole) as i64
    } else {
        (part / (whole / 100)).min(100) as i64
    }
}

/// Prefers nodes with the most CPU and memory left once the pod is on them
/// (kube-scheduler's `LeastAllocated`, CPU and memory weighted equally):
/// the mean over CPU and memory of `100 * (allocatable - requested) /
/// allocatable`, with the non-zero requests
/// ([`NodeInfo::non_zero_requested`]). A resource the node has none of is
/// left out; a node with neither scores 0.
#[derive(Debug, Clone, Copy, Default)]
pub struct LeastAllocated;

impl Score for LeastAllocated {
    fn name(&self) -> &str {
        "least-allocated"
    }

    fn score(&self, pod: &Pod, node: &NodeInfo) -> i64 {
        fn free_share(requested: u64, capacity: u64) -> i64 {
            if requested > capacity {
                return 0;
            }
            share(capacity - requested, capacity)
        }
        let requested = requested_with(pod, node, true);
        let allocatable = node.node().allocatable;
        let (mut sum, mut count) = (0, 0);
        for (requested, capacity) in [
            (requested.milli_cpu, allocatable.milli_cpu),
            (requested.memory, allocatable.memory),
        ] {
            if capacity > 0 {
                sum += free_share(requested, capacity);
                count += 1;
            }
        }
        if count == 0 { 0 } else { sum / count }
    }
}

/// Prefers nodes whose CPU and memory stay equally used once the pod is on
/// them (kube-scheduler's `NodeResourcesBalancedAllocation`): 100 minus 100
/// times the standard deviation of the two used fractions (each capped at 1).
#[derive(Debug, Clone, Copy, Default)]
pub struct BalancedAllocation;

impl Score for BalancedAllocation {
    fn name(&self) -> &str {
        "balanced-allocation"
    }

    fn score(&self, pod: &Pod, node: &NodeInfo) -> i64 {
        let requested = requested_with(pod, node, false);
        let allocatable = node.node().allocatable;
        if allocatable.milli_cpu == 0 || allocatable.memory == 0 {
            // One fraction or none: no deviation.
            return 100;
        }
        // Not `f64::min`: a library call in WebAssembly.
        let fraction = |requested: u64, capacity: u64| {
            let fraction = requested as f64 / capacity as f64;
            if fraction > 1.0 { 1.0 } else { fraction }
        };
        let cpu = fraction(requested.milli_cpu, allocatable.milli_cpu);
        let memory = fraction(requested.memory, allocatable.memory);
        let deviation = ((cpu - memory) / 2.0).abs();
        ((1.0 - deviation) * 100.0) as i64
    }
}

/// Prefers nodes matching more of the pod's preferred node affinity
/// (`preferredDuringSchedulingIgnoredDuringExecution`), the scoring half of
/// kube-scheduler's `NodeAffinity`: a node scores the sum of the weights of
/// the terms it matches ([`term_matches`]), normalized to 0..=100 by the
/// highest sum among the feasible nodes. Pods without preferences score 0
/// everywhere.
///
/// Its name, `node-affinity`, is the name of the [`NodeAffinity`] filter too.
#[derive(Debug, Clone, Copy, Default)]
pub struct PreferredNodeAffinity;

impl PreferredNodeAffinity {
    /// The sum of the weights of the terms that match `node`.
    pub fn matched_weight(terms: &[PreferredTerm], node: &Node) -> i64 {
        terms
            .iter()
            .filter(|preferred| preferred.weight != 0 && term_matches(&preferred.term, node))
            .map(|preferred| i64::from(preferred.weight))
            .sum()
    }
}

impl Score for PreferredNodeAffinity {
    fn name(&self) -> &str {
        "node-affinity"
    }

    /// The sum of the weights of the preferred terms the node matches.
    fn score(&self, pod: &Pod, node: &NodeInfo) -> i64 {
        Self::matched_weight(&pod.preferred_node_affinity, node.node())
    }

    fn score_nodes(&self, pod: &Pod, _cache: &NodeCache, nodes: &[&NodeInfo], scores: &mut [i64]) {
        if pod.preferred_node_affinity.is_empty() {
            scores.fill(0);
            return;
        }
        for (score, node) in scores.iter_mut().zip(nodes) {
            *score = self.score(pod, node);
        }
    }

    /// `100 * sum / highest sum` (kube-scheduler's `DefaultNormalizeScore`).
    fn normalize(&self, _pod: &Pod, scores: &mut [i64]) {
        let max = scores.iter().copied().max().unwrap_or(0);
        if max <= 0 {
            return;
        }
        for score in scores.iter_mut().filter(|score| **score != 0) {
            *score = 100 * *score / max;
        }
    }
}

/// Whether every pair of a label selector is among `labels`.
pub fn selector_matches(selector: &[KeyValue], labels: &[KeyValue]) -> bool {
    selector.iter().all(|wanted| {
        crate::lookup(labels, &wanted.key).is_some_and(|value| str_eq(value, &wanted.value))
    })
}

/// Whether `other`, a pod bound to a node, counts as a sibling of the pending
/// `pod` for spreading: it has the same controlling owner (by uid, unique in
/// the cluster), or it is in the same namespace and its labels match one of
/// `pod`'s non-empty spread selectors (those of the services and replication
/// controllers that select `pod`; an empty selector selects nothing).
pub fn is_sibling(pod: &Pod, other: &Pod) -> bool {
    let same_owner = pod.owner.as_ref().is_some_and(|owner| {
        other
            .owner
            .as_ref()
            .is_some_and(|other| str_eq(&other.uid, &owner.uid))
    });
    same_owner
        || (str_eq(&other.namespace, &pod.namespace)
            && pod
                .spread_selectors
                .iter()
                .any(|selector| !selector.is_empty() && selector_matches(selector, &other.labels)))
}

/// Prefers nodes running fewer siblings of the pod ([`is_sibling`]: pods of
/// the same owner, or selected by the same services and replication
/// controllers), spreading replicas like kube-scheduler's `SelectorSpread`:
/// the node with the most siblings scores 0, nodes without any 100.
///
/// Counting is O(1) per node: pods without spread selectors are counted from
/// each node's owner index, the others from the cache's sibling counts
/// ([`NodeCache::sibling_counts`]). Pods with neither an owner nor spread
/// selectors score the same everywhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct OwnerSpread;

impl Score for OwnerSpread {
    fn name(&self) -> &str {
        "owner-spread"
    }

    /// The number of siblings of the pod on the node.
    fn score(&self, pod: &Pod, node: &NodeInfo) -> i64 {
        node.siblings(pod) as i64
    }

    fn score_nodes(&self, pod: &Pod, cache: &NodeCache, nodes: &[&NodeInfo], scores: &mut [i64]) {
        cache.sibling_counts(pod, nodes, scores);
    }

    /// 100 for the nodes with no sibling, down to 0 for the most crowded.
    fn normalize(&self, _pod: &Pod, scores: &mut [i64]) {
        reverse_normalize(scores);
    }
}

/// Prefers nodes with fewer `PreferNoSchedule` taints the pod does not
/// tolerate (the scoring half of kube-scheduler's `TaintToleration`; only
/// tolerations for all effects or for `PreferNoSchedule` count).
#[derive(Debug, Clone, Copy, Default)]
pub struct PreferNoScheduleTaints;

impl Score for PreferNoScheduleTaints {
    fn name(&self) -> &str {
        "prefer-no-schedule"
    }

    /// The number of untolerated `PreferNoSchedule` taints.
    fn score(&self, pod: &Pod, node: &NodeInfo) -> i64 {
        node.node()
            .taints
            .iter()
            .filter(|taint| taint.effect == TaintEffect::PreferNoSchedule)
            .filter(|taint| {
                !pod.tolerations.iter().any(|toleration| {
                    toleration
                        .effect
                        .is_none_or(|effect| effect == TaintEffect::PreferNoSchedule)
                        && toleration.tolerates(taint)
                })
            })
            .count() as i64
    }

    /// 100 for the nodes with no such taint, down to 0 for the most tainted.
    fn normalize(&self, _pod: &Pod, scores: &mut [i64]) {
        reverse_normalize(scores);
    }
}

/// Maps counts to 0..=100 with the highest count at 0 and a count of 0 at
/// 100 (kube-scheduler's `DefaultNormalizeScore` with `reverse`).
fn reverse_normalize(scores: &mut [i64]) {
    let max = scores.iter().copied().max().unwrap_or(0);
    for score in scores.iter_mut() {
        // Most counts are 0: no division for them.
        *score = if max <= 0 || *score == 0 {
            100
        } else {
            100 - 100 * *score / max
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::testing::{
        labels, node, owner, pod, port, requirement, taint, term, toleration,
    };
    use crate::scheduler::{ClusterEvent, Protocol, TolerationOperator};

    use SelectorOperator::{DoesNotExist, Exists, Gt, In, Lt, NotIn};
    use TaintEffect::{NoExecute, NoSchedule, PreferNoSchedule};

    /// One row of a filter's table.
    struct FilterCase {
        name: &'static str,
        pod: Pod,
        node: NodeInfo,
        want: Result<(), &'static str>,
    }

    fn case(
        name: &'static str,
        pod: Pod,
        node: NodeInfo,
        want: Result<(), &'static str>,
    ) -> FilterCase {
        FilterCase {
            name,
            pod,
            node,
            want,
        }
    }

    fn run_filter(filter: &dyn Filter, cases: Vec<FilterCase>) {
        for case in cases {
            let mut keep = [true];
            filter.passes_nodes(&case.pod, &[&case.node], &mut keep);
            assert_eq!(
                keep[0],
                case.want.is_ok(),
                "{}: {}: passes_nodes",
                filter.name(),
                case.name
            );
            assert_eq!(
                filter.passes(&case.pod, &case.node),
                case.want.is_ok(),
                "{}: {}: passes",
                filter.name(),
                case.name
            );
            assert_eq!(
                filter.filter(&case.pod, &case.node),
                case.want.map_err(str::to_owned),
                "{}: {}",
                filter.name(),
                case.name
            );
        }
    }

    /// A node of 4 CPUs and 8 GiB, changed by `f`.
    fn info_with(f: impl FnOnce(&mut Node)) -> NodeInfo {
        let mut n = node("n1", 4000, 8 << 30);
        f(&mut n);
        NodeInfo::new(n)
    }

    fn plain() -> NodeInfo {
        info_with(|_| {})
    }

    /// A pod requesting nothing, changed by `f`.
    fn pod_with(f: impl FnOnce(&mut Pod)) -> Pod {
        let mut p = pod("p", 0, 0);
        f(&mut p);
        p
    }

    fn tolerating(tolerations: Vec<Toleration>) -> Pod {
        pod_with(|p| p.tolerations = tolerations)
    }

    #[test]
    fn node_unschedulable_filter() {
        let cordoned = || info_with(|n| n.unschedulable = true);
        let exact = toleration(
            TAINT_UNSCHEDULABLE,
            TolerationOperator::Exists,
            "",
            Some(NoSchedule),
        );
        run_filter(
            &NodeUnschedulable,
            vec![
                case("schedulable node", pod("p", 0, 0), plain(), Ok(())),
                case(
                    "cordoned node",
                    pod("p", 0, 0),
                    cordoned(),
                    Err("node(s) were unschedulable"),
                ),
                case(
                    "tolerated by key and effect",
                    tolerating(vec![exact]),
                    cordoned(),
                    Ok(()),
                ),
                case(
                    "tolerate everything",
                    tolerating(vec![toleration("", TolerationOperator::Exists, "", None)]),
                    cordoned(),
                    Ok(()),
                ),
                case(
                    "toleration for another effect",
                    tolerating(vec![toleration(
                        TAINT_UNSCHEDULABLE,
                        TolerationOperator::Exists,
                        "",
                        Some(NoExecute),
                    )]),
                    cordoned(),
                    Err("node(s) were unschedulable"),
                ),
                case(
                    "not-ready toleration does not help",
                    tolerating(vec![toleration(
                        TAINT_NOT_READY,
                        TolerationOperator::Exists,
                        "",
                        None,
                    )]),
                    cordoned(),
                    Err("node(s) were unschedulable"),
                ),
            ],
        );
    }

    #[test]
    fn node_ready_filter() {
        let not_ready = || info_with(|n| n.ready = false);
        let reason = "node(s) had untolerated taint {node.kubernetes.io/not-ready: }";
        run_filter(
            &NodeReady,
            vec![
                case("ready node", pod("p", 0, 0), plain(), Ok(())),
                case("not ready", pod("p", 0, 0), not_ready(), Err(reason)),
                case(
                    "tolerated by key",
                    tolerating(vec![toleration(
                        TAINT_NOT_READY,
                        TolerationOperator::Exists,
                        "",
                        None,
                    )]),
                    not_ready(),
                    Ok(()),
                ),
                case(
                    "tolerate everything",
                    tolerating(vec![toleration("", TolerationOperator::Exists, "", None)]),
                    not_ready(),
                    Ok(()),
                ),
                case(
                    "NoExecute toleration only",
                    tolerating(vec![toleration(
                        TAINT_NOT_READY,
                        TolerationOperator::Exists,
                        "",
                        Some(NoExecute),
                    )]),
                    not_ready(),
                    Err(reason),
                ),
                case(
                    "cordoned but ready",
                    pod("p", 0, 0),
                    info_with(|n| n.unschedulable = true),
                    Ok(()),
                ),
            ],
        );
    }

    #[test]
    fn tolerations_match_like_kubernetes() {
        let t = taint("dedicated", "gpu", NoSchedule);
        let cases = [
            (
                toleration("dedicated", TolerationOperator::Equal, "gpu", None),
                true,
            ),
            (
                toleration("dedicated", TolerationOperator::Equal, "cpu", None),
                false,
            ),
            (
                toleration("dedicated", TolerationOperator::Exists, "", None),
                true,
            ),
            (
                toleration("other", TolerationOperator::Exists, "", None),
                false,
            ),
            (toleration("", TolerationOperator::Exists, "", None), true),
            (
                toleration(
                    "dedicated",
                    TolerationOperator::Exists,
                    "",
                    Some(NoSchedule),
                ),
                true,
            ),
            (
                toleration("dedicated", TolerationOperator::Exists, "", Some(NoExecute)),
                false,
            ),
        ];
        for (toleration, expected) in cases {
            assert_eq!(toleration.tolerates(&t), expected, "{toleration:?}");
        }
    }

    #[test]
    fn taint_toleration_filter() {
        let tainted = |taints: Vec<Taint>| info_with(|n| n.taints = taints);
        let gpu = || taint("dedicated", "gpu", NoSchedule);
        run_filter(
            &TaintToleration,
            vec![
                case("no taints", pod("p", 0, 0), plain(), Ok(())),
                case(
                    "untolerated NoSchedule",
                    pod("p", 0, 0),
                    tainted(vec![gpu()]),
                    Err("node(s) had untolerated taint {dedicated: gpu}"),
                ),
                case(
                    "untolerated NoExecute",
                    pod("p", 0, 0),
                    tainted(vec![taint("evict", "now", NoExecute)]),
                    Err("node(s) had untolerated taint {evict: now}"),
                ),
                case(
                    "an empty value",
                    pod("p", 0, 0),
                    tainted(vec![taint("special", "", NoSchedule)]),
                    Err("node(s) had untolerated taint {special: }"),
                ),
                case(
                    "PreferNoSchedule only",
                    pod("p", 0, 0),
                    tainted(vec![taint("soft", "", PreferNoSchedule)]),
                    Ok(()),
                ),
                case(
                    "tolerated with Equal",
                    tolerating(vec![toleration(
                        "dedicated",
                        TolerationOperator::Equal,
                        "gpu",
                        None,
                    )]),
                    tainted(vec![gpu()]),
                    Ok(()),
                ),
                case(
                    "Equal with another value",
                    tolerating(vec![toleration(
                        "dedicated",
                        TolerationOperator::Equal,
                        "cpu",
                        None,
                    )]),
                    tainted(vec![gpu()]),
                    Err("node(s) had untolerated taint {dedicated: gpu}"),
                ),
                case(
                    "the first untolerated taint is reported",
                    tolerating(vec![toleration(
                        "dedicated",
                        TolerationOperator::Exists,
                        "",
                        None,
                    )]),
                    tainted(vec![
                        taint("soft", "", PreferNoSchedule),
                        gpu(),
                        taint("evict", "now", NoExecute),
                        taint("other", "x", NoSchedule),
                    ]),
                    Err("node(s) had untolerated taint {evict: now}"),
                ),
                case(
                    "all tolerated",
                    tolerating(vec![
                        toleration("dedicated", TolerationOperator::Exists, "", None),
                        toleration("evict", TolerationOperator::Exists, "", Some(NoExecute)),
                    ]),
                    tainted(vec![gpu(), taint("evict", "now", NoExecute)]),
                    Ok(()),
                ),
            ],
        );
    }

    #[test]
    fn requirement_operators() {
        let cases = [
            (requirement("k", In, &["a", "b"]), Some("b"), true),
            (requirement("k", In, &["a", "b"]), Some("c"), false),
            (requirement("k", In, &["a"]), None, false),
            (requirement("k", NotIn, &["a"]), Some("b"), true),
            (requirement("k", NotIn, &["a"]), Some("a"), false),
            (requirement("k", NotIn, &["a"]), None, true),
            (requirement("k", Exists, &[]), Some(""), true),
            (requirement("k", Exists, &[]), None, false),
            (requirement("k", DoesNotExist, &[]), None, true),
            (requirement("k", DoesNotExist, &[]), Some("x"), false),
            (requirement("k", Gt, &["5"]), Some("6"), true),
            (requirement("k", Gt, &["5"]), Some("5"), false),
            (requirement("k", Gt, &["-1"]), Some("0"), true),
            (requirement("k", Gt, &["5"]), Some("six"), false),
            (requirement("k", Gt, &["5"]), None, false),
            (requirement("k", Gt, &["5", "6"]), Some("9"), false),
            (requirement("k", Lt, &["5"]), Some("4"), true),
            (requirement("k", Lt, &["5"]), Some("10"), false),
            (requirement("k", Lt, &["x"]), Some("1"), false),
        ];
        for (requirement, value, expected) in cases {
            assert_eq!(
                requirement_matches(&requirement, value),
                expected,
                "{requirement:?} on {value:?}"
            );
        }
    }

    #[test]
    fn node_selector_terms() {
        let mut n = node("n1", 4000, 8 << 30);
        n.labels = labels(&[("zone", "a"), ("cores", "16")]);
        let cases = [
            (
                "all expressions hold",
                term(
                    vec![
                        requirement("zone", In, &["a"]),
                        requirement("cores", Gt, &["8"]),
                    ],
                    vec![],
                ),
                true,
            ),
            (
                "one expression fails",
                term(
                    vec![
                        requirement("zone", In, &["a"]),
                        requirement("cores", Lt, &["8"]),
                    ],
                    vec![],
                ),
                false,
            ),
            (
                "metadata.name In",
                term(vec![], vec![requirement("metadata.name", In, &["n1"])]),
                true,
            ),
            (
                "metadata.name NotIn",
                term(vec![], vec![requirement("metadata.name", NotIn, &["n1"])]),
                false,
            ),
            (
                "another field",
                term(vec![], vec![requirement("metadata.uid", In, &["n1"])]),
                false,
            ),
            (
                "metadata.name Exists",
                term(vec![], vec![requirement("metadata.name", Exists, &[])]),
                false,
            ),
            (
                "expressions and fields",
                term(
                    vec![requirement("zone", In, &["a"])],
                    vec![requirement("metadata.name", In, &["n2"])],
                ),
                false,
            ),
            ("an empty term", term(vec![], vec![]), false),
        ];
        for (name, term, expected) in cases {
            assert_eq!(term_matches(&term, &n), expected, "{name}");
        }
    }

    #[test]
    fn node_affinity_filter() {
        let zoned =
            |zone: &str| info_with(|n| n.labels = labels(&[("disk", "ssd"), ("zone", zone)]));
        let selecting = |pairs: &[(&str, &str)]| pod_with(|p| p.node_selector = labels(pairs));
        let requiring =
            |terms: Vec<NodeSelectorTerm>| pod_with(|p| p.required_node_affinity = terms);
        let zone_b = || term(vec![requirement("zone", In, &["b"])], vec![]);
        let named_n1 = || {
            term(
                vec![],
                vec![requirement("metadata.name", In, &["n1", "n2"])],
            )
        };
        let reason = "node(s) didn't match Pod's node affinity/selector";
        run_filter(
            &NodeAffinity,
            vec![
                case("no constraints", pod("p", 0, 0), zoned("a"), Ok(())),
                case(
                    "selector matches",
                    selecting(&[("disk", "ssd")]),
                    zoned("a"),
                    Ok(()),
                ),
                case(
                    "selector: every pair",
                    selecting(&[("disk", "ssd"), ("zone", "b")]),
                    zoned("a"),
                    Err(reason),
                ),
                case(
                    "selector: missing label",
                    selecting(&[("gpu", "yes")]),
                    zoned("a"),
                    Err(reason),
                ),
                case(
                    "affinity: one term matches",
                    requiring(vec![zone_b()]),
                    zoned("b"),
                    Ok(()),
                ),
                case(
                    "affinity: no term matches",
                    requiring(vec![zone_b()]),
                    zoned("a"),
                    Err(reason),
                ),
                case(
                    "affinity: any term may match",
                    requiring(vec![zone_b(), named_n1()]),
                    zoned("a"),
                    Ok(()),
                ),
                case(
                    "affinity: an empty term matches nothing",
                    requiring(vec![term(vec![], vec![])]),
                    zoned("a"),
                    Err(reason),
                ),
                case(
                    "selector and affinity must both hold",
                    pod_with(|p| {
                        p.node_selector = labels(&[("disk", "hdd")]);
                        p.required_node_affinity = vec![named_n1()];
                    }),
                    zoned("a"),
                    Err(reason),
                ),
                case(
                    "preferences do not filter",
                    pod_with(|p| {
                        p.preferred_node_affinity = vec![PreferredTerm {
                            weight: 100,
                            term: zone_b(),
                        }];
                    }),
                    zoned("a"),
                    Ok(()),
                ),
            ],
        );
    }

    #[test]
    fn node_ports_filter() {
        let busy_node = || {
            let mut n = plain();
            n.add_pod(pod_with(|p| {
                p.host_ports = vec![port(80, "10.0.0.1"), port(0, ""), port(53, "")]
            }));
            n
        };
        let wanting = |ports: Vec<HostPort>| pod_with(|p| p.host_ports = ports);
        let udp = |number: u16, ip: &str| HostPort {
            port: number,
            protocol: Protocol::Udp,
            host_ip: ip.into(),
        };
        let reason = "node(s) didn't have free ports for the requested pod ports";
        run_filter(
            &NodePorts,
            vec![
                case("no ports wanted", pod("p", 0, 0), busy_node(), Ok(())),
                case("free node", wanting(vec![port(80, "")]), plain(), Ok(())),
                case(
                    "same address",
                    wanting(vec![port(80, "10.0.0.1")]),
                    busy_node(),
                    Err(reason),
                ),
                case(
                    "wanted on every address",
                    wanting(vec![port(80, "")]),
                    busy_node(),
                    Err(reason),
                ),
                case(
                    "0.0.0.0 is every address",
                    wanting(vec![port(80, "0.0.0.0")]),
                    busy_node(),
                    Err(reason),
                ),
                case(
                    "used on every address",
                    wanting(vec![port(53, "10.0.0.9")]),
                    busy_node(),
                    Err(reason),
                ),
                case(
                    "another address",
                    wanting(vec![port(80, "10.0.0.2")]),
                    busy_node(),
                    Ok(()),
                ),
                case(
                    "another port",
                    wanting(vec![port(81, "")]),
                    busy_node(),
                    Ok(()),
                ),
                case(
                    "port 0 is no host port",
                    wanting(vec![port(0, "")]),
                    busy_node(),
                    Ok(()),
                ),
                case(
                    "another protocol",
                    wanting(vec![udp(80, "")]),
                    busy_node(),
                    Ok(()),
                ),
                case(
                    "one of several",
                    wanting(vec![port(8080, ""), port(80, "")]),
                    busy_node(),
                    Err(reason),
                ),
            ],
        );
    }

    #[test]
    fn node_resources_fit_filter() {
        // 1 CPU, 1 GiB, 10 GiB of ephemeral storage, 2 pods; 600m and 512 MiB used by one pod.
        let half_full = || {
            let mut n = node("n1", 1000, 1 << 30);
            n.allocatable.ephemeral_storage = 10 << 30;
            n.allocatable.pods = 2;
            let mut n = NodeInfo::new(n);
            n.add_pod(pod("a", 600, 512 << 20));
            n
        };
        let full = || {
            let mut n = half_full();
            n.add_pod(pod("b", 0, 0));
            n
        };
        let storage = |bytes: u64| pod_with(|p| p.requests.ephemeral_storage = bytes);
        run_filter(
            &NodeResourcesFit,
            vec![
                case(
                    "fits exactly",
                    pod("p", 400, 512 << 20),
                    half_full(),
                    Ok(()),
                ),
                case("requests nothing", pod("p", 0, 0), half_full(), Ok(())),
                case(
                    "one millicore too many",
                    pod("p", 401, 0),
                    half_full(),
                    Err("Insufficient cpu"),
                ),
                case(
                    "one byte too many",
                    pod("p", 0, (512 << 20) + 1),
                    half_full(),
                    Err("Insufficient memory"),
                ),
                case(
                    "storage",
                    storage(11 << 30),
                    half_full(),
                    Err("Insufficient ephemeral-storage"),
                ),
                case(
                    "several resources",
                    pod_with(|p| {
                        p.requests.milli_cpu = 500;
                        p.requests.memory = 1 << 30;
                        p.requests.ephemeral_storage = 11 << 30;
                    }),
                    half_full(),
                    Err("Insufficient cpu, Insufficient memory, Insufficient ephemeral-storage"),
                ),
                case(
                    "pod slots taken",
                    pod("p", 0, 0),
                    full(),
                    Err("Too many pods"),
                ),
                case(
                    "pods first",
                    pod("p", 2000, 0),
                    full(),
                    Err("Too many pods, Insufficient cpu"),
                ),
            ],
        );
    }

    /// Scores `pod` on each node, normalized over all of them.
    fn scores(score: &dyn Score, pod: &Pod, nodes: &[NodeInfo]) -> Vec<i64> {
        let mut values: Vec<i64> = nodes.iter().map(|n| score.score(pod, n)).collect();
        score.normalize(pod, &mut values);
        values
    }

    /// A node with `milli_cpu` and `memory` allocatable and one pod using
    /// `used_cpu` and `used_memory`.
    fn loaded(milli_cpu: u64, memory: u64, used_cpu: u64, used_memory: u64) -> NodeInfo {
        let mut n = NodeInfo::new(node("n", milli_cpu, memory));
        n.add_pod(pod("used", used_cpu, used_memory));
        n
    }

    #[test]
    fn least_allocated_score() {
        const GI: u64 = 1 << 30;
        // (pod cpu, pod memory, node, expected)
        let cases = [
            // (4000-1000)/4000 = 75, (4Gi-1Gi)/4Gi = 75
            ((1000, GI), NodeInfo::new(node("n", 4000, 4 * GI)), 75),
            // A pod requesting nothing counts 100m and 200Mi: 97 and 95.
            (
                (0, 0),
                NodeInfo::new(node("n", 4000, 4 * GI)),
                (97 + 95) / 2,
            ),
            // cpu (4000-3000)/4000 = 25, memory (4Gi-3Gi)/4Gi = 25
            ((1000, GI), loaded(4000, 4 * GI, 2000, 2 * GI), 25),
            ((1000, GI), loaded(4000, 4 * GI, 4000, 4 * GI), 0),
            // Over-committed: 0, not negative.
            ((8000, 8 * GI), NodeInfo::new(node("n", 4000, 4 * GI)), 0),
            // No memory at all: CPU alone counts.
            ((1000, 0), NodeInfo::new(node("n", 4000, 0)), 75),
            ((1, 1), NodeInfo::new(node("n", 0, 0)), 0),
        ];
        for ((cpu, memory), n, expected) in cases {
            assert_eq!(
                LeastAllocated.score(&pod("p", cpu, memory), &n),
                expected,
                "pod {cpu}m {memory}B on {:?}",
                n.node().allocatable
            );
        }
    }

    #[test]
    fn balanced_allocation_score() {
        const GI: u64 = 1 << 30;
        let cases = [
            ((2000, 2 * GI), NodeInfo::new(node("n", 4000, 4 * GI)), 100),
            // cpu 100%, memory 0%: deviation 0.5
            ((4000, 0), NodeInfo::new(node("n", 4000, 4 * GI)), 50),
            // cpu 50%, memory 25%: deviation 0.125
            ((2000, GI), NodeInfo::new(node("n", 4000, 4 * GI)), 87),
            // cpu (1000+1000)/4000 = 50%, memory (3Gi+1Gi)/4Gi = 100%
            ((1000, GI), loaded(4000, 4 * GI, 1000, 3 * GI), 75),
            // Fractions are capped at 1.
            ((8000, 2 * GI), NodeInfo::new(node("n", 4000, 4 * GI)), 75),
            // A resource the node has none of does not count.
            ((1000, GI), NodeInfo::new(node("n", 4000, 0)), 100),
        ];
        for ((cpu, memory), n, expected) in cases {
            assert_eq!(
                BalancedAllocation.score(&pod("p", cpu, memory), &n),
                expected,
                "pod {cpu}m {memory}B on {:?}",
                n.node().allocatable
            );
        }
    }

    #[test]
    fn preferred_node_affinity_score() {
        let zone = |name: &str, zone: &str, disk: &str| {
            let mut n = node(name, 4000, 4 << 30);
            n.labels = labels(&[("zone", zone), ("disk", disk)]);
            NodeInfo::new(n)
        };
        let nodes = [
            zone("a1", "a", "ssd"),
            zone("b1", "b", "ssd"),
            zone("c1", "c", "hdd"),
        ];
        let preferring = |terms: &[(i32, NodeSelectorTerm)]| {
            pod_with(|p| {
                p.preferred_node_affinity = terms
                    .iter()
                    .map(|(weight, term)| PreferredTerm {
                        weight: *weight,
                        term: term.clone(),
                    })
                    .collect();
            })
        };
        let zone_in = |zones: &[&str]| term(vec![requirement("zone", In, zones)], vec![]);
        let ssd = || term(vec![requirement("disk", In, &["ssd"])], vec![]);
        // (case, pod, raw sums, normalized)
        let cases = [
            ("no preference", pod("p", 0, 0), [0, 0, 0], [0, 0, 0]),
            (
                "one term",
                preferring(&[(10, zone_in(&["b"]))]),
                [0, 10, 0],
                [0, 100, 0],
            ),
            (
                "weights add up",
                preferring(&[(20, zone_in(&["a"])), (60, ssd())]),
                [80, 60, 0],
                [100, 75, 0],
            ),
            (
                "several values",
                preferring(&[(5, zone_in(&["a", "c"]))]),
                [5, 0, 5],
                [100, 0, 100],
            ),
            (
                "an empty term counts nothing",
                preferring(&[(50, term(vec![], vec![]))]),
                [0, 0, 0],
                [0, 0, 0],
            ),
            (
                "by node name",
                preferring(&[
                    (
                        3,
                        term(vec![], vec![requirement("metadata.name", In, &["c1"])]),
                    ),
                    (1, ssd()),
                ]),
                [1, 1, 3],
                [33, 33, 100],
            ),
        ];
        for (name, p, raw, normalized) in cases {
            let raws: Vec<i64> = nodes
                .iter()
                .map(|n| PreferredNodeAffinity.score(&p, n))
                .collect();
            assert_eq!(raws, raw, "{name}");
            assert_eq!(
                scores(&PreferredNodeAffinity, &p, &nodes),
                normalized,
                "{name}"
            );
        }
        assert_eq!(
            Score::name(&PreferredNodeAffinity),
            Filter::name(&NodeAffinity)
        );
    }

    #[test]
    fn owner_spread_score() {
        let replica = |name: &str, uid: &str| {
            pod_with(|p| {
                p.name = name.into();
                p.uid = format!("{name}-uid");
                p.owner = Some(owner(uid));
                p.labels = labels(&[("app", "web")]);
            })
        };
        let labelled = |name: &str, namespace: &str, pairs: &[(&str, &str)]| {
            pod_with(|p| {
                p.name = name.into();
                p.uid = format!("{name}-uid");
                p.namespace = namespace.into();
                p.labels = labels(pairs);
            })
        };
        let node_with = |name: &str, pods: Vec<Pod>| {
            let mut n = NodeInfo::new(node(name, 4000, 4 << 30));
            for p in pods {
                n.add_pod(p);
            }
            n
        };
        let nodes = [
            // Two replicas of rs-1.
            node_with("a", vec![replica("r1", "rs-1"), replica("r2", "rs-1")]),
            // One replica of rs-1, one of rs-2, a bare pod labelled app=web.
            node_with(
                "b",
                vec![
                    replica("r3", "rs-1"),
                    replica("r4", "rs-2"),
                    labelled("bare", "default", &[("app", "web")]),
                ],
            ),
            // app=web in another namespace, and an unrelated pod.
            node_with(
                "c",
                vec![
                    labelled("elsewhere", "other", &[("app", "web")]),
                    labelled("db", "default", &[("app", "db")]),
                ],
            ),
            node_with("d", vec![]),
        ];
        let pending = |owner_uid: Option<&str>, selectors: Vec<Vec<KeyValue>>| {
            pod_with(|p| {
                p.owner = owner_uid.map(owner);
                p.spread_selectors = selectors;
            })
        };
        let web = || labels(&[("app", "web")]);
        // (case, pending pod, sibling counts on a, b, c, d, normalized scores)
        let cases = [
            (
                "no owner, no selector",
                pending(None, vec![]),
                [0, 0, 0, 0],
                [100, 100, 100, 100],
            ),
            (
                "by owner",
                pending(Some("rs-1"), vec![]),
                [2, 1, 0, 0],
                [0, 50, 100, 100],
            ),
            (
                "another owner",
                pending(Some("rs-2"), vec![]),
                [0, 1, 0, 0],
                [100, 0, 100, 100],
            ),
            (
                "by selector, in the namespace",
                pending(None, vec![web()]),
                [2, 3, 0, 0],
                [34, 0, 100, 100],
            ),
            // r1-r4 match both: each counts once.
            (
                "owner or selector",
                pending(Some("rs-1"), vec![web()]),
                [2, 3, 0, 0],
                [34, 0, 100, 100],
            ),
            (
                "every pair must match",
                pending(None, vec![labels(&[("app", "web"), ("tier", "front")])]),
                [0, 0, 0, 0],
                [100, 100, 100, 100],
            ),
            (
                "any selector",
                pending(
                    None,
                    vec![labels(&[("app", "db")]), labels(&[("app", "none")])],
                ),
                [0, 0, 1, 0],
                [100, 100, 0, 100],
            ),
            (
                "an empty selector selects nothing",
                pending(Some("rs-2"), vec![vec![]]),
                [0, 1, 0, 0],
                [100, 0, 100, 100],
            ),
        ];
        for (name, p, counts, normalized) in cases {
            let raw: Vec<i64> = nodes.iter().map(|n| OwnerSpread.score(&p, n)).collect();
            assert_eq!(raw, counts, "{name}");
            let scan: Vec<i64> = nodes
                .iter()
                .map(|n| {
                    n.pods()
                        .iter()
                        .filter(|other| is_sibling(&p, other))
                        .count() as i64
                })
                .collect();
            assert_eq!(scan, counts, "{name}: is_sibling");
            assert_eq!(scores(&OwnerSpread, &p, &nodes), normalized, "{name}");

            // The same counts through a cache, three times: scanned, then
            // built into the index, then read from it.
            let mut cache = NodeCache::new();
            for n in &nodes {
                cache.apply(ClusterEvent::NodeAdded(n.node().clone()));
                for other in n.pods() {
                    cache.apply(crate::scheduler::testing::assigned(other.clone(), n.name()));
                }
            }
            let cached: Vec<&NodeInfo> = cache.nodes().collect();
            for round in 0..3 {
                let mut values = vec![-1; cached.len()];
                OwnerSpread.score_nodes(&p, &cache, &cached, &mut values);
                assert_eq!(values, counts, "{name}: cache, round {round}");
            }
        }
    }

    #[test]
    fn prefer_no_schedule_score() {
        let tainted = |taints: Vec<Taint>| info_with(|n| n.taints = taints);
        let nodes = [
            tainted(vec![
                taint("soft", "1", PreferNoSchedule),
                taint("softer", "2", PreferNoSchedule),
                taint("hard", "3", NoSchedule),
            ]),
            tainted(vec![taint("soft", "1", PreferNoSchedule)]),
            tainted(vec![taint("hard", "3", NoSchedule)]),
            plain(),
        ];
        // (case, tolerations, raw counts, normalized)
        let cases = [
            ("no tolerations", vec![], [2, 1, 0, 0], [0, 50, 100, 100]),
            (
                "a NoSchedule toleration does not count",
                vec![toleration(
                    "soft",
                    TolerationOperator::Exists,
                    "",
                    Some(NoSchedule),
                )],
                [2, 1, 0, 0],
                [0, 50, 100, 100],
            ),
            (
                "tolerations for every effect count",
                vec![toleration("softer", TolerationOperator::Equal, "2", None)],
                [1, 1, 0, 0],
                [0, 0, 100, 100],
            ),
            (
                "PreferNoSchedule tolerations count",
                vec![toleration(
                    "soft",
                    TolerationOperator::Exists,
                    "",
                    Some(PreferNoSchedule),
                )],
                [1, 0, 0, 0],
                [0, 100, 100, 100],
            ),
            (
                "tolerate everything",
                vec![toleration("", TolerationOperator::Exists, "", None)],
                [0, 0, 0, 0],
                [100, 100, 100, 100],
            ),
        ];
        for (name, tolerations, raw, normalized) in cases {
            let p = tolerating(tolerations);
            let counts: Vec<i64> = nodes
                .iter()
                .map(|n| PreferNoScheduleTaints.score(&p, n))
                .collect();
            assert_eq!(counts, raw, "{name}");
            assert_eq!(
                scores(&PreferNoScheduleTaints, &p, &nodes),
                normalized,
                "{name}"
            );
        }
    }
}
