-- Batches: a batched trigger's deliveries are leased many to an invocation. `lease_batch` is the
-- invocation holding a leased delivery (its request id), so a trigger's running batches can be
-- counted; `batch_part` keeps the half of a bisected batch a delivery went to, so each half is
-- tried again apart. Which deliveries each batch invocation carried is kept per attempt, so
-- `events show` can say which batches an event went in.
ALTER TABLE _eddy_deliveries ADD COLUMN lease_batch TEXT;
ALTER TABLE _eddy_deliveries ADD COLUMN batch_part TEXT;
CREATE INDEX _eddy_deliveries_by_trigger ON _eddy_deliveries (trigger, state, event_seq);
ALTER TABLE _eddy_invocations ADD COLUMN batch_size BIGINT;
CREATE TABLE _eddy_batch_records (
    delivery_id BIGINT NOT NULL,
    request_id  TEXT   NOT NULL,
    PRIMARY KEY (delivery_id, request_id)
);
