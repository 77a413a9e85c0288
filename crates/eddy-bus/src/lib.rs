//! The database handle: the group-committing writer, the pool of readers, and the journal of
//! events with its live wake-ups and durable cursors — on SQLite in a data directory (one
//! process), or on PostgreSQL (any number of nodes).
//!
//! Writes go through [`Bus::write`]: the job runs inside the writer's transaction, appends its
//! event with [`WriteTx::append`], and returns only after its transaction has committed durably.

mod copy;
mod error;
mod journal;
mod leader;
mod open;
mod postgres;
mod recent;
mod space;
pub mod sql;
mod sqlite;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use eddy_core::Event;
use tokio::sync::watch;

pub use error::{BusError, Failure};
pub use journal::EventRows;
pub use open::{DB_FILE, PRIVATE_DIR, PRIVATE_FILE, private_dir, private_file, redacted};
pub use space::{BALLAST_FILE, StorageState, is_out_of_space};
pub use writer::{Appended, CURSOR_LAG, TxFuture, WriteTx};

/// Milliseconds since the Unix epoch, the time unit of the journal.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The connections for reading: each statement sees everything committed before it started.
/// Cheap to clone.
#[derive(Clone)]
pub struct Readers(Pool);

#[derive(Clone)]
enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

#[async_trait::async_trait]
impl sql::Sql for Readers {
    fn dialect(&self) -> sql::Dialect {
        match &self.0 {
            Pool::Sqlite(_) => sql::Dialect::Sqlite,
            Pool::Postgres(_) => sql::Dialect::Postgres,
        }
    }

    async fn execute(&mut self, sql: &str, args: &[sql::Value]) -> Result<u64, BusError> {
        match &mut self.0 {
            Pool::Sqlite(p) => p.execute(sql, args).await,
            Pool::Postgres(p) => p.execute(sql, args).await,
        }
    }

    async fn fetch(&mut self, sql: &str, args: &[sql::Value]) -> Result<Vec<sql::Row>, BusError> {
        match &mut self.0 {
            Pool::Sqlite(p) => p.fetch(sql, args).await,
            Pool::Postgres(p) => p.fetch(sql, args).await,
        }
    }

    async fn run_script(&mut self, sql: &str) -> Result<(), BusError> {
        match &mut self.0 {
            Pool::Sqlite(p) => p.run_script(sql).await,
            Pool::Postgres(p) => p.run_script(sql).await,
        }
    }
}

/// An open database. Cheap to clone; the writer stops when the last clone is dropped.
#[derive(Clone)]
pub struct Bus {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    writer: writer::WriterHandle,
    readers: Readers,
    committed: watch::Receiver<u64>,
    space: Arc<space::Space>,
    /// The data directory's lock (SQLite: one process per database).
    _lock: Option<std::fs::File>,
    /// Tasks that live as long as the bus (PostgreSQL's wake-ups, the contest for the lead).
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Whether this node leads the duties one node does for all (see [`Bus::leading`]).
    leading: watch::Receiver<bool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// How often the free space is looked at.
const SPACE_CHECK: Duration = Duration::from_secs(1);
/// How often a node on PostgreSQL looks for commits it was not told of (the safety net under
/// `LISTEN`/`NOTIFY`).
const COMMIT_POLL: Duration = Duration::from_secs(1);
/// The channel on which nodes tell each other of new journal events.
const JOURNAL_CHANNEL: &str = "eddy_journal";

impl Bus {
    /// Opens (creating if needed) the SQLite database in data directory `dir`, applies the
    /// platform schema and starts the writer. Fails if another process has the directory open
    /// or if a newer eddy wrote it.
    pub async fn open(dir: impl AsRef<Path>) -> Result<Self, BusError> {
        let dir = dir.as_ref().to_path_buf();
        let lock = open::lock_data_dir(&dir)?;
        let space = Arc::new(space::Space::open(&dir, true));
        let writer = open::open_writer(&dir).await?;
        let (committed_tx, committed) = watch::channel(0);
        let writer =
            writer::WriterHandle::start(Box::new(writer), committed_tx, space.clone()).await?;
        let readers = Readers(Pool::Sqlite(open::open_readers(&dir).await?));
        let bus = Self {
            inner: Arc::new(Inner {
                dir,
                writer,
                readers,
                committed,
                space,
                _lock: Some(lock),
                tasks: Vec::new(),
                // The only node.
                leading: watch::channel(true).1,
            }),
        };
        bus.watch_space();
        Ok(bus)
    }

