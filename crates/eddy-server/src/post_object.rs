//! S3's POST Object: a browser uploads a file with an HTML form whose fields carry a policy
//! signed by someone eddy trusts (boto3's `generate_presigned_post`, for one).
//!
//! The form is read as it arrives: the fields before the file (at most 20 KB, as S3 allows)
//! are read first, the signature and the policy are checked, and only then is the file read —
//! streamed into the object store, never held in memory. A form without a valid signature is
//! refused before a byte of its file is read. Only Signature Version 4 is accepted.

use std::collections::BTreeMap;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use eddy_core::Lineage;
use eddy_objects::PutOptions;
use futures_util::TryStreamExt;
use s3s::{S3Error, S3ErrorCode};
use serde_json::Value;

use crate::Shared;
use crate::auth::Principal;
use crate::error::s3_error;
use crate::form::{Form, FormError, PartHeaders};
use crate::s3::{bucket_name, object_key, user_metadata};

/// How much the fields before the file may hold, as in S3.
const FIELDS_LIMIT: usize = 20 * 1024;
/// How much of a form after its file is read so the connection can serve another request.
const TAIL_LIMIT: usize = 64 * 1024;

/// Whether `request` is a form upload: a POST of `multipart/form-data`.
pub fn is_form_upload(request: &Request) -> bool {
    request.method() == Method::POST
        && request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| {
                t.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("multipart/form-data")
            })
}

