//! Shared helpers of the integration tests: start the real `zerotouch` binary on loopback
//! ports chosen by the kernel with a temporary data directory, run CLI commands against
//! it, and talk HTTP to it the way phones do (raw sockets, so every byte is ours to choose).

#![allow(dead_code)]

mod admin;
mod client;

pub use admin::*;
pub use client::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// User-Agents as docs/design.md §2 gives them.
pub const UA_VVX500_APP: &str = "FileTransport PolycomVVX-VVX_500-UA/5.9.7.47435 Type/Application";
pub const UA_VVX500_UPDATER: &str = "FileTransport PolycomVVX-VVX_500-UA/5.9.7.47435 Type/Updater";
pub const UA_VVX410_APP: &str = "FileTransport PolycomVVX-VVX_410-UA/5.9.5.0614 Type/Application";
pub const UA_TRIO_APP: &str = "FileTransport PolycomRealPresenceTrio-Trio_8800-UA/7.2.2.1094 (SN:0004f2aabbcc) Type/Application";
pub const UA_SPIP_APP: &str =
    "FileTransport PolycomSoundPointIP-SPIP_550-UA/4.0.15.1047 (SN:0004a11a1a1a) Type/Application";
pub const UA_STUDIO_X30: &str =
    "FileTransport G_SERIES-PolyStudioX30-UA/3.10.0_362035 Type/Application";

/// Path of the binary under test.
pub fn bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    // ZEROTOUCH_TEST_BIN: a copy of the binary for long runs (scripts/model-run.sh), so
    // rebuilding the tree meanwhile does not change the server under test.
    BIN.get_or_init(|| {
        std::env::var("ZEROTOUCH_TEST_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_zerotouch").to_string())
    })
}

/// Whether this run is a CI run (`CI` set to anything but empty, `0` or `false`).
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// Skips recorded so far, for the summary printed when the test binary exits.
static SKIPS: Mutex<Vec<String>> = Mutex::new(Vec::new());
static SUMMARY: std::sync::Once = std::sync::Once::new();

/// The one way a test says it cannot run: `available` is what it needs (a tool, a
/// privilege, a service), `reason` what is missing and how to get it. Under CI (`CI` set)
/// a missing need is a test failure with the reason. Elsewhere the test prints one line
/// `SKIP <test>: <reason>` (straight to standard error, past the test harness's capture),
/// the line is repeated in a summary when the run ends, and `false` tells the test to
/// return.
pub fn require(available: bool, reason: &str) -> bool {
    if available {
        return true;
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string();
    assert!(!under_ci(), "{test} cannot run under CI: {reason}");
    let line = format!("SKIP {test}: {reason}");
    let _ = writeln!(std::io::stderr(), "{line}");
    SKIPS.lock().unwrap_or_else(|p| p.into_inner()).push(line);
    SUMMARY.call_once(|| {
        // Printed after the harness's own summary, when the process exits.
        #[allow(unsafe_code)]
        // SAFETY: `atexit` registers a plain function without arguments that only
        // touches a static.
        unsafe {
            libc::atexit(print_skips);
        }
    });
    false
}

extern "C" fn print_skips() {
    let skips = SKIPS.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = format!("\n{} test(s) skipped (they fail under CI):\n", skips.len());
    for s in skips.iter() {
        out.push_str(&format!("  {s}\n"));
    }
    let _ = std::io::stderr().write_all(out.as_bytes());
}

/// Whether a program is on the `PATH`.
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
}

/// Whether this process runs as root (network namespaces, raw sockets).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}

/// The Polycom configuration fixtures of the repository (`tests/fixtures/polycom/`,
/// written for these tests in the shapes real deployments use; its README says which).
pub fn polycom_fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/polycom")
}

/// The `.cfg` files to read in tests that take any fixture: the repository's, then those
/// of the directory `ZEROTOUCH_FIXTURES` names (real files that are not in the
/// repository), sorted by name within each.
pub fn fixture_files() -> Vec<PathBuf> {
    let list = |dir: &Path| {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "cfg"))
            .collect();
        v.sort();
        v
    };
    let mut files = list(&polycom_fixtures());
    assert!(files.len() >= 6, "{files:?}");
    if let Some(extra) = std::env::var_os("ZEROTOUCH_FIXTURES") {
        files.extend(list(Path::new(&extra)));
    }
    files
}

/// A running server with its own data directory.
pub struct ZServer {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub device: SocketAddr,
    /// The device HTTPS listener, when on.
    pub https: Option<SocketAddr>,
    pub admin: SocketAddr,
    /// Everything the server printed on stdout and stderr so far.
    pub output: Arc<Mutex<String>>,
    /// How many of the two output readers reached the end of their stream.
    readers_done: Arc<std::sync::atomic::AtomicUsize>,
    /// Environment of the server and of `cli` commands (e.g. the test clock).
    pub env: Vec<(String, String)>,
}

