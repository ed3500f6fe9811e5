//! Counters and latency histograms of the device endpoints, kept in atomics so the hot path
//! never takes a lock, and their rendering in the Prometheus text format for `/metrics`.
//!
//! Gauges that come from the database (devices by state) or other components (recorder,
//! connections) are read at scrape time by the admin listener and passed in.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Reads an admission gate: requests refused over its cap so far, and running now. A
/// function, so this module knows nothing of the HTTP engine's gates.
pub type GateReader = std::sync::Arc<dyn Fn() -> (u64, usize) + Send + Sync>;

/// Reads the TFTP listener's transfer counters, `(name, value)` (`completed`, `busy`,
/// `dropped`, …). A function, so this module knows nothing of the TFTP engine.
pub type TftpReader = std::sync::Arc<dyn Fn() -> Vec<(String, i64)> + Send + Sync>;

/// What a device request was for: the `route` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Master,
    DefaultMaster,
    Generated,
    Profile,
    Stage,
    Ztp,
    UploadPut,
    UploadGet,
    Firmware,
    Asset,
    /// `<mac>-tls-probe.cfg`: a phone proving it trusts the CA.
    TlsProbe,
    /// Refused before the file was known (bad path, method, unknown account).
    Other,
}

impl Route {
    const ALL: [Route; 12] = [
        Route::Master,
        Route::DefaultMaster,
        Route::Generated,
        Route::Profile,
        Route::Stage,
        Route::Ztp,
        Route::UploadPut,
        Route::UploadGet,
        Route::Firmware,
        Route::Asset,
        Route::TlsProbe,
        Route::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Route::Master => "master",
            Route::DefaultMaster => "default_master",
            Route::Generated => "generated",
            Route::Profile => "profile",
            Route::Stage => "stage",
            Route::Ztp => "ztp",
            Route::UploadPut => "upload_put",
            Route::UploadGet => "upload_get",
            Route::Firmware => "firmware",
            Route::Asset => "asset",
            Route::TlsProbe => "tls_probe",
            Route::Other => "other",
        }
    }

    fn index(self) -> usize {
        Route::ALL
            .iter()
            .position(|r| *r == self)
            .unwrap_or(Route::ALL.len() - 1)
    }
}

/// Status codes counted individually; anything else is counted as its class (`4xx`, `5xx`).
const STATUSES: [u16; 18] = [
    200, 201, 204, 206, 304, 400, 401, 403, 404, 405, 408, 413, 416, 429, 431, 500, 503, 507,
];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
const STATUS_SLOTS: usize = STATUSES.len() + CLASSES.len();

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

struct RouteStats {
    by_status: [AtomicU64; STATUS_SLOTS],
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl RouteStats {
    fn new() -> RouteStats {
        RouteStats {
            by_status: std::array::from_fn(|_| AtomicU64::new(0)),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }
}

/// Device-request metrics.
pub struct Metrics {
    routes: Vec<RouteStats>,
    /// Requests served without secrets, or refused per-device files, because the requester
    /// did not prove it is the device (per-device secrets).
    pub secrets_withheld: AtomicU64,
    /// Devices that enrolled (their own credential was created for delivery).
    pub enrolments: AtomicU64,
    /// Requests refused because their address read too many MACs' files.
    pub many_macs: AtomicU64,
    /// The abuse limits in force, `(name, value)`, shown as `zerotouch_limit{name=…}`.
    limits: std::sync::Mutex<Vec<(String, i64)>>,
    /// Admission gates by kind (`firmware`, `upload`): running and refused requests.
    gates: std::sync::Mutex<Vec<(&'static str, GateReader)>>,
    /// TFTP read requests by route: `[served, refused]`.
    tftp_routes: Vec<[AtomicU64; 2]>,
    /// The TFTP listener's transfer counters, when it runs.
    tftp: std::sync::Mutex<Option<TftpReader>>,
    /// FTP requests by route: `[served, refused]`.
    ftp_routes: Vec<[AtomicU64; 2]>,
    /// The FTP listener's counters, when it runs.
    ftp: std::sync::Mutex<Option<TftpReader>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            routes: Route::ALL.iter().map(|_| RouteStats::new()).collect(),
            secrets_withheld: AtomicU64::new(0),
            enrolments: AtomicU64::new(0),
            many_macs: AtomicU64::new(0),
            limits: std::sync::Mutex::new(Vec::new()),
            gates: std::sync::Mutex::new(Vec::new()),
            tftp_routes: Route::ALL
                .iter()
                .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
                .collect(),
            tftp: std::sync::Mutex::new(None),
            ftp_routes: Route::ALL
                .iter()
                .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
                .collect(),
            ftp: std::sync::Mutex::new(None),
        }
    }
}

fn status_slot(status: u16) -> usize {
    match STATUSES.iter().position(|s| *s == status) {
        Some(i) => i,
        None => STATUSES.len() + usize::from((status / 100).clamp(1, 5) - 1),
    }
}

fn status_label(slot: usize) -> String {
    if slot < STATUSES.len() {
        STATUSES[slot].to_string()
    } else {
        CLASSES[slot - STATUSES.len()].to_string()
    }
}

impl Metrics {
    /// Records the limits in force, for `/metrics`.
    pub fn set_limits(&self, limits: Vec<(String, i64)>) {
        *self.limits.lock().unwrap_or_else(|p| p.into_inner()) = limits;
    }

