//! Test harness: start the real `hortator` binary on a free loopback port with its own data
//! directory, and drive it with the real `kubectl`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `hortator` binary built by `cargo build --release` (or `$HORTATOR_BIN`).
pub fn hortator_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("HORTATOR_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> → target/<profile>/hortator
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("hortator"))
        .expect("target directory");
    assert!(
        bin.exists(),
        "{} does not exist: run `cargo build --release --workspace --bins` first",
        bin.display()
    );
    bin
}

/// The `hortctl` binary next to `hortator`.
pub fn hortctl_bin() -> PathBuf {
    hortator_bin().with_file_name("hortctl")
}

/// The cargo target directory the tests were built in.
pub fn target_dir() -> PathBuf {
    hortator_bin()
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("target directory")
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A fresh data directory for one test cluster.
fn data_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("hortator-test-")
        .tempdir()
        .expect("tempdir")
}

/// A running `hortator up`.
pub struct Cluster {
    child: Option<Child>,
    /// The data directory (removed on drop unless the cluster was started in a given dir).
    pub dir: tempfile::TempDir,
    /// `DIR/kubeconfig.yaml`.
    pub kubeconfig: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The listen address.
    pub addr: String,
    /// The command-line arguments after `--listen`, kept for a restart.
    args: Vec<String>,
    /// The node agent's identity, when the cluster runs one.
    pub agent: Option<AgentSpec>,
}

/// What makes one test cluster's node agent distinct from another's on this machine: node
/// name, bridge and pod range.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    /// Node name.
    pub node: String,
    /// The bridge the built-in driver creates.
    pub bridge: String,
    /// The cluster's pod range.
    pub cluster_cidr: String,
    /// The cluster's service range (ClusterIPs of different test clusters must not meet in
    /// this machine's iptables rules).
    pub service_cidr: String,
    /// More `[agent]` keys (TOML lines).
    pub agent_keys: String,
}

impl AgentSpec {
    /// A fresh identity: unique within this test process, and unlikely to meet another's.
    pub fn next() -> AgentSpec {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = 100 + (std::process::id() * 7 + n) % 150;
        AgentSpec {
            node: format!("agent-{id}"),
            bridge: format!("htest{id}"),
            cluster_cidr: format!("10.{id}.0.0/16"),
            service_cidr: format!("172.20.{id}.0/24"),
            agent_keys: String::new(),
        }
    }

    /// Another node of the same cluster: its own name and bridge, the same pod range (the
    /// network driver gives each node a /24 of it).
    pub fn sibling(&self, suffix: &str) -> AgentSpec {
        AgentSpec {
            node: format!("{}-{suffix}", self.node),
            bridge: format!("{}{suffix}", self.bridge),
            cluster_cidr: self.cluster_cidr.clone(),
            service_cidr: self.service_cidr.clone(),
            agent_keys: self.agent_keys.clone(),
        }
    }

    /// The hortator.toml sections that give the agent this identity.
    pub fn config(&self) -> String {
        format!(
            "[server]\nservice-cidr = \"{services}\"\n\n[agent]\ncluster-cidr = \"{cidr}\"\n{keys}\n\n[plugins.network-driver]\nmodule = \"builtin:bridge\"\nconfig = {{ bridge = \"{bridge}\", cluster-cidr = \"{cidr}\" }}\n",
            services = self.service_cidr,
            cidr = self.cluster_cidr,
            keys = self.agent_keys,
            bridge = self.bridge
        )
    }

    /// Remove what the agent leaves behind by design when it stops: its pods' containers
    /// (a restarted agent would adopt them), its bridge and its iptables rules.
    pub fn clean_up(&self) {
        let ids = Command::new("docker")
            .args(["ps", "-aq", "--filter"])
            .arg(format!("label=io.hortator.node={}", self.node))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&ids)
                .output();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new(hortator_bin())
            .args(["agent", "--cleanup", "--node-name", &self.node])
            .stderr(Stdio::null())
            .status();
    }
}

/// `GET path` from `address` (`host:port`) with a plain HTTP/1.0 request; the whole response
/// (status line, headers, body) on a 200.
pub fn http_get(address: &str, path: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    if !response.starts_with("HTTP/1.") || !response.contains(" 200 ") {
        return Err(format!("unexpected response: {response}"));
    }
    Ok(response)
}

