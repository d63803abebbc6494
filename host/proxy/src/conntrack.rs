//! Ending kernel-mode connections to removed endpoints: their conntrack
//! entries are deleted with `conntrack -D` (conntrack-tools), so that the
//! next packet of such a connection is NATed afresh (to another endpoint,
//! which resets it, or rejected) instead of still reaching the old one.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::Command;

use crate::model::Protocol;

/// One kind of connection to delete: those addressed to a service frontend
/// (`destination`, or any address when `None`, at `port`) that were NATed to
/// `endpoint`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Flow {
    pub(crate) protocol: Protocol,
    pub(crate) destination: Option<Ipv4Addr>,
    pub(crate) port: u16,
    pub(crate) endpoint: SocketAddrV4,
}

impl Flow {
    /// The `conntrack` arguments deleting these entries.
    fn arguments(&self) -> Vec<String> {
        let mut args = vec![
            "-D".to_string(),
            "-p".to_string(),
            self.protocol.as_str().to_string(),
        ];
        if let Some(destination) = self.destination {
            args.extend(["--orig-dst".to_string(), destination.to_string()]);
        }
        args.extend([
            "--orig-port-dst".to_string(),
            self.port.to_string(),
            "--reply-src".to_string(),
            self.endpoint.ip().to_string(),
            "--reply-port-src".to_string(),
            self.endpoint.port().to_string(),
        ]);
        args
    }
}

/// Whether the `conntrack` tool can run.
pub(crate) fn available() -> bool {
    Command::new("conntrack")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Deletes the entries of `flow`; finding none is fine. Blocks.
pub(crate) fn delete(flow: &Flow) -> Result<(), String> {
    let output = Command::new("conntrack")
        .args(flow.arguments())
        .output()
        .map_err(|e| format!("run conntrack: {e}"))?;
    // conntrack exits with 1 when nothing matched ("0 flow entries ...").
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success() || stderr.contains("0 flow entries") {
        return Ok(());
    }
    Err(format!(
        "conntrack {}: {}",
        flow.arguments().join(" "),
        stderr.trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_select_the_nated_flows() {
        let flow = Flow {
            protocol: Protocol::Udp,
            destination: Some(Ipv4Addr::new(10, 254, 0, 10)),
            port: 53,
            endpoint: "10.20.0.2:5353".parse().unwrap(),
        };
        assert_eq!(
            flow.arguments().join(" "),
            "-D -p udp --orig-dst 10.254.0.10 --orig-port-dst 53 --reply-src 10.20.0.2 --reply-port-src 5353"
        );
        let any = Flow {
            destination: None,
            ..flow
        };
        assert_eq!(
            any.arguments().join(" "),
            "-D -p udp --orig-port-dst 53 --reply-src 10.20.0.2 --reply-port-src 5353"
        );
    }
}
