//! Blob stores: bytes come back as they went in, whole or in ranges, under the SHA-256 that
//! names them; identical bytes are one blob; joined parts are the parts one after another;
//! a large blob streams in and out; listing finds every blob and removal takes it away; an
//! object store's garbage collection removes exactly what nothing refers to.

use eddy_core::{BucketName, Lineage, ObjectKey};
use eddy_objects::{BlobLimits, PutOptions};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::Stores;

const LIMITS: BlobLimits = BlobLimits {
    max: 1 << 30,
    min: 0,
    md5: None,
    checksum: None,
};

async fn read(stores: &Stores, id: &str, start: u64, len: u64) -> Vec<u8> {
    let mut bytes = Vec::new();
    stores
        .blobs
        .read(id, start, len)
        .await
        .unwrap()
        .read_to_end(&mut bytes)
        .await
        .unwrap();
    bytes
}

/// `n` bytes that differ from any other call's (a counter mixed into a pattern).
fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

pub async fn blobs_round_trip_whole_and_in_ranges(stores: Stores) {
    let body = bytes(300_000, 1);
    let info = stores.blobs.write(&mut &body[..], &LIMITS).await.unwrap();
    assert_eq!(info.sha256, hex::encode(Sha256::digest(&body)));
    assert_eq!(info.size, body.len() as u64);
    assert!(stores.blobs.still_there(&info).await.unwrap());
    assert!(read(&stores, &info.sha256, 0, info.size).await == body);
    assert!(read(&stores, &info.sha256, 1000, 10).await == body[1000..1010]);
    assert!(read(&stores, &info.sha256, 299_999, 1).await == body[299_999..]);
    assert!(read(&stores, &info.sha256, 5, 0).await.is_empty());

    // The same bytes again are the same blob.
    let again = stores.blobs.write(&mut &body[..], &LIMITS).await.unwrap();
    assert_eq!(again.sha256, info.sha256);
    assert!(stores.blobs.still_there(&again).await.unwrap());

    let listed = stores.blobs.list().await.unwrap();
    let found = listed.iter().find(|b| b.id == info.sha256).expect("listed");
    let age = std::time::SystemTime::now()
        .duration_since(found.written)
        .unwrap_or_default();
    assert!(age < std::time::Duration::from_secs(60), "written just now");
    stores.blobs.remove(found).await.unwrap();
    assert!(!stores.blobs.still_there(&again).await.unwrap() || again.created);
    assert!(stores.blobs.read(&info.sha256, 0, 1).await.is_err(), "gone");
}

pub async fn a_blob_is_checksummed_and_a_wrong_checksum_leaves_nothing(stores: Stores) {
    use eddy_objects::{ChecksumAlgorithm, ChecksumRequest, ExpectedChecksum, ObjectError};
    let body = bytes(100_000, 9);
    let asking = |expected: Option<&str>| BlobLimits {
        checksum: Some(ChecksumRequest {
            algorithm: ChecksumAlgorithm::Crc32c,
            expected: expected.map(|v| ExpectedChecksum::Sent(v.to_string())),
        }),
        ..LIMITS
    };
    let info = stores
        .blobs
        .write(&mut &body[..], &asking(None))
        .await
        .unwrap();
    let sum = info.checksum.expect("computed as the bytes went in");
    assert_eq!(sum.algorithm, ChecksumAlgorithm::Crc32c);
    // What the client would have sent for these bytes passes.
    let other = bytes(100_000, 10);
    let sent = {
        let mut hasher = eddy_objects::Hasher::new(ChecksumAlgorithm::Crc32c);
        hasher.update(&other);
        eddy_objects::ObjectChecksum::of_bytes(ChecksumAlgorithm::Crc32c, &hasher.finish()).value
    };
    let right = stores
        .blobs
        .write(&mut &other[..], &asking(Some(&sent)))
        .await
        .unwrap();
    assert_eq!(right.checksum.unwrap().value, sent);
    // Another body under that value is refused and leaves no blob.
    let wrong = bytes(100_000, 11);
    let before = stores.blobs.list().await.unwrap().len();
    let refused = stores
        .blobs
        .write(&mut &wrong[..], &asking(Some(&sent)))
        .await;
    assert!(
        matches!(
            refused,
            Err(ObjectError::ChecksumMismatch(ChecksumAlgorithm::Crc32c))
        ),
        "{refused:?}"
    );
    assert_eq!(stores.blobs.list().await.unwrap().len(), before);
}

pub async fn joined_and_large_blobs_stream_through(stores: Stores) {
    let (a, b) = (bytes(5 << 20, 2), bytes(3 << 20, 3));
    let first = stores.blobs.write(&mut &a[..], &LIMITS).await.unwrap();
    let second = stores.blobs.write(&mut &b[..], &LIMITS).await.unwrap();
    let joined = stores
        .blobs
        .concat(&[first.sha256.clone(), second.sha256.clone()])
        .await
        .unwrap();
    let whole: Vec<u8> = a.iter().chain(b.iter()).copied().collect();
    assert_eq!(joined.sha256, hex::encode(Sha256::digest(&whole)));
    assert!(read(&stores, &joined.sha256, 0, joined.size).await == whole);

    // Larger than one put: in parts on a store that takes parts.
    let large = bytes(70 << 20, 4);
    let info = stores.blobs.write(&mut &large[..], &LIMITS).await.unwrap();
    assert_eq!(info.size, large.len() as u64);
    let back = read(&stores, &info.sha256, 0, info.size).await;
    assert!(back == large, "70 MiB came back as they went");
    assert!(read(&stores, &info.sha256, (69 << 20) + 7, 3).await == large[(69 << 20) + 7..][..3]);
}

pub async fn garbage_collection_removes_only_what_nothing_refers_to(stores: Stores) {
    // Every object in a blob, however small: collection is about blobs.
    let objects = &stores.objects.clone().with_inline_threshold(0);
    let bucket = BucketName::new("collected").unwrap();
    objects.create_bucket(&bucket).await.unwrap();
    let put = |key: &'static str, body: Vec<u8>| async move {
        objects
            .put_object(
                &BucketName::new("collected").unwrap(),
                &ObjectKey::new(key).unwrap(),
                &mut &body[..],
                PutOptions::default(),
            )
            .await
            .unwrap()
    };
    let kept = put("kept", bytes(1000, 5)).await;
    let shared = put("shared-1", bytes(1000, 6)).await;
    put("shared-2", bytes(1000, 6)).await;
    let doomed = put("doomed", bytes(1000, 7)).await;
    for key in ["doomed", "shared-1"] {
        objects
            .delete_object(&bucket, &ObjectKey::new(key).unwrap(), Lineage::root())
            .await
            .unwrap();
    }
    let hour = std::time::Duration::from_secs(3600);
    assert_eq!(
        objects.collect_garbage(hour).await.unwrap().blobs_removed,
        0,
        "grace"
    );
    let report = objects
        .collect_garbage(std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(report.blobs_removed, 1);
    assert!(stores.blobs.read(&doomed.sha256, 0, 1).await.is_err());
    for meta in [&kept, &shared] {
        assert_eq!(objects.stored_bytes(meta).await.unwrap().len(), 1000);
    }
}
