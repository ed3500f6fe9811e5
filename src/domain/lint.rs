//! Lint of Polycom configuration files (docs/design.md §10): the mistakes that make a phone ignore
//! or misread what it is served. Files are taken in CONFIG_FILES order (leftmost first,
//! and the first file that sets a parameter wins, docs/design.md §2). Checks: well-formed
//! XML; a parameter set twice in one file or again in a later file; a later file's value
//! shadowed by an earlier file; `device.*` without its `.set="1"` or without
//! `device.set="1"`; `device.set="1"` kept for good; secrets served over plain HTTP;
//! unknown `${VARIABLES}`; names and values against the parameter dictionary
//! (`domain::paramcheck`: a near miss such as `reg.1.adress` is an error). Every finding
//! names file, line and parameter.
//!
//! Used by `zerotouch lint` and by profile uploads (as warnings that never refuse a
//! profile: `actions::profiles::lint_files`).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::finding::Severity;
use super::paramcheck::{self, Deliberate};
use super::polycom::dictionary;
use super::precedence::{self, Layer, Level, Resolution};
use super::provstate::Source;
use crate::domain::polycom::params::is_secret;
use crate::domain::template::{self, Vars};
use crate::domain::xml::{self, FoundParam};
use crate::error::Error;

/// How the files will reach phones, for the secrets check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The server answers phones over plain HTTP: secrets travel in clear.
    PlainHttp,
    /// Only HTTPS: secrets are protected in transit.
    HttpsOnly,
    /// Not known (a file linted on its own): secrets are mentioned as information.
    Unknown,
}

/// One lint finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LintFinding {
    pub severity: Severity,
    pub code: String,
    pub file: String,
    /// 1-based line (0 when not known).
    pub line: u32,
    /// The parameter concerned, or empty for file-level findings.
    pub param: String,
    pub message: String,
}

impl std::fmt::Display for LintFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}: ", self.file, self.line, self.severity)?;
        if !self.param.is_empty() {
            write!(f, "{}: ", self.param)?;
        }
        write!(f, "{} [{}]", self.message, self.code)
    }
}

fn finding(
    sev: Severity,
    code: &str,
    file: &str,
    line: u32,
    param: &str,
    msg: String,
) -> LintFinding {
    LintFinding {
        severity: sev,
        code: code.to_string(),
        file: file.to_string(),
        line,
        param: param.to_string(),
        message: msg,
    }
}

