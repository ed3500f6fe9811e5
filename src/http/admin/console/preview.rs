//! The preview page: pick a device (a MAC field, or the link on the device page) and see
//! each of its profile files rendered for it, with the value and source of every variable
//! used. Secrets are masked; an admin may tick "show secrets", which is a POST (with the
//! CSRF token) recorded in the audit log before the page is shown.

use maud::{Markup, html};
use rouille::{Request, Response};

use super::settings::{external_note, subnav};
use super::{Console, Ctx, Form, html_page};
use crate::actions::associations;
use crate::actions::templating::{self, Preview};
use crate::domain::mac::Mac;
use crate::domain::users::Action;
use crate::error::{Error, FieldError, Result};
use crate::http::admin::views::{self, csrf_field};

fn files(p: &Preview) -> Markup {
    html! {
        @if p.files.is_empty() { p.muted { "The device's profile has no configuration files." } }
        @for f in &p.files {
            section.preview-file {
                h2 { code { (f.name) } " " span.muted { "from profile file " code { (f.profile_file) } } }
                @if !f.well_formed { div.errors role="alert" { "The rendered file is not well-formed XML." } }
                pre.rendered { (f.text) }
                @if f.vars.is_empty() { p.muted { "This file uses no variables." } } @else {
                    table.list.vars {
                        thead { tr { th { "Variable" } th { "Template lines" } th { "Device line" } th { "Value" } th { "Source" } } }
                        tbody {
                            @for v in &f.vars {
                                tr {
                                    td { code { "${" (v.name) "}" } }
                                    td { (v.template_lines.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")) }
                                    td { @if let Some(n) = v.device_line { "line " (n) } }
                                    td { @if v.value.is_empty() { span.muted { "(empty)" } } @else { code.value { (v.value) } } }
                                    td { (v.source) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn preview_page(
    c: &Console,
    ctx: &Ctx,
    mac: &str,
    preview: Option<&Preview>,
    revealed: bool,
    problems: &[FieldError],
) -> Result<Response> {
    let admin = ctx.user.require(Action::ManageSettings).is_ok();
    let external = match preview {
        Some(p) if p.mode == "external" => Some(templating::load_settings(&*c.conn()?)?),
        _ => None,
    };
    Ok(html_page(
        if problems.is_empty() { 200 } else { 422 },
        views::page(
            "Preview",
            &ctx.nav("settings"),
            html! {
                @if admin { (subnav("preview")) }
                h1 { "Preview" @if let Some(p) = preview { " of " a href=(format!("/devices/{}", p.mac)) { code { (p.mac) } } } }
                (views::problems(problems))
                form.preview-pick method="get" action="/preview" {
                    div.field.invalid[!problems.is_empty()] {
                        label for="mac" { "Device (MAC address)" }
                        input id="mac" name="mac" value=(mac) required;
                    }
                    button type="submit" { "Preview" }
                }
                @if let Some(p) = preview {
                    p {
                        (p.mode) " mode"
                        @if !p.model.is_empty() { ", model " (p.model) }
                        @if !p.segment.is_empty() { ", files under " code { "external/" (p.segment) "/" } }
                        ". "
                        @if revealed { strong.secret-shown { "Secrets are shown; this view was recorded in the audit log." } }
                        @else { "Secrets are masked." }
                    }
                    @if let Some(s) = &external { (external_note(s, &c.config().external_dir())) }
                    @if admin && !revealed {
                        form method="post" action="/preview" {
                            (csrf_field(&ctx.csrf))
                            input type="hidden" name="mac" value=(p.mac);
                            label.check { input type="checkbox" name="secrets" required; " Show secrets (recorded in the audit log)" }
                            button.secondary type="submit" { "Show" }
                        }
                    }
                    (files(p))
                }
            },
        ),
    ))
}

/// The MAC of the form, and whether the acting user may see the device.
fn device_mac(c: &Console, ctx: &Ctx, raw: &str) -> Result<Mac> {
    let mac = raw
        .trim()
        .parse::<Mac>()
        .map_err(|_| Error::invalid("mac", format!("`{}` is not a MAC address", raw.trim())))?;
    let d = associations::device(&*c.conn()?, &c.actor(&ctx.user, &ctx.account), &mac)?;
    if !d.is_associated() {
        return Err(Error::invalid(
            "mac",
            format!("device {mac} is not associated with a profile: nothing to render"),
        ));
    }
    Ok(mac)
}

/// `GET /preview[?mac=…]`
pub fn page(c: &Console, ctx: &Ctx, req: &Request) -> Result<Response> {
    let raw = req.get_param("mac").unwrap_or_default();
    if raw.trim().is_empty() {
        return preview_page(c, ctx, "", None, false, &[]);
    }
    match device_mac(c, ctx, &raw) {
        Ok(mac) => {
            let p =
                templating::preview_device(&*c.conn()?, &mac, &super::devices::reach(c), false)?;
            preview_page(c, ctx, &raw, Some(&p), false, &[])
        }
        Err(Error::Invalid(p)) => preview_page(c, ctx, &raw, None, false, &p),
        Err(e) => Err(e),
    }
}

/// `POST /preview` with `secrets`: admins only, audited.
pub fn reveal(c: &Console, ctx: &Ctx, f: &Form) -> Result<Response> {
    ctx.user.require(Action::ManageSettings)?;
    let raw = f.get("mac");
    if !f.checked("secrets") {
        return Ok(Response::redirect_303(format!(
            "/preview?mac={}",
            super::percent_encode(raw)
        )));
    }
    let mac = device_mac(c, ctx, raw)?;
    let who = c.actor(&ctx.user, &ctx.account).who;
    let p = templating::reveal_preview(&mut *c.conn()?, &who, &mac, &super::devices::reach(c))?;
    preview_page(c, ctx, raw, Some(&p), true, &[])
}
