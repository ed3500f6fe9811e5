//! Tests of the catalogue: imports of split and combined zips and of folders, refusals that
//! leave nothing behind, deletion, checksums and how requests find their image.

use std::io::Write;
use std::path::Path;

use super::import::{ImportOptions, import_folder, import_zip};
use super::*;
use crate::db::open_in_memory;
use crate::domain::firmware::{Image, Layout};

/// A zip with these entries (name, bytes).
pub(crate) fn zip_of(path: &Path, entries: &[(&str, &[u8])]) {
    let file = std::fs::File::create(path).expect("create zip");
    let mut w = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        w.start_file(*name, opts).expect("start");
        w.write_all(bytes).expect("write");
    }
    w.finish().expect("finish");
}

fn opts() -> ImportOptions {
    ImportOptions {
        imported_by: "test".into(),
        max_bytes: 10 * 1024 * 1024,
        ..Default::default()
    }
}

/// Everything left in the firmware directory (names, hidden ones too).
fn leftovers(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .expect("read")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

#[test]
fn a_split_zip_is_imported_with_its_models_and_checksums() {
    let mut conn = open_in_memory().expect("db");
    let tmp = tempfile::tempdir().expect("tmp");
    let fw = tmp.path().join("firmware");
    std::fs::create_dir_all(&fw).expect("fw");
    let zip = tmp.path().join("split.zip");
    zip_of(
        &zip,
        &[
            ("3111-46162-001.sip.ld", b"vvx410 image"),
            ("3111-44500-001.sip.ld", b"vvx500 image"),
            ("3111-99999-001.sip.ld", b"unknown phone"),
            ("sip.ver", b"5.9.8.1234\r\n"),
            ("Config/site.cfg", b"<polycomConfig/>"),
            ("__MACOSX/._sip.ver", b"junk"),
        ],
    );
    let r = import_zip(&mut conn, &fw, &zip, &opts()).expect("import");
    assert_eq!(r.version, "5.9.8.1234");
    assert_eq!(r.families, vec![Family::Vvx]);
    assert_eq!(r.layout, Layout::Split);
    assert_eq!(
        r.models().get(&Family::Vvx),
        Some(&vec!["VVX500".to_string(), "VVX410".to_string()])
    );
    assert_eq!(r.unknown_parts(), vec!["3111-99999-001"]);
    assert_eq!(
        std::fs::read(fw.join("5.9.8.1234/3111-46162-001.sip.ld")).expect("stored"),
        b"vvx410 image"
    );
    assert!(fw.join("5.9.8.1234/Config/site.cfg").is_file());
    assert!(!fw.join("5.9.8.1234/__MACOSX").exists(), "noise skipped");
    assert_eq!(leftovers(&fw), vec!["5.9.8.1234"], "no staging left");
    let stored = release(&conn, "5.9.8.1234").expect("catalogue");
    assert_eq!(stored.files.len(), 5);
    assert_eq!(
        stored
            .files
            .iter()
            .find(|f| f.path == "sip.ver")
            .map(|f| f.sha256.clone()),
        Some(crate::domain::sha256_hex(b"5.9.8.1234\r\n"))
    );
    let report = verify(&conn, &fw).expect("verify");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.files, 5);
}

#[test]
fn a_combined_zip_needs_its_family_and_serves_every_part_number() {
    let mut conn = open_in_memory().expect("db");
    let tmp = tempfile::tempdir().expect("tmp");
    let fw = tmp.path().join("firmware");
    std::fs::create_dir_all(&fw).expect("fw");
    let zip = tmp.path().join("combined.zip");
    zip_of(
        &zip,
        &[
            ("Polycom_UC_7_2_2/sip.ld", b"combined image"),
            ("Polycom_UC_7_2_2/sip.ver", b"7.2.2.1094\n"),
        ],
    );
    let err = import_zip(&mut conn, &fw, &zip, &opts()).expect_err("no family");
    assert!(err.to_string().starts_with("family:"), "{err}");
    assert!(leftovers(&fw).is_empty());
    let o = ImportOptions {
        families: vec![Family::Trio],
        ..opts()
    };
    let r = import_zip(&mut conn, &fw, &zip, &o).expect("import");
    assert_eq!(
        (r.layout, r.families.clone()),
        (Layout::Combined, vec![Family::Trio])
    );
    assert!(r.has_combined_image());
    let image = locate(&conn, &fw, "7.2.2.1094", "3111-65290-001.sip.ld", None).expect("locate");
    assert_eq!(image, Image::File(fw.join("7.2.2.1094/sip.ld")));
    assert_eq!(
        locate(&conn, &fw, "7.2.2.1094", "nothing.ld", None).expect("locate"),
        Image::NotFound
    );
}

