//! Device pages: the device page (a summary first — `summary` — then access status, request
//! timeline, uploads each readable through `uploads`, and the exact files it receives with
//! secrets masked), modify, copy, change (replace a faulty device) and delete, and the list
//! of phones seen but not associated.

mod summary;
mod uploads;

pub use uploads::upload;

use maud::html;
use rouille::{Request, Response};

use super::assoc::{device_block, device_from};
use super::{Console, Ctx, Form, done, html_page, notice_of, percent_encode};
use crate::actions::associations;

use crate::actions::provisioning::mask_file;
use crate::db::{access, devices as dq};
use crate::domain::device::{Device, DeviceInput};
use crate::domain::mac::Mac;
use crate::domain::provstate::Reach;
use crate::domain::users::Action;
use crate::error::{Error, FieldError, Result};
use crate::http::admin::views::{self, Field, csrf_field, when};

fn mac_of(s: &str) -> Result<Mac> {
    s.parse::<Mac>()
        .map_err(|_| Error::not_found(format!("device `{s}`")))
}

/// The address phones use, for rendering what a device receives: the first public name,
/// else the device listener (this host's name when it listens on every address).
pub fn reach(c: &Console) -> Reach {
    let listen = c.config().device_http_addr();
    let host = match (c.config().device.public_names.first(), listen) {
        (Some(name), Some(a)) if a.port() != 80 => format!("{name}:{}", a.port()),
        (Some(name), _) => name.clone(),
        (None, Some(a)) if a.ip().is_unspecified() => {
            let (name, _) = crate::actions::advertised_host(&c.config());
            if name.contains(':') {
                format!("[{name}]:{}", a.port())
            } else {
                format!("{name}:{}", a.port())
            }
        }
        (None, Some(a)) => a.to_string(),
        (None, None) => "zerotouch".into(),
    };
    Reach {
        host,
        base_path: "/".into(),
        secure: false,
    }
}

