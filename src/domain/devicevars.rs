//! Validation of the values templates take from admins: a device's template values
//! (`${LABEL}`, `${TL_TIMEZONE}`, `${TL_TIMEZONE_NAME}`, `${DEFAULT_PARKEXT}`,
//! `${OVERRIDE}`), the per-line fields of line templates, and custom variables.
//!
//! Values are XML-escaped when inserted, so they may hold any printable text; `${OVERRIDE}`
//! is inserted as written and therefore must be a well-formed fragment of `name="value"`
//! attributes. Every problem names its field.

use super::device::{DeviceVars, Line};
use super::template;
use crate::error::{Error, FieldError, Result};

/// Longest `${OVERRIDE}` fragment.
pub const OVERRIDE_MAX: usize = 8192;
/// Longest custom variable value.
pub const CUSTOM_VALUE_MAX: usize = 4096;

fn text(p: &mut Vec<FieldError>, field: &str, value: &str, max: usize) {
    if value.chars().count() > max {
        p.push(FieldError::new(
            field,
            format!("is longer than {max} characters"),
        ));
    } else if value.chars().any(char::is_control) {
        p.push(FieldError::new(field, "contains a control character"));
    }
}

/// Checks an `${OVERRIDE}` fragment: attributes only (`name="value"`, separated by
/// spaces), well-formed, each name a parameter name (letters, digits, `.`, `_`, `-`, with
/// a dot), none twice, no `device.*` (platform parameters go through the desired/confirmed
/// mechanism of docs/design.md §6), no variables.
pub fn check_override(fragment: &str) -> std::result::Result<(), FieldError> {
    let bad = |m: String| Err(FieldError::new("override", m));
    if fragment.is_empty() {
        return Ok(());
    }
    if fragment.len() > OVERRIDE_MAX {
        return bad(format!("is longer than {OVERRIDE_MAX} bytes"));
    }
    if fragment.contains("${") {
        return bad("may not contain variables (`${`): it is inserted as written".into());
    }
    let doc = format!("<x {fragment}/>");
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        ..Default::default()
    };
    let parsed = match roxmltree::Document::parse_with_options(&doc, options) {
        Ok(d) => d,
        Err(e) => {
            return bad(format!(
                "is not a list of name=\"value\" attributes ({e}); write e.g. \
                 reg.1.lineKeys=\"2\" feature.presence.enabled=\"1\""
            ));
        }
    };
    let root = parsed.root_element();
    if root.tag_name().name() != "x" || root.has_children() {
        return bad("is not a list of name=\"value\" attributes".into());
    }
    for a in root.attributes() {
        let name = a.name();
        let ok = a.namespace().is_none()
            && name.contains('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !ok {
            return bad(format!(
                "`{name}` is not a configuration parameter name (letters, digits, . _ -, with a dot)"
            ));
        }
        if name == "device" || name.starts_with("device.") {
            return bad(format!(
                "`{name}`: device.* parameters are set through the account and profile \
                 (they need device.set and confirmation), not through an override"
            ));
        }
    }
    Ok(())
}

/// Checks and trims a device's template values.
pub fn validate_device_vars(v: &DeviceVars) -> Result<DeviceVars> {
    let out = DeviceVars {
        label: v.label.trim().to_string(),
        tl_timezone: v.tl_timezone.trim().to_string(),
        tl_timezone_name: v.tl_timezone_name.trim().to_string(),
        default_parkext: v.default_parkext.trim().to_string(),
        override_attrs: v.override_attrs.trim().to_string(),
    };
    let mut p = Vec::new();
    text(&mut p, "label", &out.label, 255);
    text(&mut p, "tl_timezone", &out.tl_timezone, 64);
    text(&mut p, "tl_timezone_name", &out.tl_timezone_name, 128);
    let park_ok = out.default_parkext.len() <= 32
        && out
            .default_parkext
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"*#+_.-".contains(&b));
    if !park_ok {
        p.push(FieldError::new(
            "default_parkext",
            format!(
                "`{}` is not an extension (letters, digits, * # + _ . -, at most 32)",
                out.default_parkext
            ),
        ));
    }
    if out.override_attrs.contains('\n') || out.override_attrs.contains('\r') {
        // Newlines are fine in XML between attributes, but keep the fragment one line so
        // the file's line numbers (errors, lint) stay those of the template.
        p.push(FieldError::new(
            "override",
            "must be on one line (separate attributes with spaces)",
        ));
    } else if let Err(e) = check_override(&out.override_attrs) {
        p.push(e);
    }
    if p.is_empty() {
        Ok(out)
    } else {
        Err(Error::Invalid(p))
    }
}

