use super::*;

#[test]
fn a_sealed_value_opens_only_with_its_key_and_never_shows_the_plaintext() {
    let k = SecretKey::derive(&[7u8; 32]);
    let sealed = k.seal("hunter2-line-password");
    assert!(sealed.starts_with(PREFIX));
    assert!(!sealed.contains("hunter2"));
    assert_ne!(
        sealed,
        k.seal("hunter2-line-password"),
        "random nonce per value"
    );
    assert_eq!(k.open(&sealed).expect("open"), "hunter2-line-password");
    let other = SecretKey::derive(&[8u8; 32]);
    let err = other.open(&sealed).expect_err("wrong key");
    assert!(err.to_string().contains("secrets_key_file"), "{err}");
    assert_eq!(k.open("plain").expect("plain"), "plain");
    assert_eq!(k.seal(""), "");
    // A tampered value is refused, not garbled.
    let mut t = sealed.clone();
    t.pop();
    t.push(if sealed.ends_with('A') { 'B' } else { 'A' });
    assert!(k.open(&t).is_err());
}

#[test]
fn every_secret_column_is_sealed_and_nothing_else() {
    let conn = crate::db::open_in_memory().expect("db");
    conn.execute_batch(
        "INSERT INTO accounts (id, name, slug, service_key, is_default, device_user,
                               device_password, created_at, updated_at)
             VALUES (9, 'A', 'a', 'k', 0, 'user-a', 'acct-pw', 1, 1);
         INSERT INTO profiles (id, account_id, name, prov_password, created_at, updated_at)
             VALUES (3, 9, 'p', 'prof-pw', 1, 1);
         INSERT INTO devices (id, account_id, mac, serial, prov_password, created_at, updated_at)
             VALUES (1, 9, '0004f2000001', '0004F2000001', 'dev-pw', 1, 1);
         INSERT INTO device_lines (device_id, line, auth_user_id, auth_password)
             VALUES (1, 1, '1001', 'line-pw');
         INSERT INTO prov_settings (key, value) VALUES ('s3_secret_key', 's3-pw'),
                                                       ('syslog_server', 'not-secret');",
    )
    .expect("rows");
    let k = SecretKey::derive(b"one-key-of-at-least-32-bytes-xxx");
    // accounts (the trigger copied its first generation), profile, device, line, S3.
    assert_eq!(reseal_all(&conn, None, &k).expect("seal"), 6);
    let one = |sql: &str| -> String { conn.query_row(sql, [], |r| r.get(0)).expect(sql) };
    let first = Credential::Account {
        account_id: 9,
        generation: 1,
    };
    for (sql, c, plain) in [
        ("SELECT device_password FROM accounts", first, "acct-pw"),
        ("SELECT password FROM account_credentials", first, "acct-pw"),
        (
            "SELECT prov_password FROM profiles",
            Credential::ProfilePassword(3),
            "prof-pw",
        ),
        (
            "SELECT prov_password FROM devices",
            Credential::DevicePassword(1),
            "dev-pw",
        ),
        (
            "SELECT auth_password FROM device_lines",
            Credential::Line {
                device_id: 1,
                line: 1,
            },
            "line-pw",
        ),
        (
            "SELECT value FROM prov_settings WHERE key = 's3_secret_key'",
            Credential::Setting("s3_secret_key"),
            "s3-pw",
        ),
    ] {
        let stored = one(sql);
        assert!(stored.starts_with(BOUND_PREFIX), "{sql}: {stored}");
        assert_eq!(open_in_with(&k, c, &stored).expect("open"), plain);
    }
    // Bound: a sealed value moved onto another row or column does not open.
    let line = one("SELECT auth_password FROM device_lines");
    for elsewhere in [
        Credential::Line {
            device_id: 2,
            line: 1,
        },
        Credential::DevicePassword(1),
        Credential::Own(1),
    ] {
        assert!(open_in_with(&k, elsewhere, &line).is_err(), "{elsewhere:?}");
    }
    assert_eq!(
        one("SELECT value FROM prov_settings WHERE key = 'syslog_server'"),
        "not-secret"
    );
    assert_eq!(one("SELECT device_user FROM accounts"), "user-a");
    // A second pass changes nothing.
    assert_eq!(reseal_all(&conn, None, &k).expect("again"), 0);
}

