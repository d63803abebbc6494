//! `binpack`: an example scheduler plugin that packs pods onto as few nodes
//! as possible, leaving the others empty (to scale them down, or for big
//! pods).
//!
//! It is the SDK's default framework — the same filters, so a pod only goes
//! where it can run, and the same scores — with kube-scheduler's
//! `MostAllocated` scoring strategy in place of `LeastAllocated`: a node
//! scores the share of its CPU and memory that would be requested once the
//! pod is on it. The score is implemented here, in a few lines.
//!
//! ```toml
//! [[plugins.scheduler]]
//! module = "examples/plugins/binpack.wasm"
//! memory-mb = 1024
//! config = { weights = { most-allocated = 5 } }
//! ```
//!
//! The configuration takes the framework's keys (`weights`, `disabled`,
//! `tie-break`, `percentage-of-nodes-to-score`). `most-allocated` weighs 5 by
//! default, so that filling a busy node wins over spreading replicas
//! (`owner-spread`, weight 2) and balancing CPU against memory
//! (`balanced-allocation`, 1); between nodes about as full, replicas of one
//! owner still spread. `disabled = ["owner-spread"]` packs them too.

use hortator_sdk::scheduler::{Framework, NodeInfo, Pod, Scheduler, Score};
use hortator_sdk::serde_json::Value;

/// The weight of [`MostAllocated`] unless configured otherwise.
const MOST_ALLOCATED_WEIGHT: i64 = 5;

/// Prefers the nodes whose CPU and memory would be the most requested once
/// the pod is on them (kube-scheduler's `MostAllocated`): the mean over CPU
/// and memory of `100 * requested / allocatable`, counting a pod that
/// requests no CPU or memory as kube-scheduler does (100 millicores, 200 MiB)
/// and leaving out a resource the node has none of.
struct MostAllocated;

impl Score for MostAllocated {
    fn name(&self) -> &str {
        "most-allocated"
    }

    fn score(&self, pod: &Pod, node: &NodeInfo) -> i64 {
        let allocatable = node.node().allocatable;
        let on_node = node.non_zero_requested();
        let wanted = pod.non_zero_requests();
        let (mut sum, mut resources) = (0, 0);
        for (requested, capacity) in [
            (on_node.milli_cpu + wanted.milli_cpu, allocatable.milli_cpu),
            (on_node.memory + wanted.memory, allocatable.memory),
        ] {
            // Pods that request nothing may take a node past its capacity.
            // (100 times a byte count fits in 64 bits up to 184 PB.) A
            // resource the node has none of does not count.
            if let Some(used) = (requested.min(capacity) * 100).checked_div(capacity) {
                sum += used as i64;
                resources += 1;
            }
        }
        if resources == 0 { 0 } else { sum / resources }
    }
}

struct Binpack(Framework);

impl Scheduler for Binpack {
    fn init(config: Value) -> Result<Self, String> {
        let framework = Framework::with_defaults()
            .without("least-allocated")
            .score(MostAllocated, MOST_ALLOCATED_WEIGHT)
            .configure(&config)?;
        Ok(Binpack(framework))
    }

    fn framework(&mut self) -> &mut Framework {
        &mut self.0
    }
}

hortator_sdk::export_scheduler!(Binpack);

#[cfg(test)]
mod tests {
    use super::*;
    use hortator_sdk::scheduler::{ClusterEvent, Node, Owner, ScheduleResult};
    use hortator_sdk::serde_json::json;

    const GI: u64 = 1 << 30;

    fn with_pod(n: Node, used_cpu: u64, used_memory: u64) -> NodeInfo {
        let mut info = NodeInfo::new(n);
        info.add_pod(Pod::new("used", used_cpu, used_memory));
        info
    }

