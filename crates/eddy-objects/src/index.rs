//! Where object metadata lives: buckets, the current version of each key, unfinished multipart
//! uploads and their parts, and each bucket's CORS rules. The object store calls these in its
//! own transactions (a write goes with its event); the storage module (`sql.rs`) answers them.

use std::collections::{BTreeMap, HashSet};

use async_trait::async_trait;
use eddy_bus::sql::Sql;
use eddy_core::{BucketName, ObjectKey};

use crate::ObjectError;
use crate::model::*;

/// An unfinished multipart upload, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upload {
    pub upload_id: String,
    pub bucket: BucketName,
    pub key: ObjectKey,
    pub content_type: Option<String>,
    pub user_meta: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
    /// The checksum the object is to have, as CreateMultipartUpload asked.
    pub checksum: Option<(crate::ChecksumAlgorithm, crate::ChecksumType)>,
    pub created_ms: i64,
}

/// A stored part: what a client sees, and the blob that holds its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPart {
    pub info: PartInfo,
    pub blob: String,
}

/// Object metadata, as a backend stores it. `db` is the writer's transaction for writes and
/// anything that reads for reads.
#[async_trait]
pub trait ObjectIndex: Send + Sync + 'static {
    /// Creates a bucket; `false` when it exists.
    async fn create_bucket(
        &self,
        db: &mut dyn Sql,
        name: &BucketName,
        now_ms: i64,
    ) -> Result<bool, ObjectError>;
    /// Removes a bucket and its unfinished uploads (it must hold no objects).
    async fn delete_bucket(&self, db: &mut dyn Sql, name: &BucketName) -> Result<(), ObjectError>;
    async fn bucket_exists(&self, db: &mut dyn Sql, name: &BucketName)
    -> Result<bool, ObjectError>;
    /// Every bucket, by name.
    async fn buckets(&self, db: &mut dyn Sql) -> Result<Vec<BucketInfo>, ObjectError>;
    async fn has_objects(&self, db: &mut dyn Sql, bucket: &BucketName)
    -> Result<bool, ObjectError>;

    /// The current version of a key.
    async fn object(
        &self,
        db: &mut dyn Sql,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<Option<ObjectMeta>, ObjectError>;
    /// The current version of a key with its bytes, when they are kept inline.
    async fn object_with_data(
        &self,
        db: &mut dyn Sql,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<Option<(ObjectMeta, Option<Vec<u8>>)>, ObjectError>;
    /// Makes `meta` the current version of its key, with its bytes when they are kept inline
    /// (`data`; `meta.inline` says which).
    async fn put_object(
        &self,
        db: &mut dyn Sql,
        meta: &ObjectMeta,
        data: Option<&[u8]>,
    ) -> Result<(), ObjectError>;
    async fn delete_object(
        &self,
        db: &mut dyn Sql,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<(), ObjectError>;
    /// Up to `limit` objects of a bucket from `from` on, in S3's order (the keys' UTF-8
    /// bytes).
    async fn scan(
        &self,
        db: &mut dyn Sql,
        bucket: &BucketName,
        from: &ListPosition,
        limit: usize,
    ) -> Result<Vec<ObjectMeta>, ObjectError>;

    async fn create_upload(&self, db: &mut dyn Sql, upload: &Upload) -> Result<(), ObjectError>;
    /// The upload `id` of `bucket/key`, if it is unfinished.
    async fn upload(
        &self,
        db: &mut dyn Sql,
        id: &str,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<Option<Upload>, ObjectError>;
    /// Records that upload `id` made the version with `etag` of `bucket/key` (kept a day).
    async fn record_completion(
        &self,
        db: &mut dyn Sql,
        id: &str,
        (bucket, key): (&BucketName, &ObjectKey),
        etag: &str,
        now_ms: i64,
    ) -> Result<(), ObjectError>;
    /// The ETag of the version upload `id` of `bucket/key` made, if it completed in the last day.
    async fn completion(
        &self,
        db: &mut dyn Sql,
        id: &str,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<Option<String>, ObjectError>;
    async fn delete_upload(&self, db: &mut dyn Sql, id: &str) -> Result<(), ObjectError>;
    /// A bucket's unfinished uploads, by key and then age.
    async fn uploads(
        &self,
        db: &mut dyn Sql,
        bucket: &BucketName,
    ) -> Result<Vec<UploadInfo>, ObjectError>;
    /// Stores a part, replacing an earlier one with its number.
    async fn put_part(
        &self,
        db: &mut dyn Sql,
        upload_id: &str,
        part: &StoredPart,
    ) -> Result<(), ObjectError>;
    /// An upload's parts, by number.
    async fn parts(
        &self,
        db: &mut dyn Sql,
        upload_id: &str,
    ) -> Result<Vec<StoredPart>, ObjectError>;

    /// Every blob an object or a part refers to.
    async fn referenced_blobs(&self, db: &mut dyn Sql) -> Result<HashSet<String>, ObjectError>;

    /// Those of `blobs` an object or a part refers to.
    async fn referenced_among(
        &self,
        db: &mut dyn Sql,
        blobs: &[&str],
    ) -> Result<HashSet<String>, ObjectError>;

    async fn put_cors(
        &self,
        db: &mut dyn Sql,
        bucket: &BucketName,
        rules: &[CorsRule],
    ) -> Result<(), ObjectError>;
    async fn cors(
        &self,
        db: &mut dyn Sql,
        bucket: &BucketName,
    ) -> Result<Option<Vec<CorsRule>>, ObjectError>;
    async fn delete_cors(&self, db: &mut dyn Sql, bucket: &BucketName) -> Result<(), ObjectError>;
}
