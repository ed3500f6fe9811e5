//! The JSON API under `/api/v1`: profiles, subscribers (reference IDs), devices, bulk import
//! jobs and Find, for scripts; the firmware catalogue, shared phone files and overrides are
//! in `api_files`; accounts, Auto-Sync, sites, groups, policies, inventory, effective
//! settings, export/import and the audit log in the modules below (`accounts`, `policies`,
//! `inventory`, `transfer`); provisioning settings, template variables, device template
//! values and the preview in `settings`. Bearer tokens created in the console (stored
//! hashed) act with their user's role and company, through the same `actions` as the
//! pages.
//!
//! Every error has one shape, `{"error": {"status", "message", "fields": [{"field",
//! "message"}]}}`, with the status of `http::status_for`; a 409 for an action that would
//! lock devices out adds `"devices": N` (send `"confirm": true` to go ahead).
//! `openapi.json` (served at `/api/v1/openapi.json`) describes exactly these routes; a test
//! checks it against the live server.

mod accounts;
mod bulk;
mod enrolment;
mod inventory;
mod policies;
mod transfer;

use std::sync::Arc;

use rouille::{Request, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::console::Console;
use super::console::find::{page_json, search_of};
use crate::actions::import::{self, ImportRequest};
use crate::actions::{Actor, associations};
use crate::actions::{profiles as profile_ops, signin};
use crate::db::{assoc as aq, jobs, profiles as pq};
use crate::domain::account::Account;
use crate::domain::csvimport;
use crate::domain::device::{Device, DeviceInput, Line, VendorExtensions};
use crate::domain::mac::Mac;
use crate::domain::profile::{Polling, Profile, ProfileFields};
use crate::domain::subscriber::SubscriberInput;
use crate::domain::users::{Action, User};
use crate::error::{Error, Result};
use crate::http::engine::conn::Peer;

mod settings;

/// The OpenAPI 3 document of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The API: shares the console's state.
pub struct Api {
    pub console: Arc<Console>,
}

/// The one error envelope.
pub fn error_response(e: &Error) -> Response {
    let status = crate::http::status_for(e);
    let fields: Vec<Value> = match e {
        Error::Invalid(list) => list
            .iter()
            .map(|f| json!({"field": f.field, "message": f.message}))
            .collect(),
        _ => Vec::new(),
    };
    let mut body = json!({"error": {"status": status, "message": crate::http::public_message(e), "fields": fields}});
    if let Error::NeedsConfirmation {
        devices, phones, ..
    } = e
    {
        body["error"]["devices"] = json!(devices);
        body["error"]["phones"] = json!(phones);
    }
    let mut r = Response::json(&body).with_status_code(status);
    match e {
        Error::Unauthorized => {
            r = r.with_additional_header("WWW-Authenticate", "Bearer realm=\"zerotouch\"")
        }
        Error::TooManyAttempts(s) | Error::Busy(s) => {
            r = r.with_additional_header("Retry-After", s.to_string())
        }
        _ => {}
    }
    r
}

/// The request body's bytes (read once).
pub(super) fn body_bytes(req: &Request) -> Result<Vec<u8>> {
    let mut data = req
        .data()
        .ok_or_else(|| Error::invalid("body", "the request body was already read"))?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut data, &mut bytes)
        .map_err(|e| Error::invalid("body", e.to_string()))?;
    Ok(bytes)
}

/// The request body as UTF-8 text.
pub(super) fn body_text(req: &Request) -> Result<String> {
    String::from_utf8(body_bytes(req)?).map_err(|_| Error::invalid("body", "is not UTF-8 text"))
}

pub(super) fn parse_body<T: serde::de::DeserializeOwned>(req: &Request) -> Result<T> {
    let bytes = body_bytes(req)?;
    if bytes.is_empty() {
        return Err(Error::invalid("body", "a JSON object is required"));
    }
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." || path.is_empty() {
            "body".to_string()
        } else {
            path
        };
        Error::invalid(field, e.into_inner().to_string())
    })
}

pub(super) fn mac_param(s: &str) -> Result<Mac> {
    s.parse::<Mac>()
        .map_err(|_| Error::not_found(format!("device `{s}`")))
}

impl Api {
    pub fn handle(&self, req: &Request, _peer: &Peer) -> Response {
        let url = req.url();
        if url == "/api/v1/openapi.json" && req.method() == "GET" {
            return Response::from_data("application/json", OPENAPI);
        }
        match self.authorized(req).and_then(|user| self.route(req, &user)) {
            Ok(r) => r,
            Err(e) => error_response(&e),
        }
    }

