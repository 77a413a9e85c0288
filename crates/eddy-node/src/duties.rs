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
        every(weak.clone(), duties.rotate_credentials, false, |node| {
            Box::pin(async move {
                match node.rotate_credentials().await {
                    Ok(()) => tracing::info!("function credentials rotated"),
                    Err(e) => tracing::error!(error = %e, "function credentials not rotated"),
                }
            })
        }),
        every(weak.clone(), duties.collect_garbage, true, move |node| {
            Box::pin(async move {
                match node.objects.collect_garbage(duties.garbage_grace).await {
                    Ok(report) if report.blobs_removed > 0 => tracing::info!(
                        blobs = report.blobs_removed,
                        bytes = report.bytes_removed,
                        "garbage collected"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "garbage collection failed"),
                }
            })
        }),
        every(weak, duties.follow_app, false, |node| {
            Box::pin(async move {
                if let Err(e) = node.follow_stored_app().await {
                    tracing::warn!(error = %e, "cannot follow the stored app");
                }
            })
        }),
    ]
}

type DutyFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Runs `duty` every `period` (first at once when `now`) while the node lives.
fn every(
    node: Weak<Node>,
    period: Duration,
    now: bool,
    duty: impl Fn(Arc<Node>) -> DutyFuture + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if !now {
            ticks.tick().await;
        }
        loop {
            ticks.tick().await;
            let Some(node) = node.upgrade() else {
                return;
            };
            duty(node).await;
        }
    })
}
