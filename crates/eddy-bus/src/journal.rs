//! The journal's storage: one row per committed change in `_eddy_journal`, and the durable
//! cursors that remember how far a reader got. The statements are the same on every engine.

use eddy_core::{Event, EventKind, Lineage, Source};

use crate::BusError;
use crate::sql::{Row, Sql, Value, rows_of};

/// Rows per insert statement: 11 parameters each stays far below SQLite's limit of 32,766 and
/// PostgreSQL's of 65,535.
const INSERT_CHUNK: usize = 256;

/// Writes events with as few statements as possible (each statement is a round trip); returns
/// the length of each one's serialised payload.
pub(crate) async fn insert_all(db: &mut dyn Sql, events: &[Event]) -> Result<Vec<usize>, BusError> {
    let mut payload_sizes = Vec::with_capacity(events.len());
    for chunk in events.chunks(INSERT_CHUNK) {
        let mut args = Vec::with_capacity(chunk.len() * 11);
        for e in chunk {
            let payload =
                serde_json::to_string(&e.payload).expect("a JSON value always serialises");
            payload_sizes.push(payload.len());
            args.extend([
                Value::from(e.seq),
                Value::from(e.id.to_string()),
                Value::from(e.source.kind()),
                Value::from(e.source.name()),
                Value::from(e.kind.as_str()),
                Value::from(e.key.as_str()),
                Value::from(e.time_ms),
                Value::from(payload),
                Value::from(e.lineage.cause_event.map(|id| id.to_string())),
                Value::from(e.lineage.cause_invocation.clone()),
                Value::from(e.lineage.hops),
            ]);
        }
        let sql = format!(
            "INSERT INTO _eddy_journal
                 (seq, event_id, source_kind, source_name, kind, key, time_ms, payload,
                  cause_event, cause_invocation, hops)
             VALUES {}",
            rows_of(chunk.len(), 11)
        );
        db.execute(&sql, &args).await?;
    }
    Ok(payload_sizes)
}

/// The newest sequence number the statement can see (0 for an empty journal).
pub(crate) async fn last_seq(db: &mut dyn Sql) -> Result<u64, BusError> {
    let row = db
        .fetch_one("SELECT max(seq) AS last FROM _eddy_journal", &[])
        .await?;
    Ok(row.get::<Option<u64>>("last")?.unwrap_or(0))
}

/// The first sequence number of an event at or after `time_ms` (`None` if there is none).
///
/// A binary search over the sequence numbers (each probe a primary-key read), not a scan: the
/// journal is a gap-free run of sequence numbers whose times rise with them, as each event
/// takes its time when its commit appends it (to within a clock stepped back, or the clocks
/// of several nodes).
pub(crate) async fn first_at_or_after(
    db: &mut dyn Sql,
    time_ms: i64,
) -> Result<Option<u64>, BusError> {
    let row = db
        .fetch_one(
            "SELECT min(seq) AS first, max(seq) AS last FROM _eddy_journal",
            &[],
        )
        .await?;
    let (Some(low), Some(high)) = (
        row.get::<Option<u64>>("first")?,
        row.get::<Option<u64>>("last")?,
    ) else {
        return Ok(None);
    };
    if time_at(db, high).await? < time_ms {
        return Ok(None);
    }
    narrow(db, low, high, time_ms).await.map(Some)
}

