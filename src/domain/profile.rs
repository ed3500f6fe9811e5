//! Profiles: the ZTP Profile Editor's fields and the configuration files a profile serves.
//!
//! Validation follows the ZTP guide (Profile Editor fields, Table 3's character rules) with the
//! decisions of docs/design.md §8; every problem names its field. Files are checked for well-formed
//! XML and for unknown `${VARIABLES}` when stored (ZTP does no checking: we do).

use std::collections::BTreeMap;

use serde::Serialize;

use super::polycom::models::{Family, UCS_VENDOR_MODEL, VIDEO_VENDOR_MODEL};
use super::{template, xml};
use crate::error::{Error, FieldError, Result};

/// Polling choice of the Profile Editor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum Polling {
    /// Leave the phone's setting alone.
    #[default]
    None,
    Enable,
    Disable,
}

impl Polling {
    pub fn as_str(self) -> &'static str {
        match self {
            Polling::None => "none",
            Polling::Enable => "enable",
            Polling::Disable => "disable",
        }
    }

    pub fn parse(s: &str) -> Result<Polling> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "" => Ok(Polling::None),
            "enable" | "1" => Ok(Polling::Enable),
            "disable" | "0" => Ok(Polling::Disable),
            _ => Err(Error::invalid(
                "polling",
                format!("`{s}` is not none, enable or disable"),
            )),
        }
    }
}

/// The boot-server DHCP option setting (`device.dhcp.bootSrvUseOpt`).
pub const BOOT_SERVER_OPTIONS: &[&str] = &["Default", "Custom", "Static", "CustomAndDefault"];
/// Option 60 types (`device.dhcp.option60Type`) (verify the value spelling on a device).
pub const OPTION60_TYPES: &[&str] = &["ASCII", "Binary"];

/// A profile's editable fields.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ProfileFields {
    pub name: String,
    pub vendor_model: String,
    /// Provisioning server address; may embed `user:pass@` and a port.
    pub prov_server: String,
    pub prov_user: String,
    pub prov_password: String,
    pub polling: Polling,
    /// One of `BOOT_SERVER_OPTIONS`, or empty to leave the phone's setting alone.
    pub boot_server_option: String,
    /// One of `OPTION60_TYPES`, or empty.
    pub option60_type: String,
    /// `enable`, `disable` or empty.
    pub quick_setup: String,
    /// A UC Software language name such as `English_United_States`, or empty.
    pub language: String,
    /// Software version per model family.
    pub software: BTreeMap<Family, String>,
}

/// A stored profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Profile {
    pub id: i64,
    pub account_id: i64,
    #[serde(flatten)]
    pub fields: ProfileFields,
    pub files: Vec<ProfileFile>,
}

/// One configuration file of a profile, in CONFIG_FILES order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProfileFile {
    pub file_name: String,
    #[serde(skip)]
    pub content: Vec<u8>,
    pub sha256: String,
}

impl Profile {
    /// RealPresence Group systems are redirect-only: no file, no software version.
    pub fn is_video_endpoint(&self) -> bool {
        self.fields.vendor_model == VIDEO_VENDOR_MODEL
    }
}

/// Checks a name against the rule shared by profile names (2–50 letters, digits, `_`, `.`).
pub fn check_profile_name(field: &str, name: &str, problems: &mut Vec<FieldError>) {
    let len = name.chars().count();
    if !(2..=50).contains(&len) {
        problems.push(FieldError::new(field, "must be 2 to 50 characters"));
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        problems.push(FieldError::new(
            field,
            format!("`{name}`: only letters, digits, `_` and `.` are allowed"),
        ));
    }
}

/// Checks a vendor model: the two named models verbatim, otherwise the ZTP guide's rule
/// `^[a-zA-Z0-9._-]*$`, 1 to 50 characters.
pub fn check_vendor_model(field: &str, model: &str, problems: &mut Vec<FieldError>) {
    if model == UCS_VENDOR_MODEL || model == VIDEO_VENDOR_MODEL {
        return;
    }
    let ok = (1..=50).contains(&model.len())
        && model
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !ok {
        problems.push(FieldError::new(
            field,
            format!(
                "`{model}` is not a vendor model (use {UCS_VENDOR_MODEL} or {VIDEO_VENDOR_MODEL}, \
                 or 1-50 letters, digits, `.`, `_`, `-`)"
            ),
        ));
    }
}