    fn authorized(&self, req: &Request) -> Result<User> {
        let header = req.header("Authorization").unwrap_or("");
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or(Error::Unauthorized)?;
        let conn = self.console.conn()?;
        signin::token_user(&conn, token)?.ok_or(Error::Unauthorized)
    }

    /// Routes an authenticated request: `/accounts/{account}/<area>/…` acts in that
    /// account, the same routes without the prefix in the default account (their aliases),
    /// and `/accounts/…` itself goes to the accounts area. The token's user becomes the user
    /// as they act in that account (`actions::tenants::act_in`): an account they have no
    /// role in is not found.
    fn route(&self, req: &Request, token_user: &User) -> Result<Response> {
        let segs = super::console::path_segments(req, "/api/v1");
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let (slug, segs) = match segs.as_slice() {
            ["accounts", slug, area, ..] if ACCOUNT_AREAS.contains(area) => {
                (Some(*slug), &segs[2..])
            }
            ["accounts", slug, "assets", ..] => {
                let (user, account) = crate::actions::tenants::act_in(
                    &*self.console.conn()?,
                    token_user,
                    Some(slug),
                )?;
                return super::api_files::account_assets(
                    &self.console,
                    req,
                    &user,
                    &account,
                    &segs[2..],
                )
                .unwrap_or_else(|| Err(no_route(req)));
            }
            ["accounts", rest @ ..] => return accounts::route(self, req, token_user, rest),
            _ => (None, &segs[..]),
        };
        let (user, account) =
            crate::actions::tenants::act_in(&*self.console.conn()?, token_user, slug)?;
        self.route_in(req, &user, &account, segs)
    }

    /// Routes a request acting in `account` to its area: one function per kind of thing.
    fn route_in(
        &self,
        req: &Request,
        user: &User,
        account: &Account,
        segs: &[&str],
    ) -> Result<Response> {
        let c = &self.console;
        let actor = token_actor(c, user, account);
        let m = req.method();
        if let Some(r) = super::api_files::route(c, req, user, &actor, segs) {
            return r;
        }
        if settings::handles(segs) {
            return settings::route(c, req, user, &actor, segs);
        }
        match segs {
            ["profiles", rest @ ..] => profiles(c, req, &actor, rest),
            ["subscribers", rest @ ..] => subscribers(c, req, user, &actor, rest),
            // Lens: a device's effective settings.
            ["devices", mac, "effective-settings"] => inventory::effective(self, req, user, mac),
            // Apply now: SIP check-sync (count, then confirm).
            ["devices", "apply-now"] => match m {
                "POST" => apply_now(c, req, &actor),
                _ => not_allowed(m),
            },
            // The device list's bulk actions (preview, count, confirm).
            ["devices", "bulk"] => match m {
                "POST" => bulk::post(c, req, &actor, account),
                _ => not_allowed(m),
            },
            ["devices", rest @ ..] => devices(c, req, user, &actor, rest),
            ["imports", rest @ ..] => imports(c, req, user, &actor, rest),
            // Device jobs: a bulk action run in the background (`"background": true`).
            ["jobs", id] => match m {
                "GET" => {
                    let job =
                        crate::actions::device_jobs::job_for(&*c.conn()?, &actor, &c.jobs, id)?;
                    Ok(Response::json(&job))
                }
                _ => not_allowed(m),
            },
            ["find"] => match m {
                "GET" => {
                    // Find acts in the account of the route, as every area does (the alias
                    // `/find` in the default account).
                    let mut s = search_of(req)?;
                    s.query.accounts = Some(vec![account.id.0]);
                    Ok(Response::json(&page_json(&*c.conn()?, &s, user)?))
                }
                _ => not_allowed(m),
            },
            // Lens: the audit log.
            ["audit"] => transfer::audit_log(self, req, &actor),
            // The whole installation: every account and the installation-wide settings.
            ["export" | "import"] => transfer::installation(self, req, &actor, segs),
            _ => Err(no_route(req)),
        }
    }
}

/// The areas that act in one account, under `/accounts/{account}/` and, for the default
/// account, without that prefix.
const ACCOUNT_AREAS: [&str; 6] = [
    "profiles",
    "subscribers",
    "devices",
    "imports",
    "jobs",
    "find",
];

