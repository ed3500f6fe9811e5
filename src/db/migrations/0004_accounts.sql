-- 0003: accounts with credential generations and service-address aliases, what each device
-- is known to hold for Auto-Sync, sites, device groups, policies and the audit log.
--
-- Self-contained apart from the tables of 0001 it references, so it can be renumbered when
-- branches merge. Every table phones are served from bumps config_revision (render caches
-- key on it); device_sync does not: the server writes it itself and drops that device's
-- cache entry, and admin actions on it bump the revision explicitly.

-- Auto-Sync settings per account. The Lens Auto-Sync page: Auto-Sync is on for new accounts
-- and off for accounts that existed before the feature, so phones of an upgraded
-- installation are not sent credentials (and rebooted) until an admin turns it on.
ALTER TABLE accounts ADD COLUMN autosync_grace_days INTEGER NOT NULL DEFAULT 14
    CHECK (autosync_grace_days BETWEEN 0 AND 365);
ALTER TABLE accounts ADD COLUMN autosync_seen_days INTEGER NOT NULL DEFAULT 30
    CHECK (autosync_seen_days BETWEEN 1 AND 3650);
-- Poly OS parameter names are not verified on a device: off until an admin turns them on.
ALTER TABLE accounts ADD COLUMN autosync_poly_os INTEGER NOT NULL DEFAULT 0
    CHECK (autosync_poly_os IN (0, 1));
UPDATE accounts SET autosync_enabled = 0;

-- Every generation of an account's device credentials. The current one is also in
-- accounts.device_user/device_password/credential_generation.
CREATE TABLE account_credentials (
    account_id   INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    generation   INTEGER NOT NULL,
    user         TEXT    NOT NULL,
    password     TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    -- when a newer generation replaced this one; NULL for the current generation
    retired_at   INTEGER,
    -- until when Auto-Sync still accepts it from devices known to hold it (the grace
    -- window); equal to retired_at when the rotation that retired it was "compromised"
    accept_until INTEGER,
    -- this generation was created because the previous ones leaked: no grace window
    compromised  INTEGER NOT NULL DEFAULT 0 CHECK (compromised IN (0, 1)),
    PRIMARY KEY (account_id, generation)
);
INSERT INTO account_credentials (account_id, generation, user, password, created_at)
    SELECT id, credential_generation, device_user, device_password, created_at FROM accounts
    WHERE device_user IS NOT NULL AND device_password IS NOT NULL;
-- A new account's credentials are its first generation, however the account is created.
CREATE TRIGGER accounts_first_generation AFTER INSERT ON accounts
    WHEN NEW.device_user IS NOT NULL AND NEW.device_password IS NOT NULL
    BEGIN
        INSERT INTO account_credentials (account_id, generation, user, password, created_at)
        VALUES (NEW.id, NEW.credential_generation, NEW.device_user, NEW.device_password,
                NEW.created_at);
    END;

-- Former service addresses (`<slug>-<key>`) still answered until every device that used
-- them has moved to the current one.
CREATE TABLE account_aliases (
    segment    TEXT    PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    retired_at INTEGER
);

-- What a device is known to hold (docs/design.md §6.3): the credential generation it last
-- authenticated with, the service address segment of its last request ('' = /), the family
-- its User-Agent names, and a re-admission an admin granted.
CREATE TABLE device_sync (
    device_id          INTEGER PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    generation         INTEGER,
    generation_at      INTEGER,
    base_segment       TEXT    NOT NULL DEFAULT '',
    family             TEXT    NOT NULL DEFAULT '',
    readmit_generation INTEGER,
    readmit_until      INTEGER
);
-- Devices that authenticated before this migration hold the generation current now; the
-- service address they used is read from what the access log kept.
INSERT INTO device_sync (device_id, generation, generation_at, base_segment)
    SELECT d.id, a.credential_generation, act.last_auth_ok_at,
           CASE WHEN EXISTS (SELECT 1 FROM access_log l
                             WHERE l.mac = d.mac
                               AND l.path LIKE '/' || a.slug || '-' || a.service_key || '/%')
                THEN a.slug || '-' || a.service_key ELSE '' END
    FROM devices d
    JOIN accounts a ON a.id = d.account_id
    JOIN device_activity act ON act.device_id = d.id
    WHERE act.last_auth_ok_at IS NOT NULL;

