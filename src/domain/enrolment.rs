//! Per-device credentials and enrolment (DESIGN §6, "secrets withheld until the device
//! proves itself"): what a request may be served, and the admin actions that open
//! enrolment, re-enrol a replaced or factory-reset device, and rotate a device's credential.
//!
//! In an account with `device_secrets`, the account credential is an *enrolment*
//! credential: a device using it gets configuration without secrets, plus — only inside an
//! enrolment window an admin opened, or with a verified device certificate naming its MAC —
//! its own credential (user = MAC, a generated password) through the desired/confirmed
//! mechanism. Knowing a MAC (printed on a label) and the account credential is not proof:
//! a stranger outside a window gets nothing secret, and once a device has confirmed its own
//! credential the account credential never hands it out again. Secrets and per-device files
//! need the device's own credential or the certificate. The CLI and (later) the console
//! call the same functions; HTTP handlers only call `access`.

use rusqlite::Connection;

use super::account::{Account, random_token};
use super::audit::{self, Actor, Change};
use super::mac::Mac;
use crate::db::enrolment::{self as q, DeviceCredential, Window};
use crate::db::{self, devices};
use crate::error::{Error, Result};

/// Longest enrolment window an admin may open, in minutes (a week).
pub const MAX_WINDOW_MINUTES: u64 = 7 * 24 * 60;
/// Characters of a generated device password (56-letter alphabet: over 200 bits).
const PASSWORD_LEN: usize = 36;

/// What a request may be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Everything: the device proved itself (its own credential or a verified certificate
    /// for its MAC), or the account does not withhold secrets.
    Full,
    /// The account credential inside an enrolment window: no secrets, but the device's own
    /// credential is delivered.
    Enrol,
    /// The account credential outside a window, or for a device already enrolled: no
    /// secrets, no credentials, no per-device files.
    Withheld,
}

impl Access {
    /// Whether secrets are left out of served files.
    pub fn withholds(self) -> bool {
        self != Access::Full
    }

    /// The label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Access::Full => "full",
            Access::Enrol => "enrol",
            Access::Withheld => "withheld",
        }
    }
}

/// How a request authenticated, as far as enrolment cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proof {
    /// With the device's own credential (user = its MAC).
    pub device_credential: bool,
    /// Over TLS with a verified client certificate naming this MAC.
    pub certificate: bool,
}

/// What a request for `account`'s device may be served. `credential` is the device's own
/// credential if it has one, `window_open` whether an enrolment window covers it now.
pub fn access(
    account: &Account,
    proof: Proof,
    credential: Option<&DeviceCredential>,
    window_open: bool,
) -> Access {
    if !account.device_secrets || proof.device_credential || proof.certificate {
        return Access::Full;
    }
    let enrolled = credential.is_some_and(|c| c.confirmed_at.is_some());
    if window_open && !enrolled {
        Access::Enrol
    } else {
        Access::Withheld
    }
}

/// A new device password.
pub fn generate_password() -> String {
    random_token(PASSWORD_LEN)
}

/// The device's credential, created when it has none (at enrolment). Synchronous: the
/// password must be the same on every request until the device confirms it.
pub fn ensure_credential(conn: &Connection, device_id: i64) -> Result<DeviceCredential> {
    if let Some(c) = q::find_device_credential(conn, device_id)? {
        return Ok(c);
    }
    db::atomic(conn, |conn| {
        if let Some(c) = q::find_device_credential(conn, device_id)? {
            return Ok(c);
        }
        q::store_device_credential(conn, device_id, &generate_password(), false, db::now_secs())?;
        q::find_device_credential(conn, device_id)?
            .ok_or_else(|| Error::not_found(format!("device {device_id}")))
    })
}

fn check_minutes(minutes: u64) -> Result<()> {
    if minutes == 0 || minutes > MAX_WINDOW_MINUTES {
        return Err(Error::invalid(
            "minutes",
            format!("an enrolment window lasts 1 to {MAX_WINDOW_MINUTES} minutes"),
        ));
    }
    Ok(())
}

/// Finds a device of the account by MAC, or a "not found" naming it.
fn device_of(
    conn: &Connection,
    account: &Account,
    mac: &Mac,
) -> Result<crate::domain::device::Device> {
    devices::find_device_by_mac(conn, mac)?
        .filter(|d| d.account_id == account.id.0)
        .ok_or_else(|| Error::not_found(format!("device {mac} in account {}", account.slug)))
}

