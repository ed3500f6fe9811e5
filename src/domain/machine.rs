//! The credential state machine: one set of rules for everything that can lock a phone out
//! — the account's credential generations and their grace windows, a device's own
//! credential, the pending `device.*` changes (server, scheme, CA, boot server), and the
//! service-address aliases. Every device request, admin action and timer is decided here or
//! by the rules this module gathers (`autosync`, `enrolment`, `provstate`); every count and
//! report reads the same rules.
//!
//! # Proof
//! Proof that a device holds a value is a request with its own credential or over TLS with
//! a verified certificate naming its MAC. A request with the account credential proves
//! nothing: the account credential is what DHCP option 160 gives anyone, what an admin types
//! into curl, what a monitor uses. So such requests never take anything away from a phone.
//!
//! # Invariants (the model-based test `tests/it/machine.rs` checks each after every step)
//! - **I1 Never refused, never served less.** A phone that follows the protocol — applies
//!   `device.*` values sent with `device.set=1` and the value's `.set=1`, reads CONFIG_FILES
//!   in order, may be offline any time within a grace window, may sit behind one address
//!   with hundreds of others — is never refused (401, 403, 404 or 429 on its master, its
//!   configuration files or shared files) and never served less (no secret withheld, no line
//!   dropped), unless an admin confirmed an action whose displayed count included that
//!   phone, or a timer closed a window whose closing date and count were shown when it was
//!   opened. `seen_days` is measured at the rotation.
//! - **I2 Others cannot cause it.** Nothing another client does (an admin's curl, a monitor,
//!   a stranger with old or new account credentials or with a phone's MAC) can make I1 fail.
//!   Hence: no request changes which generations a device may use (`autosync`), a pending
//!   credential change is judged by the credentials the request itself carries (never
//!   stored as confirmed: `provstate::pending`), the switch to HTTPS follows only a CA
//!   confirmed by proof, and an address alias is retired automatically only when every
//!   device proved it uses the current address. (The one exception, a stranger who claims a
//!   MAC during its enrolment window, is the enrolment rules': detected and reported.)
//! - **I3 Secrets only to proof.** Where an account withholds secrets, no request without
//!   the device's own credential or certificate reads or writes that device's secrets or
//!   per-device files, or anything derived from them (`enrolment::access`).
//! - **I4 Counts are true.** Every count shown (synced, pending, locked out, never came back)
//!   is computed by `autosync::state` from stored evidence, the same in the CLI, the console
//!   and the API; a device never seen is never counted synced, one refused on its latest
//!   request never counted synced.
//! - **I5 Count, then confirm.** An action that changes any phone's service computes the
//!   phones it affects with the rules that will then decide their requests (`admits`
//!   before and after), shows them with each phone's reason, and needs a confirmation.
//! - **I6 What the machine owns, only it sets.** No profile file, policy, custom variable or
//!   `${OVERRIDE}` fragment sets an owned parameter (`owned`): refused at save naming file,
//!   line and parameter; stored data from before that carries one is not served with it.
//! - **I7 `device.set` only while pending.** A change the phone cannot be seen to apply is
//!   confirmed once a reboot is seen after it was delivered (its master fetched again), or
//!   given up after `GIVE_UP_AFTER` deliveries and reported — never pending forever.
//! - **I8 Durable before sent.** A credential, address or scheme is stored before the
//!   response carrying it leaves (deliveries and own credentials are written synchronously),
//!   and is accepted after a kill -9 at any point.
//! - **I9 Honoured.** The server never sends a phone a credential, address, scheme or port it
//!   will not answer for that phone: HTTPS only once the CA is confirmed by proof, an old
//!   address stays an alias while devices may hold it, every own password sent stays
//!   accepted until the device proves a newer one.
//! - **I10 No silent rollback.** A restore compares credential generations and own
//!   credentials with the database it replaces and counts the phones it would refuse first.

use super::autosync::{self, DeviceFacts, History, Refusal, Settings};
use super::enrolment::DeviceCredential;
use super::polycom::models::Family;
use super::polycom::params::{self, Key};

/// The generation an authenticated request carries when it used the device's own
/// credential rather than one of the account's generations.
pub use super::autosync::OWN_CREDENTIAL;

/// A change delivered this many times without being seen applied is given up and reported.
pub const GIVE_UP_AFTER: i64 = 5;

/// A credential a request may present, and what the machine says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// An account generation, or `OWN_CREDENTIAL`.
    pub generation: i64,
    pub user: String,
    pub password: String,
    /// Accepted, or why not.
    pub verdict: Result<(), Refusal>,
    /// A refusal that counts as a wrong credential (throttling, the failure log). None of
    /// these does: each was issued to phones (only a credential the account never issued
    /// is a guess).
    pub counts: bool,
}

