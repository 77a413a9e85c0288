//! The records Lambda sends to a destination: the invocation record of an asynchronous
//! invocation (success or failure), and the failure record of a stream's event source mapping,
//! which names the records given up on (`DDBStreamBatchInfo`) rather than carrying them.

use serde_json::{Map, Value, json};

use crate::{ACCOUNT_ID, REGION, iso8601_millis};

/// How an asynchronous invocation ended, as its record's `condition` says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    Success,
    RetriesExhausted,
    EventAgeExceeded,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Success => "Success",
            Condition::RetriesExhausted => "RetriesExhausted",
            Condition::EventAgeExceeded => "EventAgeExceeded",
        }
    }
}

/// What the function's last attempt answered, when it ran.
#[derive(Clone, Debug, PartialEq)]
pub enum Response {
    /// Its result.
    Result(Value),
    /// Its error: `errorType`, `errorMessage` (Lambda's `functionError` is `Unhandled`).
    Error { error_type: String, message: String },
}

/// The context both records share: which request, of which function, how it ended, after how
/// many attempts; and, when it ran, what it answered.
pub struct Outcome<'a> {
    pub request_id: &'a str,
    pub function: &'a str,
    pub condition: &'a str,
    pub attempts: u32,
    pub response: Option<&'a Response>,
    pub now_ms: i64,
}

impl Outcome<'_> {
    /// The fields both records have; `function_arn` as each names the function (an
    /// invocation record with its version, a stream's record without).
    fn common(&self, function_arn: String) -> Map<String, Value> {
        let mut record = Map::new();
        record.insert("version".into(), json!("1.0"));
        record.insert("timestamp".into(), json!(iso8601_millis(self.now_ms)));
        record.insert(
            "requestContext".into(),
            json!({
                "requestId": self.request_id,
                "functionArn": function_arn,
                "condition": self.condition,
                "approximateInvokeCount": self.attempts,
            }),
        );
        if let Some(response) = self.response {
            let mut context = json!({"statusCode": 200, "executedVersion": "$LATEST"});
            if matches!(response, Response::Error { .. }) {
                context["functionError"] = json!("Unhandled");
            }
            record.insert("responseContext".into(), context);
        }
        record
    }
}

/// The record of an asynchronous invocation for its `on_success` or `on_failure` destination.
pub fn invocation_record(outcome: &Outcome, request_payload: &Value) -> Value {
    let arn = format!(
        "arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{}:$LATEST",
        outcome.function
    );
    let mut record = outcome.common(arn);
    record.insert("requestPayload".into(), request_payload.clone());
    match outcome.response {
        Some(Response::Result(result)) => {
            record.insert("responsePayload".into(), result.clone());
        }
        Some(Response::Error {
            error_type,
            message,
        }) => {
            record.insert(
                "responsePayload".into(),
                json!({"errorMessage": message, "errorType": error_type}),
            );
        }
        None => {}
    }
    Value::Object(record)
}

/// The records a stream gave up on, as its on-failure record names them.
pub struct StreamBatch<'a> {
    pub table: &'a str,
    pub stream_label: &'a str,
    pub first_seq: u64,
    pub last_seq: u64,
    pub first_time_ms: i64,
    pub last_time_ms: i64,
    pub size: u64,
}

/// The one shard of each table's stream.
pub const SHARD_ID: &str = "shardId-00000000000000000000";

/// The name of a destination record in a bucket (its object key) or a table (its key), as
/// Lambda names the objects it writes to an S3 destination: `aws/lambda/SCOPE/YYYY/MM/DD/
/// YYYY-MM-DDTHH.MM.SS-UNIQUE`, where the scope is `async/FUNCTION` for an asynchronous
/// invocation and `MAPPING/SHARD` for a stream (eddy's mapping is the trigger).
pub fn record_name(scope: &str, now_ms: i64, unique: &str) -> String {
    let time = iso8601_millis(now_ms);
    let (date, clock) = (&time[..10], time[11..19].replace(':', "."));
    format!(
        "aws/lambda/{scope}/{}/{date}T{clock}-{unique}",
        date.replace('-', "/")
    )
}