/// Opens an enrolment window of `minutes` for one MAC (which need not be associated yet)
/// or for every device of the account.
pub fn open_window(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    minutes: u64,
    mac: Option<&Mac>,
) -> Result<Window> {
    check_minutes(minutes)?;
    let now = db::now_secs();
    let closes = now + (minutes * 60) as i64;
    db::write_tx(conn, |tx| {
        let id = q::insert_window(
            tx,
            account.id.0,
            mac.map(Mac::as_str),
            now,
            closes,
            &actor.name,
        )?;
        audit::record(
            tx,
            actor,
            Change::new(
                Some(account.id.0),
                "enrolment.open",
                mac.map_or_else(|| "every device".to_string(), Mac::to_string),
            )
            .after(serde_json::json!({"minutes": minutes, "closes_at": closes})),
        )?;
        Ok(Window {
            id,
            account_id: account.id.0,
            mac: mac.map(Mac::to_string),
            opened_at: now,
            closes_at: closes,
            opened_by: actor.name.clone(),
        })
    })
}

/// Closes the account's open windows (or those for one MAC). Returns how many.
pub fn close_windows(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    mac: Option<&Mac>,
) -> Result<usize> {
    db::write_tx(conn, |tx| {
        let n = q::close_windows(tx, account.id.0, mac.map(Mac::as_str), db::now_secs())?;
        audit::record(
            tx,
            actor,
            Change::new(
                Some(account.id.0),
                "enrolment.close",
                mac.map_or_else(|| "every device".to_string(), Mac::to_string),
            )
            .after(serde_json::json!({"closed": n})),
        )?;
        Ok(n)
    })
}

/// Re-enrols a replaced or factory-reset device in one action: its credential and what it
/// was known to hold are forgotten and a window of `minutes` opens for its MAC, so the next
/// phone to present the account credential for it enrols again.
pub fn reset(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    mac: &Mac,
    minutes: u64,
) -> Result<Window> {
    check_minutes(minutes)?;
    let device = device_of(conn, account, mac)?;
    let now = db::now_secs();
    let closes = now + (minutes * 60) as i64;
    db::write_tx(conn, |tx| {
        let had = q::delete_device_credential(tx, device.id)?;
        // A replaced or factory-reset phone holds none of the platform values it had
        // confirmed: every one is delivered again.
        tx.execute(
            "DELETE FROM device_prov_state WHERE device_id = ?1",
            [device.id],
        )?;
        let id = q::insert_window(
            tx,
            account.id.0,
            Some(mac.as_str()),
            now,
            closes,
            &actor.name,
        )?;
        audit::record(
            tx,
            actor,
            Change::new(Some(account.id.0), "enrolment.reset", mac.to_string())
                .before(serde_json::json!({"device_credential": if had { "set" } else { "none" }}))
                .after(serde_json::json!({"device_credential": "none", "window_minutes": minutes})),
        )?;
        Ok(Window {
            id,
            account_id: account.id.0,
            mac: Some(mac.to_string()),
            opened_at: now,
            closes_at: closes,
            opened_by: actor.name.clone(),
        })
    })
}

/// Rotates a device's own credential on the desired/confirmed mechanism: a new password is
/// delivered the next time the device authenticates with its current one, which stays
/// accepted until the device uses the new one.
pub fn rotate(conn: &mut Connection, actor: &Actor, account: &Account, mac: &Mac) -> Result<()> {
    let device = device_of(conn, account, mac)?;
    db::write_tx(conn, |tx| {
        let current = q::find_device_credential(tx, device.id)?.ok_or_else(|| {
            Error::Conflict(format!(
                "{mac} has not enrolled: it has no credential of its own to rotate"
            ))
        })?;
        // An unconfirmed credential has not reached the device: replace it outright, and
        // keep whatever older one the device may still hold.
        let keep = current.confirmed_at.is_some();
        let previous_kept = current.previous.clone();
        q::store_device_credential(tx, device.id, &generate_password(), keep, db::now_secs())?;
        if !keep && let Some(p) = previous_kept {
            tx.execute(
                "UPDATE device_credentials SET previous = ?2 WHERE device_id = ?1",
                rusqlite::params![device.id, crate::db::secrets::seal(&p)],
            )?;
        }
        audit::record(
            tx,
            actor,
            Change::new(Some(account.id.0), "enrolment.rotate", mac.to_string())
                .after(serde_json::json!({"device_credential": "rotated"})),
        )?;
        Ok(())
    })
}

/// Turns withholding on or off for an account.
pub fn set_device_secrets(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    on: bool,
) -> Result<()> {
    db::write_tx(conn, |tx| {
        q::set_device_secrets(tx, account.id.0, on)?;
        audit::record(
            tx,
            actor,
            Change::new(
                Some(account.id.0),
                "account.device-secrets",
                account.slug.clone(),
            )
            .before(serde_json::json!({"device_secrets": account.device_secrets}))
            .after(serde_json::json!({"device_secrets": on})),
        )?;
        Ok(())
    })
}

