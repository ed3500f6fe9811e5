//! The device inventory (docs/design.md §7, the Lens Auto-Sync page's "State" and "Last
//! Provisioning Sync"): each device's state and flags, with filters and counts, and
//! check-ins over the last 24 hours and 7 days as data a chart can draw
//! (`chart::bars_svg`).
//!
//! States: `staged` (associated, never an authenticated success), `provisioned-active` (an
//! authenticated 2xx within 24 h), `provisioned` (not within 24 h), `unassociated` (seen,
//! not associated). Flags: `auth-failing` (wrong credentials since its last success),
//! `credentials-pending`, `locked-out` and `never-seen` (Auto-Sync, `domain::autosync`: the
//! same rule as its progress page), `firmware-behind` and `downgrade-pending` (reports an
//! older or newer version than its profile names for its family, and the release holds an
//! image for its model: `domain::firmware::firmware_state`), `change-pending` (platform
//! parameters delivered and not yet confirmed by the phone).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::Serialize;

use super::autosync::{self, SyncState};
use crate::error::{Error, Result};

/// A device's provisioning state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Staged,
    ProvisionedActive,
    Provisioned,
    Unassociated,
}

impl State {
    pub const ALL: [State; 4] = [
        State::Staged,
        State::ProvisionedActive,
        State::Provisioned,
        State::Unassociated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Staged => "staged",
            State::ProvisionedActive => "provisioned-active",
            State::Provisioned => "provisioned",
            State::Unassociated => "unassociated",
        }
    }

    pub fn parse(s: &str) -> Result<State> {
        State::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "state",
                    format!("`{s}` is not staged, provisioned-active, provisioned or unassociated"),
                )
            })
    }
}

/// A flag on a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flag {
    AuthFailing,
    CredentialsPending,
    LockedOut,
    FirmwareBehind,
    DowngradePending,
    NeverSeen,
    ChangePending,
}

impl Flag {
    pub const ALL: [Flag; 7] = [
        Flag::AuthFailing,
        Flag::CredentialsPending,
        Flag::LockedOut,
        Flag::FirmwareBehind,
        Flag::DowngradePending,
        Flag::NeverSeen,
        Flag::ChangePending,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Flag::AuthFailing => "auth-failing",
            Flag::CredentialsPending => "credentials-pending",
            Flag::LockedOut => "locked-out",
            Flag::FirmwareBehind => "firmware-behind",
            Flag::DowngradePending => "downgrade-pending",
            Flag::NeverSeen => "never-seen",
            Flag::ChangePending => "change-pending",
        }
    }

    /// In words, for pages.
    pub fn label(self) -> &'static str {
        match self {
            Flag::AuthFailing => "failing sign-in",
            Flag::CredentialsPending => "credentials pending",
            Flag::LockedOut => "locked out",
            Flag::FirmwareBehind => "firmware behind",
            Flag::DowngradePending => "firmware downgrade pending",
            Flag::NeverSeen => "never seen",
            Flag::ChangePending => "change delivered, not confirmed",
        }
    }

    pub fn parse(s: &str) -> Result<Flag> {
        Flag::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<&str> = Flag::ALL.iter().map(|f| f.as_str()).collect();
                Error::invalid("flag", format!("`{s}` is not one of {}", all.join(", ")))
            })
    }
}

/// One row of the inventory.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub mac: String,
    pub state: State,
    pub flags: Vec<Flag>,
    pub profile: Option<String>,
    pub model: String,
    pub firmware: String,
    /// The version the profile names for the device's family.
    pub profile_firmware: Option<String>,
    pub site: Option<String>,
    pub groups: Vec<String>,
    /// Last 200 for `<mac>-device.cfg`.
    pub last_sync: Option<i64>,
    pub last_seen: Option<i64>,
    /// The protocol of its latest request (`http`, `https`, `tftp`), empty if unknown.
    pub protocol: String,
    /// Credential state (associated devices): generation held, synced/pending/locked out.
    pub credentials: Option<SyncState>,
    /// Since when it holds that generation (the confirmation of the last change).
    pub credentials_since: Option<i64>,
    /// Platform parameters delivered but not yet confirmed (a change under way).
    pub awaiting: Vec<String>,
    /// Online or offline, with the evidence (`online`).
    pub online: Online,
}

