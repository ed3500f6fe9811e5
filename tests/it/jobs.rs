//! Device jobs (`actions::device_jobs`): a confirmed bulk action on more devices than
//! `console.bulk_job_threshold` runs in the background, and its page shows the progress,
//! reloading itself, then the outcome; a failing one ends `failed`, names the MAC and
//! changes nothing; the API runs one on `"background": true`; a job is seen only in its own
//! account. `ZEROTOUCH_TEST_JOB_STEP_MS` (debug builds) slows each step so a job is seen
//! running.

use std::time::Duration;

use serde_json::Value;

use crate::common::*;

fn mac(i: usize) -> String {
    format!("0004f2cc{i:04x}")
}

/// A server whose jobs start above 5 devices and take 100 ms a device, with the profiles
/// `office` and `lobby`, the site `hq` and `n` devices of `office`.
fn server_with(n: usize) -> ZServer {
    server_with_config(n, "")
}

/// `server_with`, `extra` (dotted keys) added to its configuration.
fn server_with_config(n: usize, extra: &str) -> ZServer {
    let server = ZServer::start_in_with_env(
        tempfile::tempdir().expect("tempdir"),
        &format!("console.bulk_job_threshold = 5\n{extra}"),
        vec![("ZEROTOUCH_TEST_JOB_STEP_MS".into(), "100".into())],
    );
    server.cli_ok(&["profile", "add", "office"]);
    server.cli_ok(&["profile", "add", "lobby"]);
    server.cli_ok(&["site", "add", "hq"]);
    let csv: String = (0..n).map(|i| format!("{},,,office\n", mac(i))).collect();
    let file = write_file(server.dir.path(), "devices.csv", csv.as_bytes());
    server.cli_ok(&["import", &file.to_string_lossy()]);
    server
}

/// The confirmed bulk post of `action`/`value` on `macs`.
fn confirmed(s: &Session, action: &str, value: &str, macs: &[String]) -> Resp {
    let expected = macs.len().to_string();
    let mut f: Vec<(&str, &str)> = vec![
        ("action", action),
        ("value", value),
        ("scope", "selected"),
        ("confirm", "yes"),
        ("expected", &expected),
    ];
    f.extend(macs.iter().map(|m| ("mac", m.as_str())));
    s.post("/accounts/default/inventory/bulk", &f)
}

/// The page of the job a confirmed post started (303 to it), once the job has ended (the
/// page no longer reloads itself).
fn ended_job(s: &Session, r: &Resp) -> String {
    assert_eq!(r.status, 303, "{}", r.text());
    let page_path = r.header("Location").expect("location").to_string();
    assert!(
        eventually(Duration::from_secs(60), || !s
            .get(&page_path)
            .text()
            .contains("http-equiv=\"refresh\"")),
        "the job never ended"
    );
    s.get(&page_path).text()
}

/// Each device's profile and site, from the API's inventory.
fn devices(server: &ZServer, token: &str) -> Vec<(String, String, Option<String>)> {
    let inv = json(&api(
        server,
        "GET",
        "/accounts/default/inventory?per_page=1000",
        Some(token),
        "",
    ));
    let mut out: Vec<(String, String, Option<String>)> = inv["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .map(|d: &Value| {
            (
                d["mac"].as_str().expect("mac").to_string(),
                d["profile"].as_str().unwrap_or("").to_string(),
                d["site"].as_str().map(String::from),
            )
        })
        .collect();
    out.sort();
    out
}

/// "N of M devices" on a job page.
fn shown_done(page: &str) -> usize {
    let at = page
        .find("<span class=\"job-count\">")
        .unwrap_or_else(|| panic!("no count: {page}"));
    let rest = &page[at + "<span class=\"job-count\">".len()..];
    rest[..rest.find(" of ").expect("of")]
        .trim()
        .parse()
        .expect("number")
}

