//! The Phone Files pages: the shared files phones read at the base path — the site
//! directory (edited as a table of contacts, imported from and exported to CSV), site and
//! per-device licences, wallpapers, ring tones and language folders. Everyone signed in
//! sees them. Two scopes (`?scope=account`, a hidden `scope` field in forms): the
//! installation's files, which installation-wide admins change (`Action::ManageAssets`),
//! and the console account's own, served to its phones before the installation's, which
//! the account's admins change (`Action::ManageAccounts`, as the API's account routes).

use maud::{Markup, html};
use rouille::{Request, Response};

use super::{Console, Ctx, Form, done, html_page, notice_of};
use crate::datadir::DataDirs;
use crate::domain::assets::{self, AssetFile, AssetKind};
use crate::domain::directory::{self, COLUMNS, Contact};
use crate::domain::users::Action;
use crate::error::{Error, FieldError, Result};
use crate::http::admin::views::{self, csrf_field, when};

/// Blank rows the directory editor offers for new contacts.
const NEW_ROWS: usize = 3;
/// Columns the editor shows (indexes into `COLUMNS`); the others ride along hidden.
const SHOWN: [(usize, &str); 8] = [
    (0, "First name"),
    (1, "Last name"),
    (2, "Contact *"),
    (3, "Speed dial"),
    (4, "Label"),
    (6, "Ring type"),
    (9, "Auto reject"),
    (10, "Buddy watch"),
];

/// Whose files a page shows and changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The installation's: every account's phones fall back to them.
    Installation,
    /// The console account's own, served to its phones first.
    Account,
}

impl Scope {
    /// From a request parameter or form field `scope`.
    pub fn of(value: Option<&str>) -> Scope {
        match value {
            Some("account") => Scope::Account,
            _ => Scope::Installation,
        }
    }

    /// What links and form actions carry.
    fn query(self) -> &'static str {
        match self {
            Scope::Installation => "",
            Scope::Account => "?scope=account",
        }
    }

    fn action(self) -> Action {
        match self {
            Scope::Installation => Action::ManageAssets,
            Scope::Account => Action::ManageAccounts,
        }
    }
}

fn dir(c: &Console, ctx: &Ctx, scope: Scope) -> std::path::PathBuf {
    let dirs = DataDirs::under(&c.config().data_dir);
    match scope {
        Scope::Installation => dirs.assets,
        Scope::Account => dirs.assets_of(&ctx.account.slug),
    }
}

/// Whether the user may change the files of `scope`.
fn can(ctx: &Ctx, scope: Scope) -> bool {
    ctx.user.require(scope.action()).is_ok()
}

/// The scope of a form, and the user's right to change its files.
fn changing(ctx: &Ctx, f: &Form) -> Result<Scope> {
    let scope = Scope::of(Some(f.get("scope")));
    ctx.user.require(scope.action())?;
    Ok(scope)
}

/// `where` with the scope's query, for redirects.
fn back(path: &str, scope: Scope) -> String {
    format!("{path}{}", scope.query())
}

pub fn page(c: &Console, ctx: &Ctx, req: &Request) -> Result<Response> {
    let scope = Scope::of(req.get_param("scope").as_deref());
    Ok(html_page(
        200,
        files_page(c, ctx, scope, &[], notice_of(req))?,
    ))
}

