//! A device's template values (`/devices/MAC/values`): label, time zone and its name, park
//! extension and the `${OVERRIDE}` fragment, and its SIP lines with extension, first and
//! last name. Every problem is shown at its field, on the form that was sent.
//!
//! Line forms prefix their fields (`l2.first_name`, `new.first_name`) so each input has an
//! id of its own; a line's SIP password is never sent back (empty keeps it, "Clear"
//! removes it). Same role and scope rules as modifying the device.

use maud::{Markup, html};
use rouille::{Request, Response};

use super::{Console, Ctx, Form, done, html_page, notice_of};
use crate::actions::associations;
use crate::actions::templating::{self, DeviceVarsChange};
use crate::domain::device::{Device, DeviceVars, Line};
use crate::domain::mac::Mac;
use crate::domain::users::Action;
use crate::error::{Error, FieldError, Result};
use crate::http::admin::views::{self, Field, csrf_field};

fn mac_of(s: &str) -> Result<Mac> {
    s.parse::<Mac>()
        .map_err(|_| Error::not_found(format!("device `{s}`")))
}

/// Which form a problem list belongs to (`vars`, `l<n>` or `new`), or the notice of the
/// action that just succeeded.
struct Sent<'a> {
    form: String,
    problems: &'a [FieldError],
    notice: Option<&'static str>,
}

impl Sent<'_> {
    fn for_form(&self, form: &str) -> &[FieldError] {
        if self.form == form {
            self.problems
        } else {
            &[]
        }
    }
}

fn line_fields(key: &str, l: &Line, problems: &[FieldError], new: bool) -> Markup {
    let n = |f: &str| format!("{key}.{f}");
    let has_password = !l.auth_password.is_empty();
    let pw_error = problems.iter().find(|e| e.field == "sip_password");
    html! {
        div.grid {
            @if new {
                (Field::text("Line number", &n("line"), &l.line.to_string(), problems).kind("number").hint("1 to 64").required())
            }
            (Field::text("Extension", &n("extension"), &l.extension, problems).hint("${EXTENSION}; empty: the SIP user ID"))
            (Field::text("First name", &n("first_name"), &l.first_name, problems).hint("${FIRST_NAME}"))
            (Field::text("Last name", &n("last_name"), &l.last_name, problems).hint("${LAST_NAME}"))
            (Field::text("SIP user ID", &n("sip_user"), &l.auth_user_id, problems).hint("${USERID}"))
            div.field.invalid[pw_error.is_some()] {
                label for=(n("sip_password")) { "SIP password " @if has_password { span.badge.complete { "set" } } }
                input id=(n("sip_password")) name=(n("sip_password")) type="password" value="" autocomplete="new-password"
                    placeholder=@if has_password { "leave empty to keep" } @else { "" };
                @if let Some(e) = pw_error { span.error { (e.message) } }
                @if has_password { label.check { input type="checkbox" name=(n("clear_sip_password")); " Clear" } }
            }
            (Field::text("Line label", &n("line_label"), &l.label, problems).hint("${LINE_LABEL}"))
            (Field::text("Display name", &n("display_name"), &l.display_name, problems).hint("${DISPLAY_NAME}; empty: first and last name"))
        }
    }
}

