//! What a phone reads in the files it is served: the master file's attributes (with the
//! per-model overrides and the substitutions the phone performs) and the parameters of a
//! configuration file. A file that is empty or not XML is an error, never an empty file.

use std::collections::BTreeMap;

/// The parts of a master file a phone acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Master {
    /// CONFIG_FILES entries in order, substitutions done.
    pub config_files: Vec<String>,
    /// APP_FILE_PATH for this model (empty: software management off).
    pub app_file_path: String,
    /// `*_DIRECTORY` attributes by name (`LOG_FILE_DIRECTORY`, ...).
    pub dirs: BTreeMap<String, String>,
}

impl Master {
    pub fn dir(&self, name: &str) -> &str {
        self.dirs.get(name).map(String::as_str).unwrap_or("")
    }
}

fn document(bytes: &[u8]) -> Result<roxmltree::Document<'_>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    if text.trim().is_empty() {
        return Err("empty file".into());
    }
    roxmltree::Document::parse(text).map_err(|e| format!("not XML: {e}"))
}

/// Reads a master file for a phone of model `token` (`VVX500`) with part number `part`.
/// An attribute suffixed with the model token (on any element) wins over the plain one
/// when it is not empty.
pub fn master(bytes: &[u8], mac: &str, token: &str, part: &str) -> Result<Master, String> {
    let doc = document(bytes)?;
    let attr = |name: &str| -> String {
        let specific = format!("{name}_{token}");
        let find = |n: &str| {
            doc.descendants()
                .filter(|e| e.is_element())
                .find_map(|e| e.attribute(n))
                .map(str::trim)
        };
        match find(&specific) {
            Some(v) if !v.is_empty() => v.to_string(),
            _ => find(name).unwrap_or("").to_string(),
        }
    };
    let subst = |s: &str| {
        s.replace("[PHONE_MAC_ADDRESS]", mac)
            .replace("[PHONE_PART_NUMBER]", part)
    };
    let mut dirs = BTreeMap::new();
    for e in doc.descendants().filter(|e| e.is_element()) {
        for a in e.attributes() {
            if a.name().ends_with("_DIRECTORY") {
                dirs.entry(a.name().to_string())
                    .or_insert_with(|| a.value().trim().to_string());
            }
        }
    }
    Ok(Master {
        config_files: attr("CONFIG_FILES")
            .split(',')
            .map(|f| subst(f.trim()))
            .filter(|f| !f.is_empty())
            .collect(),
        app_file_path: subst(&attr("APP_FILE_PATH")),
        dirs,
    })
}

/// Parameters of a configuration file: attributes with a dotted name on any element, in
/// document order (the first one wins within a file too). `<PHONE_CONFIG><ALL k="v"/>`
/// (Poly OS) reads the same way.
pub fn params(bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
    let doc = document(bytes)?;
    Ok(doc
        .descendants()
        .filter(|n| n.is_element())
        .flat_map(|n| {
            n.attributes()
                .filter(|a| a.name().contains('.'))
                .map(|a| (a.name().to_string(), a.value().to_string()))
                .collect::<Vec<_>>()
        })
        .collect())
}

/// Whether a body is a well-formed XML document (for optional files: directories, licences).
pub fn check_xml(bytes: &[u8]) -> Result<(), String> {
    document(bytes).map(|_| ())
}

/// The firmware version a path names: the directory the image sits in, when it looks like
/// a version (`firmware/5.9.8.1234/sip.ld` → `5.9.8.1234`).
pub fn version_in(path: &str) -> Option<String> {
    let mut segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    segs.pop()?;
    let dir = segs.pop()?;
    (dir.contains('.')
        && dir
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '_'))
    .then(|| dir.to_string())
}

/// The image name a phone asks for: the APP_FILE_PATH name prefixed with its part number
/// (`firmware/5.9.8/sip.ld` → `firmware/5.9.8/3111-44500-001.sip.ld`).
pub fn image_path(app_file_path: &str, part: &str) -> String {
    if part.is_empty() {
        return app_file_path.to_string();
    }
    match app_file_path.rsplit_once('/') {
        Some((dir, name)) => format!("{dir}/{part}.{name}"),
        None => format!("{part}.{app_file_path}"),
    }
}
