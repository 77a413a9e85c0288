//! Blobs on local disk (the default blob store), named by the SHA-256 of their bytes. A blob is
//! written to a temporary file, fsynced, renamed into place and its directory fsynced — only
//! then may metadata point at it. Object keys never become paths: the only names on disk are
//! hex digests and random ids.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use md5::Md5;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt};

use crate::ObjectError;
use crate::blobs::{BlobInfo, BlobLimits, BlobReader, BlobStore, StoredBlob};

/// The size of one read from an upload. Memory per upload stays at about this much.
const CHUNK: usize = 1 << 20;

/// The blob directories of a data directory.
#[derive(Debug)]
pub struct DiskBlobs {
    blobs: PathBuf,
    tmp: PathBuf,
}

/// A blob written to a temporary file, not yet in place.
struct StagedBlob {
    path: PathBuf,
    info: BlobInfo,
}

impl Drop for StagedBlob {
    fn drop(&mut self) {
        // Still staged when dropped means the upload failed or was refused: leave no trace.
        // (A placed blob's path was taken and is empty.)
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[async_trait]
impl BlobStore for DiskBlobs {
    async fn write(
        &self,
        body: &mut (dyn AsyncRead + Send + Unpin),
        limits: &BlobLimits,
    ) -> Result<BlobInfo, ObjectError> {
        let staged = self.stage(body, limits.max, limits.md5).await?;
        if staged.info.size < limits.min {
            return Err(ObjectError::TooSmall {
                size: staged.info.size,
                min: limits.min,
            });
        }
        self.place(staged).await
    }

    async fn concat(&self, parts: &[String]) -> Result<BlobInfo, ObjectError> {
        let mut reader = ConcatReader::new(parts.iter().map(|p| self.path(p)).collect());
        let staged = self.stage(&mut reader, u64::MAX, None).await?;
        self.place(staged).await
    }

    async fn read(&self, blob: &str, start: u64, len: u64) -> Result<BlobReader, ObjectError> {
        let path = self.path(blob);
        // An open file keeps its bytes even if garbage collection unlinks the blob meanwhile.
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| ObjectError::io(&path, e))?;
        if start > 0 {
            file.seek(std::io::SeekFrom::Start(start))
                .await
                .map_err(|e| ObjectError::io(&path, e))?;
        }
        Ok(Box::new(file.take(len)))
    }

    async fn list(&self) -> Result<Vec<StoredBlob>, ObjectError> {
        let blobs = self.blobs.clone();
        tokio::task::spawn_blocking(move || list_blobs(&blobs))
            .await
            .expect("listing blobs panicked")
    }

    async fn remove(&self, blob: &StoredBlob) -> Result<Option<u64>, ObjectError> {
        let path = self.path(&blob.id);
        let listed = blob.written;
        tokio::task::spawn_blocking(move || {
            let Ok(meta) = std::fs::metadata(&path) else {
                return Ok(None);
            };
            if meta.modified().ok() != Some(listed) {
                return Ok(None);
            }
            match std::fs::remove_file(&path) {
                Ok(()) => Ok(Some(meta.len())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(ObjectError::io(&path, e)),
            }
        })
        .await
        .expect("removing a blob panicked")
    }
}

impl DiskBlobs {
    /// Prepares `dir/blobs` and an empty `dir/tmp`. Anything left in `tmp` is from uploads a
    /// crash interrupted; the data directory lock guarantees none is still running.
    pub fn open(dir: &Path) -> Result<Self, ObjectError> {
        let blobs = dir.join("blobs");
        let tmp = dir.join("tmp");
        eddy_bus::private_dir(&blobs).map_err(|e| ObjectError::io(&blobs, e))?;
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| ObjectError::io(&tmp, e))?;
        }
        eddy_bus::private_dir(&tmp).map_err(|e| ObjectError::io(&tmp, e))?;
        Ok(Self { blobs, tmp })
    }

    /// Where the blob with this digest lives: `blobs/ab/cd/abcd…`.
    fn path(&self, sha256: &str) -> PathBuf {
        self.blobs
            .join(&sha256[0..2])
            .join(&sha256[2..4])
            .join(sha256)
    }

