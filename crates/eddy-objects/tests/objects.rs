//! Objects through the store's API: bytes, metadata and events commit together; bad requests
//! change nothing.

mod common;

use common::*;
use eddy_core::{EventKind, Lineage, ObjectChange};
use eddy_objects::*;
use md5::{Digest, Md5};

#[tokio::test]
async fn put_get_head_delete_with_one_event_each() {
    let f = fixture().await;
    f.store.create_bucket(&bucket("photos")).await.unwrap();
    let mut body: &[u8] = b"hello world";
    let opts = PutOptions {
        content_type: Some("text/plain".into()),
        user_meta: [("owner".to_string(), "ann".to_string())].into(),
        ..Default::default()
    };
    let meta = f
        .store
        .put_object(&bucket("photos"), &key("a/red flower.jpg"), &mut body, opts)
        .await
        .unwrap();
    assert_eq!(meta.etag, hex::encode(Md5::digest(b"hello world")));
    assert_eq!(meta.size, 11);
    assert_eq!(
        f.store
            .head_object(&bucket("photos"), &key("a/red flower.jpg"))
            .await
            .unwrap(),
        meta
    );
    assert_eq!(
        read_all(&f.store, "photos", "a/red flower.jpg", None).await,
        b"hello world"
    );

    let events = f.bus.read_after(0, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (e.kind, e.key.as_str(), e.seq),
        (
            EventKind::ObjectCreatedPut,
            "a/red flower.jpg",
            meta.sequencer
        )
    );
    assert_eq!(e.source.to_string(), "bucket/photos");
    let change: ObjectChange = e.object_change().unwrap();
    assert_eq!(
        (change.size, change.etag.as_str()),
        (11, meta.etag.as_str())
    );

    let removed = f
        .store
        .delete_object(&bucket("photos"), &key("a/red flower.jpg"), Lineage::root())
        .await
        .unwrap();
    let removed = removed.unwrap();
    assert_eq!(
        (removed.old.etag.as_str(), removed.seq),
        (meta.etag.as_str(), 2)
    );
    // Deleting what is not there succeeds (as in S3) and records nothing.
    assert!(
        f.store
            .delete_object(&bucket("photos"), &key("a/red flower.jpg"), Lineage::root())
            .await
            .unwrap()
            .is_none()
    );
    let kinds: Vec<_> = f
        .bus
        .read_after(0, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [EventKind::ObjectCreatedPut, EventKind::ObjectRemovedDelete]
    );
    let err = f
        .store
        .head_object(&bucket("photos"), &key("a/red flower.jpg"))
        .await
        .unwrap_err();
    assert!(matches!(err, ObjectError::NoSuchKey { .. }), "{err}");
}

#[tokio::test]
async fn sequencers_increase_per_key() {
    let f = fixture().await;
    f.store.create_bucket(&bucket("bkt")).await.unwrap();
    let first = put(&f.store, "bkt", "k", b"1").await;
    put(&f.store, "bkt", "other", b"x").await;
    let second = put(&f.store, "bkt", "k", b"2").await;
    assert!(second.sequencer > first.sequencer);
    assert_eq!(read_all(&f.store, "bkt", "k", None).await, b"2");
}

#[tokio::test]
async fn ranges_read_exact_bytes() {
    let f = fixture().await;
    f.store.create_bucket(&bucket("bkt")).await.unwrap();
    let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    put(&f.store, "bkt", "r", &data).await;
    let cases = [
        (ByteRange::FromTo(0, 0), &data[0..1]),
        (ByteRange::FromTo(100, 199), &data[100..200]),
        (ByteRange::FromTo(9_990, 20_000), &data[9_990..]),
        (ByteRange::From(5_000), &data[5_000..]),
        (ByteRange::Suffix(10), &data[9_990..]),
        (ByteRange::Suffix(50_000), &data[..]),
    ];
    for (range, expected) in cases {
        assert_eq!(
            read_all(&f.store, "bkt", "r", Some(range)).await,
            expected,
            "{range:?}"
        );
    }
    for bad in [
        ByteRange::FromTo(10_000, 10_001),
        ByteRange::From(20_000),
        ByteRange::Suffix(0),
        ByteRange::FromTo(5, 4),
    ] {
        let err = f
            .store
            .get_object(&bucket("bkt"), &key("r"), Some(bad))
            .await
            .err()
            .unwrap();
        assert!(
            matches!(err, ObjectError::InvalidRange { size: 10_000 }),
            "{bad:?}: {err}"
        );
    }
}

