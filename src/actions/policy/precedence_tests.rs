//! The precedence of docs/design.md §5, every pair of levels: the device (its policy), its
//! groups, its site, the account policy, the profile's fields, the profile's files. For
//! each pair the same parameter is set at both levels and the higher one must win, with its
//! source.

use rusqlite::Connection;

use super::*;
use crate::actions::accounts::find_account;
use crate::actions::render::{self, As};
use crate::domain::device::{DeviceInput, VendorExtensions};
use crate::domain::polycom::render::EffectiveParam;
use crate::domain::profile::ProfileFields;
use crate::domain::provstate::Reach;

const MAC: &str = "0004f2000001";
const PARAM: &str = "lcl.ml.lang";

/// The levels, highest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Device,
    Group,
    Site,
    Account,
    ProfileField,
    ProfileFile,
}

const LEVELS: [Level; 6] = [
    Level::Device,
    Level::Group,
    Level::Site,
    Level::Account,
    Level::ProfileField,
    Level::ProfileFile,
];

impl Level {
    fn value(self) -> String {
        format!("{self:?}_value")
    }

    fn source(self) -> Source {
        match self {
            Level::Device => Source::Device,
            Level::Group => Source::Group,
            Level::Site => Source::Site,
            Level::Account => Source::Account,
            Level::ProfileField => Source::Profile,
            Level::ProfileFile => Source::ProfileFile,
        }
    }
}

fn actor() -> Actor {
    Actor::person("tester")
}

/// A device with a profile, a site and a group, and `PARAM` set at each of `levels`.
fn with_levels(levels: &[Level]) -> (Connection, Account) {
    let mut conn = db::open_in_memory().expect("db");
    let a = find_account(&conn, None).expect("account");
    let fields = ProfileFields {
        name: "office".into(),
        vendor_model: "Polycom_UCS_Device".into(),
        language: if levels.contains(&Level::ProfileField) {
            Level::ProfileField.value()
        } else {
            String::new()
        },
        ..Default::default()
    };
    let files = if levels.contains(&Level::ProfileFile) {
        vec![(
            "site.cfg".to_string(),
            format!("<c {PARAM}=\"{}\"/>", Level::ProfileFile.value()).into_bytes(),
        )]
    } else {
        vec![("site.cfg".to_string(), b"<c up.x=\"1\"/>".to_vec())]
    };
    crate::actions::testing::add_profile(&mut conn, &a, &fields, files).expect("profile");
    let input = DeviceInput {
        mac: MAC.into(),
        profile: "office".into(),
        ..Default::default()
    };
    crate::actions::testing::add_device(&mut conn, &a, &input).expect("device");
    let mac: Mac = MAC.parse().expect("mac");
    add_site(&mut conn, &actor(), &a, "hq", "").expect("site");
    assign_site(&mut conn, &actor(), &a, Some("hq"), &[mac]).expect("assign");
    add_group(&mut conn, &actor(), &a, "lobby", 0, "").expect("group");
    set_membership(&mut conn, &actor(), &a, "lobby", &[mac], true).expect("member");
    for level in levels {
        let target = match level {
            Level::Device => Target::Device(mac),
            Level::Group => Target::Group("lobby".into()),
            Level::Site => Target::Site("hq".into()),
            Level::Account => Target::Account,
            Level::ProfileField | Level::ProfileFile => continue,
        };
        set_policy(&mut conn, &actor(), &a, &target, PARAM, &level.value()).expect("policy");
    }
    (conn, a)
}

fn effective(conn: &Connection, param: &str) -> Option<EffectiveParam> {
    let reach = Reach {
        host: "10.0.0.1".into(),
        base_path: "/".into(),
        secure: false,
    };
    render::explain_device(conn, &MAC.parse().expect("mac"), &reach, As::Device, None)
        .expect("explain")
        .into_iter()
        .find(|p| p.name == param)
}

#[test]
fn every_level_alone_reaches_the_device_with_its_source() {
    for level in LEVELS {
        let (conn, _) = with_levels(&[level]);
        let got = effective(&conn, PARAM).expect("set");
        assert_eq!(
            (got.value, got.source),
            (level.value(), level.source()),
            "{level:?}"
        );
    }
}

