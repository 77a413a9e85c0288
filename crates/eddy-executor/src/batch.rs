//! Batches: a batched trigger's deliveries go many to an invocation, as a Lambda event source
//! mapping reads a stream. Each record keeps its own delivery (so each is explained, retried,
//! dead-lettered and redriven on its own); a batch is the set of deliveries one lease took.
//!
//! - **Leasing** (`lease`): in the scheduler's claim transaction, each batched trigger's due
//!   records are packed (`pack`) into at most as many batches as its function has slots and
//!   the trigger's `parallel` allows, each leased under its invocation's request id. A trigger
//!   that runs one batch at a time has up to three more leased ahead, each waiting for its turn
//!   (`turn`); batches that have run and wait for their settlement are not counted
//!   (`settling`).
//! - **Preparing** (`prepare`): the records built and the invocation's event made, from the
//!   moment of the lease.
//! - **Running** (`deliver`, `run`): one invocation with the records in event order, as DynamoDB
//!   Streams' or S3's `Records`; what it answers decides each record's fate — all done, the
//!   records it reported failed (and those after them in their key's order) tried again, or
//!   the whole batch failed: tried again together, or split in two and each half tried apart
//!   (a bisection is not an attempt), down to the record that fails alone.

mod event;
mod pack;
mod prepare;
mod response;
mod run;
mod settling;
mod turn;

use std::collections::HashMap;
use std::sync::Arc;

use eddy_bus::sql::Sql;
use eddy_core::Event;
use eddy_subscriptions::BatchSpec;
use tokio::sync::oneshot;

use crate::deliveries::{BatchCandidate, Claim, DeliveryStore};
use crate::settle::Finished;
use crate::{ExecError, Inner};

pub(crate) use pack::{Packed, pack};
pub(crate) use prepare::prepare_all;
use prepare::{Prepared, aged, by_seq, prepare};
use run::{attempt, given_back};
pub(crate) use settling::Settling;
pub(crate) use turn::{Turn, Turns};

/// A batched trigger whose records a claim may lease.
#[derive(Clone, Debug)]
pub(crate) struct Batched {
    pub trigger: String,
    pub function: String,
    pub spec: BatchSpec,
    pub lease_until: i64,
    /// How much longer a batch leased ahead is leased for each batch before it in line: each
    /// one's run (its function's timeout) may come first.
    pub turn_wait_ms: i64,
    /// Until when the function's slots a leased batch holds are held should this node die (in
    /// real time, as slots are): time for the last batch leased ahead to wait its turn and run.
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
                + i64::from(LEASED_AHEAD) * function.timeout.as_millis() as i64,
        }
    }
}

/// The most batches of a trigger leased at once: `parallel` running and, for a trigger that
/// runs one at a time and that no other node runs now, [`LEASED_AHEAD`] more, each waiting for
/// its turn. (With several at once, a batch leased ahead could start beside another node's.)
/// Batches that have run and wait for their settlement are not counted ([`Settling`]).
pub(crate) fn most_leased(spec: &BatchSpec, elsewhere: u32) -> u32 {
    let one_here = spec.parallel == 1 && elsewhere == 0;
    spec.parallel + if one_here { LEASED_AHEAD } else { 0 }
}

/// How many batches a trigger that runs one at a time may have leased ahead of the running
/// one (as its function's free slots allow). A batch's settlement waits for the writer's
/// transaction in progress and then commits its own — tens of milliseconds while rows pour in
/// — and a warm handler takes a batch of 100 in one or two: with three in line, it runs the
/// next ones meanwhile (docs/performance.md, "Batches that have run no longer hold the line").
pub(crate) const LEASED_AHEAD: u32 = 3;

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

/// The sequence numbers of the events the records of `batches` carry, to read them in one go.
pub(crate) fn event_seqs(batches: &[LeasedBatch]) -> Vec<u64> {
    batches
        .iter()
        .flat_map(|(_, batch)| batch.iter().map(|c| c.delivery.event_seq))
        .collect()
}

/// Leases the batches of each of `batched` that `room` (free slots by function, taken from as
/// batches are leased) allows, this node's `settling` batches not counted as leased. Returns
/// them, and when the earliest batch held back by its window is due.
pub(crate) async fn lease(
    store: &dyn DeliveryStore,
    tx: &mut dyn Sql,
    claim: &Claim,
    settling: &Settling,
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
        let running = store
            .running_batches(tx, &b.trigger, &claim.node, &settling.of(&b.trigger))
            .await?;
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
            // Batches before it in line: none for one that starts at once.
            let before = (running.all + i as u32 + 1).saturating_sub(b.spec.parallel);
            let until = b.lease_until + i64::from(before) * b.turn_wait_ms;
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
        Finished::record_batch(&inner, given_back(&request_id, prepared), None).await;
        return;
    }
    let settles = attempt(&inner, &request_id, function.as_ref(), prepared, turn).await;
    let _settling = inner.settling.begin(&trigger_name, &request_id);
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
    Finished::record_batch(&inner, settles, next).await;
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
