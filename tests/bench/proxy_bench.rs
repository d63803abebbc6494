//! Service proxy overhead: a small HTTP response fetched directly from the backend and through
//! a service's ClusterIP, with the proxy in kernel (iptables) and in userspace mode.
//!
//! `hortator up` (the real binary, with its node agent and proxy) serves a selectorless
//! service whose Endpoints name a backend this benchmark runs on 127.0.0.2 — a tokio HTTP/1.1
//! server answering every request with a 12-byte body. Two loads, each bounded in time or
//! count: keep-alive throughput (`--connections` clients, `--seconds` each) and the latency of
//! a fresh connection per request (`--requests` one after another).
//!
//! ```text
//! cargo build --release --workspace --all-targets
//! cargo run --release --example proxy_bench -- --seconds 5 --connections 16 --requests 2000 --rounds 3
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use hortator_tests::{AgentSpec, Cluster};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nhello world\n";

struct Options {
    seconds: u64,
    connections: usize,
    requests: usize,
    rounds: usize,
    modes: Vec<String>,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        seconds: 5,
        connections: 16,
        requests: 2000,
        rounds: 3,
        modes: vec!["iptables".into(), "userspace".into()],
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--seconds" => options.seconds = value.parse()?,
            "--connections" => options.connections = value.parse()?,
            "--requests" => options.requests = value.parse()?,
            "--rounds" => options.rounds = value.parse::<usize>()?.max(1),
            "--modes" => options.modes = value.split(',').map(str::to_owned).collect(),
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    Ok(options)
}

/// The backend: every request on a connection gets the fixed response.
async fn serve(listener: TcpListener) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let mut buffer = [0u8; 1024];
            let mut pending = Vec::new();
            loop {
                let n = match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                pending.extend_from_slice(&buffer[..n]);
                while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                    pending.drain(..end + 4);
                    if stream.write_all(RESPONSE).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
}

/// One request on `stream`, reading exactly the known response.
async fn exchange(stream: &mut TcpStream) -> anyhow::Result<()> {
    stream.write_all(REQUEST).await?;
    let mut response = [0u8; RESPONSE.len()];
    stream.read_exact(&mut response).await?;
    anyhow::ensure!(response == RESPONSE, "unexpected response");
    Ok(())
}

/// Requests per second over `connections` keep-alive connections for `seconds`.
async fn throughput(target: SocketAddr, connections: usize, seconds: u64) -> anyhow::Result<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..connections {
        let (done, stop) = (done.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(target).await?;
            stream.set_nodelay(true)?;
            while !stop.load(Ordering::Relaxed) {
                exchange(&mut stream).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    for client in clients {
        client.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64())
}

/// Latencies of `requests` requests, each on a new connection, one after another.
async fn latencies(target: SocketAddr, requests: usize) -> anyhow::Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(requests);
    for _ in 0..requests {
        let started = Instant::now();
        let mut stream = TcpStream::connect(target).await?;
        stream.set_nodelay(true)?;
        exchange(&mut stream).await?;
        samples.push(started.elapsed());
    }
    samples.sort();
    Ok(samples)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1e6
}

struct Measured {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
}

async fn measure(target: SocketAddr, options: &Options) -> anyhow::Result<Measured> {
    let rps = throughput(target, options.connections, options.seconds).await?;
    let samples = latencies(target, options.requests).await?;
    Ok(Measured {
        rps,
        p50_us: percentile(&samples, 0.50),
        p99_us: percentile(&samples, 0.99),
    })
}

/// A cluster whose proxy runs in `mode`, with a service in front of `backend`; returns the
/// cluster (kept alive by the caller), the agent spec to clean up, and the service address.
fn cluster_with_service(
    mode: &str,
    backend: SocketAddr,
) -> anyhow::Result<(Cluster, AgentSpec, SocketAddr)> {
    let spec = AgentSpec::next();
    spec.clean_up();
    let config = format!("{}\n[proxy]\nmode = \"{mode}\"\n", spec.config());
    let cluster = Cluster::start_with_config_and_args(
        &config,
        &["--node-name", &spec.node, "--node-ip", "127.0.0.1"],
    );
    let manifest = format!(
        r#"{{"apiVersion": "v1", "kind": "Service", "metadata": {{"name": "bench"}},
              "spec": {{"ports": [{{"port": 80, "targetPort": {port}}}]}}}}
---
{{"apiVersion": "v1", "kind": "Endpoints", "metadata": {{"name": "bench"}},
  "subsets": [{{"addresses": [{{"ip": "{ip}"}}], "ports": [{{"port": {port}}}]}}]}}"#,
        ip = backend.ip(),
        port = backend.port()
    );
    cluster.kubectl_ok_stdin(&["create", "-f", "-"], Some(&manifest));
    let ip = cluster.kubectl_json(&["get", "service", "bench"])["spec"]["clusterIP"]
        .as_str()
        .context("no clusterIP")?
        .to_string();
    let service: SocketAddr = format!("{ip}:80").parse()?;
    Ok((cluster, spec, service))
}

async fn wait_answering(target: SocketAddr) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Ok(mut stream)) =
            tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(target)).await
            && exchange(&mut stream).await.is_ok()
        {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{target} never answered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn row(what: &str, m: &Measured, direct: &Measured) {
    println!(
        "{what:<28} {:>10.0} req/s ({:>5.1}% of direct)   new connection p50 {:>7.1} µs  p99 {:>7.1} µs",
        m.rps,
        m.rps / direct.rps * 100.0,
        m.p50_us,
        m.p99_us
    );
}

/// The round with the median throughput.
fn median(mut rounds: Vec<Measured>) -> Measured {
    rounds.sort_by(|a, b| a.rps.total_cmp(&b.rps));
    rounds.swap_remove(rounds.len() / 2)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = options()?;
    let listener = TcpListener::bind("127.0.0.2:0").await?;
    let backend = listener.local_addr()?;
    tokio::spawn(serve(listener));
    println!(
        "backend {backend}; per round {} keep-alive connections for {} s, then {} fresh-connection requests; \
         {} rounds alternating direct and proxied, the median round shown",
        options.connections, options.seconds, options.requests, options.rounds
    );
    for mode in &options.modes {
        let (cluster, spec, service) =
            tokio::task::block_in_place(|| cluster_with_service(mode, backend))?;
        wait_answering(service).await?;
        // Direct and proxied alternate while the same cluster runs, so that both see the
        // same background load.
        let mut direct = Vec::new();
        let mut proxied = Vec::new();
        let mut failure = None;
        for _ in 0..options.rounds {
            match measure(backend, &options).await {
                Ok(m) => direct.push(m),
                Err(e) => failure = Some(e),
            }
            match measure(service, &options).await {
                Ok(m) => proxied.push(m),
                Err(e) => failure = Some(e),
            }
        }
        drop(cluster);
        spec.clean_up();
        if let Some(e) = failure {
            return Err(e.context(format!("measuring in {mode} mode")));
        }
        let direct = median(direct);
        row(&format!("direct ({mode} run)"), &direct, &direct);
        row(
            &format!("through ClusterIP, {mode}"),
            &median(proxied),
            &direct,
        );
    }
    Ok(())
}
