//! Several accounts, each at its own service address; a new service address with the old
//! one kept as an alias until every phone has moved; the audit log of CLI changes.

use serde_json::Value;

use crate::common::*;
use crate::sim::{self, Boot, SimPhone};

const MAC_A: &str = "0004f2bb0001";
const MAC_B: &str = "0004f2bb0002";

fn json(server: &ZServer, args: &[&str]) -> Value {
    let out = server.cli_ok(args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}\n{out}"))
}

/// The service address of an account (`/<slug>-<key>/`).
fn address(server: &ZServer, slug: &str) -> String {
    json(server, &["account", "show", "--account", slug, "--json"])["service_address"]
        .as_str()
        .expect("address")
        .to_string()
}

#[test]
fn each_account_answers_only_at_its_own_service_address_with_its_own_credentials() {
    let server = ZServer::start();
    server.set_credentials();
    server.cli_ok(&[
        "account",
        "add",
        "branch",
        "--name",
        "Branch office",
        "--user",
        "branchphones",
        "--password",
        "Branch-Passw0rd",
    ]);
    let list = json(&server, &["account", "list", "--json"]);
    assert_eq!(list.as_array().expect("list").len(), 2);
    server.cli_ok(&["profile", "add", "office", "--account", "branch"]);
    server.cli_ok(&[
        "device",
        "add",
        MAC_A,
        "--profile",
        "office",
        "--account",
        "branch",
    ]);
    let base = address(&server, "branch");
    assert!(
        base.starts_with("/branch-") && base.ends_with('/'),
        "{base}"
    );
    let show = server.cli_ok(&["account", "show", "--account", "branch"]);
    // The configured port (0 in tests: chosen at start, unknown to the CLI) and the path.
    let dhcp = show
        .lines()
        .find(|l| l.starts_with("DHCP option 160:"))
        .expect("DHCP line");
    assert!(
        dhcp.contains("http://branchphones:********@<this-host>:") && dhcp.ends_with(&base),
        "{dhcp}"
    );
    let server_name = format!("{}{}", server.device, base.trim_end_matches('/'));
    let mut phone = SimPhone::new(MAC_A, &server_name, "branchphones", "Branch-Passw0rd");
    assert_eq!(phone.boot_until_stable(4), Boot::Configured);
    assert_eq!(
        phone.held(sim::SERVER_NAME),
        server_name,
        "kept at its account's address"
    );
    // The default account's credentials do not open the branch, and the branch's device is
    // not served at the default account's address.
    let mut wrong = SimPhone::new(MAC_A, &server_name, "phones", "Test-Passw0rd-42");
    assert!(matches!(wrong.boot(), Boot::Refused { status: 401, .. }));
    let mut elsewhere = SimPhone::new(
        MAC_A,
        &server.device.to_string(),
        "phones",
        "Test-Passw0rd-42",
    );
    elsewhere.boot();
    let master = elsewhere
        .requests()
        .iter()
        .find(|r| r.url.ends_with(&format!("/{MAC_A}.cfg")))
        .expect("asked for its master");
    assert_eq!(master.status, 404, "another account's device");
    assert_eq!(
        elsewhere.held(sim::SERVER_NAME),
        server.device.to_string(),
        "nothing adopted"
    );
}

