//! Queries on `device_sip`: the address each device proved is its own (the only address
//! SIP check-sync goes to), an admin's fallback address, and the latest SIP answer.

use std::net::IpAddr;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

/// What is known of where a device listens for SIP.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeviceSip {
    /// The source address of its latest proven request, and when it was seen there.
    pub proven_ip: Option<IpAddr>,
    pub proven_at: Option<i64>,
    /// An admin's address and port, used only when no proven address is known.
    pub override_ip: Option<IpAddr>,
    pub override_port: Option<u16>,
    /// Its latest SIP answer and status.
    pub answered_at: Option<i64>,
    pub answer_status: Option<u16>,
}

pub fn find_device_sip(conn: &Connection, device_id: i64) -> Result<Option<DeviceSip>> {
    Ok(conn
        .prepare_cached(
            "SELECT proven_ip, proven_at, override_ip, override_port, answered_at, answer_status
             FROM device_sip WHERE device_id = ?1",
        )?
        .query_row([device_id], |r| {
            let ip = |s: Option<String>| s.and_then(|s| s.parse().ok());
            Ok(DeviceSip {
                proven_ip: ip(r.get(0)?),
                proven_at: r.get(1)?,
                override_ip: ip(r.get(2)?),
                override_port: r.get(3)?,
                answered_at: r.get(4)?,
                answer_status: r.get(5)?,
            })
        })
        .optional()?)
}

/// Records that the device proved itself from `ip` at `at` (only a proven request may call
/// this: `actions::provisioning`).
pub fn record_proven(conn: &Connection, device_id: i64, ip: IpAddr, at: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO device_sip (device_id, proven_ip, proven_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (device_id) DO UPDATE SET proven_ip = excluded.proven_ip,
             proven_at = excluded.proven_at",
    )?
    .execute(params![device_id, ip.to_string(), at])?;
    Ok(())
}

/// Sets (or with `None` clears) the admin's fallback address.
pub fn set_override(
    conn: &Connection,
    device_id: i64,
    addr: Option<(IpAddr, Option<u16>)>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO device_sip (device_id, override_ip, override_port) VALUES (?1, ?2, ?3)
         ON CONFLICT (device_id) DO UPDATE SET override_ip = excluded.override_ip,
             override_port = excluded.override_port",
    )?
    .execute(params![
        device_id,
        addr.map(|(ip, _)| ip.to_string()),
        addr.and_then(|(_, port)| port)
    ])?;
    Ok(())
}

/// Records a SIP answer from the device (online evidence).
pub fn record_answer(conn: &Connection, device_id: i64, status: u16, at: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO device_sip (device_id, answered_at, answer_status) VALUES (?1, ?2, ?3)
         ON CONFLICT (device_id) DO UPDATE SET answered_at = excluded.answered_at,
             answer_status = excluded.answer_status",
    )?
    .execute(params![device_id, at, status])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proof_override_and_answers_are_kept_apart() {
        let mut conn = Connection::open_in_memory().expect("db");
        crate::db::migrate(&mut conn).expect("migrate");
        conn.execute(
            "INSERT INTO accounts (id, slug, name, service_key, is_default, created_at)
             VALUES (50, 'a', 'A', 'k', 0, 0)",
            [],
        )
        .ok();
        conn.execute_batch("PRAGMA foreign_keys = OFF")
            .expect("pragma");
        conn.execute(
            "INSERT INTO devices (id, mac, account_id) VALUES (7, '0004f2000007', 50)",
            [],
        )
        .ok();
        assert_eq!(find_device_sip(&conn, 7).expect("find"), None);
        record_proven(&conn, 7, "10.0.0.7".parse().expect("ip"), 100).expect("proven");
        set_override(
            &conn,
            7,
            Some(("10.0.0.9".parse().expect("ip"), Some(5062))),
        )
        .expect("set");
        record_answer(&conn, 7, 200, 120).expect("answer");
        let s = find_device_sip(&conn, 7).expect("find").expect("row");
        assert_eq!(s.proven_ip, Some("10.0.0.7".parse().expect("ip")));
        assert_eq!(s.proven_at, Some(100));
        assert_eq!(s.override_port, Some(5062));
        assert_eq!(s.answer_status, Some(200));
    }
}
