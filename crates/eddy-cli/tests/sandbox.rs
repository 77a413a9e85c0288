//! A function cannot reach past its role: an attacker function tries what a hostile handler
//! would — eddy's environment and memory, another function's worker and its Runtime API, the
//! data directory, another function's scratch files — in every sandbox mode, and each mode
//! keeps the promise it makes (docs/security.md). The mode that ran is checked, never assumed.

mod common;

use common::*;
use serde_json::{Value, json};

const APP: &str = "
buckets: [{name: private}]
functions:
  - {name: victim, runtime: nodejs, handler: victim.handler, code: ./code}
  - {name: attacker, runtime: nodejs, handler: attacker.handler, code: ./code, timeout: 20s}
  - {name: exits, runtime: exec, command: [sh, -c, 'echo leaving >&2; exit 3']}
  - {name: signalled, runtime: exec, command: [sh, -c, 'kill -TERM $$']}
";

/// A handler with a secret in its scratch space.
const VICTIM: &str = r#"
const fs = require('fs');
exports.handler = async () => {
  // A name of its own: without a private /tmp, runs of this test share the host's.
  const path = `/tmp/victim-secret-${process.env.AWS_LAMBDA_LOG_STREAM_NAME.replace(/\W/g, '')}.txt`;
  fs.writeFileSync(path, 'the victim wrote this');
  return { secret: path };
};
"#;

/// A handler that tries everything it should not be able to do, and says what happened.
const ATTACKER: &str = r#"
const fs = require('fs');
const net = require('net');
const attempt = (f) => { try { return f(); } catch (e) { return e.code || String(e); } };
const read = (path) => attempt(() => 'READ ' + fs.readFileSync(path).length + ' bytes');
exports.handler = async (event) => {
  const out = {};
  out.eddy_environ = read(`/proc/${event.eddy_pid}/environ`);
  out.eddy_memory = read(`/proc/${event.eddy_pid}/maps`);
  out.victim_environ = read(`/proc/${event.victim_pid}/environ`);
  // eddy's held processes, the functions' spares, held before they run anything
  // (docs/security.md) — but this one's own, which may have become this very process. What
  // each try got from any of them: the first that got through, or the last refusal.
  const held = event.held_pids.filter((pid) => pid !== process.pid);
  out.held_tried = held.length;
  const eachHeld = (f) => {
    let got;
    for (const pid of held) {
      got = f(pid);
      if (/^(READ|LISTED|SIGNALLED)/.test(got)) break;
    }
    return got;
  };
  out.held_environ = eachHeld((pid) => read(`/proc/${pid}/environ`));
  out.held_memory = eachHeld((pid) => read(`/proc/${pid}/maps`));
  out.held_fds = eachHeld((pid) => attempt(() => 'LISTED ' + fs.readdirSync(`/proc/${pid}/fd`).join(',')));
  out.held_signal = eachHeld((pid) => attempt(() => { process.kill(pid, 0); return 'SIGNALLED'; }));
  out.data_dir = attempt(() => 'LISTED ' + fs.readdirSync(event.data_dir).join(','));
  out.database = read(event.data_dir + '/eddy.db');
  out.victim_tmp = read(event.victim_secret);
  out.processes = fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)).length;
  out.own_key = process.env.AWS_ACCESS_KEY_ID;
  // Answering an invocation that is not running gets a 400 from a Runtime API that listens.
  out.runtime_api = await new Promise((resolve) => {
    let got = '';
    const s = net.connect(event.victim_port, '127.0.0.1', () => s.write(
      'POST /2018-06-01/runtime/invocation/forged/response HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}'));
    s.on('data', (d) => { got += d; });
    s.on('close', () => resolve(got ? 'ANSWERED ' + got.split('\r\n')[0] : 'closed'));
    s.on('error', (e) => resolve(e.code));
    setTimeout(() => { s.destroy(); resolve(got ? 'ANSWERED ' + got.split('\r\n')[0] : 'no answer'); }, 3000);
  });
  return out;
};
"#;

/// What a function in namespaces of its own (isolated, or namespaces without root) cannot
/// reach: another worker's environment, the data directory, another function's scratch files,
/// eddy's held processes.
const NAMESPACED: [&str; 5] = [
    "victim_environ",
    "data_dir",
    "database",
    "victim_tmp",
    "held_signal",
];

