//! Records per second through a batched table trigger, with durable writes through the table
//! API, at batch sizes 1, 10, 100 and 1,000 (one batch at a time, as a stream's shard), at
//! batch size 100 with 4 batches at once (`parallel: 4`), and without batching, in the same
//! run:
//!
//! - **Node.js**: a real `eddy serve`, a warm Node.js handler (it counts the records of its
//!   batch and returns), rows written by `WRITERS` threads as signed `POST …/rows` of
//!   `ROWS_PER_POST` rows each;
//! - **in-process**: the libraries, an in-process handler doing the same, rows inserted by
//!   `WRITERS` tasks of `ROWS_PER_POST` rows each.
//!
//! The clock runs from the first write to the moment every delivery is done (`/_eddy/metrics`
//! for the server, the handler's count in-process); the write rate alone is shown beside it,
//! and the rate at which the records left when the writes ended were handled after them (while
//! the writers insert, deliveries share the writer with them; afterwards, a trigger's batches
//! follow one another). Medians of `RUNS`, each case on a fresh data directory.
//!
//! Run with `cargo bench -p eddy-cli --bench batches` (`EDDY_BENCH_BATCHES=10,100,100/4` for
//! some cases only: a batch size, `0` meaning no batch, and `/P` for `parallel: P`;
//! `EDDY_BENCH_RUNTIMES=in_process` or `nodejs` for one).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::{Eddy, deliveries_in, serve_quietly};
use eddy_core::{FunctionName, Lineage, TableName};
use eddy_executor::{Context, FunctionError, Handler, SystemClock};
use eddy_tests::bench::{machine, median, runtime};
use serde_json::{Value, json};

const RUNS: usize = 3;
const WRITERS: u64 = 4;
const ROWS_PER_POST: u64 = 200;
/// A trigger's batching: its size (`None`: no `batch:`, one event per invocation) and how many
/// of its batches may run at once.
#[derive(Clone, Copy)]
struct Case {
    size: Option<u32>,
    parallel: u32,
}

const CASES: [Case; 6] = [
    Case::one_at_a_time(None),
    Case::one_at_a_time(Some(1)),
    Case::one_at_a_time(Some(10)),
    Case::one_at_a_time(Some(100)),
    Case::one_at_a_time(Some(1000)),
    Case {
        size: Some(100),
        parallel: 4,
    },
];

impl Case {
    const fn one_at_a_time(size: Option<u32>) -> Self {
        Self { size, parallel: 1 }
    }

    /// `SIZE` or `SIZE/PARALLEL`, `0` meaning no batch.
    fn parse(text: &str) -> Self {
        let (size, parallel) = text.trim().split_once('/').unwrap_or((text.trim(), "1"));
        Self {
            size: Some(size.parse::<u32>().expect("a batch size")).filter(|n| *n > 0),
            parallel: parallel.parse().expect("a number of batches at once"),
        }
    }

    /// Records per case: fewer where each is an invocation, so every case takes seconds.
    fn records(self) -> u64 {
        match self.size {
            None | Some(1) => 4_000,
            _ => 40_000,
        }
    }

    fn label(self) -> String {
        match (self.size, self.parallel) {
            (None, _) => "no batch (one event per invocation)".into(),
            (Some(size), 1) => format!("batch {size}"),
            (Some(size), parallel) => format!("batch {size}, parallel {parallel}"),
        }
    }
}

const HANDLER: &str = r#"
let seen = 0;
exports.handler = async (event) => {
  seen += event.Records.length;
  return { batchItemFailures: [] };
};
"#;

fn manifest(runtime: &str, case: Case) -> String {
    let batch = case.size.map_or(String::new(), |size| {
        format!(", batch: {{size: {size}, parallel: {}}}", case.parallel)
    });
    format!(
        "tables: [{{name: t, primary_key: id, columns: {{id: integer, v: integer}}}}]
functions:
  - {{name: sink, {runtime}, concurrency: 4}}
triggers:
  - {{function: sink, source: table/t, events: [row:insert]{batch}}}
"
    )
}

/// Rows `from..to` as a JSON array.
fn rows(from: u64, to: u64) -> Value {
    json!(
        (from..to)
            .map(|id| json!({"id": id, "v": id}))
            .collect::<Vec<_>>()
    )
}

/// One run: seconds to write every row and to handle every record, and how many records were
/// handled when the writes ended.
struct Run {
    written: f64,
    delivered: f64,
    handled_when_written: u64,
}

impl Run {
    /// Records per second: all of them from the first write; the writes alone; and the records
    /// left when the writes ended, from then (none when nothing was left).
    fn rates(&self, total: u64) -> [Option<f64>; 3] {
        let left = total.saturating_sub(self.handled_when_written);
        [
            Some(total as f64 / self.delivered),
            Some(total as f64 / self.written),
            (left > 0).then(|| left as f64 / (self.delivered - self.written)),
        ]
    }
}

