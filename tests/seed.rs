//! The seed talk's walkthrough, end to end, on a two-node cluster on this machine: the real
//! kubectl, real Docker, images built with `docker build` and pulled from the local registry,
//! two node agents each with its own node address, bridge, pod range and service proxy.

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hortator_tests::{Agent, AgentSpec, Cluster, busybox_image, eventually, free_port, http_get};
use serde_json::Value;

/// The local registry the test command starts.
const REGISTRY: &str = "127.0.0.1:5000";

/// Build `127.0.0.1:5000/httpd:TAG` from the busybox base with a page naming `version`, and
/// push it to the local registry. Like a well-behaved server, it goes on answering for 2 s
/// after SIGTERM, while its pod leaves the service's endpoints.
fn httpd_image(tag: &str, version: &str) -> String {
    let image = format!("{REGISTRY}/httpd:{tag}");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("index.html"),
        format!(
            "<html><head><title>Test Page for the Apache HTTP Server on Red Hat Enterprise Linux</title></head>\n<body>{version}</body></html>\n"
        ),
    )
    .expect("page");
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!(
            "FROM {}\nCOPY index.html /www/index.html\nEXPOSE 80\nCMD [\"sh\", \"-c\", \"httpd -f -p 80 -h /www & trap 'sleep 2; kill $!; exit 0' TERM; wait\"]\n",
            busybox_image()
        ),
    )
    .expect("Dockerfile");
    for args in [
        vec!["build", "-q", "-t", &image, dir.path().to_str().unwrap()],
        vec!["push", &image],
    ] {
        let out = Command::new("docker").args(&args).output().expect("docker");
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    image
}

/// A control plane and two node agents, A and B.
struct TwoNodes {
    cluster: Cluster,
    agents: Vec<Option<Agent>>,
    specs: Vec<AgentSpec>,
    /// The node addresses, A's first.
    ips: Vec<String>,
}

impl TwoNodes {
    /// Start the control plane with `controllers` as its `[controllers]` table, then the
    /// agents (A's proxy also serves NodePorts on 127.0.0.1) with the proxy in `mode`.
    fn start(mode: &str, controllers: &str) -> TwoNodes {
        let a = AgentSpec::next();
        let b = a.sibling("b");
        a.clean_up();
        b.clean_up();
        let id = a.service_cidr.split('.').nth(2).unwrap().to_string();
        let cluster = Cluster::start_with_config(&format!(
            "[server]\nservice-cidr = \"{}\"\n\n[controllers]\n{controllers}\n",
            a.service_cidr
        ));
        let ips = vec![format!("127.{id}.0.2"), format!("127.{id}.0.3")];
        let mut nodes = TwoNodes {
            cluster,
            agents: Vec::new(),
            specs: vec![a, b],
            ips,
        };
        for i in 0..2 {
            let loopback = if i == 0 { "\"127.0.0.1\"" } else { "" };
            let proxy = format!("[proxy]\nmode = \"{mode}\"\nnode-port-addresses = [{loopback}]\n");
            let agent = Agent::start_with(
                &nodes.cluster,
                &nodes.specs[i],
                &nodes.ips[i],
                free_port(),
                &proxy,
            );
            nodes.agents.push(Some(agent));
            // One at a time: each agent picks its node's pod range from those taken.
            nodes.wait_ready(i);
        }
        nodes
    }

    fn node(&self, i: usize) -> &str {
        &self.specs[i].node
    }

    fn wait_ready(&self, i: usize) {
        let node = self.node(i).to_string();
        eventually(&format!("node {node} Ready"), || {
            let out = self.cluster.kubectl(&[
                "get",
                "node",
                &node,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ]);
            (String::from_utf8_lossy(&out.stdout).trim() == "True").then_some(())
        });
    }

    /// Stop agent `i` (SIGTERM); its containers stay, as a failed machine's would.
    fn stop_agent(&mut self, i: usize) {
        if let Some(mut agent) = self.agents[i].take() {
            agent.stop();
        }
    }

