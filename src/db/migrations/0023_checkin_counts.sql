-- Check-ins per hour and per day, kept as they happen instead of counted from the access log
-- on every view: the dashboard and the device list read 31 rows instead of every request of
-- the last seven days (hundreds of thousands at 100,000 phones).
--
-- A device counts once per bucket: `device_activity` remembers the hour and the day of the
-- device's last served request (`ok_hour`, `ok_day`: a 2xx answer) and of its last refused
-- sign-in (`bad_hour`: credentials refused). When the recorder moves one of them forward,
-- the triggers below add the device to that bucket of its account. Buckets start on UTC
-- hours and days (Unix seconds). `firmware_since` is when the device first reported the
-- firmware it runs now (the firmware adoption chart).
ALTER TABLE device_activity ADD COLUMN ok_hour INTEGER;
ALTER TABLE device_activity ADD COLUMN ok_day INTEGER;
ALTER TABLE device_activity ADD COLUMN bad_hour INTEGER;
ALTER TABLE device_activity ADD COLUMN firmware_since INTEGER;

CREATE TABLE checkin_counts (
    account_id INTEGER NOT NULL,
    -- 'hour' or 'day'
    span       TEXT    NOT NULL,
    -- The bucket's start, Unix seconds.
    bucket     INTEGER NOT NULL,
    -- Devices served at least once in the bucket.
    ok         INTEGER NOT NULL DEFAULT 0,
    -- Devices refused for wrong credentials at least once in the bucket.
    refused    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, span, bucket)
) WITHOUT ROWID;

-- What the access log still holds, counted the way the charts counted it until now
-- (distinct devices per bucket), before the triggers exist.
INSERT INTO checkin_counts (account_id, span, bucket, ok, refused)
SELECT d.account_id, 'hour', (l.ts_ms / 3600000) * 3600,
       count(DISTINCT CASE WHEN l.status BETWEEN 200 AND 299 THEN l.mac END),
       count(DISTINCT CASE WHEN l.auth = 'bad' THEN l.mac END)
FROM access_log l JOIN devices d ON d.mac = l.mac
GROUP BY d.account_id, l.ts_ms / 3600000;
INSERT INTO checkin_counts (account_id, span, bucket, ok, refused)
SELECT d.account_id, 'day', (l.ts_ms / 86400000) * 86400,
       count(DISTINCT CASE WHEN l.status BETWEEN 200 AND 299 THEN l.mac END),
       count(DISTINCT CASE WHEN l.auth = 'bad' THEN l.mac END)
FROM access_log l JOIN devices d ON d.mac = l.mac
GROUP BY d.account_id, l.ts_ms / 86400000;
UPDATE device_activity SET
    ok_hour = (SELECT max(l.ts_ms) / 3600000 FROM access_log l JOIN devices d ON d.mac = l.mac
               WHERE d.id = device_activity.device_id AND l.status BETWEEN 200 AND 299),
    ok_day = (SELECT max(l.ts_ms) / 86400000 FROM access_log l JOIN devices d ON d.mac = l.mac
              WHERE d.id = device_activity.device_id AND l.status BETWEEN 200 AND 299),
    bad_hour = (SELECT max(l.ts_ms) / 3600000 FROM access_log l JOIN devices d ON d.mac = l.mac
                WHERE d.id = device_activity.device_id AND l.auth = 'bad'),
    firmware_since = CASE WHEN firmware <> '' THEN first_seen END;

CREATE TRIGGER device_activity_counts_insert AFTER INSERT ON device_activity
WHEN NEW.ok_hour IS NOT NULL OR NEW.ok_day IS NOT NULL OR NEW.bad_hour IS NOT NULL
BEGIN
    INSERT INTO checkin_counts (account_id, span, bucket, ok)
        SELECT account_id, 'hour', NEW.ok_hour * 3600, 1 FROM devices
        WHERE id = NEW.device_id AND NEW.ok_hour IS NOT NULL
        ON CONFLICT DO UPDATE SET ok = ok + 1;
    INSERT INTO checkin_counts (account_id, span, bucket, ok)
        SELECT account_id, 'day', NEW.ok_day * 86400, 1 FROM devices
        WHERE id = NEW.device_id AND NEW.ok_day IS NOT NULL
        ON CONFLICT DO UPDATE SET ok = ok + 1;
    INSERT INTO checkin_counts (account_id, span, bucket, refused)
        SELECT account_id, 'hour', NEW.bad_hour * 3600, 1 FROM devices
        WHERE id = NEW.device_id AND NEW.bad_hour IS NOT NULL
        ON CONFLICT DO UPDATE SET refused = refused + 1;
END;

CREATE TRIGGER device_activity_counts_update AFTER UPDATE OF ok_hour, ok_day, bad_hour
ON device_activity
WHEN NEW.ok_hour IS NOT OLD.ok_hour OR NEW.ok_day IS NOT OLD.ok_day
     OR NEW.bad_hour IS NOT OLD.bad_hour
BEGIN
    INSERT INTO checkin_counts (account_id, span, bucket, ok)
        SELECT account_id, 'hour', NEW.ok_hour * 3600, 1 FROM devices
        WHERE id = NEW.device_id AND NEW.ok_hour > coalesce(OLD.ok_hour, -1)
        ON CONFLICT DO UPDATE SET ok = ok + 1;
    INSERT INTO checkin_counts (account_id, span, bucket, ok)
        SELECT account_id, 'day', NEW.ok_day * 86400, 1 FROM devices
        WHERE id = NEW.device_id AND NEW.ok_day > coalesce(OLD.ok_day, -1)
        ON CONFLICT DO UPDATE SET ok = ok + 1;
    INSERT INTO checkin_counts (account_id, span, bucket, refused)
        SELECT account_id, 'hour', NEW.bad_hour * 3600, 1 FROM devices
        WHERE id = NEW.device_id AND NEW.bad_hour > coalesce(OLD.bad_hour, -1)
        ON CONFLICT DO UPDATE SET refused = refused + 1;
END;