/// The ZTP guide: vendor-extension values allow every character except `, & < > ' "`.
pub fn check_extension_value(field: &str, value: &str, problems: &mut Vec<FieldError>) {
    if let Some(c) = value
        .chars()
        .find(|c| ",&<>'\"".contains(*c) || c.is_control())
    {
        problems.push(FieldError::new(
            field,
            format!(
                "contains `{}`, which is not allowed (no , & < > ' \" or control characters)",
                c.escape_default()
            ),
        ));
    } else if value.len() > 255 {
        problems.push(FieldError::new(field, "is longer than 255 characters"));
    }
}

/// Checks a software version string.
pub fn check_version(field: &str, version: &str, problems: &mut Vec<FieldError>) {
    let ok = (1..=40).contains(&version.len())
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !version.starts_with('.');
    if !ok {
        problems.push(FieldError::new(
            field,
            format!("`{version}` is not a software version (e.g. 5.9.8.1234)"),
        ));
    }
}

impl ProfileFields {
    /// Every problem with the fields, each naming its field.
    pub fn validate(&self) -> Result<()> {
        let mut p = Vec::new();
        check_profile_name("name", &self.name, &mut p);
        check_vendor_model("vendor_model", &self.vendor_model, &mut p);
        if !self.prov_server.is_empty() {
            check_extension_value("prov_server", &self.prov_server, &mut p);
            super::provserver::check_address("prov_server", &self.prov_server, &mut p);
        }
        check_extension_value("prov_user", &self.prov_user, &mut p);
        check_extension_value("prov_password", &self.prov_password, &mut p);
        if !self.boot_server_option.is_empty()
            && !BOOT_SERVER_OPTIONS.contains(&self.boot_server_option.as_str())
        {
            p.push(FieldError::new(
                "boot_server_option",
                format!(
                    "`{}` is not one of {}",
                    self.boot_server_option,
                    BOOT_SERVER_OPTIONS.join(", ")
                ),
            ));
        }
        if !self.option60_type.is_empty() && !OPTION60_TYPES.contains(&self.option60_type.as_str())
        {
            p.push(FieldError::new(
                "option60_type",
                format!(
                    "`{}` is not one of {}",
                    self.option60_type,
                    OPTION60_TYPES.join(", ")
                ),
            ));
        }
        if !matches!(self.quick_setup.as_str(), "" | "enable" | "disable") {
            p.push(FieldError::new(
                "quick_setup",
                "must be enable, disable or empty",
            ));
        }
        let language_ok = self.language.len() <= 64
            && self
                .language
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !language_ok {
            p.push(FieldError::new(
                "language",
                "must be a UC Software language name such as English_United_States",
            ));
        }
        for (family, version) in &self.software {
            check_version(&format!("software.{family}"), version, &mut p);
        }
        if self.vendor_model == VIDEO_VENDOR_MODEL && !self.software.is_empty() {
            p.push(FieldError::new(
                "software",
                "does not apply to Polycom Video Endpoint (RealPresence Group) profiles",
            ));
        }
        if p.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(p))
        }
    }
}

/// Checks a configuration file for a profile: a plain file name, well-formed XML, known
/// variables. Returns the file ready to store.
pub fn check_file(file_name: &str, content: Vec<u8>, vars: &template::Vars) -> Result<ProfileFile> {
    let ok_name = (1..=100).contains(&file_name.len())
        && file_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !file_name.starts_with('.');
    if !ok_name {
        return Err(Error::invalid(
            "file",
            format!("`{file_name}` is not a plain file name (letters, digits, `.`, `_`, `-`)"),
        ));
    }
    if template::has_variables(&content) {
        let Ok(text) = std::str::from_utf8(&content) else {
            // The XML check names the offending byte.
            return xml::check_well_formed(file_name, &content).map(|_| unreachable_file());
        };
        template::check(file_name, text, vars)?;
        // Variables may sit in attribute names (`reg.${LINE}.address`) and `${OVERRIDE}`
        // inside a tag: the XML check sees the file with sample values.
        let sample = template::check_form(text);
        xml::check_well_formed(file_name, sample.as_bytes())?;
        check_owned(file_name, sample.as_bytes())?;
    } else {
        xml::check_well_formed(file_name, &content)?;
        check_owned(file_name, &content)?;
    }
    let sha256 = super::sha256_hex(&content);
    Ok(ProfileFile {
        file_name: file_name.to_string(),
        content,
        sha256,
    })
}