/// Answers a form upload.
pub async fn handle(s: Shared, request: Request) -> Response {
    match upload(&s, request).await {
        Ok(response) => response,
        Err(error) => {
            let mut response = match error.to_http_response() {
                Ok(r) => r.map(Body::new),
                Err(_) => StatusCode::BAD_REQUEST.into_response(),
            };
            // The rest of the form was not read: it must not be taken for another request.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

fn refuse(code: S3ErrorCode, message: impl Into<String>) -> S3Error {
    S3Error::with_message(code, message.into())
}

fn policy_refusal(why: impl std::fmt::Display) -> S3Error {
    refuse(
        S3ErrorCode::AccessDenied,
        format!("Invalid according to Policy: {why}"),
    )
}

impl From<FormError> for S3Error {
    fn from(e: FormError) -> Self {
        match e {
            FormError::TooLarge(_) => refuse(
                S3ErrorCode::MaxPostPreDataLengthExceededError,
                "Your POST request fields preceding the upload file were too large (at most 20 KB)",
            ),
            other => refuse(S3ErrorCode::MalformedPOSTRequest, other.to_string()),
        }
    }
}

/// The fields of a form, names as sent.
struct Fields(Vec<(String, String)>);

impl Fields {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn require(&self, name: &str) -> Result<&str, S3Error> {
        self.get(name).ok_or_else(|| {
            refuse(
                S3ErrorCode::InvalidArgument,
                format!("Bucket POST must contain a field named '{name}'"),
            )
        })
    }
}

async fn upload(s: &Shared, request: Request) -> Result<Response, S3Error> {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let path = request.uri().path();
    let bucket = match s.hosts.bucket_of(host) {
        Some(bucket) if path == "/" => bucket.to_string(),
        Some(_) => {
            return Err(refuse(
                S3ErrorCode::MethodNotAllowed,
                "POST goes to the bucket",
            ));
        }
        None => {
            let name = path.trim_start_matches('/').trim_end_matches('/');
            if name.is_empty() || name.contains('/') {
                return Err(refuse(
                    S3ErrorCode::MethodNotAllowed,
                    "a form upload is posted to the bucket (/BUCKET)",
                ));
            }
            percent_encoding::percent_decode_str(name)
                .decode_utf8_lossy()
                .into_owned()
        }
    };
    let bucket = bucket_name(&bucket)?;
    let boundary = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::form::boundary)
        .ok_or_else(|| {
            refuse(
                S3ErrorCode::MalformedPOSTRequest,
                "the multipart/form-data content type names no boundary",
            )
        })?;
    let body = request.into_body().into_data_stream();
    let mut form = Form::new(body, &boundary);
    let mut budget = FIELDS_LIMIT;
    let mut fields = Vec::new();
    let file = loop {
        let Some(part) = form.next_part(&mut budget).await? else {
            return Err(refuse(
                S3ErrorCode::InvalidArgument,
                "POST requires exactly one file upload per request",
            ));
        };
        if part.name.eq_ignore_ascii_case("file") {
            break part;
        }
        let value = String::from_utf8(form.read_value(&mut budget).await?)
            .map_err(|_| refuse(S3ErrorCode::MalformedPOSTRequest, "a field is not UTF-8"))?;
        fields.push((part.name, value));
    };
    let fields = Fields(fields);
    // Nothing of the file has been read yet: the signature and the policy decide first.
    let principal = signer(s, &fields).await?;
    let policy = Policy::read(fields.require("policy")?)?;
    let submitted_key = fields.require("key")?;
    policy.check(&fields, bucket.as_str())?;
    let key = object_key(
        &submitted_key.replace("${filename}", file.filename.as_deref().unwrap_or_default()),
    )?;
    let resource = crate::s3_access::resource(bucket.as_str(), Some(key.as_str()));
    if !principal.allows("objects:write", &resource) {
        s.guard.denied(&principal, "objects:write", &resource);
        return Err(refuse(
            S3ErrorCode::AccessDenied,
            format!(
                "{} may not objects:write on {resource}",
                principal.describe()
            ),
        ));
    }
    let metadata = fields
        .0
        .iter()
        .filter_map(|(n, v)| {
            let name = n.to_ascii_lowercase();
            Some((name.strip_prefix("x-amz-meta-")?.to_string(), v.clone()))
        })
        .collect::<BTreeMap<_, _>>();
    // The standard headers a form may set, as PutObject's (the policy has bound each field).
    let headers = eddy_objects::STORED_HEADERS
        .iter()
        .filter_map(|name| Some((name.to_string(), fields.get(name)?.trim().to_string())))
        .filter(|(name, value)| {
            let transfer_only = name == "content-encoding" && value.contains("aws-chunked");
            !value.is_empty() && !transfer_only
        })
        .collect();
    let (min, max) = policy
        .length_range
        .unwrap_or((0, eddy_objects::MAX_PUT_BYTES));
    let opts = PutOptions {
        content_type: fields
            .get("content-type")
            .map(str::to_string)
            .or(content_type_of(&file)),
        user_meta: user_metadata(Some(metadata.into_iter().collect()))?,
        headers,
        max_size: Some(max.min(eddy_objects::MAX_PUT_BYTES)),
        min_size: Some(min),
        lineage: Lineage::root(),
        ..PutOptions::default()
    };
    let meta = {
        let stream = form.body().map_err(std::io::Error::other);
        let mut reader = tokio_util::io::StreamReader::new(Box::pin(stream));
        s.objects
            .put_object(&bucket, &key, &mut reader, opts)
            .await
            .map_err(s3_error)?
    };
    // Fields after the file are ignored, as S3 ignores them; they are read (a little of them)
    // so the connection can carry the next request.
    let mut tail = TAIL_LIMIT;
    let finished = loop {
        match form.next_part(&mut tail).await {
            Ok(Some(_)) if form.read_value(&mut tail).await.is_ok() => continue,
            Ok(None) => break true,
            _ => break false,
        }
    };
    let mut response = answer(&fields, bucket.as_str(), key.as_str(), &meta.etag);
    let headers = response.headers_mut();
    headers.insert(header::ETAG, quoted(&meta.etag));
    if !finished {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(response)
}

fn quoted(etag: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{etag}\"")).expect("ETags are hex")
}

fn content_type_of(file: &PartHeaders) -> Option<String> {
    file.content_type.clone()
}

/// The answer the form asked for: a redirect, 200, 201 with a description, or 204.
fn answer(fields: &Fields, bucket: &str, key: &str, etag: &str) -> Response {
    let encoded = |v: &str| eddy_sigv4::uri_encode(v);
    if let Some(target) = fields
        .get("success_action_redirect")
        .or(fields.get("redirect"))
        .filter(|t| t.starts_with("http://") || t.starts_with("https://"))
    {
        let joint = if target.contains('?') { '&' } else { '?' };
        let location = format!(
            "{target}{joint}bucket={}&key={}&etag={}",
            encoded(bucket),
            encoded(key),
            encoded(&format!("\"{etag}\""))
        );
        if let Ok(value) = HeaderValue::from_str(&location) {
            return (StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response();
        }
    }
    let location = format!("/{bucket}/{}", eddy_sigv4::uri_encode_path(key));
    match fields.get("success_action_status") {
        Some("200") => StatusCode::OK.into_response(),
        Some("201") => {
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse><Location>{}</Location><Bucket>{}</Bucket><Key>{}</Key><ETag>&quot;{etag}&quot;</ETag></PostResponse>",
                xml_text(&location),
                xml_text(bucket),
                xml_text(key)
            );
            (
                StatusCode::CREATED,
                [(header::CONTENT_TYPE, "application/xml")],
                xml,
            )
                .into_response()
        }
        _ => {
            let mut response = StatusCode::NO_CONTENT.into_response();
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            response
        }
    }
}

fn xml_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The principal whose key signed the form's policy (Signature Version 4).
async fn signer(s: &Shared, fields: &Fields) -> Result<Principal, S3Error> {
    let Some(signature) = fields.get("x-amz-signature") else {
        if fields.get("signature").is_some() || fields.get("awsaccesskeyid").is_some() {
            return Err(refuse(
                S3ErrorCode::InvalidRequest,
                "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
            ));
        }
        return Err(refuse(
            S3ErrorCode::AccessDenied,
            "eddy accepts no anonymous uploads: sign the form's policy (x-amz-signature)",
        ));
    };
    if fields.require("x-amz-algorithm")? != "AWS4-HMAC-SHA256" {
        return Err(refuse(
            S3ErrorCode::InvalidArgument,
            "x-amz-algorithm must be AWS4-HMAC-SHA256",
        ));
    }
    let credential = fields.require("x-amz-credential")?;
    let parts: Vec<&str> = credential.split('/').collect();
    let [key, date, region, service, "aws4_request"] = parts[..] else {
        return Err(refuse(
            S3ErrorCode::InvalidArgument,
            "x-amz-credential must be KEY/YYYYMMDD/REGION/s3/aws4_request",
        ));
    };
    let amz_date = fields.require("x-amz-date")?;
    if !amz_date.starts_with(date) {
        return Err(refuse(
            S3ErrorCode::InvalidArgument,
            "x-amz-date is not of the credential's date",
        ));
    }
    let found = s.principals.find(key).await.map_err(|e| {
        tracing::error!(error = %e, "cannot look up an access key");
        refuse(
            S3ErrorCode::ServiceUnavailable,
            "eddy cannot read its credentials now; retry shortly",
        )
    })?;
    let Some((secret, principal)) = found else {
        s.guard
            .refusals
            .refused("POST form", &"an unknown access key");
        return Err(refuse(
            S3ErrorCode::InvalidAccessKeyId,
            "the access key is not known to this server",
        ));
    };
    let signing_key = eddy_sigv4::signing_key(&secret, date, region, service);
    if !eddy_sigv4::signature_matches(&signing_key, fields.require("policy")?, signature) {
        s.guard
            .refusals
            .refused("POST form", &"a policy signature that does not match");
        return Err(refuse(
            S3ErrorCode::SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided",
        ));
    }
    Ok(principal)
}

/// A POST policy: when it expires, and the conditions on the form.
struct Policy {
    conditions: Vec<Value>,
    length_range: Option<(u64, u64)>,
}

/// Fields every form may have without a condition naming them.
fn exempt(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(name.as_str(), "x-amz-signature" | "file" | "policy") || name.starts_with("x-ignore-")
}

impl Policy {
    fn read(encoded: &str) -> Result<Self, S3Error> {
        let invalid = |why: &str| {
            refuse(
                S3ErrorCode::InvalidPolicyDocument,
                format!("Invalid Policy: {why}"),
            )
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| invalid("it is not base64"))?;
        let document: Value =
            serde_json::from_slice(&bytes).map_err(|_| invalid("it is not JSON"))?;
        let expiration = document["expiration"]
            .as_str()
            .and_then(eddy_core::time::parse_iso8601)
            .ok_or_else(|| invalid("its expiration is missing or not YYYY-MM-DDTHH:MM:SSZ"))?;
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        if now >= expiration {
            return Err(policy_refusal("Policy expired."));
        }
        let conditions = document["conditions"]
            .as_array()
            .cloned()
            .ok_or_else(|| invalid("its conditions are missing"))?;
        let mut length_range = None;
        for c in &conditions {
            if c.get(0).and_then(Value::as_str) == Some("content-length-range") {
                let (Some(min), Some(max)) = (c[1].as_u64(), c[2].as_u64()) else {
                    return Err(invalid("content-length-range needs two whole numbers"));
                };
                length_range = Some((min, max));
            }
        }
        Ok(Self {
            conditions,
            length_range,
        })
    }

    /// Every condition holds, and every field is named by one.
    fn check(&self, fields: &Fields, bucket: &str) -> Result<(), S3Error> {
        let value_of = |name: &str| -> Option<&str> {
            if name.eq_ignore_ascii_case("bucket") {
                Some(bucket)
            } else {
                fields.get(name)
            }
        };
        let mut named: Vec<String> = Vec::new();
        for condition in &self.conditions {
            match condition {
                Value::Object(map) => {
                    for (name, expected) in map {
                        let expected = expected.as_str().unwrap_or_default();
                        if value_of(name) != Some(expected) {
                            return Err(policy_refusal(format!(
                                "Policy Condition failed: [\"eq\", \"${name}\", \"{expected}\"]"
                            )));
                        }
                        named.push(name.to_ascii_lowercase());
                    }
                }
                Value::Array(items) => {
                    let op = items.first().and_then(Value::as_str).unwrap_or_default();
                    if op == "content-length-range" {
                        continue;
                    }
                    let name = items
                        .get(1)
                        .and_then(Value::as_str)
                        .and_then(|n| n.strip_prefix('$'))
                        .unwrap_or_default();
                    let expected = items.get(2).and_then(Value::as_str).unwrap_or_default();
                    let actual = value_of(name).unwrap_or_default();
                    let holds = match op.to_ascii_lowercase().as_str() {
                        "eq" => value_of(name) == Some(expected),
                        "starts-with" => actual.starts_with(expected),
                        _ => {
                            return Err(policy_refusal(format!("unknown condition {op:?}")));
                        }
                    };
                    if !holds {
                        return Err(policy_refusal(format!(
                            "Policy Condition failed: [\"{op}\", \"${name}\", \"{expected}\"]"
                        )));
                    }
                    named.push(name.to_ascii_lowercase());
                }
                _ => {
                    return Err(policy_refusal(
                        "a condition is neither a list nor an object",
                    ));
                }
            }
        }
        if let Some((name, _)) = fields
            .0
            .iter()
            .find(|(n, _)| !exempt(n) && !named.contains(&n.to_ascii_lowercase()))
        {
            return Err(policy_refusal(format!("Extra input fields: {name}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        Fields(
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn policy(conditions: Value) -> Policy {
        let document =
            serde_json::json!({"expiration": "2999-01-01T00:00:00Z", "conditions": conditions});
        let encoded = base64::engine::general_purpose::STANDARD.encode(document.to_string());
        Policy::read(&encoded).unwrap()
    }

    #[test]
    fn conditions_bind_every_field() {
        let p = policy(serde_json::json!([
            {"bucket": "photos"},
            ["starts-with", "$key", "uploads/"],
            {"x-amz-algorithm": "AWS4-HMAC-SHA256"},
            ["content-length-range", 1, 1024]
        ]));
        assert_eq!(p.length_range, Some((1, 1024)));
        let ok = fields(&[
            ("key", "uploads/a.jpg"),
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
            ("x-amz-signature", "…"),
            ("policy", "…"),
        ]);
        assert!(p.check(&ok, "photos").is_ok());
        assert!(p.check(&ok, "other").is_err(), "the bucket condition");
        let outside = fields(&[
            ("key", "elsewhere/a.jpg"),
            ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
        ]);
        assert!(
            p.check(&outside, "photos")
                .unwrap_err()
                .message()
                .unwrap()
                .contains("starts-with")
        );
        let extra = fields(&[
            ("key", "uploads/a"),
            ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
            ("x-amz-meta-owner", "me"),
        ]);
        assert!(
            p.check(&extra, "photos")
                .unwrap_err()
                .message()
                .unwrap()
                .contains("Extra input fields: x-amz-meta-owner")
        );
    }

    #[test]
    fn expired_and_malformed_policies_are_refused() {
        let expired = serde_json::json!({"expiration": "2001-01-01T00:00:00Z", "conditions": []});
        let encoded = base64::engine::general_purpose::STANDARD.encode(expired.to_string());
        assert!(
            Policy::read(&encoded)
                .err()
                .unwrap()
                .message()
                .unwrap()
                .contains("expired")
        );
        assert!(Policy::read("not base64!").is_err());
        let no_date = base64::engine::general_purpose::STANDARD.encode(r#"{"conditions": []}"#);
        assert!(Policy::read(&no_date).is_err());
    }
}
