//! The object index in a SQL database (the storage module of this crate: no SQL elsewhere).
//! Keys sort by their UTF-8 bytes, as S3 lists them: SQLite's default collation does that,
//! and PostgreSQL's `COLLATE "C"` columns do.

use std::collections::{BTreeMap, HashSet};

use async_trait::async_trait;
use eddy_bus::args;
use eddy_bus::sql::{Row, Sql, Value};
use eddy_core::{BucketName, ObjectKey};

use crate::ObjectError;
use crate::checksum::{ChecksumAlgorithm, ChecksumType, ObjectChecksum};
use crate::index::{ObjectIndex, StoredPart, Upload};
use crate::model::*;

/// The object index of the platform database.
pub struct SqlIndex;

/// How long a completed upload is remembered, to answer a repeated completion.
const COMPLETIONS_KEPT_MS: i64 = 24 * 3600 * 1000;

const META_COLUMNS: &str = "bucket, key, size, etag, sha256, content_type, user_meta, headers, checksum, part_sizes, last_modified_ms, sequencer, CASE WHEN data IS NULL THEN 0 ELSE 1 END AS inline";

fn meta(row: &Row) -> Result<ObjectMeta, ObjectError> {
    let user_meta: String = row.get("user_meta")?;
    Ok(ObjectMeta {
        bucket: BucketName::new(row.get::<String>("bucket")?)?,
        key: ObjectKey::new(row.get::<String>("key")?)?,
        size: row.get("size")?,
        etag: row.get("etag")?,
        sha256: row.get("sha256")?,
        content_type: row.get("content_type")?,
        user_meta: map_of(&user_meta),
        headers: map_of(&row.get::<String>("headers")?),
        checksum: checksum_of(row)?,
        part_sizes: serde_json::from_str(&row.get::<String>("part_sizes")?).unwrap_or_default(),
        last_modified_ms: row.get("last_modified_ms")?,
        sequencer: row.get("sequencer")?,
        inline: row.get::<i64>("inline")? == 1,
    })
}

/// A stored checksum (JSON), if there is one and this eddy knows its algorithm.
fn checksum_of(row: &Row) -> Result<Option<ObjectChecksum>, ObjectError> {
    let json: Option<String> = row.get("checksum")?;
    Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
}

fn checksum_json(checksum: &Option<ObjectChecksum>) -> Option<String> {
    checksum
        .as_ref()
        .map(|c| serde_json::to_string(c).expect("checksums serialize"))
}

/// The checksum an upload asked for, as stored.
fn upload_checksum(
    algorithm: Option<String>,
    kind: Option<String>,
) -> Option<(ChecksumAlgorithm, ChecksumType)> {
    Some((
        ChecksumAlgorithm::from_name(&algorithm?)?,
        ChecksumType::from_name(&kind?)?,
    ))
}

fn map_of(json: &str) -> BTreeMap<String, String> {
    serde_json::from_str(json).unwrap_or_default()
}

fn json_of(map: &BTreeMap<String, String>) -> String {
    serde_json::to_string(map).expect("string maps serialize")
}

#[async_trait]
impl ObjectIndex for SqlIndex {
    async fn create_bucket(
        &self,
        db: &mut dyn Sql,
        name: &BucketName,
        now_ms: i64,
    ) -> Result<bool, ObjectError> {
        let inserted = db
            .execute(
                "INSERT INTO _eddy_buckets (name, created_ms) VALUES (?, ?) ON CONFLICT DO NOTHING",
                args![name.as_str(), now_ms],
            )
            .await?;
        Ok(inserted > 0)
    }

    async fn delete_bucket(&self, db: &mut dyn Sql, name: &BucketName) -> Result<(), ObjectError> {
        for sql in [
            "DELETE FROM _eddy_upload_parts WHERE upload_id IN (SELECT upload_id FROM _eddy_uploads WHERE bucket = ?)",
            "DELETE FROM _eddy_uploads WHERE bucket = ?",
            "DELETE FROM _eddy_bucket_cors WHERE bucket = ?",
            "DELETE FROM _eddy_buckets WHERE name = ?",
        ] {
            db.execute(sql, args![name.as_str()]).await?;
        }
        Ok(())
    }

