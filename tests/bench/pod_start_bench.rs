//! Pod start latency on the real Docker engine, as Kubernetes' pod startup SLI measures it:
//! from the pod's creation to the Running phase observed through a watch, with the image
//! present. Beside it, plain `docker run -d` of the same image on the same machine.
//!
//! `hortator up` (the real binary, with its node agent) runs the pods; each pod is a pause
//! container plus one `sleep` container on the bridge network. "One at a time" creates a
//! pod and waits for it before the next; "at once" creates all of them together. Docker's
//! own numbers: `docker run -d` of the same container, and the two `docker run`s a pod
//! amounts to (the pause container, then the container joining its network namespace), each
//! one at a time and all at once.
//!
//! ```text
//! cargo build --release --workspace --all-targets
//! cargo run --release --example pod_start_bench -- --pods 100
//! ```

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use hortator_tests::{Cluster, busybox_image};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::watcher::{self, Event};
use serde_json::json;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{what:<40} n={:<4} p50 {:>7.1} ms   p99 {:>7.1} ms   max {:>7.1} ms",
        samples.len(),
        percentile(&samples, 0.50).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

/// Time `docker run -d ARGS…` once.
fn docker_run_once(args: &[String]) -> anyhow::Result<(Duration, String)> {
    let started = Instant::now();
    let out = Command::new("docker")
        .args(["run", "-d", "--label", "hortator-bench=1"])
        .args(args)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "docker run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((
        started.elapsed(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    ))
}

fn remove_bench_containers() -> anyhow::Result<()> {
    let ids = Command::new("docker")
        .args(["ps", "-aq", "--filter", "label=hortator-bench=1"])
        .output()?;
    let ids = String::from_utf8_lossy(&ids.stdout).into_owned();
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if !ids.is_empty() {
        Command::new("docker")
            .args(["rm", "-f"])
            .args(&ids)
            .output()?;
    }
    Ok(())
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// What a pod costs Docker: a pause container, then the container in its network namespace.
fn docker_run_pod_like(image: &str) -> anyhow::Result<Duration> {
    let (pause, id) = docker_run_once(&strings(&[
        "--network",
        "none",
        hortator_kubelet::PAUSE_IMAGE,
        "/pause",
    ]))?;
    let app = strings(&[
        "--network",
        &format!("container:{id}"),
        image,
        "sleep",
        "3600",
    ]);
    let (main, _) = docker_run_once(&app)?;
    Ok(pause + main)
}

/// `n` runs of `run` at once, each on a thread of its own.
fn all_at_once(
    n: usize,
    run: impl Fn() -> anyhow::Result<Duration> + Sync,
) -> anyhow::Result<Vec<Duration>> {
    std::thread::scope(|scope| {
        let runs: Vec<_> = (0..n).map(|_| scope.spawn(&run)).collect();
        runs.into_iter()
            .map(|run| run.join().expect("thread"))
            .collect()
    })
}

/// Docker alone, four ways: `docker run -d` of the same image and command one after
/// another; what a pod costs Docker (see [`docker_run_pod_like`]) one after another; and each
/// of the two `n` times at once.
fn docker_baselines(n: usize, image: &str) -> anyhow::Result<[Vec<Duration>; 4]> {
    let plain = strings(&["--network", "none", image, "sleep", "3600"]);
    let mut single = Vec::with_capacity(n);
    for _ in 0..n {
        single.push(docker_run_once(&plain)?.0);
    }
    remove_bench_containers()?;
    let mut pod_like = Vec::with_capacity(n);
    for _ in 0..n {
        pod_like.push(docker_run_pod_like(image)?);
    }
    remove_bench_containers()?;
    let at_once = all_at_once(n, || Ok(docker_run_once(&plain)?.0))?;
    remove_bench_containers()?;
    let pod_like_at_once = all_at_once(n, || docker_run_pod_like(image))?;
    remove_bench_containers()?;
    Ok([single, pod_like, at_once, pod_like_at_once])
}

fn pod(name: &str, image: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"bench": "start"}},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "main", "image": image, "command": ["sleep", "3600"]}],
        },
    }))
    .expect("a well-formed pod")
}