/// The actor of an API request: the token's user in `account`, audited as the token's owner
/// through the API.
pub(super) fn token_actor<'a>(c: &'a Console, user: &'a User, account: &'a Account) -> Actor<'a> {
    let mut actor = c.actor(user, account);
    actor.who = crate::domain::audit::Actor::token(format!("{} (API token)", user.username));
    actor
}

/// A device job as JSON with `status`, and its `Location`.
pub(super) fn job_response(
    c: &Console,
    actor: &Actor<'_>,
    id: i64,
    status: u16,
) -> Result<Response> {
    let job = crate::actions::device_jobs::job_for(&*c.conn()?, actor, &c.jobs, &id.to_string())?;
    Ok(Response::json(&job)
        .with_status_code(status)
        .with_additional_header(
            "Location",
            format!("/api/v1/accounts/{}/jobs/{id}", actor.account.slug),
        ))
}

/// `POST /devices/apply-now`: the body names the devices one way (`macs`, `group`,
/// `site`, or `account: true`); 409 with the phones that would restart until `confirm`.
fn apply_now(c: &Console, req: &Request, actor: &Actor<'_>) -> Result<Response> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[serde(default)]
        macs: Vec<String>,
        group: Option<String>,
        site: Option<String>,
        #[serde(default)]
        account: bool,
        #[serde(default)]
        confirm: bool,
    }
    let b: Body = parse_body(req)?;
    let ways = [
        !b.macs.is_empty(),
        b.group.is_some(),
        b.site.is_some(),
        b.account,
    ];
    let selection = match (ways.iter().filter(|w| **w).count(), b.group, b.site) {
        (0, ..) => {
            return Err(Error::invalid(
                "macs",
                "name devices: macs, group, site or account",
            ));
        }
        (1, Some(g), _) => crate::actions::sip::Selection::Group(g),
        (1, _, Some(s)) => crate::actions::sip::Selection::Site(s),
        (1, ..) if b.account => crate::actions::sip::Selection::Account,
        (1, ..) => crate::actions::sip::Selection::Macs(b.macs),
        _ => {
            return Err(Error::invalid(
                "body",
                "name devices one way: macs, group, site or account",
            ));
        }
    };
    let report = crate::actions::sip::apply_now(
        &mut *c.conn()?,
        actor,
        &c.config().sip,
        &selection,
        b.confirm,
    )?;
    Ok(Response::json(&report))
}

/// A method a known route does not answer: 405 in the error envelope.
pub(super) fn not_allowed(method: &str) -> Result<Response> {
    Ok(error_response(&Error::MethodNotAllowed(method.to_string())))
}

/// A path no route answers.
fn no_route(req: &Request) -> Error {
    Error::not_found(format!("API route {}", req.url()))
}

/// `/profiles` and `/profiles/{name}`.
fn profiles(c: &Console, req: &Request, actor: &Actor<'_>, rest: &[&str]) -> Result<Response> {
    let m = req.method();
    match (m, rest) {
        ("GET", []) => {
            let rows = profile_ops::list_profiles(&*c.conn()?, actor)?;
            Ok(Response::json(&json!({ "profiles": rows })))
        }
        ("POST", []) => {
            let body: ProfileBody = parse_body(req)?;
            let (fields, files) = body.into_parts()?;
            let mut conn = c.conn()?;
            profile_ops::create_profile(
                &mut conn,
                actor,
                &fields,
                files.unwrap_or_default(),
                profile_ops::transport(&c.config()),
            )?;
            let (p, _) = profile_ops::profile(&conn, actor, &fields.name)?;
            Ok(
                Response::json(&profile_json(&p, pq::count_profile_devices(&conn, p.id)?))
                    .with_status_code(201),
            )
        }
        ("GET", [name]) => {
            let conn = c.conn()?;
            let (p, _) = profile_ops::profile(&conn, actor, name)?;
            Ok(Response::json(&profile_json(
                &p,
                pq::count_profile_devices(&conn, p.id)?,
            )))
        }
        ("PUT", [name]) => {
            let body: ProfileBody = parse_body(req)?;
            let keep = body.prov_password.is_none();
            let (fields, files) = body.into_parts()?;
            let mut conn = c.conn()?;
            profile_ops::update_profile(
                &mut conn,
                actor,
                name,
                &fields,
                files,
                keep,
                profile_ops::transport(&c.config()),
            )?;
            let (p, _) = profile_ops::profile(&conn, actor, &fields.name)?;
            let macs = crate::actions::sip::affected_by_profile(&conn, p.id)?;
            let after = c.after_change(&conn, actor, actor.account, macs);
            let mut out = profile_json(&p, pq::count_profile_devices(&conn, p.id)?);
            out["after_change"] = serde_json::to_value(&after).unwrap_or_default();
            Ok(Response::json(&out))
        }
        ("DELETE", [name]) => {
            profile_ops::delete_profile(&mut *c.conn()?, actor, name)?;
            Ok(Response::empty_204())
        }
        (_, [] | [_]) => not_allowed(m),
        _ => Err(no_route(req)),
    }
}

