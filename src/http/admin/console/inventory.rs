//! An account's device inventory (Lens "Inventory", docs/design.md §7): each device's state and
//! flags, last provisioning sync, model, firmware, site, groups and credential generation,
//! with filters (state, flag, site, group) and counts that link to them, and the charts of
//! check-ins over the last 24 hours and 7 days, drawn by the server as inline SVG.
//!
//! The rows, counts and charts come from `domain::inventory`; this module turns the query
//! string into a `Filter` and a `Page` (a bad state, flag, page or page size is a 422 naming
//! the field) and renders one page of rows (100 by default) with the counts over every
//! device.

use maud::{Markup, PreEscaped, html};
use rouille::{Request, Response};

use super::accounts::tabs;
use super::{Console, Ctx, html_page, percent_encode};

use crate::db::policies as pq;
use crate::domain::account::Account;
use crate::domain::autosync::SyncState;
use crate::domain::inventory::{Filter, Flag, Page, Row, State};
use crate::error::{Error, FieldError, Result};
use crate::http::admin::views::widgets::badge;
use crate::http::admin::views::{self, when};

/// `/inventory`: the inventory of the account the pages act on.
pub fn default_inventory(ctx: &Ctx, req: &Request) -> Result<Response> {
    let a = &ctx.account;
    let q = req.raw_query_string();
    let sep = if q.is_empty() { "" } else { "?" };
    Ok(Response::redirect_303(format!(
        "/accounts/{}/inventory{sep}{q}",
        a.slug
    )))
}

/// The filter of a query string (`state`, `flag`, `site`, `group`; empty means any).
pub fn filter_of(req: &Request) -> Result<Filter> {
    let get = |k: &str| req.get_param(k).filter(|v| !v.is_empty());
    Ok(Filter {
        state: get("state").map(|s| State::parse(&s)).transpose()?,
        flag: get("flag").map(|s| Flag::parse(&s)).transpose()?,
        site: get("site"),
        group: get("group"),
    })
}

/// The page of a query string: `page` (from 1, default 1) and `per_page` (1 to
/// `Page::MAX_SIZE`, default `Page::DEFAULT_SIZE`); anything else is an error naming it.
pub fn page_of(req: &Request) -> Result<Page> {
    let mut problems = Vec::new();
    let mut number = |key: &str, default: usize, max: usize| -> usize {
        match req.get_param(key).filter(|v| !v.is_empty()) {
            None => default,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => n,
                _ => {
                    problems.push(FieldError::new(
                        key,
                        format!("must be a whole number from 1 to {max}"),
                    ));
                    default
                }
            },
        }
    };
    let page = Page {
        number: number("page", 1, usize::MAX >> 20),
        size: number("per_page", Page::DEFAULT_SIZE, Page::MAX_SIZE),
    };
    if problems.is_empty() {
        Ok(page)
    } else {
        Err(Error::Invalid(problems))
    }
}

/// The query string of a filter (without the page), for links that keep it.
fn filter_query(f: &Filter) -> String {
    let mut parts = Vec::new();
    if let Some(s) = f.state {
        parts.push(format!("state={}", s.as_str()));
    }
    if let Some(fl) = f.flag {
        parts.push(format!("flag={}", fl.as_str()));
    }
    if let Some(s) = &f.site {
        parts.push(format!("site={}", percent_encode(s)));
    }
    if let Some(g) = &f.group {
        parts.push(format!("group={}", percent_encode(g)));
    }
    parts.join("&")
}

fn link(a: &Account, key: &str, value: &str) -> String {
    format!(
        "/accounts/{}/inventory?{key}={}",
        a.slug,
        percent_encode(value)
    )
}

fn credentials(r: &Row) -> Markup {
    html! {
        @match r.credentials {
            Some(SyncState::Synced { generation }) => { "gen " (generation) }
            Some(SyncState::Pending { generation }) => { "gen " (generation) " " (badge("warn", "pending")) }
            Some(SyncState::LockedOut { generation, .. }) => { "gen " (generation) " " (badge("bad", "locked out")) }
            Some(SyncState::NeverSeen { .. }) => { "never seen" }
            None => { "--" }
        }
    }
}

