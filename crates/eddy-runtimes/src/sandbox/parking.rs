//! A spare's wait, out of eddy's memory.
//!
//! A process held ahead of need — a function's spare — may wait at its gate for minutes. Held
//! as a copy of eddy it would share eddy's memory copy-on-write all that time: it would pin a
//! copy of every page eddy changes after the fork (converging on all of eddy's memory at the
//! fork), and eddy would pay a page copy on its first write to each. So once it is in its
//! cgroups, such a process replaces itself with eddy's small init program, run as
//! `eddy __sandbox-init held GATE LAUNCH INIT`: it reads what it is to become from LAUNCH (a
//! memory file eddy wrote before the fork: its sandbox and its program), waits at the gate, and
//! then enters the sandbox and executes the program exactly as the copy would have.

use std::ffi::{CStr, CString};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::AtomicI32;

use super::child::{ChildStep, Jail, UserMaps, setup_failed};
use super::held::{Held, Program, proceed};

/// The launch file's first bytes: a launch written by another version of eddy, or in another
/// layout, is refused, not misread. Its last number is the layout's: raise it with any change
/// to [`encode`].
const FORMAT: &[u8] = concat!("eddy-launch ", env!("CARGO_PKG_VERSION"), " 1\n").as_bytes();

/// A memory file holding `jail` and `program`, for a held process to read once it is eddy's
/// init program. Close-on-exec: only the process it is made for keeps it.
pub(crate) fn launch_file(jail: &Jail, program: &Program) -> io::Result<OwnedFd> {
    let bytes = encode(jail, program);
    // SAFETY: memfd_create with a NUL-terminated name; a non-negative result is ours.
    let fd = unsafe { libc::memfd_create(c"eddy-launch".as_ptr(), libc::MFD_CLOEXEC) };
    super::child::check(fd)?;
    // SAFETY: `fd` was just made and nothing else owns it.
    let file = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut written = 0;
    while written < bytes.len() {
        written += nix::unistd::write(&file, &bytes[written..])?;
    }
    Ok(file)
}