#[tokio::test]
async fn copies_share_the_blob_and_record_a_copy_event() {
    let f = fixture().await;
    for b in ["src", "dst"] {
        f.store.create_bucket(&bucket(b)).await.unwrap();
    }
    let original = put(&f.store, "src", "k", b"payload").await;
    let copy = f
        .store
        .copy_object(
            (&bucket("src"), &key("k")),
            (&bucket("dst"), &key("k2")),
            MetadataDirective::Copy,
            SourceConditions::default(),
            Lineage::root(),
        )
        .await
        .unwrap();
    assert_eq!(
        (copy.etag.as_str(), copy.sha256.as_str()),
        (original.etag.as_str(), original.sha256.as_str())
    );
    assert_eq!(read_all(&f.store, "dst", "k2", None).await, b"payload");
    let last = f.bus.read_after(1, 10).await.unwrap();
    assert_eq!(
        (last[0].kind, last[0].source.to_string()),
        (EventKind::ObjectCreatedCopy, "bucket/dst".into())
    );

    let err = f
        .store
        .copy_object(
            (&bucket("src"), &key("k")),
            (&bucket("src"), &key("k")),
            MetadataDirective::Copy,
            SourceConditions::default(),
            Lineage::root(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ObjectError::InvalidRequest(_)));
    let replaced = f
        .store
        .copy_object(
            (&bucket("src"), &key("k")),
            (&bucket("src"), &key("k")),
            MetadataDirective::Replace {
                content_type: Some("text/x".into()),
                user_meta: Default::default(),
                headers: Default::default(),
            },
            SourceConditions::default(),
            Lineage::root(),
        )
        .await
        .unwrap();
    assert_eq!(replaced.content_type.as_deref(), Some("text/x"));
    let err = f
        .store
        .copy_object(
            (&bucket("src"), &key("missing")),
            (&bucket("dst"), &key("x")),
            MetadataDirective::Copy,
            SourceConditions::default(),
            Lineage::root(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ObjectError::NoSuchKey { .. }));
    assert_eq!(f.bus.last_seq(), 3, "failed copies record no event");
}

#[tokio::test]
async fn bucket_rules() {
    let f = fixture().await;
    let b = bucket("photos");
    f.store.create_bucket(&b).await.unwrap();
    assert!(matches!(
        f.store.create_bucket(&b).await,
        Err(ObjectError::BucketAlreadyExists(_))
    ));
    put(&f.store, "photos", "k", b"x").await;
    assert!(matches!(
        f.store.delete_bucket(&b).await,
        Err(ObjectError::BucketNotEmpty(_))
    ));
    f.store
        .delete_object(&b, &key("k"), Lineage::root())
        .await
        .unwrap();
    f.store
        .create_multipart_upload(&b, &key("m"), PutOptions::default(), None)
        .await
        .unwrap();
    f.store.delete_bucket(&b).await.unwrap();
    assert!(!f.store.bucket_exists(&b).await.unwrap());
    assert!(f.store.list_multipart_uploads(&b).await.is_err());
    assert!(matches!(
        f.store.delete_bucket(&b).await,
        Err(ObjectError::NoSuchBucket(_))
    ));
    let names: Vec<_> = f
        .store
        .list_buckets()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name.to_string())
        .collect();
    assert!(names.is_empty());
}

