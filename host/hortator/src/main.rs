//! `hortator`: the Hortator container orchestrator.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use hortator::config::{Config, Overrides};
use k8s_openapi::api::core::v1::Taint;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

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
        /// Run no node agent (control plane only).
        #[arg(long)]
        no_agent: bool,
        /// The agent's node name (default: the host name).
        #[arg(long, value_name = "NAME")]
        node_name: Option<String>,
        /// The agent's node address (default: the address of the default route).
        #[arg(long, value_name = "IP")]
        node_ip: Option<String>,
    },
    /// Run a node agent against an API server: register the node, run its pods.
    Agent {
        /// The API server, e.g. http://10.0.0.1:6443.
        #[arg(long, value_name = "URL", required_unless_present = "cleanup")]
        server: Option<String>,
        /// Remove this node's iptables rules (host ports, masquerading, forwarding, services)
        /// and exit; its pods lose their network.
        #[arg(long)]
        cleanup: bool,
        /// The node's name (default: the host name).
        #[arg(long, value_name = "NAME")]
        node_name: Option<String>,
        /// The node's address: pods' hostIP, host ports and the agent's endpoint.
        #[arg(long, value_name = "IP")]
        node_ip: Option<String>,
        /// Port of the agent's endpoint (logs, exec) on the node address (default 10250).
        #[arg(long, value_name = "PORT")]
        port: Option<u16>,
        /// Directory for the agent's state (pod volumes, network state, plugin cache).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Configuration file (its [agent] and [plugins.network-driver] apply).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Register simulated nodes (like KWOK) against a running API and run their pods without
    /// containers, until SIGINT/SIGTERM.
    Sim(SimArgs),
}

#[derive(clap::Args)]
struct SimArgs {
    /// How many nodes to register.
    #[arg(long, value_name = "N")]
    nodes: u32,
    /// Kubeconfig of the cluster (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// Node name prefix: nodes are PREFIX0001, PREFIX0002, …
    #[arg(long, default_value = "sim-")]
    prefix: String,
    /// CPU capacity of each node.
    #[arg(long, default_value = "32", value_parser = hortator_sim::parse_quantity)]
    cpu: Quantity,
    /// Memory capacity of each node.
    #[arg(long, default_value = "256Gi", value_parser = hortator_sim::parse_quantity)]
    memory: Quantity,
    /// Pod capacity of each node.
    #[arg(long, default_value_t = 110)]
    pods: u32,
    /// Ephemeral-storage capacity of each node.
    #[arg(long, default_value = "100Gi", value_parser = hortator_sim::parse_quantity)]
    ephemeral_storage: Quantity,
    /// A label for every node (repeatable).
    #[arg(long, value_name = "KEY=VALUE", value_parser = hortator_sim::parse_label)]
    label: Vec<(String, String)>,
    /// A taint for every node (repeatable); Effect is NoSchedule, PreferNoSchedule or NoExecute.
    #[arg(long, value_name = "KEY[=VALUE]:EFFECT", value_parser = hortator_sim::parse_taint)]
    taint: Vec<Taint>,
    /// Seconds between renewals of each node's Lease; 0 disables leases.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    heartbeat: u64,
    /// Do not mark the nodes' pods Running (register and heartbeat only).
    #[arg(long)]
    no_run_pods: bool,
    /// API requests in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
}

impl SimArgs {
    fn config(self) -> hortator_sim::SimConfig {
        let mut config = hortator_sim::SimConfig::new(self.nodes);
        config.prefix = self.prefix;
        config.cpu = self.cpu;
        config.memory = self.memory;
        config.pods = self.pods;
        config.ephemeral_storage = self.ephemeral_storage;
        config.labels.extend(self.label);
        config.taints = self.taint;
        config.heartbeat = Duration::from_secs(self.heartbeat);
        config.run_pods = !self.no_run_pods;
        config.concurrency = self.concurrency;
        config
    }
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HORTATOR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Up {
            data_dir,
            listen,
            config,
            no_agent,
            node_name,
            node_ip,
        } => {
            let overrides = Overrides {
                data_dir,
                listen,
                no_agent,
                node_name,
                node_ip,
                ..Overrides::default()
            };
            match Config::load(config.as_deref(), &overrides) {
                Ok(config) => block_on(hortator::up::run(config)),
                Err(e) => usage_error(e),
            }
        }
        Command::Agent {
            server,
            cleanup,
            node_name,
            node_ip,
            port,
            data_dir,
            config,
        } => {
            let overrides = Overrides {
                data_dir,
                node_name,
                node_ip,
                agent_port: port,
                ..Overrides::default()
            };
            let config = match Config::load(config.as_deref(), &overrides) {
                Ok(config) => config,
                Err(e) => return usage_error(e),
            };
            if cleanup {
                let node = &config.agent.kubelet.node_name;
                let removed = hortator_kubelet::remove_network_rules(node)
                    .map_err(|e| e.to_string())
                    .and_then(|()| hortator_proxy::remove_rules(node).map_err(|e| e.to_string()));
                return match removed {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::FAILURE
                    }
                };
            }
            let server = server.unwrap_or_default();
            let server = match server.parse::<http::Uri>() {
                Ok(uri) if uri.scheme().is_some() && uri.host().is_some() => uri,
                _ => {
                    eprintln!("error: --server: {server:?} is not a URL like http://10.0.0.1:6443");
                    return ExitCode::from(2);
                }
            };
            block_on(hortator::agent::run(config, server))
        }
        Command::Sim(args) => sim(args),
    }
}

