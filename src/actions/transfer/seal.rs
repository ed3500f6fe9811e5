//! Secrets in an export: sealed with a passphrase the admin gives (a file or standard
//! input, never an argument), never in clear. The key is derived from the passphrase with
//! argon2id and a random salt (`SecretKey::from_passphrase`), and every secret is sealed as
//! secrets are at rest (`enc:v2:`, XChaCha20-Poly1305), bound to where it is in the export
//! (its kind and natural key, e.g. `line.auth_password` of `0004f2000001/2`), so a sealed
//! value moved to another record does not open. A check value sealed the same way tells a
//! wrong passphrase from a damaged file.
//!
//! Which values are secret is decided as everywhere else: device and profile provisioning
//! passwords (and addresses that embed one), devices' own credentials, SIP line passwords, policy values of secret
//! parameters (`params::is_secret`), secret custom variables (`template::is_secret_name`),
//! profile files holding a secret (`secrets::holds_secret`) and secret provisioning settings.

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::Export;
use crate::db::secrets::{self, Place, SecretKey};
use crate::domain::polycom::params;
use crate::error::{Error, Result};

/// The key derivation written into a sealed export.
pub const KDF: &str = "argon2id";
const TABLE: &str = "zerotouch-export";
const CHECK: &str = "zerotouch export passphrase check";
/// Shortest passphrase accepted for sealing.
pub const PASSPHRASE_MIN: usize = 12;

/// How an export's secrets were sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sealing {
    pub kdf: String,
    /// base64 of the random salt.
    pub salt: String,
    /// A known text sealed with the key: a wrong passphrase does not open it.
    pub check: String,
}

/// A passphrase read from a file or standard input: its first line, without the line end.
pub fn passphrase_from(text: &str) -> Result<String> {
    let p = text.lines().next().unwrap_or("").to_string();
    if p.chars().count() < PASSPHRASE_MIN {
        return Err(Error::invalid(
            "passphrase",
            format!("must be at least {PASSPHRASE_MIN} characters"),
        ));
    }
    Ok(p)
}

fn check_place() -> Place<'static> {
    Place {
        table: TABLE,
        column: "check",
        row: "",
    }
}

/// A new key and its sealing record.
pub fn new_key(passphrase: &str) -> Result<(SecretKey, Sealing)> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| Error::invalid("salt", e.to_string()))?;
    let key = SecretKey::from_passphrase(passphrase.as_bytes(), &salt)?;
    let check = key.seal_at(&check_place(), CHECK);
    Ok((
        key,
        Sealing {
            kdf: KDF.into(),
            salt: base64::engine::general_purpose::STANDARD.encode(salt),
            check,
        },
    ))
}

/// The key of a sealed export, refusing a wrong passphrase with its own message.
pub fn key_of(sealing: &Sealing, passphrase: Option<&str>) -> Result<SecretKey> {
    let Some(passphrase) = passphrase else {
        return Err(Error::invalid(
            "sealed",
            "the file's secrets are sealed: give the passphrase they were exported with",
        ));
    };
    if sealing.kdf != KDF {
        return Err(Error::invalid(
            "sealed.kdf",
            format!("`{}` is not {KDF}", sealing.kdf),
        ));
    }
    let salt = base64::engine::general_purpose::STANDARD
        .decode(&sealing.salt)
        .map_err(|_| Error::invalid("sealed.salt", "is not base64"))?;
    let key = SecretKey::from_passphrase(passphrase.as_bytes(), &salt)?;
    match key.open_at(&check_place(), &sealing.check) {
        Ok(c) if c == CHECK => Ok(key),
        _ => Err(Error::invalid(
            "passphrase",
            "does not open this file's secrets (a wrong passphrase, or a damaged file)",
        )),
    }
}

/// Calls `f(kind, natural key, value)` on every secret-bearing value of an export.
fn each_secret(
    e: &mut Export,
    f: &mut dyn FnMut(&str, &str, &mut String) -> Result<()>,
) -> Result<()> {
    for d in &mut e.devices {
        let mac = d.mac.clone();
        f("device.prov_server", &mac, &mut d.prov_server)?;
        if let Some(p) = &mut d.prov_password {
            f("device.prov_password", &mac, p)?;
        }
        if let Some(p) = d.enrolment.as_mut().and_then(|e| e.password.as_mut()) {
            f("device.credential", &mac, p)?;
        }
        for l in &mut d.lines {
            if let Some(p) = &mut l.auth_password {
                f("line.auth_password", &format!("{mac}/{}", l.line), p)?;
            }
        }
    }
    for p in &mut e.policies {
        if params::is_secret(&p.parameter)
            && let Some(v) = &mut p.value
        {
            f("policy.value", &format!("{}/{}", p.scope, p.parameter), v)?;
        }
    }
    for p in &mut e.profiles {
        let name = p.name.clone();
        f("profile.prov_server", &name, &mut p.prov_server)?;
        if let Some(pw) = &mut p.prov_password {
            f("profile.prov_password", &name, pw)?;
        }
        for file in &mut p.files {
            if let Some(c) = &mut file.content {
                f("profile.file", &format!("{name}/{}", file.name), c)?;
            }
        }
    }
    for v in &mut e.custom_variables {
        if crate::domain::template::is_secret_name(&v.name)
            && let Some(value) = &mut v.value
        {
            f("variable.value", &v.name.clone(), value)?;
        }
    }
    Ok(())
}

/// Whether a value of this kind holds a secret and is sealed: an address only when it
/// embeds a password, a file only when it holds a secret, the rest when not empty.
fn is_secret(kind: &str, value: &str) -> bool {
    match kind {
        "device.prov_server" | "profile.prov_server" => {
            crate::domain::provserver::strip_password(value) != value
        }
        "profile.file" => base64::engine::general_purpose::STANDARD
            .decode(value)
            .is_ok_and(|b| secrets::holds_secret("file", &b)),
        _ => !value.is_empty(),
    }
}

/// Seals every secret of `e` with `key` (values are in clear when called).
pub fn seal_values(e: &mut Export, key: &SecretKey) -> Result<()> {
    each_secret(e, &mut |kind, row, v| {
        if is_secret(kind, v) {
            *v = key.seal_at(
                &Place {
                    table: TABLE,
                    column: kind,
                    row,
                },
                v,
            );
        }
        Ok(())
    })
}

/// Opens every sealed value of `e`; errors name the record.
pub fn open_values(e: &mut Export, key: &SecretKey) -> Result<()> {
    each_secret(e, &mut |kind, row, v| {
        if v.starts_with(secrets::BOUND_PREFIX) {
            *v = key
                .open_at(
                    &Place {
                        table: TABLE,
                        column: kind,
                        row,
                    },
                    v,
                )
                .map_err(|_| Error::invalid(format!("{kind} of {row}"), "does not open"))?;
        }
        Ok(())
    })
}

/// Seals an account export's secrets with a passphrase.
pub fn seal(e: &mut Export, passphrase: &str) -> Result<()> {
    let (key, sealing) = new_key(passphrase)?;
    seal_values(e, &key)?;
    e.sealed = Some(sealing);
    Ok(())
}

/// Opens a sealed export (a file without sealing is left as it is).
pub fn open(e: &mut Export, passphrase: Option<&str>) -> Result<()> {
    let Some(sealing) = &e.sealed else {
        return Ok(());
    };
    let key = key_of(sealing, passphrase)?;
    open_values(e, &key)?;
    e.sealed = None;
    Ok(())
}
