//! Accounts as tenants (issue 24 items 1 and 2), through the real binary on loopback: a
//! user scoped to one account sees and changes nothing of another — its devices are
//! answered as MACs that exist nowhere by the API's GET, Find, inventory and export and by
//! the console's pages, and associating one is 409 "already associated elsewhere" — and the
//! `/api/v1/accounts/{account}/…` routes answer as their aliases for the default account.
//! Also: users given accounts on the Users page and the CLI, the CLI's `--account`, an
//! account's own shared files served before the installation's, the switcher in a real
//! browser. A randomized model (`ZEROTOUCH_TENANT_CASES` installations, default 1) checks
//! each user's view through the API against the model's filter.

use crate::common::*;

const MAC_A: &str = "0004f2aa0001";
const MAC_B: &str = "0004f2bb0001";
const NOWHERE: &str = "0004f2cc0009";
const PASSWORD: &str = TEST_USER_PASSWORD;

fn user(server: &ZServer, name: &str, args: &[&str]) -> String {
    user_with_token_args(server, name, args)
}

/// An account `slug` with a profile `office`.
fn add_account(server: &ZServer, slug: &str) {
    crate::common::add_account(server, slug, &format!("Account {slug}"));
    server.cli_ok(&["profile", "add", "office", "--account", slug]);
}

