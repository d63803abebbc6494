//! The built-in filters and scores, after kube-scheduler's plugins of the
//! same purpose, with its messages.
//!
//! [`Framework::with_defaults`](super::Framework::with_defaults) uses all of
//! them; add them one by one to [`Framework::new`](super::Framework::new) for
//! another selection.

use super::cache::non_zero_requests;
use super::{
    Filter, HostPort, Node, NodeInfo, NodeSelectorRequirement, NodeSelectorTerm, Pod, Resources,
    Score, SelectorOperator, Taint, TaintEffect, Toleration,
};

/// The taint the node controller puts on cordoned nodes.
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
/// The taint the node controller puts on nodes that are not ready.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";

fn tolerated(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations
        .iter()
        .any(|toleration| toleration.tolerates(taint))
}

fn condition_taint(key: &str) -> Taint {
    Taint {
        key: key.to_owned(),
        value: String::new(),
        effect: TaintEffect::NoSchedule,
    }
}

/// Rules out cordoned nodes (`spec.unschedulable`), unless the pod tolerates
/// the `node.kubernetes.io/unschedulable:NoSchedule` taint.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeUnschedulable;

impl Filter for NodeUnschedulable {
    fn name(&self) -> &str {
        "node-unschedulable"
    }

    fn filter(&self, pod: &Pod, node: &NodeInfo) -> Result<(), String> {
        if node.node().unschedulable
            && !tolerated(&pod.tolerations, &condition_taint(TAINT_UNSCHEDULABLE))
        {
            return Err("node(s) were unschedulable".into());
        }
        Ok(())
    }
}

/// Rules out nodes whose Ready condition is not True, unless the pod
/// tolerates the `node.kubernetes.io/not-ready:NoSchedule` taint.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeReady;

impl Filter for NodeReady {
    fn name(&self) -> &str {
        "node-ready"
    }

    fn filter(&self, pod: &Pod, node: &NodeInfo) -> Result<(), String> {
        if !node.node().ready && !tolerated(&pod.tolerations, &condition_taint(TAINT_NOT_READY)) {
            return Err("node(s) were not ready".into());
        }
        Ok(())
    }
}

/// Rules out nodes with a `NoSchedule` or `NoExecute` taint the pod does not
/// tolerate.
#[derive(Debug, Clone, Copy, Default)]
pub struct TaintToleration;

impl Filter for TaintToleration {
    fn name(&self) -> &str {
        "taint-toleration"
    }

