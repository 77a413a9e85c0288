//! Helpers shared by the end-to-end tests: opening a data directory the way eddy does, and the
//! invariants every test checks after the fact.

pub mod bench;
pub mod postgres;
pub mod seaweed;

use std::path::Path;
use std::time::Duration;

use eddy_bus::{Bus, BusError};
use eddy_core::{ColumnName, Event, TableName};
use eddy_objects::ObjectStore;
use eddy_tables::{Column, ColumnType, TableSchema, TableStore};

/// Loads an app from manifest text; relative paths start at `dir`. Panics with the findings
/// if it has errors.
pub fn app(dir: &Path, manifest: &str) -> eddy_subscriptions::App {
    let loaded = eddy_subscriptions::load(&[eddy_subscriptions::ManifestText {
        name: "app.yaml",
        text: manifest,
        dir,
    }]);
    loaded
        .app
        .unwrap_or_else(|| panic!("the test manifest is invalid:\n{}", loaded.findings))
}

/// Declares the app's tables and creates its buckets, as `eddy serve` does.
pub async fn provision(eddy: &Eddy, app: &eddy_subscriptions::App) {
    eddy_node::provision(app, &eddy.objects, &eddy.tables)
        .await
        .expect("the app's buckets and tables are provisioned");
}

/// Opens `dir/data`, provisions the app's buckets and tables, and starts an executor for it.
pub async fn start_executor(
    dir: &Path,
    app: eddy_subscriptions::App,
    clock: std::sync::Arc<dyn eddy_executor::Clock>,
) -> (Eddy, eddy_executor::Executor) {
    start_executor_with(dir, app, clock, eddy_executor::ExecutorConfig::default()).await
}

/// [`start_executor`] with a configuration of its own (destination records are written to
/// the data directory's stores, as a node writes them).
pub async fn start_executor_with(
    dir: &Path,
    app: eddy_subscriptions::App,
    clock: std::sync::Arc<dyn eddy_executor::Clock>,
    mut config: eddy_executor::ExecutorConfig,
) -> (Eddy, eddy_executor::Executor) {
    let eddy = Eddy::open(&dir.join("data")).await;
    provision(&eddy, &app).await;
    let writer = eddy_node::StoreDestinations::new(eddy.objects.clone(), eddy.tables.clone());
    config
        .destination_writer
        .get_or_insert_with(|| std::sync::Arc::new(writer));
    let executor = eddy_executor::Executor::start(eddy.bus.clone(), app, clock, config)
        .await
        .expect("the executor starts");
    (eddy, executor)
}

/// Uploads a small object.
pub async fn upload(eddy: &Eddy, bucket: &str, key: &str) {
    let bucket = eddy_core::BucketName::new(bucket).expect("a valid bucket name");
    let key = eddy_core::ObjectKey::new(key).expect("a valid key");
    eddy.objects
        .put_object(
            &bucket,
            &key,
            &mut &b"bytes"[..],
            eddy_objects::PutOptions::default(),
        )
        .await
        .expect("the upload succeeds");
}

/// Waits for `condition` to hold, checking every 10 ms, for at most 20 seconds: for effects
/// that happen in other tasks or processes. The bound only keeps a broken test from hanging.
pub async fn wait_for<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !condition().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How many writes a child acknowledges (`ACK …` lines) before it may be killed.
const ACKS_BEFORE_KILL: usize = 20;

/// Runs this test binary again as a child that executes only `test` (which sees `env` and
/// acts as the child), waits until it prints `READY` and has acknowledged
/// [`ACKS_BEFORE_KILL`] writes, lets it work for 200–700 ms more (a different moment for each
/// `round`), kills it with SIGKILL and returns every line it printed.
pub fn kill_child_while_writing(
    test: &str,
    env: &[(&str, &std::ffi::OsStr)],
    round: u64,
) -> Vec<String> {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the child starts");
    let stdout = BufReader::new(child.stdout.take().expect("piped"));
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut lines = Vec::new();
    // libtest may print the test's name on the same line before the child's own output.
    while !lines.iter().any(|l: &String| l.ends_with("READY")) {
        lines.push(
            rx.recv_timeout(deadline - std::time::Instant::now())
                .expect("the child got ready"),
        );
    }
    // Some progress first (acknowledged writes), so that a slow start on a busy machine still
    // leaves something to check; then a jittered moment more.
    while lines.iter().filter(|l| l.starts_with("ACK")).count() < ACKS_BEFORE_KILL {
        lines.push(
            rx.recv_timeout(deadline - std::time::Instant::now())
                .expect("the child acknowledged writes"),
        );
    }
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .subsec_nanos();
    let jitter = (u64::from(clock) ^ (round * 7919)) % 500;
    std::thread::sleep(Duration::from_millis(200 + jitter));
    child.kill().expect("SIGKILL");
    child.wait().expect("the child is reaped");
    reader.join().expect("the reader ends");
    lines.extend(rx.try_iter());
    lines
}

