//! Export → wipe → import gives every device the same effective settings; bad files are
//! refused with the row and field named, and nothing is written.

use super::*;
use crate::actions::accounts::find_account;
use crate::actions::render::{self, As};
use crate::domain::polycom::render::EffectiveParam;
use crate::domain::profile::ProfileFields;
use crate::domain::provstate::Reach;

/// The file form without the rule that secrets leave only sealed (the round trips below
/// test the records themselves).
fn raw(format: Format, e: &Export) -> String {
    match format {
        Format::Json => to_json(e).expect("json"),
        Format::Csv => to_csv(e).expect("csv"),
    }
}

fn actor() -> Actor {
    Actor::person("tester")
}

/// An account with a profile, two sites, three groups, five devices and policies at every
/// level, secrets included.
fn populated() -> (Connection, Account) {
    let mut conn = crate::db::open_in_memory().expect("db");
    let a = find_account(&conn, None).expect("account");
    let fields = ProfileFields {
        name: "office".into(),
        vendor_model: "Polycom_UCS_Device".into(),
        language: "English_United_States".into(),
        ..Default::default()
    };
    crate::actions::testing::add_profile(
        &mut conn,
        &a,
        &fields,
        vec![(
            "site.cfg".into(),
            b"<c lcl.ml.lang=\"French_France\" up.x=\"1\"/>".to_vec(),
        )],
    )
    .expect("profile");
    for (name, desc) in [("hq", "Head office"), ("branch, east", "a \"quoted\" one")] {
        crate::actions::policy::add_site(&mut conn, &actor(), &a, &name.replace(',', ""), desc)
            .expect("site");
    }
    for (name, prio) in [("lobby", 10), ("sales", 10), ("all", 0)] {
        crate::actions::policy::add_group(&mut conn, &actor(), &a, name, prio, "").expect("group");
    }
    let mut macs = Vec::new();
    for i in 0..5 {
        let mac = format!("0004f20000{i:02x}");
        let input = DeviceInput {
            mac: mac.clone(),
            profile: "office".into(),
            ext: VendorExtensions {
                sip_server: "sip.example.com".into(),
                prov_password: if i == 0 {
                    "dev-secret".into()
                } else {
                    String::new()
                },
                ..Default::default()
            },
            line1: Line {
                line: 1,
                auth_user_id: format!("10{i}"),
                auth_password: format!("sip-secret-{i}"),
                label: format!("Line {i}"),
                display_name: format!("Desk {i}"),
                ..Default::default()
            },
            ..Default::default()
        };
        crate::actions::testing::add_device(&mut conn, &a, &input).expect("device");
        macs.push(mac.parse::<Mac>().expect("mac"));
    }
    let tx = conn.transaction().expect("tx");
    let id: i64 = tx
        .query_row(
            "SELECT id FROM devices WHERE mac = ?1",
            [macs[1].as_str()],
            |r| r.get(0),
        )
        .expect("id");
    devices::upsert_line(
        &tx,
        id,
        &Line {
            line: 2,
            auth_user_id: "2002".into(),
            auth_password: "line-2-secret".into(),
            label: "second".into(),
            display_name: String::new(),
            // The template variables' per-line fields travel too.
            extension: "2002".into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
        },
    )
    .expect("line 2");
    tx.commit().expect("commit");
    crate::actions::policy::assign_site(&mut conn, &actor(), &a, Some("hq"), &macs[..3])
        .expect("site");
    crate::actions::policy::assign_site(&mut conn, &actor(), &a, Some("branch east"), &macs[3..4])
        .expect("site");
    crate::actions::policy::set_membership(&mut conn, &actor(), &a, "lobby", &macs[..2], true)
        .expect("lobby");
    crate::actions::policy::set_membership(&mut conn, &actor(), &a, "sales", &macs[1..3], true)
        .expect("sales");
    crate::actions::policy::set_membership(&mut conn, &actor(), &a, "all", &macs, true)
        .expect("all");
    let set = |conn: &mut Connection, t: Target, p: &str, v: &str| {
        crate::actions::policy::set_policy(conn, &actor(), &a, &t, p, v).expect("policy");
    };
    set(&mut conn, Target::Account, "lcl.ml.lang", "German_Germany");
    set(
        &mut conn,
        Target::Account,
        "voIpProt.SIP.serverFeatureControl.password",
        "acct-secret",
    );
    set(
        &mut conn,
        Target::Site("hq".into()),
        "lcl.ml.lang",
        "Dutch_Netherlands",
    );
    set(
        &mut conn,
        Target::Group("lobby".into()),
        "up.x",
        "lobby, with comma",
    );
    set(&mut conn, Target::Group("sales".into()), "up.x", "sales");
    set(&mut conn, Target::Group("all".into()), "up.y", "all");
    set(
        &mut conn,
        Target::Device(macs[4]),
        "lcl.ml.lang",
        "Italian_Italy",
    );
    set(
        &mut conn,
        Target::Device(macs[4]),
        "device.sntp.serverName",
        "ntp.example.com",
    );
    (conn, a)
}

