//! The JSON API of provisioning settings, template variables, device template values and
//! lines, and the preview, through the same `actions::templating` actions as the console.
//!
//! Secrets are write-only: settings answer `<field>_set` instead of a password or key,
//! lines answer `sip_password_set`, the override and secret-named variables come masked.
//! A preview with `secrets=true` is for admins and is recorded in the audit log. Roles:
//! settings and custom-variable changes need an admin; reading variables an admin or a
//! provider; device values follow the rules (and company scope) of device changes.

use std::time::Duration;

use rouille::{Request, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{error_response, mac_param, parse_body};
use crate::actions::templating::variable_table;
use crate::actions::templating::{self, DeviceVarsChange, MASK};
use crate::actions::{Actor, associations};
use crate::domain::device::{Device, Line};
use crate::domain::mac::Mac;
use crate::domain::settings::{FIELDS, ProvSettings};
use crate::domain::template;
use crate::domain::users::{Action, User};
use crate::error::{Error, FieldError, Result};
use crate::external;
use crate::http::admin::console::Console;
use crate::http::admin::console::devices::reach;

/// Whether this module answers the route.
pub fn handles(segs: &[&str]) -> bool {
    matches!(
        segs,
        ["settings"]
            | ["settings", "push"]
            | ["variables"]
            | ["variables", _]
            | ["devices", _, "values" | "preview"]
            | ["devices", _, "lines", _]
    )
}

/// Answers a route `handles` accepted.
pub fn route(
    c: &Console,
    req: &Request,
    user: &User,
    actor: &Actor<'_>,
    segs: &[&str],
) -> Result<Response> {
    match (req.method(), segs) {
        ("GET", ["settings"]) => {
            user.require(Action::ManageSettings)?;
            let s = templating::load_settings(&*c.conn()?)?;
            Ok(Response::json(&settings_json(&s)))
        }
        ("PUT", ["settings"]) => {
            user.require(Action::ManageSettings)?;
            let changes = settings_changes(req)?;
            let timeout = Duration::from_secs(c.config().external.check_timeout_secs);
            let check = |s: &ProvSettings| external::check_settings(s, timeout);
            let s = templating::update_settings(&mut *c.conn()?, &actor.who, &changes, &check)?;
            Ok(Response::json(&settings_json(&s)))
        }
        ("GET", ["settings", "push"]) => {
            user.require(Action::ManageSettings)?;
            Ok(Response::json(&json!({ "last": c.push.last() })))
        }
        ("POST", ["settings", "push"]) => {
            user.require(Action::ManageSettings)?;
            let mut conn = c.conn()?;
            let run = c.push.start(
                &conn,
                &c.config().data_dir,
                Duration::from_secs(c.config().external.upload_timeout_secs),
                &actor.who.name,
            )?;
            templating::note_push(&mut conn, &actor.who, run.devices)?;
            Ok(Response::json(&run).with_status_code(202))
        }
        ("GET", ["variables"]) => {
            user.require(Action::ManageProfiles)?;
            let conn = c.conn()?;
            let mac = match req.get_param("mac").filter(|m| !m.trim().is_empty()) {
                Some(m) => {
                    let mac = m.trim().parse::<Mac>().map_err(|_| {
                        Error::invalid("mac", format!("`{}` is not a MAC address", m.trim()))
                    })?;
                    associations::device(&conn, actor, &mac)?;
                    Some(mac)
                }
                None => None,
            };
            Ok(Response::json(&variable_table(
                &conn,
                &reach(c),
                mac.as_ref(),
            )?))
        }
        ("PUT", ["variables", name]) => {
            user.require(Action::ManageSettings)?;
            let body: VariableBody = parse_body(req)?;
            let mut conn = c.conn()?;
            let existed = crate::db::templates::list_custom_variables(&conn)?.contains_key(*name);
            templating::set_custom_variable(&mut conn, &actor.who, name, &body.value)?;
            let secret = template::is_secret_name(name);
            let shown = if secret && !body.value.is_empty() {
                MASK
            } else {
                body.value.as_str()
            };
            Ok(
                Response::json(&json!({ "name": name, "value": shown, "secret": secret }))
                    .with_status_code(if existed { 200 } else { 201 }),
            )
        }
        ("DELETE", ["variables", name]) => {
            user.require(Action::ManageSettings)?;
            templating::delete_custom_variable(&mut *c.conn()?, &actor.who, name)?;
            Ok(Response::empty_204())
        }
        ("GET", ["devices", mac, "values"]) => {
            let d = associations::device(&*c.conn()?, actor, &mac_param(mac)?)?;
            Ok(Response::json(&values_json(&d)))
        }
        ("PUT", ["devices", mac, "values"]) => {
            user.require(Action::Associate)?;
            let mac = mac_param(mac)?;
            let body: ValuesBody = parse_body(req)?;
            let mut conn = c.conn()?;
            associations::device(&conn, actor, &mac)?;
            let change = DeviceVarsChange {
                label: body.label,
                tl_timezone: body.tl_timezone,
                tl_timezone_name: body.tl_timezone_name,
                default_parkext: body.default_parkext,
                override_attrs: body.r#override,
            };
            templating::set_device_vars(&mut conn, &actor.who, &mac, &change)?;
            Ok(Response::json(&values_json(&associations::device(
                &conn, actor, &mac,
            )?)))
        }
        ("PUT", ["devices", mac, "lines", n]) => {
            user.require(Action::Associate)?;
            let mac = mac_param(mac)?;
            let n = line_param(&mac, n)?;
            let body: LineBody = parse_body(req)?;
            let mut conn = c.conn()?;
            let d = associations::device(&conn, actor, &mac)?;
            let line = body.apply(d.lines.iter().find(|l| l.line == n), n);
            templating::set_device_line(&mut conn, &actor.who, &mac, &line)?;
            // A line change reaches the phone now when its account says so.
            if d.account_id == actor.account.id.0 && d.profile_id.is_some() {
                c.after_change(&conn, actor, actor.account, vec![mac.to_string()]);
            }
            Ok(Response::json(&values_json(&associations::device(
                &conn, actor, &mac,
            )?)))
        }
        ("DELETE", ["devices", mac, "lines", n]) => {
            user.require(Action::Associate)?;
            let mac = mac_param(mac)?;
            let n = line_param(&mac, n)?;
            let mut conn = c.conn()?;
            let d = associations::device(&conn, actor, &mac)?;
            templating::delete_device_line(&mut conn, &actor.who, &mac, n)?;
            if d.account_id == actor.account.id.0 && d.profile_id.is_some() {
                c.after_change(&conn, actor, actor.account, vec![mac.to_string()]);
            }
            Ok(Response::empty_204())
        }
        ("GET", ["devices", mac, "preview"]) => {
            let mac = mac_param(mac)?;
            let secrets = match req.get_param("secrets").as_deref() {
                None | Some("false" | "0" | "") => false,
                Some("true" | "1") => true,
                Some(other) => {
                    return Err(Error::invalid(
                        "secrets",
                        format!("`{other}` is not true or false"),
                    ));
                }
            };
            let mut conn = c.conn()?;
            associations::device(&conn, actor, &mac)?;
            let p = if secrets {
                user.require(Action::ManageSettings)?;
                templating::reveal_preview(&mut conn, &actor.who, &mac, &reach(c))?
            } else {
                templating::preview_device(&conn, &mac, &reach(c), false)?
            };
            Ok(Response::json(&p))
        }
        (m, _) => Ok(error_response(&Error::MethodNotAllowed(m.to_string()))),
    }
}

fn line_param(mac: &Mac, n: &str) -> Result<u32> {
    n.parse()
        .map_err(|_| Error::not_found(format!("line `{n}` of device {mac}")))
}

/// The settings as the API shows them: secrets as `<field>_set`.
fn settings_json(s: &ProvSettings) -> Value {
    let mut m = Map::new();
    for f in FIELDS {
        let v = s.get(f.name).unwrap_or_default();
        if f.secret {
            m.insert(format!("{}_set", f.name), Value::Bool(!v.is_empty()));
        } else if f.name == "script_timeout_secs" {
            m.insert(f.name.into(), json!(s.script_timeout_secs));
        } else {
            m.insert(f.name.into(), Value::String(v));
        }
    }
    Value::Object(m)
}

/// The (field, value) changes of a settings body: an object of field names with strings
/// (numbers are taken as their text); fields left out keep their value.
fn settings_changes(req: &Request) -> Result<Vec<(String, String)>> {
    let body: Map<String, Value> = parse_body(req)?;
    let mut changes = Vec::new();
    let mut problems = Vec::new();
    for (k, v) in body {
        match v {
            Value::String(s) => changes.push((k, s)),
            Value::Number(n) => changes.push((k, n.to_string())),
            _ => problems.push(FieldError::new(k, "must be a string")),
        }
    }
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    Ok(changes)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VariableBody {
    value: String,
}

/// A device's template values; fields left out keep their value, `""` clears one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValuesBody {
    label: Option<String>,
    tl_timezone: Option<String>,
    tl_timezone_name: Option<String>,
    default_parkext: Option<String>,
    r#override: Option<String>,
}

/// One line; fields left out keep their value (a new line starts empty).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LineBody {
    sip_user: Option<String>,
    sip_password: Option<String>,
    line_label: Option<String>,
    display_name: Option<String>,
    extension: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
}

