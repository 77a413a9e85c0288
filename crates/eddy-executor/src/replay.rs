//! Replays: a range of the journal delivered again to one trigger — after a handler's bug is
//! fixed, or to a trigger added since. Each replay is recorded with an id; its deliveries carry
//! it (a delivery is one per event, trigger and replay), are retried and dead-lettered like any
//! other, keep each key's order among themselves (`per_key`), and do not wait behind, nor hold
//! back, the key's live deliveries. The handler sees the id as `eddyReplay` in its event.

use std::collections::HashMap;

use eddy_core::Event;

use crate::deliveries::Replay;
use crate::dispatch::{ReplayOf, plan};
use crate::{ExecError, Executor};

/// Where a replay starts or ends in the journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JournalPoint {
    /// A sequence number.
    Seq(u64),
    /// A moment (milliseconds since the Unix epoch): the events committed from then on (as a
    /// start), or until then (as an end).
    Time(i64),
}

/// Events read, and deliveries made, per transaction.
const PAGE: u32 = 500;

impl Executor {
    /// Delivers the journal's events from `from` to `to` (the newest now, without one) again
    /// to `trigger`: those it matches now, each once more.
    pub async fn replay(
        &self,
        trigger: &str,
        from: JournalPoint,
        to: Option<JournalPoint>,
    ) -> Result<Replay, ExecError> {
        let inner = &self.inner;
        let compiled = inner.compiled();
        let spec = compiled
            .app
            .trigger(trigger)
            .ok_or_else(|| ExecError::NoSuchTrigger(trigger.to_string()))?;
        if !spec.enabled {
            return Err(ExecError::InvalidReplay(format!(
                "trigger `{trigger}` is disabled; enable it to replay to it"
            )));
        }
        let newest = inner.bus.last_seq();
        let from_seq = match from {
            JournalPoint::Seq(seq) => seq.max(1),
            JournalPoint::Time(ms) => inner
                .bus
                .first_seq_at_or_after(ms)
                .await?
                .unwrap_or(newest + 1),
        };
        let to_seq = match to {
            None => newest,
            Some(JournalPoint::Seq(seq)) => seq.min(newest),
            Some(JournalPoint::Time(ms)) => inner.bus.last_seq_at_or_before(ms).await?.unwrap_or(0),
        };
        if let (JournalPoint::Seq(a), Some(JournalPoint::Seq(b))) = (from, to)
            && a > b
        {
            return Err(ExecError::InvalidReplay(format!(
                "the range starts at {a}, after its end {b}"
            )));
        }
        let input = (
            inner.store.clone(),
            trigger.to_string(),
            from_seq,
            to_seq,
            inner.clock.now_ms(),
        );
        let id = inner
            .bus
            .write(input, |tx, (store, trigger, from, to, now)| {
                Box::pin(store.record_replay(tx, trigger, *from, *to, *now))
            })
            .await?;
        let of = ReplayOf { trigger, id };
        let mut events = 0u64;
        let mut after = from_seq - 1;
        while after < to_seq {
            let page: Vec<Event> = inner
                .bus
                .read_after(after, PAGE)
                .await?
                .into_iter()
                .filter(|e| e.seq <= to_seq)
                .collect();
            let Some(last) = page.last() else { break };
            after = last.seq;
            let deliveries = plan(inner, &page, HashMap::new(), Some(&of));
            events += deliveries.len() as u64;
            let input = (
                inner.store.clone(),
                inner.config.node.clone(),
                deliveries,
                inner.clock.now_ms(),
            );
            inner
                .bus
                .write(input, |tx, (store, node, rows, now)| {
                    Box::pin(store.create(tx, node, rows, *now))
                })
                .await?;
            // The scheduler takes them as they come, within the function's concurrency.
            inner.wake.notify_one();
        }
        inner
            .bus
            .write(
                (inner.store.clone(), id, events),
                |tx, (store, id, events)| Box::pin(store.finish_replay(tx, *id, *events)),
            )
            .await?;
        tracing::info!(
            replay = id,
            trigger,
            from_seq,
            to_seq,
            events,
            "replay made"
        );
        Ok(Replay {
            id,
            trigger: trigger.to_string(),
            from_seq,
            to_seq,
            events,
        })
    }

    /// Every delivery of the event `event_seq`, originals and replays.
    pub async fn deliveries_of(
        &self,
        event_seq: u64,
    ) -> Result<Vec<crate::DeliveryState>, ExecError> {
        self.inner
            .store
            .deliveries_of(&mut self.inner.bus.readers(), event_seq)
            .await
    }
}
