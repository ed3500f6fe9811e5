//! What admins type, as they type it: MACs with `:`, `-` or `.` are normalised wherever a
//! device is named (API and console creation, Find), a semicolon- or tab-separated bulk
//! file is read and the job says which separator it used, and Find lists every device
//! before any search — no "No results" for an empty form, and an exact MAC with colons
//! finds its device.

use crate::common::*;

#[test]
fn macs_with_separators_are_normalised_and_found() {
    let server = ZServer::start();
    let t = user_with_token(&server, "bot", "admin", "");
    server.cli_ok(&["profile", "add", "office"]);
    // Created through the API with colons, the console with dashes, a policy scope with dots.
    let r = api(
        &server,
        "POST",
        "/devices",
        Some(&t),
        r#"{"id": "00:04:F2:AA:BB:01", "profile": "office"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(json(&r)["id"], "0004f2aabb01");
    let s = Session::admin(&server);
    let r = s.post(
        "/devices",
        &[
            ("count", "1"),
            ("devices[0].mac", "00-04-f2-aa-bb-02"),
            ("devices[0].profile", "office"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(server.cli_ok(&["device", "list"]).contains("0004f2aabb02"));
    // A wrong MAC names the field and what is accepted.
    let r = api(
        &server,
        "POST",
        "/devices",
        Some(&t),
        r#"{"id": "00:04:F2:AA:BB", "profile": "office"}"#,
    );
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("`:`, `-` or `.`"), "{}", r.text());

    // Find: every device before any search, with no "No results".
    let find = s.get("/find").text();
    assert!(
        find.contains("0004f2aabb01") && find.contains("0004f2aabb02"),
        "{find}"
    );
    assert!(!find.contains("No results"), "{find}");
    // An exact MAC typed with colons finds its device, which has no reference ID.
    let find = s.get("/find?mac=00%3A04%3Af2%3Aaa%3Abb%3A02").text();
    assert!(find.contains("/devices/0004f2aabb02"), "{find}");
    assert!(!find.contains("/devices/0004f2aabb01"), "{find}");
    assert!(!find.contains("No results"), "{find}");
    // A search that matches nothing says so.
    assert!(
        s.get("/find?mac=0004f2ffffff")
            .text()
            .contains("No results")
    );
    // The API's device path takes the same forms.
    let r = api(&server, "GET", "/devices/0004.f2aa.bb02", Some(&t), "");
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn a_semicolon_or_tab_separated_bulk_file_is_read_and_the_job_says_so() {
    let server = ZServer::start();
    let t = user_with_token(&server, "bot", "admin", "");
    server.cli_ok(&["profile", "add", "office"]);
    for (sep, words, macs) in [
        (";", "semicolons", ["0004f2cc0001", "0004f2cc0002"]),
        ("\t", "tabs", ["0004f2cc0003", "0004f2cc0004"]),
    ] {
        let csv = format!(
            "MAC Address{sep}Serial number{sep}Vendor Model{sep}Configuration Profile\n\
             {}{sep}{sep}{sep}office\n{}{sep}{sep}Polycom_UCS_Device{sep}office{sep}sip.example.com\n",
            macs[0], macs[1]
        );
        let r = api(&server, "POST", "/imports", Some(&t), &csv);
        assert_eq!(r.status, 201, "{}", r.text());
        let job = json(&r);
        assert_eq!(job["status"], "Completed", "{job}");
        assert_eq!(job["applied_rows"], 2, "{job}");
        assert!(
            job["message"].as_str().unwrap_or("").contains(words),
            "{job}"
        );
        let list = server.cli_ok(&["device", "list"]);
        for m in macs {
            assert!(list.contains(m), "{m}: {list}");
        }
    }
    // A comma file's message names no separator.
    let r = api(
        &server,
        "POST",
        "/imports",
        Some(&t),
        "0004f2cc0005,,,office\n",
    );
    let job = json(&r);
    assert_eq!(job["message"], "1 device(s) associated", "{job}");
}

#[test]
fn a_dhcp_configuration_is_analysed_from_the_console_without_reading_this_servers_files() {
    let server = ZServer::start();
    let s = Session::admin(&server);
    let page = s.get("/diagnostics").text();
    assert!(
        page.contains("action=\"/diagnostics/dhcp-config\""),
        "{page}"
    );
    assert!(
        s.get("/diagnostics").header("Refresh").is_none(),
        "nothing runs"
    );
    // An ISC file uploaded: option 66 sends phones to another server, and its include
    // names a file on this machine, which is noted and never read.
    let conf = "subnet 10.0.20.0 netmask 255.255.255.0 {\n  option tftp-server-name \"10.9.9.9\";\n}\ninclude \"/etc/passwd\";\n";
    let r = crate::lens::post_file(&s, "/diagnostics/dhcp-config", &[], ("dhcpd.conf", conf));
    assert_eq!(r.status, 303, "{}", r.text());
    let page = s.get("/diagnostics").text();
    let section = page
        .split("<section id=\"dhcp-config\">")
        .nth(1)
        .unwrap_or_else(|| panic!("no section: {page}"));
    assert!(section.contains("dhcpd.conf"), "{section}");
    assert!(section.contains("10.9.9.9"), "{section}");
    assert!(!section.contains("root:x:0:0"), "{section}");
    assert!(
        section.contains("include `/etc/passwd` not followed"),
        "{section}"
    );
    // Nothing pasted and no file: the field is named, nothing stored changes.
    let r = crate::lens::post_file(&s, "/diagnostics/dhcp-config", &[("config", " ")], ("", ""));
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("paste a DHCP server"), "{}", r.text());
    assert!(
        s.get("/diagnostics").text().contains("dhcpd.conf"),
        "the previous analysis stays"
    );
}

#[test]
fn the_device_list_searches_sorts_pages_and_downloads_every_matching_device() {
    let server = ZServer::start();
    let t = user_with_token(&server, "bot", "admin", "");
    server.cli_ok(&["profile", "add", "office"]);
    server.cli_ok(&["profile", "add", "lobby"]);
    // Line names out of MAC order, so a sort by name differs from the default.
    let names = [
        "Zoe Ortiz",
        "Anna Berg",
        "Mia Chen",
        "Karl Kraus",
        "Bea Lund",
    ];
    for (i, name) in names.iter().enumerate() {
        let body = serde_json::json!({
            "id": format!("0004f2ee{i:04x}"), "profile": if i % 2 == 0 { "office" } else { "lobby" },
            "display_name": name, "sip_auth_user_id": format!("10{i}"),
            "sip_auth_password": format!("Sip-Secret-{i}7"),
        });
        let r = api(&server, "POST", "/devices", Some(&t), &body.to_string());
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let list = |q: &str| -> Vec<String> {
        let r = json(&api(
            &server,
            "GET",
            &format!("/accounts/default/inventory?{q}"),
            Some(&t),
            "",
        ));
        r["devices"]
            .as_array()
            .expect("devices")
            .iter()
            .map(|d| d["name"].as_str().expect("name").to_string())
            .collect()
    };
    let mut sorted: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    sorted.sort();
    assert_eq!(list("sort=name"), sorted);
    sorted.reverse();
    assert_eq!(list("sort=name&dir=desc"), sorted);
    // Page 2 of 2 per page, sorted: the third and fourth names over every device.
    assert_eq!(
        list("sort=name&per_page=2&page=2"),
        ["Karl Kraus", "Mia Chen"]
    );
    // A search needs every word; a SIP user and a profile are searched too.
    assert_eq!(list("q=kraus"), ["Karl Kraus"]);
    assert_eq!(list("q=lobby%20berg"), ["Anna Berg"]);
    assert_eq!(list("q=103"), ["Karl Kraus"]);
    assert_eq!(list("q=00:04:f2:ee:00:02"), ["Mia Chen"]);
    // Bad values are named, all at once.
    let r = api(
        &server,
        "GET",
        "/accounts/default/inventory?sort=colour&dir=up&flag=shiny",
        Some(&t),
        "",
    );
    assert_eq!(r.status, 422, "{}", r.text());
    for field in ["sort", "dir", "flag"] {
        assert!(r.text().contains(field), "{field}: {}", r.text());
    }
    // The console: sortable headings, and the filtered list as CSV.
    let s = Session::admin(&server);
    let page = s
        .get("/accounts/default/inventory?q=lobby&sort=name")
        .text();
    assert!(page.contains("aria-sort=\"ascending\""), "{page}");
    assert!(
        page.find("Anna Berg").expect("Anna") < page.find("Karl Kraus").expect("Karl"),
        "{page}"
    );
    let csv = s.get("/accounts/default/inventory.csv?q=lobby").text();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.starts_with("mac,state,flags,name"), "{csv}");
    assert!(
        csv.contains("Anna Berg") && csv.contains("Karl Kraus"),
        "{csv}"
    );
    // No SIP password in the list, its CSV or the API's rows.
    let all_csv = s.get("/accounts/default/inventory.csv").text();
    let api_rows = api(&server, "GET", "/accounts/default/inventory", Some(&t), "").text();
    let list_page = s.get("/accounts/default/inventory").text();
    for text in [&all_csv, &api_rows, &list_page, &page] {
        assert!(
            !text.contains("Sip-Secret-"),
            "a SIP password shown: {text}"
        );
    }
}
