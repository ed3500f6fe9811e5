//! Moving an existing FTP/TFTP boot server in (`zerotouch migrate-tree`): the pure rules that
//! turn a tree of Polycom files into a plan of profiles, associations, per-device values and
//! stored overrides, with everything left out and why.
//!
//! What a phone of the old tree got is the merge of the files its master lists in
//! `CONFIG_FILES`, leftmost first wins (the phone's rule). The plan keeps that per MAC:
//! - a phone's master is `<mac>.cfg` when the tree has one, else `000000000000.cfg`;
//!   `[PHONE_MAC_ADDRESS]` in a listed name is the phone's MAC (lower case, as phones ask);
//! - a listed file whose name holds the phone's MAC is the phone's own; every other listed
//!   file is shared, and phones listing the same shared files (same names, same bytes, same
//!   order) share one profile, whose files are those files in that order;
//! - a parameter of the phone's own files becomes a device-level value only where it is
//!   the one the phone used (no shared file listed before it sets the parameter): a
//!   device-level value wins over every profile file, as the leftmost file did;
//! - parameters zerotouch sets itself (the provisioning server, its credentials, the
//!   boot-server choice, the CA, `device.set`) are left out of every file and value and
//!   listed: the account's credentials and Auto-Sync set them;
//! - `<mac>-phone.cfg`, `-web.cfg` and `-system.cfg` are stored as the phone's overrides,
//!   as if it had uploaded them;
//! - firmware images, directories, licences and everything else are listed with the reason
//!   they are not moved; names with `[PHONE_MODEL]` are not moved (no per-model files).
//!
//! Secrets found (names only, never values) are listed; they stay sealed once stored.

use std::collections::{BTreeMap, BTreeSet};

use super::mac::Mac;
use super::machine::owned;
use super::polycom::params::is_secret;
use super::xml::{FoundParam, escape_attr, parse_params};
use crate::error::FieldError;

/// The default master's name.
pub const DEFAULT_MASTER: &str = "000000000000.cfg";

/// The largest configuration file read (bigger ones are listed, not read).
pub const MAX_CONFIG_BYTES: u64 = 8 << 20;

/// One file of the old tree: its size, and its bytes when it is a configuration file
/// (`.cfg`, `.xml`) small enough to read.
#[derive(Debug, Clone, Default)]
pub struct TreeFile {
    pub size: u64,
    pub bytes: Option<Vec<u8>>,
}

/// The old tree: relative paths with `/` separators.
pub type Tree = BTreeMap<String, TreeFile>;

/// Whether a file of the tree is read (configuration text) or only listed.
pub fn is_config_name(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.ends_with(".cfg") || lower.ends_with(".xml")
}

/// A profile the plan creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedProfile {
    pub name: String,
    /// `(file name, bytes)` in `CONFIG_FILES` order.
    pub files: Vec<(String, Vec<u8>)>,
    pub macs: Vec<Mac>,
}

/// A device the plan associates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedDevice {
    pub mac: Mac,
    pub profile: String,
    /// Device-level values `(parameter, value)`, from its own files.
    pub values: Vec<(String, String)>,
    /// Override files to store `(file name, bytes)`.
    pub overrides: Vec<(String, Vec<u8>)>,
}

/// What becomes of a tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub profiles: Vec<PlannedProfile>,
    pub devices: Vec<PlannedDevice>,
    /// Files or parameters left out: `(path, reason)`.
    pub ignored: Vec<(String, String)>,
    /// Secrets found: `(path, parameter)`, never the value.
    pub secrets: Vec<(String, String)>,
    /// Firmware images found: `(path, size)`.
    pub firmware: Vec<(String, u64)>,
    /// Problems that stop the apply, each naming its file (and line).
    pub problems: Vec<FieldError>,
}

/// The attributes of a master's `APPLICATION` element.
fn master_attrs(path: &str, bytes: &[u8]) -> Result<BTreeMap<String, String>, FieldError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| FieldError::new(path, format!("not UTF-8 (byte {})", e.valid_up_to())))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, options).map_err(|e| {
        let pos = e.pos();
        FieldError::new(
            path,
            format!(
                "not well-formed XML at line {}, column {}: {e}",
                pos.row, pos.col
            ),
        )
    })?;
    let app = doc
        .descendants()
        .find(|n| n.is_element() && n.tag_name().name().eq_ignore_ascii_case("APPLICATION"))
        .ok_or_else(|| FieldError::new(path, "a master file without an APPLICATION element"))?;
    Ok(app
        .attributes()
        .map(|a| (a.name().to_string(), a.value().to_string()))
        .collect())
}

