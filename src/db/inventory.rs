//! Bulk reads for the inventory, Auto-Sync progress and lock-out counts: one row per device
//! of an account with everything the rules need, and check-ins per time bucket.

use std::collections::HashMap;

use rusqlite::{Connection, params};
use serde::Serialize;

use super::credentials::DeviceSync;
use crate::domain::autosync::Readmit;
use crate::domain::polycom::models::Family;
use crate::error::Result;

/// One device of an account with its profile, sync state and activity.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeviceRow {
    pub id: i64,
    pub mac: String,
    pub serial: String,
    pub vendor_model: String,
    pub profile: Option<String>,
    pub profile_vendor_model: String,
    /// The profile's or the device's provisioning server (another server), if any.
    pub external_server: bool,
    pub auto_associated: bool,
    pub associated_at: Option<i64>,
    pub sync: DeviceSync,
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    pub last_auth_ok_at: Option<i64>,
    pub last_sync_at: Option<i64>,
    /// The protocol of its latest request (`http`, `https`, `tftp`), empty if unknown.
    pub protocol: String,
    pub ua_model: String,
    pub firmware: String,
    /// The newest access-log time (ms) of a request with wrong credentials.
    pub last_bad_auth_ms: Option<i64>,
    pub site: Option<String>,
    /// Groups in precedence order.
    pub groups: Vec<String>,
    /// The profile's software version for the device's family, if it names one.
    pub profile_firmware: Option<String>,
    /// Its latest SIP answer (`device_sip.answered_at`, seconds): online evidence.
    pub sip_answered_at: Option<i64>,
    /// Line 1's display name, label and SIP user ID (empty when unset).
    pub line_name: String,
    pub line_label: String,
    pub sip_user: String,
    /// First and last name of its reference ID's person.
    pub person: String,
    /// When it first reported the firmware it runs now (Unix seconds).
    pub firmware_since: Option<i64>,
}

/// Every device of an account (associated or only seen), by MAC.
pub fn list_device_rows(conn: &Connection, account_id: i64) -> Result<Vec<DeviceRow>> {
    let mut out = Vec::new();
    for_each_device_row(conn, account_id, |d| {
        out.push(d);
        Ok(())
    })?;
    Ok(out)
}

/// Calls `f` with every device of an account, by MAC, one row at a time: a million devices
/// are never in memory together. Group memberships and the profiles' versions per family
/// are read once up front (one query each, not one per device).
pub fn for_each_device_row(
    conn: &Connection,
    account_id: i64,
    mut f: impl FnMut(DeviceRow) -> Result<()>,
) -> Result<()> {
    let mut groups: HashMap<i64, Vec<String>> = HashMap::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT m.device_id, g.name FROM device_group_members m
             JOIN device_groups g ON g.id = m.group_id
             WHERE g.account_id = ?1 ORDER BY m.device_id, g.priority DESC, g.id",
        )?;
        for row in stmt.query_map([account_id], |r| Ok((r.get(0)?, r.get(1)?)))? {
            let (id, name): (i64, String) = row?;
            groups.entry(id).or_default().push(name);
        }
    }
    let mut firmware: HashMap<(i64, String), String> = HashMap::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT f.profile_id, f.family, f.version FROM profile_firmware f
             JOIN profiles p ON p.id = f.profile_id WHERE p.account_id = ?1",
        )?;
        for row in stmt.query_map([account_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))? {
            let (pid, family, version): (i64, String, String) = row?;
            firmware.insert((pid, family), version);
        }
    }
    let mut stmt = conn.prepare_cached(
        "SELECT d.id, d.mac, d.serial, d.vendor_model, p.name, coalesce(p.vendor_model, ''),
                (d.prov_server <> '' OR coalesce(p.prov_server, '') <> ''), d.auto_associated,
                d.associated_at,
                s.generation, s.generation_at, coalesce(s.base_segment, ''), coalesce(s.family, ''),
                s.readmit_generation, s.readmit_until,
                a.first_seen, a.last_seen, a.last_auth_ok_at, a.last_sync_at,
                coalesce(a.ua_model, ''), coalesce(a.firmware, ''),
                CASE WHEN a.auth_failures > 0 THEN
                  (SELECT max(l.ts_ms) FROM access_log l WHERE l.mac = d.mac AND l.auth = 'bad')
                END,
                (SELECT st.name FROM device_sites ds JOIN sites st ON st.id = ds.site_id
                 WHERE ds.device_id = d.id),
                d.profile_id,
                s.floor_generation, s.last_refused, s.proven_segment, s.proven_at,
                coalesce(a.last_protocol, ''),
                (SELECT ds2.answered_at FROM device_sip ds2 WHERE ds2.device_id = d.id),
                coalesce(l1.display_name, ''), coalesce(l1.label, ''), coalesce(l1.auth_user_id, ''),
                trim(coalesce(sb.first_name, '') || ' ' || coalesce(sb.last_name, '')),
                a.firmware_since
         FROM devices d
         LEFT JOIN device_lines l1 ON l1.device_id = d.id AND l1.line = 1
         LEFT JOIN subscribers sb ON sb.id = d.subscriber_id
         LEFT JOIN profiles p ON p.id = d.profile_id
         LEFT JOIN device_sync s ON s.device_id = d.id
         LEFT JOIN device_activity a ON a.device_id = d.id
         WHERE d.account_id = ?1
         ORDER BY d.mac",
    )?;
    let mut rows = stmt.query([account_id])?;
    while let Some(r) = rows.next()? {
        let family: String = r.get(12)?;
        let readmit = match (r.get::<_, Option<i64>>(13)?, r.get::<_, Option<i64>>(14)?) {
            (generation, Some(until)) => Some(Readmit {
                generation: generation.unwrap_or(0),
                until,
            }),
            _ => None,
        };
        let profile_id: Option<i64> = r.get(23)?;
        let mut d = DeviceRow {
            id: r.get(0)?,
            mac: r.get(1)?,
            serial: r.get(2)?,
            vendor_model: r.get(3)?,
            profile: r.get(4)?,
            profile_vendor_model: r.get(5)?,
            external_server: r.get(6)?,
            auto_associated: r.get(7)?,
            associated_at: r.get(8)?,
            sync: DeviceSync {
                generation: r.get(9)?,
                generation_at: r.get(10)?,
                base_segment: r.get(11)?,
                family: Family::from_name(&family),
                readmit,
                floor: r.get(24)?,
                last_refused: r.get::<_, Option<bool>>(25)?.unwrap_or(false),
                proven_segment: r.get(26)?,
                proven_at: r.get(27)?,
            },
            first_seen: r.get(15)?,
            last_seen: r.get(16)?,
            last_auth_ok_at: r.get(17)?,
            last_sync_at: r.get(18)?,
            protocol: r.get(28)?,
            sip_answered_at: r.get(29)?,
            ua_model: r.get(19)?,
            firmware: r.get(20)?,
            last_bad_auth_ms: r.get(21)?,
            site: r.get(22)?,
            groups: Vec::new(),
            profile_firmware: None,
            line_name: r.get(30)?,
            line_label: r.get(31)?,
            sip_user: r.get(32)?,
            person: r.get(33)?,
            firmware_since: r.get(34)?,
        };
        d.groups = groups.remove(&d.id).unwrap_or_default();
        let family = d.sync.family.or_else(|| Family::of_model(&d.ua_model));
        if let (Some(pid), Some(fam)) = (profile_id, family) {
            d.profile_firmware = firmware.get(&(pid, fam.name().to_string())).cloned();
        }
        f(d)?;
    }
    Ok(())
}

