//! Destinations: where the outcome of a delivery goes once it is final. An asynchronous
//! invocation — an object trigger's delivery, an `Event` invoke, a schedule's run — goes to its
//! function's `on_success` or `on_failure` function with Lambda's invocation record; a table
//! trigger's delivery that is given up on goes to the trigger's `on_failure` function with the
//! stream's failure record (which names the record, as DynamoDB Streams' does, rather than
//! carrying it). Retries and dead letters are unchanged: a destination is in addition.
//!
//! The record is journaled as an asynchronous invocation of the destination function, in the
//! transaction that records the settlement (see `Inner::record`).

use eddy_core::{Event, EventKind, Lineage, NewEvent, Source};
use eddy_events::destination::{
    Condition, Outcome, StreamBatch, invocation_record, stream_failure_record,
};

use crate::deliveries::{DeadReason, Destination, Leased, Settlement};
use crate::schedule::Attempted;
use crate::{INVOKE_TRIGGER, Inner};

/// The destination `attempted`'s outcome goes to, if it is final and one is set.
pub(crate) fn of(
    inner: &Inner,
    d: &Leased,
    event: &Event,
    attempted: &Attempted,
    now_ms: i64,
) -> Option<Destination> {
    let compiled = inner.compiled();
    let app = &compiled.app;
    let outcome = |condition: &'static str| Outcome {
        request_id: &attempted.request_id,
        function: &d.function,
        condition,
        attempts: d.attempt,
        response: attempted.response.as_ref(),
        now_ms,
    };
    let lineage = Lineage::caused_by(event, attempted.request_id.clone());
    let trigger = app.trigger(&d.trigger);
    if let Some(t) = trigger
        && let Source::Table(table) = &t.source
    {
        let Settlement::Dead { reason, .. } = &attempted.settlement else {
            return None;
        };
        let condition = match reason {
            DeadReason::EventAgeExceeded => "RecordAgeExceeded",
            _ => "RetryAttemptsExhausted",
        };
        let label = compiled
            .stream_labels
            .get(table.as_str())
            .map_or("1970-01-01T00:00:00.000", String::as_str);
        let batch = StreamBatch {
            table: table.as_str(),
            stream_label: label,
            first_seq: event.seq,
            last_seq: event.seq,
            first_time_ms: event.time_ms,
            last_time_ms: event.time_ms,
            size: 1,
        };
        return Some(Destination {
            function: t.on_failure.clone()?,
            record: stream_failure_record(&outcome(condition), &batch),
            lineage,
        });
    }
    // Asynchronous invocations: object triggers, `Event` invokes, schedules.
    let asynchronous =
        trigger.is_some() || d.trigger == INVOKE_TRIGGER || d.trigger.starts_with("schedule/");
    if !asynchronous {
        return None;
    }
    let destinations = &app
        .functions
        .iter()
        .find(|f| f.name.as_str() == d.function)?
        .destinations;
    let (function, condition) = match &attempted.settlement {
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
        Settlement::Retry { .. } => return None,
    };
    let request = attempted.payload.clone().unwrap_or_default();
    Some(Destination {
        function,
        record: invocation_record(&outcome(condition.as_str()), &request),
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
