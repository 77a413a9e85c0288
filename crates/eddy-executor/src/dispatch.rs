//! The dispatcher: follows the journal (woken by each commit, never polling), matches each event
//! against the triggers, and writes one delivery per match together with its durable cursor,
//! so a restart neither skips nor repeats an event. Deliveries whose function has a free slot
//! now are created leased and run at once, with their event in hand — one ordered per key too,
//! when it is the first of its key in the batch and nothing of its key waits or runs. Events
//! that match nothing cost no transaction of their own: the cursor past them is noted, and
//! saved with the next write or alone a moment later ([`eddy_bus::CURSOR_LAG`]) — a restart
//! before that reads them again, and, matching nothing again, creates nothing.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use eddy_bus::BusError;
use eddy_core::{Event, Source};
use eddy_subscriptions::Ordering;

use crate::deliveries::{DeadReason, Leased, NewDelivery};
use crate::schedule::deliver;
use crate::{ExecError, INVOKE_TRIGGER, Inner};

/// The journal cursor of the dispatcher.
pub(crate) const CURSOR: &str = "dispatcher";

pub(crate) async fn dispatch(inner: Arc<Inner>) {
    let start = match inner.bus.cursor(CURSOR).await {
        Ok(position) => position.unwrap_or(0),
        Err(error) => {
            tracing::error!(%error, "the dispatcher cannot read its cursor; it does not start");
            return;
        }
    };
    let mut follower = inner.bus.follow(start);
    let mut stop = inner.stop.subscribe();
    loop {
        let events = tokio::select! {
            events = follower.next() => events,
            _ = stop.wait_for(|s| *s) => return,
        };
        let events = match events {
            Ok(events) => events,
            Err(BusError::WriterStopped) => return,
            Err(error) => {
                tracing::error!(%error, "the dispatcher cannot read the journal; trying again");
                inner.clock.sleep_until(inner.clock.now_ms() + 1000).await;
                continue;
            }
        };
        let wanted = fast_path_candidates(&inner, &events);
        let mut granted = HashMap::new();
        for (function, (want, capacity)) in &wanted {
            let got = inner
                .store
                .take_slots(function, *capacity, *want, inner.slot_until(function))
                .await
                .unwrap_or(0);
            granted.insert(function.clone(), got);
        }
        let deliveries = plan(&inner, &events, granted.clone(), None);
        let last = events.last().map_or(0, |e| e.seq);
        if deliveries.is_empty() {
            give_back_all(&inner, &granted).await;
            inner.bus.note_cursor(CURSOR, last);
            continue;
        }
        // Deliveries and cursor commit together. Until they do, the batch is retried: the
        // follower has moved on, so giving up would skip these events.
        let created = loop {
            let input = (
                inner.store.clone(),
                inner.config.node.clone(),
                deliveries.clone(),
                inner.clock.now_ms(),
                last,
            );
            let written = inner
                .bus
                .write(input, |tx, (store, node, rows, now, last)| {
                    Box::pin(async move {
                        let created = store.create(tx, node, rows, *now).await?;
                        tx.set_cursor(CURSOR, *last).await?;
                        Ok::<_, ExecError>(created)
                    })
                })
                .await;
            match written {
                Ok(created) => break created,
                Err(ExecError::Bus(BusError::WriterStopped)) => {
                    give_back_all(&inner, &granted).await;
                    return;
                }
                Err(error) => {
                    tracing::error!(%error, "the dispatcher cannot record deliveries; trying again");
                    inner.clock.sleep_until(inner.clock.now_ms() + 1000).await;
                }
            }
        };
        // Deliveries created leased run now, with their events at hand: no lease round, no read.
        let by_seq: HashMap<u64, Arc<Event>> = events.into_iter().map(|e| (e.seq, e)).collect();
        let mut started: HashMap<&str, u32> = HashMap::new();
        for c in created.into_iter().filter(|c| c.leased) {
            let Some(planned) = deliveries
                .iter()
                .find(|d| d.event_seq == c.event_seq && d.trigger == c.trigger)
            else {
                continue;
            };
            *started.entry(planned.function.as_str()).or_default() += 1;
            let leased = Leased {
                id: c.id,
                event_seq: c.event_seq,
                event_time_ms: planned.event_time_ms,
                trigger: c.trigger,
                function: planned.function.clone(),
                attempt: 1,
                replay: 0,
            };
            inner
                .attempts
                .spawn(deliver(inner.clone(), leased, by_seq[&c.event_seq].clone()));
        }
        // Slots taken for deliveries that existed already (a batch read twice) go back.
        for (function, got) in &granted {
            let used = started.get(function.as_str()).copied().unwrap_or(0);
            if *got > used {
                let _ = inner.store.give_back(function, got - used).await;
            }
        }
        inner.wake.notify_one();
    }
}

async fn give_back_all(inner: &Inner, granted: &HashMap<String, u32>) {
    for (function, n) in granted {
        let _ = inner.store.give_back(function, *n).await;
    }
}

