//! Deliveries, leases, dead letters and invocation records: what the executor keeps durable,
//! and the trait a backend implements to keep it. The executor calls these inside its own
//! transactions (`tx`: the writer's; `db`: anything that reads); the storage module (`sql.rs`)
//! answers them.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use eddy_bus::sql::Sql;
use eddy_core::Lineage;
use eddy_subscriptions::Target;

use crate::ExecError;

/// A delivery to create for a matched event.
#[derive(Clone, Debug, PartialEq)]
pub struct NewDelivery {
    pub event_seq: u64,
    pub event_time_ms: i64,
    pub trigger: String,
    pub function: String,
    pub order_key: Option<String>,
    /// Set when the delivery is dead from the start (loop protection).
    pub dead: Option<(DeadReason, String)>,
    /// Set when the delivery is created leased (its function has room now), until then.
    pub lease_until: Option<i64>,
    /// The replay that makes it; 0 for the event's original delivery.
    pub replay: i64,
    /// Its trigger batches its records: it is leased in a batch, not alone.
    pub batched: bool,
}

/// A delivery that `create` wrote (not one that existed already).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    pub id: i64,
    pub event_seq: u64,
    pub trigger: String,
    pub leased: bool,
}

/// Why a delivery was dead-lettered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadReason {
    RetriesExhausted,
    EventAgeExceeded,
    RecursionLimit,
    FunctionMissing,
    /// The function refused the event (a webhook's 4xx): not retried.
    Refused,
}

impl DeadReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadReason::RetriesExhausted => "RetriesExhausted",
            DeadReason::EventAgeExceeded => "EventAgeExceeded",
            DeadReason::RecursionLimit => "RecursionLimit",
            DeadReason::FunctionMissing => "FunctionMissing",
            DeadReason::Refused => "Refused",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::RetriesExhausted,
            Self::EventAgeExceeded,
            Self::RecursionLimit,
            Self::FunctionMissing,
            Self::Refused,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// A delivery a worker holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leased {
    pub id: i64,
    pub event_seq: u64,
    pub event_time_ms: i64,
    pub trigger: String,
    pub function: String,
    /// This attempt's number, from 1.
    pub attempt: u32,
    /// The replay that made the delivery; 0 for an original one.
    pub replay: i64,
}

/// A ready delivery of a batched trigger that could go in a batch now: due, and no earlier
/// delivery of its key is running or waiting for a later time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchCandidate {
    pub delivery: Leased,
    pub order_key: Option<String>,
    /// The half of a bisected batch it went to: it is batched only with the rest of that half.
    pub part: Option<String>,
    /// When it became ready: made, or the time its retry was due.
    pub ready_ms: i64,
}

/// The batches of a trigger leased now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunningBatches {
    pub all: u32,
    /// Those leased by another node.
    pub elsewhere: u32,
}

/// A delivery of one event, as `events show` tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryState {
    pub id: i64,
    pub trigger: String,
    pub function: String,
    /// `ready`, `leased`, `done` or `dead`.
    pub state: String,
    pub attempts: u32,
    /// When a ready delivery's next attempt is due.
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
    pub dead_reason: Option<String>,
    pub replay: i64,
    /// The journal event that carried its destination record, if its settlement wrote one.
    pub destination_seq: Option<u64>,
}

/// A replay: journal events delivered again to one trigger, its deliveries made a page at a
/// time as the trigger's function has room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replay {
    pub id: i64,
    pub trigger: String,
    /// The first and last sequence numbers of the range replayed.
    pub from_seq: u64,
    pub to_seq: u64,
    /// The next event of the range to look at (past `to_seq` once every delivery is made).
    pub next_seq: u64,
    /// The deliveries made so far: one per event of the range the trigger matched.
    pub events: u64,
    pub created_ms: i64,
    /// When its last deliveries were made.
    pub finished_ms: Option<i64>,
    /// For a backfill, its mark: only the events it journaled are delivered.
    pub backfill: Option<String>,
}

