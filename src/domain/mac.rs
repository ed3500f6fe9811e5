//! MAC addresses: the identity of a phone everywhere in zerotouch.
//!
//! Stored and shown as 12 lowercase hex digits (phones request lowercase file names; either
//! case is accepted on input). Separators are accepted only where an admin types a MAC
//! (`00:04:f2:…`, `00-04-F2-…`); file names from phones must be the bare 12 digits.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// A 48-bit MAC address, normalised to lowercase hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac([u8; 12]);

/// The all-zero MAC that names the default master file, `000000000000.cfg`.
pub const ZERO: Mac = Mac(*b"000000000000");

impl Mac {
    /// Parses exactly 12 hex digits, in either case, with no separators.
    pub fn from_bare(s: &str) -> Option<Mac> {
        let b = s.as_bytes();
        if b.len() != 12 || !b.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let mut out = [0u8; 12];
        for (o, c) in out.iter_mut().zip(b) {
            *o = c.to_ascii_lowercase();
        }
        Some(Mac(out))
    }

    /// Parses what an admin may type: 12 hex digits, optionally separated by `:`, `-` or `.`
    /// in the usual groupings.
    pub fn parse_lenient(s: &str) -> Option<Mac> {
        let s = s.trim();
        if let Some(m) = Mac::from_bare(s) {
            return Some(m);
        }
        let groups: Vec<&str> = s.split([':', '-', '.']).collect();
        let ok_shape = (groups.len() == 6 && groups.iter().all(|g| g.len() == 2))
            || (groups.len() == 3 && groups.iter().all(|g| g.len() == 4));
        if !ok_shape {
            return None;
        }
        Mac::from_bare(&groups.concat())
    }

    /// Finds the MAC a certificate name (subject CN or a SAN) stands for, in the forms
    /// device certificates use: `0004f2aabbcc`, `00:04:f2:aa:bb:cc`, `00-04-F2-AA-BB-CC`,
    /// `0004.f2aa.bbcc`, `SEP0004F2AABBCC` (optionally `SEP` followed by a separator), and
    /// any of these as the first label of a DNS name (`0004f2aabbcc.phones.example`).
    /// The all-zero MAC is never an identity.
    pub fn from_cert_name(name: &str) -> Option<Mac> {
        let name = name.trim();
        let stripped = match name.get(..3) {
            Some(p) if p.eq_ignore_ascii_case("SEP") => {
                name[3..].trim_start_matches([':', '-', '_'])
            }
            _ => name,
        };
        Mac::parse_lenient(stripped)
            .or_else(|| {
                let first = stripped
                    .split('.')
                    .next()
                    .filter(|f| f.len() < stripped.len())?;
                Mac::parse_lenient(first)
            })
            .filter(|m| !m.is_zero())
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("000000000000")
    }

    pub fn is_zero(&self) -> bool {
        *self == ZERO
    }

    /// Uppercase form, the default serial number (the ZTP guide, Table 2).
    pub fn upper(&self) -> String {
        self.as_str().to_ascii_uppercase()
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mac {
    type Err = Error;
    fn from_str(s: &str) -> Result<Mac, Error> {
        Mac::parse_lenient(s).ok_or_else(|| {
            Error::invalid(
                "mac",
                format!("`{s}` is not a MAC address (12 hex digits, e.g. 0004f2aabbcc)"),
            )
        })
    }
}

impl serde::Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn either_case_is_accepted_and_stored_lowercase() {
        assert_eq!(
            Mac::from_bare("0004F2AABBCC")
                .map(|m| m.to_string())
                .as_deref(),
            Some("0004f2aabbcc")
        );
    }

    #[test]
    fn separators_only_in_lenient_form() {
        assert!(Mac::from_bare("00:04:f2:aa:bb:cc").is_none());
        assert_eq!(
            Mac::parse_lenient("00:04:f2:aa:bb:cc"),
            Mac::from_bare("0004f2aabbcc")
        );
        assert_eq!(
            Mac::parse_lenient("0004.f2aa.bbcc"),
            Mac::from_bare("0004f2aabbcc")
        );
        assert!(Mac::parse_lenient("0004f2aabbc").is_none());
        assert!(Mac::parse_lenient("0004f2aabbcg").is_none());
        assert!(Mac::parse_lenient("00:04:f2:aa:bbcc").is_none());
    }

    #[test]
    fn certificate_names_in_common_forms_name_a_mac() {
        let want = Mac::from_bare("0004f2aabbcc");
        for name in [
            "0004f2aabbcc",
            "00:04:f2:aa:bb:cc",
            "00-04-F2-AA-BB-CC",
            "0004.f2aa.bbcc",
            "SEP0004F2AABBCC",
            "sep-0004f2aabbcc",
            "0004f2aabbcc.phones.example.com",
        ] {
            assert_eq!(Mac::from_cert_name(name), want, "{name}");
        }
        for name in [
            "phone.example.com",
            "000000000000",
            "SEP",
            "0004f2aabbc",
            "",
        ] {
            assert_eq!(Mac::from_cert_name(name), None, "{name}");
        }
    }

    #[test]
    fn error_names_the_field() {
        let err = "nope".parse::<Mac>().expect_err("invalid");
        assert!(err.to_string().starts_with("mac:"), "{err}");
    }
}
