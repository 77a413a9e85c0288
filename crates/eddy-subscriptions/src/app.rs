//! The validated, resolved app that manifests declare: buckets, tables, functions, triggers.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use eddy_core::{
    BucketName, ColumnType, FunctionName, ScheduleName, Source, TableName, TableSchema,
};
use serde::{Deserialize, Serialize};

use crate::expression::ScheduleExpression;
use crate::filter::{EventSet, Filter};
use crate::policy::Statement;
use crate::yaml::Pos;

/// Where something was declared.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Origin {
    pub file: String,
    pub pos: Pos,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.pos.line, self.pos.column)
    }
}

/// Everything the manifests declare, checked and with references resolved.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct App {
    pub buckets: Vec<BucketSpec>,
    pub tables: Vec<TableSpec>,
    pub functions: Vec<FunctionSpec>,
    pub triggers: Vec<TriggerSpec>,
    /// Functions run at set times (stored apps from before schedules have none).
    #[serde(default)]
    pub schedules: Vec<ScheduleSpec>,
    /// How long the journal keeps events.
    #[serde(default, skip_serializing_if = "JournalSpec::keeps_everything")]
    pub journal: JournalSpec,
    /// Keys for client applications, each limited by its policy.
    pub access_keys: Vec<AccessKeySpec>,
}

/// An access key for a client application. Its secret is read when the app is applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccessKeySpec {
    pub name: String,
    pub id: String,
    pub secret: SecretSource,
    pub policy: Vec<Statement>,
    pub at: Origin,
}

/// Where a secret lives: never in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    /// The value of this environment variable of eddy's.
    Env(String),
    /// The contents of this file (trailing whitespace removed).
    File(PathBuf),
}

impl SecretSource {
    /// Reads the secret; the error says where it looked, never what it found.
    pub fn read(&self) -> Result<String, String> {
        let secret = match self {
            SecretSource::Env(name) => eddy_core::secrets::var(name)
                .ok_or_else(|| format!("the environment variable {name} is not set"))?,
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                .trim_end()
                .to_string(),
        };
        if secret.is_empty() {
            return Err("the secret is empty".into());
        }
        Ok(secret)
    }
}

impl App {
    pub fn function(&self, name: &FunctionName) -> Option<&FunctionSpec> {
        self.functions.iter().find(|f| &f.name == name)
    }

    pub fn table(&self, name: &str) -> Option<&TableSpec> {
        self.tables
            .iter()
            .find(|t| t.schema.name().as_str() == name)
    }

    pub fn bucket(&self, name: &str) -> Option<&BucketSpec> {
        self.buckets.iter().find(|b| b.name.as_str() == name)
    }

    pub fn trigger(&self, name: &str) -> Option<&TriggerSpec> {
        self.triggers.iter().find(|t| t.name == name)
    }

    pub fn schedule(&self, name: &str) -> Option<&ScheduleSpec> {
        self.schedules.iter().find(|s| s.name.as_str() == name)
    }

    /// The retry policy of deliveries that go by `name`: a trigger's, or a schedule's
    /// ([`ScheduleSpec::delivery_name`]); the default for anything else.
    pub fn retry_policy(&self, name: &str) -> RetryPolicy {
        self.trigger(name)
            .map(|t| t.retry)
            .or_else(|| self.schedule_of_delivery(name).map(|s| s.retry))
            .unwrap_or_default()
    }

    /// The schedule whose runs' deliveries go by `name` ([`ScheduleSpec::delivery_name`]).
    pub fn schedule_of_delivery(&self, name: &str) -> Option<&ScheduleSpec> {
        self.schedule(name.strip_prefix(SCHEDULE_DELIVERY)?)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BucketSpec {
    pub name: BucketName,
    /// A folder whose files become objects of this bucket.
    pub watch: Option<PathBuf>,
    pub at: Origin,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableSpec {
    pub schema: TableSchema,
    pub at: Origin,
}

/// The smallest and largest memory a function may have, in MB, as on Lambda.
pub const MEMORY_MB: (u32, u32) = (128, 10_240);
/// The longest timeout, as on Lambda.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(900);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionSpec {
    pub name: FunctionName,
    pub runtime: Runtime,
    pub memory_mb: u32,
    #[serde(rename = "timeout_ms", with = "crate::locked::millis")]
    pub timeout: Duration,
    /// Parallel invocations at most; further work waits.
    pub concurrency: u32,
    /// Workers kept started and initialised ahead of invocations (nodejs, python and
    /// provided); `None` takes the default, [`FunctionSpec::warm_workers`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<u32>,
    pub environment: BTreeMap<String, String>,
    pub role: Vec<Statement>,
    /// Where the outcomes of its asynchronous invocations go.
    #[serde(default, skip_serializing_if = "Destinations::is_empty")]
    pub destinations: Destinations,
    pub at: Origin,
}

/// Where the outcome of an asynchronous invocation (an object trigger's delivery, an `Event`
/// invoke, a schedule's run) goes, as Lambda's destinations: an invocation record, to a
/// function, a bucket or a table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destinations {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_success: Option<Target>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<Target>,
}

/// A destination: a function invoked asynchronously with each record, a bucket holding an
/// object per record, or a table holding a row per record. Written and locked as
/// `function/NAME`, `bucket/NAME`, `table/NAME` (apps locked before bucket and table
/// destinations existed hold a function's bare name, which still reads).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Target {
    Function(FunctionName),
    Bucket(BucketName),
    Table(TableName),
}

