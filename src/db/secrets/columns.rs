//! Columns of credentials, sealed bound to the credential they hold (`enc:v2:`): a sealed
//! value moved onto another account, device, line, profile or setting does not open.
//!
//! The place is the credential, not the physical row, where SQL copies a credential from
//! one table to another: an account's generation `g` is bound to `(account, g)` both in
//! `accounts.device_password` (its current one) and in `account_credentials`; a device's own
//! passwords are bound to the device both in `device_credentials` and in its history. Rows
//! are named by what survives a VACUUM, an export or a restore (ids of `INTEGER PRIMARY KEY`
//! columns, keys), never by rowid.
//!
//! Values an older release sealed unbound (`enc:v1:`) or left in clear are re-sealed bound at
//! start (`reseal_all` with no old key), and by a key rotation.

use super::{BOUND_PREFIX, Place, SecretKey, key};
use crate::error::{Error, Result};

/// Which credential a sealed value is (its associated data).
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    /// Generation `generation` of an account's device credentials.
    Account { account_id: i64, generation: i64 },
    /// A profile's provisioning password.
    ProfilePassword(i64),
    /// A profile's provisioning-server address (sealed when it carries `user:pass@`).
    ProfileServer(i64),
    /// A device's provisioning password (vendor extension).
    DevicePassword(i64),
    /// A device's provisioning-server address (sealed when it carries `user:pass@`).
    DeviceServer(i64),
    /// A SIP line's password.
    Line { device_id: i64, line: i64 },
    /// A device's own credentials, current and previous.
    Own(i64),
    /// A secret provisioning setting, by key.
    Setting(&'a str),
    /// A console user's TOTP secret (second factor), by user id.
    Totp(i64),
    /// A console user's TOTP secret being enrolled (not confirmed yet), by user id.
    TotpPending(i64),
}

impl Credential<'_> {
    fn place(&self) -> (&'static str, &'static str, String) {
        match *self {
            Credential::Account {
                account_id,
                generation,
            } => (
                "account_credentials",
                "password",
                format!("{account_id}/{generation}"),
            ),
            Credential::ProfilePassword(id) => ("profiles", "prov_password", id.to_string()),
            Credential::ProfileServer(id) => ("profiles", "prov_server", id.to_string()),
            Credential::DevicePassword(id) => ("devices", "prov_password", id.to_string()),
            Credential::DeviceServer(id) => ("devices", "prov_server", id.to_string()),
            Credential::Line { device_id, line } => (
                "device_lines",
                "auth_password",
                format!("{device_id}/{line}"),
            ),
            Credential::Own(device_id) => ("device_credentials", "password", device_id.to_string()),
            Credential::Setting(key) => ("prov_settings", "value", key.to_string()),
            Credential::Totp(id) => ("users", "totp_secret", id.to_string()),
            Credential::TotpPending(id) => ("users", "totp_pending", id.to_string()),
        }
    }

    /// Provisioning-server addresses are sealed only when they carry credentials.
    fn sealed_when(&self, plain: &str) -> bool {
        match self {
            Credential::ProfileServer(_) | Credential::DeviceServer(_) => plain.contains('@'),
            _ => true,
        }
    }
}

fn with_place<T>(c: &Credential<'_>, f: impl FnOnce(&Place<'_>) -> T) -> T {
    let (table, column, row) = c.place();
    f(&Place {
        table,
        column,
        row: &row,
    })
}

/// Seals `plain` bound to the credential `c` with the installed key (as it is without a
/// key: unit tests on an in-memory database).
pub fn seal_in(c: Credential<'_>, plain: &str) -> String {
    if !c.sealed_when(plain) {
        return plain.to_string();
    }
    with_place(&c, |p| super::seal_at(p, plain))
}

/// Seals `plain` for a row not inserted yet (its id unknown): unbound, to be bound by
/// `bind_inserted` right after the insert, in the same transaction. `c` gives only the kind
/// (its id is not used).
pub fn seal_unbound(c: Credential<'_>, plain: &str) -> String {
    if !c.sealed_when(plain) {
        return plain.to_string();
    }
    super::seal(plain)
}

