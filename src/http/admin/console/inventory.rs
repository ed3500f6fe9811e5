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
use crate::domain::inventory::{Filter, Flag, Page, Row, Sort, State};
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

/// The filter of a query string (`state`, `flag`, `site`, `group`, `q` words to search
/// for; empty means any) and its order (`sort`, `dir=desc`). Every bad value is named at
/// once.
pub fn filter_of(req: &Request) -> Result<Filter> {
    filter_from(&|k| req.get_param(k))
}

/// `filter_of` from any source of fields (a query string, a posted form).
pub fn filter_from(param: &dyn Fn(&str) -> Option<String>) -> Result<Filter> {
    let get = |k: &str| param(k).filter(|v| !v.trim().is_empty());
    let mut problems = Vec::new();
    fn named<T>(r: Result<Option<T>>, problems: &mut Vec<FieldError>) -> Option<T> {
        match r {
            Ok(v) => v,
            Err(Error::Invalid(p)) => {
                problems.extend(p);
                None
            }
            Err(_) => None,
        }
    }
    let state = named(
        get("state").map(|s| State::parse(&s)).transpose(),
        &mut problems,
    );
    let flag = named(
        get("flag").map(|s| Flag::parse(&s)).transpose(),
        &mut problems,
    );
    let sort = named(
        get("sort").map(|s| Sort::parse(&s)).transpose(),
        &mut problems,
    );
    let descending = match get("dir").as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => {
            problems.push(FieldError::new("dir", "must be asc or desc"));
            false
        }
    };
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    Ok(Filter {
        state,
        flag,
        site: get("site"),
        group: get("group"),
        search: get("q").map(|q| q.trim().to_string()),
        sort: sort.unwrap_or_default(),
        descending,
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
    if let Some(q) = &f.search {
        parts.push(format!("q={}", percent_encode(q)));
    }
    if f.sort != Sort::Mac {
        parts.push(format!("sort={}", f.sort.as_str()));
    }
    if f.descending {
        parts.push("dir=desc".into());
    }
    parts.join("&")
}

/// A column heading that sorts by it (server-side, over every matching device), flipping
/// the direction when it is already the order.
fn heading(a: &Account, f: &Filter, key: Sort, label: &str) -> Markup {
    let active = f.sort == key;
    let desc = active && !f.descending;
    let mut g = f.clone();
    g.sort = key;
    g.descending = desc;
    let arrow = match (active, f.descending) {
        (false, _) => "",
        (true, false) => " ▲",
        (true, true) => " ▼",
    };
    html! {
        th aria-sort=(match (active, f.descending) { (false, _) => "none", (true, false) => "ascending", (true, true) => "descending" }) {
            a href=(format!("/accounts/{}/inventory?{}", a.slug, filter_query(&g))) { (label) (arrow) }
        }
    }
}

/// What a selection can be given: the account's sites, groups and profiles.
pub struct BulkChoices {
    pub sites: Vec<String>,
    pub groups: Vec<String>,
    pub profiles: Vec<String>,
}

/// The bar above the list: what to do with the ticked devices, or with every device the
/// filter matches (the filter travels as hidden fields, with the count the admin saw).
fn bulk_bar(a: &Account, f: &Filter, matched: usize, c: &BulkChoices) -> Markup {
    let _ = a;
    html! {
        fieldset.bulk {
            legend { "With the selected devices" }
            label.check { input type="radio" name="scope" value="selected" checked; " the ticked devices" }
            label.check { input type="radio" name="scope" value="all"; " all " (matched) " matching this filter" }
            @if let Some(s) = f.state { input type="hidden" name="state" value=(s.as_str()); }
            @if let Some(fl) = f.flag { input type="hidden" name="flag" value=(fl.as_str()); }
            @if let Some(s) = &f.site { input type="hidden" name="site" value=(s); }
            @if let Some(g) = &f.group { input type="hidden" name="group" value=(g); }
            @if let Some(q) = &f.search { input type="hidden" name="q" value=(q); }
            input type="hidden" name="expected" value=(matched);
            div.grid {
                div.field {
                    label for="bulk-action" { "Action" }
                    select #bulk-action name="action" {
                        option value="site" { "Move to site…" }
                        option value="group-add" { "Add to group…" }
                        option value="group-remove" { "Remove from group…" }
                        option value="profile" { "Change profile to…" }
                        option value="readmit" { "Re-admit (Auto-Sync)" }
                        option value="apply-now" { "Apply now (SIP check-sync)" }
                        option value="export" { "Export as CSV" }
                        option value="delete" { "Delete" }
                    }
                }
                div.field {
                    label for="bulk-value" { "Site, group or profile" }
                    select #bulk-value name="value" {
                        option value="" { "--" }
                        @if !c.sites.is_empty() { optgroup label="Sites" { @for n in &c.sites { option value=(format!("site:{n}")) { (n) } } option value="site:" { "(no site)" } } }
                        @if !c.groups.is_empty() { optgroup label="Groups" { @for n in &c.groups { option value=(format!("group:{n}")) { (n) } } } }
                        @if !c.profiles.is_empty() { optgroup label="Profiles" { @for n in &c.profiles { option value=(format!("profile:{n}")) { (n) } } } }
                    }
                }
                div.field.buttons { button type="submit" { "Continue…" } }
            }
            p.hint { "You see the count and what happens to each phone before anything changes." }
        }
    }
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