fn effective(conn: &Connection) -> Vec<(String, Vec<EffectiveParam>)> {
    let reach = Reach {
        host: "10.0.0.1:8080".into(),
        base_path: "/".into(),
        secure: false,
    };
    let mut macs: Vec<String> = conn
        .prepare("SELECT mac FROM devices ORDER BY mac")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows");
    macs.sort();
    macs.into_iter()
        .map(|m| {
            let mac: Mac = m.parse().expect("mac");
            let settings =
                render::explain_device(conn, &mac, &reach, As::Device, None).expect("explain");
            (m, settings)
        })
        .collect()
}

fn wipe(conn: &Connection) {
    conn.execute_batch(
        "DELETE FROM devices; DELETE FROM sites; DELETE FROM device_groups; DELETE FROM policies;",
    )
    .expect("wipe");
}

#[test]
fn export_wipe_import_gives_every_device_the_same_effective_settings() {
    for format in [Format::Json, Format::Csv] {
        let (mut conn, a) = populated();
        let before = effective(&conn);
        assert_eq!(before.len(), 5);
        let text = raw(format, &export(&conn, &a, true).expect("export"));
        wipe(&conn);
        assert!(effective(&conn).is_empty());
        let e = parse(format, &text).expect("parse");
        let report = import(&mut conn, &actor(), &a, &e, false).expect("import");
        assert_eq!(report.devices_created, 5, "{format:?}");
        assert_eq!(effective(&conn), before, "{format:?}");
        // The same file again changes nothing.
        let again = import(&mut conn, &actor(), &a, &e, false).expect("again");
        assert_eq!((again.devices_created, again.policies_set), (0, 0));
        assert_eq!(effective(&conn), before, "{format:?}");
    }
}

#[test]
fn secrets_leave_only_when_asked_and_stored_ones_are_kept_on_import() {
    let (mut conn, a) = populated();
    let before = effective(&conn);
    for format in [Format::Json, Format::Csv] {
        let text = write(format, &export(&conn, &a, false).expect("export")).expect("write");
        for secret in ["dev-secret", "sip-secret-0", "line-2-secret", "acct-secret"] {
            assert!(!text.contains(secret), "{secret} in {format:?}:\n{text}");
        }
        // Secrets leave only sealed, and only in JSON.
        assert!(write(format, &export(&conn, &a, true).expect("export")).is_err());
        let mut sealed = export(&conn, &a, true).expect("export");
        seal::seal(&mut sealed, "a long passphrase").expect("seal");
        match format {
            Format::Json => {
                let with = write(format, &sealed).expect("sealed json");
                for secret in ["dev-secret", "sip-secret-0", "line-2-secret", "acct-secret"] {
                    assert!(!with.contains(secret), "{secret} in clear:\n{with}");
                }
                let mut back = parse_json(&with).expect("parse");
                assert!(seal::open(&mut back, None).is_err(), "no passphrase");
                let mut wrong = parse_json(&with).expect("parse");
                let err = seal::open(&mut wrong, Some("not the passphrase"))
                    .expect_err("wrong passphrase")
                    .to_string();
                assert!(err.contains("passphrase"), "{err}");
                seal::open(&mut back, Some("a long passphrase")).expect("open");
                let clear = export(&conn, &a, true).expect("export");
                for d in &mut back.devices {
                    d.at.clear();
                }
                for p in &mut back.policies {
                    p.at.clear();
                }
                assert_eq!(back.devices, clear.devices);
                assert_eq!(back.policies, clear.policies);
            }
            Format::Csv => assert!(write(format, &sealed).is_err()),
        }
        let report = import(
            &mut conn,
            &actor(),
            &a,
            &parse(format, &text).expect("parse"),
            false,
        )
        .expect("import");
        assert!(report.secrets_kept >= 7, "{report:?}");
        assert_eq!(effective(&conn), before, "{format:?}");
    }
}

