//! Profile Association pages: the customer contact (reference ID) form, the reference ID
//! page (the ZTP guide's "Modify Service or Package" window) and manual association of one or
//! more devices with their vendor extensions. Bulk association lives in `import`.

use maud::{Markup, Render, html};
use rouille::{Request, Response};

use super::import::jobs_table;
use super::{Console, Ctx, Form, done, html_page, notice_of, percent_encode};
use crate::actions::associations;
use crate::db::{assoc as q, jobs};
use crate::domain::device::{DeviceInput, Line, VendorExtensions};
use crate::domain::subscriber::SubscriberInput;
use crate::domain::users::Action;
use crate::error::{Error, FieldError, Result};
use crate::http::admin::views::{self, Field, csrf_field, when};

const CONTACT: [(&str, &str); 11] = [
    ("reference_id", "Reference ID"),
    ("company", "Company name"),
    ("first_name", "First name"),
    ("last_name", "Last name"),
    ("phone", "Phone number"),
    ("email", "Email address"),
    ("street", "Street address"),
    ("city", "City"),
    ("state", "State"),
    ("zip", "Zip/Postal code"),
    ("country_code", "Country code"),
];

fn contact_from(f: &Form) -> SubscriberInput {
    SubscriberInput {
        reference_id: f.get("reference_id").into(),
        company: f.get("company").into(),
        first_name: f.get("first_name").into(),
        last_name: f.get("last_name").into(),
        phone: f.get("phone").into(),
        email: f.get("email").into(),
        street: f.get("street").into(),
        city: f.get("city").into(),
        state: f.get("state").into(),
        zip: f.get("zip").into(),
        country_code: f.get("country_code").into(),
    }
}

fn contact_value<'a>(s: &'a SubscriberInput, name: &str) -> &'a str {
    match name {
        "reference_id" => &s.reference_id,
        "company" => &s.company,
        "first_name" => &s.first_name,
        "last_name" => &s.last_name,
        "phone" => &s.phone,
        "email" => &s.email,
        "street" => &s.street,
        "city" => &s.city,
        "state" => &s.state,
        "zip" => &s.zip,
        _ => &s.country_code,
    }
}

fn contact_fields(s: &SubscriberInput, problems: &[FieldError]) -> Markup {
    html! {
        div.grid {
            @for (name, label) in CONTACT {
                @if name == "reference_id" {
                    (Field::text(label, name, contact_value(s, name), problems).required().hint("unique; 4 to 20 letters and digits"))
                } @else {
                    (Field::text(label, name, contact_value(s, name), problems))
                }
            }
        }
    }
}

fn subscriber_form(ctx: &Ctx, s: &SubscriberInput, mode: &str, problems: &[FieldError]) -> Markup {
    views::page(
        "Profile Association",
        &ctx.nav("associate"),
        html! {
            h1 { "Add personal information" }
            p.muted { "Create the customer contact profile; devices you associate are linked to its reference ID." }
            (views::problems(problems))
            form method="post" action="/associations" {
                (csrf_field(&ctx.csrf))
                (contact_fields(s, problems))
                fieldset {
                    legend { "Profile Association Mode" }
                    label.check { input type="radio" name="mode" value="manual" checked[mode != "bulk"]; " Manual Profile Association" }
                    label.check { input type="radio" name="mode" value="bulk" checked[mode == "bulk"]; " Bulk Profile Association (CSV)" }
                }
                div.actions { button type="submit" { "Next" } " " button.secondary type="reset" { "Reset" } }
            }
        },
    )
}

pub fn new_subscriber(_c: &Console, ctx: &Ctx) -> Result<Response> {
    ctx.user.require(Action::Associate)?;
    Ok(html_page(
        200,
        subscriber_form(ctx, &SubscriberInput::default(), "manual", &[]),
    ))
}

pub fn create_subscriber(c: &Console, ctx: &Ctx, f: &Form) -> Result<Response> {
    ctx.user.require(Action::Associate)?;
    let input = contact_from(f);
    let mut conn = c.conn()?;
    let actor = c.actor(&ctx.user, &ctx.account);
    match associations::create_subscriber(&mut conn, &actor, &input) {
        Ok(_) => {
            let r = percent_encode(input.reference_id.trim());
            Ok(if f.get("mode") == "bulk" {
                Response::redirect_303(format!("/import?reference_id={r}"))
            } else {
                Response::redirect_303(format!("/subscribers/{r}/devices/new"))
            })
        }
        Err(Error::Invalid(p)) => Ok(html_page(
            422,
            subscriber_form(ctx, &input, f.get("mode"), &p),
        )),
        Err(Error::Conflict(m)) => Ok(html_page(
            409,
            subscriber_form(
                ctx,
                &input,
                f.get("mode"),
                &[FieldError::new("reference_id", m)],
            ),
        )),
        Err(e) => Err(e),
    }
}

