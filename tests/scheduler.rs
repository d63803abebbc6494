//! The scheduler end to end: the real `hortator up` with its built-in
//! default-scheduler plugin, `hortator sim` nodes, and the real kubectl.

use std::collections::BTreeMap;
use std::time::Duration;

use hortator_tests::{Cluster, Sim, build_example_plugin, eventually, tail};
use serde_json::{Value, json};

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

fn ready_nodes(cluster: &Cluster) -> Vec<String> {
    items(&cluster.kubectl_json(&["get", "nodes"]))
        .iter()
        .filter(|n| {
            n["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .map(|n| n["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

fn wait_nodes(cluster: &Cluster, count: usize) -> Vec<String> {
    eventually("sim nodes", || {
        let nodes = ready_nodes(cluster);
        (nodes.len() == count).then_some(nodes)
    })
}

/// Pod name → (phase, node).
fn pods(cluster: &Cluster) -> BTreeMap<String, (String, String)> {
    items(&cluster.kubectl_json(&["get", "pods"]))
        .iter()
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap().to_string(),
                (
                    p["status"]["phase"].as_str().unwrap_or("").to_string(),
                    p["spec"]["nodeName"].as_str().unwrap_or("").to_string(),
                ),
            )
        })
        .collect()
}

/// The messages of the events of `reason` about pod `name`.
fn events(cluster: &Cluster, name: &str, reason: &str) -> Vec<Value> {
    items(&cluster.kubectl_json(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={name},reason={reason}"),
    ]))
}

fn create(cluster: &Cluster, object: &Value) {
    cluster.kubectl_ok_stdin(&["create", "-f", "-"], Some(&object.to_string()));
}

fn pod(name: &str, cpu: &str, extra: Value) -> Value {
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"test": "scheduler"}},
        "spec": {"containers": [{
            "name": "c", "image": "busybox",
            "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}
        }]}
    });
    merge(&mut pod, extra);
    pod
}

fn merge(target: &mut Value, patch: Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p,
    }
}

fn node_of(cluster: &Cluster, name: &str) -> String {
    eventually(&format!("pod {name} to be bound"), || {
        pods(cluster)
            .get(name)
            .map(|(_, node)| node.clone())
            .filter(|n| !n.is_empty())
    })
}

fn failed_scheduling(cluster: &Cluster, name: &str) -> String {
    eventually(&format!("a FailedScheduling event for {name}"), || {
        events(cluster, name, "FailedScheduling")
            .first()
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
    })
}

