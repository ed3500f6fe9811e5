//! What the state machine owns, only it sets (I6): every owned parameter tried through each
//! way values enter — a profile file, a policy, a custom variable, an override a phone
//! uploads — is refused naming the file, the line and the parameter (nothing stored), or,
//! for an override, stored as the phone sent it but never served back with it.

use crate::common::*;

/// Every parameter the machine owns (`domain::machine::owned`), in the spellings files use.
const OWNED: [&str; 13] = [
    "device.prov.serverName",
    "device.prov.serverType",
    "device.prov.user",
    "device.prov.password",
    "device.prov.ztpEnabled",
    "device.prov.tagSerialNo",
    "device.prov.upgradeServer",
    "device.dhcp.bootSrvUseOpt",
    "device.sec.TLS.customCaCert1",
    "device.sec.TLS.profile.caCertList1",
    "device.sec.TLS.profileSelection.provisioning",
    "device.set",
    "device.prov.serverName.set",
];

/// A file with one owned parameter per line, from line 2: `(bytes, line of each)`.
fn file_with_every_owned() -> (Vec<u8>, Vec<(String, u32)>) {
    let mut text = String::from("<polycomConfig up.welcome=\"1\"\n");
    let mut lines = Vec::new();
    for (i, p) in OWNED.iter().enumerate() {
        text.push_str(&format!("  {p}=\"x\"\n"));
        lines.push((p.to_string(), i as u32 + 2));
    }
    text.push_str("/>\n");
    (text.into_bytes(), lines)
}

#[test]
fn a_profile_file_setting_any_owned_parameter_is_refused_naming_file_line_and_parameter() {
    let server = ZServer::start();
    let (bytes, lines) = file_with_every_owned();
    let file = write_file(server.dir.path(), "legacy-site.cfg", &bytes);
    let err = server.cli_err(&[
        "profile",
        "add",
        "legacy",
        "--file",
        file.to_str().expect("p"),
    ]);
    for (param, line) in &lines {
        assert!(
            err.contains(&format!("legacy-site.cfg: line {line}: `{param}`")),
            "{param} at line {line}: {err}"
        );
    }
    assert!(
        !server.cli_ok(&["profile", "list"]).contains("legacy"),
        "nothing stored"
    );
    // The API refuses the same, naming each in its fields.
    let token = user_with_token(&server, "ops", "admin", "");
    let body = serde_json::json!({
        "name": "legacy", "vendor_model": "Polycom_UCS_Device",
        "files": [{"name": "legacy-site.cfg", "content": String::from_utf8(bytes).expect("utf-8")}],
    });
    let r = api(
        &server,
        "POST",
        "/profiles",
        Some(&token),
        &body.to_string(),
    );
    assert_eq!(r.status, 422, "{}", r.text());
    let text = r.text();
    for (param, _) in &lines {
        assert!(text.contains(param.as_str()), "{param}: {text}");
    }
}

#[test]
fn a_policy_or_a_custom_variable_setting_any_owned_parameter_is_refused() {
    let server = ZServer::start();
    for param in OWNED {
        let err = server.cli_err(&["policy", "set", "account", param, "x"]);
        assert!(
            err.contains("parameter") && err.contains(param),
            "{param}: {err}"
        );
        let err = server.cli_err(&["variable", "set", "PROV_THING", param]);
        assert!(
            err.contains("value") && err.contains(param),
            "{param}: {err}"
        );
    }
    assert!(!server.cli_ok(&["policy", "list"]).contains("device."));
    assert!(!server.cli_ok(&["variable", "list"]).contains("PROV_THING"));
    // An ${OVERRIDE} fragment may not set any device.* parameter at all.
    server.cli_ok(&["profile", "add", "office"]);
    server.cli_ok(&["device", "add", "0004f2000e01", "--profile", "office"]);
    for param in OWNED {
        let err = server.cli_err(&[
            "device",
            "set-vars",
            "0004f2000e01",
            "--override",
            &format!("{param}=\"x\""),
        ]);
        assert!(
            err.contains("override") && err.contains(param),
            "{param}: {err}"
        );
    }
}

#[test]
fn an_override_a_phone_uploads_is_never_served_back_with_owned_parameters() {
    let server = ZServer::start();
    let (user, password) = server.set_credentials();
    server.cli_ok(&["enrol", "mode", "off", "--yes"]);
    server.cli_ok(&["profile", "add", "office"]);
    let mac = "0004f2000e02";
    server.cli_ok(&["device", "add", mac, "--profile", "office"]);
    let mut phone = Phone::new(server.device, mac, UA_VVX500_APP, &user, &password);
    let (bytes, _) = file_with_every_owned();
    let path = format!("/overrides/{mac}-phone.cfg");
    let put = phone.request("PUT", &path, &bytes);
    assert!((200..300).contains(&put.status), "{}", put.status);
    let got = phone.get(&path);
    assert_eq!(got.status, 200);
    let text = String::from_utf8_lossy(&got.body).into_owned();
    for param in OWNED {
        assert!(
            !text.contains(&format!("{param}=")),
            "{param} served back: {text}"
        );
    }
    assert!(
        text.contains("up.welcome=\"1\""),
        "the rest is served: {text}"
    );
    // Flagged in the log.
    let output = server.stop();
    assert!(output.contains("served without them"), "{output}");
}
