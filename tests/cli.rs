//! The `hortator` command line: bad flags and config are one-line errors with exit code 2;
//! SIGTERM shuts down cleanly.

use std::process::Command;

use hortator_tests::{Cluster, hortator_bin};

#[test]
fn bad_flag_exits_2() {
    let out = Command::new(hortator_bin())
        .args(["up", "--bogus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bogus"));
}

#[test]
fn bad_listen_exits_2() {
    let out = Command::new(hortator_bin())
        .args(["up", "--listen", "nowhere"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--listen") && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn bad_config_exits_2_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hortator.toml");
    std::fs::write(&path, "[server]\nservice-cidr = \"10.254.0.0/40\"\n").unwrap();
    let out = Command::new(hortator_bin())
        .args(["up", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("hortator.toml") && err.contains("server.service-cidr"),
        "{err}"
    );
    std::fs::write(
        &path,
        "[server]\nlisten = \"127.0.0.1:1\"\ncolour = \"blue\"\n",
    )
    .unwrap();
    let out = Command::new(hortator_bin())
        .args(["up", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("colour"));
}

#[test]
fn sigterm_is_a_clean_shutdown() {
    let mut c = Cluster::start();
    c.kubectl_ok(&["get", "ns"]);
    // An open watch must not hold the shutdown up.
    let mut watcher = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args(["get", "pods", "-w"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let status = c.stop().expect("exit status");
    let _ = watcher.kill();
    let _ = watcher.wait();
    assert!(status.success(), "{status:?}\n{}", c.log());
    assert!(c.log().contains("SIGTERM received"), "{}", c.log());
}

/// The README's run command uses a relative data directory.
#[test]
fn relative_data_dir_works() {
    let work = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", hortator_tests::free_port());
    let mut child = Command::new(hortator_bin())
        .current_dir(work.path())
        .args(["up", "--data-dir", "hortator-data", "--listen", &addr])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let kubeconfig = work.path().join("hortator-data/kubeconfig.yaml");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !kubeconfig.exists() && std::time::Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("hortator exited with {status}: {err}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(kubeconfig.exists(), "no kubeconfig after 60 s");
    assert!(work.path().join("hortator-data/plugin-cache").is_dir());
    let _ = child.kill();
    let _ = child.wait();
    // Its node agent (named after this host) installed its iptables chains: remove them.
    let cleanup = Command::new(hortator_bin())
        .args(["agent", "--cleanup"])
        .status()
        .unwrap();
    assert!(cleanup.success());
}
