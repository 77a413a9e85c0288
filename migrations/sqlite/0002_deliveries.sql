-- Delivery of events to functions: one row per (event, trigger) match, with its retry state.
-- A delivery is `ready` (waiting for its next attempt time), `leased` (a worker runs it until
-- `lease_until_ms`), `done`, or `dead` (dead-lettered with a machine-readable reason).
CREATE TABLE _eddy_deliveries (
    id              INTEGER PRIMARY KEY,
    event_seq       INTEGER NOT NULL,
    event_time_ms   INTEGER NOT NULL,
    trigger         TEXT    NOT NULL,           -- trigger name, or `$invoke` for asynchronous invocations
    function        TEXT    NOT NULL,
    order_key       TEXT,                       -- set when the trigger orders per key: source and key
    state           TEXT    NOT NULL CHECK (state IN ('ready', 'leased', 'done', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    lease_until_ms  INTEGER,
    last_error      TEXT,
    dead_reason     TEXT,                       -- RetriesExhausted | EventAgeExceeded | RecursionLimit | FunctionMissing
    updated_ms      INTEGER NOT NULL,
    UNIQUE (event_seq, trigger)
) STRICT;
CREATE INDEX _eddy_deliveries_due ON _eddy_deliveries (state, next_attempt_ms);
CREATE INDEX _eddy_deliveries_by_key ON _eddy_deliveries (order_key, event_seq) WHERE order_key IS NOT NULL;
CREATE INDEX _eddy_deliveries_by_function ON _eddy_deliveries (function, state);

-- Every attempt to run a function: what ran, for which event, how it ended, what it printed.
CREATE TABLE _eddy_invocations (
    request_id  TEXT    PRIMARY KEY,
    function    TEXT    NOT NULL,
    delivery_id INTEGER,                        -- NULL for synchronous invocations
    event_seq   INTEGER,
    attempt     INTEGER NOT NULL,
    start_ms    INTEGER NOT NULL,
    duration_us INTEGER NOT NULL,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('success', 'error', 'timeout')),
    error_type  TEXT,
    error       TEXT,
    output      TEXT    NOT NULL DEFAULT '',    -- captured logs, bounded
    truncated   INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX _eddy_invocations_by_function ON _eddy_invocations (function, start_ms);
CREATE INDEX _eddy_invocations_by_event ON _eddy_invocations (event_seq);
