//! Queries on `devices`, `device_lines`, `device_prov_state` and `device_activity`.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::now_secs;
use crate::domain::device::{Device, DeviceVars, Line, NewDevice, VendorExtensions};
use crate::domain::mac::Mac;
use crate::domain::provstate::ParamState;
use crate::error::{Error, Result};

const COLUMNS: &str = "d.id, d.account_id, d.mac, d.serial, d.vendor_model, d.profile_id, p.name, \
     d.sip_server, d.outbound_proxy, d.prov_server, d.prov_user, d.prov_password, d.polling, \
     d.auto_associated";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Device> {
    let mac: String = r.get(2)?;
    let id: i64 = r.get(0)?;
    Ok(Device {
        id,
        account_id: r.get(1)?,
        // The CHECK constraint guarantees 12 lowercase characters; hex is checked on insert.
        mac: Mac::from_bare(&mac).unwrap_or(crate::domain::mac::ZERO),
        serial: r.get(3)?,
        vendor_model: r.get(4)?,
        profile_id: r.get(5)?,
        profile_name: r.get(6)?,
        ext: VendorExtensions {
            sip_server: r.get(7)?,
            outbound_proxy: r.get(8)?,
            prov_server: super::secrets::open_in_sql(
                super::secrets::Credential::DeviceServer(id),
                r.get(9)?,
            )?,
            prov_user: r.get(10)?,
            prov_password: super::secrets::open_in_sql(
                super::secrets::Credential::DevicePassword(id),
                r.get(11)?,
            )?,
            polling: r.get(12)?,
        },
        lines: Vec::new(),
        auto_associated: r.get(13)?,
        vars: DeviceVars::default(),
    })
}

