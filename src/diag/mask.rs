//! Keeping secrets out of what diagnostics print and store. A DHCP option 160 (or 66) may
//! carry `user:password@`, and findings quote options: the evidence of "servers differ",
//! the raw answers, the hex of each option. Every report goes through a [`Masker`] before it
//! is stored or printed: it learns the passwords the report holds (every `user:password@`,
//! with or without a scheme) and the ones it is told (the accounts' current device
//! passwords), then replaces each of them wherever it appears — in clear, percent-encoded
//! or as the hex pairs an option's `hex` field shows. The checks themselves run on the
//! clear values first (a stale credential is found by comparing passwords).

use percent_encoding::percent_decode_str;
use serde_json::Value;

use super::{Finding, hex};
use crate::domain::provserver::{MASK, password_spans};

/// Passwords shorter than this are masked only where they sit in an address: replacing a
/// two-letter password everywhere would garble the report (and hide nothing anyone could
/// not guess).
const MIN_LEARNED: usize = 4;

/// The secrets one report must not show, and the masking of its texts.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    secrets: Vec<String>,
}

impl Masker {
    /// A masker that knows `secrets` (e.g. the accounts' device passwords) besides what it
    /// learns from the report.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Masker {
        let mut m = Masker::default();
        for s in secrets {
            m.add(s);
        }
        m
    }

    fn add(&mut self, secret: &str) {
        if secret.len() < MIN_LEARNED || secret == MASK || secret == "***" {
            return;
        }
        let decoded = percent_decode_str(secret).decode_utf8_lossy().into_owned();
        for s in [secret.to_string(), decoded] {
            if s.len() >= MIN_LEARNED && !self.secrets.contains(&s) {
                self.secrets.push(s);
            }
        }
        // Longest first, so a password that contains another is replaced whole.
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// Learns the password of every address in `text`.
    pub fn learn(&mut self, text: &str) {
        for (a, b) in password_spans(text) {
            self.add(&text[a..b]);
        }
    }

    /// Learns from every string in a JSON value.
    pub fn learn_value(&mut self, value: &Value) {
        match value {
            Value::String(s) => self.learn(s),
            Value::Array(items) => items.iter().for_each(|v| self.learn_value(v)),
            Value::Object(map) => map.values().for_each(|v| self.learn_value(v)),
            _ => {}
        }
    }

    /// `text` with every password in an address and every known secret (also as hex pairs)
    /// replaced by `MASK`.
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
            let hexed = hex(s.as_bytes());
            if out.contains(&hexed) {
                out = out.replace(&hexed, "**");
            }
        }
        let spans = password_spans(&out);
        for (a, b) in spans.into_iter().rev() {
            if &out[a..b] != MASK {
                out.replace_range(a..b, MASK);
            }
        }
        out
    }

    /// Masks every string in a JSON value. An object whose text was masked gets its `hex`
    /// field rewritten from the masked text, so the bytes do not give the password back.
    pub fn mask_value(&self, value: &mut Value) {
        match value {
            Value::String(s) => {
                let masked = self.mask(s);
                if masked != *s {
                    *s = masked;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.mask_value(v)),
            Value::Object(map) => {
                let before = map.clone();
                for v in map.values_mut() {
                    self.mask_value(v);
                }
                let changed = map
                    .iter()
                    .any(|(k, v)| k != "hex" && before.get(k) != Some(v));
                if changed && map.contains_key("hex") {
                    let from = ["text", "value"]
                        .iter()
                        .find_map(|k| map.get(*k).and_then(Value::as_str))
                        .map(|t| hex(t.as_bytes()))
                        .unwrap_or_else(|| MASK.to_string());
                    map.insert("hex".into(), Value::String(from));
                }
            }
            _ => {}
        }
    }

    /// Masks a finding's title, evidence and fix.
    pub fn mask_finding(&self, f: &mut Finding) {
        for text in [&mut f.title, &mut f.evidence, &mut f.fix] {
            let masked = self.mask(text);
            if masked != *text {
                *text = masked;
            }
        }
    }

    /// Masks a report: learns from the value and the findings, then masks both.
    pub fn mask_report(mut self, value: &mut Value, findings: &mut [Finding]) {
        self.learn_value(value);
        for f in findings.iter() {
            self.learn(&f.title);
            self.learn(&f.evidence);
        }
        self.mask_value(value);
        for f in findings.iter_mut() {
            self.mask_finding(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Severity;

    #[test]
    fn a_password_is_gone_from_text_json_and_hex() {
        let option = crate::diag::decode::decode(160, b"http://phones:Secret-Passw0rd@h:8080/");
        let mut value = serde_json::json!({ "options": [option] });
        let mut findings = vec![Finding::new(
            Severity::Warning,
            "dhcp.servers-differ",
            "t",
            "option 160: 10.0.0.1: phones:Secret-Passw0rd@h; 10.0.0.2: (not set)",
            "",
        )];
        Masker::new(["Account-Pass"]).mask_report(&mut value, &mut findings);
        let all = format!("{value} {findings:?}");
        assert!(!all.contains("Secret-Passw0rd"), "{all}");
        assert!(!all.contains(&hex(b"Secret-Passw0rd")), "{all}");
        assert!(all.contains("phones:********@h"), "{all}");
    }

    #[test]
    fn known_secrets_are_masked_anywhere_and_short_ones_only_in_addresses() {
        let m = Masker::new(["Account-Pass", "ab"]);
        assert_eq!(
            m.mask("sent Account-Pass; ab cd"),
            "sent ********; ab cd",
            "a known password anywhere; a short one is left where it is not a password"
        );
        assert_eq!(m.mask("http://u:ab@h/"), "http://u:********@h/");
        let mut m = Masker::default();
        m.learn("http://u:p%3Bss1@h/");
        assert_eq!(m.mask("later p;ss1 again"), "later ******** again");
    }
}