pub fn show(c: &Console, ctx: &Ctx, mac: &str, req: &Request) -> Result<Response> {
    let mac = mac_of(mac)?;
    let conn = c.conn()?;
    let actor = c.actor(&ctx.user, &ctx.account);
    let d = associations::device(&conn, &actor, &mac)?;
    let reference = associations::device_subscriber(&conn, &mac)?;
    let activity = dq::find_activity(&conn, d.id)?;
    let sip = crate::db::sip::find_device_sip(&conn, d.id)?.unwrap_or_default();
    let log = access::list_access_for_mac(&conn, mac.as_str(), 50)?;
    let uploads = access::list_uploads(&conn, mac.as_str())?;
    let files = if d.is_associated() {
        crate::actions::render::render_device(
            &conn,
            &mac,
            &reach(c),
            crate::actions::render::As::Device,
            c.trust.as_ref(),
        )?
        .into_iter()
        .map(|(n, b)| (n, mask_file(&b)))
        .collect()
    } else {
        Vec::new()
    };
    let standing = crate::actions::standing::standing(&conn, &d)?;
    let overridden = super::overrides::device_section(c, ctx, &mac)?;
    let firmware =
        crate::actions::firmware::rollout::list_device_firmware(&conn, Some(mac.as_str()))?
            .into_iter()
            .next();
    let e = &d.ext;
    let set = |v: &str| if v.is_empty() { "" } else { "(set)" };
    Ok(html_page(
        200,
        views::page(
            &format!("Device {mac}"),
            &ctx.nav("find"),
            html! {
                h1 { "Device " code { (mac) } }
                (views::notice(notice_of(req)))
                (summary::summary(&d, &standing, &summary::Extras {
                    state: state(&d, activity.as_ref()),
                    has_overrides: uploads.iter().any(|u| u.kind == "overrides"),
                    sip: c.config().sip.enabled,
                    ctx,
                }))
                div.columns {
                    section {
                        h2 { "Association" }
                        table.kv {
                            tr { th { "Reference ID" } td { @if let Some(r) = &reference { a href=(format!("/subscribers/{}", percent_encode(r))) { (r) } } @else { "--" } } }
                            tr { th { "Profile" } td { (d.profile_name.as_deref().unwrap_or("(not associated)")) } }
                            tr { th { "Serial number" } td { (d.serial) } }
                            tr { th { "Vendor model" } td { (d.vendor_model) } }
                            tr { th { "SIP server" } td { (e.sip_server) } }
                            tr { th { "Outbound proxy" } td { (e.outbound_proxy) } }
                            tr { th { "Provisioning server" } td { (crate::domain::provserver::mask_password(&e.prov_server)) } }
                            tr { th { "Provisioning user" } td { (e.prov_user) } }
                            tr { th { "Provisioning password" } td { (set(&e.prov_password)) } }
                            tr { th { "Polling" } td { (match e.polling.as_str() { "1" => "Enable", "0" => "Disable", _ => "None" }) } }
                        }
                    }
                    section {
                        h2 { "Device ZTP access status" }
                        table.kv {
                            tr { th { "State" } td { strong { (state(&d, activity.as_ref())) } } }
                    tr { th { "Last access" } td { (when(activity.as_ref().map(|a| a.last_seen))) } }
                            tr { th { "Access count" } td { (activity.as_ref().map(|a| a.access_count.to_string()).unwrap_or_else(|| "--".into())) } }
                            tr { th { "First seen" } td { (when(activity.as_ref().map(|a| a.first_seen))) } }
                            tr { th { "Last provisioning sync" } td { (when(activity.as_ref().and_then(|a| a.last_sync_at))) } }
                            tr { th { "Last IP" } td { (activity.as_ref().map(|a| a.last_ip.as_str()).unwrap_or("--")) } }
                            tr { th { "Proven address (SIP check-sync)" } td { (sip.proven_ip.map(|i| i.to_string()).unwrap_or_else(|| "--".into())) " " (when(sip.proven_at)) } }
                            tr { th { "Last SIP answer" } td { (sip.answer_status.map(|s| s.to_string()).unwrap_or_else(|| "--".into())) " " (when(sip.answered_at)) } }
                            tr { th { "Model / firmware" } td { (activity.as_ref().map(|a| format!("{} {}", a.ua_model, a.firmware)).unwrap_or_else(|| "--".into())) } }
                            @if let Some(fw) = firmware.as_ref().filter(|f| f.target.is_some()) {
                                tr { th { "Profile's firmware" } td {
                                    (fw.target.as_deref().unwrap_or("")) " "
                                    @match fw.state() {
                                        crate::domain::firmware::FirmwareState::Current => span.badge.complete { "current" },
                                        s @ (crate::domain::firmware::FirmwareState::Unknown | crate::domain::firmware::FirmwareState::NoTarget) => span.badge { (s.label()) },
                                        s => span.badge.partial { (s.label()) },
                                    }
                                } }
                            }
                            tr { th { "Wrong credentials" } td { (activity.as_ref().map(|a| a.auth_failures).unwrap_or(0)) } }
                        }
                    }
                }
                (overridden)
                h2 { "Request timeline" }
                @if log.is_empty() { p.muted { "No requests recorded." } } @else {
                    table.list {
                        thead { tr { th { "Time" } th { "IP" } th { "Request" } th.num { "Status" } th.num { "Bytes" } th { "Auth" } } }
                        tbody { @for r in &log { tr { td { (when(Some(r.ts_ms / 1000))) } td { (r.ip) } td { code { (r.method) " " (r.path) } } td.num { (r.status) } td.num { (r.bytes) } td { (r.auth) } } } }
                    }
                }
                h2 { "Uploads" }
                @if uploads.is_empty() { p.muted { "The device has uploaded nothing (logs, overrides, call lists, contacts)." } } @else {
                    table.list {
                        thead { tr { th { "Kind" } th { "File" } th.num { "Bytes" } th { "Updated" } } }
                        tbody { @for u in &uploads { tr { td { (u.kind) } td { a href=(uploads::href(&mac, &u.file_name)) { (u.file_name) } } td.num { (u.size) } td { (when(Some(u.updated_at))) } } } }
                    }
                }
                @if !files.is_empty() {
                    h2 { "Files the device receives" }
                    p { a href=(format!("/preview?mac={mac}")) { "Preview its profile files" } " with the value and source of every variable." }
                    p.hint { "Exactly as served (secrets masked), for a phone reaching this server at " code { (reach(c).host) } "." }
                    @for (name, text) in &files {
                        details.file { summary { code { (name) } } pre { (text) } }
                    }
                }
            },
        ),
    ))
}

/// The device state of docs/design.md §7, from what was observed.
fn state(d: &Device, a: Option<&dq::Activity>) -> &'static str {
    match (d.is_associated(), a.and_then(|a| a.last_auth_ok_at)) {
        (false, _) => "unassociated",
        (true, None) => "staged",
        (true, Some(t)) if crate::db::now_secs() - t < 24 * 3600 => "provisioned-active",
        (true, Some(_)) => "provisioned",
    }
}

