//! Replication controllers and replica sets against the real `hortator up` with simulated
//! nodes (pods Running and Ready without containers), driven by the real kubectl and by
//! `hortctl rolling-update`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use futures::StreamExt;
use hortator_tests::{Cluster, Sim, eventually};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::{Value, json};

/// A cluster with two simulated nodes.
fn cluster() -> (Cluster, Sim) {
    let c = Cluster::start();
    let sim = Sim::start(&c, &["--nodes", "2"]);
    (c, sim)
}

fn rc(name: &str, replicas: i64, selector: Value, image: &str) -> String {
    json!({
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": {"name": name, "labels": selector},
        "spec": {
            "replicas": replicas,
            "selector": selector,
            "template": {
                "metadata": {"labels": selector},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
    })
    .to_string()
}

fn create(c: &Cluster, manifest: &str) {
    c.kubectl_ok_stdin(&["create", "-f", "-"], Some(manifest));
}

/// The pods matching `selector`, terminating ones included.
fn pods(c: &Cluster, selector: &str) -> Vec<Value> {
    c.kubectl_json(&["get", "pods", "-l", selector])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn live(pods: &[Value]) -> Vec<Value> {
    pods.iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .cloned()
        .collect()
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

fn name(object: &Value) -> String {
    object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn controller(pod: &Value) -> Option<&Value> {
    pod["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
}

/// Wait until exactly `n` live pods match `selector`, all Ready; returns them.
fn ready_pods(c: &Cluster, selector: &str, n: usize) -> Vec<Value> {
    eventually(&format!("{n} ready pods matching {selector}"), || {
        let live = live(&pods(c, selector));
        (live.len() == n && live.iter().all(is_ready)).then_some(live)
    })
}

fn status(c: &Cluster, kind: &str, name: &str) -> Value {
    c.kubectl_json(&["get", kind, name])["status"].clone()
}

/// Wait until the status of `kind/name` has these fields.
fn wait_status(c: &Cluster, kind: &str, name: &str, expected: &[(&str, i64)]) -> Value {
    eventually(&format!("{kind}/{name} status {expected:?}"), || {
        let status = status(c, kind, name);
        expected
            .iter()
            .all(|(field, value)| status[field].as_i64().unwrap_or(0) == *value)
            .then_some(status)
    })
}

/// kubectl's output with runs of spaces squeezed, to compare aligned lines.
fn squeezed(text: &str) -> String {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn rc_keeps_replicas_replaces_scales_and_reports() {
    let (c, _sim) = cluster();
    create(&c, &rc("web", 3, json!({"app": "web"}), "img:1"));
    let first = ready_pods(&c, "app=web", 3);
    let rc = c.kubectl_json(&["get", "rc", "web"]);
    for pod in &first {
        let owner = controller(pod).expect("controller reference");
        assert_eq!(owner["kind"], "ReplicationController");
        assert_eq!(owner["apiVersion"], "v1");
        assert_eq!(owner["name"], "web");
        assert_eq!(owner["uid"], rc["metadata"]["uid"]);
        assert_eq!(owner["blockOwnerDeletion"], true);
        assert_eq!(pod["metadata"]["generateName"], "web-");
        assert_eq!(pod["spec"]["containers"][0]["image"], "img:1");
    }
    let st = wait_status(
        &c,
        "rc",
        "web",
        &[
            ("replicas", 3),
            ("fullyLabeledReplicas", 3),
            ("readyReplicas", 3),
            ("availableReplicas", 3),
            ("observedGeneration", 1),
        ],
    );
    assert!(st["conditions"].is_null(), "{st}");
    let table = squeezed(&c.kubectl_ok(&["get", "rc", "web"]));
    assert!(table.contains("web 3 3 3 "), "{table}");

    // A deleted pod is replaced; no more than 3 ever live.
    let victim = name(&first[0]);
    c.kubectl_ok(&["delete", "pod", &victim, "--wait=false"]);
    let replaced = eventually("a replacement pod", || {
        let live = live(&pods(&c, "app=web"));
        assert!(live.len() <= 3, "{} live pods", live.len());
        (live.len() == 3 && live.iter().all(|p| name(p) != victim) && live.iter().all(is_ready))
            .then_some(live)
    });
    assert_eq!(replaced.len(), 3);

    // kubectl scale goes through /scale.
    let out = c.kubectl_ok(&["scale", "rc", "web", "--replicas=5"]);
    assert_eq!(out.trim(), "replicationcontroller/web scaled");
    ready_pods(&c, "app=web", 5);
    wait_status(
        &c,
        "rc",
        "web",
        &[
            ("replicas", 5),
            ("readyReplicas", 5),
            ("observedGeneration", 2),
        ],
    );
    // Settled: nothing more is created.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(live(&pods(&c, "app=web")).len(), 5);

    c.kubectl_ok(&["scale", "rc", "web", "--replicas=1"]);
    ready_pods(&c, "app=web", 1);
    wait_status(
        &c,
        "rc",
        "web",
        &[("replicas", 1), ("availableReplicas", 1)],
    );

    let described = squeezed(&c.kubectl_ok(&["describe", "rc", "web"]));
    for expected in [
        "Replicas: 1 current / 1 desired",
        "Pods Status: 1 Running / 0 Waiting / 0 Succeeded / 0 Failed",
        "Selector: app=web",
        "SuccessfulCreate",
        "SuccessfulDelete",
    ] {
        assert!(described.contains(expected), "{expected}:\n{described}");
    }
}

#[test]
fn orphans_are_adopted_and_relabelled_pods_released() {
    let (c, _sim) = cluster();
    create(
        &c,
        &json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "stray", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "img:1"}]},
        })
        .to_string(),
    );
    ready_pods(&c, "app=web", 1);
    create(&c, &rc("web", 2, json!({"app": "web"}), "img:1"));
    let pods = ready_pods(&c, "app=web", 2);
    let uid = c.kubectl_json(&["get", "rc", "web"])["metadata"]["uid"].clone();
    assert!(pods.iter().any(|p| name(p) == "stray"), "{pods:?}");
    for pod in &pods {
        assert_eq!(controller(pod).expect("owner")["uid"], uid, "{pod}");
    }

    // Relabelled out of the selector: released, and replaced.
    c.kubectl_ok(&["label", "pod", "stray", "app=other", "--overwrite"]);
    eventually("stray released", || {
        let stray = c.kubectl_json(&["get", "pod", "stray"]);
        controller(&stray).is_none().then_some(())
    });
    let now = ready_pods(&c, "app=web", 2);
    assert!(now.iter().all(|p| name(p) != "stray"));

    // Back in: adopted again, and the surplus pod deleted.
    c.kubectl_ok(&["label", "pod", "stray", "app=web", "--overwrite"]);
    let settled = ready_pods(&c, "app=web", 2);
    for pod in &settled {
        assert_eq!(controller(pod).expect("owner")["uid"], uid, "{pod}");
    }
    wait_status(&c, "rc", "web", &[("replicas", 2), ("readyReplicas", 2)]);
}

#[test]
fn seed_controller_adopts_the_httpd_pod() {
    let (c, _sim) = cluster();
    c.kubectl_ok(&["create", "-f", &Cluster::example("seed/httpd-pod.json")]);
    ready_pods(&c, "name=httpd", 1);
    c.kubectl_ok(&[
        "create",
        "-f",
        &Cluster::example("seed/httpd-controller.json"),
    ]);
    // Every pod publishes host port 80: two nodes, so one of the three stays Pending.
    let uid = c.kubectl_json(&["get", "rc", "httpdController"])["metadata"]["uid"].clone();
    eventually("httpd adopted and two more pods", || {
        let pods = live(&pods(&c, "name=httpd"));
        let running = pods
            .iter()
            .filter(|p| p["status"]["phase"] == "Running")
            .count();
        let owned = pods
            .iter()
            .filter(|p| controller(p).is_some_and(|o| o["uid"] == uid))
            .count();
        (pods.len() == 3 && running == 2 && owned == 3).then_some(())
    });
    let httpd = c.kubectl_json(&["get", "pod", "httpd"]);
    assert_eq!(
        controller(&httpd).expect("owner")["name"],
        "httpdController"
    );
    wait_status(
        &c,
        "rc",
        "httpdController",
        &[("replicas", 3), ("readyReplicas", 2)],
    );
    let described = squeezed(&c.kubectl_ok(&["describe", "rc", "httpdController"]));
    for expected in [
        "Name: httpdController",
        "Selector: name=httpd",
        "Replicas: 3 current / 3 desired",
        "Pods Status: 2 Running / 1 Waiting / 0 Succeeded / 0 Failed",
    ] {
        assert!(described.contains(expected), "{expected}:\n{described}");
    }
    // Generated names are valid even though the controller's is not a v1 name.
    let names: Vec<String> = live(&pods(&c, "name=httpd")).iter().map(name).collect();
    assert!(
        names
            .iter()
            .filter(|n| *n != "httpd")
            .all(|n| n.starts_with("httpdcontroller-")),
        "{names:?}"
    );
}

#[test]
fn replica_set_with_match_expressions() {
    let (c, _sim) = cluster();
    create(
        &c,
        &json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "front"},
            "spec": {
                "replicas": 2,
                "minReadySeconds": 2,
                "selector": {"matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["web", "api"]},
                    {"key": "canary", "operator": "DoesNotExist"},
                ]},
                "template": {
                    "metadata": {"labels": {"tier": "web", "app": "front"}},
                    "spec": {"containers": [{"name": "web", "image": "img:1"}]},
                },
            },
        })
        .to_string(),
    );
    let pods = ready_pods(&c, "app=front", 2);
    let uid = c.kubectl_json(&["get", "rs", "front"])["metadata"]["uid"].clone();
    for pod in &pods {
        let owner = controller(pod).expect("owner");
        assert_eq!(owner["kind"], "ReplicaSet");
        assert_eq!(owner["apiVersion"], "apps/v1");
        assert_eq!(owner["uid"], uid);
    }
    // Ready at once, available only after minReadySeconds.
    let st = wait_status(&c, "rs", "front", &[("readyReplicas", 2)]);
    assert_eq!(st["fullyLabeledReplicas"], 2, "{st}");
    wait_status(
        &c,
        "rs",
        "front",
        &[("availableReplicas", 2), ("observedGeneration", 1)],
    );

    // A pod labelled canary leaves the selector: released and replaced.
    let canary = name(&pods[0]);
    c.kubectl_ok(&["label", "pod", &canary, "canary=yes"]);
    eventually("canary released and replaced", || {
        let released = controller(&c.kubectl_json(&["get", "pod", &canary])).is_none();
        let selected = live(&self::pods(&c, "app=front,!canary"));
        (released && selected.len() == 2 && selected.iter().all(is_ready)).then_some(())
    });

    let out = c.kubectl_ok(&["scale", "rs", "front", "--replicas=3"]);
    assert_eq!(out.trim(), "replicaset.apps/front scaled");
    ready_pods(&c, "app=front,!canary", 3);
    wait_status(
        &c,
        "rs",
        "front",
        &[
            ("replicas", 3),
            ("availableReplicas", 3),
            ("observedGeneration", 2),
        ],
    );
    let described = squeezed(&c.kubectl_ok(&["describe", "rs", "front"]));
    for expected in [
        "Replicas: 3 current / 3 desired",
        "Pods Status: 3 Running / 0 Waiting / 0 Succeeded / 0 Failed",
        "Selector: !canary,tier in (api,web)",
    ] {
        assert!(described.contains(expected), "{expected}:\n{described}");
    }
}

