//! The device page's "Apply now": what check-sync would do to the phone (where it goes,
//! whether it restarts the phone), a form that confirms, and the report. The rules and the
//! sending are `actions::sip`'s, shared with the CLI and the API.

use maud::html;
use rouille::Response;

use super::{Console, Ctx, Form, html_page};
use crate::actions::sip::{self, Selection};
use crate::domain::mac::Mac;
use crate::error::{Error, Result};
use crate::http::admin::views::{self, csrf_field, when};

fn mac_of(s: &str) -> Result<Mac> {
    s.parse::<Mac>()
        .map_err(|_| Error::not_found(format!("device `{s}`")))
}

/// `GET /devices/{mac}/apply-now`: what would happen, and the button.
pub fn form(c: &Console, ctx: &Ctx, mac: &str) -> Result<Response> {
    let mac = mac_of(mac)?;
    let conn = c.conn()?;
    let actor = c.actor(&ctx.user, &ctx.account);
    let d = crate::actions::associations::device(&conn, &actor, &mac)?;
    let known = crate::db::sip::find_device_sip(&conn, d.id)?.unwrap_or_default();
    let impact = if c.config().sip.enabled {
        Some(sip::impact(
            &conn,
            &actor,
            &c.config().sip,
            &Selection::Macs(vec![mac.to_string()]),
        )?)
    } else {
        None
    };
    Ok(html_page(
        200,
        views::page(
            "Apply now",
            &ctx.nav("find"),
            html! {
                h1 { "Apply now: " code { (mac) } }
                p { "Sends the phone a SIP NOTIFY with " code { "Event: check-sync" } ": it fetches its configuration at once instead of at its next poll or restart. It restarts only when the change needs it (a pending " code { "device.*" } " change such as a credential rotation, or new software)." }
                p { "It goes only to the address of the phone's latest request made with its own credential or client certificate, never to an address learned from a request with the account credential, and only inside the configured device networks." }
                dl {
                    dt { "Proven address" }
                    dd { (known.proven_ip.map(|i| i.to_string()).unwrap_or_else(|| "none yet".into())) " " (when(known.proven_at)) }
                    dt { "Fallback address (admin)" }
                    dd { (known.override_ip.map(|i| i.to_string()).unwrap_or_else(|| "none".into())) }
                    dt { "Last SIP answer" }
                    dd { (known.answer_status.map(|s| s.to_string()).unwrap_or_else(|| "never".into())) " " (when(known.answered_at)) }
                }
                @match &impact {
                    None => { div.warning role="alert" { "Apply-now is off: set " code { "sip.enabled = true" } " and " code { "sip.networks" } " in the configuration." } }
                    Some(impact) => {
                        @if impact.locked_out > 0 {
                            div.warning role="alert" { (views::widgets::affected(impact.locked_out, &impact.phones)) }
                        }
                        form method="post" action=(format!("/devices/{mac}/apply-now")) {
                            (csrf_field(&ctx.csrf))
                            @if impact.locked_out > 0 {
                                input type="hidden" name="confirm" value="yes";
                                button.danger type="submit" { "Apply now and restart the phone" }
                            } @else {
                                button type="submit" { "Apply now" }
                            }
                            " " a href=(format!("/devices/{mac}")) { "Cancel" }
                        }
                    }
                }
            },
        ),
    ))
}

/// `POST /devices/{mac}/apply-now`: sends, and shows the report (the confirmation page
/// again, 409, when the phone would restart and the form did not confirm).
pub fn apply(c: &Console, ctx: &Ctx, mac: &str, f: &Form) -> Result<Response> {
    let m = mac_of(mac)?;
    let actor = c.actor(&ctx.user, &ctx.account);
    let result = {
        let mut conn = c.conn()?;
        sip::apply_now(
            &mut conn,
            &actor,
            &c.config().sip,
            &Selection::Macs(vec![m.to_string()]),
            f.get("confirm") == "yes",
        )
    };
    let report = match result {
        Ok(r) => r,
        Err(Error::NeedsConfirmation { .. }) => {
            return Ok(form(c, ctx, mac)?.with_status_code(409));
        }
        Err(e) => return Err(e),
    };
    Ok(html_page(
        200,
        views::page(
            "Apply now",
            &ctx.nav("find"),
            html! {
                h1 { "Apply now: " code { (m) } }
                @for d in &report.devices {
                    p role="status" {
                        strong { (d.result) }
                        @if let Some(s) = d.status { " (SIP " (s) ")" }
                        @if let Some(t) = &d.target { " — sent to " code { (t) } }
                        ": " (d.detail)
                    }
                    @if !d.restarts.is_empty() { p { "Restarts: " (d.restarts.join("; ")) } }
                    table {
                        thead { tr { th { "Change" } th { "State" } } }
                        tbody {
                            @for ch in &d.changes { tr { td { code { (ch.change) } } td { (ch.state) } } }
                        }
                    }
                }
                p { a href=(format!("/devices/{m}")) { "Back to the device" } }
            },
        ),
    ))
}
