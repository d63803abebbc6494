//! Monitoring on the real Docker engine: the agent samples its containers' cgroups and the
//! metrics API serves them, so that the real `kubectl top` and `hortctl top` show a container
//! burning CPU and one holding 100 MiB.

use hortator_tests::{Cluster, eventually, shell_pod};
use serde_json::Value;

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
