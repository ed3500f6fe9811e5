//! Turning what the probes and files show into findings, by comparing it with this
//! server's own addresses and accounts: options 66/160/161 that point elsewhere, option
//! credentials that are not the account's current ones (stale after a rotation: the
//! staleness is the finding, not their presence, seed 004), `_rtcconfig`/`_cmaconfig`
//! records that keep video endpoints from ZTP (seed 000), option 43 for Lync certificate
//! provisioning, DHCP servers that disagree, phones still sending wrong credentials, and
//! overrides stored from phones that redirect their server or registration.

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

use super::{Finding, Severity};
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
             certificate there (seed 002).",
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
