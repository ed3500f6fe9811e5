-- Per account: whether the account (enrolment) credential may be served over TFTP, which
-- has no authentication (then as exposed as in DHCP option 160). Off for every account.
ALTER TABLE accounts ADD COLUMN tftp_credential INTEGER NOT NULL DEFAULT 0
    CHECK (tftp_credential IN (0, 1));