fn files_page(
    c: &Console,
    ctx: &Ctx,
    scope: Scope,
    problems: &[FieldError],
    notice: Option<&str>,
) -> Result<Markup> {
    let files = crate::actions::assets::list(&dir(c, ctx, scope))?;
    let contacts = crate::actions::assets::read_directory(&dir(c, ctx, scope)).map(|l| l.len());
    let can = can(ctx, scope);
    let q = scope.query();
    let account = &ctx.account.name;
    let of = |kinds: &[AssetKind]| -> Vec<&AssetFile> {
        files.iter().filter(|f| kinds.contains(&f.kind)).collect()
    };
    Ok(views::page(
        "Phone files",
        &ctx.nav("files"),
        html! {
            h1 { "Shared phone files" }
            (views::notice(notice))
            (views::problems(problems))
            nav.tabs aria-label="Whose files" {
                @if scope == Scope::Installation { strong { "The installation's" } } @else { a href="/files" { "The installation's" } }
                " · "
                @if scope == Scope::Account { strong { "Account " (account) "'s own" } } @else { a href="/files?scope=account" { "Account " (account) "'s own" } }
            }
            @match scope {
                Scope::Installation => p.muted { "Files every phone may read at the server's base path, unless its account has its own file of that name. Phones pick changes up at their next poll or reboot; only installation-wide admins change them." },
                Scope::Account => p.muted { "Files of account " (account) " only: its phones get these before the installation's files of the same name. Phones pick changes up at their next poll or reboot; the account's admins change them." },
            }
            @if can { p { a href="/overrides" { "Devices with overrides made on the phone" } } }
            h2 { "Site directory" }
            p {
                code { (assets::DIRECTORY) } ": "
                @match &contacts {
                    Ok(n) => { (n) " contact" @if *n != 1 { "s" } ". " }
                    Err(e) => { span.error { "cannot be read: " (e) } " " }
                }
                a href=(format!("/files/directory{q}")) { @if can { "Edit the directory" } @else { "Show the directory" } } " · "
                a href=(format!("/files/directory.csv{q}")) { "Download as CSV" }
            }
            (file_table(ctx, scope, "Licences", &of(&[AssetKind::SiteLicence, AssetKind::DeviceLicence]), can))
            (file_table(ctx, scope, "Wallpapers and ring tones", &of(&[AssetKind::Wallpaper, AssetKind::RingTone]), can))
            (file_table(ctx, scope, "Language files", &of(&[AssetKind::Language]), can))
            @if can {
                h2 { "Add or replace a file" }
                form.editor method="post" action="/files" enctype="multipart/form-data" {
                    (csrf_field(&ctx.csrf))
                    (scope_field(scope))
                    fieldset {
                        legend { "Licence, wallpaper or ring tone" }
                        div.field.invalid[problems.iter().any(|p| p.field == "file" || p.field == "name")] {
                            label for="file" { "File *" }
                            input id="file" name="file" type="file" required;
                            span.hint { "Stored under its own name: " code { (assets::SITE_LICENCE) } ", " code { "<mac>-license.cfg" } ", a .jpg/.png/.bmp wallpaper or a .wav ring tone." }
                        }
                        div.field {
                            label for="mac" { "Device MAC (for a device licence)" }
                            input id="mac" name="mac" type="text" autocomplete="off";
                            span.hint { "Given, the file is stored as " code { "<mac>-license.cfg" } " whatever its name." }
                        }
                    }
                    div.actions { button type="submit" { "Upload" } }
                }
                form.editor method="post" action="/files/languages" enctype="multipart/form-data" {
                    (csrf_field(&ctx.csrf))
                    (scope_field(scope))
                    fieldset {
                        legend { "Language files" }
                        div.grid {
                            div.field.invalid[problems.iter().any(|p| p.field == "folder")] {
                                label for="folder" { "Folder *" } input id="folder" name="folder" type="text" placeholder="VVXLocalization" required;
                            }
                            div.field.invalid[problems.iter().any(|p| p.field == "language")] {
                                label for="language" { "Language *" } input id="language" name="language" type="text" placeholder="German_Germany" required;
                            }
                        }
                        div.field {
                            label for="files" { "Dictionary files (.xml) *" }
                            input id="files" name="files" type="file" multiple accept=".xml" required;
                            span.hint { "Stored as " code { "<Folder>/<Language>/<file>.xml" } ", as UC Software ships them." }
                        }
                    }
                    div.actions { button type="submit" { "Upload" } }
                }
            }
        },
    ))
}