/// A dead-lettered delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    pub delivery_id: i64,
    pub event_seq: u64,
    pub trigger: String,
    pub function: String,
    pub reason: DeadReason,
    pub last_error: Option<String>,
    pub attempts: u32,
    pub time_ms: i64,
}

/// How many deliveries are in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub ready: u64,
    pub leased: u64,
    pub done: u64,
    pub dead: u64,
}

impl DeliveryCounts {
    pub fn total(&self) -> u64 {
        self.ready + self.leased + self.done + self.dead
    }
}

/// One recorded attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct InvocationRecord {
    pub request_id: String,
    pub function: String,
    pub delivery_id: Option<i64>,
    pub event_seq: Option<u64>,
    pub attempt: u32,
    pub start_ms: i64,
    pub duration_us: u64,
    /// `success`, `error` or `timeout`.
    pub outcome: String,
    pub error_type: Option<String>,
    pub error: Option<String>,
    pub output: String,
    pub truncated: bool,
    /// The function's memory size when it ran.
    pub memory_mb: u32,
    /// The duration Lambda would bill: rounded up to the millisecond.
    pub billed_ms: u64,
    /// The most memory the function's process held, where measured.
    pub max_memory_mb: Option<u64>,
    /// How long starting a worker took, on a cold start.
    pub init_us: Option<u64>,
    /// How many records the invocation carried, when it was a batch's.
    pub batch_size: Option<u32>,
    /// What a successful attempt returned, as JSON: at most [`RESPONSE_KEPT`] bytes of it (a
    /// longer answer is cut, and ends in `…`).
    pub response: Option<String>,
}

/// How much of an attempt's answer its record keeps.
pub const RESPONSE_KEPT: usize = 16 * 1024;

/// `value` as JSON, cut to [`RESPONSE_KEPT`] bytes (at a character's edge, marked with `…`).
/// Every invocation's answer passes here, up to 6 MB of it: writing stops at the limit rather
/// than serializing the whole answer to keep its start.
pub fn kept_response(value: &serde_json::Value) -> String {
    /// Takes bytes up to the limit, then refuses more (which ends the serialization).
    struct Bounded(Vec<u8>);
    impl std::io::Write for Bounded {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let room = RESPONSE_KEPT + 1 - self.0.len();
            let taken = bytes.len().min(room);
            self.0.extend_from_slice(&bytes[..taken]);
            if taken < bytes.len() {
                return Err(std::io::Error::other("the kept part is full"));
            }
            Ok(taken)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut kept = Bounded(Vec::with_capacity(64));
    // An error here only means the answer is longer than what is kept.
    let _ = serde_json::to_writer(&mut kept, value);
    let mut bytes = kept.0;
    if bytes.len() <= RESPONSE_KEPT {
        return String::from_utf8(bytes).expect("serde_json writes UTF-8");
    }
    let mut cut = RESPONSE_KEPT;
    while cut > 0 && (bytes[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    bytes.truncate(cut);
    let mut text = String::from_utf8(bytes).expect("cut at a character's edge");
    text.push('…');
    text
}

/// Invocation records in the order they were recorded, and where the next page starts.
#[derive(Clone, Debug, Default)]
pub struct InvocationPage {
    pub records: Vec<InvocationRecord>,
    /// Pass as `after` for the records recorded since (the position of the last one here).
    pub next: i64,
}

/// What to do with a delivery after an attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum Settlement {
    Done,
    Retry {
        at_ms: i64,
        error: String,
    },
    Dead {
        reason: DeadReason,
        error: String,
    },
    /// Back to ready, due when it was, this attempt not counted: a half of a bisected batch
    /// (`part` names it), or a record a batch had no room for.
    Rebatch {
        part: Option<String>,
        error: Option<String>,
    },
}

/// An attempt at a delivery: the delivery, and the attempt's number, which the delivery's
/// attempt count holds for as long as this attempt's lease stands (a later claim raises it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub delivery_id: i64,
    pub attempt: u32,
}

impl From<&Leased> for DeliveryAttempt {
    /// The attempt a lease is for.
    fn from(leased: &Leased) -> Self {
        Self {
            delivery_id: leased.id,
            attempt: leased.attempt,
        }
    }
}

/// One finished attempt (or a delivery that could not be attempted) to record.
///
/// Recording the same settlements again changes nothing (their commit may have gone through
/// with its answer lost, and the settler tries again), and a failure or dead letter from an
/// attempt whose lease has passed to a later one leaves the later one alone.
#[derive(Clone, Debug)]
pub struct Settle {
    /// The attempt settled; `None` for a synchronous invocation, which has no delivery.
    pub delivery: Option<DeliveryAttempt>,
    pub settlement: Settlement,
    pub record: Option<InvocationRecord>,
    /// A record for a destination, written (journaled as an asynchronous invocation of a
    /// function, or as an object's or row's change) in the settlement's transaction if the
    /// settlement moves the delivery on.
    pub destination: Option<Destination>,
    /// The batch invocation (its request id) the attempt was part of, if it was batched.
    pub batch: Option<String>,
    pub now_ms: i64,
}

/// A destination's record: an asynchronous invocation of a function with it, an object of a
/// bucket or a row of a table.
#[derive(Clone, Debug, PartialEq)]
pub struct Destination {
    pub to: Target,
    /// The record's object key or row key in a bucket or table, as Lambda names the objects
    /// it writes to an S3 destination.
    pub name: String,
    pub record: serde_json::Value,
    /// The attempt it comes from: a destination's invocations count as handler hops.
    pub lineage: Lineage,
}

/// Attempts that started in one minute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinuteCount {
    pub minute_ms: i64,
    pub invocations: u64,
    pub errors: u64,
}

