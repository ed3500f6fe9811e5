//! One action layer: the same action taken through the CLI, the console and the JSON API
//! has the same outcome (the CLI once deleted devices through a second, diverging path that
//! left reference IDs `complete` with no device, never to expire).

use crate::common::*;

/// A reference ID with one device, through the API.
fn reference_with_device(server: &ZServer, token: &str, reference: &str, mac: &str) {
    let r = api(
        server,
        "POST",
        "/subscribers",
        Some(token),
        &format!(r#"{{"reference_id":"{reference}","company":"Acme","last_name":"Doe"}}"#),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = api(
        server,
        "POST",
        "/devices",
        Some(token),
        &format!(r#"{{"id":"{mac}","profile":"office","reference_id":"{reference}"}}"#),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let s = json(&api(
        server,
        "GET",
        &format!("/subscribers/{reference}"),
        Some(token),
        "",
    ));
    assert_eq!(s["status"], "complete", "{s}");
}

#[test]
fn deleting_the_last_device_of_a_reference_id_leaves_it_partial_with_an_expiry_everywhere() {
    let server = ZServer::start();
    server.cli_ok(&["profile", "add", "office"]);
    let token = user_with_token(&server, "ops", "admin", "");
    let session = Session::admin(&server);
    let cases = [
        ("CLIREF1", "0004f2000101"),
        ("WEBREF1", "0004f2000102"),
        ("APIREF1", "0004f2000103"),
    ];
    for (reference, mac) in cases {
        reference_with_device(&server, &token, reference, mac);
    }
    // The same action, three ways.
    server.cli_ok(&["device", "delete", cases[0].1]);
    let r = session.post(&format!("/devices/{}/delete", cases[1].1), &[]);
    assert_eq!(r.status, 303, "{}", r.text());
    let r = api(
        &server,
        "DELETE",
        &format!("/devices/{}", cases[2].1),
        Some(&token),
        "",
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let mut outcomes = Vec::new();
    for (reference, mac) in cases {
        let s = json(&api(
            &server,
            "GET",
            &format!("/subscribers/{reference}"),
            Some(&token),
            "",
        ));
        assert_eq!(s["status"], "partial", "{reference}: {s}");
        assert!(
            s["expires_at"].as_i64().is_some(),
            "{reference} expires: {s}"
        );
        assert_eq!(s["devices"], serde_json::json!([]), "{reference}: {s}");
        let gone = api(&server, "GET", &format!("/devices/{mac}"), Some(&token), "");
        assert_eq!(gone.status, 404, "{mac} is gone");
        outcomes.push((s["status"].clone(), s["devices"].clone()));
    }
    assert!(outcomes.windows(2).all(|w| w[0] == w[1]), "{outcomes:?}");
    // Every way leaves the same audit entry.
    let audit = json(&api(&server, "GET", "/audit?limit=50", Some(&token), ""));
    let deletes = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "device.delete")
        .count();
    assert_eq!(deletes, 3, "{audit}");
}

#[test]
fn a_profile_in_use_is_not_deleted_whichever_way_an_admin_asks() {
    let server = ZServer::start();
    server.cli_ok(&["profile", "add", "office"]);
    server.cli_ok(&["device", "add", "0004f2000201", "--profile", "office"]);
    let token = user_with_token(&server, "ops", "admin", "");
    let session = Session::admin(&server);

    let cli = server.cli_err(&["profile", "delete", "office"]);
    let web = session.post("/profiles/office/delete", &[]);
    let api_r = api(&server, "DELETE", "/profiles/office", Some(&token), "");
    assert_eq!(api_r.status, 409, "{}", api_r.text());
    assert_eq!(web.status, 409, "{}", web.text());
    let api_message = json(&api_r)["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(api_message.contains("1 device"), "{api_message}");
    assert!(cli.contains(&api_message), "CLI: {cli}\nAPI: {api_message}");
    assert!(web.text().contains(&api_message), "the page says it too");
    // Still there, in all three.
    assert!(server.cli_ok(&["profile", "list"]).contains("office"));
    assert_eq!(
        api(&server, "GET", "/profiles/office", Some(&token), "").status,
        200
    );
}

#[test]
fn deleting_replacing_or_moving_away_a_seen_phone_is_counted_and_confirmed_everywhere() {
    let server = ZServer::start();
    let (user, password) = server.set_credentials();
    server.cli_ok(&["profile", "add", "office"]);
    let token = user_with_token(&server, "ops", "admin", "");
    let session = Session::admin(&server);
    let macs = ["0004f2000301", "0004f2000302", "0004f2000303"];
    for mac in macs {
        server.cli_ok(&["device", "add", mac, "--profile", "office"]);
        let mut phone = Phone::new(server.device, mac, UA_VVX500_APP, &user, &password);
        assert_eq!(phone.get(&format!("/{mac}.cfg")).status, 200);
        server.wait_recorded(mac);
    }
    // A device never seen is no phone: deleted at once.
    server.cli_ok(&["device", "add", "0004f2000309", "--profile", "office"]);
    server.cli_ok(&["device", "delete", "0004f2000309"]);

    // Each way refuses first, counting the phone with what happens to it; nothing changes.
    let cli = server.cli_err(&["device", "delete", macs[0]]);
    assert!(
        cli.contains("1 phone(s) affected") && cli.contains(macs[0]),
        "{cli}"
    );
    assert!(cli.contains("--yes"), "{cli}");
    let page = session.post(&format!("/devices/{}/delete", macs[1]), &[]);
    assert_eq!(page.status, 409, "{}", page.text());
    assert!(page.text().contains(macs[1]) && page.text().contains("loses its profile"));
    let r = api(
        &server,
        "DELETE",
        &format!("/devices/{}", macs[2]),
        Some(&token),
        "",
    );
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(json(&r)["error"]["devices"], 1, "{}", r.text());
    assert_eq!(
        json(&r)["error"]["phones"][0]["mac"],
        macs[2],
        "{}",
        r.text()
    );
    for mac in macs {
        assert!(
            server.cli_ok(&["device", "list"]).contains(mac),
            "{mac} kept"
        );
    }
    // Replacing or sending a phone elsewhere asks the same (API).
    let r = api(
        &server,
        "POST",
        &format!("/devices/{}/replace", macs[0]),
        Some(&token),
        r#"{"new_mac":"0004f2000399"}"#,
    );
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(
        r.text().contains("replaced by 0004f2000399"),
        "{}",
        r.text()
    );
    let elsewhere = r#"{"profile":"office","prov_server":"https://other.example.net/prov"}"#;
    let path = format!("/devices/{}", macs[1]);
    let r = api(&server, "PUT", &path, Some(&token), elsewhere);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(
        r.text().contains("another provisioning server"),
        "{}",
        r.text()
    );
    let d = json(&api(&server, "GET", &path, Some(&token), ""));
    assert_eq!(d["prov_server"], "", "nothing stored: {d}");

    // Confirmed, each goes ahead.
    server.cli_ok(&["device", "delete", macs[0], "--yes"]);
    let page = session.post(
        &format!("/devices/{}/delete", macs[1]),
        &[("confirm", "yes")],
    );
    assert_eq!(page.status, 303, "{}", page.text());
    let r = api(
        &server,
        "DELETE",
        &format!("/devices/{}?confirm=true", macs[2]),
        Some(&token),
        "",
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let list = server.cli_ok(&["device", "list"]);
    for mac in macs {
        assert!(!list.contains(mac), "{mac} deleted: {list}");
    }
}
