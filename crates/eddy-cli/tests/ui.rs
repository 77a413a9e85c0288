//! Snapshot tests of `eddy validate`: each `tests/ui/NAME.yaml` (at the top of the workspace)
//! is checked by the real binary, and what it prints must equal `tests/ui/NAME.stderr` (and
//! `NAME.stdout`, when that exists) exactly. For a valid manifest, the locked app that
//! `eddy validate --json` prints must equal `NAME.locked.json` (the workspace's path written as
//! `$WORKSPACE`). `EDDY_BLESS=1 cargo test -p eddy-cli --test ui`
//! rewrites the expectations from the current output; review the diff before committing.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Schedules' next runs are shown after this moment, so that snapshots do not change with time.
const RUNS_AFTER: &str = "2026-12-01T00:00:00Z";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

#[test]
fn validate_messages_match_their_snapshots() {
    let root = workspace();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(root.join("tests/ui"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 15, "the snapshot cases are all there");
    let bless = std::env::var_os("EDDY_BLESS").is_some();
    let mut failures = Vec::new();
    for case in &cases {
        let relative = case.strip_prefix(&root).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_eddy"))
            .args(["validate", "--runs-after", RUNS_AFTER])
            .arg(relative)
            .current_dir(&root)
            .output()
            .unwrap();
        let code = out.status.code().unwrap_or(-1);
        let stderr = format!("{}exit: {code}\n", String::from_utf8_lossy(&out.stderr));
        let locked = if code == 0 {
            let out = Command::new(env!("CARGO_BIN_EXE_eddy"))
                .args(["validate", "--json", "--runs-after", RUNS_AFTER])
                .arg(relative)
                .current_dir(&root)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).replace(root.to_str().unwrap(), "$WORKSPACE")
        } else {
            String::new()
        };
        for (ext, actual) in [
            ("stderr", stderr),
            ("stdout", String::from_utf8_lossy(&out.stdout).into_owned()),
            ("locked.json", locked),
        ] {
            let expected_path = case.with_extension(ext);
            if bless {
                if !actual.is_empty() {
                    std::fs::write(&expected_path, &actual).unwrap();
                } else if expected_path.exists() {
                    std::fs::remove_file(&expected_path).unwrap();
                }
                continue;
            }
            let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
            if expected != actual {
                failures.push(format!(
                    "--- {} expected\n{expected}\n--- actual\n{actual}",
                    expected_path.display()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} snapshot(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
