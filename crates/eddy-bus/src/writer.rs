//! The single writer. SQLite has one writer at a time; instead of letting requests fight for the
//! lock, every write is a job sent to one task. The task takes all jobs that are waiting, runs
//! them in one transaction, commits once (one fsync for the lot), and only then answers each
//! job. A failed commit fails them all.
//!
//! Statements, not SQLite's work in them, bound the writer's rate (each is a round trip to a
//! server on PostgreSQL, a prepared statement's bind and step on SQLite, which runs them on the
//! writer's own thread). So the work per job is kept to the job's own statements:
//!
//! - the events jobs append are held in memory and written with one multi-row insert just
//!   before the commit; once it commits they are kept a while ([`Recent`]) for the followers,
//!   which then need not read back and parse what was just written;
//! - jobs run optimistically, without savepoints. Jobs rarely fail, but when one does, its
//!   writes may be half done: the transaction is rolled back, the failed job is answered with
//!   its error, and the others run again, each in its own savepoint, so that a second failure
//!   undoes only itself. That is why a job must be callable more than once (`Fn`), and must
//!   not do anything outside the transaction.
//!
//! A cursor that records only that events were read — work derived from them, if any, went
//! with its own write — need not cost a transaction of its own: it is *noted*
//! ([`WriterHandle::note_cursor`]) and written in the next transaction the writer commits
//! anyway, or alone once none has come for [`CURSOR_LAG`]. A noted position only ever raises
//! the saved one.
//!
//! A storage fault is ridden through, never papered over. A full disk fails the transaction
//! (SQLite rolls it back) and turns the data directory's [`Space`] to full, so writes that add
//! data are refused until space returns. Any other I/O error fails the transaction and the
//! connection is closed and opened again — the database's state is read back from the disk,
//! never trusted from memory after a failed write or fsync — and if it cannot be reopened,
//! nothing more is written and the storage reports failed.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use eddy_core::{Event, EventId, NewEvent};
use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::BusError;
use crate::journal;
use crate::recent::Recent;
use crate::space::Space;
use crate::sql::{Dialect, Row, Sql, Value};

/// How many jobs one transaction takes at most: enough to amortise the fsync, few enough that a
/// batch's latency stays small.
const MAX_BATCH: usize = 512;
/// Jobs waiting for the writer. When full, writers wait: the queue pushes back, it never drops.
pub(crate) const QUEUE_DEPTH: usize = 4096;
/// How long a noted cursor waits for a transaction to go with before it is written alone.
pub const CURSOR_LAG: Duration = Duration::from_millis(100);

/// A boxed future that borrows the transaction for its lifetime.
pub type TxFuture<'t, T> = Pin<Box<dyn Future<Output = T> + Send + 't>>;

/// What a finished run of a job hands back: whether it succeeded, and how to answer its caller
/// once the transaction's fate is known.
struct JobOutcome {
    ok: bool,
    answer: Answer,
}

/// A job, callable once per attempt. Dropping it unanswered tells its caller that nothing
/// committed.
type Job = Box<dyn for<'t> Fn(&'t mut WriteTx) -> TxFuture<'t, JobOutcome> + Send + Sync>;

/// Where a job's result goes; shared by its attempts, used by the one that counts.
type Reply<T, E> = std::sync::Arc<std::sync::Mutex<Option<oneshot::Sender<Result<T, E>>>>>;

/// What the writer needs of its engine's connection beyond statements.
#[async_trait]
pub(crate) trait WriterConnection: Sql + Send {
    /// Opens a write transaction whose events are the journal's next, and returns the last
    /// sequence number committed before it. `known` is the last one this writer committed: on
    /// an engine with one writer nothing else appends, so it is the answer; an engine shared by
    /// several writers takes the journal's order for this transaction (until it ends) and
    /// reads it.
    async fn begin(&mut self, known: u64) -> Result<u64, BusError>;
    async fn commit(&mut self) -> Result<(), BusError>;
    async fn rollback(&mut self) -> Result<(), BusError>;
    /// Replaces the connection with a fresh one to the same database (after an I/O error:
    /// nothing the old one held in memory is trusted).
    async fn reconnect(&mut self) -> Result<(), BusError>;
    /// Whether the database is a server that may answer again later when it cannot be reached
    /// now (then the writer keeps trying, one reconnection per batch), rather than a file
    /// that could not be opened again (then nothing more is written).
    fn reachable_later(&self) -> bool {
        false
    }
    /// Whether statements run on the calling thread, holding it until they finish (then the
    /// writer gets a thread of its own rather than holding one of the runtime's).
    fn blocks(&self) -> bool {
        false
    }
}