    /// Opens the PostgreSQL database at `url` (applying the platform schema) and starts this
    /// node's writer. `dir` is the node's own directory (for what stays local). Several nodes
    /// may open one database: their journal stays one, in commit order, and each learns of the
    /// others' commits by `LISTEN`/`NOTIFY`, with a poll every second as the safety net.
    pub async fn open_postgres(url: &str, dir: impl AsRef<Path>) -> Result<Self, BusError> {
        let dir = dir.as_ref().to_path_buf();
        // The node's directory holds its identity: one process at a time.
        let lock = open::lock_data_dir(&dir)?;
        let opened = open::open_postgres(url).await?;
        // A full disk under PostgreSQL is reported by each statement that meets it; nothing here
        // can watch that disk, so no write is refused ahead of it.
        let space = Arc::new(space::Space::open(&dir, false));
        let (committed_tx, committed) = watch::channel(0);
        let (own_tx, own) = watch::channel(0);
        let writer = postgres::PgWriter {
            conn: opened.writer,
            options: opened.options.clone(),
        };
        let writer = writer::WriterHandle::start(Box::new(writer), own_tx, space.clone()).await?;
        let readers = Readers(Pool::Postgres(opened.readers.clone()));
        let committed_tx = Arc::new(committed_tx);
        let (leading_tx, leading) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(leader::contend(opened.options.clone(), leading_tx)),
            tokio::spawn(tell_others(opened.readers.clone(), own.clone())),
            tokio::spawn(follow_own(own, committed_tx.clone())),
            tokio::spawn(hear_others(opened.readers.clone(), committed_tx)),
        ];
        Ok(Self {
            inner: Arc::new(Inner {
                dir,
                writer,
                readers,
                committed,
                space,
                _lock: Some(lock),
                tasks,
                leading,
            }),
        })
    }

    /// Whether this node leads the duties one node does for all nodes sharing the database,
    /// and word when that changes. Always true on SQLite; on PostgreSQL, the node holding the
    /// leader's advisory lock. Two nodes may briefly both lead (see `leader.rs`): no duty may
    /// depend on leading alone for its safety.
    pub fn leading(&self) -> watch::Receiver<bool> {
        self.inner.leading.clone()
    }

