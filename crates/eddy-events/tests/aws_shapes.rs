//! Our records against AWS's own types and sample events (the `aws_lambda_events` crate): each
//! record parses into the official type and re-serializes to the same JSON — so no field is
//! misnamed or mistyped — and has the same fields as AWS's sample.

use std::collections::BTreeSet;

use aws_lambda_events::event::{dynamodb, s3};
use eddy_core::{BucketName, Event, EventId, EventKind, Lineage, Source, TableName};
use eddy_events::*;
use serde_json::{Value, json};

/// AWS's sample events ship inside the `aws_lambda_events` source that cargo downloaded.
fn fixtures_dir() -> std::path::PathBuf {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cargo")
        });
    let registries =
        std::fs::read_dir(cargo_home.join("registry/src")).expect("cargo's registry sources");
    registries
        .flatten()
        .flat_map(|r| std::fs::read_dir(r.path()).into_iter().flatten().flatten())
        .map(|c| c.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("aws_lambda_events-1."))
        })
        .max()
        .expect("the aws_lambda_events sources are in cargo's registry")
        .join("src/fixtures")
}

fn fixture(name: &str) -> Value {
    let path = fixtures_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn event(source: Source, kind: EventKind, key: &str, payload: Value) -> Event {
    Event {
        seq: 42,
        id: EventId::generate(),
        source,
        kind,
        key: key.into(),
        time_ms: 1_795_600_800_123,
        payload,
        lineage: Lineage::root(),
    }
}

/// Numbers compared by value (AWS's types write `1.0` where we write `1`); nulls and empty
/// maps that the official types add for absent optional fields are dropped.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null() && v.as_object().is_none_or(|m| !m.is_empty()))
                .map(|(k, v)| (k.clone(), normalize(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Every path to a field, with array indices dropped.
fn paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let path = format!("{prefix}.{k}");
                out.insert(path.clone());
                paths(v, &path, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| paths(i, prefix, out)),
        _ => {}
    }
}

fn path_set(v: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    paths(v, "", &mut out);
    out
}

fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(ours: &Value) {
    let parsed: T = serde_json::from_value(ours.clone()).expect("parses as AWS's type");
    let again = serde_json::to_value(parsed).unwrap();
    assert_eq!(
        normalize(&again),
        normalize(ours),
        "re-serialized through AWS's type"
    );
}

#[test]
fn s3_records_match_aws() {
    let bucket = Source::Bucket(BucketName::new("photos").unwrap());
    let created = event(
        bucket.clone(),
        EventKind::ObjectCreatedPut,
        "uploads/red flower.jpg",
        json!({"size": 1024, "etag": "d41d8cd98f00b204e9800998ecf8427e"}),
    );
    let ours = envelope(vec![s3_record(&created, "make-thumbnail").unwrap()]);
    round_trip::<s3::S3Event>(&ours);
    let record = &ours["Records"][0];
    assert_eq!(record["eventName"], "ObjectCreated:Put");
    assert_eq!(record["eventTime"], "2026-11-25T10:00:00.123Z");
    assert_eq!(record["s3"]["object"]["key"], "uploads/red+flower.jpg");
    assert_eq!(record["s3"]["object"]["sequencer"], "000000000000002A");
    assert_eq!(record["s3"]["bucket"]["arn"], "arn:aws:s3:::photos");
    assert_eq!(record["s3"]["configurationId"], "make-thumbnail");

    // Same fields as AWS's sample, but for the version id of versioned buckets.
    let sample = path_set(&fixture("example-s3-event.json"));
    let mine = path_set(&ours);
    let missing: Vec<_> = sample.difference(&mine).collect();
    let extra: Vec<_> = mine.difference(&sample).collect();
    assert_eq!(missing, [".Records.s3.object.versionId"]);
    assert!(extra.is_empty(), "{extra:?}");

    // A removal carries no size or ETag, as in S3.
    let removed = event(
        bucket,
        EventKind::ObjectRemovedDelete,
        "a b",
        json!({"size": 1, "etag": "x"}),
    );
    let ours = envelope(vec![s3_record(&removed, "t").unwrap()]);
    round_trip::<s3::S3Event>(&ours);
    assert_eq!(ours["Records"][0]["eventName"], "ObjectRemoved:Delete");
    assert_eq!(
        ours["Records"][0]["s3"]["object"],
        json!({"key": "a+b", "sequencer": "000000000000002A"})
    );
}

fn row_event(kind: EventKind, new: Option<Value>, old: Option<Value>) -> Event {
    let source = Source::Table(TableName::new("orders").unwrap());
    event(
        source,
        kind,
        "[1]",
        json!({"keys": {"id": 1}, "new": new, "old": old}),
    )
}

#[test]
fn dynamodb_records_match_aws() {
    let new = json!({"id": 1, "status": "shipped", "total": 10.5, "paid": true, "note": null, "meta": {"tags": ["a"]}});
    let old = json!({"id": 1, "status": "paid", "total": 10.5, "paid": true, "note": null, "meta": {"tags": []}});
    let label = "2026-11-25T09:00:00.000";
    let modify = dynamodb_record(
        &row_event(EventKind::RowModify, Some(new.clone()), Some(old)),
        label,
    )
    .unwrap();
    let ours = envelope(vec![modify.clone()]);
    round_trip::<dynamodb::Event>(&ours);
    assert_eq!(modify["eventName"], "MODIFY");
    assert_eq!(
        modify["eventSourceARN"],
        format!("arn:aws:dynamodb:us-east-1:000000000000:table/orders/stream/{label}")
    );
    let record = &modify["dynamodb"];
    assert_eq!(record["ApproximateCreationDateTime"], 1_795_600_800);
    assert_eq!(record["SequenceNumber"], "000000000000000000042");
    assert_eq!(record["Keys"], json!({"id": {"N": "1"}}));
    assert_eq!(record["NewImage"]["status"], json!({"S": "shipped"}));
    assert_eq!(record["OldImage"]["status"], json!({"S": "paid"}));
    assert_eq!(record["NewImage"]["note"], json!({"NULL": true}));
    assert_eq!(
        record["NewImage"]["meta"],
        json!({"M": {"tags": {"L": [{"S": "a"}]}}})
    );

    let insert = dynamodb_record(
        &row_event(EventKind::RowInsert, Some(new.clone()), None),
        label,
    )
    .unwrap();
    assert!(insert["dynamodb"].get("OldImage").is_none());
    let remove = dynamodb_record(&row_event(EventKind::RowRemove, None, Some(new)), label).unwrap();
    assert!(remove["dynamodb"].get("NewImage").is_none());
    round_trip::<dynamodb::Event>(&envelope(vec![insert.clone(), remove]));

    // Same fields as AWS's sample INSERT (which also names a user identity, set only for
    // deletions by TTL), attribute names aside.
    let sample = fixture("example-dynamodb-event.json");
    let top = |v: &Value| {
        v.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>()
    };
    let sample_record = &sample["Records"][0];
    let mut expected = top(sample_record);
    expected.remove("userIdentity");
    assert_eq!(top(&insert), expected);
    assert_eq!(top(&insert["dynamodb"]), top(&sample_record["dynamodb"]));
}

#[test]
fn plain_records_are_simple() {
    let bucket = Source::Bucket(BucketName::new("photos").unwrap());
    let put = event(
        bucket,
        EventKind::ObjectCreatedCopy,
        "a b",
        json!({"size": 3, "etag": "abc"}),
    );
    let r = plain_record(&put).unwrap();
    assert_eq!(
        (r["type"].as_str(), r["event_name"].as_str()),
        (Some("ObjectCreated"), Some("ObjectCreated:Copy"))
    );
    assert_eq!(
        (r["bucket"].as_str(), r["key"].as_str(), r["size"].as_u64()),
        (Some("photos"), Some("a b"), Some(3))
    );
    let row = plain_record(&row_event(
        EventKind::RowInsert,
        Some(json!({"id": 1})),
        None,
    ))
    .unwrap();
    assert_eq!(row["type"], "INSERT");
    assert_eq!(row["table"], "orders");
    assert_eq!(row["key"], json!({"id": 1}));
    assert_eq!(row["old_record"], Value::Null);
    assert_eq!(row["sequence"], 42);
    assert!(s3_record(&row_event(EventKind::RowInsert, None, None), "t").is_err());
}
