//! DynamoDB-Streams records, written straight from a row event's change: a batch of hundreds of
//! records goes to a handler in another process as JSON text, and building each record as a
//! `serde_json::Value` tree first — every attribute a small map, then serialised and dropped —
//! cost more than writing the text itself (docs/performance.md, "DynamoDB records written
//! straight to JSON").
//!
//! Fields are written in the order a `Value` keeps them (sorted by name), so a record written
//! here and the same record as a `Value` serialise to the same bytes.

use eddy_core::{Event, RowChangeRef, Source};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};

use crate::{ACCOUNT_ID, FormatError, REGION, bad_payload, json_len, wrong_source};

/// The DynamoDB-Streams record of a row event, ready to serialise.
pub struct DynamoDbRecord<'a> {
    event: &'a Event,
    table: &'a str,
    change: RowChangeRef<'a>,
    stream_label: &'a str,
}

impl<'a> DynamoDbRecord<'a> {
    /// The record of `event`, a row event. `stream_label` is the stream's creation time as
    /// DynamoDB writes it (`2026-11-25T10:00:00.000`).
    pub fn new(event: &'a Event, stream_label: &'a str) -> Result<Self, FormatError> {
        let Source::Table(table) = &event.source else {
            return Err(wrong_source(event, "DynamoDB-Streams"));
        };
        let change = event.row_change_ref().map_err(|e| bad_payload(event, e))?;
        Ok(Self {
            event,
            table: table.as_str(),
            change,
            stream_label,
        })
    }

    /// The record as a JSON value.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a record always serialises")
    }
}

impl Serialize for DynamoDbRecord<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let event = self.event;
        let mut record = serializer.serialize_map(Some(7))?;
        record.serialize_entry("awsRegion", REGION)?;
        record.serialize_entry("dynamodb", &StreamRecord(self))?;
        record.serialize_entry("eventID", &format_args!("{}", event.id.simple()))?;
        record.serialize_entry("eventName", event.kind.as_str())?;
        record.serialize_entry("eventSource", "aws:dynamodb")?;
        record.serialize_entry(
            "eventSourceARN",
            &format_args!(
                "arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{}/stream/{}",
                self.table, self.stream_label
            ),
        )?;
        record.serialize_entry("eventVersion", "1.1")?;
        record.end()
    }
}

/// The `dynamodb` part of a record: the key, the images and where the change is in the stream.
struct StreamRecord<'r, 'a>(&'r DynamoDbRecord<'a>);

impl Serialize for StreamRecord<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let DynamoDbRecord { event, change, .. } = self.0;
        let keys = Item(change.keys);
        let new = change.new.map(Item);
        let old = change.old.map(Item);
        let size =
            json_len(&keys) + new.as_ref().map_or(0, json_len) + old.as_ref().map_or(0, json_len);
        let mut record = serializer.serialize_map(None)?;
        record.serialize_entry("ApproximateCreationDateTime", &(event.time_ms / 1000))?;
        record.serialize_entry("Keys", &keys)?;
        if let Some(new) = &new {
            record.serialize_entry("NewImage", new)?;
        }
        if let Some(old) = &old {
            record.serialize_entry("OldImage", old)?;
        }
        record.serialize_entry("SequenceNumber", &format_args!("{:021}", event.seq))?;
        record.serialize_entry("SizeBytes", &size)?;
        record.serialize_entry("StreamViewType", "NEW_AND_OLD_IMAGES")?;
        record.end()
    }
}

/// A DynamoDB item: each attribute of a row as a typed attribute value.
struct Item<'a>(&'a Map<String, Value>);

impl Serialize for Item<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, AttributeValue(v))))
    }
}

/// A JSON value as a DynamoDB attribute value: `S`, `N` (as a string), `BOOL`, `NULL`, `L`, `M`.
struct AttributeValue<'a>(&'a Value);

impl Serialize for AttributeValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut typed = serializer.serialize_map(Some(1))?;
        match self.0 {
            Value::Null => typed.serialize_entry("NULL", &true)?,
            Value::Bool(b) => typed.serialize_entry("BOOL", b)?,
            Value::Number(n) => typed.serialize_entry("N", &number_text(n))?,
            Value::String(s) => typed.serialize_entry("S", s)?,
            Value::Array(items) => typed.serialize_entry("L", &List(items))?,
            Value::Object(map) => typed.serialize_entry("M", &Item(map))?,
        }
        typed.end()
    }
}

struct List<'a>(&'a [Value]);

impl Serialize for List<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut list = serializer.serialize_seq(Some(self.0.len()))?;
        for item in self.0 {
            list.serialize_element(&AttributeValue(item))?;
        }
        list.end()
    }
}

/// DynamoDB writes numbers without a trailing `.0`.
fn number_text(n: &serde_json::Number) -> String {
    let text = n.to_string();
    match text.strip_suffix(".0") {
        Some(whole) => whole.to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use eddy_core::{EventId, EventKind, Lineage, TableName};
    use serde_json::json;

    use super::*;

    #[test]
    fn values_become_typed_attributes() {
        let v = json!({"s": "x", "i": 1, "f": 2.5, "whole": 10.0, "b": true, "n": null, "l": [1, "a"], "m": {"k": false}});
        assert_eq!(
            serde_json::to_value(Item(v.as_object().unwrap())).unwrap(),
            json!({
                "s": {"S": "x"}, "i": {"N": "1"}, "f": {"N": "2.5"}, "whole": {"N": "10"}, "b": {"BOOL": true},
                "n": {"NULL": true}, "l": {"L": [{"N": "1"}, {"S": "a"}]}, "m": {"M": {"k": {"BOOL": false}}}
            })
        );
    }

    /// The text written straight from the event is the text of the record as a `Value`: the
    /// same fields in the same order (a `Value` keeps its keys sorted), so what a handler in
    /// another process reads is what an in-process handler is given.
    #[test]
    fn a_record_written_straight_is_the_record_as_a_value() {
        let row = json!({"id": 7, "name": "zoë \"q\"\n", "n": -1.5e300, "whole": 3.0, "none": null,
                         "nested": {"b": [true, {"z": []}], "a": {}}, "Ünicode ключ": "x"});
        let images = [
            (EventKind::RowInsert, Some(row.clone()), None),
            (
                EventKind::RowModify,
                Some(row.clone()),
                Some(json!({"id": 7})),
            ),
            (EventKind::RowRemove, None, Some(row)),
        ];
        for (seq, (kind, new, old)) in images.into_iter().enumerate() {
            let event = Event {
                seq: seq as u64 * 1_000_003,
                id: EventId::generate(),
                source: Source::Table(TableName::new("orders").unwrap()),
                kind,
                key: "7".into(),
                time_ms: 1_795_600_800_123,
                payload: json!({"keys": {"id": 7}, "new": new, "old": old}),
                lineage: Lineage::root(),
            };
            let record = DynamoDbRecord::new(&event, "2026-11-25T09:00:00.000").unwrap();
            let value = record.to_value();
            assert_eq!(
                String::from_utf8(serde_json::to_vec(&record).unwrap()).unwrap(),
                serde_json::to_string(&value).unwrap(),
                "{kind:?}"
            );
            let images: usize = ["Keys", "NewImage", "OldImage"]
                .iter()
                .filter_map(|k| value["dynamodb"].get(*k))
                .map(json_len)
                .sum();
            assert_eq!(value["dynamodb"]["SizeBytes"], images, "{kind:?}");
        }
    }
}
