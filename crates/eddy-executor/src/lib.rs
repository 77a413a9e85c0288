//! eddy's executor: turns journal events into durable deliveries and runs them.
//!
//! - The **dispatcher** follows the journal (woken by each commit, never polling), matches each
//!   event against the triggers, and writes one delivery per match together with its durable
//!   cursor, so a restart neither skips nor repeats an event.
//! - The **scheduler** leases due deliveries — respecting each function's concurrency and,
//!   for `per_key` triggers, the commit order of each key — and runs them.
//! - Each attempt is **settled** in one transaction with its invocation record: done, retried
//!   later (backoff with jitter), or dead-lettered with a reason. Leases held by a process that
//!   died return to ready when the next one starts.
//!
//! Time comes from a [`Clock`], so tests move it instead of sleeping.

mod backoff;
pub mod clock;
mod error;
mod payload;
pub use eddy_runtimes as runtime;
mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use eddy_bus::{Bus, BusError};
use eddy_core::{Event, EventKind, FunctionName, Lineage, NewEvent, Source};
use eddy_subscriptions::{App, Explanation, FunctionSpec, MatchIndex, Ordering, RetryPolicy};
use serde_json::Value;
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::ExecError;
pub use runtime::{Context, FunctionError, Handler, Outcome};
pub use store::{
    DeadLetter, DeadReason, DeliveryCounts, InvocationPage, InvocationRecord, InvocationTotals,
};

use store::{Leased, NewDelivery, Settle, Settlement};

/// The journal cursor of the dispatcher.
const CURSOR: &str = "dispatcher";
/// The trigger name of deliveries for asynchronous invocations.
pub const INVOKE_TRIGGER: &str = "$invoke";

#[derive(Clone, Debug)]
pub struct ExecutorConfig {
    /// An event more hops than this from a write no handler made is dead-lettered.
    pub max_hops: u32,
    /// Deliveries leased per round at most.
    pub lease_batch: u32,
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
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        Self {
            max_hops: 16,
            lease_batch: 256,
            lease_grace: Duration::from_secs(30),
            safety_poll: Duration::from_secs(5),
            stream_labels: HashMap::new(),
            function_env: Vec::new(),
            worker_idle_timeout: Duration::from_secs(300),
            strict_cpu: false,
            sandbox: runtime::sandbox::Sandbox::off(),
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
    /// Per function, one permit per invocation it may run at once (its concurrency).
    slots: Mutex<HashMap<String, (u32, Arc<Semaphore>)>>,
    /// Wakes the scheduler: new deliveries, or a slot or key that came free.
    wake: Notify,
    /// Set at shutdown: the dispatcher and the scheduler stop taking work.
    stop: watch::Sender<bool>,
    /// The attempts running now; shutdown waits for them.
    attempts: TaskTracker,
    /// Set at shutdown once every attempt has finished: the settler records the last and stops.
    drained: watch::Sender<bool>,
    /// Finished attempts on their way to the settler, which records them in batches.
    settled: mpsc::Sender<Settle>,
    /// The warm workers of the Lambda runtimes.
    workers: Arc<runtime::Workers>,
    /// Synchronous invocations refused for want of a free slot, by function, since start.
    throttles: Mutex<HashMap<String, u64>>,
    /// Counts the commits that recorded invocations, so readers can wait for new ones.
    recorded: watch::Sender<u64>,
}

/// Finished attempts waiting to be recorded at most; beyond, attempts wait (push back).
const SETTLE_QUEUE: usize = 4096;

struct Compiled {
    app: App,
    index: MatchIndex,
    stream_labels: HashMap<String, String>,
}

impl Executor {
    /// Starts the dispatcher and the scheduler for `app`. Leases left by a previous process
    /// return to ready first.
    pub async fn start(
        bus: Bus,
        app: App,
        clock: Arc<dyn Clock>,
        config: ExecutorConfig,
    ) -> Result<Self, ExecError> {
        let released = store::release_all(&bus).await?;
        if released > 0 {
            tracing::info!(
                released,
                "deliveries held by a previous process are ready again"
            );
        }
        let (settled, settle_queue) = mpsc::channel(SETTLE_QUEUE);
        let workers = runtime::Workers::new(runtime::WorkerConfig {
            env: config.function_env.clone(),
            idle_timeout: config.worker_idle_timeout,
            strict_cpu: config.strict_cpu,
            sandbox: config.sandbox.clone(),
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
            slots: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            stop: watch::Sender::new(false),
            attempts: TaskTracker::new(),
            drained: watch::Sender::new(false),
            settled,
            workers,
            throttles: Mutex::new(HashMap::new()),
            recorded: watch::Sender::new(0),
        });
        let tasks = vec![
            tokio::spawn(dispatch(inner.clone())),
            tokio::spawn(schedule(inner.clone())),
            tokio::spawn(settle(inner.clone(), settle_queue)),
        ];
        Ok(Self {
            inner,
            tasks: Mutex::new(tasks),
        })
    }

