//! The object store's operations. Every change commits its metadata and its event in one
//! writer transaction; bytes reach their blob durably before that transaction starts.

use std::sync::Arc;

use eddy_bus::sql::Sql;
use eddy_bus::{Bus, WriteTx};
use eddy_core::{BucketName, EventKind, Lineage, NewEvent, ObjectChange, ObjectKey, Source};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::ObjectError;
use crate::blobs::{BlobInfo, BlobLimits, BlobReader, BlobStore, StoredBlob};
use crate::checksum::ChecksumRequest;
use crate::index::ObjectIndex;
use crate::model::*;

/// Buckets and objects: their metadata in the platform database, their bytes in a blob store.
#[derive(Clone)]
pub struct ObjectStore {
    pub(crate) bus: Bus,
    pub(crate) index: Arc<dyn ObjectIndex>,
    pub(crate) blobs: Arc<dyn BlobStore>,
    /// Objects up to this many bytes are kept with their metadata rather than in blobs.
    inline_up_to: u64,
}

/// The largest object kept inline unless configured otherwise (see docs/performance.md for
/// how it was chosen).
pub const DEFAULT_INLINE_BYTES: u64 = 64 * 1024;

/// The bytes of a new version: a blob just written, or bytes kept with the metadata.
pub(crate) enum NewBytes {
    Blob(BlobInfo),
    Inline(Vec<u8>),
}

/// An object's bytes, or a range of them, ready to stream.
pub struct ObjectBody {
    pub meta: ObjectMeta,
    /// The first byte served (inclusive) and the end (exclusive).
    pub range: (u64, u64),
    reader: BlobReader,
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
    pub fn into_reader(self) -> BlobReader {
        self.reader
    }
}

impl ObjectStore {
    /// Opens the object store of the data directory that `bus` has open: metadata in its
    /// database, blobs on its disk.
    pub fn open(bus: Bus) -> Result<Self, ObjectError> {
        let blobs = crate::disk::DiskBlobs::open(bus.data_dir())?;
        Ok(Self::new(
            bus,
            Arc::new(crate::sql::SqlIndex),
            Arc::new(blobs),
        ))
    }

    /// An object store over any index and blob store.
    pub fn new(bus: Bus, index: Arc<dyn ObjectIndex>, blobs: Arc<dyn BlobStore>) -> Self {
        Self {
            bus,
            index,
            blobs,
            inline_up_to: DEFAULT_INLINE_BYTES,
        }
    }

    /// This store, keeping objects up to `bytes` inline (0: every object in a blob).
    pub fn with_inline_threshold(mut self, bytes: u64) -> Self {
        self.inline_up_to = bytes;
        self
    }

    pub async fn create_bucket(&self, name: &BucketName) -> Result<(), ObjectError> {
        self.bus.check_room()?;
        self.bus
            .write((self.index.clone(), name.clone()), |tx, (index, name)| {
                Box::pin(async move {
                    if !index.create_bucket(tx, name, eddy_bus::now_ms()).await? {
                        return Err(ObjectError::BucketAlreadyExists(name.to_string()));
                    }
                    Ok(())
                })
            })
            .await
    }

    /// Deletes an empty bucket; unfinished multipart uploads in it are aborted.
    pub async fn delete_bucket(&self, name: &BucketName) -> Result<(), ObjectError> {
        self.bus
            .write((self.index.clone(), name.clone()), |tx, (index, name)| {
                Box::pin(async move {
                    require_bucket(index.as_ref(), tx, name).await?;
                    if index.has_objects(tx, name).await? {
                        return Err(ObjectError::BucketNotEmpty(name.to_string()));
                    }
                    index.delete_bucket(tx, name).await
                })
            })
            .await
    }

    pub async fn bucket_exists(&self, name: &BucketName) -> Result<bool, ObjectError> {
        self.index
            .bucket_exists(&mut self.bus.readers(), name)
            .await
    }

    pub async fn list_buckets(&self) -> Result<Vec<BucketInfo>, ObjectError> {
        self.index.buckets(&mut self.bus.readers()).await
    }

