//! The plugin platform end to end: the real `hortator up` with real components,
//! driven by the real kubectl and hortctl.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hortator_tests::{Cluster, build_example_plugin, tail, target_dir};

fn artifact(name: &str) -> String {
    Path::new(hortator_plugin_runtime::builtin::ARTIFACT_DIR)
        .join(format!("{name}.wasm"))
        .display()
        .to_string()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn pod(name: &str, labels: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\nspec:\n{extra_spec}  containers:\n  - name: c\n    image: busybox\n"
    )
}

/// Poll `check` until it holds (file-change reloads are asynchronous).
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn builtin_chain_denies_with_kubectl_messages() {
    let cluster = Cluster::start();
    // namespace-lifecycle: no creates in a missing namespace.
    let out = cluster.kubectl_stdin(
        &["create", "-n", "ghost", "-f", "-"],
        Some(&pod("p", "", "")),
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            "Error from server (NotFound): error when creating \"STDIN\": admission webhook \"namespace-lifecycle\" denied the request: namespaces \"ghost\" not found"
        ),
        "{}",
        stderr(&out)
    );
    // pod-security: baseline forbids host namespaces and privileged containers.
    let privileged = pod(
        "priv",
        "",
        "  hostNetwork: true\n  initContainers:\n  - name: i\n    image: busybox\n    securityContext:\n      privileged: true\n",
    );
    let out = cluster.kubectl_stdin(&["create", "-f", "-"], Some(&privileged));
    let message = stderr(&out);
    assert!(
        message.contains("Error from server (Forbidden): error when creating \"STDIN\": admission webhook \"pod-security\" denied the request: violates PodSecurity \"baseline:latest\": host namespaces (hostNetwork=true), privileged (container \"i\" must not set securityContext.privileged=true)"),
        "{message}"
    );
    // ... unless the namespace allows it.
    cluster.kubectl_ok_stdin(
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: infra\n  labels:\n    pod-security.kubernetes.io/enforce: privileged\n"),
    );
    cluster.kubectl_ok_stdin(&["create", "-n", "infra", "-f", "-"], Some(&privileged));

    // limit-ranger: defaults from a LimitRange, and its maximum.
    cluster.kubectl_ok_stdin(
        &["create", "-f", "-"],
        Some(
            "apiVersion: v1\nkind: LimitRange\nmetadata:\n  name: limits\nspec:\n  limits:\n  - type: Container\n    default: {cpu: 500m, memory: 128Mi}\n    defaultRequest: {cpu: 100m, memory: 64Mi}\n    max: {cpu: '1'}\n",
        ),
    );
    assert!(cluster.kubectl_ok(&["get", "limits"]).contains("limits"));
    cluster.kubectl_ok_stdin(&["create", "-f", "-"], Some(&pod("defaulted", "", "")));
    let resources = cluster.kubectl_ok(&[
        "get",
        "pod",
        "defaulted",
        "-o",
        "jsonpath={.spec.containers[0].resources}",
    ]);
    let resources: serde_json::Value = serde_json::from_str(&resources).unwrap();
    assert_eq!(resources["limits"]["cpu"], "500m", "{resources}");
    assert_eq!(resources["requests"]["memory"], "64Mi", "{resources}");
    let qos = cluster.kubectl_ok(&[
        "get",
        "pod",
        "defaulted",
        "-o",
        "jsonpath={.status.qosClass}",
    ]);
    assert_eq!(qos, "Burstable");
    let annotations = cluster.kubectl_ok(&[
        "get",
        "pod",
        "defaulted",
        "-o",
        "jsonpath={.metadata.annotations}",
    ]);
    assert!(
        annotations.contains("kubernetes.io/limit-ranger"),
        "{annotations}"
    );
    let greedy = pod("greedy", "", "").replace(
        "    image: busybox\n",
        "    image: busybox\n    resources:\n      limits: {cpu: '2'}\n",
    );
    let message = stderr(&cluster.kubectl_stdin(&["create", "-f", "-"], Some(&greedy)));
    assert!(
        message.contains("Error from server (Forbidden)")
            && message.contains("admission webhook \"limit-ranger\" denied the request")
            && message.contains("maximum cpu usage per Container is 1, but limit is 2"),
        "{message}"
    );

    // namespace-lifecycle: nothing new in a terminating namespace. A config map with a
    // finalizer keeps the namespace terminating (the namespace controller cannot finish).
    cluster.kubectl_ok_stdin(
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: leaving\n"),
    );
    cluster.kubectl_ok_stdin(
        &["create", "-n", "leaving", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers: [example.com/hold]\n"),
    );
    cluster.kubectl_ok(&["delete", "namespace", "leaving", "--wait=false"]);
    let message = stderr(&cluster.kubectl_stdin(
        &["create", "-n", "leaving", "-f", "-"],
        Some(&pod("late", "", "")),
    ));
    assert!(
        message.contains("admission webhook \"namespace-lifecycle\" denied the request: unable to create new content in namespace leaving because it is being terminated"),
        "{message}"
    );

    // Each plugin load was recorded as an Event.
    let events = cluster.kubectl_ok(&["get", "events", "-o", "json"]);
    for point in [
        "admission/limit-ranger",
        "admission/namespace-lifecycle",
        "admission/pod-security",
    ] {
        assert!(events.contains(point), "no event for {point}");
    }
    let list = cluster.hortctl(&["plugin", "list"]);
    let table = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success(), "{}", stderr(&list));
    assert!(table.starts_with("POINT"), "{table}");
    for name in ["limit-ranger", "namespace-lifecycle", "pod-security"] {
        assert!(
            table.contains(&format!("admission/{name}"))
                && table.contains(&format!("builtin:{name}")),
            "{table}"
        );
    }
}

