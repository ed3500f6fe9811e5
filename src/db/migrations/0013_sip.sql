-- 0013: SIP check-sync ("apply now", issue 21). Number 0012 belongs to another change.
-- Where a device may be sent check-sync: the source address of its latest request that
-- proved it is that device (its own credential or a verified client certificate naming its
-- MAC) and when it was last seen proving it there. Never the address of a request made with
-- the account credential or none: a stranger naming a victim's MAC must not receive a Digest
-- answer computed over that phone's SIP password. An admin's override address is used only
-- when no proven address is known. The latest SIP answer is online evidence.
-- Not served to phones: no config_revision triggers.
CREATE TABLE device_sip (
    device_id     INTEGER PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    proven_ip     TEXT,
    proven_at     INTEGER,
    override_ip   TEXT,
    override_port INTEGER,
    answered_at   INTEGER,
    answer_status INTEGER
);
