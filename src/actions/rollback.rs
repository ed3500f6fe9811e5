//! What a restore would take away from phones (I10, `domain::machine`): a backup is older
//! than the database it replaces, and phones may since have adopted a credential the backup
//! does not know — an account generation made after it, or an own credential handed out
//! after it. Restoring would refuse them. So a restore first reads what each database
//! accepts and counts the phones that hold something only the current one accepts; the
//! admin confirms before anything is replaced.
//!
//! What a phone holds is known from evidence: the generation its latest recognised request
//! used (`device_sync`), and for an own credential, the passwords sent to it and not yet
//! superseded by one it proved. The comparison is by user and password (generation numbers
//! of two databases need not match), and a generation the backup has but whose grace window
//! has closed there counts as not accepted. Per-device rules (floors, eligibility) are left
//! out: they only ever refuse more, and the count is of what the backup lacks.

use std::collections::{BTreeMap, HashMap, HashSet};

use rusqlite::Connection;

use super::Impact;
use crate::db::secrets::{self, Credential, SecretKey};
use crate::domain::machine::OWN_CREDENTIAL;
use crate::domain::time::format_time;
use crate::error::Result;

/// An account credential a database accepts: `(user, password)`, and until when (`None`:
/// the current generation).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Generation {
    user: String,
    password: String,
    created_at: i64,
    until: Option<i64>,
}

/// What one device was last seen holding, and the own passwords it may hold.
#[derive(Debug, Clone, Default)]
struct Device {
    account: String,
    /// `(generation, when)` of its latest recognised request.
    held: Option<(i64, i64)>,
    /// When it was associated, and the generation below which it is refused.
    associated_at: Option<i64>,
    floor: Option<i64>,
    /// Own passwords sent to it and not superseded by one it proved.
    own: Vec<String>,
    own_since: i64,
}

/// What a database accepts from phones and what its phones hold.
#[derive(Debug, Default)]
pub struct Accepts {
    /// Per account slug, its generations by number.
    generations: HashMap<String, BTreeMap<i64, Generation>>,
    /// Own passwords accepted, per MAC.
    own: HashMap<String, HashSet<String>>,
    devices: BTreeMap<String, Device>,
}

/// Opens a stored credential with `key`, or with the installed key when `None`.
fn open(key: Option<&SecretKey>, c: Credential<'_>, stored: &str) -> Result<String> {
    match key {
        Some(k) => secrets::open_in_with(k, c, stored),
        None => secrets::open_in(c, stored),
    }
}