/// The line number in messages such as `line 3: ...` or `... at line 3, column 7`.
fn line_in(message: &str) -> u32 {
    message
        .split("line ")
        .nth(1)
        .and_then(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn is_on(v: &str) -> bool {
    v.trim() == "1"
}

/// Lints files given in CONFIG_FILES order. A master file (`CONFIG_FILES` attribute)
/// among them is checked for well-formedness only.
pub fn lint_files(
    files: &[(String, Vec<u8>)],
    transport: Transport,
    vars: &Vars,
) -> Vec<LintFinding> {
    lint_files_with(files, transport, vars, &Deliberate::default())
}

/// `lint_files`, with the names the admin marked deliberate.
pub fn lint_files_with(
    files: &[(String, Vec<u8>)],
    transport: Transport,
    vars: &Vars,
    deliberate: &Deliberate,
) -> Vec<LintFinding> {
    let mut out = Vec::new();
    let parsed = parse_files(files, vars, &mut out);
    dictionary_checks(files, &parsed, deliberate, &mut out);
    duplicates_within(&parsed, &mut out);
    // Across files: the precedence rule (the first file in CONFIG_FILES wins); what a later
    // file sets again is shadowed.
    let resolution = precedence::resolve(parsed.iter().map(|(file, params)| {
        let mut layer = Layer::new(Level::ProfileFile);
        for p in params {
            layer.push_at(&p.name, &p.value, Source::ProfileFile, *file, p.line);
        }
        layer
    }));
    shadowed_across(&resolution, &mut out);
    winner_checks(&parsed, &resolution, transport, &mut out);
    out.sort_by(|a, b| {
        (a.file.as_str(), a.line)
            .cmp(&(b.file.as_str(), b.line))
            .then(a.severity.cmp(&b.severity))
    });
    // Files keep the order they were given in, not alphabetical order.
    let pos = |f: &str| files.iter().position(|(n, _)| n == f).unwrap_or(usize::MAX);
    out.sort_by_key(|f| pos(&f.file));
    out
}

/// Parses every file (templates with sample values, so line numbers stay the file's),
/// reporting files that are not well-formed and unknown variables. A master file is left
/// out of what is returned.
fn parse_files<'f>(
    files: &'f [(String, Vec<u8>)],
    vars: &Vars,
    out: &mut Vec<LintFinding>,
) -> Vec<(&'f str, Vec<FoundParam>)> {
    let mut parsed: Vec<(&str, Vec<FoundParam>)> = Vec::new();
    for (name, bytes) in files {
        // Templates are parsed with sample values (variables in names, `${OVERRIDE}` in
        // tags); line numbers stay those of the file.
        let sample;
        let xml_bytes: &[u8] = if template::has_variables(bytes)
            && let Ok(text) = std::str::from_utf8(bytes)
        {
            sample = template::check_form(text);
            sample.as_bytes()
        } else {
            bytes
        };
        match xml::parse_params(name, xml_bytes) {
            Ok(params) => {
                if params.is_empty() && is_master(bytes) {
                    continue;
                }
                if template::has_variables(bytes)
                    && let Err(Error::Invalid(problems)) =
                        template::check(name, &String::from_utf8_lossy(bytes), vars)
                {
                    for p in problems {
                        let param = params
                            .iter()
                            .find(|fp| fp.line == line_in(&p.message))
                            .map(|fp| fp.name.clone())
                            .unwrap_or_default();
                        out.push(finding(
                            Severity::Error,
                            "lint.unknown-variable",
                            name,
                            line_in(&p.message),
                            &param,
                            format!(
                                "{}; define it as a custom variable or fix its name",
                                p.message
                            ),
                        ));
                    }
                }
                parsed.push((name, params));
            }
            Err(e) => {
                let message = match &e {
                    Error::Invalid(p) => p.first().map(|p| p.message.clone()).unwrap_or_default(),
                    other => other.to_string(),
                };
                out.push(finding(
                    Severity::Error,
                    "lint.not-well-formed",
                    name,
                    line_in(&message),
                    "",
                    format!("{message}; phones ignore the whole file"),
                ));
            }
        }
    }
    parsed
}

/// Every parameter against the dictionary. A value on a line holding a `${VARIABLE}` is
/// known only per device: its name is checked, not its value.
fn dictionary_checks(
    files: &[(String, Vec<u8>)],
    parsed: &[(&str, Vec<FoundParam>)],
    deliberate: &Deliberate,
    out: &mut Vec<LintFinding>,
) {
    let dict = dictionary::builtin();
    for (file, params) in parsed {
        let templated: std::collections::HashSet<u32> = files
            .iter()
            .find(|(n, _)| n == file)
            .map(|(_, b)| {
                String::from_utf8_lossy(b)
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| l.contains("${"))
                    .map(|(i, _)| i as u32 + 1)
                    .collect()
            })
            .unwrap_or_default();
        for p in params {
            let check_value = !templated.contains(&p.line);
            out.extend(paramcheck::check(
                dict,
                deliberate,
                file,
                p.line,
                &p.name,
                &p.value,
                check_value,
            ));
        }
    }
}

/// The near misses among `findings` as problems that refuse what carried them, each naming
/// the file, the line and the parameter.
pub fn near_miss_problems(findings: &[LintFinding]) -> Vec<crate::error::FieldError> {
    findings
        .iter()
        .filter(|f| f.code == paramcheck::NEAR_MISS)
        .map(|f| {
            crate::error::FieldError::new(
                &f.file,
                format!("line {}: `{}`: {}", f.line, f.param, f.message),
            )
        })
        .collect()
}