/// Opens a stored value of the credential `c`: bound there, unbound (`enc:v1:`) from an
/// older release, or in clear.
pub fn open_in(c: Credential<'_>, stored: &str) -> Result<String> {
    with_place(&c, |p| super::open_at(p, stored))
}

/// `open_in` with a given key (a backup's, before it is installed).
pub fn open_in_with(k: &SecretKey, c: Credential<'_>, stored: &str) -> Result<String> {
    with_place(&c, |p| k.open_at(p, stored))
}

/// `open_in` for use inside a rusqlite row mapper.
pub fn open_in_sql(c: Credential<'_>, stored: String) -> rusqlite::Result<String> {
    open_in(c, &stored).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// A column of credentials and how its rows name their credential.
pub struct SecretColumn {
    pub table: &'static str,
    pub column: &'static str,
    /// SQL: which rows of the table hold a secret in this column.
    pub filter: &'static str,
    /// SQL of the credential's row key, as `Credential::place` builds it.
    pub row: &'static str,
    /// The place's table and column (`Credential::place`).
    pub place: (&'static str, &'static str),
}

/// Which `prov_server` values are sealed: any with a user part (`@`), and those already
/// sealed (base64 has no `@`).
const URL_WITH_CREDENTIALS: &str = "prov_server LIKE '%@%' OR prov_server LIKE 'enc:%'";

/// Every column of credentials. Every value in them is sealed bound on start and re-sealed
/// by a key rotation.
pub const SECRET_COLUMNS: &[SecretColumn] = &[
    SecretColumn {
        table: "accounts",
        column: "device_password",
        filter: "1",
        row: "id || '/' || credential_generation",
        place: ("account_credentials", "password"),
    },
    SecretColumn {
        table: "account_credentials",
        column: "password",
        filter: "1",
        row: "account_id || '/' || generation",
        place: ("account_credentials", "password"),
    },
    SecretColumn {
        table: "profiles",
        column: "prov_password",
        filter: "1",
        row: "id",
        place: ("profiles", "prov_password"),
    },
    SecretColumn {
        table: "profiles",
        column: "prov_server",
        filter: URL_WITH_CREDENTIALS,
        row: "id",
        place: ("profiles", "prov_server"),
    },
    SecretColumn {
        table: "devices",
        column: "prov_password",
        filter: "1",
        row: "id",
        place: ("devices", "prov_password"),
    },
    SecretColumn {
        table: "devices",
        column: "prov_server",
        filter: URL_WITH_CREDENTIALS,
        row: "id",
        place: ("devices", "prov_server"),
    },
    SecretColumn {
        table: "device_lines",
        column: "auth_password",
        filter: "1",
        row: "device_id || '/' || line",
        place: ("device_lines", "auth_password"),
    },
    SecretColumn {
        table: "device_credentials",
        column: "password",
        filter: "1",
        row: "device_id",
        place: ("device_credentials", "password"),
    },
    SecretColumn {
        table: "device_credentials",
        column: "previous",
        filter: "1",
        row: "device_id",
        place: ("device_credentials", "password"),
    },
    SecretColumn {
        table: "device_credential_history",
        column: "password",
        filter: "1",
        row: "device_id",
        place: ("device_credentials", "password"),
    },
    SecretColumn {
        table: "prov_settings",
        column: "value",
        filter: "key IN ('http_password', 'ftp_password', 'external_password', 's3_secret_key')",
        row: "key",
        place: ("prov_settings", "value"),
    },
    SecretColumn {
        table: "users",
        column: "totp_secret",
        filter: "1",
        row: "id",
        place: ("users", "totp_secret"),
    },
    SecretColumn {
        table: "users",
        column: "totp_pending",
        filter: "1",
        row: "id",
        place: ("users", "totp_pending"),
    },
];

/// Re-seals, bound, the credential columns of a row just inserted into `table` (and, for an
/// account, the first generation its trigger copied): its values were sealed unbound at the
/// insert (`seal_unbound`, the id unknown then), inside the same transaction.
pub fn bind_inserted(conn: &rusqlite::Connection, table: &str, id: i64) -> Result<()> {
    let Some(k) = key() else { return Ok(()) };
    let mut targets: Vec<(&SecretColumn, &str)> = Vec::new();
    for c in SECRET_COLUMNS.iter().filter(|c| c.table == table) {
        targets.push((c, "id"));
    }
    if table == "accounts" {
        for c in SECRET_COLUMNS
            .iter()
            .filter(|c| c.table == "account_credentials")
        {
            targets.push((c, "account_id"));
        }
    }
    if targets.is_empty() {
        return Err(Error::Schema(format!("no credential columns in {table}")));
    }
    for (c, key_column) in targets {
        let column = c.column;
        // Constant per column: cached statements, one indexed lookup per insert.
        let select = format!(
            "SELECT rowid, CAST(({row}) AS TEXT), {column} FROM {table}
             WHERE {key_column} = ?1 AND {column} IS NOT NULL AND {column} <> ''
               AND ({filter}) AND substr({column}, 1, {n}) <> '{BOUND_PREFIX}'",
            row = c.row,
            table = c.table,
            filter = c.filter,
            n = BOUND_PREFIX.len(),
        );
        let rows: Vec<(i64, String, String)> = conn
            .prepare_cached(&select)?
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (rowid, row, stored) in rows {
            let place = Place {
                table: c.place.0,
                column: c.place.1,
                row: &row,
            };
            let plain = k.open_at(&place, &stored)?;
            conn.prepare_cached(&format!(
                "UPDATE {} SET {column} = ?2 WHERE rowid = ?1",
                c.table
            ))?
            .execute(rusqlite::params![rowid, k.seal_at(&place, &plain)])?;
        }
    }
    Ok(())
}

/// Re-seals one column's values: bound values sealed under
/// `from` (with `from` None, only clear and unbound ones), clear and unbound ones under
/// `from` or `to`. A chunk of rows at a time. Returns how many changed.
fn reseal_column(
    conn: &rusqlite::Connection,
    c: &SecretColumn,
    from: Option<&SecretKey>,
    to: &SecretKey,
) -> Result<usize> {
    const CHUNK: i64 = 10_000;
    let column = c.column;
    let only_unbound = if from.is_some() {
        String::new()
    } else {
        format!(
            "AND substr({column}, 1, {}) <> '{BOUND_PREFIX}'",
            BOUND_PREFIX.len()
        )
    };
    let select = format!(
        "SELECT rowid, CAST(({row}) AS TEXT), {column} FROM {table}
         WHERE rowid > ?1 AND {column} IS NOT NULL AND {column} <> ''
           AND ({filter}) {only_unbound}
         ORDER BY rowid LIMIT {CHUNK}",
        row = c.row,
        table = c.table,
        filter = c.filter,
    );
    let update = format!("UPDATE {} SET {column} = ?2 WHERE rowid = ?1", c.table);
    let mut changed = 0;
    let mut after = 0i64;
    loop {
        let rows: Vec<(i64, String, String)> = conn
            .prepare_cached(&select)?
            .query_map([after], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let Some(last) = rows.last().map(|r| r.0) else {
            break;
        };
        let mut stmt = conn.prepare_cached(&update)?;
        for (rowid, row, stored) in rows {
            let place = Place {
                table: c.place.0,
                column: c.place.1,
                row: &row,
            };
            let plain = match from {
                Some(k) => k.open_at(&place, &stored)?,
                None => to.open_at(&place, &stored)?,
            };
            stmt.execute(rusqlite::params![rowid, to.seal_at(&place, &plain)])?;
            changed += 1;
        }
        after = last;
    }
    Ok(changed)
}

/// Re-seals every secret: values sealed under `from` (or clear, or unbound) are written
/// sealed bound under `to`. With `from` None only clear and unbound values are read (a
/// start-up with everything sealed reads no secret). Runs inside the caller's transaction,
/// a chunk of rows at a time, so a million devices never sit in memory at once. Returns how
/// many values changed.
pub fn reseal_all(
    conn: &rusqlite::Connection,
    from: Option<&SecretKey>,
    to: &SecretKey,
) -> Result<usize> {
    let mut changed = 0;
    for c in SECRET_COLUMNS {
        changed += reseal_column(conn, c, from, to)?;
    }
    Ok(
        changed
            + super::reseal_bound(conn, from, to)?
            + super::files::reseal_files(conn, from, to)?,
    )
}
