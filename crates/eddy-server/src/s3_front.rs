//! What an S3 request passes on its way to `s3s`: form uploads are answered here (streamed,
//! see [`crate::post_object`]); Signature Version 2 in headers is refused; a presigned URL may
//! not ask for more than seven days however its query is encoded; a refused request whose
//! body was not read ends its connection; an upload without a length is sized (see
//! [`crate::unsized_body`]); and every answer carries a request id, in the
//! `x-amz-request-id` header and, for an error, in its body's `<RequestId>`, as AWS's do.

use std::time::SystemTime;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use s3s::{S3Error, S3ErrorCode};

use crate::Shared;
use crate::auth::{MAX_PRESIGN_SECONDS, close_unread};
use crate::{post_object, unsized_body};

pub async fn serve(s3: s3s::service::S3Service, services: Shared, request: Request) -> Response {
    let id = request_id();
    let mut response = answer(s3, services, request).await;
    inert(&mut response);
    with_request_id(response, &id).await
}

/// Objects are served from the console's own origin, so one opened in a browser (a presigned
/// link to an HTML file, say) must not run as a page of that origin: every S3 answer is
/// sandboxed — no scripts, an origin of its own — and never sniffed into another type. (S3
/// serves objects from the bucket's host, apart from its console; SDKs ignore both headers.)
fn inert(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_SECURITY_POLICY,
        axum::http::HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    headers.insert(
        axum::http::header::X_CONTENT_TYPE_OPTIONS,
        axum::http::HeaderValue::from_static("nosniff"),
    );
}

/// A request id unique to this process's lifetime: its start, and a count.
fn request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STARTED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let started = *STARTED.get_or_init(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    format!(
        "{:08X}{:08X}",
        started as u32,
        COUNT.fetch_add(1, Ordering::Relaxed) as u32
    )
}

/// The largest error body read to add its `<RequestId>` (S3 error documents are small).
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// `response` with the request id in its `x-amz-request-id` header and, when it is an S3 error
/// document without one, as its `<RequestId>`.
async fn with_request_id(response: Response, id: &str) -> Response {
    let (mut parts, body) = response.into_parts();
    if let Ok(value) = id.parse() {
        parts.headers.insert("x-amz-request-id", value);
    }
    let xml = parts
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.contains("xml"));
    if parts.status.as_u16() < 400 || !xml {
        return Response::from_parts(parts, body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, ERROR_BODY_LIMIT).await else {
        return Response::from_parts(parts, axum::body::Body::empty());
    };
    let text = String::from_utf8_lossy(&bytes);
    let body = match text.rfind("</Error>") {
        Some(end) if !text.contains("<RequestId>") => {
            format!(
                "{}<RequestId>{id}</RequestId>{}",
                &text[..end],
                &text[end..]
            )
        }
        _ => text.into_owned(),
    };
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

async fn answer(s3: s3s::service::S3Service, services: Shared, request: Request) -> Response {
    if crate::console::is_front_page_visit(&request) {
        return crate::console::front_page();
    }
    if let Some(refusal) = refusal(&request) {
        return close_unread(&request, answered(refusal));
    }
    if post_object::is_form_upload(&request) {
        return post_object::handle(services, request).await;
    }
    let headers = request.headers().clone();
    let request = if unsized_body::needs_length(&request) {
        match unsized_body::sized(&services, request).await {
            Ok(sized) => sized,
            Err(refusal) => {
                let mut unread = Request::new(axum::body::Body::empty());
                *unread.headers_mut() = headers;
                return close_unread(&unread, answered(refusal));
            }
        }
    } else {
        request
    };
    match s3.call(request.map(s3s::Body::http_body_unsync)).await {
        Ok(response) => {
            let response = response.map(axum::body::Body::new);
            if response.status().is_success() {
                return response;
            }
            // A refusal may come before the body was read (a client that sent
            // `Expect: 100-continue` has not even sent it yet): what the client sends next
            // must not be read as a new request, so the connection ends here.
            let mut unread = Request::new(axum::body::Body::empty());
            *unread.headers_mut() = headers;
            close_unread(&unread, response)
        }
        Err(e) => {
            tracing::error!(error = ?e, "the S3 service failed");
            axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// An S3 error as its XML answer.
fn answered(error: S3Error) -> Response {
    match error.to_http_response() {
        Ok(response) => response.map(axum::body::Body::new),
        Err(_) => axum::http::StatusCode::BAD_REQUEST.into_response(),
    }
}

/// Why an S3 request is refused before `s3s` sees it, if it is.
fn refusal(request: &Request) -> Option<S3Error> {
    let authorization = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if authorization.starts_with("AWS ") {
        // Signature Version 2 covers no body and no clock skew: a captured request can be
        // replayed with another body for ever. AWS retired it; so does eddy.
        return Some(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
        ));
    }
    presign_too_long(request.uri().query(), SystemTime::now()).map(|asked| {
        S3Error::with_message(
            S3ErrorCode::AuthorizationQueryParametersError,
            format!(
                "{asked} asks for too long a life: a presigned URL may last at most {MAX_PRESIGN_SECONDS} seconds (7 days)"
            ),
        )
    })
}

/// A presigned URL may not outlive seven days, whatever its signer asked for: Signature V4
/// gives a lifetime (`X-Amz-Expires`), V2 an end in epoch seconds (`Expires`). The query is read
/// as the signature check reads it — names and values percent-decoded, every occurrence — so
/// an encoded name (`X%2DAmz%2DExpires`) or a second copy cannot slip past. Returns what was
/// asked for when it is too long (or not a number at all).
pub fn presign_too_long(query: Option<&str>, now: SystemTime) -> Option<String> {
    let now = now.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    query?.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (name, value) = (decode(name), decode(value));
        let lifetime = match name.as_str() {
            "X-Amz-Expires" => value.trim().parse::<u64>().ok(),
            "Expires" => value
                .trim()
                .parse::<u64>()
                .ok()
                .map(|v| v.saturating_sub(now)),
            _ => return None,
        };
        match lifetime {
            Some(life) if life <= MAX_PRESIGN_SECONDS => None,
            _ => Some(format!("{name}={value}")),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seven_day_cap_holds_however_the_query_is_written() {
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        assert_eq!(presign_too_long(Some("X-Amz-Expires=604800"), now), None);
        assert_eq!(presign_too_long(Some("X-Amz-Expires=3600&a=b"), now), None);
        for long in [
            "X-Amz-Expires=604801",
            "X%2DAmz%2DExpires=999999",
            "X-Amz-Expires=60&X%2DAmz%2DExpires=999999",
            "X-Amz-Expires=%39%39%39%39%39%39%39",
            "X-Amz-Expires=forever",
            "AWSAccessKeyId=k&Expires=1900000000",
        ] {
            assert!(presign_too_long(Some(long), now).is_some(), "{long}");
        }
        assert_eq!(presign_too_long(Some("Expires=1800000060"), now), None);
        assert_eq!(presign_too_long(None, now), None);
    }
}
