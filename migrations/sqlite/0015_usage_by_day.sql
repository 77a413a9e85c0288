-- Usage of invocations older than the journal's retention, summed per day (UTC, as a day number
-- since the epoch), function and outcome; their records are removed once summed (unless a kept
-- delivery still explains itself by them), so the records a busy function leaves stay bounded
-- and usage stays whole.
CREATE TABLE _eddy_usage_by_day (
    day         INTEGER NOT NULL,
    function    TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    invocations INTEGER NOT NULL,
    retries     INTEGER NOT NULL,
    duration_us INTEGER NOT NULL,
    billed_ms   INTEGER NOT NULL,
    mb_ms       INTEGER NOT NULL,
    PRIMARY KEY (day, function, outcome)
) STRICT;  -- with a rowid, as every platform table: `eddy migrate` pages by it
-- Whether a batch's record is still noted for a kept delivery is asked by its request id.
CREATE INDEX _eddy_batch_records_by_request ON _eddy_batch_records (request_id);
