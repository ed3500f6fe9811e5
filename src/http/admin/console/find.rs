//! Find Operations: every search field of the ZTP guide, the device view (every associated
//! device, the default unless a link asks about customers) and the reference-ID view,
//! results per page (default 10, minimum 2), sortable columns, paging, and the CSV
//! download limited to a maximum number of entries. The form is a GET, so a search is a
//! link that can be bookmarked or shared.

use maud::{Markup, html};
use rouille::{Request, Response};

use super::{Console, Ctx, html_page, notice_of, percent_encode};
use crate::actions::tenants;
use crate::db::find::{self, FindQuery, Sort, View};
use crate::error::Result;
use crate::http::admin::views::{self, when};

/// Results per page when not chosen, and the least allowed (the ZTP guide).
pub const DEFAULT_PER_PAGE: usize = 10;
pub const MIN_PER_PAGE: usize = 2;
const MAX_PER_PAGE: usize = 500;

const TEXT_FIELDS: [(&str, &str); 10] = [
    ("first_name", "First name"),
    ("last_name", "Last name"),
    ("reference_id", "Reference ID"),
    ("phone", "Phone number"),
    ("email", "Email"),
    ("city", "City"),
    ("serial", "Serial number"),
    ("model", "Model"),
    ("mac", "MAC address"),
    ("profile", "Configuration profile"),
];

/// Fields about the people behind devices: a link naming one opens the reference-ID view.
const CUSTOMER_FIELDS: [&str; 7] = [
    "first_name",
    "last_name",
    "reference_id",
    "phone",
    "email",
    "city",
    "status",
];

/// A search as read from the query string.
pub struct Search {
    pub query: FindQuery,
    pub page: usize,
    pub per_page: usize,
    pub download: bool,
    pub max_entries: Option<usize>,
}

/// Reads a search from request parameters (shared by the page and the API).
pub fn search_from(get: &dyn Fn(&str) -> Option<String>) -> Search {
    let s = |k: &str| get(k).unwrap_or_default();
    let flag = |k: &str| matches!(s(k).as_str(), "on" | "1" | "true" | "yes");
    let query = FindQuery {
        first_name: s("first_name"),
        last_name: s("last_name"),
        reference_id: s("reference_id"),
        phone: s("phone"),
        email: s("email"),
        city: s("city"),
        serial: s("serial"),
        model: s("model"),
        mac: s("mac"),
        profile: s("profile"),
        status: s("status"),
        // The form sends `ignore_case=on` when ticked; a bare link defaults to ignoring case.
        ignore_case: get("ignore_case").is_none() || flag("ignore_case"),
        // A search names its view; a bare link shows devices unless it asks about the
        // people behind them (customer fields or subscriber status).
        view: match s("view").as_str() {
            "device" => View::Device,
            "reference" => View::Reference,
            _ if CUSTOMER_FIELDS.iter().any(|f| !s(f).trim().is_empty()) => View::Reference,
            _ => View::Device,
        },
        sort: Sort::parse(&s("sort")).unwrap_or_default(),
        descending: s("dir") == "desc",
        // Which accounts: the one a console page or an account route acts on (set by the
        // caller), narrowed by `actions::tenants` to what the user sees; never the request.
        accounts: None,
    };
    Search {
        query,
        page: s("page").parse().unwrap_or(1).max(1),
        per_page: s("per_page")
            .parse()
            .unwrap_or(DEFAULT_PER_PAGE)
            .clamp(MIN_PER_PAGE, MAX_PER_PAGE),
        download: flag("download"),
        max_entries: s("max_entries").parse().ok().filter(|n| *n > 0),
    }
}

fn value<'a>(q: &'a FindQuery, name: &str) -> &'a str {
    match name {
        "first_name" => &q.first_name,
        "last_name" => &q.last_name,
        "reference_id" => &q.reference_id,
        "phone" => &q.phone,
        "email" => &q.email,
        "city" => &q.city,
        "serial" => &q.serial,
        "model" => &q.model,
        "mac" => &q.mac,
        _ => &q.profile,
    }
}

/// The query string of a search, without page and sort (those are added per link).
fn base_query(s: &Search) -> String {
    let q = &s.query;
    let mut parts: Vec<String> = TEXT_FIELDS
        .iter()
        .filter(|(n, _)| !value(q, n).is_empty())
        .map(|(n, _)| format!("{n}={}", percent_encode(value(q, n))))
        .collect();
    if !q.status.is_empty() {
        parts.push(format!("status={}", percent_encode(&q.status)));
    }
    parts.push(format!(
        "ignore_case={}",
        if q.ignore_case { "on" } else { "off" }
    ));
    parts.push(format!(
        "view={}",
        if q.view == View::Device {
            "device"
        } else {
            "reference"
        }
    ));
    parts.push(format!("per_page={}", s.per_page));
    parts.join("&")
}

