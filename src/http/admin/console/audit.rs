//! The audit log page: who changed what and when, a page of entries at a time (keyset
//! paging on the entry id: `before=<id>` for older entries, `after=<id>` for newer ones,
//! never OFFSET), filtered by account, actor, action, target and days, with each entry's
//! values before and after as a table of fields (masked when they were recorded, so no
//! secret is ever shown) — and the same filtered entries as a CSV or JSON download.
//!
//! Filters are checked by `domain::audit::Filter`; a bad one is shown next to the form.
//! Entries, counts and the recorded kinds come from `db::audit`; labels and the per-field
//! comparison from `domain::audit`. This file only reads the request and draws.

use maud::{Markup, html};
use rouille::{Request, Response};

use super::{Console, Ctx, html_page, percent_encode};
use crate::db::audit::{Cursor, Entry};
use crate::domain::audit::{self, Filter, FilterText};
use crate::domain::users::Action;
use crate::error::{Error, Result};
use crate::http::admin::views::{self, when};

/// Entries per page unless `per` says otherwise, and the bounds of `per`.
const PER_DEFAULT: u32 = 50;
const PER_RANGE: std::ops::RangeInclusive<u32> = 10..=500;

/// The query of the page and its downloads: an account (id and slug), the filter, and how
/// many entries a download gives.
pub struct AuditQuery {
    pub account: Option<(i64, String)>,
    pub filter: Filter,
    pub limit: u32,
}

/// Reads `account` (slug), the filter (`who`, `what`, `target`, `from`, `to`: see
/// `domain::audit::Filter::parse`) and `limit` (1 to 10,000; default 200).
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
            .filter(|n| (1..=audit::MAX_DOWNLOAD).contains(n))
            .ok_or_else(|| Error::invalid("limit", "must be 1 to 10000"))?,
        None => 200,
    };
    let mut filter = filter_of(req)?;
    filter.account_id = account.as_ref().map(|a| a.0);
    Ok(AuditQuery {
        account,
        filter,
        limit,
    })
}

/// The filter parameters as typed, each empty when absent.
struct Typed {
    who: String,
    what: String,
    target: String,
    from: String,
    to: String,
}

fn typed(req: &Request) -> Typed {
    let p = |n: &str| req.get_param(n).unwrap_or_default();
    Typed {
        who: p("who"),
        what: p("what"),
        target: p("target"),
        from: p("from"),
        to: p("to"),
    }
}

fn filter_of(req: &Request) -> Result<Filter> {
    let t = typed(req);
    Filter::parse(&FilterText {
        who: &t.who,
        what: &t.what,
        target: &t.target,
        from: &t.from,
        to: &t.to,
    })
}

/// The entries a query selects (the downloads: the newest `limit`).
pub fn entries(c: &Console, q: &AuditQuery) -> Result<Vec<Entry>> {
    crate::db::audit::list_filtered(&*c.conn()?, &q.filter, q.limit)
}

/// `per` (entries per page) and where the page starts (`before` or `after` an id).
fn paging(req: &Request) -> Result<(u32, Cursor)> {
    let per = match req.get_param("per").filter(|s| !s.is_empty()) {
        Some(p) => p
            .parse::<u32>()
            .ok()
            .filter(|n| PER_RANGE.contains(n))
            .ok_or_else(|| Error::invalid("per", "must be 10 to 500"))?,
        None => PER_DEFAULT,
    };
    let id = |name: &str| -> Result<Option<i64>> {
        match req.get_param(name).filter(|s| !s.is_empty()) {
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .map(Some)
                .ok_or_else(|| Error::invalid(name, "must be an entry number")),
            None => Ok(None),
        }
    };
    let cursor = match (id("before")?, id("after")?) {
        (Some(b), _) => Cursor::Before(b),
        (None, Some(a)) => Cursor::After(a),
        (None, None) => Cursor::Newest,
    };
    Ok((per, cursor))
}

/// The query string of a query (account and filter) and `extra` pairs.
fn query_string(account: &str, filter: &Filter, extra: &[(&str, String)]) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if !account.is_empty() {
        pairs.push(("account", account.to_string()));
    }
    pairs.extend(filter.pairs());
    pairs.extend(extra.iter().cloned());
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// An entry's values as a table of fields: label (the recorded key as its title), before,
/// after; changed fields marked.
fn changes(e: &Entry) -> Markup {
    let rows = audit::field_changes(e.before.as_ref(), e.after.as_ref());
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "--".into());
    html! {
        @if rows.is_empty() { span.muted { "--" } } @else {
            table.fields {
                thead { tr { th { "Field" } th { "Before" } th { "After" } } }
                tbody {
                    @for r in &rows {
                        tr class=[r.changed.then_some("changed")] {
                            th title=(r.key) { (r.label) }
                            td { code { (dash(&r.before)) } }
                            td { code { (dash(&r.after)) } }
                        }
                    }
                }
            }
        }
    }
}