fn values_page(
    ctx: &Ctx,
    d: &Device,
    vars: &DeviceVars,
    lines: &[Line],
    new_line: &Line,
    sent: &Sent<'_>,
) -> Response {
    let mac = d.mac;
    let p = sent.for_form("vars");
    html_page(
        if sent.problems.is_empty() { 200 } else { 422 },
        views::page(
            &format!("Template values of {mac}"),
            &ctx.nav("find"),
            html! {
                h1 { "Template values of device " a href=(format!("/devices/{mac}")) { code { (mac) } } }
                (views::notice(sent.notice))
                p.ops { a.button.secondary href=(format!("/preview?mac={mac}")) { "Preview its files" } }
                h2 { "Device" }
                (views::problems(p))
                form method="post" action=(format!("/devices/{mac}/values")) {
                    (csrf_field(&ctx.csrf))
                    div.grid {
                        (Field::text("Label", "label", &vars.label, p).hint("${LABEL}: the device description"))
                        (Field::text("Time zone", "tl_timezone", &vars.tl_timezone, p).hint("${TL_TIMEZONE}, e.g. -5"))
                        (Field::text("Time zone name", "tl_timezone_name", &vars.tl_timezone_name, p).hint("${TL_TIMEZONE_NAME}"))
                        (Field::text("Park extension", "default_parkext", &vars.default_parkext, p).hint("${DEFAULT_PARKEXT}"))
                    }
                    div.field.wide.invalid[p.iter().any(|e| e.field == "override")] {
                        label for="override" { "Override (${OVERRIDE})" }
                        input id="override" name="override" value=(vars.override_attrs) autocomplete="off";
                        @if let Some(e) = p.iter().find(|e| e.field == "override") { span.error { (e.message) } }
                        span.hint { "name=\"value\" attributes inserted as written, e.g. " code { "feature.presence.enabled=\"1\"" } "; no device.* parameters; secret values show as ********, and sending them back keeps them" }
                    }
                    div.actions { button type="submit" { "Save device values" } }
                }
                h2 { "Lines" }
                @if lines.is_empty() { p.muted { "No lines: a line block renders nothing for this device." } }
                @for l in lines {
                    @let key = format!("l{}", l.line);
                    @let lp = sent.for_form(&key);
                    fieldset.line {
                        legend { "Line " (l.line) }
                        (views::problems(lp))
                        form method="post" action=(format!("/devices/{mac}/lines/{}", l.line)) {
                            (csrf_field(&ctx.csrf))
                            (line_fields(&key, l, lp, false))
                            div.actions { button type="submit" { "Save line " (l.line) } }
                        }
                        form method="post" action=(format!("/devices/{mac}/lines/{}/delete", l.line)) {
                            (csrf_field(&ctx.csrf))
                            button.link.danger type="submit" { "Remove line " (l.line) }
                        }
                    }
                }
                @let np = sent.for_form("new");
                fieldset.line {
                    legend { "Add a line" }
                    (views::problems(np))
                    form method="post" action=(format!("/devices/{mac}/lines")) {
                        (csrf_field(&ctx.csrf))
                        (line_fields("new", new_line, np, true))
                        div.actions { button type="submit" { "Add line" } }
                    }
                }
            },
        ),
    )
}

fn device(c: &Console, ctx: &Ctx, mac: &Mac) -> Result<Device> {
    associations::device(&*c.conn()?, &c.actor(&ctx.user, &ctx.account), mac)
}

fn next_line(d: &Device) -> Line {
    Line {
        line: d.lines.iter().map(|l| l.line).max().unwrap_or(0) + 1,
        ..Default::default()
    }
}

/// `GET /devices/MAC/values`
pub fn page(c: &Console, ctx: &Ctx, mac: &str, req: &Request) -> Result<Response> {
    ctx.user.require(Action::Associate)?;
    let d = device(c, ctx, &mac_of(mac)?)?;
    let sent = Sent {
        form: String::new(),
        problems: &[],
        notice: notice_of(req),
    };
    // Secret parameters in the override are never sent to the browser.
    let shown = DeviceVars {
        override_attrs: templating::mask_override(&d.vars.override_attrs),
        ..d.vars.clone()
    };
    Ok(values_page(
        ctx,
        &d,
        &shown,
        &d.lines,
        &next_line(&d),
        &sent,
    ))
}

/// `POST /devices/MAC/values`
pub fn save_vars(c: &Console, ctx: &Ctx, mac: &str, f: &Form) -> Result<Response> {
    ctx.user.require(Action::Associate)?;
    let mac = mac_of(mac)?;
    let d = device(c, ctx, &mac)?;
    let change = DeviceVarsChange {
        label: Some(f.get("label").into()),
        tl_timezone: Some(f.get("tl_timezone").into()),
        tl_timezone_name: Some(f.get("tl_timezone_name").into()),
        default_parkext: Some(f.get("default_parkext").into()),
        override_attrs: Some(f.get("override").into()),
    };
    let who = c.actor(&ctx.user, &ctx.account).who;
    match templating::set_device_vars(&mut *c.conn()?, &who, &mac, &change) {
        Ok(_) => Ok(done(&format!("/devices/{mac}/values"), "values-saved")),
        Err(Error::Invalid(p)) => {
            let typed = DeviceVars {
                label: f.get("label").into(),
                tl_timezone: f.get("tl_timezone").into(),
                tl_timezone_name: f.get("tl_timezone_name").into(),
                default_parkext: f.get("default_parkext").into(),
                override_attrs: f.get("override").into(),
            };
            let sent = Sent {
                form: "vars".into(),
                problems: &p,
                notice: None,
            };
            Ok(values_page(
                ctx,
                &d,
                &typed,
                &d.lines,
                &next_line(&d),
                &sent,
            ))
        }
        Err(e) => Err(e),
    }
}

