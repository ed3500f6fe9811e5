-- Issue 22: whether an account accepts Polycom's factory FTP login (PlcmSpIp) as a
-- bootstrap credential (what an unknown device gets, and the move to HTTP(S)). On unless
-- turned off.
ALTER TABLE accounts ADD COLUMN ftp_factory_login INTEGER NOT NULL DEFAULT 1
    CHECK (ftp_factory_login IN (0, 1));
