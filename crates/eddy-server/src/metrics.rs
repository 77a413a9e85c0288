//! `GET /_eddy/metrics`: Prometheus text exposition, computed from the durable records on each
//! scrape (so it survives restarts and needs no in-memory counters).

use std::fmt::Write;

use axum::extract::State;
use axum::response::IntoResponse;
use eddy_executor::InvocationTotals;

use crate::Shared;
use crate::error::ApiError;

/// A per-function metric: name, help, and its value from the totals.
type Series = (&'static str, &'static str, fn(&InvocationTotals) -> f64);

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
    let per_function: [Series; 5] = [
        (
            "eddy_invocations_total",
            "Recorded attempts by function and outcome.",
            |t| t.count as f64,
        ),
        (
            "eddy_invocation_seconds_total",
            "Time spent in attempts by function and outcome.",
            |t| t.duration_us as f64 / 1e6,
        ),
        (
            "eddy_retries_total",
            "Attempts after the first, by function and outcome.",
            |t| t.retries as f64,
        ),
        (
            "eddy_billed_seconds_total",
            "Billed time (each attempt rounded up to the millisecond) by function and outcome.",
            |t| t.billed_ms as f64 / 1e3,
        ),
        (
            "eddy_gb_seconds_total",
            "Billed seconds times memory in GB, as Lambda bills compute.",
            InvocationTotals::gb_seconds,
        ),
    ];
    for (name, help, value) in per_function {
        family(&mut out, name, "counter", help);
        for t in &totals {
            let _ = writeln!(
                out,
                "{name}{{function=\"{}\",outcome=\"{}\"}} {}",
                t.function,
                t.outcome,
                value(t)
            );
        }
    }
    family(
        &mut out,
        "eddy_throttles_total",
        "counter",
        "Synchronous invocations refused because the function's concurrency was in use (since start).",
    );
    let mut throttles: Vec<_> = s.executor.throttles().into_iter().collect();
    throttles.sort();
    for (function, n) in throttles {
        let _ = writeln!(out, "eddy_throttles_total{{function=\"{function}\"}} {n}");
    }
    family(
        &mut out,
        "eddy_access_denied_total",
        "counter",
        "Requests refused because their signer's policy or role did not allow them (since start).",
    );
    let denied = s.guard.denied.load(std::sync::atomic::Ordering::Relaxed);
    let _ = writeln!(out, "eddy_access_denied_total {denied}");
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
