//! The admin listener: `/healthz` for monitors, the health page, the stylesheet, the JSON
//! API under `/api/v1` (`api`), and the ZTP console pages (`console`) for everything else.
//! Security headers are added to every response here, once.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use maud::{Markup, html};
use rouille::{Request, Response, router};

use super::api::Api;
use super::auth::DeviceAuth;
use super::conn::{BodyPlan, Head, LoopLimits, Peer, Service};
use super::console::Console;
use super::server::Connections;
use crate::db::Pool;
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
    pub started: Instant,
    pub console: Arc<Console>,
    pub api: Api,
    /// Largest CSV or profile-file upload (`limits.csv_upload_bytes`).
    pub upload_bytes: usize,
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

    fn route(&self, request: &Request, peer: &Peer) -> Response {
        let url = request.url();
        if url == "/api/v1" || url.starts_with("/api/v1/") {
            return self.api.handle(request, peer);
        }
        router!(request,
            (GET) (/health) => { Response::html(health_page(&self.health()).into_string()) },
            (GET) (/assets/{name: String}) => {
                if name != "admin.css" { return Response::empty_404(); }
                Response::from_data("text/css; charset=utf-8", include_str!("../../assets/admin.css"))
                    .with_additional_header("Cache-Control", "max-age=3600")
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
    /// Uploads (bulk CSV, profile files) may be larger than ordinary forms.
    fn plan(&self, head: &Head, _peer: &Peer, limits: &LoopLimits) -> BodyPlan {
        let path = head.raw_path();
        let upload = head.method == "POST"
            && (path == "/import"
                || path.starts_with("/profiles")
                || path.starts_with("/api/v1/imports")
                || path.starts_with("/api/v1/profiles"));
        BodyPlan::Memory {
            limit: if upload {
                self.upload_bytes.max(limits.body_bytes)
            } else {
                limits.body_bytes
            },
        }
    }

    fn handle(&self, request: &Request, peer: &Peer) -> Response {
        let mut r = self.route(request, peer);
        for (k, v) in SECURITY_HEADERS {
            r.headers.push(((*k).into(), (*v).into()));
        }
        r
    }
}

/// The page layout for pages outside the console's navigation (the health page).
pub fn page(title: &str, body: Markup) -> Markup {
    super::views::page(title, &super::views::Nav::default(), body)
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
            p { a href="/" { "Go to the console" } }
        },
    )
}
