//! The object store's data types.

use std::collections::BTreeMap;

use eddy_core::{BucketName, Lineage, ObjectKey};

/// The largest single PUT, as in S3.
pub const MAX_PUT_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// The smallest part of a multipart upload, except the last, as in S3.
pub const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;
/// The highest part number, as in S3.
pub const MAX_PART_NUMBER: u32 = 10_000;
/// The most keys (and common prefixes) one list page returns, as in S3.
pub const MAX_LIST_KEYS: usize = 1000;

/// An object's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    pub bucket: BucketName,
    pub key: ObjectKey,
    pub size: u64,
    /// Unquoted: MD5 hex, or `hex-N` for a multipart upload of N parts.
    pub etag: String,
    pub sha256: String,
    pub content_type: Option<String>,
    /// `x-amz-meta-*` values, by name without the prefix.
    pub user_meta: BTreeMap<String, String>,
    pub last_modified_ms: i64,
    /// The journal sequence number of the change that wrote this version: increasing per key.
    pub sequencer: u64,
}

/// What a delete removed, and the sequence number of its `ObjectRemoved:Delete` event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removed {
    pub old: ObjectMeta,
    pub seq: u64,
}

#[derive(Clone, Debug, Default)]
pub struct PutOptions {
    pub content_type: Option<String>,
    pub user_meta: BTreeMap<String, String>,
    /// The MD5 the client says the body has (decoded `Content-MD5`); checked before commit.
    pub content_md5: Option<[u8; 16]>,
    /// Refuse bodies larger than this; defaults to [`MAX_PUT_BYTES`].
    pub max_size: Option<u64>,
    /// Refuse bodies smaller than this (a POST policy's `content-length-range`).
    pub min_size: Option<u64>,
    pub lineage: Lineage,
    /// Write only if this holds when the write commits (S3's conditional writes).
    pub condition: Option<WriteCondition>,
}

/// What must hold of the key for a conditional write to go ahead, checked in the write's own
/// transaction (so two racing writers cannot both pass).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteCondition {
    /// `If-None-Match: *`: the key holds no object.
    Absent,
    /// `If-Match: ETAG`: the key holds an object with this ETag (without quotes).
    Matches(String),
}

/// A byte range as an HTTP `Range: bytes=` header states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// `first-last`, inclusive; `last` beyond the end is clamped.
    FromTo(u64, u64),
    /// `first-`
    From(u64),
    /// `-n`: the last n bytes.
    Suffix(u64),
}

impl ByteRange {
    /// The inclusive start and exclusive end within an object of `size` bytes.
    pub fn resolve(self, size: u64) -> Option<(u64, u64)> {
        let (start, end) = match self {
            ByteRange::FromTo(first, last) if first <= last => {
                (first, last.saturating_add(1).min(size))
            }
            ByteRange::FromTo(..) => return None,
            ByteRange::From(first) => (first, size),
            ByteRange::Suffix(0) => return None,
            ByteRange::Suffix(n) => (size.saturating_sub(n), size),
        };
        (start < end).then_some((start, end))
    }
}

/// How an object copy treats metadata.
#[derive(Clone, Debug, Default)]
pub enum MetadataDirective {
    /// Keep the source's content type and user metadata.
    #[default]
    Copy,
    /// Use these instead.
    Replace {
        content_type: Option<String>,
        user_meta: BTreeMap<String, String>,
    },
}

/// Where a listing resumes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListPosition {
    /// Strictly after this key (S3's `start-after` and `marker`).
    After(String),
    /// At this key or later (after a common prefix: past every key under it).
    From(String),
}

impl ListPosition {
    /// An opaque continuation token for this position.
    pub fn token(&self) -> String {
        let (tag, key) = match self {
            ListPosition::After(k) => ('a', k),
            ListPosition::From(k) => ('f', k),
        };
        format!("{tag}{}", hex::encode(key))
    }

    /// Reads a token made by [`ListPosition::token`].
    pub fn from_token(token: &str) -> Option<Self> {
        let mut chars = token.chars();
        let tag = chars.next()?;
        let key = String::from_utf8(hex::decode(chars.as_str()).ok()?).ok()?;
        match tag {
            'a' => Some(ListPosition::After(key)),
            'f' => Some(ListPosition::From(key)),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct ListParams {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub start: Option<ListPosition>,
    /// At most [`MAX_LIST_KEYS`]; larger values are lowered to it.
    pub max_keys: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    pub objects: Vec<ObjectMeta>,
    pub common_prefixes: Vec<String>,
    /// Where the next page starts, when this one is truncated.
    pub next: Option<ListPosition>,
}

impl ListPage {
    pub fn is_truncated(&self) -> bool {
        self.next.is_some()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketInfo {
    pub name: BucketName,
    pub created_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadInfo {
    pub upload_id: String,
    pub bucket: BucketName,
    pub key: ObjectKey,
    pub created_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartInfo {
    pub part_number: u32,
    pub size: u64,
    pub etag: String,
    pub last_modified_ms: i64,
}

/// One rule of a bucket's CORS configuration, as S3 has them: which origins may use which
/// methods with which request headers, which response headers they may read, and how long a
/// browser may cache the answer to its preflight.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CorsRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    #[serde(default)]
    pub expose_headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<i32>,
}

/// The most rules a bucket's CORS configuration holds, as in S3.
pub const MAX_CORS_RULES: usize = 100;

/// What garbage collection removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    pub blobs_removed: u64,
    pub bytes_removed: u64,
}
