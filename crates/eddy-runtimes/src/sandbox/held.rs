//! A function's process started ahead of its need and held at a gate: forked, in its cgroups
//! (the join, which on cgroup v1 waits ~10 ms for an RCU grace period, is paid then), and
//! stopped before it enters its sandbox or runs anything of the function, until eddy opens the
//! gate. A worker started this way ahead of an invocation spares that invocation the join.
//!
//! Once in its groups, the process closes every descriptor but its standard streams, its gate
//! and the sandbox's init program: it keeps nothing of eddy's open — not a database file, not a
//! listening socket, not a copy of another child's close-on-exec channel (a spawn waits until
//! every copy of its child's channel is closed, so a copy kept in a held process would stall it
//! for as long as the process is held). Among those closed is the channel through which the
//! standard library learns that `exec` failed, so `spawn` returns as soon as the process is
//! held; what fails afterwards — the sandbox's set-up, the `exec` — is said on the process's
//! stderr (the worker's log) and in its exit status, as the sandbox's helpers already report
//! their own failures. When eddy closes the gate without opening it (the worker is dropped, or
//! eddy ends, even by SIGKILL), the held process exits at once.
//!
//! How it waits depends on how long it may ([`Wait`]): a process whose gate opens at once waits
//! as the copy of eddy it is; one held ahead of need first replaces itself with eddy's init
//! program, so that it holds none of eddy's memory meanwhile (see [`super::parking`]).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use libc::{c_char, c_int};

use super::Jail;
use super::child::{SETUP_FAILED, SETUP_FAILED_SAYS, close_except, decimal, execute_init, say};

/// The exit status of a held process whose program could not be executed (as a shell's).
pub(crate) const EXEC_FAILED: c_int = 127;
/// How the reason given before exiting with [`EXEC_FAILED`] begins: a function's own program
/// may exit with that status too (a shell's "command not found"), and is told apart by its
/// last line.
pub(crate) const EXEC_FAILED_SAYS: &str = "eddy: cannot execute ";

/// eddy's end of a held process's gate.
pub(crate) struct Gate {
    opener: OwnedFd,
}

/// The held process's end of its gate.
pub(crate) struct Held {
    wait: OwnedFd,
}

impl From<OwnedFd> for Held {
    fn from(wait: OwnedFd) -> Self {
        Self { wait }
    }
}

/// How long a held process may wait at its gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Its gate opens as soon as it is held (a worker started for work at hand): it waits as
    /// the copy of eddy it is, which costs nothing for a moment.
    Brief,
    /// Ahead of need, for as long as it takes (a spare): it waits as eddy's init program, when
    /// eddy has one.
    Long,
}

/// A new gate: eddy keeps [`Gate`]; [`hold`] gives [`Held`] to the process.
pub(crate) fn gate() -> io::Result<(Gate, Held)> {
    let mut ends = [0 as c_int; 2];
    // SAFETY: pipe2 fills `ends` with two new descriptors, which are then owned here.
    let (wait, opener) = unsafe {
        super::child::check(libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC))?;
        (OwnedFd::from_raw_fd(ends[0]), OwnedFd::from_raw_fd(ends[1]))
    };
    Ok((Gate { opener }, Held { wait }))
}

impl Gate {
    /// Lets the held process go on into its sandbox and program.
    pub(crate) fn open(self) -> io::Result<()> {
        let written = nix::unistd::write(&self.opener, b"g")?;
        if written == 1 {
            Ok(())
        } else {
            Err(io::Error::other("the gate took nothing"))
        }
    }
}

/// A program to execute, prepared before the fork (the child may not allocate).
pub(crate) struct Program {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    envp_ptrs: Vec<*const c_char>,
}

// SAFETY: the pointers point into the `CString`s this value owns, which it never changes; they
// are only read, in the child.
unsafe impl Send for Program {}
// SAFETY: as above.
unsafe impl Sync for Program {}

