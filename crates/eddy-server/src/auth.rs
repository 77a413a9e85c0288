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
use eddy_sigv4::{Credentials, SigError};
use s3s::auth::{S3Auth, SecretKey};
use s3s::{S3Result, s3_error};

use std::collections::HashMap;
use std::sync::Arc;

use eddy_subscriptions::{App, Effect, Statement, policy};

use crate::{BODY_LIMIT, Shared, error};

/// The development credentials eddy uses when none are configured. Documented, so accepted
/// only when eddy listens on a loopback address.
pub const DEV_ACCESS_KEY_ID: &str = "eddy-dev";
pub const DEV_SECRET_ACCESS_KEY: &str = "eddy-dev-secret";

/// The longest a presigned URL may live, as in S3: seven days.
pub const MAX_PRESIGN_SECONDS: u64 = 7 * 24 * 3600;

pub fn development_credentials() -> Credentials {
    Credentials {
        access_key_id: DEV_ACCESS_KEY_ID.into(),
        secret_access_key: DEV_SECRET_ACCESS_KEY.into(),
    }
}

/// Who signed a request, and so what it may do.
#[derive(Clone, Debug)]
pub enum Principal {
    /// The root credentials: everything.
    Root,
    /// A client's access key from the manifest, limited by its policy.
    Key {
        name: String,
        policy: Arc<[Statement]>,
    },
    /// A function's own credentials, limited by its role.
    Function {
        name: String,
        role: Arc<[Statement]>,
    },
}

impl Principal {
    /// Whether this principal may do `action` on `resource`: deny wins over allow, and nothing
    /// allowed is denied.
    pub fn allows(&self, action: &str, resource: &str) -> bool {
        match self {
            Principal::Root => true,
            Principal::Key { policy: s, .. } | Principal::Function { role: s, .. } => {
                eddy_subscriptions::role_allows(s, action, resource)
            }
        }
    }

    /// The statements that limit this principal; `None` for the root.
    fn statements(&self) -> Option<&[Statement]> {
        match self {
            Principal::Root => None,
            Principal::Key { policy: s, .. } | Principal::Function { role: s, .. } => Some(s),
        }
    }

    /// Whether any allow statement names something inside `bucket` (so it may see the bucket
    /// in ListBuckets).
    pub fn reaches_bucket(&self, bucket: &str) -> bool {
        let Some(statements) = self.statements() else {
            return true;
        };
        let (whole, inside) = (format!("bucket/{bucket}"), format!("bucket/{bucket}/"));
        statements.iter().any(|s| {
            s.effect == Effect::Allow
                && s.resources.iter().any(|r| {
                    eddy_subscriptions::resource_matches(r, &whole)
                        || policy::may_match_under(r, &inside)
                })
        })
    }

    /// Whether a listing of `bucket` may show `key`: a listing leaves out the keys the
    /// principal may not list (a deny on a prefix holds whatever prefix the listing asked for).
    pub fn lists_key(&self, bucket: &str, key: &str) -> bool {
        self.allows("objects:list", &format!("bucket/{bucket}/{key}"))
    }

    /// Whether a listing of `bucket` may show the common prefix `prefix`: not when a deny
    /// covers every key under it.
    pub fn lists_prefix(&self, bucket: &str, prefix: &str) -> bool {
        self.statements().is_none_or(|s| {
            !policy::denies_everything_under(
                s,
                "objects:list",
                &format!("bucket/{bucket}/{prefix}"),
            )
        })
    }

    /// Leaves out of a page what this principal may not list.
    pub fn filter_listing(&self, bucket: &str, page: &mut eddy_objects::ListPage) {
        if self.statements().is_none() {
            return;
        }
        page.objects
            .retain(|o| self.lists_key(bucket, o.key.as_str()));
        page.common_prefixes
            .retain(|p| self.lists_prefix(bucket, p));
    }

    /// The principal as logs and errors name it (never with a secret).
    pub fn describe(&self) -> String {
        match self {
            Principal::Root => "root".into(),
            Principal::Key { name, .. } => format!("access key `{name}`"),
            Principal::Function { name, .. } => format!("function `{name}`"),
        }
    }
}

/// An access key eddy accepts besides the root's.
struct Grant {
    secret: String,
    principal: Principal,
    /// Milliseconds since the epoch after which the key is refused (function credentials).
    expires_ms: Option<i64>,
}

/// How long a function's credentials are accepted after they were issued. They are issued
/// anew at every apply and every rotation, which comes well before.
pub const FUNCTION_CREDENTIALS_LIFETIME: std::time::Duration =
    std::time::Duration::from_secs(2 * 3600);

/// The principals eddy knows: the root, the app's access keys, and the functions' own
/// credentials. Keys are replaced as a whole when the app changes, so a removed key stops
/// working at once.
pub struct Principals {
    root: Credentials,
    grants: std::sync::RwLock<HashMap<String, Grant>>,
    /// Requests refused for want of permission, since start.
    pub denied: std::sync::atomic::AtomicU64,
    /// Requests refused for their credentials, logged at a bounded rate.
    pub refusals: crate::refusals::RefusalLog,
    /// Room for bodies read before their signature can be checked ([`UNVERIFIED_BYTES`]).
    unverified: tokio::sync::Semaphore,
}

