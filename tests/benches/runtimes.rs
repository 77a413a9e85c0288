//! Runtime benchmarks: what the platform adds around a no-op handler, per runtime, and what
//! the function sandbox adds to that.
//!
//! - warm invoke: synchronous invocations of a no-op handler, one at a time, on a warm worker
//!   (`nodejs`, `python`) or a fresh process each time (`exec`), against an in-process no-op
//!   handler (the executor's own cost: the invocation record, the concurrency slot) measured in
//!   the same run;
//! - cold start: the first invocation on a new worker, against starting the bare interpreter
//!   (`node -e 0`, `python3 -c 0`) in the same round (and so the same moment of the machine);
//! - sandboxed and not: two executors in this process, one without a sandbox and one in the
//!   strongest mode this host allows, measured alternately in blocks.
//!
//! Run with `cargo bench -p eddy-tests --bench runtimes` (as root for the isolated mode). The
//! sandbox's helpers replace themselves with `eddy __sandbox-init` where the `eddy` binary was
//! built next to this benchmark (`cargo build --release -p eddy-cli` first), as `eddy serve`
//! does; otherwise they stay forked copies, and the report says so.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use eddy_core::{FunctionName, Lineage};
use eddy_executor::runtime::sandbox::{DEFAULT_UIDS, Sandbox, SandboxOptions};
use eddy_executor::{Context, Executor, ExecutorConfig, FunctionError, Handler, SystemClock};
use eddy_tests::bench::{machine, ms, percentile, runtime};
use eddy_tests::{app, start_executor_with};
use serde_json::{Value, json};

const WARM: usize = 1_000;
/// Warm invocations per block: the two executors take turns block by block.
const BLOCK: usize = 100;
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

/// How long `program args` takes to start and finish.
fn bare_start(program: &str, args: &[&str]) -> Duration {
    let started = Instant::now();
    let status = std::process::Command::new(program)
        .args(args)
        .status()
        .unwrap();
    assert!(status.success());
    started.elapsed()
}

fn interpreter(name: &str, ask: &[&str]) -> String {
    let out = std::process::Command::new(name).args(ask).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The `eddy` binary built beside this benchmark, to serve as the sandbox's init.
fn init_program() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let eddy = exe.parent()?.parent()?.join("eddy");
    eddy.exists().then_some(eddy)
}

fn main() {
    let root = tempfile::tempdir().unwrap();
    // Open to the functions' own users (the isolated sandbox runs them as such).
    std::fs::set_permissions(
        root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let code = root.path().join("code");
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
        let manifest = app(root.path(), MANIFEST);
        let (plain_dir, boxed_dir) = (root.path().join("plain"), root.path().join("boxed"));
        let init = init_program();
        let sandbox = Sandbox::start(SandboxOptions {
            mode: None,
            uids: DEFAULT_UIDS,
            data_dir: boxed_dir.join("data"),
            init_program: init.clone(),
        })
        .unwrap();
        println!(
            "sandbox: {} (helpers: {})",
            sandbox.mode(),
            init.as_ref().map_or("forked copies; build eddy-cli for its init".into(), |p| format!("{}", p.display()))
        );
        let (_plain_eddy, plain) =
            start_executor_with(&plain_dir, manifest.clone(), Arc::new(SystemClock), ExecutorConfig::default()).await;
        let (_boxed_eddy, boxed) = start_executor_with(
            &boxed_dir,
            manifest.clone(),
            Arc::new(SystemClock),
            ExecutorConfig {
                sandbox,
                ..ExecutorConfig::default()
            },
        )
        .await;
        for executor in [&plain, &boxed] {
            executor.register(FunctionName::new("in-process").unwrap(), Arc::new(Noop));
        }
        println!("| runtime | warm p50, no sandbox | warm p50, sandboxed | difference | warm p99, no sandbox | warm p99, sandboxed |");
        println!("| --- | --- | --- | --- | --- | --- |");
        for name in ["in-process", "node", "python", "exec"] {
            let mut times = [Vec::with_capacity(WARM), Vec::with_capacity(WARM)];
            for (executor, _) in [(&plain, 0), (&boxed, 1)] {
                for _ in 0..20 {
                    invoke(executor, name).await; // warm up
                }
            }
            for _ in 0..WARM / BLOCK {
                for (i, executor) in [&plain, &boxed].into_iter().enumerate() {
                    for _ in 0..BLOCK {
                        times[i].push(invoke(executor, name).await);
                    }
                }
            }
            for t in &mut times {
                t.sort();
            }
            let (a, b) = (ms(percentile(&times[0], 0.5)), ms(percentile(&times[1], 0.5)));
            println!(
                "| {name} | {a:.3} ms | {b:.3} ms | {:+.3} ms | {:.3} ms | {:.3} ms |",
                b - a,
                ms(percentile(&times[0], 0.99)),
                ms(percentile(&times[1], 0.99)),
            );
        }
        println!();
        println!("| runtime | cold start p50, no sandbox | cold start p50, sandboxed | difference | bare interpreter start p50 | no sandbox over bare, p50 of rounds |");
        println!("| --- | --- | --- | --- | --- | --- |");
        let node = interpreter("node", &["-p", "process.execPath"]);
        let python = interpreter("python3", &["-c", "import sys; print(sys.executable)"]);
        let interpreters = [("node", node, ["-e", "0"]), ("python", python, ["-c", "0"])];
        for (name, program, args) in interpreters {
            // Each round starts the bare interpreter next to the two cold starts, so that the
            // difference is taken at one moment of a machine whose speed drifts.
            let [mut plain_times, mut boxed_times, mut bare_times] =
                [(); 3].map(|()| Vec::with_capacity(COLD));
            let mut over = Vec::with_capacity(COLD);
            for _ in 0..COLD {
                let bare = bare_start(&program, &args);
                let mut cold = [Duration::ZERO; 2];
                for (i, executor) in [&plain, &boxed].into_iter().enumerate() {
                    // A new app retires the warm workers: the next invocation starts one.
                    executor.set_app(manifest.clone(), Default::default(), Default::default());
                    cold[i] = invoke(executor, name).await;
                }
                plain_times.push(cold[0]);
                boxed_times.push(cold[1]);
                bare_times.push(bare);
                over.push(ms(cold[0]) - ms(bare));
            }
            let p50 = |mut times: Vec<Duration>| {
                times.sort();
                ms(percentile(&times, 0.5))
            };
            let (a, b, bare) = (p50(plain_times), p50(boxed_times), p50(bare_times));
            over.sort_by(f64::total_cmp);
            println!(
                "| {name} | {a:.1} ms | {b:.1} ms | {:+.1} ms | {bare:.1} ms | {:+.1} ms |",
                b - a,
                over[over.len() / 2]
            );
        }
    });
}
