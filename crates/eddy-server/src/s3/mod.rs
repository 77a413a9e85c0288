//! The S3 API: `s3s` parses, authenticates and answers the wire protocol; this module maps
//! each operation onto the object store. Bodies stream in both directions.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use eddy_core::{BucketName, ObjectKey};
use eddy_objects::{
    ByteRange, ListPage, ListParams, ListPosition, ObjectError, ObjectMeta, PutOptions,
    SourceConditions, WriteCondition,
};
use futures_util::{StreamExt, TryStreamExt};
use s3s::dto::*;
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use tokio::io::AsyncRead;

use crate::Shared;
use crate::checksum;
use crate::error::s3_error;
use crate::s3_access::signer;

/// S3 limits user metadata (names and values of `x-amz-meta-*`) to 2 KB in all.
const MAX_USER_METADATA_BYTES: usize = 2048;

/// The size of the chunks an object is read and sent in: large enough that a big download
/// costs few reads and writes, small enough that many downloads at once stay cheap.
const READ_CHUNK: usize = 256 * 1024;

/// The owner every bucket and object reports: eddy has one account.
const OWNER_ID: &str = "eddy";

/// Virtual-hosted-style addressing: `BUCKET.localhost[:port]` (most systems resolve
/// `*.localhost` to the loopback address) or `BUCKET.NAME` for a name given with `--host`
/// names the bucket. Every other host is path-style.
pub struct VirtualHosts(pub crate::Hosts);

impl s3s::host::S3Host for VirtualHosts {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<s3s::host::VirtualHost<'a>> {
        let vhost = s3s::host::VirtualHost::new(host);
        Ok(match self.0.bucket_of(host) {
            Some(bucket) => vhost.with_bucket(bucket),
            None => vhost,
        })
    }
}

pub struct EddyS3 {
    services: Shared,
}

impl EddyS3 {
    pub fn new(services: Shared) -> Self {
        Self { services }
    }
}

pub(crate) fn bucket_name(name: &str) -> S3Result<BucketName> {
    BucketName::new(name)
        .map_err(|e| S3Error::with_message(S3ErrorCode::InvalidBucketName, e.to_string()))
}

pub(crate) fn object_key(key: &str) -> S3Result<ObjectKey> {
    ObjectKey::new(key).map_err(|e| {
        let code = if key.len() > 1024 {
            S3ErrorCode::KeyTooLongError
        } else {
            S3ErrorCode::InvalidArgument
        };
        S3Error::with_message(code, e.to_string())
    })
}

/// Milliseconds since the epoch of an HTTP date (whole seconds).
fn epoch_ms(t: &Timestamp) -> i64 {
    let mut text = Vec::new();
    let _ = t.format(TimestampFormat::EpochSeconds, &mut text);
    let seconds: f64 = String::from_utf8_lossy(&text).parse().unwrap_or(0.0);
    (seconds * 1000.0) as i64
}

fn timestamp(ms: i64) -> Timestamp {
    Timestamp::from(SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
}

pub(crate) fn etag(meta: &ObjectMeta) -> ETag {
    ETag::Strong(meta.etag.clone())
}

fn owner() -> Owner {
    Owner {
        display_name: Some(OWNER_ID.into()),
        id: Some(OWNER_ID.into()),
    }
}

/// The lineage of a write: believed from a function's own credentials only.
fn lineage<T>(req: &S3Request<T>) -> eddy_core::Lineage {
    crate::auth::lineage_of(&req.headers, req.extensions.get())
}

/// The decoded `Content-MD5` header: 16 bytes in base64.
/// The request's `Content-MD5`, from its header as sent: an empty one is refused, as AWS
/// refuses it (s3s reads an empty header as none).
fn content_md5(headers: &hyper::HeaderMap) -> S3Result<Option<[u8; 16]>> {
    use base64::Engine;
    let Some(value) = headers.get("content-md5") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|text| {
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .ok()
        })
        .and_then(|bytes| <[u8; 16]>::try_from(bytes).ok())
        .map(Some)
        .ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::InvalidDigest,
                "Content-MD5 must be the base64 of the body's 16-byte MD5 digest",
            )
        })
}

