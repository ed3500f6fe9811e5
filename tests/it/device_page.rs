//! The device page an admin of many phones reads first (issue 25): the summary with site,
//! groups, lines and state, never a SIP password; the phone's uploads readable (escaped)
//! and downloadable byte for byte, and only files recorded as that device's uploads; a
//! profile's stored files readable with secrets masked, downloadable as stored only by users
//! who may see secrets.

use crate::common::*;

const MAC: &str = "0004f2000251";
const OTHER: &str = "0004f2000252";
const LINE_SECRET: &str = "Page-Line-Secret-1";
const FILE_SECRET: &str = "Page-File-Secret-2";

fn setup(server: &ZServer) {
    server.set_credentials();
    // Uploads with the account credential (enrolment is not the subject).
    server.serve_secrets_to_account();
    let site = write_file(
        server.dir.path(),
        "site.cfg",
        format!(
            "<polycomConfig reg.1.auth.password=\"{FILE_SECRET}\" up.backlight.idleIntensity=\"3\"/>"
        )
        .as_bytes(),
    );
    server.cli_ok(&[
        "profile",
        "add",
        "office",
        "--file",
        site.to_str().expect("path"),
    ]);
    for mac in [MAC, OTHER] {
        server.cli_ok(&[
            "device",
            "add",
            mac,
            "--profile",
            "office",
            "--sip-server",
            "sip.example.com",
            "--sip-user",
            "2001",
            "--sip-password",
            LINE_SECRET,
            "--display-name",
            "Reception Desk",
            "--line-label",
            "Front-2001",
        ]);
    }
    server.cli_ok(&["site", "add", "harbour-office"]);
    server.cli_ok(&["site", "assign", "harbour-office", MAC]);
    server.cli_ok(&["group", "add", "lobby-phones", "--priority", "10"]);
    server.cli_ok(&["group", "add-member", "lobby-phones", MAC]);
}

#[test]
fn device_page_summary_shows_site_groups_lines_and_state_but_no_sip_password() {
    let server = ZServer::start();
    setup(&server);
    let s = Session::admin(&server);
    let page = s.get(&format!("/devices/{MAC}"));
    assert_eq!(page.status, 200);
    let html = page.text();
    for want in [
        "harbour-office",
        "lobby-phones",
        "Reception Desk",
        "Front-2001",
        "2001",
        "staged",
        "Auto-Sync credentials",
        &format!("/devices/{MAC}/settings#site-groups"),
        &format!("/devices/{MAC}/edit"),
        &format!("/devices/{MAC}/replace"),
        &format!("/devices/{MAC}/copy"),
        &format!("/devices/{MAC}/delete"),
    ] {
        assert!(html.contains(want), "{want} missing: {html}");
    }
    // The summary comes before the access status.
    let summary = html.find("harbour-office").expect("site");
    let access = html.find("Device ZTP access status").expect("access");
    assert!(summary < access, "the summary is near the top");
    assert!(!html.contains(LINE_SECRET), "a SIP password in the page");
    assert!(!html.contains(FILE_SECRET), "a profile secret in the page");
    // The anchor the link points at exists on the effective settings page.
    let settings = s.get(&format!("/devices/{MAC}/settings")).text();
    assert!(settings.contains("id=\"site-groups\""), "{settings}");
}

#[test]
fn a_device_page_says_a_new_device_is_waiting_to_enrol() {
    let server = ZServer::start();
    server.set_credentials();
    // Secrets withheld (the default): association opens a window until the phone enrols.
    server.cli_ok(&["profile", "add", "office"]);
    server.cli_ok(&["device", "add", MAC, "--profile", "office"]);
    let s = Session::admin(&server);
    let html = s.get(&format!("/devices/{MAC}")).text();
    assert!(html.contains("waiting to enrol"), "{html}");
    assert!(!html.contains("contested"), "{html}");
}

#[test]
fn a_device_page_says_when_values_were_delivered_but_never_confirmed() {
    let server = ZServer::start();
    setup(&server);
    let mut phone = server.phone(MAC, UA_VVX500_APP);
    assert_eq!(phone.get(&format!("/{MAC}-device.cfg")).status, 200);
    let s = Session::admin(&server);
    let html = s.get(&format!("/devices/{MAC}")).text();
    // The generated file carried the pending platform values; the phone has not come back.
    assert!(html.contains("Delivered, never confirmed"), "{html}");
    assert!(!html.contains(LINE_SECRET));
}

