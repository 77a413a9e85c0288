//! Usage: what `eddy usage` shows — per function, what Lambda would count and bill, and the
//! estimated cost at Lambda's x86 prices after the free tier — and the same per day.

use askama::Template;
use axum::extract::State;
use eddy_wire::admin::Prices;

use super::ConsoleError;
use super::page::{Html, Nav, render};
use super::session::Viewer;
use crate::{Shared, admin};

pub struct Line {
    pub day: String,
    pub function: String,
    pub invocations: u64,
    pub errors: u64,
    pub throttles: String,
    pub billed_ms: u64,
    pub gb_seconds: String,
}

#[derive(Template)]
#[template(path = "console/usage.html")]
pub struct UsagePage {
    pub nav: Nav,
    pub totals: Vec<Line>,
    pub days: Vec<Line>,
    pub estimate: String,
}

/// `GET /_eddy/console/usage`.
pub async fn page(viewer: Viewer, State(s): State<Shared>) -> Result<Html, ConsoleError> {
    viewer.require("admin:read", "*")?;
    let usage = admin::usage(State(s.clone())).await?.0;
    let daily = admin::daily_usage(State(s.clone())).await?.0;
    let requests: u64 = usage.functions.iter().map(|f| f.invocations).sum();
    let gb_seconds: f64 = usage.functions.iter().map(|f| f.gb_seconds).sum();
    let (request_cost, compute_cost) = Prices::LAMBDA_X86.estimate(requests, gb_seconds);
    let totals = usage
        .functions
        .into_iter()
        .map(|f| Line {
            day: String::new(),
            function: f.function,
            invocations: f.invocations,
            errors: f.errors,
            throttles: f.throttles.to_string(),
            billed_ms: f.billed_ms,
            gb_seconds: format!("{:.4}", f.gb_seconds),
        })
        .collect();
    let days = daily
        .days
        .into_iter()
        .rev()
        .map(|d| Line {
            day: d.day,
            function: d.function,
            invocations: d.invocations,
            errors: d.errors,
            throttles: String::new(),
            billed_ms: d.billed_ms,
            gb_seconds: format!("{:.4}", d.gb_seconds),
        })
        .collect();
    Ok(render(&UsagePage {
        nav: Nav::new(&viewer, "usage"),
        totals,
        days,
        estimate: format!(
            "${:.6} (requests ${request_cost:.6} + compute ${compute_cost:.6}): {requests} requests and {gb_seconds:.4} GB-seconds at Lambda's x86 prices, after the monthly free tier",
            request_cost + compute_cost
        ),
    }))
}
