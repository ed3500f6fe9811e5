//! The use cases: every action that reads or writes state (the database, the data
//! directory's files, the clock), one function per use case, shared by the command line,
//! the console and the JSON API — so each behaves the same whichever way an admin acts.
//!
//! Actions validate everything first and then write in one transaction with its audit
//! entry, so a refused input leaves nothing half-written. They take types and rules from
//! `domain` and queries from `db`; they never know about HTTP or HTML.

pub mod accounts;
pub mod assets;
pub mod associations;
pub mod bulk;
pub mod device_jobs;
pub mod directory;
pub mod enrolment;
pub mod firmware;
pub mod import;
pub mod inventory;
pub mod migrate;
pub mod overrides;
pub mod params;
pub mod policy;
pub mod profiles;
pub mod provisioning;
pub mod render;
pub mod rollback;
pub mod sightings;
pub mod signin;
pub mod sip;
pub mod standing;
pub mod stored;
pub mod summary;
pub mod templating;
pub mod tenants;
pub mod totp;
pub mod transfer;
pub mod uploaded;
pub mod uploads;

use rusqlite::Connection;

use crate::domain::account::Account;
use crate::domain::audit::Change;
use crate::domain::provserver::{Listener, OwnAddresses};
use crate::domain::users::{Role, User};
use crate::error::Result;

/// Who acts, on which account, and the settings actions need. The console builds one from
/// the signed-in user, the API from the token's user, the CLI with `operator`: every
/// action sees the same actor whichever way an admin acts.
pub struct Actor<'a> {
    pub user: &'a User,
    pub account: &'a Account,
    /// This server's own addresses: provisioning-server fields naming them are refused.
    pub own: &'a OwnAddresses,
    /// Seconds a reference ID without devices (a partial association) is kept.
    pub partial_expiry_secs: i64,
    /// Who the audit log names: the signed-in person, the API token, or the CLI's user.
    pub who: crate::domain::audit::Actor,
}

impl Actor<'_> {
    /// When a reference ID left without devices now expires.
    pub fn expires_at(&self) -> i64 {
        crate::db::now_secs() + self.partial_expiry_secs
    }

    /// A change of this actor's account, for the audit log.
    pub fn change(&self, action: &str, target: &str) -> Change {
        Change::new(Some(self.account.id.0), action, target)
    }

    /// Records a change in the audit log, in the caller's transaction.
    pub fn record(&self, tx: &Connection, change: Change) -> Result<()> {
        crate::db::audit::record(tx, &self.who, change)
    }
}

/// What a long action on many devices tells as it goes: `device_jobs` keeps it for the
/// job's page. Both default to nothing (`Unwatched`).
pub trait Watch {
    /// `done` of `total` devices processed so far (`done <= total`).
    fn progress(&mut self, _done: usize, _total: usize) {}

    /// Inside the action's final write transaction, just before it commits: the devices
    /// processed and what the action did, in words. Whatever it writes commits with the
    /// action, or not at all; an error rolls the action back.
    fn committing(&mut self, _tx: &Connection, _done: usize, _outcome: &str) -> Result<()> {
        Ok(())
    }
}

/// Watches nothing: an action run while its caller waits.
pub struct Unwatched;

impl Watch for Unwatched {}

/// The phones an action would refuse or serve less, each with why: shown to the admin, who
/// confirms before the action is taken (console dialog, API `confirm`, CLI `--yes`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Impact {
    /// How many phones.
    pub locked_out: usize,
    pub macs: Vec<String>,
    /// Each phone with why.
    pub phones: Vec<crate::error::Affected>,
}

impl Impact {
    /// The impact on these `(mac, reason)` phones.
    pub fn of(phones: impl IntoIterator<Item = (String, String)>) -> Impact {
        let phones: Vec<crate::error::Affected> = phones
            .into_iter()
            .map(|(mac, reason)| crate::error::Affected { mac, reason })
            .collect();
        Impact {
            locked_out: phones.len(),
            macs: phones.iter().map(|p| p.mac.clone()).collect(),
            phones,
        }
    }

    /// `Ok` when no phone is affected or the admin confirmed; else the error that asks,
    /// naming `what` and the phones with why.
    pub fn require(&self, confirm: bool, what: &str) -> Result<()> {
        if self.locked_out == 0 || confirm {
            return Ok(());
        }
        Err(self.ask(what, ""))
    }

    /// The error that asks to confirm `what`, naming the phones with why (the first ten; the
    /// error carries them all) and `also` what else it does.
    pub fn ask(&self, what: &str, also: &str) -> crate::Error {
        let shown: Vec<String> = self
            .phones
            .iter()
            .take(10)
            .map(|p| format!("{} ({})", p.mac, p.reason))
            .collect();
        let more = if self.phones.len() > shown.len() {
            format!(" and {} more", self.phones.len() - shown.len())
        } else {
            String::new()
        };
        let named = if shown.is_empty() {
            String::new()
        } else {
            format!(": {}{more}", shown.join(", "))
        };
        crate::Error::NeedsConfirmation {
            devices: self.locked_out,
            message: format!(
                "{what}: {} phone(s) affected{named}{also}; confirm to go ahead",
                self.locked_out
            ),
            phones: self.phones.clone(),
        }
    }
}

