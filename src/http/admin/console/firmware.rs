//! The Firmware pages: the catalogue (versions per model family, every release with the
//! models and part numbers it covers and the profiles that use it), the upload of a
//! release zip (streamed to disk by the connection loop), a release's files with their
//! checksums, deletion (refused while profiles use the version), and the rollout view:
//! how many devices of each model run which version.
//!
//! Versions appear in URLs unencoded: they hold only letters, digits, `.`, `_` and `-`
//! (`profile::check_version`, enforced at import).

use maud::{Markup, html};
use rouille::{Request, Response};

use super::{Console, Ctx, Form, done, html_page, notice_of, percent_encode};
use crate::actions::firmware::{import, rollout};
use crate::datadir::DataDirs;
use crate::db::firmware as fq;
use crate::domain::firmware::Release;
use crate::domain::polycom::models::Family;
use crate::domain::users::Action;
use crate::error::{Error, FieldError, Result};
use crate::http::admin::views::{self, csrf_field, when};

fn firmware_dir(c: &Console) -> std::path::PathBuf {
    DataDirs::under(&c.config().data_dir).firmware
}

fn families(r: &Release) -> String {
    r.families
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn page(c: &Console, ctx: &Ctx, req: &Request) -> Result<Response> {
    Ok(html_page(200, catalogue(c, ctx, &[], notice_of(req))?))
}

fn catalogue(
    c: &Console,
    ctx: &Ctx,
    problems: &[FieldError],
    notice: Option<&str>,
) -> Result<Markup> {
    let conn = c.conn()?;
    let releases = crate::actions::firmware::list(&conn)?;
    let by_family = crate::actions::firmware::versions_by_family(&conn)?;
    let mut users = Vec::new();
    for r in &releases {
        users.push(fq::list_profiles_using(&conn, &r.version)?);
    }
    let can = ctx.user.require(Action::ManageAssets).is_ok();
    let limit = c.config().limits.firmware_upload_bytes;
    Ok(views::page(
        "Firmware",
        &ctx.nav("firmware"),
        html! {
            h1 { "Firmware catalogue" }
            (views::notice(notice))
            (views::problems(problems))
            p.muted { "UC Software releases phones update to. A profile names one version per model family; the master file then gives each model of that family "
                code { "APP_FILE_PATH_<MODEL>" } ". " a href="/firmware/rollout" { "Rollout: which devices run which version" } }
            h2 { "Versions per model family" }
            @if by_family.is_empty() {
                p.muted { "No release imported yet." }
            } @else {
                table.kv.families {
                    @for (family, versions) in &by_family {
                        tr { th { (family.name()) } td { @for (i, v) in versions.iter().enumerate() { @if i > 0 { ", " } a href=(format!("/firmware/{}", v)) { (v) } } } }
                    }
                }
            }
            @if !releases.is_empty() {
                h2 { "Releases" }
                table.list.releases {
                    thead { tr { th { "Version" } th { "Families" } th { "Layout" } th { "Models" } th.num { "Files" } th.num { "MB" } th { "Check" } th { "Used by" } th { "Imported" } th {} } }
                    tbody {
                        @for (r, used) in releases.iter().zip(&users) {
                            tr {
                                td { a href=(format!("/firmware/{}", r.version)) { code { (r.version) } } }
                                td { (families(r)) }
                                td { (r.layout.as_str()) }
                                td {
                                    @for (fam, models) in r.models() { span.hint { (fam.name()) ": " (models.join(", ")) } br; }
                                    @if r.has_combined_image() { span.hint { "sip.ld: every " (families(r)) " model" } br; }
                                    @if !r.unknown_parts().is_empty() { span.hint { "unknown part numbers: " (r.unknown_parts().join(", ")) } }
                                }
                                td.num { (r.files.len()) }
                                td.num { (format!("{:.1}", r.bytes() as f64 / 1_048_576.0)) }
                                td { @if r.damaged().is_empty() { span.badge.complete { "ok" } } @else { span.badge.bad { (r.damaged().len()) " damaged" } } }
                                td { @if used.is_empty() { span.muted { "--" } } @else { (used.iter().map(|(p, f)| format!("{p} ({f})")).collect::<Vec<_>>().join(", ")) } }
                                td { (when(Some(r.imported_at))) }
                                td { @if can { a href=(format!("/firmware/{}/delete", r.version)) { "Delete" } } }
                            }
                        }
                    }
                }
            }
            @if can {
                h2 { "Import a release" }
                form.editor method="post" action="/firmware" enctype="multipart/form-data" {
                    (csrf_field(&ctx.csrf))
                    fieldset {
                        legend { "UC Software release zip" }
                        div.field.invalid[problems.iter().any(|p| p.field == "file")] {
                            label for="file" { "Release zip *" }
                            input id="file" name="file" type="file" accept=".zip,application/zip" required;
                            span.hint { "As Polycom ships it, split (" code { "<part number>.sip.ld" } ") or combined (" code { "sip.ld" } "), with " code { "sip.ver" } ". Up to "
                                (limit / 1_048_576) " MiB; a folder can be imported with " code { "zerotouch firmware import FOLDER" } "." }
                        }
                        div.field.invalid[problems.iter().any(|p| p.field == "family")] {
                            label { "Model family" }
                            div.checks {
                                @for fam in Family::ALL.iter().filter(|f| f.is_ucs()) {
                                    label.check { input type="checkbox" name="family" value=(fam.name()); " " (fam.name()) } " "
                                }
                            }
                            span.hint { "Only needed when the images do not say: a combined sip.ld, or part numbers zerotouch does not know." }
                        }
                        div.field.invalid[problems.iter().any(|p| p.field == "version")] {
                            label for="version" { "Version" }
                            input id="version" name="version" type="text" autocomplete="off";
                            span.hint { "Only needed when the release has no sip.ver, e.g. 5.9.8.1234." }
                        }
                    }
                    div.actions { button type="submit" { "Import" } }
                }
            }
        },
    ))
}

pub fn upload(c: &Console, ctx: &Ctx, f: &Form) -> Result<Response> {
    ctx.user.require(Action::ManageAssets)?;
    let Some(file) = f.stored("file") else {
        let p = [FieldError::new("file", "choose a release zip to upload")];
        return Ok(html_page(422, catalogue(c, ctx, &p, None)?));
    };
    let families = match import::parse_families(
        &f.all("family")
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>(),
    ) {
        Ok(x) => x,
        Err(Error::Invalid(p)) => return Ok(html_page(422, catalogue(c, ctx, &p, None)?)),
        Err(e) => return Err(e),
    };
    let opts = import::ImportOptions {
        families,
        version: Some(f.get("version").trim().to_string()).filter(|v| !v.is_empty()),
        source: file.file_name.clone(),
        imported_by: ctx.user.username.clone(),
        max_bytes: c.config().limits.firmware_upload_bytes,
    };
    let mut conn = c.conn()?;
    match import::import_zip(&mut conn, &firmware_dir(c), &file.path, &opts) {
        Ok(r) => Ok(done(
            &format!("/firmware/{}", r.version),
            "firmware-imported",
        )),
        Err(Error::Invalid(p)) => Ok(html_page(422, catalogue(c, ctx, &p, None)?)),
        Err(Error::Conflict(m)) => Ok(html_page(
            409,
            catalogue(c, ctx, &[FieldError::new("file", m)], None)?,
        )),
        Err(e) => Err(e),
    }
}

pub fn show(c: &Console, ctx: &Ctx, version: &str, req: &Request) -> Result<Response> {
    let conn = c.conn()?;
    let r = crate::actions::firmware::release(&conn, version)?;
    let used = fq::list_profiles_using(&conn, version)?;
    let can = ctx.user.require(Action::ManageAssets).is_ok();
    Ok(html_page(
        200,
        views::page(
            &format!("Firmware {version}"),
            &ctx.nav("firmware"),
            html! {
                h1 { "Firmware " code { (r.version) } }
                (views::notice(notice_of(req)))
                table.kv {
                    tr { th { "Families" } td { (families(&r)) } }
                    tr { th { "Layout" } td { (r.layout.as_str()) @if r.has_combined_image() { " (sip.ld serves every model of these families)" } } }
                    @for (fam, models) in r.models() { tr { th { (fam.name()) " models" } td { (models.join(", ")) } } }
                    @if !r.unknown_parts().is_empty() {
                        tr { th { "Unknown part numbers" } td { (r.unknown_parts().join(", ")) span.hint { " Not in the part table (verify); served to phones that ask for them." } } }
                    }
                    tr { th { "Imported" } td { (when(Some(r.imported_at))) " by " (r.imported_by) " from " code { (r.source) } } }
                    tr { th { "Used by profiles" } td { @if used.is_empty() { "--" } @else { (used.iter().map(|(p, f)| format!("{p} ({f})")).collect::<Vec<_>>().join(", ")) } } }
                    tr { th { "Phones fetch" } td { code { "firmware/" (r.version) "/sip.ld" } ", prefixed with their part number" } }
                }
                @if !r.damaged().is_empty() {
                    div.errors { (r.damaged().len()) " file(s) no longer match their checksum or are missing; they are not served. Delete the release and import it again." }
                }
                h2 { "Files" }
                table.list {
                    thead { tr { th { "File" } th { "Part number" } th { "Model" } th.num { "Bytes" } th { "SHA-256" } th { "Check" } } }
                    tbody {
                        @for f in &r.files {
                            tr {
                                td { code { (f.path) } }
                                td { (f.part_number.as_deref().unwrap_or("")) }
                                td { (f.model.as_deref().unwrap_or(if f.part_number.is_some() { "unknown" } else { "" })) }
                                td.num { (f.size) }
                                td { code { (f.sha256.get(..16).unwrap_or(&f.sha256)) "…" } }
                                td { @if f.status.servable() { span.badge.complete { (f.status.as_str()) } } @else { span.badge.bad { (f.status.as_str()) } } }
                            }
                        }
                    }
                }
                @if can { p { a.button.danger href=(format!("/firmware/{}/delete", r.version)) { "Delete this release" } } }
                p { a href="/firmware" { "Back to the catalogue" } }
            },
        ),
    ))
}

pub fn confirm_delete(c: &Console, ctx: &Ctx, version: &str) -> Result<Response> {
    ctx.user.require(Action::ManageAssets)?;
    let conn = c.conn()?;
    let r = crate::actions::firmware::release(&conn, version)?;
    let used = fq::list_profiles_using(&conn, version)?;
    Ok(html_page(
        200,
        views::page(
            "Delete firmware",
            &ctx.nav("firmware"),
            html! {
                h1 { "Delete firmware " (r.version) "?" }
                @if !used.is_empty() {
                    div.errors { "This version is used by "
                        @for (i, (p, f)) in used.iter().enumerate() { @if i > 0 { ", " } "profile " a href=(format!("/profiles/{}", percent_encode(p))) { (p) } " (" (f) ")" }
                        "; it cannot be deleted until those profiles name another version." }
                } @else {
                    p { "The release's " (r.files.len()) " files leave the disk. Phones that were told to fetch it keep their software." }
                    form method="post" action=(format!("/firmware/{}/delete", version)) {
                        (csrf_field(&ctx.csrf))
                        button.danger type="submit" { "Delete firmware" } " " a href="/firmware" { "Cancel" }
                    }
                }
            },
        ),
    ))
}

pub fn delete(c: &Console, ctx: &Ctx, version: &str) -> Result<Response> {
    ctx.user.require(Action::ManageAssets)?;
    let mut conn = c.conn()?;
    crate::actions::firmware::delete(&mut conn, &firmware_dir(c), version)?;
    Ok(done("/firmware", "firmware-deleted"))
}

pub fn rollout_page(c: &Console, ctx: &Ctx) -> Result<Response> {
    let conn = c.conn()?;
    let rows = rollout::rollout(&conn)?;
    Ok(html_page(
        200,
        views::page(
            "Firmware rollout",
            &ctx.nav("firmware"),
            html! {
                h1 { "Firmware rollout" }
                p.muted { "Associated devices by model and the version they last reported (from " code { "Type/Application" } " requests), against the version their profile names for the model's family. A device that is behind updates at its next reboot or poll; one on a newer version goes back to the profile's (downgrade pending). Both need an image for the model in the profile's release: without one the phone keeps its version (no image)." }
                @if rows.is_empty() { p.muted { "No associated devices." } } @else {
                    table.list.rollout {
                        thead { tr { th { "Family" } th { "Model" } th.num { "Devices" } th { "Profile version" } th.num { "On it" } th.num { "Behind" } th.num { "Downgrade pending" } th.num { "No image for model" } th.num { "No version set" } th { "Versions running" } } }
                        tbody {
                            @for r in &rows {
                                tr {
                                    td { (r.family) } td { (r.model) } td.num { (r.devices) }
                                    td { @if r.targets.is_empty() { "--" } @else { (r.targets.join(", ")) } }
                                    td.num { (r.current) }
                                    td.num { @if r.behind > 0 { span.badge.partial { (r.behind) } } @else { "0" } }
                                    td.num { @if r.downgrade > 0 { span.badge.partial { (r.downgrade) } } @else { "0" } }
                                    td.num { @if r.no_image > 0 { span.badge.bad { (r.no_image) } } @else { "0" } }
                                    td.num { (r.no_target) }
                                    td { @for (i, (v, n)) in r.versions.iter().enumerate() { @if i > 0 { ", " } code { (v) } " ×" (n) } }
                                }
                            }
                        }
                    }
                }
                p { a href="/firmware" { "Back to the catalogue" } }
            },
        ),
    ))
}
