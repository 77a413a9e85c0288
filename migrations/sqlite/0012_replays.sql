-- Replays: a trigger's journal events delivered again, each replay's deliveries apart from the
-- original ones (and from other replays'): a delivery is one per event, trigger and replay
-- (0 for the original). A replay's deliveries are made a page at a time, as its function has
-- room: `next_seq` is how far it got. SQLite cannot change a table's UNIQUE constraint: the
-- table is rebuilt.
CREATE TABLE _eddy_replays (
    id          INTEGER PRIMARY KEY,
    trigger     TEXT    NOT NULL,
    from_seq    INTEGER NOT NULL,
    to_seq      INTEGER NOT NULL,
    next_seq    INTEGER NOT NULL,   -- the next journal event to look at; past to_seq once finished
    events      INTEGER NOT NULL,   -- deliveries made so far
    created_ms  INTEGER NOT NULL,
    finished_ms INTEGER,
    backfill    TEXT                -- a backfill's mark: only the events it journaled, so marked
) STRICT;

CREATE TABLE _eddy_deliveries_rebuilt (
    id              INTEGER PRIMARY KEY,
    event_seq       INTEGER NOT NULL,
    event_time_ms   INTEGER NOT NULL,
    trigger         TEXT    NOT NULL,
    function        TEXT    NOT NULL,
    order_key       TEXT,
    state           TEXT    NOT NULL CHECK (state IN ('ready', 'leased', 'done', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    lease_until_ms  INTEGER,
    last_error      TEXT,
    dead_reason     TEXT,
    updated_ms      INTEGER NOT NULL,
    lease_node      TEXT,
    replay          INTEGER NOT NULL DEFAULT 0,  -- the replay that made it; 0 for the original
    UNIQUE (event_seq, trigger, replay)
) STRICT;
INSERT INTO _eddy_deliveries_rebuilt
    (id, event_seq, event_time_ms, trigger, function, order_key, state, attempts, next_attempt_ms,
     lease_until_ms, last_error, dead_reason, updated_ms, lease_node)
SELECT id, event_seq, event_time_ms, trigger, function, order_key, state, attempts, next_attempt_ms,
       lease_until_ms, last_error, dead_reason, updated_ms, lease_node
FROM _eddy_deliveries;
DROP TABLE _eddy_deliveries;
ALTER TABLE _eddy_deliveries_rebuilt RENAME TO _eddy_deliveries;
CREATE INDEX _eddy_deliveries_due ON _eddy_deliveries (state, next_attempt_ms);
CREATE INDEX _eddy_deliveries_by_key ON _eddy_deliveries (order_key, event_seq) WHERE order_key IS NOT NULL;
CREATE INDEX _eddy_deliveries_by_function ON _eddy_deliveries (function, state);
-- A replay's deliveries are made as its backlog drains: its backlog is counted often.
CREATE INDEX _eddy_deliveries_by_replay ON _eddy_deliveries (replay, state) WHERE replay <> 0;