fn load_lines(conn: &Connection, mut d: Device) -> Result<Device> {
    let mut stmt = conn.prepare_cached(
        "SELECT line, auth_user_id, auth_password, label, display_name, extension, first_name,
                last_name
         FROM device_lines WHERE device_id = ?1 ORDER BY line",
    )?;
    d.lines = stmt
        .query_map([d.id], |r| {
            Ok(Line {
                line: r.get(0)?,
                auth_user_id: r.get(1)?,
                auth_password: super::secrets::open_in_sql(
                    super::secrets::Credential::Line {
                        device_id: d.id,
                        line: r.get(0)?,
                    },
                    r.get(2)?,
                )?,
                label: r.get(3)?,
                display_name: r.get(4)?,
                extension: r.get(5)?,
                first_name: r.get(6)?,
                last_name: r.get(7)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    d.vars = find_device_vars(conn, d.id)?.unwrap_or_default();
    Ok(d)
}

/// A device's template values, if any were set.
pub fn find_device_vars(conn: &Connection, device_id: i64) -> Result<Option<DeviceVars>> {
    Ok(conn
        .prepare_cached(
            "SELECT label, tl_timezone, tl_timezone_name, default_parkext, override_attrs
             FROM device_vars WHERE device_id = ?1",
        )?
        .query_row([device_id], |r| {
            Ok(DeviceVars {
                label: r.get(0)?,
                tl_timezone: r.get(1)?,
                tl_timezone_name: r.get(2)?,
                default_parkext: r.get(3)?,
                override_attrs: r.get(4)?,
            })
        })
        .optional()?)
}

/// Stores a device's template values (validated by the caller); all empty removes the row.
pub fn upsert_device_vars(conn: &Connection, device_id: i64, v: &DeviceVars) -> Result<()> {
    // Several statements: all or none (crash safety).
    super::atomic(conn, |conn| {
        if *v == DeviceVars::default() {
            conn.execute("DELETE FROM device_vars WHERE device_id = ?1", [device_id])?;
            return Ok(());
        }
        conn.execute(
        "INSERT INTO device_vars (device_id, label, tl_timezone, tl_timezone_name, default_parkext,
                                  override_attrs, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (device_id) DO UPDATE SET label = excluded.label,
             tl_timezone = excluded.tl_timezone, tl_timezone_name = excluded.tl_timezone_name,
             default_parkext = excluded.default_parkext, override_attrs = excluded.override_attrs,
             updated_at = excluded.updated_at",
        params![
            device_id,
            v.label,
            v.tl_timezone,
            v.tl_timezone_name,
            v.default_parkext,
            v.override_attrs,
            now_secs()
        ],
    )?;
        Ok(())
    })
}

/// Removes one SIP line; returns whether it existed.
pub fn delete_line(conn: &Connection, device_id: i64, line: u32) -> Result<bool> {
    Ok(conn.execute(
        "DELETE FROM device_lines WHERE device_id = ?1 AND line = ?2",
        params![device_id, line],
    )? == 1)
}

/// The device with this MAC, in any account, with its lines.
pub fn find_device_by_mac(conn: &Connection, mac: &Mac) -> Result<Option<Device>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM devices d LEFT JOIN profiles p ON p.id = d.profile_id WHERE d.mac = ?1"
    );
    match conn
        .prepare_cached(&sql)?
        .query_row([mac.as_str()], from_row)
        .optional()?
    {
        Some(d) => Ok(Some(load_lines(conn, d)?)),
        None => Ok(None),
    }
}

/// Associates a validated device with a profile. A MAC only seen so far (unassociated, in
/// the same account) becomes associated; a MAC associated already, or known to another
/// account, is a conflict. Run inside a transaction.
pub fn insert_device(
    conn: &Connection,
    account_id: i64,
    d: &NewDevice,
    profile_id: i64,
    auto: bool,
) -> Result<i64> {
    let now = now_secs();
    let existing: Option<(i64, i64, Option<i64>)> = conn
        .query_row(
            "SELECT id, account_id, profile_id FROM devices WHERE mac = ?1",
            [d.mac.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let id = match existing {
        Some((_, other, _)) if other != account_id => {
            return Err(Error::Conflict(format!(
                "MAC {} is already associated elsewhere",
                d.mac
            )));
        }
        Some((_, _, Some(_))) => {
            return Err(Error::Conflict(format!(
                "MAC {} is already associated",
                d.mac
            )));
        }
        Some((id, _, None)) => {
            conn.execute(
                "UPDATE devices SET serial = ?2, vendor_model = ?3, profile_id = ?4, sip_server = ?5,
                        outbound_proxy = ?6, prov_server = ?7, prov_user = ?8, prov_password = ?9,
                        polling = ?10, auto_associated = ?11, associated_at = ?12, updated_at = ?12
                 WHERE id = ?1",
                params![
                    id,
                    d.serial,
                    d.vendor_model,
                    profile_id,
                    d.ext.sip_server,
                    d.ext.outbound_proxy,
                    super::secrets::seal_in(super::secrets::Credential::DeviceServer(id), &d.ext.prov_server),
                    d.ext.prov_user,
                    super::secrets::seal_in(super::secrets::Credential::DevicePassword(id), &d.ext.prov_password),
                    d.ext.polling,
                    auto,
                    now
                ],
            )?;
            id
        }
        None => {
            conn.execute(
                "INSERT INTO devices (account_id, mac, serial, vendor_model, profile_id, sip_server,
                        outbound_proxy, prov_server, prov_user, prov_password, polling, auto_associated,
                        associated_at, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13, ?13)",
                params![
                    account_id,
                    d.mac.as_str(),
                    d.serial,
                    d.vendor_model,
                    profile_id,
                    d.ext.sip_server,
                    d.ext.outbound_proxy,
                    super::secrets::seal_unbound(super::secrets::Credential::DeviceServer(0), &d.ext.prov_server),
                    d.ext.prov_user,
                    super::secrets::seal_unbound(super::secrets::Credential::DevicePassword(0), &d.ext.prov_password),
                    d.ext.polling,
                    auto,
                    now
                ],
            )?;
            let id = conn.last_insert_rowid();
            if super::assoc::has_device_secret(d) {
                super::secrets::bind_inserted(conn, "devices", id)?;
            }
            id
        }
    };
    conn.execute("DELETE FROM device_lines WHERE device_id = ?1", [id])?;
    if !d.line1.is_empty() {
        upsert_line(conn, id, &d.line1)?;
    }
    Ok(id)
}

/// Updates an associated device's fields, extensions and profile (import, association
/// changes). Lines are replaced separately. Run inside a transaction. Returns false if
/// there is no device `id`.
pub fn update_device(conn: &Connection, id: i64, d: &NewDevice, profile_id: i64) -> Result<bool> {
    let n = conn.execute(
        "UPDATE devices SET serial = ?2, vendor_model = ?3, profile_id = ?4, sip_server = ?5,
                outbound_proxy = ?6, prov_server = ?7, prov_user = ?8, prov_password = ?9,
                polling = ?10, updated_at = ?11
         WHERE id = ?1",
        params![
            id,
            d.serial,
            d.vendor_model,
            profile_id,
            d.ext.sip_server,
            d.ext.outbound_proxy,
            super::secrets::seal_in(
                super::secrets::Credential::DeviceServer(id),
                &d.ext.prov_server
            ),
            d.ext.prov_user,
            super::secrets::seal_in(
                super::secrets::Credential::DevicePassword(id),
                &d.ext.prov_password
            ),
            d.ext.polling,
            now_secs()
        ],
    )?;
    Ok(n == 1)
}

/// Replaces every SIP line of a device.
pub fn replace_lines(conn: &Connection, device_id: i64, lines: &[Line]) -> Result<()> {
    conn.execute("DELETE FROM device_lines WHERE device_id = ?1", [device_id])?;
    for l in lines.iter().filter(|l| !l.is_empty()) {
        upsert_line(conn, device_id, l)?;
    }
    Ok(())
}

/// Inserts or replaces one SIP line.
pub fn upsert_line(conn: &Connection, device_id: i64, l: &Line) -> Result<()> {
    // Cached: bulk imports call this once per line.
    conn.prepare_cached(
        "INSERT INTO device_lines (device_id, line, auth_user_id, auth_password, label, display_name,
                                   extension, first_name, last_name)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (device_id, line) DO UPDATE SET auth_user_id = excluded.auth_user_id,
             auth_password = excluded.auth_password, label = excluded.label,
             display_name = excluded.display_name, extension = excluded.extension,
             first_name = excluded.first_name, last_name = excluded.last_name",
    )?
    .execute(params![
            device_id,
            l.line,
            l.auth_user_id,
            super::secrets::seal_in(
                super::secrets::Credential::Line {
                    device_id,
                    line: i64::from(l.line),
                },
                &l.auth_password
            ),
            l.label,
            l.display_name,
            l.extension,
            l.first_name,
            l.last_name
    ])?;
    Ok(())
}

/// Records a MAC seen but not associated (synchronously: it is a state change). Returns
/// false when the MAC is already known. The cap on such rows is the caller's to enforce
/// (`count_unassociated` once, then a counter): counting here would make every first
/// sighting cost a scan of all the others.
pub fn insert_unassociated(conn: &Connection, account_id: i64, mac: &Mac) -> Result<bool> {
    let now = now_secs();
    let n = conn
        .prepare_cached(
            "INSERT INTO devices (account_id, mac, serial, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (mac) DO NOTHING",
        )?
        .execute(params![account_id, mac.as_str(), mac.upper(), now])?;
    Ok(n == 1)
}

/// How many MACs are known but not associated.
pub fn count_unassociated(conn: &Connection) -> Result<u64> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM devices WHERE profile_id IS NULL",
        [],
        |r| r.get(0),
    )?;
    Ok(n.max(0) as u64)
}

