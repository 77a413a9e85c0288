//! Batches: a batched trigger's deliveries go many to an invocation, as a Lambda event source
//! mapping reads a stream. Each record keeps its own delivery (so each is explained, retried,
//! dead-lettered and redriven on its own); a batch is the set of deliveries one lease took.
//!
//! - **Leasing** (`lease`): in the scheduler's claim transaction, each batched trigger's due
//!   records are packed (`pack`) into at most as many batches as its function has slots and
//!   the trigger's `parallel` allows, each leased under its invocation's request id. A trigger
//!   that runs one batch at a time has one more leased ahead, which waits for its turn (`turn`).
//! - **Running** (`deliver`): one invocation with the records in event order, as DynamoDB
//!   Streams' or S3's `Records`; what it answers decides each record's fate — all done, the
//!   records it reported failed (and those after them in their key's order) tried again, or
//!   the whole batch failed: tried again together, or split in two and each half tried apart
//!   (a bisection is not an attempt), down to the record that fails alone.

mod pack;
mod response;
mod turn;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use eddy_bus::EventRows;
use eddy_bus::sql::Sql;
use eddy_core::{Event, Lineage};
use eddy_events::destination::Response;
use eddy_subscriptions::BatchSpec;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::deliveries::{
    BatchCandidate, Claim, DeadReason, DeliveryAttempt, DeliveryStore, Settle, Settlement,
};
use crate::schedule::{next_step, too_old};
use crate::settle::Finished;
use crate::{ExecError, FunctionError, Inner, backoff, destination, payload};

pub(crate) use pack::{Packed, pack};
pub(crate) use turn::{Turn, Turns};

/// The largest event a batch is given, as Lambda's 6 MB synchronous payload: the records
/// after the one that would pass it wait for the next batch.
const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

/// A batched trigger whose records a claim may lease.
#[derive(Clone, Debug)]
pub(crate) struct Batched {
    pub trigger: String,
    pub function: String,
    pub spec: BatchSpec,
    pub lease_until: i64,
    /// How much longer a batch leased ahead is leased: the current one's run (its function's
    /// timeout) may come first.
    pub turn_wait_ms: i64,
    /// Until when the function's slots a leased batch holds are held should this node die (in
    /// real time, as slots are): time for a batch leased ahead to wait its turn and run.
    pub slot_until: i64,
}

impl Batched {
    /// `trigger` of `function`, batched as `spec`, leased at `now_ms`.
    pub fn new(
        inner: &Inner,
        trigger: &str,
        function: &eddy_subscriptions::FunctionSpec,
        spec: BatchSpec,
        now_ms: i64,
    ) -> Self {
        Self {
            trigger: trigger.to_string(),
            function: function.name.to_string(),
            spec,
            lease_until: inner.lease_until(function, now_ms),
            turn_wait_ms: function.timeout.as_millis() as i64,
            slot_until: inner.slot_until(function.name.as_str())
                + function.timeout.as_millis() as i64,
        }
    }
}

/// The most batches of a trigger leased at once: `parallel` running and, for a trigger that
/// runs one at a time and that no other node runs now, one more leased ahead, waiting for its
/// turn. (With several at once, a batch leased ahead could start beside another node's.)
pub(crate) fn most_leased(spec: &BatchSpec, elsewhere: u32) -> u32 {
    spec.parallel + u32::from(spec.parallel == 1 && elsewhere == 0)
}

/// A leased batch's place among its trigger's: behind the ones before it when the trigger
/// runs one at a time.
pub(crate) fn turn(inner: &Inner, trigger: &str) -> Turn {
    let one_at_a_time = inner
        .compiled()
        .app
        .trigger(trigger)
        .and_then(|t| t.batch)
        .is_some_and(|spec| spec.parallel == 1);
    if one_at_a_time {
        inner.turns.queue(trigger)
    } else {
        Turn::none()
    }
}

/// A leased batch: its invocation's request id and its records, in event order.
pub(crate) type LeasedBatch = (String, Vec<BatchCandidate>);

/// A batch's records' events by sequence number.
pub(crate) type Events = Arc<HashMap<u64, Arc<Event>>>;

