//! eddy's HTTP surfaces on one listener: the table API and the admin API under `/_eddy/`, the
//! Lambda API under `/2015-03-31/`, and the S3 API on every other path. (Paths that begin with
//! `/_` can never be bucket names, and `2015-03-31` is refused as one, so they never collide.)

mod admin;
pub mod auth;
mod body;
mod checksum;
mod console;
mod cors;
mod deploy;
pub mod error;
mod form;
mod gate;
mod lambda;
mod listener;
mod metrics;
mod post_object;
mod refusals;
mod s3;
mod s3_access;
mod s3_front;
mod tables;
mod unsized_body;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use eddy_node::Node;

pub use body::BODY_IDLE_TIMEOUT;
pub use gate::Hosts;
pub use lambda::{ASYNC_PAYLOAD_LIMIT, SYNC_PAYLOAD_LIMIT};

/// Everything the handlers reach: the node, and what the HTTP surfaces keep themselves.
pub struct Services {
    pub node: Arc<Node>,
    /// The host names eddy answers to.
    pub hosts: Hosts,
    /// How long a request body may go without delivering a byte.
    pub body_idle_timeout: std::time::Duration,
    pub guard: auth::Guard,
}

impl Services {
    pub fn new(node: Arc<Node>, hosts: Hosts, body_idle_timeout: std::time::Duration) -> Self {
        Self {
            node,
            hosts,
            body_idle_timeout,
            guard: auth::Guard::default(),
        }
    }
}

/// The handlers reach the node's stores and executor through the services.
impl std::ops::Deref for Services {
    type Target = Node;
    fn deref(&self) -> &Node {
        &self.node
    }
}

pub type Shared = Arc<Services>;

/// The largest JSON body of the table and admin APIs, and of an invoke (the synchronous limit;
/// the asynchronous one is checked by the handler).
pub(crate) const BODY_LIMIT: usize = SYNC_PAYLOAD_LIMIT + 1;

pub fn router(services: Shared) -> Router {
    let api = Router::new()
        .route("/_eddy/health", get(health))
        .route(
            "/_eddy/v1/tables/{table}/rows",
            post(tables::insert).get(tables::list).put(tables::upsert),
        )
        .route(
            "/_eddy/v1/tables/{table}/rows/{*key}",
            get(tables::get)
                .put(tables::put)
                .patch(tables::patch)
                .delete(tables::delete),
        )
        .route("/_eddy/metrics", get(metrics::metrics))
        .route("/_eddy/v1/functions", get(admin::functions))
        .route(
            "/_eddy/v1/functions/{name}/redrive",
            post(admin::redrive_function),
        )
        .route("/_eddy/v1/triggers", get(admin::triggers))
        .route("/_eddy/v1/schedules", get(admin::schedules))
        .route("/_eddy/v1/triggers/{name}/replay", post(admin::replay))
        .route("/_eddy/v1/triggers/{name}/backfill", post(admin::backfill))
        .route("/_eddy/v1/replays", get(admin::replays))
        .route("/_eddy/v1/deploy", post(deploy::deploy))
        .route("/_eddy/v1/usage", get(admin::usage))
        .route("/_eddy/v1/usage/daily", get(admin::daily_usage))
        .route("/_eddy/v1/activity", get(admin::activity))
        .route("/_eddy/v1/events", get(admin::events))
        .route("/_eddy/v1/events/{id}", get(admin::event))
        .route("/_eddy/v1/invocations", get(admin::invocations))
        .route("/_eddy/v1/dead-letters", get(admin::dead_letters))
        .route("/_eddy/v1/dead-letters/{id}/redrive", post(admin::redrive))
        .route("/2015-03-31/functions", get(lambda::list_functions))
        .route("/2015-03-31/functions/", get(lambda::list_functions))
        .route("/2015-03-31/functions/{name}", get(lambda::get_function))
        .route(
            "/2015-03-31/functions/{name}/invocations",
            post(lambda::invoke),
        )
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            services.clone(),
            auth::authenticate,
        ))
        .layer(axum::middleware::from_fn(refuse_oversized))
        .with_state(services.clone());
    let api = api.merge(console::router().with_state(services.clone()));
    let s3 = s3_service(services.clone());
    // The S3 API streams bodies of any size, so none of the API's layers apply to it; the gate
    // (host, origin, stalled bodies) applies to everything.
    let front = services.clone();
    api.fallback(move |request: axum::extract::Request| {
        s3_front::serve(s3.clone(), front.clone(), request)
    })
    .layer(axum::middleware::from_fn_with_state(services, gate::gate))
}

/// `GET /_eddy/health`, open to all: whether eddy serves — `ok`; `degraded` while its disk is
/// full (reads and deletes go on, writes that add data are refused) or after a write failed
/// with an I/O error, until one commits again; `failed` (answered 503)
/// when its database cannot be written — and how its functions are sandboxed (with a warning
/// when they are not), and whether this node leads the duties one node does for all.
async fn health(
    axum::extract::State(s): axum::extract::State<Shared>,
) -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
    use eddy_bus::StorageState;
    let sandbox = s.executor.sandbox();
    let mode = sandbox.mode();
    let mut warnings = Vec::new();
    if mode == eddy_executor::runtime::sandbox::Mode::Off {
        warnings.push(format!(
            "functions run without a sandbox: {}",
            mode.guarantee()
        ));
    }
    let (status, code, reasons) = match s.bus.storage() {
        StorageState::Ok => ("ok", axum::http::StatusCode::OK, vec![]),
        StorageState::Full { reason } | StorageState::Faulty { reason } => {
            ("degraded", axum::http::StatusCode::OK, vec![reason])
        }
        StorageState::Failed { reason } => (
            "failed",
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            vec![reason],
        ),
    };
    let body = serde_json::json!({
        "status": status,
        "reasons": reasons,
        "node": s.node.id,
        "app_version": s.node.app_version(),
        "leading": *s.bus.leading().borrow(),
        "sandbox": { "mode": mode.name(), "guarantee": mode.guarantee() },
        "warnings": warnings,
    });
    (code, axum::Json(body))
}

fn s3_service(services: Shared) -> s3s::service::S3Service {
    let mut builder = s3s::service::S3ServiceBuilder::new(s3::EddyS3::new(services.clone()));
    builder.set_auth(auth::S3Principals(services.clone()));
    builder.set_access(s3_access::S3Permissions(services.clone()));
    builder.set_host(s3::VirtualHosts(services.hosts.clone()));
    builder.build()
}

/// Answers 413 as soon as a request announces a body over the limit, without reading it.
/// (Bodies without a length are cut off at the same limit while they are read.)
async fn refuse_oversized(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let announced = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    match announced {
        Some(length) if length > SYNC_PAYLOAD_LIMIT => error::too_large(
            request.uri().path().starts_with("/2015-03-31/"),
            SYNC_PAYLOAD_LIMIT,
        ),
        _ => next.run(request).await,
    }
}

/// Serves until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    services: Shared,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listener::serve_router(
        listener,
        router(services),
        shutdown,
        listener::HEADER_TIMEOUT,
    )
    .await
}