/// Everything in the data directory that is not the database, its lock, or a blob.
fn stray_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut stray = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .to_string();
            if path.is_dir() {
                stack.push(path);
            } else if !(rel.starts_with("blobs/")
                || rel.starts_with("eddy.")
                || rel == eddy_bus::BALLAST_FILE)
            {
                stray.push(path);
            }
        }
    }
    stray
}

#[tokio::test]
async fn refused_uploads_change_nothing() {
    let f = fixture().await;
    f.store.create_bucket(&bucket("bkt")).await.unwrap();
    let mut body: &[u8] = b"some bytes";
    let bad_md5 = PutOptions {
        content_md5: Some([0; 16]),
        ..Default::default()
    };
    let err = f
        .store
        .put_object(&bucket("bkt"), &key("k"), &mut body, bad_md5)
        .await
        .unwrap_err();
    assert!(matches!(err, ObjectError::BadDigest), "{err}");

    let mut body: &[u8] = &[7u8; 5000];
    let small = PutOptions {
        max_size: Some(4096),
        ..Default::default()
    };
    let err = f
        .store
        .put_object(&bucket("bkt"), &key("k"), &mut body, small)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ObjectError::TooLarge { limit: 4096 }),
        "{err}"
    );

    let mut body: &[u8] = b"x";
    let err = f
        .store
        .put_object(&bucket("nope"), &key("k"), &mut body, PutOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, ObjectError::NoSuchBucket(_)), "{err}");

    let good_md5 = PutOptions {
        content_md5: Some(Md5::digest(b"ok").into()),
        ..Default::default()
    };
    let mut body: &[u8] = b"ok";
    f.store
        .put_object(&bucket("bkt"), &key("ok"), &mut body, good_md5)
        .await
        .unwrap();

    assert_eq!(f.bus.last_seq(), 1, "only the good upload has an event");
    assert!(
        stray_files(f.dir.path()).is_empty(),
        "{:?}",
        stray_files(f.dir.path())
    );
    assert_eq!(
        f.store
            .collect_garbage(std::time::Duration::ZERO)
            .await
            .unwrap(),
        GcReport::default()
    );
}

#[tokio::test]
async fn hostile_keys_are_plain_keys() {
    let f = fixture().await;
    f.store.create_bucket(&bucket("bkt")).await.unwrap();
    let long = "k".repeat(1024);
    let hostile = [
        "../../etc/passwd",
        "/etc/passwd",
        "..",
        "a/../../b",
        "x'; DROP TABLE _eddy_objects; --",
        "%2e%2e/",
        long.as_str(),
    ];
    for (i, k) in hostile.iter().enumerate() {
        put(&f.store, "bkt", k, format!("body {i}").as_bytes()).await;
    }
    for (i, k) in hostile.iter().enumerate() {
        assert_eq!(
            read_all(&f.store, "bkt", k, None).await,
            format!("body {i}").as_bytes()
        );
    }
    assert!(
        stray_files(f.dir.path()).is_empty(),
        "{:?}",
        stray_files(f.dir.path())
    );
    let parent = f.dir.path().parent().unwrap();
    assert!(!parent.join("etc").exists() && !parent.join("b").exists());
}

fn completed(part_number: u32, etag: &str) -> CompletedPart {
    CompletedPart {
        part_number,
        etag: etag.to_string(),
        checksum: None,
    }
}

