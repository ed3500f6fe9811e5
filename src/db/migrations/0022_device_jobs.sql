-- Long actions on many devices (a bulk action on a large selection, apply-now) run as
-- jobs in the background while a page shows their progress. A row is written when the job
-- starts and again when it ends; a bulk action ends its row in the same transaction as its
-- changes, so a row left `running` by a stopped server means nothing of it was applied.
-- Progress while running lives in the server's memory (`done` is the final count).
-- `runner` names the process that runs it (`pid:start`, as import_jobs.runner): a job
-- whose runner is gone is marked `interrupted` when jobs are read and by housekeeping.
CREATE TABLE device_jobs (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts (id),
    username    TEXT    NOT NULL,
    -- `bulk` (actions::bulk) or `apply-now` (actions::sip).
    kind        TEXT    NOT NULL CHECK (kind IN ('bulk', 'apply-now')),
    description TEXT    NOT NULL,
    total       INTEGER NOT NULL CHECK (total >= 0),
    done        INTEGER NOT NULL DEFAULT 0 CHECK (done >= 0 AND done <= total),
    state       TEXT    NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'running', 'done', 'failed', 'interrupted')),
    -- What it did (done), or why not (failed, interrupted).
    outcome     TEXT    NOT NULL DEFAULT '',
    runner      TEXT,
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER
);
CREATE INDEX device_jobs_account ON device_jobs (account_id, id);
