//! Schedules through the libraries, under a clock the test moves: each run comes at its time
//! (a rate, a cron expression in a time zone), once, with EventBridge's Scheduled Event or the
//! schedule's input; a restart neither repeats a run nor loses one, and runs that came due
//! while nothing ran are run once, or skipped, as the schedule asks.

use std::sync::Arc;
use std::time::Duration;

use eddy_core::FunctionName;
use eddy_executor::*;
use eddy_tests::{Eddy, Recorder, app, start_executor, wait_for};
use serde_json::json;

const APP: &str = "
functions:
  - {name: minutely, runtime: in_process}
  - {name: noon, runtime: in_process}
  - {name: skipper, runtime: in_process}
schedules:
  - {name: every-minute, function: minutely, expression: rate(1 minute)}
  - name: paris-noon
    function: noon
    expression: cron(0 12 * * ? *)
    timezone: Europe/Paris
    input: {report: daily, pages: [1, 2]}
  - {name: skip-missed, function: skipper, expression: rate(1 minute), missed: skip}
";

/// The `time` of each Scheduled Event `runs` received.
fn times(runs: &Recorder) -> Vec<String> {
    runs.events()
        .iter()
        .map(|e| e["time"].as_str().unwrap_or_default().to_string())
        .collect()
}

struct Node {
    eddy: Eddy,
    executor: Executor,
    minutely: Arc<Recorder>,
    noon: Arc<Recorder>,
    skipper: Arc<Recorder>,
}

async fn start(dir: &std::path::Path, clock: &ManualClock) -> Node {
    let (eddy, executor) = start_executor(dir, app(dir, APP), Arc::new(clock.clone())).await;
    let [minutely, noon, skipper] = [(); 3].map(|_| Arc::new(Recorder::default()));
    for (name, runs) in [
        ("minutely", &minutely),
        ("noon", &noon),
        ("skipper", &skipper),
    ] {
        executor.register(FunctionName::new(name).unwrap(), runs.clone());
    }
    let node = Node {
        eddy,
        executor,
        minutely,
        noon,
        skipper,
    };
    wait_for("the timetable to take in the schedules", || async {
        schedules_seen(&node).await == 3
    })
    .await;
    node
}

async fn schedules_seen(node: &Node) -> usize {
    SqlDeliveries::new(&node.eddy.bus, "test")
        .schedule_runs(&mut node.eddy.bus.readers())
        .await
        .unwrap()
        .len()
}

fn at(text: &str) -> i64 {
    eddy_core::time::parse_iso8601(text).unwrap()
}

/// Moves the clock to `text`.
fn move_to(clock: &ManualClock, text: &str) {
    let by = at(text) - clock.now_ms();
    assert!(by >= 0, "the clock only moves forward");
    clock.advance(Duration::from_millis(by as u64));
}

