//! The admin listener: `/healthz` for monitors, the health page, the stylesheet, the JSON
//! API under `/api/v1` (`api`), and the ZTP console pages (`console`) for everything else.
//! Security headers are added to every response here, once.

pub mod api;
mod api_files;
pub mod console;
pub mod views;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use maud::{Markup, html};
use rouille::{Request, Response, router};

use self::api::Api;
use self::console::Console;
use crate::db::Pool;
use crate::http::device::auth::DeviceAuth;
use crate::http::engine::budget::SMALL_BODY;
use crate::http::engine::conn::{BodyPlan, Head, LoopLimits, Peer, Service, Shared};
use crate::http::engine::server::Connections;
use crate::metrics::{self, Metrics};
use crate::recorder::Recorder;

/// Security headers sent with every admin response.
const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    (
        "Content-Security-Policy",
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    ),
    ("Cache-Control", "no-store"),
];

pub struct AdminService {
    pub pool: Pool,
    pub recorder: Recorder,
    pub connections: Arc<Connections>,
    pub auth: Arc<DeviceAuth>,
    pub metrics: Arc<Metrics>,
    pub shared: Arc<Shared>,
    pub started: Instant,
    /// TLS material, when HTTPS is on: the local CA is offered for download.
    pub tls: Option<Arc<crate::tls::Tls>>,
    pub console: Arc<Console>,
    pub api: Api,
    /// Who may read the monitoring paths without a token (`admin.metrics_allow`).
    pub metrics_allow: Vec<crate::domain::ipnet::IpNet>,
}

/// What the health page and `/healthz` show.
#[derive(serde::Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    uptime_secs: u64,
    database: String,
    accounts: i64,
    associated_devices: i64,
    unassociated_devices: i64,
    open_connections: usize,
    refused_connections: usize,
    recorder_queue: u64,
    recorder_dropped: u64,
    throttled_ips: usize,
}

impl AdminService {
    fn health(&self) -> Health {
        let counts = self.pool.get().and_then(|c| {
            let q = |sql: &str| {
                c.query_row(sql, [], |r| r.get::<_, i64>(0))
                    .map_err(crate::Error::from)
            };
            Ok((
                q("SELECT count(*) FROM accounts")?,
                q("SELECT count(*) FROM devices WHERE profile_id IS NOT NULL")?,
                q("SELECT count(*) FROM devices WHERE profile_id IS NULL")?,
            ))
        });
        let (database, (accounts, associated, unassociated)) = match counts {
            Ok(c) => ("ok".to_string(), c),
            Err(e) => (format!("error: {e}"), (0, 0, 0)),
        };
        let s = &self.recorder.stats;
        Health {
            status: if database == "ok" { "ok" } else { "degraded" },
            version: crate::VERSION,
            uptime_secs: self.started.elapsed().as_secs(),
            database,
            accounts,
            associated_devices: associated,
            unassociated_devices: unassociated,
            open_connections: self.connections.open.load(Ordering::Relaxed),
            refused_connections: self.connections.refused.load(Ordering::Relaxed),
            recorder_queue: self.recorder.depth(),
            recorder_dropped: s.dropped.load(Ordering::Relaxed),
            throttled_ips: self.auth.throttled_ips(),
        }
    }