#[test]
fn for_every_pair_of_levels_the_higher_one_wins() {
    let mut pairs = 0;
    for (i, high) in LEVELS.iter().enumerate() {
        for low in &LEVELS[i + 1..] {
            let (conn, _) = with_levels(&[*high, *low]);
            let got = effective(&conn, PARAM).expect("set");
            assert_eq!(
                (got.value.as_str(), got.source),
                (high.value().as_str(), high.source()),
                "{high:?} must beat {low:?}"
            );
            pairs += 1;
        }
    }
    assert_eq!(pairs, 15);
}

#[test]
fn the_generated_file_carries_the_winner_before_the_profile_file() {
    let (conn, _) = with_levels(&[Level::Site, Level::ProfileFile]);
    let reach = Reach {
        host: "10.0.0.1".into(),
        base_path: "/".into(),
        secure: false,
    };
    let (account, data) = render::load(&conn, &MAC.parse().expect("mac")).expect("parts");
    let view = data
        .view(&account, &reach, None, &data.layers, None)
        .expect("associated");
    let (generated, _) = view.device_file();
    let text = String::from_utf8(generated).expect("utf-8");
    assert!(text.contains("lcl.ml.lang=\"Site_value\""), "{text}");
    let master = String::from_utf8(view.master_file()).expect("utf-8");
    let device_at = master.find("-device.cfg").expect("generated listed");
    let profile_at = master.find("-profile.cfg").expect("profile listed");
    assert!(
        device_at < profile_at,
        "the generated file comes first: {master}"
    );
}

#[test]
fn of_two_groups_the_higher_priority_wins_and_equal_priorities_go_to_the_older_group() {
    let (mut conn, a) = with_levels(&[]);
    let mac: Mac = MAC.parse().expect("mac");
    for (name, priority) in [("low", 1), ("high", 5)] {
        add_group(&mut conn, &actor(), &a, name, priority, "").expect("group");
        set_membership(&mut conn, &actor(), &a, name, &[mac], true).expect("member");
        set_policy(
            &mut conn,
            &actor(),
            &a,
            &Target::Group(name.into()),
            PARAM,
            name,
        )
        .expect("policy");
    }
    let got = effective(&conn, PARAM).expect("set");
    assert_eq!(got.value, "high");
    assert_eq!(got.detail, "group high (priority 5)");
    // Equal priorities: the older group (lower id) wins, whatever the names.
    set_group_priority(&mut conn, &actor(), &a, "high", 1).expect("priority");
    let got = effective(&conn, PARAM).expect("set");
    assert_eq!(got.value, "low", "`low` was created first");
    // A group beats the site even at a lower priority.
    set_policy(
        &mut conn,
        &actor(),
        &a,
        &Target::Site("hq".into()),
        PARAM,
        "site",
    )
    .expect("site");
    assert_eq!(effective(&conn, PARAM).expect("set").source, Source::Group);
}

#[test]
fn within_the_device_its_vendor_extensions_come_before_its_policy() {
    let (mut conn, a) = with_levels(&[]);
    let mac: Mac = MAC.parse().expect("mac");
    let id: i64 = conn
        .query_row("SELECT id FROM devices WHERE mac = ?1", [MAC], |r| r.get(0))
        .expect("id");
    let ext = VendorExtensions {
        polling: "1".into(),
        ..Default::default()
    };
    conn.execute(
        "UPDATE devices SET polling = ?2 WHERE id = ?1",
        rusqlite::params![id, ext.polling],
    )
    .expect("polling");
    set_policy(
        &mut conn,
        &actor(),
        &a,
        &Target::Device(mac),
        "prov.polling.enabled",
        "0",
    )
    .expect("policy");
    let got = effective(&conn, "prov.polling.enabled").expect("set");
    assert_eq!((got.value.as_str(), got.source), ("1", Source::Device));
    assert_eq!(got.detail, "", "the vendor extension, not the policy");
}

#[test]
fn a_secret_policy_is_masked_in_provenance_but_served_in_clear() {
    let (mut conn, a) = with_levels(&[]);
    set_policy(
        &mut conn,
        &actor(),
        &a,
        &Target::Account,
        "reg.1.auth.password",
        "s3cret",
    )
    .expect("policy");
    let got = effective(&conn, "reg.1.auth.password").expect("set");
    assert!(got.secret);
    assert_eq!(
        crate::actions::provisioning::mask(&got.name, &got.value),
        "********"
    );
    let entries = crate::db::audit::list_entries(&conn, None, 1).expect("audit");
    assert!(!format!("{:?}", entries[0].after).contains("s3cret"));
}
