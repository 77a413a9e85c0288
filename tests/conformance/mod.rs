//! What every storage backend must do, written once: each suite takes a [`Backend`] and checks
//! one trait's promises through it — the journal's order and gap-freeness, cursors, delivery
//! claims under concurrent claimers, lease expiry, per-key order, idempotent creation, object
//! listing order, table pages, stored credentials and apps. `conformance_sqlite.rs` runs them
//! on SQLite; another backend adds a file that runs them on it.

pub mod blobs;
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
use eddy_objects::{BlobStore, ObjectStore};
use eddy_tables::TableStore;

/// Everything a backend stores, opened fresh.
pub struct Stores {
    pub bus: Bus,
    pub objects: ObjectStore,
    /// The blob store under `objects`.
    pub blobs: Arc<dyn BlobStore>,
    pub tables: TableStore,
    pub deliveries: Arc<dyn DeliveryStore>,
    /// The delivery store as another node sharing the database has it (on an engine held by
    /// one process, the same store: that process's executors share it).
    pub other_node: Arc<dyn DeliveryStore>,
    pub credentials: Arc<dyn CredentialStore>,
    pub apps: Arc<dyn AppStore>,
}

impl Stores {
    /// The stores of one backend: its bus, its blob store, and the delivery stores of this node
    /// and of another sharing the database; the rest is the same SQL on every engine.
    pub async fn assemble(
        bus: Bus,
        blobs: Arc<dyn BlobStore>,
        deliveries: Arc<dyn DeliveryStore>,
        other_node: Arc<dyn DeliveryStore>,
    ) -> Self {
        Stores {
            objects: ObjectStore::new(bus.clone(), Arc::new(eddy_objects::SqlIndex), blobs.clone()),
            blobs,
            tables: TableStore::open(bus.clone()).await.unwrap(),
            deliveries,
            other_node,
            credentials: Arc::new(eddy_node::SqlCredentials),
            apps: Arc::new(eddy_node::SqlApps),
            bus,
        }
    }
}

/// A storage backend under test.
/// (Not `Send`: opening may hold a database driver's non-`Send` future.)
#[async_trait(?Send)]
pub trait Backend: Send + Sync {
    /// Empty stores whose files (if any) live in `dir`.
    async fn open(&self, dir: &Path) -> Stores;
}

/// Calls macro `$apply` with every suite, `module::suite`, so each backend runs all of them
/// from one list.
macro_rules! every_suite {
    ($apply:ident) => {
        $apply! {
            journal::concurrent_writes_are_ordered_and_gap_free,
            journal::failed_writes_leave_no_events_and_no_gaps,
            journal::cursors_and_followers,
            journal::a_noted_cursor_goes_with_the_next_write_and_never_back,
            journal::events_are_found_by_time_as_a_scan_finds_them,
            deliveries::creation_is_idempotent,
            deliveries::a_replay_delivers_again_apart_from_the_original,
            deliveries::concurrent_claimers_never_share_a_delivery,
            deliveries::a_key_runs_one_delivery_at_a_time_in_order,
            deliveries::an_ordered_delivery_starts_leased_only_while_its_key_is_free,
            deliveries::leases_expire_and_a_node_reclaims_only_its_own,
            deliveries::settling_retries_dead_letters_and_redrives,
            deliveries::settling_again_changes_nothing_and_a_stale_attempt_leaves_the_lease_alone,
            deliveries::slots_are_one_limit_for_every_claimer,
            deliveries::held_slots_do_not_run_out,
            deliveries::batches_take_each_keys_due_records_and_a_bisection_is_not_an_attempt,
            deliveries::done_deliveries_of_removed_events_go_and_dead_letters_stay,
            deliveries::old_invocations_are_summed_into_daily_usage_unless_a_kept_delivery_needs_them,
            objects::listings_are_in_utf8_binary_order_across_pages,
            objects::inline_objects_keep_their_bytes,
            blobs::blobs_round_trip_whole_and_in_ranges,
            blobs::a_blob_is_checksummed_and_a_wrong_checksum_leaves_nothing,
            blobs::joined_and_large_blobs_stream_through,
            blobs::garbage_collection_removes_only_what_nothing_refers_to,
            tables::keyset_pages_cover_every_row_once_in_key_order,
            tables::every_column_type_round_trips_and_changes,
            node_state::credentials_are_found_until_they_expire,
            node_state::apps_are_versioned_with_a_bounded_history,
        }
    };
}
pub(crate) use every_suite;
