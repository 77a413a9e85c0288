//! eddy's executor: turns journal events into durable deliveries and runs them.
//!
//! - The **dispatcher** (`dispatch`) follows the journal (woken by each commit, never polling), matches each
//!   event against the triggers, and writes one delivery per match together with its durable
//!   cursor, so a restart neither skips nor repeats an event.
//! - The **scheduler** (`schedule`, and `batch` for batched triggers) leases due deliveries — respecting each function's concurrency and,
//!   for `per_key` triggers, the commit order of each key — and runs them (`attempt`).
//! - Each attempt is **settled** (`settle`) in one transaction with its invocation record: done, retried
//!   later (backoff with jitter), or dead-lettered with a reason. Leases held by a process that
//!   died return to ready when the next one starts.
//!
//! Time comes from a [`Clock`], so tests move it instead of sleeping.

mod attempt;
mod backoff;
mod batch;
pub mod clock;
mod compaction;
mod deliveries;
mod destination;
mod dispatch;
mod error;
mod payload;
mod replay;
mod schedule;
mod settle;
mod sql;
mod timetable;
pub use eddy_runtimes as runtime;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use eddy_bus::{Appended, Bus};
use eddy_core::{Event, EventKind, FunctionName, Lineage, NewEvent, Source};
use eddy_subscriptions::{App, Explanation, FunctionSpec, MatchIndex};
use serde_json::Value;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

pub use clock::{Clock, ManualClock, SystemClock};
pub use deliveries::{
    BatchCandidate, Claim, Created, DayTotals, DeadLetter, DeadReason, DeliveryAttempt,
    DeliveryCounts, DeliveryState, DeliveryStore, Destination, InvocationPage, InvocationRecord,
    InvocationTotals, Leased, MinuteCount, NewDelivery, RemovedDone, Replay, RunningBatches,
    Settle, Settlement,
};
pub use destination::{DestinationWriter, Written};
pub use error::ExecError;
pub use replay::JournalPoint;
pub use runtime::{Context, FunctionError, Handler, Outcome};
pub use sql::SqlDeliveries;

use dispatch::CURSOR;
use settle::Finished;

/// The trigger name of deliveries for asynchronous invocations.
pub const INVOKE_TRIGGER: &str = "$invoke";

#[derive(Clone, Debug)]
pub struct ExecutorConfig {
    /// This node's name: its leases carry it, and at start it takes back only its own (and
    /// expired ones), never those of another node sharing the database.
    pub node: String,
    /// An event more hops than this from a write no handler made is dead-lettered.
    pub max_hops: u32,
    /// Deliveries leased per round at most.
    pub lease_batch: u32,
    /// Journal events a compaction removes per transaction at most, with their done
    /// deliveries (and about as many invocation logs per transaction): a backlog is removed
    /// over several transactions, between which other writes go on.
    pub compaction_step: u64,
    /// How long a lease outlives the function's timeout before it counts as abandoned.
    pub lease_grace: Duration,
    /// The scheduler looks for due work at least this often, whatever it was told.
    pub safety_poll: Duration,
    /// DynamoDB stream labels (table creation times) by table name, until [`Executor::set_app`]
    /// gives new ones.
    pub stream_labels: HashMap<String, String>,
    /// Variables every function process gets besides Lambda's own: where eddy is.
    pub function_env: Vec<(String, String)>,
    /// A warm worker unused this long is stopped.
    pub worker_idle_timeout: Duration,
    /// Cap each worker's CPU at one core per 1,769 MB of memory, as Lambda does (where a cpu
    /// cgroup is writable); otherwise CPU is only shared in proportion to memory.
    pub strict_cpu: bool,
    /// What keeps function processes from eddy and from each other. `eddy serve` picks the
    /// strongest the host allows; an embedder chooses (the default is none).
    pub sandbox: Arc<runtime::sandbox::Sandbox>,
    /// Writes bucket and table destination records; without one, such records are not
    /// written (and logged as not written).
    pub destination_writer: Option<Arc<dyn DestinationWriter>>,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        Self {
            node: "local".into(),
            max_hops: 16,
            lease_batch: 256,
            compaction_step: 5_000,
            lease_grace: Duration::from_secs(30),
            safety_poll: Duration::from_secs(5),
            stream_labels: HashMap::new(),
            function_env: Vec::new(),
            worker_idle_timeout: Duration::from_secs(300),
            strict_cpu: false,
            sandbox: runtime::sandbox::Sandbox::off(),
            destination_writer: None,
        }
    }
}

