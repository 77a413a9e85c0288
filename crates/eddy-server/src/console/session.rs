//! Signing in to the console. A session is a cookie that names an access key and when the
//! session ends, sealed with an HMAC under that key's secret: any node that knows the key can
//! check it (nodes share their keys through the database, not their memory), and a key that is
//! removed or rotated ends its sessions. The cookie is `HttpOnly` (no script reads it),
//! `SameSite=Strict` (no other site's page sends it) and limited to the console's path. Every
//! form that changes something carries a CSRF token derived from the session the same way,
//! and the gate refuses requests from pages of other origins besides.

use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use eddy_node::Principal;
use serde::Deserialize;

use super::page::{Html, render};
use super::templates::SignIn;
use super::{BASE, ConsoleError};
use crate::Shared;

/// The session cookie's name.
pub const COOKIE: &str = "eddy_console";
/// How long a session lasts.
pub const SESSION_SECONDS: u64 = 12 * 3600;

/// Who is looking at a page: the principal of the session's key, and the token its forms
/// carry.
#[derive(Clone)]
pub struct Viewer {
    pub principal: Principal,
    /// The session key's id, shown in the page header.
    pub key_id: String,
    pub csrf: String,
}

impl Viewer {
    pub fn allows(&self, action: &str, resource: &str) -> bool {
        self.principal.allows(action, resource)
    }

    /// Refuses what the viewer's policy does not allow, naming it.
    pub fn require(&self, action: &str, resource: &str) -> Result<(), ConsoleError> {
        if self.allows(action, resource) {
            return Ok(());
        }
        Err(ConsoleError::new(
            StatusCode::FORBIDDEN,
            format!(
                "{} may not {action} on {resource}",
                self.principal.describe()
            ),
        ))
    }

    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, token: &str) -> Result<(), ConsoleError> {
        if same(token.as_bytes(), self.csrf.as_bytes()) {
            return Ok(());
        }
        Err(ConsoleError::new(
            StatusCode::FORBIDDEN,
            "the form's CSRF token is not this session's; reload the page and try again",
        ))
    }
}

/// A session as its cookie holds it: `KEY.EXPIRES.NONCE.MAC`.
struct Sealed<'a> {
    key_id: &'a str,
    expires: u64,
    nonce: &'a str,
    mac: &'a str,
}

impl<'a> Sealed<'a> {
    fn parse(cookie: &'a str) -> Option<Self> {
        let mut parts = cookie.rsplitn(4, '.');
        let mac = parts.next()?;
        let nonce = parts.next()?;
        let expires = parts.next()?.parse().ok()?;
        let key_id = parts.next()?;
        Some(Self {
            key_id,
            expires,
            nonce,
            mac,
        })
    }
}

fn mac(secret: &str, key_id: &str, expires: u64, nonce: &str) -> String {
    let text = format!("eddy console session\n{key_id}\n{expires}\n{nonce}");
    hex::encode(eddy_sigv4::hmac(secret.as_bytes(), text.as_bytes()))
}

fn csrf(secret: &str, nonce: &str) -> String {
    let text = format!("eddy console csrf\n{nonce}");
    hex::encode(eddy_sigv4::hmac(secret.as_bytes(), text.as_bytes()))
}

/// Equal bytes, compared in constant time.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then(|| value.to_string())
        })
}

/// The viewer a request's session cookie names, if it is sound and current.
async fn viewer(s: &Shared, headers: &HeaderMap) -> Result<Option<Viewer>, ConsoleError> {
    let Some(cookie) = cookie_value(headers) else {
        return Ok(None);
    };
    let Some(sealed) = Sealed::parse(&cookie) else {
        return Ok(None);
    };
    if sealed.expires < now_seconds() {
        return Ok(None);
    }
    let Some((secret, principal)) = s.principals.find(sealed.key_id).await? else {
        return Ok(None);
    };
    let expected = mac(&secret, sealed.key_id, sealed.expires, sealed.nonce);
    if !same(expected.as_bytes(), sealed.mac.as_bytes()) || !for_people(&principal) {
        return Ok(None);
    }
    Ok(Some(Viewer {
        principal,
        key_id: sealed.key_id.to_string(),
        csrf: csrf(&secret, sealed.nonce),
    }))
}

/// The console is for people: the root and the app's access keys, not a function's own
/// credentials.
fn for_people(principal: &Principal) -> bool {
    !matches!(principal, Principal::Function { .. })
}

impl FromRequestParts<Shared> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &Shared) -> Result<Self, Response> {
        match viewer(s, &parts.headers).await {
            Ok(Some(viewer)) => Ok(viewer),
            Ok(None) => {
                // The console's routes are nested: their URIs lack its base.
                let here = parts.uri.path_and_query().map_or("/", |p| p.as_str());
                let here = if here.starts_with(BASE) {
                    here.to_string()
                } else {
                    format!("{BASE}{here}")
                };
                let next = if parts.method == axum::http::Method::GET {
                    here
                } else {
                    format!("{BASE}/")
                };
                let query = super::page::query(&[("next", next.as_str())]);
                Err(Redirect::to(&format!("{BASE}/sign-in?{query}")).into_response())
            }
            Err(e) => Err(e.into_response()),
        }
    }
}

