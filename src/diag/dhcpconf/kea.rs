//! Kea DHCPv4 JSON: comments (`//`, `#`, `/* */`) are removed and `<?include "file"?>`
//! directives are replaced by the file they name before `serde_json` reads the document.
//! A walk over the JSON finds `option-data` at every level (global, `shared-networks`,
//! `subnet4`, `pools`, `reservations`, `client-classes`), resolves names through `option-def`
//! and Kea's standard names, decodes `csv-format: false` hex, and lists client classes
//! whose `test` looks at the vendor class (`option[60]`). serde_json keeps no positions, so
//! lines are found again by looking up each `"data"`/`"test"` string in the text.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::{ConfOption, ConfReport, Dialect, PROVISIONING_CODES, hex_value, parse_hex};

/// A document with `<?include?>` resolved and the origin of each of its lines.
struct Source {
    text: String,
    /// For each line of `text` (0-based): file and 1-based line.
    origin: Vec<(String, u32)>,
}

fn strip_comments(text: &str) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    let mut in_str = false;
    while i < b.len() {
        let c = b[i];
        if in_str {
            out.push(c);
            if c == b'\\' && i + 1 < b.len() {
                out.push(b[i + 1]);
                i += 2;
                continue;
            }
            if c == b'"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        match c {
            b'"' => {
                in_str = true;
                out.push(b'"');
                i += 1;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    if b[i] == b'\n' {
                        out.push(b'\n');
                    }
                    i += 1;
                }
                i += 2;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    // Comments are cut at ASCII bytes only, so multi-byte characters stay whole.
    String::from_utf8_lossy(&out).into_owned()
}

fn expand(
    file: &str,
    dir: Option<&Path>,
    text: &str,
    depth: usize,
    report: &mut ConfReport,
    src: &mut Source,
) {
    for (n, line) in strip_comments(text).lines().enumerate() {
        let origin = (file.to_string(), n as u32 + 1);
        if let Some(start) = line.find("<?include") {
            let rest = &line[start..];
            let path = rest.split('"').nth(1).unwrap_or("").to_string();
            let end = rest.find("?>").map_or(line.len(), |e| start + e + 2);
            src.text.push_str(&line[..start]);
            let Some(dir) = dir else {
                report.notes.push(format!(
                    "{file}:{}: include `{path}` not followed (a pasted or uploaded text); add that file too",
                    n + 1
                ));
                src.text.push_str(&line[end..]);
                src.text.push('\n');
                src.origin.push(origin);
                continue;
            };
            let full = if Path::new(&path).is_absolute() {
                Path::new(&path).to_path_buf()
            } else {
                dir.join(&path)
            };
            if depth >= 8 {
                report
                    .notes
                    .push(format!("{file}:{}: includes nested too deep", n + 1));
            } else {
                match super::read_text(&full) {
                    Ok(inner) => {
                        let shown = full.display().to_string();
                        report.files.push((shown.clone(), Dialect::Kea));
                        src.text.push('\n');
                        src.origin.push(origin.clone());
                        let inner_dir = full.parent().unwrap_or(dir).to_path_buf();
                        expand(&shown, Some(&inner_dir), &inner, depth + 1, report, src);
                    }
                    Err(e) => report.notes.push(format!(
                        "{file}:{}: cannot read include `{path}`: {e}",
                        n + 1
                    )),
                }
            }
            src.text.push_str(&line[end..]);
        } else {
            src.text.push_str(line);
        }
        src.text.push('\n');
        src.origin.push(origin);
    }
}

/// Kea's names for the options we report.
fn standard_code(name: &str) -> Option<u8> {
    Some(match name {
        "time-offset" => 2,
        "ntp-servers" => 42,
        "vendor-encapsulated-options" => 43,
        "vendor-class-identifier" => 60,
        "tftp-server-name" => 66,
        "boot-file-name" => 67,
        _ => return None,
    })
}

/// Every `"key": "string"` of the text, with its 0-based line, for finding lines again.
fn string_members(text: &str, key: &str) -> Vec<(usize, String, bool)> {
    let needle = format!("\"{key}\"");
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(pos) = text[from..].find(&needle) {
        let at = from + pos;
        from = at + needle.len();
        let rest = text[from..].trim_start();
        let Some(rest) = rest.strip_prefix(':') else {
            continue;
        };
        let rest = rest.trim_start();
        if !rest.starts_with('"') {
            continue;
        }
        let mut de = serde_json::Deserializer::from_str(rest).into_iter::<String>();
        if let Some(Ok(s)) = de.next() {
            out.push((text[..at].matches('\n').count(), s, false));
        }
    }
    out
}

struct Walk<'a> {
    file: &'a str,
    src: &'a Source,
    defs: HashMap<(String, String), u8>,
    data_lines: Vec<(usize, String, bool)>,
    test_lines: Vec<(usize, String, bool)>,
    report: &'a mut ConfReport,
}

