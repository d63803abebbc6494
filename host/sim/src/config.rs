//! [`SimConfig`] and the parsers for its command-line forms (`k=v` labels, `k=v:Effect`
//! taints, resource quantities).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Taint;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::ipam;

/// How many simulated nodes one sim can run: its pod address blocks must fit in
/// `100.64.0.0/10` and its node addresses in `10.250.0.0/16`.
pub const MAX_NODES: u32 = 16_384;

/// The most pods one simulated node can hold (its pod block is at most a `/20`).
pub const MAX_PODS_PER_NODE: u32 = 4_094;

/// What a simulator registers and how it behaves. Build with [`SimConfig::new`] and adjust
/// the public fields; [`SimConfig::validate`] runs before anything is sent to the API.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// How many nodes to register (1 to [`MAX_NODES`]).
    pub nodes: u32,
    /// Node name prefix; nodes are `<prefix>0001`, `<prefix>0002`, … (zero-padded to at least
    /// four digits so that they sort). Default `sim-`.
    pub prefix: String,
    /// CPU capacity (= allocatable) of each node. Default `32`.
    pub cpu: Quantity,
    /// Memory capacity of each node. Default `256Gi`.
    pub memory: Quantity,
    /// Pod capacity of each node. Default 110.
    pub pods: u32,
    /// Ephemeral-storage capacity of each node. Default `100Gi`.
    pub ephemeral_storage: Quantity,
    /// Labels added to every node, over the standard ones (`kubernetes.io/hostname`, `…/os`,
    /// `…/arch`, `type=hortator-sim`).
    pub labels: BTreeMap<String, String>,
    /// Taints of every node.
    pub taints: Vec<Taint>,
    /// How often each node's Lease in `kube-node-lease` is renewed; zero disables leases.
    /// Default 10 s, the kubelet's renewal interval (the Lease lasts 40 s).
    pub heartbeat: Duration,
    /// Whether pods bound to the nodes are marked Running (and finally deleted when they
    /// are being deleted). Default true.
    pub run_pods: bool,
    /// Requests in flight at once while registering nodes, renewing leases and updating pods.
    /// Default 32.
    pub concurrency: usize,
}

impl SimConfig {
    /// The defaults for `nodes` nodes.
    pub fn new(nodes: u32) -> SimConfig {
        SimConfig {
            nodes,
            prefix: "sim-".into(),
            cpu: Quantity("32".into()),
            memory: Quantity("256Gi".into()),
            pods: 110,
            ephemeral_storage: Quantity("100Gi".into()),
            labels: BTreeMap::new(),
            taints: Vec::new(),
            heartbeat: Duration::from_secs(10),
            run_pods: true,
            concurrency: 32,
        }
    }

    /// The name of node `index` (0-based).
    pub fn node_name(&self, index: u32) -> String {
        let width = self.nodes.to_string().len().max(4);
        format!("{}{:0width$}", self.prefix, index + 1)
    }

    /// Check every field; the error names the field as the `hortator sim` flag does.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |field: &'static str, message: String| Err(ConfigError { field, message });
        if self.nodes == 0 || self.nodes > MAX_NODES {
            return err("nodes", format!("must be between 1 and {MAX_NODES}"));
        }
        if self.pods == 0 || self.pods > MAX_PODS_PER_NODE {
            return err("pods", format!("must be between 1 and {MAX_PODS_PER_NODE}"));
        }
        if u64::from(self.nodes) * u64::from(ipam::block_size(self.pods)) > ipam::POD_SPACE {
            return err(
                "nodes",
                format!(
                    "{} nodes of {} pods do not fit in the pod address range {}",
                    self.nodes,
                    self.pods,
                    ipam::POD_RANGE
                ),
            );
        }
        if let Err(reason) = check_dns_subdomain(&self.node_name(self.nodes - 1)) {
            return err(
                "prefix",
                format!("{:?} makes invalid node names: {reason}", self.prefix),
            );
        }
        for (flag, q) in [
            ("cpu", &self.cpu),
            ("memory", &self.memory),
            ("ephemeral-storage", &self.ephemeral_storage),
        ] {
            if let Err(e) = parse_quantity(&q.0) {
                return err(flag, e.reason);
            }
        }
        for (k, v) in &self.labels {
            if let Err(reason) = check_label(k, v) {
                return err("label", format!("{k}={v}: {reason}"));
            }
        }
        for t in &self.taints {
            if let Err(reason) = check_taint(t) {
                return err("taint", format!("{}: {reason}", t.key));
            }
        }
        if self.concurrency == 0 {
            return err("concurrency", "must be at least 1".into());
        }
        Ok(())
    }
}