    fn pods(&self, selector: &str) -> Vec<Value> {
        self.cluster.kubectl_json(&["get", "pods", "-l", selector])["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for TwoNodes {
    fn drop(&mut self) {
        for agent in &mut self.agents {
            if let Some(mut agent) = agent.take() {
                agent.stop();
            }
        }
        for spec in &self.specs {
            spec.clean_up();
        }
    }
}

fn seed_document(path: &str, image: &str) -> String {
    std::fs::read_to_string(Cluster::example(path))
        .expect("seed document")
        .replace("registry-host:5000/httpd:latest", image)
}

fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or("")
}

fn owner(pod: &Value) -> &str {
    pod["metadata"]["ownerReferences"][0]["name"]
        .as_str()
        .unwrap_or("")
}

/// Everything the seed shows, in its order: the service, the standalone pod, the controller
/// that adopts it (a second replica on the other node, the third Pending for want of port
/// 80), `kubectl describe`, the page through the service's ClusterIP from a pod and through
/// its NodePort on 127.0.0.1, and the service environment variables.
#[test]
fn seed_walkthrough_on_two_nodes() {
    let image = httpd_image("latest", "version 1");
    let lab = TwoNodes::start("iptables", "");
    let c = &lab.cluster;

    let out = c.kubectl_ok(&["create", "-f", &Cluster::example("seed/httpd-service.json")]);
    assert!(out.contains("service/httpd created"), "{out}");
    let service = c.kubectl_json(&["get", "service", "httpd"]);
    let cluster_ip = service["spec"]["clusterIP"].as_str().unwrap().to_string();

    c.kubectl_ok_stdin(
        &["create", "-f", "-"],
        Some(&seed_document("seed/httpd-pod.json", &image)),
    );
    let standalone = eventually("the standalone httpd pod running", || {
        let pod = c.kubectl_json(&["get", "pod", "httpd"]);
        (phase(&pod) == "Running").then_some(pod)
    });
    let first_node = standalone["spec"]["nodeName"].as_str().unwrap().to_string();

    c.kubectl_ok_stdin(
        &["create", "-f", "-"],
        Some(&seed_document("seed/httpd-controller.json", &image)),
    );
    let pods = eventually("3 httpd pods: 2 Running on both nodes, 1 Pending", || {
        let pods = lab.pods("name=httpd");
        let running: Vec<&Value> = pods.iter().filter(|p| phase(p) == "Running").collect();
        let pending = pods.iter().filter(|p| phase(p) == "Pending").count();
        let nodes: std::collections::BTreeSet<&str> = running
            .iter()
            .map(|p| p["spec"]["nodeName"].as_str().unwrap_or(""))
            .collect();
        (pods.len() == 3 && running.len() == 2 && pending == 1 && nodes.len() == 2)
            .then_some(pods.clone())
    });
    // The standalone pod was adopted, not replaced.
    let adopted = pods
        .iter()
        .find(|p| p["metadata"]["name"] == "httpd")
        .expect("the standalone pod is still there");
    assert_eq!(owner(adopted), "httpdController");
    assert_eq!(adopted["spec"]["nodeName"], first_node.as_str());
    assert!(pods.iter().all(|p| owner(p) == "httpdController"));
    let pending = pods.iter().find(|p| phase(p) == "Pending").unwrap();
    let pending_name = pending["metadata"]["name"].as_str().unwrap();
    let describe_pending = eventually("the host-port event of the pending pod", || {
        let out = c.kubectl_ok(&["describe", "pod", pending_name]);
        out.contains("didn't have free ports").then_some(out)
    });
    assert!(
        describe_pending.contains("0/2 nodes are available"),
        "{describe_pending}"
    );

    let get_rc = c.kubectl_ok(&["get", "replicationcontrollers"]);
    let row: Vec<&str> = get_rc.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[..3], ["httpdController", "3", "3"], "{get_rc}");
    let describe = eventually("kubectl describe rc as in the seed", || {
        let out = c.kubectl_ok(&["describe", "replicationcontrollers", "httpdController"]);
        (out.contains("3 current / 3 desired")
            && out.contains("2 Running / 1 Waiting / 0 Succeeded / 0 Failed"))
        .then_some(out)
    });
    assert!(describe.contains("Selector:     name=httpd"), "{describe}");
    assert!(describe.contains(&image), "{describe}");
    let describe_pod = c.kubectl_ok(&["describe", "pod", "httpd"]);
    assert!(
        describe_pod.contains("Controlled By:  ReplicationController/httpdController"),
        "{describe_pod}"
    );

    // Each running replica answers on its node's port 80 (hostPort).
    for pod in pods.iter().filter(|p| phase(p) == "Running") {
        let host_ip = pod["status"]["hostIP"].as_str().unwrap();
        let page = eventually("the page on the node's port 80", || {
            http_get(&format!("{host_ip}:80"), "/").ok()
        });
        assert!(
            page.contains("Test Page for the Apache HTTP Server"),
            "{page}"
        );
    }