#[test]
fn a_phone_log_is_shown_escaped_and_downloads_byte_identical() {
    let server = ZServer::start();
    setup(&server);
    let mut phone = server.phone(MAC, UA_VVX500_APP);
    assert_eq!(phone.get(&format!("/{MAC}.cfg")).status, 200);
    let log: &[u8] = b"0101 app started\n<script>alert(1)</script>\n\xff\xfe tail\n";
    let r = phone.request("PUT", &format!("/{MAC}-app.log"), log);
    assert!(matches!(r.status, 201 | 204), "{} {}", r.status, r.text());

    let s = Session::admin(&server);
    let file = format!("{MAC}-app.log");
    let device = s.get(&format!("/devices/{MAC}")).text();
    assert!(
        device.contains(&format!(
            "href=\"/devices/{MAC}/uploads/{MAC}%2Dapp%2Elog\""
        )),
        "the uploads table links the file: {device}"
    );

    let view = s.get(&format!("/devices/{MAC}/uploads/{file}"));
    assert_eq!(view.status, 200, "{}", view.text());
    let html = view.text();
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "escaped: {html}"
    );
    assert!(!html.contains("<script>alert(1)"), "not escaped: {html}");
    assert!(html.contains("0101 app started"));
    assert!(html.contains("?download=1"));

    let down = s.get(&format!("/devices/{MAC}/uploads/{file}?download=1"));
    assert_eq!(down.status, 200);
    assert_eq!(down.body, log, "byte-identical");
    assert_eq!(
        down.header("Content-Disposition"),
        Some(format!("attachment; filename=\"{file}\"").as_str())
    );
    assert_eq!(
        down.header("Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    assert_security_headers(&down, "download");
    assert_security_headers(&view, "view");
}

#[test]
fn a_long_log_shows_its_last_256_kib_with_a_link_to_the_whole_file() {
    let server = ZServer::start();
    setup(&server);
    let mut phone = server.phone(MAC, UA_VVX500_APP);
    assert_eq!(phone.get(&format!("/{MAC}.cfg")).status, 200);
    let mut log = b"FIRST-LINE-OF-LOG\n".to_vec();
    log.extend(std::iter::repeat_n(b'x', 300 * 1024));
    log.extend_from_slice(b"\nLAST-LINE-OF-LOG\n");
    let r = phone.request("PUT", &format!("/{MAC}-boot.log"), &log);
    assert!(matches!(r.status, 201 | 204), "{} {}", r.status, r.text());
    let s = Session::admin(&server);
    let path = format!("/devices/{MAC}/uploads/{MAC}-boot.log");
    let html = s.get(&path).text();
    assert!(html.contains("LAST-LINE-OF-LOG"), "the end is shown");
    assert!(
        !html.contains("FIRST-LINE-OF-LOG"),
        "only the tail is shown"
    );
    assert!(html.contains("Showing the last 256 KiB"), "the note");
    assert!(html.contains("?all=1"), "a link to the whole file");
    let all = s.get(&format!("{path}?all=1")).text();
    assert!(all.contains("FIRST-LINE-OF-LOG") && all.contains("LAST-LINE-OF-LOG"));
    assert_eq!(s.get(&format!("{path}?download=1")).body, log);
}

#[test]
fn only_files_recorded_as_the_devices_uploads_are_served() {
    let server = ZServer::start();
    setup(&server);
    let mut other = server.phone(OTHER, UA_VVX500_APP);
    assert_eq!(other.get(&format!("/{OTHER}.cfg")).status, 200);
    let r = other.request("PUT", &format!("/{OTHER}-app.log"), b"other phone\n");
    assert!(matches!(r.status, 201 | 204), "{}", r.status);
    // The device has an upload of its own: a name is looked up among its uploads, and a
    // path relative to its upload directory would reach the other phone's log.
    let mut phone = server.phone(MAC, UA_VVX500_APP);
    assert_eq!(phone.get(&format!("/{MAC}.cfg")).status, 200);
    let r = phone.request("PUT", &format!("/{MAC}-boot.log"), b"own log\n");
    assert!(matches!(r.status, 201 | 204), "{}", r.status);
    let s = Session::admin(&server);
    for path in [
        format!("/devices/{MAC}/uploads/.."),
        format!("/devices/{MAC}/uploads/%2e%2e"),
        format!("/devices/{MAC}/uploads/..%2f..%2fzerotouch.db"),
        format!("/devices/{MAC}/uploads/%2e%2e%2f{OTHER}%2flogs%2f{OTHER}-app.log"),
        format!("/devices/{MAC}/uploads/..%2f..%2f{OTHER}%2flogs%2f{OTHER}-app.log"),
        format!("/devices/{MAC}/uploads/..%2F..%2F{OTHER}%2Flogs%2F{OTHER}-app.log?download=1"),
        format!("/devices/{MAC}/uploads/{MAC}-app.log"),
        format!("/devices/{MAC}/uploads/{OTHER}-app.log"),
        format!("/devices/{MAC}/uploads/{OTHER}-app.log?download=1"),
        format!("/devices/{MAC}/uploads/zerotouch.db?download=1"),
    ] {
        let r = s.get(&path);
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert!(!r.text().contains("other phone"), "{path}");
    }
    assert_eq!(
        s.get(&format!("/devices/{MAC}/uploads/{MAC}-boot.log?download=1"))
            .body,
        b"own log\n"
    );
    // The other device's own page serves it.
    let r = s.get(&format!(
        "/devices/{OTHER}/uploads/{OTHER}-app.log?download=1"
    ));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"other phone\n");
}