#[test]
fn failed_creates_are_a_condition_until_they_succeed() {
    let (c, _sim) = cluster();
    create(
        &c,
        "apiVersion: v1\nkind: LimitRange\nmetadata:\n  name: small\nspec:\n  limits:\n  - type: Container\n    max: {cpu: '1'}\n",
    );
    let mut greedy: Value =
        serde_json::from_str(&rc("greedy", 2, json!({"app": "greedy"}), "img:1")).unwrap();
    greedy["spec"]["template"]["spec"]["containers"][0]["resources"] =
        json!({"limits": {"cpu": "2"}});
    create(&c, &greedy.to_string());
    let condition = eventually("a ReplicaFailure condition", || {
        let st = status(&c, "rc", "greedy");
        st["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "ReplicaFailure")
            .cloned()
    });
    assert_eq!(condition["status"], "True");
    assert_eq!(condition["reason"], "FailedCreate");
    assert!(
        condition["message"]
            .as_str()
            .is_some_and(|m| m.contains("maximum cpu usage per Container is 1")),
        "{condition}"
    );
    let described = c.kubectl_ok(&["describe", "rc", "greedy"]);
    assert!(described.contains("FailedCreate"), "{described}");

    c.kubectl_ok(&["delete", "limitrange", "small"]);
    ready_pods(&c, "app=greedy", 2);
    eventually("the condition cleared", || {
        let st = status(&c, "rc", "greedy");
        (st["conditions"].is_null() && st["readyReplicas"] == 2).then_some(())
    });
}

#[test]
fn deleted_controllers_stop_managing() {
    let (c, _sim) = cluster();
    create(&c, &rc("keep", 2, json!({"app": "keep"}), "img:1"));
    create(&c, &rc("gone", 1, json!({"app": "gone"}), "img:1"));
    let pods = ready_pods(&c, "app=keep", 2);
    ready_pods(&c, "app=gone", 1);

    // Orphaning delete: the controller (being deleted, or gone once the garbage collector
    // has orphaned its pods) no longer replaces pods.
    c.kubectl_ok(&["delete", "rc", "keep", "--cascade=orphan", "--wait=false"]);
    eventually("keep deleting", || {
        let out = c.kubectl(&["get", "rc", "keep", "-o", "json"]);
        let gone = !out.status.success();
        let deleting = serde_json::from_slice::<Value>(&out.stdout)
            .is_ok_and(|rc| !rc["metadata"]["deletionTimestamp"].is_null());
        (gone || deleting).then_some(())
    });
    c.kubectl_ok(&["delete", "pod", &name(&pods[0]), "--wait=false"]);
    eventually("the pod gone", || {
        (live(&self::pods(&c, "app=keep")).len() == 1).then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(live(&self::pods(&c, "app=keep")).len(), 1);

    // A plain delete removes the controller.
    c.kubectl_ok(&["delete", "rc", "gone"]);
    let err = c.kubectl_err(&["get", "rc", "gone"]);
    assert!(err.contains("NotFound"), "{err}");
}

/// Watches the pods of a selector during a rolling update: the most live (not terminating)
/// pods and the fewest live Ready ones seen.
struct Monitor {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(usize, usize)>,
}

impl Monitor {
    fn start(c: &Cluster, selector: &str) -> Monitor {
        let stop = Arc::new(AtomicBool::new(false));
        let kubeconfig = c.kubeconfig.clone();
        let selector = selector.to_string();
        let flag = stop.clone();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let kubeconfig = Kubeconfig::read_from(&kubeconfig).unwrap();
                let config =
                    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                        .await
                        .unwrap();
                let client = kube::Client::try_from(config).unwrap();
                let api: Api<Pod> = Api::default_namespaced(client);
                let (store, writer) = reflector::store();
                let mut events = reflector(
                    writer,
                    watcher(api, watcher::Config::default().labels(&selector)),
                )
                .default_backoff()
                .boxed();
                let (mut most_live, mut fewest_ready) = (0, usize::MAX);
                let mut ready = false;
                while !flag.load(Ordering::Relaxed) {
                    let next = tokio::time::timeout(Duration::from_millis(100), events.next());
                    if let Ok(Some(Ok(event))) = next.await {
                        if matches!(event, watcher::Event::InitDone) && !ready {
                            ready = true;
                            let _ = started_tx.send(());
                        }
                        if !ready {
                            continue;
                        }
                        let pods = store.state();
                        let live: Vec<_> = pods
                            .iter()
                            .filter(|p| p.metadata.deletion_timestamp.is_none())
                            .collect();
                        let live_ready = live
                            .iter()
                            .filter(|p| {
                                p.status
                                    .as_ref()
                                    .and_then(|s| s.conditions.as_ref())
                                    .is_some_and(|c| {
                                        c.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                                    })
                            })
                            .count();
                        most_live = most_live.max(live.len());
                        fewest_ready = fewest_ready.min(live_ready);
                    }
                }
                (most_live, fewest_ready)
            })
        });
        started_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the pod watch started");
        Monitor { stop, thread }
    }

    /// Stop; returns (most live pods, fewest ready live pods).
    fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("monitor thread")
    }
}

