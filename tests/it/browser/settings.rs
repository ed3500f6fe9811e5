//! Issue 6's pages in headless Chromium: the provisioning settings switched to External
//! mode with a script transport (a bad value refused at its field first), generate and
//! push now, the template variables, a device's template values, and the preview with
//! secrets masked and then shown to the admin. Screenshots in `tests/screenshots/`.

use std::time::{Duration, Instant};

use fantoccini::Locator;

use super::{Browser, ONE_BROWSER, runtime};
use crate::common::*;
use crate::settings_pages::script;

const MAC: &str = "0004f2aabbcc";
const TEMPLATE: &str = "<polycomConfig voIpProt.server.1.address=\"${REG_SERVER}\" \
    tcpIpApp.sntp.address=\"${NTP_SERVER}\" feature.x.password=\"${PROV_PASSWORD}\" \
    up.welcome=\"${LABEL}\">\n<!-- zerotouch:lines -->\n<reg reg.${LINE}.address=\"${USERID}\" \
    reg.${LINE}.displayName=\"${DISPLAY_NAME}\" reg.${LINE}.auth.password=\"${PASSWORD}\"/>\n\
    <!-- zerotouch:end-lines -->\n</polycomConfig>\n";

impl Browser {
    /// Whether the input named `name` sits in a field marked invalid with an error text.
    async fn field_error(&self, name: &str) -> Option<String> {
        let css = format!(".field.invalid [name=\"{name}\"] ~ .error");
        let e = self.client.find(Locator::Css(&css)).await.ok()?;
        e.text().await.ok()
    }

    async fn tick(&self, name: &str) {
        self.toggle(&format!("input[type=checkbox][name=\"{name}\"]"))
            .await;
    }
}

