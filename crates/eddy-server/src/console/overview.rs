//! The overview: each function's invocations, errors, throttles, durations and dead letters,
//! how long the oldest undelivered event has waited, the last hour's events and errors, and
//! what the checker said of the app.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};

use super::ConsoleError;
use super::page::{self, Chart, Html, Nav, render};
use super::session::Viewer;
use crate::{Shared, admin};

pub struct FunctionRow {
    pub name: String,
    pub href: String,
    pub invocations: u64,
    pub errors: u64,
    pub throttles: u64,
    pub p50: String,
    pub p99: String,
    pub dead_letters: usize,
}

#[derive(Template)]
#[template(path = "console/overview.html")]
pub struct Overview {
    pub nav: Nav,
    pub functions: Vec<FunctionRow>,
    pub oldest_pending: String,
    pub events: Chart,
    pub errors: Chart,
    pub findings: String,
    pub app_version: u64,
}

/// How many of a function's latest attempts its percentiles are of.
const PERCENTILE_SAMPLE: u32 = 200;

/// `GET /_eddy/console/`.
pub async fn page(viewer: Viewer, State(s): State<Shared>) -> Result<Html, ConsoleError> {
    viewer.require("admin:read", "*")?;
    let usage = admin::usage(State(s.clone())).await?.0;
    let dead = admin::dead_letters(State(s.clone()), Query(HashMap::new()))
        .await?
        .0;
    let activity = admin::activity(State(s.clone()), Query(HashMap::new()))
        .await?
        .0;
    let mut functions = Vec::new();
    for f in usage.functions {
        let query = HashMap::from([
            ("function".to_string(), f.function.clone()),
            ("latest".to_string(), PERCENTILE_SAMPLE.to_string()),
        ]);
        let latest = admin::invocations(State(s.clone()), Query(query)).await?.0;
        let mut durations: Vec<f64> = latest.invocations.iter().map(|i| i.duration_ms).collect();
        durations.sort_by(f64::total_cmp);
        let at = |q: f64| {
            durations
                .get(((durations.len() as f64 - 1.0) * q).round() as usize)
                .map_or("–".to_string(), |ms| page::millis(*ms))
        };
        functions.push(FunctionRow {
            href: format!("{}/functions/{}", super::BASE, page::encode(&f.function)),
            dead_letters: dead
                .dead_letters
                .iter()
                .filter(|d| d.function == f.function)
                .count(),
            p50: at(0.5),
            p99: at(0.99),
            name: f.function,
            invocations: f.invocations,
            errors: f.errors,
            throttles: f.throttles,
        });
    }
    let minute = |ms: i64| page::time(ms)[11..16].to_string();
    let events: Vec<(String, f64)> = activity
        .minutes
        .iter()
        .map(|m| (minute(m.minute_ms), m.events as f64 / 60.0))
        .collect();
    let mut errors_by_minute: HashMap<i64, u64> = HashMap::new();
    for f in &activity.functions {
        for m in &f.minutes {
            *errors_by_minute.entry(m.minute_ms).or_default() += m.errors;
        }
    }
    let errors: Vec<(String, f64)> = activity
        .minutes
        .iter()
        .map(|m| {
            let n = errors_by_minute.get(&m.minute_ms).copied().unwrap_or(0);
            (minute(m.minute_ms), n as f64)
        })
        .collect();
    let oldest_pending = match s.executor.oldest_pending_age().await? {
        Some(age) => page::millis(age.as_secs_f64() * 1000.0),
        None => "nothing waits".to_string(),
    };
    Ok(render(&Overview {
        nav: Nav::new(&viewer, ""),
        functions,
        oldest_pending,
        events: Chart::bars(
            "Events per second, each minute of the last hour",
            &events,
            "events/s",
        ),
        errors: Chart::bars(
            "Failed attempts, each minute of the last hour",
            &errors,
            "errors",
        ),
        findings: s.node.findings(),
        app_version: s.node.app_version(),
    }))
}