/// SQL undoing the migrations after 0011, for tests that take a database back to an older
/// schema (then undo their own): add each new migration's undo here, newest first.
pub const UNDO_AFTER_0011: &str = "DROP TRIGGER device_activity_counts_update;
     DROP TRIGGER device_activity_counts_insert;
     DROP TABLE checkin_counts;
     ALTER TABLE device_activity DROP COLUMN firmware_since;
     ALTER TABLE device_activity DROP COLUMN bad_hour;
     ALTER TABLE device_activity DROP COLUMN ok_day;
     ALTER TABLE device_activity DROP COLUMN ok_hour;
     DROP TABLE device_jobs;
     DROP INDEX enrolment_windows_mac;
     DROP INDEX audit_log_action;
     DROP INDEX audit_log_actor;
     DROP INDEX audit_log_account;
     ALTER TABLE import_jobs DROP COLUMN runner;
     ALTER TABLE accounts DROP COLUMN ftp_factory_login;
     DROP TABLE user_accounts;
     ALTER TABLE users DROP COLUMN current_account_id;
     ALTER TABLE users DROP COLUMN all_accounts;
     ALTER TABLE device_sip DROP COLUMN online_checked_at;
     ALTER TABLE accounts DROP COLUMN online_check;
     ALTER TABLE accounts DROP COLUMN apply_after_change;
     ALTER TABLE accounts DROP COLUMN sip_validation;
     ALTER TABLE sessions DROP COLUMN stage;
     DROP TABLE totp_recovery_codes;
     ALTER TABLE users DROP COLUMN totp_last_step;
     ALTER TABLE users DROP COLUMN totp_pending;
     ALTER TABLE users DROP COLUMN totp_secret;
     ALTER TABLE users DROP COLUMN source;
     ALTER TABLE device_activity DROP COLUMN last_sync_ms;
     DROP TABLE device_sip;
     ALTER TABLE device_activity DROP COLUMN last_protocol;
     ALTER TABLE accounts DROP COLUMN tftp_credential;";

/// The variable debug builds read the clock offset from (seconds, in a file).
pub const TEST_CLOCK_VAR: &str = "ZEROTOUCH_TEST_CLOCK_FILE";

impl ZServer {
    /// Starts the server with the default test configuration.
    pub fn start() -> ZServer {
        ZServer::start_with("")
    }

    /// Starts the server; `extra` is TOML appended to the test configuration (it may add
    /// keys to `[limits]` etc. by repeating the table header is not allowed in TOML, so
    /// extra settings use dotted keys, e.g. `limits.upload_bytes = 2048`).
    pub fn start_with(extra: &str) -> ZServer {
        let dir = tempfile::tempdir().expect("tempdir");
        ZServer::start_in(dir, extra)
    }

    /// Starts the server on an existing data directory (e.g. to restart it). Listeners
    /// default to loopback port 0; `extra` may set any of them itself (e.g. to "" to turn
    /// one off), in which case the default line is left out.
    pub fn start_in(dir: tempfile::TempDir, extra: &str) -> ZServer {
        ZServer::start_in_env(dir, extra, Vec::new())
    }

    /// `start_in` with `env` for the server and its `cli` commands (e.g. the test clock of
    /// a server that is restarted).
    pub fn start_in_with_env(
        dir: tempfile::TempDir,
        extra: &str,
        env: Vec<(String, String)>,
    ) -> ZServer {
        ZServer::start_in_env(dir, extra, env)
    }

