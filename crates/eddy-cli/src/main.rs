//! The `eddy` command: `serve` and `validate` work on this machine; every other command talks
//! to a running eddy (`--endpoint`) with signed requests.

mod admin;
mod backends;
mod client;
mod functions;
mod objects;
mod rows;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use eddy_wire::admin::Prices;
use serde_json::Value;

/// eddy allocates and frees many small values per event (rows, JSON, statements' arguments),
/// from several threads: glibc's allocator spent about a fifth of the CPU of a batched
/// delivery on that (profiled, docs/performance.md); mimalloc's thread-local pages do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "eddy",
    version,
    about = "Event-driven storage: objects, tables and the functions their changes run"
)]
struct Cli {
    #[command(flatten)]
    connection: Connection,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// Where the running eddy is, and the credentials to sign requests with.
#[derive(Args)]
struct Connection {
    /// The eddy to talk to.
    #[arg(
        long,
        global = true,
        env = "EDDY_ENDPOINT",
        default_value = "http://127.0.0.1:7171"
    )]
    endpoint: String,
    /// The access key to sign with (the development key unless set).
    #[arg(
        long,
        global = true,
        env = "EDDY_ACCESS_KEY_ID",
        hide_env_values = true
    )]
    access_key_id: Option<String>,
    /// Its secret (the development secret unless set).
    #[arg(
        long,
        global = true,
        env = "EDDY_SECRET_ACCESS_KEY",
        hide_env_values = true
    )]
    secret_access_key: Option<String>,
}

