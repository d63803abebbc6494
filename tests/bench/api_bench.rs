//! API server and store benchmarks, side by side with etcd 3.4 where the same operation exists.
//!
//! Reproduce (etcd is started fresh by the benchmark, from Debian's `etcd-server`):
//! `tests/run.sh` (which builds every target), then `$CARGO_TARGET_DIR/release/examples/api_bench`
//! Options: `--creates N` (default 50000), `--list N` (default 100000), `--no-etcd`,
//! `--no-admission` (no admission plugins, to see what the chain costs). `hortator up` runs
//! without its scheduler and controllers (`[scheduler]` and `[controllers]` `enabled = false`), so
//! that what is measured is the API server and the store.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hortator_tests::Cluster;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

type Http = Client<HttpConnector, Full<Bytes>>;

const CONCURRENCY: usize = 64;

fn pod_json(name: &str) -> String {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench", "tier": "web"}},
        "spec": {"containers": [{
            "name": "web",
            "image": "registry.local:5000/httpd:latest",
            "ports": [{"containerPort": 80, "protocol": "TCP"}],
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
            "env": [{"name": "MODE", "value": "bench"}],
        }]},
    })
    .to_string()
}

async fn post(http: &Http, url: &str, body: String) -> Result<(), String> {
    let req = hyper::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = http.request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if status.as_u16() != 201 {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&body)));
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// `n` creates from 64 concurrent clients; returns creates per second.
async fn burst_creates(http: &Http, base: &str, prefix: &str, n: usize) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (http, next, url, prefix) = (
            http.clone(),
            next.clone(),
            format!("{base}/api/v1/namespaces/default/pods"),
            prefix.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                post(&http, &url, pod_json(&format!("{prefix}-{i}")))
                    .await
                    .expect("create");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Creates paced at `rate`/s for `secs`; returns sorted latencies.
async fn paced_creates(http: &Http, base: &str, rate: u64, secs: u64) -> Vec<Duration> {
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    for i in 0..rate * secs {
        ticker.tick().await;
        let (http, url) = (
            http.clone(),
            format!("{base}/api/v1/namespaces/default/pods"),
        );
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            post(&http, &url, pod_json(&format!("paced-{i}")))
                .await
                .expect("create");
            t.elapsed()
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.push(t.await.expect("task"));
    }
    lat.sort();
    lat
}

async fn list_all(http: &Http, base: &str) -> (Duration, usize) {
    let start = Instant::now();
    let resp = http
        .get(format!("{base}/api/v1/pods").parse().expect("uri"))
        .await
        .expect("list");
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    let elapsed = start.elapsed();
    let v: serde_json::Value = serde_json::from_slice(&body).expect("list JSON");
    (elapsed, v["items"].as_array().map(Vec::len).unwrap_or(0))
}

/// Watch latency: write configmaps one at a time and time each until its event arrives.
async fn watch_latency(http: &Http, base: &str, count: usize) -> Vec<Duration> {
    let resp = http
        .get(
            format!("{base}/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=1")
                .parse()
                .expect("uri"),
        )
        .await
        .expect("watch");
    let mut body = resp.into_body();
    let mut lat = Vec::new();
    let mut buf = Vec::new();
    for i in 0..count {
        let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("w{i}")}, "data": {"k": "v"}});
        let t = Instant::now();
        post(
            http,
            &format!("{base}/api/v1/namespaces/default/configmaps"),
            cm.to_string(),
        )
        .await
        .expect("create cm");
        let needle = format!("\"name\":\"w{i}\"");
        loop {
            if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                if String::from_utf8_lossy(&line).contains(&needle) {
                    lat.push(t.elapsed());
                    break;
                }
                continue;
            }
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        buf.extend_from_slice(data);
                    }
                }
                other => panic!("watch ended: {other:?}"),
            }
        }
    }
    lat.sort();
    lat
}