    /// Registers the admission gates shown in `/metrics`.
    pub fn set_gates(&self, gates: Vec<(&'static str, GateReader)>) {
        *self.gates.lock().unwrap_or_else(|p| p.into_inner()) = gates;
    }

    /// Appends the abuse-resistance counters and the limits in force.
    pub fn render_security(&self, out: &mut String) {
        single(
            out,
            "zerotouch_secrets_withheld_total",
            "counter",
            "Device requests served without secrets (or refused per-device files): the requester did not prove it is the device.",
            self.secrets_withheld.load(Ordering::Relaxed),
        );
        single(
            out,
            "zerotouch_enrolments_total",
            "counter",
            "Devices that enrolled: their own credential was created for delivery.",
            self.enrolments.load(Ordering::Relaxed),
        );
        single(
            out,
            "zerotouch_many_macs_total",
            "counter",
            "Device requests served to an address that read the files of more devices than auth.macs_per_ip without proving it is them (reported, never refused).",
            self.many_macs.load(Ordering::Relaxed),
        );
        let limits = self
            .limits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let gates = self.gates.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let shed: Vec<(String, i64)> = gates
            .iter()
            .map(|(k, g)| (k.to_string(), g().0 as i64))
            .collect();
        labelled(
            out,
            "zerotouch_shed_total",
            "counter",
            "Firmware downloads and uploads refused with 503 because their kind was at its cap (limits.firmware_streams, limits.upload_streams).",
            "kind",
            &shed,
        );
        let running: Vec<(String, i64)> = gates
            .iter()
            .map(|(k, g)| (k.to_string(), g().1 as i64))
            .collect();
        labelled(
            out,
            "zerotouch_streams_running",
            "gauge",
            "Firmware downloads and uploads being served now.",
            "kind",
            &running,
        );
        labelled(
            out,
            "zerotouch_limit",
            "gauge",
            "Configured limits (sizes in bytes, times in seconds, counts).",
            "name",
            &limits,
        );
    }

    /// Counts one request.
    pub fn observe(&self, route: Route, status: u16, micros: u64) {
        let r = &self.routes[route.index()];
        r.by_status[status_slot(status)].fetch_add(1, Ordering::Relaxed);
        r.count.fetch_add(1, Ordering::Relaxed);
        r.sum_micros.fetch_add(micros, Ordering::Relaxed);
        let secs = micros as f64 / 1e6;
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            r.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a TFTP read request (served, or refused by the device rules).
    pub fn observe_tftp(&self, route: Route, served: bool) {
        self.tftp_routes[route.index()][usize::from(!served)].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an FTP request.
    pub fn observe_ftp(&self, route: Route, served: bool) {
        self.ftp_routes[route.index()][usize::from(!served)].fetch_add(1, Ordering::Relaxed);
    }

    /// Registers the FTP listener's counters.
    pub fn set_ftp(&self, reader: TftpReader) {
        *self.ftp.lock().unwrap_or_else(|p| p.into_inner()) = Some(reader);
    }

    /// Registers the TFTP listener's counters.
    pub fn set_tftp(&self, reader: TftpReader) {
        *self.tftp.lock().unwrap_or_else(|p| p.into_inner()) = Some(reader);
    }

    /// Appends the TFTP and FTP metrics: requests by route and outcome, and each
    /// listener's counters (only while it runs).
    fn render_tftp(&self, out: &mut String) {
        let tftp = self.tftp.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(reader) = tftp {
            self.render_protocol(
                out,
                ("tftp", "TFTP read requests"),
                &self.tftp_routes,
                (
                    "zerotouch_tftp_transfers",
                    "TFTP listener counters: transfers running, completed, abandoned, refused, busy answers, dropped and bad datagrams, data bytes sent.",
                ),
                &reader(),
            );
        }
        let ftp = self.ftp.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(reader) = ftp {
            self.render_protocol(
                out,
                ("ftp", "FTP requests (RETR, SIZE, MDTM, STOR, APPE)"),
                &self.ftp_routes,
                (
                    "zerotouch_ftp_sessions",
                    "FTP listener counters: logins accepted and refused, reads, stores and refusals, data bytes sent and received.",
                ),
                &reader(),
            );
        }
    }

    /// One protocol's requests by route and outcome, and its listener's counters.
    fn render_protocol(
        &self,
        out: &mut String,
        (proto, what): (&str, &str),
        routes: &[[AtomicU64; 2]],
        (counters, help): (&str, &str),
        values: &[(String, i64)],
    ) {
        let _ = writeln!(
            out,
            "# HELP zerotouch_{proto}_requests_total {what} by route and outcome."
        );
        let _ = writeln!(out, "# TYPE zerotouch_{proto}_requests_total counter");
        for route in Route::ALL {
            for (i, outcome) in ["served", "refused"].iter().enumerate() {
                let n = routes[route.index()][i].load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "zerotouch_{proto}_requests_total{{route=\"{}\",outcome=\"{outcome}\"}} {n}",
                        route.label()
                    );
                }
            }
        }
        labelled(out, counters, "gauge", help, "counter", values);
    }

    /// Requests counted so far, over all routes.
    pub fn total(&self) -> u64 {
        self.routes
            .iter()
            .map(|r| r.count.load(Ordering::Relaxed))
            .sum()
    }

    /// Appends the device-request metrics in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        self.render_tftp(out);
        let _ = writeln!(
            out,
            "# HELP zerotouch_device_requests_total Device requests by route and status."
        );
        let _ = writeln!(out, "# TYPE zerotouch_device_requests_total counter");
        for route in Route::ALL {
            let r = &self.routes[route.index()];
            for (slot, n) in r.by_status.iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "zerotouch_device_requests_total{{route=\"{}\",status=\"{}\"}} {n}",
                        route.label(),
                        status_label(slot)
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP zerotouch_device_request_duration_seconds Time to handle a device request."
        );
        let _ = writeln!(
            out,
            "# TYPE zerotouch_device_request_duration_seconds histogram"
        );
        for route in Route::ALL {
            let r = &self.routes[route.index()];
            let count = r.count.load(Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            let label = route.label();
            let mut cumulative = 0;
            for (i, b) in BUCKETS.iter().enumerate() {
                cumulative += r.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "zerotouch_device_request_duration_seconds_bucket{{route=\"{label}\",le=\"{b}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "zerotouch_device_request_duration_seconds_bucket{{route=\"{label}\",le=\"+Inf\"}} {count}"
            );
            let sum = r.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "zerotouch_device_request_duration_seconds_sum{{route=\"{label}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "zerotouch_device_request_duration_seconds_count{{route=\"{label}\"}} {count}"
            );
        }
    }
}

/// Appends one gauge or counter with its HELP and TYPE lines.
pub fn single(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {value}");
}

/// Appends a labelled family: `(label value, value)` pairs under one label name.
pub fn labelled(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    label: &str,
    values: &[(String, i64)],
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (l, v) in values {
        let _ = writeln!(out, "{name}{{{label}=\"{l}\"}} {v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_route_status_and_latency() {
        let m = Metrics::default();
        m.observe(Route::Master, 200, 300);
        m.observe(Route::Master, 200, 30_000);
        m.observe(Route::Master, 418, 10);
        m.observe(Route::Firmware, 206, 1_000_000);
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains("zerotouch_device_requests_total{route=\"master\",status=\"200\"} 2"),
            "{out}"
        );
        assert!(
            out.contains("zerotouch_device_requests_total{route=\"master\",status=\"4xx\"} 1"),
            "{out}"
        );
        assert!(
            out.contains("duration_seconds_bucket{route=\"master\",le=\"0.0005\"} 2"),
            "{out}"
        );
        assert!(
            out.contains("duration_seconds_bucket{route=\"master\",le=\"+Inf\"} 3"),
            "{out}"
        );
        assert!(
            out.contains("duration_seconds_count{route=\"firmware\"} 1"),
            "{out}"
        );
        assert_eq!(m.total(), 4);
    }
}