    /// Replaces a bucket's CORS configuration.
    pub async fn put_bucket_cors(
        &self,
        bucket: &BucketName,
        rules: &[CorsRule],
    ) -> Result<(), ObjectError> {
        self.bus.check_room()?;
        if rules.is_empty() || rules.len() > MAX_CORS_RULES {
            return Err(ObjectError::InvalidRequest(format!(
                "a CORS configuration has 1 to {MAX_CORS_RULES} rules; got {}",
                rules.len()
            )));
        }
        let input = (self.index.clone(), bucket.clone(), rules.to_vec());
        self.bus
            .write(input, |tx, (index, bucket, rules)| {
                Box::pin(async move {
                    require_bucket(index.as_ref(), tx, bucket).await?;
                    index.put_cors(tx, bucket, rules).await
                })
            })
            .await
    }

    /// A bucket's CORS rules; `None` when it has no configuration.
    pub async fn bucket_cors(
        &self,
        bucket: &BucketName,
    ) -> Result<Option<Vec<CorsRule>>, ObjectError> {
        let mut db = self.bus.readers();
        require_bucket(self.index.as_ref(), &mut db, bucket).await?;
        self.index.cors(&mut db, bucket).await
    }

    /// Removes a bucket's CORS configuration (browsers on other origins are refused again).
    pub async fn delete_bucket_cors(&self, bucket: &BucketName) -> Result<(), ObjectError> {
        self.bus
            .write(
                (self.index.clone(), bucket.clone()),
                |tx, (index, bucket)| {
                    Box::pin(async move {
                        require_bucket(index.as_ref(), tx, bucket).await?;
                        index.delete_cors(tx, bucket).await
                    })
                },
            )
            .await
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
        // A condition fails before the body is read; a missing bucket, before a body larger
        // than the inline threshold is read on (a small one's write checks it, in the
        // transaction that commits it, so a small PUT reads nothing before its write).
        if let Some(condition) = &opts.condition {
            let mut db = self.bus.readers();
            require_bucket(self.index.as_ref(), &mut db, bucket).await?;
            check_condition(self.index.as_ref(), &mut db, bucket, key, condition).await?;
        }
        let limits = BlobLimits {
            max: opts.max_size.unwrap_or(MAX_PUT_BYTES),
            min: opts.min_size.unwrap_or(0),
            md5: opts.content_md5,
            checksum: Some(
                opts.checksum
                    .unwrap_or_else(ChecksumRequest::default_for_uploads),
            ),
        };
        // A body that ends within the threshold is kept inline: no file, no fsync of its own.
        let mut held = Vec::new();
        let limit = self.inline_up_to.min(limits.max);
        (&mut *body)
            .take(limit + 1)
            .read_to_end(&mut held)
            .await
            .map_err(ObjectError::Body)?;
        let (meta, bytes) = if self.inline_up_to > 0 && held.len() as u64 <= limit {
            self.bus.check_room()?;
            let described = (opts.content_type, opts.user_meta, opts.headers);
            let meta = inline_meta(bucket, key, &held, &limits, described)?;
            (meta, NewBytes::Inline(held))
        } else {
            if opts.condition.is_none() {
                require_bucket(self.index.as_ref(), &mut self.bus.readers(), bucket).await?;
            }
            let mut whole = std::io::Cursor::new(held).chain(body);
            let blob = self.new_blob(&mut whole, &limits).await?;
            let meta = ObjectMeta {
                checksum: blob.checksum.clone(),
                ..draft(
                    bucket,
                    key,
                    (blob.size, hex::encode(blob.md5), blob.sha256.clone()),
                    opts.content_type,
                    opts.user_meta,
                    opts.headers,
                )
            };
            (meta, NewBytes::Blob(blob))
        };
        self.commit_version(
            meta,
            bytes,
            EventKind::ObjectCreatedPut,
            opts.lineage,
            opts.condition,
        )
        .await
    }

