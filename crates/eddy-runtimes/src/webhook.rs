//! The `webhook` runtime: the event is POSTed to the function's `url`.
//!
//! - The body is the event JSON. `X-Eddy-Signature: t=<unix seconds>,v1=<hex>` carries an
//!   HMAC-SHA256 of `<t>.<body>` keyed with the secret in the environment variable `secret_env`
//!   names (never the manifest), so the receiver can check the sender and refuse replays.
//!   `X-Eddy-Request-Id` and `X-Eddy-Function` say which invocation it is.
//! - A 2xx answer is success (its body, JSON or text, is the result). 429 and 5xx are retried as
//!   the trigger's policy says, not before a `Retry-After` the server gave. Any other answer is a
//!   failure that is not retried. The function's `timeout` bounds the whole exchange; redirects
//!   are not followed.
//! - A URL whose host is, or resolves to, a loopback, private, link-local, unspecified or
//!   metadata address is refused (`Webhook.ForbiddenAddress`, not retried) unless the function
//!   names that host in `private_hosts`: a webhook must not become a way into the network eddy
//!   runs in.

use std::net::{IpAddr, ToSocketAddrs};
use std::time::{Duration, SystemTime};

use eddy_subscriptions::FunctionSpec;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::{Context, FunctionError, LOG_LIMIT, Outcome, RESULT_LIMIT, Retry, Unrunnable};

/// `t=…,v1=…`: the signature of `body` sent at `unix_seconds` with `secret`.
pub fn signature(secret: &[u8], unix_seconds: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={unix_seconds},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Where a webhook posts, and what it may reach.
pub(crate) struct Target<'a> {
    pub url: &'a str,
    pub secret_env: Option<&'a str>,
    pub private_hosts: &'a [String],
}

/// Whether an address is one a webhook may not reach without an explicit allowance.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local() // 169.254.0.0/16, the cloud metadata address among them
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || v6.to_ipv4_mapped().is_some_and(|v4| is_private(IpAddr::V4(v4)))
        }
    }
}

/// Refuses a URL that reaches a private address its function did not allow.
fn check_address(url: &str, allowed: &[String]) -> Result<(), FunctionError> {
    let refuse = |message: String| {
        let mut error = FunctionError::new("Webhook.ForbiddenAddress", message);
        error.retry = Retry::Never;
        error
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|_| refuse(format!("{url:?} is not a URL")))?;
    let host = uri
        .host()
        .ok_or_else(|| refuse(format!("{url:?} names no host")))?
        .trim_start_matches('[')
        .trim_end_matches(']');
    if allowed.iter().any(|h| h == host) {
        return Ok(());
    }
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => (host, port)
            .to_socket_addrs()
            .map_err(|e| refuse(format!("cannot resolve {host}: {e}")))?
            .map(|a| a.ip())
            .collect(),
    };
    match addresses.into_iter().find(|ip| is_private(*ip)) {
        Some(ip) => Err(refuse(format!(
            "{host} is {ip}, a loopback, private, link-local or metadata address; name it in the function's private_hosts to allow it"
        ))),
        None => Ok(()),
    }
}

pub(crate) async fn post(
    function: &FunctionSpec,
    target: &Target<'_>,
    payload: &Value,
    context: &Context,
) -> Result<Outcome, Unrunnable> {
    let (url, secret_env) = (target.url, target.secret_env);
    let secret = match secret_env {
        None => None,
        Some(name) => Some(eddy_core::secrets::var(name).ok_or_else(|| {
            Unrunnable(format!(
                "function `{}` signs with the secret in ${name}, which eddy's environment does not set",
                function.name
            ))
        })?),
    };
    let body = payload.to_string().into_bytes();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut headers = vec![
        ("content-type", "application/json".to_string()),
        ("x-eddy-request-id", context.request_id.clone()),
        ("x-eddy-function", function.name.to_string()),
    ];
    if let Some(secret) = secret {
        headers.push(("x-eddy-signature", signature(secret.as_bytes(), now, &body)));
    }
    let (url, timeout) = (url.to_string(), function.timeout);
    let allowed = target.private_hosts.to_vec();
    let sent = tokio::task::spawn_blocking(move || {
        check_address(&url, &allowed).map_err(Failed::Refused)?;
        send(&url, &headers, &body, timeout)
    })
    .await
    .unwrap_or_else(|e| Err(Failed::Other(format!("the webhook request panicked: {e}"))));
    Ok(match sent {
        Ok(answer) => answer.outcome(),
        Err(Failed::Timeout) => Outcome::timeout(timeout, String::new(), false),
        Err(Failed::Refused(error)) => Outcome::failed(error),
        Err(Failed::Other(message)) => {
            Outcome::failed(FunctionError::new("Webhook.RequestFailed", message))
        }
    })
}

