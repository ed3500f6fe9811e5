//! External mode and the file transport with real programs: a shell script (arguments,
//! environment, failure, timeout, not blocking phones) and an S3-compatible server (moto's
//! server mode from PyPI, started here on a loopback port; `.ci/run` installs it).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{UA_VVX500_APP, ZServer, eventually, require, write_file};

mod console_s3;

const MAC: &str = "0004f2aabbcc";
const SEGMENT: &str = "Polycom_UCS_Device";
/// Fast scans and a short debounce, so tests do not wait.
const FAST: &str = "external.scan_interval_ms = 100\nexternal.debounce_ms = 300\n";

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = write_file(dir, name, format!("#!/bin/sh\n{body}\n").as_bytes());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

fn external_settings<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "settings",
        "set",
        "mode=external",
        "server_address=pbx.example.com",
        "external_server=dms.example.com",
        "external_user=dms",
        "external_password=dms-secret",
    ];
    v.extend_from_slice(extra);
    v
}

fn add_device(server: &ZServer) {
    let f = write_file(
        server.dir.path(),
        "site.cfg",
        b"<c u.x=\"${PROTO_URL}\" l.x=\"${LABEL}\" s.x=\"${PROV_MODEL_SEGMENT}\"/>",
    );
    server.cli_ok(&["profile", "add", "p1", "--file", f.to_str().expect("utf-8")]);
    server.cli_ok(&["device", "add", MAC, "--profile", "p1"]);
}

