//! Shared phone files against the real server: the site directory edited as contacts
//! (console table, API JSON and CSV, CLI CSV), licences, wallpapers, ring tones and
//! language folders stored by admins and read by phones, never written by phones; bad
//! names and contents are refused and the stored file stays as it was.

use crate::common::*;
use crate::firmware::post_multipart;

const MAC: &str = "0004f2000001";

#[test]
fn the_directory_is_edited_as_contacts_and_phones_read_it() {
    let server = ZServer::start();
    server.set_credentials();
    server.cli_ok(&["profile", "add", "office"]);
    server.cli_ok(&["device", "add", MAC, "--profile", "office"]);
    let token = user_with_token(&server, "bot", "admin", "");

    // CSV through the CLI, then JSON through the API.
    let csv = write_file(
        server.dir.path(),
        "contacts.csv",
        b"first_name,last_name,contact,speed_dial\nKarl,Kraus,1001,1\n\"Anna, Dr.\",Berg,sip:anna@example.com,2\n",
    );
    let out = server.cli_ok(&["assets", "directory", "import", csv.to_str().expect("path")]);
    assert!(out.contains("2 contact(s)"), "{out}");
    let v = json(&api(&server, "GET", "/assets/directory", Some(&token), ""));
    assert_eq!(v["contacts"][1]["first_name"], "Anna, Dr.");
    let mut phone = server.phone(MAC, UA_VVX500_APP);
    let r = phone.get("/000000000000-directory.xml");
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains("<fn>Anna, Dr.</fn>")
            && r.text().contains("<ct>sip:anna@example.com</ct>"),
        "{}",
        r.text()
    );

    // A bad contact is refused with its row and column; the stored file is unchanged.
    let before =
        std::fs::read(server.data_dir().join("assets/000000000000-directory.xml")).expect("dir");
    let r = api(
        &server,
        "PUT",
        "/assets/directory",
        Some(&token),
        r#"{"contacts": [{"first_name": "A", "contact": "1", "speed_dial": "7"}, {"contact": "", "speed_dial": "7"}]}"#,
    );
    assert_eq!(r.status, 422);
    let text = r.text();
    assert!(
        text.contains("contacts[1].contact")
            && text.contains("7 is already the speed dial of contacts[0]"),
        "{text}"
    );
    assert_eq!(
        std::fs::read(server.data_dir().join("assets/000000000000-directory.xml")).expect("dir"),
        before
    );
    let r = api(
        &server,
        "PUT",
        "/assets/directory",
        Some(&token),
        r#"{"contacts": [{"first_name": "Front", "contact": "100", "label": "Front desk"}]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());

    // The console's table: add a row, see a refusal, save, and export as CSV.
    let s = Session::admin(&server);
    let page = s.get("/files/directory");
    assert!(
        page.text().contains("value=\"Front desk\""),
        "{}",
        page.text()
    );
    let r = s.post(
        "/files/directory",
        &[
            ("rows", "2"),
            ("c[0].first_name", "Front"),
            ("c[0].contact", "100"),
            ("c[1].first_name", "Lobby"),
            ("c[1].speed_dial", "nine"),
        ],
    );
    assert_eq!(r.status, 422);
    assert!(
        r.text().contains("Row 2, contact") && r.text().contains("Row 2, speed dial"),
        "{}",
        r.text()
    );
    let r = s.post(
        "/files/directory",
        &[
            ("rows", "3"),
            ("c[0].first_name", "Front"),
            ("c[0].contact", "100"),
            ("c[1].first_name", "Lobby"),
            ("c[1].contact", "101"),
            ("c[1].speed_dial", "9"),
            ("c[2].contact", "999"),
            ("c[2].delete", "on"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let csv = s.get("/files/directory.csv").text();
    assert!(csv.starts_with("first_name,last_name,contact"), "{csv}");
    assert!(
        csv.contains("Lobby,,101,9") && !csv.contains("999"),
        "{csv}"
    );
    let exported = server.cli_ok(&["assets", "directory", "export"]);
    assert_eq!(exported, csv);
    let api_csv = api(&server, "GET", "/assets/directory.csv", Some(&token), "");
    assert_eq!(api_csv.text(), csv);

    // CSV through the API: a bad line is named, a good file replaces the directory.
    let mut c = Conn::open(server.admin);
    let auth = format!("Bearer {token}");
    let put_csv = |c: &mut Conn, body: &str| {
        c.request(
            "PUT",
            "/api/v1/assets/directory.csv",
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "text/csv"),
            ],
            body.as_bytes(),
        )
    };
    let r = put_csv(&mut c, "contact,speed_dial\n100,1\n101,1\n");
    assert_eq!(r.status, 422);
    assert!(
        r.text()
            .contains("line 3.speed_dial: 1 is already the speed dial of line 2"),
        "{}",
        r.text()
    );
    let r = put_csv(&mut c, "contact,label\n100,Front\n");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(json(&r)["contacts"][0]["label"], "Front");

    // Phones read shared files but never write them.
    let r = phone.request("PUT", "/000000000000-directory.xml", b"<directory/>");
    assert_eq!(r.status, 405);
}

#[test]
fn licences_wallpapers_ring_tones_and_languages_are_stored_checked_and_served() {
    let server = ZServer::start();
    server.set_credentials();
    server.cli_ok(&["profile", "add", "office"]);
    server.cli_ok(&["device", "add", MAC, "--profile", "office"]);
    let token = user_with_token(&server, "bot", "admin", "");
    let s = Session::admin(&server);

    // Through the console: a site licence, a device licence named by MAC, a wallpaper.
    let r = post_multipart(
        &s,
        "/files",
        &[],
        "file",
        "000000000000-license.cfg",
        b"<license site=\"1\"/>",
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let r = post_multipart(
        &s,
        "/files",
        &[("mac", "00:04:F2:00:00:01")],
        "file",
        "lic.cfg",
        b"<license/>",
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let r = post_multipart(
        &s,
        "/files",
        &[],
        "file",
        "Leaf.jpg",
        b"\xff\xd8\xff\xe0fake jpeg",
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let r = post_multipart(&s, "/files", &[], "file", "evil.sh", b"#!/bin/sh");
    assert_eq!(r.status, 422);
    assert!(
        r.text().contains("is not a shared phone file"),
        "{}",
        r.text()
    );
    let r = post_multipart(&s, "/files", &[], "file", "Ring.wav", b"not a wav");
    assert_eq!(r.status, 422);
    assert!(
        r.text()
            .contains("<code>Ring.wav</code>: is not a WAV sound"),
        "{}",
        r.text()
    );

    // Through the API: a ring tone and a language file; bad names are refused.
    let auth = format!("Bearer {token}");
    let put = |path: &str, ct: &str, body: &[u8]| {
        Conn::open(server.admin).request(
            "PUT",
            path,
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", ct),
                ("Connection", "close"),
            ],
            body,
        )
    };
    let wav = b"RIFF\x24\x00\x00\x00WAVEfmt ";
    let r = put(
        "/api/v1/assets/files/Ring.wav",
        "application/octet-stream",
        wav,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = put(
        "/api/v1/assets/languages/VVXLocalization/German_Germany/VVX-dictionary.xml",
        "application/xml",
        b"<dictionary><s k=\"Hello\">Hallo</s></dictionary>",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = put(
        "/api/v1/assets/files/..%2Fzerotouch.db",
        "application/octet-stream",
        b"x",
    );
    // `%2F` is part of the one segment (paths are decoded once): a name, refused as one.
    assert_eq!(r.status, 422, "no file outside the files: {}", r.text());
    assert!(r.text().contains("\"field\":\"name\""), "{}", r.text());
    let r = put(
        "/api/v1/assets/files/zerotouch.db",
        "application/octet-stream",
        b"x",
    );
    assert_eq!(r.status, 422, "{}", r.text());
    let listed = json(&api(&server, "GET", "/assets", Some(&token), ""));
    let paths: Vec<&str> = listed["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert_eq!(
        paths,
        vec![
            "000000000000-license.cfg",
            "0004f2000001-license.cfg",
            "Leaf.jpg",
            "Ring.wav",
            "VVXLocalization/German_Germany/VVX-dictionary.xml"
        ]
    );

    // Phones fetch them at the base path.
    let mut phone = server.phone(MAC, UA_VVX500_APP);
    assert_eq!(phone.get("/0004f2000001-license.cfg").text(), "<license/>");
    assert_eq!(phone.get("/000000000000-license.cfg").status, 200);
    let img = phone.get("/Leaf.jpg");
    assert_eq!(
        (img.status, img.header("Content-Type")),
        (200, Some("image/jpeg"))
    );
    assert_eq!(phone.get("/Ring.wav").body, wav);
    assert!(
        phone
            .get("/VVXLocalization/German_Germany/VVX-dictionary.xml")
            .text()
            .contains("Hallo")
    );

    // A viewer sees the files but cannot change them; deletion works for admins.
    let viewer = user_with_token(&server, "look", "viewer", "");
    assert_eq!(
        api(&server, "GET", "/assets", Some(&viewer), "").status,
        200
    );
    assert_eq!(
        api(
            &server,
            "DELETE",
            "/assets/files/Leaf.jpg",
            Some(&viewer),
            ""
        )
        .status,
        403
    );
    assert_eq!(
        api(
            &server,
            "DELETE",
            "/assets/files/Leaf.jpg",
            Some(&token),
            ""
        )
        .status,
        204
    );
    assert_eq!(
        api(
            &server,
            "DELETE",
            "/assets/files/Leaf.jpg",
            Some(&token),
            ""
        )
        .status,
        404
    );
    assert_eq!(
        api(
            &server,
            "DELETE",
            "/assets/languages/VVXLocalization",
            Some(&token),
            ""
        )
        .status,
        204
    );
    assert_eq!(phone.get("/Leaf.jpg").status, 404);
    let out = server.cli_ok(&["assets", "list"]);
    assert!(
        out.contains("ring-tone") && !out.contains("VVXLocalization"),
        "{out}"
    );
    let leftovers: Vec<String> = std::fs::read_dir(server.data_dir().join("assets"))
        .expect("assets")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "no temporary files: {leftovers:?}");
}