/// A finished synchronous invocation.
#[derive(Clone, Debug)]
pub struct Invocation {
    pub request_id: String,
    pub outcome: Outcome,
    pub duration: Duration,
}

/// The running executor. Dropping it does not stop it; call [`Executor::shutdown`].
pub struct Executor {
    inner: Arc<Inner>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

struct Inner {
    bus: Bus,
    clock: Arc<dyn Clock>,
    config: ExecutorConfig,
    app: RwLock<Arc<Compiled>>,
    handlers: RwLock<runtime::Handlers>,
    /// Deliveries, leases, records, and the slots that cap each function's concurrency.
    store: Arc<dyn DeliveryStore>,
    /// Wakes the scheduler: new deliveries, or a slot or key that came free.
    wake: Notify,
    /// Wakes the timetable: the app (its schedules) changed.
    schedules_changed: Notify,
    /// Wakes the replayer: a replay was recorded.
    replays_changed: Notify,
    /// Set at shutdown: the dispatcher and the scheduler stop taking work.
    stop: watch::Sender<bool>,
    /// The attempts running now; shutdown waits for them.
    attempts: TaskTracker,
    /// Set at shutdown once every attempt has finished: the settler records the last and stops.
    drained: watch::Sender<bool>,
    /// Finished attempts on their way to the settler, which records them in batches.
    settled: mpsc::Sender<Finished>,
    /// The line of each batched trigger that runs one batch at a time.
    turns: batch::Turns,
    /// This node's batches that have run and wait for their settlement to commit.
    settling: Arc<batch::Settling>,
    /// The warm workers of the Lambda runtimes.
    workers: Arc<runtime::Workers>,
    /// Synchronous invocations refused for want of a free slot, by function, since start.
    throttles: Mutex<HashMap<String, u64>>,
    /// Counts the commits that recorded invocations, so readers can wait for new ones.
    recorded: watch::Sender<u64>,
}

/// Finished attempts waiting to be recorded at most (a batch counts as one: its settlements
/// travel together); beyond, attempts wait (push back).
pub(crate) const SETTLE_QUEUE: usize = 4096;

struct Compiled {
    app: App,
    index: MatchIndex,
    stream_labels: HashMap<String, String>,
}

impl Compiled {
    /// The stream label of a table's events (its creation time), when known.
    fn stream_label(&self, source: &Source) -> Option<&str> {
        match source {
            Source::Table(t) => self.stream_labels.get(t.as_str()).map(String::as_str),
            _ => None,
        }
    }
}

impl Executor {
    /// Starts the dispatcher, the scheduler and the timetable for `app`, with the deliveries of the database
    /// `bus` has open. This node's leases from before (and expired ones) return to ready first.
    pub async fn start(
        bus: Bus,
        app: App,
        clock: Arc<dyn Clock>,
        config: ExecutorConfig,
    ) -> Result<Self, ExecError> {
        let store = Arc::new(SqlDeliveries::new(&bus, &config.node));
        Self::start_with(bus, store, app, clock, config).await
    }

