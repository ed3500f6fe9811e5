//! Types and rules of provisioning, free of HTTP and HTML: MAC addresses, validation,
//! templates, desired/confirmed device state, Polycom rendering, User-Agent parsing.
//! Never imports rouille or maud.

pub mod account;
pub mod accounts;
pub mod assets;
pub mod assoc;
pub mod audit;
pub mod autosync;
pub mod chart;
pub mod csvimport;
pub mod device;
pub mod devicepath;
pub mod devicevars;
pub mod directory;
pub mod enrolment;
pub mod firmware;
pub mod import;
pub mod inventory;
pub mod ipnet;
pub mod mac;
pub mod ops;
pub mod overrides;
pub mod policy;
pub mod polycom;
pub mod profile;
pub mod profile_ops;
pub mod provisioning;
pub mod provserver;
pub mod provstate;
pub mod settings;
pub mod sightings;
pub mod signin;
pub mod subscriber;
pub mod template;
pub mod templating;
pub mod throttle;
pub mod transfer;
pub mod uploads;
pub mod useragent;
pub mod users;
pub mod variables;
pub mod withhold;
pub mod xml;

use sha2::{Digest, Sha256};

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}
