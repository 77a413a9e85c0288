//! What a node does on its own while it runs: issue functions new credentials before the old
//! ones expire, collect the blobs nothing refers to, and follow the app other nodes put in
//! service.

use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::Node;

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

pub(crate) fn start(node: &Arc<Node>, duties: Duties) -> Vec<tokio::task::JoinHandle<()>> {
    let weak = Arc::downgrade(node);
    vec![
        every(weak.clone(), duties.rotate_credentials, |node| {
            Box::pin(async move {
                match node.rotate_credentials().await {
                    Ok(()) => tracing::info!("function credentials rotated"),
                    Err(e) => tracing::error!(error = %e, "function credentials not rotated"),
                }
            })
        }),
        tokio::spawn(collect_garbage(weak.clone(), duties)),
        every(weak, duties.follow_app, |node| {
            Box::pin(async move {
                if let Err(e) = node.follow_stored_app().await {
                    tracing::warn!(error = %e, "cannot follow the stored app");
                }
            })
        }),
    ]
}

/// Collects garbage at start and every period — every ten seconds while the disk is full, so
/// deleting objects gives their space back as soon as their blobs are past the grace period.
async fn collect_garbage(node: Weak<Node>, duties: Duties) {
    const WHILE_FULL: Duration = Duration::from_secs(10);
    loop {
        let Some(strong) = node.upgrade() else {
            return;
        };
        match strong.objects.collect_garbage(duties.garbage_grace).await {
            Ok(report) if report.blobs_removed > 0 => tracing::info!(
                blobs = report.blobs_removed,
                bytes = report.bytes_removed,
                "garbage collected"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "garbage collection failed"),
        }
        let mut storage = strong.bus.watch_storage();
        drop(strong);
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

type DutyFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Runs `duty` every `period` (the first time one period after start) while the node lives.
fn every(
    node: Weak<Node>,
    period: Duration,
    duty: impl Fn(Arc<Node>) -> DutyFuture + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let Some(node) = node.upgrade() else {
                return;
            };
            duty(node).await;
        }
    })
}
