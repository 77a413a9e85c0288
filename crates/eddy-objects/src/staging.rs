//! Bytes on their way to a blob: streamed into a temporary file while their SHA-256 (the
//! blob's name) and MD5 (the ETag) are computed, in chunks large enough to keep the work per
//! byte small, with memory bounded whatever the body's size. Every blob store stages this
//! way; they differ in where the staged file goes.

use std::io::Write;
use std::path::{Path, PathBuf};

use md5::Md5;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::ObjectError;
use crate::blobs::BlobInfo;
use crate::checksum::{
    ChecksumAlgorithm, ChecksumRequest, ExpectedChecksum, Hasher, ObjectChecksum,
};

/// The size of one read from a body. Memory per upload stays at about this much.
const CHUNK: usize = 1 << 20;

/// From this many bytes in a chunk, its MD5 is computed beside its other digests and its
/// write, not before them: enough work to be worth a thread.
const SPLIT_HASHING: usize = 256 * 1024;

/// A blob written to a temporary file, not yet in place. Dropped while still staged (the
/// upload failed or was refused), it leaves no trace.
pub(crate) struct StagedBlob {
    path: PathBuf,
    pub(crate) info: BlobInfo,
}

impl StagedBlob {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file's path, which is no longer removed when this is dropped (it was moved).
    pub(crate) fn take_path(mut self) -> PathBuf {
        std::mem::take(&mut self.path)
    }
}

impl Drop for StagedBlob {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Bytes being staged: fed from one body or several, one after another.
pub(crate) struct Stager {
    staged: StagedBlob,
    writer: Option<HashingWriter>,
    /// The value the client sent for the checksum being computed.
    expected: Option<ExpectedChecksum>,
    buf: Vec<u8>,
    limit: u64,
}

impl Stager {
    /// A new temporary file in `tmp`; more than `limit` bytes fail with `TooLarge` as soon as
    /// they arrive. The bytes' `checksum` is computed too, when one is asked for.
    pub(crate) fn create(
        tmp: &Path,
        limit: u64,
        checksum: Option<ChecksumRequest>,
        durable: bool,
    ) -> Result<Self, ObjectError> {
        let path = tmp.join(uuid::Uuid::new_v4().simple().to_string());
        let file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::File::options()
                .write(true)
                .create_new(true)
                .mode(eddy_bus::PRIVATE_FILE)
                .open(&path)
                .map_err(|e| ObjectError::io(&path, e))?
        };
        Ok(Self {
            staged: StagedBlob {
                path,
                info: BlobInfo {
                    sha256: String::new(),
                    md5: [0; 16],
                    size: 0,
                    created: true,
                    checksum: None,
                },
            },
            writer: Some(HashingWriter {
                file,
                digester: Digester::new(checksum.as_ref().map(|c| c.algorithm)),
                written: 0,
                durable,
            }),
            expected: checksum.and_then(|c| c.expected),
            buf: Vec::new(),
            limit,
        })
    }

    /// Appends all of `body`. Each chunk is hashed and written on a blocking thread while the
    /// next is read, so a large upload's reading overlaps its hashing and writing.
    pub(crate) async fn feed(
        &mut self,
        body: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<(), ObjectError> {
        let mut pending: Option<tokio::task::JoinHandle<Written>> = None;
        let mut next = std::mem::take(&mut self.buf);
        let result = loop {
            let read = read_full(body, &mut next).await;
            // The chunk before is written by now, or is waited for: one at a time.
            if let Some(spare) = self.settle(pending.take()).await? {
                self.buf = spare;
            }
            let n = match read {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) => break Err(ObjectError::Body(e)),
            };
            self.staged.info.size += n as u64;
            if self.staged.info.size > self.limit {
                break Err(ObjectError::TooLarge { limit: self.limit });
            }
            // Hashing and writing a chunk are blocking work: off the async threads.
            let mut w = self
                .writer
                .take()
                .expect("the writer is back after each chunk");
            let chunk = std::mem::replace(&mut next, std::mem::take(&mut self.buf));
            pending = Some(tokio::task::spawn_blocking(move || {
                let r = w.write(&chunk);
                (w, chunk, r)
            }));
        };
        self.settle(pending).await?;
        if self.buf.capacity() == 0 {
            self.buf = next;
        }
        result
    }