/// A schema of required columns with the first column as the primary key.
pub fn schema(table: &str, columns: &[(&str, ColumnType)]) -> TableSchema {
    let columns: Vec<Column> = columns
        .iter()
        .map(|(name, ty)| Column {
            name: ColumnName::new(*name).expect("a valid column name"),
            ty: *ty,
            nullable: false,
        })
        .collect();
    let key = vec![columns[0].name.clone()];
    TableSchema::new(
        TableName::new(table).expect("a valid table name"),
        columns,
        key,
    )
    .expect("a valid schema")
}

/// An opened data directory with its stores.
pub struct Eddy {
    pub bus: Bus,
    pub objects: ObjectStore,
    pub tables: TableStore,
}

impl Eddy {
    /// Opens `dir`, waiting while a process that is going away still holds its lock.
    pub async fn open(dir: &Path) -> Eddy {
        let mut tries = 0;
        let bus = loop {
            match Bus::open(dir).await {
                Ok(bus) => break bus,
                Err(BusError::DataDirInUse { .. }) if tries < 250 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("opening {}: {e}", dir.display()),
            }
        };
        let objects = ObjectStore::open(bus.clone()).expect("object store opens");
        let tables = TableStore::open(bus.clone())
            .await
            .expect("table store opens");
        Eddy {
            bus,
            objects,
            tables,
        }
    }

    /// The whole journal, in order.
    pub async fn journal(&self) -> Vec<Event> {
        let mut all = Vec::new();
        loop {
            let after = all.last().map_or(0, |e: &Event| e.seq);
            let batch = self
                .bus
                .read_after(after, 10_000)
                .await
                .expect("journal reads");
            if batch.is_empty() {
                return all;
            }
            all.extend(batch);
        }
    }

    /// Checks the database file and the journal's numbering: SQLite's integrity check passes
    /// and sequence numbers run 1, 2, 3, … without a gap.
    pub async fn assert_sound(&self) {
        use eddy_bus::sql::SqlExt;
        let check: String = self
            .bus
            .readers()
            .scalar("PRAGMA integrity_check", eddy_bus::args![])
            .await
            .expect("integrity check runs");
        assert_eq!(check, "ok");
        for (i, e) in self.journal().await.iter().enumerate() {
            assert_eq!(
                e.seq,
                i as u64 + 1,
                "the journal has a gap before seq {}",
                e.seq
            );
        }
    }
}

/// An in-process handler that records what it was given, and fails while told to.
#[derive(Default)]
pub struct Recorder {
    pub calls: std::sync::Mutex<Vec<(serde_json::Value, eddy_executor::Context)>>,
    pub failing: std::sync::Mutex<bool>,
}

#[async_trait::async_trait]
impl eddy_executor::Handler for Recorder {
    async fn handle(
        &self,
        event: serde_json::Value,
        context: eddy_executor::Context,
    ) -> Result<serde_json::Value, eddy_executor::FunctionError> {
        self.calls.lock().unwrap().push((event, context));
        if *self.failing.lock().unwrap() {
            return Err(eddy_executor::FunctionError::new(
                "Error",
                "the handler is told to fail",
            ));
        }
        Ok(serde_json::json!({"ok": true}))
    }
}

impl Recorder {
    /// The events it was given, in order.
    pub fn events(&self) -> Vec<serde_json::Value> {
        let calls = self.calls.lock().unwrap();
        calls.iter().map(|(e, _)| e.clone()).collect()
    }

    pub fn count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }
}
