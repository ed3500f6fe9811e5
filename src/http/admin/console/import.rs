//! Bulk Profile Association pages: the upload form (with dry run and an optional reference
//! ID), the job page with progress (it reloads itself while the job runs), and the
//! downloadable file of rejected lines with line numbers and reasons.

use maud::{Markup, html};
use rouille::{Request, Response};

use super::{Console, Ctx, Form, html_page, percent_encode};
use crate::actions::import::{self, ImportRequest};
use crate::db::jobs;
use crate::domain::csvimport;
use crate::domain::users::Action;
use crate::error::{Error, FieldError, Result};
use crate::http::admin::views::{self, Field, csrf_field, when};

/// The jobs table of the upload page and of a reference ID's page.
pub fn jobs_table(list: &[jobs::Job]) -> Markup {
    html! {
        table.list {
            thead { tr { th { "Job" } th { "File" } th { "Status" } th.num { "Lines" } th.num { "Applied" } th.num { "Rejected" } th { "By" } th { "Started" } } }
            tbody {
                @for j in list {
                    tr {
                        td { a href=(format!("/import/{}", j.id)) { "#" (j.id) } @if j.dry_run { " (dry run)" } }
                        td { (j.file_name) }
                        td { @if j.rejected_rows > 0 { a href=(format!("/import/{}/rejected.csv", j.id)) { (j.status) } } @else { (j.status) } }
                        td.num { (j.total_rows) } td.num { (j.applied_rows) } td.num { (j.rejected_rows) }
                        td { (j.username) } td { (when(Some(j.created_at))) }
                    }
                }
            }
        }
    }
}

pub fn import_form(c: &Console, ctx: &Ctx, req: &Request) -> Result<Response> {
    ctx.user.require(Action::Associate)?;
    let conn = c.conn()?;
    let recent =
        crate::actions::import::recent_jobs(&conn, &c.actor(&ctx.user, &ctx.account), None, 10)?;
    let reference_id = req.get_param("reference_id").unwrap_or_default();
    Ok(html_page(
        200,
        import_page(c, ctx, &reference_id, &recent, &[]),
    ))
}

fn import_page(
    c: &Console,
    ctx: &Ctx,
    reference_id: &str,
    recent: &[jobs::Job],
    problems: &[FieldError],
) -> Markup {
    views::page(
        "Bulk association",
        &ctx.nav("import"),
        html! {
            h1 { "Bulk Profile Association" }
            (views::problems(problems))
            p { "Upload a CSV file with one device per line, without quotes or a header: "
                code { "MAC, serial, vendor model, profile" } " then up to ten vendor extensions in this order: "
                (csvimport::COLUMNS[4..].join(", ")) ". Empty optional values are left as " code { ",," }
                "; spaces around values are ignored. At most " (c.config().console.csv_max_rows) " lines per file." }
            pre.example { "0000cafebabe,,,profile1\n0000cafe1234,0000CAFE1234,Polycom_UCS_Device,profile1,192.168.1.178,,,user,password" }
            form method="post" action="/import" enctype="multipart/form-data" {
                (csrf_field(&ctx.csrf))
                div.grid {
                    (Field::text("Reference ID (optional)", "reference_id", reference_id, problems).hint("link every device of the file to this reference ID"))
                    div.field.invalid[problems.iter().any(|p| p.field == "file")] {
                        label for="file" { "CSV file *" }
                        input id="file" name="file" type="file" accept=".csv,text/csv,text/plain" required;
                    }
                }
                label.check { input type="checkbox" name="dry_run"; " Dry run: check every line and report, without writing anything" }
                div.actions { button type="submit" { "Upload file" } }
            }
            @if !recent.is_empty() { h2 { "Recent jobs" } (jobs_table(recent)) }
        },
    )
}

pub fn post_import(c: &Console, ctx: &Ctx, f: &Form) -> Result<Response> {
    ctx.user.require(Action::Associate)?;
    let reference_id = f.get("reference_id").trim().to_string();
    let Some(upload) = f.files("file").next() else {
        return Ok(html_page(
            422,
            import_page(
                c,
                ctx,
                &reference_id,
                &[],
                &[FieldError::new("file", "choose a CSV file to upload")],
            ),
        ));
    };
    let req = ImportRequest {
        file_name: upload.file_name.clone(),
        reference_id: (!reference_id.is_empty()).then_some(reference_id.clone()),
        dry_run: f.checked("dry_run"),
        max_rows: c.config().console.csv_max_rows,
    };
    let conn = c.conn()?;
    let id = match import::create_job(&conn, &c.actor(&ctx.user, &ctx.account), &req) {
        Ok(id) => id,
        Err(Error::NotFound { what }) => {
            return Ok(html_page(
                422,
                import_page(
                    c,
                    ctx,
                    &reference_id,
                    &[],
                    &[FieldError::new(
                        "reference_id",
                        format!("{what}; create it first"),
                    )],
                ),
            ));
        }
        Err(e) => return Err(e),
    };
    drop(conn);
    spawn_job(c, ctx, id, req, upload.bytes.clone());
    Ok(Response::redirect_303(format!("/import/{id}")))
}

