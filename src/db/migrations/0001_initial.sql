-- 0001: accounts, profiles, subscribers, devices and what phones did.
--
-- Configuration an admin owns (accounts, profiles, devices, lines) is kept apart from facts
-- the server observes (device_activity, access_log, uploads), so the hot path's batched
-- bookkeeping never bumps the configuration revision that render caches key on.

CREATE TABLE accounts (
    id                    INTEGER PRIMARY KEY,
    name                  TEXT    NOT NULL,
    slug                  TEXT    NOT NULL UNIQUE,
    -- random; with the slug it makes the account's service address /<slug>-<key>/
    service_key           TEXT    NOT NULL,
    -- the default account also answers at /
    is_default            INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
    provisioning_enabled  INTEGER NOT NULL DEFAULT 1 CHECK (provisioning_enabled IN (0, 1)),
    device_user           TEXT,
    device_password       TEXT,
    -- bumped on every change of the device credentials (Auto-Sync keys on it)
    credential_generation INTEGER NOT NULL DEFAULT 1,
    autosync_enabled      INTEGER NOT NULL DEFAULT 1 CHECK (autosync_enabled IN (0, 1)),
    unknown_devices       TEXT    NOT NULL DEFAULT 'stage'
                          CHECK (unknown_devices IN ('stage', 'ztp', 'default-profile', 'reject')),
    default_profile_id    INTEGER,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);
CREATE UNIQUE INDEX accounts_one_default ON accounts (is_default) WHERE is_default = 1;

CREATE TABLE profiles (
    id                 INTEGER PRIMARY KEY,
    account_id         INTEGER NOT NULL REFERENCES accounts (id),
    name               TEXT    NOT NULL,
    vendor_model       TEXT    NOT NULL DEFAULT 'Polycom_UCS_Device',
    prov_server        TEXT    NOT NULL DEFAULT '',
    prov_user          TEXT    NOT NULL DEFAULT '',
    prov_password      TEXT    NOT NULL DEFAULT '',
    polling            TEXT    NOT NULL DEFAULT 'none' CHECK (polling IN ('none', 'enable', 'disable')),
    boot_server_option TEXT    NOT NULL DEFAULT '',
    option60_type      TEXT    NOT NULL DEFAULT '',
    quick_setup        TEXT    NOT NULL DEFAULT '',
    language           TEXT    NOT NULL DEFAULT '',
    created_by         TEXT    NOT NULL DEFAULT '',
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    UNIQUE (account_id, name)
);

-- The profile's configuration files, in CONFIG_FILES order.
CREATE TABLE profile_files (
    profile_id INTEGER NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    file_name  TEXT    NOT NULL,
    content    BLOB    NOT NULL,
    sha256     TEXT    NOT NULL,
    PRIMARY KEY (profile_id, position)
);

-- Software version per model family (VVX, Trio, ...); the master names an image per model.
CREATE TABLE profile_firmware (
    profile_id INTEGER NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    family     TEXT    NOT NULL,
    version    TEXT    NOT NULL,
    PRIMARY KEY (profile_id, family)
);

CREATE TABLE subscribers (
    id            INTEGER PRIMARY KEY,
    account_id    INTEGER NOT NULL REFERENCES accounts (id),
    reference_id  TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    company       TEXT    NOT NULL DEFAULT '',
    first_name    TEXT    NOT NULL DEFAULT '',
    last_name     TEXT    NOT NULL DEFAULT '',
    phone         TEXT    NOT NULL DEFAULT '',
    email         TEXT    NOT NULL DEFAULT '',
    street        TEXT    NOT NULL DEFAULT '',
    city          TEXT    NOT NULL DEFAULT '',
    state         TEXT    NOT NULL DEFAULT '',
    zip           TEXT    NOT NULL DEFAULT '',
    country_code  TEXT    NOT NULL DEFAULT '',
    status        TEXT    NOT NULL DEFAULT 'complete' CHECK (status IN ('partial', 'complete')),
    -- the installer company that made the association (confidentiality rule of the ZTP guide)
    owner_company TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER
);

