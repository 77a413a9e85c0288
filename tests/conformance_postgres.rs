//! The storage conformance suites (`conformance/`) on PostgreSQL: one server for the run, a
//! fresh database for each suite. (A harness of its own: the server is started once and
//! stopped by its process id at the end, whatever the suites did.)

mod conformance;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use conformance::{Backend, Stores};
use eddy_tests::postgres::Postgres;

/// The bucket the suites' blobs go to.
const BUCKET: &str = "eddy-conformance";

/// PostgreSQL for the state, an S3 store for the blobs: what several nodes share.
struct OnPostgres {
    server: Postgres,
    blobs: eddy_tests::seaweed::Seaweed,
    databases: AtomicUsize,
}

#[async_trait(?Send)]
impl Backend for OnPostgres {
    async fn open(&self, dir: &Path) -> Stores {
        let n = self.databases.fetch_add(1, Ordering::SeqCst);
        let url = self.server.create_database(&format!("suite{n}"));
        let bus = eddy_bus::Bus::open_postgres(&url, dir).await.unwrap();
        // Each suite's blobs under a prefix of their own in the one bucket.
        let location = eddy_objects::S3Location {
            endpoint: self.blobs.endpoint(),
            region: "us-east-1".into(),
            bucket: BUCKET.into(),
            prefix: format!("suite{n}/"),
            credentials: eddy_sigv4::Credentials {
                access_key_id: eddy_tests::seaweed::ACCESS_KEY_ID.into(),
                secret_access_key: eddy_tests::seaweed::SECRET_ACCESS_KEY.into(),
            },
        };
        let blobs: Arc<dyn eddy_objects::BlobStore> =
            Arc::new(eddy_objects::S3Blobs::connect(location, dir).await.unwrap());
        let deliveries = Arc::new(eddy_executor::SqlDeliveries::new(&bus, "node-a"));
        let other_node = Arc::new(eddy_executor::SqlDeliveries::new(&bus, "node-b"));
        Stores::assemble(bus, blobs, deliveries, other_node).await
    }
}

/// Each suite by name, run on fresh stores.
macro_rules! suites {
    ($($module:ident :: $suite:ident),* $(,)?) => {
        vec![$(
            (
                concat!(stringify!($module), "::", stringify!($suite)),
                Box::new(|stores| Box::pin(conformance::$module::$suite(stores))
                    as std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>)
                    as Box<dyn Fn(Stores) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>>,
            )
        ),*]
    };
}