// The manual clocks read a day in the past: a run's event is stamped with the real time of its
// commit, and a clock ahead of that could find it older than its maximum age.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_run_at_their_times_once_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at("2026-11-02T10:58:30Z"));
    let node = start(dir.path(), &clock).await;

    move_to(&clock, "2026-11-02T10:59:00Z");
    wait_for("the 10:59 run", || async { node.minutely.count() == 1 }).await;
    // Noon in Paris is 11:00 UTC in November (after the clocks went back).
    move_to(&clock, "2026-11-02T11:00:00Z");
    wait_for("the 11:00 runs", || async {
        node.minutely.count() == 2 && node.noon.count() == 1 && node.skipper.count() == 2
    })
    .await;
    assert_eq!(
        times(&node.minutely),
        ["2026-11-02T10:59:00Z", "2026-11-02T11:00:00Z"]
    );
    let event = node.minutely.events()[1].clone();
    assert_eq!(event["detail-type"], "Scheduled Event");
    assert_eq!(event["source"], "aws.events");
    assert_eq!(
        event["resources"],
        json!(["arn:aws:events:us-east-1:000000000000:rule/every-minute"])
    );
    assert_eq!(
        node.noon.events()[0],
        json!({"report": "daily", "pages": [1, 2]}),
        "the input replaces the Scheduled Event"
    );

    // Stopped at 11:00:30; started again at 11:03:30. Three runs of each rate came and went.
    move_to(&clock, "2026-11-02T11:00:30Z");
    node.executor.shutdown().await;
    let Node { eddy, executor, .. } = node;
    drop((executor, eddy));
    move_to(&clock, "2026-11-02T11:03:30Z");
    let node = start(dir.path(), &clock).await;
    wait_for("the missed run", || async { node.minutely.count() == 1 }).await;
    assert_eq!(
        times(&node.minutely),
        ["2026-11-02T11:03:00Z"],
        "`missed: run_once` runs the latest missed run, once"
    );
    move_to(&clock, "2026-11-02T11:04:00Z");
    wait_for("the 11:04 runs", || async {
        node.minutely.count() == 2 && node.skipper.count() == 1
    })
    .await;
    assert_eq!(
        times(&node.skipper),
        ["2026-11-02T11:04:00Z"],
        "`missed: skip` runs none of the missed runs"
    );
    assert_eq!(node.noon.count(), 0, "noon ran once, before the restart");

    // Every run is one event and one delivery: none repeated (4 + 1 + 3 runs).
    let events = node.eddy.bus.read_after(0, 1000).await.unwrap();
    let per_source = |source: &str| {
        events
            .iter()
            .filter(|e| e.source.to_string() == source)
            .map(|e| e.key.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        per_source("schedule/every-minute"),
        [
            "2026-11-02T10:59:00.000Z",
            "2026-11-02T11:00:00.000Z",
            "2026-11-02T11:03:00.000Z",
            "2026-11-02T11:04:00.000Z"
        ]
    );
    assert_eq!(per_source("schedule/paris-noon").len(), 1);
    wait_for("every run to settle", || async {
        let c = node.executor.counts().await.unwrap();
        c.done == 8 && c.total() == 8
    })
    .await;
    node.executor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_run_is_retried_with_the_schedules_policy() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at("2026-11-02T10:59:30Z"));
    let manifest = "
functions: [{name: flaky, runtime: in_process}]
schedules:
  - {name: hourly, function: flaky, expression: rate(1 hour), retry: {max_attempts: 2, backoff: 1s..1s}}
";
    let (eddy, executor) = start_executor(
        dir.path(),
        app(dir.path(), manifest),
        Arc::new(clock.clone()),
    )
    .await;
    let flaky = Arc::new(Recorder::default());
    *flaky.failing.lock().unwrap() = true;
    executor.register(FunctionName::new("flaky").unwrap(), flaky.clone());
    wait_for("the timetable to take in the schedule", || async {
        SqlDeliveries::new(&eddy.bus, "test")
            .schedule_runs(&mut eddy.bus.readers())
            .await
            .unwrap()
            .len()
            == 1
    })
    .await;
    move_to(&clock, "2026-11-02T11:00:00Z");
    wait_for("the first attempt", || async { flaky.count() == 1 }).await;
    wait_for("the retry to be set", || async {
        let c = executor.counts().await.unwrap();
        c.ready == 1 && c.leased == 0
    })
    .await;
    // Backoff 1s..1s: the retry waits between 0.5 and 1 s.
    clock.advance(Duration::from_secs(1));
    wait_for("the dead letter", || async {
        executor.counts().await.unwrap().dead == 1
    })
    .await;
    assert_eq!(flaky.count(), 2, "two attempts, as its policy says");
    let dead = executor.dead_letters(None).await.unwrap();
    assert_eq!(dead[0].trigger, "schedule/hourly");
    assert_eq!(dead[0].reason, DeadReason::RetriesExhausted);
    executor.shutdown().await;
}
