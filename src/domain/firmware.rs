//! The firmware catalogue's types and rules: how a release ships its images, each file's
//! check status, the version a device runs against its profile's, and the rollout rows.
//! Reading, importing and serving releases: `actions::firmware`.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::polycom::models::Family;

/// How a release ships its images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// One image per phone, named after its part number (`3111-46162-001.sip.ld`).
    Split,
    /// One `sip.ld` for every phone of the release.
    Combined,
    /// Both.
    Mixed,
}

impl Layout {
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Split => "split",
            Layout::Combined => "combined",
            Layout::Mixed => "mixed",
        }
    }

    pub fn parse(s: &str) -> Layout {
        match s {
            "combined" => Layout::Combined,
            "mixed" => Layout::Mixed,
            _ => Layout::Split,
        }
    }
}

/// The outcome of the last check of a stored file against its checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    Unchecked,
    Ok,
    /// The file's bytes differ from what was imported.
    Mismatch,
    /// The file is gone.
    Missing,
}

impl FileStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Unchecked => "unchecked",
            FileStatus::Ok => "ok",
            FileStatus::Mismatch => "mismatch",
            FileStatus::Missing => "missing",
        }
    }

    pub fn parse(s: &str) -> FileStatus {
        match s {
            "ok" => FileStatus::Ok,
            "mismatch" => FileStatus::Mismatch,
            "missing" => FileStatus::Missing,
            _ => FileStatus::Unchecked,
        }
    }

    /// Whether the file may be served.
    pub fn servable(self) -> bool {
        matches!(self, FileStatus::Ok | FileStatus::Unchecked)
    }
}

/// One stored file of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseFile {
    /// Path inside `firmware/<version>/`, `/`-separated.
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// For a part-numbered image: its part number.
    pub part_number: Option<String>,
    /// For a part-numbered image of a known part: the model token.
    pub model: Option<String>,
    pub status: FileStatus,
}

impl ReleaseFile {
    /// A firmware image at the top of the release (`sip.ld`, `<part>.sip.ld`).
    pub fn is_image(&self) -> bool {
        !self.path.contains('/') && self.path.ends_with(".ld")
    }
}

/// A release in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Release {
    pub version: String,
    /// Model families the release covers.
    pub families: Vec<Family>,
    /// The zip or folder it was imported from.
    pub source: String,
    pub layout: Layout,
    pub imported_by: String,
    pub imported_at: i64,
    pub files: Vec<ReleaseFile>,
}

impl Release {
    pub fn covers(&self, family: Family) -> bool {
        self.families.contains(&family)
    }

    /// The images of the release.
    pub fn images(&self) -> impl Iterator<Item = &ReleaseFile> {
        self.files.iter().filter(|f| f.is_image())
    }

    /// Models with their own image, by family (`VVX` → `VVX410`, …).
    pub fn models(&self) -> BTreeMap<Family, Vec<String>> {
        let mut out: BTreeMap<Family, Vec<String>> = BTreeMap::new();
        for f in self.images() {
            if let Some(m) = &f.model
                && let Some(fam) = Family::of_model(m)
            {
                out.entry(fam).or_default().push(m.clone());
            }
        }
        out
    }

    /// Part numbers of images that are not in the part table.
    pub fn unknown_parts(&self) -> Vec<&str> {
        self.images()
            .filter(|f| f.model.is_none())
            .filter_map(|f| f.part_number.as_deref())
            .collect()
    }

    /// Whether a combined image (`sip.ld`) serves every model of the release.
    pub fn has_combined_image(&self) -> bool {
        self.files.iter().any(|f| f.path == "sip.ld")
    }

    /// Total bytes stored.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Files whose last check failed.
    pub fn damaged(&self) -> Vec<&ReleaseFile> {
        self.files.iter().filter(|f| !f.status.servable()).collect()
    }
}

/// A file whose check failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub version: String,
    pub path: String,
    pub status: FileStatus,
    /// What was found, for people.
    pub detail: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "firmware/{}/{}: {}",
            self.version, self.path, self.detail
        )
    }
}

/// The outcome of checking every catalogued file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub files: usize,
    pub bytes: u64,
    pub problems: Vec<Problem>,
}

/// What a firmware request is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image {
    /// Serve this file.
    File(PathBuf),
    /// The catalogue knows the file but its bytes no longer match: not served.
    Damaged(String),
    NotFound,
}

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
    /// Runs an older version and the release holds an image for its model: it updates at
    /// its next reboot or poll.
    Behind,
    /// Runs a newer version and the release holds an image for its model: the profile's
    /// older one replaces it (phones downgrade too).
    DowngradePending,
    /// Runs another version, but the profile's release holds no image for its model (or is
    /// not in the catalogue): the phone asks for its image, is refused and stays where it is.
    NoImage,
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
            FirmwareState::DowngradePending => "downgrade-pending",
            FirmwareState::NoImage => "no-image",
            FirmwareState::NoTarget => "no-target",
            FirmwareState::Unknown => "unknown",
        }
    }

    /// In words, for pages.
    pub fn label(self) -> &'static str {
        match self {
            FirmwareState::Current => "current",
            FirmwareState::Behind => "behind (updates at its next reboot or poll)",
            FirmwareState::DowngradePending => "downgrade pending (runs a newer version)",
            FirmwareState::NoImage => "no image for this model in the release",
            FirmwareState::NoTarget => "no version named",
            FirmwareState::Unknown => "not reported yet",
        }
    }

    /// Whether the phone will install other software when it next reads its configuration.
    pub fn will_change(self) -> bool {
        matches!(
            self,
            FirmwareState::Behind | FirmwareState::DowngradePending
        )
    }
}