/// Checks a SIP line's fields with the one line rule (`device::check_line_text`): unlike
/// ZTP's vendor extensions (the ZTP guide forbids `, & < > ' "` there), any printable text
/// is allowed: values are XML-escaped when rendered, and SIP passwords often hold such
/// characters.
pub fn validate_line(l: &Line) -> Result<()> {
    let mut p = Vec::new();
    if !(1..=64).contains(&l.line) {
        p.push(FieldError::new("line", "must be 1 to 64"));
    }
    for (field, value) in [
        ("sip_user", &l.auth_user_id),
        ("sip_password", &l.auth_password),
        ("line_label", &l.label),
        ("display_name", &l.display_name),
        ("extension", &l.extension),
        ("first_name", &l.first_name),
        ("last_name", &l.last_name),
    ] {
        super::device::check_line_text(field, value, &mut p);
    }
    if p.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(p))
    }
}

/// Checks a custom variable: upper-case letters, digits and `_` (1-64), not a built-in,
/// a printable value.
pub fn validate_custom_variable(name: &str, value: &str) -> Result<()> {
    let mut p = Vec::new();
    let name_ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if !name_ok {
        p.push(FieldError::new(
            "name",
            format!(
                "`{name}` is not a variable name (upper-case letters, digits and _, 1-64; \
                 write SYSLOG_SERVER, not ${{SYSLOG_SERVER}})"
            ),
        ));
    } else if template::is_builtin(name) {
        p.push(FieldError::new(
            "name",
            format!("`{name}` is a built-in variable and cannot be redefined"),
        ));
    }
    if value.chars().count() > CUSTOM_VALUE_MAX {
        p.push(FieldError::new(
            "value",
            format!("is longer than {CUSTOM_VALUE_MAX} characters"),
        ));
    } else if value.chars().any(|c| c.is_control() && c != '\t') {
        p.push(FieldError::new("value", "contains a control character"));
    } else if super::machine::owned(value.trim()) {
        // Used where a file names a parameter, it would set one the state machine owns.
        p.push(FieldError::new(
            "value",
            format!(
                "`{}` is a parameter zerotouch sets itself (the provisioning server, its \
                 credentials, the boot server, the CA, device.set): a variable may not name it",
                value.trim()
            ),
        ));
    }
    if p.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_fragments_are_attributes_only() {
        for ok in [
            "",
            r#"reg.1.lineKeys="2""#,
            r#"a.b="1" c.d='x &amp; y' e.f=">""#,
        ] {
            check_override(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            r#"a.b="1"/><y c.d="2""#,
            r#"a.b="1"></x><x"#,
            r#"a.b=1"#,
            r#"a.b="1" a.b="2""#,
            r#"nodot="1""#,
            r#"a.b="${PASSWORD}""#,
            r#"device.prov.serverName="x""#,
            r#"a.b="&undefined;""#,
            r#"xmlns:q="u" q:a.b="1""#,
        ] {
            let e = check_override(bad).expect_err(bad);
            assert_eq!(e.field, "override", "{bad}");
        }
    }

    #[test]
    fn every_bad_device_value_is_named() {
        let v = DeviceVars {
            label: "a\u{1}".into(),
            tl_timezone: "x".repeat(65),
            tl_timezone_name: String::new(),
            default_parkext: "70 0".into(),
            override_attrs: "oops".into(),
        };
        let text = validate_device_vars(&v).expect_err("bad").to_string();
        for f in ["label:", "tl_timezone:", "default_parkext:", "override:"] {
            assert!(text.contains(f), "{f} missing in {text}");
        }
        let multi = DeviceVars {
            override_attrs: "a.b=\"1\"\nc.d=\"2\"".into(),
            ..Default::default()
        };
        assert!(validate_device_vars(&multi).is_err());
    }

    #[test]
    fn values_are_trimmed() {
        let v = validate_device_vars(&DeviceVars {
            label: "  Lobby ".into(),
            override_attrs: r#" a.b="1" "#.into(),
            ..Default::default()
        })
        .expect("valid");
        assert_eq!(v.label, "Lobby");
        assert_eq!(v.override_attrs, r#"a.b="1""#);
    }

    #[test]
    fn custom_variable_names_follow_the_rules() {
        validate_custom_variable("SYSLOG_SERVER", "10.0.0.9").expect("ok");
        validate_custom_variable("X1", "").expect("ok");
        for bad in ["syslog", "${X}", "A-B", "", "MAC", "PROXY_SERVER"] {
            let e = validate_custom_variable(bad, "v")
                .expect_err(bad)
                .to_string();
            assert!(e.starts_with("name:"), "{bad}: {e}");
        }
        let e = validate_custom_variable("OK", "a\nb")
            .expect_err("newline")
            .to_string();
        assert!(e.starts_with("value:"), "{e}");
    }

    #[test]
    fn line_fields_are_checked() {
        let l = Line {
            line: 0,
            auth_password: "a\nb".into(),
            first_name: "x\u{7}".into(),
            ..Default::default()
        };
        let e = validate_line(&l).expect_err("bad").to_string();
        for f in ["line:", "sip_password:", "first_name:"] {
            assert!(e.contains(f), "{f} in {e}");
        }
        let hostile = Line {
            line: 2,
            auth_password: r#"p&ss<w"rd'"#.into(),
            ..Default::default()
        };
        validate_line(&hostile).expect("escaped when rendered");
    }
}