/// The on-failure record of a table trigger (an event source mapping's `DDBStreamBatchInfo`).
pub fn stream_failure_record(outcome: &Outcome, batch: &StreamBatch) -> Value {
    let arn = format!(
        "arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{}",
        outcome.function
    );
    let mut record = outcome.common(arn);
    record.insert(
        "DDBStreamBatchInfo".into(),
        json!({
            "shardId": SHARD_ID,
            "startSequenceNumber": format!("{:021}", batch.first_seq),
            "endSequenceNumber": format!("{:021}", batch.last_seq),
            "approximateArrivalOfFirstRecord": iso8601_millis(batch.first_time_ms),
            "approximateArrivalOfLastRecord": iso8601_millis(batch.last_time_ms),
            "batchSize": batch.size,
            "streamArn": format!(
                "arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{}/stream/{}",
                batch.table, batch.stream_label
            ),
        }),
    );
    Value::Object(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome<'a>(condition: &'a str, response: Option<&'a Response>) -> Outcome<'a> {
        Outcome {
            request_id: "e4b46cbf-b738-xmpl-8880-a18cdf61200e",
            function: "my-function",
            condition,
            attempts: 3,
            response,
            now_ms: 1_573_755_365_568,
        }
    }

    /// Field for field, the invocation record in Lambda's documentation ("Example invocation
    /// record"), with eddy's region and account.
    #[test]
    fn a_failed_invocation_record_has_lambdas_fields() {
        let error = Response::Error {
            error_type: "Error".into(),
            message: "error message".into(),
        };
        let record = invocation_record(
            &outcome(Condition::RetriesExhausted.as_str(), Some(&error)),
            &json!({"key": "value"}),
        );
        assert_eq!(
            record,
            json!({
                "version": "1.0",
                "timestamp": "2019-11-14T18:16:05.568Z",
                "requestContext": {
                    "requestId": "e4b46cbf-b738-xmpl-8880-a18cdf61200e",
                    "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:my-function:$LATEST",
                    "condition": "RetriesExhausted",
                    "approximateInvokeCount": 3
                },
                "requestPayload": {"key": "value"},
                "responseContext": {
                    "statusCode": 200,
                    "executedVersion": "$LATEST",
                    "functionError": "Unhandled"
                },
                "responsePayload": {"errorMessage": "error message", "errorType": "Error"}
            })
        );
    }

    #[test]
    fn a_successful_record_carries_the_result_and_an_expired_one_no_response() {
        let result = Response::Result(json!({"ok": true}));
        let record = invocation_record(&outcome("Success", Some(&result)), &json!(1));
        assert_eq!(record["responsePayload"], json!({"ok": true}));
        assert!(record["responseContext"].get("functionError").is_none());
        let expired = invocation_record(&outcome("EventAgeExceeded", None), &json!(1));
        assert!(expired.get("responseContext").is_none());
        assert!(expired.get("responsePayload").is_none());
    }

    #[test]
    fn a_record_is_named_as_lambda_names_its_objects() {
        assert_eq!(
            record_name("async/thumbs", 1_573_755_365_568, "7a2c"),
            "aws/lambda/async/thumbs/2019/11/14/2019-11-14T18.16.05-7a2c"
        );
        assert_eq!(
            record_name(&format!("on-order/{SHARD_ID}"), 1_573_755_365_568, "7a2c"),
            "aws/lambda/on-order/shardId-00000000000000000000/2019/11/14/2019-11-14T18.16.05-7a2c"
        );
    }

    #[test]
    fn a_stream_failure_record_names_the_records() {
        let error = Response::Error {
            error_type: "Error".into(),
            message: "no".into(),
        };
        let record = stream_failure_record(
            &outcome("RetryAttemptsExhausted", Some(&error)),
            &StreamBatch {
                table: "orders",
                stream_label: "2026-12-01T00:00:00.000",
                first_seq: 7,
                last_seq: 7,
                first_time_ms: 1_573_755_365_000,
                last_time_ms: 1_573_755_365_000,
                size: 1,
            },
        );
        assert_eq!(
            record["DDBStreamBatchInfo"],
            json!({
                "shardId": "shardId-00000000000000000000",
                "startSequenceNumber": "000000000000000000007",
                "endSequenceNumber": "000000000000000000007",
                "approximateArrivalOfFirstRecord": "2019-11-14T18:16:05.000Z",
                "approximateArrivalOfLastRecord": "2019-11-14T18:16:05.000Z",
                "batchSize": 1,
                "streamArn": "arn:aws:dynamodb:us-east-1:000000000000:table/orders/stream/2026-12-01T00:00:00.000"
            })
        );
        assert_eq!(
            record["requestContext"],
            json!({
                "requestId": "e4b46cbf-b738-xmpl-8880-a18cdf61200e",
                "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:my-function",
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": 3
            })
        );
        assert_eq!(
            record["responseContext"],
            json!({"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"})
        );
        assert!(
            record.get("requestPayload").is_none(),
            "the records are named, not sent"
        );
    }
}
