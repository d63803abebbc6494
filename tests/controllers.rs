//! The cluster-wide controllers against the real binary, checked with the real kubectl:
//! endpoints, garbage collection (background, orphan, foreground), namespace deletion and the
//! pod garbage collector. Pods run on simulated nodes (`hortator sim`), so no Docker is needed.

use hortator_tests::{Cluster, Sim, eventually};
use serde_json::Value;

fn names(list: &Value) -> Vec<String> {
    let mut names: Vec<String> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| o["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect();
    names.sort();
    names
}

fn rc(name: &str, replicas: u32, app: &str) -> String {
    format!(
        r#"{{"apiVersion": "v1", "kind": "ReplicationController", "metadata": {{"name": "{name}"}},
            "spec": {{"replicas": {replicas}, "selector": {{"app": "{app}"}},
              "template": {{"metadata": {{"labels": {{"app": "{app}"}}}},
                "spec": {{"containers": [{{"name": "c", "image": "busybox",
                  "ports": [{{"name": "http", "containerPort": 8080}}]}}]}}}}}}}}"#
    )
}

fn running(c: &Cluster, selector: &str, n: usize) -> Vec<Value> {
    eventually(&format!("{n} running pods with {selector}"), || {
        let pods = c.kubectl_json(&["get", "pods", "-l", selector]);
        let items = pods["items"].as_array()?.clone();
        (items.len() == n && items.iter().all(|p| p["status"]["phase"] == "Running"))
            .then_some(items)
    })
}

fn endpoint_ips(c: &Cluster, name: &str) -> (Vec<String>, Vec<String>, Value) {
    let ep = c.kubectl_json(&["get", "endpoints", name]);
    let collect = |key: &str| {
        let mut ips: Vec<String> = ep["subsets"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s[key].as_array().cloned().unwrap_or_default())
            .map(|a| a["ip"].as_str().unwrap_or("").to_string())
            .collect();
        ips.sort();
        ips
    };
    (collect("addresses"), collect("notReadyAddresses"), ep)
}

/// A service's Endpoints follow its pods: the ready ones with the resolved named target port,
/// a relabelled pod leaves, and the Endpoints go with the service.
#[test]
fn endpoints_follow_the_services_pods() {
    let c = Cluster::start();
    let _sim = Sim::start(&c, &["--nodes", "2"]);
    c.kubectl_ok_stdin(&["create", "-f", "-"], Some(&rc("web", 3, "web")));
    let pods = running(&c, "app=web", 3);
    let service = r#"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "labels": {"tier": "front"}},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}"#;
    c.kubectl_ok_stdin(&["create", "-f", "-"], Some(service));
    let mut ips: Vec<String> = pods
        .iter()
        .map(|p| p["status"]["podIP"].as_str().unwrap().to_string())
        .collect();
    ips.sort();
    let ep = eventually("endpoints with the 3 pods", || {
        let (ready, _, ep) = endpoint_ips(&c, "web");
        (ready == ips).then_some(ep)
    });
    assert_eq!(ep["subsets"][0]["ports"][0]["port"], 8080);
    assert_eq!(ep["subsets"][0]["ports"][0]["name"], "http");
    assert_eq!(ep["metadata"]["labels"]["tier"], "front");
    assert_eq!(ep["subsets"][0]["addresses"][0]["targetRef"]["kind"], "Pod");
    let table = c.kubectl_ok(&["get", "endpoints", "web"]);
    assert!(table.contains(&format!("{}:8080", ips[0])), "{table}");

    // A pod relabelled out of the selector leaves the endpoints (and its controller makes
    // another, which joins).
    let first = pods[0]["metadata"]["name"].as_str().unwrap();
    let first_ip = pods[0]["status"]["podIP"].as_str().unwrap();
    c.kubectl_ok(&["label", "pod", first, "app=other", "--overwrite"]);
    eventually(
        "the relabelled pod gone from the endpoints, a new one in",
        || {
            let (ready, _, _) = endpoint_ips(&c, "web");
            (ready.len() == 3 && !ready.iter().any(|ip| ip == first_ip)).then_some(())
        },
    );
    // Scaling down shrinks them.
    c.kubectl_ok(&["scale", "rc", "web", "--replicas=1"]);
    eventually("one endpoint address", || {
        (endpoint_ips(&c, "web").0.len() == 1).then_some(())
    });
    c.kubectl_ok(&["delete", "service", "web"]);
    eventually("the endpoints deleted with the service", || {
        names(&c.kubectl_json(&["get", "endpoints"]))
            .iter()
            .all(|n| n != "web")
            .then_some(())
    });
}

