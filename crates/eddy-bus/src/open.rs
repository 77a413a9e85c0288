//! Opening a data directory: the lock that keeps a second process out, the SQLite settings that
//! make a commit durable, and the platform schema.

use std::fs::File;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection, SqlitePool};

use crate::BusError;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// The database file inside a data directory.
pub const DB_FILE: &str = "eddy.db";
const LOCK_FILE: &str = "eddy.lock";
const READERS: u32 = 4;

/// Takes the data directory's lock. The OS releases it when the process ends, however it ends.
pub(crate) fn lock_data_dir(dir: &Path) -> Result<File, BusError> {
    std::fs::create_dir_all(dir).map_err(|e| BusError::io(dir, e))?;
    let path = dir.join(LOCK_FILE);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| BusError::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(BusError::DataDirInUse {
            dir: dir.display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(BusError::io(&path, e)),
    }
}

fn options(dir: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::from_str("sqlite://")
        .expect("static URL")
        .filename(dir.join(DB_FILE))
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10))
}

/// The one connection that writes: WAL with `synchronous=FULL`, so a commit survives power loss.
pub(crate) async fn open_writer(dir: &Path) -> Result<SqliteConnection, BusError> {
    let mut conn = SqliteConnection::connect_with(
        &options(dir)
            .create_if_missing(true)
            .synchronous(SqliteSynchronous::Full),
    )
    .await?;
    check_schema_version(&mut conn, dir).await?;
    MIGRATOR.run(&mut conn).await?;
    Ok(conn)
}

/// Connections for reading; each statement sees the latest committed state.
pub(crate) async fn open_readers(dir: &Path) -> Result<SqlitePool, BusError> {
    Ok(SqlitePoolOptions::new()
        .max_connections(READERS)
        .connect_with(options(dir).read_only(true))
        .await?)
}

/// Refuses a database that a newer eddy migrated: its schema may mean things this one does not
/// know, and writing to it could corrupt them.
async fn check_schema_version(conn: &mut SqliteConnection, dir: &Path) -> Result<(), BusError> {
    let has_table: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
    )
    .fetch_one(&mut *conn)
    .await?;
    if !has_table {
        return Ok(());
    }
    let found: Option<i64> =
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut *conn)
            .await?;
    let supported = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    match found {
        Some(found) if found > supported => Err(BusError::SchemaTooNew {
            dir: dir.display().to_string(),
            found,
            supported,
        }),
        _ => Ok(()),
    }
}
