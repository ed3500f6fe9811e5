//! Profile Management pages: the list of configuration profiles, the Profile Editor for
//! creating and modifying one (every field of the ZTP guide, files uploaded as multipart), a
//! stored file's page and download (secrets masked but for users who may see them), and the
//! delete confirmation.

use maud::{Markup, html};
use rouille::{Request, Response};

use super::{Console, Ctx, Form, done, html_page, notice_of, percent_encode};

use crate::actions::profiles as profile_ops;
use crate::db::profiles;
use crate::domain::polycom::models::{Family, UCS_VENDOR_MODEL, VIDEO_VENDOR_MODEL};
use crate::domain::profile::{BOOT_SERVER_OPTIONS, OPTION60_TYPES, Polling, ProfileFields};
use crate::domain::users::Action;
use crate::error::{Error, FieldError, Result};
use crate::http::admin::views::{self, Field, csrf_field, select};

pub fn list(c: &Console, ctx: &Ctx, req: &Request) -> Result<Response> {
    let conn = c.conn()?;
    let rows = crate::actions::profiles::list_profiles(&conn, &c.actor(&ctx.user, &ctx.account))?;
    let can = ctx.user.require(Action::ManageProfiles).is_ok();
    Ok(html_page(
        200,
        views::page(
            "Profiles",
            &ctx.nav("profiles"),
            html! {
                h1 { "Configuration profiles" }
                (views::notice(notice_of(req)))
                @if can { p { a.button href="/profiles/new" { "Create a profile" } } }
                @if rows.is_empty() {
                    p.muted { "No profiles yet." }
                } @else {
                    table.list {
                        thead { tr { th { "Profile name" } th { "Vendor model" } th.num { "Files" } th.num { "Devices" } th {} } }
                        tbody {
                            @for r in &rows {
                                tr {
                                    td { a href=(format!("/profiles/{}", percent_encode(&r.name))) { (r.name) } }
                                    td { (r.vendor_model) }
                                    td.num { (r.files) }
                                    td.num { a href=(format!("/find?view=device&profile={}", percent_encode(&r.name))) { (r.devices) } }
                                    td { @if can { a href=(format!("/profiles/{}/delete", percent_encode(&r.name))) title="Delete" { "Delete" } } }
                                }
                            }
                        }
                    }
                }
            },
        ),
    ))
}

pub fn new(c: &Console, ctx: &Ctx) -> Result<Response> {
    ctx.user.require(Action::ManageProfiles)?;
    let fields = ProfileFields {
        vendor_model: UCS_VENDOR_MODEL.into(),
        ..Default::default()
    };
    Ok(html_page(
        200,
        editor(&Page::of(c, ctx)?, None, &fields, &[], &[], false, None),
    ))
}

pub fn edit(c: &Console, ctx: &Ctx, name: &str, req: &Request) -> Result<Response> {
    let conn = c.conn()?;
    let actor = c.actor(&ctx.user, &ctx.account);
    let (p, _) = profile_ops::profile(&conn, &actor, name)?;
    let files: Vec<(String, usize)> = p
        .files
        .iter()
        .map(|f| (f.file_name.clone(), f.content.len()))
        .collect();
    let has_password = !p.fields.prov_password.is_empty();
    let mut fields = p.fields.clone();
    fields.prov_password.clear();
    Ok(html_page(
        200,
        editor(
            &Page::of(c, ctx)?,
            Some(name),
            &fields,
            &files,
            &[],
            has_password,
            notice_of(req),
        ),
    ))
}

fn fields_from(f: &Form) -> std::result::Result<ProfileFields, Vec<FieldError>> {
    let mut problems = Vec::new();
    let polling = Polling::parse(f.get("polling")).unwrap_or_else(|_| {
        problems.push(FieldError::new("polling", "choose none, enable or disable"));
        Polling::None
    });
    let mut software = std::collections::BTreeMap::new();
    for family in Family::ALL {
        let v = f.get(&format!("software.{}", family.name())).trim();
        if !v.is_empty() {
            software.insert(family, v.to_string());
        }
    }
    let fields = ProfileFields {
        name: f.get("name").trim().into(),
        vendor_model: f.get("vendor_model").trim().into(),
        prov_server: f.get("prov_server").trim().into(),
        prov_user: f.get("prov_user").trim().into(),
        prov_password: f.get("prov_password").into(),
        polling,
        boot_server_option: f.get("boot_server_option").into(),
        option60_type: f.get("option60_type").into(),
        quick_setup: f.get("quick_setup").into(),
        language: f.get("language").trim().into(),
        software,
    };
    if problems.is_empty() {
        Ok(fields)
    } else {
        Err(problems)
    }
}