/// Refuses a file that sets a parameter the state machine owns (`machine::owned`, I6),
/// naming the file, the line and the parameter.
fn check_owned(file_name: &str, bytes: &[u8]) -> Result<()> {
    if super::regress::on(super::regress::Defect::OwnedInProfile) {
        return Ok(());
    }
    let found = xml::parse_params(file_name, bytes)?;
    let problems =
        super::machine::owned_problems(file_name, found.iter().map(|p| (p.name.as_str(), p.line)));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(problems))
    }
}

/// Never built: `check_well_formed` refuses text that is not UTF-8.
fn unreachable_file() -> ProfileFile {
    ProfileFile {
        file_name: String::new(),
        content: Vec::new(),
        sha256: String::new(),
    }
}

/// Parses `FAMILY=VERSION` pairs for a profile's software versions.
pub fn parse_software(
    pairs: &[String],
) -> Result<BTreeMap<crate::domain::polycom::models::Family, String>> {
    let mut out = BTreeMap::new();
    for pair in pairs {
        let Some((family, version)) = pair.split_once('=') else {
            return Err(Error::invalid(
                "software",
                format!("`{pair}` is not FAMILY=VERSION (e.g. VVX=5.9.8.1234)"),
            ));
        };
        let f =
            crate::domain::polycom::models::Family::from_name(family.trim()).ok_or_else(|| {
                let names: Vec<&str> = crate::domain::polycom::models::Family::ALL
                    .iter()
                    .map(|f| f.name())
                    .collect();
                Error::invalid(
                    "software",
                    format!("`{family}` is not a model family ({})", names.join(", ")),
                )
            })?;
        out.insert(f, version.trim().to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> ProfileFields {
        ProfileFields {
            name: "profile1".into(),
            vendor_model: UCS_VENDOR_MODEL.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_plain_profile_is_valid() {
        fields().validate().expect("valid");
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut f = fields();
        f.name = "x".into();
        f.vendor_model = "Bad Model!".into();
        f.boot_server_option = "Sometimes".into();
        f.prov_user = "a,b".into();
        f.software.insert(Family::Vvx, "../5.9".into());
        let text = f.validate().expect_err("invalid").to_string();
        for field in [
            "name:",
            "vendor_model:",
            "boot_server_option:",
            "prov_user:",
            "software.VVX:",
        ] {
            assert!(text.contains(field), "{field} missing in {text}");
        }
    }

    #[test]
    fn video_endpoint_model_with_space_is_accepted_verbatim() {
        let mut f = fields();
        f.vendor_model = VIDEO_VENDOR_MODEL.into();
        f.validate().expect("valid");
    }

    #[test]
    fn templates_with_variables_in_names_and_line_blocks_are_accepted() {
        let text = "<polycomConfig ${OVERRIDE}>\n<!-- zerotouch:lines -->\n\
                    <reg reg.${LINE}.address=\"${USERID}\"/>\n<!-- zerotouch:end-lines -->\n\
                    </polycomConfig>";
        check_file(
            "lines.cfg",
            text.as_bytes().to_vec(),
            &template::Vars::default(),
        )
        .expect("accepted");
        let err = check_file(
            "lines.cfg",
            b"<a x.y=\"${MAC}\">\n<b></a>".to_vec(),
            &template::Vars::default(),
        )
        .expect_err("broken XML");
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn broken_files_are_refused_by_name() {
        let err = check_file(
            "site.cfg",
            b"<a><b></a>".to_vec(),
            &template::Vars::default(),
        )
        .expect_err("broken");
        assert!(err.to_string().starts_with("site.cfg:"), "{err}");
        let err = check_file("../x.cfg", b"<a/>".to_vec(), &template::Vars::default())
            .expect_err("bad name");
        assert!(err.to_string().starts_with("file:"), "{err}");
    }
}
