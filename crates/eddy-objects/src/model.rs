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
    /// The standard headers it is served with, by lowercase name (see [`STORED_HEADERS`]).
    pub headers: BTreeMap<String, String>,
    /// The checksum it was stored with (none for objects stored before eddy kept them).
    pub checksum: Option<crate::ObjectChecksum>,
    /// The sizes of the parts it was assembled from, in order; empty when it was not
    /// (GetObject's `partNumber`, `x-amz-mp-parts-count`).
    pub part_sizes: Vec<u64>,
    pub last_modified_ms: i64,
    /// The journal sequence number of the change that wrote this version: increasing per key.
    pub sequencer: u64,
    /// Whether its bytes are kept with its metadata (a small object) rather than in a blob.
    pub inline: bool,
}

/// The standard headers an object keeps and is served with, as S3 does: besides its content
/// type and `x-amz-meta-*`, these five.
pub const STORED_HEADERS: [&str; 5] = [
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
];

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
    /// Standard headers to serve the object with (see [`STORED_HEADERS`]).
    pub headers: BTreeMap<String, String>,
    /// The MD5 the client says the body has (decoded `Content-MD5`); checked before commit.
    pub content_md5: Option<[u8; 16]>,
    /// The checksum to store the object with, and the value sent for it (checked before
    /// commit); without one, CRC64NVME, as S3 does.
    pub checksum: Option<crate::ChecksumRequest>,
    /// Refuse bodies larger than this; defaults to [`MAX_PUT_BYTES`].
    pub max_size: Option<u64>,
    /// Refuse bodies smaller than this (a POST policy's `content-length-range`).
    pub min_size: Option<u64>,
    pub lineage: Lineage,
    /// Write only if this holds when the write commits (S3's conditional writes).
    pub condition: Option<WriteCondition>,
}

/// What must hold of a copy's source (S3's `x-amz-copy-source-if-*`), checked in the copy's
/// own transaction against the version it copies. Times are milliseconds since the epoch; HTTP
/// dates carry whole seconds, so modification times are compared at that precision.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceConditions {
    /// An ETag without quotes, or `*`.
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
    pub if_modified_since_ms: Option<i64>,
    pub if_unmodified_since_ms: Option<i64>,
}

impl SourceConditions {
    /// `Ok` when the copy may go ahead, in AWS's order: a matching `if_match` overrides
    /// `if_unmodified_since`, a non-matching `if_none_match` overrides `if_modified_since`.
    pub fn check(&self, source: &ObjectMeta) -> Result<(), crate::ObjectError> {
        let matches = |tag: &String| tag == "*" || *tag == source.etag;
        let modified_s = source.last_modified_ms / 1000;
        let after = |since_ms: i64| modified_s > since_ms / 1000;
        let failed = |what: &str| {
            Err(crate::ObjectError::PreconditionFailed(format!(
                "{what} does not hold of the copy's source (ETag \"{}\")",
                source.etag
            )))
        };
        match &self.if_match {
            Some(tag) if !matches(tag) => return failed("x-amz-copy-source-if-match"),
            None if self.if_unmodified_since_ms.is_some_and(after) => {
                return failed("x-amz-copy-source-if-unmodified-since");
            }
            _ => {}
        }
        match &self.if_none_match {
            Some(tag) if matches(tag) => failed("x-amz-copy-source-if-none-match"),
            None if self.if_modified_since_ms.is_some_and(|t| !after(t)) => {
                failed("x-amz-copy-source-if-modified-since")
            }
            _ => Ok(()),
        }
    }
}

/// What must hold of the key for a conditional write to go ahead, checked in the write's own
/// transaction (so two racing writers cannot both pass).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteCondition {
    /// `If-None-Match: *`: the key holds no object.
    Absent,
    /// `If-Match: *`: the key holds an object, whichever.
    Exists,
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
    /// Keep the source's content type, user metadata and headers.
    #[default]
    Copy,
    /// Use these instead.
    Replace {
        content_type: Option<String>,
        user_meta: BTreeMap<String, String>,
        headers: BTreeMap<String, String>,
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
    /// The checksum of the part's bytes.
    pub checksum: Option<crate::ObjectChecksum>,
    pub last_modified_ms: i64,
}

/// A part a client names when completing an upload: its number, ETag (quotes allowed) and,
/// if the client sent one, the checksum it expects the part to have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletedPart {
    pub part_number: u32,
    pub etag: String,
    pub checksum: Option<(crate::ChecksumAlgorithm, String)>,
}

/// Which bytes of a source an UploadPartCopy takes: all, or an inclusive range
/// (`x-amz-copy-source-range: bytes=first-last`).
pub type CopyRange = Option<(u64, u64)>;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> ObjectMeta {
        ObjectMeta {
            bucket: BucketName::new("src").unwrap(),
            key: ObjectKey::new("k").unwrap(),
            size: 1,
            etag: "abc".into(),
            sha256: String::new(),
            content_type: None,
            user_meta: BTreeMap::new(),
            headers: BTreeMap::new(),
            checksum: None,
            part_sizes: Vec::new(),
            // 10.9 s: compared as 10 s, as HTTP dates carry whole seconds.
            last_modified_ms: 10_900,
            sequencer: 1,
            inline: false,
        }
    }

    #[test]
    fn copy_source_conditions_follow_aws_order() {
        let holds = |c: SourceConditions| c.check(&source()).is_ok();
        let tag = |t: &str| Some(t.to_string());
        assert!(holds(SourceConditions::default()));
        assert!(holds(SourceConditions {
            if_match: tag("abc"),
            ..Default::default()
        }));
        assert!(holds(SourceConditions {
            if_match: tag("*"),
            ..Default::default()
        }));
        assert!(!holds(SourceConditions {
            if_match: tag("x"),
            ..Default::default()
        }));
        assert!(!holds(SourceConditions {
            if_none_match: tag("abc"),
            ..Default::default()
        }));
        assert!(holds(SourceConditions {
            if_none_match: tag("x"),
            ..Default::default()
        }));
        // Modified at 10 s: not after 10 s, after 9 s.
        let since = |ms| SourceConditions {
            if_modified_since_ms: Some(ms),
            ..Default::default()
        };
        assert!(!holds(since(10_000)));
        assert!(holds(since(9_000)));
        let unmodified = |ms| SourceConditions {
            if_unmodified_since_ms: Some(ms),
            ..Default::default()
        };
        assert!(holds(unmodified(10_000)));
        assert!(!holds(unmodified(9_000)));
        // A matching ETag overrides the date; a differing one overrides the other date.
        assert!(holds(SourceConditions {
            if_match: tag("abc"),
            ..unmodified(9_000)
        }));
        assert!(holds(SourceConditions {
            if_none_match: tag("x"),
            ..since(10_000)
        }));
    }
}
