//! Deliveries in a SQL database — with invocation records (`records`) and slots (`slots`), the
//! storage module of this crate: no SQL elsewhere. Statements are few and carry many rows each:
//! a read on SQLite is a round trip to a reader's connection thread, a statement on PostgreSQL
//! one to the server, and round trips, not SQL work, bound the executor.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use eddy_bus::sql::{Row, Sql, Value, rows_of};
use eddy_bus::{Bus, args};

use crate::ExecError;
use crate::deliveries::*;
use records::{UNEXPLAINED, insert_batch_records, insert_invocations, sum_into_days};
use slots::Slots;

mod records;
mod slots;

/// Rows per multi-row statement: far below SQLite's 32,766 parameters.
const CHUNK: usize = 200;

/// The deliveries of the platform database.
pub struct SqlDeliveries {
    slots: Slots,
}

impl SqlDeliveries {
    /// The deliveries of `bus`'s database, for node `node`.
    pub fn new(bus: &Bus, node: &str) -> Self {
        Self {
            slots: Slots::new(bus, node),
        }
    }
}

/// Candidates for leasing one by one: not a batched trigger's, due, ready, and — for ordered
/// deliveries — the oldest unfinished of their key. Longest due first, walking the due index
/// (state, batched, time) in its order: a round reads what it leases, however long a batched
/// trigger's backlog. Followed by its `LIMIT`.
const DUE: &str =
    "SELECT id, event_seq, event_time_ms, trigger, function, attempts, replay FROM _eddy_deliveries d
     WHERE state = 'ready' AND batched = 0 AND next_attempt_ms <= ?
       AND (order_key IS NULL OR NOT EXISTS (
             SELECT 1 FROM _eddy_deliveries e
             WHERE e.order_key = d.order_key AND e.event_seq < d.event_seq
               AND e.state IN ('ready', 'leased')))
     ORDER BY next_attempt_ms, id";

/// Candidates for a batch of one trigger: ready and due, and no earlier delivery of their key
/// running or waiting for a later time (so a key's due records go together, in order). Read
/// from the trigger's index in event order, stopping at the limit: `+next_attempt_ms` keeps
/// SQLite's planner from the due index, which would read the whole backlog to sort it (the
/// unary plus changes nothing on PostgreSQL). Followed by its `LIMIT`.
const BATCH_CANDIDATES: &str =
    "SELECT id, event_seq, event_time_ms, trigger, function, attempts, replay, order_key, batch_part,
            next_attempt_ms
     FROM _eddy_deliveries d
     WHERE batched = 1 AND trigger = ? AND state = 'ready' AND +next_attempt_ms <= ?
       AND (order_key IS NULL OR NOT EXISTS (
             SELECT 1 FROM _eddy_deliveries e
             WHERE e.order_key = d.order_key AND e.event_seq < d.event_seq
               AND (e.state = 'leased' OR (e.state = 'ready' AND e.next_attempt_ms > ?))))
     ORDER BY event_seq";

fn leased(row: &Row) -> Result<Leased, ExecError> {
    Ok(Leased {
        id: row.get("id")?,
        event_seq: row.get("event_seq")?,
        event_time_ms: row.get("event_time_ms")?,
        trigger: row.get("trigger")?,
        function: row.get("function")?,
        attempt: row.get::<u32>("attempts")? + 1,
        replay: row.get("replay")?,
    })
}

const DEAD_COLUMNS: &str =
    "id, event_seq, trigger, function, dead_reason, last_error, attempts, updated_ms";

fn dead_letter(r: &Row) -> Result<DeadLetter, ExecError> {
    let reason: String = r.get("dead_reason")?;
    Ok(DeadLetter {
        delivery_id: r.get("id")?,
        event_seq: r.get("event_seq")?,
        trigger: r.get("trigger")?,
        function: r.get("function")?,
        reason: DeadReason::parse(&reason)
            .ok_or_else(|| ExecError::Corrupt(format!("unknown dead-letter reason {reason:?}")))?,
        last_error: r.get("last_error")?,
        attempts: r.get("attempts")?,
        time_ms: r.get("updated_ms")?,
    })
}