/// Two nodes on one database, for the journal's interleavings.
async fn two_nodes(backend: &OnPostgres) -> (eddy_bus::Bus, eddy_bus::Bus, Vec<tempfile::TempDir>) {
    let n = backend.databases.fetch_add(1, Ordering::SeqCst);
    let url = backend.server.create_database(&format!("nodes{n}"));
    let dirs = vec![tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let a = eddy_bus::Bus::open_postgres(&url, dirs[0].path())
        .await
        .unwrap();
    let b = eddy_bus::Bus::open_postgres(&url, dirs[1].path())
        .await
        .unwrap();
    (a, b, dirs)
}

fn event(key: &str, by: &str) -> eddy_core::NewEvent {
    eddy_core::NewEvent {
        source: eddy_core::Source::Bucket(eddy_core::BucketName::new("keys").unwrap()),
        kind: eddy_core::EventKind::ObjectCreatedPut,
        key: key.into(),
        payload: serde_json::json!({ "by": by }),
        lineage: eddy_core::Lineage::root(),
    }
}

type Hold = Arc<tokio::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>>;

/// A write on `bus` that appends an event for `key` and then, inside its open transaction,
/// waits until `hold` is released; fails after appending when `fail`.
async fn held_write(bus: eddy_bus::Bus, key: &'static str, hold: Hold, fail: bool) -> bool {
    bus.write((key, hold, fail), |tx, (key, hold, fail)| {
        Box::pin(async move {
            tx.append(event(key, "held")).await?;
            if let Some(release) = hold.lock().await.take() {
                let _ = release.await;
            }
            if *fail {
                return Err(eddy_bus::BusError::Decode("told to fail".into()));
            }
            Ok(())
        })
    })
    .await
    .is_ok()
}

/// Node A starts a write of key K first and commits it last; node B writes K meanwhile. B's
/// transaction cannot commit (nor take a sequence number) before A's ends, so the journal
/// holds A's event before B's, and a reader following the journal on B never sees B's first.
async fn early_start_late_commit_on_one_key(backend: &OnPostgres) {
    let (a, b, _dirs) = two_nodes(backend).await;
    let (release, held) = tokio::sync::oneshot::channel();
    let hold: Hold = Arc::new(tokio::sync::Mutex::new(Some(held)));
    let first = tokio::spawn(held_write(a.clone(), "K", hold, false));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let second = tokio::spawn({
        let b = b.clone();
        async move {
            b.write((), |tx, ()| {
                Box::pin(async move { tx.append(event("K", "second")).await.map(|_| ()) })
            })
            .await
            .unwrap();
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "B waits for A's transaction");
    assert_eq!(
        b.read_after(0, 10).await.unwrap().len(),
        0,
        "nothing visible yet"
    );
    let mut follower = b.follow(0);
    release.send(()).unwrap();
    assert!(first.await.unwrap());
    second.await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        seen.extend(follower.next().await.unwrap());
    }
    let order: Vec<(u64, String)> = seen
        .iter()
        .map(|e| (e.seq, e.payload["by"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(order, [(1, "held".to_string()), (2, "second".to_string())]);
}

/// A transaction that appends and then rolls back leaves no gap and no event.
async fn a_rolled_back_transaction_leaves_no_gap(backend: &OnPostgres) {
    let (a, b, _dirs) = two_nodes(backend).await;
    let (release, held) = tokio::sync::oneshot::channel();
    let hold: Hold = Arc::new(tokio::sync::Mutex::new(Some(held)));
    let doomed = tokio::spawn(held_write(a.clone(), "K", hold, true));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let other = tokio::spawn({
        let b = b.clone();
        async move {
            b.write((), |tx, ()| {
                Box::pin(async move { tx.append(event("K", "kept")).await.map(|_| ()) })
            })
            .await
            .unwrap();
        }
    });
    release.send(()).unwrap();
    assert!(!doomed.await.unwrap(), "the held write failed");
    other.await.unwrap();
    a.write((), |tx, ()| {
        Box::pin(async move { tx.append(event("L", "after")).await.map(|_| ()) })
    })
    .await
    .unwrap();
    let all = b.read_after(0, 10).await.unwrap();
    let order: Vec<(u64, String)> = all
        .iter()
        .map(|e| (e.seq, e.payload["by"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(order, [(1, "kept".to_string()), (2, "after".to_string())]);
}

/// While a transaction on A stays open a long time, B's readers see everything committed
/// before it and skip nothing once it commits.
async fn a_long_open_transaction_hides_nothing_committed(backend: &OnPostgres) {
    let (a, b, _dirs) = two_nodes(backend).await;
    b.write((), |tx, ()| {
        Box::pin(async move { tx.append(event("M", "before")).await.map(|_| ()) })
    })
    .await
    .unwrap();
    let (release, held) = tokio::sync::oneshot::channel();
    let hold: Hold = Arc::new(tokio::sync::Mutex::new(Some(held)));
    let long = tokio::spawn(held_write(a.clone(), "M", hold, false));
    let mut follower = b.follow(0);
    let first = follower.next().await.unwrap();
    assert_eq!(first.len(), 1, "what was committed before is seen at once");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    release.send(()).unwrap();
    assert!(long.await.unwrap());
    let next = tokio::time::timeout(std::time::Duration::from_secs(5), follower.next())
        .await
        .expect("the other node's commit is heard")
        .unwrap();
    assert_eq!(next.iter().map(|e| e.seq).collect::<Vec<_>>(), [2]);
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let backend = OnPostgres {
        server: Postgres::start(),
        blobs: eddy_tests::seaweed::Seaweed::start(BUCKET),
        databases: AtomicUsize::new(0),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let all = conformance::every_suite!(suites);
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, suite) in &all {
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        let dir = tempfile::tempdir().unwrap();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            runtime.block_on(async {
                let stores = backend.open(dir.path()).await;
                suite(stores).await;
            })
        }));
        match outcome {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    type Interleaving =
        for<'a> fn(&'a OnPostgres) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>>;
    let interleavings: [(&str, Interleaving); 3] = [
        ("journal_nodes::early_start_late_commit_on_one_key", |b| {
            Box::pin(early_start_late_commit_on_one_key(b))
        }),
        (
            "journal_nodes::a_rolled_back_transaction_leaves_no_gap",
            |b| Box::pin(a_rolled_back_transaction_leaves_no_gap(b)),
        ),
        (
            "journal_nodes::a_long_open_transaction_hides_nothing_committed",
            |b| Box::pin(a_long_open_transaction_hides_nothing_committed(b)),
        ),
    ];
    for (name, test) in interleavings {
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            runtime.block_on(test(&backend))
        }));
        match outcome {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(name);
            }
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed (PostgreSQL)",
        if failed.is_empty() { "ok" } else { "FAILED" },
        ran - failed.len(),
        failed.len()
    );
    drop(backend);
    if !failed.is_empty() {
        std::process::exit(1);
    }
}