#[test]
fn failure_policies_apply_and_the_server_keeps_serving() {
    let config = |with_slow: bool| {
        let chaos = artifact("test_admission_chaos");
        let mut text = format!(
            "[[plugins.admission]]\nname = \"flaky\"\nmodule = \"{chaos}\"\nfailure-policy = \"fail-open\"\nconfig = {{ mode = \"trap\" }}\n\n\
             [[plugins.admission]]\nname = \"hog\"\nmodule = \"{chaos}\"\nfailure-policy = \"fail-open\"\nmemory-mb = 8\nconfig = {{ mode = \"memory-bomb\" }}\n\n\
             [[plugins.admission]]\nname = \"bad-output\"\nmodule = \"{chaos}\"\nphase = \"mutating\"\nfailure-policy = \"fail-open\"\nconfig = {{ mode = \"malformed\" }}\n"
        );
        if with_slow {
            text.push_str(&format!(
                "\n[[plugins.admission]]\nname = \"slow\"\nmodule = \"{chaos}\"\ntimeout-ms = 50\nconfig = {{ mode = \"loop\" }}\n"
            ));
        }
        text
    };
    let cluster = Cluster::start_with_config(&config(true));
    let configmap = |name: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  a: b\n")
    };
    for i in 0..3 {
        let out = cluster.kubectl_stdin(&["create", "-f", "-"], Some(&configmap(&format!("c{i}"))));
        let message = stderr(&out);
        assert!(!out.status.success());
        assert!(
            message.contains("Error from server (InternalError): error when creating \"STDIN\": Internal error occurred: failed calling webhook \"slow\": plugin timed out after 50ms"),
            "{message}"
        );
    }
    // The operator drops the slow plugin; the file change reloads the chain.
    std::fs::write(cluster.dir.path().join("hortator.toml"), config(false)).unwrap();
    eventually("the reload without \"slow\"", || {
        !String::from_utf8_lossy(&cluster.hortctl(&["plugin", "list"]).stdout)
            .contains("admission/slow")
    });
    let out = cluster.kubectl_stdin(&["create", "-f", "-"], Some(&configmap("after")));
    let message = stderr(&out);
    assert!(out.status.success(), "{message}");
    for expected in [
        "Warning: admission plugin \"flaky\" was skipped (fail-open): plugin trapped",
        "chaos: trap requested",
        "Warning: admission plugin \"hog\" was skipped (fail-open): plugin exceeded its memory limit of 8388608 bytes",
        "Warning: admission plugin \"bad-output\" was skipped (fail-open): plugin returned malformed output",
    ] {
        assert!(
            message.contains(expected),
            "missing {expected:?} in {message}"
        );
    }
    let list = String::from_utf8_lossy(&cluster.hortctl(&["plugin", "list", "-o", "json"]).stdout)
        .into_owned();
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let flaky = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["point"] == "admission/flaky")
        .unwrap();
    assert!(
        flaky["active"]["metrics"]["traps"].as_u64().unwrap() >= 4,
        "{flaky}"
    );
    // The failing calls are summed up in Events.
    eventually("PluginCallsFailed events", || {
        let events = cluster.kubectl_ok(&["get", "events"]);
        events.contains("PluginCallsFailed")
            && events.contains("calls to plugin admission/flaky failed")
            && events.contains("trapped")
            && events.contains("calls to plugin admission/hog failed")
            && events.contains("exceeded the memory limit")
    });
    // A configuration error keeps the running plugins, and says where.
    std::fs::write(
        cluster.dir.path().join("hortator.toml"),
        "[[plugins.admission]]\nmodule = \"builtin:nope\"\n",
    )
    .unwrap();
    eventually("the rejected reload in the log", || {
        cluster.log().contains("plugins.admission[0].module")
    });
    assert!(
        String::from_utf8_lossy(&cluster.hortctl(&["plugin", "list"]).stdout)
            .contains("admission/flaky")
    );
    cluster.kubectl_ok(&["get", "configmap", "after"]);
}