    /// Waits for a chunk being written; gives the writer back and returns the chunk's buffer.
    async fn settle(
        &mut self,
        pending: Option<tokio::task::JoinHandle<Written>>,
    ) -> Result<Option<Vec<u8>>, ObjectError> {
        let Some(job) = pending else {
            return Ok(None);
        };
        let (w, buf, result) = job.await.expect("blob writer task panicked");
        self.writer = Some(w);
        result.map_err(|e| ObjectError::io(&self.staged.path, e))?;
        Ok(Some(buf))
    }

    /// The staged blob, its file fsynced when it was created `durable`; `BadDigest` when the
    /// bytes' MD5 is not `expected_md5`, `ChecksumMismatch` when their checksum is not the one
    /// sent.
    pub(crate) async fn finish(
        mut self,
        expected_md5: Option<[u8; 16]>,
    ) -> Result<StagedBlob, ObjectError> {
        let w = self.writer.take().expect("the writer is present");
        let path = self.staged.path.clone();
        let digests = tokio::task::spawn_blocking(move || w.finish())
            .await
            .expect("blob writer task panicked")
            .map_err(|e| ObjectError::io(&path, e))?;
        digests.check(expected_md5, self.expected.as_ref())?;
        self.staged.info.sha256 = digests.sha256;
        self.staged.info.md5 = digests.md5;
        self.staged.info.checksum = digests.checksum;
        Ok(self.staged)
    }
}

/// Stages all of `body` in `tmp` within `limits` (fsynced when `durable`).
pub(crate) async fn stage(
    tmp: &Path,
    body: &mut (dyn AsyncRead + Send + Unpin),
    limits: &crate::BlobLimits,
    durable: bool,
) -> Result<StagedBlob, ObjectError> {
    let mut stager = Stager::create(tmp, limits.max, limits.checksum.clone(), durable)?;
    stager.feed(body).await?;
    let staged = stager.finish(limits.md5).await?;
    if staged.info.size < limits.min {
        return Err(ObjectError::TooSmall {
            size: staged.info.size,
            min: limits.min,
        });
    }
    Ok(staged)
}

/// Reads the body's next `CHUNK` bytes into `buf` (fewer only where the body ends), so
/// chunks stay large whatever the source's read sizes are. The buffer is never zeroed first:
/// reads go into its spare capacity, and a small body touches only the memory it fills.
async fn read_full(
    body: &mut (dyn AsyncRead + Send + Unpin),
    buf: &mut Vec<u8>,
) -> std::io::Result<usize> {
    use bytes::BufMut;
    buf.clear();
    buf.reserve_exact(CHUNK);
    while buf.len() < CHUNK {
        let room = CHUNK - buf.len();
        if body.read_buf(&mut (&mut *buf).limit(room)).await? == 0 {
            break;
        }
    }
    Ok(buf.len())
}

/// The digests of bytes fed in pieces: their SHA-256 (a blob's name), MD5 (the ETag) and,
/// when one is asked for, a checksum.
pub(crate) struct Digester {
    sha256: Sha256,
    md5: Md5,
    checksum: Option<(ChecksumAlgorithm, Hasher)>,
}

/// What a [`Digester`] found.
pub(crate) struct Digests {
    /// In hex.
    pub(crate) sha256: String,
    pub(crate) md5: [u8; 16],
    pub(crate) checksum: Option<ObjectChecksum>,
}

