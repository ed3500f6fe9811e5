//! The second factor of console users: time-based one-time passwords (RFC 6238, the
//! parameters every authenticator app uses: HMAC-SHA1, 6 digits, 30-second steps), and
//! recovery codes. Pure rules: generating a secret and its `otpauth://` address, checking a
//! code against a time and the last step accepted (a code is accepted once), and making and
//! hashing recovery codes. Storing (sealed) and the pages live elsewhere; a secret never
//! appears in a `Debug` output, a log line or an error.

use totp_rs::{Algorithm, Secret, TOTP};

/// Seconds per step.
pub const STEP_SECS: u64 = 30;
/// Digits of a code.
pub const DIGITS: usize = 6;
/// Steps before and after now whose codes are accepted (clock drift, typing time).
pub const SKEW_STEPS: u64 = 1;
/// Recovery codes made at enrolment.
pub const RECOVERY_CODES: usize = 10;

/// A TOTP secret in its base32 form (what authenticator apps are given). Its `Debug`
/// output hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(String);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

impl TotpSecret {
    /// A new random secret of 160 bits (RFC 4226's recommended length).
    pub fn generate() -> TotpSecret {
        let mut raw = [0u8; 20];
        getrandom::fill(&mut raw).expect("the system has random numbers");
        TotpSecret(Secret::Raw(raw.to_vec()).to_encoded().to_string())
    }

    /// A stored secret (base32), as it was generated.
    pub fn from_base32(s: &str) -> TotpSecret {
        TotpSecret(s.to_string())
    }

    /// The base32 text, to store (sealed) or show once at enrolment.
    pub fn base32(&self) -> &str {
        &self.0
    }

    fn totp(&self) -> Option<TOTP> {
        let raw = Secret::Encoded(self.0.clone()).to_bytes().ok()?;
        TOTP::new(Algorithm::SHA1, DIGITS, 0, STEP_SECS, raw).ok()
    }

    /// The code of the step holding `unix_secs`.
    pub fn code_at(&self, unix_secs: u64) -> Option<String> {
        self.totp().map(|t| t.generate(unix_secs))
    }

    /// The `otpauth://` address an authenticator app reads from the QR code.
    pub fn otpauth_url(&self, issuer: &str, account: &str) -> String {
        use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode as enc};
        format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
            enc(issuer, NON_ALPHANUMERIC),
            enc(account, NON_ALPHANUMERIC),
            self.0,
            enc(issuer, NON_ALPHANUMERIC),
        )
    }

    /// Checks `code` at `unix_secs`: the step it belongs to (within `SKEW_STEPS` of now)
    /// when that step is later than `last_step` (the last one accepted for this user, so a
    /// code is never accepted twice), else `None`.
    pub fn accept(&self, code: &str, unix_secs: u64, last_step: u64) -> Option<u64> {
        let code = code.trim();
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let totp = self.totp()?;
        let now = unix_secs / STEP_SECS;
        let mut found = None;
        // Every candidate is computed and compared in constant time, whichever matches.
        for step in now.saturating_sub(SKEW_STEPS)..=now + SKEW_STEPS {
            let expected = totp.generate(step * STEP_SECS);
            if constant_time_eq(expected.as_bytes(), code.as_bytes()) && step > last_step {
                found = Some(step);
            }
        }
        found
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// New recovery codes: `RECOVERY_CODES` codes of 12 characters (about 70 bits each),
/// shown as `xxxx-xxxx-xxxx`.
pub fn recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let t = crate::domain::account::random_token(12).to_lowercase();
            format!("{}-{}-{}", &t[..4], &t[4..8], &t[8..])
        })
        .collect()
}

/// The stored form of a recovery code: SHA-256 of the code without spaces and dashes,
/// lower case (random codes of 70 bits need no slow hash).
pub fn recovery_hash(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    crate::domain::sha256_hex(normal.as_bytes())
}

/// Whether what was typed looks like a recovery code rather than a six-digit code.
pub fn is_recovery_code(input: &str) -> bool {
    input.chars().filter(char::is_ascii_alphanumeric).count() == 12
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B: the SHA-1 secret "12345678901234567890".
    fn rfc_secret() -> TotpSecret {
        TotpSecret(
            Secret::Raw(b"12345678901234567890".to_vec())
                .to_encoded()
                .to_string(),
        )
    }

    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        let s = rfc_secret();
        // The RFC's 8-digit values, last six digits.
        assert_eq!(s.code_at(59).as_deref(), Some("287082"));
        assert_eq!(s.code_at(1_111_111_109).as_deref(), Some("081804"));
        assert_eq!(s.code_at(2_000_000_000).as_deref(), Some("279037"));
    }

    #[test]
    fn a_code_is_accepted_within_one_step_and_only_once() {
        let s = TotpSecret::generate();
        let t = 1_700_000_000;
        let code = s.code_at(t).expect("code");
        let step = s.accept(&code, t, 0).expect("accepted");
        assert_eq!(step, t / STEP_SECS);
        assert_eq!(s.accept(&code, t + 30, 0), Some(step), "a step late");
        assert_eq!(s.accept(&code, t + 95, 0), None, "too late");
        assert_eq!(s.accept(&code, t, step), None, "already used");
        assert_eq!(s.accept("12345", t, 0), None);
        assert_eq!(s.accept("abcdef", t, 0), None);
        assert!(!format!("{s:?}").contains(s.base32()));
    }

    #[test]
    fn recovery_codes_are_distinct_and_hash_without_formatting() {
        let codes = recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert!(codes.iter().all(|c| is_recovery_code(c)));
        assert_eq!(
            recovery_hash(&codes[0]),
            recovery_hash(&codes[0].replace('-', " ").to_uppercase())
        );
        assert_ne!(recovery_hash(&codes[0]), recovery_hash(&codes[1]));
        assert!(!is_recovery_code("123456"));
    }

    #[test]
    fn the_otpauth_url_names_issuer_account_and_secret() {
        let s = TotpSecret::from_base32("JBSWY3DPEHPK3PXP");
        assert_eq!(
            s.otpauth_url("zerotouch", "kim@acme"),
            "otpauth://totp/zerotouch:kim%40acme?secret=JBSWY3DPEHPK3PXP&issuer=zerotouch&algorithm=SHA1&digits=6&period=30"
        );
    }
}
