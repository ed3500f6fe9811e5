//! HTTPS with admin-supplied files and the admin listener: PKCS#1 and SEC1 keys, startup
//! errors that name the file (not a key, a key of another certificate, no certificate, a
//! certificate from a CA the phones were not given), reload on SIGHUP (and a failed reload
//! that keeps the previous certificate), and the local CA offered on HTTPS admin.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::common::*;
use crate::tls::{ca_file, curl, https, s_client};

/// Starts the binary expecting it to fail; returns stderr.
fn start_fails(extra: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_file(
        dir.path(),
        "c.toml",
        format!(
            "data_dir = {:?}\ndevice.http_listen = \"127.0.0.1:0\"\ndevice.https_listen = \"127.0.0.1:0\"\nadmin.listen = \"127.0.0.1:0\"\n{extra}\n",
            dir.path().join("data").to_string_lossy()
        )
        .as_bytes(),
    );
    let out: Output = Command::new(bin())
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    assert!(!out.status.success(), "must not start");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `openssl` in `dir`, panicking on failure.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed certificate for 127.0.0.1 with a key made by `keygen` args.
fn self_signed(dir: &Path, stem: &str, keygen: &[&str]) -> (PathBuf, PathBuf) {
    let key = format!("{stem}.key");
    let crt = format!("{stem}.pem");
    // `KEY` in `keygen` stands for the key file; otherwise `-out KEY` is appended.
    let mut args: Vec<&str> = keygen
        .iter()
        .map(|a| if *a == "KEY" { key.as_str() } else { a })
        .collect();
    if !keygen.contains(&"KEY") {
        args.extend(["-out", &key]);
    }
    openssl(dir, &args);
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            &key,
            "-out",
            &crt,
            "-days",
            "30",
            "-subj",
            &format!("/CN={stem}"),
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
    );
    (dir.join(crt), dir.join(key))
}

fn files_toml(cert: &Path, key: &Path) -> String {
    format!(
        "tls.cert_file = {:?}\ntls.key_file = {:?}\n",
        cert.to_string_lossy(),
        key.to_string_lossy()
    )
}

#[test]
fn bad_admin_supplied_files_are_startup_errors_naming_the_file() {
    let pki = tempfile::tempdir().expect("tempdir");
    let (cert, key) = self_signed(
        pki.path(),
        "a",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ],
    );
    let (_, other_key) = self_signed(
        pki.path(),
        "b",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ],
    );
    let not_a_key = write_file(pki.path(), "notakey.pem", b"hello, I am not a key\n");
    let err = start_fails(&files_toml(&cert, &not_a_key));
    assert!(
        err.contains(&*not_a_key.to_string_lossy()) && err.contains("not a private key"),
        "{err}"
    );
    let err = start_fails(&files_toml(&cert, &other_key));
    assert!(
        err.contains(&*other_key.to_string_lossy()) && err.contains("does not belong"),
        "{err}"
    );
    let err = start_fails(&files_toml(&not_a_key, &key));
    assert!(
        err.contains(&*not_a_key.to_string_lossy()) && err.contains("no certificate"),
        "{err}"
    );
}

#[test]
fn pkcs1_and_sec1_keys_are_accepted_and_sighup_reloads_without_a_restart() {
    let pki = tempfile::tempdir().expect("tempdir");
    let (cert, key) = self_signed(
        pki.path(),
        "rsa",
        &["genrsa", "-traditional", "-out", "KEY", "2048"],
    );
    assert!(
        std::fs::read_to_string(&key)
            .expect("k")
            .contains("BEGIN RSA PRIVATE KEY")
    );
    let live_cert = pki.path().join("live.pem");
    let live_key = pki.path().join("live.key");
    std::fs::copy(&cert, &live_cert).expect("cp");
    std::fs::copy(&key, &live_key).expect("cp");
    let server = ZServer::start_with(&files_toml(&live_cert, &live_key));
    let addr = https(&server);
    let subject = |ca: &Path| {
        let out = s_client(
            addr,
            &["-CAfile", ca.to_str().expect("p"), "-verify_return_error"],
            b"",
        );
        assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
        out.lines()
            .find(|l| l.starts_with("subject="))
            .unwrap_or_default()
            .to_string()
    };
    assert!(subject(&cert).contains("CN = rsa") || subject(&cert).contains("CN=rsa"));

    // SEC1 EC key: replace the files, SIGHUP, and new connections get the new certificate.
    let (ec_cert, ec_key) = self_signed(
        pki.path(),
        "ec",
        &["ecparam", "-name", "prime256v1", "-genkey", "-noout"],
    );
    assert!(
        std::fs::read_to_string(&ec_key)
            .expect("k")
            .contains("BEGIN EC PRIVATE KEY")
    );
    std::fs::copy(&ec_cert, &live_cert).expect("cp");
    std::fs::copy(&ec_key, &live_key).expect("cp");
    let hup = |server: &ZServer| {
        let pid = server.pid();
        Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .expect("kill");
    };
    hup(&server);
    assert!(eventually(Duration::from_secs(5), || server
        .output
        .lock()
        .expect("l")
        .contains("TLS reloaded")));
    assert!(subject(&ec_cert).contains("ec"), "{}", subject(&ec_cert));

    // A broken replacement is refused on reload; the previous certificate stays in service.
    std::fs::write(&live_key, b"not a key").expect("write");
    hup(&server);
    assert!(eventually(Duration::from_secs(5), || server
        .output
        .lock()
        .expect("l")
        .contains("TLS not reloaded")));
    assert!(subject(&ec_cert).contains("ec"));
}

#[test]
fn a_certificate_from_another_ca_needs_confirmation_once_phones_may_trust_the_local_ca() {
    let server = ZServer::start_with("tls.key_type = \"ecdsa-p256\"");
    let pki = tempfile::tempdir().expect("tempdir");
    let (cert, key) = self_signed(
        pki.path(),
        "foreign",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ],
    );
    let dir = server.stop_keep();
    let restart = |extra: &str| -> Output {
        let config = write_file(
            dir.path(),
            "c2.toml",
            format!(
                "data_dir = {:?}\ndevice.http_listen = \"127.0.0.1:0\"\ndevice.https_listen = \"127.0.0.1:0\"\nadmin.listen = \"127.0.0.1:0\"\n{}{extra}\n",
                dir.path().join("data").to_string_lossy(),
                files_toml(&cert, &key)
            )
            .as_bytes(),
        );
        let mut child = Command::new(bin())
            .args(["serve", "--config"])
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(1500));
        let _ = child.kill();
        child.wait_with_output().expect("wait")
    };
    let out = restart("");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&*cert.to_string_lossy()) && err.contains("tls.confirm_foreign_ca"),
        "{err}"
    );
    let out = restart("tls.confirm_foreign_ca = true");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("device HTTPS listening"),
        "confirmed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_admin_listener_can_use_https_and_offers_the_local_ca() {
    let server = ZServer::start_with("admin.tls = true\ntls.key_type = \"ecdsa-p256\"");
    let (ok, status, body, err) = curl(&[
        "--cacert",
        &ca_file(&server),
        &format!("https://127.0.0.1:{}/tls/ca.pem", server.admin.port()),
    ]);
    assert!(ok && status == 200, "{status} {err}");
    assert_eq!(
        body.trim(),
        std::fs::read_to_string(ca_file(&server))
            .expect("ca")
            .trim()
    );
    assert!(
        server
            .output
            .lock()
            .expect("l")
            .contains("admin listening on https://")
    );
}
