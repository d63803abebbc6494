//! Filters, scores and the framework that runs them.

use std::cell::Cell;
use std::fmt;

use serde_json::Value;

use super::plugins::{
    BalancedAllocation, LeastAllocated, NodeAffinity, NodePorts, NodeReady, NodeResourcesFit,
    NodeUnschedulable, OwnerSpread, PreferNoScheduleTaints, TaintToleration,
};
use super::{ClusterEvent, NodeCache, NodeInfo, NodeReason, Pod, ScheduleResult};

/// Rules out nodes that cannot run a pod.
pub trait Filter {
    /// A short kebab-case name, used in configuration (`disabled`).
    fn name(&self) -> &str;

    /// `Ok` if `node` can run `pod`, else why not (kube-scheduler phrases it
    /// for a count of nodes, e.g. `node(s) were unschedulable`).
    fn filter(&self, pod: &Pod, node: &NodeInfo) -> Result<(), String>;
}

/// Ranks the nodes that passed every filter.
pub trait Score {
    /// A short kebab-case name, used in configuration (`weights`, `disabled`).
    fn name(&self) -> &str;

    /// How well `node` suits `pod`: 0 to 100 after [`Score::normalize`],
    /// higher is better.
    fn score(&self, pod: &Pod, node: &NodeInfo) -> i64;

    /// Rewrites the scores of all feasible nodes at once, for scores that are
    /// only meaningful relative to each other (e.g. counts). `scores` is in
    /// the order of the nodes' names. The default keeps them as they are.
    fn normalize(&self, pod: &Pod, scores: &mut [i64]) {
        let _ = (pod, scores);
    }
}

/// How [`Framework::schedule`] chooses among nodes with the same best score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TieBreak {
    /// The node whose name sorts first: the same inputs always give the same node.
    #[default]
    ByName,
    /// A node chosen uniformly at random, as kube-scheduler does.
    Random,
}

/// The node cache plus the filters and weighted scores that decide where a
/// pod goes.
///
/// [`Framework::schedule`] runs the filters on every node in name order,
/// stopping at a node's first failing filter; if no node passes it answers
/// `unschedulable` with one reason per node. Otherwise each score rates every
/// feasible node, is normalized, clamped to 0..=100 and multiplied by its
/// weight; the node with the highest sum wins.
pub struct Framework {
    cache: NodeCache,
    filters: Vec<Box<dyn Filter>>,
    scores: Vec<(Box<dyn Score>, i64)>,
    tie_break: TieBreak,
    random_state: Cell<u64>,
}

impl Default for Framework {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Framework {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Framework")
            .field("nodes", &self.cache.nodes().len())
            .field(
                "filters",
                &self.filters.iter().map(|f| f.name()).collect::<Vec<_>>(),
            )
            .field(
                "scores",
                &self
                    .scores
                    .iter()
                    .map(|(s, weight)| (s.name(), *weight))
                    .collect::<Vec<_>>(),
            )
            .field("tie_break", &self.tie_break)
            .finish()
    }
}

impl Framework {
    /// A framework with no filters and no scores: every node fits and ties
    /// everywhere.
    pub fn new() -> Self {
        Framework {
            cache: NodeCache::new(),
            filters: Vec::new(),
            scores: Vec::new(),
            tie_break: TieBreak::ByName,
            random_state: Cell::new(0),
        }
    }

