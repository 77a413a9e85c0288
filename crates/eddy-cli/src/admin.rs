//! `eddy events`, `eddy dlq` and `eddy deploy`: the admin API from the command line.

use std::path::PathBuf;

use anyhow::Context;
use serde_json::{Value, json};

use eddy_wire::admin::{DeployRequest, DeployResponse, DeployedManifest};

use crate::client::{Client, encode};

/// How long one request of `eddy events tail --follow` waits on the server for a commit.
const FOLLOW_WAIT_SECONDS: u32 = 30;

/// `eddy events tail [--last N] [--follow]`: the last events, then (following) each new one as
/// it commits. `print` gets every event.
pub fn tail(
    client: &Client,
    last: u32,
    follow: bool,
    mut print: impl FnMut(&Value),
) -> anyhow::Result<()> {
    let mut query = format!("last={last}&limit=1000");
    loop {
        let page = client.api("GET", "/_eddy/v1/events", &query, None)?;
        page["events"]
            .as_array()
            .into_iter()
            .flatten()
            .for_each(&mut print);
        if !follow {
            return Ok(());
        }
        let after = page["next"].as_u64().unwrap_or(0);
        query = format!("after={after}&limit=1000&wait={FOLLOW_WAIT_SECONDS}");
    }
}

pub fn print_event(event: &Value) {
    println!(
        "{:>8}  {}  {}  {}  {}",
        event["sequence"],
        eddy_events::iso8601_millis(event["time_ms"].as_i64().unwrap_or(0)),
        event["source"].as_str().unwrap_or(""),
        event["kind"].as_str().unwrap_or(""),
        event["key"].as_str().unwrap_or("")
    );
}

/// `eddy events show ID`: the event, which triggers matched it and why, and what ran.
pub fn show(client: &Client, id: &str) -> anyhow::Result<Value> {
    client.api("GET", &format!("/_eddy/v1/events/{}", encode(id)), "", None)
}

pub fn print_explained(answer: &Value) {
    let event = &answer["event"];
    print_event(event);
    println!("  id {}", event["id"].as_str().unwrap_or(""));
    for trigger in answer["triggers"].as_array().into_iter().flatten() {
        let verdict = if trigger["matched"] == true {
            "matched"
        } else {
            "did not match"
        };
        println!(
            "  trigger {}: {verdict}",
            trigger["trigger"].as_str().unwrap_or("")
        );
        for clause in trigger["clauses"].as_array().into_iter().flatten() {
            let mark = if clause["passed"] == true {
                "✓"
            } else {
                "✗"
            };
            println!(
                "    {mark} {}  (saw {})",
                clause["clause"].as_str().unwrap_or(""),
                clause["saw"]
            );
        }
    }
    for run in answer["invocations"].as_array().into_iter().flatten() {
        println!(
            "  ran {} ({}): {}",
            run["function"].as_str().unwrap_or(""),
            run["request_id"].as_str().unwrap_or(""),
            run["outcome"].as_str().unwrap_or("")
        );
    }
}

pub fn dead_letters(client: &Client, function: Option<&str>) -> anyhow::Result<Value> {
    let query = function.map_or(String::new(), |f| format!("function={}", encode(f)));
    client.api("GET", "/_eddy/v1/dead-letters", &query, None)
}

pub fn print_dead_letters(answer: &Value) {
    for d in answer["dead_letters"].as_array().into_iter().flatten() {
        println!(
            "{:>6}  {}  {}  event {}  {} attempts  {}: {}",
            d["id"],
            eddy_events::iso8601_millis(d["time_ms"].as_i64().unwrap_or(0)),
            d["function"].as_str().unwrap_or(""),
            d["event_sequence"],
            d["attempts"],
            d["reason"].as_str().unwrap_or(""),
            d["last_error"].as_str().unwrap_or("")
        );
    }
}

/// `eddy dlq redrive ID` or `eddy dlq redrive --function NAME`.
pub fn redrive(client: &Client, id: Option<i64>, function: Option<&str>) -> anyhow::Result<Value> {
    match (id, function) {
        (Some(id), None) => client.api(
            "POST",
            &format!("/_eddy/v1/dead-letters/{id}/redrive"),
            "",
            None,
        ),
        (None, Some(f)) => client.api(
            "POST",
            &format!("/_eddy/v1/functions/{}/redrive", encode(f)),
            "",
            None,
        ),
        _ => anyhow::bail!("name one dead letter (its ID) or --function NAME, not both"),
    }
}

/// `eddy deploy MANIFEST…`: the running server checks them as one app and runs it. Paths in
/// the manifests stay relative to each manifest's folder on this machine.
pub fn deploy(client: &Client, manifests: &[PathBuf]) -> anyhow::Result<DeployResponse> {
    let mut request = DeployRequest {
        manifests: Vec::new(),
    };
    for path in manifests {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let absolute = std::path::absolute(path)?;
        request.manifests.push(DeployedManifest {
            path: absolute.display().to_string(),
            text,
        });
    }
    let answer = client.api(
        "POST",
        "/_eddy/v1/deploy",
        "",
        Some(&serde_json::to_value(&request)?),
    )?;
    serde_json::from_value(answer.clone())
        .with_context(|| format!("eddy answered the deploy with {answer}"))
}

/// Prices for `eddy usage`, per Lambda's published x86 prices and monthly free tier.
pub struct Prices {
    pub per_million_requests: f64,
    pub per_gb_second: f64,
    pub free_requests: f64,
    pub free_gb_seconds: f64,
}

/// `eddy usage`: per function, what Lambda would count and bill, and the estimated cost of all
/// of it at `prices` after the free tier.
pub fn usage(client: &Client, prices: &Prices) -> anyhow::Result<Value> {
    let mut answer = client.api("GET", "/_eddy/v1/usage", "", None)?;
    let total = |field: &str| -> f64 {
        answer["functions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| f[field].as_f64().unwrap_or(0.0))
            .sum()
    };
    let (requests, gb_seconds) = (total("invocations"), total("gb_seconds"));
    let request_cost =
        (requests - prices.free_requests).max(0.0) / 1e6 * prices.per_million_requests;
    let compute_cost = (gb_seconds - prices.free_gb_seconds).max(0.0) * prices.per_gb_second;
    answer["total"] = json!({
        "invocations": requests,
        "gb_seconds": gb_seconds,
        "request_cost_usd": request_cost,
        "compute_cost_usd": compute_cost,
        "estimated_cost_usd": request_cost + compute_cost,
    });
    Ok(answer)
}

pub fn print_usage(answer: &Value) {
    println!(
        "{:<24} {:>11} {:>8} {:>9} {:>12} {:>12} {:>12}",
        "function", "invocations", "errors", "throttles", "duration ms", "billed ms", "GB-seconds"
    );
    for f in answer["functions"].as_array().into_iter().flatten() {
        println!(
            "{:<24} {:>11} {:>8} {:>9} {:>12.1} {:>12} {:>12.4}",
            f["function"].as_str().unwrap_or(""),
            f["invocations"],
            f["errors"],
            f["throttles"],
            f["duration_ms"].as_f64().unwrap_or(0.0),
            f["billed_ms"],
            f["gb_seconds"].as_f64().unwrap_or(0.0)
        );
    }
    let t = &answer["total"];
    println!(
        "estimated cost: ${:.6} (requests ${:.6} + compute ${:.6}, after the free tier)",
        t["estimated_cost_usd"].as_f64().unwrap_or(0.0),
        t["request_cost_usd"].as_f64().unwrap_or(0.0),
        t["compute_cost_usd"].as_f64().unwrap_or(0.0)
    );
}
