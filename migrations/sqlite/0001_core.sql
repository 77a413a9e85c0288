-- The platform's own schema. Every platform table starts with `_eddy_`, a prefix no user table
-- name can have. Tables are STRICT so SQLite itself refuses a value of the wrong type.

-- The journal: one record per committed change, written in the change's own transaction.
CREATE TABLE _eddy_journal (
    seq              INTEGER PRIMARY KEY,       -- global, gap-free, commit order
    event_id         TEXT    NOT NULL UNIQUE,   -- UUIDv7, stable across redeliveries
    source_kind      TEXT    NOT NULL,          -- bucket | table | function
    source_name      TEXT    NOT NULL,
    kind             TEXT    NOT NULL,          -- ObjectCreated:Put, INSERT, …
    key              TEXT    NOT NULL,          -- object key or canonical primary key
    time_ms          INTEGER NOT NULL,
    payload          TEXT    NOT NULL,          -- JSON: ObjectChange or RowChange
    cause_event      TEXT,                      -- lineage: the event whose handler wrote this
    cause_invocation TEXT,
    hops             INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX _eddy_journal_by_key ON _eddy_journal (source_kind, source_name, key, seq);

-- Durable named read positions in the journal (the dispatcher's, a tail's, …).
CREATE TABLE _eddy_cursors (
    name TEXT    PRIMARY KEY,
    seq  INTEGER NOT NULL
) STRICT;

CREATE TABLE _eddy_buckets (
    name       TEXT    PRIMARY KEY,
    created_ms INTEGER NOT NULL
) STRICT;

-- Object metadata. The bytes live in content-addressed blobs named by `sha256`.
CREATE TABLE _eddy_objects (
    bucket           TEXT    NOT NULL REFERENCES _eddy_buckets (name),
    key              TEXT    NOT NULL,
    size             INTEGER NOT NULL,
    etag             TEXT    NOT NULL,          -- unquoted MD5 hex, or md5-of-md5s-N
    sha256           TEXT    NOT NULL,
    content_type     TEXT,
    user_meta        TEXT    NOT NULL DEFAULT '{}',
    last_modified_ms INTEGER NOT NULL,
    sequencer        INTEGER NOT NULL,          -- the journal seq of the change that wrote it
    PRIMARY KEY (bucket, key)
) STRICT;
CREATE INDEX _eddy_objects_by_blob ON _eddy_objects (sha256);

CREATE TABLE _eddy_uploads (
    upload_id    TEXT    PRIMARY KEY,
    bucket       TEXT    NOT NULL REFERENCES _eddy_buckets (name),
    key          TEXT    NOT NULL,
    content_type TEXT,
    user_meta    TEXT    NOT NULL DEFAULT '{}',
    created_ms   INTEGER NOT NULL
) STRICT;

CREATE TABLE _eddy_upload_parts (
    upload_id        TEXT    NOT NULL REFERENCES _eddy_uploads (upload_id) ON DELETE CASCADE,
    part_number      INTEGER NOT NULL,
    size             INTEGER NOT NULL,
    etag             TEXT    NOT NULL,
    sha256           TEXT    NOT NULL,
    last_modified_ms INTEGER NOT NULL,
    PRIMARY KEY (upload_id, part_number)
) STRICT;
CREATE INDEX _eddy_upload_parts_by_blob ON _eddy_upload_parts (sha256);

-- Declared user tables: the schema as JSON. The rows live in a real table of the same name.
CREATE TABLE _eddy_tables (
    name       TEXT    PRIMARY KEY,
    schema     TEXT    NOT NULL,
    created_ms INTEGER NOT NULL
) STRICT;
