-- What each invocation is billed for, as Lambda bills it: milliseconds (rounded up) times the
-- function's memory; and what it used.
ALTER TABLE _eddy_invocations ADD COLUMN memory_mb INTEGER NOT NULL DEFAULT 128;
ALTER TABLE _eddy_invocations ADD COLUMN billed_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE _eddy_invocations ADD COLUMN max_memory_mb INTEGER;
ALTER TABLE _eddy_invocations ADD COLUMN init_us INTEGER;