fn edit_page(
    c: &Console,
    ctx: &Ctx,
    mac: &Mac,
    d: &DeviceInput,
    problems: &[FieldError],
    ask: Option<&[crate::error::Affected]>,
) -> Result<Response> {
    let profiles = super::profiles::profile_names(c, ctx)?;
    let status = match (ask, problems.is_empty()) {
        (Some(_), _) => 409,
        (None, true) => 200,
        (None, false) => 422,
    };
    Ok(html_page(
        status,
        views::page(
            &format!("Modify {mac}"),
            &ctx.nav("find"),
            html! {
                h1 { "Modify device " code { (mac) } }
                (views::problems(problems))
                form method="post" action=(format!("/devices/{mac}/edit")) {
                    (csrf_field(&ctx.csrf))
                    (device_block(0, d, &profiles, problems, false))
                    @if let Some(phones) = ask {
                        div.warning role="alert" {
                            (views::widgets::affected(phones.len(), phones))
                            label { input type="checkbox" name="confirm" value="yes" required; " Send the phone to the other server" }
                        }
                    }
                    div.actions { button type="submit" { "Done" } " " a href=(format!("/devices/{mac}")) { "Cancel" } }
                }
            },
        ),
    ))
}

pub fn edit(c: &Console, ctx: &Ctx, mac: &str) -> Result<Response> {
    ctx.user.require(Action::Associate)?;
    let mac = mac_of(mac)?;
    let d = associations::device(&*c.conn()?, &c.actor(&ctx.user, &ctx.account), &mac)?;
    edit_page(c, ctx, &mac, &d.input(), &[], None)
}

pub fn update(c: &Console, ctx: &Ctx, mac: &str, f: &Form) -> Result<Response> {
    ctx.user.require(Action::Associate)?;
    let mac = mac_of(mac)?;
    let mut input = device_from(f, 0);
    let mut conn = c.conn()?;
    let actor = c.actor(&ctx.user, &ctx.account);
    // Write-only fields: empty keeps the stored secret, "Clear" removes it, and the masked
    // address sent back unchanged keeps the stored one.
    let stored = associations::device(&conn, &actor, &mac)?.input();
    let keep = |typed: &mut String, stored: &str, name: &str| {
        if typed.is_empty() && !f.checked(&super::assoc::clear_name(&format!("devices[0].{name}")))
        {
            *typed = stored.to_string();
        }
    };
    keep(
        &mut input.ext.prov_password,
        &stored.ext.prov_password,
        "prov_password",
    );
    keep(
        &mut input.line1.auth_password,
        &stored.line1.auth_password,
        "sip_auth_password",
    );
    let confirm = f.get("confirm") == "yes";
    match associations::modify_device(&mut conn, &actor, &mac, &input, confirm) {
        Ok(()) => Ok(done(&format!("/devices/{mac}"), "device-saved")),
        Err(Error::Invalid(p)) => edit_page(c, ctx, &mac, &input, &p, None),
        Err(Error::NeedsConfirmation { phones, .. }) => {
            edit_page(c, ctx, &mac, &input, &[], Some(&phones))
        }
        Err(e) => Err(e),
    }
}

fn mac_form(
    ctx: &Ctx,
    mac: &Mac,
    kind: &str,
    new_mac: &str,
    serial: &str,
    problems: &[FieldError],
) -> Response {
    let (title, intro, button) = if kind == "copy" {
        (
            "Copy association",
            "The new device gets this device's profile, reference ID and vendor extensions, but not its SIP user ID, SIP password, line label or display name.",
            "Copy",
        )
    } else {
        (
            "Change the device",
            "The association (profile, vendor extensions, lines, reference ID) moves to the new MAC, which starts as staged. The old device's overrides and logs are dropped; contacts and call lists move along.",
            "Replace",
        )
    };
    html_page(
        if problems.is_empty() { 200 } else { 422 },
        views::page(
            title,
            &ctx.nav("find"),
            html! {
                h1 { (title) " of " code { (mac) } }
                p { (intro) }
                (views::problems(problems))
                form method="post" action=(format!("/devices/{mac}/{kind}")) {
                    (csrf_field(&ctx.csrf))
                    div.grid {
                        (Field::text("MAC address / Device ID", "mac", &mac.to_string(), &[]).kind("text"))
                        (Field::text("New MAC address / Device ID", "new_mac", new_mac, problems).required())
                        (Field::text("Serial number of the new device", "serial", serial, problems).hint("empty: the new MAC in capitals"))
                    }
                    div.actions { button type="submit" { (button) } " " a href=(format!("/devices/{mac}")) { "Cancel" } }
                }
            },
        ),
    )
}

