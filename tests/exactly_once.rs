//! Exactly one journal event per committed change, and none for a failed write, while eight
//! writers mix object and row changes — good and bad — in shared group commits.

use std::collections::BTreeMap;

use eddy_core::{BucketName, EventKind, Lineage, ObjectKey, TableName};
use eddy_objects::PutOptions;
use eddy_tables::{ColumnType, Key};
use eddy_tests::{Eddy, schema};
use serde_json::json;

const WRITERS: u64 = 8;
const STEPS: u64 = 60;

/// What one successful write committed: its event's sequence number, kind and key.
type Committed = (u64, EventKind, String);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_event_per_committed_change_and_none_for_failures() {
    let dir = tempfile::tempdir().unwrap();
    let eddy = Eddy::open(dir.path()).await;
    let bucket = BucketName::new("shared").unwrap();
    let table = TableName::new("things").unwrap();
    eddy.objects.create_bucket(&bucket).await.unwrap();
    let schema = schema(
        "things",
        &[("id", ColumnType::Integer), ("v", ColumnType::Integer)],
    );
    eddy.tables.declare(schema.clone()).await.unwrap();

    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (objects, tables, bucket, table, schema) = (
            eddy.objects.clone(),
            eddy.tables.clone(),
            bucket.clone(),
            table.clone(),
            schema.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut committed: Vec<Committed> = Vec::new();
            let mut never_written = Vec::new();
            let mut failures = 0;
            for i in 0..STEPS {
                // Ids collide across writers on purpose: some inserts must fail with KeyExists.
                let id = (i * 3 + w) % 50;
                let key = Key::new(&schema, vec![json!(id)]).unwrap();
                let object_key = format!("k{}", (i + w) % 20);
                let outcome: Option<Committed> = match i % 6 {
                    0 => {
                        // Two rows in one job; the second often collides, and then the first,
                        // already written, must be undone too.
                        let fresh = 1_000 + w * STEPS + i;
                        let rows = vec![json!({"id": fresh, "v": i}), json!({"id": id, "v": i})];
                        match tables.insert(&table, rows, Lineage::root()).await {
                            Ok(c) => {
                                let fresh_key =
                                    Key::new(&schema, vec![json!(fresh)]).unwrap().canonical();
                                committed.push((
                                    c[0].seq.unwrap(),
                                    EventKind::RowInsert,
                                    fresh_key,
                                ));
                                Some((c[1].seq.unwrap(), EventKind::RowInsert, key.canonical()))
                            }
                            Err(_) => {
                                never_written.push(fresh);
                                None
                            }
                        }
                    }
                    1 => tables
                        .put(
                            &table,
                            json!({"id": id, "v": w * 1000 + i}),
                            Lineage::root(),
                        )
                        .await
                        .ok()
                        .and_then(|c| {
                            let kind = if c.old.is_some() {
                                EventKind::RowModify
                            } else {
                                EventKind::RowInsert
                            };
                            c.seq.map(|s| (s, kind, key.canonical()))
                        }),
                    2 => tables
                        .delete(&table, key.clone(), Lineage::root())
                        .await
                        .ok()
                        .flatten()
                        .map(|c| (c.seq.unwrap(), EventKind::RowRemove, key.canonical())),
                    3 => {
                        // Always fails: wrong type.
                        tables
                            .put(
                                &table,
                                json!({"id": id, "v": "not a number"}),
                                Lineage::root(),
                            )
                            .await
                            .ok()
                            .map(|_| unreachable!())
                    }
                    4 => {
                        let data = format!("{w}-{i}");
                        objects
                            .put_object(
                                &bucket,
                                &ObjectKey::new(&object_key).unwrap(),
                                &mut data.as_bytes(),
                                PutOptions::default(),
                            )
                            .await
                            .ok()
                            .map(|m| (m.sequencer, EventKind::ObjectCreatedPut, object_key))
                    }
                    _ => {
                        if i % 12 == 5 {
                            // Always fails: a bad Content-MD5.
                            let opts = PutOptions {
                                content_md5: Some([0; 16]),
                                ..Default::default()
                            };
                            objects
                                .put_object(
                                    &bucket,
                                    &ObjectKey::new(&object_key).unwrap(),
                                    &mut &b"x"[..],
                                    opts,
                                )
                                .await
                                .ok()
                                .map(|_| unreachable!())
                        } else {
                            let removed = objects
                                .delete_object(
                                    &bucket,
                                    &ObjectKey::new(&object_key).unwrap(),
                                    Lineage::root(),
                                )
                                .await
                                .unwrap();
                            removed.map(|r| (r.seq, EventKind::ObjectRemovedDelete, object_key))
                        }
                    }
                };
                match outcome {
                    Some(c) => committed.push(c),
                    None => failures += 1,
                }
            }
            (committed, never_written, failures)
        }));
    }
    let (mut committed, mut never_written, mut failures) = (Vec::new(), Vec::new(), 0);
    for t in tasks {
        let (c, n, f) = t.await.unwrap();
        committed.extend(c);
        never_written.extend(n);
        failures += f;
    }
    assert!(!never_written.is_empty(), "some two-row inserts collided");
    for id in never_written {
        let key = Key::new(&schema, vec![json!(id)]).unwrap();
        assert!(
            eddy.tables.get(&table, &key).await.unwrap().is_none(),
            "row {id} of a failed batch was kept"
        );
    }
    assert!(
        failures > WRITERS as usize * STEPS as usize / 6,
        "the failing writes failed"
    );

    eddy.assert_sound().await;
    let journal = eddy.journal().await;
    assert_eq!(
        journal.len(),
        committed.len(),
        "one event per committed change, none for failures"
    );
    // Every change is exactly the event it reported.
    let by_seq: BTreeMap<u64, (EventKind, &str)> = journal
        .iter()
        .map(|e| (e.seq, (e.kind, e.key.as_str())))
        .collect();
    for (seq, kind, key) in &committed {
        assert_eq!(by_seq.get(seq), Some(&(*kind, key.as_str())), "seq {seq}");
    }
}
