//! The S3 transport set from the console and the API against moto: the bucket is checked
//! when the settings are saved (a missing bucket refused naming `s3_bucket`, nothing
//! saved), the secret key never comes back, and "generate and push now" uploads.

use std::time::Duration;

use super::{MAC, Moto, SEGMENT, add_device};
use crate::common::{Session, ZServer, api, eventually, json, user_with_token};
use crate::settings_pages::save_settings;

#[test]
fn the_console_and_the_api_check_the_bucket_at_save_and_push_to_it() {
    let Some(moto) = Moto::start() else {
        return;
    };
    moto.create_bucket("zt-console");
    let server = ZServer::start();
    add_device(&server);
    let s = Session::admin(&server);
    let endpoint = moto.endpoint();
    let s3 = |bucket: &'static str| {
        vec![
            ("mode", "external"),
            ("server_address", "pbx.example.com"),
            ("external_server", "dms.example.com"),
            ("transport", "s3"),
            ("s3_endpoint", endpoint.as_str()),
            ("s3_bucket", bucket),
            ("s3_access_key", "testing"),
            ("s3_secret_key", "Console-S3-Secret"),
            ("s3_prefix", "site2"),
        ]
    };
    let r = save_settings(&s, &s3("no-such-bucket"));
    assert_eq!(r.status, 422);
    assert!(
        r.text()
            .contains("bucket <code>no-such-bucket</code> does not exist"),
        "{}",
        r.text()
    );
    assert!(!r.text().contains("Console-S3-Secret"));
    assert!(server.cli_ok(&["settings", "show"]).contains("Local mode"));
    let r = save_settings(&s, &s3("zt-console"));
    assert_eq!(r.status, 303, "{}", r.text());
    let page = s.get("/settings").text();
    assert!(!page.contains("Console-S3-Secret") && page.contains("External mode."));
    // Saving again without retyping the key keeps it (and the bucket is checked again).
    assert_eq!(
        save_settings(&s, &[("ntp_server", "ntp.example.com")]).status,
        303
    );

    let t = user_with_token(&server, "root", "admin", "");
    let r = api(
        &server,
        "PUT",
        "/settings",
        Some(&t),
        r#"{"s3_bucket": "also-missing"}"#,
    );
    assert_eq!(r.status, 422);
    assert_eq!(json(&r)["error"]["fields"][0]["field"], "s3_bucket");
    let v = json(&api(&server, "GET", "/settings", Some(&t), ""));
    assert_eq!(
        (v["s3_bucket"].as_str(), v["s3_secret_key_set"].as_bool()),
        (Some("zt-console"), Some(true))
    );
    // Once a push the save started is over, a new one is accepted.
    assert!(
        eventually(Duration::from_secs(20), || {
            let last = &json(&api(&server, "GET", "/settings/push", Some(&t), ""))["last"];
            last.is_null() || !last["finished_at"].is_null()
        }),
        "a push never finished"
    );
    let r = api(&server, "POST", "/settings/push", Some(&t), "");
    assert_eq!(r.status, 202, "{}", r.text());
    let key = format!("site2/{SEGMENT}/{MAC}-profile.cfg");
    assert!(
        eventually(Duration::from_secs(20), || moto
            .get("zt-console", &key)
            .is_some()),
        "not uploaded: {}",
        server.output.lock().expect("lock")
    );
    assert!(
        !server.cli_ok(&["audit"]).contains("Console-S3-Secret"),
        "the audit log masks the key"
    );
}