/// Reads what the database on `conn` accepts (secrets opened with `key`, or the installed
/// key). The database must be at the current schema.
pub fn read(conn: &Connection, key: Option<&SecretKey>) -> Result<Accepts> {
    let mut out = Accepts::default();
    let mut stmt = conn.prepare(
        "SELECT a.slug, c.generation, c.user, c.password, c.retired_at, c.accept_until,
                c.created_at, c.account_id
         FROM account_credentials c JOIN accounts a ON a.id = c.account_id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Option<i64>>(4)?,
            r.get::<_, Option<i64>>(5)?,
            r.get::<_, i64>(6)?,
            r.get::<_, i64>(7)?,
        ))
    })?;
    for row in rows {
        let (slug, generation, user, password, retired, until, created_at, account_id) = row?;
        let until = retired.map(|r| until.unwrap_or(r));
        out.generations.entry(slug).or_default().insert(
            generation,
            Generation {
                user,
                password: open(
                    key,
                    Credential::Account {
                        account_id,
                        generation,
                    },
                    &password,
                )?,
                created_at,
                until,
            },
        );
    }
    let mut stmt = conn.prepare(
        "SELECT d.mac, a.slug, s.generation, s.generation_at, c.password, c.created_at,
                c.confirmed_at, c.deliveries, d.associated_at, s.floor_generation, d.id
         FROM devices d JOIN accounts a ON a.id = d.account_id
         LEFT JOIN device_sync s ON s.device_id = d.id
         LEFT JOIN device_credentials c ON c.device_id = d.id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<i64>>(2)?,
            r.get::<_, Option<i64>>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, Option<i64>>(5)?,
            r.get::<_, Option<i64>>(6)?,
            r.get::<_, Option<i64>>(7)?,
            r.get::<_, Option<i64>>(8)?,
            r.get::<_, Option<i64>>(9)?,
            r.get::<_, i64>(10)?,
        ))
    })?;
    for row in rows {
        let (
            mac,
            account,
            generation,
            at,
            password,
            created,
            confirmed,
            deliveries,
            associated_at,
            floor,
            device_id,
        ) = row?;
        let mut device = Device {
            account,
            held: generation.map(|g| (g, at.unwrap_or(0))),
            associated_at,
            floor,
            own_since: created.unwrap_or(0),
            ..Device::default()
        };
        if let Some(p) = password {
            let p = open(key, Credential::Own(device_id), &p)?;
            out.own.entry(mac.clone()).or_default().insert(p.clone());
            // Only a password sent (or proved) may be held: one a rotation made and never
            // sent is held by nobody.
            if confirmed.is_some() || deliveries.unwrap_or(0) > 0 {
                device.own.push(p);
            }
        }
        out.devices.insert(mac, device);
    }
    let mut stmt = conn.prepare(
        "SELECT d.mac, h.password, h.device_id FROM device_credential_history h
         JOIN devices d ON d.id = h.device_id WHERE h.retired_at IS NULL",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (mac, stored, device_id) = row?;
        let p = open(key, Credential::Own(device_id), &stored)?;
        out.own.entry(mac.clone()).or_default().insert(p.clone());
        if let Some(d) = out.devices.get_mut(&mac) {
            d.own.push(p);
        }
    }
    Ok(out)
}

impl Accepts {
    /// Whether this database accepts `(user, password)` for the account `slug` at `now`.
    fn accepts_account(&self, slug: &str, user: &str, password: &str, now: i64) -> bool {
        self.generations.get(slug).is_some_and(|gens| {
            gens.values().any(|g| {
                g.user == user && g.password == password && g.until.is_none_or(|u| now < u)
            })
        })
    }
}

