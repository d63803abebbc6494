//! Filters, scores and the framework that runs them.

use std::fmt;

use serde_json::Value;

use super::plugins::{
    BalancedAllocation, LeastAllocated, NodeAffinity, NodePorts, NodeReady, NodeResourcesFit,
    NodeUnschedulable, OwnerSpread, PreferNoScheduleTaints, PreferredNodeAffinity, TaintToleration,
};
use super::{ClusterEvent, NodeCache, NodeInfo, NodeReason, Pod, ScheduleResult};

/// Rules out nodes that cannot run a pod.
pub trait Filter {
    /// A short kebab-case name, used in configuration (`disabled`).
    fn name(&self) -> &str;

    /// `Ok` if `node` can run `pod`, else why not (kube-scheduler phrases it
    /// for a count of nodes, e.g. `node(s) were unschedulable`: the host
    /// counts the nodes per reason). Runs for many nodes per pod: keep the
    /// `Ok` path free of allocations.
    fn filter(&self, pod: &Pod, node: &NodeInfo) -> Result<(), String>;

    /// Whether `node` can run `pod`: the same answer as [`Filter::filter`],
    /// without the reason. [`Framework::schedule`] calls this while it looks
    /// for feasible nodes, and `filter` only for the nodes that failed when
    /// the pod fits nowhere, so that reasons are not built for nothing. The
    /// default calls `filter`; override it when building the reason costs
    /// something (an allocation, as `String`s do).
    fn passes(&self, pod: &Pod, node: &NodeInfo) -> bool {
        self.filter(pod, node).is_ok()
    }

    /// [`Filter::passes`] for several nodes: sets `keep[i]` to `false` for
    /// each `nodes[i]` ruled out (`keep` starts all `true`, as long as
    /// `nodes`). The framework filters nodes in batches through this method.
    /// The default calls `passes` for each node; override it to work
    /// something out once per pod, or to skip the nodes when the pod asks
    /// for nothing this filter checks.
    fn passes_nodes(&self, pod: &Pod, nodes: &[&NodeInfo], keep: &mut [bool]) {
        for (keep, node) in keep.iter_mut().zip(nodes) {
            *keep = self.passes(pod, node);
        }
    }
}

/// Ranks the nodes that passed every filter.
pub trait Score {
    /// A short kebab-case name, used in configuration (`weights`, `disabled`).
    fn name(&self) -> &str;

    /// How well `node` suits `pod`: 0 to 100 after [`Score::normalize`],
    /// higher is better.
    fn score(&self, pod: &Pod, node: &NodeInfo) -> i64;

