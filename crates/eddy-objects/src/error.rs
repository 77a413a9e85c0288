use eddy_bus::BusError;
use eddy_core::{Classify, ErrorKind, InvalidName};
use thiserror::Error;

/// Failures of the object store. Each names the S3 condition it corresponds to.
#[derive(Debug, Error)]
pub enum ObjectError {
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    #[error("At least one of the pre-conditions you specified did not hold: {0}")]
    PreconditionFailed(String),
    #[error(
        "A conflicting operation occurred while the request was being processed ({0}); send it again (a multipart upload: create a new one)"
    )]
    ConditionalRequestConflict(String),
    #[error("bucket {0:?} does not exist")]
    NoSuchBucket(String),
    #[error("bucket {0:?} already exists")]
    BucketAlreadyExists(String),
    #[error("bucket {0:?} is not empty; delete its objects first")]
    BucketNotEmpty(String),
    #[error("object {key:?} does not exist in bucket {bucket:?}")]
    NoSuchKey { bucket: String, key: String },
    #[error("multipart upload {0:?} does not exist (it was completed, aborted, or never created)")]
    NoSuchUpload(String),
    #[error("part {0} was not uploaded, or its ETag does not match the one given")]
    InvalidPart(u32),
    #[error("the part list must be in ascending order of part number without repeats")]
    InvalidPartOrder,
    #[error("part {part} is {size} bytes; every part but the last must be at least {min} bytes")]
    EntityTooSmall { part: u32, size: u64, min: u64 },
    #[error("part numbers are 1 to 10000; got {0}")]
    InvalidPartNumber(u32),
    #[error("a completed multipart upload needs at least one part")]
    NoParts,
    #[error("Range specified is not valid for source object of size: {size}")]
    InvalidCopyRange { size: u64 },
    #[error("the range does not overlap the object's {size} bytes")]
    InvalidRange { size: u64 },
    #[error("the body's MD5 does not match the Content-MD5 that was sent")]
    BadDigest,
    #[error("The {} you specified did not match the calculated checksum.", .0.name())]
    ChecksumMismatch(crate::ChecksumAlgorithm),
    #[error("the body is larger than the {limit} bytes allowed")]
    TooLarge { limit: u64 },
    #[error("the body is {size} bytes, smaller than the {min} bytes required")]
    TooSmall { size: u64, min: u64 },
    #[error("{0}")]
    InvalidRequest(String),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the request body failed: {0}")]
    Body(#[source] std::io::Error),
    #[error(
        "the object's bytes were collected as garbage while it was being stored (identical bytes had been deleted a moment before); nothing was stored: send it again"
    )]
    BlobCollected,
    #[error("{0}")]
    BlobStore(String),
}

impl ObjectError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        ObjectError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

impl Classify for ObjectError {
    fn kind(&self) -> ErrorKind {
        use ObjectError::*;
        match self {
            InvalidName(_)
            | InvalidPart(_)
            | InvalidPartOrder
            | EntityTooSmall { .. }
            | InvalidPartNumber(_)
            | NoParts
            | BadDigest
            | ChecksumMismatch(_)
            | InvalidCopyRange { .. }
            | TooSmall { .. }
            | InvalidRequest(_)
            | Body(_) => ErrorKind::InvalidInput,
            NoSuchBucket(_) | NoSuchKey { .. } | NoSuchUpload(_) => ErrorKind::NotFound,
            BucketAlreadyExists(_) | BucketNotEmpty(_) | ConditionalRequestConflict(_) => {
                ErrorKind::Conflict
            }
            InvalidRange { .. } | PreconditionFailed(_) => ErrorKind::PreconditionFailed,
            TooLarge { .. } => ErrorKind::TooLarge,
            Bus(e) => e.kind(),
            BlobCollected | BlobStore(_) => ErrorKind::Unavailable,
            Io { .. } => ErrorKind::Internal,
        }
    }
}
