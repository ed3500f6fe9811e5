-- The audit log page reads entries newest first by id, a page at a time from the last id
-- shown (never OFFSET), narrowed by account, actor and action. Each index ends in the id:
-- one account's or one action's entries are read in id order without sorting, and an
-- actor's name (or its beginning) is found without reading the log. The action index also
-- lists the recorded kinds one step per kind (`db::audit::list_actions`).
CREATE INDEX audit_log_account ON audit_log (account_id, id);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
