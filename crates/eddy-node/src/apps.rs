//! The apps put in service, as stored: the locked app every node runs, with where it came from,
//! so that a deploy is in effect on every node and after a restart.

use async_trait::async_trait;
use eddy_bus::sql::Sql;
use eddy_subscriptions::LockedApp;

use crate::NodeError;

/// How many apps the store keeps (besides the latest one from manifest files).
pub const HISTORY: u64 = 20;

/// Where an app in service came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppSource {
    /// The manifest files a node was started with (or that changed under it); `digest`
    /// identifies their locked app, so a restart can tell whether they changed since.
    Manifests { digest: String },
    /// `eddy deploy`.
    Deploy,
}

/// An app put in service.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredApp {
    /// Above every earlier app's.
    pub version: u64,
    pub locked: LockedApp,
    pub source: AppSource,
    /// The node that put it in service.
    pub node: String,
    pub applied_ms: i64,
}

/// Where the apps put in service are kept.
#[async_trait]
pub trait AppStore: Send + Sync + 'static {
    /// Records `app` as the app in service from now on (in the caller's transaction) and
    /// returns its version. Older apps beyond [`HISTORY`] are forgotten, except the latest one
    /// from manifest files.
    async fn save(&self, tx: &mut dyn Sql, app: &StoredApp) -> Result<u64, NodeError>;

    /// The app in service: the one saved last.
    async fn latest(&self, db: &mut dyn Sql) -> Result<Option<StoredApp>, NodeError>;

    /// The version of the app in service (cheap: nodes ask it often to follow deploys).
    async fn latest_version(&self, db: &mut dyn Sql) -> Result<Option<u64>, NodeError>;

    /// The latest app that came from manifest files.
    async fn latest_from_manifests(&self, db: &mut dyn Sql)
    -> Result<Option<StoredApp>, NodeError>;
}