#[test]
fn settings_external_mode_push_variables_and_preview_in_a_browser() {
    let _one = ONE_BROWSER.lock().unwrap_or_else(|p| p.into_inner());
    let server =
        ZServer::start_with("external.scan_interval_ms = 100\nexternal.debounce_ms = 200\n");
    let file = write_file(server.dir.path(), "site.cfg", TEMPLATE.as_bytes());
    server.cli_ok(&[
        "profile",
        "add",
        "office",
        "--file",
        file.to_str().expect("utf-8"),
    ]);
    server.cli_ok(&[
        "device",
        "add",
        MAC,
        "--profile",
        "office",
        "--sip-user",
        "1001",
        "--sip-password",
        "Line-One-Secret",
        "--display-name",
        "Front Desk",
    ]);
    server.set_credentials();
    let runs = server.dir.path().join("runs");
    std::fs::create_dir_all(&runs).expect("mkdir");
    let push = script(
        server.dir.path(),
        "push.sh",
        &format!(
            "echo \"$PROV_MAC $*\" > {}/run-$(date +%s%N)",
            runs.display()
        ),
    );
    runtime().block_on(async {
        let Some(mut b) = Browser::start(&server, "settings").await else {
            return;
        };
        b.first_sign_in(&server).await;

        // The settings page in Local mode.
        b.click_link("Settings").await;
        assert_eq!(b.path().await, "/settings");
        let text = b.text().await;
        assert!(
            text.contains("device requests, the access log and Auto-Sync do not apply"),
            "{text}"
        );
        b.shot("settings-local").await;

        // Switch to External mode with a script transport; a bad value is refused at its field.
        b.choose("mode", "external").await;
        b.fill("server_address", "pbx.example.com").await;
        b.fill("external_server", "dms.example.com").await;
        b.fill("external_user", "dms").await;
        b.fill("external_password", "Dms-Browser-Secret").await;
        b.fill("registrar", "sip.example.com").await;
        b.fill("ntp_server", "not a host").await;
        b.choose("transport", "script").await;
        b.fill("script_path", push.to_str().expect("utf-8")).await;
        b.click("main form.settings button[type=submit]").await;
        let page = b.text().await;
        let error = b
            .field_error("ntp_server")
            .await
            .unwrap_or_else(|| panic!("no error at ntp_server: {page}"));
        assert!(error.contains("not a host name"), "{error}");
        assert!(
            b.text().await.contains("NTP server: "),
            "the list names the field in words"
        );
        assert!(
            !b.client
                .source()
                .await
                .expect("source")
                .contains("Dms-Browser-Secret")
        );
        assert!(
            b.text().await.contains("type them again"),
            "typed secrets are asked for again"
        );
        assert!(
            !b.text()
                .await
                .contains("External mode. Configuration files"),
            "the mode in force is still Local"
        );
        b.shot("settings-bad-value-top").await;
        b.client
            .execute(
                "document.getElementById('ntp_server').scrollIntoView({block: 'center'});",
                vec![],
            )
            .await
            .expect("scroll");
        b.shot("settings-bad-value").await;
        assert!(
            server.cli_ok(&["settings", "show"]).contains("Local mode"),
            "nothing saved"
        );

        // Corrected (the password is typed again: secrets are never sent back).
        b.fill("ntp_server", "ntp.example.com").await;
        b.fill("external_password", "Dms-Browser-Secret").await;
        b.click("main form.settings button[type=submit]").await;
        let text = b.text().await;
        assert!(text.contains("Provisioning settings saved."), "{text}");
        assert!(
            text.contains("External mode.") && text.contains("Auto-Sync do not apply to them"),
            "{text}"
        );
        assert!(
            !b.client
                .source()
                .await
                .expect("source")
                .contains("Dms-Browser-Secret")
        );
        b.shot("settings-external").await;

        // Generate and push now: every device goes through the script.
        b.click("form[action=\"/settings/push\"] button").await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !b.text().await.contains("1 pushed, 0 failed") {
            assert!(
                Instant::now() < deadline,
                "push did not finish: {}",
                b.text().await
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
            b.goto("/settings").await;
        }
        b.client
            .execute(
                "document.querySelector('form[action=\"/settings/push\"]').scrollIntoView();",
                vec![],
            )
            .await
            .expect("scroll");
        b.shot("settings-pushed").await;
        assert!(std::fs::read_dir(&runs).expect("runs").count() >= 1);

        // Template variables: built-ins with sources, and a custom variable added.
        b.click_link("Template variables").await;
        b.fill("name", "SYSLOG_SERVER").await;
        b.fill("value", "10.0.0.9").await;
        b.click("form[method=post][action=\"/variables\"] button[type=submit]")
            .await;
        let text = b.text().await;
        assert!(
            text.contains("Custom variable saved.") && text.contains("${SYSLOG_SERVER}"),
            "{text}"
        );
        assert!(
            text.contains("settings.registrar") && text.contains("settings.external_server"),
            "{text}"
        );
        b.shot("variables").await;

        // The device's template values.
        b.goto(&format!("/devices/{MAC}")).await;
        b.click_link("Template values").await;
        b.fill("label", "Lobby phone").await;
        b.fill("default_parkext", "70 0").await;
        b.click("form[action$=\"/values\"] button[type=submit]")
            .await;
        assert!(
            b.field_error("default_parkext").await.is_some(),
            "{}",
            b.text().await
        );
        b.fill("default_parkext", "700").await;
        b.click("form[action$=\"/values\"] button[type=submit]")
            .await;
        let text = b.text().await;
        assert!(text.contains("Template values saved."), "{text}");
        b.fill("new.first_name", "Back").await;
        b.fill("new.last_name", "Office").await;
        b.fill("new.sip_user", "1002").await;
        b.fill("new.sip_password", "Line-Two-Secret").await;
        b.click("form[action$=\"/lines\"] button[type=submit]")
            .await;
        assert!(b.text().await.contains("Line saved."), "{}", b.text().await);
        b.client
            .execute(
                "document.querySelector('fieldset.line').scrollIntoView();",
                vec![],
            )
            .await
            .expect("scroll");
        b.shot("device-values").await;

        // The preview: secrets masked, then shown to the admin (and audited).
        b.click_link("Preview its files").await;
        let text = b.text().await;
        assert!(
            text.contains("external mode") && text.contains("Lobby phone"),
            "{text}"
        );
        assert!(text.contains("reg.2.displayName=\"Back Office\""), "{text}");
        assert!(
            !text.contains("Line-Two-Secret") && !text.contains("Dms-Browser-Secret"),
            "{text}"
        );
        assert!(
            text.contains("settings.registrar") && text.contains("device line 2 SIP password"),
            "{text}"
        );
        b.shot("preview-masked").await;
        b.tick("secrets").await;
        b.click("form[method=post][action=\"/preview\"] button[type=submit]")
            .await;
        let text = b.text().await;
        assert!(
            text.contains("Secrets are shown")
                && text.contains("Line-Two-Secret")
                && text.contains("Dms-Browser-Secret"),
            "{text}"
        );
        b.shot("preview-secrets").await;
        let audit = server.cli_ok(&["audit"]);
        assert!(
            audit.contains("device.preview-secrets") && !audit.contains("Line-Two-Secret"),
            "{audit}"
        );
        b.close().await;
    });
}
