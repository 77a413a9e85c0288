//! `eddy serve`: wires the stores, the executor and the HTTP surfaces together.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use eddy_executor::ExecutorConfig;
use eddy_node::{DEV_ACCESS_KEY_ID, Duties, Node, NodeConfig, development_credentials};
use eddy_runtimes::sandbox::{Mode, Sandbox, SandboxOptions};
use eddy_server::Services;
use eddy_sigv4::Credentials;
use eddy_subscriptions::{App, Runtime, SecretSource};

/// The options of `eddy serve`.
#[derive(clap::Args)]
pub struct ServeOptions {
    /// Where data lives (created if missing).
    #[arg(long, default_value = "./.eddy")]
    data_dir: PathBuf,
    /// The address to listen on; port 0 picks a free port. Anything but a loopback address
    /// needs EDDY_ACCESS_KEY_ID and EDDY_SECRET_ACCESS_KEY.
    #[arg(long, default_value = "127.0.0.1:7171")]
    listen: SocketAddr,
    /// Cap each function worker's CPU at one core per 1,769 MB of memory, as Lambda does
    /// (where a cpu cgroup is writable); otherwise CPU is only shared in proportion.
    #[arg(long)]
    strict_cpu: bool,
    /// Stop a function's warm worker after it has been idle this long (e.g. 30s, 5m).
    #[arg(long, default_value = "5m", value_parser = duration)]
    worker_idle: std::time::Duration,
    /// How functions are kept from eddy and from each other: auto (the strongest this host
    /// allows), isolated, namespaces, users or off.
    #[arg(long, default_value = "auto", value_parser = sandbox_mode)]
    function_sandbox: SandboxChoice,
    /// The user ids functions run as when eddy runs as root, one per function: FIRST-LAST.
    /// Give two eddy processes on one host ranges that do not overlap.
    #[arg(long, default_value = "2000000000-2000065535", value_parser = uid_range)]
    function_uids: std::ops::RangeInclusive<u32>,
    /// Run functions even though no sandbox is possible here while eddy listens beyond this
    /// machine: any function could then read every secret eddy holds.
    #[arg(long)]
    allow_unsandboxed_functions: bool,
    /// A host name this eddy answers to besides IP addresses and localhost (repeat for more);
    /// buckets are also reached as BUCKET.NAME. Requests naming any other host are refused.
    #[arg(long = "host", value_name = "NAME")]
    hosts: Vec<String>,
    /// How long a request body may go without a byte arriving before the request fails.
    #[arg(long, default_value = "30s", value_parser = duration)]
    body_idle_timeout: std::time::Duration,
    /// This eddy's name among the nodes sharing its state; leases and credentials carry it.
    /// By default, the one kept in the data directory (made at the first start).
    #[arg(long)]
    node_id: Option<String>,
    /// How long a delivery whose node stopped answering stays leased beyond its function's
    /// timeout before another node takes it over (several nodes on one database).
    #[arg(long, default_value = "30s", value_parser = duration)]
    lease_grace: std::time::Duration,
    /// Keep tables, the journal, deliveries, object metadata, credentials and the deployed app
    /// in this PostgreSQL (15 or later) instead of SQLite in the data directory, so that several
    /// nodes can serve one app: postgres://USER:PASSWORD@HOST:PORT/DATABASE.
    #[arg(
        long,
        env = "EDDY_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    database: Option<String>,
    /// Keep object bytes in this S3 bucket instead of the data directory: s3://BUCKET[/PREFIX].
    /// The store's address and keys come from EDDY_BLOBS_ENDPOINT, EDDY_BLOBS_REGION,
    /// EDDY_BLOBS_ACCESS_KEY_ID and EDDY_BLOBS_SECRET_ACCESS_KEY (or the standard AWS_*
    /// variables).
    #[arg(long, env = "EDDY_BLOBS", value_name = "S3_URI")]
    blobs: Option<String>,
    /// Keep objects up to this many bytes in the database with their metadata (committed with
    /// many others in one fsync) rather than as blobs; 0 keeps every object in a blob.
    #[arg(long, default_value_t = eddy_objects::DEFAULT_INLINE_BYTES, value_name = "BYTES")]
    inline_objects_up_to: u64,
}