/// The reference ID page: contact, status, devices with their operations, jobs.
pub fn subscriber(c: &Console, ctx: &Ctx, reference_id: &str, req: &Request) -> Result<Response> {
    let conn = c.conn()?;
    let actor = c.actor(&ctx.user, &ctx.account);
    let s = associations::subscriber(&conn, &actor, reference_id)?;
    let devices = q::list_subscriber_devices(&conn, s.id)?;
    let job_list =
        crate::actions::import::recent_jobs(&conn, &actor, Some(&s.fields.reference_id), 20)?;
    Ok(html_page(
        200,
        subscriber_page(ctx, &s, &devices, &job_list, &[], notice_of(req)),
    ))
}

fn subscriber_page(
    ctx: &Ctx,
    s: &crate::domain::subscriber::Subscriber,
    devices: &[q::DeviceRow],
    job_list: &[jobs::Job],
    problems: &[FieldError],
    notice: Option<&str>,
) -> Markup {
    let r = percent_encode(&s.fields.reference_id);
    let can = ctx.user.require(Action::Associate).is_ok();
    views::page(
        &format!("Reference ID {}", s.fields.reference_id),
        &ctx.nav("find"),
        html! {
            h1 { "Reference ID " (s.fields.reference_id) " " span class=(format!("badge {}", s.status)) { (s.status) } }
            (views::notice(notice))
            @if s.status == "partial" {
                p.muted { "Partial association: no device yet. It expires at " (when(s.expires_at)) " unless a device is added." }
            }
            h2 { "Devices" }
            @if can {
                p { a.button href=(format!("/subscribers/{r}/devices/new")) { "Add" } " " a.button.secondary href=(format!("/import?reference_id={r}")) { "Bulk_Add" } }
            }
            @if devices.is_empty() { p.muted { "No devices." } } @else {
                table.list {
                    thead { tr { th { "MAC address" } th { "Serial number" } th { "Profile" } th { "Last access" } th.num { "Count" } th { "Operations" } } }
                    tbody {
                        @for d in devices {
                            tr {
                                td { a href=(format!("/devices/{}", d.mac)) { code { (d.mac) } } }
                                td { (d.serial) }
                                td { (d.profile.as_deref().unwrap_or("--")) }
                                td { (when(d.last_seen)) }
                                td.num { (d.access_count) }
                                td.ops {
                                    @if can {
                                        a href=(format!("/devices/{}/edit", d.mac)) { "Modify" } " "
                                        a href=(format!("/devices/{}/copy", d.mac)) { "Copy" } " "
                                        a href=(format!("/devices/{}/replace", d.mac)) { "Change" } " "
                                        a href=(format!("/devices/{}/delete", d.mac)) { "Delete" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if !job_list.is_empty() {
                h2 { "Bulk associations" }
                (jobs_table(job_list))
            }
            h2 { "Contact" }
            (views::problems(problems))
            form method="post" action=(format!("/subscribers/{r}")) {
                (csrf_field(&ctx.csrf))
                (contact_fields(&s.fields, problems))
                @if can { div.actions { button type="submit" { "Save contact" } } }
            }
            @if can && devices.is_empty() {
                form method="post" action=(format!("/subscribers/{r}/delete")) {
                    (csrf_field(&ctx.csrf))
                    button.danger type="submit" { "Delete reference ID" }
                }
            }
        },
    )
}

pub fn update_subscriber(c: &Console, ctx: &Ctx, reference_id: &str, f: &Form) -> Result<Response> {
    ctx.user.require(Action::Associate)?;
    let input = contact_from(f);
    let mut conn = c.conn()?;
    let actor = c.actor(&ctx.user, &ctx.account);
    match associations::update_subscriber(&mut conn, &actor, reference_id, &input) {
        Ok(()) => Ok(done(
            &format!("/subscribers/{}", percent_encode(input.reference_id.trim())),
            "subscriber-saved",
        )),
        Err(Error::Invalid(p)) => {
            let mut s = associations::subscriber(&conn, &actor, reference_id)?;
            let devices = q::list_subscriber_devices(&conn, s.id)?;
            s.fields = input;
            Ok(html_page(
                422,
                subscriber_page(ctx, &s, &devices, &[], &p, None),
            ))
        }
        Err(e) => Err(e),
    }
}

pub fn delete_subscriber(c: &Console, ctx: &Ctx, reference_id: &str) -> Result<Response> {
    ctx.user.require(Action::Associate)?;
    let mut conn = c.conn()?;
    let actor = c.actor(&ctx.user, &ctx.account);
    associations::delete_subscriber(&mut conn, &actor, reference_id)?;
    Ok(done("/find", "subscriber-deleted"))
}

/// The fields of one device of the Create screen, named `devices[i].<field>`.
pub fn device_block(
    i: usize,
    d: &DeviceInput,
    profiles: &[String],
    problems: &[FieldError],
    with_mac: bool,
) -> Markup {
    let n = |f: &str| format!("devices[{i}].{f}");
    let mine: Vec<FieldError> = problems
        .iter()
        .filter(|p| {
            p.field.starts_with(&format!("devices[{i}].")) || !p.field.starts_with("devices[")
        })
        .cloned()
        .collect();
    let e = &d.ext;
    let l = &d.line1;
    // The edit form (no MAC field) shows stored values: secrets stay write-only there.
    let write_only = !with_mac;
    let prov_server = if write_only {
        crate::domain::provserver::mask_password(&e.prov_server).into_owned()
    } else {
        e.prov_server.clone()
    };
    html! {
        fieldset.device {
            legend { "Device " (i + 1) }
            div.grid {
                @if with_mac { (Field::text("MAC address / Device ID", &n("mac"), &d.mac, &mine).required().hint("12 hex digits, e.g. 0004f2000001")) }
                (Field::text("Serial number", &n("serial"), &d.serial, &mine).hint("empty: the MAC in capitals"))
                div.field {
                    label for=(n("vendor_model")) { "Vendor model" }
                    select id=(n("vendor_model")) name=(n("vendor_model")) {
                        option value="Polycom_UCS_Device" selected[d.vendor_model != "Polycom Video Endpoint"] { "Polycom_UCS_Device" }
                        option value="Polycom Video Endpoint" selected[d.vendor_model == "Polycom Video Endpoint"] { "Polycom Video Endpoint" }
                    }
                }
                div.field.invalid[mine.iter().any(|p| p.field.ends_with("profile"))] {
                    label for=(n("profile")) { "Configuration profile *" }
                    select id=(n("profile")) name=(n("profile")) {
                        @for p in profiles { option value=(p) selected[*p == d.profile] { (p) } }
                    }
                    @for p in mine.iter().filter(|p| p.field.ends_with("profile")) { span.error { (p.message) } }
                }
            }
            details open[has_extensions(d) || mine.iter().any(|p| !p.field.ends_with("mac") && !p.field.ends_with("profile"))] {
                summary { "Click here to enter vendor extensions" }
                p.hint { "Per-device values override the configuration profile. Not allowed: , & < > ' \"" }
                div.grid {
                    (Field::text("SIP server address", &n("sip_server"), &e.sip_server, &mine))
                    (Field::text("Outbound proxy address", &n("outbound_proxy"), &e.outbound_proxy, &mine))
                    (Field::text("Provisioning server address", &n("prov_server"), &prov_server, &mine).hint("protocol://user:password@host:port/path"))
                    (Field::text("Provisioning server username", &n("prov_user"), &e.prov_user, &mine))
                    (secret_field("Provisioning server password", &n("prov_password"), &e.prov_password, &mine, write_only))
                    div.field {
                        label for=(n("polling")) { "Enable provisioning polling" }
                        select id=(n("polling")) name=(n("polling")) {
                            option value="" selected[e.polling.is_empty()] { "None" }
                            option value="1" selected[e.polling == "1"] { "Enable" }
                            option value="0" selected[e.polling == "0"] { "Disable" }
                        }
                    }
                    (Field::text("SIP authentication user ID", &n("sip_auth_user_id"), &l.auth_user_id, &mine))
                    (secret_field("SIP authentication password", &n("sip_auth_password"), &l.auth_password, &mine, write_only))
                    (Field::text("Line label", &n("line_label"), &l.label, &mine))
                    (Field::text("SIP display name", &n("display_name"), &l.display_name, &mine))
                }
            }
        }
    }
}

/// A password field. On the edit form it is write-only: the stored value never reaches the
/// page; a set one shows "set — replace" (empty keeps it; `clear_<name>` removes it).
fn secret_field(
    label: &str,
    name: &str,
    value: &str,
    problems: &[FieldError],
    write_only: bool,
) -> Markup {
    if !write_only {
        return Field::text(label, name, value, problems)
            .kind("password")
            .render();
    }
    let set = !value.is_empty();
    let hint = if set {
        "set — type a new one to replace it; leave empty to keep it"
    } else {
        ""
    };
    let clear = clear_name(name);
    html! {
        (Field::text(label, name, "", problems).kind("password").hint(hint))
        @if set { label.check { input type="checkbox" name=(clear); " Clear" } }
    }
}

/// The name of the checkbox that clears a write-only field.
pub fn clear_name(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((block, field)) => format!("{block}.clear_{field}"),
        None => format!("clear_{name}"),
    }
}

fn has_extensions(d: &DeviceInput) -> bool {
    let e = &d.ext;
    ![
        &e.sip_server,
        &e.outbound_proxy,
        &e.prov_server,
        &e.prov_user,
        &e.prov_password,
        &e.polling,
    ]
    .iter()
    .all(|v| v.is_empty())
        || !d.line1.is_empty()
}

/// Reads device block `i` of a form.
pub fn device_from(f: &Form, i: usize) -> DeviceInput {
    let g = |name: &str| f.get(&format!("devices[{i}].{name}")).to_string();
    DeviceInput {
        mac: g("mac"),
        serial: g("serial"),
        vendor_model: g("vendor_model"),
        profile: g("profile"),
        ext: VendorExtensions {
            sip_server: g("sip_server"),
            outbound_proxy: g("outbound_proxy"),
            prov_server: g("prov_server"),
            prov_user: g("prov_user"),
            prov_password: g("prov_password"),
            polling: g("polling"),
        },
        line1: Line {
            line: 1,
            auth_user_id: g("sip_auth_user_id"),
            auth_password: g("sip_auth_password"),
            label: g("line_label"),
            display_name: g("display_name"),
            ..Default::default()
        },
    }
}

fn devices_form(
    ctx: &Ctx,
    reference_id: Option<&str>,
    devices: &[DeviceInput],
    profiles: &[String],
    problems: &[FieldError],
) -> Markup {
    let action = match reference_id {
        Some(r) => format!("/subscribers/{}/devices", percent_encode(r)),
        None => "/devices".into(),
    };
    views::page(
        "Associate devices",
        &ctx.nav("associate"),
        html! {
            h1 { "Create: associate devices" @if let Some(r) = reference_id { " with reference ID " (r) } }
            @if profiles.is_empty() { div.errors { "There is no profile yet. " a href="/profiles/new" { "Create a profile" } " first." } }
            (views::problems(problems))
            form method="post" action=(action) {
                (csrf_field(&ctx.csrf))
                input type="hidden" name="count" value=(devices.len());
                @for (i, d) in devices.iter().enumerate() { (device_block(i, d, profiles, problems, true)) }
                div.actions {
                    button type="submit" name="step" value="finish" { "Finish" } " "
                    button.secondary type="submit" name="step" value="next" { "Next: add another device" }
                }
            }
        },
    )
}

pub fn new_devices(
    c: &Console,
    ctx: &Ctx,
    reference_id: Option<&str>,
    req: &Request,
) -> Result<Response> {
    ctx.user.require(Action::Associate)?;
    if let Some(r) = reference_id {
        let conn = c.conn()?;
        associations::subscriber(&conn, &c.actor(&ctx.user, &ctx.account), r)?;
    }
    let profiles = super::profiles::profile_names(c, ctx)?;
    let d = DeviceInput {
        mac: req.get_param("mac").unwrap_or_default(),
        ..Default::default()
    };
    Ok(html_page(
        200,
        devices_form(ctx, reference_id, &[d], &profiles, &[]),
    ))
}

pub fn create_devices(
    c: &Console,
    ctx: &Ctx,
    reference_id: Option<&str>,
    f: &Form,
) -> Result<Response> {
    ctx.user.require(Action::Associate)?;
    let count: usize = f.get("count").parse().unwrap_or(1).clamp(1, 50);
    let mut devices: Vec<DeviceInput> = (0..count).map(|i| device_from(f, i)).collect();
    let profiles = super::profiles::profile_names(c, ctx)?;
    if f.get("step") == "next" {
        devices.push(DeviceInput {
            profile: devices
                .last()
                .map(|d| d.profile.clone())
                .unwrap_or_default(),
            ..Default::default()
        });
        return Ok(html_page(
            200,
            devices_form(ctx, reference_id, &devices, &profiles, &[]),
        ));
    }
    let mut conn = c.conn()?;
    let actor = c.actor(&ctx.user, &ctx.account);
    match associations::associate(&mut conn, &actor, reference_id, &devices) {
        Ok(macs) => Ok(match reference_id {
            Some(r) => done(
                &format!("/subscribers/{}", percent_encode(r)),
                "devices-added",
            ),
            None => done(&format!("/devices/{}", macs[0]), "devices-added"),
        }),
        Err(Error::Invalid(p)) => Ok(html_page(
            422,
            devices_form(ctx, reference_id, &devices, &profiles, &p),
        )),
        Err(Error::Conflict(m)) => Ok(html_page(
            409,
            devices_form(
                ctx,
                reference_id,
                &devices,
                &profiles,
                &[FieldError::new("mac", m)],
            ),
        )),
        Err(e) => Err(e),
    }
}
