//! The agent's HTTP endpoint: container logs and exec (WebSocket, v5.channel.k8s.io).
//!
//! The paths are the real kubelet's: `/containerLogs/{namespace}/{pod}/{container}` streams a
//! container's output as `text/plain`; `/exec/{namespace}/{pod}/{container}` upgrades to a
//! WebSocket speaking the Kubernetes channel protocols (`v5.channel.k8s.io`, or
//! `v4.channel.k8s.io`): binary frames whose first byte is the channel — 0 stdin, 1 stdout,
//! 2 stderr, 3 the final `metav1.Status`, 4 terminal resizes — plus, in v5, `[255, channel]`
//! from the client to close a stream. Errors are `metav1.Status` JSON.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::LogsOptionsBuilder;
use bytes::Bytes;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, Stream, StreamExt, TryStreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// The channel protocols exec speaks, preferred first.
const V5: &str = "v5.channel.k8s.io";
const V4: &str = "v4.channel.k8s.io";

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
/// v5: `[CLOSE, channel]` closes one stream.
const CLOSE: u8 = 255;

/// How long to wait for the client's answer to our close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Maps a pod's container to its Docker container.
pub trait ContainerLookup: Send + Sync + 'static {
    /// The Docker id of the container's current instance, or of the previous (last
    /// terminated) one.
    fn container_id(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
    ) -> Result<String, LookupError>;
}

/// Why a pod's container has no Docker container to stream from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The pod does not run on this node.
    #[error("pod not found")]
    PodNotFound,
    /// The pod has no container of that name.
    #[error("container not found")]
    ContainerNotFound,
    /// The container has not started yet.
    #[error("container is waiting to start: {reason}")]
    Waiting {
        /// The waiting reason (`ContainerCreating`, `ImagePullBackOff`, ...).
        reason: String,
    },
    /// `previous` was asked but the container never terminated.
    #[error("no previous terminated container")]
    NoPrevious,
}

/// The agent's routes: `/containerLogs/…`, `/exec/…` and `/healthz`.
pub fn router(docker: Docker, lookup: Arc<dyn ContainerLookup>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/containerLogs/{namespace}/{pod}/{container}", get(logs))
        .route("/exec/{namespace}/{pod}/{container}", get(exec).post(exec))
        .fallback(|| async {
            Failure::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                "the server could not find the requested resource",
            )
        })
        .with_state(Agent { docker, lookup })
}

#[derive(Clone)]
struct Agent {
    docker: Docker,
    lookup: Arc<dyn ContainerLookup>,
}

/// The container a request is about.
struct Target {
    namespace: String,
    pod: String,
    container: String,
}

impl Target {
    fn new((namespace, pod, container): (String, String, String)) -> Self {
        Target {
            namespace,
            pod,
            container,
        }
    }

    fn docker_id(&self, agent: &Agent, previous: bool) -> Result<String, Failure> {
        agent
            .lookup
            .container_id(&self.namespace, &self.pod, &self.container, previous)
            .map_err(|e| self.lookup_failure(e))
    }

    fn lookup_failure(&self, error: LookupError) -> Failure {
        let (pod, container) = (&self.pod, &self.container);
        match error {
            LookupError::PodNotFound => Failure::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("pods \"{pod}\" not found"),
            ),
            LookupError::ContainerNotFound => self.gone(),
            LookupError::Waiting { reason } => Failure::bad_request(format!(
                "container \"{container}\" in pod \"{pod}\" is waiting to start: {reason}"
            )),
            LookupError::NoPrevious => Failure::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{pod}\" not found"
            )),
        }
    }

    fn gone(&self) -> Failure {
        Failure::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!(
                "container \"{}\" not found in pod \"{}\"",
                self.container, self.pod
            ),
        )
    }

    fn docker_failure(&self, error: bollard::errors::Error) -> Failure {
        match &error {
            bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            } => self.gone(),
            bollard::errors::Error::DockerResponseServerError {
                status_code: 409,
                message,
            } => Failure::bad_request(format!(
                "container \"{}\" in pod \"{}\" cannot run commands: {message}",
                self.container, self.pod
            )),
            _ => Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                format!("Internal error occurred: {error}"),
            ),
        }
    }
}

/// An error answered as a `metav1.Status`.
#[derive(Debug)]
struct Failure {
    code: StatusCode,
    reason: &'static str,
    message: String,
}

