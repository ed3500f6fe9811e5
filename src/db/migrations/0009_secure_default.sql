-- 0009: secure by default (domain::enrolment). Refers only to tables of 0001, 0004, 0007 and
-- 0008, so it can be renumbered when branches merge.
--
-- Every account withholds secrets from the account credential (the one DHCP option 160
-- hands out) until a device proves itself with its own credential.

-- Devices that were served secrets with the account credential before this (associated in an
-- account that did not withhold, and seen): they keep receiving them until they first enrol,
-- with no timer, and are sent their own credential meanwhile.
ALTER TABLE devices ADD COLUMN secrets_until_enrolled INTEGER NOT NULL DEFAULT 0
    CHECK (secrets_until_enrolled IN (0, 1));
UPDATE devices SET secrets_until_enrolled = 1
    WHERE profile_id IS NOT NULL
      AND account_id IN (SELECT id FROM accounts WHERE device_secrets = 0)
      AND id IN (SELECT device_id FROM device_activity WHERE last_auth_ok_at IS NOT NULL)
      AND id NOT IN (SELECT device_id FROM device_credentials
                     WHERE enrolled_at IS NOT NULL OR confirmed_at IS NOT NULL);

-- A window may stay open until the device it names first enrols (closes_at is then the
-- optional maximum age, or the largest time when there is none); `address`: only requests
-- from this address enrol in it (a re-enrolment bound to where the phone is).
ALTER TABLE enrolment_windows ADD COLUMN until_enrolled INTEGER NOT NULL DEFAULT 0
    CHECK (until_enrolled IN (0, 1));
ALTER TABLE enrolment_windows ADD COLUMN address TEXT;

-- Every associated device not enrolled, except those the unknown-device policy associated
-- (no window until an admin confirms them), gets a window until it enrols.
INSERT INTO enrolment_windows (account_id, mac, opened_at, closes_at, opened_by, until_enrolled)
    SELECT d.account_id, d.mac, CAST(strftime('%s', 'now') AS INTEGER), 9223372036854775807,
           'upgrade', 1
    FROM devices d
    WHERE d.profile_id IS NOT NULL AND d.auto_associated = 0
      AND d.id NOT IN (SELECT device_id FROM device_credentials
                       WHERE enrolled_at IS NOT NULL OR confirmed_at IS NOT NULL);

UPDATE accounts SET device_secrets = 1;

-- Who presented the account credential for a device around its enrolment: each client
-- (address and User-Agent) that was delivered its pending credential (`delivered_at`), or
-- that came with the account credential after it enrolled (`after_enrolment_at`).
CREATE TABLE enrolment_claims (
    id                 INTEGER PRIMARY KEY,
    device_id          INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    address            TEXT    NOT NULL,
    user_agent         TEXT    NOT NULL DEFAULT '',
    delivered_at       INTEGER,
    after_enrolment_at INTEGER,
    last_at            INTEGER NOT NULL,
    requests           INTEGER NOT NULL DEFAULT 1,
    UNIQUE (device_id, address, user_agent)
);
-- Set when a second client claimed the device's credential: the admin re-enrols or
-- dismisses; meanwhile the holder of its own credential keeps being served.
ALTER TABLE device_credentials ADD COLUMN contested_at INTEGER;

-- The maximum age of the windows association opens, in days (0: none, the default: a window
-- stays open until its device enrols).
ALTER TABLE accounts ADD COLUMN enrol_window_max_days INTEGER NOT NULL DEFAULT 0
    CHECK (enrol_window_max_days >= 0);
