//! The typed policy editor in a real headless Chromium (the `browser` module's driver):
//! a parameter found by words of its description, an enumeration set through its select
//! and shown with its effective value and source (account and device scope), an
//! out-of-range number refused by the server with the field named (the browser's own
//! range check taken away), a secret never echoed, and the page at a phone's and a
//! desktop's size. Every step leaves a PNG in `tests/screenshots/`.

use fantoccini::Locator;

use crate::browser::{Browser, ONE_BROWSER, runtime};
use crate::common::*;
use crate::lens::{SEEN, setup};

/// The values of the options of `select[name=value]`.
async fn options(b: &Browser) -> Vec<String> {
    let v = b
        .client
        .execute(
            "return Array.from(document.querySelectorAll('form.typed select[name=value] option')).map(o => o.value);",
            vec![],
        )
        .await
        .expect("options");
    serde_json::from_value(v).expect("strings")
}

/// Types into the typed editor's value field (the exact-name form has one too).
async fn fill_value(b: &Browser, value: &str) {
    let e = b
        .client
        .find(Locator::Css("form.typed [name=value]"))
        .await
        .expect("value field");
    e.clear().await.expect("clear");
    e.send_keys(value).await.expect("type");
}

#[test]
fn typed_policies_are_found_by_description_entered_by_type_and_checked_by_the_server() {
    let _one = ONE_BROWSER.lock().unwrap_or_else(|p| p.into_inner());
    let server = ZServer::start();
    setup(&server);
    runtime().block_on(async {
        let Some(mut b) = Browser::start(&server, "typed-policies").await else {
            return;
        };
        b.first_sign_in(&server).await;
        b.goto("/accounts/default/policies").await;

        // Found by words of its description, not its name.
        b.fill("q", "polling schedule").await;
        b.click("form.search button[type=submit]").await;
        let text = b.text().await;
        assert!(text.contains("prov.polling.mode"), "{text}");
        b.shot("search").await;
        b.click_link("prov.polling.mode").await;
        let text = b.text().await;
        assert!(
            text.contains("enumeration") && text.contains("one of abs, rel, random"),
            "{text}"
        );
        assert!(text.contains("Default") && text.contains("UCS"), "{text}");
        assert_eq!(options(&b).await, ["abs", "rel", "random"]);
        b.choose("value", "abs").await;
        b.click("form.typed button[type=submit]").await;
        let text = b.text().await;
        assert!(text.contains("Policy value set."), "{text}");
        assert!(
            text.contains("abs from account policy"),
            "the effective value and its source: {text}"
        );
        b.shot("enum-saved").await;

        // The device scope: its own value wins, and says so.
        b.goto(&format!(
            "/devices/{SEEN}/settings?param=prov.polling.mode#set-parameter"
        ))
        .await;
        assert!(b.text().await.contains("abs from account policy"));
        b.choose("value", "random").await;
        b.click("form.typed button[type=submit]").await;
        let text = b.text().await;
        assert!(text.contains("random from device"), "{text}");
        b.shot("device-scope").await;

        // An out-of-range number: the input carries the range, and the server refuses it
        // even when the browser's check is taken away.
        b.goto("/accounts/default/policies?q=seconds+between+polls").await;
        b.click_link("prov.polling.period").await;
        let input = b
            .client
            .find(Locator::Css("form.typed input[name=value]"))
            .await
            .expect("number input");
        assert_eq!(input.attr("type").await.expect("type").as_deref(), Some("number"));
        assert_eq!(input.attr("min").await.expect("min").as_deref(), Some("60"));
        b.client
            .execute(
                "const i = document.querySelector('form.typed input[name=value]'); i.removeAttribute('min'); i.removeAttribute('max');",
                vec![],
            )
            .await
            .expect("remove the range");
        fill_value(&b, "5").await;
        b.click("form.typed button[type=submit]").await;
        let text = b.text().await;
        assert!(
            text.contains("Value: prov.polling.period: 5 is not allowed")
                && text.contains("from 60 to"),
            "the field and the range named: {text}"
        );
        assert!(!text.contains("Policy value set."), "{text}");
        let policies = server.cli_ok(&["policy", "list"]);
        assert!(!policies.contains("prov.polling.period"), "{policies}");
        b.shot("out-of-range").await;

        // A secret: a password field, never the stored value.
        b.goto("/accounts/default/policies?param=apps.push.password").await;
        let field = b
            .client
            .find(Locator::Css("form.typed input[name=value]"))
            .await
            .expect("password input");
        assert_eq!(field.attr("type").await.expect("type").as_deref(), Some("password"));
        fill_value(&b, "Push-S3cret-Value").await;
        b.click("form.typed button[type=submit]").await;
        assert!(b.text().await.contains("Policy value set."));
        let html = b.client.source().await.expect("source");
        assert!(!html.contains("Push-S3cret-Value"), "the secret is echoed");
        b.goto("/accounts/default/policies?param=apps.push.password").await;
        let html = b.client.source().await.expect("source");
        assert!(!html.contains("Push-S3cret-Value"), "the secret is echoed");
        b.shot("secret").await;

        // The page at a phone's size and at a desktop's.
        b.goto("/accounts/default/policies?q=backlight&param=up.backlight.idleIntensity#set-parameter")
            .await;
        b.client.set_window_size(390, 844).await.expect("phone size");
        b.goto("/accounts/default/policies?q=backlight&param=up.backlight.idleIntensity#set-parameter")
            .await;
        b.shot("phone").await;
        b.client
            .execute("document.querySelector('form.typed').scrollIntoView();", vec![])
            .await
            .expect("scroll");
        b.shot("phone-control").await;
        b.client.set_window_size(1366, 900).await.expect("desktop size");
        b.goto("/accounts/default/policies?q=backlight&param=up.backlight.idleIntensity#set-parameter")
            .await;
        b.shot("desktop").await;

        // Auto-Sync in an account with a Poly OS device says how it must authenticate.
        server.cli_ok(&[
            "device",
            "add",
            "0004f2aa0009",
            "--profile",
            "office",
            "--vendor-model",
            "Poly_Studio_X50",
        ]);
        b.goto("/accounts/default/autosync").await;
        let text = b.text().await;
        assert!(
            text.contains("Poly OS devices must use Basic authentication"),
            "{text}"
        );
        b.shot("autosync-poly-os").await;
        b.goto("/accounts/default#autosync").await;
        b.shot("account-poly-os").await;
        b.close().await;
    });
}