pub fn page(c: &Console, ctx: &Ctx, req: &Request) -> Result<Response> {
    ctx.user.require(Action::ReadAccounts)?;
    let list = crate::actions::tenants::list_accounts(&*c.conn()?, &ctx.signed_in)?;
    let kinds = crate::db::audit::list_actions(&*c.conn()?)?;
    // A bad filter or page value is shown next to the form, with what was typed.
    let checked =
        query_of(c, &ctx.signed_in, &ctx.account, req).and_then(|q| paging(req).map(|p| (q, p)));
    let (q, paged, problems, status) = match checked {
        Ok((q, (per, cursor))) => {
            let p = crate::db::audit::page(&*c.conn()?, &q.filter, cursor, per)?;
            (Some(q), Some((per, p)), Vec::new(), 200)
        }
        Err(Error::Invalid(p)) => (None, None, p, 422),
        Err(e) => return Err(e),
    };
    let name_of = |id: Option<i64>| -> String {
        id.and_then(|id| list.iter().find(|a| a.id == id))
            .map(|a| a.slug.clone())
            .unwrap_or_else(|| "--".into())
    };
    let t = typed(req);
    let slug = match &q {
        Some(q) => q.account.as_ref().map(|a| a.1.clone()).unwrap_or_default(),
        None => req.get_param("account").unwrap_or_default(),
    };
    let per_text = req.get_param("per").unwrap_or_default();
    let accounts: Vec<(&str, &str)> = std::iter::once(("", "every account"))
        .chain(list.iter().map(|a| (a.slug.as_str(), a.name.as_str())))
        .collect();
    let what_options: Vec<(&str, &str)> = std::iter::once(("", "any action"))
        .chain(kinds.iter().map(|k| (k.as_str(), audit::action_label(k))))
        .collect();
    let field_error = |name: &str| problems.iter().find(|p| p.field == name);
    let input = |label: &str, name: &str, value: &str, kind: &str, hint: &str| {
        html! {
            div.field {
                label for=(name) { (label) }
                input id=(name) name=(name) type=(kind) value=(value) placeholder=(hint);
                @if let Some(p) = field_error(name) { span.error role="alert" { (p.message) } }
            }
        }
    };
    let body = html! {
        h1 { "Audit log" }
        p.hint { "Every change made in the console, through the API (as the token's owner) or with the command line (as the operating-system user), newest first. Secrets are masked when recorded." }
        form.filters method="get" action="/audit" {
            (views::select("Account", "account", &accounts, &slug))
            (input("Who", "who", &t.who, "text", "name or its beginning"))
            (views::select("What", "what", &what_options, &t.what))
            (input("Target", "target", &t.target, "text", "MAC, profile, …"))
            (input("From", "from", &t.from, "text", "YYYY-MM-DD"))
            (input("To", "to", &t.to, "text", "YYYY-MM-DD"))
            (input("Per page", "per", &per_text, "number", "50"))
            div.field.buttons { button type="submit" { "Show" } " " a href="/audit" { "Clear" } }
        }
        (views::problems(&problems))
        @if let (Some(q), Some((per, pg))) = (&q, &paged) {
            @let keep = |extra: &[(&str, String)]| query_string(&slug, &q.filter, extra);
            @let per_pair: Vec<(&str, String)> = if *per == PER_DEFAULT { vec![] } else { vec![("per", per.to_string())] };
            // The downloads carry the filter, and as many entries as it selects (at most
            // the download's maximum), so they hold what the pages show.
            @let download = keep(&[("limit", pg.total.clamp(1, u64::from(audit::MAX_DOWNLOAD)).to_string())]);
            p.downloads {
                "Download these " (pg.total.min(u64::from(audit::MAX_DOWNLOAD))) " entries: "
                a href=(format!("/audit.csv?{download}")) { "CSV" } " · "
                a href=(format!("/audit.json?{download}")) { "JSON" }
            }
            @if pg.entries.is_empty() { p.muted { "No entries." } } @else {
                (pager((&slug, &q.filter), &per_pair, pg))
                table.list.audit {
                    thead { tr { th { "When" } th { "Who" } th { "Account" } th { "Action" } th { "Target" } th { "Changes" } } }
                    tbody {
                        @for e in &pg.entries {
                            tr id=(format!("entry-{}", e.id)) {
                                td.nowrap { (when(Some(e.ts))) }
                                td.actor { (e.actor) br; span.muted { (e.actor_kind.as_str()) } }
                                td { (name_of(e.account_id)) }
                                td.action title=(e.action) { (audit::action_label(&e.action)) }
                                td.target { (e.target) }
                                td.changes { (changes(e)) }
                            }
                        }
                    }
                }
                (pager((&slug, &q.filter), &per_pair, pg))
            }
        }
    };
    Ok(html_page(
        status,
        views::page("Audit log", &ctx.nav("audit"), body),
    ))
}

/// "Entries N–M of T" with the Newer and Older links (cursors on the first and last id
/// shown) and Newest when the page is not the first.
fn pager(
    (account, filter): (&str, &Filter),
    per: &[(&'static str, String)],
    p: &crate::db::audit::Page,
) -> Markup {
    let keep = |extra: &[(&str, String)]| query_string(account, filter, extra);
    let (Some(first), Some(last)) = (p.entries.first(), p.entries.last()) else {
        return html! {};
    };
    let with = |k: &'static str, v: i64| {
        let mut e = per.to_vec();
        e.push((k, v.to_string()));
        format!("/audit?{}", keep(&e))
    };
    let start = p.newer + 1;
    let end = p.newer + p.entries.len() as u64;
    html! {
        nav.pager aria-label="pages" {
            @if p.newer > 0 {
                a href=(format!("/audit?{}", keep(per))) { "« Newest" }
                a href=(with("after", first.id)) rel="prev" { "‹ Newer" }
            }
            span.position { "Entries " (start) "–" (end) " of " (p.total) }
            @if p.older > 0 { a href=(with("before", last.id)) rel="next" { "Older ›" } }
        }
    }
}

/// `/audit.csv` and `/audit.json`: the newest `limit` entries the query's filter selects.
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
