//! The function sandbox: what keeps a function's processes away from eddy and from each other.
//!
//! eddy picks the strongest mode the host allows when it starts, logs it, and reports it in its
//! health answer:
//!
//! | mode | when | a function … |
//! | --- | --- | --- |
//! | `isolated` | eddy runs as root and may make namespaces | runs as a user of its own (from a configured range) in its own mount, PID and IPC namespaces, with a private `/tmp` and the data directory hidden |
//! | `namespaces` | eddy is an ordinary user and the kernel allows unprivileged user namespaces | runs as eddy's user inside its own user, mount, PID and IPC namespaces, with a private `/tmp` and the data directory hidden |
//! | `users` | root, but namespaces are refused (some containers) | runs as a user of its own, in the host's namespaces |
//! | `off` | none of these is possible, or it was asked for | runs as eddy's user with nothing between them |
//!
//! In every mode a function's process cannot gain privileges (`no_new_privs`), inherits no
//! descriptor of eddy's, and eddy itself is not dumpable (so `/proc/EDDY/environ` and its
//! memory are closed even to a process of eddy's user).

mod child;
mod held;
mod parking;
mod peer;
mod plan;
mod sock_diag;

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use child::INIT_COMMAND;
pub(crate) use child::{Jail, SETUP_FAILED, SETUP_FAILED_SAYS};
pub(crate) use held::{EXEC_FAILED, EXEC_FAILED_SAYS, Gate, Program, Wait, gate, hold};
pub(crate) use peer::{descendants, from_worker};
pub use plan::PlanError;

use child::{ChildStep, UserMaps};
use plan::{Mask, MaskKind, Step};

use crate::Unrunnable;

/// How functions are kept apart from eddy and from each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    Isolated,
    Namespaces,
    Users,
    Off,
}

impl Mode {
    pub const ALL: [Mode; 4] = [Mode::Isolated, Mode::Namespaces, Mode::Users, Mode::Off];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Isolated => "isolated",
            Mode::Namespaces => "namespaces",
            Mode::Users => "users",
            Mode::Off => "off",
        }
    }

    /// What this mode promises, in a sentence.
    pub fn guarantee(self) -> &'static str {
        match self {
            Mode::Isolated => {
                "each function runs as a user of its own in its own mount, PID and IPC namespaces with a private /tmp: it cannot read eddy's memory, environment or data directory, nor another function's processes, environment or files"
            }
            Mode::Namespaces => {
                "each function runs as eddy's user in its own user, mount, PID and IPC namespaces with a private /tmp: it cannot see eddy's processes, memory or data directory, nor another function's processes or scratch files; it can read what eddy's user can read elsewhere on the host"
            }
            Mode::Users => {
                "each function runs as a user of its own, without namespaces: eddy's memory, environment and data directory and other functions' processes are closed to it, but it sees every process on the host and shares /tmp"
            }
            Mode::Off => {
                "NO SEPARATION: functions run as eddy's own user and can read eddy's data directory and memory, and so every secret eddy holds"
            }
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                format!("{s:?} is not a sandbox mode; use isolated, namespaces, users or off")
            })
    }
}

/// How to choose and set up the sandbox.
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    /// The mode to use; `None` picks the strongest this host allows.
    pub mode: Option<Mode>,
    /// The user ids functions run as, when eddy is root: one per function.
    pub uids: std::ops::RangeInclusive<u32>,
    /// Never visible to a function.
    pub data_dir: PathBuf,
    /// eddy's own binary, run as the namespaces' small init (`eddy __sandbox-init …`). Without
    /// it the helpers stay copies of the process that started them.
    pub init_program: Option<PathBuf>,
}

/// The user ids functions get by default: far above any account a system makes.
pub const DEFAULT_UIDS: std::ops::RangeInclusive<u32> = 2_000_000_000..=2_000_065_535;

/// The sandbox could not be set up as asked.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("the {mode} function sandbox is not available here: {reason}")]
    Unavailable { mode: Mode, reason: String },
}

/// The sandbox every function process of one eddy enters.
pub struct Sandbox {
    mode: Mode,
    data_dir: PathBuf,
    /// Shared scratch directories that get a private tmpfs in each worker.
    scratch: Vec<PathBuf>,
    users: Option<UserPool>,
    init: Option<Arc<OwnedFd>>,
    /// eddy's own user and group.
    own: (u32, u32),
    /// Why stronger modes were passed over, for the log.
    passed_over: Vec<String>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("mode", &self.mode)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// No sandbox: functions run as eddy's user (for embedding and tests that ask for it).
    pub fn off() -> Arc<Self> {
        Arc::new(Self::with_mode(Mode::Off, PathBuf::new(), None, None))
    }