#[test]
fn resealing_converts_plaintext_and_moves_values_to_a_new_key() {
    let conn = crate::db::open_in_memory().expect("db");
    conn.execute_batch(
        "INSERT INTO accounts (id, name, slug, service_key, is_default, created_at, updated_at)
             VALUES (9, 'A', 'a', 'k', 0, 1, 1);
         INSERT INTO devices (id, account_id, mac, serial, created_at, updated_at)
             VALUES (1, 9, '0004f2000001', '0004F2000001', 1, 1);
         INSERT INTO device_credentials (device_id, password, created_at) VALUES (1, 'pw1', 1);",
    )
    .expect("rows");
    let k1 = SecretKey::derive(b"one-key-of-at-least-32-bytes-xxx");
    assert_eq!(reseal_all(&conn, None, &k1).expect("seal"), 1);
    let stored: String = conn
        .query_row("SELECT password FROM device_credentials", [], |r| r.get(0))
        .expect("row");
    assert_eq!(
        open_in_with(&k1, Credential::Own(1), &stored).expect("open"),
        "pw1"
    );
    let k2 = SecretKey::derive(b"another-key-of-at-least-32-bytes");
    assert_eq!(reseal_all(&conn, Some(&k1), &k2).expect("rotate"), 1);
    let stored: String = conn
        .query_row("SELECT password FROM device_credentials", [], |r| r.get(0))
        .expect("row");
    assert!(open_in_with(&k1, Credential::Own(1), &stored).is_err());
    assert_eq!(
        open_in_with(&k2, Credential::Own(1), &stored).expect("open"),
        "pw1"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]
    /// Any value round-trips under its key, never under another, and never shows in
    /// the sealed form.
    #[test]
    fn any_value_round_trips_only_under_its_key(value in "\\PC{1,64}", k1 in proptest::prelude::any::<[u8; 32]>()) {
        let key = SecretKey::derive(&k1);
        let sealed = key.seal(&value);
        if value.starts_with(PREFIX) {
            proptest::prop_assert_eq!(&sealed, &value);
        } else {
            proptest::prop_assert!(sealed.starts_with(PREFIX));
            proptest::prop_assert!(value.len() < 4 || !sealed.contains(&value));
            proptest::prop_assert_eq!(key.open(&sealed).expect("open"), value.clone());
            let mut other = k1;
            other[0] ^= 1;
            proptest::prop_assert!(SecretKey::derive(&other).open(&sealed).is_err());
        }
    }
}

#[test]
fn resealing_walks_large_tables_in_chunks_and_skips_sealed_rows() {
    let conn = crate::db::open_in_memory().expect("db");
    conn.execute_batch(
        "INSERT INTO accounts (id, name, slug, service_key, is_default, created_at, updated_at)
             VALUES (9, 'A', 'a', 'k', 0, 1, 1);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 25001)
         INSERT INTO devices (id, account_id, mac, serial, created_at, updated_at)
             SELECT i, 9, printf('0004f2%06x', i), printf('0004F2%06X', i), 1, 1 FROM n;
         INSERT INTO device_lines (device_id, line, auth_user_id, auth_password)
             SELECT id, 1, id, 'pw-' || id FROM devices;",
    )
    .expect("rows");
    let k = SecretKey::derive(b"one-key-of-at-least-32-bytes-xxx");
    // Some sealed unbound by an older release, the rest plaintext: all are sealed bound.
    conn.execute(
        "UPDATE device_lines SET auth_password = ?1 WHERE device_id % 3 = 0",
        [k.seal("sealed-before")],
    )
    .expect("seal some");
    assert_eq!(reseal_all(&conn, None, &k).expect("seal"), 25001);
    assert_eq!(
        reseal_all(&conn, None, &k).expect("again"),
        0,
        "bound rows skipped"
    );
    let plain: i64 = conn
        .query_row(
            "SELECT count(*) FROM device_lines WHERE auth_password NOT LIKE 'enc:v2:%'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(plain, 0);
    let last: String = conn
        .query_row(
            "SELECT auth_password FROM device_lines WHERE device_id = 25001",
            [],
            |r| r.get(0),
        )
        .expect("last");
    let line = Credential::Line {
        device_id: 25001,
        line: 1,
    };
    assert_eq!(open_in_with(&k, line, &last).expect("open"), "pw-25001");
    // Moving to a new key touches every row, past every chunk boundary.
    let k2 = SecretKey::derive(b"another-key-of-at-least-32-bytes");
    assert_eq!(reseal_all(&conn, Some(&k), &k2).expect("move"), 25001);
}

