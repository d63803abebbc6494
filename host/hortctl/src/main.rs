//! `hortctl`: talks to a Hortator cluster through its API. `plugin list` shows each extension
//! point's active plugin; `plugin swap` replaces one at runtime; `rolling-update` replaces a
//! replication controller's pods one at a time; `top` shows nodes' and pods' CPU and memory.

mod plugin;
mod rolling_update;
mod top;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use kube::config::{KubeConfigOptions, Kubeconfig};

#[derive(Parser)]
#[command(name = "hortctl", version, about = "Hortator's command-line client")]
struct Cli {
    /// Kubeconfig to use (default: $KUBECONFIG, then hortator-data/kubeconfig.yaml, then ~/.kube/config).
    #[arg(long, global = true, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Manage the WebAssembly plugins of the cluster.
    Plugin {
        #[command(subcommand)]
        command: plugin::PluginCommand,
    },
    /// Replace the pods of a replication controller one at a time, with a new controller
    /// from a file or a new image (kubectl rolling-update).
    RollingUpdate(rolling_update::Args),
    /// CPU and memory of nodes or pods, from the metrics API (kubectl top).
    Top {
        #[command(subcommand)]
        command: top::TopCommand,
    },
}

fn default_kubeconfig() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("KUBECONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let local = PathBuf::from("hortator-data/kubeconfig.yaml");
    if local.exists() {
        return Some(local);
    }
    std::env::var_os("HOME").map(|home| Path::new(&home).join(".kube/config"))
}

async fn config(kubeconfig: Option<PathBuf>) -> anyhow::Result<kube::Config> {
    let path = kubeconfig
        .or_else(default_kubeconfig)
        .context("no kubeconfig: pass --kubeconfig")?;
    let kubeconfig = Kubeconfig::read_from(&path)
        .with_context(|| format!("{}: cannot read kubeconfig", path.display()))?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("{}: invalid kubeconfig", path.display()))
}

/// The server's message for an API error, the error itself otherwise.
fn api_error(e: kube::Error) -> anyhow::Error {
    match e {
        kube::Error::Api(status) => anyhow::anyhow!("{}", status.message),
        other => anyhow::anyhow!(other),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = config(cli.kubeconfig).await?;
    let namespace = config.default_namespace.clone();
    let client = kube::Client::try_from(config).context("cannot build an API client")?;
    match cli.command {
        Command::Plugin { command } => plugin::run(client, command).await,
        Command::Top { command } => top::run(client, &namespace, command).await,
        Command::RollingUpdate(args) => {
            let namespace = args.namespace.clone().unwrap_or(namespace);
            rolling_update::run(client, &namespace, args)
                .await
                .map_err(anyhow::Error::from)
        }
    }
}

/// A clap error on one line: its message without the usage and help hints.
fn one_line(rendered: &str) -> String {
    rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            eprintln!("{}", one_line(&e.render().to_string()));
            return ExitCode::from(2);
        }
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