    fn filter(&self, pod: &Pod, node: &NodeInfo) -> Result<(), String> {
        let untolerated = node.node().taints.iter().find(|taint| {
            matches!(
                taint.effect,
                TaintEffect::NoSchedule | TaintEffect::NoExecute
            ) && !tolerated(&pod.tolerations, taint)
        });
        match untolerated {
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

    fn filter(&self, pod: &Pod, node: &NodeInfo) -> Result<(), String> {
        let node = node.node();
        let selector_matches = pod
            .node_selector
            .iter()
            .all(|wanted| node.label(&wanted.key) == Some(wanted.value.as_str()));
        let affinity_matches = pod.required_node_affinity.is_empty()
            || pod
                .required_node_affinity
                .iter()
                .any(|term| term_matches(term, node));
        if selector_matches && affinity_matches {
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
    let listed = |value: &str| requirement.values.iter().any(|listed| listed == value);
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

    fn filter(&self, pod: &Pod, node: &NodeInfo) -> Result<(), String> {
        let conflict = pod
            .host_ports
            .iter()
            .filter(|wanted| wanted.port != 0)
            .any(|wanted| {
                node.used_ports()
                    .iter()
                    .any(|used| ports_conflict(wanted, used))
            });
        if conflict {
            Err("node(s) didn't have free ports for the requested pod ports".into())
        } else {
            Ok(())
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
/// left of the node's allocatable (several joined by `, `).
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeResourcesFit;

impl Filter for NodeResourcesFit {
    fn name(&self) -> &str {
        "node-resources-fit"
    }

    fn filter(&self, pod: &Pod, node: &NodeInfo) -> Result<(), String> {
        let allocatable = node.node().allocatable;
        let requested = node.requested();
        let wanted = pod.requests;
        let mut reasons = Vec::new();
        if node.pods().len() as u64 + 1 > u64::from(allocatable.pods) {
            reasons.push("Too many pods");
        }
        let short = |wanted: u64, allocatable: u64, requested: u64| {
            wanted > 0 && wanted > allocatable.saturating_sub(requested)
        };
        if short(wanted.milli_cpu, allocatable.milli_cpu, requested.milli_cpu) {
            reasons.push("Insufficient cpu");
        }
        if short(wanted.memory, allocatable.memory, requested.memory) {
            reasons.push("Insufficient memory");
        }
        if short(
            wanted.ephemeral_storage,
            allocatable.ephemeral_storage,
            requested.ephemeral_storage,
        ) {
            reasons.push("Insufficient ephemeral-storage");
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons.join(", "))
        }
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

/// Prefers nodes with the most CPU and memory left once the pod is on them
/// (kube-scheduler's `LeastAllocated`, CPU and memory weighted equally).
#[derive(Debug, Clone, Copy, Default)]
pub struct LeastAllocated;

impl Score for LeastAllocated {
    fn name(&self) -> &str {
        "least-allocated"
    }

    fn score(&self, pod: &Pod, node: &NodeInfo) -> i64 {
        fn free_share(requested: u64, capacity: u64) -> i64 {
            if capacity == 0 || requested > capacity {
                return 0;
            }
            ((u128::from(capacity - requested) * 100) / u128::from(capacity)) as i64
        }
        let requested = requested_with(pod, node, true);
        let allocatable = node.node().allocatable;
        (free_share(requested.milli_cpu, allocatable.milli_cpu)
            + free_share(requested.memory, allocatable.memory))
            / 2
    }
}

/// Prefers nodes whose CPU and memory stay equally used once the pod is on
/// them (kube-scheduler's `NodeResourcesBalancedAllocation`).
#[derive(Debug, Clone, Copy, Default)]
pub struct BalancedAllocation;

impl Score for BalancedAllocation {
    fn name(&self) -> &str {
        "balanced-allocation"
    }

    fn score(&self, pod: &Pod, node: &NodeInfo) -> i64 {
        let requested = requested_with(pod, node, false);
        let allocatable = node.node().allocatable;
        let fractions: Vec<f64> = [
            (requested.milli_cpu, allocatable.milli_cpu),
            (requested.memory, allocatable.memory),
        ]
        .into_iter()
        .filter(|&(_, capacity)| capacity > 0)
        .map(|(requested, capacity)| (requested as f64 / capacity as f64).min(1.0))
        .collect();
        let deviation = match fractions.as_slice() {
            [cpu, memory] => ((cpu - memory) / 2.0).abs(),
            _ => 0.0,
        };
        ((1.0 - deviation) * 100.0) as i64
    }
}

/// Prefers nodes running fewer pods of the pod's owner (same namespace and
/// owner uid), spreading replicas, like kube-scheduler's selector spreading.
/// Pods without an owner score the same everywhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct OwnerSpread;

impl Score for OwnerSpread {
    fn name(&self) -> &str {
        "owner-spread"
    }

    /// The number of pods on the node with the same owner.
    fn score(&self, pod: &Pod, node: &NodeInfo) -> i64 {
        let Some(owner) = &pod.owner else {
            return 0;
        };
        node.pods()
            .iter()
            .filter(|other| {
                other.namespace == pod.namespace
                    && other
                        .owner
                        .as_ref()
                        .is_some_and(|other| other.uid == owner.uid)
            })
            .count() as i64
    }

    /// 100 for the nodes with no such pod, down to 0 for the most crowded.
    fn normalize(&self, _pod: &Pod, scores: &mut [i64]) {
        reverse_normalize(scores);
    }
}

/// Prefers nodes with fewer `PreferNoSchedule` taints the pod does not
/// tolerate (the scoring half of kube-scheduler's `TaintToleration`).
#[derive(Debug, Clone, Copy, Default)]
pub struct PreferNoScheduleTaints;

impl Score for PreferNoScheduleTaints {
    fn name(&self) -> &str {
        "prefer-no-schedule"
    }

    /// The number of untolerated `PreferNoSchedule` taints.
    fn score(&self, pod: &Pod, node: &NodeInfo) -> i64 {
        let tolerations: Vec<&Toleration> = pod
            .tolerations
            .iter()
            .filter(|t| t.effect.is_none_or(|e| e == TaintEffect::PreferNoSchedule))
            .collect();
        node.node()
            .taints
            .iter()
            .filter(|taint| taint.effect == TaintEffect::PreferNoSchedule)
            .filter(|taint| !tolerations.iter().any(|t| t.tolerates(taint)))
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
        *score = if max <= 0 {
            100
        } else {
            100 - 100 * *score / max
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyValue;
    use crate::scheduler::testing::{node, pod, port};
    use crate::scheduler::{Owner, Protocol, TolerationOperator};

    fn info(node: Node) -> NodeInfo {
        NodeInfo::new(node)
    }

    fn taint(key: &str, value: &str, effect: TaintEffect) -> Taint {
        Taint {
            key: key.into(),
            value: value.into(),
            effect,
        }
    }

    fn toleration(
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

    fn requirement(
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

    fn labelled(labels: &[(&str, &str)]) -> Node {
        let mut n = node("n1", 4000, 8 << 30);
        n.labels = labels.iter().map(|(k, v)| KeyValue::new(k, v)).collect();
        n
    }

    #[test]
    fn unschedulable_and_not_ready_nodes() {
        let mut cordoned = node("n1", 1000, 1 << 30);
        cordoned.unschedulable = true;
        let mut p = pod("p", 0, 0);
        assert_eq!(
            NodeUnschedulable.filter(&p, &info(cordoned.clone())),
            Err("node(s) were unschedulable".into())
        );
        p.tolerations = vec![toleration(
            TAINT_UNSCHEDULABLE,
            TolerationOperator::Exists,
            "",
            Some(TaintEffect::NoSchedule),
        )];
        assert_eq!(NodeUnschedulable.filter(&p, &info(cordoned)), Ok(()));

        let mut not_ready = node("n1", 1000, 1 << 30);
        not_ready.ready = false;
        assert_eq!(
            NodeReady.filter(&pod("p", 0, 0), &info(not_ready.clone())),
            Err("node(s) were not ready".into())
        );
        let mut tolerant = pod("p", 0, 0);
        tolerant.tolerations = vec![toleration("", TolerationOperator::Exists, "", None)];
        assert_eq!(NodeReady.filter(&tolerant, &info(not_ready)), Ok(()));
    }

    #[test]
    fn tolerations_match_like_kubernetes() {
        let t = taint("dedicated", "gpu", TaintEffect::NoSchedule);
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
                    Some(TaintEffect::NoSchedule),
                ),
                true,
            ),
            (
                toleration(
                    "dedicated",
                    TolerationOperator::Exists,
                    "",
                    Some(TaintEffect::NoExecute),
                ),
                false,
            ),
        ];
        for (toleration, expected) in cases {
            assert_eq!(toleration.tolerates(&t), expected, "{toleration:?}");
        }
    }

    #[test]
    fn untolerated_taints() {
        let mut tainted = node("n1", 1000, 1 << 30);
        tainted.taints = vec![
            taint("soft", "", TaintEffect::PreferNoSchedule),
            taint("dedicated", "gpu", TaintEffect::NoSchedule),
            taint("evict", "now", TaintEffect::NoExecute),
        ];
        let mut p = pod("p", 0, 0);
        assert_eq!(
            TaintToleration.filter(&p, &info(tainted.clone())),
            Err("node(s) had untolerated taint {dedicated: gpu}".into())
        );
        p.tolerations = vec![toleration(
            "dedicated",
            TolerationOperator::Equal,
            "gpu",
            None,
        )];
        assert_eq!(
            TaintToleration.filter(&p, &info(tainted.clone())),
            Err("node(s) had untolerated taint {evict: now}".into())
        );
        p.tolerations.push(toleration(
            "evict",
            TolerationOperator::Exists,
            "",
            Some(TaintEffect::NoExecute),
        ));
        assert_eq!(TaintToleration.filter(&p, &info(tainted)), Ok(()));
    }

    #[test]
    fn node_selector() {
        let n = info(labelled(&[("disk", "ssd"), ("zone", "a")]));
        let mut p = pod("p", 0, 0);
        p.node_selector = vec![KeyValue::new("disk", "ssd")];
        assert_eq!(NodeAffinity.filter(&p, &n), Ok(()));
        p.node_selector.push(KeyValue::new("zone", "b"));
        assert_eq!(
            NodeAffinity.filter(&p, &n),
            Err("node(s) didn't match Pod's node affinity/selector".into())
        );
    }

    #[test]
    fn requirement_operators() {
        use SelectorOperator::*;
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
    fn required_node_affinity_terms() {
        use SelectorOperator::*;
        let n = labelled(&[("zone", "a"), ("cores", "16")]);
        let term = |expressions: Vec<NodeSelectorRequirement>,
                    fields: Vec<NodeSelectorRequirement>| {
            NodeSelectorTerm {
                match_expressions: expressions,
                match_fields: fields,
            }
        };
        // All requirements of a term must hold.
        assert!(term_matches(
            &term(
                vec![
                    requirement("zone", In, &["a"]),
                    requirement("cores", Gt, &["8"])
                ],
                vec![]
            ),
            &n
        ));
        assert!(!term_matches(
            &term(
                vec![
                    requirement("zone", In, &["a"]),
                    requirement("cores", Lt, &["8"])
                ],
                vec![]
            ),
            &n
        ));
        // Fields: metadata.name only, In/NotIn only.
        assert!(term_matches(
            &term(vec![], vec![requirement("metadata.name", In, &["n1"])]),
            &n
        ));
        assert!(!term_matches(
            &term(vec![], vec![requirement("metadata.name", NotIn, &["n1"])]),
            &n
        ));
        assert!(!term_matches(
            &term(vec![], vec![requirement("metadata.uid", In, &["n1"])]),
            &n
        ));
        assert!(!term_matches(
            &term(vec![], vec![requirement("metadata.name", Exists, &[])]),
            &n
        ));
        // An empty term matches nothing.
        assert!(!term_matches(&term(vec![], vec![]), &n));

        // Any term of the pod's affinity may match.
        let mut p = pod("p", 0, 0);
        p.required_node_affinity = vec![
            term(vec![requirement("zone", In, &["b"])], vec![]),
            term(
                vec![],
                vec![requirement("metadata.name", In, &["n1", "n2"])],
            ),
        ];
        assert_eq!(NodeAffinity.filter(&p, &info(n.clone())), Ok(()));
        p.required_node_affinity.remove(1);
        assert!(NodeAffinity.filter(&p, &info(n)).is_err());
    }

    #[test]
    fn host_ports() {
        let mut n = info(node("n1", 4000, 8 << 30));
        let mut used = pod("used", 0, 0);
        used.host_ports = vec![port(80, "10.0.0.1"), port(0, "")];
        n.add_pod(used);

        let wants = |ports: Vec<HostPort>| {
            let mut p = pod("p", 0, 0);
            p.host_ports = ports;
            NodePorts.filter(&p, &n)
        };
        let busy = Err("node(s) didn't have free ports for the requested pod ports".to_owned());
        assert_eq!(wants(vec![port(80, "10.0.0.1")]), busy);
        assert_eq!(wants(vec![port(80, "")]), busy);
        assert_eq!(wants(vec![port(80, "0.0.0.0")]), busy);
        assert_eq!(wants(vec![port(80, "10.0.0.2")]), Ok(()));
        assert_eq!(wants(vec![port(81, "")]), Ok(()));
        assert_eq!(wants(vec![port(0, "")]), Ok(()));
        let udp = HostPort {
            port: 80,
            protocol: Protocol::Udp,
            host_ip: String::new(),
        };
        assert_eq!(wants(vec![udp]), Ok(()));
    }

    #[test]
    fn resources_fit() {
        let mut n = info(node("n1", 1000, 1 << 30));
        n.add_pod(pod("a", 600, 512 << 20));
        assert_eq!(
            NodeResourcesFit.filter(&pod("p", 400, 512 << 20), &n),
            Ok(())
        );
        assert_eq!(
            NodeResourcesFit.filter(&pod("p", 401, 512 << 20), &n),
            Err("Insufficient cpu".into())
        );
        let mut greedy = pod("p", 500, 1 << 30);
        greedy.requests.ephemeral_storage = 200 << 30;
        assert_eq!(
            NodeResourcesFit.filter(&greedy, &n),
            Err("Insufficient cpu, Insufficient memory, Insufficient ephemeral-storage".into())
        );

        let mut full = node("n2", 1000, 1 << 30);
        full.allocatable.pods = 1;
        let mut full = info(full);
        assert_eq!(NodeResourcesFit.filter(&pod("p", 0, 0), &full), Ok(()));
        full.add_pod(pod("a", 0, 0));
        assert_eq!(
            NodeResourcesFit.filter(&pod("p", 0, 0), &full),
            Err("Too many pods".into())
        );
    }

    #[test]
    fn least_allocated_scores() {
        let mut n = info(node("n1", 4000, 4 << 30));
        // (4000-1000)/4000 = 75, (4Gi-1Gi)/4Gi = 75
        assert_eq!(LeastAllocated.score(&pod("p", 1000, 1 << 30), &n), 75);
        // Pods requesting nothing count as 100m and 200Mi.
        assert_eq!(LeastAllocated.score(&pod("p", 0, 0), &n), (97 + 95) / 2);
        n.add_pod(pod("a", 4000, 4 << 30));
        assert_eq!(LeastAllocated.score(&pod("p", 1000, 1 << 30), &n), 0);
        assert_eq!(
            LeastAllocated.score(&pod("p", 1, 1), &info(node("n", 0, 0))),
            0
        );
    }

    #[test]
    fn balanced_allocation_scores() {
        let n = info(node("n1", 4000, 4 << 30));
        assert_eq!(BalancedAllocation.score(&pod("p", 2000, 2 << 30), &n), 100);
        // cpu 100%, memory 0%: deviation 0.5
        assert_eq!(BalancedAllocation.score(&pod("p", 4000, 0), &n), 50);
        // cpu 50%, memory 25%: deviation 0.125
        assert_eq!(BalancedAllocation.score(&pod("p", 2000, 1 << 30), &n), 87);
    }

    #[test]
    fn owner_spread_scores() {
        let owner = Owner {
            kind: "ReplicaSet".into(),
            name: "web".into(),
            uid: "rs-1".into(),
        };
        let replica = |name: &str| {
            let mut p = pod(name, 0, 0);
            p.owner = Some(owner.clone());
            p
        };
        let mut crowded = info(node("a", 4000, 4 << 30));
        crowded.add_pod(replica("r1"));
        crowded.add_pod(replica("r2"));
        let mut other_namespace = replica("r3");
        other_namespace.namespace = "elsewhere".into();
        crowded.add_pod(other_namespace);
        let mut half = info(node("b", 4000, 4 << 30));
        half.add_pod(replica("r4"));
        let empty = info(node("c", 4000, 4 << 30));

        let new = replica("new");
        let mut scores: Vec<i64> = [&crowded, &half, &empty]
            .iter()
            .map(|n| OwnerSpread.score(&new, n))
            .collect();
        assert_eq!(scores, [2, 1, 0]);
        OwnerSpread.normalize(&new, &mut scores);
        assert_eq!(scores, [0, 50, 100]);

        let mut orphan_scores = vec![OwnerSpread.score(&pod("p", 0, 0), &crowded)];
        OwnerSpread.normalize(&pod("p", 0, 0), &mut orphan_scores);
        assert_eq!(orphan_scores, [100]);
    }

    #[test]
    fn prefer_no_schedule_scores() {
        let mut tainted = node("a", 4000, 4 << 30);
        tainted.taints = vec![
            taint("soft", "1", TaintEffect::PreferNoSchedule),
            taint("softer", "2", TaintEffect::PreferNoSchedule),
            taint("hard", "3", TaintEffect::NoSchedule),
        ];
        let tainted = info(tainted);
        let clean = info(node("b", 4000, 4 << 30));
        let mut p = pod("p", 0, 0);
        assert_eq!(PreferNoScheduleTaints.score(&p, &tainted), 2);
        // A NoSchedule-only toleration does not count for PreferNoSchedule taints.
        p.tolerations = vec![
            toleration(
                "soft",
                TolerationOperator::Exists,
                "",
                Some(TaintEffect::NoSchedule),
            ),
            toleration("softer", TolerationOperator::Equal, "2", None),
        ];
        assert_eq!(PreferNoScheduleTaints.score(&p, &tainted), 1);
        let mut scores = vec![
            PreferNoScheduleTaints.score(&p, &tainted),
            PreferNoScheduleTaints.score(&p, &clean),
        ];
        PreferNoScheduleTaints.normalize(&p, &mut scores);
        assert_eq!(scores, [0, 100]);
    }
}