    #[test]
    fn most_allocated_like_kube_scheduler() {
        // (pod cpu, pod memory, node, expected score)
        let cases = [
            // cpu 1000/4000 = 25, memory 1/4 = 25
            ((1000, GI), NodeInfo::new(Node::new("n", 4000, 4 * GI)), 25),
            // cpu (2000+1000)/4000 = 75, memory (1+1)/4 = 50
            (
                (1000, GI),
                with_pod(Node::new("n", 4000, 4 * GI), 2000, GI),
                62,
            ),
            // A pod requesting nothing counts 100m and 200Mi: 2 and 4.
            (
                (0, 0),
                NodeInfo::new(Node::new("n", 4000, 5 * GI)),
                (2 + 3) / 2,
            ),
            // Capped at the capacity.
            (
                (8000, 8 * GI),
                NodeInfo::new(Node::new("n", 4000, 4 * GI)),
                100,
            ),
            // A resource the node has none of does not count.
            ((1000, 0), NodeInfo::new(Node::new("n", 4000, 0)), 25),
            ((1, 1), NodeInfo::new(Node::new("n", 0, 0)), 0),
        ];
        for ((cpu, memory), n, expected) in cases {
            assert_eq!(
                MostAllocated.score(&Pod::new("p", cpu, memory), &n),
                expected,
                "{cpu}m {memory}B on {:?}",
                n.node().allocatable
            );
        }
    }

    fn chosen(result: ScheduleResult) -> String {
        match result {
            ScheduleResult::Node(name) => name,
            ScheduleResult::Unschedulable(reasons) => panic!("unschedulable: {reasons:?}"),
        }
    }

    /// Schedules six 500m/1Gi replicas of one owner on three 4-CPU/8Gi
    /// nodes, "b" half full, assuming each one as the host does.
    fn place_replicas(config: Value) -> Vec<String> {
        let mut binpack = Binpack::init(config).unwrap();
        binpack.update(vec![
            ClusterEvent::NodeAdded(Node::new("a", 4000, 8 * GI)),
            ClusterEvent::NodeAdded(Node::new("b", 4000, 8 * GI)),
            ClusterEvent::NodeAdded(Node::new("c", 4000, 8 * GI)),
            ClusterEvent::assigned(Pod::new("busy", 2000, 4 * GI), "b"),
        ]);
        let owner = Owner {
            kind: "ReplicaSet".into(),
            name: "web".into(),
            uid: "rs-1".into(),
        };
        (0..6)
            .map(|i| {
                let mut replica = Pod::new(&format!("web-{i}"), 500, GI);
                replica.owner = Some(owner.clone());
                let name = chosen(binpack.schedule(&replica));
                binpack.update(vec![ClusterEvent::assigned(replica, &name)]);
                name
            })
            .collect()
    }

    #[test]
    fn fills_the_busiest_node_that_fits() {
        // "b" fills up first: packing outweighs spreading between a busy
        // node and empty ones. Between the two nodes left, nearly empty
        // both, spreading the replicas wins.
        assert_eq!(place_replicas(json!({})), ["b", "b", "b", "b", "a", "c"]);
        // Without spreading, replicas pack too.
        assert_eq!(
            place_replicas(json!({"disabled": ["owner-spread"]})),
            ["b", "b", "b", "b", "a", "a"]
        );
    }

    #[test]
    fn configuration() {
        // The default framework's least-allocated score is gone.
        assert_eq!(
            Binpack::init(json!({"weights": {"least-allocated": 1}}))
                .err()
                .unwrap(),
            "unknown score \"least-allocated\" in weights"
        );
        let mut spread = Binpack::init(json!({"weights": {"most-allocated": -1}})).unwrap();
        spread.update(vec![
            ClusterEvent::NodeAdded(Node::new("a", 4000, 8 * GI)),
            ClusterEvent::NodeAdded(Node::new("b", 4000, 8 * GI)),
            ClusterEvent::assigned(Pod::new("busy", 2000, 4 * GI), "a"),
        ]);
        assert_eq!(chosen(spread.schedule(&Pod::new("p", 500, GI))), "b");
    }
}