-- One row per MAC the installation knows: associated (profile set) or only seen.
CREATE TABLE devices (
    id             INTEGER PRIMARY KEY,
    account_id     INTEGER NOT NULL REFERENCES accounts (id),
    mac            TEXT    NOT NULL UNIQUE CHECK (length(mac) = 12 AND mac = lower(mac)),
    serial         TEXT    NOT NULL DEFAULT '',
    vendor_model   TEXT    NOT NULL DEFAULT 'Polycom_UCS_Device',
    profile_id     INTEGER REFERENCES profiles (id),
    subscriber_id  INTEGER REFERENCES subscribers (id),
    -- ZTP vendor extensions (the line-1 ones live in device_lines)
    sip_server     TEXT    NOT NULL DEFAULT '',
    outbound_proxy TEXT    NOT NULL DEFAULT '',
    prov_server    TEXT    NOT NULL DEFAULT '',
    prov_user      TEXT    NOT NULL DEFAULT '',
    prov_password  TEXT    NOT NULL DEFAULT '',
    polling        TEXT    NOT NULL DEFAULT '' CHECK (polling IN ('', '0', '1')),
    owner_company  TEXT    NOT NULL DEFAULT '',
    -- associated by the `default-profile` unknown-device policy, not by a person: Auto-Sync
    -- leaves such devices alone until an admin confirms them
    auto_associated INTEGER NOT NULL DEFAULT 0 CHECK (auto_associated IN (0, 1)),
    associated_at  INTEGER,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX devices_profile ON devices (profile_id);
CREATE INDEX devices_subscriber ON devices (subscriber_id);
CREATE INDEX devices_account ON devices (account_id, mac);

CREATE TABLE device_lines (
    device_id     INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    line          INTEGER NOT NULL CHECK (line >= 1),
    auth_user_id  TEXT    NOT NULL DEFAULT '',
    auth_password TEXT    NOT NULL DEFAULT '',
    label         TEXT    NOT NULL DEFAULT '',
    display_name  TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (device_id, line)
);

-- Desired/confirmed provisioning state (docs/design.md §6): what we know the phone holds, per
-- device.* parameter, and what we last delivered while a change was pending.
CREATE TABLE device_prov_state (
    device_id    INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    param        TEXT    NOT NULL,
    confirmed    TEXT,
    confirmed_at INTEGER,
    delivered    TEXT,
    delivered_at INTEGER,
    PRIMARY KEY (device_id, param)
);

-- Observed facts, written in batches by the recorder.
CREATE TABLE device_activity (
    device_id       INTEGER PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    first_seen      INTEGER NOT NULL,
    last_seen       INTEGER NOT NULL,
    access_count    INTEGER NOT NULL DEFAULT 0,
    last_ip         TEXT    NOT NULL DEFAULT '',
    last_user_agent TEXT    NOT NULL DEFAULT '',
    ua_family       TEXT    NOT NULL DEFAULT '',
    ua_model        TEXT    NOT NULL DEFAULT '',
    firmware        TEXT    NOT NULL DEFAULT '',
    last_sync_at    INTEGER,
    last_auth_ok_at INTEGER,
    auth_failures   INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE access_log (
    id          INTEGER PRIMARY KEY,
    ts_ms       INTEGER NOT NULL,
    account_id  INTEGER,
    mac         TEXT,
    ip          TEXT    NOT NULL,
    method      TEXT    NOT NULL,
    path        TEXT    NOT NULL,
    status      INTEGER NOT NULL,
    bytes       INTEGER NOT NULL,
    duration_us INTEGER NOT NULL,
    auth        TEXT    NOT NULL,
    secure      INTEGER NOT NULL DEFAULT 0,
    user_agent  TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX access_log_mac ON access_log (mac, id);

CREATE TABLE uploads (
    mac        TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    file_name  TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    sha256     TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (mac, kind, file_name)
);

-- A single counter bumped by every change to what phones are served. Render caches compare
-- it, so a change made by the CLI in another process is seen at once. device_prov_state has
-- no trigger: the server writes confirmations itself and drops that device's cached files;
-- admin actions on it bump the revision explicitly. Recording a MAC that is only seen (no
-- profile) does not bump it either: nothing served to other phones depends on it.
CREATE TABLE config_revision (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO config_revision (id, value) VALUES (1, 1);

CREATE TRIGGER rev_accounts_i AFTER INSERT ON accounts BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_accounts_u AFTER UPDATE ON accounts BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_accounts_d AFTER DELETE ON accounts BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_profiles_i AFTER INSERT ON profiles BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_profiles_u AFTER UPDATE ON profiles BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_profiles_d AFTER DELETE ON profiles BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_pfiles_i AFTER INSERT ON profile_files BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_pfiles_u AFTER UPDATE ON profile_files BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_pfiles_d AFTER DELETE ON profile_files BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_pfw_i AFTER INSERT ON profile_firmware BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_pfw_u AFTER UPDATE ON profile_firmware BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_pfw_d AFTER DELETE ON profile_firmware BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_devices_i AFTER INSERT ON devices WHEN NEW.profile_id IS NOT NULL BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_devices_u AFTER UPDATE ON devices BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_devices_d AFTER DELETE ON devices WHEN OLD.profile_id IS NOT NULL BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_lines_i AFTER INSERT ON device_lines BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_lines_u AFTER UPDATE ON device_lines BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_lines_d AFTER DELETE ON device_lines BEGIN UPDATE config_revision SET value = value + 1; END;

-- Settings of the installation (key/value), e.g. the server secret for Digest nonces.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
