//! Bulk actions on the device list (`actions::bulk`, the console's `inventory/bulk`),
//! driven side by side with a reference model by random sequences (proptest; shrunk to a
//! minimal sequence on failure). Invariants checked after every step, against the API's
//! inventory:
//! - the count the confirmation page shows is the model's selection, and showing it
//!   changes nothing;
//! - a confirmed action changes exactly the selected devices, as the model says;
//! - a confirmation whose count is stale (the filter's matches changed) is refused with
//!   409 and changes nothing; a selection naming a device that is not there is refused
//!   whole (404), every other device unchanged;
//! - the CSV export of a selection has one line per selected device.
//!
//! `BULK_CASES` runs more sequences (default 4 in the suite), `BULK_STEPS` longer ones.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

use crate::common::*;

const DEVICES: usize = 10;
const SITES: [&str; 2] = ["hq", "branch"];
const GROUPS: [&str; 2] = ["g1", "g2"];
const PROFILES: [&str; 2] = ["office", "lobby"];

fn mac(i: usize) -> String {
    format!("0004f2bb{i:04x}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Dev {
    profile: String,
    site: Option<String>,
    groups: BTreeSet<String>,
}

#[derive(Debug, Clone)]
enum Sel {
    Ticked(Vec<usize>),
    /// `(field, value)` of the list's filter.
    All(&'static str, &'static str),
}

#[derive(Debug, Clone)]
enum Act {
    Site(Option<usize>),
    GroupAdd(usize),
    GroupRemove(usize),
    Profile(usize),
    Delete,
}

#[derive(Debug, Clone)]
enum Step {
    Bulk(Act, Sel),
    /// Confirm with a count one off what the selection holds now.
    Stale(Act, Sel),
    /// Tick a device that was never added besides the others.
    Missing(Act, Vec<usize>),
    Export(Sel),
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        prop::option::of(0..SITES.len()).prop_map(Act::Site),
        (0..GROUPS.len()).prop_map(Act::GroupAdd),
        (0..GROUPS.len()).prop_map(Act::GroupRemove),
        (0..PROFILES.len()).prop_map(Act::Profile),
        Just(Act::Delete),
    ]
}

fn sel() -> impl Strategy<Value = Sel> {
    prop_oneof![
        3 => prop::collection::vec(0..DEVICES, 1..5).prop_map(Sel::Ticked),
        1 => prop_oneof![
            Just(Sel::All("site", "hq")),
            Just(Sel::All("group", "g1")),
            Just(Sel::All("q", "lobby")),
            Just(Sel::All("state", "staged")),
        ],
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (act(), sel()).prop_map(|(a, s)| Step::Bulk(a, s)),
        1 => (act(), sel()).prop_map(|(a, s)| Step::Stale(a, s)),
        1 => (act(), prop::collection::vec(0..DEVICES, 0..3)).prop_map(|(a, t)| Step::Missing(a, t)),
        1 => sel().prop_map(Step::Export),
    ]
}

struct Model(BTreeMap<String, Dev>);

impl Model {
    /// The MACs a selection names that the model holds (ticked ones that were deleted are
    /// not in the list: the console offers only listed devices).
    fn select(&self, s: &Sel) -> Vec<String> {
        match s {
            Sel::Ticked(ix) => {
                let set: BTreeSet<String> = ix.iter().map(|i| mac(*i)).collect();
                set.into_iter().filter(|m| self.0.contains_key(m)).collect()
            }
            Sel::All(field, value) => self
                .0
                .iter()
                .filter(|(_, d)| match *field {
                    "site" => d.site.as_deref() == Some(value),
                    "group" => d.groups.contains(*value),
                    "q" => d.profile.contains(value),
                    _ => true,
                })
                .map(|(m, _)| m.clone())
                .collect(),
        }
    }

