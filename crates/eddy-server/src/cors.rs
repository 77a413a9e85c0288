//! Cross-origin requests to the S3 API, judged by the bucket's CORS rules as S3 judges them:
//! the first rule whose origins, methods and headers all match answers; without one, the
//! request is refused (S3 would run it and let the browser hide the answer — eddy does not run
//! it at all, so a page on another origin cannot change anything).

use axum::http::{HeaderMap, HeaderValue, Method};
use eddy_objects::CorsRule;

/// What a browser asks: its origin, the method and the request headers it will send.
pub struct Asked<'a> {
    pub origin: &'a str,
    pub method: &'a str,
    pub headers: Vec<String>,
}

/// The rule that allows what was asked, if any.
pub fn allowing<'r>(rules: &'r [CorsRule], asked: &Asked<'_>) -> Option<&'r CorsRule> {
    rules.iter().find(|rule| {
        rule.allowed_origins
            .iter()
            .any(|o| wildcard(o, asked.origin))
            && rule.allowed_methods.iter().any(|m| m == asked.method)
            && asked.headers.iter().all(|h| {
                rule.allowed_headers
                    .iter()
                    .any(|allowed| wildcard(allowed, h))
            })
    })
}

/// A CORS pattern: at most one `*`, matching any run of characters; case does not count.
fn wildcard(pattern: &str, value: &str) -> bool {
    let (pattern, value) = (pattern.to_ascii_lowercase(), value.to_ascii_lowercase());
    match pattern.split_once('*') {
        None => pattern == value,
        Some((head, tail)) => {
            value.len() >= head.len() + tail.len()
                && value.starts_with(head)
                && value.ends_with(tail)
        }
    }
}

/// Checks a configuration as S3 does before storing it.
pub fn check(rules: &[CorsRule]) -> Result<(), String> {
    const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];
    for rule in rules {
        if rule.allowed_origins.is_empty() || rule.allowed_methods.is_empty() {
            return Err("each CORS rule needs an AllowedOrigin and an AllowedMethod".into());
        }
        if let Some(m) = rule
            .allowed_methods
            .iter()
            .find(|m| !METHODS.contains(&m.as_str()))
        {
            return Err(format!(
                "found unsupported HTTP method in CORS config. Unsupported method is {m}; use GET, PUT, POST, DELETE or HEAD"
            ));
        }
        let too_wild = |list: &[String]| list.iter().find(|v| v.matches('*').count() > 1).cloned();
        if let Some(o) = too_wild(&rule.allowed_origins).or_else(|| too_wild(&rule.allowed_headers))
        {
            return Err(format!(
                "{o:?} has more than one wildcard; a CORS pattern may have one *"
            ));
        }
    }
    Ok(())
}

/// The headers that answer a preflight the rule allows.
pub fn preflight_headers(rule: &CorsRule, asked: &Asked<'_>) -> HeaderMap {
    let mut headers = allow_headers(rule, asked.origin);
    let set = |headers: &mut HeaderMap, name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set(
        &mut headers,
        "access-control-allow-methods",
        rule.allowed_methods.join(", "),
    );
    if !asked.headers.is_empty() {
        set(
            &mut headers,
            "access-control-allow-headers",
            asked.headers.join(", "),
        );
    }
    if let Some(age) = rule.max_age_seconds {
        set(&mut headers, "access-control-max-age", age.to_string());
    }
    headers
}

/// The headers every answer to an allowed cross-origin request carries.
pub fn allow_headers(rule: &CorsRule, origin: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let any = rule.allowed_origins.iter().any(|o| o == "*");
    let allowed = if any { "*" } else { origin };
    if let Ok(v) = HeaderValue::from_str(allowed) {
        headers.insert("access-control-allow-origin", v);
    }
    if !any {
        headers.insert(
            "access-control-allow-credentials",
            HeaderValue::from_static("true"),
        );
    }
    if !rule.expose_headers.is_empty()
        && let Ok(v) = HeaderValue::from_str(&rule.expose_headers.join(", "))
    {
        headers.insert("access-control-expose-headers", v);
    }
    headers.insert(
        "vary",
        HeaderValue::from_static(
            "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
        ),
    );
    headers
}

/// The method and headers a preflight (`OPTIONS`) announces.
pub fn announced(headers: &HeaderMap) -> Option<(String, Vec<String>)> {
    let method = headers
        .get("access-control-request-method")?
        .to_str()
        .ok()?
        .trim()
        .to_string();
    method.parse::<Method>().ok()?;
    let requested = headers
        .get("access-control-request-headers")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    Some((method, requested))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(origins: &[&str], methods: &[&str], headers: &[&str]) -> CorsRule {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        CorsRule {
            allowed_origins: list(origins),
            allowed_methods: list(methods),
            allowed_headers: list(headers),
            ..CorsRule::default()
        }
    }

    fn asked<'a>(origin: &'a str, method: &'a str, headers: &[&str]) -> Asked<'a> {
        Asked {
            origin,
            method,
            headers: headers.iter().map(|h| h.to_string()).collect(),
        }
    }

    #[test]
    fn the_first_rule_that_allows_everything_asked_answers() {
        let rules = vec![
            rule(&["https://app.example"], &["PUT"], &["content-type"]),
            rule(&["https://*.example.org"], &["GET", "POST"], &["*"]),
        ];
        assert!(
            allowing(
                &rules,
                &asked("https://app.example", "PUT", &["content-type"])
            )
            .is_some()
        );
        assert!(
            allowing(
                &rules,
                &asked("https://app.example", "PUT", &["x-amz-meta-a"])
            )
            .is_none()
        );
        assert!(allowing(&rules, &asked("https://app.example", "DELETE", &[])).is_none());
        assert!(allowing(&rules, &asked("https://evil.example", "PUT", &[])).is_none());
        assert!(
            allowing(
                &rules,
                &asked("https://a.example.org", "POST", &["x-anything"])
            )
            .is_some()
        );
        assert!(allowing(&rules, &asked("https://example.org", "POST", &[])).is_none());
        assert!(allowing(&rules, &asked("null", "GET", &[])).is_none());
    }

    #[test]
    fn configurations_are_checked_as_s3_checks_them() {
        assert!(check(&[rule(&["*"], &["GET"], &[])]).is_ok());
        assert!(
            check(&[rule(&["*"], &["PATCH"], &[])])
                .unwrap_err()
                .contains("PATCH")
        );
        assert!(check(&[rule(&["https://*.*.x"], &["GET"], &[])]).is_err());
        assert!(check(&[rule(&[], &["GET"], &[])]).is_err());
    }
}
