//! Queries on `accounts`.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::now_secs;
use crate::domain::account::{Account, AccountId, AccountSip, UnknownDevices, random_token};
use crate::error::{Error, Result};

const COLUMNS: &str = "id, name, slug, service_key, is_default, provisioning_enabled, device_user, \
     device_password, credential_generation, autosync_enabled, unknown_devices, default_profile_id, \
     device_secrets, tftp_credential, sip_validation, apply_after_change, online_check, ftp_factory_login";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Account> {
    let unknown: String = r.get(10)?;
    let id: i64 = r.get(0)?;
    let generation: i64 = r.get(8)?;
    Ok(Account {
        id: AccountId(id),
        name: r.get(1)?,
        slug: r.get(2)?,
        service_key: r.get(3)?,
        is_default: r.get(4)?,
        provisioning_enabled: r.get(5)?,
        device_user: r.get(6)?,
        device_password: r
            .get::<_, Option<String>>(7)?
            .map(|stored| {
                super::secrets::open_in_sql(
                    super::secrets::Credential::Account {
                        account_id: id,
                        generation,
                    },
                    stored,
                )
            })
            .transpose()?,
        credential_generation: generation,
        autosync_enabled: r.get(9)?,
        // The CHECK constraint admits only the four values.
        unknown_devices: UnknownDevices::parse(&unknown).unwrap_or(UnknownDevices::Stage),
        default_profile_id: r.get(11)?,
        device_secrets: r.get(12)?,
        tftp_credential: r.get(13)?,
        ftp_factory_login: r.get(17)?,
        sip: AccountSip {
            validation: r.get(14)?,
            apply_after_change: r.get::<_, String>(15)? == "now",
            online_check: r.get(16)?,
        },
    })
}

/// The default account, if created.
pub fn find_default(conn: &Connection) -> Result<Option<Account>> {
    let sql = format!("SELECT {COLUMNS} FROM accounts WHERE is_default = 1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([], from_row)
        .optional()?)
}

pub fn find_by_id(conn: &Connection, id: AccountId) -> Result<Option<Account>> {
    let sql = format!("SELECT {COLUMNS} FROM accounts WHERE id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id.0], from_row)
        .optional()?)
}

pub fn find_by_slug(conn: &Connection, slug: &str) -> Result<Option<Account>> {
    let sql = format!("SELECT {COLUMNS} FROM accounts WHERE slug = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([slug], from_row)
        .optional()?)
}

pub fn list_accounts(conn: &Connection) -> Result<Vec<Account>> {
    let sql = format!("SELECT {COLUMNS} FROM accounts ORDER BY id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Creates the default account on first start, with generated device credentials.
/// Returns the account and whether it was created now.
pub fn ensure_default(conn: &Connection) -> Result<(Account, bool)> {
    if let Some(a) = find_default(conn)? {
        return Ok((a, false));
    }
    let account = insert_account(
        conn,
        "Default",
        "default",
        true,
        "provision",
        &random_token(20),
    )?;
    Ok((account, true))
}

/// Creates an account with a fresh service key; a trigger stores its credentials as the
/// first generation.
pub fn insert_account(
    conn: &Connection,
    name: &str,
    slug: &str,
    is_default: bool,
    user: &str,
    password: &str,
) -> Result<Account> {
    let now = now_secs();
    let inserted = conn.execute(
        // Every account, the default one included, withholds secrets until a device proves
        // itself (domain::enrolment).
        "INSERT INTO accounts (name, slug, service_key, is_default, device_user, device_password,
                               created_at, updated_at, device_secrets)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, 1)",
        params![
            name,
            slug,
            random_token(16),
            is_default,
            user,
            super::secrets::seal_unbound(
                super::secrets::Credential::Account {
                    account_id: 0,
                    generation: 0,
                },
                password,
            ),
            now
        ],
    );
    match inserted {
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            return Err(Error::Conflict(format!(
                "an account with the slug `{slug}` exists already"
            )));
        }
        other => other?,
    };
    let id = AccountId(conn.last_insert_rowid());
    // Sealed unbound above (the id was not known): now bound to the account.
    super::secrets::bind_inserted(conn, "accounts", id.0)?;
    find_by_id(conn, id)?.ok_or_else(|| Error::Schema("new account vanished".into()))
}

/// Sets an account's device credentials, starting a new credential generation with the
/// default grace window for the old one. Returns the new generation. Actions go through
/// `actions::accounts::set_credentials`, which also checks, confirms and audits; this is the
/// bare write, for tests and fixtures.
pub fn update_credentials(
    conn: &Connection,
    id: AccountId,
    user: &str,
    password: &str,
) -> Result<i64> {
    let history = super::credentials::load_history(conn, id)?;
    let grace = super::credentials::load_settings(conn, id)?.grace_days;
    let next = history.rotated(now_secs(), user, password, grace, false);
    super::credentials::store_history(conn, id, &next)?;
    Ok(next.current())
}