fn uploads(f: &Form) -> Vec<(String, Vec<u8>)> {
    f.files("files")
        .map(|u| (u.file_name.clone(), u.bytes.clone()))
        .collect()
}

pub fn create(c: &Console, ctx: &Ctx, f: &Form) -> Result<Response> {
    ctx.user.require(Action::ManageProfiles)?;
    let fields = match fields_from(f) {
        Ok(x) => x,
        Err(p) => {
            return Ok(html_page(
                422,
                editor(
                    &Page::of(c, ctx)?,
                    None,
                    &ProfileFields::default(),
                    &[],
                    &p,
                    false,
                    None,
                ),
            ));
        }
    };
    let mut conn = c.conn()?;
    let actor = c.actor(&ctx.user, &ctx.account);
    let transport = profile_ops::transport(&c.config());
    match profile_ops::create_profile(&mut conn, &actor, &fields, uploads(f), transport) {
        Ok(_) => Ok(done("/profiles", "profile-created")),
        Err(Error::Invalid(p)) => Ok(html_page(
            422,
            editor(&Page::of(c, ctx)?, None, &fields, &[], &p, false, None),
        )),
        Err(Error::Conflict(m)) => Ok(html_page(
            409,
            editor(
                &Page::of(c, ctx)?,
                None,
                &fields,
                &[],
                &[FieldError::new("name", m)],
                false,
                None,
            ),
        )),
        Err(e) => Err(e),
    }
}

pub fn update(c: &Console, ctx: &Ctx, name: &str, f: &Form) -> Result<Response> {
    let fields = match fields_from(f) {
        Ok(x) => x,
        Err(p) => {
            return Ok(html_page(
                422,
                editor(
                    &Page::of(c, ctx)?,
                    Some(name),
                    &ProfileFields::default(),
                    &[],
                    &p,
                    false,
                    None,
                ),
            ));
        }
    };
    let files = uploads(f);
    let replace = if f.checked("remove_files") {
        Some(Vec::new())
    } else if files.is_empty() {
        None
    } else {
        Some(files)
    };
    let mut conn = c.conn()?;
    let actor = c.actor(&ctx.user, &ctx.account);
    let keep = !f.checked("clear_password");
    let transport = profile_ops::transport(&c.config());
    match profile_ops::update_profile(&mut conn, &actor, name, &fields, replace, keep, transport) {
        Ok(_) => {
            // With the account's "apply now", the profile's devices are sent check-sync in
            // the background (never those the change restarts).
            let mut notice = "profile-saved";
            if ctx.account.sip.apply_after_change {
                let (p, _) = profile_ops::profile(&conn, &actor, &fields.name)?;
                let macs = crate::actions::sip::affected_by_profile(&conn, p.id)?;
                let after = c.after_change(&conn, &actor, &ctx.account, macs);
                notice = match (after.mode, after.restarting.is_empty()) {
                    ("applying now", true) => "profile-applying",
                    ("applying now", false) => "profile-applying-restarts-wait",
                    (_, false) => "profile-restarts-wait",
                    _ => notice,
                };
            }
            Ok(done(
                &format!("/profiles/{}", percent_encode(&fields.name)),
                notice,
            ))
        }
        Err(Error::Invalid(p)) => Ok(html_page(
            422,
            editor(
                &Page::of(c, ctx)?,
                Some(name),
                &fields,
                &[],
                &p,
                false,
                None,
            ),
        )),
        Err(Error::Conflict(m)) => Ok(html_page(
            409,
            editor(
                &Page::of(c, ctx)?,
                Some(name),
                &fields,
                &[],
                &[FieldError::new("name", m)],
                false,
                None,
            ),
        )),
        Err(e) => Err(e),
    }
}

pub fn confirm_delete(c: &Console, ctx: &Ctx, name: &str) -> Result<Response> {
    ctx.user.require(Action::ManageProfiles)?;
    let conn = c.conn()?;
    let actor = c.actor(&ctx.user, &ctx.account);
    let (p, _) = profile_ops::profile(&conn, &actor, name)?;
    let used = profiles::count_profile_devices(&conn, p.id)?;
    Ok(html_page(
        200,
        views::page(
            "Delete profile",
            &ctx.nav("profiles"),
            html! {
                h1 { "Delete profile " (name) "?" }
                @if used > 0 {
                    div.errors { "This profile is used by " (used) " device" @if used != 1 { "s" } "; it cannot be deleted until they are associated with another profile or deleted." }
                    p { a href=(format!("/find?view=device&profile={}", percent_encode(name))) { "Show these devices" } }
                } @else {
                    p { "The profile and its configuration files will be deleted. This cannot be undone." }
                    form method="post" action=(format!("/profiles/{}/delete", percent_encode(name))) {
                        (csrf_field(&ctx.csrf))
                        button.danger type="submit" { "Delete profile" } " "
                        a href="/profiles" { "Cancel" }
                    }
                }
            },
        ),
    ))
}

