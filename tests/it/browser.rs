//! The console in a real headless Chromium driven over WebDriver (chromedriver +
//! fantoccini), the way a person uses it: sign-in with the first start's one-time password
//! and the forced change, CSRF refusal, profile create/modify/delete, a manual association,
//! a bulk upload with good and bad lines and its error file, Find in both views with
//! wildcards and the CSV download, and replacing a device. Every step leaves a PNG in
//! `tests/screenshots/` (ignored by git) for a person to look at.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them). Without them
//! the tests are skipped (`common::require`), except under CI, where they fail.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use crate::common::*;

mod settings;

/// One browser at a time: two cores are shared with the rest of the suite.
pub(crate) static ONE_BROWSER: Mutex<()> = Mutex::new(());

pub(crate) struct Browser {
    driver: Child,
    pub(crate) client: Client,
    base: String,
    shots: PathBuf,
    name: &'static str,
    step: u32,
    _profile: tempfile::TempDir,
}

fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names
        .iter()
        .flat_map(|n| std::env::split_paths(&path).map(move |d| d.join(n)))
        .chain(
            ["/usr/bin/chromium", "/usr/lib/chromium/chromedriver"]
                .iter()
                .map(PathBuf::from),
        )
        .find(|p| p.is_file())
}

impl Browser {
    pub(crate) async fn start(server: &ZServer, name: &'static str) -> Option<Browser> {
        let (chromium, driver) = (
            find_binary(&["chromium", "chromium-browser"]),
            find_binary(&["chromedriver"]),
        );
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            require(
                false,
                "browser tests need chromium and chromedriver (apt-get install chromium chromium-driver)",
            );
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1366,900",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": chromium.to_string_lossy(), "args": args }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("WebDriver session");
        let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/screenshots");
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        // Screenshots of an earlier run of this test would mislead whoever looks at them.
        for entry in std::fs::read_dir(&shots).expect("screenshots").flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(&format!("{name}-"))
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Some(Browser {
            driver,
            client,
            base: format!("http://{}", server.admin),
            shots,
            name,
            step: 0,
            _profile: profile,
        })
    }

    pub(crate) async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .expect("goto");
    }

    pub(crate) async fn path(&self) -> String {
        let _ = self.text().await;
        let url = self.client.current_url().await.expect("url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// The text of the page's `main`, once the page has loaded (a click may still be
    /// navigating: elements of the old page go stale, so this retries).
    pub(crate) async fn text(&self) -> String {
        for _ in 0..50 {
            let ready = self
                .client
                .execute("return document.readyState", vec![])
                .await;
            if ready
                .ok()
                .and_then(|v| v.as_str().map(|s| s == "complete"))
                .unwrap_or(false)
                && let Ok(main) = self.client.find(Locator::Css("main")).await
                && let Ok(t) = main.text().await
            {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the page did not load")
    }

    pub(crate) async fn fill(&self, name: &str, value: &str) {
        let e = self
            .client
            .find(Locator::Css(&format!("[name=\"{name}\"]")))
            .await
            .unwrap_or_else(|_| panic!("field {name}"));
        e.clear().await.expect("clear");
        e.send_keys(value).await.expect("type");
    }

    pub(crate) async fn choose(&self, name: &str, value: &str) {
        let e = self
            .client
            .find(Locator::Css(&format!("select[name=\"{name}\"]")))
            .await
            .unwrap_or_else(|_| panic!("select {name}"));
        e.select_by_value(value).await.expect("select");
    }

    /// Clicks something that loads a new page, and waits for that page.
    pub(crate) async fn click(&self, css: &str) {
        self.mark().await;
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|_| panic!("no {css}"))
            .click()
            .await
            .expect("click");
        self.wait_new_page().await;
    }

    pub(crate) async fn click_link(&self, text: &str) {
        self.mark().await;
        self.client
            .find(Locator::LinkText(text))
            .await
            .unwrap_or_else(|_| panic!("no link {text}"))
            .click()
            .await
            .expect("click");
        self.wait_new_page().await;
    }

    /// Clicks something that stays on the page (a checkbox, a `details` summary).
    pub(crate) async fn toggle(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|_| panic!("no {css}"))
            .click()
            .await
            .expect("click");
    }

    pub(crate) async fn mark(&self) {
        self.client
            .execute("window.__zt_old_page = true;", vec![])
            .await
            .expect("mark");
    }

    pub(crate) async fn wait_new_page(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let v = self
                .client
                .execute("return window.__zt_old_page === undefined && document.readyState === 'complete';", vec![])
                .await;
            if v.ok().and_then(|v| v.as_bool()).unwrap_or(false) {
                return;
            }
            assert!(Instant::now() < deadline, "no new page after the click");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a screenshot named after the test and step.
    pub(crate) async fn shot(&mut self, what: &str) {
        self.step += 1;
        let png = self.client.screenshot().await.expect("screenshot");
        let file = self
            .shots
            .join(format!("{}-{:02}-{what}.png", self.name, self.step));
        std::fs::write(&file, png).expect("write screenshot");
    }

    /// Fetches a URL from inside the page (same origin, with the session cookie).
    pub(crate) async fn fetch(&self, path: &str) -> String {
        let v = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1]; fetch(arguments[0]).then(r => r.text()).then(done, e => done('ERROR ' + e));",
                vec![serde_json::json!(path)],
            )
            .await
            .expect("fetch");
        v.as_str().unwrap_or_default().to_string()
    }

    /// Signs in as `admin` with the one-time password and sets a new one.
    pub(crate) async fn first_sign_in(&mut self, server: &ZServer) {
        self.goto("/").await;
        assert_eq!(self.path().await, "/login");
        self.fill("username", "admin").await;
        self.fill("password", &admin_password(server)).await;
        self.click("button[type=submit]").await;
        assert_eq!(self.path().await, "/password");
        self.fill("current_password", &admin_password(server)).await;
        self.fill("new_password", "correct-horse-battery").await;
        self.fill("repeat_password", "correct-horse-battery").await;
        self.click("main button[type=submit]").await;
        assert!(
            self.path().await.starts_with("/?done=password-changed"),
            "{}",
            self.path().await
        );
    }

    pub(crate) async fn close(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn sign_in_csrf_and_profile_management_in_a_browser() {
    let _one = ONE_BROWSER.lock().unwrap_or_else(|p| p.into_inner());
    let server = ZServer::start();
    import_release(&server, "6.4.3.1234", &["3111-48500-001.sip.ld"], &[]);
    runtime().block_on(async {
        let Some(mut b) = Browser::start(&server, "signin-profiles").await else {
            return;
        };
        // A wrong password is refused with a message; the one-time password forces a change.
        b.goto("/login").await;
        b.fill("username", "admin").await;
        b.fill("password", "not-the-password").await;
        b.click("button[type=submit]").await;
        assert!(b.text().await.contains("Wrong user name or password"));
        b.shot("wrong-password").await;
        b.goto("/login").await;
        b.fill("username", "admin").await;
        b.fill("password", &admin_password(&server)).await;
        b.click("button[type=submit]").await;
        assert_eq!(b.path().await, "/password");
        assert!(b.text().await.contains("one-time password"));
        b.shot("forced-password-change").await;
        b.goto("/find").await;
        assert_eq!(
            b.path().await,
            "/password",
            "every page waits for the new password"
        );
        b.fill("current_password", &admin_password(&server)).await;
        b.fill("new_password", "correct-horse-battery").await;
        b.fill("repeat_password", "correct-horse-battery").await;
        b.click("main button[type=submit]").await;
        assert!(
            b.text().await.contains("Password changed"),
            "{} {}",
            b.path().await,
            b.text().await
        );
        b.shot("home").await;

        // A form whose CSRF token was tampered with is refused with a page saying why.
        b.goto("/profiles/new").await;
        b.client
            .execute(
                "document.querySelectorAll('input[name=csrf]').forEach(e => e.value = 'forged');",
                vec![],
            )
            .await
            .expect("tamper");
        b.fill("name", "forged").await;
        b.click("main button[type=submit]").await;
        assert!(
            b.text()
                .await
                .contains("security token is missing or out of date"),
            "{}",
            b.text().await
        );
        b.shot("csrf-refused").await;
        assert!(
            !server.cli_ok(&["profile", "list"]).contains("forged"),
            "nothing was stored"
        );

        // Create a profile with a configuration file.
        let dir = tempfile::tempdir().expect("dir");
        let cfg = write_file(
            dir.path(),
            "site.cfg",
            br#"<polycomConfig tcpIpApp.sntp.address="pool.ntp.org"/>"#,
        );
        let bad = write_file(dir.path(), "broken.cfg", b"<polycomConfig>");
        b.goto("/profiles").await;
        b.click_link("Create a profile").await;
        b.fill("name", "office").await;
        b.choose("polling", "enable").await;
        b.choose("software.VVX", "6.4.3.1234").await;
        b.fill("prov_password", "prov-secret-1").await;
        b.client
            .find(Locator::Css("input[name=files]"))
            .await
            .expect("file input")
            .send_keys(&bad.to_string_lossy())
            .await
            .expect("file");
        b.click("main button[type=submit]").await;
        assert!(
            b.text().await.contains("broken.cfg"),
            "a broken file is named: {}",
            b.text().await
        );
        b.shot("profile-bad-file").await;
        b.fill("name", "office").await;
        b.choose("software.VVX", "6.4.3.1234").await;
        b.client
            .find(Locator::Css("input[name=files]"))
            .await
            .expect("file input")
            .send_keys(&cfg.to_string_lossy())
            .await
            .expect("file");
        b.click("main button[type=submit]").await;
        assert!(
            b.text().await.contains("Profile created"),
            "{}",
            b.text().await
        );
        b.shot("profile-created").await;

        // Modify it: the password stays set when left empty.
        b.click_link("office").await;
        assert!(b.text().await.contains("site.cfg"));
        b.choose("polling", "disable").await;
        b.fill("language", "German_Germany").await;
        b.shot("profile-editor").await;
        b.click("main button[type=submit]").await;
        assert!(b.text().await.contains("Profile saved"));
        let conn_out = server.cli_ok(&["profile", "show", "office"]);
        assert!(
            conn_out.contains("polling:            disable")
                && conn_out.contains("German_Germany")
                && conn_out.contains("(set)"),
            "{conn_out}"
        );

        // In use: the confirmation page refuses and says how many devices.
        server.cli_ok(&["device", "add", "0004f2000001", "--profile", "office"]);
        b.goto("/profiles/office/delete").await;
        assert!(b.text().await.contains("used by 1 device"));
        b.shot("profile-delete-refused").await;
        server.cli_ok(&["device", "delete", "0004f2000001"]);
        b.goto("/profiles").await;
        b.click_link("Delete").await;
        b.shot("profile-delete-confirm").await;
        b.click("button.danger").await;
        assert!(b.text().await.contains("Profile deleted"));
        assert!(!b.text().await.contains("office"));
        b.close().await;
    });
}

#[test]
fn associations_bulk_upload_find_and_replace_in_a_browser() {
    let _one = ONE_BROWSER.lock().unwrap_or_else(|p| p.into_inner());
    let server = ZServer::start();
    server.cli_ok(&["profile", "add", "profile1"]);
    runtime().block_on(async {
        let Some(mut b) = Browser::start(&server, "associations").await else { return };
        b.first_sign_in(&server).await;

        // Manual association: contact first, then the device with a vendor extension.
        b.click_link("Profile Association").await;
        b.fill("reference_id", "KRAUS001").await;
        b.fill("first_name", "Karl").await;
        b.fill("last_name", "Kraus").await;
        b.fill("city", "Vienna").await;
        b.fill("email", "karl@example.com").await;
        b.shot("contact").await;
        b.click("main button[type=submit]").await;
        assert_eq!(b.path().await, "/subscribers/KRAUS001/devices/new");
        b.fill("devices[0].mac", "0004F2AABB01").await;
        b.choose("devices[0].profile", "profile1").await;
        b.toggle("details summary").await;
        b.fill("devices[0].sip_server", "sip.example.com").await;
        b.fill("devices[0].sip_auth_user_id", "1001").await;
        b.fill("devices[0].display_name", "Karl Kraus").await;
        b.fill("devices[0].sip_auth_password", "line-secret-9").await;
        b.shot("manual-device").await;
        b.click("button[value=finish]").await;
        assert!(b.text().await.contains("Devices associated"), "{}", b.text().await);
        assert!(b.text().await.contains("0004f2aabb01"));
        b.shot("reference-id-page").await;

        // Bulk upload: the ZTP guide's examples plus broken lines, linked to the reference ID.
        let dir = tempfile::tempdir().expect("dir");
        let csv = "0000cafebabe,,,profile1\n\
                   0000cafe1234,0000CAFE1234, Polycom_UCS_Device,profile1,192.168.1.178,,,user,password\n\
                   0000cafebab,,,profile1\n\
                   0000cafe5678,,,nosuchprofile\n\
                   0000cafebabe,,,profile1\n";
        let file = write_file(dir.path(), "devices.csv", csv.as_bytes());
        b.click_link("Bulk_Add").await;
        assert!(b.path().await.starts_with("/import?reference_id=KRAUS001"));
        b.client.find(Locator::Css("input[name=file]")).await.expect("file").send_keys(&file.to_string_lossy()).await.expect("send");
        b.shot("bulk-form").await;
        b.click("main button[type=submit]").await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !b.text().await.contains("Completed") {
            assert!(Instant::now() < deadline, "job did not finish: {}", b.text().await);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let text = b.text().await;
        assert!(text.contains("Completed with Errors"), "{text}");
        assert!(text.contains("duplicate of line 1") && text.contains("no profile named `nosuchprofile`"), "{text}");
        b.shot("bulk-job").await;
        let href = b.client.find(Locator::LinkText("Download the rejected lines")).await.expect("link").attr("href").await.expect("href").expect("href");
        let errors = b.fetch(&href).await;
        assert!(errors.contains("# line 3: column 1 (MAC Address)") && errors.contains("# line 5: duplicate of line 1"), "{errors}");
        // Correct the rejected lines and upload only them again.
        let fixed = errors.replace("0000cafebab,", "0000cafebab0,").replace("nosuchprofile", "profile1").replace("0000cafebabe,,,profile1", "0000cafe9999,,,profile1");
        let fixed_file = write_file(dir.path(), "fixed.csv", fixed.as_bytes());
        b.goto("/import?reference_id=KRAUS001").await;
        b.client.find(Locator::Css("input[name=file]")).await.expect("file").send_keys(&fixed_file.to_string_lossy()).await.expect("send");
        b.click("main button[type=submit]").await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !b.text().await.contains("Completed") {
            assert!(Instant::now() < deadline, "job did not finish");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let text = b.text().await;
        assert!(text.contains("Completed") && !text.contains("with Errors"), "{text}");
        let listed = server.cli_ok(&["device", "list"]);
        for fixed in ["0000cafebab0", "0000cafe5678", "0000cafe9999"] {
            assert!(listed.contains(fixed), "{fixed}: {listed}");
        }

        // Find: reached from the device list (one list of devices, Find Operations a view of
        // it); the reference-ID view with a wildcard, then the device view (the default),
        // then CSV.
        b.click_link("Inventory").await;
        b.click_link("Find Operations").await;
        assert_eq!(b.path().await, "/find");
        b.fill("last_name", "kr%").await;
        b.click("main button[type=submit]").await;
        let text = b.text().await;
        assert!(text.contains("KRAUS001") && text.contains("Karl Kraus"), "{text}");
        b.shot("find-reference-view").await;
        b.goto("/find").await;
        // The device view is Find's default: every device is listed before any search.
        assert!(b.text().await.contains("0000cafe1234"), "{}", b.text().await);
        b.fill("mac", "0000cafe%").await;
        b.fill("per_page", "2").await;
        b.click("main button[type=submit]").await;
        let text = b.text().await;
        assert!(text.contains("Page 1 of 3") && text.contains("0000cafe1234"), "{text}");
        b.shot("find-device-view").await;
        b.click_link("MAC address").await;
        b.click_link("MAC address ▲").await;
        assert!(b.text().await.contains("0000cafebabe"), "descending starts with the highest MAC");
        b.click_link("Next ›").await;
        b.shot("find-device-view-page-2").await;
        let csv = b.fetch("/find?view=device&mac=0000cafe%25&download=1&max_entries=3").await;
        assert_eq!(csv.lines().count(), 4, "header and 3 entries: {csv}");
        assert!(csv.starts_with("mac,serial"), "{csv}");

        // The device page: its requests, and the files it receives with secrets masked.
        server.set_credentials();
        let mut phone = server.phone("0004f2aabb01", UA_VVX500_APP);
        assert_eq!(phone.get("/0004f2aabb01.cfg").status, 200);
        assert_eq!(phone.get("/0004f2aabb01-device.cfg").status, 200);
        b.goto("/devices/0004f2aabb01").await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !b.text().await.contains("0004f2aabb01-device.cfg 200") {
            assert!(Instant::now() < deadline, "no timeline: {}", b.text().await);
            tokio::time::sleep(Duration::from_millis(200)).await;
            b.goto("/devices/0004f2aabb01").await;
        }
        b.shot("device-page").await;
        for e in b.client.find_all(Locator::Css("details.file summary")).await.expect("files") {
            e.click().await.expect("open");
        }
        b.client
            .execute("document.querySelectorAll('details.file')[1].scrollIntoView();", vec![])
            .await
            .expect("scroll");
        let text = b.text().await;
        assert!(text.contains("reg.1.auth.userId=\"1001\""), "the file as served: {text}");
        assert!(!text.contains("line-secret-9") && text.contains("********"), "secrets masked: {text}");
        b.shot("device-files").await;

        // Replace a faulty device: the new MAC keeps the association and starts staged.
        b.click_link("Change (replace device)").await;
        b.fill("new_mac", "0004f2aabb99").await;
        b.shot("replace-form").await;
        b.click("main button[type=submit]").await;
        // The phone was seen: the console counts it and asks first.
        let text = b.text().await;
        assert!(text.contains("1 phone affected") && text.contains("replaced by 0004f2aabb99"), "{text}");
        b.shot("replace-confirm").await;
        b.click("main button.danger").await;
        assert_eq!(b.path().await, "/devices/0004f2aabb99?done=device-replaced");
        let text = b.text().await;
        assert!(text.contains("KRAUS001") && text.contains("sip.example.com") && text.contains("1001"), "{text}");
        let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(words.contains("Last access --"), "staged: {text}");
        b.shot("replaced").await;
        b.goto("/devices/0004f2aabb01").await;
        assert!(b.text().await.contains("not found"));
        b.close().await;
    });
}
