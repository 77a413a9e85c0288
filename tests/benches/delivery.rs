//! Delivery benchmarks with an in-process no-op handler and durable writes:
//!
//! - latency from an acknowledged (committed) row insert to the start of its handler, one
//!   insert at a time: for an unordered trigger (a delivery created leased runs at once) and for
//!   a `per_key` one (each delivery waits for the scheduler to lease it in its key's order);
//! - sustained throughput: 64 concurrent writers insert rows (each its own key), and the clock
//!   stops when every delivery has been settled as done; for both kinds of trigger.
//!
//! Run with `cargo bench -p eddy-tests --bench delivery`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use eddy_core::{FunctionName, Lineage, TableName};
use eddy_executor::{Context, Executor, FunctionError, Handler, SystemClock};
use eddy_tests::bench::{ms, runtime};
use eddy_tests::{Eddy, app, start_executor};
use serde_json::{Value, json};
use tokio::sync::mpsc;

const LATENCY_SAMPLES: usize = 2_000;
const THROUGHPUT_ROWS: u64 = 20_000;
const WRITERS: u64 = 64;

/// Notes when each handler call starts.
struct Stamp(mpsc::UnboundedSender<Instant>);

#[async_trait]
impl Handler for Stamp {
    async fn handle(&self, _event: Value, _context: Context) -> Result<Value, FunctionError> {
        let _ = self.0.send(Instant::now());
        Ok(Value::Null)
    }
}

/// Does nothing.
struct Noop(Mutex<u64>);

#[async_trait]
impl Handler for Noop {
    async fn handle(&self, _event: Value, _context: Context) -> Result<Value, FunctionError> {
        *self.0.lock().unwrap() += 1;
        Ok(Value::Null)
    }
}

async fn setup(dir: &std::path::Path, concurrency: u32, ordering: &str) -> (Eddy, Executor) {
    let manifest = format!(
        "tables: [{{name: t, primary_key: id, columns: {{id: integer, v: integer}}}}]
functions: [{{name: h, runtime: in_process, concurrency: {concurrency}}}]
triggers: [{{function: h, source: table/t, events: [row:insert], ordering: {ordering}}}]
"
    );
    start_executor(dir, app(dir, &manifest), Arc::new(SystemClock)).await
}

fn main() {
    let rt = runtime();
    let root = tempfile::tempdir().unwrap();
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().unwrap()
    );
    rt.block_on(latency(&root.path().join("latency"), "unordered"));
    rt.block_on(latency(&root.path().join("latency-per-key"), "per_key"));
    rt.block_on(throughput(&root.path().join("throughput"), "unordered"));
    rt.block_on(throughput(
        &root.path().join("throughput-per-key"),
        "per_key",
    ));
}

async fn latency(dir: &std::path::Path, ordering: &str) {
    let (eddy, executor) = setup(dir, 4, ordering).await;
    let (tx, mut started) = mpsc::unbounded_channel();
    executor.register(FunctionName::new("h").unwrap(), Arc::new(Stamp(tx)));
    let table = TableName::new("t").unwrap();
    let mut samples = Vec::with_capacity(LATENCY_SAMPLES);
    for i in 0..LATENCY_SAMPLES as i64 {
        eddy.tables
            .insert(&table, vec![json!({"id": i, "v": i})], Lineage::root())
            .await
            .unwrap();
        let committed = Instant::now();
        let start = started.recv().await.unwrap();
        // The handler may start before the writer's acknowledgement reaches the caller.
        samples.push(start.saturating_duration_since(committed));
    }
    samples.sort();
    let pick = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "latency from an acknowledged insert to the handler's start, {ordering} \
         ({LATENCY_SAMPLES} inserts, one at a time):"
    );
    println!(
        "  p50 {:.3} ms   p99 {:.3} ms   p99.9 {:.3} ms",
        ms(pick(0.5)),
        ms(pick(0.99)),
        ms(pick(0.999))
    );
    executor.shutdown().await;
}

async fn throughput(dir: &std::path::Path, ordering: &str) {
    let (eddy, executor) = setup(dir, 64, ordering).await;
    let noop = Arc::new(Noop(Mutex::new(0)));
    executor.register(FunctionName::new("h").unwrap(), noop.clone());
    let table = TableName::new("t").unwrap();
    let start = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (tables, table) = (eddy.tables.clone(), table.clone());
            tokio::spawn(async move {
                for i in (w..THROUGHPUT_ROWS).step_by(WRITERS as usize) {
                    tables
                        .insert(&table, vec![json!({"id": i, "v": i})], Lineage::root())
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let written = start.elapsed();
    loop {
        if executor.counts().await.unwrap().done >= THROUGHPUT_ROWS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed();
    println!(
        "sustained throughput, {ordering}, {THROUGHPUT_ROWS} durable inserts (each its own key) \
         by {WRITERS} writers, no-op handler:"
    );
    println!(
        "  {:.0} events/s delivered end to end ({:.0} inserts/s while delivering; all settled after {:.2} s)",
        THROUGHPUT_ROWS as f64 / elapsed.as_secs_f64(),
        THROUGHPUT_ROWS as f64 / written.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    assert_eq!(*noop.0.lock().unwrap(), THROUGHPUT_ROWS);
    executor.shutdown().await;
}
