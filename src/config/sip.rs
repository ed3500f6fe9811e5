//! The `[sip]` section: SIP check-sync ("apply now") — whether it is on, the device
//! networks it may reach, and how fast and in what waves it sends.

use std::time::Duration;

use serde::Deserialize;

use super::positive;
use crate::domain::checksync::PbxFor;
use crate::domain::ipnet::IpNet;
use crate::error::FieldError;

/// `[sip]`: "apply now" sends phones a SIP `NOTIFY` with `Event: check-sync`, after which a
/// Polycom phone fetches its configuration again (and restarts only when the change needs
/// it). Only to the address of the phone's latest request that proved it is that phone
/// (its own credential or client certificate), and only inside `networks`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// Turns apply-now and the SIP sender on. Default `false`.
    pub enabled: bool,
    /// The device networks check-sync may be sent to (CIDRs or addresses, e.g.
    /// `["10.20.0.0/16"]`). An address outside every network is never sent to. Default `[]`
    /// (nothing is sent).
    pub networks: Vec<String>,
    /// SIP requests sent per second, over every apply-now of this process. Default `20`.
    pub rate_per_sec: u32,
    /// RFC 3261 timer T1 in milliseconds: the first UDP retransmission interval, doubling up
    /// to 8×T1 (T2); a request is given up after 64×T1 (timer F). Default `500`.
    pub t1_ms: u64,
    /// The most of a site's phones (percent of the site's associated phones, at least one)
    /// that may be sent check-sync in one wave when the change restarts them (a pending
    /// `device.*` change, new software). Default `10`.
    pub reboot_share_percent: u32,
    /// Seconds between waves of restarting phones (a phone's restart time). Default `180`.
    pub wave_gap_secs: u64,
    /// Seconds apply-now waits, after its last send, for phones to fetch their
    /// configuration before it reports the rest as "waiting for next poll". Default `30`.
    pub confirm_wait_secs: u64,
    /// The background online check (accounts with it on, `account sip --online-check on`):
    /// a device with no poll and no SIP answer for this many seconds is sent `OPTIONS`
    /// (at its proven address inside `networks` only), at most once per interval. Default
    /// `3600`.
    pub online_check_interval_secs: u64,
    /// The most devices the online check asks per minute, over every account. Default `60`.
    pub online_check_per_minute: u32,
    /// `OPTIONS` per second the online check sends (within `rate_per_sec`). Default `5`.
    pub online_check_rate_per_sec: u32,
    /// A command (absolute path) apply-now runs per device to have the PBX send check-sync
    /// instead, as `COMMAND MAC SIP_USER` with `PROV_MAC`, `PROV_TENANT`, `PROV_SIP_USER`
    /// and `PROV_EVENT=check-sync` in a clean environment (no password). Exit code 0 counts
    /// as sent; the exit code and output are logged. Default `""` (none).
    pub pbx_command: String,
    /// Which devices go through `pbx_command`: `unreachable` (no proven address, outside
    /// `networks`, a transport zerotouch does not send on) or `all`. Default `unreachable`.
    pub pbx_for: PbxFor,
    /// Seconds one run of `pbx_command` may take before its process group is killed.
    /// Default `10`.
    pub pbx_timeout_secs: u64,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            enabled: false,
            networks: Vec::new(),
            rate_per_sec: 20,
            t1_ms: 500,
            reboot_share_percent: 10,
            wave_gap_secs: 180,
            confirm_wait_secs: 30,
            online_check_interval_secs: 3600,
            online_check_per_minute: 60,
            online_check_rate_per_sec: 5,
            pbx_command: String::new(),
            pbx_for: PbxFor::Unreachable,
            pbx_timeout_secs: 10,
        }
    }
}

impl SipConfig {
    pub(super) fn validate(&self, p: &mut Vec<FieldError>) {
        for (i, net) in self.networks.iter().enumerate() {
            if let Err(why) = net.parse::<IpNet>() {
                p.push(FieldError::new(format!("sip.networks[{i}]"), why));
            }
        }
        positive(p, "sip.rate_per_sec", u64::from(self.rate_per_sec));
        if self.rate_per_sec > 10_000 {
            p.push(FieldError::new("sip.rate_per_sec", "must be at most 10000"));
        }
        if !(1..=10_000).contains(&self.t1_ms) {
            p.push(FieldError::new("sip.t1_ms", "must be 1 to 10000"));
        }
        if !(1..=100).contains(&self.reboot_share_percent) {
            p.push(FieldError::new(
                "sip.reboot_share_percent",
                "must be 1 to 100",
            ));
        }
        if self.confirm_wait_secs > 3600 {
            p.push(FieldError::new(
                "sip.confirm_wait_secs",
                "must be at most 3600",
            ));
        }
        if !(60..=604_800).contains(&self.online_check_interval_secs) {
            p.push(FieldError::new(
                "sip.online_check_interval_secs",
                "must be 60 to 604800",
            ));
        }
        if !(1..=100_000).contains(&self.online_check_per_minute) {
            p.push(FieldError::new(
                "sip.online_check_per_minute",
                "must be 1 to 100000",
            ));
        }
        if !(1..=10_000).contains(&self.online_check_rate_per_sec) {
            p.push(FieldError::new(
                "sip.online_check_rate_per_sec",
                "must be 1 to 10000",
            ));
        }
        if !self.pbx_command.is_empty() && !self.pbx_command.starts_with('/') {
            p.push(FieldError::new(
                "sip.pbx_command",
                "must be an absolute path (or empty: no PBX command)",
            ));
        }
        if !(1..=300).contains(&self.pbx_timeout_secs) {
            p.push(FieldError::new("sip.pbx_timeout_secs", "must be 1 to 300"));
        }
        if self.wave_gap_secs > 86_400 {
            p.push(FieldError::new(
                "sip.wave_gap_secs",
                "must be at most 86400",
            ));
        }
    }

    /// Whether apply-now may go through the PBX command.
    pub fn pbx_enabled(&self) -> bool {
        !self.pbx_command.is_empty()
    }

    /// `networks` parsed (entries were checked by `validate`).
    pub fn device_networks(&self) -> Vec<IpNet> {
        self.networks
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect()
    }

    /// The sender's timers: T1, and T2 = 8×T1 (RFC 3261's 500 ms and 4 s).
    pub fn timers(&self) -> crate::sip::Timers {
        let t1 = Duration::from_millis(self.t1_ms.max(1));
        crate::sip::Timers { t1, t2: t1 * 8 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_are_named_by_key() {
        let c = SipConfig {
            networks: vec!["10.0.0.0/8".into(), "phones".into()],
            rate_per_sec: 0,
            t1_ms: 0,
            reboot_share_percent: 0,
            pbx_command: "pbx-resync".into(),
            pbx_timeout_secs: 0,
            ..SipConfig::default()
        };
        let mut p = Vec::new();
        c.validate(&mut p);
        let keys: Vec<&str> = p.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            keys,
            [
                "sip.networks[1]",
                "sip.rate_per_sec",
                "sip.t1_ms",
                "sip.reboot_share_percent",
                "sip.pbx_command",
                "sip.pbx_timeout_secs"
            ]
        );
    }
}
