//! The harness of the end-to-end tests: `eddy serve` on a free port, and clients that sign
//! their requests with the development credentials, as a user's would.
#![allow(dead_code)] // each test binary uses its own part of the harness

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use eddy_node::{DEV_ACCESS_KEY_ID, DEV_SECRET_ACCESS_KEY};
use serde_json::Value;

pub struct Eddy {
    pub child: Child,
    pub base: String,
    pub dir: tempfile::TempDir,
    http: ureq::Agent,
}

impl Drop for Eddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `eddy serve` on a manifest (`$DIR` stands for the test's folder) and waits until it
/// says where it listens.
pub fn serve(manifest: &str) -> Eddy {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app.yaml"),
        manifest.replace("$DIR", dir.path().to_str().unwrap()),
    )
    .unwrap();
    spawn(dir, "app.yaml")
}

/// Runs `eddy serve MANIFEST` in `dir` with its data in `dir/data`.
pub fn spawn(dir: tempfile::TempDir, manifest: &str) -> Eddy {
    start(dir, manifest, Options::default())
}

/// `eddy serve MANIFEST` (a path outside its data folder, which is a fresh one) logging only
/// warnings: what the benchmarks run, so that logging costs nothing they measure.
pub fn serve_quietly(manifest: &std::path::Path) -> Eddy {
    start(
        tempfile::tempdir().unwrap(),
        manifest.to_str().unwrap(),
        Options {
            env: &[("EDDY_LOG", "warn")],
            args: &[],
            user: None,
        },
    )
}

/// [`spawn`], with variables added to eddy's environment.
pub fn spawn_with(dir: tempfile::TempDir, manifest: &str, env: &[(&str, &str)]) -> Eddy {
    start(
        dir,
        manifest,
        Options {
            env,
            ..Options::default()
        },
    )
}

/// [`spawn`], with more arguments to `eddy serve`.
pub fn spawn_args(dir: tempfile::TempDir, manifest: &str, args: &[&str]) -> Eddy {
    start(
        dir,
        manifest,
        Options {
            args,
            ..Options::default()
        },
    )
}

/// How to start `eddy serve`.
#[derive(Default)]
pub struct Options<'a> {
    /// Variables added to eddy's environment.
    pub env: &'a [(&'a str, &'a str)],
    /// More arguments to `eddy serve`.
    pub args: &'a [&'a str],
    /// Run eddy as this user (and group), not as the test's user: the test's folder is given
    /// to it, and eddy runs from a copy of the binary that user may execute.
    pub user: Option<u32>,
}

/// The `eddy` command a test starts: the one cargo built, or a copy in `dir` that `user` may
/// run (the build's folder may be closed to other users).
pub fn eddy_binary(dir: &std::path::Path, user: Option<u32>) -> std::path::PathBuf {
    let built = std::path::PathBuf::from(env!("CARGO_BIN_EXE_eddy"));
    let Some(user) = user else { return built };
    let copy = dir.join("eddy-bin");
    if !copy.exists() {
        std::fs::copy(&built, &copy).unwrap();
        std::os::unix::fs::chown(&copy, Some(user), Some(user)).unwrap();
    }
    copy
}

/// Starts `eddy serve MANIFEST` in `dir` as `options` say and waits until it says where it
/// listens.
pub fn start(dir: tempfile::TempDir, manifest: &str, options: Options) -> Eddy {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    // Functions run as users of their own and read their code from this folder.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut command = Command::new(eddy_binary(dir.path(), options.user));
    if let Some(user) = options.user {
        give_to(dir.path(), user);
        command.uid(user).gid(user);
    }
    command
        .args([
            "serve",
            manifest,
            "--data-dir",
            "data",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(options.args)
        .current_dir(dir.path())
        .env("EDDY_LOG", "info")
        .envs(options.env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("eddy.log")).unwrap());
    // A copy of the binary just written may be held open for writing, for a moment, by a
    // process another test thread forked meanwhile (until that one execs): then the kernel
    // refuses to run it (ETXTBSY), and trying again shortly succeeds.
    let mut busy = 0;
    let mut child = loop {
        match command.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && busy < 100 => {
                busy += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            spawned => break spawned.unwrap(),
        }
    };
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("eddy listening on ")
        .unwrap_or_else(|| {
            panic!(
                "unexpected first line {line:?}; eddy logged:\n{}",
                std::fs::read_to_string(dir.path().join("eddy.log")).unwrap_or_default()
            )
        })
        .to_string();
    let http = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    Eddy {
        child,
        base,
        dir,
        http,
    }
}

/// Makes `user` the owner of everything under `dir`.
fn give_to(dir: &std::path::Path, user: u32) {
    std::os::unix::fs::chown(dir, Some(user), Some(user)).unwrap();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            give_to(&path, user);
        } else {
            std::os::unix::fs::lchown(&path, Some(user), Some(user)).unwrap();
        }
    }
}

/// The processes of a function's workers and invocations that run now (their host pids),
/// found by the variable every function process has.
pub fn function_processes(function: &str) -> Vec<u32> {
    let marker = format!("AWS_LAMBDA_FUNCTION_NAME={function}");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == marker.as_bytes()))
        })
        .collect()
}