/// `auto`, or a sandbox mode.
#[derive(Clone, Copy, Debug)]
pub struct SandboxChoice(Option<Mode>);

fn sandbox_mode(text: &str) -> Result<SandboxChoice, String> {
    match text {
        "auto" => Ok(SandboxChoice(None)),
        mode => mode.parse().map(|m| SandboxChoice(Some(m))),
    }
}

fn uid_range(text: &str) -> Result<std::ops::RangeInclusive<u32>, String> {
    let bad = || {
        format!("{text:?} is not a range of user ids; write FIRST-LAST, e.g. 2000000000-2000065535")
    };
    let (first, last) = text.split_once('-').ok_or_else(bad)?;
    let (first, last): (u32, u32) = (
        first.trim().parse().map_err(|_| bad())?,
        last.trim().parse().map_err(|_| bad())?,
    );
    if first == 0 || first > last {
        return Err(format!(
            "{text:?}: the first id must be above 0 (root) and not above the last"
        ));
    }
    Ok(first..=last)
}

/// A duration as manifests write them (`500ms`, `30s`, `5m`).
fn duration(text: &str) -> Result<std::time::Duration, String> {
    eddy_subscriptions::parse_duration(text)
        .ok_or_else(|| format!("{text:?} is not a duration; write e.g. 30s or 5m"))
}

/// The environment variables that hold secrets for this app: eddy takes them out of its
/// environment at start.
pub fn secret_variables(app: &App) -> Vec<&str> {
    let mut names = vec!["EDDY_SECRET_ACCESS_KEY"];
    names.extend(crate::backends::SECRET_VARIABLES);
    for key in &app.access_keys {
        if let SecretSource::Env(name) = &key.secret {
            names.push(name);
        }
    }
    for function in &app.functions {
        if let Runtime::Webhook {
            secret_env: Some(name),
            ..
        } = &function.runtime
        {
            names.push(name);
        }
    }
    names
}

pub async fn run(
    app: App,
    findings: &eddy_subscriptions::Findings,
    manifests: &[PathBuf],
    options: ServeOptions,
) -> anyhow::Result<()> {
    let listen = options.listen;
    let data_dir = options.data_dir.as_path();
    let root = root_credentials(listen)?;
    let blobs = options
        .blobs
        .as_deref()
        .map(crate::backends::blob_location)
        .transpose()?;
    if options.database.is_some() && blobs.is_none() {
        tracing::warn!(
            "objects are kept on this node's disk while the database is shared: other nodes cannot read them; give every node the same --blobs s3://BUCKET"
        );
    }
    let bus = crate::backends::open_bus(options.database.as_deref(), data_dir).await?;
    let sandbox = function_sandbox(&options, data_dir)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let address = listener.local_addr()?;
    let config = NodeConfig {
        id: options.node_id.clone(),
        root,
        manifests: manifests.to_vec(),
        watch: true,
        executor: ExecutorConfig {
            function_env: function_environment(address),
            strict_cpu: options.strict_cpu,
            worker_idle_timeout: options.worker_idle,
            lease_grace: options.lease_grace,
            sandbox,
            ..ExecutorConfig::default()
        },
        blobs,
        inline_objects_up_to: options.inline_objects_up_to,
        duties: Duties::default(),
    };
    let node = Node::start(bus, app, config).await?;
    node.set_findings(findings);
    let services = Arc::new(Services::new(
        node.clone(),
        eddy_server::Hosts::new(&options.hosts),
        options.body_idle_timeout,
    ));
    // Scripts and tests read this line to find the port.
    println!("eddy listening on http://{address}");
    tracing::info!(%address, node = node.id, data_dir = %data_dir.display(), "eddy is serving");
    let (failed_tx, failed) = tokio::sync::oneshot::channel();
    let storage = node.bus.watch_storage();
    let stop = async move {
        tokio::select! {
            _ = shutdown_signal() => {}
            reason = storage_failed(storage) => {
                let _ = failed_tx.send(reason);
            }
        }
    };
    eddy_server::serve(listener, services, stop).await?;
    tracing::info!("stopping: no new requests; finishing the executor");
    node.shutdown().await;
    match failed.await {
        Ok(reason) => bail!("eddy stopped: {reason}"),
        Err(_) => Ok(()),
    }
}

