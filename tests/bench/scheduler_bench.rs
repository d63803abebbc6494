//! Scheduling throughput, as kube-scheduler's scheduler_perf `SchedulingBasic`
//! measures it: N simulated nodes, M pending pods created up front, then the
//! scheduler starts; the clock runs from the first binding to the last one
//! acknowledged (persisted) by the API server.
//!
//! Everything runs in this process, as in `hortator up`: the RocksDB store,
//! the API server with the default admission chain, the scheduler with the
//! built-in `default-scheduler` plugin, talking to the API through the
//! in-process kube client. Nodes are `hortator sim` nodes (4 CPU, 32 GiB,
//! 110 pods, as scheduler_perf's default node); pods request 100m CPU and
//! 500 MiB like its default pod.
//!
//! ```text
//! cargo run --release --example scheduler_bench -- --nodes 5000 --pods 10000
//! cargo run --release --example scheduler_bench -- --nodes 5000 --pods 10000 --existing-pods 140000
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use hortator_apiserver::{ApiServer, ApiServerConfig, StoreReader};
use hortator_plugin_runtime::scheduling::{Pod as PodRecord, Resources, SchedulerPlugin};
use hortator_plugin_runtime::{PluginManager, PluginsConfig, Runtime, RuntimeConfig};
use hortator_sim::{SimConfig, Simulator};
use hortator_store::{RocksOptions, RocksStore, Store};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use serde_json::json;

struct Args {
    nodes: u32,
    pods: usize,
    existing_pods: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        nodes: 5000,
        pods: 10_000,
        existing_pods: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--nodes" => args.nodes = value.parse().context("--nodes")?,
            "--pods" => args.pods = value.parse().context("--pods")?,
            "--existing-pods" => args.existing_pods = value.parse().context("--existing-pods")?,
            _ => anyhow::bail!("unknown flag {flag} (--nodes N, --pods N, --existing-pods N)"),
        }
    }
    Ok(args)
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn pod(name: &str, node: Option<&str>) -> Pod {
    let mut spec = json!({
        "containers": [{
            "name": "pause", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}}
        }]
    });
    if let Some(node) = node {
        spec["nodeName"] = json!(node);
    }
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec
    }))
    .expect("pod")
}

