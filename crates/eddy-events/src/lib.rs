//! The events handlers receive, built from journal records:
//!
//! - [`s3_record`]: an S3 event notification record, exactly as S3 sends one to Lambda;
//! - [`DynamoDbRecord`] ([`dynamodb_record`] as a value): a DynamoDB-Streams record with typed
//!   attribute values;
//! - [`plain_record`]: eddy's simpler record for handlers that were not written for AWS;
//! - [`scheduled_event`]: the event EventBridge sends when a schedule runs;
//! - [`destination`]: the records Lambda sends to an invocation's destinations.
//!
//! Handlers receive records wrapped as `{"Records": [...]}` ([`envelope`]).

pub mod destination;
mod dynamodb;

use eddy_core::{Event, EventKind, Source};
use serde::Serialize;
use serde_json::{Map, Value, json};

pub use dynamodb::DynamoDbRecord;

pub use eddy_core::time::iso8601_millis;

/// The region eddy reports in ARNs and records.
pub const REGION: &str = "us-east-1";
/// The account id eddy reports in ARNs.
pub const ACCOUNT_ID: &str = "000000000000";
/// The principal eddy reports as the owner and the requester.
pub const PRINCIPAL_ID: &str = "EDDY";

/// An event that cannot be shown in the requested shape.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("a {kind} event from {origin} has no {format} form")]
    WrongSource {
        kind: EventKind,
        origin: String,
        format: &'static str,
    },
    #[error("event {seq} has a payload that does not fit its kind: {reason}")]
    BadPayload { seq: u64, reason: String },
}

/// Wraps records the way Lambda delivers them.
pub fn envelope(records: Vec<Value>) -> Value {
    tagged("Records", Value::Array(records))
}

/// `{tag: value}`, with `value` moved in. (`json!` would copy a `Value` it is given: it
/// serialises every expression into a new tree.)
fn tagged(tag: &str, value: Value) -> Value {
    Value::Object(Map::from_iter([(tag.to_string(), value)]))
}

/// The S3 notification record for an object event. `configuration_id` names the trigger.
pub fn s3_record(event: &Event, configuration_id: &str) -> Result<Value, FormatError> {
    let Source::Bucket(bucket) = &event.source else {
        return Err(wrong_source(event, "S3"));
    };
    let mut object = Map::new();
    object.insert("key".into(), Value::String(encode_s3_key(&event.key)));
    if event.kind != EventKind::ObjectRemovedDelete {
        let change = event.object_change().map_err(|e| bad_payload(event, e))?;
        object.insert("size".into(), json!(change.size));
        object.insert("eTag".into(), json!(change.etag));
    }
    object.insert("sequencer".into(), json!(format!("{:016X}", event.seq)));
    let request_id = event.id.to_string().replace('-', "").to_uppercase();
    Ok(json!({
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": iso8601_millis(event.time_ms),
        "eventName": event.kind.as_str(),
        "userIdentity": { "principalId": PRINCIPAL_ID },
        "requestParameters": { "sourceIPAddress": "127.0.0.1" },
        "responseElements": {
            "x-amz-request-id": &request_id[..16],
            "x-amz-id-2": request_id,
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": {
                "name": bucket.as_str(),
                "ownerIdentity": { "principalId": PRINCIPAL_ID },
                "arn": format!("arn:aws:s3:::{bucket}"),
            },
            "object": object,
        },
    }))
}

/// The DynamoDB-Streams record for a row event, as a JSON value. `stream_label` is the
/// stream's creation time as DynamoDB writes it (`2026-11-25T10:00:00.000`).
pub fn dynamodb_record(event: &Event, stream_label: &str) -> Result<Value, FormatError> {
    Ok(DynamoDbRecord::new(event, stream_label)?.to_value())
}

