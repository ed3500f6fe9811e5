//! A device's effective settings (Lens "My Settings", docs/design.md §5): every parameter the
//! device gets from this server, its value (secrets masked, the CA summarized) and where it
//! comes from (a pending change, Auto-Sync, the device, a group, the site, the account
//! policy, the profile or one of its files) — the same list as `render --explain`.
//!
//! The page also manages what only this device has: its site, its groups and its own
//! policy values (the device level of `policies`). The user must be able to see the
//! device (`assoc::device` applies the company scope).

use maud::html;
use rouille::Response;

use super::policies::policy_table;
use super::typed::{Pick, editor};
use super::{Console, Ctx, html_page, percent_encode};
use crate::actions::associations;
use crate::actions::provisioning::mask;
use crate::db::accounts as aq;
use crate::db::policies::{self as pq, ScopeKind};
use crate::domain::account::{Account, AccountId};
use crate::domain::mac::Mac;
use crate::domain::polycom::render::EffectiveParam;
use crate::domain::provstate::Reach;
use crate::domain::users::Action;
use crate::error::{Error, FieldError, Result};
use crate::http::admin::views::{self, csrf_field};

/// One row of the page, ready to show.
pub struct SettingRow {
    pub name: String,
    pub value: String,
    pub source: &'static str,
    pub detail: String,
}

/// The value a page or the API may show: secrets masked, a certificate summarized.
pub fn display_value(p: &EffectiveParam) -> String {
    if p.value.contains("BEGIN CERTIFICATE") {
        format!("(CA certificate, {} bytes)", p.value.len())
    } else if p.secret {
        crate::http::admin::views::widgets::shown(&p.value, true)
    } else {
        mask(&p.name, &p.value)
    }
}

/// The address a phone of `account` uses, for rendering what it receives.
pub fn reach_of(c: &Console, account: &Account) -> Reach {
    Reach {
        base_path: if account.is_default {
            "/".into()
        } else {
            account.service_path()
        },
        ..super::devices::reach(c)
    }
}

/// A visible device's account and effective settings.
pub fn settings_of(
    c: &Console,
    user: &crate::domain::users::User,
    mac: &Mac,
) -> Result<(Account, Vec<EffectiveParam>)> {
    let conn = c.conn()?;
    let default = crate::actions::accounts::default_account(&conn)?;
    let actor = c.actor(user, &default);
    let d = associations::device(&conn, &actor, mac)?;
    let account = aq::find_by_id(&conn, AccountId(d.account_id))?
        .ok_or_else(|| Error::not_found("account"))?;
    let params = crate::actions::render::explain_device(
        &conn,
        mac,
        &reach_of(c, &account),
        crate::actions::render::As::Device,
        c.trust.as_ref(),
    )?;
    Ok((account, params))
}

pub fn page(
    c: &Console,
    ctx: &Ctx,
    mac: &str,
    notice: Option<&str>,
    pick: &Pick,
    problems: &[FieldError],
    status: u16,
) -> Result<Response> {
    let mac: Mac = mac
        .parse()
        .map_err(|_| Error::not_found(format!("device `{mac}`")))?;
    let (a, params) = settings_of(c, &ctx.user, &mac)?;
    let rows: Vec<SettingRow> = params
        .iter()
        .map(|p| SettingRow {
            name: p.name.clone(),
            value: display_value(p),
            source: p.source.label(),
            detail: p.detail.clone(),
        })
        .collect();
    let conn = c.conn()?;
    let device = crate::db::devices::find_device_by_mac(&conn, &mac)?
        .ok_or_else(|| Error::not_found(format!("device {mac}")))?;
    let own = pq::scope_policies(&conn, ScopeKind::Device, device.id)?;
    let site = pq::device_site(&conn, device.id)?.map(|s| s.name);
    let groups = pq::device_groups(&conn, device.id)?;
    let sites = pq::list_sites(&conn, a.id.0)?;
    let all_groups = pq::list_groups(&conn, a.id.0)?;
    let can = ctx.user.require(Action::ManagePolicies).is_ok();
    let base = format!("/accounts/{}", a.slug);
    drop(conn);
    let scope = format!("device:{mac}");
    let typed = editor(
        c,
        ctx,
        &a,
        &format!("/devices/{mac}/settings"),
        &scope,
        &own,
        pick,
        problems,
    )?;
    let mut sources: Vec<(&str, usize)> = Vec::new();
    for r in &rows {
        match sources.iter_mut().find(|(s, _)| *s == r.source) {
            Some((_, n)) => *n += 1,
            None => sources.push((r.source, 1)),
        }
    }
    let body = html! {
        p.crumbs { a href=(format!("/devices/{mac}")) { "Device " (mac) } " › effective settings" }
        h1 { "Effective settings of " code { (mac) } }
        (views::notice(notice))
        (views::problems(problems))
        p.hint {
            "What this device gets from account " a href=(base.clone()) { (a.name) } ", highest precedence first wins: a pending change, Auto-Sync, the device, its groups (by priority), its site, the account policy, the profile, the profile's files. Secrets are masked. "
            "A phone's own local settings (its override files) can still hide a value."
        }
        p.sources { @for (s, n) in &sources { span.badge { (s) ": " (n) } " " } }
        table.list.settings {
            thead { tr { th { "Parameter" } th { "Value" } th { "Source" } } }
            tbody {
                @for r in &rows {
                    tr {
                        td { code { (r.name) } }
                        td.value { code { (r.value) } }
                        td { strong { (r.source) } @if !r.detail.is_empty() { " · " span.muted { (r.detail) } } }
                    }
                }
            }
        }
        div.columns #site-groups {
            section {
                h2 { "Site" }
                p { @if let Some(s) = &site { a href=(format!("{base}/sites/{}", percent_encode(s))) { (s) } } @else { span.muted { "(none)" } } }
                @if can && !sites.is_empty() {
                    form.row method="post" action=(format!("{base}/devices/{mac}/site")) {
                        (csrf_field(&ctx.csrf))
                        select name="site" aria-label="site" {
                            option value="" { "(no site)" }
                            @for s in &sites { option value=(s.name) selected[site.as_deref() == Some(s.name.as_str())] { (s.name) } }
                        }
                        " "
                        button.secondary type="submit" { "Set site" }
                    }
                }
            }
            section {
                h2 { "Groups" }
                @if all_groups.is_empty() { p.muted { "The account has no device groups." } }
                ul.macs {
                    @for g in &all_groups {
                        @let member = groups.iter().any(|m| m.id == g.id);
                        @if member || can {
                            li {
                                a href=(format!("{base}/groups/{}", percent_encode(&g.name))) { (g.name) } " (priority " (g.priority) ")"
                                @if member { " · member" }
                                @if can {
                                    " "
                                    form.inline method="post" action=(format!("{base}/groups/{}/members", percent_encode(&g.name))) {
                                        (csrf_field(&ctx.csrf))
                                        input type="hidden" name="macs" value=(mac);
                                        input type="hidden" name="back" value="device";
                                        @if member {
                                            input type="hidden" name="remove" value="yes";
                                            button.link.danger type="submit" { "leave" }
                                        } @else {
                                            button.link type="submit" { "join" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Device policy" }
        p.hint { "Values set here win over groups, site and account." }
        (policy_table(ctx, &a, &scope, &own, can))
        (typed)
    };
    Ok(html_page(
        status,
        views::page(&format!("Effective settings {mac}"), &ctx.nav("find"), body),
    ))
}
