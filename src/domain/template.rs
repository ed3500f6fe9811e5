//! `${NAME}` variables in profile files and policy values, and line templates.
//!
//! A file is checked when it is stored (every unknown variable is an error naming the
//! variable and its line) and expanded when it is served. Values are XML-escaped when
//! inserted, so a password containing `&`, `<` or `"` still yields a well-formed file;
//! `${OVERRIDE}` is the one exception (a fragment of `name="value"` attributes validated when
//! it is saved). `$${` is a literal `${`. Text without `${` is served byte for byte.
//!
//! A **line block** is the part of a file between the comments `<!-- zerotouch:lines -->`
//! and `<!-- zerotouch:end-lines -->`: it is rendered once per line of the device (in line
//! order, none for a device without lines), with the per-line variables (`LINE`,
//! `LINE_ZERO_BASED`, `DISPLAY_NAME`, `USERID`, `PASSWORD`, `EXTENSION`, `FIRST_NAME`,
//! `LAST_NAME`, `LINE_LABEL`, and `LABEL` = the line label) of that line. Outside a block
//! the per-line variables are those of line 1. The marker comments stay in the output, so
//! a reader sees where the lines came from. What values variables take is decided by
//! `domain::variables`; this module only parses, checks and expands.

use std::collections::BTreeMap;

use super::xml::escape_attr;
use crate::error::{Error, FieldError};

/// Every built-in variable (docs/design.md §9). Values a deployment has not configured expand to
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

/// The variables that take the values of each line inside a line block. `LABEL` is the
/// device description outside a block and the line label inside one.
pub const LINE_VARIABLES: &[&str] = &[
    "LINE",
    "LINE_ZERO_BASED",
    "DISPLAY_NAME",
    "USERID",
    "PASSWORD",
    "EXTENSION",
    "FIRST_NAME",
    "LAST_NAME",
    "LINE_LABEL",
    "LABEL",
];

/// The comment that opens a line block (inside `<!-- -->`).
pub const LINES_BEGIN: &str = "zerotouch:lines";
/// The comment that closes a line block.
pub const LINES_END: &str = "zerotouch:end-lines";

/// Whether `name` is a built-in variable.
pub fn is_builtin(name: &str) -> bool {
    BUILTINS.contains(&name)
}

/// Whether a variable's value is a secret (masked in previews and logs): passwords, the
/// provisioning URL (it embeds the password) and custom variables named like secrets.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper.contains("PASSWORD")
        || upper.contains("SECRET")
        || upper.ends_with("_KEY")
        || upper == "PROTO_URL"
}

/// A value with the place it came from (a setting, a device field, a default).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Value {
    pub value: String,
    pub source: String,
}

/// Values for one expansion. Built-ins shadow custom variables.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    builtin: BTreeMap<&'static str, Value>,
    custom: BTreeMap<String, String>,
}

impl Vars {
    /// Sets a built-in variable (source: zerotouch). Names not in `BUILTINS` are a
    /// programming error caught by the unit tests.
    pub fn set(&mut self, name: &'static str, value: impl Into<String>) {
        self.set_from(name, value, "zerotouch");
    }

    /// Sets a built-in variable and says where its value came from.
    pub fn set_from(
        &mut self,
        name: &'static str,
        value: impl Into<String>,
        source: impl Into<String>,
    ) {
        debug_assert!(is_builtin(name), "{name} is not a built-in variable");
        self.builtin.insert(
            name,
            Value {
                value: value.into(),
                source: source.into(),
            },
        );
    }

    pub fn set_custom(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.custom.insert(name.into(), value.into());
    }

    /// The value of a variable: built-in first, then custom. Unset built-ins are empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        if let Some(v) = self.builtin.get(name) {
            return Some(&v.value);
        }
        if let Some(v) = self.custom.get(name) {
            return Some(v);
        }
        is_builtin(name).then_some("")
    }

    /// Where a variable's value comes from, for previews.
    pub fn source(&self, name: &str) -> Option<String> {
        if let Some(v) = self.builtin.get(name) {
            return Some(v.source.clone());
        }
        if self.custom.contains_key(name) {
            return Some(format!("custom variable {name}"));
        }
        is_builtin(name).then(|| "not set: empty".to_string())
    }

    /// The custom variables' names.
    pub fn custom_names(&self) -> impl Iterator<Item = &str> {
        self.custom.keys().map(String::as_str)
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

/// A parsed template: text outside line blocks, and the line blocks.
enum Part<'a> {
    Plain(Vec<Piece<'a>>),
    /// A line block; the markers are kept as text around it.
    Lines {
        open: &'a str,
        body: Vec<Piece<'a>>,
        close: &'a str,
    },
}

/// Splits text into text and variables; an unterminated or malformed `${` is an error
/// with its line. `line` is the line `text` starts on.
fn pieces<'a>(file: &str, text: &'a str, mut line: u32) -> Result<Vec<Piece<'a>>, FieldError> {
    let mut out = Vec::new();
    let mut rest = text;
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

