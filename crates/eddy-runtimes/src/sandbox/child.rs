//! What a function's process does between `fork` and `exec` to enter its sandbox.
//!
//! This runs in the child of a multi-threaded parent, so it may only make async-signal-safe
//! calls: everything it needs (paths, mount options, map contents) is prepared before the fork,
//! and it allocates nothing.
//!
//! With namespaces the child (call it P1) unshares its mount, PID and IPC namespaces (and its
//! user namespace when eddy is not root), builds the file-system view of the plan, and forks:
//! the new process (P2) is PID 1 of the new PID namespace; it mounts a `/proc` that shows only
//! that namespace and forks again (P3), which takes the function's identity and becomes the
//! function's program. P2 stays as the namespace's init (it reaps orphans; when it ends, the
//! kernel kills everything left in the namespace) and passes P3's wait status to P1, which ends
//! the same way, so eddy sees the function's own exit. P1 and P2 replace themselves with
//! eddy's small init program when one is given (otherwise they would keep a copy of eddy's
//! memory for as long as the worker lives).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use libc::{c_char, c_int, c_ulong};

/// The exit status of a namespace init that could not finish setting up (its reason is on
/// the worker's stderr, so it reaches the invocation's log).
pub(crate) const SETUP_FAILED: c_int = 125;
/// How every reason given before exiting with [`SETUP_FAILED`] begins: a function's own
/// program may exit with that status too, and is told apart by its last line.
pub(crate) const SETUP_FAILED_SAYS: &str = "eddy sandbox: ";

/// A step of the file-system view, ready for the child.
pub(crate) enum ChildStep {
    Mask {
        target: CString,
        options: CString,
        flags: c_ulong,
    },
    Expose {
        /// The real directory, opened (inside the new mount namespace, before any mask hides
        /// it: a mount of another namespace cannot be bound) into `source`.
        target: CString,
        source: AtomicI32,
        /// Mount points to make first, inside the tmpfs that covers `target`.
        create: Vec<CString>,
        /// The flags a read-only remount must keep (those of the source's file system).
        keep_flags: c_ulong,
    },
}

/// The user namespace of a sandbox when eddy is not root: eddy's user and group, mapped to
/// themselves.
pub(crate) struct UserMaps {
    pub uid_map: CString,
    pub gid_map: CString,
}

/// Everything one process needs to enter its sandbox.
pub(crate) struct Jail {
    /// Whether to make mount, PID and IPC namespaces.
    pub namespaces: bool,
    /// With namespaces and without root: a user namespace too.
    pub user_maps: Option<UserMaps>,
    pub steps: Vec<ChildStep>,
    pub cwd: CString,
    /// The function's own user and group (when eddy is root).
    pub identity: Option<(libc::uid_t, libc::gid_t)>,
    /// eddy's init program, opened for `execveat`.
    pub init: Option<std::sync::Arc<OwnedFd>>,
}

pub(super) fn check(result: c_int) -> io::Result<()> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Writes `bytes` to stderr, for a failure the parent cannot be told any other way.
/// Says why on stderr — [`SETUP_FAILED_SAYS`], then `reason`'s parts — and exits with
/// [`SETUP_FAILED`].
pub(super) fn setup_failed(reason: &[&[u8]]) -> ! {
    say(SETUP_FAILED_SAYS.as_bytes());
    for part in reason {
        say(part);
    }
    // SAFETY: _exit(2) is always safe to call.
    unsafe { libc::_exit(SETUP_FAILED) }
}

pub(super) fn say(bytes: &[u8]) {
    // SAFETY: write(2) on fd 2 with a valid buffer.
    unsafe {
        libc::write(2, bytes.as_ptr().cast(), bytes.len());
    }
}

