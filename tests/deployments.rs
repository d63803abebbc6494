//! Deployments end to end, with the real kubectl against `hortator up` and simulated nodes:
//! `kubectl rollout status|history|undo|pause|resume`, `kubectl scale deployment`, the
//! Recreate strategy, and the maxSurge/maxUnavailable bounds watched pod by pod.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use hortator_tests::{Cluster, Sim, eventually};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use serde_json::{Value, json};

const HASH_ALPHABET: &str = "bcdfghjklmnpqrstvwxz2456789";

/// A cluster with two simulated nodes that run pods (Ready at once, no containers).
fn cluster() -> (Cluster, Sim) {
    let c = Cluster::start();
    let sim = Sim::start(&c, &["--nodes", "2", "--heartbeat", "2"]);
    (c, sim)
}

fn deployment(name: &str, replicas: i32, image: &str, strategy: Value) -> String {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": strategy,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
    })
    .to_string()
}

fn rolling(max_surge: Value, max_unavailable: Value) -> Value {
    json!({"type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": max_surge, "maxUnavailable": max_unavailable}})
}

fn create(c: &Cluster, manifest: &str) {
    c.kubectl_ok_stdin(&["create", "-f", "-"], Some(manifest));
}

/// `kubectl rollout status` until it reports success.
fn rollout_status(c: &Cluster, name: &str) {
    let out = c.kubectl_ok(&[
        "rollout",
        "status",
        &format!("deployment/{name}"),
        "--timeout=90s",
    ]);
    assert!(
        out.contains(&format!("deployment \"{name}\" successfully rolled out")),
        "{out}"
    );
}

/// The Deployment's ReplicaSets, oldest first.
fn replica_sets(c: &Cluster, name: &str) -> Vec<Value> {
    let mut items = c.kubectl_json(&["get", "replicasets", "-l", &format!("app={name}")])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    items.sort_by_key(|rs| {
        rs["metadata"]["creationTimestamp"]
            .as_str()
            .map(String::from)
    });
    items
}

/// The pods of the Deployment that are not being deleted.
fn live_pods(c: &Cluster, name: &str) -> Vec<Value> {
    c.kubectl_json(&["get", "pods", "-l", &format!("app={name}")])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect()
}