/// Run hortctl with `args` until it prints a line starting with `line`, then one more
/// second, then kill it (as an interrupted terminal would). Returns what it printed.
fn interrupt_after(c: &Cluster, args: &[&str], line: &str) -> String {
    use std::io::BufRead;
    let mut child = std::process::Command::new(hortator_tests::hortctl_bin())
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run hortctl");
    let stdout = child.stdout.take().expect("stdout");
    let mut printed = String::new();
    for text in std::io::BufReader::new(stdout).lines() {
        let text = text.expect("hortctl output");
        printed.push_str(&text);
        printed.push('\n');
        if text.starts_with(line) {
            std::thread::sleep(Duration::from_secs(1));
            break;
        }
    }
    let _ = child.kill();
    let status = child.wait().expect("wait for hortctl");
    assert!(
        !status.success(),
        "hortctl finished before {line:?}:\n{printed}"
    );
    printed
}

fn hortctl_ok(c: &Cluster, args: &[&str]) -> String {
    let out = c.hortctl(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "hortctl {args:?} failed: {}\nstdout: {stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn hortctl_err(c: &Cluster, args: &[&str]) -> String {
    let out = c.hortctl(args);
    assert!(!out.status.success(), "hortctl {args:?} succeeded");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    err
}

#[test]
fn rolling_update_from_a_v1beta1_file() {
    let (c, _sim) = cluster();
    create(
        &c,
        &rc(
            "frontend",
            3,
            json!({"app": "frontend", "version": "v1"}),
            "img:1",
        ),
    );
    ready_pods(&c, "app=frontend", 3);
    wait_status(&c, "rc", "frontend", &[("readyReplicas", 3)]);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("frontend-v2.json");
    std::fs::write(
        &file,
        json!({
            "id": "frontend-v2", "kind": "ReplicationController", "apiVersion": "v1beta1",
            "desiredState": {
                "replicas": 3, "replicaSelector": {"app": "frontend", "version": "v2"},
                "podTemplate": {
                    "desiredState": {"manifest": {"version": "v1beta1", "id": "frontend",
                        "containers": [{"name": "web", "image": "img:2"}]}},
                    "labels": {"app": "frontend", "version": "v2"},
                },
            },
            "labels": {"app": "frontend"},
        })
        .to_string(),
    )
    .unwrap();
    let file = file.display().to_string();

    // Refusals: same selector, missing arguments, unknown controller.
    let same = dir.path().join("same.yaml");
    std::fs::write(
        &same,
        "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: frontend-same}\nspec:\n  selector: {app: frontend, version: v1}\n  template:\n    metadata: {labels: {app: frontend, version: v1}}\n    spec: {containers: [{name: web, image: 'img:2'}]}\n",
    )
    .unwrap();
    let err = hortctl_err(
        &c,
        &[
            "rolling-update",
            "frontend",
            "-f",
            &same.display().to_string(),
        ],
    );
    assert!(
        err.contains("must specify a matching key with non-equal value in Selector for frontend"),
        "{err}"
    );
    let err = hortctl_err(&c, &["rolling-update", "frontend"]);
    assert!(err.contains("--filename or --image"), "{err}");
    let err = hortctl_err(&c, &["rolling-update", "nope", "-f", &file]);
    assert!(err.contains("\"nope\" not found"), "{err}");
    let err = hortctl_err(
        &c,
        &[
            "rolling-update",
            "frontend",
            "-f",
            &file,
            "--timeout",
            "soon",
        ],
    );
    assert!(err.contains("--timeout"), "{err}");
    let dry = hortctl_ok(
        &c,
        &["rolling-update", "frontend", "-f", &file, "--dry-run"],
    );
    assert_eq!(dry, "Rolling from:\nfrontend\nTo:\nfrontend-v2\n");
    assert!(c.kubectl(&["get", "rc", "frontend-v2"]).status.code() != Some(0));

    let monitor = Monitor::start(&c, "app=frontend");
    let out = hortctl_ok(
        &c,
        &[
            "rolling-update",
            "frontend",
            "-f",
            &file,
            "--update-period",
            "1s",
            "--poll-interval",
            "200ms",
            "--timeout",
            "60s",
        ],
    );
    let (most_live, fewest_ready) = monitor.finish();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "Created frontend-v2",
            "Scaling up frontend-v2 from 0 to 3, scaling down frontend from 3 to 0 (keep 3 pods available, don't exceed 4 pods)",
            "Scaling frontend-v2 up to 1",
            "Scaling frontend down to 2",
            "Scaling frontend-v2 up to 2",
            "Scaling frontend down to 1",
            "Scaling frontend-v2 up to 3",
            "Scaling frontend down to 0",
            "Update succeeded. Deleting frontend",
            "replicationcontroller/frontend rolling updated to \"frontend-v2\"",
        ]
    );
    assert!(most_live <= 4, "{most_live} pods at once");
    assert!(
        fewest_ready >= 3,
        "only {fewest_ready} ready pods at one point"
    );

    let err = c.kubectl_err(&["get", "rc", "frontend"]);
    assert!(err.contains("NotFound"), "{err}");
    let new = c.kubectl_json(&["get", "rc", "frontend-v2"]);
    let annotations = new["metadata"]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert!(
        !annotations.contains_key("kubectl.kubernetes.io/desired-replicas")
            && !annotations.contains_key("kubectl.kubernetes.io/update-source-id"),
        "{annotations:?}"
    );
    assert_eq!(new["spec"]["replicas"], 3);
    let pods = ready_pods(&c, "app=frontend", 3);
    for pod in &pods {
        assert_eq!(pod["spec"]["containers"][0]["image"], "img:2");
        assert_eq!(pod["metadata"]["labels"]["version"], "v2");
        assert_eq!(controller(pod).expect("owner")["name"], "frontend-v2");
    }
}

