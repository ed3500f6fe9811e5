//! DHCP option 160 after a credential change (the Lens Auto-Sync page's own warning): phones
//! that take their credentials from option 160 (new and factory-reset ones) are refused
//! once the account's credentials change, unless DHCP changes too. Every credential change
//! (CLI, console, API) shows the value to paste — with `PASSWORD` in place of the password,
//! which never goes to a page, a log or an answer — and a warning when the last DHCP probe
//! or DHCP-configuration analysis saw the option carry credentials that are not the
//! account's current ones.

use rusqlite::Connection;
use serde::Serialize;

use crate::domain::account::Account;
use crate::error::Result;

/// What to tell the admin about option 160 for one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Option160 {
    /// The value to put in option 160, `PASSWORD` standing for the account's password.
    pub value: String,
    /// Set when the last probe or analysis saw old credentials in DHCP: what it saw
    /// (masked) and when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// Option 160 for `account` as phones should get it from this server (`advertised_host`,
/// the device HTTP port, the account's service address).
pub fn option160(
    conn: &Connection,
    config: &crate::config::Config,
    account: &Account,
) -> Result<Option160> {
    let (host, _) = crate::actions::advertised_host(config);
    let port = config
        .device_http_addr()
        .map(|a| a.port())
        .filter(|p| *p != 0);
    let mut shown = account.clone();
    shown.device_user = Some(account.device_user.clone().unwrap_or_else(|| "USER".into()));
    shown.device_password = Some("PASSWORD".into());
    let value = crate::diag::snippets::account_url(&shown, &host, port, true);
    let mut warning = None;
    for kind in ["dhcp", "dhcp-config"] {
        let Some(run) = crate::db::diag::find_latest_run(conn, kind)? else {
            continue;
        };
        let findings = crate::db::diag::list_findings(conn, run.id)?;
        if let Some(seen) = crate::diag::findings::old_credentials_seen(&findings, account) {
            let what = if kind == "dhcp" {
                "DHCP probe"
            } else {
                "DHCP configuration analysis"
            };
            warning = Some(format!(
                "the last {what} ({}) saw DHCP give phones credentials that are not account \
                 `{}`'s current ones: {seen}. New and factory-reset phones taking them are \
                 refused until the option holds the current credentials.",
                crate::domain::time::format_time(run.started_at),
                account.name
            ));
            break;
        }
    }
    Ok(Option160 { value, warning })
}
