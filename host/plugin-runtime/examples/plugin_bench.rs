//! Plugin runtime benchmarks: admission call latency (host → guest → host),
//! instantiation from `InstancePre`, first compile, and swap time with a cached
//! component.
//!
//! `cargo run --release --example plugin_bench` (after `cargo build --release --workspace`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hortator_plugin_runtime::{
    AdmissionPlugin, AdmissionRequest, ClusterReader, FailurePolicy, GroupVersionResource,
    LookupError, ModuleSource, Operation, Phase, PluginManager, PluginSettings, Resource, Runtime,
    RuntimeConfig, UserInfo, ValidatedPlugins, builtin,
};

/// A typical pod, as the API server hands it to the chain after defaulting.
const POD: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-7d4b9c6f5-x2x9q","namespace":"default","uid":"1f0c6a52-7d0e-4c1e-9a35-0b6b1f0e2a11","creationTimestamp":"2026-11-27T12:00:00Z","labels":{"app":"web","pod-template-hash":"7d4b9c6f5"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-7d4b9c6f5","uid":"6b9e0c2d-6a43-4f7e-8a0b-2d6c3c0a9b21","controller":true,"blockOwnerDeletion":true}]},"spec":{"containers":[{"name":"web","image":"127.0.0.1:5000/httpd:2.4","ports":[{"containerPort":80,"protocol":"TCP"}],"resources":{"limits":{"cpu":"500m","memory":"128Mi"},"requests":{"cpu":"100m","memory":"64Mi"}},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","schedulerName":"default-scheduler","enableServiceLinks":true,"preemptionPolicy":"PreemptLowerPriority","priority":0},"status":{"phase":"Pending","qosClass":"Burstable"}}"#;

struct Namespaces;

impl ClusterReader for Namespaces {
    fn get(&self, _: &Resource, _: &str, name: &str) -> Result<Option<String>, LookupError> {
        Ok(Some(format!(
            r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{name}"}},"status":{{"phase":"Active"}}}}"#
        )))
    }
    fn list(&self, _: &Resource, _: &str, _: &str) -> Result<Vec<String>, LookupError> {
        Ok(Vec::new())
    }
}

fn request() -> AdmissionRequest {
    AdmissionRequest {
        uid: "bench".into(),
        operation: Operation::Create,
        resource: GroupVersionResource {
            group: String::new(),
            version: "v1".into(),
            resource: "pods".into(),
        },
        sub_resource: String::new(),
        kind: "Pod".into(),
        namespace: "default".into(),
        name: "web-7d4b9c6f5-x2x9q".into(),
        user_info: UserInfo {
            username: "system:admin".into(),
            uid: String::new(),
            groups: vec!["system:masters".into()],
        },
        object: Some(POD.into()),
        old_object: None,
        dry_run: false,
    }
}

fn settings(name: &str, module: ModuleSource, config: &str) -> PluginSettings {
    PluginSettings {
        name: name.into(),
        module,
        config: config.into(),
        timeout: Duration::from_millis(250),
        memory_limit: 64 << 20,
        failure_policy: FailurePolicy::FailClosed,
        cluster_read: true,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{what:<58} median {:>9.2} µs   p99 {:>9.2} µs   (n={})",
        percentile(&samples, 0.5).as_secs_f64() * 1e6,
        percentile(&samples, 0.99).as_secs_f64() * 1e6,
        samples.len()
    );
}

fn time_calls(plugin: &AdmissionPlugin, n: usize) -> Vec<Duration> {
    let request = request();
    for _ in 0..1000 {
        plugin.admit(&request).expect("call");
    }
    (0..n)
        .map(|_| {
            let started = Instant::now();
            let verdict = plugin.admit(&request).expect("call");
            let elapsed = started.elapsed();
            assert!(verdict.allowed, "{}", verdict.reason);
            elapsed
        })
        .collect()
}

fn main() {
    let cache = tempfile::tempdir().expect("tempdir");
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
    })
    .expect("runtime");
    let reader: Arc<dyn ClusterReader> = Arc::new(Namespaces);
    let chaos_path = std::path::Path::new(builtin::ARTIFACT_DIR).join("test_admission_chaos.wasm");
    let chaos = std::fs::read(&chaos_path).expect("test plugin");

    println!("-- first compile (empty cache)");
    for name in ["pod-security", "namespace-lifecycle", "limit-ranger"] {
        let bytes = builtin::get(name).expect("built-in");
        let plugin = AdmissionPlugin::load(
            &runtime,
            settings(name, ModuleSource::Builtin(name.into()), "{}"),
            format!("builtin:{name}"),
            bytes,
            Some(reader.clone()),
        )
        .expect("load");
        println!(
            "{name:<24} {:>5} KiB   compile {:>7.1} ms   instantiate+init {:>6.2} ms",
            bytes.len() / 1024,
            plugin.info().compile_time.as_secs_f64() * 1e3,
            plugin.info().start_time.as_secs_f64() * 1e3
        );
    }

    println!("-- admission call, typical pod, host -> guest -> host");
    let allow = AdmissionPlugin::load(
        &runtime,
        settings(
            "allow",
            ModuleSource::File(chaos_path.clone()),
            r#"{"mode":"allow"}"#,
        ),
        "test".into(),
        &chaos,
        None,
    )
    .expect("load");
    report(
        "test-admission-chaos (allow, no decoding)",
        time_calls(&allow, 20_000),
    );
    let load_builtin = |name: &str| {
        AdmissionPlugin::load(
            &runtime,
            settings(name, ModuleSource::Builtin(name.into()), "{}"),
            format!("builtin:{name}"),
            builtin::get(name).expect("built-in"),
            Some(reader.clone()),
        )
        .expect("load")
    };
    for name in ["namespace-lifecycle", "limit-ranger"] {
        report(
            &format!("builtin:{name} (decode + cluster lookup)"),
            time_calls(&load_builtin(name), 20_000),
        );
    }
    let typed = load_builtin("pod-security");
    report(
        "builtin:pod-security (decode + cluster lookup)",
        time_calls(&typed, 20_000),
    );

    println!("-- instantiate from InstancePre (+ init)");
    let samples = (0..500)
        .map(|_| allow.measure_instantiate().expect("instantiate"))
        .collect();
    report("test-admission-chaos", samples);
    let samples = (0..500)
        .map(|_| typed.measure_instantiate().expect("instantiate"))
        .collect();
    report("builtin:pod-security", samples);

    println!("-- swap (load + init + check + atomic replace), component cached");
    let manager = PluginManager::new(runtime.clone(), Some(reader));
    let config = ValidatedPlugins {
        cache_dir: None,
        admission: vec![(
            Phase::Validating,
            settings("gate", ModuleSource::Builtin("pod-security".into()), "{}"),
        )],
        schedulers: vec![],
        network_driver: None,
        build_strategies: vec![],
    };
    assert!(manager.apply(&config, "/".as_ref()).is_empty());
    let modules = [
        builtin::get("pod-security").expect("built-in").to_vec(),
        builtin::get("namespace-lifecycle")
            .expect("built-in")
            .to_vec(),
    ];
    let samples = (0..40)
        .map(|i| {
            let started = Instant::now();
            manager
                .swap("admission/gate", &modules[i % 2], "bench")
                .expect("swap");
            started.elapsed()
        })
        .collect();
    report("swap pod-security <-> namespace-lifecycle", samples);
}
