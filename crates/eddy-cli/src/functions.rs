//! `eddy invoke` (the Lambda Invoke API, as `aws lambda invoke` calls it) and `eddy logs`
//! (recorded invocations through the admin API).

use anyhow::bail;
use base64::Engine;
use serde_json::{Value, json};

use eddy_wire::admin::{InvocationInfo, InvocationPage};

use crate::client::{Client, Payload, encode, read_text};
use crate::rows::json_argument;

/// How long one request of `eddy logs --follow` waits on the server for a new record.
const FOLLOW_WAIT_SECONDS: u32 = 30;

pub struct Invoked {
    /// The result (synchronous) or the acceptance (asynchronous).
    pub result: Value,
    /// The tail of the log, when asked for.
    pub log: Option<String>,
}

/// Runs a function now (its result), or queues it (`asynchronous`). A function error fails
/// the command with the error the function reported.
pub fn invoke(
    client: &Client,
    name: &str,
    payload: Option<&str>,
    asynchronous: bool,
    tail: bool,
) -> anyhow::Result<Invoked> {
    let payload = match payload {
        Some(text) => json_argument(text, "the payload")?,
        None => json!({}),
    };
    let body = payload.to_string();
    let mut headers = vec![(
        "x-amz-invocation-type",
        if asynchronous {
            "Event"
        } else {
            "RequestResponse"
        }
        .to_string(),
    )];
    if tail {
        headers.push(("x-amz-log-type", "Tail".to_string()));
    }
    let path = format!("/2015-03-31/functions/{}/invocations", encode(name));
    let response = client.send("POST", &path, "", &headers, Payload::Bytes(body.as_bytes()))?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (function_error, error_type) = (header("x-amz-function-error"), header("x-amzn-errortype"));
    let log = header("x-amz-log-result").and_then(|b| {
        let bytes = base64::engine::general_purpose::STANDARD.decode(b).ok()?;
        Some(String::from_utf8_lossy(&bytes).into_owned())
    });
    let (status, text) = read_text(response)?;
    let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if let Some(error_type) = error_type {
        let message = value["message"].as_str().unwrap_or("no message");
        bail!("{error_type}: {message}");
    }
    if function_error.is_some() {
        if let Some(log) = &log {
            eprint!("{log}");
        }
        let kind = value["errorType"].as_str().unwrap_or("Error");
        let message = value["errorMessage"].as_str().unwrap_or("");
        bail!("the function failed: {kind}: {message}");
    }
    let result = if asynchronous {
        json!({"accepted": status == 202, "function": name})
    } else {
        value
    };
    Ok(Invoked { result, log })
}

/// `eddy logs NAME [--follow]`: each recorded invocation with its log, oldest first; with
/// `follow`, then each new one as it is recorded. `print` gets every record.
pub fn logs(
    client: &Client,
    name: &str,
    follow: bool,
    mut print: impl FnMut(&InvocationInfo),
) -> anyhow::Result<()> {
    let mut after = 0;
    loop {
        let mut query = format!("function={}&after={after}&limit=1000", encode(name));
        if follow {
            query.push_str(&format!("&wait={FOLLOW_WAIT_SECONDS}"));
        }
        let page: InvocationPage = crate::admin::get(client, "/_eddy/v1/invocations", &query)?;
        page.invocations.iter().for_each(&mut print);
        after = page.next;
        if page.invocations.len() < 1000 && !follow {
            return Ok(());
        }
    }
}

/// The human form of one invocation record.
pub fn print_invocation(record: &InvocationInfo) {
    println!(
        "{}  {}  {}  attempt {}  {} ms{}",
        eddy_events::iso8601_millis(record.start_ms),
        record.request_id,
        record.outcome,
        record.attempt,
        record.duration_ms,
        record
            .error
            .as_deref()
            .map(|e| format!("  {e}"))
            .unwrap_or_default()
    );
    for line in record.log.lines() {
        println!("    {line}");
    }
    if record.log_truncated {
        println!("    … (the log was cut at its limit)");
    }
}
