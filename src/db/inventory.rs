//! Bulk reads for the inventory, Auto-Sync progress and lock-out counts: one row per device
//! of an account with everything the rules need, and check-ins per time bucket.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};
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
    /// Platform parameters delivered and not confirmed since, by name.
    pub awaiting: Vec<String>,
}

/// Every device of an account (associated or only seen), by MAC.
pub fn list_device_rows(conn: &Connection, account_id: i64) -> Result<Vec<DeviceRow>> {
    let mut out = Vec::new();
    for_each_device_row(conn, account_id, |d| {
        out.push(d);
        Ok(())
    })?;
    out.sort_unstable_by(|a, b| a.mac.cmp(&b.mac));
    Ok(out)
}

/// The row of one device of an account, if it has one.
pub fn device_row(conn: &Connection, account_id: i64, mac: &str) -> Result<Option<DeviceRow>> {
    let id: Option<i64> = conn
        .prepare_cached("SELECT id FROM devices WHERE mac = ?1 AND account_id = ?2")?
        .query_row(params![mac, account_id], |r| r.get(0))
        .optional()?;
    let Some(id) = id else { return Ok(None) };
    let mut out = None;
    rows_in(conn, account_id, (id, id), |d| {
        out = Some(d);
        Ok(())
    })?;
    Ok(out)
}

/// Calls `f` with every device of an account, one row at a time in the order devices were
/// created (not by MAC: callers that need an order sort what they keep). A million devices
/// are never in memory together.
pub fn for_each_device_row(
    conn: &Connection,
    account_id: i64,
    f: impl FnMut(DeviceRow) -> Result<()>,
) -> Result<()> {
    rows_in(conn, account_id, (i64::MIN, i64::MAX), f)
}

/// The side tables of a device row, each read in device order alongside the devices
/// (a merge: every table is scanned once in its key's order, instead of one lookup per
/// device and table — four times faster at 100,000 devices). A side table's rows of other
/// accounts' devices are skipped by the merge.
struct Side<'s, T> {
    rows: rusqlite::Rows<'s>,
    read: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    next: Option<(i64, T)>,
}

impl<'s, T> Side<'s, T> {
    fn new(
        rows: rusqlite::Rows<'s>,
        read: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Side<'s, T>> {
        let mut side = Side {
            rows,
            read,
            next: None,
        };
        side.advance()?;
        Ok(side)
    }

    fn advance(&mut self) -> Result<()> {
        self.next = match self.rows.next()? {
            Some(r) => Some((r.get(0)?, (self.read)(r)?)),
            None => None,
        };
        Ok(())
    }

    /// Every row of device `id` (a table keyed by device and more), in the table's order.
    fn take_all(&mut self, id: i64) -> Result<Vec<T>> {
        let mut out = Vec::new();
        while let Some(v) = self.take(id)? {
            out.push(v);
        }
        Ok(out)
    }

    /// The row of device `id`, if the table has one; rows of smaller ids are skipped.
    fn take(&mut self, id: i64) -> Result<Option<T>> {
        while let Some((at, _)) = &self.next {
            if *at > id {
                return Ok(None);
            }
            let found = *at == id;
            let value = self.next.take().map(|(_, v)| v);
            self.advance()?;
            if found {
                return Ok(value);
            }
        }
        Ok(None)
    }
}

/// `device_activity` as the inventory reads it.
#[derive(Default)]
struct Activity {
    first_seen: Option<i64>,
    last_seen: Option<i64>,
    last_auth_ok_at: Option<i64>,
    last_sync_at: Option<i64>,
    ua_model: String,
    firmware: String,
    last_bad_auth_ms: Option<i64>,
    protocol: String,
    firmware_since: Option<i64>,
}

/// Line 1: display name, label, SIP user.
type Line = (String, String, String);

