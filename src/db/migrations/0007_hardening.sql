-- 0007: per-device credentials and enrolment windows (docs/design.md §6.4, "secrets
-- withheld until the device proves itself"), and import jobs shown as interrupted.
--
-- The migration references only accounts, devices and import_jobs, so it can be renumbered
-- when branches merge. Existing accounts keep today's behaviour (device_secrets = 0); the
-- domain turns it on for accounts created from now on.

ALTER TABLE accounts ADD COLUMN device_secrets INTEGER NOT NULL DEFAULT 0
    CHECK (device_secrets IN (0, 1));

-- A device's own credential: user = its MAC, a generated password (sealed with the secrets
-- key, `enc:v1:`). `previous` is the password before a rotation, accepted until the device
-- authenticates with the new one. `confirmed_at`: the device first authenticated with the
-- current password (from then on the account credential never delivers it again).
CREATE TABLE device_credentials (
    device_id    INTEGER PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    password     TEXT    NOT NULL,
    previous     TEXT,
    created_at   INTEGER NOT NULL,
    confirmed_at INTEGER
);

-- Windows an admin opened for enrolment: for one MAC, or (mac NULL) for every device of the
-- account. A device enrols (gets its own credential with the account credential) only
-- inside one, or with a verified device certificate naming its MAC.
CREATE TABLE enrolment_windows (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    mac        TEXT    CHECK (mac IS NULL OR (length(mac) = 12 AND mac = lower(mac))),
    opened_at  INTEGER NOT NULL,
    closes_at  INTEGER NOT NULL,
    opened_by  TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX enrolment_windows_account ON enrolment_windows (account_id, closes_at);

CREATE TRIGGER rev_devcreds_i AFTER INSERT ON device_credentials BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_devcreds_u AFTER UPDATE ON device_credentials BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_devcreds_d AFTER DELETE ON device_credentials BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_enrol_i AFTER INSERT ON enrolment_windows BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_enrol_u AFTER UPDATE ON enrolment_windows BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_enrol_d AFTER DELETE ON enrolment_windows BEGIN UPDATE config_revision SET value = value + 1; END;
