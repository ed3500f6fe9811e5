//! The console an admin of thousands of phones uses, in a real headless Chromium, on an
//! installation of 5,000 devices that holds every state the dashboard counts (locked out,
//! failing sign-in, never seen, overridden, unassociated, provisioned, staged — so no check
//! passes on zeros): the dashboard's numbers equal the API's summary and each card's list;
//! Find finds an existing MAC typed with colons; the device list sorts on the server; a
//! bulk move of a filtered set is counted, confirmed and done; a form with three mistakes
//! shows all three at once, next to their fields, in words. Screenshots go to
//! `tests/screenshots/`.

use std::collections::BTreeMap;

use fantoccini::Locator;
use serde_json::Value;

use crate::browser::{Browser, ONE_BROWSER, runtime};
use crate::common::*;

const DEVICES: usize = 5000;

fn mac(i: usize) -> String {
    format!("0004f2{:06x}", 0x30_0000 + i)
}

fn colons(mac: &str) -> String {
    mac.as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).to_uppercase())
        .collect::<Vec<_>>()
        .join(":")
}

/// 5,000 associated devices (one import) with line names, and phones in every state
/// (`summary::every_state`).
fn populate(server: &ZServer) {
    crate::summary::account_with_a_profile(server);
    server.cli_ok(&["site", "add", "hq"]);
    let devices: Vec<Value> = (0..DEVICES)
        .map(|i| {
            serde_json::json!({"mac": mac(i), "profile": "office",
                "lines": [{"line": 1, "display_name": format!("User {:04}", (i * 7919) % DEVICES)}]})
        })
        .collect();
    let file = server.dir.path().join("devices.json");
    let doc = serde_json::json!({"format": "zerotouch-export", "version": 1, "devices": devices});
    std::fs::write(&file, doc.to_string()).expect("write");
    server.cli_ok(&["transfer", "import", file.to_str().expect("path")]);
    let seen: Vec<String> = (0..6).map(mac).collect();
    crate::summary::every_state(
        server,
        &seen,
        ["0004f2ff0000".into(), "0004f2ff0001".into()],
    );
}

/// The dashboard's cards as the browser shows them: key → number.
async fn cards(b: &Browser) -> BTreeMap<String, u64> {
    let v = b
        .client
        .execute(
            "return Array.from(document.querySelectorAll('a.card[data-key]')).map(a => [a.dataset.key, a.querySelector('strong').textContent.trim()]);",
            vec![],
        )
        .await
        .expect("cards");
    v.as_array()
        .expect("array")
        .iter()
        .map(|p| {
            (
                p[0].as_str().expect("key").to_string(),
                p[1].as_str().expect("n").parse().expect("number"),
            )
        })
        .collect()
}

async fn rows(b: &Browser) -> Vec<String> {
    let v = b
        .client
        .execute(
            "return Array.from(document.querySelectorAll('tr.device td:nth-child(2) code')).map(c => c.textContent);",
            vec![],
        )
        .await
        .expect("rows");
    v.as_array()
        .expect("array")
        .iter()
        .map(|m| m.as_str().expect("mac").to_string())
        .collect()
}

