//! Per-device credentials and enrolment (docs/design.md §6.4, "secrets withheld until the device
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

use super::account::{Account, random_token};
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
    /// A device that was served secrets with the account credential before withholding
    /// became the default (an existing install): served as before, and its own credential
    /// is delivered until it first enrols.
    EnrolServed,
    /// The account credential outside a window, or for a device already enrolled: no
    /// secrets, no credentials, no per-device files.
    Withheld,
}

impl Access {
    /// Whether secrets are left out of served files.
    pub fn withholds(self) -> bool {
        !matches!(self, Access::Full | Access::EnrolServed)
    }

    /// Whether the device's own credential is delivered.
    pub fn delivers(self) -> bool {
        matches!(self, Access::Enrol | Access::EnrolServed)
    }

    /// The label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Access::Full => "full",
            Access::Enrol => "enrol",
            Access::EnrolServed => "enrol-served",
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

/// Where a device stands with enrolment, as stored (never from the request).
#[derive(Debug, Clone, Copy, Default)]
pub struct Standing<'a> {
    /// Its own credential, if it has one.
    pub credential: Option<&'a DeviceCredential>,
    /// An enrolment window covers it now (and the request's address, when the window is
    /// bound to one).
    pub window_open: bool,
    /// It was served secrets with the account credential before withholding became the
    /// default: it keeps them until it first enrols.
    pub served_before: bool,
    /// Its family, by the model an admin declared, is not known to adopt `device.prov.*`
    /// from a file: it could never enrol, so it is not withheld.
    pub exempt: bool,
    /// The vendor's device CA is configured (`tls.client_auth` not off): devices enrol by
    /// presenting a verified certificate, and no window hands out a credential.
    pub certificate_only: bool,
}

/// What a request for `account`'s device may be served.
///
/// Rules (the model-based test's reference model states the same):
/// - E1 an account that does not withhold, a request with the device's own credential or a
///   verified certificate naming its MAC: everything;
/// - E2 a device whose declared family cannot adopt its own credential: everything;
/// - E3 once it enrolled, the account credential gets no secret and no credential (the
///   request is a claim the device page shows: "contested");
/// - E4 a device served secrets before withholding became the default keeps them, and is
///   sent its own credential, until it enrols;
/// - E5 inside a window, the account credential is sent the device's pending credential
///   (the same one every time, until it is used or given up after `GIVE_UP_AFTER`
///   deliveries) and no secret — unless the device CA is configured: then only a
///   certificate enrols (E1), and windows hand out nothing;
/// - E6 otherwise, no secret and no credential.
pub fn access(account: &Account, proof: Proof, standing: Standing<'_>) -> Access {
    if !account.device_secrets || proof.device_credential || proof.certificate {
        return Access::Full;
    }
    if standing.exempt {
        return Access::Full;
    }
    if standing.credential.is_some_and(DeviceCredential::enrolled) {
        return Access::Withheld;
    }
    let given_up = standing.credential.is_some_and(DeviceCredential::given_up);
    if standing.served_before {
        return if given_up {
            Access::Full
        } else {
            Access::EnrolServed
        };
    }
    if standing.window_open && !given_up && !standing.certificate_only {
        Access::Enrol
    } else {
        Access::Withheld
    }
}

/// Whether a device of `model` (the model an admin declared for it or its profile) is known
/// to adopt `device.prov.user`/`password` from a configuration file: UCS phones are; Poly OS
/// devices (no such parameter) and redirect-only video endpoints are not.
pub fn adopts_own_credential(model: &str) -> bool {
    use super::polycom::models::{Family, VIDEO_VENDOR_MODEL};
    model != VIDEO_VENDOR_MODEL && Family::of_model(&model.replace(' ', "")) != Some(Family::PolyOs)
}

/// A new device password.
pub fn generate_password() -> String {
    random_token(PASSWORD_LEN)
}