/// What the machine knows of the device a request names.
pub struct Named<'a> {
    pub facts: &'a DeviceFacts,
    /// Its own credential, if it has one (accepted in every mode of the account).
    pub credential: Option<&'a DeviceCredential>,
    /// Its MAC, the user name of its own credential.
    pub mac: &'a str,
}

/// Every credential a request may present to an account, beyond its current generation
/// (checked first by the caller): the older generations — for the device the request names,
/// by the Auto-Sync rules; for a request naming no device (firmware, shared files), every
/// generation still inside its grace window — and the device's own credentials.
pub fn candidates(
    settings: &Settings,
    history: &History,
    named: Option<&Named<'_>>,
    now: i64,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    let readmitted = named.is_some_and(|n| n.facts.readmit.is_some_and(|r| now < r.until));
    if let Some(n) = named
        && let Some(c) = n.credential
    {
        let own = |password: &String, verdict: Result<(), Refusal>| Candidate {
            generation: OWN_CREDENTIAL,
            user: n.mac.to_string(),
            password: password.clone(),
            verdict,
            // It was issued to the device: a phone that was not told, never a guess.
            counts: false,
        };
        let on = if settings.provisioning_enabled {
            Ok(())
        } else {
            Err(Refusal::ProvisioningDisabled)
        };
        out.push(own(&c.password, on));
        out.extend(c.outstanding.iter().map(|p| own(p, on)));
        out.extend(c.retired.iter().map(|p| {
            own(
                p,
                if readmitted {
                    on
                } else {
                    Err(Refusal::WindowClosed)
                },
            )
        }));
    }
    let current = history.current();
    for g in history.generations.iter().rev() {
        if g.generation == current {
            continue;
        }
        let verdict = match named {
            Some(n) => autosync::accept_old(settings, history, n.facts, g.generation, now),
            None if !settings.provisioning_enabled => Err(Refusal::ProvisioningDisabled),
            None if super::regress::on(super::regress::Defect::SharedOld401) => {
                Err(Refusal::WindowClosed)
            }
            None if autosync::in_window(history, g.generation, now) => Ok(()),
            None => Err(Refusal::WindowClosed),
        };
        let shared_defect =
            named.is_none() && super::regress::on(super::regress::Defect::SharedOld401);
        out.push(Candidate {
            generation: g.generation,
            user: g.user.clone(),
            password: g.password.clone(),
            // A generation the account once issued is a phone that was not told (or kept
            // it past its window), never a guess: it is answered 401 with why, not counted
            // towards throttling or the failure log (they are for guesses).
            counts: verdict.is_err() && shared_defect,
            verdict,
        });
    }
    out
}

/// The parameters the machine owns (I6): the provisioning server and its credentials, the
/// boot-server choice, ZTP, the serial tag, the provisioning trust anchors and `device.set`.
/// No profile file, policy, custom variable or override fragment may set them.
pub fn owned(parameter: &str) -> bool {
    let p = parameter.to_ascii_lowercase();
    if p == "device.set" {
        return true;
    }
    let base = p.strip_suffix(".set").unwrap_or(&p);
    base.starts_with("device.prov.")
        || base == "device.dhcp.bootsrvuseopt"
        || base.starts_with("device.sec.tls.customcacert")
        || base.starts_with("device.sec.tls.profile.cacertlist")
        || base.starts_with("device.sec.tls.profileselection")
        || [Family::Vvx, Family::PolyOs].iter().any(|f| {
            [
                Key::ProvServerName,
                Key::ProvServerType,
                Key::ProvUser,
                Key::ProvPassword,
                Key::DhcpBootSrvUseOpt,
                Key::PlatformCaCert,
                Key::PlatformCaList,
                Key::ProvTlsProfile,
                Key::ProvTagSerialNo,
            ]
            .iter()
            // Poly OS's CA slot is UC Software's SIP/application CA name as well
            // (`sec.TLS.customCaCert.1`): profiles keep setting it for UCS phones.
            .filter(|k| !(*f == Family::PolyOs && **k == Key::PlatformCaCert))
            .filter_map(|k| params::name(*f, *k, 1))
            .any(|n| n.eq_ignore_ascii_case(base))
        })
}

