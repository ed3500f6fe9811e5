-- Per account: whether the account (enrolment) credential may be served over TFTP, which
-- has no authentication (then as exposed as in DHCP option 160). Off for every account.
ALTER TABLE accounts ADD COLUMN tftp_credential INTEGER NOT NULL DEFAULT 0
    CHECK (tftp_credential IN (0, 1));

-- The protocol of each device's latest request (`http`, `https` or `tftp`), for the
-- inventory; empty until it next asks.
ALTER TABLE device_activity ADD COLUMN last_protocol TEXT NOT NULL DEFAULT '';
