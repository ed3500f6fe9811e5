//! Queries on `subscribers` (reference IDs with contact fields) and the links of devices to
//! them. A subscriber's status follows its devices: `partial` with none, `complete` with one
//! or more; partial ones carry an expiry time.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::now_secs;
use crate::domain::subscriber::{Subscriber, SubscriberInput};
use crate::error::{Error, Result};

const COLUMNS: &str = "s.id, s.reference_id, s.company, s.first_name, s.last_name, s.phone, s.email, \
     s.street, s.city, s.state, s.zip, s.country_code, s.status, s.owner_company, s.created_at, \
     s.expires_at, (SELECT count(*) FROM devices d WHERE d.subscriber_id = s.id)";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Subscriber> {
    Ok(Subscriber {
        id: r.get(0)?,
        fields: SubscriberInput {
            reference_id: r.get(1)?,
            company: r.get(2)?,
            first_name: r.get(3)?,
            last_name: r.get(4)?,
            phone: r.get(5)?,
            email: r.get(6)?,
            street: r.get(7)?,
            city: r.get(8)?,
            state: r.get(9)?,
            zip: r.get(10)?,
            country_code: r.get(11)?,
        },
        status: r.get(12)?,
        owner_company: r.get(13)?,
        created_at: r.get(14)?,
        expires_at: r.get(15)?,
        devices: r.get(16)?,
    })
}

/// The subscriber with this reference ID (case-insensitive, as it is unique that way).
pub fn find_subscriber(conn: &Connection, reference_id: &str) -> Result<Option<Subscriber>> {
    let sql = format!("SELECT {COLUMNS} FROM subscribers s WHERE s.reference_id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([reference_id], from_row)
        .optional()?)
}

/// The account a reference ID belongs to.
pub fn account_of(conn: &Connection, id: i64) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT account_id FROM subscribers WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?)
}

pub fn find_subscriber_by_id(conn: &Connection, id: i64) -> Result<Option<Subscriber>> {
    let sql = format!("SELECT {COLUMNS} FROM subscribers s WHERE s.id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], from_row)
        .optional()?)
}

/// Inserts a partial subscriber (no device yet) expiring at `expires_at`.
pub fn insert_subscriber(
    conn: &Connection,
    account_id: i64,
    s: &SubscriberInput,
    owner_company: &str,
    expires_at: i64,
) -> Result<i64> {
    if find_subscriber(conn, &s.reference_id)?.is_some() {
        return Err(Error::Conflict(format!(
            "reference ID `{}` is already in use; reference IDs must be unique",
            s.reference_id
        )));
    }
    conn.execute(
        "INSERT INTO subscribers (account_id, reference_id, company, first_name, last_name, phone,
                email, street, city, state, zip, country_code, status, owner_company, created_at,
                expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'partial', ?13, ?14, ?15)",
        params![
            account_id,
            s.reference_id,
            s.company,
            s.first_name,
            s.last_name,
            s.phone,
            s.email,
            s.street,
            s.city,
            s.state,
            s.zip,
            s.country_code,
            owner_company,
            now_secs(),
            expires_at
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Updates the contact fields (the reference ID may change if the new one is free).
pub fn update_subscriber(conn: &Connection, id: i64, s: &SubscriberInput) -> Result<()> {
    if let Some(other) = find_subscriber(conn, &s.reference_id)?
        && other.id != id
    {
        return Err(Error::Conflict(format!(
            "reference ID `{}` is already in use",
            s.reference_id
        )));
    }
    let n = conn.execute(
        "UPDATE subscribers SET reference_id = ?2, company = ?3, first_name = ?4, last_name = ?5,
                phone = ?6, email = ?7, street = ?8, city = ?9, state = ?10, zip = ?11,
                country_code = ?12
         WHERE id = ?1",
        params![
            id,
            s.reference_id,
            s.company,
            s.first_name,
            s.last_name,
            s.phone,
            s.email,
            s.street,
            s.city,
            s.state,
            s.zip,
            s.country_code
        ],
    )?;
    if n == 0 {
        return Err(Error::not_found(format!("subscriber {id}")));
    }
    Ok(())
}

/// Recomputes a subscriber's status from its devices: complete with at least one (no
/// expiry), partial without (expiring at `expires_at` if it has no expiry yet).
pub fn refresh_status(conn: &Connection, id: i64, expires_at: i64) -> Result<()> {
    conn.execute(
        "UPDATE subscribers SET
             status = CASE WHEN EXISTS (SELECT 1 FROM devices WHERE subscriber_id = ?1)
                           THEN 'complete' ELSE 'partial' END,
             expires_at = CASE WHEN EXISTS (SELECT 1 FROM devices WHERE subscriber_id = ?1)
                               THEN NULL ELSE coalesce(expires_at, ?2) END
         WHERE id = ?1",
        params![id, expires_at],
    )?;
    Ok(())
}

/// Deletes a subscriber; refused while devices are linked to it.
pub fn delete_subscriber(conn: &Connection, id: i64) -> Result<()> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM devices WHERE subscriber_id = ?1",
        [id],
        |r| r.get(0),
    )?;
    if n > 0 {
        return Err(Error::Conflict(format!(
            "the reference ID still has {n} device{}; delete them first",
            if n == 1 { "" } else { "s" }
        )));
    }
    conn.execute("DELETE FROM subscribers WHERE id = ?1", [id])?;
    Ok(())
}

/// Deletes partial subscribers whose expiry has passed. Returns how many.
pub fn expire_partial(conn: &Connection, now: i64) -> Result<usize> {
    Ok(conn.execute(
        "DELETE FROM subscribers WHERE status = 'partial' AND expires_at IS NOT NULL
         AND expires_at <= ?1 AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.subscriber_id = subscribers.id)",
        [now],
    )?)
}

/// Links a device to a subscriber (or unlinks it with `None`).
pub fn link_device(conn: &Connection, device_id: i64, subscriber_id: Option<i64>) -> Result<()> {
    conn.execute(
        "UPDATE devices SET subscriber_id = ?2 WHERE id = ?1",
        params![device_id, subscriber_id],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{accounts, open_in_memory};

    #[test]
    fn reference_ids_are_unique_ignoring_case_and_partial_ones_expire() {
        let conn = open_in_memory().expect("db");
        let (a, _) = accounts::ensure_default(&conn).expect("account");
        let s = SubscriberInput {
            reference_id: "REF001".into(),
            ..Default::default()
        };
        let id = insert_subscriber(&conn, a.id.0, &s, "", 100).expect("insert");
        let dup = SubscriberInput {
            reference_id: "ref001".into(),
            ..Default::default()
        };
        assert!(matches!(
            insert_subscriber(&conn, a.id.0, &dup, "", 100),
            Err(Error::Conflict(_))
        ));
        assert_eq!(
            find_subscriber(&conn, "ref001")
                .expect("find")
                .map(|s| s.id),
            Some(id)
        );
        assert_eq!(expire_partial(&conn, 99).expect("expire"), 0);
        assert_eq!(expire_partial(&conn, 100).expect("expire"), 1);
        assert!(find_subscriber(&conn, "REF001").expect("find").is_none());
    }
}
