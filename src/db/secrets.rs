//! Secrets at rest: device secrets are stored sealed with the installation's secrets key
//! (the key file outside the database, `secrets_key_file`), and opened again where the db
//! layer reads them, so the rest of the program sees plain values.
//!
//! A sealed value is `enc:v2:` followed by base64 of a random 24-byte nonce and the
//! XChaCha20-Poly1305 ciphertext with its tag, bound to where it lives: its table, column
//! and row (the row's natural key, or the credential it is — `columns`) are the associated
//! data, so a sealed value copied onto another row, column or credential does not open. The
//! encryption key is derived from the key file (HMAC-SHA256 with a fixed label), so the same
//! file can keep serving as the Digest nonce secret. Earlier releases sealed unbound
//! (`enc:v1:`) and, before that, not at all; both are still read, and the first start seals
//! them bound (`seal_plaintext`). A value without a prefix written by a process without a
//! key (unit tests) is returned as it is.
//!
//! Which values are secret: the columns of credentials (`columns::SECRET_COLUMNS`); values
//! decided by the same rules that mask them everywhere else — the parameter table's secret
//! flag (`params::is_secret`) for policy values and provisioning state,
//! `template::is_secret_name` for custom variables (`BOUND`) — not by a list someone must
//! keep up to date; and profile files holding a secret (`files`).
//!
//! The key is process-wide: it is installed once by the server and by every CLI command
//! that opens the database, before any secret is read or written. This module must never
//! log or return a key.

use std::sync::RwLock;

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use rusqlite::OptionalExtension;

use crate::error::{Error, Result};

/// The prefix of a sealed value.
pub const PREFIX: &str = "enc:v1:";
/// The prefix of a sealed value bound to its table, column and row.
pub const BOUND_PREFIX: &str = "enc:v2:";

/// Whether a stored value is sealed (either form).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX) || stored.starts_with(BOUND_PREFIX)
}

/// Where a sealed value lives: its associated data. `row` is the row's natural key (what
/// a VACUUM or an export and import keep), never a rowid.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    pub table: &'a str,
    pub column: &'a str,
    pub row: &'a str,
}

impl Place<'_> {
    fn associated_data(&self) -> Vec<u8> {
        let mut aad = b"zerotouch sealed v2".to_vec();
        for part in [self.table, self.column, self.row] {
            aad.push(0);
            aad.extend_from_slice(part.as_bytes());
        }
        aad
    }
}

/// An encryption key (derived from a key file).
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// Derives the encryption key from the bytes of a secrets key file.
    pub fn derive(file_key: &[u8]) -> SecretKey {
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(file_key)
            .expect("HMAC takes any key length");
        mac.update(b"zerotouch secrets at rest v1");
        let mut k = [0u8; 32];
        k.copy_from_slice(&mac.finalize().into_bytes());
        SecretKey(k)
    }

    /// Derives a key from an admin's passphrase and a random salt (argon2id with the
    /// crate's default cost, as for console passwords): the key that seals the secrets of
    /// an export (`actions::transfer::seal`), with the same sealing as at rest.
    pub fn from_passphrase(passphrase: &[u8], salt: &[u8]) -> Result<SecretKey> {
        let mut k = [0u8; 32];
        argon2::Argon2::default()
            .hash_password_into(passphrase, salt, &mut k)
            .map_err(|e| Error::invalid("passphrase", e.to_string()))?;
        Ok(SecretKey(k))
    }

    /// Seals a value under this key. Empty values stay empty (nothing to hide, and "not set"
    /// must stay recognisable).
    pub fn seal(&self, plain: &str) -> String {
        if plain.is_empty() || is_sealed(plain) {
            return plain.to_string();
        }
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).expect("the system has random numbers");
        let sealed = cipher
            .encrypt(XNonce::from_slice(&nonce), plain.as_bytes())
            .expect("encryption of a short value cannot fail");
        let mut raw = nonce.to_vec();
        raw.extend_from_slice(&sealed);
        format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(raw)
        )
    }

    /// Opens a value sealed under this key; a value without the prefix is returned as it is.
    /// A bound value (`enc:v2:`) opens only with its place (`open_at`): here it is an error,
    /// never its ciphertext taken for a password.
    pub fn open(&self, stored: &str) -> Result<String> {
        if stored.starts_with(BOUND_PREFIX) {
            return Err(Error::Config(
                "a sealed value bound to its place was read without it".into(),
            ));
        }
        let Some(b64) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let bad = || {
            Error::Config(
                "a stored secret cannot be decrypted with this secrets key: is \
                 secrets_key_file the key this database was written with?"
                    .into(),
            )
        };
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(b64)
            .map_err(|_| bad())?;
        if raw.len() < 24 + 16 {
            return Err(bad());
        }
        let (nonce, sealed) = raw.split_at(24);
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let plain = cipher
            .decrypt(XNonce::from_slice(nonce), sealed)
            .map_err(|_| bad())?;
        String::from_utf8(plain).map_err(|_| bad())
    }
}