/// An invalid [`SimConfig`] field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    /// The field, spelled as its `hortator sim` flag (`nodes`, `prefix`, `cpu`, …).
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

/// A label, taint or quantity that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?}: {reason}")]
pub struct ParseError {
    /// The text given.
    pub input: String,
    /// Why it is rejected.
    pub reason: String,
}

fn parse_error(input: &str, reason: impl Into<String>) -> ParseError {
    ParseError {
        input: input.into(),
        reason: reason.into(),
    }
}

/// Parse a non-negative Kubernetes resource quantity (`32`, `1500m`, `256Gi`, `1e3`).
pub fn parse_quantity(input: &str) -> Result<Quantity, ParseError> {
    let s = input.strip_prefix('+').unwrap_or(input);
    if s.starts_with('-') {
        return Err(parse_error(input, "must not be negative"));
    }
    let number_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(number_end);
    let digits = number.chars().filter(char::is_ascii_digit).count();
    if digits == 0 || number.matches('.').count() > 1 {
        return Err(parse_error(
            input,
            "not a quantity (expected a number with an optional suffix, e.g. 32, 500m, 256Gi)",
        ));
    }
    let suffix_ok = matches!(
        suffix,
        "" | "Ki"
            | "Mi"
            | "Gi"
            | "Ti"
            | "Pi"
            | "Ei"
            | "n"
            | "u"
            | "m"
            | "k"
            | "M"
            | "G"
            | "T"
            | "P"
            | "E"
    ) || suffix
        .strip_prefix(['e', 'E'])
        .map(|exp| exp.strip_prefix(['+', '-']).unwrap_or(exp))
        .is_some_and(|exp| !exp.is_empty() && exp.chars().all(|c| c.is_ascii_digit()));
    if !suffix_ok {
        return Err(parse_error(
            input,
            format!("unknown quantity suffix {suffix:?} (use Ki, Mi, Gi, Ti, m, k, M, G, …)"),
        ));
    }
    Ok(Quantity(s.to_string()))
}

/// Parse a `key=value` label.
pub fn parse_label(input: &str) -> Result<(String, String), ParseError> {
    let (key, value) = input
        .split_once('=')
        .ok_or_else(|| parse_error(input, "expected key=value"))?;
    check_label(key, value).map_err(|reason| parse_error(input, reason))?;
    Ok((key.into(), value.into()))
}

/// Parse a taint as `kubectl taint` writes it: `key=value:Effect` or `key:Effect`, where
/// Effect is `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
pub fn parse_taint(input: &str) -> Result<Taint, ParseError> {
    let (kv, effect) = input.rsplit_once(':').ok_or_else(|| {
        parse_error(
            input,
            "expected key=value:Effect or key:Effect (Effect is NoSchedule, PreferNoSchedule or NoExecute)",
        )
    })?;
    let (key, value) = match kv.split_once('=') {
        Some((k, v)) => (k, Some(v.to_string())),
        None => (kv, None),
    };
    let taint = Taint {
        key: key.into(),
        value,
        effect: effect.into(),
        time_added: None,
    };
    check_taint(&taint).map_err(|reason| parse_error(input, reason))?;
    Ok(taint)
}

fn check_taint(taint: &Taint) -> Result<(), String> {
    if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&taint.effect.as_str()) {
        return Err(format!(
            "effect {:?} is not NoSchedule, PreferNoSchedule or NoExecute",
            taint.effect
        ));
    }
    check_qualified_name(&taint.key).map_err(|r| format!("key: {r}"))?;
    if let Some(v) = &taint.value {
        check_label_value(v).map_err(|r| format!("value: {r}"))?;
    }
    Ok(())
}