#[test]
fn five_thousand_devices_dashboard_find_sort_bulk_move_and_form_errors_in_a_browser() {
    let _one = ONE_BROWSER.lock().unwrap_or_else(|p| p.into_inner());
    let server = ZServer::start_with_clock("");
    populate(&server);
    let token = user_with_token(&server, "bot", "admin", "");
    let summary = json(&api(
        &server,
        "GET",
        "/accounts/default/summary",
        Some(&token),
        "",
    ));
    runtime().block_on(async {
        let Some(mut b) = Browser::start(&server, "dashboard").await else {
            return;
        };
        b.first_sign_in(&server).await;
        // The dashboard: every card the API's summary has, with the same number.
        let shown = cards(&b).await;
        let want: BTreeMap<String, u64> = summary["cards"]
            .as_array()
            .expect("cards")
            .iter()
            .map(|c| {
                (
                    c["key"].as_str().expect("key").to_string(),
                    c["count"].as_u64().expect("count"),
                )
            })
            .collect();
        assert_eq!(shown, want);
        for (key, at_least) in [
            ("locked-out", 1),
            ("auth-failing", 1),
            ("never-seen", 4000),
            ("overridden", 1),
            ("unassociated", 2),
            ("provisioned", 1),
            ("staged", 4000),
        ] {
            assert!(shown[key] >= at_least, "{key}: {shown:?}");
        }
        b.shot("dashboard").await;
        // The locked-out card opens the list of exactly those phones.
        b.click("a.card[data-key=locked-out]").await;
        assert_eq!(rows(&b).await.len() as u64, shown["locked-out"]);
        b.shot("locked-out-list").await;

        // Find: an existing MAC typed with colons; the device has no reference ID.
        b.goto("/find").await;
        b.fill("mac", &colons(&mac(4321))).await;
        b.click("main form.find button[type=submit]").await;
        let text = b.text().await;
        assert!(
            text.contains(&mac(4321)) && !text.contains("No results"),
            "{text}"
        );
        b.shot("find-mac-with-colons").await;

        // The device list sorts on the server over all 5,000: by name, then reversed.
        b.goto("/accounts/default/inventory").await;
        b.click_link("Name").await;
        let first = rows(&b).await;
        b.click_link("Name ▲").await;
        let last = rows(&b).await;
        assert_eq!(first.len(), 100);
        assert_ne!(first[0], last[0]);
        let name_of = |m: &str| {
            let i = usize::from_str_radix(&m[6..], 16).expect("hex") - 0x30_0000;
            format!("User {:04}", (i * 7919) % DEVICES)
        };
        assert_eq!(name_of(&first[0]), "User 0000");
        assert_eq!(name_of(&last[0]), format!("User {:04}", DEVICES - 1));
        b.shot("sorted-by-name-descending").await;

        // A bulk move of a filtered set: the 256 devices whose MAC starts 0004f2300a.
        b.goto("/accounts/default/inventory?q=0004f2300a").await;
        assert!(
            b.text().await.contains("of 256 matching"),
            "{}",
            b.text().await
        );
        b.toggle("input[name=scope][value=all]").await;
        b.choose("action", "site").await;
        b.choose("value", "site:hq").await;
        b.click("form#bulk button[type=submit]").await;
        let text = b.text().await;
        assert!(text.contains("Move 256 devices to site hq?"), "{text}");
        b.shot("bulk-move-confirm").await;
        b.click("main form button[type=submit]").await;
        // More devices than `console.bulk_job_threshold`: a job, whose page reloads itself
        // until the move is done.
        assert!(
            b.path().await.starts_with("/accounts/default/jobs/"),
            "{}",
            b.path().await
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !b
            .text()
            .await
            .contains("Done: Move 256 devices to site hq.")
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the job did not end: {}",
                b.text().await
            );
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        b.shot("bulk-move-job-done").await;
        let moved = json(&api(
            &server,
            "GET",
            "/accounts/default/inventory?site=hq&per_page=1",
            Some(&token),
            "",
        ));
        assert_eq!(moved["matched"], 256);
        assert!(!moved["devices"][0]["mac"].as_str().expect("mac").is_empty());

        // A form with three mistakes: all three at once, next to their fields, in words.
        b.goto("/devices/new").await;
        // Some fields sit in folded sections: typed as a browser would once opened.
        b.client
            .execute(
                "document.querySelectorAll('details').forEach(d => d.open = true);",
                vec![],
            )
            .await
            .expect("open sections");
        b.fill("devices[0].mac", "zz:zz").await;
        b.fill("devices[0].serial", "not a serial!").await;
        b.fill("devices[0].display_name", &"x".repeat(300)).await;
        b.click("main button[name=step][value=finish]").await;
        let text = b.text().await;
        assert!(text.contains("Please correct these 3 things"), "{text}");
        assert!(!text.contains('`'), "no Markdown backticks: {text}");
        let invalid = b
            .client
            .find_all(Locator::Css(".field.invalid .error"))
            .await
            .expect("errors");
        assert_eq!(invalid.len(), 3, "{text}");
        b.shot("three-errors").await;
        b.close().await;
    });
}
