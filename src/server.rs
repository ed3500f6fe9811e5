//! Running the server: prepare the data directory, open the database, start the recorder
//! and the listeners, wait for a signal, then drain connections and flush recordings.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::actions::provisioning::Provisioner;
use crate::config::Config;
use crate::datadir::DataDirs;
use crate::db::{Pool, accounts};
use crate::error::{Error, Result};
use crate::http::admin::AdminService;
use crate::http::admin::api::Api;
use crate::http::admin::console::Console;
use crate::http::device::DeviceService;
use crate::http::device::auth::DeviceAuth;
use crate::http::engine::budget::BodyBudget;
use crate::http::engine::conn::{LiveLimits, LoopLimits};
use crate::http::engine::server::{Acceptor, PlainAcceptor, Server};
use crate::http::engine::tls::TlsAcceptor;
use crate::recorder::Recorder;
use crate::tls::Tls;

mod reload;

/// How long SIGTERM waits for open requests to finish.
const DRAIN: Duration = Duration::from_secs(10);
/// How often the generated server certificate is checked for renewal.
const RENEWAL_CHECK: Duration = Duration::from_secs(24 * 3600);

/// Removes `uploads/<mac>/<kind>/.incoming-*` files last written before `started`.
fn remove_partial_device_uploads(uploads: &Path, started: std::time::SystemTime) {
    let Ok(devices) = std::fs::read_dir(uploads) else {
        return;
    };
    for device in devices.flatten() {
        if device.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let Ok(kinds) = std::fs::read_dir(device.path()) else {
            continue;
        };
        for kind in kinds.flatten() {
            let Ok(files) = std::fs::read_dir(kind.path()) else {
                continue;
            };
            for f in files.flatten() {
                let stale = f.file_name().to_string_lossy().starts_with(".incoming-")
                    && f.metadata()
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| t < started);
                if stale {
                    log::warn!("removing {}, a partial upload", f.path().display());
                    let _ = std::fs::remove_file(f.path());
                }
            }
        }
    }
}

/// Removes partial uploads a crash left behind, and firmware imports or deletions it
/// interrupted (`firmware/.staging-*`, `.deleting-*`). Only the server, holding the data
/// lock, may do this: the files may belong to uploads in flight.
fn remove_stale_uploads(data_dir: &Path) {
    let dirs = DataDirs::under(data_dir);
    for dir in [&dirs.incoming, &dirs.firmware_incoming] {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    // Uploads stream into their device's directory once it exists: partial ones a crash
    // left there are older than this start. Walked in the background (there may be a
    // directory per device); a file newer than the start belongs to an upload in flight.
    let started = std::time::SystemTime::now();
    let uploads = dirs.uploads.clone();
    let _ = std::thread::Builder::new()
        .name("stale-uploads".into())
        .spawn(move || remove_partial_device_uploads(&uploads, started));
    if let Ok(entries) = std::fs::read_dir(&dirs.firmware) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(".staging-") || name.starts_with(".deleting-") {
                log::warn!(
                    "removing {}, left by an interrupted firmware import or deletion",
                    e.path().display()
                );
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Checks every catalogued firmware file against its checksum, in the background (a large
/// catalogue takes a while to hash), and says what it found; damaged files are no longer
/// served.
fn start_firmware_check(pool: Pool, firmware_dir: std::path::PathBuf) {
    let spawned = std::thread::Builder::new()
        .name("firmware-check".into())
        .spawn(move || {
            let started = Instant::now();
            let report = pool
                .get()
                .and_then(|conn| crate::actions::firmware::verify(&conn, &firmware_dir));
            match report {
                Ok(r) if r.problems.is_empty() => {
                    if r.files > 0 {
                        println!(
                            "zerotouch: firmware check: {} file(s), {} bytes, all match their checksums ({} ms)",
                            r.files,
                            r.bytes,
                            started.elapsed().as_millis()
                        );
                    }
                }
                Ok(r) => {
                    for p in &r.problems {
                        log::error!("firmware check: {p}");
                        println!("zerotouch: firmware check: {p}; not served");
                    }
                    println!(
                        "zerotouch: firmware check: {} of {} file(s) damaged or missing",
                        r.problems.len(),
                        r.files
                    );
                }
                Err(e) => log::error!("firmware check failed: {e}"),
            }
            let _ = std::io::stdout().flush();
        });
    if let Err(e) = spawned {
        log::warn!("cannot start the firmware check: {e}");
    }
}

/// Opens the database of a configuration (creating and migrating it).
pub fn open_pool(config: &Config) -> Result<Pool> {
    Pool::open(
        &config.database_path(),
        config.database.pool_size,
        Duration::from_millis(config.database.busy_timeout_ms),
    )
}

fn bind(what: &str, addr: &str) -> Result<TcpListener> {
    // Parsed, never resolved: no name lookups (and no NSS) in a static binary.
    let parsed: std::net::SocketAddr = addr
        .parse()
        .map_err(|_| Error::Config(format!("{what}: `{addr}` is not IP:PORT")))?;
    TcpListener::bind(parsed).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                " (another program listens there; change the port in the config)"
            }
            std::io::ErrorKind::PermissionDenied => {
                " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
            }
            _ => "",
        };
        Error::io(format!("{what}: cannot listen on {addr}{hint}"), e)
    })
}