    /// Replaces the app (its functions and triggers) and the tables' stream labels from now
    /// on. Deliveries already made stay; events not yet dispatched match the new triggers.
    pub fn set_app(&self, app: App, stream_labels: HashMap<String, String>) {
        *self.inner.app.write().expect("app lock") = Arc::new(Compiled {
            index: MatchIndex::new(&app),
            app,
            stream_labels,
        });
        // Workers started for the old app (or old code) are not reused.
        self.inner.workers.retire_all();
        self.inner.wake.notify_one();
    }

    /// How function processes are kept from eddy and from each other.
    pub fn sandbox(&self) -> &runtime::sandbox::Sandbox {
        &self.inner.config.sandbox
    }

    /// Gives each function's processes these variables from now on (its own credentials), by
    /// function name.
    pub fn set_function_env(&self, env: HashMap<String, Vec<(String, String)>>) {
        self.inner.workers.set_function_env(env);
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
        let Ok(permit) = inner.slots(&spec).try_acquire_owned() else {
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
            .run(&spec, &payload, request_id.clone(), None, lineage)
            .await;
        drop(permit);
        inner.wake.notify_one();
        let (outcome, record) = attempt.map_err(|e| ExecError::Unrunnable {
            function: function.to_string(),
            reason: e.0,
        })?;
        let duration = Duration::from_micros(record.duration_us);
        let record = Settle {
            delivery_id: None,
            settlement: Settlement::Done,
            record: Some(record),
            now_ms: inner.clock.now_ms(),
        };
        inner.record(vec![record]).await?;
        Ok(Invocation {
            request_id,
            outcome,
            duration,
        })
    }

    /// Queues an invocation durably (`Event`): it is delivered with retries like any trigger.
    pub async fn invoke_async(
        &self,
        function: &FunctionName,
        payload: Value,
        lineage: Lineage,
    ) -> Result<Event, ExecError> {
        self.inner.function(function)?;
        let event = NewEvent {
            source: Source::Function(function.clone()),
            kind: EventKind::Invoke,
            key: uuid::Uuid::new_v4().to_string(),
            payload,
            lineage,
        };
        self.inner
            .bus
            .write(move |tx| {
                let event = event.clone();
                Box::pin(async move { tx.append(event).await.map_err(ExecError::from) })
            })
            .await
    }

    /// Which triggers the event with this id fires, and why each did or did not.
    pub async fn explain(
        &self,
        event_id: &str,
    ) -> Result<Option<(Event, Vec<Explanation>)>, ExecError> {
        let Some(event) = self.inner.bus.event(event_id).await? else {
            return Ok(None);
        };
        let explanations = self.inner.compiled().index.explain(&event);
        Ok(Some((event, explanations)))
    }

    pub async fn dead_letters(
        &self,
        function: Option<&FunctionName>,
    ) -> Result<Vec<DeadLetter>, ExecError> {
        store::dead_letters(&self.inner.bus, function).await
    }

    /// Delivers one dead letter again, from its first attempt. Returns whether there was one.
    pub async fn redrive(&self, delivery_id: i64) -> Result<bool, ExecError> {
        let n = store::redrive(
            &self.inner.bus,
            Some(delivery_id),
            None,
            self.inner.clock.now_ms(),
        )
        .await?;
        self.inner.wake.notify_one();
        Ok(n > 0)
    }

    /// Delivers every dead letter of a function again. Returns how many.
    pub async fn redrive_function(&self, function: &FunctionName) -> Result<u64, ExecError> {
        let n = store::redrive(
            &self.inner.bus,
            None,
            Some(function.clone()),
            self.inner.clock.now_ms(),
        )
        .await?;
        self.inner.wake.notify_one();
        Ok(n)
    }

    pub async fn counts(&self) -> Result<DeliveryCounts, ExecError> {
        store::counts(&self.inner.bus).await
    }

    /// Recorded attempts, totalled per function and outcome.
    pub async fn invocation_totals(&self) -> Result<Vec<InvocationTotals>, ExecError> {
        store::invocation_totals(&self.inner.bus).await
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
        let oldest = store::oldest_pending_ms(&self.inner.bus).await?;
        Ok(oldest.map(|t| Duration::from_millis((self.inner.clock.now_ms() - t).max(0) as u64)))
    }

    /// Recorded attempts of a function, or for one event, in the order they were recorded.
    pub async fn invocations(
        &self,
        function: Option<&FunctionName>,
        event_seq: Option<u64>,
    ) -> Result<Vec<InvocationRecord>, ExecError> {
        let page = store::invocations(&self.inner.bus, function, event_seq, 0, u32::MAX).await?;
        Ok(page.records)
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
        store::invocations(&self.inner.bus, function, event_seq, after, limit).await
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
    }
}

impl Inner {
    /// Commits settlements and invocation records, and tells whoever waits for new records.
    async fn record(&self, batch: Vec<Settle>) -> Result<(), ExecError> {
        store::settle_all(&self.bus, batch).await?;
        self.recorded.send_modify(|n| *n += 1);
        Ok(())
    }

