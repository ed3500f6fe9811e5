//! Symbolic links are never followed below the directories phones read from (issue 19,
//! item 7): a link planted among a device's uploads, the shared assets or a firmware release
//! serves nothing, whether it points outside or at another device's file.

use crate::common::*;

const MAC: &str = "0004f2000771";
const OTHER: &str = "0004f2000772";
const UA: &str = "FileTransport PolycomVVX-VVX_500-UA/5.9.7.47435 Type/Application";

#[test]
fn symlinks_under_uploads_assets_and_firmware_are_refused() {
    let server = ZServer::start();
    let (user, pass) = server.set_credentials();
    // Uploads with the account credential (what is tested here is not enrolment).
    server.serve_secrets_to_account();
    let site = write_file(server.dir.path(), "site.cfg", b"<polycomConfig/>");
    server.cli_ok(&[
        "profile",
        "add",
        "office",
        "--file",
        site.to_str().expect("path"),
    ]);
    for mac in [MAC, OTHER] {
        server.cli_ok(&["device", "add", mac, "--profile", "office"]);
    }
    let mut phone = Phone::new(server.device, MAC, UA, &user, &pass);
    // Real files are served.
    let r = phone.request("PUT", &format!("/contacts/{MAC}-directory.xml"), b"<mine/>");
    assert!(matches!(r.status, 201 | 204), "{}", r.text());
    assert_eq!(
        phone.get(&format!("/contacts/{MAC}-directory.xml")).status,
        200
    );
    let data = server.data_dir();
    let secret = write_file(server.dir.path(), "outside.txt", b"not for phones");
    let other_dir = data.join("uploads").join(OTHER).join("contacts");
    std::fs::create_dir_all(&other_dir).expect("dir");
    let other_file = other_dir.join(format!("{OTHER}-directory.xml"));
    std::fs::write(&other_file, b"<theirs/>").expect("write");

    // A link among a device's uploads, to another device's file and to a file outside.
    let mine = data.join("uploads").join(MAC);
    for (dir, name, target) in [
        ("contacts", format!("{MAC}-calls.xml"), &other_file),
        ("overrides", format!("{MAC}-phone.cfg"), &secret),
    ] {
        std::fs::create_dir_all(mine.join(dir)).expect("dir");
        std::os::unix::fs::symlink(target, mine.join(dir).join(&name)).expect("link");
    }
    std::os::unix::fs::symlink(&secret, mine.join("calllists")).expect("dir link");
    for path in [
        format!("/overrides/{MAC}-phone.cfg"),
        format!("/calllists/{MAC}-calls.xml"),
    ] {
        let r = phone.get(&path);
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        assert!(!r.text().contains("not for phones") && !r.text().contains("theirs"));
    }

    // Shared assets: a link, even to a file inside the assets directory.
    let assets = data.join("assets");
    std::fs::write(assets.join("logo.txt"), b"real asset").expect("asset");
    std::os::unix::fs::symlink(assets.join("logo.txt"), assets.join("alias.txt")).expect("link");
    std::os::unix::fs::symlink(&secret, assets.join("out.txt")).expect("link");
    assert_eq!(phone.get("/logo.txt").status, 200);
    for path in ["/alias.txt", "/out.txt"] {
        assert_eq!(phone.get(path).status, 404, "{path}");
    }
}