/// Why no answer came.
enum Failed {
    Timeout,
    Refused(FunctionError),
    Other(String),
}

struct Answer {
    status: u16,
    retry_after: Option<Duration>,
    body: String,
    cut: bool,
}

impl Answer {
    fn outcome(self) -> Outcome {
        let log = format!("POST answered {}\n", self.status);
        if (200..300).contains(&self.status) {
            if self.cut {
                let error = FunctionError::new(
                    "Runtime.ResponseSizeTooLarge",
                    format!("the answer is larger than {RESULT_LIMIT} bytes"),
                );
                return Outcome::ended(Err(error), log, false);
            }
            let trimmed = self.body.trim();
            let result = if trimmed.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(trimmed).unwrap_or_else(|_| Value::String(trimmed.into()))
            };
            return Outcome::ended(Ok(result), log, false);
        }
        let mut text = self.body;
        text.truncate(LOG_LIMIT.min(4096));
        let mut error = FunctionError::new(
            format!("Webhook.Http{}", self.status),
            format!("the webhook answered {}: {}", self.status, text.trim()),
        );
        error.retry = match self.status {
            429 | 500..=599 => self.retry_after.map_or(Retry::AsPolicy, Retry::NotBefore),
            _ => Retry::Never,
        };
        Outcome::ended(Err(error), log, false)
    }
}

fn send(
    url: &str,
    headers: &[(&str, String)],
    body: &[u8],
    timeout: Duration,
) -> Result<Answer, Failed> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(timeout))
        .build()
        .into();
    let mut request = agent.post(url);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let mut response = request.send(body).map_err(|e| match e {
        ureq::Error::Timeout(_) => Failed::Timeout,
        other => Failed::Other(format!("POST {url} failed: {other}")),
    })?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let limit = RESULT_LIMIT as u64 + 1;
    let bytes = response
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .unwrap_or_default();
    Ok(Answer {
        status,
        retry_after,
        cut: bytes.len() as u64 >= limit,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_over_time_and_body() {
        // Checked against: printf '1795600800.{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            signature(b"secret", 1_795_600_800, br#"{"a":1}"#),
            "t=1795600800,v1=ebc3dd896ccd75c4829fdf7137b916042d9d03d982cb93910778ca006e38ff26"
        );
    }

    #[test]
    fn private_and_metadata_addresses_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.1.2.3/",
            "http://192.168.1.1/",
            "http://172.16.0.1/",
            "http://[::1]:9000/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://localhost:3000/",
            "http://100.64.0.1/",
        ] {
            let refused = check_address(url, &[]).unwrap_err();
            assert_eq!(
                (refused.error_type.as_str(), refused.retry),
                ("Webhook.ForbiddenAddress", Retry::Never),
                "{url}"
            );
        }
        assert!(check_address("http://127.0.0.1:8080/hook", &["127.0.0.1".into()]).is_ok());
        assert!(check_address("http://[::1]:9000/", &["::1".into()]).is_ok());
        assert!(
            check_address("http://93.184.216.34/", &[]).is_ok(),
            "a public address"
        );
        assert!(check_address("not a url", &[]).is_err());
    }

    #[test]
    fn answers_map_to_outcomes() {
        let answer = |status, retry_after| Answer {
            status,
            retry_after,
            body: "{\"ok\": true}".into(),
            cut: false,
        };
        assert_eq!(
            answer(200, None).outcome().result,
            Ok(serde_json::json!({"ok": true}))
        );
        let busy = answer(503, Some(Duration::from_secs(7))).outcome();
        assert_eq!(
            busy.result.unwrap_err().retry,
            Retry::NotBefore(Duration::from_secs(7))
        );
        let limited = answer(429, None).outcome();
        assert_eq!(limited.result.unwrap_err().retry, Retry::AsPolicy);
        let refused = answer(404, None).outcome().result.unwrap_err();
        assert_eq!(
            (refused.error_type.as_str(), refused.retry),
            ("Webhook.Http404", Retry::Never)
        );
    }
}
