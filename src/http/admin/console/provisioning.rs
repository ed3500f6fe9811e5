//! The actions of an account's "Device Provisioning" page and the blocks that offer them:
//! provisioning on or off, the server credentials (entered twice, editable only while
//! provisioning is enabled, the password never shown again), the Auto-Sync switch and its
//! options, a new service address, and retiring an alias.
//!
//! Every action is an `actions::accounts` call. One that would lock devices out returns
//! `NeedsConfirmation`; the handler then shows the count and the domain's message and asks
//! for a second post with `confirm=yes` (`widgets::confirm_body`). The credentials form
//! asks for the password again instead of carrying it through a confirmation page.

use maud::{Markup, html};
use rouille::Response;

use super::accounts::{AccountView, CredentialsForm, account_page, view};
use super::{Console, Ctx, Form, done, html_page};
use crate::actions::accounts::{self, AutoSyncOptions, Rotation};
use crate::domain::account::Account;
use crate::domain::users::Action;
use crate::error::{Error, FieldError, Result};
use crate::http::admin::views::widgets::{Confirm, confirm_body, poly_os_auth_note, switch};
use crate::http::admin::views::{self, Field, csrf_field, when};

fn base(a: &Account) -> String {
    format!("/accounts/{}", a.slug)
}

fn confirmed(f: &Form) -> bool {
    f.get("confirm") == "yes"
}

/// A whole number of days, or `None` when the field is empty.
fn days(f: &Form, field: &str) -> Result<Option<u32>> {
    let v = f.get(field).trim();
    if v.is_empty() {
        return Ok(None);
    }
    v.parse()
        .map(Some)
        .map_err(|_| Error::invalid(field, format!("`{v}` is not a whole number of days")))
}

/// The 409 page asking to confirm a lock-out.
fn ask(ctx: &Ctx, c: &Confirm<'_>) -> Response {
    html_page(
        409,
        views::page(c.title, &ctx.nav("accounts"), confirm_body(&ctx.csrf, c)),
    )
}

/// The confirmation page an account action asks for when it changes phones' service.
struct Asking<'a> {
    title: &'a str,
    /// Where the form posts again, below the account's page.
    path: &'a str,
    fields: &'a [(&'a str, &'a str)],
}

/// An account action's answer: the notice once done, or its count to confirm (409), with
/// the button's words for that count.
fn done_or_ask<T>(
    ctx: &Ctx,
    a: &Account,
    result: Result<T>,
    notice: &str,
    asking: Asking<'_>,
    button: impl FnOnce(usize) -> String,
) -> Result<Response> {
    match result {
        Ok(_) => Ok(done(&base(a), notice)),
        Err(Error::NeedsConfirmation {
            devices,
            message,
            phones,
        }) => Ok(ask(
            ctx,
            &Confirm {
                title: asking.title,
                devices,
                message: &message,
                phones: &phones,
                action: &format!("{}{}", base(a), asking.path),
                fields: asking.fields,
                button: &button(devices),
                back: &base(a),
            },
        )),
        Err(e) => Err(e),
    }
}

pub fn post_provisioning(c: &Console, ctx: &Ctx, a: &Account, f: &Form) -> Result<Response> {
    ctx.user.require(Action::ManageAccounts)?;
    let enabled = f.get("enabled") == "on";
    let actor = c.actor(&ctx.user, &ctx.account);
    let result = accounts::set_provisioning(&mut *c.conn()?, &actor.who, a, enabled, confirmed(f));
    done_or_ask(
        ctx,
        a,
        result,
        if enabled {
            "provisioning-enabled"
        } else {
            "provisioning-disabled"
        },
        Asking {
            title: "Disable Device Provisioning",
            path: "/provisioning",
            fields: &[("enabled", "off")],
        },
        |n| format!("Disable provisioning for {n} device(s)"),
    )
}

