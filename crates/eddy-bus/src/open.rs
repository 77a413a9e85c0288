//! Opening a data directory: the lock that keeps a second process out, the SQLite settings that
//! make a commit durable, and the platform schema.

use std::fs::File;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection, SqlitePool};

use crate::BusError;
use crate::sqlite::{SqliteWriter, error};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// The database file inside a data directory.
pub const DB_FILE: &str = "eddy.db";
const LOCK_FILE: &str = "eddy.lock";
const READERS: u32 = 4;

/// Who may use what eddy creates in a data directory: its own user only.
pub const PRIVATE_DIR: u32 = 0o700;
pub const PRIVATE_FILE: u32 = 0o600;

/// Creates `dir` (and missing parents) readable by eddy's user only, from the start; an
/// existing directory open to others is closed.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR)
        .create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(dir = %dir.display(), mode = format!("{:o}", mode & 0o777), "the directory was open to other users; it is now 0700");
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(PRIVATE_DIR))?;
    }
    Ok(())
}

/// Opens (creating if needed) a file only eddy's user may read; an existing one open to
/// others is closed.
pub fn private_file(path: &Path, options: &mut std::fs::OpenOptions) -> std::io::Result<File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = options.mode(PRIVATE_FILE).open(path)?;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(PRIVATE_FILE))?;
    }
    Ok(file)
}

/// Takes the data directory's lock. The OS releases it when the process ends, however it ends.
pub(crate) fn lock_data_dir(dir: &Path) -> Result<File, BusError> {
    private_dir(dir).map_err(|e| BusError::io(dir, e))?;
    let path = dir.join(LOCK_FILE);
    let file = private_file(
        &path,
        File::options().create(true).truncate(false).write(true),
    )
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
        .busy_timeout(BUSY_TIMEOUT)
}

/// How long a statement waits for another process's lock (an `eddy` command reading the
/// database) before it fails.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The one connection that writes, once the schema is as this eddy knows it.
pub(crate) async fn open_writer(dir: &Path) -> Result<SqliteWriter, BusError> {
    // SQLite creates its files 0644 and gives the WAL and shared-memory files the database
    // file's mode: creating the database file private first keeps all three private.
    for name in [
        DB_FILE.to_string(),
        format!("{DB_FILE}-wal"),
        format!("{DB_FILE}-shm"),
    ] {
        let path = dir.join(&name);
        if name == DB_FILE || path.exists() {
            private_file(&path, File::options().create(true).append(true))
                .map_err(|e| BusError::io(&path, e))?;
        }
    }
    let mut conn = SqliteConnection::connect_with(
        &options(dir)
            .create_if_missing(true)
            .synchronous(SqliteSynchronous::Full),
    )
    .await
    .map_err(error)?;
    check_schema_version(&mut conn, dir).await?;
    MIGRATOR
        .run(&mut conn)
        .await
        .map_err(|e| BusError::Migrate(e.to_string()))?;
    conn.close().await.map_err(error)?;
    SqliteWriter::connect(dir)
}

/// Connections for reading; each statement sees the latest committed state.
pub(crate) async fn open_readers(dir: &Path) -> Result<SqlitePool, BusError> {
    SqlitePoolOptions::new()
        .max_connections(READERS)
        .connect_with(options(dir).read_only(true))
        .await
        .map_err(error)
}

/// Refuses a database that a newer eddy migrated: its schema may mean things this one does not
/// know, and writing to it could corrupt them.
async fn check_schema_version(conn: &mut SqliteConnection, dir: &Path) -> Result<(), BusError> {
    let has_table: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(error)?;
    if !has_table {
        return Ok(());
    }
    let found: Option<i64> =
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut *conn)
            .await
            .map_err(error)?;
    let supported = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    match found {
        Some(found) if found > supported => Err(BusError::SchemaTooNew {
            dir: format!("the data directory {}", dir.display()),
            found,
            supported,
        }),
        _ => Ok(()),
    }
}

static MIGRATOR_PG: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// Connections for reading from PostgreSQL, per node.
const PG_READERS: u32 = 8;

/// How a PostgreSQL database was reached: the writer's connection, the readers' pool and the
/// options to reach it again.
pub(crate) struct Postgres {
    pub(crate) writer: sqlx::PgConnection,
    pub(crate) readers: sqlx::PgPool,
    pub(crate) options: sqlx::postgres::PgConnectOptions,
}

/// Connects to the PostgreSQL database at `url`, refuses one a newer eddy migrated, and applies
/// the platform schema (several nodes starting at once apply it once: the migrator holds a
/// database lock). Every failure says what was wrong.
pub(crate) async fn open_postgres(url: &str) -> Result<Postgres, BusError> {
    use sqlx::ConnectOptions;
    let options = sqlx::postgres::PgConnectOptions::from_str(url).map_err(|e| {
        BusError::Unreachable(format!(
            "{} is not a PostgreSQL URL ({e}); write postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE",
            redacted(url)
        ))
    })?;
    let mut writer = options
        .connect()
        .await
        .map_err(|e| BusError::Unreachable(format!("cannot connect to {}: {e}", redacted(url))))?;
    let too_new = check_pg_schema_version(&mut writer).await?;
    if let Some((found, supported)) = too_new {
        return Err(BusError::SchemaTooNew {
            dir: format!("the database {}", redacted(url)),
            found,
            supported,
        });
    }
    MIGRATOR_PG
        .run(&mut writer)
        .await
        .map_err(|e| BusError::Migrate(e.to_string()))?;
    let readers = sqlx::postgres::PgPoolOptions::new()
        .max_connections(PG_READERS)
        .connect_with(options.clone())
        .await
        .map_err(crate::postgres::error)?;
    Ok(Postgres {
        writer,
        readers,
        options,
    })
}

/// `url` without its password, for messages and logs.
pub fn redacted(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((user, host)) => {
                let user = user.split(':').next().unwrap_or("");
                format!("{scheme}://{user}@{host}")
            }
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// `Some((found, supported))` when a newer eddy migrated the database.
async fn check_pg_schema_version(
    conn: &mut sqlx::PgConnection,
) -> Result<Option<(i64, i64)>, BusError> {
    let migrated: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await
        .map_err(crate::postgres::error)?;
    if !migrated {
        return Ok(None);
    }
    let found: Option<i64> =
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut *conn)
            .await
            .map_err(crate::postgres::error)?;
    let supported = MIGRATOR_PG.iter().map(|m| m.version).max().unwrap_or(0);
    Ok(found.filter(|f| *f > supported).map(|f| (f, supported)))
}