/// `kubectl delete rc` in the three cascade modes.
#[test]
fn garbage_collection_follows_the_cascade_mode() {
    let c = Cluster::start();
    let _sim = Sim::start(&c, &["--nodes", "2"]);
    for (name, app) in [("bg", "bg"), ("orph", "orph"), ("fg", "fg")] {
        c.kubectl_ok_stdin(&["create", "-f", "-"], Some(&rc(name, 2, app)));
    }
    for app in ["bg", "orph", "fg"] {
        running(&c, &format!("app={app}"), 2);
    }

    // Background (kubectl's default): the controller goes at once, its pods after it.
    c.kubectl_ok(&["delete", "rc", "bg"]);
    eventually("the background-deleted controller's pods gone", || {
        names(&c.kubectl_json(&["get", "pods", "-l", "app=bg"]))
            .is_empty()
            .then_some(())
    });

    // Orphan: the pods stay, without an owner.
    c.kubectl_ok(&["delete", "rc", "orph", "--cascade=orphan"]);
    eventually("the orphaning controller gone", || {
        (!names(&c.kubectl_json(&["get", "rc"])).contains(&"orph".to_string())).then_some(())
    });
    let orphans = running(&c, "app=orph", 2);
    for pod in &orphans {
        assert!(
            pod["metadata"]["ownerReferences"]
                .as_array()
                .is_none_or(Vec::is_empty),
            "{pod}"
        );
    }

    // Foreground: the pods go first, then the controller.
    c.kubectl_ok(&["delete", "rc", "fg", "--cascade=foreground", "--wait=false"]);
    eventually("the foreground deletion finished", || {
        let rcs = names(&c.kubectl_json(&["get", "rc"]));
        let pods = names(&c.kubectl_json(&["get", "pods", "-l", "app=fg"]));
        (!rcs.contains(&"fg".to_string()) && pods.is_empty()).then_some(())
    });
    // The orphans are still there, and nobody recreated anything.
    assert_eq!(
        names(&c.kubectl_json(&["get", "pods", "-l", "app=orph"])).len(),
        2
    );
}

/// Deleting a namespace removes everything in it, then the namespace itself.
#[test]
fn deleting_a_namespace_removes_everything_in_it() {
    let c = Cluster::start();
    let _sim = Sim::start(&c, &["--nodes", "1"]);
    let namespace = r#"{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}}"#;
    c.kubectl_ok_stdin(&["create", "-f", "-"], Some(namespace));
    c.kubectl_ok_stdin(
        &["create", "-n", "doomed", "-f", "-"],
        Some(&rc("web", 2, "web")),
    );
    let others = r#"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}
---
{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "b"}}
---
{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token"}, "stringData": {"t": "x"}}"#;
    c.kubectl_ok_stdin(&["create", "-n", "doomed", "-f", "-"], Some(others));
    eventually("2 running pods in the namespace", || {
        let pods = c.kubectl_json(&["get", "pods", "-n", "doomed"]);
        let items = pods["items"].as_array()?.clone();
        (items.len() == 2 && items.iter().all(|p| p["status"]["phase"] == "Running")).then_some(())
    });
    let out = c.kubectl_ok(&["delete", "namespace", "doomed", "--timeout=120s"]);
    assert!(out.contains("namespace \"doomed\" deleted"), "{out}");
    let namespaces = names(&c.kubectl_json(&["get", "namespaces"]));
    assert!(
        !namespaces.contains(&"doomed".to_string()),
        "{namespaces:?}"
    );
    for kind in [
        "pods",
        "services",
        "endpoints",
        "replicationcontrollers",
        "configmaps",
        "secrets",
    ] {
        let left = c.kubectl_json(&["get", kind, "-n", "doomed"]);
        assert!(names(&left).is_empty(), "{kind} left: {left}");
    }
    // Other namespaces are untouched.
    assert!(namespaces.contains(&"default".to_string()));
}

/// Pods bound to a node that does not exist are deleted by the pod garbage collector.
#[test]
fn pods_of_a_missing_node_are_garbage_collected() {
    let c = Cluster::start();
    let pod = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stranded"},
        "spec": {"nodeName": "no-such-node", "containers": [{"name": "c", "image": "busybox"}]}}"#;
    c.kubectl_ok_stdin(&["create", "-f", "-"], Some(pod));
    eventually("the stranded pod deleted", || {
        names(&c.kubectl_json(&["get", "pods"]))
            .is_empty()
            .then_some(())
    });
}