#[test]
fn a_large_bulk_move_runs_as_a_job_whose_page_shows_progress_then_the_outcome() {
    let server = server_with(20);
    let token = user_with_token(&server, "bot", "admin", "");
    let s = Session::admin(&server);
    let all: Vec<String> = (0..20).map(mac).collect();
    // At the threshold: runs while the page waits, as before.
    let r = confirmed(&s, "site", "site:hq", &all[..5]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains("Done: Move 5 devices to site hq."),
        "{}",
        r.text()
    );
    // Above it: 303 to the job's page.
    let r = confirmed(&s, "site", "site:", &all);
    assert_eq!(r.status, 303, "{}", r.text());
    let page_path = r.header("Location").expect("location").to_string();
    assert!(
        page_path.starts_with("/accounts/default/jobs/"),
        "{page_path}"
    );
    // Running: the page reloads itself and shows how far it has got, never past the total.
    let first = s.get(&page_path);
    assert_eq!(first.status, 200, "{}", first.text());
    let text = first.text();
    assert!(text.contains("Take 20 devices out of their site"), "{text}");
    assert!(text.contains("http-equiv=\"refresh\""), "{text}");
    assert!(text.contains("<progress max=\"20\""), "{text}");
    assert!(text.contains("Elapsed"), "{text}");
    let mut seen_partway = false;
    let finished = eventually(Duration::from_secs(60), || {
        let page = s.get(&page_path).text();
        let done = shown_done(&page);
        assert!(done <= 20, "{page}");
        if page.contains("http-equiv=\"refresh\"") {
            seen_partway |= done > 0 && done < 20;
            return false;
        }
        true
    });
    assert!(finished, "the job never ended");
    assert!(seen_partway, "no page showed progress part way");
    let page = s.get(&page_path).text();
    assert!(
        page.contains("Done: Take 20 devices out of their site."),
        "{page}"
    );
    assert_eq!(shown_done(&page), 20, "{page}");
    assert!(
        page.contains("href=\"/accounts/default/inventory\""),
        "{page}"
    );
    assert!(page.contains("href=\"/audit\""), "{page}");
    // The devices really moved, each audited.
    assert!(
        devices(&server, &token)
            .iter()
            .all(|(_, _, site)| site.is_none())
    );
    let audit = server.cli_ok(&["audit", "--json", "--limit", "200"]);
    assert_eq!(audit.matches("device.set-site").count(), 25, "{audit}");
    // Another account's user: 404 under their account and under this one.
    add_account(&server, "branch", "Branch");
    user_with_token_args(&server, "bob", &["--account-role", "branch=admin"]);
    let bob = Session::sign_in(&server, "bob", TEST_USER_PASSWORD);
    let id = page_path.rsplit('/').next().expect("id");
    assert_eq!(bob.get(&page_path).status, 404);
    assert_eq!(bob.get(&format!("/accounts/branch/jobs/{id}")).status, 404);
    assert_eq!(s.get(&format!("/accounts/branch/jobs/{id}")).status, 404);
}

#[test]
fn a_failing_job_names_the_mac_and_changes_nothing() {
    let server = server_with(8);
    let token = user_with_token(&server, "bot", "admin", "");
    // A phone seen but not associated.
    let stray = "0004f2cdffff";
    server
        .phone(stray, UA_VVX500_APP)
        .get(&format!("/{stray}.cfg"));
    assert!(eventually(Duration::from_secs(10), || server
        .cli_ok(&["device", "list", "--unassociated"])
        .contains(stray)));
    let s = Session::admin(&server);
    let before = devices(&server, &token);
    let audit_before = server.cli_ok(&["audit", "--json", "--limit", "200"]);
    let mut macs: Vec<String> = (0..8).map(mac).collect();
    macs.push(stray.to_string());
    let r = confirmed(&s, "profile", "profile:lobby", &macs);
    let page = ended_job(&s, &r);
    assert!(page.contains("status failed"), "{page}");
    assert!(
        page.contains(&format!("device {stray} is not associated")),
        "{page}"
    );
    assert!(page.contains("nothing was changed"), "{page}");
    assert_eq!(shown_done(&page), 0, "{page}");
    assert_eq!(devices(&server, &token), before, "nothing changed");
    let audit = server.cli_ok(&["audit", "--json", "--limit", "200"]);
    assert_eq!(audit, audit_before, "nothing audited");
}

