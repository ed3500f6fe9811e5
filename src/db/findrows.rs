//! Find Operations results: the rows of each view, loading a page of them from the ids the
//! query builder of `find` matched, and CSV downloads. Split from `find` so the builder
//! (the part that must never let input change a statement) stays small enough to review.

use rusqlite::Connection;
use rusqlite::types::Value;

use super::find::{COUNT_CAP, FindQuery, View};
use crate::domain::users::Scope;
use crate::error::Result;

/// A device row of the device view.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceHit {
    pub mac: String,
    pub serial: String,
    pub vendor_model: String,
    pub profile: Option<String>,
    pub reference_id: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub status: Option<String>,
    pub last_access: Option<i64>,
    pub access_count: i64,
}

/// A reference-ID row of the reference view.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SubscriberHit {
    pub reference_id: String,
    pub company: String,
    pub first_name: String,
    pub last_name: String,
    pub phone: String,
    pub email: String,
    pub city: String,
    pub status: String,
    pub devices: i64,
    pub expires_at: Option<i64>,
}

/// One page of results.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Page<T> {
    pub rows: Vec<T>,
    /// Matches, exact unless `more` is set.
    pub total: usize,
    /// More than `total` matched (the count stopped at the cap).
    pub more: bool,
}

fn matching_ids(conn: &Connection, q: &FindQuery, scope: &Scope, limit: usize) -> Result<Vec<i64>> {
    let (text, mut values) = q.id_sql(scope);
    values.push(Value::Integer(limit as i64));
    let text = format!("{text} LIMIT ?{}", values.len());
    // LIKE/GLOB prefix searches use the indexes only when the planner sees the pattern.
    let _plans = super::BoundValuePlans::new(conn)?;
    let mut stmt = conn.prepare_cached(&text)?;
    let ids = stmt.query_map(rusqlite::params_from_iter(values), |r| r.get(0))?;
    Ok(ids.collect::<rusqlite::Result<_>>()?)
}

fn page_ids(
    conn: &Connection,
    q: &FindQuery,
    scope: &Scope,
    offset: usize,
    per_page: usize,
) -> Result<(Vec<i64>, usize, bool)> {
    let want = COUNT_CAP.max(offset + per_page);
    let ids = matching_ids(conn, q, scope, want + 1)?;
    let more = ids.len() > want;
    let total = ids.len().min(want);
    let page = ids.into_iter().skip(offset).take(per_page).collect();
    Ok((page, total, more))
}

const DEVICE_HIT: &str = "SELECT d.mac, d.serial, d.vendor_model, p.name, s.reference_id,
        coalesce(s.first_name, ''), coalesce(s.last_name, ''), s.status, a.last_seen,
        coalesce(a.access_count, 0)
     FROM devices d LEFT JOIN subscribers s ON s.id = d.subscriber_id
     LEFT JOIN profiles p ON p.id = d.profile_id
     LEFT JOIN device_activity a ON a.device_id = d.id WHERE d.id = ?1";

fn device_hit(conn: &Connection, id: i64) -> Result<Option<DeviceHit>> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .prepare_cached(DEVICE_HIT)?
        .query_row([id], |r| {
            Ok(DeviceHit {
                mac: r.get(0)?,
                serial: r.get(1)?,
                vendor_model: r.get(2)?,
                profile: r.get(3)?,
                reference_id: r.get(4)?,
                first_name: r.get(5)?,
                last_name: r.get(6)?,
                status: r.get(7)?,
                last_access: r.get(8)?,
                access_count: r.get(9)?,
            })
        })
        .optional()?)
}

const SUBSCRIBER_HIT: &str = "SELECT s.reference_id, s.company, s.first_name, s.last_name, s.phone,
        s.email, s.city, s.status, (SELECT count(*) FROM devices d WHERE d.subscriber_id = s.id),
        s.expires_at
     FROM subscribers s WHERE s.id = ?1";

