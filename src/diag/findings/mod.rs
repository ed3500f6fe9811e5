//! Turning what the probes and files show into findings, by comparing it with this
//! server's own addresses and accounts (docs/design.md §10): options 66/160/161 that point
//! elsewhere, option credentials that are not the account's current ones (stale after a
//! rotation; after the Lens Auto-Sync page, the staleness is the finding, not their
//! presence), `_rtcconfig`/`_cmaconfig` records that keep video endpoints from ZTP (the ZTP
//! guide), option 43 for Lync certificate provisioning, DHCP servers that disagree, phones
//! still sending wrong credentials, and overrides stored from phones that redirect their
//! server or registration.

//!
//! This file holds what the checks share (the server context, the check of an option that
//! names a server); `dhcp` judges DHCP answers and configuration files, `dns` the DNS
//! probe, `phones` the access log and stored overrides.

mod dhcp;
mod dns;
mod phones;

pub use dhcp::{conf_findings, dhcp_findings};
pub use dns::dns_findings;
pub use phones::{override_findings, phone_findings};

use rusqlite::Connection;

use super::mask::Masker;
use super::{Finding, Severity};
use crate::domain::account::Account;
use crate::domain::provserver::OwnAddresses;
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

    /// A masker that knows every account's device password (`diag::mask`).
    pub fn masker(&self) -> Masker {
        Masker::new(
            self.accounts
                .iter()
                .filter_map(|a| a.device_password.as_deref()),
        )
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
        format!(
            "{scheme}{}:{}@{}",
            url.user,
            crate::domain::provserver::MASK,
            url.server_name()
        )
    }
}

const ZTP_NOTE: &str = "Phones that find a server in option 66 or 160 never ask Polycom's ZTP \
    (Polycom's ZTP guide); leave both empty where ZTP should be used.";

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
    if url.server_type.is_none() && ctx.own.names_host(&url) {
        let mut out = vec![no_scheme(code, &url, &shown, source, ctx)];
        if let Some(account) = ctx.account_for(&url) {
            out.extend(stale_credentials(code, &url, account, &shown, source));
        }
        return out;
    }
    if !ctx.own.matches(&url) {
        let scheme_note = if url.server_type.is_none() {
            " Without http:// or https:// phones use their Server Type, FTP at the factory."
        } else {
            ""
        };
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
                 this.{scheme_note} {ZTP_NOTE}"
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
    match stale_credentials(code, &url, account, &shown, source) {
        Some(stale) => vec![stale],
        None => vec![Finding::new(
            Severity::Info,
            "dhcp.points-here",
            format!(
                "Option {code} points at this server (account `{}`) with its current credentials",
                account.name
            ),
            format!(
                "{source}: option {code} = {shown}; credential generation {}",
                account.credential_generation
            ),
            "Nothing to do now; after every credential change update this option too (as Poly \
             Lens Auto-Sync asks).",
        )],
    }
}

/// Whether stored findings of a DHCP probe or DHCP-configuration analysis saw an option
/// give phones credentials of `account` that are not its current ones now: a
/// `dhcp.stale-credentials` finding for the account, or a `dhcp.points-here` finding that
/// carried the then-current credentials of an older generation (the account's credentials
/// changed since). Returns that finding's (masked) evidence.
pub fn old_credentials_seen(findings: &[Finding], account: &Account) -> Option<String> {
    let named = format!("account `{}`", account.name);
    findings.iter().find_map(|f| {
        let old = match f.code.as_str() {
            "dhcp.stale-credentials" => f.title.contains(&format!("{named}'s current ones")),
            "dhcp.points-here" if f.title.contains(&format!("({named}) with its current")) => f
                .evidence
                .rsplit_once("; credential generation ")
                .and_then(|(_, g)| g.trim().parse::<i64>().ok())
                .is_some_and(|g| g < account.credential_generation),
            _ => false,
        };
        old.then(|| f.evidence.clone())
    })
}

/// An option naming this host without a scheme: a phone reads it with its Server Type, FTP
/// at the factory (the Polycom admin guides; docs/design.md), and this server serves no FTP.
fn no_scheme(code: u8, url: &ServerUrl, shown: &str, source: &str, ctx: &ServerContext) -> Finding {
    let with = |scheme: &str, ports: &[u16], default: u16| {
        let port = url
            .port
            .filter(|p| ports.contains(p))
            .or_else(|| ports.iter().copied().find(|p| *p != 0))?;
        let port = if port == default {
            String::new()
        } else {
            format!(":{port}")
        };
        Some(format!("`{scheme}://{}{port}{}/`", url.host, url.path))
    };
    let choices: Vec<String> = [
        with("https", &ctx.own.https_ports, 443),
        with("http", &ctx.own.http_ports, 80),
    ]
    .into_iter()
    .flatten()
    .collect();
    let fix = if choices.is_empty() {
        format!("Set option {code} to an address with its scheme: `https://…` or `http://…`.")
    } else {
        format!(
            "Set option {code} to an address with its scheme: {}.",
            choices.join(" or ")
        )
    };
    Finding::new(
        Severity::Warning,
        "dhcp.no-scheme",
        format!("Option {code} names this server without http:// or https://: phones will use FTP"),
        format!("{source}: option {code} = {shown}"),
        format!(
            "A phone reads an address without a scheme with its Server Type, which is FTP when \
             it leaves the factory; this server serves HTTP and HTTPS only. {fix}"
        ),
    )
}