/// How a leased batch gets ready to run.
pub(crate) enum Ready {
    /// Its events are read; it is made ready as it starts.
    Read(Events),
    /// It is being made ready, from the moment it was leased.
    Preparing(oneshot::Receiver<Prepared>),
}

/// Batches leased in one transaction, each with how it gets ready.
pub(crate) struct Leases(pub Vec<(LeasedBatch, Ready)>);

impl Leases {
    /// `batches` with `events`, read for [`event_seqs`]`(&batches)`.
    pub fn read(batches: Vec<LeasedBatch>, events: Vec<Event>) -> Self {
        let events: Events = Arc::new(by_seq(events));
        Self(
            batches
                .into_iter()
                .map(|batch| (batch, Ready::Read(events.clone())))
                .collect(),
        )
    }
}

/// Events by sequence number.
fn by_seq(events: Vec<Event>) -> HashMap<u64, Arc<Event>> {
    events.into_iter().map(|e| (e.seq, Arc::new(e))).collect()
}

/// The sequence numbers of the events the records of `batches` carry, to read them in one go.
pub(crate) fn event_seqs(batches: &[LeasedBatch]) -> Vec<u64> {
    batches
        .iter()
        .flat_map(|(_, batch)| batch.iter().map(|c| c.delivery.event_seq))
        .collect()
}

/// Leases the batches of each of `batched` that `room` (free slots by function, taken from as
/// batches are leased) allows. Returns them, and when the earliest batch held back by its
/// window is due.
pub(crate) async fn lease(
    store: &dyn DeliveryStore,
    tx: &mut dyn Sql,
    claim: &Claim,
    batched: &[Batched],
    room: &mut HashMap<String, u32>,
) -> Result<(Vec<LeasedBatch>, Option<i64>), ExecError> {
    let mut leased = Vec::new();
    let mut held_until: Option<i64> = None;
    for b in batched {
        let free = room.get(&b.function).copied().unwrap_or(0);
        if free == 0 {
            continue;
        }
        // While the trigger has all the batches it may leased, its candidates are not looked
        // for: the batch that finishes leases the next as it settles.
        let running = store.running_batches(tx, &b.trigger, &claim.node).await?;
        let most = most_leased(&b.spec, running.elsewhere);
        let allowed = free.min(most.saturating_sub(running.all));
        if allowed == 0 {
            continue;
        }
        let limit = b.spec.size.saturating_mul(free.min(most));
        let candidates = store
            .batch_candidates(tx, &b.trigger, claim.now_ms, limit)
            .await?;
        let Packed {
            batches,
            held_until: held,
        } = pack(candidates, &b.spec, allowed, claim.now_ms);
        if let Some(h) = held {
            held_until = Some(held_until.map_or(h, |u| u.min(h)));
        }
        let found = !batches.is_empty();
        for (i, batch) in batches.into_iter().enumerate() {
            let request_id = uuid::Uuid::new_v4().to_string();
            let ids: Vec<i64> = batch.iter().map(|c| c.delivery.id).collect();
            let ahead = running.all + i as u32 >= b.spec.parallel;
            let until = b.lease_until + if ahead { b.turn_wait_ms } else { 0 };
            store
                .lease_batch(tx, claim, &ids, &request_id, until)
                .await?;
            *room.get_mut(&b.function).expect("had room") -= 1;
            leased.push((request_id, batch));
        }
        if found {
            // A slot handed on from a finished batch was taken when its trigger's first batch
            // started, maybe hours ago.
            store.hold_slots(tx, &b.function, b.slot_until).await?;
        }
    }
    Ok((leased, held_until))
}

