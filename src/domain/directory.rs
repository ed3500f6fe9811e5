//! The site directory phones read, `000000000000-directory.xml`, as a table of contacts:
//! parsed from and written to Polycom's directory XML (`<directory><item_list><item>` with
//! `fn`, `ln`, `ct`, `sd`, …), imported from and exported to CSV.
//!
//! Every contact is checked before anything is written; problems name the row (or CSV
//! line) and the column. Output is byte-stable: the same contacts give the same file.

use serde::{Deserialize, Serialize};

use crate::domain::xml::escape_attr;
use crate::error::{Error, FieldError, Result};

/// Most contacts in a directory.
pub const MAX_CONTACTS: usize = 5000;

/// One contact of the directory (Polycom's element names in brackets).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Contact {
    /// First name (`fn`).
    pub first_name: String,
    /// Last name (`ln`).
    pub last_name: String,
    /// Number or SIP URI dialled (`ct`); required.
    pub contact: String,
    /// Speed-dial index (`sd`), 1-9999, unique; empty for none.
    pub speed_dial: String,
    /// Label shown on the line key (`lb`).
    pub label: String,
    /// Protocol (`pt`), e.g. `SIP`; empty for the phone's default.
    pub protocol: String,
    /// Ring type (`rt`), a number; empty for the default.
    pub ring_type: String,
    /// Divert contact (`dc`).
    pub divert_contact: String,
    /// Auto divert (`ad`): `0`, `1` or empty.
    pub auto_divert: String,
    /// Auto reject (`ar`): `0`, `1` or empty.
    pub auto_reject: String,
    /// Buddy watching (`bw`): `0`, `1` or empty.
    pub buddy_watch: String,
    /// Buddy block (`bb`): `0`, `1` or empty.
    pub buddy_block: String,
}

/// Columns: (CSV header and JSON name, XML element).
pub const COLUMNS: [(&str, &str); 12] = [
    ("first_name", "fn"),
    ("last_name", "ln"),
    ("contact", "ct"),
    ("speed_dial", "sd"),
    ("label", "lb"),
    ("protocol", "pt"),
    ("ring_type", "rt"),
    ("divert_contact", "dc"),
    ("auto_divert", "ad"),
    ("auto_reject", "ar"),
    ("buddy_watch", "bw"),
    ("buddy_block", "bb"),
];

impl Contact {
    /// The value of a column (`COLUMNS` index).
    pub fn get(&self, i: usize) -> &str {
        match i {
            0 => &self.first_name,
            1 => &self.last_name,
            2 => &self.contact,
            3 => &self.speed_dial,
            4 => &self.label,
            5 => &self.protocol,
            6 => &self.ring_type,
            7 => &self.divert_contact,
            8 => &self.auto_divert,
            9 => &self.auto_reject,
            10 => &self.buddy_watch,
            _ => &self.buddy_block,
        }
    }

    /// Sets a column (`COLUMNS` index), trimming spaces.
    pub fn set(&mut self, i: usize, value: &str) {
        let v = value.trim().to_string();
        match i {
            0 => self.first_name = v,
            1 => self.last_name = v,
            2 => self.contact = v,
            3 => self.speed_dial = v,
            4 => self.label = v,
            5 => self.protocol = v,
            6 => self.ring_type = v,
            7 => self.divert_contact = v,
            8 => self.auto_divert = v,
            9 => self.auto_reject = v,
            10 => self.buddy_watch = v,
            _ => self.buddy_block = v,
        }
    }

    /// Whether every column is empty (an unused row of the editor).
    pub fn is_blank(&self) -> bool {
        (0..COLUMNS.len()).all(|i| self.get(i).is_empty())
    }
}

/// Checks contacts; `row` names each problem's row (`contacts[3]`, `line 4`).
pub fn validate(contacts: &[Contact], row: impl Fn(usize) -> String) -> Result<()> {
    let mut p = Vec::new();
    if contacts.len() > MAX_CONTACTS {
        p.push(FieldError::new(
            "contacts",
            format!("{} contacts; at most {MAX_CONTACTS}", contacts.len()),
        ));
    }
    let mut speed_dials: Vec<(u32, usize)> = Vec::new();
    for (i, c) in contacts.iter().enumerate() {
        let field = |col: &str| format!("{}.{col}", row(i));
        if c.contact.is_empty() {
            p.push(FieldError::new(
                field("contact"),
                "a contact needs a number or SIP address",
            ));
        }
        for (col, _) in COLUMNS.iter().enumerate().map(|(n, c)| (n, c.0)) {
            let v = c.get(col);
            if v.chars().count() > 128 {
                p.push(FieldError::new(
                    field(COLUMNS[col].0),
                    "is longer than 128 characters",
                ));
            } else if v.chars().any(char::is_control) {
                p.push(FieldError::new(
                    field(COLUMNS[col].0),
                    "contains control characters",
                ));
            }
        }
        if !c.speed_dial.is_empty() {
            match c.speed_dial.parse::<u32>() {
                Ok(n @ 1..=9999) => {
                    if let Some((_, first)) = speed_dials.iter().find(|(s, _)| *s == n) {
                        p.push(FieldError::new(
                            field("speed_dial"),
                            format!("{n} is already the speed dial of {}", row(*first)),
                        ));
                    } else {
                        speed_dials.push((n, i));
                    }
                }
                _ => p.push(FieldError::new(
                    field("speed_dial"),
                    "must be a number from 1 to 9999",
                )),
            }
        }
        if !c.ring_type.is_empty() && c.ring_type.parse::<u32>().is_err() {
            p.push(FieldError::new(field("ring_type"), "must be a number"));
        }
        for (col, v) in [
            ("auto_divert", &c.auto_divert),
            ("auto_reject", &c.auto_reject),
            ("buddy_watch", &c.buddy_watch),
            ("buddy_block", &c.buddy_block),
        ] {
            if !matches!(v.as_str(), "" | "0" | "1") {
                p.push(FieldError::new(field(col), "must be 0, 1 or empty"));
            }
        }
    }
    if p.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(p))
    }
}