#[test]
fn zip_slip_corrupt_zips_and_duplicates_are_refused_leaving_nothing() {
    let mut conn = open_in_memory().expect("db");
    let tmp = tempfile::tempdir().expect("tmp");
    let fw = tmp.path().join("firmware");
    std::fs::create_dir_all(&fw).expect("fw");
    let evil = tmp.path().join("evil.zip");
    zip_of(
        &evil,
        &[
            ("sip.ver", b"5.9.8.1234"),
            ("3111-46162-001.sip.ld", b"x"),
            ("../../outside.txt", b"escaped"),
        ],
    );
    let err = import_zip(&mut conn, &fw, &evil, &opts()).expect_err("zip-slip");
    let text = err.to_string();
    assert!(
        text.contains("zip-slip") && text.contains("../../outside.txt"),
        "{text}"
    );
    assert!(!tmp.path().join("outside.txt").exists());

    let broken = tmp.path().join("broken.zip");
    std::fs::write(&broken, b"PK\x03\x04 this is not a zip at all").expect("write");
    let err = import_zip(&mut conn, &fw, &broken, &opts()).expect_err("corrupt");
    assert!(err.to_string().contains("not a zip archive"), "{err}");

    // A zip whose data is damaged after the directory was read: the CRC check refuses it.
    let good = tmp.path().join("good.zip");
    zip_of(
        &good,
        &[
            ("sip.ver", b"5.9.8.1234"),
            ("3111-46162-001.sip.ld", &[7u8; 4096]),
        ],
    );
    let mut bytes = std::fs::read(&good).expect("read");
    let at = bytes
        .windows(4)
        .rposition(|w| w == b"PK\x03\x04")
        .expect("second entry")
        + 80;
    for b in &mut bytes[at..at + 20] {
        *b ^= 0xff;
    }
    let damaged = tmp.path().join("damaged.zip");
    std::fs::write(&damaged, bytes).expect("write");
    let err = import_zip(&mut conn, &fw, &damaged, &opts()).expect_err("damaged");
    assert!(err.to_string().contains("damaged"), "{err}");
    assert!(leftovers(&fw).is_empty(), "{:?}", leftovers(&fw));
    assert!(list(&conn).expect("list").is_empty());

    import_zip(&mut conn, &fw, &good, &opts()).expect("the good one");
    let err = import_zip(&mut conn, &fw, &good, &opts()).expect_err("duplicate");
    assert!(
        matches!(err, Error::Conflict(_)) && err.to_string().contains("already in the catalogue"),
        "{err}"
    );
    assert_eq!(leftovers(&fw), vec!["5.9.8.1234"]);
}