impl SecretKey {
    /// Seals a value bound to `place`. Empty values stay empty.
    pub fn seal_at(&self, place: &Place<'_>, plain: &str) -> String {
        if plain.is_empty() {
            return String::new();
        }
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).expect("the system has random numbers");
        let aad = place.associated_data();
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                chacha20poly1305::aead::Payload {
                    msg: plain.as_bytes(),
                    aad: &aad,
                },
            )
            .expect("encryption of a short value cannot fail");
        let mut raw = nonce.to_vec();
        raw.extend_from_slice(&sealed);
        format!(
            "{BOUND_PREFIX}{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(raw)
        )
    }

    /// Opens a value stored at `place`: a bound value only there, an older unbound one
    /// (`enc:v1:`) anywhere, a plain one as it is.
    pub fn open_at(&self, place: &Place<'_>, stored: &str) -> Result<String> {
        let Some(b64) = stored.strip_prefix(BOUND_PREFIX) else {
            return self.open(stored);
        };
        let bad = || {
            Error::Config(format!(
                "the sealed value in {}.{} ({}) cannot be opened: it was not written there with \
                 this secrets key (secrets_key_file)",
                place.table, place.column, place.row
            ))
        };
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(b64)
            .map_err(|_| bad())?;
        if raw.len() < 24 + 16 {
            return Err(bad());
        }
        let (nonce, sealed) = raw.split_at(24);
        let aad = place.associated_data();
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let plain = cipher
            .decrypt(
                XNonce::from_slice(nonce),
                chacha20poly1305::aead::Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| bad())?;
        String::from_utf8(plain).map_err(|_| bad())
    }
}

static KEY: RwLock<Option<SecretKey>> = RwLock::new(None);

/// Installs the process's key (from the bytes of the secrets key file).
pub fn install(file_key: &[u8]) {
    *KEY.write().unwrap_or_else(|p| p.into_inner()) = Some(SecretKey::derive(file_key));
}

