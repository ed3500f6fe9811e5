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
    /// Line 1's display name, else its label (empty when neither is set).
    pub name: String,
    /// Line 1's SIP user ID.
    pub sip_user: String,
    /// The name of its reference ID's person, if any.
    pub person: String,
}

impl Row {
    /// The text a search looks in, lowercased.
    pub fn haystack(&self) -> String {
        let mut h = String::with_capacity(128);
        for part in [
            self.mac.as_str(),
            self.name.as_str(),
            self.sip_user.as_str(),
            self.person.as_str(),
            self.profile.as_deref().unwrap_or(""),
            self.model.as_str(),
            self.firmware.as_str(),
            self.site.as_deref().unwrap_or(""),
        ] {
            h.push_str(&part.to_lowercase());
            h.push('\u{1f}');
        }
        for g in &self.groups {
            h.push_str(&g.to_lowercase());
            h.push('\u{1f}');
        }
        h
    }
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

/// What to show, and in which order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub state: Option<State>,
    pub flag: Option<Flag>,
    pub site: Option<String>,
    pub group: Option<String>,
    /// Words every one of which a device must contain (case ignored) in its MAC (typed
    /// with or without separators), serial, profile, model, firmware, site, groups, line
    /// name or label, SIP user or the name of its reference ID's person.
    pub search: Option<String>,
    pub sort: Sort,
    pub descending: bool,
}

impl Filter {
    /// Whether a device's searchable text (`Row::haystack`) matches `search`.
    pub fn matches_search(&self, haystack: &str) -> bool {
        let Some(q) = self.search.as_deref() else {
            return true;
        };
        q.split_whitespace().all(|word| {
            let w = word.to_lowercase();
            // A MAC typed with separators matches the stored bare form.
            let bare = super::mac::Mac::parse_lenient(&w).map(|m| m.to_string());
            haystack.contains(&w) || bare.is_some_and(|b| haystack.contains(&b))
        })
    }
}

/// The order of the device list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sort {
    #[default]
    Mac,
    Name,
    State,
    LastSeen,
    LastSync,
    Model,
    Firmware,
    Profile,
    Site,
}

impl Sort {
    pub const ALL: [Sort; 9] = [
        Sort::Mac,
        Sort::Name,
        Sort::State,
        Sort::LastSeen,
        Sort::LastSync,
        Sort::Model,
        Sort::Firmware,
        Sort::Profile,
        Sort::Site,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Mac => "mac",
            Sort::Name => "name",
            Sort::State => "state",
            Sort::LastSeen => "last-seen",
            Sort::LastSync => "last-sync",
            Sort::Model => "model",
            Sort::Firmware => "firmware",
            Sort::Profile => "profile",
            Sort::Site => "site",
        }
    }

    pub fn parse(s: &str) -> Result<Sort> {
        Sort::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<&str> = Sort::ALL.iter().map(|x| x.as_str()).collect();
                Error::invalid("sort", format!("`{s}` is not one of {}", all.join(", ")))
            })
    }

    /// The key a row sorts by (then by MAC). Versions compare component by component;
    /// an empty value or a time never reached is blank.
    pub fn key(self, r: &Row) -> SortKey {
        let text = |s: &str| {
            if s.is_empty() {
                SortKey::Blank
            } else {
                SortKey::Text(s.to_lowercase())
            }
        };
        let time = |t: Option<i64>| t.map_or(SortKey::Blank, SortKey::Number);
        match self {
            Sort::Mac => SortKey::Number(0),
            Sort::Name => text(&r.name),
            Sort::State => SortKey::Number(r.state as i64),
            Sort::LastSeen => time(r.last_seen),
            Sort::LastSync => time(r.last_sync),
            Sort::Model => text(&r.model),
            Sort::Firmware if r.firmware.is_empty() => SortKey::Blank,
            Sort::Firmware => SortKey::Version(r.firmware.clone()),
            Sort::Profile => text(r.profile.as_deref().unwrap_or("")),
            Sort::Site => text(r.site.as_deref().unwrap_or("")),
        }
    }

    /// The list's order: by key in the direction asked, blanks last either way, then by
    /// MAC in the same direction.
    pub fn compare(descending: bool, a: (&SortKey, &str), b: (&SortKey, &str)) -> Ordering {
        match (a.0 == &SortKey::Blank, b.0 == &SortKey::Blank) {
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ => {
                let o = a.0.cmp(b.0).then_with(|| a.1.cmp(b.1));
                if descending { o.reverse() } else { o }
            }
        }
    }
}

/// A row's sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKey {
    Text(String),
    Number(i64),
    Version(String),
    /// No value: listed after every value, whichever the direction.
    Blank,
}

impl Ord for SortKey {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (SortKey::Text(a), SortKey::Text(b)) => a.cmp(b),
            (SortKey::Number(a), SortKey::Number(b)) => a.cmp(b),
            (SortKey::Version(a), SortKey::Version(b)) => compare_versions(a, b),
            // One sort has one kind of key; any order between kinds is consistent.
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }
}