/// The polling period assumed for a device (`prov.polling.period`'s default, one day):
/// a device that asked for anything within it is online.
pub const DEFAULT_POLL_PERIOD_SECS: i64 = 86_400;

/// Whether a device is online, and why we think so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Online {
    pub online: bool,
    /// `polled 3 min ago`, `answered OPTIONS 2 min ago`, `no evidence since …`, `never seen`.
    pub evidence: String,
}

/// A duration for people: `42 s`, `3 min`, `5 h`, `2 days`.
pub fn ago(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

/// Online when the device asked for anything within `poll_period` seconds, or answered a
/// SIP request (`OPTIONS`, check-sync) within `answer_window` seconds. The freshest
/// evidence is named.
pub fn online(
    now: i64,
    last_seen: Option<i64>,
    poll_period: i64,
    answered_at: Option<i64>,
    answer_window: i64,
) -> Online {
    let polled = last_seen.filter(|t| now - t <= poll_period);
    let answered = answered_at.filter(|t| now - t <= answer_window);
    match (polled, answered) {
        (Some(p), Some(a)) if a > p => Online {
            online: true,
            evidence: format!("answered OPTIONS {} ago", ago(now - a)),
        },
        (Some(p), _) => Online {
            online: true,
            evidence: format!("polled {} ago", ago(now - p)),
        },
        (None, Some(a)) => Online {
            online: true,
            evidence: format!("answered OPTIONS {} ago", ago(now - a)),
        },
        (None, None) => match last_seen.max(answered_at) {
            Some(t) => Online {
                online: false,
                evidence: format!(
                    "no evidence since {} ({} ago)",
                    super::time::format_time(t),
                    ago(now - t)
                ),
            },
            None => Online {
                online: false,
                evidence: "never seen".into(),
            },
        },
    }
}

/// What to show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub state: Option<State>,
    pub flag: Option<Flag>,
    pub site: Option<String>,
    pub group: Option<String>,
}

/// Which matching rows to return: page `number` (from 1) of `size` rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub number: usize,
    pub size: usize,
}

impl Page {
    /// Every matching row (the command line; callers that filter to a few devices).
    pub const ALL: Page = Page {
        number: 1,
        size: usize::MAX,
    };
    /// Rows per page in the console and the API unless asked otherwise.
    pub const DEFAULT_SIZE: usize = 100;
    /// The most rows one page may ask for.
    pub const MAX_SIZE: usize = 1000;

    pub fn range(self) -> std::ops::Range<usize> {
        let start = self.number.saturating_sub(1).saturating_mul(self.size);
        start..start.saturating_add(self.size)
    }
}

/// The inventory of an account: one page of the rows matching the filter, and counts over
/// every device.
#[derive(Debug, Clone, Serialize)]
pub struct Inventory {
    pub rows: Vec<Row>,
    /// Devices of the account.
    pub total: usize,
    /// Devices matching the filter (of which `rows` is one page).
    pub matched: usize,
    pub by_state: BTreeMap<&'static str, usize>,
    pub by_flag: BTreeMap<&'static str, usize>,
    /// Associated devices online and offline (`online`), over every device.
    pub online: usize,
    pub offline: usize,
}

/// Compares firmware versions by their numbers (`5.9.7.47435` < `5.9.10`; `3.10.0_362035`).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let nums = |s: &str| -> Vec<u64> {
        s.split(|c: char| !c.is_ascii_digit())
            .filter(|p| !p.is_empty())
            .map(|p| p.parse().unwrap_or(u64::MAX))
            .collect()
    };
    nums(a).cmp(&nums(b))
}

