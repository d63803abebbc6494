//! `hortator`: the Hortator container orchestrator.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hortator::config::{Config, Overrides};

/// The API server's request path is allocation-heavy; mimalloc keeps it fast on few cores.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "hortator",
    version,
    about = "A container orchestrator with WebAssembly policy plugins"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a one-machine cluster: store, API server and every component.
    Up {
        /// Directory for the store, the kubeconfig and other state.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Address to serve the API on (default 127.0.0.1:6443).
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<String>,
        /// Configuration file.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HORTATOR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let Command::Up {
        data_dir,
        listen,
        config,
    } = cli.command;
    let config = match Config::load(config.as_deref(), &Overrides { data_dir, listen }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(hortator::up::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