#[tokio::test]
async fn multipart_uploads_join_parts() {
    let f = fixture().await;
    let b = bucket("big");
    let k = key("video.bin");
    f.store.create_bucket(&b).await.unwrap();
    let opts = PutOptions {
        content_type: Some("video/mp4".into()),
        ..Default::default()
    };
    let id = f
        .store
        .create_multipart_upload(&b, &k, opts, None)
        .await
        .unwrap();
    let part = |n: u8, len: usize| vec![n; len];
    let sizes = [MIN_PART_BYTES as usize, MIN_PART_BYTES as usize, 1234];
    let mut etags = Vec::new();
    for (i, len) in sizes.iter().enumerate() {
        let data = part(i as u8 + 1, *len);
        let mut r: &[u8] = &data;
        etags.push(
            f.store
                .upload_part((&b, &k, &id), i as u32 + 1, &mut r, None, None)
                .await
                .unwrap()
                .etag,
        );
    }
    let listed = f.store.list_parts(&b, &k, &id).await.unwrap();
    assert_eq!(
        listed.iter().map(|p| p.part_number).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(
        f.store.list_multipart_uploads(&b).await.unwrap()[0].upload_id,
        id
    );

    let numbered = |order: &[usize]| -> Vec<CompletedPart> {
        order
            .iter()
            .map(|&i| completed(i as u32 + 1, &format!("\"{}\"", etags[i])))
            .collect()
    };
    let err = f
        .store
        .complete_multipart_upload(&b, &k, &id, &numbered(&[1, 0, 2]), Lineage::root(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, ObjectError::InvalidPartOrder), "{err}");
    // A small part that is not the last is refused; uploading it again replaces it.
    let mut r: &[u8] = b"tiny";
    let tiny = f
        .store
        .upload_part((&b, &k, &id), 2, &mut r, None, None)
        .await
        .unwrap()
        .etag;
    let err = f
        .store
        .complete_multipart_upload(
            &b,
            &k,
            &id,
            &[
                completed(1, &etags[0]),
                completed(2, &tiny),
                completed(3, &etags[2]),
            ],
            Lineage::root(),
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ObjectError::EntityTooSmall {
                part: 2,
                size: 4,
                ..
            }
        ),
        "{err}"
    );
    let data = part(2, sizes[1]);
    let mut r: &[u8] = &data;
    assert_eq!(
        f.store
            .upload_part((&b, &k, &id), 2, &mut r, None, None)
            .await
            .unwrap()
            .etag,
        etags[1]
    );
    let err = f
        .store
        .complete_multipart_upload(&b, &k, &id, &[completed(1, "0000")], Lineage::root(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, ObjectError::InvalidPart(1)), "{err}");
    assert!(matches!(
        f.store
            .complete_multipart_upload(&b, &k, &id, &[], Lineage::root(), None)
            .await,
        Err(ObjectError::NoParts)
    ));
    assert_eq!(f.bus.last_seq(), 0, "refused completions record nothing");

    let meta = f
        .store
        .complete_multipart_upload(&b, &k, &id, &numbered(&[0, 1, 2]), Lineage::root(), None)
        .await
        .unwrap();
    let mut md5s = Md5::new();
    for e in &etags {
        md5s.update(hex::decode(e).unwrap());
    }
    assert_eq!(meta.etag, format!("{}-3", hex::encode(md5s.finalize())));
    assert_eq!(meta.size, sizes.iter().sum::<usize>() as u64);
    assert_eq!(meta.content_type.as_deref(), Some("video/mp4"));
    assert_eq!(meta.part_sizes, sizes.map(|s| s as u64));
    let all = read_all(&f.store, "big", "video.bin", None).await;
    let expected: Vec<u8> = sizes
        .iter()
        .enumerate()
        .flat_map(|(i, len)| part(i as u8 + 1, *len))
        .collect();
    assert!(all == expected, "joined bytes differ");
    // No checksum asked for: S3's default, a CRC64NVME of all the bytes, combined from the
    // parts' without reading them again.
    let mut whole = eddy_objects::Hasher::new(eddy_objects::ChecksumAlgorithm::Crc64Nvme);
    whole.update(&expected);
    assert_eq!(
        meta.checksum,
        Some(eddy_objects::ObjectChecksum::of_bytes(
            eddy_objects::ChecksumAlgorithm::Crc64Nvme,
            &whole.finish()
        ))
    );
    let events = f.bus.read_after(0, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0].kind,
        EventKind::ObjectCreatedCompleteMultipartUpload
    );
    assert!(matches!(
        f.store.list_parts(&b, &k, &id).await,
        Err(ObjectError::NoSuchUpload(_))
    ));

    // The parts' blobs are now garbage; the object's blob is not.
    let gc = f
        .store
        .collect_garbage(std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        gc.blobs_removed, 4,
        "three parts and the replaced tiny part"
    );
    assert_eq!(
        read_all(&f.store, "big", "video.bin", Some(ByteRange::Suffix(1234))).await,
        part(3, 1234)
    );

    let aborted = f
        .store
        .create_multipart_upload(&b, &k, PutOptions::default(), None)
        .await
        .unwrap();
    let mut r: &[u8] = b"part";
    f.store
        .upload_part((&b, &k, &aborted), 1, &mut r, None, None)
        .await
        .unwrap();
    f.store
        .abort_multipart_upload(&b, &k, &aborted)
        .await
        .unwrap();
    assert!(matches!(
        f.store.abort_multipart_upload(&b, &k, &aborted).await,
        Err(ObjectError::NoSuchUpload(_))
    ));
    let mut r: &[u8] = b"part";
    assert!(matches!(
        f.store
            .upload_part((&b, &k, &id), 0, &mut r, None, None)
            .await,
        Err(ObjectError::InvalidPartNumber(0))
    ));
    assert_eq!(collected(&f.store, std::time::Duration::ZERO).await, 1);
}

