//! `${NAME}` variables in profile files and policy values.
//!
//! A file is checked when it is stored (every unknown variable is an error naming the
//! variable and its line) and expanded when it is served. Values are XML-escaped when
//! inserted, so a password containing `&`, `<` or `"` still yields a well-formed file;
//! `${OVERRIDE}` is the one exception (a fragment of `name="value"` attributes validated when
//! it is saved). `$${` is a literal `${`. Text without `${` is served byte for byte.

use std::collections::BTreeMap;

use super::xml::escape_attr;
use crate::error::{Error, FieldError};

/// Every built-in variable (DESIGN §9). Values a deployment has not configured expand to
/// their documented default, often empty.
pub const BUILTINS: &[&str] = &[
    // servers
    "REG_SERVER",
    "REG_SERVER_BACKUP",
    "PROXY_SERVER",
    "PROXY_SERVER_BACKUP",
    "PROV_SERVER",
    "PROV_PATH",
    "PROV_MODEL_SEGMENT",
    "FIRMWARE_SERVER",
    "FIRMWARE_PATH",
    "NTP_SERVER",
    "SERVER",
    // protocol and credentials
    "PROTO",
    "PROTO_URL",
    "FIRMWARE",
    "FIRMWARE_URL",
    "PROV_USER",
    "PROV_PASSWORD",
    "HTTP_USER",
    "HTTP_PASSWORD",
    "FTP_USER",
    "FTP_PASSWORD",
    // device
    "MAC",
    "mac",
    "TENANT",
    "TENANT_ID",
    "LABEL",
    "TL_TIMEZONE",
    "TL_TIMEZONE_NAME",
    "DEFAULT_PARKEXT",
    "OVERRIDE",
    // per line
    "LINE",
    "LINE_ZERO_BASED",
    "DISPLAY_NAME",
    "USERID",
    "PASSWORD",
    "EXTENSION",
    "FIRST_NAME",
    "LAST_NAME",
    "LINE_LABEL",
];

/// Whether `name` is a built-in variable.
pub fn is_builtin(name: &str) -> bool {
    BUILTINS.contains(&name)
}

/// Values for one expansion. Built-ins shadow custom variables.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    builtin: BTreeMap<&'static str, String>,
    custom: BTreeMap<String, String>,
}

impl Vars {
    /// Sets a built-in variable. Names not in `BUILTINS` are ignored (a programming error
    /// caught by the unit tests).
    pub fn set(&mut self, name: &'static str, value: impl Into<String>) {
        debug_assert!(is_builtin(name), "{name} is not a built-in variable");
        self.builtin.insert(name, value.into());
    }

    pub fn set_custom(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.custom.insert(name.into(), value.into());
    }

    /// The value of a variable: built-in first, then custom. Unset built-ins are empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        if let Some(v) = self.builtin.get(name) {
            return Some(v);
        }
        if let Some(v) = self.custom.get(name) {
            return Some(v);
        }
        is_builtin(name).then_some("")
    }

    fn knows(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

enum Piece<'a> {
    Text(&'a str),
    Var(&'a str, u32),
    LiteralDollarBrace,
}

/// Splits a template into text and variables; an unterminated or malformed `${` is an error
/// with its line.
fn pieces<'a>(file: &str, text: &'a str) -> Result<Vec<Piece<'a>>, FieldError> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut line = 1u32;
    while let Some(pos) = rest.find("${") {
        // `$${` is a literal `${`.
        let escaped = pos > 0 && rest.as_bytes()[pos - 1] == b'$';
        let before = if escaped {
            &rest[..pos - 1]
        } else {
            &rest[..pos]
        };
        line += before.matches('\n').count() as u32;
        if !before.is_empty() {
            out.push(Piece::Text(before));
        }
        if escaped {
            out.push(Piece::LiteralDollarBrace);
            rest = &rest[pos + 2..];
            continue;
        }
        let after = &rest[pos + 2..];
        let Some(end) = after.find('}') else {
            return Err(FieldError::new(
                file,
                format!("line {line}: `${{` without a closing `}}`"),
            ));
        };
        let name = &after[..end];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            let shown: String = name.chars().take(40).collect();
            return Err(FieldError::new(
                file,
                format!("line {line}: `${{{shown}}}` is not a variable name (letters, digits, _)"),
            ));
        }
        out.push(Piece::Var(name, line));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

/// Checks a template: every variable must be known to `vars` (built-ins always are).
/// Reports every unknown variable, each with its line.
pub fn check(file: &str, text: &str, vars: &Vars) -> Result<(), Error> {
    let pieces = pieces(file, text).map_err(|e| Error::Invalid(vec![e]))?;
    let problems: Vec<FieldError> = pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Var(name, line) if !vars.knows(name) => Some(FieldError::new(
                file,
                format!("line {line}: unknown variable `${{{name}}}`"),
            )),
            _ => None,
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(problems))
    }
}

