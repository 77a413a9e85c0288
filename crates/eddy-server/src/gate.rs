//! What every request passes before any surface sees it.
//!
//! - **Host.** A request must name a host eddy serves: an IP address, `localhost`, a name given
//!   with `--host`, or a bucket's virtual host under one of those. A page on another site that
//!   has its name resolve to 127.0.0.1 (DNS rebinding) sends its own name, and is refused.
//! - **Origin.** A browser names the page a request comes from. Same-origin requests pass.
//!   eddy's own APIs (`/_eddy/`, the Lambda API) refuse every other origin; the S3 API lets
//!   one through only where the bucket's CORS rules allow it, and answers preflights from them.
//!   A form on another site cannot post to eddy, nor a script on it call eddy, even with the
//!   development credentials that anyone can read.
//! - **Bodies** must keep arriving: one that stalls (30 s unless `--body-idle-timeout` says
//!   otherwise) fails.

use std::net::IpAddr;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use eddy_core::BucketName;

use crate::Shared;
use crate::auth::close_unread;
use crate::body::with_idle_timeout;
use crate::cors;
use crate::error::{ApiError, s3_response};

/// The host names eddy answers to (besides IP addresses), lowercase.
#[derive(Clone, Debug)]
pub struct Hosts {
    domains: Vec<String>,
}

impl Hosts {
    /// `localhost` and the names the operator gave.
    pub fn new(names: &[String]) -> Self {
        let mut domains = vec!["localhost".to_string()];
        domains.extend(
            names
                .iter()
                .map(|n| n.trim_end_matches('.').to_ascii_lowercase()),
        );
        domains.dedup();
        Self { domains }
    }

    pub fn domains(&self) -> &[String] {
        &self.domains
    }

    /// Whether eddy serves `host` (a `Host` header, with or without a port).
    pub fn serves(&self, host: &str) -> bool {
        let name = host_name(host);
        name.trim_matches(['[', ']']).parse::<IpAddr>().is_ok()
            || self.domains.iter().any(|d| {
                name.eq_ignore_ascii_case(d)
                    || name
                        .to_ascii_lowercase()
                        .strip_suffix(d.as_str())
                        .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1)
            })
    }

    /// The bucket a virtual-hosted-style `host` names (`BUCKET.DOMAIN`).
    pub fn bucket_of<'a>(&self, host: &'a str) -> Option<&'a str> {
        let name = host_name(host);
        self.domains.iter().find_map(|d| {
            let cut = name.len().checked_sub(d.len() + 1)?;
            (name[cut + 1..].eq_ignore_ascii_case(d) && name.as_bytes()[cut] == b'.' && cut > 0)
                .then(|| &name[..cut])
        })
    }
}

/// `host` without its port (`[::1]:80` → `[::1]`).
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// An origin's host and port, with the scheme's default port made explicit.
fn authority(origin: &str) -> Option<String> {
    let (scheme, rest) = origin.split_once("://")?;
    let default = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    Some(with_port(rest.trim_end_matches('/'), default))
}

fn with_port(host: &str, default: u16) -> String {
    let name = host_name(host);
    if name.len() == host.len() {
        format!("{}:{default}", name.to_ascii_lowercase())
    } else {
        host.to_ascii_lowercase()
    }
}

/// Whether a request from page `origin` to `host` is same-origin. (eddy serves plain HTTP;
/// behind a TLS proxy the page's scheme is https and the host the same.)
fn same_origin(origin: &str, host: &str) -> bool {
    let Some(page) = authority(origin) else {
        return false;
    };
    let https = origin.starts_with("https://");
    page == with_port(host, if https { 443 } else { 80 })
}

pub async fn gate(State(s): State<Shared>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let Some(host) = host.filter(|h| s.hosts.serves(h)) else {
        let message = format!(
            "eddy does not serve the host this request names; it answers to IP addresses and {} (name more with --host)",
            s.hosts.domains().join(", ")
        );
        let refusal = ApiError::new(StatusCode::MISDIRECTED_REQUEST, "UnknownHost", message);
        return close_unread(&request, refusal.into_response());
    };
    let request = request.map(|body| with_idle_timeout(body, s.body_idle_timeout));
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match origin {
        Some(origin) if !same_origin(&origin, &host) => {
            cross_origin(&s, request, &origin, &host, next).await
        }
        None if request.method() == Method::OPTIONS => s3_response(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Insufficient information. Origin request header needed.",
        ),
        _ => next.run(request).await,
    }
}

