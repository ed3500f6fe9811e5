//! Queries on `profiles`, `profile_files` and `profile_firmware`.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::now_secs;
use crate::domain::polycom::models::Family;
use crate::domain::profile::{Polling, Profile, ProfileFields, ProfileFile};
use crate::error::{Error, Result};

const COLUMNS: &str = "id, account_id, name, vendor_model, prov_server, prov_user, prov_password, \
     polling, boot_server_option, option60_type, quick_setup, language";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Profile> {
    let polling: String = r.get(7)?;
    let id: i64 = r.get(0)?;
    Ok(Profile {
        id,
        account_id: r.get(1)?,
        fields: ProfileFields {
            name: r.get(2)?,
            vendor_model: r.get(3)?,
            prov_server: super::secrets::open_in_sql(
                super::secrets::Credential::ProfileServer(id),
                r.get(4)?,
            )?,
            prov_user: r.get(5)?,
            prov_password: super::secrets::open_in_sql(
                super::secrets::Credential::ProfilePassword(id),
                r.get(6)?,
            )?,
            polling: Polling::parse(&polling).unwrap_or_default(),
            boot_server_option: r.get(8)?,
            option60_type: r.get(9)?,
            quick_setup: r.get(10)?,
            language: r.get(11)?,
            software: BTreeMap::new(),
        },
        files: Vec::new(),
    })
}

