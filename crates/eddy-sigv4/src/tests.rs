use super::*;
use proptest::prelude::*;

const KEY: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// When botocore signed the vectors below.
const SIGNED_AT: &str = "20261125T122101Z";

fn at(date: &str) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(parse_amz_date(date).unwrap() as u64)
}

fn secret_of(key: &str) -> Option<String> {
    (key == KEY).then(|| SECRET.to_string())
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(n, v)| {
            (
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            )
        })
        .collect()
}

/// Requests signed by botocore's `SigV4Auth` (the signer of aws-cli and boto3).
#[test]
fn accepts_what_botocore_signs() {
    let vanilla = headers(&[
        ("host", "example.amazonaws.com"),
        ("x-amz-date", SIGNED_AT),
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=f8135ae4e5793d168c0a3892455ac7070a69d01e99bec235e40054d3065aaab5",
        ),
    ]);
    let request = Request {
        method: "GET",
        path: "/",
        query: "",
        headers: &vanilla,
        payload_sha256: &sha256_hex(b""),
    };
    assert_eq!(verify(&request, secret_of, at(SIGNED_AT)), Ok(KEY.into()));

    let invoke = headers(&[
        ("host", "127.0.0.1:7171"),
        ("x-amz-date", SIGNED_AT),
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=1d94acf0662c7ce5972be530827f3e0e48eac3e40b64f238e3283dc1795fae77",
        ),
    ]);
    let request = Request {
        method: "POST",
        path: "/2015-03-31/functions/my-fn/invocations",
        query: "Qualifier=%24LATEST&b=a%20b",
        headers: &invoke,
        payload_sha256: &sha256_hex(br#"{"x": 1}"#),
    };
    assert_eq!(verify(&request, secret_of, at(SIGNED_AT)), Ok(KEY.into()));
}

fn signed_request(method: &str, path: &str, query: &str, body: &[u8]) -> (HeaderMap, String) {
    let mut map = headers(&[
        ("host", "127.0.0.1:7171"),
        ("content-type", "application/json"),
    ]);
    let hash = sha256_hex(body);
    let credentials = Credentials {
        access_key_id: KEY.into(),
        secret_access_key: SECRET.into(),
    };
    let request = Request {
        method,
        path,
        query,
        headers: &map,
        payload_sha256: &hash,
    };
    for (name, value) in sign(&credentials, "us-east-1", "lambda", &request, at(SIGNED_AT)) {
        map.insert(name, value.parse().unwrap());
    }
    (map, hash)
}

#[test]
fn verifies_what_it_signs_and_names_each_failure() {
    let (map, hash) = signed_request("POST", "/_eddy/v1/tables/t/rows", "a=1&b=x%2Fy", b"{}");
    let request = Request {
        method: "POST",
        path: "/_eddy/v1/tables/t/rows",
        query: "b=x%2Fy&a=1",
        headers: &map,
        payload_sha256: &hash,
    };
    let now = at(SIGNED_AT);
    assert_eq!(
        verify(&request, secret_of, now),
        Ok(KEY.into()),
        "query order does not matter"
    );
    assert_eq!(
        verify(&request, |_| None, now),
        Err(SigError::UnknownAccessKey(KEY.into()))
    );
    assert_eq!(
        verify(&request, |_| Some("another secret".into()), now),
        Err(SigError::Mismatch)
    );
    let late = now + MAX_CLOCK_SKEW + Duration::from_secs(1);
    assert!(matches!(
        verify(&request, secret_of, late),
        Err(SigError::TooSkewed(_))
    ));
    let other_body = sha256_hex(b"{ }");
    let tampered = Request {
        payload_sha256: &other_body,
        ..request
    };
    assert_eq!(verify(&tampered, secret_of, now), Err(SigError::Mismatch));
    let unsigned = HeaderMap::new();
    let bare = Request {
        headers: &unsigned,
        ..request
    };
    assert_eq!(verify(&bare, secret_of, now), Err(SigError::Missing));
}