/// The state of a device reporting `reported` whose profile names `target`; `image` says
/// whether the release of `target` holds an image for the device's model
/// (`ImageCover::holds`). Behind and downgrade pending need the image: a phone whose model
/// the release lacks is refused its image and keeps its version.
pub fn firmware_state(reported: &str, target: Option<&str>, image: bool) -> FirmwareState {
    let Some(target) = target.filter(|t| !t.is_empty()) else {
        return FirmwareState::NoTarget;
    };
    if reported.is_empty() {
        return FirmwareState::Unknown;
    }
    if same_version(reported, target) {
        FirmwareState::Current
    } else if !image {
        FirmwareState::NoImage
    } else if compare_versions(reported, target) == Ordering::Less {
        FirmwareState::Behind
    } else {
        FirmwareState::DowngradePending
    }
}

/// Which models the catalogue's releases hold images for: part-numbered images (by model
/// and part number) and combined `sip.ld` images (every model of the release's families).
#[derive(Debug, Clone, Default)]
pub struct ImageCover {
    /// `(version, model token)` and `(version, part number)` of part-numbered images.
    pub split: std::collections::HashSet<(String, String)>,
    /// Versions with a combined `sip.ld`, with the families the release covers.
    pub combined: BTreeMap<String, Vec<Family>>,
}

impl ImageCover {
    /// Whether release `version` holds an image a `model` (token, `VVX410`) of `family`
    /// would fetch.
    pub fn holds(&self, version: &str, family: Option<Family>, model: &str) -> bool {
        if family.is_some_and(|f| self.combined.get(version).is_some_and(|fs| fs.contains(&f))) {
            return true;
        }
        let model = model.to_ascii_uppercase();
        self.split.contains(&(version.to_string(), model.clone()))
            || super::polycom::parts::of_model(&model)
                .into_iter()
                .any(|p| self.split.contains(&(version.to_string(), p.to_string())))
    }
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
    /// Whether the target's release holds an image for the device's model.
    pub image: bool,
}

impl DeviceFirmware {
    pub fn state(&self) -> FirmwareState {
        firmware_state(&self.reported, self.target.as_deref(), self.image)
    }
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
    /// On an older version, with an image to go to.
    pub behind: usize,
    /// On a newer version, with the profile's image to go back to.
    pub downgrade: usize,
    /// On another version, but the release holds no image for the model.
    pub no_image: usize,
    pub no_target: usize,
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
    fn behind_means_an_older_version_with_an_image_to_go_to() {
        let st = |r, t, i| firmware_state(r, t, i);
        assert_eq!(
            st("5.9.5.0614", Some("5.9.8.1234"), true),
            FirmwareState::Behind
        );
        assert_eq!(
            st("6.0.0.1", Some("5.9.8.1234"), true),
            FirmwareState::DowngradePending
        );
        assert_eq!(
            st("5.9.5.0614", Some("5.9.8.1234"), false),
            FirmwareState::NoImage
        );
        assert_eq!(
            st("6.0.0.1", Some("5.9.8.1234"), false),
            FirmwareState::NoImage
        );
        assert_eq!(
            st("5.9.8.1234", Some("5.9.8.1234"), false),
            FirmwareState::Current
        );
        assert_eq!(st("", Some("5.9.8.1234"), true), FirmwareState::Unknown);
        assert_eq!(st("5.9.8.1234", None, true), FirmwareState::NoTarget);
        assert!(
            FirmwareState::Behind.will_change() && FirmwareState::DowngradePending.will_change()
        );
        assert!(!FirmwareState::NoImage.will_change());
    }

    #[test]
    fn an_image_is_held_by_model_by_part_number_or_by_a_combined_release() {
        let mut c = ImageCover::default();
        c.split.insert(("5.9.8".into(), "3111-46162-001".into()));
        c.split.insert(("5.9.8".into(), "VVX501".into()));
        c.combined.insert("4.0.15".into(), vec![Family::SoundPoint]);
        assert!(
            c.holds("5.9.8", Some(Family::Vvx), "VVX410"),
            "by part number"
        );
        assert!(c.holds("5.9.8", Some(Family::Vvx), "vvx501"), "by model");
        assert!(!c.holds("5.9.8", Some(Family::Vvx), "VVX250"));
        assert!(
            !c.holds("6.0.0", Some(Family::Vvx), "VVX410"),
            "another release"
        );
        assert!(c.holds("4.0.15", Some(Family::SoundPoint), "SPIP550"));
        assert!(!c.holds("4.0.15", Some(Family::Vvx), "VVX410"));
    }
}
