//! Export and import of the whole installation from the console (`/transfer`, admins):
//! every account with its archive, the provisioning settings and the custom variables
//! (`actions::transfer::installation`). Secrets only when the admin ticks the box, sealed
//! with the passphrase typed beside it; an upload is checked whole and applied in one
//! transaction, every bad record named, with a dry run.

use maud::{Markup, html};
use rouille::Response;

use super::{Console, Ctx, Form, html_page};
use crate::actions::transfer::{ImportReport, installation as whole, seal};
use crate::domain::users::Action;
use crate::error::{Error, FieldError, Result};
use crate::http::admin::views::{self, csrf_field};

/// `GET /transfer`.
pub fn page(ctx: &Ctx) -> Result<Response> {
    ctx.user.require(Action::ManageSettings)?;
    Ok(html_page(200, installation_page(ctx, None, &[])))
}

fn installation_page(ctx: &Ctx, report: Option<&ImportReport>, problems: &[FieldError]) -> Markup {
    let body = html! {
        h1 { "Export / import · the whole installation" }
        div.columns {
            section.panel {
                h2 { "Export" }
                p.hint { "Every account (its profiles with their files, devices, lines, sites, groups, policies, deliberate names and settings), the provisioning settings and the custom variables, as one JSON archive. Import it into this or a new server." }
                form method="post" action="/transfer/export" {
                    (csrf_field(&ctx.csrf))
                    label.check { input type="checkbox" name="include_secrets" value="on"; "Include secrets, sealed with a passphrase" }
                    div.field {
                        label for="export-passphrase" { "Passphrase (at least 12 characters)" }
                        input id="export-passphrase" type="password" name="passphrase" autocomplete="new-password";
                    }
                    div.actions { button type="submit" { "Download" } }
                }
            }
            section.panel {
                h2 { "Import" }
                p.hint { "Creates the accounts it does not find; adds and updates. Nothing is written unless the whole file is valid." }
                @if let Some(r) = report {
                    div.notice role="status" {
                        @if r.dry_run { strong { "Dry run: nothing was written." } " Importing would give:" } @else { strong { "Imported." } }
                        ul {
                            li { "accounts created: " (r.accounts_created) }
                            li { "profiles: " (r.profiles_created) " created, " (r.profiles_updated) " updated" }
                            li { "custom variables set: " (r.variables_set) }
                            li { "devices: " (r.devices_created) " created, " (r.devices_updated) " updated" }
                            li { "policy values set: " (r.policies_set) }
                            li { "secrets kept as stored: " (r.secrets_kept) }
                        }
                    }
                }
                (views::problems(problems))
                form method="post" action="/transfer/import" enctype="multipart/form-data" {
                    (csrf_field(&ctx.csrf))
                    div.field {
                        label for="file" { "File (.json)" }
                        input id="file" type="file" name="file" accept=".json,application/json" required;
                    }
                    div.field {
                        label for="import-passphrase" { "Passphrase (for a file with sealed secrets)" }
                        input id="import-passphrase" type="password" name="passphrase" autocomplete="off";
                    }
                    label.check { input type="checkbox" name="dry_run" value="on"; "Dry run: check and count, write nothing" }
                    div.actions { button type="submit" { "Import" } }
                }
            }
        }
    };
    views::page("Export / import · installation", &ctx.nav("accounts"), body)
}

/// `POST /transfer/export`: the download.
pub fn post_export(c: &Console, ctx: &Ctx, f: &Form) -> Result<Response> {
    ctx.user.require(Action::ManageSettings)?;
    let secrets = f.checked("include_secrets");
    let mut i = whole::export(&*c.conn()?, secrets)?;
    if secrets {
        whole::seal(&mut i, &seal::passphrase_from(f.get("passphrase"))?)?;
    }
    Ok(
        Response::from_data("application/json", whole::to_json(&i)?).with_additional_header(
            "Content-Disposition",
            "attachment; filename=\"zerotouch-installation.json\"",
        ),
    )
}

/// `POST /transfer/import`: the upload, checked whole.
pub fn post_import(c: &Console, ctx: &Ctx, f: &Form) -> Result<Response> {
    ctx.user.require(Action::ManageSettings)?;
    let parsed = (|| {
        let file = f
            .files("file")
            .next()
            .ok_or_else(|| Error::invalid("file", "choose a file to import"))?;
        let text = std::str::from_utf8(&file.bytes)
            .map_err(|_| Error::invalid("file", "is not UTF-8 text"))?;
        let mut i = whole::parse_json(text)?;
        let pass = Some(f.get("passphrase")).filter(|p| !p.is_empty());
        whole::open(&mut i, pass)?;
        Ok(i)
    })();
    let actor = c.actor(&ctx.user, &ctx.account);
    let result =
        parsed.and_then(|i| whole::import(&mut *c.conn()?, &actor.who, &i, f.checked("dry_run")));
    match result {
        Ok(report) => Ok(html_page(200, installation_page(ctx, Some(&report), &[]))),
        Err(Error::Invalid(p)) => Ok(html_page(422, installation_page(ctx, None, &p))),
        Err(e) => Err(e),
    }
}