/// The finding for credentials in an option that are not the account's current ones.
fn stale_credentials(
    code: u8,
    url: &ServerUrl,
    account: &Account,
    shown: &str,
    source: &str,
) -> Option<Finding> {
    if url.user.is_empty() && url.password.is_empty() {
        return None;
    }
    let current = account.device_user.as_deref() == Some(url.user.as_str())
        && account.device_password.as_deref() == Some(url.password.as_str());
    if current {
        return None;
    }
    Some(Finding::new(
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
         (Poly Lens Auto-Sync: DHCP-delivered credentials must follow every rotation).",
    ))
}

/// Option 43: Lync certificate provisioning (information), or a provisioning URL.
pub(super) fn check_option43(
    value: &str,
    is_ms: bool,
    source: &str,
    ctx: &ServerContext,
) -> Vec<Finding> {
    if is_ms || value.contains("MS-UC-Client") {
        return vec![Finding::new(
            Severity::Info,
            "dhcp.option43-lync",
            "Option 43 sets up Lync/Skype for Business certificate provisioning",
            format!("{source}: option 43 = {value}"),
            "Nothing to change for zerotouch: phones in the Lync base profile fetch the root \
             certificate there (the Lync deployment guide).",
        )];
    }
    if value.contains("://") {
        return check_server_option(43, value, source, ctx);
    }
    Vec::new()
}

pub(super) fn option150(addresses: &str, source: &str) -> Finding {
    Finding::new(
        Severity::Info,
        "dhcp.option150",
        "Option 150 (Cisco TFTP servers) is set",
        format!("{source}: option 150 = {addresses}"),
        "Polycom phones are not known to read option 150; it does not steer them.",
    )
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
                http_ports: vec![8080],
                https_ports: vec![8443],
                tftp_ports: Vec::new(),
                ftp_ports: Vec::new(),
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

    #[test]
    fn old_credentials_are_seen_once_the_account_moved_past_the_generation_a_probe_saw() {
        let c = ctx();
        let mut account = c.accounts[0].clone();
        let current = check_server_option(
            160,
            "http://phones:Current-Passw0rd@prov.example.com:8080/",
            "s",
            &c,
        );
        // Current at the probe, current now: nothing to warn of.
        assert_eq!(old_credentials_seen(&current, &account), None);
        // The credentials changed since: the probe saw the old ones.
        account.credential_generation += 1;
        let seen = old_credentials_seen(&current, &account).expect("old ones seen");
        assert!(
            seen.contains("option 160") && !seen.contains("Current-Passw0rd"),
            "{seen}"
        );
        // A stale option is old whatever the generation; another account's finding is not.
        let stale = check_server_option(
            160,
            "http://phones:Old-Passw0rd@prov.example.com:8080/",
            "s",
            &c,
        );
        assert!(old_credentials_seen(&stale, &c.accounts[0]).is_some());
        let mut other = c.accounts[0].clone();
        other.name = "Other".into();
        other.credential_generation += 5;
        assert_eq!(old_credentials_seen(&stale, &other), None);
        assert_eq!(old_credentials_seen(&current, &other), None);
    }

    #[test]
    fn an_address_without_a_scheme_is_a_warning_with_the_fix() {
        let c = ctx();
        for value in ["prov.example.com", "prov.example.com:8080/phones"] {
            let f = check_server_option(66, value, "s", &c);
            assert_eq!(
                (f[0].code.as_str(), f[0].severity, f.len()),
                ("dhcp.no-scheme", Severity::Warning, 1),
                "{value}: {f:?}"
            );
            assert!(
                f[0].fix.contains("`https://prov.example.com:8443")
                    && f[0].fix.contains("`http://prov.example.com:8080"),
                "{f:?}"
            );
        }
        let f = check_server_option(160, "x:Old-Passw0rd@prov.example.com:8080", "s", &c);
        let codes: Vec<&str> = f.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, ["dhcp.no-scheme", "dhcp.stale-credentials"]);
        let f = check_server_option(66, "10.9.9.9", "s", &c);
        assert_eq!(f[0].code, "dhcp.points-elsewhere");
        assert!(f[0].fix.contains("FTP"), "{f:?}");
        let f = check_server_option(66, "https://prov.example.com:8443/", "s", &c);
        assert_eq!(
            f[0].code, "dhcp.points-here",
            "the HTTPS listener is this server"
        );
    }
}
