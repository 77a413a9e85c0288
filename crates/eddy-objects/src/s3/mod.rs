//! Blobs in an S3 bucket (for nodes that share their state), named like blobs on disk:
//! `PREFIX/blobs/ab/cd/<sha256>`. Bytes are staged in the node's own temporary folder while
//! they are hashed (their name is their hash), then put with `If-None-Match: *`: a blob is
//! written once and never replaced, and identical bytes already there are found, not copied.
//! Large blobs go up in parts. Reads are ranged gets, streamed.

mod client;

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::io::AsyncRead;

pub use client::{S3Failure, S3Location};

use crate::ObjectError;
use crate::blobs::{BlobInfo, BlobLimits, BlobReader, BlobStore, StoredBlob};
use crate::staging::{StagedBlob, Stager, stage};
use client::S3Client;

/// Blobs larger than this go up in parts.
const SINGLE_PUT_MAX: u64 = 64 << 20;
/// The size of each part of a large blob.
const PART: u64 = 16 << 20;

/// The blobs of a bucket.
pub struct S3Blobs {
    client: S3Client,
    /// Where bytes are staged while they are hashed.
    tmp: PathBuf,
}

impl S3Blobs {
    /// Reaches the bucket and checks what eddy needs of it: that it exists, that the keys may
    /// write to it, and that it honours put-if-absent. Staging goes to `dir/tmp`.
    pub async fn connect(location: S3Location, dir: &Path) -> Result<Self, ObjectError> {
        let tmp = dir.join("tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| ObjectError::io(&tmp, e))?;
        }
        eddy_bus::private_dir(&tmp).map_err(|e| ObjectError::io(&tmp, e))?;
        let client = S3Client::new(location)?;
        client.check_bucket().await?;
        let probe = format!("probes/{}", uuid::Uuid::new_v4().simple());
        let first = client
            .put_if_absent_bytes(&probe, bytes::Bytes::from_static(b"probe"))
            .await?;
        let second = client
            .put_if_absent_bytes(&probe, bytes::Bytes::from_static(b"probe"))
            .await?;
        let _ = client.delete(&probe).await;
        if !first || second {
            return Err(ObjectError::BlobStore(format!(
                "the blob store at {} does not honour put-if-absent (If-None-Match: *), which eddy needs to write a blob only once",
                client.location().endpoint
            )));
        }
        Ok(Self { client, tmp })
    }

    fn key(sha256: &str) -> String {
        format!("blobs/{}/{}/{sha256}", &sha256[0..2], &sha256[2..4])
    }

    /// Puts a staged blob in the bucket, unless its bytes are there already.
    async fn upload(&self, staged: StagedBlob) -> Result<BlobInfo, ObjectError> {
        let key = Self::key(&staged.info.sha256);
        let size = staged.info.size;
        let created = if size > SINGLE_PUT_MAX {
            self.client
                .put_file_in_parts(&key, staged.path(), size, PART)
                .await?
        } else {
            self.client
                .put_if_absent_file(&key, staged.path(), size)
                .await?
        };
        let mut info = staged.info.clone();
        info.created = created;
        Ok(info)
    }
}

#[async_trait]
impl BlobStore for S3Blobs {
    async fn write(
        &self,
        body: &mut (dyn AsyncRead + Send + Unpin),
        limits: &BlobLimits,
    ) -> Result<BlobInfo, ObjectError> {
        // The staged file is a means, not the blob: no fsync. The store's answer is what makes
        // the blob durable.
        self.upload(stage(&self.tmp, body, limits, false).await?)
            .await
    }

    async fn concat(&self, parts: &[String]) -> Result<BlobInfo, ObjectError> {
        let mut stager = Stager::create(&self.tmp, u64::MAX, None, false)?;
        for part in parts {
            let mut reader = self.client.get(&Self::key(part), 0, u64::MAX / 2).await?;
            stager.feed(&mut reader).await?;
        }
        self.upload(stager.finish(None).await?).await
    }

    async fn still_there(&self, blob: &BlobInfo) -> Result<bool, ObjectError> {
        // A blob this write put is newer than any collection's list of candidates; bytes that
        // were there already may have been collected meanwhile: look.
        if blob.created {
            return Ok(true);
        }
        Ok(self.client.exists(&Self::key(&blob.sha256)).await?)
    }

    async fn read(&self, blob: &str, start: u64, len: u64) -> Result<BlobReader, ObjectError> {
        self.client.get(&Self::key(blob), start, len).await
    }

    async fn list(&self) -> Result<Vec<StoredBlob>, ObjectError> {
        let listed = self.client.list("blobs/").await?;
        Ok(listed
            .into_iter()
            .filter_map(|l| {
                let id = l.key.rsplit('/').next()?.to_string();
                (id.len() == 64).then_some(StoredBlob {
                    id,
                    written: l.modified,
                })
            })
            .collect())
    }

    async fn remove(&self, blob: &StoredBlob) -> Result<Option<u64>, ObjectError> {
        // Called only from a collection's write transaction, after it found nothing refers to
        // the blob: no commit can make something refer to it meanwhile.
        self.client.delete(&Self::key(&blob.id)).await?;
        Ok(Some(0))
    }
}
