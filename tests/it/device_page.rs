//! The device page an admin of many phones reads first (issue 25): the summary with site,
//! groups, lines and state, never a SIP password.

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
