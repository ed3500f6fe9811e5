-- 0014: when a device last fetched its configuration, to the millisecond. Apply-now
-- confirms a change only by a fetch after its send; `last_sync_at` (seconds) cannot tell
-- a fetch just before the send from one just after it within the same second, and a
-- phone that never heard the send was reported as having applied it.
ALTER TABLE device_activity ADD COLUMN last_sync_ms INTEGER;
UPDATE device_activity SET last_sync_ms = last_sync_at * 1000 WHERE last_sync_at IS NOT NULL;
