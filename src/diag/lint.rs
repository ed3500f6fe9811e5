//! Lint of Polycom configuration files (DESIGN §10): the mistakes that make a phone ignore
//! or misread what it is served. Files are taken in CONFIG_FILES order (leftmost first,
//! and the first file that sets a parameter wins, polycom.md §2). Checks: well-formed
//! XML; a parameter set twice in one file or again in a later file; a later file's value
//! shadowed by an earlier file; `device.*` without its `.set="1"` or without
//! `device.set="1"`; `device.set="1"` kept for good; secrets served over plain HTTP;
//! unknown `${VARIABLES}`. Every finding names file, line and parameter.
//!
//! Used by `zerotouch lint` and by profile uploads (as warnings that never refuse a
//! profile: `domain::ops::add_profile_checked`).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Severity;
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
    let mut out = Vec::new();
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
    // Where each parameter was first set, over the files in order.
    let mut first: HashMap<&str, (&str, &FoundParam)> = HashMap::new();
    for (file, params) in &parsed {
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
            match first.get(p.name.as_str()) {
                Some((earlier, prev)) if prev.value == p.value => out.push(finding(
                    Severity::Info,
                    "lint.duplicate",
                    file,
                    p.line,
                    &p.name,
                    format!(
                        "also set, to the same value, in {earlier} line {} (earlier in \
                         CONFIG_FILES); this line has no effect",
                        prev.line
                    ),
                )),
                Some((earlier, prev)) => out.push(finding(
                    Severity::Warning,
                    "lint.shadowed",
                    file,
                    p.line,
                    &p.name,
                    format!(
                        "never takes effect: {earlier} line {} sets it first (CONFIG_FILES is \
                         read left to right and the first file that sets a parameter wins); \
                         move this file earlier or remove the other value",
                        prev.line
                    ),
                )),
                None => {
                    first.insert(&p.name, (file, p));
                }
            }
        }
    }
    let effective = |name: &str| first.get(name).map(|(_, p)| p.value.as_str());
    let device_set = effective("device.set").is_some_and(is_on);
    for (file, params) in &parsed {
        for p in params {
            if first
                .get(p.name.as_str())
                .is_none_or(|(f, fp)| f != file || fp.line != p.line)
            {
                continue;
            }
            device_checks(file, p, device_set, &effective, &mut out);
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

    fn lint(files: &[(&str, &str)], t: Transport) -> Vec<LintFinding> {
        let owned: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(n, c)| (n.to_string(), c.as_bytes().to_vec()))
            .collect();
        lint_files(&owned, t, &Vars::default())
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
        let f = lint_files(&files, Transport::Unknown, &Vars::default());
        assert_eq!(codes(&f), vec![("lint.shadowed", "site.cfg", 1, "a.b")]);
    }
}
