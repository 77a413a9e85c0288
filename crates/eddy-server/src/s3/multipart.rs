//! Multipart uploads: create, upload (or copy) parts, list, complete, abort. Each part is
//! stored with the checksum the upload asked for, and listed and answered with it.

use eddy_objects::{ChecksumAlgorithm, ChecksumType, CompletedPart};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use super::*;

impl EddyS3 {
    pub(super) async fn start_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let lineage = lineage(&req);
        let input = req.input;
        let (bucket, key) = (bucket_name(&input.bucket)?, object_key(&input.key)?);
        let opts = PutOptions {
            headers: stored_headers!(input),
            content_type: input.content_type,
            user_meta: user_metadata(input.metadata)?,
            lineage,
            ..Default::default()
        };
        let checksum = upload_checksum(
            input.checksum_algorithm.as_ref(),
            input.checksum_type.as_ref(),
        )?;
        let upload_id = self
            .services
            .objects
            .create_multipart_upload(&bucket, &key, opts, checksum)
            .await
            .map_err(s3_error)?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(upload_id),
            checksum_algorithm: checksum.map(|(a, _)| a.name().to_string().into()),
            checksum_type: checksum.map(|(_, t)| t.name().to_string().into()),
            ..Default::default()
        }))
    }

    pub(super) async fn store_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let input = req.input;
        let (bucket, key) = (bucket_name(&input.bucket)?, object_key(&input.key)?);
        let part_number = u32::try_from(input.part_number)
            .map_err(|_| s3_error(ObjectError::InvalidPartNumber(0)))?;
        check_announced_length(input.content_length)?;
        let md5 = content_md5(&req.headers)?;
        let checksum =
            checksum::requested(&sent_checksums!(input), &req.headers, req.trailing_headers)?;
        let mut body = body_reader(input.body);
        let part = self
            .services
            .objects
            .upload_part(
                (&bucket, &key, &input.upload_id),
                part_number,
                &mut body,
                md5,
                checksum,
            )
            .await
            .map_err(s3_error)?;
        let mut output = UploadPartOutput {
            e_tag: Some(ETag::Strong(part.etag)),
            ..Default::default()
        };
        answer_checksum!(output, part.checksum.as_ref());
        Ok(S3Response::new(output))
    }

    pub(super) async fn copy_part(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let input = req.input;
        let (bucket, key) = (bucket_name(&input.bucket)?, object_key(&input.key)?);
        let part_number = u32::try_from(input.part_number)
            .map_err(|_| s3_error(ObjectError::InvalidPartNumber(0)))?;
        let (src_bucket, src_key) = copy_source(&input.copy_source)?;
        let range = input
            .copy_source_range
            .as_deref()
            .map(copy_range)
            .transpose()?;
        let conditions = source_conditions!(input);
        let part = self
            .services
            .objects
            .upload_part_copy(
                (&bucket, &key, &input.upload_id),
                part_number,
                (&src_bucket, &src_key),
                range,
                &conditions,
            )
            .await
            .map_err(s3_error)?;
        let mut result = CopyPartResult {
            e_tag: Some(ETag::Strong(part.etag)),
            last_modified: Some(timestamp(part.last_modified_ms)),
            ..Default::default()
        };
        answer_checksum!(result, part.checksum.as_ref());
        Ok(S3Response::new(UploadPartCopyOutput {
            copy_part_result: Some(result),
            ..Default::default()
        }))
    }

    pub(super) async fn complete_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let lineage = lineage(&req);
        let input = req.input;
        let (bucket, key) = (bucket_name(&input.bucket)?, object_key(&input.key)?);
        let condition = write_condition(input.if_match.as_ref(), input.if_none_match.as_ref())?;
        let parts = input
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default()
            .into_iter()
            .map(|p| {
                let number = p.part_number.and_then(|n| u32::try_from(n).ok());
                let listed = checksum::listed(&sent_checksums!(p))?;
                match (number, p.e_tag) {
                    (Some(n), Some(tag)) => Ok(CompletedPart {
                        part_number: n,
                        etag: tag.value().to_string(),
                        checksum: listed,
                    }),
                    _ => Err(S3Error::with_message(
                        S3ErrorCode::MalformedXML,
                        "every <Part> needs a <PartNumber> of 1 or more and an <ETag>",
                    )),
                }
            })
            .collect::<S3Result<Vec<_>>>()?;
        let meta = self
            .services
            .objects
            .complete_multipart_upload(&bucket, &key, &input.upload_id, &parts, lineage, condition)
            .await
            .map_err(s3_error)?;
        let mut output = CompleteMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            e_tag: Some(etag(&meta)),
            location: Some(format!("/{bucket}/{key}")),
            ..Default::default()
        };
        answer_checksum!(output, meta.checksum.as_ref());
        output.checksum_type = checksum::answered(meta.checksum.as_ref()).1;
        Ok(S3Response::new(output))
    }

    pub(super) async fn abort_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let input = req.input;
        let (bucket, key) = (bucket_name(&input.bucket)?, object_key(&input.key)?);
        self.services
            .objects
            .abort_multipart_upload(&bucket, &key, &input.upload_id)
            .await
            .map_err(s3_error)?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    pub(super) async fn parts_page(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let input = req.input;
        let (bucket, key) = (bucket_name(&input.bucket)?, object_key(&input.key)?);
        let mut parts = self
            .services
            .objects
            .list_parts(&bucket, &key, &input.upload_id)
            .await
            .map_err(s3_error)?;
        parts.sort_by_key(|p| p.part_number);
        let limit = page_size(input.max_parts, "max-parts")?;
        let marker = input.part_number_marker.unwrap_or(0);
        let (parts, truncated) = one_page(
            parts,
            |p| i64::from(p.part_number) > i64::from(marker),
            limit,
        );
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            is_truncated: Some(truncated),
            max_parts: Some(limit as i32),
            part_number_marker: input.part_number_marker,
            next_part_number_marker: parts
                .last()
                .filter(|_| truncated)
                .map(|p| p.part_number as i32),
            owner: Some(owner()),
            parts: Some(
                parts
                    .into_iter()
                    .map(|p| {
                        let mut part = Part {
                            e_tag: Some(ETag::Strong(p.etag)),
                            last_modified: Some(timestamp(p.last_modified_ms)),
                            part_number: Some(p.part_number as i32),
                            size: Some(p.size as i64),
                            ..Default::default()
                        };
                        answer_checksum!(part, p.checksum.as_ref());
                        part
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }

    pub(super) async fn uploads_page(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let principal = signer(&req)?;
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let mut uploads: Vec<_> = self
            .services
            .objects
            .list_multipart_uploads(&bucket)
            .await
            .map_err(s3_error)?
            .into_iter()
            .filter(|u| u.key.as_str().starts_with(&prefix))
            .filter(|u| principal.lists_key(bucket.as_str(), u.key.as_str()))
            .collect();
        // S3's order: by key, then by when each upload began.
        uploads.sort_by(|a, b| {
            (a.key.as_str(), a.created_ms, &a.upload_id).cmp(&(
                b.key.as_str(),
                b.created_ms,
                &b.upload_id,
            ))
        });
        let limit = page_size(input.max_uploads, "max-uploads")?;
        // After the key marker; with an upload id marker, after that upload of the marker's key.
        let resume = match (&input.key_marker, &input.upload_id_marker) {
            (Some(key), Some(id)) => uploads
                .iter()
                .position(|u| u.key.as_str() == key && &u.upload_id == id)
                .map_or(0, |i| i + 1),
            (Some(key), None) => uploads.partition_point(|u| u.key.as_str() <= key.as_str()),
            (None, _) => 0,
        };
        let rest = uploads.split_off(resume);
        let (uploads, truncated) = one_page(rest, |_| true, limit);
        let last = uploads.last().filter(|_| truncated);
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix,
            is_truncated: Some(truncated),
            max_uploads: Some(limit as i32),
            key_marker: input.key_marker,
            upload_id_marker: input.upload_id_marker,
            next_key_marker: last.map(|u| u.key.to_string()),
            next_upload_id_marker: last.map(|u| u.upload_id.clone()),
            uploads: Some(
                uploads
                    .into_iter()
                    .map(|u| MultipartUpload {
                        initiated: Some(timestamp(u.created_ms)),
                        key: Some(u.key.to_string()),
                        upload_id: Some(u.upload_id),
                        owner: Some(owner()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }
}

/// The checksum CreateMultipartUpload asks for (`x-amz-checksum-algorithm`, and
/// `x-amz-checksum-type` or the algorithm's default type).
fn upload_checksum(
    algorithm: Option<&s3s::dto::ChecksumAlgorithm>,
    kind: Option<&s3s::dto::ChecksumType>,
) -> S3Result<Option<(ChecksumAlgorithm, ChecksumType)>> {
    let invalid = |what: &str, value: &str, accepted: &str| {
        S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            format!("{what} {value:?} is not one S3 offers; use {accepted}"),
        )
    };
    let kind = kind
        .map(|k| {
            ChecksumType::from_name(k.as_str()).ok_or_else(|| {
                invalid(
                    "x-amz-checksum-type",
                    k.as_str(),
                    "FULL_OBJECT or COMPOSITE",
                )
            })
        })
        .transpose()?;
    let Some(algorithm) = algorithm else {
        return match kind {
            None => Ok(None),
            Some(_) => Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "x-amz-checksum-type needs an x-amz-checksum-algorithm",
            )),
        };
    };
    let algorithm = ChecksumAlgorithm::from_name(algorithm.as_str()).ok_or_else(|| {
        invalid(
            "x-amz-checksum-algorithm",
            algorithm.as_str(),
            "CRC32, CRC32C, CRC64NVME, SHA1 or SHA256",
        )
    })?;
    Ok(Some((algorithm, kind.unwrap_or(algorithm.default_type()))))
}

/// `x-amz-copy-source-range: bytes=FIRST-LAST`, both given, as S3 requires.
fn copy_range(text: &str) -> S3Result<(u64, u64)> {
    let parsed = text.trim().strip_prefix("bytes=").and_then(|r| {
        let (first, last) = r.split_once('-')?;
        Some((first.parse::<u64>().ok()?, last.parse::<u64>().ok()?))
    });
    match parsed {
        Some((first, last)) if first <= last => Ok((first, last)),
        _ => Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            format!(
                "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy; got {text:?}"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_ranges_name_both_ends() {
        assert_eq!(copy_range("bytes=0-9").unwrap(), (0, 9));
        assert_eq!(copy_range("bytes=5-5").unwrap(), (5, 5));
        for bad in ["bytes=5-", "bytes=-5", "bytes=9-0", "0-9", "bytes=a-b", ""] {
            let error = copy_range(bad).unwrap_err();
            assert_eq!(*error.code(), S3ErrorCode::InvalidArgument, "{bad}");
        }
    }

    #[test]
    fn an_upload_asks_for_an_algorithm_and_a_type_s3_offers() {
        let alg = |a: &str| s3s::dto::ChecksumAlgorithm::from(a.to_string());
        let kind = |k: &str| s3s::dto::ChecksumType::from(k.to_string());
        assert_eq!(upload_checksum(None, None).unwrap(), None);
        assert_eq!(
            upload_checksum(Some(&alg("CRC32")), None).unwrap(),
            Some((ChecksumAlgorithm::Crc32, ChecksumType::Composite))
        );
        assert_eq!(
            upload_checksum(Some(&alg("CRC64NVME")), None).unwrap(),
            Some((ChecksumAlgorithm::Crc64Nvme, ChecksumType::FullObject))
        );
        assert_eq!(
            upload_checksum(Some(&alg("CRC32C")), Some(&kind("FULL_OBJECT"))).unwrap(),
            Some((ChecksumAlgorithm::Crc32c, ChecksumType::FullObject))
        );
        assert!(upload_checksum(Some(&alg("MD5")), None).is_err());
        assert!(upload_checksum(Some(&alg("CRC32")), Some(&kind("PARTIAL"))).is_err());
        assert!(upload_checksum(None, Some(&kind("COMPOSITE"))).is_err());
    }
}
