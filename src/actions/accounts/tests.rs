//! Account actions against an in-memory database: rotations, Auto-Sync on and off,
//! provisioning on and off, compromised rotations, aliases, re-admission, validation.

use super::*;
use crate::domain::device::DeviceInput;
use crate::domain::profile::ProfileFields;

fn setup() -> (Connection, Account, Actor) {
    let conn = db::open_in_memory().expect("db");
    let a = find_account(&conn, None).expect("default");
    let f = ProfileFields {
        name: "p1".into(),
        vendor_model: "Polycom_UCS_Device".into(),
        ..Default::default()
    };
    let pid = profiles::insert_profile(&conn, a.id.0, &f, &[]).expect("profile");
    for i in 0..3 {
        let d = DeviceInput {
            mac: format!("0004f200000{i}"),
            profile: "p1".into(),
            ..Default::default()
        }
        .validate()
        .expect("valid");
        let id = devices::insert_device(&conn, a.id.0, &d, pid, false).expect("device");
        // Seen and holding generation 1.
        credentials::store_sync(
            &conn,
            id,
            &DeviceSync {
                generation: Some(1),
                generation_at: Some(db::now_secs()),
                ..Default::default()
            },
        )
        .expect("sync");
    }
    (conn, a, Actor::person("admin"))
}

fn reload(conn: &Connection, a: &Account) -> Account {
    find_account(conn, Some(&a.slug)).expect("account")
}

