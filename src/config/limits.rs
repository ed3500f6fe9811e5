//! The `[limits]` section: sizes and timeouts of the connection loop, device uploads and
//! admin uploads, the connection caps, admission caps and the NAT allowlist — what keeps a
//! slow, idle or abusive client from taking the server's threads, memory or disk.

use serde::Deserialize;

use super::{at_least, positive};
use crate::error::FieldError;

/// `[limits]`: sizes and timeouts of the connection loop and uploads.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Most connections open at once, over all listeners; further connections are closed at
    /// once. Default `10000`.
    pub max_connections: usize,
    /// Largest request head (request line and headers) in bytes; larger gets 431.
    /// Default `16384`.
    pub head_bytes: usize,
    /// Largest form or API body in bytes; larger gets 413. Default `1048576` (1 MiB).
    pub body_bytes: usize,
    /// Largest single file a device may upload (logs, overrides, contacts, call lists,
    /// core dumps) in bytes; larger gets 413. Default `10485760` (10 MiB).
    pub upload_bytes: u64,
    /// Most bytes of uploads stored per device, over all its files; an upload that would
    /// exceed it gets 507. Default `52428800` (50 MiB).
    pub device_quota_bytes: u64,
    /// Most bytes of uploads stored for all MACs no device is associated with (seen, not
    /// associated with a profile), together; an upload for such a MAC that would exceed it
    /// gets 507 and a log line. Associated devices never count against it. `0` refuses
    /// every upload of an unassociated MAC. Default `67108864` (64 MiB).
    pub unassociated_upload_bytes: u64,
    /// Seconds allowed to receive a complete request head once its first byte arrived.
    /// Default `10`.
    pub head_timeout_secs: u64,
    /// Seconds of silence allowed while receiving a body, and while sending a response.
    /// Default `30`.
    pub body_timeout_secs: u64,
    /// Seconds allowed to receive a whole request body, however slowly it trickles in (a
    /// body sending a byte just inside `body_timeout_secs` would otherwise hold its
    /// connection for ever). At least `body_timeout_secs`. Default `600`.
    pub body_deadline_secs: u64,
    /// Seconds a device keep-alive connection may stay idle between requests. Phones do not
    /// need long keep-alive, and idle sockets should not pin threads. Default `5`.
    pub device_idle_secs: u64,
    /// Seconds an admin keep-alive connection may stay idle. Default `60`.
    pub admin_idle_secs: u64,
    /// Most bytes of request bodies the admin listener holds in memory at once; a request
    /// that would exceed it gets 503 with Retry-After. One client address holds at most a
    /// quarter of it (always at least one body). Bodies up to 16 KiB cost nothing from it,
    /// and only a signed-in user or an API token may send a larger one (anyone else: 401
    /// before anything is reserved). Device listeners keep no body over 16 KiB in memory.
    /// Default `268435456` (256 MiB).
    pub memory_body_budget: usize,
    /// Largest bulk association CSV upload (console and API) in bytes; larger gets 413.
    /// Default `8388608` (8 MiB).
    pub csv_upload_bytes: usize,
    /// Largest UC Software release upload (console and API) in bytes, and the most a
    /// release may take once unpacked; larger gets 413 (or is refused at import). Uploads
    /// are streamed to disk, never held in memory. Default `2147483648` (2 GiB).
    pub firmware_upload_bytes: u64,
    /// Largest shared-asset upload (directory, licence, wallpaper, ring tone, language
    /// file) in bytes; larger gets 413. Default `16777216` (16 MiB).
    pub asset_upload_bytes: usize,
    /// Most firmware downloads served at once; more get 503 with Retry-After, so that in a
    /// boot storm images wait and configuration requests do not. Default `256`.
    pub firmware_streams: usize,
    /// Most device uploads (logs, overrides, contacts, call lists) received at once; more
    /// get 503 with Retry-After before their body is read. Default `1024`.
    pub upload_streams: usize,
    /// Seconds a client refused by `firmware_streams` or `upload_streams` is asked to wait:
    /// each answer says a value between this and twice this, so refused phones come back
    /// spread out. Default `30`.
    pub busy_retry_after_secs: u64,
    /// Most connections open at once from one client address, over all listeners; further
    /// ones from it are closed at once (slow or idle clients cannot take every slot).
    /// Default `256`.
    pub max_connections_per_ip: usize,
    /// Addresses or networks (`10.1.0.0/16`, `192.0.2.7`, `2001:db8::/32`) exempt from
    /// `max_connections_per_ip` and `auth.macs_per_ip`: sites whose phones reach the server
    /// through one NAT address. Default empty.
    pub nat_allowlist: Vec<String>,
}