    /// Looks at the free space under the data directory every second while the bus lives.
    fn watch_space(&self) {
        let watched = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(SPACE_CHECK);
            loop {
                ticks.tick().await;
                let Some(inner) = watched.upgrade() else {
                    return;
                };
                let space = inner.space.clone();
                drop(inner);
                let _ = tokio::task::spawn_blocking(move || space.recheck()).await;
            }
        });
    }

    /// The node's own directory (SQLite: the data directory holding the database).
    pub fn data_dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Which SQL the database speaks.
    pub fn dialect(&self) -> sql::Dialect {
        sql::Sql::dialect(&self.inner.readers)
    }

    /// Runs `job` on `input` in the writer's transaction and returns its result once that
    /// transaction has committed (durably). If `job` fails, its writes and events are undone
    /// and its error returned; other jobs in the same transaction are unaffected.
    ///
    /// The job may be run more than once (only the last run counts, every run reading the same
    /// `input`), so it must do nothing outside the transaction. It must not wait for anything
    /// but its own statements: while it runs, every other write waits.
    pub async fn write<I, T, E, F>(&self, input: I, job: F) -> Result<T, E>
    where
        I: Send + Sync + 'static,
        T: Send + 'static,
        E: From<BusError> + Send + 'static,
        F: for<'t> Fn(&'t mut WriteTx, &'t I) -> TxFuture<'t, Result<T, E>> + Send + Sync + 'static,
    {
        self.inner.writer.write(input, job).await
    }

    /// `Ok` when a write that adds data may go ahead; `StorageFull` while the disk is full
    /// (deletes, and eddy's own bookkeeping, go ahead regardless).
    pub fn check_room(&self) -> Result<(), BusError> {
        self.inner.space.check_room()
    }

    /// Tells the bus that writing beside the database (a blob) found the disk full.
    pub fn report_out_of_space(&self, cause: &str) {
        self.inner.space.full(cause);
    }

    /// How the storage under eddy is doing now.
    pub fn storage(&self) -> StorageState {
        self.inner.space.state()
    }

    /// Every change of [`storage`](Self::storage).
    pub fn watch_storage(&self) -> watch::Receiver<StorageState> {
        self.inner.space.subscribe()
    }

    /// Connections for reads. Each statement sees everything committed before it started.
    pub fn readers(&self) -> Readers {
        self.inner.readers.clone()
    }

    /// The sequence number of the newest committed event (0 when the journal is empty).
    pub fn last_seq(&self) -> u64 {
        *self.inner.committed.borrow()
    }

    /// Up to `limit` events with a sequence number above `after`, in order.
    pub async fn read_after(&self, after: u64, limit: u32) -> Result<Vec<Event>, BusError> {
        journal::read_after(&mut self.readers(), after, limit).await
    }

    /// The event with sequence number `seq`, if there is one.
    pub async fn event_at(&self, seq: u64) -> Result<Option<Event>, BusError> {
        Ok(journal::at(&mut self.readers(), &[seq]).await?.pop())
    }

    /// The events with these sequence numbers (those that exist), in order; one query.
    pub async fn events_at(&self, seqs: &[u64]) -> Result<Vec<Event>, BusError> {
        journal::at(&mut self.readers(), seqs).await
    }

    /// The journal rows of these sequence numbers, read in the write transaction `tx` (work
    /// leased in a transaction is read with it, not by a reader after the commit) and decoded
    /// by the caller, off the writer.
    pub async fn event_rows_in(tx: &mut dyn sql::Sql, seqs: &[u64]) -> Result<EventRows, BusError> {
        journal::rows_at(tx, seqs).await
    }

    /// The first event's sequence number at or after `time_ms` (its commit time), if any.
    pub async fn first_seq_at_or_after(&self, time_ms: i64) -> Result<Option<u64>, BusError> {
        journal::first_at_or_after(&mut self.readers(), time_ms).await
    }

    /// [`Bus::first_seq_at_or_after`] for each of `times` (rising), in fewer reads than one
    /// search each.
    pub async fn first_seqs_at_or_after(
        &self,
        times: &[i64],
    ) -> Result<Vec<Option<u64>>, BusError> {
        journal::first_at_or_after_each(&mut self.readers(), times).await
    }

    /// The last event's sequence number at or before `time_ms`, if any.
    pub async fn last_seq_at_or_before(&self, time_ms: i64) -> Result<Option<u64>, BusError> {
        journal::last_at_or_before(&mut self.readers(), time_ms).await
    }

    /// The event with this id, if there is one.
    pub async fn event(&self, id: &str) -> Result<Option<Event>, BusError> {
        journal::by_id(&mut self.readers(), id).await
    }

    /// Follows the journal from just after `after`: each call to [`Follower::next`] returns the
    /// next events, waiting (without polling) for a commit when there are none yet.
    pub fn follow(&self, after: u64) -> Follower {
        Follower {
            readers: self.inner.readers.clone(),
            recent: self.inner.writer.recent(),
            committed: self.inner.committed.clone(),
            position: after,
        }
    }

    /// The saved position of the durable cursor `name`.
    pub async fn cursor(&self, name: &str) -> Result<Option<u64>, BusError> {
        journal::cursor(&mut self.readers(), name).await
    }

    /// Notes that the durable cursor `name` may be saved at `seq`, for a reader that only read
    /// up to there: it is saved with the next write that commits, or alone within
    /// [`CURSOR_LAG`], and never lowered. Until then a restart resumes from the position saved
    /// before.
    pub fn note_cursor(&self, name: &str, seq: u64) {
        self.inner.writer.note_cursor(name, seq);
    }

    /// Saves every noted cursor now (see [`Bus::note_cursor`]): for a clean stop, which need
    /// not outlive the lag.
    pub async fn save_noted_cursors(&self) -> Result<(), BusError> {
        self.write((), |_, ()| Box::pin(async { Ok::<_, BusError>(()) }))
            .await
    }

    /// Saves the durable cursor `name` at `seq`.
    pub async fn save_cursor(&self, name: &str, seq: u64) -> Result<(), BusError> {
        self.write((name.to_string(), seq), |tx, (name, seq)| {
            Box::pin(tx.set_cursor(name, *seq))
        })
        .await
    }
}

