//! `/api/v1/accounts/<slug>/inventory` and `/checkins`: devices with state, flags, last
//! sync, model, firmware, site, groups and credential state, filtered like the console
//! page, with counts; check-ins per hour and day; `/summary`, the dashboard's counts
//! (`actions::summary`). And `/api/v1/devices/<mac>/effective-
//! settings`: every parameter a device gets, its value (secrets masked) and its source.

use rouille::{Request, Response};
use serde_json::json;

use super::{Api, error_response};
use crate::domain::account::Account;
use crate::domain::mac::Mac;
use crate::domain::users::User;
use crate::error::{Error, Result};
use crate::http::admin::console::effective::{display_value, settings_of};
use crate::http::admin::console::inventory::{filter_of, page_of};

pub fn route(api: &Api, req: &Request, a: &Account, rest: &[&str]) -> Result<Response> {
    let conn = api.console.conn()?;
    match (req.method(), rest) {
        ("GET", ["inventory"]) => {
            let page = page_of(req)?;
            let inv = crate::actions::inventory::inventory(&conn, a, &filter_of(req)?, page)?;
            Ok(Response::json(&json!({
                "account": a.slug, "total": inv.total, "matched": inv.matched,
                "page": page.number, "per_page": page.size,
                "by_state": inv.by_state, "by_flag": inv.by_flag, "online": inv.online, "offline": inv.offline, "devices": inv.rows,
            })))
        }
        ("GET", ["checkins"]) => Ok(Response::json(&crate::actions::inventory::checkins(
            &conn, a,
        )?)),
        ("GET", ["summary"]) => {
            let uploads = crate::datadir::DataDirs::under(&api.console.config().data_dir).uploads;
            Ok(Response::json(&crate::actions::summary::summary(
                &conn, a, &uploads,
            )?))
        }
        (m, _) => Ok(error_response(&Error::MethodNotAllowed(m.into()))),
    }
}

/// `GET /devices/<mac>/effective-settings`, for any user who may see the device.
pub fn effective(api: &Api, req: &Request, user: &User, mac: &str) -> Result<Response> {
    if req.method() != "GET" {
        return Ok(error_response(&Error::MethodNotAllowed(
            req.method().into(),
        )));
    }
    let mac: Mac = mac
        .parse()
        .map_err(|_| Error::not_found(format!("device `{mac}`")))?;
    let (account, params) = settings_of(&api.console, user, &mac)?;
    let settings: Vec<_> = params
        .iter()
        .map(|p| {
            json!({
                "name": p.name, "value": display_value(p), "source": p.source.label(),
                "detail": p.detail, "secret": p.secret,
            })
        })
        .collect();
    Ok(Response::json(&json!({
        "mac": mac.as_str(), "account": account.slug, "settings": settings,
    })))
}
