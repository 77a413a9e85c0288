//! The journal: newest first, filtered by source, kind, key prefix, time and outcome, with a
//! live tail; and each event's trace — every trigger clause by clause, each delivery and
//! attempt with its log, the retry schedule, the dead letter, and the events it caused.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::LazyLock;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use eddy_wire::admin::{EventPage, EventRecord, ExplainedEvent, InvocationInfo};
use futures_util::StreamExt;
use serde::Deserialize;

use super::page::{self, Html, Nav, render};
use super::session::Viewer;
use super::{BASE, ConsoleError};
use crate::{Shared, admin};

/// Events on a page.
const PAGE: usize = 50;
/// The most events one page reads looking for matches, so a rare filter stays fast.
const SCAN: u64 = 5_000;
/// How many events after one the trace looks through for those it caused.
const DOWNSTREAM_SCAN: u64 = 1_000;
/// Live tails open at once, per node.
const TAILS: usize = 32;
static TAILS_OPEN: LazyLock<tokio::sync::Semaphore> =
    LazyLock::new(|| tokio::sync::Semaphore::new(TAILS));

#[derive(Deserialize, Default)]
pub struct Filters {
    #[serde(default)]
    source: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    key: String,
    /// A time like `2026-12-01T10:00:00Z`: events at or after it.
    #[serde(default)]
    since: String,
    /// `pending`, `done`, `dead`, or `unmatched` (no delivery).
    #[serde(default)]
    outcome: String,
    /// Events before this sequence number (the next page).
    before: Option<u64>,
}

pub struct Row {
    pub sequence: u64,
    pub href: String,
    pub time: String,
    pub source: String,
    pub kind: String,
    pub key: String,
    pub outcome: String,
    pub outcome_class: &'static str,
}

#[derive(Template)]
#[template(path = "console/events.html")]
pub struct EventsPage {
    pub nav: Nav,
    pub rows: Vec<Row>,
    pub source: String,
    pub kind: String,
    pub key: String,
    pub since: String,
    pub outcome: String,
    pub scanned: String,
    pub older: Option<String>,
    /// Where the live tail starts (only on the first page without filters).
    pub tail_after: Option<u64>,
    pub sources: Vec<String>,
}

/// What became of an event's deliveries (their states), in a few words, and a style for it.
fn outcome_of(states: Option<&Vec<String>>) -> (String, &'static str) {
    let Some(states) = states.filter(|s| !s.is_empty()) else {
        return ("no trigger matched".into(), "muted");
    };
    let count = |state: &str| states.iter().filter(|s| *s == state).count();
    let (done, dead) = (count("done"), count("dead"));
    let pending = states.len() - done - dead;
    let mut parts = Vec::new();
    for (n, what) in [(done, "done"), (pending, "pending"), (dead, "dead")] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    let class = if dead > 0 {
        "bad"
    } else if pending > 0 {
        "pending"
    } else {
        "good"
    };
    (parts.join(", "), class)
}

fn wants(outcome: &str, class: &str, summary: &str) -> bool {
    match outcome {
        "" => true,
        "dead" => class == "bad",
        "pending" => class == "pending",
        "done" => class == "good",
        "unmatched" => summary == "no trigger matched",
        _ => true,
    }
}