impl Walk<'_> {
    fn origin(&self, lines: &mut [(usize, String, bool)], value: &str) -> (String, u32) {
        if let Some(entry) = lines.iter_mut().find(|(_, s, used)| !used && s == value) {
            entry.2 = true;
            if let Some(o) = self.src.origin.get(entry.0) {
                return o.clone();
            }
        }
        (self.file.to_string(), 0)
    }

    fn walk(&mut self, v: &Value, scope: &[String]) {
        let Value::Object(map) = v else {
            if let Value::Array(items) = v {
                for item in items {
                    self.walk(item, scope);
                }
            }
            return;
        };
        if let Some(Value::Array(opts)) = map.get("option-data") {
            for o in opts {
                self.option(o, scope);
            }
        }
        for (key, child) in map {
            if key == "option-data" || key == "option-def" {
                continue;
            }
            let Value::Array(items) = child else {
                if child.is_object() {
                    self.walk(child, scope);
                }
                continue;
            };
            for item in items {
                let s = |k: &str| {
                    item.get(k).map(|v| match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                };
                let label = match key.as_str() {
                    "subnet4" => Some(format!(
                        "subnet {}{}",
                        s("subnet").unwrap_or_default(),
                        s("id").map(|i| format!(" (id {i})")).unwrap_or_default()
                    )),
                    "shared-networks" => {
                        Some(format!("shared-network {}", s("name").unwrap_or_default()))
                    }
                    "pools" => Some(format!("pool {}", s("pool").unwrap_or_default())),
                    "reservations" => Some(format!(
                        "reservation {}",
                        s("hw-address")
                            .or_else(|| s("client-id"))
                            .or_else(|| s("ip-address"))
                            .or_else(|| s("hostname"))
                            .unwrap_or_default()
                    )),
                    "client-classes" => {
                        Some(format!("class \"{}\"", s("name").unwrap_or_default()))
                    }
                    _ => None,
                };
                let mut inner = scope.to_vec();
                if let Some(l) = label {
                    inner.push(l);
                }
                if key == "client-classes"
                    && let Some(test) = s("test")
                    && (test.contains("option[60]") || test.contains("vendor-class-identifier"))
                {
                    let mut lines = std::mem::take(&mut self.test_lines);
                    let (file, line) = self.origin(&mut lines, &test);
                    self.test_lines = lines;
                    self.report.options.push(ConfOption {
                        file,
                        line,
                        dialect: Dialect::Kea,
                        scope: label_of(&inner),
                        code: 60,
                        name: "test".into(),
                        value: test,
                    });
                }
                self.walk(item, &inner);
            }
        }
    }

    fn option(&mut self, o: &Value, scope: &[String]) {
        let name = o
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let space = o
            .get("space")
            .and_then(Value::as_str)
            .unwrap_or("dhcp4")
            .to_string();
        let code = o
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u8::try_from(c).ok())
            .or_else(|| self.defs.get(&(space.clone(), name.clone())).copied())
            .or_else(|| (space == "dhcp4").then(|| standard_code(&name)).flatten());
        let data = o
            .get("data")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let csv = o.get("csv-format").and_then(Value::as_bool).unwrap_or(true);
        let (file, line) = {
            let mut lines = std::mem::take(&mut self.data_lines);
            let r = self.origin(&mut lines, &data);
            self.data_lines = lines;
            r
        };
        let Some(code) = code else {
            self.report.notes.push(format!(
                "{file}:{line}: option-data `{name}` in space `{space}` has no code and no \
                 option-def; not analysed"
            ));
            return;
        };
        let is_vendor_sub = space != "dhcp4" && !space.starts_with("vendor-");
        let is_vendor_sub = is_vendor_sub || space == "vendor-encapsulated-options-space";
        let reported = if is_vendor_sub { 43 } else { code };
        if space != "dhcp4" && !is_vendor_sub {
            return;
        }
        if !PROVISIONING_CODES.contains(&reported) {
            return;
        }
        let value = if csv {
            data.clone()
        } else {
            parse_hex(&data).map_or(data.clone(), |b| hex_value(code, &b))
        };
        let shown_name = if name.is_empty() {
            code.to_string()
        } else {
            name
        };
        self.report.options.push(ConfOption {
            file,
            line,
            dialect: Dialect::Kea,
            scope: label_of(scope),
            code: reported,
            name: if is_vendor_sub {
                format!("{shown_name} (sub-option {code} of option 43, space {space})")
            } else {
                shown_name
            },
            value,
        });
    }
}

