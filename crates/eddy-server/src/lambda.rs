//! The Lambda API, as botocore and the AWS CLI call it: Invoke
//! (`POST /2015-03-31/functions/{name}/invocations`), GetFunction and ListFunctions.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use eddy_core::FunctionName;
use eddy_executor::ExecError;
use eddy_subscriptions::{FunctionSpec, Runtime};
use serde_json::{Value, json};

use crate::Shared;
use crate::auth::WriteLineage;

/// The largest synchronous request payload, as on Lambda.
pub const SYNC_PAYLOAD_LIMIT: usize = 6 * 1024 * 1024;
/// The largest asynchronous request payload, as on Lambda.
pub const ASYNC_PAYLOAD_LIMIT: usize = 1024 * 1024;
/// How much of the log `X-Amz-Log-Type: Tail` returns.
const LOG_TAIL: usize = 4096;

/// A Lambda-style error: status, `x-amzn-ErrorType`, and a JSON body with the message.
pub(crate) fn error(status: StatusCode, error_type: &str, message: impl Into<String>) -> Response {
    let message = message.into();
    let mut response =
        (status, Json(json!({ "Type": "User", "message": message }))).into_response();
    response.headers_mut().insert(
        "x-amzn-ErrorType",
        HeaderValue::from_str(error_type).expect("error types are ASCII"),
    );
    response
}

fn exec_error(e: ExecError) -> Response {
    match e {
        ExecError::NoSuchFunction(name) => not_found(&name),
        ExecError::Throttled { .. } => error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequestsException",
            e.to_string(),
        ),
        ExecError::Unrunnable { .. } => {
            error(StatusCode::BAD_GATEWAY, "ServiceException", e.to_string())
        }
        other => {
            tracing::error!(error = %other, "invoke failed");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServiceException",
                "eddy failed to complete the request; see its log",
            )
        }
    }
}

fn not_found(name: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
        format!(
            "Function not found: {}",
            eddy_executor::runtime::function_arn_text(name)
        ),
    )
}

/// The function a path names: Lambda accepts a name or an ARN; eddy's functions have plain
/// names.
fn function_name(name: &str) -> Result<FunctionName, eddy_core::InvalidName> {
    FunctionName::new(name.rsplit(':').next().unwrap_or(name))
}

fn invalid(e: eddy_core::InvalidName) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "InvalidParameterValueException",
        e.to_string(),
    )
}

/// `POST /2015-03-31/functions/{name}/invocations`
pub async fn invoke(
    State(s): State<Shared>,
    Path(name): Path<String>,
    WriteLineage(lineage): WriteLineage,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let name = match function_name(&name) {
        Ok(name) => name,
        Err(e) => return invalid(e),
    };
    let mode = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse");
    let limit = match mode {
        "RequestResponse" | "DryRun" => SYNC_PAYLOAD_LIMIT,
        "Event" => ASYNC_PAYLOAD_LIMIT,
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                format!(
                    "X-Amz-Invocation-Type {other:?} is not one of RequestResponse, Event, DryRun"
                ),
            );
        }
    };
    if body.len() > limit {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            format!(
                "the request payload is {} bytes; at most {limit} are accepted for {mode} invocations",
                body.len()
            ),
        );
    }
    let payload: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestContentException",
                    format!("the payload is not JSON: {e}"),
                );
            }
        }
    };
    if s.app().function(&name).is_none() {
        return not_found(name.as_str());
    }
    match mode {
        "DryRun" => StatusCode::NO_CONTENT.into_response(),
        "Event" => match s.executor.invoke_async(&name, payload, lineage).await {
            Ok(_) => StatusCode::ACCEPTED.into_response(),
            Err(e) => exec_error(e),
        },
        _ => match s.executor.invoke(&name, payload, lineage).await {
            Err(e) => exec_error(e),
            Ok(run) => {
                let tail = headers.get("x-amz-log-type").is_some_and(|v| v == "Tail");
                let (body, function_error) = match &run.outcome.result {
                    Ok(value) => (value.to_string(), false),
                    Err(e) => (e.to_json().to_string(), true),
                };
                let mut response =
                    (StatusCode::OK, [("content-type", "application/json")], body).into_response();
                let h = response.headers_mut();
                h.insert(
                    "x-amz-executed-version",
                    HeaderValue::from_static("$LATEST"),
                );
                h.insert(
                    "x-amzn-requestid",
                    HeaderValue::from_str(&run.request_id).expect("uuids are ASCII"),
                );
                if function_error {
                    h.insert(
                        "x-amz-function-error",
                        HeaderValue::from_static("Unhandled"),
                    );
                }
                if tail {
                    let logs = run.outcome.logs.as_bytes();
                    let last = &logs[logs.len().saturating_sub(LOG_TAIL)..];
                    let encoded = base64::engine::general_purpose::STANDARD.encode(last);
                    h.insert(
                        "x-amz-log-result",
                        HeaderValue::from_str(&encoded).expect("base64 is ASCII"),
                    );
                }
                response
            }
        },
    }
}

/// `GET /2015-03-31/functions/{name}`
pub async fn get_function(State(s): State<Shared>, Path(name): Path<String>) -> Response {
    let name = match function_name(&name) {
        Ok(name) => name,
        Err(e) => return invalid(e),
    };
    match s.app().function(&name) {
        Some(f) => {
            Json(json!({ "Configuration": configuration(f), "Code": { "RepositoryType": "eddy" } }))
                .into_response()
        }
        None => not_found(name.as_str()),
    }
}

/// `GET /2015-03-31/functions/`
pub async fn list_functions(State(s): State<Shared>) -> Json<Value> {
    let functions: Vec<Value> = s.app().functions.iter().map(configuration).collect();
    Json(json!({ "Functions": functions }))
}

/// A function as Lambda's FunctionConfiguration describes it.
pub fn configuration(f: &FunctionSpec) -> Value {
    let (runtime, handler) = match &f.runtime {
        Runtime::Nodejs { handler, .. } => ("nodejs20.x", handler.as_str()),
        Runtime::Python { handler, .. } => ("python3.11", handler.as_str()),
        Runtime::Provided { .. } => ("provided.al2023", ""),
        other => (other.name(), ""),
    };
    json!({
        "FunctionName": f.name.as_str(),
        "FunctionArn": eddy_executor::runtime::function_arn(&f.name),
        "Runtime": runtime,
        "Handler": handler,
        "MemorySize": f.memory_mb,
        "Timeout": f.timeout.as_secs_f64().ceil() as u64,
        "Version": "$LATEST",
        "Environment": { "Variables": f.environment },
        "State": "Active",
    })
}
