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
//! - A URL whose host is, or resolves to, an address of any special-purpose range (IANA's
//!   IPv4 and IPv6 special-purpose registries: loopback, private, shared, link-local — the cloud
//!   metadata address among them —, documentation, benchmarking, multicast, reserved, and the
//!   IPv6 forms that carry an IPv4 address: mapped, compatible, NAT64, 6to4, Teredo) is refused
//!   (`Webhook.ForbiddenAddress`, not retried) unless the function names that host in
//!   `private_hosts`: a webhook must not become a way into the network eddy runs in. The name is
//!   resolved once, and the connection goes to the addresses that were checked (a DNS answer
//!   that changes in between cannot redirect it).
//! - A URL may carry a token: errors and logs name only its scheme, host and port.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
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

/// Whether an address is one a webhook may not reach without an explicit allowance: one of
/// IANA's special-purpose ranges (IPv4 and IPv6), or an IPv6 address that embeds an IPv4
/// address of such a range.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn special_v4(ip: std::net::Ipv4Addr) -> bool {
    let a = u32::from(ip);
    // (network, prefix length) of the IPv4 special-purpose registry, and the multicast and
    // reserved blocks above it.
    const RANGES: [(u32, u32); 18] = [
        (0x0000_0000, 8),  // 0.0.0.0/8 "this network"
        (0x0A00_0000, 8),  // 10.0.0.0/8 private
        (0x6440_0000, 10), // 100.64.0.0/10 shared address space
        (0x7F00_0000, 8),  // 127.0.0.0/8 loopback
        (0xA9FE_0000, 16), // 169.254.0.0/16 link-local (cloud metadata)
        (0xAC10_0000, 12), // 172.16.0.0/12 private
        (0xC000_0000, 24), // 192.0.0.0/24 IETF protocol assignments
        (0xC000_0200, 24), // 192.0.2.0/24 documentation
        (0xC01F_C400, 24), // 192.31.196.0/24 AS112
        (0xC034_C100, 24), // 192.52.193.0/24 AMT
        (0xC058_6300, 24), // 192.88.99.0/24 6to4 relay anycast
        (0xC0A8_0000, 16), // 192.168.0.0/16 private
        (0xC0AF_3000, 24), // 192.175.48.0/24 direct delegation AS112
        (0xC612_0000, 15), // 198.18.0.0/15 benchmarking
        (0xC633_6400, 24), // 198.51.100.0/24 documentation
        (0xCB00_7100, 24), // 203.0.113.0/24 documentation
        (0xE000_0000, 4),  // 224.0.0.0/4 multicast
        (0xF000_0000, 4),  // 240.0.0.0/4 reserved, and 255.255.255.255
    ];
    RANGES
        .iter()
        .any(|(network, len)| a >> (32 - len) == network >> (32 - len))
}

fn special_v6(ip: std::net::Ipv6Addr) -> bool {
    let bits = u128::from(ip);
    let within = |network: u128, len: u32| bits >> (128 - len) == network >> (128 - len);
    let embedded = |v4: u32| special_v4(std::net::Ipv4Addr::from(v4));
    // Forms that carry an IPv4 address are judged by it; an address of a public host reached
    // through them is as reachable as the host itself.
    if within(0xffff << 32, 96) {
        return embedded(bits as u32); // ::ffff:a.b.c.d, IPv4-mapped
    }
    if within(0, 96) {
        return true; // ::, ::1 and the deprecated IPv4-compatible ::a.b.c.d
    }
    if within(0x0064_ff9b << 96, 96) {
        return embedded(bits as u32); // NAT64 64:ff9b::/96
    }
    if within(0x2002 << 112, 16) {
        return true; // 6to4 2002::/16: tunnels into IPv4 space
    }
    const RANGES: [(u128, u32); 10] = [
        (0x0064_ff9b_0001 << 80, 48), // 64:ff9b:1::/48 local-use NAT64
        (0x0100 << 112, 64),          // 100::/64 discard
        (0x2001 << 112, 23),          // 2001::/23 IETF protocol assignments (Teredo, ORCHID, …)
        (0x2001_0db8 << 96, 32),      // 2001:db8::/32 documentation
        (0x3fff << 112, 20),          // 3fff::/20 documentation
        (0x5f00 << 112, 16),          // 5f00::/16 segment routing
        (0xfc00 << 112, 7),           // fc00::/7 unique local
        (0xfe80 << 112, 10),          // fe80::/10 link-local
        (0xfec0 << 112, 10),          // fec0::/10 site-local (deprecated)
        (0xff00 << 112, 8),           // ff00::/8 multicast
    ];
    RANGES.iter().any(|(network, len)| within(*network, *len))
}

/// A URL as errors and logs show it: scheme, host and port — never a path or query, which may
/// hold a token.
pub fn redacted(url: &str) -> String {
    match url.parse::<http::Uri>() {
        Ok(uri) => match (uri.scheme_str(), uri.authority()) {
            (Some(scheme), Some(authority)) => {
                let host = authority.as_str().rsplit('@').next().unwrap_or_default();
                format!("{scheme}://{host}/…")
            }
            _ => "a URL that cannot be read".into(),
        },
        Err(_) => "a URL that cannot be read".into(),
    }
}

