//! Overrides made on the phone against the real server: a simulated phone uploads an
//! override file that moves its SIP registration; the device page shows the parameter as
//! "overridden on the phone" next to the server value it hides, with the diagnostics
//! finding; clearing (one device from the page, many through the API or the CLI) serves
//! the phone an empty override file and says what to reset on the phone.

use crate::common::*;

const MAC: &str = "0004f2000101";
const OTHER: &str = "0004f2000102";

fn setup(server: &ZServer) {
    server.set_credentials();
    // Overrides uploaded with the account credential (the phones' side is not the subject).
    server.serve_secrets_to_account();
    let site = write_file(
        server.dir.path(),
        "site.cfg",
        br#"<polycomConfig reg.1.server.1.address="profile.example.com" up.backlight.idleIntensity="3"/>"#,
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
            "1001",
        ]);
    }
}

#[test]
fn an_override_moving_the_registration_is_shown_found_and_cleared() {
    let server = ZServer::start();
    setup(&server);
    let mut phone = server.phone(MAC, UA_VVX500_APP);
    assert_eq!(phone.get(&format!("/{MAC}.cfg")).status, 200);
    let ovr = br#"<?xml version="1.0" encoding="UTF-8"?>
<PHONE_CONFIG>
  <OVERRIDES reg.1.server.1.address="rogue.example.net"
    up.backlight.idleIntensity="1" up.screenSaver.enabled="1"/>
</PHONE_CONFIG>
"#;
    let r = phone.request("PUT", &format!("/overrides/{MAC}-phone.cfg"), ovr);
    assert_eq!(r.status, 201, "{}", r.text());

    // The device page: the override, the server value it hides, the finding, the reset steps.
    let s = Session::admin(&server);
    let page = s.get(&format!("/devices/{MAC}")).text();
    assert!(page.contains("Overridden on the phone"), "{page}");
    let row = page
        .split("<tr><td><code>")
        .find(|r| r.starts_with("reg.1.server.1.address"))
        .unwrap_or_else(|| panic!("no row: {page}"));
    assert!(
        row.contains("rogue.example.net")
            && row.contains("sip.example.com")
            && row.contains(&format!("{MAC}-device.cfg (device)")),
        "{row}"
    );
    let backlight = page
        .split("<tr><td><code>")
        .find(|r| r.starts_with("up.backlight.idleIntensity"))
        .expect("backlight row");
    assert!(
        backlight.contains(&format!("{MAC}-profile.cfg")) && backlight.contains(">3<"),
        "{backlight}"
    );
    assert!(
        page.contains("(the server sets nothing)"),
        "up.screenSaver.enabled: {page}"
    );
    assert!(
        page.contains("keeps a local setting that redirects its registration")
            && page.contains("it hides the server's `sip.example.com`"),
        "{page}"
    );
    assert!(
        page.contains("Reset Local Configuration") && page.contains("Reset Web Configuration"),
        "{page}"
    );

    // The same through the API, and in the diagnostics run.
    let token = user_with_token(&server, "bot", "admin", "");
    let v = json(&api(
        &server,
        "GET",
        &format!("/devices/{MAC}/overrides"),
        Some(&token),
        "",
    ));
    assert_eq!(v["hides_server_values"], true);
    let params = v["files"][0]["params"].as_array().expect("params");
    assert_eq!(params[0]["name"], "reg.1.server.1.address");
    assert_eq!(params[0]["server"]["value"], "sip.example.com");
    assert_eq!(params[0]["redirect"], "registration");
    assert_eq!(v["findings"][0]["code"], "overrides.registration");
    // A warning: exit status 1.
    let out = server.cli(&["diagnose", "phones", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.contains("overrides.registration"), "{out}");

    // Clear from the device page: the phone then reads an empty override file.
    let r = s.post(&format!("/devices/{MAC}/overrides/clear"), &[]);
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(
        r.header("Location"),
        Some(format!("/devices/{MAC}?done=overrides-cleared").as_str())
    );
    let served = phone.get(&format!("/overrides/{MAC}-phone.cfg"));
    assert_eq!(served.status, 200);
    assert!(
        served.text().contains("<PHONE_CONFIG>") && !served.text().contains("rogue"),
        "{}",
        served.text()
    );
    let page = s
        .get(&format!("/devices/{MAC}?done=overrides-cleared"))
        .text();
    assert!(
        page.contains("Overrides cleared") && page.contains("Empty: nothing is overridden."),
        "{page}"
    );
    assert!(!page.contains("redirects its registration"), "{page}");
    let v = json(&api(
        &server,
        "GET",
        &format!("/devices/{MAC}/overrides"),
        Some(&token),
        "",
    ));
    assert_eq!(v["hides_server_values"], false);
}

#[test]
fn overrides_of_many_devices_are_cleared_together_and_only_by_admins() {
    let server = ZServer::start();
    setup(&server);
    for (mac, file) in [(MAC, "phone"), (OTHER, "web")] {
        let mut phone = server.phone(mac, UA_VVX500_APP);
        assert_eq!(phone.get(&format!("/{mac}.cfg")).status, 200);
        let body = br#"<PHONE_CONFIG><OVERRIDES device.prov.serverName="http://elsewhere.example.org/"/></PHONE_CONFIG>"#;
        let r = phone.request("PUT", &format!("/overrides/{mac}-{file}.cfg"), body);
        assert_eq!(r.status, 201);
    }
    let listed = server.cli_ok(&["overrides", "list"]);
    assert!(
        listed.contains(MAC) && listed.contains(&format!("{OTHER}-web.cfg")),
        "{listed}"
    );
    let shown = server.cli_ok(&["overrides", "show", OTHER]);
    assert!(
        shown.contains("device.prov.serverName") && shown.contains("overrides.server"),
        "{shown}"
    );

    // The console list and the API: a viewer may not clear; an unknown MAC clears nothing.
    let s = Session::admin(&server);
    let page = s.get("/overrides").text();
    assert!(page.contains(MAC) && page.contains(OTHER), "{page}");
    let viewer = user_with_token(&server, "look", "viewer", "");
    let body = format!(r#"{{"macs": ["{MAC}", "{OTHER}"]}}"#);
    assert_eq!(
        api(&server, "POST", "/overrides/clear", Some(&viewer), &body).status,
        403
    );
    let token = user_with_token(&server, "bot", "admin", "");
    let r = api(
        &server,
        "POST",
        "/overrides/clear",
        Some(&token),
        r#"{"macs": ["0004f2000101", "0004f2999999"]}"#,
    );
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(
        server.cli_ok(&["overrides", "list"]).contains(MAC),
        "nothing was cleared"
    );
    let r = api(
        &server,
        "DELETE",
        &format!("/devices/{OTHER}/overrides"),
        Some(&token),
        "",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        json(&r)["cleared"],
        serde_json::json!([format!("{OTHER}-web.cfg")])
    );
    let r = s.post("/overrides/clear", &[("mac", MAC), ("mac", OTHER)]);
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(
        server.cli_ok(&["overrides", "list"]).trim(),
        "no device has overrides"
    );
    let out = server.cli_ok(&["overrides", "clear", MAC]);
    assert!(
        out.contains("cleared") && out.contains("Reset Local Configuration"),
        "{out}"
    );
}
