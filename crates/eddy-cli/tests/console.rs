//! The web console through the real binary, as a browser without scripts uses it: signing in,
//! every page with what it must show, forms that change things, and what a stranger, another
//! site or a key with fewer rights cannot do. (`console_browser.rs` drives it in Chromium.)

mod common;

use common::*;

const APP: &str = r#"
buckets: [{name: inbox}, {name: vault}]
tables: [{name: orders, primary_key: id, columns: {id: integer, status: text}}]
functions:
  - name: work
    runtime: exec
    command: [sh, -c, 'read -r e; case "$e" in *bad*) echo "it broke on purpose" >&2; exit 3;; esac; echo "{\"ok\": true}"']
triggers:
  - {function: work, source: bucket/inbox, events: [object:created], retry: {max_attempts: 1}}
  - {function: work, source: table/orders, events: [row:insert]}
access_keys:
  - name: reader
    id: reader-key
    secret_env: READER_SECRET
    policy: [{allow: ["admin:read", "objects:list", "objects:read", "tables:read"], resources: [bucket/inbox, "bucket/inbox/*", table/orders, "*"]}, {deny: ["objects:*"], resources: [bucket/vault, "bucket/vault/*"]}]
  - name: uploader
    id: uploader-key
    secret_env: UPLOADER_SECRET
    policy: [{allow: ["objects:*"], resources: [bucket/inbox, "bucket/inbox/*"]}]
"#;

const READER: (&str, &str) = ("reader-key", "reader-secret-0123456789");
const UPLOADER: (&str, &str) = ("uploader-key", "uploader-secret-0123456789");
const ROOT: (&str, &str) = ("eddy-dev", "eddy-dev-secret");

fn start_console() -> Eddy {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.yaml"), APP).unwrap();
    spawn_with(
        dir,
        "app.yaml",
        &[("READER_SECRET", READER.1), ("UPLOADER_SECRET", UPLOADER.1)],
    )
}

/// An answer as a browser sees it.
struct Page {
    status: u16,
    headers: Vec<(String, String)>,
    text: String,
}

