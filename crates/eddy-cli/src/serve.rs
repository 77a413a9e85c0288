//! `eddy serve`: wires the stores, the executor and the HTTP surfaces together.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::{Context, bail};
use eddy_bus::Bus;
use eddy_executor::{Executor, ExecutorConfig, SystemClock};
use eddy_objects::ObjectStore;
use eddy_server::Services;
use eddy_server::auth::{DEV_ACCESS_KEY_ID, Principals, development_credentials};
use eddy_sigv4::Credentials;
use eddy_tables::TableStore;

/// How function workers are run.
pub struct WorkerOptions {
    pub strict_cpu: bool,
    pub idle: std::time::Duration,
}

pub async fn run(
    manifests: &[PathBuf],
    data_dir: &Path,
    listen: SocketAddr,
    workers: WorkerOptions,
) -> anyhow::Result<()> {
    let root = root_credentials(listen)?;
    let loaded = eddy_subscriptions::load_files(manifests);
    if !loaded.findings.is_empty() {
        eprintln!("{}", loaded.findings);
    }
    let Some(app) = loaded.app else {
        bail!("the manifests have errors; nothing was started");
    };
    let bus = Bus::open(data_dir)
        .await
        .with_context(|| format!("opening the data directory {}", data_dir.display()))?;
    let objects = ObjectStore::open(bus.clone())?;
    let tables = TableStore::open(bus.clone()).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let address = listener.local_addr()?;
    let config = ExecutorConfig {
        stream_labels: eddy_server::provision(&app, &objects, &tables).await?,
        function_env: function_environment(address),
        strict_cpu: workers.strict_cpu,
        worker_idle_timeout: workers.idle,
        ..ExecutorConfig::default()
    };
    let executor =
        Arc::new(Executor::start(bus.clone(), app.clone(), Arc::new(SystemClock), config).await?);
    let services = Arc::new(Services {
        bus,
        objects,
        tables,
        executor: executor.clone(),
        app: RwLock::new(Arc::new(app)),
        principals: Principals::new(root),
    });
    services.grant(&services.app())?;
    tokio::spawn(rotate_credentials(Arc::downgrade(&services)));
    // Reloads and ingests until eddy stops.
    let _watching = crate::watch::start(manifests, data_dir, services.clone()).await?;
    // Scripts and tests read this line to find the port.
    println!("eddy listening on http://{address}");
    tracing::info!(%address, data_dir = %data_dir.display(), "eddy is serving");
    eddy_server::serve(listener, services, shutdown_signal()).await?;
    tracing::info!("stopping: no new requests; finishing the executor");
    executor.shutdown().await;
    Ok(())
}

/// How often the functions' credentials are issued anew (each lives two hours).
const ROTATE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Issues the functions new credentials every hour, while eddy runs.
async fn rotate_credentials(services: std::sync::Weak<Services>) {
    loop {
        tokio::time::sleep(ROTATE_EVERY).await;
        let Some(services) = services.upgrade() else {
            return;
        };
        match services.grant(&services.app()) {
            Ok(()) => tracing::info!("function credentials rotated"),
            Err(e) => tracing::error!(error = %e, "function credentials not rotated"),
        }
    }
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
    let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
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

/// Loads the manifests again and, when they are valid and their tables can be declared,
/// runs the new app from now on. Otherwise the running app stays; every finding is logged.
pub async fn reload(manifests: &[PathBuf], services: &Services) {
    let loaded = eddy_subscriptions::load_files(manifests);
    let Some(app) = loaded.app else {
        tracing::error!(
            "the changed manifests have errors; still running the previous configuration\n{}",
            loaded.findings
        );
        return;
    };
    if !loaded.findings.is_empty() {
        tracing::warn!("{}", loaded.findings);
    }
    if let Err(e) = services.apply(app).await {
        tracing::error!(
            "the changed manifests cannot be applied; still running the previous configuration: {e}"
        );
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
