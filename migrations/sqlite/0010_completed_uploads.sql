-- Multipart uploads completed in the last day: S3 answers a repeated CompleteMultipartUpload
-- (a client retrying one whose answer it lost) with the object it made.
CREATE TABLE _eddy_completed_uploads (
    upload_id    TEXT    PRIMARY KEY,
    bucket       TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    etag         TEXT    NOT NULL,
    completed_ms INTEGER NOT NULL
) STRICT;