/// Whether process `pid` descends from `ancestor` (tests run side by side, each with its own
/// eddy and functions of the same names: a test's own workers are those under its eddy).
pub fn descends_from(pid: u32, ancestor: u32) -> bool {
    let mut current = pid;
    while current > 1 {
        if current == ancestor {
            return true;
        }
        match parent_of(current) {
            Some(parent) => current = parent,
            None => return false,
        }
    }
    false
}

/// The fields of `/proc/PID/stat` after the command (which is in parentheses and may hold
/// spaces): the state first, then the parent.
pub fn process_stat(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    Some(after.split_whitespace().map(str::to_string).collect())
}

/// eddy's held processes: its children waiting at their gates as eddy's init program
/// (`eddy __sandbox-init held GATE LAUNCH INIT`).
pub fn held_processes(eddy: &Eddy) -> Vec<u32> {
    let eddy_pid = eddy.child.id();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            parent_of(*pid) == Some(eddy_pid)
                && std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.starts_with(b"eddy\0__sandbox-init\0held\0"))
        })
        .collect()
}

/// The parent of process `pid`.
pub fn parent_of(pid: u32) -> Option<u32> {
    process_stat(pid)?.get(1)?.parse().ok()
}

/// A variable of a process's environment.
pub fn process_env(pid: u32, name: &str) -> Option<String> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{name}=");
    env.split(|b| *b == 0)
        .find_map(|v| v.strip_prefix(prefix.as_bytes()))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Eddy {
    /// Kills eddy (SIGKILL: nothing it acknowledged may depend on a clean stop) and starts it
    /// again on the same folder and data with `manifest`.
    pub fn restart(self, manifest: &str) -> Eddy {
        spawn(self.kill(), manifest)
    }

    /// Kills eddy (SIGKILL) and hands back its folder, to start it again on later.
    pub fn kill(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        drop(self);
        dir
    }

    pub fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Answer {
        self.call_as(
            (DEV_ACCESS_KEY_ID, DEV_SECRET_ACCESS_KEY),
            method,
            path,
            headers,
            body,
        )
    }

    /// [`Eddy::call`], signed with another access key and its secret.
    pub fn call_as(
        &self,
        (key, secret): (&str, &str),
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Answer {
        let url = format!("{}{path}", self.base);
        let mut request = http::Request::builder().method(method).uri(url);
        // An empty `authorization` asks for a request without credentials.
        for (k, v) in headers.iter().filter(|(_, v)| !v.is_empty()) {
            request = request.header(*k, *v);
        }
        let mut request = request
            .header("content-type", "application/json")
            .header("host", self.base.trim_start_matches("http://"))
            .body(body.unwrap_or("").to_string())
            .unwrap();
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            sign_request_as(&mut request, key, secret);
        }
        let mut response = self.http.run(request).unwrap();
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let text = response
            .body_mut()
            .with_config()
            .limit(20 << 20)
            .read_to_string()
            .unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    /// A request without credentials.
    pub fn call_unsigned(&self, method: &str, path: &str) -> Answer {
        self.call(method, path, &[("authorization", "")], None)
    }

    pub fn json(&self, method: &str, path: &str, body: Value) -> Answer {
        self.call(method, path, &[], Some(&body.to_string()))
    }

    pub fn get(&self, path: &str) -> Answer {
        self.call("GET", path, &[], None)
    }

    /// What eddy has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("eddy.log")).unwrap_or_default()
    }

    pub fn wait_for(&self, what: &str, mut condition: impl FnMut(&Eddy) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !condition(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; eddy logged:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Signs a request with AWS Signature V4 and the development credentials.
pub fn sign_request(request: &mut http::Request<String>) {
    sign_request_as(request, DEV_ACCESS_KEY_ID, DEV_SECRET_ACCESS_KEY);
}

/// Signs a request with AWS Signature V4 and the access key `key`.
pub fn sign_request_as(request: &mut http::Request<String>, key: &str, secret: &str) {
    let credentials = eddy_sigv4::Credentials {
        access_key_id: key.into(),
        secret_access_key: secret.into(),
    };
    let (path, query) = (
        request.uri().path().to_string(),
        request.uri().query().unwrap_or("").to_string(),
    );
    let hash = eddy_sigv4::sha256_hex(request.body().as_bytes());
    let method = request.method().to_string();
    let signed = eddy_sigv4::Request {
        method: &method,
        path: &path,
        query: &query,
        headers: request.headers(),
        payload_sha256: &hash,
    };
    let service = if path.starts_with("/2015-03-31/") {
        "lambda"
    } else if path.starts_with("/_eddy/") {
        "eddy"
    } else {
        "s3"
    };
    for (name, value) in eddy_sigv4::sign(
        &credentials,
        "us-east-1",
        service,
        &signed,
        SystemTime::now(),
    ) {
        request.headers_mut().insert(name, value.parse().unwrap());
    }
}

/// Runs the AWS CLI against eddy with the development credentials.
pub fn aws(eddy: &Eddy, args: &[&str]) -> std::process::Output {
    Command::new("aws")
        .args(args)
        .args(["--endpoint-url", &eddy.base, "--region", "us-east-1"])
        .env("AWS_ACCESS_KEY_ID", DEV_ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", DEV_SECRET_ACCESS_KEY)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("the AWS CLI is installed (.ci/run installs it)")
}

/// What every boto3 script starts with: clients for eddy, and `error(call, …)` that returns
/// `[status, code]` of a failed call (or `None` when it succeeds).
const BOTO3_PRELUDE: &str = r#"
import base64, hashlib, json, os, sys, time, urllib.request, urllib.error
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

def client(service, secret=os.environ["SECRET"], key=os.environ["KEY"]):
    return boto3.client(service, endpoint_url=os.environ["EDDY"], region_name="us-east-1",
        aws_access_key_id=key, aws_secret_access_key=secret,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                      signature_version="s3v4" if service == "s3" else None))

s3 = client("s3")

def error(call, *args, **kwargs):
    try:
        call(*args, **kwargs)
        return None
    except ClientError as e:
        return [e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]]

def fetch(url, method="GET", data=None, headers={}):
    """A plain HTTP request (a presigned URL): [status, body]."""
    request = urllib.request.Request(url, method=method, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request) as r:
            return [r.status, r.read().decode("latin-1")]
    except urllib.error.HTTPError as e:
        return [e.code, e.read().decode("latin-1")]

out = {}
"#;

/// Runs a Python script with boto3 against eddy and returns the JSON of its `out` dict.
pub fn boto3(eddy: &Eddy, script: &str) -> Value {
    let program = format!("{BOTO3_PRELUDE}\n{script}\nprint(json.dumps(out, default=str))\n");
    let output = Command::new("python3")
        .args(["-c", &program])
        .env("EDDY", &eddy.base)
        .env("KEY", DEV_ACCESS_KEY_ID)
        .env("SECRET", DEV_SECRET_ACCESS_KEY)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("python3 with boto3 is installed (.ci/run installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the boto3 script failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Runs an `eddy` client command against `eddy`, in its folder.
pub fn cli(eddy: &Eddy, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(args)
        .current_dir(eddy.dir.path())
        .env("EDDY_ENDPOINT", &eddy.base)
        .env_remove("EDDY_ACCESS_KEY_ID")
        .env_remove("EDDY_SECRET_ACCESS_KEY")
        .output()
        .unwrap()
}

/// Runs an `eddy` client command that must succeed and returns its stdout.
pub fn cli_ok(eddy: &Eddy, args: &[&str]) -> String {
    let out = cli(eddy, args);
    assert!(
        out.status.success(),
        "eddy {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs an `eddy` client command that must fail and returns its stderr.
pub fn cli_err(eddy: &Eddy, args: &[&str]) -> String {
    let out = cli(eddy, args);
    assert!(
        !out.status.success(),
        "eddy {args:?} should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// The function's own output in an invocation log: the lines between Lambda's `START` line and
/// its `END` line (checking that both are there).
pub fn own_output(log: &str) -> String {
    let mut lines = log.lines();
    let start = lines.next().unwrap_or("");
    assert!(
        start.starts_with("START RequestId: "),
        "no START line: {log}"
    );
    let own: Vec<&str> = lines
        .take_while(|l| !l.starts_with("END RequestId: "))
        .collect();
    assert!(
        log.contains("\nEND RequestId: ") && log.contains("\nREPORT RequestId: "),
        "{log}"
    );
    own.iter().map(|l| format!("{l}\n")).collect()
}

/// Sends `request` as it is (a raw HTTP/1.1 request) and returns the answer's status and its
/// text (headers and body); `0` when the connection ended without an answer.
pub fn raw(eddy: &Eddy, request: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let address = eddy.base.trim_start_matches("http://");
    let mut tcp = std::net::TcpStream::connect(address).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = tcp.write_all(request);
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

/// Signs in to the console of the eddy at `base` with the development credentials, as its form
/// does; the session cookie (`NAME=VALUE`) its pages take.
pub fn console_cookie(base: &str) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let signed_in = agent
        .post(format!("{base}/_eddy/console/sign-in"))
        .content_type("application/x-www-form-urlencoded")
        .send(format!(
            "access_key_id={DEV_ACCESS_KEY_ID}&secret_access_key={DEV_SECRET_ACCESS_KEY}"
        ))
        .unwrap();
    assert_eq!(
        signed_in.status().as_u16(),
        303,
        "signing in to the console"
    );
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_string()
}

/// The address eddy listens on (`127.0.0.1:PORT`).
pub fn address(eddy: &Eddy) -> String {
    eddy.base.trim_start_matches("http://").to_string()
}

/// The count of deliveries in `state`, as `/_eddy/metrics` shows it.
pub fn deliveries_in(eddy: &Eddy, state: &str) -> u64 {
    let metrics = eddy.get("/_eddy/metrics").body;
    let prefix = format!("eddy_deliveries{{state=\"{state}\"}} ");
    metrics
        .as_str()
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map_or(0, |n| n.trim().parse().unwrap())
}
