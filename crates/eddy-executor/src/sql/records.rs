//! Invocation records in the SQL database: written as attempts settle, read for `events show`,
//! the invocations API and usage, and — past the retention — summed into daily usage.

use eddy_bus::args;
use eddy_bus::sql::{Dialect, Row, Sql, Value, rows_of};

use super::CHUNK;
use crate::ExecError;
use crate::deliveries::*;

/// The column that numbers invocation records in the order they were recorded.
pub(super) fn recorded_order(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "rowid",
        Dialect::Postgres => "seq",
    }
}

/// An invocation record's columns, as [`insert_invocations`] writes them and [`invocation`]
/// reads them.
pub(super) const INVOCATION_COLUMNS: &str =
    "request_id, function, delivery_id, event_seq, attempt, start_ms,
    duration_us, outcome, error_type, error, output, truncated, memory_mb, billed_ms,
    max_memory_mb, init_us, batch_size, response";

pub(super) const INVOCATION_WIDTH: usize = column_count(INVOCATION_COLUMNS);

/// How many columns a comma-separated list names.
pub(super) const fn column_count(columns: &str) -> usize {
    let bytes = columns.as_bytes();
    let (mut i, mut commas) = (0, 0);
    while i < bytes.len() {
        if bytes[i] == b',' {
            commas += 1;
        }
        i += 1;
    }
    commas + 1
}

/// An invocation record that nothing kept is explained by any more: its delivery is gone (or
/// it had none), and no kept delivery is noted as having gone in it as a batch.
pub(super) const UNEXPLAINED: &str = "(delivery_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM _eddy_deliveries d WHERE d.id = _eddy_invocations.delivery_id))
    AND NOT EXISTS (
        SELECT 1 FROM _eddy_batch_records b WHERE b.request_id = _eddy_invocations.request_id)";

/// The usage of the invocation records that `filter` picks, per day (its number since the
/// epoch, UTC), function and outcome: what ageing adds to `_eddy_usage_by_day`.
pub(super) fn summed_records(filter: &str) -> String {
    format!(
        "SELECT start_ms / 86400000 AS day, function, outcome, count(*) AS invocations,
                sum(CASE WHEN attempt > 1 THEN 1 ELSE 0 END) AS retries,
                sum(duration_us) AS duration_us, sum(billed_ms) AS billed_ms,
                sum(billed_ms * memory_mb) AS mb_ms
         FROM _eddy_invocations WHERE {filter}
         GROUP BY start_ms / 86400000, function, outcome"
    )
}

/// Usage per day, function and outcome, whole: the records kept, summed, and the sums of those
/// aged out. Its columns are those of `_eddy_usage_by_day`.
pub(super) fn whole_usage() -> String {
    format!(
        "{} UNION ALL SELECT day, function, outcome, invocations, retries, duration_us,
                            billed_ms, mb_ms FROM _eddy_usage_by_day",
        summed_records("true")
    )
}

/// The functions with invocation records, each found by skipping from one name to the next in
/// the (function, start_ms) index, not by reading it: ageing goes function by function, each a
/// range of that index.
pub(super) async fn invoked_functions(tx: &mut dyn Sql) -> Result<Vec<String>, ExecError> {
    let rows = tx
        .fetch(
            "WITH RECURSIVE named(name) AS (
                 SELECT min(function) FROM _eddy_invocations
                 UNION ALL
                 SELECT (SELECT min(function) FROM _eddy_invocations WHERE function > named.name)
                 FROM named WHERE named.name IS NOT NULL)
             SELECT name FROM named WHERE name IS NOT NULL",
            args![],
        )
        .await?;
    rows.iter().map(|r| Ok(r.get::<String>("name")?)).collect()
}

/// Adds the invocation records that `filter` picks (with `args`) to their day's usage and
/// removes them; returns how many.
pub(super) async fn sum_into_days(
    tx: &mut dyn Sql,
    filter: &str,
    args: &[Value],
) -> Result<u64, ExecError> {
    tx.execute(
        &format!(
            "INSERT INTO _eddy_usage_by_day
                 (day, function, outcome, invocations, retries, duration_us, billed_ms, mb_ms)
             {}
             ON CONFLICT (day, function, outcome) DO UPDATE SET
                 invocations = _eddy_usage_by_day.invocations + excluded.invocations,
                 retries = _eddy_usage_by_day.retries + excluded.retries,
                 duration_us = _eddy_usage_by_day.duration_us + excluded.duration_us,
                 billed_ms = _eddy_usage_by_day.billed_ms + excluded.billed_ms,
                 mb_ms = _eddy_usage_by_day.mb_ms + excluded.mb_ms",
            summed_records(filter)
        ),
        args,
    )
    .await?;
    Ok(tx
        .execute(
            &format!("DELETE FROM _eddy_invocations WHERE {filter}"),
            args,
        )
        .await?)
}

