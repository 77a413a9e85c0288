//! The web console at `/_eddy/console/`: pages rendered on the server from askama templates
//! built into the binary, over the admin, table and object APIs' own handlers and stores (no
//! second source of truth), with one small script of eddy's own for what is better live (the
//! events tail, uploads with progress). Every page works without it.
//!
//! A viewer signs in with an access key ([`session`]) and sees what the key's policy allows:
//! the admin pages need `admin:read`, redrive and invoke `admin:write` and `functions:invoke`,
//! the bucket and table pages list only what the key may read. Every answer forbids framing
//! and scripts from anywhere but eddy (`Content-Security-Policy`), and is not cached.

mod buckets;
mod dead_letters;
mod events;
mod functions;
mod overview;
pub(crate) mod page;
pub(crate) mod session;
mod tables;
mod templates;
mod usage;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::Shared;
use crate::error::ApiError;

/// Where the console lives.
pub const BASE: &str = "/_eddy/console";

/// The console's routes (under [`BASE`]), each behind its own session check.
pub fn router() -> Router<Shared> {
    let pages = Router::new()
        .route("/", get(overview::page))
        .route(
            "/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/sign-out", post(session::sign_out))
        .route("/events", get(events::list))
        .route("/events/tail", get(events::tail))
        .route("/events/{seq}", get(events::trace))
        .route("/functions", get(functions::list))
        .route("/functions/{name}", get(functions::detail))
        .route("/functions/{name}/invoke", post(functions::invoke))
        .route("/dead-letters", get(dead_letters::list))
        .route("/dead-letters/redrive", post(dead_letters::redrive))
        .route("/buckets", get(buckets::list))
        .route("/buckets/{bucket}", get(buckets::browse))
        .route("/buckets/{bucket}/object", get(buckets::object))
        .route("/buckets/{bucket}/download", get(buckets::download))
        .route("/buckets/{bucket}/upload", post(buckets::upload))
        .route("/buckets/{bucket}/delete", post(buckets::delete))
        .route("/tables", get(tables::list))
        .route("/tables/{table}", get(tables::browse))
        .route("/tables/{table}/row", get(tables::row).post(tables::save))
        .route("/usage", get(usage::page))
        .route("/assets/console.css", get(css))
        .route("/assets/console.js", get(js))
        .route("/assets/icon.svg", get(icon));
    Router::new()
        .route(&format!("{BASE}/"), get(overview::page))
        .nest(BASE, pages)
        .layer(axum::middleware::from_fn(protect))
}

/// Whether `request` is a browser opening eddy's address: a plain `GET /` that asks for a
/// page and carries no credentials (an S3 client's ListBuckets is signed).
pub fn is_front_page_visit(request: &Request) -> bool {
    let headers = request.headers();
    request.method() == axum::http::Method::GET
        && request.uri().path() == "/"
        && request.uri().query().is_none()
        && !headers.contains_key(header::AUTHORIZATION)
        && headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"))
}

/// The page a browser sees at eddy's address: what is served here, and the way to the console.
pub fn front_page() -> Response {
    let page = page::render(&templates::Front {});
    let mut response = page.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'self'; frame-ancestors 'none'"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// Headers on every console answer: no framing (clickjacking), scripts and styles from eddy
/// only, no sniffing, nothing cached, no referrer to other sites.
async fn protect(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "same-origin");
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    response
}

const CSS: &str = include_str!("../../assets/console.css");
const JS: &str = include_str!("../../assets/console.js");
const ICON: &str = include_str!("../../assets/icon.svg");

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

async fn icon() -> Response {
    asset("image/svg+xml", ICON)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// A failure shown as a page: what went wrong, in words.
#[derive(Debug)]
pub struct ConsoleError {
    status: StatusCode,
    message: String,
}

impl ConsoleError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(message = self.message, "a console page failed");
        }
        let page = templates::Failure {
            status: self.status.as_u16(),
            reason: self.status.canonical_reason().unwrap_or("Error"),
            message: self.message,
        };
        (self.status, page::render(&page)).into_response()
    }
}

impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> Self {
        Self::new(e.status, e.message)
    }
}

macro_rules! through_api_error {
    ($($error:ty),*) => {$(
        impl From<$error> for ConsoleError {
            fn from(e: $error) -> Self {
                ApiError::from(e).into()
            }
        }
    )*};
}

through_api_error!(
    eddy_executor::ExecError,
    eddy_node::NodeError,
    eddy_tables::TableError,
    eddy_bus::BusError,
    eddy_core::InvalidName
);

impl From<eddy_objects::ObjectError> for ConsoleError {
    fn from(e: eddy_objects::ObjectError) -> Self {
        use eddy_core::Classify;
        Self::new(crate::error::status(e.kind()), e.to_string())
    }
}
