//! Admin API bodies.

use serde::{Deserialize, Serialize};

/// `POST /_eddy/v1/deploy`: manifests to check as one app and put in service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    pub manifests: Vec<DeployedManifest>,
}

/// A manifest as `eddy deploy` sends it: its text, and its absolute path on the machine that
/// sent it, from whose folder relative paths start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployedManifest {
    pub path: String,
    pub text: String,
}

/// What a deploy did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeployResponse {
    /// The app's version: above every app put in service before.
    pub version: u64,
    pub functions: usize,
    pub triggers: usize,
    /// The manifest checker's warnings, as it prints them (empty when there were none).
    pub warnings: String,
}

/// `GET /_eddy/v1/functions`: each function as Lambda's `GetFunctionConfiguration` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionList {
    pub functions: Vec<serde_json::Value>,
}

/// `GET /_eddy/v1/triggers`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TriggerList {
    pub triggers: Vec<TriggerInfo>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TriggerInfo {
    pub name: String,
    pub function: String,
    /// `bucket/NAME`, `table/NAME` or `function/NAME`.
    pub source: String,
    /// The event kinds, as AWS names them.
    pub events: Vec<String>,
    /// Whether the trigger has a filter on the event's content.
    pub filtered: bool,
    /// `unordered` or `per_key`.
    pub ordering: String,
    /// `aws` or `plain`.
    pub format: String,
    pub enabled: bool,
    pub retry: RetryInfo,
}

/// `GET /_eddy/v1/schedules`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleList {
    pub schedules: Vec<ScheduleInfo>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleInfo {
    pub name: String,
    pub function: String,
    /// As written: `rate(5 minutes)`, `cron(0 12 * * ? *)`, `at(2027-01-01T00:00:00)`.
    pub expression: String,
    pub timezone: String,
    /// `run_once` or `skip`.
    pub missed: String,
    pub enabled: bool,
    /// The last run journaled (or, before the first, the moment the schedule was first
    /// kept), in milliseconds since the Unix epoch; `None` until a node keeps it.
    pub last_run_ms: Option<i64>,
    /// Its next runs after now (at most five), in milliseconds since the Unix epoch.
    pub next_runs_ms: Vec<i64>,
    pub retry: RetryInfo,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryInfo {
    pub max_attempts: u32,
    pub backoff_min_ms: u64,
    pub backoff_max_ms: u64,
    pub max_event_age_ms: u64,
}

/// A journal event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub id: String,
    pub sequence: u64,
    pub source: String,
    /// As AWS names it: `ObjectCreated:Put`, `INSERT`, …
    pub kind: String,
    pub key: String,
    pub time_ms: i64,
    pub payload: serde_json::Value,
    pub lineage: LineageInfo,
}

/// Which event and invocation caused a write, and how many handler hops it is from a client's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineageInfo {
    pub cause_event: Option<String>,
    pub cause_invocation: Option<String>,
    pub hops: u32,
}

/// `GET /_eddy/v1/events`: events in commit order; `next` is the `after` of the next page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventPage {
    pub events: Vec<EventRecord>,
    pub next: u64,
}

/// `GET /_eddy/v1/events/{id}`: the event, each trigger on its source with whether it matched
/// and why, and what ran for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExplainedEvent {
    pub event: EventRecord,
    pub triggers: Vec<TriggerVerdict>,
    /// The event's deliveries, originals and replays, in the order they were made.
    #[serde(default)]
    pub deliveries: Vec<DeliveryInfo>,
    pub invocations: Vec<InvocationInfo>,
}

/// One delivery of an event to a function.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryInfo {
    pub id: i64,
    /// The trigger's name; `schedule/NAME` for a schedule's run, `$invoke` for an asynchronous
    /// invocation.
    pub trigger: String,
    pub function: String,
    /// `ready`, `leased` (running), `done` or `dead`.
    pub state: String,
    pub attempts: u32,
    /// When a ready delivery's next attempt is due.
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
    pub dead_reason: Option<String>,
    /// The replay that made it; absent for the original.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<i64>,
    /// The journal event that carried its destination record (an asynchronous invocation of the
    /// destination function), once its outcome was final and a destination was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_event: Option<u64>,
}

/// `POST /_eddy/v1/triggers/{name}/replay`: the journal's events from `from` to `to` (the
/// newest, without one) delivered again to the trigger. Each is a sequence number or a time
/// (`2026-12-01T00:00:00Z`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    pub from: JournalPosition,
    #[serde(default)]
    pub to: Option<JournalPosition>,
}

/// A place in the journal: a sequence number, or a time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum JournalPosition {
    Seq(u64),
    Time(String),
}

