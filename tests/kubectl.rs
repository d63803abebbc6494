//! The real kubectl (v1.32) against `hortator up`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use hortator_tests::{Cluster, eventually};
use serde_json::Value;

const POD_YAML: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels:
    app: web
    tier: frontend
spec:
  containers:
  - name: nginx
    image: busybox:1
    ports:
    - containerPort: 80
"#;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn version_and_api_resources() {
    let c = Cluster::start();
    let out = c.kubectl_ok(&["version"]);
    assert!(out.contains("Server Version: v1.33.0"), "{out}");
    let out = c.kubectl_ok(&["api-resources"]);
    for needle in [
        "pods",
        "po",
        "services",
        "svc",
        "replicationcontrollers",
        "rc",
        "nodes",
        "no",
        "namespaces",
        "ns",
        "events",
        "ev",
        "configmaps",
        "cm",
        "secrets",
        "endpoints",
        "deployments",
        "deploy",
        "replicasets",
        "rs",
        "leases",
        "coordination.k8s.io/v1",
        "apps/v1",
    ] {
        assert!(
            out.split_whitespace().any(|w| w == needle),
            "api-resources lacks {needle}:\n{out}"
        );
    }
    let ns = c.kubectl_ok(&["get", "ns"]);
    for name in ["default", "kube-system", "kube-node-lease"] {
        assert!(ns.contains(name), "{ns}");
    }
}