/// The limits shown in `/metrics` (`zerotouch_limit{name=…}`): every abuse-resistance limit
/// of the configuration.
pub fn limit_gauges(config: &Config) -> Vec<(String, i64)> {
    let l = &config.limits;
    let a = &config.auth;
    let c = &config.console;
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    [
        ("limits.max_connections", n(l.max_connections as u64)),
        (
            "limits.max_connections_per_ip",
            n(l.max_connections_per_ip as u64),
        ),
        (
            "limits.nat_allowlist_entries",
            n(l.nat_allowlist.len() as u64),
        ),
        ("limits.head_bytes", n(l.head_bytes as u64)),
        ("limits.body_bytes", n(l.body_bytes as u64)),
        ("limits.upload_bytes", n(l.upload_bytes)),
        ("limits.device_quota_bytes", n(l.device_quota_bytes)),
        (
            "limits.unassociated_upload_bytes",
            n(l.unassociated_upload_bytes),
        ),
        ("limits.head_timeout_secs", n(l.head_timeout_secs)),
        ("limits.body_timeout_secs", n(l.body_timeout_secs)),
        ("limits.device_idle_secs", n(l.device_idle_secs)),
        ("limits.admin_idle_secs", n(l.admin_idle_secs)),
        ("limits.memory_body_budget", n(l.memory_body_budget as u64)),
        ("limits.csv_upload_bytes", n(l.csv_upload_bytes as u64)),
        ("limits.firmware_streams", n(l.firmware_streams as u64)),
        ("limits.upload_streams", n(l.upload_streams as u64)),
        ("limits.busy_retry_after_secs", n(l.busy_retry_after_secs)),
        ("auth.failure_limit", n(u64::from(a.failure_limit))),
        (
            "auth.account_failure_limit",
            n(u64::from(a.account_failure_limit)),
        ),
        ("auth.failure_window_secs", n(a.failure_window_secs)),
        ("auth.block_secs", n(a.block_secs)),
        ("auth.macs_per_ip", n(u64::from(a.macs_per_ip))),
        ("auth.mac_window_secs", n(a.mac_window_secs)),
        (
            "console.login_failures_per_user",
            n(u64::from(c.login_failures_per_user)),
        ),
        (
            "console.login_failures_per_ip",
            n(u64::from(c.login_failures_per_ip)),
        ),
        ("console.login_window_secs", n(c.login_window_secs)),
        ("console.login_block_secs", n(c.login_block_secs)),
        (
            "recording.flush_interval_ms",
            n(config.recording.flush_interval_ms),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

pub use crate::keyfile::{finish_key_rotation, rotate_secrets_key, secrets_key};

/// Raises the open-file limit to its hard maximum: every connection is a descriptor, and the
/// usual soft limit (1024) is far below the connection cap.
fn raise_fd_limit(wanted: u64) {
    match rlimit::increase_nofile_limit(wanted) {
        Ok(n) if n < wanted => log::warn!(
            "open files are limited to {n}, fewer than limits.max_connections + 64 ({wanted}); raise LimitNOFILE"
        ),
        Ok(_) => {}
        Err(e) => log::warn!("cannot raise the open-file limit: {e}"),
    }
}

/// Runs the server until SIGTERM or SIGINT. `path` is the configuration's file (re-read on
/// SIGHUP; `None` for the embedded default); `verbose` keeps debug logging over reloads.
pub fn run(config: Config, path: Option<std::path::PathBuf>, verbose: bool) -> Result<()> {
    let started = Instant::now();
    crate::datadir::prepare_data_dir(&config.data_dir)?;
    let _lock = crate::backup::lock_data_dir(&config.data_dir)?;
    remove_stale_uploads(&config.data_dir);
    for p in crate::backup::remove_stale(&config.data_dir, crate::backup::STALE_AFTER) {
        log::warn!(
            "removed {}, left by a backup or restore killed more than a day ago",
            p.display()
        );
    }
    raise_fd_limit(config.limits.max_connections as u64 + 64);
    let key = secrets_key(&config)?;
    crate::backup::before_migration(&config)?;
    let pool = open_pool(&config)?;
    let key = {
        let conn = pool.get()?;
        finish_key_rotation(&config, &conn)?.unwrap_or(key)
    };
    crate::db::secrets::install(&key);
    crate::actions::enrolment::set_certificate_only(
        config.tls.client_auth != crate::config::ClientAuth::Off,
    );
    let account = prepare_database(&pool)?;
    start_firmware_check(pool.clone(), DataDirs::under(&config.data_dir).firmware);
    let (recorder, recorder_thread) = crate::recorder::Recorder::start(
        &config.database_path(),
        Duration::from_millis(config.database.busy_timeout_ms),
        &config.recording,
    )?;
    let auth = Arc::new(DeviceAuth::new(
        &config.device.realm,
        config.device.digest,
        &key,
        &config.auth,
    ));
    check_stranding(&config, &pool)?;
    let tls = if !config.device.https_listen.is_empty() || config.admin.tls {
        Some(Arc::new(Tls::start(&config)?))
    } else {
        None
    };
    // Bound early: the CA delivered to phones names the HTTPS port in its probe URL.
    let https_listener = match (&tls, config.device.https_listen.as_str()) {
        (Some(_), listen) if !listen.is_empty() => Some(bind("device HTTPS", listen)?),
        _ => None,
    };
    let https_port = https_listener
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map(|a| a.port());
    let trust = crate::tls::phone_trust(&config, https_port);
    if config.tls.deliver_ca_to_phones && trust.is_none() {
        return Err(Error::Config(
            "tls.deliver_ca_to_phones: there is no local CA to deliver (tls.cert_file serves \
             an admin-supplied certificate); turn delivery off or remove tls.cert_file"
                .into(),
        ));
    }
    let prov = Arc::new(
        Provisioner::new(pool.clone(), config.device.unassociated_cap).with_trust(trust.clone()),
    );
    let sighting_writer = {
        let prov = prov.clone();
        std::thread::Builder::new()
            .name("sightings".into())
            .spawn(move || prov.run_sighting_writer())
            .map_err(|e| Error::io("starting the sighting writer thread", e))?
    };
    let l = &config.limits;
    let mut server =
        Server::new(l.max_connections).with_per_ip_cap(l.max_connections_per_ip, l.allowlist());
    let metrics = Arc::new(crate::metrics::Metrics::default());
    metrics.set_limits(limit_gauges(&config));
    let device_service = device_service(&config, &prov, &auth, &recorder, &metrics);
    let (device_http, device_https, device_limits) = add_device_listeners(
        &mut server,
        &config,
        &device_service,
        tls.as_deref(),
        https_listener,
        &account,
    )?;
    let tftp = start_tftp(&config, &device_service, &metrics, device_http)?;
    let ftp = start_ftp(
        &config,
        &device_service,
        &metrics,
        (device_http, device_https, tls.as_deref()),
    )?;
    let mut admin = None;
    if !config.admin.listen.is_empty() {
        let listener = bind("admin", &config.admin.listen)?;
        let console = Arc::new(
            Console::new(pool.clone(), Arc::new(config.clone())).with_trust(trust.clone()),
        );
        start_housekeeping(pool.clone());
        start_online_check(pool.clone(), &config);
        let service = AdminService {
            console: console.clone(),
            api: Api {
                console: console.clone(),
            },
            metrics_allow: config.admin.metrics_allowlist(),
            pool: pool.clone(),
            recorder: recorder.clone(),
            connections: server.connections.clone(),
            auth: auth.clone(),
            metrics: metrics.clone(),
            shared: server.shared.clone(),
            started,
            tls: tls.clone(),
        };
        admin = Some((
            add_admin_listener(&mut server, &config, listener, service, tls.as_deref())?,
            console,
        ));
    }
    let _ = std::io::stdout().flush();
    log::info!(
        "zerotouch {} started in {} ms (account `{}`)",
        crate::VERSION,
        started.elapsed().as_millis(),
        account.slug
    );

    // External mode: generated files and the file transport, on threads of their own.
    let external = crate::external::worker::Worker::start(
        config.database_path(),
        Duration::from_millis(config.database.busy_timeout_ms),
        config.data_dir.clone(),
        config.external.clone(),
    );

    let keys = path
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|text| reload::flatten(&text))
        .unwrap_or_default();
    let mut reloader = reload::Reloader {
        path,
        config: config.clone(),
        keys,
        verbose,
        auth: auth.clone(),
        metrics: metrics.clone(),
        live: reload::Live {
            device_limits,
            admin,
            connections: server.connections.clone(),
            device_service: device_service.clone(),
        },
    };
    wait_for_signal(tls.as_deref(), &mut reloader)?;
    log::info!("stopping: draining connections");
    external.stop();
    // TFTP drains beside the HTTP listeners: transfers running finish within DRAIN.
    let tftp_stop = tftp.map(|h| std::thread::spawn(move || h.shutdown(DRAIN)));
    // FTP too: running transfers get DRAIN.
    let ftp_stop = ftp.map(|h| std::thread::spawn(move || h.shutdown()));
    server.shutdown(DRAIN);
    if let Some(Ok(left)) = tftp_stop.map(std::thread::JoinHandle::join)
        && left > 0
    {
        log::warn!("stopping: {left} TFTP transfer(s) abandoned");
    }
    if let Some(t) = ftp_stop {
        let _ = t.join();
    }
    prov.stop_sighting_writer();
    let _ = sighting_writer.join();
    stop_recorder(recorder, recorder_thread);
    log::info!("stopped");
    Ok(())
}

/// Brings the database up to date for serving: seals secrets stored in plain text, logs
/// stored items that set an owned parameter, makes sure the default account and the first
/// admin exist (saying so on standard output), and marks bulk imports a stop interrupted.
/// Returns the default account.
fn prepare_database(pool: &Pool) -> Result<crate::domain::account::Account> {
    let mut conn = pool.get()?;
    let sealed = crate::db::secrets::seal_plaintext(&mut conn)?;
    if sealed > 0 {
        log::info!("sealed {sealed} stored secret(s) with the secrets key");
        log::warn!(
            "copies of the database made before a migration (<data_dir>/backups/) may still \
             hold those secrets in clear: delete them once the upgrade is known to be good"
        );
    }
    crate::actions::stored::flag_owned_in_store(&conn)?;
    crate::actions::stored::flag_addresses_without_protocol(&conn)?;
    let (account, created) = accounts::ensure_default(&conn)?;
    if created {
        // The password itself stays out of logs: `account show --secrets` prints it.
        println!(
            "zerotouch: created the default account with generated device credentials (user `{}`); \
             see them with `zerotouch account show --secrets`, change them with \
             `zerotouch account set-credentials`",
            account.device_user.as_deref().unwrap_or("")
        );
    }
    for a in crate::db::accounts::list_accounts(&conn)? {
        if !a.device_secrets {
            println!(
                "zerotouch: account {} serves SIP passwords to anyone holding its account \
                 credential (DHCP option 160's); `zerotouch enrol mode on --account {}` \
                 withholds them until each phone enrols",
                a.slug, a.slug
            );
        }
    }
    if let Some(password) = crate::actions::signin::bootstrap_admin(&conn)? {
        println!(
            "zerotouch: admin user \"admin\" created; one-time password: {password} \
             (change it at first sign-in)"
        );
    }
    let failed = crate::db::jobs::fail_interrupted(&conn)?;
    if failed > 0 {
        log::warn!(
            "{failed} bulk import job(s) were interrupted by a stop; nothing of them was applied"
        );
    }
    // Device jobs of a previous run (their runner is gone): interrupted.
    crate::db::device_jobs::mark_orphaned(&conn);
    Ok(account)
}

/// The sizes and timeouts of a listener whose idle connections close after `idle` seconds,
/// with `memory`, the budget for its request bodies.
pub(crate) fn loop_limits(
    l: &crate::config::LimitsConfig,
    idle: u64,
    memory: &Arc<BodyBudget>,
) -> LoopLimits {
    LoopLimits {
        head_bytes: l.head_bytes,
        body_bytes: l.body_bytes,
        head_timeout: Duration::from_secs(l.head_timeout_secs),
        body_timeout: Duration::from_secs(l.body_timeout_secs),
        body_deadline: Duration::from_secs(l.body_deadline_secs),
        idle_timeout: Duration::from_secs(idle),
        memory: memory.clone(),
    }
}

/// A TLS acceptor for the rustls configuration `shared`.
fn tls_acceptor(config: &Config, shared: &Arc<crate::tls::SharedConfig>) -> Arc<dyn Acceptor> {
    Arc::new(TlsAcceptor {
        config: shared.clone(),
        handshake_timeout: Duration::from_secs(config.tls.handshake_timeout_secs),
    })
}

/// The device endpoints with their limits: what both device listeners run.
fn device_service(
    config: &Config,
    prov: &Arc<Provisioner>,
    auth: &Arc<DeviceAuth>,
    recorder: &Recorder,
    metrics: &Arc<crate::metrics::Metrics>,
) -> Arc<DeviceService> {
    let l = &config.limits;
    let dirs = DataDirs::under(&config.data_dir);
    Arc::new(
        DeviceService::new(
            prov.clone(),
            auth.clone(),
            recorder.clone(),
            dirs,
            l.upload_bytes,
            l.device_quota_bytes,
            metrics.clone(),
        )
        .with_http_mode(config.device.http_mode)
        .with_unassociated_cap(l.unassociated_upload_bytes)
        .with_admission(
            l.firmware_streams,
            l.upload_streams,
            l.busy_retry_after_secs,
        )
        .with_mac_readers(crate::http::device::readers::MacReaders::new(
            config.auth.macs_per_ip,
            Duration::from_secs(config.auth.mac_window_secs),
            l.allowlist(),
        )),
    )
}

/// Starts device HTTP (when configured) and device HTTPS (when its listener was bound).
/// Returns the device HTTP and HTTPS listeners' addresses.
fn add_device_listeners(
    server: &mut Server,
    config: &Config,
    device_service: &Arc<DeviceService>,
    tls: Option<&Tls>,
    https_listener: Option<TcpListener>,
    default_account: &crate::domain::account::Account,
) -> Result<(
    Option<std::net::SocketAddr>,
    Option<std::net::SocketAddr>,
    Arc<LiveLimits>,
)> {
    let l = &config.limits;
    // Device bodies in memory are never larger than `SMALL_BODY`, which costs no budget:
    // phones' uploads stream to files. So the device listeners' budget is empty, and
    // nothing a phone (or a stranger on the voice network) sends touches the admin's.
    let memory = Arc::new(BodyBudget::new(0));
    // Both device listeners hold the same limits; SIGHUP replaces them (`reload::Live`).
    let limits = LiveLimits::new(loop_limits(l, l.device_idle_secs, &memory));
    let (mut http_addr, mut https_addr) = (None, None);
    if !config.device.http_listen.is_empty() {
        let listener = bind("device HTTP", &config.device.http_listen)?;
        let addr = server
            .add(
                "device-http",
                listener,
                device_service.clone(),
                Arc::new(PlainAcceptor),
                limits.clone(),
            )
            .map_err(|e| Error::io("starting the device listener", e))?;
        println!("zerotouch: device HTTP listening on http://{addr}/");
        http_addr = Some(addr);
        // The password is a placeholder: it never goes to standard output or a log.
        println!(
            "zerotouch: DHCP option 160 for the default account: \
             http://{}:PASSWORD@<this-host>:{}{} (`zerotouch account show --secrets` prints \
             it with the password)",
            default_account.device_user.as_deref().unwrap_or("USER"),
            addr.port(),
            default_account.service_path()
        );
    }
    if let (Some(tls), Some(listener)) = (tls, https_listener) {
        let addr = server
            .add(
                "device-https",
                listener,
                device_service.clone(),
                tls_acceptor(config, &tls.device),
                limits.clone(),
            )
            .map_err(|e| Error::io("starting the device HTTPS listener", e))?;
        println!("zerotouch: device HTTPS listening on https://{addr}/");
        https_addr = Some(addr);
    }
    Ok((http_addr, https_addr, limits))
}

/// Device HTTP named as phones should reach it, where the TFTP and FTP listeners move
/// phones: the first public name, else the address the listener (`own`) or HTTP is bound
/// to, else this host's first address. None when device HTTP is off.
fn move_to(
    config: &Config,
    own: std::net::SocketAddr,
    device_http: Option<std::net::SocketAddr>,
) -> Option<String> {
    device_http.and_then(|http| {
        let host = config.device.public_names.first().cloned().or_else(|| {
            [own.ip(), http.ip()]
                .into_iter()
                .find(|ip| !ip.is_unspecified())
                .or_else(|| crate::host::addresses().into_iter().next())
                .map(|ip| match ip {
                    std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                    v4 => v4.to_string(),
                })
        })?;
        Some(format!("{host}:{}", http.port()))
    })
}

/// Starts the FTP listener when `ftp.listen` is set (`http::device::ftp` on the `ftp`
/// engine, whose runtime stays in its own thread).
fn start_ftp(
    config: &Config,
    device_service: &Arc<DeviceService>,
    metrics: &Arc<crate::metrics::Metrics>,
    (device_http, device_https, tls): (
        Option<std::net::SocketAddr>,
        Option<std::net::SocketAddr>,
        Option<&Tls>,
    ),
) -> Result<Option<crate::ftp::Handle>> {
    let Some(addr) = config.ftp.addr() else {
        return Ok(None);
    };
    let f = &config.ftp;
    let l = &config.limits;
    // Explicit FTPS with device HTTPS's certificate, when device HTTPS is on: a session
    // over TLS is moved to HTTPS.
    let https = device_https.filter(|_| f.tls);
    let ftps = match (https, tls) {
        (Some(_), Some(tls)) => Some(crate::tls::following(&tls.device)?),
        _ => None,
    };
    let files = Arc::new(crate::http::device::ftp::FtpDevices::new(
        device_service.clone(),
        (
            move_to(config, addr, device_http),
            ftps.as_ref().and_then(|_| move_to(config, addr, https)),
        ),
        addr,
        f.factory_login,
        loop_limits(
            l,
            f.idle_secs,
            &Arc::new(BodyBudget::new(l.memory_body_budget)),
        ),
    ));
    let settings = crate::ftp::Settings {
        passive_ports: f.passive_ports(),
        idle: Duration::from_secs(f.idle_secs),
        grace: DRAIN,
        upload_deadline: Duration::from_secs(l.body_deadline_secs),
        max_sessions: l.max_connections,
        max_sessions_per_ip: l.max_connections_per_ip,
        exempt: {
            let nets = l.allowlist();
            Arc::new(move |ip| nets.iter().any(|n| n.contains(ip)))
        },
        tls: ftps.clone(),
    };
    let handle = crate::ftp::start(addr, settings, files).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => " (another program listens there, e.g. vsftpd)",
            std::io::ErrorKind::PermissionDenied => {
                " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
            }
            _ => "",
        };
        Error::io(format!("ftp.listen: cannot listen on {addr}{hint}"), e)
    })?;
    let stats = handle.stats();
    metrics.set_ftp(Arc::new(move || {
        let n = |a: &std::sync::atomic::AtomicU64| {
            i64::try_from(a.load(Ordering::Relaxed)).unwrap_or(i64::MAX)
        };
        vec![
            ("logins".into(), n(&stats.logins)),
            ("busy".into(), n(&stats.busy)),
            ("refused_logins".into(), n(&stats.refused_logins)),
            ("reads".into(), n(&stats.reads)),
            ("stores".into(), n(&stats.stores)),
            ("refused".into(), n(&stats.refused)),
            ("bytes_sent".into(), n(&stats.bytes_sent)),
            ("bytes_received".into(), n(&stats.bytes_received)),
        ]
    }));
    let bound = handle.local_addr();
    // `${PROTO_URL}` for protocol ftp names this port.
    crate::actions::templating::set_ftp_port(Some(bound.port()));
    println!(
        "zerotouch: FTP listening on {bound} (passive ports {}-{}; {}FTP sends credentials in clear)",
        f.passive_first,
        f.passive_last,
        if ftps.is_some() {
            "explicit FTPS offered; plain "
        } else {
            ""
        }
    );
    log::warn!(
        "FTP on {bound}: user names and passwords cross the network in clear; the factory \
         login is {}",
        if f.factory_login {
            "accepted (what an unknown device gets, and the move to HTTP(S))"
        } else {
            "refused"
        }
    );
    Ok(Some(handle))
}