pub fn copy_form(c: &Console, ctx: &Ctx, mac: &str) -> Result<Response> {
    ctx.user.require(Action::Associate)?;
    let mac = mac_of(mac)?;
    associations::device(&*c.conn()?, &c.actor(&ctx.user, &ctx.account), &mac)?;
    Ok(mac_form(ctx, &mac, "copy", "", "", &[]))
}

pub fn copy(c: &Console, ctx: &Ctx, mac: &str, f: &Form) -> Result<Response> {
    ctx.user.require(Action::Associate)?;
    let mac = mac_of(mac)?;
    let mut conn = c.conn()?;
    match associations::copy_device(
        &mut conn,
        &c.actor(&ctx.user, &ctx.account),
        &mac,
        f.get("new_mac"),
        f.get("serial"),
    ) {
        Ok(new) => Ok(done(&format!("/devices/{new}"), "device-copied")),
        Err(Error::Invalid(p)) => {
            let p: Vec<_> = p
                .into_iter()
                .map(|e| {
                    if e.field == "mac" {
                        FieldError::new("new_mac", e.message)
                    } else {
                        e
                    }
                })
                .collect();
            Ok(mac_form(
                ctx,
                &mac,
                "copy",
                f.get("new_mac"),
                f.get("serial"),
                &p,
            ))
        }
        Err(Error::Conflict(m)) => Ok(mac_form(
            ctx,
            &mac,
            "copy",
            f.get("new_mac"),
            f.get("serial"),
            &[FieldError::new("new_mac", m)],
        )),
        Err(e) => Err(e),
    }
}

pub fn replace_form(c: &Console, ctx: &Ctx, mac: &str) -> Result<Response> {
    ctx.user.require(Action::Associate)?;
    let mac = mac_of(mac)?;
    associations::device(&*c.conn()?, &c.actor(&ctx.user, &ctx.account), &mac)?;
    Ok(mac_form(ctx, &mac, "replace", "", "", &[]))
}

pub fn replace(c: &Console, ctx: &Ctx, mac: &str, f: &Form) -> Result<Response> {
    ctx.user.require(Action::Associate)?;
    let mac = mac_of(mac)?;
    let mut conn = c.conn()?;
    match associations::replace_device(
        &mut conn,
        &c.actor(&ctx.user, &ctx.account),
        &mac,
        f.get("new_mac"),
        f.get("serial"),
        f.get("confirm") == "yes",
    ) {
        Ok((new, moved)) => {
            move_files(c, &mac, &new, &moved);
            Ok(done(&format!("/devices/{new}"), "device-replaced"))
        }
        Err(Error::NeedsConfirmation {
            devices,
            message,
            phones,
        }) => Ok(html_page(
            409,
            views::page(
                "Replace device",
                &ctx.nav("find"),
                views::widgets::confirm_body(
                    &ctx.csrf,
                    &views::widgets::Confirm {
                        title: "Replace the device",
                        devices,
                        message: &message,
                        phones: &phones,
                        action: &format!("/devices/{mac}/replace"),
                        fields: &[("new_mac", f.get("new_mac")), ("serial", f.get("serial"))],
                        button: "Replace the device",
                        back: &format!("/devices/{mac}"),
                    },
                ),
            ),
        )),
        Err(Error::Invalid(p)) => Ok(mac_form(
            ctx,
            &mac,
            "replace",
            f.get("new_mac"),
            f.get("serial"),
            &p,
        )),
        Err(Error::Conflict(m)) => Ok(mac_form(
            ctx,
            &mac,
            "replace",
            f.get("new_mac"),
            f.get("serial"),
            &[FieldError::new("new_mac", m)],
        )),
        Err(e) => Err(e),
    }
}

/// Moves the stored files that followed a replaced device and removes the rest.
/// Moves a replaced device's upload files (`associations::move_upload_files`).
pub fn move_files(c: &Console, old: &Mac, new: &Mac, moved: &[(String, String)]) {
    associations::move_upload_files(&c.config().data_dir.join("uploads"), old, new, moved);
}