#[test]
fn a_bad_file_names_every_row_and_field_and_writes_nothing() {
    let (mut conn, a) = populated();
    let mut e = export(&conn, &a, true).expect("export");
    wipe(&conn);
    let mut bad = e.clone();
    bad.devices[1].mac = "0004f2zz0001".into();
    bad.devices[2].profile = "nope".into();
    bad.devices[3].site = Some("mars".into());
    bad.policies.push(PolicyRec {
        scope: "group:ghosts".into(),
        parameter: "device.prov.password".into(),
        value: Some("x".into()),
        at: String::new(),
    });
    let text = to_json(&bad).expect("json");
    let err = import(
        &mut conn,
        &actor(),
        &a,
        &parse_json(&text).expect("parse"),
        false,
    )
    .expect_err("refused")
    .to_string();
    for want in [
        "devices[1].mac:",
        "devices[2].profile: no profile named `nope`",
        "devices[3].site: no site named `mars`",
        ".scope: `group:ghosts` names nothing",
        ".parameter: `device.prov.password` is set by zerotouch",
    ] {
        assert!(err.contains(want), "{want} missing from: {err}");
    }
    let n: i64 = conn
        .query_row("SELECT count(*) FROM devices", [], |r| r.get(0))
        .expect("count");
    assert_eq!(n, 0, "nothing half-written");
    // CSV errors name the line.
    e.devices.truncate(1);
    let mut csv = to_csv(&e).expect("csv");
    csv.push_str("device,0004f2000000,colour,blue\nplanet,x,y,z\n");
    let err = parse_csv(&csv).expect_err("bad csv").to_string();
    assert!(
        err.contains("unknown field `colour`") && err.contains("unknown record `planet`"),
        "{err}"
    );
    assert!(
        err.contains(&format!("line {}:", csv.lines().count() - 1)),
        "{err}"
    );
    let err = parse_json(
        "{\"format\": \"zerotouch-export\", \"version\": 1, \"devices\": [{\"mac\": 5}]}",
    )
    .expect_err("type")
    .to_string();
    assert!(err.starts_with("devices[0].mac:"), "{err}");
}

#[test]
fn a_dry_run_counts_without_writing() {
    let (mut conn, a) = populated();
    let e = export(&conn, &a, true).expect("export");
    wipe(&conn);
    let r = import(&mut conn, &actor(), &a, &e, true).expect("dry run");
    assert!(r.dry_run && r.devices_created == 5);
    let n: i64 = conn
        .query_row("SELECT count(*) FROM devices", [], |r| r.get(0))
        .expect("count");
    assert_eq!(n, 0);
}

#[test]
fn a_display_name_set_line_accepts_survives_the_import_of_its_export() {
    let (mut conn, a) = populated();
    let mac: Mac = "0004f2000000".parse().expect("mac");
    let line = Line {
        line: 3,
        auth_user_id: "3003".into(),
        display_name: "O'Brien & <Sons> \"HQ\"".into(),
        label: "Reception's".into(),
        ..Default::default()
    };
    crate::actions::templating::set_device_line(&mut conn, &actor(), &mac, &line)
        .expect("set-line takes it");
    let before = effective(&conn);
    for format in [Format::Json, Format::Csv] {
        let text = raw(format, &export(&conn, &a, true).expect("export"));
        wipe(&conn);
        import(
            &mut conn,
            &actor(),
            &a,
            &parse(format, &text).expect("parse"),
            false,
        )
        .expect("the import takes what set-line took");
        assert_eq!(effective(&conn), before, "{format:?}");
    }
    // What must stay refused still is, on both paths.
    let mut e = export(&conn, &a, true).expect("export");
    e.devices[0].lines[0].display_name = "bell\u{7}".into();
    let err = import(&mut conn, &actor(), &a, &e, false)
        .expect_err("control character")
        .to_string();
    assert!(
        err.contains("lines[1].display_name: contains a control"),
        "{err}"
    );
    let set_line = crate::actions::templating::set_device_line(
        &mut conn,
        &actor(),
        &mac,
        &Line {
            display_name: "bell\u{7}".into(),
            ..line
        },
    );
    assert!(set_line.is_err());
}

