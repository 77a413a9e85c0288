//! The `eddy` command.

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