pub(crate) fn user_metadata(metadata: Option<Metadata>) -> S3Result<BTreeMap<String, String>> {
    let metadata: BTreeMap<String, String> = metadata.unwrap_or_default().into_iter().collect();
    let size: usize = metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_USER_METADATA_BYTES {
        return Err(S3Error::with_message(
            S3ErrorCode::MetadataTooLarge,
            format!(
                "the x-amz-meta-* headers hold {size} bytes; at most {MAX_USER_METADATA_BYTES} are allowed"
            ),
        ));
    }
    Ok(metadata)
}

/// Refuses a body whose announced length is over the limit before reading any of it.
fn check_announced_length(length: Option<i64>) -> S3Result<()> {
    let limit = eddy_objects::MAX_PUT_BYTES;
    match length {
        Some(n) if n as u64 > limit => Err(s3_error(ObjectError::TooLarge { limit })),
        _ => Ok(()),
    }
}

/// The condition of a conditional write, as AWS takes it: `If-None-Match: *` (create only) or
/// `If-Match: ETAG` (replace only that version).
fn write_condition(
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<Option<WriteCondition>> {
    match (if_match, if_none_match) {
        (None, None) => Ok(None),
        (None, Some(ETagCondition::Any)) => Ok(Some(WriteCondition::Absent)),
        (Some(ETagCondition::ETag(tag)), None) => {
            Ok(Some(WriteCondition::Matches(tag.value().to_string())))
        }
        (None, Some(ETagCondition::ETag(_))) => Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "If-None-Match on a write takes only *",
        )),
        (Some(ETagCondition::Any), None) => Ok(Some(WriteCondition::Exists)),
        (Some(_), Some(_)) => Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "a write takes If-Match or If-None-Match, not both",
        )),
    }
}

/// The standard headers an upload's input carries, to store with the object (PutObject,
/// CreateMultipartUpload and CopyObject name them alike). `aws-chunked` is how the body came,
/// not how it is encoded: it is not kept, as AWS does not keep it.
macro_rules! stored_headers {
    ($input:expr) => {{
        let mut headers = std::collections::BTreeMap::new();
        let encoding = $input.content_encoding.as_deref().map(|e| {
            e.split(',')
                .map(str::trim)
                .filter(|e| !e.eq_ignore_ascii_case("aws-chunked") && !e.is_empty())
                .collect::<Vec<_>>()
                .join(", ")
        });
        let expires = $input.expires.as_ref().and_then(|t| {
            let mut text = Vec::new();
            t.format(TimestampFormat::HttpDate, &mut text).ok()?;
            String::from_utf8(text).ok()
        });
        for (name, value) in [
            ("cache-control", $input.cache_control.clone()),
            ("content-disposition", $input.content_disposition.clone()),
            ("content-encoding", encoding.filter(|e| !e.is_empty())),
            ("content-language", $input.content_language.clone()),
            ("expires", expires),
        ] {
            if let Some(value) = value {
                headers.insert(name.to_string(), value);
            }
        }
        headers
    }};
}

/// A listing's page size (`max-keys`, `max-parts`, `max-uploads`): 1,000 unless the client
/// asks for fewer, as S3 caps it.
fn page_size(requested: Option<i32>, name: &str) -> S3Result<usize> {
    match requested {
        None => Ok(eddy_objects::MAX_LIST_KEYS),
        Some(n) if n >= 0 => Ok((n as usize).min(eddy_objects::MAX_LIST_KEYS)),
        Some(n) => Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            format!("{name} must be 0 or more; got {n}"),
        )),
    }
}

/// The first `limit` of the `items` (in order) that `after_marker` keeps, and whether more
/// remain.
fn one_page<T>(items: Vec<T>, after_marker: impl Fn(&T) -> bool, limit: usize) -> (Vec<T>, bool) {
    let mut kept: Vec<T> = items.into_iter().filter(|i| after_marker(i)).collect();
    let truncated = kept.len() > limit;
    kept.truncate(limit);
    (kept, truncated)
}

