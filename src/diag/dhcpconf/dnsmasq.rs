//! dnsmasq (`dnsmasq.conf` and `--long-option` lines): `dhcp-option=` and
//! `dhcp-option-force=` with their tags (`tag:`, old `net:`), encapsulations (`vendor:`,
//! `encap:`), numeric codes and `option:` names; `dhcp-vendorclass=` class matches; and the
//! includes `conf-file=` and `conf-dir=` (with its `*.ext` filter).

use super::{
    ConfOption, ConfReport, Dialect, Include, PROVISIONING_CODES, hex_value, looks_like_colon_hex,
    parse_hex,
};

/// dnsmasq's names (`option:NAME`) for the options we report.
fn named_code(name: &str) -> Option<u8> {
    Some(match name {
        "time-offset" => 2,
        "ntp-server" => 42,
        "vendor-encap" => 43,
        "vendor-class" => 60,
        "tftp-server" => 66,
        "bootfile-name" => 67,
        "sip-server" => 120,
        _ => return None,
    })
}

/// Splits at commas outside double quotes; quotes are kept on the items.
fn split_items(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            '\\' if quoted => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur).trim().to_string()),
            _ => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out
}

fn unquote(s: &str) -> String {
    match s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => s.to_string(),
    }
}

/// Removes a `#` comment that is outside quotes.
fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

/// Parses one file; returns the includes it names.
pub fn parse(file: &str, text: &str, report: &mut ConfReport) -> Vec<Include> {
    let mut includes = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line_no = n as u32 + 1;
        let line = strip_comment(raw).trim();
        let line = line.strip_prefix("--").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "conf-file" => includes.push(Include::file(value)),
            "conf-dir" => {
                let items = split_items(value);
                let mut inc = Include::file(items[0].clone());
                inc.directory = true;
                for x in &items[1..] {
                    match x.strip_prefix('*') {
                        Some(ext) => inc.extensions.push(ext.to_string()),
                        None => report.notes.push(format!(
                            "{file}:{line_no}: conf-dir exclusion `{x}` ignored; every file is read"
                        )),
                    }
                }
                includes.push(inc);
            }
            "dhcp-vendorclass" => {
                let items = split_items(value);
                let (tag, class) = match items.as_slice() {
                    [t, c, ..] => (t.trim_start_matches("set:").to_string(), c.clone()),
                    [c] => (String::new(), c.clone()),
                    [] => continue,
                };
                report.options.push(ConfOption {
                    file: file.to_string(),
                    line: line_no,
                    dialect: Dialect::Dnsmasq,
                    scope: if tag.is_empty() {
                        "global".into()
                    } else {
                        format!("tag:{tag}")
                    },
                    code: 60,
                    name: "dhcp-vendorclass".into(),
                    value: unquote(&class),
                });
            }
            "dhcp-option" | "dhcp-option-force" => {
                if let Some(opt) = option(file, line_no, key, value, report) {
                    report.options.push(opt);
                }
            }
            _ => {}
        }
    }
    includes
}