/// Polycom's directory XML for these contacts (byte-stable).
pub fn to_xml(contacts: &[Contact]) -> Vec<u8> {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<directory>\n  <item_list>\n",
    );
    for c in contacts {
        out.push_str("    <item>\n");
        for (i, (_, el)) in COLUMNS.iter().enumerate() {
            let v = c.get(i);
            if !v.is_empty() {
                out.push_str(&format!("      <{el}>{}</{el}>\n", escape_attr(v)));
            }
        }
        out.push_str("    </item>\n");
    }
    out.push_str("  </item_list>\n</directory>\n");
    out.into_bytes()
}

/// Reads a directory file. Unknown elements of an item are ignored; a file that is not a
/// directory is an error naming `file`.
pub fn from_xml(file: &str, bytes: &[u8]) -> Result<Vec<Contact>> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error::invalid(file, "is not UTF-8 text"))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, opts).map_err(|e| {
        Error::invalid(
            file,
            format!("not well-formed XML at line {}: {e}", e.pos().row),
        )
    })?;
    let root = doc.root_element();
    if root.tag_name().name() != "directory" {
        return Err(Error::invalid(
            file,
            format!(
                "the root element is <{}>, not <directory>",
                root.tag_name().name()
            ),
        ));
    }
    let mut out = Vec::new();
    for item in root
        .descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "item")
    {
        let mut c = Contact::default();
        for child in item.children().filter(|n| n.is_element()) {
            if let Some(i) = COLUMNS
                .iter()
                .position(|(_, el)| *el == child.tag_name().name())
            {
                c.set(i, child.text().unwrap_or(""));
            }
        }
        out.push(c);
    }
    Ok(out)
}

/// The contacts as CSV with a header line.
pub fn to_csv(contacts: &[Contact]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(COLUMNS.iter().map(|(h, _)| *h));
    for c in contacts {
        let _ = w.write_record(
            (0..COLUMNS.len()).map(|i| super::csvcell::neutral(c.get(i)).into_owned()),
        );
    }
    w.into_inner().unwrap_or_default()
}

/// Reads contacts from CSV: a header line naming columns (any order; `contact` needed),
/// then one contact per line. Problems name the line and column.
pub fn from_csv(bytes: &[u8]) -> Result<Vec<Contact>> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes);
    let headers = r
        .headers()
        .map_err(|e| Error::invalid("csv", format!("line 1: {e}")))?
        .clone();
    let mut map = Vec::new();
    let mut p = Vec::new();
    for h in headers.iter() {
        let h = h.trim().trim_start_matches('\u{feff}');
        match COLUMNS
            .iter()
            .position(|(name, el)| h.eq_ignore_ascii_case(name) || h == *el)
        {
            Some(i) => map.push(i),
            None => p.push(FieldError::new(
                "csv",
                format!(
                    "line 1: unknown column `{h}` (columns: {})",
                    COLUMNS.map(|c| c.0).join(", ")
                ),
            )),
        }
    }
    if !map.contains(&2) {
        p.push(FieldError::new(
            "csv",
            "line 1: the header needs a `contact` column",
        ));
    }
    if !p.is_empty() {
        return Err(Error::Invalid(p));
    }
    let mut out = Vec::new();
    for (n, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| Error::invalid("csv", format!("line {}: {e}", n + 2)))?;
        let mut c = Contact::default();
        for (value, col) in rec.iter().zip(&map) {
            c.set(*col, super::csvcell::restore(value));
        }
        if !c.is_blank() {
            out.push(c);
        }
    }
    validate(&out, |i| format!("line {}", i + 2))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kraus() -> Contact {
        Contact {
            first_name: "Karl".into(),
            last_name: "Kraus & Söhne".into(),
            contact: "1001".into(),
            speed_dial: "1".into(),
            label: "Karl <front>".into(),
            ..Default::default()
        }
    }

    #[test]
    fn contacts_round_trip_through_xml_and_csv() {
        let list = vec![
            kraus(),
            Contact {
                contact: "sip:desk@example.com".into(),
                ..Default::default()
            },
        ];
        let xml = to_xml(&list);
        assert!(String::from_utf8_lossy(&xml).contains("<ln>Kraus &amp; Söhne</ln>"));
        assert_eq!(from_xml("d.xml", &xml).expect("xml"), list);
        assert_eq!(from_csv(&to_csv(&list)).expect("csv"), list);
    }

    #[test]
    fn bad_rows_are_named_by_line_and_column() {
        let csv = "first_name,contact,speed_dial\nA,1001,1\nB,,1\nC,1003,x\n";
        let err = from_csv(csv.as_bytes()).expect_err("bad").to_string();
        assert!(err.contains("line 3.contact"), "{err}");
        assert!(
            err.contains("line 3.speed_dial: 1 is already the speed dial of line 2"),
            "{err}"
        );
        assert!(err.contains("line 4.speed_dial"), "{err}");
        let err = from_csv(b"name,contact\n").expect_err("column").to_string();
        assert!(err.contains("unknown column `name`"), "{err}");
        let err = from_xml("000000000000-directory.xml", b"<phonebook/>").expect_err("root");
        assert!(err.to_string().contains("not <directory>"), "{err}");
    }
}
