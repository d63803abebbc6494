//! What field management costs a write of a typical pod — a create, an update that adds a
//! label, one that changes nothing, a server-side apply — in µs per call.
//!
//! `cargo build --release --workspace --examples`, then
//! `$CARGO_TARGET_DIR/release/examples/managed_fields_bench [ITERATIONS]`.

use std::time::Instant;

use hortator_api::managed::{ManagedFields, Operation, Writer, record_write};
use hortator_api::patch::strategic_merge_patch;
use serde_json::{Value, json};

fn pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-7d4cb85f-x2x9q", "namespace": "default", "labels": {"app": "web", "pod-template-hash": "7d4cb85f"}},
        "spec": {
            "containers": [{
                "name": "web",
                "image": "127.0.0.1:5000/httpd:1",
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                "imagePullPolicy": "IfNotPresent",
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
            }],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "schedulerName": "default-scheduler",
            "enableServiceLinks": true,
        },
    })
}

fn measure(what: &str, iterations: u32, mut f: impl FnMut()) {
    for _ in 0..iterations / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    let per_call = start.elapsed().as_secs_f64() * 1e6 / f64::from(iterations);
    println!("{what:<40} {per_call:>8.2} µs");
}

fn main() {
    let iterations = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let writer = |manager: &'static str, operation| Writer {
        manager,
        operation,
        api_version: "v1",
        time: "2026-11-28T00:00:00Z",
        subresource: None,
    };
    let pod = pod();
    let mut created = pod.clone();
    record_write(
        "Pod",
        None,
        &mut created,
        &writer("kubectl-create", Operation::Update),
    );
    println!(
        "typical pod: {} bytes of JSON, {iterations} calls each",
        pod.to_string().len()
    );

    measure("create", iterations, || {
        let mut object = pod.clone();
        record_write(
            "Pod",
            None,
            &mut object,
            &writer("kubectl-create", Operation::Update),
        );
    });
    let mut labelled = created.clone();
    labelled["metadata"]["labels"]["tier"] = json!("frontend");
    measure("update adding one label", iterations, || {
        let mut object = labelled.clone();
        record_write(
            "Pod",
            Some(&created),
            &mut object,
            &writer("kubectl-label", Operation::Update),
        );
    });
    measure("update that changes no field", iterations, || {
        let mut object = created.clone();
        record_write(
            "Pod",
            Some(&created),
            &mut object,
            &writer("kubectl-label", Operation::Update),
        );
    });
    let config = pod.clone();
    measure("server-side apply, same values", iterations, || {
        let mut merged = strategic_merge_patch(&created, &config, "Pod").unwrap_or_default();
        let mut managed = ManagedFields::of(&created);
        let writer = writer("kubectl", Operation::Apply);
        let _ = managed.apply("Pod", &created, &config, &mut merged, &writer, false);
        managed.write(&mut merged);
    });
    measure("clone of the pod (baseline)", iterations, || {
        std::hint::black_box(pod.clone());
    });
}
