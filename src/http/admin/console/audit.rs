//! The audit log page: who changed what and when, with the values before and after (masked
//! when they were recorded, so no secret is ever shown), filtered by account, and the same
//! entries as a CSV or JSON download.
//!
//! Entries come from `domain::audit::list`; the page resolves account ids to their names
//! and shows the values as compact JSON.

use maud::{Markup, html};
use rouille::{Request, Response};

use super::{Console, Ctx, html_page, percent_encode};
use crate::db::audit::Entry;
use crate::domain::audit;
use crate::domain::users::Action;
use crate::error::{Error, Result};
use crate::http::admin::views::{self, when};

/// The query of the page and its downloads: an account slug and how many entries.
pub struct AuditQuery {
    pub account: Option<(i64, String)>,
    pub limit: u32,
}

/// Reads `account` (slug) and `limit` (1 to 10,000; default 200).
/// `user` as signed in: an account they have no role in is not found, and a user scoped to
/// accounts reads the entries of one account — the one named, else `acting` — never the
/// installation's or another account's.
pub fn query_of(
    c: &Console,
    user: &crate::domain::users::User,
    acting: &crate::domain::account::Account,
    req: &Request,
) -> Result<AuditQuery> {
    let account = match req.get_param("account").filter(|s| !s.is_empty()) {
        Some(slug) => {
            let (_, a) = crate::actions::tenants::act_in(&*c.conn()?, user, Some(&slug))?;
            Some((a.id.0, a.slug))
        }
        None if user.installation_wide() => None,
        None => Some((acting.id.0, acting.slug.clone())),
    };
    let limit = match req.get_param("limit").filter(|s| !s.is_empty()) {
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| Error::invalid("limit", "must be 1 to 10000"))?,
        None => 200,
    };
    Ok(AuditQuery { account, limit })
}

/// The entries a query selects.
pub fn entries(c: &Console, q: &AuditQuery) -> Result<Vec<Entry>> {
    crate::db::audit::list_entries(&*c.conn()?, q.account.as_ref().map(|a| a.0), q.limit)
}

/// A recorded value as `key: value` lines (strings unquoted, nested values as JSON).
fn fields(v: &Option<serde_json::Value>) -> Markup {
    use serde_json::Value;
    let show = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "--".into(),
        other => other.to_string(),
    };
    html! {
        @match v {
            Some(Value::Object(map)) => {
                @for (k, v) in map { span.kv { span.muted { (k) ": " } code { (show(v)) } } }
            }
            Some(other) => { code { (show(other)) } }
            None => {}
        }
    }
}

pub fn page(c: &Console, ctx: &Ctx, req: &Request) -> Result<Response> {
    ctx.user.require(Action::ReadAccounts)?;
    let q = query_of(c, &ctx.signed_in, &ctx.account, req)?;
    let rows = entries(c, &q)?;
    let list = crate::actions::tenants::list_accounts(&*c.conn()?, &ctx.signed_in)?;
    let name_of = |id: Option<i64>| -> String {
        id.and_then(|id| list.iter().find(|a| a.id == id))
            .map(|a| a.slug.clone())
            .unwrap_or_else(|| "--".into())
    };
    let slug = q.account.as_ref().map(|a| a.1.as_str()).unwrap_or("");
    let qs = format!("account={}&limit={}", percent_encode(slug), q.limit);
    let options: Vec<(&str, &str)> = std::iter::once(("", "every account"))
        .chain(list.iter().map(|a| (a.slug.as_str(), a.name.as_str())))
        .collect();
    let body = html! {
        h1 { "Audit log" }
        p.hint { "Every change made in the console, through the API (as the token's owner) or with the command line (as the operating-system user), newest first. Secrets are masked when recorded." }
        form.filters method="get" action="/audit" {
            (views::select("Account", "account", &options, slug))
            div.field {
                label for="limit" { "Entries" }
                input id="limit" name="limit" type="number" min="1" max="10000" value=(q.limit);
            }
            div.field.buttons { button type="submit" { "Show" } }
        }
        p { "Download: " a href=(format!("/audit.csv?{qs}")) { "CSV" } " · " a href=(format!("/audit.json?{qs}")) { "JSON" } }
        @if rows.is_empty() { p.muted { "No entries." } } @else {
            table.list.audit {
                thead { tr { th { "When" } th { "Who" } th { "Account" } th { "Action" } th { "Target" } th { "Before" } th { "After" } } }
                tbody {
                    @for e in &rows {
                        tr {
                            td.nowrap { (when(Some(e.ts))) }
                            td { (e.actor) br; span.muted { (e.actor_kind.as_str()) } }
                            td { (name_of(e.account_id)) }
                            td { code { (e.action) } }
                            td { (e.target) }
                            td.json { (fields(&e.before)) }
                            td.json { (fields(&e.after)) }
                        }
                    }
                }
            }
        }
    };
    Ok(html_page(
        200,
        views::page("Audit log", &ctx.nav("audit"), body),
    ))
}

/// `/audit.csv` and `/audit.json`.
pub fn download(c: &Console, ctx: &Ctx, req: &Request, csv: bool) -> Result<Response> {
    ctx.user.require(Action::ReadAccounts)?;
    let rows = entries(c, &query_of(c, &ctx.signed_in, &ctx.account, req)?)?;
    let (kind, name, body) = if csv {
        (
            "text/csv; charset=utf-8",
            "audit.csv",
            audit::to_csv(&rows)?,
        )
    } else {
        let text = serde_json::to_string_pretty(&serde_json::json!({ "entries": rows }))
            .map_err(|e| Error::invalid("audit", e.to_string()))?;
        ("application/json", "audit.json", text)
    };
    Ok(Response::from_data(kind, body).with_additional_header(
        "Content-Disposition",
        format!("attachment; filename=\"zerotouch-{name}\""),
    ))
}
