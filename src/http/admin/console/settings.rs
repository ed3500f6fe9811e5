//! The provisioning settings page (admins only): server address and protocol, per-protocol
//! credentials, Local or External (DMS) mode, SIP and infrastructure servers, the file
//! transport of External mode, and External mode's "generate and push now".
//!
//! Secrets are never sent back to the browser: a secret field is empty with "set" beside
//! it; leaving it empty keeps the stored value, "Clear" removes it. The whole form is one
//! `templating::update_settings` (every problem named by field, then the S3 connectivity
//! check, then one transaction with its audit entry).

use std::time::Duration;

use maud::{Markup, html};
use rouille::{Request, Response};

use super::{Console, Ctx, Form, done, html_page, notice_of};
use crate::actions::templating;
use crate::domain::settings::{FIELDS, Mode, PROTOCOLS, ProvSettings};
use crate::domain::users::Action;
use crate::error::{Error, FieldError, Result};
use crate::external::{self, manual::PushRun};
use crate::http::admin::views::{self, Field, csrf_field, select, when};

/// The three pages about templates share a second row of links.
pub fn subnav(active: &str) -> Markup {
    let links = [
        ("settings", "/settings", "Provisioning settings"),
        ("variables", "/variables", "Template variables"),
        ("preview", "/preview", "Preview"),
    ];
    html! {
        nav.subnav aria-label="provisioning" {
            @for (key, href, label) in links {
                a href=(href) class=@if key == active { "active" } { (label) }
            }
        }
    }
}

/// What a person reads about External mode wherever it is on.
pub fn external_note(s: &ProvSettings, dir: &std::path::Path) -> Markup {
    html! {
        div.warning role="note" {
            strong { "External mode." }
            " Configuration files are generated to " code { (dir.display()) "/<model>/" }
            " for the device management system at "
            code { (s.external_protocol) "://" (s.external_server) (s.external_path) }
            ". Phones download them from the DMS, so device requests, the access log and Auto-Sync do not apply to them."
        }
    }
}

/// Field labels, in `FIELDS` order; the help text comes from `FIELDS`.
fn label(name: &str) -> &'static str {
    match name {
        "server_address" => "Management server address",
        "default_protocol" => "Default protocol",
        "http_user" => "HTTP/HTTPS/TFTP user",
        "http_password" => "HTTP/HTTPS/TFTP password",
        "ftp_user" => "FTP/FTPS user",
        "ftp_password" => "FTP/FTPS password",
        "external_server" => "DMS server",
        "external_protocol" => "DMS protocol",
        "external_path" => "DMS path",
        "external_user" => "DMS user",
        "external_password" => "DMS password",
        "external_firmware_server" => "Firmware server",
        "registrar" => "SIP registrar",
        "registrar_backup" => "Backup registrar",
        "sip_proxy" => "SIP proxy",
        "sip_proxy_backup" => "Backup SIP proxy",
        "ntp_server" => "NTP server",
        "script_path" => "Script path",
        "script_timeout_secs" => "Script timeout (seconds)",
        "s3_endpoint" => "S3 endpoint",
        "s3_bucket" => "Bucket",
        "s3_access_key" => "Access key",
        "s3_secret_key" => "Secret key",
        "s3_region" => "Region",
        "s3_prefix" => "Key prefix",
        _ => "",
    }
}

/// The help text of `FIELDS` without what the form already says: the section ("external
/// mode: ", "S3 transport: ") and the field's own label.
fn help(name: &str) -> &'static str {
    let text = FIELDS
        .iter()
        .find(|f| f.name == name)
        .map(|f| f.help)
        .unwrap_or("");
    let text = ["external mode: ", "script transport: ", "S3 transport: "]
        .iter()
        .find_map(|p| text.strip_prefix(p))
        .unwrap_or(text);
    let label = label(name);
    match text.get(..label.len()) {
        Some(head) if head.eq_ignore_ascii_case(label) => {
            text[label.len()..].trim_start_matches(';').trim_start()
        }
        _ => text,
    }
}