/// `GET /_eddy/console/events`.
pub async fn list(
    viewer: Viewer,
    State(s): State<Shared>,
    Query(f): Query<Filters>,
) -> Result<Html, ConsoleError> {
    viewer.require("admin:read", "*")?;
    if !["", "pending", "done", "dead", "unmatched"].contains(&f.outcome.as_str()) {
        return Err(ConsoleError::bad_request(format!(
            "outcome {:?} is not one of pending, done, dead, unmatched",
            f.outcome
        )));
    }
    let floor = match f.since.trim() {
        "" => 0,
        text => {
            let Some(ms) = eddy_core::time::parse_iso8601(text) else {
                return Err(ConsoleError::bad_request(format!(
                    "since {text:?} is not a time like 2026-12-01T10:00:00Z"
                )));
            };
            match s.bus.first_seq_at_or_after(ms).await? {
                Some(seq) => seq - 1,
                None => s.bus.last_seq(),
            }
        }
    };
    let newest = s.bus.last_seq();
    let top = f.before.map_or(newest, |b| b.saturating_sub(1).min(newest));
    let mut rows = Vec::new();
    let mut hi = top;
    let mut scanned = 0;
    while rows.len() < PAGE && hi > floor && scanned < SCAN {
        let lo = hi.saturating_sub(500).max(floor);
        let chunk = journal_after(&s, lo, hi - lo).await?;
        scanned += hi - lo;
        let candidates: Vec<u64> = chunk
            .events
            .iter()
            .filter(|e| matches(e, &f))
            .map(|e| e.sequence)
            .collect();
        let states = s.executor.delivery_states_of(&candidates).await?;
        for e in chunk.events.iter().rev() {
            if rows.len() == PAGE {
                hi = e.sequence;
                break;
            }
            if !matches(e, &f) {
                continue;
            }
            let (outcome, class) = outcome_of(states.get(&e.sequence));
            if !wants(&f.outcome, class, &outcome) {
                continue;
            }
            rows.push(row(e, outcome, class));
        }
        if rows.len() < PAGE {
            hi = lo;
        }
    }
    let older = (hi > floor).then(|| {
        let mut pairs = vec![
            ("source", f.source.as_str()),
            ("kind", f.kind.as_str()),
            ("key", f.key.as_str()),
            ("since", f.since.as_str()),
            ("outcome", f.outcome.as_str()),
        ];
        let before = (hi + 1).to_string();
        pairs.push(("before", &before));
        pairs.retain(|(_, v)| !v.is_empty());
        format!("{BASE}/events?{}", page::query(&pairs))
    });
    let unfiltered = f.source.is_empty()
        && f.kind.is_empty()
        && f.key.is_empty()
        && f.since.is_empty()
        && f.outcome.is_empty()
        && f.before.is_none();
    let app = s.app();
    let sources = app
        .buckets
        .iter()
        .map(|b| format!("bucket/{}", b.name))
        .chain(
            app.tables
                .iter()
                .map(|t| format!("table/{}", t.schema.name())),
        )
        .chain(app.functions.iter().map(|f| format!("function/{}", f.name)))
        .chain(app.schedules.iter().map(|s| format!("schedule/{}", s.name)))
        .collect();
    Ok(render(&EventsPage {
        nav: Nav::new(&viewer, "events"),
        scanned: format!(
            "events {}–{} of {newest} looked through",
            hi.max(floor) + 1,
            top
        ),
        rows,
        older,
        tail_after: unfiltered.then_some(newest),
        sources,
        source: f.source,
        kind: f.kind,
        key: f.key,
        since: f.since,
        outcome: f.outcome,
    }))
}

fn matches(e: &EventRecord, f: &Filters) -> bool {
    (f.source.is_empty() || e.source == f.source)
        && (f.kind.is_empty()
            || e.kind.eq_ignore_ascii_case(&f.kind)
            || e.kind.starts_with(&f.kind))
        && e.key.starts_with(&f.key)
}

fn row(e: &EventRecord, outcome: String, outcome_class: &'static str) -> Row {
    Row {
        sequence: e.sequence,
        href: page::event_href(e.sequence),
        time: page::time(e.time_ms),
        source: e.source.clone(),
        kind: e.kind.clone(),
        key: e.key.clone(),
        outcome,
        outcome_class,
    }
}

#[derive(Deserialize)]
pub struct TailQuery {
    after: u64,
}