impl LimitsConfig {
    /// `nat_allowlist` parsed (entries were checked by `validate`).
    pub fn allowlist(&self) -> Vec<crate::domain::ipnet::IpNet> {
        self.nat_allowlist
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect()
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_connections: 10_000,
            head_bytes: 16 * 1024,
            body_bytes: 1024 * 1024,
            upload_bytes: 10 * 1024 * 1024,
            device_quota_bytes: 50 * 1024 * 1024,
            unassociated_upload_bytes: 64 * 1024 * 1024,
            head_timeout_secs: 10,
            body_timeout_secs: 30,
            body_deadline_secs: 600,
            device_idle_secs: 5,
            admin_idle_secs: 60,
            memory_body_budget: 256 * 1024 * 1024,
            csv_upload_bytes: 8 * 1024 * 1024,
            firmware_upload_bytes: 2 * 1024 * 1024 * 1024,
            asset_upload_bytes: 16 * 1024 * 1024,
            firmware_streams: 256,
            upload_streams: 1024,
            busy_retry_after_secs: 30,
            max_connections_per_ip: 256,
            nat_allowlist: Vec::new(),
        }
    }
}

impl LimitsConfig {
    /// The connection caps and the NAT allowlist.
    pub(super) fn validate_connections(&self, p: &mut Vec<FieldError>) {
        positive(p, "limits.max_connections", self.max_connections as u64);
        positive(
            p,
            "limits.max_connections_per_ip",
            self.max_connections_per_ip as u64,
        );
        for (i, net) in self.nat_allowlist.iter().enumerate() {
            if let Err(why) = net.parse::<crate::domain::ipnet::IpNet>() {
                p.push(FieldError::new(format!("limits.nat_allowlist[{i}]"), why));
            }
        }
    }

    /// Sizes and timeouts of the connection loop and device uploads, and the admission caps.
    pub(super) fn validate_transfers(&self, p: &mut Vec<FieldError>) {
        at_least(p, "limits.head_bytes", self.head_bytes as u64, 1024);
        at_least(p, "limits.body_bytes", self.body_bytes as u64, 1024);
        at_least(p, "limits.upload_bytes", self.upload_bytes, 1024);
        if self.device_quota_bytes < self.upload_bytes {
            p.push(FieldError::new(
                "limits.device_quota_bytes",
                "must be at least limits.upload_bytes",
            ));
        }
        positive(p, "limits.head_timeout_secs", self.head_timeout_secs);
        positive(p, "limits.body_timeout_secs", self.body_timeout_secs);
        if self.body_deadline_secs < self.body_timeout_secs {
            p.push(FieldError::new(
                "limits.body_deadline_secs",
                "must be at least limits.body_timeout_secs",
            ));
        }
        positive(p, "limits.device_idle_secs", self.device_idle_secs);
        positive(p, "limits.admin_idle_secs", self.admin_idle_secs);
        positive(p, "limits.firmware_streams", self.firmware_streams as u64);
        positive(p, "limits.upload_streams", self.upload_streams as u64);
        positive(
            p,
            "limits.busy_retry_after_secs",
            self.busy_retry_after_secs,
        );
        if self.memory_body_budget < self.body_bytes {
            p.push(FieldError::new(
                "limits.memory_body_budget",
                "must be at least limits.body_bytes",
            ));
        }
    }

    /// Sizes of what admins upload: bulk CSV files, firmware releases, shared assets.
    pub(super) fn validate_admin_uploads(&self, p: &mut Vec<FieldError>) {
        at_least(
            p,
            "limits.csv_upload_bytes",
            self.csv_upload_bytes as u64,
            1024,
        );
        at_least(
            p,
            "limits.firmware_upload_bytes",
            self.firmware_upload_bytes,
            1024,
        );
        at_least(
            p,
            "limits.asset_upload_bytes",
            self.asset_upload_bytes as u64,
            1024,
        );
    }
}
