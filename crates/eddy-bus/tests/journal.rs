//! The journal through the writer: events commit with their job or not at all, sequence numbers
//! have no gaps, followers wake on commit, cursors and schema checks survive reopening.

use std::time::Duration;

use eddy_bus::{Bus, BusError};
use eddy_core::{EventKind, Lineage, NewEvent, Source, TableName};
use serde_json::json;

fn event(key: &str) -> NewEvent {
    NewEvent {
        source: Source::Table(TableName::new("orders").unwrap()),
        kind: EventKind::RowInsert,
        key: key.to_string(),
        payload: json!({ "keys": { "id": key }, "new": { "id": key }, "old": null }),
        lineage: Lineage::root(),
    }
}

#[derive(Debug, thiserror::Error)]
enum TestError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("refused {0}")]
    Refused(String),
}

async fn append(bus: &Bus, key: &str) -> Result<u64, TestError> {
    bus.write(key.to_string(), |tx, key| {
        Box::pin(async move {
            let e = tx.append(event(key)).await?;
            // A real write before the failure, which must be undone with the event.
            tx.set_cursor(key, e.seq).await?;
            if key.starts_with("bad") {
                return Err(TestError::Refused(key.clone()));
            }
            Ok(e.seq)
        })
    })
    .await
}

#[tokio::test]
async fn events_commit_with_their_job_and_only_then() {
    let dir = tempfile::tempdir().unwrap();
    let bus = Bus::open(dir.path()).await.unwrap();
    // Many concurrent jobs land in shared transactions; the failing ones must leave no trace.
    let mut tasks = Vec::new();
    for i in 0..200 {
        let bus = bus.clone();
        let key = if i % 7 == 0 {
            format!("bad-{i}")
        } else {
            format!("k-{i}")
        };
        tasks.push(tokio::spawn(async move {
            (key.clone(), append(&bus, &key).await)
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        let (key, result) = t.await.unwrap();
        match result {
            Ok(seq) => acked.push((seq, key)),
            Err(TestError::Refused(k)) => assert!(k.starts_with("bad")),
            Err(e) => panic!("unexpected {e}"),
        }
    }
    acked.sort();
    let events = bus.read_after(0, 1000).await.unwrap();
    assert_eq!(events.len(), acked.len());
    for (i, (e, (seq, key))) in events.iter().zip(&acked).enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "sequence numbers have no gaps");
        assert_eq!((e.seq, &e.key), (*seq, key));
    }
    assert!(events.iter().all(|e| !e.key.starts_with("bad")));
    assert_eq!(bus.last_seq(), acked.len() as u64);
    for i in 0..200 {
        let (good, bad) = (format!("k-{i}"), format!("bad-{i}"));
        let expected = acked.iter().find(|(_, k)| *k == good).map(|(seq, _)| *seq);
        assert_eq!(bus.cursor(&good).await.unwrap(), expected);
        assert_eq!(
            bus.cursor(&bad).await.unwrap(),
            None,
            "a failed job's writes are undone"
        );
    }
}

#[tokio::test]
async fn a_lone_failing_job_commits_nothing_and_the_next_one_works() {
    let dir = tempfile::tempdir().unwrap();
    let bus = Bus::open(dir.path()).await.unwrap();
    assert!(matches!(
        append(&bus, "bad").await,
        Err(TestError::Refused(_))
    ));
    assert_eq!(append(&bus, "good").await.unwrap(), 1);
    let events = bus.read_after(0, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].key, "good");
}

/// A follower wakes on each commit, and what it is given — held in memory from the writer's
/// commit, or read back when not held — is what the journal holds.
#[tokio::test]
async fn followers_wake_on_commit_and_see_what_the_journal_holds() {
    let dir = tempfile::tempdir().unwrap();
    let bus = Bus::open(dir.path()).await.unwrap();
    let mut follower = bus.follow(0);
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while seen.len() < 3 {
            seen.extend(follower.next().await.unwrap());
        }
        seen
    });
    for k in ["a", "b", "c"] {
        append(&bus, k).await.unwrap();
    }
    let seen = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .unwrap()
        .unwrap();
    let keys: Vec<&str> = seen.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["a", "b", "c"]);
    let journal = bus.read_after(0, 10).await.unwrap();
    let followed: Vec<_> = seen.iter().map(|e| (**e).clone()).collect();
    assert_eq!(followed, journal);
}

#[tokio::test]
async fn cursors_and_events_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let first_id = {
        let bus = Bus::open(dir.path()).await.unwrap();
        append(&bus, "a").await.unwrap();
        append(&bus, "b").await.unwrap();
        bus.save_cursor("dispatcher", 1).await.unwrap();
        bus.read_after(0, 1).await.unwrap()[0].id
    };
    // The writer task lets go of the lock once its last handle is gone.
    let bus = reopen(dir.path()).await;
    assert_eq!(bus.cursor("dispatcher").await.unwrap(), Some(1));
    assert_eq!(bus.cursor("other").await.unwrap(), None);
    assert_eq!(bus.last_seq(), 2);
    assert_eq!(append(&bus, "c").await.unwrap(), 3);
    let e = bus.event(&first_id.to_string()).await.unwrap().unwrap();
    assert_eq!((e.seq, e.key.as_str()), (1, "a"));
}

async fn reopen(dir: &std::path::Path) -> Bus {
    for _ in 0..100 {
        match Bus::open(dir).await {
            Ok(bus) => return bus,
            Err(BusError::DataDirInUse { .. }) => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("{e}"),
        }
    }
    panic!("the data directory stayed locked")
}

#[tokio::test]
async fn a_second_open_of_one_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _bus = Bus::open(dir.path()).await.unwrap();
    let err = Bus::open(dir.path())
        .await
        .err()
        .expect("second open must fail");
    assert!(matches!(err, BusError::DataDirInUse { .. }), "{err}");
    assert!(err.to_string().contains("in use by another eddy process"));
}

#[tokio::test]
async fn a_directory_from_a_newer_eddy_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Bus::open(dir.path()).await.unwrap());
    let status = std::process::Command::new("sqlite3")
        .arg(dir.path().join(eddy_bus::DB_FILE))
        .arg("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (9999, 'future', 1, x'00', 0)")
        .status()
        .expect("sqlite3 is installed");
    assert!(status.success());
    let err = loop {
        match Bus::open(dir.path()).await {
            Err(BusError::DataDirInUse { .. }) => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            other => break other.err().expect("a newer schema must be refused"),
        }
    };
    let msg = err.to_string();
    assert!(msg.contains("newer eddy") && msg.contains("9999"), "{msg}");
}

#[tokio::test]
async fn rows_read_in_a_write_decode_to_the_events_a_reader_reads() {
    let dir = tempfile::tempdir().unwrap();
    let bus = Bus::open(dir.path()).await.unwrap();
    for key in ["a", "b", "c"] {
        append(&bus, key).await.unwrap();
    }
    // Read in a write transaction (as a settlement reads the batch it leases), decoded after.
    let rows = bus
        .write((), |tx, ()| {
            Box::pin(async move { Bus::event_rows_in(tx, &[3, 1, 9]).await })
        })
        .await
        .unwrap();
    let decoded = rows.decode().unwrap();
    assert_eq!(decoded.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(decoded, bus.events_at(&[1, 3]).await.unwrap());
}
