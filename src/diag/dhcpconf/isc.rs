//! ISC dhcpd (`dhcpd.conf`): a tokenizer (quoted strings with escapes, `#` comments, braces
//! and semicolons) and a walk over the statements that tracks scopes (`subnet`,
//! `shared-network`, `class`, `subclass`, `host`, `group`, `pool`, `if`), option
//! declarations (`option NAME code N = TYPE;`), option spaces encapsulated into option 43
//! (`option space S;` with `vendor-option-space S;`), class matches on the vendor class,
//! and `include "file";`.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use super::{
    ConfOption, ConfReport, Dialect, Include, PROVISIONING_CODES, hex_value, looks_like_colon_hex,
    parse_hex,
};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Str(String),
    Open,
    Close,
    Semi,
    Comma,
}

fn tokenize(text: &str) -> Vec<(Tok, u32)> {
    let mut out = Vec::new();
    let mut line = 1u32;
    let mut chars = text.chars().peekable();
    let mut word = String::new();
    let mut word_line = 1;
    let flush = |word: &mut String, out: &mut Vec<(Tok, u32)>, at: u32| {
        if !word.is_empty() {
            out.push((Tok::Word(std::mem::take(word)), at));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '#' => {
                flush(&mut word, &mut out, word_line);
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                }
            }
            '"' => {
                flush(&mut word, &mut out, word_line);
                let start = line;
                let mut s = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(n) = chars.next() {
                                if n == '\n' {
                                    line += 1;
                                }
                                s.push(match n {
                                    'n' => '\n',
                                    't' => '\t',
                                    other => other,
                                });
                            }
                        }
                        '\n' => {
                            line += 1;
                            s.push(c);
                        }
                        _ => s.push(c),
                    }
                }
                out.push((Tok::Str(s), start));
            }
            '{' | '}' | ';' | ',' => {
                flush(&mut word, &mut out, word_line);
                out.push((
                    match c {
                        '{' => Tok::Open,
                        '}' => Tok::Close,
                        ';' => Tok::Semi,
                        _ => Tok::Comma,
                    },
                    line,
                ));
            }
            c if c.is_whitespace() => {
                flush(&mut word, &mut out, word_line);
                if c == '\n' {
                    line += 1;
                }
            }
            c => {
                if word.is_empty() {
                    word_line = line;
                }
                word.push(c);
            }
        }
    }
    flush(&mut word, &mut out, word_line);
    out
}

/// Option names dhcpd knows without a declaration.
fn builtin_code(name: &str) -> Option<u8> {
    Some(match name {
        "time-offset" => 2,
        "ntp-servers" => 42,
        "vendor-encapsulated-options" => 43,
        "vendor-class-identifier" => 60,
        "tftp-server-name" => 66,
        "bootfile-name" => 67,
        _ => return None,
    })
}

fn word(t: &Tok) -> String {
    match t {
        Tok::Word(w) => w.clone(),
        Tok::Str(s) => format!("\"{s}\""),
        Tok::Open => "{".into(),
        Tok::Close => "}".into(),
        Tok::Semi => ";".into(),
        Tok::Comma => ",".into(),
    }
}

fn join(tokens: &[(Tok, u32)]) -> String {
    let mut s = String::new();
    for (t, _) in tokens {
        if !s.is_empty() && *t != Tok::Comma {
            s.push(' ');
        }
        s.push_str(&word(t));
    }
    s
}

fn prefix_len(mask: &str) -> Option<u32> {
    mask.parse::<Ipv4Addr>()
        .ok()
        .map(|m| u32::from(m).count_ones())
}

fn scope_label(tokens: &[(Tok, u32)]) -> String {
    let w: Vec<String> = tokens.iter().map(|(t, _)| word(t)).collect();
    match w.first().map(String::as_str) {
        Some("subnet") if w.len() >= 4 => match prefix_len(&w[3]) {
            Some(p) => format!("subnet {}/{p}", w[1]),
            None => format!("subnet {} netmask {}", w[1], w[3]),
        },
        Some("group") if w.len() == 1 => "group".into(),
        Some("pool") if w.len() == 1 => "pool".into(),
        _ => w.join(" "),
    }
}

fn mentions_vendor_class(tokens: &[(Tok, u32)]) -> bool {
    tokens.iter().any(|(t, _)| {
        matches!(t, Tok::Word(w) if w.contains("vendor-class-identifier") || w.contains("option[60]"))
    })
}

/// What one file tells the files it includes (and later files): option declarations,
/// vendor option spaces, classes that match on the vendor class.
#[derive(Debug, Default)]
pub struct State {
    declared: HashMap<String, u8>,
    vendor_spaces: Vec<String>,
    vendor_class_matchers: Vec<String>,
}

