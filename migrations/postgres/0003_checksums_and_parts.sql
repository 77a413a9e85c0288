-- The checksum each object and part is stored with (JSON: algorithm, type, value; NULL for
-- those stored before eddy kept checksums), the sizes of the parts an object was assembled
-- from (a JSON array; empty when it was not), and the checksum an upload asked for.
ALTER TABLE _eddy_objects ADD COLUMN checksum TEXT;
ALTER TABLE _eddy_objects ADD COLUMN part_sizes TEXT NOT NULL DEFAULT '[]';
ALTER TABLE _eddy_uploads ADD COLUMN checksum_algorithm TEXT;
ALTER TABLE _eddy_uploads ADD COLUMN checksum_type TEXT;
ALTER TABLE _eddy_upload_parts ADD COLUMN checksum TEXT;