#[test]
fn the_whole_installation_moves_into_an_empty_database() {
    let (mut conn, a) = populated();
    crate::actions::templating::set_custom_variable(&mut conn, &actor(), "SYSLOG_HOST", "logs")
        .expect("variable");
    let other = crate::db::accounts::insert_account(
        &conn,
        "Branch",
        "branch",
        false,
        "bphones",
        "Branch-Passw0rd",
    )
    .expect("account");
    let fields = ProfileFields {
        name: "shop".into(),
        vendor_model: "Polycom_UCS_Device".into(),
        ..Default::default()
    };
    crate::actions::testing::add_profile(
        &mut conn,
        &other,
        &fields,
        vec![(
            "shop.cfg".into(),
            b"<c device.syslog.serverName=\"${SYSLOG_HOST}\"/>".to_vec(),
        )],
    )
    .expect("profile");
    crate::actions::testing::add_device(
        &mut conn,
        &other,
        &DeviceInput {
            mac: "0004f20000b1".into(),
            profile: "shop".into(),
            ..Default::default()
        },
    )
    .expect("device");
    crate::db::accounts::update_tftp_credential(&conn, other.id, true).expect("tftp");
    crate::db::accounts::update_ftp_factory_login(&conn, other.id, false).expect("ftp");
    crate::db::enrolment::set_device_secrets(&conn, other.id.0, false).expect("withholding");
    let before = effective(&conn);
    let mut all = installation::export(&conn, true).expect("export");
    assert!(installation::to_json(&all).is_err(), "never in clear");
    installation::seal(&mut all, "a long passphrase").expect("seal");
    let text = installation::to_json(&all).expect("json");
    assert!(installation::is_installation(&text));
    for secret in [
        "dev-secret",
        "sip-secret-0",
        "line-2-secret",
        "acct-secret",
        "Branch-Passw0rd",
    ] {
        assert!(!text.contains(secret), "{secret} in clear");
    }
    let mut fresh = crate::db::open_in_memory().expect("db");
    find_account(&fresh, None).expect("default account");
    let mut back = installation::parse_json(&text).expect("parse");
    installation::open(&mut back, Some("a long passphrase")).expect("open");
    let r = installation::import(&mut fresh, &actor(), &back, false).expect("import");
    assert_eq!((r.accounts_created, r.profiles_created), (1, 2), "{r:?}");
    assert_eq!(effective(&fresh), before);
    let moved = crate::db::accounts::find_by_slug(&fresh, "branch")
        .expect("find")
        .expect("created");
    assert_eq!(
        moved.service_key, other.service_key,
        "phones keep their address"
    );
    assert!(moved.tftp_credential && !moved.device_secrets, "{moved:?}");
    assert!(
        !moved.ftp_factory_login,
        "the factory login setting moves too"
    );
    let _ = a;
}

#[test]
fn deliberate_names_and_variables_follow_their_own_rules_and_nothing_is_written() {
    let (mut conn, a) = populated();
    let mut e = parse_json(&to_json(&export(&conn, &a, false).expect("export")).expect("json"))
        .expect("parse");
    e.deliberate.push(DeliberateRec {
        name: "acme.tweak".into(),
        reason: String::new(),
        at: "deliberate[0]".into(),
    });
    e.custom_variables.push(VariableRec {
        name: "lower".into(),
        value: Some("x".into()),
        at: "custom_variables[0]".into(),
    });
    let err = import(&mut conn, &actor(), &a, &e, false)
        .expect_err("refused")
        .to_string();
    assert!(err.contains("deliberate[0].reason"), "{err}");
    assert!(err.contains("custom_variables[0].name"), "{err}");
    let deliberate: i64 = conn
        .query_row("SELECT count(*) FROM deliberate_parameters", [], |r| {
            r.get(0)
        })
        .expect("count");
    assert_eq!(deliberate, 0, "nothing written");
}
