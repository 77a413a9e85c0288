//! Uploads sent without a length: a PUT with `Transfer-Encoding: chunked` and no
//! `Content-Length` (what an HTTP client sends for a stream of unknown size; S3 takes it). `s3s`
//! needs the length before it reads a body, so such a body is read here first — once its
//! signature is checked, up to [`MAX_UNSIZED_BYTES`], within the memory shared by all bodies
//! held before their checks — and handed on with the length it turned out to have.

use std::time::SystemTime;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, header};
use s3s::{S3Error, S3ErrorCode};

use crate::Shared;

/// The largest body taken without a length; a longer one is refused (`MissingContentLength`)
/// with what to send instead.
pub const MAX_UNSIZED_BYTES: usize = 16 << 20;

/// Whether `request` is an upload without a length that this module must size: a PUT or POST
/// with a chunked transfer encoding, no `Content-Length`, and no aws-chunked body (whose
/// decoded length is announced in `x-amz-decoded-content-length`).
pub fn needs_length(request: &Request) -> bool {
    let headers = request.headers();
    let chunked = headers
        .get(header::TRANSFER_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    (request.method() == Method::PUT || request.method() == Method::POST)
        && chunked
        && !headers.contains_key(header::CONTENT_LENGTH)
        && !headers.contains_key("x-amz-decoded-content-length")
}

/// `request` with its body read and its length set, or the S3 error to answer: the signature
/// must hold (as far as it can be checked without the body) before a byte is read.
pub async fn sized(services: &Shared, request: Request) -> Result<Request, S3Error> {
    let (mut parts, body) = request.into_parts();
    authenticated(services, &parts).await?;
    let room = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        services.guard.held_bytes(MAX_UNSIZED_BYTES),
    )
    .await;
    let Ok(Some(_room)) = room else {
        return Err(S3Error::with_message(
            S3ErrorCode::SlowDown,
            "too many uploads without a Content-Length are being read at once; retry shortly",
        ));
    };
    let bytes = axum::body::to_bytes(body, MAX_UNSIZED_BYTES)
        .await
        .map_err(|e| {
            if crate::body::over_limit(&e) {
                S3Error::with_message(
                    S3ErrorCode::MissingContentLength,
                    format!(
                        "a body sent without Content-Length is taken up to {MAX_UNSIZED_BYTES} bytes; send Content-Length, an aws-chunked body with x-amz-decoded-content-length, or a multipart upload"
                    ),
                )
            } else {
                S3Error::with_message(
                    S3ErrorCode::IncompleteBody,
                    format!("reading the request body failed: {e}"),
                )
            }
        })?;
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Checks a Signature V4 `Authorization` header against the declared payload hash
/// (`x-amz-content-sha256`, which `s3s` compares with the body afterwards).
async fn authenticated(
    services: &Shared,
    request: &axum::http::request::Parts,
) -> Result<(), S3Error> {
    let denied = |message: String| S3Error::with_message(S3ErrorCode::AccessDenied, message);
    let headers = &request.headers;
    let key = eddy_sigv4::access_key_id(headers).ok_or_else(|| {
        denied(
            "an upload without a Content-Length must be signed in its Authorization header".into(),
        )
    })?;
    let known = services.principals.find(key).await.map_err(|e| {
        tracing::error!(error = %e, "cannot look up an access key");
        S3Error::with_message(
            S3ErrorCode::ServiceUnavailable,
            "eddy cannot read its credentials now; retry shortly",
        )
    })?;
    let payload = headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("UNSIGNED-PAYLOAD");
    let signed = eddy_sigv4::Request {
        method: request.method.as_str(),
        path: request.uri.path(),
        query: request.uri.query().unwrap_or(""),
        headers,
        payload_sha256: payload,
    };
    eddy_sigv4::verify(
        &signed,
        |_| known.map(|(secret, _)| secret),
        SystemTime::now(),
    )
    .map(|_| ())
    .map_err(|e| denied(e.to_string()))
}
