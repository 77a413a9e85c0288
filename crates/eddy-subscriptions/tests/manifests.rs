//! Manifests through the library: several files merge into one app, defaults are filled in,
//! and a name declared in two files is an error naming both.

use std::time::Duration;

use eddy_subscriptions::*;

fn load_texts(files: &[(&str, &str)]) -> Loaded {
    let dir = std::env::temp_dir();
    let texts: Vec<ManifestText> = files
        .iter()
        .map(|(name, text)| ManifestText {
            name,
            text,
            dir: &dir,
        })
        .collect();
    load(&texts)
}

#[test]
fn files_merge_into_one_app_with_defaults() {
    let storage = "buckets: [{name: photos}]\ntables:\n  - {name: orders, primary_key: id, columns: {id: integer, status: text}}\n";
    let code = "functions:\n  - {name: f, runtime: in_process}\ntriggers:\n  - {function: f, source: bucket/photos, events: [object:created]}\n  - {function: f, source: table/orders, events: [row:modify], filter: {changed: [status]}, ordering: per_key}\n";
    let loaded = load_texts(&[("storage.yaml", storage), ("code.yaml", code)]);
    assert!(loaded.findings.is_empty(), "{}", loaded.findings);
    let app = loaded.app.unwrap();
    let f = &app.functions[0];
    assert_eq!(
        (f.memory_mb, f.timeout, f.concurrency),
        (128, Duration::from_secs(3), 4)
    );
    let names: Vec<&str> = app.triggers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["f-on-photos", "f-on-orders"]);
    assert_eq!(app.triggers[0].retry, RetryPolicy::default());
    assert_eq!(app.triggers[1].ordering, Ordering::PerKey);
    let orders = app.table("orders").unwrap();
    assert!(
        orders.schema.column("status").unwrap().nullable,
        "short-form columns are nullable"
    );
    assert!(
        !orders.schema.column("id").unwrap().nullable,
        "key columns never are"
    );
}

#[test]
fn a_name_in_two_files_names_both_places() {
    let a = "functions:\n  - {name: f, runtime: in_process}\n";
    let b = "\nfunctions:\n  - {name: f, runtime: in_process}\n";
    let loaded = load_texts(&[("a.yaml", a), ("b.yaml", b)]);
    assert!(loaded.app.is_none());
    let text = loaded.findings.to_string();
    assert_eq!(
        text,
        "error: function `f` is declared twice\n  --> b.yaml:3:5\n  = first declared at a.yaml:2:5\n1 error and 0 warnings"
    );
}

#[test]
fn an_empty_manifest_is_an_empty_app() {
    let loaded = load_texts(&[("empty.yaml", "")]);
    assert_eq!(loaded.app, Some(App::default()));
}

#[test]
fn unreadable_files_are_reported() {
    let loaded = load_files(&[std::path::PathBuf::from("/no/such/manifest.yaml")]);
    assert!(loaded.app.is_none());
    assert!(
        loaded
            .findings
            .to_string()
            .contains("cannot read the manifest"),
        "{}",
        loaded.findings
    );
}
