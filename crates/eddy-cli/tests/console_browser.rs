//! The console in a real browser: Debian's Chromium, driven by `tests/browser/console.mjs`
//! (playwright-core, installed by `scripts/test`) against the real binary. With
//! `EDDY_CONSOLE_SCREENSHOTS=DIR` the run saves a screenshot of each page there (how
//! docs/console/ is made).

mod common;

use std::process::Command;

use common::*;

const APP: &str = r#"
buckets: [{name: inbox}]
tables: [{name: orders, primary_key: id, columns: {id: integer, status: text}}]
functions:
  - {name: work, runtime: exec, command: [sh, handler.sh], code: ./fn}
triggers:
  - {function: work, source: bucket/inbox, events: [object:created], retry: {max_attempts: 1}}
access_keys:
  - name: reader
    id: reader-key
    secret_env: READER_SECRET
    policy: [{allow: ["admin:read", "objects:list", "objects:read", "tables:read"], resources: ["*"]}]
"#;

/// Refuses what has `bad` in it: the failure the browser fixes.
const HANDLER: &str = r#"read -r event
case "$event" in *bad*) echo "cannot handle this one" >&2; exit 3;; esac
echo "handler saw $event" >&2
echo '{"handled": true}'
"#;

#[test]
fn a_person_signs_in_follows_an_upload_fixes_a_failure_and_redrives_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.yaml"), APP).unwrap();
    std::fs::create_dir(dir.path().join("fn")).unwrap();
    let handler = dir.path().join("fn/handler.sh");
    std::fs::write(&handler, HANDLER).unwrap();
    let eddy = spawn_with(
        dir,
        "app.yaml",
        &[("READER_SECRET", "reader-secret-0123456789")],
    );
    let row = serde_json::json!({"id": 1, "status": "new"});
    assert_eq!(
        eddy.json("POST", "/_eddy/v1/tables/orders/rows", row)
            .status,
        201
    );

    let scripts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        scripts.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed in {}: scripts/test installs it (npm ci there)",
        scripts.display()
    );
    let mut node = Command::new("node");
    node.arg(scripts.join("console.mjs"))
        .env("EDDY_URL", &eddy.base)
        .env("EDDY_HANDLER", &handler);
    if let Ok(shots) = std::env::var("EDDY_CONSOLE_SCREENSHOTS") {
        node.env("EDDY_SHOTS", shots);
    }
    let run = node.output().expect("node runs");
    assert!(
        run.status.success(),
        "the browser's checks failed:\n{}\n{}\neddy logged:\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
        eddy.log()
    );
}