    fn with_mode(
        mode: Mode,
        data_dir: PathBuf,
        users: Option<UserPool>,
        init: Option<Arc<OwnedFd>>,
    ) -> Self {
        let scratch = ["/tmp", "/var/tmp", "/dev/shm"]
            .iter()
            .map(PathBuf::from)
            .filter(|p| p.is_dir())
            .collect();
        // SAFETY: getuid/getgid cannot fail.
        let own = unsafe { (libc::getuid(), libc::getgid()) };
        Self {
            mode,
            data_dir,
            scratch,
            users,
            init,
            own,
            passed_over: Vec::new(),
        }
    }

    /// Sets up the mode asked for, or the strongest this host allows, checking each by
    /// starting a process in it.
    pub fn start(options: SandboxOptions) -> Result<Arc<Self>, SandboxError> {
        // SAFETY: geteuid cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let candidates: Vec<Mode> = match options.mode {
            Some(mode) => vec![mode],
            None if root => vec![Mode::Isolated, Mode::Users, Mode::Off],
            None => vec![Mode::Namespaces, Mode::Off],
        };
        let data_dir = std::fs::canonicalize(&options.data_dir).unwrap_or(options.data_dir);
        let init = options
            .init_program
            .as_deref()
            .and_then(open_path)
            .map(Arc::new);
        let mut passed_over = Vec::new();
        for mode in candidates {
            let refuse = |reason: String| SandboxError::Unavailable { mode, reason };
            let users = match mode {
                Mode::Isolated | Mode::Users if !root => {
                    return Err(refuse("it needs eddy to run as root".into()));
                }
                Mode::Namespaces if root => {
                    return Err(refuse(
                        "as root, functions would be root in their namespaces; use isolated".into(),
                    ));
                }
                Mode::Isolated | Mode::Users => Some(UserPool::new(options.uids.clone())),
                _ => None,
            };
            let mut sandbox = Self::with_mode(mode, data_dir.clone(), users, init.clone());
            if mode == Mode::Off {
                sandbox.passed_over = passed_over;
                return Ok(Arc::new(sandbox));
            }
            match sandbox.probe() {
                Ok(()) => {
                    sandbox.passed_over = passed_over;
                    return Ok(Arc::new(sandbox));
                }
                Err(reason) if options.mode.is_some() => return Err(refuse(reason)),
                Err(reason) => passed_over.push(format!("{mode}: {reason}")),
            }
        }
        unreachable!("the last candidate is always off")
    }

    /// Starts `true` in this mode and checks it ran.
    fn probe(&self) -> Result<(), String> {
        let program = ["/usr/bin/true", "/bin/true"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.exists())
            .ok_or("no `true` program to try the sandbox with")?;
        let jail = self
            .jail("eddy-sandbox-probe", program, &[], Path::new("/"))
            .map_err(|e| e.0)?;
        let mut command = std::process::Command::new(program);
        command.env_clear();
        // SAFETY: `Jail::enter` makes only async-signal-safe calls.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, move || jail.enter());
        }
        let status = command.status().map_err(|e| e.to_string())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("a process started in it ended with {status}"))
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The mode and its promise, for the log and the health answer.
    pub fn describe(&self) -> String {
        let mut text = format!("{}: {}", self.mode, self.mode.guarantee());
        if let Some(users) = &self.users {
            text.push_str(&format!(
                " (user ids {} to {})",
                users.range.start(),
                users.range.end()
            ));
        }
        text
    }

    /// Why stronger modes could not be used here.
    pub fn passed_over(&self) -> &[String] {
        &self.passed_over
    }

    /// The home directory a function gets: its private scratch space when it has one.
    pub(crate) fn home(&self) -> Option<&'static str> {
        match self.mode {
            Mode::Isolated | Mode::Namespaces => Some("/tmp"),
            Mode::Users | Mode::Off => None,
        }
    }

    /// The user id `function` runs as, when it has one of its own.
    pub fn user_of(&self, function: &str) -> Option<u32> {
        self.users.as_ref().map(|u| u.uid_for(function))
    }

    /// Prepares the sandbox of one process of `function`: it runs `program` in `cwd` and needs
    /// to see the directories in `needs` (its code folder, its interpreter's installation).
    pub(crate) fn jail(
        &self,
        function: &str,
        program: &Path,
        needs: &[PathBuf],
        cwd: &Path,
    ) -> Result<Jail, Unrunnable> {
        let identity = self.user_of(function).map(|uid| (uid, uid));
        let mut needs: Vec<PathBuf> = needs
            .iter()
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
            .collect();
        if let Some(dir) = program.parent() {
            needs.push(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()));
        }
        let cwd = std::fs::canonicalize(cwd).unwrap_or_else(|_| cwd.to_path_buf());
        needs.push(cwd.clone());
        needs.sort();
        needs.dedup();
        if let Some((uid, _)) = identity {
            for dir in &needs {
                if !open_to_others(dir, 0o005) {
                    return Err(Unrunnable(format!(
                        "function `{function}` runs as user {uid}, which may not read {} (mode {:o}): make it readable by others (chmod o+rX), or run eddy as an unprivileged user, whose functions run as that user",
                        dir.display(),
                        mode_of(dir).unwrap_or(0) & 0o7777
                    )));
                }
            }
        }
        let namespaces = matches!(self.mode, Mode::Isolated | Mode::Namespaces);
        let steps = if namespaces {
            let mut masks: Vec<Mask> = self
                .scratch
                .iter()
                .map(|p| Mask {
                    path: p.clone(),
                    kind: MaskKind::Scratch,
                })
                .collect();
            masks.push(Mask {
                path: self.data_dir.clone(),
                kind: MaskKind::Hidden,
            });
            let passable = |dir: &Path| identity.is_none() || open_to_others(dir, 0o001);
            let steps = plan::plan(&masks, &needs, &self.data_dir, passable)
                .map_err(|e| Unrunnable(format!("function `{function}`: {e}")))?;
            steps.into_iter().map(child_step).collect()
        } else {
            Vec::new()
        };
        let user_maps = (self.mode == Mode::Namespaces).then(|| {
            let (uid, gid) = self.own;
            UserMaps {
                uid_map: c_text(&format!("{uid} {uid} 1\n")),
                gid_map: c_text(&format!("{gid} {gid} 1\n")),
            }
        });
        Ok(Jail {
            namespaces,
            user_maps,
            steps,
            cwd: c_path(&cwd),
            identity,
            init: self.init.clone(),
        })
    }
}