/// The checksums an upload's input carries (PutObject and UploadPart name them alike).
macro_rules! sent_checksums {
    ($input:expr) => {
        Checksum {
            checksum_crc32: $input.checksum_crc32,
            checksum_crc32c: $input.checksum_crc32c,
            checksum_crc64nvme: $input.checksum_crc64nvme,
            checksum_sha1: $input.checksum_sha1,
            checksum_sha256: $input.checksum_sha256,
            ..Default::default()
        }
    };
}

/// Sets the `checksum_*` fields of an answer (any output with them) to a stored checksum.
macro_rules! answer_checksum {
    ($output:expr, $sum:expr) => {{
        let (fields, _) = checksum::answered($sum);
        $output.checksum_crc32 = fields.checksum_crc32;
        $output.checksum_crc32c = fields.checksum_crc32c;
        $output.checksum_crc64nvme = fields.checksum_crc64nvme;
        $output.checksum_sha1 = fields.checksum_sha1;
        $output.checksum_sha256 = fields.checksum_sha256;
    }};
}

/// The `x-amz-copy-source-if-*` conditions of a copy's input (CopyObject, UploadPartCopy).
macro_rules! source_conditions {
    ($input:expr) => {{
        let tag = |c: Option<ETagCondition>| {
            c.map(|c| match c {
                ETagCondition::Any => "*".to_string(),
                ETagCondition::ETag(tag) => tag.value().to_string(),
            })
        };
        SourceConditions {
            if_match: tag($input.copy_source_if_match),
            if_none_match: tag($input.copy_source_if_none_match),
            if_modified_since_ms: $input.copy_source_if_modified_since.as_ref().map(epoch_ms),
            if_unmodified_since_ms: $input
                .copy_source_if_unmodified_since
                .as_ref()
                .map(epoch_ms),
        }
    }};
}

/// eddy keeps one version of each object, which S3 calls `null` in an unversioned bucket: a
/// request may name that version, and no other.
fn only_null_version(version_id: Option<&str>) -> S3Result<()> {
    match version_id {
        None | Some("null") => Ok(()),
        Some(id) => Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            format!(
                "Invalid version id specified: {:?}; eddy keeps no versions, so only \"null\" names one",
                id.chars().take(64).collect::<String>()
            ),
        )),
    }
}

/// The object `x-amz-copy-source` names.
fn copy_source(source: &CopySource) -> S3Result<(BucketName, ObjectKey)> {
    match source {
        CopySource::Bucket {
            bucket,
            key,
            version_id: None,
        } => Ok((bucket_name(bucket)?, object_key(key)?)),
        _ => Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "x-amz-copy-source must be BUCKET/KEY (eddy keeps no versions or access points)",
        )),
    }
}

/// A request body as a reader; a missing body reads as empty.
fn body_reader(body: Option<StreamingBlob>) -> impl AsyncRead + Send + Unpin {
    let stream = futures_util::stream::iter(body)
        .flatten()
        .map_err(std::io::Error::other);
    tokio_util::io::StreamReader::new(stream)
}

/// The bytes of part `number` of an object (GetObject's `partNumber`): an object that was
/// not assembled from parts is its own part 1.
fn part_range(meta: &ObjectMeta, number: i32) -> S3Result<ByteRange> {
    let sizes: &[u64] = if meta.part_sizes.is_empty() {
        &[meta.size]
    } else {
        &meta.part_sizes
    };
    if !(1..=eddy_objects::MAX_PART_NUMBER as i32).contains(&number) {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive",
        ));
    }
    let index = number as usize - 1;
    if index >= sizes.len() {
        // What S3 answers (400 InvalidPart), as ceph/s3-tests checks it.
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidPart,
            format!(
                "part {number} is not a part of this object: it has {} part(s), numbered from 1",
                sizes.len()
            ),
        ));
    }
    let start: u64 = sizes[..index].iter().sum();
    Ok(match sizes[index] {
        0 => ByteRange::From(start),
        size => ByteRange::FromTo(start, start + size - 1),
    })
}

fn byte_range(range: Range) -> ByteRange {
    match range {
        Range::Int {
            first,
            last: Some(last),
        } => ByteRange::FromTo(first, last),
        Range::Int { first, last: None } => ByteRange::From(first),
        Range::Suffix { length } => ByteRange::Suffix(length),
    }
}