/// The hidden field that keeps a form in its scope.
fn scope_field(scope: Scope) -> Markup {
    html! { @if scope == Scope::Account { input type="hidden" name="scope" value="account"; } }
}

fn file_table(ctx: &Ctx, scope: Scope, title: &str, files: &[&AssetFile], can: bool) -> Markup {
    html! {
        h2 { (title) }
        @if files.is_empty() { p.muted { "None." } } @else {
            table.list.files {
                thead { tr { th { "Path phones fetch" } th { "Kind" } th.num { "Bytes" } th { "Changed" } th {} } }
                tbody {
                    @for f in files {
                        tr {
                            td { code { (f.path) } } td { (f.kind.label()) } td.num { (f.size) } td { (when(Some(f.modified))) }
                            td {
                                @if can {
                                    form.inline method="post" action="/files/delete" {
                                        (csrf_field(&ctx.csrf))
                                        (scope_field(scope))
                                        input type="hidden" name="path" value=(if f.kind == AssetKind::Language { f.path.rsplit_once('/').map(|(d, _)| d).unwrap_or(&f.path) } else { &f.path });
                                        button.link.danger type="submit" { @if f.kind == AssetKind::Language { "Delete language" } @else { "Delete" } }
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

pub fn upload(c: &Console, ctx: &Ctx, f: &Form) -> Result<Response> {
    let scope = changing(ctx, f)?;
    let Some(file) = f.files("file").next() else {
        let p = [FieldError::new("file", "choose a file to upload")];
        return Ok(html_page(422, files_page(c, ctx, scope, &p, None)?));
    };
    let mac = f.get("mac").trim();
    let name = if mac.is_empty() {
        file.file_name.clone()
    } else {
        match mac.parse::<crate::domain::mac::Mac>() {
            Ok(m) => format!("{m}-license.cfg"),
            Err(_) => {
                let p = [FieldError::new(
                    "mac",
                    format!("`{mac}` is not a MAC address"),
                )];
                return Ok(html_page(422, files_page(c, ctx, scope, &p, None)?));
            }
        }
    };
    match crate::actions::assets::put(&dir(c, ctx, scope), &name, &file.bytes) {
        Ok(_) => Ok(done(&back("/files", scope), "asset-stored")),
        Err(Error::Invalid(p)) => Ok(html_page(422, files_page(c, ctx, scope, &p, None)?)),
        Err(e) => Err(e),
    }
}

pub fn upload_languages(c: &Console, ctx: &Ctx, f: &Form) -> Result<Response> {
    let scope = changing(ctx, f)?;
    let (folder, language) = (f.get("folder").trim(), f.get("language").trim());
    let files: Vec<_> = f.files("files").collect();
    let mut problems = Vec::new();
    if files.is_empty() {
        problems.push(FieldError::new("file", "choose one or more .xml files"));
    }
    // Every file is checked before any is written.
    for u in &files {
        if let Err(Error::Invalid(p)) = assets::language_path(folder, language, &u.file_name)
            .and_then(|path| crate::domain::xml::check_well_formed(&path, &u.bytes))
        {
            problems.extend(p);
        }
    }
    if !problems.is_empty() {
        problems.dedup();
        return Ok(html_page(422, files_page(c, ctx, scope, &problems, None)?));
    }
    let dir = dir(c, ctx, scope);
    for u in files {
        crate::actions::assets::put_language(&dir, folder, language, &u.file_name, &u.bytes)?;
    }
    Ok(done(&back("/files", scope), "asset-stored"))
}

pub fn delete(c: &Console, ctx: &Ctx, f: &Form) -> Result<Response> {
    let scope = changing(ctx, f)?;
    crate::actions::assets::delete(&dir(c, ctx, scope), f.get("path"))?;
    Ok(done(&back("/files", scope), "asset-deleted"))
}

pub fn directory_page(c: &Console, ctx: &Ctx, req: &Request) -> Result<Response> {
    let scope = Scope::of(req.get_param("scope").as_deref());
    let contacts = crate::actions::assets::read_directory(&dir(c, ctx, scope))?;
    Ok(html_page(
        200,
        editor(ctx, scope, &contacts, &[], notice_of(req)),
    ))
}

pub fn directory_csv(c: &Console, ctx: &Ctx, req: &Request) -> Result<Response> {
    let scope = Scope::of(req.get_param("scope").as_deref());
    let contacts = crate::actions::assets::read_directory(&dir(c, ctx, scope))?;
    Ok(
        Response::from_data("text/csv; charset=utf-8", directory::to_csv(&contacts))
            .with_additional_header(
                "Content-Disposition",
                "attachment; filename=\"directory.csv\"",
            ),
    )
}

/// The contacts of the editor's form: `c[<row>].<column>`; blank rows and rows marked for
/// deletion are left out.
fn contacts_from(f: &Form) -> Vec<Contact> {
    let rows: usize = f
        .get("rows")
        .parse()
        .unwrap_or(0)
        .min(directory::MAX_CONTACTS + NEW_ROWS);
    let mut out = Vec::new();
    for r in 0..rows {
        if f.checked(&format!("c[{r}].delete")) {
            continue;
        }
        let mut c = Contact::default();
        for (i, (name, _)) in COLUMNS.iter().enumerate() {
            c.set(i, f.get(&format!("c[{r}].{name}")));
        }
        if !c.is_blank() {
            out.push(c);
        }
    }
    out
}

pub fn save_directory(c: &Console, ctx: &Ctx, f: &Form) -> Result<Response> {
    let scope = changing(ctx, f)?;
    let contacts = contacts_from(f);
    match crate::actions::assets::write_directory(&dir(c, ctx, scope), &contacts, |i| {
        format!("c[{i}]")
    }) {
        Ok(_) => Ok(done(&back("/files/directory", scope), "directory-saved")),
        Err(Error::Invalid(p)) => Ok(html_page(422, editor(ctx, scope, &contacts, &p, None))),
        Err(e) => Err(e),
    }
}

pub fn import_directory(c: &Console, ctx: &Ctx, f: &Form) -> Result<Response> {
    let scope = changing(ctx, f)?;
    let current = crate::actions::assets::read_directory(&dir(c, ctx, scope))?;
    let Some(file) = f.files("file").next() else {
        let p = [FieldError::new("csv", "choose a CSV file")];
        return Ok(html_page(422, editor(ctx, scope, &current, &p, None)));
    };
    let mut contacts = match directory::from_csv(&file.bytes) {
        Ok(c) => c,
        Err(Error::Invalid(p)) => {
            return Ok(html_page(422, editor(ctx, scope, &current, &p, None)));
        }
        Err(e) => return Err(e),
    };
    if f.get("mode") == "append" {
        let mut all = current.clone();
        all.append(&mut contacts);
        contacts = all;
    }
    match crate::actions::assets::write_directory(&dir(c, ctx, scope), &contacts, |i| {
        format!("contact {}", i + 1)
    }) {
        Ok(_) => Ok(done(&back("/files/directory", scope), "directory-saved")),
        Err(Error::Invalid(p)) => Ok(html_page(422, editor(ctx, scope, &current, &p, None))),
        Err(e) => Err(e),
    }
}

/// `c[3]` → `row 4`, wherever it appears in a problem (field names stay for highlighting).
fn row_names(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("c[") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let parsed = after
            .find(']')
            .and_then(|end| Some((end, after[..end].parse::<usize>().ok()?)));
        match parsed {
            Some((end, n)) => {
                out.push_str(&format!("row {}", n + 1));
                rest = &after[end + 1..];
                if let Some(r) = rest.strip_prefix('.') {
                    out.push_str(", ");
                    rest = r;
                }
            }
            None => {
                out.push_str("c[");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The directory as an editable table.
fn editor(
    ctx: &Ctx,
    scope: Scope,
    contacts: &[Contact],
    problems: &[FieldError],
    notice: Option<&str>,
) -> Markup {
    let shown: Vec<FieldError> = problems
        .iter()
        .map(|p| FieldError::new(row_names(&p.field), row_names(&p.message)))
        .collect();
    let can = can(ctx, scope);
    let q = scope.query();
    let rows = contacts.len() + if can { NEW_ROWS } else { 0 };
    let blank = Contact::default();
    let bad = |r: usize, col: &str| problems.iter().any(|p| p.field == format!("c[{r}].{col}"));
    views::page(
        "Site directory",
        &ctx.nav("files"),
        html! {
            h1 { "Site directory " code { (assets::DIRECTORY) } @if scope == Scope::Account { " of account " (ctx.account.name) } }
            (views::notice(notice))
            (views::problems(&shown))
            p.muted { "The contacts every phone loads as its shared directory. A contact needs a number or SIP address; speed dials are unique. Empty rows are ignored." }
            form method="post" action="/files/directory" {
                (csrf_field(&ctx.csrf))
                (scope_field(scope))
                input type="hidden" name="rows" value=(rows);
                table.list.contacts {
                    thead { tr { th.num { "#" } @for (_, label) in SHOWN { th { (label) } } @if can { th { "Delete" } } } }
                    tbody {
                        @for r in 0..rows {
                            @let c = contacts.get(r).unwrap_or(&blank);
                            tr {
                                td.num {
                                    (r + 1)
                                    @for (col, (name, _)) in COLUMNS.iter().enumerate() {
                                        @if !SHOWN.iter().any(|(s, _)| *s == col) {
                                            input type="hidden" name=(format!("c[{r}].{name}")) value=(c.get(col));
                                        }
                                    }
                                }
                                @for (col, label) in SHOWN {
                                    @let name = COLUMNS[col].0;
                                    td.invalid[bad(r, name)] {
                                        input name=(format!("c[{r}].{name}")) value=(c.get(col)) aria-label=(format!("{label} {}", r + 1)) readonly[!can] autocomplete="off";
                                    }
                                }
                                @if can { td { @if r < contacts.len() { input type="checkbox" name=(format!("c[{r}].delete")) aria-label=(format!("Delete {}", r + 1)); } } }
                            }
                        }
                    }
                }
                @if can { div.actions { button type="submit" { "Save directory" } " " a href=(format!("/files{q}")) { "Cancel" } } }
            }
            @if can {
                p.hint { "Save to get " (NEW_ROWS) " more empty rows." }
                h2 { "Import CSV" }
                form.editor method="post" action="/files/directory/import" enctype="multipart/form-data" {
                    (csrf_field(&ctx.csrf))
                    (scope_field(scope))
                    div.field {
                        label for="csv" { "CSV file" }
                        input id="csv" name="file" type="file" accept=".csv,text/csv";
                        span.hint { "A header line with some of: " code { (COLUMNS.map(|c| c.0).join(", ")) } " (" code { "contact" } " required)." }
                    }
                    div.checks {
                        label.check { input type="radio" name="mode" value="replace" checked; " Replace the directory" } " "
                        label.check { input type="radio" name="mode" value="append"; " Add to it" }
                    }
                    div.actions { button type="submit" { "Import" } }
                }
            }
            p { a href=(format!("/files/directory.csv{q}")) { "Download as CSV" } " · " a href=(format!("/files{q}")) { "Back to phone files" } }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::row_names;

    #[test]
    fn rows_are_named_for_people() {
        assert_eq!(row_names("c[1].contact"), "row 2, contact");
        assert_eq!(
            row_names("7 is already the speed dial of c[0]"),
            "7 is already the speed dial of row 1"
        );
        assert_eq!(row_names("csv"), "csv");
    }
}