/// The length of `value` as JSON, counted without writing it anywhere.
pub fn json_len(value: &impl Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a value to a writer that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// The EventBridge Scheduled Event for a run of schedule `name` due at `time_ms`, as a
/// scheduled rule sends it to Lambda; `id` is the run's own.
pub fn scheduled_event(name: &str, time_ms: i64, id: &str) -> Value {
    let time = iso8601_millis(time_ms);
    json!({
        "version": "0",
        "id": id,
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        // EventBridge gives the time to the second.
        "time": format!("{}Z", &time[..19]),
        "region": REGION,
        "resources": [format!("arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{name}")],
        "detail": {},
    })
}

/// eddy's plain record: the change without AWS's wrapping or type annotations.
pub fn plain_record(event: &Event) -> Result<Value, FormatError> {
    let common = json!({
        "event_id": event.id.to_string(),
        "sequence": event.seq,
        "time": iso8601_millis(event.time_ms),
    });
    let mut record = match &event.source {
        Source::Bucket(bucket) => {
            let (kind, _) = event
                .kind
                .as_str()
                .split_once(':')
                .unwrap_or((event.kind.as_str(), ""));
            let mut r = json!({ "type": kind, "event_name": event.kind.as_str(), "bucket": bucket.as_str(), "key": event.key });
            if event.kind != EventKind::ObjectRemovedDelete {
                let change = event.object_change().map_err(|e| bad_payload(event, e))?;
                r["size"] = json!(change.size);
                r["etag"] = json!(change.etag);
            }
            r
        }
        Source::Table(table) => {
            let change = event.row_change_ref().map_err(|e| bad_payload(event, e))?;
            json!({
                "type": event.kind.as_str(),
                "table": table.as_str(),
                "key": change.keys,
                "record": change.new,
                "old_record": change.old,
            })
        }
        Source::Function(_) | Source::Schedule(_) => return Err(wrong_source(event, "plain")),
    };
    let map = record.as_object_mut().expect("records are objects");
    map.extend(common.as_object().expect("an object").clone());
    Ok(record)
}

/// Encodes an object key as S3 does in event notifications (form encoding): letters, digits,
/// `-`, `_`, `.`, `*` and `/` stay, a space becomes `+`, every other byte of the UTF-8 becomes
/// `%XX`.
pub fn encode_s3_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' | b'/' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn wrong_source(event: &Event, format: &'static str) -> FormatError {
    FormatError::WrongSource {
        kind: event.kind,
        origin: event.source.to_string(),
        format,
    }
}

fn bad_payload(event: &Event, e: serde_json::Error) -> FormatError {
    FormatError::BadPayload {
        seq: event.seq,
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_len_is_the_serialized_length() {
        let value = json!({"Records": [{"a": "ü", "n": 12.5, "l": [null, true]}]});
        assert_eq!(json_len(&value), serde_json::to_vec(&value).unwrap().len());
    }

    #[test]
    fn keys_are_encoded_as_s3_encodes_them() {
        let cases = [
            ("uploads/red flower.jpg", "uploads/red+flower.jpg"),
            ("a+b", "a%2Bb"),
            ("100%", "100%25"),
            ("ü/ключ", "%C3%BC/%D0%BA%D0%BB%D1%8E%D1%87"),
            ("(1),'x'=y:z~", "%281%29%2C%27x%27%3Dy%3Az%7E"),
            ("safe-_.*", "safe-_.*"),
        ];
        for (key, encoded) in cases {
            assert_eq!(encode_s3_key(key), encoded, "{key}");
        }
    }

    #[test]
    fn a_schedule_runs_with_eventbridges_scheduled_event() {
        let sent = scheduled_event("nightly", 1_796_126_400_123, "run-1");
        let seen: aws_lambda_events::cloudwatch_events::CloudWatchEvent =
            serde_json::from_value(sent.clone()).unwrap();
        assert_eq!(seen.version.as_deref(), Some("0"));
        assert_eq!(seen.id.as_deref(), Some("run-1"));
        assert_eq!(seen.detail_type.as_deref(), Some("Scheduled Event"));
        assert_eq!(seen.source.as_deref(), Some("aws.events"));
        assert_eq!(seen.account_id.as_deref(), Some(ACCOUNT_ID));
        assert_eq!(seen.region.as_deref(), Some(REGION));
        assert_eq!(
            seen.resources,
            ["arn:aws:events:us-east-1:000000000000:rule/nightly"]
        );
        assert_eq!(seen.detail, Some(json!({})));
        assert_eq!(sent["time"], "2026-12-01T12:00:00Z", "to the second");
    }
}