#[tokio::test]
async fn garbage_collection_keeps_shared_blobs() {
    let f = blob_fixture().await;
    f.store.create_bucket(&bucket("bkt")).await.unwrap();
    let a = put(&f.store, "bkt", "a", b"same").await;
    put(&f.store, "bkt", "b", b"same").await;
    put(&f.store, "bkt", "c", b"other").await;
    f.store
        .delete_object(&bucket("bkt"), &key("a"), Lineage::root())
        .await
        .unwrap();
    f.store
        .delete_object(&bucket("bkt"), &key("c"), Lineage::root())
        .await
        .unwrap();
    let gc = f
        .store
        .collect_garbage(std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        gc,
        GcReport {
            blobs_removed: 1,
            bytes_removed: 5
        }
    );
    assert_eq!(
        f.store.stored_bytes(&a).await.unwrap(),
        b"same",
        "still used by b"
    );
    assert_eq!(read_all(&f.store, "bkt", "b", None).await, b"same");
}

/// Collection spares a blob written within its grace period: bytes just written may be about
/// to be referenced by an upload that has not committed yet.
#[tokio::test]
async fn garbage_collection_spares_blobs_written_within_its_grace() {
    let f = blob_fixture().await;
    f.store.create_bucket(&bucket("bkt")).await.unwrap();
    put(&f.store, "bkt", "a", b"gone soon").await;
    f.store
        .delete_object(&bucket("bkt"), &key("a"), Lineage::root())
        .await
        .unwrap();
    let hour = std::time::Duration::from_secs(3600);
    assert_eq!(collected(&f.store, hour).await, 0);
    assert_eq!(collected(&f.store, std::time::Duration::ZERO).await, 1);
}

/// A blob written again after a collection listed it is kept: the new write may be about to be
/// referenced.
#[tokio::test]
async fn a_blob_written_again_after_it_was_listed_is_kept() {
    use eddy_objects::{BlobLimits, BlobStore, DiskBlobs};
    let dir = tempfile::tempdir().unwrap();
    let blobs = DiskBlobs::open(dir.path()).unwrap();
    let limits = BlobLimits {
        max: 1 << 20,
        min: 0,
        md5: None,
        checksum: None,
    };
    let info = blobs.write(&mut &b"bytes"[..], &limits).await.unwrap();
    let listed = blobs.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    std::thread::sleep(std::time::Duration::from_millis(5));
    blobs.write(&mut &b"bytes"[..], &limits).await.unwrap();
    assert_eq!(blobs.remove(&listed[0]).await.unwrap(), None, "kept");
    assert!(blobs.read(&info.sha256, 0, 5).await.is_ok());
    let relisted = blobs.list().await.unwrap();
    assert_eq!(blobs.remove(&relisted[0]).await.unwrap(), Some(5));
}

