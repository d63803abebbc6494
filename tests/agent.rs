//! The node agent on the real Docker engine, driven with the real kubectl: pods become
//! containers behind a pause container, with their own address, volumes, environment,
//! restarts, probes, logs and exec, and leave nothing behind when deleted.

use std::process::Command;

use hortator_tests::{Cluster, busybox_image, eventually};
use serde_json::{Value, json};

fn create(cluster: &Cluster, object: &Value) {
    cluster.kubectl_ok_stdin(&["create", "-f", "-"], Some(&object.to_string()));
}

fn pod(name: &str, containers: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"containers": containers, "terminationGracePeriodSeconds": 2},
    })
}

fn container(name: &str, script: &str) -> Value {
    json!({"name": name, "image": busybox_image(), "command": ["sh", "-c", script]})
}

fn get_pod(cluster: &Cluster, name: &str) -> Value {
    cluster.kubectl_json(&["get", "pod", name])
}

fn wait_running(cluster: &Cluster, name: &str) -> Value {
    eventually(&format!("pod {name} running and ready"), || {
        let pod = get_pod(cluster, name);
        let ready = pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        (pod["status"]["phase"] == "Running" && ready).then_some(pod)
    })
}

fn container_status<'a>(pod: &'a Value, name: &str) -> &'a Value {
    pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|list| list.iter().find(|c| c["name"] == name))
        .unwrap_or(&Value::Null)
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Engine ids of a pod's containers, sandbox included.
fn engine_containers(uid: &str) -> Vec<String> {
    docker(&[
        "ps",
        "-aq",
        "--no-trunc",
        "--filter",
        &format!("label=io.hortator.pod.uid={uid}"),
    ])
    .split_whitespace()
    .map(str::to_string)
    .collect()
}

#[test]
fn two_containers_share_localhost_and_an_empty_dir() {
    let cluster = Cluster::start_with_agent();
    let mut spec = pod(
        "pair",
        json!([
            container(
                "web",
                "echo hello-from-web > /www/index.html; exec httpd -f -p 8080 -h /www"
            ),
            container(
                "client",
                "until wget -q -O /shared/fetched http://127.0.0.1:8080/; do sleep 0.2; done; cat /shared/fetched; echo note > /shared/note; exec sleep 3600"
            ),
        ]),
    );
    spec["spec"]["containers"][0]["volumeMounts"] =
        json!([{"name": "www", "mountPath": "/www"}, {"name": "shared", "mountPath": "/shared"}]);
    spec["spec"]["containers"][1]["volumeMounts"] =
        json!([{"name": "shared", "mountPath": "/shared"}]);
    spec["spec"]["volumes"] =
        json!([{"name": "www", "emptyDir": {}}, {"name": "shared", "emptyDir": {}}]);
    create(&cluster, &spec);
    let running = wait_running(&cluster, "pair");
    let ip = running["status"]["podIP"].as_str().unwrap().to_string();
    let agent = cluster.agent.as_ref().unwrap();
    let prefix: String = agent
        .cluster_cidr
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".");
    assert!(
        ip.starts_with(&prefix),
        "pod IP {ip} is outside {}",
        agent.cluster_cidr
    );
    assert_eq!(running["status"]["hostIP"], "127.0.0.1");
    eventually("the client fetched the page over localhost", || {
        let logs = cluster.kubectl(&["logs", "pair", "-c", "client"]);
        String::from_utf8_lossy(&logs.stdout)
            .contains("hello-from-web")
            .then_some(())
    });
    // The web container sees the client's file through the shared emptyDir.
    let note = cluster.kubectl_ok(&["exec", "pair", "-c", "web", "--", "cat", "/shared/note"]);
    assert_eq!(note.trim(), "note");
    // From the node, the pod is reachable at its own address.
    let page = Command::new("busybox")
        .args(["wget", "-q", "-O", "-", &format!("http://{ip}:8080/")])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&page.stdout).trim(),
        "hello-from-web"
    );
    // One sandbox and two containers, all labelled with the pod's uid.
    let uid = running["metadata"]["uid"].as_str().unwrap();
    assert_eq!(engine_containers(uid).len(), 3);
    let statuses = running["status"]["containerStatuses"].as_array().unwrap();
    for status in statuses {
        assert!(
            status["containerID"]
                .as_str()
                .unwrap()
                .starts_with("docker://")
        );
        assert_eq!(status["restartCount"], 0);
        assert!(status["state"]["running"]["startedAt"].is_string());
    }
    assert!(running["status"]["startTime"].is_string());
}