pub fn post_credentials(c: &Console, ctx: &Ctx, a: &Account, f: &Form) -> Result<Response> {
    ctx.user.require(Action::ManageAccounts)?;
    let user = f.get("user").trim();
    let mut problems = Vec::new();
    if f.get("password") != f.get("repeat_password") {
        problems.push(FieldError::new(
            "repeat_password",
            "does not match the password",
        ));
    }
    let grace_days = match days(f, "grace_days") {
        Ok(d) => d,
        Err(Error::Invalid(p)) => {
            problems.extend(p);
            None
        }
        Err(e) => return Err(e),
    };
    let rotation = Rotation {
        grace_days,
        compromised: f.checked("compromised"),
    };
    let result = if problems.is_empty() {
        let actor = c.actor(&ctx.user, &ctx.account);
        accounts::set_credentials(
            &mut *c.conn()?,
            &actor.who,
            a,
            user,
            f.get("password"),
            rotation,
            confirmed(f),
        )
    } else {
        Err(Error::Invalid(problems))
    };
    let again = |status: u16,
                 problems: &[FieldError],
                 confirm: Option<(usize, &[crate::error::Affected])>| {
        let form = CredentialsForm {
            user,
            grace_days: f.get("grace_days"),
            compromised: rotation.compromised,
            problems,
            confirm,
        };
        Ok(html_page(
            status,
            account_page(ctx, &view(c, ctx, a)?, &form, None),
        ))
    };
    match result {
        Ok(_) => Ok(done(&base(a), "credentials-saved")),
        Err(Error::Invalid(p)) => again(422, &p, None),
        Err(Error::Conflict(m)) => again(409, &[FieldError::new("provisioning", m)], None),
        Err(Error::NeedsConfirmation {
            devices, phones, ..
        }) => again(409, &[], Some((devices, &phones))),
        Err(e) => Err(e),
    }
}

/// Serving the account credential over TFTP on or off (`actions::accounts::set_tftp_credential`).
pub fn post_tftp_credential(c: &Console, ctx: &Ctx, a: &Account, f: &Form) -> Result<Response> {
    ctx.user.require(Action::ManageAccounts)?;
    let on = f.checked("enabled");
    let actor = c.actor(&ctx.user, &ctx.account);
    accounts::set_tftp_credential(&mut *c.conn()?, &actor.who, a, on)?;
    Ok(done(
        &base(a),
        if on {
            "tftp-credential-on"
        } else {
            "tftp-credential-off"
        },
    ))
}

/// Accepting the factory FTP login on or off (`actions::accounts::set_ftp_factory_login`).
pub fn post_ftp_factory_login(c: &Console, ctx: &Ctx, a: &Account, f: &Form) -> Result<Response> {
    ctx.user.require(Action::ManageAccounts)?;
    let on = f.checked("enabled");
    let actor = c.actor(&ctx.user, &ctx.account);
    accounts::set_ftp_factory_login(&mut *c.conn()?, &actor.who, a, on)?;
    Ok(done(
        &base(a),
        if on {
            "ftp-factory-login-on"
        } else {
            "ftp-factory-login-off"
        },
    ))
}

/// The account's SIP check-sync settings (`actions::accounts::set_sip`).
pub fn post_sip(c: &Console, ctx: &Ctx, a: &Account, f: &Form) -> Result<Response> {
    ctx.user.require(Action::ManageAccounts)?;
    let sip = crate::domain::account::AccountSip {
        validation: f.checked("validation"),
        apply_after_change: f.checked("apply_after_change"),
        online_check: f.checked("online_check"),
    };
    let actor = c.actor(&ctx.user, &ctx.account);
    accounts::set_sip(&mut *c.conn()?, &actor.who, a, sip)?;
    Ok(done(&base(a), "sip-saved"))
}

pub fn post_autosync(c: &Console, ctx: &Ctx, a: &Account, f: &Form) -> Result<Response> {
    ctx.user.require(Action::ManageAccounts)?;
    let enabled = f.checked("enabled");
    let actor = c.actor(&ctx.user, &ctx.account);
    let result = accounts::set_autosync(&mut *c.conn()?, &actor.who, a, enabled, confirmed(f));
    done_or_ask(
        ctx,
        a,
        result,
        if enabled {
            "autosync-on"
        } else {
            "autosync-off"
        },
        Asking {
            title: "Turn Auto-Sync off",
            path: "/autosync",
            fields: &[("enabled", "off")],
        },
        |n| format!("Turn Auto-Sync off and lock out {n} device(s)"),
    )
}

