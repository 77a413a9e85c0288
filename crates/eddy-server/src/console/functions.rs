//! Functions: each one's configuration as the locked app has it (Lambda's
//! FunctionConfiguration), its triggers, its latest invocations with their logs and charts of
//! their duration and memory, and invoking it with a payload — typed, or one of the sample
//! events — through the Invoke API's own handler.

use std::collections::HashMap;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;

use super::page::{self, Chart, Html, Nav, render};
use super::session::Viewer;
use super::{BASE, ConsoleError};
use crate::auth::WriteLineage;
use crate::{Shared, admin, lambda};

pub struct Row {
    pub name: String,
    pub href: String,
    pub runtime: String,
    pub memory_mb: u64,
    pub timeout: u64,
    pub triggers: usize,
}

#[derive(Template)]
#[template(path = "console/functions.html")]
pub struct Functions {
    pub nav: Nav,
    pub rows: Vec<Row>,
}

/// `GET /_eddy/console/functions`.
pub async fn list(viewer: Viewer, State(s): State<Shared>) -> Result<Html, ConsoleError> {
    viewer.require("admin:read", "*")?;
    let listed = admin::functions(State(s.clone())).await.0;
    let app = s.app();
    let rows = listed
        .functions
        .iter()
        .map(|c| {
            let name = c["FunctionName"].as_str().unwrap_or_default().to_string();
            Row {
                href: format!("{BASE}/functions/{}", page::encode(&name)),
                runtime: c["Runtime"].as_str().unwrap_or_default().to_string(),
                memory_mb: c["MemorySize"].as_u64().unwrap_or_default(),
                timeout: c["Timeout"].as_u64().unwrap_or_default(),
                triggers: app
                    .triggers
                    .iter()
                    .filter(|t| t.function.as_str() == name)
                    .count(),
                name,
            }
        })
        .collect();
    Ok(render(&Functions {
        nav: Nav::new(&viewer, "functions"),
        rows,
    }))
}

pub struct Invocation {
    pub request_id: String,
    pub start: String,
    pub outcome: String,
    pub good: bool,
    pub duration: String,
    pub memory: String,
    pub event: Option<(u64, String)>,
    pub response: Option<String>,
    pub log: String,
}

pub struct Sample {
    pub label: &'static str,
    pub href: String,
}

pub struct Invoked {
    pub status: u16,
    pub failed: bool,
    pub request_id: String,
    pub body: String,
}

#[derive(Template)]
#[template(path = "console/function.html")]
pub struct FunctionPage {
    pub nav: Nav,
    pub name: String,
    pub configuration: String,
    /// The function as the locked app holds it (what `eddy validate --json` prints).
    pub locked: String,
    pub triggers: Vec<String>,
    pub invocations: Vec<Invocation>,
    pub durations: Chart,
    pub memory: Chart,
    pub can_invoke: bool,
    pub samples: Vec<Sample>,
    pub payload: String,
    pub mode: String,
    pub invoked: Option<Invoked>,
}

#[derive(Deserialize)]
pub struct DetailQuery {
    sample: Option<String>,
}

/// Invocations a function's page lists.
const LATEST: u32 = 20;
/// Invocations its charts show.
const CHARTED: u32 = 60;