/// Writes `text` to the file at `path` (a `/proc/self/…` control file).
fn write_file(path: &std::ffi::CStr, text: &[u8]) -> io::Result<()> {
    // SAFETY: open/write/close with valid, NUL-terminated paths and buffers.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        check(fd)?;
        let written = libc::write(fd, text.as_ptr().cast(), text.len());
        libc::close(fd);
        if written < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Closes every descriptor from 3 up but those in `keep` (-1 for none).
pub(super) fn close_except<const N: usize>(mut keep: [RawFd; N]) {
    keep.sort_unstable();
    let mut from: u32 = 3;
    for fd in keep.into_iter().filter(|fd| *fd >= 0) {
        let fd = fd as u32;
        if fd > from {
            close_range(from, fd - 1, 0);
        }
        from = from.max(fd + 1);
    }
    close_range(from, u32::MAX, 0);
}

/// `close_range(2)`, or a loop of `close`/`fcntl` where the kernel lacks it.
fn close_range(first: u32, last: u32, flags: u32) {
    // SAFETY: the syscall only affects descriptors of this process.
    let done = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_long,
            last as libc::c_long,
            flags as libc::c_long,
        )
    };
    if done == 0 {
        return;
    }
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into `limit`; close and fcntl act on plain numbers.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        let end = (limit.rlim_cur.min(1 << 20) as u32).min(last.saturating_add(1));
        for fd in first..end {
            if flags & CLOSE_RANGE_CLOEXEC != 0 {
                libc::fcntl(fd as c_int, libc::F_SETFD, libc::FD_CLOEXEC);
            } else {
                libc::close(fd as c_int);
            }
        }
    }
}

const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;

/// Writes `n` in decimal into `buf`, NUL-terminated; returns the text.
pub(super) fn decimal(n: u64, buf: &mut [u8; 24]) -> *const c_char {
    let mut digits = [0u8; 20];
    let (mut i, mut n) = (0, n);
    loop {
        digits[i] = b'0' + (n % 10) as u8;
        i += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for (j, d) in digits[..i].iter().rev().enumerate() {
        buf[j] = *d;
    }
    buf[i] = 0;
    buf.as_ptr().cast()
}

impl Jail {
    /// The descriptor of eddy's init program that entering needs, or -1.
    pub(crate) fn init_fd(&self) -> RawFd {
        self.init.as_ref().map_or(-1, |f| f.as_raw_fd())
    }

    /// Enters the sandbox; called by `pre_exec`. Returns in the process that becomes the
    /// function's program; the namespace's helpers never return.
    ///
    /// # Safety
    /// Only between fork and exec, in the child.
    pub(crate) unsafe fn enter(&self) -> io::Result<()> {
        // SAFETY (whole body): async-signal-safe system calls on prepared, NUL-terminated
        // buffers; nothing allocates.
        unsafe {
            libc::umask(0o022);
            // eddy ignores SIGXFSZ (a write past a file size limit is an error it handles);
            // the function gets the default back.
            libc::signal(libc::SIGXFSZ, libc::SIG_DFL);
            if self.namespaces {
                self.unshare()?;
                check(libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ))?;
                for step in &self.steps {
                    step.open_source()?;
                }
                for step in &self.steps {
                    step.take()?;
                }
                let mut status = [0 as c_int; 2];
                check(libc::pipe2(status.as_mut_ptr(), libc::O_CLOEXEC))?;
                let init = libc::fork();
                check(init)?;
                if init > 0 {
                    libc::close(status[1]);
                    self.outer(init, status[0]);
                }
                // P2: PID 1 of the new namespace.
                libc::close(status[0]);
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::mount(
                    c"proc".as_ptr(),
                    c"/proc".as_ptr(),
                    c"proc".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    std::ptr::null(),
                ) < 0
                {
                    setup_failed(&[b"mounting /proc for the function failed\n"]);
                }
                let program = libc::fork();
                if program < 0 {
                    setup_failed(&[b"starting the function failed (fork)\n"]);
                }
                if program > 0 {
                    // The init holds no rights the function lacks.
                    if self.become_function().is_err() {
                        setup_failed(&[b"the namespace init cannot drop its rights\n"]);
                    }
                    self.namespace_init(program, status[1]);
                }
                libc::close(status[1]);
            }
            check(libc::chdir(self.cwd.as_ptr()))?;
            self.become_function()?;
            // Nothing eddy holds open reaches the function (a descriptor of its database,
            // say): whatever was not marked close-on-exec is now.
            close_range(3, u32::MAX, CLOSE_RANGE_CLOEXEC);
            Ok(())
        }
    }

    unsafe fn unshare(&self) -> io::Result<()> {
        let spaces = libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC;
        // SAFETY: see `enter`.
        unsafe {
            match &self.user_maps {
                None => check(libc::unshare(spaces)),
                Some(maps) => {
                    // The maps of a process that is not dumpable belong to root: become
                    // dumpable for as long as it takes to write them.
                    libc::prctl(libc::PR_SET_DUMPABLE, 1);
                    let made = check(libc::unshare(spaces | libc::CLONE_NEWUSER))
                        .and_then(|()| write_file(c"/proc/self/setgroups", b"deny"))
                        .and_then(|()| write_file(c"/proc/self/uid_map", maps.uid_map.as_bytes()))
                        .and_then(|()| write_file(c"/proc/self/gid_map", maps.gid_map.as_bytes()));
                    libc::prctl(libc::PR_SET_DUMPABLE, 0);
                    made
                }
            }
        }
    }

    /// Takes the function's identity and gives up gaining any more.
    unsafe fn become_function(&self) -> io::Result<()> {
        // SAFETY: see `enter`.
        unsafe {
            if let Some((uid, gid)) = self.identity {
                check(libc::setgroups(0, std::ptr::null()))?;
                check(libc::setgid(gid))?;
                check(libc::setuid(uid))?;
            }
            check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
        }
    }

    /// P1: waits for the namespace and ends as its function did.
    unsafe fn outer(&self, init: libc::pid_t, status: RawFd) -> ! {
        close_except([status, self.init_fd()]);
        // SAFETY: see `enter`.
        unsafe {
            self.exec_init(b"outer\0", status, init);
            outer_loop(init, status)
        }
    }

    /// P2: reaps the namespace and reports how the function ended.
    unsafe fn namespace_init(&self, program: libc::pid_t, status: RawFd) -> ! {
        close_except([status, self.init_fd()]);
        // SAFETY: see `enter`.
        unsafe {
            self.exec_init(b"namespace\0", status, program);
            namespace_loop(program, status)
        }
    }

    /// Replaces this helper with eddy's init program, which holds none of eddy's memory.
    /// Returns only if that cannot be done (the helper then does the same work itself).
    unsafe fn exec_init(&self, role: &[u8], fd: RawFd, child: libc::pid_t) {
        let Some(init) = &self.init else { return };
        // The status pipe must outlive the exec (it was made close-on-exec for the program).
        // SAFETY: fcntl on a descriptor of this process.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
        let (mut fd_text, mut pid_text) = ([0u8; 24], [0u8; 24]);
        let argv = [
            role.as_ptr().cast(),
            decimal(fd as u64, &mut fd_text),
            decimal(child as u64, &mut pid_text),
        ];
        // SAFETY: NUL-terminated arguments that outlive the call.
        unsafe { execute_init(init.as_raw_fd(), argv) };
    }
}

