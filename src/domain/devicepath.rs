//! What a phone's request path names: its master file, a generated or profile file, an
//! upload, firmware, or a shared asset.
//!
//! Paths are checked strictly before anything touches the disk: percent-decoding happens
//! once, and a decoded path with `..`, `.`, empty segments, backslashes, NUL or other
//! control characters is refused, so `../`, `%2e%2e` and absolute paths never reach a file
//! system call. File names are matched against fixed patterns; anything else is not ours.

use percent_encoding::percent_decode_str;

use super::mac::Mac;

/// Kinds of files phones upload, with the directory the master file names for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UploadKind {
    Log,
    Override,
    Contacts,
    CallList,
    CoreDump,
    /// `<mac>-upload-CallServer.cfg` and similar phone-written configuration.
    Other,
}

impl UploadKind {
    pub const ALL: [UploadKind; 6] = [
        UploadKind::Log,
        UploadKind::Override,
        UploadKind::Contacts,
        UploadKind::CallList,
        UploadKind::CoreDump,
        UploadKind::Other,
    ];

    /// Directory under the base path (as named in the master file) and on disk.
    pub fn dir(self) -> &'static str {
        match self {
            UploadKind::Log => "logs",
            UploadKind::Override => "overrides",
            UploadKind::Contacts => "contacts",
            UploadKind::CallList => "calllists",
            UploadKind::CoreDump => "coredumps",
            UploadKind::Other => "other",
        }
    }

    pub fn from_dir(d: &str) -> Option<UploadKind> {
        UploadKind::ALL
            .into_iter()
            .find(|k| k.dir() == d && *k != UploadKind::Other)
    }
}

/// What a device request names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceFile {
    /// `<mac>.cfg`
    Master(Mac),
    /// `000000000000.cfg`
    DefaultMaster,
    /// `<mac>-device.cfg`
    Generated(Mac),
    /// `<mac>-profile.cfg` (index 0), `<mac>-profile-N.cfg` (index N-1)
    Profile(Mac, usize),
    /// `<mac>-stage.cfg`
    Stage(Mac),
    /// `<mac>-ztp.cfg`
    Ztp(Mac),
    /// `<mac>-tls-probe.cfg`: fetched over HTTPS, it confirms the phone trusts our CA.
    TlsProbe(Mac),
    /// A file a phone uploads (and may read back): kind, owner, file name.
    Upload(UploadKind, Mac, String),
    /// `firmware/<version>/<file>`
    Firmware { version: String, file: String },
    /// A shared asset under the assets directory (relative path segments).
    Asset(Vec<String>),
}

impl DeviceFile {
    /// The MAC the path itself names, if any.
    pub fn mac(&self) -> Option<Mac> {
        match self {
            DeviceFile::Master(m)
            | DeviceFile::Generated(m)
            | DeviceFile::Profile(m, _)
            | DeviceFile::Stage(m)
            | DeviceFile::Ztp(m)
            | DeviceFile::TlsProbe(m)
            | DeviceFile::Upload(_, m, _) => Some(*m),
            _ => None,
        }
    }
}

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// Traversal, control characters, bad encoding: 400.
    Invalid(&'static str),
}

/// Decodes and checks a raw path (without query), returning its segments.
pub fn segments(raw_path: &str) -> Result<Vec<String>, PathError> {
    let decoded = percent_decode_str(raw_path)
        .decode_utf8()
        .map_err(|_| PathError::Invalid("path is not UTF-8"))?;
    if decoded.contains('%')
        && percent_decode_str(&decoded)
            .decode_utf8()
            .is_ok_and(|d| d != decoded)
    {
        // Double encoding (`%252e%252e`): never decoded twice, never meaningful to a phone.
        return Err(PathError::Invalid("path is encoded twice"));
    }
    let Some(rest) = decoded.strip_prefix('/') else {
        return Err(PathError::Invalid("path must start with /"));
    };
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for seg in rest.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err(PathError::Invalid("empty, `.` or `..` path segment"));
        }
        if seg.chars().any(|c| c.is_control() || c == '\\' || c == ':') {
            return Err(PathError::Invalid("forbidden character in path"));
        }
        out.push(seg.to_string());
    }
    Ok(out)
}