    /// [`Executor::start`] with a given delivery store: executors given one store share its
    /// deliveries and each function's concurrency, as nodes sharing a database do.
    pub async fn start_with(
        bus: Bus,
        store: Arc<dyn DeliveryStore>,
        app: App,
        clock: Arc<dyn Clock>,
        config: ExecutorConfig,
    ) -> Result<Self, ExecError> {
        let input = (store.clone(), config.node.clone(), clock.now_ms());
        let released = bus
            .write(input, |tx, (store, node, now)| {
                Box::pin(store.reclaim(tx, node, *now))
            })
            .await?;
        if released > 0 {
            tracing::info!(
                released,
                node = config.node,
                "deliveries this node held before it started are ready again"
            );
        }
        let (settled, settle_queue) = mpsc::channel(SETTLE_QUEUE);
        let workers = runtime::Workers::new(runtime::WorkerConfig {
            env: config.function_env.clone(),
            idle_timeout: config.worker_idle_timeout,
            strict_cpu: config.strict_cpu,
            sandbox: config.sandbox.clone(),
        });
        // The interpreters the app's functions run are looked for now, beside start-up and off
        // the async threads, not inside a first invocation (looking runs them).
        let (finder, functions) = (workers.clone(), app.functions.clone());
        tokio::task::spawn_blocking(move || {
            functions
                .iter()
                .for_each(|f| finder.look_for_interpreter(f));
        });
        let compiled = Compiled {
            index: MatchIndex::new(&app),
            app,
            stream_labels: config.stream_labels.clone(),
        };
        let inner = Arc::new(Inner {
            bus,
            clock,
            config,
            app: RwLock::new(Arc::new(compiled)),
            handlers: RwLock::new(HashMap::new()),
            store,
            wake: Notify::new(),
            schedules_changed: Notify::new(),
            replays_changed: Notify::new(),
            stop: watch::Sender::new(false),
            attempts: TaskTracker::new(),
            drained: watch::Sender::new(false),
            settled,
            turns: batch::Turns::default(),
            settling: Arc::default(),
            workers,
            throttles: Mutex::new(HashMap::new()),
            recorded: watch::Sender::new(0),
        });
        inner.mark_batched().await?;
        let tasks = vec![
            tokio::spawn(dispatch::dispatch(inner.clone())),
            tokio::spawn(schedule::schedule(inner.clone())),
            tokio::spawn(timetable::timetable(inner.clone())),
            tokio::spawn(replay::replayer(inner.clone())),
            tokio::spawn(compaction::compactor(inner.clone())),
            // Last: shutdown stops it last.
            tokio::spawn(settle::settle(inner.clone(), settle_queue)),
        ];
        Ok(Self {
            inner,
            tasks: Mutex::new(tasks),
        })
    }

    /// Replaces the app (its functions and triggers), the tables' stream labels and each
    /// function's environment (its credentials) from now on. Deliveries already made stay;
    /// events not yet dispatched match the new triggers.
    pub fn set_app(
        &self,
        app: App,
        stream_labels: HashMap<String, String>,
        function_env: HashMap<String, Vec<(String, String)>>,
    ) {
        self.inner.workers.set_function_env(function_env);
        *self.inner.app.write().expect("app lock") = Arc::new(Compiled {
            index: MatchIndex::new(&app),
            app,
            stream_labels,
        });
        // Workers started for the old app (or old code) are not reused.
        self.inner.workers.retire_all();
        self.keep_warm();
        let inner = self.inner.clone();
        tokio::spawn(async move {
            if let Err(error) = inner.mark_batched().await {
                tracing::error!(%error, "cannot mark which waiting deliveries are batched");
            }
            inner.wake.notify_one();
        });
        self.inner.wake.notify_one();
        self.inner.schedules_changed.notify_one();
    }

    /// Starts each function's warm workers (those missing), for the app and credentials in
    /// force now — off the caller's thread: looking for an interpreter runs it.
    fn keep_warm(&self) {
        let app = self.inner.app.read().expect("app lock").clone();
        let workers = self.inner.workers.clone();
        tokio::task::spawn_blocking(move || {
            for function in &app.app.functions {
                workers.look_for_interpreter(function);
                let triggered = app.app.triggers.iter().any(|t| t.function == function.name);
                let count = function.warm_workers(triggered) as usize;
                workers.keep_warm(function, count);
            }
        });
    }

    /// How function processes are kept from eddy and from each other.
    pub fn sandbox(&self) -> &runtime::sandbox::Sandbox {
        &self.inner.config.sandbox
    }

    /// Gives each function's processes these variables from now on (its own credentials), by
    /// function name.
    pub fn set_function_env(&self, env: HashMap<String, Vec<(String, String)>>) {
        self.inner.workers.set_function_env(env);
        self.keep_warm();
    }

    /// Registers the Rust handler of an `in_process` function.
    pub fn register(&self, function: FunctionName, handler: Arc<dyn Handler>) {
        self.inner
            .handlers
            .write()
            .expect("handler lock")
            .insert(function, handler);
        self.inner.wake.notify_one();
    }