fn option(
    file: &str,
    line: u32,
    key: &str,
    value: &str,
    report: &mut ConfReport,
) -> Option<ConfOption> {
    let items = split_items(value);
    let mut tags = Vec::new();
    let mut encap: Option<String> = None;
    let mut i = 0;
    let mut code: Option<u8> = None;
    let mut name = String::new();
    while i < items.len() {
        let it = &items[i];
        i += 1;
        if let Some(t) = it.strip_prefix("tag:").or_else(|| it.strip_prefix("net:")) {
            tags.push(t.to_string());
        } else if let Some(v) = it.strip_prefix("vendor:") {
            encap = Some(format!("vendor class {v}"));
        } else if let Some(e) = it.strip_prefix("encap:") {
            encap = Some(format!("encap {e}"));
            if e != "43" {
                return None;
            }
        } else if it.starts_with("option6:") || it.starts_with("vi-encap:") {
            return None;
        } else if let Some(n) = it.strip_prefix("option:") {
            code = named_code(n);
            name = it.clone();
            // A name we do not report (router, dns-server, ...) ends here.
            code?;
            break;
        } else if let Ok(c) = it.parse::<u8>() {
            code = Some(c);
            name = c.to_string();
            break;
        } else {
            report.notes.push(format!(
                "{file}:{line}: `{key}={value}`: `{it}` not understood"
            ));
            return None;
        }
    }
    let code = code?;
    let values: Vec<String> = items[i..]
        .iter()
        .map(|v| {
            if v.starts_with('"') {
                unquote(v)
            } else if looks_like_colon_hex(v) {
                parse_hex(v).map_or(v.clone(), |b| hex_value(code, &b))
            } else {
                v.clone()
            }
        })
        .collect();
    let (reported, name) = match &encap {
        Some(e) => (43, format!("{name} (sub-option {code} of option 43, {e})")),
        None => (code, name),
    };
    if !PROVISIONING_CODES.contains(&reported) {
        return None;
    }
    Some(ConfOption {
        file: file.to_string(),
        line,
        dialect: Dialect::Dnsmasq,
        scope: if tags.is_empty() {
            "global".into()
        } else {
            tags.iter()
                .map(|t| format!("tag:{t}"))
                .collect::<Vec<_>>()
                .join(" ")
        },
        code: reported,
        name: if key == "dhcp-option-force" {
            format!("{name} (forced)")
        } else {
            name
        },
        value: values.join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::super::{analyze, analyze_text};
    use super::*;

    const SAMPLE: &str = r#"# dnsmasq for the voice VLAN
interface=eth0.20
dhcp-range=set:voice,10.0.20.100,10.0.20.200,12h
#dhcp-option=66,"commented.example.com"
dhcp-option=66,"10.0.20.5"
dhcp-option=tag:voice,160,"http://user:p,a#ss@prov.example.com/"   # comment after
dhcp-option=tag:voice,option:tftp-server,"tagged.example.com"
dhcp-option-force=150,10.0.20.5,10.0.20.6
dhcp-option=161,68:74:74:70:3a:2f:2f:78
dhcp-option=vendor:Polycom,1,"http://vendor.example.com/"
dhcp-option=option:router,10.0.20.1
--dhcp-vendorclass=set:polycom,Polycom
"#;

    #[test]
    fn tags_names_codes_hex_quotes_and_comments() {
        let r = analyze_text("dnsmasq.conf", SAMPLE, Dialect::Dnsmasq);
        let got: Vec<(u8, &str, &str, u32)> = r
            .options
            .iter()
            .map(|o| (o.code, o.scope.as_str(), o.value.as_str(), o.line))
            .collect();
        assert_eq!(
            got,
            vec![
                (66, "global", "10.0.20.5", 5),
                (160, "tag:voice", "http://user:p,a#ss@prov.example.com/", 6),
                (66, "tag:voice", "tagged.example.com", 7),
                (150, "global", "10.0.20.5, 10.0.20.6", 8),
                (161, "global", "http://x", 9),
                (43, "global", "http://vendor.example.com/", 10),
                (60, "tag:polycom", "Polycom", 12),
            ],
            "{r:#?}"
        );
        assert!(r.options[3].name.contains("forced"));
    }

    #[test]
    fn conf_file_and_conf_dir_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir(d.join("conf.d")).expect("mkdir");
        std::fs::write(
            d.join("conf.d/phones.conf"),
            "dhcp-option=160,\"http://dir.example.com/\"\n",
        )
        .expect("w");
        std::fs::write(
            d.join("conf.d/skip.bak"),
            "dhcp-option=160,\"http://no.example.com/\"\n",
        )
        .expect("w");
        std::fs::write(
            d.join("extra.conf"),
            "dhcp-option=66,\"file.example.com\"\n",
        )
        .expect("w");
        std::fs::write(
            d.join("dnsmasq.conf"),
            format!(
                "dhcp-range=10.0.0.10,10.0.0.20\nconf-file={}\nconf-dir={},*.conf\n",
                d.join("extra.conf").display(),
                d.join("conf.d").display()
            ),
        )
        .expect("w");
        let r = analyze(&[d.join("dnsmasq.conf")]);
        let values: Vec<&str> = r.options.iter().map(|o| o.value.as_str()).collect();
        assert_eq!(
            values,
            vec!["file.example.com", "http://dir.example.com/"],
            "{r:#?}"
        );
    }
}
