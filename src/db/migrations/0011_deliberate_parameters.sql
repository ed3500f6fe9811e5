-- 0011: parameter names an admin marked deliberate (domain::paramcheck). A name the
-- parameter dictionary does not know is accepted with a warning, a near miss of a known
-- name is refused; a name marked here is accepted and shown as deliberate, with its reason.
-- Per account, like the profiles and policies that use such names. Not served to phones:
-- no config_revision triggers.
CREATE TABLE deliberate_parameters (
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- an exact name, or a pattern with N for each index (acme.N.tweak)
    name       TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    marked_by  TEXT    NOT NULL,
    marked_at  INTEGER NOT NULL,
    PRIMARY KEY (account_id, name)
);