/// The installed key, if any.
pub fn key() -> Option<SecretKey> {
    KEY.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Seals a value with the installed key; without one (unit tests on an in-memory
/// database), the value is stored as it is.
pub fn seal(plain: &str) -> String {
    match key() {
        Some(k) => k.seal(plain),
        None => plain.to_string(),
    }
}

/// Opens a stored value with the installed key. A sealed value without a key is an error
/// naming the setting to fix, never a silent empty password.
pub fn open(stored: &str) -> Result<String> {
    if !stored.starts_with(PREFIX) {
        return Ok(stored.to_string());
    }
    match key() {
        Some(k) => k.open(stored),
        None => Err(Error::Config(
            "a stored secret is encrypted but no secrets key is loaded (secrets_key_file)".into(),
        )),
    }
}

/// Seals a value bound to `place` with the installed key; without one (unit tests on an
/// in-memory database), the value is stored as it is.
pub fn seal_at(place: &Place<'_>, plain: &str) -> String {
    match key() {
        Some(k) => k.seal_at(place, plain),
        None => plain.to_string(),
    }
}

/// Opens a value stored at `place` with the installed key (`SecretKey::open_at`).
pub fn open_at(place: &Place<'_>, stored: &str) -> Result<String> {
    if !is_sealed(stored) {
        return Ok(stored.to_string());
    }
    match key() {
        Some(k) => k.open_at(place, stored),
        None => Err(Error::Config(
            "a stored secret is encrypted but no secrets key is loaded (secrets_key_file)".into(),
        )),
    }
}

/// `open_at` for use inside a rusqlite row mapper.
pub fn open_at_sql(place: &Place<'_>, stored: String) -> rusqlite::Result<String> {
    open_at(place, &stored).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// The provisioning settings (`prov_settings` keys) that are secrets; a unit test in
/// `domain::settings` keeps this list equal to the fields it marks secret.
pub const SECRET_SETTINGS: &[&str] = &[
    "http_password",
    "ftp_password",
    "external_password",
    "s3_secret_key",
];

/// A table whose rows hold values of named parameters or variables, some of them secret:
/// a row's values are sealed (bound to it) when its name is a secret one.
pub struct Bound {
    pub table: &'static str,
    pub columns: &'static [&'static str],
    /// SQL of the row's natural key, equal to what `row` functions below build.
    pub row: &'static str,
    /// SQL of the name that decides whether the row holds a secret.
    pub name: &'static str,
    pub is_secret: fn(&str) -> bool,
}

/// Where named values live. A new table of parameter values belongs here; which of its rows
/// are secret follows from the parameter table (`params::is_secret`) or the variable rules.
pub const BOUND: &[Bound] = &[
    Bound {
        table: "policies",
        columns: &["value"],
        row: "scope || '/' || scope_id || '/' || parameter",
        name: "parameter",
        is_secret: crate::domain::polycom::params::is_secret,
    },
    Bound {
        table: "custom_variables",
        columns: &["value"],
        row: "name",
        name: "name",
        is_secret: crate::domain::template::is_secret_name,
    },
    Bound {
        table: "device_prov_state",
        columns: &["confirmed", "delivered"],
        row: "device_id || '/' || param",
        name: "param",
        is_secret: crate::domain::polycom::params::is_secret,
    },
];

/// The natural key of a policy row (`BOUND`).
pub fn policy_row(scope: &str, scope_id: i64, parameter: &str) -> String {
    format!("{scope}/{scope_id}/{parameter}")
}

/// The natural key of a provisioning-state row (`BOUND`).
pub fn prov_state_row(device_id: i64, param: &str) -> String {
    format!("{device_id}/{param}")
}

/// Re-seals the secret values of every `BOUND` table, like `reseal_all` does for columns.
fn reseal_bound(
    conn: &rusqlite::Connection,
    from: Option<&SecretKey>,
    to: &SecretKey,
) -> Result<usize> {
    const CHUNK: i64 = 10_000;
    let mut changed = 0;
    for b in BOUND {
        for column in b.columns {
            let select = format!(
                "SELECT rowid, {row}, {name}, {column} FROM {table}
                 WHERE rowid > ?1 AND {column} IS NOT NULL AND {column} <> ''
                 ORDER BY rowid LIMIT {CHUNK}",
                row = b.row,
                name = b.name,
                table = b.table,
            );
            let update = format!("UPDATE {} SET {column} = ?2 WHERE rowid = ?1", b.table);
            let mut after = 0i64;
            loop {
                let rows: Vec<(i64, String, String, String)> = conn
                    .prepare_cached(&select)?
                    .query_map([after], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                let Some(last) = rows.last().map(|r| r.0) else {
                    break;
                };
                let mut stmt = conn.prepare_cached(&update)?;
                for (rowid, row, name, stored) in rows {
                    if !(b.is_secret)(&name) {
                        continue;
                    }
                    let place = Place {
                        table: b.table,
                        column,
                        row: &row,
                    };
                    let plain = if stored.starts_with(BOUND_PREFIX) {
                        match from {
                            Some(k) => k.open_at(&place, &stored)?,
                            None => continue,
                        }
                    } else {
                        from.unwrap_or(to).open(&stored)?
                    };
                    stmt.execute(rusqlite::params![rowid, to.seal_at(&place, &plain)])?;
                    changed += 1;
                }
                after = last;
            }
        }
    }
    Ok(changed)
}

/// The `settings` key of a value sealed under the current key: it tells which key file
/// the database belongs to, so an interrupted key rotation can be finished or undone.
const CHECK_KEY: &str = "secrets_key_check";
const CHECK_PLAIN: &str = "zerotouch secrets key check";

/// Writes the check value under `key` (inside the caller's transaction).
pub fn store_check(conn: &rusqlite::Connection, key: &SecretKey) -> Result<()> {
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        rusqlite::params![CHECK_KEY, key.seal(CHECK_PLAIN)],
    )?;
    Ok(())
}

/// Whether the database's check value opens with `key` (`None`: no check value yet).
pub fn check_matches(conn: &rusqlite::Connection, key: &SecretKey) -> Result<Option<bool>> {
    let stored: Option<String> = conn
        .query_row(
            "SELECT value FROM settings WHERE key = ?1",
            [CHECK_KEY],
            |r| r.get(0),
        )
        .optional()?;
    Ok(stored.map(|s| key.open(&s).is_ok_and(|p| p == CHECK_PLAIN)))
}

/// Re-encrypts every device secret from `old` to `new` in one transaction, with the check
/// value. The caller swaps the key file only after this committed.
pub fn rotate(conn: &mut rusqlite::Connection, old: &SecretKey, new: &SecretKey) -> Result<usize> {
    super::write_tx(conn, |tx| {
        if check_matches(tx, old)? == Some(false) {
            return Err(Error::Config(
                "the database's secrets were not written with the current key file; \
                 refusing to rotate"
                    .into(),
            ));
        }
        let n = reseal_all(tx, Some(old), new)?;
        store_check(tx, new)?;
        Ok(n)
    })
}

/// The `settings` key migration 0010 sets: the next sealing pass must also rewrite the
/// database file and empty the WAL, so that no clear value from before survives there.
const SCRUB_KEY: &str = "secrets_scrub_pending";

/// Seals, in one transaction, every secret still stored in plaintext (values from before
/// encryption, or written by an older release) with the installed key. Returns how many.
/// When it sealed any (or migration 0010 asked for it), the pages the clear values were
/// in are overwritten (`secure_delete`), the file is rebuilt (VACUUM) and the WAL
/// truncated: a copy of the file then holds none of the old clear bytes.
pub fn seal_plaintext(conn: &mut rusqlite::Connection) -> Result<usize> {
    let Some(k) = key() else { return Ok(0) };
    let secure: i64 = conn.query_row("PRAGMA secure_delete", [], |r| r.get(0))?;
    conn.pragma_update(None, "secure_delete", true)?;
    let sealed = super::write_tx(conn, |tx| {
        let n = reseal_all(tx, None, &k)?;
        if check_matches(tx, &k)?.is_none() {
            store_check(tx, &k)?;
        }
        let scrub = tx.execute("DELETE FROM settings WHERE key = ?1", [SCRUB_KEY])? > 0;
        Ok((n, scrub))
    });
    let result = sealed.and_then(|(n, scrub)| {
        if n > 0 || scrub {
            scrub_file(conn)?;
        }
        Ok(n)
    });
    conn.pragma_update(None, "secure_delete", secure)?;
    result
}

/// Rebuilds the database file and truncates its WAL, so that values overwritten or deleted
/// leave no copy in free pages or old WAL frames.
fn scrub_file(conn: &rusqlite::Connection) -> Result<()> {
    conn.execute_batch("VACUUM")?;
    // Readers may hold the WAL for a moment: a busy checkpoint is retried, then reported.
    for _ in 0..50 {
        let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        if busy == 0 {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    log::warn!("database: the WAL could not be truncated after sealing secrets (readers busy)");
    Ok(())
}

mod columns;
mod files;
pub use columns::{
    Credential, SECRET_COLUMNS, SecretColumn, bind_inserted, open_in, open_in_sql, open_in_with,
    reseal_all, seal_in, seal_unbound,
};
pub use files::{holds_secret, open_file, seal_file};

#[cfg(test)]
mod tests;
