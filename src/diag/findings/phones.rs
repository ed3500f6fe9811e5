//! Findings from what phones did: requests with wrong credentials in the access log
//! (phones that still hold credentials from before a rotation), clients refused for reading
//! many devices' files (`auth.macs_per_ip`), and override files stored from phones that
//! redirect their provisioning server or their SIP registration.

use std::path::Path;

use rusqlite::Connection;

use crate::db::diag as q;
use crate::diag::{Finding, Severity, mask_url, sort_findings};
use crate::domain::overrides::{self, Redirect};
use crate::domain::xml::FoundParam;
use crate::error::Result;

/// Findings from what phones did: wrong credentials in the access log over the last
/// `days`, and stored overrides that redirect a phone's server or registration.
pub fn phone_findings(conn: &Connection, data_dir: &Path, days: u32) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    let since = crate::db::now_ms() - i64::from(days) * 86_400_000;
    for b in q::list_bad_auth(conn, since)? {
        let who = match &b.mac {
            Some(m) => format!("phone {m} at {}", b.ip),
            None => format!("a client at {}", b.ip),
        };
        let recovered = b.last_ok_ms.is_some_and(|ok| ok > b.last_bad_ms);
        out.push(Finding::new(
            if recovered {
                Severity::Info
            } else {
                Severity::Warning
            },
            "access.bad-credentials",
            if recovered {
                format!("{who} sent wrong credentials, then right ones")
            } else {
                format!("{who} still sends wrong credentials")
            },
            format!(
                "{} request(s) with wrong credentials in the last {days} day(s), the last at {}{}",
                b.count,
                crate::domain::time::format_time(b.last_bad_ms / 1000),
                if b.user_agent.is_empty() {
                    String::new()
                } else {
                    format!("; User-Agent `{}`", b.user_agent)
                }
            ),
            "The phone holds credentials from before a rotation: from DHCP option 160, a \
             profile, or set by hand. Fix the source (see the DHCP findings), or set the \
             credentials on the phone.",
        ));
    }
    for m in q::list_many_macs(conn, since)? {
        out.push(Finding::new(
            Severity::Warning,
            "access.many-macs",
            format!(
                "A client at {} read the files of many devices without proving it is any of them",
                m.ip
            ),
            format!(
                "{} request(s) past auth.macs_per_ip in the last {days} day(s), {} distinct \
                 MACs asked for, the last at {}{}",
                m.refused,
                m.macs,
                crate::domain::time::format_time(m.last_ms / 1000),
                if m.user_agent.is_empty() {
                    String::new()
                } else {
                    format!("; User-Agent `{}`", m.user_agent)
                }
            ),
            "Someone may be harvesting configuration with the account credential: turn on \
             per-device secrets (`zerotouch enrol mode on`) and rotate the account \
             credential. If the address is a site whose phones share one NAT address (or a \
             reverse proxy), add it to limits.nat_allowlist.",
        ));
    }
    let uploads = data_dir.join("uploads");
    for (mac, file) in q::list_override_uploads(conn, None)? {
        let Ok(mac) = mac.parse::<crate::domain::mac::Mac>() else {
            continue;
        };
        let Ok(params) = crate::actions::overrides::read_params(&uploads, &mac, &file) else {
            continue;
        };
        out.extend(override_findings(&mac.to_string(), &file, &params, &|_| {
            None
        }));
    }
    sort_findings(&mut out);
    Ok(out)
}

/// Findings for the parameters of one stored override file that redirect the phone's
/// provisioning server or its SIP registration (`overrides::redirect_kind`).
/// `server_value` gives, when known, the value the server sets for a parameter, which the
/// override hides.
pub fn override_findings(
    mac: &str,
    file: &str,
    params: &[FoundParam],
    server_value: &dyn Fn(&str) -> Option<String>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in params {
        let Some(kind) = overrides::redirect_kind(&p.name).filter(|_| !p.value.is_empty()) else {
            continue;
        };
        let server = kind == Redirect::Server;
        let hidden = match server_value(&p.name) {
            Some(v) if v != p.value => format!("; it hides the server's `{}`", mask_url(&v)),
            Some(_) => "; the server sets the same value".to_string(),
            None => String::new(),
        };
        out.push(Finding::new(
            Severity::Warning,
            if server {
                "overrides.server"
            } else {
                "overrides.registration"
            },
            format!(
                "Phone {mac} keeps a local setting that redirects its {}",
                if server {
                    "provisioning server"
                } else {
                    "registration"
                }
            ),
            format!(
                "{file} line {}: {}=\"{}\"{hidden}",
                p.line,
                p.name,
                mask_url(&p.value)
            ),
            "Settings made on the phone or its web UI win over the files this server \
             serves. Clear the device's overrides and reset the phone's local configuration, \
             or change the setting on the phone.",
        ));
    }
    out
}
