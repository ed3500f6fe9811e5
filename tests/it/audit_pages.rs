//! The audit log page an admin of thousands of phones reads, and the user management that
//! asks before it acts: paging by entry id over generated entries (50 a page, Older and
//! Newer without overlap), each filter narrowing the page and its CSV and JSON downloads
//! alike, a bad filter named next to the form, fields before and after in words with
//! secrets still masked; resetting a password, deleting a user and revoking a token only
//! with `confirm=yes`; and the "who" filter in a headless Chromium.

use crate::browser::{Browser, ONE_BROWSER, runtime};
use crate::common::*;

/// The generated entries' first day (2025-03-01, UTC) as a Unix time.
const DAY_ONE: i64 = 1_740_787_200;

/// Replaces the audit log with 120 generated entries (ids 1 to 120): every third by
/// `carol` (a person), the others by `dave` or his API token; every fourth a
/// `device.modify`, the rest `site.add`; the first 60 on 2025-03-01, the rest on
/// 2025-03-02; entry 9 (a `device.modify`) about the phone 0004f2aabbcc, with a secret masked as recorded.
fn generate(server: &ZServer) {
    let db = rusqlite::Connection::open(server.data_dir().join("zerotouch.db")).expect("db");
    db.execute_batch("DELETE FROM audit_log").expect("clear");
    for i in 0..120_i64 {
        let (actor, kind) = match i % 3 {
            0 => ("carol", "person"),
            1 => ("dave", "person"),
            _ => ("dave (API token)", "token"),
        };
        let action = if i % 4 == 0 {
            "device.modify"
        } else {
            "site.add"
        };
        let (target, before, after) = if i == 8 {
            (
                "0004f2aabbcc".to_string(),
                Some(r#"{"label":"1001","sip_auth_password":"********","site":"hq"}"#),
                Some(r#"{"label":"1002","sip_auth_password":"********","site":"hq"}"#),
            )
        } else {
            (format!("site-{i}"), None, Some(r#"{"name":"x"}"#))
        };
        db.execute(
            "INSERT INTO audit_log (id, ts, actor, actor_kind, account_id, action, target, before, after)
             VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?6, ?7, ?8)",
            rusqlite::params![
                i + 1,
                DAY_ONE + (i / 60) * 86_400 + i,
                actor,
                kind,
                action,
                target,
                before,
                after
            ],
        )
        .expect("insert");
    }
}

/// The entry ids a page shows, in order.
fn ids(html: &str) -> Vec<i64> {
    html.split("id=\"entry-")
        .skip(1)
        .map(|t| {
            t.split('"')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("id")
        })
        .collect()
}

/// The href of the link with `rel`, unescaped.
fn link(html: &str, rel: &str) -> Option<String> {
    let at = html.find(&format!("rel=\"{rel}\""))?;
    let start = html[..at].rfind("href=\"")? + 6;
    let end = start + html[start..].find('"')?;
    Some(html[start..end].replace("&amp;", "&"))
}

/// The href of the first link whose address starts with `prefix`, unescaped.
fn href(html: &str, prefix: &str) -> String {
    let at = html
        .find(&format!("href=\"{prefix}"))
        .unwrap_or_else(|| panic!("no link {prefix} in {html}"))
        + 6;
    let end = at + html[at..].find('"').expect("end");
    html[at..end].replace("&amp;", "&")
}

/// The number after "of " in the page's position ("Entries 1–50 of 120").
fn total(html: &str) -> usize {
    html.split("Entries ")
        .nth(1)
        .and_then(|t| t.split(" of ").nth(1))
        .and_then(|t| t.split('<').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no position in {html}"))
}

#[test]
fn the_audit_log_pages_by_entry_id_without_overlap() {
    let server = ZServer::start();
    let s = Session::admin(&server);
    generate(&server);

    let first = s.get("/audit");
    assert_eq!(first.status, 200, "{}", first.text());
    let page = first.text();
    let one = ids(&page);
    assert_eq!(one, (71..=120).rev().collect::<Vec<_>>());
    assert!(page.contains("Entries 1–50 of 120"), "{page}");
    assert!(
        link(&page, "prev").is_none(),
        "no Newer link on the first page"
    );
    let older = link(&page, "next").expect("Older link");
    assert_eq!(older, "/audit?before=71");

    let page = s.get(&older).text();
    let two = ids(&page);
    assert_eq!(two, (21..=70).rev().collect::<Vec<_>>());
    assert!(page.contains("Entries 51–100 of 120"), "{page}");
    let last = s.get(&link(&page, "next").expect("Older link")).text();
    let three = ids(&last);
    assert_eq!(three, (1..=20).rev().collect::<Vec<_>>());
    assert!(last.contains("Entries 101–120 of 120"), "{last}");
    assert!(
        link(&last, "next").is_none(),
        "no Older link on the last page"
    );
    let mut all: Vec<i64> = one.iter().chain(&two).chain(&three).copied().collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 120, "no overlap, nothing left out");

    // Newer from the last page is the second page again.
    let back = s.get(&link(&last, "prev").expect("Newer link")).text();
    assert_eq!(ids(&back), two);

    // `per` sets the page size within 10 to 500, named when out of range.
    let page = s.get("/audit?per=10").text();
    assert_eq!(ids(&page).len(), 10);
    assert_eq!(
        link(&page, "next").as_deref(),
        Some("/audit?per=10&before=111")
    );
    let bad = s.get("/audit?per=5");
    assert_eq!(bad.status, 422);
    assert!(
        bad.text().contains("<strong>Per</strong>")
            && bad.text().contains("form class=\"filters\""),
        "{}",
        bad.text()
    );
    // The download's own limit still works, up to 10,000.
    let csv = s.get("/audit.csv?limit=7").text();
    assert_eq!(csv.lines().count(), 8, "{csv}");
    assert_eq!(s.get("/audit.csv?limit=10001").status, 422);
}

#[test]
fn every_filter_narrows_the_page_and_its_downloads_alike() {
    let server = ZServer::start();
    let s = Session::admin(&server);
    generate(&server);
    for (query, want, check) in [
        ("who=carol", 40, "carol"),
        ("who=dave", 80, "dave"),
        ("who=dave%20%28API%20token%29", 40, "dave (API token)"),
        ("what=device.modify", 30, "Device changed"),
        ("target=00%3A04%3AF2%3AAA%3ABB%3ACC", 1, "0004f2aabbcc"),
        ("target=SITE-11", 11, "site-11"),
        ("from=2025-03-02", 60, ""),
        ("from=2025-03-01&to=2025-03-01", 60, ""),
        ("who=carol&what=device.modify", 10, "carol"),
        ("from=2025-04-01", 0, ""),
    ] {
        let r = s.get(&format!("/audit?{query}"));
        assert_eq!(r.status, 200, "{query}: {}", r.text());
        let page = r.text();
        if want == 0 {
            assert!(page.contains("No entries."), "{query}: {page}");
            continue;
        }
        assert_eq!(total(&page), want, "{query}");
        assert_eq!(ids(&page).len(), want.min(50), "{query}");
        // Every row shown matches.
        for row in page.split("<tr id=\"entry-").skip(1) {
            assert!(row.contains(check), "{query}: {row}");
        }
        // The downloads carry the filter: as many entries as the page counts.
        let csv_link = href(&page, "/audit.csv?");
        let csv = s.get(&csv_link);
        assert_eq!(csv.status, 200, "{csv_link}");
        assert_eq!(csv.text().lines().count() - 1, want, "{query}: {csv_link}");
        let json_link = href(&page, "/audit.json?");
        let v = json(&s.get(&json_link));
        assert_eq!(
            v["entries"].as_array().expect("entries").len(),
            want,
            "{json_link}"
        );
        // The form shows what was typed.
        if query.starts_with("who=carol") {
            assert!(page.contains("value=\"carol\""), "{query}: {page}");
        }
    }

    // The fields before and after in words, the changed one marked, secrets still masked.
    let page = s.get("/audit?target=0004f2aabbcc").text();
    assert!(
        page.contains("title=\"sip_auth_password\">SIP authentication password<"),
        "{page}"
    );
    assert!(
        page.contains("<tr class=\"changed\"><th title=\"label\">Label<"),
        "{page}"
    );
    assert!(page.contains("<tr><th title=\"site\">Site<"), "{page}");
    assert!(page.contains("********") && page.contains("title=\"device.modify\""));
    // The action select offers the kinds recorded, in words.
    assert!(
        page.contains("<option value=\"site.add\">Site added</option>"),
        "{page}"
    );

    // A bad filter is named next to the form; nothing else is shown.
    for (query, field) in [
        ("from=2025-02-30", "from"),
        ("from=yesterday", "from"),
        ("to=03%2F02%2F2025", "to"),
        ("from=2025-03-02&to=2025-03-01", "to"),
    ] {
        let r = s.get(&format!("/audit?{query}"));
        assert_eq!(r.status, 422, "{query}");
        let page = r.text();
        assert!(
            page.contains(&format!(
                "<strong>{}</strong>",
                field[..1].to_uppercase() + &field[1..]
            )) && page.contains("form class=\"filters\""),
            "{query}: {page}"
        );
        assert!(ids(&page).is_empty(), "{query}");
    }
    let bad = s.get("/audit.csv?from=2025-02-30");
    assert_eq!(bad.status, 422);
    assert!(bad.text().contains("from"), "{}", bad.text());
    // The API filters the same way.
    let token = user_with_token(&server, "ann", "admin", "");
    let r = api(
        &server,
        "GET",
        "/audit?who=carol&limit=500",
        Some(&token),
        "",
    );
    assert_eq!(json(&r)["entries"].as_array().expect("entries").len(), 40);
    let r = api(&server, "GET", "/audit?from=2025-13-01", Some(&token), "");
    assert_eq!(r.status, 422);
    assert!(r.text().contains("from"), "{}", r.text());
}

/// The text of the page's notice.
fn notice(html: &str) -> String {
    html.split("class=\"notice\"")
        .nth(1)
        .and_then(|t| t.split("</div>").next())
        .unwrap_or_else(|| panic!("no notice in {html}"))
        .to_string()
}

#[test]
fn a_password_reset_and_a_user_delete_happen_only_when_confirmed() {
    let server = ZServer::start();
    let s = Session::admin(&server);
    let token = user_with_token(&server, "kim", "viewer", "");

    // The list links to the confirmations; nothing on it posts a reset or a delete.
    let list = s.get("/users").text();
    assert!(list.contains("href=\"/users/kim/reset\""), "{list}");
    assert!(list.contains("href=\"/users/kim/delete\""), "{list}");
    assert!(!list.contains("action=\"/users/kim/reset\""), "{list}");

    // Reset: the page says what happens; a POST without confirm changes nothing.
    let ask = s.get("/users/kim/reset");
    assert_eq!(ask.status, 200);
    let text = ask.text();
    assert!(
        text.contains("signed out everywhere") && text.contains("API tokens are revoked"),
        "{text}"
    );
    assert!(text.contains("name=\"confirm\" value=\"yes\""), "{text}");
    let r = s.post("/users/kim/reset", &[]);
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(!r.text().contains("One-time password"), "{}", r.text());
    assert_eq!(post_sign_in(&server, "kim", TEST_USER_PASSWORD).status, 303);
    assert_eq!(api(&server, "GET", "/audit", Some(&token), "").status, 200);

    let r = s.post("/users/kim/reset", &[("confirm", "yes")]);
    assert_eq!(r.status, 200, "{}", r.text());
    let said = notice(&r.text());
    assert!(
        said.contains("Password of <strong>kim</strong> reset. One-time password: "),
        "{said}"
    );
    assert!(!said.contains("created"), "{said}");
    assert_ne!(post_sign_in(&server, "kim", TEST_USER_PASSWORD).status, 303);
    assert_eq!(api(&server, "GET", "/audit", Some(&token), "").status, 401);
    assert_eq!(s.get("/users/nobody/reset").status, 404);

    // Delete: the same, and the page says their sessions and tokens end.
    let kim = Session::sign_in(&server, "kim", &one_time(&said));
    let ask = s.get("/users/kim/delete").text();
    assert!(
        ask.contains("sessions end") && ask.contains("API tokens stop working"),
        "{ask}"
    );
    let r = s.post("/users/kim/delete", &[]);
    assert_eq!(r.status, 409);
    assert!(s.get("/users").text().contains("<td>kim</td>"));
    assert_eq!(kim.get("/password").status, 200, "still signed in");
    let r = s.post("/users/kim/delete", &[("confirm", "yes")]);
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(!s.get("/users").text().contains("<td>kim</td>"));
    assert_ne!(kim.get("/password").status, 200, "the session ended");
}

/// The one-time password a notice shows.
fn one_time(notice: &str) -> String {
    notice
        .split("<code class=\"secret\">")
        .nth(1)
        .and_then(|t| t.split('<').next())
        .expect("one-time password")
        .to_string()
}

#[test]
fn revoking_an_api_token_asks_first() {
    let server = ZServer::start();
    let s = Session::admin(&server);
    let r = s.post("/tokens", &[("name", "script")]);
    let token = one_time(&r.text());
    let page = s.get("/tokens").text();
    let id = page
        .split("href=\"/tokens/")
        .nth(1)
        .and_then(|t| t.split('/').next())
        .expect("token id")
        .to_string();
    let ask = s.get(&format!("/tokens/{id}/delete"));
    assert_eq!(ask.status, 200);
    assert!(
        ask.text().contains("stops working at once"),
        "{}",
        ask.text()
    );
    assert!(
        !ask.text().contains(&token),
        "the token is never shown again"
    );
    assert_eq!(s.post(&format!("/tokens/{id}/delete"), &[]).status, 409);
    assert_eq!(
        api(&server, "GET", "/profiles", Some(&token), "").status,
        200
    );
    let r = s.post(&format!("/tokens/{id}/delete"), &[("confirm", "yes")]);
    assert_eq!(r.status, 303);
    assert_eq!(
        api(&server, "GET", "/profiles", Some(&token), "").status,
        401
    );
    assert_eq!(s.get(&format!("/tokens/{id}/delete")).status, 404);
}

#[test]
fn the_who_filter_in_a_browser_shows_only_that_actors_entries() {
    let _one = ONE_BROWSER.lock().unwrap_or_else(|p| p.into_inner());
    let server = ZServer::start();
    runtime().block_on(async {
        let Some(mut b) = Browser::start(&server, "audit-filter").await else {
            return;
        };
        b.first_sign_in(&server).await;
        generate(&server);
        b.click_link("Audit Log").await;
        let text = b.text().await;
        assert!(text.contains("Entries 1–50 of 120"), "{text}");
        assert!(text.contains("carol") && text.contains("dave"), "{text}");
        b.shot("audit-log").await;

        b.fill("who", "carol").await;
        b.click("form.filters button[type=submit]").await;
        assert!(b.path().await.contains("who=carol"), "{}", b.path().await);
        let text = b.text().await;
        assert!(text.contains("Entries 1–40 of 40"), "{text}");
        assert!(text.contains("carol") && !text.contains("dave"), "{text}");
        b.shot("audit-who-carol").await;

        // The CSV download carries the filter.
        let csv = b.fetch("/audit.csv?who=carol&limit=40").await;
        assert_eq!(csv.lines().count(), 41, "{csv}");
        b.close().await;
    });
}