impl Program {
    /// `path` run with `args` (after its own name) and exactly `env`.
    pub(crate) fn new(
        path: &Path,
        args: &[String],
        env: &[(String, String)],
    ) -> Result<Self, std::ffi::NulError> {
        let path = CString::new(path.as_os_str().as_bytes())?;
        let mut argv = vec![path.clone()];
        for arg in args {
            argv.push(CString::new(arg.as_bytes())?);
        }
        let envp = env
            .iter()
            .map(|(k, v)| CString::new(format!("{k}={v}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_texts(path, argv, envp))
    }

    /// The program at `path`, run with `argv` (its own name first) and `envp` (`NAME=value`).
    pub(super) fn from_texts(path: CString, argv: Vec<CString>, envp: Vec<CString>) -> Self {
        let pointers = |texts: &[CString]| {
            texts
                .iter()
                .map(|t| t.as_ptr())
                .chain([std::ptr::null()])
                .collect()
        };
        Self {
            argv_ptrs: pointers(&argv),
            envp_ptrs: pointers(&envp),
            path,
            argv,
            envp,
        }
    }

    /// Its path, arguments and environment.
    pub(super) fn texts(&self) -> (&CString, &[CString], &[CString]) {
        (&self.path, &self.argv, &self.envp)
    }

    /// Replaces the process with the program, or exits with [`EXEC_FAILED`] saying why.
    ///
    /// # Safety
    /// Only between fork and exec, in the child.
    unsafe fn exec(&self) -> ! {
        debug_assert_eq!(self.argv_ptrs.len(), self.argv.len() + 1);
        debug_assert_eq!(self.envp_ptrs.len(), self.envp.len() + 1);
        // SAFETY: execve with NUL-terminated strings and NULL-terminated arrays that outlive
        // the call; then only write(2) and _exit(2).
        unsafe {
            libc::execve(
                self.path.as_ptr(),
                self.argv_ptrs.as_ptr(),
                self.envp_ptrs.as_ptr(),
            );
            let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
            say(EXEC_FAILED_SAYS.as_bytes());
            say(self.path.as_bytes());
            report_errno(errno);
            libc::_exit(EXEC_FAILED)
        }
    }
}

/// Writes ` (errno N)` and a new line to stderr.
fn report_errno(errno: c_int) {
    let mut text = [0u8; 24];
    let digits = decimal(errno.unsigned_abs().into(), &mut text);
    // SAFETY: `decimal` NUL-terminates within `text`.
    let digits = unsafe { std::ffi::CStr::from_ptr(digits) };
    say(b" (errno ");
    say(digits.to_bytes());
    say(b")\n");
}

/// Makes the process `command` starts wait at `held`'s gate — after the `pre_exec` steps added
/// before this one (joining its cgroups), before it enters `jail` — and then execute
/// `program`. `command`'s own program, arguments and environment are not used.
pub(crate) fn hold(
    command: &mut tokio::process::Command,
    held: Held,
    jail: Jail,
    program: Program,
    wait: Wait,
) {
    // Written before the fork: the child may not allocate. Without it (no init program, or no
    // memory file to be had) a long wait is spent as a copy of eddy, as a brief one is.
    let launch = match (wait, &jail.init) {
        (Wait::Long, Some(_)) => super::parking::launch_file(&jail, &program).ok(),
        _ => None,
    };
    // SAFETY: the closure runs in the child between fork and exec; `park`, `wait`, and
    // `proceed` make only async-signal-safe calls and allocate nothing.
    unsafe {
        command.pre_exec(move || {
            if let Some(launch) = &launch {
                held.park(jail.init_fd(), launch.as_raw_fd());
            }
            held.wait(jail.init_fd());
            proceed(&jail, &program)
        });
    }
}

/// Enters `jail` and executes `program`; exits with [`SETUP_FAILED`] or [`EXEC_FAILED`],
/// saying why, when either cannot be done.
///
/// # Safety
/// Only between fork and exec, in the child, or in a single-threaded process.
pub(super) unsafe fn proceed(jail: &Jail, program: &Program) -> ! {
    // SAFETY: as the caller's.
    unsafe {
        if let Err(error) = jail.enter() {
            say(SETUP_FAILED_SAYS.as_bytes());
            say(b"the function's sandbox could not be set up");
            report_errno(error.raw_os_error().unwrap_or(0));
            libc::_exit(SETUP_FAILED);
        }
        program.exec()
    }
}

impl Held {
    /// Replaces this process with eddy's init program (`init`) to wait at the gate there,
    /// reading what to become from `launch`: the three descriptors are all it keeps. Returns
    /// only if the program cannot be executed, with `launch` closed and the others close-on-exec
    /// again (the process then waits as it is).
    ///
    /// # Safety
    /// Only between fork and exec, in the child.
    unsafe fn park(&self, init: RawFd, launch: RawFd) {
        let gate = self.wait.as_raw_fd();
        close_except([gate, init, launch]);
        let (mut gate_text, mut launch_text, mut init_text) = ([0u8; 24], [0u8; 24], [0u8; 24]);
        // SAFETY: fcntl and close on this process's descriptors; `execute_init` with
        // NUL-terminated texts that outlive it.
        unsafe {
            for fd in [gate, init, launch] {
                libc::fcntl(fd, libc::F_SETFD, 0);
            }
            execute_init(
                init,
                [
                    c"held".as_ptr(),
                    decimal(gate as u64, &mut gate_text),
                    decimal(launch as u64, &mut launch_text),
                    decimal(init as u64, &mut init_text),
                ],
            );
            for fd in [gate, init] {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
            libc::close(launch);
        }
    }

    /// Closes every descriptor but the standard streams, the gate and `also`, then waits at the
    /// gate: returns when it is opened, and exits when it is closed unopened.
    ///
    /// # Safety
    /// Only between fork and exec, in the child, or in a single-threaded process.
    pub(super) unsafe fn wait(&self, also: RawFd) {
        let fd = self.wait.as_raw_fd();
        close_except([fd, also]);
        let mut byte = 0u8;
        loop {
            // SAFETY: read(2) into a one-byte buffer on a descriptor of this process.
            let read = unsafe { libc::read(fd, (&raw mut byte).cast(), 1) };
            if read == 1 && byte == b'g' {
                // SAFETY: close(2) of the gate, which the program must not inherit.
                unsafe { libc::close(fd) };
                return;
            }
            if read < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // Closed unopened: nothing of the function ever ran.
            // SAFETY: _exit(2).
            unsafe { libc::_exit(0) }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::sandbox::{DEFAULT_UIDS, Mode, Sandbox, SandboxOptions};

    /// A process of `script` (run by `/bin/sh` in `dir`, its output piped) held at its gate in `mode`, its
    /// gate's descriptor number in the process, and the gate.
    fn held_shell(
        mode: Option<Mode>,
        dir: &Path,
        script: &str,
    ) -> (tokio::process::Child, RawFd, Gate) {
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let sandbox = Sandbox::start(SandboxOptions {
            mode,
            uids: DEFAULT_UIDS,
            data_dir: dir.join("data"),
            init_program: None,
        })
        .unwrap();
        let jail = sandbox
            .jail("probe", Path::new("/bin/sh"), &[], dir)
            .unwrap();
        let program = Program::new(
            Path::new("/bin/sh"),
            &["-c".into(), script.into()],
            &[("PATH".into(), "/usr/bin:/bin".into())],
        )
        .unwrap();
        let (gate, held) = gate().unwrap();
        let gate_fd = held.wait.as_raw_fd();
        let mut command = tokio::process::Command::new("/bin/sh");
        command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        hold(&mut command, held, jail, program, Wait::Long);
        (command.spawn().unwrap(), gate_fd, gate)
    }

    fn scratch() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        // Open to a function's own user (isolated mode).
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    /// `spawn` returns once the process is held; by then it is still a copy of this process
    /// (nothing executed: without eddy's init program, as in a library embedding eddy, even a
    /// long wait is spent so), and it holds none of this process's descriptors — only its
    /// standard streams and its gate. Opened, it runs the program, in its sandbox.
    #[tokio::test]
    async fn a_held_process_keeps_nothing_open_and_runs_nothing_until_its_gate_opens() {
        for mode in [None, Some(Mode::Off)] {
            let dir = scratch();
            // A descriptor of this process that a careless fork would leak (not close-on-exec).
            let leaky = std::fs::File::open("/dev/null").unwrap();
            // SAFETY: fcntl on a descriptor this test owns.
            assert_eq!(
                unsafe { libc::fcntl(leaky.as_raw_fd(), libc::F_SETFD, 0) },
                0
            );
            let (child, gate_fd, gate) = held_shell(mode, dir.path(), "echo ran");
            let pid = child.id().unwrap();
            let own_exe = std::fs::read_link("/proc/self/exe").unwrap();
            assert_eq!(
                std::fs::read_link(format!("/proc/{pid}/exe")).unwrap(),
                own_exe,
                "held: nothing executed yet"
            );
            // `spawn` returned when the closing reached its channel; the rest of that one
            // system call may still be under way.
            let expected = BTreeSet::from([0, 1, 2, gate_fd]);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            let open = loop {
                let open: BTreeSet<RawFd> = std::fs::read_dir(format!("/proc/{pid}/fd"))
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
                    .collect();
                if open == expected || std::time::Instant::now() > deadline {
                    break open;
                }
                tokio::task::yield_now().await;
            };
            assert_eq!(open, expected, "{mode:?}");
            gate.open().unwrap();
            let out = child.wait_with_output().await.unwrap();
            assert!(out.status.success(), "{mode:?}: {out:?}");
            assert_eq!(out.stdout, b"ran\n", "{mode:?}");
        }
    }

    /// A gate closed unopened — its worker dropped, or eddy gone — ends the held process
    /// without running anything.
    #[tokio::test]
    async fn a_gate_closed_unopened_ends_the_held_process_and_nothing_runs() {
        let dir = scratch();
        let (child, _, gate) = held_shell(None, dir.path(), "echo ran");
        drop(gate);
        let out = child.wait_with_output().await.unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    }

    /// What fails after the gate is said on the process's stderr and in its exit status.
    #[tokio::test]
    async fn a_program_that_cannot_be_executed_says_so_and_exits_127() {
        let dir = scratch();
        let (gate, held) = gate().unwrap();
        let sandbox = Sandbox::start(SandboxOptions {
            mode: Some(Mode::Off),
            uids: DEFAULT_UIDS,
            data_dir: dir.path().join("data"),
            init_program: None,
        })
        .unwrap();
        let missing = dir.path().join("missing");
        let jail = sandbox.jail("probe", &missing, &[], dir.path()).unwrap();
        let program = Program::new(&missing, &[], &[]).unwrap();
        let mut command = tokio::process::Command::new(&missing);
        command.stderr(std::process::Stdio::piped());
        hold(&mut command, held, jail, program, Wait::Long);
        let child = command.spawn().unwrap();
        gate.open().unwrap();
        let out = child.wait_with_output().await.unwrap();
        assert_eq!(out.status.code(), Some(EXEC_FAILED));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!(
                "eddy: cannot execute {} (errno {})\n",
                missing.display(),
                libc::ENOENT
            )
        );
    }
}
