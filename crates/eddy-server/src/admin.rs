//! The admin API under `/_eddy/v1/`: functions, triggers and schedules from the loaded
//! manifests, events with the explanation of which triggers matched, invocations with their
//! logs, dead letters and redrive.

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use eddy_core::{Event, FunctionName};
use eddy_executor::{DeadLetter, InvocationRecord, JournalPoint};
use eddy_subscriptions::{Filter, Format, Missed, Ordering, RetryPolicy};
use eddy_wire::admin::*;

use crate::Shared;
use crate::error::ApiError;

type Result<T> = std::result::Result<T, ApiError>;

pub async fn functions(State(s): State<Shared>) -> Json<FunctionList> {
    let functions = s
        .app()
        .functions
        .iter()
        .map(crate::lambda::configuration)
        .collect();
    Json(FunctionList { functions })
}

pub async fn triggers(State(s): State<Shared>) -> Json<TriggerList> {
    let triggers = s
        .app()
        .triggers
        .iter()
        .map(|t| TriggerInfo {
            name: t.name.clone(),
            function: t.function.to_string(),
            source: t.source.to_string(),
            events: t.events.kinds().map(|k| k.as_str().to_string()).collect(),
            filtered: t.filter != Filter::None,
            ordering: match t.ordering {
                Ordering::PerKey => "per_key",
                Ordering::Unordered => "unordered",
            }
            .into(),
            format: match t.format {
                Format::Plain => "plain",
                Format::Aws => "aws",
            }
            .into(),
            enabled: t.enabled,
            retry: retry_info(&t.retry),
        })
        .collect();
    Json(TriggerList { triggers })
}

fn retry_info(retry: &RetryPolicy) -> RetryInfo {
    RetryInfo {
        max_attempts: retry.max_attempts,
        backoff_min_ms: retry.backoff_min.as_millis() as u64,
        backoff_max_ms: retry.backoff_max.as_millis() as u64,
        max_event_age_ms: retry.max_event_age.as_millis() as u64,
    }
}

/// `POST /_eddy/v1/triggers/{name}/replay`.
pub async fn replay(
    State(s): State<Shared>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<ReplayInfo>)> {
    let request: ReplayRequest = serde_json::from_slice(&body).map_err(|e| {
        let expected = "{\"from\": SEQUENCE or TIME, \"to\": SEQUENCE or TIME (optional)}, \
                        a TIME like 2026-12-01T00:00:00Z";
        let message = format!("the body is not a replay request ({e}); expected {expected}");
        ApiError::new(StatusCode::BAD_REQUEST, "InvalidReplay", message)
    })?;
    let from = journal_point(&request.from, "from")?;
    let to = request
        .to
        .as_ref()
        .map(|p| journal_point(p, "to"))
        .transpose()?;
    let made = s.executor.replay(&name, from, to).await?;
    Ok((StatusCode::ACCEPTED, Json(replay_info(made))))
}

/// A replay's bound as the request gave it: a sequence number, or a time.
fn journal_point(position: &JournalPosition, field: &str) -> Result<JournalPoint> {
    match position {
        JournalPosition::Seq(seq) => Ok(JournalPoint::Seq(*seq)),
        JournalPosition::Time(text) => eddy_core::time::parse_iso8601(text)
            .map(JournalPoint::Time)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "InvalidReplay",
                    format!("`{field}` is {text:?}; expected a sequence number or a time like 2026-12-01T00:00:00Z"),
                )
            }),
    }
}

/// `POST /_eddy/v1/triggers/{name}/backfill`: an event for each object or row that exists on
/// the trigger's source, to the trigger alone.
pub async fn backfill(
    State(s): State<Shared>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<ReplayInfo>)> {
    let made = s.node.backfill(&name).await?;
    Ok((StatusCode::ACCEPTED, Json(replay_info(made))))
}

/// `GET /_eddy/v1/replays`.
pub async fn replays(State(s): State<Shared>) -> Result<Json<ReplayList>> {
    let replays = s.executor.replays().await?;
    Ok(Json(ReplayList {
        replays: replays.into_iter().map(replay_info).collect(),
    }))
}

fn replay_info(r: eddy_executor::Replay) -> ReplayInfo {
    ReplayInfo {
        replay: r.id,
        trigger: r.trigger,
        from: r.from_seq,
        to: r.to_seq,
        next: r.next_seq,
        events: r.events,
        created_ms: r.created_ms,
        finished_ms: r.finished_ms,
        backfill: r.backfill.is_some(),
    }
}