pub fn post_options(c: &Console, ctx: &Ctx, a: &Account, f: &Form) -> Result<Response> {
    ctx.user.require(Action::ManageAccounts)?;
    let options = AutoSyncOptions {
        grace_days: days(f, "grace_days")?,
        seen_days: days(f, "seen_days")?,
        poly_os: Some(f.checked("poly_os")),
    };
    let actor = c.actor(&ctx.user, &ctx.account);
    let result =
        accounts::set_autosync_options(&mut *c.conn()?, &actor.who, a, options, confirmed(f));
    done_or_ask(
        ctx,
        a,
        result,
        "autosync-options-saved",
        Asking {
            title: "Change the Auto-Sync options",
            path: "/autosync/options",
            fields: &[
                ("grace_days", f.get("grace_days")),
                ("seen_days", f.get("seen_days")),
                ("poly_os", if f.checked("poly_os") { "on" } else { "off" }),
            ],
        },
        |n| format!("Save and lock out {n} device(s)"),
    )
}

pub fn post_address(c: &Console, ctx: &Ctx, a: &Account, f: &Form) -> Result<Response> {
    ctx.user.require(Action::ManageAccounts)?;
    let actor = c.actor(&ctx.user, &ctx.account);
    let result = accounts::regenerate_address(&mut *c.conn()?, &actor.who, a, confirmed(f));
    done_or_ask(
        ctx,
        a,
        result,
        "address-regenerated",
        Asking {
            title: "Regenerate the service address",
            path: "/address",
            fields: &[],
        },
        |_| "Regenerate the address".to_string(),
    )
}

pub fn post_retire(c: &Console, ctx: &Ctx, a: &Account, f: &Form) -> Result<Response> {
    ctx.user.require(Action::ManageAccounts)?;
    let address = f.get("address");
    let actor = c.actor(&ctx.user, &ctx.account);
    let result = accounts::retire_alias(&mut *c.conn()?, &actor.who, a, address, confirmed(f));
    done_or_ask(
        ctx,
        a,
        result,
        "alias-retired",
        Asking {
            title: "Retire the alias",
            path: "/aliases/retire",
            fields: &[("address", address)],
        },
        |n| format!("Retire it and lock out {n} device(s)"),
    )
}

fn lockout_hint(n: usize, what: &str) -> Markup {
    html! {
        @if n > 0 { span.hint.warn { (what) " now would affect " strong { (n) } " phone" @if n != 1 { "s" } " (you will be asked to confirm)." } }
    }
}

