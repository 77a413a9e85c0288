//! The SQLite side of [`Sql`]: eddy's values bound as SQLite's, rows read back as eddy's,
//! SQLite's error codes told apart (a full disk is not a broken database).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, Row as _, SqliteExecutor, SqlitePool, TypeInfo, ValueRef};

use crate::BusError;
use crate::error::Failure;
use crate::sql::{Dialect, Row, Sql, Value};
use crate::writer::WriterConnection;

/// What SQLite's extended result code says went wrong (its low byte is the primary code).
fn failure(extended_code: i64) -> Failure {
    const CONSTRAINT_PRIMARYKEY: i64 = 1555;
    const CONSTRAINT_UNIQUE: i64 = 2067;
    match extended_code {
        CONSTRAINT_UNIQUE | CONSTRAINT_PRIMARYKEY => Failure::UniqueViolation,
        code => match code & 0xff {
            19 => Failure::Constraint, // SQLITE_CONSTRAINT
            13 => Failure::Full,       // SQLITE_FULL
            10 => Failure::Io,         // SQLITE_IOERR
            5 | 6 => Failure::Busy,    // SQLITE_BUSY, SQLITE_LOCKED
            _ => Failure::Other,
        },
    }
}

/// A SQLite failure met through sqlx (the readers, opening, migrations) as eddy tells it: the
/// kind from SQLite's result code, and its message.
pub(crate) fn error(e: sqlx::Error) -> BusError {
    match &e {
        sqlx::Error::Database(db) => BusError::Database {
            failure: failure(db.code().and_then(|c| c.parse().ok()).unwrap_or(0)),
            message: db.message().to_string(),
        },
        sqlx::Error::Io(io) if io.raw_os_error() == Some(28) => BusError::Database {
            failure: Failure::Full,
            message: e.to_string(),
        },
        sqlx::Error::Io(_) => BusError::Database {
            failure: Failure::Io,
            message: e.to_string(),
        },
        _ => BusError::Database {
            failure: Failure::Other,
            message: e.to_string(),
        },
    }
}

/// A SQLite failure met by the writer's own statements, told as [`error`] tells sqlx's.
fn statement_error(e: rusqlite::Error) -> BusError {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => BusError::Database {
            failure: failure(i64::from(code.extended_code)),
            message: message.unwrap_or_else(|| code.to_string()),
        },
        other => BusError::Database {
            failure: Failure::Other,
            message: other.to_string(),
        },
    }
}

pub(crate) fn arguments(args: &[Value]) -> SqliteArguments {
    let mut bound = SqliteArguments::default();
    for value in args {
        let added = match value {
            Value::Null => bound.add(Option::<i64>::None),
            Value::Int(i) => bound.add(*i),
            Value::Real(r) => bound.add(*r),
            Value::Text(t) => bound.add(t.clone()),
            Value::Bytes(b) => bound.add(b.clone()),
        };
        added.expect("SQLite arguments of these types always encode");
    }
    bound
}

fn decode(row: &SqliteRow, columns: &Arc<[String]>) -> Result<Row, BusError> {
    let mut values = Vec::with_capacity(columns.len());
    for i in 0..columns.len() {
        let raw = row.try_get_raw(i).map_err(error)?;
        let value = if raw.is_null() {
            Value::Null
        } else {
            match raw.type_info().name() {
                "INTEGER" | "BOOLEAN" | "INT4" => Value::Int(row.try_get(i).map_err(error)?),
                "REAL" => Value::Real(row.try_get(i).map_err(error)?),
                "BLOB" => Value::Bytes(row.try_get(i).map_err(error)?),
                _ => Value::Text(row.try_get(i).map_err(error)?),
            }
        };
        values.push(value);
    }
    Ok(Row::new(columns.clone(), values))
}

fn rows(found: Vec<SqliteRow>) -> Result<Vec<Row>, BusError> {
    crate::sql::decoded(found, decode)
}

async fn execute<'c>(
    db: impl SqliteExecutor<'c>,
    sql: &str,
    args: &[Value],
) -> Result<u64, BusError> {
    let done = sqlx::query_with(sqlx::AssertSqlSafe(sql.to_string()), arguments(args))
        .execute(db)
        .await
        .map_err(error)?;
    Ok(done.rows_affected())
}

async fn fetch<'c>(
    db: impl SqliteExecutor<'c>,
    sql: &str,
    args: &[Value],
) -> Result<Vec<Row>, BusError> {
    let found = sqlx::query_with(sqlx::AssertSqlSafe(sql.to_string()), arguments(args))
        .fetch_all(db)
        .await
        .map_err(error)?;
    rows(found)
}