/// The unprivileged user the user-namespace and unsandboxed runs use.
const NOBODY: u32 = 65534;

fn start_app(options: Options) -> Eddy {
    let dir = tempfile::tempdir().unwrap();
    let code = dir.path().join("code");
    std::fs::create_dir(&code).unwrap();
    std::fs::write(dir.path().join("app.yaml"), APP).unwrap();
    std::fs::write(code.join("victim.js"), VICTIM).unwrap();
    std::fs::write(code.join("attacker.js"), ATTACKER).unwrap();
    start(dir, "app.yaml", options)
}

/// Runs the victim (so it has a warm worker), then the attacker, and returns the mode that
/// ran and the attacker's report.
fn attack(eddy: &Eddy) -> (String, Value) {
    let mode = eddy.get("/_eddy/health").body["sandbox"]["mode"]
        .as_str()
        .unwrap()
        .to_string();
    let ran: Value = serde_json::from_str(&cli_ok(eddy, &["invoke", "victim"])).unwrap();
    let secret = ran["secret"].as_str().unwrap().to_string();
    let victim = function_processes("victim")
        .into_iter()
        .filter(|pid| descends_from(*pid, eddy.child.id()))
        .find(|pid| process_env(*pid, "AWS_LAMBDA_RUNTIME_API").is_some())
        .expect("the victim's warm worker runs");
    let api = process_env(victim, "AWS_LAMBDA_RUNTIME_API").unwrap();
    let port: u16 = api.rsplit(':').next().unwrap().parse().unwrap();
    // Each Node.js function has a spare, held before it runs anything: the victim's, parked
    // again once its worker started, and the attacker's, which its invocation may take.
    eddy.wait_for("both spares", |e| held_processes(e).len() == 2);
    let held = held_processes(eddy);
    // Another local process (this test) is refused by the victim's Runtime API too.
    assert_eq!(
        forged_answer(port),
        "closed",
        "a process outside the worker reached its Runtime API"
    );
    let payload = json!({
        "eddy_pid": eddy.child.id(),
        "victim_pid": victim,
        "victim_port": port,
        "held_pids": held,
        "data_dir": eddy.dir.path().join("data"),
        "victim_secret": secret,
    });
    let out = cli_ok(
        eddy,
        &["invoke", "attacker", "--payload", &payload.to_string()],
    );
    // Where /tmp is the host's (users, off), the victim's file is left there: remove it.
    let _ = std::fs::remove_file(&secret);
    let report: Value = serde_json::from_str(&out).unwrap();
    eprintln!("sandbox mode {mode}: the attacker saw {report:#}");
    ends_are_reported_as_they_happened(eddy);
    (mode, report)
}

/// A function's own end — its exit code, the signal that ended it — reaches eddy through the
/// sandbox's helpers unchanged.
fn ends_are_reported_as_they_happened(eddy: &Eddy) {
    let exited = cli_err(eddy, &["invoke", "exits"]);
    assert!(exited.contains("exited with status 3: leaving"), "{exited}");
    let signalled = cli_err(eddy, &["invoke", "signalled"]);
    assert!(
        signalled.contains("killed by signal SIGTERM"),
        "{signalled}"
    );
}

/// Sends a forged answer to a Runtime API: the status line it got, or `closed`.
fn forged_answer(port: u16) -> String {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let _ = tcp.write_all(
        b"POST /2018-06-01/runtime/invocation/forged/response HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
    );
    let mut answer = String::new();
    let _ = tcp.read_to_string(&mut answer);
    match answer.lines().next() {
        Some(line) if !line.is_empty() => line.to_string(),
        _ => "closed".into(),
    }
}

fn refused(report: &Value, what: &str) {
    let seen = report[what].as_str().unwrap_or_default();
    assert!(
        !seen.starts_with("READ")
            && !seen.starts_with("LISTED")
            && !seen.starts_with("ANSWERED")
            && !seen.starts_with("SIGNALLED"),
        "{what}: the attacker got {seen:?}"
    );
}

