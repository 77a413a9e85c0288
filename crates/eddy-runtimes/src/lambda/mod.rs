//! The Lambda runtimes: `nodejs` and `python` (eddy's own bootstraps, which load
//! `handler: file.export` / `module.function` from the function's code folder) and `provided`
//! (any program that implements the Runtime API). Each runs in warm workers: a worker serves
//! one invocation at a time and is reused; more start as concurrent invocations need them (the
//! executor caps them at the function's concurrency); idle ones stop after a while, except the
//! function's `warm` ones, which are started ahead of its first invocation and kept; a worker
//! that crashed or timed out is replaced by a new one at the next invocation. A new worker's
//! process is its function's spare when there is one: forked into its groups ahead of need and
//! held ([`crate::sandbox::hold`]), so a cold start does not wait for that join.

mod api;
mod limits;
mod worker;

use std::collections::HashMap;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use eddy_subscriptions::{FunctionSpec, Runtime};

pub use worker::INIT_TIMEOUT;
use worker::{Launch, Parked, Worker};

use crate::programs::Interpreters;
use crate::sandbox::{Sandbox, Wait};
use crate::{Context, FunctionError, Outcome, Unrunnable, function_environment};

const NODE_BOOTSTRAP: &str = include_str!("bootstrap/node.js");
const PYTHON_BOOTSTRAP: &str = include_str!("bootstrap/python.py");

/// How function processes are started and limited.
pub struct WorkerConfig {
    /// Given to every worker: where eddy is.
    pub env: Vec<(String, String)>,
    /// A warm worker unused this long is stopped.
    pub idle_timeout: Duration,
    /// Cap each worker's CPU at one core per 1,769 MB, as Lambda does.
    pub strict_cpu: bool,
    /// What keeps function processes from eddy and from each other.
    pub sandbox: Arc<Sandbox>,
}

/// The warm workers of every function.
pub struct Workers {
    idle: Mutex<HashMap<String, Vec<(Launch, Worker)>>>,
    /// Each function's workers on their way and wanted: how many idle ones to keep ready
    /// (its `warm`), how many are starting, how many invocations wait for one.
    pools: Mutex<HashMap<String, Pool>>,
    /// Told whenever a worker joins an idle pool.
    freed: tokio::sync::Notify,
    /// Each function's spare: the process of its next worker, parked ahead of need.
    spares: Mutex<HashMap<String, Spare>>,
    /// Counts [`retire_all`](Self::retire_all)s: a worker started or busy across one loaded
    /// the old app or code, and does not join the idle pool.
    generation: std::sync::atomic::AtomicU64,
    interpreters: Interpreters,
    config: WorkerConfig,
    /// Given to each function's processes: its own credentials, by function name.
    function_env: std::sync::RwLock<HashMap<String, Vec<(String, String)>>>,
    /// How memory and CPU limits are enforced here.
    limits: limits::Mechanism,
}

/// A function's workers on their way and wanted: how many idle ones to keep (its `warm`), how
/// many are starting, and how many invocations wait for one.
#[derive(Clone, Copy, Default)]
struct Pool {
    keep: usize,
    starting: usize,
    waiting: usize,
}

/// A function's spare worker process. A new worker's process joins its cgroups before it runs
/// anything, and on some hosts that join waits ~10 ms for an RCU grace period; a spare has
/// done it ahead of the function's next start, which then only opens its gate.
enum Spare {
    /// Being forked and joined.
    Parking,
    /// Forked for `launch` and held since `since`.
    Held {
        launch: Launch,
        parked: Box<Parked>,
        since: Instant,
    },
}

/// A worker started for one waiting invocation: its result, and whether the invocation (or
/// the start, handing it over) has claimed it.
struct OwnStart {
    taken: Arc<std::sync::atomic::AtomicBool>,
    result: tokio::sync::oneshot::Receiver<Result<(Worker, Duration), Outcome>>,
}

/// An invocation counted among those waiting for a worker of a function, while it waits.
struct Waiting<'a> {
    workers: &'a Workers,
    name: String,
}