    /// Starts the server with a simulated clock and `env` for the server and every `cli`
    /// command (e.g. `ZEROTOUCH_TEST_REGRESS`, debug builds only).
    pub fn start_with_clock_env(extra: &str, env: &[(&str, &str)]) -> ZServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = dir.path().join("clock");
        std::fs::write(&clock, "0").expect("clock");
        let mut all = vec![(
            TEST_CLOCK_VAR.to_string(),
            clock.to_string_lossy().into_owned(),
        )];
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        ZServer::start_in_env(dir, extra, all)
    }

    /// Starts the server with a simulated clock: the server and every `cli` command add
    /// the offset `set_clock`/`advance` write (debug builds only).
    pub fn start_with_clock(extra: &str) -> ZServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let clock = dir.path().join("clock");
        std::fs::write(&clock, "0").expect("clock");
        let env = vec![(
            TEST_CLOCK_VAR.to_string(),
            clock.to_string_lossy().into_owned(),
        )];
        ZServer::start_in_env(dir, extra, env)
    }

    /// Moves the simulated clock by `secs` (servers started with `start_with_clock`).
    pub fn advance(&self, secs: i64) {
        let clock = self.dir.path().join("clock");
        let now: i64 = std::fs::read_to_string(&clock)
            .expect("a server started with start_with_clock")
            .trim()
            .parse()
            .expect("offset");
        std::fs::write(&clock, (now + secs).to_string()).expect("clock");
    }

    /// Moves the simulated clock by whole days.
    pub fn advance_days(&self, days: i64) {
        self.advance(days * 86_400);
    }

    fn start_in_env(dir: tempfile::TempDir, extra: &str, env: Vec<(String, String)>) -> ZServer {
        ZServer::try_start_in_with_env(dir, extra, env)
            .unwrap_or_else(|(_, output)| panic!("server did not start; output:\n{output}"))
    }

    /// Starts the server in `dir` (whose database survives); when it does not start (a
    /// listening port taken meanwhile), gives the directory back with what it printed.
    pub fn try_start_in_with_env(
        dir: tempfile::TempDir,
        extra: &str,
        env: Vec<(String, String)>,
    ) -> Result<ZServer, (tempfile::TempDir, String)> {
        let config = dir.path().join("config.toml");
        let data = dir.path().join("data");
        let mut text = format!("data_dir = {:?}\n", data.to_string_lossy());
        for (key, value) in [
            ("device.http_listen", "\"127.0.0.1:0\""),
            ("device.https_listen", "\"127.0.0.1:0\""),
            ("admin.listen", "\"127.0.0.1:0\""),
            ("recording.flush_interval_ms", "50"),
            // Every simulated phone shares 127.0.0.1, like the phones of a site behind one
            // NAT address: exempt from the per-address limits. Tests of those limits use
            // other loopback addresses (127.0.0.2 and up).
            ("limits.nat_allowlist", "[\"127.0.0.1\"]"),
        ] {
            if !extra.contains(key) {
                text.push_str(&format!("{key} = {value}\n"));
            }
        }
        text.push_str(extra);
        text.push('\n');
        std::fs::write(&config, text).expect("write config");
        ZServer::try_spawn(dir, config, env)
    }

    fn try_spawn(
        dir: tempfile::TempDir,
        config: PathBuf,
        env: Vec<(String, String)>,
    ) -> Result<ZServer, (tempfile::TempDir, String)> {
        let mut child = Command::new(bin())
            .args(["serve", "--config"])
            .arg(&config)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start zerotouch");
        let output = Arc::new(Mutex::new(String::new()));
        let readers_done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let out = output.clone();
            let tx = tx.clone();
            let done = readers_done.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    out.lock().expect("lock").push_str(&format!("{line}\n"));
                    let _ = tx.send(line);
                }
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
        drop(tx);
        let (mut device, mut https, mut admin) = (None, None, None);
        let deadline = Instant::now() + Duration::from_secs(30);
        // The admin line comes last of the listener lines.
        while admin.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(l) => l,
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let printed = output.lock().expect("lock").clone();
                    return Err((dir, printed));
                }
            };
            let addr = |l: &str| -> Option<SocketAddr> {
                let rest = l.split("://").nth(1)?;
                rest.trim_end_matches('/').parse().ok()
            };
            if line.contains("device HTTP listening on") {
                device = addr(&line);
            } else if line.contains("device HTTPS listening on") {
                https = addr(&line);
            } else if line.contains("admin listening on") {
                admin = addr(&line);
            }
        }
        Ok(ZServer {
            child: Some(child),
            dir,
            config,
            // With device HTTP off, tests that talk to `device` get the HTTPS port (and a
            // TLS error if they speak plain HTTP to it).
            device: device.or(https).expect("device addr"),
            https,
            admin: admin.expect("admin addr"),
            output,
            readers_done,
            env,
        })
    }

    /// The server's process id (to send it signals).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("running")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs `zerotouch <args> --config <this server's config>` and returns its output.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(bin())
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run zerotouch")
    }

    /// Runs a CLI command that must fail; returns its standard error.
    pub fn cli_err(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            !out.status.success(),
            "zerotouch {args:?} should have failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Like `cli`, but panics unless the command succeeds; returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "zerotouch {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The default account's device credentials.
    pub fn credentials(&self) -> (String, String) {
        let out = self.cli_ok(&["account", "show", "--secrets"]);
        let field = |name: &str| {
            out.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
                .expect("field")
        };
        (field("device user:"), field("device password:"))
    }

    /// Serves secrets and per-device files to the account credential, as installations did
    /// before withholding became the default: for tests whose subject is not enrolment and
    /// that talk to the server as a client holding only the account credential
    /// (`tests/it/secure_default.rs`, `device_secrets.rs` and the model test cover the
    /// default).
    pub fn serve_secrets_to_account(&self) {
        self.cli_ok(&["enrol", "mode", "off"]);
    }

    /// Sets the device credentials to known test values and returns them.
    pub fn set_credentials(&self) -> (String, String) {
        self.cli_ok(&[
            "account",
            "set-credentials",
            "--user",
            "phones",
            "--password",
            "Test-Passw0rd-42",
            "--yes",
        ]);
        ("phones".into(), "Test-Passw0rd-42".into())
    }

    /// A phone with this MAC and User-Agent, using the default account's credentials.
    pub fn phone(&self, mac: &str, ua: &str) -> Phone {
        let (user, password) = self.credentials();
        Phone::new(self.device, mac, ua, &user, &password)
    }

    /// Waits until the recorder has written requests of `mac` (its writes are batched, so
    /// a test that reads activity right after a request must wait for them).
    pub fn wait_recorded(&self, mac: &str) {
        let recorded = eventually(Duration::from_secs(10), || {
            let out = self.cli(&["device", "show", mac]);
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.starts_with("access count:") && !l.trim_end().ends_with(" 0"))
        });
        assert!(recorded, "no recorded request of {mac}");
    }

    /// Sends SIGTERM and waits for the process to exit; returns its output.
    pub fn stop(mut self) -> String {
        self.terminate();
        self.output.lock().expect("lock").clone()
    }

    fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(15);
            let mut exited = false;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    exited = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if !exited {
                let _ = child.kill();
                let _ = child.wait();
            }
            // The readers finish the last lines after the process is gone: wait for them
            // (bounded, in case a child process of the server still holds a pipe).
            let read_by = Instant::now() + Duration::from_secs(5);
            while self.readers_done.load(std::sync::atomic::Ordering::SeqCst) < 2
                && Instant::now() < read_by
            {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// Kills the process without letting it clean up; returns the data directory.
    pub fn kill(mut self) -> tempfile::TempDir {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let dir = tempfile::tempdir().expect("placeholder");
        std::mem::replace(&mut self.dir, dir)
    }

    /// Stops the server (SIGTERM) and returns its data directory and everything it printed.
    pub fn stop_with_output(mut self) -> (tempfile::TempDir, String) {
        self.terminate();
        let out = self.output.lock().expect("lock").clone();
        let dir = tempfile::tempdir().expect("placeholder");
        (std::mem::replace(&mut self.dir, dir), out)
    }

    /// Stops the server and returns its data directory, to restart on it.
    pub fn stop_keep(mut self) -> tempfile::TempDir {
        self.terminate();
        let dir = tempfile::tempdir().expect("placeholder");
        std::mem::replace(&mut self.dir, dir)
    }
}

impl Drop for ZServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs the binary with `--config` appended to the arguments.
pub fn cli_with_config(config: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("run zerotouch")
}

/// Waits until `f` returns true or the timeout passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Writes a file into the test's temporary directory and returns its path.
pub fn write_file(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).expect("write file");
    p
}

