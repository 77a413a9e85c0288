//! The event envelope: what the journal stores for every committed change, and what triggers,
//! handler payloads and tracing read back.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::names::{BucketName, FunctionName, ScheduleName, TableName};

/// A stable, time-ordered event id (UUIDv7). Handlers use it for idempotency: a redelivered
/// event carries the same id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(Uuid);

impl EventId {
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// The id without its hyphens, as DynamoDB Streams writes an `eventID`.
    pub fn simple(&self) -> impl fmt::Display + use<> {
        self.0.simple()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for EventId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// Where a change happened. Stored and locked as `{"type": "bucket", "name": "photos"}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "name", rename_all = "lowercase")]
pub enum Source {
    Bucket(BucketName),
    Table(TableName),
    /// An asynchronous invocation queued for a function.
    Function(FunctionName),
    /// A schedule's run.
    Schedule(ScheduleName),
}

impl Source {
    /// The source's type as the journal stores it: `bucket`, `table` or `function`.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Bucket(_) => "bucket",
            Source::Table(_) => "table",
            Source::Function(_) => "function",
            Source::Schedule(_) => "schedule",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Source::Bucket(b) => b.as_str(),
            Source::Table(t) => t.as_str(),
            Source::Function(f) => f.as_str(),
            Source::Schedule(s) => s.as_str(),
        }
    }

    /// Rebuilds a source from its stored parts.
    pub fn from_parts(kind: &str, name: &str) -> Result<Self, String> {
        let wrap = |e: crate::InvalidName| e.to_string();
        match kind {
            "bucket" => BucketName::new(name).map(Source::Bucket).map_err(wrap),
            "table" => TableName::new(name).map(Source::Table).map_err(wrap),
            "function" => FunctionName::new(name).map(Source::Function).map_err(wrap),
            "schedule" => ScheduleName::new(name).map(Source::Schedule).map_err(wrap),
            other => Err(format!("unknown event source type {other:?}")),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind(), self.name())
    }
}

/// What happened. The string forms are the names AWS uses in S3 and DynamoDB-Streams events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum EventKind {
    ObjectCreatedPut,
    ObjectCreatedCopy,
    ObjectCreatedCompleteMultipartUpload,
    ObjectRemovedDelete,
    RowInsert,
    RowModify,
    RowRemove,
    /// An asynchronous (`Event`) invocation.
    Invoke,
    /// A schedule's run.
    ScheduledEvent,
}

impl EventKind {
    pub const ALL: [EventKind; 9] = [
        EventKind::ObjectCreatedPut,
        EventKind::ObjectCreatedCopy,
        EventKind::ObjectCreatedCompleteMultipartUpload,
        EventKind::ObjectRemovedDelete,
        EventKind::RowInsert,
        EventKind::RowModify,
        EventKind::RowRemove,
        EventKind::Invoke,
        EventKind::ScheduledEvent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ObjectCreatedPut => "ObjectCreated:Put",
            EventKind::ObjectCreatedCopy => "ObjectCreated:Copy",
            EventKind::ObjectCreatedCompleteMultipartUpload => {
                "ObjectCreated:CompleteMultipartUpload"
            }
            EventKind::ObjectRemovedDelete => "ObjectRemoved:Delete",
            EventKind::RowInsert => "INSERT",
            EventKind::RowModify => "MODIFY",
            EventKind::RowRemove => "REMOVE",
            EventKind::Invoke => "Invoke",
            EventKind::ScheduledEvent => "Scheduled Event",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<EventKind> for &'static str {
    fn from(kind: EventKind) -> Self {
        kind.as_str()
    }
}

impl TryFrom<String> for EventKind {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl FromStr for EventKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown event kind {s:?}"))
    }
}

/// Which event and invocation caused a write, and how many handler hops separate it from a
/// write that no handler made. Loop protection reads `hops`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineage {
    pub cause_event: Option<EventId>,
    pub cause_invocation: Option<String>,
    pub hops: u32,
}

impl Lineage {
    /// A write made by a client, not by a handler.
    pub fn root() -> Self {
        Self::default()
    }

    /// A write made by a handler that was invoked (as `invocation`) for `event`.
    pub fn caused_by(event: &Event, invocation: impl Into<String>) -> Self {
        Self {
            cause_event: Some(event.id),
            cause_invocation: Some(invocation.into()),
            hops: event.lineage.hops + 1,
        }
    }
}

/// An event as a producer hands it to the journal; the journal adds sequence, id and time.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub source: Source,
    pub kind: EventKind,
    /// The object key or the row's primary key in its canonical form; events of one key are
    /// ordered by their sequence.
    pub key: String,
    pub payload: Value,
    pub lineage: Lineage,
}

/// A committed journal record.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Global, gap-free, increasing in commit order.
    pub seq: u64,
    pub id: EventId,
    pub source: Source,
    pub kind: EventKind,
    pub key: String,
    /// Commit time, milliseconds since the Unix epoch.
    pub time_ms: i64,
    pub payload: Value,
    pub lineage: Lineage,
}

impl Event {
    /// The object change this event records, for object events.
    pub fn object_change(&self) -> Result<ObjectChange, serde_json::Error> {
        ObjectChange::deserialize(&self.payload)
    }

