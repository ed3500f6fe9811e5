//! The layers point one way (docs/architecture.md, "Layers"): `cli` and `http` call
//! `actions`, `actions` call `db` and `domain`, `db` reads and writes `domain` types, and
//! `domain` imports none of them — no database, no file system, no clock. A source scan
//! keeps it so: a `use` in the wrong direction fails here with the file and line.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The non-test lines of a source file, numbered: a file named `tests.rs` or `*_tests.rs`
/// is test code, and so is everything from a `#[cfg(test)]` that opens a module.
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name == "tests.rs" || name.ends_with("_tests.rs") {
        return Vec::new();
    }
    let text = std::fs::read_to_string(path).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i].trim();
        if l == "#[cfg(test)]"
            && lines.get(i + 1).is_some_and(|n| {
                n.trim_start().starts_with("mod ") || n.trim_start().starts_with("pub mod ")
            })
        {
            break;
        }
        // Comments say what other layers do; only code counts.
        if !l.starts_with("//") {
            out.push((i + 1, lines[i].to_string()));
        }
        i += 1;
    }
    out
}

/// Every use of a forbidden path in the layer under `src/<dir>`: `file:line: text`.
fn violations(dir: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let base = root.join(dir);
    if base.is_dir() {
        rust_files(&base, &mut files);
    } else {
        files.push(root.join(format!("{dir}.rs")));
    }
    let mut out = Vec::new();
    for f in files {
        for (n, line) in code_lines(&f) {
            for bad in forbidden {
                if line.contains(bad) {
                    out.push(format!(
                        "{}:{n}: `{bad}` in `{}`",
                        f.strip_prefix(&root).unwrap_or(&f).display(),
                        line.trim()
                    ));
                }
            }
        }
    }
    out
}

fn crate_paths(modules: &[&str]) -> Vec<String> {
    modules.iter().map(|m| format!("crate::{m}")).collect()
}

#[test]
fn the_domain_imports_no_other_layer_and_reads_no_database_file_or_clock() {
    let mut forbidden = crate_paths(&[
        "actions", "db", "http", "cli", "server", "diag", "external", "recorder", "metrics",
        "backup", "keyfile", "tls", "config", "datadir", "sip",
    ]);
    forbidden.extend(
        [
            "rusqlite",
            "std::fs",
            "fs::read",
            "fs::write",
            "now_secs()",
            "now_ms()",
            "SystemTime::now",
            "Instant::now",
            "rouille",
            "maud",
        ]
        .map(String::from),
    );
    let refs: Vec<&str> = forbidden.iter().map(String::as_str).collect();
    let found = violations("domain", &refs);
    assert!(
        found.is_empty(),
        "the domain reaches outside itself:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_database_layer_imports_only_the_domain() {
    let forbidden = crate_paths(&[
        "actions", "http", "cli", "server", "diag", "external", "backup", "keyfile", "sip",
    ]);
    let refs: Vec<&str> = forbidden.iter().map(String::as_str).collect();
    let found = violations("db", &refs);
    assert!(
        found.is_empty(),
        "db imports a layer above it:\n{}",
        found.join("\n")
    );
}

#[test]
fn actions_know_nothing_of_http_html_or_the_cli() {
    let mut forbidden = crate_paths(&["http", "cli", "server"]);
    forbidden.extend(["rouille", "maud"].map(String::from));
    let refs: Vec<&str> = forbidden.iter().map(String::as_str).collect();
    let found = violations("actions", &refs);
    assert!(found.is_empty(), "actions reach up:\n{}", found.join("\n"));
}

#[test]
fn the_scan_sees_a_forbidden_import() {
    // The scan itself can fail: a file of this crate that does import the database.
    let found = violations("actions", &["crate::db"]);
    assert!(
        !found.is_empty(),
        "the scan found nothing where imports exist"
    );
}

#[test]
fn the_sip_sender_knows_nothing_of_provisioning() {
    // Like the HTTP engine: it is given an address, a request and perhaps credentials;
    // where to send and whether it is safe to is decided in `actions::sip`.
    let mut forbidden = crate_paths(&[
        "actions", "db", "domain", "http", "server", "cli", "recorder", "metrics", "external",
        "diag", "config", "datadir",
    ]);
    forbidden.extend(["rusqlite", "rouille", "maud"].map(String::from));
    let refs: Vec<&str> = forbidden.iter().map(String::as_str).collect();
    let found = violations("sip", &refs);
    assert!(
        found.is_empty(),
        "the SIP sender reaches into the application:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_http_engine_knows_nothing_of_provisioning() {
    let forbidden = crate_paths(&[
        "actions",
        "db",
        "http::device",
        "http::admin",
        "server",
        "cli",
        "recorder",
        "metrics",
        "external",
        "diag",
        "config",
    ]);
    let refs: Vec<&str> = forbidden.iter().map(String::as_str).collect();
    let found = violations("http/engine", &refs);
    assert!(
        found.is_empty(),
        "the HTTP engine reaches into the application:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_tftp_engine_knows_nothing_of_provisioning() {
    let forbidden = crate_paths(&[
        "actions", "db", "domain", "http", "server", "cli", "recorder", "metrics", "external",
        "diag", "config", "datadir", "tls",
    ]);
    let refs: Vec<&str> = forbidden.iter().map(String::as_str).collect();
    let found = violations("tftp", &refs);
    assert!(
        found.is_empty(),
        "the TFTP engine reaches into the application:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_ftp_engine_knows_nothing_of_provisioning_and_keeps_its_runtime() {
    let forbidden = crate_paths(&[
        "actions", "db", "domain", "http", "server", "cli", "recorder", "metrics", "external",
        "diag", "config", "datadir", "tls", "tftp",
    ]);
    let refs: Vec<&str> = forbidden.iter().map(String::as_str).collect();
    let found = violations("ftp", &refs);
    assert!(
        found.is_empty(),
        "the FTP engine reaches into the application:\n{}",
        found.join("\n")
    );
    // Its async runtime stays inside it: no other module names tokio or the library.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut outside = Vec::new();
    for f in files.iter().filter(|f| !f.starts_with(root.join("ftp"))) {
        for (n, line) in code_lines(f) {
            for word in ["tokio", "libunftp", "unftp_core", "async_trait"] {
                if line.contains(word) {
                    outside.push(format!("{}:{n}: `{word}`", f.display()));
                }
            }
        }
    }
    assert!(
        outside.is_empty(),
        "async code outside src/ftp:\n{}",
        outside.join("\n")
    );
}
