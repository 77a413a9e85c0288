//! AWS Signature Version 4 for the surfaces `s3s` does not cover: the Lambda API and eddy's own
//! `/_eddy/` API (verification), and the `eddy` CLI (signing). One canonical form serves both,
//! so what the CLI signs the server verifies.
//!
//! The canonical request is AWS's: method, URI, query, headers, signed header names and the
//! payload's SHA-256, each on its own line. Every service but S3 encodes the path a second time
//! (`s3` here encodes it once, as S3 does).

use std::time::{Duration, SystemTime};

use eddy_core::time::{amz_date, parse_amz_date};
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// How far a request's `X-Amz-Date` may be from the server's clock, as AWS allows.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Everything but the unreserved characters `A-Z a-z 0-9 - _ . ~` is percent-encoded.
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// The same, keeping the path's slashes.
const ENCODE_PATH: &AsciiSet = &ENCODE.remove(b'/');

/// Percent-encodes a query value or a path segment as AWS does: all but `A-Z a-z 0-9 - _ . ~`.
pub fn uri_encode(text: &str) -> String {
    utf8_percent_encode(text, ENCODE).to_string()
}

/// [`uri_encode`], keeping the slashes of a path (or of an object key).
pub fn uri_encode_path(text: &str) -> String {
    utf8_percent_encode(text, ENCODE_PATH).to_string()
}

/// An access key and its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret never reaches a log.
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Why a request's signature was not accepted. The messages say what was expected and never
/// include a secret or the signature the server computed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SigError {
    #[error("the request is not signed: send an AWS Signature Version 4 Authorization header")]
    Missing,
    #[error("the Authorization header is malformed: {0}")]
    Malformed(String),
    #[error("the access key {0:?} is not known to this server")]
    UnknownAccessKey(String),
    #[error("X-Amz-Date {0:?} is more than 15 minutes away from the server's time")]
    TooSkewed(String),
    #[error(
        "the signature does not match the request; check the secret key and that nothing changed the request after signing"
    )]
    Mismatch,
}

/// What a request names for signing. `path` and `query` are exactly as they travel on the wire.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    /// The hex SHA-256 of the body (or `UNSIGNED-PAYLOAD` where S3 allows it).
    pub payload_sha256: &'a str,
}

/// The hex SHA-256 of a payload.
pub fn sha256_hex(payload: &[u8]) -> String {
    hex::encode(Sha256::digest(payload))
}

/// The headers that sign a request: `x-amz-date`, `x-amz-content-sha256` and `authorization`,
/// computed over `host`, those two and any `content-type`. The caller adds them to the request;
/// `headers` must already hold `host`.
pub fn sign(
    credentials: &Credentials,
    region: &str,
    service: &str,
    request: &Request<'_>,
    time: SystemTime,
) -> Vec<(&'static str, String)> {
    let date = amz_date(millis(time));
    let mut headers = request.headers.clone();
    let set = |headers: &mut HeaderMap, name: &'static str, value: &str| {
        headers.insert(name, value.parse().expect("an ASCII header value"));
    };
    set(&mut headers, "x-amz-date", &date);
    set(&mut headers, "x-amz-content-sha256", request.payload_sha256);
    let mut names: Vec<&str> = ["host", "x-amz-date", "x-amz-content-sha256", "content-type"]
        .into_iter()
        .filter(|n| headers.contains_key(*n))
        .collect();
    names.sort_unstable();
    let scope = Scope {
        date: &date[..8],
        region,
        service,
    };
    let signed = Request {
        headers: &headers,
        ..*request
    };
    let signature = signature(
        &credentials.secret_access_key,
        &scope,
        &date,
        &signed,
        &names,
    );
    let authorization = format!(
        "{ALGORITHM} Credential={}/{}, SignedHeaders={}, Signature={signature}",
        credentials.access_key_id,
        scope.text(),
        names.join(";")
    );
    vec![
        ("x-amz-date", date),
        ("x-amz-content-sha256", request.payload_sha256.to_string()),
        ("authorization", authorization),
    ]
}

/// Checks a request's `Authorization` header. `secret_of` looks up an access key's secret.
/// Returns the access key the request was signed with.
pub fn verify(
    request: &Request<'_>,
    secret_of: impl FnOnce(&str) -> Option<String>,
    now: SystemTime,
) -> Result<String, SigError> {
    let header = Header::read(request.headers, now)?;
    let secret = header.secret(secret_of)?;
    let expected = signature(
        &secret,
        &header.auth.scope,
        header.date,
        request,
        &header.auth.signed_headers,
    );
    if constant_time_eq(expected.as_bytes(), header.auth.signature.as_bytes()) {
        Ok(header.auth.access_key_id.to_string())
    } else {
        Err(SigError::Mismatch)
    }
}

/// The access key a request's `Authorization` header names, if it is a well-formed V4 header
/// (so the caller can look the key up before checking).
pub fn access_key_id(headers: &HeaderMap) -> Option<&str> {
    let header = headers.get("authorization")?.to_str().ok()?;
    Authorization::parse(header).ok().map(|a| a.access_key_id)
}

/// Everything [`verify`] checks that does not need the body: the header's form, the clock, and
/// that the access key is known. A request that fails here is refused before its body is read.
pub fn precheck(
    headers: &HeaderMap,
    secret_of: impl FnOnce(&str) -> Option<String>,
    now: SystemTime,
) -> Result<(), SigError> {
    Header::read(headers, now)?.secret(secret_of).map(|_| ())
}

/// The most of a client-sent identifier an error message repeats.
const QUOTED: usize = 64;

