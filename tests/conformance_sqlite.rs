//! The storage conformance suites (`conformance/`) on SQLite and local disk, eddy's embedded
//! backend.

mod conformance;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use conformance::{Backend, Stores};

struct Sqlite;

#[async_trait(?Send)]
impl Backend for Sqlite {
    async fn open(&self, dir: &Path) -> Stores {
        let bus = eddy_bus::Bus::open(dir).await.unwrap();
        Stores {
            objects: eddy_objects::ObjectStore::open(bus.clone()).unwrap(),
            tables: eddy_tables::TableStore::open(bus.clone()).await.unwrap(),
            deliveries: Arc::new(eddy_executor::SqlDeliveries::new()),
            credentials: Arc::new(eddy_node::SqlCredentials),
            apps: Arc::new(eddy_node::SqlApps),
            bus,
        }
    }
}

/// One test per suite, each on fresh stores in a folder of its own.
macro_rules! suites {
    ($($module:ident :: $suite:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $suite() {
                let dir = tempfile::tempdir().unwrap();
                let stores = Sqlite.open(dir.path()).await;
                conformance::$module::$suite(stores).await;
            }
        )*
    };
}

suites!(
    journal::concurrent_writes_are_ordered_and_gap_free,
    journal::failed_writes_leave_no_events_and_no_gaps,
    journal::cursors_and_followers,
    deliveries::creation_is_idempotent,
    deliveries::concurrent_claimers_never_share_a_delivery,
    deliveries::a_key_runs_one_delivery_at_a_time_in_order,
    deliveries::leases_expire_and_a_node_reclaims_only_its_own,
    deliveries::settling_retries_dead_letters_and_redrives,
    deliveries::slots_are_one_limit_for_every_claimer,
    objects::listings_are_in_utf8_binary_order_across_pages,
    tables::keyset_pages_cover_every_row_once_in_key_order,
    node_state::credentials_are_found_until_they_expire,
    node_state::apps_are_versioned_with_a_bounded_history,
);