    fn apply(&mut self, a: &Act, macs: &[String]) {
        for m in macs {
            match a {
                Act::Delete => {
                    self.0.remove(m);
                }
                _ => {
                    let d = self.0.get_mut(m).expect("selected");
                    match a {
                        Act::Site(s) => d.site = s.map(|i| SITES[i].to_string()),
                        Act::GroupAdd(g) => {
                            d.groups.insert(GROUPS[*g].to_string());
                        }
                        Act::GroupRemove(g) => {
                            d.groups.remove(GROUPS[*g]);
                        }
                        Act::Profile(p) => d.profile = PROFILES[*p].to_string(),
                        Act::Delete => {}
                    }
                }
            }
        }
    }
}

fn action_fields(a: &Act) -> (&'static str, String) {
    match a {
        Act::Site(s) => ("site", format!("site:{}", s.map_or("", |i| SITES[i]))),
        Act::GroupAdd(g) => ("group-add", format!("group:{}", GROUPS[*g])),
        Act::GroupRemove(g) => ("group-remove", format!("group:{}", GROUPS[*g])),
        Act::Profile(p) => ("profile", format!("profile:{}", PROFILES[*p])),
        Act::Delete => ("delete", String::new()),
    }
}

/// The form of a bulk post: action, value, selection, and `extra` fields.
fn form(a: &Act, s: &Sel, macs: &[String], extra: &[(&str, String)]) -> Vec<(String, String)> {
    let (action, value) = action_fields(a);
    let mut f = vec![
        ("action".to_string(), action.to_string()),
        ("value".to_string(), value),
    ];
    match s {
        Sel::Ticked(_) => {
            f.push(("scope".into(), "selected".into()));
            f.extend(macs.iter().map(|m| ("mac".to_string(), m.clone())));
        }
        Sel::All(field, value) => {
            f.push(("scope".into(), "all".into()));
            f.push((field.to_string(), value.to_string()));
        }
    }
    f.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    f
}

fn post(s: &Session, f: &[(String, String)]) -> Resp {
    let fields: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    s.post("/accounts/default/inventory/bulk", &fields)
}

/// What the server holds, from the API's inventory.
fn server_state(server: &ZServer, token: &str) -> BTreeMap<String, Dev> {
    let inv = json(&api(
        server,
        "GET",
        "/accounts/default/inventory?per_page=1000",
        Some(token),
        "",
    ));
    inv["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .map(|d: &Value| {
            (
                d["mac"].as_str().expect("mac").to_string(),
                Dev {
                    profile: d["profile"].as_str().unwrap_or("").to_string(),
                    site: d["site"].as_str().map(String::from),
                    groups: d["groups"]
                        .as_array()
                        .expect("groups")
                        .iter()
                        .map(|g| g.as_str().expect("group").to_string())
                        .collect(),
                },
            )
        })
        .collect()
}

/// The count a confirmation page shows.
fn shown_count(page: &str) -> usize {
    let at = page
        .find("<p class=\"count\"><strong>")
        .unwrap_or_else(|| panic!("no count: {page}"));
    let rest = &page[at + "<p class=\"count\"><strong>".len()..];
    rest[..rest.find('<').expect("end")]
        .parse()
        .expect("number")
}