/// The writer's connection. Its statements run on the thread that calls them — the writer's
/// own (`WriterConnection::blocks`) — where sqlx would hand each one to its connection's thread
/// and wait to be woken with the answer: two thread switches per statement, which bounded the
/// writer's rate (a write runs several statements; a batch of settlements, hundreds).
pub(crate) struct SqliteWriter {
    conn: rusqlite::Connection,
    dir: PathBuf,
}

/// Prepared statements kept by the writer: its own statements, and the multi-row inserts' few
/// shapes.
const STATEMENT_CACHE: usize = 256;

impl SqliteWriter {
    /// Opens the writer's connection to the database in `dir`, which [`crate::open`] created
    /// and migrated: WAL with `synchronous=FULL`, so a commit survives power loss.
    pub(crate) fn connect(dir: &Path) -> Result<Self, BusError> {
        use rusqlite::OpenFlags;
        let conn = rusqlite::Connection::open_with_flags(
            dir.join(crate::open::DB_FILE),
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(statement_error)?;
        conn.busy_timeout(crate::open::BUSY_TIMEOUT)
            .map_err(statement_error)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
        )
        .map_err(statement_error)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Self {
            conn,
            dir: dir.to_path_buf(),
        })
    }

    /// `sql` prepared (or taken from the cache) with `args` bound.
    fn prepared(
        &self,
        sql: &str,
        args: &[Value],
    ) -> Result<rusqlite::CachedStatement<'_>, BusError> {
        let mut statement = self.conn.prepare_cached(sql).map_err(statement_error)?;
        if statement.parameter_count() != args.len() {
            return Err(BusError::Database {
                failure: Failure::Other,
                message: format!(
                    "the statement takes {} arguments, not {}: {sql}",
                    statement.parameter_count(),
                    args.len()
                ),
            });
        }
        for (index, value) in args.iter().enumerate() {
            statement
                .raw_bind_parameter(index + 1, Bound(value))
                .map_err(statement_error)?;
        }
        Ok(statement)
    }
}

/// eddy's value as SQLite's, borrowed.
struct Bound<'v>(&'v Value);

impl rusqlite::ToSql for Bound<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::ValueRef;
        Ok(rusqlite::types::ToSqlOutput::Borrowed(match self.0 {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(*i),
            Value::Real(r) => ValueRef::Real(*r),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Bytes(b) => ValueRef::Blob(b),
        }))
    }
}

/// A value SQLite holds as eddy's, by its storage class (as sqlx reads a non-null value).
fn read(value: rusqlite::types::ValueRef<'_>) -> Result<Value, BusError> {
    use rusqlite::types::ValueRef;
    Ok(match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(
            String::from_utf8(t.to_vec())
                .map_err(|e| BusError::Decode(format!("a text value is not UTF-8: {e}")))?,
        ),
        ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
    })
}

#[async_trait]
impl Sql for SqliteWriter {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn execute(&mut self, sql: &str, args: &[Value]) -> Result<u64, BusError> {
        let mut statement = self.prepared(sql, args)?;
        // SQLite counts the rows of the last statement that changed any: a query changed none.
        let changes_rows = !statement.readonly();
        // Rows a statement returns (`RETURNING`) are stepped through and dropped, as sqlx does.
        let mut rows = statement.raw_query();
        while rows.next().map_err(statement_error)?.is_some() {}
        drop(rows);
        drop(statement);
        Ok(if changes_rows { self.conn.changes() } else { 0 })
    }

    async fn fetch(&mut self, sql: &str, args: &[Value]) -> Result<Vec<Row>, BusError> {
        let mut statement = self.prepared(sql, args)?;
        let columns: Arc<[String]> = statement
            .column_names()
            .into_iter()
            .map(String::from)
            .collect();
        let mut rows = statement.raw_query();
        let mut found = Vec::new();
        while let Some(row) = rows.next().map_err(statement_error)? {
            let values = (0..columns.len())
                .map(|index| read(row.get_ref(index).map_err(statement_error)?))
                .collect::<Result<Vec<_>, _>>()?;
            found.push(Row::new(columns.clone(), values));
        }
        Ok(found)
    }

    async fn run_script(&mut self, sql: &str) -> Result<(), BusError> {
        self.conn.execute_batch(sql).map_err(statement_error)
    }
}

#[async_trait]
impl WriterConnection for SqliteWriter {
    async fn begin(&mut self, known: u64) -> Result<u64, BusError> {
        // The data directory's lock makes this the only writer: what it committed last is the
        // journal's end.
        self.run_script("BEGIN IMMEDIATE").await?;
        Ok(known)
    }

    async fn commit(&mut self) -> Result<(), BusError> {
        self.run_script("COMMIT").await
    }

    async fn rollback(&mut self) -> Result<(), BusError> {
        self.run_script("ROLLBACK").await
    }

