//! Deliveries and invocation records in the database: creating them from matched events,
//! leasing the due ones, settling each attempt, dead letters and redrive.

use eddy_bus::{Bus, WriteTx};
use eddy_core::FunctionName;
use sqlx::Arguments;
use sqlx::Row;
use sqlx::sqlite::{SqliteArguments, SqliteRow};

use crate::ExecError;

/// A delivery to create for a matched event.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NewDelivery {
    pub event_seq: u64,
    pub event_time_ms: i64,
    pub trigger: String,
    pub function: String,
    pub order_key: Option<String>,
    /// Set when the delivery is dead from the start (loop protection).
    pub dead: Option<(DeadReason, String)>,
    /// Set when the delivery is created leased (its function has room now), until then.
    pub lease_until: Option<i64>,
}

/// A delivery that `create` wrote (not one that existed already).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Created {
    pub id: i64,
    pub event_seq: u64,
    pub trigger: String,
    pub leased: bool,
}

/// Why a delivery was dead-lettered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadReason {
    RetriesExhausted,
    EventAgeExceeded,
    RecursionLimit,
    FunctionMissing,
    /// The function refused the event (a webhook's 4xx): not retried.
    Refused,
}

impl DeadReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadReason::RetriesExhausted => "RetriesExhausted",
            DeadReason::EventAgeExceeded => "EventAgeExceeded",
            DeadReason::RecursionLimit => "RecursionLimit",
            DeadReason::FunctionMissing => "FunctionMissing",
            DeadReason::Refused => "Refused",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Self::RetriesExhausted,
            Self::EventAgeExceeded,
            Self::RecursionLimit,
            Self::FunctionMissing,
            Self::Refused,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// A delivery a worker holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Leased {
    pub id: i64,
    pub event_seq: u64,
    pub event_time_ms: i64,
    pub trigger: String,
    pub function: String,
    /// This attempt's number, from 1.
    pub attempt: u32,
}

/// A dead-lettered delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    pub delivery_id: i64,
    pub event_seq: u64,
    pub trigger: String,
    pub function: String,
    pub reason: DeadReason,
    pub last_error: Option<String>,
    pub attempts: u32,
    pub time_ms: i64,
}

/// How many deliveries are in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub ready: u64,
    pub leased: u64,
    pub done: u64,
    pub dead: u64,
}

impl DeliveryCounts {
    pub fn total(&self) -> u64 {
        self.ready + self.leased + self.done + self.dead
    }
}

/// One recorded attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct InvocationRecord {
    pub request_id: String,
    pub function: String,
    pub delivery_id: Option<i64>,
    pub event_seq: Option<u64>,
    pub attempt: u32,
    pub start_ms: i64,
    pub duration_us: u64,
    /// `success`, `error` or `timeout`.
    pub outcome: String,
    pub error_type: Option<String>,
    pub error: Option<String>,
    pub output: String,
    pub truncated: bool,
    /// The function's memory size when it ran.
    pub memory_mb: u32,
    /// The duration Lambda would bill: rounded up to the millisecond.
    pub billed_ms: u64,
    /// The most memory the function's process held, where measured.
    pub max_memory_mb: Option<u64>,
    /// How long starting a worker took, on a cold start.
    pub init_us: Option<u64>,
}

/// Invocation records in the order they were recorded, and where the next page starts.
#[derive(Clone, Debug, Default)]
pub struct InvocationPage {
    pub records: Vec<InvocationRecord>,
    /// Pass as `after` for the records recorded since (the position of the last one here).
    pub next: i64,
}

/// Rows per multi-row insert: far below SQLite's 32,766 parameters.
const CHUNK: usize = 200;

