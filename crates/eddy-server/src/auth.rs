//! Who may call eddy. Every surface but `/_eddy/health` needs the root credentials:
//! - the S3 API: AWS Signature V4 in headers or a presigned URL, checked by `s3s`;
//! - the Lambda API: Signature V4 in headers, checked here over the buffered body;
//! - `/_eddy/`: Signature V4 as for Lambda, or `Authorization: Bearer <secret access key>`.
//!
//! A request that fails is answered before any handler runs, so it changes nothing.

use std::time::SystemTime;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use eddy_sigv4::{Credentials, SigError};
use s3s::auth::{S3Auth, SecretKey};
use s3s::{S3Result, s3_error};

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

/// The principals eddy knows. For now the root alone; roles and named keys build on this.
pub struct Principals {
    root: Credentials,
}

impl Principals {
    pub fn new(root: Credentials) -> Self {
        Self { root }
    }

    fn secret_of(&self, access_key_id: &str) -> Option<String> {
        (access_key_id == self.root.access_key_id).then(|| self.root.secret_access_key.clone())
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

/// Middleware for the Lambda and `/_eddy/` APIs: checks the request's credentials and passes
/// it on (with its body, which a signature covers) or answers 403.
pub async fn authenticate(
    State(services): State<Shared>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    let lambda = path.starts_with("/2015-03-31/");
    if path == "/_eddy/health" {
        return next.run(request).await;
    }
    let bearer = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    if let Some(token) = bearer.filter(|_| !lambda) {
        return if services.principals.is_bearer_token(token.trim()) {
            next.run(request).await
        } else {
            error::auth_error(lambda, &SigError::Mismatch)
        };
    }
    let (parts, body) = request.into_parts();
    // A signature covers the body, so it is read first; the limit stays that of the API.
    let body = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(body) => body,
        Err(_) => return error::too_large(lambda, BODY_LIMIT),
    };
    let payload_sha256 = eddy_sigv4::sha256_hex(&body);
    let signed = eddy_sigv4::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        payload_sha256: &payload_sha256,
    };
    let checked = eddy_sigv4::verify(
        &signed,
        |key| services.principals.secret_of(key),
        SystemTime::now(),
    );
    match checked {
        Ok(_principal) => next.run(Request::from_parts(parts, body.into())).await,
        Err(e) => {
            tracing::info!(path, error = %e, "request refused: credentials");
            error::auth_error(lambda, &e)
        }
    }
}

/// A presigned URL may not outlive seven days, whatever its signer asked for: Signature V4
/// gives a lifetime (`X-Amz-Expires`), V2 an end in epoch seconds (`Expires`). Returns what was
/// asked for when it is too long.
pub fn presign_too_long(query: Option<&str>, now: SystemTime) -> Option<String> {
    let now = now.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
    query?.split('&').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        let value: u64 = value.parse().ok()?;
        let lifetime = match name {
            "X-Amz-Expires" => value,
            "Expires" => value.saturating_sub(now),
            _ => return None,
        };
        (lifetime > MAX_PRESIGN_SECONDS).then(|| format!("{name}={value}"))
    })
}
