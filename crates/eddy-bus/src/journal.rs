//! The journal's storage: one row per committed change in `_eddy_journal`, and the durable
//! cursors that remember how far a reader got.

use eddy_core::{Event, EventKind, Lineage, Source};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, Row, SqliteConnection, SqliteExecutor};

use crate::BusError;
use crate::sqlite::error;

/// Rows per insert statement: 11 parameters each stays far below SQLite's limit of 32,766.
const INSERT_CHUNK: usize = 256;

/// Writes events with as few statements as possible (each statement is a round trip).
pub(crate) async fn insert_all(
    conn: &mut SqliteConnection,
    events: &[Event],
) -> Result<(), BusError> {
    for chunk in events.chunks(INSERT_CHUNK) {
        let mut args = SqliteArguments::default();
        for e in chunk {
            bind_event(&mut args, e).map_err(|e| error(sqlx::Error::Encode(e)))?;
        }
        let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let sql = format!(
            "INSERT INTO _eddy_journal
                 (seq, event_id, source_kind, source_name, kind, key, time_ms, payload,
                  cause_event, cause_invocation, hops)
             VALUES {rows}"
        );
        sqlx::query_with(sqlx::AssertSqlSafe(sql), args)
            .execute(&mut *conn)
            .await
            .map_err(error)?;
    }
    Ok(())
}

fn bind_event(args: &mut SqliteArguments, e: &Event) -> Result<(), sqlx::error::BoxDynError> {
    args.add(e.seq as i64)?;
    args.add(e.id.to_string())?;
    args.add(e.source.kind())?;
    args.add(e.source.name().to_string())?;
    args.add(e.kind.as_str())?;
    args.add(e.key.clone())?;
    args.add(e.time_ms)?;
    args.add(e.payload.to_string())?;
    args.add(e.lineage.cause_event.map(|id| id.to_string()))?;
    args.add(e.lineage.cause_invocation.clone())?;
    args.add(i64::from(e.lineage.hops))?;
    Ok(())
}

pub(crate) async fn last_seq(db: impl SqliteExecutor<'_>) -> Result<u64, BusError> {
    let last: Option<i64> = sqlx::query_scalar("SELECT max(seq) FROM _eddy_journal")
        .fetch_one(db)
        .await
        .map_err(error)?;
    Ok(last.unwrap_or(0) as u64)
}

pub(crate) async fn set_cursor(
    conn: &mut SqliteConnection,
    name: &str,
    seq: u64,
) -> Result<(), BusError> {
    sqlx::query(
        "INSERT INTO _eddy_cursors (name, seq) VALUES (?, ?)
         ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
    )
    .bind(name)
    .bind(seq as i64)
    .execute(conn)
    .await
    .map_err(error)?;
    Ok(())
}

pub(crate) async fn cursor(
    db: impl SqliteExecutor<'_>,
    name: &str,
) -> Result<Option<u64>, BusError> {
    let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM _eddy_cursors WHERE name = ?")
        .bind(name)
        .fetch_optional(db)
        .await
        .map_err(error)?;
    Ok(seq.map(|s| s as u64))
}

const COLUMNS: &str = "seq, event_id, source_kind, source_name, kind, key, time_ms, payload, cause_event, cause_invocation, hops";

pub(crate) async fn read_after(
    db: impl SqliteExecutor<'_>,
    after: u64,
    limit: u32,
) -> Result<Vec<Event>, BusError> {
    let sql = format!("SELECT {COLUMNS} FROM _eddy_journal WHERE seq > ? ORDER BY seq LIMIT ?");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(after as i64)
        .bind(i64::from(limit))
        .fetch_all(db)
        .await
        .map_err(error)?;
    rows.iter().map(decode).collect()
}

/// The events with these sequence numbers (those that exist), in order.
pub(crate) async fn at(db: impl SqliteExecutor<'_>, seqs: &[u64]) -> Result<Vec<Event>, BusError> {
    let list = serde_json::to_string(seqs).expect("numbers serialize");
    let sql = format!(
        "SELECT {COLUMNS} FROM _eddy_journal WHERE seq IN (SELECT value FROM json_each(?)) ORDER BY seq"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(list)
        .fetch_all(db)
        .await
        .map_err(error)?;
    rows.iter().map(decode).collect()
}

pub(crate) async fn by_id(
    db: impl SqliteExecutor<'_>,
    id: &str,
) -> Result<Option<Event>, BusError> {
    let sql = format!("SELECT {COLUMNS} FROM _eddy_journal WHERE event_id = ?");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(db)
        .await
        .map_err(error)?;
    row.as_ref().map(decode).transpose()
}

fn decode(row: &SqliteRow) -> Result<Event, BusError> {
    decode_event(row).map_err(|e| match e {
        Decoded::Db(e) => error(e),
        Decoded::Corrupt(e) => e,
    })
}

enum Decoded {
    Db(sqlx::Error),
    Corrupt(BusError),
}

impl From<sqlx::Error> for Decoded {
    fn from(e: sqlx::Error) -> Self {
        Decoded::Db(e)
    }
}

fn decode_event(row: &SqliteRow) -> Result<Event, Decoded> {
    let seq: i64 = row.try_get("seq")?;
    let corrupt = |reason: String| Decoded::Corrupt(BusError::CorruptRecord { seq, reason });
    let source = Source::from_parts(row.try_get("source_kind")?, row.try_get("source_name")?)
        .map_err(corrupt)?;
    let kind: EventKind = row.try_get::<&str, _>("kind")?.parse().map_err(corrupt)?;
    let id = row
        .try_get::<&str, _>("event_id")?
        .parse()
        .map_err(|e: uuid::Error| corrupt(e.to_string()))?;
    let payload =
        serde_json::from_str(row.try_get("payload")?).map_err(|e| corrupt(e.to_string()))?;
    let cause_event = row
        .try_get::<Option<&str>, _>("cause_event")?
        .map(str::parse)
        .transpose()
        .map_err(|e: uuid::Error| corrupt(e.to_string()))?;
    Ok(Event {
        seq: seq as u64,
        id,
        source,
        kind,
        key: row.try_get("key")?,
        time_ms: row.try_get("time_ms")?,
        payload,
        lineage: Lineage {
            cause_event,
            cause_invocation: row.try_get("cause_invocation")?,
            hops: row.try_get::<i64, _>("hops")? as u32,
        },
    })
}
