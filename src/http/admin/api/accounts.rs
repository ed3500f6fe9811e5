//! `/api/v1/accounts`: accounts, Device Provisioning on/off, server credentials, Auto-Sync
//! and its options, progress and the report of phones that never came back, re-admission,
//! a new service address and aliases, serving the account credential over TFTP — the same
//! `actions::accounts` calls as the console.
//!
//! The confirmation protocol: an action that would lock devices out answers 409 with the
//! number in the error envelope (`"devices": N`) and changes nothing; sending the same
//! body with `"confirm": true` goes ahead. Passwords are write-only (`password_set`).
//! Routes under an account that belong to sites, groups, policies, the inventory or
//! export/import are passed on to the modules that own them.

use rouille::{Request, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Api, error_response, parse_body};
use crate::actions::accounts::{self, AutoSyncOptions, NewAccount, Readmission, Rotation};
use crate::actions::tenants;
use crate::domain::account::Account;
use crate::domain::autosync::SyncState;
use crate::domain::mac::Mac;
use crate::domain::users::{Action, User};
use crate::error::{Error, Result};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountBody {
    name: String,
    slug: String,
    user: String,
    password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Switch {
    enabled: bool,
    #[serde(default)]
    confirm: bool,
}

/// `PUT /accounts/{slug}/sip`: a field left out keeps its value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SipBody {
    validation: Option<bool>,
    apply_after_change: Option<bool>,
    online_check: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsBody {
    user: String,
    password: String,
    #[serde(default)]
    grace_days: Option<u32>,
    #[serde(default)]
    compromised: bool,
    #[serde(default)]
    confirm: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OptionsBody {
    #[serde(default)]
    grace_days: Option<u32>,
    #[serde(default)]
    seen_days: Option<u32>,
    #[serde(default)]
    poly_os: Option<bool>,
    #[serde(default)]
    confirm: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadmitBody {
    #[serde(default)]
    macs: Vec<String>,
    #[serde(default)]
    all_locked_out: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Confirmation {
    #[serde(default)]
    confirm: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetireBody {
    address: String,
    #[serde(default)]
    confirm: bool,
}

/// An account as the API shows it: its summary and whether a password is set.
fn account_json(
    conn: &rusqlite::Connection,
    config: &crate::config::Config,
    a: &Account,
) -> Result<Value> {
    let summary = accounts::summarize(conn, a)?;
    let mut v = json!(summary);
    if let Value::Object(map) = &mut v {
        map.insert("password_set".into(), json!(a.device_password.is_some()));
        map.insert(
            "dhcp_option_160".into(),
            json!(accounts::option160(conn, config, a)?),
        );
    }
    Ok(v)
}

/// Auto-Sync progress as the API shows it: one flat object per device.
fn progress_json(p: &accounts::Progress) -> Value {
    let rows = |list: &[accounts::DeviceSyncRow]| -> Vec<Value> {
        list.iter()
            .map(|d| {
                let state = match d.state {
                    SyncState::Synced { .. } => "synced",
                    SyncState::Pending { .. } => "pending",
                    SyncState::LockedOut { .. } => "locked-out",
                    SyncState::NeverSeen { .. } => "never-seen",
                };
                json!({"mac": d.mac, "generation": d.generation, "last_seen": d.last_seen, "state": state, "why": d.why})
            })
            .collect()
    };
    json!({
        "current_generation": p.current_generation, "settings": p.settings,
        "by_generation": p.by_generation.iter().map(|(g, n)| json!({"generation": g, "devices": n})).collect::<Vec<_>>(),
        "synced": p.synced, "pending": rows(&p.pending), "locked_out": rows(&p.locked_out),
        "never_seen": rows(&p.never_seen),
    })
}

/// The MACs of a body, each checked (`macs[i]` names a bad one).
pub fn macs_of(list: &[String]) -> Result<Vec<Mac>> {
    list.iter()
        .enumerate()
        .map(|(i, m)| {
            m.parse::<Mac>().map_err(|_| {
                Error::invalid(format!("macs[{i}]"), format!("`{m}` is not a MAC address"))
            })
        })
        .collect()
}

/// Routes `/accounts` and everything under it.
pub fn route(api: &Api, req: &Request, token_user: &User, rest: &[&str]) -> Result<Response> {
    let c = &api.console;
    let m = req.method();
    let [slug, rest @ ..] = rest else {
        token_user.require(Action::ReadAccounts)?;
        let who =
            crate::domain::audit::Actor::token(format!("{} (API token)", token_user.username));
        return match m {
            "GET" => Ok(Response::json(&json!({
                "accounts": tenants::list_accounts(&*c.conn()?, token_user)?
            }))),
            "POST" => {
                token_user.require(Action::ManageInstallation)?;
                let b: AccountBody = parse_body(req)?;
                let input = NewAccount {
                    name: b.name,
                    slug: b.slug.trim().to_string(),
                    user: b.user.trim().to_string(),
                    password: b.password,
                };
                let mut conn = c.conn()?;
                let a = accounts::add_account(&mut conn, &who, &input)?;
                Ok(Response::json(&account_json(&conn, &c.config(), &a)?).with_status_code(201))
            }
            _ => Ok(error_response(&Error::MethodNotAllowed(m.into()))),
        };
    };
    let (user, a) = tenants::act_in(&*c.conn()?, token_user, Some(slug))?;
    let user = &user;
    user.require(Action::ReadAccounts)?;
    let actor = &super::token_actor(c, user, &a);
    let who = &actor.who;
    match rest {
        ["inventory" | "checkins" | "summary"] => {
            return super::inventory::route(api, req, &a, rest);
        }
        ["export" | "import"] => return super::transfer::route(api, req, actor, &a, rest),
        ["sites" | "groups" | "policies", ..] => {
            return super::policies::route(api, req, actor, &a, rest);
        }
        ["enrolment", ..] => return super::enrolment::route(api, req, actor, &a, rest),
        _ => {}
    }
    let manage = || user.require(Action::ManageAccounts);
    let mut conn = c.conn()?;
    let conn = &mut *conn;
    let show = |conn: &rusqlite::Connection| {
        let fresh = accounts::find_account(conn, Some(&a.slug))?;
        Ok(Response::json(&account_json(conn, &c.config(), &fresh)?))
    };
    match (m, rest) {
        ("GET", []) => show(conn),
        ("PUT", ["provisioning"]) => {
            manage()?;
            let b: Switch = parse_body(req)?;
            accounts::set_provisioning(conn, who, &a, b.enabled, b.confirm)?;
            show(conn)
        }
        ("PUT", ["credentials"]) => {
            manage()?;
            let b: CredentialsBody = parse_body(req)?;
            let rotation = Rotation {
                grace_days: b.grace_days,
                compromised: b.compromised,
            };
            accounts::set_credentials(
                conn,
                who,
                &a,
                b.user.trim(),
                &b.password,
                rotation,
                b.confirm,
            )?;
            show(conn)
        }
        ("PUT", ["autosync"]) => {
            manage()?;
            let b: Switch = parse_body(req)?;
            accounts::set_autosync(conn, who, &a, b.enabled, b.confirm)?;
            show(conn)
        }
        ("PUT", ["autosync", "options"]) => {
            manage()?;
            let b: OptionsBody = parse_body(req)?;
            let options = AutoSyncOptions {
                grace_days: b.grace_days,
                seen_days: b.seen_days,
                poly_os: b.poly_os,
            };
            accounts::set_autosync_options(conn, who, &a, options, b.confirm)?;
            show(conn)
        }
        ("PUT", ["tftp-credential"]) => {
            manage()?;
            let b: Switch = parse_body(req)?;
            accounts::set_tftp_credential(conn, who, &a, b.enabled)?;
            show(conn)
        }
        ("PUT", ["ftp-factory-login"]) => {
            manage()?;
            let b: Switch = parse_body(req)?;
            accounts::set_ftp_factory_login(conn, who, &a, b.enabled)?;
            show(conn)
        }
        ("PUT", ["sip"]) => {
            manage()?;
            let b: SipBody = parse_body(req)?;
            let sip = crate::domain::account::AccountSip {
                validation: b.validation.unwrap_or(a.sip.validation),
                apply_after_change: b.apply_after_change.unwrap_or(a.sip.apply_after_change),
                online_check: b.online_check.unwrap_or(a.sip.online_check),
            };
            accounts::set_sip(conn, who, &a, sip)?;
            show(conn)
        }
        ("GET", ["autosync"]) => Ok(Response::json(&progress_json(&accounts::progress(
            conn, &a,
        )?))),
        ("GET", ["autosync", "report"]) => Ok(Response::json(
            &json!({ "devices": accounts::report(conn, &a)? }),
        )),
        ("POST", ["readmit"]) => {
            manage()?;
            let b: ReadmitBody = parse_body(req)?;
            let which = match (b.all_locked_out, b.macs.is_empty()) {
                (true, true) => Readmission::AllLockedOut,
                (false, false) => Readmission::Devices(macs_of(&b.macs)?),
                _ => {
                    return Err(Error::invalid(
                        "macs",
                        "give either `macs` or `all_locked_out: true`",
                    ));
                }
            };
            let done = accounts::readmit(conn, who, &a, &which)?;
            Ok(Response::json(&json!({ "readmitted": done })))
        }
        ("POST", ["address"]) => {
            manage()?;
            let b: Confirmation = parse_body(req)?;
            Ok(Response::json(&accounts::regenerate_address(
                conn, who, &a, b.confirm,
            )?))
        }
        ("GET", ["aliases"]) => Ok(Response::json(
            &json!({ "aliases": accounts::list_aliases(conn, &a)? }),
        )),
        ("POST", ["aliases", "retire"]) => {
            manage()?;
            let b: RetireBody = parse_body(req)?;
            accounts::retire_alias(conn, who, &a, &b.address, b.confirm)?;
            Ok(Response::empty_204())
        }
        (
            _,
            []
            | [
                "provisioning" | "credentials" | "autosync" | "readmit" | "address" | "aliases"
                | "tftp-credential" | "ftp-factory-login",
            ]
            | ["autosync", "options" | "report"]
            | ["aliases", "retire"],
        ) => Ok(error_response(&Error::MethodNotAllowed(m.into()))),
        _ => Err(Error::not_found(format!("API route {}", req.url()))),
    }
}
