//! Destinations: where the outcome of a delivery goes once it is final. An asynchronous
//! invocation — an object trigger's delivery, an `Event` invoke, a schedule's run — goes to its
//! function's `on_success` or `on_failure` function with Lambda's invocation record; a table
//! trigger's delivery that is given up on goes to the trigger's `on_failure` function with the
//! stream's failure record (which names the record, as DynamoDB Streams' does, rather than
//! carrying it). Retries and dead letters are unchanged: a destination is in addition.
//!
//! The record is journaled as an asynchronous invocation of the destination function, in the
//! transaction that records the settlement (see `Inner::record`).

use std::collections::HashMap;
use std::sync::Arc;

use eddy_core::{Event, EventKind, Lineage, NewEvent, Source};
use eddy_events::destination::{
    Condition, Outcome, Response, StreamBatch, invocation_record, stream_failure_record,
};
use eddy_subscriptions::{App, FunctionSpec, TriggerSpec};
use serde_json::Value;

use crate::deliveries::{BatchCandidate, DeadReason, Destination, Leased, Settlement};
use crate::schedule::Attempted;
use crate::{Compiled, INVOKE_TRIGGER, Inner, payload};

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
        let range = ((event.seq, event.time_ms), (event.seq, event.time_ms));
        return stream_failure(
            &compiled,
            t,
            table.as_str(),
            &outcome(condition_of(*reason)),
            range,
            1,
            lineage,
        );
    }
    // Asynchronous invocations: object triggers, `Event` invokes, schedules.
    let asynchronous =
        trigger.is_some() || d.trigger == INVOKE_TRIGGER || d.trigger.starts_with("schedule/");
    if !asynchronous {
        return None;
    }
    let request = attempted.payload.clone().unwrap_or_default();
    asynchronous_destination(
        &compiled.app,
        &d.function,
        &attempted.settlement,
        outcome,
        &request,
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
    payload: &Value,
    response: &Response,
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
        response: Some(response),
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
        let range = (at(first), at(last));
        let size = dead.len() as u64;
        let condition = outcome(condition_of(reason));
        let destination = stream_failure(
            &compiled,
            trigger,
            table.as_str(),
            &condition,
            range,
            size,
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
        payload,
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

/// A table trigger's on-failure record for the records from `first` to `last` (sequence
/// number and time each), `size` of them.
fn stream_failure(
    compiled: &Compiled,
    trigger: &TriggerSpec,
    table: &str,
    outcome: &Outcome,
    ((first_seq, first_time_ms), (last_seq, last_time_ms)): ((u64, i64), (u64, i64)),
    size: u64,
    lineage: Lineage,
) -> Option<Destination> {
    let stream_label = compiled
        .stream_label(&trigger.source)
        .unwrap_or(payload::DEFAULT_STREAM_LABEL);
    let batch = StreamBatch {
        table,
        stream_label,
        first_seq,
        last_seq,
        first_time_ms,
        last_time_ms,
        size,
    };
    Some(Destination {
        function: trigger.on_failure.clone()?,
        record: stream_failure_record(outcome, &batch),
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
    request: &Value,
    lineage: Lineage,
) -> Option<Destination> {
    let destinations = &app
        .functions
        .iter()
        .find(|f| f.name.as_str() == function)?
        .destinations;
    let (function, condition) = match settlement {
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
    Some(Destination {
        function,
        record: invocation_record(&outcome(condition.as_str()), request),
        lineage,
    })
}

/// The journal event that invokes a destination's function with its record.
pub(crate) fn event(destination: &Destination) -> NewEvent {
    NewEvent {
        source: Source::Function(destination.function.clone()),
        kind: EventKind::Invoke,
        key: uuid::Uuid::new_v4().to_string(),
        payload: destination.record.clone(),
        lineage: destination.lineage.clone(),
    }
}
