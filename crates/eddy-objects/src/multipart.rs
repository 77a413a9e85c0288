//! Multipart uploads. Each part is a blob of its own; completing the upload concatenates the
//! chosen parts into the object's blob and commits the object, its
//! `ObjectCreated:CompleteMultipartUpload` event and the end of the upload in one transaction.

use eddy_core::{BucketName, EventKind, Lineage, ObjectKey};
use md5::{Digest, Md5};
use sqlx::Row;
use tokio::io::AsyncRead;

use crate::model::*;
use crate::store::{ObjectStore, commit_in, draft};
use crate::{ObjectError, rows};

/// The parts a client names when completing an upload: number and ETag (quotes allowed).
pub type CompletedPart = (u32, String);

impl ObjectStore {
    pub async fn create_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: PutOptions,
    ) -> Result<String, ObjectError> {
        let upload_id = uuid::Uuid::new_v4().simple().to_string();
        let (bucket, key, id) = (bucket.clone(), key.clone(), upload_id.clone());
        let user_meta = serde_json::to_string(&opts.user_meta).expect("string maps serialize");
        self.bus
            .write(move |tx| {
                let (bucket, key, id, opts, user_meta) = (bucket.clone(), key.clone(), id.clone(), opts.clone(), user_meta.clone());
                Box::pin(async move {
                    rows::require_bucket(tx.conn(), &bucket).await?;
                    sqlx::query(
                        "INSERT INTO _eddy_uploads (upload_id, bucket, key, content_type, user_meta, created_ms)
                         VALUES (?, ?, ?, ?, ?, ?)",
                    )
                    .bind(&id)
                    .bind(bucket.as_str())
                    .bind(key.as_str())
                    .bind(opts.content_type.as_deref())
                    .bind(user_meta)
                    .bind(eddy_bus::now_ms())
                    .execute(tx.conn())
                    .await?;
                    Ok::<_, ObjectError>(())
                })
            })
            .await?;
        Ok(upload_id)
    }

    /// Stores one part (replacing an earlier part with the same number); returns its ETag.
    pub async fn upload_part(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        part_number: u32,
        body: &mut (dyn AsyncRead + Send + Unpin),
        content_md5: Option<[u8; 16]>,
    ) -> Result<String, ObjectError> {
        if !(1..=MAX_PART_NUMBER).contains(&part_number) {
            return Err(ObjectError::InvalidPartNumber(part_number));
        }
        self.upload(self.bus.readers(), bucket, key, upload_id)
            .await?;
        let staged = self.blobs.stage(body, MAX_PUT_BYTES, content_md5).await?;
        let _refs = self.blob_refs.read().await;
        let blob = self.blobs.place(staged).await?;
        let etag = hex::encode(blob.md5);
        let (bucket, key, id, part_etag) = (
            bucket.clone(),
            key.clone(),
            upload_id.to_string(),
            etag.clone(),
        );
        let this = self.clone();
        self.bus
            .write(move |tx| {
                let (this, bucket, key, id, part_etag, blob) = (this.clone(), bucket.clone(), key.clone(), id.clone(), part_etag.clone(), blob.clone());
                Box::pin(async move {
                    this.upload(tx.conn(), &bucket, &key, &id).await?;
                    sqlx::query(
                        "INSERT INTO _eddy_upload_parts (upload_id, part_number, size, etag, sha256, last_modified_ms)
                         VALUES (?, ?, ?, ?, ?, ?)
                         ON CONFLICT (upload_id, part_number) DO UPDATE SET
                             size = excluded.size, etag = excluded.etag, sha256 = excluded.sha256,
                             last_modified_ms = excluded.last_modified_ms",
                    )
                    .bind(&id)
                    .bind(i64::from(part_number))
                    .bind(blob.size as i64)
                    .bind(&part_etag)
                    .bind(&blob.sha256)
                    .bind(eddy_bus::now_ms())
                    .execute(tx.conn())
                    .await?;
                    Ok::<_, ObjectError>(())
                })
            })
            .await?;
        Ok(etag)
    }

    /// Completes an upload from the listed parts, which must be in ascending order, each
    /// matching an uploaded part's ETag, each but the last at least [`MIN_PART_BYTES`].
    pub async fn complete_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        parts: &[CompletedPart],
        lineage: Lineage,
    ) -> Result<ObjectMeta, ObjectError> {
        let upload = self
            .upload(self.bus.readers(), bucket, key, upload_id)
            .await?;
        let stored = self.stored_parts(upload_id).await?;
        let chosen = choose_parts(parts, &stored)?;
        let _refs = self.blob_refs.read().await;
        let staged = self
            .blobs
            .stage_concat(chosen.iter().map(|p| p.1.clone()).collect())
            .await?;
        let blob = self.blobs.place(staged).await?;
        let mut md5s = Md5::new();
        for (part, _) in &chosen {
            md5s.update(hex::decode(&part.etag).expect("stored ETags are hex"));
        }
        let etag = format!("{}-{}", hex::encode(md5s.finalize()), chosen.len());
        let meta = draft(
            bucket,
            key,
            blob.size,
            etag,
            blob.sha256,
            upload.content_type,
            upload.user_meta,
        );
        let expected: Vec<(u32, String)> = chosen
            .into_iter()
            .map(|(p, _)| (p.part_number, p.etag))
            .collect();
        let (id, this) = (upload_id.to_string(), self.clone());
        self.bus
            .write(move |tx| {
                let (this, meta, id, expected, lineage) = (
                    this.clone(),
                    meta.clone(),
                    id.clone(),
                    expected.clone(),
                    lineage.clone(),
                );
                Box::pin(async move {
                    this.upload(tx.conn(), &meta.bucket, &meta.key, &id).await?;
                    // A part replaced while the parts were being joined: the join is stale.
                    let now = this.parts_in(tx.conn(), &id).await?;
                    for (number, etag) in &expected {
                        if !now
                            .iter()
                            .any(|p| p.0.part_number == *number && &p.0.etag == etag)
                        {
                            return Err(ObjectError::InvalidPart(*number));
                        }
                    }
                    sqlx::query("DELETE FROM _eddy_uploads WHERE upload_id = ?")
                        .bind(&id)
                        .execute(tx.conn())
                        .await?;
                    commit_in(
                        tx,
                        meta,
                        EventKind::ObjectCreatedCompleteMultipartUpload,
                        lineage,
                    )
                    .await
                })
            })
            .await
    }

    pub async fn abort_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> Result<(), ObjectError> {
        let (bucket, key, id, this) = (
            bucket.clone(),
            key.clone(),
            upload_id.to_string(),
            self.clone(),
        );
        self.bus
            .write(move |tx| {
                let (this, bucket, key, id) =
                    (this.clone(), bucket.clone(), key.clone(), id.clone());
                Box::pin(async move {
                    this.upload(tx.conn(), &bucket, &key, &id).await?;
                    sqlx::query("DELETE FROM _eddy_uploads WHERE upload_id = ?")
                        .bind(&id)
                        .execute(tx.conn())
                        .await?;
                    Ok(())
                })
            })
            .await
    }

    /// The parts uploaded so far, by part number.
    pub async fn list_parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> Result<Vec<PartInfo>, ObjectError> {
        self.upload(self.bus.readers(), bucket, key, upload_id)
            .await?;
        Ok(self
            .stored_parts(upload_id)
            .await?
            .into_iter()
            .map(|p| p.0)
            .collect())
    }

    /// Unfinished uploads in a bucket, by key and then creation.
    pub async fn list_multipart_uploads(
        &self,
        bucket: &BucketName,
    ) -> Result<Vec<UploadInfo>, ObjectError> {
        rows::require_bucket(self.bus.readers(), bucket).await?;
        let found = sqlx::query(
            "SELECT upload_id, key, created_ms FROM _eddy_uploads WHERE bucket = ? ORDER BY key, created_ms",
        )
        .bind(bucket.as_str())
        .fetch_all(self.bus.readers())
        .await?;
        found
            .iter()
            .map(|r| {
                Ok(UploadInfo {
                    upload_id: r.try_get("upload_id")?,
                    bucket: bucket.clone(),
                    key: ObjectKey::new(r.try_get::<String, _>("key")?)?,
                    created_ms: r.try_get("created_ms")?,
                })
            })
            .collect()
    }

    /// The upload `upload_id` of `bucket/key`, or `NoSuchUpload`.
    async fn upload<'e>(
        &self,
        db: impl sqlx::SqliteExecutor<'e>,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> Result<PendingUpload, ObjectError> {
        let row = sqlx::query(
            "SELECT content_type, user_meta FROM _eddy_uploads WHERE upload_id = ? AND bucket = ? AND key = ?",
        )
        .bind(upload_id)
        .bind(bucket.as_str())
        .bind(key.as_str())
        .fetch_optional(db)
        .await?
        .ok_or_else(|| ObjectError::NoSuchUpload(upload_id.to_string()))?;
        Ok(PendingUpload {
            content_type: row.try_get("content_type")?,
            user_meta: rows::parse_user_meta(row.try_get("user_meta")?),
        })
    }

    async fn stored_parts(&self, upload_id: &str) -> Result<Vec<(PartInfo, String)>, ObjectError> {
        self.parts_in(self.bus.readers(), upload_id).await
    }

    /// Parts with their blob digests.
    async fn parts_in<'e>(
        &self,
        db: impl sqlx::SqliteExecutor<'e>,
        upload_id: &str,
    ) -> Result<Vec<(PartInfo, String)>, ObjectError> {
        let found = sqlx::query(
            "SELECT part_number, size, etag, sha256, last_modified_ms FROM _eddy_upload_parts
             WHERE upload_id = ? ORDER BY part_number",
        )
        .bind(upload_id)
        .fetch_all(db)
        .await?;
        found
            .iter()
            .map(|r| {
                Ok((
                    PartInfo {
                        part_number: r.try_get::<i64, _>("part_number")? as u32,
                        size: r.try_get::<i64, _>("size")? as u64,
                        etag: r.try_get("etag")?,
                        last_modified_ms: r.try_get("last_modified_ms")?,
                    },
                    r.try_get("sha256")?,
                ))
            })
            .collect()
    }
}

struct PendingUpload {
    content_type: Option<String>,
    user_meta: std::collections::BTreeMap<String, String>,
}

/// Checks the client's part list against the stored parts; returns the chosen parts in order.
fn choose_parts(
    requested: &[CompletedPart],
    stored: &[(PartInfo, String)],
) -> Result<Vec<(PartInfo, String)>, ObjectError> {
    if requested.is_empty() {
        return Err(ObjectError::NoParts);
    }
    if requested.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(ObjectError::InvalidPartOrder);
    }
    let mut chosen = Vec::with_capacity(requested.len());
    for (i, (number, etag)) in requested.iter().enumerate() {
        let etag = etag.trim_matches('"');
        let part = stored
            .iter()
            .find(|p| p.0.part_number == *number && p.0.etag == etag)
            .ok_or(ObjectError::InvalidPart(*number))?;
        let is_last = i + 1 == requested.len();
        if !is_last && part.0.size < MIN_PART_BYTES {
            return Err(ObjectError::EntityTooSmall {
                part: *number,
                size: part.0.size,
                min: MIN_PART_BYTES,
            });
        }
        chosen.push(part.clone());
    }
    Ok(chosen)
}