/// `/subscribers` and `/subscribers/{reference_id}`: reference IDs with their contact.
fn subscribers(
    c: &Console,
    req: &Request,
    user: &User,
    actor: &Actor<'_>,
    rest: &[&str],
) -> Result<Response> {
    let m = req.method();
    match (m, rest) {
        ("POST", []) => {
            user.require(Action::Associate)?;
            let body: SubscriberInput = parse_body(req)?;
            let mut conn = c.conn()?;
            associations::create_subscriber(&mut conn, actor, &body)?;
            Ok(
                Response::json(&subscriber_json(&conn, actor, body.reference_id.trim())?)
                    .with_status_code(201),
            )
        }
        ("GET", [r]) => Ok(Response::json(&subscriber_json(&*c.conn()?, actor, r)?)),
        ("PUT", [r]) => {
            user.require(Action::Associate)?;
            let body: SubscriberInput = parse_body(req)?;
            let mut conn = c.conn()?;
            associations::update_subscriber(&mut conn, actor, r, &body)?;
            Ok(Response::json(&subscriber_json(
                &conn,
                actor,
                body.reference_id.trim(),
            )?))
        }
        ("DELETE", [r]) => {
            user.require(Action::Associate)?;
            associations::delete_subscriber(&mut *c.conn()?, actor, r)?;
            Ok(Response::empty_204())
        }
        (_, [] | [_]) => not_allowed(m),
        _ => Err(no_route(req)),
    }
}

/// `/devices`, `/devices/{mac}` and its copy and replace operations.
fn devices(
    c: &Console,
    req: &Request,
    user: &User,
    actor: &Actor<'_>,
    rest: &[&str],
) -> Result<Response> {
    let m = req.method();
    match (m, rest) {
        ("POST", []) => {
            user.require(Action::Associate)?;
            let body: DeviceBody = parse_body(req)?;
            let reference = body.reference_id.clone();
            let input = body.into_input();
            let mut conn = c.conn()?;
            let macs = associations::associate(&mut conn, actor, reference.as_deref(), &[input])?;
            Ok(Response::json(&device_json(&conn, actor, &macs[0])?).with_status_code(201))
        }
        ("GET", [mac]) => Ok(Response::json(&device_json(
            &*c.conn()?,
            actor,
            &mac_param(mac)?,
        )?)),
        ("PUT", [mac]) => {
            user.require(Action::Associate)?;
            let mac = mac_param(mac)?;
            let body: DeviceBody = parse_body(req)?;
            let confirm = body.confirm;
            let mut conn = c.conn()?;
            associations::modify_device(&mut conn, actor, &mac, &body.into_input(), confirm)?;
            Ok(Response::json(&device_json(&conn, actor, &mac)?))
        }
        ("DELETE", [mac]) => {
            user.require(Action::Associate)?;
            let mac = mac_param(mac)?;
            // A seen phone is counted first: 409 until `?confirm=true`.
            let confirm = matches!(req.get_param("confirm").as_deref(), Some("true" | "1"));
            associations::delete_device(&mut *c.conn()?, actor, &mac, confirm)?;
            Ok(Response::empty_204())
        }
        ("POST", [mac, op @ ("copy" | "replace")]) => {
            user.require(Action::Associate)?;
            let mac = mac_param(mac)?;
            let body: MacChange = parse_body(req)?;
            let mut conn = c.conn()?;
            let new = if *op == "copy" {
                associations::copy_device(&mut conn, actor, &mac, &body.new_mac, &body.serial)?
            } else {
                let (new, moved) = associations::replace_device(
                    &mut conn,
                    actor,
                    &mac,
                    &body.new_mac,
                    &body.serial,
                    body.confirm,
                )?;
                super::console::devices::move_files(c, &mac, &new, &moved);
                new
            };
            let status = if *op == "copy" { 201 } else { 200 };
            Ok(Response::json(&device_json(&conn, actor, &new)?).with_status_code(status))
        }
        (_, [] | [_] | [_, "copy" | "replace"]) => not_allowed(m),
        _ => Err(no_route(req)),
    }
}