#[test]
fn rolling_update_to_an_image_keeps_the_name() {
    let (c, _sim) = cluster();
    create(&c, &rc("web", 2, json!({"app": "web"}), "img:1"));
    ready_pods(&c, "app=web", 2);
    wait_status(&c, "rc", "web", &[("readyReplicas", 2)]);

    let dry = hortctl_ok(
        &c,
        &["rolling-update", "web", "--image", "img:2", "--dry-run"],
    );
    assert!(dry.starts_with("Rolling from:\nweb\nTo:\nweb-"), "{dry}");
    // A dry run changes nothing.
    let selector = c.kubectl_json(&["get", "rc", "web"])["spec"]["selector"].clone();
    assert_eq!(selector, json!({"app": "web"}));

    let monitor = Monitor::start(&c, "app=web");
    let out = hortctl_ok(
        &c,
        &[
            "rolling-update",
            "web",
            "--image=img:2",
            "--update-period=1s",
            "--poll-interval=200ms",
            "--timeout=60s",
        ],
    );
    let (most_live, fewest_ready) = monitor.finish();
    let lines: Vec<&str> = out.lines().collect();
    let created = lines[0].strip_prefix("Created ").expect("Created line");
    let hash = created.strip_prefix("web-").expect("web-<hash>");
    assert!(u32::from_str_radix(hash, 16).is_ok(), "{out}");
    for expected in [
        format!(
            "Scaling up {created} from 0 to 2, scaling down web from 2 to 0 (keep 2 pods available, don't exceed 3 pods)"
        ),
        format!("Scaling {created} up to 1"),
        "Scaling web down to 1".to_string(),
        format!("Scaling {created} up to 2"),
        "Scaling web down to 0".to_string(),
        "Update succeeded. Deleting old controller: web".to_string(),
        format!("Renaming {created} to web"),
        "replicationcontroller/web rolling updated".to_string(),
    ] {
        assert!(lines.contains(&expected.as_str()), "{expected}:\n{out}");
    }
    assert!(most_live <= 3, "{most_live} pods at once");
    assert!(
        fewest_ready >= 2,
        "only {fewest_ready} ready pods at one point"
    );

    let err = c.kubectl_err(&["get", "rc", created]);
    assert!(err.contains("NotFound"), "{err}");
    let web = c.kubectl_json(&["get", "rc", "web"]);
    let selector: BTreeMap<String, String> =
        serde_json::from_value(web["spec"]["selector"].clone()).unwrap();
    assert_eq!(
        selector,
        BTreeMap::from([
            ("app".to_string(), "web".to_string()),
            ("deployment".to_string(), hash.to_string()),
        ])
    );
    assert_eq!(
        web["spec"]["template"]["spec"]["containers"][0]["image"],
        "img:2"
    );
    let pods = ready_pods(&c, "app=web", 2);
    eventually("the pods adopted by the renamed controller", || {
        let pods = live(&self::pods(&c, "app=web"));
        pods.iter()
            .all(|p| controller(p).is_some_and(|o| o["uid"] == web["metadata"]["uid"]))
            .then_some(())
    });
    for pod in &pods {
        assert_eq!(pod["spec"]["containers"][0]["image"], "img:2");
        assert_eq!(pod["metadata"]["labels"]["deployment"], hash);
    }
    wait_status(&c, "rc", "web", &[("replicas", 2), ("readyReplicas", 2)]);
}