pub fn find(c: &Console, ctx: &Ctx, req: &Request) -> Result<Response> {
    let mut s = search_from(&|k| req.get_param(k));
    // The console acts on one account (the switcher's): Find too, whoever searches.
    s.query.accounts = Some(vec![ctx.account.id.0]);
    let conn = c.conn()?;
    let user = &ctx.user;
    if s.download {
        let max = s
            .max_entries
            .unwrap_or(usize::MAX)
            .min(c.config().console.find_csv_max_entries);
        let body = if s.query.view == View::Device {
            find::devices_csv(&tenants::all_devices(&conn, user, &s.query, max)?)
        } else {
            find::subscribers_csv(&tenants::all_subscribers(&conn, user, &s.query, max)?)
        };
        return Ok(
            Response::from_data("text/csv; charset=utf-8", body).with_additional_header(
                "Content-Disposition",
                "attachment; filename=\"find-results.csv\"",
            ),
        );
    }
    let offset = (s.page - 1) * s.per_page;
    let results = if s.query.view == View::Device {
        let p = tenants::find_devices(&conn, user, &s.query, offset, s.per_page)?;
        (devices_table(&s, &p.rows), p.total, p.more)
    } else {
        let p = tenants::find_subscribers(&conn, user, &s.query, offset, s.per_page)?;
        (subscribers_table(&s, &p.rows), p.total, p.more)
    };
    let searched = TEXT_FIELDS
        .iter()
        .any(|(n, _)| !value(&s.query, n).trim().is_empty())
        || !s.query.status.is_empty();
    let base = format!(
        "/find?{}&sort={}&dir={}",
        base_query(&s),
        s.query.sort.name(),
        if s.query.descending { "desc" } else { "asc" }
    );
    let nav = ctx.nav("find");
    Ok(html_page(
        200,
        views::page(
            "Find Operations",
            &nav,
            html! {
                @if nav.lens { (super::inventory::device_views(&ctx.account, "find")) }
                h1 { "Find Operations" }
                (views::notice(notice_of(req)))
                (form(&s))
                @if results.1 == 0 && searched {
                    p.muted { "No results. Try fewer fields, or % as a wildcard (e.g. " code { "k%" } ")." }
                } @else if results.1 == 0 {
                    p.muted { "No associated devices yet. " a href="/associations/new" { "Associate a device" } " or " a href="/import" { "upload a bulk CSV" } "." }
                } @else {
                    p.muted.shown { (results.1) @if searched { " matching" } " " (if s.query.view == View::Device { "devices" } else { "reference IDs" }) }
                    (results.0)
                    (views::pager(&base, s.page, s.per_page, results.1, results.2))
                }
            },
        ),
    ))
}

fn form(s: &Search) -> Markup {
    let q = &s.query;
    html! {
        form.find method="get" action="/find" {
            div.grid {
                @for (name, label) in TEXT_FIELDS {
                    div.field { label for=(name) { (label) } input id=(name) name=(name) value=(value(q, name)); }
                }
                div.field {
                    label for="status" { "Subscriber status" }
                    select id="status" name="status" {
                        option value="" selected[q.status.is_empty()] { "Any" }
                        option value="complete" selected[q.status == "complete"] { "Complete" }
                        option value="partial" selected[q.status == "partial"] { "Partial" }
                    }
                }
                div.field { label for="per_page" { "No. of results per page" } input id="per_page" name="per_page" type="number" min="2" max="500" value=(s.per_page); }
                div.field { label for="max_entries" { "Max number of entries (download)" } input id="max_entries" name="max_entries" type="number" min="1" value=(s.max_entries.map(|n| n.to_string()).unwrap_or_default()); }
            }
            div.checks {
                label.check { input type="checkbox" name="view" value="device" checked[q.view == View::Device]; " Device view" input type="hidden" name="view" value="reference"; }
                label.check { input type="checkbox" name="ignore_case" value="on" checked[q.ignore_case]; " Ignore case" input type="hidden" name="ignore_case" value="off"; }
                label.check { input type="checkbox" name="download" value="1"; " Download results (CSV)" }
            }
            p.hint { "% is a wildcard: " code { "k%" } " starts with k, " code { "%son" } " ends with son, " code { "%" } " alone lists every filled-in value. A MAC may be typed with " code { ":" } ", " code { "-" } " or " code { "." } "." }
            div.actions { button type="submit" { "Search" } " " a href="/find" { "Clear" } }
        }
    }
}

