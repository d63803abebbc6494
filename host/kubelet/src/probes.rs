//! Liveness, readiness and startup probes: exec (in the container), httpGet and tcpSocket
//! (to the pod's address), with the probe's delay, period, timeout and thresholds.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecResults};
use futures::StreamExt;
use http_body_util::Empty;
use k8s_openapi::api::core::v1::{Container, ExecAction, HTTPGetAction, Probe, TCPSocketAction};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::time::Instant;

/// The outcome of one probe run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The probe passed.
    Success,
    /// The probe failed, and why.
    Failure(String),
}

/// Where probes run.
pub(crate) struct Target<'a> {
    /// The engine.
    pub docker: &'a Docker,
    /// The container's engine id (exec probes).
    pub container_id: &'a str,
    /// The container spec (named ports).
    pub container: &'a Container,
    /// The pod's address.
    pub pod_ip: IpAddr,
}

/// Run `probe` once.
pub(crate) async fn run(probe: &Probe, target: &Target<'_>) -> Outcome {
    let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
    match tokio::time::timeout(timeout, run_inner(probe, target)).await {
        Ok(outcome) => outcome,
        Err(_) => Outcome::Failure(format!("probe timed out after {}s", timeout.as_secs())),
    }
}

async fn run_inner(probe: &Probe, target: &Target<'_>) -> Outcome {
    act(
        probe.exec.as_ref(),
        probe.http_get.as_ref(),
        probe.tcp_socket.as_ref(),
        target,
    )
    .await
}

/// Run the action given (probes and lifecycle hooks share them): an exec in the container,
/// an HTTP GET or a TCP connection to the pod.
pub(crate) async fn act(
    exec: Option<&ExecAction>,
    http_get: Option<&HTTPGetAction>,
    tcp_socket: Option<&TCPSocketAction>,
    target: &Target<'_>,
) -> Outcome {
    if let Some(exec) = exec {
        return exec_probe(target, exec.command.clone().unwrap_or_default()).await;
    }
    if let Some(http) = http_get {
        let port = match resolve_port(&http.port, target.container) {
            Ok(p) => p,
            Err(e) => return Outcome::Failure(e),
        };
        if http
            .scheme
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("HTTPS"))
        {
            return Outcome::Failure("HTTPS probes are not supported".into());
        }
        let host = match http.host.as_deref().filter(|h| !h.is_empty()) {
            Some(h) => match h.parse() {
                Ok(ip) => ip,
                Err(_) => return Outcome::Failure(format!("probe host {h:?} is not an address")),
            },
            None => target.pod_ip,
        };
        let headers: Vec<(String, String)> = http
            .http_headers
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        let path = http.path.as_deref().unwrap_or("/");
        return http_probe(SocketAddr::new(host, port), path, &headers).await;
    }
    if let Some(tcp) = tcp_socket {
        let port = match resolve_port(&tcp.port, target.container) {
            Ok(p) => p,
            Err(e) => return Outcome::Failure(e),
        };
        let address = SocketAddr::new(target.pod_ip, port);
        return match tokio::net::TcpStream::connect(address).await {
            Ok(_) => Outcome::Success,
            Err(e) => Outcome::Failure(format!("dial tcp {address}: {e}")),
        };
    }
    Outcome::Failure("the probe has no exec, httpGet or tcpSocket handler".into())
}

/// A numeric port, or a named port of the container.
fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    match port {
        IntOrString::Int(p) => u16::try_from(*p).map_err(|_| format!("invalid port {p}")),
        IntOrString::String(name) => {
            if let Ok(p) = name.parse::<u16>() {
                return Ok(p);
            }
            container
                .ports
                .as_deref()
                .unwrap_or_default()
                .iter()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok())
                .ok_or_else(|| format!("port {name:?} is not a named port of the container"))
        }
    }
}

