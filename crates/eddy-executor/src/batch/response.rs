//! A batch handler's partial failures (`ReportBatchItemFailures`), read as Lambda reads them:
//! `{"batchItemFailures": [{"itemIdentifier": "<SequenceNumber>"}, …]}`.
//!
//! Success: no answer, an answer that is not an object, no `batchItemFailures`, `null` or an
//! empty list. The whole batch failed: an entry that is not an object, or whose
//! `itemIdentifier` is missing, empty, or names no record of the batch.

use std::collections::HashSet;

use eddy_runtimes::FunctionError;
use serde_json::Value;

/// The sequence numbers the handler reported failed (none: every record succeeded), or the
/// error that fails the whole batch. `in_batch` says whether a sequence number is the batch's.
pub(crate) fn reported_failures(
    answer: &Value,
    in_batch: impl Fn(u64) -> bool,
) -> Result<HashSet<u64>, FunctionError> {
    let mut failed = HashSet::new();
    let Some(entries) = answer.get("batchItemFailures") else {
        return Ok(failed);
    };
    let entries = match entries {
        Value::Null => return Ok(failed),
        Value::Array(entries) => entries,
        other => {
            return Err(invalid(format!(
                "`batchItemFailures` is {other}, not a list"
            )));
        }
    };
    for entry in entries {
        let identifier = entry.get("itemIdentifier");
        // A SequenceNumber, as DynamoDB Streams' records carry it (a string of digits; eddy's
        // plain records' `sequence` number is taken too).
        let seq = match identifier {
            Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse::<u64>().ok()
            }
            Some(Value::Number(n)) => n.as_u64(),
            _ => None,
        };
        match seq {
            Some(seq) if in_batch(seq) => {
                failed.insert(seq);
            }
            _ => {
                let found = identifier.map_or("nothing".to_string(), Value::to_string);
                return Err(invalid(format!(
                    "a `batchItemFailures` entry's itemIdentifier is {found}, which names no record of the batch (expected a record's dynamodb.SequenceNumber)"
                )));
            }
        }
    }
    Ok(failed)
}

fn invalid(message: String) -> FunctionError {
    FunctionError::new("InvalidBatchItemFailures", message)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(answer: Value) -> Result<Vec<u64>, String> {
        reported_failures(&answer, |seq| (1..=3).contains(&seq))
            .map(|set| {
                let mut seqs: Vec<u64> = set.into_iter().collect();
                seqs.sort_unstable();
                seqs
            })
            .map_err(|e| format!("{}: {}", e.error_type, e.message))
    }

    #[test]
    fn no_failures_reported_is_success() {
        for answer in [
            Value::Null,
            json!("done"),
            json!({}),
            json!({"batchItemFailures": null}),
            json!({"batchItemFailures": []}),
        ] {
            assert_eq!(read(answer.clone()), Ok(vec![]), "{answer}");
        }
    }

    #[test]
    fn reported_records_are_named_by_sequence_number() {
        let answer = json!({"batchItemFailures": [
            {"itemIdentifier": "000000000000000000003"},
            {"itemIdentifier": "2"},
            {"itemIdentifier": "2"},
        ]});
        assert_eq!(read(answer), Ok(vec![2, 3]));
    }

    #[test]
    fn an_entry_naming_no_record_of_the_batch_fails_the_whole_batch() {
        for (answer, says) in [
            (
                json!({"batchItemFailures": [{"itemIdentifier": "9"}]}),
                "is \"9\"",
            ),
            (
                json!({"batchItemFailures": [{"itemIdentifier": ""}]}),
                "is \"\"",
            ),
            (
                json!({"batchItemFailures": [{"itemIdentifier": null}]}),
                "is null",
            ),
            (
                json!({"batchItemFailures": [{"ItemIdentifier": "1"}]}),
                "is nothing",
            ),
            (json!({"batchItemFailures": ["1"]}), "is nothing"),
            (
                json!({"batchItemFailures": [{"itemIdentifier": "-1"}]}),
                "is \"-1\"",
            ),
            (
                json!({"batchItemFailures": {"itemIdentifier": "1"}}),
                "not a list",
            ),
        ] {
            let error = read(answer.clone()).expect_err(&answer.to_string());
            assert!(error.starts_with("InvalidBatchItemFailures: "), "{error}");
            assert!(error.contains(says), "{answer}: {error}");
        }
    }
}