/// A sortable column heading: a link that sorts by it, flipping the direction when it is
/// already the sort column.
fn heading(s: &Search, key: Sort, label: &str) -> Markup {
    let active = s.query.sort == key;
    let dir = if active && !s.query.descending {
        "desc"
    } else {
        "asc"
    };
    let arrow = if !active {
        ""
    } else if s.query.descending {
        " ▼"
    } else {
        " ▲"
    };
    html! { th { a href=(format!("/find?{}&sort={}&dir={dir}", base_query(s), key.name())) { (label) (arrow) } } }
}

fn devices_table(s: &Search, rows: &[find::DeviceHit]) -> Markup {
    html! {
        table.list.results {
            thead { tr {
                (heading(s, Sort::Mac, "MAC address")) (heading(s, Sort::Name, "Name")) (heading(s, Sort::Profile, "Profile"))
                (heading(s, Sort::Serial, "Serial number")) (heading(s, Sort::ReferenceId, "Reference ID"))
                (heading(s, Sort::LastAccess, "Device ZTP access status"))
            } }
            tbody {
                @for r in rows {
                    tr {
                        td { a href=(format!("/devices/{}", r.mac)) { code { (r.mac) } } }
                        td { (r.first_name) " " (r.last_name) }
                        td { (r.profile.as_deref().unwrap_or("--")) }
                        td { (r.serial) }
                        td { @if let Some(id) = &r.reference_id { a href=(format!("/subscribers/{}", percent_encode(id))) { (id) } } @else { "--" } }
                        td { (access(r.last_access, r.access_count)) }
                    }
                }
            }
        }
    }
}

fn access(last: Option<i64>, count: i64) -> Markup {
    match last {
        Some(_) => html! { (when(last)) " (" (count) " requests)" },
        None => html! { "-- (never)" },
    }
}

fn subscribers_table(s: &Search, rows: &[find::SubscriberHit]) -> Markup {
    html! {
        table.list.results {
            thead { tr {
                (heading(s, Sort::ReferenceId, "Reference ID")) th { "Details" } (heading(s, Sort::Name, "Name"))
                (heading(s, Sort::Company, "Company")) th { "City" } th.num { "Devices" } (heading(s, Sort::Status, "Subscriber status"))
            } }
            tbody {
                @for r in rows {
                    tr {
                        td { a href=(format!("/subscribers/{}", percent_encode(&r.reference_id))) { (r.reference_id) } }
                        td { a href=(format!("/subscribers/{}", percent_encode(&r.reference_id))) { "Details" } }
                        td { (r.first_name) " " (r.last_name) }
                        td { (r.company) } td { (r.city) } td.num { (r.devices) }
                        td { span class=(format!("badge {}", r.status)) { (r.status) } }
                    }
                }
            }
        }
    }
}

/// A search from the API's query string; unknown views and sorts are refused by name.
pub fn search_of(req: &Request) -> Result<Search> {
    let mut problems = Vec::new();
    if let Some(v) = req.get_param("view")
        && !matches!(v.as_str(), "device" | "reference" | "")
    {
        problems.push(crate::error::FieldError::new(
            "view",
            "must be device or reference",
        ));
    }
    if let Some(s) = req.get_param("sort")
        && !s.is_empty()
        && Sort::parse(&s).is_none()
    {
        let names: Vec<&str> = Sort::NAMES.iter().map(|(n, _)| *n).collect();
        problems.push(crate::error::FieldError::new(
            "sort",
            format!("must be one of {}", names.join(", ")),
        ));
    }
    for key in ["page", "per_page", "max_entries"] {
        if let Some(v) = req.get_param(key)
            && !v.is_empty()
            && v.parse::<usize>().is_err()
        {
            problems.push(crate::error::FieldError::new(
                key,
                "must be a positive whole number",
            ));
        }
    }
    if !problems.is_empty() {
        return Err(crate::error::Error::Invalid(problems));
    }
    Ok(search_from(&|k| req.get_param(k)))
}

/// One page of a search as JSON.
pub fn page_json(
    conn: &rusqlite::Connection,
    s: &Search,
    user: &crate::domain::users::User,
) -> Result<serde_json::Value> {
    let offset = (s.page - 1) * s.per_page;
    let (rows, total, more) = if s.query.view == View::Device {
        let p = tenants::find_devices(conn, user, &s.query, offset, s.per_page)?;
        (serde_json::to_value(&p.rows), p.total, p.more)
    } else {
        let p = tenants::find_subscribers(conn, user, &s.query, offset, s.per_page)?;
        (serde_json::to_value(&p.rows), p.total, p.more)
    };
    Ok(serde_json::json!({
        "view": if s.query.view == View::Device { "device" } else { "reference" },
        "page": s.page, "per_page": s.per_page, "total": total, "more": more,
        "rows": rows.unwrap_or_default(),
    }))
}