/// A plain file or directory name: letters, digits, `.`, `_`, `-`, `+`, space; no leading dot.
pub fn is_plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-+ ".contains(c))
}

/// Splits `<12 hex>-rest` into the MAC and `rest`.
fn mac_prefixed(name: &str) -> Option<(Mac, &str)> {
    let (m, rest) = name.split_at_checked(12)?;
    let mac = Mac::from_bare(m)?;
    Some((mac, rest))
}

/// Classifies an upload file name (with or without its directory).
fn upload(dir: Option<UploadKind>, name: &str) -> Option<DeviceFile> {
    let (mac, rest) = mac_prefixed(name)?;
    if mac.is_zero() {
        return None;
    }
    let kind = match rest {
        "-boot.log" | "-app.log" => UploadKind::Log,
        "-phone.cfg" | "-web.cfg" | "-system.cfg" => UploadKind::Override,
        "-directory.xml" => UploadKind::Contacts,
        "-calls.xml" => UploadKind::CallList,
        "-upload-CallServer.cfg" => UploadKind::Other,
        r if dir == Some(UploadKind::CoreDump) && r.starts_with('-') && is_plain_name(r) => {
            UploadKind::CoreDump
        }
        r if dir == Some(UploadKind::Log)
            && r.ends_with(".log")
            && r.starts_with('-')
            && is_plain_name(r) =>
        {
            UploadKind::Log
        }
        _ => return None,
    };
    // A file in a directory must be of that directory's kind.
    if let Some(d) = dir
        && d != kind
    {
        return None;
    }
    Some(DeviceFile::Upload(kind, mac, name.to_string()))
}

/// Classifies the segments of a path below an account's base path. `None`: not a file
/// zerotouch serves (404).
pub fn classify(segs: &[String]) -> Option<DeviceFile> {
    match segs {
        [name] => classify_base(name),
        [dir, name] => {
            if let Some(kind) = UploadKind::from_dir(dir)
                && let Some(f) = upload(Some(kind), name)
            {
                return Some(f);
            }
            asset(segs)
        }
        [fw, version, file] if fw == "firmware" => (is_plain_name(version) && is_plain_name(file))
            .then(|| DeviceFile::Firmware {
                version: version.clone(),
                file: file.clone(),
            }),
        _ => asset(segs),
    }
}

fn classify_base(name: &str) -> Option<DeviceFile> {
    if let Some(m) = name.strip_suffix(".cfg").and_then(Mac::from_bare) {
        return Some(if m.is_zero() {
            DeviceFile::DefaultMaster
        } else {
            DeviceFile::Master(m)
        });
    }
    if let Some((mac, rest)) = mac_prefixed(name)
        && !mac.is_zero()
    {
        match rest {
            "-device.cfg" => return Some(DeviceFile::Generated(mac)),
            "-profile.cfg" => return Some(DeviceFile::Profile(mac, 0)),
            "-stage.cfg" => return Some(DeviceFile::Stage(mac)),
            "-ztp.cfg" => return Some(DeviceFile::Ztp(mac)),
            "-tls-probe.cfg" => return Some(DeviceFile::TlsProbe(mac)),
            _ => {}
        }
        if let Some(n) = rest
            .strip_prefix("-profile-")
            .and_then(|r| r.strip_suffix(".cfg"))
            && let Ok(n) = n.parse::<usize>()
            && (2..=64).contains(&n)
            && !n.to_string().starts_with('0')
        {
            return Some(DeviceFile::Profile(mac, n - 1));
        }
    }
    upload(None, name).or_else(|| asset(&[name.to_string()]))
}