impl Target {
    /// `function/NAME`, `bucket/NAME` or `table/NAME`; what is wrong with it otherwise.
    pub fn parse(text: &str) -> Result<Self, String> {
        let invalid = |e: eddy_core::InvalidName| e.to_string();
        match text.split_once('/') {
            Some(("function", name)) => FunctionName::new(name)
                .map(Target::Function)
                .map_err(invalid),
            Some(("bucket", name)) => BucketName::new(name).map(Target::Bucket).map_err(invalid),
            Some(("table", name)) => TableName::new(name).map(Target::Table).map_err(invalid),
            _ => Err("not function/NAME, bucket/NAME or table/NAME".into()),
        }
    }
}

/// What a table must be to hold destination records, as `eddy validate` says it.
pub const DESTINATION_TABLE_SHAPE: &str = "a destination table has a one-column `text` primary key (each record's name goes there), a `json` column `record` (the record), and every other column nullable";

/// Whether a table can hold destination records: a row per record,
/// `{KEY: its name, record: the record}`.
pub fn destination_table_fits(schema: &TableSchema) -> Result<(), String> {
    let key = schema.primary_key();
    let [key] = key else {
        return Err(format!("its primary key has {} columns", key.len()));
    };
    let key = schema
        .column(key.as_str())
        .expect("a key column is a column");
    if key.ty != ColumnType::Text {
        return Err(format!(
            "its primary key `{}` is {}, not text",
            key.name,
            key.ty.as_str()
        ));
    }
    match schema.column("record") {
        None => return Err("it has no column `record`".into()),
        Some(c) if c.ty != ColumnType::Json => {
            return Err(format!(
                "its column `record` is {}, not json",
                c.ty.as_str()
            ));
        }
        Some(_) => {}
    }
    let required = schema
        .columns()
        .iter()
        .find(|c| !c.nullable && c.name != key.name && c.name.as_str() != "record");
    match required {
        Some(c) => Err(format!("its column `{}` is not nullable", c.name)),
        None => Ok(()),
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Function(name) => write!(f, "function/{name}"),
            Target::Bucket(name) => write!(f, "bucket/{name}"),
            Target::Table(name) => write!(f, "table/{name}"),
        }
    }
}

impl From<Target> for String {
    fn from(target: Target) -> Self {
        target.to_string()
    }
}

impl TryFrom<String> for Target {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        if !text.contains('/') {
            return FunctionName::new(&text)
                .map(Target::Function)
                .map_err(|e| e.to_string());
        }
        Target::parse(&text)
    }
}

impl Destinations {
    pub fn is_empty(&self) -> bool {
        self.on_success.is_none() && self.on_failure.is_none()
    }
}

impl FunctionSpec {
    /// How many warm workers the function keeps: as declared, or one for a function that
    /// runs in workers and has triggers (so the first event after a quiet spell does not wait
    /// for a process to start), none otherwise.
    pub fn warm_workers(&self, has_triggers: bool) -> u32 {
        let in_workers = matches!(
            self.runtime,
            Runtime::Nodejs { .. } | Runtime::Python { .. } | Runtime::Provided { .. }
        );
        match (in_workers, self.warm) {
            (false, _) => 0,
            (true, Some(n)) => n,
            (true, None) => u32::from(has_triggers),
        }
    }

    pub const DEFAULT_MEMORY_MB: u32 = 128;
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
    pub const DEFAULT_CONCURRENCY: u32 = 4;
}