    /// Commits `meta`, whose bytes are those just `written`, as the new version of its key,
    /// with an event of `kind`.
    pub(crate) async fn commit_version(
        &self,
        meta: ObjectMeta,
        written: NewBytes,
        kind: EventKind,
        lineage: Lineage,
        condition: Option<WriteCondition>,
    ) -> Result<ObjectMeta, ObjectError> {
        self.bus
            .write(
                (
                    self.index.clone(),
                    self.blobs.clone(),
                    meta,
                    written,
                    lineage,
                    condition,
                ),
                move |tx, (index, blobs, meta, written, lineage, condition)| {
                    Box::pin(async move {
                        require_bucket(index.as_ref(), tx, &meta.bucket).await?;
                        if let Some(condition) = condition {
                            check_condition(index.as_ref(), tx, &meta.bucket, &meta.key, condition)
                                .await
                                .map_err(raced)?;
                        }
                        let data = match written {
                            NewBytes::Blob(blob) => {
                                kept(blobs.as_ref(), blob).await?;
                                None
                            }
                            NewBytes::Inline(bytes) => Some(&bytes[..]),
                        };
                        let meta = meta.clone();
                        commit_in(index.as_ref(), tx, meta, data, kind, lineage.clone()).await
                    })
                },
            )
            .await
    }

    /// Writes `bytes` as a new version of `bucket/key`, kept inline, with its
    /// `ObjectCreated:Put` event, in the caller's transaction: for what eddy writes itself in
    /// a transaction of its own (a destination's record). `None` when the bucket does not
    /// exist, found before anything is written.
    pub async fn put_in(
        &self,
        tx: &mut WriteTx,
        bucket: &BucketName,
        key: &ObjectKey,
        bytes: &[u8],
        content_type: &str,
        lineage: Lineage,
    ) -> Result<Option<ObjectMeta>, ObjectError> {
        if !self.index.bucket_exists(tx, bucket).await? {
            return Ok(None);
        }
        let limits = BlobLimits {
            max: MAX_PUT_BYTES,
            min: 0,
            md5: None,
            checksum: Some(ChecksumRequest::default_for_uploads()),
        };
        let described = (
            Some(content_type.to_string()),
            Default::default(),
            Default::default(),
        );
        let meta = inline_meta(bucket, key, bytes, &limits, described)?;
        let kind = EventKind::ObjectCreatedPut;
        commit_in(self.index.as_ref(), tx, meta, Some(bytes), kind, lineage)
            .await
            .map(Some)
    }

    pub async fn head_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<ObjectMeta, ObjectError> {
        let mut db = self.bus.readers();
        match self.index.object(&mut db, bucket, key).await? {
            Some(meta) => Ok(meta),
            None => Err(missing(self.index.as_ref(), &mut db, bucket, key).await),
        }
    }

