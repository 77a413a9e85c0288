//! Turns: a trigger that runs one batch at a time (`parallel: 1`) has its next batches leased
//! and made ready while the current one runs; each one's invocation waits for its turn, which
//! comes the moment the one before has had its handler answer — not once its settlement has
//! committed. Batches leased together never share a key (a key with a record leased is not
//! batched), so the order within each key does not depend on which of them settles first. The
//! settler keeps a line too: the batches its rounds lease start in the order the rounds were
//! sent to the writer.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

/// The last batch queued on each trigger that runs one at a time.
#[derive(Default)]
pub(crate) struct Turns(Mutex<HashMap<String, oneshot::Receiver<()>>>);

impl Turns {
    /// Queues a batch of `trigger` behind every batch of it queued before.
    pub fn queue(&self, trigger: &str) -> Turn {
        let (pass, next) = oneshot::channel();
        let before = self
            .0
            .lock()
            .expect("turn lock")
            .insert(trigger.to_string(), next);
        Turn {
            before,
            pass: Some(pass),
        }
    }
}

/// A batch's place in its trigger's line. Dropping it passes the turn on, but never ahead of
/// the batches queued before it, however the batch ended.
pub(crate) struct Turn {
    before: Option<oneshot::Receiver<()>>,
    pass: Option<oneshot::Sender<()>>,
}

impl Turn {
    /// A batch that waits for no one and holds no one up (a trigger that runs several at once).
    pub fn none() -> Self {
        Self {
            before: None,
            pass: None,
        }
    }

    /// Waits until every batch queued before this one has had its turn. Returns whether it
    /// had to wait.
    pub async fn wait(&mut self) -> bool {
        let Some(mut before) = self.before.take() else {
            return false;
        };
        // Dropped unsent: the batch before has had its turn.
        if before.try_recv() != Err(oneshot::error::TryRecvError::Empty) {
            return false;
        }
        let _ = before.await;
        true
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let (Some(before), Some(pass)) = (self.before.take(), self.pass.take()) else {
            return;
        };
        // Ended before its turn came: the next waits for the ones before this one still.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = before.await;
                drop(pass);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    /// The order in which `turns` of one trigger get to run, each dropped when it has.
    async fn order(turns: Vec<Turn>) -> Vec<usize> {
        let ran = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // Spawned last first, so that the order cannot come from the spawning.
        for (i, mut turn) in turns.into_iter().enumerate().rev() {
            let ran = ran.clone();
            tasks.push(tokio::spawn(async move {
                turn.wait().await;
                tokio::task::yield_now().await;
                ran.lock().unwrap().push(i);
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        Arc::try_unwrap(ran).unwrap().into_inner().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn batches_of_a_trigger_run_in_the_order_they_were_queued() {
        let turns = Turns::default();
        let queued = (0..4).map(|_| turns.queue("t")).collect();
        assert_eq!(order(queued).await, [0, 1, 2, 3]);
        // A trigger that has gone idle does not hold its next batch.
        let mut next = turns.queue("t");
        tokio::time::timeout(Duration::from_secs(5), next.wait())
            .await
            .expect("the turn is free");
    }

    #[tokio::test(start_paused = true)]
    async fn a_turn_is_held_by_what_runs_and_not_by_another_trigger() {
        let turns = Turns::default();
        let running = turns.queue("t");
        let mut next = turns.queue("t");
        let mut other = turns.queue("u");
        other.wait().await;
        let waiting = tokio::time::timeout(Duration::from_millis(50), next.wait());
        assert!(
            waiting.await.is_err(),
            "its turn comes after the running one"
        );
        drop(running);
        next.wait().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_that_ends_before_its_turn_does_not_let_the_next_one_pass() {
        let turns = Turns::default();
        let running = turns.queue("t");
        let gone = turns.queue("t");
        let mut next = turns.queue("t");
        drop(gone);
        let waiting = tokio::time::timeout(Duration::from_millis(50), next.wait());
        assert!(waiting.await.is_err(), "still behind the running one");
        drop(running);
        next.wait().await;
    }
}