/// How a function runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Runtime {
    /// One process per invocation: the event on stdin, the result on stdout.
    Exec {
        command: Vec<String>,
        dir: PathBuf,
    },
    Nodejs {
        handler: String,
        code: PathBuf,
    },
    Python {
        handler: String,
        code: PathBuf,
    },
    /// Any executable that speaks the Lambda Runtime API.
    Provided {
        command: Vec<String>,
        dir: PathBuf,
    },
    /// POST the event to a URL; the signing secret comes from an environment variable.
    Webhook {
        url: String,
        secret_env: Option<String>,
        /// Hosts the webhook may reach although they are loopback, private, link-local or a
        /// metadata address (refused otherwise).
        private_hosts: Vec<String>,
    },
    /// A handler registered in the embedding Rust program under the function's name.
    InProcess,
}

impl Runtime {
    pub fn name(&self) -> &'static str {
        match self {
            Runtime::Exec { .. } => "exec",
            Runtime::Nodejs { .. } => "nodejs",
            Runtime::Python { .. } => "python",
            Runtime::Provided { .. } => "provided",
            Runtime::Webhook { .. } => "webhook",
            Runtime::InProcess => "in_process",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TriggerSpec {
    /// Unique; handlers see it as the S3 event's `configurationId`.
    pub name: String,
    pub function: FunctionName,
    pub source: Source,
    pub events: EventSet,
    pub filter: Filter,
    pub retry: RetryPolicy,
    pub ordering: Ordering,
    pub format: Format,
    pub enabled: bool,
    /// A table trigger's destination for the records it gives up on, as an event source
    /// mapping's on-failure destination (an object trigger's go to its function's
    /// destinations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<Target>,
    /// Whether the trigger, once declared, receives an event for every object or row that
    /// exists on its source (once, whichever node and however often the app is applied).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub backfill: bool,
    /// Records delivered many to an invocation, as a Lambda event source mapping batches a
    /// stream; `None`: one event per invocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchSpec>,
    pub at: Origin,
}

/// How a trigger's records are gathered into batches: Lambda's event-source-mapping settings
/// by eddy's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchSpec {
    /// The most records an invocation gets (`BatchSize`).
    pub size: u32,
    /// How long records are gathered before a batch smaller than `size` goes
    /// (`MaximumBatchingWindowInSeconds`); zero: as soon as any are there.
    #[serde(rename = "window_ms", with = "crate::locked::millis")]
    pub window: Duration,
    /// The most batches of the trigger running at once (`ParallelizationFactor`); each key's
    /// records stay in order.
    pub parallel: u32,
    /// A failing batch is split in two and each half tried again, down to the failing record
    /// (`BisectBatchOnFunctionError`).
    pub bisect_on_error: bool,
    /// The handler may answer `{"batchItemFailures": [{"itemIdentifier": …}]}` to have only
    /// those records (and what follows each in its key's order) tried again
    /// (`FunctionResponseTypes: [ReportBatchItemFailures]`).
    pub report_failures: bool,
}

impl BatchSpec {
    /// Lambda's limits: up to 10,000 records, a 300 s window, 10 batches at once.
    pub const MAX_SIZE: u32 = 10_000;
    pub const MAX_WINDOW: Duration = Duration::from_secs(300);
    pub const MAX_PARALLEL: u32 = 10;
}

impl Default for BatchSpec {
    /// Lambda's defaults for a DynamoDB stream.
    fn default() -> Self {
        Self {
            size: 100,
            window: Duration::ZERO,
            parallel: 1,
            bisect_on_error: false,
            report_failures: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    #[serde(rename = "backoff_min_ms", with = "crate::locked::millis")]
    pub backoff_min: Duration,
    #[serde(rename = "backoff_max_ms", with = "crate::locked::millis")]
    pub backoff_max: Duration,
    /// An event older than this is dead-lettered instead of tried again.
    #[serde(rename = "max_event_age_ms", with = "crate::locked::millis")]
    pub max_event_age: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            max_event_age: Duration::from_secs(6 * 3600),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ordering {
    /// Deliveries run in parallel, in any order.
    #[default]
    Unordered,
    /// The events of one object key or primary key run one at a time, in commit order.
    PerKey,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// S3 notifications and DynamoDB-Streams records.
    #[default]
    Aws,
    /// eddy's plain records.
    Plain,
}

/// How a schedule's delivery names start (trigger names cannot hold a `/`).
const SCHEDULE_DELIVERY: &str = "schedule/";

/// A function run at set times, as an EventBridge schedule runs a Lambda function: each run is
/// an event in the journal, delivered with the schedule's retry policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleSpec {
    pub name: ScheduleName,
    pub function: FunctionName,
    pub expression: ScheduleExpression,
    /// The IANA time zone of a cron or at expression's wall-clock times.
    pub timezone: String,
    /// No run before this instant (milliseconds since the Unix epoch); a rate counts its
    /// periods from it (from the epoch without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ms: Option<i64>,
    /// No run after this instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_ms: Option<i64>,
    /// What the function receives instead of the Scheduled Event, as EventBridge's constant
    /// input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<serde_json::Value>,
    pub missed: Missed,
    pub retry: RetryPolicy,
    pub enabled: bool,
    pub at: Origin,
}

/// What becomes of runs that came due while no eddy ran the schedule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missed {
    /// The latest of them runs once, when eddy is back.
    #[default]
    RunOnce,
    /// None of them runs.
    Skip,
}

impl ScheduleSpec {
    /// Its runs strictly after `after_ms`, in order, within its start and end (the time zone
    /// is looked up once for them all).
    pub fn runs(&self, after_ms: i64) -> impl Iterator<Item = i64> + '_ {
        let tz = jiff::tz::TimeZone::get(&self.timezone).ok();
        let anchor = self.start_ms.unwrap_or(0);
        let mut after = match self.start_ms {
            Some(start) if start > after_ms => start - 1,
            _ => after_ms,
        };
        std::iter::from_fn(move || {
            let next = self.expression.next_after(after, tz.as_ref()?, anchor)?;
            after = next;
            self.end_ms.is_none_or(|end| next <= end).then_some(next)
        })
    }