/// Resolves when the database can no longer be written, with the reason: eddy then stops
/// loudly rather than run on storage it cannot trust.
async fn storage_failed(
    mut storage: tokio::sync::watch::Receiver<eddy_bus::StorageState>,
) -> String {
    loop {
        if let eddy_bus::StorageState::Failed { reason } = &*storage.borrow_and_update() {
            return reason.clone();
        }
        if storage.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

/// Sets up the function sandbox and says which one runs; refuses to run functions without one
/// on an address beyond this machine unless the operator said so.
fn function_sandbox(options: &ServeOptions, data_dir: &Path) -> anyhow::Result<Arc<Sandbox>> {
    let sandbox = Sandbox::start(SandboxOptions {
        mode: options.function_sandbox.0,
        uids: options.function_uids.clone(),
        data_dir: data_dir.to_path_buf(),
        init_program: std::env::current_exe().ok(),
    })?;
    for reason in sandbox.passed_over() {
        tracing::info!(reason, "a stronger function sandbox is not available");
    }
    if sandbox.mode() != Mode::Off {
        tracing::info!(sandbox = sandbox.describe(), "function sandbox");
        return Ok(sandbox);
    }
    let asked = options.function_sandbox.0 == Some(Mode::Off);
    if !options.listen.ip().is_loopback() && !options.allow_unsandboxed_functions {
        bail!(
            "no function sandbox is possible here{} and eddy listens on {}, beyond this machine: any function could read eddy's data and secrets. Run eddy as root or where unprivileged user namespaces are allowed, or pass --allow-unsandboxed-functions to accept the risk",
            if asked {
                " (--function-sandbox off)"
            } else {
                ""
            },
            options.listen
        );
    }
    let warning = format!(
        "FUNCTIONS RUN WITHOUT A SANDBOX{}: {}",
        if asked { " (as asked)" } else { "" },
        Mode::Off.guarantee()
    );
    eprintln!("eddy: {warning}");
    tracing::warn!("{warning}");
    Ok(sandbox)
}

/// What every function process is told about eddy, so the AWS SDK inside a handler reaches
/// eddy unchanged: the endpoint (a loopback address when eddy listens on all of them). Each
/// function's own credentials come with its role.
fn function_environment(address: SocketAddr) -> Vec<(String, String)> {
    let mut reachable = address;
    if address.ip().is_unspecified() {
        reachable.set_ip(match address {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let endpoint = format!("http://{reachable}");
    [
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT_URL_LAMBDA",
        "EDDY_ENDPOINT",
    ]
    .iter()
    .map(|name| (name.to_string(), endpoint.clone()))
    .collect()
}

/// The root credentials from `EDDY_ACCESS_KEY_ID` and `EDDY_SECRET_ACCESS_KEY`, or the
/// documented development ones, which anyone can read, so only behind a loopback address.
fn root_credentials(listen: SocketAddr) -> anyhow::Result<Credentials> {
    let var = |name| eddy_core::secrets::var(name).filter(|v: &String| !v.is_empty());
    match (var("EDDY_ACCESS_KEY_ID"), var("EDDY_SECRET_ACCESS_KEY")) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Credentials {
            access_key_id,
            secret_access_key,
        }),
        (None, None) if listen.ip().is_loopback() => {
            tracing::info!(
                access_key_id = DEV_ACCESS_KEY_ID,
                "using the development credentials (set EDDY_ACCESS_KEY_ID and EDDY_SECRET_ACCESS_KEY to choose your own)"
            );
            Ok(development_credentials())
        }
        (None, None) => bail!(
            "eddy listens on {listen}, which is not a loopback address, so the development credentials are refused: set EDDY_ACCESS_KEY_ID and EDDY_SECRET_ACCESS_KEY"
        ),
        _ => bail!("set both EDDY_ACCESS_KEY_ID and EDDY_SECRET_ACCESS_KEY, or neither"),
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM can be handled");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
