//! An account's Auto-Sync progress page: how many devices hold each credential generation,
//! which are pending (they sync at their next poll) and which are locked out (with why),
//! re-admission per device, of a selection or of every locked-out device, and the report
//! of phones that never came back after a change of credentials or address.
//!
//! The numbers come from `accounts::progress` and `accounts::report`, the same functions
//! the CLI and the API use; re-admission is `accounts::readmit`.

use maud::html;
use rouille::{Request, Response};

use super::accounts::tabs;
use super::{Console, Ctx, Form, done, html_page, notice_of};
use crate::actions::accounts::{self, DeviceSyncRow, Readmission};
use crate::domain::account::Account;
use crate::domain::mac::Mac;
use crate::domain::users::Action;
use crate::error::{Error, Result};
use crate::http::admin::views::widgets::{badge, poly_os_auth_note};
use crate::http::admin::views::{self, csrf_field, when};

pub fn page(c: &Console, ctx: &Ctx, a: &Account, req: &Request) -> Result<Response> {
    let conn = c.conn()?;
    let p = accounts::progress(&conn, a)?;
    let report = accounts::report(&conn, a)?;
    let poly_os = accounts::poly_os_devices(&conn, a)?;
    let can = ctx.user.require(Action::ManageAccounts).is_ok();
    let base = format!("/accounts/{}", a.slug);
    let total: usize = p.by_generation.iter().map(|(_, n)| n).sum();
    // Locked-out rows carry why, a checkbox and a re-admit button; pending ones sync anyway.
    let rows = |list: &[DeviceSyncRow], locked: bool| {
        let select = locked && can;
        html! {
            table.list {
                thead { tr {
                    @if select { th { span.sr { "Select" } } }
                    th { "MAC" } th.num { "Generation held" } th { "Last seen" }
                    @if locked { th { "Why" } }
                    @if select { th {} }
                } }
                tbody {
                    @for d in list {
                        tr {
                            @if select { td { input type="checkbox" name="mac" value=(d.mac) form="readmit-selected" aria-label=(format!("select {}", d.mac)); } }
                            td { a href=(format!("/devices/{}", d.mac)) { code { (d.mac) } } }
                            td.num { (d.generation) }
                            td { (when(d.last_seen)) }
                            @if locked { td { (d.why) } }
                            @if select {
                                td.ops {
                                    form.inline method="post" action=(format!("{base}/readmit")) {
                                        (csrf_field(&ctx.csrf))
                                        input type="hidden" name="mac" value=(d.mac);
                                        button.link type="submit" { "Re-admit" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let body = html! {
        (tabs(a, "autosync"))
        h1 { "Auto-Sync progress · " (a.name) }
        (views::notice(notice_of(req)))
        p {
            "Auto-Sync is " (badge(if p.settings.enabled { "on" } else { "off" }, if p.settings.enabled { "on" } else { "off" }))
            " · current credential generation " strong { (p.current_generation) }
            " · grace window " (p.settings.grace_days) " days · seen within " (p.settings.seen_days) " days"
        }
        (poly_os_auth_note(&poly_os, p.settings.poly_os))
        div.cards {
            div.card { strong { (p.synced) } span { "synced" } }
            div.card.warn { strong { (p.pending.len()) } span { "pending (sync at next poll)" } }
            div.card.bad { strong { (p.locked_out.len()) } span { "locked out" } }
        }
        h2 { "Devices per credential generation" }
        @if total == 0 { p.muted { "No associated devices." } } @else {
            table.list.narrow-table {
                thead { tr { th { "Generation" } th.num { "Devices" } th { "" } } }
                tbody {
                    @for (g, n) in &p.by_generation {
                        tr {
                            td { (g) @if *g == p.current_generation { " " (badge("on", "current")) } }
                            td.num { (n) }
                            td { meter min="0" max=(total) value=(n) title=(format!("{n} of {total}")) {} }
                        }
                    }
                }
            }
        }
        h2 { "Pending" }
        @if p.pending.is_empty() { p.muted { "No device is waiting for the current credentials." } } @else { (rows(&p.pending, false)) }
        h2 { "Locked out" }
        @if p.locked_out.is_empty() { p.muted { "No device is locked out." } } @else {
            p.hint { "Re-admitting lets a device use the credentials it holds once more (until it syncs, at most the grace window) and sends it the current ones." }
            (rows(&p.locked_out, true))
            @if can {
                div.actions {
                    form.inline #readmit-selected method="post" action=(format!("{base}/readmit")) {
                        (csrf_field(&ctx.csrf))
                        button.secondary type="submit" { "Re-admit the selected devices" }
                    }
                    " "
                    form.inline method="post" action=(format!("{base}/readmit")) {
                        (csrf_field(&ctx.csrf))
                        input type="hidden" name="all" value="yes";
                        button type="submit" { "Re-admit all " (p.locked_out.len()) " locked-out devices" }
                    }
                }
            }
        }
        h2 { "Phones that never came back after a change" }
        @if report.is_empty() { p.muted { "Every phone came back after the last change of credentials and address." } } @else {
            table.list {
                thead { tr { th { "MAC" } th { "Change" } th { "Changed" } th { "Last seen" } th { "State" } th { "Why" } } }
                tbody {
                    @for r in &report {
                        tr {
                            td { a href=(format!("/devices/{}", r.mac)) { code { (r.mac) } } }
                            td { (r.change) }
                            td { (when(Some(r.changed_at))) }
                            td { (when(r.last_seen)) }
                            td { (badge(&r.state, &r.state)) }
                            td { (r.why) }
                        }
                    }
                }
            }
        }
    };
    Ok(html_page(
        200,
        views::page(
            &format!("Auto-Sync · {}", a.name),
            &ctx.nav("accounts"),
            body,
        ),
    ))
}

pub fn post_readmit(c: &Console, ctx: &Ctx, a: &Account, f: &Form) -> Result<Response> {
    ctx.user.require(Action::ManageAccounts)?;
    let which = if f.get("all") == "yes" {
        Readmission::AllLockedOut
    } else {
        let macs = f
            .all("mac")
            .into_iter()
            .map(|m| {
                m.parse::<Mac>()
                    .map_err(|_| Error::invalid("mac", format!("`{m}` is not a MAC address")))
            })
            .collect::<Result<Vec<_>>>()?;
        if macs.is_empty() {
            return Err(Error::invalid("mac", "select at least one device"));
        }
        Readmission::Devices(macs)
    };
    let actor = c.actor(&ctx.user, &ctx.account);
    accounts::readmit(&mut *c.conn()?, &actor.who, a, &which)?;
    Ok(done(
        &format!("/accounts/{}/autosync", a.slug),
        "readmitted",
    ))
}
