//! Turning what the probes and files show into findings, by comparing it with this
//! server's own addresses and accounts: options 66/160/161 that point elsewhere, option
//! credentials that are not the account's current ones (stale after a rotation: the
//! staleness is the finding, not their presence, seed 004), `_rtcconfig`/`_cmaconfig`
//! records that keep video endpoints from ZTP (seed 000), option 43 for Lync certificate
//! provisioning, DHCP servers that disagree, phones still sending wrong credentials, and
//! overrides stored from phones that redirect their server or registration.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use rusqlite::Connection;

use super::dhcp::DhcpProbe;
use super::dhcpconf::ConfReport;
use super::dns::DnsProbe;
use super::{Finding, Severity, sort_findings};
use crate::db::diag as q;
use crate::domain::account::Account;
use crate::domain::ops::OwnAddresses;
use crate::domain::provserver::ServerUrl;
use crate::error::Result;

/// What findings are compared with: this server's addresses and its accounts.
#[derive(Debug, Clone, Default)]
pub struct ServerContext {
    pub own: OwnAddresses,
    pub accounts: Vec<Account>,
}

impl ServerContext {
    /// Reads the accounts from the database.
    pub fn load(conn: &Connection, own: OwnAddresses) -> Result<ServerContext> {
        Ok(ServerContext {
            own,
            accounts: crate::db::accounts::list_accounts(conn)?,
        })
    }

    /// The account a URL on this server addresses: the one whose service segment starts its
    /// path, else the default account.
    fn account_for(&self, url: &ServerUrl) -> Option<&Account> {
        let first = url
            .path
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("");
        self.accounts
            .iter()
            .find(|a| !first.is_empty() && a.service_segment() == first)
            .or_else(|| self.accounts.iter().find(|a| a.is_default))
    }
}

/// The URL with its password hidden, for evidence.
fn masked(url: &ServerUrl, original: &str) -> String {
    if url.password.is_empty() {
        original.to_string()
    } else {
        let scheme = url
            .server_type
            .map(|t| t.to_ascii_lowercase() + "://")
            .unwrap_or_default();
        format!("{scheme}{}:***@{}", url.user, url.server_name())
    }
}

const ZTP_NOTE: &str = "Phones that find a server in option 66 or 160 never ask Polycom's ZTP \
    (seed 000); leave both empty where ZTP should be used.";

/// Checks one option value that names a provisioning server (66, 160, 161, or 43 when it
/// holds a URL). `source` says where it was seen.
pub fn check_server_option(
    code: u8,
    value: &str,
    source: &str,
    ctx: &ServerContext,
) -> Vec<Finding> {
    let value = value.trim();
    if value.is_empty() {
        return Vec::new();
    }
    let url = match ServerUrl::parse(value) {
        Ok(u) => u,
        Err(why) => {
            return vec![Finding::new(
                Severity::Warning,
                "dhcp.unreadable-server",
                format!("Option {code} does not hold a server address phones can use"),
                format!("{source}: option {code} = `{value}` ({why})"),
                "Set a host name, an IP address or a URL such as http://host:port/.",
            )];
        }
    };
    let shown = masked(&url, value);
    if !ctx.own.matches(&url) {
        return vec![Finding::new(
            Severity::Warning,
            "dhcp.points-elsewhere",
            format!(
                "Option {code} sends phones to {}, not to this server",
                url.host
            ),
            format!("{source}: option {code} = {shown}"),
            format!(
                "If phones should use this server, set option {code} to its address \
                 (`zerotouch diagnose snippets`). If the other server is intended, ignore \
                 this. {ZTP_NOTE}"
            ),
        )];
    }
    let Some(account) = ctx.account_for(&url) else {
        return Vec::new();
    };
    if url.user.is_empty() && url.password.is_empty() {
        return vec![Finding::new(
            Severity::Info,
            "dhcp.points-here",
            format!(
                "Option {code} points at this server (account `{}`), without credentials",
                account.name
            ),
            format!("{source}: option {code} = {shown}"),
            "Phones need the account's device credentials from elsewhere (set on the phone or \
             by a profile).",
        )];
    }
    let current = account.device_user.as_deref() == Some(url.user.as_str())
        && account.device_password.as_deref() == Some(url.password.as_str());
    if current {
        vec![Finding::new(
            Severity::Info,
            "dhcp.points-here",
            format!(
                "Option {code} points at this server (account `{}`) with its current credentials",
                account.name
            ),
            format!("{source}: option {code} = {shown}"),
            "Nothing to do now; after every credential change update this option too (seed 004).",
        )]
    } else {
        vec![Finding::new(
            Severity::Error,
            "dhcp.stale-credentials",
            format!(
                "Option {code} gives phones credentials that are not account `{}`'s current ones",
                account.name
            ),
            format!(
                "{source}: option {code} = {shown}; user `{}` {}; the account's device user is \
                 `{}` (credential generation {})",
                url.user,
                if account.device_user.as_deref() == Some(url.user.as_str()) {
                    "matches but the password differs"
                } else {
                    "differs"
                },
                account.device_user.as_deref().unwrap_or("(none)"),
                account.credential_generation
            ),
            "New and factory-reset phones will be refused. Put the current credentials in the \
             option (`zerotouch diagnose snippets --with-credentials`) or take them out of DHCP \
             (seed 004: DHCP-delivered credentials must follow every rotation).",
        )]
    }
}

