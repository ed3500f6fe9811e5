//! Enrolment actions (`domain::enrolment` has the rules of access): a device's own
//! credential, windows, re-enrolment of a replaced or factory-reset device, rotation of a
//! device's own credential, and the account's per-device-secrets switch.

mod standing;

pub use standing::{
    DeviceEnrolment, State, counts, device_status, dismiss, impact_reenrol, open_until_enrolled,
    reenrol, revoke_for_replacement, set_window_max_days, status,
};

use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::Connection;

use crate::db::enrolment::{self as q, DeviceCredential, Window};
use crate::db::{self, devices};
use crate::domain::account::Account;
use crate::domain::audit::{Actor, Change};
use crate::domain::enrolment::{check_minutes, generate_password};
use crate::domain::mac::Mac;
use crate::error::{Error, Result};

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

/// Associated devices of the account that have not proved an own credential and whose
/// service withholding changes (not exempt by their declared family, not kept on secrets
/// since before withholding was the default), by MAC, with whether an enrolment window
/// covers each now.
fn not_enrolled(conn: &Connection, account: &Account) -> Result<Vec<(String, bool)>> {
    let now = db::now_secs();
    let windows = q::list_open_windows(conn, account.id.0, now)?;
    // Looked up per device, not searched: an import opens a window per device.
    let all_covered = windows.iter().any(|w| w.mac.is_none());
    let covered: std::collections::HashSet<String> =
        windows.iter().filter_map(|w| w.mac.clone()).collect();
    let mut stmt = conn.prepare_cached(
        "SELECT d.mac, c.enrolled_at, c.confirmed_at,
                CASE WHEN d.vendor_model <> '' THEN d.vendor_model
                     ELSE coalesce(p.vendor_model, '') END
         FROM devices d LEFT JOIN device_credentials c ON c.device_id = d.id
         LEFT JOIN profiles p ON p.id = d.profile_id
         WHERE d.account_id = ?1 AND d.profile_id IS NOT NULL
           AND d.secrets_until_enrolled = 0
         ORDER BY d.mac",
    )?;
    let rows = stmt
        .query_map([account.id.0], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows
        .into_iter()
        .filter(|(_, enrolled_at, confirmed_at, model)| {
            !crate::domain::enrolment::enrolled(*enrolled_at, *confirmed_at)
                && crate::domain::enrolment::adopts_own_credential(model)
        })
        .map(|(m, _, _, _)| {
            let open = all_covered || covered.contains(m.as_str());
            (m, open)
        })
        .collect())
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

/// A window an admin opens now for `minutes`, for one MAC or every device, from any address
/// or only `address`.
fn timed_window(
    account: &Account,
    mac: Option<&Mac>,
    minutes: u64,
    actor: &Actor,
    address: Option<std::net::IpAddr>,
) -> Window {
    let now = db::now_secs();
    Window {
        id: 0,
        account_id: account.id.0,
        mac: mac.map(Mac::to_string),
        opened_at: now,
        closes_at: now + (minutes * 60) as i64,
        opened_by: actor.name.clone(),
        until_enrolled: false,
        address: address.map(|a| a.to_string()),
    }
}

static CERTIFICATE_ONLY: AtomicBool = AtomicBool::new(false);

/// Devices enrol by certificate only: the vendor's device CA is configured
/// (`tls.client_auth` not off). Set once by the server and by every CLI command from the
/// configuration, before any device is associated or served.
pub fn set_certificate_only(on: bool) {
    CERTIFICATE_ONLY.store(on, Ordering::Relaxed);
}

/// Whether devices enrol by certificate only (`set_certificate_only`): association opens no
/// window, and an admin cannot open one.
pub fn certificate_only() -> bool {
    CERTIFICATE_ONLY.load(Ordering::Relaxed)
}

/// The refusal of a window while devices enrol by certificate only.
fn refuse_window_if_certificate_only() -> Result<()> {
    if certificate_only() {
        return Err(Error::Conflict(
            "devices enrol with their certificates (tls.client_auth with the device CA): no \
             enrolment window opens; a device enrols by presenting its certificate over HTTPS"
                .into(),
        ));
    }
    Ok(())
}

/// Opens an enrolment window of `minutes` for one MAC (which need not be associated yet)
/// or for every device of the account; `address`: only requests from there enrol in it.
pub fn open_window(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    minutes: u64,
    mac: Option<&Mac>,
    address: Option<std::net::IpAddr>,
) -> Result<Window> {
    check_minutes(minutes)?;
    refuse_window_if_certificate_only()?;
    let window = timed_window(account, mac, minutes, actor, address);
    db::write_tx(conn, |tx| {
        let w = q::insert_window(tx, &window)?;
        crate::db::audit::record(
            tx,
            actor,
            Change::new(
                Some(account.id.0),
                "enrolment.open",
                mac.map_or_else(|| "every device".to_string(), Mac::to_string),
            )
            .after(serde_json::json!({
                "minutes": minutes, "closes_at": w.closes_at, "address": w.address
            })),
        )?;
        Ok(w)
    })
}

/// The devices closing the account's windows (or those for one MAC) would serve less: not
/// enrolled, covered by a window now, in an account that withholds secrets.
pub fn impact_close_windows(
    conn: &Connection,
    account: &Account,
    mac: Option<&Mac>,
) -> Result<super::Impact> {
    if !account.device_secrets {
        return Ok(super::Impact::default());
    }
    Ok(super::Impact::of(
        not_enrolled(conn, account)?
            .into_iter()
            .filter(|(m, open)| *open && mac.is_none_or(|x| x.as_str() == m))
            .map(|(m, _)| {
                (
                    m,
                    "not enrolled yet: with the window closed the account credential gets no \
                     secret and no credential of its own for it"
                        .to_string(),
                )
            }),
    ))
}

/// Closes the account's open windows (or those for one MAC); the devices it would serve
/// less are counted first (`confirm`). Returns how many windows.
pub fn close_windows(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    mac: Option<&Mac>,
    confirm: bool,
) -> Result<usize> {
    db::write_tx(conn, |tx| {
        impact_close_windows(tx, account, mac)?.require(confirm, "closing enrolment windows")?;
        let n = q::close_windows(tx, account.id.0, mac.map(Mac::as_str), db::now_secs())?;
        crate::db::audit::record(
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
/// phone to present the account credential for it enrols again — unless devices enrol by
/// certificate only: then no window opens (`None`) and the device enrols with its
/// certificate.
pub fn reset(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    mac: &Mac,
    minutes: u64,
    confirm: bool,
) -> Result<Option<Window>> {
    check_minutes(minutes)?;
    let device = device_of(conn, account, mac)?;
    if q::find_device_credential(conn, device.id)?.is_some() {
        super::Impact::of([(
            mac.to_string(),
            "its own credential is forgotten: a phone still holding it is refused; a replaced \
             or factory-reset phone enrols again with the account credential"
                .to_string(),
        )])
        .require(confirm, "re-enrolling the device")?;
    }
    db::write_tx(conn, |tx| {
        let had = q::delete_device_credential(tx, device.id)?;
        // A replaced or factory-reset phone holds none of the platform values it had
        // confirmed: every one is delivered again.
        tx.execute(
            "DELETE FROM device_prov_state WHERE device_id = ?1",
            [device.id],
        )?;
        q::clear_claims(tx, device.id)?;
        let w = if certificate_only() {
            None
        } else {
            Some(q::insert_window(
                tx,
                &timed_window(account, Some(mac), minutes, actor, None),
            )?)
        };
        crate::db::audit::record(
            tx,
            actor,
            Change::new(Some(account.id.0), "enrolment.reset", mac.to_string())
                .before(serde_json::json!({"device_credential": if had { "set" } else { "none" }}))
                .after(serde_json::json!({
                    "device_credential": "none",
                    "window_minutes": w.as_ref().map(|_| minutes)
                })),
        )?;
        Ok(w)
    })
}

/// Rotates a device's own credential on the desired/confirmed mechanism: a new password is
/// delivered the next time the device authenticates with its current one, which stays
/// accepted until the device uses the new one.
pub fn rotate(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    mac: &Mac,
    confirm: bool,
) -> Result<()> {
    let device = device_of(conn, account, mac)?;
    super::Impact::of([(
        mac.to_string(),
        "sent a new credential of its own at its next request (it reboots); the current one \
         stays accepted until it uses the new one"
            .to_string(),
    )])
    .require(confirm, "rotating the device's credential")?;
    db::write_tx(conn, |tx| {
        let current = q::find_device_credential(tx, device.id)?.ok_or_else(|| {
            Error::Conflict(format!(
                "{mac} has not enrolled: it has no credential of its own to rotate"
            ))
        })?;
        // A password that was delivered may be held by the device: it stays accepted until
        // the device proves a newer one. One never delivered is replaced outright.
        let keep = current.confirmed_at.is_some() || current.deliveries > 0;
        q::store_device_credential(tx, device.id, &generate_password(), keep, db::now_secs())?;
        crate::db::audit::record(
            tx,
            actor,
            Change::new(Some(account.id.0), "enrolment.rotate", mac.to_string())
                .after(serde_json::json!({"device_credential": "rotated"})),
        )?;
        Ok(())
    })
}

/// The devices turning withholding on would serve less: not enrolled, so the account
/// credential no longer gets their SIP passwords or per-device files (and, outside a window,
/// no credential of their own either).
pub fn impact_device_secrets(conn: &Connection, account: &Account) -> Result<super::Impact> {
    Ok(super::Impact::of(
        not_enrolled(conn, account)?.into_iter().map(|(m, open)| {
            (
                m,
                if open {
                    "not enrolled: gets no SIP password with the account credential; it enrols \
                     (an enrolment window is open) and gets them with its own"
                } else {
                    "not enrolled: gets no SIP password or per-device file with the account \
                     credential until it enrols (open a window for it)"
                }
                .to_string(),
            )
        }),
    ))
}

/// Turns withholding on or off for an account; turning it on counts the devices it serves
/// less first (`confirm`). A device's own credential is accepted in both modes.
pub fn set_device_secrets(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    on: bool,
    confirm: bool,
) -> Result<()> {
    db::write_tx(conn, |tx| {
        if on
            && !account.device_secrets
            && !crate::domain::regress::on(crate::domain::regress::Defect::ModeUnconfirmed)
        {
            impact_device_secrets(tx, account)?.require(confirm, "withholding secrets")?;
        }
        q::set_device_secrets(tx, account.id.0, on)?;
        crate::db::audit::record(
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

    #[test]
    fn windows_reset_and_rotation_keep_the_old_password_until_the_new_one_is_used() {
        let mut conn = crate::db::open_in_memory().expect("db");
        let acc =
            crate::db::accounts::insert_account(&conn, "B", "branch", false, "u1", "password1")
                .expect("account");
        assert!(acc.device_secrets, "new accounts withhold secrets");
        let mac: Mac = "0004f2000001".parse().expect("mac");
        let actor = Actor::person("admin");
        let err = open_window(&mut conn, &actor, &acc, 0, Some(&mac), None).expect_err("zero");
        assert!(err.to_string().contains("minutes"), "{err}");
        let w = open_window(&mut conn, &actor, &acc, 30, Some(&mac), None).expect("open");
        assert_eq!(w.mac.as_deref(), Some("0004f2000001"));
        assert!(q::window_open_for(&conn, acc.id.0, "0004f2000001", db::now_secs()).expect("q"));
        assert!(!q::window_open_for(&conn, acc.id.0, "0004f2000002", db::now_secs()).expect("q"));
        assert_eq!(
            close_windows(&mut conn, &actor, &acc, None, true).expect("close"),
            1
        );
        assert!(!q::window_open_for(&conn, acc.id.0, "0004f2000001", db::now_secs()).expect("q"));

        conn.execute(
            "INSERT INTO devices (id, account_id, mac, serial, created_at, updated_at)
             VALUES (7, ?1, '0004f2000001', '0004F2000001', 1, 1)",
            [acc.id.0],
        )
        .expect("device");
        let err = rotate(&mut conn, &actor, &acc, &mac, true).expect_err("not enrolled");
        assert!(matches!(err, Error::Conflict(_)));
        let first = ensure_credential(&conn, 7).expect("created");
        assert_eq!(ensure_credential(&conn, 7).expect("same"), first);
        q::confirm_device_credential(&conn, 7, 5).expect("confirm");
        rotate(&mut conn, &actor, &acc, &mac, true).expect("rotate");
        let rotated = q::find_device_credential(&conn, 7)
            .expect("q")
            .expect("row");
        assert_ne!(rotated.password, first.password);
        assert_eq!(rotated.outstanding, std::slice::from_ref(&first.password));
        assert!(rotated.confirmed_at.is_none());
        q::confirm_device_credential(&conn, 7, 6).expect("confirm");
        let done = q::find_device_credential(&conn, 7)
            .expect("q")
            .expect("row");
        assert!(done.outstanding.is_empty() && done.confirmed_at == Some(6));
        assert_eq!(
            done.retired,
            std::slice::from_ref(&first.password),
            "kept for a re-admission"
        );

        let err = reset(&mut conn, &actor, &acc, &mac, 15, false).expect_err("counted first");
        assert!(matches!(err, Error::NeedsConfirmation { devices: 1, .. }));
        reset(&mut conn, &actor, &acc, &mac, 15, true).expect("reset");
        assert!(q::find_device_credential(&conn, 7).expect("q").is_none());
        assert!(q::window_open_for(&conn, acc.id.0, "0004f2000001", db::now_secs()).expect("q"));
    }

    /// The dashboard's counts equal the states the Enrolment page lists, device by device
    /// kinds: no credential, a window for its MAC, an account-wide window, delivered, given
    /// up, served before enrolling, enrolled, contested, a video endpoint (exempt).
    #[test]
    fn counts_agree_with_the_listed_states() {
        let conn = crate::db::open_in_memory().expect("db");
        let acc =
            crate::db::accounts::insert_account(&conn, "B", "branch", false, "u1", "password1")
                .expect("account");
        let a = acc.id.0;
        conn.execute_batch(&format!(
            "INSERT INTO profiles (id, account_id, name, created_at, updated_at)
                 VALUES (1, {a}, 'p', 1, 1);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40)
             INSERT INTO devices (id, account_id, mac, serial, vendor_model, profile_id,
                                  secrets_until_enrolled, created_at, updated_at)
                 SELECT i, {a}, printf('0004f2%06x', i), '',
                        CASE WHEN i % 9 = 0 THEN 'Polycom Video Endpoint' ELSE '' END,
                        CASE WHEN i % 13 = 0 THEN NULL ELSE 1 END, i % 7 = 0, 1, 1 FROM n;
             INSERT INTO device_credentials (device_id, password, created_at, confirmed_at,
                                             deliveries, enrolled_at, contested_at)
                 SELECT id, 'x', 1, CASE WHEN id % 5 = 0 THEN 2 END, id % 4 * 3,
                        CASE WHEN id % 6 = 0 THEN 3 END, CASE WHEN id % 8 = 0 THEN 4 END
                 FROM devices WHERE id % 2 = 0;"
        ))
        .expect("devices");
        let listed = |conn: &Connection| {
            let all = status(conn, &acc).expect("status");
            (
                all.iter().filter(|d| d.state.not_enrolled()).count(),
                all.iter().filter(|d| d.state == State::Contested).count(),
            )
        };
        let no_window = counts(&conn, &acc).expect("counts");
        assert_eq!(no_window, listed(&conn));
        assert!(no_window.0 > 0 && no_window.1 > 0, "{no_window:?}");
        let now = db::now_secs();
        conn.execute(
            "INSERT INTO enrolment_windows (account_id, mac, opened_at, closes_at)
             VALUES (?1, '0004f2000003', ?2, ?3)",
            rusqlite::params![a, now, now + 600],
        )
        .expect("window for a MAC");
        assert_eq!(counts(&conn, &acc).expect("counts"), listed(&conn));
        conn.execute(
            "INSERT INTO enrolment_windows (account_id, mac, opened_at, closes_at)
             VALUES (?1, NULL, ?2, ?3)",
            rusqlite::params![a, now, now + 600],
        )
        .expect("window for all");
        assert_eq!(counts(&conn, &acc).expect("counts"), listed(&conn));
    }
}