    /// The built-in filters and scores, in kube-scheduler's order and with
    /// its default weights:
    ///
    /// | filter | rules out nodes that |
    /// |---|---|
    /// | `node-unschedulable` | are cordoned, unless the pod tolerates it |
    /// | `node-ready` | are not ready, unless the pod tolerates it |
    /// | `taint-toleration` | have a `NoSchedule`/`NoExecute` taint the pod does not tolerate |
    /// | `node-affinity` | miss the pod's node selector or required node affinity |
    /// | `node-ports` | already use one of the pod's host ports |
    /// | `node-resources-fit` | lack the CPU, memory, ephemeral storage or pod slots requested |
    ///
    /// | score | weight | prefers nodes |
    /// |---|---|---|
    /// | `least-allocated` | 1 | with the most free CPU and memory |
    /// | `balanced-allocation` | 1 | whose CPU and memory use stay balanced |
    /// | `owner-spread` | 2 | with the fewest pods of the same owner |
    /// | `prefer-no-schedule` | 3 | with the fewest untolerated `PreferNoSchedule` taints |
    pub fn with_defaults() -> Self {
        Self::new()
            .filter(NodeUnschedulable)
            .filter(NodeReady)
            .filter(TaintToleration)
            .filter(NodeAffinity)
            .filter(NodePorts)
            .filter(NodeResourcesFit)
            .score(LeastAllocated, 1)
            .score(BalancedAllocation, 1)
            .score(OwnerSpread, 2)
            .score(PreferNoScheduleTaints, 3)
    }

    /// Adds a filter, run after the ones already added.
    pub fn filter(mut self, filter: impl Filter + 'static) -> Self {
        self.filters.push(Box::new(filter));
        self
    }

    /// Adds a score with its weight. A negative weight turns a preference
    /// around (e.g. `least-allocated` at -1 packs nodes instead).
    pub fn score(mut self, score: impl Score + 'static, weight: i64) -> Self {
        self.scores.push((Box::new(score), weight));
        self
    }

    /// Sets how ties between the best nodes are broken.
    pub fn tie_break(mut self, tie_break: TieBreak) -> Self {
        self.tie_break = tie_break;
        if tie_break == TieBreak::Random && self.random_state.get() == 0 {
            self.random_state.set(random_seed());
        }
        self
    }

    /// Adjusts the framework from the plugin's configuration. Keys it does not
    /// know are left for the plugin:
    ///
    /// * `tie-break`: `"name"` (the default) or `"random"`;
    /// * `weights`: a table from score name to integer weight;
    /// * `disabled`: a list of filter and score names to remove.
    ///
    /// ```toml
    /// tie-break = "random"
    /// weights = { least-allocated = 2 }
    /// disabled = ["owner-spread"]
    /// ```
    pub fn configure(mut self, config: &Value) -> Result<Self, String> {
        if let Some(tie_break) = config.get("tie-break") {
            self = self.tie_break(match tie_break.as_str() {
                Some("name") => TieBreak::ByName,
                Some("random") => TieBreak::Random,
                _ => {
                    return Err(format!(
                        "tie-break must be \"name\" or \"random\", not {tie_break}"
                    ));
                }
            });
        }
        if let Some(weights) = config.get("weights") {
            let weights = weights
                .as_object()
                .ok_or("weights must be a table of score names to integers")?;
            for (name, weight) in weights {
                let weight = weight
                    .as_i64()
                    .ok_or_else(|| format!("the weight of score {name:?} must be an integer"))?;
                let (_, slot) = self
                    .scores
                    .iter_mut()
                    .find(|(score, _)| score.name() == name)
                    .ok_or_else(|| format!("unknown score {name:?} in weights"))?;
                *slot = weight;
            }
        }
        if let Some(disabled) = config.get("disabled") {
            let disabled = disabled
                .as_array()
                .ok_or("disabled must be a list of filter and score names")?;
            for name in disabled {
                let name = name
                    .as_str()
                    .ok_or("disabled must be a list of filter and score names")?;
                let before = self.filters.len() + self.scores.len();
                self.filters.retain(|filter| filter.name() != name);
                self.scores.retain(|(score, _)| score.name() != name);
                if self.filters.len() + self.scores.len() == before {
                    return Err(format!("unknown filter or score {name:?} in disabled"));
                }
            }
        }
        Ok(self)
    }

    /// The nodes and the pods on them.
    pub fn cache(&self) -> &NodeCache {
        &self.cache
    }

    /// Applies cluster changes, in order, to the node cache.
    pub fn update(&mut self, events: Vec<ClusterEvent>) {
        for event in events {
            self.cache.apply(event);
        }
    }

    /// Runs the filters on one node: `Ok` if it can run `pod`, else the
    /// reason of the first filter that ruled it out.
    pub fn check(&self, pod: &Pod, node: &NodeInfo) -> Result<(), String> {
        self.filters
            .iter()
            .try_for_each(|filter| filter.filter(pod, node))
    }