/// The addresses a webhook connects to: its host's, each checked. Refuses a URL that reaches
/// an address its function did not allow.
fn checked_addresses(url: &str, allowed: &[String]) -> Result<Vec<SocketAddr>, FunctionError> {
    let refuse = |message: String| {
        let mut error = FunctionError::new("Webhook.ForbiddenAddress", message);
        error.retry = Retry::Never;
        error
    };
    let shown = redacted(url);
    let uri: http::Uri = url
        .parse()
        .map_err(|_| refuse(format!("{shown} is not a URL")))?;
    let host = uri
        .host()
        .ok_or_else(|| refuse(format!("{shown} names no host")))?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => (host, port)
            .to_socket_addrs()
            .map_err(|e| refuse(format!("cannot resolve {host}: {e}")))?
            .collect(),
    };
    if allowed.iter().any(|h| h == host) {
        return Ok(addresses);
    }
    match addresses.iter().find(|a| is_private(a.ip())) {
        Some(a) => Err(refuse(format!(
            "{host} is {}, an address of a special-purpose range (loopback, private, link-local, metadata, …); name it in the function's private_hosts to allow it",
            a.ip()
        ))),
        None => Ok(addresses),
    }
}

/// Resolves every name to the addresses already checked.
#[derive(Debug)]
struct Checked(Vec<SocketAddr>);

impl ureq::unversioned::resolver::Resolver for Checked {
    fn resolve(
        &self,
        _uri: &http::Uri,
        _config: &ureq::config::Config,
        _timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let mut resolved = self.empty();
        for address in &self.0 {
            if resolved.try_push(*address).is_err() {
                break;
            }
        }
        if resolved.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(resolved)
    }
}

pub(crate) async fn post(
    function: &FunctionSpec,
    target: &Target<'_>,
    payload: &crate::Payload,
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
    let body = payload.to_bytes();
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
        let addresses = checked_addresses(&url, &allowed).map_err(Failed::Refused)?;
        send(&url, addresses, &headers, &body, timeout)
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
    addresses: Vec<SocketAddr>,
    headers: &[(&str, String)],
    body: &[u8],
    timeout: Duration,
) -> Result<Answer, Failed> {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(timeout))
        .build();
    let agent = ureq::Agent::with_parts(
        config,
        ureq::unversioned::transport::DefaultConnector::new(),
        Checked(addresses),
    );
    let mut request = agent.post(url);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let mut response = request.send(body).map_err(|e| match e {
        ureq::Error::Timeout(_) => Failed::Timeout,
        other => Failed::Other(format!("POST {} failed: {other}", redacted(url))),
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
        let check_address =
            |url: &str, allowed: &[String]| checked_addresses(url, allowed).map(|_| ());
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
            // What the review found let through: IPv4-compatible and NAT64 forms, "this
            // network", multicast, benchmarking.
            "http://[::7f00:1]/",
            "http://[::127.0.0.1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[64:ff9b::7f00:1]/",
            "http://0.1.2.3/",
            "http://224.0.0.1/",
            "http://239.255.255.250/",
            "http://198.18.0.1/",
            "http://198.19.255.255/",
            "http://255.255.255.255/",
            "http://[2002:7f00:1::]/",
            "http://[2001::1]/",
            "http://[ff02::1]/",
            "http://[fec0::1]/",
            "http://192.0.0.8/",
            "http://203.0.113.9/",
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
        // Public hosts reached through an IPv6 form that embeds them stay reachable.
        assert!(check_address("http://[64:ff9b::5db8:d822]/", &[]).is_ok());
        assert!(check_address("http://[2606:4700::1111]/", &[]).is_ok());
    }

    /// Every address of the special-purpose blocks is refused, at both ends of each.
    #[test]
    fn whole_ranges_are_refused() {
        for (first, last) in [
            ("0.0.0.0", "0.255.255.255"),
            ("100.64.0.0", "100.127.255.255"),
            ("169.254.0.0", "169.254.255.255"),
            ("172.16.0.0", "172.31.255.255"),
            ("198.18.0.0", "198.19.255.255"),
            ("224.0.0.0", "255.255.255.255"),
        ] {
            for ip in [first, last] {
                assert!(is_private(ip.parse().unwrap()), "{ip}");
            }
        }
        for public in [
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.0",
            "172.32.0.1",
            "198.20.0.1",
            "223.255.255.255",
        ] {
            assert!(!is_private(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn urls_are_shown_without_their_secrets() {
        assert_eq!(
            redacted("https://user:pw@hooks.example:8443/T0KEN/path?sig=secret"),
            "https://hooks.example:8443/…"
        );
        assert!(!redacted("http://h/x?token=abc").contains("abc"));
    }

    /// The connection goes to the address that was checked, whatever the name resolves to
    /// later: the resolver eddy gives the client answers with the checked addresses only.
    #[test]
    fn the_client_connects_to_the_checked_address() {
        use ureq::unversioned::resolver::Resolver;
        let checked = Checked(vec!["93.184.216.34:80".parse().unwrap()]);
        let config = ureq::config::Config::default();
        let timeout = ureq::unversioned::transport::NextTimeout {
            after: ureq::unversioned::transport::time::Duration::NotHappening,
            reason: ureq::Timeout::Global,
            per_read: None,
            per_write: None,
        };
        let uri: http::Uri = "http://rebinding.example/hook".parse().unwrap();
        let resolved = checked.resolve(&uri, &config, timeout).unwrap();
        assert_eq!(&resolved[..], &checked.0[..]);
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
