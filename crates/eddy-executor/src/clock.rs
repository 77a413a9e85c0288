//! Time, injected: the executor asks a clock for the time and for sleeps, so tests can move
//! time forward instead of waiting for it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

#[async_trait]
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
    /// Returns once the clock reads `deadline_ms` or later.
    async fn sleep_until(&self, deadline_ms: i64);
}

/// The real clock.
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        eddy_bus::now_ms()
    }

    async fn sleep_until(&self, deadline_ms: i64) {
        let wait = deadline_ms - self.now_ms();
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
    }
}

/// A clock that moves only when told to. Sleepers wake when it is advanced past their deadline;
/// a test can wait for someone to sleep until a given time (the executor has decided to wait
/// until then).
#[derive(Clone)]
pub struct ManualClock {
    now: Arc<watch::Sender<i64>>,
    /// The deadlines being slept until now, one entry per sleeper.
    sleepers: Arc<watch::Sender<Vec<i64>>>,
}

impl ManualClock {
    /// A clock reading `start_ms`.
    pub fn new(start_ms: i64) -> Self {
        Self {
            now: Arc::new(watch::Sender::new(start_ms)),
            sleepers: Arc::new(watch::Sender::new(Vec::new())),
        }
    }

    /// A clock reading the real time now, and then standing still.
    pub fn starting_now() -> Self {
        Self::new(eddy_bus::now_ms())
    }

    pub fn advance(&self, by: Duration) {
        self.now.send_modify(|now| *now += by.as_millis() as i64);
    }

    /// Returns once something sleeps until exactly `deadline_ms`.
    pub async fn sleeping_until(&self, deadline_ms: i64) {
        let mut sleepers = self.sleepers.subscribe();
        let _ = sleepers.wait_for(|s| s.contains(&deadline_ms)).await;
    }
}

/// Takes a sleeper's deadline off the list when its sleep ends or is dropped.
struct Sleeping<'a> {
    sleepers: &'a watch::Sender<Vec<i64>>,
    deadline_ms: i64,
}

impl Drop for Sleeping<'_> {
    fn drop(&mut self) {
        self.sleepers.send_modify(|s| {
            if let Some(i) = s.iter().position(|d| *d == self.deadline_ms) {
                s.swap_remove(i);
            }
        });
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        *self.now.borrow()
    }

    async fn sleep_until(&self, deadline_ms: i64) {
        self.sleepers.send_modify(|s| s.push(deadline_ms));
        let _sleeping = Sleeping {
            sleepers: &self.sleepers,
            deadline_ms,
        };
        let mut now = self.now.subscribe();
        // The sender lives as long as `self`; `wait_for` fails only if it is gone.
        let _ = now.wait_for(|t| *t >= deadline_ms).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_sleepers_wake_when_time_passes_their_deadline() {
        let clock = ManualClock::new(1_000);
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move { clock.sleep_until(3_000).await })
        };
        clock.advance(Duration::from_millis(1_000));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.sleeping_until(3_000).await;
        clock.advance(Duration::from_millis(1_000));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(clock.now_ms(), 3_000);
    }
}
