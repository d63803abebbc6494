//! `builtin:default-scheduler`: Hortator's scheduler, the SDK's scheduling
//! framework with its default filters and scores — kube-scheduler's
//! behaviour for what the `scheduler` world describes.
//!
//! For each pending pod:
//!
//! 1. **Filter.** Nodes are ruled out, each with kube-scheduler's reason, if
//!    they are cordoned (`node-unschedulable`), not ready (`node-ready`), have
//!    a `NoSchedule`/`NoExecute` taint the pod does not tolerate
//!    (`taint-toleration`), miss the pod's node selector or required node
//!    affinity (`node-affinity`), already use one of its host ports
//!    (`node-ports`), or lack the CPU, memory, ephemeral storage or pod slots
//!    it requests (`node-resources-fit`). Like kube-scheduler, the search
//!    stops once it has found enough feasible nodes (its
//!    `percentageOfNodesToScore`: every node up to 100 nodes, 10% of 5,000
//!    nodes), starting where the previous pod's search stopped so that every
//!    node gets its turn. If no node fits, the answer explains every node.
//! 2. **Score.** The feasible nodes found are rated 0–100 by each score,
//!    times its weight: `least-allocated` (1, the most free CPU and memory),
//!    `balanced-allocation` (1, CPU and memory used evenly), `node-affinity`
//!    (2, the pod's preferred node affinity), `owner-spread` (2, the fewest
//!    pods of the same owner or selected by the same services and replication
//!    controllers), `prefer-no-schedule` (3, the fewest untolerated
//!    `PreferNoSchedule` taints). The highest total wins; ties go to the node
//!    whose name sorts first.
//!
//! The host reports each placement back at once (`pod-assigned`, the pod is
//! assumed) and takes it back if the binding fails (`pod-unassigned`), so the
//! next pod already sees it.
//!
//! # Configuration
//!
//! Every key is optional:
//!
//! ```toml
//! [[plugins.scheduler]]
//! module = "builtin:default-scheduler"
//! config = { weights = { least-allocated = 2 }, disabled = ["prefer-no-schedule"], tie-break = "random", percentage-of-nodes-to-score = 50 }
//! ```
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `weights` | table of score name to integer weight; a negative weight reverses a preference, 0 turns the score off | the weights above |
//! | `disabled` | filter and score names to remove (`node-affinity` names the filter and the score) | none |
//! | `tie-break` | `"name"`: the first name among the best nodes; `"random"`: any of them, as kube-scheduler | `"name"` |
//! | `percentage-of-nodes-to-score` | integer 0–100: the share of nodes to find feasible before scoring (at least 100 nodes); 0 is kube-scheduler's adaptive `max(5, 50 - nodes/125)` percent, 100 scores every node | 0 |
//!
//! Any other key, an unknown score or filter name, or a value of the wrong
//! type refuses the configuration with a message naming it.

use hortator_sdk::scheduler::{Framework, Scheduler};
use hortator_sdk::serde_json::Value;

/// The configuration keys this plugin reads.
const KEYS: [&str; 4] = [
    "weights",
    "disabled",
    "tie-break",
    "percentage-of-nodes-to-score",
];

struct DefaultScheduler(Framework);

impl Scheduler for DefaultScheduler {
    fn init(config: Value) -> Result<Self, String> {
        let table = config
            .as_object()
            .ok_or_else(|| format!("the configuration must be a table, not {config}"))?;
        if let Some(unknown) = table.keys().find(|key| !KEYS.contains(&key.as_str())) {
            return Err(format!(
                "unknown configuration key {unknown:?} (known: {})",
                KEYS.join(", ")
            ));
        }
        Framework::with_defaults()
            .configure(&config)
            .map(DefaultScheduler)
    }

    fn framework(&mut self) -> &mut Framework {
        &mut self.0
    }
}

hortator_sdk::export_scheduler!(DefaultScheduler);

#[cfg(test)]
mod tests {
    use super::*;
    use hortator_sdk::scheduler::{ClusterEvent, Node, Pod, ScheduleResult};
    use hortator_sdk::serde_json::json;

    #[test]
    fn spreads_load_and_explains_failures() {
        let mut scheduler = DefaultScheduler::init(json!({})).unwrap();
        scheduler.update(vec![
            ClusterEvent::NodeAdded(Node::new("a", 4000, 8 << 30)),
            ClusterEvent::NodeAdded(Node::new("b", 4000, 8 << 30)),
            ClusterEvent::assigned(Pod::new("busy", 2000, 0), "a"),
        ]);
        assert_eq!(
            scheduler.schedule(&Pod::new("p", 500, 0)),
            ScheduleResult::Node("b".into())
        );
        match scheduler.schedule(&Pod::new("huge", 5000, 0)) {
            ScheduleResult::Unschedulable(reasons) => {
                assert_eq!(reasons.len(), 2);
                assert!(reasons.iter().all(|r| r.reason == "Insufficient cpu"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn configuration() {
        assert!(
            DefaultScheduler::init(json!({
                "weights": {"least-allocated": 2, "node-affinity": 5},
                "disabled": ["prefer-no-schedule"],
                "tie-break": "random",
                "percentage-of-nodes-to-score": 50,
            }))
            .is_ok()
        );
        for (config, error) in [
            (
                json!({"percentage-of-node-to-score": 5}),
                "unknown configuration key \"percentage-of-node-to-score\" (known: weights, disabled, tie-break, percentage-of-nodes-to-score)",
            ),
            (
                json!({"percentage-of-nodes-to-score": 150}),
                "percentage-of-nodes-to-score must be an integer from 0 to 100, not 150",
            ),
            (
                json!({"weights": {"most-allocated": 1}}),
                "unknown score \"most-allocated\" in weights",
            ),
            (
                json!("fast"),
                "the configuration must be a table, not \"fast\"",
            ),
        ] {
            assert_eq!(DefaultScheduler::init(config).err().unwrap(), error);
        }
    }
}
