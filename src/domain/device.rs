//! Devices: a MAC associated with a profile (or only seen), its ZTP vendor extensions and
//! its SIP lines.
//!
//! The ten vendor extensions of the ZTP guide keep their order (Table 2): SIP server, outbound
//! proxy, provisioning server, user, password, polling, then line 1's SIP user ID, password,
//! label and display name. Per-device values override the profile.

use serde::Serialize;

use super::mac::Mac;
use super::polycom::models::UCS_VENDOR_MODEL;
use super::profile::{check_extension_value, check_profile_name, check_vendor_model};
use crate::error::{Error, FieldError, Result};

/// The vendor extensions an admin may set per device.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct VendorExtensions {
    pub sip_server: String,
    pub outbound_proxy: String,
    pub prov_server: String,
    pub prov_user: String,
    pub prov_password: String,
    /// `1`, `0`, or empty for the phone's default.
    pub polling: String,
}

/// One SIP line of a device.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Line {
    pub line: u32,
    pub auth_user_id: String,
    pub auth_password: String,
    pub label: String,
    pub display_name: String,
    /// The user's extension (`${EXTENSION}`); empty means the SIP user ID.
    pub extension: String,
    /// `${FIRST_NAME}`, `${LAST_NAME}`.
    pub first_name: String,
    pub last_name: String,
}

impl Line {
    pub fn is_empty(&self) -> bool {
        self.auth_user_id.is_empty()
            && self.auth_password.is_empty()
            && self.label.is_empty()
            && self.display_name.is_empty()
            && self.extension.is_empty()
            && self.first_name.is_empty()
            && self.last_name.is_empty()
    }
}

/// Device-level template values (`device_vars`): `${LABEL}`, `${TL_TIMEZONE}`,
/// `${TL_TIMEZONE_NAME}`, `${DEFAULT_PARKEXT}` and `${OVERRIDE}`. Validated by
/// `domain::devicevars`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct DeviceVars {
    /// Device description.
    pub label: String,
    /// The phone's time zone value (e.g. the GMT offset its templates expect).
    pub tl_timezone: String,
    /// The time zone's display name.
    pub tl_timezone_name: String,
    /// Default call park extension.
    pub default_parkext: String,
    /// A fragment of `name="value"` attributes inserted as written by `${OVERRIDE}`.
    pub override_attrs: String,
}

/// What an admin supplies to associate a device.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceInput {
    pub mac: String,
    /// Empty means the MAC in upper case (the ZTP guide, Table 2).
    pub serial: String,
    /// Empty means `Polycom_UCS_Device`.
    pub vendor_model: String,
    pub profile: String,
    pub ext: VendorExtensions,
    pub line1: Line,
}

/// A validated association, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDevice {
    pub mac: Mac,
    pub serial: String,
    pub vendor_model: String,
    pub profile: String,
    pub ext: VendorExtensions,
    pub line1: Line,
}

impl DeviceInput {
    /// Checks every field; the error lists each problem with its field.
    pub fn validate(&self) -> Result<NewDevice> {
        let mut p = Vec::new();
        let mac = match Mac::parse_lenient(&self.mac) {
            Some(m) if !m.is_zero() => Some(m),
            Some(_) => {
                p.push(FieldError::new(
                    "mac",
                    "000000000000 names the default master file, not a device",
                ));
                None
            }
            None => {
                p.push(FieldError::new(
                    "mac",
                    format!(
                        "`{}` is not a MAC address (12 hex digits, optionally separated by `:`, `-` or `.`)",
                        self.mac
                    ),
                ));
                None
            }
        };
        let serial = self.serial.trim();
        if !serial.is_empty() {
            check_serial(serial, &mut p);
        }
        let model = match self.vendor_model.trim() {
            "" => UCS_VENDOR_MODEL,
            m => m,
        };
        check_vendor_model("vendor_model", model, &mut p);
        check_profile_name("profile", self.profile.trim(), &mut p);
        let e = &self.ext;
        for (field, value) in [
            ("sip_server", &e.sip_server),
            ("outbound_proxy", &e.outbound_proxy),
            ("prov_server", &e.prov_server),
            ("prov_user", &e.prov_user),
            ("prov_password", &e.prov_password),
        ] {
            check_extension_value(field, value.trim(), &mut p);
        }
        // Line 1's fields follow the line rule of every other entry path (`set-line`).
        for (field, value) in [
            ("sip_auth_user_id", &self.line1.auth_user_id),
            ("sip_auth_password", &self.line1.auth_password),
            ("line_label", &self.line1.label),
            ("display_name", &self.line1.display_name),
        ] {
            check_line_text(field, value.trim(), &mut p);
        }
        super::provserver::check_address("prov_server", &e.prov_server, &mut p);
        if !matches!(e.polling.trim(), "" | "0" | "1") {
            p.push(FieldError::new(
                "polling",
                format!("`{}` must be 1, 0 or empty", e.polling),
            ));
        }
        match mac {
            Some(mac) if p.is_empty() => Ok(NewDevice {
                mac,
                serial: if serial.is_empty() {
                    mac.upper()
                } else {
                    serial.to_string()
                },
                vendor_model: model.to_string(),
                profile: self.profile.trim().to_string(),
                ext: VendorExtensions {
                    sip_server: e.sip_server.trim().to_string(),
                    outbound_proxy: e.outbound_proxy.trim().to_string(),
                    prov_server: e.prov_server.trim().to_string(),
                    prov_user: e.prov_user.trim().to_string(),
                    prov_password: e.prov_password.trim().to_string(),
                    polling: e.polling.trim().to_string(),
                },
                line1: Line {
                    line: 1,
                    auth_user_id: self.line1.auth_user_id.trim().to_string(),
                    auth_password: self.line1.auth_password.trim().to_string(),
                    label: self.line1.label.trim().to_string(),
                    display_name: self.line1.display_name.trim().to_string(),
                    ..Default::default()
                },
            }),
            _ => Err(Error::Invalid(p)),
        }
    }
}

