//! Replays: a range of the journal delivered again to one trigger — after a handler's bug is
//! fixed, or to a trigger added since. Each replay is recorded with an id; its deliveries carry
//! it (a delivery is one per event, trigger and replay), are retried and dead-lettered like any
//! other, keep each key's order among themselves (`per_key`), and do not wait behind, nor hold
//! back, the key's live deliveries. The handler sees the id as `eddyReplay` in its event.
//!
//! A replay's deliveries are made a page at a time by the leading node's replayer, only while
//! fewer than [`backlog_limit`] of them wait or run: events that arrive meanwhile get their
//! deliveries (due before the next page's, so claimed first) between the pages, and a large
//! replay does not starve live traffic. Each page's deliveries commit with the replay's
//! progress (a compare-and-set on `next_seq`), so a page is made once whoever leads, and a
//! replay carries on after a restart.

use std::collections::HashMap;
use std::sync::Arc;

use eddy_core::Event;

use crate::deliveries::Replay;
use crate::dispatch::{ReplayOf, plan};
use crate::{ExecError, Executor, Inner};

/// Where a replay starts or ends in the journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JournalPoint {
    /// A sequence number.
    Seq(u64),
    /// A moment (milliseconds since the Unix epoch): the events committed from then on (as a
    /// start), or until then (as an end).
    Time(i64),
}

/// Events read at once.
const PAGE: u32 = 500;
/// Reads for one page at most (a range the trigger seldom matches is gone through in steps).
const READS_PER_PAGE: usize = 20;
/// How long the replayer waits at most before looking again (the safety net under the
/// wake-ups from recorded attempts and new replays).
const LOOK_AGAIN_MS: i64 = 1_000;