fn asset(segs: &[String]) -> Option<DeviceFile> {
    (segs.len() <= 4 && segs.iter().all(|s| is_plain_name(s)))
        .then(|| DeviceFile::Asset(segs.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(path: &str) -> Option<DeviceFile> {
        classify(&segments(path).ok()?)
    }

    fn mac() -> Mac {
        Mac::from_bare("0004f2aabbcc").expect("mac")
    }

    #[test]
    fn phone_files_are_recognised_in_either_case() {
        assert_eq!(c("/0004f2aabbcc.cfg"), Some(DeviceFile::Master(mac())));
        assert_eq!(c("/0004F2AABBCC.cfg"), Some(DeviceFile::Master(mac())));
        assert_eq!(c("/000000000000.cfg"), Some(DeviceFile::DefaultMaster));
        assert_eq!(
            c("/0004f2aabbcc-device.cfg"),
            Some(DeviceFile::Generated(mac()))
        );
        assert_eq!(
            c("/0004f2aabbcc-profile.cfg"),
            Some(DeviceFile::Profile(mac(), 0))
        );
        assert_eq!(
            c("/0004f2aabbcc-profile-3.cfg"),
            Some(DeviceFile::Profile(mac(), 2))
        );
        assert_eq!(c("/0004f2aabbcc-stage.cfg"), Some(DeviceFile::Stage(mac())));
        assert_eq!(
            c("/0004f2aabbcc-tls-probe.cfg"),
            Some(DeviceFile::TlsProbe(mac()))
        );
        assert_eq!(
            c("/logs/0004f2aabbcc-app.log"),
            Some(DeviceFile::Upload(
                UploadKind::Log,
                mac(),
                "0004f2aabbcc-app.log".into()
            ))
        );
        assert_eq!(
            c("/0004f2aabbcc-boot.log"),
            Some(DeviceFile::Upload(
                UploadKind::Log,
                mac(),
                "0004f2aabbcc-boot.log".into()
            ))
        );
        assert_eq!(
            c("/overrides/0004f2aabbcc-phone.cfg"),
            Some(DeviceFile::Upload(
                UploadKind::Override,
                mac(),
                "0004f2aabbcc-phone.cfg".into()
            ))
        );
        assert_eq!(
            c("/firmware/5.9.8/3111-46162-001.sip.ld"),
            Some(DeviceFile::Firmware {
                version: "5.9.8".into(),
                file: "3111-46162-001.sip.ld".into()
            })
        );
        assert_eq!(
            c("/000000000000-directory.xml"),
            Some(DeviceFile::Asset(vec!["000000000000-directory.xml".into()]))
        );
    }

    #[test]
    fn files_in_the_wrong_directory_are_not_uploads() {
        assert!(!matches!(
            c("/logs/0004f2aabbcc-phone.cfg"),
            Some(DeviceFile::Upload(..))
        ));
        assert!(!matches!(
            c("/overrides/0004f2aabbcc-app.log"),
            Some(DeviceFile::Upload(..))
        ));
    }

    #[test]
    fn traversal_and_odd_paths_are_refused() {
        for p in [
            "/../etc/passwd",
            "/firmware/../../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/%2E%2E%2Fetc%2Fpasswd",
            "/firmware/5.9/%2e%2e%2f%2e%2e%2fzerotouch.db",
            "//etc/passwd",
            "/a/./b",
            "/a\\b",
            "/a%00b",
            "/%252e%252e/x",
            "/C:/x",
        ] {
            assert!(segments(p).is_err(), "{p} must be refused");
        }
        assert!(segments("relative").is_err());
    }

    #[test]
    fn unknown_names_are_assets_or_nothing() {
        assert_eq!(c("/.hidden"), None);
        assert_eq!(
            c("/0004f2aabbcc-profile-01.cfg"),
            Some(DeviceFile::Asset(vec![
                "0004f2aabbcc-profile-01.cfg".into()
            ]))
        );
        assert_eq!(c("/a/b/c/d/e"), None);
    }
}
