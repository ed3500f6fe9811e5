//! Overrides made on phones: the device page's "Overridden on the phone" section (each
//! parameter of the stored `-phone.cfg`, `-web.cfg`, `-system.cfg` with the server value
//! it hides, and the finding when one redirects the phone's server or registration),
//! clearing one device's overrides, and the list of devices with overrides for clearing
//! many at once. Clearing is for admins (`Action::ManageAssets`).

use maud::{Markup, html};
use rouille::{Request, Response};

use super::{Console, Ctx, Form, done, html_page, notice_of};
use crate::datadir::DataDirs;
use crate::diag::findings::override_findings;
use crate::domain::mac::Mac;
use crate::domain::overrides::{DeviceOverrides, RESET_ON_PHONE};
use crate::domain::users::Action;
use crate::error::{Error, Result};
use crate::http::admin::views::{self, csrf_field, when};

fn uploads(c: &Console) -> std::path::PathBuf {
    DataDirs::under(&c.config().data_dir).uploads
}

/// A device's overrides with the server values they hide, and the redirect findings.
pub fn of_device(c: &Console, mac: &Mac) -> Result<(DeviceOverrides, Vec<crate::diag::Finding>)> {
    let conn = c.conn()?;
    let found = crate::actions::overrides::device_overrides(
        &conn,
        &uploads(c),
        mac,
        &super::devices::reach(c),
        c.trust.as_ref(),
    )?;
    let mut findings = Vec::new();
    for f in &found.files {
        if let Ok(params) = crate::actions::overrides::read_params(&uploads(c), mac, &f.file) {
            let server = |name: &str| found.server_value(name).map(|s| s.value.clone());
            findings.extend(override_findings(mac.as_str(), &f.file, &params, &server));
        }
    }
    Ok((found, findings))
}

/// The device page's section.
pub fn device_section(c: &Console, ctx: &Ctx, mac: &Mac) -> Result<Markup> {
    let (found, findings) = of_device(c, mac)?;
    let can = ctx.user.require(Action::ManageAssets).is_ok();
    Ok(html! {
        section.overrides {
            h2 { "Overridden on the phone" }
            p.muted { "Settings made on the phone or in its web interface, which the phone uploads here. They win over every file this server serves." }
            @if found.files.is_empty() {
                p.muted { "The phone has stored no override file." }
            }
            @for f in &findings {
                div.errors role="alert" {
                    p { strong { (f.title) } }
                    p { code { (f.evidence) } }
                    p { (f.fix) }
                }
            }
            @for f in &found.files {
                h3 { code { (f.file) } " " span.hint { (f.written_by) ", " (f.size) " bytes, " (when(Some(f.updated_at))) } }
                @if let Some(e) = &f.error { p.errors { "Cannot be read: " (e) } }
                @else if f.params.is_empty() { p.muted { "Empty: nothing is overridden." } }
                @else {
                    table.list.overrides {
                        thead { tr { th { "Parameter" } th { "On the phone" } th { "Server value it hides" } th { "Set by" } } }
                        tbody {
                            @for p in &f.params {
                                tr {
                                    td { code { (p.name) } @if p.redirect.is_some() { " " span.badge.bad { "redirect" } } }
                                    td { code { (p.value) } }
                                    @match &p.server {
                                        Some(s) => { td.hidden-value { code { (s.value) } } td { (s.source) } }
                                        None => { td.hidden-value { span.muted { "(the server sets nothing)" } } td {} }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if !found.files.is_empty() {
                @if can && found.count() > 0 {
                    form method="post" action=(format!("/devices/{mac}/overrides/clear")) {
                        (csrf_field(&ctx.csrf))
                        button.danger type="submit" { "Clear overrides" }
                        " " span.hint { "The phone then gets an empty override file from this server." }
                    }
                }
                details.reset open {
                    summary { "What must also be reset on the phone" }
                    p { (RESET_ON_PHONE[0]) }
                    ul { @for step in &RESET_ON_PHONE[1..] { li { (step) } } }
                }
            }
        }
    })
}

pub fn clear_device(c: &Console, ctx: &Ctx, mac: &str) -> Result<Response> {
    ctx.user.require(Action::ManageAssets)?;
    let mac: Mac = mac
        .parse()
        .map_err(|_| Error::not_found(format!("device `{mac}`")))?;
    let conn = c.conn()?;
    crate::actions::associations::device(&conn, &c.actor(&ctx.user, &ctx.account), &mac)?;
    crate::actions::overrides::clear(&conn, &uploads(c), &mac)?;
    Ok(done(&format!("/devices/{mac}"), "overrides-cleared"))
}

pub fn list(c: &Console, ctx: &Ctx, req: &Request) -> Result<Response> {
    ctx.user.require(Action::ManageAssets)?;
    let conn = c.conn()?;
    let rows =
        crate::actions::overrides::list_overridden(&conn, &uploads(c), Some(ctx.account.id.0))?;
    Ok(html_page(
        200,
        views::page(
            "Overrides on phones",
            &ctx.nav("files"),
            html! {
                h1 { "Devices with overrides made on the phone" }
                (views::notice(notice_of(req)))
                p.muted { "Stored override files that set at least one parameter. Clearing serves each device an empty override file; reset the phones' local settings too:" }
                ul.hint { @for step in &RESET_ON_PHONE[1..] { li { (step) } } }
                @if rows.is_empty() { p.muted { "None." } } @else {
                    form method="post" action="/overrides/clear" {
                        (csrf_field(&ctx.csrf))
                        table.list {
                            thead { tr { th { "Clear" } th { "MAC address" } th { "Files" } th.num { "Parameters" } } }
                            tbody {
                                @for (mac, files, n) in &rows {
                                    tr {
                                        td { input type="checkbox" name="mac" value=(mac) aria-label=(format!("Clear {mac}")); }
                                        td { a href=(format!("/devices/{mac}")) { code { (mac) } } }
                                        td { (files.join(", ")) }
                                        td.num { (n) }
                                    }
                                }
                            }
                        }
                        div.actions { button.danger type="submit" { "Clear the selected devices' overrides" } }
                    }
                }
            },
        ),
    ))
}

pub fn clear_many(c: &Console, ctx: &Ctx, f: &Form) -> Result<Response> {
    ctx.user.require(Action::ManageAssets)?;
    let conn = c.conn()?;
    let mut macs = Vec::new();
    for m in f.all("mac") {
        let mac: Mac = m
            .parse()
            .map_err(|_| Error::invalid("mac", format!("`{m}` is not a MAC address")))?;
        macs.push(mac);
    }
    // Every MAC is checked before any device is cleared.
    let actor = c.actor(&ctx.user, &ctx.account);
    for mac in &macs {
        crate::actions::associations::device(&conn, &actor, mac)?;
    }
    for mac in &macs {
        crate::actions::overrides::clear(&conn, &uploads(c), mac)?;
    }
    Ok(done("/overrides", "overrides-cleared"))
}
