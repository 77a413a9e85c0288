//! The scheduler: claims due deliveries — within each function's concurrency and, for
//! `per_key` triggers, the commit order of each key — and runs them, one attempt each; then
//! decides what becomes of each: done, tried again later (backoff with jitter), or
//! dead-lettered with a reason.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use eddy_core::{Event, Lineage};
use eddy_events::destination::Response;
use eddy_subscriptions::{BatchSpec, FunctionSpec, RetryPolicy, TriggerSpec};

use crate::batch::{self, Batched, LeasedBatch, Leases};
use crate::deliveries::{
    Claim, DeadReason, DeliveryAttempt, InvocationRecord, Leased, Settle, Settlement,
};
use crate::{ExecError, FunctionError, Inner, backoff, destination, payload, runtime};

/// Leases due deliveries and runs them, waiting between rounds for a wake-up or the next due
/// time.
pub(crate) async fn schedule(inner: Arc<Inner>) {
    let mut stop = inner.stop.subscribe();
    let mut last_expiry = i64::MIN;
    loop {
        if *stop.borrow() {
            return;
        }
        let now = inner.clock.now_ms();
        let safety = inner.config.safety_poll.as_millis() as i64;
        if now.saturating_sub(last_expiry) >= safety {
            let expired = inner
                .bus
                .write((inner.store.clone(), now), |tx, (store, now)| {
                    Box::pin(store.expire(tx, *now))
                })
                .await;
            if let Err(error) = expired {
                tracing::error!(%error, "cannot expire leases");
            }
            last_expiry = now;
        }
        let Round {
            leased,
            batches,
            held_until,
        } = lease_round(&inner, now).await;
        let busy = !leased.is_empty() || !batches.is_empty();
        if !batches.is_empty() {
            run_batches(&inner, batches).await;
        }
        if !leased.is_empty() {
            // One read for the round's events rather than one per delivery.
            let seqs: Vec<u64> = leased.iter().map(|d| d.event_seq).collect();
            let events: Option<HashMap<u64, Arc<Event>>> = match inner.bus.events_at(&seqs).await {
                Ok(events) => Some(events.into_iter().map(|e| (e.seq, Arc::new(e))).collect()),
                Err(error) => {
                    // The leases expire and the deliveries are tried again.
                    tracing::error!(%error, "cannot read the events of leased deliveries");
                    None
                }
            };
            for delivery in leased {
                match events.as_ref().map(|e| e.get(&delivery.event_seq)) {
                    Some(Some(event)) => {
                        inner
                            .attempts
                            .spawn(deliver(inner.clone(), delivery, event.clone()));
                    }
                    // Read, and gone: the journal's retention removed it (a dead letter
                    // redriven after that). It cannot run again.
                    Some(None) => gone(&inner, &delivery).await,
                    None => {}
                }
            }
        }
        if busy {
            continue;
        }
        let next_due = inner
            .store
            .next_due(&mut inner.bus.readers(), now)
            .await
            .ok()
            .flatten();
        // Work that is due but could not be leased waits for a slot or a key to come free,
        // which wakes the scheduler; a batch waits for its window; the safety poll covers
        // anything missed.
        let wake_at = [next_due, held_until]
            .into_iter()
            .flatten()
            .fold(now + safety, i64::min);
        tokio::select! {
            _ = inner.wake.notified() => {}
            _ = inner.clock.sleep_until(wake_at) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// What a lease round took: single deliveries, batches, and when the earliest batch held back
/// by its window is due.
#[derive(Default)]
struct Round {
    leased: Vec<Leased>,
    batches: Vec<LeasedBatch>,
    held_until: Option<i64>,
}

async fn lease_round(inner: &Arc<Inner>, now: i64) -> Round {
    let compiled = inner.compiled();
    let grace = inner.config.lease_grace.as_millis() as i64;
    let limit = inner.config.lease_batch;
    // Slots are taken first, as many as each function has deliveries (or batches) due, and
    // what the claim does not use goes back: the cap on running invocations holds across
    // everyone sharing the store, and a round with nothing due takes no slot from a
    // synchronous invocation.
    let batched_triggers: Vec<(&TriggerSpec, BatchSpec, &FunctionSpec)> = compiled
        .app
        .triggers
        .iter()
        .filter_map(|t| Some((t, t.batch?, compiled.app.function(&t.function)?)))
        .collect();
    let batched_names: HashSet<String> = batched_triggers
        .iter()
        .map(|(t, _, _)| t.name.clone())
        .collect();
    let names: Vec<&str> = batched_names.iter().map(String::as_str).collect();
    let mut readers = inner.bus.readers();
    let found = async {
        let due = inner.store.due(&mut readers, now, limit).await?;
        let batches = inner.store.batches_due(&mut readers, &names, now).await?;
        Ok::<_, ExecError>((due, batches))
    };
    let (mut wanted, batches_due) = match found.await {
        Ok((due, batches)) if due.is_empty() && batches.is_empty() => return Round::default(),
        Ok(found) => found,
        Err(error) => {
            tracing::error!(%error, "cannot read the due deliveries");
            return Round::default();
        }
    };
    let mut batched = Vec::new();
    for (t, spec, f) in batched_triggers {
        if batches_due.contains(&t.name) {
            // Up to the most it may have leased; the claim gives back what it does not use.
            *wanted.entry(f.name.to_string()).or_default() += batch::most_leased(&spec, 0);
            batched.push(Batched::new(inner, &t.name, f, spec, now));
        }
    }
    let mut claim = Claim {
        node: inner.config.node.clone(),
        now_ms: now,
        limit,
        // A delivery for a function the app no longer has is leased (one a round) and
        // dead-lettered.
        default_room: 1,
        default_until: now + grace,
        ..Claim::default()
    };
    for f in &compiled.app.functions {
        let name = f.name.to_string();
        let room = match wanted.get(&name) {
            Some(wanted) => inner
                .store
                .take_slots(&name, f.concurrency, *wanted, inner.slot_until(&name))
                .await
                .unwrap_or(0),
            None => 0,
        };
        claim.room.insert(name.clone(), room);
        claim.lease_until.insert(name, inner.lease_until(f, now));
    }
    let input = (
        inner.store.clone(),
        claim.clone(),
        inner.settling.clone(),
        batched,
    );
    let round = inner
        .bus
        .write(input, |tx, (store, claim, settling, batched)| {
            Box::pin(async move {
                let leased = store.claim(tx, claim).await?;
                // What single deliveries left of each function's slots goes to batches.
                let mut room = claim.room.clone();
                for d in &leased {
                    if let Some(r) = room.get_mut(&d.function) {
                        *r = r.saturating_sub(1);
                    }
                }
                let (batches, held_until) =
                    batch::lease(store.as_ref(), tx, claim, settling, batched, &mut room).await?;
                Ok::<_, ExecError>(Round {
                    leased,
                    batches,
                    held_until,
                })
            })
        })
        .await
        .unwrap_or_else(|error| {
            tracing::error!(%error, "cannot lease deliveries");
            Round::default()
        });
    for (function, room) in &claim.room {
        let used = round
            .leased
            .iter()
            .filter(|d| &d.function == function)
            .count()
            + round
                .batches
                .iter()
                .filter(|(_, b)| &b[0].delivery.function == function)
                .count();
        if *room > used as u32 {
            let _ = inner.store.give_back(function, room - used as u32).await;
        }
    }
    round
}

/// Starts batches the scheduler leased, with their events read in one go.
pub(crate) async fn run_batches(inner: &Arc<Inner>, batches: Vec<LeasedBatch>) {
    let events = match inner.bus.events_at(&batch::event_seqs(&batches)).await {
        Ok(events) => events,
        Err(error) => {
            // The leases expire and the batches are tried again; their slots go back now.
            tracing::error!(%error, "cannot read the events of leased batches");
            for (_, batch) in &batches {
                let _ = inner.store.give_back(&batch[0].delivery.function, 1).await;
            }
            return;
        }
    };
    start_batches(inner, Leases::read(batches, events));
}

/// Starts the invocation of each leased batch.
pub(crate) fn start_batches(inner: &Arc<Inner>, leases: Leases) {
    for (leased, ready) in leases.0 {
        // Queued in the order they were leased.
        let turn = batch::turn(inner, &leased.1[0].delivery.trigger);
        inner
            .attempts
            .spawn(batch::deliver(inner.clone(), leased, ready, turn));
    }
}

/// Dead-letters a leased delivery whose event the journal no longer holds.
async fn gone(inner: &Arc<Inner>, delivery: &Leased) {
    // Its slot, taken with its lease (none for a function the app no longer has).
    if inner
        .compiled()
        .app
        .functions
        .iter()
        .any(|f| f.name.as_str() == delivery.function)
    {
        let _ = inner.store.give_back(&delivery.function, 1).await;
    }
    let settle = Settle {
        delivery: Some(DeliveryAttempt::from(delivery)),
        settlement: Settlement::Dead {
            reason: DeadReason::EventAgeExceeded,
            error: format!(
                "event {} was removed by the journal's retention",
                delivery.event_seq
            ),
        },
        record: None,
        destination: None,
        batch: None,
        now_ms: inner.clock.now_ms(),
    };
    let _ = inner.settled.send(settle.into()).await;
}

/// Runs one leased delivery (which holds one of its function's slots, unless the function is
/// gone) and hands the outcome to the settler.
pub(crate) async fn deliver(inner: Arc<Inner>, delivery: Leased, event: Arc<Event>) {
    let function = inner
        .compiled()
        .app
        .functions
        .iter()
        .find(|f| f.name.as_str() == delivery.function)
        .cloned();
    let attempted = attempt(&inner, &delivery, &event, function.as_ref()).await;
    if function.is_some() {
        let _ = inner.store.give_back(&delivery.function, 1).await;
    }
    let now_ms = inner.clock.now_ms();
    let destination = destination::of(&inner, &delivery, &event, &attempted, now_ms);
    let settle = Settle {
        delivery: Some(DeliveryAttempt::from(&delivery)),
        settlement: attempted.settlement,
        record: attempted.record,
        destination,
        batch: None,
        now_ms,
    };
    // Only fails once the settler has stopped; the lease then expires and it runs again.
    let _ = inner.settled.send(settle.into()).await;
}

/// What an attempt came to: what becomes of its delivery, its record when the function ran,
/// the event the function was (or would have been) given, and what it answered.
pub(crate) struct Attempted {
    pub settlement: Settlement,
    pub record: Option<InvocationRecord>,
    pub request_id: String,
    pub payload: Option<runtime::Payload>,
    pub response: Option<Response>,
}

/// One attempt at a delivery, and what should become of it.
async fn attempt(
    inner: &Inner,
    d: &Leased,
    event: &Event,
    function: Option<&FunctionSpec>,
) -> Attempted {
    let now = inner.clock.now_ms();
    let compiled = inner.compiled();
    let trigger = compiled.app.trigger(&d.trigger);
    let policy = compiled.app.retry_policy(&d.trigger);
    let request_id = uuid::Uuid::new_v4().to_string();
    let dead = |reason, error: String, payload: Option<runtime::Payload>| Attempted {
        settlement: Settlement::Dead { reason, error },
        record: None,
        request_id: request_id.clone(),
        payload,
        response: None,
    };
    let Some(function) = function else {
        return dead(
            DeadReason::FunctionMissing,
            format!("function `{}` is not declared", d.function),
            None,
        );
    };
    let label = compiled.stream_label(&event.source);
    let mut payload = match payload::build(event, trigger, &d.trigger, label) {
        Ok(payload) => payload,
        Err(e) => return dead(DeadReason::RetriesExhausted, e.to_string(), None),
    };
    payload::mark_replay(&mut payload, d.replay, event.backfill().is_some());
    let payload = runtime::Payload::from(payload);
    if too_old(&policy, d.event_time_ms, now) {
        return dead(
            DeadReason::EventAgeExceeded,
            format!(
                "the event is older than {:?}, the trigger's max_event_age",
                policy.max_event_age
            ),
            Some(payload),
        );
    }
    let lineage = Lineage::caused_by(event, request_id.clone());
    let (outcome, mut record) = match inner
        .run(function, &payload, request_id.clone(), Some(event), lineage)
        .await
    {
        Ok(ran) => ran,
        Err(unrunnable) => {
            return dead(DeadReason::FunctionMissing, unrunnable.0, Some(payload));
        }
    };
    record.delivery_id = Some(d.id);
    record.attempt = d.attempt;
    let (settlement, response) = match outcome.result {
        Ok(result) => (Settlement::Done, Response::Result(result)),
        Err(error) => {
            let response = Response::Error {
                error_type: error.error_type.clone(),
                message: error.message.clone(),
            };
            let now = inner.clock.now_ms();
            let jitter = backoff::random_unit();
            let step = next_step(&policy, d.attempt, d.event_time_ms, &error, now, jitter);
            (step, response)
        }
    };
    Attempted {
        settlement,
        record: Some(record),
        request_id,
        payload: Some(payload),
        response: Some(response),
    }
}

pub(crate) fn too_old(policy: &RetryPolicy, event_time_ms: i64, at_ms: i64) -> bool {
    at_ms - event_time_ms > policy.max_event_age.as_millis() as i64
}

/// After a failed attempt (the `attempt`-th) at an event of `event_time_ms`: try again later,
/// or dead-letter. `jitter`, in [0, 1), places the retry within its backoff: a batch's records
/// share one, to be tried again together.
pub(crate) fn next_step(
    policy: &RetryPolicy,
    attempt: u32,
    event_time_ms: i64,
    error: &FunctionError,
    now: i64,
    jitter: f64,
) -> Settlement {
    let retry = error.retry;
    let error = format!("{}: {}", error.error_type, error.message);
    if retry == runtime::Retry::Never {
        return Settlement::Dead {
            reason: DeadReason::Refused,
            error,
        };
    }
    if attempt >= policy.max_attempts {
        return Settlement::Dead {
            reason: DeadReason::RetriesExhausted,
            error,
        };
    }
    let mut delay = backoff::delay(policy, attempt, jitter);
    if let runtime::Retry::NotBefore(asked) = retry {
        delay = delay.max(asked);
    }
    let at_ms = now + delay.as_millis() as i64;
    if too_old(policy, event_time_ms, at_ms) {
        return Settlement::Dead {
            reason: DeadReason::EventAgeExceeded,
            error,
        };
    }
    Settlement::Retry { at_ms, error }
}
