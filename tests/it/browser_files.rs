//! The firmware catalogue, profiles' per-family versions, the directory editor and phone
//! overrides in a real headless Chromium (see `browser.rs` for the harness): release zips
//! uploaded through the form, a combined one refused until its family is named, versions
//! chosen per family in the Profile Editor, a version in use that cannot be deleted, the
//! rollout, the directory edited as a table with its errors, a CSV import, and a phone's
//! override shown and cleared. Screenshots land in `tests/screenshots/`.

use std::time::{Duration, Instant};

use fantoccini::Locator;

use crate::browser::{Browser, ONE_BROWSER, runtime};
use crate::common::*;

const VVX: &str = "0004f2000410";

#[test]
fn firmware_catalogue_and_profile_versions_in_a_browser() {
    let _one = ONE_BROWSER.lock().unwrap_or_else(|p| p.into_inner());
    let server = ZServer::start();
    server.set_credentials();
    let dir = tempfile::tempdir().expect("dir");
    let split = release_zip(
        dir.path(),
        "5.9.8.1234",
        &[
            "3111-46162-001.sip.ld",
            "3111-44500-001.sip.ld",
            "3111-99999-001.sip.ld",
        ],
    );
    let combined = release_zip(dir.path(), "7.2.2.1094", &["sip.ld"]);
    runtime().block_on(async {
        let Some(mut b) = Browser::start(&server, "firmware").await else {
            return;
        };
        b.first_sign_in(&server).await;
        b.click_link("Firmware").await;
        assert!(b.text().await.contains("No release imported yet"));
        b.shot("empty-catalogue").await;

        // A split release: its version and models come from the zip.
        let upload = |path: std::path::PathBuf| async move { path.to_string_lossy().into_owned() };
        b.client
            .find(Locator::Css("input[name=file]"))
            .await
            .expect("file input")
            .send_keys(&upload(split.clone()).await)
            .await
            .expect("file");
        b.click("main button[type=submit]").await;
        assert_eq!(
            b.path().await,
            "/firmware/5.9.8.1234?done=firmware-imported"
        );
        let text = b.text().await;
        assert!(
            text.contains("Release imported")
                && text.contains("VVX500, VVX410")
                && text.contains("3111-99999-001"),
            "{text}"
        );
        b.shot("split-release").await;

        // A combined release says nothing about its phones: refused until a family is named.
        b.goto("/firmware").await;
        b.client
            .find(Locator::Css("input[name=file]"))
            .await
            .expect("file input")
            .send_keys(&combined.to_string_lossy())
            .await
            .expect("file");
        b.click("main button[type=submit]").await;
        assert!(
            b.text().await.contains("name the model family"),
            "{}",
            b.text().await
        );
        b.shot("combined-needs-family").await;
        b.client
            .find(Locator::Css("input[name=file]"))
            .await
            .expect("file input")
            .send_keys(&combined.to_string_lossy())
            .await
            .expect("file");
        b.toggle("input[name=family][value=Trio]").await;
        b.click("main button[type=submit]").await;
        assert_eq!(
            b.path().await,
            "/firmware/7.2.2.1094?done=firmware-imported"
        );
        b.click_link("Back to the catalogue").await;
        let text = b.text().await;
        let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(words.contains("VVX 5.9.8.1234"), "{text}");
        assert!(
            text.contains("Trio") && text.contains("7.2.2.1094") && text.contains("combined"),
            "{text}"
        );
        b.shot("catalogue").await;

        // The Profile Editor offers each family its releases.
        b.goto("/profiles/new").await;
        b.fill("name", "office").await;
        let options = b
            .client
            .find_all(Locator::Css("select[name='software.Trio'] option"))
            .await
            .expect("options");
        assert_eq!(options.len(), 2, "no version and 7.2.2.1094");
        b.choose("software.VVX", "5.9.8.1234").await;
        b.choose("software.Trio", "7.2.2.1094").await;
        b.client
            .execute(
                "document.querySelector('select[name=\"software.VVX\"]').scrollIntoView();",
                vec![],
            )
            .await
            .expect("scroll");
        b.shot("profile-versions").await;
        b.click("main button[type=submit]").await;
        assert!(
            b.text().await.contains("Profile created"),
            "{}",
            b.text().await
        );
        let shown = server.cli_ok(&["profile", "show", "office"]);
        assert!(
            shown.contains("software VVX 5.9.8.1234") && shown.contains("software Trio 7.2.2.1094"),
            "{shown}"
        );

        // In use: the delete page names the profile.
        b.goto("/firmware/5.9.8.1234/delete").await;
        let text = b.text().await;
        assert!(text.contains("used by profile office (VVX)"), "{text}");
        b.shot("delete-refused").await;

        // The rollout after a VVX 410 on 5.9.5 asked for its master.
        server.cli_ok(&["device", "add", VVX, "--profile", "office"]);
        let mut phone = server.phone(VVX, UA_VVX410_APP);
        assert_eq!(phone.get(&format!("/{VVX}.cfg")).status, 200);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            b.goto("/firmware/rollout").await;
            if b.text().await.contains("5.9.5.0614") {
                break;
            }
            assert!(Instant::now() < deadline, "no rollout: {}", b.text().await);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let text = b.text().await;
        assert!(
            text.contains("VVX410") && text.contains("5.9.8.1234"),
            "{text}"
        );
        b.shot("rollout").await;
        b.goto(&format!("/devices/{VVX}")).await;
        assert!(
            b.text()
                .await
                .contains("behind (updates at its next reboot or poll)"),
            "{}",
            b.text().await
        );
        b.close().await;
    });
}

