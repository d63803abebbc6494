//! Native benchmark of the scheduling framework at scale: 5,000 nodes and
//! 150,000 bound pods, then pending pods scheduled one by one, each followed
//! by the `pod-assigned` event the host sends when it assumes the pod.
//!
//! ```sh
//! cargo run --release --example schedule_bench --manifest-path sdk/rust/Cargo.toml
//! cargo run --release --example schedule_bench --manifest-path sdk/rust/Cargo.toml -- 2000 60000
//! ```
//!
//! Arguments: nodes (default 5000), bound pods (default 150000), pending
//! pods (default 10000). Built with `--target wasm32-wasip2`, it is a WASI
//! command that any WebAssembly runtime with a clock runs; in wasmtime it
//! measured 1.1-1.4x the native times.

use std::time::{Duration, Instant};

use hortator_sdk::KeyValue;
use hortator_sdk::scheduler::{
    AssignedPod, ClusterEvent, Framework, Node, NodeSelectorRequirement, NodeSelectorTerm, Owner,
    Pod, PreferredTerm, Resources, ScheduleResult, SelectorOperator, Taint, TaintEffect,
};

/// Replicas per owner among the bound pods.
const REPLICAS: usize = 100;
const NAMESPACES: usize = 10;
const ZONES: [&str; 3] = ["zone-a", "zone-b", "zone-c"];

/// xorshift64: deterministic data.
struct Random(u64);

impl Random {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue::new(key, value)
}

fn node(i: usize) -> Node {
    let mut taints = Vec::new();
    if i.is_multiple_of(20) {
        taints.push(Taint {
            key: "maintenance".into(),
            value: "soon".into(),
            effect: TaintEffect::PreferNoSchedule,
        });
    }
    if i % 100 == 50 {
        taints.push(Taint {
            key: "dedicated".into(),
            value: "gpu".into(),
            effect: TaintEffect::NoSchedule,
        });
    }
    Node {
        name: format!("node-{i:05}"),
        labels: vec![
            kv("kubernetes.io/hostname", &format!("node-{i:05}")),
            kv("topology.kubernetes.io/zone", ZONES[i % 3]),
            kv("node.kubernetes.io/instance-type", "m5.2xlarge"),
        ],
        allocatable: Resources {
            milli_cpu: 8000,
            memory: 32 << 30,
            ephemeral_storage: 100 << 30,
            pods: 110,
        },
        taints,
        unschedulable: i % 100 == 99,
        ready: i % 500 != 250,
    }
}

/// Replica `replica` of owner `owner`: labels `app=app-<owner>`,
/// `tier=...`; pending pods also get the owner's selector to spread by.
fn pod(owner: usize, replica: usize, pending: bool) -> Pod {
    let app = format!("app-{owner}");
    let mut preferred_node_affinity = Vec::new();
    if pending && owner.is_multiple_of(4) {
        preferred_node_affinity.push(PreferredTerm {
            weight: 50,
            term: NodeSelectorTerm {
                match_expressions: vec![NodeSelectorRequirement {
                    key: "topology.kubernetes.io/zone".into(),
                    operator: SelectorOperator::In,
                    values: vec![ZONES[owner % 3].into()],
                }],
                match_fields: Vec::new(),
            },
        });
    }
    Pod {
        uid: format!(
            "{owner:08x}-{replica:04x}-4000-8000-{:012x}",
            owner * 1000 + replica
        ),
        namespace: format!("ns-{}", owner % NAMESPACES),
        name: format!("{app}-{replica:05}"),
        labels: vec![
            kv("app", &app),
            kv("tier", ["web", "backend"][owner % 2]),
            kv("pod-template-hash", &format!("{owner:x}")),
        ],
        requests: Resources {
            milli_cpu: 100,
            memory: 128 << 20,
            ephemeral_storage: 0,
            pods: 1,
        },
        host_ports: Vec::new(),
        node_selector: Vec::new(),
        required_node_affinity: Vec::new(),
        preferred_node_affinity,
        tolerations: Vec::new(),
        owner: Some(Owner {
            kind: "ReplicationController".into(),
            name: app.clone(),
            uid: format!("owner-{owner:08x}-0000-4000-8000-000000000000"),
        }),
        spread_selectors: if pending {
            vec![vec![kv("app", &app)]]
        } else {
            Vec::new()
        },
        priority: 0,
    }
}