/// Option 43: Lync certificate provisioning (information), or a provisioning URL.
fn check_option43(value: &str, is_ms: bool, source: &str, ctx: &ServerContext) -> Vec<Finding> {
    if is_ms || value.contains("MS-UC-Client") {
        return vec![Finding::new(
            Severity::Info,
            "dhcp.option43-lync",
            "Option 43 sets up Lync/Skype for Business certificate provisioning",
            format!("{source}: option 43 = {value}"),
            "Nothing to change for zerotouch: phones in the Lync base profile fetch the root \
             certificate there (seed 002).",
        )];
    }
    if value.contains("://") {
        return check_server_option(43, value, source, ctx);
    }
    Vec::new()
}

fn option150(addresses: &str, source: &str) -> Finding {
    Finding::new(
        Severity::Info,
        "dhcp.option150",
        "Option 150 (Cisco TFTP servers) is set",
        format!("{source}: option 150 = {addresses}"),
        "Polycom phones are not known to read option 150; it does not steer them.",
    )
}

/// The codes compared between servers.
const COMPARED: &[u8] = &[66, 160, 161, 43, 150, 120, 42, 2];

/// Findings of a DHCP probe.
pub fn dhcp_findings(probe: &DhcpProbe, seconds: u64, ctx: &ServerContext) -> Vec<Finding> {
    let mut out = Vec::new();
    if probe.answers.is_empty() {
        out.push(Finding::new(
            Severity::Warning,
            "dhcp.no-answer",
            format!(
                "No DHCP server answered on {} within {seconds} s",
                probe.interface
            ),
            format!("sent {}; nothing came back", probe.sent.join(", ")),
            "Check that the interface is on the phones' network (often a voice VLAN such as \
             eth0.20) and that a relay forwards to the DHCP server.",
        ));
        return out;
    }
    // Per server: code -> value, over all its answers (the OFFER and the INFORM's ACK).
    let mut per_server: BTreeMap<Ipv4Addr, BTreeMap<u8, String>> = BTreeMap::new();
    for a in &probe.answers {
        let entry = per_server.entry(a.server).or_default();
        for o in &a.options {
            if COMPARED.contains(&o.code) {
                entry.entry(o.code).or_insert_with(|| o.value.clone());
            }
        }
    }
    for (server, options) in &per_server {
        let source = format!("DHCP server {server}");
        for (code, value) in options {
            match code {
                66 | 160 | 161 => out.extend(check_server_option(*code, value, &source, ctx)),
                43 => out.extend(check_option43(
                    value,
                    value.starts_with("MS-UC-Client"),
                    &source,
                    ctx,
                )),
                150 => out.push(option150(value, &source)),
                _ => {}
            }
        }
    }
    if !per_server
        .values()
        .any(|o| o.contains_key(&66) || o.contains_key(&160) || o.contains_key(&161))
    {
        out.push(Finding::new(
            Severity::Info,
            "dhcp.no-boot-server",
            "No DHCP server sets option 66, 160 or 161",
            format!(
                "{} server(s) answered on {}",
                per_server.len(),
                probe.interface
            ),
            "Phones with boot server Default or Custom find no server in DHCP: they use a \
             static address or Polycom's ZTP.",
        ));
    }
    if per_server.len() > 1 {
        let servers: Vec<String> = per_server.keys().map(ToString::to_string).collect();
        let first = per_server.values().next().cloned().unwrap_or_default();
        if per_server.values().all(|o| *o == first) {
            out.push(Finding::new(
                Severity::Info,
                "dhcp.failover-pair",
                format!("{} DHCP servers answer and agree", per_server.len()),
                format!("servers {}", servers.join(", ")),
                "A failover pair or split scope: nothing to do.",
            ));
        } else {
            let mut diffs = Vec::new();
            for code in COMPARED {
                let values: Vec<String> = per_server
                    .iter()
                    .map(|(s, o)| {
                        format!("{s}: {}", o.get(code).map_or("(not set)", String::as_str))
                    })
                    .collect();
                let distinct: std::collections::BTreeSet<Option<&String>> =
                    per_server.values().map(|o| o.get(code)).collect();
                if distinct.len() > 1 {
                    diffs.push(format!("option {code}: {}", values.join("; ")));
                }
            }
            out.push(Finding::new(
                Severity::Warning,
                "dhcp.servers-differ",
                format!(
                    "{} DHCP servers answer with different options",
                    per_server.len()
                ),
                diffs.join(" | "),
                "A phone takes whichever answer comes first, so it may go to either server. \
                 Make the servers agree, or remove the stray one (a forgotten router or test \
                 server is the usual cause).",
            ));
        }
    }
    sort_findings(&mut out);
    out
}