/// The order keys of `deliveries` to be created leased that have a delivery waiting or
/// running (as the claim's `DUE` sees a key: an unfinished earlier delivery holds it).
async fn busy_keys(
    tx: &mut dyn Sql,
    deliveries: &[NewDelivery],
) -> Result<HashSet<String>, ExecError> {
    let keys: Vec<&str> = deliveries
        .iter()
        .filter(|d| d.lease_until.is_some() && d.dead.is_none())
        .filter_map(|d| d.order_key.as_deref())
        .collect();
    let mut busy = HashSet::new();
    for chunk in keys.chunks(CHUNK) {
        let sql = format!(
            "SELECT DISTINCT order_key FROM _eddy_deliveries
             WHERE order_key {} AND state IN ('ready', 'leased')",
            tx.dialect().in_texts()
        );
        for row in tx.fetch(&sql, &[Value::texts(chunk)]).await? {
            busy.insert(row.get("order_key")?);
        }
    }
    Ok(busy)
}

#[async_trait]
impl DeliveryStore for SqlDeliveries {
    async fn create(
        &self,
        tx: &mut dyn Sql,
        node: &str,
        deliveries: &[NewDelivery],
        now_ms: i64,
    ) -> Result<Vec<Created>, ExecError> {
        let busy = busy_keys(tx, deliveries).await?;
        let mut created = Vec::new();
        for chunk in deliveries.chunks(CHUNK) {
            let mut values = Vec::with_capacity(chunk.len() * 15);
            for d in chunk {
                // One ordered per key starts leased only if nothing of its key waits or runs:
                // else it waits, ready, for the scheduler to lease it in its turn.
                let lease_until = d
                    .lease_until
                    .filter(|_| d.order_key.as_ref().is_none_or(|key| !busy.contains(key)));
                let (state, reason, error) = match (&d.dead, lease_until) {
                    (Some((reason, error)), _) => {
                        ("dead", Some(reason.as_str()), Some(error.clone()))
                    }
                    (None, Some(_)) => ("leased", None, None),
                    (None, None) => ("ready", None, None),
                };
                values.extend([
                    Value::from(d.event_seq),
                    Value::from(d.event_time_ms),
                    Value::from(&d.trigger),
                    Value::from(&d.function),
                    Value::from(d.order_key.clone()),
                    Value::from(state),
                    Value::from(lease_until.is_some()),
                    Value::from(now_ms),
                    Value::from(lease_until),
                    Value::from(lease_until.map(|_| node)),
                    Value::from(reason),
                    Value::from(error),
                    Value::from(now_ms),
                    Value::from(d.replay),
                    Value::from(d.batched),
                ]);
            }
            let sql = format!(
                "INSERT INTO _eddy_deliveries
                     (event_seq, event_time_ms, trigger, function, order_key, state, attempts, next_attempt_ms,
                      lease_until_ms, lease_node, dead_reason, last_error, updated_ms, replay, batched)
                 VALUES {}
                 ON CONFLICT (event_seq, trigger, replay) DO NOTHING
                 RETURNING id, event_seq, trigger, state",
                rows_of(chunk.len(), 15)
            );
            for row in tx.fetch(&sql, &values).await? {
                created.push(Created {
                    id: row.get("id")?,
                    event_seq: row.get("event_seq")?,
                    trigger: row.get("trigger")?,
                    leased: row.get::<String>("state")? == "leased",
                });
            }
        }
        Ok(created)
    }

    async fn claim(&self, tx: &mut dyn Sql, claim: &Claim) -> Result<Vec<Leased>, ExecError> {
        let sql = format!("{DUE} {}", eddy_bus::sql::limit(claim.limit));
        let rows = tx.fetch(&sql, args![claim.now_ms]).await?;
        let mut taken: HashMap<String, u32> = HashMap::new();
        let mut chosen = Vec::new();
        for row in &rows {
            let d = leased(row)?;
            let room = claim
                .room
                .get(&d.function)
                .copied()
                .unwrap_or(claim.default_room);
            let used = taken.entry(d.function.clone()).or_default();
            if *used < room {
                *used += 1;
                chosen.push(d);
            }
        }
        // One statement per function (each has its own lease length).
        let mut functions: Vec<&str> = chosen.iter().map(|d| d.function.as_str()).collect();
        functions.sort_unstable();
        functions.dedup();
        for function in functions {
            let ids: Vec<i64> = chosen
                .iter()
                .filter(|d| d.function == function)
                .map(|d| d.id)
                .collect();
            let until = claim
                .lease_until
                .get(function)
                .copied()
                .unwrap_or(claim.default_until);
            let sql = format!(
                "UPDATE _eddy_deliveries SET state = 'leased', attempts = attempts + 1, lease_until_ms = ?,
                     lease_node = ?, updated_ms = ?
                 WHERE id {}",
                tx.dialect().in_integers()
            );
            let values = [
                Value::from(until),
                Value::from(&claim.node),
                Value::from(claim.now_ms),
                Value::integers(&ids),
            ];
            tx.execute(&sql, &values).await?;
        }
        Ok(chosen)
    }