impl Page {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The value of the first `<input … name="NAME" value="…">` on the page.
    fn input(&self, name: &str) -> String {
        let at = self
            .text
            .find(&format!("name=\"{name}\" value=\""))
            .unwrap_or_else(|| panic!("no input {name} in {}", self.text));
        let rest = &self.text[at + name.len() + 15..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

/// A browser without scripts: it keeps the session cookie and follows no redirects.
struct Browser {
    agent: ureq::Agent,
    base: String,
    cookie: Option<String>,
}

impl Browser {
    fn new(eddy: &Eddy) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        Self {
            agent,
            base: eddy.base.clone(),
            cookie: None,
        }
    }

    fn signed_in(eddy: &Eddy, (id, secret): (&str, &str)) -> Self {
        let mut browser = Self::new(eddy);
        let answer = browser.sign_in(id, secret, "/_eddy/console/");
        assert_eq!(answer.status, 303, "{}", answer.text);
        browser
    }

    fn sign_in(&mut self, id: &str, secret: &str, next: &str) -> Page {
        let form = [
            ("access_key_id", id),
            ("secret_access_key", secret),
            ("next", next),
        ];
        let answer = self.post("/_eddy/console/sign-in", &form, &[]);
        if let Some(cookie) = answer.header("set-cookie") {
            self.cookie = Some(cookie.split(';').next().unwrap().to_string());
        }
        answer
    }

    fn send(&self, request: http::Request<Vec<u8>>) -> Page {
        let mut response = self.agent.run(request).unwrap();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        Page {
            status,
            headers,
            text,
        }
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> http::request::Builder {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request
    }

    fn get(&self, path: &str) -> Page {
        self.send(self.request("GET", path, &[]).body(Vec::new()).unwrap())
    }

    fn post(&self, path: &str, form: &[(&str, &str)], headers: &[(&str, &str)]) -> Page {
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let request = self
            .request("POST", path, headers)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.into_bytes())
            .unwrap();
        self.send(request)
    }

    /// Uploads `body` as `key` of bucket `inbox` through the console, as its script does.
    fn upload(&self, key: &str, body: &str, headers: &[(&str, &str)]) -> Page {
        let path = format!("/_eddy/console/buckets/inbox/upload?key={}", encode(key));
        let request = self.request("POST", &path, headers);
        self.send(request.body(body.as_bytes().to_vec()).unwrap())
    }

    /// The page's CSRF token (every page with a form carries it).
    fn csrf(&self) -> String {
        self.get("/_eddy/console/buckets").input("csrf")
    }
}

/// Percent-encodes every byte but letters and digits.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every page of the console, for a key that may see them all.
const PAGES: [&str; 7] = [
    "/_eddy/console/",
    "/_eddy/console/events",
    "/_eddy/console/functions",
    "/_eddy/console/dead-letters",
    "/_eddy/console/buckets",
    "/_eddy/console/tables",
    "/_eddy/console/usage",
];

#[test]
fn the_console_needs_a_session_and_another_site_cannot_use_one() {
    let eddy = start_console();
    let stranger = Browser::new(&eddy);
    for page in PAGES {
        let answer = stranger.get(page);
        assert_eq!(answer.status, 303, "{page}");
        let location = answer.header("location").unwrap();
        assert!(
            location.starts_with("/_eddy/console/sign-in?next=%2F%5Feddy%2Fconsole"),
            "{location}"
        );
    }
    // A browser opening eddy's address finds the way in.
    let front = stranger.send(
        stranger
            .request("GET", "/", &[("accept", "text/html,application/xhtml+xml")])
            .body(Vec::new())
            .unwrap(),
    );
    assert_eq!(front.status, 200);
    assert!(
        front.text.contains("href=\"/_eddy/console/\""),
        "{}",
        front.text
    );

    // A wrong secret, an unknown key: refused alike, with no cookie.
    let mut browser = Browser::new(&eddy);
    for (id, secret) in [
        ("eddy-dev", "wrong"),
        ("nobody", "eddy-dev-secret"),
        ("eddy-dev", ""),
    ] {
        let answer = browser.sign_in(id, secret, "/_eddy/console/");
        assert_eq!(answer.status, 401, "{id}");
        assert!(
            answer.text.contains("do not match a key eddy knows"),
            "{}",
            answer.text
        );
        assert!(answer.header("set-cookie").is_none());
    }
    // Signing in sets a cookie no script reads and no other site sends; and goes only to
    // console pages afterwards.
    for elsewhere in [
        "/_eddy/console/\r\nSet-Cookie: x=1",
        "https://evil.example/",
    ] {
        let answer = browser.sign_in(ROOT.0, ROOT.1, elsewhere);
        assert_eq!(answer.status, 303, "{elsewhere:?}");
        assert_eq!(answer.header("location"), Some("/_eddy/console/"));
    }
    let answer = browser.sign_in(ROOT.0, ROOT.1, "https://evil.example/");
    let cookie = answer.header("set-cookie").unwrap();
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/_eddy/console",
        "Max-Age=",
    ] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let overview = browser.get("/_eddy/console/");
    assert_eq!(overview.status, 200, "{}", overview.text);
    let csp = overview.header("content-security-policy").unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert_eq!(overview.header("x-frame-options"), Some("DENY"));
    assert_eq!(overview.header("cache-control"), Some("no-store"));

    // A cookie changed in any part is no session.
    let good = browser.cookie.clone().unwrap();
    for forged in [
        good.replace("eddy-dev.", "reader-key."),
        {
            // The seal's last digit, changed.
            let last = if good.ends_with('0') { '1' } else { '0' };
            format!("{}{last}", &good[..good.len() - 1])
        },
        good.replacen('.', ".9", 1),
    ] {
        let forger = Browser {
            cookie: Some(forged.clone()),
            ..Browser::new(&eddy)
        };
        assert_eq!(forger.get("/_eddy/console/").status, 303, "{forged}");
    }

    // A form without this session's token changes nothing; nor one posted from another
    // site's page, token or not.
    let csrf = browser.csrf();
    assert_eq!(browser.upload("x.txt", "x", &[]).status, 403);
    assert_eq!(
        browser
            .upload("x.txt", "x", &[("x-eddy-csrf", "0123")])
            .status,
        403
    );
    let evil = browser.upload(
        "x.txt",
        "x",
        &[("x-eddy-csrf", &csrf), ("origin", "http://evil.example")],
    );
    assert_eq!(evil.status, 403, "{}", evil.text);
    let form = [("csrf", csrf.as_str()), ("key", "x.txt")];
    let cross_site = browser.post(
        "/_eddy/console/buckets/inbox/delete",
        &form,
        &[("origin", "null")],
    );
    assert_eq!(cross_site.status, 403);
    let listed = eddy.call("GET", "/inbox?list-type=2", &[], None);
    assert!(
        !listed.body.to_string().contains("x.txt"),
        "nothing was uploaded"
    );

    // Signing out ends the session in this browser.
    let out = browser.post("/_eddy/console/sign-out", &[("csrf", &csrf)], &[]);
    assert_eq!(out.status, 303);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
}

#[test]
fn every_page_shows_what_the_apis_hold_and_its_forms_change_it() {
    let eddy = start_console();
    assert_eq!(
        eddy.call("PUT", "/inbox/a.txt", &[], Some("hello")).status,
        200
    );
    assert_eq!(
        eddy.call("PUT", "/inbox/bad.txt", &[], Some("boom")).status,
        200
    );
    let row = serde_json::json!({"id": 7, "status": "new"});
    assert_eq!(
        eddy.json("POST", "/_eddy/v1/tables/orders/rows", row)
            .status,
        201
    );
    eddy.wait_for("a dead letter and two successes", |e| {
        let dead = e.get("/_eddy/v1/dead-letters").body["dead_letters"].clone();
        let runs = e.get("/_eddy/v1/invocations?function=work").body["invocations"].clone();
        dead.as_array().unwrap().len() == 1 && runs.as_array().unwrap().len() == 3
    });
    let browser = Browser::signed_in(&eddy, ROOT);
    let expect = |path: &str, wanted: &[&str]| {
        let page = browser.get(path);
        assert_eq!(page.status, 200, "{path}: {}", page.text);
        assert_eq!(
            page.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{path}"
        );
        for text in wanted {
            assert!(
                page.text.contains(text),
                "{path} lacks {text:?}:\n{}",
                page.text
            );
        }
        page
    };
    expect(
        "/_eddy/console/",
        &[
            "<a href=\"/_eddy/console/functions/work\">work</a>",
            "Oldest undelivered event",
            "<svg",
        ],
    );
    expect(
        "/_eddy/console/events",
        &["a.txt", "bad.txt", "[7]", "1 dead", "1 done", "data-tail="],
    );
    let filtered = expect("/_eddy/console/events?outcome=dead", &["bad.txt"]);
    assert!(
        !filtered.text.contains(">a.txt<"),
        "only the dead letter's event"
    );
    expect("/_eddy/console/events?source=table%2Forders", &["[7]"]);
    let trace = expect(
        "/_eddy/console/events/2",
        &[
            "ObjectCreated:Put bad.txt",
            "matched",
            "Dead letter: RetriesExhausted",
            "it broke on purpose",
            "START RequestId",
            "Redrive",
        ],
    );
    assert!(
        trace.text.contains("event type one of"),
        "the clauses, with what they saw"
    );
    expect("/_eddy/console/functions", &["work", "exec"]);
    expect(
        "/_eddy/console/functions/work",
        &[
            "Latest invocations",
            "it broke on purpose",
            "&#34;FunctionName&#34;: &#34;work&#34;",
            "name=\"payload\"",
            "class=\"response\"",
            "id=\"locked\"",
            "&#34;memory_mb&#34;: 128",
        ],
    );
    expect(
        "/_eddy/console/functions/work?sample=dynamodb-insert",
        &["&#34;eventName&#34;: &#34;INSERT&#34;"],
    );
    expect(
        "/_eddy/console/dead-letters",
        &[
            "RetriesExhausted",
            "it broke on purpose",
            "Redrive selected",
        ],
    );
    expect("/_eddy/console/buckets", &["inbox", "vault"]);
    expect(
        "/_eddy/console/buckets/inbox",
        &["a.txt", "bad.txt", "Download", "data-upload="],
    );
    expect(
        "/_eddy/console/buckets/inbox/object?key=a.txt",
        &["5 bytes", "ObjectCreated:Put", "/_eddy/console/events/1"],
    );
    expect("/_eddy/console/tables/orders", &["status", "new"]);
    expect(
        "/_eddy/console/tables/orders/row?key=%5B7%5D",
        &["&#34;status&#34;: &#34;new&#34;", "INSERT"],
    );
    expect(
        "/_eddy/console/usage",
        &["work", "Estimated cost", "Per day"],
    );

    let download = browser.get("/_eddy/console/buckets/inbox/download?key=a.txt");
    assert_eq!((download.status, download.text.as_str()), (200, "hello"));
    assert_eq!(
        download.header("content-type"),
        Some("application/octet-stream")
    );
    assert!(
        download
            .header("content-disposition")
            .unwrap()
            .starts_with("attachment; filename=\"a.txt\"")
    );

    // Forms: invoke, save a row, upload, delete, redrive.
    let csrf = browser.csrf();
    let invoked = browser.post(
        "/_eddy/console/functions/work/invoke",
        &[
            ("csrf", &csrf),
            ("payload", "{\"hello\": 1}"),
            ("mode", "RequestResponse"),
        ],
        &[],
    );
    assert_eq!(invoked.status, 200);
    assert!(
        invoked.text.contains("&#34;ok&#34;: true"),
        "{}",
        invoked.text
    );
    let saved = browser.post(
        "/_eddy/console/tables/orders/row",
        &[
            ("csrf", &csrf),
            ("row", "{\"id\": 7, \"status\": \"shipped\"}"),
        ],
        &[],
    );
    assert_eq!(saved.status, 303, "{}", saved.text);
    assert_eq!(
        eddy.get("/_eddy/v1/tables/orders/rows/7").body["status"],
        "shipped"
    );
    let bad_row = browser.post(
        "/_eddy/console/tables/orders/row",
        &[("csrf", &csrf), ("row", "{\"id\": \"seven\"}")],
        &[],
    );
    assert_eq!(bad_row.status, 400, "{}", bad_row.text);
    assert!(
        bad_row.text.contains("id"),
        "the page says what was wrong: {}",
        bad_row.text
    );
    let uploaded = browser.upload(
        "up/new.txt",
        "from the console",
        &[("x-eddy-csrf", &csrf), ("content-type", "text/plain")],
    );
    assert_eq!(uploaded.status, 201, "{}", uploaded.text);
    let fetched = eddy.call("GET", "/inbox/up/new.txt", &[], None);
    assert_eq!(
        fetched.body,
        serde_json::Value::String("from the console".into())
    );
    let deleted = browser.post(
        "/_eddy/console/buckets/inbox/delete",
        &[("csrf", &csrf), ("key", "up/new.txt")],
        &[],
    );
    assert_eq!(deleted.status, 303);
    assert_eq!(
        deleted.header("location"),
        Some("/_eddy/console/buckets/inbox?prefix=up%2F")
    );
    assert_eq!(eddy.call("GET", "/inbox/up/new.txt", &[], None).status, 404);
    let dead = eddy.get("/_eddy/v1/dead-letters").body["dead_letters"][0]["id"].to_string();
    let redriven = browser.post(
        "/_eddy/console/dead-letters/redrive",
        &[("csrf", &csrf), ("id", &dead)],
        &[],
    );
    assert_eq!(redriven.status, 303);
    assert_eq!(
        redriven.header("location"),
        Some("/_eddy/console/dead-letters?redriven=1")
    );
    // Nothing of a page is taken as markup: a key is shown as text.
    let hostile = "<img src=x onerror=alert(1)>.txt";
    let put = browser.upload(hostile, "x", &[("x-eddy-csrf", &csrf)]);
    assert_eq!(put.status, 201, "{}", put.text);
    let listing = expect(
        "/_eddy/console/buckets/inbox",
        &["&#60;img src=x onerror=alert(1)&#62;.txt"],
    );
    assert!(!listing.text.contains("<img src=x"), "{}", listing.text);
    // An HTML object opened in a browser is served from the console's origin: it must not run
    // as a page of it.
    let html = "<script>fetch('/_eddy/console/dead-letters/redrive', {method: 'POST'})</script>";
    let page = browser.upload(
        "page.html",
        html,
        &[("x-eddy-csrf", &csrf), ("content-type", "text/html")],
    );
    assert_eq!(page.status, 201);
    let served = eddy.call("GET", "/inbox/page.html", &[], None);
    assert_eq!(served.header("content-type"), Some("text/html"));
    let csp = served.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("sandbox") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert_eq!(served.header("x-content-type-options"), Some("nosniff"));
}

#[test]
fn a_key_sees_and_does_only_what_its_policy_allows() {
    let eddy = start_console();
    assert_eq!(
        eddy.call("PUT", "/inbox/bad.txt", &[], Some("boom")).status,
        200
    );
    assert_eq!(
        eddy.call("PUT", "/vault/secret.txt", &[], Some("s")).status,
        200
    );
    eddy.wait_for("the dead letter", |e| {
        e.get("/_eddy/v1/dead-letters").body["dead_letters"]
            .as_array()
            .unwrap()
            .len()
            == 1
    });

    // A reader sees, but cannot redrive or invoke: the buttons are absent and the requests refused.
    let reader = Browser::signed_in(&eddy, READER);
    let dead = reader.get("/_eddy/console/dead-letters");
    assert_eq!(dead.status, 200);
    assert!(
        dead.text.contains("RetriesExhausted") && !dead.text.contains("Redrive selected"),
        "{}",
        dead.text
    );
    assert!(dead.text.contains("lacks <code>admin:write</code>"));
    assert!(
        !reader
            .get("/_eddy/console/events/1")
            .text
            .contains("class=\"redrive\"")
    );
    let csrf = reader.get("/_eddy/console/").input("csrf");
    let id = eddy.get("/_eddy/v1/dead-letters").body["dead_letters"][0]["id"].to_string();
    let refused = reader.post(
        "/_eddy/console/dead-letters/redrive",
        &[("csrf", &csrf), ("id", &id)],
        &[],
    );
    assert_eq!(refused.status, 403);
    assert!(
        refused.text.contains("may not admin:write"),
        "{}",
        refused.text
    );
    assert_eq!(
        eddy.get("/_eddy/v1/dead-letters").body["dead_letters"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let function = reader.get("/_eddy/console/functions/work");
    assert!(
        !function.text.contains("name=\"payload\""),
        "no invoke form"
    );
    let invoke = reader.post(
        "/_eddy/console/functions/work/invoke",
        &[("csrf", &csrf), ("payload", "{}"), ("mode", "Event")],
        &[],
    );
    assert_eq!(invoke.status, 403);
    // Buckets its policy denies are not listed, nor opened.
    let buckets = reader.get("/_eddy/console/buckets");
    assert!(
        buckets.text.contains(">inbox<") && !buckets.text.contains(">vault<"),
        "{}",
        buckets.text
    );
    assert_eq!(reader.get("/_eddy/console/buckets/vault").status, 403);
    assert_eq!(
        reader
            .get("/_eddy/console/buckets/vault/download?key=secret.txt")
            .status,
        403
    );
    let upload = reader.upload("r.txt", "r", &[("x-eddy-csrf", &csrf)]);
    assert_eq!(upload.status, 403);

    // A key without admin:read has no admin pages: not in its navigation, and refused.
    let uploader = Browser::signed_in(&eddy, UPLOADER);
    let buckets = uploader.get("/_eddy/console/buckets");
    assert_eq!(buckets.status, 200);
    assert!(
        !buckets.text.contains(">Events<") && buckets.text.contains(">Buckets<"),
        "{}",
        buckets.text
    );
    for page in [
        "/_eddy/console/",
        "/_eddy/console/events",
        "/_eddy/console/events/1",
        "/_eddy/console/dead-letters",
        "/_eddy/console/usage",
    ] {
        assert_eq!(uploader.get(page).status, 403, "{page}");
    }
    assert_eq!(uploader.get("/_eddy/console/tables/orders").status, 403);
    let tables = uploader.get("/_eddy/console/tables");
    assert!(!tables.text.contains("orders"), "{}", tables.text);
}

/// The admin endpoints added for the console's pages answer only signed requests from keys
/// with `admin:read`, and say what was wrong with a query.
#[test]
fn the_console_s_admin_endpoints_refuse_strangers_limited_keys_and_bad_queries() {
    let eddy = start_console();
    let endpoints = [
        "/_eddy/v1/activity",
        "/_eddy/v1/activity?minutes=5",
        "/_eddy/v1/usage/daily",
        "/_eddy/v1/invocations?function=work&latest=5",
    ];
    for path in endpoints {
        assert_eq!(eddy.get(path).status, 200, "{path}");
        let unsigned = eddy.call("GET", path, &[("authorization", "")], None);
        assert_eq!(unsigned.status, 401, "{path}");
        let limited = eddy.call_as(UPLOADER, "GET", path, &[], None);
        assert_eq!(limited.status, 403, "{path}: {}", limited.body);
        assert_eq!(
            eddy.call_as(READER, "GET", path, &[], None).status,
            200,
            "{path}"
        );
    }
    for (path, says) in [
        (
            "/_eddy/v1/activity?minutes=many",
            "minutes must be a whole number",
        ),
        (
            "/_eddy/v1/invocations?latest=5",
            "latest=N needs function=NAME",
        ),
        (
            "/_eddy/v1/invocations?function=work&latest=-1",
            "latest must be a whole number",
        ),
        (
            "/_eddy/v1/invocations?function=no%20such&latest=1",
            "function",
        ),
    ] {
        let refused = eddy.get(path);
        assert_eq!(refused.status, 400, "{path}");
        assert!(
            refused.body.to_string().contains(says),
            "{path}: {}",
            refused.body
        );
    }
    // The activity's minutes are bounded: a day at most, however many are asked for.
    let day = eddy.get("/_eddy/v1/activity?minutes=100000").body;
    assert_eq!(day["minutes"].as_array().unwrap().len(), 24 * 60 + 1);
}