/// Finds the line-block marker comments: (start, end, is_begin, line) of each.
fn markers(text: &str) -> Vec<(usize, usize, bool, u32)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(rel) = text[from..].find("<!--") {
        let start = from + rel;
        let Some(close) = text[start + 4..].find("-->") else {
            break;
        };
        let end = start + 4 + close + 3;
        let inner = text[start + 4..end - 3].trim();
        let line = text[..start].matches('\n').count() as u32 + 1;
        if inner == LINES_BEGIN {
            out.push((start, end, true, line));
        } else if inner == LINES_END {
            out.push((start, end, false, line));
        }
        from = end;
    }
    out
}

fn line_at(text: &str, offset: usize) -> u32 {
    text[..offset].matches('\n').count() as u32 + 1
}

/// Parses a template into plain parts and line blocks; every problem with its line.
fn parse<'a>(file: &str, text: &'a str) -> Result<Vec<Part<'a>>, Vec<FieldError>> {
    let mut parts = Vec::new();
    let mut problems = Vec::new();
    let mut pos = 0;
    let mut open: Option<(usize, usize, u32)> = None;
    let push_plain = |parts: &mut Vec<Part<'a>>, problems: &mut Vec<FieldError>, a, b| {
        if a < b {
            match pieces(file, &text[a..b], line_at(text, a)) {
                Ok(p) => parts.push(Part::Plain(p)),
                Err(e) => problems.push(e),
            }
        }
    };
    for (start, end, begin, line) in markers(text) {
        match (begin, open) {
            (true, Some((_, _, outer))) => problems.push(FieldError::new(
                file,
                format!("line {line}: a line block inside the line block opened on line {outer}"),
            )),
            (true, None) => {
                push_plain(&mut parts, &mut problems, pos, start);
                open = Some((start, end, line));
                pos = end;
            }
            (false, None) => problems.push(FieldError::new(
                file,
                format!("line {line}: `<!-- {LINES_END} -->` without `<!-- {LINES_BEGIN} -->`"),
            )),
            (false, Some((ostart, oend, oline))) => {
                match pieces(file, &text[oend..start], line_at(text, oend)) {
                    Ok(body) => {
                        let uses_line = body
                            .iter()
                            .any(|p| matches!(p, Piece::Var("LINE" | "LINE_ZERO_BASED", _)));
                        if !uses_line {
                            problems.push(FieldError::new(
                                file,
                                format!(
                                    "line {oline}: the line block never uses ${{LINE}} or \
                                     ${{LINE_ZERO_BASED}}, so every line would set the same \
                                     parameters"
                                ),
                            ));
                        }
                        parts.push(Part::Lines {
                            open: &text[ostart..oend],
                            body,
                            close: &text[start..end],
                        });
                    }
                    Err(e) => problems.push(e),
                }
                open = None;
                pos = end;
            }
        }
    }
    if let Some((_, _, line)) = open {
        problems.push(FieldError::new(
            file,
            format!("line {line}: the line block is not closed with `<!-- {LINES_END} -->`"),
        ));
    }
    push_plain(&mut parts, &mut problems, pos, text.len());
    if problems.is_empty() {
        Ok(parts)
    } else {
        Err(problems)
    }
}

/// Whether a file has line blocks.
pub fn has_line_blocks(text: &str) -> bool {
    markers(text).iter().any(|m| m.2)
}

/// Checks a template: syntax, line blocks, and every variable must be known to `vars`
/// (built-ins always are). Reports every problem, each with its line.
pub fn check(file: &str, text: &str, vars: &Vars) -> Result<(), Error> {
    let parts = parse(file, text).map_err(Error::Invalid)?;
    let mut problems = Vec::new();
    for part in &parts {
        let pieces = match part {
            Part::Plain(p) => p,
            Part::Lines { body, .. } => body,
        };
        for p in pieces {
            if let Piece::Var(name, line) = p
                && !vars.knows(name)
            {
                problems.push(FieldError::new(
                    file,
                    format!("line {line}: unknown variable `${{{name}}}`"),
                ));
            }
        }
    }
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

/// One variable an expansion used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Used {
    pub name: String,
    /// The line of the template it is on.
    pub line: u32,
    /// The device's line number, inside a line block.
    pub device_line: Option<u32>,
    pub value: String,
    pub source: String,
}

