//! Destinations: where the outcome of a delivery goes once it is final. An asynchronous
//! invocation — an object trigger's delivery, an `Event` invoke, a schedule's run — goes to its
//! function's `on_success` or `on_failure` with Lambda's invocation record; a table trigger's
//! delivery that is given up on goes to the trigger's `on_failure` with the stream's failure
//! record (which names the record, as DynamoDB Streams' does; a bucket or table destination
//! also gets the records themselves, as Lambda's S3 destination does). Retries and dead
//! letters are unchanged: a destination is in addition.
//!
//! The record is written in the transaction that records the settlement (see `Inner::record`):
//! journaled as an asynchronous invocation of a destination function, or written as an object
//! or a row by the node's [`DestinationWriter`](crate::DestinationWriter).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use eddy_bus::WriteTx;

use eddy_core::{Event, EventKind, FunctionName, Lineage, NewEvent, Source};
use eddy_events::destination::{
    Condition, Outcome, Response, SHARD_ID, StreamBatch, invocation_record, record_name,
    stream_failure_record,
};
use eddy_subscriptions::{App, FunctionSpec, Target, TriggerSpec};
use serde_json::Value;

use crate::deliveries::{BatchCandidate, DeadReason, Destination, Leased, Settlement};
use crate::runtime::Payload;
use crate::schedule::Attempted;
use crate::{Compiled, ExecError, INVOKE_TRIGGER, Inner, payload};

/// Writes bucket and table destination records in the transaction that settles what they
/// record. A node implements it with its object and table stores, which this crate does not
/// depend on.
#[async_trait]
pub trait DestinationWriter: Send + Sync {
    /// Writes the record as an object of its bucket or a row of its table, and returns where
    /// the journal holds the change; or says why it cannot be written as the app now stands (the
    /// bucket or table is gone, the table no longer fits) — found before anything is written,
    /// so the transaction, and the settlements it holds, go on.
    async fn write(
        &self,
        tx: &mut WriteTx,
        destination: &Destination,
    ) -> Result<Written, ExecError>;
}

impl std::fmt::Debug for dyn DestinationWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DestinationWriter")
    }
}

/// What became of a bucket or table destination's record.
#[derive(Debug)]
pub enum Written {
    /// Written: the sequence number of the object's or row's change in the journal.
    Journaled(u64),
    /// Not written, and why.
    Refused(String),
}

/// The destination `attempted`'s outcome goes to, if it is final and one is set.
pub(crate) fn of(
    inner: &Inner,
    d: &Leased,
    event: &Event,
    attempted: &Attempted,
    now_ms: i64,
) -> Option<Destination> {
    let compiled = inner.compiled();
    let outcome = |condition: &'static str| Outcome {
        request_id: &attempted.request_id,
        function: &d.function,
        condition,
        attempts: d.attempt,
        response: attempted.response.as_ref(),
        now_ms,
    };
    let lineage = Lineage::caused_by(event, attempted.request_id.clone());
    let trigger = compiled.app.trigger(&d.trigger);
    if let Some(t) = trigger
        && let Source::Table(table) = &t.source
    {
        let Settlement::Dead { reason, .. } = &attempted.settlement else {
            return None;
        };
        let at = (event.seq, event.time_ms);
        return stream_failure(
            &compiled,
            t,
            table.as_str(),
            &outcome(condition_of(*reason)),
            GivenUp {
                first: at,
                last: at,
                size: 1,
            },
            attempted.payload.as_ref(),
            lineage,
        );
    }
    // Asynchronous invocations: object triggers, `Event` invokes, schedules.
    let asynchronous =
        trigger.is_some() || d.trigger == INVOKE_TRIGGER || d.trigger.starts_with("schedule/");
    if !asynchronous {
        return None;
    }
    asynchronous_destination(
        &compiled.app,
        &d.function,
        &attempted.settlement,
        outcome,
        attempted.payload.as_ref(),
        lineage,
    )
}