    /// The mark of the backfill that journaled this event, if one did: a backfill's events
    /// stand for objects and rows that exist, are delivered only to its trigger, and carry the
    /// mark in their payload's [`BACKFILL_FIELD`].
    pub fn backfill(&self) -> Option<&str> {
        self.payload.get(BACKFILL_FIELD)?.as_str()
    }

    /// The row change this event records, for table events.
    pub fn row_change(&self) -> Result<RowChange, serde_json::Error> {
        RowChange::deserialize(&self.payload)
    }

    /// [`Event::row_change`] borrowed from the payload, not copied out of it: a batch reads
    /// one per record, and matching one per event.
    pub fn row_change_ref(&self) -> Result<RowChangeRef<'_>, serde_json::Error> {
        use serde::de::Error;
        let image = |field: &'static str| match self.payload.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(image)) => Ok(Some(image)),
            Some(_) => Err(serde_json::Error::custom(format!(
                "`{field}` is neither an object nor null"
            ))),
        };
        Ok(RowChangeRef {
            keys: image("keys")?.ok_or_else(|| serde_json::Error::missing_field("keys"))?,
            new: image("new")?,
            old: image("old")?,
        })
    }
}

/// The payload field that marks a backfill's events (see [`Event::backfill`]).
pub const BACKFILL_FIELD: &str = "eddyBackfill";

/// The payload of an object event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectChange {
    pub size: u64,
    /// MD5 hex for single-part objects, `md5-of-md5s-N` for multipart ones; unquoted.
    pub etag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// The payload of a row event: the key, the image after the change (none for REMOVE) and the
/// image before it (none for INSERT).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RowChange {
    pub keys: Map<String, Value>,
    pub new: Option<Map<String, Value>>,
    pub old: Option<Map<String, Value>>,
}

impl From<RowChange> for Value {
    /// The payload, with the key and images moved in (`serde_json::to_value` copies them).
    fn from(change: RowChange) -> Self {
        let image = |image: Option<Map<String, Value>>| image.map_or(Value::Null, Value::Object);
        Value::Object(Map::from_iter([
            ("keys".to_string(), Value::Object(change.keys)),
            ("new".to_string(), image(change.new)),
            ("old".to_string(), image(change.old)),
        ]))
    }
}

/// A [`RowChange`] borrowed from an event's payload.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowChangeRef<'a> {
    pub keys: &'a Map<String, Value>,
    pub new: Option<&'a Map<String, Value>>,
    pub old: Option<&'a Map<String, Value>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_aws_names() {
        for kind in EventKind::ALL {
            assert_eq!(kind.as_str().parse::<EventKind>().unwrap(), kind);
        }
        assert!("s3:ObjectCreated:Put".parse::<EventKind>().is_err());
    }

    #[test]
    fn sources_round_trip() {
        let s = Source::from_parts("bucket", "photos").unwrap();
        assert_eq!(s.to_string(), "bucket/photos");
        assert!(Source::from_parts("table", "Bad Name").is_err());
        assert!(Source::from_parts("queue", "x").is_err());
    }

    fn row_event(payload: Value) -> Event {
        Event {
            seq: 1,
            id: EventId::generate(),
            source: Source::from_parts("table", "orders").unwrap(),
            kind: EventKind::RowModify,
            key: "1".into(),
            time_ms: 0,
            payload,
            lineage: Lineage::default(),
        }
    }

    #[test]
    fn a_row_change_is_the_payload_serde_writes_and_is_borrowed_as_serde_reads_it() {
        let image = |v: Value| v.as_object().cloned();
        let changes = [
            RowChange {
                keys: image(serde_json::json!({"id": 1})).unwrap(),
                new: image(serde_json::json!({"id": 1, "tags": ["a"], "m": {"k": null}})),
                old: image(serde_json::json!({"id": 1})),
            },
            RowChange {
                keys: image(serde_json::json!({"id": 2})).unwrap(),
                new: None,
                old: image(serde_json::json!({"id": 2})),
            },
        ];
        for change in changes {
            let payload = Value::from(change.clone());
            assert_eq!(payload, serde_json::to_value(&change).unwrap());
            let event = row_event(payload);
            let borrowed = event.row_change_ref().unwrap();
            let read = event.row_change().unwrap();
            assert_eq!(
                (Some(borrowed.keys), borrowed.new, borrowed.old),
                (Some(&read.keys), read.new.as_ref(), read.old.as_ref())
            );
        }
    }

    #[test]
    fn a_row_change_that_serde_would_refuse_is_refused_borrowed() {
        let refused = [
            serde_json::json!({"new": {"id": 1}}),
            serde_json::json!({"keys": null}),
            serde_json::json!({"keys": {"id": 1}, "new": [1]}),
            serde_json::json!({"keys": {"id": 1}, "old": "x"}),
            serde_json::json!("a string"),
        ];
        for payload in refused {
            let event = row_event(payload.clone());
            assert!(event.row_change().is_err(), "serde reads {payload}");
            assert!(event.row_change_ref().is_err(), "borrowed {payload}");
        }
    }

    #[test]
    fn event_ids_are_time_ordered() {
        let a = EventId::generate();
        let b = EventId::generate();
        assert!(a < b);
        assert_eq!(a.to_string().parse::<EventId>().unwrap(), a);
    }
}
