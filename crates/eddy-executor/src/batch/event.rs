//! A batch's event, its records added one by one: `{"Records": [...]}`, as DynamoDB Streams
//! and S3 send them (eddy's plain records likewise), marked when they are a replay's or a
//! backfill's.
//!
//! For a handler in another process the event is JSON text from the start, and a
//! DynamoDB-Streams record is written into it straight from its event: a batch is never built
//! as a tree of values only to be serialised and dropped. A handler in this process is given
//! values. Both forms are the same JSON, byte for byte.

use eddy_core::Event;
use eddy_events::FormatError;
use eddy_subscriptions::TriggerSpec;
use serde_json::{Map, Value};

use crate::payload;
use crate::runtime::Payload;

/// The opening of a batch's event as text, before its first record.
const OPENING: &[u8] = br#"{"Records":["#;

/// A batch's event as its records are added.
pub(crate) enum BatchEvent {
    Values(Vec<Value>),
    Text {
        json: Vec<u8>,
        /// Where the last record added begins (after its comma), to take it out again.
        last: usize,
    },
}

/// Where a batch's records come from: its trigger (none once the app no longer has it) and
/// the trigger's name.
pub(crate) struct RecordsOf<'a> {
    pub trigger: Option<&'a TriggerSpec>,
    pub trigger_name: &'a str,
}

impl BatchEvent {
    /// An empty batch: as text (`as_text`), or as values for a handler in this process.
    pub fn new(as_text: bool) -> Self {
        if as_text {
            Self::Text {
                json: OPENING.to_vec(),
                last: OPENING.len(),
            }
        } else {
            Self::Values(Vec::new())
        }
    }

    /// Adds `event`'s record; returns its length as JSON.
    pub fn push(
        &mut self,
        of: &RecordsOf<'_>,
        event: &Event,
        stream_label: Option<&str>,
    ) -> Result<usize, FormatError> {
        match self {
            Self::Values(records) => {
                let record =
                    payload::record(event, of.trigger, of.trigger_name, stream_label)?.into_value();
                let length = eddy_events::json_len(&record);
                records.push(record);
                Ok(length)
            }
            Self::Text { json, last } => {
                let record = payload::record(event, of.trigger, of.trigger_name, stream_label)?;
                if json.len() > OPENING.len() {
                    json.push(b',');
                }
                let start = json.len();
                serde_json::to_writer(&mut *json, &record).expect("a record always serialises");
                *last = start;
                Ok(json.len() - start)
            }
        }
    }

    /// Takes out the record added last (one that would make the event too large).
    pub fn pop(&mut self) {
        match self {
            Self::Values(records) => {
                records.pop();
            }
            Self::Text { json, last } => {
                // With its comma, if it has one.
                let start = if *last > OPENING.len() {
                    *last - 1
                } else {
                    *last
                };
                json.truncate(start);
            }
        }
    }

    /// The event, marked with its replay (0 for an original delivery) and as a backfill's.
    pub fn finish(self, replay: i64, backfill: bool) -> Payload {
        match self {
            Self::Values(records) => {
                let mut event = eddy_events::envelope(records);
                payload::mark_replay(&mut event, replay, backfill);
                Payload::Value(event)
            }
            Self::Text { mut json, .. } => {
                json.push(b']');
                // The marks as `mark_replay` makes them, after `Records` as a value keeps its
                // fields (sorted by name: they all begin with `eddy`).
                let mut marks = Value::Object(Map::new());
                payload::mark_replay(&mut marks, replay, backfill);
                for (name, mark) in marks.as_object().into_iter().flatten() {
                    json.push(b',');
                    serde_json::to_writer(&mut json, name).expect("into memory");
                    json.push(b':');
                    serde_json::to_writer(&mut json, mark).expect("into memory");
                }
                json.push(b'}');
                Payload::Json(json)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use eddy_core::{EventId, EventKind, Lineage, Source, TableName};
    use serde_json::json;

    use super::*;

    fn row_event(seq: u64, payload: Value) -> Event {
        Event {
            seq,
            id: EventId::generate(),
            source: Source::Table(TableName::new("orders").unwrap()),
            kind: EventKind::RowInsert,
            key: seq.to_string(),
            time_ms: 1_795_600_800_000 + seq as i64,
            payload,
            lineage: Lineage::root(),
        }
    }

    fn row(seq: u64) -> Value {
        json!({"keys": {"id": seq}, "new": {"id": seq, "note": "ü \"x\"", "n": 1.0}, "old": null})
    }

    /// Both forms of a batch, built alike: records added, one taken out again, one that cannot
    /// be shown refused, and the marks.
    fn both(replay: i64, backfill: bool) -> (Payload, Payload) {
        let of = RecordsOf {
            trigger: None,
            trigger_name: "t",
        };
        let events: Vec<Event> = (1..=4).map(|seq| row_event(seq, row(seq))).collect();
        let broken = row_event(9, json!({"new": {"id": 9}}));
        let build = |as_text| {
            let mut batch = BatchEvent::new(as_text);
            let mut lengths = Vec::new();
            for event in &events[..3] {
                lengths.push(batch.push(&of, event, None).unwrap());
            }
            batch.pop();
            assert!(batch.push(&of, &broken, None).is_err(), "no keys");
            lengths.push(batch.push(&of, &events[3], None).unwrap());
            (batch.finish(replay, backfill), lengths)
        };
        let (text, text_lengths) = build(true);
        let (values, value_lengths) = build(false);
        assert_eq!(text_lengths, value_lengths);
        (text, values)
    }

    #[test]
    fn a_batch_as_text_is_the_batch_as_values() {
        for (replay, backfill) in [(0, false), (0, true), (7, false), (7, true)] {
            let (text, values) = both(replay, backfill);
            let Payload::Json(json) = &text else {
                panic!("text")
            };
            assert_eq!(
                String::from_utf8(json.clone()).unwrap(),
                String::from_utf8(values.to_bytes()).unwrap(),
                "replay {replay}, backfill {backfill}"
            );
            let event = text.into_value();
            let seqs: Vec<&Value> = event["Records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| &r["dynamodb"]["SequenceNumber"])
                .collect();
            assert_eq!(
                seqs,
                [
                    &json!("000000000000000000001"),
                    &json!("000000000000000000002"),
                    &json!("000000000000000000004")
                ]
            );
        }
    }

    #[test]
    fn the_first_record_taken_out_leaves_an_empty_batch() {
        let of = RecordsOf {
            trigger: None,
            trigger_name: "t",
        };
        let mut batch = BatchEvent::new(true);
        batch.push(&of, &row_event(1, row(1)), None).unwrap();
        batch.pop();
        assert_eq!(batch.finish(0, false).into_value(), json!({"Records": []}));
    }
}
