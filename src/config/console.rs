//! The `[console]` and `[diagnostics]` sections: the admin console's sessions, sign-in
//! throttling, bulk CSV and Find limits, and the defaults of the diagnostics probes the
//! console and the CLI start.

use serde::Deserialize;

use super::positive;
use crate::error::FieldError;

/// `[diagnostics]`: defaults of the probes started from the admin UI and the CLI.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DiagnosticsConfig {
    /// Interface the DHCP probe sends on when none is given: the phones' network, often a
    /// voice VLAN such as `eth0.20`. Default empty (the admin UI then asks for one).
    pub dhcp_interface: String,
    /// Seconds the DHCP probe collects answers. Default `5`.
    pub dhcp_seconds: u64,
    /// Domain the DNS probe checks when none is given (the phones' DNS domain). Default
    /// empty (the admin UI then asks for one).
    pub dns_domain: String,
    /// Days of access log searched for phones that send wrong credentials. Default `7`.
    pub access_log_days: u32,
}

impl Default for DiagnosticsConfig {
    fn default() -> Self {
        DiagnosticsConfig {
            dhcp_interface: String::new(),
            dhcp_seconds: 5,
            dns_domain: String::new(),
            access_log_days: 7,
        }
    }
}

/// `[console]`: the admin web UI, its JSON API and the console commands.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Hours a reference ID without devices (a partial association) is kept before it is
    /// deleted. Default `4`.
    pub partial_expiry_hours: u64,
    /// Most device lines in one bulk association CSV file; a longer file is refused whole.
    /// Default `1000` (as Polycom's ZTP).
    pub csv_max_rows: usize,
    /// Most rows in a Find Operations CSV download (the "Max Number of Entries" field can
    /// ask for fewer). Default `100000`.
    pub find_csv_max_entries: usize,
    /// Confirmed bulk actions on more devices than this run as a job in the background, with
    /// a page showing their progress; smaller ones run while the page waits. Apply-now from
    /// the device list is always a job. Default `200`.
    pub bulk_job_threshold: usize,
    /// Minutes a console session may stay unused before it ends. Default `480` (8 hours).
    pub session_idle_minutes: u64,
    /// Hours a console session lasts at most. Default `24`.
    pub session_max_hours: u64,
    /// Wrong passwords for one user name from one address within `login_window_secs` before
    /// sign-in for that name from that address is blocked for `login_block_secs` (never
    /// from every address). Past as many for the name from all addresses together, each
    /// attempt for it waits a pause first, from 0.25 s doubling up to 4 s, never a refusal
    /// (skipped at an address the user signed in from within a day). Default `5`.
    pub login_failures_per_user: u32,
    /// Wrong passwords from one IP address within `login_window_secs` before sign-in from
    /// it pauses for `login_block_secs`. Default `20`.
    pub login_failures_per_ip: u32,
    /// Window, in seconds, over which wrong passwords are counted. Default `300`.
    pub login_window_secs: u64,
    /// Seconds sign-in pauses once over a limit; never longer, so the right password is
    /// never locked out for good. Default `60`.
    pub login_block_secs: u64,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            partial_expiry_hours: 4,
            csv_max_rows: 1000,
            find_csv_max_entries: 100_000,
            bulk_job_threshold: 200,
            session_idle_minutes: 480,
            session_max_hours: 24,
            login_failures_per_user: 5,
            login_failures_per_ip: 20,
            login_window_secs: 300,
            login_block_secs: 60,
        }
    }
}

impl DiagnosticsConfig {
    pub(super) fn validate(&self, p: &mut Vec<FieldError>) {
        if !(1..=60).contains(&self.dhcp_seconds) {
            p.push(FieldError::new(
                "diagnostics.dhcp_seconds",
                "must be 1 to 60",
            ));
        }
        positive(
            p,
            "diagnostics.access_log_days",
            self.access_log_days.into(),
        );
    }
}

impl ConsoleConfig {
    pub(super) fn validate(&self, p: &mut Vec<FieldError>) {
        positive(p, "console.partial_expiry_hours", self.partial_expiry_hours);
        positive(p, "console.csv_max_rows", self.csv_max_rows as u64);
        positive(
            p,
            "console.find_csv_max_entries",
            self.find_csv_max_entries as u64,
        );
        positive(
            p,
            "console.bulk_job_threshold",
            self.bulk_job_threshold as u64,
        );
        positive(p, "console.session_idle_minutes", self.session_idle_minutes);
        positive(p, "console.session_max_hours", self.session_max_hours);
        positive(
            p,
            "console.login_failures_per_user",
            self.login_failures_per_user.into(),
        );
        positive(
            p,
            "console.login_failures_per_ip",
            self.login_failures_per_ip.into(),
        );
        positive(p, "console.login_window_secs", self.login_window_secs);
        positive(p, "console.login_block_secs", self.login_block_secs);
    }
}
