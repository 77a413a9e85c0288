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
        let next = inner.clock.now_ms() + EVERY_MS;
        tokio::select! {
            _ = inner.clock.sleep_until(next) => {}
            _ = crate::lead_changes(&mut leading) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// What one compaction removed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Compacted {
    pub events: u64,
    pub deliveries: u64,
    /// Invocation records whose log and answer were removed.
    pub logs: u64,
}

/// Removes the events committed before `cutoff_ms` that nothing needs, the done deliveries of
/// removed events, and the logs of invocations started before `cutoff_ms`; says how many of
/// each.
pub(crate) async fn compact(inner: &Inner, cutoff_ms: i64) -> Result<Compacted, ExecError> {
    inner
        .bus
        .write((inner.store.clone(), cutoff_ms), |tx, (store, cutoff)| {
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
                let mut events = 0;
                if keep > compacted + 1 {
                    events = tx.compact_journal(keep).await?;
                    compacted = keep - 1;
                    tx.set_cursor(COMPACTED, compacted).await?;
                }
                // Every delivery of a removed event is settled (those that wait or run keep
                // their events), and none is made for one again.
                let cleared = tx.cursor(DELIVERIES_REMOVED).await?.unwrap_or(0);
                let mut deliveries = 0;
                if compacted > cleared {
                    deliveries = store.remove_done(tx, cleared, compacted).await?;
                    tx.set_cursor(DELIVERIES_REMOVED, compacted).await?;
                }
                let cleared_before = tx.cursor(LOGS_CLEARED).await?.unwrap_or(0);
                let mut logs = 0;
                if let Ok(before) = u64::try_from(*cutoff)
                    && before > cleared_before
                {
                    logs = store.clear_logs(tx, cleared_before as i64, *cutoff).await?;
                    tx.set_cursor(LOGS_CLEARED, before).await?;
                }
                Ok::<_, ExecError>(Compacted {
                    events,
                    deliveries,
                    logs,
                })
            })
        })
        .await
}
