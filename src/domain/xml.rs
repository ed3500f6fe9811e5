//! XML as Polycom configuration files use it: escaping values we write, checking that files
//! we are given are well-formed, and reading their parameters (attributes with dotted
//! names, wherever they sit in the element tree).

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

#[cfg(test)]
mod tests {
    use super::*;

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