/// How many next runs `GET /_eddy/v1/schedules` shows.
const NEXT_RUNS: usize = 5;

/// `GET /_eddy/v1/schedules`: each schedule, its last run and its next ones.
pub async fn schedules(State(s): State<Shared>) -> Result<Json<ScheduleList>> {
    let last_runs = s.executor.schedule_runs().await?;
    let now = eddy_bus::now_ms();
    let schedules = s
        .app()
        .schedules
        .iter()
        .map(|schedule| ScheduleInfo {
            name: schedule.name.to_string(),
            function: schedule.function.to_string(),
            expression: schedule.expression.to_string(),
            timezone: schedule.timezone.clone(),
            missed: match schedule.missed {
                Missed::RunOnce => "run_once",
                Missed::Skip => "skip",
            }
            .into(),
            enabled: schedule.enabled,
            last_run_ms: last_runs.get(schedule.name.as_str()).copied(),
            next_runs_ms: schedule.runs_after(now, NEXT_RUNS),
            retry: retry_info(&schedule.retry),
        })
        .collect();
    Ok(Json(ScheduleList { schedules }))
}

fn event_record(e: &Event) -> EventRecord {
    EventRecord {
        id: e.id.to_string(),
        sequence: e.seq,
        source: e.source.to_string(),
        kind: e.kind.as_str().into(),
        key: e.key.clone(),
        time_ms: e.time_ms,
        payload: e.payload.clone(),
        lineage: LineageInfo {
            cause_event: e.lineage.cause_event.map(|id| id.to_string()),
            cause_invocation: e.lineage.cause_invocation.clone(),
            hops: e.lineage.hops,
        },
    }
}

/// A whole-number query parameter, or its default.
fn number(q: &HashMap<String, String>, name: &str, default: u64) -> Result<u64> {
    q.get(name).map_or(Ok(default), |v| {
        v.parse().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidQuery",
                format!("{name} must be a whole number; got {v:?}"),
            )
        })
    })
}

/// `limit`: 100 unless given, at most 1000.
fn page_limit(q: &HashMap<String, String>) -> Result<u32> {
    Ok(number(q, "limit", 100)?.min(1000) as u32)
}

/// The longest `wait` a request for events or invocations may ask for.
const MAX_WAIT_SECONDS: u64 = 60;

/// `GET /_eddy/v1/events?after=SEQ&limit=N&last=N&wait=SECONDS`: events in commit order, after
/// `SEQ` or the last `N`. With `wait`, a request that would find none waits up to that long for
/// the next commit (what `eddy events tail --follow` asks for).
pub async fn events(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<EventPage>> {
    let limit = page_limit(&q)?;
    let after = if q.contains_key("last") {
        s.bus.last_seq().saturating_sub(number(&q, "last", 0)?)
    } else {
        number(&q, "after", 0)?
    };
    let wait = number(&q, "wait", 0)?.min(MAX_WAIT_SECONDS);
    // Shared as a follower hands them over (the events it holds are not copied).
    let mut events: Vec<std::sync::Arc<Event>> = s
        .bus
        .read_after(after, limit)
        .await?
        .into_iter()
        .map(std::sync::Arc::new)
        .collect();
    if events.is_empty() && wait > 0 {
        let mut follower = s.bus.follow(after);
        let next = tokio::time::timeout(Duration::from_secs(wait), follower.next()).await;
        if let Ok(found) = next {
            events = found?;
            events.truncate(limit as usize);
        }
    }
    Ok(Json(EventPage {
        next: events.last().map_or(after, |e| e.seq),
        events: events.iter().map(|e| event_record(e)).collect(),
    }))
}

/// `GET /_eddy/v1/events/{id}`: the event, and for each trigger on its source whether it
/// matched and why.
pub async fn event(
    State(s): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<ExplainedEvent>> {
    let Some((event, explanations)) = s.executor.explain(&id).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NoSuchEvent",
            format!("no event with id or sequence number {id:?}"),
        ));
    };
    let triggers = explanations
        .iter()
        .map(|x| TriggerVerdict {
            trigger: x.trigger.clone(),
            function: x.function.clone(),
            matched: x.matched,
            clauses: x
                .clauses
                .iter()
                .map(|c| ClauseVerdict {
                    clause: c.clause.clone(),
                    passed: c.passed,
                    saw: c.detail.clone(),
                })
                .collect(),
        })
        .collect();
    let invocations = s.executor.invocations(None, Some(event.seq)).await?;
    let deliveries = s.executor.deliveries_of(event.seq).await?;
    Ok(Json(ExplainedEvent {
        event: event_record(&event),
        triggers,
        deliveries: deliveries
            .into_iter()
            .map(|d| DeliveryInfo {
                id: d.id,
                trigger: d.trigger,
                function: d.function,
                state: d.state,
                attempts: d.attempts,
                next_attempt_ms: d.next_attempt_ms,
                last_error: d.last_error,
                dead_reason: d.dead_reason,
                replay: (d.replay != 0).then_some(d.replay),
                destination_event: d.destination_seq,
            })
            .collect(),
        invocations: invocations.iter().map(invocation_info).collect(),
    }))
}

