//! Shared set-up for the object store's tests.
#![allow(dead_code)]

use eddy_bus::Bus;
use eddy_core::{BucketName, ObjectKey};
use eddy_objects::{ObjectStore, PutOptions};

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub bus: Bus,
    pub store: ObjectStore,
}

pub async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let bus = Bus::open(dir.path()).await.unwrap();
    let store = ObjectStore::open(bus.clone()).unwrap();
    Fixture { dir, bus, store }
}

/// A store that keeps every object in a blob, however small (for tests of blobs).
pub async fn blob_fixture() -> Fixture {
    let f = fixture().await;
    Fixture {
        store: f.store.with_inline_threshold(0),
        ..f
    }
}

pub fn bucket(name: &str) -> BucketName {
    BucketName::new(name).unwrap()
}

pub fn key(k: &str) -> ObjectKey {
    ObjectKey::new(k).unwrap()
}

pub async fn put(store: &ObjectStore, b: &str, k: &str, body: &[u8]) -> eddy_objects::ObjectMeta {
    let mut reader = body;
    store
        .put_object(&bucket(b), &key(k), &mut reader, PutOptions::default())
        .await
        .unwrap()
}

pub async fn read_all(
    store: &ObjectStore,
    b: &str,
    k: &str,
    range: Option<eddy_objects::ByteRange>,
) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let body = store.get_object(&bucket(b), &key(k), range).await.unwrap();
    let mut out = Vec::new();
    body.into_reader().read_to_end(&mut out).await.unwrap();
    out
}

/// How many blobs a garbage collection with this grace period removes.
pub async fn collected(store: &ObjectStore, grace: std::time::Duration) -> u64 {
    store.collect_garbage(grace).await.unwrap().blobs_removed
}