    async fn due(
        &self,
        db: &mut dyn Sql,
        now_ms: i64,
        limit: u32,
    ) -> Result<HashMap<String, u32>, ExecError> {
        let sql = format!(
            "SELECT function, count(*) AS n FROM ({DUE} {}) AS due GROUP BY function",
            eddy_bus::sql::limit(limit)
        );
        let mut due = HashMap::new();
        for row in db.fetch(&sql, args![now_ms]).await? {
            due.insert(row.get::<String>("function")?, row.get::<u32>("n")?);
        }
        Ok(due)
    }

    async fn batches_due(
        &self,
        db: &mut dyn Sql,
        triggers: &[&str],
        now_ms: i64,
    ) -> Result<HashSet<String>, ExecError> {
        let mut due = HashSet::new();
        for trigger in triggers {
            let found = db
                .fetch(
                    "SELECT 1 FROM _eddy_deliveries
                     WHERE batched = 1 AND trigger = ? AND state = 'ready' AND +next_attempt_ms <= ? LIMIT 1",
                    args![*trigger, now_ms],
                )
                .await?;
            if !found.is_empty() {
                due.insert(trigger.to_string());
            }
        }
        Ok(due)
    }

    async fn next_due(&self, db: &mut dyn Sql, after_ms: i64) -> Result<Option<i64>, ExecError> {
        let row = db
            .fetch_one(
                // Each half seeks the due index (state, batched, time).
                "SELECT min(t) FROM (
                     SELECT min(next_attempt_ms) AS t FROM _eddy_deliveries
                     WHERE state = 'ready' AND batched = 0 AND next_attempt_ms > ?
                     UNION ALL
                     SELECT min(next_attempt_ms) AS t FROM _eddy_deliveries
                     WHERE state = 'ready' AND batched = 1 AND next_attempt_ms > ?) AS due",
                args![after_ms, after_ms],
            )
            .await?;
        Ok(row.at(0)?)
    }

    async fn running_batches(
        &self,
        tx: &mut dyn Sql,
        trigger: &str,
        node: &str,
        settling: &[String],
    ) -> Result<RunningBatches, ExecError> {
        let sql = format!(
            "SELECT count(DISTINCT CASE WHEN NOT (lease_batch {}) THEN lease_batch END) AS all_batches,
                    count(DISTINCT CASE WHEN lease_node <> ? THEN lease_batch END) AS elsewhere
             FROM _eddy_deliveries
             WHERE batched = 1 AND trigger = ? AND state = 'leased'",
            tx.dialect().in_texts()
        );
        let row = tx
            .fetch_one(
                &sql,
                &[
                    Value::texts(settling),
                    Value::from(node),
                    Value::from(trigger),
                ],
            )
            .await?;
        Ok(RunningBatches {
            all: row.get("all_batches")?,
            elsewhere: row.get("elsewhere")?,
        })
    }

    async fn batch_candidates(
        &self,
        tx: &mut dyn Sql,
        trigger: &str,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<BatchCandidate>, ExecError> {
        let sql = format!("{BATCH_CANDIDATES} {}", eddy_bus::sql::limit(limit));
        let rows = tx.fetch(&sql, args![trigger, now_ms, now_ms]).await?;
        let mut candidates = Vec::with_capacity(rows.len());
        for row in &rows {
            candidates.push(BatchCandidate {
                delivery: leased(row)?,
                order_key: row.get("order_key")?,
                part: row.get("batch_part")?,
                ready_ms: row.get("next_attempt_ms")?,
            });
        }
        Ok(candidates)
    }

    async fn mark_batched(&self, tx: &mut dyn Sql, triggers: &[&str]) -> Result<u64, ExecError> {
        let batched = format!(
            "CASE WHEN trigger {} THEN 1 ELSE 0 END",
            tx.dialect().in_texts()
        );
        let sql = format!(
            "UPDATE _eddy_deliveries SET batched = {batched}
             WHERE state IN ('ready', 'leased') AND batched <> {batched}"
        );
        let list = Value::texts(triggers);
        Ok(tx.execute(&sql, &[list.clone(), list]).await?)
    }

    async fn lease_batch(
        &self,
        tx: &mut dyn Sql,
        claim: &Claim,
        ids: &[i64],
        batch: &str,
        until_ms: i64,
    ) -> Result<(), ExecError> {
        let sql = format!(
            "UPDATE _eddy_deliveries SET state = 'leased', attempts = attempts + 1, lease_until_ms = ?,
                 lease_node = ?, lease_batch = ?, updated_ms = ?
             WHERE id {}",
            tx.dialect().in_integers()
        );
        let values = [
            Value::from(until_ms),
            Value::from(&claim.node),
            Value::from(batch),
            Value::from(claim.now_ms),
            Value::integers(ids),
        ];
        tx.execute(&sql, &values).await?;
        Ok(())
    }

    async fn expire(&self, tx: &mut dyn Sql, now_ms: i64) -> Result<u64, ExecError> {
        Ok(tx
            .execute(
                "UPDATE _eddy_deliveries SET state = 'ready', lease_until_ms = NULL, lease_node = NULL
                 WHERE state = 'leased' AND lease_until_ms < ?",
                args![now_ms],
            )
            .await?)
    }

    async fn reclaim(&self, tx: &mut dyn Sql, node: &str, now_ms: i64) -> Result<u64, ExecError> {
        self.slots.release_node(tx, node, now_ms).await?;
        Ok(tx
            .execute(
                "UPDATE _eddy_deliveries SET state = 'ready', lease_until_ms = NULL, lease_node = NULL
                 WHERE state = 'leased' AND (lease_node = ? OR lease_node IS NULL OR lease_until_ms < ?)",
                args![node, now_ms],
            )
            .await?)
    }

    async fn settle(&self, tx: &mut dyn Sql, batch: &[Settle]) -> Result<Vec<i64>, ExecError> {
        let records: Vec<&InvocationRecord> =
            batch.iter().filter_map(|s| s.record.as_ref()).collect();
        insert_invocations(tx, &records).await?;
        // A record done by a batch is found by its delivery's last lease (`lease_batch`): only
        // the batches that did not finish a record are listed, and the usual path writes none.
        let members: Vec<(i64, &str)> = batch
            .iter()
            .filter(|s| s.settlement != Settlement::Done)
            .filter_map(|s| Some((s.delivery?.delivery_id, s.batch.as_deref()?)))
            .collect();
        insert_batch_records(tx, &members).await?;
        let done: Vec<i64> = batch
            .iter()
            .filter(|s| s.settlement == Settlement::Done)
            .filter_map(|s| s.delivery.map(|d| d.delivery_id))
            .collect();
        let now = batch.iter().map(|s| s.now_ms).max().unwrap_or(0);
        let mut moved = Vec::new();
        // Done whichever attempt it was: the event was handled, even if a later attempt runs.
        if !done.is_empty() {
            let sql = format!(
                "UPDATE _eddy_deliveries SET state = 'done', lease_until_ms = NULL, lease_node = NULL, updated_ms = ?
                 WHERE id {} AND state <> 'done'
                 RETURNING id",
                tx.dialect().in_integers()
            );
            for row in tx
                .fetch(&sql, &[Value::from(now), Value::integers(&done)])
                .await?
            {
                moved.push(row.get("id")?);
            }
        }
        for s in batch.iter().filter(|s| s.settlement != Settlement::Done) {
            let Some(DeliveryAttempt {
                delivery_id,
                attempt,
            }) = s.delivery
            else {
                continue;
            };
            let (state, next, error, reason) = match &s.settlement {
                Settlement::Retry { at_ms, error } => ("ready", *at_ms, Some(error.as_str()), None),
                Settlement::Dead { reason, error } => (
                    "dead",
                    s.now_ms,
                    Some(error.as_str()),
                    Some(reason.as_str()),
                ),
                Settlement::Rebatch { part, error } => {
                    // Not an attempt: its count goes back down, and it is due when it was
                    // (its window passed already). Moved only from this lease.
                    let changed = tx
                        .execute(
                            "UPDATE _eddy_deliveries
                             SET state = 'ready', attempts = attempts - 1, batch_part = ?,
                                 last_error = coalesce(?, last_error), lease_until_ms = NULL,
                                 lease_node = NULL, updated_ms = ?
                             WHERE id = ? AND attempts = ? AND state = 'leased'",
                            args![part.clone(), error.clone(), s.now_ms, delivery_id, attempt],
                        )
                        .await?;
                    if changed == 1 {
                        moved.push(delivery_id);
                    }
                    continue;
                }
                Settlement::Done => unreachable!("filtered out above"),
            };
            // Moved only from its lease: a settlement recorded already, or one from an attempt
            // whose lease passed to a later one, finds none.
            let changed = tx
                .execute(
                    "UPDATE _eddy_deliveries
                     SET state = ?, next_attempt_ms = ?, last_error = ?, dead_reason = ?, lease_until_ms = NULL,
                         lease_node = NULL, updated_ms = ?
                     WHERE id = ? AND attempts = ? AND state = 'leased'",
                    args![state, next, error, reason, s.now_ms, delivery_id, attempt],
                )
                .await?;
            if changed == 1 {
                moved.push(delivery_id);
            }
        }
        Ok(moved)
    }

    async fn record_replay(
        &self,
        tx: &mut dyn Sql,
        trigger: &str,
        (from_seq, to_seq): (u64, u64),
        backfill: Option<&str>,
        now_ms: i64,
    ) -> Result<i64, ExecError> {
        let row = tx
            .fetch_one(
                "INSERT INTO _eddy_replays (trigger, from_seq, to_seq, next_seq, events, created_ms, backfill)
                 VALUES (?, ?, ?, ?, 0, ?, ?) RETURNING id",
                args![trigger, from_seq, to_seq, from_seq, now_ms, backfill],
            )
            .await?;
        Ok(row.get("id")?)
    }

    async fn replays(&self, db: &mut dyn Sql, unfinished: bool) -> Result<Vec<Replay>, ExecError> {
        let rows = db
            .fetch(
                "SELECT id, trigger, from_seq, to_seq, next_seq, events, created_ms, finished_ms, backfill
                 FROM _eddy_replays WHERE (? = 0 OR finished_ms IS NULL) ORDER BY id DESC",
                args![i64::from(unfinished)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Replay {
                    id: r.get("id")?,
                    trigger: r.get("trigger")?,
                    from_seq: r.get("from_seq")?,
                    to_seq: r.get("to_seq")?,
                    next_seq: r.get("next_seq")?,
                    events: r.get("events")?,
                    created_ms: r.get("created_ms")?,
                    finished_ms: r.get("finished_ms")?,
                    backfill: r.get("backfill")?,
                })
            })
            .collect()
    }

    async fn advance_replay(
        &self,
        tx: &mut dyn Sql,
        id: i64,
        next_seq: u64,
        to_next: u64,
        made: u64,
        finished: Option<i64>,
    ) -> Result<bool, ExecError> {
        let changed = tx
            .execute(
                "UPDATE _eddy_replays SET next_seq = ?, events = events + ?, finished_ms = ?
                 WHERE id = ? AND next_seq = ? AND finished_ms IS NULL",
                args![to_next, made, finished, id, next_seq],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn oldest_needed_event(&self, db: &mut dyn Sql) -> Result<Option<u64>, ExecError> {
        let row = db
            .fetch_one(
                "SELECT min(seq) AS seq FROM (
                     SELECT min(event_seq) AS seq FROM _eddy_deliveries
                     WHERE state IN ('ready', 'leased')
                     UNION ALL
                     SELECT min(next_seq) AS seq FROM _eddy_replays WHERE finished_ms IS NULL
                 ) AS needed",
                args![],
            )
            .await?;
        Ok(row.get("seq")?)
    }

    async fn clear_logs(
        &self,
        tx: &mut dyn Sql,
        from_ms: i64,
        before_ms: i64,
    ) -> Result<u64, ExecError> {
        records::clear_logs(tx, from_ms, before_ms).await
    }

    async fn sum_usage(
        &self,
        tx: &mut dyn Sql,
        from_ms: i64,
        before_ms: i64,
    ) -> Result<u64, ExecError> {
        records::sum_usage(tx, from_ms, before_ms).await
    }

    async fn remove_done(
        &self,
        tx: &mut dyn Sql,
        after_seq: u64,
        through_seq: u64,
        summed_before_ms: i64,
    ) -> Result<RemovedDone, ExecError> {
        // Both walk the (event_seq, trigger, replay) index over the removed events only:
        // `state || ''` keeps SQLite's planner from the due index, whose `state = 'done'` part
        // would have it read every done delivery (the concatenation changes nothing on
        // PostgreSQL).
        tx.execute(
            "DELETE FROM _eddy_batch_records WHERE delivery_id IN (
                 SELECT id FROM _eddy_deliveries
                 WHERE event_seq > ? AND event_seq <= ? AND state || '' = 'done')",
            args![after_seq, through_seq],
        )
        .await?;
        let deliveries = tx
            .execute(
                "DELETE FROM _eddy_deliveries
                 WHERE event_seq > ? AND event_seq <= ? AND state || '' = 'done'",
                args![after_seq, through_seq],
            )
            .await?;
        // After the deliveries: a record is summed once nothing kept is explained by it.
        let summed = sum_into_days(
            tx,
            &format!("event_seq > ? AND event_seq <= ? AND start_ms < ? AND {UNEXPLAINED}"),
            args![after_seq, through_seq, summed_before_ms],
        )
        .await?;
        Ok(RemovedDone { deliveries, summed })
    }

    async fn replay_backlog(&self, db: &mut dyn Sql, id: i64) -> Result<u64, ExecError> {
        let row = db
            .fetch_one(
                "SELECT count(*) AS n FROM _eddy_deliveries
                 WHERE replay = ? AND state IN ('ready', 'leased')",
                args![id],
            )
            .await?;
        Ok(row.get("n")?)
    }

    async fn deliveries_of(
        &self,
        db: &mut dyn Sql,
        event_seq: u64,
    ) -> Result<Vec<DeliveryState>, ExecError> {
        let rows = db
            .fetch(
                "SELECT id, trigger, function, state, attempts, next_attempt_ms, last_error,
                        dead_reason, replay, destination_seq
                 FROM _eddy_deliveries WHERE event_seq = ? ORDER BY id",
                args![event_seq],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(DeliveryState {
                    id: r.get("id")?,
                    trigger: r.get("trigger")?,
                    function: r.get("function")?,
                    state: r.get("state")?,
                    attempts: r.get("attempts")?,
                    next_attempt_ms: r.get("next_attempt_ms")?,
                    last_error: r.get("last_error")?,
                    dead_reason: r.get("dead_reason")?,
                    replay: r.get("replay")?,
                    destination_seq: r.get("destination_seq")?,
                })
            })
            .collect()
    }

    async fn note_destination(
        &self,
        tx: &mut dyn Sql,
        delivery_id: i64,
        event_seq: u64,
    ) -> Result<(), ExecError> {
        tx.execute(
            "UPDATE _eddy_deliveries SET destination_seq = ? WHERE id = ?",
            args![event_seq, delivery_id],
        )
        .await?;
        Ok(())
    }

    async fn schedule_runs(&self, db: &mut dyn Sql) -> Result<HashMap<String, i64>, ExecError> {
        let mut runs = HashMap::new();
        for row in db
            .fetch("SELECT name, run_ms FROM _eddy_schedule_runs", args![])
            .await?
        {
            runs.insert(row.get("name")?, row.get("run_ms")?);
        }
        Ok(runs)
    }

    async fn advance_schedule(
        &self,
        tx: &mut dyn Sql,
        name: &str,
        previous: Option<i64>,
        run_ms: i64,
    ) -> Result<bool, ExecError> {
        let changed = match previous {
            Some(previous) => {
                tx.execute(
                    "UPDATE _eddy_schedule_runs SET run_ms = ? WHERE name = ? AND run_ms = ?",
                    args![run_ms, name, previous],
                )
                .await?
            }
            None => {
                tx.execute(
                    "INSERT INTO _eddy_schedule_runs (name, run_ms) VALUES (?, ?)
                     ON CONFLICT (name) DO NOTHING",
                    args![name, run_ms],
                )
                .await?
            }
        };
        Ok(changed == 1)
    }

    async fn dead_letters(
        &self,
        db: &mut dyn Sql,
        function: Option<&str>,
    ) -> Result<Vec<DeadLetter>, ExecError> {
        let sql = format!(
            "SELECT {DEAD_COLUMNS} FROM _eddy_deliveries WHERE state = 'dead' AND (CAST(? AS TEXT) IS NULL OR function = ?) ORDER BY id"
        );
        let rows = db.fetch(&sql, args![function, function]).await?;
        rows.iter().map(dead_letter).collect()
    }

    async fn redrive(
        &self,
        tx: &mut dyn Sql,
        delivery: Option<i64>,
        function: Option<&str>,
        now_ms: i64,
    ) -> Result<u64, ExecError> {
        Ok(tx
            .execute(
                "UPDATE _eddy_deliveries
                 SET state = 'ready', attempts = 0, next_attempt_ms = ?, dead_reason = NULL, updated_ms = ?
                 WHERE state = 'dead' AND (CAST(? AS BIGINT) IS NULL OR id = ?) AND (CAST(? AS TEXT) IS NULL OR function = ?)",
                args![now_ms, now_ms, delivery, delivery, function, function],
            )
            .await?)
    }

    async fn counts(&self, db: &mut dyn Sql) -> Result<DeliveryCounts, ExecError> {
        let rows = db
            .fetch(
                "SELECT state, count(*) AS n FROM _eddy_deliveries GROUP BY state",
                args![],
            )
            .await?;
        let mut counts = DeliveryCounts::default();
        for row in rows {
            let n: u64 = row.get("n")?;
            match row.get::<String>("state")?.as_str() {
                "ready" => counts.ready = n,
                "leased" => counts.leased = n,
                "done" => counts.done = n,
                _ => counts.dead = n,
            }
        }
        Ok(counts)
    }

    async fn oldest_pending_ms(&self, db: &mut dyn Sql) -> Result<Option<i64>, ExecError> {
        let row = db
            .fetch_one(
                "SELECT min(event_time_ms) FROM _eddy_deliveries WHERE state IN ('ready', 'leased')",
                args![],
            )
            .await?;
        Ok(row.at(0)?)
    }

    async fn invocations(
        &self,
        db: &mut dyn Sql,
        function: Option<&str>,
        event_seq: Option<u64>,
        after: i64,
        limit: u32,
    ) -> Result<InvocationPage, ExecError> {
        records::invocations(db, function, event_seq, after, limit).await
    }

    async fn delivery_states(
        &self,
        db: &mut dyn Sql,
        event_seqs: &[u64],
    ) -> Result<Vec<(u64, String)>, ExecError> {
        let seqs: Vec<i64> = event_seqs.iter().map(|s| *s as i64).collect();
        let rows = db
            .fetch(
                &format!(
                    "SELECT event_seq, state FROM _eddy_deliveries WHERE event_seq {}",
                    db.dialect().in_integers()
                ),
                args![Value::integers(&seqs)],
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.get("event_seq")?, r.get("state")?)))
            .collect()
    }

    async fn latest_invocations(
        &self,
        db: &mut dyn Sql,
        function: &str,
        limit: u32,
    ) -> Result<Vec<InvocationRecord>, ExecError> {
        records::latest_invocations(db, function, limit).await
    }

    async fn invocations_per_minute(
        &self,
        db: &mut dyn Sql,
        function: &str,
        since_ms: i64,
    ) -> Result<Vec<MinuteCount>, ExecError> {
        records::invocations_per_minute(db, function, since_ms).await
    }

    async fn invocation_days(&self, db: &mut dyn Sql) -> Result<Vec<DayTotals>, ExecError> {
        records::invocation_days(db).await
    }

    async fn invocation_totals(
        &self,
        db: &mut dyn Sql,
    ) -> Result<Vec<InvocationTotals>, ExecError> {
        records::invocation_totals(db).await
    }

    async fn take_slots(
        &self,
        function: &str,
        capacity: u32,
        want: u32,
        until_ms: i64,
    ) -> Result<u32, ExecError> {
        self.slots.take(function, capacity, want, until_ms).await
    }

    async fn hold_slots(
        &self,
        tx: &mut dyn Sql,
        function: &str,
        until_ms: i64,
    ) -> Result<(), ExecError> {
        self.slots.hold(tx, function, until_ms).await
    }

    async fn give_back(&self, function: &str, n: u32) -> Result<(), ExecError> {
        self.slots.give_back(function, n).await
    }
}