/// The runs the recording script made, oldest first.
fn runs(dir: &Path) -> Vec<String> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    names.sort();
    names
        .iter()
        .filter(|p| p.extension().is_none_or(|e| e != "tmp"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect()
}

#[test]
fn the_script_transport_gets_the_files_and_the_environment_without_blocking_phones() {
    let server = ZServer::start_with(FAST);
    let out = server.dir.path().join("runs");
    std::fs::create_dir_all(&out).expect("mkdir");
    let push = script(
        server.dir.path(),
        "push.sh",
        &format!(
            "f={}/run-$(date +%s%N)\n{{ echo \"ARGS $*\"; env | sort; echo \"CWD $(pwd)\"; \
             for a in \"$@\"; do test -f \"$a\" && echo \"FILE $a\"; done; }} > \"$f.tmp\"\n\
             mv \"$f.tmp\" \"$f\"",
            out.display()
        ),
    );
    let mut args = external_settings(&["transport=script"]);
    let script_path = format!("script_path={}", push.display());
    args.push(&script_path);
    let said = server.cli_ok(&args);
    assert!(
        said.contains("device requests, the access log and Auto-Sync do not apply"),
        "{said}"
    );
    assert!(!said.contains("dms-secret"), "{said}");
    add_device(&server);
    assert!(
        eventually(Duration::from_secs(15), || !runs(&out).is_empty()),
        "the script never ran: {}",
        server.output.lock().expect("lock")
    );
    let run = runs(&out).remove(0);
    let ext = server.data_dir().join("external");
    let seg = ext.join(SEGMENT);
    let files = [
        format!("{MAC}.cfg"),
        format!("{MAC}-device.cfg"),
        format!("{MAC}-profile.cfg"),
    ];
    let args_line: String = files
        .iter()
        .map(|f| seg.join(f).display().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(run.contains(&format!("ARGS {args_line}\n")), "{run}");
    for f in &files {
        assert!(
            run.contains(&format!("FILE {}", seg.join(f).display())),
            "{run}"
        );
    }
    for env in [
        format!("PROV_MAC={MAC}"),
        "PROV_TENANT=Default".into(),
        "PROV_MODE=external".into(),
        "PROV_SERVER=dms.example.com".into(),
        format!("PROV_MODEL_SEGMENT={SEGMENT}"),
        format!("CWD {}", ext.display()),
    ] {
        assert!(run.contains(&format!("{env}\n")), "{env} missing: {run}");
    }
    // A clean environment: nothing of the server's leaks.
    assert!(!run.contains("HOME="), "{run}");
    let profile = std::fs::read_to_string(seg.join(&files[2])).expect("generated");
    assert_eq!(
        profile,
        format!(
            "<c u.x=\"https://dms:dms-secret@dms.example.com/provisioning/{SEGMENT}/\" l.x=\"\" s.x=\"{SEGMENT}\"/>"
        )
    );

    // A burst of changes is pushed once, with the last values.
    let before = runs(&out).len();
    for label in ["one", "two", "three"] {
        server.cli_ok(&["device", "set-vars", MAC, "--label", label]);
    }
    assert!(eventually(Duration::from_secs(15), || {
        std::fs::read_to_string(seg.join(&files[2])).is_ok_and(|t| t.contains("l.x=\"three\""))
            && runs(&out).len() > before
    }));
    std::thread::sleep(Duration::from_millis(1500));
    let pushes = runs(&out).len() - before;
    assert!(pushes <= 2, "{pushes} pushes for one burst");

    // A slow script never delays a phone: the script waits until the test lets it go, so
    // a phone served meanwhile was served while the script ran.
    let gate = server.dir.path().join("release");
    let started_marker = server.dir.path().join("script-started");
    let slow = script(
        server.dir.path(),
        "slow.sh",
        &format!(
            "touch {}\nwhile [ ! -e {} ]; do sleep 0.05; done",
            started_marker.display(),
            gate.display()
        ),
    );
    let slow_path = format!("script_path={}", slow.display());
    server.cli_ok(&["settings", "set", &slow_path, "script_timeout_secs=60"]);
    server.cli_ok(&["device", "set-vars", MAC, "--label", "four"]);
    assert!(
        eventually(Duration::from_secs(15), || started_marker.exists()),
        "the push did not start"
    );
    let mut phone = server.phone(MAC, UA_VVX500_APP);
    let r = phone.get(&format!("/{MAC}-profile.cfg"));
    assert_eq!(r.status, 200);
    assert!(r.text().contains("l.x=\"four\""), "{}", r.text());
    let done = || {
        server
            .output
            .lock()
            .expect("lock")
            .matches(&format!("{MAC} (script): script exit code 0"))
            .count()
    };
    let before = done();
    std::fs::write(&gate, b"").expect("release the script");
    assert!(
        eventually(Duration::from_secs(15), || done() > before),
        "{}",
        server.output.lock().expect("lock")
    );
}

#[test]
fn script_failures_and_timeouts_are_reported_and_files_stay() {
    let server = ZServer::start();
    let fail = script(
        server.dir.path(),
        "fail.sh",
        "echo boom; echo oops >&2; exit 3",
    );
    let mut args = external_settings(&["transport=script"]);
    let p = format!("script_path={}", fail.display());
    args.push(&p);
    server.cli_ok(&args);
    add_device(&server);
    let out = server.cli(&["generate", "--all"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        text.contains(&format!("{MAC} FAILED: script exit code 3")),
        "{text}"
    );
    assert!(text.contains("boom") && text.contains("oops"), "{text}");
    let seg = server.data_dir().join("external").join(SEGMENT);
    assert!(
        seg.join(format!("{MAC}.cfg")).is_file(),
        "files stay on disk"
    );

    // Killed at the timeout, with what it started.
    let hang = script(
        server.dir.path(),
        "hang.sh",
        "echo started; sleep 30 & sleep 30",
    );
    let p = format!("script_path={}", hang.display());
    server.cli_ok(&["settings", "set", &p, "script_timeout_secs=1"]);
    let started = Instant::now();
    let out = server.cli(&["generate", "--all"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert!(text.contains("script killed after the timeout"), "{text}");
    assert!(text.contains("started"), "{text}");

    // An unchanged device is not pushed again without --all.
    let ok = script(server.dir.path(), "ok.sh", "exit 0");
    let p = format!("script_path={}", ok.display());
    server.cli_ok(&["settings", "set", &p]);
    let text = server.cli_ok(&["generate"]);
    assert!(
        text.contains("1 device(s): 0 with new or changed files"),
        "{text}"
    );
    assert!(!text.contains("pushed"), "{text}");
    let text = server.cli_ok(&["generate", "--all"]);
    assert!(
        text.contains(&format!("{MAC} pushed: script exit code 0")),
        "{text}"
    );
}

/// moto's S3 server on a loopback port, stopped when dropped.
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    fn start() -> Option<Moto> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let port_s = port.to_string();
        let candidates: [(&str, Vec<&str>); 2] = [
            ("moto_server", vec!["-H", "127.0.0.1", "-p", &port_s]),
            (
                "python3",
                vec!["-m", "moto.server", "-H", "127.0.0.1", "-p", &port_s],
            ),
        ];
        for (program, args) in candidates {
            let Ok(mut child) = Command::new(program)
                .args(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
            else {
                continue;
            };
            let up = eventually(Duration::from_secs(20), || {
                if let Ok(Some(_)) = child.try_wait() {
                    return true;
                }
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            });
            if up && matches!(child.try_wait(), Ok(None)) {
                return Some(Moto { child, port });
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        require(
            false,
            "moto's S3 server could not be started (pip install 'moto[server]'); the S3 \
             transport was not tested",
        );
        None
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn bucket(&self, name: &str) -> rusty_s3::Bucket {
        rusty_s3::Bucket::new(
            self.endpoint().parse().expect("url"),
            rusty_s3::UrlStyle::Path,
            name.to_string(),
            "us-east-1",
        )
        .expect("bucket")
    }

    fn create_bucket(&self, name: &str) {
        use rusty_s3::S3Action;
        let url = self
            .bucket(name)
            .create_bucket(&creds())
            .sign(Duration::from_secs(60));
        let resp = ureq::put(url.as_str()).send_empty().expect("create bucket");
        assert!(resp.status().is_success(), "{}", resp.status());
    }

    /// The object's text, or `None` when absent.
    fn get(&self, bucket: &str, key: &str) -> Option<String> {
        use rusty_s3::S3Action;
        let url = self
            .bucket(bucket)
            .get_object(Some(&creds()), key)
            .sign(Duration::from_secs(60));
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut resp = agent.get(url.as_str()).call().expect("get");
        resp.status()
            .is_success()
            .then(|| resp.body_mut().read_to_string().expect("body"))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn creds() -> rusty_s3::Credentials {
    rusty_s3::Credentials::new("testing", "testing-secret")
}

#[test]
fn the_s3_transport_uploads_with_the_prefix_overwrites_and_refuses_unreachable_endpoints() {
    let Some(moto) = Moto::start() else {
        return;
    };
    moto.create_bucket("zt-configs");
    let server = ZServer::start_with(FAST);
    let s3 = |endpoint: &str, bucket: &str| -> Vec<String> {
        [
            "transport=s3".to_string(),
            format!("s3_endpoint={endpoint}"),
            format!("s3_bucket={bucket}"),
            "s3_access_key=testing".into(),
            "s3_secret_key=testing-secret".into(),
            "s3_prefix=site1".into(),
        ]
        .into()
    };
    let with = |extra: &[String]| -> Vec<String> {
        let mut v: Vec<String> = external_settings(&[])
            .into_iter()
            .map(String::from)
            .collect();
        v.extend_from_slice(extra);
        v
    };

    // Refused at save time, with the field to fix; nothing saved.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let args = with(&s3(&format!("http://127.0.0.1:{closed}"), "zt-configs"));
    let out = server.cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("s3_endpoint: cannot reach"), "{err}");
    assert!(!err.contains("testing-secret"), "{err}");
    let args = with(&s3(&moto.endpoint(), "no-such-bucket"));
    let out = server.cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("s3_bucket: bucket `no-such-bucket` does not exist"),
        "{err}"
    );
    assert!(server.cli_ok(&["settings", "show"]).contains("Local mode"));

    // Saved once the bucket answers; the server uploads a new device's files by itself.
    let args = with(&s3(&moto.endpoint(), "zt-configs"));
    let said = server.cli_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(said.contains("S3: bucket `zt-configs`"), "{said}");
    assert!(!said.contains("testing-secret"));
    assert!(
        !server
            .cli_ok(&["settings", "show"])
            .contains("testing-secret")
    );
    std::fs::create_dir_all(server.data_dir().join("assets")).expect("mkdir");
    std::fs::write(
        server.data_dir().join("assets/000000000000-directory.xml"),
        b"<directory/>",
    )
    .expect("asset");
    std::fs::create_dir_all(server.data_dir().join("firmware/5.9.8.1234")).expect("mkdir");
    std::fs::write(
        server.data_dir().join("firmware/5.9.8.1234/sip.ld"),
        b"image",
    )
    .expect("fw");
    add_device(&server);
    let key = format!("site1/{SEGMENT}/{MAC}-profile.cfg");
    assert!(
        eventually(Duration::from_secs(20), || moto
            .get("zt-configs", &key)
            .is_some()),
        "not uploaded: {}",
        server.output.lock().expect("lock")
    );
    let body = moto.get("zt-configs", &key).expect("object");
    assert!(body.contains("l.x=\"\""), "{body}");
    for k in [
        format!("site1/{SEGMENT}/{MAC}.cfg"),
        format!("site1/{SEGMENT}/{MAC}-device.cfg"),
    ] {
        assert!(moto.get("zt-configs", &k).is_some(), "{k}");
    }
    assert!(
        moto.get("zt-configs", &format!("{SEGMENT}/{MAC}.cfg"))
            .is_none(),
        "prefix"
    );
    // Shared assets and firmware go to the same bucket.
    assert!(eventually(Duration::from_secs(10), || {
        moto.get("zt-configs", "site1/assets/000000000000-directory.xml")
            .is_some_and(|b| b == "<directory/>")
            && moto
                .get("zt-configs", "site1/firmware/5.9.8.1234/sip.ld")
                .is_some()
    }));

    // A change overwrites the object.
    server.cli_ok(&["device", "set-vars", MAC, "--label", "Lobby"]);
    assert!(
        eventually(Duration::from_secs(20), || moto
            .get("zt-configs", &key)
            .is_some_and(|b| b.contains("l.x=\"Lobby\""))),
        "not overwritten: {}",
        server.output.lock().expect("lock")
    );
    // The CLI pushes too, and syncs only changed assets.
    let text = server.cli_ok(&["generate", "--all"]);
    assert!(
        text.contains(&format!("{MAC} pushed: uploaded 3 files")),
        "{text}"
    );
    assert!(text.contains("0 uploaded, 2 unchanged"), "{text}");

    // An endpoint that goes away: the failure is logged, the files stay on disk.
    drop(moto);
    server.cli_ok(&["device", "set-vars", MAC, "--label", "After"]);
    assert!(
        eventually(Duration::from_secs(20), || server
            .output
            .lock()
            .expect("lock")
            .contains("failed, files kept on disk")),
        "{}",
        server.output.lock().expect("lock")
    );
    let on_disk = std::fs::read_to_string(
        server
            .data_dir()
            .join("external")
            .join(SEGMENT)
            .join(format!("{MAC}-profile.cfg")),
    )
    .expect("on disk");
    assert!(on_disk.contains("After"), "{on_disk}");
    assert!(
        !server
            .output
            .lock()
            .expect("lock")
            .contains("testing-secret")
    );
}

#[test]
fn generations_running_at_once_all_succeed_and_leave_whole_files() {
    // The server's own scan and any number of `generate` runs (the console's push, the
    // CLI) may write the same files at the same moment.
    let server = ZServer::start_with(FAST);
    server.cli_ok(&external_settings(&[]));
    add_device(&server);
    for i in 1..40 {
        server.cli_ok(&[
            "device",
            "add",
            &format!("0004f2ab{i:04x}"),
            "--profile",
            "p1",
        ]);
    }
    for round in 0..4 {
        // Every file changes, so every run writes every file.
        server.cli_ok(&[
            "settings",
            "set",
            &format!("external_server=dms{round}.example.com"),
        ]);
        let runs: Vec<_> = (0..6)
            .map(|_| {
                Command::new(crate::common::bin())
                    .args(["generate", "--all", "--no-push", "--config"])
                    .arg(&server.config)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("generate")
            })
            .collect();
        for r in runs {
            let out = r.wait_with_output().expect("wait");
            assert!(
                out.status.success(),
                "round {round}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let seg = server.data_dir().join("external").join(SEGMENT);
        let profile =
            std::fs::read_to_string(seg.join(format!("{MAC}-profile.cfg"))).expect("file");
        assert!(
            profile.contains(&format!("dms{round}.example.com")),
            "{profile}"
        );
    }
}
