//! How eddy runs a function once: the runtimes it has, the context every invocation gets, and
//! the outcome it reports.

mod exec;
mod lambda;
mod payload;
mod programs;
mod report;
pub mod sandbox;
mod webhook;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use eddy_core::{EventId, FunctionName, Lineage};
use eddy_subscriptions::{FunctionSpec, Runtime};
use serde_json::Value;

/// The most output (logs) kept per invocation; more is cut, with a marker.
pub const LOG_LIMIT: usize = 256 * 1024;
/// The largest result a function may return, as Lambda's synchronous response limit.
pub const RESULT_LIMIT: usize = 6 * 1024 * 1024;

/// What an invocation knows about itself.
#[derive(Clone, Debug)]
pub struct Context {
    pub request_id: String,
    pub function_name: FunctionName,
    pub memory_mb: u32,
    /// When the invocation times out, in milliseconds since the Unix epoch.
    pub deadline_ms: i64,
    pub invoked_function_arn: String,
    /// The event being delivered, for triggered and asynchronous invocations.
    pub event_id: Option<EventId>,
    /// The lineage to give writes the handler makes, so loops can be seen and stopped.
    pub lineage: Lineage,
}

/// An error the function reported, as Lambda reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionError {
    pub error_type: String,
    pub message: String,
    /// The stack the runtime reported, as it reported it (a list of lines, usually).
    pub stack_trace: Option<Value>,
    /// How delivery should treat the failure: retried (the default), not before a time the
    /// function named (a webhook's `Retry-After`), or not at all (a webhook's 4xx).
    pub retry: Retry,
}

/// Whether a failed attempt may be tried again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Retry {
    /// As the trigger's retry policy says.
    #[default]
    AsPolicy,
    /// As the policy says, but not sooner than this.
    NotBefore(Duration),
    /// Never: the function refused the event.
    Never,
}

impl FunctionError {
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error_type: error_type.into(),
            message: message.into(),
            stack_trace: None,
            retry: Retry::AsPolicy,
        }
    }

    /// The error as Lambda's JSON shows it.
    pub fn to_json(&self) -> Value {
        let mut json =
            serde_json::json!({ "errorType": self.error_type, "errorMessage": self.message });
        if let Some(trace) = &self.stack_trace {
            json["stackTrace"] = trace.clone();
        }
        json
    }
}

/// How one invocation ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub result: Result<Value, FunctionError>,
    pub timed_out: bool,
    /// What the function wrote to its log, at most [`LOG_LIMIT`] bytes, between Lambda's
    /// `START`, `END` and `REPORT` lines.
    pub logs: String,
    pub truncated: bool,
    /// How long the function took, without starting a worker.
    pub duration: Duration,
    /// How long starting the worker took, when this invocation started one (a cold start).
    pub init_duration: Option<Duration>,
    /// The most memory the function's process has held, in MB, where it can be measured.
    pub max_memory_mb: Option<u64>,
}

impl Outcome {
    fn ended(result: Result<Value, FunctionError>, logs: String, truncated: bool) -> Self {
        Self {
            result,
            timed_out: false,
            logs,
            truncated,
            duration: Duration::ZERO,
            init_duration: None,
            max_memory_mb: None,
        }
    }

    fn timeout(timeout: Duration, logs: String, truncated: bool) -> Self {
        let error = FunctionError::new(
            "Sandbox.Timedout",
            format!("Task timed out after {:.2} seconds", timeout.as_secs_f64()),
        );
        Self {
            timed_out: true,
            ..Self::ended(Err(error), logs, truncated)
        }
    }

    /// An invocation that could not run its handler at all.
    fn failed(error: FunctionError) -> Self {
        Self::ended(Err(error), String::new(), false)
    }
}

/// A function written in Rust and run inside the eddy process: for embedding eddy as a
/// library, and for benchmarks.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, event: Value, context: Context) -> Result<Value, FunctionError>;
}

/// Why a function cannot run at all (as opposed to running and failing).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unrunnable(pub String);

pub type Handlers = HashMap<FunctionName, Arc<dyn Handler>>;

pub use lambda::{INIT_TIMEOUT, WorkerConfig, Workers};
pub use payload::Payload;
pub use report::billed_ms;
pub use webhook::signature as webhook_signature;