/// Regenerating the address and the aliases still answered.
pub fn address_block(ctx: &Ctx, v: &AccountView) -> Markup {
    let base = base(&v.account);
    html! {
        @if v.can_manage {
            form.inline method="post" action=(format!("{base}/address")) {
                (csrf_field(&ctx.csrf))
                button.secondary type="submit" { "Regenerate the service address" }
            }
            span.hint { "The current address stays answered as an alias until every phone that used it has moved to the new one." }
            @if let Some(i) = &v.impacts { (lockout_hint(i.new_address.locked_out, "Phones Auto-Sync cannot move would stay on the alias; retiring it")) }
        }
        @if !v.aliases.is_empty() {
            h3 { "Former addresses (aliases)" }
            table.list {
                thead { tr { th { "Address" } th { "Since" } th.num { "Phones still on it" } th { "State" } th {} } }
                tbody {
                    @for al in &v.aliases {
                        tr {
                            td { code { (al.address) } }
                            td { (when(Some(al.created_at))) }
                            td.num { (al.holders) }
                            td { @if let Some(t) = al.retired_at { "retired " (when(Some(t))) } @else { "answered" } }
                            td.ops {
                                @if v.can_manage && al.retired_at.is_none() {
                                    form.inline method="post" action=(format!("{base}/aliases/retire")) {
                                        (csrf_field(&ctx.csrf))
                                        input type="hidden" name="address" value=(al.address);
                                        button.link.danger type="submit" { "Retire now" }
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

/// Provisioning on/off and the server credentials.
pub fn provisioning_block(ctx: &Ctx, v: &AccountView, form: &CredentialsForm<'_>) -> Markup {
    let a = &v.account;
    let base = base(a);
    let enabled = v.settings.provisioning_enabled;
    let problems = form.problems;
    html! {
        section.panel #provisioning {
            h2 { "Device Provisioning" }
            @if enabled {
                p { "Provisioning is " strong { "enabled" } ": phones get their configuration from this account." }
            } @else {
                p { "Provisioning is " strong { "disabled" } ": every request of this account's phones is refused; they keep working with what they have. Auto-Sync is off." }
            }
            @if v.can_manage {
                form.inline method="post" action=(format!("{base}/provisioning")) {
                    (csrf_field(&ctx.csrf))
                    @if enabled {
                        input type="hidden" name="enabled" value="off";
                        button.danger type="submit" { "Disable provisioning" }
                    } @else {
                        input type="hidden" name="enabled" value="on";
                        button type="submit" { "Enable provisioning" }
                    }
                }
                @if let (true, Some(i)) = (enabled, &v.impacts) { (lockout_hint(i.disable.locked_out, "Disabling")) }
            }
            h3 { "Server credentials" }
            table.kv {
                tr { th { "Server user" } td { (a.device_user.as_deref().unwrap_or("(not set)")) } }
                tr { th { "Password" } td { @if a.device_password.is_some() { "set" } @else { "(not set)" } } }
                tr { th { "Credential generation" } td { (a.credential_generation) } }
            }
            @if v.can_manage {
                form.credentials method="post" action=(format!("{base}/credentials")) {
                    (csrf_field(&ctx.csrf))
                    fieldset disabled[!enabled] {
                        legend { "Edit server credentials" }
                        @if !enabled { p.hint { "Enable provisioning to edit the server credentials." } }
                        (views::problems(problems))
                        div.grid {
                            (Field::text("Server user", "user", form.user, problems).required())
                            (Field::text("New password", "password", "", problems).kind("password").required().hint("8 to 128 characters; it is not shown after saving"))
                            (Field::text("Repeat the password", "repeat_password", "", problems).kind("password").required())
                            (Field::text("Grace window (days)", "grace_days", form.grace_days, problems).kind("number").hint(&grace_hint(v)))
                        }
                        label.check {
                            input type="checkbox" name="compromised" value="on" checked[form.compromised];
                            "Compromised rotation: the old credentials leaked, accept them from no phone any more"
                        }
                        @if let Some((n, phones)) = form.confirm {
                            div.warning role="alert" {
                                (crate::http::admin::views::widgets::affected(n, phones))
                                label.check { input type="checkbox" name="confirm" value="yes"; "I understand: go ahead" }
                                p.hint { "Enter the password twice again, tick the box and update." }
                            }
                        }
                        @if let (true, None, Some(i)) = (enabled, form.confirm, &v.impacts) { (lockout_hint(i.rotate.locked_out, "Changing the credentials")) }
                        div.actions { button type="submit" { "Update" } }
                    }
                }
            }
        }
    }
}

fn grace_hint(v: &AccountView) -> String {
    format!(
        "empty: the account's window ({} days); phones holding the current credentials are sent the new ones meanwhile",
        v.settings.grace_days
    )
}

/// The Auto-Sync switch and its options.
/// Whether TFTP serves the account credential, and what that exposes.
pub fn tftp_block(ctx: &Ctx, v: &AccountView) -> Markup {
    let base = base(&v.account);
    let on = v.account.tftp_credential;
    html! {
        section.panel #tftp {
            h2 { "Account credential over TFTP" }
            p.hint { "TFTP has no authentication. By default it serves phones only what an unknown phone gets (the master and staging files) and firmware, never a secret. On: this account's associated phones booting over TFTP also get their files without secrets but with the move to HTTP(S) and the server credentials, so they can leave TFTP." }
            @if on {
                p.error { "On: the server credentials are served over TFTP, so anyone on the networks TFTP answers can read them — they are as exposed as in DHCP option 160. No SIP password and no device's own credential is ever served over TFTP." }
            }
            form.switch-form method="post" action=(format!("{base}/tftp-credential")) {
                (csrf_field(&ctx.csrf))
                (switch("enabled", on, "Serve the server credentials over TFTP", !v.can_manage))
                @if v.can_manage { button type="submit" { "Apply" } }
            }
        }
    }
}

/// Whether the factory FTP login is accepted, and that FTP sends credentials in clear.
pub fn ftp_block(ctx: &Ctx, v: &AccountView) -> Markup {
    let base = base(&v.account);
    let on = v.account.ftp_factory_login;
    html! {
        section.panel #ftp {
            h2 { "FTP" }
            p.error { "FTP sends user names, passwords and files in clear: anyone on the path between a phone and this server can read the server credentials a phone logs in with. Use FTP to move phones to HTTPS (the files served over FTP name device HTTP), not as the way they stay." }
            p.hint { "Phones at factory settings log in with Polycom's factory login (PlcmSpIp). Accepted, it gets only what an unknown phone gets and, for this account's associated phones, their files without any SIP password but with the server credentials and the move to HTTP(S); it stores nothing. The FTP listener itself is set in the configuration ([ftp], off by default)." }
            form.switch-form method="post" action=(format!("{base}/ftp-factory-login")) {
                (csrf_field(&ctx.csrf))
                (switch("enabled", on, "Accept the factory FTP login", !v.can_manage))
                @if v.can_manage { button type="submit" { "Apply" } }
            }
        }
    }
}

/// The account's SIP check-sync settings: request validation (with what it costs), apply
/// after a change, the online check.
pub fn sip_block(ctx: &Ctx, v: &AccountView) -> Markup {
    let base = base(&v.account);
    let sip = v.account.sip;
    html! {
        section.panel #sip {
            h2 { "Apply now (SIP check-sync)" }
            p.hint { "By default phones accept check-sync from any host: anyone on the voice network can make them fetch their configuration. Request validation makes them accept it only with a Digest answer computed from their line's credentials, which zerotouch sends to a phone's proven address." }
            @if sip.validation {
                p.error { "Request validation is on: check-sync from the PBX now needs the PBX to authenticate (Digest with the line's credentials), and phones with no registered line cannot be reached this way." }
            }
            form method="post" action=(format!("{base}/sip")) {
                (csrf_field(&ctx.csrf))
                label.check { input type="checkbox" name="validation" value="on" checked[sip.validation] disabled[!v.can_manage]; "Phones accept check-sync only with Digest (request validation)" }
                label.check { input type="checkbox" name="apply_after_change" value="on" checked[sip.apply_after_change] disabled[!v.can_manage]; "After a change that affects devices, apply it now (otherwise: wait for the next poll). Phones the change restarts always wait for their next poll or an apply-now you confirm." }
                label.check { input type="checkbox" name="online_check" value="on" checked[sip.online_check] disabled[!v.can_manage]; "Keep the online state current with a background OPTIONS check" }
                @if v.can_manage { div.actions { button type="submit" { "Save" } } }
            }
        }
    }
}

pub fn autosync_block(ctx: &Ctx, v: &AccountView) -> Markup {
    let base = base(&v.account);
    let s = &v.settings;
    let locked = !v.can_manage || !s.provisioning_enabled;
    html! {
        section.panel #autosync {
            h2 { "Auto-Sync Credentials with Devices" }
            p.hint { "On: every supported phone of the account is sent the server credentials and this address (UCS: server type, boot server Static; HTTPS once its CA is confirmed), and new credentials reach phones at their next poll. Off: no rollback; phones not yet synced are no longer accepted with their old credentials." }
            form.switch-form method="post" action=(format!("{base}/autosync")) {
                (csrf_field(&ctx.csrf))
                (switch("enabled", s.enabled, "Auto-Sync Credentials with Devices", locked))
                @if !locked { button type="submit" { "Apply" } }
            }
            @if !s.provisioning_enabled { p.hint { "Enable provisioning to turn Auto-Sync on." } }
            (poly_os_auth_note(&v.poly_os, s.poly_os))
            @if let (true, Some(i)) = (s.enabled, &v.impacts) { (lockout_hint(i.autosync_off.locked_out, "Turning Auto-Sync off")) }
            p { a href=(format!("{base}/autosync")) { "Progress: " (v.synced) " synced, " (v.pending) " pending, " (v.locked_out) " locked out" } " · re-admit and the report of phones that never came back" }
            @if v.can_manage {
                form method="post" action=(format!("{base}/autosync/options")) {
                    (csrf_field(&ctx.csrf))
                    fieldset {
                        legend { "Options" }
                        div.grid {
                            (Field::text("Grace window (days)", "grace_days", &s.grace_days.to_string(), &[]).kind("number").hint("how long older credentials stay accepted after a change (0 to 365)"))
                            (Field::text("Seen within (days)", "seen_days", &s.seen_days.to_string(), &[]).kind("number").hint("phones not seen for longer get no older credentials (1 to 3650)"))
                        }
                        label.check { input type="checkbox" name="poly_os" value="on" checked[s.poly_os]; "Sync Poly OS devices too (their parameter names are not verified on a device)" }
                        div.actions { button.secondary type="submit" { "Save options" } }
                    }
                }
            } @else {
                p.muted { "Grace window " (s.grace_days) " days · seen within " (s.seen_days) " days · Poly OS " (if s.poly_os { "on" } else { "off" }) }
            }
        }
    }
}
