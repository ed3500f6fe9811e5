//! CLI secrets off the command line (issue 19, item 7): every secret option takes `-`
//! (standard input) or `file:PATH`, so a password never shows in `ps` or shell history;
//! the README's quick start does so.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::common::*;

const MAC: &str = "0004f2000991";

fn with_stdin(server: &ZServer, args: &[&str], input: &str) -> std::process::Output {
    let mut child = Command::new(bin())
        .args(args)
        .arg("--config")
        .arg(&server.config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    child.wait_with_output().expect("wait")
}

#[test]
fn secret_options_read_standard_input_or_a_file() {
    let server = ZServer::start();
    server.set_credentials();
    let site = write_file(server.dir.path(), "site.cfg", b"<polycomConfig/>");
    server.cli_ok(&[
        "profile",
        "add",
        "office",
        "--file",
        site.to_str().expect("path"),
    ]);
    let out = with_stdin(
        &server,
        &[
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
            "-",
        ],
        "Stdin-Line-Secret-1\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered = server.cli_ok(&["render", MAC, "--host", "prov.example.com"]);
    assert!(
        rendered.contains("reg.1.auth.password=\"Stdin-Line-Secret-1\""),
        "{rendered}"
    );

    let file = write_file(server.dir.path(), "prov.secret", b"File-Prov-Secret-2\n");
    let other = "0004f2000992";
    server.cli_ok(&[
        "device",
        "add",
        other,
        "--profile",
        "office",
        "--prov-server",
        "https://prov.example.com/",
        "--prov-user",
        "p",
        "--prov-password",
        &format!("file:{}", file.display()),
    ]);
    let rendered = server.cli_ok(&["render", other, "--host", "prov.example.com"]);
    assert!(rendered.contains("File-Prov-Secret-2"), "{rendered}");

    // Two options cannot share standard input; a missing file is named.
    let out = with_stdin(
        &server,
        &[
            "device",
            "add",
            "0004f2000993",
            "--profile",
            "office",
            "--prov-password",
            "-",
            "--sip-password",
            "-",
        ],
        "a\nb\n",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--sip-password"),
        "{err}"
    );
    let err = server.cli_err(&[
        "device",
        "add",
        "0004f2000994",
        "--profile",
        "office",
        "--sip-password",
        "file:/nonexistent/secret",
    ]);
    assert!(
        err.contains("--sip-password") && err.contains("/nonexistent/secret"),
        "{err}"
    );
    // Nothing half-written.
    assert!(!server.cli_ok(&["device", "list"]).contains("0004f2000993"));
}

#[test]
fn the_readme_quick_start_keeps_secrets_off_the_command_line() {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .expect("README");
    let start = readme.find("## Quick start").expect("a quick start");
    let end = readme[start..]
        .find("```\n\n")
        .map_or(readme.len(), |e| start + e);
    for line in readme[start..end].lines() {
        for option in [
            "--password ",
            "--sip-password '",
            "--prov-password '",
            "--sip-password \"",
        ] {
            assert!(
                !line.contains(option),
                "a secret on the command line: {line}"
            );
        }
    }
}
