//! Running a prepared batch: one invocation, and what its answer makes of each record — done,
//! tried again (the reported failures and what follows them in their key), bisected, or given
//! up on — with the batch's invocation record and destination record.

use std::collections::{HashMap, HashSet};

use eddy_core::Lineage;
use eddy_events::destination::Response;
use serde_json::Value;

use super::prepare::{Member, Prepared};
use super::{Events, Turn, response};
use crate::deliveries::{BatchCandidate, DeadReason, DeliveryAttempt, Settle, Settlement};
use crate::schedule::next_step;
use crate::{FunctionError, Inner, backoff, destination, payload};

/// What a batch that did not start records: each record it would have carried back to ready,
/// not an attempt (its count goes back down, its half of a bisection kept), and those that
/// could not go as they were found.
pub(super) fn given_back(request_id: &str, prepared: Prepared) -> Vec<Settle> {
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
pub(super) async fn attempt(
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
            payload::record(event, trigger, trigger_name, label)
                .ok()
                .map(payload::Record::into_value)
        })
        .collect();
    let payload = eddy_events::envelope(records).into();
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
