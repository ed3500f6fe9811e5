//! Restores: everything comes back with the documented modes; a damaged archive, a key that
//! cannot be written and a failure in the middle of the swap leave the installation as it was.

use super::*;

fn config(dir: &Path) -> Config {
    Config {
        data_dir: dir.join("data"),
        ..Config::default()
    }
}

/// An installation with a database, a CA key, a firmware file and a secrets key.
fn install(cfg: &Config, firmware: &[u8], key: &[u8]) {
    crate::datadir::prepare_data_dir(&cfg.data_dir).expect("prepare");
    let mut conn =
        crate::db::open(&cfg.database_path(), std::time::Duration::from_secs(1)).expect("open");
    crate::db::migrate(&mut conn).expect("migrate");
    crate::db::accounts::ensure_default(&conn).expect("account");
    fs::write(cfg.data_dir.join("tls/ca.key"), b"CA KEY").expect("key");
    fs::write(cfg.data_dir.join("firmware/sip.ld"), firmware).expect("fw");
    fs::write(key_path(cfg), key).expect("secret");
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).expect("meta").permissions().mode() & 0o777
}

#[test]
fn a_backup_restores_everything_with_its_modes_and_keeps_what_it_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    install(&cfg, &[7u8; 100_000], b"SECRET");
    let config_file = dir.path().join("config.toml");
    fs::write(&config_file, "# as backed up\n").expect("config");
    let archive = dir.path().join("b.tar.gz");
    let report = crate::backup::backup(&cfg, &archive, Some(&config_file)).expect("backup");
    assert!(report.files >= 5);
    // Lose things, then restore.
    fs::remove_file(cfg.data_dir.join("tls/ca.key")).expect("rm");
    fs::write(key_path(&cfg), b"OTHER").expect("overwrite");
    fs::write(&config_file, "# edited since\n").expect("config");
    // The current key is not a key: nothing can be compared, so the restore asks.
    let err = restore(&cfg, &archive, false, Some(&config_file)).expect_err("asks");
    assert!(err.to_string().contains("cannot be compared"), "{err}");
    let restored = restore(&cfg, &archive, true, Some(&config_file)).expect("restore");
    let data = &cfg.data_dir;
    assert_eq!(fs::read(data.join("tls/ca.key")).expect("read"), b"CA KEY");
    assert_eq!(
        fs::read(key_path(&cfg)).expect("read").trim_ascii(),
        b"SECRET"
    );
    assert_eq!(
        fs::read(data.join("firmware/sip.ld")).expect("fw").len(),
        100_000
    );
    let kept = restored.kept.expect("kept");
    assert!(kept.join("zerotouch.db").exists());
    assert_eq!(
        fs::read(kept.join("secret.key")).expect("old key"),
        b"OTHER"
    );
    // docs/security.md, "Files and their modes".
    assert_eq!(mode(&cfg.database_path()), 0o640);
    assert_eq!(mode(&data.join("tls/ca.key")), 0o600);
    assert_eq!(mode(&data.join("firmware/sip.ld")), 0o640);
    assert_eq!(mode(&data.join("firmware")), 0o750);
    // The configuration in use is never replaced; the backup's is left to compare.
    assert_eq!(
        fs::read_to_string(&config_file).expect("config"),
        "# edited since\n"
    );
    let from_backup = restored.config_from_backup.expect("differs");
    assert_eq!(
        fs::read_to_string(from_backup).expect("written"),
        "# as backed up\n"
    );
    assert!(!data.join(STAGING).exists());
}

#[test]
fn a_damaged_archive_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path());
    crate::datadir::prepare_data_dir(&cfg.data_dir).expect("prepare");
    fs::write(cfg.data_dir.join("tls/ca.key"), b"CA KEY").expect("key");
    let archive = dir.path().join("junk.tar.gz");
    fs::write(&archive, b"not a backup at all").expect("junk");
    assert!(restore(&cfg, &archive, false, None).is_err());
    assert_eq!(
        fs::read(cfg.data_dir.join("tls/ca.key")).expect("kept"),
        b"CA KEY"
    );
}

#[test]
fn a_failure_while_swapping_puts_the_installation_back_and_names_the_copy() {
    for failing in ["zerotouch.db", "firmware", "secret.key"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = config(dir.path());
        install(&cfg, b"OLD FIRMWARE", b"OLD KEY");
        let archive = dir.path().join("b.tar.gz");
        crate::backup::backup(&cfg, &archive, None).expect("backup");
        fs::write(cfg.data_dir.join("firmware/sip.ld"), b"NEW FIRMWARE").expect("fw");
        fs::write(key_path(&cfg), b"NEW KEY").expect("key");
        FAIL_AT.with(|f| f.set(Some(failing)));
        let err = restore(&cfg, &archive, true, None).expect_err("fails");
        FAIL_AT.with(|f| f.set(None));
        let msg = err.to_string();
        assert!(
            msg.contains("injected failure")
                && msg.contains(".pre-restore-")
                && msg.contains("was put back"),
            "{failing}: {msg}"
        );
        let data = &cfg.data_dir;
        assert_eq!(
            fs::read(data.join("firmware/sip.ld")).expect("fw"),
            b"NEW FIRMWARE",
            "{failing}"
        );
        assert_eq!(
            fs::read(key_path(&cfg)).expect("key"),
            b"NEW KEY",
            "{failing}"
        );
        assert!(cfg.database_path().exists(), "{failing}");
        assert_eq!(fs::read(data.join("tls/ca.key")).expect("ca"), b"CA KEY");
        assert!(!key_path(&cfg).with_extension("restore-new").exists());
    }
}

#[test]
fn a_key_that_cannot_be_put_in_place_stops_the_restore_before_anything_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(dir.path());
    install(&cfg, b"OLD FIRMWARE", b"OLD KEY");
    let archive = dir.path().join("b.tar.gz");
    crate::backup::backup(&cfg, &archive, None).expect("backup");
    fs::write(cfg.data_dir.join("firmware/sip.ld"), b"NEW FIRMWARE").expect("fw");
    // A key file in a directory that cannot be written (here: that does not exist, which
    // stops root too).
    cfg.secrets_key_file = dir.path().join("etc-gone/secret.key");
    let err = restore(&cfg, &archive, true, None).expect_err("refused");
    let msg = err.to_string();
    assert!(
        msg.contains("secrets key differs") && msg.contains("nothing was changed"),
        "{msg}"
    );
    assert_eq!(
        fs::read(cfg.data_dir.join("firmware/sip.ld")).expect("fw"),
        b"NEW FIRMWARE"
    );
    let leftovers: Vec<_> = fs::read_dir(&cfg.data_dir)
        .expect("list")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".pre-restore-") || n == STAGING)
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
