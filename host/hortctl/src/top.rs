//! `hortctl top nodes|pods`: CPU and memory from the metrics API (`metrics.k8s.io/v1beta1`),
//! in `kubectl top`'s columns (CPU in millicores, memory in MiB, node percentages of
//! allocatable).

use anyhow::Context;
use clap::Subcommand;
use serde_json::Value;

use crate::api_error;

/// What `top` shows.
#[derive(Subcommand)]
pub enum TopCommand {
    /// CPU and memory of nodes (all, or one).
    #[command(visible_alias = "node", alias = "no")]
    Nodes {
        /// Only this node.
        name: Option<String>,
        /// Label selector.
        #[arg(short = 'l', long)]
        selector: Option<String>,
        #[command(flatten)]
        shape: Shape,
    },
    /// CPU and memory of pods (all of a namespace, or one).
    #[command(visible_alias = "pod", alias = "po")]
    Pods {
        /// Only this pod.
        name: Option<String>,
        /// Namespace (default: the kubeconfig's).
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        /// Pods of every namespace.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        /// One line per container.
        #[arg(long)]
        containers: bool,
        /// Label selector.
        #[arg(short = 'l', long)]
        selector: Option<String>,
        #[command(flatten)]
        shape: Shape,
    },
}

/// The usage `--sort-by` orders by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SortBy {
    /// CPU usage.
    Cpu,
    /// Memory usage (working set).
    Memory,
}

impl SortBy {
    fn key(self) -> &'static str {
        match self {
            SortBy::Cpu => "cpu",
            SortBy::Memory => "memory",
        }
    }
}

/// How a table is printed.
#[derive(Clone, Copy, clap::Args)]
pub struct Shape {
    /// Highest usage first (of a pod's containers together).
    #[arg(long, value_enum)]
    sort_by: Option<SortBy>,
    /// Leave out the header line.
    #[arg(long)]
    no_headers: bool,
}

const GROUP_VERSION: &str = "/apis/metrics.k8s.io/v1beta1";

/// Run `top`; `namespace` is the kubeconfig's default.
pub async fn run(client: kube::Client, namespace: &str, command: TopCommand) -> anyhow::Result<()> {
    let out = match command {
        TopCommand::Nodes {
            name,
            selector,
            shape,
        } => nodes(&client, name, selector, shape).await?,
        TopCommand::Pods {
            name,
            namespace: ns,
            all_namespaces,
            containers,
            selector,
            shape,
        } => {
            let ns = if all_namespaces {
                None
            } else {
                Some(ns.unwrap_or_else(|| namespace.to_string()))
            };
            pods(
                &client,
                ns.as_deref(),
                name.as_deref(),
                selector,
                containers,
                shape,
            )
            .await?
        }
    };
    print!("{out}");
    Ok(())
}

async fn get(client: &kube::Client, path: &str, selector: Option<&str>) -> anyhow::Result<Value> {
    let uri = match selector {
        Some(s) => format!("{path}?labelSelector={}", encode(s)),
        None => path.to_string(),
    };
    let request = http::Request::get(&uri)
        .body(Vec::new())
        .context("cannot build the request")?;
    client.request::<Value>(request).await.map_err(api_error)
}

/// Percent-encode a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

async fn nodes(
    client: &kube::Client,
    name: Option<String>,
    selector: Option<String>,
    shape: Shape,
) -> anyhow::Result<String> {
    let (metrics, mut nodes) = match &name {
        Some(name) => (
            vec![get(client, &format!("{GROUP_VERSION}/nodes/{name}"), None).await?],
            vec![get(client, &format!("/api/v1/nodes/{name}"), None).await?],
        ),
        None => (
            items(
                &get(
                    client,
                    &format!("{GROUP_VERSION}/nodes"),
                    selector.as_deref(),
                )
                .await?,
            ),
            items(&get(client, "/api/v1/nodes", selector.as_deref()).await?),
        ),
    };
    let usage_of = |node: &Value, key: &str| {
        metrics
            .iter()
            .find(|m| m["metadata"]["name"] == node["metadata"]["name"])
            .map_or(-1.0, |m| quantity(&m["usage"][key]))
    };
    if let Some(sort_by) = shape.sort_by {
        nodes.sort_by(|a, b| usage_of(b, sort_by.key()).total_cmp(&usage_of(a, sort_by.key())));
    }
    let mut rows = vec![row(&[
        "NAME",
        "CPU(cores)",
        "CPU(%)",
        "MEMORY(bytes)",
        "MEMORY(%)",
    ])];
    for node in &nodes {
        let name = node["metadata"]["name"].as_str().unwrap_or_default();
        let usage = metrics
            .iter()
            .find(|m| m["metadata"]["name"] == name)
            .map(|m| &m["usage"]);
        let Some(usage) = usage else {
            rows.push(row(&[
                name,
                "<unknown>",
                "<unknown>",
                "<unknown>",
                "<unknown>",
            ]));
            continue;
        };
        let cpu = quantity(&usage["cpu"]);
        let memory = quantity(&usage["memory"]);
        let allocatable = &node["status"]["allocatable"];
        rows.push(vec![
            name.to_string(),
            millicores(cpu),
            percent(cpu, quantity(&allocatable["cpu"])),
            mebibytes(memory),
            percent(memory, quantity(&allocatable["memory"])),
        ]);
    }
    Ok(table(rows, shape.no_headers))
}