/// Runs one leased batch (which holds one slot of its function, unless the function is gone)
/// once its `turn` has come, and hands each record's outcome to the settler.
pub(crate) async fn deliver(
    inner: Arc<Inner>,
    (request_id, members): LeasedBatch,
    ready: Ready,
    mut turn: Turn,
) {
    let function_name = members[0].delivery.function.clone();
    let trigger_name = members[0].delivery.trigger.clone();
    let mut prepared = match ready {
        Ready::Read(events) => prepare(&inner, members, events),
        Ready::Preparing(preparing) => match preparing.await {
            Ok(prepared) => prepared,
            // Its events could not be read (said where it failed): the lease expires and
            // the batch runs again.
            Err(_) => {
                give_back_slot(&inner, &function_name).await;
                return;
            }
        },
    };
    if turn.wait().await {
        prepared = aged(&inner, prepared);
    }
    let function = prepared.function.take();
    if *inner.stop.borrow() && function.is_some() {
        // Its turn came as the executor stops (a batch leased ahead, or one leased just before
        // the stop): it has not started, so it goes back now rather than hold up the stop or
        // wait for its lease to pass.
        give_back_slot(&inner, &function_name).await;
        let (finished, recorded) = Finished::of_batch(given_back(&request_id, prepared), None);
        if inner.settled.send(finished).await.is_ok() {
            let _ = recorded.await;
        }
        return;
    }
    let settles = attempt(&inner, &request_id, function.as_ref(), prepared, turn).await;
    // The slot goes to the trigger's next batch, leased as this one is settled (the settler
    // gives it back if there is none); without a batched trigger, back now.
    let compiled = inner.compiled();
    let next = match (&function, compiled.app.trigger(&trigger_name)) {
        (Some(f), Some(t)) => t
            .batch
            .map(|spec| Batched::new(&inner, &trigger_name, f, spec, inner.clock.now_ms())),
        _ => None,
    };
    if function.is_some() && next.is_none() {
        let _ = inner.store.give_back(&function_name, 1).await;
    }
    // Only fails once the settler has stopped; the leases then expire and run again.
    let (finished, recorded) = Finished::of_batch(settles, next);
    if inner.settled.send(finished).await.is_ok() {
        let _ = recorded.await;
    }
}

/// Gives back the slot a batch of `function` holds (none once the app no longer has it).
async fn give_back_slot(inner: &Inner, function: &str) {
    let declared = inner
        .compiled()
        .app
        .functions
        .iter()
        .any(|f| f.name.as_str() == function);
    if declared {
        let _ = inner.store.give_back(function, 1).await;
    }
}

/// Makes `batches` ready on a task of their own while the transaction that leased them (and
/// read `rows`, their events) goes on and commits: the events decoded, the records built.
/// This only reads and builds in memory; what was made for a lease that did not commit is
/// thrown away.
pub(crate) fn prepare_all(
    inner: &Arc<Inner>,
    batches: Vec<LeasedBatch>,
    rows: EventRows,
) -> Leases {
    let mut preparing = Vec::with_capacity(batches.len());
    let mut leases = Vec::with_capacity(batches.len());
    for batch in batches {
        let (ready, preparation) = oneshot::channel();
        preparing.push((batch.1.clone(), ready));
        leases.push((batch, Ready::Preparing(preparation)));
    }
    if !preparing.is_empty() {
        let inner = inner.clone();
        tokio::spawn(async move {
            let events: Events = match rows.decode() {
                Ok(events) => Arc::new(by_seq(events)),
                Err(error) => {
                    tracing::error!(%error, "cannot read the events of leased batches");
                    return;
                }
            };
            for (members, ready) in preparing {
                let _ = ready.send(prepare(&inner, members, events.clone()));
            }
        });
    }
    Leases(leases)
}

/// One record's part in an attempt.
struct Member {
    candidate: BatchCandidate,
    settlement: Settlement,
    /// Whether the invocation carried it (not one left out before it ran).
    carried: bool,
}

impl Member {
    fn left_out(candidate: BatchCandidate, settlement: Settlement) -> Self {
        Self {
            candidate,
            settlement,
            carried: false,
        }
    }

    fn carried(candidate: BatchCandidate, settlement: Settlement) -> Self {
        Self {
            candidate,
            settlement,
            carried: true,
        }
    }
}

