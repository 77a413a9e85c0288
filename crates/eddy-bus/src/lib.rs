//! The database handle of a data directory: the single group-committing writer, the pool of
//! readers, and the journal of events with its live wake-ups and durable cursors.
//!
//! Writes go through [`Bus::write`]: the job runs inside the writer's transaction, appends its
//! event with [`WriteTx::append`], and returns only after its transaction has committed durably.

mod error;
mod journal;
mod open;
mod space;
pub mod sql;
mod sqlite;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use eddy_core::Event;
use tokio::sync::watch;

pub use error::{BusError, Failure};
pub use open::{DB_FILE, PRIVATE_DIR, PRIVATE_FILE, private_dir, private_file};
pub use space::{BALLAST_FILE, StorageState, is_out_of_space};
pub use sqlite::Readers;
pub use writer::{TxFuture, WriteTx};

/// Milliseconds since the Unix epoch, the time unit of the journal.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// An open data directory. Cheap to clone; the writer stops when the last clone is dropped.
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
    _lock: std::fs::File,
}

/// How often the free space is looked at.
const SPACE_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

impl Bus {
    /// Opens (creating if needed) the data directory `dir`, applies the platform schema and
    /// starts the writer. Fails if another process has the directory open or if a newer eddy
    /// wrote it.
    pub async fn open(dir: impl AsRef<Path>) -> Result<Self, BusError> {
        let dir = dir.as_ref().to_path_buf();
        let lock = open::lock_data_dir(&dir)?;
        let space = Arc::new(space::Space::open(&dir));
        let conn = open::open_writer(&dir).await?;
        let (committed_tx, committed) = watch::channel(0);
        let writer = writer::WriterHandle::start(
            sqlite::Connection(conn),
            committed_tx,
            dir.clone(),
            space.clone(),
        )
        .await?;
        let readers = Readers {
            pool: open::open_readers(&dir).await?,
        };
        let bus = Self {
            inner: Arc::new(Inner {
                dir,
                writer,
                readers,
                committed,
                space,
                _lock: lock,
            }),
        };
        let watched = Arc::downgrade(&bus.inner);
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
        Ok(bus)
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.dir
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
        journal::read_after(&self.inner.readers.pool, after, limit).await
    }

    /// The event with sequence number `seq`, if there is one.
    pub async fn event_at(&self, seq: u64) -> Result<Option<Event>, BusError> {
        Ok(journal::at(&self.inner.readers.pool, &[seq]).await?.pop())
    }

    /// The events with these sequence numbers (those that exist), in order; one query.
    pub async fn events_at(&self, seqs: &[u64]) -> Result<Vec<Event>, BusError> {
        journal::at(&self.inner.readers.pool, seqs).await
    }

    /// The event with this id, if there is one.
    pub async fn event(&self, id: &str) -> Result<Option<Event>, BusError> {
        journal::by_id(&self.inner.readers.pool, id).await
    }

    /// Follows the journal from just after `after`: each call to [`Follower::next`] returns the
    /// next events, waiting (without polling) for a commit when there are none yet.
    pub fn follow(&self, after: u64) -> Follower {
        Follower {
            readers: self.inner.readers.pool.clone(),
            committed: self.inner.committed.clone(),
            position: after,
        }
    }

    /// The saved position of the durable cursor `name`.
    pub async fn cursor(&self, name: &str) -> Result<Option<u64>, BusError> {
        journal::cursor(&self.inner.readers.pool, name).await
    }

    /// Saves the durable cursor `name` at `seq`.
    pub async fn save_cursor(&self, name: &str, seq: u64) -> Result<(), BusError> {
        self.write((name.to_string(), seq), |tx, (name, seq)| {
            Box::pin(tx.set_cursor(name, *seq))
        })
        .await
    }
}

/// A reader that follows the journal as it grows.
pub struct Follower {
    readers: sqlx::SqlitePool,
    committed: watch::Receiver<u64>,
    position: u64,
}

/// How many events one [`Follower::next`] returns at most.
const FOLLOW_BATCH: u32 = 1024;

impl Follower {
    /// The next events after the follower's position, waiting for a commit if there are none.
    /// Returns `Err(WriterStopped)` once the bus has shut down and everything was read.
    pub async fn next(&mut self) -> Result<Vec<Event>, BusError> {
        loop {
            if *self.committed.borrow_and_update() > self.position {
                let events =
                    journal::read_after(&self.readers, self.position, FOLLOW_BATCH).await?;
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
