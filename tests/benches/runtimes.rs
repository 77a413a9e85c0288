//! Runtime benchmarks: what the platform adds around a no-op handler, per runtime.
//!
//! - warm invoke: synchronous invocations of a no-op handler, one at a time, on a warm worker
//!   (`nodejs`, `python`) or a fresh process each time (`exec`), against an in-process no-op
//!   handler (the executor's own cost: the invocation record, the concurrency slot) measured in
//!   the same run;
//! - cold start: the first invocation on a new worker, against starting the bare interpreter
//!   (`node -e 0`, `python3 -c 0`) in the same run.
//!
//! Run with `cargo bench -p eddy-tests --bench runtimes`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use eddy_core::{FunctionName, Lineage};
use eddy_executor::{Context, Executor, FunctionError, Handler, SystemClock};
use eddy_tests::bench::{machine, ms, percentile, runtime};
use eddy_tests::{app, start_executor};
use serde_json::{Value, json};

const WARM: usize = 1_000;
const COLD: usize = 20;

struct Noop;

#[async_trait]
impl Handler for Noop {
    async fn handle(&self, _event: Value, _context: Context) -> Result<Value, FunctionError> {
        Ok(Value::Null)
    }
}

const MANIFEST: &str = "
functions:
  - {name: in-process, runtime: in_process}
  - {name: node, runtime: nodejs, handler: index.handler, code: ./code}
  - {name: python, runtime: python, handler: app.handler, code: ./code}
  - {name: exec, runtime: exec, command: [/bin/true]}
";

async fn invoke(executor: &Executor, name: &str) -> Duration {
    let started = Instant::now();
    let done = executor
        .invoke(
            &FunctionName::new(name).unwrap(),
            json!({}),
            Lineage::root(),
        )
        .await
        .unwrap();
    assert!(done.outcome.result.is_ok(), "{name}: {:?}", done.outcome);
    started.elapsed()
}

/// Milliseconds to start and finish `program args`, median of `COLD` runs.
fn bare_start(program: &str, args: &[&str]) -> f64 {
    let mut times: Vec<Duration> = (0..COLD)
        .map(|_| {
            let started = Instant::now();
            let status = std::process::Command::new(program)
                .args(args)
                .status()
                .unwrap();
            assert!(status.success());
            started.elapsed()
        })
        .collect();
    times.sort();
    ms(percentile(&times, 0.5))
}

fn interpreter(name: &str, ask: &[&str]) -> String {
    let out = std::process::Command::new(name).args(ask).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let code = dir.path().join("code");
    std::fs::create_dir_all(&code).unwrap();
    std::fs::write(
        code.join("index.js"),
        "exports.handler = async () => null;\n",
    )
    .unwrap();
    std::fs::write(
        code.join("app.py"),
        "def handler(event, context):\n    return None\n",
    )
    .unwrap();
    let rt = runtime();
    println!("{}", machine());
    rt.block_on(async {
        let manifest = app(dir.path(), MANIFEST);
        let (_eddy, executor) = start_executor(dir.path(), manifest.clone(), Arc::new(SystemClock)).await;
        executor.register(FunctionName::new("in-process").unwrap(), Arc::new(Noop));
        println!("| runtime | warm p50 | warm p99 | over in-process p50 |");
        println!("| --- | --- | --- | --- |");
        let mut baseline = 0.0;
        for name in ["in-process", "node", "python", "exec"] {
            for _ in 0..20 {
                invoke(&executor, name).await; // warm up
            }
            let mut times = Vec::with_capacity(WARM);
            for _ in 0..WARM {
                times.push(invoke(&executor, name).await);
            }
            times.sort();
            let p50 = ms(percentile(&times, 0.5));
            if name == "in-process" {
                baseline = p50;
            }
            println!(
                "| {name} | {p50:.3} ms | {:.3} ms | +{:.3} ms |",
                ms(percentile(&times, 0.99)),
                p50 - baseline
            );
        }
        println!();
        println!("| runtime | cold start p50 (first invocation on a new worker) | bare interpreter start p50 |");
        println!("| --- | --- | --- |");
        let node = interpreter("node", &["-p", "process.execPath"]);
        let python = interpreter("python3", &["-c", "import sys; print(sys.executable)"]);
        let bare = [
            ("node", bare_start(&node, &["-e", "0"])),
            ("python", bare_start(&python, &["-c", "0"])),
        ];
        for (name, bare) in bare {
            let mut times = Vec::with_capacity(COLD);
            for _ in 0..COLD {
                // A new app retires the warm workers: the next invocation starts one.
                executor.set_app(manifest.clone(), Default::default());
                times.push(invoke(&executor, name).await);
            }
            times.sort();
            println!(
                "| {name} | {:.1} ms | {bare:.1} ms |",
                ms(percentile(&times, 0.5))
            );
        }
    });
}
