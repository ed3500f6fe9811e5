//! Queries on `prov_settings` (the provisioning settings, one row per field) and
//! `custom_variables`. Values are validated by the domain before they reach these functions.

use std::collections::BTreeMap;

use rusqlite::{Connection, params};

use super::now_secs;
use crate::error::Result;

/// Every stored provisioning setting, by field name.
pub fn load_prov_settings(conn: &Connection) -> Result<BTreeMap<String, String>> {
    let mut stmt = conn.prepare_cached("SELECT key, value FROM prov_settings")?;
    let rows = stmt.query_map([], |r| {
        let key: String = r.get(0)?;
        let value: String = r.get(1)?;
        let value = if super::secrets::SECRET_SETTINGS.contains(&key.as_str()) {
            super::secrets::open_in_sql(super::secrets::Credential::Setting(&key), value)?
        } else {
            value
        };
        Ok((key, value))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Replaces the stored settings with `fields` (fields equal to their default are left out
/// by the caller). Run inside a transaction, so readers see the old or the new set, never a
/// mixture.
pub fn replace_prov_settings(conn: &Connection, fields: &BTreeMap<String, String>) -> Result<()> {
    // Several statements: all or none (crash safety).
    super::atomic(conn, |conn| {
        let stored = load_prov_settings(conn)?;
        for key in stored.keys().filter(|k| !fields.contains_key(*k)) {
            conn.execute("DELETE FROM prov_settings WHERE key = ?1", [key])?;
        }
        let mut stmt = conn.prepare_cached(
            "INSERT INTO prov_settings (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE value <> excluded.value",
        )?;
        for (key, value) in fields {
            if stored.get(key) != Some(value) {
                let value = if super::secrets::SECRET_SETTINGS.contains(&key.as_str()) {
                    super::secrets::seal_in(super::secrets::Credential::Setting(key), value)
                } else {
                    value.clone()
                };
                stmt.execute(params![key, value])?;
            }
        }
        Ok(())
    })
}

/// Custom variables by name.
pub fn list_custom_variables(conn: &Connection) -> Result<BTreeMap<String, String>> {
    let mut stmt = conn.prepare_cached("SELECT name, value FROM custom_variables ORDER BY name")?;
    let rows = stmt.query_map([], |r| {
        let name: String = r.get(0)?;
        let value: String = r.get(1)?;
        let value = if super::secrets::is_sealed(&value) {
            super::secrets::open_at_sql(&variable_place(&name), value)?
        } else {
            value
        };
        Ok((name, value))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Where a custom variable's value lives (its associated data when sealed).
fn variable_place(name: &str) -> super::secrets::Place<'_> {
    super::secrets::Place {
        table: "custom_variables",
        column: "value",
        row: name,
    }
}

/// Creates or changes a custom variable. A variable named like a secret
/// (`template::is_secret_name`) is stored sealed.
pub fn upsert_custom_variable(conn: &Connection, name: &str, value: &str) -> Result<()> {
    let stored = if crate::domain::template::is_secret_name(name) {
        super::secrets::seal_at(&variable_place(name), value)
    } else {
        value.to_string()
    };
    conn.execute(
        "INSERT INTO custom_variables (name, value, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        params![name, stored, now_secs()],
    )?;
    Ok(())
}

/// Deletes a custom variable; returns whether it existed.
pub fn delete_custom_variable(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM custom_variables WHERE name = ?1", [name])? == 1)
}

/// Profile files whose content contains `needle`: (profile name, file name, content).
pub fn list_files_mentioning(
    conn: &Connection,
    needle: &str,
) -> Result<Vec<(String, String, Vec<u8>)>> {
    // Files holding a secret are stored sealed: those are opened and searched here.
    let mut stmt = conn.prepare_cached(
        "SELECT p.name, f.file_name, f.content, f.profile_id, f.position FROM profile_files f
         JOIN profiles p ON p.id = f.profile_id
         WHERE instr(f.content, CAST(?1 AS BLOB)) > 0
            OR substr(f.content, 1, length(?2)) = CAST(?2 AS BLOB)
         ORDER BY p.name, f.position",
    )?;
    let rows: Vec<(String, String, Vec<u8>, i64, i64)> = stmt
        .query_map(
            rusqlite::params![needle, super::secrets::BOUND_PREFIX],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::new();
    for (profile, file, stored, profile_id, position) in rows {
        let content = super::secrets::open_file(profile_id, position, stored)?;
        if content
            .windows(needle.len().max(1))
            .any(|w| w == needle.as_bytes())
        {
            out.push((profile, file, content));
        }
    }
    Ok(out)
}

/// MACs of the associated devices, for External mode's generation.
pub fn list_associated_macs(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT mac FROM devices WHERE profile_id IS NOT NULL ORDER BY mac")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{accounts::config_revision, open_in_memory};

    #[test]
    fn settings_are_replaced_as_a_whole_and_bump_the_revision() {
        let conn = open_in_memory().expect("db");
        let rev = config_revision(&conn).expect("rev");
        let mut f = BTreeMap::new();
        f.insert("mode".to_string(), "external".to_string());
        f.insert("registrar".to_string(), "sip.example.com".to_string());
        replace_prov_settings(&conn, &f).expect("save");
        assert!(config_revision(&conn).expect("rev") > rev);
        f.remove("registrar");
        replace_prov_settings(&conn, &f).expect("save");
        assert_eq!(load_prov_settings(&conn).expect("load"), f);
        let rev = config_revision(&conn).expect("rev");
        replace_prov_settings(&conn, &f).expect("unchanged");
        assert_eq!(
            config_revision(&conn).expect("rev"),
            rev,
            "no change, no bump"
        );
    }

    #[test]
    fn custom_variable_names_are_checked_by_the_schema_too() {
        let conn = open_in_memory().expect("db");
        upsert_custom_variable(&conn, "SYSLOG_SERVER", "10.0.0.9").expect("ok");
        assert!(upsert_custom_variable(&conn, "lower", "x").is_err());
        assert_eq!(
            list_custom_variables(&conn).expect("list")["SYSLOG_SERVER"],
            "10.0.0.9"
        );
        assert!(delete_custom_variable(&conn, "SYSLOG_SERVER").expect("delete"));
        assert!(!delete_custom_variable(&conn, "SYSLOG_SERVER").expect("again"));
    }
}