impl Principals {
    pub fn new(root: Credentials) -> Self {
        Self {
            root,
            grants: std::sync::RwLock::new(HashMap::new()),
            denied: std::sync::atomic::AtomicU64::new(0),
            refusals: crate::refusals::RefusalLog::default(),
            unverified: tokio::sync::Semaphore::new(UNVERIFIED_BYTES),
        }
    }

    /// The secret of an access key and its principal, if the key is known and not expired.
    pub fn lookup(&self, access_key_id: &str) -> Option<(String, Principal)> {
        if access_key_id == self.root.access_key_id {
            return Some((self.root.secret_access_key.clone(), Principal::Root));
        }
        let grants = self.grants.read().expect("grant lock");
        let grant = grants.get(access_key_id)?;
        let expired = grant.expires_ms.is_some_and(|at| eddy_bus::now_ms() > at);
        (!expired).then(|| (grant.secret.clone(), grant.principal.clone()))
    }

    fn secret_of(&self, access_key_id: &str) -> Option<String> {
        self.lookup(access_key_id).map(|(secret, _)| secret)
    }

    /// Replaces the app's access keys and gives every function new credentials (the old ones
    /// stay valid until they expire, for workers still running with them). Returns each
    /// function's credentials as environment variables. A key whose secret cannot be read
    /// makes the whole change fail, and nothing changes.
    pub fn grant(&self, app: &App) -> Result<HashMap<String, Vec<(String, String)>>, String> {
        let mut next: HashMap<String, Grant> = HashMap::new();
        for key in &app.access_keys {
            let secret = key
                .secret
                .read()
                .map_err(|e| format!("access key `{}` ({}): {e}", key.name, key.at))?;
            let principal = Principal::Key {
                name: key.name.clone(),
                policy: key.policy.clone().into(),
            };
            next.insert(
                key.id.clone(),
                Grant {
                    secret,
                    principal,
                    expires_ms: None,
                },
            );
        }
        let now = eddy_bus::now_ms();
        let mut env = HashMap::new();
        let role_of = |name: &str| {
            let function = app.functions.iter().find(|f| f.name.as_str() == name)?;
            Some(Principal::Function {
                name: name.to_string(),
                role: function.role.clone().into(),
            })
        };
        {
            // Credentials already handed out stay until they expire while their function is
            // still declared — with the function's role as it is now.
            let current = self.grants.read().expect("grant lock");
            for (id, grant) in current.iter() {
                let Principal::Function { name, .. } = &grant.principal else {
                    continue;
                };
                let live = grant.expires_ms.is_some_and(|at| at > now);
                if let Some(principal) = role_of(name).filter(|_| live) {
                    let (secret, expires_ms) = (grant.secret.clone(), grant.expires_ms);
                    next.insert(
                        id.clone(),
                        Grant {
                            secret,
                            principal,
                            expires_ms,
                        },
                    );
                }
            }
        }
        for function in &app.functions {
            let id = format!("EDDYFN{}", random_hex(10).to_uppercase());
            let secret = random_hex(20);
            env.insert(
                function.name.to_string(),
                vec![
                    ("AWS_ACCESS_KEY_ID".to_string(), id.clone()),
                    ("AWS_SECRET_ACCESS_KEY".to_string(), secret.clone()),
                ],
            );
            let principal = role_of(function.name.as_str()).expect("a declared function");
            let expires_ms = Some(now + FUNCTION_CREDENTIALS_LIFETIME.as_millis() as i64);
            next.insert(
                id,
                Grant {
                    secret,
                    principal,
                    expires_ms,
                },
            );
        }
        *self.grants.write().expect("grant lock") = next;
        Ok(env)
    }

    /// Counts and logs a refusal.
    pub fn refused(&self, principal: &Principal, action: &str, resource: &str) {
        self.denied
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(
            principal = principal.describe(),
            action,
            resource,
            "access denied"
        );
    }

