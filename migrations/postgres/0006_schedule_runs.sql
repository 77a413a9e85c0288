-- The last run of each schedule: a run is journaled in the transaction that moves this on, so
-- each runs once across restarts and nodes.
CREATE TABLE _eddy_schedule_runs (
    name   TEXT   PRIMARY KEY,
    run_ms BIGINT NOT NULL
);