async fn cross_origin(
    s: &Shared,
    request: Request,
    origin: &str,
    host: &str,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if path == "/_eddy" || path.starts_with("/_eddy/") || path.starts_with("/2015-03-31/") {
        let refusal = ApiError::new(
            StatusCode::FORBIDDEN,
            "CrossOriginRefused",
            "eddy's own APIs answer pages of their own origin only",
        );
        return close_unread(&request, refusal.into_response());
    }
    let bucket = s.hosts.bucket_of(host).map(str::to_string).or_else(|| {
        let first = path.trim_start_matches('/').split('/').next()?;
        Some(
            percent_encoding::percent_decode_str(first)
                .decode_utf8_lossy()
                .into_owned(),
        )
    });
    let rules = match bucket.and_then(|b| BucketName::new(b).ok()) {
        Some(bucket) => s
            .objects
            .bucket_cors(&bucket)
            .await
            .ok()
            .flatten()
            .unwrap_or_default(),
        None => Vec::new(),
    };
    if request.method() == Method::OPTIONS {
        let Some((method, headers)) = cors::announced(request.headers()) else {
            return s3_response(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Invalid Access-Control-Request-Method: a preflight names the method it asks for",
            );
        };
        let asked = cors::Asked {
            origin,
            method: &method,
            headers,
        };
        return match cors::allowing(&rules, &asked) {
            Some(rule) => (StatusCode::OK, cors::preflight_headers(rule, &asked)).into_response(),
            None => cors_refused(),
        };
    }
    let asked = cors::Asked {
        origin,
        method: request.method().as_str(),
        headers: Vec::new(),
    };
    let Some(rule) = cors::allowing(&rules, &asked).cloned() else {
        return close_unread(&request, cors_refused());
    };
    let mut response = next.run(request).await;
    let allow: HeaderMap = cors::allow_headers(&rule, origin);
    response.headers_mut().extend(allow);
    response
}

fn cors_refused() -> Response {
    s3_response(
        StatusCode::FORBIDDEN,
        "AccessForbidden",
        "CORSResponse: This CORS request is not allowed. The bucket's CORS rules do not allow this origin, method or these headers.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_ip_addresses_localhost_and_configured_names() {
        let hosts = Hosts::new(&["s3.example.com".into()]);
        for ok in [
            "127.0.0.1:7171",
            "[::1]:7171",
            "10.0.0.5",
            "localhost:7171",
            "LOCALHOST",
            "photos.localhost:7171",
            "s3.example.com",
            "photos.s3.example.com:443",
        ] {
            assert!(hosts.serves(ok), "{ok}");
        }
        for bad in [
            "attacker.example:7171",
            "localhost.attacker.example",
            "evil-localhost",
            "s3.example.com.evil.org",
            ".localhost",
            "",
        ] {
            assert!(!hosts.serves(bad), "{bad:?}");
        }
        assert_eq!(hosts.bucket_of("photos.localhost:7171"), Some("photos"));
        assert_eq!(hosts.bucket_of("a.b.s3.example.com"), Some("a.b"));
        assert_eq!(hosts.bucket_of("localhost:7171"), None);
        assert_eq!(hosts.bucket_of("127.0.0.1:7171"), None);
    }

    #[test]
    fn same_origin_compares_host_and_port() {
        assert!(same_origin("http://localhost:7171", "localhost:7171"));
        assert!(same_origin("http://127.0.0.1", "127.0.0.1:80"));
        assert!(same_origin("https://eddy.example", "eddy.example"));
        assert!(!same_origin("http://localhost:3000", "localhost:7171"));
        assert!(!same_origin("http://evil.example", "localhost:7171"));
        assert!(!same_origin("null", "localhost:7171"));
        assert!(!same_origin("file://", "localhost:7171"));
    }
}