/// If a collection removes an upload's blob between its write and its commit, the upload fails
/// with a retryable error and nothing points at the missing bytes.
#[tokio::test]
async fn an_upload_whose_blob_was_collected_stores_nothing() {
    use eddy_objects::{BlobInfo, BlobLimits, BlobReader, BlobStore, DiskBlobs, StoredBlob};

    /// Disk blobs whose writes are collected the moment they are placed.
    struct CollectedAtOnce(DiskBlobs);

    #[async_trait::async_trait]
    impl BlobStore for CollectedAtOnce {
        async fn write(
            &self,
            body: &mut (dyn tokio::io::AsyncRead + Send + Unpin),
            limits: &BlobLimits,
        ) -> Result<BlobInfo, ObjectError> {
            let info = self.0.write(body, limits).await?;
            for blob in self.0.list().await? {
                self.0.remove(&blob).await?;
            }
            Ok(info)
        }
        async fn concat(&self, parts: &[String]) -> Result<BlobInfo, ObjectError> {
            self.0.concat(parts).await
        }
        async fn still_there(&self, blob: &BlobInfo) -> Result<bool, ObjectError> {
            self.0.still_there(blob).await
        }
        async fn read(&self, blob: &str, start: u64, len: u64) -> Result<BlobReader, ObjectError> {
            self.0.read(blob, start, len).await
        }
        async fn list(&self) -> Result<Vec<StoredBlob>, ObjectError> {
            self.0.list().await
        }
        async fn remove(&self, blob: &StoredBlob) -> Result<Option<u64>, ObjectError> {
            self.0.remove(blob).await
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let bus = eddy_bus::Bus::open(dir.path()).await.unwrap();
    let blobs = CollectedAtOnce(DiskBlobs::open(dir.path()).unwrap());
    let store = ObjectStore::new(
        bus.clone(),
        std::sync::Arc::new(eddy_objects::SqlIndex),
        std::sync::Arc::new(blobs),
    )
    .with_inline_threshold(0);
    store.create_bucket(&bucket("bkt")).await.unwrap();
    let err = store
        .put_object(
            &bucket("bkt"),
            &key("k"),
            &mut &b"x"[..],
            PutOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ObjectError::BlobCollected), "{err}");
    assert_eq!(
        eddy_core::Classify::kind(&err),
        eddy_core::ErrorKind::Unavailable,
        "retryable"
    );
    assert!(matches!(
        store.head_object(&bucket("bkt"), &key("k")).await,
        Err(ObjectError::NoSuchKey { .. })
    ));
    assert_eq!(bus.last_seq(), 0, "no event");
}

/// The data directory and everything the store writes in it are eddy's user's alone, from the
/// moment they are created: no other user (no function of its own user) can read an object's
/// bytes or the metadata.
#[tokio::test]
async fn the_data_directory_is_private_from_the_start() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let bus = eddy_bus::Bus::open(&dir).await.unwrap();
    let store = eddy_objects::ObjectStore::open(bus.clone())
        .unwrap()
        .with_inline_threshold(0);
    store.create_bucket(&bucket("private")).await.unwrap();
    let meta = put(&store, "private", "a.txt", b"only eddy reads this").await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let sha = &meta.sha256;
    let blob = dir.join("blobs").join(&sha[..2]).join(&sha[2..4]).join(sha);
    for d in [
        dir.clone(),
        dir.join("blobs"),
        dir.join("tmp"),
        blob.parent().unwrap().to_path_buf(),
        blob.parent().unwrap().parent().unwrap().to_path_buf(),
    ] {
        assert_eq!(mode(&d), 0o700, "{}", d.display());
    }
    for f in ["eddy.db", "eddy.db-wal", "eddy.db-shm", "eddy.lock"] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    assert_eq!(mode(&blob), 0o600);
    drop((store, bus));
    // A directory made by an older eddy, open to all, is closed when it is opened again.
    let old = parent.path().join("old");
    std::fs::create_dir(&old).unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bus = eddy_bus::Bus::open(&old).await.unwrap();
    assert_eq!(mode(&old), 0o700);
    drop(bus);
}