/// Creates deliveries (once per event and trigger, whatever happens) in the caller's
/// transaction, with as few statements as possible.
pub(crate) async fn create(
    tx: &mut WriteTx,
    deliveries: &[NewDelivery],
    now_ms: i64,
) -> Result<Vec<Created>, ExecError> {
    let mut created = Vec::new();
    for chunk in deliveries.chunks(CHUNK) {
        let mut args = SqliteArguments::default();
        for d in chunk {
            let (state, reason, error) = match (&d.dead, d.lease_until) {
                (Some((reason, error)), _) => ("dead", Some(reason.as_str()), Some(error.clone())),
                (None, Some(_)) => ("leased", None, None),
                (None, None) => ("ready", None, None),
            };
            add(&mut args, d.event_seq as i64)?;
            add(&mut args, d.event_time_ms)?;
            add(&mut args, d.trigger.clone())?;
            add(&mut args, d.function.clone())?;
            add(&mut args, d.order_key.clone())?;
            add(&mut args, state)?;
            add(&mut args, i64::from(d.lease_until.is_some()))?;
            add(&mut args, now_ms)?;
            add(&mut args, d.lease_until)?;
            add(&mut args, reason)?;
            add(&mut args, error)?;
            add(&mut args, now_ms)?;
        }
        let sql = format!(
            "INSERT INTO _eddy_deliveries
                 (event_seq, event_time_ms, trigger, function, order_key, state, attempts, next_attempt_ms,
                  lease_until_ms, dead_reason, last_error, updated_ms)
             VALUES {}
             ON CONFLICT (event_seq, trigger) DO NOTHING
             RETURNING id, event_seq, trigger, state",
            rows(chunk.len(), 12)
        );
        let inserted = sqlx::query_with(sqlx::AssertSqlSafe(sql), args)
            .fetch_all(tx.conn())
            .await?;
        for row in inserted {
            created.push(Created {
                id: row.try_get("id")?,
                event_seq: row.try_get::<i64, _>("event_seq")? as u64,
                trigger: row.try_get("trigger")?,
                leased: row.try_get::<&str, _>("state")? == "leased",
            });
        }
    }
    Ok(created)
}

fn add<'q, T>(args: &mut SqliteArguments, value: T) -> Result<(), ExecError>
where
    T: sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + 'q,
{
    args.add(value)
        .map_err(|e| ExecError::Bus(eddy_bus::BusError::Database(sqlx::Error::Encode(e))))
}

/// `(?, ?, …), (?, ?, …), …`: `n` rows of `width` placeholders.
fn rows(n: usize, width: usize) -> String {
    let row = format!("({})", vec!["?"; width].join(", "));
    vec![row; n].join(", ")
}

/// Returns every leased delivery to ready: at start, no worker of a previous process holds one.
pub(crate) async fn release_all(bus: &Bus) -> Result<u64, ExecError> {
    bus.write(|tx| {
        Box::pin(async move {
            let done = sqlx::query("UPDATE _eddy_deliveries SET state = 'ready', lease_until_ms = NULL WHERE state = 'leased'")
                .execute(tx.conn())
                .await?;
            Ok(done.rows_affected())
        })
    })
    .await
}

/// Returns leases that ran out (their worker is gone) to ready.
pub(crate) async fn expire_leases(bus: &Bus, now_ms: i64) -> Result<u64, ExecError> {
    bus.write(move |tx| {
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE _eddy_deliveries SET state = 'ready', lease_until_ms = NULL
                 WHERE state = 'leased' AND lease_until_ms < ?",
            )
            .bind(now_ms)
            .execute(tx.conn())
            .await?;
            Ok(done.rows_affected())
        })
    })
    .await
}

/// Candidates for leasing: due, ready, and — for ordered deliveries — the oldest unfinished of
/// their key.
const DUE: &str =
    "SELECT id, event_seq, event_time_ms, trigger, function, attempts FROM _eddy_deliveries d
     WHERE state = 'ready' AND next_attempt_ms <= ?
       AND (order_key IS NULL OR NOT EXISTS (
             SELECT 1 FROM _eddy_deliveries e
             WHERE e.order_key = d.order_key AND e.event_seq < d.event_seq
               AND e.state IN ('ready', 'leased')))
     ORDER BY id LIMIT ?";

/// Leases due deliveries, at most `room(function)` per function; each lease lasts until
/// `lease_until(function)`.
pub(crate) async fn lease<R, L>(
    bus: &Bus,
    now_ms: i64,
    limit: u32,
    room: R,
    lease_until: L,
) -> Result<Vec<Leased>, ExecError>
where
    R: Fn(&str) -> u32 + Send + Sync + 'static,
    L: Fn(&str) -> i64 + Send + Sync + 'static,
{
    let (room, lease_until) = (std::sync::Arc::new(room), std::sync::Arc::new(lease_until));
    bus.write(move |tx| {
        let (room, lease_until) = (room.clone(), lease_until.clone());
        Box::pin(async move {
            let rows = sqlx::query(DUE).bind(now_ms).bind(i64::from(limit)).fetch_all(tx.conn()).await?;
            let mut taken: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
            let mut leased = Vec::new();
            for row in &rows {
                let d = decode_leased(row)?;
                let used = taken.entry(d.function.clone()).or_default();
                if *used < room(&d.function) {
                    *used += 1;
                    leased.push(d);
                }
            }
            // One statement per function (each has its own lease length).
            for function in taken.keys() {
                let ids: Vec<i64> = leased.iter().filter(|d| &d.function == function).map(|d| d.id).collect();
                if ids.is_empty() {
                    continue;
                }
                sqlx::query(
                    "UPDATE _eddy_deliveries SET state = 'leased', attempts = attempts + 1, lease_until_ms = ?, updated_ms = ?
                     WHERE id IN (SELECT value FROM json_each(?))",
                )
                .bind(lease_until(function))
                .bind(now_ms)
                .bind(serde_json::to_string(&ids).expect("numbers serialize"))
                .execute(tx.conn())
                .await?;
            }
            Ok(leased)
        })
    })
    .await
}