/// Replaces this process with eddy's init program (`init`, opened for `execveat`), run as
/// `eddy __sandbox-init ARGS…`. Returns only if that fails.
///
/// Its environment holds one setting: eddy's binary allocates with mimalloc, which backs its
/// first allocation with transparent huge pages where the host makes them on request — 4 MB of
/// memory for an init that needs a few kB, in every helper of every worker. (Other allocators
/// ignore it; the function's program never sees it.)
///
/// # Safety
/// `args` are NUL-terminated texts; async-signal-safe.
pub(super) unsafe fn execute_init<const N: usize>(init: RawFd, args: [*const c_char; N]) {
    const { assert!(N <= 5, "eddy's init takes at most five arguments here") };
    let mut argv = [std::ptr::null(); 8];
    argv[0] = c"eddy".as_ptr();
    argv[1] = INIT_COMMAND.as_ptr();
    argv[2..2 + N].copy_from_slice(&args);
    let envp: [*const c_char; 2] = [c"MIMALLOC_ALLOW_THP=0".as_ptr(), std::ptr::null()];
    // SAFETY: execveat with NULL-terminated argv/envp arrays that outlive the call.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            init as libc::c_long,
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_long,
        );
    }
}

impl ChildStep {
    /// Opens the directory an exposure binds, while it is still visible.
    unsafe fn open_source(&self) -> io::Result<()> {
        if let ChildStep::Expose { target, source, .. } = self {
            // SAFETY: open with a NUL-terminated path.
            let fd = unsafe {
                libc::open(
                    target.as_ptr(),
                    libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                )
            };
            check(fd)?;
            source.store(fd, Ordering::Relaxed);
        }
        Ok(())
    }