/// A device's own credential (user = its MAC), opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCredential {
    pub device_id: i64,
    /// The current password: what the device is sent.
    pub password: String,
    /// Older passwords the device may still hold (sent to it, and no newer one proved since):
    /// accepted like the current one.
    pub outstanding: Vec<String>,
    /// Passwords the device proved it moved on from: accepted only during a re-admission.
    pub retired: Vec<String>,
    pub created_at: i64,
    /// When the device first authenticated with the current password.
    pub confirmed_at: Option<i64>,
    /// When the device first authenticated with any own password: from then on it is
    /// enrolled, and the account credential never hands it a credential again.
    pub enrolled_at: Option<i64>,
    /// How often the current password was delivered.
    pub deliveries: i64,
    /// A second client claimed it (`enrolment_claims`): shown until an admin re-enrols the
    /// device or dismisses the claim.
    pub contested_at: Option<i64>,
}

impl DeviceCredential {
    /// Whether `password` is one the device may hold now (`readmitted`: retired ones too).
    pub fn accepts(&self, password: &str, readmitted: bool) -> bool {
        self.password == password
            || self.outstanding.iter().any(|p| p == password)
            || (readmitted && self.retired.iter().any(|p| p == password))
    }

    /// Whether the device has proved it holds an own credential at least once.
    pub fn enrolled(&self) -> bool {
        enrolled(self.enrolled_at, self.confirmed_at)
    }

    /// Delivered `GIVE_UP_AFTER` times and never used: reported, no longer sent.
    pub fn given_up(&self) -> bool {
        !self.enrolled() && self.deliveries >= super::machine::GIVE_UP_AFTER
    }
}

/// Whether a device whose own credential was first proved at `enrolled_at` and whose current
/// one was proved at `confirmed_at` is enrolled: the one rule every count and access uses.
pub fn enrolled(enrolled_at: Option<i64>, confirmed_at: Option<i64>) -> bool {
    if super::regress::on(super::regress::Defect::RotateUnenrols) {
        return confirmed_at.is_some();
    }
    enrolled_at.is_some() || confirmed_at.is_some()
}

/// An enrolment window.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Window {
    pub id: i64,
    pub account_id: i64,
    /// One MAC, or every device of the account.
    pub mac: Option<String>,
    pub opened_at: i64,
    /// When it closes by time (`NO_MAXIMUM_AGE`: never, only when the device enrols).
    pub closes_at: i64,
    pub opened_by: String,
    /// It closes when the device it names first enrols (opened by associating it).
    pub until_enrolled: bool,
    /// Only requests from this address enrol in it.
    pub address: Option<String>,
}

/// `closes_at` of a window with no maximum age.
pub const NO_MAXIMUM_AGE: i64 = i64::MAX;

impl Window {
    /// When it closes, for people.
    pub fn closes_text(&self) -> String {
        let by_time =
            (self.closes_at != NO_MAXIMUM_AGE).then(|| super::time::format_time(self.closes_at));
        match (self.until_enrolled, by_time) {
            (true, None) => "until the device enrols".to_string(),
            (true, Some(t)) => format!("until the device enrols, at the latest {t}"),
            (false, Some(t)) => format!("until {t}"),
            (false, None) => "until closed".to_string(),
        }
    }

    /// Whether it lets a request for `mac` from `address` enrol at `now`.
    pub fn covers(&self, mac: &str, address: &str, now: i64) -> bool {
        self.opened_at <= now
            && now < self.closes_at
            && self.mac.as_deref().is_none_or(|m| m == mac)
            && self.address.as_deref().is_none_or(|a| a == address)
    }
}