#[derive(Deserialize)]
pub struct SignInQuery {
    next: Option<String>,
}

/// Where to go after signing in or acting: a console page (never another site), written as a
/// `Location` header can hold it.
pub fn next_page(next: Option<&str>) -> String {
    match next {
        Some(next)
            if next.starts_with(&format!("{BASE}/"))
                && !next.contains("//")
                && next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            next.to_string()
        }
        _ => format!("{BASE}/"),
    }
}

/// `GET /_eddy/console/sign-in`.
pub async fn sign_in_page(Query(q): Query<SignInQuery>) -> Html {
    render(&SignIn {
        next: next_page(q.next.as_deref()),
        error: None,
    })
}

#[derive(Deserialize)]
pub struct SignInForm {
    access_key_id: String,
    secret_access_key: String,
    next: Option<String>,
}

/// `POST /_eddy/console/sign-in`: checks the key and its secret and starts a session.
pub async fn sign_in(
    State(s): State<Shared>,
    axum::Form(form): axum::Form<SignInForm>,
) -> Result<Response, ConsoleError> {
    let next = next_page(form.next.as_deref());
    let refused = |error: &str| {
        let page = render(&SignIn {
            next: next.clone(),
            error: Some(error.to_string()),
        });
        (StatusCode::UNAUTHORIZED, page).into_response()
    };
    let key_id = form.access_key_id.trim();
    let found = s.principals.find(key_id).await?;
    let Some((secret, principal)) = found
        .filter(|(secret, _)| same(secret.as_bytes(), form.secret_access_key.trim().as_bytes()))
    else {
        s.guard
            .refusals
            .refused("/_eddy/console/sign-in", &eddy_sigv4::SigError::Mismatch);
        return Ok(refused(
            "That access key and secret do not match a key eddy knows.",
        ));
    };
    if !for_people(&principal) {
        return Ok(refused(
            "A function's own credentials cannot sign in to the console; use the root key or an access key from the app.",
        ));
    }
    let expires = now_seconds() + SESSION_SECONDS;
    let nonce = hex::encode(uuid_bytes());
    let sealed = format!(
        "{key_id}.{expires}.{nonce}.{}",
        mac(&secret, key_id, expires, &nonce)
    );
    let cookie = format!(
        "{COOKIE}={sealed}; Path={BASE}; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECONDS}"
    );
    // The root's key id comes from the environment and could hold what a header cannot.
    let Ok(cookie) = cookie.parse() else {
        return Ok(refused(
            "This access key id cannot be kept in a cookie; sign in with another key.",
        ));
    };
    let mut response = Redirect::to(&next).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(response)
}

/// 16 random bytes (a v4 UUID's randomness comes from the OS).
fn uuid_bytes() -> [u8; 16] {
    *uuid::Uuid::new_v4().as_bytes()
}

#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// `POST /_eddy/console/sign-out`: ends the session in this browser.
pub async fn sign_out(
    viewer: Viewer,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    viewer.check_csrf(&form.csrf)?;
    let cookie = format!("{COOKIE}=; Path={BASE}; HttpOnly; SameSite=Strict; Max-Age=0");
    let mut response = Redirect::to(&format!("{BASE}/sign-in")).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie.parse().expect("a header value"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_session_reads_back_and_a_changed_one_does_not_match() {
        let seal = mac("secret", "eddy-dev", 99, "ab");
        let cookie = format!("eddy-dev.99.ab.{seal}");
        let sealed = Sealed::parse(&cookie).unwrap();
        assert_eq!(
            (sealed.key_id, sealed.expires, sealed.nonce),
            ("eddy-dev", 99, "ab")
        );
        assert!(same(
            mac("secret", "eddy-dev", 99, "ab").as_bytes(),
            sealed.mac.as_bytes()
        ));
        for (key, expires, nonce) in [
            ("eddy-deV", 99, "ab"),
            ("eddy-dev", 100, "ab"),
            ("eddy-dev", 99, "ac"),
        ] {
            assert!(!same(
                mac("secret", key, expires, nonce).as_bytes(),
                sealed.mac.as_bytes()
            ));
        }
        assert_ne!(mac("other", "eddy-dev", 99, "ab"), seal, "another secret");
        assert!(Sealed::parse("no-dots").is_none());
        assert!(Sealed::parse("a.notanumber.c.d").is_none());
    }

    #[test]
    fn after_signing_in_only_console_pages_are_visited() {
        assert_eq!(
            next_page(Some("/_eddy/console/events?x=1")),
            "/_eddy/console/events?x=1"
        );
        for elsewhere in [
            None,
            Some("https://evil.example/"),
            Some("//evil.example/_eddy/console/"),
            Some("/_eddy/console//evil.example"),
            Some("/_eddy/console/\\evil"),
            Some("/_eddy/v1/events"),
            Some("/_eddy/consolex"),
            Some("/_eddy/console/\nSet-Cookie: x=1"),
            Some("/_eddy/console/ü"),
        ] {
            assert_eq!(next_page(elsewhere), "/_eddy/console/", "{elsewhere:?}");
        }
    }
}
