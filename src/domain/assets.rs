//! Shared phone assets under `<data_dir>/assets/`, which phones read at the base path
//! (docs/design.md §4.1): the site directory (`000000000000-directory.xml`), site and per-device
//! licences (`000000000000-license.cfg`, `<mac>-license.cfg`), wallpapers, ring tones, and
//! language files in `<Folder>/<Language>/<file>.xml` folders (as UC Software ships them,
//! e.g. `VVXLocalization/German_Germany/VVX-dictionary.xml`).
//!
//! Only admins change them (the callers check); names are checked strictly against the
//! kind of file, and so are contents (well-formed XML, image and WAV signatures). Reading
//! and writing them: `actions::assets`.

use serde::Serialize;

use super::directory;
use super::mac::Mac;
use crate::error::{Error, Result};

/// The site directory's file name.
pub const DIRECTORY: &str = "000000000000-directory.xml";
/// The site licence's file name.
pub const SITE_LICENCE: &str = "000000000000-license.cfg";

/// What a shared file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AssetKind {
    Directory,
    SiteLicence,
    DeviceLicence,
    Wallpaper,
    RingTone,
    Language,
}

impl AssetKind {
    pub fn label(self) -> &'static str {
        match self {
            AssetKind::Directory => "site directory",
            AssetKind::SiteLicence => "site licence",
            AssetKind::DeviceLicence => "device licence",
            AssetKind::Wallpaper => "wallpaper",
            AssetKind::RingTone => "ring tone",
            AssetKind::Language => "language file",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AssetKind::Directory => "directory",
            AssetKind::SiteLicence => "site-licence",
            AssetKind::DeviceLicence => "device-licence",
            AssetKind::Wallpaper => "wallpaper",
            AssetKind::RingTone => "ring-tone",
            AssetKind::Language => "language",
        }
    }
}

pub fn plain(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && !s.starts_with(['.', '-'])
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The kind of a file at the top of the assets directory, from its name; anything else is
/// refused with what names are allowed.
pub fn classify(name: &str) -> Result<AssetKind> {
    let lower = name.to_ascii_lowercase();
    if name == DIRECTORY {
        return Ok(AssetKind::Directory);
    }
    if name == SITE_LICENCE {
        return Ok(AssetKind::SiteLicence);
    }
    if let Some(m) = name.strip_suffix("-license.cfg") {
        return match Mac::from_bare(m) {
            Some(mac) if !mac.is_zero() && m == mac.as_str() => Ok(AssetKind::DeviceLicence),
            _ => Err(Error::invalid(
                "name",
                format!(
                    "`{name}`: a device licence is named <mac>-license.cfg with the MAC as 12 lowercase hex digits"
                ),
            )),
        };
    }
    if plain(name, 64) {
        if [".jpg", ".jpeg", ".png", ".bmp"]
            .iter()
            .any(|e| lower.ends_with(e))
        {
            return Ok(AssetKind::Wallpaper);
        }
        if lower.ends_with(".wav") {
            return Ok(AssetKind::RingTone);
        }
    }
    Err(Error::invalid(
        "name",
        format!(
            "`{}` is not a shared phone file: use {DIRECTORY}, {SITE_LICENCE}, <mac>-license.cfg, \
             a wallpaper (.jpg, .png, .bmp) or a ring tone (.wav), named with letters, digits, . _ -",
            name.escape_default()
        ),
    ))
}

/// Checks a language file's place, `<Folder>/<Language>/<file>.xml`, and returns the path.
pub fn language_path(folder: &str, language: &str, file: &str) -> Result<String> {
    let mut p = Vec::new();
    for (field, v) in [("folder", folder), ("language", language)] {
        if !plain(v, 64) || v.contains('.') {
            p.push(crate::error::FieldError::new(
                field,
                format!("`{}` must be 1-64 letters, digits, _ or - (e.g. VVXLocalization, German_Germany)", v.escape_default()),
            ));
        }
    }
    if !plain(file, 96) || !file.to_ascii_lowercase().ends_with(".xml") {
        p.push(crate::error::FieldError::new(
            "file",
            format!(
                "`{}` must be an .xml file named with letters, digits, . _ -",
                file.escape_default()
            ),
        ));
    }
    if p.is_empty() {
        Ok(format!("{folder}/{language}/{file}"))
    } else {
        Err(Error::Invalid(p))
    }
}

/// Checks that the bytes are what the kind says.
pub fn check_content(kind: AssetKind, name: &str, bytes: &[u8]) -> Result<()> {
    let bad = |what: &str| Err(Error::invalid(name, format!("is not {what}")));
    match kind {
        AssetKind::Directory => directory::from_xml(name, bytes).map(|_| ()),
        AssetKind::SiteLicence | AssetKind::DeviceLicence | AssetKind::Language => {
            crate::domain::xml::check_well_formed(name, bytes)
        }
        AssetKind::Wallpaper => {
            let ok = bytes.starts_with(&[0xff, 0xd8, 0xff])
                || bytes.starts_with(b"\x89PNG\r\n\x1a\n")
                || bytes.starts_with(b"BM");
            if ok {
                Ok(())
            } else {
                bad("a JPEG, PNG or BMP image")
            }
        }
        AssetKind::RingTone => {
            if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WAVE" {
                Ok(())
            } else {
                bad("a WAV sound")
            }
        }
    }
}

/// A shared file as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssetFile {
    /// Path below the assets directory (and below the base path phones use).
    pub path: String,
    pub kind: AssetKind,
    pub size: u64,
    /// Unix time of the last change.
    pub modified: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_by_kind() {
        assert_eq!(classify(DIRECTORY).expect("dir"), AssetKind::Directory);
        assert_eq!(
            classify("0004f2aabbcc-license.cfg").expect("lic"),
            AssetKind::DeviceLicence
        );
        assert_eq!(classify("Leaf.jpg").expect("img"), AssetKind::Wallpaper);
        assert_eq!(classify("Ring-1.wav").expect("wav"), AssetKind::RingTone);
        for bad in [
            "0004F2AABBCC-license.cfg",
            "../x.jpg",
            ".hidden.jpg",
            "a b.jpg",
            "site.cfg",
            "x.exe",
            "0004f2aabbcc-phone.cfg",
        ] {
            assert!(classify(bad).is_err(), "{bad}");
        }
        assert!(language_path("VVXLocalization", "German_Germany", "VVX-dictionary.xml").is_ok());
        assert!(language_path("..", "x", "a.xml").is_err());
        assert!(language_path("VVXLocalization", "German_Germany", "a.exe").is_err());
    }
}
