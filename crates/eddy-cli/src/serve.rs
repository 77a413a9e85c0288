//! `eddy serve`: wires the stores, the executor and the HTTP surfaces together.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::{Context, bail};
use eddy_bus::Bus;
use eddy_executor::{Executor, ExecutorConfig, SystemClock};
use eddy_objects::{ObjectError, ObjectStore};
use eddy_server::Services;
use eddy_server::auth::{DEV_ACCESS_KEY_ID, Principals, development_credentials};
use eddy_sigv4::Credentials;
use eddy_subscriptions::App;
use eddy_tables::TableStore;

pub async fn run(manifests: &[PathBuf], data_dir: &Path, listen: SocketAddr) -> anyhow::Result<()> {
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
    let config = ExecutorConfig {
        stream_labels: provision(&app, &objects, &tables).await?,
        ..ExecutorConfig::default()
    };
    let executor =
        Arc::new(Executor::start(bus.clone(), app.clone(), Arc::new(SystemClock), config).await?);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let address = listener.local_addr()?;
    let services = Arc::new(Services {
        bus,
        objects,
        tables,
        executor: executor.clone(),
        app: RwLock::new(Arc::new(app)),
        principals: Principals::new(root),
    });
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
    match provision(&app, &services.objects, &services.tables).await {
        Ok(stream_labels) => {
            tracing::info!(
                functions = app.functions.len(),
                triggers = app.triggers.len(),
                "applied the changed manifests"
            );
            services.executor.set_app(app.clone(), stream_labels);
            *services.app.write().expect("app lock") = Arc::new(app);
        }
        Err(e) => tracing::error!(
            "the changed manifests cannot be applied; still running the previous configuration: {e:#}"
        ),
    }
}

/// Creates the app's buckets and declares its tables (adding columns where the manifest did).
/// Returns each table's DynamoDB stream label: its creation time without the zone letter, as
/// DynamoDB names a stream.
async fn provision(
    app: &App,
    objects: &ObjectStore,
    tables: &TableStore,
) -> anyhow::Result<HashMap<String, String>> {
    for bucket in &app.buckets {
        match objects.create_bucket(&bucket.name).await {
            Ok(()) | Err(ObjectError::BucketAlreadyExists(_)) => {}
            Err(e) => return Err(e).with_context(|| format!("creating bucket {}", bucket.name)),
        }
    }
    for table in &app.tables {
        let outcome = tables
            .declare(table.schema.clone())
            .await
            .with_context(|| format!("declaring table {} ({})", table.schema.name(), table.at))?;
        tracing::info!(table = %table.schema.name(), ?outcome, "table declared");
    }
    let labels = tables.created().await?.into_iter().map(|(table, ms)| {
        let label = eddy_events::iso8601_millis(ms);
        (table, label.trim_end_matches('Z').to_string())
    });
    Ok(labels.collect())
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
