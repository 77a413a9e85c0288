//! The events this node's writer committed last, held in memory so that a follower — the
//! dispatcher above all, which reads every event just after its commit — takes them as the
//! writer had them instead of reading back and parsing again what was just written. Bounded by
//! count and by payload size; always a gap-free run of sequence numbers (a commit that does not
//! follow on from what is held, as when another node wrote in between, replaces it). A follower
//! whose next event is not held reads the journal, as without it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use eddy_core::Event;

/// Events held at most.
const MAX_EVENTS: usize = 4096;
/// Serialised payload bytes held at most.
const MAX_BYTES: usize = 8 << 20;

#[derive(Default)]
pub(crate) struct Recent {
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    /// Each event with its payload's serialised length, in sequence order without a gap.
    events: VecDeque<(Arc<Event>, usize)>,
    bytes: usize,
}

impl Recent {
    /// Holds the events of a commit (in sequence order, each with its payload's serialised
    /// length), dropping the oldest beyond the bounds.
    pub(crate) fn keep(&self, committed: Vec<(Event, usize)>) {
        let Some((first, _)) = committed.first() else {
            return;
        };
        let mut held = self.held.lock().expect("recent events lock");
        let follows_on = held
            .events
            .back()
            .is_none_or(|(last, _)| last.seq + 1 == first.seq);
        if !follows_on {
            held.events.clear();
            held.bytes = 0;
        }
        for (event, bytes) in committed {
            held.bytes += bytes;
            held.events.push_back((Arc::new(event), bytes));
        }
        while held.events.len() > MAX_EVENTS || held.bytes > MAX_BYTES {
            let Some((_, bytes)) = held.events.pop_front() else {
                break;
            };
            held.bytes -= bytes;
        }
    }

    /// At most `limit` events held right after `after`, in order: empty unless the one after
    /// `after` is held.
    pub(crate) fn after(&self, after: u64, limit: usize) -> Vec<Arc<Event>> {
        let held = self.held.lock().expect("recent events lock");
        let Some((first, _)) = held.events.front() else {
            return Vec::new();
        };
        let Some(skip) = (after + 1).checked_sub(first.seq) else {
            return Vec::new();
        };
        held.events
            .iter()
            .skip(skip as usize)
            .take(limit)
            .map(|(event, _)| event.clone())
            .collect()
    }

    /// Forgets everything held (the database was opened again: nothing in memory is trusted).
    pub(crate) fn forget(&self) {
        let mut held = self.held.lock().expect("recent events lock");
        held.events.clear();
        held.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use eddy_core::{EventId, EventKind, Lineage, Source, TableName};

    use super::*;

    fn event(seq: u64) -> (Event, usize) {
        let event = Event {
            seq,
            id: EventId::generate(),
            source: Source::Table(TableName::new("orders").unwrap()),
            kind: EventKind::RowInsert,
            key: format!("k{seq}"),
            time_ms: 0,
            payload: serde_json::json!({"n": seq}),
            lineage: Lineage::root(),
        };
        (event, 1_000)
    }

    fn seqs(events: &[Arc<Event>]) -> Vec<u64> {
        events.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn a_follower_takes_a_run_from_right_after_its_position() {
        let recent = Recent::default();
        recent.keep((1..=3).map(event).collect());
        recent.keep((4..=5).map(event).collect());
        assert_eq!(seqs(&recent.after(0, 10)), [1, 2, 3, 4, 5]);
        assert_eq!(seqs(&recent.after(2, 2)), [3, 4]);
        assert!(recent.after(5, 10).is_empty(), "nothing newer is held");
        assert!(recent.after(9, 10).is_empty());
    }

    #[test]
    fn a_commit_that_does_not_follow_on_replaces_what_is_held() {
        let recent = Recent::default();
        recent.keep((1..=3).map(event).collect());
        // Another node wrote 4: what this one wrote next does not follow on, and replaces.
        recent.keep((5..=6).map(event).collect());
        assert!(recent.after(3, 10).is_empty(), "4 is not held");
        assert_eq!(seqs(&recent.after(4, 10)), [5, 6]);
        assert!(recent.after(0, 10).is_empty(), "1 is no longer held");
        recent.forget();
        assert!(recent.after(4, 10).is_empty());
    }

    #[test]
    fn the_oldest_go_beyond_the_bounds() {
        let recent = Recent::default();
        let many = MAX_EVENTS as u64 + 10;
        recent.keep((1..=many).map(event).collect());
        assert!(recent.after(9, 1).is_empty(), "1–10 went");
        assert_eq!(seqs(&recent.after(10, 1)), [11]);
        // Bytes: a few large payloads push the rest out.
        let large = |seq| (event(seq).0, MAX_BYTES / 2 + 1);
        recent.keep(vec![large(many + 1), large(many + 2)]);
        assert_eq!(seqs(&recent.after(many + 1, 10)), [many + 2]);
        assert!(recent.after(many, 10).is_empty());
    }
}