fn run_sequence(steps: &[Step]) -> Result<(), TestCaseError> {
    let server = ZServer::start();
    for p in PROFILES {
        server.cli_ok(&["profile", "add", p]);
    }
    for s in SITES {
        server.cli_ok(&["site", "add", s]);
    }
    for (i, g) in GROUPS.iter().enumerate() {
        server.cli_ok(&["group", "add", g, "--priority", &(i + 1).to_string()]);
    }
    let mut model = Model(BTreeMap::new());
    for i in 0..DEVICES {
        server.cli_ok(&["device", "add", &mac(i), "--profile", "office"]);
        model.0.insert(
            mac(i),
            Dev {
                profile: "office".into(),
                site: None,
                groups: BTreeSet::new(),
            },
        );
    }
    let token = user_with_token(&server, "bot", "admin", "");
    let s = Session::admin(&server);
    for (n, step) in steps.iter().enumerate() {
        match step {
            Step::Bulk(a, sel) => {
                let macs = model.select(sel);
                let f = form(a, sel, &macs, &[]);
                let r = post(&s, &f);
                if macs.is_empty() {
                    prop_assert!(r.status == 422 || r.status == 200, "step {n}: {}", r.status);
                    if r.status == 200 {
                        prop_assert_eq!(shown_count(&r.text()), 0);
                    }
                    continue;
                }
                prop_assert_eq!(r.status, 200, "step {}: {}", n, r.text());
                prop_assert_eq!(shown_count(&r.text()), macs.len(), "step {}", n);
                prop_assert_eq!(
                    &server_state(&server, &token),
                    &model.0,
                    "step {}: preview changed",
                    n
                );
                let f = form(
                    a,
                    sel,
                    &macs,
                    &[
                        ("confirm", "yes".into()),
                        ("expected", macs.len().to_string()),
                    ],
                );
                let r = post(&s, &f);
                prop_assert_eq!(r.status, 200, "step {}: {}", n, r.text());
                prop_assert!(r.text().contains("Done:"), "step {}: {}", n, r.text());
                model.apply(a, &macs);
            }
            Step::Stale(a, sel) => {
                let macs = model.select(sel);
                if macs.is_empty() {
                    continue;
                }
                let f = form(
                    a,
                    sel,
                    &macs,
                    &[
                        ("confirm", "yes".into()),
                        ("expected", (macs.len() + 1).to_string()),
                    ],
                );
                let r = post(&s, &f);
                prop_assert_eq!(r.status, 409, "step {}: {}", n, r.text());
                prop_assert!(r.text().contains("selection changed"), "step {}", n);
            }
            Step::Missing(a, ticked) => {
                let mut macs = model.select(&Sel::Ticked(ticked.clone()));
                macs.push("0004f2ffffff".to_string());
                let sel = Sel::Ticked(Vec::new());
                let f = form(
                    a,
                    &sel,
                    &macs,
                    &[
                        ("confirm", "yes".into()),
                        ("expected", macs.len().to_string()),
                    ],
                );
                let r = post(&s, &f);
                prop_assert_eq!(r.status, 404, "step {}: {}", n, r.text());
                prop_assert!(r.text().contains("0004f2ffffff"), "step {}", n);
            }
            Step::Export(sel) => {
                let macs = model.select(sel);
                let f = form(&Act::Delete, sel, &macs, &[]);
                let mut f: Vec<(String, String)> =
                    f.into_iter().filter(|(k, _)| k != "action").collect();
                f.push(("action".into(), "export".into()));
                let r = post(&s, &f);
                if macs.is_empty() {
                    continue;
                }
                prop_assert_eq!(r.status, 200, "step {}: {}", n, r.text());
                let csv = r.text();
                prop_assert_eq!(csv.lines().count(), macs.len() + 1, "step {}: {}", n, csv);
                for m in &macs {
                    prop_assert!(csv.contains(m.as_str()), "step {}: {} not in {}", n, m, csv);
                }
            }
        }
        prop_assert_eq!(
            &server_state(&server, &token),
            &model.0,
            "after step {}: {:?}",
            n,
            step
        );
    }
    Ok(())
}

