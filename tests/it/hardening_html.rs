//! Secrets never written into HTML (issue 19, item 7): with a secret of every kind stored,
//! no console page an admin opens carries one; write-only fields show that a value is set.

use crate::common::*;

const MAC: &str = "0004f2000881";
const LINE: &str = "Html-Line-Secret-1";
const POLICY: &str = "Html-Policy-Secret-2";
const VARIABLE: &str = "Html-Variable-Secret-3";
const SETTING: &str = "Html-Setting-Secret-4";
const FILE: &str = "Html-File-Secret-5";
const PROV: &str = "Html-Prov-Secret-6";
const URL: &str = "Html-Url-Secret-7";

#[test]
fn no_console_page_carries_a_stored_secret() {
    let server = ZServer::start();
    let (_, account) = server.set_credentials();
    let site = write_file(
        server.dir.path(),
        "site.cfg",
        format!("<polycomConfig reg.1.auth.password=\"{FILE}\" up.backlight.idleIntensity=\"1\"/>")
            .as_bytes(),
    );
    server.cli_ok(&[
        "profile",
        "add",
        "office",
        "--file",
        site.to_str().expect("path"),
    ]);
    server.cli_ok(&[
        "device",
        "add",
        MAC,
        "--profile",
        "office",
        "--sip-server",
        "sip.example.com",
        "--sip-user",
        "1001",
        "--sip-password",
        LINE,
        "--prov-server",
        &format!("https://produser:{URL}@prov.example.com/"),
        "--prov-user",
        "provuser",
        "--prov-password",
        PROV,
    ]);
    server.cli_ok(&["policy", "set", "account", "reg.2.auth.password", POLICY]);
    server.cli_ok(&["variable", "set", "BRANCH_PASSWORD", VARIABLE]);
    server.cli_ok(&[
        "settings",
        "set",
        "http_user=prov",
        &format!("http_password={SETTING}"),
    ]);
    let secrets = [
        account.as_str(),
        LINE,
        POLICY,
        VARIABLE,
        SETTING,
        FILE,
        PROV,
        URL,
    ];
    let s = Session::admin(&server);
    let mut leaks = Vec::new();
    for page in [
        "/".to_string(),
        format!("/devices/{MAC}"),
        format!("/devices/{MAC}/edit"),
        format!("/devices/{MAC}/values"),
        format!("/devices/{MAC}/settings"),
        "/profiles".to_string(),
        "/profiles/office".to_string(),
        "/policies".to_string(),
        "/variables".to_string(),
        "/settings".to_string(),
        format!("/preview?mac={MAC}"),
        "/audit".to_string(),
        "/accounts".to_string(),
        "/autosync".to_string(),
        "/find?view=device".to_string(),
    ] {
        let r = s.get(&page);
        let html = r.text();
        for secret in secrets {
            if html.contains(secret) {
                leaks.push(format!("{secret} on {page} ({})", r.status));
            }
        }
    }
    assert!(leaks.is_empty(), "secrets in HTML: {leaks:#?}");

    // The edit form is write-only: it says the secrets are set, and sending it back as
    // shown (empty password fields, the masked address) keeps them.
    let form = s.get(&format!("/devices/{MAC}/edit")).text();
    assert!(form.contains("set — type a new one"), "{form}");
    assert!(
        form.contains("produser:********@prov.example.com"),
        "{form}"
    );
    let r = s.post(
        &format!("/devices/{MAC}/edit"),
        &[
            ("devices[0].serial", ""),
            ("devices[0].vendor_model", "Polycom_UCS_Device"),
            ("devices[0].profile", "office"),
            ("devices[0].sip_server", "sip.example.com"),
            ("devices[0].outbound_proxy", ""),
            (
                "devices[0].prov_server",
                "https://produser:********@prov.example.com/",
            ),
            ("devices[0].prov_user", "provuser"),
            ("devices[0].prov_password", ""),
            ("devices[0].polling", ""),
            ("devices[0].sip_auth_user_id", "1001"),
            ("devices[0].sip_auth_password", ""),
            ("devices[0].line_label", ""),
            ("devices[0].display_name", ""),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let rendered = server.cli_ok(&["render", MAC, "--host", "prov.example.com"]);
    for secret in [LINE, URL] {
        assert!(
            rendered.contains(secret),
            "{secret} lost by the edit:\n{rendered}"
        );
    }
    // Clear removes one.
    let r = s.post(
        &format!("/devices/{MAC}/edit"),
        &[
            ("devices[0].vendor_model", "Polycom_UCS_Device"),
            ("devices[0].profile", "office"),
            ("devices[0].sip_server", "sip.example.com"),
            (
                "devices[0].prov_server",
                "https://produser:********@prov.example.com/",
            ),
            ("devices[0].prov_user", "provuser"),
            ("devices[0].sip_auth_user_id", "1001"),
            ("devices[0].clear_sip_auth_password", "on"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let rendered = server.cli_ok(&["render", MAC, "--host", "prov.example.com"]);
    assert!(
        !rendered.contains(LINE) && rendered.contains(URL),
        "{rendered}"
    );
}
