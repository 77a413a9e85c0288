//! Journal retention: with `journal: {retain: 7d}`, the leading node removes, every minute
//! (a changed retention applies from the next minute), the events older than that — but never
//! one that something still needs: an event whose delivery waits or runs, one an unfinished
//! replay has yet to look at, one the dispatcher has not read, nor any event after those (the
//! journal stays a gap-free run of sequence numbers from its first kept event), nor the newest
//! event (the next sequence number follows it). The `compacted` cursor records the last event
//! removed, so a replay that asks for what is gone is refused with what is left. The done
//! deliveries of removed events go with them (a delivery row per event and trigger would
//! otherwise grow without end); dead ones stay as dead letters. The logs and answers of
//! invocations that started before the retention go too (as a log group's retention removes
//! Lambda's logs); their records, and so usage, stay.

use std::sync::Arc;

use crate::{ExecError, Inner, dispatch};

/// The cursor that records the last event removed.
pub(crate) const COMPACTED: &str = "compacted";
/// The cursor that records the last event whose done deliveries were removed (behind
/// [`COMPACTED`] only in a database compacted before deliveries were).
const DELIVERIES_REMOVED: &str = "compacted_deliveries";
/// The cursor that records the time (in ms) before which invocations' logs were removed. An
/// invocation is recorded when it ends, at most its timeout (15 minutes) after it started, and
/// the retention is at least an hour: a range is cleared once, after all of it was recorded.
const LOGS_CLEARED: &str = "compacted_logs_before_ms";
/// How often the leading node compacts.
const EVERY_MS: i64 = 60_000;

pub(crate) async fn compactor(inner: Arc<Inner>) {
    let mut stop = inner.stop.subscribe();
    let mut leading = inner.bus.leading();
    loop {
        // A minute from this pass's start, however long it takes: a pass that ran long is
        // followed at once by the next.
        let next = inner.clock.now_ms() + EVERY_MS;
        let retain = inner.compiled().app.journal.retain_ms;
        if let Some(retain) = retain
            && *leading.borrow_and_update()
        {
            let cutoff = inner.clock.now_ms() - retain as i64;
            match compact(&inner, cutoff).await {
                Ok(Compacted {
                    events: 0,
                    deliveries: 0,
                    logs: 0,
                }) => {}
                Ok(Compacted {
                    events,
                    deliveries,
                    logs,
                }) => {
                    tracing::info!(
                        events,
                        deliveries,
                        logs,
                        "journal events past their retention removed, with their done deliveries and the logs of invocations as old"
                    )
                }
                Err(error) => {
                    tracing::error!(%error, "cannot compact the journal; trying again later")
                }
            }
        }
        tokio::select! {
            _ = inner.clock.sleep_until(next) => {}
            _ = crate::lead_changes(&mut leading) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// What a compaction removed.
#[derive(Debug, Default)]
pub(crate) struct Compacted {
    pub events: u64,
    pub deliveries: u64,
    /// Invocation records whose log and answer were removed.
    pub logs: u64,
}

/// Removes the events committed before `cutoff_ms` that nothing needs, the done deliveries of
/// removed events, and the logs of invocations started before `cutoff_ms`; says how many of
/// each. The work goes in steps of at most `compaction_step` events (and about as many logs),
/// each its own transaction: the writer is everyone's, and a backlog — a retention set on a
/// full database, or a busy minute — is not removed while every write waits.
pub(crate) async fn compact(inner: &Inner, cutoff_ms: i64) -> Result<Compacted, ExecError> {
    let step = inner.config.compaction_step.max(1);
    let mut total = Compacted::default();
    let stopping = || *inner.stop.borrow();
    loop {
        let (events, deliveries, more) = remove_events(inner, cutoff_ms, step).await?;
        total.events += events;
        total.deliveries += deliveries;
        if !more || stopping() {
            break;
        }
    }
    // The window of start times one step clears adapts to how many records it found.
    let mut window_ms: i64 = 60_000;
    loop {
        let (logs, more) = clear_logs(inner, cutoff_ms, window_ms).await?;
        total.logs += logs;
        if !more || stopping() {
            break;
        }
        // A quiet stretch (the first compaction starts from the epoch) is crossed in a few
        // doublings.
        if logs > step {
            window_ms = (window_ms / 2).max(1_000);
        } else if logs <= step / 2 {
            window_ms = window_ms.saturating_mul(2);
        }
    }
    Ok(total)
}

/// One step of removing events (at most `step`) with the done deliveries of removed events:
/// how many of each, and whether more are left.
async fn remove_events(
    inner: &Inner,
    cutoff_ms: i64,
    step: u64,
) -> Result<(u64, u64, bool), ExecError> {
    inner
        .bus
        .write(
            (inner.store.clone(), cutoff_ms, step),
            |tx, (store, cutoff, step)| {
                Box::pin(async move {
                    // Read in the writing transaction: nothing can start needing an event between
                    // the reads and the removal.
                    // Without a newer event, every event is past its retention.
                    let mut keep = tx.first_seq_at_or_after(*cutoff).await?.unwrap_or(u64::MAX);
                    if let Some(needed) = store.oldest_needed_event(tx).await? {
                        keep = keep.min(needed);
                    }
                    let read = tx.cursor(dispatch::CURSOR).await?.unwrap_or(0);
                    keep = keep.min(read + 1);
                    // The newest event always stays: sequence numbers continue from it.
                    keep = keep.min(tx.last_seq().await?);
                    let mut compacted = tx.cursor(COMPACTED).await?.unwrap_or(0);
                    let mut more = false;
                    let mut events = 0;
                    if keep > compacted + 1 {
                        let stop_at = keep.min(compacted + 1 + *step);
                        more = stop_at < keep;
                        events = tx.compact_journal(stop_at).await?;
                        compacted = stop_at - 1;
                        tx.set_cursor(COMPACTED, compacted).await?;
                    }
                    // Every delivery of a removed event is settled (those that wait or run keep
                    // their events), and none is made for one again.
                    let cleared = tx.cursor(DELIVERIES_REMOVED).await?.unwrap_or(0);
                    let mut deliveries = 0;
                    if compacted > cleared {
                        let through = compacted.min(cleared + *step);
                        more |= through < compacted;
                        deliveries = store.remove_done(tx, cleared, through).await?;
                        tx.set_cursor(DELIVERIES_REMOVED, through).await?;
                    }
                    Ok::<_, ExecError>((events, deliveries, more))
                })
            },
        )
        .await
}

/// One step of removing the logs of invocations started before `cutoff_ms`: those of the
/// `window_ms` after the last step's; how many, and whether more are left.
async fn clear_logs(
    inner: &Inner,
    cutoff_ms: i64,
    window_ms: i64,
) -> Result<(u64, bool), ExecError> {
    inner
        .bus
        .write(
            (inner.store.clone(), cutoff_ms, window_ms),
            |tx, (store, cutoff, window)| {
                Box::pin(async move {
                    let Ok(cutoff) = u64::try_from(*cutoff) else {
                        return Ok((0, false));
                    };
                    let from = tx.cursor(LOGS_CLEARED).await?.unwrap_or(0);
                    if from >= cutoff {
                        return Ok((0, false));
                    }
                    let before = cutoff.min(from.saturating_add(*window as u64));
                    let logs = store.clear_logs(tx, from as i64, before as i64).await?;
                    tx.set_cursor(LOGS_CLEARED, before).await?;
                    Ok::<_, ExecError>((logs, before < cutoff))
                })
            },
        )
        .await
}
