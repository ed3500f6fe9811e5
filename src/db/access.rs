//! Queries on `access_log`, `device_activity` bookkeeping and `uploads`: the batched
//! writes of the recorder and the reads of the device pages.

use rusqlite::{Connection, params};

use crate::domain::mac::Mac;
use crate::error::Result;

/// One device request, as the recorder stores it.
#[derive(Debug, Clone, Default)]
pub struct AccessRecord {
    pub ts_ms: i64,
    pub account_id: Option<i64>,
    /// The MAC the request concerns (from the path, the User-Agent's serial tag, or the
    /// last authenticated request from the same IP).
    pub mac: Option<String>,
    pub ip: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub bytes: u64,
    pub duration_us: u64,
    /// `none` (no credentials sent), `ok`, `bad`, `throttled`.
    pub auth: &'static str,
    pub secure: bool,
    pub user_agent: String,
    /// Parsed from the User-Agent.
    pub ua_family: String,
    pub ua_model: String,
    /// Only from `Type/Application` requests.
    pub firmware: Option<String>,
    /// A 200 for `<mac>-device.cfg`: "last provisioning sync".
    pub sync: bool,
    /// A log or core dump stored by this request: its `uploads` row is written with the
    /// batch (what phones set — overrides, contacts — is recorded at once instead).
    pub upload: Option<UploadNote>,
}

/// The `uploads` row of a stored file.
#[derive(Debug, Clone, Default)]
pub struct UploadNote {
    pub kind: &'static str,
    pub file_name: String,
    pub size: u64,
    pub sha256: String,
}

/// Per-device activity accumulated over one batch, so a phone's burst of requests costs one
/// upsert rather than one per request.
#[derive(Default)]
struct ActivityDelta<'a> {
    first_secs: i64,
    last_secs: i64,
    count: i64,
    ip: &'a str,
    user_agent: &'a str,
    ua_family: &'a str,
    ua_model: &'a str,
    firmware: Option<&'a str>,
    sync: Option<i64>,
    /// The same, to the millisecond (the newest of the batch).
    sync_ms: Option<i64>,
    auth_ok: Option<i64>,
    auth_bad: i64,
    /// The newest request of the batch answered 2xx, and the newest refused for wrong
    /// credentials, in milliseconds: the check-in buckets (`checkin_counts`).
    served_ms: Option<i64>,
    refused_ms: Option<i64>,
    /// The protocol of its latest request in the batch.
    protocol: &'static str,
}

/// The protocol a request came over: TFTP read requests are recorded with method `RRQ`,
/// FTP requests with their FTP command (`RETR`, `SIZE`, `MDTM`, `STOR`, `APPE`).
fn protocol_of(r: &AccessRecord) -> &'static str {
    let ftp = matches!(
        r.method.as_str(),
        "RETR" | "SIZE" | "MDTM" | "STOR" | "APPE"
    );
    if r.method == "RRQ" {
        "tftp"
    } else if ftp && r.secure {
        "ftps"
    } else if ftp {
        "ftp"
    } else if r.secure {
        "https"
    } else {
        "http"
    }
}