#[test]
fn a_new_service_address_keeps_the_old_one_until_every_phone_has_moved() {
    let server = ZServer::start();
    server.cli_ok(&[
        "account",
        "add",
        "branch",
        "--user",
        "branchphones",
        "--password",
        "Branch-Passw0rd",
    ]);
    server.cli_ok(&["profile", "add", "office", "--account", "branch"]);
    for mac in [MAC_A, MAC_B] {
        server.cli_ok(&[
            "device",
            "add",
            mac,
            "--profile",
            "office",
            "--account",
            "branch",
        ]);
    }
    // The phones enrol: only a request with a device's own credential proves where it is,
    // so only enrolled phones retire an alias by themselves.
    server.cli_ok(&["enrol", "open", "--minutes", "600", "--account", "branch"]);
    let old = address(&server, "branch");
    let at = |base: &str| format!("{}{}", server.device, base.trim_end_matches('/'));
    let mut phones: Vec<SimPhone> = [MAC_A, MAC_B]
        .iter()
        .map(|m| SimPhone::new(m, &at(&old), "branchphones", "Branch-Passw0rd"))
        .collect();
    for p in &mut phones {
        assert_eq!(p.boot_until_stable(4), Boot::Configured);
    }
    let out = server.cli_ok(&["account", "regenerate-address", "--account", "branch"]);
    assert!(out.contains("stays an alias while 2 device(s)"), "{out}");
    let new = address(&server, "branch");
    assert_ne!(new, old);
    // The first phone polls through the alias, is sent the new address, reboots, arrives
    // there: the alias stays while the second phone still uses it.
    assert_eq!(
        phones[0].boot(),
        Boot::Rebooted(vec![sim::SERVER_NAME.to_string()])
    );
    assert_eq!(phones[0].boot(), Boot::Configured);
    assert_eq!(phones[0].held(sim::SERVER_NAME), at(&new));
    let aliases = server.cli_ok(&["account", "aliases", "--account", "branch"]);
    assert!(
        aliases.contains(&old) && aliases.contains("answered"),
        "{aliases}"
    );
    let err = server.cli_err(&["account", "retire-alias", &old, "--account", "branch"]);
    assert!(
        err.contains("1 phone(s) affected") && err.contains(MAC_B),
        "{err}"
    );
    // The second one moves too: the alias is retired by itself.
    assert_eq!(phones[1].boot_until_stable(4), Boot::Configured);
    assert_eq!(phones[1].held(sim::SERVER_NAME), at(&new));
    let aliases = server.cli_ok(&["account", "aliases", "--account", "branch"]);
    assert!(aliases.contains("retired"), "{aliases}");
    // The retired address is no account's any more: the default account refuses it.
    let mut late = SimPhone::new(MAC_A, &at(&old), "branchphones", "Branch-Passw0rd");
    let r = late.boot();
    assert!(
        matches!(r, Boot::Refused { status: 401, .. }),
        "the retired address is the default account's, and the branch credentials are not its own: {r:?}"
    );
    let audit = server.cli_ok(&["audit"]);
    assert!(
        audit.contains("system:zerotouch  account.retire-alias"),
        "{audit}"
    );
}

#[test]
fn cli_changes_are_audited_as_the_os_user_without_secrets() {
    let server = ZServer::start();
    server.set_credentials();
    server.cli_ok(&["profile", "add", "office"]);
    server.cli_ok(&[
        "device",
        "add",
        MAC_A,
        "--profile",
        "office",
        "--sip-user",
        "1001",
        "--sip-password",
        "Line-Secret-1",
    ]);
    server.cli_ok(&[
        "policy",
        "set",
        "account",
        "reg.1.auth.password",
        "Policy-Secret-2",
    ]);
    server.cli_ok(&["site", "add", "hq"]);
    let out = server.cli_ok(&["audit", "--json"]);
    for secret in ["Test-Passw0rd-42", "Line-Secret-1", "Policy-Secret-2"] {
        assert!(!out.contains(secret), "{secret} in the audit log:\n{out}");
    }
    let entries: Value = serde_json::from_str(&out).expect("json");
    let actions: Vec<&str> = entries
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    for want in [
        "account.set-credentials",
        "profile.add",
        "device.associate",
        "policy.set",
        "site.add",
    ] {
        assert!(actions.contains(&want), "{want} missing: {actions:?}");
    }
    let user = std::env::var("USER").unwrap_or_default();
    let first = &entries[0];
    assert_eq!(first["actor_kind"], "cli");
    if !user.is_empty() {
        assert_eq!(first["actor"], user.as_str());
    }
    assert_eq!(first["after"]["name"], "hq");
}
