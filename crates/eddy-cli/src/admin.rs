//! `eddy events`, `eddy dlq` and `eddy deploy`: the admin API from the command line.

use std::path::PathBuf;

use anyhow::Context;
use eddy_wire::admin::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::client::{Client, encode};

/// How long one request of `eddy events tail --follow` waits on the server for a commit.
const FOLLOW_WAIT_SECONDS: u32 = 30;

/// `eddy events tail [--last N] [--follow]`: the last events, then (following) each new one as
/// it commits. `print` gets every event.
pub fn tail(
    client: &Client,
    last: u32,
    follow: bool,
    mut print: impl FnMut(&EventRecord),
) -> anyhow::Result<()> {
    let mut query = format!("last={last}&limit=1000");
    loop {
        let page: EventPage = get(client, "/_eddy/v1/events", &query)?;
        page.events.iter().for_each(&mut print);
        if !follow {
            return Ok(());
        }
        query = format!("after={}&limit=1000&wait={FOLLOW_WAIT_SECONDS}", page.next);
    }
}

/// A GET of the admin API, its answer read as `T`.
pub fn get<T: DeserializeOwned>(client: &Client, path: &str, query: &str) -> anyhow::Result<T> {
    typed(client.api("GET", path, query, None)?)
}

/// An answer of the admin API read as `T`.
pub fn typed<T: DeserializeOwned>(answer: serde_json::Value) -> anyhow::Result<T> {
    serde_json::from_value(answer.clone())
        .with_context(|| format!("eddy answered with something this eddy cannot read: {answer}"))
}

pub fn print_event(event: &EventRecord) {
    println!(
        "{:>8}  {}  {}  {}  {}",
        event.sequence,
        eddy_events::iso8601_millis(event.time_ms),
        event.source,
        event.kind,
        event.key
    );
}

/// `eddy events show ID`: the event, which triggers matched it and why, and what ran.
pub fn show(client: &Client, id: &str) -> anyhow::Result<ExplainedEvent> {
    get(client, &format!("/_eddy/v1/events/{}", encode(id)), "")
}

pub fn print_explained(answer: &ExplainedEvent) {
    print_event(&answer.event);
    println!("  id {}", answer.event.id);
    for trigger in &answer.triggers {
        let verdict = if trigger.matched {
            "matched"
        } else {
            "did not match"
        };
        println!("  trigger {}: {verdict}", trigger.trigger);
        for clause in &trigger.clauses {
            let mark = if clause.passed { "✓" } else { "✗" };
            println!("    {mark} {}  (saw {:?})", clause.clause, clause.saw);
        }
    }
    for d in &answer.deliveries {
        let replay = d.replay.map_or(String::new(), |r| format!(" (replay {r})"));
        let why = match (&d.dead_reason, &d.last_error) {
            (Some(reason), error) => format!(": {reason} {}", error.as_deref().unwrap_or("")),
            (None, Some(error)) => format!(": last error {error}"),
            (None, None) => String::new(),
        };
        println!(
            "  delivery {} to {} by {}{replay}: {} after {} attempts{}",
            d.id,
            d.function,
            d.trigger,
            d.state,
            d.attempts,
            why.trim_end()
        );
        if let Some(seq) = d.destination_event {
            println!("    its destination record went as event {seq}");
        }
    }
    for run in &answer.invocations {
        let batch = run
            .batch_size
            .map_or(String::new(), |n| format!(" in a batch of {n}"));
        let error = match (&run.error_type, &run.error) {
            (Some(kind), Some(message)) => format!(" ({kind}: {message})"),
            _ => String::new(),
        };
        println!(
            "  ran {} ({}), attempt {}{batch}: {}{error}",
            run.function, run.request_id, run.attempt, run.outcome
        );
    }
}

pub fn dead_letters(client: &Client, function: Option<&str>) -> anyhow::Result<DeadLetterList> {
    let query = function.map_or(String::new(), |f| format!("function={}", encode(f)));
    get(client, "/_eddy/v1/dead-letters", &query)
}

pub fn print_dead_letters(answer: &DeadLetterList) {
    for d in &answer.dead_letters {
        println!(
            "{:>6}  {}  {}  event {}  {} attempts  {}: {}",
            d.id,
            eddy_events::iso8601_millis(d.time_ms),
            d.function,
            d.event_sequence,
            d.attempts,
            d.reason,
            d.last_error.as_deref().unwrap_or("")
        );
    }
}

