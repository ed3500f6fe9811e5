//! Sites, device groups and policies of an account (Lens "Policy Overview", docs/design.md §5):
//! the overview with the account-level policy, a page per site (its policy and devices)
//! and per group (priority, members, policy), membership and site assignment by MAC. The
//! device level lives on the device's effective-settings page (`effective`), which uses
//! `policy_table` from here.
//!
//! Every action is a `domain::policy` call; refused input comes back on the same page with
//! the field named (422). Policy values of secret parameters are shown masked.

use maud::{Markup, html};
use rouille::{Request, Response};

use super::accounts::tabs;
use super::typed::{Pick, editor};
use super::{Console, Ctx, Form, done, html_page, notice_of, percent_encode};
use crate::db::policies::{self as pq, Policy};
use crate::domain::account::Account;
use crate::domain::mac::Mac;
use crate::domain::policy::Target;
use crate::domain::polycom::params;
use crate::domain::users::Action;
use crate::error::{Error, FieldError, Result};
use crate::http::admin::views::widgets::shown;
use crate::http::admin::views::{self, Field, csrf_field};

/// Routes the policy pages under `/accounts/<slug>/`.
pub fn route(
    c: &Console,
    ctx: &Ctx,
    a: &Account,
    req: &Request,
    f: &Form,
    rest: &[&str],
) -> Result<Response> {
    match (req.method(), rest) {
        ("GET", ["policies"]) => {
            overview(c, ctx, a, notice_of(req), &Pick::of_query(req), &[], 200)
        }
        ("GET", ["sites", name]) => site_page(
            c,
            ctx,
            a,
            name,
            notice_of(req),
            &Pick::of_query(req),
            &[],
            200,
        ),
        ("GET", ["groups", name]) => group_page(
            c,
            ctx,
            a,
            name,
            notice_of(req),
            &Pick::of_query(req),
            &[],
            200,
        ),
        ("POST", action) => {
            ctx.user.require(Action::ManagePolicies)?;
            let actor = c.actor(&ctx.user, &ctx.account);
            let who = &actor.who;
            let (result, back) = {
                let conn = &mut *c.conn()?;
                match action {
                    ["sites"] => {
                        let name = f.get("name").trim();
                        let r = crate::actions::policy::add_site(
                            conn,
                            who,
                            a,
                            name,
                            f.get("description").trim(),
                        );
                        (r.map(|_| "site-added"), Target::Account)
                    }
                    ["sites", name, "delete"] => (
                        crate::actions::policy::delete_site(conn, who, a, name)
                            .map(|_| "site-deleted"),
                        Target::Account,
                    ),
                    ["sites", name, "devices"] => {
                        let site = (f.get("remove") != "yes").then_some(*name);
                        let r = macs(f).and_then(|m| {
                            crate::actions::policy::assign_site(conn, who, a, site, &m)
                        });
                        (r.map(|_| "site-assigned"), Target::Site(name.to_string()))
                    }
                    ["groups"] => {
                        let name = f.get("name").trim();
                        let r = priority(f).and_then(|p| {
                            crate::actions::policy::add_group(
                                conn,
                                who,
                                a,
                                name,
                                p,
                                f.get("description").trim(),
                            )
                        });
                        (r.map(|_| "group-added"), Target::Account)
                    }
                    ["groups", name, "priority"] => {
                        let r = priority(f).and_then(|p| {
                            crate::actions::policy::set_group_priority(conn, who, a, name, p)
                        });
                        (r.map(|_| "group-saved"), Target::Group(name.to_string()))
                    }
                    ["groups", name, "delete"] => (
                        crate::actions::policy::delete_group(conn, who, a, name)
                            .map(|_| "group-deleted"),
                        Target::Account,
                    ),
                    ["groups", name, "members"] => {
                        let add = f.get("remove") != "yes";
                        let list = macs(f);
                        // The device page's join/leave buttons come back to the device.
                        let back = match (&list, f.get("back")) {
                            (Ok(m), "device") if m.len() == 1 => Target::Device(m[0]),
                            _ => Target::Group(name.to_string()),
                        };
                        let r = list.and_then(|m| {
                            crate::actions::policy::set_membership(conn, who, a, name, &m, add)
                        });
                        (r.map(|_| "members-saved"), back)
                    }
                    ["devices", mac, "site"] => {
                        let mac: Mac = mac
                            .parse()
                            .map_err(|_| Error::not_found(format!("device `{mac}`")))?;
                        let site = Some(f.get("site")).filter(|s| !s.is_empty());
                        let r = crate::actions::policy::assign_site(conn, who, a, site, &[mac]);
                        (r.map(|_| "site-assigned"), Target::Device(mac))
                    }
                    ["policies"] | ["policies", "unset"] => {
                        let target = Target::parse(f.get("scope"))?;
                        let parameter = f.get("parameter").trim();
                        let r = if action.len() == 2 {
                            crate::actions::policy::unset_policy(conn, who, a, &target, parameter)
                                .map(|_| "policy-removed")
                        } else {
                            // The console refuses what the dictionary's type refuses; an
                            // unknown name is stored with a warning, as on the CLI and API.
                            crate::actions::policy::set_typed_policy(
                                conn,
                                who,
                                a,
                                &target,
                                parameter,
                                f.get("value"),
                            )
                            .map(|w| {
                                if w.is_empty() {
                                    "policy-set"
                                } else {
                                    "policy-set-unknown"
                                }
                            })
                        };
                        // With the account's "apply now", the devices it affects are sent
                        // check-sync in the background (never those it restarts).
                        let r = r.and_then(|notice| {
                            if !a.sip.apply_after_change {
                                return Ok(notice);
                            }
                            let macs = crate::actions::sip::affected_by_target(conn, a, &target)?;
                            let after = c.after_change(conn, &actor, a, macs);
                            Ok(match (after.mode, after.restarting.is_empty()) {
                                ("applying now", true) => "policy-applying",
                                ("applying now", false) => "policy-applying-restarts-wait",
                                (_, false) => "policy-restarts-wait",
                                _ => notice,
                            })
                        });
                        (r, target)
                    }
                    _ => return Err(Error::not_found(format!("page {}", req.url()))),
                }
            };
            let pick = match action {
                ["policies"] => Pick::of_form(f),
                _ => Pick::default(),
            };
            match result {
                Ok(notice) if matches!(action, ["policies"]) && !pick.param.is_empty() => {
                    // Back to the parameter just saved, so its effective value shows.
                    let page = page_of(a, &back);
                    Ok(Response::redirect_303(format!(
                        "{page}?q={}&param={}&done={notice}#set-parameter",
                        percent_encode(&pick.q),
                        percent_encode(&pick.param)
                    )))
                }
                Ok(notice) => Ok(done(&page_of(a, &back), notice)),
                Err(Error::Invalid(p)) => again(c, ctx, a, &back, &pick, &p, 422),
                Err(Error::Conflict(m)) => {
                    again(c, ctx, a, &back, &pick, &[FieldError::new("name", m)], 409)
                }
                Err(e) => Err(e),
            }
        }
        _ => Err(Error::not_found(format!("page {}", req.url()))),
    }
}