fn images(pods: &[Value]) -> Vec<String> {
    pods.iter()
        .map(|p| {
            p["spec"]["containers"][0]["image"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// Wait until exactly `n` live pods of the Deployment run `image`, and no other.
fn wait_pods(c: &Cluster, name: &str, n: usize, image: &str) -> Vec<Value> {
    eventually(&format!("{n} pods of {name} running {image}"), || {
        let pods = live_pods(c, name);
        (pods.len() == n
            && images(&pods).iter().all(|i| i == image)
            && pods.iter().all(|p| p["status"]["phase"] == "Running"))
        .then_some(pods)
    })
}

fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object["metadata"]["annotations"][key].as_str()
}

fn revision(object: &Value) -> Option<&str> {
    annotation(object, "deployment.kubernetes.io/revision")
}

fn condition<'a>(d: &'a Value, ty: &str) -> Option<&'a Value> {
    d["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty)
}

fn rs_named<'a>(sets: &'a [Value], name: &str) -> &'a Value {
    sets.iter()
        .find(|rs| rs["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("replica set {name} in {sets:#?}"))
}

/// The history table's rows: (revision, change cause).
fn history(c: &Cluster, name: &str) -> Vec<(String, String)> {
    let out = c.kubectl_ok(&["rollout", "history", &format!("deployment/{name}")]);
    assert!(out.contains(&format!("deployment.apps/{name}")), "{out}");
    let mut lines = out.lines().skip_while(|l| !l.starts_with("REVISION"));
    assert!(
        lines.next().is_some_and(|h| h.contains("CHANGE-CAUSE")),
        "{out}"
    );
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (rev, cause) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            (rev.to_string(), cause.trim().to_string())
        })
        .collect()
}

#[test]
fn rolling_update_history_undo_and_delete() {
    let (c, _sim) = cluster();
    create(
        &c,
        &deployment("web", 3, "nginx:1.26", rolling(json!("25%"), json!("25%"))),
    );
    rollout_status(&c, "web");
    wait_pods(&c, "web", 3, "nginx:1.26");

    // One ReplicaSet named after its template hash, owned by the Deployment.
    let d = c.kubectl_json(&["get", "deployment", "web"]);
    assert_eq!(revision(&d), Some("1"));
    let sets = replica_sets(&c, "web");
    assert_eq!(sets.len(), 1, "{sets:#?}");
    let first = &sets[0];
    let first_name = first["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let hash = first["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        !hash.is_empty() && hash.chars().all(|ch| HASH_ALPHABET.contains(ch)),
        "{hash}"
    );
    assert_eq!(first_name, format!("web-{hash}"));
    assert_eq!(
        first["spec"]["selector"]["matchLabels"]["pod-template-hash"],
        hash.as_str()
    );
    assert_eq!(
        first["spec"]["template"]["metadata"]["labels"]["pod-template-hash"],
        hash.as_str()
    );
    let owner = &first["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Deployment");
    assert_eq!(owner["uid"], d["metadata"]["uid"]);
    assert_eq!(owner["controller"], true);
    assert_eq!(owner["blockOwnerDeletion"], true);
    assert_eq!(revision(first), Some("1"));
    assert_eq!(
        annotation(first, "deployment.kubernetes.io/desired-replicas"),
        Some("3")
    );
    assert_eq!(
        annotation(first, "deployment.kubernetes.io/max-replicas"),
        Some("4")
    );
    let status = &d["status"];
    assert_eq!(status["observedGeneration"], d["metadata"]["generation"]);
    for field in [
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
    ] {
        assert_eq!(status[field], 3, "{field}: {status}");
    }
    let available = condition(&d, "Available").cloned().unwrap_or_default();
    assert_eq!(available["status"], "True");
    assert_eq!(available["reason"], "MinimumReplicasAvailable");
    let progressing = condition(&d, "Progressing").cloned().unwrap_or_default();
    assert_eq!(progressing["status"], "True");
    assert_eq!(progressing["reason"], "NewReplicaSetAvailable");
    let table = c.kubectl_ok(&["get", "deployment", "web"]);
    assert!(table.contains("3/3"), "{table}");

    // A new image: a second ReplicaSet takes over, the first is scaled to zero.
    // The change cause is recorded after the change, as `--record` did: the controller copies
    // it to the new ReplicaSet (and would to whichever ReplicaSet is current).
    c.kubectl_ok(&["set", "image", "deployment/web", "web=nginx:1.27"]);
    c.kubectl_ok(&[
        "annotate",
        "deployment/web",
        "kubernetes.io/change-cause=image 1.27",
    ]);
    rollout_status(&c, "web");
    wait_pods(&c, "web", 3, "nginx:1.27");
    let sets = replica_sets(&c, "web");
    assert_eq!(sets.len(), 2, "{sets:#?}");
    let old = rs_named(&sets, &first_name);
    assert_eq!(old["spec"]["replicas"], 0);
    let second = sets
        .iter()
        .find(|rs| rs["metadata"]["name"] != first_name.as_str())
        .cloned()
        .unwrap_or_default();
    let second_name = second["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(second["spec"]["replicas"], 3);
    assert_eq!(revision(&second), Some("2"));
    assert_eq!(
        annotation(&second, "kubernetes.io/change-cause"),
        Some("image 1.27")
    );
    assert_eq!(
        revision(&c.kubectl_json(&["get", "deployment", "web"])),
        Some("2")
    );
    assert_eq!(
        history(&c, "web"),
        [
            ("1".to_string(), "<none>".to_string()),
            ("2".to_string(), "image 1.27".to_string())
        ]
    );
    let one = c.kubectl_ok(&["rollout", "history", "deployment/web", "--revision=1"]);
    assert!(one.contains("with revision #1"), "{one}");
    assert!(one.contains("nginx:1.26"), "{one}");

    // Undo: back to the first template, which its ReplicaSet serves again as revision 3.
    let out = c.kubectl_ok(&["rollout", "undo", "deployment/web"]);
    assert!(out.contains("deployment.apps/web rolled back"), "{out}");
    rollout_status(&c, "web");
    wait_pods(&c, "web", 3, "nginx:1.26");
    let d = c.kubectl_json(&["get", "deployment", "web"]);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.26"
    );
    assert_eq!(revision(&d), Some("3"));
    let sets = replica_sets(&c, "web");
    assert_eq!(
        sets.len(),
        2,
        "no new ReplicaSet for an old template: {sets:#?}"
    );
    let reused = rs_named(&sets, &first_name);
    assert_eq!(revision(reused), Some("3"));
    assert_eq!(
        annotation(reused, "deployment.kubernetes.io/revision-history"),
        Some("1")
    );
    assert_eq!(reused["spec"]["replicas"], 3);
    assert_eq!(rs_named(&sets, &second_name)["spec"]["replicas"], 0);
    let revisions: Vec<String> = history(&c, "web").into_iter().map(|(r, _)| r).collect();
    assert_eq!(revisions, ["2", "3"]);

    // Undo to a given revision.
    c.kubectl_ok(&["rollout", "undo", "deployment/web", "--to-revision=2"]);
    rollout_status(&c, "web");
    wait_pods(&c, "web", 3, "nginx:1.27");
    assert_eq!(
        revision(&c.kubectl_json(&["get", "deployment", "web"])),
        Some("4")
    );
    assert_eq!(
        revision(rs_named(&replica_sets(&c, "web"), &second_name)),
        Some("4")
    );
    let err = c.kubectl_err(&["rollout", "undo", "deployment/web", "--to-revision=9"]);
    assert!(err.contains("unable to find specified revision 9"), "{err}");

    c.kubectl_ok(&["delete", "deployment", "web"]);
    let err = c.kubectl_err(&["get", "deployment", "web"]);
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
}

#[test]
fn pause_resume_scale_and_history_limit() {
    let (c, _sim) = cluster();
    create(
        &c,
        &deployment("api", 2, "nginx:1.26", rolling(json!(1), json!(0))),
    );
    c.kubectl_ok(&[
        "patch",
        "deployment/api",
        "-p",
        r#"{"spec":{"revisionHistoryLimit":1}}"#,
    ]);
    rollout_status(&c, "api");
    wait_pods(&c, "api", 2, "nginx:1.26");

    // Paused: the template change is observed but not rolled out.
    c.kubectl_ok(&["rollout", "pause", "deployment/api"]);
    eventually("the Progressing condition to say paused", || {
        let d = c.kubectl_json(&["get", "deployment", "api"]);
        (condition(&d, "Progressing")?["reason"] == "DeploymentPaused").then_some(())
    });
    c.kubectl_ok(&["set", "image", "deployment/api", "web=nginx:1.27"]);
    eventually("the paused generation to be observed", || {
        let d = c.kubectl_json(&["get", "deployment", "api"]);
        (d["status"]["observedGeneration"] == d["metadata"]["generation"]).then_some(())
    });
    // Scaling still works while paused, on the current ReplicaSet.
    c.kubectl_ok(&["scale", "deployment", "api", "--replicas=4"]);
    wait_pods(&c, "api", 4, "nginx:1.26");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(replica_sets(&c, "api").len(), 1);

    // Resumed: the new template rolls out to all four replicas.
    c.kubectl_ok(&["rollout", "resume", "deployment/api"]);
    rollout_status(&c, "api");
    wait_pods(&c, "api", 4, "nginx:1.27");
    assert_eq!(replica_sets(&c, "api").len(), 2);
    let d = c.kubectl_json(&["get", "deployment", "api"]);
    assert_eq!(revision(&d), Some("2"));

    // A paused Deployment is not rolled back.
    c.kubectl_ok(&["rollout", "pause", "deployment/api"]);
    let err = c.kubectl_err(&["rollout", "undo", "deployment/api"]);
    assert!(err.contains("cannot rollback a paused deployment"), "{err}");
    c.kubectl_ok(&["rollout", "resume", "deployment/api"]);

    // Scale down, then up: the rollout status follows.
    c.kubectl_ok(&["scale", "deployment", "api", "--replicas=1"]);
    rollout_status(&c, "api");
    wait_pods(&c, "api", 1, "nginx:1.27");
    c.kubectl_ok(&["scale", "deployment/api", "--replicas=3"]);
    rollout_status(&c, "api");
    wait_pods(&c, "api", 3, "nginx:1.27");
    let d = c.kubectl_json(&["get", "deployment", "api"]);
    assert_eq!(d["status"]["replicas"], 3);
    assert_eq!(d["status"]["availableReplicas"], 3);

    // A third template: with revisionHistoryLimit 1, only one old ReplicaSet stays.
    c.kubectl_ok(&["set", "image", "deployment/api", "web=nginx:1.28"]);
    rollout_status(&c, "api");
    wait_pods(&c, "api", 3, "nginx:1.28");
    let sets = eventually("old history pruned", || {
        let sets = replica_sets(&c, "api");
        (sets.len() == 2).then_some(sets)
    });
    let revisions: Vec<Option<&str>> = sets.iter().map(revision).collect();
    assert_eq!(revisions, [Some("2"), Some("3")]);
}

#[test]
fn recreate_replaces_all_pods_at_once() {
    let (c, _sim) = cluster();
    create(
        &c,
        &deployment("batch", 3, "nginx:1.26", json!({"type": "Recreate"})),
    );
    rollout_status(&c, "batch");
    wait_pods(&c, "batch", 3, "nginx:1.26");

    let watch = PodWatch::start(&c, "batch");
    c.kubectl_ok(&["set", "image", "deployment/batch", "web=nginx:1.27"]);
    rollout_status(&c, "batch");
    wait_pods(&c, "batch", 3, "nginx:1.27");
    let seen = watch.stop();
    assert!(
        !seen.mixed,
        "old and new pods ran at the same time under Recreate"
    );
    let sets = replica_sets(&c, "batch");
    assert_eq!(sets.len(), 2);
    assert_eq!(sets[0]["spec"]["replicas"], 0);
    assert_eq!(sets[1]["spec"]["replicas"], 3);
}

#[test]
fn rolling_updates_stay_within_surge_and_unavailability() {
    let (c, _sim) = cluster();
    // maxSurge 1, maxUnavailable 0 (integers) and 50%/25% of 4 (surge 2, unavailable 1).
    let cases = [
        ("tight", json!(1), json!(0), 5, 4),
        ("loose", json!("50%"), json!("25%"), 6, 3),
    ];
    for (name, surge, unavailable, _, _) in &cases {
        let mut manifest: Value = serde_json::from_str(&deployment(
            name,
            4,
            "nginx:1.26",
            rolling(surge.clone(), unavailable.clone()),
        ))
        .unwrap_or_default();
        // Pods count as available one second after they are ready: the rollout takes steps.
        manifest["spec"]["minReadySeconds"] = json!(1);
        create(&c, &manifest.to_string());
    }
    for (name, ..) in &cases {
        rollout_status(&c, name);
        wait_pods(&c, name, 4, "nginx:1.26");
    }
    let watches: Vec<PodWatch> = cases
        .iter()
        .map(|(name, ..)| PodWatch::start(&c, name))
        .collect();
    for (name, ..) in &cases {
        c.kubectl_ok(&[
            "set",
            "image",
            &format!("deployment/{name}"),
            "web=nginx:1.27",
        ]);
    }
    for (name, ..) in &cases {
        rollout_status(&c, name);
        wait_pods(&c, name, 4, "nginx:1.27");
    }
    for ((name, _, _, most, fewest_ready), watch) in cases.iter().zip(watches) {
        let seen = watch.stop();
        assert!(
            seen.events > 8,
            "{name}: too few pod events watched: {seen:?}"
        );
        assert!(
            seen.most_live <= *most,
            "{name}: {} live pods, more than replicas + maxSurge = {most}",
            seen.most_live
        );
        assert!(
            seen.fewest_ready >= *fewest_ready,
            "{name}: only {} ready pods, fewer than replicas - maxUnavailable = {fewest_ready}",
            seen.fewest_ready
        );
        // The surge was used: the rollout is not one pod at a time when it may go faster.
        assert!(seen.most_live > 4, "{name}: never surged: {seen:?}");
    }
}

#[test]
fn stalled_rollout_exceeds_its_progress_deadline() {
    let (c, _sim) = cluster();
    let mut manifest: Value = serde_json::from_str(&deployment(
        "stuck",
        2,
        "nginx:1.26",
        rolling(json!("25%"), json!("25%")),
    ))
    .unwrap_or_default();
    // No node matches: the pods stay Pending and the rollout never progresses.
    manifest["spec"]["progressDeadlineSeconds"] = json!(2);
    manifest["spec"]["template"]["spec"]["nodeSelector"] = json!({"nowhere": "true"});
    create(&c, &manifest.to_string());
    let out = c.kubectl(&["rollout", "status", "deployment/stuck", "--timeout=60s"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("deployment \"stuck\" exceeded its progress deadline"),
        "{stderr}"
    );
    let d = c.kubectl_json(&["get", "deployment", "stuck"]);
    let progressing = condition(&d, "Progressing").cloned().unwrap_or_default();
    assert_eq!(progressing["status"], "False");
    assert_eq!(progressing["reason"], "ProgressDeadlineExceeded");
    let available = condition(&d, "Available").cloned().unwrap_or_default();
    assert_eq!(available["reason"], "MinimumReplicasUnavailable");
}

/// What a [`PodWatch`] saw.
#[derive(Debug)]
struct Seen {
    /// Pod events received.
    events: i64,
    /// Most pods at once not being deleted.
    most_live: i64,
    /// Fewest Ready pods at once not being deleted.
    fewest_ready: i64,
    /// Whether pods of two templates were ever live at once.
    mixed: bool,
}

/// Watches one Deployment's pods through the API and keeps the extremes of their counts
/// after every event.
struct PodWatch {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Seen>,
}

impl PodWatch {
    fn start(c: &Cluster, app: &str) -> PodWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicI64::new(0));
        let kubeconfig = c.kubeconfig.clone();
        let selector = format!("app={app}");
        let thread = std::thread::spawn({
            let stop = stop.clone();
            let started = started.clone();
            move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(watch(kubeconfig, selector, stop, started))
            }
        });
        eventually("the pod watch to start", || {
            (started.load(Ordering::SeqCst) > 0).then_some(())
        });
        PodWatch { stop, thread }
    }

    fn stop(self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("watch thread")
    }
}