fn load_children(conn: &Connection, mut p: Profile) -> Result<Profile> {
    let mut stmt = conn.prepare_cached(
        "SELECT file_name, content, sha256, position FROM profile_files WHERE profile_id = ?1
         ORDER BY position",
    )?;
    let stored: Vec<(ProfileFile, i64)> = stmt
        .query_map([p.id], |r| {
            Ok((
                ProfileFile {
                    file_name: r.get(0)?,
                    content: r.get(1)?,
                    sha256: r.get(2)?,
                },
                r.get(3)?,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    p.files = stored
        .into_iter()
        .map(|(mut f, position)| {
            f.content = super::secrets::open_file(p.id, position, std::mem::take(&mut f.content))?;
            Ok(f)
        })
        .collect::<Result<_>>()?;
    let mut stmt =
        conn.prepare_cached("SELECT family, version FROM profile_firmware WHERE profile_id = ?1")?;
    let rows = stmt.query_map([p.id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    for row in rows {
        let (family, version) = row?;
        if let Some(f) = Family::from_name(&family) {
            p.fields.software.insert(f, version);
        }
    }
    Ok(p)
}

pub fn find_profile_by_id(conn: &Connection, id: i64) -> Result<Option<Profile>> {
    let sql = format!("SELECT {COLUMNS} FROM profiles WHERE id = ?1");
    match conn
        .prepare_cached(&sql)?
        .query_row([id], from_row)
        .optional()?
    {
        Some(p) => Ok(Some(load_children(conn, p)?)),
        None => Ok(None),
    }
}

pub fn find_profile_by_name(
    conn: &Connection,
    account_id: i64,
    name: &str,
) -> Result<Option<Profile>> {
    let sql = format!("SELECT {COLUMNS} FROM profiles WHERE account_id = ?1 AND name = ?2");
    match conn
        .prepare_cached(&sql)?
        .query_row(params![account_id, name], from_row)
        .optional()?
    {
        Some(p) => Ok(Some(load_children(conn, p)?)),
        None => Ok(None),
    }
}

/// A row of the profile list.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProfileSummary {
    pub id: i64,
    pub name: String,
    pub vendor_model: String,
    pub files: i64,
    pub devices: i64,
}

pub fn list_profiles(conn: &Connection, account_id: i64) -> Result<Vec<ProfileSummary>> {
    list_profiles_seen_by(conn, account_id, &crate::domain::users::Scope::All)
}

/// The account's profiles, each with the devices `scope` sees among those using it (the
/// count Find then lists for the profile).
pub fn list_profiles_seen_by(
    conn: &Connection,
    account_id: i64,
    scope: &crate::domain::users::Scope,
) -> Result<Vec<ProfileSummary>> {
    use crate::domain::users::Scope;
    let (company, by_profile) = match scope {
        Scope::All => (None, false),
        Scope::Company(c) => (Some(c.as_str()), false),
        Scope::Provider(c) => (Some(c.as_str()), true),
    };
    let mut stmt = conn.prepare_cached(
        "SELECT p.id, p.name, p.vendor_model,
                (SELECT count(*) FROM profile_files f WHERE f.profile_id = p.id),
                (SELECT count(*) FROM devices d WHERE d.profile_id = p.id
                  AND (?2 IS NULL OR d.owner_company = ?2 OR (?3 AND p.created_by = ?2)))
         FROM profiles p WHERE p.account_id = ?1 ORDER BY p.name",
    )?;
    let rows = stmt.query_map(params![account_id, company, by_profile], |r| {
        Ok(ProfileSummary {
            id: r.get(0)?,
            name: r.get(1)?,
            vendor_model: r.get(2)?,
            files: r.get(3)?,
            devices: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Inserts a profile with its files. Run inside a transaction.
pub fn insert_profile(
    conn: &Connection,
    account_id: i64,
    f: &ProfileFields,
    files: &[ProfileFile],
) -> Result<i64> {
    if find_profile_by_name(conn, account_id, &f.name)?.is_some() {
        return Err(Error::Conflict(format!(
            "a profile named `{}` already exists",
            f.name
        )));
    }
    let now = now_secs();
    conn.execute(
        "INSERT INTO profiles (account_id, name, vendor_model, prov_server, prov_user, prov_password,
                               polling, boot_server_option, option60_type, quick_setup, language,
                               created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)",
        params![
            account_id,
            f.name,
            f.vendor_model,
            super::secrets::seal_unbound(super::secrets::Credential::ProfileServer(0), &f.prov_server),
            f.prov_user,
            super::secrets::seal_unbound(super::secrets::Credential::ProfilePassword(0), &f.prov_password),
            f.polling.as_str(),
            f.boot_server_option,
            f.option60_type,
            f.quick_setup,
            f.language,
            now
        ],
    )?;
    let id = conn.last_insert_rowid();
    super::secrets::bind_inserted(conn, "profiles", id)?;
    replace_children(conn, id, f, Some(files))?;
    Ok(id)
}

/// Updates a profile's fields; `files`, when given, replaces its files. Run inside a
/// transaction.
pub fn update_profile(
    conn: &Connection,
    id: i64,
    f: &ProfileFields,
    files: Option<&[ProfileFile]>,
) -> Result<()> {
    let changed = conn.execute(
        "UPDATE profiles SET name = ?2, vendor_model = ?3, prov_server = ?4, prov_user = ?5,
                prov_password = ?6, polling = ?7, boot_server_option = ?8, option60_type = ?9,
                quick_setup = ?10, language = ?11, updated_at = ?12
         WHERE id = ?1",
        params![
            id,
            f.name,
            f.vendor_model,
            super::secrets::seal_in(
                super::secrets::Credential::ProfileServer(id),
                &f.prov_server
            ),
            f.prov_user,
            super::secrets::seal_in(
                super::secrets::Credential::ProfilePassword(id),
                &f.prov_password
            ),
            f.polling.as_str(),
            f.boot_server_option,
            f.option60_type,
            f.quick_setup,
            f.language,
            now_secs()
        ],
    )?;
    if changed == 0 {
        return Err(Error::not_found(format!("profile {id}")));
    }
    replace_children(conn, id, f, files)
}

fn replace_children(
    conn: &Connection,
    id: i64,
    f: &ProfileFields,
    files: Option<&[ProfileFile]>,
) -> Result<()> {
    // Several statements: all or none (crash safety).
    super::atomic(conn, |conn| {
        conn.execute("DELETE FROM profile_firmware WHERE profile_id = ?1", [id])?;
        for (family, version) in &f.software {
            conn.execute(
                "INSERT INTO profile_firmware (profile_id, family, version) VALUES (?1, ?2, ?3)",
                params![id, family.name(), version],
            )?;
        }
        if let Some(files) = files {
            conn.execute("DELETE FROM profile_files WHERE profile_id = ?1", [id])?;
            for (pos, file) in files.iter().enumerate() {
                conn.execute(
                    "INSERT INTO profile_files (profile_id, position, file_name, content, sha256)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        id,
                        pos as i64,
                        file.file_name,
                        super::secrets::seal_file(id, pos as i64, &file.file_name, &file.content),
                        file.sha256
                    ],
                )?;
            }
        }
        Ok(())
    })
}

/// How many devices use a profile.
pub fn count_profile_devices(conn: &Connection, id: i64) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM devices WHERE profile_id = ?1",
        [id],
        |r| r.get(0),
    )?)
}

/// Deletes a profile; refused while devices use it, saying how many.
pub fn delete_profile(conn: &Connection, id: i64, name: &str) -> Result<()> {
    // Several statements: all or none (crash safety).
    super::atomic(conn, |conn| {
        let n = count_profile_devices(conn, id)?;
        if n > 0 {
            return Err(Error::Conflict(format!(
                "profile `{name}` is used by {n} device{}; associate them with another profile first",
                if n == 1 { "" } else { "s" }
            )));
        }
        conn.execute(
            "UPDATE accounts SET default_profile_id = NULL WHERE default_profile_id = ?1",
            [id],
        )?;
        conn.execute("DELETE FROM profiles WHERE id = ?1", [id])?;
        Ok(())
    })
}
