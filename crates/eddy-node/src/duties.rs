//! What a node does on its own while it runs, and how often: issue functions new credentials
//! before the old ones expire, collect the blobs nothing refers to, and follow the app other
//! nodes put in service. (The node says what each duty does; this module only keeps time.)

use std::sync::{Arc, Weak};
use std::time::Duration;

use eddy_bus::StorageState;
use eddy_objects::ObjectStore;

/// How often each duty runs.
#[derive(Clone, Copy, Debug)]
pub struct Duties {
    /// New function credentials (each lives two hours).
    pub rotate_credentials: Duration,
    /// Garbage collection of blobs; the first runs at start.
    pub collect_garbage: Duration,
    /// Blobs written more recently than this are never collected (an upload may be about to
    /// refer to them).
    pub garbage_grace: Duration,
    /// A look at the stored app, to run one another node put in service.
    pub follow_app: Duration,
}

impl Default for Duties {
    fn default() -> Self {
        Self {
            rotate_credentials: Duration::from_secs(3600),
            collect_garbage: Duration::from_secs(600),
            garbage_grace: Duration::from_secs(900),
            follow_app: Duration::from_secs(1),
        }
    }
}

/// Collects garbage at start and every period — every ten seconds while the disk is full, so
/// deleting objects gives their space back as soon as their blobs are past the grace period.
/// Blobs that nodes share are collected by the leading node only (`leading`); a node's own
/// disk by the node. Ends when `storage` ends (the bus is gone).
pub(crate) async fn collect_garbage(
    objects: ObjectStore,
    mut storage: tokio::sync::watch::Receiver<StorageState>,
    mut leading: Option<tokio::sync::watch::Receiver<bool>>,
    duties: Duties,
) {
    const WHILE_FULL: Duration = Duration::from_secs(10);
    loop {
        if let Some(leading) = leading.as_mut()
            && leading.wait_for(|leads| *leads).await.is_err()
        {
            return;
        }
        match objects.collect_garbage(duties.garbage_grace).await {
            Ok(report) if report.blobs_removed > 0 => tracing::info!(
                blobs = report.blobs_removed,
                bytes = report.bytes_removed,
                "garbage collected"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "garbage collection failed"),
        }
        let next = tokio::time::Instant::now() + duties.collect_garbage;
        loop {
            let full = matches!(
                *storage.borrow_and_update(),
                eddy_bus::StorageState::Full { .. }
            );
            let wake = if full {
                next.min(tokio::time::Instant::now() + WHILE_FULL)
            } else {
                next
            };
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => break,
                changed = storage.changed() => if changed.is_err() { return },
            }
        }
    }
}

pub(crate) type DutyFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Runs `duty` every `period` (the first time one period after start) while `owner` lives.
pub(crate) fn every<T: Send + Sync + 'static>(
    owner: Weak<T>,
    period: Duration,
    duty: impl Fn(Arc<T>) -> DutyFuture + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let Some(owner) = owner.upgrade() else {
                return;
            };
            duty(owner).await;
        }
    })
}