/// The same component with a custom section appended: same behaviour, other digest.
fn rebuilt(bytes: &[u8], mark: &str) -> Vec<u8> {
    let name = b"hortator-test";
    let mut content = vec![name.len() as u8];
    content.extend_from_slice(name);
    content.extend_from_slice(mark.as_bytes());
    let mut out = bytes.to_vec();
    out.push(0);
    out.push(content.len() as u8);
    out.extend(content);
    out
}

#[test]
fn hortctl_swap_under_traffic_fails_no_request() {
    let chaos = artifact("test_admission_chaos");
    let cluster = Cluster::start_with_config(&format!(
        "[[plugins.admission]]\nname = \"gate\"\nmodule = \"{chaos}\"\nphase = \"mutating\"\nconfig = {{ mode = \"annotate\", value = \"seen\" }}\n"
    ));
    let work = tempfile::tempdir().unwrap();
    let original = std::fs::read(&chaos).unwrap();
    let versions: Vec<PathBuf> = (0..2)
        .map(|i| {
            let path = work.path().join(format!("gate-v{i}.wasm"));
            std::fs::write(&path, rebuilt(&original, &format!("v{i}"))).unwrap();
            path
        })
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let created = Arc::new(AtomicUsize::new(0));
    let url = cluster.url.clone();
    let traffic = {
        let (stop, created) = (stop.clone(), created.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let config = kube::Config::new(url.parse().unwrap());
                let client = kube::Client::try_from(config).unwrap();
                let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
                    kube::Api::namespaced(client, "default");
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(
                        serde_json::json!({"metadata": {"name": format!("t{i}")}}),
                    )
                    .unwrap();
                    let stored = api
                        .create(&Default::default(), &cm)
                        .await
                        .expect("no request fails during swaps");
                    let mark = stored
                        .metadata
                        .annotations
                        .unwrap_or_default()
                        .remove("chaos.hortator.io/mark");
                    assert_eq!(
                        mark.as_deref(),
                        Some("seen"),
                        "every request went through a plugin"
                    );
                    created.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            });
        })
    };
    for round in 0..10 {
        let file = versions[round % 2].display().to_string();
        let out = cluster.hortctl(&["plugin", "swap", "admission/gate", &file]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            text.starts_with("admission/gate: now running test-admission-chaos"),
            "{text}"
        );
    }
    // A broken module is refused; the old one keeps serving.
    let broken = work.path().join("broken.wasm");
    std::fs::write(&broken, &original[..original.len() / 3]).unwrap();
    let out = cluster.hortctl(&[
        "plugin",
        "swap",
        "admission/gate",
        &broken.display().to_string(),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("the previous plugin stays active"),
        "{}",
        stderr(&out)
    );
    let out = cluster.hortctl(&[
        "plugin",
        "swap",
        "admission/gate",
        &artifact("test_future_sdk"),
    ]);
    assert!(
        stderr(&out).contains("hortator:plugin@0.2.0") && stderr(&out).contains("0.1.0"),
        "{}",
        stderr(&out)
    );
    let before = created.load(Ordering::Relaxed);
    eventually("traffic after the failed swaps", || {
        created.load(Ordering::Relaxed) > before + 5
    });
    stop.store(true, Ordering::Relaxed);
    traffic.join().expect("traffic thread");
    assert!(
        created.load(Ordering::Relaxed) > 20,
        "too little traffic to mean anything"
    );

    let list = String::from_utf8_lossy(&cluster.hortctl(&["plugin", "list", "-o", "json"]).stdout)
        .into_owned();
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let gate = &list["items"][0];
    assert_eq!(gate["point"], "admission/gate");
    assert_eq!(gate["active"]["source"], "upload:gate-v1.wasm", "{gate}");
    assert!(
        gate["lastError"].as_str().unwrap().contains("0.2.0"),
        "{gate}"
    );
    let missing = cluster.hortctl(&["plugin", "swap", "build-strategy/none", &chaos]);
    assert!(
        stderr(&missing).contains("no plugin point \"build-strategy/none\" is configured"),
        "{}",
        stderr(&missing)
    );
    let events = cluster.kubectl_ok(&["get", "events", "-o", "json"]);
    assert!(events.contains("PluginLoadFailed"), "{}", tail(&events, 30));
}

