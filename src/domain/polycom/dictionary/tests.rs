//! Tests of the parameter dictionary: the built-in data is well-formed and agrees with the
//! parameter table and the state machine; lookups, ranges, value types and near misses.

use super::*;
use crate::domain::machine;
use crate::domain::polycom::models::Family;
use crate::domain::polycom::params;

/// A concrete name for an entry: each index at the low end of its range.
fn concrete(e: &Entry) -> String {
    let mut r = e.ranges.iter();
    e.pattern
        .split('.')
        .map(|s| match s {
            "N" => r.next().map_or(1, |(lo, _)| *lo).to_string(),
            "*" => "sip".to_string(),
            s => s.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

#[test]
fn every_built_in_entry_is_well_formed() {
    let d = builtin();
    assert!(d.entries().len() >= 300, "{}", d.entries().len());
    for e in d.entries() {
        assert!(!e.description.is_empty(), "{}", e.name);
        assert_eq!(
            e.pattern.split('.').filter(|s| *s == "N").count(),
            e.ranges.len(),
            "{}",
            e.name
        );
        if let Some(def) = &e.default {
            assert!(
                e.check_value(def).is_ok(),
                "{}: default {def} is not {}",
                e.name,
                e.allowed()
            );
        }
        if let Kind::Int { min, max } = e.kind {
            assert!(min <= max, "{}", e.name);
        }
        let name = concrete(e);
        let found = d
            .lookup(&name)
            .unwrap_or_else(|| panic!("{name} not found"));
        assert_eq!(found.entry, e, "{name}");
        assert_eq!(found.bad_index, None, "{name}");
        // The flags agree with the rules the rest of the code applies.
        assert_eq!(e.owned, machine::owned(&name), "owned flag of {name}");
        if e.secret {
            assert!(params::is_secret(&name), "secret flag of {name}");
        }
    }
}

#[test]
fn every_parameter_zerotouch_renders_or_owns_is_in_the_dictionary() {
    let d = builtin();
    for family in [Family::Vvx, Family::PolyOs] {
        for def in params::table(family) {
            let name = params::name(family, def.key, 1).expect("name");
            let e = d.lookup(&name).unwrap_or_else(|| panic!("{name}")).entry;
            assert_eq!(e.secret, def.secret, "secret flag of {name}");
            assert_eq!(e.owned, machine::owned(&name), "owned flag of {name}");
            if params::is_device_param(&name) && name != "device.set" {
                let set = format!("{name}.set");
                assert_eq!(d.lookup(&set).map(|f| &f.entry.kind), Some(&Kind::Bool));
            }
        }
    }
    for owned in [
        "device.prov.upgradeServer",
        "device.prov.ztpEnabled",
        "device.set",
    ] {
        assert!(d.lookup(owned).is_some_and(|f| f.entry.owned), "{owned}");
    }
}

#[test]
fn indexed_names_are_found_with_their_ranges_checked() {
    let d = builtin();
    let f = d.lookup("reg.12.server.2.transport").expect("known");
    assert_eq!(f.entry.pattern, "reg.N.server.N.transport");
    assert_eq!(f.bad_index, None);
    assert_eq!(
        d.lookup("reg.99.address").expect("known").bad_index,
        Some((0, 99))
    );
    assert_eq!(
        d.lookup("reg.1.server.9.port").expect("known").bad_index,
        Some((1, 9))
    );
    assert!(
        d.lookup("voice.handset.st.VVX501").is_some(),
        "per-model value"
    );
    assert!(d.lookup("log.level.change.sip").is_some(), "any module");
    assert!(
        d.lookup("powerSaving.officeHours.duration.monday")
            .is_some()
    );
    assert!(
        d.lookup("powerSaving.officeHours.duration.someday")
            .is_none()
    );
    assert!(d.lookup("device.sntp.serverName.set").is_some());
    assert!(
        d.lookup("reg.1.address.set").is_none(),
        ".set only for device.*"
    );
    assert!(d.lookup("up.totallyMadeUp.param").is_none());
}

#[test]
fn values_are_checked_against_their_type() {
    let d = builtin();
    let check = |n: &str, v: &str| d.lookup(n).expect(n).entry.check_value(v);
    assert_eq!(
        check("up.backlight.idleIntensity", "banana").expect_err("enum"),
        "one of 0, 1, 2, 3"
    );
    check("up.backlight.idleIntensity", "2").expect("in the list");
    check("up.backlight.idleIntensity", "").expect("empty means default");
    assert!(check("prov.polling.enabled", "yes").is_err());
    check("prov.polling.enabled", "1").expect("bool");
    check("sec.TLS.cert.validatePeer.enable", "false").expect("Poly OS bool");
    let err = check("tcpIpApp.sntp.gmtOffset", "99999").expect_err("range");
    assert!(err.contains("-43200 to 50400"), "{err}");
    check("tcpIpApp.sntp.gmtOffset", "-18000").expect("in range");
    assert!(
        check("reg.1.server.1.transport", "udp").is_err(),
        "case matters"
    );
    assert!(
        check("mb.main.home", "www.example.com").is_err(),
        "needs a scheme"
    );
    check("mb.main.home", "http://www.example.com/idle").expect("url");
    check("reg.1.server.1.address", "sip.example.com:5061").expect("host");
    check("device.prov.serverName", "https://prov.example.com/p").expect("url as host");
    assert!(check("reg.1.server.1.address", "two words").is_err());
    assert!(check("up.idleTimeout", "ten").is_err());
}

#[test]
fn a_name_one_or_two_edits_from_a_known_one_is_a_near_miss() {
    let d = builtin();
    assert_eq!(
        d.near_miss("reg.1.adress").as_deref(),
        Some("reg.1.address")
    );
    assert_eq!(
        d.near_miss("reg.3.auth.userid").as_deref(),
        Some("reg.3.auth.userId")
    );
    assert_eq!(
        d.near_miss("reg.2.server.1.trasnport").as_deref(),
        Some("reg.2.server.1.transport")
    );
    assert_eq!(
        d.near_miss("device.sntp.serverNme.set").as_deref(),
        Some("device.sntp.serverName.set")
    );
    assert_eq!(
        d.near_miss("up.totallyMadeUp.param"),
        None,
        "far from everything"
    );
    assert_eq!(d.near_miss("reg.1.address"), None, "known");
    // Digits only: another slot, not a typo.
    assert_eq!(d.near_miss("device.sec.TLS.customCaCert3"), None);
    // An index segment only: a per-line variant, not a typo.
    assert_eq!(d.near_miss("up.7.idleTimeout"), None);
}

#[test]
fn the_banded_distance_agrees_with_the_plain_one() {
    fn plain(a: &[u8], b: &[u8]) -> usize {
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for i in 1..=a.len() {
            let mut cur = vec![i; b.len() + 1];
            for j in 1..=b.len() {
                let c = usize::from(a[i - 1] != b[j - 1]);
                cur[j] = (prev[j - 1] + c).min(prev[j] + 1).min(cur[j - 1] + 1);
            }
            prev = cur;
        }
        prev[b.len()]
    }
    let words = [
        "",
        "a",
        "ab",
        "reg.N.address",
        "reg.N.adress",
        "reg.N.addresss",
        "gre.N.address",
        "reg.N.label",
        "rge.N.adress",
        "abc",
        "acb",
        "bca",
    ];
    for a in words {
        for b in words {
            let want = plain(a.as_bytes(), b.as_bytes());
            let got = distance_within(a.as_bytes(), b.as_bytes(), 2);
            assert_eq!(got, (want <= 2).then_some(want), "{a} / {b}");
        }
    }
}

#[test]
fn malformed_lines_are_refused_naming_the_line() {
    let bad = [
        "a.b\tbool\t-\tucs\t-\tzt",
        "a.b\tnumber\t-\tucs\t-\tzt\tx",
        "a.[3-1].b\tbool\t-\tucs\t-\tzt\tx",
        "a.b\tint:5..1\t-\tucs\t-\tzt\tx",
        "a.b\tbool\t-\tmars\t-\tzt\tx",
        "a.b\tbool\t-\tucs\tloud\tzt\tx",
        "a.b\tbool\t-\tucs\t-\tzt\t-",
        "a..b\tbool\t-\tucs\t-\tzt\tx",
    ];
    for line in bad {
        let err = Dictionary::parse(&format!("# c\n{line}\n")).expect_err(line);
        assert!(err.starts_with("line 2:"), "{line}: {err}");
    }
    let twice = "a.b\tbool\t-\tucs\t-\tzt\tx\na.b\tbool\t-\tucs\t-\tzt\ty\n";
    assert!(
        Dictionary::parse(twice)
            .expect_err("twice")
            .contains("twice")
    );
}

#[test]
fn search_finds_entries_by_name_or_by_words_of_their_description() {
    let d = builtin();
    let names = |q: &str| -> Vec<String> {
        d.search(q, true, 50)
            .iter()
            .map(|e| e.name.clone())
            .collect()
    };
    assert_eq!(names("Polling SCHEDULE"), ["prov.polling.mode"]);
    assert_eq!(names("prov.polling.period")[0], "prov.polling.period");
    // Owned parameters are not offered to a policy.
    assert!(
        names("provisioning server")
            .iter()
            .all(|n| !n.starts_with("device.prov."))
    );
    assert!(
        d.search("provisioning server", false, 50)
            .iter()
            .any(|e| e.owned)
    );
    assert!(names("  ").is_empty());
    assert_eq!(d.search("reg", true, 3).len(), 3);
}

#[test]
fn an_entry_names_its_first_concrete_parameter() {
    let d = builtin();
    let e = d.lookup("reg.7.server.2.port").expect("known").entry;
    assert_eq!(e.first_name().as_deref(), Some("reg.1.server.1.port"));
    let plain = d.lookup("prov.polling.mode").expect("known").entry;
    assert_eq!(plain.first_name().as_deref(), Some("prov.polling.mode"));
}