/// Makes the process `command` starts enter `jail` before its program runs.
pub(crate) fn confine(command: &mut tokio::process::Command, jail: Jail) {
    // SAFETY: `Jail::enter` makes only async-signal-safe calls and allocates nothing.
    unsafe {
        command.pre_exec(move || jail.enter());
    }
}

fn child_step(step: Step) -> ChildStep {
    match step {
        Step::Mask(mask) => {
            let (options, flags) = match mask.kind {
                MaskKind::Scratch => ("mode=1777,size=512m", libc::MS_NOSUID | libc::MS_NODEV),
                MaskKind::Hidden => (
                    "mode=000,size=4k",
                    libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                ),
                MaskKind::Passage => ("mode=755,size=1m", libc::MS_NOSUID | libc::MS_NODEV),
            };
            ChildStep::Mask {
                target: c_path(&mask.path),
                options: c_text(options),
                flags,
            }
        }
        Step::Expose { path, create } => ChildStep::Expose {
            keep_flags: mount_flags(&path),
            target: c_path(&path),
            source: std::sync::atomic::AtomicI32::new(-1),
            create: create.iter().map(|p| c_path(p)).collect(),
        },
    }
}

/// Opens a path for reference only (`O_PATH`), close-on-exec.
fn open_path(path: &Path) -> Option<OwnedFd> {
    let text = c_path(path);
    // SAFETY: open with a NUL-terminated path; a non-negative result is a descriptor we own.
    let fd = unsafe { libc::open(text.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    // SAFETY: `fd` was just opened and nothing else owns it.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The flags of the file system holding `path` that a remount inside a namespace must keep.
fn mount_flags(path: &Path) -> libc::c_ulong {
    let text = c_path(path);
    // SAFETY: statvfs fills the zeroed struct for a NUL-terminated path.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(text.as_ptr(), &mut stat) } != 0 {
        return 0;
    }
    let pairs = [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ];
    pairs
        .iter()
        .filter(|(st, _)| stat.f_flag & st != 0)
        .fold(0, |acc, (_, ms)| acc | ms)
}

fn mode_of(path: &Path) -> Option<u32> {
    std::fs::metadata(path).ok().map(|m| m.permissions().mode())
}

/// Whether users other than the owner have all of `bits` (of `0o007`) on `path`.
fn open_to_others(path: &Path, bits: u32) -> bool {
    mode_of(path).is_some_and(|m| m & bits == bits)
}

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap_or_default()
}

fn c_text(text: &str) -> CString {
    CString::new(text).expect("no NUL in generated text")
}

/// The user ids of one eddy's functions: one per function name, never one an account of this
/// host has.
struct UserPool {
    range: std::ops::RangeInclusive<u32>,
    taken: HashSet<u32>,
    assigned: Mutex<HashMap<String, u32>>,
}

impl UserPool {
    fn new(range: std::ops::RangeInclusive<u32>) -> Self {
        let ids = |file: &str| -> HashSet<u32> {
            std::fs::read_to_string(file)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.split(':').nth(2)?.parse().ok())
                .collect()
        };
        let mut taken = ids("/etc/passwd");
        taken.extend(ids("/etc/group"));
        Self {
            range,
            taken,
            assigned: Mutex::new(HashMap::new()),
        }
    }

    fn uid_for(&self, function: &str) -> u32 {
        let mut assigned = self.assigned.lock().expect("uid lock");
        if let Some(uid) = assigned.get(function) {
            return *uid;
        }
        let used: HashSet<u32> = assigned.values().copied().collect();
        let uid = self
            .range
            .clone()
            .find(|id| !self.taken.contains(id) && !used.contains(id))
            // A range smaller than the number of functions: they share the last id.
            .unwrap_or(*self.range.end());
        assigned.insert(function.to_string(), uid);
        uid
    }
}

