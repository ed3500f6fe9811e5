//! The model-based test of the credential state machine (`domain::machine` states the
//! invariants I1–I10): random sequences of phone boots, admin actions, strangers, clock
//! advances, restarts and restores, run against the real server (the binary on loopback,
//! the phone simulator `sim`, the CLI, curl) and against the reference model (`model.rs`)
//! side by side. After every step:
//! - every phone that booted was answered as the model says (refused only where the model
//!   refuses, and then only if an admin confirmed a count naming it or a window whose
//!   closing was shown closed: I1, I2), got its SIP password exactly when the model says
//!   (I1 "never served less", I3), and was not sent `device.set` for ever (I7);
//! - every admin action that changes phones refused first without confirmation, naming
//!   exactly the phones the model counts (I5), and went ahead with it;
//! - a file that names no device (the licence, fetched from an address that never names a
//!   device) is served with the current generation and an older one inside its grace
//!   window, and refused otherwise (I1 for phones on an older generation, I2);
//! - `autosync status` shows the model's counts (I4);
//! - after a kill -9 every phone is still answered as before (I8, I9), and a restore counts
//!   exactly the phones holding what only the replaced database accepts (I10).
//!
//! The phones: two UCS phones that tag their User-Agent with their serial once told to, two
//! that never do, and a Poly OS device (its behaviour in the simulator is an assumption,
//! see `sim`), all behind one address (127.0.0.2) with `auth.macs_per_ip = 2`: a NAT'd
//! branch. Admin checks come from 127.0.0.4 (real curl), strangers from 127.0.0.3, shared
//! files from 127.0.0.5. A phone may be factory-reset (re-imaged) or replaced by a new one
//! at another MAC (`device replace`); a restore never crosses a replacement (the backup is
//! dropped: the old MAC's phone is gone).
//!
//! CI runs `MODEL_CASES` sequences (default 100 per test, two tests); `scripts/model-run.sh`
//! runs thousands. Failures shrink (proptest) to a minimal sequence, kept in
//! `regressions.rs`. `ZEROTOUCH_TEST_REGRESS` (debug builds) re-introduces a defect: the
//! `teeth` test checks each one makes a run fail.

mod model;
mod regressions;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, TestCaseError, TestRunner};

use crate::common::*;
use crate::sim::{Boot, SerialTag, SimPhone};
use model::{Cred, DAY, Kind, Model, Verdict};

/// The phones of every sequence.
const PHONES: [(&str, Kind); 5] = [
    ("0004f2a10001", Kind::Tagged),
    ("0004f2a10002", Kind::Untagged),
    ("0004f2a10003", Kind::PolyOs),
    ("0004f2a10004", Kind::Tagged),
    ("0004f2a10005", Kind::Untagged),
];
const ACCOUNT_USER: &str = "PlcmSpIp";
const PHONES_AT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const STRANGER_AT: &str = "127.0.0.3";
const ADMIN_AT: &str = "127.0.0.4";
/// Where shared files are fetched from: an address that never names a device, so the server
/// cannot tie its requests to one (a request naming none is tied to the device its address
/// named a moment ago).
const SHARED_AT: &str = "127.0.0.5";
/// The shared file every world holds (an asset that names no device).
const SHARED_FILE: &str = "000000000000-license.cfg";
/// Consecutive boots in which a phone adopted nothing but was still sent `device.set="1"`
/// that break I7: the simulated phones apply every value they are sent, so a value still
/// pending after a reboot was seen is pending for ever.
const SET_FOREVER: u32 = 3;

/// Which credential an admin or a stranger tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Age {
    Current,
    Previous,
    Wrong,
}

/// One step of a sequence. Phone numbers index `PHONES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The phone boots (and reboots until nothing changes).
    Boot(usize),
    /// A power cut: every phone boots.
    BootAll,
    /// The clock moves on this many days (and 67 minutes).
    Advance(u8),
    /// A rotation of the account credential.
    Rotate {
        compromised: bool,
    },
    AutoSync(bool),
    /// Withholding secrets until a device proves itself (enrolment mode).
    Withhold(bool),
    /// An enrolment window of two days, for every device or one.
    OpenWindow(Option<usize>),
    CloseWindows,
    /// A new own credential for the `k`-th device holding one (modulo their number; the
    /// `k`-th phone when none has one).
    RotateOwn(usize),
    /// An admin enrols one phone: a window for it, then it boots.
    Enrol(usize),
    /// An admin re-enrols a device (confirmed when counted).
    Reenrol(usize),
    /// An admin dismisses a device's claims.
    Dismiss(usize),
    /// The phone is factory-reset: it comes back with the account credential DHCP gives.
    Reimage(usize),
    /// An admin replaces the phone by a new one (another MAC, the same kind, holding the
    /// account credential DHCP gives); the old phone leaves the network.
    Replace(usize),
    Readmit(usize),
    /// An admin checks the phone's file with curl.
    Curl(usize, Age),
    /// A stranger names the phone's MAC.
    Stranger(usize, Age),
    /// An admin's curl of a shared file (the licence) from an address that never names a
    /// device.
    Shared(Age),
    /// A legacy profile file setting an owned parameter is uploaded (and refused).
    OwnedProfile(usize),
    /// The server stops (kill -9 or SIGTERM) and starts again.
    Restart {
        kill: bool,
    },
    Backup,
    /// Stop, restore the last backup (counting first), start.
    Restore,
}

