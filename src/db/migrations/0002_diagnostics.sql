-- Diagnostics: the runs of the probes and analyses, and their findings.
--
-- Self-contained on purpose: these tables reference no other table and take part in no
-- trigger, so this migration can be renumbered when branches merge without touching its
-- text. Runs are kept per kind (the newest few); findings go with their run.

CREATE TABLE diag_runs (
    id          INTEGER PRIMARY KEY,
    -- dhcp, dns, dhcp-config, phones
    kind        TEXT    NOT NULL,
    -- the interface, domain or files the run looked at
    subject     TEXT    NOT NULL DEFAULT '',
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    status      TEXT    NOT NULL CHECK (status IN ('running', 'ok', 'failed')),
    -- why a failed run failed, as the probe said it
    error       TEXT    NOT NULL DEFAULT '',
    -- what the run saw (answers, records, options), as JSON
    result      TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX diag_runs_kind ON diag_runs (kind, id);

CREATE TABLE diag_findings (
    run_id   INTEGER NOT NULL REFERENCES diag_runs (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    severity TEXT    NOT NULL CHECK (severity IN ('error', 'warning', 'info')),
    code     TEXT    NOT NULL,
    title    TEXT    NOT NULL,
    evidence TEXT    NOT NULL,
    fix      TEXT    NOT NULL,
    PRIMARY KEY (run_id, position)
);