fn assigned(mut pod: Pod, node_name: String) -> ClusterEvent {
    pod.spread_selectors.clear();
    ClusterEvent::PodAssigned(AssignedPod { pod, node_name })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Schedules `count` pending pods of a few owners, assuming each one as the
/// host does; prints the latencies.
fn run(label: &str, framework: &mut Framework, first_owner: usize, count: usize) {
    if count == 0 {
        return;
    }
    let mut schedule_times = Vec::with_capacity(count);
    let mut assume_times = Vec::with_capacity(count);
    let mut unschedulable = 0;
    for i in 0..count {
        // 50 owners, a pod of each in turn (as a few controllers scaling up do).
        let owner = first_owner + i % 50;
        let pending = pod(owner, 10_000 + i, true);
        let started = Instant::now();
        let result = framework.schedule(&pending);
        schedule_times.push(started.elapsed());
        match result {
            ScheduleResult::Node(name) => {
                let started = Instant::now();
                framework.update(vec![assigned(pending, name)]);
                assume_times.push(started.elapsed());
            }
            ScheduleResult::Unschedulable(_) => unschedulable += 1,
        }
    }
    let total: Duration = schedule_times.iter().sum();
    schedule_times.sort_unstable();
    assume_times.sort_unstable();
    println!(
        "{label}: {count} pods, schedule() median {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, max {:.0} µs, mean {:.1} µs; pod-assigned (assume) event median {:.2} µs; {unschedulable} unschedulable",
        micros(percentile(&schedule_times, 0.5)),
        micros(percentile(&schedule_times, 0.9)),
        micros(percentile(&schedule_times, 0.99)),
        micros(*schedule_times.last().unwrap()),
        micros(total) / count as f64,
        micros(percentile(&assume_times, 0.5)),
    );
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|arg| {
            arg.parse()
                .expect("numbers: nodes, bound pods, pending pods")
        })
        .collect();
    let nodes = args.first().copied().unwrap_or(5000);
    let bound = args.get(1).copied().unwrap_or(150_000);
    let pending = args.get(2).copied().unwrap_or(10_000);
    let owners = bound.div_ceil(REPLICAS);

    let mut framework = Framework::with_defaults();
    let mut random = Random(0x9e37_79b9_7f4a_7c15);

    // Nodes in shuffled order, in one batch.
    let mut order: Vec<usize> = (0..nodes).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, random.below(i + 1));
    }
    let events: Vec<ClusterEvent> = order
        .iter()
        .map(|&i| ClusterEvent::NodeAdded(node(i)))
        .collect();
    let started = Instant::now();
    framework.update(events);
    let node_time = started.elapsed();

    // Bound pods, in batches of 1,000 events, spread at random.
    let mut pod_time = Duration::ZERO;
    let mut batch = Vec::with_capacity(1000);
    for n in 0..bound {
        let (owner, replica) = (n % owners, n / owners);
        batch.push(assigned(
            pod(owner, replica, false),
            format!("node-{:05}", random.below(nodes)),
        ));
        if batch.len() == 1000 || n + 1 == bound {
            let events = std::mem::take(&mut batch);
            let started = Instant::now();
            framework.update(events);
            pod_time += started.elapsed();
        }
    }
    println!(
        "{nodes} nodes: {:.1} ms ({:.2} µs per node-added event); {bound} pods: {:.1} ms ({:.2} µs per pod-assigned event)",
        node_time.as_secs_f64() * 1e3,
        micros(node_time) / nodes as f64,
        pod_time.as_secs_f64() * 1e3,
        micros(pod_time) / bound.max(1) as f64,
    );
    println!(
        "pods to score per schedule: {} of {nodes} nodes (adaptive percentage)",
        framework.num_feasible_nodes_to_find(nodes)
    );

    // Pods of owners that already have replicas: their spread groups are
    // built on their first pods, then maintained.
    run("existing owners", &mut framework, 0, pending);
    // Owners never seen: empty groups.
    run("new owners", &mut framework, owners + 1000, pending / 5);

    // Unschedulable: every node examined and explained.
    let mut huge = pod(0, 99_999, true);
    huge.requests.milli_cpu = 1_000_000;
    let mut times = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let result = framework.schedule(&huge);
        times.push(started.elapsed());
        assert!(
            matches!(result, ScheduleResult::Unschedulable(ref reasons) if reasons.len() == nodes)
        );
    }
    times.sort_unstable();
    println!(
        "unschedulable pod: median {:.0} µs (one reason per node)",
        micros(percentile(&times, 0.5))
    );

    // Every node scored, for comparison.
    let mut all = framework_all_nodes(&framework);
    run(
        "percentage-of-nodes-to-score = 100",
        &mut all,
        0,
        pending / 5,
    );
}

/// A framework scoring every node with the same view of the cluster.
fn framework_all_nodes(framework: &Framework) -> Framework {
    let mut all = Framework::with_defaults().percentage_of_nodes_to_score(100);
    let mut events: Vec<ClusterEvent> = framework
        .cache()
        .nodes()
        .map(|info| ClusterEvent::NodeAdded(info.node().clone()))
        .collect();
    for info in framework.cache().nodes() {
        for pod in info.pods() {
            events.push(assigned(pod.clone(), info.name().to_owned()));
        }
    }
    all.update(events);
    all
}
