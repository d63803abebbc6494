//! The node agent's own footprint while it runs and monitors pods: CPU (from its process's
//! `utime + stime`) and resident memory, idle and with N running pods, each a pause
//! container plus a `sleep` container sampled by the agent's monitor every 10 s.
//!
//! `hortator up --no-agent` runs the control plane; `hortator agent` (the real binary, with
//! its service proxy) is a separate process so that only the agent is measured.
//!
//! ```text
//! cargo build --release --workspace --all-targets
//! $CARGO_TARGET_DIR/release/examples/agent_footprint_bench --pods 100 --seconds 120
//! ```

use std::time::{Duration, Instant};

use anyhow::Context;
use hortator_tests::{Agent, AgentSpec, Cluster, busybox_image, free_port};
use serde_json::json;

/// CPU time (user + system) of process `pid` so far, in clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(") ").context("malformed stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields[11].parse()?;
    let stime: u64 = fields[12].parse()?;
    Ok(utime + stime)
}

/// Resident memory of process `pid`, MiB.
fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .context("no VmRSS")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kib / 1024.0)
}

/// Share of one core and (mean, max) RSS in MiB over `seconds`.
fn measure(pid: u32, seconds: u64) -> anyhow::Result<(f64, f64, f64)> {
    let ticks_per_second =
        nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)?.context("no CLK_TCK")? as f64;
    let started = Instant::now();
    let first = cpu_ticks(pid)?;
    let mut rss = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        rss.push(rss_mib(pid)?);
        std::thread::sleep(Duration::from_secs(1));
    }
    let cpu = (cpu_ticks(pid)? - first) as f64 / ticks_per_second / started.elapsed().as_secs_f64();
    let mean = rss.iter().sum::<f64>() / rss.len() as f64;
    let max = rss.iter().copied().fold(0.0, f64::max);
    Ok((cpu, mean, max))
}

fn report(what: &str, (cpu, mean, max): (f64, f64, f64)) {
    println!(
        "{what:<28} CPU {:>5.2}% of a core   RSS mean {mean:>6.1} MiB   max {max:>6.1} MiB",
        cpu * 100.0
    );
}

fn running(cluster: &Cluster) -> usize {
    let pods = cluster.kubectl_json(&["get", "pods", "-o", "json"]);
    pods["items"].as_array().map_or(0, |items| {
        items
            .iter()
            .filter(|p| p["status"]["phase"] == "Running")
            .count()
    })
}

fn main() -> anyhow::Result<()> {
    let mut n = 100;
    let mut seconds = 120;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| -> anyhow::Result<u64> {
            it.next()
                .with_context(|| format!("{name} needs a value"))?
                .parse()
                .with_context(|| name.to_string())
        };
        match flag.as_str() {
            "--pods" => n = value("--pods")? as usize,
            "--seconds" => seconds = value("--seconds")?,
            _ => anyhow::bail!("unknown flag {flag} (--pods N --seconds S)"),
        }
    }
    let cluster = Cluster::start();
    let spec = AgentSpec::next();
    spec.clean_up();
    let mut agent = Agent::start(&cluster, &spec, free_port());
    let pid = agent.pid().context("the agent is not running")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let ready = || {
        let out = cluster.kubectl(&[
            "get",
            "node",
            &spec.node,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ]);
        String::from_utf8_lossy(&out.stdout).contains("True")
    };
    while !ready() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the agent's node never became Ready"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Settle after registration (the pause image is built on first start).
    std::thread::sleep(Duration::from_secs(10));
    let idle = measure(pid, seconds)?;

    let items: Vec<_> = (0..n)
        .map(|i| {
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": format!("footprint-{i}")},
                "spec": {
                    "nodeName": spec.node,
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "sleep", "image": busybox_image(),
                                    "imagePullPolicy": "Never", "command": ["sleep", "36000"]}],
                },
            })
        })
        .collect();
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
    let created = Instant::now();
    cluster.kubectl_ok_stdin(&["create", "-f", "-"], Some(&list.to_string()));
    while running(&cluster) < n {
        anyhow::ensure!(
            created.elapsed() < Duration::from_secs(600),
            "{n} pods did not run within 10 minutes"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    let started_in = created.elapsed();
    // Two monitor samples of every pod before measuring.
    std::thread::sleep(Duration::from_secs(25));
    let loaded = measure(pid, seconds)?;

    println!(
        "agent footprint over {seconds} s ({} cores); {n} pods started in {:.1} s",
        std::thread::available_parallelism().map_or(1, |c| c.get()),
        started_in.as_secs_f64()
    );
    report("idle agent (0 pods)", idle);
    report(&format!("agent with {n} running pods"), loaded);
    cluster.kubectl_ok(&["delete", "pods", "--all", "--wait=true", "--timeout=600s"]);
    agent.stop();
    spec.clean_up();
    Ok(())
}
