//! Unit tests of device authentication (`super`).
use super::*;
use crate::domain::account::{AccountId, UnknownDevices};

fn account() -> Account {
    Account {
        id: AccountId(1),
        name: "D".into(),
        slug: "default".into(),
        service_key: "k".into(),
        is_default: true,
        provisioning_enabled: true,
        device_user: Some("PlcmSpIp".into()),
        device_password: Some("PlcmSpIpSecret".into()),
        credential_generation: 1,
        autosync_enabled: true,
        unknown_devices: UnknownDevices::Stage,
        default_profile_id: None,
        device_secrets: false,
        tftp_credential: false,
        ftp_factory_login: true,
        sip: Default::default(),
    }
}

fn auth(limit: u32) -> DeviceAuth {
    DeviceAuth::new(
        "zerotouch",
        true,
        b"secret",
        &AuthConfig {
            failure_limit: limit,
            ..Default::default()
        },
    )
}

fn basic(u: &str, p: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
    )
}

#[test]
fn no_credentials_is_a_challenge_not_a_failure() {
    let a = auth(1);
    let ip: IpAddr = "10.0.0.1".parse().expect("ip");
    for _ in 0..10 {
        assert_eq!(a.check(None, "GET", "/x", ip, &account()), Outcome::Missing);
    }
    assert_eq!(
        a.check(
            Some(&basic("PlcmSpIp", "wrong")),
            "GET",
            "/x",
            ip,
            &account()
        ),
        Outcome::Bad
    );
}

#[test]
fn wrong_credentials_are_throttled_but_valid_ones_never() {
    let a = auth(3);
    let ip: IpAddr = "10.0.0.2".parse().expect("ip");
    let acc = account();
    for _ in 0..3 {
        assert_eq!(
            a.check(Some(&basic("x", "y")), "GET", "/", ip, &acc),
            Outcome::Bad
        );
    }
    assert!(matches!(
        a.check(Some(&basic("x", "y")), "GET", "/", ip, &acc),
        Outcome::Throttled(_)
    ));
    assert!(matches!(
        a.check(
            Some(&basic("PlcmSpIp", "PlcmSpIpSecret")),
            "GET",
            "/",
            ip,
            &acc
        ),
        Outcome::Ok { .. }
    ));
    let other: IpAddr = "10.0.0.3".parse().expect("ip");
    assert_eq!(
        a.check(Some(&basic("x", "y")), "GET", "/", other, &acc),
        Outcome::Bad
    );
}

#[test]
fn digest_with_qop_auth_is_verified() {
    let a = auth(5);
    let nonce = a.nonce();
    let ha1 = md5_hex("PlcmSpIp:zerotouch:PlcmSpIpSecret");
    let ha2 = md5_hex("GET:/0004f2aabbcc.cfg");
    let response = md5_hex(&format!("{ha1}:{nonce}:00000001:abc:auth:{ha2}"));
    let header = format!(
        "Digest username=\"PlcmSpIp\", realm=\"zerotouch\", nonce=\"{nonce}\", uri=\"/0004f2aabbcc.cfg\", \
         qop=auth, nc=00000001, cnonce=\"abc\", response=\"{response}\", algorithm=MD5"
    );
    let ip: IpAddr = "10.0.0.4".parse().expect("ip");
    assert!(matches!(
        a.check(Some(&header), "GET", "/0004f2aabbcc.cfg", ip, &account()),
        Outcome::Ok { .. }
    ));
    // The same response for another URI is refused.
    assert_eq!(
        a.check(Some(&header), "GET", "/other.cfg", ip, &account()),
        Outcome::Bad
    );
}

#[test]
fn older_generations_are_tried_only_after_the_current_one_and_counted_once() {
    let a = auth(1);
    let ip: IpAddr = "10.0.0.5".parse().expect("ip");
    let acc = account();
    let mut asked = 0;
    let ok = a.check_generations(
        Some(&basic("PlcmSpIp", "PlcmSpIpSecret")),
        "GET",
        "/",
        ip,
        &acc,
        || {
            asked += 1;
            Vec::new()
        },
    );
    assert!(matches!(ok, Outcome::Ok { generation: 1, .. }));
    assert_eq!(asked, 0, "the current generation needs no lookup");
    let old = || {
        vec![Candidate {
            generation: 0,
            user: "old".to_string(),
            password: "old-password".to_string(),
            verdict: Ok(()),
            counts: false,
        }]
    };
    assert!(matches!(
        a.check_generations(
            Some(&basic("old", "old-password")),
            "GET",
            "/",
            ip,
            &acc,
            old
        ),
        Outcome::Ok { generation: 0, .. }
    ));
    // Two wrong attempts with a limit of one: the second is throttled, not the first,
    // so trying the older generation did not count as a failure of its own.
    assert_eq!(
        a.check_generations(Some(&basic("x", "y")), "GET", "/", ip, &acc, old),
        Outcome::Bad
    );
    assert!(matches!(
        a.check_generations(Some(&basic("x", "y")), "GET", "/", ip, &acc, old),
        Outcome::Throttled(_)
    ));
}