/// The first sequence number in `[low, high]` of an event at or after `time_ms`, given that the
/// event at `high` is: halving the range, a primary-key read each time.
async fn narrow(
    db: &mut dyn Sql,
    mut low: u64,
    mut high: u64,
    time_ms: i64,
) -> Result<u64, BusError> {
    while low < high {
        let middle = low + (high - low) / 2;
        if time_at(db, middle).await? >= time_ms {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    Ok(low)
}

/// [`first_at_or_after`] for each of `times`, which rise: each search starts where the last
/// one ended and gallops forward (probes 1, 2, 4, … events on) before it halves, so a quiet
/// stretch costs a probe or two and a busy one twice the logarithm of its events.
pub(crate) async fn first_at_or_after_each(
    db: &mut dyn Sql,
    times: &[i64],
) -> Result<Vec<Option<u64>>, BusError> {
    let row = db
        .fetch_one(
            "SELECT min(seq) AS first, max(seq) AS last FROM _eddy_journal",
            &[],
        )
        .await?;
    let (Some(mut low), Some(last)) = (
        row.get::<Option<u64>>("first")?,
        row.get::<Option<u64>>("last")?,
    ) else {
        return Ok(vec![None; times.len()]);
    };
    let last_time = time_at(db, last).await?;
    let mut found = Vec::with_capacity(times.len());
    for &time_ms in times {
        if last_time < time_ms {
            found.push(None);
            continue;
        }
        // The answer lies in [low, last], and the event at `last` is late enough.
        let (mut probe, mut step) = (low, 1);
        let high = loop {
            if time_at(db, probe).await? >= time_ms {
                break probe;
            }
            low = probe + 1;
            probe = (probe + step).min(last);
            step *= 2;
        };
        low = narrow(db, low, high, time_ms).await?;
        found.push(Some(low));
    }
    Ok(found)
}

/// The last sequence number of an event at or before `time_ms` (`None` if there is none).
pub(crate) async fn last_at_or_before(
    db: &mut dyn Sql,
    time_ms: i64,
) -> Result<Option<u64>, BusError> {
    match first_at_or_after(db, time_ms.saturating_add(1)).await? {
        Some(after) => {
            let first: Option<u64> = db
                .fetch_one("SELECT min(seq) AS first FROM _eddy_journal", &[])
                .await?
                .get("first")?;
            Ok((first.is_some_and(|f| after > f)).then(|| after - 1))
        }
        None => last_seq(db).await.map(|last| (last > 0).then_some(last)),
    }
}

/// The time of event `seq` (which exists: the journal is gap-free between its ends).
async fn time_at(db: &mut dyn Sql, seq: u64) -> Result<i64, BusError> {
    let row = db
        .fetch_one(
            "SELECT time_ms FROM _eddy_journal WHERE seq = ?",
            &[Value::from(seq)],
        )
        .await?;
    row.get("time_ms")
}

/// Deletes the events before `seq`.
pub(crate) async fn delete_before(db: &mut dyn Sql, seq: u64) -> Result<u64, BusError> {
    db.execute(
        "DELETE FROM _eddy_journal WHERE seq < ?",
        &[Value::from(seq)],
    )
    .await
}

pub(crate) async fn set_cursor(db: &mut dyn Sql, name: &str, seq: u64) -> Result<(), BusError> {
    db.execute(
        "INSERT INTO _eddy_cursors (name, seq) VALUES (?, ?)
         ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
        &[Value::from(name), Value::from(seq)],
    )
    .await?;
    Ok(())
}

/// Saves cursor `name` at `seq` unless it is saved further already.
pub(crate) async fn raise_cursor(db: &mut dyn Sql, name: &str, seq: u64) -> Result<(), BusError> {
    db.execute(
        "INSERT INTO _eddy_cursors (name, seq) VALUES (?, ?)
         ON CONFLICT (name) DO UPDATE SET seq = excluded.seq WHERE excluded.seq > _eddy_cursors.seq",
        &[Value::from(name), Value::from(seq)],
    )
    .await?;
    Ok(())
}

pub(crate) async fn cursor(db: &mut dyn Sql, name: &str) -> Result<Option<u64>, BusError> {
    let row = db
        .fetch_optional(
            "SELECT seq FROM _eddy_cursors WHERE name = ?",
            &[Value::from(name)],
        )
        .await?;
    row.map(|r| r.get::<u64>("seq")).transpose()
}

const COLUMNS: &str = "seq, event_id, source_kind, source_name, kind, key, time_ms, payload, cause_event, cause_invocation, hops";

pub(crate) async fn read_after(
    db: &mut dyn Sql,
    after: u64,
    limit: u32,
) -> Result<Vec<Event>, BusError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM _eddy_journal WHERE seq > ? ORDER BY seq {}",
        crate::sql::limit(limit)
    );
    let rows = db.fetch(&sql, &[Value::from(after)]).await?;
    rows.iter().map(decode).collect()
}

/// The events with these sequence numbers (those that exist), in order.
pub(crate) async fn at(db: &mut dyn Sql, seqs: &[u64]) -> Result<Vec<Event>, BusError> {
    rows_at(db, seqs).await?.decode()
}

/// [`at`]'s rows, not yet decoded.
pub(crate) async fn rows_at(db: &mut dyn Sql, seqs: &[u64]) -> Result<EventRows, BusError> {
    let seqs: Vec<i64> = seqs.iter().map(|s| *s as i64).collect();
    let sql = format!(
        "SELECT {COLUMNS} FROM _eddy_journal WHERE seq {} ORDER BY seq",
        db.dialect().in_integers()
    );
    Ok(EventRows(db.fetch(&sql, &[Value::integers(&seqs)]).await?))
}

/// Journal rows as read, to be decoded into events elsewhere: a write transaction reads them,
/// and whoever needs the events spends the time parsing their payloads.
#[derive(Debug, Default)]
pub struct EventRows(Vec<Row>);

impl EventRows {
    /// The events, in the order read.
    pub fn decode(&self) -> Result<Vec<Event>, BusError> {
        self.0.iter().map(decode).collect()
    }
}

pub(crate) async fn by_id(db: &mut dyn Sql, id: &str) -> Result<Option<Event>, BusError> {
    let sql = format!("SELECT {COLUMNS} FROM _eddy_journal WHERE event_id = ?");
    let row = db.fetch_optional(&sql, &[Value::from(id)]).await?;
    row.as_ref().map(decode).transpose()
}

fn decode(row: &Row) -> Result<Event, BusError> {
    let seq: u64 = row.get("seq")?;
    let corrupt = |reason: String| BusError::CorruptRecord {
        seq: seq as i64,
        reason,
    };
    let source = Source::from_parts(
        &row.get::<String>("source_kind")?,
        &row.get::<String>("source_name")?,
    )
    .map_err(corrupt)?;
    let kind: EventKind = row.get::<String>("kind")?.parse().map_err(corrupt)?;
    let id = row
        .get::<String>("event_id")?
        .parse()
        .map_err(|e: uuid::Error| corrupt(e.to_string()))?;
    let payload =
        serde_json::from_str(&row.get::<String>("payload")?).map_err(|e| corrupt(e.to_string()))?;
    let cause_event = row
        .get::<Option<String>>("cause_event")?
        .map(|s| s.parse())
        .transpose()
        .map_err(|e: uuid::Error| corrupt(e.to_string()))?;
    Ok(Event {
        seq,
        id,
        source,
        kind,
        key: row.get("key")?,
        time_ms: row.get("time_ms")?,
        payload,
        lineage: Lineage {
            cause_event,
            cause_invocation: row.get("cause_invocation")?,
            hops: row.get("hops")?,
        },
    })
}
