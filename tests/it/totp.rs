//! The second factor of console users (issue 24, item 5): enrolment forced by
//! `auth.totp_required_roles`, sign-in with a code computed here from the secret the
//! enrolment page shows, a wrong code, a code used twice, recovery codes used once, API
//! tokens unaffected, and the secret sealed (absent from the database file and the log).

use crate::common::*;
use crate::directory::{contains, database_bytes};

fn code_at(secret: &str, unix: u64) -> String {
    let raw = totp_rs::Secret::Encoded(secret.to_string())
        .to_bytes()
        .expect("base32");
    totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 0, 30, raw)
        .expect("totp")
        .generate(unix)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    text.split(start)
        .nth(1)
        .and_then(|r| r.split(end).next())
        .unwrap_or_else(|| panic!("no {start} in {text}"))
}

/// Signs in with the password, then the second factor `code`; returns the final answer.
fn sign_in_with_code(server: &ZServer, password: &str, code: &str) -> Resp {
    let r = post_sign_in(server, "admin", password);
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("Location"), Some("/login/code"));
    let cookie = cookie_of(&r);
    // Not signed in yet: the console sends it back to the code page.
    let home = get_with_cookie(server, &cookie, "/");
    assert_eq!(home.status, 303);
    let page = get_with_cookie(server, &cookie, "/login/code");
    assert_eq!(page.status, 200, "{}", page.text());
    let csrf = csrf_of(&page.text());
    post_raw(
        server.admin,
        "/login/code",
        &cookie,
        &form_body(&[("csrf", &csrf), ("code", code)]),
    )
}

#[test]
fn admins_enrol_then_sign_in_with_a_fresh_code_or_an_unused_recovery_code() {
    let server = ZServer::start_with("auth.totp_required_roles = [\"admin\"]");
    let pw = admin_password(&server);
    // An API token of an admin works without a second factor.
    let token = user_with_token(&server, "robot", "admin", "");

    // The password is right; the role requires a second factor: enrolment first.
    let r = post_sign_in(&server, "admin", &pw);
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("Location"), Some("/login/enrol"));
    let cookie = cookie_of(&r);
    assert_eq!(
        get_with_cookie(&server, &cookie, "/profiles").status,
        303,
        "not signed in yet"
    );
    let page = get_with_cookie(&server, &cookie, "/login/enrol").text();
    assert!(page.contains("<svg"), "the QR code is drawn as SVG: {page}");
    let secret = between(&page, "id=\"totp-secret\">", "<").to_string();
    let csrf = csrf_of(&page);
    let enrol = |code: &str| {
        post_raw(
            server.admin,
            "/login/enrol",
            &cookie,
            &form_body(&[("csrf", &csrf), ("code", code)]),
        )
    };
    let good = code_at(&secret, now());
    let wrong = if good == "123456" { "654321" } else { "123456" };
    assert_eq!(enrol(wrong).status, 422, "a wrong code does not enrol");
    let r = enrol(&good);
    assert_eq!(r.status, 200, "{}", r.text());
    let codes: Vec<String> = between(&r.text(), "id=\"recovery-codes\">", "</ul>")
        .split("<code class=\"secret\">")
        .skip(1)
        .map(|c| c.split('<').next().expect("code").to_string())
        .collect();
    assert_eq!(codes.len(), 10, "{}", r.text());
    // Signed in now (the one-time password still has to be changed).
    assert_eq!(get_with_cookie(&server, &cookie, "/password").status, 200);

    // The next sign-in asks for a code: a wrong one, and the one used at enrolment, are
    // refused; the next step's code is accepted once.
    let r = sign_in_with_code(&server, &pw, wrong);
    assert_eq!(r.status, 401, "{}", r.text());
    let r = sign_in_with_code(&server, &pw, &good);
    assert_eq!(r.status, 401, "a code is accepted once: {}", r.text());
    let next = code_at(&secret, now() + 30);
    let r = sign_in_with_code(&server, &pw, &next);
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("Location"), Some("/password"));
    let r = sign_in_with_code(&server, &pw, &next);
    assert_eq!(r.status, 401, "reused within its window: {}", r.text());

    // A recovery code signs in once.
    let r = sign_in_with_code(&server, &pw, &codes[3]);
    assert_eq!(r.status, 303, "{}", r.text());
    let r = sign_in_with_code(&server, &pw, &codes[3]);
    assert_eq!(r.status, 401, "a recovery code is used once: {}", r.text());

    // API tokens are not asked for a second factor.
    let r = api(&server, "GET", "/profiles", Some(&token), "");
    assert_eq!(r.status, 200, "{}", r.text());

    // The secret is sealed: not in the database file nor its WAL, nor in the log.
    let bytes = database_bytes(&server);
    assert!(!contains(&bytes, &secret), "the TOTP secret is sealed");
    let output = server.output.lock().expect("lock").clone();
    assert!(!output.contains(&secret), "{output}");
    for c in &codes {
        assert!(!contains(&bytes, c), "recovery codes are stored hashed");
    }

    // The CLI lists the state and removes a lost second factor (the break-glass for the
    // last admin): the role still requires one, so the next sign-in enrols again.
    let list = server.cli_ok(&["user", "list"]);
    let row = list
        .lines()
        .find(|l| l.starts_with("admin "))
        .expect("admin listed");
    assert!(row.contains("local") && row.ends_with("on"), "{list}");
    server.cli_ok(&["user", "totp-remove", "admin"]);
    let r = post_sign_in(&server, "admin", &pw);
    assert_eq!(r.header("Location"), Some("/login/enrol"), "{}", r.text());
}

#[test]
fn users_without_a_required_role_may_enrol_from_their_own_page() {
    let server = ZServer::start();
    let s = Session::admin(&server);
    let page = s.get("/totp").text();
    let secret = between(&page, "id=\"totp-secret\">", "<").to_string();
    let r = s.post("/totp", &[("code", &code_at(&secret, now()))]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("recovery-codes"));
    let users = s.get("/users").text();
    let row = users
        .split("<tr>")
        .find(|r| r.contains("<td>admin</td>"))
        .expect("admin listed");
    assert!(row.contains("class=\"totp\">on<"), "{row}");
    // The next sign-in asks for the code.
    let r = post_sign_in(&server, "admin", "a-long-new-password");
    assert_eq!(r.header("Location"), Some("/login/code"));
    // An admin removes it (lost phone): the user signs in with the password alone again.
    let r = s.post("/users/admin/totp-remove", &[]);
    assert_eq!(r.status, 303, "{}", r.text());
    let r = post_sign_in(&server, "admin", "a-long-new-password");
    assert_eq!(r.header("Location"), Some("/"));
}
