//! eddy's object store: buckets with S3's naming rules, objects whose bytes live in
//! content-addressed blobs on disk, multipart uploads, listing in S3 order, and the object
//! events (`ObjectCreated:*`, `ObjectRemoved:Delete`) committed with each change.
//!
//! Order of work for every change: the bytes stream to a temporary file while SHA-256 and MD5
//! are computed, the file is fsynced and renamed into place, and only then do the metadata and
//! the event commit, together. A crash leaves at most a blob nothing refers to, which
//! [`ObjectStore::collect_garbage`] removes.

mod blobs;
mod checksum;
mod disk;
mod error;
mod index;
mod list;
mod model;
mod multipart;
mod s3;
mod sql;
mod staging;
mod store;

pub use blobs::{BlobInfo, BlobLimits, BlobReader, BlobStore, StoredBlob};
pub use checksum::{
    ChecksumAlgorithm, ChecksumRequest, ChecksumType, ExpectedChecksum, Hasher, ObjectChecksum,
};
pub use disk::DiskBlobs;
pub use error::ObjectError;
pub use index::{ObjectIndex, StoredPart, Upload};
pub use model::*;
pub use s3::{S3Blobs, S3Failure, S3Location};
pub use sql::SqlIndex;
pub use staging::md5_of;
pub use store::{DEFAULT_INLINE_BYTES, ObjectBody, ObjectStore, created_event};
