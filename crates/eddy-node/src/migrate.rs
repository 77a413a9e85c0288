//! `eddy migrate`: a single node's SQLite data directory copied into PostgreSQL (and its blobs
//! into an S3 bucket), so that several nodes can carry on from it. The source is opened as
//! eddy opens it (so it cannot run meanwhile); the target must be empty. Every table is copied
//! whole — the journal with its sequence numbers, objects, rows, deliveries pending or dead,
//! invocation records, credentials and the app in service — and counted on both sides.

use std::path::Path;

use eddy_bus::Bus;
use eddy_objects::{BlobLimits, BlobStore, DiskBlobs, S3Blobs, S3Location};
use eddy_tables::TableStore;

use crate::NodeError;

/// The platform table that declaring the user tables fills (so it is not copied).
const TABLE_SCHEMAS: &str = "_eddy_tables";

/// What was copied: each table with its rows, and how many blobs.
#[derive(Debug, Default)]
pub struct Migrated {
    pub tables: Vec<(String, u64)>,
    pub blobs: u64,
}

/// Copies the data directory `data_dir` into the PostgreSQL database at `database` and, when
/// `blobs` is given, its blobs into that bucket (otherwise they stay in `data_dir`, and the
/// node must keep it).
pub async fn migrate(
    data_dir: &Path,
    database: &str,
    blobs: Option<S3Location>,
) -> Result<Migrated, NodeError> {
    let source = Bus::open(data_dir).await?;
    // The target's node directory holds nothing worth keeping: a folder of its own inside the
    // data directory, removed at the end.
    let scratch = data_dir.join("migrating");
    let target = Bus::open_postgres(database, &scratch).await?;
    let result = copy_all(&source, &target, data_dir, blobs, &scratch).await;
    drop(target);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

async fn copy_all(
    source: &Bus,
    target: &Bus,
    data_dir: &Path,
    blobs: Option<S3Location>,
    scratch: &Path,
) -> Result<Migrated, NodeError> {
    for table in target.platform_tables().await? {
        let rows = target.count_rows(&table).await?;
        if rows > 0 {
            return Err(NodeError::TargetNotEmpty { table, rows });
        }
    }
    let mut migrated = Migrated::default();
    // Blobs first: an object copied is then never without its bytes.
    if let Some(location) = blobs {
        let from = DiskBlobs::open(data_dir)?;
        let to = S3Blobs::connect(location, scratch).await?;
        migrated.blobs = copy_blobs(&from, &to).await?;
    }
    let tables = TableStore::open(source.clone())
        .await
        .map_err(NodeError::Tables)?;
    let into = TableStore::open(target.clone())
        .await
        .map_err(NodeError::Tables)?;
    let mut names = Vec::new();
    for schema in tables.schemas() {
        into.declare((*schema).clone())
            .await
            .map_err(|source| NodeError::Table {
                table: schema.name().to_string(),
                at: "migrate".into(),
                source,
            })?;
        names.push(schema.name().to_string());
    }
    let platform = source.platform_tables().await?;
    for table in platform
        .into_iter()
        .filter(|t| t != TABLE_SCHEMAS)
        .chain(names)
    {
        let count = source.count_rows(&table).await?;
        let copied = source.copy_table_to(target, &table).await?;
        if copied != count || target.count_rows(&table).await? != count {
            return Err(NodeError::Incomplete {
                what: table,
                count,
                copied,
            });
        }
        tracing::info!(table, rows = copied, "copied");
        migrated.tables.push((table, copied));
    }
    Ok(migrated)
}

/// Copies every blob, checking that each arrives under its own content hash.
async fn copy_blobs(from: &DiskBlobs, to: &S3Blobs) -> Result<u64, NodeError> {
    let limits = BlobLimits {
        max: u64::MAX,
        min: 0,
        md5: None,
        checksum: None,
    };
    let stored = from.list().await?;
    let mut copied = 0;
    for blob in &stored {
        let mut bytes = from.read(&blob.id, 0, u64::MAX).await?;
        let written = to.write(&mut bytes, &limits).await?;
        if written.sha256 != blob.id {
            return Err(NodeError::Incomplete {
                what: format!("blob {} (arrived as {})", blob.id, written.sha256),
                count: stored.len() as u64,
                copied,
            });
        }
        copied += 1;
    }
    tracing::info!(blobs = copied, "blobs copied");
    Ok(copied)
}