#[test]
fn a_recognised_credential_refused_inside_its_window_is_never_counted() {
    let a = auth(1);
    let ip: IpAddr = "10.0.0.6".parse().expect("ip");
    let acc = account();
    let refused = || {
        vec![Candidate {
            generation: 0,
            user: "old".to_string(),
            password: "old-password".to_string(),
            verdict: Err(crate::domain::autosync::Refusal::AutoSyncOff),
            counts: false,
        }]
    };
    for _ in 0..5 {
        assert!(matches!(
            a.check_generations(
                Some(&basic("old", "old-password")),
                "GET",
                "/",
                ip,
                &acc,
                refused
            ),
            Outcome::Refused { generation: 0, .. }
        ));
    }
    assert_eq!(a.throttled_ips(), 0);
}

fn digest(nonce: &str, method: &str, uri: &str, nc: Option<u32>) -> String {
    let ha1 = md5_hex("PlcmSpIp:zerotouch:PlcmSpIpSecret");
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    match nc {
        Some(nc) => {
            let nc = format!("{nc:08x}");
            let response = md5_hex(&format!("{ha1}:{nonce}:{nc}:c1:auth:{ha2}"));
            format!(
                "Digest username=\"PlcmSpIp\", realm=\"zerotouch\", nonce=\"{nonce}\", \
                 uri=\"{uri}\", qop=auth, nc={nc}, cnonce=\"c1\", response=\"{response}\""
            )
        }
        None => {
            let response = md5_hex(&format!("{ha1}:{nonce}:{ha2}"));
            format!(
                "Digest username=\"PlcmSpIp\", realm=\"zerotouch\", nonce=\"{nonce}\", \
                 uri=\"{uri}\", response=\"{response}\""
            )
        }
    }
}

#[test]
fn a_digest_response_is_accepted_once_per_nonce_and_count_and_replays_are_never_failures() {
    let a = auth(1);
    let ip: IpAddr = "10.0.0.7".parse().expect("ip");
    let acc = account();
    let nonce = a.nonce();
    let h1 = digest(&nonce, "PUT", "/x", Some(1));
    // Checked before the body: not recorded, so the handler's check still accepts it.
    assert!(matches!(
        a.precheck_generations(Some(&h1), "PUT", "/x", ip, &acc, Vec::new),
        Outcome::Ok { .. }
    ));
    assert!(matches!(
        a.check(Some(&h1), "PUT", "/x", ip, &acc),
        Outcome::Ok { .. }
    ));
    for _ in 0..5 {
        assert_eq!(a.check(Some(&h1), "PUT", "/x", ip, &acc), Outcome::Stale);
        assert_eq!(
            a.precheck_generations(Some(&h1), "PUT", "/x", ip, &acc, Vec::new),
            Outcome::Stale
        );
    }
    // The next count of the same nonce is fine.
    let h2 = digest(&nonce, "PUT", "/x", Some(2));
    assert!(matches!(
        a.check(Some(&h2), "PUT", "/x", ip, &acc),
        Outcome::Ok { .. }
    ));
    // RFC 2069: GET and HEAD only; otherwise challenged again, not counted.
    let old = digest(&nonce, "GET", "/x", None);
    for _ in 0..3 {
        assert!(matches!(
            a.check(Some(&old), "GET", "/x", ip, &acc),
            Outcome::Ok { .. }
        ));
    }
    let old_put = digest(&nonce, "PUT", "/x", None);
    assert_eq!(
        a.check(Some(&old_put), "PUT", "/x", ip, &acc),
        Outcome::Missing
    );
    assert_eq!(a.throttled_ips(), 0, "nothing here was a wrong credential");
    // Every nonce is its own, even within one second.
    assert_ne!(a.nonce(), a.nonce());
}

#[test]
fn the_replay_cache_is_bounded_and_forgetting_never_reopens_a_replay() {
    let mut r = Replays::default();
    let lifetime = 300;
    for i in 0..REPLAY_CAP as u64 {
        let ts = 1_000 + (i as i64 % 100);
        assert!(r.first_use((i, 1), ts, 1_100, lifetime));
    }
    assert!(!r.first_use((5, 1), 1_005, 1_100, lifetime), "a replay");
    // Full: the older half is forgotten, and nonces that old are stale from now on.
    assert!(r.first_use((u64::MAX, 1), 1_099, 1_100, lifetime));
    assert!(r.seen.len() <= REPLAY_CAP / 2 + 2, "{}", r.seen.len());
    assert!(r.floor > 1_000);
    assert!(
        !r.first_use((0, 1), 1_000, 1_100, lifetime),
        "forgotten, still refused"
    );
    assert!(!r.first_use((12_345_678, 7), 1_000, 1_100, lifetime));
}

#[test]
fn forged_nonces_are_refused() {
    let a = auth(5);
    assert_eq!(a.nonce_age("123.deadbeef"), None);
    assert!(a.nonce_age(&a.nonce()).is_some_and(|age| age < 5));
}