/// Build the Python example with componentize-py; returns the component's path.
fn build_python_example() -> PathBuf {
    let out_dir = target_dir().join("examples");
    std::fs::create_dir_all(&out_dir).unwrap();
    let output = out_dir.join("require_labels_py.wasm");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let result = Command::new("componentize-py")
        .current_dir(&repo)
        .args([
            "-d",
            "sdk/wit",
            "-w",
            "admission",
            "componentize",
            "app",
            "-p",
            "examples/plugins/require-labels-py",
            "-o",
        ])
        .arg(&output)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("componentize-py must be installed (tests/run.sh installs it from PyPI)");
    assert!(
        result.status.success(),
        "componentize-py failed: {}",
        stderr(&result)
    );
    output
}

#[test]
fn example_plugins_in_rust_and_python() {
    let rust = build_example_plugin("require-labels");
    let python = build_python_example();
    let cluster = Cluster::start_with_config(&format!(
        "[[plugins.admission]]\nmodule = \"{}\"\nconfig = {{ labels = [\"app\"] }}\n\n\
         [[plugins.admission]]\nmodule = \"{}\"\nmemory-mb = 256\ntimeout-ms = 2000\nconfig = {{ labels = [\"app\", \"team\"] }}\n",
        rust.display(),
        python.display()
    ));
    let message =
        stderr(&cluster.kubectl_stdin(&["create", "-f", "-"], Some(&pod("bare", "", ""))));
    assert!(
        message.contains("Error from server (Forbidden): error when creating \"STDIN\": admission webhook \"require-labels\" denied the request: missing required label(s): app"),
        "{message}"
    );
    let message =
        stderr(&cluster.kubectl_stdin(&["create", "-f", "-"], Some(&pod("half", "app: web", ""))));
    assert!(
        message.contains("admission webhook \"require-labels-py\" denied the request: missing required label(s): team"),
        "{message}"
    );
    cluster.kubectl_ok_stdin(
        &["create", "-f", "-"],
        Some(&pod("full", "app: web, team: a", "")),
    );
    // The Python policy also guards updates.
    let message = stderr(&cluster.kubectl(&["label", "pod", "full", "team-"]));
    assert!(
        message.contains("missing required label(s): team"),
        "{message}"
    );
    let list = String::from_utf8_lossy(&cluster.hortctl(&["plugin", "list"]).stdout).into_owned();
    assert!(
        list.contains("require-labels-py") && list.contains("admission/require-labels "),
        "{list}"
    );
}
