//! The Lambda runtimes: `nodejs` and `python` (eddy's own bootstraps, which load
//! `handler: file.export` / `module.function` from the function's code folder) and `provided`
//! (any program that implements the Runtime API). Each runs in warm workers: a worker serves
//! one invocation at a time and is reused; more start as concurrent invocations need them (the
//! executor caps them at the function's concurrency); idle ones stop after a while; a worker
//! that crashed or timed out is replaced by a new one at the next invocation.

mod api;
mod limits;
mod worker;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use eddy_subscriptions::{FunctionSpec, Runtime};
use serde_json::Value;

pub use worker::INIT_TIMEOUT;
use worker::{Launch, Worker};

use crate::{Context, Outcome, Unrunnable, function_environment};

const NODE_BOOTSTRAP: &str = include_str!("bootstrap/node.js");
const PYTHON_BOOTSTRAP: &str = include_str!("bootstrap/python.py");

/// The warm workers of every function.
pub struct Workers {
    idle: Mutex<HashMap<String, Vec<(Launch, Worker)>>>,
    bootstraps: PathBuf,
    interpreters: OnceLock<Interpreters>,
    /// Given to every worker: where eddy is.
    env: Vec<(String, String)>,
    /// Given to each function's processes: its own credentials, by function name.
    function_env: std::sync::RwLock<HashMap<String, Vec<(String, String)>>>,
    idle_timeout: Duration,
    /// How memory and CPU limits are enforced here.
    limits: limits::Mechanism,
    /// Cap each worker's CPU at one core per 1,769 MB, as Lambda does.
    strict_cpu: bool,
}

/// The real interpreters, found once (a shim such as pyenv's costs tens of milliseconds at
/// every start).
#[derive(Clone, Debug)]
struct Interpreters {
    node: Option<PathBuf>,
    python: Option<PathBuf>,
}

impl Workers {
    /// Writes the bootstraps into `dir` and starts the reaper of idle workers.
    pub fn new(
        dir: &Path,
        env: Vec<(String, String)>,
        idle_timeout: Duration,
        strict_cpu: bool,
    ) -> std::io::Result<Arc<Self>> {
        std::fs::create_dir_all(dir)?;
        // Workers run in their code folders: the bootstraps' path must not be relative.
        let dir = &std::fs::canonicalize(dir)?;
        std::fs::write(dir.join("node.js"), NODE_BOOTSTRAP)?;
        std::fs::write(dir.join("python.py"), PYTHON_BOOTSTRAP)?;
        let workers = Arc::new(Self {
            idle: Mutex::new(HashMap::new()),
            bootstraps: dir.to_path_buf(),
            interpreters: OnceLock::new(),
            env,
            function_env: std::sync::RwLock::new(HashMap::new()),
            idle_timeout,
            limits: limits::Mechanism::detect(),
            strict_cpu,
        });
        tracing::info!(limits = workers.limits.describe(), "function limits");
        tokio::spawn(reap(Arc::downgrade(&workers)));
        // Finding the interpreters takes a moment (each is asked where it lives): do it now,
        // beside start-up, rather than inside the first invocation.
        let finder = workers.clone();
        std::thread::spawn(move || {
            finder.interpreters();
        });
        Ok(workers)
    }

    /// How memory and CPU limits are enforced on this machine, in words.
    pub fn limits(&self) -> String {
        self.limits.describe()
    }

    /// What a function's processes get from the platform: where eddy is, and the function's
    /// own credentials.
    pub fn environment(&self, function: &str) -> Vec<(String, String)> {
        let mut env = self.env.clone();
        let own = self.function_env.read().expect("env lock");
        env.extend(own.get(function).into_iter().flatten().cloned());
        env
    }

    /// Gives each function's processes these variables from now on (its credentials, when
    /// they are issued or rotated); workers started before keep theirs until they are retired.
    pub fn set_function_env(&self, env: HashMap<String, Vec<(String, String)>>) {
        *self.function_env.write().expect("env lock") = env;
    }

    /// Stops every idle worker, so the next invocations start fresh ones (after the app or
    /// its code changed). Workers busy now are stopped when they finish.
    pub fn retire_all(&self) {
        self.idle.lock().expect("idle lock").clear();
    }

    fn interpreters(&self) -> &Interpreters {
        self.interpreters.get_or_init(|| Interpreters {
            node: real_interpreter("node", &["-p", "process.execPath"]),
            python: real_interpreter("python3", &["-c", "import sys; print(sys.executable)"]),
        })
    }

