//! Secrets at rest: device secrets are stored sealed with the installation's secrets key
//! (the key file outside the database, `secrets_key_file`), and opened again where the db
//! layer reads them, so the rest of the program sees plain values.
//!
//! A sealed value is `enc:v1:` followed by base64 of a random 24-byte nonce and the
//! XChaCha20-Poly1305 ciphertext with its tag. The encryption key is derived from the key
//! file (HMAC-SHA256 with a fixed label), so the same file can keep serving as the Digest
//! nonce secret. A value without the prefix is a plaintext one from before encryption (or
//! from a process without a key, as in unit tests) and is returned as it is; `seal_all`
//! converts such values when the server starts.
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

    /// Seals a value under this key. Empty values stay empty (nothing to hide, and "not set"
    /// must stay recognisable).
    pub fn seal(&self, plain: &str) -> String {
        if plain.is_empty() || plain.starts_with(PREFIX) {
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
    pub fn open(&self, stored: &str) -> Result<String> {
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

/// `open` for use inside a rusqlite row mapper.
pub fn open_sql(stored: String) -> rusqlite::Result<String> {
    open(&stored).map_err(|e| {
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

/// The columns that hold device secrets: `(table, column, which rows)`. Every value in them
/// is sealed on start (`seal_plaintext`) and re-sealed by a key rotation.
pub const SECRET_COLUMNS: &[(&str, &str, &str)] = &[
    ("accounts", "device_password", "1"),
    ("account_credentials", "password", "1"),
    ("profiles", "prov_password", "1"),
    ("devices", "prov_password", "1"),
    ("device_lines", "auth_password", "1"),
    ("device_credentials", "password", "1"),
    ("device_credentials", "previous", "1"),
    (
        "prov_settings",
        "value",
        "key IN ('http_password', 'ftp_password', 'external_password', 's3_secret_key')",
    ),
];

/// Re-seals every secret column: values sealed under `from` (or plaintext) are written
/// sealed under `to`. With `from` None only plaintext values are read (a start-up with
/// everything sealed reads no secret). Runs inside the caller's transaction, a chunk of
/// rows at a time, so a million devices never sit in memory at once. Returns how many
/// values changed.
pub fn reseal_all(
    conn: &rusqlite::Connection,
    from: Option<&SecretKey>,
    to: &SecretKey,
) -> Result<usize> {
    const CHUNK: i64 = 10_000;
    let mut changed = 0;
    for (table, column, filter) in SECRET_COLUMNS {
        let which = if from.is_some() {
            String::new()
        } else {
            format!("AND substr({column}, 1, {}) <> '{PREFIX}'", PREFIX.len())
        };
        let select = format!(
            "SELECT rowid, {column} FROM {table}
             WHERE rowid > ?1 AND {column} IS NOT NULL AND {column} <> '' AND ({filter}) {which}
             ORDER BY rowid LIMIT {CHUNK}"
        );
        let update = format!("UPDATE {table} SET {column} = ?2 WHERE rowid = ?1");
        let mut after = 0i64;
        loop {
            let rows: Vec<(i64, String)> = conn
                .prepare_cached(&select)?
                .query_map([after], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let Some(last) = rows.last().map(|r| r.0) else {
                break;
            };
            let mut stmt = conn.prepare_cached(&update)?;
            for (rowid, stored) in rows {
                let plain = if stored.starts_with(PREFIX) {
                    match from {
                        Some(k) => k.open(&stored)?,
                        // Already sealed, and no other key to move from.
                        None => continue,
                    }
                } else {
                    stored
                };
                stmt.execute(rusqlite::params![rowid, to.seal(&plain)])?;
                changed += 1;
            }
            after = last;
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

/// Seals, in one transaction, every secret still stored in plaintext (values from before
/// encryption) with the installed key. Returns how many.
pub fn seal_plaintext(conn: &mut rusqlite::Connection) -> Result<usize> {
    let Some(k) = key() else { return Ok(0) };
    super::write_tx(conn, |tx| {
        let n = reseal_all(tx, None, &k)?;
        if check_matches(tx, &k)?.is_none() {
            store_check(tx, &k)?;
        }
        Ok(n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_never_shows_the_plaintext() {
        let k = SecretKey::derive(&[7u8; 32]);
        let sealed = k.seal("hunter2-line-password");
        assert!(sealed.starts_with(PREFIX));
        assert!(!sealed.contains("hunter2"));
        assert_ne!(
            sealed,
            k.seal("hunter2-line-password"),
            "random nonce per value"
        );
        assert_eq!(k.open(&sealed).expect("open"), "hunter2-line-password");
        let other = SecretKey::derive(&[8u8; 32]);
        let err = other.open(&sealed).expect_err("wrong key");
        assert!(err.to_string().contains("secrets_key_file"), "{err}");
        assert_eq!(k.open("plain").expect("plain"), "plain");
        assert_eq!(k.seal(""), "");
        // A tampered value is refused, not garbled.
        let mut t = sealed.clone();
        t.pop();
        t.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(k.open(&t).is_err());
    }

    #[test]
    fn every_secret_column_is_sealed_and_nothing_else() {
        let conn = crate::db::open_in_memory().expect("db");
        conn.execute_batch(
            "INSERT INTO accounts (id, name, slug, service_key, is_default, device_user,
                                   device_password, created_at, updated_at)
                 VALUES (9, 'A', 'a', 'k', 0, 'user-a', 'acct-pw', 1, 1);
             INSERT INTO profiles (id, account_id, name, prov_password, created_at, updated_at)
                 VALUES (3, 9, 'p', 'prof-pw', 1, 1);
             INSERT INTO devices (id, account_id, mac, serial, prov_password, created_at, updated_at)
                 VALUES (1, 9, '0004f2000001', '0004F2000001', 'dev-pw', 1, 1);
             INSERT INTO device_lines (device_id, line, auth_user_id, auth_password)
                 VALUES (1, 1, '1001', 'line-pw');
             INSERT INTO prov_settings (key, value) VALUES ('s3_secret_key', 's3-pw'),
                                                           ('syslog_server', 'not-secret');",
        )
        .expect("rows");
        let k = SecretKey::derive(b"one-key-of-at-least-32-bytes-xxx");
        // accounts (the trigger copied its first generation), profile, device, line, S3.
        assert_eq!(reseal_all(&conn, None, &k).expect("seal"), 6);
        let one = |sql: &str| -> String { conn.query_row(sql, [], |r| r.get(0)).expect(sql) };
        for (sql, plain) in [
            ("SELECT device_password FROM accounts", "acct-pw"),
            ("SELECT password FROM account_credentials", "acct-pw"),
            ("SELECT prov_password FROM profiles", "prof-pw"),
            ("SELECT prov_password FROM devices", "dev-pw"),
            ("SELECT auth_password FROM device_lines", "line-pw"),
            (
                "SELECT value FROM prov_settings WHERE key = 's3_secret_key'",
                "s3-pw",
            ),
        ] {
            let stored = one(sql);
            assert!(stored.starts_with(PREFIX), "{sql}: {stored}");
            assert_eq!(k.open(&stored).expect("open"), plain);
        }
        assert_eq!(
            one("SELECT value FROM prov_settings WHERE key = 'syslog_server'"),
            "not-secret"
        );
        assert_eq!(one("SELECT device_user FROM accounts"), "user-a");
        // A second pass changes nothing.
        assert_eq!(reseal_all(&conn, None, &k).expect("again"), 0);
    }

    #[test]
    fn resealing_converts_plaintext_and_moves_values_to_a_new_key() {
        let conn = crate::db::open_in_memory().expect("db");
        conn.execute_batch(
            "INSERT INTO accounts (id, name, slug, service_key, is_default, created_at, updated_at)
                 VALUES (9, 'A', 'a', 'k', 0, 1, 1);
             INSERT INTO devices (id, account_id, mac, serial, created_at, updated_at)
                 VALUES (1, 9, '0004f2000001', '0004F2000001', 1, 1);
             INSERT INTO device_credentials (device_id, password, created_at) VALUES (1, 'pw1', 1);",
        )
        .expect("rows");
        let k1 = SecretKey::derive(b"one-key-of-at-least-32-bytes-xxx");
        assert_eq!(reseal_all(&conn, None, &k1).expect("seal"), 1);
        let stored: String = conn
            .query_row("SELECT password FROM device_credentials", [], |r| r.get(0))
            .expect("row");
        assert_eq!(k1.open(&stored).expect("open"), "pw1");
        let k2 = SecretKey::derive(b"another-key-of-at-least-32-bytes");
        assert_eq!(reseal_all(&conn, Some(&k1), &k2).expect("rotate"), 1);
        let stored: String = conn
            .query_row("SELECT password FROM device_credentials", [], |r| r.get(0))
            .expect("row");
        assert!(k1.open(&stored).is_err());
        assert_eq!(k2.open(&stored).expect("open"), "pw1");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]
        /// Any value round-trips under its key, never under another, and never shows in
        /// the sealed form.
        #[test]
        fn any_value_round_trips_only_under_its_key(value in "\\PC{1,64}", k1 in proptest::prelude::any::<[u8; 32]>()) {
            let key = SecretKey::derive(&k1);
            let sealed = key.seal(&value);
            if value.starts_with(PREFIX) {
                proptest::prop_assert_eq!(&sealed, &value);
            } else {
                proptest::prop_assert!(sealed.starts_with(PREFIX));
                proptest::prop_assert!(value.len() < 4 || !sealed.contains(&value));
                proptest::prop_assert_eq!(key.open(&sealed).expect("open"), value.clone());
                let mut other = k1;
                other[0] ^= 1;
                proptest::prop_assert!(SecretKey::derive(&other).open(&sealed).is_err());
            }
        }
    }

    #[test]
    fn resealing_walks_large_tables_in_chunks_and_skips_sealed_rows() {
        let conn = crate::db::open_in_memory().expect("db");
        conn.execute_batch(
            "INSERT INTO accounts (id, name, slug, service_key, is_default, created_at, updated_at)
                 VALUES (9, 'A', 'a', 'k', 0, 1, 1);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 25001)
             INSERT INTO devices (id, account_id, mac, serial, created_at, updated_at)
                 SELECT i, 9, printf('0004f2%06x', i), printf('0004F2%06X', i), 1, 1 FROM n;
             INSERT INTO device_lines (device_id, line, auth_user_id, auth_password)
                 SELECT id, 1, id, 'pw-' || id FROM devices;",
        )
        .expect("rows");
        let k = SecretKey::derive(b"one-key-of-at-least-32-bytes-xxx");
        // Some already sealed (e.g. written by this release), the rest plaintext.
        conn.execute(
            "UPDATE device_lines SET auth_password = ?1 WHERE device_id % 3 = 0",
            [k.seal("sealed-before")],
        )
        .expect("seal some");
        assert_eq!(reseal_all(&conn, None, &k).expect("seal"), 25001 - 8333);
        let plain: i64 = conn
            .query_row(
                "SELECT count(*) FROM device_lines WHERE auth_password NOT LIKE 'enc:v1:%'",
                [],
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(plain, 0);
        let last: String = conn
            .query_row(
                "SELECT auth_password FROM device_lines WHERE device_id = 25001",
                [],
                |r| r.get(0),
            )
            .expect("last");
        assert_eq!(k.open(&last).expect("open"), "pw-25001");
        // Moving to a new key touches every row, past every chunk boundary.
        let k2 = SecretKey::derive(b"another-key-of-at-least-32-bytes");
        assert_eq!(reseal_all(&conn, Some(&k), &k2).expect("move"), 25001);
    }
}