/// Checks the length of an enrolment window.
pub fn check_minutes(minutes: u64) -> Result<()> {
    if minutes == 0 || minutes > MAX_WINDOW_MINUTES {
        return Err(Error::invalid(
            "minutes",
            format!("an enrolment window lasts 1 to {MAX_WINDOW_MINUTES} minutes"),
        ));
    }
    Ok(())
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
            tftp_credential: false,
            ftp_factory_login: true,
            sip: Default::default(),
        }
    }

    fn cred(confirmed: bool) -> DeviceCredential {
        DeviceCredential {
            device_id: 1,
            password: "pw".into(),
            outstanding: Vec::new(),
            retired: Vec::new(),
            created_at: 1,
            confirmed_at: confirmed.then_some(2),
            enrolled_at: confirmed.then_some(2),
            deliveries: 1,
            contested_at: None,
        }
    }

    const NONE: Proof = Proof {
        device_credential: false,
        certificate: false,
    };

    fn standing(credential: Option<&DeviceCredential>, window_open: bool) -> Standing<'_> {
        Standing {
            credential,
            window_open,
            ..Standing::default()
        }
    }

    #[test]
    fn the_account_credential_enrols_only_inside_a_window_and_never_an_enrolled_device() {
        let a = account(true);
        assert_eq!(access(&a, NONE, standing(None, false)), Access::Withheld);
        assert_eq!(access(&a, NONE, standing(None, true)), Access::Enrol);
        let pending = cred(false);
        assert_eq!(
            access(&a, NONE, standing(Some(&pending), true)),
            Access::Enrol
        );
        // Enrolled: a stranger with the account credential gets nothing, window or not.
        let enrolled = cred(true);
        assert_eq!(
            access(&a, NONE, standing(Some(&enrolled), true)),
            Access::Withheld
        );
        let own = Proof {
            device_credential: true,
            certificate: false,
        };
        assert_eq!(
            access(&a, own, standing(Some(&enrolled), false)),
            Access::Full
        );
        let cert = Proof {
            device_credential: false,
            certificate: true,
        };
        assert_eq!(access(&a, cert, standing(None, false)), Access::Full);
        // With the device CA configured, a window hands out nothing: only a certificate.
        let by_cert = Standing {
            certificate_only: true,
            ..standing(Some(&pending), true)
        };
        assert_eq!(access(&a, NONE, by_cert), Access::Withheld);
        assert_eq!(access(&a, cert, by_cert), Access::Full);
        // Accounts that do not withhold serve as before.
        assert_eq!(
            access(&account(false), NONE, standing(None, false)),
            Access::Full
        );
    }

    #[test]
    fn served_before_keeps_secrets_until_it_enrols_and_exempt_families_are_not_withheld() {
        let a = account(true);
        let before = Standing {
            served_before: true,
            ..Standing::default()
        };
        assert_eq!(access(&a, NONE, before), Access::EnrolServed);
        assert!(!Access::EnrolServed.withholds() && Access::EnrolServed.delivers());
        let enrolled = cred(true);
        let after = Standing {
            credential: Some(&enrolled),
            ..before
        };
        assert_eq!(access(&a, NONE, after), Access::Withheld);
        let exempt = Standing {
            exempt: true,
            ..Standing::default()
        };
        assert_eq!(access(&a, NONE, exempt), Access::Full);
        assert!(!adopts_own_credential("Poly Studio X30"));
        assert!(adopts_own_credential("VVX 450"));
        assert!(adopts_own_credential(""));
    }

    #[test]
    fn a_credential_delivered_too_often_is_no_longer_sent() {
        let a = account(true);
        let mut c = cred(false);
        c.deliveries = crate::domain::machine::GIVE_UP_AFTER;
        assert!(c.given_up());
        assert_eq!(access(&a, NONE, standing(Some(&c), true)), Access::Withheld);
        let before = Standing {
            credential: Some(&c),
            served_before: true,
            ..Standing::default()
        };
        assert_eq!(access(&a, NONE, before), Access::Full);
    }

    #[test]
    fn a_window_covers_its_mac_and_address_until_it_closes() {
        let w = Window {
            id: 1,
            account_id: 1,
            mac: Some("0004f2000001".into()),
            opened_at: 10,
            closes_at: NO_MAXIMUM_AGE,
            opened_by: "admin".into(),
            until_enrolled: true,
            address: Some("10.0.0.5".into()),
        };
        assert!(w.covers("0004f2000001", "10.0.0.5", 11));
        assert!(!w.covers("0004f2000001", "10.0.0.6", 11));
        assert!(!w.covers("0004f2000002", "10.0.0.5", 11));
        assert!(!w.covers("0004f2000001", "10.0.0.5", 9));
        assert_eq!(w.closes_text(), "until the device enrols");
    }
}