/// Starts the TFTP listener when `tftp.listen` is set: the device endpoints a phone may
/// read without credentials (`http::device::tftp`), to the networks of `tftp.allow`.
fn start_tftp(
    config: &Config,
    device_service: &Arc<DeviceService>,
    metrics: &Arc<crate::metrics::Metrics>,
    device_http: Option<std::net::SocketAddr>,
) -> Result<Option<crate::tftp::Handle>> {
    let Some(addr) = config.tftp.addr() else {
        return Ok(None);
    };
    let t = &config.tftp;
    let allow = t.allowlist();
    let settings = crate::tftp::Settings {
        max_transfers: t.max_transfers,
        timeout: Duration::from_secs(t.timeout_secs),
        retries: t.retries,
        max_blksize: crate::tftp::MAX_BLKSIZE,
        allow: Arc::new(move |ip| allow.iter().any(|n| n.contains(ip))),
    };
    // Where an account that allows its credential over TFTP moves its phones.
    let move_to = move_to(config, addr, device_http);
    let source = Arc::new(crate::http::device::tftp::TftpDevices::new(
        device_service.clone(),
        move_to,
    ));
    let server = crate::tftp::TftpServer::bind(addr, settings, source).map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => " (another program listens there, e.g. tftpd-hpa)",
            std::io::ErrorKind::PermissionDenied => {
                " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
            }
            _ => "",
        };
        Error::io(format!("tftp.listen: cannot listen on {addr}{hint}"), e)
    })?;
    let handle = server
        .spawn()
        .map_err(|e| Error::io("starting the TFTP listener", e))?;
    let stats = handle.stats();
    metrics.set_tftp(Arc::new(move || {
        let n = |a: &std::sync::atomic::AtomicU64| {
            i64::try_from(a.load(Ordering::Relaxed)).unwrap_or(i64::MAX)
        };
        vec![
            (
                "active".into(),
                i64::try_from(stats.active.load(Ordering::Relaxed)).unwrap_or(i64::MAX),
            ),
            ("requests".into(), n(&stats.requests)),
            ("completed".into(), n(&stats.completed)),
            ("abandoned".into(), n(&stats.abandoned)),
            ("refused".into(), n(&stats.refused)),
            ("busy".into(), n(&stats.busy)),
            ("dropped".into(), n(&stats.dropped)),
            ("bad".into(), n(&stats.bad)),
            ("bytes".into(), n(&stats.bytes)),
        ]
    }));
    let bound = handle.local_addr();
    // `${PROTO_URL}` for protocol tftp names this port.
    crate::actions::templating::set_tftp_port(Some(bound.port()));
    println!("zerotouch: TFTP listening on {bound} (read-only)");
    log::info!(
        "TFTP on {bound}: serves the unknown-device master, staging and ZTP files and firmware \
         images, never a device's configuration or a credential; answers {} (tftp.allow), at \
         most {} transfers at once",
        if t.allow.is_empty() {
            "nobody".to_string()
        } else {
            t.allow.join(", ")
        },
        t.max_transfers
    );
    Ok(Some(handle))
}

