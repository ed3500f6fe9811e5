-- 0004: the firmware catalogue: UC Software releases stored under firmware/<version>/, the
-- model families each covers, and every file with its size and SHA-256 (checked when the
-- server starts).
--
-- Self-contained so it can be renumbered when branches merge. The catalogue changes no
-- served bytes by itself (masters name versions from profile_firmware), so it has no
-- config_revision triggers.

CREATE TABLE firmware_releases (
    version     TEXT    PRIMARY KEY,
    -- model families the release covers, comma-separated names (VVX,Trio)
    families    TEXT    NOT NULL DEFAULT '',
    -- what was imported: a zip file name or a folder
    source      TEXT    NOT NULL DEFAULT '',
    -- combined (one sip.ld for every model) or split (part-numbered images)
    layout      TEXT    NOT NULL DEFAULT 'split' CHECK (layout IN ('split', 'combined', 'mixed')),
    imported_by TEXT    NOT NULL DEFAULT '',
    imported_at INTEGER NOT NULL
);

CREATE TABLE firmware_files (
    version     TEXT    NOT NULL REFERENCES firmware_releases (version) ON DELETE CASCADE,
    -- path inside firmware/<version>/, `/`-separated
    path        TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    sha256      TEXT    NOT NULL,
    -- for part-numbered images: the part number, and the model when it is a known one
    part_number TEXT,
    model       TEXT,
    -- the last check against the disk: unchecked, ok, mismatch (other bytes), missing
    status      TEXT    NOT NULL DEFAULT 'ok' CHECK (status IN ('unchecked', 'ok', 'mismatch', 'missing')),
    checked_at  INTEGER,
    PRIMARY KEY (version, path)
);
CREATE INDEX firmware_files_part ON firmware_files (part_number);