/// The seed's case: three `hostPort: 80` pods on two nodes. Two run, the
/// third stays Pending with kube-scheduler's message, and runs once a port
/// is free again.
#[test]
fn seed_host_ports_leave_the_third_pod_pending() {
    let cluster = Cluster::start();
    let _sim = Sim::start(&cluster, &["--nodes", "2"]);
    let nodes = wait_nodes(&cluster, 2);
    let seed = std::fs::read_to_string(Cluster::example("seed/httpd-pod.json")).unwrap();
    for i in 1..=3 {
        let text = seed.replace(
            "\"id\": \"httpd\",\n  \"labels\"",
            &format!("\"id\": \"httpd-{i}\",\n  \"labels\""),
        );
        assert!(text.contains(&format!("httpd-{i}")), "{text}");
        cluster.kubectl_ok_stdin(&["create", "-f", "-"], Some(&text));
    }
    let (running, pending) = eventually("2 Running, 1 Pending", || {
        let pods = pods(&cluster);
        let running: Vec<_> = pods
            .iter()
            .filter(|(_, (p, _))| p == "Running")
            .map(|(n, (_, node))| (n.clone(), node.clone()))
            .collect();
        let pending: Vec<_> = pods
            .iter()
            .filter(|(_, (p, node))| p == "Pending" && node.is_empty())
            .map(|(n, _)| n.clone())
            .collect();
        (running.len() == 2 && pending.len() == 1).then_some((running, pending))
    });
    let mut used: Vec<&String> = running.iter().map(|(_, node)| node).collect();
    used.sort();
    assert_eq!(used, nodes.iter().collect::<Vec<_>>(), "one pod per node");
    let message = failed_scheduling(&cluster, &pending[0]);
    assert_eq!(
        message,
        "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports."
    );
    let describe = cluster.kubectl_ok(&["describe", "pod", &pending[0]]);
    assert!(describe.contains("FailedScheduling"), "{describe}");
    assert!(describe.contains("didn't have free ports"), "{describe}");
    let condition = cluster.kubectl_json(&["get", "pod", &pending[0]])["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "PodScheduled")
        .cloned()
        .unwrap();
    assert_eq!(condition["status"], "False");
    assert_eq!(condition["reason"], "Unschedulable");
    let scheduled = events(&cluster, &running[0].0, "Scheduled");
    assert_eq!(scheduled.len(), 1, "{scheduled:?}");
    assert_eq!(
        scheduled[0]["message"],
        format!(
            "Successfully assigned default/{} to {}",
            running[0].0, running[0].1
        )
    );
    assert_eq!(scheduled[0]["source"]["component"], "default-scheduler");

    // Deleting a running pod frees its port: the pending one goes there.
    cluster.kubectl_ok(&["delete", "pod", &running[0].0, "--wait=false"]);
    let node = node_of(&cluster, &pending[0]);
    assert_eq!(node, running[0].1);
}

/// Resources, node selectors and affinity, taints and tolerations, cordoned
/// nodes: each rules out the nodes it should, with kube-scheduler's reasons.
#[test]
fn filters_resources_selectors_taints() {
    let cluster = Cluster::start();
    let _small = Sim::start(
        &cluster,
        &[
            "--nodes", "1", "--prefix", "small-", "--cpu", "1", "--memory", "2Gi",
        ],
    );
    let _gpu = Sim::start(
        &cluster,
        &[
            "--nodes",
            "1",
            "--prefix",
            "gpu-",
            "--cpu",
            "8",
            "--label",
            "gpu=true",
            "--taint",
            "gpu=true:NoSchedule",
        ],
    );
    let nodes = wait_nodes(&cluster, 2);
    let gpu = nodes
        .iter()
        .find(|n| n.starts_with("gpu-"))
        .unwrap()
        .clone();
    let small = nodes
        .iter()
        .find(|n| n.starts_with("small-"))
        .unwrap()
        .clone();

    create(&cluster, &pod("big", "2", json!({})));
    let message = failed_scheduling(&cluster, "big");
    assert_eq!(
        message,
        "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {gpu: true}."
    );

    let tolerate = json!({"spec": {"tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]}});
    create(&cluster, &pod("big-tolerant", "2", tolerate.clone()));
    assert_eq!(node_of(&cluster, "big-tolerant"), gpu);

    create(
        &cluster,
        &pod(
            "picky",
            "100m",
            json!({"spec": {"nodeSelector": {"disk": "ssd"}}}),
        ),
    );
    let message = failed_scheduling(&cluster, "picky");
    assert!(
        message.contains("1 node(s) didn't match Pod's node affinity/selector"),
        "{message}"
    );

    let mut on_gpu = pod(
        "gpu-selected",
        "100m",
        json!({"spec": {"nodeSelector": {"gpu": "true"}}}),
    );
    merge(&mut on_gpu, tolerate.clone());
    create(&cluster, &on_gpu);
    assert_eq!(node_of(&cluster, "gpu-selected"), gpu);

    let affinity = json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [small]}]}]
    }}}}});
    let mut pinned = pod("pinned", "100m", affinity);
    merge(&mut pinned, tolerate);
    create(&cluster, &pinned);
    assert_eq!(node_of(&cluster, "pinned"), small);

    // A cordoned node takes nothing; uncordoning it lets the pod in.
    cluster.kubectl_ok(&["cordon", &small]);
    create(&cluster, &pod("after-cordon", "100m", json!({})));
    let message = failed_scheduling(&cluster, "after-cordon");
    assert_eq!(
        message,
        "0/2 nodes are available: 1 node(s) had untolerated taint {gpu: true}, 1 node(s) were unschedulable."
    );
    cluster.kubectl_ok(&["uncordon", &small]);
    assert_eq!(node_of(&cluster, "after-cordon"), small);

    // Resources are counted: the small node (1 CPU) holds 100m + 100m now;
    // a 900m pod no longer fits anywhere it tolerates.
    create(&cluster, &pod("too-much", "900m", json!({})));
    let message = failed_scheduling(&cluster, "too-much");
    assert!(message.contains("1 Insufficient cpu"), "{message}");
}