/// `text`, cut to a length fit for a message.
fn quoted(text: &str) -> String {
    let mut cut: String = text.chars().take(QUOTED).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

/// A request's signature header and date, checked for form and time.
struct Header<'a> {
    auth: Authorization<'a>,
    date: &'a str,
}

impl<'a> Header<'a> {
    fn read(headers: &'a HeaderMap, now: SystemTime) -> Result<Self, SigError> {
        let header = headers
            .get("authorization")
            .ok_or(SigError::Missing)?
            .to_str()
            .map_err(|_| SigError::Malformed("it is not ASCII".into()))?;
        let auth = Authorization::parse(header)?;
        if !auth.signed_headers.contains(&"host") {
            return Err(SigError::Malformed(
                "SignedHeaders must include host".into(),
            ));
        }
        let date = headers
            .get("x-amz-date")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| SigError::Malformed("the x-amz-date header is missing".into()))?;
        let signed_at = parse_amz_date(date).ok_or_else(|| {
            SigError::Malformed(format!(
                "x-amz-date {:?} is not YYYYMMDDTHHMMSSZ",
                quoted(date)
            ))
        })?;
        if millis(now).abs_diff(signed_at) > MAX_CLOCK_SKEW.as_millis() as u64 {
            return Err(SigError::TooSkewed(date.to_string()));
        }
        if auth.scope.date != &date[..8] {
            return Err(SigError::Malformed(
                "the credential scope's date is not the date of x-amz-date".into(),
            ));
        }
        Ok(Self { auth, date })
    }

    fn secret(&self, secret_of: impl FnOnce(&str) -> Option<String>) -> Result<String, SigError> {
        secret_of(self.auth.access_key_id)
            .ok_or_else(|| SigError::UnknownAccessKey(quoted(self.auth.access_key_id)))
    }
}

/// The key that signs an S3 POST policy (and every request) of `date` (`YYYYMMDD`) in a
/// region for a service: AWS's chain of HMACs from the secret.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    for part in [region, service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    key
}

/// Whether `signature` (hex) is the HMAC-SHA256 of `text` under `key`, compared in constant
/// time.
pub fn signature_matches(key: &[u8], text: &str, signature: &str) -> bool {
    let expected = hex::encode(hmac(key, text.as_bytes()));
    constant_time_eq(expected.as_bytes(), signature.as_bytes())
}

fn millis(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Compares without stopping at the first difference, so timing says nothing about how much
/// of a guessed signature was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

struct Scope<'a> {
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

impl Scope<'_> {
    fn text(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// The parts of `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
struct Authorization<'a> {
    access_key_id: &'a str,
    scope: Scope<'a>,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

impl<'a> Authorization<'a> {
    fn parse(header: &'a str) -> Result<Self, SigError> {
        let malformed = |what: &str| SigError::Malformed(what.to_string());
        let rest = header
            .strip_prefix(ALGORITHM)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or_else(|| malformed("it must start with AWS4-HMAC-SHA256"))?;
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',').map(str::trim) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| malformed("its parts must be NAME=VALUE"))?;
            let slot = match name {
                "Credential" => &mut credential,
                "SignedHeaders" => &mut signed,
                "Signature" => &mut signature,
                _ => {
                    return Err(malformed(
                        "it has a part other than Credential, SignedHeaders, Signature",
                    ));
                }
            };
            *slot = Some(value);
        }
        let credential = credential.ok_or_else(|| malformed("Credential is missing"))?;
        let fields: Vec<&str> = credential.split('/').collect();
        let [access_key_id, date, region, service, "aws4_request"] = fields[..] else {
            return Err(malformed(
                "Credential must be KEY/YYYYMMDD/REGION/SERVICE/aws4_request",
            ));
        };
        let signed_headers: Vec<&str> = signed
            .ok_or_else(|| malformed("SignedHeaders is missing"))?
            .split(';')
            .collect();
        Ok(Self {
            access_key_id,
            scope: Scope {
                date,
                region,
                service,
            },
            signed_headers,
            signature: signature.ok_or_else(|| malformed("Signature is missing"))?,
        })
    }
}

fn signature(
    secret: &str,
    scope: &Scope<'_>,
    date: &str,
    request: &Request<'_>,
    signed_headers: &[&str],
) -> String {
    let canonical = canonical_request(request, scope.service, signed_headers);
    let string_to_sign = format!(
        "{ALGORITHM}\n{date}\n{}\n{}",
        scope.text(),
        sha256_hex(canonical.as_bytes())
    );
    let key = signing_key(secret, scope.date, scope.region, scope.service);
    hex::encode(hmac(&key, string_to_sign.as_bytes()))
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn canonical_request(request: &Request<'_>, service: &str, signed_headers: &[&str]) -> String {
    let path = if request.path.is_empty() {
        "/"
    } else {
        request.path
    };
    let uri = if service == "s3" {
        path.to_string()
    } else {
        uri_encode_path(path)
    };
    let headers: String = signed_headers
        .iter()
        .map(|name| {
            let values: Vec<String> = request
                .headers
                .get_all(*name)
                .iter()
                .map(|v| normalize_space(&String::from_utf8_lossy(v.as_bytes())))
                .collect();
            format!("{name}:{}\n", values.join(","))
        })
        .collect();
    format!(
        "{}\n{uri}\n{}\n{headers}\n{}\n{}",
        request.method,
        canonical_query(request.query),
        signed_headers.join(";"),
        request.payload_sha256
    )
}

/// The query's pairs, each name and value encoded AWS's way, sorted.
fn canonical_query(query: &str) -> String {
    let encode = |s: &str| uri_encode(&percent_decode_str(s).decode_utf8_lossy());
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            (encode(name), encode(value))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Trims a header value and collapses runs of spaces into one, as the canonical form requires.
fn normalize_space(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests;
