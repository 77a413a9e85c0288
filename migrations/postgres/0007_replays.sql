-- Replays: a trigger's journal events delivered again, each replay's deliveries apart from the
-- original ones (and from other replays'): a delivery is one per event, trigger and replay
-- (0 for the original). A replay's deliveries are made a page at a time, as its function has
-- room: `next_seq` is how far it got.
CREATE TABLE _eddy_replays (
    id          BIGSERIAL PRIMARY KEY,
    trigger     TEXT   NOT NULL,
    from_seq    BIGINT NOT NULL,
    to_seq      BIGINT NOT NULL,
    next_seq    BIGINT NOT NULL,  -- the next journal event to look at; past to_seq once finished
    events      BIGINT NOT NULL,  -- deliveries made so far
    created_ms  BIGINT NOT NULL,
    finished_ms BIGINT,
    backfill    TEXT               -- a backfill's mark: only the events it journaled, so marked
);

ALTER TABLE _eddy_deliveries ADD COLUMN replay BIGINT NOT NULL DEFAULT 0;
ALTER TABLE _eddy_deliveries DROP CONSTRAINT _eddy_deliveries_event_seq_trigger_key;
ALTER TABLE _eddy_deliveries ADD CONSTRAINT _eddy_deliveries_event_trigger_replay
    UNIQUE (event_seq, trigger, replay);
-- A replay's deliveries are made as its backlog drains: its backlog is counted often.
CREATE INDEX _eddy_deliveries_by_replay ON _eddy_deliveries (replay, state) WHERE replay <> 0;
