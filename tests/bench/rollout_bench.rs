//! Time to roll `--replicas` pods to a new image on the real Docker engine: a Deployment with
//! `kubectl set image` + `kubectl rollout status`, and a ReplicationController with
//! `hortctl rolling-update --image` (one pod at a time, as kubectl rolling-update did; its
//! `--update-period` pause between steps is given with `--update-period`).
//!
//! `hortator up` (the real binary with its node agent) runs the pods: `sleep` containers of
//! the local busybox image; the "new image" is the same image under a second name, so no
//! pull time is measured, only orchestration and container starts.
//!
//! ```text
//! cargo build --release --workspace --all-targets
//! cargo run --release --example rollout_bench -- --replicas 10 --update-period 1s
//! ```

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use hortator_tests::{Cluster, busybox_image};

struct Options {
    replicas: u32,
    update_period: String,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        replicas: 10,
        update_period: "1s".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--replicas" => options.replicas = value.parse()?,
            "--update-period" => options.update_period = value,
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    Ok(options)
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    while !check() {
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let options = options()?;
    let old = busybox_image().to_string();
    let new = "hortator-test/busybox:rollout".to_string();
    let tagged = Command::new("docker").args(["tag", &old, &new]).status()?;
    anyhow::ensure!(tagged.success(), "docker tag failed");
    let cluster = Cluster::start_with_agent();
    let n = options.replicas;
    let template = |image: &str| {
        format!(
            r#""template": {{"metadata": {{"labels": {{"app": "roll"}}}},
                "spec": {{"terminationGracePeriodSeconds": 1,
                  "containers": [{{"name": "c", "image": "{image}", "imagePullPolicy": "Never",
                                  "command": ["sleep", "3600"]}}]}}}}"#
        )
    };

    let deployment = format!(
        r#"{{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {{"name": "roll"}},
            "spec": {{"replicas": {n}, "selector": {{"matchLabels": {{"app": "roll"}}}}, {}}}}}"#,
        template(&old)
    );
    cluster.kubectl_ok_stdin(&["create", "-f", "-"], Some(&deployment));
    cluster.kubectl_ok(&["rollout", "status", "deployment/roll", "--timeout=600s"]);
    let started = Instant::now();
    cluster.kubectl_ok(&["set", "image", "deployment/roll", &format!("c={new}")]);
    cluster.kubectl_ok(&["rollout", "status", "deployment/roll", "--timeout=600s"]);
    let deployment_time = started.elapsed();
    println!(
        "kubectl set image + rollout status, {n} replicas (maxSurge 25%, maxUnavailable 25%): {:.1} s",
        deployment_time.as_secs_f64()
    );
    cluster.kubectl_ok(&["delete", "deployment", "roll", "--wait=true"]);
    wait_until("the deployment's pods gone", || {
        cluster.kubectl_json(&["get", "pods", "-l", "app=roll"])["items"]
            .as_array()
            .is_some_and(Vec::is_empty)
    })?;

    let rc = format!(
        r#"{{"apiVersion": "v1", "kind": "ReplicationController", "metadata": {{"name": "roll"}},
            "spec": {{"replicas": {n}, "selector": {{"app": "roll"}}, {}}}}}"#,
        template(&old)
    );
    cluster.kubectl_ok_stdin(&["create", "-f", "-"], Some(&rc));
    wait_until("the controller's pods ready", || {
        cluster.kubectl_json(&["get", "rc", "roll"])["status"]["readyReplicas"] == n
    })?;
    let started = Instant::now();
    let out = cluster.hortctl(&[
        "rolling-update",
        "roll",
        "--image",
        &new,
        "--update-period",
        &options.update_period,
        "--poll-interval",
        "200ms",
    ]);
    let rc_time = started.elapsed();
    anyhow::ensure!(
        out.status.success(),
        "hortctl rolling-update failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "hortctl rolling-update --image, {n} replicas (one at a time, --update-period {}): {:.1} s",
        options.update_period,
        rc_time.as_secs_f64()
    );
    Ok(())
}