/// A pod `name` (label `app=name`) of one busybox container `name` running `sh -c script`,
/// with a grace period of 1 s.
pub fn shell_pod(name: &str, script: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "containers": [{"name": name, "image": busybox_image(), "command": ["sh", "-c", script]}],
            "terminationGracePeriodSeconds": 1,
        },
    })
}

/// The test image: Debian's static busybox with its applets, imported into Docker as
/// `hortator-test/busybox:1` (built once per machine; no registry is needed).
pub fn busybox_image() -> &'static str {
    const IMAGE: &str = "hortator-test/busybox:1";
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        let present = Command::new("docker")
            .args(["image", "inspect", IMAGE])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if present {
            return;
        }
        let root = tempfile::tempdir().expect("tempdir");
        for dir in ["bin", "tmp", "etc", "www"] {
            std::fs::create_dir_all(root.path().join(dir)).expect("mkdir");
        }
        std::fs::copy("/bin/busybox", root.path().join("bin/busybox"))
            .expect("busybox-static must be installed (/bin/busybox)");
        let list = Command::new("/bin/busybox")
            .arg("--list")
            .output()
            .expect("busybox --list");
        for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
            if applet != "busybox" {
                let _ = std::os::unix::fs::symlink("busybox", root.path().join("bin").join(applet));
            }
        }
        std::fs::write(
            root.path().join("etc/passwd"),
            "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        )
        .expect("passwd");
        let tar = root.path().with_extension("tar");
        let status = Command::new("tar")
            .arg("-C")
            .arg(root.path())
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .expect("tar");
        assert!(status.success(), "tar failed");
        let status = Command::new("docker")
            .args([
                "import",
                "--change",
                "CMD [\"/bin/sh\"]",
                "--change",
                "ENV PATH=/bin",
            ])
            .arg(&tar)
            .arg(IMAGE)
            .stdout(Stdio::null())
            .status()
            .expect("docker import");
        let _ = std::fs::remove_file(&tar);
        assert!(
            status.success(),
            "docker import of the busybox image failed"
        );
    });
    IMAGE
}

impl Cluster {
    /// Start `hortator up` in a fresh data directory and wait until it is ready.
    pub fn start() -> Cluster {
        Self::start_in(data_dir())
    }

    /// Start `hortator up` with `config` as its hortator.toml.
    pub fn start_with_config(config: &str) -> Cluster {
        let dir = data_dir();
        let path = dir.path().join("hortator.toml");
        std::fs::write(&path, config).expect("write config");
        Self::launch(dir, &["--config".into(), path.display().to_string()])
    }

    /// Start `hortator up` with `config` as its hortator.toml and more arguments.
    pub fn start_with_config_and_args(config: &str, args: &[&str]) -> Cluster {
        let dir = data_dir();
        let path = dir.path().join("hortator.toml");
        std::fs::write(&path, config).expect("write config");
        let mut all = vec!["--config".to_string(), path.display().to_string()];
        all.extend(args.iter().map(|a| a.to_string()));
        Self::launch(dir, &all)
    }

    /// Start `hortator up` in `dir` (reusing its store) and wait until it is ready.
    pub fn start_in(dir: tempfile::TempDir) -> Cluster {
        Self::launch(dir, &[])
    }

    /// Start `hortator up` with its node agent on the local Docker engine (node address
    /// 127.0.0.1), with an identity of its own; waits until the node is Ready.
    pub fn start_with_agent() -> Cluster {
        Self::start_with_agent_and_config("")
    }

    /// Like [`Cluster::start_with_agent`], with `extra_config` appended to its hortator.toml.
    pub fn start_with_agent_and_config(extra_config: &str) -> Cluster {
        Self::start_with_agent_spec(AgentSpec::next(), extra_config)
    }