/// The destination of a batch's attempt, and the record (of `members`) whose settlement
/// carries it: a table trigger's records given up on go to its `on_failure` as one batch
/// record; an object trigger's batch goes to its function's `on_success` once every record is
/// done, or `on_failure` with the first given up on.
#[allow(clippy::too_many_arguments)]
pub(crate) fn of_batch(
    inner: &Inner,
    trigger_name: &str,
    function: &FunctionSpec,
    request_id: &str,
    payload: &Payload,
    response: Option<&Response>,
    members: &[(&BatchCandidate, &Settlement)],
    events: &HashMap<u64, Arc<Event>>,
    now_ms: i64,
) -> Option<(i64, Destination)> {
    let compiled = inner.compiled();
    let trigger = compiled.app.trigger(trigger_name)?;
    let attempts = members.iter().map(|(c, _)| c.delivery.attempt).max()?;
    let outcome = |condition: &'static str| Outcome {
        request_id,
        function: function.name.as_str(),
        condition,
        attempts,
        response,
        now_ms,
    };
    let dead: Vec<(&BatchCandidate, DeadReason)> = members
        .iter()
        .filter_map(|(c, s)| match s {
            Settlement::Dead { reason, .. } => Some((*c, *reason)),
            _ => None,
        })
        .collect();
    let lineage_of = |c: &BatchCandidate| match events.get(&c.delivery.event_seq) {
        Some(event) => Lineage::caused_by(event, request_id),
        None => Lineage {
            cause_event: None,
            cause_invocation: Some(request_id.to_string()),
            hops: 1,
        },
    };
    if let Source::Table(table) = &trigger.source {
        let (first, reason) = *dead.first()?;
        let last = dead.last()?.0;
        let at = |c: &BatchCandidate| (c.delivery.event_seq, c.delivery.event_time_ms);
        let given_up = GivenUp {
            first: at(first),
            last: at(last),
            size: dead.len() as u64,
        };
        let condition = outcome(condition_of(reason));
        let destination = stream_failure(
            &compiled,
            trigger,
            table.as_str(),
            &condition,
            given_up,
            Some(payload),
            lineage_of(first),
        )?;
        return Some((first.delivery.id, destination));
    }
    let (carrier, settlement) = match dead.first() {
        Some((c, _)) => (
            *c,
            members
                .iter()
                .find(|(m, _)| m.delivery.id == c.delivery.id)?
                .1,
        ),
        None if members.iter().all(|(_, s)| **s == Settlement::Done) => members[0],
        None => return None,
    };
    let destination = asynchronous_destination(
        &compiled.app,
        function.name.as_str(),
        settlement,
        outcome,
        Some(payload),
        lineage_of(carrier),
    )?;
    Some((carrier.delivery.id, destination))
}

/// How a stream's failure record names why its records were given up on.
fn condition_of(reason: DeadReason) -> &'static str {
    match reason {
        DeadReason::EventAgeExceeded => "RecordAgeExceeded",
        _ => "RetryAttemptsExhausted",
    }
}

/// The records a stream gave up on: the first's and the last's sequence number and time, and
/// how many.
struct GivenUp {
    first: (u64, i64),
    last: (u64, i64),
    size: u64,
}

/// A table trigger's on-failure record for the records it gave up on, sent as `payload`: a
/// bucket or table destination keeps that too, as Lambda's S3 destination keeps the
/// invocation's payload.
fn stream_failure(
    compiled: &Compiled,
    trigger: &TriggerSpec,
    table: &str,
    outcome: &Outcome,
    given_up: GivenUp,
    payload: Option<&Payload>,
    lineage: Lineage,
) -> Option<Destination> {
    let to = trigger.on_failure.clone()?;
    let stream_label = compiled
        .stream_label(&trigger.source)
        .unwrap_or(payload::DEFAULT_STREAM_LABEL);
    let batch = StreamBatch {
        table,
        stream_label,
        first_seq: given_up.first.0,
        last_seq: given_up.last.0,
        first_time_ms: given_up.first.1,
        last_time_ms: given_up.last.1,
        size: given_up.size,
    };
    let mut record = stream_failure_record(outcome, &batch);
    if let (Some(payload), Target::Bucket(_) | Target::Table(_)) = (payload, &to)
        && let Value::Object(fields) = &mut record
    {
        fields.insert("payload".into(), payload.value().into_owned());
    }
    Some(Destination {
        to,
        name: record_name(
            &format!("{}/{SHARD_ID}", trigger.name),
            outcome.now_ms,
            outcome.request_id,
        ),
        record,
        lineage,
    })
}

/// An asynchronous invocation's destination: its function's `on_success` when done,
/// `on_failure` when given up on, none while it is tried again.
fn asynchronous_destination<'a>(
    app: &App,
    function: &str,
    settlement: &Settlement,
    outcome: impl Fn(&'static str) -> Outcome<'a>,
    request: Option<&Payload>,
    lineage: Lineage,
) -> Option<Destination> {
    let destinations = &app
        .functions
        .iter()
        .find(|f| f.name.as_str() == function)?
        .destinations;
    let (to, condition) = match settlement {
        Settlement::Done => (destinations.on_success.clone()?, Condition::Success),
        Settlement::Dead {
            reason: DeadReason::EventAgeExceeded,
            ..
        } => (
            destinations.on_failure.clone()?,
            Condition::EventAgeExceeded,
        ),
        Settlement::Dead { .. } => (
            destinations.on_failure.clone()?,
            Condition::RetriesExhausted,
        ),
        Settlement::Retry { .. } | Settlement::Rebatch { .. } => return None,
    };
    let outcome = outcome(condition.as_str());
    let request = request.map(Payload::value);
    Some(Destination {
        to,
        name: record_name(
            &format!("async/{function}"),
            outcome.now_ms,
            outcome.request_id,
        ),
        record: invocation_record(&outcome, request.as_deref().unwrap_or(&Value::Null)),
        lineage,
    })
}

/// The journal event that invokes destination function `function` with its record.
pub(crate) fn event(function: &FunctionName, destination: &Destination) -> NewEvent {
    NewEvent {
        source: Source::Function(function.clone()),
        kind: EventKind::Invoke,
        key: uuid::Uuid::new_v4().to_string(),
        payload: destination.record.clone(),
        lineage: destination.lineage.clone(),
    }
}
