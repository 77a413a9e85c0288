//! The PostgreSQL side of [`Sql`]: statements written with `?` numbered as PostgreSQL wants,
//! eddy's values bound as PostgreSQL's, rows read back as eddy's, SQLSTATEs told apart; and the
//! writer's connection, which takes the journal's order for each transaction.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::postgres::{
    PgArguments, PgConnectOptions, PgConnection, PgPool, PgRow, PgTypeInfo, Postgres,
};
use sqlx::{Arguments, ConnectOptions, Row as _, TypeInfo, ValueRef};

use crate::BusError;
use crate::error::Failure;
use crate::sql::{Dialect, Row, Value};
use crate::writer::WriterConnection;

/// The advisory lock that orders the journal: held by an event-writing transaction from its
/// `BEGIN` to its `COMMIT`, so sequence numbers are given in commit order.
pub(crate) const JOURNAL_LOCK: i64 = 0x6564_6479_6a6f_7572; // "eddyjour"

/// A PostgreSQL failure as eddy tells it: the kind from its SQLSTATE, and its message.
pub(crate) fn error(e: sqlx::Error) -> BusError {
    let failure = match &e {
        sqlx::Error::Database(db) => {
            let state = db.code().map(|c| c.to_string()).unwrap_or_default();
            match state.as_str() {
                "23505" => Failure::UniqueViolation,
                s if s.starts_with("23") => Failure::Constraint,
                "53100" => Failure::Full, // disk_full
                "58030" => Failure::Io,   // io_error
                // Serialization failures, deadlocks, lock waits and a server shutting down:
                // trying again may work.
                "40001" | "40P01" | "55P03" | "57P01" | "57P02" | "57P03" => Failure::Busy,
                s if s.starts_with("08") => Failure::Io, // the connection failed
                _ => Failure::Other,
            }
        }
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => Failure::Io,
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => Failure::Busy,
        _ => Failure::Other,
    };
    BusError::Database {
        failure,
        message: e.to_string(),
    }
}

/// `sql` with each `?` outside quotes numbered `$1`, `$2`, …
pub(crate) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let (mut n, mut quote) = (0, None);
    for c in sql.chars() {
        match (c, quote) {
            ('\'' | '"', None) => quote = Some(c),
            (c, Some(q)) if c == q => quote = None,
            ('?', None) => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

/// A NULL whose type PostgreSQL infers from where it is used (as for a literal `NULL`).
struct UntypedNull;

impl sqlx::Type<Postgres> for UntypedNull {
    fn type_info() -> PgTypeInfo {
        // `unknown`: the type of a literal until its context decides.
        PgTypeInfo::with_oid(sqlx::postgres::types::Oid(705))
    }
}

impl sqlx::Encode<'_, Postgres> for UntypedNull {
    fn encode_by_ref(
        &self,
        _buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        Ok(sqlx::encode::IsNull::Yes)
    }
}

fn arguments(args: &[Value]) -> PgArguments {
    let mut bound = PgArguments::default();
    for value in args {
        let added = match value {
            Value::Null => bound.add(UntypedNull),
            Value::Int(i) => bound.add(*i),
            Value::Real(r) => bound.add(*r),
            Value::Text(t) => bound.add(t.clone()),
            Value::Bytes(b) => bound.add(b.clone()),
        };
        added.expect("PostgreSQL arguments of these types always encode");
    }
    bound
}

fn decode(row: &PgRow, columns: &Arc<[String]>) -> Result<Row, BusError> {
    let mut values = Vec::with_capacity(columns.len());
    for i in 0..columns.len() {
        let raw = row.try_get_raw(i).map_err(error)?;
        let value = if raw.is_null() {
            Value::Null
        } else {
            match raw.type_info().name() {
                "INT8" => Value::Int(row.try_get(i).map_err(error)?),
                "INT4" => Value::Int(row.try_get::<i32, _>(i).map_err(error)?.into()),
                "INT2" => Value::Int(row.try_get::<i16, _>(i).map_err(error)?.into()),
                "BOOL" => Value::Int(row.try_get::<bool, _>(i).map_err(error)?.into()),
                "FLOAT8" => Value::Real(row.try_get(i).map_err(error)?),
                "FLOAT4" => Value::Real(row.try_get::<f32, _>(i).map_err(error)?.into()),
                "BYTEA" => Value::Bytes(row.try_get(i).map_err(error)?),
                "JSON" | "JSONB" => Value::Text(
                    row.try_get::<serde_json::Value, _>(i)
                        .map_err(error)?
                        .to_string(),
                ),
                _ => Value::Text(row.try_get(i).map_err(error)?),
            }
        };
        values.push(value);
    }
    Ok(Row::new(columns.clone(), values))
}

fn rows(found: Vec<PgRow>) -> Result<Vec<Row>, BusError> {
    crate::sql::decoded(found, decode)
}

async fn execute<'c>(
    db: impl sqlx::PgExecutor<'c>,
    sql: &str,
    args: &[Value],
) -> Result<u64, BusError> {
    let done = sqlx::query_with(sqlx::AssertSqlSafe(numbered(sql)), arguments(args))
        .execute(db)
        .await
        .map_err(error)?;
    Ok(done.rows_affected())
}

async fn fetch<'c>(
    db: impl sqlx::PgExecutor<'c>,
    sql: &str,
    args: &[Value],
) -> Result<Vec<Row>, BusError> {
    let found = sqlx::query_with(sqlx::AssertSqlSafe(numbered(sql)), arguments(args))
        .fetch_all(db)
        .await
        .map_err(error)?;
    rows(found)
}

async fn script<'c>(db: impl sqlx::PgExecutor<'c>, sql: &str) -> Result<(), BusError> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(db)
        .await
        .map_err(error)?;
    Ok(())
}

crate::sql::sql_through!(PgPool, Dialect::Postgres, |this| &*this);

/// The writer's connection to PostgreSQL.
pub(crate) struct PgWriter {
    pub(crate) conn: PgConnection,
    pub(crate) options: PgConnectOptions,
}

crate::sql::sql_through!(PgWriter, Dialect::Postgres, |this| &mut this.conn);

#[async_trait]
impl WriterConnection for PgWriter {
    /// Every transaction of this writer takes the journal lock first: from then until it
    /// commits no other node's writer runs, so the sequence numbers it gives are the commit
    /// order and gap-free, and no two writers can wait on each other's locks (every one takes
    /// the journal lock before any other).
    async fn begin(&mut self, _known: u64) -> Result<u64, BusError> {
        script(&mut self.conn, "BEGIN").await?;
        execute(
            &mut self.conn,
            "SELECT pg_advisory_xact_lock(?)",
            &[Value::Int(JOURNAL_LOCK)],
        )
        .await?;
        crate::journal::last_seq(self).await
    }

    async fn commit(&mut self) -> Result<(), BusError> {
        script(&mut self.conn, "COMMIT").await
    }

    async fn rollback(&mut self) -> Result<(), BusError> {
        script(&mut self.conn, "ROLLBACK").await
    }

    async fn reconnect(&mut self) -> Result<(), BusError> {
        self.conn = self.options.connect().await.map_err(error)?;
        Ok(())
    }

    fn reachable_later(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        assert_eq!(
            numbered("SELECT ? , '?', \"a?\" FROM t WHERE x = ? AND y = '?''?' OR z = ?"),
            "SELECT $1 , '?', \"a?\" FROM t WHERE x = $2 AND y = '?''?' OR z = $3"
        );
    }
}