fn label_of(scope: &[String]) -> String {
    if scope.is_empty() {
        "global".into()
    } else {
        scope.join(" > ")
    }
}

fn collect_defs(v: &Value, defs: &mut HashMap<(String, String), u8>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(list)) = map.get("option-def") {
                for d in list {
                    let name = d.get("name").and_then(Value::as_str);
                    let code = d
                        .get("code")
                        .and_then(Value::as_u64)
                        .and_then(|c| u8::try_from(c).ok());
                    let space = d.get("space").and_then(Value::as_str).unwrap_or("dhcp4");
                    if let (Some(n), Some(c)) = (name, code) {
                        defs.insert((space.to_string(), n.to_string()), c);
                    }
                }
            }
            for child in map.values() {
                collect_defs(child, defs);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_defs(i, defs)),
        _ => {}
    }
}

/// Parses a Kea file (its `<?include?>`s are resolved here, relative to `dir`; not followed
/// without one).
pub fn parse_in(file: &str, dir: Option<&Path>, text: &str, report: &mut ConfReport) {
    let mut src = Source {
        text: String::new(),
        origin: Vec::new(),
    };
    expand(file, dir, text, 0, report, &mut src);
    let doc: Value = match serde_json::from_str(&src.text) {
        Ok(v) => v,
        Err(e) => {
            let (f, l) = src
                .origin
                .get(e.line().saturating_sub(1))
                .cloned()
                .unwrap_or((file.to_string(), e.line() as u32));
            report
                .notes
                .push(format!("{f}:{l}: not valid Kea JSON: {e}"));
            return;
        }
    };
    let mut defs = HashMap::new();
    collect_defs(&doc, &mut defs);
    let data_lines = string_members(&src.text, "data");
    let test_lines = string_members(&src.text, "test");
    let root = doc.get("Dhcp4").unwrap_or(&doc);
    let mut walk = Walk {
        file,
        src: &src,
        defs,
        data_lines,
        test_lines,
        report,
    };
    walk.walk(root, &[]);
}