    // A client pod made after the service: the page through the ClusterIP, and the service
    // variables of both styles.
    let client = format!(
        r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "client"}},
            "spec": {{"containers": [{{"name": "client", "image": "{}",
                      "imagePullPolicy": "Never", "command": ["sleep", "3600"]}}]}}}}"#,
        busybox_image()
    );
    c.kubectl_ok_stdin(&["create", "-f", "-"], Some(&client));
    eventually("the client pod running", || {
        (phase(&c.kubectl_json(&["get", "pod", "client"])) == "Running").then_some(())
    });
    let url = format!("http://{cluster_ip}:80/");
    // Debian's busybox 1.35 wget crashes with -T; `timeout` bounds it instead.
    let page = eventually("the page through the ClusterIP from a pod", || {
        let out = c.kubectl(&[
            "exec", "client", "--", "timeout", "5", "wget", "-q", "-O", "-", &url,
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("Test Page").then_some(text)
    });
    assert!(page.contains("version 1"), "{page}");
    let env = c.kubectl_ok(&["exec", "client", "--", "env"]);
    for line in [
        format!("HTTPD_SERVICE_HOST={cluster_ip}"),
        "HTTPD_SERVICE_PORT=80".to_string(),
        format!("HTTPD_PORT=tcp://{cluster_ip}:80"),
        format!("HTTPD_PORT_80_TCP=tcp://{cluster_ip}:80"),
        "HTTPD_PORT_80_TCP_PROTO=tcp".to_string(),
        "HTTPD_PORT_80_TCP_PORT=80".to_string(),
        format!("HTTPD_PORT_80_TCP_ADDR={cluster_ip}"),
    ] {
        assert!(env.lines().any(|l| l == line), "{line} missing from\n{env}");
    }

    // The node itself reaches the ClusterIP too, and the NodePort answers on 127.0.0.1 and on
    // both node addresses.
    let page = eventually("the page through the ClusterIP from the node", || {
        http_get(&format!("{cluster_ip}:80"), "/").ok()
    });
    assert!(page.contains("Test Page"), "{page}");
    c.kubectl_ok(&[
        "patch",
        "service",
        "httpd",
        "-p",
        r#"{"spec": {"type": "NodePort"}}"#,
    ]);
    let node_port = c.kubectl_json(&["get", "service", "httpd"])["spec"]["ports"][0]["nodePort"]
        .as_i64()
        .expect("a node port");
    for address in ["127.0.0.1", lab.ips[0].as_str(), lab.ips[1].as_str()] {
        let page = eventually(&format!("the page through {address}:{node_port}"), || {
            http_get(&format!("{address}:{node_port}"), "/").ok()
        });
        assert!(page.contains("Test Page"), "{page}");
    }
}

/// The seed's patch cycle: `hortctl rolling-update` moves a replication controller behind a
/// service to a v2 image one pod at a time while a client keeps fetching through the
/// service: every request is answered, the last ones by v2, and the old controller is gone.
#[test]
fn rolling_update_behind_a_service_answers_every_request() {
    let v1 = httpd_image("v1", "version 1");
    let v2 = httpd_image("v2", "version 2");
    let lab = TwoNodes::start("userspace", "");
    let c = &lab.cluster;
    c.kubectl_ok(&["create", "-f", &Cluster::example("seed/httpd-service.json")]);
    let cluster_ip = c.kubectl_json(&["get", "service", "httpd"])["spec"]["clusterIP"]
        .as_str()
        .unwrap()
        .to_string();
    let rc = format!(
        r#"{{"apiVersion": "v1", "kind": "ReplicationController", "metadata": {{"name": "frontend"}},
            "spec": {{"replicas": 3, "selector": {{"name": "httpd"}},
              "template": {{"metadata": {{"labels": {{"name": "httpd"}}}},
                "spec": {{"containers": [{{"name": "httpd", "image": "{v1}",
                  "readinessProbe": {{"httpGet": {{"path": "/", "port": 80}}, "periodSeconds": 1}}}}]}}}}}}}}"#
    );
    c.kubectl_ok_stdin(&["create", "-f", "-"], Some(&rc));
    eventually("3 ready v1 replicas", || {
        let rc = c.kubectl_json(&["get", "rc", "frontend"]);
        (rc["status"]["readyReplicas"] == 3).then_some(())
    });
    let target = format!("{cluster_ip}:80");
    eventually("the service answering", || http_get(&target, "/").ok());

    let stop = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(AtomicUsize::new(0));
    let client = {
        let (stop, answers, failures, target) = (
            stop.clone(),
            answers.clone(),
            failures.clone(),
            target.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match http_get(&target, "/") {
                    Ok(page) => answers.lock().unwrap().push(page.contains("version 2")),
                    Err(e) => {
                        eprintln!("request failed: {e}");
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let out = c.hortctl(&[
        "rolling-update",
        "frontend",
        "--image",
        &v2,
        "--update-period",
        "2s",
        "--poll-interval",
        "500ms",
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("rolling updated"), "{text}");
    // Keep fetching a moment after the update.
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    client.join().unwrap();
    let answers = answers.lock().unwrap().clone();
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "every request is answered"
    );
    assert!(answers.len() > 20, "{} requests", answers.len());
    assert!(answers.first() == Some(&false), "the first requests see v1");
    assert!(
        answers.iter().rev().take(10).all(|v2| *v2),
        "the last requests see v2"
    );
    let rcs = c.kubectl_json(&["get", "rc"]);
    let rcs = rcs["items"].as_array().unwrap();
    assert_eq!(rcs.len(), 1, "{rcs:?}");
    assert_eq!(rcs[0]["metadata"]["name"], "frontend");
    assert_eq!(
        rcs[0]["spec"]["template"]["spec"]["containers"][0]["image"],
        v2.as_str()
    );
}

/// A node whose agent stops: after the grace period it is NotReady, then its pods are
/// deleted and their controller recreates them on the other node.
#[test]
fn pods_of_a_stopped_agent_reappear_on_the_other_node() {
    let mut lab = TwoNodes::start(
        "iptables",
        "node-monitor-grace-period-seconds = 5\npod-eviction-timeout-seconds = 3",
    );
    let c = &lab.cluster;
    let rc = format!(
        r#"{{"apiVersion": "v1", "kind": "ReplicationController", "metadata": {{"name": "sleepers"}},
            "spec": {{"replicas": 4, "selector": {{"app": "sleepers"}},
              "template": {{"metadata": {{"labels": {{"app": "sleepers"}}}},
                "spec": {{"terminationGracePeriodSeconds": 1,
                  "containers": [{{"name": "sleep", "image": "{}", "imagePullPolicy": "Never",
                                  "command": ["sleep", "3600"]}}]}}}}}}}}"#,
        busybox_image()
    );
    c.kubectl_ok_stdin(&["create", "-f", "-"], Some(&rc));
    let on_b = eventually("4 running pods, some on each node", || {
        let pods = lab.pods("app=sleepers");
        let running = pods.iter().filter(|p| phase(p) == "Running").count();
        let on_b: Vec<String> = pods
            .iter()
            .filter(|p| p["spec"]["nodeName"] == lab.node(1))
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        (running == 4 && !on_b.is_empty() && on_b.len() < 4).then_some(on_b)
    });
    // Agent B stops for good (its containers stay, as a crashed machine's would).
    lab.stop_agent(1);
    let c = &lab.cluster;
    eventually("node B NotReady (Unknown) and tainted", || {
        let node = c.kubectl_json(&["get", "node", lab.node(1)]);
        let ready = node["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Ready")?
            .clone();
        let tainted = node["spec"]["taints"].as_array().is_some_and(|t| {
            t.iter()
                .any(|t| t["key"] == "node.kubernetes.io/unreachable")
        });
        (ready["status"] == "Unknown" && tainted).then_some(())
    });
    let table = c.kubectl_ok(&["get", "nodes"]);
    assert!(table.contains("NotReady"), "{table}");
    // The node controller's Event shows in `kubectl describe node`.
    let described = eventually("the NodeNotReady event on node B", || {
        let text = c.kubectl_ok(&["describe", "node", lab.node(1)]);
        text.contains("NodeNotReady").then_some(text)
    });
    assert!(
        described.contains(&format!("Node {} status is now: NodeNotReady", lab.node(1))),
        "{described}"
    );
    eventually("4 running pods on node A, B's pods being deleted", || {
        let pods = lab.pods("app=sleepers");
        let running_on_a = pods
            .iter()
            .filter(|p| {
                phase(p) == "Running"
                    && p["spec"]["nodeName"] == lab.node(0)
                    && p["metadata"]["deletionTimestamp"].is_null()
            })
            .count();
        let old_gone_or_terminating = on_b.iter().all(|name| {
            pods.iter()
                .find(|p| p["metadata"]["name"] == name.as_str())
                .is_none_or(|p| !p["metadata"]["deletionTimestamp"].is_null())
        });
        (running_on_a == 4 && old_gone_or_terminating).then_some(())
    });
    let events = c.kubectl_ok(&["get", "events"]);
    assert!(
        on_b.iter()
            .all(|name| events.contains(&format!("Marking for deletion Pod default/{name}"))),
        "{events}"
    );
}