async fn watch(
    kubeconfig: std::path::PathBuf,
    selector: String,
    stop: Arc<AtomicBool>,
    started: Arc<AtomicI64>,
) -> Seen {
    let kubeconfig = Kubeconfig::read_from(&kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config");
    let client = kube::Client::try_from(config).expect("client");
    let pods: Api<Pod> = Api::default_namespaced(client);
    let mut stream = watcher(pods, watcher::Config::default().labels(&selector)).boxed();
    // Pod name → (live, ready, template hash).
    let mut state: HashMap<String, (bool, bool, String)> = HashMap::new();
    let mut seen = Seen {
        events: 0,
        most_live: 0,
        fewest_ready: i64::MAX,
        mixed: false,
    };
    let mut listed = false;
    while !stop.load(Ordering::SeqCst) {
        let Ok(next) = tokio::time::timeout(Duration::from_millis(100), stream.next()).await else {
            continue;
        };
        let Some(Ok(event)) = next else {
            continue;
        };
        match event {
            watcher::Event::Init => state.clear(),
            watcher::Event::InitApply(pod) | watcher::Event::Apply(pod) => {
                let name = pod.metadata.name.clone().unwrap_or_default();
                let live = pod.metadata.deletion_timestamp.is_none();
                let ready = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
                let hash = pod
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("pod-template-hash"))
                    .cloned()
                    .unwrap_or_default();
                state.insert(name, (live, ready, hash));
            }
            watcher::Event::Delete(pod) => {
                state.remove(&pod.metadata.name.clone().unwrap_or_default());
            }
            watcher::Event::InitDone => {
                listed = true;
                started.store(1, Ordering::SeqCst);
            }
        }
        if !listed {
            continue;
        }
        seen.events += 1;
        let live: Vec<&(bool, bool, String)> = state.values().filter(|(live, ..)| *live).collect();
        let ready = live.iter().filter(|(_, ready, _)| *ready).count() as i64;
        seen.most_live = seen.most_live.max(live.len() as i64);
        seen.fewest_ready = seen.fewest_ready.min(ready);
        if let Some((.., first)) = live.first() {
            seen.mixed |= live.iter().any(|(.., hash)| hash != first);
        }
    }
    seen
}