/// A replay and how far it got: `POST /_eddy/v1/triggers/{name}/replay` and `…/backfill`
/// answer one (202: its deliveries are made from then on), `GET /_eddy/v1/replays` lists them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplayInfo {
    pub replay: i64,
    pub trigger: String,
    /// The range of sequence numbers replayed (empty when `from` is above `to`).
    pub from: u64,
    pub to: u64,
    /// The next event of the range to look at; past `to` once every delivery is made.
    pub next: u64,
    /// The deliveries made so far: one per event of the range the trigger matched.
    pub events: u64,
    pub created_ms: i64,
    /// When its last deliveries were made.
    pub finished_ms: Option<i64>,
    /// Whether it is a backfill's: events for the objects or rows that existed, journaled for
    /// it alone.
    pub backfill: bool,
}

/// `GET /_eddy/v1/replays`: newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplayList {
    pub replays: Vec<ReplayInfo>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TriggerVerdict {
    pub trigger: String,
    pub function: String,
    pub matched: bool,
    pub clauses: Vec<ClauseVerdict>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClauseVerdict {
    pub clause: String,
    pub passed: bool,
    /// The values the clause looked at.
    pub saw: String,
}

/// One recorded attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InvocationInfo {
    pub request_id: String,
    pub function: String,
    pub delivery_id: Option<i64>,
    pub event_sequence: Option<u64>,
    pub attempt: u32,
    pub start_ms: i64,
    pub duration_ms: f64,
    /// `success`, `error` or `timeout`.
    pub outcome: String,
    pub error_type: Option<String>,
    pub error: Option<String>,
    pub log: String,
    pub log_truncated: bool,
    pub memory_mb: u32,
    pub billed_ms: u64,
    pub max_memory_mb: Option<u64>,
    pub init_ms: Option<f64>,
    /// How many records the invocation carried, when it was a batch's (`delivery_id` and
    /// `event_sequence` then name its first record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
    /// What a successful attempt returned, as JSON (its first 16 KiB; a longer answer is cut
    /// and ends in `…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
}

/// `GET /_eddy/v1/invocations`: attempts in the order they were recorded; `next` is the
/// `after` of the next page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InvocationPage {
    pub invocations: Vec<InvocationInfo>,
    pub next: i64,
}

/// A dead-lettered delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterInfo {
    pub id: i64,
    pub event_sequence: u64,
    pub trigger: String,
    pub function: String,
    /// `RetriesExhausted`, `EventAgeExceeded`, `RecursionLimit`, `FunctionMissing` or
    /// `Refused`.
    pub reason: String,
    pub last_error: Option<String>,
    pub attempts: u32,
    pub time_ms: i64,
}

/// `GET /_eddy/v1/dead-letters`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterList {
    pub dead_letters: Vec<DeadLetterInfo>,
}

/// `POST …/redrive`: how many dead letters went back to be delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redriven {
    pub redriven: u64,
}

/// `GET /_eddy/v1/usage`: per function, what Lambda would count and bill.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub functions: Vec<FunctionUsage>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionUsage {
    pub function: String,
    /// The function's memory now; absent for a function no longer declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u32>,
    pub invocations: u64,
    pub errors: u64,
    pub throttles: u64,
    pub duration_ms: f64,
    pub billed_ms: u64,
    pub gb_seconds: f64,
}

/// `GET /_eddy/v1/activity?minutes=N`: what happened in each of the last `N` whole minutes
/// and the current one — events journaled, and each function's attempts and failures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    pub minutes: Vec<MinuteEvents>,
    pub functions: Vec<FunctionActivity>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinuteEvents {
    pub minute_ms: i64,
    pub events: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionActivity {
    pub function: String,
    /// Only the minutes with attempts.
    pub minutes: Vec<FunctionMinute>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionMinute {
    pub minute_ms: i64,
    pub invocations: u64,
    pub errors: u64,
}

/// Prices to estimate a bill with: Lambda's published x86 prices and monthly free tier unless
/// someone says otherwise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prices {
    pub per_million_requests: f64,
    pub per_gb_second: f64,
    pub free_requests: f64,
    pub free_gb_seconds: f64,
}

impl Prices {
    pub const LAMBDA_X86: Prices = Prices {
        per_million_requests: 0.20,
        per_gb_second: 0.000_016_666_7,
        free_requests: 1_000_000.0,
        free_gb_seconds: 400_000.0,
    };

    /// What `requests` and `gb_seconds` would cost after the free tier: requests, compute.
    pub fn estimate(&self, requests: u64, gb_seconds: f64) -> (f64, f64) {
        let requests =
            (requests as f64 - self.free_requests).max(0.0) / 1e6 * self.per_million_requests;
        let compute = (gb_seconds - self.free_gb_seconds).max(0.0) * self.per_gb_second;
        (requests, compute)
    }
}

/// `GET /_eddy/v1/usage/daily`: per day (UTC) and function, what Lambda would count and bill.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DailyUsage {
    pub days: Vec<DayUsage>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DayUsage {
    /// `2026-12-01`.
    pub day: String,
    pub function: String,
    pub invocations: u64,
    pub errors: u64,
    pub billed_ms: u64,
    pub gb_seconds: f64,
}