fn check_label(key: &str, value: &str) -> Result<(), String> {
    check_qualified_name(key).map_err(|r| format!("key: {r}"))?;
    check_label_value(value).map_err(|r| format!("value: {r}"))
}

/// `[prefix/]name`: prefix a DNS subdomain, name up to 63 alphanumerics, `-`, `_`, `.`.
fn check_qualified_name(key: &str) -> Result<(), String> {
    let name = match key.rsplit_once('/') {
        Some((prefix, name)) => {
            check_dns_subdomain(prefix).map_err(|r| format!("prefix {prefix:?}: {r}"))?;
            name
        }
        None => key,
    };
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    check_label_value(name)
}

fn check_label_value(value: &str) -> Result<(), String> {
    if value.len() > 63 {
        return Err("must be at most 63 characters".into());
    }
    let alnum = |c: Option<char>| c.is_none_or(|c| c.is_ascii_alphanumeric());
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        || !alnum(value.chars().next())
        || !alnum(value.chars().last())
    {
        return Err(format!(
            "{value:?} must be alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"
        ));
    }
    Ok(())
}

fn check_dns_subdomain(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err("must be 1 to 253 characters".into());
    }
    let ok = name.split('.').all(|label| {
        !label.is_empty()
            && label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    if ok {
        Ok(())
    } else {
        Err("must be lowercase alphanumerics, '-' and '.', each part starting and ending with an alphanumeric".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        for ok in [
            "32", "1500m", "256Gi", "0.5", "1e3", "100Gi", "+4", "2E-3", ".5",
        ] {
            assert!(parse_quantity(ok).is_ok(), "{ok}");
        }
        assert_eq!(parse_quantity("+4").unwrap().0, "4");
        for bad in ["", "abc", "-1", "12Q", "1.2.3", "Gi", "1e", "1ki"] {
            assert!(parse_quantity(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn labels() {
        assert_eq!(
            parse_label("topology.kubernetes.io/zone=z1").unwrap(),
            ("topology.kubernetes.io/zone".into(), "z1".into())
        );
        assert_eq!(parse_label("empty=").unwrap(), ("empty".into(), "".into()));
        assert!(parse_label("novalue").is_err());
        assert!(parse_label("=v").is_err());
        assert!(parse_label("k=bad value").is_err());
        assert!(parse_label("Bad_Prefix/k=v").is_err());
        assert!(parse_label(&format!("k={}", "x".repeat(64))).is_err());
    }

    #[test]
    fn taints() {
        let t = parse_taint("dedicated=sim:NoSchedule").unwrap();
        assert_eq!(
            (t.key.as_str(), t.value.as_deref(), t.effect.as_str()),
            ("dedicated", Some("sim"), "NoSchedule")
        );
        let t = parse_taint("example.com/gpu:NoExecute").unwrap();
        assert_eq!((t.key.as_str(), t.value), ("example.com/gpu", None));
        for bad in [
            "nonsense",
            "k=v:Sometimes",
            ":NoSchedule",
            "k=v v:NoSchedule",
            "k=v",
        ] {
            let e = parse_taint(bad).unwrap_err();
            assert_eq!(e.input, bad);
        }
    }

    #[test]
    fn names_and_validation() {
        let mut c = SimConfig::new(3);
        assert_eq!(c.node_name(0), "sim-0001");
        assert_eq!(c.node_name(2), "sim-0003");
        c.validate().unwrap();
        c.nodes = 12_345;
        assert_eq!(c.node_name(0), "sim-00001");
        c.nodes = 0;
        assert_eq!(c.validate().unwrap_err().field, "nodes");
        c.nodes = 3;
        c.prefix = "Sim_".into();
        assert_eq!(c.validate().unwrap_err().field, "prefix");
        c.prefix = "sim-".into();
        c.cpu = Quantity("lots".into());
        assert_eq!(c.validate().unwrap_err().field, "cpu");
        c.cpu = Quantity("8".into());
        c.pods = 1000;
        c.nodes = MAX_NODES;
        assert_eq!(c.validate().unwrap_err().field, "nodes");
    }
}
