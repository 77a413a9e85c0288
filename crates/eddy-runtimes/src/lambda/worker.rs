//! One warm worker: a process that speaks the Runtime API to its own listener, runs one
//! invocation at a time, and is killed — with its whole process group — when it times out,
//! crashes, or is retired.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal as UnixSignal, killpg};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::process::Command;
use tokio::sync::{mpsc, oneshot};

use super::api::{self, Pending, Reply, Signal};
use crate::sandbox::{Gate, Jail, Program, Wait};
use crate::{Context, FunctionError, LOG_LIMIT, Outcome};

/// What starts a worker process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Launch {
    pub program: PathBuf,
    /// Directories the program needs to see besides its folder (its installation).
    pub needs: Vec<PathBuf>,
    pub args: Vec<String>,
    pub dir: PathBuf,
    pub env: Vec<(String, String)>,
    pub memory_mb: u32,
}

/// How long a worker may take to start and ask for its first invocation, beyond the
/// invocation's own timeout (Lambda gives initialisation its own 10 s).
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The log of the invocation running now (and of initialisation, which the first invocation
/// reports), bounded.
#[derive(Default)]
struct LogBuffer {
    text: Vec<u8>,
    cut: bool,
}

pub struct Worker {
    queue: mpsc::Sender<Pending>,
    signals: mpsc::UnboundedReceiver<Signal>,
    exited: oneshot::Receiver<std::io::Result<std::process::ExitStatus>>,
    logs: Arc<Mutex<LogBuffer>>,
    group: Option<Pid>,
    pid: u32,
    /// Whether the worker has asked for its first invocation (its init is over).
    ready: bool,
    started: Instant,
    /// Usable for another invocation.
    pub healthy: bool,
    pub last_used: Instant,
    api: tokio::task::JoinHandle<()>,
    /// The worker's cgroups (dropped after the process is killed) or its rlimit.
    confinement: super::limits::Confinement,
    /// The read ends of its stdout and stderr, to see what is not read yet.
    pipes: Vec<OwnedFd>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
        self.api.abort();
    }
}

/// A worker whose process is forked and in its groups, held before it runs anything of the
/// function (see [`crate::sandbox::hold`]) until [`Parked::run`].
pub struct Parked {
    worker: Worker,
    gate: Gate,
}

impl Parked {
    /// Opens the gate: the process enters its sandbox and runs the function's program, which
    /// is then given `INIT_TIMEOUT` to ask for work.
    fn run(self) -> Result<Worker, FunctionError> {
        let Parked { mut worker, gate } = self;
        gate.open().map_err(|e| {
            FunctionError::new(
                "Runtime.Unknown",
                format!("the worker's held process is gone: {e}"),
            )
        })?;
        worker.started = Instant::now();
        Ok(worker)
    }
}