    async fn bucket_exists(
        &self,
        db: &mut dyn Sql,
        name: &BucketName,
    ) -> Result<bool, ObjectError> {
        let found = db
            .fetch_optional(
                "SELECT 1 FROM _eddy_buckets WHERE name = ?",
                args![name.as_str()],
            )
            .await?;
        Ok(found.is_some())
    }

    async fn buckets(&self, db: &mut dyn Sql) -> Result<Vec<BucketInfo>, ObjectError> {
        let rows = db
            .fetch(
                "SELECT name, created_ms FROM _eddy_buckets ORDER BY name",
                args![],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(BucketInfo {
                    name: BucketName::new(r.get::<String>("name")?)?,
                    created_ms: r.get("created_ms")?,
                })
            })
            .collect()
    }

    async fn has_objects(
        &self,
        db: &mut dyn Sql,
        bucket: &BucketName,
    ) -> Result<bool, ObjectError> {
        let found = db
            .fetch_optional(
                "SELECT 1 FROM _eddy_objects WHERE bucket = ? LIMIT 1",
                args![bucket.as_str()],
            )
            .await?;
        Ok(found.is_some())
    }

    async fn object(
        &self,
        db: &mut dyn Sql,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<Option<ObjectMeta>, ObjectError> {
        let sql = format!("SELECT {META_COLUMNS} FROM _eddy_objects WHERE bucket = ? AND key = ?");
        let row = db
            .fetch_optional(&sql, args![bucket.as_str(), key.as_str()])
            .await?;
        row.as_ref().map(meta).transpose()
    }

    async fn object_with_data(
        &self,
        db: &mut dyn Sql,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<Option<(ObjectMeta, Option<Vec<u8>>)>, ObjectError> {
        let sql =
            format!("SELECT {META_COLUMNS}, data FROM _eddy_objects WHERE bucket = ? AND key = ?");
        let row = db
            .fetch_optional(&sql, args![bucket.as_str(), key.as_str()])
            .await?;
        row.map(|r| Ok((meta(&r)?, r.get::<Option<Vec<u8>>>("data")?)))
            .transpose()
    }

    async fn put_object(
        &self,
        db: &mut dyn Sql,
        m: &ObjectMeta,
        data: Option<&[u8]>,
    ) -> Result<(), ObjectError> {
        debug_assert_eq!(m.inline, data.is_some());
        db.execute(
            "INSERT INTO _eddy_objects
                 (bucket, key, size, etag, sha256, content_type, user_meta, headers, checksum, part_sizes, last_modified_ms, sequencer, data)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (bucket, key) DO UPDATE SET
                 size = excluded.size, etag = excluded.etag, sha256 = excluded.sha256,
                 content_type = excluded.content_type, user_meta = excluded.user_meta,
                 headers = excluded.headers, checksum = excluded.checksum,
                 part_sizes = excluded.part_sizes, data = excluded.data,
                 last_modified_ms = excluded.last_modified_ms, sequencer = excluded.sequencer",
            args![
                m.bucket.as_str(),
                m.key.as_str(),
                m.size,
                &m.etag,
                &m.sha256,
                m.content_type.clone(),
                json_of(&m.user_meta),
                json_of(&m.headers),
                checksum_json(&m.checksum),
                serde_json::to_string(&m.part_sizes).expect("sizes serialize"),
                m.last_modified_ms,
                m.sequencer,
                data.map(<[u8]>::to_vec)
            ],
        )
        .await?;
        Ok(())
    }

    async fn delete_object(
        &self,
        db: &mut dyn Sql,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<(), ObjectError> {
        db.execute(
            "DELETE FROM _eddy_objects WHERE bucket = ? AND key = ?",
            args![bucket.as_str(), key.as_str()],
        )
        .await?;
        Ok(())
    }

    async fn scan(
        &self,
        db: &mut dyn Sql,
        bucket: &BucketName,
        from: &ListPosition,
        limit: usize,
    ) -> Result<Vec<ObjectMeta>, ObjectError> {
        let (op, key) = match from {
            ListPosition::After(k) => (">", k),
            ListPosition::From(k) => (">=", k),
        };
        let sql = format!(
            "SELECT {META_COLUMNS} FROM _eddy_objects WHERE bucket = ? AND key {op} ? ORDER BY key {}",
            eddy_bus::sql::limit(limit as u64)
        );
        let rows = db.fetch(&sql, args![bucket.as_str(), key.as_str()]).await?;
        rows.iter().map(meta).collect()
    }

    async fn create_upload(&self, db: &mut dyn Sql, u: &Upload) -> Result<(), ObjectError> {
        db.execute(
            "INSERT INTO _eddy_uploads
                 (upload_id, bucket, key, content_type, user_meta, headers, checksum_algorithm, checksum_type, created_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            args![
                &u.upload_id,
                u.bucket.as_str(),
                u.key.as_str(),
                u.content_type.clone(),
                json_of(&u.user_meta),
                json_of(&u.headers),
                u.checksum.map(|(a, _)| a.name()),
                u.checksum.map(|(_, t)| t.name()),
                u.created_ms
            ],
        )
        .await?;
        Ok(())
    }

    async fn upload(
        &self,
        db: &mut dyn Sql,
        id: &str,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<Option<Upload>, ObjectError> {
        let row = db
            .fetch_optional(
                "SELECT content_type, user_meta, headers, checksum_algorithm, checksum_type, created_ms
                 FROM _eddy_uploads
                 WHERE upload_id = ? AND bucket = ? AND key = ?",
                args![id, bucket.as_str(), key.as_str()],
            )
            .await?;
        row.map(|r| {
            Ok(Upload {
                upload_id: id.to_string(),
                bucket: bucket.clone(),
                key: key.clone(),
                content_type: r.get("content_type")?,
                user_meta: map_of(&r.get::<String>("user_meta")?),
                headers: map_of(&r.get::<String>("headers")?),
                checksum: upload_checksum(
                    r.get::<Option<String>>("checksum_algorithm")?,
                    r.get::<Option<String>>("checksum_type")?,
                ),
                created_ms: r.get("created_ms")?,
            })
        })
        .transpose()
    }

    async fn record_completion(
        &self,
        db: &mut dyn Sql,
        id: &str,
        (bucket, key): (&BucketName, &ObjectKey),
        etag: &str,
        now_ms: i64,
    ) -> Result<(), ObjectError> {
        db.execute(
            "DELETE FROM _eddy_completed_uploads WHERE completed_ms < ?",
            args![now_ms - COMPLETIONS_KEPT_MS],
        )
        .await?;
        db.execute(
            "INSERT INTO _eddy_completed_uploads (upload_id, bucket, key, etag, completed_ms)
             VALUES (?, ?, ?, ?, ?)",
            args![id, bucket.as_str(), key.as_str(), etag, now_ms],
        )
        .await?;
        Ok(())
    }

    async fn completion(
        &self,
        db: &mut dyn Sql,
        id: &str,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<Option<String>, ObjectError> {
        let row = db
            .fetch_optional(
                "SELECT etag FROM _eddy_completed_uploads
                 WHERE upload_id = ? AND bucket = ? AND key = ? AND completed_ms >= ?",
                args![
                    id,
                    bucket.as_str(),
                    key.as_str(),
                    eddy_bus::now_ms() - COMPLETIONS_KEPT_MS
                ],
            )
            .await?;
        Ok(row.map(|r| r.at::<String>(0)).transpose()?)
    }

    async fn delete_upload(&self, db: &mut dyn Sql, id: &str) -> Result<(), ObjectError> {
        db.execute(
            "DELETE FROM _eddy_upload_parts WHERE upload_id = ?",
            args![id],
        )
        .await?;
        db.execute("DELETE FROM _eddy_uploads WHERE upload_id = ?", args![id])
            .await?;
        Ok(())
    }

    async fn uploads(
        &self,
        db: &mut dyn Sql,
        bucket: &BucketName,
    ) -> Result<Vec<UploadInfo>, ObjectError> {
        let rows = db
            .fetch(
                "SELECT upload_id, key, created_ms FROM _eddy_uploads WHERE bucket = ? ORDER BY key, created_ms",
                args![bucket.as_str()],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(UploadInfo {
                    upload_id: r.get("upload_id")?,
                    bucket: bucket.clone(),
                    key: ObjectKey::new(r.get::<String>("key")?)?,
                    created_ms: r.get("created_ms")?,
                })
            })
            .collect()
    }

    async fn put_part(
        &self,
        db: &mut dyn Sql,
        upload_id: &str,
        part: &StoredPart,
    ) -> Result<(), ObjectError> {
        let p = &part.info;
        db.execute(
            "INSERT INTO _eddy_upload_parts
                 (upload_id, part_number, size, etag, sha256, checksum, last_modified_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (upload_id, part_number) DO UPDATE SET
                 size = excluded.size, etag = excluded.etag, sha256 = excluded.sha256,
                 checksum = excluded.checksum, last_modified_ms = excluded.last_modified_ms",
            args![
                upload_id,
                p.part_number,
                p.size,
                &p.etag,
                &part.blob,
                checksum_json(&p.checksum),
                p.last_modified_ms
            ],
        )
        .await?;
        Ok(())
    }

    async fn parts(
        &self,
        db: &mut dyn Sql,
        upload_id: &str,
    ) -> Result<Vec<StoredPart>, ObjectError> {
        let rows = db
            .fetch(
                "SELECT part_number, size, etag, sha256, checksum, last_modified_ms FROM _eddy_upload_parts
                 WHERE upload_id = ? ORDER BY part_number",
                args![upload_id],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredPart {
                    info: PartInfo {
                        part_number: r.get("part_number")?,
                        size: r.get("size")?,
                        etag: r.get("etag")?,
                        checksum: checksum_of(r)?,
                        last_modified_ms: r.get("last_modified_ms")?,
                    },
                    blob: r.get("sha256")?,
                })
            })
            .collect()
    }

    async fn referenced_blobs(&self, db: &mut dyn Sql) -> Result<HashSet<String>, ObjectError> {
        let rows = db
            .fetch(
                "SELECT sha256 FROM _eddy_objects WHERE data IS NULL
                 UNION SELECT sha256 FROM _eddy_upload_parts",
                args![],
            )
            .await?;
        rows.iter().map(|r| Ok(r.at::<String>(0)?)).collect()
    }

    async fn referenced_among(
        &self,
        db: &mut dyn Sql,
        blobs: &[&str],
    ) -> Result<HashSet<String>, ObjectError> {
        let within = db.dialect().in_texts();
        let sql = format!(
            "SELECT sha256 FROM _eddy_objects WHERE data IS NULL AND sha256 {within}
             UNION SELECT sha256 FROM _eddy_upload_parts WHERE sha256 {within}"
        );
        let list = Value::texts(blobs);
        let rows = db.fetch(&sql, &[list.clone(), list]).await?;
        rows.iter().map(|r| Ok(r.at::<String>(0)?)).collect()
    }

    async fn put_cors(
        &self,
        db: &mut dyn Sql,
        bucket: &BucketName,
        rules: &[CorsRule],
    ) -> Result<(), ObjectError> {
        let json = serde_json::to_string(rules).expect("rules serialize");
        db.execute(
            "INSERT INTO _eddy_bucket_cors (bucket, rules) VALUES (?, ?)
             ON CONFLICT (bucket) DO UPDATE SET rules = excluded.rules",
            args![bucket.as_str(), json],
        )
        .await?;
        Ok(())
    }

    async fn cors(
        &self,
        db: &mut dyn Sql,
        bucket: &BucketName,
    ) -> Result<Option<Vec<CorsRule>>, ObjectError> {
        let json: Option<String> = db
            .fetch_optional(
                "SELECT rules FROM _eddy_bucket_cors WHERE bucket = ?",
                args![bucket.as_str()],
            )
            .await?
            .map(|r| r.at(0))
            .transpose()?;
        json.map(|j| {
            serde_json::from_str(&j).map_err(|e| {
                ObjectError::InvalidRequest(format!("the stored CORS rules cannot be read: {e}"))
            })
        })
        .transpose()
    }

    async fn delete_cors(&self, db: &mut dyn Sql, bucket: &BucketName) -> Result<(), ObjectError> {
        db.execute(
            "DELETE FROM _eddy_bucket_cors WHERE bucket = ?",
            args![bucket.as_str()],
        )
        .await?;
        Ok(())
    }
}
