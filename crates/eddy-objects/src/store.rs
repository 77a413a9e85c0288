//! The object store's operations. Every change commits its metadata and its event in one
//! writer transaction; bytes reach their blob durably before that transaction starts.

use std::sync::Arc;

use eddy_bus::{Bus, WriteTx};
use eddy_core::{BucketName, EventKind, Lineage, NewEvent, ObjectChange, ObjectKey, Source};
use sqlx::Row;
use tokio::io::{AsyncRead, AsyncSeekExt};
use tokio::sync::RwLock;

use crate::blobs::BlobStore;
use crate::model::*;
use crate::{ObjectError, rows};

/// Buckets and objects of one data directory.
#[derive(Clone)]
pub struct ObjectStore {
    pub(crate) bus: Bus,
    pub(crate) blobs: Arc<BlobStore>,
    /// Held for reading by every change that makes metadata point at a blob, from before the
    /// blob is placed until the metadata commits; held for writing by garbage collection. So a
    /// blob that is about to be referenced is never collected.
    pub(crate) blob_refs: Arc<RwLock<()>>,
}

/// An object's bytes, or a range of them, ready to stream.
pub struct ObjectBody {
    pub meta: ObjectMeta,
    /// The first byte served (inclusive) and the end (exclusive).
    pub range: (u64, u64),
    file: tokio::fs::File,
}

impl ObjectBody {
    /// The number of bytes this body yields.
    pub fn len(&self) -> u64 {
        self.range.1 - self.range.0
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A reader of exactly the selected bytes.
    pub fn into_reader(self) -> impl AsyncRead + Send + Sync + Unpin {
        use tokio::io::AsyncReadExt;
        let len = self.len();
        self.file.take(len)
    }
}

impl ObjectStore {
    /// Opens the object store of the data directory that `bus` has open.
    pub fn open(bus: Bus) -> Result<Self, ObjectError> {
        let blobs = BlobStore::open(bus.data_dir())?;
        Ok(Self {
            bus,
            blobs: Arc::new(blobs),
            blob_refs: Arc::new(RwLock::new(())),
        })
    }

