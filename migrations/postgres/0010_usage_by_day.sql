-- Usage of invocations older than the journal's retention, summed per day (UTC, as a day number
-- since the epoch), function and outcome; their records are removed once summed (unless a kept
-- delivery still explains itself by them), so the records a busy function leaves stay bounded
-- and usage stays whole.
CREATE TABLE _eddy_usage_by_day (
    day         BIGINT NOT NULL,
    function    TEXT   NOT NULL,
    outcome     TEXT   NOT NULL,
    invocations BIGINT NOT NULL,
    retries     BIGINT NOT NULL,
    duration_us BIGINT NOT NULL,
    billed_ms   BIGINT NOT NULL,
    mb_ms       BIGINT NOT NULL,
    PRIMARY KEY (day, function, outcome)
);
-- Whether a batch's record is still noted for a kept delivery is asked by its request id.
CREATE INDEX _eddy_batch_records_by_request ON _eddy_batch_records (request_id);