/// Renames an account (its display name; the slug stays).
pub fn update_name(conn: &Connection, id: AccountId, name: &str) -> Result<()> {
    conn.execute(
        "UPDATE accounts SET name = ?2, updated_at = ?3 WHERE id = ?1",
        params![id.0, name, now_secs()],
    )?;
    Ok(())
}

/// Sets what an account does with unknown phones.
pub fn update_unknown_devices(
    conn: &Connection,
    id: AccountId,
    policy: UnknownDevices,
    default_profile_id: Option<i64>,
) -> Result<()> {
    conn.execute(
        "UPDATE accounts SET unknown_devices = ?2, default_profile_id = ?3, updated_at = ?4 WHERE id = ?1",
        params![id.0, policy.as_str(), default_profile_id, now_secs()],
    )?;
    Ok(())
}

/// The configuration revision (bumped by triggers on every change to served data).
pub fn config_revision(conn: &Connection) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT value FROM config_revision WHERE id = 1")?
        .query_row([], |r| r.get(0))?)
}

/// Reads a setting.
pub fn get_setting(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

/// Reads a setting, creating it with `make()` if absent (first writer wins).
pub fn get_or_create_setting(
    conn: &Connection,
    key: &str,
    make: impl FnOnce() -> String,
) -> Result<String> {
    conn.execute(
        "INSERT OR IGNORE INTO settings (key, value) VALUES (?1, ?2)",
        params![key, make()],
    )?;
    get_setting(conn, key)?.ok_or_else(|| Error::Schema(format!("setting {key} vanished")))
}

/// Sets whether the account accepts Polycom's factory FTP login.
pub fn update_ftp_factory_login(conn: &Connection, id: AccountId, on: bool) -> Result<()> {
    conn.execute(
        "UPDATE accounts SET ftp_factory_login = ?2, updated_at = ?3 WHERE id = ?1",
        params![id.0, on, now_secs()],
    )?;
    Ok(())
}

/// Sets whether TFTP may serve the account credential to the account's devices.
pub fn update_tftp_credential(conn: &Connection, id: AccountId, on: bool) -> Result<()> {
    conn.execute(
        "UPDATE accounts SET tftp_credential = ?2, updated_at = ?3 WHERE id = ?1",
        params![id.0, on, now_secs()],
    )?;
    Ok(())
}

/// Stores the account's SIP settings (`Account::sip`).
pub fn update_sip(conn: &Connection, id: AccountId, sip: AccountSip) -> Result<()> {
    conn.execute(
        "UPDATE accounts SET sip_validation = ?2, apply_after_change = ?3, online_check = ?4,
             updated_at = ?5 WHERE id = ?1",
        params![
            id.0,
            sip.validation,
            if sip.apply_after_change {
                "now"
            } else {
                "wait"
            },
            sip.online_check,
            now_secs()
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::open_in_memory;

    #[test]
    fn the_default_account_is_created_once_with_credentials() {
        let conn = open_in_memory().expect("db");
        let (a, created) = ensure_default(&conn).expect("create");
        assert!(created);
        assert!(a.is_default && a.device_user.is_some() && a.device_password.is_some());
        let (b, created) = ensure_default(&conn).expect("again");
        assert!(!created);
        assert_eq!(a, b);
    }

    #[test]
    fn new_credentials_start_a_new_generation_and_bump_the_revision() {
        let conn = open_in_memory().expect("db");
        let (a, _) = ensure_default(&conn).expect("create");
        let rev = config_revision(&conn).expect("rev");
        let history = crate::db::credentials::load_history(&conn, a.id).expect("history");
        assert_eq!(history.current(), 1, "the first generation is stored");
        let next = history.rotated(now_secs(), "phones", "averylongpassword", 14, false);
        crate::db::credentials::store_history(&conn, a.id, &next).expect("store");
        let b = find_by_id(&conn, a.id).expect("find").expect("account");
        assert_eq!(b.credential_generation, a.credential_generation + 1);
        assert_eq!(b.device_user.as_deref(), Some("phones"));
        assert!(config_revision(&conn).expect("rev") > rev);
    }

    #[test]
    fn a_slug_is_unique() {
        let conn = open_in_memory().expect("db");
        insert_account(&conn, "A", "branch", false, "u1", "password1").expect("first");
        let err = insert_account(&conn, "B", "branch", false, "u1", "password1").expect_err("dup");
        assert!(matches!(err, Error::Conflict(_)), "{err}");
    }
}
