//! What devices run against what their profiles name: the inventory's `firmware-behind`
//! flag (DESIGN §7) and the rollout view (how many devices of each model run which
//! version).
//!
//! The reported version is the one `Type/Application` User-Agents carry
//! (`device_activity.firmware`); the target is the profile's version for the device's model
//! family. Phones switch to whatever APP_FILE_PATH names, downgrades included, so a device
//! is behind whenever it runs another version than its target.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use rusqlite::Connection;
use serde::Serialize;

use crate::domain::polycom::models::Family;
use crate::domain::useragent::model_token;
use crate::error::Result;

/// Compares two version strings component by component (`.`, `_` and `-` separate them;
/// numeric components compare as numbers, so `5.10` > `5.9` and `0614` = `614`).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let split = |s: &str| -> Vec<String> {
        s.split(['.', '_', '-'])
            .map(|p| p.trim().to_string())
            .collect()
    };
    let (a, b) = (split(a), split(b));
    for (x, y) in a.iter().zip(&b) {
        let o = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

/// Whether a reported version is the target: equal component by component, or the target
/// is a shorter prefix of it (`5.9.8` is met by `5.9.8.5760`).
pub fn same_version(reported: &str, target: &str) -> bool {
    let r: Vec<&str> = reported.split(['.', '_', '-']).collect();
    let t: Vec<&str> = target.split(['.', '_', '-']).collect();
    t.len() <= r.len()
        && t.iter()
            .zip(&r)
            .all(|(t, r)| match (t.parse::<u64>(), r.parse::<u64>()) {
                (Ok(t), Ok(r)) => t == r,
                _ => t.eq_ignore_ascii_case(r),
            })
}

/// Where a device stands against its profile's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FirmwareState {
    /// Runs the profile's version.
    Current,
    /// Runs an older version; updates at its next reboot or poll.
    Behind,
    /// Runs a newer version; the profile's older one replaces it (phones downgrade too).
    Ahead,
    /// The profile names no version for the device's family.
    NoTarget,
    /// The device has not reported a version (never seen by the application).
    Unknown,
}

impl FirmwareState {
    pub fn as_str(self) -> &'static str {
        match self {
            FirmwareState::Current => "current",
            FirmwareState::Behind => "behind",
            FirmwareState::Ahead => "ahead",
            FirmwareState::NoTarget => "no-target",
            FirmwareState::Unknown => "unknown",
        }
    }
}

/// The state of a device reporting `reported` whose profile names `target`.
pub fn firmware_state(reported: &str, target: Option<&str>) -> FirmwareState {
    let Some(target) = target.filter(|t| !t.is_empty()) else {
        return FirmwareState::NoTarget;
    };
    if reported.is_empty() {
        return FirmwareState::Unknown;
    }
    if same_version(reported, target) {
        FirmwareState::Current
    } else if compare_versions(reported, target) == Ordering::Less {
        FirmwareState::Behind
    } else {
        FirmwareState::Ahead
    }
}

/// The inventory's `firmware-behind` flag: the device reported a version and it is not the
/// one its profile names for its model family (older or newer: phones go to the named one).
pub fn firmware_behind(reported: &str, target: Option<&str>) -> bool {
    matches!(
        firmware_state(reported, target),
        FirmwareState::Behind | FirmwareState::Ahead
    )
}

/// An associated device's firmware against its profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceFirmware {
    pub mac: String,
    pub profile: String,
    /// Model token from the User-Agent (`VVX410`), empty when never seen.
    pub model: String,
    pub family: Option<Family>,
    /// Version from `Type/Application` User-Agents, empty when never reported.
    pub reported: String,
    /// The profile's version for the device's family.
    pub target: Option<String>,
}

impl DeviceFirmware {
    pub fn state(&self) -> FirmwareState {
        firmware_state(&self.reported, self.target.as_deref())
    }

    /// The inventory flag.
    pub fn behind(&self) -> bool {
        firmware_behind(&self.reported, self.target.as_deref())
    }
}

/// Software versions of every profile: profile id → family → version.
fn profile_versions(conn: &Connection) -> Result<HashMap<i64, BTreeMap<Family, String>>> {
    let mut out: HashMap<i64, BTreeMap<Family, String>> = HashMap::new();
    let mut stmt =
        conn.prepare_cached("SELECT profile_id, family, version FROM profile_firmware")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (id, family, version) = row?;
        if let Some(f) = Family::from_name(&family) {
            out.entry(id).or_default().insert(f, version);
        }
    }
    Ok(out)
}

