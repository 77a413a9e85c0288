-- Which node holds a lease: a starting node takes back only its own leases (and expired ones),
-- never those of another node sharing the database.
ALTER TABLE _eddy_deliveries ADD COLUMN lease_node TEXT;
CREATE INDEX _eddy_deliveries_leased ON _eddy_deliveries (state, lease_node);
