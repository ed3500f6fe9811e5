-- 0016: per-account SIP settings (issue 21 items 3, 5 and 6). All off by default.
-- sip_validation: render request validation so the account's phones accept a check-sync
--   NOTIFY only with a Digest answer computed from their line's credentials.
-- apply_after_change: 'now' sends check-sync to the devices a change affects right after it
--   is committed (never to phones it would restart); 'wait' leaves it to their next poll.
-- online_check: a background OPTIONS check keeps the devices' online state current;
--   device_sip.online_checked_at is when it last asked a device (answered or not), so an
--   unreachable device does not take every round.
ALTER TABLE accounts ADD COLUMN sip_validation INTEGER NOT NULL DEFAULT 0
    CHECK (sip_validation IN (0, 1));
ALTER TABLE accounts ADD COLUMN apply_after_change TEXT NOT NULL DEFAULT 'wait'
    CHECK (apply_after_change IN ('wait', 'now'));
ALTER TABLE accounts ADD COLUMN online_check INTEGER NOT NULL DEFAULT 0
    CHECK (online_check IN (0, 1));
ALTER TABLE device_sip ADD COLUMN online_checked_at INTEGER;