impl Worker {
    /// Forks a worker's process into its groups and holds it there (see [`Parked`]) for a
    /// `wait` as long as it says; `Err` carries the reason it could not even be forked.
    pub async fn park(
        launch: &Launch,
        confinement: super::limits::Confinement,
        jail: Jail,
        wait: Wait,
    ) -> Result<Parked, FunctionError> {
        let unknown = |what: &str, e: &dyn std::fmt::Display| {
            FunctionError::new("Runtime.Unknown", format!("{what}: {e}"))
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| unknown("no port for the Runtime API", &e))?;
        let address = listener
            .local_addr()
            .map_err(|e| unknown("no port for the Runtime API", &e))?;
        // The environment as layers, a later one's variable replacing an earlier one's.
        let env: BTreeMap<String, String> = crate::inherited()
            .into_iter()
            .chain(launch.env.iter().cloned())
            .chain([("AWS_LAMBDA_RUNTIME_API".into(), address.to_string())])
            .collect();
        let env: Vec<(String, String)> = env.into_iter().collect();
        let program = Program::new(&launch.program, &launch.args, &env).map_err(|e| {
            FunctionError::new(
                "Runtime.InvalidEntrypoint",
                format!("cannot start {}: {e}", launch.program.display()),
            )
        })?;
        let (gate, held) = crate::sandbox::gate().map_err(|e| unknown("no gate", &e))?;
        let mut command = Command::new(&launch.program);
        command
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        confinement.apply(&mut command);
        crate::sandbox::hold(&mut command, held, jail, program, wait);
        // `spawn` returns once the child is in its groups and held: that join can take
        // milliseconds, so it waits on a blocking thread, not one of the runtime's.
        let spawned = tokio::task::spawn_blocking(move || command.spawn())
            .await
            .map_err(|e| unknown("the fork was lost", &e))?;
        let mut child = spawned.map_err(|e| {
            FunctionError::new(
                "Runtime.InvalidEntrypoint",
                format!("cannot start {}: {e}", launch.program.display()),
            )
        })?;
        let (queue, pending) = mpsc::channel(1);
        let (signal_tx, signals) = mpsc::unbounded_channel();
        // `None` only for a process already reaped, which cannot have been held.
        let pid = child
            .id()
            .ok_or_else(|| unknown("the worker's process", &"ended at once"))?;
        // The Runtime API answers this worker's processes only.
        let api = api::serve(listener, pending, signal_tx, pid);
        let logs = Arc::new(Mutex::new(LogBuffer::default()));
        let (stdout, stderr) = (
            child.stdout.take().expect("piped"),
            child.stderr.take().expect("piped"),
        );
        // Copies of the pipes' read ends, to ask how much output is still unread.
        let pipes = [stdout.as_fd(), stderr.as_fd()]
            .map(|fd| fd.try_clone_to_owned())
            .into_iter()
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| unknown("no pipe", &e))?;
        for pipe in [stdout.into_owned_fd(), stderr.into_owned_fd()] {
            let pipe = pipe
                .and_then(tokio::net::unix::pipe::Receiver::from_owned_fd)
                .map_err(|e| unknown("no pipe", &e))?;
            tokio::spawn(collect(pipe, logs.clone()));
        }
        let (exit_tx, exited) = oneshot::channel();
        tokio::spawn(async move {
            let _ = exit_tx.send(child.wait().await);
        });
        let worker = Self {
            queue,
            signals,
            exited,
            logs,
            group: Some(Pid::from_raw(pid as i32)),
            pid,
            ready: false,
            started: Instant::now(),
            healthy: true,
            last_used: Instant::now(),
            api,
            confinement,
            pipes,
        };
        Ok(Parked { worker, gate })
    }

    fn kill(&mut self) {
        if let Some(group) = self.group.take() {
            let _ = killpg(group, UnixSignal::SIGKILL);
        }
        self.healthy = false;
    }

    /// Runs one invocation. Returns its outcome and, for the worker's first invocation, how
    /// long initialisation took.
    pub async fn invoke(
        &mut self,
        payload: &crate::Payload,
        context: &Context,
        timeout: Duration,
    ) -> (Outcome, Option<Duration>) {
        let (reply_tx, reply) = oneshot::channel();
        let mut lineage = vec![("eddy-hops", context.lineage.hops.to_string())];
        if let Some(id) = context.event_id {
            lineage.push(("eddy-event-id", id.to_string()));
        }
        let pending = Pending {
            request_id: context.request_id.clone(),
            payload: payload.to_bytes(),
            deadline_ms: context.deadline_ms,
            function_arn: context.invoked_function_arn.clone(),
            lineage,
            reply: reply_tx,
        };
        let cold = !self.ready;
        let mut init = None;
        if cold {
            match self.wait_ready().await {
                Ok(took) => init = Some(took),
                Err(why) => return (self.not_ready(why).await, None),
            }
        }
        if self.queue.send(pending).await.is_err() {
            let error = FunctionError::new("Runtime.Unknown", "the worker stopped taking work");
            return (self.not_ready(NotReady::Failed(error)).await, init);
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut reply = reply;
        let result = loop {
            // What the runtime said comes before its exit: a runtime that reports an error
            // and then exits has its report read, however late this wakes.
            tokio::select! {
                biased;
                answer = &mut reply => break match answer {
                    Ok(Reply::Response(body)) => Ok(parse_response(&body)),
                    Ok(Reply::Error(error)) => Err(error),
                    Err(_) => Err(FunctionError::new("Runtime.Unknown", "the Runtime API stopped")),
                },
                Some(signal) = self.signals.recv() => match signal {
                    // The runtime asking for its next invocation while this one runs: the
                    // answer is on its way.
                    Signal::Ready => continue,
                    Signal::InitError(error) => {
                        self.healthy = false;
                        break Err(error);
                    }
                },
                exit = &mut self.exited => {
                    self.healthy = false;
                    break Err(exit_error(exit.ok().and_then(Result::ok)));
                }
                _ = &mut deadline => {
                    self.kill();
                    let (logs, cut) = self.take_logs().await;
                    return (Outcome::timeout(timeout, logs, cut), init);
                }
            }
        };
        if result.is_err() && !self.healthy {
            self.kill();
        }
        self.last_used = Instant::now();
        let (logs, truncated) = self.take_logs().await;
        let result = result.map_err(|e| out_of_memory(e, &logs));
        (Outcome::ended(result, logs, truncated), init)
    }

    /// Runs a parked worker until it has loaded its handler and asks for work, and says how
    /// long that took; or the outcome of an invocation that found it could not (the error,
    /// and what the process printed).
    pub async fn start_ready(parked: Parked) -> Result<(Self, Duration), Outcome> {
        let mut worker = parked.run().map_err(Outcome::failed)?;
        match worker.wait_ready().await {
            Ok(init) => Ok((worker, init)),
            Err(why) => Err(worker.not_ready(why).await),
        }
    }

    /// Waits until the worker asks for work, or says why it cannot.
    async fn wait_ready(&mut self) -> Result<Duration, NotReady> {
        let waited = tokio::time::timeout(INIT_TIMEOUT, async {
            // An init error the runtime reported before exiting is read before its exit.
            tokio::select! {
                biased;
                signal = self.signals.recv() => match signal {
                    Some(Signal::Ready) => Ok(()),
                    Some(Signal::InitError(error)) => Err(NotReady::Failed(error)),
                    None => Err(NotReady::Failed(FunctionError::new(
                        "Runtime.Unknown",
                        "the Runtime API stopped",
                    ))),
                },
                exit = &mut self.exited => Err(NotReady::Exited(exit.ok().and_then(Result::ok))),
            }
        })
        .await;
        match waited {
            Ok(Ok(())) => {
                self.ready = true;
                Ok(self.started.elapsed())
            }
            Ok(Err(why)) => Err(why),
            Err(_) => Err(NotReady::Failed(FunctionError::new(
                "Runtime.InitTimeout",
                format!(
                    "the function did not start within {} seconds",
                    INIT_TIMEOUT.as_secs()
                ),
            ))),
        }
    }

    /// The outcome of a worker that cannot take the work (it never asked for it, or stopped
    /// taking it), with all it wrote: an exit is explained by its status and by what it said
    /// last.
    async fn not_ready(&mut self, why: NotReady) -> Outcome {
        self.kill();
        let (logs, truncated) = self.take_logs().await;
        let error = match why {
            NotReady::Failed(error) => error,
            NotReady::Exited(status) => init_exit_error(status, &logs),
        };
        Outcome::ended(Err(error), logs, truncated)
    }

    /// The invocation's log. The handler wrote it before it answered, so each byte is in a
    /// pipe or in the log (the collectors read only while holding the log's lock, see
    /// [`collect`]): wait (at most `LOG_SETTLE`) until, under that lock, the pipes hold nothing
    /// unread.
    async fn take_logs(&self) -> (String, bool) {
        let deadline = Instant::now() + LOG_SETTLE;
        loop {
            {
                let mut logs = self.logs.lock().expect("log lock");
                let unread: usize = self.pipes.iter().map(unread_bytes).sum();
                if unread == 0 || Instant::now() > deadline {
                    let text = std::mem::take(&mut logs.text);
                    let text = String::from_utf8_lossy(&text).into_owned();
                    return (text, std::mem::take(&mut logs.cut));
                }
            }
            tokio::task::yield_now().await;
        }
    }

    /// The most memory the worker has held, in MB.
    pub fn max_memory_mb(&self) -> Option<u64> {
        self.confinement.peak_memory_mb(self.pid)
    }
}

