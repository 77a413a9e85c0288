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
        let blobs: Arc<dyn eddy_objects::BlobStore> =
            Arc::new(eddy_objects::DiskBlobs::open(dir).unwrap());
        let deliveries: Arc<dyn eddy_executor::DeliveryStore> =
            Arc::new(eddy_executor::SqlDeliveries::new(&bus, "node-a"));
        Stores::assemble(bus, blobs, deliveries.clone(), deliveries).await
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

conformance::every_suite!(suites);