    /// Scores all feasible nodes at once: `scores[i]` for `nodes[i]` (the
    /// feasible nodes of `cache`, in name order). The default calls
    /// [`Score::score`] for each node; override it to work out something once
    /// per pod, or to use the cache's indexes (e.g.
    /// [`NodeCache::sibling_counts`]).
    fn score_nodes(&self, pod: &Pod, cache: &NodeCache, nodes: &[&NodeInfo], scores: &mut [i64]) {
        let _ = cache;
        for (score, node) in scores.iter_mut().zip(nodes) {
            *score = self.score(pod, node);
        }
    }

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

/// Weights count up to this much either way (2^40).
const MAX_WEIGHT: i64 = 1 << 40;

/// kube-scheduler's `minFeasibleNodesToFind`: sampling never stops before
/// this many feasible nodes.
pub const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// kube-scheduler's `minFeasibleNodesPercentageToFind`: the adaptive
/// percentage of nodes to score never goes below it.
pub const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: usize = 5;

/// The node cache plus the filters and weighted scores that decide where a
/// pod goes.
///
/// [`Framework::schedule`] works like kube-scheduler's scheduling cycle:
///
/// 1. **Filter.** The filters run on the nodes in name order, starting where
///    the previous pod's search stopped and wrapping around; a node is ruled
///    out by its first failing filter. The search stops once it has found
///    [`Framework::num_feasible_nodes_to_find`] feasible nodes (all of them
///    below 100 nodes; see [`Framework::percentage_of_nodes_to_score`]). If
///    no node passes, the answer is `unschedulable` with one reason per node.
/// 2. **Score.** Each score rates every feasible node found, is normalized,
///    clamped to 0..=100 and multiplied by its weight; the node with the
///    highest sum wins, ties broken per [`TieBreak`] (by name: the feasible
///    node whose name sorts first).
///
/// Everything is deterministic, unless the tie-break is random.
pub struct Framework {
    cache: NodeCache,
    filters: Vec<Box<dyn Filter>>,
    scores: Vec<(Box<dyn Score>, i64)>,
    tie_break: TieBreak,
    random_state: u64,
    percentage_of_nodes_to_score: u8,
    next_start_node_index: usize,
}

impl Default for Framework {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Framework {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Framework")
            .field("nodes", &self.cache.len())
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
            .field(
                "percentage_of_nodes_to_score",
                &self.percentage_of_nodes_to_score,
            )
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
            random_state: 0,
            percentage_of_nodes_to_score: 0,
            next_start_node_index: 0,
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
    /// | `node-affinity` | 2 | matching more of the pod's preferred node affinity (by weight) |
    /// | `owner-spread` | 2 | with the fewest siblings: pods of the same owner or matching the pod's spread selectors |
    /// | `prefer-no-schedule` | 3 | with the fewest untolerated `PreferNoSchedule` taints |
    ///
    /// The `node-affinity` filter and score share their name, as they are one
    /// plugin in kube-scheduler: `disabled = ["node-affinity"]` removes both.
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
            .score(PreferredNodeAffinity, 2)
            .score(OwnerSpread, 2)
            .score(PreferNoScheduleTaints, 3)
    }

    /// Adds a filter, run after the ones already added.
    pub fn filter(mut self, filter: impl Filter + 'static) -> Self {
        self.filters.push(Box::new(filter));
        self
    }

    /// Adds a score with its weight. A negative weight turns a preference
    /// around (e.g. `least-allocated` at -1 packs nodes instead); a score of
    /// weight 0 is not computed. Weights beyond ±2^40 count as ±2^40.
    pub fn score(mut self, score: impl Score + 'static, weight: i64) -> Self {
        self.scores.push((Box::new(score), weight));
        self
    }

    /// Removes the filters and scores named `name`, if any (unlike the
    /// `disabled` configuration key, an unknown name is no error), e.g.
    /// `Framework::with_defaults().without("least-allocated")`.
    pub fn without(mut self, name: &str) -> Self {
        self.filters.retain(|filter| filter.name() != name);
        self.scores.retain(|(score, _)| score.name() != name);
        self
    }

    /// Sets how ties between the best nodes are broken.
    pub fn tie_break(mut self, tie_break: TieBreak) -> Self {
        self.tie_break = tie_break;
        if tie_break == TieBreak::Random && self.random_state == 0 {
            self.random_state = random_seed();
        }
        self
    }

    /// Sets kube-scheduler's `percentageOfNodesToScore`: the share of the
    /// nodes the filters look for before scoring, to keep large clusters
    /// fast. `0` (the default) is kube-scheduler's adaptive value, `50 -
    /// nodes / 125` percent but at least 5; `100` looks at every node. Values
    /// above 100 count as 100. Whatever the percentage, the search goes on
    /// until it has 100 feasible nodes (or has seen every node).
    pub fn percentage_of_nodes_to_score(mut self, percentage: u8) -> Self {
        self.percentage_of_nodes_to_score = percentage.min(100);
        self
    }