impl PartialOrd for SortKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl SortKey {
    fn rank(&self) -> u8 {
        match self {
            SortKey::Text(_) => 0,
            SortKey::Number(_) => 1,
            SortKey::Version(_) => 2,
            SortKey::Blank => 3,
        }
    }
}

/// Keeps the first `keep` rows of a stream in `sort` order (ties by MAC), never more than
/// twice that in memory: the page of a sorted list is found in one pass over every device.
#[derive(Debug)]
pub struct TopRows {
    sort: Sort,
    descending: bool,
    keep: usize,
    rows: Vec<(SortKey, Row)>,
}

impl TopRows {
    pub fn new(sort: Sort, descending: bool, keep: usize) -> TopRows {
        TopRows {
            sort,
            descending,
            keep,
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Row) {
        if self.keep == 0 {
            return;
        }
        self.rows.push((self.sort.key(&row), row));
        if self.rows.len() >= self.keep.saturating_mul(2).max(64) {
            self.settle();
        }
    }

    fn settle(&mut self) {
        let desc = self.descending;
        self.rows
            .sort_by(|(ka, a), (kb, b)| Sort::compare(desc, (ka, &a.mac), (kb, &b.mac)));
        self.rows.truncate(self.keep);
    }

    /// The rows in order.
    pub fn into_rows(mut self) -> Vec<Row> {
        self.settle();
        self.rows.into_iter().map(|(_, r)| r).collect()
    }
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
    /// How the profiles' firmware versions spread, over every device.
    pub adoption: FirmwareAdoption,
}

/// Days the firmware adoption chart covers.
pub const ADOPTION_DAYS: usize = 14;

/// Firmware adoption: of the devices that can take their profile's version (the release
/// holds an image for their model: `FirmwareState` current, behind or downgrade pending),
/// how many ran it at the end of each of the last 14 days (UTC), counting each device on
/// it now from when it first reported that version. A device that ran it and left it is not
/// counted on the days before it left: the chart follows the devices as they are now.
#[derive(Debug, Clone, Serialize)]
pub struct FirmwareAdoption {
    /// Start of the first day (Unix seconds, UTC midnight).
    pub days_from: i64,
    /// Devices on their profile's version at the end of each day, oldest first.
    pub on_version: Vec<u32>,
    /// Devices that can take their profile's version.
    pub eligible: usize,
    /// Devices on it now.
    pub current: usize,
}

impl FirmwareAdoption {
    pub fn new(now: i64) -> FirmwareAdoption {
        FirmwareAdoption {
            days_from: (now.div_euclid(autosync::DAY) - (ADOPTION_DAYS as i64 - 1)) * autosync::DAY,
            on_version: vec![0; ADOPTION_DAYS],
            eligible: 0,
            current: 0,
        }
    }

    /// Counts a device that can take its profile's version: `on_since` is when it first
    /// reported that version if it runs it (`None` for a device on another version; a
    /// device on it since an unknown time counts on every day).
    pub fn add(&mut self, on_version: bool, on_since: Option<i64>) {
        self.eligible += 1;
        if !on_version {
            return;
        }
        self.current += 1;
        let first = on_since.map_or(0, |t| {
            (t - self.days_from).max(0).div_euclid(autosync::DAY) as usize
        });
        for day in self.on_version.iter_mut().skip(first) {
            *day += 1;
        }
    }