/// The MAC a file name starts with (`0004f2aabbcc.cfg`, `0004f2aabbcc-phone.cfg`).
fn leading_mac(name: &str) -> Option<Mac> {
    let head = name.get(..12)?;
    if name.len() > 12 && !matches!(name.as_bytes()[12], b'.' | b'-' | b'_') {
        return None;
    }
    let mac = Mac::from_bare(head)?;
    (mac.as_str() != "000000000000").then_some(mac)
}

/// `000000000000.cfg` or `<mac>.cfg`.
fn is_master_name(name: &str) -> bool {
    name == DEFAULT_MASTER
        || (name.len() == 16
            && name.to_ascii_lowercase().ends_with(".cfg")
            && leading_mac(name).is_some())
}

/// The file name of a path (the part after the last `/`).
fn base(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The override kinds a phone uploads.
fn override_suffix(name: &str) -> bool {
    ["-phone.cfg", "-web.cfg", "-system.cfg"]
        .iter()
        .any(|s| name.to_ascii_lowercase().ends_with(s))
}

/// A configuration file without the parameters zerotouch owns: the bytes unchanged when it
/// has none, else the same parameters rewritten one element per original element.
fn without_owned(found: &[FoundParam], bytes: &[u8]) -> Vec<u8> {
    if !found.iter().any(|p| owned(&p.name)) {
        return bytes.to_vec();
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<polycomConfig>\n");
    let mut element: Option<&str> = None;
    for p in found.iter().filter(|p| !owned(&p.name)) {
        if element != Some(p.element.as_str()) {
            if element.is_some() {
                out.push_str("/>\n");
            }
            out.push_str(&format!("  <{}", p.element));
            element = Some(p.element.as_str());
        }
        out.push_str(&format!(" {}=\"{}\"", p.name, escape_attr(&p.value)));
    }
    if element.is_some() {
        out.push_str("/>\n");
    }
    out.push_str("</polycomConfig>\n");
    out.into_bytes()
}

/// One listed file of a phone, resolved in the tree.
struct Listed<'a> {
    /// The path in the tree.
    path: String,
    /// The name it gets as a profile file.
    name: String,
    found: &'a [FoundParam],
    bytes: &'a [u8],
}

/// Builds the plan for `tree`; profiles are named `<prefix>_1`, `<prefix>_2`, …
pub fn plan(tree: &Tree, prefix: &str) -> Plan {
    let mut plan = Plan::default();
    // Every configuration file parsed once.
    let mut parsed: BTreeMap<&str, Vec<FoundParam>> = BTreeMap::new();
    for (path, f) in tree {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".ld") {
            plan.firmware.push((path.clone(), f.size));
            continue;
        }
        let Some(bytes) = &f.bytes else {
            let why = if is_config_name(path) {
                format!("larger than {} MiB: not read", MAX_CONFIG_BYTES >> 20)
            } else {
                "not a configuration file (licences, directories of other formats, images, \
                 logs are not moved: put shared assets with `zerotouch assets put`)"
                    .to_string()
            };
            plan.ignored.push((path.clone(), why));
            continue;
        };
        if is_master_name(base(path)) {
            // Read below.
            continue;
        }
        match parse_params(path, bytes) {
            Ok(found) => {
                for p in &found {
                    if is_secret(&p.name) && !p.value.is_empty() {
                        plan.secrets.push((path.clone(), p.name.clone()));
                    }
                }
                parsed.insert(path.as_str(), found);
            }
            Err(crate::error::Error::Invalid(p)) if lower.ends_with(".cfg") => {
                plan.problems.extend(p)
            }
            Err(_) => plan.ignored.push((
                path.clone(),
                "not a Polycom configuration file (not well-formed XML)".into(),
            )),
        }
    }
    // Masters: the default one and one per MAC.
    let mut masters: BTreeMap<Option<Mac>, (String, BTreeMap<String, String>)> = BTreeMap::new();
    for (path, f) in tree {
        let name = base(path);
        let mac = if name == DEFAULT_MASTER {
            None
        } else if name.len() == 16 && name.to_ascii_lowercase().ends_with(".cfg") {
            match leading_mac(name) {
                Some(m) => Some(m),
                None => continue,
            }
        } else {
            continue;
        };
        if path.contains('/') {
            plan.ignored.push((
                path.clone(),
                "a master below the root: phones ask for it at the root".into(),
            ));
            continue;
        }
        match f.bytes.as_deref().map(|b| master_attrs(path, b)) {
            Some(Ok(attrs)) => {
                masters.insert(mac, (path.clone(), attrs));
            }
            Some(Err(p)) => plan.problems.push(p),
            None => plan
                .ignored
                .push((path.clone(), "a master too large to read".into())),
        }
    }
    // The phones: a master of their own, an override, or an own file the default master
    // lists through [PHONE_MAC_ADDRESS].
    let mut macs: BTreeSet<Mac> = masters.keys().flatten().cloned().collect();
    let default_list: Vec<String> = masters
        .get(&None)
        .map(|(_, a)| config_files(a))
        .unwrap_or_default();
    for path in tree.keys() {
        let name = base(path);
        let Some(mac) = leading_mac(name) else {
            continue;
        };
        if override_suffix(name)
            || default_list.iter().any(|l| {
                l.contains("[PHONE_MAC_ADDRESS]")
                    && l.replace("[PHONE_MAC_ADDRESS]", mac.as_str())
                        .eq_ignore_ascii_case(path)
            })
        {
            macs.insert(mac);
        }
    }
    let mut profiles: Vec<PlannedProfile> = Vec::new();
    let mut used_files: BTreeSet<String> = BTreeSet::new();
    let mut owned_reported: BTreeSet<(String, String)> = BTreeSet::new();
    for mac in &macs {
        let Some((master_path, attrs)) = masters.get(&Some(*mac)).or(masters.get(&None)) else {
            plan.ignored.push((
                format!("{mac}"),
                "overrides of a phone no master names (no 000000000000.cfg): not moved".into(),
            ));
            continue;
        };
        used_files.insert(master_path.clone());
        let mut listed: Vec<Listed<'_>> = Vec::new();
        let mut skip_phone = false;
        for entry in config_files(attrs) {
            let path = entry.replace("[PHONE_MAC_ADDRESS]", mac.as_str());
            if path.contains("[PHONE_MODEL]") || path.contains('[') {
                plan.ignored.push((
                    format!("{master_path}: {entry}"),
                    "per-model file names are not moved (no model is known before a phone \
                     asks)"
                        .into(),
                ));
                continue;
            }
            if path.contains("://") {
                plan.ignored.push((
                    format!("{master_path}: {entry}"),
                    "a file on another server: add it to the profile by hand if still wanted"
                        .into(),
                ));
                continue;
            }
            let key = tree
                .keys()
                .find(|k| k.eq_ignore_ascii_case(path.trim_start_matches('/')))
                .cloned();
            let Some(key) = key else {
                plan.ignored.push((
                    format!("{master_path}: {entry}"),
                    format!("listed for {mac} but not in the tree (the phone skipped it too)"),
                ));
                continue;
            };
            let Some(found) = parsed.get(key.as_str()) else {
                // Unreadable: already a problem or ignored.
                skip_phone |= plan.problems.iter().any(|p| p.field == key);
                continue;
            };
            let bytes = tree[&key].bytes.as_deref().unwrap_or_default();
            used_files.insert(key.clone());
            listed.push(Listed {
                name: base(&key).to_string(),
                path: key,
                found,
                bytes,
            });
        }
        if skip_phone {
            continue;
        }
        let own = |l: &Listed<'_>| l.name.to_ascii_lowercase().contains(mac.as_str());
        // The profile: the shared files, in order, without owned parameters.
        let shared: Vec<(String, Vec<u8>)> = listed
            .iter()
            .filter(|l| !own(l))
            .map(|l| (l.name.clone(), without_owned(l.found, l.bytes)))
            .collect();
        for l in &listed {
            for p in l.found.iter().filter(|p| owned(&p.name)) {
                if owned_reported.insert((l.path.clone(), p.name.clone())) {
                    plan.ignored.push((
                        format!("{}: line {}: {}", l.path, p.line, p.name),
                        "set by zerotouch itself (the account's credentials, Auto-Sync and \
                         enrolment): left out"
                            .into(),
                    ));
                }
            }
        }
        let mut names: BTreeSet<&str> = BTreeSet::new();
        let mut clash = false;
        for (n, _) in &shared {
            clash |= !names.insert(n.as_str());
        }
        if clash {
            plan.problems.push(FieldError::new(
                master_path.as_str(),
                format!("{mac}: two listed files share a file name in different directories"),
            ));
            continue;
        }
        let profile = match profiles.iter_mut().find(|p| p.files == shared) {
            Some(p) => {
                p.macs.push(*mac);
                p.name.clone()
            }
            None => {
                let name = format!("{prefix}_{}", profiles.len() + 1);
                profiles.push(PlannedProfile {
                    name: name.clone(),
                    files: shared,
                    macs: vec![*mac],
                });
                name
            }
        };
        // Device-level values: each own parameter the phone used (leftmost file first,
        // the first setting within a file).
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut values = Vec::new();
        for l in &listed {
            let mine = own(l);
            for p in l.found {
                if owned(&p.name) || !seen.insert(p.name.as_str()) {
                    continue;
                }
                if mine {
                    values.push((p.name.clone(), p.value.clone()));
                }
            }
        }
        let overrides = tree
            .iter()
            .filter(|(path, _)| {
                let n = base(path);
                leading_mac(n).as_ref() == Some(mac) && override_suffix(n)
            })
            .filter_map(|(path, f)| {
                used_files.insert(path.clone());
                f.bytes
                    .clone()
                    .map(|b| (base(path).to_ascii_lowercase(), b))
            })
            .collect();
        plan.devices.push(PlannedDevice {
            mac: *mac,
            profile,
            values,
            overrides,
        });
    }
    // A default master no phone was found for still gives its profile: phones that boot
    // with no file of their own are associated to it by hand or by the unknown-devices
    // setting.
    if let Some((path, attrs)) = masters.get(&None)
        && profiles.is_empty()
        && !attrs.is_empty()
    {
        let files: Vec<(String, Vec<u8>)> = config_files(attrs)
            .iter()
            .filter(|e| !e.contains('['))
            .filter_map(|e| {
                let key = tree.keys().find(|k| k.eq_ignore_ascii_case(e))?;
                let found = parsed.get(key.as_str())?;
                used_files.insert(key.clone());
                Some((
                    base(key).to_string(),
                    without_owned(found, tree[key].bytes.as_deref().unwrap_or_default()),
                ))
            })
            .collect();
        used_files.insert(path.clone());
        profiles.push(PlannedProfile {
            name: format!("{prefix}_1"),
            files,
            macs: Vec::new(),
        });
    }
    for path in tree.keys() {
        if !used_files.contains(path)
            && parsed.contains_key(path.as_str())
            && !plan.ignored.iter().any(|(p, _)| p == path)
        {
            plan.ignored.push((
                path.clone(),
                "listed by no master a phone uses: not moved".into(),
            ));
        }
    }
    plan.secrets.retain(|(path, _)| used_files.contains(path));
    plan.profiles = profiles;
    plan
}

