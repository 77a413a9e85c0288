-- What a successful attempt returned (the first 16 KiB of its JSON), so an attempt can be
-- explained by what it answered as well as by its log.
ALTER TABLE _eddy_invocations ADD COLUMN response TEXT;
