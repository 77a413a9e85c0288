//! Dead letters: filtered by function, each with its event's trace; redrive one, a
//! selection, or all of a function's (with `admin:write`: the buttons are absent without it,
//! and the request is refused).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::page::{self, Html, Nav, render};
use super::session::Viewer;
use super::{BASE, ConsoleError};
use crate::{Shared, admin};

pub struct Row {
    pub id: i64,
    pub function: String,
    pub trigger: String,
    pub event: u64,
    pub event_href: String,
    pub reason: String,
    pub last_error: String,
    pub attempts: u32,
    pub time: String,
}

#[derive(Template)]
#[template(path = "console/dead_letters.html")]
pub struct DeadLetters {
    pub nav: Nav,
    pub rows: Vec<Row>,
    pub function: String,
    pub functions: Vec<String>,
    pub can_redrive: bool,
    pub redriven: Option<u64>,
}

#[derive(Deserialize)]
pub struct Filter {
    #[serde(default)]
    function: String,
    /// How many the last redrive sent back (shown once, after it).
    redriven: Option<u64>,
}

/// `GET /_eddy/console/dead-letters?function=NAME`.
pub async fn list(
    viewer: Viewer,
    State(s): State<Shared>,
    Query(q): Query<Filter>,
) -> Result<Html, ConsoleError> {
    viewer.require("admin:read", "*")?;
    let mut query = HashMap::new();
    if !q.function.is_empty() {
        query.insert("function".to_string(), q.function.clone());
    }
    let dead = admin::dead_letters(State(s.clone()), Query(query)).await?.0;
    let rows = dead
        .dead_letters
        .into_iter()
        .map(|d| Row {
            id: d.id,
            event_href: page::event_href(d.event_sequence),
            event: d.event_sequence,
            function: d.function,
            trigger: d.trigger,
            reason: d.reason,
            last_error: d.last_error.unwrap_or_default(),
            attempts: d.attempts,
            time: page::time(d.time_ms),
        })
        .collect();
    Ok(render(&DeadLetters {
        nav: Nav::new(&viewer, "dead-letters"),
        rows,
        functions: s
            .app()
            .functions
            .iter()
            .map(|f| f.name.to_string())
            .collect(),
        function: q.function,
        can_redrive: viewer.allows("admin:write", "*"),
        redriven: q.redriven,
    }))
}

/// `POST /_eddy/console/dead-letters/redrive`: the form's `id`s, or every dead letter of its
/// `all` function; then back to `back` (a console page) or the list.
pub async fn redrive(
    viewer: Viewer,
    State(s): State<Shared>,
    axum::Form(form): axum::Form<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    viewer.check_csrf(field("csrf").unwrap_or_default())?;
    viewer.require("admin:write", "*")?;
    let mut redriven = 0;
    if let Some(function) = field("all") {
        redriven += admin::redrive_function(State(s.clone()), Path(function.to_string()))
            .await?
            .0
            .redriven;
    }
    for (_, id) in form.iter().filter(|(k, _)| k == "id") {
        let id: i64 = id
            .parse()
            .map_err(|_| ConsoleError::bad_request(format!("{id:?} is not a dead letter's id")))?;
        redriven += admin::redrive(State(s.clone()), Path(id)).await?.0.redriven;
    }
    let back = match field("back") {
        Some(back) => super::session::next_page(Some(back)),
        None => format!("{BASE}/dead-letters?redriven={redriven}"),
    };
    Ok(Redirect::to(&back).into_response())
}