fn decode_leased(row: &SqliteRow) -> Result<Leased, ExecError> {
    Ok(Leased {
        id: row.try_get("id")?,
        event_seq: row.try_get::<i64, _>("event_seq")? as u64,
        event_time_ms: row.try_get("event_time_ms")?,
        trigger: row.try_get("trigger")?,
        function: row.try_get("function")?,
        attempt: row.try_get::<i64, _>("attempts")? as u32 + 1,
    })
}

/// The earliest time a ready delivery is due, if any is waiting.
pub(crate) async fn next_due(bus: &Bus) -> Result<Option<i64>, ExecError> {
    Ok(sqlx::query_scalar(
        "SELECT min(next_attempt_ms) FROM _eddy_deliveries WHERE state = 'ready'",
    )
    .fetch_one(bus.readers())
    .await?)
}

/// What to do with a delivery after an attempt.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Settlement {
    Done,
    Retry { at_ms: i64, error: String },
    Dead { reason: DeadReason, error: String },
}

/// One finished attempt (or a delivery that could not be attempted) to record.
#[derive(Clone, Debug)]
pub(crate) struct Settle {
    pub delivery_id: Option<i64>,
    pub settlement: Settlement,
    pub record: Option<InvocationRecord>,
    pub now_ms: i64,
}

/// Records attempts and moves their deliveries on, all in one transaction and as few
/// statements as possible: the common case, success, is one statement for the lot.
pub(crate) async fn settle_all(bus: &Bus, batch: Vec<Settle>) -> Result<(), ExecError> {
    let batch = std::sync::Arc::new(batch);
    bus.write(move |tx| {
        let batch = batch.clone();
        Box::pin(async move {
            let records: Vec<&InvocationRecord> = batch.iter().filter_map(|s| s.record.as_ref()).collect();
            insert_invocations(tx, &records).await?;
            let done: Vec<i64> = batch
                .iter()
                .filter(|s| s.settlement == Settlement::Done)
                .filter_map(|s| s.delivery_id)
                .collect();
            if !done.is_empty() {
                let now = batch.iter().map(|s| s.now_ms).max().unwrap_or(0);
                sqlx::query(
                    "UPDATE _eddy_deliveries SET state = 'done', lease_until_ms = NULL, updated_ms = ?
                     WHERE id IN (SELECT value FROM json_each(?))",
                )
                .bind(now)
                .bind(serde_json::to_string(&done).expect("numbers serialize"))
                .execute(tx.conn())
                .await?;
            }
            for s in batch.iter().filter(|s| s.settlement != Settlement::Done) {
                let Some(id) = s.delivery_id else { continue };
                let (state, next, error, reason) = match &s.settlement {
                    Settlement::Retry { at_ms, error } => ("ready", *at_ms, error.as_str(), None),
                    Settlement::Dead { reason, error } => ("dead", s.now_ms, error.as_str(), Some(reason.as_str())),
                    Settlement::Done => unreachable!("filtered out above"),
                };
                sqlx::query(
                    "UPDATE _eddy_deliveries
                     SET state = ?, next_attempt_ms = ?, last_error = ?, dead_reason = ?, lease_until_ms = NULL, updated_ms = ?
                     WHERE id = ?",
                )
                .bind(state)
                .bind(next)
                .bind(error)
                .bind(reason)
                .bind(s.now_ms)
                .bind(id)
                .execute(tx.conn())
                .await?;
            }
            Ok(())
        })
    })
    .await
}