fn subscriber_hit(conn: &Connection, id: i64) -> Result<Option<SubscriberHit>> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .prepare_cached(SUBSCRIBER_HIT)?
        .query_row([id], |r| {
            Ok(SubscriberHit {
                reference_id: r.get(0)?,
                company: r.get(1)?,
                first_name: r.get(2)?,
                last_name: r.get(3)?,
                phone: r.get(4)?,
                email: r.get(5)?,
                city: r.get(6)?,
                status: r.get(7)?,
                devices: r.get(8)?,
                expires_at: r.get(9)?,
            })
        })
        .optional()?)
}

/// A page of the device view.
pub fn find_devices(
    conn: &Connection,
    q: &FindQuery,
    scope: &Scope,
    offset: usize,
    per_page: usize,
) -> Result<Page<DeviceHit>> {
    let q = FindQuery {
        view: View::Device,
        ..q.clone()
    };
    let (ids, total, more) = page_ids(conn, &q, scope, offset, per_page)?;
    let mut rows = Vec::with_capacity(ids.len());
    for id in ids {
        rows.extend(device_hit(conn, id)?);
    }
    Ok(Page { rows, total, more })
}

/// A page of the reference-ID view.
pub fn find_subscribers(
    conn: &Connection,
    q: &FindQuery,
    scope: &Scope,
    offset: usize,
    per_page: usize,
) -> Result<Page<SubscriberHit>> {
    let q = FindQuery {
        view: View::Reference,
        ..q.clone()
    };
    let (ids, total, more) = page_ids(conn, &q, scope, offset, per_page)?;
    let mut rows = Vec::with_capacity(ids.len());
    for id in ids {
        rows.extend(subscriber_hit(conn, id)?);
    }
    Ok(Page { rows, total, more })
}

/// Up to `max` device rows for a CSV download, in sort order.
pub fn all_devices(
    conn: &Connection,
    q: &FindQuery,
    scope: &Scope,
    max: usize,
) -> Result<Vec<DeviceHit>> {
    let q = FindQuery {
        view: View::Device,
        ..q.clone()
    };
    let mut rows = Vec::new();
    for id in matching_ids(conn, &q, scope, max)? {
        rows.extend(device_hit(conn, id)?);
    }
    Ok(rows)
}

/// Up to `max` reference-ID rows for a CSV download, in sort order.
pub fn all_subscribers(
    conn: &Connection,
    q: &FindQuery,
    scope: &Scope,
    max: usize,
) -> Result<Vec<SubscriberHit>> {
    let q = FindQuery {
        view: View::Reference,
        ..q.clone()
    };
    let mut rows = Vec::new();
    for id in matching_ids(conn, &q, scope, max)? {
        rows.extend(subscriber_hit(conn, id)?);
    }
    Ok(rows)
}

/// The device view as CSV.
pub fn devices_csv(rows: &[DeviceHit]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "mac",
        "serial",
        "vendor_model",
        "profile",
        "reference_id",
        "first_name",
        "last_name",
        "status",
        "last_access",
        "access_count",
    ]);
    for r in rows {
        let _ = w.write_record(
            [
                r.mac.as_str(),
                &r.serial,
                &r.vendor_model,
                r.profile.as_deref().unwrap_or(""),
                r.reference_id.as_deref().unwrap_or(""),
                &r.first_name,
                &r.last_name,
                r.status.as_deref().unwrap_or(""),
                &r.last_access
                    .map(crate::domain::time::format_time)
                    .unwrap_or_else(|| "--".into()),
                &r.access_count.to_string(),
            ]
            .map(|c| crate::domain::csvcell::neutral(c).into_owned()),
        );
    }
    w.into_inner().unwrap_or_default()
}

/// The reference-ID view as CSV.
pub fn subscribers_csv(rows: &[SubscriberHit]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "reference_id",
        "company",
        "first_name",
        "last_name",
        "phone",
        "email",
        "city",
        "status",
        "devices",
    ]);
    for r in rows {
        let _ = w.write_record(
            [
                r.reference_id.as_str(),
                &r.company,
                &r.first_name,
                &r.last_name,
                &r.phone,
                &r.email,
                &r.city,
                &r.status,
                &r.devices.to_string(),
            ]
            .map(|c| crate::domain::csvcell::neutral(c).into_owned()),
        );
    }
    w.into_inner().unwrap_or_default()
}