/// Replicas of one controller, and pods of one service, spread across nodes.
#[test]
fn replicas_and_service_pods_spread_across_nodes() {
    let cluster = Cluster::start();
    let _sim = Sim::start(&cluster, &["--nodes", "3"]);
    let nodes = wait_nodes(&cluster, 3);
    // The replication controller makes its 6 replicas; the scheduler spreads them.
    let template = pod("", "100m", json!({"metadata": {"labels": {"app": "web"}}}));
    let rc = json!({
        "apiVersion": "v1", "kind": "ReplicationController",
        "metadata": {"name": "web"},
        "spec": {"replicas": 6, "selector": {"app": "web"}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": template["spec"]}}
    });
    create(&cluster, &rc);
    let web = eventually("the 6 replicas bound", || {
        let bound: Vec<String> = pods(&cluster)
            .into_iter()
            .filter(|(name, (_, node))| name.starts_with("web-") && !node.is_empty())
            .map(|(_, (_, node))| node)
            .collect();
        (bound.len() == 6).then_some(bound)
    });
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for node in web {
        *per_node.entry(node).or_default() += 1;
    }
    assert_eq!(
        per_node.keys().collect::<Vec<_>>(),
        nodes.iter().collect::<Vec<_>>()
    );
    assert!(per_node.values().all(|&n| n == 2), "{per_node:?}");
    let svc = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
        "spec": {"selector": {"app": "db"}, "ports": [{"port": 5432}]}
    });
    create(&cluster, &svc);
    for i in 0..3 {
        create(
            &cluster,
            &pod(
                &format!("db-{i}"),
                "100m",
                json!({"metadata": {"labels": {"app": "db"}}}),
            ),
        );
    }
    let mut db: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..3 {
        *db.entry(node_of(&cluster, &format!("db-{i}"))).or_default() += 1;
    }
    assert!(db.values().all(|&n| n == 1), "{db:?}");
}

fn cpu_millis(q: &str) -> u64 {
    match q.strip_suffix('m') {
        Some(m) => m.parse().unwrap(),
        None => q.parse::<u64>().unwrap() * 1000,
    }
}

