//! One running eddy — a node — and everything that happens to it over time. A [`Node`] owns the
//! stores, the executor and the principals, and is the one place the app's lifecycle lives:
//! start (which app to run), apply (provision, grant, executor update, stored so every node and
//! every restart runs it), deploy, reload from the manifest files, credential rotation, watch
//! folder ingestion, garbage collection, following apps other nodes put in service, shutdown.
//! The HTTP surfaces call it; the command line builds it.

mod apps;
mod backfill;
mod credentials;
mod destinations;
mod duties;
mod error;
mod folder;
mod identity;
mod migrate;
mod principals;
mod provision;
mod sql;
mod watch;

use std::path::PathBuf;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};

use eddy_bus::Bus;
use eddy_executor::{Executor, ExecutorConfig};
use eddy_objects::ObjectStore;
use eddy_sigv4::Credentials;
use eddy_subscriptions::{App, LockedApp, ManifestText};
use eddy_tables::TableStore;
use sha2::{Digest, Sha256};

pub use apps::{AppSource, AppStore, HISTORY, StoredApp};
pub use credentials::{CredentialStore, IssuedCredential};
pub use destinations::StoreDestinations;
pub use duties::Duties;
pub use error::NodeError;
pub use identity::{NODE_ID_FILE, node_id};
pub use migrate::{Migrated, migrate};
pub use principals::{
    DEV_ACCESS_KEY_ID, DEV_SECRET_ACCESS_KEY, FUNCTION_CREDENTIALS_LIFETIME, FunctionEnv,
    Principal, Principals, development_credentials,
};
pub use provision::provision;
pub use sql::{SqlApps, SqlCredentials};

/// How to start a node.
pub struct NodeConfig {
    /// This node's id; `None` takes the one in the data directory (made on first start).
    pub id: Option<String>,
    pub root: Credentials,
    /// The manifest files the app comes from; empty runs the stored app (or none).
    pub manifests: Vec<PathBuf>,
    /// Follow the manifests, the functions' code and the buckets' watch folders on disk.
    pub watch: bool,
    /// The executor's settings; its node id and stream labels are the node's to fill in.
    pub executor: ExecutorConfig,
    /// Where object bytes go: the node's own disk, or an S3 bucket that nodes share.
    pub blobs: Option<eddy_objects::S3Location>,
    /// Objects up to this many bytes are kept in the database with their metadata.
    pub inline_objects_up_to: u64,
    pub duties: Duties,
}

/// A running eddy.
pub struct Node {
    pub id: String,
    pub bus: Bus,
    pub objects: ObjectStore,
    pub tables: TableStore,
    pub executor: Arc<Executor>,
    pub principals: Principals,
    /// Whether object bytes live in a store every node shares (then one node collects them).
    shared_blobs: bool,
    apps: Arc<dyn AppStore>,
    credentials: Arc<dyn CredentialStore>,
    /// The version of the app in service, and the app (watchers follow its changes).
    version: std::sync::atomic::AtomicU64,
    in_service: tokio::sync::watch::Sender<Arc<App>>,
    /// One apply at a time (a reload, a deploy and a followed app never interleave).
    applying: tokio::sync::Mutex<()>,
    manifests: Vec<PathBuf>,
    /// What the checker said of the manifests last read or deployed (errors included, when the
    /// app in service is an earlier one), as it prints it.
    findings: Mutex<String>,
    duties: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    watching: Mutex<Option<watch::Watching>>,
}

/// What a deploy did.
#[derive(Clone, Debug, PartialEq)]
pub struct Deployed {
    pub version: u64,
    pub functions: usize,
    pub triggers: usize,
    /// The checker's warnings, as it prints them (empty when there were none).
    pub warnings: String,
}