/// `POST /devices/MAC/lines` (a new line) and `POST /devices/MAC/lines/N`.
pub fn save_line(
    c: &Console,
    ctx: &Ctx,
    mac: &str,
    number: Option<&str>,
    f: &Form,
) -> Result<Response> {
    ctx.user.require(Action::Associate)?;
    let mac = mac_of(mac)?;
    let d = device(c, ctx, &mac)?;
    let key = number
        .map(|n| format!("l{n}"))
        .unwrap_or_else(|| "new".into());
    let get = |field: &str| f.get(&format!("{key}.{field}")).trim().to_string();
    let line_no = number.map(str::to_string).unwrap_or_else(|| get("line"));
    let parsed: Option<u32> = line_no.parse().ok();
    let stored = parsed.and_then(|n| d.lines.iter().find(|l| l.line == n));
    let password = f.get(&format!("{key}.sip_password"));
    let line = Line {
        line: parsed.unwrap_or(0),
        auth_user_id: get("sip_user"),
        auth_password: if f.checked(&format!("{key}.clear_sip_password")) {
            String::new()
        } else if password.is_empty() {
            stored.map(|l| l.auth_password.clone()).unwrap_or_default()
        } else {
            password.to_string()
        },
        label: get("line_label"),
        display_name: get("display_name"),
        extension: get("extension"),
        first_name: get("first_name"),
        last_name: get("last_name"),
    };
    let who = c.actor(&ctx.user, &ctx.account).who;
    let result = if number.is_none() && stored.is_some() {
        Err(Error::invalid(
            "line",
            format!("line {line_no} exists already: change it above"),
        ))
    } else if parsed.is_none() {
        Err(Error::invalid(
            "line",
            format!("`{line_no}` is not a line number (1 to 64)"),
        ))
    } else {
        templating::set_device_line(&mut *c.conn()?, &who, &mac, &line)
    };
    match result {
        Ok(()) => Ok(done(
            &format!("/devices/{mac}/values"),
            line_applied(c, ctx, &d, "line-saved", "line-saved-applying")?,
        )),
        Err(Error::Invalid(p)) => {
            let mut lines = d.lines.clone();
            let new_line = if number.is_some() {
                if let Some(l) = lines.iter_mut().find(|l| Some(l.line) == parsed) {
                    *l = line;
                }
                next_line(&d)
            } else {
                line
            };
            let sent = Sent {
                form: key,
                problems: &p,
                notice: None,
            };
            Ok(values_page(ctx, &d, &d.vars, &lines, &new_line, &sent))
        }
        Err(e) => Err(e),
    }
}

/// `POST /devices/MAC/lines/N/delete`
pub fn delete_line(c: &Console, ctx: &Ctx, mac: &str, number: &str) -> Result<Response> {
    ctx.user.require(Action::Associate)?;
    let mac = mac_of(mac)?;
    let d = device(c, ctx, &mac)?;
    let n: u32 = number
        .parse()
        .map_err(|_| Error::not_found(format!("line `{number}` of device {mac}")))?;
    let who = c.actor(&ctx.user, &ctx.account).who;
    templating::delete_device_line(&mut *c.conn()?, &who, &mac, n)?;
    Ok(done(
        &format!("/devices/{mac}/values"),
        line_applied(c, ctx, &d, "line-removed", "line-removed-applying")?,
    ))
}

/// After a line change: with the account's "apply now" setting, the device is sent
/// check-sync in the background (as the API's line changes are); the notice says which.
fn line_applied(
    c: &Console,
    ctx: &Ctx,
    d: &crate::domain::device::Device,
    saved: &'static str,
    applying: &'static str,
) -> Result<&'static str> {
    if d.account_id != ctx.account.id.0 || d.profile_id.is_none() {
        return Ok(saved);
    }
    let actor = c.actor(&ctx.user, &ctx.account);
    let after = c.after_change(&*c.conn()?, &actor, &ctx.account, vec![d.mac.to_string()]);
    Ok(if after.sending > 0 { applying } else { saved })
}