impl LineBody {
    fn apply(self, old: Option<&Line>, n: u32) -> Line {
        let mut l = old.cloned().unwrap_or(Line {
            line: n,
            ..Default::default()
        });
        let set = |field: &mut String, v: Option<String>| {
            if let Some(v) = v {
                *field = v.trim().to_string();
            }
        };
        set(&mut l.auth_user_id, self.sip_user);
        if let Some(p) = self.sip_password {
            l.auth_password = p;
        }
        set(&mut l.label, self.line_label);
        set(&mut l.display_name, self.display_name);
        set(&mut l.extension, self.extension);
        set(&mut l.first_name, self.first_name);
        set(&mut l.last_name, self.last_name);
        l
    }
}

fn values_json(d: &Device) -> Value {
    let v = &d.vars;
    let over = templating::mask_override(&v.override_attrs);
    json!({
        "mac": d.mac,
        "label": v.label,
        "tl_timezone": v.tl_timezone,
        "tl_timezone_name": v.tl_timezone_name,
        "default_parkext": v.default_parkext,
        "override": over,
        "lines": d.lines.iter().map(|l| json!({
            "line": l.line,
            "sip_user": l.auth_user_id,
            "sip_password_set": !l.auth_password.is_empty(),
            "line_label": l.label,
            "display_name": l.display_name,
            "extension": l.extension,
            "first_name": l.first_name,
            "last_name": l.last_name,
        })).collect::<Vec<_>>(),
    })
}