/// What every mode promises: eddy's environment and memory are closed (eddy is not dumpable),
/// and the victim's Runtime API answers nobody but the victim's own worker.
fn common_promises(report: &Value) {
    for what in [
        "eddy_environ",
        "eddy_memory",
        "runtime_api",
        "held_environ",
        "held_memory",
        "held_fds",
    ] {
        refused(report, what);
    }
    assert!(
        report["held_tried"].as_u64().unwrap() >= 1,
        "the attacker tried another function's held process: {report}"
    );
    assert!(
        report["own_key"].as_str().unwrap().starts_with("EDDYFN"),
        "the attacker has only its own credentials: {report}"
    );
}

/// As root, functions run as users of their own in namespaces: nothing of eddy's or the
/// victim's is visible.
#[test]
fn isolated_functions_reach_nothing_of_eddy_or_each_other() {
    let eddy = start_app(Options::default());
    let (mode, report) = attack(&eddy);
    assert_eq!(
        mode, "isolated",
        "root with namespaces gets the isolated sandbox"
    );
    common_promises(&report);
    for what in NAMESPACED {
        refused(&report, what);
    }
    assert!(
        report["processes"].as_u64().unwrap() <= 3,
        "only its own namespace's processes are visible: {report}"
    );
}

/// Without namespaces (as some containers allow), a user per function still closes eddy, the
/// data directory and the other worker; the host's processes and /tmp are shared.
#[test]
fn users_without_namespaces_still_close_eddy_and_the_other_worker() {
    let eddy = start_app(Options {
        args: &["--function-sandbox", "users"],
        ..Options::default()
    });
    let (mode, report) = attack(&eddy);
    assert_eq!(mode, "users");
    common_promises(&report);
    for what in ["victim_environ", "data_dir", "database", "held_signal"] {
        refused(&report, what);
    }
    assert!(
        report["processes"].as_u64().unwrap() > 3,
        "the host's processes are visible"
    );
}

/// eddy as an unprivileged user: its functions share its user but live in user, mount and PID
/// namespaces of their own.
#[test]
fn namespaces_keep_an_unprivileged_eddys_functions_apart() {
    let eddy = start_app(Options {
        user: Some(NOBODY),
        ..Options::default()
    });
    let (mode, report) = attack(&eddy);
    common_promises(&report);
    match mode.as_str() {
        "namespaces" => {
            for what in NAMESPACED {
                refused(&report, what);
            }
            assert!(report["processes"].as_u64().unwrap() <= 3, "{report}");
        }
        // A kernel without unprivileged user namespaces: eddy says so, and only the common
        // promises hold (the health answer warns).
        other => {
            assert_eq!(other, "off", "{report}");
            eprintln!(
                "NOTE: unprivileged user namespaces are not available here; checked the off mode"
            );
            let health = eddy.get("/_eddy/health").body;
            assert!(
                !health["warnings"].as_array().unwrap().is_empty(),
                "{health}"
            );
        }
    }
}

/// With the sandbox off, eddy says so at start and in its health answer, and still keeps its
/// own memory and environment closed and the Runtime API to its worker.
#[test]
fn without_a_sandbox_eddy_warns_and_keeps_what_it_can() {
    let eddy = start_app(Options {
        user: Some(NOBODY),
        args: &["--function-sandbox", "off"],
        ..Options::default()
    });
    let (mode, report) = attack(&eddy);
    assert_eq!(mode, "off");
    common_promises(&report);
    // What off gives up, shown rather than assumed: the data directory is open to functions.
    assert!(
        report["data_dir"].as_str().unwrap().starts_with("LISTED"),
        "{report}"
    );
    // And a function, being eddy's user, may signal eddy's held processes (not read them).
    assert_eq!(report["held_signal"], "SIGNALLED", "{report}");
    let health = eddy.get("/_eddy/health").body;
    assert!(
        health["warnings"][0]
            .as_str()
            .unwrap()
            .contains("without a sandbox"),
        "{health}"
    );
    assert!(eddy.log().contains("FUNCTIONS RUN WITHOUT A SANDBOX"));
}

