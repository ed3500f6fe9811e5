//! The device list's bulk actions (`POST /accounts/<slug>/inventory/bulk`) and its CSV
//! (`GET /accounts/<slug>/inventory.csv`).
//!
//! A selection is the ticked devices (`mac`, repeated) or every device the list's filter
//! matches (`scope=all` with the filter's fields and `expected`, the count the admin saw).
//! The first post shows what would happen — the count, the devices, each phone the action
//! would strand with why — and a form that posts the same selection again with
//! `confirm=yes`; `actions::bulk::run` then refuses when the selection's size changed in
//! between. Export sends the selection's rows as CSV at once; apply-now goes through
//! `actions::sip`, with its own restart count.
//!
//! A confirmed apply-now, and a confirmed action on more devices than
//! `console.bulk_job_threshold`, run as a job in the background (`jobs`,
//! `actions::device_jobs`): the post answers 303 to the job's page, which shows the
//! progress and then the outcome this module's result page shows for a smaller selection,
//! run while the page waits.

use maud::html;
use rouille::{Request, Response};

use super::inventory::filter_from;
use super::{Console, Ctx, Form, html_page};
use crate::actions::Unwatched;
use crate::actions::bulk::{self, Bulk};
use crate::actions::device_jobs::Work;
use crate::actions::sip::{self, Selection};
use crate::domain::account::Account;
use crate::domain::mac::Mac;
use crate::error::{Error, Result};
use crate::http::admin::views::{self, csrf_field, widgets};

/// Shown on the confirmation page at most (the count names them all).
const SHOWN: usize = 50;

/// `GET /accounts/<slug>/inventory.csv`: every device the filter matches, as CSV.
pub fn csv(c: &Console, a: &Account, req: &Request) -> Result<Response> {
    let filter = super::inventory::filter_of(req)?;
    let conn = c.conn()?;
    let inv = crate::actions::inventory::inventory(
        &conn,
        a,
        &filter,
        crate::domain::inventory::Page::ALL,
    )?;
    attachment(
        &format!("inventory-{}.csv", a.slug),
        crate::domain::inventory::to_csv(&inv.rows)?,
    )
}

fn attachment(name: &str, body: String) -> Result<Response> {
    Ok(
        Response::from_data("text/csv; charset=utf-8", body).with_additional_header(
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        ),
    )
}

/// The devices a posted form selects.
fn selection(c: &Console, a: &Account, f: &Form) -> Result<Vec<Mac>> {
    if f.get("scope") == "all" {
        let filter = filter_from(&|k| Some(f.get(k).to_string()))?;
        return crate::actions::inventory::matching_macs(&*c.conn()?, a, &filter);
    }
    let mut macs = Vec::new();
    for m in f.all("mac") {
        macs.push(
            m.parse::<Mac>()
                .map_err(|_| Error::invalid("mac", format!("`{m}` is not a MAC address")))?,
        );
    }
    if macs.is_empty() {
        return Err(Error::invalid(
            "mac",
            "tick at least one device, or choose all devices matching the filter",
        ));
    }
    Ok(macs)
}

/// The action's value without its kind (`site:hq` → `hq`); a value of another kind is an
/// error naming the field.
fn value_of(action: &str, value: &str) -> Result<String> {
    let kind = match action {
        "site" => "site",
        "group-add" | "group-remove" => "group",
        "profile" => "profile",
        _ => return Ok(String::new()),
    };
    match value.split_once(':') {
        Some((k, v)) if k == kind => Ok(v.to_string()),
        _ if kind == "site" => Err(Error::invalid(
            "value",
            "choose a site, or \"(no site)\" to take the devices out of theirs",
        )),
        _ => Err(Error::invalid("value", format!("choose a {kind}"))),
    }
}

