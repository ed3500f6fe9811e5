//! `/api/v1/accounts/<slug>/{sites,groups,policies}`: sites and their devices, device
//! groups with priorities and members, and policy values at account, site, group and
//! device level (`domain::policy`). Values of secret parameters are write-only: they are
//! listed masked, with `"secret": true`.

use rouille::{Request, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::accounts::macs_of;
use super::{Api, error_response, parse_body};
use crate::actions::Actor;
use crate::actions::provisioning::mask;
use crate::db::policies::{self as pq, Group, Policy};
use crate::domain::account::Account;
use crate::domain::policy::Target;
use crate::domain::polycom::params;
use crate::domain::users::Action;
use crate::error::{Error, Result};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteBody {
    name: String,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupBody {
    name: String,
    #[serde(default)]
    priority: i64,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriorityBody {
    priority: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MembersBody {
    macs: Vec<String>,
    #[serde(default)]
    remove: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyBody {
    scope: String,
    parameter: String,
    value: String,
}

/// A policy value as listed: scope as `Target` names it, secrets masked.
pub fn policy_json(p: &Policy) -> Value {
    let scope = match p.scope.as_str() {
        "account" => "account".to_string(),
        kind => format!("{kind}:{}", p.target),
    };
    json!({
        "scope": scope, "parameter": p.parameter, "value": mask(&p.parameter, &p.value),
        "secret": params::is_secret(&p.parameter),
    })
}

fn group_json(conn: &rusqlite::Connection, g: &Group) -> Result<Value> {
    Ok(json!({
        "name": g.name, "priority": g.priority, "description": g.description,
        "members": pq::list_members(conn, g.id)?,
    }))
}

fn group_named(conn: &rusqlite::Connection, a: &Account, name: &str) -> Result<Group> {
    pq::find_group(conn, a.id.0, name)?.ok_or_else(|| Error::not_found(format!("group `{name}`")))
}

pub fn route(
    api: &Api,
    req: &Request,
    actor: &Actor<'_>,
    a: &Account,
    rest: &[&str],
) -> Result<Response> {
    let mut conn = api.console.conn()?;
    let conn = &mut *conn;
    let who = &actor.who;
    let m = req.method();
    if m != "GET" {
        actor.user.require(Action::ManagePolicies)?;
    }
    match (m, rest) {
        ("GET", ["sites"]) => {
            let sites: Vec<Value> = pq::list_sites(conn, a.id.0)?
                .into_iter()
                .map(|s| json!({"name": s.name, "description": s.description}))
                .collect();
            Ok(Response::json(&json!({ "sites": sites })))
        }
        ("POST", ["sites"]) => {
            let b: SiteBody = parse_body(req)?;
            crate::actions::policy::add_site(conn, who, a, b.name.trim(), b.description.trim())?;
            Ok(
                Response::json(
                    &json!({"name": b.name.trim(), "description": b.description.trim()}),
                )
                .with_status_code(201),
            )
        }
        ("DELETE", ["sites", name]) => {
            crate::actions::policy::delete_site(conn, who, a, name)?;
            Ok(Response::empty_204())
        }
        ("PUT", ["sites", name, "devices"]) => {
            let b: MembersBody = parse_body(req)?;
            let macs = macs_of(&b.macs)?;
            let site = (!b.remove).then_some(*name);
            if b.remove && pq::find_site(conn, a.id.0, name)?.is_none() {
                return Err(Error::not_found(format!("site `{name}`")));
            }
            crate::actions::policy::assign_site(conn, who, a, site, &macs)?;
            Ok(Response::empty_204())
        }
        ("GET", ["groups"]) => {
            let groups = pq::list_groups(conn, a.id.0)?
                .iter()
                .map(|g| group_json(conn, g))
                .collect::<Result<Vec<_>>>()?;
            Ok(Response::json(&json!({ "groups": groups })))
        }
        ("POST", ["groups"]) => {
            let b: GroupBody = parse_body(req)?;
            crate::actions::policy::add_group(
                conn,
                who,
                a,
                b.name.trim(),
                b.priority,
                b.description.trim(),
            )?;
            let g = group_named(conn, a, b.name.trim())?;
            Ok(Response::json(&group_json(conn, &g)?).with_status_code(201))
        }
        ("GET", ["groups", name]) => Ok(Response::json(&group_json(
            conn,
            &group_named(conn, a, name)?,
        )?)),
        ("PUT", ["groups", name]) => {
            let b: PriorityBody = parse_body(req)?;
            crate::actions::policy::set_group_priority(conn, who, a, name, b.priority)?;
            Ok(Response::json(&group_json(
                conn,
                &group_named(conn, a, name)?,
            )?))
        }
        ("DELETE", ["groups", name]) => {
            crate::actions::policy::delete_group(conn, who, a, name)?;
            Ok(Response::empty_204())
        }
        ("POST", ["groups", name, "members"]) => {
            let b: MembersBody = parse_body(req)?;
            let macs = macs_of(&b.macs)?;
            crate::actions::policy::set_membership(conn, who, a, name, &macs, !b.remove)?;
            Ok(Response::json(&group_json(
                conn,
                &group_named(conn, a, name)?,
            )?))
        }
        ("GET", ["policies"]) => {
            let list: Vec<Value> = pq::list_policies(conn, a.id.0)?
                .iter()
                .map(policy_json)
                .collect();
            Ok(Response::json(&json!({ "policies": list })))
        }
        ("PUT", ["policies"]) => {
            let b: PolicyBody = parse_body(req)?;
            let target = Target::parse(b.scope.trim())?;
            let parameter = b.parameter.trim();
            let warnings =
                crate::actions::policy::set_policy(conn, who, a, &target, parameter, &b.value)?;
            let macs = crate::actions::sip::affected_by_target(conn, a, &target)?;
            let after = api.console.after_change(conn, actor, a, macs);
            Ok(Response::json(&json!({
                "scope": target.to_string(), "parameter": parameter,
                "value": mask(parameter, &b.value), "secret": params::is_secret(parameter),
                "warnings": warnings, "after_change": after,
            })))
        }
        ("DELETE", ["policies"]) => {
            let scope = req.get_param("scope").unwrap_or_default();
            let parameter = req.get_param("parameter").unwrap_or_default();
            let target = Target::parse(scope.trim())?;
            crate::actions::policy::unset_policy(conn, who, a, &target, parameter.trim())?;
            let macs = crate::actions::sip::affected_by_target(conn, a, &target)?;
            api.console.after_change(conn, actor, a, macs);
            Ok(Response::empty_204())
        }
        (
            _,
            ["sites" | "groups" | "policies"]
            | ["sites", _]
            | ["sites", _, "devices"]
            | ["groups", _]
            | ["groups", _, "members"],
        ) => Ok(error_response(&Error::MethodNotAllowed(m.into()))),
        _ => Err(Error::not_found(format!("API route {}", req.url()))),
    }
}