    /// How many feasible nodes [`Framework::schedule`] looks for in a
    /// cluster of `all_nodes` nodes before it stops filtering
    /// (kube-scheduler's `numFeasibleNodesToFind`): every node below
    /// [`MIN_FEASIBLE_NODES_TO_FIND`] nodes or without filters, else the
    /// configured (or adaptive) percentage of them, at least
    /// [`MIN_FEASIBLE_NODES_TO_FIND`].
    pub fn num_feasible_nodes_to_find(&self, all_nodes: usize) -> usize {
        if all_nodes < MIN_FEASIBLE_NODES_TO_FIND || self.filters.is_empty() {
            return all_nodes;
        }
        let percentage = match usize::from(self.percentage_of_nodes_to_score) {
            0 => 50usize
                .saturating_sub(all_nodes / 125)
                .max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND),
            percentage => percentage,
        };
        (all_nodes * percentage / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
    }

    /// Adjusts the framework from the plugin's configuration. Keys it does not
    /// know are left for the plugin:
    ///
    /// * `tie-break`: `"name"` (the default) or `"random"`;
    /// * `weights`: a table from score name to integer weight;
    /// * `disabled`: a list of filter and score names to remove;
    /// * `percentage-of-nodes-to-score`: an integer from 0 to 100, see
    ///   [`Framework::percentage_of_nodes_to_score`] (0, the default, is
    ///   adaptive).
    ///
    /// ```toml
    /// tie-break = "random"
    /// weights = { least-allocated = 2 }
    /// disabled = ["owner-spread"]
    /// percentage-of-nodes-to-score = 50
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
        if let Some(percentage) = config.get("percentage-of-nodes-to-score") {
            let valid = percentage
                .as_u64()
                .filter(|percentage| *percentage <= 100)
                .ok_or_else(|| {
                    format!(
                        "percentage-of-nodes-to-score must be an integer from 0 to 100, not {percentage}"
                    )
                })?;
            self = self.percentage_of_nodes_to_score(valid as u8);
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
        match self.filters.iter().find(|filter| !filter.passes(pod, node)) {
            None => Ok(()),
            Some(filter) => filter.filter(pod, node),
        }
    }

    /// Where the next pod's search for feasible nodes starts: a position in
    /// the name order of the nodes (kube-scheduler's `nextStartNodeIndex`).
    /// Each pod moves it on by the number of nodes it examined.
    pub fn next_start_node_index(&self) -> usize {
        self.next_start_node_index
    }

