//! What every storage backend must do, written once: each suite takes a [`Backend`] and checks
//! one trait's promises through it — the journal's order and gap-freeness, cursors, delivery
//! claims under concurrent claimers, lease expiry, per-key order, idempotent creation, object
//! listing order, table pages, stored credentials and apps. `conformance_sqlite.rs` runs them
//! on SQLite; another backend adds a file that runs them on it.

pub mod deliveries;
pub mod journal;
pub mod node_state;
pub mod objects;
pub mod tables;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use eddy_bus::Bus;
use eddy_executor::DeliveryStore;
use eddy_node::{AppStore, CredentialStore};
use eddy_objects::ObjectStore;
use eddy_tables::TableStore;

/// Everything a backend stores, opened fresh.
pub struct Stores {
    pub bus: Bus,
    pub objects: ObjectStore,
    pub tables: TableStore,
    pub deliveries: Arc<dyn DeliveryStore>,
    pub credentials: Arc<dyn CredentialStore>,
    pub apps: Arc<dyn AppStore>,
}

/// A storage backend under test.
/// (Not `Send`: opening may hold a database driver's non-`Send` future.)
#[async_trait(?Send)]
pub trait Backend: Send + Sync {
    /// Empty stores whose files (if any) live in `dir`.
    async fn open(&self, dir: &Path) -> Stores;
}
