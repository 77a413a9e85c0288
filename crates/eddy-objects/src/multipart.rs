//! Multipart uploads. Each part is a blob of its own, uploaded or copied from an object, with
//! the checksum the upload asked for (CRC64NVME when it asked for none); completing the upload
//! concatenates the chosen parts into the object's blob and commits the object — with its part
//! sizes and the checksum assembled from the parts' — its
//! `ObjectCreated:CompleteMultipartUpload` event and the end of the upload in one transaction.

use eddy_bus::sql::Sql;
use eddy_core::{BucketName, EventKind, Lineage, ObjectKey};
use md5::{Digest, Md5};
use tokio::io::AsyncRead;

use crate::ObjectError;
use crate::blobs::BlobLimits;
use crate::checksum::{ChecksumAlgorithm, ChecksumRequest, ChecksumType, ObjectChecksum};
use crate::index::{StoredPart, Upload};
use crate::model::*;
use crate::store::{ObjectStore, check_condition, commit_in, draft, kept, raced, require_bucket};

impl ObjectStore {
    pub async fn create_multipart_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        opts: PutOptions,
        checksum: Option<(ChecksumAlgorithm, ChecksumType)>,
    ) -> Result<String, ObjectError> {
        if let Some((algorithm, kind)) = checksum
            && !algorithm.allows(kind)
        {
            return Err(ObjectError::InvalidRequest(format!(
                "The {} checksum type cannot be used with the {} checksum algorithm; {}",
                kind.name(),
                algorithm.name(),
                "FULL_OBJECT is for CRC32, CRC32C and CRC64NVME, COMPOSITE for CRC32, CRC32C, SHA1 and SHA256"
            )));
        }
        let upload = Upload {
            upload_id: uuid::Uuid::new_v4().simple().to_string(),
            bucket: bucket.clone(),
            key: key.clone(),
            content_type: opts.content_type,
            user_meta: opts.user_meta,
            headers: opts.headers,
            checksum,
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

    /// Stores one part (replacing an earlier part with the same number) with the checksum the
    /// upload asked for, checked against `checksum` when the client sent one.
    pub async fn upload_part(
        &self,
        (bucket, key, upload_id): (&BucketName, &ObjectKey, &str),
        part_number: u32,
        body: &mut (dyn AsyncRead + Send + Unpin),
        content_md5: Option<[u8; 16]>,
        checksum: Option<ChecksumRequest>,
    ) -> Result<PartInfo, ObjectError> {
        if !(1..=MAX_PART_NUMBER).contains(&part_number) {
            return Err(ObjectError::InvalidPartNumber(part_number));
        }
        let upload = self
            .upload(&mut self.bus.readers(), bucket, key, upload_id)
            .await?;
        let checksum = part_checksum(&upload, checksum)?;
        let limits = BlobLimits {
            max: MAX_PUT_BYTES,
            min: 0,
            md5: content_md5,
            checksum: Some(checksum),
        };
        let blob = self.new_blob(body, &limits).await?;
        let part = StoredPart {
            info: PartInfo {
                part_number,
                size: blob.size,
                etag: hex::encode(blob.md5),
                checksum: blob.checksum.clone(),
                last_modified_ms: eddy_bus::now_ms(),
            },
            blob: blob.sha256.clone(),
        };
        let info = part.info.clone();
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
        Ok(info)
    }

    /// Stores one part from the bytes of an object, all of them or the inclusive `range`
    /// (UploadPartCopy), if the source meets `conditions`.
    pub async fn upload_part_copy(
        &self,
        upload: (&BucketName, &ObjectKey, &str),
        part_number: u32,
        source: (&BucketName, &ObjectKey),
        range: CopyRange,
        conditions: &SourceConditions,
    ) -> Result<PartInfo, ObjectError> {
        let meta = self.head_object(source.0, source.1).await?;
        let range = match range {
            None => None,
            Some((first, last)) if first <= last && last < meta.size => {
                Some(ByteRange::FromTo(first, last))
            }
            Some(_) => return Err(ObjectError::InvalidCopyRange { size: meta.size }),
        };
        let body = self.get_object(source.0, source.1, range).await?;
        // The range was checked against the version looked at: it must be the one read.
        if body.meta.etag != meta.etag {
            return Err(ObjectError::ConditionalRequestConflict(format!(
                "{} changed while the part was being copied",
                source.1
            )));
        }
        conditions.check(&body.meta)?;
        let mut bytes = body.into_reader();
        self.upload_part(upload, part_number, &mut bytes, None, None)
            .await
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
        let upload = match self.upload(&mut db, bucket, key, upload_id).await {
            Err(ObjectError::NoSuchUpload(_)) => {
                return self
                    .completed_before(&mut db, (bucket, key), upload_id, parts)
                    .await;
            }
            found => found?,
        };
        if let Some(condition) = &condition {
            check_condition(self.index.as_ref(), &mut db, bucket, key, condition).await?;
        }
        let stored = self.index.parts(&mut db, upload_id).await?;
        let chosen = choose_parts(parts, &stored)?;
        let blobs: Vec<String> = chosen.iter().map(|p| p.blob.clone()).collect();
        self.bus.check_room()?;
        let blob = self.out_of_space(self.blobs.concat(&blobs).await)?;
        let listed: Vec<&str> = chosen.iter().map(|p| p.info.etag.as_str()).collect();
        let etag = etag_of_parts(&listed).expect("stored ETags are hex");
        // What the upload asked for; without a request, the full-object CRC64NVME S3 gives.
        let (algorithm, kind) = upload
            .checksum
            .unwrap_or((ChecksumAlgorithm::Crc64Nvme, ChecksumType::FullObject));
        let sums: Vec<_> = chosen
            .iter()
            .map(|p| (p.info.checksum.as_ref(), p.info.size))
            .collect();
        let meta = ObjectMeta {
            checksum: ObjectChecksum::of_parts(algorithm, kind, &sums),
            part_sizes: chosen.iter().map(|p| p.info.size).collect(),
            ..draft(
                bucket,
                key,
                (blob.size, etag, blob.sha256.clone()),
                upload.content_type,
                upload.user_meta,
                upload.headers,
            )
        };
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
                            .await
                            .map_err(raced)?;
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
                        let target = (&meta.bucket, &meta.key);
                        let now = eddy_bus::now_ms();
                        this.index
                            .record_completion(tx, id, target, &meta.etag, now)
                            .await?;
                        commit_in(
                            this.index.as_ref(),
                            tx,
                            meta.clone(),
                            None,
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

    /// A completion repeated (a client retrying one whose answer it lost): the object the
    /// upload made, if this request lists the same parts (their ETags make the object's) and
    /// the object is still the key's current version, as S3 answers it; otherwise
    /// `NoSuchUpload`.
    async fn completed_before(
        &self,
        db: &mut dyn Sql,
        (bucket, key): (&BucketName, &ObjectKey),
        upload_id: &str,
        parts: &[CompletedPart],
    ) -> Result<ObjectMeta, ObjectError> {
        let made = self.index.completion(db, upload_id, bucket, key).await?;
        let current = self.index.object(db, bucket, key).await?;
        match (made, current, multipart_etag(parts)) {
            (Some(etag), Some(meta), Some(listed)) if meta.etag == etag && listed == etag => {
                Ok(meta)
            }
            _ => Err(ObjectError::NoSuchUpload(upload_id.to_string())),
        }
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
    if requested
        .windows(2)
        .any(|w| w[0].part_number >= w[1].part_number)
    {
        return Err(ObjectError::InvalidPartOrder);
    }
    let mut chosen = Vec::with_capacity(requested.len());
    for (i, wanted) in requested.iter().enumerate() {
        let number = &wanted.part_number;
        let etag = wanted.etag.trim_matches('"');
        // A checksum the client lists must be the part's too.
        let same_sum = |stored: &Option<ObjectChecksum>| match (&wanted.checksum, stored) {
            (None, _) => true,
            (Some((algorithm, value)), Some(sum)) => {
                sum.algorithm == *algorithm && sum.value == value.trim()
            }
            (Some(_), None) => false,
        };
        let part = stored
            .iter()
            .find(|p| {
                p.info.part_number == *number && p.info.etag == etag && same_sum(&p.info.checksum)
            })
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

/// S3's ETag of an object made of parts with these ETags (MD5s in hex, quotes allowed): the
/// MD5 of their MD5s, `-N`; `None` when one is not an MD5.
fn etag_of_parts(etags: &[&str]) -> Option<String> {
    let mut md5s = Md5::new();
    for etag in etags {
        let md5 = hex::decode(etag.trim_matches('"')).ok()?;
        md5s.update(md5);
    }
    Some(format!("{}-{}", hex::encode(md5s.finalize()), etags.len()))
}

/// The ETag the object would have if these parts were its parts.
fn multipart_etag(parts: &[CompletedPart]) -> Option<String> {
    let etags: Vec<&str> = parts.iter().map(|p| p.etag.as_str()).collect();
    etag_of_parts(&etags)
}

/// The checksum a part is stored with: the upload's algorithm (a part sent with another is
/// refused, as S3 does), else the one the client sent, else CRC64NVME.
fn part_checksum(
    upload: &Upload,
    sent: Option<ChecksumRequest>,
) -> Result<ChecksumRequest, ObjectError> {
    match (upload.checksum, sent) {
        (Some((algorithm, _)), Some(sent)) if sent.algorithm != algorithm => {
            Err(ObjectError::InvalidRequest(format!(
                "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {}",
                algorithm.name().to_lowercase(),
                sent.algorithm.name().to_lowercase()
            )))
        }
        (_, Some(sent)) => Ok(sent),
        (Some((algorithm, _)), None) => Ok(ChecksumRequest {
            algorithm,
            expected: None,
        }),
        (None, None) => Ok(ChecksumRequest::default_for_uploads()),
    }
}