/// Devices that checked in (a successful request) per hour over the last 24 hours and per
/// day over the last 7 days (UTC), oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct CheckIns {
    /// Start of the first hourly bucket (Unix seconds).
    pub hours_from: i64,
    pub hourly: Vec<u32>,
    /// Start of the first daily bucket (Unix seconds, UTC midnight).
    pub days_from: i64,
    pub daily: Vec<u32>,
}

impl CheckIns {
    /// The last 24 hours as an SVG bar chart (hours in UTC).
    pub fn hourly_svg(&self) -> String {
        let labels: Vec<String> = (0..self.hourly.len() as i64)
            .map(|i| format!("{:02}:00", ((self.hours_from + i * 3600) / 3600) % 24))
            .collect();
        super::chart::bars_svg("Check-ins per hour, last 24 h (UTC)", &self.hourly, &labels)
    }

    /// The last 7 days as an SVG bar chart (UTC dates).
    pub fn daily_svg(&self) -> String {
        let labels: Vec<String> = (0..self.daily.len() as i64)
            .map(|i| {
                time::OffsetDateTime::from_unix_timestamp(self.days_from + i * autosync::DAY)
                    .map(|t| format!("{:02}-{:02}", u8::from(t.month()), t.day()))
                    .unwrap_or_default()
            })
            .collect();
        super::chart::bars_svg("Check-ins per day, last 7 days (UTC)", &self.daily, &labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn online_names_the_freshest_evidence() {
        let now = 1_000_000;
        let day = DEFAULT_POLL_PERIOD_SECS;
        let o = online(now, Some(now - 180), day, None, 3600);
        assert!(o.online && o.evidence == "polled 3 min ago", "{o:?}");
        let o = online(now, Some(now - 2 * day), day, Some(now - 120), 3600);
        assert!(
            o.online && o.evidence == "answered OPTIONS 2 min ago",
            "{o:?}"
        );
        let o = online(now, Some(now - 600), day, Some(now - 120), 3600);
        assert_eq!(o.evidence, "answered OPTIONS 2 min ago");
        let o = online(now, Some(now - 2 * day), day, Some(now - 7200), 3600);
        assert!(
            !o.online && o.evidence.starts_with("no evidence since "),
            "{o:?}"
        );
        assert!(o.evidence.ends_with("(2 h ago)"), "{o:?}");
        let o = online(now, None, day, None, 3600);
        assert!(!o.online && o.evidence == "never seen");
    }

    #[test]
    fn versions_compare_by_their_numbers() {
        assert_eq!(
            compare_versions("5.9.7.47435", "5.9.8.1234"),
            Ordering::Less
        );
        assert_eq!(compare_versions("5.9.10", "5.9.8.1234"), Ordering::Greater);
        assert_eq!(
            compare_versions("3.10.0_362035", "3.10.0_362035"),
            Ordering::Equal
        );
        assert_eq!(compare_versions("5.9", "5.9.0"), Ordering::Less);
    }

    #[test]
    fn check_ins_draw_with_hour_and_date_labels() {
        let c = CheckIns {
            hours_from: 22 * 3600,
            hourly: vec![1; 24],
            days_from: 0,
            daily: vec![0, 0, 0, 0, 0, 0, 3],
        };
        let h = c.hourly_svg();
        assert!(h.contains("22:00: 1") && h.contains("23:00: 1") && h.contains("00:00: 1"));
        assert!(c.daily_svg().contains("01-07: 3"), "{}", c.daily_svg());
    }

    #[test]
    fn states_and_flags_parse_and_name_the_field() {
        for s in State::ALL {
            assert_eq!(State::parse(s.as_str()).expect("state"), s);
        }
        for f in Flag::ALL {
            assert_eq!(Flag::parse(f.as_str()).expect("flag"), f);
        }
        assert!(
            State::parse("on")
                .expect_err("bad")
                .to_string()
                .starts_with("state:")
        );
        assert!(
            Flag::parse("x")
                .expect_err("bad")
                .to_string()
                .starts_with("flag:")
        );
    }
}
