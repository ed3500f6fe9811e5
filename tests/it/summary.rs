//! The dashboard's counts (`actions::summary`) agree everywhere: the console's home page,
//! the API's summary, `zerotouch status`, the inventory list each card links to, the
//! Auto-Sync progress and the Overrides list — on a database where phones were seen,
//! rotated past the grace window, locked out, refused with a wrong password, never seen,
//! overridden on the phone and unknown to the account, so no check passes on zeros.

use serde_json::Value;

use crate::common::*;
use crate::sim::{Boot, SimPhone};

const FIRST: &str = "First-Passw0rd";
const SECOND: &str = "Second-Passw0rd";
const ASSOCIATED: usize = 14;

fn mac(i: usize) -> String {
    format!("0004f2{:06x}", 0x2000 + i)
}

fn cli_json(server: &ZServer, args: &[&str]) -> Value {
    let out = server.cli_ok(args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}\n{out}"))
}

/// The number a home-page card shows, found by its `data-key`.
fn card_on_page(page: &str, key: &str) -> Option<u64> {
    let at = page.find(&format!("data-key=\"{key}\""))?;
    let rest = &page[at..];
    let open = rest.find("<strong>")? + "<strong>".len();
    let close = rest[open..].find("</strong>")?;
    rest[open..open + close].trim().parse().ok()
}

/// The account's credentials served to phones on the account credential (Auto-Sync's
/// subject), and a profile `office` that polls.
pub(crate) fn account_with_a_profile(server: &ZServer) {
    server.cli_ok(&[
        "account",
        "set-credentials",
        "--user",
        "phones",
        "--password",
        FIRST,
        "--yes",
    ]);
    server.serve_secrets_to_account();
    server.cli_ok(&["profile", "add", "office", "--polling", "enable"]);
}

/// Phones in every state, among associated devices: the `seen` phones (at least four) come
/// up, the first stores an override made on it, two `strangers` the account does not know
/// ask for their files; then the credentials change: two phones sync within the grace
/// window, the rest are locked out after it, the third keeps trying with what it holds, and
/// someone tries the fourth's MAC with a wrong password.
pub(crate) fn every_state(server: &ZServer, seen: &[String], strangers: [String; 2]) {
    let addr = server.device.to_string();
    let mut phones: Vec<SimPhone> = seen
        .iter()
        .map(|m| SimPhone::new(m, &addr, "phones", FIRST))
        .collect();
    for p in &mut phones {
        assert_eq!(p.boot_until_stable(4), Boot::Configured, "{}", p.mac);
    }
    let mut ovr = server.phone(&seen[0], UA_VVX500_APP);
    let r = ovr.request(
        "PUT",
        &format!("/overrides/{}-phone.cfg", seen[0]),
        br#"<PHONE_CONFIG><OVERRIDES up.backlight.idleIntensity="1"/></PHONE_CONFIG>"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    for m in &strangers {
        SimPhone::new(m, &addr, "phones", FIRST).boot();
    }
    server.cli_ok(&["autosync", "set", "--grace-days", "3"]);
    server.cli_ok(&[
        "account",
        "set-credentials",
        "--user",
        "phones",
        "--password",
        SECOND,
        "--yes",
    ]);
    server.advance_days(2);
    for p in &mut phones[..2] {
        assert_eq!(p.boot_until_stable(4), Boot::Configured, "{}", p.mac);
    }
    server.advance_days(2);
    let r = phones[2].boot();
    assert!(matches!(r, Boot::Refused { status: 401, .. }), "{r:?}");
    let r = SimPhone::new(&seen[3], &addr, "phones", "Wrong-Passw0rd").boot();
    assert!(matches!(r, Boot::Refused { status: 401, .. }), "{r:?}");
    server.wait_recorded(&seen[2]);
    server.wait_recorded(&seen[3]);
}

