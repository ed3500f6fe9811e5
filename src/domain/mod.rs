//! Types and pure rules of provisioning: MAC addresses, validation, templates, the rules of
//! Auto-Sync and enrolment, Polycom rendering, User-Agent parsing. No database, no file
//! system, no clock (times are passed in), and nothing of HTTP or HTML: the use cases that
//! read or write state live in `actions`, and `tests/it/layers.rs` keeps it that way.

pub mod account;
pub mod assets;
pub mod audit;
pub mod autosync;
pub mod chart;
pub mod checksync;
pub mod csvcell;
pub mod csvimport;
pub mod device;
pub mod devicepath;
pub mod devicevars;
pub mod dirauth;
pub mod directory;
pub mod enrolment;
pub mod finding;
pub mod firmware;
pub mod inventory;
pub mod ipnet;
pub mod lint;
pub mod mac;
pub mod machine;
pub mod migrate;
pub mod overrides;
pub mod paramcheck;
pub mod policy;
pub mod polycom;
pub mod precedence;
pub mod profile;
pub mod provserver;
pub mod provstate;
pub mod regress;
pub mod settings;
pub mod subscriber;
pub mod template;
pub mod throttle;
pub mod time;
pub mod totp;
pub mod useragent;
pub mod users;
pub mod variables;
pub mod withhold;
pub mod xml;

use sha2::{Digest, Sha256};

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lowercase hex of `bytes`, in one allocation (digests, ETags and nonces are made per
/// request; formatting each byte allocated once per byte).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_lowercase_two_digits_per_byte() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
        assert_eq!(super::hex(&[]), "");
        assert_eq!(
            super::sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