#[test]
fn secret_parameter_values_are_sealed_bound_to_their_row_and_others_stay_clear() {
    let conn = crate::db::open_in_memory().expect("db");
    conn.execute_batch(
        "INSERT INTO accounts (id, name, slug, service_key, is_default, created_at, updated_at)
             VALUES (9, 'A', 'a', 'k', 0, 1, 1);
         INSERT INTO policies (account_id, scope, scope_id, parameter, value, created_at, updated_at)
             VALUES (9, 'account', 9, 'reg.1.auth.password', 'pol-pw', 1, 1),
                    (9, 'account', 9, 'reg.2.auth.password', 'pol-pw-2', 1, 1),
                    (9, 'account', 9, 'up.backlight.idleIntensity', '3', 1, 1);
         INSERT INTO custom_variables (name, value, updated_at)
             VALUES ('BRANCH_PASSWORD', 'var-pw', 1), ('SYSLOG_SERVER', '10.0.0.9', 1);",
    )
    .expect("rows");
    let k = SecretKey::derive(b"one-key-of-at-least-32-bytes-xxx");
    assert_eq!(reseal_all(&conn, None, &k).expect("seal"), 3);
    let one = |sql: &str| -> String { conn.query_row(sql, [], |r| r.get(0)).expect(sql) };
    let first = one("SELECT value FROM policies WHERE parameter = 'reg.1.auth.password'");
    assert!(first.starts_with(BOUND_PREFIX), "{first}");
    let place = |row: &'static str| Place {
        table: "policies",
        column: "value",
        row,
    };
    assert_eq!(
        k.open_at(&place("account/9/reg.1.auth.password"), &first)
            .expect("open"),
        "pol-pw"
    );
    // Copied onto another row, or read as another column, it does not open.
    let err = k
        .open_at(&place("account/9/reg.2.auth.password"), &first)
        .expect_err("moved");
    assert!(err.to_string().contains("policies.value"), "{err}");
    assert_eq!(
        one("SELECT value FROM policies WHERE parameter = 'up.backlight.idleIntensity'"),
        "3"
    );
    assert!(
        one("SELECT value FROM custom_variables WHERE name = 'BRANCH_PASSWORD'")
            .starts_with(BOUND_PREFIX)
    );
    assert_eq!(
        one("SELECT value FROM custom_variables WHERE name = 'SYSLOG_SERVER'"),
        "10.0.0.9"
    );
    // A second pass changes nothing; a rotation moves every bound value.
    assert_eq!(reseal_all(&conn, None, &k).expect("again"), 0);
    let k2 = SecretKey::derive(b"another-key-of-at-least-32-bytes");
    assert_eq!(reseal_all(&conn, Some(&k), &k2).expect("rotate"), 3);
    let moved = one("SELECT value FROM policies WHERE parameter = 'reg.1.auth.password'");
    assert_eq!(
        k2.open_at(&place("account/9/reg.1.auth.password"), &moved)
            .expect("open"),
        "pol-pw"
    );
}

#[test]
fn the_secret_fields_are_the_ones_sealed_at_rest() {
    let secret: Vec<&str> = crate::domain::settings::FIELDS
        .iter()
        .filter(|f| f.secret)
        .map(|f| f.name)
        .collect();
    assert_eq!(secret, SECRET_SETTINGS);
}