    /// Like [`Cluster::start_with_agent_and_config`], with the agent's identity and keys.
    pub fn start_with_agent_spec(agent: AgentSpec, extra_config: &str) -> Cluster {
        agent.clean_up();
        let dir = data_dir();
        let path = dir.path().join("hortator.toml");
        std::fs::write(&path, format!("{}\n{extra_config}", agent.config())).expect("write config");
        let args = [
            "--config".to_string(),
            path.display().to_string(),
            "--node-name".to_string(),
            agent.node.clone(),
            "--node-ip".to_string(),
            "127.0.0.1".to_string(),
        ];
        let mut cluster = Self::launch(dir, &args);
        cluster.agent = Some(agent);
        cluster.wait_node_ready();
        cluster
    }

    /// Stop (SIGTERM) and start again on the same data directory and arguments.
    pub fn restart(mut self) -> Cluster {
        self.stop();
        self.relaunch()
    }

    /// Kill the server with SIGKILL (no shutdown at all), then start it again on the same
    /// data directory and arguments.
    pub fn kill_and_restart(mut self) -> Cluster {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.relaunch()
    }

    fn relaunch(mut self) -> Cluster {
        let dir = std::mem::replace(&mut self.dir, data_dir());
        let args = std::mem::take(&mut self.args);
        let agent = self.agent.take();
        let mut cluster = Self::launch(dir, &args);
        cluster.agent = agent;
        if cluster.agent.is_some() {
            cluster.wait_node_ready();
        }
        cluster
    }

    fn wait_node_ready(&self) {
        let node = self
            .agent
            .as_ref()
            .map(|a| a.node.clone())
            .unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.kubectl(&[
                "get",
                "node",
                &node,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ]);
            if String::from_utf8_lossy(&out.stdout).trim() == "True" {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {node} did not become Ready; log:\n{}",
                tail(&self.log(), 30)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Start `hortator up` with `extra` arguments; without `--node-name` no agent runs.
    fn launch(dir: tempfile::TempDir, extra: &[String]) -> Cluster {
        let addr = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(dir.path().join("hortator.log"))
            .expect("log file");
        let mut command = Command::new(hortator_bin());
        command
            .args(["up", "--data-dir"])
            .arg(dir.path())
            .args(["--listen", &addr])
            .args(extra);
        if !extra.iter().any(|a| a == "--node-name") {
            command.arg("--no-agent");
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn hortator");
        let cluster = Cluster {
            child: Some(child),
            kubeconfig: dir.path().join("kubeconfig.yaml"),
            url: format!("http://{addr}"),
            addr,
            dir,
            args: extra.to_vec(),
            agent: None,
        };
        cluster.wait_ready();
        cluster
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            // A restarted cluster finds its previous kubeconfig: wait for the one
            // naming this server.
            let written = std::fs::read_to_string(&self.kubeconfig)
                .is_ok_and(|text| text.contains(&self.url));
            if written && std::net::TcpStream::connect(&self.addr).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("hortator did not start; log:\n{}", self.log());
    }

    /// Process id of the server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("hortator.log")).unwrap_or_default()
    }

    /// Run kubectl against the cluster.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_stdin(args, None)
    }

    /// Run kubectl with `stdin` as its standard input.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        use std::io::Write;
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .env("HOME", self.dir.path())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl must be installed at /usr/bin/kubectl");
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(text.as_bytes()).expect("write stdin");
        }
        child.wait_with_output().expect("kubectl output")
    }

    /// Run kubectl with `-o json`, assert success, return the parsed output.
    pub fn kubectl_json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.extend(["-o", "json"]);
        serde_json::from_str(&self.kubectl_ok(&args)).expect("kubectl JSON")
    }

    /// Run kubectl, assert success, return stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        self.kubectl_ok_stdin(args, None)
    }

    /// Run kubectl with stdin, assert success, return stdout.
    pub fn kubectl_ok_stdin(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.kubectl_stdin(args, stdin);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\nstdout: {}\nserver log tail:\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout),
            tail(&self.log(), 20)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run `hortctl` against the cluster.
    pub fn hortctl(&self, args: &[&str]) -> Output {
        Command::new(hortctl_bin())
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("run hortctl")
    }

    /// Run kubectl, assert failure, return stderr.
    pub fn kubectl_err(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Stop with SIGTERM and wait; returns the exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        terminate(self.child.take()?)
    }

    /// Stop and hand back the data directory, to restart on the same store.
    pub fn into_dir(mut self) -> tempfile::TempDir {
        self.stop();
        let dir = tempfile::Builder::new()
            .prefix("hortator-moved-")
            .tempdir()
            .expect("tempdir");
        std::mem::replace(&mut self.dir, dir)
    }

    /// Path of the repository's examples.
    pub fn example(path: &str) -> String {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(path)
            .display()
            .to_string()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        if let Some(agent) = &self.agent {
            agent.clean_up();
        }
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Build an example plugin of `examples/plugins/<dir>` (a crate of its own);
/// returns the component's path. It shares the guest build's target
/// directory (same profile), so its dependencies are already compiled.
pub fn build_example_plugin(dir: &str) -> PathBuf {
    let target = target_dir().join("plugins");
    let manifest = Cluster::example(&format!("plugins/{dir}/Cargo.toml"));
    let status =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
            ])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&target)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .status()
            .expect("run cargo");
    assert!(status.success(), "building examples/plugins/{dir} failed");
    target.join(format!(
        "wasm32-wasip2/release/{}.wasm",
        dir.replace('-', "_")
    ))
}

