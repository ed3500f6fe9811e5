//! Stored data the state machine's rules refuse today (`domain::machine`, I6): profile
//! files, policies and custom variables saved before a rule existed that set a parameter
//! only zerotouch may set. Such data keeps its place (nothing is deleted behind an admin's
//! back) but is never served with the owned parameter — the renderers strip it — and is
//! flagged: in the log at every start, and here for a report.

use rusqlite::Connection;

use crate::domain::machine;
use crate::domain::xml;
use crate::error::Result;

/// One stored item that names an owned parameter: where, and which parameter.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OwnedInStore {
    /// `profile office, file site.cfg, line 3`, `policy site:hq`, `custom variable X`.
    pub place: String,
    pub parameter: String,
}

/// Every stored profile file, policy and custom variable that sets an owned parameter.
pub fn owned_in_store(conn: &Connection) -> Result<Vec<OwnedInStore>> {
    let mut out = Vec::new();
    let mut stmt = conn.prepare(
        "SELECT a.slug, p.name, f.file_name, f.content, f.profile_id, f.position
         FROM profile_files f
         JOIN profiles p ON p.id = f.profile_id JOIN accounts a ON a.id = p.account_id
         ORDER BY a.slug, p.name, f.position",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, Vec<u8>>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, i64>(5)?,
        ))
    })?;
    for row in rows {
        let (account, profile, file, stored, profile_id, position) = row?;
        let content = crate::db::secrets::open_file(profile_id, position, stored)?;
        let text = String::from_utf8_lossy(&content);
        // Templates are read with sample values, as they were checked when stored.
        let sample = crate::domain::template::check_form(&text);
        let Ok(found) = xml::parse_params(&file, sample.as_bytes()) else {
            continue;
        };
        out.extend(
            found
                .into_iter()
                .filter(|p| machine::owned(&p.name))
                .map(|p| OwnedInStore {
                    place: format!(
                        "account {account}, profile {profile}, file {file}, line {}",
                        p.line
                    ),
                    parameter: p.name,
                }),
        );
    }
    let mut stmt = conn.prepare(
        "SELECT a.slug, p.scope, p.parameter FROM policies p
         JOIN accounts a ON a.id = p.account_id ORDER BY a.slug, p.id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (account, scope, parameter) = row?;
        if machine::owned(&parameter) {
            out.push(OwnedInStore {
                place: format!("account {account}, {scope} policy"),
                parameter,
            });
        }
    }
    for (name, value) in crate::db::templates::list_custom_variables(conn)? {
        if machine::owned(value.trim()) {
            out.push(OwnedInStore {
                place: format!("custom variable {name}"),
                parameter: value.trim().to_string(),
            });
        }
    }
    Ok(out)
}

/// Logs every stored item that sets an owned parameter (at start).
pub fn flag_owned_in_store(conn: &Connection) -> Result<usize> {
    let found = owned_in_store(conn)?;
    for f in &found {
        log::warn!(
            "{} sets {}, which only zerotouch sets: it is served without it; remove it \
             (`zerotouch lint` shows the line)",
            f.place,
            f.parameter
        );
    }
    Ok(found.len())
}

/// Stored provisioning-server addresses that name no protocol (profiles' and devices'),
/// each with its place: entered before addresses had to name one, they send phones to
/// their own Server Type (FTP at the factory).
pub fn addresses_without_protocol(conn: &Connection) -> Result<Vec<String>> {
    use crate::db::secrets::{Credential, open_in};
    use crate::domain::provserver::{ServerUrl, mask_password};
    let no_protocol =
        |address: &str| ServerUrl::parse(address).is_ok_and(|u| u.server_type.is_none());
    let mut out = Vec::new();
    let mut stmt = conn.prepare(
        "SELECT p.id, a.slug, p.name, p.prov_server FROM profiles p
         JOIN accounts a ON a.id = p.account_id
         WHERE p.prov_server <> '' ORDER BY a.slug, p.name",
    )?;
    let rows: Vec<(i64, String, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (id, account, name, stored) in rows {
        let address = open_in(Credential::ProfileServer(id), &stored)?;
        if no_protocol(&address) {
            out.push(format!(
                "profile {name} (account {account}): {}",
                mask_password(&address)
            ));
        }
    }
    let mut stmt = conn
        .prepare("SELECT id, mac, prov_server FROM devices WHERE prov_server <> '' ORDER BY mac")?;
    let rows: Vec<(i64, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (id, mac, stored) in rows {
        let address = open_in(Credential::DeviceServer(id), &stored)?;
        if no_protocol(&address) {
            out.push(format!("device {mac}: {}", mask_password(&address)));
        }
    }
    Ok(out)
}

/// Logs every stored address without a protocol (at start).
pub fn flag_addresses_without_protocol(conn: &Connection) -> Result<usize> {
    let found = addresses_without_protocol(conn)?;
    for f in &found {
        log::warn!(
            "{f}: this provisioning-server address names no protocol; phones are sent it with \
             the protocol they reach this server with (without one they would use their own \
             Server Type, FTP at the factory): edit it to https://… or http://…"
        );
    }
    Ok(found.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_owned_parameters_are_found_with_their_place() {
        let conn = crate::db::open_in_memory().expect("db");
        let a = crate::actions::accounts::default_account(&conn).expect("account");
        conn.execute_batch(&format!(
            "INSERT INTO profiles (id, account_id, name, created_at, updated_at)
                 VALUES (1, {id}, 'legacy', 1, 1);
             INSERT INTO profile_files (profile_id, position, file_name, content, sha256)
                 VALUES (1, 0, 'site.cfg',
                   CAST('<c a.b=\"1\"
  device.prov.user=\"x\" device.prov.password=\"y\"/>' AS BLOB), 'x');
             INSERT INTO policies (account_id, scope, scope_id, parameter, value, created_at, updated_at)
                 VALUES ({id}, 'account', {id}, 'device.prov.serverName', 'elsewhere', 1, 1);
             INSERT INTO custom_variables (name, value, updated_at)
                 VALUES ('PROV', 'device.set', 1);",
            id = a.id.0
        ))
        .expect("legacy rows");
        let found = owned_in_store(&conn).expect("scan");
        conn.execute_batch("UPDATE profiles SET prov_server = 'prov.example.com/cfg' WHERE id = 1")
            .expect("legacy address");
        assert_eq!(
            addresses_without_protocol(&conn).expect("addresses"),
            ["profile legacy (account default): prov.example.com/cfg"]
        );
        let names: Vec<&str> = found.iter().map(|f| f.parameter.as_str()).collect();
        assert_eq!(
            names,
            [
                "device.prov.user",
                "device.prov.password",
                "device.prov.serverName",
                "device.set"
            ]
        );
        assert!(
            found[0].place.contains("file site.cfg, line 2"),
            "{found:?}"
        );
    }
}