/// Whether a file needs expansion at all (most do not, and are then served as stored).
pub fn has_variables(bytes: &[u8]) -> bool {
    bytes.windows(2).any(|w| w == b"${")
}

/// Expands a template. Unknown variables (possible only if data changed after the check)
/// expand to nothing and are returned, so the caller can log them.
pub fn expand(text: &str, vars: &Vars) -> (String, Vec<String>) {
    let Ok(pieces) = pieces("", text) else {
        return (text.to_string(), Vec::new());
    };
    let mut out = String::with_capacity(text.len() + 64);
    let mut unknown = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::LiteralDollarBrace => out.push_str("${"),
            Piece::Var("OVERRIDE", _) => out.push_str(vars.get("OVERRIDE").unwrap_or("")),
            Piece::Var(name, _) => match vars.get(name) {
                Some(v) => out.push_str(&escape_attr(v)),
                None => unknown.push(name.to_string()),
            },
        }
    }
    (out, unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_expand_and_are_escaped() {
        let mut v = Vars::default();
        v.set("MAC", "0004F2AABBCC");
        v.set("PASSWORD", r#"a&b<c"d"#);
        let (out, unknown) = expand(r#"<x a.b="${MAC}" c.d="${PASSWORD}"/>"#, &v);
        assert!(unknown.is_empty());
        assert_eq!(out, r#"<x a.b="0004F2AABBCC" c.d="a&amp;b&lt;c&quot;d"/>"#);
        crate::domain::xml::check_well_formed("x", out.as_bytes()).expect("valid XML");
    }

    #[test]
    fn double_dollar_is_a_literal() {
        let (out, _) = expand("a $${MAC} b", &Vars::default());
        assert_eq!(out, "a ${MAC} b");
    }

    #[test]
    fn unknown_variables_are_reported_with_their_lines() {
        let err = check(
            "p.cfg",
            "<a\n x.y=\"${NOPE}\"\n z.w=\"${MAC}${ALSO_NOPE}\"/>",
            &Vars::default(),
        )
        .expect_err("unknown");
        let text = err.to_string();
        assert!(
            text.contains("line 2: unknown variable `${NOPE}`"),
            "{text}"
        );
        assert!(
            text.contains("line 3: unknown variable `${ALSO_NOPE}`"),
            "{text}"
        );
    }

    #[test]
    fn malformed_references_are_errors() {
        assert!(check("p", "${unterminated", &Vars::default()).is_err());
        assert!(check("p", "${has space}", &Vars::default()).is_err());
    }

    #[test]
    fn custom_variables_rank_below_builtins() {
        let mut v = Vars::default();
        v.set("MAC", "builtin");
        v.set_custom("MAC", "custom");
        v.set_custom("SYSLOG_SERVER", "10.0.0.9");
        assert_eq!(v.get("MAC"), Some("builtin"));
        assert_eq!(v.get("SYSLOG_SERVER"), Some("10.0.0.9"));
        assert!(check("p", "${SYSLOG_SERVER}", &v).is_ok());
    }

    #[test]
    fn override_is_inserted_as_written() {
        let mut v = Vars::default();
        v.set("OVERRIDE", r#"a.b="1" c.d="2""#);
        let (out, _) = expand("<x ${OVERRIDE}/>", &v);
        assert_eq!(out, r#"<x a.b="1" c.d="2"/>"#);
    }
}