pub fn confirm_delete(c: &Console, ctx: &Ctx, mac: &str) -> Result<Response> {
    ctx.user.require(Action::Associate)?;
    let mac = mac_of(mac)?;
    let conn = c.conn()?;
    let actor = c.actor(&ctx.user, &ctx.account);
    let d = associations::device(&conn, &actor, &mac)?;
    let impact = associations::impact_delete(&conn, &actor, &mac)?;
    Ok(html_page(
        200,
        views::page(
            "Delete device",
            &ctx.nav("find"),
            html! {
                h1 { "Delete device " code { (mac) } "?" }
                p { "The association (profile " (d.profile_name.as_deref().unwrap_or("--")) "), its lines, and everything recorded about the device are deleted. The phone keeps its configuration until it next asks; then it is treated as unknown." }
                @if impact.locked_out > 0 {
                    div.warning role="alert" { (views::widgets::affected(impact.locked_out, &impact.phones)) }
                }
                form method="post" action=(format!("/devices/{mac}/delete")) {
                    (csrf_field(&ctx.csrf))
                    input type="hidden" name="confirm" value="yes";
                    button.danger type="submit" { "Delete device" } " " a href=(format!("/devices/{mac}")) { "Cancel" }
                }
            },
        ),
    ))
}

pub fn delete(c: &Console, ctx: &Ctx, mac: &str, f: &Form) -> Result<Response> {
    ctx.user.require(Action::Associate)?;
    let mac = mac_of(mac)?;
    let mut conn = c.conn()?;
    let reference = associations::device_subscriber(&conn, &mac)?;
    let actor = c.actor(&ctx.user, &ctx.account);
    match associations::delete_device(&mut conn, &actor, &mac, f.get("confirm") == "yes") {
        Ok(()) => {}
        // The page that counts the phone and asks (its form confirms).
        Err(Error::NeedsConfirmation { .. }) => {
            drop(conn);
            let page = confirm_delete(c, ctx, mac.as_str())?;
            return Ok(page.with_status_code(409));
        }
        Err(e) => return Err(e),
    }
    let _ = std::fs::remove_dir_all(c.config().data_dir.join("uploads").join(mac.as_str()));
    Ok(match reference {
        Some(r) => done(
            &format!("/subscribers/{}", percent_encode(&r)),
            "device-deleted",
        ),
        None => done("/find", "device-deleted"),
    })
}

pub fn unassociated(c: &Console, ctx: &Ctx, req: &Request) -> Result<Response> {
    let conn = c.conn()?;
    let page: usize = req
        .get_param("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let per = 25;
    let (total, rows) = crate::actions::associations::unassociated(
        &conn,
        &c.actor(&ctx.user, &ctx.account),
        per as i64,
        ((page - 1) * per) as i64,
    )?;
    let total = total as usize;
    let profiles = super::profiles::profile_names(c, ctx)?;
    let can = ctx.user.require(Action::Associate).is_ok();
    Ok(html_page(
        200,
        views::page(
            "Unassociated devices",
            &ctx.nav("unassociated"),
            html! {
                h1 { "Phones seen but not associated" }
                (views::notice(notice_of(req)))
                p.muted { "Phones that asked for their configuration but have no association. Associate one with a profile in one step; it picks the association up at its next poll." }
                @if rows.is_empty() { p.muted { "None." } } @else {
                    table.list {
                        thead { tr { th { "MAC address" } th { "Model" } th { "Firmware" } th { "Last IP" } th { "Last access" } th.num { "Count" } th { "Associate" } } }
                        tbody {
                            @for r in &rows {
                                tr {
                                    td { a href=(format!("/devices/{}", r.mac)) { code { (r.mac) } } }
                                    td { (r.model) } td { (r.firmware) } td { (r.last_ip) } td { (when(r.last_seen)) } td.num { (r.access_count) }
                                    td {
                                        @if can && !profiles.is_empty() {
                                            form.inline method="post" action="/unassociated" {
                                                (csrf_field(&ctx.csrf))
                                                input type="hidden" name="mac" value=(r.mac);
                                                select name="profile" aria-label="profile" { @for p in &profiles { option value=(p) { (p) } } }
                                                " " button type="submit" { "Associate" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    (views::pager("/unassociated", page, per, total, false))
                }
            },
        ),
    ))
}

pub fn associate_seen(c: &Console, ctx: &Ctx, f: &Form) -> Result<Response> {
    ctx.user.require(Action::Associate)?;
    let input = DeviceInput {
        mac: f.get("mac").into(),
        profile: f.get("profile").into(),
        ..Default::default()
    };
    let mut conn = c.conn()?;
    let macs =
        associations::associate(&mut conn, &c.actor(&ctx.user, &ctx.account), None, &[input])?;
    Ok(done(&format!("/devices/{}", macs[0]), "devices-added"))
}