impl Digester {
    pub(crate) fn new(checksum: Option<ChecksumAlgorithm>) -> Self {
        Self {
            sha256: Sha256::new(),
            md5: Md5::new(),
            checksum: checksum.map(|a| (a, Hasher::new(a))),
        }
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        self.md5.update(bytes);
        Self::update_all_but_md5(&mut self.sha256, &mut self.checksum, bytes);
    }

    fn update_all_but_md5(
        sha256: &mut Sha256,
        checksum: &mut Option<(ChecksumAlgorithm, Hasher)>,
        bytes: &[u8],
    ) {
        sha256.update(bytes);
        if let Some((_, hasher)) = checksum {
            hasher.update(bytes);
        }
    }

    /// Takes in `bytes` while `alongside` runs (a chunk's write): from `SPLIT_HASHING` bytes,
    /// their MD5 — the slowest digest, which cannot itself be split — on a thread of its own
    /// meanwhile (here, when no thread can be had).
    fn update_while<R>(&mut self, bytes: &[u8], alongside: impl FnOnce() -> R) -> R {
        if bytes.len() < SPLIT_HASHING {
            self.update(bytes);
            return alongside();
        }
        let Self {
            sha256,
            md5,
            checksum,
        } = self;
        let md5 = std::sync::Mutex::new(md5);
        let update_md5 = || md5.lock().expect("MD5 cannot panic").update(bytes);
        std::thread::scope(|s| {
            let beside = std::thread::Builder::new().spawn_scoped(s, update_md5);
            Self::update_all_but_md5(sha256, checksum, bytes);
            let done = alongside();
            match beside {
                Ok(thread) => thread.join().expect("MD5 cannot panic"),
                Err(_) => update_md5(),
            }
            done
        })
    }

    pub(crate) fn finish(self) -> Digests {
        Digests {
            sha256: hex::encode(self.sha256.finalize()),
            md5: self.md5.finalize().into(),
            checksum: self
                .checksum
                .map(|(a, hasher)| ObjectChecksum::of_bytes(a, &hasher.finish())),
        }
    }
}

impl Digests {
    /// `BadDigest` when the MD5 is not `expected_md5`, `ChecksumMismatch` when the checksum is
    /// not the `expected` one.
    pub(crate) fn check(
        &self,
        expected_md5: Option<[u8; 16]>,
        expected: Option<&ExpectedChecksum>,
    ) -> Result<(), ObjectError> {
        if expected_md5.is_some_and(|m| m != self.md5) {
            return Err(ObjectError::BadDigest);
        }
        if let (Some(expected), Some(sum)) = (expected, &self.checksum)
            && !expected.matches(&sum.value)
        {
            return Err(ObjectError::ChecksumMismatch(sum.algorithm));
        }
        Ok(())
    }
}