/// The account's windows open now.
pub fn list_windows(conn: &Connection, account: &Account) -> Result<Vec<Window>> {
    q::list_open_windows(conn, account.id.0, db::now_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::account::{AccountId, UnknownDevices};

    fn account(on: bool) -> Account {
        Account {
            id: AccountId(1),
            name: "A".into(),
            slug: "a".into(),
            service_key: "k".into(),
            is_default: false,
            provisioning_enabled: true,
            device_user: Some("u".into()),
            device_password: Some("p".into()),
            credential_generation: 1,
            autosync_enabled: true,
            unknown_devices: UnknownDevices::Stage,
            default_profile_id: None,
            device_secrets: on,
        }
    }

    fn cred(confirmed: bool) -> DeviceCredential {
        DeviceCredential {
            device_id: 1,
            password: "pw".into(),
            previous: None,
            created_at: 1,
            confirmed_at: confirmed.then_some(2),
        }
    }

    const NONE: Proof = Proof {
        device_credential: false,
        certificate: false,
    };

    #[test]
    fn the_account_credential_enrols_only_inside_a_window_and_never_an_enrolled_device() {
        let a = account(true);
        assert_eq!(access(&a, NONE, None, false), Access::Withheld);
        assert_eq!(access(&a, NONE, None, true), Access::Enrol);
        assert_eq!(access(&a, NONE, Some(&cred(false)), true), Access::Enrol);
        // Enrolled: a stranger with the account credential gets nothing, window or not.
        assert_eq!(access(&a, NONE, Some(&cred(true)), true), Access::Withheld);
        let own = Proof {
            device_credential: true,
            certificate: false,
        };
        assert_eq!(access(&a, own, Some(&cred(true)), false), Access::Full);
        let cert = Proof {
            device_credential: false,
            certificate: true,
        };
        assert_eq!(access(&a, cert, None, false), Access::Full);
        // Accounts that do not withhold serve as before.
        assert_eq!(access(&account(false), NONE, None, false), Access::Full);
    }

    #[test]
    fn windows_reset_and_rotation_keep_the_old_password_until_the_new_one_is_used() {
        let mut conn = crate::db::open_in_memory().expect("db");
        let acc =
            crate::db::accounts::insert_account(&conn, "B", "branch", false, "u1", "password1")
                .expect("account");
        assert!(acc.device_secrets, "new accounts withhold secrets");
        let mac: Mac = "0004f2000001".parse().expect("mac");
        let actor = Actor::person("admin");
        let err = open_window(&mut conn, &actor, &acc, 0, Some(&mac)).expect_err("zero");
        assert!(err.to_string().contains("minutes"), "{err}");
        let w = open_window(&mut conn, &actor, &acc, 30, Some(&mac)).expect("open");
        assert_eq!(w.mac.as_deref(), Some("0004f2000001"));
        assert!(q::window_open_for(&conn, acc.id.0, "0004f2000001", db::now_secs()).expect("q"));
        assert!(!q::window_open_for(&conn, acc.id.0, "0004f2000002", db::now_secs()).expect("q"));
        assert_eq!(
            close_windows(&mut conn, &actor, &acc, None).expect("close"),
            1
        );
        assert!(!q::window_open_for(&conn, acc.id.0, "0004f2000001", db::now_secs()).expect("q"));

        conn.execute(
            "INSERT INTO devices (id, account_id, mac, serial, created_at, updated_at)
             VALUES (7, ?1, '0004f2000001', '0004F2000001', 1, 1)",
            [acc.id.0],
        )
        .expect("device");
        let err = rotate(&mut conn, &actor, &acc, &mac).expect_err("not enrolled");
        assert!(matches!(err, Error::Conflict(_)));
        let first = ensure_credential(&conn, 7).expect("created");
        assert_eq!(ensure_credential(&conn, 7).expect("same"), first);
        q::confirm_device_credential(&conn, 7, 5).expect("confirm");
        rotate(&mut conn, &actor, &acc, &mac).expect("rotate");
        let rotated = q::find_device_credential(&conn, 7)
            .expect("q")
            .expect("row");
        assert_ne!(rotated.password, first.password);
        assert_eq!(rotated.previous.as_deref(), Some(first.password.as_str()));
        assert!(rotated.confirmed_at.is_none());
        q::confirm_device_credential(&conn, 7, 6).expect("confirm");
        let done = q::find_device_credential(&conn, 7)
            .expect("q")
            .expect("row");
        assert!(done.previous.is_none() && done.confirmed_at == Some(6));

        reset(&mut conn, &actor, &acc, &mac, 15).expect("reset");
        assert!(q::find_device_credential(&conn, 7).expect("q").is_none());
        assert!(q::window_open_for(&conn, acc.id.0, "0004f2000001", db::now_secs()).expect("q"));
    }
}