    pub async fn create_bucket(&self, name: &BucketName) -> Result<(), ObjectError> {
        let name = name.clone();
        self.bus
            .write(move |tx| {
                let name = name.clone();
                Box::pin(async move {
                    let inserted = sqlx::query(
                        "INSERT INTO _eddy_buckets (name, created_ms) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    )
                    .bind(name.as_str())
                    .bind(eddy_bus::now_ms())
                    .execute(tx.conn())
                    .await?;
                    if inserted.rows_affected() == 0 {
                        return Err(ObjectError::BucketAlreadyExists(name.to_string()));
                    }
                    Ok(())
                })
            })
            .await
    }

    /// Deletes an empty bucket; unfinished multipart uploads in it are aborted.
    pub async fn delete_bucket(&self, name: &BucketName) -> Result<(), ObjectError> {
        let name = name.clone();
        self.bus
            .write(move |tx| {
                let name = name.clone();
                Box::pin(async move {
                    rows::require_bucket(tx.conn(), &name).await?;
                    let has_objects: bool = sqlx::query_scalar(
                        "SELECT EXISTS (SELECT 1 FROM _eddy_objects WHERE bucket = ?)",
                    )
                    .bind(name.as_str())
                    .fetch_one(tx.conn())
                    .await?;
                    if has_objects {
                        return Err(ObjectError::BucketNotEmpty(name.to_string()));
                    }
                    for sql in [
                        "DELETE FROM _eddy_uploads WHERE bucket = ?",
                        "DELETE FROM _eddy_buckets WHERE name = ?",
                    ] {
                        sqlx::query(sql)
                            .bind(name.as_str())
                            .execute(tx.conn())
                            .await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    /// Replaces a bucket's CORS configuration.
    pub async fn put_bucket_cors(
        &self,
        bucket: &BucketName,
        rules: &[CorsRule],
    ) -> Result<(), ObjectError> {
        if rules.is_empty() || rules.len() > MAX_CORS_RULES {
            return Err(ObjectError::InvalidRequest(format!(
                "a CORS configuration has 1 to {MAX_CORS_RULES} rules; got {}",
                rules.len()
            )));
        }
        let (bucket, json) = (
            bucket.clone(),
            serde_json::to_string(rules).expect("rules serialize"),
        );
        self.bus
            .write(move |tx| {
                let (bucket, json) = (bucket.clone(), json.clone());
                Box::pin(async move {
                    rows::require_bucket(tx.conn(), &bucket).await?;
                    sqlx::query(
                        "INSERT INTO _eddy_bucket_cors (bucket, rules) VALUES (?, ?)
                         ON CONFLICT (bucket) DO UPDATE SET rules = excluded.rules",
                    )
                    .bind(bucket.as_str())
                    .bind(json)
                    .execute(tx.conn())
                    .await?;
                    Ok(())
                })
            })
            .await
    }

    /// A bucket's CORS rules; `None` when it has no configuration.
    pub async fn bucket_cors(
        &self,
        bucket: &BucketName,
    ) -> Result<Option<Vec<CorsRule>>, ObjectError> {
        rows::require_bucket(self.bus.readers(), bucket).await?;
        let json: Option<String> =
            sqlx::query_scalar("SELECT rules FROM _eddy_bucket_cors WHERE bucket = ?")
                .bind(bucket.as_str())
                .fetch_optional(self.bus.readers())
                .await?;
        json.map(|j| {
            serde_json::from_str(&j).map_err(|e| {
                ObjectError::InvalidRequest(format!("the stored CORS rules cannot be read: {e}"))
            })
        })
        .transpose()
    }

    /// Removes a bucket's CORS configuration (browsers on other origins are refused again).
    pub async fn delete_bucket_cors(&self, bucket: &BucketName) -> Result<(), ObjectError> {
        let bucket = bucket.clone();
        self.bus
            .write(move |tx| {
                let bucket = bucket.clone();
                Box::pin(async move {
                    rows::require_bucket(tx.conn(), &bucket).await?;
                    sqlx::query("DELETE FROM _eddy_bucket_cors WHERE bucket = ?")
                        .bind(bucket.as_str())
                        .execute(tx.conn())
                        .await?;
                    Ok(())
                })
            })
            .await
    }

    pub async fn bucket_exists(&self, name: &BucketName) -> Result<bool, ObjectError> {
        rows::bucket_exists(self.bus.readers(), name).await
    }

    pub async fn list_buckets(&self) -> Result<Vec<BucketInfo>, ObjectError> {
        let rows = sqlx::query("SELECT name, created_ms FROM _eddy_buckets ORDER BY name")
            .fetch_all(self.bus.readers())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(BucketInfo {
                    name: BucketName::new(r.try_get::<String, _>("name")?)?,
                    created_ms: r.try_get("created_ms")?,
                })
            })
            .collect()
    }

    /// Streams `body` into a new version of `bucket/key` and commits it with its
    /// `ObjectCreated:Put` event. Memory stays bounded whatever the body's size.
    pub async fn put_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        body: &mut (dyn AsyncRead + Send + Unpin),
        opts: PutOptions,
    ) -> Result<ObjectMeta, ObjectError> {
        // Fail before reading a possibly large body.
        rows::require_bucket(self.bus.readers(), bucket).await?;
        let limit = opts.max_size.unwrap_or(MAX_PUT_BYTES);
        let staged = self.blobs.stage(body, limit, opts.content_md5).await?;
        if let Some(min) = opts.min_size.filter(|min| staged.info.size < *min) {
            return Err(ObjectError::TooSmall {
                size: staged.info.size,
                min,
            });
        }
        let _refs = self.blob_refs.read().await;
        let blob = self.blobs.place(staged).await?;
        let meta = draft(
            bucket,
            key,
            blob.size,
            hex::encode(blob.md5),
            blob.sha256,
            opts.content_type,
            opts.user_meta,
        );
        self.commit_version(meta, EventKind::ObjectCreatedPut, opts.lineage)
            .await
    }

    /// Commits `meta` as the new version of its key, with an event of `kind`.
    pub(crate) async fn commit_version(
        &self,
        meta: ObjectMeta,
        kind: EventKind,
        lineage: Lineage,
    ) -> Result<ObjectMeta, ObjectError> {
        self.bus
            .write(move |tx| {
                let (meta, lineage) = (meta.clone(), lineage.clone());
                Box::pin(async move {
                    rows::require_bucket(tx.conn(), &meta.bucket).await?;
                    commit_in(tx, meta, kind, lineage).await
                })
            })
            .await
    }

    pub async fn head_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<ObjectMeta, ObjectError> {
        match rows::get(self.bus.readers(), bucket, key).await? {
            Some(meta) => Ok(meta),
            None => Err(self.missing(bucket, key).await),
        }
    }

    /// The NoSuchBucket or NoSuchKey error for a key that was not found.
    async fn missing(&self, bucket: &BucketName, key: &ObjectKey) -> ObjectError {
        match rows::require_bucket(self.bus.readers(), bucket).await {
            Err(e) => e,
            Ok(()) => ObjectError::NoSuchKey {
                bucket: bucket.to_string(),
                key: key.to_string(),
            },
        }
    }

    /// Opens an object (or a byte range of it) for reading.
    pub async fn get_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        range: Option<ByteRange>,
    ) -> Result<ObjectBody, ObjectError> {
        let meta = self.head_object(bucket, key).await?;
        let (start, end) = match range {
            None => (0, meta.size),
            Some(r) => r
                .resolve(meta.size)
                .ok_or(ObjectError::InvalidRange { size: meta.size })?,
        };
        let path = self.blobs.path(&meta.sha256);
        // An open file keeps its bytes even if garbage collection unlinks the blob meanwhile.
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| ObjectError::io(&path, e))?;
        if start > 0 {
            file.seek(std::io::SeekFrom::Start(start))
                .await
                .map_err(|e| ObjectError::io(&path, e))?;
        }
        Ok(ObjectBody {
            meta,
            range: (start, end),
            file,
        })
    }

    /// Deletes a key, committing an `ObjectRemoved:Delete` event. Deleting a missing key is not
    /// an error (as in S3) and records no event; it returns `None`.
    pub async fn delete_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        lineage: Lineage,
    ) -> Result<Option<Removed>, ObjectError> {
        let (bucket, key) = (bucket.clone(), key.clone());
        self.bus
            .write(move |tx| {
                let (bucket, key, lineage) = (bucket.clone(), key.clone(), lineage.clone());
                Box::pin(async move {
                    rows::require_bucket(tx.conn(), &bucket).await?;
                    let Some(old) = rows::get(tx.conn(), &bucket, &key).await? else {
                        return Ok(None);
                    };
                    sqlx::query("DELETE FROM _eddy_objects WHERE bucket = ? AND key = ?")
                        .bind(bucket.as_str())
                        .bind(key.as_str())
                        .execute(tx.conn())
                        .await?;
                    let event = tx
                        .append(object_event(&old, EventKind::ObjectRemovedDelete, lineage))
                        .await?;
                    Ok(Some(Removed {
                        old,
                        seq: event.seq,
                    }))
                })
            })
            .await
    }

    /// Copies an object (sharing its blob) and commits an `ObjectCreated:Copy` event.
    pub async fn copy_object(
        &self,
        src: (&BucketName, &ObjectKey),
        dst: (&BucketName, &ObjectKey),
        directive: MetadataDirective,
        lineage: Lineage,
    ) -> Result<ObjectMeta, ObjectError> {
        if src == dst && matches!(directive, MetadataDirective::Copy) {
            return Err(ObjectError::InvalidRequest(
                "copying an object onto itself must change its metadata (use the REPLACE directive)".into(),
            ));
        }
        let (src_bucket, src_key) = (src.0.clone(), src.1.clone());
        let (dst_bucket, dst_key) = (dst.0.clone(), dst.1.clone());
        let _refs = self.blob_refs.read().await;
        self.bus
            .write(move |tx| {
                let (src_bucket, src_key, dst_bucket, dst_key, directive, lineage) = (
                    src_bucket.clone(),
                    src_key.clone(),
                    dst_bucket.clone(),
                    dst_key.clone(),
                    directive.clone(),
                    lineage.clone(),
                );
                Box::pin(async move {
                    rows::require_bucket(tx.conn(), &src_bucket).await?;
                    rows::require_bucket(tx.conn(), &dst_bucket).await?;
                    let source = rows::get_or_missing(tx.conn(), &src_bucket, &src_key).await?;
                    let (content_type, user_meta) = match directive {
                        MetadataDirective::Copy => (source.content_type, source.user_meta),
                        MetadataDirective::Replace {
                            content_type,
                            user_meta,
                        } => (content_type, user_meta),
                    };
                    let meta = draft(
                        &dst_bucket,
                        &dst_key,
                        source.size,
                        source.etag,
                        source.sha256,
                        content_type,
                        user_meta,
                    );
                    commit_in(tx, meta, EventKind::ObjectCreatedCopy, lineage).await
                })
            })
            .await
    }

    /// Removes blobs that no object and no multipart part refers to.
    pub async fn collect_garbage(&self) -> Result<GcReport, ObjectError> {
        let _exclusive = self.blob_refs.write().await;
        let referenced: std::collections::HashSet<String> = sqlx::query_scalar(
            "SELECT sha256 FROM _eddy_objects UNION SELECT sha256 FROM _eddy_upload_parts",
        )
        .fetch_all(self.bus.readers())
        .await?
        .into_iter()
        .collect();
        let blobs = self.blobs.clone();
        tokio::task::spawn_blocking(move || {
            let mut report = GcReport::default();
            for blob in blobs.list()? {
                if !referenced.contains(&blob) {
                    report.bytes_removed += blobs.remove(&blob)?;
                    report.blobs_removed += 1;
                }
            }
            Ok(report)
        })
        .await
        .expect("garbage collection task panicked")
    }

    /// The path of an object's blob, for tests and tools that check the store from outside.
    pub fn blob_path(&self, meta: &ObjectMeta) -> std::path::PathBuf {
        self.blobs.path(&meta.sha256)
    }
}

/// Metadata for a new version; the commit fills in time and sequencer.
pub(crate) fn draft(
    bucket: &BucketName,
    key: &ObjectKey,
    size: u64,
    etag: String,
    sha256: String,
    content_type: Option<String>,
    user_meta: std::collections::BTreeMap<String, String>,
) -> ObjectMeta {
    ObjectMeta {
        bucket: bucket.clone(),
        key: key.clone(),
        size,
        etag,
        sha256,
        content_type,
        user_meta,
        last_modified_ms: 0,
        sequencer: 0,
    }
}

/// Appends the version's event and writes its metadata, in the caller's transaction.
pub(crate) async fn commit_in(
    tx: &mut WriteTx,
    mut meta: ObjectMeta,
    kind: EventKind,
    lineage: Lineage,
) -> Result<ObjectMeta, ObjectError> {
    let event = tx.append(object_event(&meta, kind, lineage)).await?;
    meta.sequencer = event.seq;
    meta.last_modified_ms = event.time_ms;
    rows::upsert(tx.conn(), &meta).await?;
    Ok(meta)
}

fn object_event(meta: &ObjectMeta, kind: EventKind, lineage: Lineage) -> NewEvent {
    let change = ObjectChange {
        size: meta.size,
        etag: meta.etag.clone(),
        content_type: meta.content_type.clone(),
    };
    NewEvent {
        source: Source::Bucket(meta.bucket.clone()),
        kind,
        key: meta.key.to_string(),
        payload: serde_json::to_value(change).expect("object changes serialize"),
        lineage,
    }
}