    unsafe fn take(&self) -> io::Result<()> {
        // SAFETY: see `Jail::enter`.
        unsafe {
            match self {
                ChildStep::Mask {
                    target,
                    options,
                    flags,
                } => check(libc::mount(
                    c"tmpfs".as_ptr(),
                    target.as_ptr(),
                    c"tmpfs".as_ptr(),
                    *flags,
                    options.as_ptr().cast(),
                )),
                ChildStep::Expose {
                    target,
                    source,
                    create,
                    keep_flags,
                } => {
                    for dir in create {
                        if libc::mkdir(dir.as_ptr(), 0o755) < 0
                            && io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST)
                        {
                            return Err(io::Error::last_os_error());
                        }
                    }
                    let fd = source.load(Ordering::Relaxed);
                    let mut path =
                        *b"/proc/self/fd/\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
                    let mut digits = [0u8; 24];
                    decimal(fd as u64, &mut digits);
                    let len = digits.iter().position(|b| *b == 0).unwrap_or(0);
                    path[14..14 + len].copy_from_slice(&digits[..len]);
                    let bound = check(libc::mount(
                        path.as_ptr().cast(),
                        target.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND | libc::MS_REC,
                        std::ptr::null(),
                    ));
                    libc::close(fd);
                    bound?;
                    // Read-only where the kernel lets a namespace remount it so; the function's
                    // own user decides what it may write either way.
                    libc::mount(
                        std::ptr::null(),
                        target.as_ptr(),
                        std::ptr::null(),
                        libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | keep_flags,
                        std::ptr::null(),
                    );
                    Ok(())
                }
            }
        }
    }
}

/// The argument that makes the `eddy` binary run as a sandbox's init.
pub const INIT_COMMAND: &std::ffi::CStr = c"__sandbox-init";

/// Waits for the namespace's init and ends the way the function did (P1).
///
/// # Safety
/// Async-signal-safe; may run between fork and exec.
pub(crate) unsafe fn outer_loop(init: libc::pid_t, status_fd: RawFd) -> ! {
    // SAFETY: waitpid/read/_exit/kill on plain values.
    unsafe {
        let mut init_status: c_int = 0;
        while libc::waitpid(init, &mut init_status, 0) < 0
            && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
        {}
        let mut reported = [0u8; 4];
        let n = libc::read(status_fd, reported.as_mut_ptr().cast(), 4);
        let status = if n == 4 {
            c_int::from_ne_bytes(reported)
        } else {
            init_status
        };
        mirror(status)
    }
}

/// Reaps everything in the namespace until the function's program ends, reports its status
/// and ends (P2, PID 1: the kernel then kills whatever is left).
///
/// # Safety
/// Async-signal-safe; may run between fork and exec.
pub(crate) unsafe fn namespace_loop(program: libc::pid_t, status_fd: RawFd) -> ! {
    // SAFETY: waitpid/write/_exit on plain values.
    unsafe {
        loop {
            let mut status: c_int = 0;
            let pid = libc::waitpid(-1, &mut status, 0);
            if pid == program {
                let bytes = status.to_ne_bytes();
                libc::write(status_fd, bytes.as_ptr().cast(), 4);
                libc::_exit(0);
            }
            if pid < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                setup_failed(&[b"the namespace init lost the function's process\n"]);
            }
        }
    }
}

/// Ends this process as a wait status says: the same exit code, or the same signal.
unsafe fn mirror(status: c_int) -> ! {
    // SAFETY: signal/kill/_exit on plain values.
    unsafe {
        if libc::WIFSIGNALED(status) {
            let signal = libc::WTERMSIG(status);
            libc::signal(signal, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, signal);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::kill(libc::getpid(), signal);
            libc::_exit(128 + signal);
        }
        libc::_exit(if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            SETUP_FAILED
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_written_in_place() {
        let mut buf = [0xffu8; 24];
        let text = decimal(4_294_967_295, &mut buf);
        // SAFETY: `decimal` NUL-terminates within the buffer.
        let written = unsafe { std::ffi::CStr::from_ptr(text) };
        assert_eq!(written.to_str().unwrap(), "4294967295");
        let text = decimal(0, &mut buf);
        // SAFETY: as above.
        assert_eq!(
            unsafe { std::ffi::CStr::from_ptr(text) }.to_str().unwrap(),
            "0"
        );
    }
}