/// The two views of an account's devices: the device list (every device with its state,
/// sortable, searchable, acted on in bulk) and Find Operations (the ZTP guide's search by
/// field, with its reference-ID view).
pub fn device_views(a: &Account, active: &str) -> Markup {
    let items = [
        (
            "list",
            format!("/accounts/{}/inventory", a.slug),
            "Device list",
        ),
        ("find", "/find".to_string(), "Find Operations"),
    ];
    html! {
        nav.tabs.views aria-label="Device views" {
            @for (key, href, label) in &items {
                a href=(href) class=@if *key == active { "active" } aria-current=[(*key == active).then_some("page")] { (label) }
            }
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
    let bulk_choices = BulkChoices {
        sites: sites.iter().map(|s| s.name.clone()).collect(),
        groups: groups.iter().map(|g| g.name.clone()).collect(),
        profiles: crate::db::profiles::list_profiles(&conn, a.id.0)?
            .into_iter()
            .map(|p| p.name)
            .collect(),
    };
    let state = filter.state.map(State::as_str).unwrap_or("");
    let flag = filter.flag.map(Flag::as_str).unwrap_or("");
    let site = filter.site.as_deref().unwrap_or("");
    let group = filter.group.as_deref().unwrap_or("");
    let body = html! {
        (tabs(a, "inventory"))
        (device_views(a, "list"))
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
            div.field.search {
                label for="q" { "Search" }
                input #q type="search" name="q" value=(filter.search.as_deref().unwrap_or("")) placeholder="MAC, name, SIP user, serial, model, site…";
            }
            (views::select("State", "state", &[("", "any state"), ("staged", "staged"), ("provisioned-active", "provisioned-active"), ("provisioned", "provisioned"), ("unassociated", "unassociated")], state))
            (views::select("Flag", "flag", &std::iter::once(("", "any flag")).chain(Flag::ALL.iter().map(|f| (f.as_str(), f.label()))).collect::<Vec<_>>(), flag))
            (views::select("Site", "site", &std::iter::once(("", "any site")).chain(sites.iter().map(|s| (s.name.as_str(), s.name.as_str()))).collect::<Vec<_>>(), site))
            (views::select("Group", "group", &std::iter::once(("", "any group")).chain(groups.iter().map(|g| (g.name.as_str(), g.name.as_str()))).collect::<Vec<_>>(), group))
            @if filter.sort != Sort::Mac { input type="hidden" name="sort" value=(filter.sort.as_str()); }
            @if filter.descending { input type="hidden" name="dir" value="desc"; }
            div.field.buttons {
                button type="submit" { "Filter" }
                @if filtered { a href=(format!("/accounts/{}/inventory", a.slug)) { "Clear" } }
            }
        }
        @let first = (page.number - 1) * page.size + 1;
        @let query = filter_query(&filter);
        p.muted.shown {
            @match inv.rows.len() { 0 => { "Showing 0" } 1 => { "Showing " (first) } n => { "Showing " (first) "–" (first + n - 1) } }
            " of " (inv.matched) " matching · " (inv.total) " devices · "
            a href=(format!("/accounts/{}/inventory.csv?{query}", a.slug)) { "Download the " (inv.matched) " as CSV" }
        }
        @let base = if query.is_empty() { format!("/accounts/{}/inventory?per_page={}", a.slug, page.size) } else { format!("/accounts/{}/inventory?{query}&per_page={}", a.slug, page.size) };
        @if inv.matched > page.size { (views::pager(&base, page.number, page.size, inv.matched, false)) }
        @if inv.rows.is_empty() { p.muted { "No device matches." } } @else {
            form #bulk method="post" action=(format!("/accounts/{}/inventory/bulk", a.slug)) {
                (views::csrf_field(&ctx.csrf))
                (bulk_bar(a, &filter, inv.matched, &bulk_choices))
                div.table-scroll {
                table.list.inventory {
                    thead { tr {
                        th { span.sr-only { "Select" } }
                        (heading(a, &filter, Sort::Mac, "MAC")) (heading(a, &filter, Sort::Name, "Name")) (heading(a, &filter, Sort::State, "State")) th { "Flags" }
                        (heading(a, &filter, Sort::LastSeen, "Last check-in")) (heading(a, &filter, Sort::LastSync, "Last provisioning sync")) th { "Online" }
                        (heading(a, &filter, Sort::Model, "Model / firmware")) (heading(a, &filter, Sort::Site, "Site")) th { "Groups" } th { "Credentials" } (heading(a, &filter, Sort::Profile, "Profile"))
                    } }
                    tbody {
                        @for r in &inv.rows {
                            tr.device {
                                td { input type="checkbox" name="mac" value=(r.mac) aria-label=(format!("Select {}", r.mac)); }
                                td { a href=(format!("/devices/{}", r.mac)) { code { (r.mac) } } }
                                td {
                                    (dash(&r.name))
                                    @if !r.sip_user.is_empty() { br; span.muted { "SIP " (r.sip_user) } }
                                    @if !r.person.is_empty() { br; span.muted { (r.person) } }
                                }
                                td { (badge(&format!("state {}", r.state.as_str()), r.state.as_str())) }
                                td { @for f in &r.flags { (badge("warn", f.as_str())) " " } }
                                td { (when(r.last_seen)) @if !r.protocol.is_empty() { " " span.muted { "(" (r.protocol) ")" } } }
                                td { (when(r.last_sync)) }
                                td { (badge(if r.online.online { "ok" } else { "muted" }, if r.online.online { "online" } else { "offline" })) br; span.muted { (r.online.evidence) } }
                                td {
                                    (dash(&r.model)) br;
                                    span.muted { (dash(&r.firmware)) }
                                    @if let (Some(want), true) = (&r.profile_firmware, r.flags.contains(&Flag::FirmwareBehind) || r.flags.contains(&Flag::DowngradePending)) { span.muted { " → " (want) } }
                                }
                                td { (r.site.as_deref().unwrap_or("--")) }
                                td { (if r.groups.is_empty() { "--".to_string() } else { r.groups.join(", ") }) }
                                td { (credentials(r)) }
                                td {
                                    (r.profile.as_deref().unwrap_or("--"))
                                    @if r.profile.is_some() { br; a href=(format!("/devices/{}/settings", r.mac)) { "effective settings" } }
                                }
                            }
                        }
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
