//! XML as Polycom configuration files use it: escaping values we write, checking that files
//! we are given are well-formed, reading their parameters (attributes with dotted names,
//! wherever they sit in the element tree) and masking the values of secret ones in a file
//! shown to people, even one that is not well-formed.

use crate::error::{Error, FieldError};

/// Escapes text for use inside a double-quoted XML attribute value.
pub fn escape_attr(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

/// One parameter found in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundParam {
    pub name: String,
    pub value: String,
    /// 1-based line of the attribute.
    pub line: u32,
    pub element: String,
}

/// Checks that `bytes` is a well-formed XML document (UTF-8, one root). The error names the
/// file, line and column.
pub fn check_well_formed(file: &str, bytes: &[u8]) -> Result<(), Error> {
    parse_params(file, bytes).map(|_| ())
}

/// Parses a configuration file and returns every attribute whose name contains a dot (the
/// Polycom parameter form), in document order.
pub fn parse_params(file: &str, bytes: &[u8]) -> Result<Vec<FoundParam>, Error> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Error::Invalid(vec![FieldError::new(
            file,
            format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )])
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, options).map_err(|e| {
        let pos = e.pos();
        Error::Invalid(vec![FieldError::new(
            file,
            format!(
                "not well-formed XML at line {}, column {}: {e}",
                pos.row, pos.col
            ),
        )])
    })?;
    // Line numbers from a table of line starts: `text_pos_at` scans from the start of the
    // text for each attribute, quadratic in a file of thousands of parameters.
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let line_of = |pos: usize| line_starts.partition_point(|&s| s <= pos) as u32;
    let mut out = Vec::new();
    for node in doc.descendants().filter(|n| n.is_element()) {
        for attr in node.attributes() {
            if attr.name().contains('.') && attr.namespace().is_none() {
                let line = line_of(attr.range().start);
                out.push(FoundParam {
                    name: attr.name().to_string(),
                    value: attr.value().to_string(),
                    line,
                    element: node.tag_name().name().to_string(),
                });
            }
        }
    }
    Ok(out)
}

/// What is shown instead of a secret value.
pub const MASK: &str = "********";

/// `text` with the value of every `name="value"` (or `'value'`) whose name is a secret
/// parameter (`polycom::params::is_secret`) replaced by `MASK`. Read as text, not parsed:
/// a profile file whose XML is well-formed only once its variables are filled in
/// (`reg.${LINE}.auth.password`, `${OVERRIDE}` inside a tag), or a phone's upload that is
/// not XML at all, is masked too. A `${VARIABLE}` in a name counts as a number.
pub fn mask_secret_values(text: &str) -> String {
    let bytes = text.as_bytes();
    let name_byte = |b: u8| b.is_ascii_alphanumeric() || b"._-${}:".contains(&b);
    let mut out = String::with_capacity(text.len());
    let (mut copied, mut pos) = (0, 0);
    while let Some(off) = text[pos..].find('=') {
        let eq = pos + off;
        let quote = match bytes.get(eq + 1) {
            Some(q @ (b'"' | b'\'')) => *q as char,
            _ => {
                pos = eq + 1;
                continue;
            }
        };
        let Some(len) = text[eq + 2..].find(quote) else {
            break;
        };
        let close = eq + 2 + len;
        // Name bytes are ASCII, so the first of them starts a character.
        let start = (0..eq)
            .rev()
            .find(|&j| !name_byte(bytes[j]))
            .map_or(0, |j| j + 1);
        let mut name = text[start..eq].to_string();
        while let Some(open) = name.find("${") {
            match name[open..].find('}') {
                Some(end) => name.replace_range(open..open + end + 1, "1"),
                None => break,
            }
        }
        if len > 0 && !name.is_empty() && super::polycom::params::is_secret(&name) {
            out.push_str(&text[copied..eq + 2]);
            out.push_str(MASK);
            copied = close;
        }
        pos = close + 1;
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_are_masked_in_text_that_is_not_well_formed() {
        let text = "<x reg.${LINE}.auth.password=\"S1\" ${OVERRIDE} a.b='1' \
                    device.prov.password='S2' reg.1.auth.password=\"\" k=\"v\"/>\n\u{e9}=\"x\"";
        let masked = mask_secret_values(text);
        assert!(!masked.contains("S1") && !masked.contains("S2"), "{masked}");
        assert!(
            masked.contains("reg.${LINE}.auth.password=\"********\""),
            "{masked}"
        );
        assert!(
            masked.contains("device.prov.password='********'"),
            "{masked}"
        );
        assert!(
            masked.contains("a.b='1'") && masked.contains("k=\"v\""),
            "{masked}"
        );
        assert!(
            masked.contains("reg.1.auth.password=\"\""),
            "empty stays empty"
        );
        assert_eq!(
            mask_secret_values("no attributes = here"),
            "no attributes = here"
        );
    }

    #[test]
    fn escaped_values_survive_a_parse() {
        let hostile = r#"p&ss<w>"rd'"#;
        let doc = format!(r#"<c a.b="{}"/>"#, escape_attr(hostile));
        let params = parse_params("t.cfg", doc.as_bytes()).expect("well-formed");
        assert_eq!(params[0].value, hostile);
    }

    #[test]
    fn broken_xml_names_file_and_line() {
        let err = parse_params("site.cfg", b"<a>\n<b x.y=\"1\">\n</a>").expect_err("broken");
        let text = err.to_string();
        assert!(text.starts_with("site.cfg:"), "{text}");
        assert!(text.contains("line"), "{text}");
    }

    #[test]
    fn parameters_are_found_anywhere_with_their_lines() {
        let doc =
            b"<polycomConfig>\n <reg\n  reg.1.address=\"100\"\n  other=\"x\"/>\n</polycomConfig>";
        let params = parse_params("x", doc).expect("parse");
        assert_eq!(params.len(), 1);
        assert_eq!(
            (params[0].name.as_str(), params[0].line),
            ("reg.1.address", 3)
        );
    }

    #[test]
    fn doctype_is_refused() {
        let doc = b"<!DOCTYPE a [<!ENTITY x \"y\">]><a b.c=\"&x;\"/>";
        assert!(parse_params("x", doc).is_err());
    }
}