/// On an address beyond this machine, eddy does not run functions unsandboxed unless told to
/// with a flag that says what it gives up.
#[test]
fn an_exposed_eddy_refuses_to_run_functions_unsandboxed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.yaml"), APP).unwrap();
    std::fs::create_dir(dir.path().join("code")).unwrap();
    let run = |extra: &[&str]| {
        let mut command = std::process::Command::new(eddy_binary(dir.path(), None));
        command
            .args([
                "serve",
                "app.yaml",
                "--data-dir",
                "data",
                "--listen",
                "0.0.0.0:0",
            ])
            .args(["--function-sandbox", "off"])
            .args(extra)
            .current_dir(dir.path())
            .env("EDDY_ACCESS_KEY_ID", "AKIAEXPOSED0000001")
            .env("EDDY_SECRET_ACCESS_KEY", "a-long-secret-for-this-test")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command.spawn().unwrap()
    };
    let refused = run(&[]).wait_with_output().unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("--allow-unsandboxed-functions") && said.contains("could read eddy's data"),
        "{said}"
    );
    // With the flag it serves (and warns).
    let mut accepted = run(&["--allow-unsandboxed-functions"]);
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(accepted.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let _ = accepted.kill();
    let _ = accepted.wait();
    assert!(line.starts_with("eddy listening on "), "{line:?}");
}

/// eddy's root secret is taken out of its environment at start: not even root finds it in
/// /proc/EDDY/environ.
#[test]
fn the_root_secret_leaves_eddys_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.yaml"), "buckets: [{name: box}]\n").unwrap();
    let secret = "the-root-secret-nobody-may-read-0123456789";
    let eddy = spawn_with(
        dir,
        "app.yaml",
        &[
            ("EDDY_ACCESS_KEY_ID", "AKIAROOT0000000001"),
            ("EDDY_SECRET_ACCESS_KEY", secret),
        ],
    );
    let environ = std::fs::read(format!("/proc/{}/environ", eddy.child.id())).unwrap();
    let text = String::from_utf8_lossy(&environ);
    assert!(
        text.contains("EDDY_ACCESS_KEY_ID=AKIAROOT0000000001"),
        "{text}"
    );
    assert!(
        !text.contains(secret),
        "the secret is still in eddy's environment"
    );
    // And it is still the secret eddy checks: a bearer token with it is accepted.
    let answer = eddy.call(
        "GET",
        "/_eddy/v1/functions",
        &[("authorization", &format!("Bearer {secret}"))],
        None,
    );
    assert_eq!(answer.status, 200, "{:?}", answer.body);
}

/// `eddy __sandbox-init held GATE LAUNCH INIT` is how a spare waits; anyone can type it. Typed
/// by hand, it runs with the typer's own rights and nothing more, and it runs nothing it was
/// not given by eddy: arguments that are not descriptors are refused, and a launch eddy did not
/// write — here a file of the typer's — is refused with its reason once the gate opens, before
/// anything is executed; a gate closed unopened ends it quietly.
#[test]
fn the_held_init_refuses_what_eddy_did_not_prepare() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let eddy = env!("CARGO_BIN_EXE_eddy");
    for args in [&["held"][..], &["held", "x", "y", "z"], &["held", "0", "3"]] {
        let out = Command::new(eddy)
            .arg("__sandbox-init")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("is for eddy's own use"),
            "{args:?}: {out:?}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let forged = dir.path().join("launch");
    let ran = dir.path().join("ran");
    std::fs::write(&forged, format!("#!/bin/sh\ntouch {}\n", ran.display())).unwrap();
    // The gate is standard input; the launch, descriptor 3; the init program, descriptor 4.
    let held = |open_gate: bool| {
        let mut child = Command::new("/bin/sh")
            .args([
                "-c",
                "exec \"$0\" __sandbox-init held 0 3 4 3<\"$1\" 4<\"$0\"",
                eddy,
                forged.to_str().unwrap(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut gate = child.stdin.take().unwrap();
        if open_gate {
            gate.write_all(b"g").unwrap();
        }
        drop(gate);
        child.wait_with_output().unwrap()
    };
    let out = held(true);
    assert_eq!(out.status.code(), Some(125), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("cannot read its launch: it was not written by this build of eddy"),
        "{out:?}"
    );
    let out = held(false);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    assert!(!ran.exists(), "a forged launch ran something");
}
