-- 0002: the ZTP console: users, sessions, API tokens, bulk import jobs, and the indexes
-- Find Operations needs for fast prefix searches.
--
-- Secrets are never stored in clear: passwords as argon2 hashes, session and API tokens as
-- SHA-256 hashes (they are random, so a plain hash is enough).

CREATE TABLE users (
    id                   INTEGER PRIMARY KEY,
    username             TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    password_hash        TEXT    NOT NULL,
    role                 TEXT    NOT NULL CHECK (role IN ('admin', 'provider', 'installer', 'viewer')),
    -- the installer/provider company (the ZTP guide's confidentiality rule keys on it)
    company              TEXT    NOT NULL DEFAULT '',
    -- set for one-time passwords: the next sign-in must choose a new password
    must_change_password INTEGER NOT NULL DEFAULT 0 CHECK (must_change_password IN (0, 1)),
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash  TEXT    PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    token_hash   TEXT    NOT NULL UNIQUE,
    -- the first characters, so a person can tell tokens apart
    prefix       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);

CREATE TABLE import_jobs (
    id             INTEGER PRIMARY KEY,
    account_id     INTEGER NOT NULL REFERENCES accounts (id),
    username       TEXT    NOT NULL DEFAULT '',
    owner_company  TEXT    NOT NULL DEFAULT '',
    file_name      TEXT    NOT NULL DEFAULT '',
    reference_id   TEXT    NOT NULL DEFAULT '',
    dry_run        INTEGER NOT NULL DEFAULT 0 CHECK (dry_run IN (0, 1)),
    status         TEXT    NOT NULL DEFAULT 'Queued'
                   CHECK (status IN ('Queued', 'Processing', 'Completed', 'Completed with Errors', 'Failed')),
    total_rows     INTEGER NOT NULL DEFAULT 0,
    processed_rows INTEGER NOT NULL DEFAULT 0,
    applied_rows   INTEGER NOT NULL DEFAULT 0,
    rejected_rows  INTEGER NOT NULL DEFAULT 0,
    message        TEXT    NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    finished_at    INTEGER
);
CREATE INDEX import_jobs_reference ON import_jobs (reference_id COLLATE NOCASE);

-- The rejected lines of a job, with their line number in the uploaded file and the reason.
CREATE TABLE import_job_errors (
    job_id  INTEGER NOT NULL REFERENCES import_jobs (id) ON DELETE CASCADE,
    line    INTEGER NOT NULL,
    content TEXT    NOT NULL,
    reason  TEXT    NOT NULL,
    PRIMARY KEY (job_id, line)
);

-- Find Operations: case-insensitive prefix searches (LIKE 'abc%') use NOCASE indexes; MAC
-- searches use the unique index on the lowercase column.
CREATE INDEX subscribers_first_name ON subscribers (first_name COLLATE NOCASE);
CREATE INDEX subscribers_last_name  ON subscribers (last_name COLLATE NOCASE);
CREATE INDEX subscribers_phone      ON subscribers (phone COLLATE NOCASE);
CREATE INDEX subscribers_email      ON subscribers (email COLLATE NOCASE);
CREATE INDEX subscribers_city       ON subscribers (city COLLATE NOCASE);
CREATE INDEX subscribers_status     ON subscribers (status, expires_at);
CREATE INDEX subscribers_owner      ON subscribers (owner_company);
CREATE INDEX devices_serial         ON devices (serial COLLATE NOCASE);
-- Covers the device view's filters in MAC order, so a `%contains%` search scans this index
-- alone instead of looking up every row of the table.
CREATE INDEX devices_find           ON devices (mac, profile_id, serial, vendor_model, owner_company);
CREATE INDEX profiles_name_nocase   ON profiles (name COLLATE NOCASE);
