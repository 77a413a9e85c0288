//! The settler: records finished attempts, as many at a time as have finished, in one
//! transaction each round (their invocation records and their deliveries' next state).

use std::sync::Arc;

use eddy_bus::BusError;
use tokio::sync::mpsc;

use crate::batch::Batched;
use crate::deliveries::Settle;
use crate::{ExecError, Inner, schedule};

/// A finished attempt on its way to the settler: what to record (a batch's settlements travel
/// together, so they are recorded in one transaction, not split across rounds), and — for a
/// batch that keeps its function's slot — the trigger whose next batch that slot should go
/// to, leased in the same transaction.
pub(crate) struct Finished {
    pub settles: Vec<Settle>,
    pub next: Option<Batched>,
}

impl From<Settle> for Finished {
    fn from(settle: Settle) -> Self {
        Self {
            settles: vec![settle],
            next: None,
        }
    }
}

/// What one recording commits: settlements, and the triggers whose next batches are leased
/// with the slots their finished batches hand over. Shared, not copied, when the recording is
/// tried again.
pub(crate) struct Recording {
    pub settles: Vec<Settle>,
    pub next: Vec<Batched>,
}

impl From<Vec<Finished>> for Recording {
    fn from(finished: Vec<Finished>) -> Self {
        let mut recording = Recording {
            settles: Vec::with_capacity(finished.len()),
            next: Vec::new(),
        };
        for f in finished {
            recording.settles.extend(f.settles);
            recording.next.extend(f.next);
        }
        recording
    }
}

/// Records finished attempts, as many at a time as have finished, in one transaction each
/// round; then wakes the scheduler (a key may be free now).
pub(crate) async fn settle(inner: Arc<Inner>, mut queue: mpsc::Receiver<Finished>) {
    let mut stop = inner.drained.subscribe();
    let mut batch = Vec::new();
    loop {
        let stopping = tokio::select! {
            n = queue.recv_many(&mut batch, 1024) => if n == 0 { return } else { false },
            _ = stop.wait_for(|s| *s) => true,
        };
        if stopping {
            // Every attempt has finished and queued its outcome: record the last of them.
            while let Ok(s) = queue.try_recv() {
                batch.push(s);
            }
            if !batch.is_empty() {
                let _ = inner
                    .record(Arc::new(std::mem::take(&mut batch).into()))
                    .await;
            }
            return;
        }
        let recording = Arc::new(Recording::from(std::mem::take(&mut batch)));
        loop {
            match inner.record(recording.clone()).await {
                Ok(next) => {
                    schedule::start_batches(&inner, next);
                    break;
                }
                Err(ExecError::Bus(BusError::WriterStopped)) => return,
                Err(error) => {
                    tracing::error!(%error, "cannot record finished attempts; trying again");
                    inner.clock.sleep_until(inner.clock.now_ms() + 1000).await;
                }
            }
        }
        inner.wake.notify_one();
    }
}