/// The page that shows a target's policy.
pub fn page_of(a: &Account, t: &Target) -> String {
    let base = format!("/accounts/{}", a.slug);
    match t {
        Target::Account => format!("{base}/policies"),
        Target::Site(n) => format!("{base}/sites/{}", percent_encode(n)),
        Target::Group(n) => format!("{base}/groups/{}", percent_encode(n)),
        Target::Device(m) => format!("/devices/{m}/settings"),
    }
}

/// That page again, with the problems of a refused form.
fn again(
    c: &Console,
    ctx: &Ctx,
    a: &Account,
    t: &Target,
    pick: &Pick,
    problems: &[FieldError],
    status: u16,
) -> Result<Response> {
    match t {
        Target::Account => overview(c, ctx, a, None, pick, problems, status),
        Target::Site(n) => site_page(c, ctx, a, n, None, pick, problems, status),
        Target::Group(n) => group_page(c, ctx, a, n, None, pick, problems, status),
        Target::Device(m) => {
            super::effective::page(c, ctx, m.as_str(), None, pick, problems, status)
        }
    }
}

/// MACs typed into a box, separated by spaces, commas or lines.
fn macs(f: &Form) -> Result<Vec<Mac>> {
    let list: Vec<Mac> = f
        .get("macs")
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<Mac>()
                .map_err(|_| Error::invalid("macs", format!("`{s}` is not a MAC address")))
        })
        .collect::<Result<_>>()?;
    if list.is_empty() {
        return Err(Error::invalid("macs", "give at least one MAC address"));
    }
    Ok(list)
}