/// `eddy dlq redrive ID` or `eddy dlq redrive --function NAME`.
pub fn redrive(
    client: &Client,
    id: Option<i64>,
    function: Option<&str>,
) -> anyhow::Result<Redriven> {
    let path = match (id, function) {
        (Some(id), None) => format!("/_eddy/v1/dead-letters/{id}/redrive"),
        (None, Some(f)) => format!("/_eddy/v1/functions/{}/redrive", encode(f)),
        _ => anyhow::bail!("name one dead letter (its ID) or --function NAME, not both"),
    };
    typed(client.api("POST", &path, "", None)?)
}

/// `eddy events replay --trigger NAME --from SEQ|TIME [--to SEQ|TIME]`.
pub fn replay(
    client: &Client,
    trigger: &str,
    from: &str,
    to: Option<&str>,
) -> anyhow::Result<ReplayInfo> {
    let position = |text: &str| match text.parse::<u64>() {
        Ok(seq) => JournalPosition::Seq(seq),
        Err(_) => JournalPosition::Time(text.to_string()),
    };
    let request = ReplayRequest {
        from: position(from),
        to: to.map(position),
    };
    typed(client.api(
        "POST",
        &format!("/_eddy/v1/triggers/{}/replay", encode(trigger)),
        "",
        Some(&serde_json::to_value(&request)?),
    )?)
}

/// `eddy triggers backfill NAME`.
pub fn backfill(client: &Client, trigger: &str) -> anyhow::Result<ReplayInfo> {
    let path = format!("/_eddy/v1/triggers/{}/backfill", encode(trigger));
    typed(client.api("POST", &path, "", None)?)
}

pub fn print_replay(answer: &ReplayInfo) {
    let progress = match answer.finished_ms {
        Some(_) => format!("{} deliveries made", answer.events),
        None => format!(
            "{} deliveries made so far, at event {}",
            answer.events, answer.next
        ),
    };
    let what = if answer.backfill {
        "backfill"
    } else {
        "replay"
    };
    println!(
        "{what} {} to {}: events {}..{}, {progress}",
        answer.replay, answer.trigger, answer.from, answer.to
    );
}

/// `eddy events replays`: every replay, newest first, with how far it got.
pub fn replays(client: &Client) -> anyhow::Result<ReplayList> {
    get(client, "/_eddy/v1/replays", "")
}

pub fn print_replays(answer: &ReplayList) {
    for replay in &answer.replays {
        print_replay(replay);
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
    typed(client.api(
        "POST",
        "/_eddy/v1/deploy",
        "",
        Some(&serde_json::to_value(&request)?),
    )?)
}

/// What `eddy usage` reports: the server's figures per function, and their total cost.
#[derive(Serialize, Deserialize)]
pub struct UsageReport {
    pub functions: Vec<FunctionUsage>,
    pub total: UsageTotal,
}

#[derive(Serialize, Deserialize)]
pub struct UsageTotal {
    pub invocations: u64,
    pub gb_seconds: f64,
    pub request_cost_usd: f64,
    pub compute_cost_usd: f64,
    pub estimated_cost_usd: f64,
}

/// `eddy usage`: per function, what Lambda would count and bill, and the estimated cost of all
/// of it at `prices` after the free tier.
pub fn usage(client: &Client, prices: &Prices) -> anyhow::Result<UsageReport> {
    let usage: Usage = get(client, "/_eddy/v1/usage", "")?;
    let requests: u64 = usage.functions.iter().map(|f| f.invocations).sum();
    let gb_seconds: f64 = usage.functions.iter().map(|f| f.gb_seconds).sum();
    let (request_cost, compute_cost) = prices.estimate(requests, gb_seconds);
    Ok(UsageReport {
        functions: usage.functions,
        total: UsageTotal {
            invocations: requests,
            gb_seconds,
            request_cost_usd: request_cost,
            compute_cost_usd: compute_cost,
            estimated_cost_usd: request_cost + compute_cost,
        },
    })
}

pub fn print_usage(answer: &UsageReport) {
    println!(
        "{:<24} {:>11} {:>8} {:>9} {:>12} {:>12} {:>12}",
        "function", "invocations", "errors", "throttles", "duration ms", "billed ms", "GB-seconds"
    );
    for f in &answer.functions {
        println!(
            "{:<24} {:>11} {:>8} {:>9} {:>12.1} {:>12} {:>12.4}",
            f.function,
            f.invocations,
            f.errors,
            f.throttles,
            f.duration_ms,
            f.billed_ms,
            f.gb_seconds
        );
    }
    let t = &answer.total;
    println!(
        "estimated cost: ${:.6} (requests ${:.6} + compute ${:.6}, after the free tier)",
        t.estimated_cost_usd, t.request_cost_usd, t.compute_cost_usd
    );
}