impl Executor {
    /// Records a replay of the journal's events from `from` to `to` (the newest now, without
    /// one) to `trigger`: those it matches, each once more. Its deliveries are made from now on,
    /// as the trigger's function has room ([`Executor::replays`] shows how far it got).
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
        if let (JournalPoint::Seq(a), Some(JournalPoint::Seq(b))) = (from, to)
            && a > b
        {
            return Err(ExecError::InvalidReplay(format!(
                "the range starts at {a}, after its end {b}"
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
        let compacted = inner
            .bus
            .cursor(crate::compaction::COMPACTED)
            .await?
            .unwrap_or(0);
        let retain_ms = compiled.app.journal.retain_ms;
        let asks_removed = match from {
            JournalPoint::Seq(_) => from_seq <= compacted,
            // A time before the retention asks for events that may have been removed.
            JournalPoint::Time(ms) => {
                compacted > 0 && retain_ms.is_some_and(|r| ms < inner.clock.now_ms() - r as i64)
            }
        };
        if asks_removed {
            let retain = retain_ms.map_or(String::new(), |ms| {
                format!(" (the journal keeps {}s)", ms / 1000)
            });
            return Err(ExecError::InvalidReplay(format!(
                "events up to {compacted} were removed by the journal's retention{retain}; the oldest kept is {}",
                compacted + 1
            )));
        }
        let to_seq = match to {
            None => newest,
            Some(JournalPoint::Seq(seq)) => seq.min(newest),
            Some(JournalPoint::Time(ms)) => inner.bus.last_seq_at_or_before(ms).await?.unwrap_or(0),
        };
        self.record_replay(trigger, (from_seq, to_seq), None).await
    }

    /// Records the replay of a backfill: the events from `from_seq` to `to_seq` that carry
    /// its `mark` (those it journaled for the objects or rows that exist), to `trigger`.
    pub async fn replay_backfill(
        &self,
        trigger: &str,
        (from_seq, to_seq): (u64, u64),
        mark: &str,
    ) -> Result<Replay, ExecError> {
        self.record_replay(trigger, (from_seq, to_seq), Some(mark))
            .await
    }

    async fn record_replay(
        &self,
        trigger: &str,
        (from_seq, to_seq): (u64, u64),
        backfill: Option<&str>,
    ) -> Result<Replay, ExecError> {
        let inner = &self.inner;
        let now = inner.clock.now_ms();
        let input = (
            inner.store.clone(),
            trigger.to_string(),
            (from_seq, to_seq),
            backfill.map(str::to_string),
            now,
        );
        let id = inner
            .bus
            .write(input, |tx, (store, trigger, range, backfill, now)| {
                Box::pin(store.record_replay(tx, trigger, *range, backfill.as_deref(), *now))
            })
            .await?;
        tracing::info!(
            replay = id,
            trigger,
            from_seq,
            to_seq,
            backfill,
            "replay recorded"
        );
        inner.replays_changed.notify_one();
        Ok(Replay {
            id,
            trigger: trigger.to_string(),
            from_seq,
            to_seq,
            next_seq: from_seq,
            events: 0,
            created_ms: now,
            finished_ms: None,
            backfill: backfill.map(str::to_string),
        })
    }

    /// Every replay, newest first, with how far it got.
    pub async fn replays(&self) -> Result<Vec<Replay>, ExecError> {
        self.inner
            .store
            .replays(&mut self.inner.bus.readers(), false)
            .await
    }
}

/// How many of a replay's deliveries may wait or run at once: twice its function's
/// concurrency, and at least 16.
fn backlog_limit(inner: &Inner, trigger: &str) -> u64 {
    let compiled = inner.compiled();
    let concurrency = compiled
        .app
        .trigger(trigger)
        .and_then(|t| compiled.app.function(&t.function))
        .map_or(1, |f| f.concurrency);
    u64::from(concurrency * 2).max(16)
}

/// The replayer: on the leading node, makes the unfinished replays' deliveries a page at a
/// time as their backlogs drain.
pub(crate) async fn replayer(inner: Arc<Inner>) {
    let mut stop = inner.stop.subscribe();
    let mut leading = inner.bus.leading();
    let mut recorded = inner.recorded.subscribe();
    loop {
        let busy = if *leading.borrow_and_update() {
            match make_pages(&inner).await {
                Ok(busy) => busy,
                Err(error) => {
                    tracing::error!(%error, "the replayer cannot make deliveries; trying again");
                    false
                }
            }
        } else {
            false
        };
        let look_again = inner.clock.now_ms() + LOOK_AGAIN_MS;
        tokio::select! {
            // A recorded attempt may have drained a backlog.
            _ = recorded.changed(), if busy => {}
            _ = inner.replays_changed.notified() => {}
            _ = inner.clock.sleep_until(look_again) => {}
            _ = crate::lead_changes(&mut leading) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Makes a page for each unfinished replay with room in its backlog; `true` while some replay
/// is unfinished.
async fn make_pages(inner: &Inner) -> Result<bool, ExecError> {
    let unfinished = inner.store.replays(&mut inner.bus.readers(), true).await?;
    for replay in &unfinished {
        let backlog = inner
            .store
            .replay_backlog(&mut inner.bus.readers(), replay.id)
            .await?;
        let room = backlog_limit(inner, &replay.trigger).saturating_sub(backlog);
        if room > 0 {
            make_page(inner, replay, room).await?;
        }
    }
    Ok(!unfinished.is_empty())
}

/// Makes up to `room` of `replay`'s next deliveries, with its progress, in one transaction.
async fn make_page(inner: &Inner, replay: &Replay, room: u64) -> Result<(), ExecError> {
    let of = ReplayOf {
        trigger: &replay.trigger,
        id: replay.id,
        backfill: replay.backfill.as_deref(),
    };
    let mut deliveries = Vec::new();
    let mut next = replay.next_seq;
    // Read on until the page is full, the range is done, or enough was read for one page.
    let mut reads = 0;
    while next <= replay.to_seq && (deliveries.len() as u64) < room && reads < READS_PER_PAGE {
        reads += 1;
        let events: Vec<Event> = inner
            .bus
            .read_after(next - 1, PAGE)
            .await?
            .into_iter()
            .filter(|e| e.seq <= replay.to_seq)
            .collect();
        let Some(last) = events.last() else {
            next = replay.to_seq + 1;
            break;
        };
        next = last.seq + 1;
        // One trigger: at most one delivery per event, in the events' order.
        let made = plan(inner, &events, HashMap::new(), Some(&of));
        let left = (room as usize).saturating_sub(deliveries.len());
        if made.len() > left {
            // The page is full: the first event left out is where the next page starts.
            next = made[left].event_seq;
            deliveries.extend(made.into_iter().take(left));
            break;
        }
        deliveries.extend(made);
    }
    let now = inner.clock.now_ms();
    let finished = (next > replay.to_seq).then_some(now);
    let made = deliveries.len() as u64;
    let input = (
        inner.store.clone(),
        inner.config.node.clone(),
        deliveries,
        (replay.id, replay.next_seq, next, finished, now),
    );
    let advanced = inner
        .bus
        .write(
            input,
            |tx, (store, node, rows, (id, from, to, finished, now))| {
                Box::pin(async move {
                    if !store
                        .advance_replay(tx, *id, *from, *to, rows.len() as u64, *finished)
                        .await?
                    {
                        return Ok(false);
                    }
                    store.create(tx, node, rows, *now).await?;
                    Ok::<_, ExecError>(true)
                })
            },
        )
        .await?;
    if advanced {
        if finished.is_some() {
            tracing::info!(
                replay = replay.id,
                trigger = replay.trigger,
                events = replay.events + made,
                "replay's deliveries all made"
            );
        }
        inner.wake.notify_one();
    }
    Ok(())
}