async fn insert_invocations(
    tx: &mut WriteTx,
    records: &[&InvocationRecord],
) -> Result<(), ExecError> {
    for chunk in records.chunks(CHUNK) {
        let mut args = SqliteArguments::default();
        for r in chunk {
            add(&mut args, r.request_id.clone())?;
            add(&mut args, r.function.clone())?;
            add(&mut args, r.delivery_id)?;
            add(&mut args, r.event_seq.map(|s| s as i64))?;
            add(&mut args, i64::from(r.attempt))?;
            add(&mut args, r.start_ms)?;
            add(&mut args, r.duration_us as i64)?;
            add(&mut args, r.outcome.clone())?;
            add(&mut args, r.error_type.clone())?;
            add(&mut args, r.error.clone())?;
            add(&mut args, r.output.clone())?;
            add(&mut args, r.truncated)?;
            add(&mut args, i64::from(r.memory_mb))?;
            add(&mut args, r.billed_ms as i64)?;
            add(&mut args, r.max_memory_mb.map(|m| m as i64))?;
            add(&mut args, r.init_us.map(|u| u as i64))?;
        }
        let sql = format!(
            "INSERT INTO _eddy_invocations
                 (request_id, function, delivery_id, event_seq, attempt, start_ms, duration_us, outcome,
                  error_type, error, output, truncated, memory_mb, billed_ms, max_memory_mb, init_us)
             VALUES {}",
            rows(chunk.len(), 16)
        );
        sqlx::query_with(sqlx::AssertSqlSafe(sql), args)
            .execute(tx.conn())
            .await?;
    }
    Ok(())
}

const DEAD_COLUMNS: &str =
    "id, event_seq, trigger, function, dead_reason, last_error, attempts, updated_ms";

/// Dead letters, oldest first, of one function or all.
pub(crate) async fn dead_letters(
    bus: &Bus,
    function: Option<&FunctionName>,
) -> Result<Vec<DeadLetter>, ExecError> {
    let sql = format!(
        "SELECT {DEAD_COLUMNS} FROM _eddy_deliveries WHERE state = 'dead' AND (? IS NULL OR function = ?) ORDER BY id"
    );
    let name = function.map(|f| f.to_string());
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(name.clone())
        .bind(name)
        .fetch_all(bus.readers())
        .await?;
    rows.iter()
        .map(|r| {
            let reason: String = r.try_get("dead_reason")?;
            Ok(DeadLetter {
                delivery_id: r.try_get("id")?,
                event_seq: r.try_get::<i64, _>("event_seq")? as u64,
                trigger: r.try_get("trigger")?,
                function: r.try_get("function")?,
                reason: DeadReason::parse(&reason).ok_or_else(|| {
                    ExecError::Corrupt(format!("unknown dead-letter reason {reason:?}"))
                })?,
                last_error: r.try_get("last_error")?,
                attempts: r.try_get::<i64, _>("attempts")? as u32,
                time_ms: r.try_get("updated_ms")?,
            })
        })
        .collect()
}

/// Sends dead letters back to be delivered afresh (attempts start again): one by id, or every
/// one of a function. Returns how many.
pub(crate) async fn redrive(
    bus: &Bus,
    delivery: Option<i64>,
    function: Option<FunctionName>,
    now_ms: i64,
) -> Result<u64, ExecError> {
    let function = function.map(|f| f.to_string());
    bus.write(move |tx| {
        let function = function.clone();
        Box::pin(async move {
            let done = sqlx::query(
                "UPDATE _eddy_deliveries
                 SET state = 'ready', attempts = 0, next_attempt_ms = ?, dead_reason = NULL, updated_ms = ?
                 WHERE state = 'dead' AND (? IS NULL OR id = ?) AND (? IS NULL OR function = ?)",
            )
            .bind(now_ms)
            .bind(now_ms)
            .bind(delivery)
            .bind(delivery)
            .bind(function.clone())
            .bind(function)
            .execute(tx.conn())
            .await?;
            Ok(done.rows_affected())
        })
    })
    .await
}

/// Totals of recorded attempts for one function and outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvocationTotals {
    pub function: String,
    /// `success`, `error` or `timeout`.
    pub outcome: String,
    pub count: u64,
    pub duration_us: u64,
    /// Attempts after the first (retries), among `count`.
    pub retries: u64,
    /// Billed milliseconds (each attempt's duration rounded up to the millisecond).
    pub billed_ms: u64,
    /// Billed milliseconds times the function's memory in MB: what Lambda's GB-seconds count.
    pub mb_ms: u64,
}

