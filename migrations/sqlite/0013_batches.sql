-- Batches: a batched trigger's deliveries are leased many to an invocation. `lease_batch` is the
-- invocation holding a leased delivery (its request id), so a trigger's running batches can be
-- counted; `batch_part` keeps the half of a bisected batch a delivery went to, so each half is
-- tried again apart. Which deliveries a batch invocation carried without finishing them is kept
-- (`_eddy_batch_records`; a record's last batch is its `lease_batch`), so `events show` can say
-- which batches an event went in.
ALTER TABLE _eddy_deliveries ADD COLUMN lease_batch TEXT;
ALTER TABLE _eddy_deliveries ADD COLUMN batch_part TEXT;
-- `batched`: the delivery is a batched trigger's (as the app in force says; a node re-marks the
-- waiting ones when its app changes). The due index leads with it after the state, so the
-- deliveries leased one by one are read in due order without walking a batched trigger's
-- backlog: a lease round reads what it leases.
ALTER TABLE _eddy_deliveries ADD COLUMN batched INTEGER NOT NULL DEFAULT 0;
DROP INDEX _eddy_deliveries_due;
CREATE INDEX _eddy_deliveries_due ON _eddy_deliveries (state, batched, next_attempt_ms);
-- Deliveries by function and state served no query (dead letters are read by state, with the
-- function as a filter) while every delivery written or moved paid for it.
DROP INDEX _eddy_deliveries_by_function;
-- A batched trigger's records, in event order: what its batches are packed from.
CREATE INDEX _eddy_deliveries_batched ON _eddy_deliveries (trigger, state, event_seq) WHERE batched = 1;
-- The journal event that carried a delivery's destination record, when its settlement wrote one
-- (`events show` names it).
ALTER TABLE _eddy_deliveries ADD COLUMN destination_seq INTEGER;
ALTER TABLE _eddy_invocations ADD COLUMN batch_size INTEGER;
CREATE TABLE _eddy_batch_records (
    delivery_id INTEGER NOT NULL,
    request_id  TEXT    NOT NULL,
    PRIMARY KEY (delivery_id, request_id)
) STRICT;  -- with a rowid, as every platform table: `eddy migrate` pages by it
