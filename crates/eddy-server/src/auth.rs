//! Who may call eddy. Every surface but `/_eddy/health` needs the root credentials:
//! - the S3 API: AWS Signature V4 in headers or a presigned URL, checked by `s3s`;
//! - the Lambda API: Signature V4 in headers, checked here over the buffered body;
//! - `/_eddy/`: Signature V4 as for Lambda, or `Authorization: Bearer <secret access key>`.
//!
//! A request that fails is answered before any handler runs, so it changes nothing.

use std::time::SystemTime;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use eddy_core::{EventId, Lineage};
use eddy_sigv4::SigError;
use s3s::auth::{S3Auth, SecretKey};
use s3s::{S3Result, s3_error};

pub use eddy_node::Principal;

/// The longest a presigned URL may live, as in S3: seven days.
pub const MAX_PRESIGN_SECONDS: u64 = 7 * 24 * 3600;

use crate::{BODY_LIMIT, Shared, error};

/// What the HTTP surfaces keep about refused requests, and the room for bodies read before
/// their signature can be checked.
pub struct Guard {
    /// Requests refused for want of permission, since start.
    pub denied: std::sync::atomic::AtomicU64,
    /// Requests refused for their credentials, logged at a bounded rate.
    pub refusals: crate::refusals::RefusalLog,
    /// Room for bodies read before their signature can be checked ([`UNVERIFIED_BYTES`]).
    unverified: tokio::sync::Semaphore,
}

impl Default for Guard {
    fn default() -> Self {
        Self {
            denied: std::sync::atomic::AtomicU64::new(0),
            refusals: crate::refusals::RefusalLog::default(),
            unverified: tokio::sync::Semaphore::new(UNVERIFIED_BYTES),
        }
    }
}

impl Guard {
    /// Room for `bytes` of a body held before it can be checked, shared with the bodies the
    /// Lambda and `/_eddy/` APIs read before their signatures; waits until there is some.
    pub async fn held_bytes(&self, bytes: usize) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.unverified.acquire_many(bytes as u32).await.ok()
    }

    /// Counts and logs a refusal.
    pub fn denied(&self, principal: &Principal, action: &str, resource: &str) {
        self.denied
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(
            principal = principal.describe(),
            action,
            resource,
            "access denied"
        );
    }
}

/// The S3 API's view of the principals, for `s3s`'s signature check.
pub struct S3Principals(pub Shared);

#[async_trait::async_trait]
impl S3Auth for S3Principals {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.0.principals.find(access_key).await {
            Ok(Some((secret, _))) => Ok(SecretKey::from(secret)),
            Err(e) => {
                tracing::error!(error = %e, "cannot look up an access key");
                Err(s3_error!(
                    ServiceUnavailable,
                    "eddy cannot read its credentials now; retry shortly"
                ))
            }
            Ok(None) => Err(s3_error!(
                InvalidAccessKeyId,
                "the access key is not known to this server"
            )),
        }
    }
}