    /// Opens an object (or a byte range of it) for reading.
    pub async fn get_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        range: Option<ByteRange>,
    ) -> Result<ObjectBody, ObjectError> {
        let mut db = self.bus.readers();
        let Some((meta, data)) = self.index.object_with_data(&mut db, bucket, key).await? else {
            return Err(missing(self.index.as_ref(), &mut db, bucket, key).await);
        };
        let (start, end) = match range {
            None => (0, meta.size),
            Some(r) => r
                .resolve(meta.size)
                .ok_or(ObjectError::InvalidRange { size: meta.size })?,
        };
        let reader: BlobReader = match data {
            Some(mut bytes) => {
                bytes.truncate(end as usize);
                let mut held = std::io::Cursor::new(bytes);
                held.set_position(start);
                Box::new(held)
            }
            None => self.blobs.read(&meta.sha256, start, end - start).await?,
        };
        Ok(ObjectBody {
            meta,
            range: (start, end),
            reader,
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
        let input = (self.index.clone(), bucket.clone(), key.clone(), lineage);
        self.bus
            .write(input, |tx, (index, bucket, key, lineage)| {
                Box::pin(async move {
                    require_bucket(index.as_ref(), tx, bucket).await?;
                    let Some(old) = index.object(tx, bucket, key).await? else {
                        return Ok(None);
                    };
                    index.delete_object(tx, bucket, key).await?;
                    let event = tx
                        .append(object_event(
                            &old,
                            EventKind::ObjectRemovedDelete,
                            lineage.clone(),
                        ))
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
        source_conditions: SourceConditions,
        lineage: Lineage,
    ) -> Result<ObjectMeta, ObjectError> {
        self.bus.check_room()?;
        if src == dst && matches!(directive, MetadataDirective::Copy) {
            return Err(ObjectError::InvalidRequest(
                "copying an object onto itself must change its metadata (use the REPLACE directive)".into(),
            ));
        }
        // The source's blob cannot be collected while this commit runs: it is referenced, and a
        // collection removes blobs only in write transactions, which run one at a time.
        let input = (
            self.index.clone(),
            (src.0.clone(), src.1.clone()),
            (dst.0.clone(), dst.1.clone()),
            (directive, source_conditions),
            lineage,
        );
        self.bus
            .write(
                input,
                |tx, (index, src, dst, (directive, conditions), lineage)| {
                    Box::pin(async move {
                        let index = index.as_ref();
                        require_bucket(index, tx, &src.0).await?;
                        require_bucket(index, tx, &dst.0).await?;
                        let (source, data) = index
                            .object_with_data(tx, &src.0, &src.1)
                            .await?
                            .ok_or_else(|| ObjectError::NoSuchKey {
                                bucket: src.0.to_string(),
                                key: src.1.to_string(),
                            })?;
                        conditions.check(&source)?;
                        let (content_type, user_meta, headers) = match directive {
                            MetadataDirective::Copy => {
                                (source.content_type, source.user_meta, source.headers)
                            }
                            MetadataDirective::Replace {
                                content_type,
                                user_meta,
                                headers,
                            } => (content_type.clone(), user_meta.clone(), headers.clone()),
                        };
                        // The same bytes (the same blob, or a copy of them inline): the same
                        // checksum and parts.
                        let meta = ObjectMeta {
                            checksum: source.checksum,
                            part_sizes: source.part_sizes,
                            inline: source.inline,
                            ..draft(
                                &dst.0,
                                &dst.1,
                                (source.size, source.etag, source.sha256),
                                content_type,
                                user_meta,
                                headers,
                            )
                        };
                        commit_in(
                            index,
                            tx,
                            meta,
                            data.as_deref(),
                            EventKind::ObjectCreatedCopy,
                            lineage.clone(),
                        )
                        .await
                    })
                },
            )
            .await
    }

    /// Streams `body` into a new blob — refused at once while the disk is full, and telling the
    /// bus when this write finds it full.
    pub(crate) async fn new_blob(
        &self,
        body: &mut (dyn AsyncRead + Send + Unpin),
        limits: &BlobLimits,
    ) -> Result<crate::BlobInfo, ObjectError> {
        self.bus.check_room()?;
        let written = self.blobs.write(body, limits).await;
        self.out_of_space(written)
    }

    /// `result`, with a full disk reported to the bus and answered as its `StorageFull`.
    pub(crate) fn out_of_space<T>(&self, result: Result<T, ObjectError>) -> Result<T, ObjectError> {
        match result {
            Err(ObjectError::Io { path, source }) if eddy_bus::is_out_of_space(&source) => {
                self.bus
                    .report_out_of_space(&format!("writing {path}: {source}"));
                Err(self
                    .bus
                    .check_room()
                    .err()
                    .map_or(ObjectError::Io { path, source }, ObjectError::Bus))
            }
            other => other,
        }
    }

    /// Removes blobs that no object and no multipart part refers to and that were last
    /// written more than `grace` ago (a blob written since may be about to be referenced).
    /// Candidates are checked again, and removed, inside write transactions (a batch each): a
    /// commit that refers to a blob and the removal of that blob never interleave.
    pub async fn collect_garbage(
        &self,
        grace: std::time::Duration,
    ) -> Result<GcReport, ObjectError> {
        let before = std::time::SystemTime::now() - grace;
        let listed = self.blobs.list().await?;
        let referenced = self.index.referenced_blobs(&mut self.bus.readers()).await?;
        let candidates: Vec<StoredBlob> = listed
            .into_iter()
            .filter(|b| b.written < before && !referenced.contains(&b.id))
            .collect();
        let mut report = GcReport::default();
        for batch in candidates.chunks(GC_BATCH) {
            let input = (self.index.clone(), self.blobs.clone(), batch.to_vec());
            let removed = self
                .bus
                .write(input, |tx, (index, blobs, batch)| {
                    Box::pin(async move {
                        let ids: Vec<&str> = batch.iter().map(|b| b.id.as_str()).collect();
                        let now_referenced = index.referenced_among(tx, &ids).await?;
                        let mut removed = GcReport::default();
                        for blob in batch.iter().filter(|b| !now_referenced.contains(&b.id)) {
                            if let Some(size) = blobs.remove(blob).await? {
                                removed.bytes_removed += size;
                                removed.blobs_removed += 1;
                            }
                        }
                        Ok::<_, ObjectError>(removed)
                    })
                })
                .await?;
            report.blobs_removed += removed.blobs_removed;
            report.bytes_removed += removed.bytes_removed;
        }
        Ok(report)
    }

    /// All the bytes of an object as stored, inline or in its blob (for tools and tests that
    /// check the store).
    pub async fn stored_bytes(&self, meta: &ObjectMeta) -> Result<Vec<u8>, ObjectError> {
        if meta.inline {
            let mut db = self.bus.readers();
            let found = self
                .index
                .object_with_data(&mut db, &meta.bucket, &meta.key)
                .await?;
            return match found {
                Some((now, Some(bytes))) if now.sha256 == meta.sha256 => Ok(bytes),
                _ => Err(ObjectError::NoSuchKey {
                    bucket: meta.bucket.to_string(),
                    key: meta.key.to_string(),
                }),
            };
        }
        let mut reader = self.blobs.read(&meta.sha256, 0, meta.size).await?;
        let mut bytes = Vec::with_capacity(meta.size as usize);
        reader
            .read_to_end(&mut bytes)
            .await
            .map_err(ObjectError::Body)?;
        Ok(bytes)
    }
}

/// How many blobs one collection transaction checks and removes.
const GC_BATCH: usize = 100;

/// `Ok` when the blob just `written` is still there, `BlobCollected` when a collection that
/// began before it was written removed it: called in the transaction that commits a reference.
pub(crate) async fn kept(blobs: &dyn BlobStore, written: &BlobInfo) -> Result<(), ObjectError> {
    if blobs.still_there(written).await? {
        Ok(())
    } else {
        Err(ObjectError::BlobCollected)
    }
}

/// `Ok` when the bucket exists, `NoSuchBucket` otherwise.
pub(crate) async fn require_bucket(
    index: &dyn ObjectIndex,
    db: &mut dyn eddy_bus::sql::Sql,
    bucket: &BucketName,
) -> Result<(), ObjectError> {
    if index.bucket_exists(db, bucket).await? {
        Ok(())
    } else {
        Err(ObjectError::NoSuchBucket(bucket.to_string()))
    }
}

/// The NoSuchBucket or NoSuchKey error for a key that was not found.
async fn missing(
    index: &dyn ObjectIndex,
    db: &mut dyn eddy_bus::sql::Sql,
    bucket: &BucketName,
    key: &ObjectKey,
) -> ObjectError {
    match require_bucket(index, db, bucket).await {
        Err(e) => e,
        Ok(()) => ObjectError::NoSuchKey {
            bucket: bucket.to_string(),
            key: key.to_string(),
        },
    }
}

/// Metadata for a new version whose bytes have this size, ETag and SHA-256; the commit fills in
/// time and sequencer.
pub(crate) fn draft(
    bucket: &BucketName,
    key: &ObjectKey,
    (size, etag, sha256): (u64, String, String),
    content_type: Option<String>,
    user_meta: std::collections::BTreeMap<String, String>,
    headers: std::collections::BTreeMap<String, String>,
) -> ObjectMeta {
    ObjectMeta {
        bucket: bucket.clone(),
        key: key.clone(),
        size,
        etag,
        sha256,
        content_type,
        user_meta,
        headers,
        checksum: None,
        part_sizes: Vec::new(),
        last_modified_ms: 0,
        sequencer: 0,
        inline: false,
    }
}

/// The metadata of `bytes` kept inline as `bucket/key`, digested within `limits`, with its
/// content type, user metadata and headers.
fn inline_meta(
    bucket: &BucketName,
    key: &ObjectKey,
    bytes: &[u8],
    limits: &BlobLimits,
    (content_type, user_meta, headers): (
        Option<String>,
        std::collections::BTreeMap<String, String>,
        std::collections::BTreeMap<String, String>,
    ),
) -> Result<ObjectMeta, ObjectError> {
    let digests = crate::staging::digest_held(bytes, limits)?;
    Ok(ObjectMeta {
        checksum: digests.checksum,
        inline: true,
        ..draft(
            bucket,
            key,
            (bytes.len() as u64, hex::encode(digests.md5), digests.sha256),
            content_type,
            user_meta,
            headers,
        )
    })
}

/// Whether `condition` holds of the key now (on `db`: the write's transaction, or a first look
/// before a body is read).
pub(crate) async fn check_condition(
    index: &dyn ObjectIndex,
    db: &mut dyn Sql,
    bucket: &BucketName,
    key: &ObjectKey,
    condition: &WriteCondition,
) -> Result<(), ObjectError> {
    let current = index.object(db, bucket, key).await?;
    match (condition, current) {
        (WriteCondition::Absent, None) => Ok(()),
        (WriteCondition::Absent, Some(_)) => Err(ObjectError::PreconditionFailed(format!(
            "If-None-Match: * and {key} exists"
        ))),
        (WriteCondition::Exists, Some(_)) => Ok(()),
        (WriteCondition::Exists, None) => Err(ObjectError::PreconditionFailed(format!(
            "If-Match: * and {key} does not exist"
        ))),
        (WriteCondition::Matches(_), None) => Err(ObjectError::NoSuchKey {
            bucket: bucket.to_string(),
            key: key.to_string(),
        }),
        (WriteCondition::Matches(etag), Some(meta)) if meta.etag == *etag => Ok(()),
        (WriteCondition::Matches(etag), Some(meta)) => Err(ObjectError::PreconditionFailed(
            format!("If-Match: \"{etag}\" but {key} has ETag \"{}\"", meta.etag),
        )),
    }
}

/// A condition that held when the request was first checked and fails when it commits: another
/// write came in between, which S3 answers as a conflict (409) rather than a failed
/// precondition (412).
pub(crate) fn raced(error: ObjectError) -> ObjectError {
    match error {
        ObjectError::PreconditionFailed(what) => ObjectError::ConditionalRequestConflict(what),
        ObjectError::NoSuchKey { key, .. } => {
            ObjectError::ConditionalRequestConflict(format!("{key} was deleted"))
        }
        other => other,
    }
}

/// Appends the version's event and writes its metadata (and its bytes, when `data` holds them
/// inline), in the caller's transaction.
pub(crate) async fn commit_in(
    index: &dyn ObjectIndex,
    tx: &mut WriteTx,
    mut meta: ObjectMeta,
    data: Option<&[u8]>,
    kind: EventKind,
    lineage: Lineage,
) -> Result<ObjectMeta, ObjectError> {
    let event = tx.append(object_event(&meta, kind, lineage)).await?;
    meta.sequencer = event.seq;
    meta.last_modified_ms = event.time_ms;
    index.put_object(tx, &meta, data).await?;
    Ok(meta)
}

/// The event of an object's creation, as its put made it (for a trigger's backfill).
pub fn created_event(meta: &ObjectMeta) -> NewEvent {
    object_event(meta, EventKind::ObjectCreatedPut, Lineage::root())
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
