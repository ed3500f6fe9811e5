//! The bulk association CSV of the ZTP guide (Tables 2 and 3) with the decisions of
//! docs/design.md §8.3: parsing and every check that needs no database.
//!
//! Positional columns, no header, no quotes, no commas inside values: MAC, serial, vendor
//! model, profile, then the ten vendor extensions in Table 2's order (fourteen columns; the
//! guide's table numbers the last one 12). Trailing vendor-extension columns may be left
//! out. A fifteenth column, `Account` (an account's slug), is zerotouch's own: its bulk
//! export writes it on every line so a file of several accounts says whose each line is;
//! an import takes a line only when it is empty or names the importing account (`import`).
//! Columns are separated by commas, or by semicolons or tabs (what spreadsheets in many
//! locales save as "CSV"): the first data line decides (`detect_separator`) and the job
//! says which it used. Spaces around values are trimmed. A MAC repeated in one file rejects the later line
//! as `duplicate of line N`. Lines starting with `#` are comments, so the file of rejected
//! lines (reasons as comments) can be corrected and uploaded again as it is. The database
//! checks (profile exists, MAC owned by someone else) live in `import`.

use std::collections::HashMap;

use super::device::{DeviceInput, Line, NewDevice, VendorExtensions};
use crate::error::{Error, FieldError, Result};

/// Columns of a line, in order, as Table 2 names them.
pub const COLUMNS: [&str; 14] = [
    "MAC Address",
    "Serial number",
    "Vendor Model",
    "Configuration Profile",
    "SIP Server Address",
    "Outbound Proxy Address",
    "Provisioning Server Address",
    "Provisioning Server Username",
    "Provisioning Server Password",
    "Enable Provisioning Polling",
    "SIP Authentication User ID",
    "SIP Authentication Password",
    "Line Label",
    "Display Name",
];

/// `DeviceInput` field names in column order (for naming the column of a problem).
const FIELDS: [&str; 14] = [
    "mac",
    "serial",
    "vendor_model",
    "profile",
    "sip_server",
    "outbound_proxy",
    "prov_server",
    "prov_user",
    "prov_password",
    "polling",
    "sip_auth_user_id",
    "sip_auth_password",
    "line_label",
    "display_name",
];

/// A line that passed every check of this module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// 1-based line number in the file.
    pub line: u64,
    /// The line as uploaded.
    pub content: String,
    pub input: DeviceInput,
    /// The validated association.
    pub device: NewDevice,
    /// Column 15, the account the line is for (a slug), or empty.
    pub account: String,
}

/// A rejected line: number, content as uploaded, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejected {
    pub line: u64,
    pub content: String,
    pub reason: String,
}

/// The outcome of parsing a file.
#[derive(Debug, Default)]
pub struct Parsed {
    pub rows: Vec<Row>,
    pub rejected: Vec<Rejected>,
    /// The column separator the file uses (`,`, `;` or tab).
    pub separator: u8,
}

/// The column separator of a file, from its first data line: the one of `,`, `;` and tab
/// that splits it into the most columns (a comma when none appears). Values never hold a
/// separator (the format has no quoting), so the line's count of each is its column count.
pub fn detect_separator(first_line: &[u8]) -> u8 {
    let mut best = (0, b',');
    for sep in [b',', b';', b'\t'] {
        let n = first_line.iter().filter(|b| **b == sep).count();
        if n > best.0 {
            best = (n, sep);
        }
    }
    best.1
}

/// The separator in words, for a job's message: empty for a comma (the format's own).
pub fn separator_note(separator: u8) -> &'static str {
    match separator {
        b';' => " (columns separated by semicolons)",
        b'\t' => " (columns separated by tabs)",
        _ => "",
    }
}

impl Parsed {
    /// Lines that held data (accepted or rejected so far).
    pub fn total(&self) -> usize {
        self.rows.len() + self.rejected.len()
    }
}

/// Names a `DeviceInput` field as `column N (Name)`.
pub fn column_label(field: &str) -> String {
    match FIELDS.iter().position(|f| *f == field) {
        Some(i) => format!("column {} ({})", i + 1, COLUMNS[i]),
        None => field.to_string(),
    }
}

