-- 0015: console users from an LDAP or Active Directory server, and a second factor (TOTP).
-- `source` says where a user's password is checked: 'local' (the argon2 hash here) or
-- 'directory' (a bind as the user's DN; the row is created and updated at each sign-in, and
-- its password_hash can never match). The TOTP secret is sealed (enc:v2:, bound to the
-- user, db::secrets::columns); `totp_pending` holds a secret being enrolled, not yet
-- confirmed; `totp_last_step` is the last accepted time step, so a code is accepted once.
ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'local'
    CHECK (source IN ('local', 'directory'));
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_pending TEXT;
ALTER TABLE users ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0;

-- Recovery codes: high-entropy random codes, stored as SHA-256 hashes, each usable once.
CREATE TABLE totp_recovery_codes (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT    NOT NULL,
    used_at    INTEGER,
    PRIMARY KEY (user_id, code_hash)
);

-- What a session may do yet: '' everything its role allows; 'totp' only give its second
-- factor; 'enrol' only enrol one (its role requires it). Only '' sessions are signed in.
ALTER TABLE sessions ADD COLUMN stage TEXT NOT NULL DEFAULT ''
    CHECK (stage IN ('', 'totp', 'enrol'));
