//! The iptables plumbing the node agent's network rules and the service proxy share: a
//! ruleset applied in one `iptables-restore --noflush` transaction, and chain names that fit
//! iptables' 28-character limit.

use std::io::Write;
use std::process::{Command, Stdio};

/// The longest chain name iptables accepts.
pub const MAX_CHAIN_NAME: usize = 28;

/// Why a ruleset was not applied.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// `iptables-restore` could not be run.
    #[error("cannot run iptables-restore: {0}")]
    Run(std::io::Error),
    /// The ruleset could not be handed to it.
    #[error("cannot write to iptables-restore: {0}")]
    Write(std::io::Error),
    /// It refused the ruleset (nothing was applied).
    #[error("iptables-restore: {message}{}", line.as_ref().map(|l| format!(" (input: {l})")).unwrap_or_default())]
    Refused {
        /// Its error output.
        message: String,
        /// The input line it points at, when it names one.
        line: Option<String>,
    },
}

/// Apply `rules` (iptables-restore input: tables, chain declarations, rules, `COMMIT`) in one
/// transaction, leaving every chain it does not name as it is.
pub fn restore(rules: &str) -> Result<(), RestoreError> {
    let mut child = Command::new("iptables-restore")
        .args(["--noflush", "--wait"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(RestoreError::Run)?;
    let written = match child.stdin.take() {
        Some(mut stdin) => stdin.write_all(rules.as_bytes()),
        None => Ok(()),
    };
    let output = child.wait_with_output().map_err(RestoreError::Run)?;
    if !output.status.success() {
        let message = String::from_utf8_lossy(&output.stderr).trim().to_string();
        let line = failed_line(&message, rules).map(str::to_string);
        return Err(RestoreError::Refused { message, line });
    }
    written.map_err(RestoreError::Write)
}

/// The input line an `iptables-restore` error message ("… line N failed") points at.
fn failed_line<'a>(stderr: &str, input: &'a str) -> Option<&'a str> {
    let after = stderr.split("line ").nth(1)?;
    let number: usize = after
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    input.lines().nth(number.checked_sub(1)?)
}

/// The 32-bit FNV-1a hash of `bytes`: short, stable names from long identities.
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    })
}

/// A suffix of at most `max` characters for chains named after `text`: its letters, digits,
/// '-' and '_' when that is all it has and it fits, else a prefix of them and a hash of the
/// whole, so that different texts give different suffixes.
pub fn chain_suffix(text: &str, max: usize) -> String {
    let clean: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .collect();
    if !clean.is_empty() && clean.len() <= max && clean.len() == text.len() {
        return clean;
    }
    let prefix: String = clean.chars().take(max.saturating_sub(9)).collect();
    format!("{prefix}-{:08x}", fnv1a32(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_fit_and_stay_distinct() {
        let max = MAX_CHAIN_NAME - "HORTATOR-MASQ-".len();
        assert_eq!(chain_suffix("node-1", max), "node-1");
        let long = chain_suffix("a-rather-long-node-name.example.com", max);
        assert_eq!(long.len(), max);
        assert!(long.starts_with("a-ra"), "{long}");
        assert_ne!(
            long,
            chain_suffix("a-rather-long-node-name.example.org", max)
        );
        let dotted = chain_suffix("n.1", max);
        assert!(dotted.starts_with("n1-") && dotted.len() == 11, "{dotted}");
        assert_eq!(dotted, chain_suffix("n.1", max));
    }

    #[test]
    fn the_failed_line_is_found_in_the_input() {
        let input = "*nat\n:A - [0:0]\n-A A -j BOGUS\nCOMMIT\n";
        assert_eq!(
            failed_line("iptables-restore: line 3 failed", input),
            Some("-A A -j BOGUS")
        );
        assert_eq!(failed_line("iptables-restore: line 0 failed", input), None);
        assert_eq!(failed_line("something else", input), None);
        let refused = RestoreError::Refused {
            message: "line 3 failed".into(),
            line: Some("-A A -j BOGUS".into()),
        };
        assert_eq!(
            refused.to_string(),
            "iptables-restore: line 3 failed (input: -A A -j BOGUS)"
        );
    }
}