    /// Chooses the node for `pod`, or explains for every node why it does not fit.
    pub fn schedule(&self, pod: &Pod) -> ScheduleResult {
        let mut feasible = Vec::new();
        let mut reasons = Vec::new();
        for node in self.cache.nodes() {
            match self.check(pod, node) {
                Ok(()) => feasible.push(node),
                Err(reason) => reasons.push(NodeReason {
                    node: node.name().to_owned(),
                    reason,
                }),
            }
        }
        match feasible.as_slice() {
            [] => ScheduleResult::Unschedulable(reasons),
            [only] => ScheduleResult::Node(only.name().to_owned()),
            _ => {
                let totals = self.total_scores(pod, &feasible);
                ScheduleResult::Node(feasible[self.best(&totals)].name().to_owned())
            }
        }
    }

    /// The weighted sum of every score for each feasible node.
    fn total_scores(&self, pod: &Pod, feasible: &[&NodeInfo]) -> Vec<i64> {
        let mut totals = vec![0i64; feasible.len()];
        for (score, weight) in &self.scores {
            let mut values: Vec<i64> = feasible.iter().map(|node| score.score(pod, node)).collect();
            score.normalize(pod, &mut values);
            for (total, value) in totals.iter_mut().zip(values) {
                *total = total.saturating_add(value.clamp(0, 100).saturating_mul(*weight));
            }
        }
        totals
    }

    /// The index of the best total, ties broken as configured.
    fn best(&self, totals: &[i64]) -> usize {
        let mut best = 0;
        let mut ties = 1u64;
        for (index, &total) in totals.iter().enumerate().skip(1) {
            if total > totals[best] {
                best = index;
                ties = 1;
            } else if total == totals[best] && self.tie_break == TieBreak::Random {
                // Reservoir sampling: each of the tied nodes ends up chosen
                // with the same probability.
                ties += 1;
                if self.next_random().is_multiple_of(ties) {
                    best = index;
                }
            }
        }
        best
    }