    fn compiled(&self) -> Arc<Compiled> {
        self.app.read().expect("app lock").clone()
    }

    fn function(&self, name: &FunctionName) -> Result<FunctionSpec, ExecError> {
        self.compiled()
            .app
            .function(name)
            .cloned()
            .ok_or_else(|| ExecError::NoSuchFunction(name.to_string()))
    }

    /// The concurrency permits of a function (made anew when its concurrency changes).
    fn slots(&self, function: &FunctionSpec) -> Arc<Semaphore> {
        let mut slots = self.slots.lock().expect("slots lock");
        let entry = slots.entry(function.name.to_string()).or_insert_with(|| {
            (
                function.concurrency,
                Arc::new(Semaphore::new(function.concurrency as usize)),
            )
        });
        if entry.0 != function.concurrency {
            *entry = (
                function.concurrency,
                Arc::new(Semaphore::new(function.concurrency as usize)),
            );
        }
        entry.1.clone()
    }

    /// One attempt: runs the function and builds its invocation record.
    async fn run(
        &self,
        function: &FunctionSpec,
        payload: &Value,
        request_id: String,
        event: Option<&Event>,
        lineage: Lineage,
    ) -> Result<(Outcome, InvocationRecord), runtime::Unrunnable> {
        let start_ms = self.clock.now_ms();
        let context = Context {
            request_id: request_id.clone(),
            function_name: function.name.clone(),
            memory_mb: function.memory_mb,
            deadline_ms: start_ms + function.timeout.as_millis() as i64,
            invoked_function_arn: runtime::function_arn(&function.name),
            event_id: event.map(|e| e.id),
            lineage,
        };
        let handler = self
            .handlers
            .read()
            .expect("handler lock")
            .get(&function.name)
            .cloned();
        let started = Instant::now();
        let outcome = runtime::invoke(function, handler, &self.workers, payload, context).await?;
        let (outcome_name, error_type, error) = match &outcome.result {
            Ok(_) => ("success", None, None),
            Err(e) => (
                if outcome.timed_out {
                    "timeout"
                } else {
                    "error"
                },
                Some(e.error_type.clone()),
                Some(e.message.clone()),
            ),
        };
        let record = InvocationRecord {
            request_id,
            function: function.name.to_string(),
            delivery_id: None,
            event_seq: event.map(|e| e.seq),
            attempt: 1,
            start_ms,
            duration_us: started.elapsed().as_micros() as u64,
            outcome: outcome_name.into(),
            error_type,
            error,
            output: outcome.logs.clone(),
            truncated: outcome.truncated,
            memory_mb: function.memory_mb,
            billed_ms: runtime::billed_ms(outcome.duration),
            max_memory_mb: outcome.max_memory_mb,
            init_us: outcome.init_duration.map(|d| d.as_micros() as u64),
        };
        Ok((outcome, record))
    }
}

/// Follows the journal and turns matched events into deliveries.
async fn dispatch(inner: Arc<Inner>) {
    let start = match inner.bus.cursor(CURSOR).await {
        Ok(position) => position.unwrap_or(0),
        Err(error) => {
            tracing::error!(%error, "the dispatcher cannot read its cursor; it does not start");
            return;
        }
    };
    let mut follower = inner.bus.follow(start);
    let mut stop = inner.stop.subscribe();
    loop {
        let events = tokio::select! {
            events = follower.next() => events,
            _ = stop.wait_for(|s| *s) => return,
        };
        let events = match events {
            Ok(events) => events,
            Err(BusError::WriterStopped) => return,
            Err(error) => {
                tracing::error!(%error, "the dispatcher cannot read the journal; trying again");
                inner.clock.sleep_until(inner.clock.now_ms() + 1000).await;
                continue;
            }
        };
        let deliveries = plan(&inner, &events);
        let last = events.last().map_or(0, |e| e.seq);
        // Deliveries and cursor commit together. Until they do, the batch is retried: the
        // follower has moved on, so giving up would skip these events.
        let created = loop {
            let now = inner.clock.now_ms();
            let rows = deliveries.clone();
            let written = inner
                .bus
                .write(move |tx| {
                    let rows = rows.clone();
                    Box::pin(async move {
                        let created = store::create(tx, &rows, now).await?;
                        tx.set_cursor(CURSOR, last).await?;
                        Ok::<_, ExecError>(created)
                    })
                })
                .await;
            match written {
                Ok(created) => break created,
                Err(ExecError::Bus(BusError::WriterStopped)) => return,
                Err(error) => {
                    tracing::error!(%error, "the dispatcher cannot record deliveries; trying again");
                    inner.clock.sleep_until(inner.clock.now_ms() + 1000).await;
                }
            }
        };
        // Deliveries created leased run now, with their events at hand: no lease round, no read.
        let by_seq: HashMap<u64, Arc<Event>> =
            events.into_iter().map(|e| (e.seq, Arc::new(e))).collect();
        for c in created.into_iter().filter(|c| c.leased) {
            let Some(planned) = deliveries
                .iter()
                .find(|d| d.event_seq == c.event_seq && d.trigger == c.trigger)
            else {
                continue;
            };
            let leased = Leased {
                id: c.id,
                event_seq: c.event_seq,
                event_time_ms: planned.event_time_ms,
                trigger: c.trigger,
                function: planned.function.clone(),
                attempt: 1,
            };
            inner
                .attempts
                .spawn(deliver(inner.clone(), leased, by_seq[&c.event_seq].clone()));
        }
        inner.wake.notify_one();
    }
}

/// The deliveries a batch of events makes. Unordered ones whose function has a free slot now
/// are created leased, to run at once; the rest wait for the scheduler.
fn plan(inner: &Inner, events: &[Event]) -> Vec<NewDelivery> {
    let compiled = inner.compiled();
    let now = inner.clock.now_ms();
    let grace = inner.config.lease_grace.as_millis() as i64;
    let mut room: HashMap<String, (usize, i64)> = compiled
        .app
        .functions
        .iter()
        .map(|f| {
            (
                f.name.to_string(),
                (
                    inner.slots(f).available_permits(),
                    now + f.timeout.as_millis() as i64 + grace,
                ),
            )
        })
        .collect();
    let mut deliveries = Vec::new();
    for event in events {
        let matched: Vec<(String, String, Option<String>)> = match &event.source {
            Source::Function(f) => vec![(INVOKE_TRIGGER.to_string(), f.to_string(), None)],
            _ => compiled
                .index
                .matching(event)
                .into_iter()
                .map(|t| {
                    let order_key = (t.ordering == Ordering::PerKey)
                        .then(|| format!("{}\u{1f}{}\u{1f}{}", t.name, event.source, event.key));
                    (t.name.clone(), t.function.to_string(), order_key)
                })
                .collect(),
        };
        let dead = (event.lineage.hops > inner.config.max_hops).then(|| {
            (
                store::DeadReason::RecursionLimit,
                format!(
                    "the event is {} handler hops from a client's write; at most {} are delivered",
                    event.lineage.hops, inner.config.max_hops
                ),
            )
        });
        for (trigger, function, order_key) in matched {
            let lease_until = match room.get_mut(&function) {
                Some((free, until)) if *free > 0 && order_key.is_none() && dead.is_none() => {
                    *free -= 1;
                    Some(*until)
                }
                _ => None,
            };
            deliveries.push(NewDelivery {
                event_seq: event.seq,
                event_time_ms: event.time_ms,
                trigger,
                function,
                order_key,
                dead: dead.clone(),
                lease_until,
            });
        }
    }
    deliveries
}

/// Leases due deliveries and runs them, waiting between rounds for a wake-up or the next due
/// time.
async fn schedule(inner: Arc<Inner>) {
    let mut stop = inner.stop.subscribe();
    let mut last_expiry = i64::MIN;
    loop {
        if *stop.borrow() {
            return;
        }
        let now = inner.clock.now_ms();
        let safety = inner.config.safety_poll.as_millis() as i64;
        if now.saturating_sub(last_expiry) >= safety {
            if let Err(error) = store::expire_leases(&inner.bus, now).await {
                tracing::error!(%error, "cannot expire leases");
            }
            last_expiry = now;
        }
        let leased = lease_round(&inner, now).await;
        let busy = !leased.is_empty();
        if busy {
            // One read for the round's events rather than one per delivery.
            let seqs: Vec<u64> = leased.iter().map(|d| d.event_seq).collect();
            let events: HashMap<u64, Arc<Event>> = match inner.bus.events_at(&seqs).await {
                Ok(events) => events.into_iter().map(|e| (e.seq, Arc::new(e))).collect(),
                Err(error) => {
                    // The leases expire and the deliveries are tried again.
                    tracing::error!(%error, "cannot read the events of leased deliveries");
                    HashMap::new()
                }
            };
            for delivery in leased {
                if let Some(event) = events.get(&delivery.event_seq) {
                    inner
                        .attempts
                        .spawn(deliver(inner.clone(), delivery, event.clone()));
                }
            }
        }
        if busy {
            continue;
        }
        let next_due = store::next_due(&inner.bus).await.ok().flatten();
        // Work that is due but could not be leased waits for a slot or a key to come free,
        // which wakes the scheduler; the safety poll covers anything missed.
        let wake_at = match next_due {
            Some(due) if due > now => due.min(now + safety),
            _ => now + safety,
        };
        tokio::select! {
            _ = inner.wake.notified() => {}
            _ = inner.clock.sleep_until(wake_at) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

async fn lease_round(inner: &Arc<Inner>, now: i64) -> Vec<Leased> {
    let compiled = inner.compiled();
    // Free slots now; a synchronous invocation may take one meanwhile, and the delivery then
    // waits for the next free slot: the cap on running invocations holds either way.
    let room: HashMap<String, u32> = compiled
        .app
        .functions
        .iter()
        .map(|f| {
            (
                f.name.to_string(),
                inner.slots(f).available_permits() as u32,
            )
        })
        .collect();
    let grace = inner.config.lease_grace.as_millis() as i64;
    let timeouts: HashMap<String, i64> = compiled
        .app
        .functions
        .iter()
        .map(|f| (f.name.to_string(), f.timeout.as_millis() as i64))
        .collect();
    // A delivery for a function the app no longer has is leased (room 1) and dead-lettered.
    let leased = store::lease(
        &inner.bus,
        now,
        inner.config.lease_batch,
        move |f| room.get(f).copied().unwrap_or(1),
        move |f| now + timeouts.get(f).copied().unwrap_or(0) + grace,
    )
    .await;
    leased.unwrap_or_else(|error| {
        tracing::error!(%error, "cannot lease deliveries");
        Vec::new()
    })
}

/// Runs one leased delivery, within its function's concurrency, and hands the outcome to the
/// settler.
async fn deliver(inner: Arc<Inner>, delivery: Leased, event: Arc<Event>) {
    let function = inner
        .compiled()
        .app
        .functions
        .iter()
        .find(|f| f.name.as_str() == delivery.function)
        .cloned();
    let permit = match &function {
        Some(f) => inner.slots(f).acquire_owned().await.ok(),
        None => None,
    };
    let (settlement, record) = attempt(&inner, &delivery, &event, function.as_ref()).await;
    drop(permit);
    let settle = Settle {
        delivery_id: Some(delivery.id),
        settlement,
        record,
        now_ms: inner.clock.now_ms(),
    };
    // Only fails once the settler has stopped; the lease then expires and it runs again.
    let _ = inner.settled.send(settle).await;
}

/// One attempt at a delivery, and what should become of it.
async fn attempt(
    inner: &Inner,
    d: &Leased,
    event: &Event,
    function: Option<&FunctionSpec>,
) -> (Settlement, Option<InvocationRecord>) {
    let now = inner.clock.now_ms();
    let compiled = inner.compiled();
    let trigger = compiled.app.trigger(&d.trigger);
    let policy = trigger.map(|t| t.retry).unwrap_or_default();
    let dead = |reason, error: String| (Settlement::Dead { reason, error }, None);
    let Some(function) = function else {
        return dead(
            DeadReason::FunctionMissing,
            format!("function `{}` is not declared", d.function),
        );
    };
    if too_old(&policy, d.event_time_ms, now) {
        return dead(
            DeadReason::EventAgeExceeded,
            format!(
                "the event is older than {:?}, the trigger's max_event_age",
                policy.max_event_age
            ),
        );
    }
    let label = match &event.source {
        Source::Table(t) => compiled.stream_labels.get(t.as_str()).map(String::as_str),
        _ => None,
    };
    let payload = match payload::build(event, trigger, &d.trigger, label) {
        Ok(payload) => payload,
        Err(e) => return dead(DeadReason::RetriesExhausted, e.to_string()),
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let lineage = Lineage::caused_by(event, request_id.clone());
    let (outcome, mut record) = match inner
        .run(function, &payload, request_id, Some(event), lineage)
        .await
    {
        Ok(ran) => ran,
        Err(unrunnable) => return dead(DeadReason::FunctionMissing, unrunnable.0),
    };
    record.delivery_id = Some(d.id);
    record.attempt = d.attempt;
    let settlement = match outcome.result {
        Ok(_) => Settlement::Done,
        Err(error) => next_step(&policy, d, error, inner.clock.now_ms()),
    };
    (settlement, Some(record))
}

/// Records finished attempts, as many at a time as have finished, in one transaction each
/// round; then wakes the scheduler (a key may be free now).
async fn settle(inner: Arc<Inner>, mut queue: mpsc::Receiver<Settle>) {
    let mut stop = inner.drained.subscribe();
    let mut batch = Vec::new();
    loop {
        let stopping = tokio::select! {
            n = queue.recv_many(&mut batch, 1024) => if n == 0 { return } else { false },
            _ = stop.wait_for(|s| *s) => true,
        };
        if stopping {
            // Every attempt has finished and queued its outcome: record the last of them.
            while let Ok(s) = queue.try_recv() {
                batch.push(s);
            }
            if !batch.is_empty() {
                let _ = inner.record(batch).await;
            }
            return;
        }
        loop {
            match inner.record(batch.clone()).await {
                Ok(()) => break,
                Err(ExecError::Bus(BusError::WriterStopped)) => return,
                Err(error) => {
                    tracing::error!(%error, "cannot record finished attempts; trying again");
                    inner.clock.sleep_until(inner.clock.now_ms() + 1000).await;
                }
            }
        }
        batch.clear();
        inner.wake.notify_one();
    }
}

fn too_old(policy: &RetryPolicy, event_time_ms: i64, at_ms: i64) -> bool {
    at_ms - event_time_ms > policy.max_event_age.as_millis() as i64
}

/// After a failed attempt: try again later, or dead-letter.
fn next_step(policy: &RetryPolicy, d: &Leased, error: FunctionError, now: i64) -> Settlement {
    let retry = error.retry;
    let error = format!("{}: {}", error.error_type, error.message);
    if retry == runtime::Retry::Never {
        return Settlement::Dead {
            reason: DeadReason::Refused,
            error,
        };
    }
    if d.attempt >= policy.max_attempts {
        return Settlement::Dead {
            reason: DeadReason::RetriesExhausted,
            error,
        };
    }
    let mut delay = backoff::delay(policy, d.attempt, backoff::random_unit());
    if let runtime::Retry::NotBefore(asked) = retry {
        delay = delay.max(asked);
    }
    let at_ms = now + delay.as_millis() as i64;
    if too_old(policy, d.event_time_ms, at_ms) {
        return Settlement::Dead {
            reason: DeadReason::EventAgeExceeded,
            error,
        };
    }
    Settlement::Retry { at_ms, error }
}