/// `GET /_eddy/console/events/tail?after=SEQ`: each event committed after `SEQ`, as it is
/// committed (server-sent events, each a JSON row; the page's script adds them). At most
/// [`TAILS`] at once per node.
pub async fn tail(
    viewer: Viewer,
    State(s): State<Shared>,
    Query(q): Query<TailQuery>,
) -> Result<Response, ConsoleError> {
    viewer.require("admin:read", "*")?;
    let Ok(permit) = TAILS_OPEN.try_acquire() else {
        return Err(ConsoleError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("{TAILS} live tails are open on this node already"),
        ));
    };
    let follower = s.bus.follow(q.after);
    let batches =
        futures_util::stream::unfold((follower, permit), |(mut follower, permit)| async move {
            let batch = follower.next().await.ok()?;
            Some((batch, (follower, permit)))
        });
    let events = batches.flat_map(|batch| {
        futures_util::stream::iter(batch.into_iter().map(|e| {
            let row = serde_json::json!({
                "sequence": e.seq,
                "href": page::event_href(e.seq),
                "time": page::time(e.time_ms),
                "source": e.source.to_string(),
                "kind": e.kind.as_str(),
                "key": e.key,
            });
            Ok::<_, Infallible>(SseEvent::default().event("journal").data(row.to_string()))
        }))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

pub struct Attempt {
    pub request_id: String,
    pub function: String,
    pub attempt: u32,
    pub start: String,
    pub outcome: String,
    pub good: bool,
    pub duration: String,
    pub memory: String,
    pub billed_ms: u64,
    pub batch: String,
    pub error: String,
    pub response: Option<String>,
    pub log: String,
}

pub struct Delivery {
    pub id: i64,
    pub trigger: String,
    pub function: String,
    pub state: String,
    pub attempts: u32,
    pub schedule: String,
    pub last_error: String,
    pub dead_reason: String,
    pub replay: String,
    pub destination: Option<(u64, String)>,
    pub redrivable: bool,
}

pub struct Clause {
    pub clause: String,
    pub passed: bool,
    pub saw: String,
}

pub struct Verdict {
    pub trigger: String,
    pub function: String,
    pub matched: bool,
    pub clauses: Vec<Clause>,
}

pub struct Linked {
    pub sequence: u64,
    pub href: String,
    pub what: String,
}

#[derive(Template)]
#[template(path = "console/trace.html")]
pub struct Trace {
    pub nav: Nav,
    pub sequence: u64,
    pub id: String,
    pub time: String,
    pub source: String,
    pub kind: String,
    pub key: String,
    pub hops: u32,
    pub payload: String,
    pub cause: Option<Linked>,
    pub cause_invocation: String,
    pub verdicts: Vec<Verdict>,
    pub deliveries: Vec<Delivery>,
    pub attempts: Vec<Attempt>,
    pub downstream: Vec<Linked>,
    pub downstream_scanned: u64,
}

/// `GET /_eddy/console/events/{seq}`: the event's trace.
pub async fn trace(
    viewer: Viewer,
    State(s): State<Shared>,
    Path(seq): Path<String>,
) -> Result<Html, ConsoleError> {
    viewer.require("admin:read", "*")?;
    let explained: ExplainedEvent = admin::event(State(s.clone()), Path(seq)).await?.0;
    let e = &explained.event;
    let now = eddy_bus::now_ms();
    let can_redrive = viewer.allows("admin:write", "*");
    let cause = match &e.lineage.cause_event {
        Some(id) => s.bus.event(id).await?.map(|c| Linked {
            sequence: c.seq,
            href: page::event_href(c.seq),
            what: format!("{} {} {}", c.source, c.kind.as_str(), c.key),
        }),
        None => None,
    };
    let downstream = caused_by(&s, e).await?;
    let deliveries = explained
        .deliveries
        .iter()
        .map(|d| Delivery {
            id: d.id,
            trigger: d.trigger.clone(),
            function: d.function.clone(),
            state: d.state.clone(),
            attempts: d.attempts,
            schedule: match d.state.as_str() {
                "ready" if d.next_attempt_ms > now => format!(
                    "next attempt at {} (in {})",
                    page::time(d.next_attempt_ms),
                    page::age(now, d.next_attempt_ms)
                ),
                "ready" => "due now".into(),
                "leased" => "running".into(),
                _ => String::new(),
            },
            last_error: d.last_error.clone().unwrap_or_default(),
            dead_reason: d.dead_reason.clone().unwrap_or_default(),
            replay: d.replay.map(|r| format!("replay {r}")).unwrap_or_default(),
            destination: d.destination_event.map(|seq| (seq, page::event_href(seq))),
            redrivable: d.state == "dead" && can_redrive,
        })
        .collect();
    let mut attempts: Vec<Attempt> = explained.invocations.iter().map(attempt).collect();
    attempts.sort_by(|a, b| a.start.cmp(&b.start));
    Ok(render(&Trace {
        nav: Nav::new(&viewer, "events"),
        sequence: e.sequence,
        id: e.id.clone(),
        time: page::time(e.time_ms),
        source: e.source.clone(),
        kind: e.kind.clone(),
        key: e.key.clone(),
        hops: e.lineage.hops,
        payload: page::pretty(&e.payload),
        cause,
        cause_invocation: e.lineage.cause_invocation.clone().unwrap_or_default(),
        verdicts: explained
            .triggers
            .iter()
            .map(|t| Verdict {
                trigger: t.trigger.clone(),
                function: t.function.clone(),
                matched: t.matched,
                clauses: t
                    .clauses
                    .iter()
                    .map(|c| Clause {
                        clause: c.clause.clone(),
                        passed: c.passed,
                        saw: c.saw.clone(),
                    })
                    .collect(),
            })
            .collect(),
        deliveries,
        attempts,
        downstream,
        downstream_scanned: DOWNSTREAM_SCAN,
    }))
}

fn attempt(i: &InvocationInfo) -> Attempt {
    Attempt {
        request_id: i.request_id.clone(),
        function: i.function.clone(),
        attempt: i.attempt,
        start: page::time(i.start_ms),
        good: i.outcome == "success",
        outcome: i.outcome.clone(),
        duration: page::millis(i.duration_ms),
        memory: match i.max_memory_mb {
            Some(used) => format!("{used} of {} MB", i.memory_mb),
            None => format!("{} MB", i.memory_mb),
        },
        billed_ms: i.billed_ms,
        batch: i
            .batch_size
            .map(|n| format!("in a batch of {n}"))
            .unwrap_or_default(),
        error: match (&i.error_type, &i.error) {
            (Some(t), Some(m)) => format!("{t}: {m}"),
            (None, Some(m)) => m.clone(),
            (Some(t), None) => t.clone(),
            (None, None) => String::new(),
        },
        response: i.response.as_deref().map(readable),
        log: i.log.clone(),
    }
}

/// An answer kept as JSON, indented when it is whole.
pub(super) fn readable(response: &str) -> String {
    match serde_json::from_str(response) {
        Ok(value) => page::pretty(&value),
        Err(_) => response.to_string(),
    }
}

/// At most `limit` journal events after `after`, through the admin API's handler.
async fn journal_after(s: &Shared, after: u64, limit: u64) -> Result<EventPage, ConsoleError> {
    let query = HashMap::from([
        ("after".to_string(), after.to_string()),
        ("limit".to_string(), limit.to_string()),
    ]);
    Ok(admin::events(State(s.clone()), Query(query)).await?.0)
}

/// How many of the latest events an object's or a row's page looks through for its own.
pub(super) const KEY_SCAN: u64 = 1_000;

/// The events of `source` (`bucket/NAME`, `table/NAME`) and `key` among the latest
/// [`KEY_SCAN`], newest first.
pub(super) async fn latest_of(
    s: &Shared,
    source: &str,
    key: &str,
) -> Result<Vec<EventRecord>, ConsoleError> {
    let after = s.bus.last_seq().saturating_sub(KEY_SCAN);
    let latest = journal_after(s, after, KEY_SCAN).await?;
    Ok(latest
        .events
        .into_iter()
        .rev()
        .filter(|e| e.source == source && e.key == key)
        .collect())
}

/// The events written by the handlers that ran for `e`, among the next [`DOWNSTREAM_SCAN`].
async fn caused_by(s: &Shared, e: &EventRecord) -> Result<Vec<Linked>, ConsoleError> {
    let later = journal_after(s, e.sequence, DOWNSTREAM_SCAN).await?;
    Ok(later
        .events
        .iter()
        .filter(|l| l.lineage.cause_event.as_deref() == Some(e.id.as_str()))
        .map(|l| Linked {
            sequence: l.sequence,
            href: page::event_href(l.sequence),
            what: format!("{} {} {}", l.source, l.kind, l.key),
        })
        .collect())
}
