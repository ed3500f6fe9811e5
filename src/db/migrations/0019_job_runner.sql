-- The process that runs a bulk association job (`pid:start`, the start time in clock ticks
-- since boot, so a reused pid is not taken for the runner). A job whose runner is gone
-- while the server runs (a CLI import killed) is marked interrupted by the server's
-- housekeeping and when jobs are read, instead of staying `Processing` until a restart.
-- NULL for jobs created before this migration: only a restart marks those.
ALTER TABLE import_jobs ADD COLUMN runner TEXT;