impl Node {
    /// Starts a node on `bus` with `manifest_app` (the app the manifest files declare, already
    /// checked). The app it runs: the one a deploy stored, if the manifests have not changed
    /// since the app they last put in service; otherwise the manifests' app, stored.
    pub async fn start(
        bus: Bus,
        manifest_app: App,
        config: NodeConfig,
    ) -> Result<Arc<Self>, NodeError> {
        let id = match config.id {
            Some(id) => identity::checked(id)?,
            None => node_id(bus.data_dir())?,
        };
        let shared_blobs = config.blobs.is_some();
        let objects = match config.blobs {
            None => ObjectStore::open(bus.clone())?,
            Some(location) => {
                let blobs = eddy_objects::S3Blobs::connect(location, bus.data_dir()).await?;
                ObjectStore::new(
                    bus.clone(),
                    Arc::new(eddy_objects::SqlIndex),
                    Arc::new(blobs),
                )
            }
        }
        .with_inline_threshold(config.inline_objects_up_to);
        let tables = TableStore::open(bus.clone())
            .await
            .map_err(NodeError::Tables)?;
        let apps: Arc<dyn AppStore> = Arc::new(SqlApps);
        let credentials: Arc<dyn CredentialStore> = Arc::new(SqlCredentials);
        let (chosen, stored) = choose_app(&bus, apps.as_ref(), manifest_app, &id).await?;
        let app = chosen.locked.app.clone();
        let stream_labels = provision(&app, &objects, &tables).await?;
        let executor_config = ExecutorConfig {
            node: id.clone(),
            stream_labels: stream_labels.clone(),
            destination_writer: Some(Arc::new(StoreDestinations::new(
                objects.clone(),
                tables.clone(),
            ))),
            ..config.executor
        };
        let principals = Principals::new(config.root, bus.clone(), credentials.clone(), &id);
        let prepared = principals.prepare(&app)?;
        let issued = prepared.issued().to_vec();
        let version = if stored {
            store(&bus, &credentials, None, issued).await?;
            chosen.version
        } else {
            store(&bus, &credentials, Some((apps.clone(), chosen)), issued).await?
        };
        let executor = Arc::new(
            Executor::start_with(
                bus.clone(),
                Arc::new(eddy_executor::SqlDeliveries::new(&bus, &id)),
                app.clone(),
                Arc::new(eddy_executor::SystemClock),
                executor_config,
            )
            .await?,
        );
        executor.set_function_env(principals.install(prepared));
        tracing::info!(
            node = id,
            version,
            functions = app.functions.len(),
            triggers = app.triggers.len(),
            "app in service"
        );
        let node = Arc::new(Self {
            id,
            bus,
            objects,
            shared_blobs,
            tables,
            executor,
            principals,
            apps,
            credentials,
            version: std::sync::atomic::AtomicU64::new(version),
            in_service: tokio::sync::watch::Sender::new(Arc::new(app)),
            applying: tokio::sync::Mutex::new(()),
            manifests: config.manifests,
            findings: Mutex::new(String::new()),
            duties: Mutex::new(Vec::new()),
            watching: Mutex::new(None),
        });
        *node.duties.lock().expect("duty lock") = node.start_duties(config.duties);
        if config.watch {
            let (reload, mut reloads) = tokio::sync::mpsc::channel(1);
            let watching = watch::start(watch::Followed {
                manifests: node.manifests.clone(),
                data_dir: node.bus.data_dir().to_path_buf(),
                objects: node.objects.clone(),
                app: node.in_service.subscribe(),
                reload,
            })
            .await?;
            let weak = Arc::downgrade(&node);
            node.duties
                .lock()
                .expect("duty lock")
                .push(tokio::spawn(async move {
                    while reloads.recv().await.is_some() {
                        let Some(node) = weak.upgrade() else {
                            return;
                        };
                        node.reload().await;
                    }
                }));
            *node.watching.lock().expect("watch lock") = Some(watching);
        }
        Ok(node)
    }

    /// The app in service.
    pub fn app(&self) -> Arc<App> {
        self.in_service.borrow().clone()
    }

    /// The version of the app in service.
    pub fn app_version(&self) -> u64 {
        self.version.load(SeqCst)
    }

    /// What the checker said of the manifests last read or deployed, as it prints it (empty
    /// when it said nothing).
    pub fn findings(&self) -> String {
        self.findings.lock().expect("findings lock").clone()
    }