/// Whether the device is sent to another provisioning server (its own `prov_server` or
/// its profile's): the inventory's `external_server`, for one device.
pub fn external_server(conn: &Connection, device_id: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT (d.prov_server <> '' OR coalesce(p.prov_server, '') <> '')
             FROM devices d LEFT JOIN profiles p ON p.id = d.profile_id WHERE d.id = ?1",
        )?
        .query_row([device_id], |r| r.get::<_, bool>(0))
        .optional()?
        .unwrap_or(false))
}

/// Deletes a device and everything recorded about it.
pub fn delete_device(conn: &Connection, mac: &Mac) -> Result<()> {
    // Several statements: all or none (crash safety).
    super::atomic(conn, |conn| {
        let n = conn.execute("DELETE FROM devices WHERE mac = ?1", [mac.as_str()])?;
        if n == 0 {
            return Err(Error::not_found(format!("device {mac}")));
        }
        conn.execute("DELETE FROM uploads WHERE mac = ?1", [mac.as_str()])?;
        Ok(())
    })
}

/// A row of the device list.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceSummary {
    pub mac: String,
    pub serial: String,
    pub profile: Option<String>,
    pub last_seen: Option<i64>,
    pub access_count: i64,
    pub model: String,
    pub firmware: String,
    pub last_ip: String,
}