/// What the journal gave an appended event: its sequence number, id and commit time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    pub id: EventId,
    pub time_ms: i64,
}

/// The transaction a write job runs in. Jobs run their own statements on it (it is a
/// [`Sql`]) and [`WriteTx::append`] the change's event in the same transaction.
pub struct WriteTx {
    conn: Box<dyn WriterConnection>,
    /// The last sequence number this writer committed.
    committed_seq: u64,
    next_seq: u64,
    /// Events appended in this transaction, written just before it commits.
    pending: Vec<Event>,
    space: Arc<Space>,
}

impl WriteTx {
    /// Passes a statement's result on, telling the space when the disk was full.
    fn noticed<T>(&self, result: Result<T, BusError>) -> Result<T, BusError> {
        if let Err(e) = &result
            && e.is_out_of_space()
        {
            self.space.full(&e.to_string());
        }
        result
    }
}

#[async_trait]
impl Sql for WriteTx {
    fn dialect(&self) -> Dialect {
        self.conn.dialect()
    }

    async fn execute(&mut self, sql: &str, args: &[Value]) -> Result<u64, BusError> {
        let result = self.conn.execute(sql, args).await;
        self.noticed(result)
    }

    async fn fetch(&mut self, sql: &str, args: &[Value]) -> Result<Vec<Row>, BusError> {
        let result = self.conn.fetch(sql, args).await;
        self.noticed(result)
    }

    async fn run_script(&mut self, sql: &str) -> Result<(), BusError> {
        let result = self.conn.run_script(sql).await;
        self.noticed(result)
    }
}

impl WriteTx {
    /// Appends an event to the journal. It commits, or rolls back, with the job's own writes.
    /// (It is written when the transaction commits; a job does not read its own events.)
    /// Returns what the journal gave it — not a copy of the event, whose payload a job has
    /// already and would only copy to drop.
    pub async fn append(&mut self, event: NewEvent) -> Result<Appended, BusError> {
        let appended = Appended {
            seq: self.next_seq,
            id: EventId::generate(),
            time_ms: crate::now_ms(),
        };
        self.pending.push(Event {
            seq: appended.seq,
            id: appended.id,
            source: event.source,
            kind: event.kind,
            key: event.key,
            time_ms: appended.time_ms,
            payload: event.payload,
            lineage: event.lineage,
        });
        self.next_seq += 1;
        Ok(appended)
    }

    /// Saves a durable cursor position in this transaction, so that work derived from the
    /// journal and the cursor that records it commit together.
    pub async fn set_cursor(&mut self, name: &str, seq: u64) -> Result<(), BusError> {
        journal::set_cursor(self.conn.as_mut(), name, seq).await
    }

    /// A durable cursor's position as this transaction sees it.
    pub async fn cursor(&mut self, name: &str) -> Result<Option<u64>, BusError> {
        journal::cursor(self.conn.as_mut(), name).await
    }

    /// The first event's sequence number at or after `time_ms`, as this transaction sees it.
    pub async fn first_seq_at_or_after(&mut self, time_ms: i64) -> Result<Option<u64>, BusError> {
        journal::first_at_or_after(self.conn.as_mut(), time_ms).await
    }

    /// The newest committed event's sequence number, as this transaction sees it.
    pub async fn last_seq(&mut self) -> Result<u64, BusError> {
        journal::last_seq(self.conn.as_mut()).await
    }