/// The user the command line acts as: an operator of the installation with full scope (an
/// admin of no company), named after the operating-system user.
pub fn operator(name: &str) -> User {
    User {
        id: 0,
        username: name.to_string(),
        role: Role::Admin,
        company: String::new(),
        must_change_password: false,
        accounts: crate::domain::users::Accounts::Installation,
    }
}

/// This server's own addresses from the configuration: public names, both device listeners
/// (HTTP and HTTPS) and the TFTP listener with their addresses, loopback, the host name, and
/// this host's own addresses when a listener is bound to every address.
pub fn own_addresses(config: &crate::config::Config) -> OwnAddresses {
    let listeners: Vec<Listener> = [
        (config.device_http_addr(), false),
        (config.device_https_addr(), true),
    ]
    .into_iter()
    .filter_map(|(addr, tls)| Some(Listener { addr: addr?, tls }))
    .collect();
    let tftp = config.tftp.addr();
    let ftp = config.ftp.addr();
    let host_ips = if listeners.iter().any(|l| l.addr.ip().is_unspecified())
        || tftp.is_some_and(|a| a.ip().is_unspecified())
        || ftp.is_some_and(|a| a.ip().is_unspecified())
    {
        crate::host::addresses()
    } else {
        Vec::new()
    };
    let mut own = OwnAddresses::new(
        &config.device.public_names,
        &crate::host::host_name(),
        &listeners,
        &host_ips,
    )
    .with_tftp(tftp, &host_ips)
    .with_ftp(ftp, &host_ips);
    // The host's full name is this server as much as its short one.
    if let Some(full) = crate::host::fqdn().map(|f| f.to_ascii_lowercase())
        && !own.hosts.contains(&full)
    {
        own.hosts.push(full);
    }
    own
}

/// The host name phones should be given in DHCP snippets and option-160 values: the first
/// `device.public_names`, else this host's fully qualified name (`host::fqdn`), else its
/// first non-loopback address; never the short host name, which phones' resolvers may not
/// complete. The second value says what to set when the name is a guess.
pub fn advertised_host(config: &crate::config::Config) -> (String, Option<&'static str>) {
    if let Some(n) = config.device.public_names.first() {
        return (n.clone(), None);
    }
    if let Some(n) = crate::host::fqdn() {
        return (n, None);
    }
    let ip = crate::host::addresses()
        .into_iter()
        .find(|ip| !ip.is_loopback() && !ip.is_unspecified());
    match ip {
        Some(ip) => (
            ip.to_string(),
            Some(
                "this host has no fully qualified name: its address is used; set device.public_names to the name phones resolve",
            ),
        ),
        None => (
            "zerotouch".into(),
            Some(
                "this host has neither a fully qualified name nor an address: set device.public_names",
            ),
        ),
    }
}

/// Shorthands for tests of the actions: the operator acting on one account.
#[cfg(test)]
pub mod testing {
    use rusqlite::Connection;

    use super::{Actor, operator};
    use crate::domain::account::Account;
    use crate::domain::device::DeviceInput;
    use crate::domain::lint::Transport;
    use crate::domain::profile::ProfileFields;
    use crate::domain::provserver::OwnAddresses;
    use crate::error::Result;

    /// Runs `f` as the CLI's operator on `account`, with no own addresses.
    pub fn as_operator<T>(account: &Account, f: impl FnOnce(&Actor<'_>) -> T) -> T {
        let user = operator("tester");
        let own = OwnAddresses::default();
        f(&Actor {
            user: &user,
            account,
            own: &own,
            partial_expiry_secs: 3600,
            who: crate::domain::audit::Actor::person("tester"),
        })
    }

    /// Creates a profile.
    pub fn add_profile(
        conn: &mut Connection,
        account: &Account,
        fields: &ProfileFields,
        files: super::profiles::Upload,
    ) -> Result<i64> {
        as_operator(account, |a| {
            super::profiles::create_profile(conn, a, fields, files, Transport::PlainHttp)
        })
        .map(|(id, _)| id)
    }

    /// Associates one device.
    pub fn add_device(conn: &mut Connection, account: &Account, input: &DeviceInput) -> Result<()> {
        as_operator(account, |a| {
            super::associations::associate(conn, a, None, std::slice::from_ref(input))
        })
        .map(|_| ())
    }

    /// Deletes a profile.
    pub fn delete_profile(conn: &mut Connection, account: &Account, name: &str) -> Result<()> {
        as_operator(account, |a| super::profiles::delete_profile(conn, a, name))
    }
}
