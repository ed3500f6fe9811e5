//! The admin listener. For now: a health page for people and `/healthz` for monitors. The
//! console (sign-in, profiles, associations, Find) builds on this listener.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use maud::{DOCTYPE, Markup, html};
use rouille::{Request, Response, router};

use super::auth::DeviceAuth;
use super::conn::{Peer, Service};
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
    /// The Diagnostics page (`/diagnostics`), mounted as a whole.
    pub diagnostics: Arc<super::diagnostics::Diagnostics>,
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

    fn route(&self, request: &Request) -> Response {
        if let Some(r) = self.diagnostics.route(request, &self.pool) {
            return r;
        }
        router!(request,
            (GET) (/) => { Response::html(health_page(&self.health()).into_string()) },
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
            _ => Response::html(not_found_page().into_string()).with_status_code(404)
        )
    }
}

impl Service for AdminService {
    fn handle(&self, request: &Request, _peer: &Peer) -> Response {
        let mut r = self.route(request);
        for (k, v) in SECURITY_HEADERS {
            r.headers.push(((*k).into(), (*v).into()));
        }
        r
    }
}

/// The page layout shared by admin pages.
pub fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · zerotouch" }
                link rel="stylesheet" href="/assets/admin.css";
            }
            body {
                header { strong { "zerotouch" } " " span.muted { "provisioning server" } }
                main { (body) }
                footer.muted { "zerotouch " (crate::VERSION) }
            }
        }
    }
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
            p { a href="/diagnostics" { "Diagnostics" } ": DHCP options and DNS records that send phones elsewhere." }
            p.muted { "The console (profiles, associations, Find) is not part of this release yet; use the "
                code { "zerotouch" } " command line." }
        },
    )
}

fn not_found_page() -> Markup {
    page(
        "Not found",
        html! { h1 { "Not found" } p { a href="/" { "Back to the health page" } } },
    )
}