impl Failure {
    fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Failure {
            code,
            reason,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code.as_u16(),
        });
        (
            self.code,
            [(header::CONTENT_TYPE, "application/json")],
            status.to_string(),
        )
            .into_response()
    }
}

/// The query parameters of a request, in order, repeated keys kept (`command`).
struct Params(Vec<(String, String)>);

impl Params {
    fn new(query: Result<Query<Vec<(String, String)>>, QueryRejection>) -> Result<Self, Failure> {
        query
            .map(|Query(pairs)| Params(pairs))
            .map_err(|e| Failure::bad_request(format!("invalid query: {}", e.body_text())))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A boolean, spelled as Go's `strconv.ParseBool` accepts; absent or empty is false.
    fn flag(&self, key: &str) -> Result<bool, Failure> {
        match self.get(key).unwrap_or("") {
            "" | "0" | "f" | "F" | "false" | "False" | "FALSE" => Ok(false),
            "1" | "t" | "T" | "true" | "True" | "TRUE" => Ok(true),
            other => Err(Failure::bad_request(format!(
                "invalid value for {key}: {other:?} (expected true or false)"
            ))),
        }
    }

    /// An integer of at least `min`.
    fn int(&self, key: &str, min: i64) -> Result<Option<i64>, Failure> {
        let Some(raw) = self.get(key).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        match raw.parse::<i64>() {
            Ok(v) if v >= min => Ok(Some(v)),
            Ok(_) => Err(Failure::bad_request(format!(
                "invalid value for {key}: {raw} (must be at least {min})"
            ))),
            Err(_) => Err(Failure::bad_request(format!(
                "invalid value for {key}: {raw:?} (expected an integer)"
            ))),
        }
    }
}

/// `GET /containerLogs/{namespace}/{pod}/{container}`.
async fn logs(
    State(agent): State<Agent>,
    Path(path): Path<(String, String, String)>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, Failure> {
    let target = Target::new(path);
    let params = Params::new(query)?;
    let follow = params.flag("follow")?;
    let previous = params.flag("previous")?;
    let timestamps = params.flag("timestamps")?;
    let tail = params.int("tailLines", 0)?;
    let limit = params.int("limitBytes", 1)?;
    let since = since(&params)?;
    let id = target.docker_id(&agent, previous)?;
    agent
        .docker
        .inspect_container(&id, None)
        .await
        .map_err(|e| target.docker_failure(e))?;
    let mut options = LogsOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .follow(follow)
        .timestamps(timestamps)
        .tail(&tail.map_or_else(|| "all".to_string(), |n| n.to_string()));
    if let Some(since) = since {
        options = options.since(since);
    }
    let output = agent
        .docker
        .logs(&id, Some(options.build()))
        .map_ok(LogOutput::into_bytes);
    let body = match limit {
        Some(limit) => Body::from_stream(limit_bytes(output, limit.unsigned_abs())),
        None => Body::from_stream(output),
    };
    Ok(([(header::CONTENT_TYPE, "text/plain")], body).into_response())
}

/// The Unix time logs start at, from `sinceSeconds` or `sinceTime` (RFC 3339).
fn since(params: &Params) -> Result<Option<i32>, Failure> {
    let start = match (params.int("sinceSeconds", 1)?, params.get("sinceTime")) {
        (Some(_), Some(_)) => {
            return Err(Failure::bad_request(
                "at most one of sinceTime or sinceSeconds may be specified",
            ));
        }
        (Some(seconds), None) => jiff::Timestamp::now().as_second().saturating_sub(seconds),
        (None, Some(time)) => time
            .parse::<jiff::Timestamp>()
            .map_err(|e| Failure::bad_request(format!("invalid value for sinceTime: {e}")))?
            .as_second(),
        (None, None) => return Ok(None),
    };
    Ok(Some(i32::try_from(start.max(0)).unwrap_or(i32::MAX)))
}

/// At most `limit` bytes of `stream`; ends as soon as the limit is reached.
fn limit_bytes<S, E>(stream: S, limit: u64) -> impl Stream<Item = Result<Bytes, E>>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    futures::stream::unfold((stream, limit), |(mut stream, left)| async move {
        if left == 0 {
            return None;
        }
        match stream.next().await? {
            Ok(mut chunk) => {
                chunk.truncate(usize::try_from(left).unwrap_or(usize::MAX));
                let left = left - chunk.len() as u64;
                Some((Ok(chunk), (stream, left)))
            }
            Err(e) => Some((Err(e), (stream, 0))),
        }
    })
}

/// What an exec session streams.
struct ExecOptions {
    command: Vec<String>,
    stdin: bool,
    tty: bool,
    v5: bool,
}

/// `GET|POST /exec/{namespace}/{pod}/{container}?command=…`, upgraded to a WebSocket.
async fn exec(
    State(agent): State<Agent>,
    Path(path): Path<(String, String, String)>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, Failure> {
    let target = Target::new(path);
    let params = Params::new(query)?;
    let command = params.all("command");
    if command.is_empty() {
        return Err(Failure::bad_request(
            "you must specify a command (command=…)",
        ));
    }
    let stdin = params.flag("stdin")?;
    let stdout = params.flag("stdout")?;
    let tty = params.flag("tty")?;
    // With a terminal, stderr is merged into stdout.
    let stderr = params.flag("stderr")? && !tty;
    if !(stdin || stdout || stderr) {
        return Err(Failure::bad_request(
            "you must specify at least 1 of stdin, stdout, stderr",
        ));
    }
    let id = target.docker_id(&agent, false)?;
    let upgrade = upgrade.map_err(|e| {
        Failure::bad_request(format!(
            "exec needs a WebSocket upgrade with protocol {V5} or {V4} (SPDY is not supported): {}",
            e.body_text()
        ))
    })?;
    let upgrade = upgrade.protocols([V5, V4]);
    let v5 = match upgrade.selected_protocol() {
        Some(protocol) => protocol == V5,
        None => {
            let offered: Vec<&str> = upgrade
                .requested_protocols()
                .filter_map(|p| p.to_str().ok())
                .collect();
            return Err(Failure::bad_request(format!(
                "none of the offered WebSocket protocols {offered:?} is supported; use {V5} or {V4}"
            )));
        }
    };
    let created = agent
        .docker
        .create_exec(
            &id,
            CreateExecOptions {
                attach_stdin: Some(stdin),
                attach_stdout: Some(stdout),
                attach_stderr: Some(stderr),
                tty: Some(tty),
                cmd: Some(command.clone()),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| target.docker_failure(e))?;
    let options = ExecOptions {
        command,
        stdin,
        tty,
        v5,
    };
    let docker = agent.docker;
    Ok(upgrade.on_upgrade(move |socket| session(docker, created.id, socket, options)))
}

type Sink = SplitSink<WebSocket, Message>;
type Input = Pin<Box<dyn AsyncWrite + Send>>;

/// Run an exec over an upgraded socket: start it attached, pump its output to the client and
/// the client's frames to it, then send the final Status and close the socket.
async fn session(docker: Docker, exec_id: String, socket: WebSocket, options: ExecOptions) {
    let (mut sink, source) = socket.split();
    let start = StartExecOptions {
        detach: false,
        tty: options.tty,
        output_capacity: None,
    };
    let (output, input) = match docker.start_exec(&exec_id, Some(start)).await {
        Ok(StartExecResults::Attached { output, input }) => (output, input),
        Ok(StartExecResults::Detached) => {
            let status = internal_error("the exec did not attach");
            finish(&mut sink, source, status).await;
            return;
        }
        Err(e) => {
            finish(&mut sink, source, internal_error(e)).await;
            return;
        }
    };
    let (stdin_tx, stdin_rx) = mpsc::channel(16);
    // Without stdin the input half stays open (unused) until the session ends.
    let (writer, _idle_input) = if options.stdin {
        (Some(tokio::spawn(write_stdin(input, stdin_rx))), None)
    } else {
        (None, Some(input))
    };
    let (gone_tx, gone_rx) = oneshot::channel();
    let mut reader = tokio::spawn(read_client(
        source,
        options.stdin.then_some(stdin_tx),
        Resizer {
            docker: docker.clone(),
            exec_id: exec_id.clone(),
            tty: options.tty,
        },
        options.v5,
        gone_tx,
    ));
    let exited = pump_output(output, &mut sink, gone_rx).await;
    if let Some(writer) = writer {
        writer.abort();
    }
    if !exited {
        reader.abort();
        return;
    }
    let status = exit_status(&docker, &exec_id, &options.command).await;
    if send_status_and_close(&mut sink, status).await
        && tokio::time::timeout(CLOSE_GRACE, &mut reader)
            .await
            .is_err()
    {
        reader.abort();
    }
}

/// Copy the exec's output to the client; true when it ended, false when the client went away.
async fn pump_output(
    mut output: Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>,
    sink: &mut Sink,
    mut gone: oneshot::Receiver<()>,
) -> bool {
    loop {
        let chunk = tokio::select! {
            chunk = output.next() => chunk,
            _ = &mut gone => return false,
        };
        let (channel, data) = match chunk {
            Some(Ok(LogOutput::StdOut { message } | LogOutput::Console { message })) => {
                (STDOUT, message)
            }
            Some(Ok(LogOutput::StdErr { message })) => (STDERR, message),
            Some(Ok(LogOutput::StdIn { .. })) => continue,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "reading exec output failed");
                return true;
            }
            None => return true,
        };
        if data.is_empty() {
            continue;
        }
        if sink
            .send(Message::Binary(frame(channel, &data)))
            .await
            .is_err()
        {
            return false;
        }
    }
}

/// Feed the client's stdin to the exec; close the exec's stdin when the client closes it.
async fn write_stdin(mut input: Input, mut data: mpsc::Receiver<Bytes>) {
    while let Some(chunk) = data.recv().await {
        if input.write_all(&chunk).await.is_err() || input.flush().await.is_err() {
            return;
        }
    }
    let _ = input.shutdown().await;
}

/// Resizes the exec's terminal.
struct Resizer {
    docker: Docker,
    exec_id: String,
    tty: bool,
}

impl Resizer {
    async fn resize(&self, payload: &[u8]) {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Size {
            width: u16,
            height: u16,
        }
        if !self.tty {
            return;
        }
        let size: Size = match serde_json::from_slice(payload) {
            Ok(size) => size,
            Err(e) => {
                tracing::debug!(error = %e, "ignoring a malformed resize message");
                return;
            }
        };
        let options = ResizeExecOptions {
            width: size.width,
            height: size.height,
        };
        if let Err(e) = self.docker.resize_exec(&self.exec_id, options).await {
            tracing::debug!(error = %e, "resizing the exec terminal failed");
        }
    }
}

/// Read the client's frames until it goes away: stdin data, the v5 close signal, resizes.
/// Pings are answered by the WebSocket layer while reading.
async fn read_client(
    mut source: SplitStream<WebSocket>,
    mut stdin: Option<mpsc::Sender<Bytes>>,
    resizer: Resizer,
    v5: bool,
    gone: oneshot::Sender<()>,
) {
    while let Some(Ok(message)) = source.next().await {
        let Message::Binary(data) = message else {
            continue;
        };
        let Some((&channel, payload)) = data.split_first() else {
            continue;
        };
        match channel {
            // kubectl opens stdin with an empty frame; there is nothing to write.
            STDIN if payload.is_empty() => {}
            STDIN => {
                if let Some(tx) = &stdin
                    && tx.send(data.slice(1..)).await.is_err()
                {
                    stdin = None;
                }
            }
            RESIZE => resizer.resize(payload).await,
            CLOSE if v5 && payload == [STDIN] => stdin = None,
            _ => {}
        }
    }
    let _ = gone.send(());
}

/// A binary frame on `channel`.
fn frame(channel: u8, data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(channel);
    out.extend_from_slice(data);
    out.into()
}

/// Report a failure before the exec ran, then close.
async fn finish(sink: &mut Sink, mut source: SplitStream<WebSocket>, status: Value) {
    if send_status_and_close(sink, status).await {
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            while source.next().await.is_some() {}
        })
        .await;
    }
}

