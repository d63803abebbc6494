//! Time from a node's last heartbeat to its pods running elsewhere.
//!
//! `hortator up` with two simulated nodes, each its own `hortator sim` process (their pods
//! run without containers, so only the control plane is measured); a replication controller
//! spreads `--replicas` pods over both. Node B's process is stopped; the clock runs from the
//! last renewal of its Lease to the moment every replica runs on node A. The node lifecycle
//! controller's thresholds are set with `--grace` (node-monitor-grace-period) and
//! `--eviction` (pod-eviction-timeout); the report shows the time beyond their sum.
//!
//! ```text
//! cargo build --release --workspace --all-targets
//! cargo run --release --example failover_bench -- --replicas 10 --grace 40 --eviction 5
//! ```

use std::time::{Duration, Instant};

use anyhow::Context;
use hortator_tests::{Cluster, Sim};
use serde_json::Value;

struct Options {
    replicas: u32,
    grace: u64,
    eviction: u64,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        replicas: 10,
        grace: 40,
        eviction: 5,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--replicas" => options.replicas = value.parse()?,
            "--grace" => options.grace = value.parse()?,
            "--eviction" => options.eviction = value.parse()?,
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    Ok(options)
}

fn pods(cluster: &Cluster) -> Vec<Value> {
    cluster.kubectl_json(&["get", "pods", "-l", "app=failover"])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn running_on<'a>(pods: &'a [Value], node: &str) -> Vec<&'a Value> {
    pods.iter()
        .filter(|p| {
            p["spec"]["nodeName"] == node
                && p["status"]["phase"] == "Running"
                && p["metadata"]["deletionTimestamp"].is_null()
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let options = options()?;
    let cluster = Cluster::start_with_config(&format!(
        "[controllers]\nnode-monitor-grace-period-seconds = {}\npod-eviction-timeout-seconds = {}\n",
        options.grace, options.eviction
    ));
    let _a = Sim::start(
        &cluster,
        &["--nodes", "1", "--prefix", "a-", "--heartbeat", "2"],
    );
    let mut b = Sim::start(
        &cluster,
        &["--nodes", "1", "--prefix", "b-", "--heartbeat", "2"],
    );
    let (node_a, node_b) = ("a-0001", "b-0001");
    let n = options.replicas;
    let rc = format!(
        r#"{{"apiVersion": "v1", "kind": "ReplicationController", "metadata": {{"name": "failover"}},
            "spec": {{"replicas": {n}, "selector": {{"app": "failover"}},
              "template": {{"metadata": {{"labels": {{"app": "failover"}}}},
                "spec": {{"containers": [{{"name": "c", "image": "busybox"}}]}}}}}}}}"#
    );
    cluster.kubectl_ok_stdin(&["create", "-f", "-"], Some(&rc));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let pods = pods(&cluster);
        let (on_a, on_b) = (
            running_on(&pods, node_a).len(),
            running_on(&pods, node_b).len(),
        );
        if on_a + on_b == n as usize && on_b > 0 {
            println!("{n} replicas running: {on_a} on {node_a}, {on_b} on {node_b}");
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the replicas never ran on both nodes"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    b.stop();
    let lease = cluster.kubectl_json(&["get", "lease", "-n", "kube-node-lease", node_b]);
    let renewed: jiff::Timestamp = lease["spec"]["renewTime"]
        .as_str()
        .context("no renewTime")?
        .parse()?;
    let deadline = Instant::now() + Duration::from_secs(options.grace + options.eviction + 300);
    loop {
        let pods = pods(&cluster);
        if running_on(&pods, node_a).len() == n as usize {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the replicas never all ran on {node_a}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let elapsed = jiff::Timestamp::now().duration_since(renewed).as_secs_f64();
    let thresholds = (options.grace + options.eviction) as f64;
    println!(
        "last heartbeat of {node_b} -> all {n} replicas running on {node_a}: {elapsed:.1} s \
         (grace {} s + eviction {} s = {thresholds:.0} s; {:.1} s beyond)",
        options.grace,
        options.eviction,
        elapsed - thresholds
    );
    Ok(())
}