/// Devices of an account, associated or only seen, by MAC.
pub fn list_devices(
    conn: &Connection,
    account_id: i64,
    unassociated_only: bool,
) -> Result<Vec<DeviceSummary>> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.mac, d.serial, p.name, a.last_seen, coalesce(a.access_count, 0),
                coalesce(a.ua_model, ''), coalesce(a.firmware, ''), coalesce(a.last_ip, '')
         FROM devices d
         LEFT JOIN profiles p ON p.id = d.profile_id
         LEFT JOIN device_activity a ON a.device_id = d.id
         WHERE d.account_id = ?1 AND (?2 = 0 OR d.profile_id IS NULL)
         ORDER BY d.mac",
    )?;
    let rows = stmt.query_map(params![account_id, unassociated_only], |r| {
        Ok(DeviceSummary {
            mac: r.get(0)?,
            serial: r.get(1)?,
            profile: r.get(2)?,
            last_seen: r.get(3)?,
            access_count: r.get(4)?,
            model: r.get(5)?,
            firmware: r.get(6)?,
            last_ip: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// What the server has observed about a device.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Activity {
    pub first_seen: i64,
    pub last_seen: i64,
    /// Requests served: every answer but a 401 (challenges and refused credentials).
    pub access_count: i64,
    pub last_ip: String,
    pub last_user_agent: String,
    pub ua_family: String,
    pub ua_model: String,
    pub firmware: String,
    pub last_sync_at: Option<i64>,
    pub last_auth_ok_at: Option<i64>,
    pub auth_failures: i64,
}

pub fn find_activity(conn: &Connection, device_id: i64) -> Result<Option<Activity>> {
    Ok(conn
        .prepare_cached(
            "SELECT first_seen, last_seen, access_count, last_ip, last_user_agent, ua_family, ua_model,
                    firmware, last_sync_at, last_auth_ok_at, auth_failures
             FROM device_activity WHERE device_id = ?1",
        )?
        .query_row([device_id], |r| {
            Ok(Activity {
                first_seen: r.get(0)?,
                last_seen: r.get(1)?,
                access_count: r.get(2)?,
                last_ip: r.get(3)?,
                last_user_agent: r.get(4)?,
                ua_family: r.get(5)?,
                ua_model: r.get(6)?,
                firmware: r.get(7)?,
                last_sync_at: r.get(8)?,
                last_auth_ok_at: r.get(9)?,
                auth_failures: r.get(10)?,
            })
        })
        .optional()?)
}

/// SQL for associated devices that were seen, but never got a successful answer over
/// HTTPS within their kept access log.
const HTTP_ONLY: &str = "FROM devices d JOIN device_activity a ON a.device_id = d.id
     WHERE d.profile_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM access_log l
                       WHERE l.mac = d.mac AND l.secure = 1 AND l.status < 400)";

/// How many associated devices have only been seen over plain HTTP.
pub fn count_http_only_devices(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row(&format!("SELECT count(*) {HTTP_ONLY}"), [], |r| r.get(0))?)
}

/// MACs and last-seen times of the associated devices only seen over plain HTTP.
pub fn list_http_only_devices(conn: &Connection, limit: u32) -> Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT d.mac, a.last_seen {HTTP_ONLY} ORDER BY d.mac LIMIT ?1"
    ))?;
    let rows = stmt.query_map([limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The provisioning state of a device's platform parameters.
pub fn load_prov_state(conn: &Connection, device_id: i64) -> Result<BTreeMap<String, ParamState>> {
    let mut stmt = conn.prepare_cached(
        "SELECT param, confirmed, delivered, deliveries, confirmed_by, gave_up_at
         FROM device_prov_state WHERE device_id = ?1",
    )?;
    let rows = stmt.query_map([device_id], |r| {
        let param: String = r.get(0)?;
        let open = |column: &str, v: Option<String>| -> rusqlite::Result<Option<String>> {
            match v {
                Some(v) if super::secrets::is_sealed(&v) => {
                    let row = super::secrets::prov_state_row(device_id, &param);
                    super::secrets::open_at_sql(&state_place(column, &row), v).map(Some)
                }
                v => Ok(v),
            }
        };
        let state = ParamState {
            confirmed: open("confirmed", r.get(1)?)?,
            delivered: open("delivered", r.get(2)?)?,
            deliveries: r.get(3)?,
            confirmed_by: r.get(4)?,
            gave_up: r.get::<_, Option<i64>>(5)?.is_some(),
        };
        Ok((param, state))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Where a provisioning-state value lives (its associated data when sealed).
fn state_place<'a>(column: &'a str, row: &'a str) -> super::secrets::Place<'a> {
    super::secrets::Place {
        table: "device_prov_state",
        column,
        row,
    }
}

/// A secret parameter's stored provisioning state, opened: (delivered as stored, delivered,
/// confirmed).
type SecretState = (Option<String>, Option<String>, Option<String>);

fn secret_state(conn: &Connection, device_id: i64, param: &str) -> Result<SecretState> {
    let stored: Option<(Option<String>, Option<String>)> = conn
        .prepare_cached(
            "SELECT delivered, confirmed FROM device_prov_state WHERE device_id = ?1 AND param = ?2",
        )?
        .query_row(params![device_id, param], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((delivered, confirmed)) = stored else {
        return Ok((None, None, None));
    };
    let row = super::secrets::prov_state_row(device_id, param);
    let open = |column: &str, v: &Option<String>| -> Result<Option<String>> {
        v.as_deref()
            .map(|v| super::secrets::open_at(&state_place(column, &row), v))
            .transpose()
    };
    Ok((
        delivered.clone(),
        open("delivered", &delivered)?,
        open("confirmed", &confirmed)?,
    ))
}

/// Records that pending values were delivered in a generated file: a new value starts its
/// count of deliveries at one; the same value again adds one. A value delivered
/// `give_up_after` times without being confirmed is given up (`gave_up_at`), and the names
/// given up now are returned.
pub fn mark_delivered(
    conn: &Connection,
    device_id: i64,
    values: &[(String, String)],
    give_up_after: i64,
) -> Result<Vec<String>> {
    // Several statements: all or none (crash safety).
    super::atomic(conn, |conn| {
        let now = now_secs();
        let mut stmt = conn.prepare_cached(
            "INSERT INTO device_prov_state (device_id, param, delivered, delivered_at, deliveries)
             VALUES (?1, ?2, ?3, ?4, 1)
             ON CONFLICT (device_id, param) DO UPDATE SET
                 deliveries = CASE WHEN delivered IS excluded.delivered THEN deliveries + 1
                                   ELSE 1 END,
                 gave_up_at = CASE WHEN delivered IS excluded.delivered THEN gave_up_at END,
                 delivered = excluded.delivered, delivered_at = excluded.delivered_at",
        )?;
        // ?5: whether the confirmed value differs from the delivered one, when that was
        // decided in clear (secret values are sealed, and sealed values never compare equal).
        let mut give_up = conn.prepare_cached(
            "UPDATE device_prov_state SET gave_up_at = ?3
             WHERE device_id = ?1 AND param = ?2 AND deliveries >= ?4 AND gave_up_at IS NULL
               AND CASE WHEN ?5 IS NULL THEN confirmed IS NOT delivered ELSE ?5 END",
        )?;
        let mut gave_up = Vec::new();
        for (param, value) in values {
            let (stored, differs) = if crate::domain::polycom::params::is_secret(param) {
                // The same value again keeps its sealed form, so the count goes on.
                let (as_stored, delivered, confirmed) = secret_state(conn, device_id, param)?;
                let stored = match as_stored {
                    Some(s) if delivered.as_deref() == Some(value.as_str()) => s,
                    _ => {
                        let row = super::secrets::prov_state_row(device_id, param);
                        super::secrets::seal_at(&state_place("delivered", &row), value)
                    }
                };
                (stored, Some(confirmed.as_deref() != Some(value.as_str())))
            } else {
                (value.clone(), None)
            };
            stmt.execute(params![device_id, param, stored, now])?;
            if give_up.execute(params![device_id, param, now, give_up_after, differs])? > 0 {
                gave_up.push(param.clone());
            }
        }
        Ok(gave_up)
    })
}

/// Records values the device is now known to hold, with how that is known (`proof`,
/// `request`, `reboot`, `admin`).
pub fn confirm(conn: &Connection, device_id: i64, values: &[(String, String, &str)]) -> Result<()> {
    // Several statements: all or none (crash safety).
    super::atomic(conn, |conn| {
        let now = now_secs();
        let mut stmt = conn.prepare_cached(
            "INSERT INTO device_prov_state (device_id, param, confirmed, confirmed_at, confirmed_by)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (device_id, param) DO UPDATE SET confirmed = excluded.confirmed,
                 confirmed_at = excluded.confirmed_at, confirmed_by = excluded.confirmed_by,
                 gave_up_at = NULL",
        )?;
        for (param, value, by) in values {
            let stored = if crate::domain::polycom::params::is_secret(param) {
                let row = super::secrets::prov_state_row(device_id, param);
                super::secrets::seal_at(&state_place("confirmed", &row), value)
            } else {
                value.clone()
            };
            stmt.execute(params![device_id, param, stored, now, by])?;
        }
        Ok(())
    })
}

/// Every device of an account with what tells its family: `(mac, vendor model declared,
/// family seen in its requests, model of its last User-Agent)`, by MAC.
pub fn list_device_families(
    conn: &Connection,
    account_id: i64,
) -> Result<Vec<(String, String, String, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.mac, d.vendor_model, coalesce(s.family, ''), coalesce(a.ua_model, '')
         FROM devices d
         LEFT JOIN device_sync s ON s.device_id = d.id
         LEFT JOIN device_activity a ON a.device_id = d.id
         WHERE d.account_id = ?1
         ORDER BY d.mac",
    )?;
    let rows = stmt.query_map([account_id], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{accounts, open_in_memory, profiles};
    use crate::domain::device::DeviceInput;
    use crate::domain::profile::ProfileFields;

    fn setup() -> (Connection, i64, i64) {
        let conn = open_in_memory().expect("db");
        let (a, _) = accounts::ensure_default(&conn).expect("account");
        let f = ProfileFields {
            name: "profile1".into(),
            vendor_model: "Polycom_UCS_Device".into(),
            ..Default::default()
        };
        let pid = profiles::insert_profile(&conn, a.id.0, &f, &[]).expect("profile");
        (conn, a.id.0, pid)
    }

    fn new_device(mac: &str) -> NewDevice {
        DeviceInput {
            mac: mac.into(),
            profile: "profile1".into(),
            ..Default::default()
        }
        .validate()
        .expect("valid")
    }

    #[test]
    fn an_unassociated_mac_becomes_associated_and_a_second_association_conflicts() {
        let (conn, account, pid) = setup();
        let mac = Mac::from_bare("0004f2000001").expect("mac");
        assert!(insert_unassociated(&conn, account, &mac).expect("seen"));
        assert!(!insert_unassociated(&conn, account, &mac).expect("seen twice"));
        insert_device(&conn, account, &new_device("0004f2000001"), pid, false).expect("associate");
        let d = find_device_by_mac(&conn, &mac)
            .expect("find")
            .expect("present");
        assert_eq!(d.profile_name.as_deref(), Some("profile1"));
        let err = insert_device(&conn, account, &new_device("0004f2000001"), pid, false)
            .expect_err("dup");
        assert!(matches!(err, Error::Conflict(_)));
    }

    #[test]
    fn unassociated_macs_are_counted() {
        let (conn, account, _) = setup();
        for i in 0..3 {
            let mac = Mac::from_bare(&format!("0004f200000{i}")).expect("mac");
            assert!(insert_unassociated(&conn, account, &mac).expect("insert"));
        }
        assert_eq!(count_unassociated(&conn).expect("count"), 3);
    }

    #[test]
    fn a_used_profile_cannot_be_deleted() {
        let (conn, account, pid) = setup();
        insert_device(&conn, account, &new_device("0004f2000009"), pid, false).expect("associate");
        let err = profiles::delete_profile(&conn, pid, "profile1").expect_err("in use");
        assert!(err.to_string().contains("1 device"), "{err}");
    }
}
