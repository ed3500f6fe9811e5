//! Running the server: prepare the data directory, open the database, start the recorder
//! and the listeners, wait for a signal, then drain connections and flush recordings.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::db::{Pool, accounts};
use crate::domain::provisioning::Provisioner;
use crate::error::{Error, Result};
use crate::http::admin::AdminService;
use crate::http::api::Api;
use crate::http::auth::DeviceAuth;
use crate::http::conn::LoopLimits;
use crate::http::console::Console;
use crate::http::device::{DataDirs, DeviceService};
use crate::http::server::{PlainAcceptor, Server};
use crate::recorder::Recorder;

/// How long SIGTERM waits for open requests to finish.
const DRAIN: Duration = Duration::from_secs(10);

/// Creates the data directory and its subdirectories, and proves it is writable, so a
/// read-only or mistyped path is a clear error at start rather than a failing upload later.
pub fn prepare_data_dir(data_dir: &Path) -> Result<()> {
    let dirs = DataDirs::under(data_dir);
    for d in [
        data_dir,
        &dirs.firmware,
        &dirs.uploads,
        &dirs.assets,
        &dirs.incoming,
        &data_dir.join("tls"),
    ] {
        std::fs::create_dir_all(d)
            .map_err(|e| Error::io(format!("creating data directory {}", d.display()), e))?;
    }
    let probe = data_dir.join(".write-test");
    std::fs::write(&probe, b"ok").map_err(|e| {
        Error::io(
            format!(
                "data directory {} is not writable (check its owner and permissions)",
                data_dir.display()
            ),
            e,
        )
    })?;
    let _ = std::fs::remove_file(probe);
    // Stale partial uploads from a crash.
    if let Ok(entries) = std::fs::read_dir(&dirs.incoming) {
        for e in entries.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(())
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
    TcpListener::bind(addr).map_err(|e| {
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

/// Runs the server until SIGTERM or SIGINT.
pub fn run(config: Config) -> Result<()> {
    let started = Instant::now();
    prepare_data_dir(&config.data_dir)?;
    let pool = open_pool(&config)?;
    let (account, secret) = {
        let conn = pool.get()?;
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
        if let Some(password) = crate::domain::signin::bootstrap_admin(&conn)? {
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
        let secret = accounts::get_or_create_setting(&conn, "nonce_secret", || {
            crate::domain::account::random_token(48)
        })?;
        (account, secret)
    };
    let (recorder, recorder_thread) = crate::recorder::Recorder::start(
        &config.database_path(),
        Duration::from_millis(config.database.busy_timeout_ms),
        &config.recording,
    )?;
    let auth = Arc::new(DeviceAuth::new(
        &config.device.realm,
        config.device.digest,
        secret.as_bytes(),
        &config.auth,
    ));
    let prov = Arc::new(Provisioner::new(
        pool.clone(),
        config.device.unassociated_cap,
    ));
    let l = &config.limits;
    let limits = |idle: u64| LoopLimits {
        head_bytes: l.head_bytes,
        body_bytes: l.body_bytes,
        head_timeout: Duration::from_secs(l.head_timeout_secs),
        body_timeout: Duration::from_secs(l.body_timeout_secs),
        idle_timeout: Duration::from_secs(idle),
    };
    let mut server = Server::new(l.max_connections, l.memory_body_budget);
    let dirs = DataDirs::under(&config.data_dir);
    if !config.device.http_listen.is_empty() {
        let listener = bind("device HTTP", &config.device.http_listen)?;
        let service = DeviceService::new(
            prov.clone(),
            auth.clone(),
            recorder.clone(),
            dirs,
            l.upload_bytes,
            l.device_quota_bytes,
        );
        let addr = server
            .add(
                "device-http",
                listener,
                Arc::new(service),
                Arc::new(PlainAcceptor),
                limits(l.device_idle_secs),
            )
            .map_err(|e| Error::io("starting the device listener", e))?;
        println!("zerotouch: device HTTP listening on http://{addr}/");
        println!(
            "zerotouch: DHCP option 160 for the default account: http://<this-host>:{}/",
            addr.port()
        );
    }
    if !config.admin.listen.is_empty() {
        let listener = bind("admin", &config.admin.listen)?;
        let console = Arc::new(Console::new(pool.clone(), Arc::new(config.clone())));
        start_housekeeping(pool.clone());
        let service = AdminService {
            console: console.clone(),
            api: Api { console },
            upload_bytes: l.csv_upload_bytes,
            pool: pool.clone(),
            recorder: recorder.clone(),
            connections: server.connections.clone(),
            auth: auth.clone(),
            started,
        };
        let addr = server
            .add(
                "admin",
                listener,
                Arc::new(service),
                Arc::new(PlainAcceptor),
                limits(l.admin_idle_secs),
            )
            .map_err(|e| Error::io("starting the admin listener", e))?;
        println!("zerotouch: admin listening on http://{addr}/");
    }
    let _ = std::io::stdout().flush();
    log::info!(
        "zerotouch {} started in {} ms (account `{}`)",
        crate::VERSION,
        started.elapsed().as_millis(),
        account.slug
    );

    wait_for_signal()?;
    log::info!("stopping: draining connections");
    server.shutdown(DRAIN);
    stop_recorder(recorder, recorder_thread);
    log::info!("stopped");
    Ok(())
}

/// Once a minute: delete expired partial associations and expired console sessions.
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
                    if let Err(e) = crate::db::users::prune_sessions(&conn) {
                        log::warn!("pruning sessions: {e}");
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
}

fn wait_for_signal() -> Result<()> {
    let term = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, term.clone())
            .map_err(|e| Error::io("installing signal handlers", e))?;
    }
    while !term.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
