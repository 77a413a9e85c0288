//! Schedules in the real `eddy serve`, with real time: a run that came due while eddy was
//! killed runs once when it is back, and a run is never repeated by a restart (SIGKILL). The
//! admin API shows each schedule's last and next runs, to signed requests (a key without
//! `admin:read` is refused: `access.rs`).

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The schedule `name` as `GET /_eddy/v1/schedules` shows it.
fn schedule(eddy: &Eddy, name: &str) -> Value {
    let list = eddy.get("/_eddy/v1/schedules");
    assert_eq!(list.status, 200, "{}", list.body);
    list.body["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no schedule {name}: {}", list.body))
}

/// The journal's runs of schedule `name`.
fn runs(eddy: &Eddy, name: &str) -> Vec<Value> {
    let page = eddy.get("/_eddy/v1/events?after=0&limit=1000");
    assert_eq!(page.status, 200, "{}", page.body);
    page.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] == format!("schedule/{name}"))
        .cloned()
        .collect()
}

fn successes(eddy: &Eddy, function: &str) -> usize {
    let page = eddy.get(&format!("/_eddy/v1/invocations?function={function}"));
    page.body["invocations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "success")
        .count()
}

fn manifest(due: &str, extra: &str) -> String {
    format!(
        "functions: [{{name: tick, runtime: exec, command: [sh, -c, 'cat >&2']}}]
schedules:
  - {{name: soon, function: tick, expression: 'at({due})'}}
{extra}"
    )
}

#[test]
fn a_run_missed_while_eddy_was_killed_runs_once_and_never_again() {
    // Kept first with a run far ahead; then, while eddy is down, moved to a moment that
    // passes before eddy is back (however long a start takes on a busy machine).
    let eddy = serve(&manifest("2099-01-01T00:00:00", ""));
    eddy.wait_for("the schedule to be kept", |e| {
        schedule(e, "soon")["last_run_ms"].is_i64()
    });
    let dir = eddy.kill();
    let due_ms = (now_ms() / 1000 + 2) * 1000;
    let due = eddy_core::time::iso8601_millis(due_ms)[..19].to_string();
    std::fs::write(dir.path().join("app.yaml"), manifest(&due, "")).unwrap();
    let wait = due_ms + 200 - now_ms();
    if wait > 0 {
        std::thread::sleep(Duration::from_millis(wait as u64));
    }
    let eddy = spawn(dir, "app.yaml");
    eddy.wait_for("the missed run to be delivered", |e| {
        successes(e, "tick") == 1
    });
    let journaled = runs(&eddy, "soon");
    assert_eq!(journaled.len(), 1);
    assert_eq!(journaled[0]["kind"], "Scheduled Event");
    assert_eq!(journaled[0]["payload"]["detail-type"], "Scheduled Event");
    assert_eq!(journaled[0]["payload"]["time"], format!("{due}Z"));
    assert_eq!(schedule(&eddy, "soon")["last_run_ms"], due_ms);

    // Killed again, and started with one more schedule, listed after it: once that one is
    // kept, the timetable's first pass has been over `soon` too, and did not run it again.
    std::fs::write(
        eddy.dir.path().join("app.yaml"),
        manifest(
            &due,
            "  - {name: later, function: tick, expression: rate(1 day)}\n",
        ),
    )
    .unwrap();
    let eddy = eddy.restart("app.yaml");
    eddy.wait_for("the timetable's first pass", |e| {
        schedule(e, "later")["last_run_ms"].is_i64()
    });
    assert_eq!(runs(&eddy, "soon").len(), 1, "a restart repeats no run");
    assert_eq!(successes(&eddy, "tick"), 1);
    assert!(
        schedule(&eddy, "soon")["next_runs_ms"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn schedules_are_shown_to_signed_requests_only() {
    let eddy = serve(
        "functions: [{name: tick, runtime: exec, command: [sh, -c, 'cat >&2']}]
schedules: [{name: daily, function: tick, expression: rate(1 day)}]
",
    );
    let unsigned = eddy.call("GET", "/_eddy/v1/schedules", &[("authorization", "")], None);
    assert_eq!(unsigned.status, 401);
    let shown = schedule(&eddy, "daily");
    assert_eq!(shown["expression"], "rate(1 day)");
    assert_eq!(shown["timezone"], "UTC");
    assert_eq!(shown["next_runs_ms"].as_array().unwrap().len(), 5);
}