    /// Removes the journal's events before `seq` (retention); returns how many.
    pub async fn compact_journal(&mut self, before_seq: u64) -> Result<u64, BusError> {
        journal::delete_before(self.conn.as_mut(), before_seq).await
    }
}

/// The sending side, held by [`crate::Bus`].
#[derive(Clone)]
pub(crate) struct WriterHandle {
    jobs: mpsc::Sender<Job>,
    space: Arc<Space>,
    noted: Arc<NotedCursors>,
    recent: Arc<Recent>,
}

/// Cursor positions noted for the writer to save, and the wake-up that tells it of one.
#[derive(Default)]
struct NotedCursors {
    positions: Mutex<HashMap<String, u64>>,
    noted: Notify,
}

impl NotedCursors {
    fn note(&self, name: &str, seq: u64) {
        let mut positions = self.positions.lock().expect("noted cursors lock");
        let position = positions.entry(name.to_string()).or_default();
        *position = (*position).max(seq);
        drop(positions);
        self.noted.notify_one();
    }

    fn snapshot(&self) -> Vec<(String, u64)> {
        let positions = self.positions.lock().expect("noted cursors lock");
        positions.iter().map(|(n, s)| (n.clone(), *s)).collect()
    }

    /// Forgets the positions `written` committed, unless noted further since.
    fn written(&self, written: &[(String, u64)]) {
        let mut positions = self.positions.lock().expect("noted cursors lock");
        for (name, seq) in written {
            if positions.get(name) == Some(seq) {
                positions.remove(name);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.positions
            .lock()
            .expect("noted cursors lock")
            .is_empty()
    }

    /// Returns once a position has been noted and no transaction has taken it for
    /// [`CURSOR_LAG`] (the caller drops this future whenever a transaction runs).
    async fn due(&self) {
        while self.is_empty() {
            self.noted.notified().await;
        }
        tokio::time::sleep(CURSOR_LAG).await;
    }
}

impl WriterHandle {
    pub(crate) async fn start(
        mut conn: Box<dyn WriterConnection>,
        committed: watch::Sender<u64>,
        space: Arc<Space>,
    ) -> Result<Self, BusError> {
        let last = journal::last_seq(conn.as_mut()).await?;
        committed.send_if_modified(|seen| raise(seen, last));
        let (jobs, queue) = mpsc::channel(QUEUE_DEPTH);
        let blocks = conn.blocks();
        let tx = WriteTx {
            conn,
            committed_seq: last,
            next_seq: last + 1,
            pending: Vec::new(),
            space: space.clone(),
        };
        let noted = Arc::new(NotedCursors::default());
        let recent = Arc::new(Recent::default());
        let writer = run(tx, queue, committed, noted.clone(), recent.clone());
        if blocks {
            // Its jobs' futures are driven on that thread, with the runtime's timers and I/O.
            let runtime = tokio::runtime::Handle::current();
            std::thread::Builder::new()
                .name("eddy-writer".into())
                .spawn(move || runtime.block_on(writer))
                .map_err(|e| BusError::Database {
                    failure: crate::error::Failure::Other,
                    message: format!("the writer's thread could not start: {e}"),
                })?;
        } else {
            tokio::spawn(writer);
        }
        Ok(Self {
            jobs,
            space,
            noted,
            recent,
        })
    }

    /// The events this writer committed last.
    pub(crate) fn recent(&self) -> Arc<Recent> {
        self.recent.clone()
    }

    /// Notes that cursor `name` may be saved at `seq` (never lowering it): with the next
    /// transaction, or alone within [`CURSOR_LAG`].
    pub(crate) fn note_cursor(&self, name: &str, seq: u64) {
        self.noted.note(name, seq);
    }

    pub(crate) async fn write<I, T, E, F>(&self, input: I, job: F) -> Result<T, E>
    where
        I: Send + Sync + 'static,
        T: Send + 'static,
        E: From<BusError> + Send + 'static,
        F: for<'t> Fn(&'t mut WriteTx, &'t I) -> TxFuture<'t, Result<T, E>> + Send + Sync + 'static,
    {
        if let Err(failed @ BusError::StorageFailed { .. }) = self.space.check_room() {
            return Err(E::from(failed));
        }
        let (sender, answer) = oneshot::channel();
        let reply: Reply<T, E> = std::sync::Arc::new(std::sync::Mutex::new(Some(sender)));
        // Every run of the job reads the same input: it is shared, never cloned.
        let shared = Arc::new((input, job));
        let job: Job = Box::new(move |tx| {
            let (shared, reply) = (shared.clone(), reply.clone());
            Box::pin(async move {
                let (input, job) = &*shared;
                let result = job(tx, input).await;
                JobOutcome {
                    ok: result.is_ok(),
                    answer: Box::new(move |commit| {
                        let sender = reply.lock().expect("reply lock").take();
                        if let Some(sender) = sender {
                            let _ = sender.send(commit.map_err(E::from).and(result));
                        }
                    }),
                }
            })
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| E::from(BusError::WriterStopped))?;
        answer.await.map_err(|_| {
            E::from(BusError::NotCommitted(
                "the transaction it was part of failed".into(),
            ))
        })?
    }
}

/// Raises the newest committed sequence number `seen` to `last`; says whether it rose.
pub(crate) fn raise(seen: &mut u64, last: u64) -> bool {
    let newer = last > *seen;
    if newer {
        *seen = last;
    }
    newer
}

async fn run(
    mut tx: WriteTx,
    mut queue: mpsc::Receiver<Job>,
    committed: watch::Sender<u64>,
    noted: Arc<NotedCursors>,
    recent: Arc<Recent>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut open = true;
    while open {
        tokio::select! {
            biased;
            received = queue.recv_many(&mut batch, MAX_BATCH) => open = received > 0,
            () = noted.due() => {}
        }
        // Once the queue has closed (the bus is gone), what is noted is still written, once.
        let cursors = noted.snapshot();
        if batch.is_empty() && cursors.is_empty() {
            continue;
        }
        let mut answers = Vec::with_capacity(batch.len());
        let result = run_batch(&mut tx, &batch, &cursors, &mut answers).await;
        // Jobs that never ran are dropped here; their callers learn that nothing committed.
        batch.clear();
        // Noted positions are forgotten once tried, committed or not: a failed one is noted
        // again as its reader reads on, and is not retried alone in the meantime.
        noted.written(&cursors);
        match result {
            Ok(events) => {
                tx.space.committed();
                // Held before the commit is told of: a follower woken by it finds them.
                recent.keep(events);
                let last = tx.next_seq - 1;
                if last > tx.committed_seq {
                    tx.committed_seq = last;
                    committed.send_if_modified(|seen| raise(seen, last));
                }
                for answer in answers {
                    answer(Ok(()));
                }
            }
            Err(error) => {
                tracing::error!(%error, "write transaction failed; its whole batch is rolled back");
                tx.pending.clear();
                let _ = tx.conn.rollback().await;
                let cause = error.to_string();
                let failure: fn(String) -> BusError = if error.is_out_of_space() {
                    tx.space.full(&cause);
                    |reason| BusError::StorageFull { reason }
                } else if error.is_io_fault() {
                    // After an I/O error nothing in memory is trusted: read the database again.
                    recent.forget();
                    if let Err(reopen_error) = reopen(&mut tx, &committed).await {
                        answer_all(answers, &cause, |reason| BusError::StorageFault { reason });
                        if tx.conn.reachable_later() {
                            tx.space.faulty(format!(
                                "the database cannot be reached ({reopen_error}); writes are refused until it answers again"
                            ));
                            continue;
                        }
                        tx.space.failed(format!(
                            "the database could not be reopened after an I/O error ({cause}): {reopen_error}; nothing more is written"
                        ));
                        return;
                    }
                    tx.space.faulty(format!(
                        "a write failed with an I/O error ({cause}); the database was opened again"
                    ));
                    |reason| BusError::StorageFault { reason }
                } else {
                    BusError::NotCommitted
                };
                let reason = match tx.space.state() {
                    crate::StorageState::Full { reason } => reason,
                    _ => cause,
                };
                answer_all(answers, &reason, failure);
            }
        }
    }
}

/// Answers every job of a failed transaction with the same failure.
fn answer_all(answers: Vec<Answer>, reason: &str, failure: fn(String) -> BusError) {
    for answer in answers {
        answer(Err(failure(reason.to_string())));
    }
}

/// Closes the writer's connection and opens the database again, taking the journal's position
/// from what is on disk.
async fn reopen(tx: &mut WriteTx, committed: &watch::Sender<u64>) -> Result<(), BusError> {
    tx.conn.reconnect().await?;
    let last = journal::last_seq(tx.conn.as_mut()).await?;
    tracing::warn!(
        last_seq = last,
        "the database was reopened after an I/O error"
    );
    tx.committed_seq = last;
    tx.next_seq = last + 1;
    committed.send_if_modified(|seen| raise(seen, last));
    Ok(())
}

type Answer = Box<dyn FnOnce(Result<(), BusError>) + Send>;

/// Runs a batch in one transaction, collecting each job's answer; returns the events it
/// committed, each with its payload's serialised length. `Err` means the transaction itself
/// failed and nothing in it committed.
async fn run_batch(
    tx: &mut WriteTx,
    batch: &[Job],
    cursors: &[(String, u64)],
    answers: &mut Vec<Answer>,
) -> Result<Vec<(Event, usize)>, BusError> {
    let last = tx.conn.begin(tx.committed_seq).await?;
    tx.next_seq = last + 1;
    raise_cursors(tx, cursors).await?;
    let mut failed = None;
    for (i, job) in batch.iter().enumerate() {
        let outcome = job(tx).await;
        if !outcome.ok {
            failed = Some((i, outcome));
            break;
        }
        answers.push(outcome.answer);
    }
    if let Some((index, failure)) = failed {
        // The failed job may have written half its work: start over without it, isolating
        // every other job in a savepoint. Its answer stands: it failed on the state the jobs
        // before it left, which is the state they leave again.
        tx.conn.rollback().await?;
        let last = tx.conn.begin(tx.committed_seq).await?;
        (tx.next_seq, tx.pending) = (last + 1, Vec::new());
        raise_cursors(tx, cursors).await?;
        answers.clear();
        answers.push(failure.answer);
        for (i, job) in batch.iter().enumerate() {
            if i != index {
                answers.push(run_isolated(tx, job).await?);
            }
        }
    }
    let sizes = journal::insert_all(tx.conn.as_mut(), &tx.pending).await?;
    let events = std::mem::take(&mut tx.pending);
    tx.conn.commit().await?;
    Ok(events.into_iter().zip(sizes).collect())
}

/// Raises the noted cursors, first in the transaction: a job that saves one of them further
/// (the reader that noted it, reading on) saves over it.
async fn raise_cursors(tx: &mut WriteTx, cursors: &[(String, u64)]) -> Result<(), BusError> {
    for (name, seq) in cursors {
        journal::raise_cursor(tx.conn.as_mut(), name, *seq).await?;
    }
    Ok(())
}

/// Runs a job in its own savepoint, so its failure undoes only its own writes. `Err` means the
/// transaction itself is broken.
async fn run_isolated(tx: &mut WriteTx, job: &Job) -> Result<Answer, BusError> {
    let (seq_before, pending_before) = (tx.next_seq, tx.pending.len());
    tx.conn.run_script("SAVEPOINT job").await?;
    let outcome = job(tx).await;
    let undo = if outcome.ok {
        "RELEASE job"
    } else {
        "ROLLBACK TO job; RELEASE job"
    };
    if !outcome.ok {
        tx.next_seq = seq_before;
        tx.pending.truncate(pending_before);
    }
    if let Err(e) = tx.conn.run_script(undo).await {
        (outcome.answer)(Err(BusError::NotCommitted(e.to_string())));
        return Err(e);
    }
    Ok(outcome.answer)
}
