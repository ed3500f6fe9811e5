//! An account's device inventory (Lens "Inventory", DESIGN §7): each device's state and
//! flags, last provisioning sync, model, firmware, site, groups and credential generation,
//! with filters (state, flag, site, group) and counts that link to them, and the charts of
//! check-ins over the last 24 hours and 7 days, drawn by the server as inline SVG.
//!
//! The rows, counts and charts come from `domain::inventory`; this module turns the query
//! string into a `Filter` (a bad state or flag is a 422 naming the field) and renders.

use maud::{Markup, PreEscaped, html};
use rouille::{Request, Response};

use super::accounts::tabs;
use super::{Console, Ctx, html_page, percent_encode};
use crate::db::policies as pq;
use crate::domain::account::Account;
use crate::domain::autosync::SyncState;
use crate::domain::inventory::{self, Filter, Flag, Row, State};
use crate::domain::ops;
use crate::error::Result;
use crate::http::views::widgets::badge;
use crate::http::views::{self, when};

/// `/inventory`: the default account's inventory.
pub fn default_inventory(c: &Console, req: &Request) -> Result<Response> {
    let a = ops::default_account(&*c.conn()?)?;
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
            None => { "--" }
        }
    }
}

pub fn page(c: &Console, ctx: &Ctx, a: &Account, req: &Request) -> Result<Response> {
    let filter = filter_of(req)?;
    let conn = c.conn()?;
    let inv = inventory::inventory(&conn, a, &filter)?;
    let checkins = inventory::checkins(&conn, a)?;
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
        }
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
            (views::select("Flag", "flag", &[("", "any flag"), ("auth-failing", "auth-failing"), ("credentials-pending", "credentials-pending"), ("locked-out", "locked-out"), ("firmware-behind", "firmware-behind")], flag))
            (views::select("Site", "site", &std::iter::once(("", "any site")).chain(sites.iter().map(|s| (s.name.as_str(), s.name.as_str()))).collect::<Vec<_>>(), site))
            (views::select("Group", "group", &std::iter::once(("", "any group")).chain(groups.iter().map(|g| (g.name.as_str(), g.name.as_str()))).collect::<Vec<_>>(), group))
            div.field.buttons {
                button type="submit" { "Filter" }
                @if filtered { a href=(format!("/accounts/{}/inventory", a.slug)) { "Clear" } }
            }
        }
        p.muted.shown { "Showing " (inv.rows.len()) " of " (inv.total) " devices." }
        @if inv.rows.is_empty() { p.muted { "No device matches." } } @else {
            table.list.inventory {
                thead { tr {
                    th { "MAC" } th { "State" } th { "Flags" } th { "Last provisioning sync" } th { "Last seen" }
                    th { "Model / firmware" } th { "Site" } th { "Groups" } th { "Credentials" } th { "Settings" }
                } }
                tbody {
                    @for r in &inv.rows {
                        tr {
                            td { a href=(format!("/devices/{}", r.mac)) { code { (r.mac) } } }
                            td { (badge(&format!("state {}", r.state.as_str()), r.state.as_str())) }
                            td { @for f in &r.flags { (badge("warn", f.as_str())) " " } }
                            td { (when(r.last_sync)) }
                            td { (when(r.last_seen)) }
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