/// `/imports` (a bulk association job run inline) and a job with its rejected lines.
fn imports(
    c: &Console,
    req: &Request,
    user: &User,
    actor: &Actor<'_>,
    rest: &[&str],
) -> Result<Response> {
    let m = req.method();
    match (m, rest) {
        ("POST", []) => {
            user.require(Action::Associate)?;
            let ireq = ImportRequest {
                file_name: req
                    .get_param("file_name")
                    .unwrap_or_else(|| "api.csv".into()),
                reference_id: req.get_param("reference_id").filter(|r| !r.is_empty()),
                dry_run: matches!(req.get_param("dry_run").as_deref(), Some("true" | "1")),
                max_rows: c.config().console.csv_max_rows,
            };
            let mut data = req
                .data()
                .ok_or_else(|| Error::invalid("body", "already read"))?;
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut data, &mut bytes)
                .map_err(|e| Error::invalid("body", e.to_string()))?;
            let mut conn = c.conn()?;
            let id = import::create_job(&conn, actor, &ireq)?;
            let job = import::run_job(&mut conn, actor, id, &ireq, &bytes)?;
            Ok(Response::json(&job).with_status_code(201))
        }
        ("GET", [id]) => Ok(Response::json(&job_for(c, user, id)?)),
        ("GET", [id, "rejected"]) => {
            let job = job_for(c, user, id)?;
            let rows = jobs::list_job_errors(&*c.conn()?, job.id)?;
            if req.header("Accept").unwrap_or("").contains("text/csv") {
                return Ok(Response::from_data(
                    "text/csv; charset=utf-8",
                    csvimport::rejected_file(job.id, &rows),
                ));
            }
            Ok(Response::json(&json!({ "job": job.id, "rejected": rows })))
        }
        (_, [] | [_] | [_, "rejected"]) => not_allowed(m),
        _ => Err(no_route(req)),
    }
}

fn job_for(c: &Console, user: &User, id: &str) -> Result<jobs::Job> {
    import::job_for(&*c.conn()?, user, id)
}

/// Uploaded files as (name, bytes).
type NamedFiles = Vec<(String, Vec<u8>)>;

/// A profile as the API writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileBody {
    name: String,
    #[serde(default)]
    vendor_model: Option<String>,
    #[serde(default)]
    prov_server: String,
    #[serde(default)]
    prov_user: String,
    /// Absent keeps the current password on PUT.
    #[serde(default)]
    prov_password: Option<String>,
    #[serde(default)]
    polling: Option<String>,
    #[serde(default)]
    boot_server_option: String,
    #[serde(default)]
    option60_type: String,
    #[serde(default)]
    quick_setup: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    software: std::collections::BTreeMap<String, String>,
    /// Absent keeps the current files on PUT; present replaces them.
    #[serde(default)]
    files: Option<Vec<FileBody>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBody {
    name: String,
    content: String,
}

impl ProfileBody {
    fn into_parts(self) -> Result<(ProfileFields, Option<NamedFiles>)> {
        let polling = Polling::parse(self.polling.as_deref().unwrap_or("none"))?;
        let software = crate::domain::profile::parse_software(
            &self
                .software
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>(),
        )?;
        let fields = ProfileFields {
            name: self.name.trim().into(),
            vendor_model: self
                .vendor_model
                .unwrap_or_else(|| crate::domain::polycom::models::UCS_VENDOR_MODEL.into()),
            prov_server: self.prov_server.trim().into(),
            prov_user: self.prov_user.trim().into(),
            prov_password: self.prov_password.unwrap_or_default(),
            polling,
            boot_server_option: self.boot_server_option,
            option60_type: self.option60_type,
            quick_setup: self.quick_setup,
            language: self.language,
            software,
        };
        let files = self.files.map(|fs| {
            fs.into_iter()
                .map(|f| (f.name, f.content.into_bytes()))
                .collect()
        });
        Ok((fields, files))
    }
}

