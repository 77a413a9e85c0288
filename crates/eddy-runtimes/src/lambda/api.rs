//! The Lambda Runtime API one worker talks to, on its own loopback listener
//! (`AWS_LAMBDA_RUNTIME_API` is `host:port`, so a worker cannot share one):
//!
//! - `GET /2018-06-01/runtime/invocation/next` waits for the next invocation;
//! - `POST …/invocation/{id}/response` and `…/{id}/error` answer it (202; 400 for an id that is
//!   not the current one, 403 for a second answer);
//! - `POST …/runtime/init/error` reports that the function could not start.
//!
//! Any local process can connect to a loopback port, so each connection is traced to the
//! process that made it and accepted only from the worker's own process tree: another
//! function, or another user on the machine, can neither take an invocation nor answer one.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::{FunctionError, RESULT_LIMIT, sandbox};

/// An invocation waiting to be handed to the worker.
pub(super) struct Pending {
    pub request_id: String,
    pub payload: Vec<u8>,
    pub deadline_ms: i64,
    pub function_arn: String,
    /// eddy's own context for writes the handler makes: `Eddy-Event-Id`, `Eddy-Hops`.
    pub lineage: Vec<(&'static str, String)>,
    pub reply: oneshot::Sender<Reply>,
}

/// What the worker answered.
#[derive(Debug)]
pub(super) enum Reply {
    Response(Bytes),
    Error(FunctionError),
}

/// What the worker reports outside any invocation.
#[derive(Debug)]
pub(super) enum Signal {
    /// The first `next`: initialisation is over.
    Ready,
    /// `init/error`: the function cannot start.
    InitError(FunctionError),
}

/// Answers kept to tell "answered twice" (403) from "never handed out" (400).
const REMEMBERED: usize = 64;

struct Api {
    queue: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    current: Mutex<Option<(String, oneshot::Sender<Reply>)>>,
    answered: Mutex<VecDeque<String>>,
    signals: mpsc::UnboundedSender<Signal>,
}

/// Serves the Runtime API on `listener` until `queue`'s sender is dropped, to connections from
/// the process tree of the worker whose first process is `root`.
pub(super) fn serve(
    listener: tokio::net::TcpListener,
    queue: mpsc::Receiver<Pending>,
    signals: mpsc::UnboundedSender<Signal>,
    root: u32,
) -> tokio::task::JoinHandle<()> {
    let api = Arc::new(Api {
        queue: tokio::sync::Mutex::new(queue),
        current: Mutex::new(None),
        answered: Mutex::new(VecDeque::new()),
        signals,
    });
    let base = "/2018-06-01/runtime";
    let router = Router::new()
        .route(&format!("{base}/invocation/next"), get(next))
        .route(
            &format!("{base}/invocation/{{id}}/response"),
            post(response),
        )
        .route(&format!("{base}/invocation/{{id}}/error"), post(error))
        .route(&format!("{base}/init/error"), post(init_error))
        .layer(DefaultBodyLimit::max(RESULT_LIMIT))
        .with_state(api);
    tokio::spawn(async move {
        let mut refusals = 0u64;
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let Ok(local) = stream.local_addr() else {
                continue;
            };
            let ours = tokio::task::spawn_blocking(move || sandbox::from_worker(root, peer, local))
                .await
                .unwrap_or(false);
            if !ours {
                refusals += 1;
                // Logged once per worker and then every hundredth time: a prober cannot flood
                // the log.
                if refusals == 1 || refusals.is_multiple_of(100) {
                    tracing::warn!(
                        refusals,
                        "a process outside the worker connected to its Runtime API; refused"
                    );
                }
                continue;
            }
            let router = router.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                        let mut router = router.clone();
                        async move {
                            tower_service::Service::call(
                                &mut router,
                                request.map(axum::body::Body::new),
                            )
                            .await
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

fn header(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

async fn next(State(api): State<Arc<Api>>) -> Response {
    let _ = api.signals.send(Signal::Ready);
    let pending = api.queue.lock().await.recv().await;
    let Some(pending) = pending else {
        // The worker is being retired: tell the runtime to stop.
        return (StatusCode::GONE, "this worker is retired").into_response();
    };
    let mut headers = HeaderMap::new();
    headers.insert("lambda-runtime-aws-request-id", header(&pending.request_id));
    headers.insert(
        "lambda-runtime-deadline-ms",
        header(&pending.deadline_ms.to_string()),
    );
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        header(&pending.function_arn),
    );
    headers.insert(
        "lambda-runtime-trace-id",
        header(&format!("Root=1-{}", pending.request_id)),
    );
    for (name, value) in &pending.lineage {
        headers.insert(*name, header(value));
    }
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    *api.current.lock().expect("current lock") = Some((pending.request_id, pending.reply));
    (headers, pending.payload).into_response()
}

/// Hands `reply` to the invocation `id` if it is the one running.
fn answer(api: &Api, id: &str, reply: Reply) -> Response {
    let mut current = api.current.lock().expect("current lock");
    match current.take() {
        Some((running, sender)) if running == id => {
            let _ = sender.send(reply);
            let mut answered = api.answered.lock().expect("answered lock");
            answered.push_back(running);
            if answered.len() > REMEMBERED {
                answered.pop_front();
            }
            (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
        }
        other => {
            *current = other;
            let twice = api
                .answered
                .lock()
                .expect("answered lock")
                .iter()
                .any(|a| a == id);
            let (status, message) = if twice {
                (StatusCode::FORBIDDEN, "invocation already answered")
            } else {
                (StatusCode::BAD_REQUEST, "no such running invocation")
            };
            let body = json!({"errorType": "InvalidRequestID", "errorMessage": message});
            (status, axum::Json(body)).into_response()
        }
    }
}

async fn response(State(api): State<Arc<Api>>, Path(id): Path<String>, body: Bytes) -> Response {
    answer(&api, &id, Reply::Response(body))
}

/// The error a runtime reports: `{errorMessage, errorType, stackTrace}`, the type also in
/// `Lambda-Runtime-Function-Error-Type`.
fn reported_error(headers: &HeaderMap, body: &[u8], default_type: &str) -> FunctionError {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error_type = value["errorType"]
        .as_str()
        .or_else(|| {
            headers
                .get("lambda-runtime-function-error-type")
                .and_then(|v| v.to_str().ok())
        })
        .unwrap_or(default_type);
    let message = value["errorMessage"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let mut error = FunctionError::new(error_type, message);
    if let Some(trace) = value.get("stackTrace").filter(|t| !t.is_null()) {
        error.stack_trace = Some(trace.clone());
    }
    error
}

async fn error(
    State(api): State<Arc<Api>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let error = reported_error(&headers, &body, "Unhandled");
    answer(&api, &id, Reply::Error(error))
}

async fn init_error(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    let error = reported_error(&headers, &body, "Runtime.Unknown");
    let _ = api.signals.send(Signal::InitError(error));
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}
