//! The device inventory (DESIGN §7, seed 004's "State" and "Last Provisioning Sync"):
//! each device's state and flags, with filters and counts, and check-ins over the last 24
//! hours and 7 days as data a chart can draw (`chart::bars_svg`).
//!
//! States: `staged` (associated, never an authenticated success), `provisioned-active` (an
//! authenticated 2xx within 24 h), `provisioned` (not within 24 h), `unassociated` (seen,
//! not associated). Flags: `auth-failing` (wrong credentials since its last success),
//! `credentials-pending` and `locked-out` (Auto-Sync, `domain::autosync`),
//! `firmware-behind` (reports an older version than its profile names for its family).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use rusqlite::Connection;
use serde::Serialize;

use super::account::Account;
use super::accounts::facts_of;
use super::autosync::{self, SyncState};
use crate::db::{self, credentials, inventory};
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
}

impl Flag {
    pub const ALL: [Flag; 4] = [
        Flag::AuthFailing,
        Flag::CredentialsPending,
        Flag::LockedOut,
        Flag::FirmwareBehind,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Flag::AuthFailing => "auth-failing",
            Flag::CredentialsPending => "credentials-pending",
            Flag::LockedOut => "locked-out",
            Flag::FirmwareBehind => "firmware-behind",
        }
    }

    pub fn parse(s: &str) -> Result<Flag> {
        Flag::ALL.into_iter().find(|x| x.as_str() == s).ok_or_else(|| {
            Error::invalid(
                "flag",
                format!(
                    "`{s}` is not auth-failing, credentials-pending, locked-out or firmware-behind"
                ),
            )
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
    /// Credential state (associated devices): generation held, synced/pending/locked out.
    pub credentials: Option<SyncState>,
    /// Since when it holds that generation (the confirmation of the last change).
    pub credentials_since: Option<i64>,
    /// Platform parameters delivered but not yet confirmed (a change under way).
    pub awaiting: Vec<String>,
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

    fn range(self) -> std::ops::Range<usize> {
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

/// The inventory of `account` at `now`: one pass over its devices (never all of them in
/// memory), keeping only the rows of `page`.
pub fn inventory(
    conn: &Connection,
    account: &Account,
    filter: &Filter,
    page: Page,
) -> Result<Inventory> {
    let now = db::now_secs();
    let settings = credentials::load_settings(conn, account.id)?;
    let history = credentials::load_history(conn, account.id)?;
    let mut awaiting: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT s.device_id, s.param FROM device_prov_state s JOIN devices d ON d.id = s.device_id
             WHERE d.account_id = ?1 AND s.delivered IS NOT NULL
               AND s.delivered IS NOT s.confirmed ORDER BY s.param",
        )?;
        for row in stmt.query_map([account.id.0], |r| Ok((r.get(0)?, r.get(1)?)))? {
            let (id, param): (i64, String) = row?;
            awaiting.entry(id).or_default().push(param);
        }
    }
    let mut by_state: BTreeMap<&'static str, usize> =
        State::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    let mut by_flag: BTreeMap<&'static str, usize> =
        Flag::ALL.iter().map(|f| (f.as_str(), 0)).collect();
    let mut rows = Vec::new();
    let wanted = page.range();
    let (mut total, mut matched) = (0, 0);
    inventory::for_each_device_row(conn, account.id.0, |d| {
        total += 1;
        let state = match (d.profile.is_some(), d.last_auth_ok_at) {
            (false, _) => State::Unassociated,
            (true, None) => State::Staged,
            (true, Some(t)) if now - t < autosync::DAY => State::ProvisionedActive,
            (true, Some(_)) => State::Provisioned,
        };
        let credentials = d
            .profile
            .is_some()
            .then(|| autosync::state(&settings, &history, &facts_of(&d, &settings), now));
        let mut flags = Vec::new();
        let bad_since_ok = d
            .last_bad_auth_ms
            .is_some_and(|bad| d.last_auth_ok_at.is_none_or(|ok| bad / 1000 >= ok));
        if bad_since_ok {
            flags.push(Flag::AuthFailing);
        }
        match credentials {
            Some(SyncState::Pending { .. }) => flags.push(Flag::CredentialsPending),
            Some(SyncState::LockedOut { .. }) => flags.push(Flag::LockedOut),
            _ => {}
        }
        if let Some(want) = &d.profile_firmware
            && !d.firmware.is_empty()
            && compare_versions(&d.firmware, want) == Ordering::Less
        {
            flags.push(Flag::FirmwareBehind);
        }
        *by_state.entry(state.as_str()).or_default() += 1;
        for f in &flags {
            *by_flag.entry(f.as_str()).or_default() += 1;
        }
        let keep = filter.state.is_none_or(|s| s == state)
            && filter.flag.is_none_or(|f| flags.contains(&f))
            && filter
                .site
                .as_ref()
                .is_none_or(|s| d.site.as_ref() == Some(s))
            && filter.group.as_ref().is_none_or(|g| d.groups.contains(g));
        if !keep {
            return Ok(());
        }
        matched += 1;
        if !wanted.contains(&(matched - 1)) {
            return Ok(());
        }
        rows.push(Row {
            awaiting: awaiting.remove(&d.id).unwrap_or_default(),
            mac: d.mac,
            state,
            flags,
            profile: d.profile,
            model: d.ua_model,
            firmware: d.firmware,
            profile_firmware: d.profile_firmware,
            site: d.site,
            groups: d.groups,
            last_sync: d.last_sync_at,
            last_seen: d.last_seen,
            credentials,
            credentials_since: d.sync.generation_at,
        });
        Ok(())
    })?;
    Ok(Inventory {
        rows,
        total,
        matched,
        by_state,
        by_flag,
    })
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

/// Check-ins of an account's devices.
pub fn checkins(conn: &Connection, account: &Account) -> Result<CheckIns> {
    let now = db::now_secs();
    let hours_from = (now / 3600 - 23) * 3600;
    let days_from = (now / autosync::DAY - 6) * autosync::DAY;
    Ok(CheckIns {
        hours_from,
        hourly: inventory::checkins(conn, account.id.0, hours_from * 1000, 3_600_000, 24)?,
        days_from,
        daily: inventory::checkins(
            conn,
            account.id.0,
            days_from * 1000,
            autosync::DAY * 1000,
            7,
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn pages_hold_only_their_rows_while_counts_cover_every_device() {
        let conn = crate::db::open_in_memory().expect("db");
        let account = crate::db::accounts::ensure_default(&conn)
            .expect("account")
            .0;
        let a = account.id.0;
        conn.execute_batch(&format!(
            "INSERT INTO profiles (id, account_id, name, created_at, updated_at)
                 VALUES (1, {a}, 'p', 1, 1);
             INSERT INTO profile_firmware (profile_id, family, version) VALUES (1, 'VVX', '5.9.8');
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 250)
             INSERT INTO devices (id, account_id, mac, serial, profile_id, created_at, updated_at)
                 SELECT i, {a}, printf('0004f2%06x', i), printf('0004F2%06X', i),
                        CASE WHEN i <= 200 THEN 1 END, 1, 1 FROM n;
             INSERT INTO device_activity (device_id, first_seen, last_seen, ua_model, firmware)
                 SELECT id, 1, 1, 'VVX_410', '5.9.5' FROM devices WHERE id <= 30;
             INSERT INTO device_groups (id, account_id, name, priority, created_at)
                 VALUES (1, {a}, 'lobby', 1, 1), (2, {a}, 'floor', 2, 1);
             INSERT INTO device_group_members (group_id, device_id) VALUES (1, 5), (2, 5), (1, 6);"
        ))
        .expect("rows");
        let all = Filter::default();
        let p = |number, size| Page { number, size };
        let first = inventory(&conn, &account, &all, p(1, 100)).expect("page 1");
        assert_eq!(
            (first.total, first.matched, first.rows.len()),
            (250, 250, 100)
        );
        assert_eq!(first.rows[0].mac, "0004f2000001");
        let third = inventory(&conn, &account, &all, p(3, 100)).expect("page 3");
        assert_eq!(third.rows.len(), 50);
        assert_eq!(third.rows[0].mac, "0004f20000c9");
        assert!(
            inventory(&conn, &account, &all, p(4, 100))
                .expect("past the end")
                .rows
                .is_empty()
        );
        // Counts are over every device whatever the page.
        assert_eq!(third.by_state["unassociated"], 50);
        assert_eq!(third.by_state["staged"], 200);
        assert_eq!(third.by_flag["firmware-behind"], 30);
        // A filtered page: matched counts the filter, rows are its page.
        let behind = Filter {
            flag: Some(Flag::FirmwareBehind),
            ..Default::default()
        };
        let b = inventory(&conn, &account, &behind, p(2, 20)).expect("filtered");
        assert_eq!((b.matched, b.rows.len()), (30, 10));
        assert_eq!(b.rows[0].profile_firmware.as_deref(), Some("5.9.8"));
        // Groups in precedence order, read once for every device.
        let g = inventory(
            &conn,
            &account,
            &Filter {
                group: Some("lobby".into()),
                ..Default::default()
            },
            Page::ALL,
        )
        .expect("group");
        assert_eq!(
            g.rows.iter().map(|r| r.mac.as_str()).collect::<Vec<_>>(),
            ["0004f2000005", "0004f2000006"]
        );
        assert_eq!(g.rows[0].groups, ["floor", "lobby"]);
        let (sites, groups) = crate::db::inventory::member_counts(&conn, a).expect("counts");
        assert!(sites.is_empty());
        assert_eq!((groups["lobby"], groups["floor"]), (2, 1));
    }
}