/// Longest text of a SIP line field.
pub const LINE_TEXT_MAX: usize = 255;

/// The one rule for a SIP line's text fields (SIP user ID and password, label, display
/// name, extension, first and last name) on every entry path: `set-line` and the line
/// editors, line 1 of the bulk association CSV, the transfer import. Any printable text of
/// at most 255 characters: the renderer and templates XML-escape these values, so `'`,
/// `&`, `<` and `"` are kept as written (a display name `O'Brien & Sons` renders as
/// `O&apos;Brien &amp; Sons`), and only control characters, which XML cannot carry, are
/// refused.
pub fn check_line_text(field: &str, value: &str, p: &mut Vec<FieldError>) {
    if value.chars().count() > LINE_TEXT_MAX {
        p.push(FieldError::new(
            field,
            format!("is longer than {LINE_TEXT_MAX} characters"),
        ));
    } else if value.chars().any(char::is_control) {
        p.push(FieldError::new(field, "contains a control character"));
    }
}

/// Serial numbers: `^[A-Za-z0-9_.-]{12,13}$` (the ZTP guide's expression and its
/// description disagree; docs/design.md §8.3 settles on this).
pub fn check_serial(serial: &str, p: &mut Vec<FieldError>) {
    let ok = (12..=13).contains(&serial.len())
        && serial
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !ok {
        p.push(FieldError::new(
            "serial",
            format!("`{serial}` must be 12 or 13 letters, digits, `_`, `.` or `-`"),
        ));
    }
}

/// A stored device, as the device endpoints and the CLI see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Device {
    pub id: i64,
    pub account_id: i64,
    pub mac: Mac,
    pub serial: String,
    pub vendor_model: String,
    pub profile_id: Option<i64>,
    pub profile_name: Option<String>,
    pub ext: VendorExtensions,
    pub lines: Vec<Line>,
    pub auto_associated: bool,
    /// Device-level template values (empty when never set).
    pub vars: DeviceVars,
}

impl Device {
    pub fn is_associated(&self) -> bool {
        self.profile_id.is_some()
    }

    /// The stored association as an input (secrets included): what an edit starts from.
    pub fn input(&self) -> DeviceInput {
        DeviceInput {
            mac: self.mac.to_string(),
            serial: self.serial.clone(),
            vendor_model: self.vendor_model.clone(),
            profile: self.profile_name.clone().unwrap_or_default(),
            ext: self.ext.clone(),
            line1: self
                .lines
                .iter()
                .find(|l| l.line == 1)
                .cloned()
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(mac: &str) -> DeviceInput {
        DeviceInput {
            mac: mac.into(),
            profile: "profile1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_follow_table_2() {
        let d = input("0000CAFEBABE").validate().expect("valid");
        assert_eq!(d.mac.as_str(), "0000cafebabe");
        assert_eq!(d.serial, "0000CAFEBABE");
        assert_eq!(d.vendor_model, UCS_VENDOR_MODEL);
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut i = input("0000cafebab");
        i.serial = "short".into();
        i.ext.polling = "yes".into();
        i.line1.auth_password = "a\u{7}b".into();
        let text = i.validate().expect_err("invalid").to_string();
        for f in ["mac:", "serial:", "polling:", "sip_auth_password:"] {
            assert!(text.contains(f), "{f} missing: {text}");
        }
    }

    #[test]
    fn line_one_follows_the_line_rule_and_the_extensions_the_ztp_rule() {
        let mut i = input("0000cafebabe");
        i.line1.display_name = "O'Brien & <Sons>".into();
        i.line1.auth_password = "a<b\"c".into();
        let d = i.validate().expect("line 1 takes what set-line takes");
        assert_eq!(d.line1.display_name, "O'Brien & <Sons>");
        i.ext.prov_user = "o'brien".into();
        let text = i.validate().expect_err("ZTP extension rule").to_string();
        assert!(text.contains("prov_user:"), "{text}");
    }

    #[test]
    fn the_zero_mac_is_not_a_device() {
        assert!(input("000000000000").validate().is_err());
    }
}
