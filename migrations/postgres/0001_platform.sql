-- The platform's own schema on PostgreSQL: the same tables as on SQLite (migrations/sqlite),
-- as one first version. Every platform table starts with `_eddy_`, a prefix no user table name
-- can have. Keys and names compare as bytes (COLLATE "C"), as S3 orders keys.

-- The journal: one record per committed change, written in the change's own transaction.
-- Sequence numbers are given under the journal lock (see docs/architecture.md), so they are
-- the commit order and gap-free across every node.
CREATE TABLE _eddy_journal (
    seq              BIGINT  PRIMARY KEY,
    event_id         TEXT    NOT NULL UNIQUE,
    source_kind      TEXT    NOT NULL,
    source_name      TEXT    COLLATE "C" NOT NULL,
    kind             TEXT    NOT NULL,
    key              TEXT    COLLATE "C" NOT NULL,
    time_ms          BIGINT  NOT NULL,
    payload          TEXT    NOT NULL,
    cause_event      TEXT,
    cause_invocation TEXT,
    hops             BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX _eddy_journal_by_key ON _eddy_journal (source_kind, source_name, key, seq);

CREATE TABLE _eddy_cursors (
    name TEXT   PRIMARY KEY,
    seq  BIGINT NOT NULL
);

CREATE TABLE _eddy_buckets (
    name       TEXT   COLLATE "C" PRIMARY KEY,
    created_ms BIGINT NOT NULL
);

CREATE TABLE _eddy_objects (
    bucket           TEXT   COLLATE "C" NOT NULL REFERENCES _eddy_buckets (name),
    key              TEXT   COLLATE "C" NOT NULL,
    size             BIGINT NOT NULL,
    etag             TEXT   NOT NULL,
    sha256           TEXT   NOT NULL,
    content_type     TEXT,
    user_meta        TEXT   NOT NULL DEFAULT '{}',
    last_modified_ms BIGINT NOT NULL,
    sequencer        BIGINT NOT NULL,
    PRIMARY KEY (bucket, key)
);
CREATE INDEX _eddy_objects_by_blob ON _eddy_objects (sha256);

CREATE TABLE _eddy_uploads (
    upload_id    TEXT   PRIMARY KEY,
    bucket       TEXT   COLLATE "C" NOT NULL REFERENCES _eddy_buckets (name),
    key          TEXT   COLLATE "C" NOT NULL,
    content_type TEXT,
    user_meta    TEXT   NOT NULL DEFAULT '{}',
    created_ms   BIGINT NOT NULL
);

CREATE TABLE _eddy_upload_parts (
    upload_id        TEXT   NOT NULL REFERENCES _eddy_uploads (upload_id) ON DELETE CASCADE,
    part_number      BIGINT NOT NULL,
    size             BIGINT NOT NULL,
    etag             TEXT   NOT NULL,
    sha256           TEXT   NOT NULL,
    last_modified_ms BIGINT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);
CREATE INDEX _eddy_upload_parts_by_blob ON _eddy_upload_parts (sha256);

CREATE TABLE _eddy_bucket_cors (
    bucket TEXT COLLATE "C" PRIMARY KEY REFERENCES _eddy_buckets (name) ON DELETE CASCADE,
    rules  TEXT NOT NULL
);

CREATE TABLE _eddy_tables (
    name       TEXT   PRIMARY KEY,
    schema     TEXT   NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE _eddy_deliveries (
    id              BIGSERIAL PRIMARY KEY,
    event_seq       BIGINT NOT NULL,
    event_time_ms   BIGINT NOT NULL,
    trigger         TEXT   NOT NULL,
    function        TEXT   NOT NULL,
    order_key       TEXT   COLLATE "C",
    state           TEXT   NOT NULL CHECK (state IN ('ready', 'leased', 'done', 'dead')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL,
    lease_until_ms  BIGINT,
    lease_node      TEXT,
    last_error      TEXT,
    dead_reason     TEXT,
    updated_ms      BIGINT NOT NULL,
    UNIQUE (event_seq, trigger)
);
CREATE INDEX _eddy_deliveries_due ON _eddy_deliveries (state, next_attempt_ms);
CREATE INDEX _eddy_deliveries_by_key ON _eddy_deliveries (order_key, event_seq) WHERE order_key IS NOT NULL;
CREATE INDEX _eddy_deliveries_by_function ON _eddy_deliveries (function, state);

CREATE TABLE _eddy_invocations (
    seq           BIGSERIAL,
    request_id    TEXT   PRIMARY KEY,
    function      TEXT   NOT NULL,
    delivery_id   BIGINT,
    event_seq     BIGINT,
    attempt       BIGINT NOT NULL,
    start_ms      BIGINT NOT NULL,
    duration_us   BIGINT NOT NULL,
    outcome       TEXT   NOT NULL CHECK (outcome IN ('success', 'error', 'timeout')),
    error_type    TEXT,
    error         TEXT,
    output        TEXT   NOT NULL DEFAULT '',
    truncated     BIGINT NOT NULL DEFAULT 0,
    memory_mb     BIGINT NOT NULL DEFAULT 128,
    billed_ms     BIGINT NOT NULL DEFAULT 0,
    max_memory_mb BIGINT,
    init_us       BIGINT
);
CREATE INDEX _eddy_invocations_by_function ON _eddy_invocations (function, start_ms);
CREATE INDEX _eddy_invocations_by_event ON _eddy_invocations (event_seq);

-- Running invocations, one row each, so a function's concurrency holds across every node. A
-- slot whose holder died is free once `until_ms` passes.
CREATE TABLE _eddy_slots (
    id       BIGSERIAL PRIMARY KEY,
    function TEXT   NOT NULL,
    node     TEXT   NOT NULL,
    until_ms BIGINT NOT NULL
);
CREATE INDEX _eddy_slots_by_function ON _eddy_slots (function);

CREATE TABLE _eddy_credentials (
    access_key_id TEXT   PRIMARY KEY,
    secret        TEXT   NOT NULL,
    function      TEXT   NOT NULL,
    node          TEXT   NOT NULL,
    expires_ms    BIGINT NOT NULL
);
CREATE INDEX _eddy_credentials_expiry ON _eddy_credentials (expires_ms);

CREATE TABLE _eddy_apps (
    version          BIGINT PRIMARY KEY,
    locked           TEXT   NOT NULL,
    source           TEXT   NOT NULL CHECK (source IN ('manifests', 'deploy')),
    manifests_digest TEXT,
    node             TEXT   NOT NULL,
    applied_ms       BIGINT NOT NULL
);