pub fn delete(c: &Console, ctx: &Ctx, name: &str) -> Result<Response> {
    let mut conn = c.conn()?;
    let actor = c.actor(&ctx.user, &ctx.account);
    profile_ops::delete_profile(&mut conn, &actor, name)?;
    Ok(done("/profiles", "profile-deleted"))
}

/// Versions in the firmware catalogue, per family, newest first.
type Catalogue = std::collections::BTreeMap<Family, Vec<String>>;

/// What the editor shows besides the profile: the user's session and the catalogue.
struct Page<'a> {
    ctx: &'a Ctx,
    catalogue: Catalogue,
}

impl<'a> Page<'a> {
    fn of(c: &Console, ctx: &'a Ctx) -> Result<Page<'a>> {
        Ok(Page {
            ctx,
            catalogue: crate::actions::firmware::versions_by_family(&*c.conn()?)?,
        })
    }
}

/// The software version of one family: a choice from the catalogue's releases for it.
fn software_select(
    fam: Family,
    current: &str,
    versions: &[String],
    problems: &[FieldError],
) -> Markup {
    let name = format!("software.{}", fam.name());
    let error = problems.iter().find(|p| p.field == name);
    let known = current.is_empty() || versions.iter().any(|v| v == current);
    html! {
        div.field.invalid[error.is_some()] {
            label for=(name) { (fam.name()) }
            select id=(name) name=(name) {
                option value="" selected[current.is_empty()] { "(no software update)" }
                @for v in versions { option value=(v) selected[v == current] { (v) } }
                @if !known { option value=(current) selected { (current) " (not in the catalogue)" } }
            }
            @if let Some(e) = error { span.error { (e.message) } }
            @if versions.is_empty() { span.hint { "No " (fam.name()) " release in the catalogue." } }
        }
    }
}

/// The page of one of a profile's stored files.
fn file_href(profile: &str, file: &str) -> String {
    format!(
        "/profiles/{}/files/{}",
        percent_encode(profile),
        percent_encode(file)
    )
}

/// `GET /profiles/<name>/files/<file>`: the stored file as text with the values of secret
/// parameters masked (as the preview masks them). `?download=1` sends it as an attachment:
/// as stored (audited) to users allowed to see secrets (`Action::ManageSettings`, as the
/// preview's "show secrets"), masked to everyone else. A name the profile does not hold is
/// 404: it is compared with the stored names, never used as a path.
pub fn file(c: &Console, ctx: &Ctx, name: &str, file: &str, req: &Request) -> Result<Response> {
    let mut conn = c.conn()?;
    let actor = c.actor(&ctx.user, &ctx.account);
    let missing = || Error::not_found(format!("file `{file}` of profile `{name}`"));
    let reveal = ctx.user.require(Action::ManageSettings).is_ok();
    if req.get_param("download").is_some_and(|v| v == "1") {
        let (file_name, bytes) = if reveal {
            profile_ops::reveal_profile_file(&mut conn, &actor, name, file)?.ok_or_else(missing)?
        } else {
            let (n, text) =
                profile_ops::profile_file(&conn, &actor, name, file)?.ok_or_else(missing)?;
            (n, text.into_bytes())
        };
        let safe: String = file_name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        return Ok(
            Response::from_data("text/plain; charset=utf-8", bytes).with_additional_header(
                "Content-Disposition",
                format!("attachment; filename=\"{safe}\""),
            ),
        );
    }
    let (file_name, text) =
        profile_ops::profile_file(&conn, &actor, name, file)?.ok_or_else(missing)?;
    let href = file_href(name, &file_name);
    Ok(html_page(
        200,
        views::page(
            &format!("{file_name} of profile {name}"),
            &ctx.nav("profiles"),
            html! {
                p.crumbs { a href=(format!("/profiles/{}", percent_encode(name))) { "Profile " (name) } " › files" }
                h1 { code { (file_name) } }
                p {
                    "A configuration file of profile " (name) ", as stored (before variables are filled in). "
                    a.button.secondary href=(format!("{href}?download=1")) { "Download" }
                }
                p.hint {
                    "Values of secret parameters are masked"
                    @if reveal { "; the download is the file as stored, secrets included, and is recorded in the audit log." }
                    @else { ", in the download too." }
                }
                pre.upload { (text) }
            },
        ),
    ))
}

/// The Profile Editor.
fn editor(
    page: &Page<'_>,
    name: Option<&str>,
    f: &ProfileFields,
    files: &[(String, usize)],
    problems: &[FieldError],
    has_password: bool,
    notice: Option<&str>,
) -> Markup {
    let (ctx, catalogue) = (page.ctx, &page.catalogue);
    let title = match name {
        Some(n) => format!("Modify profile {n}"),
        None => "Create a profile".into(),
    };
    let action = match name {
        Some(n) => format!("/profiles/{}", percent_encode(n)),
        None => "/profiles".into(),
    };
    let software = |fam: Family| f.software.get(&fam).cloned().unwrap_or_default();
    let boot: Vec<(&str, &str)> = std::iter::once(("", "(phone default)"))
        .chain(BOOT_SERVER_OPTIONS.iter().map(|o| (*o, *o)))
        .collect();
    let opt60: Vec<(&str, &str)> = std::iter::once(("", "(phone default)"))
        .chain(OPTION60_TYPES.iter().map(|o| (*o, *o)))
        .collect();
    views::page(
        &title,
        &ctx.nav("profiles"),
        html! {
            h1 { (title) }
            (views::notice(notice))
            (views::problems(problems))
            form.editor method="post" action=(action) enctype="multipart/form-data" {
                (csrf_field(&ctx.csrf))
                fieldset {
                    legend { "Profile" }
                    (Field::text("Profile name", "name", &f.name, problems).required().hint("2 to 50 letters, digits, _ and ."))
                    (select("Vendor model *", "vendor_model", &[(UCS_VENDOR_MODEL, "Polycom_UCS_Device (VVX, SoundPoint, SoundStation, Trio, Debut)"), (VIDEO_VENDOR_MODEL, "Polycom Video Endpoint (RealPresence Group)")], &f.vendor_model))
                    div.field.invalid[problems.iter().any(|p| p.field == "file" || p.field.ends_with(".cfg") || p.field.ends_with(".xml"))] {
                        label for="files" { "Configuration file(s)" }
                        input id="files" name="files" type="file" multiple accept=".cfg,.xml,text/xml";
                        span.hint { "UC Software XML; checked for well-formed XML and known ${VARIABLES}. Several files keep their order. Not for video endpoints." }
                        @if !files.is_empty() {
                            span.hint {
                                "Current: "
                                @for (i, (file, size)) in files.iter().enumerate() {
                                    @if i > 0 { ", " }
                                    @if let Some(n) = name {
                                        a href=(file_href(n, file)) { (file) }
                                        " (" (size) " bytes, " a href=(format!("{}?download=1", file_href(n, file))) { "download" } ")"
                                    } @else { (file) " (" (size) " bytes)" }
                                }
                                ". Uploading replaces them."
                            }
                            label.check { input type="checkbox" name="remove_files"; " Remove the current files" }
                        }
                    }
                }
                fieldset {
                    legend { "Provisioning server (leave empty to keep the phone's)" }
                    (Field::text("Provisioning server address", "prov_server", &f.prov_server, problems).hint("e.g. https://user:pass@prov.example.com:8443/Polycom/"))
                    (Field::text("Provisioning server username", "prov_user", &f.prov_user, problems))
                    (Field::text("Provisioning server password", "prov_password", &f.prov_password, problems).kind("password").hint(if has_password { "Set. Leave empty to keep it." } else { "" }))
                    @if has_password { label.check { input type="checkbox" name="clear_password"; " Clear the password" } }
                }
                fieldset {
                    legend { "Software version per model family" }
                    p.hint { "The version phones of each family update to (and downgrade to), from the " a href="/firmware" { "firmware catalogue" } ". Not for RealPresence Group or Debut." }
                    div.grid {
                        @for fam in Family::ALL {
                            (software_select(fam, &software(fam), catalogue.get(&fam).map(Vec::as_slice).unwrap_or(&[]), problems))
                        }
                    }
                }
                fieldset {
                    legend { "Phone settings" }
                    div.grid {
                        (select("Enable provisioning polling", "polling", &[("none", "None"), ("enable", "Enable"), ("disable", "Disable")], f.polling.as_str()))
                        (select("Boot server DHCP option", "boot_server_option", &boot, &f.boot_server_option))
                        (select("Option 60 type", "option60_type", &opt60, &f.option60_type))
                        (select("Enable quick setup", "quick_setup", &[("", "(phone default)"), ("enable", "Enable"), ("disable", "Disable")], &f.quick_setup))
                        (Field::text("Language", "language", &f.language, problems).hint("e.g. English_United_States"))
                    }
                }
                div.actions {
                    button type="submit" { @if name.is_some() { "Modify" } @else { "Add" } }
                    " " a href="/profiles" { "Cancel" }
                }
            }
        },
    )
}

/// Names of the profiles, for association forms.
pub fn profile_names(c: &Console, ctx: &Ctx) -> Result<Vec<String>> {
    let conn = c.conn()?;
    Ok(profiles::list_profiles(&conn, ctx.account.id.0)?
        .into_iter()
        .map(|p| p.name)
        .collect())
}
