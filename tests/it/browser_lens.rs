//! The Lens pages in a real headless Chromium (the `browser` module's driver): the account
//! page (server credentials entered twice, the Auto-Sync switch with its lock-out
//! confirmation, re-admission, provisioning off and on with the credentials locked while
//! off, the copy button), then sites, groups and policies reaching a device's effective
//! settings, and the inventory filters. Every step leaves a PNG in `tests/screenshots/`.

use fantoccini::Locator;

use crate::browser::{Browser, ONE_BROWSER, runtime};
use crate::common::*;
use crate::lens::{SEEN, STAGED, setup};

#[test]
fn the_account_page_edits_credentials_and_switches_autosync_with_a_confirmation() {
    let _one = ONE_BROWSER.lock().unwrap_or_else(|p| p.into_inner());
    let server = ZServer::start();
    setup(&server);
    runtime().block_on(async {
        let Some(mut b) = Browser::start(&server, "lens-account").await else {
            return;
        };
        b.first_sign_in(&server).await;
        b.click_link("Accounts").await;
        assert!(b.text().await.contains("/default-"), "{}", b.text().await);
        b.shot("accounts").await;
        b.click_link("Default").await;
        assert_eq!(b.path().await, "/accounts/default");
        let text = b.text().await;
        assert!(
            text.contains("Device Provisioning · Default") && text.contains("phones"),
            "{text}"
        );
        // The copy button is a progressive enhancement: visible once the script ran.
        let copy = b
            .client
            .find(Locator::Css("button[data-copy=service-url]"))
            .await
            .expect("copy button");
        assert!(
            copy.is_displayed().await.expect("displayed"),
            "copy.js shows the button"
        );
        b.shot("account-page").await;

        // Server credentials, entered twice: a mismatch is named, then they are saved.
        b.fill("user", "phones").await;
        b.fill("password", "Second-Passw0rd-2").await;
        b.fill("repeat_password", "Second-Passw0rd-X").await;
        b.click("form.credentials button[type=submit]").await;
        assert!(
            b.text().await.contains("does not match the password"),
            "{}",
            b.text().await
        );
        b.client
            .execute(
                "document.querySelector('form.credentials').scrollIntoView();",
                vec![],
            )
            .await
            .expect("scroll");
        b.shot("credentials-mismatch").await;
        b.fill("password", "Second-Passw0rd-2").await;
        b.fill("repeat_password", "Second-Passw0rd-2").await;
        b.click("form.credentials button[type=submit]").await;
        // A rotation changes every phone: each is listed with what happens to it, and the
        // admin confirms (the password is asked for again, never carried by the page).
        let text = b.text().await;
        assert!(
            text.contains("phones affected") && text.contains("accepted until"),
            "{text}"
        );
        b.shot("credentials-confirm").await;
        b.fill("password", "Second-Passw0rd-2").await;
        b.fill("repeat_password", "Second-Passw0rd-2").await;
        b.toggle("input[name=confirm]").await;
        b.click("form.credentials button[type=submit]").await;
        let text = b.text().await;
        assert!(text.contains("Server credentials updated"), "{text}");
        assert!(
            !text.contains("Second-Passw0rd-2"),
            "the password is not shown again"
        );
        assert!(text.contains("Credential generation"), "{text}");
        b.shot("credentials-saved").await;

        // The Auto-Sync switch off: the phone still on the old credentials would be locked
        // out, so the page says so and asks before anything changes.
        b.client
            .execute(
                "document.querySelector('#autosync').scrollIntoView();",
                vec![],
            )
            .await
            .expect("scroll");
        b.shot("autosync-on").await;
        b.toggle("label.switch").await;
        // Let the slider's short transition end before the picture.
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        b.shot("autosync-switch-off").await;
        b.click("form.switch-form button[type=submit]").await;
        let text = b.text().await;
        assert!(
            text.contains("Turn Auto-Sync off?") && text.contains("affected"),
            "{text}"
        );
        assert!(text.contains(SEEN), "{text}");
        b.shot("autosync-confirm").await;
        assert!(
            server
                .cli_ok(&["account", "show"])
                .contains("auto-sync:        enabled")
        );
        b.click("button.danger").await;
        assert!(
            b.text().await.contains("Auto-Sync is off"),
            "{}",
            b.text().await
        );
        let checked = b
            .client
            .execute(
                "return document.querySelector('label.switch input').checked;",
                vec![],
            )
            .await
            .expect("checked");
        assert_eq!(checked.as_bool(), Some(false));
        b.client
            .execute(
                "document.querySelector('#autosync').scrollIntoView();",
                vec![],
            )
            .await
            .expect("scroll");
        b.shot("autosync-off").await;

        // Progress: the phone is locked out; re-admit it.
        b.click_link("Auto-Sync progress").await;
        let text = b.text().await;
        assert!(text.contains("Locked out") && text.contains(SEEN), "{text}");
        b.shot("progress-locked-out").await;
        b.click("form[action$='/readmit'] button.link").await;
        let text = b.text().await;
        assert!(text.contains("Re-admitted"), "{text}");
        b.shot("progress-readmitted").await;

        // Provisioning off (two devices refused, confirmed), the credentials locked, on again.
        b.click_link("Device Provisioning").await;
        b.click("form[action$='/provisioning'] button").await;
        assert!(
            b.text().await.contains("2 phones affected"),
            "{}",
            b.text().await
        );
        b.shot("disable-confirm").await;
        b.click("button.danger").await;
        let text = b.text().await;
        assert!(text.contains("Provisioning disabled"), "{text}");
        assert!(
            text.contains("Enable provisioning to edit the server credentials"),
            "{text}"
        );
        let disabled = b
            .client
            .execute(
                "return document.querySelector('form.credentials fieldset').disabled;",
                vec![],
            )
            .await
            .expect("fieldset");
        assert_eq!(disabled.as_bool(), Some(true));
        b.client
            .execute(
                "document.querySelector('#provisioning').scrollIntoView();",
                vec![],
            )
            .await
            .expect("scroll");
        b.shot("provisioning-disabled").await;
        b.click("form[action$='/provisioning'] button").await;
        assert!(b.text().await.contains("Provisioning enabled"));
        b.shot("provisioning-enabled").await;
        b.close().await;
    });
}