    /// Runs a function now and returns its result or its error; no retries (`RequestResponse`).
    pub async fn invoke(
        &self,
        function: &FunctionName,
        payload: Value,
        caller: Lineage,
    ) -> Result<Invocation, ExecError> {
        let inner = &self.inner;
        let spec = inner.function(function)?;
        let name = function.to_string();
        let until = inner.slot_until(&name);
        if inner
            .store
            .take_slots(&name, spec.concurrency, 1, until)
            .await?
            == 0
        {
            *inner
                .throttles
                .lock()
                .expect("throttle lock")
                .entry(function.to_string())
                .or_default() += 1;
            return Err(ExecError::Throttled {
                function: function.to_string(),
                concurrency: spec.concurrency,
            });
        };
        let request_id = uuid::Uuid::new_v4().to_string();
        let lineage = Lineage {
            cause_event: caller.cause_event,
            cause_invocation: Some(request_id.clone()),
            hops: caller.hops + 1,
        };
        let attempt = inner
            .run(&spec, &payload.into(), request_id.clone(), None, lineage)
            .await;
        inner.store.give_back(&name, 1).await?;
        inner.wake.notify_one();
        let (outcome, record) = attempt.map_err(|e| ExecError::Unrunnable {
            function: function.to_string(),
            reason: e.0,
        })?;
        let duration = Duration::from_micros(record.duration_us);
        let record = Settle {
            delivery: None,
            settlement: Settlement::Done,
            record: Some(record),
            destination: None,
            batch: None,
            now_ms: inner.clock.now_ms(),
        };
        inner.record(Arc::new(vec![record.into()].into())).await?;
        Ok(Invocation {
            request_id,
            outcome,
            duration,
        })
    }

    /// Queues an invocation durably (`Event`): it is delivered with retries like any trigger.
    /// Returns the queued event's place in the journal.
    pub async fn invoke_async(
        &self,
        function: &FunctionName,
        payload: Value,
        lineage: Lineage,
    ) -> Result<Appended, ExecError> {
        self.inner.function(function)?;
        self.inner.bus.check_room()?;
        let event = NewEvent {
            source: Source::Function(function.clone()),
            kind: EventKind::Invoke,
            key: uuid::Uuid::new_v4().to_string(),
            payload,
            lineage,
        };
        self.inner
            .bus
            .write(event, |tx, event| {
                Box::pin(async move { tx.append(event.clone()).await.map_err(ExecError::from) })
            })
            .await
    }

    /// Which triggers the event with this id (or sequence number) fires, and why each did or
    /// did not.
    pub async fn explain(
        &self,
        event_id: &str,
    ) -> Result<Option<(Event, Vec<Explanation>)>, ExecError> {
        // A sequence number (what `eddy events tail` shows) names an event too; event ids are
        // never all digits.
        let found = match event_id.parse::<u64>() {
            Ok(seq) => self.inner.bus.event_at(seq).await?,
            Err(_) => self.inner.bus.event(event_id).await?,
        };
        let Some(event) = found else {
            return Ok(None);
        };
        let explanations = self.inner.compiled().index.explain(&event);
        Ok(Some((event, explanations)))
    }

    /// Every delivery of the event `event_seq`, originals and replays.
    pub async fn deliveries_of(&self, event_seq: u64) -> Result<Vec<DeliveryState>, ExecError> {
        self.inner
            .store
            .deliveries_of(&mut self.inner.bus.readers(), event_seq)
            .await
    }

    /// The last run of each schedule a node has kept, by name (see `timetable`).
    pub async fn schedule_runs(&self) -> Result<HashMap<String, i64>, ExecError> {
        self.inner
            .store
            .schedule_runs(&mut self.inner.bus.readers())
            .await
    }

    pub async fn dead_letters(
        &self,
        function: Option<&FunctionName>,
    ) -> Result<Vec<DeadLetter>, ExecError> {
        let function = function.map(FunctionName::as_str);
        self.inner
            .store
            .dead_letters(&mut self.inner.bus.readers(), function)
            .await
    }