#[test]
fn service_variables_and_value_from() {
    let cluster = Cluster::start_with_agent();
    create(
        &cluster,
        &json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "httpd"},
            "spec": {"selector": {"name": "httpd"}, "ports": [{"port": 80, "protocol": "TCP"}]},
        }),
    );
    create(
        &cluster,
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
                "data": {"mode": "fast", "file.txt": "from-configmap"}}),
    );
    create(
        &cluster,
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
                "stringData": {"password": "s3cret"}}),
    );
    let service_ip = cluster.kubectl_ok(&[
        "get",
        "service",
        "httpd",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    let mut spec = pod("env", json!([container("main", "exec sleep 3600")]));
    spec["spec"]["containers"][0]["env"] = json!([
        {"name": "STORAGE", "value": "local"},
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
        {"name": "MY_POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "GREETING", "value": "pod $(MY_POD) in $(STORAGE)"},
    ]);
    spec["spec"]["containers"][0]["volumeMounts"] = json!([
        {"name": "config", "mountPath": "/config"},
        {"name": "secret", "mountPath": "/secret"},
    ]);
    spec["spec"]["volumes"] = json!([
        {"name": "config", "configMap": {"name": "settings"}},
        {"name": "secret", "secret": {"secretName": "creds"}},
    ]);
    create(&cluster, &spec);
    let running = wait_running(&cluster, "env");
    let env = cluster.kubectl_ok(&["exec", "env", "--", "env"]);
    let vars: Vec<&str> = env.lines().collect();
    for expected in [
        format!("HTTPD_SERVICE_HOST={service_ip}"),
        "HTTPD_SERVICE_PORT=80".to_string(),
        format!("HTTPD_PORT=tcp://{service_ip}:80"),
        format!("HTTPD_PORT_80_TCP=tcp://{service_ip}:80"),
        "HTTPD_PORT_80_TCP_PROTO=tcp".to_string(),
        "HTTPD_PORT_80_TCP_PORT=80".to_string(),
        format!("HTTPD_PORT_80_TCP_ADDR={service_ip}"),
        "STORAGE=local".to_string(),
        "MODE=fast".to_string(),
        "PASSWORD=s3cret".to_string(),
        "MY_POD=env".to_string(),
        format!("MY_IP={}", running["status"]["podIP"].as_str().unwrap()),
        "GREETING=pod env in local".to_string(),
    ] {
        assert!(
            vars.contains(&expected.as_str()),
            "{expected} missing from:\n{env}"
        );
    }
    let file = cluster.kubectl_ok(&[
        "exec",
        "env",
        "--",
        "cat",
        "/config/file.txt",
        "/secret/password",
    ]);
    assert_eq!(file, "from-configmaps3cret");
    // Volumes from config maps and secrets are read-only.
    let out = cluster.kubectl(&["exec", "env", "--", "touch", "/config/x"]);
    assert!(!out.status.success());
}

#[test]
fn crash_loop_backs_off_and_keeps_the_previous_logs() {
    let cluster = Cluster::start_with_agent();
    create(
        &cluster,
        &pod("crash", json!([container("main", "echo attempt; exit 3")])),
    );
    let pod = eventually("CrashLoopBackOff after restarts", || {
        let pod = get_pod(&cluster, "crash");
        let status = container_status(&pod, "main");
        (status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
            && status["restartCount"].as_i64() >= Some(1))
        .then_some(pod)
    });
    let status = container_status(&pod, "main");
    assert_eq!(status["lastState"]["terminated"]["exitCode"], 3);
    assert_eq!(status["lastState"]["terminated"]["reason"], "Error");
    assert_eq!(pod["status"]["phase"], "Running");
    let table = cluster.kubectl_ok(&["get", "pods"]);
    assert!(table.contains("CrashLoopBackOff"), "{table}");
    let previous = cluster.kubectl_ok(&["logs", "crash", "--previous"]);
    assert_eq!(previous.trim(), "attempt");
    let events = cluster.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=crash",
    ]);
    assert!(events.contains("BackOff"), "{events}");
    // Dead instances are collected: the sandbox, the newest and the previous one remain.
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_string();
    eventually("a second restart", || {
        let pod = get_pod(&cluster, "crash");
        (container_status(&pod, "main")["restartCount"].as_i64() >= Some(2)).then_some(())
    });
    assert!(
        engine_containers(&uid).len() <= 3,
        "{:?}",
        engine_containers(&uid)
    );
    // restartPolicy Never: the pod fails for good.
    let mut never = pod_spec_never();
    never["metadata"]["name"] = json!("once");
    create(&cluster, &never);
    eventually("pod once Failed", || {
        (get_pod(&cluster, "once")["status"]["phase"] == "Failed").then_some(())
    });
}