/// A leased batch made ready to run: the function it runs (none when the app no longer has
/// it), the records that cannot go with why, and those that go with the event they make.
pub(crate) struct Prepared {
    function: Option<eddy_subscriptions::FunctionSpec>,
    events: Events,
    now_ms: i64,
    finished: Vec<Member>,
    live: Vec<(BatchCandidate, Arc<Event>)>,
    payload: Option<Value>,
}

/// Makes a leased batch ready: each record built, or given up on with why (gone from the
/// journal, too old, past the payload's room), and the invocation's event.
fn prepare(inner: &Inner, members: Vec<BatchCandidate>, events: Events) -> Prepared {
    let now = inner.clock.now_ms();
    let compiled = inner.compiled();
    let trigger_name = members[0].delivery.trigger.clone();
    let trigger = compiled.app.trigger(&trigger_name);
    let policy = compiled.app.retry_policy(&trigger_name);
    let function = compiled
        .app
        .functions
        .iter()
        .find(|f| f.name.as_str() == members[0].delivery.function)
        .cloned();
    let dead = |reason, error: String| Settlement::Dead { reason, error };
    let mut prepared = Prepared {
        function,
        events: events.clone(),
        now_ms: now,
        finished: Vec::new(),
        live: Vec::new(),
        payload: None,
    };
    if prepared.function.is_none() {
        let error = format!(
            "function `{}` is not declared",
            members[0].delivery.function
        );
        prepared.finished = members
            .into_iter()
            .map(|candidate| {
                Member::left_out(candidate, dead(DeadReason::FunctionMissing, error.clone()))
            })
            .collect();
        return prepared;
    }
    let mut records = Vec::new();
    let mut size = 0;
    // A record that cannot go is given up on with why.
    let build = |d: &crate::Leased| -> Result<(&Arc<Event>, Value), Settlement> {
        let Some(event) = events.get(&d.event_seq) else {
            let error = format!(
                "event {} was removed by the journal's retention",
                d.event_seq
            );
            return Err(dead(DeadReason::EventAgeExceeded, error));
        };
        if too_old(&policy, d.event_time_ms, now) {
            let error = format!(
                "the record is older than {:?}, the trigger's max_event_age",
                policy.max_event_age
            );
            return Err(dead(DeadReason::EventAgeExceeded, error));
        }
        payload::record(
            event,
            trigger,
            &trigger_name,
            compiled.stream_label(&event.source),
        )
        .map(|record| (event, record))
        .map_err(|e| dead(DeadReason::RetriesExhausted, e.to_string()))
    };
    for candidate in members {
        let (event, record) = match build(&candidate.delivery) {
            Ok(built) => built,
            Err(settlement) => {
                prepared
                    .finished
                    .push(Member::left_out(candidate, settlement));
                continue;
            }
        };
        let bytes = eddy_events::json_len(&record);
        if !prepared.live.is_empty() && size + bytes > MAX_PAYLOAD {
            let rebatch = Settlement::Rebatch {
                part: None,
                error: None,
            };
            prepared.finished.push(Member::left_out(candidate, rebatch));
            continue;
        }
        size += bytes;
        records.push(record);
        prepared.live.push((candidate, event.clone()));
    }
    if !prepared.live.is_empty() {
        prepared.payload = Some(batch_payload(records, &prepared.live));
    }
    prepared
}

/// A batch that waited for its turn, its records given up on if they grew too old meanwhile
/// (as they would have been, had they waited unleased).
fn aged(inner: &Inner, prepared: Prepared) -> Prepared {
    let Some((first, _)) = prepared.live.first() else {
        return prepared;
    };
    let policy = inner.compiled().app.retry_policy(&first.delivery.trigger);
    let now = inner.clock.now_ms();
    let grown_old = |c: &BatchCandidate| too_old(&policy, c.delivery.event_time_ms, now);
    if !prepared.live.iter().any(|(c, _)| grown_old(c)) {
        return prepared;
    }
    let Prepared {
        events,
        finished,
        live,
        ..
    } = prepared;
    let mut again = prepare(inner, live.into_iter().map(|(c, _)| c).collect(), events);
    again.finished.extend(finished);
    again
}