fn profile_json(p: &Profile, devices: i64) -> Value {
    let f = &p.fields;
    json!({
        "name": f.name, "vendor_model": f.vendor_model, "prov_server": crate::domain::provserver::mask_password(&f.prov_server), "prov_user": f.prov_user,
        "prov_password_set": !f.prov_password.is_empty(), "polling": f.polling.as_str(),
        "boot_server_option": f.boot_server_option, "option60_type": f.option60_type, "quick_setup": f.quick_setup,
        "language": f.language,
        "software": f.software.iter().map(|(k, v)| (k.name().to_string(), Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
        "files": p.files.iter().map(|x| json!({"name": x.file_name, "size": x.content.len(), "sha256": x.sha256})).collect::<Vec<_>>(),
        "devices": devices,
    })
}

fn subscriber_json(
    conn: &rusqlite::Connection,
    actor: &Actor<'_>,
    reference_id: &str,
) -> Result<Value> {
    let s = associations::subscriber(conn, actor, reference_id)?;
    let devices = aq::list_subscriber_devices(conn, s.id)?;
    let mut v = serde_json::to_value(&s).map_err(|e| Error::invalid("body", e.to_string()))?;
    if let Value::Object(map) = &mut v {
        map.remove("id");
        map.insert(
            "devices".into(),
            json!(devices.iter().map(|d| d.mac.clone()).collect::<Vec<_>>()),
        );
    }
    Ok(v)
}

/// A device as the API reads it: `id` is the MAC (Lens-style), `profile` its name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceBody {
    #[serde(default)]
    id: String,
    profile: String,
    #[serde(default)]
    serial: String,
    #[serde(default)]
    vendor_model: String,
    #[serde(default)]
    reference_id: Option<String>,
    #[serde(default)]
    sip_server: String,
    #[serde(default)]
    outbound_proxy: String,
    #[serde(default)]
    prov_server: String,
    #[serde(default)]
    prov_user: String,
    #[serde(default)]
    prov_password: String,
    #[serde(default)]
    polling: String,
    #[serde(default)]
    sip_auth_user_id: String,
    #[serde(default)]
    sip_auth_password: String,
    #[serde(default)]
    line_label: String,
    #[serde(default)]
    display_name: String,
    /// Goes ahead with a change that sends a seen phone to another server (409 first).
    #[serde(default)]
    confirm: bool,
}

impl DeviceBody {
    fn into_input(self) -> DeviceInput {
        DeviceInput {
            mac: self.id,
            serial: self.serial,
            vendor_model: self.vendor_model,
            profile: self.profile,
            ext: VendorExtensions {
                sip_server: self.sip_server,
                outbound_proxy: self.outbound_proxy,
                prov_server: self.prov_server,
                prov_user: self.prov_user,
                prov_password: self.prov_password,
                polling: self.polling,
            },
            line1: Line {
                line: 1,
                auth_user_id: self.sip_auth_user_id,
                auth_password: self.sip_auth_password,
                label: self.line_label,
                display_name: self.display_name,
                ..Default::default()
            },
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MacChange {
    new_mac: String,
    #[serde(default)]
    serial: String,
    /// Goes ahead replacing a phone that was seen (409 first, counting it).
    #[serde(default)]
    confirm: bool,
}

fn device_json(conn: &rusqlite::Connection, actor: &Actor<'_>, mac: &Mac) -> Result<Value> {
    let d: Device = associations::device(conn, actor, mac)?;
    let reference = associations::device_subscriber(conn, mac)?;
    let activity = crate::db::devices::find_activity(conn, d.id)?;
    let line = d
        .lines
        .iter()
        .find(|l| l.line == 1)
        .cloned()
        .unwrap_or_default();
    let e = &d.ext;
    Ok(json!({
        "id": d.mac, "serial": d.serial, "vendor_model": d.vendor_model, "profile": d.profile_name,
        "reference_id": reference, "sip_server": e.sip_server, "outbound_proxy": e.outbound_proxy,
        "prov_server": crate::domain::provserver::mask_password(&e.prov_server), "prov_user": e.prov_user, "prov_password_set": !e.prov_password.is_empty(),
        "polling": e.polling, "sip_auth_user_id": line.auth_user_id, "sip_auth_password_set": !line.auth_password.is_empty(),
        "line_label": line.label, "display_name": line.display_name,
        "last_access": activity.as_ref().map(|a| a.last_seen), "access_count": activity.as_ref().map(|a| a.access_count).unwrap_or(0),
    }))
}
