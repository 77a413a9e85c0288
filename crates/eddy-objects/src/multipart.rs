//! Multipart uploads. Each part is a blob of its own; completing the upload concatenates the
//! chosen parts into the object's blob and commits the object, its
//! `ObjectCreated:CompleteMultipartUpload` event and the end of the upload in one transaction.

use eddy_bus::sql::Sql;
use eddy_core::{BucketName, EventKind, Lineage, ObjectKey};
use md5::{Digest, Md5};
use tokio::io::AsyncRead;

use crate::ObjectError;
use crate::blobs::BlobLimits;
use crate::index::{StoredPart, Upload};
use crate::model::*;
use crate::store::{ObjectStore, check_condition, commit_in, draft, kept, require_bucket};

/// The parts a client names when completing an upload: number and ETag (quotes allowed).
pub type CompletedPart = (u32, String);

impl ObjectStore {
    pub async fn create_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: PutOptions,
    ) -> Result<String, ObjectError> {
        let upload = Upload {
            upload_id: uuid::Uuid::new_v4().simple().to_string(),
            bucket: bucket.clone(),
            key: key.clone(),
            content_type: opts.content_type,
            user_meta: opts.user_meta,
            headers: opts.headers,
            created_ms: eddy_bus::now_ms(),
        };
        let id = upload.upload_id.clone();
        self.bus
            .write((self.index.clone(), upload), |tx, (index, upload)| {
                Box::pin(async move {
                    require_bucket(index.as_ref(), tx, &upload.bucket).await?;
                    index.create_upload(tx, upload).await
                })
            })
            .await?;
        Ok(id)
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
        self.upload(&mut self.bus.readers(), bucket, key, upload_id)
            .await?;
        let limits = BlobLimits {
            max: MAX_PUT_BYTES,
            min: 0,
            md5: content_md5,
        };
        let blob = self.new_blob(body, &limits).await?;
        let part = StoredPart {
            info: PartInfo {
                part_number,
                size: blob.size,
                etag: hex::encode(blob.md5),
                last_modified_ms: eddy_bus::now_ms(),
            },
            blob: blob.sha256.clone(),
        };
        let etag = part.info.etag.clone();
        let input = (
            self.clone(),
            bucket.clone(),
            key.clone(),
            upload_id.to_string(),
            part,
            blob,
        );
        self.bus
            .write(input, |tx, (this, bucket, key, id, part, blob)| {
                Box::pin(async move {
                    this.upload(tx, bucket, key, id).await?;
                    kept(this.blobs.as_ref(), blob).await?;
                    this.index.put_part(tx, id, part).await
                })
            })
            .await?;
        Ok(etag)
    }

    /// Completes an upload from the listed parts, which must be in ascending order, each
    /// matching an uploaded part's ETag, each but the last at least [`MIN_PART_BYTES`]; and,
    /// given a `condition`, only if it holds of the key when the object commits (S3's
    /// conditional writes).
    pub async fn complete_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        parts: &[CompletedPart],
        lineage: Lineage,
        condition: Option<WriteCondition>,
    ) -> Result<ObjectMeta, ObjectError> {
        let mut db = self.bus.readers();
        let upload = self.upload(&mut db, bucket, key, upload_id).await?;
        if let Some(condition) = &condition {
            check_condition(self.index.as_ref(), &mut db, bucket, key, condition).await?;
        }
        let stored = self.index.parts(&mut db, upload_id).await?;
        let chosen = choose_parts(parts, &stored)?;
        let blobs: Vec<String> = chosen.iter().map(|p| p.blob.clone()).collect();
        self.bus.check_room()?;
        let blob = self.out_of_space(self.blobs.concat(&blobs).await)?;
        let mut md5s = Md5::new();
        for part in &chosen {
            md5s.update(hex::decode(&part.info.etag).expect("stored ETags are hex"));
        }
        let etag = format!("{}-{}", hex::encode(md5s.finalize()), chosen.len());
        let meta = draft(
            bucket,
            key,
            (blob.size, etag, blob.sha256.clone()),
            upload.content_type,
            upload.user_meta,
            upload.headers,
        );
        let expected: Vec<(u32, String)> = chosen
            .into_iter()
            .map(|p| (p.info.part_number, p.info.etag))
            .collect();
        let input = (
            self.clone(),
            meta,
            upload_id.to_string(),
            expected,
            (lineage, condition),
            blob,
        );
        self.bus
            .write(
                input,
                |tx, (this, meta, id, expected, (lineage, condition), blob)| {
                    Box::pin(async move {
                        this.upload(tx, &meta.bucket, &meta.key, id).await?;
                        if let Some(condition) = condition {
                            check_condition(
                                this.index.as_ref(),
                                tx,
                                &meta.bucket,
                                &meta.key,
                                condition,
                            )
                            .await?;
                        }
                        kept(this.blobs.as_ref(), blob).await?;
                        // A part replaced while the parts were being joined: the join is stale.
                        let now = this.index.parts(tx, id).await?;
                        for (number, etag) in expected {
                            if !now
                                .iter()
                                .any(|p| p.info.part_number == *number && &p.info.etag == etag)
                            {
                                return Err(ObjectError::InvalidPart(*number));
                            }
                        }
                        this.index.delete_upload(tx, id).await?;
                        commit_in(
                            this.index.as_ref(),
                            tx,
                            meta.clone(),
                            EventKind::ObjectCreatedCompleteMultipartUpload,
                            lineage.clone(),
                        )
                        .await
                    })
                },
            )
            .await
    }

    pub async fn abort_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> Result<(), ObjectError> {
        let input = (
            self.clone(),
            bucket.clone(),
            key.clone(),
            upload_id.to_string(),
        );
        self.bus
            .write(input, |tx, (this, bucket, key, id)| {
                Box::pin(async move {
                    this.upload(tx, bucket, key, id).await?;
                    this.index.delete_upload(tx, id).await
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
        let mut db = self.bus.readers();
        self.upload(&mut db, bucket, key, upload_id).await?;
        Ok(self
            .index
            .parts(&mut db, upload_id)
            .await?
            .into_iter()
            .map(|p| p.info)
            .collect())
    }

    /// Unfinished uploads in a bucket, by key and then creation.
    pub async fn list_multipart_uploads(
        &self,
        bucket: &BucketName,
    ) -> Result<Vec<UploadInfo>, ObjectError> {
        let mut db = self.bus.readers();
        require_bucket(self.index.as_ref(), &mut db, bucket).await?;
        self.index.uploads(&mut db, bucket).await
    }

    /// The upload `upload_id` of `bucket/key`, or `NoSuchUpload`.
    async fn upload(
        &self,
        db: &mut dyn Sql,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> Result<Upload, ObjectError> {
        self.index
            .upload(db, upload_id, bucket, key)
            .await?
            .ok_or_else(|| ObjectError::NoSuchUpload(upload_id.to_string()))
    }
}

/// Checks the client's part list against the stored parts; returns the chosen parts in order.
fn choose_parts(
    requested: &[CompletedPart],
    stored: &[StoredPart],
) -> Result<Vec<StoredPart>, ObjectError> {
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
            .find(|p| p.info.part_number == *number && p.info.etag == etag)
            .ok_or(ObjectError::InvalidPart(*number))?;
        let is_last = i + 1 == requested.len();
        if !is_last && part.info.size < MIN_PART_BYTES {
            return Err(ObjectError::EntityTooSmall {
                part: *number,
                size: part.info.size,
                min: MIN_PART_BYTES,
            });
        }
        chosen.push(part.clone());
    }
    Ok(chosen)
}
