//! The `eddy` command.

mod serve;
mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "eddy",
    version,
    about = "Event-driven storage: objects, tables and the functions their changes run"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run eddy: the table, Lambda and admin APIs, and the functions the manifests declare.
    Serve {
        /// Manifest files, checked together as one app.
        manifests: Vec<PathBuf>,
        /// Where data lives (created if missing).
        #[arg(long, default_value = "./.eddy")]
        data_dir: PathBuf,
        /// The address to listen on; port 0 picks a free port. Anything but a loopback address
        /// needs EDDY_ACCESS_KEY_ID and EDDY_SECRET_ACCESS_KEY.
        #[arg(long, default_value = "127.0.0.1:7171")]
        listen: SocketAddr,
    },
    /// Check manifests without a server: print every error and warning, exit non-zero on errors.
    Validate {
        /// Manifest files; they are checked together, as one app.
        #[arg(required = true)]
        manifests: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Validate { manifests } => validate(&manifests),
        Command::Serve {
            manifests,
            data_dir,
            listen,
        } => {
            // s3s logs every refused client request at ERROR level; eddy logs its own failures,
            // so s3s stays quiet unless EDDY_LOG names it.
            let mut filter = std::env::var("EDDY_LOG").unwrap_or_else(|_| "info".into());
            if !filter.contains("s3s") {
                filter.push_str(",s3s=off");
            }
            tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .init();
            let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime starts");
            match runtime.block_on(serve::run(&manifests, &data_dir, listen)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn validate(manifests: &[PathBuf]) -> ExitCode {
    let loaded = eddy_subscriptions::load_files(manifests);
    if !loaded.findings.is_empty() {
        eprintln!("{}", loaded.findings);
    }
    match loaded.app {
        Some(app) => {
            println!(
                "ok: {} buckets, {} tables, {} functions, {} triggers",
                app.buckets.len(),
                app.tables.len(),
                app.functions.len(),
                app.triggers.len()
            );
            ExitCode::SUCCESS
        }
        None => ExitCode::FAILURE,
    }
}
