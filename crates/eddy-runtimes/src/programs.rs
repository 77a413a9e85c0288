//! Which program a function's process runs, and which directories it needs to see to run.
//!
//! `node`, `python3` and `python` always mean the real interpreters, each asked where it lives
//! the first time a function needs it (a version manager's shim is a script that needs the
//! manager's whole tree and costs tens of milliseconds a start); other names are looked up on
//! eddy's `PATH`, and a name with a `/` is relative to the function's folder. A sandboxed
//! function sees the directory of its program and, for an interpreter, its installation
//! (`sys.prefix`), at their own paths.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A program and the directories it needs besides the function's own folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Program {
    pub path: PathBuf,
    pub needs: Vec<PathBuf>,
}

/// A real interpreter and where it is installed.
#[derive(Clone, Debug)]
pub(crate) struct Interpreter {
    pub path: PathBuf,
    pub prefixes: Vec<PathBuf>,
}

impl Interpreter {
    pub fn program(&self) -> Program {
        Program {
            path: self.path.clone(),
            needs: self.prefixes.clone(),
        }
    }
}

/// The interpreters on this machine, each looked for the first time it is needed (looking runs
/// it, which costs tens of milliseconds of CPU): an eddy whose functions run no Python never
/// runs `python3`, and one with no functions runs neither.
#[derive(Debug, Default)]
pub(crate) struct Interpreters {
    node: OnceLock<Option<Interpreter>>,
    python: OnceLock<Option<Interpreter>>,
}

impl Interpreters {
    /// The real `node`, if there is one.
    pub fn node(&self) -> Option<&Interpreter> {
        self.node
            .get_or_init(|| {
                ask("node", &["-p", "process.execPath"]).map(|lines| {
                    let path = PathBuf::from(&lines[0]);
                    // …/bin/node: the installation is the folder above bin/.
                    let prefix = path.parent().and_then(Path::parent).map(Path::to_path_buf);
                    Interpreter {
                        prefixes: prefix.into_iter().collect(),
                        path,
                    }
                })
            })
            .as_ref()
    }

    /// The real `python3`, if there is one.
    pub fn python(&self) -> Option<&Interpreter> {
        self.python
            .get_or_init(|| {
                ask(
                    "python3",
                    &[
                        "-c",
                        "import sys; print(sys.executable); print(sys.prefix); print(sys.base_prefix); print(sys.exec_prefix)",
                    ],
                )
                .map(|lines| {
                    let mut prefixes: Vec<PathBuf> = lines[1..].iter().map(PathBuf::from).collect();
                    prefixes.sort();
                    prefixes.dedup();
                    Interpreter {
                        path: PathBuf::from(&lines[0]),
                        prefixes,
                    }
                })
            })
            .as_ref()
    }

    /// The real interpreter `name` means, when it means one (looked for now if it was not).
    pub fn named(&self, name: &str) -> Option<&Interpreter> {
        match name {
            "node" | "nodejs" => self.node(),
            "python3" | "python" => self.python(),
            _ => None,
        }
    }

    /// The program `name` names for a function whose folder is `dir`; `None` when there is no
    /// such program.
    pub fn resolve(&self, name: &str, dir: &Path) -> Option<Program> {
        if let Some(found) = self.named(name) {
            return Some(found.program());
        }
        let path = if name.contains('/') {
            let path = dir.join(name);
            path.exists().then_some(path)?
        } else {
            search_path(name)?
        };
        Some(Program {
            path,
            needs: Vec::new(),
        })
    }
}

/// `name` on eddy's `PATH`: the first executable file of that name.
fn search_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Runs `program` with `args` and returns its output's lines when it succeeds with absolute
/// paths.
fn ask(program: &str, args: &[&str]) -> Option<Vec<String>> {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    (output.status.success() && !lines.is_empty() && lines.iter().all(|l| l.starts_with('/')))
        .then_some(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_to_real_programs() {
        let found = Interpreters::default();
        let dir = Path::new("/");
        let sh = found.resolve("sh", dir).expect("sh is on the PATH");
        assert!(sh.path.is_absolute() && sh.needs.is_empty(), "{sh:?}");
        assert!(
            found.node.get().is_none() && found.python.get().is_none(),
            "no interpreter is run before one is asked for"
        );
        let _ = found.named("node");
        assert!(
            found.node.get().is_some() && found.python.get().is_none(),
            "asking for one interpreter runs only that one"
        );
        if let Some(python) = found.python() {
            let resolved = found.resolve("python3", dir).unwrap();
            assert_eq!(resolved.path, python.path);
            assert!(
                !resolved.needs.is_empty(),
                "an interpreter brings its installation"
            );
            assert!(
                !python.path.to_string_lossy().contains("shims"),
                "{python:?}"
            );
        }
        assert_eq!(found.resolve("no-such-program-here", dir), None);
        assert_eq!(found.resolve("./missing.sh", dir), None);
    }
}
