//! Accounts (a Lens "account", a ZTP "company"): the unit that owns device credentials,
//! profiles and devices, and the base path its phones use.
//!
//! The default account answers at `/`; every account also answers at its service address
//! `/<slug>-<key>/`, whose random key makes the address hard to guess.

use std::fmt;

use serde::Serialize;

use crate::error::{Error, FieldError, Result};

/// Database id of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct AccountId(pub i64);

/// What an account does with phones it does not know (docs/design.md §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum UnknownDevices {
    /// Record the MAC as unassociated and serve a staging master that turns polling on, so
    /// the phone picks up its association at its next poll. The default.
    Stage,
    /// Serve what Polycom's ZTP serves unassociated phones: ZTP off, empty server address.
    /// Changes phones you may not own, so it needs confirmation when chosen.
    Ztp,
    /// Associate the MAC with the account's default profile on first sight.
    DefaultProfile,
    /// 404 for master files, 403 for everything else.
    Reject,
}

impl UnknownDevices {
    pub const ALL: [UnknownDevices; 4] = [
        UnknownDevices::Stage,
        UnknownDevices::Ztp,
        UnknownDevices::DefaultProfile,
        UnknownDevices::Reject,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UnknownDevices::Stage => "stage",
            UnknownDevices::Ztp => "ztp",
            UnknownDevices::DefaultProfile => "default-profile",
            UnknownDevices::Reject => "reject",
        }
    }

    pub fn parse(s: &str) -> Result<UnknownDevices> {
        UnknownDevices::ALL
            .into_iter()
            .find(|u| u.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "unknown_devices",
                    format!("`{s}` is not one of stage, ztp, default-profile, reject"),
                )
            })
    }
}

impl fmt::Display for UnknownDevices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An account as the device endpoints and the CLI see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub slug: String,
    pub service_key: String,
    pub is_default: bool,
    pub provisioning_enabled: bool,
    pub device_user: Option<String>,
    pub device_password: Option<String>,
    pub credential_generation: i64,
    pub autosync_enabled: bool,
    pub unknown_devices: UnknownDevices,
    pub default_profile_id: Option<i64>,
    /// Secrets withheld until the device proves itself (docs/design.md §6.4): the account
    /// credential only enrols; secrets and per-device files need the device's own
    /// credential or a verified device certificate. On for accounts created from schema 7
    /// on.
    pub device_secrets: bool,
    /// Whether TFTP may serve its associated devices their files with the account
    /// credential (Auto-Sync's `device.prov.user`/`password`, never a SIP secret or a
    /// device's own credential), so they can move to HTTP(S). TFTP has no authentication:
    /// the credential is then as exposed as in DHCP option 160. Off by default.
    pub tftp_credential: bool,
    /// Whether Polycom's factory FTP login (`PlcmSpIp`/`PlcmSpIp`) is accepted for this
    /// account's phones: it gets what an unknown device gets and, for an associated
    /// device, its files without any SIP secret at the address of device HTTP (the move to
    /// HTTP(S)). On by default (phones at factory settings use it); FTP sends it in clear.
    pub ftp_factory_login: bool,
    /// SIP check-sync settings of the account (issue 21).
    pub sip: AccountSip,
}

/// An account's SIP settings, all off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AccountSip {
    /// Render request validation: the account's phones accept a check-sync `NOTIFY` only
    /// with a Digest answer from their line's credentials (`domain::checksync::validation`).
    /// Check-sync from the PBX then needs the PBX to authenticate, and a phone with no
    /// registered line cannot be reached this way.
    pub validation: bool,
    /// After a change that affects devices, send them check-sync at once (phones the change
    /// would restart still wait for their next poll); off: wait for the next poll.
    pub apply_after_change: bool,
    /// A background `OPTIONS` check keeps the devices' online state current.
    pub online_check: bool,
}

impl Account {
    /// The account's own service address path, `/<slug>-<key>/`.
    pub fn service_path(&self) -> String {
        format!("/{}-{}/", self.slug, self.service_key)
    }

    /// The path segment (without slashes) that selects this account.
    pub fn service_segment(&self) -> String {
        format!("{}-{}", self.slug, self.service_key)
    }
}

/// Checks device credentials an admin sets. Phones send them in HTTP Basic and in URLs of
/// DHCP option 160, so `:` in the user name and characters that need URL or XML escaping
/// are refused rather than half-working.
pub fn validate_credentials(user: &str, password: &str) -> Result<()> {
    let mut problems = Vec::new();
    if user.is_empty() || user.len() > 64 {
        problems.push(FieldError::new("user", "must be 1 to 64 characters"));
    } else if !user
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        problems.push(FieldError::new(
            "user",
            "may contain only letters, digits, `.`, `_` and `-`",
        ));
    }
    if password.len() < 8 || password.len() > 128 {
        problems.push(FieldError::new("password", "must be 8 to 128 characters"));
    } else if !password
        .chars()
        .all(|c| c.is_ascii_graphic() && !"@:/\\%#?&<>\"',".contains(c))
    {
        problems.push(FieldError::new(
            "password",
            "may contain printable ASCII except @ : / \\ % # ? & < > \" ' and , (it travels in \
             URLs, HTTP headers and DHCP options)",
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(problems))
    }
}

/// Checks an account slug: lowercase letters, digits and `-`, 2 to 32 characters.
pub fn validate_slug(slug: &str) -> Result<()> {
    let ok = (2..=32).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "slug",
            "must be 2 to 32 lowercase letters, digits or `-`",
        ))
    }
}

/// A random token of `len` characters from an alphabet that needs no escaping anywhere.
pub fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = vec![0u8; len];
    // getrandom only fails when the OS has no entropy source at all.
    if getrandom::fill(&mut bytes).is_err() {
        panic!("the operating system's random number generator is unavailable");
    }
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_checked_field_by_field() {
        assert!(validate_credentials("provision", "s3cretpassword").is_ok());
        let err = validate_credentials("a:b", "short").expect_err("bad");
        let text = err.to_string();
        assert!(
            text.contains("user:") && text.contains("password:"),
            "{text}"
        );
        assert!(validate_credentials("p", "has@sign99").is_err());
    }

    #[test]
    fn tokens_are_random_and_plain() {
        let a = random_token(24);
        assert_eq!(a.len(), 24);
        assert_ne!(a, random_token(24));
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn unknown_device_policies_round_trip() {
        for p in UnknownDevices::ALL {
            assert_eq!(UnknownDevices::parse(p.as_str()).expect("parse"), p);
        }
        assert!(UnknownDevices::parse("maybe").is_err());
    }
}
