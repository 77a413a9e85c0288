-- A bucket's CORS configuration (S3's PutBucketCors): the rules, as JSON. Browsers on other
-- origins reach a bucket only through a rule here.
CREATE TABLE _eddy_bucket_cors (
    bucket TEXT PRIMARY KEY REFERENCES _eddy_buckets (name) ON DELETE CASCADE,
    rules  TEXT NOT NULL
) STRICT;