/// Every associated device with its reported and target versions, in MAC order. `mac`
/// limits the list to one device.
pub fn list_device_firmware(conn: &Connection, mac: Option<&str>) -> Result<Vec<DeviceFirmware>> {
    let versions = profile_versions(conn)?;
    let mut stmt = conn.prepare_cached(
        "SELECT d.mac, p.name, p.id, coalesce(a.ua_model, ''), coalesce(a.firmware, '')
         FROM devices d JOIN profiles p ON p.id = d.profile_id
         LEFT JOIN device_activity a ON a.device_id = d.id
         WHERE ?1 IS NULL OR d.mac = ?1
         ORDER BY d.mac",
    )?;
    let rows = stmt.query_map([mac], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (mac, profile, profile_id, ua_model, reported) = row?;
        let model = if ua_model.is_empty() {
            String::new()
        } else {
            model_token("", &ua_model)
        };
        let family = Family::of_model(&model);
        let target =
            family.and_then(|f| versions.get(&profile_id).and_then(|v| v.get(&f)).cloned());
        out.push(DeviceFirmware {
            mac,
            profile,
            model,
            family,
            reported,
            target,
        });
    }
    Ok(out)
}

/// One model's line of the rollout view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolloutRow {
    /// Family name, or `unknown` for devices not seen yet or of an unknown model.
    pub family: String,
    /// Model token, or `(not seen)`.
    pub model: String,
    pub devices: usize,
    /// Reported version → devices; `(not reported)` for devices without one.
    pub versions: BTreeMap<String, usize>,
    /// The versions their profiles name.
    pub targets: Vec<String>,
    pub current: usize,
    pub behind: usize,
    pub no_target: usize,
}

/// How many devices of each model run which version, with how many are on their profile's
/// version. Ordered by family, then model.
pub fn rollout(conn: &Connection) -> Result<Vec<RolloutRow>> {
    let mut rows: BTreeMap<(String, String), RolloutRow> = BTreeMap::new();
    for d in list_device_firmware(conn, None)? {
        let family = d
            .family
            .map(|f| f.name().to_string())
            .unwrap_or_else(|| "unknown".into());
        let model = if d.model.is_empty() {
            "(not seen)".to_string()
        } else {
            d.model.clone()
        };
        let row = rows
            .entry((family.clone(), model.clone()))
            .or_insert_with(|| RolloutRow {
                family,
                model,
                devices: 0,
                versions: BTreeMap::new(),
                targets: Vec::new(),
                current: 0,
                behind: 0,
                no_target: 0,
            });
        row.devices += 1;
        let shown = if d.reported.is_empty() {
            "(not reported)".to_string()
        } else {
            d.reported.clone()
        };
        *row.versions.entry(shown).or_default() += 1;
        if let Some(t) = &d.target
            && !row.targets.contains(t)
        {
            row.targets.push(t.clone());
        }
        match d.state() {
            FirmwareState::Current => row.current += 1,
            FirmwareState::Behind | FirmwareState::Ahead => row.behind += 1,
            FirmwareState::NoTarget => row.no_target += 1,
            FirmwareState::Unknown => {}
        }
    }
    let mut out: Vec<RolloutRow> = rows.into_values().collect();
    for r in &mut out {
        r.targets.sort_by(|a, b| compare_versions(b, a));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_number() {
        assert_eq!(compare_versions("5.9.8.1234", "5.10.0.1"), Ordering::Less);
        assert_eq!(compare_versions("5.9.5.0614", "5.9.5.614"), Ordering::Equal);
        assert_eq!(compare_versions("7.2.2", "7.2.2.1094"), Ordering::Less);
        assert!(same_version("5.9.8.5760", "5.9.8"));
        assert!(same_version("3.10.0_362035", "3.10.0-362035"));
        assert!(!same_version("5.9.8", "5.9.8.5760"));
    }

    #[test]
    fn behind_means_not_on_the_profiles_version() {
        assert_eq!(
            firmware_state("5.9.5.0614", Some("5.9.8.1234")),
            FirmwareState::Behind
        );
        assert_eq!(
            firmware_state("6.0.0.1", Some("5.9.8.1234")),
            FirmwareState::Ahead
        );
        assert_eq!(
            firmware_state("5.9.8.1234", Some("5.9.8.1234")),
            FirmwareState::Current
        );
        assert_eq!(
            firmware_state("", Some("5.9.8.1234")),
            FirmwareState::Unknown
        );
        assert_eq!(firmware_state("5.9.8.1234", None), FirmwareState::NoTarget);
        assert!(firmware_behind("5.9.5.0614", Some("5.9.8.1234")));
        assert!(
            firmware_behind("6.0.0.1", Some("5.9.8.1234")),
            "a downgrade is pending too"
        );
        assert!(!firmware_behind("", Some("5.9.8.1234")));
        assert!(!firmware_behind("5.9.5.0614", None));
    }
}
