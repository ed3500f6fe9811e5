-- 0008: the credential state machine (domain::machine). Refers only to tables of 0001,
-- 0004 and 0007, so it can be renumbered when branches merge.
--
-- What a device's requests show is now evidence for reports, never a reason to refuse it:
-- a request with the account credential proves nothing about which phone sent it.

-- device_sync.generation / generation_at now record the latest recognised request that named
-- the device (the generation it used, or -1 for its own credential): "synced" in reports.
-- floor_generation: older generations are refused for this device because it had not been
-- seen for `seen_days` when a rotation made them old (counted and confirmed then).
-- last_refused: the latest recognised request naming the device was refused.
-- proven_segment / proven_at: the service address of its latest proven request (its own
-- credential or a verified certificate), the only evidence that retires an address alias.
ALTER TABLE device_sync ADD COLUMN floor_generation INTEGER;
ALTER TABLE device_sync ADD COLUMN last_refused INTEGER NOT NULL DEFAULT 0
    CHECK (last_refused IN (0, 1));
ALTER TABLE device_sync ADD COLUMN proven_segment TEXT;
ALTER TABLE device_sync ADD COLUMN proven_at INTEGER;
-- A re-admission now accepts any generation of the account's history (and the device's
-- previous own credentials) until readmit_until; readmit_generation is kept for old rows.

-- Credentials are never stored as provisioning state: whether a request needs new
-- credentials is decided from the credentials it carries. Rows from before held passwords
-- in clear.
DELETE FROM device_prov_state
    WHERE param IN ('device.prov.user', 'device.prov.password');

-- Deliveries counted (a change delivered this many times and never seen applied is given up
-- and reported, never pending forever); how a value was confirmed: `proof` (a request with
-- the device's own credential or certificate), `request` (any authenticated request),
-- `reboot` (the phone fetched its master file again after the delivery) or `admin`.
ALTER TABLE device_prov_state ADD COLUMN deliveries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE device_prov_state ADD COLUMN confirmed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE device_prov_state ADD COLUMN gave_up_at INTEGER;
UPDATE device_prov_state SET deliveries = 1 WHERE delivered IS NOT NULL;
UPDATE device_prov_state SET confirmed_by = 'request' WHERE confirmed IS NOT NULL;

-- A device's own credential: how often it was delivered before the device used it.
ALTER TABLE device_credentials ADD COLUMN deliveries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE device_credentials ADD COLUMN enrolled_at INTEGER;
UPDATE device_credentials SET enrolled_at = confirmed_at WHERE confirmed_at IS NOT NULL;

-- Every own password a device may still hold besides its current one: sent to it (so it may
-- have adopted it) and not yet superseded by a newer one it proved it holds. `retired_at`:
-- the device proved a newer one; a re-admission still accepts retired ones. Sealed.
CREATE TABLE device_credential_history (
    id         INTEGER PRIMARY KEY,
    device_id  INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    password   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER
);
CREATE INDEX device_credential_history_device ON device_credential_history (device_id);
INSERT INTO device_credential_history (device_id, password, created_at)
    SELECT device_id, previous, created_at FROM device_credentials WHERE previous IS NOT NULL;
UPDATE device_credentials SET previous = NULL;
CREATE TRIGGER rev_devcredhist_i AFTER INSERT ON device_credential_history BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_devcredhist_u AFTER UPDATE ON device_credential_history BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_devcredhist_d AFTER DELETE ON device_credential_history BEGIN UPDATE config_revision SET value = value + 1; END;
