//! Any bytes as what a client sends on one connection to the real device listener:
//! `conn::serve` (or, when the first byte is odd, the parked-connection path of
//! `conn::Open::serve`, resumed after every response as `server::Parking` does) in front of
//! the real `DeviceService` and `DeviceAuth`, over a data directory with an account whose
//! credentials the seeds use, a profile and an associated phone. It must answer or close,
//! never panic, never loop, keep its memory accounting balanced, and write a bounded amount
//! per byte received.
#![no_main]

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use zerotouch::http::engine::budget::BodyBudget;
use zerotouch::http::engine::conn::{self, After, LoopLimits, Open, Service, Shared, Transport};

/// Credentials in the seeds (`fuzz/seeds/http_conn/`): Basic `phones:Fuzz-Passw0rd-1`.
const USER: &str = "phones";
const PASSWORD: &str = "Fuzz-Passw0rd-1";
/// The associated phone of the seeds.
const MAC: &str = "0004f2a1b2c3";

/// The real device service over a fresh data directory, built once per process. Every
/// piece of construction lives here (the CLI sets the data up, as an admin would), so that
/// a change of the server's constructors touches this function only.
fn device_service() -> &'static Arc<dyn Service> {
    static S: OnceLock<Arc<dyn Service>> = OnceLock::new();
    S.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("zerotouch-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("data dir");
        let config_path = dir.join("config.toml");
        std::fs::write(
            &config_path,
            format!(
                "data_dir = {:?}\ndevice.http_listen = \"127.0.0.1:0\"\nadmin.listen = \"127.0.0.1:0\"\n\
                 limits.upload_bytes = 65536\nlimits.device_quota_bytes = 1048576\n",
                dir.join("data").to_string_lossy()
            ),
        )
        .expect("config");
        let profile = dir.join("site.cfg");
        std::fs::write(
            &profile,
            "<polycomConfig tcpIpApp.sntp.address=\"pool.ntp.org\" feature.label=\"${MAC}\"/>",
        )
        .expect("profile");
        let config = zerotouch::config::Config::parse(
            &std::fs::read_to_string(&config_path).expect("config"),
        )
        .expect("a valid config");
        std::fs::create_dir_all(&config.data_dir).expect("data dir");
        let key = zerotouch::server::secrets_key(&config).expect("secrets key");
        let cli = |args: &[&str]| {
            let mut all: Vec<&str> = args.to_vec();
            let c = config_path.to_str().expect("utf-8");
            all.extend(["--config", c]);
            let parsed: zerotouch::cli::Args =
                argh::FromArgs::from_args(&["zerotouch"], &all).expect("arguments");
            zerotouch::cli::run(parsed).expect("command");
        };
        cli(&["migrate"]);
        cli(&["account", "set-credentials", "--user", USER, "--password", PASSWORD]);
        cli(&["enrol", "mode", "off"]);
        cli(&["profile", "add", "office", "--file", profile.to_str().expect("utf-8")]);
        cli(&["device", "add", MAC, "--profile", "office", "--sip-user", "1001", "--sip-password", "Line-Secret-1"]);
        zerotouch::db::secrets::install(&key);
        let pool = zerotouch::server::open_pool(&config).expect("database");
        let (recorder, thread) = zerotouch::recorder::Recorder::start(
            &config.database_path(),
            Duration::from_millis(config.database.busy_timeout_ms),
            &config.recording,
        )
        .expect("recorder");
        std::mem::forget(thread);
        let prov = Arc::new(zerotouch::actions::provisioning::Provisioner::new(
            pool,
            config.device.unassociated_cap,
        ));
        let sightings = prov.clone();
        std::thread::spawn(move || sightings.run_sighting_writer());
        let auth = Arc::new(zerotouch::http::device::auth::DeviceAuth::new(
            &config.device.realm,
            config.device.digest,
            &key,
            &config.auth,
        ));
        let l = &config.limits;
        Arc::new(zerotouch::http::device::DeviceService::new(
            prov,
            auth,
            recorder,
            zerotouch::datadir::DataDirs::under(&config.data_dir),
            l.upload_bytes,
            l.device_quota_bytes,
            Arc::new(zerotouch::metrics::Metrics::default()),
        )) as Arc<dyn Service>
    })
}

/// A real loopback socket (the loop sets timeouts on it and asks its peer address); the
/// bytes themselves come from memory.
fn socket() -> &'static TcpStream {
    static S: OnceLock<(TcpListener, TcpStream, TcpStream)> = OnceLock::new();
    let (_, c, _) = S.get_or_init(|| {
        let l = TcpListener::bind("127.0.0.1:0").expect("loopback");
        let c = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        let (s, _) = l.accept().expect("accept");
        (l, c, s)
    });
    c
}

struct Memory<'a> {
    input: &'a [u8],
    output: &'a mut Vec<u8>,
}

impl Read for Memory<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Small reads, so heads and bodies arrive in pieces like they do on a network.
        let n = buf.len().min(self.input.len()).min(97);
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl Write for Memory<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for Memory<'_> {
    fn tcp(&self) -> &TcpStream {
        socket()
    }
}

fuzz_target!(|data: &[u8]| {
    let service = device_service().as_ref();
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let limits = LoopLimits {
        head_bytes: 4096,
        body_bytes: 8192,
        head_timeout: Duration::from_millis(50),
        body_timeout: Duration::from_millis(50),
        body_deadline: Duration::from_millis(200),
        idle_timeout: Duration::from_millis(50),
        memory: Arc::new(BodyBudget::new(1 << 20)),
    };
    let shared = Shared {
        stopping: AtomicBool::new(false),
    };
    let mut output = Vec::new();
    let m = Memory {
        input: data,
        output: &mut output,
    };
    if mode & 1 == 0 {
        conn::serve(m, service, &limits, &shared);
    } else if let Some(mut open) = Open::new(m, &limits) {
        // Parked after every response and resumed, as the listener's epoll set does.
        let mut resumed = 0usize;
        while open.serve(service, &limits, &shared, true) == After::Idle {
            resumed += 1;
            assert!(resumed <= data.len() + 1, "parked more often than bytes arrived");
        }
    }
    assert_eq!(limits.memory.in_use(), 0, "memory accounting leaked");
    // Responses are bounded per request, and a request takes bytes: output stays
    // proportional to the input (a master file or error page per few bytes at most).
    assert!(output.len() <= 16384 + data.len() * 256, "{} bytes out for {} in", output.len(), data.len());
});