/// A text field of the form; a secret one is never filled in.
fn field(s: &ProvSettings, name: &'static str, problems: &[FieldError]) -> Markup {
    if !crate::domain::settings::is_secret_field(name) {
        let value = s.get(name).unwrap_or_default();
        return html! { (Field::text(label(name), name, &value, problems).hint(help(name))) };
    }
    let set = !s.get(name).unwrap_or_default().is_empty();
    let error = problems.iter().find(|e| e.field == name);
    html! {
        div.field.invalid[error.is_some()] {
            label for=(name) { (label(name)) " " @if set { span.badge.complete { "set" } } @else { span.badge { "not set" } } }
            input id=(name) name=(name) type="password" value="" autocomplete="new-password"
                placeholder=@if set { "leave empty to keep" } @else { "" };
            @if let Some(e) = error { span.error { (e.message) } }
            @if set {
                label.check { input type="checkbox" name=(format!("clear_{name}")); " Clear" }
            }
            span.hint { (help(name)) }
        }
    }
}

fn fieldset(s: &ProvSettings, legend: &str, names: &[&'static str], p: &[FieldError]) -> Markup {
    html! {
        fieldset {
            legend { (legend) }
            div.grid { @for n in names { (field(s, n, p)) } }
        }
    }
}

fn push_status(run: &PushRun) -> Markup {
    html! {
        table.kv {
            tr { th { "Started" } td { (when(Some(run.started_at))) " by " (run.started_by) } }
            tr { th { "Transport" } td { (run.transport) } }
            tr { th { "Devices" } td { (run.devices) " generated, " (run.changed) " with new or changed files" } }
            tr { th { "Pushed" } td {
                @match run.finished_at {
                    None => { (run.pushed + run.failures.len()) " of " (run.devices) ", under way (reload to follow)" }
                    Some(t) => { (run.pushed) " pushed, " (run.failures.len()) " failed; finished " (when(Some(t))) }
                }
            } }
            @if let Some(a) = &run.assets { tr { th { "Shared assets" } td { (a) } } }
        }
        @if !run.failures.is_empty() {
            table.list {
                thead { tr { th { "Device" } th { "What the transport said" } } }
                tbody { @for f in &run.failures { tr { td { code { (f.mac) } } td { pre.inline { (f.summary) } } } } }
            }
        }
    }
}

fn settings_page(
    c: &Console,
    ctx: &Ctx,
    s: &ProvSettings,
    stored: &ProvSettings,
    problems: &[FieldError],
    notice: Option<&str>,
    retype: bool,
) -> Response {
    let dir = c.config().external_dir();
    let modes = [
        ("local", "Local: zerotouch serves phones"),
        ("external", "External: generate files for a DMS"),
    ];
    let protocols: Vec<(&str, &str)> = PROTOCOLS.iter().map(|p| (*p, *p)).collect();
    let transports = [
        ("none", "None: files stay on disk"),
        ("script", "Custom script"),
        ("s3", "S3-compatible bucket"),
    ];
    let last = c.push.last();
    html_page(
        if problems.is_empty() { 200 } else { 422 },
        views::page(
            "Provisioning settings",
            &ctx.nav("settings"),
            html! {
                (subnav("settings"))
                h1 { "Provisioning settings" }
                (views::notice(notice))
                @if stored.mode == Mode::External { (external_note(stored, &dir)) }
                (views::problems(problems))
                @if retype {
                    div.warning role="note" { "Nothing was saved. Passwords and keys you typed are never sent back to the browser: type them again." }
                }
                form.settings method="post" action="/settings" {
                    (csrf_field(&ctx.csrf))
                    fieldset {
                        legend { "Mode and management server" }
                        div.grid {
                            (select("Mode", "mode", &modes, s.mode.as_str()))
                            (field(s, "server_address", problems))
                            (select("Default protocol", "default_protocol", &protocols, &s.default_protocol))
                        }
                        p.hint { "In External mode zerotouch does not serve the phones: device requests, the access log and Auto-Sync do not apply to them." }
                    }
                    (fieldset(s, "Credentials in provisioning URLs", &["http_user", "http_password", "ftp_user", "ftp_password"], problems))
                    fieldset {
                        legend { "External (DMS) mode" }
                        div.grid {
                            (field(s, "external_server", problems))
                            (select("DMS protocol", "external_protocol", &[("https", "https"), ("http", "http")], &s.external_protocol))
                            @for n in ["external_path", "external_user", "external_password", "external_firmware_server"] { (field(s, n, problems)) }
                        }
                    }
                    (fieldset(s, "SIP and infrastructure servers", &["registrar", "registrar_backup", "sip_proxy", "sip_proxy_backup", "ntp_server"], problems))
                    fieldset {
                        legend { "File transport (External mode)" }
                        div.grid { (select("Transport", "transport", &transports, s.transport.as_str())) }
                        h3 { "Script" }
                        div.grid { @for n in ["script_path", "script_timeout_secs"] { (field(s, n, problems)) } }
                        p.hint { "Runs with the generated file paths as arguments and PROV_MAC, PROV_TENANT, PROV_MODE, PROV_SERVER and PROV_MODEL_SEGMENT in its environment; it never delays a phone." }
                        h3 { "S3-compatible bucket" }
                        div.grid { @for n in ["s3_endpoint", "s3_bucket", "s3_access_key", "s3_secret_key", "s3_region", "s3_prefix"] { (field(s, n, problems)) } }
                        p.hint { "When saving with the S3 transport, zerotouch checks that the bucket answers; nothing is saved if it does not." }
                    }
                    div.actions { button type="submit" { "Save settings" } }
                }
                @if stored.mode == Mode::External {
                    h2 { "Generate and push now" }
                    p { "Files are generated and pushed by themselves after every change. This regenerates every device's files and pushes all of them through the "
                        strong { (stored.transport.as_str()) } " transport, changed or not." }
                    form method="post" action="/settings/push" {
                        (csrf_field(&ctx.csrf))
                        button type="submit" { "Generate and push now" }
                    }
                }
                @if let Some(run) = &last {
                    h3 { "Last generate-and-push run" }
                    (push_status(run))
                }
            },
        ),
    )
}

/// `GET /settings`
pub fn page(c: &Console, ctx: &Ctx, req: &Request) -> Result<Response> {
    ctx.user.require(Action::ManageSettings)?;
    let s = templating::load_settings(&*c.conn()?)?;
    Ok(settings_page(c, ctx, &s, &s, &[], notice_of(req), false))
}

/// The changes a submitted form asks for: every plain field as typed; a secret only when
/// typed (or cleared).
fn changes_of(f: &Form) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for info in FIELDS {
        let name = info.name;
        let value = f.get(name);
        if info.secret {
            if f.checked(&format!("clear_{name}")) {
                out.push((name.to_string(), String::new()));
            } else if !value.is_empty() {
                out.push((name.to_string(), value.to_string()));
            }
        } else {
            out.push((name.to_string(), value.to_string()));
        }
    }
    out
}