/// The MD5 of everything `reader` holds: the ETag a single-part upload of those bytes gets.
pub fn md5_of(reader: &mut impl std::io::Read) -> std::io::Result<[u8; 16]> {
    let mut hasher = Md5::new();
    let mut buf = vec![0; 256 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(hasher.finalize().into()),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Digests of bytes held in memory (a small object kept inline), checked as a staged blob's
/// are, within `limits`.
pub(crate) fn digest_held(
    bytes: &[u8],
    limits: &crate::BlobLimits,
) -> Result<Digests, ObjectError> {
    let size = bytes.len() as u64;
    if size > limits.max {
        return Err(ObjectError::TooLarge { limit: limits.max });
    }
    if size < limits.min {
        return Err(ObjectError::TooSmall {
            size,
            min: limits.min,
        });
    }
    let checksum = limits.checksum.as_ref();
    let mut digester = Digester::new(checksum.map(|c| c.algorithm));
    digester.update(bytes);
    let digests = digester.finish();
    digests.check(limits.md5, checksum.and_then(|c| c.expected.as_ref()))?;
    Ok(digests)
}

/// What a chunk's write gives back: the writer, the chunk's buffer, and how the write went.
type Written = (HashingWriter, Vec<u8>, std::io::Result<()>);

/// A file being written while its digests are computed.
struct HashingWriter {
    file: std::fs::File,
    digester: Digester,
    /// How many bytes are in the file: where the next chunk goes.
    written: u64,
    /// Whether the file is fsynced when finished.
    durable: bool,
}

impl HashingWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let file = &mut self.file;
        self.digester
            .update_while(bytes, || file.write_all(bytes))?;
        if self.durable {
            start_writeback(&self.file, self.written, bytes.len());
        }
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn finish(self) -> std::io::Result<Digests> {
        if self.durable {
            self.file.sync_all()?;
        }
        Ok(self.digester.finish())
    }
}

/// Asks the kernel to start writing `len` bytes at `offset` of `file` to the disk, without
/// waiting for them: the disk then works while the rest of the body is read and hashed, and
/// the fsync at the end waits only for the last chunks, not for the whole file (a large
/// upload's hashing and its writing overlap instead of following each other). A hint only:
/// it promises nothing about durability, and what it fails on (a file system that has no
/// such call, a disk error) the fsync reports.
#[cfg(target_os = "linux")]
fn start_writeback(file: &std::fs::File, offset: u64, len: usize) {
    use std::os::fd::AsRawFd;
    // SAFETY: the descriptor is open for as long as `file` is borrowed; the call reads no
    // memory of ours.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_: &std::fs::File, _: u64, _: usize) {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BlobLimits;

    /// A body that arrives a few KiB at a time, as a socket's would.
    struct Trickle<'a>(&'a [u8]);

    impl AsyncRead for Trickle<'_> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let n = self.0.len().min(buf.remaining()).min(7_000);
            buf.put_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            std::task::Poll::Ready(Ok(()))
        }
    }

    fn limits() -> BlobLimits {
        BlobLimits {
            max: u64::MAX,
            min: 0,
            md5: None,
            checksum: Some(ChecksumRequest {
                algorithm: ChecksumAlgorithm::Crc32c,
                expected: None,
            }),
        }
    }

    #[test]
    fn md5_of_a_reader_is_that_of_all_its_bytes() {
        /// Says `Interrupted` once before giving its bytes, as a read cut short by a signal.
        struct Interrupted<'a>(bool, &'a [u8]);
        impl std::io::Read for Interrupted<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if !std::mem::replace(&mut self.0, true) {
                    return Err(std::io::ErrorKind::Interrupted.into());
                }
                std::io::Read::read(&mut self.1, buf)
            }
        }
        // RFC 1321's test suite.
        let abc = md5_of(&mut Interrupted(false, b"abc")).unwrap();
        assert_eq!(hex::encode(abc), "900150983cd24fb0d6963f7d28e17f72");
        let empty = md5_of(&mut std::io::empty()).unwrap();
        assert_eq!(hex::encode(empty), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[tokio::test]
    async fn staged_digests_are_those_of_the_whole_body_whatever_its_chunks() {
        let tmp = tempfile::tempdir().unwrap();
        // Below the size whose MD5 runs beside the rest; one chunk; several and a tail.
        for size in [0, SPLIT_HASHING - 1, CHUNK, 3 * CHUNK + 12_345] {
            let body: Vec<u8> = (0..size).map(|i| (i * 31 % 253) as u8).collect();
            let whole = digest_held(&body, &limits()).unwrap();
            for durable in [false, true] {
                let staged = stage(tmp.path(), &mut Trickle(&body), &limits(), durable)
                    .await
                    .unwrap();
                assert_eq!(staged.info.size, size as u64);
                assert_eq!(staged.info.sha256, whole.sha256, "{size} bytes");
                assert_eq!(staged.info.md5, whole.md5, "{size} bytes");
                assert_eq!(staged.info.checksum, whole.checksum, "{size} bytes");
                assert!(
                    std::fs::read(staged.path()).unwrap() == body,
                    "{size} bytes"
                );
            }
        }
    }
}