#[test]
fn create_get_describe_delete_pod() {
    let c = Cluster::start();
    let out = c.kubectl_ok_stdin(&["create", "-f", "-"], Some(POD_YAML));
    assert_eq!(out.trim(), "pod/web created");
    let err = String::from_utf8_lossy(
        &c.kubectl_stdin(&["create", "-f", "-"], Some(POD_YAML))
            .stderr,
    )
    .into_owned();
    assert!(err.contains("Error from server (AlreadyExists): error when creating \"STDIN\": pods \"web\" already exists"), "{err}");

    let table = c.kubectl_ok(&["get", "pods"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert!(table.lines().nth(1).unwrap().starts_with("web "), "{table}");
    assert!(
        table.contains("0/1") && table.contains("Pending"),
        "{table}"
    );
    let wide = c.kubectl_ok(&["get", "po", "-o", "wide"]);
    let header: Vec<&str> = wide.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        &header[..7],
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    );

    let pod = json(&c.kubectl_ok(&["get", "pod", "web", "-o", "json"]));
    assert_eq!(pod["metadata"]["namespace"], "default");
    assert_eq!(pod["spec"]["restartPolicy"], "Always");
    assert_eq!(
        pod["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    assert_eq!(pod["status"]["phase"], "Pending");
    assert!(
        pod["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| u.len() == 36)
    );
    assert!(pod["metadata"]["resourceVersion"].as_str().is_some());
    let yaml = c.kubectl_ok(&["get", "pod", "web", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: Pod") && yaml.contains("name: web"),
        "{yaml}"
    );

    let described = c.kubectl_ok(&["describe", "pod", "web"]);
    assert!(
        described.contains("Name:") && described.contains("web"),
        "{described}"
    );
    assert!(described.contains("app=web"), "{described}");
    assert!(described.contains("busybox:1"), "{described}");

    let err = c.kubectl_err(&["get", "pod", "nope"]);
    assert!(
        err.contains("Error from server (NotFound): pods \"nope\" not found"),
        "{err}"
    );

    let out = c.kubectl_ok(&["delete", "pod", "web"]);
    assert_eq!(out.trim(), "pod \"web\" deleted");
    let out = c.kubectl_ok(&["get", "pods"]);
    assert!(out.trim().is_empty(), "{out}");
}

#[test]
fn apply_twice_patches() {
    let c = Cluster::start();
    let out = c.kubectl_ok_stdin(&["apply", "-f", "-"], Some(POD_YAML));
    assert_eq!(out.trim(), "pod/web created");
    let out = c.kubectl_ok_stdin(&["apply", "-f", "-"], Some(POD_YAML));
    assert_eq!(out.trim(), "pod/web unchanged");
    let changed = POD_YAML
        .replace("image: busybox:1", "image: busybox:2")
        .replace("tier: frontend", "tier: backend");
    let out = c.kubectl_ok_stdin(&["apply", "-f", "-"], Some(&changed));
    assert_eq!(out.trim(), "pod/web configured");
    let pod = json(&c.kubectl_ok(&["get", "pod", "web", "-o", "json"]));
    assert_eq!(pod["spec"]["containers"][0]["image"], "busybox:2");
    assert_eq!(pod["metadata"]["labels"]["tier"], "backend");
    assert!(
        pod["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );
    assert_eq!(pod["spec"]["containers"].as_array().unwrap().len(), 1);
    // Server-side apply too.
    let out = c.kubectl_ok_stdin(
        &["apply", "--server-side", "-f", "-"],
        Some(&changed.replace("web\n  labels", "ssa\n  labels")),
    );
    assert!(out.contains("pod/ssa serverside-applied"), "{out}");
}

#[test]
fn selectors_namespaces_labels_annotations() {
    let c = Cluster::start();
    c.kubectl_ok_stdin(
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n"),
    );
    for (name, ns, env, tier) in [
        ("a", "default", "production", "frontend"),
        ("b", "default", "qa", "backend"),
        ("c", "default", "dev", "frontend"),
        ("d", "prod", "production", "backend"),
    ] {
        let yaml = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    environment: {env}\n    tier: {tier}\nspec:\n  containers:\n  - name: c\n    image: busybox\n"
        );
        c.kubectl_ok_stdin(&["create", "-f", "-"], Some(&yaml));
    }
    let names = |args: &[&str]| -> Vec<String> {
        let mut all = vec![
            "get",
            "pods",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}{\" \"}{end}",
        ];
        all.extend_from_slice(args);
        let mut v: Vec<String> = c
            .kubectl_ok(&all)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(&[
            "-l",
            "environment in (production, qa),tier notin (frontend)"
        ]),
        ["b"]
    );
    assert_eq!(names(&["-l", "environment!=qa"]), ["a", "c"]);
    assert_eq!(names(&["-l", "tier=frontend"]), ["a", "c"]);
    assert_eq!(names(&["-l", "!tier"]), Vec::<String>::new());
    assert_eq!(names(&["-A", "-l", "environment=production"]), ["a", "d"]);
    assert_eq!(names(&["-n", "prod"]), ["d"]);
    assert_eq!(names(&["--field-selector", "metadata.name=b"]), ["b"]);
    assert_eq!(
        names(&["--field-selector", "status.phase=Pending,metadata.name!=a"]),
        ["b", "c"]
    );
    let all = c.kubectl_ok(&["get", "pods", "-A"]);
    assert!(
        all.lines().next().unwrap().starts_with("NAMESPACE"),
        "{all}"
    );
    let err = c.kubectl_err(&["get", "pods", "--field-selector", "spec.bogus=1"]);
    assert!(
        err.contains("field label not supported: spec.bogus"),
        "{err}"
    );

    assert_eq!(
        c.kubectl_ok(&["label", "pod", "a", "owner=me"]).trim(),
        "pod/a labeled"
    );
    assert_eq!(names(&["-l", "owner"]), ["a"]);
    assert_eq!(
        c.kubectl_ok(&["label", "pod", "a", "owner-"]).trim(),
        "pod/a unlabeled"
    );
    assert_eq!(names(&["-l", "owner"]), Vec::<String>::new());
    let err = c.kubectl_err(&["label", "pod", "a", "tier=other"]);
    assert!(err.contains("already has a value"), "{err}");
    c.kubectl_ok(&["label", "pod", "a", "tier=other", "--overwrite"]);
    assert_eq!(
        c.kubectl_ok(&["annotate", "pod", "b", "note=hello"]).trim(),
        "pod/b annotated"
    );
    let pod = json(&c.kubectl_ok(&["get", "pod", "b", "-o", "json"]));
    assert_eq!(pod["metadata"]["annotations"]["note"], "hello");
    let shown = c.kubectl_ok(&["get", "pods", "--show-labels"]);
    assert!(shown.contains("environment=qa,tier=backend"), "{shown}");
}

#[test]
fn legacy_seed_documents() {
    let c = Cluster::start();
    let out = c.kubectl_ok(&["create", "-f", &Cluster::example("seed/httpd-service.json")]);
    assert!(out.contains("httpd created"), "{out}");
    let svc = c.kubectl_ok(&["get", "service"]);
    let header: Vec<&str> = svc.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    assert!(
        svc.contains("httpd") && svc.contains("10.254.0.1") && svc.contains("80/TCP"),
        "{svc}"
    );
    let wide = c.kubectl_ok(&["get", "svc", "-o", "wide"]);
    assert!(wide.contains("name=httpd"), "{wide}");

    let out = c.kubectl_ok(&["create", "-f", &Cluster::example("seed/httpd-pod.json")]);
    assert!(out.contains("httpd created"), "{out}");
    let pod = json(&c.kubectl_ok(&["get", "pod", "httpd", "-o", "json"]));
    assert_eq!(pod["spec"]["containers"][0]["name"], "master");
    assert_eq!(pod["spec"]["containers"][0]["ports"][0]["hostPort"], 80);
    assert_eq!(pod["spec"]["restartPolicy"], "Always");
    assert_eq!(pod["metadata"]["labels"]["name"], "httpd");

    let out = c.kubectl_ok(&[
        "create",
        "-f",
        &Cluster::example("seed/httpd-controller.json"),
    ]);
    assert!(out.contains("httpdController created"), "{out}");
    let rc = c.kubectl_ok(&["get", "replicationcontrollers"]);
    let header: Vec<&str> = rc.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]);
    assert!(rc.contains("httpdController") && rc.contains(" 3 "), "{rc}");
    let described = c.kubectl_ok(&["describe", "rc", "httpdController"]);
    assert!(described.contains("name=httpd"), "{described}");
    assert!(
        described.contains("registry-host:5000/httpd:latest"),
        "{described}"
    );

    assert_eq!(
        c.kubectl_ok(&["scale", "rc", "httpdController", "--replicas=5"])
            .trim(),
        "replicationcontroller/httpdController scaled"
    );
    let rc = json(&c.kubectl_ok(&["get", "rc", "httpdController", "-o", "json"]));
    assert_eq!(rc["spec"]["replicas"], 5);
    assert_eq!(rc["metadata"]["generation"], 2);

    // `minions` is the 2014 name of nodes.
    let out = c.kubectl(&["get", "minions"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn validation_errors_are_status() {
    let c = Cluster::start();
    let bad = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: Bad_Name\nspec:\n  containers:\n  - name: c\n";
    let err = String::from_utf8_lossy(&c.kubectl_stdin(&["create", "-f", "-"], Some(bad)).stderr)
        .into_owned();
    assert!(
        err.contains("(Invalid)") || err.contains("is invalid"),
        "{err}"
    );
    assert!(
        err.contains("metadata.name: Invalid value: \"Bad_Name\""),
        "{err}"
    );
    assert!(
        err.contains("spec.containers[0].image: Required value"),
        "{err}"
    );
    let unknown = POD_YAML.replace("  containers:", "  bogusField: 1\n  containers:");
    let err = String::from_utf8_lossy(
        &c.kubectl_stdin(&["create", "-f", "-"], Some(&unknown))
            .stderr,
    )
    .into_owned();
    assert!(err.contains("unknown field \"spec.bogusField\""), "{err}");
    // Bodies that are not objects, and patches that would turn the object into something else,
    // are 400s, not crashes.
    let list = c.dir.path().join("list.json");
    std::fs::write(&list, "[]").unwrap();
    let err = c.kubectl_err(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/pods",
        "-f",
        list.to_str().unwrap(),
    ]);
    assert!(err.contains("must be a JSON object"), "{err}");
    c.kubectl_ok_stdin(&["create", "-f", "-"], Some(POD_YAML));
    let err = c.kubectl_err(&["patch", "pod", "web", "--type", "merge", "-p", "\"x\""]);
    assert!(
        err.contains("must be a JSON object") || err.contains("BadRequest"),
        "{err}"
    );
    let err = c.kubectl_err(&[
        "patch",
        "pod",
        "web",
        "--type",
        "json",
        "-p",
        "[{\"op\":\"replace\",\"path\":\"\",\"value\":7}]",
    ]);
    assert!(!err.is_empty());
    // A patch cannot change the UID (an immutable field); the UID in an update is a
    // precondition on the stored object. Both as kube-apiserver answers them.
    let err = c.kubectl_err(&[
        "patch",
        "pod",
        "web",
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"uid":"not-this-pod","labels":{"x":"y"}}}"#,
    ]);
    assert!(
        err.contains(r#"The Pod "web" is invalid: metadata.uid: Invalid value: "not-this-pod": field is immutable"#),
        "{err}"
    );
    let mut replaced = c.kubectl_json(&["get", "pod", "web"]);
    replaced["metadata"]["uid"] = serde_json::json!("not-this-pod");
    replaced["metadata"]["labels"]["x"] = serde_json::json!("y");
    let out = c.kubectl_stdin(&["replace", "-f", "-"], Some(&replaced.to_string()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Error from server (Conflict)")
            && err.contains(r#"Operation cannot be fulfilled on pods "web": Precondition failed: UID in precondition: not-this-pod"#),
        "{err}"
    );
    assert!(
        c.kubectl_json(&["get", "pod", "web"])["metadata"]["labels"]
            .get("x")
            .is_none()
    );
    assert!(
        c.log().lines().all(|l| !l.contains("panicked")),
        "{}",
        c.log()
    );
    c.kubectl_ok(&["delete", "pod", "web"]);
    // Nothing was stored by the failed creates.
    assert!(
        c.kubectl_ok(&["get", "pods", "-o", "name"])
            .trim()
            .is_empty()
    );
}

#[test]
fn deployments_replicasets_configmaps_secrets_events() {
    let c = Cluster::start();
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: busybox\n        image: busybox\n";
    c.kubectl_ok_stdin(&["create", "-f", "-"], Some(deployment));
    let d = c.kubectl_ok(&["get", "deploy"]);
    let header: Vec<&str> = d.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    c.kubectl_ok(&["scale", "deployment", "web", "--replicas=4"]);
    let dep = json(&c.kubectl_ok(&["get", "deployment", "web", "-o", "json"]));
    assert_eq!(dep["spec"]["replicas"], 4);
    assert_eq!(dep["spec"]["strategy"]["type"], "RollingUpdate");
    c.kubectl_ok_stdin(
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: \"1\"\n"),
    );
    assert!(c.kubectl_ok(&["get", "cm"]).contains("cfg"));
    c.kubectl_ok_stdin(
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  p: x\n"),
    );
    let s = json(&c.kubectl_ok(&["get", "secret", "s", "-o", "json"]));
    assert_eq!(s["data"]["p"], "eA==");
    assert_eq!(s["type"], "Opaque");
    let all = c.kubectl_ok(&["get", "all"]);
    assert!(all.contains("deployment.apps/web"), "{all}");
    let ev = "apiVersion: v1\nkind: Event\nmetadata:\n  name: e1\ninvolvedObject:\n  kind: Pod\n  name: p\n  namespace: default\nreason: Scheduled\nmessage: hello\ntype: Normal\n";
    c.kubectl_ok_stdin(&["create", "-f", "-"], Some(ev));
    let events = c.kubectl_ok(&["get", "events"]);
    assert!(
        events.contains("Scheduled") && events.contains("pod/p") && events.contains("hello"),
        "{events}"
    );
}

/// kubectl's typed commands (create namespace|configmap|secret|deployment|service, run) send
/// their objects in Kubernetes' protobuf encoding.
#[test]
fn typed_commands_send_protobuf() {
    let c = Cluster::start();
    let out = c.kubectl_ok(&["create", "namespace", "team-a"]);
    assert_eq!(out.trim(), "namespace/team-a created");
    let err = c.kubectl_err(&["create", "namespace", "team-a"]);
    assert!(
        err.contains(r#"Error from server (AlreadyExists): namespaces "team-a" already exists"#),
        "{err}"
    );

    let ns = ["-n", "team-a"];
    c.kubectl_ok(
        &[
            &[
                "create",
                "configmap",
                "app-config",
                "--from-literal=mode=fast",
                "--from-literal=empty=",
            ][..],
            &ns,
        ]
        .concat(),
    );
    let cm = c.kubectl_json(&[&["get", "configmap", "app-config"][..], &ns].concat());
    assert_eq!(cm["data"], serde_json::json!({"empty": "", "mode": "fast"}));

    c.kubectl_ok(
        &[
            &[
                "create",
                "secret",
                "generic",
                "creds",
                "--from-literal=password=s3cr3t",
            ][..],
            &ns,
        ]
        .concat(),
    );
    let secret = c.kubectl_json(&[&["get", "secret", "creds"][..], &ns].concat());
    assert_eq!(secret["data"]["password"], "czNjcjN0");
    assert_eq!(secret["type"], "Opaque");

    c.kubectl_ok(
        &[
            &[
                "create",
                "deployment",
                "web",
                "--image=busybox",
                "--replicas=0",
                "--port=80",
            ][..],
            &ns,
        ]
        .concat(),
    );
    let web = c.kubectl_json(&[&["get", "deployment", "web"][..], &ns].concat());
    assert_eq!(web["spec"]["replicas"], 0, "an explicit 0 is kept: {web}");
    assert_eq!(
        web["spec"]["template"]["spec"]["containers"][0]["ports"],
        serde_json::json!([{"containerPort": 80, "protocol": "TCP"}])
    );
    assert_eq!(
        web["spec"]["strategy"],
        serde_json::json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    );

    let out = c.kubectl_ok(&[
        "run",
        "shell",
        "--image=busybox",
        "--restart=Never",
        "--labels=app=shell",
        "--env=A=1",
        "--port=8080",
        "--",
        "sleep",
        "3600",
    ]);
    assert_eq!(out.trim(), "pod/shell created");
    let pod = c.kubectl_json(&["get", "pod", "shell"]);
    assert_eq!(pod["spec"]["restartPolicy"], "Never");
    assert_eq!(
        pod["spec"]["containers"][0]["args"],
        serde_json::json!(["sleep", "3600"])
    );
    assert_eq!(
        pod["spec"]["containers"][0]["env"],
        serde_json::json!([{"name": "A", "value": "1"}])
    );
    assert_eq!(pod["metadata"]["labels"]["app"], "shell");

    c.kubectl_ok(&["expose", "pod", "shell", "--port=80", "--target-port=8080"]);
    let svc = c.kubectl_json(&["get", "service", "shell"]);
    assert!(
        svc["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .starts_with("10.254."),
        "{svc}"
    );
    assert_eq!(svc["spec"]["selector"], serde_json::json!({"app": "shell"}));
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);

    c.kubectl_ok(
        &[
            &["create", "service", "nodeport", "web", "--tcp=80:8080"][..],
            &ns,
        ]
        .concat(),
    );
    let svc = c.kubectl_json(&[&["get", "service", "web"][..], &ns].concat());
    let node_port = svc["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
    assert!((30000..=32767).contains(&node_port), "{svc}");
}

#[test]
fn watch_streams_changes() {
    let c = Cluster::start();
    c.kubectl_ok_stdin(&["create", "-f", "-"], Some(POD_YAML));
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args(["get", "pods", "-w", "--output-watch-events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let expect = |needle: &str, seen: &mut Vec<String>| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if seen.iter().any(|l: &String| l.contains(needle)) {
                return;
            }
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
                seen.push(line);
            }
        }
        panic!("no watch line with {needle:?}: {seen:?}");
    };
    expect("ADDED", &mut seen);
    c.kubectl_ok(&["label", "pod", "web", "x=y"]);
    expect("MODIFIED", &mut seen);
    c.kubectl_ok(&["delete", "pod", "web", "--wait=false"]);
    expect("DELETED", &mut seen);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn data_survives_restart() {
    let c = Cluster::start();
    c.kubectl_ok_stdin(&["create", "-f", "-"], Some(POD_YAML));
    c.kubectl_ok(&["create", "-f", &Cluster::example("seed/httpd-service.json")]);
    let before = json(&c.kubectl_ok(&["get", "pod", "web", "-o", "json"]));
    let dir = c.into_dir();
    let c = Cluster::start_in(dir);
    let after = json(&c.kubectl_ok(&["get", "pod", "web", "-o", "json"]));
    assert_eq!(before, after);
    // The allocator was rebuilt: the next service does not reuse 10.254.0.1.
    let svc =
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: second\nspec:\n  ports:\n  - port: 81\n";
    c.kubectl_ok_stdin(&["create", "-f", "-"], Some(svc));
    let second = json(&c.kubectl_ok(&["get", "svc", "second", "-o", "json"]));
    assert_ne!(second["spec"]["clusterIP"], "10.254.0.1");
}

/// A `kind: List` goes through kubectl's client-side validation (against /openapi/v2), then
/// each item through the server's strict field validation.
#[test]
fn list_documents_with_default_validation() {
    let c = Cluster::start();
    let list = serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "listed"}, "data": {"a": "1"}},
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "listed"},
             "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
        ],
    })
    .to_string();
    let out = c.kubectl_ok_stdin(&["create", "-f", "-"], Some(&list));
    assert!(
        out.contains("configmap/listed created") && out.contains("pod/listed created"),
        "{out}"
    );
    let out = c.kubectl_ok_stdin(&["apply", "-f", "-"], Some(&list.replace("\"1\"", "\"2\"")));
    assert!(out.contains("configmap/listed configured"), "{out}");
    assert_eq!(
        c.kubectl_json(&["get", "configmap", "listed"])["data"]["a"],
        "2"
    );

    let bad = serde_json::json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fine"}},
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "odd"},
             "spec": {"bogusField": 1, "containers": [{"name": "c", "image": "busybox"}]}},
        ],
    })
    .to_string();
    let out = c.kubectl_stdin(&["create", "-f", "-"], Some(&bad));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(r#"unknown field "spec.bogusField""#), "{err}");
    assert!(
        c.kubectl(&["get", "pod", "odd"])
            .stderr
            .starts_with(b"Error from server (NotFound)")
    );
}

