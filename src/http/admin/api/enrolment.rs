//! `/api/v1/accounts/{account}/enrolment`: the account's withholding mode, its enrolment
//! windows, each device's enrolment state (waiting, delivered, enrolled, contested, with
//! who claimed it) and what an admin does about one — the same `actions::enrolment` calls as
//! the CLI and the console, with the same counts and confirmations (409 with the phones, then
//! the same body with `"confirm": true`).

use std::net::IpAddr;

use rouille::{Request, Response};
use serde::Deserialize;
use serde_json::json;

use super::{Api, error_response, parse_body};
use crate::actions::Actor;
use crate::actions::enrolment;
use crate::domain::account::Account;
use crate::domain::mac::Mac;
use crate::domain::users::Action;
use crate::error::{Error, Result};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Mode {
    withhold: bool,
    #[serde(default)]
    confirm: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenBody {
    minutes: u64,
    #[serde(default)]
    mac: Option<String>,
    #[serde(default)]
    address: Option<IpAddr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseBody {
    #[serde(default)]
    mac: Option<String>,
    #[serde(default)]
    confirm: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReenrolBody {
    #[serde(default = "sixty")]
    minutes: u64,
    #[serde(default)]
    address: Option<IpAddr>,
    #[serde(default)]
    confirm: bool,
}

fn sixty() -> u64 {
    60
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MaxAge {
    max_days: u32,
}

fn mac_of(field: &str, s: &str) -> Result<Mac> {
    Mac::parse_lenient(s)
        .ok_or_else(|| Error::invalid(field, format!("`{s}` is not a MAC address")))
}

/// Routes `enrolment` and everything under it for account `a`.
pub fn route(
    api: &Api,
    req: &Request,
    actor: &Actor<'_>,
    a: &Account,
    rest: &[&str],
) -> Result<Response> {
    let who = &actor.who;
    let manage = || actor.user.require(Action::ManageAccounts);
    let mut conn = api.console.conn()?;
    let conn = &mut *conn;
    let show = |conn: &rusqlite::Connection| -> Result<Response> {
        let fresh = crate::actions::accounts::find_account(conn, Some(&a.slug))?;
        let (not_enrolled, contested) = enrolment::counts(conn, &fresh)?;
        Ok(Response::json(&json!({
            "account": fresh.slug,
            "withhold": fresh.device_secrets,
            "not_enrolled": not_enrolled,
            "contested": contested,
            "windows": enrolment::list_windows(conn, &fresh)?,
            "devices": enrolment::status(conn, &fresh)?,
        })))
    };
    match (req.method(), rest) {
        ("GET", ["enrolment"]) => show(conn),
        ("PUT", ["enrolment", "mode"]) => {
            manage()?;
            let b: Mode = parse_body(req)?;
            enrolment::set_device_secrets(conn, who, a, b.withhold, b.confirm)?;
            show(conn)
        }
        ("PUT", ["enrolment", "max-age"]) => {
            manage()?;
            let b: MaxAge = parse_body(req)?;
            enrolment::set_window_max_days(conn, who, a, b.max_days)?;
            show(conn)
        }
        ("POST", ["enrolment", "windows"]) => {
            manage()?;
            let b: OpenBody = parse_body(req)?;
            let mac = b.mac.as_deref().map(|m| mac_of("mac", m)).transpose()?;
            let w = enrolment::open_window(conn, who, a, b.minutes, mac.as_ref(), b.address)?;
            Ok(Response::json(&w).with_status_code(201))
        }
        ("POST", ["enrolment", "windows", "close"]) => {
            manage()?;
            let b: CloseBody = parse_body(req)?;
            let mac = b.mac.as_deref().map(|m| mac_of("mac", m)).transpose()?;
            let n = enrolment::close_windows(conn, who, a, mac.as_ref(), b.confirm)?;
            Ok(Response::json(&json!({ "closed": n })))
        }
        ("POST", ["enrolment", "devices", mac, "reenrol"]) => {
            manage()?;
            let mac = mac_of("mac", mac)?;
            let b: ReenrolBody = parse_body(req)?;
            let w = enrolment::reenrol(conn, who, a, &mac, b.minutes, b.address, b.confirm)?;
            Ok(Response::json(&w))
        }
        ("POST", ["enrolment", "devices", mac, "dismiss"]) => {
            manage()?;
            let mac = mac_of("mac", mac)?;
            enrolment::dismiss(conn, who, a, &mac)?;
            Ok(Response::empty_204())
        }
        (m, _) => Ok(error_response(&Error::MethodNotAllowed(m.into()))),
    }
}
