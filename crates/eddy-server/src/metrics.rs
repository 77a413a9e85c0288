//! `GET /_eddy/metrics`: Prometheus text exposition, computed from the durable records on each
//! scrape (so it survives restarts and needs no in-memory counters).

use std::fmt::Write;

use axum::extract::State;
use axum::response::IntoResponse;

use crate::Shared;
use crate::error::ApiError;

/// Writes a metric family's HELP and TYPE lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

pub async fn metrics(State(s): State<Shared>) -> Result<impl IntoResponse, ApiError> {
    let counts = s.executor.counts().await?;
    let totals = s.executor.invocation_totals().await?;
    let oldest = s.executor.oldest_pending_age().await?;
    let mut out = String::new();
    family(
        &mut out,
        "eddy_deliveries",
        "gauge",
        "Deliveries by state; ready and leased are the queue.",
    );
    for (state, n) in [
        ("ready", counts.ready),
        ("leased", counts.leased),
        ("done", counts.done),
        ("dead", counts.dead),
    ] {
        let _ = writeln!(out, "eddy_deliveries{{state=\"{state}\"}} {n}");
    }
    family(
        &mut out,
        "eddy_invocations_total",
        "counter",
        "Recorded attempts by function and outcome.",
    );
    for t in &totals {
        let _ = writeln!(
            out,
            "eddy_invocations_total{{function=\"{}\",outcome=\"{}\"}} {}",
            t.function, t.outcome, t.count
        );
    }
    family(
        &mut out,
        "eddy_invocation_seconds_total",
        "counter",
        "Time spent in attempts by function and outcome.",
    );
    for t in &totals {
        let _ = writeln!(
            out,
            "eddy_invocation_seconds_total{{function=\"{}\",outcome=\"{}\"}} {}",
            t.function,
            t.outcome,
            t.duration_us as f64 / 1e6
        );
    }
    family(
        &mut out,
        "eddy_retries_total",
        "counter",
        "Attempts after the first, by function and outcome.",
    );
    for t in totals.iter().filter(|t| t.retries > 0) {
        let _ = writeln!(
            out,
            "eddy_retries_total{{function=\"{}\",outcome=\"{}\"}} {}",
            t.function, t.outcome, t.retries
        );
    }
    family(
        &mut out,
        "eddy_oldest_pending_delivery_age_seconds",
        "gauge",
        "Age of the oldest event still waiting for delivery (0 when none waits).",
    );
    let _ = writeln!(
        out,
        "eddy_oldest_pending_delivery_age_seconds {}",
        oldest.map_or(0.0, |d| d.as_secs_f64())
    );
    family(
        &mut out,
        "eddy_journal_last_sequence",
        "gauge",
        "The newest committed event.",
    );
    let _ = writeln!(out, "eddy_journal_last_sequence {}", s.bus.last_seq());
    Ok(([("content-type", "text/plain; version=0.0.4")], out))
}
