//! Monitoring on the real Docker engine: the agent samples its containers' cgroups and the
//! metrics API serves them, so that the real `kubectl top` and `hortctl top` show a container
//! burning CPU and one holding 100 MiB; the agent's Summary, read through the node proxy,
//! holds the disk a container's layer, its logs and its volumes take.

use hortator_tests::{AgentSpec, Cluster, eventually, shell_pod};
use serde_json::{Value, json};

/// The row whose first cell is `first`, split into cells.
fn row<'a>(table: &'a str, first: &str) -> Option<Vec<&'a str>> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&first))
}

/// `250m` → 250, `100Mi` → 100.
fn number(cell: &str, unit: &str) -> u64 {
    cell.strip_suffix(unit)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{cell:?} is not a number of {unit}"))
}

/// (millicores, MiB) of pod `name` in a `top pods` table (NAME CPU MEMORY).
fn usage(table: &str, name: &str) -> Option<(u64, u64)> {
    let cells = row(table, name)?;
    Some((number(cells[1], "m"), number(cells[2], "Mi")))
}

#[test]
fn top_shows_cpu_and_memory_of_real_containers() {
    let cluster = Cluster::start_with_agent();
    let burn = shell_pod("burn", "while :; do :; done");
    // A shell variable of 100 MiB, kept by a shell that stays alive (no exec of the sleep).
    let hold = shell_pod(
        "hold",
        "x=$(head -c 104857600 /dev/zero | tr '\\0' a); while :; do sleep 3600; done",
    );
    for object in [&burn, &hold] {
        cluster.kubectl_ok_stdin(&["create", "-f", "-"], Some(&object.to_string()));
    }

    // Discovery names the group, as `kubectl top` checks before asking.
    let resources = cluster.kubectl_ok(&["api-resources", "--api-group=metrics.k8s.io"]);
    assert!(
        resources.contains("PodMetrics") && resources.contains("NodeMetrics"),
        "{resources}"
    );

    let table = eventually("kubectl top pods to show the burner and the holder", || {
        let out = cluster.kubectl(&["top", "pods"]);
        let table = String::from_utf8_lossy(&out.stdout).into_owned();
        let (burn_cpu, _) = usage(&table, "burn")?;
        let (_, hold_memory) = usage(&table, "hold")?;
        (burn_cpu > 200 && hold_memory >= 90).then_some(table)
    });
    assert!(table.starts_with("NAME"), "{table}");
    let (hold_cpu, _) = usage(&table, "hold").unwrap();
    assert!(hold_cpu < 200, "the holder is idle: {table}");

    // Per container, across namespaces, and with a label selector.
    let containers = cluster.kubectl_ok(&["top", "pods", "--containers"]);
    let cells = row(&containers, "burn").unwrap_or_else(|| panic!("{containers}"));
    assert_eq!(cells[1], "burn", "{containers}");
    assert!(number(cells[2], "m") > 200, "{containers}");
    let all = cluster.kubectl_ok(&["top", "pods", "-A"]);
    assert!(
        row(&all, "default").is_some() && all.starts_with("NAMESPACE"),
        "{all}"
    );
    let selected = cluster.kubectl_ok(&["top", "pods", "-l", "app=hold"]);
    assert!(
        row(&selected, "hold").is_some() && row(&selected, "burn").is_none(),
        "{selected}"
    );
    let selected = cluster.kubectl_ok(&["top", "pods", "--field-selector", "metadata.name=burn"]);
    assert!(
        row(&selected, "burn").is_some() && row(&selected, "hold").is_none(),
        "{selected}"
    );

    // The raw object: a PodMetrics with a window and quantities.
    let raw = cluster.kubectl_ok(&[
        "get",
        "--raw",
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/burn",
    ]);
    let metrics: Value = serde_json::from_str(&raw).expect("PodMetrics JSON");
    assert_eq!(metrics["kind"], "PodMetrics", "{metrics}");
    assert!(
        metrics["window"].as_str().is_some_and(|w| w.ends_with('s')),
        "{metrics}"
    );
    assert!(
        metrics["containers"][0]["usage"]["cpu"]
            .as_str()
            .is_some_and(|c| c.ends_with('n'))
    );
    let missing = cluster.kubectl_err(&[
        "get",
        "--raw",
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/nothing",
    ]);
    assert!(
        missing.contains("NotFound") || missing.contains("not found"),
        "{missing}"
    );

    // The node: busy at least as much as the burner, with percentages of allocatable.
    let nodes = cluster.kubectl_ok(&["top", "nodes"]);
    let node = cluster.kubectl_ok(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"]);
    let cells = row(&nodes, node.trim()).unwrap_or_else(|| panic!("{nodes}"));
    assert!(number(cells[1], "m") > 200, "{nodes}");
    assert!(
        cells[2].ends_with('%') && cells[4].ends_with('%'),
        "{nodes}"
    );
    assert!(number(cells[3], "Mi") > 100, "{nodes}");

    // hortctl mirrors kubectl.
    let out = cluster.hortctl(&["top", "pods"]);
    let mirrored = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (burn_cpu, _) = usage(&mirrored, "burn").unwrap_or_else(|| panic!("{mirrored}"));
    let (_, hold_memory) = usage(&mirrored, "hold").unwrap_or_else(|| panic!("{mirrored}"));
    assert!(burn_cpu > 200 && hold_memory >= 90, "{mirrored}");
    let out = cluster.hortctl(&["top", "pods", "--containers", "-l", "app=burn"]);
    let mirrored = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(mirrored.starts_with("POD"), "{mirrored}");
    assert_eq!(
        row(&mirrored, "burn").map(|c| c[1]),
        Some("burn"),
        "{mirrored}"
    );
    // Highest usage first, without the header: the burner by CPU, the holder by memory.
    for tool in ["kubectl", "hortctl"] {
        for (key, first) in [("cpu", "burn"), ("memory", "hold")] {
            let args = ["top", "pods", "--sort-by", key, "--no-headers"];
            let out = if tool == "kubectl" {
                cluster.kubectl(&args)
            } else {
                cluster.hortctl(&args)
            };
            let sorted = String::from_utf8_lossy(&out.stdout).into_owned();
            assert_eq!(
                sorted.split_whitespace().next(),
                Some(first),
                "{tool} top pods --sort-by {key}: {sorted}"
            );
        }
    }
    let out = cluster.hortctl(&["top", "nodes"]);
    let mirrored = String::from_utf8_lossy(&out.stdout).into_owned();
    let cells = row(&mirrored, node.trim()).unwrap_or_else(|| panic!("{mirrored}"));
    assert!(
        number(cells[1], "m") > 200 && cells[2].ends_with('%'),
        "{mirrored}"
    );

    cluster.kubectl_ok(&["delete", "pod", "burn", "hold", "--wait=false"]);
}

const MIB: u64 = 1 << 20;

/// `usedBytes` of a Summary FsStats, in bytes.
fn used_bytes(stats: &Value) -> u64 {
    stats["usedBytes"].as_u64().unwrap_or(0)
}

#[test]
fn the_summary_reports_disk_usage_of_layers_logs_and_volumes() {
    let mut agent = AgentSpec::next();
    agent.agent_keys = "stats-interval-seconds = 2\nfs-stats-interval-seconds = 2\n".into();
    let node = agent.node.clone();
    let cluster = Cluster::start_with_agent_spec(agent, "");
    // 20 MiB in the writable layer, 10 MiB in a disk emptyDir, 5 MiB in a memory one.
    let mut disk = shell_pod(
        "disk",
        "head -c 20971520 /dev/zero > /tmp/layer; head -c 10485760 /dev/zero > /cache/data; \
         head -c 5242880 /dev/zero > /shm/data; echo written; exec sleep 3600",
    );
    disk["spec"]["volumes"] = json!([
        {"name": "cache", "emptyDir": {}},
        {"name": "shm", "emptyDir": {"medium": "Memory"}},
    ]);
    disk["spec"]["containers"][0]["volumeMounts"] = json!([
        {"name": "cache", "mountPath": "/cache"},
        {"name": "shm", "mountPath": "/shm"},
    ]);
    cluster.kubectl_ok_stdin(&["create", "-f", "-"], Some(&disk.to_string()));
    let path = format!("/api/v1/nodes/{node}/proxy/stats/summary");
    let (summary, pod) = eventually("the summary to hold the pod's disk usage", || {
        let summary: Value =
            serde_json::from_str(&cluster.kubectl_ok(&["get", "--raw", &path])).ok()?;
        let pod = summary["pods"]
            .as_array()?
            .iter()
            .find(|p| p["podRef"]["name"] == "disk")?
            .clone();
        let volume = |name: &str| {
            pod["volume"]
                .as_array()
                .and_then(|v| v.iter().find(|v| v["name"] == name))
                .map_or(0, used_bytes)
        };
        let done = used_bytes(&pod["containers"][0]["rootfs"]) >= 20 * MIB
            && used_bytes(&pod["containers"][0]["logs"]) > 0
            && volume("cache") >= 10 * MIB
            && volume("shm") >= 5 * MIB;
        done.then_some((summary, pod))
    });
    let container = &pod["containers"][0];
    for stats in [
        &container["rootfs"],
        &container["logs"],
        &pod["ephemeral-storage"],
    ] {
        assert!(
            stats["capacityBytes"].as_u64() > Some(0) && stats["inodesUsed"].as_u64() > Some(0),
            "{pod}"
        );
    }
    assert!(
        used_bytes(&container["rootfs"]) < 22 * MIB,
        "the layer holds 20 MiB: {pod}"
    );
    // Layer, logs and the disk volume; not the memory volume.
    let ephemeral = used_bytes(&pod["ephemeral-storage"]);
    assert!(
        (30 * MIB..34 * MIB).contains(&ephemeral),
        "ephemeral storage {ephemeral}: {pod}"
    );
    let image_fs = &summary["node"]["runtime"]["imageFs"];
    assert!(
        used_bytes(image_fs) > 0 && image_fs["capacityBytes"].as_u64() > Some(0),
        "{summary}"
    );
    assert!(
        summary["node"]["fs"]["capacityBytes"].as_u64() > Some(0),
        "{summary}"
    );

    // The node proxy also reaches the agent's (here: the process's) metrics; a missing node
    // is NotFound, another verb is refused.
    let metrics = cluster.kubectl_ok(&[
        "get",
        "--raw",
        &format!("/api/v1/nodes/{node}/proxy/metrics"),
    ]);
    assert!(
        metrics.contains("kubelet_pod_start_duration_seconds"),
        "{metrics}"
    );
    let missing =
        cluster.kubectl_err(&["get", "--raw", "/api/v1/nodes/nowhere/proxy/stats/summary"]);
    assert!(
        missing.contains("not found") || missing.contains("NotFound"),
        "{missing}"
    );
    let refused = cluster.kubectl_err(&[
        "delete",
        "--raw",
        &format!("/api/v1/nodes/{node}/proxy/stats/summary"),
    ]);
    assert!(
        refused.contains("MethodNotAllowed") || refused.contains("not allow"),
        "{refused}"
    );
    cluster.kubectl_ok(&["delete", "pod", "disk", "--wait=false"]);
}