/// A parameter set twice within one file.
fn duplicates_within(parsed: &[(&str, Vec<FoundParam>)], out: &mut Vec<LintFinding>) {
    for (file, params) in parsed {
        let mut here: HashMap<&str, &FoundParam> = HashMap::new();
        for p in params {
            if let Some(prev) = here.get(p.name.as_str()) {
                out.push(finding(
                    Severity::Warning,
                    "lint.duplicate",
                    file,
                    p.line,
                    &p.name,
                    format!(
                        "set twice in this file (also line {}, {}); only one value takes effect",
                        prev.line,
                        if prev.value == p.value {
                            "same value"
                        } else {
                            "another value"
                        }
                    ),
                ));
                continue;
            }
            here.insert(&p.name, p);
        }
    }
}

/// What a later file sets again: shadowed (or, with the same value, without effect).
fn shadowed_across(resolution: &Resolution, out: &mut Vec<LintFinding>) {
    for (name, winner) in resolution.winners() {
        let earlier = winner.detail.as_str();
        let at = winner.line.unwrap_or(0);
        for s in resolution.shadowed(name) {
            let line = s.line.unwrap_or(0);
            out.push(if s.value == winner.value {
                finding(
                    Severity::Info,
                    "lint.duplicate",
                    &s.detail,
                    line,
                    name,
                    format!(
                        "also set, to the same value, in {earlier} line {at} (earlier in \
                         CONFIG_FILES); this line has no effect"
                    ),
                )
            } else {
                finding(
                    Severity::Warning,
                    "lint.shadowed",
                    &s.detail,
                    line,
                    name,
                    format!(
                        "never takes effect: {earlier} line {at} sets it first (CONFIG_FILES is \
                         read left to right and the first file that sets a parameter wins); \
                         move this file earlier or remove the other value"
                    ),
                )
            });
        }
    }
}

/// Checks of the values that take effect: `device.*` rules and secrets over plain HTTP.
fn winner_checks(
    parsed: &[(&str, Vec<FoundParam>)],
    resolution: &Resolution,
    transport: Transport,
    out: &mut Vec<LintFinding>,
) {
    let first: HashMap<&str, (&str, u32, &str)> = resolution
        .winners()
        .map(|(n, c)| {
            (
                n,
                (c.detail.as_str(), c.line.unwrap_or(0), c.value.as_str()),
            )
        })
        .collect();
    let effective = |name: &str| first.get(name).map(|(_, _, v)| *v);
    let device_set = effective("device.set").is_some_and(is_on);
    for (file, params) in parsed {
        for p in params {
            if first
                .get(p.name.as_str())
                .is_none_or(|(f, line, _)| f != file || *line != p.line)
            {
                continue;
            }
            device_checks(file, p, device_set, &effective, out);
            if is_secret(&p.name) && !p.value.is_empty() {
                match transport {
                    Transport::PlainHttp => out.push(finding(
                        Severity::Warning,
                        "lint.secret-over-http",
                        file,
                        p.line,
                        &p.name,
                        "a secret in a file served over plain HTTP travels in clear (Digest \
                         protects the login, not the file); serve phones over HTTPS or set it \
                         another way"
                            .into(),
                    )),
                    Transport::Unknown => out.push(finding(
                        Severity::Info,
                        "lint.secret-over-http",
                        file,
                        p.line,
                        &p.name,
                        "a secret: if this file is served over plain HTTP it travels in clear"
                            .into(),
                    )),
                    Transport::HttpsOnly => {}
                }
            }
        }
    }
}