/// `POST /settings`
pub fn save(c: &Console, ctx: &Ctx, f: &Form) -> Result<Response> {
    ctx.user.require(Action::ManageSettings)?;
    let changes = changes_of(f);
    let timeout = Duration::from_secs(c.config().external.check_timeout_secs);
    let check = |s: &ProvSettings| external::check_settings(s, timeout);
    let who = c.actor(&ctx.user, &ctx.account).who;
    let mut conn = c.conn()?;
    match templating::update_settings(&mut conn, &who, &changes, &check) {
        Ok(_) => Ok(done("/settings", "settings-saved")),
        Err(Error::Invalid(problems)) => {
            // Show what was typed (never a secret), with every problem at its field; what is
            // in force (the note, the push button) stays what is stored.
            let stored = templating::load_settings(&conn)?;
            let mut shown = stored.clone();
            for (name, value) in &changes {
                if !crate::domain::settings::is_secret_field(name) {
                    let _ = shown.set(name, value);
                }
            }
            let typed_secret = changes
                .iter()
                .any(|(n, v)| crate::domain::settings::is_secret_field(n) && !v.is_empty());
            Ok(settings_page(
                c,
                ctx,
                &shown,
                &stored,
                &problems,
                None,
                typed_secret,
            ))
        }
        Err(e) => Err(e),
    }
}

/// `POST /settings/push`
pub fn push(c: &Console, ctx: &Ctx) -> Result<Response> {
    ctx.user.require(Action::ManageSettings)?;
    let who = c.actor(&ctx.user, &ctx.account).who;
    let mut conn = c.conn()?;
    let run = c.push.start(
        &conn,
        &c.config().data_dir,
        Duration::from_secs(c.config().external.upload_timeout_secs),
        &who.name,
    )?;
    templating::note_push(&mut conn, &who, run.devices)?;
    Ok(done("/settings", "push-started"))
}