/// Makes this process undumpable: its memory and `/proc/PID/environ` are closed even to other
/// processes of its own user (a function run without a sandbox among them).
pub fn protect_this_process() {
    // SAFETY: prctl with constant arguments.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0);
    }
}

/// Runs this process as a sandbox's init when eddy's binary was started as one
/// (`eddy __sandbox-init outer|namespace FD PID`, or `… held GATE LAUNCH INIT` for a process
/// held ahead of need); returns otherwise. Call it first in `main`.
pub fn run_init_if_asked() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_bytes) != Some(INIT_COMMAND.to_bytes()) {
        return;
    }
    let number = |i: usize| args.get(i).and_then(|a| a.parse::<i32>().ok());
    match (
        args.get(2).map(String::as_str),
        number(3),
        number(4),
        number(5),
    ) {
        (Some("held"), Some(gate), Some(launch), Some(init)) => parking::run(gate, launch, init),
        // SAFETY: plain waits, reads and writes on descriptors and pids this init was given.
        (Some("outer"), Some(fd), Some(pid), None) => unsafe { child::outer_loop(pid, fd) },
        (Some("namespace"), Some(fd), Some(pid), None) => unsafe { child::namespace_loop(pid, fd) },
        _ => {
            eprintln!(
                "eddy: {} is for eddy's own use",
                INIT_COMMAND.to_string_lossy()
            );
            std::process::exit(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_say_what_they_promise() {
        for mode in Mode::ALL {
            assert_eq!(mode.name().parse::<Mode>().unwrap(), mode);
            assert!(!mode.guarantee().is_empty());
        }
        assert!("strict".parse::<Mode>().unwrap_err().contains("isolated"));
    }

    /// Without eddy's init program (a library embedding eddy has none), the namespace's
    /// helpers do its work themselves: the program's end still reaches the parent as it was.
    #[tokio::test]
    async fn helpers_pass_the_programs_end_on_without_the_init_program() {
        use std::os::unix::process::ExitStatusExt;
        let dir = tempfile::tempdir().unwrap();
        let sandbox = Sandbox::start(SandboxOptions {
            mode: None,
            uids: DEFAULT_UIDS,
            data_dir: dir.path().to_path_buf(),
            init_program: None,
        })
        .unwrap();
        eprintln!("checked in sandbox mode {}", sandbox.mode());
        let run = |script: &'static str| {
            let jail = sandbox
                .jail("probe", Path::new("/bin/sh"), &[], Path::new("/"))
                .unwrap();
            let mut command = tokio::process::Command::new("/bin/sh");
            command.args(["-c", script]).env_clear();
            confine(&mut command, jail);
            command.status()
        };
        assert_eq!(run("exit 3").await.unwrap().code(), Some(3));
        assert_eq!(
            run("kill -TERM $$").await.unwrap().signal(),
            Some(libc::SIGTERM)
        );
        if sandbox.mode() == Mode::Isolated {
            let own_namespace = run("test $$ -lt 10").await.unwrap();
            assert!(
                own_namespace.success(),
                "the program is one of its namespace's first processes"
            );
        }
    }

    #[test]
    fn each_function_gets_its_own_unused_id() {
        // Ids 0 to 2 are root's, daemon's and bin's on any Debian host.
        let pool = UserPool::new(0..=4_000_000_000);
        let a = pool.uid_for("a");
        let b = pool.uid_for("b");
        assert_ne!(a, b);
        assert_eq!(pool.uid_for("a"), a, "stable for a function");
        assert!(a > 2 && b > 2, "ids of accounts are skipped: {a} {b}");
    }
}
