//! The admin side: the first password, users with API tokens, API calls, console sessions
//! with their CSRF token, and the security headers every admin answer carries.

use super::*;

/// The one-time password the first start printed for `admin`.
pub fn admin_password(server: &ZServer) -> String {
    let out = server.output.lock().expect("lock").clone();
    out.lines()
        .find_map(|l| l.split("one-time password: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .map(String::from)
        .unwrap_or_else(|| panic!("no one-time password in the output:\n{out}"))
}

/// Creates a user (with a known password) and an API token for it; returns the token.
pub fn user_with_token(server: &ZServer, name: &str, role: &str, company: &str) -> String {
    user_with_token_args(server, name, &["--role", role, "--company", company])
}

/// The password `user_with_token` gives.
pub const TEST_USER_PASSWORD: &str = "a-long-test-password";

/// Creates a user with `args` after `user add NAME` (role, company, accounts) and the
/// password `TEST_USER_PASSWORD`, and an API token for it; returns the token.
pub fn user_with_token_args(server: &ZServer, name: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(bin())
        .args(["user", "add", name])
        .args(args)
        .args(["--password-stdin", "--config"])
        .arg(&server.config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin
                .take()
                .expect("stdin")
                .write_all(format!("{TEST_USER_PASSWORD}\n").as_bytes())?;
            c.wait_with_output()
        })
        .expect("user add");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server
        .cli_ok(&["user", "token", name, "--name", "test"])
        .trim()
        .to_string()
}

/// Adds an account `slug` named `name` with its own device credentials (CLI `account add`).
pub fn add_account(server: &ZServer, slug: &str, name: &str) {
    server.cli_ok(&[
        "account",
        "add",
        slug,
        "--name",
        name,
        "--user",
        &format!("{slug}phones"),
        "--password",
        "Branch-Passw0rd",
    ]);
}

/// One API request; `token` becomes a bearer token.
pub fn api(server: &ZServer, method: &str, path: &str, token: Option<&str>, body: &str) -> Resp {
    api_with(server, method, path, token, body, &[])
}

/// One API request with extra headers.
pub fn api_with(
    server: &ZServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
    extra: &[(&str, &str)],
) -> Resp {
    let mut conn = Conn::open(server.admin);
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("Connection", "close"),
    ];
    headers.extend_from_slice(extra);
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    conn.request(method, &format!("/api/v1{path}"), &headers, body.as_bytes())
}

/// Checks the security headers of a console page by their values: sent once each, no
/// sniffing, no framing, no referrer, nothing cached, and a Content-Security-Policy that
/// allows only this origin (no inline scripts or styles, no other sources, no framing,
/// forms posted only here).
pub fn assert_security_headers(r: &Resp, path: &str) {
    for (name, want) in [
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        ("Cache-Control", "no-store"),
    ] {
        assert_eq!(r.headers_named(name), vec![want], "{path}: {name}");
    }
    let csp = r.headers_named("Content-Security-Policy");
    assert_eq!(csp.len(), 1, "{path}: {csp:?}");
    let directives: std::collections::BTreeMap<&str, Vec<&str>> = csp[0]
        .split(';')
        .filter_map(|d| {
            let mut words = d.split_whitespace();
            Some((words.next()?, words.collect()))
        })
        .collect();
    assert_eq!(
        directives.get("default-src"),
        Some(&vec!["'self'"]),
        "{path}: {csp:?}"
    );
    assert_eq!(
        directives.get("frame-ancestors"),
        Some(&vec!["'none'"]),
        "{path}: {csp:?}"
    );
    assert_eq!(
        directives.get("form-action"),
        Some(&vec!["'self'"]),
        "{path}: {csp:?}"
    );
    for (name, sources) in &directives {
        assert!(
            sources
                .iter()
                .all(|s| !s.contains("unsafe") && *s != "*" && !s.starts_with("http")),
            "{path}: {name} {sources:?}"
        );
    }
}

/// The parsed JSON body of a response.
pub fn json(r: &Resp) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.text()))
}

/// A signed-in browser-like client: keeps the cookie, adds the CSRF token to POSTs.
pub struct Session {
    pub addr: std::net::SocketAddr,
    pub cookie: String,
    pub csrf: String,
}

pub fn form_body(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                percent_encoding::utf8_percent_encode(k, percent_encoding::NON_ALPHANUMERIC),
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

pub fn post_raw(addr: std::net::SocketAddr, path: &str, cookie: &str, body: &str) -> Resp {
    let mut c = Conn::open(addr);
    let mut headers = vec![
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Connection", "close"),
    ];
    if !cookie.is_empty() {
        headers.push(("Cookie", cookie));
    }
    c.request("POST", path, &headers, body.as_bytes())
}

/// A sign-in form posted as a browser does, without following the answer (for the
/// two-factor and directory steps a test checks one by one).
pub fn post_sign_in(server: &ZServer, user: &str, password: &str) -> Resp {
    post_raw(
        server.admin,
        "/login",
        "",
        &form_body(&[("username", user), ("password", password)]),
    )
}

/// The `name=value` of the cookie an answer sets.
pub fn cookie_of(r: &Resp) -> String {
    r.header("Set-Cookie")
        .and_then(|c| c.split(';').next())
        .expect("cookie")
        .to_string()
}

/// A console GET with a session cookie.
pub fn get_with_cookie(server: &ZServer, cookie: &str, path: &str) -> Resp {
    let mut c = Conn::open(server.admin);
    c.request(
        "GET",
        path,
        &[("Cookie", cookie), ("Connection", "close")],
        b"",
    )
}

impl Session {
    pub fn sign_in(server: &ZServer, user: &str, password: &str) -> Session {
        let r = post_raw(
            server.admin,
            "/login",
            "",
            &form_body(&[("username", user), ("password", password)]),
        );
        assert_eq!(r.status, 303, "{}", r.text());
        let set = r.header("Set-Cookie").expect("cookie").to_string();
        let cookie = set.split(';').next().expect("pair").to_string();
        let mut s = Session {
            addr: server.admin,
            cookie,
            csrf: String::new(),
        };
        let page = s.get("/password");
        s.csrf = csrf_of(&page.text());
        s
    }

    /// Signs in as the first admin and replaces the one-time password.
    pub fn admin(server: &ZServer) -> Session {
        let pw = admin_password(server);
        let s = Session::sign_in(server, "admin", &pw);
        let r = s.post(
            "/password",
            &[
                ("current_password", &pw),
                ("new_password", "a-long-new-password"),
                ("repeat_password", "a-long-new-password"),
            ],
        );
        assert_eq!(r.status, 303, "{}", r.text());
        s
    }

    pub fn get(&self, path: &str) -> Resp {
        let mut c = Conn::open(self.addr);
        c.request(
            "GET",
            path,
            &[("Cookie", &self.cookie), ("Connection", "close")],
            b"",
        )
    }

    pub fn post(&self, path: &str, fields: &[(&str, &str)]) -> Resp {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        post_raw(self.addr, path, &self.cookie, &form_body(&all))
    }
}

pub fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("csrf field")
        .to_string()
}