CREATE TABLE sites (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    UNIQUE (account_id, name)
);

-- Device groups: a higher priority wins; equal priorities go by id, oldest first.
CREATE TABLE device_groups (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    priority    INTEGER NOT NULL DEFAULT 0,
    description TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    UNIQUE (account_id, name)
);

-- A device's site (kept out of `devices` so the device row stays as 0001 made it).
CREATE TABLE device_sites (
    device_id INTEGER PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    site_id   INTEGER NOT NULL REFERENCES sites (id) ON DELETE CASCADE
);
CREATE INDEX device_sites_site ON device_sites (site_id);

CREATE TABLE device_group_members (
    group_id  INTEGER NOT NULL REFERENCES device_groups (id) ON DELETE CASCADE,
    device_id INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, device_id)
);
CREATE INDEX device_group_members_device ON device_group_members (device_id);

-- Parameter values set at account, site, group or device level (docs/design.md §5).
CREATE TABLE policies (
    id         INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    scope      TEXT    NOT NULL CHECK (scope IN ('account', 'site', 'group', 'device')),
    -- the account, site, group or device the value is set on
    scope_id   INTEGER NOT NULL,
    parameter  TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (scope, scope_id, parameter)
);
CREATE INDEX policies_account ON policies (account_id);
CREATE TRIGGER policies_site_gone AFTER DELETE ON sites
    BEGIN DELETE FROM policies WHERE scope = 'site' AND scope_id = OLD.id; END;
CREATE TRIGGER policies_group_gone AFTER DELETE ON device_groups
    BEGIN DELETE FROM policies WHERE scope = 'group' AND scope_id = OLD.id; END;
CREATE TRIGGER policies_device_gone AFTER DELETE ON devices
    BEGIN DELETE FROM policies WHERE scope = 'device' AND scope_id = OLD.id; END;

-- Who changed what (people, API tokens, the CLI as the OS user). Secrets never appear in
-- clear: values are masked before they are written. No foreign key: entries outlive what
-- they describe.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    ts         INTEGER NOT NULL,
    actor      TEXT    NOT NULL,
    actor_kind TEXT    NOT NULL CHECK (actor_kind IN ('person', 'token', 'cli', 'system')),
    account_id INTEGER,
    action     TEXT    NOT NULL,
    target     TEXT    NOT NULL DEFAULT '',
    -- JSON objects, secrets masked
    before     TEXT,
    after      TEXT
);
CREATE INDEX audit_log_ts ON audit_log (ts);

-- Check-ins per hour and day for the inventory chart.
CREATE INDEX access_log_account_ts ON access_log (account_id, ts_ms);

CREATE TRIGGER rev_creds_i AFTER INSERT ON account_credentials BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_creds_u AFTER UPDATE ON account_credentials BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_creds_d AFTER DELETE ON account_credentials BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_aliases_i AFTER INSERT ON account_aliases BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_aliases_u AFTER UPDATE ON account_aliases BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_aliases_d AFTER DELETE ON account_aliases BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_sites_i AFTER INSERT ON sites BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_sites_u AFTER UPDATE ON sites BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_sites_d AFTER DELETE ON sites BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_groups_i AFTER INSERT ON device_groups BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_groups_u AFTER UPDATE ON device_groups BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_groups_d AFTER DELETE ON device_groups BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_dsites_i AFTER INSERT ON device_sites BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_dsites_u AFTER UPDATE ON device_sites BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_dsites_d AFTER DELETE ON device_sites BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_members_i AFTER INSERT ON device_group_members BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_members_d AFTER DELETE ON device_group_members BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_policies_i AFTER INSERT ON policies BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_policies_u AFTER UPDATE ON policies BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_policies_d AFTER DELETE ON policies BEGIN UPDATE config_revision SET value = value + 1; END;