#[test]
fn malformed_authorization_headers_are_named() {
    for value in [
        "Bearer x",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/us-east-1/lambda, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/us-east-1/lambda/aws4_request, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261125/us-east-1/lambda/aws4_request, SignedHeaders=x-amz-date, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261124/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
        "AWS4-HMAC-SHA256 Nonsense",
    ] {
        let map = headers(&[
            ("host", "h"),
            ("x-amz-date", SIGNED_AT),
            ("authorization", value),
        ]);
        let request = Request {
            method: "GET",
            path: "/",
            query: "",
            headers: &map,
            payload_sha256: &sha256_hex(b""),
        };
        let got = verify(&request, secret_of, at(SIGNED_AT));
        assert!(
            matches!(got, Err(SigError::Malformed(_))),
            "{value}: {got:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// Any single changed byte of what was signed — method, path, query, a signed header, the
    /// body — makes the signature fail.
    #[test]
    fn any_changed_byte_is_rejected(part in 0usize..5, index in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let (method, path, query, body) = ("PUT", "/_eddy/v1/tables/orders/rows/7", "limit=10", b"{\"id\":7}".to_vec());
        let (mut map, _) = signed_request(method, path, query, &body);
        let mut fields = [method.as_bytes().to_vec(), path.as_bytes().to_vec(), query.as_bytes().to_vec(), b"127.0.0.1:7171".to_vec(), body];
        let field = &mut fields[part];
        let at_byte = index.index(field.len());
        field[at_byte] ^= flip;
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        if let Ok(host) = http::HeaderValue::from_bytes(&fields[3]) {
            map.insert("host", host);
        } else {
            return Ok(()); // not a header value a client could send
        }
        let hash = sha256_hex(&fields[4]);
        let (m, p, q) = (text(&fields[0]), text(&fields[1]), text(&fields[2]));
        let request = Request { method: &m, path: &p, query: &q, headers: &map, payload_sha256: &hash };
        prop_assert_ne!(verify(&request, secret_of, at(SIGNED_AT)), Ok(KEY.to_string()));
    }
}

/// What can be judged without the body is judged first: an unknown key, a stale date or a
/// malformed header fails before anyone reads a byte of the body; a known, fresh header passes
/// (its signature is checked later, with the body).
#[test]
fn prechecks_need_no_body() {
    let with = |key: &str, date: &str| {
        headers(&[
            ("host", "127.0.0.1:7171"),
            ("x-amz-date", date),
            (
                "authorization",
                &format!(
                    "AWS4-HMAC-SHA256 Credential={key}/{}/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
                    &date[..8]
                ),
            ),
        ])
    };
    let now = at(SIGNED_AT);
    assert_eq!(precheck(&with(KEY, SIGNED_AT), secret_of, now), Ok(()));
    assert_eq!(
        precheck(&with(KEY, "20010101T000000Z"), secret_of, now),
        Err(SigError::TooSkewed("20010101T000000Z".into()))
    );
    assert!(matches!(
        precheck(&with("AKIDUNKNOWN", SIGNED_AT), secret_of, now),
        Err(SigError::UnknownAccessKey(_))
    ));
    assert_eq!(
        precheck(&HeaderMap::new(), secret_of, now),
        Err(SigError::Missing)
    );
    // A 16 KB key id is not echoed back whole.
    let long = "K".repeat(16 * 1024);
    let error = precheck(&with(&long, SIGNED_AT), secret_of, now).unwrap_err();
    assert!(error.to_string().len() < 200, "{error}");
}

/// An S3 POST policy's signature: the HMAC of the base64 policy under the day's signing key
/// (the expected value computed independently with Python's `hmac`, as botocore's
/// `S3SigV4PostAuth` does).
#[test]
fn post_policies_are_signed_with_the_days_key() {
    let key = signing_key(SECRET, "20261125", "us-east-1", "s3");
    let policy = "eyJleHBpcmF0aW9uIjogIjIwMjYtMTEtMjVUMTM6MjE6MDFaIiwgImNvbmRpdGlvbnMiOiBbXX0=";
    let expected = "5b8ed2efd055968457eab1df1f53237cc78cce32a8c777bae03eac292c88af70";
    assert!(signature_matches(&key, policy, expected));
    assert!(!signature_matches(&key, policy, &expected[..63]));
    assert!(!signature_matches(&key, &format!("{policy} "), expected));
}
