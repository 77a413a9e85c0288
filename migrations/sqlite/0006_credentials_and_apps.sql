-- Function credentials, kept where every node reads them: any node accepts the credentials any
-- node issued (for as long as they live and their function is declared).
CREATE TABLE _eddy_credentials (
    access_key_id TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    function TEXT NOT NULL,
    node TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE INDEX _eddy_credentials_expiry ON _eddy_credentials (expires_ms);

-- The apps put in service, newest last (a bounded history): what every node runs, and what a
-- node runs again after a restart. `locked` is the locked app's JSON; `manifests_digest` is set
-- when the app came from the manifest files a node was started with.
CREATE TABLE _eddy_apps (
    version INTEGER PRIMARY KEY,
    locked TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('manifests', 'deploy')),
    manifests_digest TEXT,
    node TEXT NOT NULL,
    applied_ms INTEGER NOT NULL
);