/// SIGTERM `child` and wait; SIGKILL after 20 s. Returns the exit status.
fn terminate(mut child: Child) -> Option<std::process::ExitStatus> {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait().ok()
}

/// Poll `check` until it returns `Some`, for up to 60 s.
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A running `hortator agent` against a cluster, stopped (SIGTERM, then SIGKILL) when
/// dropped. Its pods' containers stay (as a kubelet's do); [`AgentSpec::clean_up`] removes them.
pub struct Agent {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Agent {
    /// Start `hortator agent` for node `spec` on 127.0.0.1, its endpoint on `port`.
    pub fn start(cluster: &Cluster, spec: &AgentSpec, port: u16) -> Agent {
        Self::start_with(cluster, spec, "127.0.0.1", port, "")
    }

    /// Start `hortator agent` for node `spec` with address `node_ip`, its endpoint on `port`,
    /// and `extra_config` appended to its hortator.toml.
    pub fn start_with(
        cluster: &Cluster,
        spec: &AgentSpec,
        node_ip: &str,
        port: u16,
        extra_config: &str,
    ) -> Agent {
        let dir = data_dir();
        let config = dir.path().join("hortator.toml");
        std::fs::write(&config, format!("{}\n{extra_config}", spec.config()))
            .expect("write config");
        let child = Command::new(hortator_bin())
            .args(["agent", "--server", &cluster.url, "--node-name", &spec.node])
            .args([
                "--node-ip",
                node_ip,
                "--port",
                &port.to_string(),
                "--data-dir",
            ])
            .arg(dir.path())
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("agent.log")).expect("log file"))
            .spawn()
            .expect("spawn hortator agent");
        Agent {
            child: Some(child),
            dir,
        }
    }

    /// The agent's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// The agent's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stop with SIGTERM and wait; returns the exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        terminate(self.child.take()?)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running `hortator sim` against a cluster, stopped (SIGTERM, then
/// SIGKILL) when dropped.
pub struct Sim {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Sim {
    /// Start `hortator sim ARGS` and wait until its nodes are registered.
    pub fn start(cluster: &Cluster, args: &[&str]) -> Sim {
        let dir = tempfile::tempdir().expect("tempdir");
        let child = Command::new(hortator_bin())
            .args(["sim", "--kubeconfig"])
            .arg(&cluster.kubeconfig)
            .args(args)
            .stdout(std::fs::File::create(dir.path().join("stdout")).expect("stdout file"))
            .stderr(std::fs::File::create(dir.path().join("stderr")).expect("stderr file"))
            .spawn()
            .expect("spawn hortator sim");
        let sim = Sim {
            child: Some(child),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !sim.output().contains("registered") {
            assert!(
                Instant::now() < deadline,
                "hortator sim registered nothing; log:\n{}",
                sim.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        sim
    }

    /// What it printed on stdout.
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout")).unwrap_or_default()
    }

    /// The last lines of its log.
    pub fn log(&self) -> String {
        tail(
            &std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default(),
            30,
        )
    }

    /// Stop with SIGTERM and wait; returns the exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        terminate(self.child.take()?)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop();
    }
}
