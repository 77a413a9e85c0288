//! The event a handler receives for a delivery, in the trigger's format.

use eddy_core::{Event, Source};
use eddy_events::{DynamoDbRecord, FormatError, envelope, plain_record, s3_record};
use eddy_subscriptions::{Format, TriggerSpec};
use serde::{Serialize, Serializer};
use serde_json::Value;

/// The stream label when the table's creation time is not known.
pub(crate) const DEFAULT_STREAM_LABEL: &str = "1970-01-01T00:00:00.000";

/// The handler's event: an asynchronous invocation's or a schedule run's own payload, or the
/// trigger's record.
/// `trigger_name` stands in when the trigger is gone (the app was reloaded since).
pub(crate) fn build(
    event: &Event,
    trigger: Option<&TriggerSpec>,
    trigger_name: &str,
    stream_label: Option<&str>,
) -> Result<Value, FormatError> {
    if let Source::Function(_) | Source::Schedule(_) = event.source {
        return Ok(event.payload.clone());
    }
    let record = record(event, trigger, trigger_name, stream_label)?.into_value();
    Ok(match trigger.map(|t| t.format).unwrap_or_default() {
        Format::Plain => record,
        Format::Aws => envelope(vec![record]),
    })
}

/// One record of a trigger's event: a DynamoDB-Streams record, ready to be written straight
/// from its event, or an S3 or plain one, built as a value.
pub(crate) enum Record<'a> {
    DynamoDb(DynamoDbRecord<'a>),
    Value(Value),
}

impl Record<'_> {
    pub fn into_value(self) -> Value {
        match self {
            Self::DynamoDb(record) => record.to_value(),
            Self::Value(value) => value,
        }
    }
}

impl Serialize for Record<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::DynamoDb(record) => record.serialize(serializer),
            Self::Value(value) => value.serialize(serializer),
        }
    }
}

/// One record of a trigger's event: an S3 or DynamoDB-Streams record, or eddy's plain one.
pub(crate) fn record<'a>(
    event: &'a Event,
    trigger: Option<&TriggerSpec>,
    trigger_name: &str,
    stream_label: Option<&'a str>,
) -> Result<Record<'a>, FormatError> {
    Ok(match trigger.map(|t| t.format).unwrap_or_default() {
        Format::Plain => Record::Value(plain_record(event)?),
        Format::Aws => match event.source {
            Source::Table(_) => Record::DynamoDb(DynamoDbRecord::new(
                event,
                stream_label.unwrap_or(DEFAULT_STREAM_LABEL),
            )?),
            _ => Record::Value(s3_record(event, trigger_name)?),
        },
    })
}

/// Marks a replay's event with its id (`eddyReplay`), and a backfill's with `eddyBackfill`; an
/// original delivery's (replay 0) is left as it is.
pub(crate) fn mark_replay(payload: &mut Value, replay: i64, backfill: bool) {
    if replay == 0 {
        return;
    }
    if let Some(fields) = payload.as_object_mut() {
        fields.insert("eddyReplay".into(), replay.into());
        if backfill {
            fields.insert(eddy_core::BACKFILL_FIELD.into(), true.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_replays_are_marked() {
        let mut original = json!({"Records": []});
        mark_replay(&mut original, 0, true);
        assert_eq!(original, json!({"Records": []}));
        let mut backfilled = json!({"Records": []});
        mark_replay(&mut backfilled, 4, true);
        assert_eq!(
            backfilled,
            json!({"Records": [], "eddyReplay": 4, "eddyBackfill": true})
        );
    }
}