#[test]
fn interrupted_update_resumes_and_rolls_back() {
    let (c, _sim) = cluster();
    create(
        &c,
        &rc("api", 2, json!({"app": "api", "version": "v1"}), "img:1"),
    );
    ready_pods(&c, "app=api", 2);
    wait_status(&c, "rc", "api", &[("readyReplicas", 2)]);
    let v2 = rc("api-v2", 2, json!({"app": "api", "version": "v2"}), "img:2");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api-v2.json");
    std::fs::write(&file, &v2).unwrap();
    let file = file.display().to_string();

    // Interrupted during the pause after the first step.
    let slow = [
        "rolling-update",
        "api",
        "-f",
        &file,
        "--update-period=5s",
        "--poll-interval=200ms",
    ];
    let out = interrupt_after(&c, &slow, "Scaling api-v2 up to 1");
    assert!(out.starts_with("Created api-v2\n"), "{out}");
    let new = c.kubectl_json(&["get", "rc", "api-v2"]);
    assert_eq!(
        new["metadata"]["annotations"]["kubectl.kubernetes.io/desired-replicas"],
        "2"
    );
    let old = c.kubectl_json(&["get", "rc", "api"]);
    assert_eq!(
        old["metadata"]["annotations"]["kubectl.kubernetes.io/next-controller-id"],
        "api-v2"
    );
    assert_eq!(
        old["metadata"]["annotations"]["kubectl.kubernetes.io/original-replicas"],
        "2"
    );

    // Roll back: the old controller grows back, the new one goes.
    let out = hortctl_ok(
        &c,
        &[
            "rolling-update",
            "api",
            "--rollback",
            "--update-period=200ms",
            "--poll-interval=200ms",
        ],
    );
    assert!(out.contains("Setting \"api\" replicas to 2"), "{out}");
    assert!(
        out.contains("Continuing update with existing controller api."),
        "{out}"
    );
    assert!(out.contains("Update succeeded. Deleting api-v2"), "{out}");
    assert!(c.kubectl(&["get", "rc", "api-v2"]).status.code() != Some(0));
    let pods = ready_pods(&c, "app=api", 2);
    assert!(
        pods.iter()
            .all(|p| p["metadata"]["labels"]["version"] == "v1")
    );

    // Again, interrupted, then resumed by re-running the command.
    interrupt_after(&c, &slow, "Scaling api-v2 up to 1");
    let out = hortctl_ok(
        &c,
        &[
            "rolling-update",
            "api",
            "-f",
            &file,
            "--update-period=200ms",
            "--poll-interval=200ms",
        ],
    );
    assert!(
        out.starts_with("Continuing update with existing controller api-v2."),
        "{out}"
    );
    assert!(
        out.ends_with("replicationcontroller/api rolling updated to \"api-v2\"\n"),
        "{out}"
    );
    let pods = ready_pods(&c, "app=api", 2);
    assert!(
        pods.iter()
            .all(|p| p["metadata"]["labels"]["version"] == "v2")
    );
}