/// HTTP dates carry whole seconds; compare modification times at that precision.
fn modified_after(meta: &ObjectMeta, since: &Timestamp) -> bool {
    timestamp(meta.last_modified_ms / 1000 * 1000) > *since
}

fn condition_matches(condition: &ETagCondition, meta: &ObjectMeta) -> bool {
    match condition {
        ETagCondition::Any => true,
        ETagCondition::ETag(tag) => tag.value() == meta.etag,
    }
}

/// The conditional headers of a GET or HEAD, checked in the order RFC 9110 §13.2.2 gives.
fn check_preconditions(
    meta: &ObjectMeta,
    if_match: Option<&ETagCondition>,
    if_unmodified_since: Option<&Timestamp>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
) -> S3Result<()> {
    // As AWS answers: a 304 or 412 still names the version it is about.
    let failed = |code| {
        let mut error = S3Error::new(code);
        let mut headers = hyper::HeaderMap::new();
        if let Ok(value) = format!("\"{}\"", meta.etag).parse() {
            headers.insert(hyper::header::ETAG, value);
        }
        let mut date = Vec::new();
        if timestamp(meta.last_modified_ms)
            .format(TimestampFormat::HttpDate, &mut date)
            .is_ok()
            && let Ok(value) = hyper::header::HeaderValue::from_bytes(&date)
        {
            headers.insert(hyper::header::LAST_MODIFIED, value);
        }
        error.set_headers(headers);
        Err(error)
    };
    match if_match {
        Some(c) if !condition_matches(c, meta) => return failed(S3ErrorCode::PreconditionFailed),
        None if if_unmodified_since.is_some_and(|t| modified_after(meta, t)) => {
            return failed(S3ErrorCode::PreconditionFailed);
        }
        _ => {}
    }
    match if_none_match {
        Some(c) if condition_matches(c, meta) => failed(S3ErrorCode::NotModified),
        None if if_modified_since.is_some_and(|t| !modified_after(meta, t)) => {
            failed(S3ErrorCode::NotModified)
        }
        _ => Ok(()),
    }
}