fn priority(f: &Form) -> Result<i64> {
    let v = f.get("priority").trim();
    if v.is_empty() {
        return Ok(0);
    }
    v.parse()
        .map_err(|_| Error::invalid("priority", format!("`{v}` is not a whole number")))
}

/// A policy's values with remove buttons (the typed editor sets them); `scope` is the
/// target as `Target::parse` reads it.
pub fn policy_table(ctx: &Ctx, a: &Account, scope: &str, list: &[Policy], can: bool) -> Markup {
    let action = format!("/accounts/{}/policies", a.slug);
    html! {
        @if list.is_empty() { p.muted { "No policy values at this level." } } @else {
            table.list {
                thead { tr { th { "Parameter" } th { "Value" } @if can { th {} } } }
                tbody {
                    @for p in list {
                        tr {
                            td { code { (p.parameter) } }
                            td { code { (shown(&p.value, params::is_secret(&p.parameter))) } }
                            @if can {
                                td.ops {
                                    form.inline method="post" action=(format!("{action}/unset")) {
                                        (csrf_field(&ctx.csrf))
                                        input type="hidden" name="scope" value=(scope);
                                        input type="hidden" name="parameter" value=(p.parameter);
                                        button.link.danger type="submit" { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The form that sets a parameter by its exact name (one the dictionary does not know);
/// the typed editor (`typed::editor`) shows it last.
pub fn exact_name_form(ctx: &Ctx, a: &Account, scope: &str, problems: &[FieldError]) -> Markup {
    let action = format!("/accounts/{}/policies", a.slug);
    html! {
        details.raw {
            summary { "Set a parameter by its exact name" }
            form.policy method="post" action=(action) {
                (csrf_field(&ctx.csrf))
                input type="hidden" name="scope" value=(scope);
                div.grid {
                    (Field::text("Parameter", "parameter", "", problems).required().hint("for a name the dictionary does not know; provisioning parameters are set by the account, not a policy"))
                    (Field::text("Value", "value", "", problems).hint("secret parameters (passwords) are masked after saving"))
                }
                button type="submit" { "Set value" }
            }
        }
    }
}

fn overview(
    c: &Console,
    ctx: &Ctx,
    a: &Account,
    notice: Option<&str>,
    pick: &Pick,
    problems: &[FieldError],
    status: u16,
) -> Result<Response> {
    let conn = c.conn()?;
    let sites = pq::list_sites(&conn, a.id.0)?;
    let groups = pq::list_groups(&conn, a.id.0)?;
    let all = pq::list_policies(&conn, a.id.0)?;
    let (site_members, group_members) = crate::db::inventory::member_counts(&conn, a.id.0)?;
    let count_policies = |kind: &str, name: &str| {
        all.iter()
            .filter(|p| p.scope.as_str() == kind && p.target == name)
            .count()
    };
    let account_policies: Vec<Policy> = all
        .iter()
        .filter(|p| p.scope.as_str() == "account")
        .cloned()
        .collect();
    let can = ctx.user.require(Action::ManagePolicies).is_ok();
    let base = format!("/accounts/{}", a.slug);
    drop(conn);
    let typed = editor(
        c,
        ctx,
        a,
        &page_of(a, &Target::Account),
        "account",
        &account_policies,
        pick,
        problems,
    )?;
    let body = html! {
        (tabs(a, "policies"))
        h1 { "Sites, groups & policies · " (a.name) }
        (views::notice(notice))
        p.hint { "A value set on a device wins over its groups (higher priority first), which win over its site, which wins over the account. " a href=(format!("{base}/inventory")) { "Inventory" } " links each device's effective settings." }
        (views::problems(problems))
        div.columns {
            section {
                h2 { "Sites" }
                table.list {
                    thead { tr { th { "Site" } th { "Description" } th.num { "Devices" } th.num { "Values" } } }
                    tbody {
                        @for s in &sites {
                            tr {
                                td { a href=(format!("{base}/sites/{}", percent_encode(&s.name))) { (s.name) } }
                                td { (s.description) }
                                td.num { (site_members.get(&s.name).copied().unwrap_or(0)) }
                                td.num { (count_policies("site", &s.name)) }
                            }
                        }
                    }
                }
                @if can {
                    form method="post" action=(format!("{base}/sites")) {
                        (csrf_field(&ctx.csrf))
                        div.grid {
                            (Field::text("New site", "name", "", &[]).required())
                            (Field::text("Description", "description", "", &[]))
                        }
                        button.secondary type="submit" { "Add site" }
                    }
                }
            }
            section {
                h2 { "Device groups" }
                table.list {
                    thead { tr { th { "Group" } th.num { "Priority" } th.num { "Members" } th.num { "Values" } } }
                    tbody {
                        @for g in &groups {
                            tr {
                                td { a href=(format!("{base}/groups/{}", percent_encode(&g.name))) { (g.name) } }
                                td.num { (g.priority) }
                                td.num { (group_members.get(&g.name).copied().unwrap_or(0)) }
                                td.num { (count_policies("group", &g.name)) }
                            }
                        }
                    }
                }
                @if can {
                    form method="post" action=(format!("{base}/groups")) {
                        (csrf_field(&ctx.csrf))
                        div.grid {
                            (Field::text("New group", "name", "", &[]).required())
                            (Field::text("Priority", "priority", "0", &[]).kind("number").hint("higher wins"))
                        }
                        button.secondary type="submit" { "Add group" }
                    }
                }
            }
        }
        h2 { "Account policy" }
        p.hint { "Applies to every device of the account unless a site, group or device sets the parameter." }
        (policy_table(ctx, a, "account", &account_policies, can))
        (typed)
    };
    Ok(html_page(
        status,
        views::page(
            &format!("Policies · {}", a.name),
            &ctx.nav("accounts"),
            body,
        ),
    ))
}

/// MACs of one member list, with a form to add more and a remove button per device.
fn members(ctx: &Ctx, action: &str, list: &[String], can: bool, what: &str) -> Markup {
    html! {
        @if list.is_empty() { p.muted { "No devices." } } @else {
            ul.macs {
                @for m in list {
                    li {
                        a href=(format!("/devices/{m}/settings")) { code { (m) } }
                        @if can {
                            " "
                            form.inline method="post" action=(action) {
                                (csrf_field(&ctx.csrf))
                                input type="hidden" name="macs" value=(m);
                                input type="hidden" name="remove" value="yes";
                                button.link.danger type="submit" { "remove" }
                            }
                        }
                    }
                }
            }
        }
        @if can {
            form method="post" action=(action) {
                (csrf_field(&ctx.csrf))
                div.field {
                    label for="macs" { (what) }
                    textarea id="macs" name="macs" rows="3" placeholder="0004f2000001 0004f2000002" {}
                    span.hint { "MAC addresses separated by spaces, commas or lines" }
                }
                button.secondary type="submit" { "Add" }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn site_page(
    c: &Console,
    ctx: &Ctx,
    a: &Account,
    name: &str,
    notice: Option<&str>,
    pick: &Pick,
    problems: &[FieldError],
    status: u16,
) -> Result<Response> {
    let conn = c.conn()?;
    let site = pq::find_site(&conn, a.id.0, name)?
        .ok_or_else(|| Error::not_found(format!("site `{name}`")))?;
    let values = pq::scope_policies(&conn, pq::ScopeKind::Site, site.id)?;
    let devices = pq::list_site_devices(&conn, site.id)?;
    let can = ctx.user.require(Action::ManagePolicies).is_ok();
    drop(conn);
    let scope = format!("site:{}", site.name);
    let typed = editor(
        c,
        ctx,
        a,
        &page_of(a, &Target::Site(site.name.clone())),
        &scope,
        &values,
        pick,
        problems,
    )?;
    let base = format!("/accounts/{}/sites/{}", a.slug, percent_encode(&site.name));
    let body = html! {
        (tabs(a, "policies"))
        h1 { "Site " (site.name) }
        (views::notice(notice))
        (views::problems(problems))
        @if !site.description.is_empty() { p { (site.description) } }
        h2 { "Policy of the site" }
        (policy_table(ctx, a, &scope, &values, can))
        (typed)
        h2 { "Devices at this site" }
        (members(ctx, &format!("{base}/devices"), &devices, can, "Put devices at this site"))
        @if can {
            h2 { "Delete" }
            form method="post" action=(format!("{base}/delete")) {
                (csrf_field(&ctx.csrf))
                p.hint { "Its devices lose their site; its policy values are deleted with it." }
                button.danger type="submit" { "Delete site " (site.name) }
            }
        }
    };
    Ok(html_page(
        status,
        views::page(&format!("Site {}", site.name), &ctx.nav("accounts"), body),
    ))
}

#[allow(clippy::too_many_arguments)]
fn group_page(
    c: &Console,
    ctx: &Ctx,
    a: &Account,
    name: &str,
    notice: Option<&str>,
    pick: &Pick,
    problems: &[FieldError],
    status: u16,
) -> Result<Response> {
    let conn = c.conn()?;
    let group = pq::find_group(&conn, a.id.0, name)?
        .ok_or_else(|| Error::not_found(format!("group `{name}`")))?;
    let values = pq::scope_policies(&conn, pq::ScopeKind::Group, group.id)?;
    let list = pq::list_members(&conn, group.id)?;
    let can = ctx.user.require(Action::ManagePolicies).is_ok();
    drop(conn);
    let scope = format!("group:{}", group.name);
    let typed = editor(
        c,
        ctx,
        a,
        &page_of(a, &Target::Group(group.name.clone())),
        &scope,
        &values,
        pick,
        problems,
    )?;
    let base = format!(
        "/accounts/{}/groups/{}",
        a.slug,
        percent_encode(&group.name)
    );
    let body = html! {
        (tabs(a, "policies"))
        h1 { "Device group " (group.name) }
        (views::notice(notice))
        (views::problems(problems))
        @if can {
            form.row method="post" action=(format!("{base}/priority")) {
                (csrf_field(&ctx.csrf))
                (Field::text("Priority", "priority", &group.priority.to_string(), problems).kind("number").hint("a device in several groups takes a value from the group of highest priority"))
                button.secondary type="submit" { "Save priority" }
            }
        } @else {
            p { "Priority " strong { (group.priority) } }
        }
        h2 { "Policy of the group" }
        (policy_table(ctx, a, &scope, &values, can))
        (typed)
        h2 { "Members" }
        (members(ctx, &format!("{base}/members"), &list, can, "Add devices to this group"))
        @if can {
            h2 { "Delete" }
            form method="post" action=(format!("{base}/delete")) {
                (csrf_field(&ctx.csrf))
                p.hint { "Its members leave it; its policy values are deleted with it." }
                button.danger type="submit" { "Delete group " (group.name) }
            }
        }
    };
    Ok(html_page(
        status,
        views::page(&format!("Group {}", group.name), &ctx.nav("accounts"), body),
    ))
}