    /// The Prometheus exposition of `/metrics`.
    fn render_metrics(&self) -> String {
        let mut out = String::new();
        let h = self.health();
        metrics::labelled(
            &mut out,
            "zerotouch_build_info",
            "gauge",
            "Version of the running server.",
            "version",
            &[(crate::VERSION.to_string(), 1)],
        );
        metrics::single(
            &mut out,
            "zerotouch_uptime_seconds",
            "gauge",
            "Seconds since the server started.",
            h.uptime_secs,
        );
        self.metrics.render(&mut out);
        let states = self.device_states().unwrap_or_default();
        metrics::labelled(
            &mut out,
            "zerotouch_devices",
            "gauge",
            "Devices by state.",
            "state",
            &states,
        );
        let s = &self.recorder.stats;
        metrics::single(
            &mut out,
            "zerotouch_recorder_queue_depth",
            "gauge",
            "Access-log events waiting to be written.",
            self.recorder.depth(),
        );
        metrics::single(
            &mut out,
            "zerotouch_recorder_written_total",
            "counter",
            "Access-log events written.",
            s.written.load(Ordering::Relaxed),
        );
        metrics::single(
            &mut out,
            "zerotouch_recorder_dropped_total",
            "counter",
            "Access-log events dropped because the queue was full.",
            s.dropped.load(Ordering::Relaxed),
        );
        metrics::single(
            &mut out,
            "zerotouch_recorder_failed_total",
            "counter",
            "Access-log events lost to write errors.",
            s.failed.load(Ordering::Relaxed),
        );
        metrics::single(
            &mut out,
            "zerotouch_connections_open",
            "gauge",
            "Open connections over all listeners.",
            h.open_connections,
        );
        metrics::single(
            &mut out,
            "zerotouch_connections_refused_total",
            "counter",
            "Connections refused at the connection cap.",
            h.refused_connections,
        );
        metrics::single(
            &mut out,
            "zerotouch_auth_throttled_ips",
            "gauge",
            "IP addresses throttled for wrong device credentials.",
            h.throttled_ips,
        );
        metrics::single(
            &mut out,
            "zerotouch_auth_throttled_accounts",
            "gauge",
            "Accounts whose wrong device credentials are throttled (guesses from many addresses).",
            self.auth.throttled_accounts(),
        );
        metrics::single(
            &mut out,
            "zerotouch_connections_refused_per_ip_total",
            "counter",
            "Connections refused because their address had limits.max_connections_per_ip open.",
            self.connections.refused_per_ip.load(Ordering::Relaxed),
        );
        metrics::single(
            &mut out,
            "zerotouch_connections_addresses",
            "gauge",
            "Client addresses with open connections (allowlisted ones not counted).",
            self.connections.addresses(),
        );
        let signin = self.console.throttle.blocked_count(Instant::now());
        metrics::single(
            &mut out,
            "zerotouch_signin_throttled",
            "gauge",
            "Admin sign-in addresses and (user name, address) pairs blocked for wrong passwords.",
            signin,
        );
        self.metrics.render_security(&mut out);
        self.render_operations(&mut out);
        out
    }

    /// What an operator alerts on: the certificate's expiry, the last backup, the
    /// database's size and the credential state machine's counts per account.
    fn render_operations(&self, out: &mut String) {
        use std::fmt::Write as _;
        let config = &self.console.config();
        if let Some(tls) = &self.tls
            && let Some(leaf) = tls.status().chain.first()
        {
            metrics::single(
                out,
                "zerotouch_tls_certificate_expiry_timestamp_seconds",
                "gauge",
                "When the certificate phones are served over HTTPS expires (Unix seconds).",
                leaf.not_after,
            );
        }
        metrics::single(
            out,
            "zerotouch_backup_last_success_timestamp_seconds",
            "gauge",
            "When the last backup was written (Unix seconds; 0: none on record).",
            crate::backup::last_success(&config.data_dir).unwrap_or(0),
        );
        let db = config.database_path();
        let mut wal = db.clone().into_os_string();
        wal.push("-wal");
        let size = [db.as_os_str(), wal.as_os_str()]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum::<u64>();
        metrics::single(
            out,
            "zerotouch_database_size_bytes",
            "gauge",
            "Bytes of the database file and its write-ahead log.",
            size,
        );
        let counts = self
            .pool
            .get()
            .and_then(|conn| crate::actions::accounts::sync_counts(&conn));
        match counts {
            Ok(counts) => {
                let name = "zerotouch_autosync_devices";
                let _ = writeln!(
                    out,
                    "# HELP {name} Associated devices per account by credential state (as `autosync status` counts them)."
                );
                let _ = writeln!(out, "# TYPE {name} gauge");
                for (slug, c) in counts {
                    for (state, n) in ["synced", "pending", "locked_out", "never_seen"]
                        .iter()
                        .zip(c)
                    {
                        let _ = writeln!(out, "{name}{{account=\"{slug}\",state=\"{state}\"}} {n}");
                    }
                }
            }
            Err(e) => log::warn!("metrics: cannot count the credential states: {e}"),
        }
    }

