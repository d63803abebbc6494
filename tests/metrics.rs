//! Prometheus metrics: after some traffic, `/metrics` of `hortator up` and of a standalone
//! `hortator agent` (directly and through the API server's node proxy) parse with the
//! official Prometheus client's parsers (text format and OpenMetrics) and hold every
//! component's families with non-zero counts.

use std::process::Command;
use std::time::Duration;

use hortator_tests::{Agent, AgentSpec, Cluster, eventually, free_port, http_get, shell_pod};
use serde_json::json;

/// Run tests/python/metrics_check.py against `url`; its output on success.
fn check_metrics(url: &str, samples: &[&str]) -> Result<String, String> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/metrics_check.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(url)
        .args(samples)
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{stdout}{stderr}"))
    }
}

#[test]
fn every_component_exposes_prometheus_metrics_after_traffic() {
    let cluster = Cluster::start_with_agent_and_config("\n[proxy]\nmode = \"userspace\"\n");
    let web = shell_pod(
        "web",
        "echo metrics-web > /tmp/index.html; exec httpd -f -p 8080 -h /tmp",
    );
    let crash = shell_pod("crash", "sleep 1; exit 1");
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "selector": {"app": "web"},
                 "ports": [{"port": 80, "targetPort": 8080}]},
    });
    for object in [&web, &crash, &service] {
        cluster.kubectl_ok_stdin(&["create", "-f", "-"], Some(&object.to_string()));
    }
    let node_port =
        cluster.kubectl_json(&["get", "service", "web"])["spec"]["ports"][0]["nodePort"]
            .as_i64()
            .expect("a node port");
    // Through the userspace proxy, on the node port.
    let body = eventually("the web pod to answer on its node port", || {
        http_get(&format!("127.0.0.1:{node_port}"), "/").ok()
    });
    assert!(body.contains("metrics-web"), "{body}");
    eventually("the crashing container to be restarted", || {
        let pod = cluster.kubectl_json(&["get", "pod", "crash"]);
        (pod["status"]["containerStatuses"][0]["restartCount"].as_i64() >= Some(1)).then_some(())
    });
    // Unschedulable: no node has that much memory.
    let mut huge = shell_pod("huge", "sleep 3600");
    huge["spec"]["containers"][0]["resources"] = json!({"requests": {"memory": "100Ti"}});
    cluster.kubectl_ok_stdin(&["create", "-f", "-"], Some(&huge.to_string()));
    cluster.kubectl_ok(&["get", "pods"]);

    let samples = [
        // API server: requests by verb/resource/code, latency, watches.
        "apiserver_request_total",
        "apiserver_request_duration_seconds_count",
        "apiserver_registered_watchers",
        // Store.
        "hortator_store_operation_duration_seconds_count",
        // Scheduler: attempts, latency, queue depth.
        "scheduler_schedule_attempts_total",
        "scheduler_scheduling_attempt_duration_seconds_count",
        "scheduler_pending_pods",
        // Plugins: calls, errors, latency.
        "hortator_plugin_calls_total",
        "hortator_plugin_call_errors_total=any",
        "hortator_plugin_call_duration_seconds_count",
        // Node agent: pod start latency, restarts.
        "kubelet_pod_start_duration_seconds_count",
        "kubelet_container_restarts_total",
        // Proxy: connections, rule syncs.
        "hortator_proxy_connections_total",
        "hortator_proxy_active_connections=any",
        "kubeproxy_sync_proxy_rules_duration_seconds_count",
    ];
    let url = format!("{}/metrics", cluster.url);
    // The scheduler publishes its queue depths once a second.
    check_until_complete(&url, &samples);

    // Labels name what was counted.
    let text = http_get(cluster.addr.as_str(), "/metrics").expect("GET /metrics");
    for needle in [
        "apiserver_request_total{verb=\"LIST\",group=\"\",version=\"v1\",resource=\"pods\",subresource=\"\",code=\"200\"}",
        "apiserver_request_total{verb=\"POST\",group=\"\",version=\"v1\",resource=\"pods\",subresource=\"binding\",code=\"201\"}",
        "scheduler_schedule_attempts_total{result=\"unschedulable\",profile=\"default-scheduler\"}",
        "scheduler_pending_pods{queue=\"unschedulable\"}",
        "hortator_plugin_calls_total{point=\"network-driver\",plugin=\"bridge\"}",
        "hortator_store_operation_duration_seconds_count{operation=\"create\",outcome=\"ok\"}",
        "hortator_proxy_connections_total{protocol=\"tcp\",result=\"proxied\"}",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
}

#[test]
fn a_standalone_agent_serves_its_metrics_on_its_port() {
    let cluster = Cluster::start();
    let agent = AgentSpec::next();
    agent.clean_up();
    let port = free_port();
    let mut process = Agent::start(&cluster, &agent, port);
    let mut pinned = shell_pod("pinned", "exec sleep 3600");
    pinned["spec"]["nodeName"] = json!(agent.node);
    cluster.kubectl_ok_stdin(&["create", "-f", "-"], Some(&pinned.to_string()));
    let url = format!("http://127.0.0.1:{port}/metrics");
    let samples = [
        "kubelet_pod_start_duration_seconds_count",
        "kubelet_container_restarts_total=any",
        "hortator_plugin_calls_total",
        "kubeproxy_sync_proxy_rules_duration_seconds_count",
    ];
    let result = check_until_complete(&url, &samples);
    assert!(
        result.contains("kubelet_pod_start_duration_seconds_count 1"),
        "{result}"
    );
    // The same, through the API server's node proxy (over HTTP to the agent's port).
    let proxied = cluster.kubectl_ok(&[
        "get",
        "--raw",
        &format!("/api/v1/nodes/{}/proxy/metrics", agent.node),
    ]);
    assert!(
        proxied.contains("kubelet_pod_start_duration_seconds_count 1"),
        "{proxied}"
    );
    cluster.kubectl_ok(&["delete", "pod", "pinned", "--wait=true", "--timeout=60s"]);
    process.stop();
    agent.clean_up();
}

/// Check `url` until every sample is there (at most a minute); the check's report.
fn check_until_complete(url: &str, samples: &[&str]) -> String {
    let mut last = String::new();
    for _ in 0..60 {
        match check_metrics(url, samples) {
            Ok(report) => return report,
            Err(problems) => last = problems,
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    panic!("{url} never held every family:\n{last}");
}