#[test]
fn the_api_runs_a_bulk_action_in_the_background() {
    let server = server_with(8);
    let token = user_with_token(&server, "bot", "admin", "");
    let macs: Vec<String> = (0..8).map(mac).collect();
    let bulk = |body: Value| {
        api(
            &server,
            "POST",
            "/accounts/default/devices/bulk",
            Some(&token),
            &body.to_string(),
        )
    };
    // Refused at once, as when the caller waits: a stale count starts no job.
    let r = bulk(
        serde_json::json!({"action": "site", "value": "hq", "filter": {"q": "0004f2cc"}, "expected": 7, "background": true}),
    );
    assert_eq!(r.status, 409, "{}", r.text());
    let r = bulk(
        serde_json::json!({"action": "site", "value": "hq", "macs": macs, "background": true}),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let location = r.header("Location").expect("location").to_string();
    let job = json(&r);
    let id = job["id"].as_i64().expect("id");
    assert_eq!(location, format!("/api/v1/accounts/default/jobs/{id}"));
    assert_eq!(job["total"], 8, "{job}");
    assert_eq!(job["kind"], "bulk", "{job}");
    assert!(
        ["queued", "running"].contains(&job["state"].as_str().expect("state")),
        "{job}"
    );
    let path = location.trim_start_matches("/api/v1");
    let mut last = Value::Null;
    let mut seen_partway = false;
    assert!(
        eventually(Duration::from_secs(60), || {
            last = json(&api(&server, "GET", path, Some(&token), ""));
            let done = last["done"].as_i64().expect("done");
            assert!(done <= 8, "{last}");
            seen_partway |= last["state"] == "running" && done > 0 && done < 8;
            last["state"] == "done"
        }),
        "{last}"
    );
    assert!(seen_partway, "no read showed progress part way");
    assert_eq!(last["done"], 8, "{last}");
    assert_eq!(
        last["outcome"], "Done: Move 8 devices to site hq.",
        "{last}"
    );
    assert!(last["finished_at"].is_i64(), "{last}");
    // The document describes exactly these fields, and both routes.
    let doc = json(&api(&server, "GET", "/openapi.json", None, ""));
    let mut documented: Vec<&str> = doc["components"]["schemas"]["DeviceJob"]["required"]
        .as_array()
        .expect("required")
        .iter()
        .map(|k| k.as_str().expect("key"))
        .collect();
    documented.sort();
    let mut keys: Vec<&str> = last
        .as_object()
        .expect("job")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, documented);
    for p in ["/jobs/{id}", "/accounts/{slug}/jobs/{id}"] {
        assert!(doc["paths"].get(p).is_some(), "{p} undocumented");
    }
    // The alias in the default account.
    let alias = api(&server, "GET", &format!("/jobs/{id}"), Some(&token), "");
    assert_eq!(alias.status, 200, "{}", alias.text());
    assert!(
        devices(&server, &token)
            .iter()
            .all(|(_, _, site)| site.as_deref() == Some("hq"))
    );
    // Another account's token: not found.
    add_account(&server, "branch", "Branch");
    let bob = user_with_token_args(&server, "bob", &["--account-role", "branch=admin"]);
    for p in [path.to_string(), format!("/accounts/branch/jobs/{id}")] {
        assert_eq!(api(&server, "GET", &p, Some(&bob), "").status, 404, "{p}");
    }
    assert_eq!(
        api(
            &server,
            "GET",
            "/accounts/default/jobs/nope",
            Some(&token),
            ""
        )
        .status,
        404
    );
}

#[test]
fn apply_now_from_the_device_list_runs_as_a_job() {
    let off = server_with(2);
    let s = Session::admin(&off);
    let macs: Vec<String> = (0..2).map(mac).collect();
    // Off: refused at once, no job.
    let r = confirmed(&s, "apply-now", "", &macs);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("sip.enabled"), "{}", r.text());
    drop(off);
    let server = server_with_config(
        3,
        "sip.enabled = true\nsip.networks = [\"127.0.0.0/8\"]\nsip.confirm_wait_secs = 1",
    );
    let s = Session::admin(&server);
    let macs: Vec<String> = (0..3).map(mac).collect();
    // Below the threshold too: apply-now always runs as a job.
    let r = confirmed(&s, "apply-now", "", &macs);
    let page = ended_job(&s, &r);
    assert!(page.contains("Apply now to 3 device(s)"), "{page}");
    // Never seen: no proven address, nothing sent.
    assert!(
        page.contains("Check-sync sent to 0 device(s): 0 answered, 0 unreachable, 3 not sent"),
        "{page}"
    );
    assert_eq!(shown_done(&page), 3, "{page}");
    let audit = server.cli_ok(&["audit", "--json", "--limit", "200"]);
    assert_eq!(audit.matches("device.apply-now").count(), 1, "{audit}");
}