/// What a batch that did not start records: each record it would have carried back to ready,
/// not an attempt (its count goes back down, its half of a bisection kept), and those that
/// could not go as they were found.
fn given_back(request_id: &str, prepared: Prepared) -> Vec<Settle> {
    let mut members = prepared.finished;
    members.extend(prepared.live.into_iter().map(|(candidate, _)| {
        let rebatch = Settlement::Rebatch {
            part: candidate.part.clone(),
            error: None,
        };
        Member::left_out(candidate, rebatch)
    }));
    settles(request_id, members, None, None, prepared.now_ms)
}

/// One attempt at a prepared batch of `function`: what becomes of each record, as settlements
/// to record. The `turn` passes to the trigger's next batch as soon as the handler has answered.
async fn attempt(
    inner: &Inner,
    request_id: &str,
    function: Option<&eddy_subscriptions::FunctionSpec>,
    prepared: Prepared,
    turn: Turn,
) -> Vec<Settle> {
    let Prepared {
        events,
        now_ms: now,
        mut finished,
        live,
        payload,
        ..
    } = prepared;
    let (Some(function), Some(payload)) = (function, payload) else {
        let destination =
            function.and_then(|f| unrun_destination(inner, request_id, f, &finished, &events, now));
        return settles(request_id, finished, None, destination, now);
    };
    let compiled = inner.compiled();
    let trigger_name = live[0].0.delivery.trigger.clone();
    let spec = compiled
        .app
        .trigger(&trigger_name)
        .and_then(|t| t.batch)
        .unwrap_or_default();
    let policy = compiled.app.retry_policy(&trigger_name);
    let dead = |reason, error: String| Settlement::Dead { reason, error };
    let first = live[0].1.clone();
    let lineage = Lineage::caused_by(&first, request_id.to_string());
    let ran = inner
        .run(
            function,
            &payload,
            request_id.to_string(),
            Some(&first),
            lineage,
        )
        .await;
    drop(turn);
    let (outcome, mut record) = match ran {
        Ok(ran) => ran,
        Err(unrunnable) => {
            finished.extend(live.into_iter().map(|(candidate, _)| {
                Member::left_out(
                    candidate,
                    dead(DeadReason::FunctionMissing, unrunnable.0.clone()),
                )
            }));
            return settles(request_id, finished, None, None, now);
        }
    };
    record.delivery_id = Some(live[0].0.delivery.id);
    record.attempt = live
        .iter()
        .map(|(c, _)| c.delivery.attempt)
        .max()
        .unwrap_or(1);
    record.batch_size = Some(live.len() as u32);
    let now = inner.clock.now_ms();
    let (failed, response) = match &outcome.result {
        Ok(result) if spec.report_failures => {
            let sequences: HashMap<u64, ()> = live
                .iter()
                .map(|(c, _)| (c.delivery.event_seq, ()))
                .collect();
            let failed = response::reported_failures(result, |seq| sequences.contains_key(&seq));
            (failed, Response::Result(result.clone()))
        }
        Ok(result) => (Ok(HashSet::new()), Response::Result(result.clone())),
        Err(error) => (
            Err(error.clone()),
            Response::Error {
                error_type: error.error_type.clone(),
                message: error.message.clone(),
            },
        ),
    };
    let live: Vec<BatchCandidate> = live.into_iter().map(|(c, _)| c).collect();
    let jitter = backoff::random_unit();
    let retry_or_die = |c: &BatchCandidate, error: &FunctionError| {
        next_step(
            &policy,
            c.delivery.attempt,
            c.delivery.event_time_ms,
            error,
            now,
            jitter,
        )
    };
    match failed {
        Ok(failed) => {
            // Each key's first reported record and every later one of that key go again.
            let mut from: HashMap<&str, u64> = HashMap::new();
            for c in live
                .iter()
                .filter(|c| failed.contains(&c.delivery.event_seq))
            {
                if let Some(key) = &c.order_key {
                    from.entry(key).or_insert(c.delivery.event_seq);
                }
            }
            let reported = FunctionError::new(
                "BatchItemFailure",
                "the handler reported the record failed (batchItemFailures)",
            );
            let held = FunctionError::new(
                "BatchItemFailure",
                "an earlier record of its key was reported failed (batchItemFailures)",
            );
            for c in &live {
                let seq = c.delivery.event_seq;
                let settlement = if failed.contains(&seq) {
                    retry_or_die(c, &reported)
                } else if c
                    .order_key
                    .as_deref()
                    .and_then(|k| from.get(k))
                    .is_some_and(|first| seq > *first)
                {
                    retry_or_die(c, &held)
                } else {
                    Settlement::Done
                };
                finished.push(Member::carried(c.clone(), settlement));
            }
        }
        Err(error) if spec.bisect_on_error && live.len() > 1 => {
            let text = format!("{}: {}", error.error_type, error.message);
            let half = live.len().div_ceil(2);
            for (i, c) in live.into_iter().enumerate() {
                let part = format!("{request_id}.{}", usize::from(i >= half));
                let rebatch = Settlement::Rebatch {
                    part: Some(part),
                    error: Some(text.clone()),
                };
                finished.push(Member::carried(c, rebatch));
            }
        }
        Err(error) => {
            for c in live {
                let settlement = retry_or_die(&c, &error);
                finished.push(Member::carried(c, settlement));
            }
        }
    }
    let destination = destination::of_batch(
        inner,
        &trigger_name,
        function,
        request_id,
        &payload,
        Some(&response),
        &finished
            .iter()
            .map(|m| (&m.candidate, &m.settlement))
            .collect::<Vec<_>>(),
        &events,
        now,
    );
    settles(request_id, finished, Some(record), destination, now)
}

