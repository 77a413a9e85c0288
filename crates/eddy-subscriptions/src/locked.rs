//! The locked app: the app exactly as eddy understood its manifests (defaults filled in, paths
//! resolved, the code each function runs identified by a digest), as one versioned value. It
//! is what `eddy validate --json` prints, what a deploy stores and what every node runs.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::app::{App, Runtime};

/// The format of [`LockedApp`]; a node refuses one written by a newer eddy.
pub const LOCKED_APP_VERSION: u32 = 1;

/// The most bytes of code hashed for one function; a larger folder is refused (its digest
/// would take too long to compute at every reload).
pub const MAX_CODE_BYTES: u64 = 1 << 30;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LockedApp {
    pub version: u32,
    pub app: App,
    /// Per function with code on disk: `sha256:` and the hex digest of its files (see
    /// [`code_digest`]).
    pub code: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("function `{function}`: cannot read its code at {path}: {reason}")]
    Code {
        function: String,
        path: PathBuf,
        reason: String,
    },
    #[error("the locked app is not valid JSON for this eddy: {0}")]
    Malformed(String),
    #[error(
        "the locked app has format version {found}; this eddy reads version {LOCKED_APP_VERSION} (upgrade it)"
    )]
    NewerVersion { found: u32 },
}

impl LockedApp {
    /// Locks `app`: reads the code of each function to digest it.
    pub fn lock(app: App) -> Result<Self, LockError> {
        let mut code = BTreeMap::new();
        for function in &app.functions {
            let Some(path) = code_path(&function.runtime) else {
                continue;
            };
            let digest = code_digest(&path).map_err(|reason| LockError::Code {
                function: function.name.to_string(),
                path: path.clone(),
                reason,
            })?;
            code.insert(function.name.to_string(), digest);
        }
        Ok(Self {
            version: LOCKED_APP_VERSION,
            app,
            code,
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a locked app serializes")
    }

    /// Reads a locked app back, refusing one from a newer format.
    pub fn from_json(text: &str) -> Result<Self, LockError> {
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let version: Version =
            serde_json::from_str(text).map_err(|e| LockError::Malformed(e.to_string()))?;
        if version.version > LOCKED_APP_VERSION {
            return Err(LockError::NewerVersion {
                found: version.version,
            });
        }
        serde_json::from_str(text).map_err(|e| LockError::Malformed(e.to_string()))
    }

    /// Whether the code on this machine is still what was locked, per function: the functions
    /// whose folder now differs (or cannot be read).
    pub fn changed_code(&self) -> Vec<String> {
        let mut changed = Vec::new();
        for function in &self.app.functions {
            let (Some(path), Some(locked)) = (
                code_path(&function.runtime),
                self.code.get(function.name.as_str()),
            ) else {
                continue;
            };
            if code_digest(&path).ok().as_ref() != Some(locked) {
                changed.push(function.name.to_string());
            }
        }
        changed
    }
}

/// The code a function runs from: the folder of a Node.js or Python handler; for `exec` and
/// `provided`, the program when it is a file in the function's folder (a program found on the
/// PATH, like `sh`, is the system's, not the app's).
pub fn code_path(runtime: &Runtime) -> Option<PathBuf> {
    match runtime {
        Runtime::Nodejs { code, .. } | Runtime::Python { code, .. } => Some(code.clone()),
        Runtime::Exec { command, dir } | Runtime::Provided { command, dir } => {
            let program = Path::new(command.first()?);
            let local = program.components().count() > 1 || program.is_absolute();
            let path = dir.join(program);
            (local && path.is_file()).then_some(path)
        }
        Runtime::Webhook { .. } | Runtime::InProcess => None,
    }
}

/// `sha256:` and the hex SHA-256 over the code at `path`: for a folder, each regular file's
/// path relative to it and its contents, in path order, leaving out files a runtime or an
/// editor writes beside the code ([`generated`]); links are not followed.
pub fn code_digest(path: &Path) -> Result<String, String> {
    let mut files = Vec::new();
    if path.is_file() {
        files.push((PathBuf::new(), path.to_path_buf()));
    } else {
        collect(path, Path::new(""), &mut files)?;
        files.sort();
    }
    let mut hash = Sha256::new();
    let mut total = 0u64;
    let mut buffer = vec![0u8; 64 * 1024];
    for (relative, file) in files {
        let name = relative.to_string_lossy();
        hash.update((name.len() as u64).to_le_bytes());
        hash.update(name.as_bytes());
        let mut reader =
            std::fs::File::open(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        loop {
            let n = reader
                .read(&mut buffer)
                .map_err(|e| format!("{}: {e}", file.display()))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > MAX_CODE_BYTES {
                return Err(format!(
                    "more than {} MiB of code; eddy digests at most that much per function",
                    MAX_CODE_BYTES >> 20
                ));
            }
            hash.update(&buffer[..n]);
        }
        // Separates one file's contents from the next file's name.
        hash.update([0xff]);
    }
    Ok(format!("sha256:{}", hex::encode(hash.finalize())))
}

fn collect(dir: &Path, relative: &Path, files: &mut Vec<(PathBuf, PathBuf)>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let kind = entry
            .file_type()
            .map_err(|e| format!("{}: {e}", entry.path().display()))?;
        let name = relative.join(entry.file_name());
        if generated(&name) {
            continue;
        }
        if kind.is_dir() {
            collect(&entry.path(), &name, files)?;
        } else if kind.is_file() {
            files.push((name, entry.path()));
        }
    }
    Ok(())
}

/// Files a runtime or an editor writes beside the code, which are not code: Python's bytecode
/// cache (written when a worker imports the handler) and editors' swap files.
pub fn generated(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    path.components().any(|c| c.as_os_str() == "__pycache__")
        || name.ends_with(".pyc")
        || name.ends_with(".swp")
        || name.ends_with('~')
        || name.starts_with(".#")
}

/// Durations in the locked app are whole milliseconds.
pub(crate) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn a_digest_covers_names_and_contents_but_not_generated_files() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "index.js", "exports.handler = 1");
        write(dir.path(), "lib/util.js", "x");
        let first = code_digest(dir.path()).unwrap();
        assert!(first.starts_with("sha256:") && first.len() == 7 + 64);

