//! `hortator sim`: simulated nodes registered against `hortator up`, checked with the real
//! kubectl — nodes Ready with their capacity, pods Running without containers and finally
//! deleted, leases renewed, re-running idempotent, bad flags one-line errors.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hortator_tests::{Cluster, Sim, eventually, hortator_bin};
use serde_json::Value;

fn condition<'a>(object: &'a Value, ty: &str) -> Option<&'a str> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty)?["status"]
        .as_str()
}

/// The sim nodes, once `n` of them are Ready with `cpu` CPUs.
fn ready_nodes(c: &Cluster, n: usize, cpu: &str) -> Vec<Value> {
    eventually(&format!("{n} Ready sim nodes with {cpu} CPUs"), || {
        let list = c.kubectl_json(&["get", "nodes", "-l", "type=hortator-sim"]);
        let items = list["items"].as_array()?.clone();
        (items.len() == n
            && items.iter().all(|node| {
                condition(node, "Ready") == Some("True") && node["status"]["capacity"]["cpu"] == cpu
            }))
        .then_some(items)
    })
}

fn pod_manifest(name: &str, node: &str) -> String {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "sim"}},
        "spec": {
            "nodeName": node,
            "containers": [
                {"name": "web", "image": "nginx:1.27"},
                {"name": "cache", "image": "redis:7"},
            ],
        },
    })
    .to_string()
}

/// The pod, once it is Running with ready containers.
fn running_pod(c: &Cluster, name: &str) -> Value {
    eventually(&format!("pod {name} Running"), || {
        let pod = c.kubectl_json(&["get", "pod", name]);
        let statuses = pod["status"]["containerStatuses"].as_array()?;
        (pod["status"]["phase"] == "Running"
            && statuses.len() == 2
            && statuses.iter().all(|s| s["ready"] == true))
        .then_some(pod)
    })
}