    fn is_bearer_token(&self, token: &str) -> bool {
        let secret = self.root.secret_access_key.as_bytes();
        let token = token.as_bytes();
        // Constant time: a near guess takes as long to refuse as a wild one.
        token.len() == secret.len()
            && token
                .iter()
                .zip(secret)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

/// The S3 API's view of the principals, for `s3s`'s signature check.
pub struct S3Principals(pub Shared);

#[async_trait::async_trait]
impl S3Auth for S3Principals {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.0.principals.secret_of(access_key) {
            Some(secret) => Ok(SecretKey::from(secret)),
            None => Err(s3_error!(
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
    let refuse = |error: &SigError, request: &Request| {
        principals.refusals.refused(request.uri().path(), error);
        close_unread(request, error::auth_error(lambda, error))
    };
    let bearer = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    if let Some(token) = bearer.filter(|_| !lambda) {
        if !principals.is_bearer_token(token.trim()) {
            return refuse(&SigError::Mismatch, &request);
        }
        request.extensions_mut().insert(Principal::Root);
        return next.run(request).await;
    }
    let now = SystemTime::now();
    if let Err(e) = eddy_sigv4::precheck(request.headers(), |key| principals.secret_of(key), now) {
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
        principals.unverified.acquire_many(announced.max(1) as u32),
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
        Ok(Err(e)) if format!("{e:?}").contains("length limit") => {
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
    let checked = eddy_sigv4::verify(&signed, |key| principals.secret_of(key), now);
    let principal = match checked.map(|key| principals.lookup(&key)) {
        Ok(Some((_, principal))) => principal,
        Ok(None) => return error::auth_error(lambda, &SigError::Mismatch),
        Err(e) => {
            principals.refusals.refused(&path, &e);
            return error::auth_error(lambda, &e);
        }
    };
    let (action, resource) = needed(&parts.method, &path);
    if !principal.allows(&action, &resource) {
        principals.refused(&principal, &action, &resource);
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

/// `bytes` random bytes from the operating system's generator, as lowercase hex.
fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).expect("the operating system's random generator");
    hex::encode(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(manifest: &str) -> App {
        let loaded = eddy_subscriptions::load(&[eddy_subscriptions::ManifestText {
            name: "app.yaml",
            text: manifest,
            dir: std::path::Path::new("."),
        }]);
        loaded.app.unwrap_or_else(|| panic!("{}", loaded.findings))
    }

    fn role(bucket: &str) -> String {
        format!(
            "buckets: [{{name: {bucket}}}]\nfunctions: [{{name: f, runtime: exec, command: [cat], role: [{{allow: [objects:read], resources: [bucket/{bucket}]}}]}}]\n"
        )
    }

    fn meta(key: &str) -> eddy_objects::ObjectMeta {
        eddy_objects::ObjectMeta {
            bucket: eddy_core::BucketName::new("bbb").unwrap(),
            key: eddy_core::ObjectKey::new(key).unwrap(),
            size: 0,
            etag: String::new(),
            sha256: String::new(),
            content_type: None,
            user_meta: Default::default(),
            last_modified_ms: 0,
            sequencer: 0,
        }
    }

    proptest::proptest! {
        /// A listing never shows a key a deny covers, whatever prefix it was asked for, and
        /// leaves out a common prefix only when the deny covers everything under it.
        #[test]
        fn listings_leave_out_what_a_deny_covers(
            deny in "[ab/*]{1,5}",
            keys in proptest::collection::vec("[ab/]{1,6}", 0..12),
            prefixes in proptest::collection::vec("[ab/]{0,4}/", 0..4),
            rest in "[ab/]{0,4}",
        ) {
            let policy = vec![
                Statement { effect: Effect::Allow, actions: vec!["objects:*".into()], resources: vec!["bucket/bbb".into()] },
                Statement { effect: Effect::Deny, actions: vec!["objects:list".into()], resources: vec![format!("bucket/bbb/{deny}")] },
            ];
            let principal = Principal::Key { name: "k".into(), policy: policy.into() };
            let mut page = eddy_objects::ListPage {
                objects: keys.iter().map(|k| meta(k)).collect(),
                common_prefixes: prefixes.clone(),
                next: None,
            };
            principal.filter_listing("bbb", &mut page);
            let pattern = format!("bucket/bbb/{deny}");
            for shown in &page.objects {
                let resource = format!("bucket/bbb/{}", shown.key);
                proptest::prop_assert!(!policy::glob(&pattern, &resource));
            }
            for hidden in prefixes.iter().filter(|p| !page.common_prefixes.contains(p)) {
                let under = format!("bucket/bbb/{hidden}{rest}");
                proptest::prop_assert!(policy::glob(&pattern, &under));
            }
        }
    }

    /// Credentials already handed out follow their function's role as it is now, and end with
    /// the function.
    #[test]
    fn issued_credentials_follow_the_current_role_and_end_with_the_function() {
        let principals = Principals::new(development_credentials());
        let first = principals.grant(&app(&role("aaa"))).unwrap();
        let key = first["f"][0].1.clone();
        let allowed = |key: &str, resource: &str| {
            principals
                .lookup(key)
                .is_some_and(|(_, p)| p.allows("objects:read", resource))
        };
        assert!(allowed(&key, "bucket/aaa/x"));
        let second = principals.grant(&app(&role("bbb"))).unwrap();
        assert_ne!(second["f"][0].1, key, "new credentials at every grant");
        assert!(allowed(&key, "bucket/bbb/x") && !allowed(&key, "bucket/aaa/x"));
        principals.grant(&app("buckets: [{name: bbb}]\n")).unwrap();
        assert!(
            principals.lookup(&key).is_none(),
            "a removed function's keys stop at once"
        );
    }
}