fn device_checks<'a>(
    file: &str,
    p: &FoundParam,
    device_set: bool,
    effective: &impl Fn(&str) -> Option<&'a str>,
    out: &mut Vec<LintFinding>,
) {
    if !p.name.starts_with("device.") {
        return;
    }
    if p.name == "device.set" {
        if is_on(&p.value) {
            out.push(finding(
                Severity::Warning,
                "lint.device-set-left-on",
                file,
                p.line,
                &p.name,
                "device.set=\"1\" kept in a file phones read at every boot makes them apply \
                 every device.* parameter again each time (and undo changes made on the \
                 phone); remove it after the first boot, as the Lync deployment guide says"
                    .into(),
            ));
        }
        return;
    }
    if p.name.ends_with(".set") {
        return;
    }
    let own_set = effective(&format!("{}.set", p.name)).is_some_and(is_on);
    let missing: Vec<&str> = [
        (!own_set).then_some("its own .set=\"1\""),
        (!device_set).then_some("device.set=\"1\""),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !missing.is_empty() {
        out.push(finding(
            Severity::Warning,
            "lint.device-without-set",
            file,
            p.line,
            &p.name,
            format!(
                "ignored by the phone: a device.* parameter applies only with {} (missing: {})",
                "`<name>.set=\"1\"` and `device.set=\"1\"`",
                missing.join(" and ")
            ),
        ));
    }
}

fn is_master(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    text.contains("CONFIG_FILES") && text.contains("<APPLICATION")
}

/// The CONFIG_FILES list of a master file, if the bytes are one (model-specific lists and
/// `[PHONE_MAC_ADDRESS]` names are kept as written).
pub fn master_config_files(bytes: &[u8]) -> Option<Vec<String>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let doc = roxmltree::Document::parse(text.strip_prefix('\u{feff}').unwrap_or(text)).ok()?;
    let value = doc
        .descendants()
        .filter(|n| n.is_element())
        .find_map(|n| n.attribute("CONFIG_FILES"))?;
    Some(
        value
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
    )
}