/// Starts the admin listener on `listener`, over HTTPS when `admin.tls` asks for it.
fn add_admin_listener(
    server: &mut Server,
    config: &Config,
    listener: TcpListener,
    service: AdminService,
    tls: Option<&Tls>,
) -> Result<Arc<LiveLimits>> {
    let l = &config.limits;
    let limits = LiveLimits::new(loop_limits(
        l,
        l.admin_idle_secs,
        &Arc::new(BodyBudget::new(l.memory_body_budget)),
    ));
    let (acceptor, scheme): (Arc<dyn Acceptor>, &str) = match (tls, config.admin.tls) {
        (Some(tls), true) => (tls_acceptor(config, &tls.admin), "https"),
        _ => (Arc::new(PlainAcceptor), "http"),
    };
    let addr = server
        .add(
            "admin",
            listener,
            Arc::new(service),
            acceptor,
            limits.clone(),
        )
        .map_err(|e| Error::io("starting the admin listener", e))?;
    println!("zerotouch: admin listening on {scheme}://{addr}/");
    Ok(limits)
}

/// Refuses to start when limiting device HTTP would strand devices: associated devices
/// seen only over plain HTTP would stop getting (part of) their configuration.
fn check_stranding(config: &Config, pool: &Pool) -> Result<()> {
    let off = config.device.http_listen.is_empty();
    let limited = config.device.http_mode == crate::config::HttpMode::NoSecrets;
    if !(off || limited) || config.device.allow_stranding {
        return Ok(());
    }
    let conn = pool.get()?;
    let n = crate::db::devices::count_http_only_devices(&conn)?;
    if n == 0 {
        return Ok(());
    }
    let what = if off {
        "device.http_listen: device HTTP is off"
    } else {
        "device.http_mode: plain HTTP serves no secrets"
    };
    Err(Error::Config(format!(
        "{what}, but {n} associated device(s) have only been seen over plain HTTP and would be \
         stranded (`zerotouch tls status` lists them). Move them to HTTPS first (deliver the CA \
         with tls.deliver_ca_to_phones and point them at https://), or set \
         device.allow_stranding = true to start anyway"
    )))
}