/// For each function, how many of these events' deliveries could start at once (not batched,
/// not dead on arrival, for a trigger ordered per key only the first of each key), and the
/// function's concurrency.
fn fast_path_candidates(inner: &Inner, events: &[Arc<Event>]) -> HashMap<String, (u32, u32)> {
    let compiled = inner.compiled();
    let mut wanted: HashMap<String, (u32, u32)> = HashMap::new();
    // (trigger, source, key) of the per-key deliveries counted.
    let mut keys_seen: HashSet<(&str, &Source, &str)> = HashSet::new();
    for event in events.iter().filter(|e| takes(None, e)) {
        if event.lineage.hops > inner.config.max_hops {
            continue;
        }
        let functions: Vec<String> = match &event.source {
            Source::Function(f) => vec![f.to_string()],
            Source::Schedule(s) => compiled
                .app
                .schedule(s.as_str())
                .map(|s| s.function.to_string())
                .into_iter()
                .collect(),
            _ => compiled
                .index
                .matching(event)
                .into_iter()
                .filter(|t| t.batch.is_none())
                .filter(|t| {
                    t.ordering != Ordering::PerKey
                        || keys_seen.insert((t.name.as_str(), &event.source, event.key.as_str()))
                })
                .map(|t| t.function.to_string())
                .collect(),
        };
        for function in functions {
            if let Some(spec) = compiled
                .app
                .functions
                .iter()
                .find(|f| f.name.as_str() == function)
            {
                wanted.entry(function).or_insert((0, spec.concurrency)).0 += 1;
            }
        }
    }
    wanted
}

/// A replay's trigger and id, and a backfill's mark, for [`plan`].
pub(crate) struct ReplayOf<'a> {
    pub trigger: &'a str,
    pub id: i64,
    pub backfill: Option<&'a str>,
}

/// Whether `replay` (or, without one, the dispatcher) delivers `event`: a backfill's events go
/// only to the backfill's replay, and a backfill's replay takes only its own.
fn takes(replay: Option<&ReplayOf>, event: &Event) -> bool {
    event.backfill() == replay.and_then(|r| r.backfill)
}

/// The deliveries a batch of events makes. Unordered ones whose function has a slot in
/// `granted` are created leased, to run at once; the rest wait for the scheduler. For a
/// `replay`, only its trigger's, carrying its id, each key's in order among themselves (apart
/// from the key's live deliveries).
pub(crate) fn plan(
    inner: &Inner,
    events: &[impl Borrow<Event>],
    mut granted: HashMap<String, u32>,
    replay: Option<&ReplayOf>,
) -> Vec<NewDelivery> {
    let compiled = inner.compiled();
    let now = inner.clock.now_ms();
    let until: HashMap<String, i64> = compiled
        .app
        .functions
        .iter()
        .map(|f| (f.name.to_string(), inner.lease_until(f, now)))
        .collect();
    let mut deliveries = Vec::new();
    // The keys met so far: only a key's first delivery here may start leased.
    let mut keys_seen: HashSet<String> = HashSet::new();
    for event in events
        .iter()
        .map(Borrow::borrow)
        .filter(|e| takes(replay, e))
    {
        // (trigger, function, order key, batched)
        let matched: Vec<(String, String, Option<String>, bool)> = match &event.source {
            _ if replay.is_some()
                && !matches!(event.source, Source::Bucket(_) | Source::Table(_)) =>
            {
                Vec::new()
            }
            Source::Function(f) => vec![(INVOKE_TRIGGER.to_string(), f.to_string(), None, false)],
            Source::Schedule(name) => match compiled.app.schedule(name.as_str()) {
                Some(s) => vec![(s.delivery_name(), s.function.to_string(), None, false)],
                None => {
                    // The app lost the schedule between the run's commit and now.
                    tracing::warn!(schedule = %name, seq = event.seq, "a run of a schedule the app no longer has is not delivered");
                    Vec::new()
                }
            },
            _ => compiled
                .index
                .matching(event)
                .into_iter()
                .filter(|t| replay.is_none_or(|r| r.trigger == t.name))
                .map(|t| {
                    let order_key = (t.ordering == Ordering::PerKey).then(|| {
                        let key = format!("{}\u{1f}{}\u{1f}{}", t.name, event.source, event.key);
                        match replay {
                            Some(r) => format!("{key}\u{1f}replay {}", r.id),
                            None => key,
                        }
                    });
                    let batched = t.batch.is_some();
                    (t.name.clone(), t.function.to_string(), order_key, batched)
                })
                .collect(),
        };
        let dead = (event.lineage.hops > inner.config.max_hops).then(|| {
            (
                DeadReason::RecursionLimit,
                format!(
                    "the event is {} handler hops from a client's write; at most {} are delivered",
                    event.lineage.hops, inner.config.max_hops
                ),
            )
        });
        for (trigger, function, order_key, batched) in matched {
            // A batched delivery waits for the scheduler to gather its batch; one ordered per
            // key may start leased if it is its key's first here (the store keeps it ready if
            // an earlier one of the key still waits or runs).
            let first_of_key = order_key
                .as_ref()
                .is_none_or(|key| keys_seen.insert(key.clone()));
            let lease_until = match granted.get_mut(&function) {
                Some(free) if *free > 0 && first_of_key && !batched && dead.is_none() => {
                    *free -= 1;
                    until.get(&function).copied()
                }
                _ => None,
            };
            deliveries.push(NewDelivery {
                event_seq: event.seq,
                event_time_ms: event.time_ms,
                trigger,
                function,
                order_key,
                dead: dead.clone(),
                lease_until,
                replay: replay.map_or(0, |r| r.id),
                batched,
            });
        }
    }
    deliveries
}