/// Every blob file under a data directory.
fn blob_files(dir: &std::path::Path) -> usize {
    fn walk(p: &std::path::Path) -> usize {
        std::fs::read_dir(p).map_or(0, |entries| {
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => walk(&e.path()),
                    _ => 1,
                })
                .sum()
        })
    }
    walk(&dir.join("blobs"))
}

/// Small objects are kept with their metadata — no blob file, committed with their event —
/// and read, ranged, copied, replaced, checked and collected around like any other; up to the
/// threshold exactly, beyond it they are blobs.
#[tokio::test]
async fn small_objects_are_kept_inline() {
    let f = fixture().await;
    let b = bucket("bkt");
    f.store.create_bucket(&b).await.unwrap();
    let small = put(&f.store, "bkt", "small", b"hello inline").await;
    assert!(small.inline);
    assert_eq!(blob_files(f.dir.path()), 0, "no file for a small object");
    let range = Some(ByteRange::FromTo(1, 3));
    assert_eq!(read_all(&f.store, "bkt", "small", range).await, b"ell");
    assert_eq!(f.store.stored_bytes(&small).await.unwrap(), b"hello inline");
    let copy = f
        .store
        .copy_object(
            (&b, &key("small")),
            (&b, &key("copy")),
            MetadataDirective::Copy,
            SourceConditions::default(),
            Lineage::root(),
        )
        .await
        .unwrap();
    assert!(copy.inline && copy.etag == small.etag);
    assert_eq!(
        read_all(&f.store, "bkt", "copy", None).await,
        b"hello inline"
    );

    let at_threshold = vec![7u8; DEFAULT_INLINE_BYTES as usize];
    assert!(put(&f.store, "bkt", "edge", &at_threshold).await.inline);
    let beyond = vec![8u8; DEFAULT_INLINE_BYTES as usize + 1];
    let big = put(&f.store, "bkt", "small", &beyond).await;
    assert!(!big.inline);
    assert_eq!(blob_files(f.dir.path()), 1);
    assert_eq!(read_all(&f.store, "bkt", "small", None).await, beyond);
    // Small again: the blob is no longer referred to, and only it is collected.
    assert!(put(&f.store, "bkt", "small", b"small again").await.inline);
    assert_eq!(collected(&f.store, std::time::Duration::ZERO).await, 1);
    assert_eq!(blob_files(f.dir.path()), 0);
    assert_eq!(
        read_all(&f.store, "bkt", "small", None).await,
        b"small again"
    );
    assert_eq!(
        read_all(&f.store, "bkt", "copy", None).await,
        b"hello inline"
    );

    // Refusals hold inline as they do for blobs: nothing stored, no event.
    let before = f.bus.last_seq();
    let wrong_md5 = PutOptions {
        content_md5: Some([0; 16]),
        ..Default::default()
    };
    let refused = f
        .store
        .put_object(&b, &key("bad"), &mut &b"x"[..], wrong_md5)
        .await;
    assert!(
        matches!(refused, Err(ObjectError::BadDigest)),
        "{refused:?}"
    );
    let capped = PutOptions {
        max_size: Some(3),
        ..Default::default()
    };
    let refused = f
        .store
        .put_object(&b, &key("bad"), &mut &b"four"[..], capped)
        .await;
    assert!(
        matches!(refused, Err(ObjectError::TooLarge { limit: 3 })),
        "{refused:?}"
    );
    assert_eq!(f.bus.last_seq(), before);
    assert!(f.store.head_object(&b, &key("bad")).await.is_err());
}
