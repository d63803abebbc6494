//! Real components from `plugins/` (built by this crate's build script) in the
//! real runtime: every failure mode leaves the host serving and applies the
//! plugin's policy; swaps under traffic lose nothing.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use hortator_plugin_runtime::builds::{BuildPlan, SourceEntry};
use hortator_plugin_runtime::networking::{NodeInfo, PodRequest, SubnetRequest};
use hortator_plugin_runtime::scheduling::{
    ClusterEvent, KeyValue, Node, Pod, Resources, ScheduleResult,
};
use hortator_plugin_runtime::{
    AdmissionPlugin, AdmissionRequest, CallError, ClusterReader, FailurePolicy,
    GroupVersionResource, LoadError, LookupError, ModuleSource, Operation, Phase, PluginManager,
    PluginSettings, Resource, Runtime, RuntimeConfig, SwapError, UserInfo, ValidatedPlugins,
    builtin,
};

fn artifact(name: &str) -> PathBuf {
    PathBuf::from(builtin::ARTIFACT_DIR).join(format!("{name}.wasm"))
}

fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(artifact(name)).unwrap()
}

fn settings(name: &str, module: &str, config: &str) -> PluginSettings {
    PluginSettings {
        name: name.into(),
        module: ModuleSource::File(artifact(module)),
        config: config.into(),
        timeout: Duration::from_millis(100),
        memory_limit: 16 << 20,
        failure_policy: FailurePolicy::FailClosed,
        cluster_read: false,
    }
}

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig::default()).unwrap()
}

fn chaos(runtime: &Runtime, config: &str) -> Result<AdmissionPlugin, LoadError> {
    AdmissionPlugin::load(
        runtime,
        settings("chaos", "test_admission_chaos", config),
        "test".into(),
        &bytes("test_admission_chaos"),
        None,
    )
}

fn pod_request() -> AdmissionRequest {
    AdmissionRequest {
        uid: "1".into(),
        operation: Operation::Create,
        resource: GroupVersionResource { group: "".into(), version: "v1".into(), resource: "pods".into() },
        sub_resource: String::new(),
        kind: "Pod".into(),
        namespace: "default".into(),
        name: "web".into(),
        user_info: UserInfo { username: "system:admin".into(), uid: String::new(), groups: vec![] },
        object: Some(
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"default"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}"#.into(),
        ),
        old_object: None,
        dry_run: false,
    }
}

/// After any failure the plugin serves the next call from a fresh instance.
fn assert_recovers(plugin: &AdmissionPlugin) {
    let metrics = plugin.metrics().snapshot();
    assert!(metrics.errors >= 1, "{metrics:?}");
}