/// A configuration error: one line, exit status 2.
fn usage_error(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

/// How often memory freed by the process goes back to the system.
const MEMORY_PURGE_INTERVAL: Duration = Duration::from_secs(5);

/// Hand freed memory back to the system every few seconds. mimalloc returns a thread's freed
/// pages only when that thread allocates again after its purge delay, so the one-off peaks of
/// an idle process (start-up, compiling plugins, a plugin swap) would otherwise stay resident.
/// This thread purges the pages of threads that ended and of the plugin compiler's pool; the
/// runtime's threads collect their own (see [`block_on`]).
fn spawn_memory_purger() {
    let spawned = std::thread::Builder::new()
        .name("memory-purge".into())
        .spawn(|| {
            loop {
                std::thread::sleep(MEMORY_PURGE_INTERVAL);
                purge_freed_memory();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the memory purge thread; freed memory is returned only under load");
    }
}

/// Return the freed pages of ended threads and of the threads that compile plugins (rayon's
/// pool, which wasmtime compiles on): idle, those would never return theirs.
fn purge_freed_memory() {
    collect_freed_pages();
    rayon::broadcast(|_| collect_freed_pages());
}

#[allow(unsafe_code)]
fn collect_freed_pages() {
    // SAFETY: `mi_collect` has no preconditions: any thread may call it at any time, and it
    // only returns pages that are free to the system.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// Collect this thread's freed pages if it has not for [`MEMORY_PURGE_INTERVAL`]: a runtime
/// worker that goes idle keeps what it freed until it allocates again.
fn collect_when_due() {
    thread_local! {
        static LAST_COLLECT: std::cell::Cell<Option<std::time::Instant>> =
            const { std::cell::Cell::new(None) };
    }
    let now = std::time::Instant::now();
    let due = LAST_COLLECT
        .get()
        .is_none_or(|last| now - last >= MEMORY_PURGE_INTERVAL);
    if due {
        LAST_COLLECT.set(Some(now));
        collect_freed_pages();
    }
}

/// Run `future` to completion on a new Tokio runtime; an error is one line.
fn block_on<E: std::fmt::Display>(future: impl Future<Output = Result<(), E>>) -> ExitCode {
    spawn_memory_purger();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(collect_when_due)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The future runs on this thread, which also collects what it freed now and then.
    let future = async {
        tokio::pin!(future);
        let mut purge = tokio::time::interval(MEMORY_PURGE_INTERVAL);
        loop {
            tokio::select! {
                result = &mut future => return result,
                _ = purge.tick() => collect_freed_pages(),
            }
        }
    };
    match runtime.block_on(future) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A clap error on one line: its message, without the usage and help hints.
fn one_line(rendered: &str) -> String {
    rendered
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `hortator sim`: register the nodes, print one line, run until SIGINT/SIGTERM.
fn sim(args: SimArgs) -> ExitCode {
    let kubeconfig = args.kubeconfig.clone();
    let config = args.config();
    if let Err(e) = config.validate() {
        eprintln!("error: --{}: {}", e.field, e.message);
        return ExitCode::from(2);
    }
    block_on(async {
        let client = hortator_sim::client(kubeconfig.as_deref()).await?;
        let sim = hortator_sim::Simulator::register(client, config).await?;
        let nodes = sim.nodes();
        println!(
            "registered {} simulated nodes ({}..{}) in {:.2}s",
            nodes.len(),
            nodes.first().map_or("", |n| n.name.as_str()),
            nodes.last().map_or("", |n| n.name.as_str()),
            sim.registration_time().as_secs_f64()
        );
        sim.run(shutdown_signal()).await;
        Ok::<_, hortator_sim::Error>(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("shutting down");
}