#[test]
fn the_home_page_the_api_the_cli_and_each_linked_list_agree_on_every_count() {
    let server = ZServer::start_with_clock("");
    account_with_a_profile(&server);
    for i in 0..ASSOCIATED {
        server.cli_ok(&["device", "add", &mac(i), "--profile", "office"]);
    }
    // Ten phones come up; four never do.
    let seen: Vec<String> = (0..10).map(mac).collect();
    every_state(&server, &seen, [mac(100), mac(101)]);

    let token = user_with_token(&server, "bot", "admin", "");
    let api_summary = json(&api(
        &server,
        "GET",
        "/accounts/default/summary",
        Some(&token),
        "",
    ));
    let cli_summary = cli_json(&server, &["status", "--json"]);
    let session = Session::admin(&server);
    let home = session.get("/").text();
    let autosync = cli_json(&server, &["autosync", "status", "--json"]);

    let cards = api_summary["cards"].as_array().expect("cards");
    assert!(cards.len() >= 12, "{api_summary}");
    for card in cards {
        let key = card["key"].as_str().expect("key");
        let count = card["count"].as_u64().expect("count");
        // The CLI prints the same summary.
        let cli_card = cli_summary["cards"]
            .as_array()
            .expect("cli cards")
            .iter()
            .find(|c| c["key"] == key)
            .unwrap_or_else(|| panic!("no `{key}` in the CLI's summary"));
        assert_eq!(cli_card["count"].as_u64(), Some(count), "CLI, {key}");
        // The home page shows it.
        assert_eq!(card_on_page(&home, key), Some(count), "home page, {key}");
        // The list it links to holds exactly that many devices.
        if let Some(kind @ ("state" | "flag")) = card["filter"]["kind"].as_str() {
            let value = card["filter"]["value"].as_str().expect("value");
            let inv = json(&api(
                &server,
                "GET",
                &format!("/accounts/default/inventory?{kind}={value}&per_page=1"),
                Some(&token),
                "",
            ));
            assert_eq!(inv["matched"].as_u64(), Some(count), "inventory, {key}");
            let page = session
                .get(&format!("/accounts/default/inventory?{kind}={value}"))
                .text();
            assert_eq!(
                page.matches("<tr class=\"device\"").count(),
                count as usize,
                "inventory page rows, {key}"
            );
        }
    }
    let count = |key: &str| -> u64 {
        cards
            .iter()
            .find(|c| c["key"] == key)
            .and_then(|c| c["count"].as_u64())
            .unwrap_or_else(|| panic!("no card `{key}`"))
    };
    // Auto-Sync's page counts the same phones (never-seen ones are not synced).
    let len = |v: &Value| v.as_array().map_or(0, Vec::len) as u64;
    assert_eq!(len(&autosync["locked_out"]), count("locked-out"));
    assert_eq!(len(&autosync["pending"]), count("credentials-pending"));
    assert_eq!(len(&autosync["never_seen"]), count("never-seen"));
    assert_eq!(
        autosync["synced"].as_u64().expect("synced")
            + count("locked-out")
            + count("credentials-pending")
            + count("never-seen"),
        ASSOCIATED as u64
    );
    // The Overrides list shows the same devices.
    let overrides = server.cli_ok(&["overrides", "list", "--account", "default"]);
    assert_eq!(
        overrides
            .lines()
            .filter(|l| l.starts_with("0004f2"))
            .count() as u64,
        count("overridden"),
        "{overrides}"
    );
    // What this fixture made is what the counts say: nothing passes on zeros.
    assert_eq!(count("never-seen"), 4);
    assert_eq!(count("unassociated"), 2);
    assert_eq!(count("locked-out"), 8, "ten seen, two synced in time");
    assert_eq!(count("auth-failing"), 1, "{api_summary}");
    assert_eq!(count("overridden"), 1);
    // Totals add up.
    let n = |k: &str| api_summary[k].as_u64().expect(k);
    assert_eq!(n("devices"), n("associated") + n("unassociated"));
    assert_eq!(n("associated"), ASSOCIATED as u64);
    let states: u64 = api_summary["by_state"]
        .as_object()
        .expect("states")
        .values()
        .map(|v| v.as_u64().unwrap_or(0))
        .sum();
    assert_eq!(states, n("devices"));
    assert_eq!(
        count("staged") + count("provisioned-active") + count("provisioned"),
        n("associated")
    );
    // The checklist: credentials, a profile, a device and a phone that asked are done; no
    // probe has run.
    let steps = api_summary["checklist"].as_array().expect("checklist");
    let done: Vec<&str> = steps
        .iter()
        .filter(|s| s["done"] == true)
        .map(|s| s["key"].as_str().expect("key"))
        .collect();
    assert_eq!(done, ["credentials", "profile", "device", "dhcp"]);
    assert!(home.contains("Getting started"), "{home}");
    // Auto-Sync's burn-down ends where the state machine stands: every associated device
    // but the synced ones still to take the generation.
    let burn = &api_summary["burn_down"];
    let pending = burn["pending"].as_array().expect("burn-down");
    assert_eq!(
        pending.last().and_then(|v| v.as_u64()),
        Some(ASSOCIATED as u64 - autosync["synced"].as_u64().expect("synced")),
        "{burn}"
    );
    assert_eq!(burn["devices"], ASSOCIATED as u64);
    assert!(home.contains("id=\"burn-down\""), "{home}");
    // The human form of `status` says the same.
    let text = server.cli_ok(&["status"]);
    assert!(
        text.lines()
            .any(|l| l.starts_with('!') && l.contains("locked out") && l.contains(" 8 ")),
        "{text}"
    );
}
