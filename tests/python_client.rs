//! The official Python `kubernetes` client (installed by tests/run.sh) against `hortator up`.

use std::process::Command;

use hortator_tests::Cluster;

#[test]
fn python_client_crud_watch_conflict_scale() {
    let c = Cluster::start();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/client_check.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&c.kubeconfig)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python client check failed (is `pip install kubernetes` done? tests/run.sh does it):\n{}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        hortator_tests::tail(&c.log(), 30)
    );
}