/// The devices of `account_id` whose id is in `ids` (inclusive), in id order.
fn rows_in(
    conn: &Connection,
    account_id: i64,
    (lo, hi): (i64, i64),
    mut f: impl FnMut(DeviceRow) -> Result<()>,
) -> Result<()> {
    let mut groups: HashMap<i64, Vec<String>> = HashMap::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT m.device_id, g.name FROM device_group_members m
             JOIN device_groups g ON g.id = m.group_id
             WHERE g.account_id = ?1 AND m.device_id BETWEEN ?2 AND ?3
             ORDER BY m.device_id, g.priority DESC, g.id",
        )?;
        for row in stmt.query_map(params![account_id, lo, hi], |r| Ok((r.get(0)?, r.get(1)?)))? {
            let (id, name): (i64, String) = row?;
            groups.entry(id).or_default().push(name);
        }
    }
    let mut firmware: HashMap<(i64, String), String> = HashMap::new();
    let mut profiles: HashMap<i64, (String, String, bool)> = HashMap::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT f.profile_id, f.family, f.version FROM profile_firmware f
             JOIN profiles p ON p.id = f.profile_id WHERE p.account_id = ?1",
        )?;
        for row in stmt.query_map([account_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))? {
            let (pid, family, version): (i64, String, String) = row?;
            firmware.insert((pid, family), version);
        }
        let mut stmt = conn.prepare_cached(
            "SELECT id, name, vendor_model, prov_server <> '' FROM profiles WHERE account_id = ?1",
        )?;
        for row in stmt.query_map([account_id], |r| {
            Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?)))
        })? {
            let (id, p) = row?;
            profiles.insert(id, p);
        }
    }
    let range = params![lo, hi];
    let mut lines_stmt = conn.prepare_cached(
        "SELECT device_id, display_name, label, auth_user_id FROM device_lines
         WHERE line = 1 AND device_id BETWEEN ?1 AND ?2 ORDER BY device_id",
    )?;
    let mut lines: Side<'_, Line> = Side::new(lines_stmt.query(range)?, |r| {
        Ok((r.get(1)?, r.get(2)?, r.get(3)?))
    })?;
    let mut sync_stmt = conn.prepare_cached(
        "SELECT device_id, generation, generation_at, base_segment, family,
                readmit_generation, readmit_until, floor_generation, last_refused,
                proven_segment, proven_at
         FROM device_sync WHERE device_id BETWEEN ?1 AND ?2 ORDER BY device_id",
    )?;
    let mut sync: Side<'_, DeviceSync> = Side::new(sync_stmt.query(range)?, |r| {
        let family: String = r.get(4)?;
        Ok(DeviceSync {
            generation: r.get(1)?,
            generation_at: r.get(2)?,
            base_segment: r.get(3)?,
            family: Family::from_name(&family),
            readmit: match (r.get::<_, Option<i64>>(5)?, r.get::<_, Option<i64>>(6)?) {
                (generation, Some(until)) => Some(Readmit {
                    generation: generation.unwrap_or(0),
                    until,
                }),
                _ => None,
            },
            floor: r.get(7)?,
            last_refused: r.get(8)?,
            proven_segment: r.get(9)?,
            proven_at: r.get(10)?,
        })
    })?;
    // The newest refused request is looked up only for devices that had one.
    let mut activity_stmt = conn.prepare_cached(
        "SELECT a.device_id, a.first_seen, a.last_seen, a.last_auth_ok_at, a.last_sync_at,
                a.ua_model, a.firmware,
                CASE WHEN a.auth_failures > 0 THEN
                  (SELECT max(l.ts_ms) FROM access_log l
                   WHERE l.mac = (SELECT mac FROM devices WHERE id = a.device_id)
                     AND l.auth = 'bad')
                END,
                a.last_protocol, a.firmware_since
         FROM device_activity a WHERE a.device_id BETWEEN ?1 AND ?2 ORDER BY a.device_id",
    )?;
    let mut activity: Side<'_, Activity> = Side::new(activity_stmt.query(range)?, |r| {
        Ok(Activity {
            first_seen: r.get(1)?,
            last_seen: r.get(2)?,
            last_auth_ok_at: r.get(3)?,
            last_sync_at: r.get(4)?,
            ua_model: r.get(5)?,
            firmware: r.get(6)?,
            last_bad_auth_ms: r.get(7)?,
            protocol: r.get(8)?,
            firmware_since: r.get(9)?,
        })
    })?;
    let mut sites_stmt = conn.prepare_cached(
        "SELECT ds.device_id, st.name FROM device_sites ds JOIN sites st ON st.id = ds.site_id
         WHERE ds.device_id BETWEEN ?1 AND ?2 ORDER BY ds.device_id",
    )?;
    let mut sites: Side<'_, String> = Side::new(sites_stmt.query(range)?, |r| r.get(1))?;
    let mut sip_stmt = conn.prepare_cached(
        "SELECT device_id, answered_at FROM device_sip
         WHERE device_id BETWEEN ?1 AND ?2 ORDER BY device_id",
    )?;
    let mut sip: Side<'_, Option<i64>> = Side::new(sip_stmt.query(range)?, |r| r.get(1))?;
    let mut awaiting_stmt = conn.prepare_cached(
        "SELECT device_id, param FROM device_prov_state
         WHERE device_id BETWEEN ?1 AND ?2 AND delivered IS NOT NULL
           AND delivered IS NOT confirmed
         ORDER BY device_id, param",
    )?;
    let mut awaiting: Side<'_, String> = Side::new(awaiting_stmt.query(range)?, |r| r.get(1))?;
    let mut stmt = conn.prepare_cached(
        "SELECT d.id, d.mac, d.serial, d.vendor_model, d.profile_id, d.prov_server <> '',
                d.auto_associated, d.associated_at,
                trim(coalesce(sb.first_name, '') || ' ' || coalesce(sb.last_name, ''))
         FROM devices d NOT INDEXED
         LEFT JOIN subscribers sb ON sb.id = d.subscriber_id
         WHERE d.account_id = ?1 AND d.id BETWEEN ?2 AND ?3
         ORDER BY d.id",
    )?;
    let mut rows = stmt.query(params![account_id, lo, hi])?;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let profile_id: Option<i64> = r.get(4)?;
        let profile = profile_id.and_then(|p| profiles.get(&p));
        let a = activity.take(id)?.unwrap_or_default();
        let (line_name, line_label, sip_user) = lines.take(id)?.unwrap_or_default();
        let sync = sync.take(id)?.unwrap_or_default();
        let family = sync.family.or_else(|| Family::of_model(&a.ua_model));
        let mut d = DeviceRow {
            id,
            mac: r.get(1)?,
            serial: r.get(2)?,
            vendor_model: r.get(3)?,
            profile: profile.map(|p| p.0.clone()),
            profile_vendor_model: profile.map(|p| p.1.clone()).unwrap_or_default(),
            external_server: r.get::<_, bool>(5)? || profile.is_some_and(|p| p.2),
            auto_associated: r.get(6)?,
            associated_at: r.get(7)?,
            sync,
            first_seen: a.first_seen,
            last_seen: a.last_seen,
            last_auth_ok_at: a.last_auth_ok_at,
            last_sync_at: a.last_sync_at,
            protocol: a.protocol,
            sip_answered_at: sip.take(id)?.flatten(),
            ua_model: a.ua_model,
            firmware: a.firmware,
            last_bad_auth_ms: a.last_bad_auth_ms,
            site: sites.take(id)?,
            groups: groups.remove(&id).unwrap_or_default(),
            profile_firmware: None,
            line_name,
            line_label,
            sip_user,
            person: r.get(8)?,
            firmware_since: a.firmware_since,
            awaiting: awaiting.take_all(id)?,
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The rows as one joined query reads them (what the merge replaced: one lookup per
    /// device and table), printed field by field: the reference the merge must equal.
    fn reference(conn: &Connection, account_id: i64) -> Vec<String> {
        let mut stmt = conn
            .prepare(
                "SELECT d.id, d.mac, d.serial, d.vendor_model, p.name, coalesce(p.vendor_model, ''),
                        (d.prov_server <> '' OR coalesce(p.prov_server, '') <> ''),
                        d.auto_associated, d.associated_at, s.generation, s.generation_at,
                        coalesce(s.base_segment, ''), coalesce(s.family, ''),
                        CASE WHEN s.readmit_until IS NOT NULL THEN coalesce(s.readmit_generation, 0) END,
                        s.readmit_until, a.first_seen, a.last_seen,
                        a.last_auth_ok_at, a.last_sync_at, coalesce(a.ua_model, ''),
                        coalesce(a.firmware, ''),
                        CASE WHEN a.auth_failures > 0 THEN
                          (SELECT max(l.ts_ms) FROM access_log l WHERE l.mac = d.mac AND l.auth = 'bad')
                        END,
                        (SELECT st.name FROM device_sites ds JOIN sites st ON st.id = ds.site_id
                         WHERE ds.device_id = d.id),
                        s.floor_generation, coalesce(s.last_refused, 0), s.proven_segment,
                        s.proven_at, coalesce(a.last_protocol, ''),
                        (SELECT ds2.answered_at FROM device_sip ds2 WHERE ds2.device_id = d.id),
                        coalesce(l1.display_name, ''), coalesce(l1.label, ''),
                        coalesce(l1.auth_user_id, ''),
                        trim(coalesce(sb.first_name, '') || ' ' || coalesce(sb.last_name, '')),
                        a.firmware_since,
                        (SELECT group_concat(param, ',') FROM (SELECT param FROM device_prov_state
                           WHERE device_id = d.id AND delivered IS NOT NULL
                             AND delivered IS NOT confirmed ORDER BY param)),
                        (SELECT group_concat(g.name, ',') FROM (SELECT g.name FROM device_group_members m
                           JOIN device_groups g ON g.id = m.group_id WHERE m.device_id = d.id
                           ORDER BY g.priority DESC, g.id) g)
                 FROM devices d
                 LEFT JOIN device_lines l1 ON l1.device_id = d.id AND l1.line = 1
                 LEFT JOIN subscribers sb ON sb.id = d.subscriber_id
                 LEFT JOIN profiles p ON p.id = d.profile_id
                 LEFT JOIN device_sync s ON s.device_id = d.id
                 LEFT JOIN device_activity a ON a.device_id = d.id
                 WHERE d.account_id = ?1 ORDER BY d.mac",
            )
            .expect("reference");
        let rows = stmt
            .query_map([account_id], |r| {
                let cols: Vec<String> = (0..36)
                    .map(|i| match r.get_ref(i).expect("column") {
                        rusqlite::types::ValueRef::Null => "-".to_string(),
                        rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                        rusqlite::types::ValueRef::Text(t) => {
                            String::from_utf8_lossy(t).into_owned()
                        }
                        other => format!("{other:?}"),
                    })
                    .collect();
                Ok(cols.join("|"))
            })
            .expect("rows");
        rows.collect::<rusqlite::Result<_>>().expect("collect")
    }

    fn printed(d: &DeviceRow) -> String {
        let o = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
        let s = &d.sync;
        let readmit = s.readmit.map_or(("-".to_string(), "-".to_string()), |r| {
            (r.generation.to_string(), r.until.to_string())
        });
        [
            d.id.to_string(),
            d.mac.clone(),
            d.serial.clone(),
            d.vendor_model.clone(),
            d.profile.clone().unwrap_or("-".into()),
            d.profile_vendor_model.clone(),
            i64::from(d.external_server).to_string(),
            i64::from(d.auto_associated).to_string(),
            o(d.associated_at),
            o(s.generation),
            o(s.generation_at),
            s.base_segment.clone(),
            s.family.map(|f| f.name().to_string()).unwrap_or_default(),
            readmit.0,
            readmit.1,
            o(d.first_seen),
            o(d.last_seen),
            o(d.last_auth_ok_at),
            o(d.last_sync_at),
            d.ua_model.clone(),
            d.firmware.clone(),
            o(d.last_bad_auth_ms),
            d.site.clone().unwrap_or("-".into()),
            o(s.floor),
            i64::from(s.last_refused).to_string(),
            s.proven_segment.clone().unwrap_or("-".into()),
            o(s.proven_at),
            d.protocol.clone(),
            o(d.sip_answered_at),
            d.line_name.clone(),
            d.line_label.clone(),
            d.sip_user.clone(),
            d.person.clone(),
            o(d.firmware_since),
            if d.awaiting.is_empty() {
                "-".into()
            } else {
                d.awaiting.join(",")
            },
            if d.groups.is_empty() {
                "-".into()
            } else {
                d.groups.join(",")
            },
        ]
        .join("|")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Devices of two accounts with ids interleaved, each with or without each side row:
        /// the merge reads every device of the account as the joined query does, by MAC once
        /// sorted, and one device alone (`device_row`) as in the whole list.
        #[test]
        fn the_merge_reads_what_one_joined_query_reads(
            devices in prop::collection::vec((any::<bool>(), 0u8..128, any::<u16>()), 1..40),
        ) {
            let conn = crate::db::open_in_memory().expect("db");
            let a = crate::db::accounts::ensure_default(&conn).expect("account").0.id.0;
            let b = a + 1;
            conn.execute_batch(&format!(
                "INSERT INTO accounts (id, name, slug, service_key, created_at, updated_at)
                     VALUES ({b}, 'Other', 'other', 'k2', 1, 1);
                 INSERT INTO profiles (id, account_id, name, prov_server, created_at, updated_at)
                     VALUES (1, {a}, 'p', '', 1, 1), (2, {a}, 'q', 'http://x/', 1, 1),
                            (3, {b}, 'r', '', 1, 1);
                 INSERT INTO profile_firmware (profile_id, family, version) VALUES (1, 'VVX', '5.9.8');
                 INSERT INTO sites (id, account_id, name, created_at) VALUES (1, {a}, 'hq', 1), (2, {b}, 'x', 1);
                 INSERT INTO device_groups (id, account_id, name, priority, created_at)
                     VALUES (1, {a}, 'lobby', 1, 1), (2, {a}, 'floor', 2, 1);
                 INSERT INTO subscribers (id, account_id, reference_id, first_name, last_name, created_at)
                     VALUES (1, {a}, 'R1', 'Ada', 'Kraus', 1);"
            ))
            .expect("fixture");
            for (i, &(other, bits, n)) in devices.iter().enumerate() {
                let id = i as i64 + 1;
                let acc = if other { b } else { a };
                let n = i64::from(n);
                let profile = match (other, n % 3) {
                    (true, 0) => "3".to_string(),
                    (false, 1) => "1".into(),
                    (false, 2) => "2".into(),
                    _ => "NULL".into(),
                };
                let bit = |k: u8| bits & (1 << k) != 0;
                let mut sql = format!(
                    "INSERT INTO devices (id, account_id, mac, serial, profile_id, prov_server,
                         subscriber_id, created_at, updated_at)
                     VALUES ({id}, {acc}, printf('0004f2%06x', {}), 'S{id}', {profile}, '{}',
                             {}, 1, 1);",
                    (n * 7919 + id) % 1_000_000,
                    if n % 5 == 0 { "http://y/" } else { "" },
                    if bit(5) && !other { "1" } else { "NULL" },
                );
                if bit(0) {
                    sql += &format!(
                        "INSERT INTO device_lines (device_id, line, auth_user_id, label, display_name)
                         VALUES ({id}, 1, 'u{id}', 'L{id}', '{}');
                         INSERT INTO device_lines (device_id, line, auth_user_id) VALUES ({id}, 2, 'v{id}');",
                        if n % 2 == 0 { "" } else { "Desk" }
                    );
                }
                if bit(1) {
                    sql += &format!(
                        "INSERT INTO device_sync (device_id, generation, generation_at, base_segment,
                             family, readmit_generation, readmit_until, floor_generation,
                             last_refused, proven_segment, proven_at)
                         VALUES ({id}, {}, {n}, 'seg', 'VVX', NULL, {}, NULL, {}, NULL, NULL);",
                        n % 4,
                        if n % 3 == 0 { n.to_string() } else { "NULL".into() },
                        n % 2
                    );
                }
                if bit(2) {
                    sql += &format!(
                        "INSERT INTO device_activity (device_id, first_seen, last_seen, ua_model,
                             firmware, auth_failures, last_auth_ok_at, firmware_since)
                         VALUES ({id}, 1, {n}, 'VVX_410', '5.9.{}', {}, {}, {});
                         INSERT INTO access_log (ts_ms, mac, ip, method, path, status, bytes,
                             duration_us, auth)
                         SELECT {n} * 1000, mac, '', 'GET', '/', 401, 0, 0, 'bad'
                         FROM devices WHERE id = {id};",
                        n % 9,
                        n % 2,
                        if n % 4 == 0 { "NULL".to_string() } else { n.to_string() },
                        if n % 3 == 0 { "NULL".to_string() } else { (n / 2).to_string() },
                    );
                }
                if bit(3) {
                    sql += &format!(
                        "INSERT INTO device_sites (device_id, site_id) VALUES ({id}, {});",
                        if other { 2 } else { 1 }
                    );
                }
                if bit(4) {
                    sql += &format!(
                        "INSERT INTO device_sip (device_id, answered_at) VALUES ({id}, {});",
                        if n % 2 == 0 { "NULL".to_string() } else { n.to_string() }
                    );
                }
                if bit(6) {
                    // Two parameters delivered and not confirmed, one confirmed.
                    sql += &format!(
                        "INSERT INTO device_prov_state (device_id, param, delivered, confirmed)
                         VALUES ({id}, 'device.prov.user', 'a', NULL),
                                ({id}, 'device.prov.serverName', 'x', 'y'),
                                ({id}, 'device.prov.password', 'b', 'b');"
                    );
                }
                if !other && n % 3 == 0 {
                    sql += &format!(
                        "INSERT INTO device_group_members (group_id, device_id) VALUES (1, {id});"
                    );
                }
                if !other && n % 4 == 0 {
                    sql += &format!(
                        "INSERT INTO device_group_members (group_id, device_id) VALUES (2, {id});"
                    );
                }
                conn.execute_batch(&sql).expect("device");
            }
            for account in [a, b] {
                let merged: Vec<String> = list_device_rows(&conn, account)
                    .expect("rows")
                    .iter()
                    .map(printed)
                    .collect();
                prop_assert_eq!(&merged, &reference(&conn, account));
                for row in list_device_rows(&conn, account).expect("rows") {
                    let one = device_row(&conn, account, &row.mac).expect("one").expect("found");
                    prop_assert_eq!(printed(&one), printed(&row));
                }
            }
        }
    }
}