    /// Streams `body` to a temporary file, hashing as it goes, and fsyncs it. Fails with
    /// `TooLarge` as soon as more than `limit` bytes arrive, and with `BadDigest` when
    /// `expected_md5` does not match.
    async fn stage(
        &self,
        body: &mut (dyn AsyncRead + Send + Unpin),
        limit: u64,
        expected_md5: Option<[u8; 16]>,
    ) -> Result<StagedBlob, ObjectError> {
        let path = self.tmp.join(uuid::Uuid::new_v4().simple().to_string());
        let file = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::File::options()
                .write(true)
                .create_new(true)
                .mode(eddy_bus::PRIVATE_FILE)
                .open(&path)
                .map_err(|e| ObjectError::io(&path, e))?
        };
        let mut staged = StagedBlob {
            path,
            info: BlobInfo {
                sha256: String::new(),
                md5: [0; 16],
                size: 0,
            },
        };
        let mut writer = Some(HashingWriter::new(file));
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = read_full(body, &mut buf).await.map_err(ObjectError::Body)?;
            if n == 0 {
                break;
            }
            staged.info.size += n as u64;
            if staged.info.size > limit {
                return Err(ObjectError::TooLarge { limit });
            }
            // Hashing and writing a chunk are blocking work: off the async threads.
            let mut w = writer.take().expect("writer is returned after each chunk");
            let (w, back, result) = tokio::task::spawn_blocking(move || {
                let r = w.write(&buf[..n]);
                (w, buf, r)
            })
            .await
            .expect("blob writer task panicked");
            buf = back;
            result.map_err(|e| ObjectError::io(&staged.path, e))?;
            writer = Some(w);
        }
        let w = writer.take().expect("writer is present after the loop");
        let path = staged.path.clone();
        let (sha256, md5) = tokio::task::spawn_blocking(move || w.finish())
            .await
            .expect("blob writer task panicked")
            .map_err(|e| ObjectError::io(&path, e))?;
        if expected_md5.is_some_and(|m| m != md5) {
            return Err(ObjectError::BadDigest);
        }
        staged.info.sha256 = sha256;
        staged.info.md5 = md5;
        Ok(staged)
    }

    /// Moves a staged blob into its content-addressed place, durably. Identical content is
    /// already there under the same name; replacing it changes nothing.
    async fn place(&self, mut staged: StagedBlob) -> Result<BlobInfo, ObjectError> {
        let target = self.path(&staged.info.sha256);
        let from = std::mem::take(&mut staged.path);
        let info = staged.info.clone();
        tokio::task::spawn_blocking(move || place_file(&from, &target))
            .await
            .expect("blob placing task panicked")?;
        Ok(info)
    }
}

/// Every blob under `blobs`, with its file's modification time. (Placing a blob renames a new
/// file over any old one, so the time is that of the latest write of those bytes.)
fn list_blobs(blobs: &Path) -> Result<Vec<StoredBlob>, ObjectError> {
    let mut found = Vec::new();
    for level1 in read_dir(blobs)? {
        for level2 in read_dir(&level1)? {
            for blob in read_dir(&level2)? {
                let Some(name) = blob.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                let written = std::fs::metadata(&blob)
                    .and_then(|m| m.modified())
                    .map_err(|e| ObjectError::io(&blob, e))?;
                found.push(StoredBlob {
                    id: name.to_string(),
                    written,
                });
            }
        }
    }
    Ok(found)
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, ObjectError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ObjectError::io(dir, e))?;
    entries
        .map(|e| e.map(|e| e.path()).map_err(|err| ObjectError::io(dir, err)))
        .collect()
}

fn place_file(from: &Path, target: &Path) -> Result<(), ObjectError> {
    let dir = target.parent().expect("blob paths have a parent");
    if !dir.exists() {
        eddy_bus::private_dir(dir).map_err(|e| ObjectError::io(dir, e))?;
        // The new directories' own entries must be durable too.
        for d in [
            dir.parent().expect("fan-out level"),
            dir.parent().and_then(Path::parent).expect("blobs dir"),
        ] {
            sync_dir(d)?;
        }
    }
    std::fs::rename(from, target).map_err(|e| ObjectError::io(target, e))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), ObjectError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ObjectError::io(dir, e))
}

/// Reads until `buf` is full or the body ends, so chunks stay large whatever the source's
/// read sizes are.
async fn read_full(
    body: &mut (dyn AsyncRead + Send + Unpin),
    buf: &mut [u8],
) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = body.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

/// A file being written while its SHA-256 and MD5 are computed.
struct HashingWriter {
    file: std::fs::File,
    sha256: Sha256,
    md5: Md5,
}

impl HashingWriter {
    fn new(file: std::fs::File) -> Self {
        Self {
            file,
            sha256: Sha256::new(),
            md5: Md5::new(),
        }
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.sha256.update(bytes);
        self.md5.update(bytes);
        self.file.write_all(bytes)
    }

    fn finish(self) -> std::io::Result<(String, [u8; 16])> {
        self.file.sync_all()?;
        Ok((
            hex::encode(self.sha256.finalize()),
            self.md5.finalize().into(),
        ))
    }
}

/// Reads several files one after another.
struct ConcatReader {
    paths: std::vec::IntoIter<PathBuf>,
    current: Option<tokio::fs::File>,
}

impl ConcatReader {
    fn new(paths: Vec<PathBuf>) -> Self {
        Self {
            paths: paths.into_iter(),
            current: None,
        }
    }
}

impl AsyncRead for ConcatReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        loop {
            if self.current.is_none() {
                let Some(next) = self.paths.next() else {
                    return Poll::Ready(Ok(()));
                };
                // Opening is a quick metadata operation; the reads themselves are async.
                self.current = Some(tokio::fs::File::from_std(std::fs::File::open(next)?));
            }
            let file = self.current.as_mut().expect("opened above");
            let before = buf.filled().len();
            match std::pin::Pin::new(file).poll_read(cx, buf) {
                Poll::Ready(Ok(())) if buf.filled().len() == before => self.current = None,
                other => return other,
            }
        }
    }
}