    /// The adoption as an SVG bar chart, each day's bar a share of the eligible devices.
    pub fn svg(&self) -> String {
        super::chart::share_svg(
            "Devices on their profile's firmware, per day, last 14 days (UTC)",
            &self.on_version,
            &day_labels(self.days_from, self.on_version.len()),
            self.eligible as u32,
        )
    }
}

/// `MM-DD` labels of `n` UTC days from `from`.
fn day_labels(from: i64, n: usize) -> Vec<String> {
    (0..n as i64)
        .map(|i| {
            time::OffsetDateTime::from_unix_timestamp(from + i * autosync::DAY)
                .map(|t| format!("{:02}-{:02}", u8::from(t.month()), t.day()))
                .unwrap_or_default()
        })
        .collect()
}

/// Rows as a CSV file for spreadsheets: one line per device with its state, flags, names,
/// model, firmware, site, groups and times (UTC, RFC 3339; empty when never).
pub fn to_csv(rows: &[Row]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let io = |e: csv::Error| Error::invalid("inventory", e.to_string());
    w.write_record([
        "mac",
        "state",
        "flags",
        "name",
        "sip_user",
        "person",
        "profile",
        "model",
        "firmware",
        "site",
        "groups",
        "last_check_in",
        "last_sync",
        "online",
    ])
    .map_err(io)?;
    let t = |v: Option<i64>| v.map(super::audit::iso_time).unwrap_or_default();
    for r in rows {
        let flags: Vec<&str> = r.flags.iter().map(|f| f.as_str()).collect();
        w.write_record([
            r.mac.as_str(),
            r.state.as_str(),
            &flags.join(" "),
            &r.name,
            &r.sip_user,
            &r.person,
            r.profile.as_deref().unwrap_or(""),
            &r.model,
            &r.firmware,
            r.site.as_deref().unwrap_or(""),
            &r.groups.join(" "),
            &t(r.last_seen),
            &t(r.last_sync),
            if r.online.online { "online" } else { "offline" },
        ])
        .map_err(io)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::invalid("inventory", e.to_string()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
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
    /// Devices refused for wrong credentials, per hour (the same buckets).
    pub hourly_refused: Vec<u32>,
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

    /// Devices refused for wrong credentials per hour, as an SVG bar chart.
    pub fn refused_svg(&self) -> String {
        let labels: Vec<String> = (0..self.hourly_refused.len() as i64)
            .map(|i| format!("{:02}:00", ((self.hours_from + i * 3600) / 3600) % 24))
            .collect();
        super::chart::bars_svg(
            "Refused sign-ins per hour, last 24 h (UTC)",
            &self.hourly_refused,
            &labels,
        )
    }

    /// The last 7 days as an SVG bar chart (UTC dates).
    pub fn daily_svg(&self) -> String {
        let labels = day_labels(self.days_from, self.daily.len());
        super::chart::bars_svg("Check-ins per day, last 7 days (UTC)", &self.daily, &labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adoption_counts_each_device_from_the_day_it_reported_its_version() {
        let day = autosync::DAY;
        let now = 20_000 * day + 5 * 3600;
        let mut a = FirmwareAdoption::new(now);
        assert_eq!(a.days_from, (20_000 - 13) * day, "the first of 14 UTC days");
        a.add(true, Some(now - 2 * day)); // two days ago
        a.add(true, None); // since before anything was recorded
        a.add(true, Some(a.days_from - 30 * day)); // before the chart
        a.add(false, None); // behind
        assert_eq!((a.eligible, a.current), (4, 3));
        assert_eq!(a.on_version[..11], [2; 11]);
        assert_eq!(a.on_version[11..], [3, 3, 3]);
        let svg = a.svg();
        roxmltree::Document::parse(&svg).expect("well-formed");
        assert!(svg.contains("(of 4)"), "{svg}");
    }

    fn row(i: u32, seen: Option<i64>, name: &str, fw: &str) -> Row {
        Row {
            mac: format!("0004f2{i:06x}"),
            state: State::ALL[(i % 4) as usize],
            flags: Vec::new(),
            profile: None,
            model: String::new(),
            firmware: fw.into(),
            profile_firmware: None,
            site: None,
            groups: Vec::new(),
            last_sync: None,
            last_seen: seen,
            protocol: String::new(),
            credentials: None,
            credentials_since: None,
            awaiting: Vec::new(),
            online: Online {
                online: false,
                evidence: String::new(),
            },
            name: name.into(),
            sip_user: String::new(),
            person: String::new(),
        }
    }

    proptest::proptest! {
        /// The rows `TopRows` keeps are the first of a full sort, whatever the order they
        /// come in, the key, the direction and how many are kept.
        #[test]
        fn top_rows_are_the_head_of_a_full_sort(
            items in proptest::collection::vec((0u32..500, proptest::option::of(0i64..50), "[a-c]{0,2}", "([5-6]\\.[0-9]{1,2})?"), 0..300),
            sort in 0usize..Sort::ALL.len(),
            descending: bool,
            keep in 0usize..120,
        ) {
            let sort = Sort::ALL[sort];
            let mut seen = std::collections::HashSet::new();
            let rows: Vec<Row> = items
                .into_iter()
                .filter(|(i, ..)| seen.insert(*i))
                .map(|(i, t, n, f)| row(i, t, &n, &f))
                .collect();
            let mut top = TopRows::new(sort, descending, keep);
            for r in rows.iter().cloned() {
                top.push(r);
            }
            let mut all = rows;
            // Blanks last either way, the rest by key then MAC in the direction asked.
            all.sort_by(|a, b| {
                let (ka, kb) = (sort.key(a), sort.key(b));
                let blank = |k: &SortKey| *k == SortKey::Blank;
                blank(&ka).cmp(&blank(&kb)).then_with(|| {
                    let o = ka.cmp(&kb).then_with(|| a.mac.cmp(&b.mac));
                    if descending { o.reverse() } else { o }
                })
            });
            all.truncate(keep);
            let got: Vec<String> = top.into_rows().into_iter().map(|r| r.mac).collect();
            let want: Vec<String> = all.into_iter().map(|r| r.mac).collect();
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn a_search_needs_every_word_and_finds_a_mac_typed_with_separators() {
        let mut r = row(0xaabbcc, None, "Karl Kraus", "5.9.7");
        r.site = Some("Berlin".into());
        let hay = r.haystack();
        let f = |q: &str| Filter {
            search: Some(q.into()),
            ..Default::default()
        };
        assert!(f("kraus berlin").matches_search(&hay));
        assert!(!f("kraus paris").matches_search(&hay));
        assert!(f("00:04:F2:AA:BB:CC").matches_search(&hay));
        assert!(f("AABB").matches_search(&hay));
        assert!(Filter::default().matches_search(&hay));
    }

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
            hourly_refused: (0..24).collect(),
            days_from: 0,
            daily: vec![0, 0, 0, 0, 0, 0, 3],
        };
        assert!(c.refused_svg().contains("23:00: 1"), "{}", c.refused_svg());
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