/// Turns field problems into one reason naming the columns.
pub fn reason_for(problems: &[FieldError]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}", column_label(&p.field), p.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Parses and checks a file of at most `max_rows` data lines. A file over the limit, or
/// one that is not a CSV file at all, is refused whole (nothing is applied).
pub fn parse(bytes: &[u8], max_rows: usize) -> Result<Parsed> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // Lines are split here, blank lines and comments dropped, and the rest parsed by one
    // reader: without quoting a record is exactly one line, so the line numbers kept here
    // stay exact (the csv crate's own positions miscount after CRLF, comments and blank
    // lines).
    let mut kept: Vec<(u64, &[u8])> = Vec::new();
    for (index, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = index as u64 + 1;
        if raw.is_empty() || raw.starts_with(b"#") {
            continue;
        }
        if raw.contains(&b'\r') {
            return Err(Error::invalid(
                "file",
                format!(
                    "line {line} contains a carriage return inside the line; save the file as CSV with normal line endings"
                ),
            ));
        }
        kept.push((line, raw));
    }
    let mut joined = Vec::with_capacity(bytes.len() + kept.len());
    for (_, raw) in &kept {
        joined.extend_from_slice(raw);
        joined.push(b'\n');
    }
    let separator = kept.first().map_or(b',', |(_, l)| detect_separator(l));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(separator)
        .flexible(true)
        .quoting(false)
        .from_reader(&joined[..]);
    let mut out = Parsed {
        separator,
        ..Parsed::default()
    };
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut record = csv::ByteRecord::new();
    for (line, raw) in kept {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                return Err(Error::invalid(
                    "file",
                    format!("line {line} is not CSV: {e}"),
                ));
            }
        }
        let content = String::from_utf8_lossy(raw).into_owned();
        if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        if out.total() == 0 && is_header(&record) {
            continue;
        }
        if out.total() >= max_rows {
            return Err(Error::invalid(
                "file",
                format!(
                    "more than {max_rows} lines of devices (line {line} is over the limit); \
                     split the file, each file may hold at most {max_rows}"
                ),
            ));
        }
        match check_record(&record) {
            Err(reason) => out.rejected.push(Rejected {
                line,
                content,
                reason,
            }),
            Ok((input, device, account)) => {
                let mac = device.mac.to_string();
                if let Some(first) = seen.get(&mac) {
                    out.rejected.push(Rejected {
                        line,
                        content,
                        reason: format!("duplicate of line {first}"),
                    });
                } else {
                    seen.insert(mac, line);
                    out.rows.push(Row {
                        line,
                        content,
                        input,
                        device,
                        account,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// A first line naming the columns (as spreadsheets like to add) is skipped.
fn is_header(record: &csv::ByteRecord) -> bool {
    record
        .get(0)
        .map(|f| String::from_utf8_lossy(f).trim().to_ascii_lowercase())
        .is_some_and(|f| f.starts_with("mac"))
}

/// The label of the account column (the fifteenth).
pub const ACCOUNT_COLUMN: &str = "column 15 (Account)";

/// Checks one line's fields and builds the association input; the third value is the
/// account column (empty when absent).
fn check_record(
    record: &csv::ByteRecord,
) -> std::result::Result<(DeviceInput, NewDevice, String), String> {
    if record.len() > COLUMNS.len() + 1 {
        return Err(format!(
            "has {} columns; at most {} are allowed (MAC, serial, vendor model, profile, ten \
             vendor extensions and the account; values may not contain commas)",
            record.len(),
            COLUMNS.len() + 1
        ));
    }
    let account = match record.get(COLUMNS.len()) {
        Some(f) => match std::str::from_utf8(f) {
            Ok(s) => super::csvcell::restore(s.trim()).to_string(),
            Err(_) => return Err(format!("{ACCOUNT_COLUMN}: is not UTF-8 text")),
        },
        None => String::new(),
    };
    if record.len() < 4 {
        return Err(format!(
            "has {} column{}; MAC address, serial number, vendor model and configuration \
             profile are needed (leave optional ones empty: `0004f2000001,,,profile1`)",
            record.len(),
            if record.len() == 1 { "" } else { "s" }
        ));
    }
    let mut fields: Vec<String> = Vec::with_capacity(14);
    for (i, f) in record.iter().take(COLUMNS.len()).enumerate() {
        match std::str::from_utf8(f) {
            // A value zerotouch's own export neutralised (`csvcell`) is read back as it was.
            Ok(s) => fields.push(super::csvcell::restore(s.trim()).to_string()),
            Err(_) => {
                return Err(format!("{}: is not UTF-8 text", column_label(FIELDS[i])));
            }
        }
    }
    fields.resize(14, String::new());
    if fields[0].is_empty() {
        return Err(format!("{}: is mandatory", column_label("mac")));
    }
    if fields[3].is_empty() {
        return Err(format!("{}: is mandatory", column_label("profile")));
    }
    let mut it = fields.into_iter();
    let mut next = || it.next().unwrap_or_default();
    let input = DeviceInput {
        mac: next(),
        serial: next(),
        vendor_model: next(),
        profile: next(),
        ext: VendorExtensions {
            sip_server: next(),
            outbound_proxy: next(),
            prov_server: next(),
            prov_user: next(),
            prov_password: next(),
            polling: next(),
        },
        line1: Line {
            line: 1,
            auth_user_id: next(),
            auth_password: next(),
            label: next(),
            display_name: next(),
            ..Default::default()
        },
    };
    match input.validate() {
        Ok(device) => Ok((input, device, account)),
        Err(Error::Invalid(p)) => Err(reason_for(&p)),
        Err(e) => Err(e.to_string()),
    }
}

/// The downloadable file of rejected lines: a comment with the reason, then the line as
/// uploaded, so a person can fix the lines and upload the same file again.
pub fn rejected_file(job_id: i64, rejected: &[Rejected]) -> String {
    let mut out = format!(
        "# zerotouch bulk association job {job_id}: {} rejected line{}.\n\
         # Correct the lines below and upload this file again; lines starting with # are ignored.\n",
        rejected.len(),
        if rejected.len() == 1 { "" } else { "s" }
    );
    for r in rejected {
        out.push_str(&format!(
            "# line {}: {}\n{}\n",
            r.line,
            r.reason.replace('\n', " "),
            // The line as uploaded, but never a formula when opened in a spreadsheet (a
            // line starting with one is rejected anyway: its first cell is not a MAC).
            super::csvcell::neutral(&r.content)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ZTP guide's five examples; Four and Five are one line each (the PDF wrapped them).
    const EXAMPLES: [&str; 5] = [
        "0000cafebabe,,,profile1",
        "0000cafebabe,, Polycom_UCS_Device ,profile1",
        "0000cafe1234,0000CAFE1234, Polycom_UCS_Device,profile1",
        "0000cafe1234,0000CAFE1234,Polycom_UCS_Device,profile1,192.168.1.178,192.168.1.171",
        "0000cafe1234,0000CAFE1234,Polycom_UCS_Device,profile1,192.168.1.178,,,user,password",
    ];

    #[test]
    fn each_seed_example_is_a_valid_line() {
        for ex in EXAMPLES {
            let p = parse(ex.as_bytes(), 1000).expect("parses");
            assert_eq!(p.rows.len(), 1, "{ex}: {:?}", p.rejected);
        }
        let five = parse(EXAMPLES[4].as_bytes(), 10).expect("parse");
        let i = &five.rows[0].input;
        assert_eq!(i.ext.sip_server, "192.168.1.178");
        assert_eq!(
            (i.ext.prov_user.as_str(), i.ext.prov_password.as_str()),
            ("user", "password")
        );
        let two = parse(EXAMPLES[1].as_bytes(), 10).expect("parse");
        assert_eq!(
            two.rows[0].input.vendor_model, "Polycom_UCS_Device",
            "trimmed"
        );
    }

    #[test]
    fn semicolon_and_tab_files_read_like_comma_files_and_say_so() {
        let comma = EXAMPLES[4..].join("\n") + "\n00:04:f2:aa:bb:cc,,,profile1\n";
        let want = parse(comma.as_bytes(), 10).expect("comma");
        assert_eq!((want.rows.len(), want.separator), (2, b','));
        assert_eq!(
            want.rows[1].device.mac.as_str(),
            "0004f2aabbcc",
            "separators in a MAC"
        );
        for (sep, note) in [(";", "semicolons"), ("\t", "tabs")] {
            let file = comma.replace(',', sep);
            let got = parse(file.as_bytes(), 10).expect("parses");
            assert_eq!(got.rejected, Vec::new(), "{sep:?}");
            assert_eq!(
                got.rows.iter().map(|r| &r.device).collect::<Vec<_>>(),
                want.rows.iter().map(|r| &r.device).collect::<Vec<_>>()
            );
            assert!(separator_note(got.separator).contains(note));
        }
        assert_eq!(separator_note(b','), "");
        // A header line decides as well as a data line.
        assert_eq!(
            detect_separator(b"MAC Address;Serial number;Vendor Model"),
            b';'
        );
        assert_eq!(detect_separator(b"0004f2aabbcc"), b',');
    }

    #[test]
    fn the_examples_in_one_file_reject_repeated_macs_as_duplicates() {
        let file = EXAMPLES.join("\r\n");
        let p = parse(file.as_bytes(), 1000).expect("parse");
        assert_eq!(
            p.rows.iter().map(|r| r.line).collect::<Vec<_>>(),
            vec![1, 3]
        );
        let reasons: Vec<_> = p
            .rejected
            .iter()
            .map(|r| (r.line, r.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            vec![
                (2, "duplicate of line 1"),
                (4, "duplicate of line 3"),
                (5, "duplicate of line 3")
            ]
        );
    }

    #[test]
    fn every_rule_of_table_3_is_enforced_with_the_column_named() {
        let cases = [
            ("0000cafebab,,,profile1", "column 1 (MAC Address)"),
            ("0000cafebabg,,,profile1", "column 1 (MAC Address)"),
            ("0004f2000001,SHORT,,profile1", "column 2 (Serial number)"),
            (
                "0004f2000001,0004F2000001XYZ,,profile1",
                "column 2 (Serial number)",
            ),
            (
                "0004f2000001,0004F20000!1,,profile1",
                "column 2 (Serial number)",
            ),
            (
                "0004f2000001,,Bad Model!,profile1",
                "column 3 (Vendor Model)",
            ),
            ("0004f2000001,,,p", "column 4 (Configuration Profile)"),
            (
                "0004f2000001,,,profile-1",
                "column 4 (Configuration Profile)",
            ),
            (
                "0004f2000001,,,",
                "column 4 (Configuration Profile): is mandatory",
            ),
            (",,,profile1", "column 1 (MAC Address): is mandatory"),
            (
                "0004f2000001,,,profile1,sip&co",
                "column 5 (SIP Server Address)",
            ),
            (
                "0004f2000001,,,profile1,,<proxy>",
                "column 6 (Outbound Proxy Address)",
            ),
            (
                "0004f2000001,,,profile1,,,gopher://x",
                "column 7 (Provisioning Server Address)",
            ),
            (
                "0004f2000001,,,profile1,,,,us'er",
                "column 8 (Provisioning Server Username)",
            ),
            (
                "0004f2000001,,,profile1,,,,,pa\"ss",
                "column 9 (Provisioning Server Password)",
            ),
            (
                "0004f2000001,,,profile1,,,,,,yes",
                "column 10 (Enable Provisioning Polling)",
            ),
            (
                "0004f2000001,,,profile1,,,,,,,1001\u{7}",
                "column 11 (SIP Authentication User ID)",
            ),
            (
                "0004f2000001,,,profile1,,,,,,,,,a\tb",
                "column 13 (Line Label)",
            ),
            (
                "0004f2000001,,,profile1,,,,,,,,,,O'Brien\u{1b}",
                "column 14 (Display Name)",
            ),
            (
                "0004f2000001,,,profile1,,,,,,,,,,,acme,extra",
                "has 16 columns",
            ),
            ("0004f2000001,profile1", "has 2 columns"),
        ];
        for (line, want) in cases {
            let p = parse(line.as_bytes(), 10).expect("parse");
            assert_eq!(p.rejected.len(), 1, "{line} accepted");
            assert!(
                p.rejected[0].reason.contains(want),
                "{line}: {}",
                p.rejected[0].reason
            );
            assert_eq!(p.rejected[0].line, 1);
            assert_eq!(p.rejected[0].content, line);
        }
    }

    #[test]
    fn line_one_takes_what_set_line_takes() {
        // The one line rule (`device::check_line_text`): the renderer escapes these.
        let p = parse(
            "0004f2000001,,,profile1,,,,,,,<1001>,a&b\"c,Desk 'A',O'Brien & <Sons>".as_bytes(),
            10,
        )
        .expect("parse");
        assert_eq!(p.rows.len(), 1, "{:?}", p.rejected);
        let l = &p.rows[0].device.line1;
        assert_eq!(
            (l.display_name.as_str(), l.auth_password.as_str()),
            ("O'Brien & <Sons>", "a&b\"c")
        );
        let set_line = crate::domain::devicevars::validate_line(l);
        assert!(set_line.is_ok(), "{set_line:?}");
    }

    #[test]
    fn the_video_endpoint_model_with_its_spaces_is_accepted() {
        let p = parse(b"0004f2000001,,Polycom Video Endpoint,profile1", 10).expect("parse");
        assert_eq!(p.rows.len(), 1, "{:?}", p.rejected);
    }

    #[test]
    fn a_file_over_the_limit_is_refused_whole() {
        let file: String = (0..3)
            .map(|i| format!("0004f200000{i},,,profile1\n"))
            .collect();
        let err = parse(file.as_bytes(), 2).expect_err("too many");
        assert!(err.to_string().starts_with("file:"), "{err}");
        assert!(parse(file.as_bytes(), 3).is_ok());
    }

    #[test]
    fn the_rejected_file_can_be_corrected_and_uploaded_again() {
        let p = parse(b"\xEF\xBB\xBFmac,serial,model,profile\n0004f200000x,,,profile1\n\n0004f2000002,,,profile1\n", 10)
            .expect("parse");
        assert_eq!(p.rows.len(), 1);
        assert_eq!(p.rejected[0].line, 2);
        let file = rejected_file(7, &p.rejected);
        assert!(file.contains("# line 2: column 1 (MAC Address)"), "{file}");
        let fixed = file.replace("0004f200000x", "0004f2000003");
        let again = parse(fixed.as_bytes(), 10).expect("parse");
        assert_eq!(again.rows.len(), 1);
        assert!(again.rejected.is_empty());
    }
}