/// An invocation record read from its [`INVOCATION_COLUMNS`].
pub(super) fn invocation(r: &Row) -> Result<InvocationRecord, ExecError> {
    Ok(InvocationRecord {
        request_id: r.get("request_id")?,
        function: r.get("function")?,
        delivery_id: r.get("delivery_id")?,
        event_seq: r.get("event_seq")?,
        attempt: r.get("attempt")?,
        start_ms: r.get("start_ms")?,
        duration_us: r.get("duration_us")?,
        outcome: r.get("outcome")?,
        error_type: r.get("error_type")?,
        error: r.get("error")?,
        output: r.get("output")?,
        truncated: r.get("truncated")?,
        memory_mb: r.get("memory_mb")?,
        billed_ms: r.get("billed_ms")?,
        max_memory_mb: r.get("max_memory_mb")?,
        init_us: r.get("init_us")?,
        batch_size: r.get("batch_size")?,
        response: r.get("response")?,
    })
}

pub(super) async fn insert_invocations(
    tx: &mut dyn Sql,
    records: &[&InvocationRecord],
) -> Result<(), ExecError> {
    for chunk in records.chunks(CHUNK) {
        let mut values = Vec::with_capacity(chunk.len() * INVOCATION_WIDTH);
        for r in chunk {
            values.extend([
                Value::from(&r.request_id),
                Value::from(&r.function),
                Value::from(r.delivery_id),
                Value::from(r.event_seq),
                Value::from(r.attempt),
                Value::from(r.start_ms),
                Value::from(r.duration_us),
                Value::from(&r.outcome),
                Value::from(r.error_type.clone()),
                Value::from(r.error.clone()),
                Value::from(&r.output),
                Value::from(r.truncated),
                Value::from(r.memory_mb),
                Value::from(r.billed_ms),
                Value::from(r.max_memory_mb),
                Value::from(r.init_us),
                Value::from(r.batch_size),
                Value::from(r.response.clone()),
            ]);
        }
        let sql = format!(
            "INSERT INTO _eddy_invocations ({INVOCATION_COLUMNS})
             VALUES {}
             ON CONFLICT (request_id) DO NOTHING",
            rows_of(chunk.len(), INVOCATION_WIDTH)
        );
        tx.execute(&sql, &values).await?;
    }
    Ok(())
}

/// Which deliveries each batch invocation carried: (delivery, request id).
pub(super) async fn insert_batch_records(
    tx: &mut dyn Sql,
    members: &[(i64, &str)],
) -> Result<(), ExecError> {
    for chunk in members.chunks(CHUNK) {
        let mut values = Vec::with_capacity(chunk.len() * 2);
        for (delivery, request) in chunk {
            values.extend([Value::from(*delivery), Value::from(*request)]);
        }
        let sql = format!(
            "INSERT INTO _eddy_batch_records (delivery_id, request_id) VALUES {}
             ON CONFLICT (delivery_id, request_id) DO NOTHING",
            rows_of(chunk.len(), 2)
        );
        tx.execute(&sql, &values).await?;
    }
    Ok(())
}

pub(super) async fn clear_logs(
    tx: &mut dyn Sql,
    from_ms: i64,
    before_ms: i64,
) -> Result<u64, ExecError> {
    let mut cleared = 0;
    for function in invoked_functions(tx).await? {
        cleared += tx
            .execute(
                "UPDATE _eddy_invocations SET output = '', response = NULL
                 WHERE function = ? AND start_ms >= ? AND start_ms < ?
                   AND (output <> '' OR response IS NOT NULL)",
                args![function, from_ms, before_ms],
            )
            .await?;
    }
    Ok(cleared)
}

pub(super) async fn sum_usage(
    tx: &mut dyn Sql,
    from_ms: i64,
    before_ms: i64,
) -> Result<u64, ExecError> {
    let mut summed = 0;
    for function in invoked_functions(tx).await? {
        summed += sum_into_days(
            tx,
            &format!("function = ? AND start_ms >= ? AND start_ms < ? AND {UNEXPLAINED}"),
            args![function, from_ms, before_ms],
        )
        .await?;
    }
    Ok(summed)
}