/// The result of an expansion.
#[derive(Debug, Clone, Default)]
pub struct Expansion {
    pub text: String,
    /// Unknown variables (possible only if data changed after the check); they expand to
    /// nothing.
    pub unknown: Vec<String>,
    /// Every variable used, in order.
    pub used: Vec<Used>,
}

fn expand_pieces(pieces: &[Piece<'_>], vars: &Vars, device_line: Option<u32>, out: &mut Expansion) {
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.text.push_str(t),
            Piece::LiteralDollarBrace => out.text.push_str("${"),
            Piece::Var(name, line) => match vars.get(name) {
                Some(v) => {
                    if *name == "OVERRIDE" {
                        out.text.push_str(v);
                    } else {
                        out.text.push_str(&escape_attr(v));
                    }
                    out.used.push(Used {
                        name: (*name).to_string(),
                        line: *line,
                        device_line,
                        value: v.to_string(),
                        source: vars.source(name).unwrap_or_default(),
                    });
                }
                None => out.unknown.push((*name).to_string()),
            },
        }
    }
}

/// Expands a template: `vars` outside line blocks, each of `lines` (one per device line,
/// with its line number) inside them.
pub fn render(text: &str, vars: &Vars, lines: &[(u32, Vars)]) -> Expansion {
    let mut out = Expansion {
        text: String::with_capacity(text.len() + 64),
        ..Default::default()
    };
    let Ok(parts) = parse("", text) else {
        out.text = text.to_string();
        return out;
    };
    for part in &parts {
        match part {
            Part::Plain(p) => expand_pieces(p, vars, None, &mut out),
            Part::Lines { open, body, close } => {
                out.text.push_str(open);
                for (n, line_vars) in lines {
                    expand_pieces(body, line_vars, Some(*n), &mut out);
                }
                out.text.push_str(close);
            }
        }
    }
    out
}

/// Expands a template without device lines (line blocks render to nothing). Returns the
/// text and the unknown variables.
pub fn expand(text: &str, vars: &Vars) -> (String, Vec<String>) {
    let e = render(text, vars, &[]);
    (e.text, e.unknown)
}