/// A problem for each owned parameter among `found` (`name`, `line`), naming `file`, line
/// and parameter.
pub fn owned_problems<'a>(
    file: &str,
    found: impl IntoIterator<Item = (&'a str, u32)>,
) -> Vec<crate::error::FieldError> {
    found
        .into_iter()
        .filter(|(n, _)| owned(n))
        .map(|(n, line)| {
            crate::error::FieldError::new(
                file,
                format!(
                    "line {line}: `{n}` is set by zerotouch itself (the provisioning server, its \
                     credentials, the boot server, the CA and device.set follow the account's \
                     credentials, Auto-Sync and enrolment); remove it, or set the profile's \
                     provisioning fields instead"
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::autosync::{DAY, Generation, Ineligible, Readmit};

    const NOW: i64 = 1_000 * DAY;

    fn history() -> History {
        History {
            generations: vec![Generation {
                generation: 1,
                user: "u1".into(),
                password: "p1".into(),
                created_at: 900 * DAY,
                retired_at: None,
                accept_until: None,
                compromised: false,
            }],
        }
        .rotated(NOW - DAY, "u2", "p2", 14, false)
    }

    fn facts() -> DeviceFacts {
        DeviceFacts {
            // Its latest request used the current generation (maybe an admin's curl).
            held: Some(2),
            held_at: Some(NOW - 60),
            last_seen: Some(NOW - 60),
            associated_at: Some(910 * DAY),
            floor: None,
            last_refused: false,
            eligible: Ok(()),
            readmit: None,
        }
    }

    #[test]
    fn an_old_generation_stays_valid_for_a_device_whatever_its_last_request_used() {
        let (s, h, f) = (Settings::default(), history(), facts());
        let named = Named {
            facts: &f,
            credential: None,
            mac: "0004f2000001",
        };
        let c = candidates(&s, &h, Some(&named), NOW);
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].generation, c[0].verdict), (1, Ok(())));
    }

    #[test]
    fn a_request_naming_no_device_may_use_any_generation_inside_its_window() {
        let (s, h) = (Settings::default(), history());
        let c = candidates(&s, &h, None, NOW);
        assert_eq!(c[0].verdict, Ok(()));
        let later = candidates(&s, &h, None, NOW + 14 * DAY);
        assert_eq!(later[0].verdict, Err(Refusal::WindowClosed));
        assert!(
            !later[0].counts,
            "refused outside its window, yet issued once: a phone not told, never a guess"
        );
    }

    #[test]
    fn a_refused_generation_inside_its_window_is_not_counted_as_a_failure() {
        let (s, h) = (Settings::default(), history());
        let f = DeviceFacts {
            eligible: Err(Ineligible::AutoAssociated),
            ..facts()
        };
        let named = Named {
            facts: &f,
            credential: None,
            mac: "0004f2000001",
        };
        let c = candidates(&s, &h, Some(&named), NOW);
        assert!(c[0].verdict.is_err() && !c[0].counts);
    }

    #[test]
    fn own_credentials_are_accepted_whatever_the_mode_and_retired_ones_only_when_readmitted() {
        let (s, h) = (Settings::default(), history());
        let cred = DeviceCredential {
            device_id: 1,
            password: "own-new".into(),
            outstanding: vec!["own-sent".into()],
            retired: vec!["own-old".into()],
            created_at: 1,
            confirmed_at: None,
            enrolled_at: Some(1),
            deliveries: 1,
            contested_at: None,
        };
        let mut f = facts();
        let named = |f: &DeviceFacts| -> Vec<Candidate> {
            candidates(
                &s,
                &h,
                Some(&Named {
                    facts: f,
                    credential: Some(&cred),
                    mac: "0004f2000001",
                }),
                NOW,
            )
        };
        let c = named(&f);
        let verdict =
            |c: &[Candidate], p: &str| c.iter().find(|x| x.password == p).map(|x| x.verdict);
        assert_eq!(verdict(&c, "own-new"), Some(Ok(())));
        assert_eq!(verdict(&c, "own-sent"), Some(Ok(())));
        assert!(verdict(&c, "own-old").is_some_and(|v| v.is_err()));
        f.readmit = Some(Readmit {
            generation: 0,
            until: NOW + 1,
        });
        assert_eq!(verdict(&named(&f), "own-old"), Some(Ok(())));
    }

    #[test]
    fn owned_parameters_are_recognised_in_every_spelling() {
        for p in [
            "device.prov.user",
            "device.prov.password",
            "device.prov.serverName",
            "DEVICE.PROV.SERVERTYPE",
            "device.prov.ztpEnabled",
            "device.prov.tagSerialNo.set",
            "device.dhcp.bootSrvUseOpt",
            "device.sec.TLS.customCaCert1",
            "device.sec.TLS.profile.caCertList1",
            "device.sec.TLS.profileSelection.provisioning",
            "device.set",
        ] {
            assert!(owned(p), "{p}");
        }
        for p in [
            "device.sntp.serverName",
            "device.dhcp.option60Type",
            "reg.1.auth.password",
            "lcl.ml.lang",
            "sec.TLS.customCaCert.1",
        ] {
            assert!(!owned(p), "{p}");
        }
    }
}
