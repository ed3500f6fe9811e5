//! The console's layout in a real headless Chromium (the `browser` module's driver), for an
//! account of some 300 phones: at a phone's width (390 × 844) no page scrolls sideways (the
//! wide tables scroll inside their own box), the menu folds behind "Menu" and opens without
//! a script, the grouped navigation marks the active section and its group, and times are
//! `<time>` elements with an RFC 3339 `datetime`, the relative wording and the exact stamp
//! as the title (in the browser's time zone once `times.js` ran). Every step leaves a PNG
//! in `tests/screenshots/`.

use std::time::Duration;

use fantoccini::Locator;

use crate::browser::{Browser, ONE_BROWSER, runtime};
use crate::common::*;
use crate::lens::{FIRST, SEEN, setup};

const DEVICES: usize = 300;

fn mac(i: usize) -> String {
    format!("0004f2bb{i:04x}")
}

/// `setup`'s two devices plus `DEVICES` more in one transfer import; a few of them fetch
/// their files, so the inventory has seen and never-seen phones.
fn populate(server: &ZServer) {
    setup(server);
    let devices: Vec<serde_json::Value> = (0..DEVICES)
        .map(|i| serde_json::json!({"mac": mac(i), "profile": "office"}))
        .collect();
    let file = server.dir.path().join("devices.json");
    let doc = serde_json::json!({"format": "zerotouch-export", "version": 1, "devices": devices});
    std::fs::write(&file, doc.to_string()).expect("write");
    server.cli_ok(&["transfer", "import", file.to_str().expect("path")]);
    for i in 0..5 {
        let m = mac(i);
        let mut phone = Phone::new(server.device, &m, UA_VVX500_APP, "phones", FIRST);
        assert_eq!(phone.get(&format!("/{m}.cfg")).status, 200, "{m}");
    }
    let seen = eventually(Duration::from_secs(5), || {
        server
            .cli_ok(&["inventory", "--state", "provisioned-active"])
            .contains(&mac(4))
    });
    assert!(seen, "the recorder wrote the phones' activity");
}

/// `(scrollWidth, innerWidth)` of the page as shown.
async fn widths(b: &Browser) -> (u64, u64) {
    let v = b
        .client
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth];",
            vec![],
        )
        .await
        .expect("widths");
    let n = |i: usize| v[i].as_u64().expect("a width");
    (n(0), n(1))
}

#[test]
fn at_a_phones_width_no_page_scrolls_sideways_and_the_menu_and_times_work() {
    let _one = ONE_BROWSER.lock().unwrap_or_else(|p| p.into_inner());
    let server = ZServer::start();
    populate(&server);
    runtime().block_on(async {
        let Some(mut b) = Browser::start(&server, "layout").await else {
            return;
        };
        b.first_sign_in(&server).await;

        // The desktop: the sections grouped by task, the active one and its group marked.
        b.goto("/accounts/default/inventory").await;
        let text = b.text().await;
        assert!(text.contains(SEEN) && text.contains("0004f2bb"), "{text}");
        b.shot("desktop-inventory").await;
        let active = b
            .client
            .find(Locator::Css("nav.sections .group.active"))
            .await
            .expect("an active group");
        let group = active.text().await.expect("text");
        assert!(group.starts_with("DEVICES") || group.starts_with("Devices"), "{group}");
        let link = b
            .client
            .find(Locator::Css("nav.sections .group.active a.active"))
            .await
            .expect("an active link");
        assert_eq!(link.text().await.expect("text"), "Inventory");
        assert_eq!(
            b.client
                .find_all(Locator::Css("nav.sections a.active"))
                .await
                .expect("active links")
                .len(),
            1
        );

        // A time: RFC 3339 for machines, relative words for people, the exact stamp on hover.
        b.goto(&format!("/devices/{SEEN}")).await;
        let time = b
            .client
            .execute(
                "const t = document.querySelector('main time');
                 return t && [t.getAttribute('datetime'), t.title, t.textContent, t.hasAttribute('data-local')];",
                vec![],
            )
            .await
            .expect("time");
        let at = time[0].as_str().expect("a datetime");
        assert!(
            at.len() == 20 && at.as_bytes()[10] == b'T' && at.ends_with('Z'),
            "{time}"
        );
        let title = time[1].as_str().expect("a title");
        assert!(title.contains(" UTC)"), "the local time, then the UTC stamp: {time}");
        let words = time[2].as_str().expect("words");
        assert!(
            words == "just now" || words.ends_with(" min ago"),
            "{time}"
        );
        assert_eq!(time[3].as_bool(), Some(true), "times.js ran: {time}");

        // A phone's width: nothing wider than the window, on the pages an admin lives in.
        b.client.set_window_size(390, 844).await.expect("phone size");
        let device = format!("/devices/{SEEN}");
        for (path, name) in [
            ("/", "home"),
            ("/find", "find"),
            ("/accounts/default/inventory", "inventory"),
            (device.as_str(), "device"),
            ("/audit", "audit"),
            ("/profiles", "profiles"),
        ] {
            b.goto(path).await;
            let _ = b.text().await;
            let (scroll, inner) = widths(&b).await;
            assert!(inner <= 400, "the window is a phone's: {inner}");
            assert!(scroll <= inner, "{path} scrolls sideways: {scroll} > {inner}");
            b.shot(&format!("phone-{name}")).await;
        }

        // The wide inventory table scrolls inside its own box, not the page.
        b.goto("/accounts/default/inventory").await;
        let boxed = b
            .client
            .execute(
                "const t = document.querySelector('table.list');
                 return [t.scrollWidth, t.clientWidth];",
                vec![],
            )
            .await
            .expect("table");
        assert!(
            boxed[0].as_u64() > boxed[1].as_u64(),
            "the table is wider than its box and scrolls in it: {boxed}"
        );
        b.client
            .execute(
                "const t = document.querySelector('table.list'); t.scrollIntoView(); t.scrollLeft = 240;",
                vec![],
            )
            .await
            .expect("scroll");
        b.shot("phone-inventory-table").await;
        b.client
            .execute("window.scrollTo(0, 0);", vec![])
            .await
            .expect("scroll");

        // The menu is folded; "Menu" opens it (no script: the `#menu` target), it names the
        // active section, and a link in it still works.
        let menu = b
            .client
            .find(Locator::Css("nav.sections"))
            .await
            .expect("nav");
        assert!(!menu.is_displayed().await.expect("displayed"), "folded");
        let toggle = b.client.find(Locator::Css("a.menu")).await.expect("Menu");
        assert_eq!(toggle.text().await.expect("text"), "Menu · Inventory");
        toggle.click().await.expect("open the menu");
        assert!(menu.is_displayed().await.expect("displayed"), "open");
        let (scroll, inner) = widths(&b).await;
        assert!(scroll <= inner, "the open menu scrolls sideways: {scroll} > {inner}");
        b.shot("phone-menu-open").await;
        b.click_link("Audit Log").await;
        assert_eq!(b.path().await, "/audit");
        b.shot("phone-audit-from-menu").await;
        b.close().await;
    });
}