/// Once a minute, when `sip.enabled`: the background online check
/// (`actions::sip::online_check_round`) for the accounts that turned it on. The `[sip]`
/// section read at start-up is used until a restart.
fn start_online_check(pool: Pool, config: &Config) {
    if !config.sip.enabled {
        return;
    }
    let cfg = config.sip.clone();
    let own = crate::actions::own_addresses(config);
    let spawned = std::thread::Builder::new()
        .name("online-check".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(ONLINE_CHECK_EVERY_SECS));
                if let Ok(mut conn) = pool.get()
                    && let Err(e) = crate::actions::sip::online_check_round(&mut conn, &cfg, &own)
                {
                    log::warn!("online check: {e}");
                }
            }
        });
    if let Err(e) = spawned {
        log::warn!("cannot start the online check thread: {e}");
    }
}

/// Seconds between rounds of the online check (debug builds may shorten it for tests).
#[cfg(not(debug_assertions))]
const ONLINE_CHECK_EVERY_SECS: u64 = 60;
#[cfg(debug_assertions)]
const ONLINE_CHECK_EVERY_SECS: u64 = 2;

/// Once a minute: delete expired partial associations, expired console sessions and
/// check-in counts older than the charts show.
fn start_housekeeping(pool: Pool) {
    let spawned = std::thread::Builder::new()
        .name("housekeeping".into())
        .spawn(move || {
            loop {
                if let Ok(conn) = pool.get() {
                    let now = crate::db::now_secs();
                    match crate::db::subscribers::expire_partial(&conn, now) {
                        Ok(n) if n > 0 => log::info!("deleted {n} expired partial association(s)"),
                        Ok(_) => {}
                        Err(e) => log::warn!("expiring partial associations: {e}"),
                    }
                    crate::db::jobs::mark_orphaned(&conn);
                    crate::db::device_jobs::mark_orphaned(&conn);
                    if let Err(e) = crate::db::users::prune_sessions(&conn) {
                        log::warn!("pruning sessions: {e}");
                    }
                    // The charts read seven days of check-ins; a day more covers a bucket
                    // that started before the first day shown.
                    let before = now - 8 * 86_400;
                    if let Err(e) = crate::db::inventory::prune_checkin_counts(&conn, before) {
                        log::warn!("pruning check-in counts: {e}");
                    }
                }
                std::thread::sleep(Duration::from_secs(60));
            }
        });
    if let Err(e) = spawned {
        log::warn!("cannot start the housekeeping thread: {e}");
    }
}