/// User + system CPU seconds a process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    ticks / 100.0
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A fresh etcd (Debian's `etcd-server`, default fsync) on free loopback ports, so that the
/// comparison never runs against a store that earlier runs filled.
struct Etcd {
    child: std::process::Child,
    _dir: tempfile::TempDir,
    url: String,
}

impl Etcd {
    async fn start() -> anyhow::Result<Etcd> {
        let dir = tempfile::Builder::new()
            .prefix("hortator-etcd-bench-")
            .tempdir()?;
        let (client, peer) = (hortator_tests::free_port(), hortator_tests::free_port());
        let url = format!("http://127.0.0.1:{client}");
        let child = std::process::Command::new("etcd")
            .arg("--data-dir")
            .arg(dir.path())
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
            ])
            .args([
                "--initial-cluster",
                &format!("default=http://127.0.0.1:{peer}"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let etcd = Etcd {
            child,
            _dir: dir,
            url,
        };
        for _ in 0..100 {
            if let Ok(mut c) = etcd_client::Client::connect([etcd.url.as_str()], None).await
                && c.status().await.is_ok()
            {
                return Ok(etcd);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("etcd did not start")
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn etcd_bench(creates: usize, list: usize) -> anyhow::Result<()> {
    let etcd = Etcd::start().await?;
    let client = etcd_client::Client::connect([etcd.url.as_str()], None).await?;
    let run = format!("/bench/{}/", std::process::id());
    let value = pod_json("etcd-value-of-typical-size");
    // Burst creates: create-if-absent transactions, 64 clients.
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (mut kv, next, run, value) =
            (client.kv_client(), next.clone(), run.clone(), value.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= creates {
                    break;
                }
                let key = format!("{run}{i:08}");
                let txn = etcd_client::Txn::new()
                    .when([etcd_client::Compare::create_revision(
                        key.clone(),
                        etcd_client::CompareOp::Equal,
                        0,
                    )])
                    .and_then([etcd_client::TxnOp::put(key, value.clone(), None)]);
                kv.txn(txn).await.expect("etcd txn");
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    println!(
        "etcd     burst creates (64 clients): {:.0}/s",
        creates as f64 / start.elapsed().as_secs_f64()
    );
    // Paced.
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    let mut tasks = Vec::new();
    for i in 0..5000 {
        ticker.tick().await;
        let (mut kv, key, value) = (
            client.kv_client(),
            format!("{run}paced{i:08}"),
            value.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            kv.put(key, value, None).await.expect("put");
            t.elapsed()
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.push(t.await?);
    }
    lat.sort();
    println!(
        "etcd     paced 1000/s latency: p50 {} p99 {}",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99))
    );
    // Fill to `list` keys and range them.
    let have = creates + 5000;
    if list > have {
        let next = Arc::new(AtomicUsize::new(have));
        let mut tasks = Vec::new();
        for _ in 0..CONCURRENCY {
            let (mut kv, next, run, value) =
                (client.kv_client(), next.clone(), run.clone(), value.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= list {
                        break;
                    }
                    kv.put(format!("{run}{i:08}"), value.clone(), None)
                        .await
                        .expect("put");
                }
            }));
        }
        for t in tasks {
            t.await?;
        }
    }
    // Range in pages of 10,000 (a single 100,000-key answer exceeds gRPC's message limit).
    let mut kv = client.kv_client();
    let start = Instant::now();
    let mut from = run.clone().into_bytes();
    let mut end = run.clone().into_bytes();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    let mut ranged = 0;
    loop {
        let resp = kv
            .get(
                from.clone(),
                Some(
                    etcd_client::GetOptions::new()
                        .with_range(end.clone())
                        .with_limit(10_000),
                ),
            )
            .await?;
        ranged += resp.kvs().len();
        match resp.kvs().last() {
            Some(last) if resp.more() => {
                from = last.key().to_vec();
                from.push(0);
            }
            _ => break,
        }
    }
    println!(
        "etcd     range of {ranged} keys (pages of 10,000): {}",
        ms(start.elapsed())
    );
    // Watch latency.
    let mut watch_client = client.watch_client();
    let mut stream = watch_client
        .watch(
            format!("{run}watch/"),
            Some(etcd_client::WatchOptions::new().with_prefix()),
        )
        .await?;
    let mut lat = Vec::new();
    for i in 0..1000 {
        let t = Instant::now();
        kv.put(format!("{run}watch/{i}"), "v", None).await?;
        loop {
            let resp = stream
                .message()
                .await?
                .ok_or_else(|| anyhow::anyhow!("watch ended"))?;
            if !resp.events().is_empty() {
                break;
            }
        }
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "etcd     watch latency (write→event): p50 {} p99 {}",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99))
    );
    kv.delete(run, Some(etcd_client::DeleteOptions::new().with_prefix()))
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let creates = arg("--creates", 50_000);
    let list = arg("--list", 100_000);
    let with_etcd = !args.iter().any(|a| a == "--no-etcd");
    // The API server and store alone: no scheduler (it would try every pod on a cluster
    // without nodes) and no controllers. `--no-admission` also leaves out the admission
    // chain, to see what it costs.
    let start = || {
        let mut config = String::from(
            "[controllers]\nenabled = false\n[scheduler]\nenabled = false\n[plugins]\nscheduler = []\n",
        );
        if args.iter().any(|a| a == "--no-admission") {
            config.push_str("admission = []\n");
        }
        Cluster::start_with_config(&config)
    };

    // Idle memory, settled (start-up work done and its freed memory returned: `hortator`
    // purges every 5 s): on a fresh data directory, where the plugins are compiled, and
    // restarted on it, where they come from the component cache.
    let idle = start();
    tokio::time::sleep(Duration::from_secs(12)).await;
    let fresh_rss = idle.pid().map(rss_kib).unwrap_or(0);
    let idle = idle.restart();
    tokio::time::sleep(Duration::from_secs(12)).await;
    let restarted_rss = idle.pid().map(rss_kib).unwrap_or(0);
    drop(idle);
    println!(
        "hortator idle RSS of `hortator up` (no pods): {:.1} MB restarted, {:.1} MB on a fresh data directory",
        restarted_rss as f64 / 1024.0,
        fresh_rss as f64 / 1024.0
    );

    let cluster = start();
    let http: Http = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(CONCURRENCY * 2)
        .build_http();
    let base = cluster.url.clone();

    let cpu_before = cluster.pid().map(cpu_seconds).unwrap_or(0.0);
    let rate = burst_creates(&http, &base, "burst", creates).await;
    let cpu = cluster.pid().map(cpu_seconds).unwrap_or(0.0) - cpu_before;
    println!("hortator burst durable pod creates over HTTP (64 clients): {rate:.0}/s");
    println!(
        "hortator server CPU per create: {:.0} µs (the load generator shares the 2 cores)",
        cpu * 1e6 / creates as f64
    );
    let lat = paced_creates(&http, &base, 1000, 5).await;
    println!(
        "hortator paced 1000 creates/s latency: p50 {} p99 {}",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99))
    );
    let have = creates + 5000;
    if list > have {
        burst_creates(&http, &base, "fill", list - have).await;
    }
    let mut best = Duration::MAX;
    let mut count = 0;
    for _ in 0..3 {
        let (t, n) = list_all(&http, &base).await;
        best = best.min(t);
        count = n;
    }
    println!("hortator LIST of {count} pods (best of 3): {}", ms(best));
    let lat = watch_latency(&http, &base, 1000).await;
    println!(
        "hortator watch latency (write→event): p50 {} p99 {}",
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99))
    );
    let loaded_rss = cluster.pid().map(rss_kib).unwrap_or(0);
    println!(
        "hortator RSS with {count} pods stored: {:.1} MB",
        loaded_rss as f64 / 1024.0
    );
    drop(cluster);

    if with_etcd && let Err(e) = etcd_bench(creates, list).await {
        println!("etcd     skipped: {e} (is Debian's etcd-server installed?)");
    }
    Ok(())
}