#[async_trait::async_trait]
impl S3 for EddyS3 {
    /// The buckets the signer's principal reaches (all of them, for the root).
    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let principal = signer(&req)?;
        let mut buckets = self
            .services
            .objects
            .list_buckets()
            .await
            .map_err(s3_error)?;
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        buckets.retain(|b| {
            principal.reaches_bucket(b.name.as_str()) && b.name.as_str().starts_with(&prefix)
        });
        // Pages by name, as S3's max-buckets and continuation-token do (the token is the last
        // name of the page before).
        let after = input.continuation_token.clone().unwrap_or_default();
        let limit = match input.max_buckets {
            None => usize::MAX,
            Some(n @ 1..=10_000) => n as usize,
            Some(n) => {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidArgument,
                    format!("max-buckets must be 1 to 10000; got {n}"),
                ));
            }
        };
        let (buckets, truncated) = one_page(buckets, |b| b.name.as_str() > after.as_str(), limit);
        Ok(S3Response::new(ListBucketsOutput {
            continuation_token: buckets
                .last()
                .filter(|_| truncated)
                .map(|b| b.name.to_string()),
            prefix: input.prefix,
            buckets: Some(
                buckets
                    .into_iter()
                    .map(|b| Bucket {
                        name: Some(b.name.to_string()),
                        creation_date: Some(timestamp(b.created_ms)),
                        bucket_region: Some(eddy_events::REGION.into()),
                    })
                    .collect(),
            ),
            owner: Some(owner()),
        }))
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let name = bucket_name(&req.input.bucket)?;
        self.services
            .objects
            .create_bucket(&name)
            .await
            .map_err(s3_error)?;
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{name}")),
        }))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        let name = bucket_name(&req.input.bucket)?;
        if !self
            .services
            .objects
            .bucket_exists(&name)
            .await
            .map_err(s3_error)?
        {
            return Err(s3_error(ObjectError::NoSuchBucket(name.to_string())));
        }
        Ok(S3Response::new(HeadBucketOutput {
            bucket_region: Some(eddy_events::REGION.into()),
            ..Default::default()
        }))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.head_bucket(req.map_input(|i| HeadBucketInput {
            bucket: i.bucket,
            expected_bucket_owner: i.expected_bucket_owner,
        }))
        .await?;
        // us-east-1 is reported as an empty location, as S3 does.
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        let name = bucket_name(&req.input.bucket)?;
        self.services
            .objects
            .delete_bucket(&name)
            .await
            .map_err(s3_error)?;
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    async fn put_bucket_cors(
        &self,
        req: S3Request<PutBucketCorsInput>,
    ) -> S3Result<S3Response<PutBucketCorsOutput>> {
        let bucket = bucket_name(&req.input.bucket)?;
        let rules: Vec<eddy_objects::CorsRule> = req
            .input
            .cors_configuration
            .cors_rules
            .into_iter()
            .map(|r| eddy_objects::CorsRule {
                id: r.id,
                allowed_origins: r.allowed_origins,
                allowed_methods: r.allowed_methods,
                allowed_headers: r.allowed_headers.unwrap_or_default(),
                expose_headers: r.expose_headers.unwrap_or_default(),
                max_age_seconds: r.max_age_seconds,
            })
            .collect();
        crate::cors::check(&rules)
            .map_err(|e| S3Error::with_message(S3ErrorCode::InvalidRequest, e))?;
        self.services
            .objects
            .put_bucket_cors(&bucket, &rules)
            .await
            .map_err(s3_error)?;
        Ok(S3Response::new(PutBucketCorsOutput {}))
    }

    async fn get_bucket_cors(
        &self,
        req: S3Request<GetBucketCorsInput>,
    ) -> S3Result<S3Response<GetBucketCorsOutput>> {
        let bucket = bucket_name(&req.input.bucket)?;
        let rules = self
            .services
            .objects
            .bucket_cors(&bucket)
            .await
            .map_err(s3_error)?
            .ok_or_else(|| {
                S3Error::with_message(
                    S3ErrorCode::NoSuchCORSConfiguration,
                    "The CORS configuration does not exist",
                )
            })?;
        let none_if_empty = |v: Vec<String>| (!v.is_empty()).then_some(v);
        Ok(S3Response::new(GetBucketCorsOutput {
            cors_rules: Some(
                rules
                    .into_iter()
                    .map(|r| CORSRule {
                        id: r.id,
                        allowed_origins: r.allowed_origins,
                        allowed_methods: r.allowed_methods,
                        allowed_headers: none_if_empty(r.allowed_headers),
                        expose_headers: none_if_empty(r.expose_headers),
                        max_age_seconds: r.max_age_seconds,
                    })
                    .collect(),
            ),
        }))
    }

    async fn delete_bucket_cors(
        &self,
        req: S3Request<DeleteBucketCorsInput>,
    ) -> S3Result<S3Response<DeleteBucketCorsOutput>> {
        let bucket = bucket_name(&req.input.bucket)?;
        self.services
            .objects
            .delete_bucket_cors(&bucket)
            .await
            .map_err(s3_error)?;
        Ok(S3Response::new(DeleteBucketCorsOutput {}))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let lineage = lineage(&req);
        let input = req.input;
        let (bucket, key) = (bucket_name(&input.bucket)?, object_key(&input.key)?);
        check_announced_length(input.content_length)?;
        let checksum =
            checksum::requested(&sent_checksums!(input), &req.headers, req.trailing_headers)?;
        let opts = PutOptions {
            condition: write_condition(input.if_match.as_ref(), input.if_none_match.as_ref())?,
            headers: stored_headers!(input),
            content_type: input.content_type,
            user_meta: user_metadata(input.metadata)?,
            content_md5: content_md5(&req.headers)?,
            checksum,
            lineage,
            ..PutOptions::default()
        };
        let mut body = body_reader(input.body);
        let meta = self
            .services
            .objects
            .put_object(&bucket, &key, &mut body, opts)
            .await
            .map_err(s3_error)?;
        let mut output = PutObjectOutput {
            e_tag: Some(etag(&meta)),
            checksum_type: checksum::answered(meta.checksum.as_ref()).1,
            ..Default::default()
        };
        answer_checksum!(output, meta.checksum.as_ref());
        Ok(S3Response::new(output))
    }

    /// HEAD is GET without the body: the same preconditions, range and headers.
    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let get = req.map_input(|i| GetObjectInput {
            bucket: i.bucket,
            key: i.key,
            if_match: i.if_match,
            if_modified_since: i.if_modified_since,
            if_none_match: i.if_none_match,
            if_unmodified_since: i.if_unmodified_since,
            version_id: i.version_id,
            range: i.range,
            part_number: i.part_number,
            checksum_mode: i.checksum_mode,
            ..Default::default()
        });
        let got = self.get_object(get).await?.output;
        Ok(S3Response::new(HeadObjectOutput {
            checksum_crc32: got.checksum_crc32,
            checksum_crc32c: got.checksum_crc32c,
            checksum_crc64nvme: got.checksum_crc64nvme,
            checksum_sha1: got.checksum_sha1,
            checksum_sha256: got.checksum_sha256,
            checksum_type: got.checksum_type,
            parts_count: got.parts_count,
            accept_ranges: got.accept_ranges,
            content_length: got.content_length,
            content_range: got.content_range,
            content_type: got.content_type,
            cache_control: got.cache_control,
            content_disposition: got.content_disposition,
            content_encoding: got.content_encoding,
            content_language: got.content_language,
            expires: got.expires,
            e_tag: got.e_tag,
            last_modified: got.last_modified,
            metadata: got.metadata,
            ..Default::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        let (bucket, key) = (bucket_name(&input.bucket)?, object_key(&input.key)?);
        only_null_version(input.version_id.as_deref())?;
        let objects = &self.services.objects;
        let meta = objects.head_object(&bucket, &key).await.map_err(s3_error)?;
        check_preconditions(
            &meta,
            input.if_match.as_ref(),
            input.if_unmodified_since.as_ref(),
            input.if_none_match.as_ref(),
            input.if_modified_since.as_ref(),
        )?;
        let range = match (input.part_number, input.range) {
            (None, range) => range.map(byte_range),
            (Some(_), Some(_)) => {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidRequest,
                    "Cannot specify both Range header and partNumber query parameter",
                ));
            }
            (Some(number), None) => Some(part_range(&meta, number)?),
        };
        let body = objects
            .get_object(&bucket, &key, range)
            .await
            .map_err(s3_error)?;
        if body.meta.etag != meta.etag {
            // Replaced between the check and the open: the check no longer says anything.
            return Err(S3Error::with_message(
                S3ErrorCode::PreconditionFailed,
                "the object changed while the request was checked; retry it",
            ));
        }
        let (start, end) = body.range;
        let content_range =
            range.map(|_| format!("bytes {start}-{}/{}", end.saturating_sub(1), meta.size));
        // A checksum describes the whole object: it is answered (when asked for) only with it.
        let whole = range.is_none() && input.checksum_mode.is_some_and(|m| m.as_str() == "ENABLED");
        let (sums, checksum_type) = checksum::answered(meta.checksum.as_ref().filter(|_| whole));
        let stream = tokio_util::io::ReaderStream::with_capacity(body.into_reader(), READ_CHUNK);
        Ok(S3Response::new(GetObjectOutput {
            checksum_crc32: sums.checksum_crc32,
            checksum_crc32c: sums.checksum_crc32c,
            checksum_crc64nvme: sums.checksum_crc64nvme,
            checksum_sha1: sums.checksum_sha1,
            checksum_sha256: sums.checksum_sha256,
            checksum_type,
            parts_count: input
                .part_number
                .filter(|_| !meta.part_sizes.is_empty())
                .map(|_| meta.part_sizes.len() as i32),
            accept_ranges: Some("bytes".into()),
            body: Some(StreamingBlob::wrap(stream)),
            content_length: Some((end - start) as i64),
            content_range,
            // What AWS answers for an object stored without a type.
            content_type: Some(
                meta.content_type
                    .clone()
                    .unwrap_or_else(|| "binary/octet-stream".into()),
            ),
            e_tag: Some(etag(&meta)),
            last_modified: Some(timestamp(meta.last_modified_ms)),
            metadata: Some(meta.user_meta.clone().into_iter().collect()),
            cache_control: meta.headers.get("cache-control").cloned(),
            content_disposition: meta.headers.get("content-disposition").cloned(),
            content_encoding: meta.headers.get("content-encoding").cloned(),
            content_language: meta.headers.get("content-language").cloned(),
            expires: meta
                .headers
                .get("expires")
                .and_then(|e| Timestamp::parse(TimestampFormat::HttpDate, e).ok()),
            ..Default::default()
        }))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let lineage = lineage(&req);
        let (bucket, key) = (bucket_name(&req.input.bucket)?, object_key(&req.input.key)?);
        only_null_version(req.input.version_id.as_deref())?;
        self.services
            .objects
            .delete_object(&bucket, &key, lineage)
            .await
            .map_err(s3_error)?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let principal = signer(&req)?;
        let lineage = lineage(&req);
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        if input.delete.objects.len() > eddy_objects::MAX_LIST_KEYS {
            return Err(S3Error::with_message(
                S3ErrorCode::MalformedXML,
                format!(
                    "a DeleteObjects request names at most {} keys; got {}",
                    eddy_objects::MAX_LIST_KEYS,
                    input.delete.objects.len()
                ),
            ));
        }
        let quiet = input.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        let permissions = crate::s3_access::S3Permissions(self.services.clone());
        for id in input.delete.objects {
            let allowed = permissions.require(
                &principal,
                "objects:delete",
                &crate::s3_access::resource(bucket.as_str(), Some(&id.key)),
            );
            let named = allowed
                .and_then(|()| only_null_version(id.version_id.as_deref()))
                .and_then(|()| object_key(&id.key));
            let outcome = match named {
                Ok(key) => self
                    .services
                    .objects
                    .delete_object(&bucket, &key, lineage.clone())
                    .await
                    .map(|_| ())
                    .map_err(s3_error),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(()) if quiet => {}
                Ok(()) => deleted.push(DeletedObject {
                    key: Some(id.key),
                    version_id: id.version_id,
                    ..Default::default()
                }),
                Err(e) => errors.push(Error {
                    code: Some(e.code().as_str().to_string()),
                    key: Some(id.key),
                    message: e.message().map(str::to_string),
                    version_id: None,
                }),
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: Some(errors),
            ..Default::default()
        }))
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let lineage = lineage(&req);
        let input = req.input;
        let src = copy_source(&input.copy_source)?;
        let dst = (bucket_name(&input.bucket)?, object_key(&input.key)?);
        let replace = input
            .metadata_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        let directive = if replace {
            eddy_objects::MetadataDirective::Replace {
                headers: stored_headers!(input),
                content_type: input.content_type,
                user_meta: user_metadata(input.metadata)?,
            }
        } else {
            eddy_objects::MetadataDirective::Copy
        };
        let conditions = source_conditions!(input);
        let meta = self
            .services
            .objects
            .copy_object(
                (&src.0, &src.1),
                (&dst.0, &dst.1),
                directive,
                conditions,
                lineage,
            )
            .await
            .map_err(s3_error)?;
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(etag(&meta)),
                last_modified: Some(timestamp(meta.last_modified_ms)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        self.objects_page(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.objects_page_v2(req).await
    }

    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        self.versions_page(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.start_upload(req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        self.store_part(req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        self.copy_part(req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        self.complete_upload(req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.abort_upload(req).await
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        self.parts_page(req).await
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        self.uploads_page(req).await
    }
}

mod listing;
mod multipart;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_what_follows_the_marker_up_to_the_limit() {
        let after_two = |n: &u32| *n > 2;
        assert_eq!(
            one_page(vec![1, 2, 3, 4, 5], after_two, 2),
            (vec![3, 4], true)
        );
        assert_eq!(
            one_page(vec![1, 2, 3, 4], after_two, 2),
            (vec![3, 4], false)
        );
        assert_eq!(one_page(vec![1, 2], after_two, 2), (vec![], false));
        assert_eq!(page_size(None, "max-parts").unwrap(), 1000);
        assert_eq!(page_size(Some(5000), "max-parts").unwrap(), 1000);
        assert!(page_size(Some(-1), "max-parts").is_err());
    }
}