/// Puts files in the order a master file among them names in CONFIG_FILES (files it does
/// not name keep their order, after those it names). Returns the master's list, if any.
pub fn order_by_master(files: &mut [(String, Vec<u8>)]) -> Option<Vec<String>> {
    let list = files.iter().find_map(|(_, b)| master_config_files(b))?;
    let base = |n: &str| n.rsplit('/').next().unwrap_or(n).to_string();
    let rank = |name: &str| {
        list.iter()
            .position(|l| *l == base(name))
            .unwrap_or(usize::MAX)
    };
    files.sort_by_key(|(n, _)| rank(n));
    Some(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The findings of these files, without the dictionary's (the names here are
    /// placeholders; `the_dictionary_checks_names_and_values` covers those).
    fn lint(files: &[(&str, &str)], t: Transport) -> Vec<LintFinding> {
        let mut f = lint_all(files, t);
        f.retain(|f| !f.code.starts_with("param."));
        f
    }

    fn lint_all(files: &[(&str, &str)], t: Transport) -> Vec<LintFinding> {
        let owned: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(n, c)| (n.to_string(), c.as_bytes().to_vec()))
            .collect();
        lint_files(&owned, t, &Vars::default())
    }

    #[test]
    fn the_dictionary_checks_names_and_values() {
        let f = lint_all(
            &[(
                "site.cfg",
                "<c\n reg.1.adress=\"100\"\n up.backlight.idleIntensity=\"banana\"\n                  up.totallyMadeUp.param=\"1\"\n reg.1.label=\"${NOPE}x\"\n                  up.idleTimeout=\"${NOPE}\"/>",
            )],
            Transport::Unknown,
        );
        let c: Vec<(&str, u32, &str, Severity)> = f
            .iter()
            .filter(|f| f.code.starts_with("param."))
            .map(|f| (f.code.as_str(), f.line, f.param.as_str(), f.severity))
            .collect();
        assert_eq!(
            c,
            vec![
                ("param.near-miss", 2, "reg.1.adress", Severity::Error),
                (
                    "param.bad-value",
                    3,
                    "up.backlight.idleIntensity",
                    Severity::Warning
                ),
                (
                    "param.unknown",
                    4,
                    "up.totallyMadeUp.param",
                    Severity::Warning
                ),
            ],
            "{f:#?}"
        );
        let problems = near_miss_problems(&f);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].to_string().starts_with(
                "site.cfg: line 2: `reg.1.adress`: unknown parameter; did you mean reg.1.address?"
            ),
            "{}",
            problems[0]
        );
    }

    fn codes(f: &[LintFinding]) -> Vec<(&str, &str, u32, &str)> {
        f.iter()
            .map(|f| (f.code.as_str(), f.file.as_str(), f.line, f.param.as_str()))
            .collect()
    }

    #[test]
    fn broken_xml_names_the_line() {
        let f = lint(&[("a.cfg", "<a>\n<b x.y=\"1\">\n</a>")], Transport::Unknown);
        assert_eq!(f[0].code, "lint.not-well-formed");
        assert_eq!(f[0].line, 3);
    }

    #[test]
    fn twice_in_a_file_and_shadowed_across_files() {
        let f = lint(
            &[
                ("first.cfg", "<c\n a.b=\"1\"\n c.d=\"x\"/>"),
                ("second.cfg", "<c a.b=\"2\"\n c.d=\"x\"/>"),
            ],
            Transport::Unknown,
        );
        // roxmltree refuses duplicate attributes on one element, so use two elements.
        let dup_in_one = lint(
            &[("one.cfg", "<c>\n<a e.f=\"1\"/>\n<b e.f=\"2\"/>\n</c>")],
            Transport::Unknown,
        );
        assert_eq!(
            codes(&dup_in_one),
            vec![("lint.duplicate", "one.cfg", 3, "e.f")]
        );
        let c = codes(&f);
        assert!(
            c.contains(&("lint.shadowed", "second.cfg", 1, "a.b")),
            "{f:#?}"
        );
        assert!(
            c.contains(&("lint.duplicate", "second.cfg", 2, "c.d")),
            "{f:#?}"
        );
    }

    #[test]
    fn device_parameters_need_both_sets_and_device_set_is_flagged() {
        let f = lint(
            &[(
                "d.cfg",
                "<c device.set=\"1\"\n device.prov.serverName=\"x\"\n device.sntp.serverName=\"y\"\n device.sntp.serverName.set=\"1\"/>",
            )],
            Transport::Unknown,
        );
        let c = codes(&f);
        assert!(
            c.contains(&("lint.device-set-left-on", "d.cfg", 1, "device.set")),
            "{f:#?}"
        );
        assert!(
            c.contains(&(
                "lint.device-without-set",
                "d.cfg",
                2,
                "device.prov.serverName"
            )),
            "{f:#?}"
        );
        assert!(!c.iter().any(|x| x.3 == "device.sntp.serverName"), "{f:#?}");
        let without = lint(
            &[("e.cfg", "<c device.x.y=\"1\" device.x.y.set=\"1\"/>")],
            Transport::Unknown,
        );
        assert!(
            without[0].message.contains("missing: device.set"),
            "{without:#?}"
        );
    }

    #[test]
    fn secrets_over_plain_http_and_unknown_variables() {
        let files = [(
            "s.cfg",
            "<c reg.1.auth.password=\"hunter2\"\n reg.1.label=\"${NOPE}\"/>",
        )];
        let f = lint(&files, Transport::PlainHttp);
        let c = codes(&f);
        assert!(
            c.contains(&("lint.secret-over-http", "s.cfg", 1, "reg.1.auth.password")),
            "{f:#?}"
        );
        assert!(
            c.contains(&("lint.unknown-variable", "s.cfg", 2, "reg.1.label")),
            "{f:#?}"
        );
        assert_eq!(
            f.iter()
                .find(|x| x.code == "lint.secret-over-http")
                .map(|x| x.severity),
            Some(Severity::Warning)
        );
        assert!(
            lint(&files, Transport::HttpsOnly)
                .iter()
                .all(|x| x.code != "lint.secret-over-http")
        );
    }

    #[test]
    fn a_master_file_orders_the_others() {
        let mut files = vec![
            ("site.cfg".to_string(), b"<c a.b=\"2\"/>".to_vec()),
            ("phone.cfg".to_string(), b"<c a.b=\"1\"/>".to_vec()),
            (
                "000000000000.cfg".to_string(),
                b"<APPLICATION CONFIG_FILES=\"phone.cfg, site.cfg\"/>".to_vec(),
            ),
        ];
        let list = order_by_master(&mut files).expect("master");
        assert_eq!(list, vec!["phone.cfg", "site.cfg"]);
        assert_eq!(files[0].0, "phone.cfg");
        let mut f = lint_files(&files, Transport::Unknown, &Vars::default());
        f.retain(|f| !f.code.starts_with("param."));
        assert_eq!(codes(&f), vec![("lint.shadowed", "site.cfg", 1, "a.b")]);
    }
}
