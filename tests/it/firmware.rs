//! The firmware catalogue against the real server: releases built here in the layout
//! Polycom ships (split and combined, with `sip.ver` and part-numbered images; test bytes)
//! are imported through the CLI, the API and the console, listed per model family, served
//! under the part-number-prefixed names phones ask for, and named in each family's
//! `APP_FILE_PATH_<MODEL>`. Corrupt zips, zip-slip paths and duplicates are refused and
//! leave nothing behind; a file whose bytes changed is reported at start and not served.

use std::collections::HashMap;
use std::time::Duration;

use crate::common::*;

const VVX: &str = "0004f2000410";
const TRIO: &str = "0004f2aabbcc";
const UA_VVX410_OLD: &str =
    "FileTransport PolycomVVX-VVX_410-UA/5.9.5.0614 (SN:0004f2000410) Type/Application";

/// Attributes of every element of a master file.
fn master_attrs(xml: &[u8]) -> HashMap<String, String> {
    let text = std::str::from_utf8(xml).expect("utf-8");
    let doc = roxmltree::Document::parse(text).expect("master is XML");
    let mut out = HashMap::new();
    for n in doc.descendants().filter(|n| n.is_element()) {
        for a in n.attributes() {
            out.insert(a.name().to_string(), a.value().to_string());
        }
    }
    out
}

/// The bytes `release_zip` stores for an image.
fn image_bytes(image: &str, version: &str) -> Vec<u8> {
    format!("{image} {version} ").repeat(2000).into_bytes()
}

/// POSTs a zip to the API as the raw body.
fn api_upload(server: &ZServer, token: &str, query: &str, body: &[u8]) -> Resp {
    let mut c = Conn::open(server.admin);
    let auth = format!("Bearer {token}");
    c.request(
        "POST",
        &format!("/api/v1/firmware{query}"),
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/octet-stream"),
            ("Connection", "close"),
        ],
        body,
    )
}

