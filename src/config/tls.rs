//! The `[tls]` section and the settings of device HTTP/HTTPS that depend on it: which
//! certificate the HTTPS listeners serve (generated from a local CA, or supplied by the
//! admin), client certificates, and whether the local CA is delivered to phones. Only
//! the shape and the static checks live here; `crate::tls` loads and generates material.

use std::path::PathBuf;

use serde::Deserialize;

use super::{Config, at_least, positive};
use crate::error::FieldError;

/// What device HTTP (plain, unencrypted) may serve.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum HttpMode {
    /// Every device file.
    Full,
    /// Only files that carry no secrets.
    NoSecrets,
}

/// Key type of generated certificates.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum KeyType {
    /// RSA 2048 bits: handshakes with old phone firmware.
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    /// ECDSA on P-256: smaller and faster, but not for UCS phones: EC server keys are
    /// reported to break Polycom phones (unconfirmed by Poly; `server` warns at start).
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
}

/// Whether and how phones must present a client certificate.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ClientAuth {
    Off,
    Optional,
    Required,
}

/// `[tls]`: certificates of the HTTPS listeners, client certificates, the CA for phones.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM file with the server certificate chain (leaf first). Empty (default): a local CA
    /// and a server certificate signed by it are generated under `<data_dir>/tls/` on first
    /// start, and the server certificate is renewed from that CA automatically.
    pub cert_file: PathBuf,
    /// PEM file with the private key of `cert_file` (PKCS#8, PKCS#1 RSA or SEC1 EC). Needed
    /// exactly when `cert_file` is set.
    pub key_file: PathBuf,
    /// Serve `cert_file` even though it is not issued by the local CA that phones may have
    /// been given (e.g. a certificate from your own PKI, which the phones trust). Default
    /// `false`: such a certificate is refused at start.
    pub confirm_foreign_ca: bool,
    /// Key type of generated certificates: `rsa-2048` (default; old firmware) or
    /// `ecdsa-p256`. Applies when a key is generated (first start, renewal).
    pub key_type: KeyType,
    /// Days a generated server certificate is valid. Default `825`.
    pub leaf_validity_days: u32,
    /// A generated server certificate is renewed from the local CA when it has fewer days
    /// left than this (checked at start and daily). Default `60`.
    pub renew_before_days: u32,
    /// Seconds allowed for a TLS handshake; a client that stalls is disconnected and its
    /// thread freed. Default `10`.
    pub handshake_timeout_secs: u64,
    /// Let clients resume TLS sessions (session IDs and tickets, TLS 1.2 and 1.3), which
    /// spares phones that reconnect a full handshake. Default `true`.
    pub session_resumption: bool,
    /// Client certificates on device HTTPS: `off` (default), `optional` (verified when
    /// sent) or `required` (connections without a valid one are refused). A certificate
    /// that names a MAC may only fetch that MAC's files.
    pub client_auth: ClientAuth,
    /// PEM bundle of the CAs that issue client (device) certificates, e.g. the vendor's
    /// device CA. Needed when `client_auth` is not `off`.
    pub client_ca_file: PathBuf,
    /// Deliver the local CA to phones as their platform trust anchor for provisioning
    /// (`device.sec.TLS.customCaCert1` and the platform profile selection), through the
    /// desired/confirmed mechanism: the change is pending until the phone fetches a probe
    /// file over HTTPS. Default `false`.
    pub deliver_ca_to_phones: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
            confirm_foreign_ca: false,
            key_type: KeyType::Rsa2048,
            leaf_validity_days: 825,
            renew_before_days: 60,
            handshake_timeout_secs: 10,
            session_resumption: true,
            client_auth: ClientAuth::Off,
            client_ca_file: PathBuf::new(),
            deliver_ca_to_phones: false,
        }
    }
}

/// Checks of the TLS settings (and the device settings that depend on them).
pub(super) fn validate(config: &Config, p: &mut Vec<FieldError>) {
    let t = &config.tls;
    let (cert, key) = (
        t.cert_file.as_os_str().is_empty(),
        t.key_file.as_os_str().is_empty(),
    );
    if cert != key {
        let missing = if cert {
            "tls.cert_file"
        } else {
            "tls.key_file"
        };
        p.push(FieldError::new(
            missing,
            "tls.cert_file and tls.key_file must be set together",
        ));
    }
    if t.client_auth != ClientAuth::Off && t.client_ca_file.as_os_str().is_empty() {
        p.push(FieldError::new(
            "tls.client_ca_file",
            "is needed when tls.client_auth is optional or required",
        ));
    }
    positive(p, "tls.handshake_timeout_secs", t.handshake_timeout_secs);
    at_least(p, "tls.leaf_validity_days", t.leaf_validity_days.into(), 2);
    if t.renew_before_days >= t.leaf_validity_days {
        p.push(FieldError::new(
            "tls.renew_before_days",
            "must be less than tls.leaf_validity_days",
        ));
    }
    if t.deliver_ca_to_phones && config.device.https_listen.is_empty() {
        p.push(FieldError::new(
            "tls.deliver_ca_to_phones",
            "needs device.https_listen (phones confirm the CA over HTTPS)",
        ));
    }
}