    /// Devices by inventory state (docs/design.md §7).
    fn device_states(&self) -> crate::Result<Vec<(String, i64)>> {
        let conn = self.pool.get()?;
        let day_ago = crate::db::now_secs() - 86_400;
        let row = conn.query_row(
            "SELECT
               sum(d.profile_id IS NULL),
               sum(d.profile_id IS NOT NULL AND a.device_id IS NULL),
               sum(d.profile_id IS NOT NULL AND a.last_auth_ok_at >= ?1),
               sum(d.profile_id IS NOT NULL AND a.device_id IS NOT NULL AND coalesce(a.last_auth_ok_at, 0) < ?1)
             FROM devices d LEFT JOIN device_activity a ON a.device_id = d.id",
            [day_ago],
            |r| Ok([r.get::<_, Option<i64>>(0)?, r.get(1)?, r.get(2)?, r.get(3)?]),
        )?;
        Ok([
            "unassociated",
            "staged",
            "provisioned-active",
            "provisioned",
        ]
        .iter()
        .zip(row)
        .map(|(k, v)| (k.to_string(), v.unwrap_or(0)))
        .collect())
    }

    /// The local CA, for admins to install on phones or in browsers by hand.
    fn ca_pem(&self) -> Response {
        match self.tls.as_ref().and_then(|t| t.status().local_ca_pem) {
            Some(pem) => Response::from_data("application/x-pem-file", pem).with_additional_header(
                "Content-Disposition",
                "attachment; filename=\"zerotouch-ca.pem\"",
            ),
            None => Response::text(
                "no local CA: HTTPS is off or serves an admin-supplied certificate\n",
            )
            .with_status_code(404),
        }
    }

    /// The answer to a request this listener must not serve: a `Host` it does not answer
    /// to (DNS rebinding), or a monitoring path asked by an address neither loopback nor
    /// allowed, without an API token.
    fn refusal(&self, request: &Request, peer: &Peer) -> Option<Response> {
        let admin = &self.console.config().admin;
        if let Some(host) = request.header("Host")
            && !admin.accepts_host(host)
        {
            return Some(
                Response::text(format!(
                    "this server does not answer to the host `{}` (admin.names)\n",
                    host.chars().take(100).collect::<String>()
                ))
                .with_status_code(421),
            );
        }
        let monitoring = matches!(
            request.url().as_str(),
            "/metrics" | "/healthz" | "/readyz" | "/health"
        );
        if !monitoring {
            return None;
        }
        let ip = peer.addr.ip();
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
            v4 => v4,
        };
        if ip.is_loopback()
            || crate::domain::ipnet::any_contains(&self.metrics_allow, ip)
            || self.bearer_is_valid(request)
        {
            return None;
        }
        Some(
            Response::text(
                "monitoring is served to loopback, to admin.metrics_allow and to API tokens\n",
            )
            .with_status_code(401)
            .with_additional_header("WWW-Authenticate", "Bearer realm=\"zerotouch\""),
        )
    }

    /// Whether the request carries a valid API token.
    fn bearer_is_valid(&self, request: &Request) -> bool {
        let Some(token) = request
            .header("Authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
        else {
            return false;
        };
        self.pool
            .get()
            .ok()
            .and_then(|c| crate::actions::signin::token_user(&c, token.trim()).ok())
            .flatten()
            .is_some()
    }

    fn route(&self, request: &Request, peer: &Peer) -> Response {
        let url = request.url();
        if url == "/api/v1" || url.starts_with("/api/v1/") {
            return self.api.handle(request, peer);
        }
        router!(request,
            (GET) (/health) => { Response::html(health_page(&self.health()).into_string()) },
            (GET) (/assets/{name: String}) => {
                let (kind, body) = match name.as_str() {
                    "admin.css" => ("text/css; charset=utf-8", include_str!("../../../assets/admin.css")),
                    "copy.js" => ("text/javascript; charset=utf-8", include_str!("../../../assets/copy.js")),
                    "times.js" => ("text/javascript; charset=utf-8", include_str!("../../../assets/times.js")),
                    _ => return Response::empty_404(),
                };
                Response::from_data(kind, body).with_additional_header("Cache-Control", "max-age=3600")
            },
            (GET) (/readyz) => {
                // Ready: the database answers and the server is not draining.
                let db_ok = self.pool.get().and_then(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?)).is_ok();
                let stopping = self.shared.stopping.load(Ordering::Relaxed);
                match (db_ok, stopping) {
                    (true, false) => Response::text("ready\n"),
                    (false, _) => Response::text("database unavailable\n").with_status_code(503),
                    (_, true) => Response::text("stopping\n").with_status_code(503),
                }
            },
            (GET) (/metrics) => {
                Response::from_data("text/plain; version=0.0.4; charset=utf-8", self.render_metrics())
            },
            (GET) (/tls/{name: String}) => {
                if name != "ca.pem" { return Response::empty_404(); }
                self.ca_pem()
            },
            (GET) (/healthz) => {
                let h = self.health();
                let status = if h.status == "ok" { 200 } else { 503 };
                Response::json(&h).with_status_code(status)
            },
            _ => self.console.handle(request, peer)
        )
    }
}

