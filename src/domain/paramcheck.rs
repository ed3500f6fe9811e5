//! What a parameter name and value entering zerotouch are worth against the dictionary
//! (`polycom::dictionary`): with the built-in dictionary alone, an unknown name, an index
//! out of range and a value of the wrong type are warnings (the value is still stored);
//! a near miss — an unknown name one or two edits from a known one (`reg.1.adress`) — is an
//! error with "did you mean". A name the admin marked deliberate is accepted and shown as
//! such, with its reason. Every finding names the place, line and parameter; the value of a
//! secret parameter is never written into one.
//!
//! Pure rules: the caller brings the deliberate names (`actions::params`) and decides what
//! an error refuses. Never called when phones fetch files.

use std::collections::HashMap;

use super::finding::Severity;
use super::lint::LintFinding;
use super::polycom::dictionary::Dictionary;
use super::polycom::params::is_secret;

/// Names an admin marked deliberate, with the reason: exact names or patterns with `N`
/// for each index (`acme.N.tweak`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deliberate(pub HashMap<String, String>);

impl Deliberate {
    /// The reason `name` was marked deliberate, if it was.
    pub fn reason(&self, name: &str) -> Option<&str> {
        if self.0.is_empty() {
            return None;
        }
        self.0
            .get(name)
            .or_else(|| self.0.get(&super::polycom::dictionary::normalize(name).0))
            .map(String::as_str)
    }
}

/// Code of a near miss (an error everywhere).
pub const NEAR_MISS: &str = "param.near-miss";

fn finding(
    sev: Severity,
    code: &str,
    place: &str,
    line: u32,
    name: &str,
    msg: String,
) -> LintFinding {
    LintFinding {
        severity: sev,
        code: code.to_string(),
        file: place.to_string(),
        line,
        param: name.to_string(),
        message: msg,
    }
}

/// The findings for one parameter set at `place` (a file, or a policy's scope) and `line`.
/// `check_value` is false when the value is a template variable, known only per device.
pub fn check(
    dict: &Dictionary,
    deliberate: &Deliberate,
    place: &str,
    line: u32,
    name: &str,
    value: &str,
    check_value: bool,
) -> Vec<LintFinding> {
    let mut out = Vec::new();
    let Some(found) = dict.lookup(name) else {
        if let Some(reason) = deliberate.reason(name) {
            out.push(finding(
                Severity::Info,
                "param.deliberate",
                place,
                line,
                name,
                format!("not in the parameter dictionary; marked deliberate: {reason}"),
            ));
        } else if let Some(known) = dict.near_miss(name) {
            out.push(finding(
                Severity::Error,
                NEAR_MISS,
                place,
                line,
                name,
                format!(
                    "unknown parameter; did you mean {known}? (phones ignore names they do \
                     not know; if this name is deliberate, mark it so with a reason)"
                ),
            ));
        } else {
            out.push(finding(
                Severity::Warning,
                "param.unknown",
                place,
                line,
                name,
                "not in the parameter dictionary: phones ignore names they do not know; check \
                 the spelling, or mark the name deliberate with a reason"
                    .into(),
            ));
        }
        return out;
    };
    let e = found.entry;
    if let Some((pos, index)) = found.bad_index {
        let (lo, hi) = e.ranges[pos];
        out.push(finding(
            Severity::Warning,
            "param.bad-index",
            place,
            line,
            name,
            format!("index {index} is outside {lo} to {hi} ({})", e.name),
        ));
    }
    if check_value && let Err(allowed) = e.check_value(value) {
        let shown = if e.secret || is_secret(name) {
            "the value (a secret, not shown)".to_string()
        } else {
            format!("`{value}`")
        };
        out.push(finding(
            Severity::Warning,
            "param.bad-value",
            place,
            line,
            name,
            format!("{shown} is not allowed: the phone expects {allowed}"),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::polycom::dictionary::builtin;

    fn one(name: &str, value: &str) -> Vec<(Severity, String, String)> {
        check(
            builtin(),
            &Deliberate::default(),
            "site.cfg",
            3,
            name,
            value,
            true,
        )
        .into_iter()
        .map(|f| (f.severity, f.code.clone(), f.to_string()))
        .collect()
    }

    #[test]
    fn a_near_miss_is_an_error_naming_file_line_and_the_known_name() {
        let f = one("reg.1.adress", "100");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].0, Severity::Error);
        assert!(
            f[0].2.starts_with(
                "site.cfg:3: error: reg.1.adress: unknown parameter; did you mean reg.1.address?"
            ),
            "{}",
            f[0].2
        );
    }

    #[test]
    fn unknown_names_bad_values_and_indices_are_warnings() {
        assert_eq!(one("up.totallyMadeUp.param", "1")[0].1, "param.unknown");
        let f = one("up.backlight.idleIntensity", "banana");
        assert_eq!(f[0].0, Severity::Warning);
        assert!(
            f[0].2
                .contains("`banana` is not allowed: the phone expects one of 0, 1, 2, 3"),
            "{}",
            f[0].2
        );
        assert_eq!(one("reg.40.label", "x")[0].1, "param.bad-index");
        assert!(one("reg.1.label", "Desk").is_empty());
    }

    #[test]
    fn secret_values_never_appear_in_a_finding() {
        let f = one("reg.1.auth.password", &"hunter2".repeat(50));
        assert_eq!(f[0].1, "param.bad-value");
        assert!(!f[0].2.contains("hunter2"), "{}", f[0].2);
        assert!(f[0].2.contains("a secret, not shown"), "{}", f[0].2);
    }

    #[test]
    fn a_deliberate_name_is_accepted_with_its_reason_even_when_close_to_a_known_one() {
        let mut d = Deliberate::default();
        d.0.insert("acme.N.tweak".into(), "our PBX plug-in".into());
        d.0.insert("reg.1.adress".into(), "testing a typo".into());
        for name in ["acme.4.tweak", "reg.1.adress"] {
            let f = check(builtin(), &d, "a.cfg", 1, name, "1", true);
            assert_eq!(f.len(), 1, "{f:?}");
            assert_eq!(
                (f[0].severity, f[0].code.as_str()),
                (Severity::Info, "param.deliberate")
            );
        }
    }
}