async fn pods(
    client: &kube::Client,
    namespace: Option<&str>,
    name: Option<&str>,
    selector: Option<String>,
    containers: bool,
    shape: Shape,
) -> anyhow::Result<String> {
    let base = match namespace {
        Some(ns) => format!("{GROUP_VERSION}/namespaces/{ns}/pods"),
        None => format!("{GROUP_VERSION}/pods"),
    };
    let mut metrics = match name {
        Some(name) => vec![get(client, &format!("{base}/{name}"), None).await?],
        None => items(&get(client, &base, selector.as_deref()).await?),
    };
    if let Some(sort_by) = shape.sort_by {
        metrics.sort_by(|a, b| pod_usage(b, sort_by.key()).total_cmp(&pod_usage(a, sort_by.key())));
    }
    if metrics.is_empty() {
        match namespace {
            Some(ns) => eprintln!("No resources found in {ns} namespace."),
            None => eprintln!("No resources found"),
        }
        return Ok(String::new());
    }
    let mut header = Vec::new();
    if namespace.is_none() {
        header.push("NAMESPACE");
    }
    header.extend(if containers {
        &["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"][..]
    } else {
        &["NAME", "CPU(cores)", "MEMORY(bytes)"][..]
    });
    let mut rows = vec![row(&header)];
    for pod in &metrics {
        let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let mut prefix = Vec::new();
        if namespace.is_none() {
            prefix.push(
                pod["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        prefix.push(pod_name.to_string());
        let list = pod["containers"].as_array().cloned().unwrap_or_default();
        if containers {
            for container in &list {
                let mut line = prefix.clone();
                line.push(container["name"].as_str().unwrap_or_default().to_string());
                line.push(millicores(quantity(&container["usage"]["cpu"])));
                line.push(mebibytes(quantity(&container["usage"]["memory"])));
                rows.push(line);
            }
        } else {
            prefix.push(millicores(pod_usage(pod, "cpu")));
            prefix.push(mebibytes(pod_usage(pod, "memory")));
            rows.push(prefix);
        }
    }
    Ok(table(rows, shape.no_headers))
}

/// The usage `key` (`cpu`, `memory`) of a PodMetrics' containers together.
fn pod_usage(pod: &Value, key: &str) -> f64 {
    pod["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| quantity(&c["usage"][key]))
        .sum()
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// Columns padded to their widest cell plus three spaces, as kubectl's tabwriter does; the
/// first row (the header) left out with `no_headers`, the widths still counting it.
fn table(rows: Vec<Vec<String>>, no_headers: bool) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(String::len)
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows.into_iter().skip(usize::from(no_headers)) {
        let last = row.len().saturating_sub(1);
        for (i, cell) in row.iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}   ", width = widths[i]));
            }
        }
        out.push('\n');
    }
    out
}

/// Cores as kubectl prints them: millicores, rounded up.
fn millicores(cores: f64) -> String {
    format!("{}m", (cores * 1000.0 - 1e-9).ceil().max(0.0) as u64)
}

/// Bytes as kubectl prints them: whole MiB.
fn mebibytes(bytes: f64) -> String {
    format!("{}Mi", (bytes / (1024.0 * 1024.0)).floor() as u64)
}

fn percent(used: f64, available: f64) -> String {
    if available > 0.0 {
        format!("{}%", (used / available * 100.0) as u64)
    } else {
        "<unknown>".to_string()
    }
}

/// A Kubernetes quantity (`250m`, `123456n`, `1Gi`, `2`, `1e3`) in base units; 0 when absent
/// or malformed.
fn quantity(value: &Value) -> f64 {
    let Some(text) = value.as_str() else {
        return value.as_f64().unwrap_or(0.0);
    };
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    for (suffix, factor) in SUFFIXES {
        if let Some(number) = text.strip_suffix(suffix)
            && let Ok(n) = number.parse::<f64>()
        {
            return n * factor;
        }
    }
    text.parse().unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn quantities_in_kubectl_units() {
        assert_eq!(millicores(quantity(&json!("250000000n"))), "250m");
        assert_eq!(millicores(quantity(&json!("1n"))), "1m");
        assert_eq!(millicores(quantity(&json!("2"))), "2000m");
        assert_eq!(mebibytes(quantity(&json!("102400Ki"))), "100Mi");
        assert_eq!(mebibytes(quantity(&json!("24Gi"))), "24576Mi");
        assert_eq!(quantity(&json!("1e3")), 1000.0);
        assert_eq!(percent(0.5, 2.0), "25%");
    }

    #[test]
    fn table_pads_like_kubectl() {
        let rows = || vec![row(&["NAME", "CPU(cores)"]), row(&["a-long-name", "5m"])];
        assert_eq!(
            table(rows(), false),
            "NAME          CPU(cores)\na-long-name   5m\n"
        );
        assert_eq!(table(rows(), true), "a-long-name   5m\n");
    }

    #[test]
    fn selector_is_encoded() {
        assert_eq!(encode("app in (a,b)"), "app%20in%20%28a%2Cb%29");
    }

    #[test]
    fn pods_usage_sums_their_containers() {
        let pod = json!({"containers": [
            {"usage": {"cpu": "250m", "memory": "10Mi"}},
            {"usage": {"cpu": "0.5", "memory": "1Mi"}},
        ]});
        assert_eq!(pod_usage(&pod, "cpu"), 0.75);
        assert_eq!(pod_usage(&pod, "memory"), 11.0 * 1024.0 * 1024.0);
        assert_eq!(SortBy::Memory.key(), "memory");
    }
}