    /// How `function` starts: its program, arguments, folder and environment.
    fn launch(&self, function: &FunctionSpec) -> Result<Launch, Unrunnable> {
        let missing = |what: &str| {
            Unrunnable(format!(
                "function `{}` needs {what}, which is not installed on this machine",
                function.name
            ))
        };
        let bootstrap = |name: &str| self.bootstraps.join(name).display().to_string();
        let (program, args, dir, handler) = match &function.runtime {
            Runtime::Nodejs { handler, code } => {
                let node = self
                    .interpreters()
                    .node
                    .clone()
                    .ok_or_else(|| missing("node"))?;
                // V8 keeps its heap below the limit, as Lambda's Node runtime sets it.
                let heap = (function.memory_mb * 85 / 100).max(16);
                let args = vec![format!("--max-old-space-size={heap}"), bootstrap("node.js")];
                (node, args, code.clone(), Some(handler.clone()))
            }
            Runtime::Python { handler, code } => {
                let python = self
                    .interpreters()
                    .python
                    .clone()
                    .ok_or_else(|| missing("python3"))?;
                (
                    python,
                    vec![bootstrap("python.py")],
                    code.clone(),
                    Some(handler.clone()),
                )
            }
            Runtime::Provided { command, dir } => (
                PathBuf::from(&command[0]),
                command[1..].to_vec(),
                dir.clone(),
                None,
            ),
            other => {
                return Err(Unrunnable(format!(
                    "{} functions do not run in workers",
                    other.name()
                )));
            }
        };
        // The worker runs in its code folder, and is told where that is: an absolute path.
        let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
        let mut env = function_environment(function);
        env.extend(self.environment(function.name.as_str()));
        env.push(("LAMBDA_TASK_ROOT".into(), dir.display().to_string()));
        env.push((
            "LAMBDA_RUNTIME_DIR".into(),
            self.bootstraps.display().to_string(),
        ));
        env.push(("PYTHONUNBUFFERED".into(), "1".into()));
        env.push((
            "AWS_LAMBDA_LOG_STREAM_NAME".into(),
            format!("eddy/[$LATEST]{}", uuid_like()),
        ));
        if let Some(handler) = handler {
            env.push(("_HANDLER".into(), handler));
        }
        Ok(Launch {
            program,
            args,
            dir,
            env,
            memory_mb: function.memory_mb,
        })
    }

    /// Runs one invocation on a warm worker of `function`, starting one if none is idle.
    pub async fn invoke(
        &self,
        function: &FunctionSpec,
        payload: &Value,
        context: &Context,
    ) -> Result<Outcome, Unrunnable> {
        let launch = self.launch(function)?;
        let name = function.name.to_string();
        let warm = {
            let mut idle = self.idle.lock().expect("idle lock");
            let pool = idle.entry(name.clone()).or_default();
            // A worker started for another configuration (an older app) is not reused.
            pool.retain(|(l, _)| same_start(l, &launch));
            pool.pop()
        };
        let (launch, mut worker) = match warm {
            Some(found) => found,
            None => match Worker::start(&launch, self.confinement(&launch)).await {
                Ok(worker) => (launch, worker),
                Err(error) => return Ok(Outcome::failed(error)),
            },
        };
        let (mut outcome, init) = worker.invoke(payload, context, function.timeout).await;
        outcome.init_duration = init;
        outcome.max_memory_mb = worker.max_memory_mb();
        if worker.healthy {
            let mut idle = self.idle.lock().expect("idle lock");
            idle.entry(name).or_default().push((launch, worker));
        }
        Ok(outcome)
    }

    fn confinement(&self, launch: &Launch) -> limits::Confinement {
        let name = format!("w{}", uuid_like());
        self.limits
            .confine(&name, launch.memory_mb, self.strict_cpu)
    }

    fn reap_idle(&self) {
        let cutoff = Instant::now() - self.idle_timeout;
        let mut idle = self.idle.lock().expect("idle lock");
        for pool in idle.values_mut() {
            pool.retain(|(_, w)| w.last_used > cutoff);
        }
    }
}

/// Two launches start the same worker when they differ at most in the log stream name.
fn same_start(a: &Launch, b: &Launch) -> bool {
    let env = |l: &Launch| -> Vec<(String, String)> {
        l.env
            .iter()
            .filter(|(k, _)| k != "AWS_LAMBDA_LOG_STREAM_NAME")
            .cloned()
            .collect()
    };
    a.program == b.program
        && a.args == b.args
        && a.dir == b.dir
        && a.memory_mb == b.memory_mb
        && env(a) == env(b)
}

/// Stops idle workers past their idle timeout, while the pools exist.
async fn reap(workers: Weak<Workers>) {
    loop {
        let every = match workers.upgrade() {
            Some(w) => (w.idle_timeout / 4).max(Duration::from_millis(100)),
            None => return,
        };
        tokio::time::sleep(every).await;
        match workers.upgrade() {
            Some(w) => w.reap_idle(),
            None => return,
        }
    }
}

/// The interpreter `name` on the PATH, resolved past shims by asking it where it lives.
fn real_interpreter(name: &str, ask: &[&str]) -> Option<PathBuf> {
    let output = std::process::Command::new(name).args(ask).output().ok()?;
    let path = String::from_utf8(output.stdout).ok()?;
    let path = PathBuf::from(path.trim());
    (output.status.success() && path.is_absolute()).then_some(path)
}

/// A unique enough name for a worker's log stream.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{:x}{:08x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