/// POSTs a multipart form with one file to the console, as a browser does.
pub fn post_multipart(
    s: &Session,
    path: &str,
    fields: &[(&str, &str)],
    file_field: &str,
    file_name: &str,
    bytes: &[u8],
) -> Resp {
    let boundary = "----zerotouchtestboundary7MA4YWxk";
    let mut body = Vec::new();
    let mut all = vec![("csrf", s.csrf.as_str())];
    all.extend_from_slice(fields);
    for (k, v) in all {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{file_field}\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut c = Conn::open(s.addr);
    let ct = format!("multipart/form-data; boundary={boundary}");
    c.request(
        "POST",
        path,
        &[
            ("Cookie", s.cookie.as_str()),
            ("Content-Type", ct.as_str()),
            ("Connection", "close"),
        ],
        &body,
    )
}

/// Names in the firmware directory, hidden ones too (staging, incoming).
fn firmware_dir_names(server: &ZServer) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(server.data_dir().join("firmware"))
        .expect("firmware dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

fn incoming_is_empty(server: &ZServer) -> bool {
    std::fs::read_dir(server.data_dir().join("firmware/.incoming"))
        .map(|d| d.count() == 0)
        .unwrap_or(true)
}

#[test]
fn split_and_combined_releases_are_imported_listed_and_served_to_each_family() {
    let server = ZServer::start();
    server.set_credentials();
    // Split VVX release through the CLI: two known part numbers and one the table lacks.
    let split = [
        "3111-46162-001.sip.ld",
        "3111-44500-001.sip.ld",
        "3111-99999-001.sip.ld",
    ];
    let out = server.cli_ok(&[
        "firmware",
        "import",
        release_zip(server.dir.path(), "5.9.8.1234", &split)
            .to_str()
            .expect("path"),
    ]);
    assert!(
        out.contains("imported firmware 5.9.8.1234 (split; VVX)")
            && out.contains("VVX: VVX500, VVX410")
            && out.contains("unknown part numbers: 3111-99999-001"),
        "{out}"
    );
    // Combined Trio release through the API: the family is named, the image says nothing.
    let token = user_with_token(&server, "bot", "admin", "");
    let combined =
        std::fs::read(release_zip(server.dir.path(), "7.2.2.1094", &["sip.ld"])).expect("zip");
    let r = api_upload(&server, &token, "?file_name=trio.zip", &combined);
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("name the model family"), "{}", r.text());
    let r = api_upload(
        &server,
        &token,
        "?family=Trio&file_name=trio.zip",
        &combined,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let v = json(&r);
    assert_eq!(
        (v["layout"].as_str(), v["combined_image"].as_bool()),
        (Some("combined"), Some(true))
    );

    // Listed per model family.
    let list = server.cli_ok(&["firmware", "list"]);
    assert!(
        list.contains("VVX: 5.9.8.1234") && list.contains("Trio: 7.2.2.1094"),
        "{list}"
    );
    let cat = json(&api(&server, "GET", "/firmware", Some(&token), ""));
    assert_eq!(cat["families"]["VVX"][0], "5.9.8.1234");
    assert_eq!(cat["families"]["Trio"][0], "7.2.2.1094");
    let vvx = json(&api(
        &server,
        "GET",
        "/firmware/5.9.8.1234",
        Some(&token),
        "",
    ));
    assert_eq!(
        vvx["models"]["VVX"],
        serde_json::json!(["VVX500", "VVX410"])
    );
    assert_eq!(vvx["unknown_parts"], serde_json::json!(["3111-99999-001"]));

    // Profiles choose per family from the catalogue.
    let bad = server.cli(&["profile", "add", "wrong", "--software", "Trio=5.9.8.1234"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("software.Trio: version `5.9.8.1234` is not a Trio release"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    server.cli_ok(&[
        "profile",
        "add",
        "office",
        "--software",
        "VVX=5.9.8.1234",
        "--software",
        "Trio=7.2.2.1094",
    ]);
    server.cli_ok(&["device", "add", VVX, "--profile", "office"]);
    server.cli_ok(&["device", "add", TRIO, "--profile", "office"]);

    // Each family's models name their release; APP_FILE_PATH stays empty.
    let mut vvx_phone = server.phone(VVX, UA_VVX410_OLD);
    let master = vvx_phone.get(&format!("/{VVX}.cfg"));
    assert_eq!(master.status, 200, "{}", master.text());
    let attrs = master_attrs(&master.body);
    assert_eq!(attrs["APP_FILE_PATH"], "");
    assert_eq!(attrs["APP_FILE_PATH_VVX410"], "firmware/5.9.8.1234/sip.ld");
    assert_eq!(attrs["APP_FILE_PATH_VVX500"], "firmware/5.9.8.1234/sip.ld");
    assert_eq!(
        attrs["APP_FILE_PATH_Trio8800"],
        "firmware/7.2.2.1094/sip.ld"
    );
    assert!(
        !attrs.contains_key("APP_FILE_PATH_CCX600"),
        "no version for CCX"
    );

    // Served under the prefixed names phones ask for.
    let image = vvx_phone.get("/firmware/5.9.8.1234/3111-46162-001.sip.ld");
    assert_eq!(image.status, 200);
    assert_eq!(
        image.body,
        image_bytes("3111-46162-001.sip.ld", "5.9.8.1234")
    );
    let part = vvx_phone.request_with(
        "GET",
        "/firmware/5.9.8.1234/3111-46162-001.sip.ld",
        &[("Range", "bytes=10-19")],
        b"",
    );
    assert_eq!((part.status, part.body.len()), (206, 10));
    let head = vvx_phone.request("HEAD", "/firmware/5.9.8.1234/sip.ld", b"");
    assert_eq!(
        head.status, 200,
        "a plain sip.ld finds the VVX 410's image by its User-Agent"
    );
    let mut trio_phone = server.phone(TRIO, UA_TRIO_APP);
    let master = trio_phone.get(&format!("/{TRIO}.cfg"));
    assert_eq!(
        master_attrs(&master.body)["APP_FILE_PATH_Trio8800"],
        "firmware/7.2.2.1094/sip.ld"
    );
    let image = trio_phone.get("/firmware/7.2.2.1094/3111-65290-001.sip.ld");
    assert_eq!(
        image.status, 200,
        "the combined image answers the prefixed name"
    );
    assert_eq!(image.body, image_bytes("sip.ld", "7.2.2.1094"));
    assert_eq!(
        trio_phone.get("/firmware/7.2.2.1094/sip.ver").text().trim(),
        "7.2.2.1094"
    );
    assert_eq!(vvx_phone.get("/firmware/5.9.8.1234/nothing.ld").status, 404);

    // The rollout: the VVX 410 reports 5.9.5 (behind), the Trio its profile's version.
    assert!(eventually(Duration::from_secs(10), || {
        let out = server.cli_ok(&["firmware", "rollout"]);
        out.lines()
            .any(|l| l.starts_with("VVX") && l.contains("VVX410") && l.contains("5.9.5.0614 ×1"))
            && out
                .lines()
                .any(|l| l.starts_with("Trio") && l.contains("7.2.2.1094 ×1"))
    }));
    let rows = json(&api(&server, "GET", "/firmware/rollout", Some(&token), ""));
    let models = rows["models"].as_array().expect("models");
    let vvx410 = models
        .iter()
        .find(|m| m["model"] == "VVX410")
        .expect("VVX410 row");
    assert_eq!(
        (vvx410["behind"].as_u64(), vvx410["current"].as_u64()),
        (Some(1), Some(0))
    );
    let trio = models
        .iter()
        .find(|m| m["model"] == "Trio8800")
        .expect("Trio row");
    assert_eq!(
        (trio["behind"].as_u64(), trio["current"].as_u64()),
        (Some(0), Some(1))
    );

    // The dashboard's adoption: both phones can take their profile's version, the Trio runs
    // it since today (first reported now), the VVX 410 does not.
    let summary = json(&api(
        &server,
        "GET",
        "/accounts/default/summary",
        Some(&token),
        "",
    ));
    let fa = &summary["firmware_adoption"];
    assert_eq!(
        (fa["eligible"].as_u64(), fa["current"].as_u64()),
        (Some(2), Some(1)),
        "{fa}"
    );
    let days: Vec<u64> = fa["on_version"]
        .as_array()
        .expect("days")
        .iter()
        .map(|v| v.as_u64().expect("count"))
        .collect();
    assert_eq!(days.len(), 14);
    assert_eq!((days[12], days[13]), (0, 1), "on it from today: {fa}");
    let home = Session::admin(&server).get("/").text();
    assert!(home.contains("id=\"firmware-adoption\""), "{home}");
    assert!(home.contains("1 of 2 devices run their profile's firmware version"));

    // A version in use is not deleted; the refusal names the profile.
    let r = api(&server, "DELETE", "/firmware/5.9.8.1234", Some(&token), "");
    assert_eq!(r.status, 409);
    assert!(r.text().contains("profile `office` (VVX)"), "{}", r.text());
    let out = server.cli(&["firmware", "delete", "7.2.2.1094"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("profile `office` (Trio)"));
}

#[test]
fn corrupt_zips_zip_slip_and_duplicates_are_refused_leaving_nothing() {
    let server = ZServer::start();
    let token = user_with_token(&server, "bot", "admin", "");
    let good = std::fs::read(release_zip(
        server.dir.path(),
        "6.4.3.1234",
        &["3111-48500-001.sip.ld"],
    ))
    .expect("zip");

    // A corrupt zip: the start of a real one, cut off before its directory.
    let r = api_upload(
        &server,
        &token,
        "?file_name=cut.zip",
        &good[..good.len() / 2],
    );
    assert_eq!(r.status, 422);
    assert!(
        r.text()
            .contains("`cut.zip` is not a zip archive, or it is damaged"),
        "{}",
        r.text()
    );

    // Zip-slip through the console's upload form.
    let evil = {
        let path = server.dir.path().join("evil.zip");
        let f = std::fs::File::create(&path).expect("create");
        let mut w = zip::ZipWriter::new(f);
        let o = zip::write::SimpleFileOptions::default();
        for (name, bytes) in [
            ("sip.ver", &b"6.4.3.1234"[..]),
            ("3111-48500-001.sip.ld", b"img"),
            ("../../../tmp/zerotouch-escaped.txt", b"escaped"),
        ] {
            w.start_file(name, o).expect("start");
            std::io::Write::write_all(&mut w, bytes).expect("write");
        }
        w.finish().expect("finish");
        std::fs::read(path).expect("read")
    };
    let s = Session::admin(&server);
    let r = post_multipart(&s, "/firmware", &[], "file", "evil.zip", &evil);
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(
        r.text().contains("zip-slip") && r.text().contains("../../../tmp/zerotouch-escaped.txt"),
        "{}",
        r.text()
    );
    assert!(!std::path::Path::new("/tmp/zerotouch-escaped.txt").exists());
    let r = api_upload(&server, &token, "?file_name=evil.zip", &evil);
    assert_eq!(r.status, 422);
    assert_eq!(
        firmware_dir_names(&server),
        vec![".incoming"],
        "nothing half-imported"
    );

    // The good one through the console, then again: a duplicate.
    let r = post_multipart(&s, "/firmware", &[], "file", "good.zip", &good);
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(
        r.header("Location"),
        Some("/firmware/6.4.3.1234?done=firmware-imported")
    );
    let page = s.get("/firmware/6.4.3.1234");
    assert!(
        page.text().contains("VVX501") && page.text().contains("good.zip"),
        "{}",
        page.text()
    );
    let r = post_multipart(&s, "/firmware", &[], "file", "again.zip", &good);
    assert_eq!(r.status, 409);
    assert!(
        r.text().contains("already in the catalogue"),
        "{}",
        r.text()
    );
    let r = api_upload(&server, &token, "", &good);
    assert_eq!(r.status, 409);
    assert_eq!(firmware_dir_names(&server), vec![".incoming", "6.4.3.1234"]);
    assert!(incoming_is_empty(&server), "streamed uploads are removed");
    let list = server.cli_ok(&["firmware", "list"]);
    assert_eq!(list.matches("6.4.3.1234").count(), 2, "{list}");

    // Uploads need an admin, checked before the body is read.
    let viewer = user_with_token(&server, "look", "viewer", "");
    assert_eq!(api_upload(&server, &viewer, "", &good).status, 403);
    assert_eq!(api_upload(&server, "zt_nobody", "", &good).status, 401);
}

#[test]
fn a_file_changed_on_disk_is_reported_at_start_and_not_served() {
    let server = ZServer::start();
    server.set_credentials();
    import_release(&server, "5.9.8.1234", &["3111-46162-001.sip.ld"], &[]);
    server.cli_ok(&["profile", "add", "office", "--software", "VVX=5.9.8.1234"]);
    server.cli_ok(&["device", "add", VVX, "--profile", "office"]);
    let dir = server.stop_keep();
    let image = dir
        .path()
        .join("data/firmware/5.9.8.1234/3111-46162-001.sip.ld");
    std::fs::write(&image, b"not what was imported").expect("tamper");
    let server = ZServer::start_in(dir, "");
    assert!(
        eventually(Duration::from_secs(10), || server
            .output
            .lock()
            .expect("lock")
            .contains(
                "firmware/5.9.8.1234/3111-46162-001.sip.ld: checksum mismatch"
            )),
        "{}",
        server.output.lock().expect("lock")
    );
    let mut phone = server.phone(VVX, UA_VVX410_APP);
    assert_eq!(
        phone
            .get("/firmware/5.9.8.1234/3111-46162-001.sip.ld")
            .status,
        404
    );
    assert_eq!(phone.get("/firmware/5.9.8.1234/sip.ver").status, 200);
    let out = server.cli(&["firmware", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("checksum mismatch"));
}

#[test]
fn oversize_releases_are_refused_on_upload_and_when_they_unpack_too_large() {
    let server = ZServer::start_with("limits.firmware_upload_bytes = 131072");
    let token = user_with_token(&server, "bot", "admin", "");
    // Larger than the limit on the wire: 413 before anything is stored.
    let big = vec![7u8; 200_000];
    let r = api_upload(&server, &token, "?file_name=big.zip", &big);
    assert_eq!(r.status, 413, "{}", r.text());
    // Small on the wire, large unpacked (it compresses well): refused while unpacking.
    let zip = release_zip(server.dir.path(), "5.9.8.1234", &["3111-46162-001.sip.ld"]);
    let bomb = {
        let path = server.dir.path().join("bomb.zip");
        let f = std::fs::File::create(&path).expect("create");
        let mut w = zip::ZipWriter::new(f);
        let o = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        w.start_file("sip.ver", o).expect("start");
        std::io::Write::write_all(&mut w, b"5.9.8.1234").expect("write");
        w.start_file("3111-46162-001.sip.ld", o).expect("start");
        std::io::Write::write_all(&mut w, &vec![0u8; 1_000_000]).expect("write");
        w.finish().expect("finish");
        std::fs::read(path).expect("read")
    };
    assert!(bomb.len() < 131072, "{}", bomb.len());
    let r = api_upload(&server, &token, "?file_name=bomb.zip", &bomb);
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(
        r.text().contains("limits.firmware_upload_bytes"),
        "{}",
        r.text()
    );
    assert_eq!(firmware_dir_names(&server), vec![".incoming"]);
    assert!(incoming_is_empty(&server));
    // A release within the limit goes in.
    let r = api_upload(&server, &token, "", &std::fs::read(zip).expect("zip"));
    assert_eq!(r.status, 201, "{}", r.text());
}
