//! Making a leased batch ready to run: its events decoded, each record built (or given up on
//! with why: gone from the journal, too old, past the payload's room) and the invocation's
//! event made — off the writer, while the lease commits, or as the batch starts.

use std::collections::HashMap;
use std::sync::Arc;

use eddy_bus::EventRows;
use eddy_core::Event;
use eddy_subscriptions::Runtime;
use tokio::sync::oneshot;

use super::event::{BatchEvent, RecordsOf};
use super::{Events, LeasedBatch, Leases, Ready};
use crate::Inner;
use crate::deliveries::{BatchCandidate, DeadReason, Settlement};
use crate::runtime::Payload;
use crate::schedule::too_old;

/// The largest event a batch is given, as Lambda's 6 MB synchronous payload: the records
/// after the one that would pass it wait for the next batch.
const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

/// Events by sequence number.
pub(super) fn by_seq(events: Vec<Event>) -> HashMap<u64, Arc<Event>> {
    events.into_iter().map(|e| (e.seq, Arc::new(e))).collect()
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
pub(super) struct Member {
    pub(super) candidate: BatchCandidate,
    pub(super) settlement: Settlement,
    /// Whether the invocation carried it (not one left out before it ran).
    pub(super) carried: bool,
}

impl Member {
    pub(super) fn left_out(candidate: BatchCandidate, settlement: Settlement) -> Self {
        Self {
            candidate,
            settlement,
            carried: false,
        }
    }

    pub(super) fn carried(candidate: BatchCandidate, settlement: Settlement) -> Self {
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
    pub(super) function: Option<eddy_subscriptions::FunctionSpec>,
    pub(super) events: Events,
    pub(super) now_ms: i64,
    pub(super) finished: Vec<Member>,
    pub(super) live: Vec<(BatchCandidate, Arc<Event>)>,
    pub(super) payload: Option<Payload>,
}

/// Makes a leased batch ready: each record built, or given up on with why (gone from the
/// journal, too old, past the payload's room), and the invocation's event.
pub(super) fn prepare(inner: &Inner, members: Vec<BatchCandidate>, events: Events) -> Prepared {
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
    let in_process = prepared
        .function
        .as_ref()
        .is_some_and(|f| f.runtime == Runtime::InProcess);
    let mut batch = BatchEvent::new(!in_process);
    let of = RecordsOf {
        trigger,
        trigger_name: &trigger_name,
    };
    let mut size = 0;
    // A record that cannot go is given up on with why.
    let check = |d: &crate::Leased| -> Result<&Arc<Event>, Settlement> {
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
        Ok(event)
    };
    for candidate in members {
        let added = check(&candidate.delivery).and_then(|event| {
            batch
                .push(&of, event, compiled.stream_label(&event.source))
                .map(|bytes| (event, bytes))
                .map_err(|e| dead(DeadReason::RetriesExhausted, e.to_string()))
        });
        let (event, bytes) = match added {
            Ok(added) => added,
            Err(settlement) => {
                prepared
                    .finished
                    .push(Member::left_out(candidate, settlement));
                continue;
            }
        };
        if !prepared.live.is_empty() && size + bytes > MAX_PAYLOAD {
            batch.pop();
            let rebatch = Settlement::Rebatch {
                part: None,
                error: None,
            };
            prepared.finished.push(Member::left_out(candidate, rebatch));
            continue;
        }
        size += bytes;
        prepared.live.push((candidate, event.clone()));
    }
    if let Some((first, _)) = prepared.live.first() {
        let backfill = prepared.live.iter().any(|(_, e)| e.backfill().is_some());
        prepared.payload = Some(batch.finish(first.delivery.replay, backfill));
    }
    prepared
}

/// A batch that waited for its turn, its records given up on if they grew too old meanwhile
/// (as they would have been, had they waited unleased).
pub(super) fn aged(inner: &Inner, prepared: Prepared) -> Prepared {
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