/// How many bytes of bodies whose signature is not yet checked may be held at once, across
/// all requests: a Lambda or `/_eddy/` signature covers the body, so it is read before it can be
/// checked, but never by more than this much memory (a request that would pass it waits, and is
/// refused after a while).
pub const UNVERIFIED_BYTES: usize = 64 << 20;
/// How long a request waits for room among those bytes.
const UNVERIFIED_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long the body of a request not yet authenticated may take to arrive.
const UNVERIFIED_BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// Middleware for the Lambda and `/_eddy/` APIs: checks the request's credentials and passes
/// it on (with its body, which a signature covers, and its [`Principal`] among its extensions)
/// or answers 403. Whatever can be checked without the body — the header, the key, the clock —
/// is checked before a byte of the body is read.
pub async fn authenticate(
    State(services): State<Shared>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    let lambda = path.starts_with("/2015-03-31/");
    if path == "/_eddy/health" {
        return next.run(request).await;
    }
    let principals = &services.principals;
    let guard = &services.guard;
    let refuse = |error: &SigError, request: &Request| {
        guard.refusals.refused(request.uri().path(), error);
        close_unread(request, error::auth_error(lambda, error))
    };
    let bearer = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    if let Some(token) = bearer.filter(|_| !lambda) {
        if !principals.is_root_secret(token.trim()) {
            return refuse(&SigError::Mismatch, &request);
        }
        request.extensions_mut().insert(Principal::Root);
        return next.run(request).await;
    }
    let now = SystemTime::now();
    // The key's principal is looked up (in the store, if another node issued it) before the
    // header is checked, so the checks themselves need no I/O.
    let known = match eddy_sigv4::access_key_id(request.headers()) {
        Some(key) => match principals.find(key).await {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(error = %e, "cannot look up an access key");
                let busy = error::ApiError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    "eddy cannot read its credentials now; retry shortly",
                );
                return close_unread(&request, busy.into_response());
            }
        },
        None => None,
    };
    let secret_of = |_: &str| known.as_ref().map(|(secret, _)| secret.clone());
    if let Err(e) = eddy_sigv4::precheck(request.headers(), secret_of, now) {
        return refuse(&e, &request);
    }
    let (mut parts, body) = request.into_parts();
    let announced = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .unwrap_or(BODY_LIMIT)
        .min(BODY_LIMIT);
    let room = tokio::time::timeout(
        UNVERIFIED_WAIT,
        guard.unverified.acquire_many(announced.max(1) as u32),
    )
    .await;
    let Ok(Ok(_room)) = room else {
        let busy = error::ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "SlowDown",
            "too many requests are being read at once; retry shortly",
        );
        return close_unread(
            &Request::from_parts(parts, axum::body::Body::empty()),
            busy.into_response(),
        );
    };
    // A signature covers the body, so it is read first; the limit stays that of the API.
    let read = tokio::time::timeout(
        UNVERIFIED_BODY_DEADLINE,
        axum::body::to_bytes(body, BODY_LIMIT),
    )
    .await;
    let body = match read {
        Ok(Ok(body)) => body,
        Ok(Err(e)) if crate::body::over_limit(&e) => {
            return error::too_large(lambda, BODY_LIMIT);
        }
        _ => return error::body_timeout(lambda),
    };
    let payload_sha256 = eddy_sigv4::sha256_hex(&body);
    let signed = eddy_sigv4::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        payload_sha256: &payload_sha256,
    };
    let principal = match eddy_sigv4::verify(&signed, secret_of, now) {
        Ok(_) => match known {
            Some((_, principal)) => principal,
            None => return error::auth_error(lambda, &SigError::Mismatch),
        },
        Err(e) => {
            guard.refusals.refused(&path, &e);
            return error::auth_error(lambda, &e);
        }
    };
    let (action, resource) = needed(&parts.method, &path);
    if !principal.allows(&action, &resource) {
        guard.denied(&principal, &action, &resource);
        return error::access_denied(lambda, &principal.describe(), &action, &resource);
    }
    parts.extensions.insert(principal);
    next.run(Request::from_parts(parts, body.into())).await
}

/// `response` to a request whose body was not read: if it has one, the connection ends after
/// the answer, so that body is never taken for the next request.
pub fn close_unread(request: &Request, mut response: Response) -> Response {
    let headers = request.headers();
    let has_body = headers.contains_key(axum::http::header::TRANSFER_ENCODING)
        || headers
            .get(axum::http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if has_body {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// The lineage a write carries. A handler passes its event's with `X-Eddy-Cause-Event` (its
/// `EDDY_EVENT_ID`), `X-Eddy-Cause-Invocation` and `X-Eddy-Hops` (its `EDDY_HOPS`); these are
/// believed only from a function's own credentials — from anyone else they are ignored, so no
/// client can push its writes' triggers into the dead-letter table with a made-up hop count.
pub fn lineage_of(headers: &HeaderMap, principal: Option<&Principal>) -> Lineage {
    if !matches!(principal, Some(Principal::Function { .. })) {
        return Lineage::root();
    }
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    Lineage {
        cause_event: text("x-eddy-cause-event").and_then(|v| v.parse::<EventId>().ok()),
        cause_invocation: text("x-eddy-cause-invocation").map(str::to_string),
        hops: text("x-eddy-hops")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    }
}

/// The lineage of a write through the table or Lambda API (see [`lineage_of`]).
pub struct WriteLineage(pub Lineage);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for WriteLineage {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(lineage_of(&parts.headers, parts.extensions.get())))
    }
}

/// The permission a Lambda or `/_eddy/` request needs: an action and a resource.
fn needed(method: &axum::http::Method, path: &str) -> (String, String) {
    let segments: Vec<String> = path
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let reads = method == axum::http::Method::GET || method == axum::http::Method::HEAD;
    match segments.as_slice() {
        ["", "_eddy", "v1", "tables", table, "rows", ..] => {
            let action = if reads { "tables:read" } else { "tables:write" };
            (action.into(), format!("table/{table}"))
        }
        ["", "2015-03-31", "functions", name, "invocations"] => {
            // Lambda accepts an ARN where a name goes.
            let name = name.rsplit(':').next().unwrap_or(name);
            ("functions:invoke".into(), format!("function/{name}"))
        }
        _ => {
            let action = if reads { "admin:read" } else { "admin:write" };
            (action.into(), "*".into())
        }
    }
}