    /// xorshift64*: small, and plenty for breaking ties.
    fn next_random(&self) -> u64 {
        let mut x = self.random_state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.random_state.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A non-zero seed from the host's randomness.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(0x9e37_79b9_7f4a_7c15_u64) | 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::testing::{assigned, node, pod};
    use crate::scheduler::{Node, Owner};
    use serde_json::json;

    fn framework(nodes: Vec<Node>) -> Framework {
        let mut framework = Framework::with_defaults();
        framework.update(nodes.into_iter().map(ClusterEvent::NodeAdded).collect());
        framework
    }

    fn chosen(result: ScheduleResult) -> String {
        match result {
            ScheduleResult::Node(name) => name,
            ScheduleResult::Unschedulable(reasons) => panic!("unschedulable: {reasons:?}"),
        }
    }

    #[test]
    fn picks_the_least_allocated_node() {
        let mut framework = framework(vec![node("a", 4000, 8 << 30), node("b", 4000, 8 << 30)]);
        framework.update(vec![assigned(pod("busy", 2000, 4 << 30), "a")]);
        assert_eq!(chosen(framework.schedule(&pod("new", 500, 1 << 30))), "b");
    }

    #[test]
    fn ties_go_to_the_first_name() {
        let framework = framework(vec![
            node("c", 4000, 8 << 30),
            node("a", 4000, 8 << 30),
            node("b", 4000, 8 << 30),
        ]);
        for _ in 0..3 {
            assert_eq!(chosen(framework.schedule(&pod("p", 100, 0))), "a");
        }
    }

    #[test]
    fn random_ties_reach_every_node() {
        let framework = framework(vec![
            node("a", 4000, 8 << 30),
            node("b", 4000, 8 << 30),
            node("c", 4000, 8 << 30),
        ])
        .tie_break(TieBreak::Random);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            seen.insert(chosen(framework.schedule(&pod("p", 100, 0))));
        }
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn unschedulable_gives_one_reason_per_node() {
        let mut cordoned = node("a", 4000, 8 << 30);
        cordoned.unschedulable = true;
        let framework = framework(vec![cordoned, node("b", 1000, 8 << 30)]);
        match framework.schedule(&pod("big", 2000, 0)) {
            ScheduleResult::Unschedulable(reasons) => assert_eq!(
                reasons,
                vec![
                    NodeReason {
                        node: "a".into(),
                        reason: "node(s) were unschedulable".into()
                    },
                    NodeReason {
                        node: "b".into(),
                        reason: "Insufficient cpu".into()
                    },
                ]
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            Framework::new().schedule(&pod("p", 0, 0)),
            ScheduleResult::Unschedulable(Vec::new())
        );
    }

    #[test]
    fn spreads_replicas_of_one_owner() {
        let mut framework = framework(vec![node("a", 4000, 8 << 30), node("b", 4000, 8 << 30)]);
        let owner = Owner {
            kind: "ReplicationController".into(),
            name: "web".into(),
            uid: "rc-1".into(),
        };
        let replica = |name: &str| {
            let mut p = pod(name, 100, 64 << 20);
            p.owner = Some(owner.clone());
            p
        };
        // "a" holds one replica and a bit less load than "b": spreading wins.
        framework.update(vec![
            assigned(replica("web-1"), "a"),
            assigned(pod("other", 200, 64 << 20), "b"),
        ]);
        assert_eq!(chosen(framework.schedule(&replica("web-2"))), "b");
    }

    #[test]
    fn configuration_adjusts_the_framework() {
        let framework = framework(vec![node("a", 4000, 8 << 30), node("b", 4000, 8 << 30)])
            .configure(&json!({
                "tie-break": "random",
                "weights": {"least-allocated": -1},
                "disabled": ["owner-spread", "node-ready"],
                "something-else": true,
            }))
            .unwrap();
        let debug = format!("{framework:?}");
        assert!(debug.contains("(\"least-allocated\", -1)"), "{debug}");
        assert!(!debug.contains("owner-spread"), "{debug}");
        assert!(!debug.contains("node-ready"), "{debug}");
        assert!(debug.contains("Random"), "{debug}");

        let packing = {
            let mut f = Framework::with_defaults()
                .configure(&json!({"weights": {"least-allocated": -5}}))
                .unwrap();
            f.update(vec![
                ClusterEvent::NodeAdded(node("a", 4000, 8 << 30)),
                ClusterEvent::NodeAdded(node("b", 4000, 8 << 30)),
                assigned(pod("busy", 2000, 4 << 30), "b"),
            ]);
            f
        };
        assert_eq!(chosen(packing.schedule(&pod("new", 500, 1 << 30))), "b");

        for bad in [
            json!({"tie-break": "coin"}),
            json!({"weights": {"nope": 1}}),
            json!({"weights": {"least-allocated": "high"}}),
            json!({"weights": []}),
            json!({"disabled": ["nope"]}),
            json!({"disabled": "owner-spread"}),
        ] {
            assert!(Framework::with_defaults().configure(&bad).is_err(), "{bad}");
        }
        assert!(Framework::with_defaults().configure(&json!({})).is_ok());
    }

    #[test]
    fn custom_filters_run_after_the_built_ins() {
        struct OnlyB;
        impl Filter for OnlyB {
            fn name(&self) -> &str {
                "only-b"
            }
            fn filter(&self, _pod: &Pod, node: &NodeInfo) -> Result<(), String> {
                if node.name() == "b" {
                    Ok(())
                } else {
                    Err("not b".into())
                }
            }
        }
        let mut framework = Framework::with_defaults().filter(OnlyB);
        framework.update(vec![
            ClusterEvent::NodeAdded(node("a", 4000, 8 << 30)),
            ClusterEvent::NodeAdded(node("b", 4000, 8 << 30)),
        ]);
        assert_eq!(chosen(framework.schedule(&pod("p", 100, 0))), "b");
        let info = framework.cache().node("a").unwrap();
        assert_eq!(
            framework.check(&pod("huge", 100_000, 0), info),
            Err("Insufficient cpu".into())
        );
    }
}