impl<'a> Waiting<'a> {
    fn enter(workers: &'a Workers, name: &str) -> Self {
        let mut warm = workers.pools.lock().expect("pools lock");
        warm.entry(name.to_string()).or_default().waiting += 1;
        Self {
            workers,
            name: name.to_string(),
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut warm = self.workers.pools.lock().expect("pools lock");
        if let Some(entry) = warm.get_mut(&self.name) {
            entry.waiting -= 1;
        }
    }
}

impl Workers {
    /// Starts the reaper of idle workers.
    pub fn new(config: WorkerConfig) -> Arc<Self> {
        let workers = Arc::new(Self {
            idle: Mutex::new(HashMap::new()),
            pools: Mutex::new(HashMap::new()),
            freed: tokio::sync::Notify::new(),
            spares: Mutex::new(HashMap::new()),
            generation: std::sync::atomic::AtomicU64::new(0),
            interpreters: Interpreters::default(),
            config,
            function_env: std::sync::RwLock::new(HashMap::new()),
            limits: limits::Mechanism::detect(),
        });
        tracing::info!(limits = workers.limits.describe(), "function limits");
        tokio::spawn(reap(Arc::downgrade(&workers)));
        workers
    }

    pub fn sandbox(&self) -> &Sandbox {
        &self.config.sandbox
    }

    /// What a function's processes get from the platform: where eddy is, the function's own
    /// credentials, and a home in its private scratch space when it has one.
    pub fn environment(&self, function: &str) -> Vec<(String, String)> {
        let mut env = self.config.env.clone();
        if let Some(home) = self.config.sandbox.home() {
            env.push(("HOME".into(), home.into()));
        }
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
        let mut idle = self.idle.lock().expect("idle lock");
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        idle.clear();
    }

    /// Keeps `count` workers of `function` started, initialised and idle ahead of its
    /// invocations (its `warm`), starting the missing ones in the background; the reaper
    /// leaves that many however long they wait. A spare is parked too, so that even the
    /// function's first cold start finds its process in its groups. A function that cannot
    /// run is left to its invocations to report.
    pub fn keep_warm(self: &Arc<Self>, function: &FunctionSpec, count: usize) {
        let name = function.name.to_string();
        let Ok(launch) = self.launch(function) else {
            return;
        };
        self.park_spare(function, &launch);
        let missing = {
            let idle = self.idle.lock().expect("idle lock");
            let ready = idle.get(&name).map_or(0, |pool| {
                pool.iter().filter(|(l, _)| same_start(l, &launch)).count()
            });
            let mut warm = self.pools.lock().expect("pools lock");
            let entry = warm.entry(name.clone()).or_default();
            entry.keep = count;
            let missing = count.saturating_sub(ready + entry.starting);
            entry.starting += missing;
            missing
        };
        for _ in 0..missing {
            let (workers, function, launch) = (self.clone(), function.clone(), launch.clone());
            tokio::spawn(async move {
                let generation = workers.generation();
                let warmed = workers.start_ready(&function, &launch).await;
                if let Some(entry) = workers
                    .pools
                    .lock()
                    .expect("pools lock")
                    .get_mut(function.name.as_str())
                {
                    entry.starting -= 1;
                }
                match warmed {
                    Ok((worker, _)) => {
                        workers.release(function.name.to_string(), launch, worker, generation);
                    }
                    Err(outcome) => {
                        tracing::warn!(
                            function = %function.name,
                            error = outcome.result.err().map(|e| e.message).unwrap_or_default(),
                            "a warm worker did not start; invocations will start their own"
                        );
                        // Invocations waiting for this one start their own.
                        workers.freed.notify_waiters();
                    }
                }
            });
        }
    }

    /// A new worker of `function`, initialised (its handler loaded) and ready for work, and
    /// how long that took; or the outcome of an invocation that could not start it. It is the
    /// function's spare when that was parked for the same launch; a worker that starts leaves a
    /// new spare parked behind it.
    async fn start_ready(
        self: &Arc<Self>,
        function: &FunctionSpec,
        launch: &Launch,
    ) -> Result<(Worker, Duration), Outcome> {
        let parked = match self.take_spare(function.name.as_str(), launch) {
            Some(parked) => parked,
            None => self
                .park(function, launch, Wait::Brief)
                .await
                .map_err(Outcome::failed)?,
        };
        let started = Worker::start_ready(parked).await;
        if started.is_ok() {
            self.park_spare(function, launch);
        }
        started
    }