/// `POST /accounts/<slug>/inventory/bulk`
pub fn post(c: &Console, ctx: &Ctx, a: &Account, f: &Form) -> Result<Response> {
    let macs = selection(c, a, f)?;
    let action = f.get("action");
    let back = format!("/accounts/{}/inventory", a.slug);
    if action == "export" {
        let rows = crate::actions::inventory::rows_of(&*c.conn()?, a, &macs)?;
        return attachment(
            &format!("devices-{}.csv", a.slug),
            crate::domain::inventory::to_csv(&rows)?,
        );
    }
    let confirmed = f.get("confirm") == "yes";
    let expected: usize = f.get("expected").parse().unwrap_or(macs.len());
    let actor = c.actor(&ctx.user, a);
    let mut conn = c.conn()?;
    if action == "apply-now" {
        let cfg = c.config().sip.clone();
        if !confirmed {
            let sel = Selection::Macs(macs.iter().map(Mac::to_string).collect());
            let impact = sip::impact(&conn, &actor, &cfg, &sel)?;
            let title = format!("Apply now to {} device(s)", macs.len());
            return Ok(confirm_page(
                ctx,
                a,
                f,
                (&title, None),
                &macs,
                &impact,
                "Phones that restart:",
            ));
        }
        // Waves at `sip.rate_per_sec`, then the wait for re-polls: minutes for thousands.
        sip::require_enabled(&cfg)?;
        drop(conn);
        let id = super::jobs::start(
            c,
            &ctx.user,
            a,
            actor.who.clone(),
            Work::ApplyNow { cfg, macs },
        )?;
        return Ok(Response::redirect_303(super::jobs::path(a, id)));
    }
    let what = Bulk::parse(action, &value_of(action, f.get("value"))?)?;
    if !confirmed {
        let p = bulk::preview(&mut conn, &actor, &what, &macs)?;
        return Ok(confirm_page(
            ctx,
            a,
            f,
            (&p.description, None),
            &macs,
            &p.impact,
            "Phones this strands:",
        ));
    }
    if macs.len() == expected && macs.len() > c.config().console.bulk_job_threshold {
        drop(conn);
        let work = Work::Bulk {
            bulk: what,
            macs,
            expected,
            confirm: true,
        };
        let id = super::jobs::start(c, &ctx.user, a, actor.who.clone(), work)?;
        return Ok(Response::redirect_303(super::jobs::path(a, id)));
    }
    match bulk::run(
        &mut conn,
        &actor,
        &what,
        &macs,
        expected,
        true,
        &mut Unwatched,
    ) {
        Ok(n) => Ok(result_page(ctx, &back, &what.outcome(n))),
        // The selection changed since it was shown: show it again, as it is now.
        Err(Error::Conflict(m)) if f.get("scope") == "all" => {
            let p = bulk::preview(&mut conn, &actor, &what, &macs)?;
            let mut page = confirm_page(
                ctx,
                a,
                f,
                (&p.description, Some(&m)),
                &macs,
                &p.impact,
                "Phones this strands:",
            );
            page.status_code = 409;
            Ok(page)
        }
        Err(e) => Err(e),
    }
}

/// The count, the devices (the first `SHOWN`), the phones affected with why, and the
/// same selection posted again with `confirm=yes` and the count now.
fn confirm_page(
    ctx: &Ctx,
    a: &Account,
    f: &Form,
    (title, problem): (&str, Option<&str>),
    macs: &[Mac],
    impact: &crate::actions::Impact,
    affected_heading: &str,
) -> Response {
    let all = f.get("scope") == "all";
    let back = format!("/accounts/{}/inventory", a.slug);
    html_page(
        200,
        views::page(
            title,
            &ctx.nav("inventory"),
            html! {
                div.narrow.wide {
                    h1 { (title) "?" }
                    @if let Some(p) = problem { div.errors role="alert" { p { (p) } } }
                    p.count { strong { (macs.len()) } " device" @if macs.len() != 1 { "s" } @if all { " (every device matching the filter, as of now)" } ":" }
                    p { @for (i, m) in macs.iter().take(SHOWN).enumerate() { @if i > 0 { ", " } a href=(format!("/devices/{m}")) { code { (m) } } } @if macs.len() > SHOWN { " and " (macs.len() - SHOWN) " more" } }
                    @if impact.locked_out > 0 {
                        div.warning role="alert" {
                            p { strong { (affected_heading) } }
                            (widgets::affected(impact.locked_out, &impact.phones))
                        }
                    }
                    form method="post" action=(format!("/accounts/{}/inventory/bulk", a.slug)) {
                        (csrf_field(&ctx.csrf))
                        @for k in ["action", "value", "scope", "state", "flag", "site", "group", "q"] {
                            @let v = f.get(k);
                            @if !v.is_empty() { input type="hidden" name=(k) value=(v); }
                        }
                        @if !all { @for m in macs { input type="hidden" name="mac" value=(m); } }
                        input type="hidden" name="expected" value=(macs.len());
                        input type="hidden" name="confirm" value="yes";
                        div.actions {
                            button.danger[f.get("action") == "delete"] type="submit" { (title) }
                            " "
                            a.button.secondary href=(back) { "Cancel" }
                        }
                    }
                }
            },
        ),
    )
}

fn result_page(ctx: &Ctx, back: &str, text: &str) -> Response {
    html_page(
        200,
        views::page(
            "Done",
            &ctx.nav("inventory"),
            html! {
                div.notice role="status" { (text) }
                p { a href=(back) { "Back to the device list" } " · " a href="/audit" { "Audit log" } }
            },
        ),
    )
}