/// Findings of DHCP configuration files.
pub fn conf_findings(report: &ConfReport, ctx: &ServerContext) -> Vec<Finding> {
    let mut out = Vec::new();
    for o in &report.options {
        let source = format!("{} ({}, {})", o.location(), o.dialect.as_str(), o.scope);
        match o.code {
            66 | 160 | 161 => out.extend(check_server_option(o.code, &o.value, &source, ctx)),
            43 => out.extend(check_option43(
                &o.value,
                o.value.starts_with("MS-UC-Client"),
                &source,
                ctx,
            )),
            150 => out.push(option150(&o.value, &source)),
            60 => out.push(Finding::new(
                Severity::Info,
                "dhcp-config.vendor-class",
                format!(
                    "Scope `{}` matches on the vendor class (option 60)",
                    o.scope
                ),
                format!("{source}: {}", o.value),
                "Polycom phones send enterprise 13885 (binary) or `MS-UC-Client` (Lync mode); \
                 make sure the match fits what your phones send (device.dhcp.option60Type).",
            )),
            _ => {}
        }
    }
    for note in &report.notes {
        out.push(Finding::new(
            Severity::Info,
            "dhcp-config.note",
            "Part of the configuration was not analysed",
            note.clone(),
            "",
        ));
    }
    if report.options.is_empty() {
        out.push(Finding::new(
            Severity::Info,
            "dhcp-config.no-options",
            "No provisioning option (66, 160, 161, 43, 150) or vendor-class match is set",
            format!("{} file(s) read", report.files.len()),
            "Phones reach a server through a static address or Polycom's ZTP.",
        ));
    }
    sort_findings(&mut out);
    out
}