/// Writes and delivers `total` rows through `eddy serve` to a Node.js handler.
fn node(case: Case, total: u64) -> Run {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sink")).unwrap();
    std::fs::write(dir.path().join("sink/index.js"), HANDLER).unwrap();
    let runtime = "runtime: nodejs, handler: index.handler, code: ./sink";
    std::fs::write(dir.path().join("app.yaml"), manifest(runtime, case)).unwrap();
    let eddy = serve_quietly(&dir.path().join("app.yaml"));
    // The warm worker is up a moment after start.
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let eddy = &eddy;
            s.spawn(move || {
                let posts = total / ROWS_PER_POST;
                for p in (w..posts).step_by(WRITERS as usize) {
                    let from = p * ROWS_PER_POST;
                    let body = rows(from, from + ROWS_PER_POST);
                    let put = eddy.json("POST", "/_eddy/v1/tables/t/rows", body);
                    assert!(put.status < 300, "{}", put.body);
                }
            });
        }
    });
    let written = started.elapsed().as_secs_f64();
    let handled_when_written = deliveries_in(&eddy, "done");
    wait_done(&eddy, total);
    Run {
        written,
        delivered: started.elapsed().as_secs_f64(),
        handled_when_written,
    }
}

/// Waits until `/_eddy/metrics` counts `total` deliveries done.
fn wait_done(eddy: &Eddy, total: u64) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let done = deliveries_in(eddy, "done");
        if done >= total {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {done} of {total} delivered"
        );
        // Counting deliveries reads them all: seldom, so the count does not slow what it
        // measures (a tenth of a second on runs of seconds).
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Counts records.
struct Count(AtomicU64);

#[async_trait]
impl Handler for Count {
    async fn handle(&self, event: Value, _: Context) -> Result<Value, FunctionError> {
        let n = event["Records"].as_array().map_or(1, Vec::len);
        self.0.fetch_add(n as u64, Ordering::Relaxed);
        Ok(json!({"batchItemFailures": []}))
    }
}

/// Writes and delivers `total` rows through the libraries to an in-process handler.
async fn in_process(case: Case, total: u64) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let app = eddy_tests::app(dir.path(), &manifest("runtime: in_process", case));
    let (eddy, executor) = eddy_tests::start_executor(dir.path(), app, Arc::new(SystemClock)).await;
    let count = Arc::new(Count(AtomicU64::new(0)));
    executor.register(FunctionName::new("sink").unwrap(), count.clone());
    let table = TableName::new("t").unwrap();
    let started = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let tables = eddy.tables.clone();
            let table = table.clone();
            tokio::spawn(async move {
                let posts = total / ROWS_PER_POST;
                for p in (w..posts).step_by(WRITERS as usize) {
                    let from = p * ROWS_PER_POST;
                    let Value::Array(rows) = rows(from, from + ROWS_PER_POST) else {
                        unreachable!()
                    };
                    tables.insert(&table, rows, Lineage::root()).await.unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let written = started.elapsed().as_secs_f64();
    let handled_when_written = count.0.load(Ordering::Relaxed);
    // The handler's count, not the executor's (which reads every delivery): the wait costs
    // nothing that competes with the work measured.
    while count.0.load(Ordering::Relaxed) < total {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let delivered = started.elapsed().as_secs_f64();
    executor.shutdown().await;
    Run {
        written,
        delivered,
        handled_when_written,
    }
}

fn main() {
    println!("{}", machine());
    let rt = runtime();
    println!(
        "| table → handler, {WRITERS} writers × {ROWS_PER_POST} rows per write | records | Node.js records/s | Node.js writes/s | Node.js records/s after the writes | in-process records/s | in-process writes/s | in-process records/s after the writes |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let cases: Vec<Case> = match std::env::var("EDDY_BENCH_BATCHES") {
        Ok(list) => list.split(',').map(Case::parse).collect(),
        Err(_) => CASES.to_vec(),
    };
    let runtimes = std::env::var("EDDY_BENCH_RUNTIMES").unwrap_or_default();
    let wanted = |name: &str| runtimes.is_empty() || runtimes.contains(name);
    for case in cases {
        let total = case.records();
        let mut figures: [Vec<f64>; 6] = Default::default();
        for _ in 0..RUNS {
            let mut runs = Vec::new();
            if wanted("nodejs") {
                runs.push((0, node(case, total)));
            }
            if wanted("in_process") {
                runs.push((3, rt.block_on(in_process(case, total))));
            }
            for (column, run) in runs {
                for (i, rate) in run.rates(total).into_iter().enumerate() {
                    figures[column + i].extend(rate);
                }
            }
        }
        // A figure no run gave (a runtime not run, nothing left after the writes) is `—`.
        let cells = figures.map(|v| {
            if v.is_empty() {
                "—".to_string()
            } else {
                format!("{:.0}", median(v))
            }
        });
        println!("| {} | {total} | {} |", case.label(), cells.join(" | "));
    }
}