/// Totals of one function's attempts that started on one day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayTotals {
    /// The day's start, milliseconds since the epoch (UTC).
    pub day_ms: i64,
    pub function: String,
    pub count: u64,
    pub errors: u64,
    pub billed_ms: u64,
    /// Sum of billed milliseconds times memory in MB.
    pub mb_ms: u64,
}

impl DayTotals {
    pub fn gb_seconds(&self) -> f64 {
        self.mb_ms as f64 / 1024.0 / 1000.0
    }
}

/// What removing the done deliveries of removed events took with them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RemovedDone {
    pub deliveries: u64,
    /// Their invocations' records, added to their day's usage and removed.
    pub summed: u64,
}

/// Totals of recorded attempts for one function and outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvocationTotals {
    pub function: String,
    /// `success`, `error` or `timeout`.
    pub outcome: String,
    pub count: u64,
    pub duration_us: u64,
    /// Attempts after the first (retries), among `count`.
    pub retries: u64,
    /// Billed milliseconds (each attempt's duration rounded up to the millisecond).
    pub billed_ms: u64,
    /// Billed milliseconds times the function's memory in MB: what Lambda's GB-seconds count.
    pub mb_ms: u64,
}

impl InvocationTotals {
    /// GB-seconds, as Lambda bills compute: memory in GB (1024 MB) times billed seconds.
    pub fn gb_seconds(&self) -> f64 {
        self.mb_ms as f64 / 1024.0 / 1000.0
    }
}

/// How deliveries are claimed: by whom, until when, and how many of each function's slots are
/// free (a function absent from `room` gets `default_room`; one absent from `lease_until`
/// `default_until`). Batched deliveries are not claimed this way.
#[derive(Clone, Debug, Default)]
pub struct Claim {
    pub node: String,
    pub now_ms: i64,
    pub limit: u32,
    pub room: HashMap<String, u32>,
    pub default_room: u32,
    pub lease_until: HashMap<String, i64>,
    pub default_until: i64,
}

