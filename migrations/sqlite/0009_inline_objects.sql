-- The bytes of small objects, kept with their metadata (committed in the same transaction, so
-- one group commit makes many small uploads durable); NULL when the bytes are in a blob.
ALTER TABLE _eddy_objects ADD COLUMN data BLOB;
