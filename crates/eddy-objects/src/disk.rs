//! Blobs on local disk (the default blob store), named by the SHA-256 of their bytes. A blob is
//! written to a temporary file, fsynced, renamed into place and its directory fsynced — only
//! then may metadata point at it. Object keys never become paths: the only names on disk are
//! hex digests and random ids.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt};

use crate::ObjectError;
use crate::blobs::{BlobInfo, BlobLimits, BlobReader, BlobStore, StoredBlob};
use crate::staging::{StagedBlob, Stager, stage};

/// The blob directories of a data directory.
#[derive(Debug)]
pub struct DiskBlobs {
    blobs: PathBuf,
    tmp: PathBuf,
}

#[async_trait]
impl BlobStore for DiskBlobs {
    async fn write(
        &self,
        body: &mut (dyn AsyncRead + Send + Unpin),
        limits: &BlobLimits,
    ) -> Result<BlobInfo, ObjectError> {
        self.place(stage(&self.tmp, body, limits, true).await?)
            .await
    }

    async fn concat(&self, parts: &[String]) -> Result<BlobInfo, ObjectError> {
        let mut reader = ConcatReader::new(parts.iter().map(|p| self.path(p)).collect());
        let mut stager = Stager::create(&self.tmp, u64::MAX, None, true)?;
        stager.feed(&mut reader).await?;
        self.place(stager.finish(None).await?).await
    }

    async fn still_there(&self, blob: &BlobInfo) -> Result<bool, ObjectError> {
        // A file placed moments ago can still have been removed by a collection that listed
        // the bytes' previous file: always look.
        match tokio::fs::metadata(self.path(&blob.sha256)).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(ObjectError::io(&self.path(&blob.sha256), e)),
        }
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

    /// Moves a staged blob into its content-addressed place, durably. Identical content is
    /// already there under the same name; replacing it changes nothing.
    async fn place(&self, staged: StagedBlob) -> Result<BlobInfo, ObjectError> {
        let target = self.path(&staged.info.sha256);
        let info = staged.info.clone();
        let from = staged.take_path();
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