    /// Delivers dead letters again from their first attempt: one by id, or every one of a
    /// function. Returns how many.
    async fn redrive_where(
        &self,
        delivery: Option<i64>,
        function: Option<String>,
    ) -> Result<u64, ExecError> {
        let input = (
            self.inner.store.clone(),
            delivery,
            function,
            self.inner.clock.now_ms(),
        );
        let n = self
            .inner
            .bus
            .write(input, |tx, (store, delivery, function, now)| {
                Box::pin(store.redrive(tx, *delivery, function.as_deref(), *now))
            })
            .await?;
        self.inner.wake.notify_one();
        Ok(n)
    }

    /// Delivers one dead letter again, from its first attempt. Returns whether there was one.
    pub async fn redrive(&self, delivery_id: i64) -> Result<bool, ExecError> {
        Ok(self.redrive_where(Some(delivery_id), None).await? > 0)
    }

    /// Delivers every dead letter of a function again. Returns how many.
    pub async fn redrive_function(&self, function: &FunctionName) -> Result<u64, ExecError> {
        self.redrive_where(None, Some(function.to_string())).await
    }

    pub async fn counts(&self) -> Result<DeliveryCounts, ExecError> {
        self.inner.store.counts(&mut self.inner.bus.readers()).await
    }

    /// Recorded attempts, totalled per function and outcome.
    pub async fn invocation_totals(&self) -> Result<Vec<InvocationTotals>, ExecError> {
        self.inner
            .store
            .invocation_totals(&mut self.inner.bus.readers())
            .await
    }

    /// Changes whenever invocations were recorded: wait on it for new records.
    pub fn recorded(&self) -> watch::Receiver<u64> {
        self.inner.recorded.subscribe()
    }

    /// Synchronous invocations refused because the function's concurrency was in use, by
    /// function, since this executor started (a refusal changes nothing durable).
    pub fn throttles(&self) -> HashMap<String, u64> {
        self.inner.throttles.lock().expect("throttle lock").clone()
    }

    /// How long the oldest waiting delivery's event has waited, if any waits.
    pub async fn oldest_pending_age(&self) -> Result<Option<Duration>, ExecError> {
        let oldest = self
            .inner
            .store
            .oldest_pending_ms(&mut self.inner.bus.readers())
            .await?;
        Ok(oldest.map(|t| Duration::from_millis((self.inner.clock.now_ms() - t).max(0) as u64)))
    }

    /// Recorded attempts of a function, or for one event, in the order they were recorded.
    pub async fn invocations(
        &self,
        function: Option<&FunctionName>,
        event_seq: Option<u64>,
    ) -> Result<Vec<InvocationRecord>, ExecError> {
        let page = self
            .invocation_page(function, event_seq, 0, u32::MAX)
            .await?;
        Ok(page.records)
    }

    /// The states of the deliveries of each of these events (one read for them all); an event
    /// without deliveries is absent.
    pub async fn delivery_states_of(
        &self,
        event_seqs: &[u64],
    ) -> Result<HashMap<u64, Vec<String>>, ExecError> {
        let mut db = self.inner.bus.readers();
        let mut states: HashMap<u64, Vec<String>> = HashMap::new();
        for (seq, state) in self
            .inner
            .store
            .delivery_states(&mut db, event_seqs)
            .await?
        {
            states.entry(seq).or_default().push(state);
        }
        Ok(states)
    }

    /// A function's latest `limit` recorded attempts, newest first.
    pub async fn latest_invocations(
        &self,
        function: &FunctionName,
        limit: u32,
    ) -> Result<Vec<InvocationRecord>, ExecError> {
        let mut db = self.inner.bus.readers();
        self.inner
            .store
            .latest_invocations(&mut db, function.as_str(), limit)
            .await
    }

    /// Recorded attempts, totalled per day and function.
    pub async fn invocation_days(&self) -> Result<Vec<DayTotals>, ExecError> {
        let mut db = self.inner.bus.readers();
        self.inner.store.invocation_days(&mut db).await
    }

    /// A function's attempts since `since_ms`, counted per minute.
    pub async fn invocations_per_minute(
        &self,
        function: &FunctionName,
        since_ms: i64,
    ) -> Result<Vec<MinuteCount>, ExecError> {
        let mut db = self.inner.bus.readers();
        self.inner
            .store
            .invocations_per_minute(&mut db, function.as_str(), since_ms)
            .await
    }

