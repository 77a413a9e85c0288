//! Crash safety: a child process writes objects and rows as fast as it can and reports each
//! write the moment it is acknowledged; the test kills it with SIGKILL at a random moment,
//! reopens the data directory and checks that every acknowledged write is there with exactly
//! one event, that the journal has no gap and the database is intact, and that no temporary or
//! half-written file shows up as an object. Then it does it again on the same directory.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;

use eddy_core::{BucketName, EventKind, Lineage, ObjectKey, TableName};
use eddy_objects::{ListParams, ListPosition, PutOptions};
use eddy_tables::{ColumnType, Key, TableSchema};
use eddy_tests::{Eddy, kill_child_while_writing, schema};
use md5::{Digest, Md5};
use serde_json::json;
use sha2::Sha256;

const CHILD_DIR: &str = "EDDY_CRASH_CHILD_DIR";
const CHILD_ROUND: &str = "EDDY_CRASH_CHILD_ROUND";
const ROUNDS: u64 = 5;
const WRITERS: u64 = 8;

fn bucket() -> BucketName {
    BucketName::new("crash").unwrap()
}

fn table(name: &str) -> TableName {
    TableName::new(name).unwrap()
}

fn schemas() -> [TableSchema; 2] {
    [
        schema(
            "items",
            &[("id", ColumnType::Integer), ("payload", ColumnType::Text)],
        ),
        schema(
            "counters",
            &[("task", ColumnType::Integer), ("n", ColumnType::Integer)],
        ),
    ]
}

/// The body of object number `i`: its size varies from empty to 64 KiB.
fn body(round: u64, writer: u64, i: u64) -> Vec<u8> {
    let len = (i * 7919 + writer * 31) % 65_536;
    (0..len).map(|b| (b ^ round ^ writer ^ i) as u8).collect()
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        let round = std::env::var(CHILD_ROUND).unwrap().parse().unwrap();
        return run_child(Path::new(&dir), round);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut acked = Acked::default();
    for round in 0..ROUNDS {
        let lines = crash_once(dir.path(), round);
        acked.record(&lines);
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(verify(dir.path(), &acked));
        println!(
            "round {round}: {} objects, {} rows, {} counter updates acknowledged so far",
            acked.objects.len(),
            acked.rows.len(),
            acked.counters.values().sum::<i64>()
        );
    }
    assert!(
        acked.objects.len() > 50 && acked.rows.len() > 50,
        "the child made too little progress to test anything"
    );
}

/// Runs one child, kills it with SIGKILL once it is writing, and returns what it printed.
fn crash_once(dir: &Path, round: u64) -> Vec<String> {
    let round_text = round.to_string();
    kill_child_while_writing(
        "acknowledged_writes_survive_sigkill",
        &[
            (CHILD_DIR, dir.as_os_str()),
            (CHILD_ROUND, round_text.as_ref()),
        ],
        round,
    )
}

fn run_child(dir: &Path, round: u64) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let eddy = Eddy::open(dir).await;
        let _ = eddy.objects.create_bucket(&bucket()).await;
        for schema in schemas() {
            eddy.tables.declare(schema).await.unwrap();
        }
        println!("READY");
        let mut tasks = Vec::new();
        for writer in 0..WRITERS {
            let (objects, tables) = (eddy.objects.clone(), eddy.tables.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0.. {
                    let line = match i % 3 {
                        0 => {
                            let key = format!("r{round}/w{writer}/{i} ü+%.bin");
                            let data = body(round, writer, i);
                            let meta = objects
                                .put_object(
                                    &bucket(),
                                    &ObjectKey::new(&key).unwrap(),
                                    &mut data.as_slice(),
                                    PutOptions::default(),
                                )
                                .await
                                .unwrap();
                            format!("ACK OBJ {} {key}", meta.etag)
                        }
                        1 => {
                            let id = (round * 100 + writer) * 1_000_000 + i;
                            let row = json!({"id": id, "payload": format!("item {id}")});
                            tables
                                .insert(&table("items"), vec![row], Lineage::root())
                                .await
                                .unwrap();
                            format!("ACK ROW {id}")
                        }
                        _ => {
                            let task = round * 100 + writer;
                            let n = i / 3;
                            tables
                                .put(
                                    &table("counters"),
                                    json!({"task": task, "n": n}),
                                    Lineage::root(),
                                )
                                .await
                                .unwrap();
                            format!("ACK CNT {task} {n}")
                        }
                    };
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "{line}").unwrap();
                    out.flush().unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[derive(Default)]
struct Acked {
    /// key → ETag
    objects: BTreeMap<String, String>,
    rows: BTreeSet<i64>,
    /// task → highest acknowledged n
    counters: HashMap<i64, i64>,
}

impl Acked {
    fn record(&mut self, lines: &[String]) {
        for line in lines {
            let mut parts = line.splitn(4, ' ');
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some("ACK"), Some("OBJ"), Some(etag), Some(key)) => {
                    self.objects.insert(key.to_string(), etag.to_string());
                }
                (Some("ACK"), Some("ROW"), Some(id), None) => {
                    self.rows.insert(id.parse().unwrap());
                }
                (Some("ACK"), Some("CNT"), Some(task), Some(n)) => {
                    let n: i64 = n.parse().unwrap();
                    let best = self.counters.entry(task.parse().unwrap()).or_default();
                    *best = (*best).max(n);
                }
                _ => {}
            }
        }
    }
}

