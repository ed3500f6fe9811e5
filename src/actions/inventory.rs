//! The inventory as admins read it (docs/design.md §7): one pass over an account's devices that
//! classifies each with `domain::inventory`'s rules, and the check-in counts of the charts.

use std::collections::BTreeMap;

use rusqlite::Connection;

use super::accounts::facts_of;
use crate::db::{self, credentials, inventory};
use crate::domain::account::Account;
use crate::domain::autosync::{self, SyncState};
use crate::domain::firmware::{FirmwareState, firmware_state};
use crate::domain::inventory::{
    CheckIns, Filter, FirmwareAdoption, Flag, Inventory, Page, Row, Sort, State, TopRows,
};
use crate::domain::mac::Mac;
use crate::domain::polycom::models::Family;
use crate::error::Result;

/// The inventory of `account` at `now`: one pass over its devices (never all of them in
/// memory), keeping only the rows up to the end of `page`.
pub fn inventory(
    conn: &Connection,
    account: &Account,
    filter: &Filter,
    page: Page,
) -> Result<Inventory> {
    let now = db::now_secs();
    let settings = credentials::load_settings(conn, account.id)?;
    let history = credentials::load_history(conn, account.id)?;
    let cover = db::firmware::image_cover(conn)?;
    let mut by_state: BTreeMap<&'static str, usize> =
        State::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    let mut by_flag: BTreeMap<&'static str, usize> =
        Flag::ALL.iter().map(|f| (f.as_str(), 0)).collect();
    let wanted = page.range();
    // Devices come in the order they were created: the list keeps the best matching rows
    // up to the page's end in its order (`TopRows`, MAC by default), then drops the rows of
    // the pages before.
    let mut top = TopRows::new(
        filter.sort,
        filter.descending,
        wanted.end.min(usize::MAX / 4),
    );
    let (mut total, mut matched) = (0, 0);
    let (mut online_n, mut offline_n) = (0, 0);
    let mut adoption = FirmwareAdoption::new(now);
    inventory::for_each_device_row(conn, account.id.0, |d| {
        total += 1;
        let online = crate::domain::inventory::online(
            now,
            d.last_seen,
            crate::domain::inventory::DEFAULT_POLL_PERIOD_SECS,
            d.sip_answered_at,
            ONLINE_ANSWER_SECS,
        );
        if d.profile.is_some() {
            if online.online {
                online_n += 1;
            } else {
                offline_n += 1;
            }
        }
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
            Some(SyncState::NeverSeen { .. }) => flags.push(Flag::NeverSeen),
            _ => {}
        }
        if d.profile.is_some() {
            let family = d.sync.family.or_else(|| Family::of_model(&d.ua_model));
            let model = crate::domain::useragent::model_token("", &d.ua_model);
            let image = d
                .profile_firmware
                .as_deref()
                .is_some_and(|t| cover.holds(t, family, &model));
            match firmware_state(&d.firmware, d.profile_firmware.as_deref(), image) {
                FirmwareState::Behind => {
                    flags.push(Flag::FirmwareBehind);
                    adoption.add(false, None);
                }
                FirmwareState::DowngradePending => {
                    flags.push(Flag::DowngradePending);
                    adoption.add(false, None);
                }
                FirmwareState::Current => adoption.add(true, d.firmware_since),
                _ => {}
            }
        }
        if !d.awaiting.is_empty() {
            flags.push(Flag::ChangePending);
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
        // Counts only (the dashboard): no row to build unless a search needs its text.
        if wanted.is_empty() && filter.search.is_none() {
            matched += 1;
            return Ok(());
        }
        let row = Row {
            online,
            awaiting: d.awaiting,
            name: if d.line_name.is_empty() {
                d.line_label
            } else {
                d.line_name
            },
            sip_user: d.sip_user,
            person: d.person,
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
            protocol: d.protocol,
            credentials,
            credentials_since: d.sync.generation_at,
        };
        if filter.search.is_some() {
            let mut hay = row.haystack();
            hay.push_str(&d.serial.to_lowercase());
            if !filter.matches_search(&hay) {
                return Ok(());
            }
        }
        matched += 1;
        top.push(row);
        Ok(())
    })?;
    let rows = top.into_rows().into_iter().skip(wanted.start).collect();
    Ok(Inventory {
        rows,
        total,
        matched,
        by_state,
        by_flag,
        online: online_n,
        offline: offline_n,
        adoption,
    })
}

/// The MACs of every device of `account` that `filter` matches, in MAC order: the
/// selection "all matching this filter" of a bulk action.
pub fn matching_macs(conn: &Connection, account: &Account, filter: &Filter) -> Result<Vec<Mac>> {
    let mut f = filter.clone();
    f.sort = Sort::Mac;
    f.descending = false;
    Ok(inventory(conn, account, &f, Page::ALL)?
        .rows
        .iter()
        .filter_map(|r| Mac::from_bare(&r.mac))
        .collect())
}

/// The rows of `macs` (devices of `account`), in MAC order: what a bulk export writes.
pub fn rows_of(conn: &Connection, account: &Account, macs: &[Mac]) -> Result<Vec<Row>> {
    let wanted: std::collections::HashSet<&str> = macs.iter().map(Mac::as_str).collect();
    Ok(inventory(conn, account, &Filter::default(), Page::ALL)?
        .rows
        .into_iter()
        .filter(|r| wanted.contains(r.mac.as_str()))
        .collect())
}

/// How long a SIP answer (`OPTIONS`, check-sync) counts as online evidence: twice the
/// default interval of the background online check (`sip.online_check_interval_secs`), so
/// a device it keeps asking does not flap between rounds.
pub const ONLINE_ANSWER_SECS: i64 = 2 * 3600;

/// Check-ins of an account's devices.
pub fn checkins(conn: &Connection, account: &Account) -> Result<CheckIns> {
    let now = db::now_secs();
    let hours_from = (now / 3600 - 23) * 3600;
    let days_from = (now / autosync::DAY - 6) * autosync::DAY;
    let (hourly, hourly_refused) =
        inventory::checkin_counts(conn, account.id.0, inventory::Span::Hour, hours_from, 24)?;
    let (daily, _) =
        inventory::checkin_counts(conn, account.id.0, inventory::Span::Day, days_from, 7)?;
    Ok(CheckIns {
        hours_from,
        hourly,
        hourly_refused,
        days_from,
        daily,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
             INSERT INTO firmware_releases (version, families, imported_at) VALUES ('5.9.8', 'VVX', 1);
             INSERT INTO firmware_files (version, path, size, sha256, part_number, model)
                 VALUES ('5.9.8', '3111-46162-001.sip.ld', 1, '', '3111-46162-001', 'VVX410');
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