/// `kubectl apply --server-side`: field managers, conflicts, --force-conflicts, and fields a
/// manager stops applying are removed.
#[test]
fn server_side_apply_tracks_field_managers() {
    let c = Cluster::start();
    c.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=busybox",
        "--replicas=1",
    ]);
    let created = c.kubectl_json(&["get", "deployment", "web", "--show-managed-fields"]);
    let entries = created["metadata"]["managedFields"].as_array().unwrap();
    let create_entry = entries
        .iter()
        .find(|e| e["manager"] == "kubectl-create")
        .unwrap_or_else(|| panic!("{created}"));
    assert_eq!(create_entry["operation"], "Update");
    assert!(
        create_entry["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_some(),
        "{created}"
    );
    // The deployment controller's revision annotation is its own.
    assert!(
        entries
            .iter()
            .all(|e| e["manager"] == "kubectl-create" || e["manager"] == "hortator-controllers"),
        "{created}"
    );

    let config = |replicas: u32, labels: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels:\n{labels}spec:\n  replicas: {replicas}\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n      - name: busybox\n        image: busybox\n"
        )
    };
    let labels = "    app: web\n    team: blue\n";
    let out = c.kubectl_stdin(
        &["apply", "--server-side", "-f", "-"],
        Some(&config(3, labels)),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(r#"Apply failed with 1 conflict: conflict with "kubectl-create" using apps/v1: .spec.replicas"#),
        "{err}"
    );
    assert_eq!(
        c.kubectl_json(&["get", "deployment", "web"])["spec"]["replicas"],
        1
    );

    let out = c.kubectl_ok_stdin(
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        Some(&config(3, labels)),
    );
    assert!(
        out.contains("deployment.apps/web serverside-applied"),
        "{out}"
    );
    let applied = c.kubectl_json(&["get", "deployment", "web", "--show-managed-fields"]);
    assert_eq!(applied["spec"]["replicas"], 3);
    assert_eq!(applied["metadata"]["labels"]["team"], "blue");
    let entries = applied["metadata"]["managedFields"].as_array().unwrap();
    let apply_entry = entries
        .iter()
        .find(|e| e["manager"] == "kubectl")
        .expect("kubectl's entry");
    assert_eq!(apply_entry["operation"], "Apply");
    let create_entry = entries
        .iter()
        .find(|e| e["manager"] == "kubectl-create")
        .unwrap();
    assert!(
        create_entry["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_none(),
        "{create_entry}"
    );

    // The team label is no longer applied: it goes.
    c.kubectl_ok_stdin(
        &["apply", "--server-side", "-f", "-"],
        Some(&config(3, "    app: web\n")),
    );
    let labels = &c.kubectl_json(&["get", "deployment", "web"])["metadata"]["labels"];
    assert_eq!(labels, &serde_json::json!({"app": "web"}));

    // kubectl scale is another manager: the next apply of a different count conflicts again.
    c.kubectl_ok(&["scale", "deployment", "web", "--replicas=5"]);
    let err = String::from_utf8_lossy(
        &c.kubectl_stdin(
            &["apply", "--server-side", "-f", "-"],
            Some(&config(3, "    app: web\n")),
        )
        .stderr,
    )
    .into_owned();
    assert!(
        err.contains(r#"Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas"#),
        "{err}"
    );
    // Writes through a subresource are entries of their own: kubectl scale's (its manager is
    // "kubectl", from the User-Agent) through `scale`, the deployment controller's status
    // through `status`.
    let entries = eventually("a status entry of the controllers", || {
        let object = c.kubectl_json(&["get", "deployment", "web", "--show-managed-fields"]);
        let entries = object["metadata"]["managedFields"].as_array()?.clone();
        entries
            .iter()
            .any(|e| e["manager"] == "hortator-controllers" && e["subresource"] == "status")
            .then_some(entries)
    });
    let scale = entries
        .iter()
        .find(|e| e["manager"] == "kubectl" && e["operation"] == "Update")
        .expect("kubectl scale's entry");
    assert_eq!(scale["subresource"], "scale");
    assert_eq!(
        scale["fieldsV1"],
        serde_json::json!({"f:spec": {"f:replicas": {}}})
    );
    let status = entries
        .iter()
        .find(|e| e["subresource"] == "status")
        .unwrap();
    assert_eq!(status["operation"], "Update");
    assert_eq!(
        status["fieldsV1"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["f:status"],
        "{status}"
    );
}

#[test]
fn server_side_apply_through_the_status_subresource() {
    let c = Cluster::start();
    // No scheduler serves "manual": nothing else writes this pod's status.
    let manifest = |condition: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: gated\nspec:\n  schedulerName: manual\n  containers:\n  - name: c\n    image: busybox\nstatus:\n  conditions:\n  - type: {condition}\n    status: \"True\"\n"
        )
    };
    c.kubectl_ok_stdin(&["create", "-f", "-"], Some(&manifest("example.com/gate")));
    let out = c.kubectl_ok_stdin(
        &[
            "apply",
            "--server-side",
            "--subresource=status",
            "--field-manager=gatekeeper",
            "-f",
            "-",
        ],
        Some(&manifest("example.com/gate")),
    );
    assert!(out.contains("pod/gated serverside-applied"), "{out}");
    let pod = c.kubectl_json(&["get", "pod", "gated", "--show-managed-fields"]);
    assert!(
        pod["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "example.com/gate"),
        "{pod}"
    );
    let entry = pod["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "gatekeeper")
        .expect("the applier's entry")
        .clone();
    assert_eq!(entry["operation"], "Apply");
    assert_eq!(entry["subresource"], "status");
    assert_eq!(
        entry["fieldsV1"]["f:status"]["f:conditions"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        [r#"k:{"type":"example.com/gate"}"#],
        "{entry}"
    );
    let out = c.kubectl_stdin(
        &[
            "apply",
            "--server-side",
            "--subresource=status",
            "--field-manager=other",
            "-f",
            "-",
        ],
        Some(&manifest("example.com/gate").replace("\"True\"", "\"False\"")),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(r#"conflict with "gatekeeper" with subresource "status" using v1: .status.conditions[type="example.com/gate"].status"#),
        "{err}"
    );
}