/// Writes a batch of records in one transaction: access-log rows, then per-device activity
/// (one upsert per device and hour of the batch).
pub fn write_batch(conn: &mut Connection, records: &[AccessRecord]) -> Result<()> {
    // One delta per device and UTC hour, applied hour by hour: each upsert moves a device's
    // check-in hour and day (`ok_hour`, `ok_day`, `bad_hour`) forward at most once, so the
    // triggers of migration 0023 count it in every hour it was seen, even in a batch that
    // spans the turn of an hour.
    let mut deltas: std::collections::BTreeMap<(i64, &str), ActivityDelta<'_>> =
        std::collections::BTreeMap::new();
    for r in records {
        let Some(mac) = r.mac.as_deref() else {
            continue;
        };
        let secs = r.ts_ms / 1000;
        let hour = r.ts_ms.div_euclid(3_600_000);
        let d = deltas.entry((hour, mac)).or_insert_with(|| ActivityDelta {
            first_secs: secs,
            ..Default::default()
        });
        d.first_secs = d.first_secs.min(secs);
        d.last_secs = d.last_secs.max(secs);
        // Requests served: a 401 (a Digest challenge, or credentials refused — those are
        // counted in `auth_failures`) served nothing.
        d.count += i64::from(r.status != 401);
        d.ip = &r.ip;
        if !r.user_agent.is_empty() {
            d.user_agent = &r.user_agent;
        }
        if !r.ua_family.is_empty() {
            d.ua_family = &r.ua_family;
            d.ua_model = &r.ua_model;
        }
        if let Some(fw) = r.firmware.as_deref() {
            d.firmware = Some(fw);
        }
        if r.sync {
            d.sync = Some(secs);
            d.sync_ms = d.sync_ms.max(Some(r.ts_ms));
        }
        // Enrolling and withheld requests authenticated too (with the account credential).
        if matches!(r.auth, "ok" | "enrol" | "withheld" | "many-macs")
            && (200..300).contains(&r.status)
        {
            d.auth_ok = Some(secs);
        }
        d.auth_bad += i64::from(r.auth == "bad");
        if (200..300).contains(&r.status) {
            d.served_ms = d.served_ms.max(Some(r.ts_ms));
        }
        if r.auth == "bad" {
            d.refused_ms = d.refused_ms.max(Some(r.ts_ms));
        }
        d.protocol = protocol_of(r);
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut log = tx.prepare_cached(
            "INSERT INTO access_log (ts_ms, account_id, mac, ip, method, path, status, bytes,
                                     duration_us, auth, secure, user_agent)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        for r in records {
            log.execute(params![
                r.ts_ms,
                r.account_id,
                r.mac,
                r.ip,
                r.method,
                r.path,
                r.status,
                r.bytes as i64,
                r.duration_us as i64,
                r.auth,
                r.secure,
                r.user_agent
            ])?;
        }
        let mut activity = tx.prepare_cached(
            "INSERT INTO device_activity (device_id, first_seen, last_seen, access_count, last_ip,
                    last_user_agent, ua_family, ua_model, firmware, last_sync_at, last_auth_ok_at,
                    auth_failures, last_protocol, last_sync_ms, ok_hour, ok_day, bad_hour,
                    firmware_since)
             SELECT id, ?2, ?3, ?4, ?5, ?6, ?7, ?8, coalesce(?9, ''), ?10, ?11, ?12, ?13, ?14,
                    ?15 / 3600000, ?15 / 86400000, ?16 / 3600000, CASE WHEN ?9 <> '' THEN ?2 END
             FROM devices WHERE mac = ?1
             ON CONFLICT (device_id) DO UPDATE SET
                 last_seen = max(last_seen, excluded.last_seen),
                 access_count = access_count + excluded.access_count,
                 last_ip = excluded.last_ip,
                 last_user_agent = CASE WHEN excluded.last_user_agent = '' THEN last_user_agent
                                        ELSE excluded.last_user_agent END,
                 ua_family = CASE WHEN excluded.ua_family = '' THEN ua_family ELSE excluded.ua_family END,
                 ua_model = CASE WHEN excluded.ua_model = '' THEN ua_model ELSE excluded.ua_model END,
                 firmware = CASE WHEN ?9 IS NULL THEN firmware ELSE ?9 END,
                 firmware_since = CASE WHEN ?9 IS NULL OR ?9 = firmware THEN firmware_since
                                       ELSE excluded.last_seen END,
                 ok_hour = coalesce(max(ok_hour, excluded.ok_hour), excluded.ok_hour, ok_hour),
                 ok_day = coalesce(max(ok_day, excluded.ok_day), excluded.ok_day, ok_day),
                 bad_hour = coalesce(max(bad_hour, excluded.bad_hour), excluded.bad_hour, bad_hour),
                 last_sync_at = coalesce(excluded.last_sync_at, last_sync_at),
                 last_auth_ok_at = coalesce(excluded.last_auth_ok_at, last_auth_ok_at),
                 auth_failures = auth_failures + excluded.auth_failures,
                 last_protocol = excluded.last_protocol,
                 last_sync_ms = coalesce(max(excluded.last_sync_ms, last_sync_ms),
                                         excluded.last_sync_ms, last_sync_ms)",
        )?;
        for r in records {
            if let (Some(mac), Some(u)) = (&r.mac, &r.upload) {
                upsert_upload(&tx, mac, u.kind, &u.file_name, u.size, &u.sha256)?;
            }
        }
        for ((_, mac), d) in &deltas {
            activity.execute(params![
                mac,
                d.first_secs,
                d.last_secs,
                d.count,
                d.ip,
                d.user_agent,
                d.ua_family,
                d.ua_model,
                d.firmware,
                d.sync,
                d.auth_ok,
                d.auth_bad,
                d.protocol,
                d.sync_ms,
                d.served_ms,
                d.refused_ms,
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Keeps the newest `per_device` access-log rows of each device in `macs`, in one
/// transaction. Each device costs one walk of its own index entries, so the recorder can
/// prune the devices it wrote to in small chunks between batches; a window over the whole
/// table (what this replaced) held the writer for seconds on a large log.
pub fn prune_devices(conn: &Connection, macs: &[Mac], per_device: u32) -> Result<usize> {
    super::atomic(conn, |conn| {
        let mut stmt = conn.prepare_cached(
            "DELETE FROM access_log WHERE mac = ?1 AND id <= (
                 SELECT id FROM access_log WHERE mac = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        )?;
        let mut n = 0;
        for mac in macs {
            n += stmt.execute(params![mac.as_str(), per_device])?;
        }
        Ok(n)
    })
}

/// Keeps the newest `anonymous` rows of requests that named no device.
pub fn prune_anonymous(conn: &Connection, anonymous: u32) -> Result<usize> {
    Ok(conn.execute(
        "DELETE FROM access_log WHERE mac IS NULL AND id <= (
         SELECT id FROM access_log WHERE mac IS NULL ORDER BY id DESC LIMIT 1 OFFSET ?1)",
        [anonymous],
    )?)
}

/// A row of a device's request timeline.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AccessRow {
    pub ts_ms: i64,
    pub ip: String,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub bytes: i64,
    pub auth: String,
    pub user_agent: String,
}

/// The newest `limit` requests of a device, newest first.
pub fn list_access_for_mac(conn: &Connection, mac: &str, limit: u32) -> Result<Vec<AccessRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT ts_ms, ip, method, path, status, bytes, auth, user_agent FROM access_log
         WHERE mac = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![mac, limit], |r| {
        Ok(AccessRow {
            ts_ms: r.get(0)?,
            ip: r.get(1)?,
            method: r.get(2)?,
            path: r.get(3)?,
            status: r.get(4)?,
            bytes: r.get(5)?,
            auth: r.get(6)?,
            user_agent: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Records a stored upload (replacing the row of an earlier version).
pub fn upsert_upload(
    conn: &Connection,
    mac: &str,
    kind: &str,
    name: &str,
    size: u64,
    sha256: &str,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO uploads (mac, kind, file_name, size, sha256, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (mac, kind, file_name) DO UPDATE SET size = excluded.size, sha256 = excluded.sha256,
             updated_at = excluded.updated_at",
    )?
    .execute(params![mac, kind, name, size as i64, sha256, super::now_secs()])?;
    Ok(())
}

/// Bytes of uploads stored for MACs no device is associated with (no device row, or one
/// without a profile), over all of them.
pub fn unassociated_upload_bytes(conn: &Connection) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(SUM(size), 0) FROM uploads
             WHERE mac NOT IN (SELECT mac FROM devices WHERE profile_id IS NOT NULL)",
        )?
        .query_row([], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

/// Bytes of uploads stored for a device, excluding one file (the one being replaced).
pub fn upload_usage(
    conn: &Connection,
    mac: &str,
    except_kind: &str,
    except_name: &str,
) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT coalesce(sum(size), 0) FROM uploads WHERE mac = ?1 AND NOT (kind = ?2 AND file_name = ?3)",
        )?
        .query_row(params![mac, except_kind, except_name], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

/// A stored upload.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UploadRow {
    pub kind: String,
    pub file_name: String,
    pub size: i64,
    pub updated_at: i64,
}

pub fn list_uploads(conn: &Connection, mac: &str) -> Result<Vec<UploadRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT kind, file_name, size, updated_at FROM uploads WHERE mac = ?1 ORDER BY kind, file_name",
    )?;
    let rows = stmt.query_map([mac], |r| {
        Ok(UploadRow {
            kind: r.get(0)?,
            file_name: r.get(1)?,
            size: r.get(2)?,
            updated_at: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{accounts, devices, open_in_memory};
    use crate::domain::mac::Mac;

    #[test]
    fn batches_update_activity_and_pruning_keeps_the_newest() {
        let mut conn = open_in_memory().expect("db");
        let (a, _) = accounts::ensure_default(&conn).expect("account");
        let mac = Mac::from_bare("0004f2000001").expect("mac");
        devices::insert_unassociated(&conn, a.id.0, &mac).expect("seen");
        let rec = |i: i64, fw: Option<&str>| AccessRecord {
            ts_ms: 1_000_000 + i * 1000,
            mac: Some(mac.to_string()),
            ip: "10.0.0.9".into(),
            method: "GET".into(),
            path: format!("/{mac}.cfg"),
            status: 200,
            auth: "ok",
            firmware: fw.map(String::from),
            ..Default::default()
        };
        let mut batch: Vec<_> = (0..10)
            .map(|i| rec(i, if i == 3 { Some("5.9.7") } else { None }))
            .collect();
        // Each fetch first draws a Digest challenge: served requests count, challenges not.
        for i in 0..10 {
            batch.push(AccessRecord {
                status: 401,
                auth: "none",
                ..rec(i, None)
            });
        }
        write_batch(&mut conn, &batch).expect("write");
        let device = devices::find_device_by_mac(&conn, &mac)
            .expect("find")
            .expect("present");
        let act = devices::find_activity(&conn, device.id)
            .expect("activity")
            .expect("row");
        assert_eq!(act.access_count, 10);
        assert_eq!(
            act.firmware, "5.9.7",
            "a later request without firmware keeps the known one"
        );
        assert_eq!(
            prune_devices(&conn, &[mac], 4).expect("prune"),
            16,
            "the sixteen oldest rows go (challenges are logged)"
        );
        assert_eq!(prune_devices(&conn, &[mac], 4).expect("again"), 0);
        let rows = list_access_for_mac(&conn, mac.as_str(), 100).expect("list");
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].ts_ms, 1_009_000);

        // Requests that named no device: the newest `anonymous` stay, device rows untouched.
        let anon: Vec<_> = (0..15)
            .map(|i| AccessRecord {
                mac: None,
                ..rec(100 + i, None)
            })
            .collect();
        write_batch(&mut conn, &anon).expect("write anonymous");
        assert_eq!(prune_anonymous(&conn, 10).expect("prune anonymous"), 5);
        let kept: i64 = conn
            .query_row(
                "SELECT count(*) FROM access_log WHERE mac IS NULL AND ts_ms >= 1105000",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(kept, 10, "the newest ten anonymous rows stay");
        assert_eq!(
            list_access_for_mac(&conn, mac.as_str(), 100)
                .expect("list")
                .len(),
            4
        );
    }

    /// The check-in counts the writer keeps (migration 0023) against their reference: the
    /// distinct devices of each bucket counted from the access log itself, which is how the
    /// charts counted before. Requests arrive in time order, in batches of any size (a batch
    /// may span hours and days); a MAC of no device is not counted.
    mod checkin_counts_model {
        use super::*;
        use crate::db::inventory::{Span, checkin_counts};
        use proptest::prelude::*;

        const KNOWN: usize = 4;

        fn reference(conn: &Connection, span: Span, which: &str, start: i64, n: usize) -> Vec<u32> {
            let mut out = vec![0u32; n];
            let sql = format!(
                "SELECT (l.ts_ms / 1000 - ?1) / ?2, count(DISTINCT l.mac) FROM access_log l
                 JOIN devices d ON d.mac = l.mac WHERE l.ts_ms >= ?1 * 1000 AND {which}
                 GROUP BY 1"
            );
            let mut stmt = conn.prepare(&sql).expect("reference");
            let rows = stmt
                .query_map(params![start, span.secs()], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, u32>(1)?))
                })
                .expect("rows");
            for row in rows {
                let (b, c) = row.expect("row");
                if let Some(slot) = usize::try_from(b).ok().and_then(|b| out.get_mut(b)) {
                    *slot = c;
                }
            }
            out
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            #[test]
            fn counts_equal_the_distinct_devices_of_the_log(
                steps in prop::collection::vec((0..=KNOWN, 0u32..3, 0i64..5_400_000, any::<bool>()), 1..120),
                cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
            ) {
                let mut conn = open_in_memory().expect("db");
                let (a, _) = accounts::ensure_default(&conn).expect("account");
                let macs: Vec<Mac> = (0..=KNOWN)
                    .map(|i| Mac::from_bare(&format!("0004f20000{i:02x}")).expect("mac"))
                    .collect();
                // The last MAC is a stranger: no device row.
                for mac in &macs[..KNOWN] {
                    devices::insert_unassociated(&conn, a.id.0, mac).expect("seen");
                }
                // Start just before a UTC day turns, so days and hours both turn.
                let day0 = 20_000 * 86_400_000 - 3 * 3_600_000;
                let mut ts = day0;
                let records: Vec<AccessRecord> = steps
                    .iter()
                    .map(|&(m, kind, gap, _)| {
                        ts += gap;
                        let (status, auth) = match kind {
                            0 => (200, "ok"),
                            1 => (401, "bad"),
                            _ => (404, "ok"),
                        };
                        AccessRecord {
                            ts_ms: ts,
                            account_id: Some(a.id.0),
                            mac: Some(macs[m].to_string()),
                            ip: "10.0.0.9".into(),
                            method: "GET".into(),
                            path: "/x.cfg".into(),
                            status,
                            auth,
                            ..Default::default()
                        }
                    })
                    .collect();
                let mut bounds: Vec<usize> = cuts.iter().map(|c| c.index(records.len())).collect();
                bounds.push(records.len());
                bounds.sort_unstable();
                let mut from = 0;
                for to in bounds {
                    if to > from {
                        write_batch(&mut conn, &records[from..to]).expect("batch");
                        from = to;
                    }
                }
                for span in [Span::Hour, Span::Day] {
                    let start = (day0 / 1000).div_euclid(span.secs()) * span.secs();
                    let n = ((ts - day0) / 1000 / span.secs() + 2) as usize;
                    let (ok, refused) = checkin_counts(&conn, a.id.0, span, start, n).expect("counts");
                    prop_assert_eq!(&ok, &reference(&conn, span, "l.status BETWEEN 200 AND 299", start, n), "{:?} served", span);
                    if span == Span::Hour {
                        prop_assert_eq!(&refused, &reference(&conn, span, "l.auth = 'bad'", start, n), "refused");
                    }
                }
            }
        }
    }
}