fn step() -> impl Strategy<Value = Step> {
    let phone = 0..PHONES.len();
    let age = prop_oneof![Just(Age::Current), Just(Age::Previous), Just(Age::Wrong)];
    // Days chosen so that sums cross the 14-day grace window and the 30-day `seen_days`
    // in many ways.
    let days =
        prop_oneof![1 => Just(1u8), 3 => Just(5), 3 => Just(12), 2 => Just(20), 1 => Just(40)];
    prop_oneof![
        12 => phone.clone().prop_map(Step::Boot),
        3 => Just(Step::BootAll),
        6 => days.prop_map(Step::Advance),
        4 => any::<bool>().prop_map(|compromised| Step::Rotate { compromised }),
        2 => any::<bool>().prop_map(Step::AutoSync),
        3 => any::<bool>().prop_map(Step::Withhold),
        3 => proptest::option::of(phone.clone()).prop_map(Step::OpenWindow),
        1 => Just(Step::CloseWindows),
        2 => phone.clone().prop_map(Step::RotateOwn),
        2 => phone.clone().prop_map(Step::Enrol),
        1 => phone.clone().prop_map(Step::Reenrol),
        1 => phone.clone().prop_map(Step::Dismiss),
        1 => phone.clone().prop_map(Step::Reimage),
        1 => phone.clone().prop_map(Step::Replace),
        1 => phone.clone().prop_map(Step::Readmit),
        3 => (phone.clone(), age.clone()).prop_map(|(p, a)| Step::Curl(p, a)),
        3 => (phone.clone(), age.clone()).prop_map(|(p, a)| Step::Stranger(p, a)),
        2 => age.prop_map(Step::Shared),
        1 => (0..OWNED.len()).prop_map(Step::OwnedProfile),
        1 => any::<bool>().prop_map(|kill| Step::Restart { kill }),
        1 => Just(Step::Backup),
        1 => Just(Step::Restore),
    ]
}

/// Parameters only the machine sets (a sample: `tests/it/owned.rs` tries them all).
const OWNED: [&str; 4] = [
    "device.prov.user",
    "device.prov.password",
    "device.prov.tagSerialNo",
    "device.set",
];

fn sip_password(i: usize) -> String {
    format!("sip-secret-{i}")
}

/// A failed check, with the step it failed at.
type Checked = Result<(), String>;

/// The server, the simulated phones and the model, side by side.
struct World {
    server: Option<ZServer>,
    extra: String,
    env: Vec<(String, String)>,
    model: Model,
    phones: Vec<SimPhone>,
    /// Each phone's MAC now (a replacement gives the slot a new one).
    macs: Vec<String>,
    replacements: u32,
    /// Per phone: its own passwords seen, by the model's version.
    own: Vec<BTreeMap<String, u32>>,
    /// What each phone held when it left the factory (a re-imaged phone holds it again).
    initial: Vec<BTreeMap<String, String>>,
    /// The server's device address the phones hold (`127.0.0.1:port`).
    server_addr: String,
    /// Consecutive boots adopting nothing yet sent `device.set="1"`, per phone.
    set_streak: Vec<u32>,
    rotations: u32,
    backup: Option<(PathBuf, Model)>,
    log: Vec<String>,
}

/// A phone of `kind` at `mac`, given the account credential (`password`) for `addr`.
fn new_phone(kind: Kind, mac: &str, addr: &str, password: &str) -> SimPhone {
    let phone = match kind {
        Kind::PolyOs => SimPhone::poly_os(mac, &format!("http://{addr}"), ACCOUNT_USER, password),
        Kind::Tagged => SimPhone::new(mac, addr, ACCOUNT_USER, password),
        Kind::Untagged => {
            SimPhone::new(mac, addr, ACCOUNT_USER, password).with_serial_tag(SerialTag::Off)
        }
    };
    phone
        .bind(PHONES_AT)
        .keep_bodies()
        .timeout(Duration::from_secs(10))
}

/// A port free now, below the kernel's ephemeral range (32768 and up): while the server
/// is down for a restart or a restore, no outgoing connection of another test or process
/// can take it as its local port (one did, and the restart found its port in use).
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(7919) ^ NEXT.fetch_add(1, Ordering::Relaxed);
    (0..12_000u32)
        .map(|k| {
            20_000 + ((seed.wrapping_mul(2_654_435_761) >> 8).wrapping_add(k * 37) % 12_000) as u16
        })
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port")
}

/// The configuration that puts the world's server on these device ports.
fn world_extra(http: u16, https: u16) -> String {
    format!(
        "device.http_listen = \"127.0.0.1:{http}\"\n\
         device.https_listen = \"127.0.0.1:{https}\"\n\
         limits.nat_allowlist = []\n\
         auth.macs_per_ip = 2\n"
    )
}

