//! Batches that have run and wait for their settlement to commit. Their records stay leased
//! until it has — no other batch takes their keys, and should this node die they run again —
//! but they no longer run. So when a trigger's batches are counted against how many it may
//! have leased, this node's settling batches are left out: a round of settlements waits for the
//! writer's transaction in progress and then commits its own (milliseconds, tens of them under
//! a heavy write load). Counted as running, the batch that finished while a round was on its
//! way would take the place of the one leased ahead, and a trigger that runs one batch at a
//! time would run about one batch per round.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// This node's batches that have run and wait for their settlement to commit, by trigger.
#[derive(Default)]
pub(crate) struct Settling(Mutex<HashMap<String, HashSet<String>>>);

impl Settling {
    /// Notes that batch `request_id` of `trigger` has run, until the returned guard is dropped
    /// (once its settlement has committed, or will not be).
    pub fn begin(&self, trigger: &str, request_id: &str) -> Unsettled<'_> {
        self.0
            .lock()
            .expect("settling lock")
            .entry(trigger.to_string())
            .or_default()
            .insert(request_id.to_string());
        Unsettled {
            settling: self,
            trigger: trigger.to_string(),
            request_id: request_id.to_string(),
        }
    }

    /// The request ids of `trigger`'s batches that have run and are not settled yet.
    pub fn of(&self, trigger: &str) -> Vec<String> {
        self.0
            .lock()
            .expect("settling lock")
            .get(trigger)
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// A batch that has run, until its settlement has committed.
pub(crate) struct Unsettled<'a> {
    settling: &'a Settling,
    trigger: String,
    request_id: String,
}

impl Drop for Unsettled<'_> {
    fn drop(&mut self) {
        let mut settling = self.settling.0.lock().expect("settling lock");
        if let Some(ids) = settling.get_mut(&self.trigger) {
            ids.remove(&self.request_id);
            if ids.is_empty() {
                settling.remove(&self.trigger);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_settling_from_the_moment_it_has_run_until_its_guard_goes() {
        let settling = Settling::default();
        assert!(settling.of("t").is_empty());
        let first = settling.begin("t", "a");
        let second = settling.begin("t", "b");
        let other = settling.begin("u", "c");
        let mut ids = settling.of("t");
        ids.sort();
        assert_eq!(ids, ["a", "b"]);
        drop(first);
        assert_eq!(settling.of("t"), ["b"]);
        drop(second);
        assert!(settling.of("t").is_empty());
        assert!(
            !settling.0.lock().unwrap().contains_key("t"),
            "no empty entry is kept"
        );
        assert_eq!(settling.of("u"), ["c"]);
        drop(other);
    }
}