    /// Chooses the node for `pod`, or explains for every node why it does
    /// not fit (see [`Framework`] for how).
    pub fn schedule(&mut self, pod: &Pod) -> ScheduleResult {
        let all = self.cache.len();
        if all == 0 {
            return ScheduleResult::Unschedulable(Vec::new());
        }
        let to_find = self.num_feasible_nodes_to_find(all);
        let start = self.next_start_node_index % all;
        let (feasible, failures, examined) =
            find_feasible(&self.cache, &self.filters, pod, start, to_find);
        self.next_start_node_index = (start + examined) % all;
        match feasible.as_slice() {
            [] => {
                let mut failures = failures;
                failures.sort_unstable_by_key(|&(position, _)| position);
                let reasons = failures.into_iter().map(|(position, filter)| {
                    let node = self.cache.node_at(position);
                    let filter = &self.filters[filter];
                    let reason = match filter.filter(pod, node) {
                        Err(reason) => reason,
                        // A filter whose `passes` and `filter` disagree.
                        Ok(()) => format!("node(s) didn't pass filter {}", filter.name()),
                    };
                    NodeReason {
                        node: node.name().to_owned(),
                        reason,
                    }
                });
                ScheduleResult::Unschedulable(reasons.collect())
            }
            [only] => ScheduleResult::Node(only.name().to_owned()),
            _ => {
                let totals = total_scores(&self.cache, &self.scores, pod, &feasible);
                let best = best(&totals, self.tie_break, &mut self.random_state);
                ScheduleResult::Node(feasible[best].name().to_owned())
            }
        }
    }
}

/// Nodes filtered together: each filter runs on a batch of nodes at a time
/// ([`Filter::passes_nodes`]), which costs one dynamic call per filter and
/// batch rather than per node.
const FILTER_BATCH: usize = 32;

/// Runs the filters on the nodes from position `start` on, wrapping around,
/// until `to_find` nodes passed. Returns the feasible nodes in name order,
/// the failures (the node's position, the index of the filter that ruled it
/// out), and how many nodes were examined (up to the `to_find`th feasible
/// one: the rest of its batch does not count).
fn find_feasible<'a>(
    cache: &'a NodeCache,
    filters: &[Box<dyn Filter>],
    pod: &Pod,
    start: usize,
    to_find: usize,
) -> (Vec<&'a NodeInfo>, Vec<(usize, usize)>, usize) {
    const PASSED: usize = usize::MAX;
    let all = cache.len();
    let mut feasible = Vec::with_capacity(to_find.min(all));
    let mut failures = Vec::new();
    // How many feasible nodes were found before the search wrapped around.
    let mut before_wrap = None;
    let mut examined = all;
    let mut batch: Vec<&NodeInfo> = Vec::with_capacity(FILTER_BATCH);
    // For each node of the batch, the filter that ruled it out.
    let mut failed_by = [PASSED; FILTER_BATCH];
    // The nodes of the batch still in the running, and their indexes in it.
    let mut alive: Vec<&NodeInfo> = Vec::with_capacity(FILTER_BATCH);
    let mut alive_index = [0usize; FILTER_BATCH];
    let mut keep = [true; FILTER_BATCH];
    let mut first = 0;
    'search: while first < all {
        let len = FILTER_BATCH.min(all - first);
        batch.clear();
        // Positions wrap around without a division per node.
        let position_of = |i: usize| {
            let position = start + i;
            if position >= all {
                position - all
            } else {
                position
            }
        };
        batch.extend((first..first + len).map(|i| cache.node_at(position_of(i))));
        failed_by[..len].fill(PASSED);
        alive.clear();
        alive.extend_from_slice(&batch);
        for (index, slot) in alive_index[..len].iter_mut().enumerate() {
            *slot = index;
        }
        for (filter_index, filter) in filters.iter().enumerate() {
            if alive.is_empty() {
                break;
            }
            let keep = &mut keep[..alive.len()];
            filter.passes_nodes(pod, &alive, keep);
            if !keep.contains(&false) {
                // All passed: `keep` is all `true` for the next filter.
                continue;
            }
            let mut kept = 0;
            for i in 0..alive.len() {
                if keep[i] {
                    alive[kept] = alive[i];
                    alive_index[kept] = alive_index[i];
                    kept += 1;
                } else {
                    failed_by[alive_index[i]] = filter_index;
                }
            }
            alive.truncate(kept);
            keep.fill(true);
        }
        for (index, &node) in batch.iter().enumerate() {
            let position = position_of(first + index);
            if position < start && before_wrap.is_none() {
                before_wrap = Some(feasible.len());
            }
            match failed_by[index] {
                PASSED => {
                    feasible.push(node);
                    if feasible.len() >= to_find {
                        examined = first + index + 1;
                        break 'search;
                    }
                }
                filter => failures.push((position, filter)),
            }
        }
        first += len;
    }
    // Nodes found after wrapping around come first in name order.
    if let Some(before_wrap) = before_wrap {
        feasible.rotate_left(before_wrap);
    }
    (feasible, failures, examined)
}

/// The weighted sum of every score for each feasible node.
fn total_scores(
    cache: &NodeCache,
    scores: &[(Box<dyn Score>, i64)],
    pod: &Pod,
    feasible: &[&NodeInfo],
) -> Vec<i64> {
    let mut totals = vec![0i64; feasible.len()];
    let mut values = vec![0i64; feasible.len()];
    for (score, weight) in scores {
        if *weight == 0 {
            continue;
        }
        values.fill(0);
        score.score_nodes(pod, cache, feasible, &mut values);
        score.normalize(pod, &mut values);
        // Bounded so that sums cannot overflow: no overflow checks (128-bit
        // multiplications in WebAssembly) per node.
        let weight = (*weight).clamp(-MAX_WEIGHT, MAX_WEIGHT);
        for (total, value) in totals.iter_mut().zip(&values) {
            *total += (*value).clamp(0, 100) * weight;
        }
    }
    totals
}

