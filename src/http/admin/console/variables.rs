//! The template variables page: every built-in variable with the value and source it has
//! for one device (or an example device), secrets masked, and the custom variables, which
//! admins add, change and delete. Admins and providers (who write profile files) may read
//! it; only admins change custom variables.

use maud::{Markup, html};
use rouille::{Request, Response};

use super::settings::subnav;
use super::{Console, Ctx, Form, done, html_page, notice_of, percent_encode};
use crate::actions::associations;
use crate::actions::templating::{self, VarRow, VarTable};
use crate::domain::mac::Mac;
use crate::domain::users::Action;
use crate::error::{Error, FieldError, Result};
use crate::http::admin::views::{self, Field, csrf_field};

/// What the add/change form shows.
struct Draft<'a> {
    name: &'a str,
    value: &'a str,
}

fn rows(list: &[VarRow], custom: bool) -> Markup {
    html! {
        table.list.vars {
            thead { tr { th { "Variable" } th { "Value" } th { "Source" } @if custom { th {} } } }
            tbody {
                @for r in list {
                    tr {
                        td { code { "${" (r.name) "}" } @if r.per_line { " " span.badge title="inside a line block: each line's value; outside: line 1's" { "per line" } } }
                        td { @if r.value.is_empty() { span.muted { "(empty)" } } @else { code.value { (r.value) } } }
                        td { (r.source) }
                        @if custom { td.ops { a href=(format!("/variables?edit={}", percent_encode(&r.name))) { "Change" } } }
                    }
                }
            }
        }
    }
}

fn variables_page(
    ctx: &Ctx,
    table: &VarTable,
    draft: &Draft<'_>,
    problems: &[FieldError],
    notice: Option<&str>,
    status: u16,
) -> Response {
    let can = ctx.user.require(Action::ManageSettings).is_ok();
    let mac = table.mac.clone().unwrap_or_default();
    html_page(
        status,
        views::page(
            "Template variables",
            &ctx.nav("settings"),
            html! {
                @if can { (subnav("variables")) }
                h1 { "Template variables" }
                (views::notice(notice))
                p { "Profile files and policy values may use " code { "${NAME}" } ". Values are XML-escaped when inserted; "
                    code { "${OVERRIDE}" } " is inserted as written; " code { "$${" } " is a literal " code { "${" } "." }
                h2 { "Built-in variables" }
                form.inline method="get" action="/variables" {
                    label for="mac" { "Values for device " }
                    input id="mac" name="mac" value=(mac) placeholder="MAC address" size="14";
                    " " button.secondary type="submit" { "Show" }
                }
                p.hint {
                    @if let Some(m) = &table.mac { "As computed for device " a href=(format!("/devices/{m}")) { code { (m) } } " (secrets masked). " }
                    @else { "As computed for an example device without lines, vendor extensions or a reported model (secrets masked). Name a device to see its values." }
                }
                (rows(&table.builtin, false))
                h2 { "Custom variables" }
                p.hint { "Names: upper-case letters, digits and _ (1 to 64), not a built-in name; built-ins win over custom variables. A variable used by a profile file cannot be deleted." }
                @if table.custom.is_empty() { p.muted { "No custom variables yet." } } @else { (rows(&table.custom, can)) }
                @if can {
                    h3 { @if draft.name.is_empty() { "Add a custom variable" } @else { "Add or change a custom variable" } }
                    (views::problems(problems))
                    form method="post" action="/variables" {
                        (csrf_field(&ctx.csrf))
                        div.grid {
                            (Field::text("Name", "name", draft.name, problems).required().hint("e.g. SYSLOG_SERVER"))
                            (Field::text("Value", "value", draft.value, problems).hint("names containing PASSWORD or SECRET, or ending in _KEY, are secrets: masked, and an empty value keeps the stored one"))
                        }
                        div.actions { button type="submit" { "Save variable" } }
                    }
                    @if !draft.name.is_empty() && table.custom.iter().any(|r| r.name == draft.name) {
                        form method="post" action=(format!("/variables/{}/delete", percent_encode(draft.name))) {
                            (csrf_field(&ctx.csrf))
                            button.danger type="submit" { "Delete " (draft.name) }
                        }
                    }
                }
            },
        ),
    )
}

fn table(c: &Console, ctx: &Ctx, mac: Option<&str>) -> Result<VarTable> {
    let conn = c.conn()?;
    let mac = match mac.map(str::trim).filter(|m| !m.is_empty()) {
        Some(m) => {
            let mac = m
                .parse::<Mac>()
                .map_err(|_| Error::invalid("mac", format!("`{m}` is not a MAC address")))?;
            // The scope rule: a device another company associated is not shown.
            associations::device(&conn, &c.actor(&ctx.user, &ctx.account), &mac)?;
            Some(mac)
        }
        None => None,
    };
    templating::variable_table(&conn, &super::devices::reach(c), mac.as_ref())
}

/// `GET /variables[?mac=…][&edit=NAME]`
pub fn page(c: &Console, ctx: &Ctx, req: &Request) -> Result<Response> {
    ctx.user.require(Action::ManageProfiles)?;
    let t = table(c, ctx, req.get_param("mac").as_deref())?;
    let edit = req.get_param("edit").unwrap_or_default();
    // The form starts with the stored value of a variable being changed (masked ones empty).
    let stored = crate::db::templates::list_custom_variables(&*c.conn()?)?;
    let value = stored
        .get(&edit)
        .filter(|_| !crate::domain::template::is_secret_name(&edit))
        .cloned()
        .unwrap_or_default();
    let draft = Draft {
        name: &edit,
        value: &value,
    };
    Ok(variables_page(ctx, &t, &draft, &[], notice_of(req), 200))
}

/// `POST /variables`
pub fn save(c: &Console, ctx: &Ctx, f: &Form) -> Result<Response> {
    ctx.user.require(Action::ManageSettings)?;
    let name = f.get("name").trim();
    let who = c.actor(&ctx.user, &ctx.account).who;
    let mut conn = c.conn()?;
    // A secret is never sent to the browser, so an empty value keeps the stored one.
    let keep = f.get("value").is_empty()
        && crate::domain::template::is_secret_name(name)
        && crate::db::templates::list_custom_variables(&conn)?.contains_key(name);
    if keep {
        return Ok(done("/variables", "variable-kept"));
    }
    match templating::set_custom_variable(&mut conn, &who, name, f.get("value")) {
        Ok(()) => Ok(done("/variables", "variable-saved")),
        Err(Error::Invalid(p)) => {
            let t = table(c, ctx, None)?;
            let draft = Draft {
                name,
                value: f.get("value"),
            };
            Ok(variables_page(ctx, &t, &draft, &p, None, 422))
        }
        Err(e) => Err(e),
    }
}

/// `POST /variables/NAME/delete`
pub fn delete(c: &Console, ctx: &Ctx, name: &str) -> Result<Response> {
    ctx.user.require(Action::ManageSettings)?;
    let who = c.actor(&ctx.user, &ctx.account).who;
    match templating::delete_custom_variable(&mut *c.conn()?, &who, name) {
        Ok(()) => Ok(done("/variables", "variable-deleted")),
        Err(Error::Conflict(m)) => {
            let t = table(c, ctx, None)?;
            let draft = Draft { name, value: "" };
            Ok(variables_page(
                ctx,
                &t,
                &draft,
                &[FieldError::new("name", m)],
                None,
                409,
            ))
        }
        Err(e) => Err(e),
    }
}