        write(dir.path(), "__pycache__/util.cpython-311.pyc", "bytecode");
        write(dir.path(), ".index.js.swp", "swap");
        assert_eq!(code_digest(dir.path()).unwrap(), first, "generated files");

        write(dir.path(), "lib/util.js", "y");
        let changed = code_digest(dir.path()).unwrap();
        assert_ne!(changed, first, "a changed file");

        std::fs::rename(
            dir.path().join("lib/util.js"),
            dir.path().join("lib/other.js"),
        )
        .unwrap();
        assert_ne!(code_digest(dir.path()).unwrap(), changed, "a renamed file");
    }

    #[test]
    fn contents_cannot_be_moved_between_files_unnoticed() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write(a.path(), "a", "bc");
        write(b.path(), "a", "b");
        write(b.path(), "c", "");
        assert_ne!(
            code_digest(a.path()).unwrap(),
            code_digest(b.path()).unwrap()
        );
    }

    #[test]
    fn a_locked_app_reads_back_as_it_was_written() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "code/index.js",
            "exports.handler = async () => 1",
        );
        let manifest = r#"
buckets: [{ name: photos }]
tables:
  - { name: orders, primary_key: id, columns: { id: integer, status: text } }
functions:
  - name: thumb
    runtime: nodejs
    code: ./code
    handler: index.handler
    timeout: 1500ms
    role: [{ deny: [objects:delete], resources: ["bucket/photos/*"] }]
  - { name: hook, runtime: webhook, url: "http://127.0.0.1:9/x", private_hosts: [127.0.0.1] }
triggers:
  - { function: thumb, source: bucket/photos, events: [object:created], filter: { prefix: [a/], size: { min: 1 } } }
  - function: hook
    source: table/orders
    events: [row:modify]
    filter: { new.status: { anything_but: [x] }, old.status: { exists: true }, changed: [status] }
    ordering: per_key
access_keys:
  - { name: ci, id: CIKEY, secret_env: CI_SECRET, policy: [{ allow: ["*"], resources: ["*"] }] }
"#;
        let loaded = crate::load(&[crate::ManifestText {
            name: "eddy.yaml",
            text: manifest,
            dir: dir.path(),
        }]);
        let app = loaded.app.unwrap_or_else(|| panic!("{}", loaded.findings));
        let locked = LockedApp::lock(app).unwrap();
        assert_eq!(
            locked.code["thumb"],
            code_digest(&dir.path().join("code")).unwrap()
        );
        assert_eq!(LockedApp::from_json(&locked.to_json()).unwrap(), locked);
        assert!(locked.changed_code().is_empty());
        write(
            dir.path(),
            "code/index.js",
            "exports.handler = async () => 2",
        );
        assert_eq!(locked.changed_code(), ["thumb"]);
    }

    #[test]
    fn a_newer_format_is_refused_and_garbage_explained() {
        let newer = format!(
            r#"{{"version": {}, "app": {{}}, "code": {{}}}}"#,
            LOCKED_APP_VERSION + 1
        );
        assert!(matches!(
            LockedApp::from_json(&newer),
            Err(LockError::NewerVersion { .. })
        ));
        let err = LockedApp::from_json("{\"version\": 1}").unwrap_err();
        assert!(err.to_string().contains("missing field"), "{err}");
    }
}
