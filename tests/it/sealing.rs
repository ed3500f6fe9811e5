//! Secrets sealed wherever they live (issue 19, item 1): every kind of secret an admin can
//! store through the CLI is absent, as its exact bytes, from every table, the raw database
//! file, its WAL and a backup archive; and a database an older release left with clear
//! values holds none of them after the upgrade.

use std::io::Read;
use std::path::Path;

use crate::common::*;

const MAC: &str = "0004f2000551";
const LINE: &str = "Line-Secret-Seal-1";
const POLICY: &str = "Policy-Secret-Seal-2";
const VARIABLE: &str = "Variable-Secret-Seal-3";
const SETTING: &str = "Setting-Secret-Seal-4";
const FILE: &str = "File-Secret-Seal-5";
const URL: &str = "Url-Secret-Seal-6";

/// Stores one secret of every kind through the CLI; returns them all.
fn populate(server: &ZServer) -> Vec<String> {
    let (_, account) = server.set_credentials();
    let site = write_file(
        server.dir.path(),
        "site.cfg",
        format!("<polycomConfig reg.3.auth.password=\"{FILE}\"/>").as_bytes(),
    );
    server.cli_ok(&[
        "profile",
        "add",
        "office",
        "--file",
        site.to_str().expect("path"),
    ]);
    server.cli_ok(&[
        "device",
        "add",
        MAC,
        "--profile",
        "office",
        "--sip-server",
        "sip.example.com",
        "--sip-user",
        "1001",
        "--sip-password",
        LINE,
        "--prov-server",
        &format!("https://prov:{URL}@prov2.example.com/"),
    ]);
    server.cli_ok(&["policy", "set", "account", "reg.2.auth.password", POLICY]);
    server.cli_ok(&["variable", "set", "BRANCH_PASSWORD", VARIABLE]);
    server.cli_ok(&[
        "settings",
        "set",
        "http_user=prov",
        &format!("http_password={SETTING}"),
    ]);
    vec![
        account,
        LINE.into(),
        POLICY.into(),
        VARIABLE.into(),
        SETTING.into(),
        FILE.into(),
        URL.into(),
    ]
}

/// Every text or blob value of every table that holds one of `secrets`.
fn found_in_tables(db: &Path, secrets: &[String]) -> Vec<String> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("db");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .expect("sql")
        .query_map([], |r| r.get(0))
        .expect("tables")
        .collect::<Result<_, _>>()
        .expect("names");
    let mut found = Vec::new();
    for table in tables {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{table}\""))
            .expect("select");
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).expect("rows");
        while let Some(row) = rows.next().expect("row") {
            for i in 0..columns {
                let bytes: Vec<u8> = match row.get_ref(i).expect("value") {
                    rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                        t.to_vec()
                    }
                    _ => continue,
                };
                for s in secrets {
                    if contains(&bytes, s.as_bytes()) {
                        found.push(format!("{s} in {table}"));
                    }
                }
            }
        }
    }
    found
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Which of `secrets` the raw bytes of `path` hold.
fn found_in_file(path: &Path, secrets: &[String]) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap_or_default();
    secrets
        .iter()
        .filter(|s| contains(&bytes, s.as_bytes()))
        .map(|s| format!("{s} in {}", path.display()))
        .collect()
}

/// Which of `secrets` any entry of a backup archive holds.
fn found_in_backup(archive: &Path, secrets: &[String]) -> Vec<String> {
    let file = std::fs::File::open(archive).expect("archive");
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut found = Vec::new();
    for entry in tar.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let name = entry.path().expect("path").to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).expect("read");
        for s in secrets {
            if contains(&bytes, s.as_bytes()) {
                found.push(format!("{s} in backup entry {name}"));
            }
        }
    }
    found
}

/// Searches the tables, the database file, its WAL and a fresh backup.
fn assert_nowhere(server: &ZServer, secrets: &[String]) {
    let data = server.data_dir();
    let db = data.join("zerotouch.db");
    let mut found = found_in_tables(&db, secrets);
    found.extend(found_in_file(&db, secrets));
    found.extend(found_in_file(&data.join("zerotouch.db-wal"), secrets));
    let archive = server.dir.path().join("sealing-backup.tar.gz");
    server.cli_ok(&["backup", archive.to_str().expect("path")]);
    found.extend(found_in_backup(&archive, secrets));
    assert!(found.is_empty(), "secrets stored in clear: {found:#?}");
}

