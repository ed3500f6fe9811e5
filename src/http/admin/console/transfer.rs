//! Export and import of an account's devices, sites, groups and policies from the console
//! (the Lens Auto-Sync page's "Export (Advanced Tools)"): a download as JSON or CSV, with
//! secrets only when an admin ticks the box, and an upload that is checked whole before
//! anything is written (every bad row named), with a dry run.
//!
//! Both are `actions::transfer` calls; the import records one audit entry with its counts.

use maud::{Markup, html};
use rouille::Response;

use super::accounts::tabs;
use super::{Console, Ctx, Form, html_page};
use crate::actions::transfer::{self, Format, ImportReport};
use crate::domain::account::Account;
use crate::domain::users::Action;
use crate::error::{Error, FieldError, Result};
use crate::http::admin::views::{self, csrf_field};

pub fn page(ctx: &Ctx, a: &Account) -> Result<Response> {
    Ok(html_page(200, transfer_page(ctx, a, None, &[])))
}

fn transfer_page(
    ctx: &Ctx,
    a: &Account,
    report: Option<&ImportReport>,
    problems: &[FieldError],
) -> Markup {
    let admin = ctx.user.require(Action::ManageAccounts).is_ok();
    let base = format!("/accounts/{}", a.slug);
    let body = html! {
        (tabs(a, "transfer"))
        h1 { "Export / import · " (a.name) }
        div.columns {
            section.panel {
                h2 { "Export" }
                @if ctx.user.require(Action::ManageSettings).is_ok() {
                    p { a href="/transfer" { "Export / import the whole installation" } }
                }
                p.hint { "JSON: the account's profiles with their files, associated devices (with their site, groups, lines and template values), sites, groups, policies, deliberate names and settings, and the custom variables. CSV: devices, sites, groups and policies. Importing the file again gives every device the same effective settings." }
                form method="post" action=(format!("{base}/export")) {
                    (csrf_field(&ctx.csrf))
                    div.checks {
                        label.check { input type="radio" name="format" value="json" checked; "JSON" }
                        label.check { input type="radio" name="format" value="csv"; "CSV (record, target, field, value)" }
                    }
                    @if admin {
                        label.check { input type="checkbox" name="include_secrets" value="on"; "Include secrets, sealed with a passphrase (JSON only)" }
                        div.field {
                            label for="export-passphrase" { "Passphrase (at least 12 characters)" }
                            input id="export-passphrase" type="password" name="passphrase" autocomplete="new-password";
                        }
                        span.hint { "Without secrets, an import keeps the secrets already stored." }
                    }
                    div.actions { button type="submit" { "Download" } }
                }
            }
            section.panel {
                h2 { "Import" }
                @if admin {
                    p.hint { "Adds and updates; deletes nothing except the listed devices' site and groups, which become what the file says. Nothing is written unless the whole file is valid." }
                    @if let Some(r) = report {
                        div.notice role="status" {
                            @if r.dry_run { strong { "Dry run: nothing was written." } " Importing would give:" } @else { strong { "Imported." } }
                            ul {
                                li { "profiles: " (r.profiles_created) " created, " (r.profiles_updated) " updated" }
                                li { "custom variables set: " (r.variables_set) }
                                li { "sites: " (r.sites_created) " created, " (r.sites_updated) " updated" }
                                li { "groups: " (r.groups_created) " created, " (r.groups_updated) " updated" }
                                li { "devices: " (r.devices_created) " created, " (r.devices_updated) " updated" }
                                li { "policy values set: " (r.policies_set) }
                                li { "secrets kept as stored: " (r.secrets_kept) }
                            }
                        }
                    }
                    (views::problems(problems))
                    form method="post" action=(format!("{base}/import")) enctype="multipart/form-data" {
                        (csrf_field(&ctx.csrf))
                        div.field {
                            label for="file" { "File (.json or .csv)" }
                            input id="file" type="file" name="file" accept=".json,.csv,application/json,text/csv" required;
                        }
                        (views::select("Format", "format", &[("auto", "by the file name"), ("json", "JSON"), ("csv", "CSV")], "auto"))
                        div.field {
                            label for="import-passphrase" { "Passphrase (for a file with sealed secrets)" }
                            input id="import-passphrase" type="password" name="passphrase" autocomplete="off";
                        }
                        label.check { input type="checkbox" name="dry_run" value="on"; "Dry run: check and count, write nothing" }
                        div.actions { button type="submit" { "Import" } }
                    }
                } @else {
                    p.muted { "Importing needs the admin role." }
                }
            }
        }
    };
    views::page(
        &format!("Export / import · {}", a.name),
        &ctx.nav("accounts"),
        body,
    )
}

pub fn post_export(c: &Console, ctx: &Ctx, a: &Account, f: &Form) -> Result<Response> {
    let secrets = f.checked("include_secrets");
    if secrets {
        ctx.user.require(Action::ManageAccounts)?;
    }
    let format = Format::parse(f.get("format"))?;
    let mut e = transfer::export(&*c.conn()?, a, secrets)?;
    if secrets {
        transfer::seal::seal(
            &mut e,
            &transfer::seal::passphrase_from(f.get("passphrase"))?,
        )?;
    }
    let text = transfer::write(format, &e)?;
    Ok(download(a, format, text))
}

/// A file download of an export.
pub fn download(a: &Account, format: Format, text: String) -> Response {
    let (kind, ext) = match format {
        Format::Json => ("application/json", "json"),
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
    };
    Response::from_data(kind, text).with_additional_header(
        "Content-Disposition",
        format!("attachment; filename=\"zerotouch-{}.{ext}\"", a.slug),
    )
}

pub fn post_import(c: &Console, ctx: &Ctx, a: &Account, f: &Form) -> Result<Response> {
    ctx.user.require(Action::ManageAccounts)?;
    let parsed = (|| {
        let file = f
            .files("file")
            .next()
            .ok_or_else(|| Error::invalid("file", "choose a file to import"))?;
        let format = match f.get("format") {
            "json" | "csv" => Format::parse(f.get("format"))?,
            _ if file.file_name.to_ascii_lowercase().ends_with(".csv") => Format::Csv,
            _ => Format::Json,
        };
        let text = std::str::from_utf8(&file.bytes)
            .map_err(|_| Error::invalid("file", "is not UTF-8 text"))?;
        let mut e = transfer::parse(format, text)?;
        let pass = Some(f.get("passphrase")).filter(|p| !p.is_empty());
        transfer::seal::open(&mut e, pass)?;
        Ok(e)
    })();
    let actor = c.actor(&ctx.user, &ctx.account);
    let result = parsed
        .and_then(|e| transfer::import(&mut *c.conn()?, &actor.who, a, &e, f.checked("dry_run")));
    match result {
        Ok(report) => Ok(html_page(200, transfer_page(ctx, a, Some(&report), &[]))),
        Err(Error::Invalid(p)) => Ok(html_page(422, transfer_page(ctx, a, None, &p))),
        Err(e) => Err(e),
    }
}
