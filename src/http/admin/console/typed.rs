//! The typed policy editor of the policy pages (account, site, group, device; Lens's typed
//! policies): a search over the parameter dictionary by name or by words of the
//! description, the chosen parameter's facts (type, allowed values or range, default,
//! family, secret), what sets it now at this scope — the value stored here and, for the
//! scope's devices, the effective value and its source from `render --explain`'s code
//! (`actions::render::explain_device`) — and a control that fits its type.
//!
//! No script: the search is a GET form answered by the server, a result is a link that
//! reloads the page with `param=`. The control only helps the browser; the POST goes
//! through `actions::policy::set_typed_policy`, the dictionary check the CLI and the API
//! run, with a wrong value refused. A secret's stored value never reaches the page.

use maud::{Markup, html};
use rouille::Request;

use super::effective::{display_value, reach_of};
use super::{Console, Ctx, Form, percent_encode};
use crate::db::policies::{self as pq, Policy};
use crate::domain::account::Account;
use crate::domain::mac::Mac;
use crate::domain::policy::Target;
use crate::domain::polycom::dictionary::{self, Entry, Kind};
use crate::domain::polycom::params;
use crate::error::{Error, FieldError, Result};
use crate::http::admin::views::csrf_field;
use crate::http::admin::views::widgets::shown;

/// How many search results a page lists.
const RESULTS: usize = 25;
/// How many of the scope's devices the effective value is shown for.
const SAMPLE: usize = 5;

/// What the admin searched for and chose, from the query (`q`, `param`) or, when a POST
/// was refused, from the form (the parameter and the refused value, never a secret).
#[derive(Debug, Clone, Default)]
pub struct Pick {
    pub q: String,
    pub param: String,
    pub value: String,
}

impl Pick {
    pub fn of_query(req: &Request) -> Pick {
        let get = |k: &str| req.get_param(k).unwrap_or_default().trim().to_string();
        Pick {
            q: get("q"),
            param: get("param"),
            value: String::new(),
        }
    }

    pub fn of_form(f: &Form) -> Pick {
        let param = f.get("parameter").trim().to_string();
        let secret = params::is_secret(&param)
            || dictionary::builtin()
                .lookup(&param)
                .is_some_and(|e| e.entry.secret);
        Pick {
            q: f.get("q").trim().to_string(),
            value: if secret {
                String::new()
            } else {
                f.get("value").to_string()
            },
            param,
        }
    }
}

/// The type in words (`enumeration`, `whole number 60 to 2147483647`).
fn kind_label(k: &Kind) -> String {
    match k {
        Kind::Bool => "boolean (0 or 1)".into(),
        Kind::Int { min, max } => format!("whole number, {min} to {max}"),
        Kind::Enum(_) => "enumeration".into(),
        Kind::Str { max: Some(m) } => format!("text, at most {m} characters"),
        Kind::Str { max: None } => "text".into(),
        Kind::Url => "URL".into(),
        Kind::Host => "host name, address or URL".into(),
    }
}

fn is_secret(e: &Entry, name: &str) -> bool {
    e.secret || params::is_secret(name)
}

/// The control for a value of `e`: a select for an enumeration or a boolean, a number
/// input with the range, a password input for a secret (always empty), text otherwise.
fn control(e: &Entry, name: &str, current: &str, error: Option<&FieldError>) -> Markup {
    let secret = is_secret(e, name);
    let chosen = if current.is_empty() {
        e.default.as_deref().unwrap_or("")
    } else {
        current
    };
    html! {
        div.field.invalid[error.is_some()] {
            label for="value" { "Value" }
            @if secret {
                input id="value" name="value" type="password" value="" required autocomplete="new-password";
                span.hint { "A secret: the stored value is never shown. Type the new value." }
            } @else {
                @match &e.kind {
                    Kind::Enum(values) => {
                        select id="value" name="value" {
                            @for v in values { option value=(v) selected[v == chosen] { (v) } }
                        }
                    }
                    Kind::Bool => {
                        select id="value" name="value" {
                            option value="0" selected[chosen == "0" || chosen == "false"] { "0 · off" }
                            option value="1" selected[chosen == "1" || chosen == "true"] { "1 · on" }
                        }
                    }
                    Kind::Int { min, max } => {
                        input id="value" name="value" type="number" step="1" min=(min) max=(max) value=(current) required;
                    }
                    Kind::Str { max } => {
                        input id="value" name="value" type="text" value=(current) maxlength=[max] autocomplete="off";
                    }
                    Kind::Url => {
                        input id="value" name="value" type="url" value=(current) autocomplete="off";
                    }
                    Kind::Host => {
                        input id="value" name="value" type="text" value=(current) autocomplete="off";
                    }
                }
            }
            @if let Some(e) = error { span.error { (e.message) } }
        }
    }
}

