//! Container lifecycle hooks: `postStart` runs right after the container starts (a failure
//! kills the container, which is then restarted as the pod's policy says) and `preStop` runs
//! before the container is stopped, inside its termination grace period. A hook is an exec in
//! the container, an HTTP GET to the pod, or a sleep.

use std::time::Duration;

use k8s_openapi::api::core::v1::LifecycleHandler;

use crate::probes::{self, Outcome, Target};

/// Which hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hook {
    /// After the container started.
    PostStart,
    /// Before the container is stopped.
    PreStop,
}

impl Hook {
    /// The reason of the Warning event that reports its failure.
    pub(crate) fn failure_reason(self) -> &'static str {
        match self {
            Hook::PostStart => "FailedPostStartHook",
            Hook::PreStop => "FailedPreStopHook",
        }
    }
}

/// Run `handler` for `target`'s container, for at most `timeout`; on failure, the message of
/// the event, worded as the kubelet's (`pod` is `name_namespace(uid)`).
pub(crate) async fn run(
    handler: &LifecycleHandler,
    target: &Target<'_>,
    pod: &str,
    timeout: Duration,
) -> Result<(), String> {
    let container = &target.container.name;
    let (kind, what) = if let Some(exec) = &handler.exec {
        let command = exec.command.as_deref().unwrap_or_default();
        ("Exec", format!("[{}]", command.join(" ")))
    } else if let Some(http) = &handler.http_get {
        ("HTTP", http.path.clone().unwrap_or_else(|| "/".into()))
    } else if let Some(sleep) = &handler.sleep {
        ("Sleep", format!("{}s", sleep.seconds))
    } else {
        return Err(format!(
            "lifecycle hook for Container {container:?} in Pod {pod:?} has no exec, httpGet or sleep action"
        ));
    };
    let action = async {
        if let Some(sleep) = &handler.sleep {
            let seconds = u64::try_from(sleep.seconds).unwrap_or(0);
            tokio::time::sleep(Duration::from_secs(seconds)).await;
            return Outcome::Success;
        }
        probes::act(
            handler.exec.as_ref(),
            handler.http_get.as_ref(),
            None,
            target,
        )
        .await
    };
    let failure = match tokio::time::timeout(timeout, action).await {
        Ok(Outcome::Success) => return Ok(()),
        // A sleep cut short by the grace period is not a failure.
        Err(_) if handler.sleep.is_some() => return Ok(()),
        Ok(Outcome::Failure(message)) => message,
        Err(_) => format!("timed out after {}s", timeout.as_secs()),
    };
    Err(format!(
        "{kind} lifecycle hook ({what}) for Container {container:?} in Pod {pod:?} failed - error: {failure}"
    ))
}