/// A UC Software release zip in the layout Polycom ships, with test bytes for images:
/// `sip.ver`, the images (`<part>.sip.ld` for a split release, `sip.ld` for a combined
/// one), `000000000000.cfg`, configuration templates and a localization folder.
pub fn release_zip(dir: &Path, version: &str, images: &[&str]) -> PathBuf {
    let path = dir.join(format!("release-{version}-{}.zip", images.len()));
    let file = std::fs::File::create(&path).expect("create zip");
    let mut w = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut entries: Vec<(String, Vec<u8>)> = vec![
        ("sip.ver".into(), format!("{version}\r\n").into_bytes()),
        (
            "000000000000.cfg".into(),
            b"<APPLICATION APP_FILE_PATH=\"sip.ld\" CONFIG_FILES=\"\"/>".to_vec(),
        ),
        (
            "Config/site.cfg".into(),
            b"<polycomConfig tcpIpApp.sntp.address=\"\"/>".to_vec(),
        ),
        (
            "VVXLocalization/German_Germany/VVX-dictionary.xml".into(),
            b"<dictionary/>".to_vec(),
        ),
    ];
    for image in images {
        // Test bytes: the image's name repeated, so each file differs.
        entries.push((
            image.to_string(),
            format!("{image} {version} ").repeat(2000).into_bytes(),
        ));
    }
    for (name, bytes) in &entries {
        w.start_file(name.as_str(), opts).expect("start");
        w.write_all(bytes).expect("write");
    }
    w.finish().expect("finish");
    path
}

/// Imports a release through the CLI (`families` for combined images).
pub fn import_release(server: &ZServer, version: &str, images: &[&str], families: &[&str]) {
    let zip = release_zip(server.dir.path(), version, images);
    let mut args = vec!["firmware", "import", zip.to_str().expect("path")];
    for f in families {
        args.extend(["--family", f]);
    }
    server.cli_ok(&args);
}
