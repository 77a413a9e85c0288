//! The settler: records finished attempts, as many at a time as have finished, in one
//! transaction each round (their invocation records and their deliveries' next state).

use std::collections::HashMap;
use std::sync::Arc;

use eddy_bus::{Bus, BusError, EventRows};
use eddy_subscriptions::Target;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::batch::{self, Batched, Leases, Turn, Turns};
use crate::deliveries::{Claim, Settle};
use crate::destination::{self, Written};
use crate::{ExecError, Inner, SETTLE_QUEUE, schedule};

/// A finished attempt on its way to the settler: what to record (a batch's settlements travel
/// together, so they are recorded in one transaction, not split across rounds), and — for a
/// batch that keeps its function's slot — the trigger whose next batch that slot should go
/// to, leased in the same transaction.
pub(crate) struct Finished {
    pub settles: Vec<Settle>,
    pub next: Option<Batched>,
    /// Told once the recording has committed and the batches it leased have started.
    pub recorded: Option<oneshot::Sender<()>>,
}

impl From<Settle> for Finished {
    fn from(settle: Settle) -> Self {
        Self {
            settles: vec![settle],
            next: None,
            recorded: None,
        }
    }
}

impl Finished {
    /// Hands a batch's outcome to the settler and waits until it is recorded: a batch's task
    /// ends only then, so that a stop, which waits for the running tasks, also waits for the
    /// batches the recording leased (they have started, or gone back, by the time it is told).
    /// Once the settler has stopped it returns at once; the leases then expire and run again.
    pub async fn record_batch(inner: &Inner, settles: Vec<Settle>, next: Option<Batched>) {
        let (recorded, told) = oneshot::channel();
        let finished = Self {
            settles,
            next,
            recorded: Some(recorded),
        };
        if inner.settled.send(finished).await.is_ok() {
            let _ = told.await;
        }
    }
}

/// What one recording commits: settlements, and the triggers whose next batches are leased
/// with the slots their finished batches hand over. Shared, not copied, when the recording is
/// tried again.
pub(crate) struct Recording {
    pub settles: Vec<Settle>,
    pub next: Vec<Batched>,
    /// Who is told once it has committed.
    told: Vec<oneshot::Sender<()>>,
}

impl From<Vec<Finished>> for Recording {
    fn from(finished: Vec<Finished>) -> Self {
        let mut recording = Recording {
            settles: Vec::with_capacity(finished.len()),
            next: Vec::new(),
            told: Vec::new(),
        };
        for f in finished {
            recording.settles.extend(f.settles);
            recording.next.extend(f.next);
            recording.told.extend(f.recorded);
        }
        recording
    }
}

/// Rounds being recorded at once, at most. A round waits for the writer's transaction in
/// progress and then commits its own — milliseconds, tens of them under a heavy write load.
/// A batch that has run holds its function's slot, and its trigger's next batch, until it is
/// recorded, so what finishes meanwhile goes to the writer as a round of its own when it holds
/// such a batch; other settlements wait for the rounds on their way and go together (a larger
/// round costs the writer less per settlement).
const ROUNDS_AT_ONCE: usize = 4;

/// Records finished attempts, as many at a time as have finished, in one transaction each
/// round (more than one round at once only for batches, up to [`ROUNDS_AT_ONCE`]); after
/// each, wakes the scheduler (a key may be free now).
pub(crate) async fn settle(inner: Arc<Inner>, mut queue: mpsc::Receiver<Finished>) {
    let mut stop = inner.drained.subscribe();
    let mut rounds = JoinSet::new();
    // The batches rounds lease start in the order the rounds were sent to the writer, which
    // is the order they commit in.
    let line = Turns::default();
    let mut finished: Vec<Finished> = Vec::new();
    loop {
        let batch_waits = || finished.iter().any(|f| f.next.is_some());
        if !finished.is_empty()
            && (rounds.is_empty() || (rounds.len() < ROUNDS_AT_ONCE && batch_waits()))
        {
            let recording = Recording::from(std::mem::take(&mut finished));
            rounds.spawn(round(inner.clone(), recording, line.queue("")));
        }
        let abandoned = tokio::select! {
            Some(round) = rounds.join_next(), if !rounds.is_empty() => {
                round.is_ok_and(|r| r == Round::Abandoned)
            }
            n = queue.recv_many(&mut finished, 1024), if finished.len() < SETTLE_QUEUE => {
                if n == 0 {
                    break;
                }
                false
            }
            _ = stop.wait_for(|s| *s) => break,
        };
        if abandoned {
            // The rounds on their way end too; what waits is not recorded.
            while rounds.join_next().await.is_some() {}
            return;
        }
    }
    // Stopping: every attempt has finished and queued its outcome (or the queue closed).
    // Record the last of them once the rounds on their way have been.
    while rounds.join_next().await.is_some() {}
    while let Ok(f) = queue.try_recv() {
        finished.push(f);
    }
    if !finished.is_empty() {
        let _ = inner.record(Arc::new(finished.into())).await;
    }
}