/// The destination record of a batch that did not run because every record it leased was
/// given up on first (too old, or its event gone): the records that could be built are its
/// request payload.
fn unrun_destination(
    inner: &Inner,
    request_id: &str,
    function: &eddy_subscriptions::FunctionSpec,
    finished: &[Member],
    events: &Events,
    now_ms: i64,
) -> Option<(i64, crate::Destination)> {
    let trigger_name = &finished.first()?.candidate.delivery.trigger;
    let compiled = inner.compiled();
    let trigger = compiled.app.trigger(trigger_name);
    let records: Vec<Value> = finished
        .iter()
        .filter_map(|m| {
            let event = events.get(&m.candidate.delivery.event_seq)?;
            let label = compiled.stream_label(&event.source);
            payload::record(event, trigger, trigger_name, label).ok()
        })
        .collect();
    let payload = eddy_events::envelope(records);
    destination::of_batch(
        inner,
        trigger_name,
        function,
        request_id,
        &payload,
        None,
        &finished
            .iter()
            .map(|m| (&m.candidate, &m.settlement))
            .collect::<Vec<_>>(),
        events,
        now_ms,
    )
}

/// The settlements of an attempt's records: the first carries the invocation's record, the
/// first that a destination's record is for carries it.
fn settles(
    request_id: &str,
    members: Vec<Member>,
    record: Option<crate::InvocationRecord>,
    destination: Option<(i64, crate::Destination)>,
    now_ms: i64,
) -> Vec<Settle> {
    let mut record = record;
    let mut destination = destination;
    members
        .into_iter()
        .map(|m| {
            let id = m.candidate.delivery.id;
            Settle {
                delivery: Some(DeliveryAttempt::from(&m.candidate.delivery)),
                settlement: m.settlement,
                record: record.take(),
                destination: destination
                    .take_if(|(for_id, _)| *for_id == id)
                    .map(|(_, d)| d),
                batch: m.carried.then(|| request_id.to_string()),
                now_ms,
            }
        })
        .collect()
}

/// The event of a batch: the records as `Records`, as DynamoDB Streams and S3 send them
/// (eddy's plain records likewise), marked when they are a replay's or a backfill's.
fn batch_payload(records: Vec<Value>, live: &[(BatchCandidate, Arc<Event>)]) -> Value {
    let mut payload = eddy_events::envelope(records);
    let backfill = live.iter().any(|(_, e)| e.backfill().is_some());
    payload::mark_replay(&mut payload, live[0].0.delivery.replay, backfill);
    payload
}