impl InvocationTotals {
    /// GB-seconds, as Lambda bills compute: memory in GB (1024 MB) times billed seconds.
    pub fn gb_seconds(&self) -> f64 {
        self.mb_ms as f64 / 1024.0 / 1000.0
    }
}

pub(crate) async fn invocation_totals(bus: &Bus) -> Result<Vec<InvocationTotals>, ExecError> {
    let rows = sqlx::query(
        "SELECT function, outcome, count(*) AS n, sum(duration_us) AS us, sum(attempt > 1) AS retries,
                sum(billed_ms) AS billed, sum(billed_ms * memory_mb) AS mb_ms
         FROM _eddy_invocations GROUP BY function, outcome ORDER BY function, outcome",
    )
    .fetch_all(bus.readers())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(InvocationTotals {
                function: r.try_get("function")?,
                outcome: r.try_get("outcome")?,
                count: r.try_get::<i64, _>("n")? as u64,
                duration_us: r.try_get::<i64, _>("us")? as u64,
                retries: r.try_get::<i64, _>("retries")? as u64,
                billed_ms: r.try_get::<i64, _>("billed")? as u64,
                mb_ms: r.try_get::<i64, _>("mb_ms")? as u64,
            })
        })
        .collect()
}

/// When the oldest delivery still waiting (ready or leased) was created, by its event's time.
pub(crate) async fn oldest_pending_ms(bus: &Bus) -> Result<Option<i64>, ExecError> {
    Ok(sqlx::query_scalar(
        "SELECT min(event_time_ms) FROM _eddy_deliveries WHERE state IN ('ready', 'leased')",
    )
    .fetch_one(bus.readers())
    .await?)
}

pub(crate) async fn counts(bus: &Bus) -> Result<DeliveryCounts, ExecError> {
    let rows = sqlx::query("SELECT state, count(*) AS n FROM _eddy_deliveries GROUP BY state")
        .fetch_all(bus.readers())
        .await?;
    let mut counts = DeliveryCounts::default();
    for row in rows {
        let n = row.try_get::<i64, _>("n")? as u64;
        match row.try_get::<&str, _>("state")? {
            "ready" => counts.ready = n,
            "leased" => counts.leased = n,
            "done" => counts.done = n,
            _ => counts.dead = n,
        }
    }
    Ok(counts)
}

/// Recorded attempts, newest last: of one function, or for one event.
pub(crate) async fn invocations(
    bus: &Bus,
    function: Option<&FunctionName>,
    event_seq: Option<u64>,
    after: i64,
    limit: u32,
) -> Result<InvocationPage, ExecError> {
    let name = function.map(|f| f.to_string());
    let seq = event_seq.map(|s| s as i64);
    let rows = sqlx::query(
        "SELECT rowid, request_id, function, delivery_id, event_seq, attempt, start_ms, duration_us,
                outcome, error_type, error, output, truncated, memory_mb, billed_ms, max_memory_mb,
                init_us
         FROM _eddy_invocations
         WHERE (? IS NULL OR function = ?) AND (? IS NULL OR event_seq = ?) AND rowid > ?
         ORDER BY rowid
         LIMIT ?",
    )
    .bind(name.clone())
    .bind(name)
    .bind(seq)
    .bind(seq)
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(bus.readers())
    .await?;
    let mut page = InvocationPage {
        records: Vec::with_capacity(rows.len()),
        next: after,
    };
    for r in &rows {
        page.next = r.try_get("rowid")?;
        page.records.push(InvocationRecord {
            request_id: r.try_get("request_id")?,
            function: r.try_get("function")?,
            delivery_id: r.try_get("delivery_id")?,
            event_seq: r.try_get::<Option<i64>, _>("event_seq")?.map(|s| s as u64),
            attempt: r.try_get::<i64, _>("attempt")? as u32,
            start_ms: r.try_get("start_ms")?,
            duration_us: r.try_get::<i64, _>("duration_us")? as u64,
            outcome: r.try_get("outcome")?,
            error_type: r.try_get("error_type")?,
            error: r.try_get("error")?,
            output: r.try_get("output")?,
            truncated: r.try_get("truncated")?,
            memory_mb: r.try_get::<i64, _>("memory_mb")? as u32,
            billed_ms: r.try_get::<i64, _>("billed_ms")? as u64,
            max_memory_mb: r
                .try_get::<Option<i64>, _>("max_memory_mb")?
                .map(|m| m as u64),
            init_us: r.try_get::<Option<i64>, _>("init_us")?.map(|u| u as u64),
        });
    }
    Ok(page)
}
