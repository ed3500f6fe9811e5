//! An account's Enrolment page: whether it withholds secrets from the account credential
//! (DHCP option 160's), the windows open now, the devices that need something (contested
//! ones first, with each claimant's address, User-Agent and when it got the credential, then
//! those not yet enrolled) and the actions on them: open or close windows, re-enrol or
//! dismiss a contested device, the maximum age of the windows association opens.
//!
//! Every action is an `actions::enrolment` call, the same as the CLI's and the API's; one
//! that changes phones' service is counted and confirmed (`widgets::confirm_body`).

use std::net::IpAddr;

use maud::html;
use rouille::{Request, Response};

use super::accounts::tabs;
use super::{Console, Ctx, Form, done, html_page, notice_of};
use crate::actions::enrolment::{self, State};
use crate::domain::account::Account;
use crate::domain::mac::Mac;
use crate::domain::users::Action;
use crate::error::{Error, Result};
use crate::http::admin::views::widgets::{Confirm, badge, confirm_body};
use crate::http::admin::views::{self, csrf_field, when};

/// Rows shown per page section: the rest are counted (the CLI and the API list them all).
const SHOWN: usize = 500;

fn base(a: &Account) -> String {
    format!("/accounts/{}/enrolment", a.slug)
}

/// Routes `/accounts/<slug>/enrolment[/…]`.
pub fn route(
    c: &Console,
    ctx: &Ctx,
    a: &Account,
    req: &Request,
    f: &Form,
    rest: &[&str],
) -> Result<Response> {
    match (req.method(), rest) {
        ("GET", []) => page(c, ctx, a, req),
        ("POST", [action]) => {
            ctx.user.require(Action::ManageAccounts)?;
            post(c, ctx, a, f, action)
        }
        (m, _) => Err(Error::MethodNotAllowed(m.into())),
    }
}

fn state_badge(s: State) -> maud::Markup {
    let kind = match s {
        State::Contested | State::GivenUp => "bad",
        State::NoWindow | State::Delivered | State::ServedBefore => "warn",
        State::Enrolled | State::Exempt => "on",
        State::Waiting => "off",
    };
    badge(kind, s.label())
}

