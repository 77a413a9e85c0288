-- Which node holds a lease: a starting node takes back only its own leases (and expired ones),
-- never those of another node sharing the database. (No index of its own: the few statements
-- that look for a node's leases find them by state, through `_eddy_deliveries_due`, and an
-- index that changes with every lease would cost every delivery.)
ALTER TABLE _eddy_deliveries ADD COLUMN lease_node TEXT;
