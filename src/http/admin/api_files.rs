//! The API's firmware catalogue, shared phone files and overrides made on phones (under
//! `/api/v1`): the same actions as the Firmware and Phone Files pages and the
//! device page, with the API's one error envelope. Reading is open to every token; changes
//! need an admin (`Action::ManageAssets`). An account's own shared files are under
//! `/accounts/{slug}/assets…`, changed by an admin of that account. Release zips arrive as a
//! body the connection loop streamed to disk (`AdminService::plan`).

use rouille::{Request, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::{mac_param, not_allowed, parse_body};
use super::console::Console;
use crate::actions::{Actor, associations};
use crate::domain::mac::Mac;
use crate::domain::users::{Action, User};
use crate::domain::{assets, directory, firmware};
use crate::error::{Error, Result};

/// Answers the routes of this module; `None` for any other path.
pub fn route(
    c: &Console,
    req: &Request,
    user: &User,
    actor: &Actor<'_>,
    segs: &[&str],
) -> Option<Result<Response>> {
    let known = assets_route(segs)
        || matches!(
            segs,
            ["devices", _, "overrides"] | ["overrides", "clear"] | ["firmware"] | ["firmware", _]
        );
    known.then(|| handle(c, req, user, actor, segs))
}

/// Whether `segs` is a route of the shared phone files.
fn assets_route(segs: &[&str]) -> bool {
    matches!(
        segs,
        ["assets"]
            | ["assets", "directory" | "directory.csv"]
            | ["assets", "files", _]
            | ["assets", "languages", _]
            | ["assets", "languages", _, _, _]
    )
}

/// `/accounts/{slug}/assets…`: the account's own shared files (served to its phones before
/// the installation's of the same name), managed by an admin of the account.
pub fn account_assets(
    c: &Console,
    req: &Request,
    user: &User,
    account: &crate::domain::account::Account,
    segs: &[&str],
) -> Option<Result<Response>> {
    let dir = crate::datadir::DataDirs::under(&c.config().data_dir).assets_of(&account.slug);
    assets_route(segs).then(|| assets_area(req, user, segs, &dir, Action::ManageAccounts))
}

/// Answers a route `route` knows, in its area.
fn handle(
    c: &Console,
    req: &Request,
    user: &User,
    actor: &Actor<'_>,
    segs: &[&str],
) -> Result<Response> {
    match segs.first() {
        Some(&"assets") => assets_area(req, user, segs, &assets_dir(c), Action::ManageAssets),
        Some(&"firmware") => firmware_area(c, req, user, segs),
        _ => overrides_area(c, req, user, actor, segs),
    }
}

/// A device's overrides, and clearing the overrides of several devices.
fn overrides_area(
    c: &Console,
    req: &Request,
    user: &User,
    actor: &Actor<'_>,
    segs: &[&str],
) -> Result<Response> {
    let m = req.method();
    match (m, segs) {
        ("GET", ["devices", mac, "overrides"]) => {
            let mac = mac_param(mac)?;
            let conn = c.conn()?;
            associations::device(&conn, actor, &mac)?;
            Ok(Response::json(&overrides_json(c, &conn, &mac)?))
        }
        ("DELETE", ["devices", mac, "overrides"]) => {
            user.require(Action::ManageAssets)?;
            let mac = mac_param(mac)?;
            let conn = c.conn()?;
            associations::device(&conn, actor, &mac)?;
            let cleared = crate::actions::overrides::clear(&conn, &uploads_dir(c), &mac)?;
            Ok(Response::json(&json!({ "cleared": cleared })))
        }
        ("POST", ["overrides", "clear"]) => {
            user.require(Action::ManageAssets)?;
            let body: MacList = parse_body(req)?;
            let conn = c.conn()?;
            let mut macs = Vec::new();
            for (i, m) in body.macs.iter().enumerate() {
                let mac: Mac = m.parse().map_err(|_| {
                    Error::invalid(format!("macs[{i}]"), format!("`{m}` is not a MAC address"))
                })?;
                associations::device(&conn, actor, &mac)?;
                macs.push(mac);
            }
            let mut cleared = serde_json::Map::new();
            for mac in &macs {
                let files = crate::actions::overrides::clear(&conn, &uploads_dir(c), mac)?;
                cleared.insert(mac.to_string(), json!(files));
            }
            Ok(Response::json(&json!({ "cleared": cleared })))
        }
        _ => not_allowed(m),
    }
}

/// The shared phone files: the site directory, files and language folders, in `dir` (the
/// installation's, or an account's own); changing them needs `manage`.
fn assets_area(
    req: &Request,
    user: &User,
    segs: &[&str],
    dir: &std::path::Path,
    manage: Action,
) -> Result<Response> {
    let m = req.method();
    if matches!(m, "PUT" | "DELETE") {
        user.require(manage)?;
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    match (m, segs) {
        ("GET", ["assets"]) => {
            let files = crate::actions::assets::list(dir)?;
            let contacts = crate::actions::assets::read_directory(dir)?.len();
            Ok(Response::json(
                &json!({ "files": files, "directory_contacts": contacts }),
            ))
        }
        ("GET", ["assets", "directory"]) => Ok(Response::json(
            &json!({ "contacts": crate::actions::assets::read_directory(dir)? }),
        )),
        ("PUT", ["assets", "directory"]) => {
            let body: DirectoryBody = parse_body(req)?;
            crate::actions::assets::write_directory(dir, &body.contacts, |i| {
                format!("contacts[{i}]")
            })?;
            Ok(Response::json(&json!({ "contacts": body.contacts })))
        }
        ("GET", ["assets", "directory.csv"]) => Ok(Response::from_data(
            "text/csv; charset=utf-8",
            directory::to_csv(&crate::actions::assets::read_directory(dir)?),
        )),
        ("PUT", ["assets", "directory.csv"]) => {
            let contacts = directory::from_csv(&raw_body(req)?)?;
            crate::actions::assets::write_directory(dir, &contacts, |i| format!("line {}", i + 2))?;
            Ok(Response::json(&json!({ "contacts": contacts })))
        }
        ("PUT", ["assets", "files", name]) => {
            let f = crate::actions::assets::put(dir, name, &raw_body(req)?)?;
            Ok(Response::json(&f))
        }
        ("DELETE", ["assets", "files", name]) => {
            assets::classify(name)?;
            crate::actions::assets::delete(dir, name)?;
            Ok(Response::empty_204())
        }
        ("PUT", ["assets", "languages", folder, language, file]) => {
            let f =
                crate::actions::assets::put_language(dir, folder, language, file, &raw_body(req)?)?;
            Ok(Response::json(&f))
        }
        ("DELETE", ["assets", "languages", folder]) => {
            assets::language_path(folder, "x", "x.xml")?;
            if !dir.join(folder).is_dir() {
                return Err(Error::not_found(format!("language folder `{folder}`")));
            }
            crate::actions::assets::delete(dir, folder)?;
            Ok(Response::empty_204())
        }
        _ => not_allowed(m),
    }
}

/// The firmware catalogue: releases, importing one, the rollout.
fn firmware_area(c: &Console, req: &Request, user: &User, segs: &[&str]) -> Result<Response> {
    let m = req.method();
    match (m, segs) {
        ("GET", ["firmware"]) => {
            let conn = c.conn()?;
            let mut releases = Vec::new();
            for r in crate::actions::firmware::list(&conn)? {
                releases.push(release_json(&conn, &r)?);
            }
            let families: serde_json::Map<String, Value> =
                crate::actions::firmware::versions_by_family(&conn)?
                    .into_iter()
                    .map(|(f, v)| (f.name().to_string(), json!(v)))
                    .collect();
            Ok(Response::json(
                &json!({ "families": families, "releases": releases }),
            ))
        }
        ("POST", ["firmware"]) => {
            user.require(Action::ManageAssets)?;
            let temp = req
                .header(crate::http::engine::conn::UPLOAD_HEADER)
                .ok_or_else(|| {
                    Error::invalid("body", "send the release zip as the request body")
                })?;
            let param = |k: &str| req.get_param(k).filter(|v| !v.trim().is_empty());
            let opts = crate::actions::firmware::import::ImportOptions {
                families: crate::actions::firmware::import::parse_families(
                    &param("family").into_iter().collect::<Vec<_>>(),
                )?,
                version: param("version"),
                source: param("file_name").unwrap_or_else(|| "api.zip".into()),
                imported_by: user.username.clone(),
                max_bytes: c.config().limits.firmware_upload_bytes,
            };
            let mut conn = c.conn()?;
            let dir = crate::datadir::DataDirs::under(&c.config().data_dir).firmware;
            let r = crate::actions::firmware::import::import_zip(
                &mut conn,
                &dir,
                std::path::Path::new(temp),
                &opts,
            )?;
            Ok(Response::json(&release_json(&conn, &r)?).with_status_code(201))
        }
        ("GET", ["firmware", "rollout"]) => {
            let rows = crate::actions::firmware::rollout::rollout(&*c.conn()?)?;
            Ok(Response::json(&json!({ "models": rows })))
        }
        ("GET", ["firmware", v]) => {
            let conn = c.conn()?;
            let r = crate::actions::firmware::release(&conn, v)?;
            Ok(Response::json(&release_json(&conn, &r)?))
        }
        ("DELETE", ["firmware", v]) => {
            user.require(Action::ManageAssets)?;
            let dir = crate::datadir::DataDirs::under(&c.config().data_dir).firmware;
            crate::actions::firmware::delete(&mut *c.conn()?, &dir, v)?;
            Ok(Response::empty_204())
        }
        _ => not_allowed(m),
    }
}

fn uploads_dir(c: &Console) -> std::path::PathBuf {
    crate::datadir::DataDirs::under(&c.config().data_dir).uploads
}

/// A device's overrides with the server values they hide and the redirect findings.
fn overrides_json(c: &Console, conn: &rusqlite::Connection, mac: &Mac) -> Result<Value> {
    let reach = super::console::devices::reach(c);
    let found = crate::actions::overrides::device_overrides(
        conn,
        &uploads_dir(c),
        mac,
        &reach,
        c.trust.as_ref(),
    )?;
    let mut findings = Vec::new();
    for f in &found.files {
        if let Ok(params) = crate::actions::overrides::read_params(&uploads_dir(c), mac, &f.file) {
            let server = |name: &str| found.server_value(name).map(|s| s.value.clone());
            findings.extend(crate::diag::findings::override_findings(
                mac.as_str(),
                &f.file,
                &params,
                &server,
            ));
        }
    }
    Ok(json!({
        "files": found.files,
        "hides_server_values": found.hides_server_values(),
        "findings": findings,
    }))
}

/// MACs to act on.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MacList {
    macs: Vec<String>,
}

fn assets_dir(c: &Console) -> std::path::PathBuf {
    crate::datadir::DataDirs::under(&c.config().data_dir).assets
}

/// A request body as bytes (the loop has bounded its size).
fn raw_body(req: &Request) -> Result<Vec<u8>> {
    let mut data = req
        .data()
        .ok_or_else(|| Error::invalid("body", "the request body was already read"))?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut data, &mut bytes)
        .map_err(|e| Error::invalid("body", e.to_string()))?;
    Ok(bytes)
}

/// The site directory as the API writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectoryBody {
    contacts: Vec<directory::Contact>,
}

/// A release as the API shows it, with the profiles that use it.
fn release_json(conn: &rusqlite::Connection, r: &firmware::Release) -> Result<Value> {
    let used = crate::db::firmware::list_profiles_using(conn, &r.version)?;
    Ok(json!({
        "version": r.version,
        "families": r.families.iter().map(|f| f.name()).collect::<Vec<_>>(),
        "layout": r.layout.as_str(),
        "source": r.source,
        "imported_by": r.imported_by,
        "imported_at": r.imported_at,
        "models": r.models().into_iter().map(|(f, m)| (f.name().to_string(), json!(m))).collect::<serde_json::Map<_, _>>(),
        "unknown_parts": r.unknown_parts(),
        "combined_image": r.has_combined_image(),
        "bytes": r.bytes(),
        "files": r.files,
        "profiles": used.iter().map(|(p, f)| json!({"profile": p, "family": f})).collect::<Vec<_>>(),
    }))
}
