//! Backfill: a trigger receives an event for every object or row that already exists on its
//! source — as its creation's event (`ObjectCreated:Put`, `INSERT`), in key order, marked
//! `eddyBackfill`. The events are journaled a page at a time, each carrying the backfill's mark
//! (so the dispatcher gives them to no trigger), and then replayed to the trigger alone: its
//! deliveries are paced like any replay's, so live traffic keeps flowing.
//!
//! A trigger declared with `backfill: true` is backfilled once, by the leading node, when an
//! app that has it is put in service: the first node to claim it (a compare-and-set on the
//! cursor `backfill/NAME`) does it.

use std::sync::{Arc, Weak};

use eddy_core::{BACKFILL_FIELD, NewEvent, Source};
use eddy_executor::{ExecError, Replay};
use eddy_objects::{ListParams, created_event};
use eddy_subscriptions::App;
use eddy_tables::{MAX_PAGE_ROWS, Query, inserted_event};
use tokio::sync::watch;

use crate::{Node, NodeError};

/// Objects or rows journaled per transaction.
const PAGE: usize = 500;

impl Node {
    /// Journals an event for each object or row that exists on `trigger`'s source now, and
    /// replays them to the trigger (see the module's notes).
    pub async fn backfill(&self, trigger: &str) -> Result<Replay, NodeError> {
        let app = self.app();
        let spec = app
            .trigger(trigger)
            .ok_or_else(|| ExecError::NoSuchTrigger(trigger.to_string()))?;
        if !spec.enabled {
            return Err(ExecError::InvalidReplay(format!(
                "trigger `{trigger}` is disabled; enable it to backfill it"
            ))
            .into());
        }
        let mark = uuid::Uuid::new_v4().to_string();
        let mut journaled: Option<(u64, u64)> = None;
        match &spec.source {
            Source::Bucket(bucket) => {
                let mut params = ListParams {
                    max_keys: PAGE,
                    ..ListParams::default()
                };
                loop {
                    let page = self.objects.list_objects(bucket, &params).await?;
                    let events = page.objects.iter().map(created_event).collect();
                    self.journal(events, &mark, &mut journaled).await?;
                    match page.next {
                        Some(next) => params.start = Some(next),
                        None => break,
                    }
                }
            }
            Source::Table(table) => {
                let schema = self.tables.schema(table).map_err(NodeError::Rows)?;
                let mut query = Query {
                    limit: PAGE.min(MAX_PAGE_ROWS),
                    ..Query::default()
                };
                loop {
                    let page = self
                        .tables
                        .list(table, &query)
                        .await
                        .map_err(NodeError::Rows)?;
                    let events = page
                        .rows
                        .into_iter()
                        .map(|row| inserted_event(&schema, row))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(NodeError::Rows)?;
                    self.journal(events, &mark, &mut journaled).await?;
                    match page.next {
                        Some(next) => query.after = Some(next),
                        None => break,
                    }
                }
            }
            Source::Function(_) | Source::Schedule(_) => {}
        }
        // Nothing there: an empty range, finished at once.
        let range = journaled.unwrap_or((self.bus.last_seq() + 1, self.bus.last_seq()));
        let replay = self.executor.replay_backfill(trigger, range, &mark).await?;
        tracing::info!(
            replay = replay.id,
            trigger,
            from = range.0,
            to = range.1,
            "backfill journaled"
        );
        Ok(replay)
    }

    /// Journals one page of a backfill's events, marked, in one transaction; widens the range
    /// of sequence numbers they hold.
    async fn journal(
        &self,
        mut events: Vec<NewEvent>,
        mark: &str,
        journaled: &mut Option<(u64, u64)>,
    ) -> Result<(), NodeError> {
        if events.is_empty() {
            return Ok(());
        }
        for event in &mut events {
            if let Some(fields) = event.payload.as_object_mut() {
                fields.insert(BACKFILL_FIELD.into(), mark.into());
            }
        }
        let seqs = self
            .bus
            .write(events, |tx, events| {
                Box::pin(async move {
                    let mut seqs = Vec::with_capacity(events.len());
                    for event in events {
                        seqs.push(tx.append(event.clone()).await?.seq);
                    }
                    Ok::<_, eddy_bus::BusError>(seqs)
                })
            })
            .await?;
        let (first, last) = (seqs[0], seqs[seqs.len() - 1]);
        *journaled = Some(journaled.map_or((first, last), |(from, _)| (from, last)));
        Ok(())
    }
}

/// Backfills, on the leading node, the triggers declared with `backfill: true` that no node
/// has claimed yet; looks again whenever the app or the lead changes.
pub(crate) async fn declared(
    node: Weak<Node>,
    mut apps: watch::Receiver<Arc<App>>,
    mut leading: watch::Receiver<bool>,
) {
    loop {
        let app = apps.borrow_and_update().clone();
        if *leading.borrow_and_update() {
            let Some(node) = node.upgrade() else { return };
            for trigger in app.triggers.iter().filter(|t| t.backfill && t.enabled) {
                match node.claim_backfill(&trigger.name).await {
                    Ok(false) => {
                        tracing::info!(
                            trigger = trigger.name,
                            "the declared backfill was made already"
                        );
                    }
                    Ok(true) => {
                        if let Err(error) = node.backfill(&trigger.name).await {
                            tracing::error!(%error, trigger = trigger.name, "the declared backfill failed; run `eddy triggers backfill` to try again");
                        }
                    }
                    Err(error) => {
                        tracing::error!(%error, trigger = trigger.name, "cannot claim the declared backfill")
                    }
                }
            }
        }
        tokio::select! {
            changed = apps.changed() => if changed.is_err() { return },
            changed = leading.changed() => if changed.is_err() {
                // The lead never moves (one node): only the app can change now.
                if apps.changed().await.is_err() { return }
            },
        }
    }
}

impl Node {
    /// Claims trigger `name`'s declared backfill: `true` for the first claim ever.
    async fn claim_backfill(&self, name: &str) -> Result<bool, NodeError> {
        let cursor = format!("backfill/{name}");
        Ok(self
            .bus
            .write(cursor, |tx, cursor| {
                Box::pin(async move {
                    if tx.cursor(cursor).await?.is_some() {
                        return Ok(false);
                    }
                    tx.set_cursor(cursor, 1).await?;
                    Ok::<_, eddy_bus::BusError>(true)
                })
            })
            .await?)
    }
}