/// For each associated device of an account, the credential generation it holds and since
/// when (`device_sync`; `None` when it never authenticated): Auto-Sync's burn-down.
pub fn held_generations(
    conn: &Connection,
    account_id: i64,
) -> Result<Vec<(Option<i64>, Option<i64>)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.generation, s.generation_at FROM devices d
         LEFT JOIN device_sync s ON s.device_id = d.id
         WHERE d.account_id = ?1 AND d.profile_id IS NOT NULL",
    )?;
    let rows = stmt.query_map([account_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How many devices of an account each site and each group has, by name.
pub fn member_counts(
    conn: &Connection,
    account_id: i64,
) -> Result<(HashMap<String, usize>, HashMap<String, usize>)> {
    let count = |sql: &str| -> Result<HashMap<String, usize>> {
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map([account_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let (name, n) = row?;
            out.insert(name, n.max(0) as usize);
        }
        Ok(out)
    };
    Ok((
        count(
            "SELECT st.name, count(*) FROM device_sites ds JOIN sites st ON st.id = ds.site_id
             WHERE st.account_id = ?1 GROUP BY st.id",
        )?,
        count(
            "SELECT g.name, count(*) FROM device_group_members m
             JOIN device_groups g ON g.id = m.group_id
             WHERE g.account_id = ?1 GROUP BY g.id",
        )?,
    ))
}

/// The length of a check-in bucket (`checkin_counts.span`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    Hour,
    Day,
}

impl Span {
    pub fn secs(self) -> i64 {
        match self {
            Span::Hour => 3600,
            Span::Day => 86_400,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Span::Hour => "hour",
            Span::Day => "day",
        }
    }
}

/// Check-ins of an account's devices in `buckets` buckets of `span` from `start` (Unix
/// seconds, a bucket's start): per bucket, the devices served at least once and the devices
/// refused for wrong credentials at least once (kept by the writer: migration 0023).
pub fn checkin_counts(
    conn: &Connection,
    account_id: i64,
    span: Span,
    start: i64,
    buckets: usize,
) -> Result<(Vec<u32>, Vec<u32>)> {
    let mut stmt = conn.prepare_cached(
        "SELECT bucket, ok, refused FROM checkin_counts
         WHERE account_id = ?1 AND span = ?2 AND bucket >= ?3 AND bucket < ?4",
    )?;
    let end = start + span.secs() * buckets as i64;
    let (mut ok, mut refused) = (vec![0u32; buckets], vec![0u32; buckets]);
    let rows = stmt.query_map(params![account_id, span.name(), start, end], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, u32>(1)?,
            r.get::<_, u32>(2)?,
        ))
    })?;
    for row in rows {
        let (bucket, o, f) = row?;
        if let Ok(i) = usize::try_from((bucket - start) / span.secs())
            && i < buckets
        {
            ok[i] = o;
            refused[i] = f;
        }
    }
    Ok((ok, refused))
}

/// Forgets check-in buckets that started before `before` (Unix seconds): the charts show
/// seven days.
pub fn prune_checkin_counts(conn: &Connection, before: i64) -> Result<usize> {
    Ok(conn.execute("DELETE FROM checkin_counts WHERE bucket < ?1", [before])?)
}
