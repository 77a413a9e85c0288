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
//! Lambda's logs); once they also started more than a day ago (per-minute activity reaches back
//! a day), their records are summed into daily usage and removed (as Lambda's metrics outlive
//! its logs) — but for those a kept delivery is explained by (a dead letter's attempts, those of
//! a delivery whose event is still kept), which are summed when their delivery goes. Usage
//! stays whole, and the records stay bounded by what a retention's (or a day's) traffic leaves.

use std::sync::Arc;

use crate::{ExecError, Inner, RemovedDone, dispatch};

/// The cursor that records the last event removed.
pub(crate) const COMPACTED: &str = "compacted";
/// The cursor that records the last event whose done deliveries were removed (behind
/// [`COMPACTED`] only in a database compacted before deliveries were).
const DELIVERIES_REMOVED: &str = "compacted_deliveries";
/// The cursor that records the time (in ms) before which invocations' logs were removed. An
/// invocation is recorded when it ends, at most its timeout (15 minutes) after it started, and
/// the retention is at least an hour: a range is cleared once, after all of it was recorded.
const LOGS_CLEARED: &str = "compacted_logs_before_ms";
/// The cursor that records the time (in ms) before which invocations were summed into daily
/// usage (all but those a kept delivery is explained by).
const USAGE_SUMMED: &str = "usage_summed_before_ms";
/// Records are kept at least this long, whatever the retention: per-minute activity
/// (`GET /_eddy/v1/activity`, the console's charts) reaches back a day and is counted from them.
const RECORDS_KEPT_MS: i64 = 86_400_000;
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
                Ok(compacted) if compacted == Compacted::default() => {}
                Ok(Compacted {
                    events,
                    deliveries,
                    records,
                    logs,
                }) => {
                    tracing::info!(
                        events,
                        deliveries,
                        records,
                        logs,
                        "journal events past their retention removed, with their done deliveries; the logs of invocations as old removed, and the records of those older than a day summed into daily usage"
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
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Compacted {
    pub events: u64,
    pub deliveries: u64,
    /// Invocation records summed into their day's usage and removed.
    pub records: u64,
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
        let (events, removed, more) = remove_events(inner, cutoff_ms, step).await?;
        total.events += events;
        total.deliveries += removed.deliveries;
        total.records += removed.summed;
        if !more || stopping() {
            break;
        }
    }
    let summed_cutoff_ms = cutoff_ms.min(inner.clock.now_ms() - RECORDS_KEPT_MS);
    for pass in [InvocationPass::ClearLogs, InvocationPass::SumUsage] {
        if stopping() {
            break;
        }
        let cutoff = match pass {
            InvocationPass::ClearLogs => cutoff_ms,
            InvocationPass::SumUsage => summed_cutoff_ms,
        };
        // The window of start times one step takes adapts to how many records it found.
        let mut window_ms: i64 = 60_000;
        loop {
            let (records, more) = invocations_step(inner, pass, cutoff, window_ms).await?;
            match pass {
                InvocationPass::ClearLogs => total.logs += records,
                InvocationPass::SumUsage => total.records += records,
            }
            if !more || stopping() {
                break;
            }
            // A quiet stretch (the first compaction starts from the epoch) is crossed in a few
            // doublings.
            if records > step {
                window_ms = (window_ms / 2).max(1_000);
            } else if records <= step / 2 {
                window_ms = window_ms.saturating_mul(2);
            }
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
) -> Result<(u64, RemovedDone, bool), ExecError> {
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
                    let mut removed = RemovedDone::default();
                    if compacted > cleared {
                        let through = compacted.min(cleared + *step);
                        more |= through < compacted;
                        // With their invocations that summing passed over while they were kept.
                        let summed_before = tx.cursor(USAGE_SUMMED).await?.unwrap_or(0);
                        removed = store
                            .remove_done(tx, cleared, through, summed_before as i64)
                            .await?;
                        tx.set_cursor(DELIVERIES_REMOVED, through).await?;
                    }
                    Ok::<_, ExecError>((events, removed, more))
                })
            },
        )
        .await
}

/// What a step over old invocations does.
#[derive(Clone, Copy)]
enum InvocationPass {
    /// Removes their logs and answers (past the retention).
    ClearLogs,
    /// Sums them into daily usage and removes their records (past the retention and a day).
    SumUsage,
}

/// One step of a pass over the invocations started before `cutoff_ms`: those of the
/// `window_ms` after the last step's; how many records it changed, and whether more are left.
async fn invocations_step(
    inner: &Inner,
    pass: InvocationPass,
    cutoff_ms: i64,
    window_ms: i64,
) -> Result<(u64, bool), ExecError> {
    inner
        .bus
        .write(
            (inner.store.clone(), pass, cutoff_ms, window_ms),
            |tx, (store, pass, cutoff, window)| {
                Box::pin(async move {
                    let Ok(cutoff) = u64::try_from(*cutoff) else {
                        return Ok((0, false));
                    };
                    let cursor = match pass {
                        InvocationPass::ClearLogs => LOGS_CLEARED,
                        InvocationPass::SumUsage => USAGE_SUMMED,
                    };
                    let from = tx.cursor(cursor).await?.unwrap_or(0);
                    if from >= cutoff {
                        return Ok((0, false));
                    }
                    let before = cutoff.min(from.saturating_add(*window as u64));
                    let (from_ms, before_ms) = (from as i64, before as i64);
                    let records = match pass {
                        InvocationPass::ClearLogs => {
                            store.clear_logs(tx, from_ms, before_ms).await?
                        }
                        InvocationPass::SumUsage => store.sum_usage(tx, from_ms, before_ms).await?,
                    };
                    tx.set_cursor(cursor, before).await?;
                    Ok::<_, ExecError>((records, before < cutoff))
                })
            },
        )
        .await
}