/// Runs a job on its own thread, so the status page can show its progress.
pub fn spawn_job(c: &Console, ctx: &Ctx, id: i64, req: ImportRequest, bytes: Vec<u8>) {
    let pool = c.pool.clone();
    let own = c.own.clone();
    let user = ctx.user.clone();
    let account = ctx.account.clone();
    let expiry = (c.config().console.partial_expiry_hours * 3600) as i64;
    let spawned = std::thread::Builder::new()
        .name(format!("import-{id}"))
        .spawn(move || {
            let actor = crate::actions::Actor {
                user: &user,
                account: &account,
                own: &own,
                partial_expiry_secs: expiry,
                who: crate::domain::audit::Actor::person(&user.username),
            };
            match pool.get() {
                Ok(mut conn) => {
                    if let Err(e) = import::run_job(&mut conn, &actor, id, &req, &bytes) {
                        log::error!("import job {id}: {e}");
                    }
                }
                Err(e) => log::error!("import job {id}: {e}"),
            }
        });
    if let Err(e) = spawned {
        log::error!("cannot start import job {id}: {e}");
    }
}

fn job_for(c: &Console, ctx: &Ctx, id: &str) -> Result<jobs::Job> {
    crate::actions::import::job_for(&*c.conn()?, &ctx.user, id)
}

pub fn job(c: &Console, ctx: &Ctx, id: &str) -> Result<Response> {
    let j = job_for(c, ctx, id)?;
    let mut nav = ctx.nav("import");
    if !j.is_finished() {
        nav.refresh = Some(1);
    }
    let errors = if j.rejected_rows > 0 {
        jobs::list_job_errors(&*c.conn()?, j.id)?
    } else {
        Vec::new()
    };
    let pct = if j.total_rows > 0 {
        j.processed_rows * 100 / j.total_rows
    } else {
        0
    };
    Ok(html_page(
        200,
        views::page(
            &format!("Import job {}", j.id),
            &nav,
            html! {
                h1 { "Bulk association job #" (j.id) @if j.dry_run { " (dry run)" } }
                table.kv {
                    tr { th { "Status" } td { strong class=(format!("status {}", j.status.replace(' ', "-").to_lowercase())) { (j.status) } } }
                    tr { th { "File" } td { (j.file_name) } }
                    @if !j.reference_id.is_empty() { tr { th { "Reference ID" } td { a href=(format!("/subscribers/{}", percent_encode(&j.reference_id))) { (j.reference_id) } } } }
                    tr { th { "Lines" } td { (j.total_rows) } }
                    tr { th { @if j.dry_run { "Would be applied" } @else { "Applied" } } td { (j.applied_rows) } }
                    tr { th { "Rejected" } td { (j.rejected_rows) } }
                    @if !j.message.is_empty() { tr { th { "Message" } td { (j.message) } } }
                }
                @if !j.is_finished() {
                    p { progress max="100" value=(pct) { (pct) "%" } " " (j.processed_rows) " of " (j.total_rows) " lines checked; this page reloads itself." }
                }
                @if !errors.is_empty() {
                    h2 { "Rejected lines" }
                    p { a.button href=(format!("/import/{}/rejected.csv", j.id)) { "Download the rejected lines" }
                        " Correct them in the file and upload it again: lines already applied need not be uploaded again." }
                    table.list {
                        thead { tr { th.num { "Line" } th { "Content" } th { "Reason" } } }
                        tbody { @for e in errors.iter().take(200) { tr { td.num { (e.line) } td { code { (e.content) } } td { (e.reason) } } } }
                    }
                    @if errors.len() > 200 { p.muted { "The first 200 are shown; the download has all " (errors.len()) "." } }
                }
                p { a href="/import" { "Upload another file" } " · " a href="/find?view=device" { "Find Operations" } }
            },
        ),
    ))
}

pub fn job_errors(c: &Console, ctx: &Ctx, id: &str) -> Result<Response> {
    let j = job_for(c, ctx, id)?;
    let errors = jobs::list_job_errors(&*c.conn()?, j.id)?;
    Ok(Response::from_data(
        "text/csv; charset=utf-8",
        csvimport::rejected_file(j.id, &errors),
    )
    .with_additional_header(
        "Content-Disposition",
        format!("attachment; filename=\"rejected-lines-job-{}.csv\"", j.id),
    ))
}