impl Connection {
    fn client(&self) -> anyhow::Result<client::Client> {
        let dev = eddy_node::development_credentials();
        let credentials = match (&self.access_key_id, &self.secret_access_key) {
            (Some(id), Some(secret)) => eddy_sigv4::Credentials {
                access_key_id: id.clone(),
                secret_access_key: secret.clone(),
            },
            (None, None) => dev,
            _ => anyhow::bail!("give both --access-key-id and --secret-access-key, or neither"),
        };
        client::Client::new(&self.endpoint, credentials)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run eddy: the S3, Lambda, table and admin APIs, and the functions the manifests declare.
    Serve {
        /// Manifest files, checked together as one app.
        manifests: Vec<PathBuf>,
        #[command(flatten)]
        options: serve::ServeOptions,
    },
    /// Check manifests without a server: print every error and warning, exit non-zero on errors.
    Validate {
        /// Manifest files; they are checked together, as one app.
        #[arg(required = true)]
        manifests: Vec<PathBuf>,
        /// Show each schedule's next runs after this time (like 2027-01-01T00:00:00Z) rather
        /// than after now.
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        runs_after: Option<i64>,
    },
    /// Copy a single node's data directory (SQLite, objects on disk) into PostgreSQL and, with
    /// --blobs, its objects' bytes into an S3 bucket, for several nodes to carry on from. eddy
    /// must not be running on the directory; the database must be empty.
    Migrate {
        /// The data directory to copy.
        #[arg(long, default_value = "./.eddy")]
        data_dir: PathBuf,
        /// The PostgreSQL database: postgres://USER:PASSWORD@HOST:PORT/DATABASE.
        #[arg(long, value_name = "URL")]
        to: String,
        /// The bucket for the objects' bytes: s3://BUCKET[/PREFIX], reached as `eddy serve
        /// --blobs` reaches it. Without it the bytes stay in the data directory, which the
        /// node must then keep.
        #[arg(long, value_name = "S3_URI")]
        blobs: Option<String>,
    },
    /// Check manifests and run them on the running eddy, without a restart.
    Deploy {
        #[arg(required = true)]
        manifests: Vec<PathBuf>,
    },
    /// Copy a file to an object, an object to a file, or an object to another:
    /// `eddy cp FILE s3://BUCKET/KEY`, `eddy cp s3://BUCKET/KEY FILE` (`-` writes to stdout),
    /// `eddy cp s3://A/KEY s3://B/KEY`.
    Cp { source: String, target: String },
    /// List buckets, or the objects of `s3://BUCKET[/PREFIX]`.
    Ls {
        target: Option<String>,
        /// Every object below the prefix, not one level.
        #[arg(long, short)]
        recursive: bool,
    },
    /// Delete an object: `eddy rm s3://BUCKET/KEY`.
    Rm { target: String },
    /// Rows of a table.
    #[command(subcommand)]
    Table(TableCommand),
    /// Run a function and print its result.
    Invoke {
        name: String,
        /// The event: JSON, or @FILE.
        #[arg(long)]
        payload: Option<String>,
        /// Queue it (retried on failure) instead of waiting for the result.
        #[arg(long = "async")]
        asynchronous: bool,
        /// Print the end of the function's log to stderr.
        #[arg(long)]
        log: bool,
    },
    /// A function's invocations with their logs, oldest first.
    Logs {
        name: String,
        /// Keep printing new invocations as they are recorded.
        #[arg(long, short)]
        follow: bool,
    },
    /// The event journal.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Triggers.
    #[command(subcommand)]
    Triggers(TriggersCommand),
    /// Dead letters: deliveries that ran out of retries.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// What each function used, as Lambda meters it, and what it would cost there.
    Usage {
        /// USD per million requests (Lambda, x86).
        #[arg(long, default_value_t = Prices::LAMBDA_X86.per_million_requests)]
        price_per_million_requests: f64,
        /// USD per GB-second (Lambda, x86, first tier).
        #[arg(long, default_value_t = Prices::LAMBDA_X86.per_gb_second)]
        price_per_gb_second: f64,
        /// Requests free each month.
        #[arg(long, default_value_t = Prices::LAMBDA_X86.free_requests)]
        free_requests: f64,
        /// GB-seconds free each month.
        #[arg(long, default_value_t = Prices::LAMBDA_X86.free_gb_seconds)]
        free_gb_seconds: f64,
    },
}

#[derive(Subcommand)]
enum TableCommand {
    /// Insert or replace a row (JSON, or @FILE) by its key columns.
    Put { table: String, row: String },
    /// Read a row by its key: one value per key column, in key order.
    Get { table: String, key: Vec<String> },
    /// Rows in key order, optionally only those whose columns equal values.
    Scan {
        table: String,
        /// COLUMN=VALUE; repeat for more.
        #[arg(long = "where")]
        filters: Vec<String>,
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Delete a row by its key.
    Delete { table: String, key: Vec<String> },
}

#[derive(Subcommand)]
enum EventsCommand {
    /// The last events, oldest first.
    Tail {
        #[arg(long, default_value_t = 20)]
        last: u32,
        /// Keep printing events as they commit.
        #[arg(long, short)]
        follow: bool,
    },
    /// One event: which triggers matched it, clause by clause, its deliveries, and what ran.
    Show { id: String },
    /// Every replay, newest first, with how far it got.
    Replays,
    /// Deliver a range of the journal again to one trigger (the events it matches now), as its
    /// function has room.
    Replay {
        #[arg(long)]
        trigger: String,
        /// The first event: a sequence number, or a time like 2026-12-01T00:00:00Z.
        #[arg(long)]
        from: String,
        /// The last event (a sequence number or a time); the newest without it.
        #[arg(long)]
        to: Option<String>,
    },
}

#[derive(Subcommand)]
enum TriggersCommand {
    /// Send the trigger an event for every object or row on its source now, as its function
    /// has room (`eddy events replays` shows how far it got).
    Backfill { name: String },
}

#[derive(Subcommand)]
enum DlqCommand {
    /// Dead letters, of one function or all.
    List {
        #[arg(long)]
        function: Option<String>,
    },
    /// Deliver a dead letter (or all of a function's) again from its first attempt.
    Redrive {
        id: Option<i64>,
        #[arg(long)]
        function: Option<String>,
    },
}

fn main() -> ExitCode {
    // Started as a function sandbox's init: that is all this process does.
    eddy_runtimes::sandbox::run_init_if_asked();
    let cli = Cli::parse();
    let json = cli.json;
    let result = match cli.command {
        Command::Validate {
            manifests,
            runs_after,
        } => {
            let after = runs_after.unwrap_or_else(eddy_bus::now_ms);
            return validate(&manifests, after, cli.json);
        }
        Command::Migrate {
            data_dir,
            to,
            blobs,
        } => {
            init_logging();
            let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime starts");
            runtime.block_on(migrate(&data_dir, &to, blobs.as_deref(), json))
        }
        Command::Serve { manifests, options } => {
            init_logging();
            let loaded = eddy_subscriptions::load_files(&manifests);
            if !loaded.findings.is_empty() {
                eprintln!("{}", loaded.findings);
            }
            let Some(app) = loaded.app else {
                eprintln!("error: the manifests have errors; nothing was started");
                return ExitCode::FAILURE;
            };
            // Still one thread: take the secrets out of the environment before any other
            // thread (or process) could read them there.
            // SAFETY: no other thread exists yet.
            unsafe { eddy_core::secrets::seal(&serve::secret_variables(&app)) };
            // A write past a file size limit fails with EFBIG, which the database rides through
            // like any I/O error, instead of killing eddy.
            // SAFETY: ignoring a signal installs no handler code.
            unsafe {
                let _ = nix::sys::signal::signal(
                    nix::sys::signal::Signal::SIGXFSZ,
                    nix::sys::signal::SigHandler::SigIgn,
                );
            }
            eddy_runtimes::sandbox::protect_this_process();
            let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime starts");
            runtime.block_on(serve::run(app, &loaded.findings, &manifests, options))
        }
        command => cli
            .connection
            .client()
            .and_then(|client| remote(&client, command, json)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `eddy migrate`.
async fn migrate(
    data_dir: &std::path::Path,
    database: &str,
    blobs: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let location = blobs.map(backends::blob_location).transpose()?;
    if !database.starts_with("postgres://") && !database.starts_with("postgresql://") {
        anyhow::bail!(
            "--to {:?} is not a PostgreSQL URL; write postgres://USER:PASSWORD@HOST:PORT/DATABASE",
            eddy_bus::redacted(database)
        );
    }
    let migrated = eddy_node::migrate(data_dir, database, location)
        .await
        .with_context(|| {
            format!(
                "migrating {} into {}",
                data_dir.display(),
                eddy_bus::redacted(database)
            )
        })?;
    let tables: serde_json::Map<String, Value> = migrated
        .tables
        .iter()
        .map(|(t, n)| (t.clone(), Value::from(*n)))
        .collect();
    let answer = serde_json::json!({"tables": tables, "blobs": migrated.blobs});
    output(json, &answer, |_| {
        for (table, rows) in &migrated.tables {
            println!("{table:<28} {rows:>10} rows");
        }
        println!("{:<28} {:>10}", "blobs copied", migrated.blobs);
    });
    Ok(())
}

fn init_logging() {
    // s3s logs every refused client request at ERROR level; eddy logs its own failures, so
    // s3s stays quiet unless EDDY_LOG names it.
    let mut filter = std::env::var("EDDY_LOG").unwrap_or_else(|_| "info".into());
    if !filter.contains("s3s") {
        filter.push_str(",s3s=off");
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Prints a command's answer: as JSON with `--json`, else in its human form.
fn output<T: serde::Serialize>(json: bool, value: &T, human: impl FnOnce(&T)) {
    if json {
        println!(
            "{}",
            serde_json::to_string(value).expect("an answer serializes")
        );
    } else {
        human(value);
    }
}

/// The human form of an answer that needs no special layout.
fn pretty(value: &Value) {
    match value {
        Value::Null => {}
        Value::String(s) => println!("{s}"),
        other => println!(
            "{}",
            serde_json::to_string_pretty(other).unwrap_or_default()
        ),
    }
}

/// The commands that talk to a running eddy.
fn remote(client: &client::Client, command: Command, json: bool) -> anyhow::Result<()> {
    match command {
        Command::Serve { .. } | Command::Validate { .. } | Command::Migrate { .. } => {
            unreachable!("handled in main")
        }
        Command::Deploy { manifests } => {
            let deployed = admin::deploy(client, &manifests)?;
            output(json, &deployed, |deployed| {
                if !deployed.warnings.is_empty() {
                    eprintln!("{}", deployed.warnings);
                }
                println!(
                    "deployed: {} functions, {} triggers (app version {})",
                    deployed.functions, deployed.triggers, deployed.version
                );
            });
        }
        Command::Cp { source, target } => {
            let answer = objects::cp(client, &source, &target)?;
            if target != "-" {
                output(json, &answer, objects::print_copied);
            }
        }
        Command::Ls { target, recursive } => {
            let listing = objects::ls(client, target.as_deref(), recursive)?;
            output(json, &listing, objects::print_listing);
        }
        Command::Rm { target } => output(json, &objects::rm(client, &target)?, |_| {}),
        Command::Table(table) => {
            let answer = match table {
                TableCommand::Put { table, row } => rows::put(client, &table, &row)?,
                TableCommand::Get { table, key } => rows::get(client, &table, &key)?,
                TableCommand::Delete { table, key } => rows::delete(client, &table, &key)?,
                TableCommand::Scan {
                    table,
                    filters,
                    limit,
                } => rows::scan(client, &table, &filters, limit)?,
            };
            output(json, &answer, pretty);
        }
        Command::Invoke {
            name,
            payload,
            asynchronous,
            log,
        } => {
            let invoked = functions::invoke(client, &name, payload.as_deref(), asynchronous, log)?;
            if let Some(log) = &invoked.log {
                eprint!("{log}");
            }
            output(json, &invoked.result, pretty);
        }
        Command::Logs { name, follow } => functions::logs(client, &name, follow, |record| {
            output(json, record, functions::print_invocation);
        })?,
        Command::Events(EventsCommand::Tail { last, follow }) => {
            admin::tail(client, last, follow, |event| {
                output(json, event, admin::print_event)
            })?;
        }
        Command::Events(EventsCommand::Show { id }) => {
            output(json, &admin::show(client, &id)?, admin::print_explained);
        }
        Command::Triggers(TriggersCommand::Backfill { name }) => {
            let answer = admin::backfill(client, &name)?;
            output(json, &answer, admin::print_replay);
        }
        Command::Events(EventsCommand::Replays) => {
            output(json, &admin::replays(client)?, admin::print_replays);
        }
        Command::Events(EventsCommand::Replay { trigger, from, to }) => {
            let answer = admin::replay(client, &trigger, &from, to.as_deref())?;
            output(json, &answer, admin::print_replay);
        }
        Command::Dlq(DlqCommand::List { function }) => {
            let answer = admin::dead_letters(client, function.as_deref())?;
            output(json, &answer, admin::print_dead_letters);
        }
        Command::Usage {
            price_per_million_requests,
            price_per_gb_second,
            free_requests,
            free_gb_seconds,
        } => {
            let prices = Prices {
                per_million_requests: price_per_million_requests,
                per_gb_second: price_per_gb_second,
                free_requests,
                free_gb_seconds,
            };
            output(json, &admin::usage(client, &prices)?, admin::print_usage);
        }
        Command::Dlq(DlqCommand::Redrive { id, function }) => {
            let answer = admin::redrive(client, id, function.as_deref())?;
            output(json, &answer, |a| println!("redriven: {}", a.redriven));
        }
    }
    Ok(())
}

/// How many of a schedule's next runs `eddy validate` shows.
const RUNS_SHOWN: usize = 5;

/// A schedule's next runs after `after_ms`, as `eddy validate` shows them.
fn next_runs(schedule: &eddy_subscriptions::ScheduleSpec, after_ms: i64) -> String {
    let mut out = format!(
        "schedule `{}` runs `{}` with {}",
        schedule.name, schedule.function, schedule.expression
    );
    if schedule.timezone != "UTC" {
        out.push_str(&format!(" in {}", schedule.timezone));
    }
    if !schedule.enabled {
        out.push_str(" (disabled)");
    }
    let runs = schedule.runs_after(after_ms, RUNS_SHOWN);
    if runs.is_empty() {
        out.push_str(&format!(
            "; it has no run after {}\n",
            eddy_core::time::iso8601_millis(after_ms)
        ));
        return out;
    }
    match runs.len() {
        1 => out.push_str("; its one run:\n"),
        n => out.push_str(&format!("; its next {n} runs:\n")),
    }
    for run in runs {
        out.push_str(&format!("  {}\n", schedule.local_time(run)));
    }
    out
}

/// A time given on the command line: `2027-01-01T00:00:00Z`, in milliseconds since the epoch.
fn parse_time(text: &str) -> Result<i64, String> {
    eddy_core::time::parse_iso8601(text)
        .ok_or_else(|| format!("`{text}` is not a time like 2027-01-01T00:00:00Z"))
}

/// `eddy validate`: the findings on stderr; with `--json`, the locked app on stdout (what a
/// deploy would store and every node run).
fn validate(manifests: &[PathBuf], runs_after: i64, json: bool) -> ExitCode {
    let loaded = eddy_subscriptions::load_files(manifests);
    if !loaded.findings.is_empty() {
        eprintln!("{}", loaded.findings);
    }
    let Some(app) = loaded.app else {
        return ExitCode::FAILURE;
    };
    if !json {
        println!(
            "ok: {} buckets, {} tables, {} functions, {} triggers, {} schedules",
            app.buckets.len(),
            app.tables.len(),
            app.functions.len(),
            app.triggers.len(),
            app.schedules.len()
        );
        for schedule in &app.schedules {
            print!("{}", next_runs(schedule, runs_after));
        }
        return ExitCode::SUCCESS;
    }
    match eddy_subscriptions::LockedApp::lock(app) {
        Ok(locked) => {
            println!("{}", locked.to_json());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