#[test]
fn allow_deny_and_metadata() {
    let rt = runtime();
    let allow = chaos(&rt, r#"{"mode":"allow"}"#).unwrap();
    assert_eq!(allow.info().plugin_name, "test-admission-chaos");
    assert_eq!(allow.info().sdk_version, "0.1.0");
    assert!(allow.info().digest.starts_with("sha256:"));
    for _ in 0..3 {
        assert!(allow.admit(&pod_request()).unwrap().allowed);
    }
    assert_eq!(allow.metrics().snapshot().calls, 3);
    let deny = chaos(&rt, r#"{"mode":"deny","reason":"no","code":422}"#).unwrap();
    let verdict = deny.admit(&pod_request()).unwrap();
    assert!(!verdict.allowed);
    assert_eq!((verdict.code, verdict.reason.as_str()), (422, "no"));
}

#[test]
fn a_trap_is_isolated_and_the_next_call_gets_a_fresh_instance() {
    let rt = runtime();
    let plugin = chaos(&rt, r#"{"mode":"trap"}"#).unwrap();
    for _ in 0..2 {
        match plugin.admit(&pod_request()) {
            Err(CallError::Trap(message)) => {
                assert!(message.contains("chaos: trap requested"), "{message}")
            }
            other => panic!("expected a trap, got {other:?}"),
        }
    }
    assert_eq!(plugin.metrics().snapshot().traps, 2);
    assert_recovers(&plugin);
}

/// A guest writing to stderr (a panic message) never enters a Tokio runtime, so calls may run
/// on a runtime's worker threads.
#[test]
fn calls_run_on_async_runtime_workers() {
    let rt = runtime();
    let trap = Arc::new(chaos(&rt, r#"{"mode":"trap"}"#).unwrap());
    let allow = Arc::new(chaos(&rt, r#"{"mode":"allow"}"#).unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    runtime.block_on(async {
        let worker = tokio::spawn(async move {
            let trapped = trap.admit(&pod_request());
            (
                trapped,
                allow.admit(&pod_request()),
                trap.is_slow(),
                allow.is_slow(),
            )
        });
        let (trapped, allowed, trap_slow, allow_slow) = worker.await.unwrap();
        match trapped {
            Err(CallError::Trap(message)) => {
                assert!(message.contains("chaos: trap requested"), "{message}")
            }
            other => panic!("expected a trap, got {other:?}"),
        }
        assert!(allowed.unwrap().allowed);
        assert!(!trap_slow && !allow_slow, "quick calls are not slow");
    });
}

#[test]
fn an_endless_loop_hits_the_deadline() {
    let rt = runtime();
    let plugin = chaos(&rt, r#"{"mode":"loop"}"#).unwrap();
    assert!(!plugin.is_slow());
    let started = std::time::Instant::now();
    assert_eq!(
        plugin.admit(&pod_request()),
        Err(CallError::Timeout(Duration::from_millis(100)))
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        plugin.admit(&pod_request()),
        Err(CallError::Timeout(Duration::from_millis(100)))
    );
    assert_eq!(plugin.metrics().snapshot().timeouts, 2);
    assert!(plugin.is_slow(), "a plugin that timed out is slow");
}

#[test]
fn a_memory_bomb_hits_the_cap() {
    let rt = runtime();
    let plugin = chaos(&rt, r#"{"mode":"memory-bomb"}"#).unwrap();
    assert_eq!(
        plugin.admit(&pod_request()),
        Err(CallError::OutOfMemory(16 << 20))
    );
    assert_eq!(
        plugin.admit(&pod_request()),
        Err(CallError::OutOfMemory(16 << 20))
    );
    assert_eq!(plugin.metrics().snapshot().out_of_memory, 2);
}

#[test]
fn malformed_output_is_an_error() {
    let rt = runtime();
    let plugin = chaos(&rt, r#"{"mode":"malformed"}"#).unwrap();
    assert!(
        matches!(plugin.admit(&pod_request()), Err(CallError::Malformed(m)) if m.contains("JSON patch"))
    );
    assert_eq!(plugin.metrics().snapshot().malformed, 1);
}

#[test]
fn refused_plugins_say_why() {
    let rt = runtime();
    match chaos(&rt, r#"{"mode":"init-error"}"#) {
        Err(LoadError::Init { plugin, message }) => {
            assert_eq!(plugin, "chaos");
            assert_eq!(message, "chaos: init refused");
        }
        other => panic!("expected an init error, got {:?}", other.err()),
    }
    let future = AdmissionPlugin::load(
        &rt,
        settings("future", "test_future_sdk", "{}"),
        "t".into(),
        &bytes("test_future_sdk"),
        None,
    );
    let message = future.err().expect("refused").to_string();
    assert!(
        message.contains("0.2.0") && message.contains("0.1.0"),
        "{message}"
    );
    let core_module = b"\0asm\x01\0\0\0";
    assert!(matches!(
        chaos_bytes(&rt, core_module),
        Err(LoadError::NotAComponent { .. })
    ));
    assert!(matches!(
        chaos_bytes(&rt, b"garbage"),
        Err(LoadError::NotAComponent { .. })
    ));
    let mut truncated = bytes("test_admission_chaos");
    truncated.truncate(truncated.len() / 2);
    assert!(matches!(
        chaos_bytes(&rt, &truncated),
        Err(LoadError::Compile { .. })
    ));
    let wrong_world = chaos_bytes(&rt, &bytes("default_scheduler"))
        .err()
        .expect("refused")
        .to_string();
    assert!(wrong_world.contains("admission world"), "{wrong_world}");
}

fn chaos_bytes(rt: &Runtime, bytes: &[u8]) -> Result<AdmissionPlugin, LoadError> {
    AdmissionPlugin::load(rt, settings("chaos", "x", "{}"), "test".into(), bytes, None)
}

struct OneNamespace;

impl ClusterReader for OneNamespace {
    fn get(
        &self,
        resource: &Resource,
        _namespace: &str,
        name: &str,
    ) -> Result<Option<String>, LookupError> {
        assert_eq!(resource.resource, "namespaces");
        Ok((name == "default").then(|| r#"{"metadata":{"name":"default"}}"#.to_string()))
    }
    fn list(&self, _: &Resource, _: &str, _: &str) -> Result<Vec<String>, LookupError> {
        Ok(vec![])
    }
}

#[test]
fn cluster_lookups_need_the_grant() {
    let rt = runtime();
    let reader: Arc<dyn ClusterReader> = Arc::new(OneNamespace);
    let mut granted = settings("lookup", "test_admission_chaos", r#"{"mode":"lookup"}"#);
    granted.cluster_read = true;
    let plugin = AdmissionPlugin::load(
        &rt,
        granted.clone(),
        "t".into(),
        &bytes("test_admission_chaos"),
        Some(reader.clone()),
    )
    .unwrap();
    assert_eq!(
        plugin.admit(&pod_request()).unwrap().warnings,
        ["namespace found"]
    );
    let mut elsewhere = pod_request();
    elsewhere.namespace = "nowhere".into();
    assert_eq!(
        plugin.admit(&elsewhere).unwrap().warnings,
        ["namespace missing"]
    );
    granted.cluster_read = false;
    let plugin = AdmissionPlugin::load(
        &rt,
        granted,
        "t".into(),
        &bytes("test_admission_chaos"),
        Some(reader),
    )
    .unwrap();
    let verdict = plugin.admit(&pod_request()).unwrap();
    assert!(!verdict.allowed, "{verdict:?}");
}

#[test]
fn compiled_components_are_cached_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let rt = Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
    })
    .unwrap();
    chaos(&rt, "{}").unwrap();
    let files = walk(dir.path());
    assert!(
        !files.is_empty(),
        "nothing cached in {}",
        dir.path().display()
    );
    // A second engine over the same directory loads from the cache.
    let rt = Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
    })
    .unwrap();
    assert!(
        chaos(&rt, "{}")
            .unwrap()
            .admit(&pod_request())
            .unwrap()
            .allowed
    );
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn chain_config(module: &str, config: &str, policy: FailurePolicy) -> ValidatedPlugins {
    let mut s = settings("gate", module, config);
    s.failure_policy = policy;
    ValidatedPlugins {
        cache_dir: None,
        admission: vec![(Phase::Validating, s)],
        schedulers: vec![],
        network_driver: None,
        build_strategies: vec![],
    }
}

#[test]
fn a_swap_under_traffic_fails_no_call() {
    let manager = Arc::new(PluginManager::new(runtime(), None));
    let mut config = chain_config(
        "test_admission_chaos",
        r#"{"mode":"allow"}"#,
        FailurePolicy::FailClosed,
    );
    // What is checked is the swap, not the deadline: every swap compiles a component on
    // these 2 cores while the callers run, and a starved call must not count as a failure.
    config.admission[0].1.timeout = Duration::from_secs(10);
    let failures = manager.apply(&config, "/".as_ref());
    assert!(failures.is_empty(), "{failures:?}");
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (manager, stop, calls) = (manager.clone(), stop.clone(), calls.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for entry in manager.admission_chain().iter() {
                        let verdict = entry
                            .slot
                            .current()
                            .admit(&pod_request())
                            .expect("no call fails during swaps");
                        assert!(verdict.allowed);
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let a = bytes("test_admission_chaos");
    let b = with_custom_section(a.clone(), "second build");
    let mut digests = std::collections::BTreeSet::new();
    for i in 0..20 {
        let info = manager
            .swap("admission/gate", if i % 2 == 0 { &b } else { &a }, "test")
            .unwrap();
        digests.insert(info.digest);
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    assert!(calls.load(Ordering::Relaxed) > 0);
    assert_eq!(digests.len(), 2);
}

/// The same component with a custom section appended: same behaviour, other digest.
fn with_custom_section(mut bytes: Vec<u8>, payload: &str) -> Vec<u8> {
    let name = b"hortator-test";
    let mut content = vec![name.len() as u8];
    content.extend_from_slice(name);
    content.extend_from_slice(payload.as_bytes());
    assert!(content.len() < 128);
    bytes.push(0);
    bytes.push(content.len() as u8);
    bytes.extend(content);
    bytes
}

#[test]
fn a_broken_new_module_leaves_the_old_one_active() {
    let manager = PluginManager::new(runtime(), None);
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = events.clone();
    manager.set_event_sink(move |e| seen.lock().unwrap().push(e.clone()));
    assert!(
        manager
            .apply(
                &chain_config("test_admission_chaos", "{}", FailurePolicy::FailClosed),
                "/".as_ref()
            )
            .is_empty()
    );
    let before = manager.list()[0].active.clone().unwrap().digest;
    for broken in [
        b"garbage".to_vec(),
        bytes("test_future_sdk"),
        bytes("default_scheduler"),
    ] {
        assert!(matches!(
            manager.swap("admission/gate", &broken, "broken"),
            Err(SwapError::Load(_))
        ));
        let row = &manager.list()[0];
        assert_eq!(row.active.as_ref().unwrap().digest, before);
        assert!(row.last_error.is_some());
        assert!(
            manager.admission_chain()[0]
                .slot
                .current()
                .admit(&pod_request())
                .unwrap()
                .allowed
        );
    }
    assert!(matches!(
        manager.swap("admission/nope", b"", "x"),
        Err(SwapError::UnknownPoint { .. })
    ));
    let failed = events.lock().unwrap().iter().filter(|e| !e.loaded).count();
    assert_eq!(failed, 3);
    // A good swap clears the error.
    manager
        .swap(
            "admission/gate",
            &with_custom_section(bytes("test_admission_chaos"), "v2"),
            "good",
        )
        .unwrap();
    assert!(manager.list()[0].last_error.is_none());
}

#[test]
fn a_reload_only_touches_changed_points_and_keeps_old_plugins_on_failure() {
    let manager = PluginManager::new(runtime(), None);
    let config = chain_config(
        "test_admission_chaos",
        r#"{"mode":"allow"}"#,
        FailurePolicy::FailClosed,
    );
    assert!(manager.apply(&config, "/".as_ref()).is_empty());
    let slot = manager.admission_chain()[0].slot.clone();
    let first = slot.current();
    assert!(manager.apply(&config, "/".as_ref()).is_empty());
    assert!(
        Arc::ptr_eq(&first, &slot.current()),
        "an unchanged point is not reloaded"
    );
    let refused = chain_config(
        "test_admission_chaos",
        r#"{"mode":"init-error"}"#,
        FailurePolicy::FailClosed,
    );
    let failures = manager.apply(&refused, "/".as_ref());
    assert_eq!(failures.len(), 1);
    assert!(Arc::ptr_eq(&first, &slot.current()), "the old plugin stays");
    let deny = chain_config(
        "test_admission_chaos",
        r#"{"mode":"deny"}"#,
        FailurePolicy::FailClosed,
    );
    assert!(manager.apply(&deny, "/".as_ref()).is_empty());
    assert!(
        !manager.admission_chain()[0]
            .slot
            .current()
            .admit(&pod_request())
            .unwrap()
            .allowed
    );
}

#[test]
fn scheduler_world() {
    let rt = runtime();
    let plugin = hortator_plugin_runtime::scheduling::SchedulerPlugin::load(
        &rt,
        settings("scheduler", "default_scheduler", "{}"),
        "t".into(),
        &bytes("default_scheduler"),
    )
    .unwrap();
    let node = |name: &str, cpu: u64| Node {
        name: name.into(),
        labels: vec![KeyValue {
            key: "kubernetes.io/hostname".into(),
            value: name.into(),
        }],
        allocatable: Resources {
            milli_cpu: cpu,
            memory: 8 << 30,
            ephemeral_storage: 0,
            pods: 110,
        },
        taints: vec![],
        unschedulable: false,
        ready: true,
    };
    let pod = |name: &str, cpu: u64| Pod {
        uid: name.into(),
        namespace: "default".into(),
        name: name.into(),
        labels: vec![],
        requests: Resources {
            milli_cpu: cpu,
            memory: 0,
            ephemeral_storage: 0,
            pods: 1,
        },
        host_ports: vec![],
        node_selector: vec![],
        required_node_affinity: vec![],
        preferred_node_affinity: vec![],
        tolerations: vec![],
        owner: None,
        spread_selectors: vec![],
        priority: 0,
    };
    plugin
        .update(&[
            ClusterEvent::NodeAdded(node("small", 1000)),
            ClusterEvent::NodeAdded(node("big", 4000)),
        ])
        .unwrap();
    assert!(
        matches!(plugin.schedule(&pod("p1", 2000)).unwrap(), ScheduleResult::Node(n) if n == "big")
    );
    match plugin.schedule(&pod("p2", 8000)).unwrap() {
        ScheduleResult::Unschedulable(reasons) => {
            assert_eq!(reasons.len(), 2);
            assert!(
                reasons.iter().all(|r| r.reason.contains("cpu")),
                "{reasons:?}"
            );
        }
        other => panic!("expected unschedulable, got {other:?}"),
    }
    assert!(!plugin.take_state_lost());
}

#[test]
fn build_strategy_world() {
    let rt = runtime();
    let plugin = hortator_plugin_runtime::builds::BuildStrategyPlugin::load(
        &rt,
        settings("docker", "test_build_strategy", "{}"),
        "t".into(),
        &bytes("test_build_strategy"),
    )
    .unwrap();
    let build = r#"{"spec":{"output":{"to":{"name":"127.0.0.1:5000/app:latest"}},"strategy":{"sourceStrategy":{"from":{"name":"builder:1"}}}}}"#;
    let entry = |path: &str| SourceEntry {
        path: path.into(),
        is_dir: false,
        size: 10,
        executable: false,
    };
    let plan = plugin
        .plan(build, &[entry("Dockerfile"), entry("app.py")])
        .unwrap();
    assert!(matches!(plan.plan, BuildPlan::Dockerfile(_)));
    assert_eq!(plan.output_image, "127.0.0.1:5000/app:latest");
    let plan = plugin.plan(build, &[entry("app.py")]).unwrap();
    assert!(matches!(&plan.plan, BuildPlan::Source(s) if s.builder_image == "builder:1"));
}

#[test]
fn network_driver_world() {
    let rt = runtime();
    let plugin = hortator_plugin_runtime::networking::NetworkDriverPlugin::load(
        &rt,
        settings("bridge", "bridge", r#"{"cluster-cidr":"10.244.0.0/16"}"#),
        "t".into(),
        builtin::get("bridge").unwrap(),
    )
    .unwrap();
    let refused = hortator_plugin_runtime::networking::NetworkDriverPlugin::load(
        &rt,
        settings("bridge", "bridge", r#"{"colour":"red"}"#),
        "t".into(),
        builtin::get("bridge").unwrap(),
    )
    .err()
    .unwrap();
    assert!(
        refused
            .to_string()
            .contains("unknown configuration key \"colour\""),
        "{refused}"
    );
    let node = NodeInfo {
        name: "n1".into(),
        addresses: vec!["192.168.50.2".into()],
        labels: vec![],
    };
    let subnet = plugin
        .node_subnet(&SubnetRequest {
            node: node.clone(),
            cluster_cidr: "10.244.0.0/16".into(),
            allocated: vec!["10.244.0.0/24".into()],
        })
        .unwrap();
    assert_eq!(subnet.to_string(), "10.244.1.0/24");
    let request = PodRequest {
        namespace: "default".into(),
        name: "web".into(),
        uid: "0123456789abcdef".into(),
        sandbox_id: "sandbox".into(),
        node,
        node_subnet: subnet.to_string(),
        allocated: vec!["10.244.1.2".into()],
        address: String::new(),
    };
    let plan = plugin.setup_pod(&request).unwrap();
    assert_eq!(plan.address, "10.244.1.3/24");
    assert_eq!(plan.gateway, "10.244.1.1");
    assert!(
        !plugin
            .teardown_pod(&PodRequest {
                address: plan.address.clone(),
                ..request
            })
            .unwrap()
            .is_empty()
    );
}

#[test]
fn plugins_get_no_filesystem_environment_clock_or_network() {
    let rt = runtime();
    let plugin = chaos(&rt, r#"{"mode":"probe-sandbox"}"#).unwrap();
    let warnings = plugin.admit(&pod_request()).unwrap().warnings;
    assert_eq!(warnings.len(), 4, "{warnings:?}");
    assert!(warnings[0].starts_with("fs: denied"), "{warnings:?}");
    assert_eq!(warnings[1], "env: 0 variables");
    assert_eq!(warnings[2], "clock: 0");
    assert!(warnings[3].starts_with("net: denied"), "{warnings:?}");
}