/// A reader that follows the journal as it grows: events this node committed last are taken
/// from memory as the writer had them, the others read from the journal.
pub struct Follower {
    readers: Readers,
    recent: Arc<recent::Recent>,
    committed: watch::Receiver<u64>,
    position: u64,
}

/// How many events one [`Follower::next`] returns at most.
const FOLLOW_BATCH: u32 = 1024;

impl Follower {
    /// The next events after the follower's position, waiting for a commit if there are none.
    /// Returns `Err(WriterStopped)` once the bus has shut down and everything was read.
    pub async fn next(&mut self) -> Result<Vec<Arc<Event>>, BusError> {
        loop {
            if *self.committed.borrow_and_update() > self.position {
                let mut events = self.recent.after(self.position, FOLLOW_BATCH as usize);
                if events.is_empty() {
                    events = journal::read_after(&mut self.readers, self.position, FOLLOW_BATCH)
                        .await?
                        .into_iter()
                        .map(Arc::new)
                        .collect();
                }
                if let Some(last) = events.last() {
                    self.position = last.seq;
                    return Ok(events);
                }
            }
            self.committed
                .changed()
                .await
                .map_err(|_| BusError::WriterStopped)?;
        }
    }

    /// The sequence number of the last event returned.
    pub fn position(&self) -> u64 {
        self.position
    }
}

/// Tells the other nodes of this node's commits: the newest sequence number it committed,
/// each time it rises (a burst of commits is told once). Outside any write transaction: a
/// `NOTIFY` inside one would take a database-wide lock at its commit.
async fn tell_others(pool: sqlx::PgPool, mut own: watch::Receiver<u64>) {
    while own.changed().await.is_ok() {
        let seq = *own.borrow_and_update();
        let told = sql::Sql::execute(
            &mut pool.clone(),
            "SELECT pg_notify(?, ?)",
            &[
                sql::Value::from(JOURNAL_CHANNEL),
                sql::Value::from(seq.to_string()),
            ],
        )
        .await;
        if let Err(error) = told {
            tracing::warn!(%error, "cannot tell the other nodes of a commit; they will see it within a second");
        }
    }
}

/// Passes this node's own commits to its readers at once.
async fn follow_own(mut own: watch::Receiver<u64>, committed: Arc<watch::Sender<u64>>) {
    while own.changed().await.is_ok() {
        let seq = *own.borrow_and_update();
        committed.send_if_modified(|seen| writer::raise(seen, seq));
    }
}

/// Learns of other nodes' commits: from their notifications, and by looking every second
/// (a notification can be missed while the connection is re-established).
async fn hear_others(pool: sqlx::PgPool, committed: Arc<watch::Sender<u64>>) {
    let mut listener: Option<sqlx::postgres::PgListener> = None;
    let mut poll = tokio::time::interval(COMMIT_POLL);
    loop {
        if listener.is_none() {
            match sqlx::postgres::PgListener::connect_with(&pool).await {
                Ok(mut l) => match l.listen(JOURNAL_CHANNEL).await {
                    Ok(()) => listener = Some(l),
                    Err(error) => tracing::warn!(%error, "cannot listen for other nodes' commits"),
                },
                Err(error) => tracing::warn!(%error, "cannot listen for other nodes' commits"),
            }
        }
        let heard = async {
            match listener.as_mut() {
                Some(l) => l.recv().await.map(|n| n.payload().parse::<u64>().ok()),
                None => std::future::pending().await,
            }
        };
        let seq = tokio::select! {
            heard = heard => match heard {
                Ok(seq) => seq,
                Err(_) => {
                    listener = None;
                    None
                }
            },
            _ = poll.tick() => journal::last_seq(&mut Readers(Pool::Postgres(pool.clone())))
                .await
                .ok(),
        };
        if let Some(seq) = seq {
            committed.send_if_modified(|seen| writer::raise(seen, seq));
        }
    }
}
