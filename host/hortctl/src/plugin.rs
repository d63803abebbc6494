//! `hortctl plugin`: `list` shows each extension point's active plugin; `swap` replaces one at
//! runtime.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use serde::Deserialize;

use crate::api_error;

/// The `plugin` verbs.
#[derive(Subcommand)]
pub enum PluginCommand {
    /// Show every extension point with its active plugin, metrics and last error.
    List {
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = Format::Table)]
        output: Format,
    },
    /// Replace the plugin of a point (`admission/<name>`, `scheduler/<name>` or
    /// `scheduler` when there is one profile,
    /// `network-driver`, `build-strategy/<name>`) with a component file. The old
    /// plugin stays if the new one fails to load.
    Swap {
        /// The extension point.
        point: String,
        /// The `.wasm` component.
        file: PathBuf,
    },
}

/// Output format of `plugin list`.
#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// A table.
    Table,
    /// The server's JSON.
    Json,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PluginList {
    items: Vec<PluginStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PluginStatus {
    point: String,
    phase: Option<String>,
    active: Option<ActivePlugin>,
    last_error: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActivePlugin {
    name: String,
    version: String,
    digest: String,
    source: String,
    metrics: Metrics,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metrics {
    calls: u64,
    errors: u64,
    latency_seconds_sum: f64,
}

fn short_digest(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

fn print_table(list: &PluginList) {
    let mut rows = vec![[
        "POINT".to_string(),
        "PHASE".into(),
        "PLUGIN".into(),
        "VERSION".into(),
        "DIGEST".into(),
        "SOURCE".into(),
        "CALLS".into(),
        "ERRORS".into(),
        "MEAN".into(),
        "LAST ERROR".into(),
    ]];
    for item in &list.items {
        let phase = item.phase.clone().unwrap_or_else(|| "-".into());
        let last_error = item.last_error.clone().unwrap_or_else(|| "<none>".into());
        let row = match &item.active {
            Some(p) => {
                let mean = if p.metrics.calls == 0 {
                    "-".to_string()
                } else {
                    format!(
                        "{:.1}µs",
                        p.metrics.latency_seconds_sum * 1e6 / p.metrics.calls as f64
                    )
                };
                [
                    item.point.clone(),
                    phase,
                    p.name.clone(),
                    p.version.clone(),
                    short_digest(&p.digest).to_string(),
                    p.source.clone(),
                    p.metrics.calls.to_string(),
                    p.metrics.errors.to_string(),
                    mean,
                    last_error,
                ]
            }
            None => {
                let none = || "<none>".to_string();
                [
                    item.point.clone(),
                    phase,
                    none(),
                    none(),
                    none(),
                    none(),
                    "0".into(),
                    "0".into(),
                    "-".into(),
                    last_error,
                ]
            }
        };
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                if i + 1 == widths.len() {
                    cell.clone()
                } else {
                    format!("{cell:w$}")
                }
            })
            .collect();
        println!("{}", line.join("   ").trim_end());
    }
}

/// Run one `plugin` verb against the cluster behind `client`.
pub async fn run(client: kube::Client, command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::List { output } => {
            let request = http::Request::get("/hortator/v1/plugins").body(Vec::new())?;
            let text = client.request_text(request).await.map_err(api_error)?;
            match output {
                Format::Json => println!("{text}"),
                Format::Table => {
                    let list: PluginList =
                        serde_json::from_str(&text).context("unexpected answer from the server")?;
                    print_table(&list);
                }
            }
        }
        PluginCommand::Swap { point, file } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("{}: cannot read", file.display()))?;
            let source: String = file
                .file_name()
                .map(|n| {
                    n.to_string_lossy()
                        .chars()
                        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
                        .collect()
                })
                .unwrap_or_default();
            let request =
                http::Request::put(format!("/hortator/v1/plugins/{point}?source={source}"))
                    .header(http::header::CONTENT_TYPE, "application/wasm")
                    .body(bytes)?;
            let started = Instant::now();
            let text = client.request_text(request).await.map_err(api_error)?;
            let elapsed = started.elapsed();
            let status: PluginStatus =
                serde_json::from_str(&text).context("unexpected answer from the server")?;
            let active = status
                .active
                .context("the server reports no active plugin")?;
            println!(
                "{}: now running {} {} ({}) — swapped in {:.1} ms",
                status.point,
                active.name,
                active.version,
                short_digest(&active.digest),
                elapsed.as_secs_f64() * 1e3
            );
        }
    }
    Ok(())
}