#[test]
fn a_folder_imports_like_a_zip_and_sip_ver_must_agree_with_a_named_version() {
    let mut conn = open_in_memory().expect("db");
    let tmp = tempfile::tempdir().expect("tmp");
    let fw = tmp.path().join("firmware");
    std::fs::create_dir_all(&fw).expect("fw");
    let src = tmp.path().join("release");
    std::fs::create_dir_all(src.join("VVXLocalization/German_Germany")).expect("dirs");
    std::fs::write(src.join("3111-48500-001.sip.ld"), b"vvx501").expect("img");
    std::fs::write(src.join("sip.ver"), b"6.4.3.1234\n").expect("ver");
    std::fs::write(src.join("VVXLocalization/German_Germany/dict.xml"), b"<x/>").expect("loc");
    let o = ImportOptions {
        version: Some("6.4.3.9999".into()),
        ..opts()
    };
    let err = import_folder(&mut conn, &fw, &src, &o).expect_err("disagree");
    assert!(err.to_string().starts_with("version:"), "{err}");
    let r = import_folder(&mut conn, &fw, &src, &opts()).expect("import");
    assert_eq!(r.version, "6.4.3.1234");
    assert!(
        fw.join("6.4.3.1234/VVXLocalization/German_Germany/dict.xml")
            .is_file()
    );
    assert!(
        src.join("sip.ver").is_file(),
        "the admin's folder is left alone"
    );
}

#[test]
fn a_version_in_use_is_not_deleted_and_a_damaged_file_is_not_served() {
    let mut conn = open_in_memory().expect("db");
    let tmp = tempfile::tempdir().expect("tmp");
    let fw = tmp.path().join("firmware");
    std::fs::create_dir_all(&fw).expect("fw");
    let zip = tmp.path().join("r.zip");
    zip_of(
        &zip,
        &[
            ("sip.ver", b"5.9.8.1234"),
            ("3111-46162-001.sip.ld", b"img"),
        ],
    );
    import_zip(&mut conn, &fw, &zip, &opts()).expect("import");
    let account = crate::actions::accounts::default_account(&conn).expect("account");
    let mut fields = crate::domain::profile::ProfileFields {
        name: "office".into(),
        vendor_model: "Polycom_UCS_Device".into(),
        ..Default::default()
    };
    fields.software.insert(Family::Trio, "5.9.8.1234".into());
    let err = crate::actions::testing::add_profile(&mut conn, &account, &fields, vec![])
        .expect_err("not a Trio release");
    assert!(
        err.to_string()
            .contains("software.Trio: version `5.9.8.1234` is not a Trio release"),
        "{err}"
    );
    fields.software.clear();
    fields.software.insert(Family::Vvx, "5.9.9".into());
    let err = crate::actions::testing::add_profile(&mut conn, &account, &fields, vec![])
        .expect_err("not in the catalogue");
    assert!(
        err.to_string().contains("not in the firmware catalogue"),
        "{err}"
    );
    fields.software.insert(Family::Vvx, "5.9.8.1234".into());
    crate::actions::testing::add_profile(&mut conn, &account, &fields, vec![]).expect("profile");
    let err = delete(&mut conn, &fw, "5.9.8.1234").expect_err("in use");
    assert!(err.to_string().contains("profile `office` (VVX)"), "{err}");
    assert!(fw.join("5.9.8.1234/sip.ver").is_file());

    std::fs::write(fw.join("5.9.8.1234/3111-46162-001.sip.ld"), b"tampered").expect("tamper");
    let report = verify(&conn, &fw).expect("verify");
    assert_eq!(report.problems.len(), 1);
    assert!(
        report.problems[0].to_string().contains("checksum mismatch"),
        "{}",
        report.problems[0]
    );
    let image = locate(&conn, &fw, "5.9.8.1234", "3111-46162-001.sip.ld", None).expect("locate");
    assert!(matches!(image, Image::Damaged(_)), "{image:?}");
    // A plain sip.ld request finds the model's image through the User-Agent.
    std::fs::write(fw.join("5.9.8.1234/3111-46162-001.sip.ld"), b"img").expect("restore");
    verify(&conn, &fw).expect("verify");
    assert_eq!(
        locate(&conn, &fw, "5.9.8.1234", "sip.ld", Some("VVX410")).expect("locate"),
        Image::File(fw.join("5.9.8.1234/3111-46162-001.sip.ld"))
    );

    crate::actions::testing::delete_profile(&mut conn, &account, "office").expect("profile gone");
    delete(&mut conn, &fw, "5.9.8.1234").expect("deleted");
    assert!(leftovers(&fw).is_empty());
    assert!(list(&conn).expect("list").is_empty());
}
