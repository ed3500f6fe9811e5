//! Windows DHCP Server, as `netsh dhcp server dump` writes it: `set optionvalue` at server
//! level, `Scope A.B.C.D set optionvalue` per scope, `set reservedoptionvalue` per
//! reservation, `vendor=`/`user=` class qualifiers, `add optiondef` declarations and
//! vendor classes (`add class ... 1`). Values are `STRING`, `IPADDRESS`, `BINARY`,
//! `ENCAPSULATED` or numbers; binary ones are decoded like an answer's option would be.

use super::{ConfOption, ConfReport, Dialect, Include, PROVISIONING_CODES, hex_value, parse_hex};

/// Splits a line into words; double-quoted words lose their quotes.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut had_quote = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                had_quote = true;
            }
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() || had_quote {
                    out.push(std::mem::take(&mut cur));
                }
                had_quote = false;
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() || had_quote {
        out.push(cur);
    }
    out
}

/// Parses one dump; netsh dumps name no other files.
pub fn parse(file: &str, text: &str, report: &mut ConfReport) -> Vec<Include> {
    for (n, raw) in text.lines().enumerate() {
        let line = n as u32 + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let w = words(trimmed);
        // `Dhcp Server \\name` or `Dhcp Server 10.0.0.1`
        if w.len() < 4 || !w[0].eq_ignore_ascii_case("dhcp") || !w[1].eq_ignore_ascii_case("server")
        {
            continue;
        }
        let mut rest: &[String] = &w[3..];
        let mut scope = "server".to_string();
        if rest
            .first()
            .is_some_and(|x| x.eq_ignore_ascii_case("scope"))
            && rest.len() >= 2
        {
            scope = format!("scope {}", rest[1]);
            rest = &rest[2..];
        }
        let verb = |i: usize| {
            rest.get(i)
                .map(|s| s.to_ascii_lowercase())
                .unwrap_or_default()
        };
        match (verb(0).as_str(), verb(1).as_str()) {
            ("set", "optionvalue") => {
                value_line(file, line, &scope, &rest[2..], report);
            }
            ("set", "reservedoptionvalue") if rest.len() > 3 => {
                let s = format!("{scope} > reservation {}", rest[2]);
                value_line(file, line, &s, &rest[3..], report);
            }
            ("add", "class") if rest.len() >= 5 => {
                // add class Name Comment Data [IsVendor] [IsBinary]
                let is_vendor = rest.get(5).is_some_and(|v| v == "1");
                let is_binary = rest
                    .get(6)
                    .is_some_and(|v| v.eq_ignore_ascii_case("b") || v == "1");
                if is_vendor {
                    let data = if is_binary {
                        parse_hex(&rest[4]).map_or(rest[4].clone(), |b| hex_value(60, &b))
                    } else {
                        rest[4].clone()
                    };
                    report.options.push(ConfOption {
                        file: file.to_string(),
                        line,
                        dialect: Dialect::Windows,
                        scope: format!("vendor class \"{}\"", rest[2]),
                        code: 60,
                        name: "add class".into(),
                        value: data,
                    });
                }
            }
            _ => {}
        }
    }
    Vec::new()
}

/// `CODE TYPE [vendor=X] [user=Y] VALUE...`
fn value_line(file: &str, line: u32, scope: &str, args: &[String], report: &mut ConfReport) {
    let Some(code) = args.first().and_then(|c| c.parse::<u8>().ok()) else {
        return;
    };
    let kind = args
        .get(1)
        .map(|k| k.to_ascii_uppercase())
        .unwrap_or_default();
    let mut scope = scope.to_string();
    let mut values = Vec::new();
    for a in args.iter().skip(2) {
        let lower = a.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("vendor=") {
            scope.push_str(&format!(" > vendor class \"{}\"", &a[a.len() - v.len()..]));
        } else if let Some(v) = lower.strip_prefix("user=") {
            scope.push_str(&format!(" > user class \"{}\"", &a[a.len() - v.len()..]));
        } else {
            values.push(a.clone());
        }
    }
    if !PROVISIONING_CODES.contains(&code) {
        return;
    }
    let value = match kind.as_str() {
        "BINARY" | "ENCAPSULATED" => {
            let joined = values.join("");
            parse_hex(&joined).map_or(joined, |b| hex_value(code, &b))
        }
        _ => values.join(", "),
    };
    report.options.push(ConfOption {
        file: file.to_string(),
        line,
        dialect: Dialect::Windows,
        scope,
        code,
        name: format!("{code} {kind}"),
        value,
    });
}

#[cfg(test)]
mod tests {
    use super::super::analyze_text;
    use super::*;

    const SAMPLE: &str = r#"
# ==============================================================
#  Dhcp Server \\dc1 set optionvalue 66 STRING "commented.example.com"
# ==============================================================
Dhcp Server \\dc1 add optiondef 160 "Polycom provisioning" STRING 0 comment="Polycom"
Dhcp Server \\dc1 set optionvalue 66 STRING "10.0.20.5"
Dhcp Server \\dc1 add class "Polycom phones" "vendor class" "Polycom" 1
Dhcp Server \\dc1 Scope 10.0.20.0 set optionvalue 160 STRING "http://user:pass word@prov.example.com/"
Dhcp Server \\dc1 Scope 10.0.20.0 set optionvalue 150 IPADDRESS "10.0.20.5" "10.0.20.6"
Dhcp Server \\dc1 Scope 10.0.20.0 set optionvalue 43 BINARY vendor="Microsoft Windows 2000 Options" 010c4d532d55432d436c69656e74
Dhcp Server \\dc1 Scope 10.0.20.0 set reservedoptionvalue 10.0.20.7 66 STRING "host.example.com"
Dhcp Server \\dc1 Scope 10.0.20.0 set optionvalue 3 IPADDRESS "10.0.20.1"
"#;

    #[test]
    fn server_scope_reservation_binary_and_classes() {
        let r = analyze_text("dump.txt", SAMPLE, Dialect::Windows);
        let got: Vec<(u8, &str, &str, u32)> = r
            .options
            .iter()
            .map(|o| (o.code, o.scope.as_str(), o.value.as_str(), o.line))
            .collect();
        assert_eq!(
            got,
            vec![
                (66, "server", "10.0.20.5", 6),
                (60, "vendor class \"Polycom phones\"", "Polycom", 7),
                (
                    160,
                    "scope 10.0.20.0",
                    "http://user:pass word@prov.example.com/",
                    8
                ),
                (150, "scope 10.0.20.0", "10.0.20.5, 10.0.20.6", 9),
                (
                    43,
                    "scope 10.0.20.0 > vendor class \"Microsoft Windows 2000 Options\"",
                    "MS-UC-Client certificate provisioning: ",
                    10
                ),
                (
                    66,
                    "scope 10.0.20.0 > reservation 10.0.20.7",
                    "host.example.com",
                    11
                ),
            ],
            "{r:#?}"
        );
    }
}