    /// At most `limit` recorded attempts after position `after` (0 for the first): what
    /// `eddy logs --follow` reads page after page.
    pub async fn invocation_page(
        &self,
        function: Option<&FunctionName>,
        event_seq: Option<u64>,
        after: i64,
        limit: u32,
    ) -> Result<InvocationPage, ExecError> {
        let function = function.map(FunctionName::as_str);
        self.inner
            .store
            .invocations(
                &mut self.inner.bus.readers(),
                function,
                event_seq,
                after,
                limit,
            )
            .await
    }

    /// The journal position the dispatcher has turned into deliveries.
    pub async fn dispatched_through(&self) -> Result<u64, ExecError> {
        Ok(self.inner.bus.cursor(CURSOR).await?.unwrap_or(0))
    }

    /// Stops taking work, lets the attempts already running finish (each within its
    /// function's timeout) and records their outcomes. Whatever is still leased after that (a
    /// crash, not a shutdown) returns to ready at the next start.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner.stop.send_replace(true);
        let mut tasks = std::mem::take(&mut *self.tasks.lock().expect("task lock"));
        // The settler was started last; it stops once the attempts are done.
        let settler = tasks.pop();
        for task in tasks {
            let _ = task.await;
        }
        inner.attempts.close();
        inner.attempts.wait().await;
        inner.drained.send_replace(true);
        if let Some(settler) = settler {
            let _ = settler.await;
        }
        // The dispatcher's cursor past events that matched nothing is saved now, not left to
        // a moment the process may not wait for.
        if let Err(error) = inner.bus.save_noted_cursors().await {
            tracing::warn!(%error, "the dispatcher's last position could not be saved; a restart reads its last events again");
        }
    }
}

impl Inner {
    /// Marks the waiting deliveries of the app's batched triggers as batched, and the others
    /// as not: a trigger that became batched (or stopped being) takes its backlog along.
    async fn mark_batched(&self) -> Result<(), ExecError> {
        let compiled = self.compiled();
        let batched: Vec<String> = compiled
            .app
            .triggers
            .iter()
            .filter(|t| t.batch.is_some())
            .map(|t| t.name.clone())
            .collect();
        let changed = self
            .bus
            .write((self.store.clone(), batched), |tx, (store, batched)| {
                Box::pin(async move {
                    let names: Vec<&str> = batched.iter().map(String::as_str).collect();
                    store.mark_batched(tx, &names).await
                })
            })
            .await?;
        if changed > 0 {
            tracing::info!(
                changed,
                "waiting deliveries follow their triggers' batching"
            );
        }
        Ok(())
    }

    fn compiled(&self) -> Arc<Compiled> {
        self.app.read().expect("app lock").clone()
    }

    /// Until when a slot of `function` taken now is held should this node die: the function's
    /// timeout and the lease grace, in real time (a slot outlives any clock a test injects).
    pub(crate) fn slot_until(&self, function: &str) -> i64 {
        let timeout = self
            .compiled()
            .app
            .functions
            .iter()
            .find(|f| f.name.as_str() == function)
            .map_or(0, |f| f.timeout.as_millis() as i64);
        eddy_bus::now_ms() + timeout + self.config.lease_grace.as_millis() as i64
    }

    /// Until when a lease of `function`'s taken at `now_ms` holds: its timeout and the lease
    /// grace.
    fn lease_until(&self, function: &FunctionSpec, now_ms: i64) -> i64 {
        now_ms + function.timeout.as_millis() as i64 + self.config.lease_grace.as_millis() as i64
    }

    fn function(&self, name: &FunctionName) -> Result<FunctionSpec, ExecError> {
        self.compiled()
            .app
            .function(name)
            .cloned()
            .ok_or_else(|| ExecError::NoSuchFunction(name.to_string()))
    }
}

/// Returns when the lead changes hands; never, where it cannot (SQLite's one node leads for
/// good, and its sender is gone).
pub(crate) async fn lead_changes(leading: &mut watch::Receiver<bool>) {
    if leading.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}