async fn exec_probe(target: &Target<'_>, command: Vec<String>) -> Outcome {
    let options = CreateExecOptions {
        cmd: Some(command),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let exec = match target
        .docker
        .create_exec(target.container_id, options)
        .await
    {
        Ok(e) => e,
        Err(e) => return Outcome::Failure(format!("exec failed: {e}")),
    };
    let mut output = Vec::new();
    match target.docker.start_exec(&exec.id, None).await {
        Ok(StartExecResults::Attached {
            output: mut stream, ..
        }) => {
            while let Some(Ok(chunk)) = stream.next().await {
                if output.len() < 4096 {
                    output.extend_from_slice(&chunk.into_bytes());
                }
            }
        }
        Ok(StartExecResults::Detached) => {}
        Err(e) => return Outcome::Failure(format!("exec failed: {e}")),
    }
    match target.docker.inspect_exec(&exec.id).await {
        Ok(inspect) if inspect.exit_code == Some(0) => Outcome::Success,
        Ok(inspect) => Outcome::Failure(format!(
            "command exited with {}: {}",
            inspect.exit_code.unwrap_or(-1),
            String::from_utf8_lossy(&output).trim()
        )),
        Err(e) => Outcome::Failure(format!("exec failed: {e}")),
    }
}

async fn http_probe(address: SocketAddr, path: &str, headers: &[(String, String)]) -> Outcome {
    let failure = |e: &dyn std::fmt::Display| {
        Outcome::Failure(format!("Get \"http://{address}{path}\": {e}"))
    };
    let stream = match tokio::net::TcpStream::connect(address).await {
        Ok(s) => s,
        Err(e) => return failure(&e),
    };
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, connection) = match hyper::client::conn::http1::handshake(io).await {
        Ok(pair) => pair,
        Err(e) => return failure(&e),
    };
    let driver = tokio::spawn(connection);
    let mut request = http::Request::get(path)
        .header(http::header::HOST, address.to_string())
        .header(http::header::USER_AGENT, "kube-probe/1.32");
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let request = match request.body(Empty::<bytes::Bytes>::new()) {
        Ok(r) => r,
        Err(e) => return failure(&e),
    };
    let outcome = match sender.send_request(request).await {
        Ok(response) if (200..400).contains(&response.status().as_u16()) => Outcome::Success,
        Ok(response) => Outcome::Failure(format!(
            "HTTP probe failed with statuscode: {}",
            response.status().as_u16()
        )),
        Err(e) => failure(&e),
    };
    driver.abort();
    outcome
}

/// One probe's schedule and counters for one container instance.
#[derive(Debug, Clone)]
pub(crate) struct Tracker {
    probe: Probe,
    next: Instant,
    successes: i32,
    failures: i32,
    /// The current verdict: `None` until the thresholds decide.
    pub verdict: Option<bool>,
    /// The last failure's message.
    pub last_failure: Option<String>,
}

impl Tracker {
    /// A tracker for a container that started at `started`.
    pub fn new(probe: Probe, started: Instant) -> Tracker {
        let delay = Duration::from_secs(probe.initial_delay_seconds.unwrap_or(0).max(0) as u64);
        Tracker {
            probe,
            next: started + delay,
            successes: 0,
            failures: 0,
            verdict: None,
            last_failure: None,
        }
    }

    /// The probe spec.
    pub fn probe(&self) -> &Probe {
        &self.probe
    }

    /// When the probe is due next.
    pub fn due(&self) -> Instant {
        self.next
    }

    /// Record an outcome; returns whether the verdict changed.
    pub fn record(&mut self, outcome: Outcome, now: Instant) -> bool {
        let period = Duration::from_secs(self.probe.period_seconds.unwrap_or(10).max(1) as u64);
        self.next = now + period;
        let before = self.verdict;
        match outcome {
            Outcome::Success => {
                self.failures = 0;
                self.successes += 1;
                if self.successes >= self.probe.success_threshold.unwrap_or(1).max(1) {
                    self.verdict = Some(true);
                }
            }
            Outcome::Failure(message) => {
                self.successes = 0;
                self.failures += 1;
                self.last_failure = Some(message);
                if self.failures >= self.probe.failure_threshold.unwrap_or(3).max(1) {
                    self.verdict = Some(false);
                }
            }
        }
        before != self.verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn thresholds_decide_the_verdict() {
        let probe: Probe = serde_json::from_value(
            json!({"failureThreshold": 2, "successThreshold": 2, "periodSeconds": 1}),
        )
        .unwrap();
        let now = Instant::now();
        let mut t = Tracker::new(probe, now);
        assert_eq!(t.due(), now);
        assert!(!t.record(Outcome::Success, now));
        assert!(t.record(Outcome::Success, now));
        assert_eq!(t.verdict, Some(true));
        assert!(!t.record(Outcome::Failure("x".into()), now));
        assert!(t.record(Outcome::Failure("y".into()), now));
        assert_eq!(t.verdict, Some(false));
        assert_eq!(t.last_failure.as_deref(), Some("y"));
        assert_eq!(t.due(), now + Duration::from_secs(1));
    }

    #[test]
    fn named_ports_resolve() {
        let c: Container = serde_json::from_value(
            json!({"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}),
        )
        .unwrap();
        assert_eq!(
            resolve_port(&IntOrString::String("http".into()), &c),
            Ok(8080)
        );
        assert_eq!(resolve_port(&IntOrString::Int(81), &c), Ok(81));
        assert!(resolve_port(&IntOrString::String("nope".into()), &c).is_err());
    }

    #[tokio::test]
    async fn http_and_tcp_probes_against_a_local_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = [0u8; 1024];
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    let status = if buf[..n].starts_with(b"GET /bad") {
                        "500 Oops"
                    } else {
                        "200 OK"
                    };
                    let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
                    let _ = socket.write_all(reply.as_bytes()).await;
                });
            }
        });
        assert_eq!(http_probe(address, "/healthz", &[]).await, Outcome::Success);
        assert!(
            matches!(http_probe(address, "/bad", &[]).await, Outcome::Failure(m) if m.contains("500"))
        );
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed_address = closed.local_addr().unwrap();
        drop(closed);
        assert!(matches!(
            http_probe(closed_address, "/", &[]).await,
            Outcome::Failure(_)
        ));
    }
}