/// The file as the XML checks see it: every variable replaced by a harmless sample
/// (`LINE` 1, `LINE_ZERO_BASED` 0, `OVERRIDE` nothing, others `x`) and each line block
/// rendered once, so line numbers stay those of the template. Lets a template use
/// variables in attribute names (`reg.${LINE}.address`) and `${OVERRIDE}` inside a tag.
pub fn check_form(text: &str) -> String {
    let Ok(parts) = parse("", text) else {
        return text.to_string();
    };
    let sample = |name: &str| match name {
        "LINE" => "1",
        "LINE_ZERO_BASED" => "0",
        "OVERRIDE" => "",
        _ => "x",
    };
    let mut out = String::with_capacity(text.len());
    let put = |pieces: &[Piece<'_>], out: &mut String| {
        for p in pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::LiteralDollarBrace => out.push_str("${"),
                Piece::Var(name, _) => out.push_str(sample(name)),
            }
        }
    };
    for part in &parts {
        match part {
            Part::Plain(p) => put(p, &mut out),
            Part::Lines { open, body, close } => {
                out.push_str(open);
                put(body, &mut out);
                out.push_str(close);
            }
        }
    }
    out
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
        assert_eq!(
            v.source("SYSLOG_SERVER").as_deref(),
            Some("custom variable SYSLOG_SERVER")
        );
        assert!(check("p", "${SYSLOG_SERVER}", &v).is_ok());
    }

    #[test]
    fn override_is_inserted_as_written() {
        let mut v = Vars::default();
        v.set("OVERRIDE", r#"a.b="1" c.d="2""#);
        let (out, _) = expand("<x ${OVERRIDE}/>", &v);
        assert_eq!(out, r#"<x a.b="1" c.d="2"/>"#);
    }

    const LINES: &str = "<c>\n<!-- zerotouch:lines -->\n<reg reg.${LINE}.address=\"${USERID}\" \
                         reg.${LINE}.label=\"${LABEL}\"/>\n<!-- zerotouch:end-lines -->\n\
                         <d x.label=\"${LABEL}\"/>\n</c>";

    fn line(n: u32, user: &str, label: &str) -> (u32, Vars) {
        let mut v = Vars::default();
        v.set("LINE", n.to_string());
        v.set_from("USERID", user, format!("line {n}"));
        v.set("LABEL", label);
        (n, v)
    }

    #[test]
    fn a_line_block_is_rendered_once_per_line() {
        let mut outer = Vars::default();
        outer.set("LABEL", "Lobby phone");
        let lines = [line(1, "100", "Front"), line(2, "101", "Back & side")];
        let e = render(LINES, &outer, &lines);
        let params = crate::domain::xml::parse_params("x", e.text.as_bytes()).expect("xml");
        let get = |n: &str| {
            params
                .iter()
                .find(|p| p.name == n)
                .map(|p| p.value.as_str())
        };
        assert_eq!(get("reg.1.address"), Some("100"));
        assert_eq!(get("reg.2.address"), Some("101"));
        assert_eq!(get("reg.2.label"), Some("Back & side"));
        assert_eq!(
            get("x.label"),
            Some("Lobby phone"),
            "LABEL outside = device"
        );
        assert!(e.text.contains("<!-- zerotouch:lines -->"));
        let used: Vec<_> = e
            .used
            .iter()
            .filter(|u| u.name == "USERID")
            .map(|u| (u.device_line, u.line, u.source.as_str()))
            .collect();
        assert_eq!(used, [(Some(1), 3, "line 1"), (Some(2), 3, "line 2")]);
        let none = render(LINES, &outer, &[]);
        assert!(
            !none.text.contains("reg."),
            "no lines, no block: {}",
            none.text
        );
    }

    #[test]
    fn line_block_mistakes_are_reported_with_their_lines() {
        let v = Vars::default();
        let unclosed = check("p", "<a>\n<!-- zerotouch:lines -->\n${LINE}</a>", &v)
            .expect_err("unclosed")
            .to_string();
        assert!(
            unclosed.contains("line 2: the line block is not closed"),
            "{unclosed}"
        );
        let stray = check("p", "<a>\n\n<!-- zerotouch:end-lines --></a>", &v)
            .expect_err("stray")
            .to_string();
        assert!(stray.contains("line 3:"), "{stray}");
        let nested = check(
            "p",
            "<!-- zerotouch:lines -->${LINE}\n<!-- zerotouch:lines -->\n<!-- zerotouch:end-lines -->",
            &v,
        )
        .expect_err("nested")
        .to_string();
        assert!(nested.contains("line 2: a line block inside"), "{nested}");
        let no_line = check(
            "p",
            "<!-- zerotouch:lines -->${USERID}<!-- zerotouch:end-lines -->",
            &v,
        )
        .expect_err("no LINE")
        .to_string();
        assert!(no_line.contains("never uses ${LINE}"), "{no_line}");
        let unknown = check(
            "p",
            "<!-- zerotouch:lines -->\n${LINE}${NOPE}<!-- zerotouch:end-lines -->",
            &v,
        )
        .expect_err("unknown")
        .to_string();
        assert!(
            unknown.contains("line 2: unknown variable `${NOPE}`"),
            "{unknown}"
        );
    }

    #[test]
    fn the_check_form_is_well_formed_and_keeps_line_numbers() {
        let text = "<c ${OVERRIDE}\n a.${MAC}=\"1\">\n<!-- zerotouch:lines -->\n<r reg.${LINE}.x=\"${PASSWORD}\"/>\n<!-- zerotouch:end-lines -->\n</c>";
        let form = check_form(text);
        assert_eq!(form.lines().count(), text.lines().count());
        crate::domain::xml::check_well_formed("x", form.as_bytes()).expect("well-formed");
        assert!(form.contains("reg.1.x=\"x\""), "{form}");
    }

    #[test]
    fn secrets_are_recognised_by_name() {
        for n in [
            "PASSWORD",
            "PROV_PASSWORD",
            "PROTO_URL",
            "LDAP_SECRET",
            "API_KEY",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in ["MAC", "PROV_USER", "KEYBOARD"] {
            assert!(!is_secret_name(n), "{n}");
        }
    }

    #[test]
    fn every_line_variable_is_a_builtin() {
        for n in LINE_VARIABLES {
            assert!(is_builtin(n), "{n}");
        }
    }
}
