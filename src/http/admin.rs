//! The admin listener. For now: a health page for people and `/healthz` for monitors. The
//! console (sign-in, profiles, associations, Find) builds on this listener.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use maud::{DOCTYPE, Markup, html};
use rouille::{Request, Response, router};

use super::auth::DeviceAuth;
use super::conn::{Peer, Service, Shared};
use super::server::Connections;
use crate::db::Pool;
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
        out
    }

    /// Devices by inventory state (DESIGN §7).
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
