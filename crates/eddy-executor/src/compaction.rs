//! Journal retention: with `journal: {retain: 7d}`, the leading node removes, every minute
//! (a changed retention applies from the next minute), the events older than that — but never
//! one that something still needs: an event whose delivery waits or runs, one an unfinished
//! replay has yet to look at, one the dispatcher has not read, nor any event after those (the
//! journal stays a gap-free run of sequence numbers from its first kept event), nor the newest
//! event (the next sequence number follows it). The `compacted` cursor records the last event
//! removed, so a replay that asks for what is gone is refused with what is left.

use std::sync::Arc;

use crate::{ExecError, Inner, dispatch};

/// The cursor that records the last event removed.
pub(crate) const COMPACTED: &str = "compacted";
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
                Ok(0) => {}
                Ok(removed) => {
                    tracing::info!(removed, "journal events past their retention removed")
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

/// Removes the events committed before `cutoff_ms` that nothing needs; returns how many.
pub(crate) async fn compact(inner: &Inner, cutoff_ms: i64) -> Result<u64, ExecError> {
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
                let compacted = tx.cursor(COMPACTED).await?.unwrap_or(0);
                if keep <= compacted + 1 {
                    return Ok(0);
                }
                let removed = tx.compact_journal(keep).await?;
                tx.set_cursor(COMPACTED, keep - 1).await?;
                Ok::<_, ExecError>(removed)
            })
        })
        .await
}