/// Write the Status on the error channel and a normal close frame; true if both went out.
async fn send_status_and_close(sink: &mut Sink, status: Value) -> bool {
    let close = Message::Close(Some(CloseFrame {
        code: close_code::NORMAL,
        reason: "".into(),
    }));
    sink.send(Message::Binary(frame(ERROR, status.to_string().as_bytes())))
        .await
        .is_ok()
        && sink.send(close).await.is_ok()
}

/// The final Status of an exec, from its exit code.
async fn exit_status(docker: &Docker, exec_id: &str, command: &[String]) -> Value {
    // The output ends as the process exits; the engine records the code a moment later.
    for _ in 0..100 {
        match docker.inspect_exec(exec_id).await {
            Ok(inspect) if inspect.running != Some(true) => {
                return match inspect.exit_code {
                    Some(0) | None => json!({"metadata": {}, "status": "Success"}),
                    Some(code) => json!({
                        "metadata": {},
                        "status": "Failure",
                        "message": format!(
                            "command terminated with non-zero exit code: command '{}' exited with {code}",
                            command.join(" ")
                        ),
                        "reason": "NonZeroExitCode",
                        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
                    }),
                };
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => return internal_error(e),
        }
    }
    internal_error("the command's output ended but it is still running")
}

fn internal_error(error: impl std::fmt::Display) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("Internal error occurred: {error}"),
        "reason": "InternalError",
        "code": 500,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::net::SocketAddr;

    use bollard::models::ContainerCreateBody;
    use bollard::query_parameters::{
        CreateContainerOptions, CreateImageOptionsBuilder, WaitContainerOptions,
    };
    use http_body_util::BodyExt;
    use hyper_util::rt::TokioIo;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::{Message as WsMessage, protocol::CloseFrame as WsClose};

    use super::*;

    const IMAGE: &str = "hortator-test/busybox:latest";
    const LABEL: &str = "hortator-test";

    static IMAGE_READY: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

    async fn docker() -> Docker {
        Docker::connect_with_local_defaults()
            .unwrap()
            .negotiate_version()
            .await
            .unwrap()
    }

    /// Import Debian's static busybox as the test image unless it exists. Racing imports from
    /// other test processes only re-tag an identical image.
    async fn ensure_image(docker: &Docker) {
        IMAGE_READY
            .get_or_init(|| async {
                if docker.inspect_image(IMAGE).await.is_ok() {
                    return;
                }
                let mut tar = tar::Builder::new(Vec::new());
                tar.append_path_with_name("/bin/busybox", "bin/busybox")
                    .unwrap();
                let list = std::process::Command::new("/bin/busybox")
                    .arg("--list")
                    .output()
                    .unwrap();
                for applet in String::from_utf8_lossy(&list.stdout).lines() {
                    if applet == "busybox" {
                        continue;
                    }
                    let mut header = tar::Header::new_gnu();
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_size(0);
                    header.set_mode(0o777);
                    tar.append_link(&mut header, format!("bin/{applet}"), "busybox")
                        .unwrap();
                }
                let options = CreateImageOptionsBuilder::new()
                    .from_src("-")
                    .repo("hortator-test/busybox")
                    .tag("latest")
                    .changes(vec![r#"CMD ["/bin/sh"]"#.to_string()])
                    .build();
                docker
                    .create_image(
                        Some(options),
                        Some(bollard::body_full(tar.into_inner().unwrap().into())),
                        None,
                    )
                    .try_for_each(|_| async { Ok(()) })
                    .await
                    .unwrap();
            })
            .await;
    }

    /// Containers made by a test, removed when it ends (even when it fails).
    #[derive(Default)]
    struct Containers(Vec<String>);

    impl Containers {
        async fn run(&mut self, docker: &Docker, command: &[&str], tty: bool) -> String {
            ensure_image(docker).await;
            let body = ContainerCreateBody {
                image: Some(IMAGE.into()),
                cmd: Some(command.iter().map(|s| s.to_string()).collect()),
                tty: Some(tty),
                labels: Some(HashMap::from([(LABEL.into(), "kubelet-server".into())])),
                ..Default::default()
            };
            let id = docker
                .create_container(None::<CreateContainerOptions>, body)
                .await
                .unwrap()
                .id;
            self.0.push(id.clone());
            docker.start_container(&id, None).await.unwrap();
            id
        }
    }

    impl Drop for Containers {
        fn drop(&mut self) {
            if !self.0.is_empty() {
                let _ = std::process::Command::new("docker")
                    .args(["rm", "-f"])
                    .args(&self.0)
                    .output();
            }
        }
    }

    async fn wait_exit(docker: &Docker, id: &str) {
        let _ = docker
            .wait_container(id, None::<WaitContainerOptions>)
            .try_collect::<Vec<_>>()
            .await;
    }

    /// Pod `web` in `default`: containers by (name, previous).
    #[derive(Default)]
    struct Lookup(HashMap<(String, bool), Result<String, LookupError>>);

    impl Lookup {
        fn with(
            mut self,
            container: &str,
            previous: bool,
            id: Result<String, LookupError>,
        ) -> Self {
            self.0.insert((container.into(), previous), id);
            self
        }
    }

    impl ContainerLookup for Lookup {
        fn container_id(
            &self,
            namespace: &str,
            pod: &str,
            container: &str,
            previous: bool,
        ) -> Result<String, LookupError> {
            if namespace != "default" || pod != "web" {
                return Err(LookupError::PodNotFound);
            }
            self.0
                .get(&(container.to_string(), previous))
                .cloned()
                .unwrap_or(Err(LookupError::ContainerNotFound))
        }
    }

    async fn serve(docker: Docker, lookup: Lookup) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(docker, Arc::new(lookup));
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    async fn request(addr: SocketAddr, path: &str) -> hyper::Response<hyper::body::Incoming> {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::get(path)
            .header("host", addr.to_string())
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
        sender.send_request(req).await.unwrap()
    }

    async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        let response = request(addr, path).await;
        let code = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (code, String::from_utf8_lossy(&body).into_owned())
    }

    fn status_message(body: &str) -> String {
        let status: Value = serde_json::from_str(body).unwrap();
        assert_eq!(status["kind"], "Status", "{body}");
        status["message"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn logs_tail_timestamps_limits_and_previous() {
        let docker = docker().await;
        let mut containers = Containers::default();
        let current = containers
            .run(
                &docker,
                &[
                    "sh",
                    "-c",
                    "echo oops >&2; sleep 0.2; echo one; echo two; echo three",
                ],
                false,
            )
            .await;
        let previous = containers
            .run(&docker, &["echo", "previous instance"], false)
            .await;
        wait_exit(&docker, &current).await;
        wait_exit(&docker, &previous).await;
        let lookup = Lookup::default()
            .with("app", false, Ok(current))
            .with("app", true, Ok(previous))
            .with("fresh", true, Err(LookupError::NoPrevious))
            .with(
                "fresh",
                false,
                Err(LookupError::Waiting {
                    reason: "ContainerCreating".into(),
                }),
            );
        let addr = serve(docker, lookup).await;

        let base = "/containerLogs/default/web/app";
        assert_eq!(
            get(addr, base).await,
            (200, "oops\none\ntwo\nthree\n".into())
        );
        assert_eq!(
            get(addr, &format!("{base}?tailLines=2")).await,
            (200, "two\nthree\n".into())
        );
        assert_eq!(
            get(addr, &format!("{base}?limitBytes=7")).await,
            (200, "oops\non".into())
        );
        assert_eq!(
            get(addr, &format!("{base}?previous=true")).await,
            (200, "previous instance\n".into())
        );
        assert_eq!(
            get(addr, &format!("{base}?sinceTime=2100-01-01T00:00:00Z")).await,
            (200, String::new())
        );
        let (code, body) = get(addr, &format!("{base}?timestamps=true&tailLines=1")).await;
        assert_eq!(code, 200);
        let (stamp, line) = body.split_once(' ').unwrap();
        assert_eq!(line, "three\n");
        assert!(stamp.parse::<jiff::Timestamp>().is_ok(), "{body}");

        let (code, body) = get(addr, "/containerLogs/default/web/fresh").await;
        assert_eq!(code, 400);
        assert_eq!(
            status_message(&body),
            "container \"fresh\" in pod \"web\" is waiting to start: ContainerCreating"
        );
        let (code, body) = get(addr, "/containerLogs/default/web/fresh?previous=1").await;
        assert_eq!(code, 400);
        assert_eq!(
            status_message(&body),
            "previous terminated container \"fresh\" in pod \"web\" not found"
        );
        let (code, body) = get(addr, "/containerLogs/default/nope/app").await;
        assert_eq!(code, 404);
        assert_eq!(status_message(&body), "pods \"nope\" not found");
        let (code, body) = get(addr, "/containerLogs/default/web/nope").await;
        assert_eq!(code, 404);
        assert_eq!(
            status_message(&body),
            "container \"nope\" not found in pod \"web\""
        );
        let (code, body) = get(addr, &format!("{base}?tailLines=-1")).await;
        assert_eq!(code, 400, "{body}");
        assert!(status_message(&body).contains("tailLines"), "{body}");
        assert_eq!(get(addr, "/healthz").await, (200, "ok".into()));
    }

    #[tokio::test]
    async fn logs_follow_until_the_container_stops() {
        let docker = docker().await;
        let mut containers = Containers::default();
        let id = containers
            .run(
                &docker,
                &["sh", "-c", "echo first; sleep 2; echo second"],
                false,
            )
            .await;
        let addr = serve(docker, Lookup::default().with("app", false, Ok(id))).await;
        let response = request(addr, "/containerLogs/default/web/app?follow=true").await;
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        let first = tokio::time::timeout(Duration::from_millis(1500), body.frame())
            .await
            .expect("the first line arrives before the container ends")
            .unwrap()
            .unwrap()
            .into_data()
            .unwrap();
        assert_eq!(first, "first\n");
        let rest = tokio::time::timeout(Duration::from_secs(10), body.collect())
            .await
            .expect("the stream ends when the container stops")
            .unwrap()
            .to_bytes();
        assert_eq!(rest, "second\n");
    }

    type Client = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;

    async fn connect(addr: SocketAddr, path: &str, protocols: &str) -> (Client, String) {
        let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", protocols.parse().unwrap());
        let (ws, response) = tokio_tungstenite::connect_async(req).await.unwrap();
        let protocol = response.headers()["Sec-WebSocket-Protocol"]
            .to_str()
            .unwrap()
            .to_string();
        (ws, protocol)
    }

    /// What a client saw of an exec session.
    #[derive(Debug, Default)]
    struct Seen {
        stdout: Vec<u8>,
        stderr: Vec<u8>,
        status: Option<Value>,
        close: Option<WsClose>,
    }

    async fn collect(ws: &mut Client) -> Seen {
        let mut seen = Seen::default();
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .expect("the session ends");
            match message {
                Some(Ok(WsMessage::Binary(data))) => match data[0] {
                    STDOUT => seen.stdout.extend_from_slice(&data[1..]),
                    STDERR => seen.stderr.extend_from_slice(&data[1..]),
                    ERROR => seen.status = Some(serde_json::from_slice(&data[1..]).unwrap()),
                    other => panic!("unexpected channel {other}"),
                },
                Some(Ok(WsMessage::Close(frame))) => seen.close = frame,
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("{e}"),
                None => return seen,
            }
        }
    }

    async fn sleeper(containers: &mut Containers, docker: &Docker) -> SocketAddr {
        let id = containers.run(docker, &["sleep", "1000"], false).await;
        serve(docker.clone(), Lookup::default().with("app", false, Ok(id))).await
    }

    #[tokio::test]
    async fn exec_splits_streams_and_reports_the_exit_code() {
        let docker = docker().await;
        let mut containers = Containers::default();
        let addr = sleeper(&mut containers, &docker).await;
        let (mut ws, protocol) = connect(
            addr,
            "/exec/default/web/app?command=sh&command=-c&command=echo+out%3B+echo+err+%3E%262%3B+exit+3&stdout=true&stderr=true",
            "v5.channel.k8s.io, v4.channel.k8s.io",
        )
        .await;
        assert_eq!(protocol, V5);
        let seen = collect(&mut ws).await;
        assert_eq!(seen.stdout, b"out\n");
        assert_eq!(seen.stderr, b"err\n");
        let status = seen.status.unwrap();
        assert_eq!(status["status"], "Failure");
        assert_eq!(status["reason"], "NonZeroExitCode");
        assert_eq!(
            status["details"]["causes"],
            json!([{"reason": "ExitCode", "message": "3"}])
        );
        assert!(
            status["message"]
                .as_str()
                .unwrap()
                .starts_with("command terminated with non-zero exit code: "),
            "{status}"
        );
        assert_eq!(seen.close.unwrap().code, CloseCode::Normal);

        let (mut ws, protocol) = connect(
            addr,
            "/exec/default/web/app?command=echo&command=hi&stdout=1",
            "v4.channel.k8s.io",
        )
        .await;
        assert_eq!(protocol, V4);
        let seen = collect(&mut ws).await;
        assert_eq!(seen.stdout, b"hi\n");
        assert_eq!(
            seen.status.unwrap(),
            json!({"metadata": {}, "status": "Success"})
        );
    }

    #[tokio::test]
    async fn exec_stdin_until_the_close_signal() {
        let docker = docker().await;
        let mut containers = Containers::default();
        let addr = sleeper(&mut containers, &docker).await;
        let (mut ws, _) = connect(
            addr,
            "/exec/default/web/app?command=cat&stdin=true&stdout=true&stderr=true",
            "v5.channel.k8s.io",
        )
        .await;
        for data in [&[STDIN][..], b"\x00hello ", b"\x00world\n", &[CLOSE, STDIN]] {
            ws.send(WsMessage::Binary(Bytes::copy_from_slice(data)))
                .await
                .unwrap();
        }
        let seen = collect(&mut ws).await;
        assert_eq!(seen.stdout, b"hello world\n");
        assert_eq!(seen.status.unwrap()["status"], "Success");
    }

    #[tokio::test]
    async fn exec_with_a_terminal() {
        let docker = docker().await;
        let mut containers = Containers::default();
        let addr = sleeper(&mut containers, &docker).await;
        let (mut ws, _) = connect(
            addr,
            "/exec/default/web/app?command=sh&command=-c&command=read+x%3B+tty%3B+stty+size&stdin=true&stdout=true&stderr=true&tty=true",
            "v5.channel.k8s.io",
        )
        .await;
        for data in [&b"\x04{\"Width\":100,\"Height\":40}"[..], b"\x00go\r"] {
            ws.send(WsMessage::Binary(Bytes::copy_from_slice(data)))
                .await
                .unwrap();
        }
        let seen = collect(&mut ws).await;
        let out = String::from_utf8_lossy(&seen.stdout);
        assert!(out.contains("/dev/pts/"), "{out:?}");
        assert!(out.contains("40 100"), "{out:?}");
        assert!(seen.stderr.is_empty());
        assert_eq!(seen.status.unwrap()["status"], "Success");
    }

    #[tokio::test]
    async fn exec_refuses_what_it_cannot_serve() {
        let docker = docker().await;
        let mut containers = Containers::default();
        let stopped = containers.run(&docker, &["true"], false).await;
        wait_exit(&docker, &stopped).await;
        let lookup = Lookup::default().with("done", false, Ok(stopped)).with(
            "fresh",
            false,
            Err(LookupError::Waiting {
                reason: "ImagePullBackOff".into(),
            }),
        );
        let addr = serve(docker, lookup).await;
        let (code, body) = get(addr, "/exec/default/web/fresh?command=ls&stdout=true").await;
        assert_eq!(code, 400);
        assert_eq!(
            status_message(&body),
            "container \"fresh\" in pod \"web\" is waiting to start: ImagePullBackOff"
        );
        let (code, body) = get(addr, "/exec/default/web/done?command=ls&stdout=true").await;
        assert_eq!(code, 400);
        assert!(status_message(&body).contains("WebSocket"), "{body}");
        let (code, body) = get(addr, "/exec/default/web/done?stdout=true").await;
        assert_eq!(code, 400);
        assert!(status_message(&body).contains("command"), "{body}");
        let (code, body) = get(addr, "/exec/default/web/done?command=ls").await;
        assert_eq!(code, 400);
        assert!(status_message(&body).contains("at least 1"), "{body}");

        let mut req = format!("ws://{addr}/exec/default/web/done?command=ls&stdout=true")
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", "channel.k8s.io".parse().unwrap());
        match tokio_tungstenite::connect_async(req).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 400);
                let body =
                    String::from_utf8_lossy(response.body().as_deref().unwrap_or(&[])).into_owned();
                assert!(
                    status_message(&body).contains("v5.channel.k8s.io"),
                    "{body}"
                );
            }
            other => panic!("expected a refused handshake, got {other:?}"),
        }
        let mut req = format!("ws://{addr}/exec/default/web/done?command=ls&stdout=true")
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", V5.parse().unwrap());
        match tokio_tungstenite::connect_async(req).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 400);
                let body =
                    String::from_utf8_lossy(response.body().as_deref().unwrap_or(&[])).into_owned();
                assert!(status_message(&body).contains("not running"), "{body}");
            }
            other => panic!("expected a refused handshake, got {other:?}"),
        }
    }
}