impl Service for AdminService {
    /// Uploads (bulk CSV, profile files) may be larger than ordinary forms, and only a
    /// signed-in user or an API token may send more than a small body.
    fn plan(&self, head: &Head, _peer: &Peer, limits: &LoopLimits) -> BodyPlan {
        let path = head.raw_path();
        let config = &self.console.config();
        // Firmware releases are streamed to disk, and only for a user who may import them.
        if head.method == "POST" && (path == "/firmware" || path == "/api/v1/firmware") {
            if let Some(r) = self.console.upload_refusal(head, path.starts_with("/api/")) {
                return BodyPlan::Respond(r);
            }
            let dir = crate::datadir::DataDirs::under(&config.data_dir).firmware_incoming;
            if let Err(e) = std::fs::create_dir_all(&dir) {
                log::error!("cannot create {}: {e}", dir.display());
                return BodyPlan::Respond(
                    Response::text("cannot store uploads right now\n").with_status_code(507),
                );
            }
            return BodyPlan::File {
                dir,
                limit: config.limits.firmware_upload_bytes,
            };
        }
        let asset = matches!(head.method.as_str(), "POST" | "PUT")
            && (path.starts_with("/files") || path.starts_with("/api/v1/assets"));
        let upload = head.method == "POST"
            && (path == "/import"
                || path.starts_with("/profiles")
                || path.starts_with("/api/v1/imports")
                || path.starts_with("/api/v1/profiles")
                || (path.starts_with("/accounts/") && path.ends_with("/import"))
                || (path.starts_with("/api/v1/accounts/") && path.ends_with("/import")));
        let limit = if asset {
            config.limits.asset_upload_bytes.max(limits.body_bytes)
        } else if upload {
            config.limits.csv_upload_bytes.max(limits.body_bytes)
        } else {
            limits.body_bytes
        };
        // Admission before memory: a small body (a sign-in form) is read for anyone and
        // costs no budget; a larger one, or a chunked one that may grow, only for a signed-in
        // user or an API token, checked now, before anything is reserved for it.
        if limit <= SMALL_BODY
            || head
                .content_length()
                .is_some_and(|n| n <= SMALL_BODY as u64)
        {
            return BodyPlan::Memory { limit };
        }
        match self.console.body_refusal(head, path.starts_with("/api/")) {
            None => BodyPlan::Memory { limit },
            // A chunked body from anyone else is read only while it stays small.
            Some(_) if head.content_length().is_none() => BodyPlan::Memory { limit: SMALL_BODY },
            Some(r) => BodyPlan::Respond(r),
        }
    }

    fn handle(&self, request: &Request, peer: &Peer) -> Response {
        let mut r = match self.refusal(request, peer) {
            Some(r) => r,
            None => self.route(request, peer),
        };
        for (k, v) in SECURITY_HEADERS {
            r.headers.push(((*k).into(), (*v).into()));
        }
        r
    }
}

/// The page layout for pages outside the console's navigation (the health page).
pub fn page(title: &str, body: Markup) -> Markup {
    self::views::page(title, &self::views::Nav::default(), body)
}

fn health_page(h: &Health) -> Markup {
    let row = |k: &str, v: String| html! { tr { th { (k) } td { (v) } } };
    page(
        "Health",
        html! {
            h1 { "Health: " (h.status) }
            table.kv {
                (row("Version", h.version.to_string()))
                (row("Uptime", format!("{} s", h.uptime_secs)))
                (row("Database", h.database.clone()))
                (row("Accounts", h.accounts.to_string()))
                (row("Associated devices", h.associated_devices.to_string()))
                (row("Seen, not associated", h.unassociated_devices.to_string()))
                (row("Open connections", h.open_connections.to_string()))
                (row("Connections refused (cap)", h.refused_connections.to_string()))
                (row("Recorder queue", h.recorder_queue.to_string()))
                (row("Recorder events dropped", h.recorder_dropped.to_string()))
                (row("IPs throttled for wrong credentials", h.throttled_ips.to_string()))
            }
            p { a href="/" { "Go to the console" } " · " a href="/diagnostics" { "Diagnostics" } }
        },
    )
}
