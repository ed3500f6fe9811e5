//! What devices run against what their profiles name: the inventory's `firmware-behind`
//! flag (docs/design.md §7) and the rollout view (how many devices of each model run which
//! version).
//!
//! The reported version is the one `Type/Application` User-Agents carry
//! (`device_activity.firmware`); the target is the profile's version for the device's model
//! family. Phones switch to whatever APP_FILE_PATH names, downgrades included, when the
//! release holds an image for their model: a device on an older version is behind, on a
//! newer one a downgrade is pending, and one whose model the release lacks stays where it
//! is (`no-image`, counted apart).

use std::collections::{BTreeMap, HashMap};

use rusqlite::Connection;

use crate::domain::firmware::{DeviceFirmware, FirmwareState, RolloutRow, compare_versions};
use crate::domain::polycom::models::Family;
use crate::domain::useragent::model_token;
use crate::error::Result;

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
    let cover = crate::db::firmware::image_cover(conn)?;
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
        let image = target
            .as_deref()
            .is_some_and(|t| cover.holds(t, family, &model));
        out.push(DeviceFirmware {
            mac,
            profile,
            model,
            family,
            reported,
            target,
            image,
        });
    }
    Ok(out)
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
                downgrade: 0,
                no_image: 0,
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
            FirmwareState::Behind => row.behind += 1,
            FirmwareState::DowngradePending => row.downgrade += 1,
            FirmwareState::NoImage => row.no_image += 1,
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
