//! One global cap for the files of unassociated MACs (issue 19, item 7): anyone holding the
//! account credential can make a MAC "seen" with one GET and upload for it, so all such
//! MACs together store at most `limits.unassociated_upload_bytes`; beyond it an upload
//! gets 507 with the reason and a log line, while associated devices upload as before.

use std::time::Duration;

use crate::common::*;

const SEEN_A: &str = "0004f2000a01";
const SEEN_B: &str = "0004f2000a02";
const ASSOCIATED: &str = "0004f2000a03";

/// Makes `mac` seen with one GET, then uploads `size` bytes for it once the sighting is
/// stored (an unknown MAC's upload is 404 until then).
fn seen_then_upload(server: &ZServer, mac: &str, size: usize) -> Resp {
    let mut phone = server.phone(mac, UA_VVX500_APP);
    let _ = phone.get(&format!("/{mac}.cfg"));
    let mut last = None;
    let stored = eventually(Duration::from_secs(10), || {
        let r = phone.request("PUT", &format!("/{mac}-app.log"), &vec![b'x'; size]);
        let known = r.status != 404;
        last = Some(r);
        known
    });
    let r = last.expect("a response");
    assert!(stored, "the MAC was never seen: {} {}", r.status, r.text());
    r
}

#[test]
fn unassociated_macs_share_one_upload_cap_and_associated_devices_are_never_held_back() {
    let server = ZServer::start_with("limits.unassociated_upload_bytes = 4096");
    server.set_credentials();
    server.serve_secrets_to_account();
    server.cli_ok(&["profile", "add", "office"]);
    server.cli_ok(&["device", "add", ASSOCIATED, "--profile", "office"]);

    let first = seen_then_upload(&server, SEEN_A, 3000);
    assert_eq!(first.status, 201, "{}", first.text());
    let over = seen_then_upload(&server, SEEN_B, 3000);
    assert_eq!(over.status, 507, "{}", over.text());
    assert!(
        over.text().contains("limits.unassociated_upload_bytes"),
        "the refusal says why: {}",
        over.text()
    );
    // Within what is left, an unassociated MAC still stores.
    let small = server.phone(SEEN_B, UA_VVX500_APP).request(
        "PUT",
        &format!("/{SEEN_B}-app.log"),
        &[b'y'; 1000],
    );
    assert_eq!(small.status, 201, "{}", small.text());
    // An associated device is never counted against the cap.
    let mut phone = server.phone(ASSOCIATED, UA_VVX500_APP);
    for name in ["app.log", "boot.log"] {
        let r = phone.request("PUT", &format!("/{ASSOCIATED}-{name}"), &[b'z'; 3000]);
        assert_eq!(r.status / 100, 2, "{name}: {}", r.text());
    }
    let log = server.stop();
    assert!(
        log.contains("refused") && log.contains("limits.unassociated_upload_bytes"),
        "a log line names the cap: {log}"
    );
}