fn page(c: &Console, ctx: &Ctx, a: &Account, req: &Request) -> Result<Response> {
    let conn = c.conn()?;
    let a = &crate::actions::accounts::find_account(&conn, Some(&a.slug))?;
    let all = enrolment::status(&conn, a)?;
    let windows = enrolment::list_windows(&conn, a)?;
    let can = ctx.user.require(Action::ManageAccounts).is_ok();
    let base = base(a);
    let contested: Vec<_> = all.iter().filter(|d| d.state == State::Contested).collect();
    let waiting: Vec<_> = all.iter().filter(|d| d.state.not_enrolled()).collect();
    let enrolled = all.iter().filter(|d| d.state == State::Enrolled).count();
    let exempt = all.iter().filter(|d| d.state == State::Exempt).count();
    let body = html! {
        (tabs(a, "enrolment"))
        h1 { "Enrolment · " (a.name) }
        (views::notice(notice_of(req)))
        @if a.device_secrets {
            p { "Secrets are " (badge("on", "withheld")) " from the account credential: each phone enrols its own credential (user = its MAC) and gets its SIP passwords with it." }
        } @else {
            p.error { "This account serves every SIP password to anyone holding its account credential (the one DHCP option 160 hands out)." }
        }
        p.hint { "Enrolment protects against holders of the account credential after phones enrolled (option-160 readers, copies of a DHCP configuration, old backups). It does not protect against an attacker on the voice network at the moment a phone enrols; a second client sent a phone's credential, or the account credential used for an enrolled phone, marks it contested below." }
        div.cards {
            div.card.bad { strong { (contested.len()) } span { "contested" } }
            div.card.warn { strong { (waiting.len()) } span { "not yet enrolled" } }
            div.card { strong { (enrolled) } span { "enrolled" } }
            div.card { strong { (exempt) } span { "not withheld (cannot enrol)" } }
        }
        @if can {
            form.inline method="post" action=(format!("{base}/mode")) {
                (csrf_field(&ctx.csrf))
                input type="hidden" name="withhold" value=(if a.device_secrets { "off" } else { "on" });
                button.secondary type="submit" {
                    @if a.device_secrets { "Serve secrets to the account credential" } @else { "Withhold secrets until each phone enrols" }
                }
            }
        }
        h2 { "Contested devices" }
        @if contested.is_empty() { p.muted { "No device is contested." } } @else {
            p.error { "SIP passwords served to these devices during their enrolment window must be treated as leaked: change them on the PBX, then re-enrol the device (optionally only from the phone's address) or dismiss the claims if the phone holding its own credential is the right one." }
            table.list {
                thead { tr { th { "MAC" } th { "Claimants" } @if can { th { "Actions" } } } }
                tbody {
                    @for d in contested.iter().take(SHOWN) {
                        tr {
                            td { a href=(format!("/devices/{}", d.mac)) { code { (d.mac) } } }
                            td {
                                ul.plain {
                                    @for cl in &d.claims {
                                        li {
                                            code { (cl.address) } " · " (if cl.user_agent.is_empty() { "no User-Agent" } else { cl.user_agent.as_str() })
                                            @if let Some(t) = cl.delivered_at { " · sent the credential " (when(Some(t))) }
                                            @if let Some(t) = cl.after_enrolment_at { " · came after enrolment " (when(Some(t))) }
                                            " · " (cl.requests) " request(s)"
                                        }
                                    }
                                }
                            }
                            @if can {
                                td.ops {
                                    form.inline method="post" action=(format!("{base}/reenrol")) {
                                        (csrf_field(&ctx.csrf))
                                        input type="hidden" name="mac" value=(d.mac);
                                        label { "Only from " input type="text" name="address" size="15" placeholder="phone's address" aria-label=(format!("address for {}", d.mac)); }
                                        " "
                                        button.link type="submit" { "Re-enrol" }
                                    }
                                    form.inline method="post" action=(format!("{base}/dismiss")) {
                                        (csrf_field(&ctx.csrf))
                                        input type="hidden" name="mac" value=(d.mac);
                                        button.link type="submit" { "Dismiss" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Not yet enrolled" }
        @if waiting.is_empty() { p.muted { "Every device has enrolled." } } @else {
            table.list {
                thead { tr { th { "MAC" } th { "State" } th { "Window" } th.num { "Deliveries" } } }
                tbody {
                    @for d in waiting.iter().take(SHOWN) {
                        tr {
                            td { a href=(format!("/devices/{}", d.mac)) { code { (d.mac) } } }
                            td { (state_badge(d.state)) }
                            td { (d.window.as_deref().unwrap_or("none")) }
                            td.num { (d.deliveries) }
                        }
                    }
                }
            }
            @if waiting.len() > SHOWN { p.muted { (waiting.len() - SHOWN) " more: `zerotouch enrol status` lists them all." } }
        }
        h2 { "Windows open now" }
        @if windows.is_empty() { p.muted { "No window is open." } } @else {
            table.list {
                thead { tr { th { "Device" } th { "Closes" } th { "From" } th { "Opened by" } } }
                tbody {
                    @for w in windows.iter().take(SHOWN) {
                        tr {
                            td { (w.mac.as_deref().unwrap_or("every device")) }
                            td { (w.closes_text()) }
                            td { (w.address.as_deref().unwrap_or("any address")) }
                            td { (w.opened_by) }
                        }
                    }
                }
            }
        }
        @if can {
            h2 { "Open a window" }
            form method="post" action=(format!("{base}/open")) {
                (csrf_field(&ctx.csrf))
                label { "Minutes " input type="number" name="minutes" min="1" max="10080" value="60" required; }
                label { "Only this MAC " input type="text" name="mac" placeholder="every device"; }
                label { "Only from this address " input type="text" name="address" placeholder="any address"; }
                button type="submit" { "Open" }
            }
            form.inline method="post" action=(format!("{base}/close")) {
                (csrf_field(&ctx.csrf))
                button.secondary type="submit" { "Close every window" }
            }
        }
    };
    Ok(html_page(
        200,
        views::page(
            &format!("Enrolment · {}", a.name),
            &ctx.nav("accounts"),
            body,
        ),
    ))
}

fn mac_field(f: &Form) -> Result<Option<Mac>> {
    let v = f.get("mac").trim();
    if v.is_empty() {
        return Ok(None);
    }
    Mac::parse_lenient(v)
        .map(Some)
        .ok_or_else(|| Error::invalid("mac", format!("`{v}` is not a MAC address")))
}

fn address_field(f: &Form) -> Result<Option<IpAddr>> {
    let v = f.get("address").trim();
    if v.is_empty() {
        return Ok(None);
    }
    v.parse()
        .map(Some)
        .map_err(|_| Error::invalid("address", format!("`{v}` is not an IP address")))
}

fn post(c: &Console, ctx: &Ctx, a: &Account, f: &Form, action: &str) -> Result<Response> {
    let actor = c.actor(&ctx.user, &ctx.account);
    let who = &actor.who;
    let mut conn = c.conn()?;
    let conn = &mut *conn;
    let confirm = f.get("confirm") == "yes";
    let base = base(a);
    let asked =
        |title: &str, fields: Vec<(&str, String)>, button: &str, e: Error| -> Result<Response> {
            let Error::NeedsConfirmation {
                devices,
                message,
                phones,
            } = e
            else {
                return Err(e);
            };
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            Ok(html_page(
                409,
                views::page(
                    title,
                    &ctx.nav("accounts"),
                    confirm_body(
                        &ctx.csrf,
                        &Confirm {
                            title,
                            devices,
                            message: &message,
                            phones: &phones,
                            action: &format!("{base}/{action}"),
                            fields: &fields,
                            button: &format!("{button} ({devices} device(s))"),
                            back: &base,
                        },
                    ),
                ),
            ))
        };
    match action {
        "mode" => {
            let on = f.get("withhold") == "on";
            match enrolment::set_device_secrets(conn, who, a, on, confirm) {
                Ok(()) => Ok(done(&base, "enrolment-mode")),
                Err(e) => asked(
                    "Withhold secrets",
                    vec![("withhold", "on".to_string())],
                    "Withhold secrets",
                    e,
                ),
            }
        }
        "open" => {
            let minutes: u64 = f
                .get("minutes")
                .trim()
                .parse()
                .map_err(|_| Error::invalid("minutes", "give a whole number of minutes"))?;
            enrolment::open_window(
                conn,
                who,
                a,
                minutes,
                mac_field(f)?.as_ref(),
                address_field(f)?,
            )?;
            Ok(done(&base, "enrolment-opened"))
        }
        "close" => {
            let mac = mac_field(f)?;
            match enrolment::close_windows(conn, who, a, mac.as_ref(), confirm) {
                Ok(_) => Ok(done(&base, "enrolment-closed")),
                Err(e) => asked(
                    "Close enrolment windows",
                    vec![("mac", f.get("mac").to_string())],
                    "Close the windows",
                    e,
                ),
            }
        }
        "reenrol" => {
            let mac =
                mac_field(f)?.ok_or_else(|| Error::invalid("mac", "give the device's MAC"))?;
            let address = address_field(f)?;
            match enrolment::reenrol(conn, who, a, &mac, 60, address, confirm) {
                Ok(_) => Ok(done(&base, "enrolment-reenrol")),
                Err(e) => asked(
                    "Re-enrol the device",
                    vec![
                        ("mac", mac.to_string()),
                        ("address", f.get("address").to_string()),
                    ],
                    "Re-enrol",
                    e,
                ),
            }
        }
        "dismiss" => {
            let mac =
                mac_field(f)?.ok_or_else(|| Error::invalid("mac", "give the device's MAC"))?;
            enrolment::dismiss(conn, who, a, &mac)?;
            Ok(done(&base, "enrolment-dismissed"))
        }
        other => Err(Error::not_found(format!("enrolment action `{other}`"))),
    }
}
