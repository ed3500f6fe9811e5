//! The `[auth]` section: how wrong device credentials are throttled (per address and per
//! account), how long Digest nonces live, and how many MACs one address may read without
//! proving it is the device; and which console roles must use a second factor (TOTP).

use serde::Deserialize;

use super::positive;
use crate::error::FieldError;

/// `[auth]`: device authentication throttling.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Wrong device credentials tolerated from one IP address within `failure_window_secs`
    /// before further wrong attempts get 429. Requests without credentials (the phone's
    /// first, unauthenticated try) never count, and valid credentials are never throttled.
    /// Default `20`.
    pub failure_limit: u32,
    /// Window, in seconds, over which wrong attempts are counted. Default `60`.
    pub failure_window_secs: u64,
    /// Seconds an IP stays throttled once over the limit (the Retry-After value).
    /// Default `300`.
    pub block_secs: u64,
    /// Seconds a Digest nonce stays valid; older nonces get a fresh challenge with
    /// `stale=true`. Default `300`.
    pub nonce_lifetime_secs: u64,
    /// Wrong device credentials tolerated for one account within `failure_window_secs`,
    /// from all addresses together (a guess spread over many addresses), before further
    /// wrong attempts for it get 429. Valid credentials are never throttled. Default `200`.
    pub account_failure_limit: u32,
    /// Distinct MACs whose files one client address may read within `mac_window_secs`
    /// without proving it is the device (per-device credential or device certificate);
    /// past it, requests for further MACs are still served (phones behind one address must
    /// never be refused) but recorded, and the address is reported as a diagnostics
    /// finding. Addresses in `limits.nat_allowlist` are exempt. Default `50`.
    pub macs_per_ip: u32,
    /// Window, in seconds, over which `macs_per_ip` counts. Default `600`.
    pub mac_window_secs: u64,
    /// Console roles (`admin`, `provider`, `installer`, `viewer`) that must use a second
    /// factor (TOTP): a user of such a role without one enrols at their next sign-in,
    /// before anything else. Local and directory users alike; API tokens are not affected.
    /// Default `[]`: enrolment is each user's choice.
    pub totp_required_roles: Vec<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            failure_limit: 20,
            failure_window_secs: 60,
            block_secs: 300,
            nonce_lifetime_secs: 300,
            account_failure_limit: 200,
            macs_per_ip: 50,
            mac_window_secs: 600,
            totp_required_roles: Vec::new(),
        }
    }
}

impl AuthConfig {
    /// The limit on MACs read per address, and the per-account limit.
    pub(super) fn validate_mac_limits(&self, p: &mut Vec<FieldError>) {
        positive(p, "auth.macs_per_ip", u64::from(self.macs_per_ip));
        positive(p, "auth.mac_window_secs", self.mac_window_secs);
        positive(
            p,
            "auth.account_failure_limit",
            u64::from(self.account_failure_limit),
        );
    }

    /// The roles that must use a second factor.
    pub(super) fn validate_totp(&self, p: &mut Vec<FieldError>) {
        for (i, r) in self.totp_required_roles.iter().enumerate() {
            if crate::domain::users::Role::parse(r).is_err() {
                p.push(FieldError::new(
                    format!("auth.totp_required_roles[{i}]"),
                    format!("`{r}` is not one of admin, provider, installer, viewer"),
                ));
            }
        }
    }

    /// Whether users of `role` must use a second factor.
    pub fn totp_required(&self, role: crate::domain::users::Role) -> bool {
        self.totp_required_roles.iter().any(|r| r == role.as_str())
    }

    /// The per-address throttle of wrong credentials and the nonce lifetime.
    pub(super) fn validate_throttle(&self, p: &mut Vec<FieldError>) {
        positive(p, "auth.failure_limit", self.failure_limit.into());
        positive(p, "auth.failure_window_secs", self.failure_window_secs);
        positive(p, "auth.block_secs", self.block_secs);
        positive(p, "auth.nonce_lifetime_secs", self.nonce_lifetime_secs);
    }
}