#[test]
fn policies_reach_the_effective_settings_page_and_the_inventory_filters_in_a_browser() {
    let _one = ONE_BROWSER.lock().unwrap_or_else(|p| p.into_inner());
    let server = ZServer::start();
    setup(&server);
    server.cli_ok(&["site", "add", "hq", "--description", "Head office"]);
    server.cli_ok(&["site", "assign", "hq", STAGED]);
    runtime().block_on(async {
        let Some(mut b) = Browser::start(&server, "lens-settings").await else {
            return;
        };
        b.first_sign_in(&server).await;

        // A group with a member and a value, an account-wide value, a secret on the device.
        b.goto("/accounts/default/policies").await;
        b.client
            .find(Locator::Css("form[action$='/groups'] input[name=name]"))
            .await
            .expect("group name")
            .send_keys("lobby")
            .await
            .expect("type");
        b.client
            .find(Locator::Css("form[action$='/groups'] input[name=priority]"))
            .await
            .expect("priority")
            .clear()
            .await
            .expect("clear");
        b.client
            .find(Locator::Css("form[action$='/groups'] input[name=priority]"))
            .await
            .expect("priority")
            .send_keys("10")
            .await
            .expect("type");
        b.click("form[action$='/groups'] button").await;
        assert!(b.text().await.contains("Group added"), "{}", b.text().await);
        // The exact-name form (the typed editor has its own test).
        b.toggle("details.raw summary").await;
        b.fill("parameter", "lcl.ml.lang").await;
        b.fill("value", "English_US").await;
        b.click("form.policy button").await;
        assert!(b.text().await.contains("Policy value set"));
        b.shot("policies-overview").await;
        b.click_link("lobby").await;
        b.fill("macs", SEEN).await;
        b.click("form[action$='/members'] button.secondary").await;
        // The exact-name form (the typed editor has its own test).
        b.toggle("details.raw summary").await;
        b.fill("parameter", "lcl.ml.lang").await;
        b.fill("value", "German_Germany").await;
        b.click("form.policy button").await;
        let text = b.text().await;
        assert!(
            text.contains(SEEN) && text.contains("German_Germany"),
            "{text}"
        );
        b.shot("group-page").await;

        // From the device page to its effective settings.
        b.goto(&format!("/devices/{SEEN}")).await;
        b.click_link("Effective settings").await;
        assert_eq!(b.path().await, format!("/devices/{SEEN}/settings"));
        // The exact-name form (the typed editor has its own test).
        b.toggle("details.raw summary").await;
        b.fill("parameter", "reg.1.auth.password").await;
        b.fill("value", "Sip-Secret-42").await;
        b.click("form.policy button").await;
        let text = b.text().await;
        assert!(!text.contains("Sip-Secret-42"), "secrets are masked");
        let lang = text
            .lines()
            .find(|l| l.starts_with("lcl.ml.lang"))
            .unwrap_or_else(|| panic!("no lcl.ml.lang row: {text}"))
            .to_string();
        assert!(
            lang.contains("German_Germany") && lang.contains("group lobby (priority 10)"),
            "{lang}"
        );
        let secret = text
            .lines()
            .find(|l| l.starts_with("reg.1.auth.password"))
            .expect("secret row")
            .to_string();
        assert!(
            secret.contains("********") && secret.contains("device"),
            "{secret}"
        );
        b.shot("effective-settings").await;
        b.client
            .execute(
                "[...document.querySelectorAll('table.settings td code')].find(c => c.textContent === 'lcl.ml.lang').scrollIntoView();",
                vec![],
            )
            .await
            .expect("scroll");
        b.shot("effective-settings-policies").await;
        b.goto(&format!("/devices/{STAGED}/settings")).await;
        let text = b.text().await;
        let lang = text
            .lines()
            .find(|l| l.starts_with("lcl.ml.lang"))
            .expect("row")
            .to_string();
        assert!(
            lang.contains("English_US") && lang.contains("account policy"),
            "{lang}"
        );
        b.shot("effective-settings-other-device").await;

        // The inventory: counts, charts, and each filter.
        b.click_link("Inventory").await;
        assert_eq!(b.path().await, "/accounts/default/inventory");
        let text = b.text().await;
        assert!(text.contains("Showing 1–2 of 2 matching · 2 devices"), "{text}");
        let charts = b
            .client
            .find_all(Locator::Css(".charts svg"))
            .await
            .expect("charts");
        assert_eq!(charts.len(), 2);
        b.shot("inventory").await;
        b.choose("state", "staged").await;
        b.click("form.filters button[type=submit]").await;
        let text = b.text().await;
        assert!(
            text.contains("Showing 1 of 1 matching · 2 devices") && text.contains(STAGED) && !text.contains(SEEN),
            "{text}"
        );
        b.shot("inventory-staged").await;
        b.choose("state", "").await;
        b.choose("group", "lobby").await;
        b.click("form.filters button[type=submit]").await;
        let text = b.text().await;
        assert!(text.contains(SEEN) && !text.contains(STAGED), "{text}");
        b.shot("inventory-group").await;
        b.choose("group", "").await;
        b.choose("site", "hq").await;
        b.click("form.filters button[type=submit]").await;
        let text = b.text().await;
        assert!(text.contains(STAGED) && !text.contains(SEEN), "{text}");
        b.click_link("Clear").await;
        b.click("a.card.state-provisioned-active").await;
        let text = b.text().await;
        assert!(
            text.contains("Showing 1 of 1 matching · 2 devices") && text.contains(SEEN),
            "{text}"
        );
        b.shot("inventory-active").await;

        // Export/import and the audit log of what this test changed (secrets masked).
        b.click_link("Export / import").await;
        assert!(b.text().await.contains("Include secrets"));
        b.shot("export-import").await;
        b.click_link("Audit Log").await;
        let text = b.text().await;
        assert!(
            text.contains("Policy set") && text.contains("Device added to a group"),
            "{text}"
        );
        assert!(!text.contains("Sip-Secret-42") && text.contains("********"), "{text}");
        b.shot("audit-log").await;
        b.close().await;
    });
}
