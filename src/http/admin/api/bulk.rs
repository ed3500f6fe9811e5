//! `POST /api/v1/accounts/{slug}/devices/bulk`: the device list's bulk actions
//! (`actions::bulk`) for scripts. The body names the devices one way — `macs`, or `filter`
//! (the inventory's `state`, `flag`, `site`, `group`, `q`) with `expected`, the count the
//! caller saw — and the action (`site`, `group-add`, `group-remove`, `profile`, `readmit`,
//! `delete`) with its `value`. `dry_run: true` answers the preview (the count and each
//! phone the action would strand, with why) and changes nothing; phones stranded answer
//! 409 with them until `"confirm": true`; a filter whose matches no longer number
//! `expected` answers 409 and changes nothing. `"background": true` checks the same first,
//! then runs the action as a job (`actions::device_jobs`) and answers 202 at once, with the
//! job and its `Location` (`GET /api/v1/accounts/{slug}/jobs/{id}`: state, done of total,
//! outcome).

use rouille::{Request, Response};
use serde::Deserialize;
use serde_json::json;

use super::parse_body;
use crate::actions::bulk::{self, Bulk};
use crate::actions::device_jobs::Work;
use crate::actions::{Actor, Unwatched};
use crate::domain::account::Account;
use crate::domain::inventory::Filter;
use crate::domain::mac::Mac;
use crate::error::{Error, Result};
use crate::http::admin::console::jobs;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterBody {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    flag: Option<String>,
    #[serde(default)]
    site: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    q: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    action: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    macs: Option<Vec<String>>,
    #[serde(default)]
    filter: Option<FilterBody>,
    #[serde(default)]
    expected: Option<usize>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    confirm: bool,
    #[serde(default)]
    background: bool,
}

pub fn post(
    c: &crate::http::admin::console::Console,
    req: &Request,
    actor: &Actor<'_>,
    a: &Account,
) -> Result<Response> {
    let b: Body = parse_body(req)?;
    let what = Bulk::parse(&b.action, &b.value)?;
    let (macs, expected) = match (b.macs, b.filter) {
        (Some(list), None) => {
            let mut macs = Vec::with_capacity(list.len());
            for (i, m) in list.iter().enumerate() {
                macs.push(m.parse::<Mac>().map_err(|_| {
                    Error::invalid(format!("macs[{i}]"), format!("`{m}` is not a MAC address"))
                })?);
            }
            let n = b.expected.unwrap_or(macs.len());
            (macs, n)
        }
        (None, Some(f)) => {
            let get = |k: &str| -> Option<String> {
                match k {
                    "state" => f.state.clone(),
                    "flag" => f.flag.clone(),
                    "site" => f.site.clone(),
                    "group" => f.group.clone(),
                    "q" => f.q.clone(),
                    _ => None,
                }
            };
            let filter: Filter = crate::http::admin::console::inventory::filter_from(&get)?;
            let macs = crate::actions::inventory::matching_macs(&*c.conn()?, a, &filter)?;
            let n = match (b.expected, b.dry_run) {
                (Some(n), _) => n,
                (None, true) => macs.len(),
                (None, false) => {
                    return Err(Error::invalid(
                        "expected",
                        "say how many devices the filter matched when you looked (a dry run tells)",
                    ));
                }
            };
            (macs, n)
        }
        _ => {
            return Err(Error::invalid(
                "macs",
                "name the devices one way: `macs`, or `filter` with `expected`",
            ));
        }
    };
    let mut conn = c.conn()?;
    if b.dry_run {
        let p = bulk::preview(&mut conn, actor, &what, &macs)?;
        return Ok(Response::json(&json!({
            "description": p.description, "count": p.count,
            "macs": macs.iter().map(Mac::as_str).collect::<Vec<_>>(),
            "affected": p.impact.phones,
        })));
    }
    if b.background {
        // Refused at once, as when the caller waits; nothing changes before the job runs.
        bulk::check(&mut conn, actor, &what, &macs, expected, b.confirm)?;
        drop(conn);
        let work = Work::Bulk {
            bulk: what,
            macs,
            expected,
            confirm: b.confirm,
        };
        let id = jobs::start(c, actor.user, a, actor.who.clone(), work)?;
        return super::job_response(c, actor, id, 202);
    }
    let n = bulk::run(
        &mut conn,
        actor,
        &what,
        &macs,
        expected,
        b.confirm,
        &mut Unwatched,
    )?;
    Ok(Response::json(&json!({
        "description": what.describe(n), "changed": n,
    })))
}