#[test]
fn a_rotation_with_auto_sync_on_locks_nobody_out_and_keeps_every_generation() {
    let (mut conn, a, actor) = setup();
    // Every device it changes is shown first: each gets the new credentials (and reboots)
    // and keeps the current ones until the grace window ends.
    let err = set_credentials(
        &mut conn,
        &actor,
        &a,
        "phones",
        "new-password-1",
        Rotation::default(),
        false,
    )
    .expect_err("counted first");
    let Error::NeedsConfirmation { phones, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(phones.len(), 3);
    assert!(
        phones.iter().all(|p| p.reason.contains("accepted until")),
        "{phones:?}"
    );
    let g = set_credentials(
        &mut conn,
        &actor,
        &a,
        "phones",
        "new-password-1",
        Rotation::default(),
        true,
    )
    .expect("rotate");
    assert_eq!(g, 2);
    let h = credentials::load_history(&conn, a.id).expect("history");
    assert_eq!(h.generations.len(), 2);
    assert!(h.generations[0].accept_until.is_some());
    let p = progress(&conn, &reload(&conn, &a)).expect("progress");
    assert_eq!((p.synced, p.pending.len(), p.locked_out.len()), (0, 3, 0));
    assert_eq!(p.by_generation, vec![(1, 3)]);
}

#[test]
fn turning_auto_sync_off_with_pending_devices_needs_confirmation() {
    let (mut conn, a, actor) = setup();
    set_credentials(
        &mut conn,
        &actor,
        &a,
        "phones",
        "new-password-1",
        Rotation::default(),
        true,
    )
    .expect("rotate");
    let a = reload(&conn, &a);
    assert_eq!(
        impact_autosync(&conn, &a, false)
            .expect("impact")
            .locked_out,
        3
    );
    let err = set_autosync(&mut conn, &actor, &a, false, false).expect_err("confirm");
    assert!(
        matches!(err, Error::NeedsConfirmation { devices: 3, .. }),
        "{err}"
    );
    assert!(
        credentials::load_settings(&conn, a.id).expect("s").enabled,
        "unchanged"
    );
    set_autosync(&mut conn, &actor, &a, false, true).expect("confirmed");
    let p = progress(&conn, &a).expect("progress");
    assert_eq!(p.locked_out.len(), 3);
    // Re-admit one: it is pending again although Auto-Sync stays off.
    let mac: Mac = "0004f2000001".parse().expect("mac");
    readmit(&mut conn, &actor, &a, &Readmission::Devices(vec![mac])).expect("readmit");
    let p = progress(&conn, &a).expect("progress");
    assert_eq!((p.pending.len(), p.locked_out.len()), (1, 2));
    let all = readmit(&mut conn, &actor, &a, &Readmission::AllLockedOut).expect("bulk");
    assert_eq!(all.len(), 2);
}

#[test]
fn credentials_cannot_change_while_provisioning_is_disabled_and_disabling_turns_auto_sync_off() {
    let (mut conn, a, actor) = setup();
    let err = set_provisioning(&mut conn, &actor, &a, false, false).expect_err("confirm");
    assert!(
        matches!(err, Error::NeedsConfirmation { devices: 3, .. }),
        "{err}"
    );
    set_provisioning(&mut conn, &actor, &a, false, true).expect("disable");
    let s = credentials::load_settings(&conn, a.id).expect("settings");
    assert!(!s.provisioning_enabled && !s.enabled);
    let err = set_credentials(
        &mut conn,
        &actor,
        &a,
        "phones",
        "new-password-1",
        Rotation::default(),
        true,
    )
    .expect_err("disabled");
    assert!(err.to_string().contains("enable it"), "{err}");
    assert_eq!(
        credentials::load_history(&conn, a.id).expect("h").current(),
        1,
        "nothing written"
    );
    set_provisioning(&mut conn, &actor, &a, true, false).expect("enable");
    assert!(
        !credentials::load_settings(&conn, a.id).expect("s").enabled,
        "Auto-Sync stays off"
    );
}

#[test]
fn a_compromised_rotation_counts_every_device_holding_old_credentials() {
    let (mut conn, a, actor) = setup();
    let rotation = Rotation {
        compromised: true,
        ..Default::default()
    };
    assert_eq!(
        impact_set_credentials(&conn, &a, rotation)
            .expect("impact")
            .locked_out,
        3
    );
    let err = set_credentials(
        &mut conn,
        &actor,
        &a,
        "phones",
        "new-password-1",
        rotation,
        false,
    )
    .expect_err("confirm");
    assert!(
        err.to_string().contains("3 phone(s) affected")
            && err.to_string().contains("refused from now"),
        "{err}"
    );
    set_credentials(
        &mut conn,
        &actor,
        &a,
        "phones",
        "new-password-1",
        rotation,
        true,
    )
    .expect("go");
    let entries = crate::db::audit::list_entries(&conn, Some(a.id.0), 10).expect("audit");
    let text = format!("{:?}", entries[0].after);
    assert!(
        !text.contains("new-password-1") && text.contains("compromised"),
        "{text}"
    );
}

#[test]
fn a_new_service_address_keeps_the_old_one_as_an_alias_while_devices_use_it() {
    let (mut conn, a, actor) = setup();
    let id: i64 = conn
        .query_row(
            "SELECT id FROM devices WHERE mac = '0004f2000000'",
            [],
            |r| r.get(0),
        )
        .expect("id");
    credentials::store_sync(
        &conn,
        id,
        &DeviceSync {
            generation: Some(1),
            base_segment: a.service_segment(),
            ..Default::default()
        },
    )
    .expect("sync");
    let r = regenerate_address(&mut conn, &actor, &a, false).expect("regenerate");
    assert_eq!(r.holders, 1);
    let b = reload(&conn, &a);
    assert_ne!(b.service_key, a.service_key);
    let aliases = list_aliases(&conn, &b).expect("aliases");
    assert_eq!(aliases.len(), 1);
    assert_eq!(aliases[0].address, a.service_path());
    // One device used the alias last; the two others never proved they use the current
    // address (a request with the account credential proves nothing): all three counted.
    let err = retire_alias(&mut conn, &actor, &b, &a.service_path(), false).expect_err("holder");
    assert!(
        matches!(err, Error::NeedsConfirmation { devices: 3, .. }),
        "{err}"
    );
    // With Auto-Sync off, the device could not be moved: regenerating again needs a yes.
    set_autosync(&mut conn, &actor, &b, false, true).expect("off");
    credentials::store_sync(
        &conn,
        id,
        &DeviceSync {
            generation: Some(1),
            base_segment: b.service_segment(),
            ..Default::default()
        },
    )
    .expect("sync");
    let err = regenerate_address(&mut conn, &actor, &b, false).expect_err("stuck");
    assert!(
        matches!(err, Error::NeedsConfirmation { devices: 1, .. }),
        "{err}"
    );
}

#[test]
fn new_accounts_have_auto_sync_on_and_bad_input_names_every_field() {
    let (mut conn, _, actor) = setup();
    let err = add_account(
        &mut conn,
        &actor,
        &NewAccount {
            name: "".into(),
            slug: "Bad Slug".into(),
            user: "a:b".into(),
            password: "short".into(),
        },
    )
    .expect_err("invalid")
    .to_string();
    for f in ["name:", "slug:", "user:", "password:"] {
        assert!(err.contains(f), "{f} missing: {err}");
    }
    let b = add_account(
        &mut conn,
        &actor,
        &NewAccount {
            name: "Branch".into(),
            slug: "branch".into(),
            user: "phones".into(),
            password: "branch-password".into(),
        },
    )
    .expect("add");
    let s = credentials::load_settings(&conn, b.id).expect("settings");
    assert!(s.enabled && s.provisioning_enabled);
    assert_eq!(list_accounts(&conn).expect("list").len(), 2);
}