    /// The first run strictly after `after_ms`, within the schedule's start and end.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        self.runs(after_ms).next()
    }

    /// The next `n` runs after `after_ms` (fewer when the schedule ends).
    pub fn runs_after(&self, after_ms: i64, n: usize) -> Vec<i64> {
        self.runs(after_ms).take(n).collect()
    }

    /// `at_ms` as a wall-clock time of the schedule's zone, with its offset and the zone
    /// (RFC 9557: `2026-12-01T12:00:00+01:00[Europe/Paris]`).
    pub fn local_time(&self, at_ms: i64) -> String {
        let tz = jiff::tz::TimeZone::get(&self.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
        match jiff::Timestamp::from_millisecond(at_ms) {
            Ok(at) => at.to_zoned_datetime(tz).to_string(),
            Err(_) => at_ms.to_string(),
        }
    }

    /// The name its deliveries go by, where a trigger's name would be (see
    /// [`App::schedule_of_delivery`]).
    pub fn delivery_name(&self) -> String {
        format!("{SCHEDULE_DELIVERY}{}", self.name)
    }
}

/// How long the journal keeps events: for ever, or `retain_ms` (then older events are
/// compacted away once nothing needs them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_ms: Option<u64>,
}

impl JournalSpec {
    pub fn keeps_everything(&self) -> bool {
        self.retain_ms.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_destination_locks_as_its_name_and_an_old_bare_function_name_still_reads() {
        let targets: Vec<Target> =
            serde_json::from_str(r#"["function/a", "bucket/logs", "table/outcomes", "b"]"#)
                .unwrap();
        assert_eq!(
            serde_json::to_string(&targets).unwrap(),
            r#"["function/a","bucket/logs","table/outcomes","function/b"]"#
        );
        let wrong = serde_json::from_str::<Target>(r#""queue/jobs""#).unwrap_err();
        assert!(wrong.to_string().contains("not function/NAME"), "{wrong}");
    }

    #[test]
    fn a_destination_table_has_a_text_key_a_json_record_and_nothing_else_required() {
        let column = |name: &str, ty, nullable| eddy_core::Column {
            name: eddy_core::ColumnName::new(name).unwrap(),
            ty,
            nullable,
        };
        let table = |key: &[&str], columns| {
            let key = key.iter().map(|k| eddy_core::ColumnName::new(*k).unwrap());
            TableSchema::new(TableName::new("t").unwrap(), columns, key.collect()).unwrap()
        };
        let name = || column("name", ColumnType::Text, false);
        let record = || column("record", ColumnType::Json, true);
        let fits = |schema: TableSchema| destination_table_fits(&schema);
        assert_eq!(fits(table(&["name"], vec![name(), record()])), Ok(()));
        let note = column("note", ColumnType::Text, true);
        assert_eq!(fits(table(&["name"], vec![name(), record(), note])), Ok(()));
        let seen = column("seen", ColumnType::Boolean, false);
        assert_eq!(
            fits(table(&["name"], vec![name(), record(), seen])),
            Err("its column `seen` is not nullable".into())
        );
        assert_eq!(
            fits(table(&["name"], vec![name()])),
            Err("it has no column `record`".into())
        );
        let id = column("id", ColumnType::Integer, false);
        assert_eq!(
            fits(table(&["id"], vec![id.clone(), record()])),
            Err("its primary key `id` is integer, not text".into())
        );
        assert_eq!(
            fits(table(&["id", "name"], vec![id, name(), record()])),
            Err("its primary key has 2 columns".into())
        );
    }
}