fn invocation_info(r: &InvocationRecord) -> InvocationInfo {
    InvocationInfo {
        request_id: r.request_id.clone(),
        function: r.function.clone(),
        delivery_id: r.delivery_id,
        event_sequence: r.event_seq,
        attempt: r.attempt,
        start_ms: r.start_ms,
        duration_ms: r.duration_us as f64 / 1000.0,
        outcome: r.outcome.clone(),
        error_type: r.error_type.clone(),
        error: r.error.clone(),
        log: r.output.clone(),
        log_truncated: r.truncated,
        memory_mb: r.memory_mb,
        billed_ms: r.billed_ms,
        max_memory_mb: r.max_memory_mb,
        init_ms: r.init_us.map(|us| us as f64 / 1000.0),
        batch_size: r.batch_size,
        response: r.response.clone(),
    }
}

fn function_param(q: &HashMap<String, String>) -> Result<Option<FunctionName>> {
    Ok(q.get("function").map(FunctionName::new).transpose()?)
}

/// `GET /_eddy/v1/invocations?function=NAME&event=SEQ&after=POS&limit=N&wait=S`: recorded
/// attempts in the order they were recorded; `next` is the `after` of the following page. With
/// `wait`, a request that finds none waits up to that long for the next record (what `eddy logs
/// --follow` asks for). `?function=NAME&latest=N`: the function's latest `N` (at most 1000),
/// newest first.
pub async fn invocations(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<InvocationPage>> {
    let function = function_param(&q)?;
    if q.contains_key("latest") {
        let Some(function) = function else {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "InvalidQuery",
                "latest=N needs function=NAME",
            ));
        };
        let latest = number(&q, "latest", 0)?.min(1000) as u32;
        let records = s.executor.latest_invocations(&function, latest).await?;
        return Ok(Json(InvocationPage {
            invocations: records.iter().map(invocation_info).collect(),
            next: 0,
        }));
    }
    let event = q
        .contains_key("event")
        .then(|| number(&q, "event", 0))
        .transpose()?;
    let after = number(&q, "after", 0)? as i64;
    let wait = Duration::from_secs(number(&q, "wait", 0)?.min(MAX_WAIT_SECONDS));
    let limit = page_limit(&q)?;
    let deadline = tokio::time::Instant::now() + wait;
    let mut recorded = s.executor.recorded();
    loop {
        let page = s
            .executor
            .invocation_page(function.as_ref(), event, after, limit)
            .await?;
        let waited = !page.records.is_empty()
            || tokio::time::timeout_at(deadline, recorded.changed())
                .await
                .is_err();
        if waited {
            return Ok(Json(InvocationPage {
                invocations: page.records.iter().map(invocation_info).collect(),
                next: page.next,
            }));
        }
    }
}

fn dead_letter_info(d: &DeadLetter) -> DeadLetterInfo {
    DeadLetterInfo {
        id: d.delivery_id,
        event_sequence: d.event_seq,
        trigger: d.trigger.clone(),
        function: d.function.clone(),
        reason: d.reason.as_str().into(),
        last_error: d.last_error.clone(),
        attempts: d.attempts,
        time_ms: d.time_ms,
    }
}

/// `GET /_eddy/v1/dead-letters?function=NAME`
pub async fn dead_letters(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<DeadLetterList>> {
    let function = function_param(&q)?;
    let dead = s.executor.dead_letters(function.as_ref()).await?;
    Ok(Json(DeadLetterList {
        dead_letters: dead.iter().map(dead_letter_info).collect(),
    }))
}

/// `POST /_eddy/v1/dead-letters/{id}/redrive`
pub async fn redrive(State(s): State<Shared>, Path(id): Path<i64>) -> Result<Json<Redriven>> {
    if s.executor.redrive(id).await? {
        Ok(Json(Redriven { redriven: 1 }))
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NoSuchDeadLetter",
            format!("no dead letter with id {id}"),
        ))
    }
}