pub fn page(c: &Console, ctx: &Ctx, a: &Account, req: &Request) -> Result<Response> {
    let filter = filter_of(req)?;
    let page = page_of(req)?;
    let conn = c.conn()?;
    let inv = crate::actions::inventory::inventory(&conn, a, &filter, page)?;
    let checkins = crate::actions::inventory::checkins(&conn, a)?;
    let sites = pq::list_sites(&conn, a.id.0)?;
    let groups = pq::list_groups(&conn, a.id.0)?;
    let filtered = filter != Filter::default();
    let state = filter.state.map(State::as_str).unwrap_or("");
    let flag = filter.flag.map(Flag::as_str).unwrap_or("");
    let site = filter.site.as_deref().unwrap_or("");
    let group = filter.group.as_deref().unwrap_or("");
    let body = html! {
        (tabs(a, "inventory"))
        h1 { "Inventory · " (a.name) }
        div.cards.counts {
            a.card href=(format!("/accounts/{}/inventory", a.slug)) { strong { (inv.total) } span { "devices" } }
            @for st in State::ALL {
                @let k = st.as_str();
                a class=(format!("card state-{k}{}", if filter.state == Some(st) { " active" } else { "" })) href=(link(a, "state", k)) {
                    strong { (inv.by_state.get(k).copied().unwrap_or(0)) } span { (k) }
                }
            }
            div.card.online { strong { (inv.online) } span { "online" } }
            div.card.offline { strong { (inv.offline) } span { "offline" } }
        }
        p.hint { "Online: polled within its polling period (a day), or answered SIP OPTIONS within the hour (apply-now, device sip-ping, the background online check)." }
        p.flags {
            "Flags: "
            @for fl in Flag::ALL {
                @let k = fl.as_str();
                @let n = inv.by_flag.get(k).copied().unwrap_or(0);
                a class=(format!("badge {}{}", if n > 0 { "warn" } else { "muted" }, if filter.flag == Some(fl) { " active" } else { "" })) href=(link(a, "flag", k)) { (k) " " (n) } " "
            }
        }
        div.charts {
            figure { (PreEscaped(checkins.hourly_svg())) }
            figure { (PreEscaped(checkins.daily_svg())) }
        }
        form.filters method="get" action=(format!("/accounts/{}/inventory", a.slug)) {
            (views::select("State", "state", &[("", "any state"), ("staged", "staged"), ("provisioned-active", "provisioned-active"), ("provisioned", "provisioned"), ("unassociated", "unassociated")], state))
            (views::select("Flag", "flag", &std::iter::once(("", "any flag")).chain(Flag::ALL.iter().map(|f| (f.as_str(), f.label()))).collect::<Vec<_>>(), flag))
            (views::select("Site", "site", &std::iter::once(("", "any site")).chain(sites.iter().map(|s| (s.name.as_str(), s.name.as_str()))).collect::<Vec<_>>(), site))
            (views::select("Group", "group", &std::iter::once(("", "any group")).chain(groups.iter().map(|g| (g.name.as_str(), g.name.as_str()))).collect::<Vec<_>>(), group))
            div.field.buttons {
                button type="submit" { "Filter" }
                @if filtered { a href=(format!("/accounts/{}/inventory", a.slug)) { "Clear" } }
            }
        }
        @let first = (page.number - 1) * page.size + 1;
        p.muted.shown {
            @match inv.rows.len() { 0 => { "Showing 0" } 1 => { "Showing " (first) } n => { "Showing " (first) "–" (first + n - 1) } }
            " of " (inv.matched) " matching · " (inv.total) " devices."
        }
        @let query = filter_query(&filter);
        @let base = if query.is_empty() { format!("/accounts/{}/inventory?per_page={}", a.slug, page.size) } else { format!("/accounts/{}/inventory?{query}&per_page={}", a.slug, page.size) };
        @if inv.matched > page.size { (views::pager(&base, page.number, page.size, inv.matched, false)) }
        @if inv.rows.is_empty() { p.muted { "No device matches." } } @else {
            table.list.inventory {
                thead { tr {
                    th { "MAC" } th { "State" } th { "Flags" } th { "Last provisioning sync" } th { "Last seen" } th { "Online" }
                    th { "Model / firmware" } th { "Site" } th { "Groups" } th { "Credentials" } th { "Settings" }
                } }
                tbody {
                    @for r in &inv.rows {
                        tr.device {
                            td { a href=(format!("/devices/{}", r.mac)) { code { (r.mac) } } }
                            td { (badge(&format!("state {}", r.state.as_str()), r.state.as_str())) }
                            td { @for f in &r.flags { (badge("warn", f.as_str())) " " } }
                            td { (when(r.last_sync)) }
                            td { (when(r.last_seen)) @if !r.protocol.is_empty() { " " span.muted { "(" (r.protocol) ")" } } }
                            td { (badge(if r.online.online { "ok" } else { "muted" }, if r.online.online { "online" } else { "offline" })) br; span.muted { (r.online.evidence) } }
                            td {
                                (dash(&r.model)) br;
                                span.muted { (dash(&r.firmware)) }
                                @if let (Some(want), true) = (&r.profile_firmware, r.flags.contains(&Flag::FirmwareBehind)) { span.muted { " → " (want) } }
                            }
                            td { (r.site.as_deref().unwrap_or("--")) }
                            td { (if r.groups.is_empty() { "--".to_string() } else { r.groups.join(", ") }) }
                            td { (credentials(r)) }
                            td { @if r.profile.is_some() { a href=(format!("/devices/{}/settings", r.mac)) { "effective" } } }
                        }
                    }
                }
            }
        }
    };
    Ok(html_page(
        200,
        views::page(
            &format!("Inventory · {}", a.name),
            &ctx.nav("inventory"),
            body,
        ),
    ))
}

fn dash(s: &str) -> &str {
    if s.is_empty() { "--" } else { s }
}