/// Associates `mac` with the profile `office` in `account` through the API.
fn associate(server: &ZServer, token: &str, account: &str, mac: &str) -> Resp {
    api(
        server,
        "POST",
        &format!("/accounts/{account}/devices"),
        Some(token),
        &format!(r#"{{"id": "{mac}", "profile": "office"}}"#),
    )
}

fn macs_of(v: &serde_json::Value) -> Vec<String> {
    let mut m: Vec<String> = v["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["mac"].as_str().expect("mac").to_string())
        .collect();
    m.sort();
    m
}

/// Two accounts: `default` holds MAC_A, `branch` holds MAC_B (associated by its installer).
fn two_accounts() -> (ZServer, String) {
    let server = ZServer::start();
    server.cli_ok(&["profile", "add", "office"]);
    server.cli_ok(&["device", "add", MAC_A, "--profile", "office"]);
    add_account(&server, "branch");
    let installer = user(
        &server,
        "bea",
        &["--account-role", "branch=installer", "--company", "acme"],
    );
    let r = associate(&server, &installer, "branch", MAC_B);
    assert_eq!(r.status, 201, "{}", r.text());
    (server, installer)
}

#[test]
fn an_installer_of_one_account_sees_nothing_of_another_through_the_api() {
    let (server, bea) = two_accounts();
    let get = |path: &str| api(&server, "GET", path, Some(&bea), "");
    // Another account's device answers exactly as a MAC that exists nowhere.
    let held = get(&format!("/accounts/branch/devices/{MAC_A}"));
    let nowhere = get(&format!("/accounts/branch/devices/{NOWHERE}"));
    assert_eq!(held.status, 404, "{}", held.text());
    assert_eq!(
        held.text().replace(MAC_A, "MAC"),
        nowhere.text().replace(NOWHERE, "MAC")
    );
    assert_eq!(
        get(&format!("/accounts/branch/devices/{MAC_B}")).status,
        200
    );
    // Find lists and counts only the account's own devices.
    let found = json(&get("/accounts/branch/find?view=device&mac=%25"));
    assert_eq!(macs_of(&found), vec![MAC_B.to_string()]);
    assert_eq!(found["total"], 1);
    // The profile list counts what the installer sees.
    let profiles = json(&get("/accounts/branch/profiles"));
    assert_eq!(profiles["profiles"][0]["devices"], 1, "{profiles}");
    // The other account, its routes and the default account's aliases: not found, as an
    // account that does not exist.
    for path in [
        "/accounts/default/find",
        "/accounts/default/profiles",
        "/find",
        "/profiles",
        &format!("/devices/{MAC_A}"),
    ] {
        let r = get(path);
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert_eq!(
            get(&path.replace("default", "nosuch")).status,
            404,
            "{path}"
        );
    }
    let r = get("/accounts/nosuch/find");
    assert!(r.text().contains("account `nosuch`"), "{}", r.text());
    // Import jobs: the installer's own, in its account, is theirs; another account's job is
    // not found, as a job that does not exist.
    let r = api(
        &server,
        "POST",
        "/accounts/branch/imports",
        Some(&bea),
        "0004f2bb0002,,,office\n",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let own = json(&r)["id"].as_i64().expect("id");
    assert_eq!(get(&format!("/accounts/branch/imports/{own}")).status, 200);
    let ada = user(&server, "ada", &["--role", "admin"]);
    let r = api(
        &server,
        "POST",
        "/imports?file_name=hq-only.csv",
        Some(&ada),
        "0004f2aa0002,,,office\n",
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let other = json(&r)["id"].as_i64().expect("id");
    let held = get(&format!("/accounts/branch/imports/{other}"));
    assert_eq!(held.status, 404, "{}", held.text());
    assert_eq!(
        held.text().replace(&other.to_string(), "ID"),
        get("/accounts/branch/imports/999999")
            .text()
            .replace("999999", "ID")
    );
    // The console's recent jobs are the account's own, even for an admin of the account
    // (who sees every company's).
    user(&server, "bob", &["--account-role", "branch=admin"]);
    let page = Session::sign_in(&server, "bob", PASSWORD)
        .get("/import")
        .text();
    assert!(
        page.contains("api.csv") && !page.contains("hq-only.csv"),
        "{page}"
    );
    let admins = Session::admin(&server).get("/import").text();
    assert!(admins.contains("hq-only.csv"), "{admins}");
    // Associating the other account's MAC: 409, naming neither the account nor the company.
    let r = associate(&server, &bea, "branch", MAC_A);
    assert_eq!(r.status, 409, "{}", r.text());
    let text = r.text();
    assert!(text.contains("already associated elsewhere"), "{text}");
    assert!(
        !text.contains("default") && !text.contains("Default"),
        "{text}"
    );
}

#[test]
fn a_viewer_of_one_account_reads_only_its_inventory_and_export() {
    let (server, _) = two_accounts();
    let vic = user(&server, "vic", &["--account-role", "branch=viewer"]);
    let get = |path: &str| api(&server, "GET", path, Some(&vic), "");
    let inv = json(&get("/accounts/branch/inventory"));
    assert_eq!(inv["total"], 1, "{inv}");
    let export = get("/accounts/branch/export");
    assert_eq!(export.status, 200, "{}", export.text());
    assert!(export.text().contains(MAC_B) && !export.text().contains(MAC_A));
    for path in ["/accounts/default/inventory", "/accounts/default/export"] {
        assert_eq!(get(path).status, 404, "{path}");
    }
    let list = json(&get("/accounts"));
    let slugs: Vec<&str> = list["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|a| a["slug"].as_str().expect("slug"))
        .collect();
    assert_eq!(slugs, vec!["branch"]);
    // The audit log: the API's route acts in the default account, which this user has no
    // role in (not found); the console's shows the entries of their account alone.
    assert_eq!(get("/audit").status, 404);
    let s = Session::sign_in(&server, "vic", PASSWORD);
    let audit = s.get("/audit");
    assert_eq!(audit.status, 200, "{}", audit.text());
    assert!(
        audit.text().contains(MAC_B) && !audit.text().contains(MAC_A),
        "{}",
        audit.text()
    );
    assert!(!s.get("/audit.csv").text().contains(MAC_A));
    assert_eq!(s.get("/audit?account=default").status, 404);
}

#[test]
fn the_console_acts_on_the_users_account_and_says_so() {
    let (server, _) = two_accounts();
    let s = Session::sign_in(&server, "bea", PASSWORD);
    let home = s.get("/");
    assert_eq!(home.status, 200);
    assert!(
        home.text()
            .contains("Account: <strong>Account branch</strong>")
    );
    let find = s.get("/find?view=device&mac=%25");
    assert!(find.text().contains(MAC_B) && !find.text().contains(MAC_A));
    assert_eq!(s.get(&format!("/devices/{MAC_A}")).status, 404);
    assert_eq!(s.get("/accounts/default/inventory").status, 404);
    // Switching to an account the user has no role in: not found, nothing changes.
    assert_eq!(s.post("/account", &[("account", "default")]).status, 404);
    // An installation-wide admin switches, and the pages then act on that account.
    let admin = Session::admin(&server);
    assert!(
        admin
            .get("/")
            .text()
            .contains("Account: <strong>Default</strong>")
    );
    // A phone seen in the default account is among the installation-wide admin's
    // unassociated phones, not among the branch installer's.
    server.set_credentials();
    let mut phone = server.phone(NOWHERE, UA_VVX500_APP);
    assert_eq!(phone.get(&format!("/{NOWHERE}.cfg")).status, 404);
    assert!(eventually(std::time::Duration::from_secs(5), || admin
        .get("/unassociated")
        .text()
        .contains(NOWHERE)));
    assert!(!s.get("/unassociated").text().contains(NOWHERE));
    assert_eq!(admin.post("/account", &[("account", "branch")]).status, 303);
    let profiles = admin.get("/profiles");
    assert!(
        profiles
            .text()
            .contains("Account: <strong>Account branch</strong>")
    );
    let cookie = admin.cookie.clone();
    let again = get_with_cookie(&server, &cookie, "/");
    assert!(
        again
            .text()
            .contains("Account: <strong>Account branch</strong>")
    );
}

#[test]
fn the_account_routes_answer_as_their_aliases_for_the_default_account() {
    let (server, _) = two_accounts();
    let admin = user(&server, "ada", &["--role", "admin"]);
    for (alias, routed) in [
        ("/profiles", "/accounts/default/profiles"),
        (
            "/find?view=device&mac=%25",
            "/accounts/default/find?view=device&mac=%25",
        ),
        (
            &format!("/devices/{MAC_A}") as &str,
            &format!("/accounts/default/devices/{MAC_A}") as &str,
        ),
    ] {
        let a = api(&server, "GET", alias, Some(&admin), "");
        let b = api(&server, "GET", routed, Some(&admin), "");
        assert_eq!(a.status, 200, "{alias}: {}", a.text());
        assert_eq!(a.text(), b.text(), "{alias} and {routed}");
    }
}

#[test]
fn bad_grants_are_refused_naming_the_field() {
    let server = ZServer::start();
    for (arg, says) in [
        ("nosuch=viewer", "no account `nosuch`"),
        ("default=boss", "is not one of"),
        ("default", "is not ACCOUNT=ROLE"),
    ] {
        let err = server.cli_err(&["user", "add", "zed", "--account-role", arg]);
        assert!(
            err.contains("--account-role") || err.contains("account_role"),
            "{err}"
        );
        assert!(err.contains(says), "{arg}: {err}");
    }
}

/// A small deterministic generator (xorshift), so the model test needs no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn each_users_view_through_the_api_equals_the_models_filter() {
    // ZEROTOUCH_TENANT_CASES runs more random installations (default 1: it runs in CI).
    let cases: u64 = std::env::var("ZEROTOUCH_TENANT_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let seed: u64 = std::env::var("ZEROTOUCH_TENANT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_1234_abcd);
    for case in 0..cases {
        let mut rng = Rng(seed.wrapping_add(case.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
        let server = ZServer::start();
        server.cli_ok(&["profile", "add", "office"]);
        let mut slugs = vec!["default".to_string()];
        for i in 0..(1 + rng.below(2)) {
            let slug = format!("t{i}");
            add_account(&server, &slug);
            slugs.push(slug);
        }
        // Devices: each in a random account.
        let mut devices: Vec<(String, usize)> = Vec::new();
        for i in 0..(2 + rng.below(5)) {
            let mac = format!("0004f2dd{i:04x}");
            let a = rng.below(slugs.len() as u64) as usize;
            server.cli_ok(&[
                "device",
                "add",
                &mac,
                "--profile",
                "office",
                "--account",
                &slugs[a],
            ]);
            devices.push((mac, a));
        }
        // Users: each scoped to a random non-empty set of accounts (admin or viewer there).
        let mut users: Vec<(String, Vec<usize>)> = Vec::new();
        for u in 0..(1 + rng.below(3)) {
            let mut set: Vec<usize> = (0..slugs.len()).filter(|_| rng.below(2) == 0).collect();
            if set.is_empty() {
                set.push(rng.below(slugs.len() as u64) as usize);
            }
            let mut args = Vec::new();
            for a in &set {
                let role = if rng.below(2) == 0 { "admin" } else { "viewer" };
                args.push("--account-role".to_string());
                args.push(format!("{}={role}", slugs[*a]));
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let name = format!("user{u}");
            let token = user(&server, &name, &args);
            users.push((token, set));
        }
        for (token, set) in &users {
            for (a, slug) in slugs.iter().enumerate() {
                let r = api(
                    &server,
                    "GET",
                    &format!("/accounts/{slug}/find?view=device&mac=%25&per_page=100"),
                    Some(token),
                    "",
                );
                if !set.contains(&a) {
                    assert_eq!(r.status, 404, "case {case}: {slug} outside {set:?}");
                    continue;
                }
                let mut want: Vec<String> = devices
                    .iter()
                    .filter(|(_, d)| *d == a)
                    .map(|(m, _)| m.clone())
                    .collect();
                want.sort();
                let v = json(&r);
                assert_eq!(macs_of(&v), want, "case {case}: {slug}");
                assert_eq!(v["total"], want.len(), "case {case}: {slug}");
                let inv = json(&api(
                    &server,
                    "GET",
                    &format!("/accounts/{slug}/inventory"),
                    Some(token),
                    "",
                ));
                assert_eq!(inv["total"], want.len(), "case {case}: {slug} {inv}");
                for (mac, d) in &devices {
                    let r = api(
                        &server,
                        "GET",
                        &format!("/accounts/{slug}/devices/{mac}"),
                        Some(token),
                        "",
                    );
                    let expect = if *d == a { 200 } else { 404 };
                    assert_eq!(r.status, expect, "case {case}: {mac} via {slug}");
                }
            }
        }
    }
}

#[test]
fn admins_give_users_accounts_on_the_users_page_and_the_cli_lists_them() {
    let server = ZServer::start();
    add_account(&server, "branch");
    let admin = Session::admin(&server);
    // An unknown account or role is refused, naming the field; no user is made.
    for bad in ["nosuch=viewer", "branch=boss", "branch"] {
        let r = admin.post(
            "/users",
            &[
                ("username", "bo"),
                ("role", "viewer"),
                ("company", ""),
                ("account_role", bad),
            ],
        );
        assert_eq!(r.status, 422, "{bad}: {}", r.text());
        assert!(r.text().contains("account_role"), "{bad}: {}", r.text());
    }
    assert!(!server.cli_ok(&["user", "list"]).contains("bo "));
    let r = admin.post(
        "/users",
        &[
            ("username", "bo"),
            ("role", "viewer"),
            ("company", "acme"),
            ("account_role", "branch=installer"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let row = |name: &str| {
        server
            .cli_ok(&["user", "list"])
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} listed"))
            .to_string()
    };
    assert!(row("bo").contains("branch=installer"), "{}", row("bo"));
    assert!(row("admin").contains("every account"), "{}", row("admin"));
    // Made installation-wide again from the users page (an empty field).
    let r = admin.post("/users/bo/accounts", &[("account_role", "")]);
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(row("bo").contains("every account"), "{}", row("bo"));
    // The last installation-wide admin cannot be limited to accounts.
    let err = server.cli_err(&[
        "user",
        "accounts",
        "admin",
        "--account-role",
        "branch=admin",
    ]);
    assert!(err.contains("last installation-wide admin"), "{err}");
}

#[test]
fn cli_commands_act_in_the_account_they_name() {
    let server = ZServer::start();
    server.cli_ok(&["profile", "add", "office"]);
    server.cli_ok(&["device", "add", MAC_A, "--profile", "office"]);
    add_account(&server, "branch");
    // A bulk import into the branch account.
    let f = write_file(
        &server.data_dir(),
        "branch.csv",
        format!("{MAC_B},,,office\n").as_bytes(),
    );
    server.cli_ok(&["import", &f.to_string_lossy(), "--account", "branch"]);
    let found = server.cli_ok(&["find", "--device-view", "--mac", "%", "--account", "branch"]);
    assert!(found.contains(MAC_B) && !found.contains(MAC_A), "{found}");
    let every = server.cli_ok(&["find", "--device-view", "--mac", "%"]);
    assert!(every.contains(MAC_B) && every.contains(MAC_A), "{every}");
    // A device named in another account is not found there.
    let err = server.cli_err(&["device", "show", MAC_A, "--account", "branch"]);
    assert!(err.contains("no device") && err.contains("branch"), "{err}");
    let err = server.cli_err(&["device", "delete", MAC_A, "--account", "nosuch"]);
    assert!(err.contains("account `nosuch`"), "{err}");
    server.cli_ok(&["device", "show", MAC_B, "--account", "branch"]);
    // The commands that act on one device by its MAC take --account the same way.
    for args in [
        vec!["render", MAC_A],
        vec!["preview", MAC_A],
        vec!["overrides", "show", MAC_A],
        vec!["device", "set-vars", MAC_A, "--label", "hq"],
        vec!["device", "set-line", MAC_A, "--line", "1", "--label", "x"],
        vec!["device", "delete-line", MAC_A, "--line", "1"],
    ] {
        let mut named = args.clone();
        named.extend(["--account", "branch"]);
        let err = server.cli_err(&named);
        assert!(
            err.contains(&format!("no device {MAC_A} in account `branch`")),
            "{args:?}: {err}"
        );
    }
    server.cli_ok(&["render", MAC_B, "--account", "branch"]);
    server.cli_ok(&[
        "device",
        "set-line",
        MAC_B,
        "--line",
        "1",
        "--label",
        "Desk",
        "--account",
        "branch",
    ]);
    // A branch device's preview is rendered at the branch account's service address.
    let preview = server.cli_ok(&["preview", MAC_B, "--account", "branch"]);
    assert!(!preview.is_empty());
}

/// A phone of the branch account, with the branch's credential (`add_account`'s).
fn branch_phone(server: &ZServer) -> Phone {
    Phone::new(
        server.device,
        MAC_B,
        UA_VVX500_APP,
        "branchphones",
        "Branch-Passw0rd",
    )
}

/// The service address of an account (`/<slug>-<key>/`).
fn address(server: &ZServer, slug: &str) -> String {
    let out = server.cli_ok(&["account", "show", "--account", slug, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    v["service_address"].as_str().expect("address").to_string()
}

#[test]
fn an_accounts_own_directory_is_served_to_its_phones_before_the_installations() {
    let server = ZServer::start();
    server.set_credentials();
    add_account(&server, "branch");
    let csv = |name: &str, who: &str| {
        write_file(
            server.dir.path(),
            name,
            format!("first_name,last_name,contact,speed_dial\n{who},X,1001,1\n").as_bytes(),
        )
    };
    let all = csv("all.csv", "Everyone");
    let own = csv("own.csv", "Branchonly");
    server.cli_ok(&["assets", "directory", "import", &all.to_string_lossy()]);
    server.cli_ok(&[
        "assets",
        "directory",
        "import",
        &own.to_string_lossy(),
        "--account",
        "branch",
    ]);
    let err = server.cli_err(&["assets", "list", "--account", "nosuch"]);
    assert!(err.contains("account `nosuch`"), "{err}");
    let listed = server.cli_ok(&["assets", "list", "--account", "branch"]);
    assert!(listed.contains("000000000000-directory.xml"), "{listed}");
    // The branch's phones get the branch's directory; the default account's the
    // installation's; a file the branch does not have comes from the installation.
    let base = address(&server, "branch");
    let mut branch = branch_phone(&server);
    let r = branch.get(&format!("{base}000000000000-directory.xml"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("Branchonly") && !r.text().contains("Everyone"));
    let r = server
        .phone(MAC_A, UA_VVX500_APP)
        .get("/000000000000-directory.xml");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("Everyone") && !r.text().contains("Branchonly"));
    server.cli_ok(&["assets", "directory", "import", &all.to_string_lossy()]);
    server.cli_ok(&[
        "assets",
        "delete",
        "000000000000-directory.xml",
        "--account",
        "branch",
    ]);
    let r = branch.get(&format!("{base}000000000000-directory.xml"));
    assert!(r.text().contains("Everyone"), "{}", r.text());
}

#[test]
fn an_accounts_own_files_are_managed_through_its_api_routes() {
    let server = ZServer::start();
    add_account(&server, "branch");
    let boss = user(&server, "boss", &["--account-role", "branch=admin"]);
    let vic = user(&server, "vic", &["--account-role", "branch=viewer"]);
    let body = r#"{"contacts": [{"first_name": "Own", "contact": "1001"}]}"#;
    let put = |token: &str, path: &str| api(&server, "PUT", path, Some(token), body);
    assert_eq!(put(&vic, "/accounts/branch/assets/directory").status, 403);
    let r = put(&boss, "/accounts/branch/assets/directory");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = json(&api(
        &server,
        "GET",
        "/accounts/branch/assets/directory",
        Some(&vic),
        "",
    ));
    assert_eq!(v["contacts"][0]["first_name"], "Own");
    // The installation's files stay an installation-wide admin's; another account's are
    // not found.
    assert_eq!(put(&boss, "/assets/directory").status, 404);
    assert_eq!(
        api(&server, "GET", "/accounts/default/assets", Some(&boss), "").status,
        404
    );
    let listed = server.cli_ok(&["assets", "list", "--account", "branch"]);
    assert!(listed.contains("000000000000-directory.xml"), "{listed}");
    assert!(
        !server
            .cli_ok(&["assets", "list"])
            .contains("000000000000-directory.xml")
    );
}

/// The account the page header names.
async fn header(b: &crate::browser::Browser) -> String {
    b.client
        .find(fantoccini::Locator::Css(".account strong"))
        .await
        .expect("account line")
        .text()
        .await
        .expect("text")
}

#[test]
fn the_account_switcher_works_in_a_browser() {
    use crate::browser::{Browser, ONE_BROWSER, runtime};
    let _one = ONE_BROWSER.lock().unwrap_or_else(|p| p.into_inner());
    let server = ZServer::start();
    server.cli_ok(&["profile", "add", "office"]);
    server.cli_ok(&["device", "add", MAC_A, "--profile", "office"]);
    add_account(&server, "branch");
    server.cli_ok(&[
        "device",
        "add",
        MAC_B,
        "--profile",
        "office",
        "--account",
        "branch",
    ]);
    runtime().block_on(async {
        let Some(mut b) = Browser::start(&server, "account-switcher").await else {
            return;
        };
        b.first_sign_in(&server).await;
        b.goto("/profiles").await;
        b.text().await;
        assert_eq!(header(&b).await, "Default");
        b.choose("account", "branch").await;
        b.click(".account button[type=submit]").await;
        b.goto("/find?view=device&mac=%25").await;
        let text = b.text().await;
        assert_eq!(header(&b).await, "Account branch");
        // Find lists every account's devices for an installation-wide admin, as before.
        assert!(text.contains(MAC_B), "{text}");
        b.shot("switched").await;
        b.goto("/profiles").await;
        b.text().await;
        assert_eq!(header(&b).await, "Account branch");
    });
}

#[test]
fn find_covers_the_account_a_console_page_or_an_api_route_acts_in_even_for_an_admin() {
    let (server, _) = two_accounts();
    let token = user_with_token(&server, "root2", "admin", "");
    let q = "view=device&mac=%25";
    // The alias acts in the default account, as every alias does, even for an
    // installation-wide admin.
    let alias = api(&server, "GET", &format!("/find?{q}"), Some(&token), "");
    assert_eq!(macs_of(&json(&alias)), [MAC_A], "{}", alias.text());
    // An account route covers that account only.
    for (slug, mac) in [("branch", MAC_B), ("default", MAC_A)] {
        let r = api(
            &server,
            "GET",
            &format!("/accounts/{slug}/find?{q}"),
            Some(&token),
            "",
        );
        assert_eq!(macs_of(&json(&r)), [mac], "{slug}: {}", r.text());
        assert_eq!(
            json(&r)["total"],
            1,
            "{slug}: the count agrees with the rows"
        );
    }
    // The console's Find acts on the switcher's account.
    let admin = Session::admin(&server);
    let page = admin.get(&format!("/find?{q}")).text();
    assert!(page.contains(MAC_A) && !page.contains(MAC_B), "{page}");
    assert_eq!(admin.post("/account", &[("account", "branch")]).status, 303);
    let page = admin.get(&format!("/find?{q}")).text();
    assert!(page.contains(MAC_B) && !page.contains(MAC_A), "{page}");
}

#[test]
fn the_phone_files_pages_keep_an_accounts_own_files_apart_from_the_installations() {
    let server = ZServer::start();
    server.set_credentials();
    add_account(&server, "branch");
    let admin = Session::admin(&server);
    assert_eq!(admin.post("/account", &[("account", "branch")]).status, 303);
    let save = |s: &Session, scope: &str, who: &str| {
        s.post(
            "/files/directory",
            &[
                ("scope", scope),
                ("rows", "1"),
                ("c[0].first_name", who),
                ("c[0].contact", "2002"),
            ],
        )
    };
    // The account's own directory, from the console: listed under the account's scope only.
    let r = save(&admin, "account", "Consoleonly");
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(
        r.header("Location")
            .is_some_and(|l| l.starts_with("/files/directory?scope=account")),
        "{:?}",
        r.headers
    );
    let own = admin.get("/files/directory?scope=account").text();
    assert!(
        own.contains("Consoleonly") && own.contains("of account Account branch"),
        "{own}"
    );
    assert!(!admin.get("/files/directory").text().contains("Consoleonly"));
    let page = admin.get("/files?scope=account").text();
    assert!(
        page.contains("Account branch") && page.contains("1 contact"),
        "{page}"
    );
    // An admin of the branch only changes the branch's files, not the installation's.
    user(&server, "bob", &["--account-role", "branch=admin"]);
    let bob = Session::sign_in(&server, "bob", PASSWORD);
    assert_eq!(save(&bob, "account", "Bobs").status, 303);
    assert_eq!(save(&bob, "", "Bobs").status, 403);
    assert!(!bob.get("/files").text().contains("Save directory"));
    // The branch's phones get it; the CLI lists it as the account's.
    let listed = server.cli_ok(&["assets", "list", "--account", "branch"]);
    assert!(listed.contains("000000000000-directory.xml"), "{listed}");
    let base = address(&server, "branch");
    let mut branch = branch_phone(&server);
    let r = branch.get(&format!("{base}000000000000-directory.xml"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("Bobs"), "{}", r.text());
}
