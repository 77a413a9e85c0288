//! The CLI's connection to a running eddy: every request signed with AWS Signature V4 (service
//! `s3` for the S3 API, `lambda` for the Lambda API, `eddy` for `/_eddy/`), each surface's
//! errors turned into one line that says what the server said.

use std::io::Read;
use std::time::SystemTime;

use anyhow::{Context, anyhow, bail};
use eddy_sigv4::Credentials;
use serde_json::Value;

pub type Response = http::Response<ureq::Body>;

pub use eddy_sigv4::{uri_encode as encode, uri_encode_path as encode_key};

/// A request body.
pub enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// Streamed without a payload hash (`UNSIGNED-PAYLOAD`, which S3 accepts); `md5` goes out as
    /// `Content-MD5`, so the server refuses the body if it arrives changed.
    Stream {
        reader: &'a mut dyn Read,
        len: u64,
        md5: [u8; 16],
    },
}

pub struct Client {
    endpoint: String,
    host: String,
    credentials: Credentials,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(endpoint: &str, credentials: Credentials) -> anyhow::Result<Self> {
        let endpoint = endpoint.trim_end_matches('/').to_string();
        let uri: http::Uri = endpoint
            .parse()
            .with_context(|| format!("--endpoint {endpoint:?} is not a URL"))?;
        if uri.scheme_str() != Some("http") && uri.scheme_str() != Some("https") {
            bail!("--endpoint must start with http:// or https://; got {endpoint:?}");
        }
        let host = uri
            .authority()
            .map(|a| a.to_string())
            .ok_or_else(|| anyhow!("--endpoint {endpoint:?} names no host"))?;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Self {
            endpoint,
            host,
            credentials,
            agent,
        })
    }

    /// Sends a signed request. `path` is already percent-encoded; `query` is `name=value` pairs
    /// already encoded, joined by `&`.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        query: &str,
        headers: &[(&str, String)],
        payload: Payload<'_>,
    ) -> anyhow::Result<Response> {
        let url = if query.is_empty() {
            format!("{}{path}", self.endpoint)
        } else {
            format!("{}{path}?{query}", self.endpoint)
        };
        let mut request = http::Request::builder()
            .method(method)
            .uri(&url)
            .header("host", &self.host);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let (hash, length) = match &payload {
            Payload::Empty => (eddy_sigv4::sha256_hex(b""), 0),
            Payload::Bytes(bytes) => (eddy_sigv4::sha256_hex(bytes), bytes.len() as u64),
            Payload::Stream { len, md5, .. } => {
                use base64::Engine;
                let md5 = base64::engine::general_purpose::STANDARD.encode(md5);
                request = request.header("content-md5", md5);
                ("UNSIGNED-PAYLOAD".to_string(), *len)
            }
        };
        if length > 0 || method != "GET" {
            request = request.header("content-length", length);
        }
        let mut request = request.body(()).context("building the request")?;
        let service = if path.starts_with("/_eddy/") {
            "eddy"
        } else if path.starts_with("/2015-03-31/") {
            "lambda"
        } else {
            "s3"
        };
        let signed = eddy_sigv4::Request {
            method,
            path,
            query,
            headers: request.headers(),
            payload_sha256: &hash,
        };
        let signature = eddy_sigv4::sign(
            &self.credentials,
            eddy_events::REGION,
            service,
            &signed,
            SystemTime::now(),
        );
        for (name, value) in signature {
            request
                .headers_mut()
                .insert(name, value.parse().context("a signature header")?);
        }
        let (parts, ()) = request.into_parts();
        let result = match payload {
            Payload::Empty => self.agent.run(http::Request::from_parts(parts, ())),
            Payload::Bytes(bytes) => self.agent.run(http::Request::from_parts(parts, bytes)),
            Payload::Stream { reader, .. } => self.agent.run(http::Request::from_parts(
                parts,
                ureq::SendBody::from_reader(reader),
            )),
        };
        result.with_context(|| format!("cannot reach eddy at {}", self.endpoint))
    }

    /// A call to the `/_eddy/` API: the JSON answer, or its error as `Code: message`.
    pub fn api(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let text = body.map(Value::to_string);
        let payload = text
            .as_deref()
            .map_or(Payload::Empty, |t| Payload::Bytes(t.as_bytes()));
        let headers = [("content-type", "application/json".to_string())];
        let response = self.send(method, path, query, &headers, payload)?;
        let (status, body) = read_text(response)?;
        let value: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&body).unwrap_or(Value::String(body))
        };
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let error = &value["error"];
        match (error["code"].as_str(), error["message"].as_str()) {
            (Some(code), Some(message)) => bail!("{code}: {message}"),
            _ => bail!("eddy answered {status}: {value}"),
        }
    }

    /// A call to the S3 API that must succeed; an S3 error becomes `Code: message`.
    pub fn s3(
        &self,
        method: &str,
        path: &str,
        query: &str,
        headers: &[(&str, String)],
        payload: Payload<'_>,
    ) -> anyhow::Result<Response> {
        let response = self.send(method, path, query, headers, payload)?;
        if response.status().is_success() {
            return Ok(response);
        }
        let (status, body) = read_text(response)?;
        let code = xml_text(&body, "Code").unwrap_or_else(|| status.to_string());
        match xml_text(&body, "Message") {
            Some(message) => bail!("{code}: {message}"),
            None => bail!("{code} (HTTP {status})"),
        }
    }
}

/// Reads a whole (small) answer.
pub fn read_text(mut response: Response) -> anyhow::Result<(u16, String)> {
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .context("reading eddy's answer")?;
    Ok((status, text))
}

/// The blocks `<tag>…</tag>` of an XML document, in order (S3's answers have no attributes on
/// the elements read here and never nest an element in one of the same name).
pub fn xml_blocks<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut blocks = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let inner = &rest[start + open.len()..];
        let Some(end) = inner.find(&close) else { break };
        blocks.push(&inner[..end]);
        rest = &inner[end + close.len()..];
    }
    blocks
}

/// The text of the first `<tag>` element, unescaped.
pub fn xml_text(xml: &str, tag: &str) -> Option<String> {
    xml_blocks(xml, tag).first().map(|t| unescape(t))
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let entity = &rest[amp..];
        let Some(semi) = entity.find(';') else {
            out.push_str(entity);
            return out;
        };
        let name = &entity[1..semi];
        let decoded = match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => name
                .strip_prefix("#x")
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => out.push(c),
            None => out.push_str(&entity[..=semi]),
        }
        rest = &entity[semi + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_s3_xml() {
        let xml = "<R><Contents><Key>a&amp;b &lt;c&gt; &#x1F600;&#65;</Key><Size>3</Size></Contents>\
                   <Contents><Key>d</Key></Contents><IsTruncated>false</IsTruncated></R>";
        let blocks = xml_blocks(xml, "Contents");
        assert_eq!(blocks.len(), 2);
        assert_eq!(xml_text(blocks[0], "Key").unwrap(), "a&b <c> 😀A");
        assert_eq!(xml_text(blocks[0], "Size").unwrap(), "3");
        assert_eq!(xml_text(xml, "IsTruncated").unwrap(), "false");
        assert_eq!(xml_text(xml, "Missing"), None);
        assert_eq!(unescape("&bogus; & x"), "&bogus; & x");
    }

    #[test]
    fn keys_keep_slashes_and_encode_the_rest() {
        assert_eq!(
            encode_key("photos/red flower+1.jpg"),
            "photos/red%20flower%2B1.jpg"
        );
        assert_eq!(encode("a/b c"), "a%2Fb%20c");
    }
}