/// `GET /_eddy/console/functions/{name}?sample=NAME`.
pub async fn detail(
    viewer: Viewer,
    State(s): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Result<Html, ConsoleError> {
    let payload = match q.sample.as_deref() {
        Some(sample) => sample_event(sample, &s)
            .ok_or_else(|| ConsoleError::bad_request(format!("no sample event {sample:?}")))?,
        None => "{}".to_string(),
    };
    function_page(viewer, s, name, payload, "RequestResponse".into(), None).await
}

async fn function_page(
    viewer: Viewer,
    s: Shared,
    name: String,
    payload: String,
    mode: String,
    invoked: Option<Invoked>,
) -> Result<Html, ConsoleError> {
    viewer.require("admin:read", "*")?;
    let function_name = eddy_core::FunctionName::new(&name)?;
    let app = s.app();
    let Some(spec) = app.function(&function_name) else {
        return Err(ConsoleError::not_found(format!("no function {name:?}")));
    };
    let query = HashMap::from([
        ("function".to_string(), name.clone()),
        ("latest".to_string(), CHARTED.to_string()),
    ]);
    let latest = admin::invocations(State(s.clone()), Query(query))
        .await?
        .0
        .invocations;
    let charted: Vec<_> = latest.iter().rev().collect();
    let label = |i: &&eddy_wire::admin::InvocationInfo| page::time(i.start_ms);
    let durations: Vec<(String, f64)> = charted.iter().map(|i| (label(i), i.duration_ms)).collect();
    let memory: Vec<(String, f64)> = charted
        .iter()
        .map(|i| (label(i), i.max_memory_mb.unwrap_or(0) as f64))
        .collect();
    let invocations = latest
        .iter()
        .take(LATEST as usize)
        .map(|i| Invocation {
            request_id: i.request_id.clone(),
            start: page::time(i.start_ms),
            good: i.outcome == "success",
            outcome: i.outcome.clone(),
            duration: page::millis(i.duration_ms),
            memory: i.max_memory_mb.map_or(format!("{} MB", i.memory_mb), |m| {
                format!("{m} of {} MB", i.memory_mb)
            }),
            event: i.event_sequence.map(|seq| (seq, page::event_href(seq))),
            response: i.response.as_deref().map(super::events::readable),
            log: i.log.clone(),
        })
        .collect();
    let samples = SAMPLES
        .iter()
        .map(|(sample, label)| Sample {
            label,
            href: format!(
                "{BASE}/functions/{}?{}#invoke",
                page::encode(&name),
                page::query(&[("sample", sample)])
            ),
        })
        .collect();
    Ok(render(&FunctionPage {
        nav: Nav::new(&viewer, "functions"),
        configuration: page::pretty(&lambda::configuration(spec)),
        locked: serde_json::to_value(spec)
            .map(|v| page::pretty(&v))
            .unwrap_or_default(),
        triggers: app
            .triggers
            .iter()
            .filter(|t| t.function == function_name)
            .map(|t| format!("{} (on {})", t.name, t.source))
            .collect(),
        invocations,
        durations: Chart::bars("Duration of the latest invocations", &durations, "ms"),
        memory: Chart::bars("Memory used by the latest invocations", &memory, "MB"),
        can_invoke: viewer.allows("functions:invoke", &format!("function/{name}")),
        samples,
        payload,
        mode,
        invoked,
        name,
    }))
}

#[derive(Deserialize)]
pub struct InvokeForm {
    csrf: String,
    payload: String,
    mode: String,
}

/// `POST /_eddy/console/functions/{name}/invoke`: through the Invoke API's handler, so the
/// console invokes exactly as a Lambda client does; the page shows the answer.
pub async fn invoke(
    viewer: Viewer,
    State(s): State<Shared>,
    Path(name): Path<String>,
    axum::Form(form): axum::Form<InvokeForm>,
) -> Result<Html, ConsoleError> {
    viewer.check_csrf(&form.csrf)?;
    viewer.require("functions:invoke", &format!("function/{name}"))?;
    let mode = match form.mode.as_str() {
        "RequestResponse" | "Event" => form.mode.clone(),
        other => {
            return Err(ConsoleError::bad_request(format!(
                "invocation type {other:?} is not RequestResponse or Event"
            )));
        }
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-amz-invocation-type",
        mode.parse().expect("a header value"),
    );
    let response = lambda::invoke(
        State(s.clone()),
        Path(name.clone()),
        WriteLineage(eddy_core::Lineage::root()),
        headers,
        Bytes::from(form.payload.clone()),
    )
    .await;
    let status = response.status().as_u16();
    let failed = response.headers().contains_key("x-amz-function-error") || status >= 300;
    let request_id = response
        .headers()
        .get("x-amzn-requestid")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = axum::body::to_bytes(response.into_body(), crate::SYNC_PAYLOAD_LIMIT + 1)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let body = match serde_json::from_str::<serde_json::Value>(&body) {
        Ok(value) => page::pretty(&value),
        Err(_) if status == 202 => "accepted: it runs asynchronously, with retries".into(),
        Err(_) => body,
    };
    let invoked = Invoked {
        status,
        failed,
        request_id,
        body,
    };
    function_page(viewer, s, name, form.payload, mode, Some(invoked)).await
}

/// The sample events, by name.
const SAMPLES: [(&str, &str); 5] = [
    ("s3-put", "S3 put"),
    ("dynamodb-insert", "DynamoDB insert"),
    ("dynamodb-modify", "DynamoDB modify"),
    ("dynamodb-remove", "DynamoDB remove"),
    ("custom", "Custom event"),
];

/// A sample event as eddy would send it, naming the app's first bucket or table.
fn sample_event(sample: &str, s: &Shared) -> Option<String> {
    let app = s.app();
    let bucket = app
        .buckets
        .first()
        .map_or("photos".to_string(), |b| b.name.to_string());
    let table = app
        .tables
        .first()
        .map_or("orders".to_string(), |t| t.schema.name().to_string());
    let now = eddy_core::time::iso8601_millis(eddy_bus::now_ms());
    let stream = |name: &str,
                  keys,
                  old: Option<serde_json::Value>,
                  new: Option<serde_json::Value>| {
        let mut change = serde_json::json!({
            "Keys": keys,
            "SequenceNumber": "000000000000000000001",
            "SizeBytes": 26,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
            "ApproximateCreationDateTime": 1_700_000_000,
        });
        if let Some(old) = old {
            change["OldImage"] = old;
        }
        if let Some(new) = new {
            change["NewImage"] = new;
        }
        serde_json::json!({"Records": [{
            "eventID": "1",
            "eventName": name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": change,
            "eventSourceARN": format!("arn:aws:dynamodb:us-east-1:000000000000:table/{table}/stream/2026-01-01T00:00:00.000"),
        }]})
    };
    let key = serde_json::json!({"id": {"N": "1"}});
    let old = serde_json::json!({"id": {"N": "1"}, "status": {"S": "new"}});
    let new = serde_json::json!({"id": {"N": "1"}, "status": {"S": "shipped"}});
    let event = match sample {
        "s3-put" => serde_json::json!({"Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-east-1",
            "eventTime": now,
            "eventName": "ObjectCreated:Put",
            "userIdentity": {"principalId": "eddy"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-request-id": "0", "x-amz-id-2": "0"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "console-sample",
                "bucket": {"name": bucket, "ownerIdentity": {"principalId": "eddy"}, "arn": format!("arn:aws:s3:::{bucket}")},
                "object": {"key": "uploads/sample.jpg", "size": 1024, "eTag": "d41d8cd98f00b204e9800998ecf8427e", "sequencer": "0000000000000001"}
            }
        }]}),
        "dynamodb-insert" => stream("INSERT", key, None, Some(new)),
        "dynamodb-modify" => stream("MODIFY", key, Some(old), Some(new)),
        "dynamodb-remove" => stream("REMOVE", key, Some(old), None),
        "custom" => serde_json::json!({"hello": "eddy"}),
        _ => return None,
    };
    Some(page::pretty(&event))
}
