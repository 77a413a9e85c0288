//! `eddy serve` follows the disk: a changed manifest is applied without a restart (or, when it
//! is invalid, reported while the running app stays), and files in a bucket's `watch` folder
//! become objects, with their events.

mod common;

use common::*;
use serde_json::{Value, json};

fn function_names(eddy: &Eddy) -> Vec<String> {
    let functions = eddy.get("/_eddy/v1/functions").body;
    functions["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["FunctionName"].as_str().unwrap().to_string())
        .collect()
}

fn rewrite(eddy: &Eddy, manifest: &str) {
    let text = manifest.replace("$DIR", eddy.dir.path().to_str().unwrap());
    // As an editor saves: a new file renamed over the old one.
    let staged = eddy.dir.path().join(".app.yaml.swp");
    std::fs::write(&staged, text).unwrap();
    std::fs::rename(staged, eddy.dir.path().join("app.yaml")).unwrap();
}

const TABLE: &str =
    "tables: [{name: orders, primary_key: id, columns: {id: integer, status: text}}]\n";

#[test]
fn a_changed_manifest_is_applied_and_a_broken_one_is_reported() {
    let eddy = serve(TABLE);
    assert!(function_names(&eddy).is_empty());

    rewrite(
        &eddy,
        &format!(
            "{TABLE}functions: [{{name: audit, runtime: exec, command: [sh, -c, 'cat >&2']}}]
triggers: [{{function: audit, source: table/orders, events: [row:insert]}}]
"
        ),
    );
    eddy.wait_for("the new function", |e| function_names(e) == ["audit"]);
    eddy.json(
        "POST",
        "/_eddy/v1/tables/orders/rows",
        json!({"id": 1, "status": "new"}),
    );
    eddy.wait_for("the new trigger to run the new function", |e| {
        e.get("/_eddy/v1/invocations?function=audit").body["invocations"]
            .as_array()
            .is_some_and(|runs| runs.len() == 1)
    });

    rewrite(&eddy, "functions: [{name: audit, runtime: exec}]\n");
    eddy.wait_for("the broken manifest to be reported", |e| {
        e.log().contains("still running the previous configuration")
    });
    let log = eddy.log();
    assert!(
        log.contains("function `audit` is missing `command`, which the exec runtime needs"),
        "{log}"
    );
    assert_eq!(function_names(&eddy), ["audit"], "the running app stays");
    eddy.json(
        "POST",
        "/_eddy/v1/tables/orders/rows",
        json!({"id": 2, "status": "new"}),
    );
    eddy.wait_for("the running trigger to keep working", |e| {
        e.get("/_eddy/v1/invocations?function=audit").body["invocations"]
            .as_array()
            .is_some_and(|runs| runs.len() == 2)
    });

    // A table change that would lose data is refused; the app stays as it was.
    rewrite(
        &eddy,
        "tables: [{name: orders, primary_key: id, columns: {id: text, status: text}}]\n",
    );
    eddy.wait_for("the refused table change to be reported", |e| {
        e.log()
            .contains("cannot be applied; still running the previous configuration")
    });
    assert_eq!(function_names(&eddy), ["audit"]);
}

fn object_keys(eddy: &Eddy) -> Value {
    boto3(
        eddy,
        r#"out["keys"] = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket="inbox").get("Contents", [])}"#,
    )["keys"]
        .clone()
}

#[test]
fn files_in_a_watch_folder_become_objects_with_events() {
    let dir = tempfile::tempdir().unwrap();
    let inbox = dir.path().join("in");
    std::fs::create_dir(&inbox).unwrap();
    std::fs::write(inbox.join("before.txt"), "there at start").unwrap();
    std::fs::write(
        dir.path().join("app.yaml"),
        "buckets: [{name: inbox, watch: ./in}]
functions: [{name: seen, runtime: exec, command: [sh, -c, 'cat >&2']}]
triggers: [{function: seen, source: bucket/inbox, events: ['object:*']}]
",
    )
    .unwrap();
    let mut eddy = spawn(dir, "app.yaml");
    assert_eq!(
        object_keys(&eddy),
        json!({"before.txt": 14}),
        "ingested before serving"
    );

    std::fs::create_dir(inbox.join("photos")).unwrap();
    std::fs::write(inbox.join("photos/cat.jpg"), "meow").unwrap();
    eddy.wait_for("a new file", |e| {
        object_keys(e) == json!({"before.txt": 14, "photos/cat.jpg": 4})
    });
    std::fs::write(inbox.join("photos/cat.jpg"), "meow meow").unwrap();
    eddy.wait_for("a changed file", |e| {
        object_keys(e) == json!({"before.txt": 14, "photos/cat.jpg": 9})
    });
    std::fs::remove_dir_all(inbox.join("photos")).unwrap();
    eddy.wait_for("a removed folder", |e| {
        object_keys(e) == json!({"before.txt": 14})
    });

    // Served again: the folder is as the bucket has it, so nothing is ingested again.
    eddy.child.kill().unwrap();
    eddy.child.wait().unwrap();
    let dir = std::mem::replace(&mut eddy.dir, tempfile::tempdir().unwrap());
    let eddy = spawn(dir, "app.yaml");
    let events: Vec<String> = eddy.get("/_eddy/v1/events?limit=100").body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] == "bucket/inbox")
        .map(|e| {
            format!(
                "{} {}",
                e["kind"].as_str().unwrap(),
                e["key"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            "ObjectCreated:Put before.txt",
            "ObjectCreated:Put photos/cat.jpg",
            "ObjectCreated:Put photos/cat.jpg",
            "ObjectRemoved:Delete photos/cat.jpg"
        ],
        "one event per change, and none for the file that did not change"
    );
    eddy.wait_for("the trigger to see each change", |e| {
        e.get("/_eddy/v1/invocations?function=seen").body["invocations"]
            .as_array()
            .is_some_and(|runs| runs.len() == 4)
    });
}

/// A watch folder never follows a link: not a link to a file, not a link to a folder, and not
/// a folder swapped for a link between a change and its handling (the debounce window).
#[test]
fn a_watch_folder_never_follows_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let (inbox, outside) = (dir.path().join("in"), dir.path().join("outside"));
    std::fs::create_dir_all(inbox.join("sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("new.txt"), "SECRET from outside the folder").unwrap();
    std::fs::write(inbox.join("sub/a.txt"), "inside").unwrap();
    std::os::unix::fs::symlink(outside.join("new.txt"), inbox.join("linked.txt")).unwrap();
    std::fs::write(
        dir.path().join("app.yaml"),
        "buckets: [{name: inbox, watch: ./in}]\n",
    )
    .unwrap();
    let eddy = spawn(dir, "app.yaml");
    assert_eq!(
        object_keys(&eddy),
        json!({"sub/a.txt": 6}),
        "the linked file is not ingested"
    );

    // A new file appears; before eddy handles it, its folder is swapped for a link outside.
    std::fs::write(inbox.join("sub/new.txt"), "inside, new").unwrap();
    std::fs::rename(inbox.join("sub"), inbox.join("sub.old")).unwrap();
    std::os::unix::fs::symlink(&outside, inbox.join("sub")).unwrap();
    eddy.wait_for("the swap to be handled", |e| {
        object_keys(e) == json!({"sub.old/a.txt": 6, "sub.old/new.txt": 11})
    });
    let contents = boto3(
        &eddy,
        r#"out["all"] = [s3.get_object(Bucket="inbox", Key=o["Key"])["Body"].read().decode() for o in s3.list_objects_v2(Bucket="inbox").get("Contents", [])]"#,
    );
    assert!(
        !contents.to_string().contains("SECRET"),
        "nothing from outside the folder: {contents}"
    );
}
