-- The standard headers an object was stored with and is served with (Cache-Control,
-- Content-Disposition, Content-Encoding, Content-Language, Expires): a JSON object by
-- lowercase header name. A multipart upload keeps them until it completes.
ALTER TABLE _eddy_objects ADD COLUMN headers TEXT NOT NULL DEFAULT '{}';
ALTER TABLE _eddy_uploads ADD COLUMN headers TEXT NOT NULL DEFAULT '{}';
