//! The SQLite side of [`Sql`]: eddy's values bound as SQLite's, rows read back as eddy's,
//! SQLite's error codes told apart (a full disk is not a broken database).

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, Row as _, SqliteConnection, SqliteExecutor, SqlitePool, TypeInfo, ValueRef};

use crate::BusError;
use crate::error::Failure;
use crate::sql::{Dialect, Row, Value};
use crate::writer::WriterConnection;

/// A SQLite failure as eddy tells it: the kind from SQLite's result code, and its message.
pub(crate) fn error(e: sqlx::Error) -> BusError {
    match &e {
        sqlx::Error::Database(db) => {
            let code: i64 = db.code().and_then(|c| c.parse().ok()).unwrap_or(0);
            // The primary result code is the low byte of the extended one.
            let failure = match code & 0xff {
                _ if db.is_unique_violation() => Failure::UniqueViolation,
                19 => Failure::Constraint, // SQLITE_CONSTRAINT
                13 => Failure::Full,       // SQLITE_FULL
                10 => Failure::Io,         // SQLITE_IOERR
                5 | 6 => Failure::Busy,    // SQLITE_BUSY, SQLITE_LOCKED
                _ => Failure::Other,
            };
            BusError::Database {
                failure,
                message: db.message().to_string(),
            }
        }
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

/// The writer's connection.
pub(crate) struct SqliteWriter {
    pub(crate) conn: SqliteConnection,
    pub(crate) dir: std::path::PathBuf,
}

crate::sql::sql_through!(SqliteWriter, Dialect::Sqlite, |this| &mut this.conn);

#[async_trait]
impl WriterConnection for SqliteWriter {
    async fn begin(&mut self, known: u64) -> Result<u64, BusError> {
        // The data directory's lock makes this the only writer: what it committed last is the
        // journal's end.
        script(&mut self.conn, "BEGIN IMMEDIATE").await?;
        Ok(known)
    }

    async fn commit(&mut self) -> Result<(), BusError> {
        script(&mut self.conn, "COMMIT").await
    }

    async fn rollback(&mut self) -> Result<(), BusError> {
        script(&mut self.conn, "ROLLBACK").await
    }

    async fn reconnect(&mut self) -> Result<(), BusError> {
        self.conn = crate::open::reconnect_writer(&self.dir).await?;
        Ok(())
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