/// `POST /_eddy/v1/functions/{name}/redrive`: every dead letter of the function.
pub async fn redrive_function(
    State(s): State<Shared>,
    Path(name): Path<String>,
) -> Result<Json<Redriven>> {
    let name = FunctionName::new(name)?;
    if s.app().function(&name).is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NoSuchFunction",
            format!("function {name:?} does not exist"),
        ));
    }
    let redriven = s.executor.redrive_function(&name).await?;
    Ok(Json(Redriven { redriven }))
}

/// `GET /_eddy/v1/usage`: per function, what Lambda would bill and count: invocations, errors,
/// throttles, time, billed time and GB-seconds.
pub async fn usage(State(s): State<Shared>) -> Result<Json<Usage>> {
    let throttles = s.executor.throttles();
    let mut functions: std::collections::BTreeMap<String, FunctionUsage> = s
        .app()
        .functions
        .iter()
        .map(|f| {
            let usage = FunctionUsage {
                function: f.name.to_string(),
                memory_mb: Some(f.memory_mb),
                ..FunctionUsage::default()
            };
            (f.name.to_string(), usage)
        })
        .collect();
    for t in s.executor.invocation_totals().await? {
        let entry = functions
            .entry(t.function.clone())
            .or_insert_with(|| FunctionUsage {
                function: t.function.clone(),
                ..FunctionUsage::default()
            });
        entry.invocations += t.count;
        if t.outcome != "success" {
            entry.errors += t.count;
        }
        entry.duration_ms += t.duration_us as f64 / 1e3;
        entry.billed_ms += t.billed_ms;
        entry.gb_seconds += t.gb_seconds();
    }
    let functions = functions
        .into_values()
        .map(|mut usage| {
            usage.throttles = throttles.get(&usage.function).copied().unwrap_or(0);
            usage
        })
        .collect();
    Ok(Json(Usage { functions }))
}

/// The most minutes `GET /_eddy/v1/activity` looks back.
const MAX_ACTIVITY_MINUTES: u64 = 24 * 60;

/// `GET /_eddy/v1/activity?minutes=N`: events journaled per minute (the journal's sequence
/// numbers are gap-free, so each minute's count is the difference of the first sequence
/// numbers at its bounds, found by a search through the journal's keys, never a scan), and
/// each function's attempts and failures per minute.
pub async fn activity(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Activity>> {
    let minutes = number(&q, "minutes", 60)?.clamp(1, MAX_ACTIVITY_MINUTES) as i64;
    let now = eddy_bus::now_ms();
    let first_minute = (now / 60_000 - minutes) * 60_000;
    let next_seq = s.bus.last_seq() + 1;
    let times: Vec<i64> = (0..=minutes + 1)
        .map(|i| first_minute + i * 60_000)
        .collect();
    let firsts = s.bus.first_seqs_at_or_after(&times).await?;
    let bounds: Vec<(i64, u64)> = times
        .iter()
        .zip(firsts)
        .map(|(at, first)| (*at, first.unwrap_or(next_seq)))
        .collect();
    let events = bounds
        .windows(2)
        .map(|w| MinuteEvents {
            minute_ms: w[0].0,
            events: w[1].1.saturating_sub(w[0].1),
        })
        .collect();
    let mut functions = Vec::new();
    for f in &s.app().functions {
        let counted = s
            .executor
            .invocations_per_minute(&f.name, first_minute)
            .await?;
        functions.push(FunctionActivity {
            function: f.name.to_string(),
            minutes: counted
                .into_iter()
                .map(|m| FunctionMinute {
                    minute_ms: m.minute_ms,
                    invocations: m.invocations,
                    errors: m.errors,
                })
                .collect(),
        });
    }
    Ok(Json(Activity {
        minutes: events,
        functions,
    }))
}

/// `GET /_eddy/v1/usage/daily`: per day (UTC) and function, what Lambda would count and bill.
pub async fn daily_usage(State(s): State<Shared>) -> Result<Json<DailyUsage>> {
    let days = s
        .executor
        .invocation_days()
        .await?
        .into_iter()
        .map(|d| DayUsage {
            day: eddy_core::time::iso8601_millis(d.day_ms)[..10].to_string(),
            gb_seconds: d.gb_seconds(),
            function: d.function,
            invocations: d.count,
            errors: d.errors,
            billed_ms: d.billed_ms,
        })
        .collect();
    Ok(Json(DailyUsage { days }))
}