/// The longest an invocation's end waits for its output to be read.
const LOG_SETTLE: Duration = Duration::from_millis(100);

/// How many bytes a pipe holds that nobody has read (`FIONREAD`).
fn unread_bytes(pipe: &OwnedFd) -> usize {
    let mut pending: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which points at `pending`; the
    // descriptor is open for as long as `pipe` lives.
    let status = unsafe { libc::ioctl(pipe.as_raw_fd(), libc::FIONREAD, &mut pending) };
    if status == 0 {
        pending.max(0) as usize
    } else {
        0
    }
}

/// Reads a worker's output into the log of the invocation running now. Each read is made
/// while holding the log's lock, so no byte is ever out of the pipe and not yet in the log
/// (on a multi-threaded runtime a read could otherwise land between `take_logs`'s look at the
/// pipe and its look at the log, and the byte would go to the next invocation's log).
async fn collect(pipe: tokio::net::unix::pipe::Receiver, logs: Arc<Mutex<LogBuffer>>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if pipe.readable().await.is_err() {
            return;
        }
        let mut logs = logs.lock().expect("log lock");
        match pipe.try_read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                let room = LOG_LIMIT.saturating_sub(logs.text.len());
                logs.text.extend_from_slice(&buf[..n.min(room)]);
                logs.cut |= n > room;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// A runtime that died of its own memory limit says so in its log (Node: `JavaScript heap out
/// of memory`): its exit is reported as `Runtime.OutOfMemory`.
fn out_of_memory(error: FunctionError, logs: &str) -> FunctionError {
    let says = |s: &str| logs.contains(s);
    if error.error_type == "Runtime.ExitError"
        && (says("heap out of memory") || says("MemoryError") || says("Cannot allocate memory"))
    {
        FunctionError::new(
            "Runtime.OutOfMemory",
            format!(
                "the runtime ran out of memory and exited ({})",
                error.message
            ),
        )
    } else {
        error
    }
}

/// A response body (at most `RESULT_LIMIT`, which the Runtime API enforces): JSON, as Lambda
/// returns it, or else its text.
fn parse_response(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// Why a worker cannot take the work.
enum NotReady {
    /// Its runtime said why, the Runtime API stopped, its time to start ran out, or it stopped
    /// taking work.
    Failed(FunctionError),
    /// It exited first, with this status.
    Exited(Option<std::process::ExitStatus>),
}

/// The error of a worker that exited before it asked for work, given its log: its program
/// could not be executed or its sandbox could not be set up — each an exit status of eddy's
/// own process with its reason as the log's last line — or its program ended (a program may
/// exit with either status itself, a shell's "command not found" with 127).
fn init_exit_error(status: Option<std::process::ExitStatus>, logs: &str) -> FunctionError {
    use crate::sandbox::{EXEC_FAILED, EXEC_FAILED_SAYS, SETUP_FAILED, SETUP_FAILED_SAYS};
    let last_line = logs
        .trim_end_matches('\n')
        .rsplit('\n')
        .next()
        .unwrap_or("");
    match status.and_then(|s| s.code()) {
        Some(EXEC_FAILED) if last_line.starts_with(EXEC_FAILED_SAYS) => FunctionError::new(
            "Runtime.InvalidEntrypoint",
            "the function's program could not be executed (its log says why)",
        ),
        Some(SETUP_FAILED) if last_line.starts_with(SETUP_FAILED_SAYS) => FunctionError::new(
            "Runtime.Unknown",
            "the function's sandbox could not be set up (its log says why)",
        ),
        _ => exit_error(status),
    }
}

/// The error of a worker that exited mid-invocation: out of memory when the kernel killed it
/// or its runtime aborted, else a plain exit error.
fn exit_error(status: Option<std::process::ExitStatus>) -> FunctionError {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Some(s) if s.signal() == Some(UnixSignal::SIGKILL as i32) => FunctionError::new(
            "Runtime.OutOfMemory",
            "the worker was killed (SIGKILL), most likely for using more than its memory_mb",
        ),
        Some(s) => FunctionError::new(
            "Runtime.ExitError",
            match (s.code(), s.signal()) {
                (Some(code), _) => format!("the runtime exited with status {code}"),
                (None, Some(signal)) => format!("the runtime was killed by signal {signal}"),
                _ => "the runtime ended abnormally".to_string(),
            },
        ),
        None => FunctionError::new("Runtime.ExitError", "the runtime ended"),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    use super::*;

    fn exited(code: i32) -> Option<ExitStatus> {
        Some(ExitStatus::from_raw(code << 8))
    }

    #[test]
    fn an_early_exit_is_eddys_failure_only_when_eddys_process_said_so_last() {
        let kind = |status, logs: &str| init_exit_error(status, logs).error_type;
        let cannot = "eddy: cannot execute /code/bootstrap (errno 13)\n";
        assert_eq!(kind(exited(127), cannot), "Runtime.InvalidEntrypoint");
        let sandbox = "eddy sandbox: mounting /proc for the function failed\n";
        assert_eq!(kind(exited(125), sandbox), "Runtime.Unknown");
        // The program's own exits with those statuses, and eddy's words not last or with
        // another status.
        for (code, logs) in [
            (127, "bootstrap: line 2: helper: not found\n"),
            (125, ""),
            (127, &format!("{cannot}and then more\n")),
            (1, cannot),
            (127, sandbox),
        ] {
            let error = init_exit_error(exited(code), logs);
            assert_eq!(
                (error.error_type.as_str(), error.message),
                (
                    "Runtime.ExitError",
                    format!("the runtime exited with status {code}")
                ),
                "{code} {logs:?}"
            );
        }
        assert_eq!(
            kind(Some(ExitStatus::from_raw(libc::SIGKILL)), cannot),
            "Runtime.OutOfMemory"
        );
    }
}