    pub fn set_findings(&self, findings: &eddy_subscriptions::Findings) {
        let text = if findings.is_empty() {
            String::new()
        } else {
            findings.to_string()
        };
        *self.findings.lock().expect("findings lock") = text;
    }

    /// Checks manifest texts as one app and, when they are valid, puts it in service on every
    /// node. Errors change nothing: the manifests' findings, or why the app cannot be applied.
    pub async fn deploy(&self, manifests: &[ManifestText<'_>]) -> Result<Deployed, NodeError> {
        let loaded = eddy_subscriptions::load(manifests);
        let warnings = loaded.findings.to_string();
        self.set_findings(&loaded.findings);
        let Some(app) = loaded.app else {
            return Err(NodeError::InvalidManifests(warnings));
        };
        let (functions, triggers) = (app.functions.len(), app.triggers.len());
        let version = self.apply(LockedApp::lock(app)?, AppSource::Deploy).await?;
        Ok(Deployed {
            version,
            functions,
            triggers,
            warnings,
        })
    }

    /// Loads the manifest files again and, when they are valid and can be applied, puts their
    /// app in service. Otherwise the app in service stays; every finding is logged.
    pub async fn reload(&self) {
        let loaded = eddy_subscriptions::load_files(&self.manifests);
        self.set_findings(&loaded.findings);
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
        let applied = match LockedApp::lock(app) {
            Ok(locked) => {
                let digest = digest(&locked);
                self.apply(locked, AppSource::Manifests { digest }).await
            }
            Err(e) => Err(e.into()),
        };
        if let Err(e) = applied {
            tracing::error!(
                "the changed manifests cannot be applied; still running the previous configuration: {e}"
            );
        }
    }

    /// Provisions `locked`'s storage, stores it as the app in service (with the new
    /// credentials of its functions) and runs it from now on. On failure the app in service
    /// stays. Returns the app's version.
    pub async fn apply(&self, locked: LockedApp, source: AppSource) -> Result<u64, NodeError> {
        let _one = self.applying.lock().await;
        let record = StoredApp {
            version: 0,
            locked,
            source,
            node: self.id.clone(),
            applied_ms: eddy_bus::now_ms(),
        };
        self.put_in_service(record, true).await
    }

    /// Runs an app stored by another node (or earlier): provisions and grants here, without
    /// storing it again.
    async fn follow(&self, stored: StoredApp) -> Result<u64, NodeError> {
        let _one = self.applying.lock().await;
        if stored.version <= self.app_version() {
            return Ok(self.app_version());
        }
        self.put_in_service(stored, false).await
    }

    async fn put_in_service(&self, record: StoredApp, save: bool) -> Result<u64, NodeError> {
        let app = record.locked.app.clone();
        let prepared = self.principals.prepare(&app)?;
        let labels = provision(&app, &self.objects, &self.tables).await?;
        let issued = prepared.issued().to_vec();
        let version = if save {
            store(
                &self.bus,
                &self.credentials,
                Some((self.apps.clone(), record)),
                issued,
            )
            .await?
        } else {
            store(&self.bus, &self.credentials, None, issued).await?;
            record.version
        };
        tracing::info!(
            version,
            functions = app.functions.len(),
            triggers = app.triggers.len(),
            "app applied"
        );
        // One change: the new app's workers start once, with its credentials.
        let function_env = self.principals.install(prepared);
        self.executor.set_app(app.clone(), labels, function_env);
        self.version.store(version, SeqCst);
        self.in_service.send_replace(Arc::new(app));
        Ok(version)
    }

    /// Issues every function new credentials (its workers get them when they start).
    pub async fn rotate_credentials(&self) -> Result<(), NodeError> {
        let _one = self.applying.lock().await;
        let prepared = self.principals.prepare(&self.app())?;
        store(
            &self.bus,
            &self.credentials,
            None,
            prepared.issued().to_vec(),
        )
        .await?;
        self.executor
            .set_function_env(self.principals.install(prepared));
        Ok(())
    }

    /// Runs the app another node put in service since this one last looked, if any.
    pub async fn follow_stored_app(&self) -> Result<(), NodeError> {
        let latest = self.apps.latest_version(&mut self.bus.readers()).await?;
        if latest.is_none_or(|v| v <= self.app_version()) {
            return Ok(());
        }
        if let Some(stored) = self.apps.latest(&mut self.bus.readers()).await? {
            tracing::info!(
                version = stored.version,
                node = stored.node,
                "following the app another node put in service"
            );
            self.follow(stored).await?;
        }
        Ok(())
    }

    /// Starts what the node does on its own (see [`Duties`]).
    fn start_duties(self: &Arc<Self>, every: Duties) -> Vec<tokio::task::JoinHandle<()>> {
        let weak = Arc::downgrade(self);
        vec![
            duties::every(weak.clone(), every.rotate_credentials, |node: Arc<Node>| {
                Box::pin(async move {
                    match node.rotate_credentials().await {
                        Ok(()) => tracing::info!("function credentials rotated"),
                        Err(e) => tracing::error!(error = %e, "function credentials not rotated"),
                    }
                })
            }),
            tokio::spawn(duties::collect_garbage(
                self.objects.clone(),
                self.bus.watch_storage(),
                self.shared_blobs.then(|| self.bus.leading()),
                every,
            )),
            tokio::spawn(backfill::declared(
                weak.clone(),
                self.in_service.subscribe(),
                self.bus.leading(),
            )),
            duties::every(weak, every.follow_app, |node: Arc<Node>| {
                Box::pin(async move {
                    if let Err(e) = node.follow_stored_app().await {
                        tracing::warn!(error = %e, "cannot follow the stored app");
                    }
                })
            }),
        ]
    }

    /// Stops following the disk and the node's duties, then finishes the executor: no new
    /// attempts, running ones settled.
    pub async fn shutdown(&self) {
        self.watching.lock().expect("watch lock").take();
        for duty in self.duties.lock().expect("duty lock").drain(..) {
            duty.abort();
        }
        self.executor.shutdown().await;
    }
}

/// The app a node starts with: the one in service if the manifest files still lock to the app
/// they last put in service (so a deploy survives a restart, and a restart with the same files
/// changes nothing); otherwise the manifests' app, to store. Says whether it is stored already.
async fn choose_app(
    bus: &Bus,
    apps: &dyn AppStore,
    manifest_app: App,
    node: &str,
) -> Result<(StoredApp, bool), NodeError> {
    let from_files = LockedApp::lock(manifest_app)?;
    let digest = digest(&from_files);
    let mut db = bus.readers();
    let latest = apps.latest(&mut db).await?;
    let last_from_files = apps.latest_from_manifests(&mut db).await?;
    let unchanged = last_from_files.is_some_and(|s| {
        s.source
            == AppSource::Manifests {
                digest: digest.clone(),
            }
    });
    if let Some(latest) = latest.filter(|_| unchanged) {
        if latest.source == AppSource::Deploy {
            tracing::info!(
                version = latest.version,
                "running the deployed app (the manifest files have not changed since)"
            );
        }
        return Ok((latest, true));
    }
    let record = StoredApp {
        version: 0,
        locked: from_files,
        source: AppSource::Manifests { digest },
        node: node.to_string(),
        applied_ms: eddy_bus::now_ms(),
    };
    Ok((record, false))
}

/// Stores, in one transaction, the app put in service (if any) and the credentials issued for
/// it. Returns the app's version (0 when none was stored).
async fn store(
    bus: &Bus,
    credentials: &Arc<dyn CredentialStore>,
    app: Option<(Arc<dyn AppStore>, StoredApp)>,
    issued: Vec<IssuedCredential>,
) -> Result<u64, NodeError> {
    let now = eddy_bus::now_ms();
    bus.write(
        (credentials.clone(), app, issued),
        move |tx, (credentials, app, issued)| {
            Box::pin(async move {
                credentials.issue(tx, issued, now).await?;
                match app {
                    Some((apps, record)) => apps.save(tx, record).await,
                    None => Ok(0),
                }
            })
        },
    )
    .await
}

/// What identifies a locked app from manifest files: the SHA-256 of its JSON.
fn digest(locked: &LockedApp) -> String {
    hex::encode(Sha256::digest(locked.to_json().as_bytes()))
}