/// Create `n` pods (one at a time, or all at once); the latency of each is creation →
/// Running as the watch reports it.
async fn pods(
    client: kube::Client,
    n: usize,
    image: &str,
    burst: bool,
    tag: &str,
) -> anyhow::Result<Vec<Duration>> {
    let api: Api<Pod> = Api::namespaced(client, "default");
    let (running_tx, mut running_rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let watch_api = api.clone();
    let watch = tokio::spawn(async move {
        let mut stream =
            watcher::watcher(watch_api, watcher::Config::default().labels("bench=start")).boxed();
        while let Some(Ok(event)) = stream.next().await {
            if let Event::Apply(pod) | Event::InitApply(pod) = event
                && pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
            {
                let _ = running_tx.send((pod.metadata.name.unwrap_or_default(), Instant::now()));
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut created: HashMap<String, Instant> = HashMap::new();
    let mut done: HashMap<String, Instant> = HashMap::new();
    let names: Vec<String> = (0..n).map(|i| format!("start-{tag}-{i}")).collect();
    if burst {
        let posts = names.iter().map(|name| {
            let api = api.clone();
            let object = pod(name, image);
            async move {
                let at = Instant::now();
                api.create(&PostParams::default(), &object)
                    .await
                    .map(|_| (name.clone(), at))
            }
        });
        for result in futures::future::join_all(posts).await {
            let (name, at) = result?;
            created.insert(name, at);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut wait_until =
        async |done: &mut HashMap<String, Instant>,
               enough: &dyn Fn(&HashMap<String, Instant>) -> bool| {
            while !enough(done) {
                let left = deadline.saturating_duration_since(Instant::now());
                let (running, at) = tokio::time::timeout(left, running_rx.recv())
                    .await
                    .context("timed out waiting for Running")?
                    .context("watch ended")?;
                done.entry(running).or_insert(at);
            }
            anyhow::Ok(())
        };
    if burst {
        wait_until(&mut done, &|done| done.len() >= n).await?;
    } else {
        for name in &names {
            created.insert(name.clone(), Instant::now());
            api.create(&PostParams::default(), &pod(name, image))
                .await?;
            wait_until(&mut done, &|done| done.contains_key(name)).await?;
        }
    }
    watch.abort();
    let samples = names
        .iter()
        .map(|n| done[n].duration_since(created[n]))
        .collect();
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("bench=start"),
    )
    .await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !api
        .list(&ListParams::default().labels("bench=start"))
        .await?
        .items
        .is_empty()
    {
        anyhow::ensure!(Instant::now() < deadline, "pods were not deleted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(samples)
}

fn main() -> anyhow::Result<()> {
    let mut n = 100;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--pods" => {
                n = it
                    .next()
                    .context("--pods needs a value")?
                    .parse()
                    .context("--pods")?
            }
            _ => anyhow::bail!("unknown flag {flag} (--pods N)"),
        }
    }
    let image = busybox_image();
    let cluster = Cluster::start_with_agent();
    let runtime = tokio::runtime::Runtime::new()?;
    let client = runtime.block_on(hortator_sim::client(Some(&cluster.kubeconfig)))?;
    // Warm-up (the engine's first starts are slower); it also builds the pause image.
    runtime.block_on(pods(client.clone(), 3, image, false, "warm"))?;
    docker_baselines(3, image)?;
    let [single, pod_like, at_once, pod_like_at_once] = docker_baselines(n, image)?;
    let sequential = runtime.block_on(pods(client.clone(), n, image, false, "seq"))?;
    let burst = runtime.block_on(pods(client, n, image, true, "burst"))?;
    println!(
        "pod start latency, image present, {n} pods ({} cores)",
        std::thread::available_parallelism().map_or(1, |c| c.get())
    );
    report("docker run -d (one at a time)", single);
    report("docker run -d pause + container", pod_like);
    report("hortator pod → Running (one at a time)", sequential);
    report(&format!("docker run -d ({n} at once)"), at_once);
    report(
        &format!("docker run -d pause + container ({n} at once)"),
        pod_like_at_once,
    );
    report(&format!("hortator pod → Running ({n} at once)"), burst);
    Ok(())
}
