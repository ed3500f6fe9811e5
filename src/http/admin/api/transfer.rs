//! `/api/v1/export` and `/import` (the whole installation, admins only) and
//! `/api/v1/accounts/<slug>/export` and `/import` (the account's JSON archive, or its
//! devices, sites, groups and policies as CSV; secrets only with `include_secrets=true`,
//! the admin role and a passphrase in the `X-Export-Passphrase` header, which seals them;
//! an import is checked whole, every bad row named, with `dry_run`, and opens sealed
//! secrets with the same header), and `/api/v1/audit` (the audit
//! log as JSON, or CSV with `format=csv`; secrets were masked when recorded).

use rouille::{Request, Response};
use serde_json::json;

use super::{Api, error_response};
use crate::actions::Actor;
use crate::actions::transfer::{self, Format};
use crate::domain::account::Account;
use crate::domain::audit;
use crate::domain::users::Action;
use crate::error::{Error, Result};
use crate::http::admin::console::audit as audit_page;

fn flag(req: &Request, name: &str) -> Result<bool> {
    match req.get_param(name).as_deref() {
        None | Some("" | "false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(v) => Err(Error::invalid(name, format!("`{v}` is not true or false"))),
    }
}

/// The header that carries the passphrase of sealed secrets (never the URL, which logs
/// keep).
const PASSPHRASE: &str = "X-Export-Passphrase";

fn format_of(req: &Request) -> Result<Format> {
    Format::parse(req.get_param("format").as_deref().unwrap_or("json"))
}

pub fn route(
    api: &Api,
    req: &Request,
    actor: &Actor<'_>,
    a: &Account,
    rest: &[&str],
) -> Result<Response> {
    let c = &api.console;
    match (req.method(), rest) {
        ("GET", ["export"]) => {
            let secrets = flag(req, "include_secrets")?;
            if secrets {
                actor.user.require(Action::ManageAccounts)?;
            }
            let format = format_of(req)?;
            let mut e = transfer::export(&*c.conn()?, a, secrets)?;
            if secrets {
                let pass = req.header(PASSPHRASE).ok_or_else(|| {
                    Error::invalid(
                        PASSPHRASE,
                        "secrets leave only sealed: give the passphrase in this header",
                    )
                })?;
                transfer::seal::seal(&mut e, &transfer::seal::passphrase_from(pass)?)?;
            }
            let text = transfer::write(format, &e)?;
            let kind = match format {
                Format::Json => "application/json",
                Format::Csv => "text/csv; charset=utf-8",
            };
            Ok(Response::from_data(kind, text))
        }
        ("POST", ["import"]) => {
            actor.user.require(Action::ManageAccounts)?;
            let format = format_of(req)?;
            let dry_run = flag(req, "dry_run")?;
            let text = super::body_text(req)?;
            let mut export = transfer::parse(format, &text)?;
            transfer::seal::open(&mut export, req.header(PASSPHRASE))?;
            let report = transfer::import(&mut *c.conn()?, &actor.who, a, &export, dry_run)?;
            Ok(Response::json(&report))
        }
        (m, _) => Ok(error_response(&Error::MethodNotAllowed(m.into()))),
    }
}

/// `GET /export` and `POST /import`: the whole installation as the JSON archive (every
/// account, the provisioning settings and custom variables), for admins; secrets as for an
/// account's export (`include_secrets=true` with the passphrase header, sealed).
pub fn installation(
    api: &Api,
    req: &Request,
    actor: &Actor<'_>,
    segs: &[&str],
) -> Result<Response> {
    use crate::actions::transfer::installation as whole;
    let c = &api.console;
    actor.user.require(Action::ManageSettings)?;
    match (req.method(), segs) {
        ("GET", ["export"]) => {
            let secrets = flag(req, "include_secrets")?;
            let mut i = whole::export(&*c.conn()?, secrets)?;
            if secrets {
                let pass = req.header(PASSPHRASE).ok_or_else(|| {
                    Error::invalid(
                        PASSPHRASE,
                        "secrets leave only sealed: give the passphrase in this header",
                    )
                })?;
                whole::seal(&mut i, &transfer::seal::passphrase_from(pass)?)?;
            }
            Ok(Response::from_data("application/json", whole::to_json(&i)?))
        }
        ("POST", ["import"]) => {
            let dry_run = flag(req, "dry_run")?;
            let text = super::body_text(req)?;
            let mut i = whole::parse_json(&text)?;
            whole::open(&mut i, req.header(PASSPHRASE))?;
            let report = whole::import(&mut *c.conn()?, &actor.who, &i, dry_run)?;
            Ok(Response::json(&report))
        }
        (m, _) => Ok(error_response(&Error::MethodNotAllowed(m.into()))),
    }
}

/// `GET /audit?account=<slug>&limit=<n>&format=json|csv`, filtered as the console page is
/// (`who`, `what`, `target`, `from`, `to`).
pub fn audit_log(api: &Api, req: &Request, actor: &Actor<'_>) -> Result<Response> {
    if req.method() != "GET" {
        return Ok(error_response(&Error::MethodNotAllowed(
            req.method().into(),
        )));
    }
    actor.user.require(Action::ReadAccounts)?;
    let q = audit_page::query_of(&api.console, actor.user, actor.account, req)?;
    let entries = audit_page::entries(&api.console, &q)?;
    match req.get_param("format").as_deref() {
        None | Some("json") => Ok(Response::json(&json!({ "entries": entries }))),
        Some("csv") => Ok(Response::from_data(
            "text/csv; charset=utf-8",
            audit::to_csv(&entries)?,
        )),
        Some(f) => Err(Error::invalid(
            "format",
            format!("`{f}` is not json or csv"),
        )),
    }
}