fn stop_recorder(recorder: Recorder, thread: crate::recorder::RecorderThread) {
    if !recorder.flush(Duration::from_secs(10)) {
        log::warn!("the recorder did not flush in time; some access-log rows may be lost");
    }
    thread.stop(&recorder);
    let s = &recorder.stats;
    log::info!(
        "access log: {} written, {} dropped, {} failed",
        s.written.load(Ordering::Relaxed),
        s.dropped.load(Ordering::Relaxed),
        s.failed.load(Ordering::Relaxed)
    );
}

/// Waits for SIGTERM or SIGINT. Meanwhile SIGHUP re-reads the configuration file (what it
/// applies and what needs a restart: `reload.rs`) and reloads the TLS material, and the
/// generated server certificate is checked for renewal once a day.
fn wait_for_signal(tls: Option<&Tls>, reloader: &mut reload::Reloader) -> Result<()> {
    let term = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, term.clone())
            .map_err(|e| Error::io("installing signal handlers", e))?;
    }
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
        .map_err(|e| Error::io("installing signal handlers", e))?;
    let mut last_check = Instant::now();
    while !term.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if hup.swap(false, Ordering::Relaxed) {
            match reloader.reload() {
                Ok(r) => log::info!("SIGHUP: configuration re-read: {}", r.describe()),
                Err(e) => log::error!(
                    "SIGHUP: configuration not re-read, the settings in force are kept: {e}"
                ),
            }
            if let Some(tls) = tls {
                match tls.reload() {
                    Ok(s) => {
                        log::info!("SIGHUP: TLS reloaded: {s}");
                        println!("zerotouch: TLS reloaded: {s}");
                        let _ = std::io::stdout().flush();
                    }
                    Err(e) => log::error!(
                        "SIGHUP: TLS not reloaded, still serving the previous certificate: {e}"
                    ),
                }
            }
        }
        if let Some(tls) = tls
            && last_check.elapsed() >= RENEWAL_CHECK
        {
            last_check = Instant::now();
            if let Err(e) = tls.renew_if_due() {
                log::error!("tls: renewal failed, still serving the previous certificate: {e}");
            }
        }
    }
    Ok(())
}