/// Findings of a DNS probe.
pub fn dns_findings(probe: &DnsProbe, ctx: &ServerContext) -> Vec<Finding> {
    let mut out = Vec::new();
    let answered: Vec<_> = probe.answers.iter().filter(|a| a.error.is_none()).collect();
    if answered.is_empty() {
        let why = probe
            .answers
            .first()
            .and_then(|a| a.error.clone())
            .unwrap_or_default();
        out.push(Finding::new(
            Severity::Warning,
            "dns.no-answer",
            format!("The DNS server {} did not answer", probe.server),
            why,
            "Check the server address (--server IP:PORT) and that it is reachable over UDP.",
        ));
        return out;
    }
    let records = |prefix: &str| -> Vec<String> {
        probe
            .answers
            .iter()
            .filter(|a| a.name.starts_with(prefix))
            .flat_map(|a| a.records.iter())
            .map(|r| format!("{} {} {}", r.name, r.rtype, r.data))
            .collect()
    };
    let srv_targets = |prefix: &str| -> Vec<(String, u16)> {
        probe
            .answers
            .iter()
            .filter(|a| a.name.starts_with(prefix))
            .flat_map(|a| a.records.iter())
            .filter_map(|r| Some((r.target.clone()?, r.port?)))
            .collect()
    };
    for (prefix, code, what) in [
        (
            "_rtcconfig._tcp.",
            "dns.rtcconfig",
            "Polycom video endpoints",
        ),
        (
            "_cmaconfig._tcp.",
            "dns.cmaconfig",
            "RealPresence Resource Manager discovery (unconfirmed)",
        ),
    ] {
        let found = records(prefix);
        if found.is_empty() {
            continue;
        }
        let here = srv_targets(prefix)
            .iter()
            .all(|(host, _)| ctx.own.hosts.contains(&host.to_ascii_lowercase()));
        out.push(Finding::new(
            if here {
                Severity::Info
            } else {
                Severity::Warning
            },
            code,
            format!(
                "An SRV record {}{} exists: {what} use it instead of ZTP",
                prefix, probe.domain
            ),
            found.join("; "),
            "Video endpoints that find it never reach Polycom's ZTP (seed 000). Remove the \
             record if they should use ZTP, or point it at the server they should use.",
        ));
    }
    let lync: Vec<String> = [
        "_sipinternaltls._tcp.",
        "_sip._tls.",
        "lyncdiscoverinternal.",
        "lyncdiscover.",
        "ucupdates-r2.",
    ]
    .iter()
    .flat_map(|p| records(p))
    .collect();
    if !lync.is_empty() {
        out.push(Finding::new(
            Severity::Info,
            "dns.lync",
            "Lync/Skype for Business discovery records exist",
            lync.join("; "),
            "Phones in the Lync base profile sign in with these (seed 002); nothing to change \
             for provisioning.",
        ));
    }
    let ntp = records("_ntp._udp.");
    if !ntp.is_empty() {
        out.push(Finding::new(
            Severity::Info,
            "dns.ntp",
            "An NTP SRV record exists",
            ntp.join("; "),
            "Phones need a correct clock to accept HTTPS certificates (seed 000).",
        ));
    }
    let failed: Vec<String> = probe
        .answers
        .iter()
        .filter_map(|a| {
            a.error
                .as_ref()
                .map(|e| format!("{} {}: {e}", a.name, a.rtype))
        })
        .collect();
    if !failed.is_empty() {
        out.push(Finding::new(
            Severity::Info,
            "dns.partial",
            "Some questions got no answer",
            failed.join("; "),
            "Run the probe again; a server that drops some queries can hide records.",
        ));
    }
    sort_findings(&mut out);
    out
}

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
                crate::cli::format_time(b.last_bad_ms / 1000),
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
    for (mac, file) in q::list_override_uploads(conn)? {
        let path = data_dir
            .join("uploads")
            .join(&mac)
            .join("overrides")
            .join(&file);
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let Ok(params) = crate::domain::xml::parse_params(&file, &bytes) else {
            continue;
        };
        for p in params {
            let server = p.name == "device.prov.serverName";
            let registration = (p.name.starts_with("reg.")
                && (p.name.contains(".server.") || p.name.contains(".outboundProxy.")))
                || p.name.starts_with("voIpProt.server.")
                || p.name.starts_with("voIpProt.SIP.outboundProxy.");
            if !(server || registration) || p.value.is_empty() {
                continue;
            }
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
                format!("{file} line {}: {}=\"{}\"", p.line, p.name, p.value),
                "Settings made on the phone or its web UI win over the files this server \
                 serves. Reset the phone's local configuration, or change the setting on the \
                 phone.",
            ));
        }
    }
    sort_findings(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{accounts, open_in_memory};

    fn ctx() -> ServerContext {
        let conn = open_in_memory().expect("db");
        accounts::ensure_default(&conn).expect("account");
        let (a, _) = accounts::ensure_default(&conn).expect("account");
        accounts::update_credentials(&conn, a.id, "phones", "Current-Passw0rd").expect("creds");
        ServerContext::load(
            &conn,
            OwnAddresses {
                hosts: vec!["prov.example.com".into()],
                ports: vec![8080],
            },
        )
        .expect("ctx")
    }

    #[test]
    fn elsewhere_here_current_and_stale() {
        let c = ctx();
        let f = check_server_option(66, "http://old.example.com/", "s", &c);
        assert_eq!(f[0].code, "dhcp.points-elsewhere");
        let f = check_server_option(
            160,
            "http://phones:Current-Passw0rd@prov.example.com:8080/",
            "s",
            &c,
        );
        assert_eq!(
            (f[0].code.as_str(), f[0].severity),
            ("dhcp.points-here", Severity::Info)
        );
        let f = check_server_option(
            160,
            "http://phones:Old-Passw0rd@prov.example.com:8080/",
            "s",
            &c,
        );
        assert_eq!(
            (f[0].code.as_str(), f[0].severity),
            ("dhcp.stale-credentials", Severity::Error)
        );
        assert!(!f[0].evidence.contains("Old-Passw0rd"), "{:?}", f[0]);
        let key = &c.accounts[0].service_segment();
        let f = check_server_option(
            160,
            &format!("http://x:y@prov.example.com:8080/{key}/"),
            "s",
            &c,
        );
        assert_eq!(f[0].code, "dhcp.stale-credentials");
    }
}
