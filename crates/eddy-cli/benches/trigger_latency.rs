//! From an acknowledged write to the start of its handler, measured from outside: a real
//! `eddy serve`, Node.js handlers in its workers, writes at a steady `RATE` per second.
//!
//! - **bucket**: 1 KiB PUTs through the S3 API (signed), each triggering a handler;
//! - **table**: row inserts through the table API, each triggering a handler.
//!
//! Each with the function's warm worker (the default for a function with triggers) and without
//! (`warm: 0`: the first events after start wait for a process to start), in the same run. The
//! handler notes `performance.timeOrigin + performance.now()` as it starts; the latency is that
//! minus the moment the write's 2xx arrived. Reported apart: the first `FIRST` events after the
//! server started (its first second of traffic), and the `EVENTS - FIRST` after them (steady
//! state). Percentiles over all runs pooled.
//!
//! Run with `cargo bench -p eddy-cli --bench trigger_latency`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use common::{Eddy, serve_quietly};
use eddy_tests::bench::{machine, s3_request, small_body};
use serde_json::json;

const RUNS: usize = 3;
const EVENTS: u64 = 800;
/// The events of the first second, reported apart from the steady state after them.
const FIRST: u64 = 200;
/// Writes per second.
const RATE: u64 = 200;

const HANDLER: &str = r#"
exports.handler = async (event) => {
  const started = performance.timeOrigin + performance.now();
  const record = event.Records[0];
  const key = record.s3 ? record.s3.object.key : record.dynamodb.Keys.id.N;
  console.log(`STAMP ${key} ${started}`);
};
"#;

fn app(warm: u32) -> String {
    format!(
        "buckets: [{{name: inbox}}]
tables: [{{name: rows, primary_key: id, columns: {{id: integer}}}}]
functions:
  - {{name: on-object, runtime: nodejs, handler: index.handler, code: ./stamp, warm: {warm}}}
  - {{name: on-row, runtime: nodejs, handler: index.handler, code: ./stamp, warm: {warm}}}
triggers:
  - {{function: on-object, source: bucket/inbox, events: ['object:created:*']}}
  - {{function: on-row, source: table/rows, events: [row:insert]}}
"
    )
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// Writes `EVENTS` times at `RATE` per second (each at its own moment on a fixed schedule, so a
/// slow write does not slow the ones after it down) and returns when each was acknowledged.
fn paced(write: impl Fn(u64)) -> HashMap<String, f64> {
    let start = Instant::now();
    let every = Duration::from_secs_f64(1.0 / RATE as f64);
    let mut acked = HashMap::new();
    for i in 0..EVENTS {
        if let Some(wait) = (start + every * i as u32).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        write(i);
        acked.insert(i.to_string(), now_ms());
    }
    acked
}

/// When each handler of `function` started, by key, once all `EVENTS` have run.
fn started(eddy: &Eddy, function: &str) -> HashMap<String, f64> {
    let mut stamps = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut after = 0;
    while (stamps.len() as u64) < EVENTS {
        assert!(Instant::now() < deadline, "handlers did not all run");
        let page = eddy
            .get(&format!(
                "/_eddy/v1/invocations?function={function}&after={after}&limit=1000&wait=1"
            ))
            .body;
        for record in page["invocations"].as_array().into_iter().flatten() {
            let log = record["log"].as_str().unwrap_or_default();
            for line in log.lines().filter_map(|l| l.split("STAMP ").nth(1)) {
                let (key, at) = line.split_once(' ').unwrap();
                stamps.insert(key.to_string(), at.trim().parse::<f64>().unwrap());
            }
        }
        if let Some(next) = page["next"].as_u64() {
            after = next;
        }
    }
    stamps
}

/// The latencies of the first second's events, and of the steady state's.
fn latencies(acked: &HashMap<String, f64>, started: &HashMap<String, f64>) -> [Vec<f64>; 2] {
    let mut split: [Vec<f64>; 2] = Default::default();
    for (key, at) in acked {
        let steady = key.parse::<u64>().unwrap() >= FIRST;
        split[usize::from(steady)].push(started[key] - at);
    }
    split
}

fn run(warm: u32) -> ([Vec<f64>; 2], [Vec<f64>; 2]) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("stamp")).unwrap();
    std::fs::write(dir.path().join("stamp/index.js"), HANDLER).unwrap();
    std::fs::write(dir.path().join("app.yaml"), app(warm)).unwrap();
    let eddy = serve_quietly(&dir.path().join("app.yaml"));
    // The warm workers (if any) are ready a moment after start, as they would be long before
    // the first event of a server in service.
    std::thread::sleep(Duration::from_secs(2));
    let address = eddy.base.trim_start_matches("http://").to_string();
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let objects = paced(|i| {
        s3_request(
            &agent,
            &address,
            "PUT",
            &format!("/inbox/{i}"),
            &small_body(i),
            false,
        );
    });
    let rows = paced(|i| {
        let put = eddy.json("POST", "/_eddy/v1/tables/rows/rows", json!({"id": i}));
        assert!(put.status < 300, "{}", put.body);
    });
    let bucket = latencies(&objects, &started(&eddy, "on-object"));
    let table = latencies(&rows, &started(&eddy, "on-row"));
    drop(dir);
    (bucket, table)
}

fn quantiles(mut v: Vec<f64>) -> String {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)];
    format!(
        "{:.1} | {:.1} | {:.1} | {:.1}",
        at(0.5),
        at(0.99),
        at(0.999),
        v[v.len() - 1]
    )
}

fn main() {
    println!("{}", machine());
    let mut pooled: HashMap<(&str, u32, usize), Vec<f64>> = HashMap::new();
    for _ in 0..RUNS {
        for warm in [1, 0] {
            let (bucket, table) = run(warm);
            for (source, split) in [("bucket", bucket), ("table", table)] {
                for (part, v) in split.into_iter().enumerate() {
                    pooled.entry((source, warm, part)).or_default().extend(v);
                }
            }
        }
    }
    println!("| write → Node.js handler start, {RATE}/s | p50 ms | p99 ms | p99.9 ms | max ms |");
    println!("| --- | --- | --- | --- | --- |");
    for (part, when) in [(1, "steady"), (0, "first second after start")] {
        for (source, warm) in [("bucket", 1), ("bucket", 0), ("table", 1), ("table", 0)] {
            let label = if warm == 1 {
                "warm worker (default)"
            } else {
                "warm: 0"
            };
            let v = pooled.remove(&(source, warm, part)).unwrap();
            println!("| {source}, {label}, {when} | {} |", quantiles(v));
        }
    }
}
