//! Packing a batched trigger's candidates into batches: at most `size` records each, each key's
//! records in one batch and in order, the halves of a bisected batch apart, a replay's records
//! apart from live ones, and a batch smaller than `size` held back until its window has passed.

use std::collections::HashMap;

use eddy_subscriptions::BatchSpec;

use crate::deliveries::BatchCandidate;

/// What a round can lease of one trigger.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Packed {
    /// Batches to lease now, each in event order.
    pub batches: Vec<Vec<BatchCandidate>>,
    /// When the earliest batch held back by its window is due.
    pub held_until: Option<i64>,
}

/// Packs `candidates` (in event order) into at most `room` batches.
pub(crate) fn pack(
    candidates: Vec<BatchCandidate>,
    spec: &BatchSpec,
    room: u32,
    now_ms: i64,
) -> Packed {
    let size = spec.size.max(1) as usize;
    let mut open: Vec<Vec<BatchCandidate>> = Vec::new();
    // Each key's batch, or `None` once the key must wait for a later round (what follows an
    // earlier record left out must not overtake it).
    let mut keys: HashMap<String, Option<usize>> = HashMap::new();
    for c in candidates {
        let label = (c.delivery.replay, c.part.clone());
        let fits = |b: &Vec<BatchCandidate>| {
            b.len() < size && (b[0].delivery.replay, b[0].part.clone()) == label
        };
        let chosen = match c.order_key.as_ref().and_then(|k| keys.get(k)) {
            // The key waits, or its batch is another half, another replay, or full.
            Some(None) => None,
            Some(Some(i)) => Some(*i).filter(|i| fits(&open[*i])),
            None => match open.iter().position(fits) {
                Some(i) => Some(i),
                None if open.len() < room as usize => {
                    open.push(Vec::with_capacity(size.min(1024)));
                    Some(open.len() - 1)
                }
                None => None,
            },
        };
        if let Some(key) = &c.order_key {
            keys.insert(key.clone(), chosen);
        }
        if let Some(i) = chosen {
            open[i].push(c);
        }
    }
    let mut packed = Packed::default();
    for batch in open {
        let oldest = batch.iter().map(|c| c.ready_ms).min().unwrap_or(now_ms);
        // A retry, or a half of a bisected batch, goes at once: its window passed already.
        let again = batch
            .iter()
            .any(|c| c.delivery.attempt > 1 || c.part.is_some());
        let due = oldest + spec.window.as_millis() as i64;
        if batch.len() >= size || again || due <= now_ms {
            packed.batches.push(batch);
        } else {
            packed.held_until = Some(packed.held_until.map_or(due, |h| h.min(due)));
        }
    }
    packed
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::deliveries::Leased;

    fn candidate(seq: u64, key: Option<&str>) -> BatchCandidate {
        BatchCandidate {
            delivery: Leased {
                id: seq as i64,
                event_seq: seq,
                event_time_ms: 0,
                trigger: "t".into(),
                function: "f".into(),
                attempt: 1,
                replay: 0,
            },
            order_key: key.map(str::to_string),
            part: None,
            ready_ms: 1_000,
        }
    }

    fn spec(size: u32, window_ms: u64) -> BatchSpec {
        BatchSpec {
            size,
            window: Duration::from_millis(window_ms),
            ..BatchSpec::default()
        }
    }

    fn seqs(packed: &Packed) -> Vec<Vec<u64>> {
        packed
            .batches
            .iter()
            .map(|b| b.iter().map(|c| c.delivery.event_seq).collect())
            .collect()
    }

    #[test]
    fn records_fill_batches_of_the_size_in_event_order() {
        let candidates = (1..=7).map(|s| candidate(s, None)).collect();
        let packed = pack(candidates, &spec(3, 0), 10, 1_000);
        assert_eq!(seqs(&packed), [vec![1, 2, 3], vec![4, 5, 6], vec![7]]);
        assert_eq!(packed.held_until, None);
    }

    #[test]
    fn no_more_batches_than_there_is_room_for() {
        let candidates = (1..=7).map(|s| candidate(s, None)).collect();
        let packed = pack(candidates, &spec(3, 0), 2, 1_000);
        assert_eq!(seqs(&packed), [vec![1, 2, 3], vec![4, 5, 6]]);
        assert!(
            pack(vec![candidate(1, None)], &spec(3, 0), 0, 1_000)
                .batches
                .is_empty()
        );
    }

    #[test]
    fn a_key_stays_in_one_batch_and_its_later_records_wait_when_it_is_full() {
        // Key a has 4 records, b 1; batches of 3, room for 2.
        let candidates = vec![
            candidate(1, Some("a")),
            candidate(2, Some("b")),
            candidate(3, Some("a")),
            candidate(4, Some("a")),
            candidate(5, Some("a")),
            candidate(6, Some("c")),
        ];
        let packed = pack(candidates, &spec(3, 0), 2, 1_000);
        // a's fourth record would overtake nothing, but its batch is full: it waits, and so
        // would any later one of a; c opens the second batch.
        assert_eq!(seqs(&packed), [vec![1, 2, 3], vec![6]]);
    }

    #[test]
    fn a_key_whose_record_was_left_out_waits_whole() {
        // Room for one batch, taken by a bisected half: key a's records are left out, the
        // later one too, while the half takes its own later record.
        let mut candidates = vec![
            candidate(1, Some("x")),
            candidate(2, Some("a")),
            candidate(3, Some("y")),
            candidate(4, Some("a")),
        ];
        candidates[0].part = Some("r.0".into());
        candidates[2].part = Some("r.0".into());
        let packed = pack(candidates, &spec(10, 0), 1, 1_000);
        assert_eq!(seqs(&packed), [vec![1, 3]]);
        // A full batch leaves a key out whole.
        let candidates = vec![
            candidate(1, Some("a")),
            candidate(2, Some("a")),
            candidate(3, Some("b")),
            candidate(4, Some("b")),
        ];
        let packed = pack(candidates, &spec(2, 0), 1, 1_000);
        assert_eq!(seqs(&packed), [vec![1, 2]], "b waits whole");
    }

    #[test]
    fn the_halves_of_a_bisected_batch_and_replays_go_apart() {
        let mut candidates: Vec<_> = (1..=4).map(|s| candidate(s, None)).collect();
        candidates[0].part = Some("r.0".into());
        candidates[1].part = Some("r.0".into());
        candidates[2].part = Some("r.1".into());
        candidates[3].delivery.replay = 7;
        let packed = pack(candidates, &spec(10, 0), 10, 1_000);
        assert_eq!(seqs(&packed), [vec![1, 2], vec![3], vec![4]]);
        // A key split across halves: its record in the second half waits for the first.
        let mut candidates = vec![candidate(1, Some("a")), candidate(2, Some("a"))];
        candidates[0].part = Some("r.0".into());
        candidates[1].part = Some("r.1".into());
        let packed = pack(candidates, &spec(10, 0), 10, 1_000);
        assert_eq!(seqs(&packed), [vec![1]]);
    }

    #[test]
    fn a_batch_short_of_its_size_waits_for_its_window() {
        let candidates = (1..=2).map(|s| candidate(s, None)).collect::<Vec<_>>();
        let packed = pack(candidates.clone(), &spec(3, 500), 10, 1_200);
        assert!(packed.batches.is_empty());
        assert_eq!(packed.held_until, Some(1_500));
        let packed = pack(candidates.clone(), &spec(3, 500), 10, 1_500);
        assert_eq!(seqs(&packed), [vec![1, 2]]);
        // Full: it goes before its window has passed.
        let packed = pack(candidates.clone(), &spec(2, 500), 10, 1_200);
        assert_eq!(seqs(&packed), [vec![1, 2]]);
        // A retry goes at once.
        let mut retried = candidates;
        retried[1].delivery.attempt = 2;
        let packed = pack(retried, &spec(3, 500), 10, 1_200);
        assert_eq!(seqs(&packed), [vec![1, 2]]);
    }
}