    async fn reconnect(&mut self) -> Result<(), BusError> {
        *self = Self::connect(&self.dir)?;
        Ok(())
    }

    fn blocks(&self) -> bool {
        true
    }
}

async fn script<'c>(db: impl SqliteExecutor<'c>, sql: &str) -> Result<(), BusError> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(db)
        .await
        .map_err(error)?;
    Ok(())
}

crate::sql::sql_through!(SqlitePool, Dialect::Sqlite, |this| &*this);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args;

    /// A writer on a fresh database holding one table of every storage class.
    fn writer(dir: &tempfile::TempDir) -> SqliteWriter {
        std::fs::File::create(dir.path().join(crate::open::DB_FILE)).expect("the file");
        let writer = SqliteWriter::connect(dir.path()).expect("opens");
        writer
            .conn
            .execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER, r REAL, b BLOB)")
            .expect("the table");
        writer
    }

    #[tokio::test]
    async fn the_writer_reads_back_what_it_bound_by_storage_class() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = writer(&dir);
        // Durable commits (power loss included), as the connection sqlx opened had them.
        let settings = db
            .fetch(
                "SELECT * FROM pragma_journal_mode, pragma_synchronous, pragma_foreign_keys",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(
            settings[0].values(),
            [Value::Text("wal".into()), Value::Int(2), Value::Int(1)]
        );
        let inserted = db
            .execute(
                "INSERT INTO t VALUES (?, ?, ?, ?), (?, ?, ?, ?)",
                args![
                    "a",
                    7i64,
                    0.5,
                    vec![0u8, 255],
                    "b",
                    None::<i64>,
                    None::<f64>,
                    None::<Vec<u8>>
                ],
            )
            .await
            .unwrap();
        assert_eq!(inserted, 2);
        let rows = db
            .fetch("SELECT k, n, r, b, n + 1 AS next FROM t ORDER BY k", &[])
            .await
            .unwrap();
        assert_eq!(rows[0].columns(), ["k", "n", "r", "b", "next"]);
        assert_eq!(
            rows[0].values(),
            [
                Value::Text("a".into()),
                Value::Int(7),
                Value::Real(0.5),
                Value::Bytes(vec![0, 255]),
                Value::Int(8)
            ]
        );
        assert_eq!(
            rows[1].values()[1..],
            [Value::Null, Value::Null, Value::Null, Value::Null]
        );
        // A statement's returned rows are stepped through: it runs, and counts what it changed.
        let changed = db
            .execute("UPDATE t SET n = 1 RETURNING k", &[])
            .await
            .unwrap();
        assert_eq!(changed, 2);
        let read = db.execute("SELECT k FROM t", &[]).await.unwrap();
        assert_eq!(read, 0, "a query changes nothing");
    }

    #[tokio::test]
    async fn the_writer_tells_its_failures_apart() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = writer(&dir);
        db.execute("INSERT INTO t (k) VALUES (?)", args!["a"])
            .await
            .unwrap();
        let twice = db
            .execute("INSERT INTO t (k) VALUES (?)", args!["a"])
            .await
            .unwrap_err();
        assert!(twice.is_unique_violation(), "{twice}");
        assert!(
            twice.to_string().contains("UNIQUE constraint failed: t.k"),
            "{twice}"
        );
        let short = db
            .execute("INSERT INTO t (k, n) VALUES (?, ?)", args!["b"])
            .await
            .unwrap_err();
        assert!(
            short.to_string().contains("takes 2 arguments, not 1"),
            "{short}"
        );
        let broken = db.fetch("SELECT nope FROM t", &[]).await.unwrap_err();
        assert!(
            broken.to_string().contains("no such column: nope"),
            "{broken}"
        );
        // Nothing half-done stayed behind.
        let rows = db.fetch("SELECT k FROM t", &[]).await.unwrap();
        assert_eq!(rows.len(), 1);
    }

    #[tokio::test]
    async fn a_limit_written_into_the_statement_keeps_it_prepared() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = writer(&dir);
        // How many times the cached statement was planned again, after three runs of it.
        let mut replanned = async |sql: &str, args: &[Value]| {
            for _ in 0..3 {
                db.fetch(sql, args).await.unwrap();
            }
            let statement = db.conn.prepare_cached(sql).unwrap();
            statement.get_status(rusqlite::StatementStatus::RePrepare)
        };
        let bound = "SELECT k FROM t WHERE k > ? ORDER BY k LIMIT ?";
        assert!(
            replanned(bound, args!["a", 10]).await >= 2,
            "SQLite plans `LIMIT ?` for each value bound"
        );
        let written = format!(
            "SELECT k FROM t WHERE k > ? ORDER BY k {}",
            crate::sql::limit(10u32)
        );
        assert_eq!(replanned(&written, args!["a"]).await, 0);
    }
}
