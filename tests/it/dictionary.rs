//! The parameter dictionary where values enter, through the real binary: a near miss of a
//! known name (`reg.1.adress`) refuses a profile upload naming file, line, parameter and
//! the name meant; a value outside an enumeration is a warning with the allowed values (the
//! profile is stored); a name marked deliberate is accepted and shown with its reason; every
//! fixture configuration file lints with zero errors.

use crate::common::*;

fn add_profile(server: &ZServer, name: &str, file: &str, content: &str) -> std::process::Output {
    let path = write_file(server.dir.path(), file, content.as_bytes());
    server.cli(&[
        "profile",
        "add",
        name,
        "--file",
        path.to_str().expect("path"),
    ])
}

#[test]
fn a_near_miss_in_a_profile_upload_is_refused_naming_file_line_and_the_known_name() {
    let server = ZServer::start();
    let content = "<polycomConfig\n  reg.1.label=\"Desk\"\n  reg.1.adress=\"100\"\n/>\n";
    let out = add_profile(&server, "typo", "site.cfg", content);
    assert!(!out.status.success(), "refused");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "site.cfg: line 3: `reg.1.adress`: unknown parameter; did you mean reg.1.address?"
        ),
        "{err}"
    );
    assert!(
        !server.cli_ok(&["profile", "list"]).contains("typo"),
        "nothing stored"
    );
    // The API (the console's action too) refuses the same.
    let token = user_with_token(&server, "ops", "admin", "");
    let body = serde_json::json!({
        "name": "typo", "vendor_model": "Polycom_UCS_Device",
        "files": [{"name": "site.cfg", "content": content}],
    });
    let r = api(
        &server,
        "POST",
        "/profiles",
        Some(&token),
        &body.to_string(),
    );
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(
        r.text().contains("did you mean reg.1.address"),
        "{}",
        r.text()
    );
    // A policy with the same typo is refused too.
    let err = server.cli_err(&["policy", "set", "account", "reg.1.adress", "100"]);
    assert!(err.contains("did you mean reg.1.address"), "{err}");
}

#[test]
fn a_value_outside_an_enumeration_is_warned_with_the_allowed_values_and_stored() {
    let server = ZServer::start();
    let content =
        "<polycomConfig\n  up.backlight.idleIntensity=\"banana\"\n  up.made.up=\"1\"\n/>\n";
    let out = add_profile(&server, "bright", "site.cfg", content);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "site.cfg:2: warning: up.backlight.idleIntensity: `banana` is not allowed: the phone \
             expects one of 0, 1, 2, 3"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("site.cfg:3: warning: up.made.up: not in the parameter dictionary"),
        "{stdout}"
    );
    assert!(
        server.cli_ok(&["profile", "list"]).contains("bright"),
        "stored"
    );
}

#[test]
fn a_name_marked_deliberate_is_accepted_and_shown_with_its_reason() {
    let server = ZServer::start();
    // One edit from the dictionary's feature.paging.enable: refused until marked.
    let content = "<polycomConfig\n  feature.paging.enabled=\"1\"\n/>\n";
    let out = add_profile(&server, "paging", "site.cfg", content);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("did you mean feature.paging.enable?"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.cli_ok(&[
        "policy",
        "deliberate",
        "--reason",
        "spelled so by our release",
        "feature.paging.enabled",
    ]);
    assert!(
        server
            .cli_ok(&["policy", "deliberates"])
            .contains("spelled so by our release"),
        "listed"
    );
    let out = add_profile(&server, "paging", "site.cfg", content);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "site.cfg:2: info: feature.paging.enabled: not in the parameter dictionary; marked \
             deliberate: spelled so by our release"
        ),
        "{stdout}"
    );
    let out = server.cli(&["policy", "set", "account", "feature.paging.enabled", "1"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("marked deliberate: spelled so by our release"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_fixture_configuration_file_lints_with_zero_errors() {
    for file in fixture_files() {
        let out = std::process::Command::new(bin())
            .arg("lint")
            .arg(&file)
            .output()
            .expect("run zerotouch lint");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}: {text}", file.display());
        assert!(text.contains(" 0 error(s)"), "{}: {text}", file.display());
        assert!(!text.contains("[param."), "{}: {text}", file.display());
    }
}