/// The names a master lists in `CONFIG_FILES`, in order.
fn config_files(attrs: &BTreeMap<String, String>) -> Vec<String> {
    attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("CONFIG_FILES"))
        .map(|(_, v)| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> TreeFile {
        TreeFile {
            size: text.len() as u64,
            bytes: Some(text.as_bytes().to_vec()),
        }
    }

    fn master(list: &str) -> TreeFile {
        file(&format!(
            "<?xml version=\"1.0\"?><APPLICATION APP_FILE_PATH=\"sip.ld\" CONFIG_FILES=\"{list}\"/>"
        ))
    }

    #[test]
    fn phones_listing_the_same_shared_files_share_a_profile_and_own_values_win_where_used() {
        let mut tree = Tree::new();
        tree.insert(
            DEFAULT_MASTER.into(),
            master("[PHONE_MAC_ADDRESS]-reg.cfg, site.cfg"),
        );
        tree.insert(
            "site.cfg".into(),
            file("<p><a lcl.ml.lang=\"German_Germany\" device.prov.serverName=\"ftp.x\"/></p>"),
        );
        tree.insert(
            "0004f2000001-reg.cfg".into(),
            file("<p><r reg.1.address=\"101\" reg.1.auth.password=\"s1\"/></p>"),
        );
        tree.insert(
            "0004f2000002-reg.cfg".into(),
            file("<p><r reg.1.address=\"102\" lcl.ml.lang=\"French_France\"/></p>"),
        );
        // A phone with its own master listing the shared file first: its own value for the
        // language is shadowed.
        tree.insert(
            "0004f2000003.cfg".into(),
            master("site.cfg, 0004f2000003-reg.cfg"),
        );
        tree.insert(
            "0004f2000003-reg.cfg".into(),
            file("<p><r reg.1.address=\"103\" lcl.ml.lang=\"French_France\"/></p>"),
        );
        tree.insert(
            "0004f2000001-phone.cfg".into(),
            file("<p><o up.x=\"1\"/></p>"),
        );
        tree.insert(
            "2345-12345-001.sip.ld".into(),
            TreeFile {
                size: 5,
                bytes: None,
            },
        );
        let plan = plan(&tree, "migrated");
        assert!(plan.problems.is_empty(), "{:?}", plan.problems);
        assert_eq!(plan.profiles.len(), 1, "{:?}", plan.profiles);
        let p = &plan.profiles[0];
        assert_eq!(p.macs.len(), 3);
        assert_eq!(p.files.len(), 1);
        let site = String::from_utf8(p.files[0].1.clone()).expect("utf8");
        assert!(site.contains("lcl.ml.lang=\"German_Germany\""), "{site}");
        assert!(!site.contains("device.prov"), "owned left out: {site}");
        let d = |m: &str| {
            plan.devices
                .iter()
                .find(|d| d.mac.as_str() == m)
                .expect("device")
        };
        assert_eq!(
            d("0004f2000001").values,
            vec![
                ("reg.1.address".to_string(), "101".to_string()),
                ("reg.1.auth.password".to_string(), "s1".to_string())
            ]
        );
        assert_eq!(d("0004f2000001").overrides.len(), 1);
        assert!(
            d("0004f2000002")
                .values
                .contains(&("lcl.ml.lang".into(), "French_France".into()))
        );
        assert_eq!(
            d("0004f2000003").values,
            vec![("reg.1.address".to_string(), "103".to_string())],
            "a value a shared file listed first shadows is not the phone's"
        );
        assert_eq!(plan.firmware.len(), 1);
        assert_eq!(
            plan.secrets,
            vec![(
                "0004f2000001-reg.cfg".to_string(),
                "reg.1.auth.password".to_string()
            )]
        );
        assert!(
            plan.ignored
                .iter()
                .any(|(p, _)| p.contains("device.prov.serverName"))
        );
    }

    #[test]
    fn a_default_master_without_phones_still_gives_its_profile() {
        let mut tree = Tree::new();
        tree.insert(
            DEFAULT_MASTER.into(),
            master("site.cfg, [PHONE_MAC_ADDRESS].cfg"),
        );
        tree.insert(
            "site.cfg".into(),
            file("<p><x up.a=\"1\" device.set=\"1\"/></p>"),
        );
        let plan = plan(&tree, "old");
        assert!(plan.devices.is_empty());
        assert_eq!(plan.profiles.len(), 1);
        assert_eq!(plan.profiles[0].name, "old_1");
        assert_eq!(plan.profiles[0].files[0].0, "site.cfg");
        let text = String::from_utf8(plan.profiles[0].files[0].1.clone()).expect("utf8");
        assert!(
            text.contains("up.a=\"1\"") && !text.contains("device.set"),
            "{text}"
        );
    }

    #[test]
    fn different_shared_files_make_different_profiles_and_bad_files_are_named() {
        let mut tree = Tree::new();
        tree.insert("0004f2000001.cfg".into(), master("a.cfg"));
        tree.insert("0004f2000002.cfg".into(), master("b.cfg"));
        tree.insert("0004f2000003.cfg".into(), master("a.cfg, missing.cfg"));
        tree.insert("a.cfg".into(), file("<p><x up.a=\"1\"/></p>"));
        tree.insert("b.cfg".into(), file("<p><x up.a=\"2\"/></p>"));
        let plan_ok = plan(&tree, "m");
        assert_eq!(plan_ok.profiles.len(), 2);
        assert_eq!(plan_ok.profiles[0].macs.len(), 2);
        assert!(
            plan_ok
                .ignored
                .iter()
                .any(|(p, why)| p.contains("missing.cfg") && why.contains("not in the tree"))
        );
        tree.insert("b.cfg".into(), file("<p><x up.a=\"2\"></p>"));
        let bad = plan(&tree, "m");
        assert_eq!(bad.problems.len(), 1, "{:?}", bad.problems);
        assert_eq!(bad.problems[0].field, "b.cfg");
        assert!(
            bad.problems[0].message.contains("line 1"),
            "{:?}",
            bad.problems
        );
    }
}
