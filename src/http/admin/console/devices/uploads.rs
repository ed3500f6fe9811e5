//! A phone's uploads on the console: `GET /devices/<mac>/uploads/<file>` shows one as text
//! (the last 256 KiB unless the whole file is asked for, escaped by maud) and `?download=1`
//! sends it as an attachment. Only a file recorded as an upload of that device is served
//! (`actions::uploaded::find`: the name is compared, never joined into a path); anything
//! else is 404. The same users as the device page (`associations::device` applies the
//! company scope). Override files may set passwords: they are always shown and sent with
//! the values of secret parameters masked.

use maud::html;
use rouille::{Request, Response};

use super::super::{Console, Ctx, html_page};
use super::mac_of;
use crate::actions::associations;
use crate::actions::uploaded::{self, Uploaded};
use crate::datadir::DataDirs;
use crate::domain::devicepath::UploadKind;
use crate::domain::xml::mask_secret_values;
use crate::error::{Error, Result};
use crate::http::admin::views::{self, when};

/// How much of a file the page shows unless the whole file is asked for.
const SHOWN: u64 = 256 * 1024;

/// The link to an upload's page.
pub fn href(mac: &crate::domain::mac::Mac, file: &str) -> String {
    format!(
        "/devices/{mac}/uploads/{}",
        super::super::percent_encode(file)
    )
}

/// A file name safe inside `filename="..."`.
fn attachment_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn masked(u: &Uploaded) -> bool {
    u.kind == UploadKind::Override
}

/// `GET /devices/<mac>/uploads/<file>` and its `?download=1`, `?all=1`.
pub fn upload(c: &Console, ctx: &Ctx, mac: &str, file: &str, req: &Request) -> Result<Response> {
    let mac = mac_of(mac)?;
    let conn = c.conn()?;
    associations::device(&conn, &c.actor(&ctx.user, &ctx.account), &mac)?;
    let dir = DataDirs::under(&c.config().data_dir).uploads;
    let missing = || Error::not_found(format!("upload `{file}` of device {mac}"));
    let u = uploaded::find(&conn, &dir, &mac, file)?.ok_or_else(missing)?;
    drop(conn);
    let flag = |name: &str| req.get_param(name).is_some_and(|v| v == "1");
    if flag("download") {
        let kind = if u.kind == UploadKind::CoreDump {
            "application/octet-stream"
        } else {
            "text/plain; charset=utf-8"
        };
        let disposition = format!("attachment; filename=\"{}\"", attachment_name(&u.file_name));
        let r = if masked(&u) {
            let t = u
                .tail(c.config().limits.device_quota_bytes)?
                .ok_or_else(missing)?;
            Response::from_data(kind, mask_secret_values(&String::from_utf8_lossy(&t.bytes)))
        } else {
            Response::from_file(kind, u.open()?.ok_or_else(missing)?)
        };
        return Ok(r.with_additional_header("Content-Disposition", disposition));
    }
    let all = flag("all");
    let limit = if all || masked(&u) {
        c.config().limits.device_quota_bytes
    } else {
        SHOWN
    };
    let t = u.tail(limit)?.ok_or_else(missing)?;
    let text = if masked(&u) {
        mask_secret_values(&String::from_utf8_lossy(&t.bytes))
    } else {
        String::from_utf8_lossy(&t.bytes).into_owned()
    };
    let page = href(&mac, &u.file_name);
    Ok(html_page(
        200,
        views::page(
            &format!("{} of {mac}", u.file_name),
            &ctx.nav("find"),
            html! {
                p.crumbs { a href=(format!("/devices/{mac}")) { "Device " (mac) } " › uploads" }
                h1 { code { (u.file_name) } }
                p {
                    "Uploaded by the phone (" (u.kind.dir()) "), " (t.size) " bytes, updated " (when(Some(u.updated_at))) ". "
                    a.button.secondary href=(format!("{page}?download=1")) { "Download" }
                }
                @if masked(&u) { p.hint { "Values of secret parameters are masked." } }
                @if t.cut {
                    p.warning role="note" {
                        "Showing the last " (t.bytes.len() / 1024) " KiB of " (t.size) " bytes. "
                        a href=(format!("{page}?all=1")) { "Show the whole file" } " or "
                        a href=(format!("{page}?download=1")) { "download it" } "."
                    }
                }
                pre.upload { (text) }
            },
        ),
    ))
}
