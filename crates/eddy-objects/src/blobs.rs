//! Where object bytes live: blobs, written once and never changed, each named by the SHA-256
//! of its bytes. The object store writes a blob durably before any metadata points at it, and
//! removes only blobs nothing refers to.
//!
//! Blobs and metadata meet in the writer: a commit that makes metadata point at a blob checks
//! in its write transaction that the blob is [still there](BlobStore::still_there), and
//! garbage collection removes blobs from inside write transactions too, after checking again
//! that nothing refers to them. Write transactions run one at a time (on PostgreSQL, one at a
//! time across every node), so a commit never points at a blob a collection removed.

use async_trait::async_trait;
use tokio::io::AsyncRead;

use crate::ObjectError;

/// What was learnt while writing a blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobInfo {
    /// The blob's id, which is the SHA-256 of its bytes in hex.
    pub sha256: String,
    pub md5: [u8; 16],
    pub size: u64,
    /// The checksum [`BlobLimits::checksum`] asked for (none for a blob assembled from others).
    pub checksum: Option<crate::ObjectChecksum>,
    /// Whether this write stored the bytes (rather than finding identical bytes stored
    /// already, which a collection that began earlier may yet remove).
    pub created: bool,
}

/// What a blob must be to be kept.
#[derive(Clone, Debug)]
pub struct BlobLimits {
    /// Larger bodies fail (`TooLarge`) as soon as the limit is passed.
    pub max: u64,
    /// Smaller bodies fail (`TooSmall`).
    pub min: u64,
    /// The MD5 the client says the body has (`BadDigest` otherwise).
    pub md5: Option<[u8; 16]>,
    /// The checksum to compute, and the value the client sent for it (`ChecksumMismatch`
    /// otherwise).
    pub checksum: Option<crate::ChecksumRequest>,
}

/// A blob and when its bytes were last written (placing identical bytes again counts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBlob {
    pub id: String,
    pub written: std::time::SystemTime,
}

/// A blob's bytes, or part of them.
pub type BlobReader = Box<dyn AsyncRead + Send + Sync + Unpin>;

/// A place for blobs. Every method leaves the store as it was when it fails.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Streams `body` into a new blob, durably, hashing it as it goes: when this returns, the
    /// blob survives a crash. A body that breaks `limits` leaves nothing behind.
    async fn write(
        &self,
        body: &mut (dyn AsyncRead + Send + Unpin),
        limits: &BlobLimits,
    ) -> Result<BlobInfo, ObjectError>;

    /// A new blob holding the bytes of `parts`, one after another.
    async fn concat(&self, parts: &[String]) -> Result<BlobInfo, ObjectError>;

    /// Whether a blob just written is there (called in the write transaction that commits a
    /// reference to it). A store that knows the write created the blob may answer without
    /// looking.
    async fn still_there(&self, blob: &BlobInfo) -> Result<bool, ObjectError>;

    /// `len` bytes of a blob from byte `start`.
    async fn read(&self, blob: &str, start: u64, len: u64) -> Result<BlobReader, ObjectError>;

    /// Every blob there is.
    async fn list(&self) -> Result<Vec<StoredBlob>, ObjectError>;

    /// Removes a blob as [`list`](Self::list) saw it: one written again since is kept (its bytes
    /// may be about to be referenced). Returns the size removed, `None` when kept or gone.
    async fn remove(&self, blob: &StoredBlob) -> Result<Option<u64>, ObjectError>;
}