/// Parses a Kea file whose includes are relative to the working directory.
pub fn parse(file: &str, text: &str, report: &mut ConfReport) -> Vec<super::Include> {
    let dir = Path::new(file)
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    parse_in(file, Some(&dir), text, report);
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::super::analyze_text;
    use super::*;

    const SAMPLE: &str = r#"{
  // Kea allows comments
  "Dhcp4": {
    # "option-data": [ { "name": "tftp-server-name", "data": "commented.example.com" } ],
    "option-def": [ { "name": "polycom-prov", "code": 160, "type": "string" } ],
    "option-data": [
      { "name": "tftp-server-name", "data": "global.example.com" }
    ],
    "client-classes": [
      { "name": "polycom", "test": "substring(option[60].hex,0,7) == 'Polycom'",
        "option-data": [ { "name": "polycom-prov", "data": "http://class.example.com/" } ] }
    ],
    /* a block
       comment */
    "subnet4": [
      { "id": 1, "subnet": "10.0.20.0/24",
        "option-data": [
          { "code": 66, "data": "31302e302e32302e35", "csv-format": false },
          { "code": 150, "data": "10.0.20.5, 10.0.20.6" }
        ],
        "pools": [ { "pool": "10.0.20.100 - 10.0.20.200",
                     "option-data": [ { "code": 160, "data": "http://u:p@pool.example.com/" } ] } ],
        "reservations": [ { "hw-address": "00:04:f2:aa:bb:cc",
                            "option-data": [ { "name": "polycom-prov", "data": "http://host.example.com/" } ] } ]
      }
    ]
  }
}"#;

    #[test]
    fn every_level_with_lines_hex_and_definitions() {
        let r = analyze_text("kea-dhcp4.conf", SAMPLE, Dialect::Kea);
        assert!(r.notes.is_empty(), "{:?}", r.notes);
        let got: Vec<(u8, &str, &str, u32)> = r
            .options
            .iter()
            .map(|o| (o.code, o.scope.as_str(), o.value.as_str(), o.line))
            .collect();
        assert!(
            got.contains(&(66, "global", "global.example.com", 7)),
            "{got:#?}"
        );
        assert!(
            got.iter()
                .any(|g| g.0 == 60 && g.1 == "class \"polycom\"" && g.3 == 10),
            "{got:#?}"
        );
        assert!(
            got.contains(&(160, "class \"polycom\"", "http://class.example.com/", 11)),
            "{got:#?}"
        );
        assert!(
            got.contains(&(66, "subnet 10.0.20.0/24 (id 1)", "10.0.20.5", 18)),
            "{got:#?}"
        );
        assert!(
            got.contains(&(
                150,
                "subnet 10.0.20.0/24 (id 1)",
                "10.0.20.5, 10.0.20.6",
                19
            )),
            "{got:#?}"
        );
        assert!(
            got.contains(&(
                160,
                "subnet 10.0.20.0/24 (id 1) > pool 10.0.20.100 - 10.0.20.200",
                "http://u:p@pool.example.com/",
                22
            )),
            "{got:#?}"
        );
        assert!(
            got.contains(&(
                160,
                "subnet 10.0.20.0/24 (id 1) > reservation 00:04:f2:aa:bb:cc",
                "http://host.example.com/",
                24
            )),
            "{got:#?}"
        );
        assert!(!got.iter().any(|g| g.2.contains("commented")), "{got:#?}");
    }

    #[test]
    fn includes_are_spliced_in_and_keep_their_own_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("subnets.json"),
            "{ \"id\": 7, \"subnet\": \"10.1.0.0/24\",\n  \"option-data\": [ { \"code\": 160, \"data\": \"http://inc.example.com/\" } ] }\n",
        )
        .expect("write");
        let main = "{ \"Dhcp4\": { \"subnet4\": [\n <?include \"subnets.json\"?>\n ] } }\n";
        let mut report = ConfReport::default();
        parse_in("kea.conf", Some(dir.path()), main, &mut report);
        assert_eq!(report.options.len(), 1, "{report:?}");
        assert!(
            report.options[0].file.ends_with("subnets.json"),
            "{report:?}"
        );
        assert_eq!(report.options[0].line, 2);
    }

    #[test]
    fn broken_json_is_a_note_with_a_line() {
        let r = analyze_text("k.conf", "{ \"Dhcp4\": {\n \"x\": ,\n} }", Dialect::Kea);
        assert!(r.notes[0].starts_with("k.conf:2:"), "{:?}", r.notes);
    }
}