fn pod_spec_never() -> Value {
    let mut spec = pod("once", json!([container("main", "exit 1")]));
    spec["spec"]["restartPolicy"] = json!("Never");
    spec
}

#[test]
fn failing_liveness_probe_restarts_and_readiness_gates() {
    let cluster = Cluster::start_with_agent();
    let mut spec = pod(
        "probed",
        json!([container(
            "main",
            "touch /tmp/healthy; sleep 3; rm /tmp/healthy; exec sleep 3600"
        )]),
    );
    spec["spec"]["containers"][0]["livenessProbe"] = json!({
        "exec": {"command": ["cat", "/tmp/healthy"]},
        "periodSeconds": 1, "failureThreshold": 2,
    });
    create(&cluster, &spec);
    eventually("a liveness restart", || {
        let pod = get_pod(&cluster, "probed");
        (container_status(&pod, "main")["restartCount"].as_i64() >= Some(1)).then_some(())
    });
    let events = cluster.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=probed",
    ]);
    assert!(events.contains("Liveness probe failed"), "{events}");

    let mut gated = pod(
        "gated",
        json!([container("main", "exec httpd -f -p 8080 -h /tmp")]),
    );
    gated["spec"]["containers"][0]["readinessProbe"] = json!({
        "httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 1,
    });
    create(&cluster, &gated);
    eventually("gated running but not ready", || {
        let pod = get_pod(&cluster, "gated");
        let status = container_status(&pod, "main");
        (pod["status"]["phase"] == "Running" && status["ready"] == false).then_some(())
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    let pod = get_pod(&cluster, "gated");
    assert_eq!(
        container_status(&pod, "main")["ready"],
        false,
        "ready without /ready"
    );
    cluster.kubectl_ok(&["exec", "gated", "--", "touch", "/tmp/ready"]);
    wait_running(&cluster, "gated");
}

#[test]
fn logs_follow_and_exec_with_stdin() {
    let cluster = Cluster::start_with_agent();
    create(
        &cluster,
        &pod(
            "talker",
            json!([container(
                "main",
                "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.2; done"
            )]),
        ),
    );
    wait_running(&cluster, "talker");
    let tail = cluster.kubectl_ok(&["logs", "talker", "--tail", "1"]);
    assert_eq!(tail.lines().count(), 1, "{tail}");
    // Follow until a later line appears, then stop.
    let mut follow = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args(["logs", "-f", "talker"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = std::io::BufReader::new(follow.stdout.take().unwrap());
    let mut seen = Vec::new();
    use std::io::BufRead;
    for _ in 0..30 {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push(line);
    }
    let _ = follow.kill();
    let _ = follow.wait();
    assert_eq!(seen.len(), 30, "logs -f ended early: {seen:?}");
    let out = cluster.kubectl_ok_stdin(
        &["exec", "-i", "talker", "--", "sh", "-c", "tr a-z A-Z"],
        Some("shout\n"),
    );
    assert_eq!(out, "SHOUT\n");
    let failed = cluster.kubectl(&["exec", "talker", "--", "sh", "-c", "exit 7"]);
    assert_eq!(failed.status.code(), Some(7));
    let err = cluster.kubectl_err(&["logs", "talker", "-c", "nope"]);
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn restarted_agent_adopts_running_pods() {
    let cluster = Cluster::start_with_agent();
    create(
        &cluster,
        &pod("survivor", json!([container("main", "exec sleep 3600")])),
    );
    let before = wait_running(&cluster, "survivor");
    let uid = before["metadata"]["uid"].as_str().unwrap().to_string();
    let ids_before = engine_containers(&uid);
    assert_eq!(ids_before.len(), 2);
    let cluster = cluster.kill_and_restart();
    // Give the new agent time to sync; nothing may be recreated or restarted.
    std::thread::sleep(std::time::Duration::from_secs(5));
    let after = wait_running(&cluster, "survivor");
    let mut ids_after = engine_containers(&uid);
    let mut expected = ids_before.clone();
    ids_after.sort();
    expected.sort();
    assert_eq!(ids_after, expected, "containers were replaced");
    assert_eq!(container_status(&after, "main")["restartCount"], 0);
    assert_eq!(after["status"]["podIP"], before["status"]["podIP"]);
    // And it still manages them: deletion works.
    cluster.kubectl_ok(&["delete", "pod", "survivor", "--wait=true", "--timeout=60s"]);
    assert!(engine_containers(&uid).is_empty());
}

#[test]
fn deleted_pod_leaves_nothing_behind() {
    let cluster = Cluster::start_with_agent();
    let mut spec = pod(
        "doomed",
        json!([container(
            "main",
            "trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done"
        )]),
    );
    spec["spec"]["containers"][0]["ports"] = json!([{"containerPort": 8080, "hostPort": 18080}]);
    create(&cluster, &spec);
    let running = wait_running(&cluster, "doomed");
    let uid = running["metadata"]["uid"].as_str().unwrap().to_string();
    let ip = running["status"]["podIP"].as_str().unwrap().to_string();
    let links = || {
        let out = Command::new("ip").args(["-o", "link"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let veth = format!("veth{}", &uid[..8]);
    assert!(links().contains(&veth), "no {veth} in {}", links());
    let nat = || {
        let out = Command::new("iptables-save")
            .args(["-t", "nat"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(nat().contains(&format!("{ip}:8080")), "no host-port rule");
    cluster.kubectl_ok(&["delete", "pod", "doomed", "--wait=true", "--timeout=60s"]);
    assert!(engine_containers(&uid).is_empty(), "containers left");
    assert!(!links().contains(&veth), "veth left");
    assert!(
        !nat().contains(&format!("{ip}:8080")),
        "host-port rule left"
    );
    let state = cluster.dir.path().join("agent/network");
    let left: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.iter().all(|f| !f.to_string_lossy().contains(&uid)),
        "network state left: {left:?}"
    );
    assert!(
        !cluster.dir.path().join("agent/pods").join(&uid).exists(),
        "volumes left"
    );
}

#[test]
fn unreachable_engine_is_reported_on_the_node() {
    let agent = hortator_tests::AgentSpec::next();
    // The socket does not exist: the agent must say so and keep retrying.
    let config = agent.config().replace(
        "[agent]\n",
        "[agent]\ndocker-socket = \"/run/hortator-test-no-such.sock\"\n",
    );
    let mut cluster = Cluster::start_with_config_and_args(
        &config,
        &["--node-name", &agent.node, "--node-ip", "127.0.0.1"],
    );
    let message = eventually("a NotReady node naming the socket", || {
        let out = cluster.kubectl(&[
            "get",
            "node",
            &agent.node,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].message}",
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("/run/hortator-test-no-such.sock")
            .then_some(text)
    });
    assert!(message.contains("container runtime is down"), "{message}");
    assert!(
        cluster.log().contains(
            "cannot connect to the Docker engine at unix:///run/hortator-test-no-such.sock"
        )
    );
    // The control plane keeps serving.
    cluster.kubectl_ok(&["get", "namespaces"]);
    // Its iptables chains go when the cluster is dropped.
    cluster.agent = Some(agent);
}

#[test]
fn standalone_agent_registers_and_serves_logs_and_exec_through_the_api() {
    let cluster = Cluster::start();
    let agent = hortator_tests::AgentSpec::next();
    agent.clean_up();
    let port = hortator_tests::free_port();
    let mut process = hortator_tests::Agent::start(&cluster, &agent, port);
    eventually("the agent's node Ready", || {
        let out = cluster.kubectl(&[
            "get",
            "node",
            &agent.node,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ]);
        (String::from_utf8_lossy(&out.stdout).trim() == "True").then_some(())
    });
    let node = cluster.kubectl_json(&["get", "node", &agent.node]);
    assert_eq!(
        node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"],
        port
    );
    create(
        &cluster,
        &pod(
            "remote",
            json!([container("main", "echo remote-hello; exec sleep 3600")]),
        ),
    );
    wait_running(&cluster, "remote");
    let logs = cluster.kubectl_ok(&["logs", "remote"]);
    assert_eq!(logs.trim(), "remote-hello");
    let out = cluster.kubectl_ok(&["exec", "remote", "--", "echo", "via-proxy"]);
    assert_eq!(out.trim(), "via-proxy");
    cluster.kubectl_ok(&["delete", "pod", "remote", "--wait=true", "--timeout=60s"]);
    process.stop();
    agent.clean_up();
}

#[test]
fn images_are_pulled_by_policy_and_limits_reach_the_engine() {
    let cluster = Cluster::start_with_agent();
    let agent = cluster.agent.as_ref().unwrap();
    // Push the test image to the local registry under a fresh name, then drop it locally.
    let remote = format!("127.0.0.1:5000/hortator-test/pull-{}:v1", agent.node);
    assert!(
        Command::new("docker")
            .args(["tag", busybox_image(), &remote])
            .status()
            .unwrap()
            .success()
    );
    let pushed = Command::new("docker")
        .args(["push", &remote])
        .output()
        .unwrap();
    assert!(
        pushed.status.success(),
        "docker push: {}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    docker(&["rmi", &remote]);
    let mut spec = pod(
        "pulled",
        json!([{"name": "main", "image": remote, "imagePullPolicy": "Always",
        "command": ["sleep", "3600"],
        "resources": {"limits": {"memory": "64Mi", "cpu": "500m"}}}]),
    );
    spec["spec"]["terminationGracePeriodSeconds"] = json!(0);
    create(&cluster, &spec);
    let running = wait_running(&cluster, "pulled");
    let id = container_status(&running, "main")["containerID"]
        .as_str()
        .unwrap()
        .trim_start_matches("docker://")
        .to_string();
    let limits = docker(&[
        "inspect",
        "-f",
        "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}",
        &id,
    ]);
    assert_eq!(limits.trim(), "67108864 500000000");
    let events = cluster.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=pulled",
    ]);
    assert!(events.contains("Successfully pulled image"), "{events}");
    // Never, with the image absent: the pod waits with ErrImageNeverPull.
    let mut never = pod(
        "never",
        json!([{"name": "main", "image": "hortator-test/absent:1", "imagePullPolicy": "Never"}]),
    );
    never["spec"]["terminationGracePeriodSeconds"] = json!(0);
    create(&cluster, &never);
    eventually("ErrImageNeverPull", || {
        let pod = get_pod(&cluster, "never");
        (container_status(&pod, "main")["state"]["waiting"]["reason"] == "ErrImageNeverPull")
            .then_some(())
    });
    // IfNotPresent, absent, unpullable: ErrImagePull then ImagePullBackOff.
    let mut missing = pod(
        "missing",
        json!([{"name": "main", "image": "127.0.0.1:5000/hortator-test/none:v9", "imagePullPolicy": "IfNotPresent"}]),
    );
    missing["spec"]["terminationGracePeriodSeconds"] = json!(0);
    create(&cluster, &missing);
    eventually("an image pull error", || {
        let pod = get_pod(&cluster, "missing");
        let reason = container_status(&pod, "main")["state"]["waiting"]["reason"].clone();
        (reason == "ErrImagePull" || reason == "ImagePullBackOff").then_some(())
    });
    cluster.kubectl_ok(&[
        "delete",
        "pod",
        "pulled",
        "never",
        "missing",
        "--wait=true",
        "--timeout=60s",
    ]);
    docker(&["rmi", &remote]);
}

#[test]
fn lifecycle_hooks_run_after_start_and_before_stop() {
    let cluster = Cluster::start_with_agent();
    // hostPath volumes need the privileged Pod Security level.
    cluster.kubectl_ok(&[
        "label",
        "namespace",
        "default",
        "pod-security.kubernetes.io/enforce=privileged",
    ]);
    // The hooks and the container write to a host directory that outlives the pod.
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod");
    let log = dir.path().join("log");
    let mut hooked = pod(
        "hooked",
        json!([container(
            "main",
            "trap 'echo term >> /hooks/log; exit 0' TERM; while :; do sleep 1; done"
        )]),
    );
    hooked["spec"]["terminationGracePeriodSeconds"] = json!(20);
    hooked["spec"]["volumes"] =
        json!([{"name": "hooks", "hostPath": {"path": dir.path(), "type": "Directory"}}]);
    hooked["spec"]["containers"][0]["volumeMounts"] =
        json!([{"name": "hooks", "mountPath": "/hooks"}]);
    hooked["spec"]["containers"][0]["lifecycle"] = json!({
        "postStart": {"exec": {"command": ["sh", "-c", "echo post-start >> /hooks/log"]}},
        "preStop": {"exec": {"command": ["sh", "-c", "echo pre-stop >> /hooks/log; sleep 2"]}},
    });
    create(&cluster, &hooked);
    wait_running(&cluster, "hooked");
    let written = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        written, "post-start\n",
        "postStart ran once, before Running"
    );
    cluster.kubectl_ok(&["delete", "pod", "hooked", "--wait=true", "--timeout=60s"]);
    let written = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        written, "post-start\npre-stop\nterm\n",
        "preStop ran before SIGTERM"
    );

    // A failing postStart hook kills the container, which restarts; each failure is an event.
    let mut failing = pod(
        "failing-hook",
        json!([container("main", "exec sleep 3600")]),
    );
    failing["spec"]["containers"][0]["lifecycle"] = json!({
        "postStart": {"exec": {"command": ["sh", "-c", "echo no >&2; exit 3"]}},
    });
    create(&cluster, &failing);
    let events = eventually("a FailedPostStartHook event", || {
        let events = cluster.kubectl_ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=failing-hook,reason=FailedPostStartHook",
        ]);
        events.contains("FailedPostStartHook").then_some(events)
    });
    assert!(
        events.contains("Exec lifecycle hook ([sh -c echo no >&2; exit 3])")
            && events.contains("exited with 3"),
        "{events}"
    );
    eventually("the container restarted after its hook failed", || {
        let pod = get_pod(&cluster, "failing-hook");
        (container_status(&pod, "main")["restartCount"].as_i64() >= Some(1)).then_some(())
    });
    cluster.kubectl_ok(&["delete", "pod", "failing-hook", "--wait=false"]);
}