impl World {
    fn start(regress: &str) -> World {
        let mut switches: Vec<(&str, &str)> = Vec::new();
        if !regress.is_empty() {
            switches.push(("ZEROTOUCH_TEST_REGRESS", regress));
        }
        // Fixed ports (restarts keep them), taken free: another test may take one between
        // the probe and the start, so a start refused for a port in use is tried again.
        let mut attempt = 0;
        let (server, extra) = loop {
            attempt += 1;
            let extra = world_extra(free_port(), free_port());
            let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                ZServer::start_with_clock_env(&extra, &switches)
            }));
            match started {
                Ok(server) => break (server, extra),
                Err(e) if attempt < 5 => eprintln!("world: start again ({attempt}): {e:?}"),
                Err(e) => std::panic::resume_unwind(e),
            }
        };
        let first = "First-Passw0rd-1";
        server.cli_ok(&[
            "account",
            "set-credentials",
            "--user",
            ACCOUNT_USER,
            "--password",
            first,
            "--yes",
        ]);
        server.cli_ok(&["autosync", "set", "--poly-os", "on", "--yes"]);
        // Associated after the credentials were set, never in the same second (a device
        // associated in the second of a rotation may hold the older generation).
        server.advance(60);
        server.cli_ok(&["profile", "add", "office"]);
        let licence = write_file(server.dir.path(), SHARED_FILE, b"<license/>\n");
        server.cli_ok(&["assets", "put", licence.to_str().expect("path")]);
        let mut phones = Vec::new();
        let addr = server.device.to_string();
        for (i, (mac, kind)) in PHONES.iter().enumerate() {
            // The Poly OS device is declared as one: its family does not adopt an own
            // credential, so it is not withheld (E2).
            let mut add = vec!["device", "add", mac, "--profile", "office"];
            if *kind == Kind::PolyOs {
                add.extend(["--vendor-model", "Poly_Studio_X30"]);
            }
            server.cli_ok(&add);
            server.cli_ok(&[
                "device",
                "set-line",
                mac,
                "--line",
                "1",
                "--sip-user",
                &format!("10{i}"),
                "--sip-password",
                &sip_password(i),
            ]);
            phones.push(new_phone(*kind, mac, &addr, first));
        }
        let macs: Vec<(String, Kind)> = PHONES.iter().map(|(m, k)| (m.to_string(), *k)).collect();
        let initial = phones.iter().map(|p| p.device.clone()).collect();
        let mut model = Model::new(first, &macs);
        // The current generation is the one set above: renumber the model's to match.
        let status = status_json(&server);
        let current = status["current_generation"].as_i64().expect("generation");
        model.gens[0].n = current;
        for d in model.devices.values_mut() {
            d.assoc_gen = current;
            d.holds = Cred::Account(current);
        }
        // Association and rotation never share a second: the clock moves first.
        let mut world = World {
            // The server's environment: the test clock and any defect switch.
            env: server.env.clone(),
            server: Some(server),
            extra,
            model,
            phones,
            macs: PHONES.iter().map(|p| p.0.to_string()).collect(),
            replacements: 0,
            own: vec![BTreeMap::new(); PHONES.len()],
            initial,
            server_addr: addr,
            set_streak: vec![0; PHONES.len()],
            rotations: 0,
            backup: None,
            log: Vec::new(),
        };
        world.advance_clock(3600);
        world
    }

    fn server(&self) -> &ZServer {
        self.server.as_ref().expect("running")
    }

    fn advance_clock(&mut self, secs: i64) {
        self.server().advance(secs);
        self.model.now += secs;
    }

    /// Runs an admin action that changes phones: first without confirmation (it must be
    /// refused naming exactly `expected`, or go ahead when `expected` is empty), then
    /// confirmed.
    fn confirmed(&mut self, what: &str, args: &[&str], expected: &BTreeSet<String>) -> Checked {
        let out = self.server().cli(args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        if expected.is_empty() {
            if !out.status.success() {
                return Err(format!("{what}: no phone is affected, yet refused: {err}"));
            }
            return Ok(());
        }
        if out.status.success() {
            return Err(format!(
                "I5 {what}: went ahead without confirmation; the model counts {expected:?}"
            ));
        }
        let named = affected_macs(&err);
        if named != *expected {
            return Err(format!(
                "I5 {what}: the server counts {named:?}, the model {expected:?}: {err}"
            ));
        }
        let mut yes: Vec<&str> = args.to_vec();
        yes.push("--yes");
        let out = self.server().cli(&yes);
        if !out.status.success() {
            return Err(format!(
                "{what} --yes failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }

    /// Waits until the recorder wrote every request made so far (reports read it).
    fn settle(&self) {
        let admin = self.server().admin;
        let read = || -> Option<(u64, u64)> {
            let mut c = Conn::open(admin);
            let text = c.request("GET", "/metrics", &[], b"").text();
            let value = |name: &str| -> Option<u64> {
                text.lines()
                    .find(|l| l.starts_with(name) && !l.starts_with('#'))
                    .and_then(|l| l.split_whitespace().last())
                    .and_then(|v| v.parse().ok())
            };
            Some((
                value("zerotouch_recorder_queue_depth")?,
                value("zerotouch_recorder_written_total")?,
            ))
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = None;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(70));
            let now = read();
            if let (Some((0, w)), Some((0, before))) = (now, last)
                && w == before
            {
                return;
            }
            last = now;
        }
    }

    /// What the phone presents now, in the model's terms.
    fn cred_of(&self, i: usize) -> Cred {
        let p = &self.phones[i];
        if p.user() == p.mac {
            self.own[i]
                .get(p.password())
                .map_or(Cred::Wrong, |v| Cred::Own(*v))
        } else {
            self.model
                .gen_of(p.password())
                .map_or(Cred::Wrong, Cred::Account)
        }
    }

    fn boot(&mut self, i: usize) -> Checked {
        let mac = self.macs[i].clone();
        let mac = mac.as_str();
        let kind = PHONES[i].1;
        let held = self.cred_of(i);
        if held != self.model.devices[mac].holds {
            return Err(format!(
                "{mac} holds {held:?}, the model says {:?}",
                self.model.devices[mac].holds
            ));
        }
        let before = self.model.devices[mac].clone();
        let verdict = self.model.boot(mac);
        let outcome = self.phones[i].boot_until_stable(6);
        // A new own password the phone adopted is the version the model sent.
        if let Cred::Own(v) = self.model.devices[mac].holds {
            let p = &self.phones[i];
            if p.user() == mac {
                self.own[i].entry(p.password().to_string()).or_insert(v);
            }
        }
        // A re-imaged phone holding an older account generation than the current one holds
        // what DHCP gave it, which the server cannot know (`Device::reimaged`): refusing it
        // once that generation is no longer accepted is not a lock-out the server could count.
        let stale_reimage = before.reimaged
            && matches!(before.holds, Cred::Account(g) if g != self.model.current());
        let excused = before.may_be_refused || before.claimed || stale_reimage;
        // A phone holding a password the server never issued is a guess to it: behind the
        // branch's one address, enough of them within a minute are throttled (429, never a
        // phone with a credential the server knows: those are checked first).
        let refused = |status: u16| status == 401 || (status == 429 && held == Cred::Wrong);
        match (verdict, &outcome) {
            (Verdict::Refused, Boot::Refused { status, .. }) if refused(*status) => {
                if !excused {
                    return Err(format!(
                        "I1: the rules refuse {mac} ({held:?}) though no confirmed count or \
                         shown window named it"
                    ));
                }
                return Ok(());
            }
            (Verdict::Refused, other) => {
                return Err(format!(
                    "{mac} ({held:?}) should be refused (model), the server answered: {other:?}"
                ));
            }
            (Verdict::Accepted { .. }, Boot::Configured) => {}
            (Verdict::Accepted { .. }, other) => {
                if before.claimed {
                    return Ok(());
                }
                let failures = &self.phones[i].last_boot().failures;
                return Err(format!(
                    "I1: {mac} ({held:?}) refused or served less: {other:?} {failures:?}"
                ));
            }
        }
        if self.cred_of(i) != self.model.devices[mac].holds {
            return Err(format!(
                "{mac} adopted {:?}, the model says it was sent {:?}",
                self.cred_of(i),
                self.model.devices[mac].holds
            ));
        }
        // Secrets: exactly as the model says (after the boot's last request).
        if kind != Kind::PolyOs && !before.claimed {
            let d = &self.model.devices[mac];
            let secrets = matches!(
                self.model.verdict(mac, d.holds),
                Verdict::Accepted { secrets: true, .. }
            );
            let got = self.phones[i].config.get("reg.1.auth.password").cloned();
            let has = got.as_deref() == Some(sip_password(i).as_str());
            if secrets && !has && !d.may_be_withheld {
                return Err(format!(
                    "I1: {mac} served without its SIP password ({got:?})"
                ));
            }
            if !secrets && got.as_deref().is_some_and(|g| !g.is_empty()) {
                return Err(format!("I3: {mac} served its SIP password without proof"));
            }
        }
        // I7: `device.set` only while something is pending.
        let adopted = self.phones[i].boots > 0 && self.phones[i].last_boot().adopted.is_empty();
        let sent_set = self.phones[i].bodies.as_ref().is_some_and(|b| {
            b.iter()
                .any(|(_, body)| contains(body, b"device.set=\"1\""))
        });
        if adopted && sent_set {
            self.set_streak[i] += 1;
            if self.set_streak[i] >= SET_FOREVER {
                return Err(format!(
                    "I7: {mac} was sent device.set=\"1\" in {} boots in a row that changed nothing",
                    self.set_streak[i]
                ));
            }
        } else {
            self.set_streak[i] = 0;
        }
        Ok(())
    }

    /// A request naming `mac` from `at` with `cred`, by curl; the status.
    /// Fetches `<mac>.cfg` as curl does, and when it is served every file its
    /// CONFIG_FILES lists, with the same credential: the master's status and every body.
    fn curl(&self, at: &str, i: usize, cred: Cred) -> (u16, String) {
        let mac = self.macs[i].as_str();
        let get = |file: &str| self.fetch(at, cred, file);
        let (status, mut body) = get(&format!("{mac}.cfg"));
        if status != 200 {
            return (status, body);
        }
        let files = body
            .split("CONFIG_FILES=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_default()
            .to_string();
        for file in files.split([',', ' ']).filter(|f| !f.is_empty()) {
            let (_, more) = get(file);
            body.push('\n');
            body.push_str(&more);
        }
        (status, body)
    }

    /// One file fetched by curl from `at` with `cred` (the account user).
    fn fetch(&self, at: &str, cred: Cred, file: &str) -> (u16, String) {
        let password = match cred {
            Cred::Account(g) => self
                .model
                .generation(g)
                .map_or("x", |g| g.password.as_str())
                .to_string(),
            _ => "Wrong-Passw0rd-0".to_string(),
        };
        let url = format!("http://{}/{file}", self.server().device);
        let out = std::process::Command::new("curl")
            .args(["-s", "--interface", at, "--digest", "-u"])
            .arg(format!("{ACCOUNT_USER}:{password}"))
            .args(["-A", "curl/8.14.1", "-w", "\n%{http_code}", &url])
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    fn age_cred(&self, age: Age) -> Cred {
        let current = self.model.current();
        match age {
            Age::Current => Cred::Account(current),
            Age::Previous if self.model.generation(current - 1).is_some() => {
                Cred::Account(current - 1)
            }
            _ => Cred::Wrong,
        }
    }

    /// An admin's curl or a stranger: answered as the model says, and never given a secret
    /// the account withholds.
    fn other_client(&mut self, at: &str, i: usize, age: Age) -> Checked {
        let mac = self.macs[i].clone();
        let mac = mac.as_str();
        let cred = self.age_cred(age);
        let verdict = self.model.verdict(mac, cred);
        let (status, body) = self.curl(at, i, cred);
        if status == 429 {
            // Its own address was throttled for wrong guesses: nothing was recorded.
            return Ok(());
        }
        self.model.stranger(mac, cred, at);
        let expected = match verdict {
            Verdict::Refused => 401,
            Verdict::Accepted { .. } => 200,
        };
        if status != expected {
            return Err(format!(
                "{at} naming {mac} with {cred:?}: {status}, model {expected}"
            ));
        }
        if let Verdict::Accepted { secrets: false, .. } = verdict
            && body.contains(&sip_password(i))
        {
            return Err(format!("I3: {at} got {mac}'s SIP password with {cred:?}"));
        }
        let sends_own = matches!(
            verdict,
            Verdict::Accepted {
                sends: Some(Cred::Own(_)),
                ..
            }
        );
        if !sends_own && body.contains(&format!("device.prov.user=\"{mac}\"")) {
            return Err(format!("I3: {at} got {mac}'s own credential with {cred:?}"));
        }
        Ok(())
    }

    /// A file that names no device, fetched with an account credential: the current
    /// generation is accepted, an older one only inside its grace window (I1: a phone on an
    /// older generation still gets its shared files), refused otherwise.
    fn shared_client(&mut self, age: Age) -> Checked {
        let cred = self.age_cred(age);
        let m = &self.model;
        let accepted = match cred {
            Cred::Account(g) if g == m.current() => true,
            Cred::Account(g) => m
                .generation(g)
                .and_then(|x| x.until)
                .is_some_and(|u| m.now < u),
            _ => false,
        };
        let expected = if accepted { 200 } else { 401 };
        let (status, body) = self.fetch(SHARED_AT, cred, SHARED_FILE);
        if status == 429 {
            // Its address was throttled for the wrong passwords it tried.
            return Ok(());
        }
        if status != expected {
            return Err(format!(
                "I1: {SHARED_FILE} (naming no device) with {cred:?}: {status}, model {expected}"
            ));
        }
        if status == 200 && !body.contains("<license") {
            return Err(format!("{SHARED_FILE} served other bytes: {body}"));
        }
        Ok(())
    }

    fn check_counts(&self) -> Checked {
        let s = status_json(self.server());
        let set = |key: &str| -> BTreeSet<String> {
            s[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|r| r["mac"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let server = model::Counts {
            synced: s["synced"].as_u64().unwrap_or(u64::MAX) as usize,
            pending: set("pending"),
            locked_out: set("locked_out"),
            never_seen: set("never_seen"),
        };
        let model = self.model.counts();
        if server != model {
            let rows: Vec<String> = ["pending", "locked_out", "never_seen"]
                .iter()
                .flat_map(|k| s[*k].as_array().cloned().unwrap_or_default())
                .map(|r| format!("{} g{} {}", r["mac"], r["generation"], r["why"]))
                .collect();
            let devices: Vec<String> = self
                .model
                .devices
                .iter()
                .map(|(m, d)| {
                    format!(
                        "{m} held {:?} refused {} floor {}",
                        d.held, d.refused, d.floor
                    )
                })
                .collect();
            return Err(format!(
                "I4: status shows {server:?}, the model {model:?}\nserver: {rows:?}\nmodel: {devices:?}"
            ));
        }
        // Enrolment: the contested devices and those not yet enrolled, as `enrol status`
        // shows them (E-C, I4).
        let out = self.server().cli_ok(&["enrol", "status", "--json"]);
        let e: serde_json::Value = serde_json::from_str(&out).expect("enrol status JSON");
        let of = |pred: &dyn Fn(&str) -> bool| -> BTreeSet<String> {
            e["devices"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|d| pred(d["state"].as_str().unwrap_or("")))
                        .filter_map(|d| d["mac"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let contested = of(&|s| s == "contested");
        let waiting = of(&|s| !matches!(s, "contested" | "enrolled" | "exempt"));
        let m = &self.model;
        let model_contested: BTreeSet<String> = m
            .devices
            .iter()
            .filter(|(_, d)| m.withhold && !d.exempt && d.contested)
            .map(|(k, _)| k.clone())
            .collect();
        let model_waiting: BTreeSet<String> = m
            .devices
            .iter()
            .filter(|(_, d)| m.withhold && !d.exempt && !d.contested && !d.enrolled)
            .map(|(k, _)| k.clone())
            .collect();
        if contested != model_contested || waiting != model_waiting {
            return Err(format!(
                "E-C/I4: enrol status shows contested {contested:?} not enrolled {waiting:?}, \
                 the model {model_contested:?} {model_waiting:?}\n{out}"
            ));
        }
        if e["contested"].as_u64() != Some(contested.len() as u64)
            || e["not_enrolled"].as_u64() != Some(waiting.len() as u64)
        {
            return Err(format!(
                "I4: enrol status counts disagree with its list: {out}"
            ));
        }
        Ok(())
    }

    fn restart(&mut self, kill: bool) {
        let server = self.server.take().expect("running");
        let dir = if kill {
            server.kill()
        } else {
            server.stop_keep()
        };
        self.relaunch(dir);
    }

    /// Starts the server again on its database. Its ports are taken free and kept; when
    /// one was taken while it was down, it starts on new ones and every phone is told the
    /// new address (as an admin would re-point DHCP): the harness's race, not the server's.
    fn relaunch(&mut self, mut dir: tempfile::TempDir) {
        let old = self.server_addr.clone();
        for attempt in 1.. {
            match ZServer::try_start_in_with_env(dir, &self.extra, self.env.clone()) {
                Ok(server) => {
                    let new = server.device.to_string();
                    self.server = Some(server);
                    if new != old {
                        self.readdress(&old, &new);
                    }
                    return;
                }
                Err((back, output)) if attempt < 5 => {
                    eprintln!("world: start again on new ports ({attempt}): {output}");
                    dir = back;
                    self.extra = world_extra(free_port(), free_port());
                }
                Err((_, output)) => panic!("server did not start; output:\n{output}"),
            }
        }
    }

    /// Every phone (and what a replaced or reimaged phone starts from) now reaches the
    /// server at `new` instead of `old`.
    fn readdress(&mut self, old: &str, new: &str) {
        let moved = |held: &mut BTreeMap<String, String>| {
            for v in held.values_mut() {
                if v.contains(old) {
                    *v = v.replace(old, new);
                }
            }
        };
        for phone in &mut self.phones {
            moved(&mut phone.device);
        }
        for held in &mut self.initial {
            moved(held);
        }
        self.server_addr = new.to_string();
    }

    fn apply(&mut self, step: &Step) -> Checked {
        match step {
            Step::Boot(i) => {
                self.boot(*i)?;
                self.settle();
            }
            Step::BootAll => {
                for i in 0..PHONES.len() {
                    self.boot(i)?;
                }
                self.settle();
            }
            Step::Advance(days) => self.advance(i64::from(*days) * DAY + 67 * 60),
            Step::Rotate { compromised } => {
                self.rotations += 1;
                let password = format!("Rotated-Passw0rd-{}", self.rotations);
                let (after, shown, counted) = self.model.rotated(&password, *compromised);
                let mut args = vec![
                    "account",
                    "set-credentials",
                    "--user",
                    ACCOUNT_USER,
                    "--password",
                    &password,
                ];
                if *compromised {
                    args.push("--compromised");
                }
                self.confirmed("rotation", &args, &shown)?;
                self.model = after;
                self.model.excuse(&counted, false);
                if *compromised {
                    self.model.excuse_reimaged();
                }
            }
            Step::AutoSync(on) => {
                let (after, counted) = self.model.with_autosync(*on);
                let verb = if *on { "enable" } else { "disable" };
                if *on {
                    self.server().cli_ok(&["autosync", verb]);
                } else {
                    self.confirmed("Auto-Sync off", &["autosync", verb], &counted)?;
                }
                self.model = after;
                self.model.excuse(&counted, false);
            }
            Step::Withhold(on) => {
                let (after, counted) = self.model.with_withhold(*on);
                let mode = if *on { "on" } else { "off" };
                self.confirmed("withholding", &["enrol", "mode", mode], &counted)?;
                self.model = after;
                self.model.excuse(&counted, true);
            }
            Step::OpenWindow(one) => {
                let one = one.map(|i| self.macs[i].clone());
                let mut args = vec!["enrol", "open", "--minutes", "2880"];
                if let Some(m) = &one {
                    args.extend(["--mac", m.as_str()]);
                }
                self.server().cli_ok(&args);
                self.model
                    .windows
                    .push((one, self.model.now + 2 * DAY, false));
            }
            Step::CloseWindows => {
                let (after, counted) = self.model.closing_windows();
                self.confirmed("closing windows", &["enrol", "close"], &counted)?;
                self.model = after;
                self.model.excuse(&counted, true);
            }
            Step::RotateOwn(k) => {
                let holders: Vec<String> = self
                    .macs
                    .iter()
                    .filter(|m| self.model.devices[m.as_str()].own_version > 0)
                    .cloned()
                    .collect();
                let mac = if holders.is_empty() {
                    self.macs[*k].clone()
                } else {
                    holders[*k % holders.len()].clone()
                };
                let mac = mac.as_str();
                let out = self.server().cli(&["enrol", "rotate", mac, "--yes"]);
                match self.model.rotate_own(mac) {
                    Some(()) if !out.status.success() => {
                        return Err(format!(
                            "enrol rotate {mac}: {}",
                            String::from_utf8_lossy(&out.stderr)
                        ));
                    }
                    None if out.status.success() => {
                        return Err(format!("enrol rotate {mac}: it has no own credential"));
                    }
                    _ => {}
                }
            }
            Step::Enrol(i) => {
                self.apply(&Step::OpenWindow(Some(*i)))?;
                self.boot(*i)?;
                self.settle();
            }
            Step::Reenrol(i) => {
                let mac = self.macs[*i].clone();
                let mac = mac.as_str();
                if !self.model.withhold {
                    let out = self.server().cli(&["enrol", "reenrol", mac, "--yes"]);
                    let err = String::from_utf8_lossy(&out.stderr);
                    if out.status.success() || !err.contains("does not withhold") {
                        return Err(format!("re-enrolment without withholding: {err}"));
                    }
                    return Ok(());
                }
                let counted = self.model.reenrol_impact(mac);
                self.confirmed("re-enrolment", &["enrol", "reenrol", mac], &counted)?;
                self.model.reenrol(mac);
                self.model.excuse(&counted, false);
            }
            Step::Dismiss(i) => {
                let mac = self.macs[*i].clone();
                let mac = mac.as_str();
                let out = self.server().cli(&["enrol", "dismiss", mac]);
                // Claims are kept, and dismissed, whatever the account's mode.
                let was = self.model.dismiss(mac);
                if out.status.success() != was {
                    return Err(format!(
                        "enrol dismiss {mac}: the model says contested={was}, the server: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
            }
            Step::Reimage(i) => {
                let mac = self.macs[*i].clone();
                let mac = mac.as_str();
                let (current, password) = self.model.current_password();
                let phone = &mut self.phones[*i];
                phone.device = self.initial[*i].clone();
                phone.set_credentials(ACCOUNT_USER, &password);
                phone.config.clear();
                let d = self.model.devices.get_mut(mac).expect("device");
                d.holds = Cred::Account(current);
                d.reimaged = true;
            }
            Step::Replace(i) => {
                let old = self.macs[*i].clone();
                self.replacements += 1;
                // Never in the second of a rotation (the server cannot tell then whether the
                // new phone came before it, and counts it as possibly holding the older
                // generation), nor a rotation in the replacement's second.
                self.advance_clock(60);
                let new = format!("0004f2c{:x}{:04x}", *i, self.replacements);
                // Replacing a seen phone is counted and confirmed (tested in
                // `one_action`); here it is confirmed.
                let out = self
                    .server()
                    .cli(&["device", "replace", &old, &new, "--yes"]);
                if !out.status.success() {
                    return Err(format!(
                        "device replace {old} {new}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
                // The new phone: the same kind, from the factory, with the account
                // credential DHCP gives now.
                let (_, password) = self.model.current_password();
                let kind = PHONES[*i].1;
                let addr = self.server().device.to_string();
                self.phones[*i] = new_phone(kind, &new, &addr, &password);
                self.initial[*i] = self.phones[*i].device.clone();
                self.own[*i].clear();
                self.set_streak[*i] = 0;
                self.macs[*i] = new.clone();
                self.model.replace(&old, &new, kind);
                self.advance_clock(60);
                // A backup from before names the old MAC, whose phone is gone: this test
                // does not restore across a replacement.
                self.backup = None;
            }
            Step::Readmit(i) => {
                let mac = self.macs[*i].clone();
                let mac = mac.as_str();
                self.server().cli_ok(&["autosync", "readmit", mac]);
                self.model.readmit(mac);
            }
            Step::Curl(i, age) => {
                self.other_client(ADMIN_AT, *i, *age)?;
                self.settle();
            }
            Step::Stranger(i, age) => {
                self.other_client(STRANGER_AT, *i, *age)?;
                self.settle();
            }
            Step::Shared(age) => self.shared_client(*age)?,
            Step::OwnedProfile(k) => {
                let param = OWNED[*k];
                let file = write_file(
                    self.server().dir.path(),
                    "site.cfg",
                    format!("<polycomConfig\n  {param}=\"1\"\n/>\n").as_bytes(),
                );
                let out = self.server().cli(&[
                    "profile",
                    "add",
                    "legacy",
                    "--file",
                    file.to_str().expect("path"),
                ]);
                let err = String::from_utf8_lossy(&out.stderr);
                if out.status.success() || !err.contains(&format!("line 2: `{param}`")) {
                    return Err(format!(
                        "I6: a profile setting {param} was not refused: {err}"
                    ));
                }
            }
            Step::Restart { kill } => self.restart(*kill),
            Step::Backup => {
                let path = self.server().dir.path().join("model-backup.tar.gz");
                self.server()
                    .cli_ok(&["backup", path.to_str().expect("path")]);
                self.backup = Some((path, self.model.clone()));
            }
            Step::Restore => {
                let Some((path, snapshot)) = self.backup.clone() else {
                    return Ok(());
                };
                let counted = self.model.restore_impact(&snapshot);
                let server = self.server.take().expect("running");
                let dir = server.stop_keep();
                let config = dir.path().join("config.toml");
                let args = ["restore", path.to_str().expect("path")];
                let out = std::process::Command::new(bin())
                    .arg(args[0])
                    .arg("--config")
                    .arg(&config)
                    .arg(args[1])
                    .envs(self.env.iter().map(|(k, v)| (k, v)))
                    .output()
                    .expect("restore");
                let err = String::from_utf8_lossy(&out.stderr).into_owned();
                let named = affected_macs(&err);
                let result = if counted.is_empty() != out.status.success() || named != counted {
                    Err(format!(
                        "I10: restore counts {named:?} (ok: {}), the model {counted:?}: {err}",
                        out.status.success()
                    ))
                } else {
                    Ok(())
                };
                if !out.status.success() && result.is_ok() {
                    let out = std::process::Command::new(bin())
                        .args(["restore", "--yes", "--config"])
                        .arg(&config)
                        .arg(&path)
                        .envs(self.env.iter().map(|(k, v)| (k, v)))
                        .output()
                        .expect("restore");
                    assert!(
                        out.status.success(),
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                self.relaunch(dir);
                result?;
                let backup_time = snapshot.now;
                let mut restored = snapshot;
                restored.now = self.model.now;
                // What a phone holds stays what it holds; an account password the restored
                // database does not have is, for it, a wrong one.
                let gens = restored.gens.clone();
                let renumber = |c: Cred| match c {
                    Cred::Account(g) => self
                        .model
                        .generation(g)
                        .and_then(|old| gens.iter().find(|x| x.password == old.password))
                        .map_or(Cred::Wrong, |x| Cred::Account(x.n)),
                    other => other,
                };
                for (m, d) in &mut restored.devices {
                    let now = &self.model.devices[m];
                    d.holds = renumber(now.holds);
                    // An own credential issued after the backup is one the restored database
                    // never had: a wrong one, and its version is free again (the next one
                    // issued takes it), so the phone's memory of it is forgotten.
                    if let Cred::Own(v) = d.holds
                        && v > d.own_version
                    {
                        d.holds = Cred::Wrong;
                    }
                    if let Some(i) = self.macs.iter().position(|x| x == m) {
                        self.own[i].retain(|_, v| *v <= d.own_version);
                    }
                    d.may_be_refused |= now.may_be_refused;
                    d.may_be_withheld |= now.may_be_withheld;
                    d.claimed |= now.claimed;
                }
                restored.excuse(&counted, false);
                // The backup's grace windows that closed since it was taken closed on the
                // dates shown at their rotations: what they left behind is excused.
                let mut then = restored.clone();
                then.now = backup_time;
                let lost = then.lost_in(&restored);
                restored.excuse(&lost, false);
                self.model = restored;
            }
        }
        Ok(())
    }

    fn advance(&mut self, secs: i64) {
        self.server().advance(secs);
        self.model.advance(secs);
    }

    /// Runs the sequence; the first failed check, with the steps so far.
    fn run(&mut self, steps: &[Step]) -> Checked {
        for (n, s) in steps.iter().enumerate() {
            self.log.push(format!("{n}: {s:?}"));
            let checked = self.apply(s).and_then(|()| self.check_counts());
            if let Err(e) = checked {
                return Err(format!(
                    "step {n} ({s:?}): {e}\nsteps:\n{}",
                    self.log.join("\n")
                ));
            }
        }
        Ok(())
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The MACs a refused action names, one per line (`  <mac>: <reason>`).
fn affected_macs(err: &str) -> BTreeSet<String> {
    err.lines()
        .filter_map(|l| l.strip_prefix("  "))
        .filter_map(|l| l.split_once(": ").map(|(m, _)| m.to_string()))
        .filter(|m| m.len() == 12 && m.chars().all(|c| c.is_ascii_hexdigit()))
        .collect()
}

fn status_json(server: &ZServer) -> serde_json::Value {
    let out = server.cli_ok(&["autosync", "status", "--json"]);
    serde_json::from_str(&out).expect("status JSON")
}

/// Runs one sequence on a fresh server; `regress` re-introduces a defect.
pub fn run_sequence(steps: &[Step], regress: &str) -> Checked {
    let mut world = World::start(regress);
    world.run(steps)
}

/// Runs `cases` random sequences of `len` steps; proptest shrinks a failure.
fn explore(cases: u32, len: usize, seed: u64, regress: &str, shrink: u32) -> Result<(), String> {
    let mut config = PropConfig::with_cases(cases);
    config.failure_persistence = None;
    config.max_shrink_iters = shrink;
    let mut runner = TestRunner::new_with_rng(
        config,
        proptest::test_runner::TestRng::from_seed(
            proptest::test_runner::RngAlgorithm::ChaCha,
            &seed_bytes(seed),
        ),
    );
    let regress = regress.to_string();
    // Progress for long runs (scripts/model-run.sh shows it): every 25 sequences run,
    // shrinking included.
    let run = std::sync::atomic::AtomicU32::new(0);
    let started = Instant::now();
    runner
        .run(&proptest::collection::vec(step(), len), move |steps| {
            let n = run.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if n.is_multiple_of(25) {
                eprintln!(
                    "model (seed {seed}): {n} sequences run in {:.0} s",
                    started.elapsed().as_secs_f64()
                );
            }
            run_sequence(&steps, &regress).map_err(TestCaseError::fail)
        })
        .map_err(|e| e.to_string())
}

fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = (seed.rotate_left(i as u32 * 8) & 0xff) as u8 ^ i as u8;
    }
    out
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn explore_from_env(seed_offset: u64) {
    let cases = env_num("MODEL_CASES", 100) as u32;
    let len = env_num("MODEL_STEPS", 30) as usize;
    let seed = env_num("MODEL_SEED", 0x5eed) + seed_offset;
    let started = Instant::now();
    let result = explore(cases, len, seed, "", env_num("MODEL_SHRINK", 64) as u32);
    eprintln!(
        "model: {cases} sequences of {len} steps (seed {seed}) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn random_sequences_keep_every_invariant_a() {
    explore_from_env(0);
}

#[test]
fn random_sequences_keep_every_invariant_b() {
    explore_from_env(1_000_003);
}

/// Each defect the issue named, re-introduced, makes a run of normal length fail.
#[test]
fn teeth_each_reintroduced_defect_fails_the_model_run() {
    let defects = [
        "curl-synced",
        "own-needs-mode",
        "mode-unconfirmed",
        "owned-in-profile",
        "tag-forever",
        "rotate-unenrols",
        "mac-limit",
        "shared-old-401",
        "seen-at-request",
    ];
    let cases = env_num("MODEL_TEETH_CASES", 40) as u32;
    let mut missed = Vec::new();
    // MODEL_TEETH_ONLY=<name>: one defect (to measure it alone).
    let only = std::env::var("MODEL_TEETH_ONLY").ok();
    for (k, defect) in defects.iter().enumerate() {
        if only.as_deref().is_some_and(|o| o != *defect) {
            continue;
        }
        let started = Instant::now();
        match explore(cases, 30, 77 + k as u64, defect, 0) {
            Err(e) => eprintln!(
                "teeth: {defect} caught in {:.1} s: {}",
                started.elapsed().as_secs_f64(),
                e.lines().next().unwrap_or_default()
            ),
            Ok(()) => missed.push(*defect),
        }
    }
    assert!(
        missed.is_empty(),
        "defects the model run did not catch: {missed:?}"
    );
}