/// The init program's part for a held process (`held GATE LAUNCH INIT`): never returns. It
/// becomes what its launch says once its gate opens, ends when the gate closes unopened, and
/// exits [`SETUP_FAILED`](super::SETUP_FAILED) saying why when its launch cannot be read.
pub(crate) fn run(gate: RawFd, launch: RawFd, init: RawFd) -> ! {
    // Nothing of it may be read by a function of eddy's user (its launch holds a function's
    // environment), as eddy's own memory may not.
    super::protect_this_process();
    // SAFETY: the descriptors were handed over by the held process, which made them
    // inheritable for this program alone; nothing else in this process owns them.
    let (launch, init) = unsafe {
        (
            std::fs::File::from_raw_fd(launch),
            Arc::new(OwnedFd::from_raw_fd(init)),
        )
    };
    // SAFETY: fcntl on a descriptor this process owns: the program to come must not inherit it.
    unsafe { libc::fcntl(init.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    let read = read_launch(launch).and_then(|bytes| decode(&bytes, init.clone()));
    // SAFETY: `gate` is the held process's end of its gate, handed over like the others.
    let held = Held::from(unsafe { OwnedFd::from_raw_fd(gate) });
    // SAFETY: this process is single-threaded: what may run between fork and exec may run here.
    unsafe {
        held.wait(init.as_raw_fd());
        let (jail, program) = match read {
            Ok(launch) => launch,
            Err(reason) => setup_failed(&[
                b"the held process cannot read its launch: ",
                reason.as_bytes(),
                b"\n",
            ]),
        };
        // The program starts as a child of eddy does: with SIGPIPE's default action, which
        // Rust's start-up set aside in this program.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        proceed(&jail, &program)
    }
}

fn read_launch(mut launch: std::fs::File) -> Result<Vec<u8>, String> {
    use std::io::Seek;
    let mut bytes = Vec::new();
    launch
        .seek(io::SeekFrom::Start(0))
        .and_then(|_| launch.read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    Ok(bytes)
}

fn encode(jail: &Jail, program: &Program) -> Vec<u8> {
    let mut out = Encoder(FORMAT.to_vec());
    let (path, argv, envp) = program.texts();
    out.text(path);
    out.texts(argv);
    out.texts(envp);
    out.number(jail.namespaces.into());
    match &jail.user_maps {
        None => out.number(0),
        Some(maps) => {
            out.number(1);
            out.text(&maps.uid_map);
            out.text(&maps.gid_map);
        }
    }
    out.number(jail.steps.len() as u64);
    for step in &jail.steps {
        match step {
            ChildStep::Mask {
                target,
                options,
                flags,
            } => {
                out.number(0);
                out.text(target);
                out.text(options);
                out.number(*flags);
            }
            ChildStep::Expose {
                target,
                create,
                keep_flags,
                source: _,
            } => {
                out.number(1);
                out.text(target);
                out.texts(create);
                out.number(*keep_flags);
            }
        }
    }
    out.text(&jail.cwd);
    match jail.identity {
        None => out.number(0),
        Some((uid, gid)) => {
            out.number(1);
            out.number(uid.into());
            out.number(gid.into());
        }
    }
    out.0
}

fn decode(bytes: &[u8], init: Arc<OwnedFd>) -> Result<(Jail, Program), String> {
    let Some(rest) = bytes.strip_prefix(FORMAT) else {
        return Err(format!(
            "it was not written by this build of eddy (it expects {:?})",
            String::from_utf8_lossy(FORMAT)
        ));
    };
    let mut input = Decoder(rest);
    let program = Program::from_texts(input.text()?, input.texts()?, input.texts()?);
    let namespaces = input.number()? != 0;
    let user_maps = match input.number()? {
        0 => None,
        _ => Some(UserMaps {
            uid_map: input.text()?,
            gid_map: input.text()?,
        }),
    };
    let count = input.count()?;
    let mut steps = Vec::with_capacity(count);
    for _ in 0..count {
        steps.push(match input.number()? {
            0 => ChildStep::Mask {
                target: input.text()?,
                options: input.text()?,
                flags: input.number()?,
            },
            1 => ChildStep::Expose {
                target: input.text()?,
                create: input.texts()?,
                keep_flags: input.number()?,
                source: AtomicI32::new(-1),
            },
            kind => return Err(format!("a step of unknown kind {kind}")),
        });
    }
    let cwd = input.text()?;
    let identity = match input.number()? {
        0 => None,
        _ => Some((input.id()?, input.id()?)),
    };
    if !input.0.is_empty() {
        return Err(format!("{} bytes too many", input.0.len()));
    }
    let jail = Jail {
        namespaces,
        user_maps,
        steps,
        cwd,
        identity,
        init: Some(init),
    };
    Ok((jail, program))
}

/// Numbers as eight bytes, texts as their length and bytes.
struct Encoder(Vec<u8>);

impl Encoder {
    fn number(&mut self, n: u64) {
        self.0.extend_from_slice(&n.to_le_bytes());
    }

    fn text(&mut self, text: &CStr) {
        self.number(text.to_bytes().len() as u64);
        self.0.extend_from_slice(text.to_bytes());
    }

    fn texts(&mut self, texts: &[CString]) {
        self.number(texts.len() as u64);
        for text in texts {
            self.text(text);
        }
    }
}

struct Decoder<'a>(&'a [u8]);

impl Decoder<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.0.len() < n {
            return Err("it ends early".into());
        }
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(taken)
    }

    fn number(&mut self) -> Result<u64, String> {
        let bytes = self.take(8)?;
        Ok(u64::from_le_bytes(bytes.try_into().expect("eight bytes")))
    }

    /// A count of items that each take at least eight bytes, so never more than are left.
    fn count(&mut self) -> Result<usize, String> {
        let n = self.number()?;
        if n > (self.0.len() / 8) as u64 {
            return Err(format!("it counts {n} items in {} bytes", self.0.len()));
        }
        Ok(n as usize)
    }

    fn id(&mut self) -> Result<u32, String> {
        let n = self.number()?;
        u32::try_from(n).map_err(|_| format!("{n} is not a user or group id"))
    }

    fn text(&mut self) -> Result<CString, String> {
        let len = self.count_bytes()?;
        CString::new(self.take(len)?).map_err(|_| "a text holds a NUL".to_string())
    }

    fn count_bytes(&mut self) -> Result<usize, String> {
        let n = self.number()?;
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.0.len())
            .ok_or_else(|| format!("a text of {n} bytes in {}", self.0.len()))
    }

    fn texts(&mut self) -> Result<Vec<CString>, String> {
        let n = self.count()?;
        (0..n).map(|_| self.text()).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::sandbox::{DEFAULT_UIDS, Mode, Sandbox, SandboxOptions};

    fn init() -> Arc<OwnedFd> {
        Arc::new(std::fs::File::open("/dev/null").unwrap().into())
    }

    /// A description of a launch that shows every field.
    fn described(jail: &Jail, program: &Program) -> String {
        let steps: Vec<String> = jail
            .steps
            .iter()
            .map(|step| match step {
                ChildStep::Mask {
                    target,
                    options,
                    flags,
                } => format!("mask {target:?} {options:?} {flags}"),
                ChildStep::Expose {
                    target,
                    create,
                    keep_flags,
                    source,
                } => format!("expose {target:?} {create:?} {keep_flags} {source:?}"),
            })
            .collect();
        let maps = jail
            .user_maps
            .as_ref()
            .map(|m| (m.uid_map.clone(), m.gid_map.clone()));
        format!(
            "{:?} {} {maps:?} {steps:?} {:?} {:?} {}",
            program.texts(),
            jail.namespaces,
            jail.cwd,
            jail.identity,
            jail.init.is_some()
        )
    }

    /// What a held process reads is what eddy prepared for it, in every mode's shape: the
    /// namespaces' steps, a user namespace's maps, a function's own identity.
    #[test]
    fn a_launch_reads_back_as_it_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let program = Program::new(
            Path::new("/bin/sh"),
            &["-c".into(), "echo ran".into()],
            &[("SECRET".into(), "s p a c e s\n".into())],
        )
        .unwrap();
        let mut shapes = Vec::new();
        for mode in [Mode::Off, Mode::Isolated] {
            let Ok(sandbox) = Sandbox::start(SandboxOptions {
                mode: Some(mode),
                uids: DEFAULT_UIDS,
                data_dir: dir.path().to_path_buf(),
                init_program: None,
            }) else {
                eprintln!("NOTE: no {mode} sandbox here: its launch's shape not read back");
                continue;
            };
            let mut jail = sandbox
                .jail("probe", Path::new("/bin/sh"), &[], Path::new("/"))
                .unwrap();
            jail.init = Some(init());
            shapes.push(jail);
        }
        shapes.push(Jail {
            namespaces: true,
            user_maps: Some(UserMaps {
                uid_map: c"1000 1000 1\n".into(),
                gid_map: c"1000 1000 1\n".into(),
            }),
            steps: vec![ChildStep::Expose {
                target: c"/srv/code".into(),
                source: AtomicI32::new(-1),
                create: vec![c"/srv/code/a".into(), c"/srv/code/b".into()],
                keep_flags: libc::MS_NOSUID,
            }],
            cwd: c"/srv/code".into(),
            identity: Some((2_000_000_000, 2_000_000_001)),
            init: Some(init()),
        });
        for jail in shapes {
            let bytes = encode(&jail, &program);
            let (read_jail, read_program) = decode(&bytes, init()).unwrap();
            assert_eq!(
                described(&read_jail, &read_program),
                described(&jail, &program)
            );
        }
    }

    /// A launch from another build, or cut short, or padded, is refused with its reason, never
    /// read as something else.
    #[test]
    fn a_launch_that_is_not_whole_or_not_this_builds_is_refused() {
        let program = Program::new(Path::new("/bin/true"), &[], &[]).unwrap();
        let jail = Jail {
            namespaces: false,
            user_maps: None,
            steps: Vec::new(),
            cwd: c"/".into(),
            identity: None,
            init: None,
        };
        let bytes = encode(&jail, &program);
        assert!(decode(&bytes, init()).is_ok());
        let mut other = bytes.clone();
        other[0] = b'E';
        assert!(
            decode(&other, init())
                .err()
                .unwrap()
                .contains("not written by this build")
        );
        for cut in [FORMAT.len(), bytes.len() - 1] {
            assert_eq!(
                decode(&bytes[..cut], init()).err().unwrap(),
                "it ends early"
            );
        }
        let mut padded = bytes.clone();
        padded.push(0);
        assert_eq!(decode(&padded, init()).err().unwrap(), "1 bytes too many");
        // A count beyond what is left is refused before anything is made for it.
        let mut huge = FORMAT.to_vec();
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(
            decode(&huge, init())
                .err()
                .unwrap()
                .starts_with("a text of")
        );
    }
}