    /// A process for a new worker of `function`, forked into its groups and held for a `wait`
    /// as long as it says.
    async fn park(
        &self,
        function: &FunctionSpec,
        launch: &Launch,
        wait: Wait,
    ) -> Result<Parked, FunctionError> {
        let jail = self
            .config
            .sandbox
            .jail(
                function.name.as_str(),
                &launch.program,
                &launch.needs,
                &launch.dir,
            )
            .map_err(|e| FunctionError::new("Runtime.Unknown", e.0))?;
        Worker::park(launch, self.confinement(launch), jail, wait).await
    }

    /// The spare of function `name`, if it was parked for `launch`; one parked for another
    /// launch (an older configuration) is dropped, and its process ends.
    fn take_spare(&self, name: &str, launch: &Launch) -> Option<Parked> {
        let mut spares = self.spares.lock().expect("spares lock");
        match spares.remove(name)? {
            Spare::Held {
                launch: l, parked, ..
            } if same_start(&l, launch) => Some(*parked),
            Spare::Held { .. } => None,
            Spare::Parking => {
                spares.insert(name.to_string(), Spare::Parking);
                None
            }
        }
    }

    /// Parks a spare for `function` in the background, unless it has one for `launch` or one
    /// is on its way. One held for another launch (an older configuration) is dropped, and its
    /// process ends.
    fn park_spare(self: &Arc<Self>, function: &FunctionSpec, launch: &Launch) {
        let name = function.name.to_string();
        {
            let mut spares = self.spares.lock().expect("spares lock");
            match spares.get(&name) {
                Some(Spare::Parking) => return,
                Some(Spare::Held { launch: held, .. }) if same_start(held, launch) => return,
                _ => {}
            }
            spares.insert(name.clone(), Spare::Parking);
        }
        let (workers, function, launch) = (self.clone(), function.clone(), launch.clone());
        tokio::spawn(async move {
            let parked = workers.park(&function, &launch, Wait::Long).await;
            let mut spares = workers.spares.lock().expect("spares lock");
            let Some(Spare::Parking) = spares.get(&name) else {
                return;
            };
            match parked {
                Ok(parked) => {
                    let since = Instant::now();
                    spares.insert(
                        name,
                        Spare::Held {
                            launch,
                            parked: Box::new(parked),
                            since,
                        },
                    );
                }
                Err(error) => {
                    tracing::warn!(function = %name, error = error.message, "a spare worker process could not be started");
                    spares.remove(&name);
                }
            }
        });
    }

    /// Puts a ready worker in its function's idle pool (unless it was started for an app or
    /// code retired since) and tells invocations waiting for one.
    fn release(&self, name: String, launch: Launch, worker: Worker, generation: u64) {
        let mut idle = self.idle.lock().expect("idle lock");
        if worker.healthy && self.generation() == generation {
            idle.entry(name).or_default().push((launch, worker));
            self.freed.notify_waiters();
        }
    }

    /// An idle worker of `function` started as `launch` would be, if there is one.
    fn idle_worker(&self, name: &str, launch: &Launch) -> Option<(Launch, Worker)> {
        let mut idle = self.idle.lock().expect("idle lock");
        let pool = idle.entry(name.to_string()).or_default();
        // A worker started for another configuration (an older app) is not reused.
        pool.retain(|(l, _)| same_start(l, launch));
        pool.pop()
    }

    fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(crate) fn interpreters(&self) -> &Interpreters {
        &self.interpreters
    }

    /// Looks for the interpreter `function` runs, unless it was looked for before: looking
    /// runs it (tens of milliseconds), which is better done ahead than inside an invocation.
    /// Blocks while it looks.
    pub fn look_for_interpreter(&self, function: &FunctionSpec) {
        let program = match &function.runtime {
            Runtime::Nodejs { .. } => "node",
            Runtime::Python { .. } => "python3",
            Runtime::Exec { command, .. } | Runtime::Provided { command, .. } => &command[0],
            _ => return,
        };
        let _ = self.interpreters.named(program);
    }