async fn create_pods(
    api: &Api<Pod>,
    prefix: &str,
    count: usize,
    nodes: &[String],
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let results: Vec<kube::Result<Pod>> = futures::stream::iter(0..count)
        .map(|i| {
            let node = (!nodes.is_empty()).then(|| nodes[i % nodes.len()].as_str());
            let pod = pod(&format!("{prefix}-{i}"), node);
            async move { api.create(&PostParams::default(), &pod).await }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    for result in results {
        result.map_err(|e| anyhow::anyhow!("create pod: {e}"))?;
    }
    Ok(started.elapsed())
}

/// Median time of one `schedule` call, host side.
fn median_call(plugin: &SchedulerPlugin, pod: &PodRecord, calls: usize) -> Duration {
    let mut times: Vec<Duration> = (0..calls)
        .map(|_| {
            let t = Instant::now();
            plugin.schedule(pod).expect("schedule");
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> =
        RocksStore::open(&dir.path().join("store"), RocksOptions::default())?;
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.path().join("plugin-cache")),
    })?;
    let plugins = Arc::new(PluginManager::new(
        runtime,
        Some(Arc::new(StoreReader::new(store.clone()))),
    ));
    let failures = plugins.apply(&PluginsConfig::default().validate()?, dir.path());
    anyhow::ensure!(failures.is_empty(), "plugins: {failures:?}");
    let api =
        ApiServer::start_with_plugins(store, ApiServerConfig::default(), Some(plugins.clone()))
            .await?;
    let client = kube::Client::new(api.router(), "default");

    let mut sim = SimConfig::new(args.nodes);
    sim.cpu = hortator_sim::parse_quantity("4")?;
    sim.memory = hortator_sim::parse_quantity("32Gi")?;
    sim.pods = 110;
    sim.heartbeat = Duration::ZERO;
    sim.run_pods = false;
    let simulator = Simulator::register(client.clone(), sim).await?;
    let nodes: Vec<String> = simulator.nodes().iter().map(|n| n.name.clone()).collect();
    println!(
        "registered {} nodes in {:.2} s",
        nodes.len(),
        simulator.registration_time().as_secs_f64()
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    if args.existing_pods > 0 {
        let took = create_pods(&pods, "existing", args.existing_pods, &nodes).await?;
        println!(
            "created {} bound pods in {:.1} s",
            args.existing_pods,
            took.as_secs_f64()
        );
    }
    let took = create_pods(&pods, "pending", args.pods, &[]).await?;
    println!(
        "created {} pending pods in {:.2} s ({:.0}/s)",
        args.pods,
        took.as_secs_f64(),
        args.pods as f64 / took.as_secs_f64()
    );
    let rss_before = rss_mib();

    let scheduler = hortator_scheduler::spawn(client.clone(), plugins.clone())?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(600);
    loop {
        let stats = scheduler.stats();
        if stats.bound as usize >= args.pods {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "timed out: {stats:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = scheduler.stats();
    let (first, last) = stats.binds.context("no binds")?;
    let window = last - first;
    let rss_after = rss_mib();
    println!(
        "scheduled {} pods on {} nodes: {:.0} pods/s (first to last bind {:.2} s; {:.2} s from start)",
        stats.bound,
        nodes.len(),
        stats.bound as f64 / window.as_secs_f64(),
        window.as_secs_f64(),
        (last - started).as_secs_f64(),
    );
    let per_call = stats.schedule_time / stats.schedule_calls.max(1) as u32;
    println!(
        "schedule(): {} calls, mean {:.1} µs host side; update(): {} calls, {} events, {:.1} ms total ({:.2} µs/event)",
        stats.schedule_calls,
        per_call.as_secs_f64() * 1e6,
        stats.update_calls,
        stats.update_events,
        stats.update_time.as_secs_f64() * 1e3,
        stats.update_time.as_secs_f64() * 1e6 / stats.update_events.max(1) as f64,
    );
    println!(
        "unschedulable attempts {}, bind failures {}, events dropped {}",
        stats.unschedulable, stats.bind_failures, stats.records_dropped
    );
    println!("process RSS {rss_before:.0} MiB before scheduling, {rss_after:.0} MiB after");

    // The boundary: the same pod record through a plugin that knows no node
    // (one call in, the verdict out, no work inside).
    let record = PodRecord {
        uid: "bench-uid".into(),
        namespace: "default".into(),
        name: "bench".into(),
        labels: vec![],
        requests: Resources {
            milli_cpu: 100,
            memory: 500 << 20,
            ephemeral_storage: 0,
            pods: 1,
        },
        host_ports: vec![],
        node_selector: vec![],
        required_node_affinity: vec![],
        preferred_node_affinity: vec![],
        tolerations: vec![],
        owner: None,
        spread_selectors: vec![],
        priority: 0,
    };
    let profiles = plugins.scheduler_profiles();
    let loaded = profiles[0].slot.current();
    let settings = loaded.settings().clone();
    let empty = SchedulerPlugin::load(
        &Runtime::new(RuntimeConfig {
            cache_dir: Some(dir.path().join("plugin-cache")),
        })?,
        settings,
        "builtin:default-scheduler".into(),
        hortator_plugin_runtime::builtin::get("default-scheduler").context("built-in")?,
    )?;
    let boundary = median_call(&empty, &record, 20_000);
    drop(scheduler);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let full = median_call(&loaded, &record, 2_000);
    println!(
        "schedule() median: {:.1} µs with {} nodes; {:.2} µs with none (the boundary: {:.1}% of the call)",
        full.as_secs_f64() * 1e6,
        nodes.len(),
        boundary.as_secs_f64() * 1e6,
        100.0 * boundary.as_secs_f64() / full.as_secs_f64()
    );
    Ok(())
}