pub(super) async fn invocations(
    db: &mut dyn Sql,
    function: Option<&str>,
    event_seq: Option<u64>,
    after: i64,
    limit: u32,
) -> Result<InvocationPage, ExecError> {
    let rows = db
        .fetch(
            &format!(
                "SELECT {position} AS position, {INVOCATION_COLUMNS}
                 FROM _eddy_invocations
                 WHERE (CAST(? AS TEXT) IS NULL OR function = ?)
                   AND (CAST(? AS BIGINT) IS NULL OR event_seq = ? OR request_id IN (
                         SELECT b.request_id FROM _eddy_batch_records b
                         JOIN _eddy_deliveries d ON d.id = b.delivery_id
                         WHERE d.event_seq = ?
                         UNION
                         SELECT lease_batch FROM _eddy_deliveries
                         WHERE event_seq = ? AND lease_batch IS NOT NULL))
                   AND {position} > ?
                 ORDER BY {position}
                 {limit}",
                position = recorded_order(db.dialect()),
                limit = eddy_bus::sql::limit(limit),
            ),
            args![
                function, function, event_seq, event_seq, event_seq, event_seq, after
            ],
        )
        .await?;
    let mut page = InvocationPage {
        records: Vec::with_capacity(rows.len()),
        next: after,
    };
    for r in &rows {
        page.next = r.get("position")?;
        page.records.push(invocation(r)?);
    }
    Ok(page)
}

pub(super) async fn latest_invocations(
    db: &mut dyn Sql,
    function: &str,
    limit: u32,
) -> Result<Vec<InvocationRecord>, ExecError> {
    let rows = db
        .fetch(
            &format!(
                "SELECT {INVOCATION_COLUMNS} FROM _eddy_invocations WHERE function = ?
                 ORDER BY start_ms DESC {}",
                eddy_bus::sql::limit(limit)
            ),
            args![function],
        )
        .await?;
    rows.iter().map(invocation).collect()
}

pub(super) async fn invocations_per_minute(
    db: &mut dyn Sql,
    function: &str,
    since_ms: i64,
) -> Result<Vec<MinuteCount>, ExecError> {
    let rows = db
        .fetch(
            "SELECT start_ms / 60000 AS minute, count(*) AS invocations,
                    sum(CASE WHEN outcome = 'success' THEN 0 ELSE 1 END) AS errors
             FROM _eddy_invocations WHERE function = ? AND start_ms >= ?
             GROUP BY start_ms / 60000 ORDER BY minute",
            args![function, since_ms],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(MinuteCount {
                minute_ms: r.get::<i64>("minute")? * 60_000,
                invocations: r.get::<i64>("invocations")? as u64,
                errors: r.get::<i64>("errors")? as u64,
            })
        })
        .collect()
}

pub(super) async fn invocation_days(db: &mut dyn Sql) -> Result<Vec<DayTotals>, ExecError> {
    let rows = db
        .fetch(
            &format!(
                "SELECT day, function, CAST(sum(invocations) AS BIGINT) AS n,
                        CAST(sum(CASE WHEN outcome = 'success' THEN 0 ELSE invocations END)
                             AS BIGINT) AS errors,
                        CAST(sum(billed_ms) AS BIGINT) AS billed,
                        CAST(sum(mb_ms) AS BIGINT) AS mb_ms
                 FROM ({}) u GROUP BY day, function ORDER BY day, function",
                whole_usage()
            ),
            args![],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(DayTotals {
                day_ms: r.get::<i64>("day")? * 86_400_000,
                function: r.get("function")?,
                count: r.get::<i64>("n")? as u64,
                errors: r.get::<i64>("errors")? as u64,
                billed_ms: r.get::<i64>("billed")? as u64,
                mb_ms: r.get::<i64>("mb_ms")? as u64,
            })
        })
        .collect()
}

pub(super) async fn invocation_totals(
    db: &mut dyn Sql,
) -> Result<Vec<InvocationTotals>, ExecError> {
    let rows = db
        .fetch(
            &format!(
                "SELECT function, outcome, CAST(sum(invocations) AS BIGINT) AS n,
                        CAST(sum(duration_us) AS BIGINT) AS us,
                        CAST(sum(retries) AS BIGINT) AS retries,
                        CAST(sum(billed_ms) AS BIGINT) AS billed,
                        CAST(sum(mb_ms) AS BIGINT) AS mb_ms
                 FROM ({}) u GROUP BY function, outcome ORDER BY function, outcome",
                whole_usage()
            ),
            args![],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(InvocationTotals {
                function: r.get("function")?,
                outcome: r.get("outcome")?,
                count: r.get("n")?,
                duration_us: r.get("us")?,
                retries: r.get("retries")?,
                billed_ms: r.get("billed")?,
                mb_ms: r.get("mb_ms")?,
            })
        })
        .collect()
}