/// Where deliveries and invocation records live.
///
/// Concurrency: a function runs at most its `concurrency` invocations at once across every
/// executor sharing the store. Running attempts hold slots: [`DeliveryStore::take_slots`] takes
/// them (for a synchronous invocation, or before claiming), [`DeliveryStore::give_back`]
/// returns them.
#[async_trait]
pub trait DeliveryStore: Send + Sync + 'static {
    /// Records the deliveries matched events make — once per event and trigger, whatever
    /// happens — in the caller's transaction. Those with `lease_until` are created leased to
    /// `node`, but for one ordered per key whose key has a delivery waiting or running, which is
    /// created ready (the caller leases at most one per key). Returns the deliveries it created
    /// (not those that existed), saying which are leased.
    async fn create(
        &self,
        tx: &mut dyn Sql,
        node: &str,
        deliveries: &[NewDelivery],
        now_ms: i64,
    ) -> Result<Vec<Created>, ExecError>;

    /// Leases due deliveries to `claim.node`: ready, due, and for ordered ones the oldest
    /// unfinished of their key; at most `claim.room` of each function. Atomic against every
    /// other claimer.
    async fn claim(&self, tx: &mut dyn Sql, claim: &Claim) -> Result<Vec<Leased>, ExecError>;

    /// How many deliveries each function has due now to lease one by one (not batched, ready,
    /// their time come and, for ordered ones, first of their key), counting at most `limit` in
    /// all: what a claim would find.
    async fn due(
        &self,
        db: &mut dyn Sql,
        now_ms: i64,
        limit: u32,
    ) -> Result<HashMap<String, u32>, ExecError>;

    /// Which of these batched triggers have a record due now.
    async fn batches_due(
        &self,
        db: &mut dyn Sql,
        triggers: &[&str],
        now_ms: i64,
    ) -> Result<HashSet<String>, ExecError>;

    /// When the earliest ready delivery is due, of those due after `after_ms`.
    async fn next_due(&self, db: &mut dyn Sql, after_ms: i64) -> Result<Option<i64>, ExecError>;

    /// How many batches of `trigger` are leased now (running, or waiting for their turn) but
    /// for `settling` (batches of `node` that have run and wait for their settlement), and how
    /// many of them by a node other than `node`.
    async fn running_batches(
        &self,
        tx: &mut dyn Sql,
        trigger: &str,
        node: &str,
        settling: &[String],
    ) -> Result<RunningBatches, ExecError>;

    /// The deliveries of batched `trigger` that could go in a batch now, in event order, at most
    /// `limit`.
    async fn batch_candidates(
        &self,
        tx: &mut dyn Sql,
        trigger: &str,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<BatchCandidate>, ExecError>;

    /// Marks the deliveries that wait or run as batched when their trigger is one of
    /// `triggers`, and as leased one by one otherwise (the app changed); returns how many
    /// changed.
    async fn mark_batched(&self, tx: &mut dyn Sql, triggers: &[&str]) -> Result<u64, ExecError>;

    /// Leases `ids` to `claim.node` as the batch `batch` (its invocation's request id), until
    /// `until_ms`.
    async fn lease_batch(
        &self,
        tx: &mut dyn Sql,
        claim: &Claim,
        ids: &[i64],
        batch: &str,
        until_ms: i64,
    ) -> Result<(), ExecError>;

    /// Returns leases that ran out (whoever held them) to ready.
    async fn expire(&self, tx: &mut dyn Sql, now_ms: i64) -> Result<u64, ExecError>;

    /// Returns `node`'s own leases to ready (it is starting: none of its attempts runs), and
    /// expired ones; never another live node's.
    async fn reclaim(&self, tx: &mut dyn Sql, node: &str, now_ms: i64) -> Result<u64, ExecError>;

    /// Records attempts and moves their deliveries on; returns the deliveries it moved (none
    /// of those it had moved already: settling again changes nothing).
    async fn settle(&self, tx: &mut dyn Sql, batch: &[Settle]) -> Result<Vec<i64>, ExecError>;

    /// Records a replay (of a backfill's events only, with its mark), to be made from
    /// `from_seq`, and gives it its id.
    async fn record_replay(
        &self,
        tx: &mut dyn Sql,
        trigger: &str,
        (from_seq, to_seq): (u64, u64),
        backfill: Option<&str>,
        now_ms: i64,
    ) -> Result<i64, ExecError>;

    /// Replays, newest first; only those not finished when `unfinished`.
    async fn replays(&self, db: &mut dyn Sql, unfinished: bool) -> Result<Vec<Replay>, ExecError>;

    /// Moves replay `id` on from `next_seq` (as read) to `to_next`, counting `made` deliveries,
    /// finished if `finished`; `false`, changing nothing, when another moved it on first.
    async fn advance_replay(
        &self,
        tx: &mut dyn Sql,
        id: i64,
        next_seq: u64,
        to_next: u64,
        made: u64,
        finished: Option<i64>,
    ) -> Result<bool, ExecError>;

    /// The oldest event that a delivery still needs (one that waits or runs, or that an
    /// unfinished replay has yet to look at): the journal keeps it and every later one.
    async fn oldest_needed_event(&self, db: &mut dyn Sql) -> Result<Option<u64>, ExecError>;

    /// Removes the logs and answers of the invocations that started in `from_ms..before_ms`
    /// (older than the journal's retention). Returns how many records lost theirs.
    async fn clear_logs(
        &self,
        tx: &mut dyn Sql,
        from_ms: i64,
        before_ms: i64,
    ) -> Result<u64, ExecError>;

    /// Adds the records of the invocations that started in `from_ms..before_ms` and that no
    /// kept delivery is explained by to their day's usage, and removes them; returns how many.
    /// The others (a dead letter's attempts, those of a delivery whose event is still kept)
    /// stay, to be summed when their delivery goes ([`DeliveryStore::remove_done`]).
    async fn sum_usage(
        &self,
        tx: &mut dyn Sql,
        from_ms: i64,
        before_ms: i64,
    ) -> Result<u64, ExecError>;

    /// Removes the done deliveries of events `after_seq + 1 ..= through_seq` (events the
    /// journal's retention removed), and the notes of the batches they went in; the records
    /// of those events' invocations that started before `summed_before_ms` (passed over by
    /// [`DeliveryStore::sum_usage`] while their delivery was kept) and that nothing kept is
    /// explained by any more are added to their day's usage and removed with them. Dead
    /// deliveries stay: they are dead letters, listed and redriven.
    async fn remove_done(
        &self,
        tx: &mut dyn Sql,
        after_seq: u64,
        through_seq: u64,
        summed_before_ms: i64,
    ) -> Result<RemovedDone, ExecError>;

    /// How many of replay `id`'s deliveries wait or run now.
    async fn replay_backlog(&self, db: &mut dyn Sql, id: i64) -> Result<u64, ExecError>;

    /// Every delivery of the event `event_seq`, originals and replays, in the order made.
    async fn deliveries_of(
        &self,
        db: &mut dyn Sql,
        event_seq: u64,
    ) -> Result<Vec<DeliveryState>, ExecError>;

    /// Notes that delivery `delivery_id`'s destination record went as journal event
    /// `event_seq`.
    async fn note_destination(
        &self,
        tx: &mut dyn Sql,
        delivery_id: i64,
        event_seq: u64,
    ) -> Result<(), ExecError>;

    /// The last run of each schedule that has run (or was started).
    async fn schedule_runs(&self, db: &mut dyn Sql) -> Result<HashMap<String, i64>, ExecError>;

    /// Moves schedule `name`'s last run from `previous` (`None`: it has none) to `run_ms`;
    /// `false`, changing nothing, when its last run is no longer `previous` (another node, or
    /// an earlier life of this one, moved it on).
    async fn advance_schedule(
        &self,
        tx: &mut dyn Sql,
        name: &str,
        previous: Option<i64>,
        run_ms: i64,
    ) -> Result<bool, ExecError>;

    /// Dead letters, oldest first, of one function or all.
    async fn dead_letters(
        &self,
        db: &mut dyn Sql,
        function: Option<&str>,
    ) -> Result<Vec<DeadLetter>, ExecError>;

    /// Sends dead letters back to be delivered afresh (attempts start again): one by id, or
    /// every one of a function. Returns how many.
    async fn redrive(
        &self,
        tx: &mut dyn Sql,
        delivery: Option<i64>,
        function: Option<&str>,
        now_ms: i64,
    ) -> Result<u64, ExecError>;

    async fn counts(&self, db: &mut dyn Sql) -> Result<DeliveryCounts, ExecError>;

    /// When the oldest delivery still waiting (ready or leased) was created, by its event's
    /// time.
    async fn oldest_pending_ms(&self, db: &mut dyn Sql) -> Result<Option<i64>, ExecError>;

    /// Recorded attempts, in the order they were recorded: of one function, or for one event,
    /// after position `after`.
    async fn invocations(
        &self,
        db: &mut dyn Sql,
        function: Option<&str>,
        event_seq: Option<u64>,
        after: i64,
        limit: u32,
    ) -> Result<InvocationPage, ExecError>;

    /// The state of every delivery of each of these events, as (event, state) pairs.
    async fn delivery_states(
        &self,
        db: &mut dyn Sql,
        event_seqs: &[u64],
    ) -> Result<Vec<(u64, String)>, ExecError>;

    /// A function's latest recorded attempts, newest first (by when they started).
    async fn latest_invocations(
        &self,
        db: &mut dyn Sql,
        function: &str,
        limit: u32,
    ) -> Result<Vec<InvocationRecord>, ExecError>;

    /// A function's attempts that started at or after `since_ms`, counted per minute: the
    /// minute's start, the attempts, and those that failed.
    async fn invocations_per_minute(
        &self,
        db: &mut dyn Sql,
        function: &str,
        since_ms: i64,
    ) -> Result<Vec<MinuteCount>, ExecError>;

    /// Recorded attempts, totalled per day (UTC, by when they started) and function: the
    /// records kept and the usage of those aged out.
    async fn invocation_days(&self, db: &mut dyn Sql) -> Result<Vec<DayTotals>, ExecError>;

    /// Recorded attempts, totalled per function and outcome: the records kept and the usage of
    /// those aged out.
    async fn invocation_totals(&self, db: &mut dyn Sql)
    -> Result<Vec<InvocationTotals>, ExecError>;

    /// Takes up to `want` of `function`'s free slots (of `capacity`), held until given back
    /// or, should this node die, until `until_ms`; returns how many.
    async fn take_slots(
        &self,
        function: &str,
        capacity: u32,
        want: u32,
        until_ms: i64,
    ) -> Result<u32, ExecError>;

    /// Returns `n` slots of `function`.
    async fn give_back(&self, function: &str, n: u32) -> Result<(), ExecError>;

    /// Holds this node's slots of `function` at least until `until_ms`, in the caller's
    /// transaction: a slot a finished batch hands to its trigger's next one (a chain of batches
    /// can hold one for hours), or one held by a batch waiting for its turn, must not run out
    /// while its holder lives. Other nodes' slots are left alone.
    async fn hold_slots(
        &self,
        tx: &mut dyn Sql,
        function: &str,
        until_ms: i64,
    ) -> Result<(), ExecError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_kept_whole_or_cut_at_a_characters_edge() {
        let small = serde_json::json!({"ok": true});
        assert_eq!(kept_response(&small), r#"{"ok":true}"#);
        let large = serde_json::Value::String("é".repeat(RESPONSE_KEPT));
        let kept = kept_response(&large);
        assert!(kept.ends_with('…') && kept.len() <= RESPONSE_KEPT + '…'.len_utf8());
        assert!(kept.starts_with("\"éé"));
        let whole = serde_json::Value::String("a".repeat(RESPONSE_KEPT - 2));
        assert_eq!(
            kept_response(&whole),
            whole.to_string(),
            "exactly the limit is kept whole"
        );
    }
}