#[test]
fn random_bulk_actions_change_exactly_what_the_model_says() {
    let cases: u32 = std::env::var("BULK_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let steps: usize = std::env::var("BULK_STEPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let mut runner = TestRunner::new(Config {
        cases,
        max_shrink_iters: 200,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&prop::collection::vec(step(), 1..=steps), |steps| {
            run_sequence(&steps)
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn the_api_previews_counts_and_confirms_like_the_console() {
    let server = ZServer::start();
    let t = user_with_token(&server, "bot", "admin", "");
    server.cli_ok(&["profile", "add", "office"]);
    server.cli_ok(&["site", "add", "hq"]);
    for i in 0..4 {
        server.cli_ok(&["device", "add", &mac(i), "--profile", "office"]);
    }
    // One phone asked for its files: deleting it strands it.
    server.set_credentials();
    let mut phone = server.phone(&mac(0), UA_VVX500_APP);
    assert_eq!(phone.get(&format!("/{}.cfg", mac(0))).status, 200);
    server.wait_recorded(&mac(0));
    let bulk = |body: serde_json::Value| {
        api(
            &server,
            "POST",
            "/accounts/default/devices/bulk",
            Some(&t),
            &body.to_string(),
        )
    };
    // A dry run of a filter: the count and the MACs, nothing changed.
    let r = bulk(
        serde_json::json!({"action": "site", "value": "hq", "filter": {"q": "0004f2bb"}, "dry_run": true}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(json(&r)["count"], 4);
    assert!(
        server
            .cli_ok(&["inventory", "--site", "hq"])
            .contains("states:")
    );
    assert_eq!(
        json(&api(
            &server,
            "GET",
            "/accounts/default/inventory?site=hq",
            Some(&t),
            ""
        ))["matched"],
        0
    );
    // A filter without the count it matched is refused, naming the field; a stale count too.
    let r = bulk(serde_json::json!({"action": "site", "value": "hq", "filter": {"q": "0004f2bb"}}));
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("expected"), "{}", r.text());
    let r = bulk(
        serde_json::json!({"action": "site", "value": "hq", "filter": {"q": "0004f2bb"}, "expected": 3}),
    );
    assert_eq!(r.status, 409, "{}", r.text());
    let r = bulk(
        serde_json::json!({"action": "site", "value": "hq", "filter": {"q": "0004f2bb"}, "expected": 4}),
    );
    assert_eq!(
        (r.status, json(&r)["changed"].as_u64()),
        (200, Some(4)),
        "{}",
        r.text()
    );
    // Deleting two devices, one of them seen: 409 names that phone and why; then confirmed.
    let macs = serde_json::json!([mac(0), "00:04:F2:BB:00:01"]);
    let r = bulk(serde_json::json!({"action": "delete", "macs": macs}));
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(
        r.text().contains(&mac(0)) && !r.text().contains(&mac(1)),
        "{}",
        r.text()
    );
    assert!(
        server.cli_ok(&["device", "list"]).contains(&mac(1)),
        "nothing deleted"
    );
    let r = bulk(serde_json::json!({"action": "delete", "macs": macs, "confirm": true}));
    assert_eq!(r.status, 200, "{}", r.text());
    let list = server.cli_ok(&["device", "list"]);
    assert!(
        !list.contains(&mac(0)) && !list.contains(&mac(1)) && list.contains(&mac(2)),
        "{list}"
    );
    // A bad MAC is named by its place; an unknown action by its field.
    let r = bulk(serde_json::json!({"action": "delete", "macs": [mac(2), "nope"]}));
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("macs[1]"), "{}", r.text());
    let r = bulk(serde_json::json!({"action": "paint", "macs": [mac(2)]}));
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("action"), "{}", r.text());
    // The CLI: the same action, counted first.
    let out = server.cli_ok(&[
        "device",
        "bulk",
        "site",
        "--all",
        "--site",
        "hq",
        "--dry-run",
    ]);
    assert!(out.contains("Take 2 devices out of their site"), "{out}");
    assert_eq!(
        json(&api(
            &server,
            "GET",
            "/accounts/default/inventory?site=hq",
            Some(&t),
            ""
        ))["matched"],
        2,
        "a dry run changes nothing"
    );
    let out = server.cli_ok(&["device", "bulk", "site", "--all", "--site", "hq"]);
    assert!(
        out.contains("done: Take 2 devices out of their site"),
        "{out}"
    );
    let err = server.cli_err(&["device", "bulk", "profile", "--mac", &mac(2)]);
    assert!(err.contains("value"), "{err}");
    // The audit log has one entry per device changed.
    let audit = server.cli_ok(&["audit", "--json", "--limit", "200"]);
    assert_eq!(audit.matches("device.set-site").count(), 6, "{audit}");
    assert_eq!(audit.matches("device.delete").count(), 2, "{audit}");
}