    /// How `function` starts: its program, arguments, folder and environment.
    fn launch(&self, function: &FunctionSpec) -> Result<Launch, Unrunnable> {
        let missing = |what: &str| {
            Unrunnable(format!(
                "function `{}` needs {what}, which is not installed on this machine",
                function.name
            ))
        };
        let interpreters = self.interpreters();
        let (program, args, dir, handler) = match &function.runtime {
            Runtime::Nodejs { handler, code } => {
                let node = interpreters.node().ok_or_else(|| missing("node"))?;
                // V8 keeps its heap below the limit, as Lambda's Node runtime sets it.
                let heap = (function.memory_mb * 85 / 100).max(16);
                // The bootstrap travels on the command line: no file of eddy's to share.
                let args = vec![
                    format!("--max-old-space-size={heap}"),
                    "-e".into(),
                    NODE_BOOTSTRAP.into(),
                ];
                (node.program(), args, code.clone(), Some(handler.clone()))
            }
            Runtime::Python { handler, code } => {
                let python = interpreters.python().ok_or_else(|| missing("python3"))?;
                let args = vec!["-c".into(), PYTHON_BOOTSTRAP.into()];
                (python.program(), args, code.clone(), Some(handler.clone()))
            }
            Runtime::Provided { command, dir } => {
                let program = interpreters.resolve(&command[0], dir).ok_or_else(|| {
                    Unrunnable(format!(
                        "function `{}` runs {:?}, which is not on eddy's PATH or in its folder",
                        function.name, command[0]
                    ))
                })?;
                (program, command[1..].to_vec(), dir.clone(), None)
            }
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
        env.push(("PYTHONUNBUFFERED".into(), "1".into()));
        // The code folder is read-only to a sandboxed function: no bytecode cache there.
        env.push(("PYTHONDONTWRITEBYTECODE".into(), "1".into()));
        env.push((
            "AWS_LAMBDA_LOG_STREAM_NAME".into(),
            format!("eddy/[$LATEST]{}", uuid_like()),
        ));
        if let Some(handler) = handler {
            env.push(("_HANDLER".into(), handler));
        }
        Ok(Launch {
            program: program.path,
            needs: program.needs,
            args,
            dir,
            env,
            memory_mb: function.memory_mb,
        })
    }

    /// Runs one invocation on a warm worker of `function`. When none is idle it takes the first
    /// that is ready ([`first_ready`](Self::first_ready)): one a busy invocation frees, or one
    /// started for it — so a burst never queues behind a process still starting while a warm
    /// one frees sooner.
    pub async fn invoke(
        self: &Arc<Self>,
        function: &FunctionSpec,
        payload: &crate::Payload,
        context: &Context,
    ) -> Result<Outcome, Unrunnable> {
        let launch = self.launch(function)?;
        let name = function.name.to_string();
        let generation = self.generation();
        let (launch, mut worker, init) = match self.idle_worker(&name, &launch) {
            Some((launch, worker)) => (launch, worker, None),
            None => match self.first_ready(function, launch).await {
                Ok(found) => found,
                Err(outcome) => return Ok(outcome),
            },
        };
        let (mut outcome, cold) = worker.invoke(payload, context, function.timeout).await;
        outcome.init_duration = init.or(cold);
        outcome.max_memory_mb = worker.max_memory_mb();
        self.release(name, launch, worker, generation);
        Ok(outcome)
    }

    /// The first ready worker of `function` for an invocation that found none idle: one another
    /// invocation releases, or one started for it. A worker is started only while fewer are
    /// starting than invocations wait (a start another waiter made may serve this one), so a
    /// burst never starts more processes than it has invocations waiting, and no invocation
    /// waits for a start that failed.
    async fn first_ready(
        self: &Arc<Self>,
        function: &FunctionSpec,
        launch: Launch,
    ) -> Result<(Launch, Worker, Option<Duration>), Outcome> {
        let name = function.name.to_string();
        let _waiting = Waiting::enter(self, &name);
        let mut own: Option<OwnStart> = None;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some((found_launch, worker)) = self.idle_worker(&name, &launch) {
                // Claiming it marks the own start taken, if there is one: it then joins the
                // pool when ready — unless it was handed over already.
                match &mut own {
                    // The own start was handed over just now: keep this one for others.
                    Some(start) if start.taken.swap(true, SeqCst) => {
                        self.release(name.clone(), found_launch, worker, self.generation());
                    }
                    _ => return Ok((found_launch, worker, None)),
                }
            } else if own.is_none() && self.may_start(&name) {
                own = Some(self.start_in_background(function, launch.clone()));
            }
            let started = async {
                match &mut own {
                    Some(start) => (&mut start.result).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                result = started => {
                    let lost = || {
                        Outcome::failed(FunctionError::new("Runtime.Unknown", "the worker's start was lost"))
                    };
                    let (worker, init) = result.map_err(|_| lost())??;
                    return Ok((launch, worker, Some(init)));
                }
                _ = &mut freed => {}
            }
        }
    }

    /// Whether an invocation waiting for a worker of `name` may start one: fewer are starting
    /// than invocations wait. Counts the start when it may.
    fn may_start(&self, name: &str) -> bool {
        let mut warm = self.pools.lock().expect("pools lock");
        let entry = warm.entry(name.to_string()).or_default();
        let may = entry.starting < entry.waiting;
        entry.starting += usize::from(may);
        may
    }

    /// Starts a worker for a waiting invocation. Ready first, it is handed to the invocation;
    /// if the invocation took another meanwhile, it joins the pool; a failed start wakes the
    /// waiters, so one of them starts anew.
    fn start_in_background(self: &Arc<Self>, function: &FunctionSpec, launch: Launch) -> OwnStart {
        let (result_tx, result) = tokio::sync::oneshot::channel();
        let taken = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (workers, function, claimed) = (self.clone(), function.clone(), taken.clone());
        let generation = self.generation();
        tokio::spawn(async move {
            let started = workers.start_ready(&function, &launch).await;
            let name = function.name.to_string();
            if let Some(entry) = workers.pools.lock().expect("pools lock").get_mut(&name) {
                entry.starting -= 1;
            }
            let unclaimed = if claimed.swap(true, SeqCst) {
                started
            } else {
                match result_tx.send(started) {
                    Ok(()) => return,
                    Err(unsent) => unsent,
                }
            };
            match unclaimed {
                Ok((worker, _)) => workers.release(name, launch, worker, generation),
                Err(_) => workers.freed.notify_waiters(),
            }
        });
        OwnStart { taken, result }
    }

    fn confinement(&self, launch: &Launch) -> limits::Confinement {
        let name = format!("w{}", uuid_like());
        self.limits
            .confine(&name, launch.memory_mb, self.config.strict_cpu)
    }

    /// Stops workers idle past the timeout, but for each function's `warm` most recently
    /// used ones.
    fn reap_idle(&self) {
        let cutoff = Instant::now() - self.config.idle_timeout;
        let mut idle = self.idle.lock().expect("idle lock");
        let warm = self.pools.lock().expect("pools lock");
        for (name, pool) in idle.iter_mut() {
            let keep = warm.get(name).map_or(0, |w| w.keep);
            pool.sort_by_key(|(_, w)| w.last_used);
            let stale = pool.iter().filter(|(_, w)| w.last_used <= cutoff).count();
            let stop = stale.min(pool.len().saturating_sub(keep));
            pool.drain(..stop);
        }
        // A spare stays while its function keeps workers; one held past the idle timeout
        // without any (a function gone from the app, or unused) ends.
        self.spares
            .lock()
            .expect("spares lock")
            .retain(|name, spare| match spare {
                Spare::Parking => true,
                Spare::Held { since, .. } => {
                    *since > cutoff || idle.get(name).is_some_and(|pool| !pool.is_empty())
                }
            });
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
        && a.needs == b.needs
        && a.args == b.args
        && a.dir == b.dir
        && a.memory_mb == b.memory_mb
        && env(a) == env(b)
}

/// Stops idle workers past their idle timeout, while the pools exist.
async fn reap(workers: Weak<Workers>) {
    loop {
        let every = match workers.upgrade() {
            Some(w) => (w.config.idle_timeout / 4).max(Duration::from_millis(100)),
            None => return,
        };
        tokio::time::sleep(every).await;
        match workers.upgrade() {
            Some(w) => w.reap_idle(),
            None => return,
        }
    }
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