/// Parses one file on its own; returns the includes it names.
pub fn parse(file: &str, text: &str, report: &mut ConfReport) -> Vec<Include> {
    parse_with(file, text, report, &mut State::default())
}

/// Parses one file with what earlier files declared; returns the includes it names.
pub fn parse_with(
    file: &str,
    text: &str,
    report: &mut ConfReport,
    state: &mut State,
) -> Vec<Include> {
    let tokens = tokenize(text);
    let mut includes = Vec::new();
    let mut scopes: Vec<String> = Vec::new();
    let State {
        declared,
        vendor_spaces,
        vendor_class_matchers,
    } = state;
    // Options in a non-dhcp space, decided once every `vendor-option-space` is known.
    let mut space_options: Vec<(ConfOption, String)> = Vec::new();
    let mut start = 0;
    let scope_now = |scopes: &[String]| {
        if scopes.is_empty() {
            "global".to_string()
        } else {
            scopes.join(" > ")
        }
    };
    for i in 0..tokens.len() {
        let stmt = &tokens[start..i];
        match tokens[i].0 {
            Tok::Open => {
                let label = scope_label(stmt);
                if let Some(opt) = subclass_match(file, stmt, vendor_class_matchers) {
                    report.options.push(opt);
                }
                if stmt.first().map(|t| &t.0) == Some(&Tok::Word("if".into()))
                    && mentions_vendor_class(stmt)
                {
                    report
                        .options
                        .push(class_match(file, stmt, &scope_now(&scopes)));
                }
                scopes.push(label);
                start = i + 1;
            }
            Tok::Close => {
                scopes.pop();
                start = i + 1;
            }
            Tok::Semi => {
                start = i + 1;
                let Some((Tok::Word(first), line)) = stmt.first().cloned() else {
                    continue;
                };
                let words: Vec<String> = stmt.iter().map(|(t, _)| word(t)).collect();
                let scope = scope_now(&scopes);
                match first.as_str() {
                    "include" => {
                        if let Some((Tok::Str(p), _)) = stmt.get(1) {
                            includes.push(Include::file(p.clone()));
                        }
                    }
                    "vendor-option-space" => {
                        if let Some(s) = words.get(1) {
                            vendor_spaces.push(s.clone());
                        }
                    }
                    "match" if mentions_vendor_class(stmt) => {
                        if words.get(1).map(String::as_str) == Some("if") {
                            report.options.push(class_match(file, stmt, &scope));
                        } else if let Some(class) = scopes.last() {
                            // `match option vendor-class-identifier;`: the subclasses name
                            // the values.
                            vendor_class_matchers.push(class.clone());
                        }
                    }
                    "subclass" => {
                        if let Some(opt) = subclass_match(file, stmt, vendor_class_matchers) {
                            report.options.push(opt);
                        }
                    }
                    "option" => {
                        let Some(name) = words.get(1).cloned() else {
                            continue;
                        };
                        if name == "space" {
                            continue;
                        }
                        // `option NAME code N = TYPE;`
                        if words.get(2).map(String::as_str) == Some("code") {
                            if let Some(code) = words.get(3).and_then(|c| c.parse::<u8>().ok()) {
                                declared.insert(name, code);
                            }
                            continue;
                        }
                        let code = declared.get(&name).copied().or_else(|| builtin_code(&name));
                        let value = value_of(&stmt[2..], code.unwrap_or(0));
                        let opt = ConfOption {
                            file: file.to_string(),
                            line,
                            dialect: Dialect::Isc,
                            scope,
                            code: code.unwrap_or(0),
                            name: name.clone(),
                            value,
                        };
                        if let Some((space, _)) = name.split_once('.')
                            && space != "dhcp"
                        {
                            space_options.push((opt, space.to_string()));
                            continue;
                        }
                        match code {
                            Some(c) if PROVISIONING_CODES.contains(&c) => report.options.push(opt),
                            Some(_) => {}
                            None => report.notes.push(format!(
                                "{file}:{line}: option `{name}` is not declared \
                                 (`option {name} code N = ...;`); not analysed"
                            )),
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    for (mut opt, space) in space_options {
        if vendor_spaces.contains(&space) {
            opt.name = format!("{} (sub-option {} of option 43)", opt.name, opt.code);
            opt.code = 43;
            report.options.push(opt);
        }
    }
    includes
}

/// `subclass "C" VALUE` of a class that matches on the vendor class.
fn subclass_match(file: &str, stmt: &[(Tok, u32)], matchers: &[String]) -> Option<ConfOption> {
    let words: Vec<String> = stmt.iter().map(|(t, _)| word(t)).collect();
    if words.first().map(String::as_str) != Some("subclass") || words.len() < 3 {
        return None;
    }
    let class = &words[1];
    matchers
        .iter()
        .any(|c| *c == format!("class {class}"))
        .then(|| ConfOption {
            file: file.to_string(),
            line: stmt[0].1,
            dialect: Dialect::Isc,
            scope: format!("subclass {class}"),
            code: 60,
            name: "vendor-class-identifier".into(),
            value: words[2..].join(" "),
        })
}

fn class_match(file: &str, stmt: &[(Tok, u32)], scope: &str) -> ConfOption {
    ConfOption {
        file: file.to_string(),
        line: stmt.first().map_or(0, |t| t.1),
        dialect: Dialect::Isc,
        scope: scope.to_string(),
        code: 60,
        name: "vendor-class-identifier".into(),
        value: join(stmt),
    }
}

fn value_of(tokens: &[(Tok, u32)], code: u8) -> String {
    match tokens {
        [(Tok::Str(s), _)] => s.clone(),
        [(Tok::Word(w), _)] if looks_like_colon_hex(w) => match parse_hex(w) {
            Some(bytes) => hex_value(code, &bytes),
            None => w.clone(),
        },
        _ => join(tokens),
    }
}

#[cfg(test)]
mod tests {
    use super::super::analyze_text;
    use super::*;

    const SAMPLE: &str = r#"
# Phones VLAN
option space polycom;
option polycom.prov-url code 1 = text;
option polycom-prov code 160 = text;
option cisco-tftp code 150 = array of ip-address;
# option tftp-server-name "old-server.example.com";
option tftp-server-name "global.example.com";   # trailing comment

subnet 10.0.20.0 netmask 255.255.255.0 {
    range 10.0.20.100 10.0.20.200;
    option polycom-prov "https://user:p;a\"ss@prov.example.com/";
    option cisco-tftp 10.0.20.5, 10.0.20.6;
    pool {
        option tftp-server-name 31:30:2e:30:2e:32:30:2e:39;
    }
}

class "polycom" {
    match if substring(option vendor-class-identifier, 0, 7) = "Polycom";
    vendor-option-space polycom;
    option polycom.prov-url "http://class.example.com/";
}

group {
    host phone1 { hardware ethernet 00:04:f2:aa:bb:cc; option polycom-prov "http://host.example.com/"; }
}
"#;

    #[test]
    fn scopes_declarations_hex_and_quotes() {
        let r = analyze_text("dhcpd.conf", SAMPLE, Dialect::Isc);
        let got: Vec<(u8, &str, &str, u32)> = r
            .options
            .iter()
            .map(|o| (o.code, o.scope.as_str(), o.value.as_str(), o.line))
            .collect();
        assert!(
            got.contains(&(66, "global", "global.example.com", 8)),
            "{got:#?}"
        );
        assert!(
            got.contains(&(
                160,
                "subnet 10.0.20.0/24",
                "https://user:p;a\"ss@prov.example.com/",
                12
            )),
            "{got:#?}"
        );
        assert!(
            got.contains(&(150, "subnet 10.0.20.0/24", "10.0.20.5, 10.0.20.6", 13)),
            "{got:#?}"
        );
        assert!(
            got.contains(&(66, "subnet 10.0.20.0/24 > pool", "10.0.20.9", 15)),
            "{got:#?}"
        );
        assert!(
            got.contains(&(160, "group > host phone1", "http://host.example.com/", 26)),
            "{got:#?}"
        );
        assert!(
            got.iter()
                .any(|g| g.0 == 60 && g.1 == "class \"polycom\"" && g.2.contains("\"Polycom\"")),
            "{got:#?}"
        );
        assert!(
            got.contains(&(43, "class \"polycom\"", "http://class.example.com/", 22)),
            "{got:#?}"
        );
        assert!(
            !got.iter().any(|g| g.2.contains("old-server")),
            "commented out: {got:#?}"
        );
    }

    #[test]
    fn subclasses_of_a_vendor_class_matcher_are_listed() {
        let text = "class \"vc\" { match option vendor-class-identifier; }\nsubclass \"vc\" \"Polycom\" { option tftp-server-name \"x\"; }\n";
        let r = analyze_text("d.conf", text, Dialect::Isc);
        assert!(
            r.options
                .iter()
                .any(|o| o.code == 60 && o.value == "\"Polycom\""),
            "{r:?}"
        );
        assert!(
            r.options
                .iter()
                .any(|o| o.code == 66 && o.scope.contains("subclass")),
            "{r:?}"
        );
    }

    #[test]
    fn undeclared_options_become_notes() {
        let r = analyze_text("d.conf", "option mystery \"x\";\n", Dialect::Isc);
        assert!(r.options.is_empty());
        assert!(r.notes[0].contains("d.conf:1"), "{r:?}");
    }
}