#[test]
fn every_kind_of_secret_is_sealed_in_tables_files_wal_and_backups() {
    let server = ZServer::start();
    let secrets = populate(&server);
    assert_nowhere(&server, &secrets);
    // Still what the phone gets.
    let rendered = server.cli_ok(&["render", MAC, "--host", "prov.example.com"]);
    for s in [LINE, POLICY, FILE] {
        assert!(rendered.contains(s), "{s} not rendered:\n{rendered}");
    }
    let shown = server.cli_ok(&["device", "show", MAC]);
    assert!(
        shown.contains("prov2.example.com") && !shown.contains(URL),
        "the address is shown without its password:\n{shown}"
    );
    // And after a key rotation (the server stopped), still sealed and still served.
    let dir = server.stop_keep();
    let server = ZServer::start_in(dir, "");
    let out = server.cli(&["secrets", "rotate-key"]);
    assert!(
        !out.status.success(),
        "rotation refuses while the server runs"
    );
    let dir = server.stop_keep();
    let config = dir.path().join("config.toml");
    let out = cli_with_config(&config, &["secrets", "rotate-key"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = ZServer::start_in(dir, "");
    assert_nowhere(&server, &secrets);
    let rendered = server.cli_ok(&["render", MAC, "--host", "prov.example.com"]);
    for s in [LINE, POLICY, FILE] {
        assert!(
            rendered.contains(s),
            "{s} not rendered after rotation:\n{rendered}"
        );
    }
}

#[test]
fn an_upgraded_database_keeps_no_clear_value_in_its_file_wal_or_backups() {
    let server = ZServer::start();
    populate(&server);
    let dir = server.stop_keep();
    let db = dir.path().join("data").join("zerotouch.db");
    // What an older release stored in clear, in a database of the previous schema.
    let old: Vec<String> = [
        "Old-Clear-Policy-5",
        "Old-Clear-Var-6",
        "Old-Clear-State-7",
        "Old-Clear-File-8",
        "Old-Clear-Url-9",
    ]
    .map(String::from)
    .to_vec();
    {
        let conn = rusqlite::Connection::open(&db).expect("db");
        // The schema before the sealing migration (0010); the migrations after it are
        // undone too (0011 adds the deliberate parameter names).
        let version: i64 = 10;
        conn.execute_batch(UNDO_AFTER_0011)
            .expect("undo 0012 and later");
        conn.execute_batch(&format!(
            "UPDATE policies SET value = '{}' WHERE parameter = 'reg.2.auth.password';
             INSERT INTO custom_variables (name, value, updated_at) VALUES ('OLD_PASSWORD', '{}', 1);
             INSERT INTO device_prov_state (device_id, param, confirmed, confirmed_at)
                 SELECT id, 'device.net.dot1x.password', '{}', 1 FROM devices;
             UPDATE profile_files
                 SET content = CAST('<polycomConfig reg.3.auth.password=\"{}\"/>' AS BLOB);
             UPDATE devices SET prov_server = 'https://prov:{}@prov2.example.com/';
             DELETE FROM settings WHERE key = 'secrets_scrub_pending';
             DROP TABLE deliberate_parameters;
             PRAGMA user_version = {};",
            old[0],
            old[1],
            old[2],
            old[3],
            old[4],
            version - 1
        ))
        .expect("clear rows");
    }
    assert_eq!(
        found_in_file(&db, &old).len(),
        old.len(),
        "the old release's file holds the clear values"
    );
    let server = ZServer::start_in(dir, "");
    assert_nowhere(&server, &old);
    // Sealed, not lost.
    let rendered = server.cli_ok(&["render", MAC, "--host", "prov.example.com"]);
    assert!(rendered.contains(&old[0]), "{rendered}");
    assert!(rendered.contains(&old[3]), "{rendered}");
    let shown = server.cli_ok(&["device", "show", MAC]);
    assert!(shown.contains("prov2.example.com"), "{shown}");
}