async fn verify(dir: &Path, acked: &Acked) {
    let eddy = Eddy::open(dir).await;
    eddy.assert_sound().await;
    let journal = eddy.journal().await;

    // Every acknowledged object is there, byte-exact.
    for (key, etag) in &acked.objects {
        let meta = eddy
            .objects
            .head_object(&bucket(), &ObjectKey::new(key).unwrap())
            .await
            .unwrap();
        assert_eq!(&meta.etag, etag, "{key}");
    }
    // Every object (acknowledged or committed just before the kill) has a complete blob and
    // exactly one creation event; nothing else was ever recorded as created.
    let mut put_events: HashMap<&str, usize> = HashMap::new();
    for e in journal
        .iter()
        .filter(|e| e.kind == EventKind::ObjectCreatedPut)
    {
        *put_events.entry(e.key.as_str()).or_default() += 1;
    }
    let objects = list_all(&eddy).await;
    assert_eq!(objects.len(), put_events.len());
    for meta in &objects {
        assert_eq!(put_events.get(meta.key.as_str()), Some(&1), "{}", meta.key);
        let bytes = eddy.objects.stored_bytes(meta).await.unwrap();
        assert_eq!(bytes.len() as u64, meta.size);
        assert_eq!(hex::encode(Sha256::digest(&bytes)), meta.sha256);
        assert_eq!(hex::encode(Md5::digest(&bytes)), meta.etag);
    }

    // Rows: every acknowledged insert is there; one INSERT event per row; one MODIFY per
    // counter increment that committed.
    let schemas = schemas();
    for id in &acked.rows {
        let key = Key::new(&schemas[0], vec![json!(id)]).unwrap();
        assert!(
            eddy.tables
                .get(&table("items"), &key)
                .await
                .unwrap()
                .is_some(),
            "row {id}"
        );
    }
    let count = |table: &str, kind: EventKind, key: Option<&str>| {
        journal
            .iter()
            .filter(|e| {
                e.source.name() == table && e.kind == kind && key.is_none_or(|k| e.key == k)
            })
            .count()
    };
    let rows: i64 = eddy_bus::sql::SqlExt::scalar(
        &mut eddy.bus.readers(),
        "SELECT count(*) FROM items",
        eddy_bus::args![],
    )
    .await
    .unwrap();
    assert_eq!(count("items", EventKind::RowInsert, None), rows as usize);
    for (task, acked_n) in &acked.counters {
        let key = Key::new(&schemas[1], vec![json!(task)]).unwrap();
        let row = eddy
            .tables
            .get(&table("counters"), &key)
            .await
            .unwrap()
            .unwrap();
        let n = row["n"].as_i64().unwrap();
        assert!(
            n >= *acked_n,
            "counter {task} is {n}, but {acked_n} was acknowledged"
        );
        assert_eq!(
            count("counters", EventKind::RowInsert, Some(&key.canonical())),
            1
        );
        assert_eq!(
            count("counters", EventKind::RowModify, Some(&key.canonical())),
            n as usize
        );
    }

    // Uploads the kill interrupted left nothing behind that counts: temporary files are gone
    // and blobs nothing refers to are collected, leaving every object readable.
    assert_eq!(std::fs::read_dir(dir.join("tmp")).unwrap().count(), 0);
    eddy.objects
        .collect_garbage(std::time::Duration::ZERO)
        .await
        .unwrap();
    for meta in &objects {
        let bytes = eddy.objects.stored_bytes(meta).await.unwrap();
        assert_eq!(bytes.len() as u64, meta.size, "{} is readable", meta.key);
    }
}

async fn list_all(eddy: &Eddy) -> Vec<eddy_objects::ObjectMeta> {
    let mut all = Vec::new();
    let mut start: Option<ListPosition> = None;
    loop {
        let params = ListParams {
            start: start.clone(),
            max_keys: 1000,
            ..Default::default()
        };
        let page = eddy.objects.list_objects(&bucket(), &params).await.unwrap();
        all.extend(page.objects);
        match page.next {
            Some(next) => start = Some(next),
            None => return all,
        }
    }
}