/// Requested CPU per node, in millicores.
fn allocated(cluster: &Cluster) -> BTreeMap<String, u64> {
    let mut used = BTreeMap::new();
    for p in items(&cluster.kubectl_json(&["get", "pods"])) {
        let Some(node) = p["spec"]["nodeName"].as_str() else {
            continue;
        };
        let cpu: u64 = p["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["resources"]["requests"]["cpu"].as_str())
            .map(cpu_millis)
            .sum();
        *used.entry(node.to_string()).or_default() += cpu;
    }
    used
}

/// Two profiles at once, and a swap of the default profile's policy to
/// bin-packing while pods are being created: no pod is lost or bound twice,
/// and placements after the swap pack.
#[test]
fn profiles_and_a_hot_swap_to_bin_packing() {
    let binpack = build_example_plugin("binpack");
    let config = format!(
        "[[plugins.scheduler]]\nmodule = \"builtin:default-scheduler\"\n\n\
         [[plugins.scheduler]]\nname = \"binpack\"\nmodule = \"{}\"\nmemory-mb = 256\n",
        binpack.display()
    );
    let cluster = Cluster::start_with_config(&config);
    let _sim = Sim::start(&cluster, &["--nodes", "3", "--cpu", "4"]);
    let nodes = wait_nodes(&cluster, 3);

    // The binpack profile packs its pods onto one node; a pod naming no
    // configured scheduler is left alone.
    let packed = json!({"spec": {"schedulerName": "binpack"}});
    for i in 0..4 {
        create(
            &cluster,
            &pod(&format!("packed-{i}"), "500m", packed.clone()),
        );
    }
    let packed_nodes: Vec<String> = (0..4)
        .map(|i| node_of(&cluster, &format!("packed-{i}")))
        .collect();
    assert!(
        packed_nodes.iter().all(|n| *n == packed_nodes[0]),
        "{packed_nodes:?}"
    );
    create(
        &cluster,
        &pod(
            "orphan",
            "100m",
            json!({"spec": {"schedulerName": "nobody"}}),
        ),
    );

    // Traffic through the default profile while its policy is swapped.
    let list = cluster.hortctl(&["plugin", "list", "-o", "json"]);
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert!(
        list.to_string().contains("scheduler/default-scheduler"),
        "{list}"
    );
    let total = 40;
    std::thread::scope(|scope| {
        let creator = scope.spawn(|| {
            for i in 0..total {
                create(&cluster, &pod(&format!("load-{i}"), "100m", json!({})));
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        std::thread::sleep(Duration::from_millis(800));
        let swap = cluster.hortctl(&[
            "plugin",
            "swap",
            "scheduler/default-scheduler",
            binpack.to_str().unwrap(),
        ]);
        assert!(
            swap.status.success(),
            "{}",
            String::from_utf8_lossy(&swap.stderr)
        );
        creator.join().unwrap();
    });
    for i in 0..total {
        let name = format!("load-{i}");
        node_of(&cluster, &name);
        let scheduled = events(&cluster, &name, "Scheduled");
        assert_eq!(scheduled.len(), 1, "{name} bound once: {scheduled:?}");
    }
    assert!(pods(&cluster)["orphan"].1.is_empty());
    assert!(events(&cluster, "orphan", "FailedScheduling").is_empty());

    // After the swap, each new pod goes to the fullest node that fits it.
    for i in 0..4 {
        let before = allocated(&cluster);
        let fullest = nodes
            .iter()
            .filter(|n| before.get(*n).copied().unwrap_or(0) + 500 <= 4000)
            .max_by_key(|n| {
                (
                    before.get(*n).copied().unwrap_or(0),
                    std::cmp::Reverse((*n).clone()),
                )
            })
            .unwrap()
            .clone();
        let name = format!("after-{i}");
        create(&cluster, &pod(&name, "500m", json!({})));
        assert_eq!(node_of(&cluster, &name), fullest, "{before:?}");
    }
    let log = cluster.log();
    assert!(log.contains("replaying the cluster"), "{}", tail(&log, 20));
}

/// A scheduler restart in the middle of a burst loses no pod and binds none twice.
#[test]
fn restart_mid_burst_loses_nothing() {
    let cluster = Cluster::start();
    let sim = Sim::start(&cluster, &["--nodes", "4"]);
    wait_nodes(&cluster, 4);
    let names: Vec<String> = (0..60).map(|i| format!("burst-{i}")).collect();
    let list = json!({
        "apiVersion": "v1", "kind": "List",
        "items": names.iter().map(|n| pod(n, "10m", json!({}))).collect::<Vec<_>>()
    });
    cluster.kubectl_ok_stdin(&["create", "-f", "-"], Some(&list.to_string()));
    drop(sim);
    let dir = cluster.into_dir();
    let cluster = Cluster::start_in(dir);
    let _sim = Sim::start(&cluster, &["--nodes", "4"]);
    for name in &names {
        node_of(&cluster, name);
        let scheduled = events(&cluster, name, "Scheduled");
        assert!(
            scheduled.len() <= 1,
            "{name} bound more than once: {scheduled:?}"
        );
    }
}