/// Runs `function` once with `payload`, enforcing its timeout, and frames its log with
/// Lambda's `START`, `END` and `REPORT` lines. `handler` is the registered handler of an
/// `in_process` function; `workers` runs the Lambda runtimes.
pub async fn invoke(
    function: &FunctionSpec,
    handler: Option<Arc<dyn Handler>>,
    workers: &Arc<Workers>,
    payload: &Payload,
    context: Context,
) -> Result<Outcome, Unrunnable> {
    let started = std::time::Instant::now();
    let request_id = context.request_id.clone();
    let mut outcome = run(function, handler, workers, payload, context).await?;
    outcome.duration = started.elapsed() - outcome.init_duration.unwrap_or_default();
    outcome.logs = report::frame(&request_id, function.memory_mb, &outcome);
    Ok(outcome)
}

async fn run(
    function: &FunctionSpec,
    handler: Option<Arc<dyn Handler>>,
    workers: &Arc<Workers>,
    payload: &Payload,
    context: Context,
) -> Result<Outcome, Unrunnable> {
    match &function.runtime {
        Runtime::InProcess => {
            let handler = handler.ok_or_else(|| {
                Unrunnable(format!(
                    "no in-process handler is registered for function `{}`",
                    function.name
                ))
            })?;
            Ok(in_process(handler.as_ref(), function.timeout, payload, context).await)
        }
        Runtime::Exec { command, dir } => {
            exec::run(function, command, dir, workers, payload, &context).await
        }
        Runtime::Nodejs { .. } | Runtime::Python { .. } | Runtime::Provided { .. } => {
            workers.invoke(function, payload, &context).await
        }
        Runtime::Webhook {
            url,
            secret_env,
            private_hosts,
        } => {
            let target = webhook::Target {
                url,
                secret_env: secret_env.as_deref(),
                private_hosts,
            };
            webhook::post(function, &target, payload, &context).await
        }
    }
}

async fn in_process(
    handler: &dyn Handler,
    timeout: Duration,
    payload: &Payload,
    context: Context,
) -> Outcome {
    let event = payload.value().into_owned();
    match tokio::time::timeout(timeout, handler.handle(event, context)).await {
        Ok(result) => Outcome::ended(result, String::new(), false),
        // The handler's future is dropped: Rust code cannot be killed, only cancelled.
        Err(_) => Outcome::timeout(timeout, String::new(), false),
    }
}

/// The environment of a function's processes, as Lambda sets it: what holds for every
/// invocation (a warm worker serves many).
pub fn function_environment(function: &FunctionSpec) -> Vec<(String, String)> {
    let name = function.name.to_string();
    let mut env = vec![
        ("AWS_LAMBDA_FUNCTION_NAME".to_string(), name.clone()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(),
            function.memory_mb.to_string(),
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME".into(),
            format!("/aws/lambda/{name}"),
        ),
        ("AWS_REGION".into(), eddy_events::REGION.into()),
        ("AWS_DEFAULT_REGION".into(), eddy_events::REGION.into()),
        ("TZ".into(), ":UTC".into()),
    ];
    env.extend(
        function
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    env
}

/// The environment of one `exec` invocation: the function's, and what this invocation is.
pub fn lambda_environment(function: &FunctionSpec, context: &Context) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "AWS_LAMBDA_LOG_STREAM_NAME".to_string(),
            format!("eddy/[$LATEST]{}", context.request_id),
        ),
        ("EDDY_REQUEST_ID".into(), context.request_id.clone()),
        (
            "EDDY_FUNCTION_ARN".into(),
            context.invoked_function_arn.clone(),
        ),
        ("EDDY_DEADLINE_MS".into(), context.deadline_ms.to_string()),
        ("EDDY_HOPS".into(), context.lineage.hops.to_string()),
    ];
    if let Some(id) = context.event_id {
        env.push(("EDDY_EVENT_ID".into(), id.to_string()));
    }
    let mut all = function_environment(function);
    all.extend(env);
    all
}

/// The few variables a process needs to find its tools, from eddy's own environment.
pub(crate) fn inherited() -> Vec<(String, String)> {
    ["PATH", "HOME", "LANG"]
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect()
}

/// The ARN Lambda would give the function.
pub fn function_arn(name: &FunctionName) -> String {
    function_arn_text(name.as_str())
}

/// The ARN for a function name that may not be valid (for error messages).
pub fn function_arn_text(name: &str) -> String {
    format!(
        "arn:aws:lambda:{}:{}:function:{name}",
        eddy_events::REGION,
        eddy_events::ACCOUNT_ID
    )
}