/// The index of the best total, ties broken as configured.
fn best(totals: &[i64], tie_break: TieBreak, random_state: &mut u64) -> usize {
    let mut best = 0;
    let mut ties = 1u64;
    for (index, &total) in totals.iter().enumerate().skip(1) {
        if total > totals[best] {
            best = index;
            ties = 1;
        } else if total == totals[best] && tie_break == TieBreak::Random {
            // Reservoir sampling: each of the tied nodes ends up chosen
            // with the same probability.
            ties += 1;
            if next_random(random_state).is_multiple_of(ties) {
                best = index;
            }
        }
    }
    best
}

/// xorshift64*: small, and plenty for breaking ties.
fn next_random(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
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
        let mut framework = framework(vec![
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
        let mut framework = framework(vec![
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
        let mut framework = framework(vec![cordoned, node("b", 1000, 8 << 30)]);
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

        let mut packing = {
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

        let debug = format!(
            "{:?}",
            Framework::with_defaults()
                .without("node-affinity")
                .without("least-allocated")
                .without("nope")
        );
        assert!(!debug.contains("node-affinity"), "{debug}");
        assert!(!debug.contains("least-allocated"), "{debug}");
        assert!(debug.contains("node-ports"), "{debug}");
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

    /// Records the nodes each pod scored, in the order it saw them.
    struct Recorder(std::rc::Rc<std::cell::RefCell<Vec<Vec<String>>>>);

    impl Score for Recorder {
        fn name(&self) -> &str {
            "recorder"
        }

        fn score(&self, _pod: &Pod, _node: &NodeInfo) -> i64 {
            0
        }

        fn score_nodes(
            &self,
            _pod: &Pod,
            _cache: &NodeCache,
            nodes: &[&NodeInfo],
            scores: &mut [i64],
        ) {
            self.0
                .borrow_mut()
                .push(nodes.iter().map(|n| n.name().to_owned()).collect());
            scores.fill(0);
        }
    }

    fn numbered(i: usize) -> String {
        format!("n{i:04}")
    }

    /// `count` nodes named n0000, n0001, ..., added in reverse order, with
    /// the default filters and a recorder as the only score.
    fn sampled(
        count: usize,
        change: impl Fn(usize, &mut Node),
    ) -> (Framework, std::rc::Rc<std::cell::RefCell<Vec<Vec<String>>>>) {
        let seen = std::rc::Rc::default();
        let mut framework = Framework::with_defaults()
            .configure(&json!({"disabled": [
                "least-allocated", "balanced-allocation", "node-affinity",
                "owner-spread", "prefer-no-schedule",
            ]}))
            .unwrap()
            .filter(NodeAffinity)
            .score(Recorder(std::rc::Rc::clone(&seen)), 1);
        let nodes = (0..count).rev().map(|i| {
            let mut n = node(&numbered(i), 4000, 8 << 30);
            change(i, &mut n);
            ClusterEvent::NodeAdded(n)
        });
        framework.update(nodes.collect());
        (framework, seen)
    }

    fn range(from: usize, to: usize) -> Vec<String> {
        (from..to).map(numbered).collect()
    }

    #[test]
    fn feasible_nodes_to_find_like_kube_scheduler() {
        // (nodes, percentage, feasible nodes to find)
        let cases = [
            (0, 0, 0),
            (1, 0, 1),
            (99, 0, 99),
            (99, 10, 99),
            (100, 0, 100),
            // Adaptive: 50 - 1000/125 = 42%.
            (1000, 0, 420),
            // 50 - 5000/125 = 10%.
            (5000, 0, 500),
            // 50 - 6000/125 = 2%, raised to 5%.
            (6000, 0, 300),
            (100_000, 0, 5000),
            // Never fewer than 100.
            (1000, 5, 100),
            (1000, 30, 300),
            (5000, 50, 2500),
            (5000, 100, 5000),
        ];
        for (nodes, percentage, expected) in cases {
            let framework = Framework::with_defaults().percentage_of_nodes_to_score(percentage);
            assert_eq!(
                framework.num_feasible_nodes_to_find(nodes),
                expected,
                "{nodes} nodes at {percentage}%"
            );
        }
        // Without filters, every node is feasible: all are scored.
        assert_eq!(Framework::new().num_feasible_nodes_to_find(5000), 5000);
        assert_eq!(
            Framework::new()
                .percentage_of_nodes_to_score(200)
                .percentage_of_nodes_to_score,
            100
        );
    }

    #[test]
    fn sampling_scores_a_rotating_window() {
        // 300 nodes: 50 - 300/125 = 48% -> 144 nodes per pod.
        let (mut framework, seen) = sampled(300, |_, _| {});
        assert_eq!(framework.num_feasible_nodes_to_find(300), 144);
        let expected_windows = [
            range(0, 144),
            range(144, 288),
            // Wraps around: the window is 288..300 and 0..132, scored in name order.
            [range(0, 132), range(288, 300)].concat(),
            range(132, 276),
        ];
        let mut starts = vec![framework.next_start_node_index()];
        for window in &expected_windows {
            // Ties go to the first name of the window.
            assert_eq!(
                chosen(framework.schedule(&pod("p", 100, 0))),
                window[0].clone()
            );
            starts.push(framework.next_start_node_index());
        }
        assert_eq!(*seen.borrow(), expected_windows);
        assert_eq!(starts, [0, 144, 288, 132, 276]);

        // The same events give the same choices.
        let (mut again, _) = sampled(300, |_, _| {});
        let (mut first, _) = sampled(300, |_, _| {});
        for _ in 0..5 {
            assert_eq!(
                again.schedule(&pod("p", 100, 0)),
                first.schedule(&pod("p", 100, 0))
            );
        }
    }

    #[test]
    fn sampling_counts_the_nodes_it_ruled_out() {
        // Every third node is cordoned: 144 feasible nodes take 216 nodes.
        let (mut framework, seen) = sampled(300, |i, n| n.unschedulable = i % 3 == 0);
        assert_eq!(chosen(framework.schedule(&pod("p", 100, 0))), numbered(1));
        let expected: Vec<String> = (0..216).filter(|i| i % 3 != 0).map(numbered).collect();
        assert_eq!(seen.borrow()[0], expected);
        assert_eq!(framework.next_start_node_index(), 216);

        // A pod only a few nodes fit is searched for everywhere.
        let mut picky = pod("picky", 100, 0);
        picky.node_selector = vec![crate::KeyValue::new("pool", "gpu")];
        let (mut framework, seen) = sampled(300, |i, n| {
            if i % 50 == 7 {
                n.labels = vec![crate::KeyValue::new("pool", "gpu")];
            }
        });
        assert_eq!(chosen(framework.schedule(&picky)), numbered(7));
        assert_eq!(
            seen.borrow()[0],
            [7, 57, 107, 157, 207, 257].map(numbered).to_vec()
        );
        // Every node was examined: the start does not move.
        assert_eq!(framework.next_start_node_index(), 0);
    }

    #[test]
    fn sampling_explains_every_node_when_none_fits() {
        let (mut framework, _) = sampled(300, |i, n| n.unschedulable = i % 2 == 0);
        framework.schedule(&pod("p", 100, 0));
        let start = framework.next_start_node_index();
        assert_eq!(start, 288);
        match framework.schedule(&pod("huge", 100_000, 0)) {
            ScheduleResult::Unschedulable(reasons) => {
                assert_eq!(reasons.len(), 300);
                for (i, reason) in reasons.iter().enumerate() {
                    assert_eq!(reason.node, numbered(i));
                    let expected = if i % 2 == 0 {
                        "node(s) were unschedulable"
                    } else {
                        "Insufficient cpu"
                    };
                    assert_eq!(reason.reason, expected);
                }
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(framework.next_start_node_index(), start);
    }

    #[test]
    fn percentage_of_nodes_to_score_is_configurable() {
        let (framework, _) = sampled(300, |_, _| {});
        let mut all = framework
            .configure(&json!({"percentage-of-nodes-to-score": 100}))
            .unwrap();
        assert_eq!(all.num_feasible_nodes_to_find(300), 300);
        all.schedule(&pod("p", 100, 0));
        assert_eq!(all.next_start_node_index(), 0);

        let half = Framework::with_defaults()
            .configure(&json!({"percentage-of-nodes-to-score": 50}))
            .unwrap();
        assert_eq!(half.num_feasible_nodes_to_find(1000), 500);
        for bad in [json!(-1), json!(101), json!(12.5), json!("10")] {
            let error = Framework::with_defaults()
                .configure(&json!({"percentage-of-nodes-to-score": bad}))
                .unwrap_err();
            assert_eq!(
                error,
                format!("percentage-of-nodes-to-score must be an integer from 0 to 100, not {bad}")
            );
        }
    }

    #[test]
    fn prefers_the_preferred_nodes() {
        use crate::scheduler::testing::{requirement, term};
        let zoned = |name: &str, zone: &str| {
            let mut n = node(name, 4000, 8 << 30);
            n.labels = vec![crate::KeyValue::new("zone", zone)];
            n
        };
        let mut framework = framework(vec![zoned("a", "east"), zoned("b", "west")]);
        // "a" is emptier, but the pod prefers the west.
        framework.update(vec![assigned(pod("busy", 1000, 2 << 30), "b")]);
        let mut p = pod("p", 100, 0);
        assert_eq!(chosen(framework.schedule(&p)), "a");
        p.preferred_node_affinity = vec![crate::scheduler::PreferredTerm {
            weight: 10,
            term: term(
                vec![requirement(
                    "zone",
                    crate::scheduler::SelectorOperator::In,
                    &["west"],
                )],
                vec![],
            ),
        }];
        assert_eq!(chosen(framework.schedule(&p)), "b");
        let mut framework = framework
            .configure(&json!({"weights": {"node-affinity": 0}}))
            .unwrap();
        assert_eq!(chosen(framework.schedule(&p)), "a");
    }

    #[test]
    fn spreads_pods_selected_by_the_same_service() {
        let mut framework = framework(vec![node("a", 4000, 8 << 30), node("b", 4000, 8 << 30)]);
        let web = |name: &str| {
            let mut p = pod(name, 100, 64 << 20);
            p.labels = vec![crate::KeyValue::new("app", "web")];
            p
        };
        // "a" holds a web pod of another owner and less load than "b".
        framework.update(vec![
            assigned(web("web-1"), "a"),
            assigned(pod("other", 200, 64 << 20), "b"),
        ]);
        let mut pending = web("web-2");
        assert_eq!(chosen(framework.schedule(&pending)), "a");
        pending.spread_selectors = vec![vec![crate::KeyValue::new("app", "web")]];
        for _ in 0..3 {
            assert_eq!(chosen(framework.schedule(&pending)), "b");
        }
        // Assumed on "b", like the host reports it: now "a" has fewer siblings.
        let mut assumed = pending.clone();
        assumed.spread_selectors.clear();
        framework.update(vec![assigned(assumed, "b"), assigned(web("web-3"), "b")]);
        let mut next = web("web-4");
        next.spread_selectors = pending.spread_selectors.clone();
        assert_eq!(chosen(framework.schedule(&next)), "a");
        // The binding failed: "web-2" is gone from "b" again.
        framework.update(vec![ClusterEvent::PodUnassigned("web-2-uid".into())]);
        assert_eq!(framework.cache().node("b").unwrap().pods().len(), 2);
    }
}