#[test]
fn nodes_run_pods_and_renew_leases() {
    let c = Cluster::start();
    let mut sim = Sim::start(
        &c,
        &[
            "--nodes",
            "3",
            "--heartbeat",
            "1",
            "--label",
            "topology.kubernetes.io/zone=z1",
            "--taint",
            "sim=true:PreferNoSchedule",
        ],
    );
    assert!(
        sim.output()
            .contains("registered 3 simulated nodes (sim-0001..sim-0003)"),
        "{}",
        sim.output()
    );

    // Nodes look like real ones.
    let nodes = ready_nodes(&c, 3, "32");
    let names: Vec<&str> = nodes
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sim-0001", "sim-0002", "sim-0003"]);
    for node in &nodes {
        let status = &node["status"];
        assert_eq!(status["capacity"], status["allocatable"]);
        assert_eq!(status["capacity"]["memory"], "256Gi");
        assert_eq!(status["capacity"]["pods"], "110");
        for ty in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
            assert_eq!(condition(node, ty), Some("False"), "{ty}");
        }
        assert_eq!(status["nodeInfo"]["containerRuntimeVersion"], "sim://");
        assert_eq!(status["nodeInfo"]["operatingSystem"], "linux");
        let labels = &node["metadata"]["labels"];
        assert_eq!(labels["kubernetes.io/hostname"], node["metadata"]["name"]);
        assert_eq!(labels["kubernetes.io/arch"], "amd64");
        assert_eq!(labels["topology.kubernetes.io/zone"], "z1");
        assert_eq!(node["spec"]["taints"][0]["effect"], "PreferNoSchedule");
    }
    assert_eq!(nodes[1]["status"]["addresses"][0]["type"], "InternalIP");
    assert_eq!(nodes[1]["status"]["addresses"][0]["address"], "10.250.0.2");
    let table = c.kubectl_ok(&["get", "nodes", "-l", "type=hortator-sim"]);
    assert_eq!(
        table.lines().filter(|l| l.contains(" Ready ")).count(),
        3,
        "{table}"
    );

    // A pod bound to a sim node runs, without any container.
    c.kubectl_ok_stdin(
        &["create", "-f", "-"],
        Some(&pod_manifest("p1", "sim-0002")),
    );
    let pod = running_pod(&c, "p1");
    let status = &pod["status"];
    assert_eq!(status["hostIP"], "10.250.0.2");
    let ip = status["podIP"].as_str().unwrap();
    assert!(ip.starts_with("100.64.1."), "{ip}");
    assert_eq!(status["podIPs"][0]["ip"], ip);
    assert!(status["startTime"].is_string());
    for ty in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
        assert_eq!(condition(&pod, ty), Some("True"), "{ty}");
    }
    let web = &status["containerStatuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "web")
        .unwrap();
    assert_eq!(web["started"], true);
    assert_eq!(web["restartCount"], 0);
    assert_eq!(web["image"], "nginx:1.27");
    assert!(web["state"]["running"]["startedAt"].is_string());
    let uid = pod["metadata"]["uid"].as_str().unwrap();
    assert_eq!(web["containerID"], format!("sim://{uid}/web"));
    c.kubectl_ok(&["wait", "--for=condition=Ready", "pod/p1", "--timeout=30s"]);

    // A second pod on the same node gets another address.
    c.kubectl_ok_stdin(
        &["create", "-f", "-"],
        Some(&pod_manifest("p2", "sim-0002")),
    );
    let p2_ip = running_pod(&c, "p2")["status"]["podIP"].clone();
    assert_ne!(p2_ip, ip);

    // A normal (graceful) delete completes: the sim does the kubelet's final delete.
    let started = Instant::now();
    c.kubectl_ok(&["delete", "pod", "p1", "--timeout=30s"]);
    assert!(started.elapsed() < Duration::from_secs(20));
    let err = c.kubectl_err(&["get", "pod", "p1"]);
    assert!(err.contains("NotFound"), "{err}");

    // Leases exist and are renewed.
    let leases = c.kubectl_json(&["get", "leases", "-n", "kube-node-lease"]);
    let leases = leases["items"].as_array().unwrap();
    assert_eq!(leases.len(), 3, "{leases:?}");
    let lease = leases
        .iter()
        .find(|l| l["metadata"]["name"] == "sim-0001")
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "sim-0001");
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 40);
    assert_eq!(lease["metadata"]["ownerReferences"][0]["kind"], "Node");
    let renewed = lease["spec"]["renewTime"].clone();
    eventually("a lease renewal", || {
        let lease = c.kubectl_json(&["get", "lease", "-n", "kube-node-lease", "sim-0001"]);
        (lease["spec"]["renewTime"] != renewed).then_some(())
    });

    // SIGTERM is a clean exit.
    let status = sim.stop().expect("exit status");
    assert!(status.success(), "{status:?}\n{}", sim.log());

    // A pod bound while the sim is down runs once it is back: running again with the same
    // prefix is idempotent, and updates the nodes.
    c.kubectl_ok_stdin(
        &["create", "-f", "-"],
        Some(&pod_manifest("p3", "sim-0003")),
    );
    let sim = Sim::start(&c, &["--nodes", "3", "--cpu", "16", "--heartbeat", "0"]);
    let nodes = ready_nodes(&c, 3, "16");
    assert!(
        nodes[0]["spec"]["taints"].is_null(),
        "{:?}",
        nodes[0]["spec"]
    );
    let p3 = running_pod(&c, "p3");
    assert!(
        p3["status"]["podIP"]
            .as_str()
            .unwrap()
            .starts_with("100.64.2."),
        "{p3}"
    );
    // p2 kept its address across the restart.
    assert_eq!(
        c.kubectl_json(&["get", "pod", "p2"])["status"]["podIP"],
        p2_ip
    );
    assert_eq!(
        c.kubectl_json(&["get", "nodes"])["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    drop(sim);
}

fn sim_error(args: &[&str]) -> String {
    let out = Command::new(hortator_bin())
        .arg("sim")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    err
}

#[test]
fn bad_flags_are_one_line_errors() {
    assert!(sim_error(&["--nodes", "x"]).contains("--nodes"));
    assert!(sim_error(&[]).contains("--nodes"));
    assert!(sim_error(&["--nodes", "0"]).contains("--nodes"));
    let err = sim_error(&["--nodes", "3", "--taint", "nonsense"]);
    assert!(err.contains("--taint") && err.contains("nonsense"), "{err}");
    assert!(sim_error(&["--nodes", "3", "--cpu", "lots"]).contains("--cpu"));
    assert!(sim_error(&["--nodes", "3", "--label", "no value"]).contains("--label"));
    assert!(sim_error(&["--nodes", "3", "--prefix", "Sim_"]).contains("--prefix"));
}