#[test]
fn directory_editor_and_overrides_in_a_browser() {
    let _one = ONE_BROWSER.lock().unwrap_or_else(|p| p.into_inner());
    let server = ZServer::start();
    server.set_credentials();
    // The client here holds only the account credential (enrolment is not the subject).
    server.serve_secrets_to_account();
    server.cli_ok(&["profile", "add", "office"]);
    server.cli_ok(&[
        "device",
        "add",
        VVX,
        "--profile",
        "office",
        "--sip-server",
        "sip.example.com",
        "--sip-user",
        "410",
    ]);
    let dir = tempfile::tempdir().expect("dir");
    let csv = write_file(
        dir.path(),
        "more.csv",
        b"first_name,last_name,contact,speed_dial,label\nAnna,Berg,sip:anna@example.com,5,Anna\nIT,Helpdesk,2000,,IT\n",
    );
    runtime().block_on(async {
        let Some(mut b) = Browser::start(&server, "directory").await else {
            return;
        };
        b.first_sign_in(&server).await;
        b.click_link("Phone Files").await;
        b.shot("phone-files").await;
        b.click_link("Edit the directory").await;

        // Two contacts, one with a bad speed dial and no number: refused, nothing stored.
        b.fill("c[0].first_name", "Karl").await;
        b.fill("c[0].last_name", "Kraus").await;
        b.fill("c[0].contact", "1001").await;
        b.fill("c[0].speed_dial", "1").await;
        b.fill("c[0].label", "Karl").await;
        b.fill("c[1].first_name", "Reception").await;
        b.fill("c[1].speed_dial", "one").await;
        b.shot("directory-editing").await;
        b.click("main form button[type=submit]").await;
        let text = b.text().await;
        assert!(text.contains("Row 2, contact") && text.contains("Row 2, speed dial"), "{text}");
        assert!(!server.data_dir().join("assets/000000000000-directory.xml").exists());
        b.shot("directory-errors").await;
        b.fill("c[1].contact", "100").await;
        b.fill("c[1].speed_dial", "2").await;
        b.click("main form button[type=submit]").await;
        assert!(b.text().await.contains("Directory saved"), "{}", b.text().await);

        // Add more from a CSV file.
        b.client
            .find(Locator::Css("input[name=file]"))
            .await
            .expect("csv input")
            .send_keys(&csv.to_string_lossy())
            .await
            .expect("file");
        b.toggle("input[name=mode][value=append]").await;
        b.click("form[action='/files/directory/import'] button[type=submit]").await;
        assert!(b.text().await.contains("Directory saved"), "{}", b.text().await);
        let values: Vec<String> = {
            let mut v = Vec::new();
            for e in b.client.find_all(Locator::Css("input[name$='.contact']")).await.expect("inputs") {
                v.push(e.prop("value").await.expect("value").unwrap_or_default());
            }
            v
        };
        assert_eq!(&values[..4], ["1001", "100", "sip:anna@example.com", "2000"]);
        b.shot("directory-saved").await;
        let mut phone = server.phone(VVX, UA_VVX410_APP);
        let served = phone.get("/000000000000-directory.xml").text();
        assert!(served.contains("<fn>Anna</fn>") && served.contains("<ln>Kraus</ln>"), "{served}");

        // The phone stores an override that moves its registration.
        assert_eq!(phone.get(&format!("/{VVX}.cfg")).status, 200);
        let ovr = br#"<PHONE_CONFIG><OVERRIDES reg.1.server.1.address="rogue.example.net" up.backlight.idleIntensity="1"/></PHONE_CONFIG>"#;
        assert_eq!(phone.request("PUT", &format!("/overrides/{VVX}-phone.cfg"), ovr).status, 201);
        b.goto(&format!("/devices/{VVX}")).await;
        let text = b.text().await;
        assert!(
            text.contains("Overridden on the phone") && text.contains("rogue.example.net") && text.contains("sip.example.com"),
            "{text}"
        );
        assert!(text.contains("redirects its registration"), "{text}");
        b.client
            .execute("document.querySelector('section.overrides').scrollIntoView();", vec![])
            .await
            .expect("scroll");
        b.shot("device-overrides").await;
        b.click("section.overrides button.danger").await;
        let text = b.text().await;
        assert!(text.contains("Overrides cleared") && text.contains("Empty: nothing is overridden."), "{text}");
        assert!(text.contains("Reset Local Configuration"), "{text}");
        b.client
            .execute("document.querySelector('section.overrides').scrollIntoView();", vec![])
            .await
            .expect("scroll");
        b.shot("device-overrides-cleared").await;
        b.close().await;
    });
}
