-- 0003: provisioning settings, custom template variables, device-level template values and
-- the per-line fields that line templates use.
--
-- Everything here changes what phones are served, so every table bumps config_revision like
-- the tables of 0001: a setting changed from the CLI is served on the very next request.
-- The migration references only devices and device_lines of 0001, so it can be renumbered
-- when branches merge.

-- Provisioning settings of the installation (docs/design.md §9), one row per field. Fields absent
-- here have their documented default; the domain validates values before they are written.
CREATE TABLE prov_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Custom variables: ${NAME} in every profile file, ranked below the built-in variables.
CREATE TABLE custom_variables (
    name       TEXT    PRIMARY KEY
               CHECK (length(name) BETWEEN 1 AND 64 AND name NOT GLOB '*[^A-Z0-9_]*'),
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Device-level template values: ${LABEL}, ${TL_TIMEZONE}, ${TL_TIMEZONE_NAME},
-- ${DEFAULT_PARKEXT} and ${OVERRIDE} (a fragment of name="value" attributes, validated
-- when saved and inserted as written). No row means every value is empty.
CREATE TABLE device_vars (
    device_id        INTEGER PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    label            TEXT    NOT NULL DEFAULT '',
    tl_timezone      TEXT    NOT NULL DEFAULT '',
    tl_timezone_name TEXT    NOT NULL DEFAULT '',
    default_parkext  TEXT    NOT NULL DEFAULT '',
    override_attrs   TEXT    NOT NULL DEFAULT '',
    updated_at       INTEGER NOT NULL
);

-- Per-line values of line templates: ${EXTENSION}, ${FIRST_NAME}, ${LAST_NAME}.
ALTER TABLE device_lines ADD COLUMN extension  TEXT NOT NULL DEFAULT '';
ALTER TABLE device_lines ADD COLUMN first_name TEXT NOT NULL DEFAULT '';
ALTER TABLE device_lines ADD COLUMN last_name  TEXT NOT NULL DEFAULT '';

CREATE TRIGGER rev_prov_settings_i AFTER INSERT ON prov_settings BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_prov_settings_u AFTER UPDATE ON prov_settings BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_prov_settings_d AFTER DELETE ON prov_settings BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_custom_vars_i AFTER INSERT ON custom_variables BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_custom_vars_u AFTER UPDATE ON custom_variables BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_custom_vars_d AFTER DELETE ON custom_variables BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_device_vars_i AFTER INSERT ON device_vars BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_device_vars_u AFTER UPDATE ON device_vars BEGIN UPDATE config_revision SET value = value + 1; END;
CREATE TRIGGER rev_device_vars_d AFTER DELETE ON device_vars BEGIN UPDATE config_revision SET value = value + 1; END;