/// How a round ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Round {
    Recorded,
    /// It could not be recorded and will not be: the writer has stopped, or eddy stops. Its
    /// attempts end now and their leases return at the next start.
    Abandoned,
}

/// Records one round, trying again until it commits, then starts the batches it leased once
/// the rounds before it have started theirs (its `turn`). A round that fails gives up its
/// place at once: it leased nothing, and the rounds after it need not wait for its retry
/// (their batches are leased for a while only).
async fn round(inner: Arc<Inner>, mut recording: Recording, turn: Turn) -> Round {
    let told = std::mem::take(&mut recording.told);
    let recording = Arc::new(recording);
    let mut turn = Some(turn);
    loop {
        match inner.record(recording.clone()).await {
            Ok(next) => {
                if let Some(turn) = turn.as_mut() {
                    turn.wait().await;
                }
                schedule::start_batches(&inner, next);
                drop(turn);
                for recorded in told {
                    let _ = recorded.send(());
                }
                inner.wake.notify_one();
                return Round::Recorded;
            }
            Err(ExecError::Bus(BusError::WriterStopped)) => return Round::Abandoned,
            Err(error) if *inner.stop.borrow() => {
                tracing::error!(%error, "cannot record finished attempts as eddy stops; they run again at the next start");
                return Round::Abandoned;
            }
            Err(error) => {
                tracing::error!(%error, "cannot record finished attempts; trying again");
                turn = None;
                inner.clock.sleep_until(inner.clock.now_ms() + 1000).await;
            }
        }
    }
}

impl Inner {
    /// Commits settlements and invocation records, and tells whoever waits for new records.
    /// A finished batch that holds on to its slot has its trigger's next batch leased in the
    /// same transaction (one commit, not two, between a trigger's batches); those are returned
    /// to be run — already being made ready, from the moment they were leased — and the slots
    /// no batch took are given back.
    pub(crate) async fn record(
        self: &Arc<Self>,
        recording: Arc<Recording>,
    ) -> Result<Leases, ExecError> {
        let claim = Claim {
            node: self.config.node.clone(),
            now_ms: self.clock.now_ms(),
            ..Claim::default()
        };
        let stopping = *self.stop.borrow();
        // Slots held for a next batch, by function.
        let mut held: HashMap<String, u32> = HashMap::new();
        for next in &recording.next {
            *held.entry(next.function.clone()).or_default() += 1;
        }
        let writer = self.config.destination_writer.clone();
        let input = (self.clone(), recording, claim, writer);
        let leases: Leases = self
            .bus
            .write(input, move |tx, (inner, recording, claim, writer)| {
                let store = &inner.store;
                Box::pin(async move {
                    let settles = &recording.settles;
                    let moved = store.settle(tx, settles).await?;
                    // A destination's record goes with the settlement that moved its delivery:
                    // once, however often the batch is recorded.
                    for s in settles {
                        let (Some(delivery), Some(destination)) = (s.delivery, &s.destination)
                        else {
                            continue;
                        };
                        if !moved.contains(&delivery.delivery_id) {
                            continue;
                        }
                        let written = match (&destination.to, writer) {
                            (Target::Function(function), _) => {
                                let event = destination::event(function, destination);
                                Written::Journaled(tx.append(event).await?.seq)
                            }
                            (_, Some(writer)) => writer.write(tx, destination).await?,
                            (_, None) => {
                                Written::Refused("this executor writes to no stores".into())
                            }
                        };
                        match written {
                            Written::Journaled(seq) => {
                                store
                                    .note_destination(tx, delivery.delivery_id, seq)
                                    .await?
                            }
                            Written::Refused(why) => tracing::warn!(
                                destination = %destination.to,
                                record = destination.name,
                                delivery = delivery.delivery_id,
                                "a destination record was not written: {why}"
                            ),
                        }
                    }
                    let mut leased = Vec::new();
                    // Shutting down: no new batch starts, and the slots go back.
                    let next = if stopping {
                        &[][..]
                    } else {
                        &recording.next[..]
                    };
                    for next in next {
                        let mut room = HashMap::from([(next.function.clone(), 1)]);
                        let found = batch::lease(
                            store.as_ref(),
                            tx,
                            claim,
                            &inner.settling,
                            std::slice::from_ref(next),
                            &mut room,
                        );
                        leased.extend(found.await?.0);
                    }
                    // The next batches start as soon as this commits: their events are read
                    // here, on the writer's connection, not by a reader after the commit, and
                    // decoded and made into the batches' events off the writer while the
                    // transaction goes on and commits.
                    let seqs = batch::event_seqs(&leased);
                    let rows = if seqs.is_empty() {
                        EventRows::default()
                    } else {
                        Bus::event_rows_in(tx, &seqs).await?
                    };
                    Ok::<_, ExecError>(batch::prepare_all(inner, leased, rows))
                })
            })
            .await?;
        for (function, n) in held {
            let taken = leases
                .0
                .iter()
                .filter(|((_, b), _)| b[0].delivery.function == function)
                .count() as u32;
            if n > taken {
                let _ = self.store.give_back(&function, n - taken).await;
            }
        }
        self.recorded.send_modify(|n| *n += 1);
        Ok(leases)
    }
}