/// MACs of up to `SAMPLE` devices the scope applies to (associated devices only: the
/// others get no files).
fn scope_devices(c: &Console, a: &Account, target: &Target) -> Result<(Vec<String>, usize)> {
    let conn = c.conn()?;
    let all: Vec<String> = match target {
        Target::Account => crate::db::devices::list_devices(&conn, a.id.0, false)?
            .into_iter()
            .filter(|d| d.profile.is_some())
            .map(|d| d.mac)
            .collect(),
        Target::Site(n) => match pq::find_site(&conn, a.id.0, n)? {
            Some(s) => pq::list_site_devices(&conn, s.id)?,
            None => Vec::new(),
        },
        Target::Group(n) => match pq::find_group(&conn, a.id.0, n)? {
            Some(g) => pq::list_members(&conn, g.id)?,
            None => Vec::new(),
        },
        Target::Device(m) => vec![m.to_string()],
    };
    let total = all.len();
    Ok((all.into_iter().take(SAMPLE).collect(), total))
}

/// One effective value and the devices that get it: `(value, source, detail, macs)`.
type Effective = (String, &'static str, String, Vec<String>);

/// What the scope's devices get for `name`, from the same code as `render --explain`.
fn effective(c: &Console, a: &Account, macs: &[String], name: &str) -> Result<Vec<Effective>> {
    let conn = c.conn()?;
    let reach = reach_of(c, a);
    let mut out: Vec<Effective> = Vec::new();
    for m in macs {
        let Ok(mac) = m.parse::<Mac>() else { continue };
        let list = match crate::actions::render::explain_device(
            &conn,
            &mac,
            &reach,
            crate::actions::render::As::Device,
            c.trust.as_ref(),
        ) {
            Ok(l) => l,
            // A member without a profile gets no files: nothing to explain.
            Err(Error::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        let (value, source, detail) = match list.iter().find(|p| p.name == name) {
            Some(p) => (display_value(p), p.source.label(), p.detail.clone()),
            None => (String::new(), "not set", String::new()),
        };
        match out
            .iter_mut()
            .find(|(v, s, d, _)| *v == value && *s == source && *d == detail)
        {
            Some((_, _, _, list)) => list.push(m.clone()),
            None => out.push((value, source, detail, vec![m.clone()])),
        }
    }
    Ok(out)
}

/// The editor: the search form, its results, and the chosen parameter with its facts,
/// what sets it now and its control. `page` is the page's own path, `scope` the target as
/// `Target::parse` reads it, `list` the values stored at this scope.
#[allow(clippy::too_many_arguments)]
pub fn editor(
    c: &Console,
    ctx: &Ctx,
    a: &Account,
    page: &str,
    scope: &str,
    list: &[Policy],
    pick: &Pick,
    problems: &[FieldError],
) -> Result<Markup> {
    let dict = dictionary::builtin();
    let results = dict.search(&pick.q, true, RESULTS + 1);
    let found = (!pick.param.is_empty())
        .then(|| dict.lookup(&pick.param))
        .flatten();
    let stored = list.iter().find(|p| p.parameter == pick.param);
    let target = Target::parse(scope)?;
    let (sample, total) = match found {
        Some(_) => scope_devices(c, a, &target)?,
        None => (Vec::new(), 0),
    };
    let now = match found {
        Some(_) => effective(c, a, &sample, &pick.param)?,
        None => Vec::new(),
    };
    let action = format!("/accounts/{}/policies", a.slug);
    let error_of = |field: &str| problems.iter().find(|p| p.field == field);
    Ok(html! {
        section.typed id="set-parameter" {
            h3 { "Set a parameter" }
            form.search.row method="get" action=(format!("{page}#set-parameter")) {
                div.field {
                    label for="q" { "Find a parameter by name or description" }
                    input id="q" name="q" type="search" value=(pick.q) placeholder="e.g. backlight, polling, reg.1.address" autocomplete="off";
                }
                button.secondary type="submit" { "Search" }
            }
            @if !pick.q.is_empty() {
                @if results.is_empty() {
                    p.muted { "No parameter of the dictionary matches “" (pick.q) "”." }
                } @else {
                    table.list.params {
                        thead { tr { th { "Parameter" } th { "Type" } th { "Description" } } }
                        tbody {
                            @for e in results.iter().take(RESULTS) {
                                tr {
                                    td {
                                        @if let Some(n) = e.first_name() {
                                            a href=(format!("{page}?q={}&param={}#set-parameter", percent_encode(&pick.q), percent_encode(&n))) { code { (e.name) } }
                                        } @else { code { (e.name) } }
                                    }
                                    td { (kind_label(&e.kind)) @if e.secret { " · " span.badge.warn { "secret" } } }
                                    td { (e.description) " " span.muted { "(" (e.families.label()) ")" } }
                                }
                            }
                        }
                    }
                    @if results.len() > RESULTS { p.hint { "More match: add a word to narrow the list." } }
                }
            }
            @if !pick.param.is_empty() {
                @match found {
                    None => {
                        p.hint.warn { code { (pick.param) } " is not in the parameter dictionary: phones ignore names they do not know. Check the spelling, or set it by its exact name below." }
                    }
                    Some(f) => {
                        @let e = f.entry;
                        @let secret = is_secret(e, &pick.param);
                        div.chosen {
                            h4 { code { (pick.param) } }
                            p { (e.description) }
                            table.kv {
                                tr { th { "Type" } td { (kind_label(&e.kind)) } }
                                tr { th { "Allowed" } td { (e.allowed()) } }
                                @if !e.ranges.is_empty() {
                                    tr { th { "Index" } td { "the dictionary's name is " code { (e.name) } } }
                                }
                                tr { th { "Default" } td { @match &e.default { Some(d) => code { (d) }, None => span.muted { "not stated by a public source" } } } }
                                tr { th { "Family" } td { (e.families.label()) } }
                                tr { th { "Secret" } td { @if secret { "yes: masked after saving, never shown again" } @else { "no" } } }
                                tr {
                                    th { "Set at this scope" }
                                    td.value {
                                        @match stored {
                                            Some(p) => { code { (shown(&p.value, secret)) } }
                                            None => { span.muted { "not set here" } }
                                        }
                                    }
                                }
                                tr {
                                    th { "Effective now" }
                                    td.effective {
                                        @if sample.is_empty() {
                                            span.muted { "no device in this scope gets files yet" }
                                        } @else {
                                            ul.effective {
                                                @for (value, source, detail, macs) in &now {
                                                    li {
                                                        @if *source == "not set" {
                                                            span.muted { "not set: the phone's default" @if let Some(d) = &e.default { " (" code { (d) } ")" } }
                                                        } @else {
                                                            code { (value) } " from " strong.source { (source) }
                                                            @if !detail.is_empty() && detail != source { " · " span.muted { (detail) } }
                                                        }
                                                        " — "
                                                        @for (i, m) in macs.iter().enumerate() {
                                                            @if i > 0 { ", " }
                                                            a href=(format!("/devices/{m}/settings")) { code { (m) } }
                                                        }
                                                    }
                                                }
                                            }
                                            @if total > sample.len() { span.hint { "the first " (sample.len()) " of " (total) " devices" } }
                                        }
                                    }
                                }
                            }
                            @if e.owned {
                                p.hint.warn { "zerotouch sets this parameter itself (the account's credentials, Auto-Sync, the CA): a policy cannot." }
                            } @else if ctx.user.require(crate::domain::users::Action::ManagePolicies).is_ok() {
                                form.typed method="post" action=(format!("{action}#set-parameter")) {
                                    (csrf_field(&ctx.csrf))
                                    input type="hidden" name="scope" value=(scope);
                                    input type="hidden" name="q" value=(pick.q);
                                    div.grid {
                                        @if e.ranges.is_empty() {
                                            input type="hidden" name="parameter" value=(pick.param);
                                        } @else {
                                            div.field.invalid[error_of("parameter").is_some()] {
                                                label for="parameter" { "Parameter" }
                                                input id="parameter" name="parameter" type="text" value=(pick.param) required autocomplete="off";
                                                @if let Some(err) = error_of("parameter") { span.error { (err.message) } }
                                                span.hint { "the numbers are indices: " (e.name) }
                                            }
                                        }
                                        (control(e, &pick.param, if secret { "" } else if pick.value.is_empty() { stored.map_or("", |p| p.value.as_str()) } else { pick.value.as_str() }, error_of("value")))
                                    }
                                    button type="submit" { "Save " (pick.param) }
                                }
                            }
                        }
                    }
                }
            }
            @if ctx.user.require(crate::domain::users::Action::ManagePolicies).is_ok() {
                // A refused typed value is marked on the typed form, not here too.
                (super::policies::exact_name_form(ctx, a, scope, if found.is_some() { &[] } else { problems }))
            }
        }
    })
}
