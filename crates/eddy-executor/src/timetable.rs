//! The timetable: runs the app's schedules at their times. A run is an event in the journal
//! (delivered like any other, with the schedule's retry policy), appended in the transaction
//! that moves the schedule's last run on from the one this node read: each run is journaled
//! once, whichever nodes lead and however often they restart.
//!
//! Only the node that leads keeps the timetable. Runs that came due while no node kept it are
//! *missed*: the latest of them runs once when a node takes the lead again (`missed:
//! run_once`), or none does (`missed: skip`). A schedule the timetable has not seen before
//! starts from the moment it is first seen: declaring one never runs its past.

use std::sync::Arc;

use eddy_core::{EventKind, Lineage, NewEvent, Source};
use eddy_subscriptions::{Missed, ScheduleSpec};

use crate::{ExecError, Inner};

/// How far the timetable looks for the latest missed run of a schedule (a run a minute
/// missed for a week is 10,080 steps).
const MISSED_LOOKUP: usize = 1_000_000;
/// How long the timetable sleeps when no schedule has a next run.
const IDLE_MS: i64 = 60_000;
/// How long it waits after the database failed it.
const RETRY_MS: i64 = 1_000;

pub(crate) async fn timetable(inner: Arc<Inner>) {
    let mut stop = inner.stop.subscribe();
    let mut leading = inner.bus.leading();
    loop {
        while !*leading.borrow_and_update() {
            tokio::select! {
                _ = crate::lead_changes(&mut leading) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
        // Runs due before now came while no node kept the timetable.
        let since = inner.clock.now_ms();
        while *leading.borrow_and_update() {
            let now = inner.clock.now_ms();
            let wake_at = match run_due(&inner, since, now).await {
                Ok(next) => next.unwrap_or(now + IDLE_MS),
                Err(error) => {
                    tracing::error!(%error, "the timetable cannot run the schedules; trying again");
                    now + RETRY_MS
                }
            };
            tokio::select! {
                _ = inner.clock.sleep_until(wake_at) => {}
                _ = inner.schedules_changed.notified() => {}
                _ = crate::lead_changes(&mut leading) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}

/// Journals every run that is due at `now`; returns when the next one is.
async fn run_due(inner: &Arc<Inner>, since: i64, now: i64) -> Result<Option<i64>, ExecError> {
    let compiled = inner.compiled();
    let last_runs = inner.store.schedule_runs(&mut inner.bus.readers()).await?;
    let mut earliest: Option<i64> = None;
    for schedule in compiled.app.schedules.iter().filter(|s| s.enabled) {
        let name = schedule.name.as_str();
        let Some(&last) = last_runs.get(name) else {
            // New: it starts now.
            if !advance(inner, schedule, None, now, false).await? {
                return Ok(Some(now));
            }
            earliest = earliest.into_iter().chain(schedule.next_after(now)).min();
            continue;
        };
        let mut previous = last;
        let mut runs = schedule.runs(last).peekable();
        let mut latest_missed = None;
        for _ in 0..MISSED_LOOKUP {
            match runs.next_if(|run| *run < since) {
                Some(run) => latest_missed = Some(run),
                None => break,
            }
        }
        if let Some(missed) = latest_missed {
            let run = schedule.missed == Missed::RunOnce;
            if !advance(inner, schedule, Some(previous), missed, run).await? {
                return Ok(Some(now));
            }
            if !run {
                tracing::info!(
                    schedule = name,
                    "runs missed while no eddy kept the timetable are skipped, as `missed: skip` asks"
                );
            }
            previous = missed;
        }
        while let Some(run) = runs.next_if(|run| *run <= now) {
            if !advance(inner, schedule, Some(previous), run, true).await? {
                // Another node moved it on: read again.
                return Ok(Some(now));
            }
            previous = run;
        }
        earliest = earliest.into_iter().chain(runs.next()).min();
    }
    Ok(earliest)
}

/// Moves `schedule`'s last run from `previous` to `run_ms`, journaling the run if `journal`;
/// `false` when its last run was no longer `previous`.
async fn advance(
    inner: &Arc<Inner>,
    schedule: &ScheduleSpec,
    previous: Option<i64>,
    run_ms: i64,
    journal: bool,
) -> Result<bool, ExecError> {
    let name = schedule.name.clone();
    let payload = schedule.input.clone().unwrap_or_else(|| {
        eddy_events::scheduled_event(name.as_str(), run_ms, &uuid::Uuid::new_v4().to_string())
    });
    let input = (
        inner.store.clone(),
        name,
        previous,
        run_ms,
        journal,
        payload,
    );
    inner
        .bus
        .write(
            input,
            |tx, (store, name, previous, run_ms, journal, payload)| {
                Box::pin(async move {
                    if !store
                        .advance_schedule(tx, name.as_str(), *previous, *run_ms)
                        .await?
                    {
                        return Ok(false);
                    }
                    if *journal {
                        tx.append(NewEvent {
                            source: Source::Schedule(name.clone()),
                            kind: EventKind::ScheduledEvent,
                            key: eddy_events::iso8601_millis(*run_ms),
                            payload: payload.clone(),
                            lineage: Lineage::default(),
                        })
                        .await?;
                    }
                    Ok::<_, ExecError>(true)
                })
            },
        )
        .await
}
