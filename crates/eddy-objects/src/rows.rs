//! SQL for object metadata, shared by the store's operations.

use std::collections::BTreeMap;

use eddy_core::{BucketName, ObjectKey};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection, SqliteExecutor};

use crate::{ObjectError, ObjectMeta};

pub(crate) const META_COLUMNS: &str =
    "bucket, key, size, etag, sha256, content_type, user_meta, last_modified_ms, sequencer";

pub(crate) fn decode(row: &SqliteRow) -> Result<ObjectMeta, ObjectError> {
    let user_meta: &str = row.try_get("user_meta")?;
    Ok(ObjectMeta {
        bucket: BucketName::new(row.try_get::<String, _>("bucket")?)?,
        key: ObjectKey::new(row.try_get::<String, _>("key")?)?,
        size: row.try_get::<i64, _>("size")? as u64,
        etag: row.try_get("etag")?,
        sha256: row.try_get("sha256")?,
        content_type: row.try_get("content_type")?,
        user_meta: serde_json::from_str(user_meta).unwrap_or_default(),
        last_modified_ms: row.try_get("last_modified_ms")?,
        sequencer: row.try_get::<i64, _>("sequencer")? as u64,
    })
}

pub(crate) async fn get(
    db: impl SqliteExecutor<'_>,
    bucket: &BucketName,
    key: &ObjectKey,
) -> Result<Option<ObjectMeta>, ObjectError> {
    let sql = format!("SELECT {META_COLUMNS} FROM _eddy_objects WHERE bucket = ? AND key = ?");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(bucket.as_str())
        .bind(key.as_str())
        .fetch_optional(db)
        .await?;
    row.as_ref().map(decode).transpose()
}

pub(crate) async fn get_or_missing(
    db: impl SqliteExecutor<'_>,
    bucket: &BucketName,
    key: &ObjectKey,
) -> Result<ObjectMeta, ObjectError> {
    get(db, bucket, key)
        .await?
        .ok_or_else(|| ObjectError::NoSuchKey {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
}

pub(crate) async fn bucket_exists(
    db: impl SqliteExecutor<'_>,
    bucket: &BucketName,
) -> Result<bool, ObjectError> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM _eddy_buckets WHERE name = ?)")
            .bind(bucket.as_str())
            .fetch_one(db)
            .await?,
    )
}

pub(crate) async fn require_bucket(
    db: impl SqliteExecutor<'_>,
    bucket: &BucketName,
) -> Result<(), ObjectError> {
    if bucket_exists(db, bucket).await? {
        Ok(())
    } else {
        Err(ObjectError::NoSuchBucket(bucket.to_string()))
    }
}

pub(crate) async fn upsert(conn: &mut SqliteConnection, m: &ObjectMeta) -> Result<(), ObjectError> {
    let user_meta = serde_json::to_string(&m.user_meta).expect("string maps serialize");
    sqlx::query(
        "INSERT INTO _eddy_objects
             (bucket, key, size, etag, sha256, content_type, user_meta, last_modified_ms, sequencer)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (bucket, key) DO UPDATE SET
             size = excluded.size, etag = excluded.etag, sha256 = excluded.sha256,
             content_type = excluded.content_type, user_meta = excluded.user_meta,
             last_modified_ms = excluded.last_modified_ms, sequencer = excluded.sequencer",
    )
    .bind(m.bucket.as_str())
    .bind(m.key.as_str())
    .bind(m.size as i64)
    .bind(&m.etag)
    .bind(&m.sha256)
    .bind(m.content_type.as_deref())
    .bind(user_meta)
    .bind(m.last_modified_ms)
    .bind(m.sequencer as i64)
    .execute(conn)
    .await?;
    Ok(())
}

pub(crate) fn parse_user_meta(json: &str) -> BTreeMap<String, String> {
    serde_json::from_str(json).unwrap_or_default()
}
