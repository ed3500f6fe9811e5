-- 0010: secrets sealed wherever they live (docs/security.md). Policy values of secret
-- parameters, custom variables named like secrets and secret provisioning state are now
-- sealed, bound to their table, column and row (`db::secrets::BOUND`). Sealing needs the
-- key file, which SQL cannot read: the first start (or command) after this migration seals
-- every clear value with secure_delete on, then rebuilds the file (VACUUM) and truncates the
-- WAL, so no clear value survives in free pages or old WAL frames. This row asks for that.
INSERT INTO settings (key, value) VALUES ('secrets_scrub_pending', '1')
    ON CONFLICT (key) DO UPDATE SET value = excluded.value;