#[test]
fn an_override_file_is_shown_with_its_secrets_masked() {
    let server = ZServer::start();
    setup(&server);
    let mut phone = server.phone(MAC, UA_VVX500_APP);
    assert_eq!(phone.get(&format!("/{MAC}.cfg")).status, 200);
    let ovr = b"<PHONE_CONFIG><OVERRIDES reg.1.auth.password=\"Phone-Set-Secret-3\" up.backlight.idleIntensity=\"1\"/></PHONE_CONFIG>";
    let r = phone.request("PUT", &format!("/overrides/{MAC}-phone.cfg"), ovr);
    assert_eq!(r.status, 201, "{}", r.text());
    let s = Session::admin(&server);
    let path = format!("/devices/{MAC}/uploads/{MAC}-phone.cfg");
    let view = s.get(&path);
    assert_eq!(view.status, 200);
    let html = view.text();
    assert!(html.contains("up.backlight.idleIntensity"), "{html}");
    assert!(!html.contains("Phone-Set-Secret-3"), "{html}");
    let down = s.get(&format!("{path}?download=1"));
    assert_eq!(down.status, 200);
    assert!(!down.text().contains("Phone-Set-Secret-3"));
    assert!(down.text().contains("********"));
}

#[test]
fn a_profile_file_is_viewable_masked_and_downloadable_per_role() {
    let server = ZServer::start();
    setup(&server);
    let _ = user_with_token(&server, "vic", "viewer", "");
    let s = Session::admin(&server);
    let edit = s.get("/profiles/office").text();
    assert!(
        edit.contains("href=\"/profiles/office/files/site%2Ecfg\""),
        "the editor links the file: {edit}"
    );

    let view = s.get("/profiles/office/files/site.cfg");
    assert_eq!(view.status, 200);
    let html = view.text();
    assert!(html.contains("up.backlight.idleIntensity"), "{html}");
    assert!(html.contains("********"), "{html}");
    assert!(!html.contains(FILE_SECRET), "a secret in the page: {html}");

    // An admin (who may reveal secrets in the preview) downloads the file as stored, audited.
    let down = s.get("/profiles/office/files/site.cfg?download=1");
    assert_eq!(down.status, 200);
    assert!(down.text().contains(FILE_SECRET));
    assert_eq!(
        down.header("Content-Disposition"),
        Some("attachment; filename=\"site.cfg\"")
    );
    let audit = server.cli_ok(&["audit"]);
    assert_security_headers(&down, "profile file download");
    assert!(
        audit.contains("profile.file-secrets") && !audit.contains(FILE_SECRET),
        "{audit}"
    );

    // A viewer reads and downloads it masked.
    let vic = Session::sign_in(&server, "vic", TEST_USER_PASSWORD);
    let page = vic.get("/profiles/office/files/site.cfg");
    assert_eq!(page.status, 200);
    assert!(!page.text().contains(FILE_SECRET));
    let masked = vic.get("/profiles/office/files/site.cfg?download=1");
    assert_eq!(masked.status, 200);
    assert!(!masked.text().contains(FILE_SECRET), "{}", masked.text());
    assert!(masked.text().contains("********"));

    for path in [
        "/profiles/office/files/..",
        "/profiles/office/files/other.cfg",
        "/profiles/office/files/..%2fsite.cfg?download=1",
        "/profiles/nosuch/files/site.cfg",
    ] {
        assert_eq!(s.get(path).status, 404, "{path}");
    }
}