/// The phones that hold a credential `current` accepts and `restored` does not, each with
/// why: what a restore must count and confirm first.
pub fn impact(current: &Accepts, restored: &Accepts, now: i64) -> Impact {
    let mut phones = Vec::new();
    for (mac, d) in &current.devices {
        let own_lost = !d.own.is_empty()
            && restored
                .own
                .get(mac)
                .is_none_or(|set| d.own.iter().any(|p| !set.contains(p)));
        if own_lost {
            phones.push((
                mac.clone(),
                format!(
                    "holds its own credential (made {}), which the backup does not have",
                    format_time(d.own_since)
                ),
            ));
            continue;
        }
        if d.held.is_some_and(|(g, _)| g == OWN_CREDENTIAL) {
            continue;
        }
        let Some(gens) = current.generations.get(&d.account) else {
            continue;
        };
        // An account-credential request proves nothing about the phone: it may hold any
        // generation from the oldest it may hold up to the current one (I2), and the one
        // it was last seen with.
        let associated = d.associated_at.map_or(0, |t| {
            gens.iter()
                .rev()
                .find(|(_, g)| g.created_at < t)
                .or(gens.iter().next())
                .map_or(0, |(n, _)| *n)
        });
        let oldest = associated.max(d.floor.unwrap_or(0));
        let lost = gens.iter().find(|(n, g)| {
            let may_hold = **n >= oldest || d.held.is_some_and(|(h, _)| h == **n);
            may_hold
                && g.until.is_none_or(|u| now < u)
                && !restored.accepts_account(&d.account, &g.user, &g.password, now)
        });
        if let Some((g, _)) = lost {
            let seen = match d.held {
                Some((h, at)) => format!("last seen {} with generation {h}", format_time(at)),
                None => "never seen".to_string(),
            };
            phones.push((
                mac.clone(),
                format!(
                    "may hold credential generation {g}, which the backup does not accept \
                     ({seen})"
                ),
            ));
        }
    }
    Impact::of(phones)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let conn = crate::db::open_in_memory().expect("db");
        conn.execute_batch(
            "INSERT INTO accounts (id, name, slug, service_key, created_at, updated_at)
                 VALUES (7, 'A', 'a', 'k7', 1, 1);
             INSERT INTO account_credentials (account_id, generation, user, password,
                 created_at, retired_at, accept_until)
                 VALUES (7, 1, 'PlcmSpIp', 'one', 1, NULL, NULL);
             INSERT INTO devices (id, account_id, mac, serial, created_at, updated_at)
                 VALUES (1, 7, '0004f2000001', 'S1', 1, 1), (2, 7, '0004f2000002', 'S2', 1, 1),
                        (3, 7, '0004f2000003', 'S3', 1, 1);
             INSERT INTO device_sync (device_id, generation, generation_at) VALUES (1, 1, 5);",
        )
        .expect("rows");
        conn
    }

    #[test]
    fn phones_holding_what_only_the_current_database_accepts_are_counted() {
        let backup = db();
        let current = db();
        // Since the backup: a rotation phone 1 adopted, and an own credential phone 2 proved.
        current
            .execute_batch(
                "UPDATE account_credentials SET retired_at = 10, accept_until = 100;
                 INSERT INTO account_credentials (account_id, generation, user, password,
                     created_at) VALUES (7, 2, 'PlcmSpIp', 'two', 10);
                 UPDATE device_sync SET generation = 2, generation_at = 20 WHERE device_id = 1;
                 INSERT INTO device_credentials (device_id, password, created_at, enrolled_at,
                     confirmed_at) VALUES (2, 'own-2', 15, 16, 16);
                 INSERT INTO device_credentials (device_id, password, created_at, enrolled_at)
                     VALUES (3, 'made-never-sent', 15, 16);
                 INSERT INTO device_sync (device_id, generation, generation_at)
                     VALUES (2, -1, 16);",
            )
            .expect("rows");
        let (c, b) = (
            read(&current, None).expect("c"),
            read(&backup, None).expect("b"),
        );
        let impact = impact(&c, &b, 50);
        // Phone 3, never seen, may have been given generation 2 (by DHCP option 160, say):
        // counted too; its own credential was never sent, so nobody holds that.
        assert_eq!(
            impact.macs,
            ["0004f2000001", "0004f2000002", "0004f2000003"],
            "{impact:?}"
        );
        assert!(impact.phones[0].reason.contains("generation 2"));
        assert!(impact.phones[1].reason.contains("own credential"));
        assert!(impact.phones[2].reason.contains("never seen"));
        // Restoring the same database takes nothing.
        assert_eq!(super::impact(&c, &c, 50).locked_out, 0);
        // A backup that has generation 2 but whose window for it closed counts it too.
        let newer = db();
        newer
            .execute_batch(
                "UPDATE account_credentials SET password = 'two', retired_at = 30,
                     accept_until = 40;
                 INSERT INTO account_credentials (account_id, generation, user, password,
                     created_at) VALUES (7, 2, 'PlcmSpIp', 'three', 30);",
            )
            .expect("rows");
        let n = read(&newer, None).expect("n");
        let at = |now| super::impact(&c, &n, now);
        // Phones 1 and 3 may still hold generation 1 (`one`, accepted here until 100),
        // which that backup never had; phone 1 also generation 2 once its window there
        // closed.
        let open = at(35);
        assert_eq!(open.macs, ["0004f2000001", "0004f2000002", "0004f2000003"]);
        assert!(open.phones[0].reason.contains("generation 1"), "{open:?}");
        // With generation 1's window closed here too, only generation 2 matters.
        current
            .execute(
                "UPDATE account_credentials SET accept_until = 30 WHERE generation = 1",
                [],
            )
            .expect("close");
        let c = read(&current, None).expect("c");
        let at = |now| super::impact(&c, &n, now).macs;
        assert_eq!(at(35), ["0004f2000002"], "window open at 35");
        assert_eq!(
            at(45),
            ["0004f2000001", "0004f2000002", "0004f2000003"],
            "closed at 45"
        );
    }
}
