//! Reading certificates: what `zerotouch tls show` prints (subject, SANs, validity, key,
//! SHA-256 fingerprint), what a generated server certificate must be renewed for, and the
//! identity a verified client certificate gives a connection.
//!
//! Only parsing lives here; whether a certificate is *trusted* is decided by rustls and
//! webpki (`tls::material`, the client verifier). The identity of a client certificate
//! travels to handlers in one internal header whose format is defined here, and nowhere
//! else, so the producer (the TLS acceptor) and the consumer (device handlers) agree.

use std::fmt;
use std::net::IpAddr;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

use crate::domain::mac::Mac;
use crate::domain::sha256_hex;

/// What a person needs to know about one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// Subject alternative names, as `DNS:name`, `IP:addr`, `URI:…`, `email:…`.
    pub sans: Vec<String>,
    /// Validity, seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    /// SHA-256 of the DER encoding, lowercase hex.
    pub sha256: String,
    pub is_ca: bool,
    /// `RSA 2048`, `EC 256`, …
    pub key: String,
}

impl CertInfo {
    /// Whether the certificate names `name` (a DNS name or an IP address) in its SANs.
    pub fn names(&self, name: &str) -> bool {
        let want = match name.parse::<IpAddr>() {
            Ok(ip) => format!("IP:{ip}"),
            Err(_) => format!("DNS:{}", name.to_ascii_lowercase()),
        };
        self.sans.iter().any(|s| s.eq_ignore_ascii_case(&want))
    }

    /// Whole days from `now` (Unix seconds) until expiry; negative once expired.
    pub fn days_left(&self, now: i64) -> i64 {
        (self.not_after - now).div_euclid(86_400)
    }
}

/// Why a DER blob could not be read as a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotACertificate(pub String);

impl fmt::Display for NotACertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a valid X.509 certificate ({})", self.0)
    }
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, NotACertificate> {
    match X509Certificate::from_der(der) {
        Ok((_, cert)) => Ok(cert),
        Err(e) => Err(NotACertificate(e.to_string())),
    }
}

fn general_name(g: &GeneralName<'_>) -> Option<String> {
    Some(match g {
        GeneralName::DNSName(d) => format!("DNS:{d}"),
        GeneralName::IPAddress(b) => match b.len() {
            4 => format!("IP:{}", IpAddr::from(<[u8; 4]>::try_from(*b).ok()?)),
            16 => format!("IP:{}", IpAddr::from(<[u8; 16]>::try_from(*b).ok()?)),
            _ => return None,
        },
        GeneralName::URI(u) => format!("URI:{u}"),
        GeneralName::RFC822Name(e) => format!("email:{e}"),
        _ => return None,
    })
}

/// Reads one certificate.
pub fn info(der: &[u8]) -> Result<CertInfo, NotACertificate> {
    let cert = parse(der)?;
    let sans = match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext
            .value
            .general_names
            .iter()
            .filter_map(general_name)
            .collect(),
        _ => Vec::new(),
    };
    let key = match cert.public_key().parsed() {
        Ok(PublicKey::RSA(k)) => format!("RSA {}", k.key_size()),
        Ok(PublicKey::EC(k)) => format!("EC {}", k.key_size()),
        Ok(other) => format!("other ({} bits)", other.key_size()),
        Err(_) => "unknown".into(),
    };
    Ok(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sans,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        sha256: sha256_hex(der),
        is_ca: cert.is_ca(),
        key,
    })
}

/// Whether the certificate's public key is `raw` (the key's bit string: a PKCS#1 RSA key
/// or an EC point).
pub fn public_key_matches(der: &[u8], raw: &[u8]) -> bool {
    parse(der).is_ok_and(|c| c.public_key().subject_public_key.data.as_ref() == raw)
}

/// Which MAC a client certificate claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacClaim {
    /// The certificate names no MAC: it may read only files that name no MAC.
    None,
    One(Mac),
    /// CN and SANs name different MACs: no MAC's files may be read with it.
    Ambiguous,
}

/// The identity of a verified client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    pub mac: MacClaim,
    pub sha256: String,
    pub subject: String,
}

/// Internal header through which the connection loop tells handlers the verified client
/// certificate identity (client-sent copies are removed with every `x-zerotouch-` header).
pub const CLIENT_CERT_HEADER: &str = "x-zerotouch-client-cert";

impl ClientIdentity {
    /// The identity of a certificate (already verified by the TLS layer).
    pub fn from_der(der: &[u8]) -> Result<ClientIdentity, NotACertificate> {
        let cert = parse(der)?;
        let mut names: Vec<String> = cert
            .subject()
            .iter_common_name()
            .filter_map(|a| a.as_str().ok().map(String::from))
            .collect();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for g in &ext.value.general_names {
                match g {
                    GeneralName::DNSName(s) | GeneralName::URI(s) => names.push((*s).into()),
                    _ => {}
                }
            }
        }
        let mut macs: Vec<Mac> = names
            .iter()
            .filter_map(|n| Mac::from_cert_name(n))
            .collect();
        macs.dedup();
        let mac = match macs.as_slice() {
            [] => MacClaim::None,
            [one] => MacClaim::One(*one),
            _ => MacClaim::Ambiguous,
        };
        Ok(ClientIdentity {
            mac,
            sha256: sha256_hex(der),
            subject: cert.subject().to_string(),
        })
    }

    /// The header value: `mac=<12 hex|none|ambiguous>; sha256=<hex>; subject=<DN>`. The
    /// subject comes last, so it may contain `;`; line breaks are dropped.
    pub fn to_header(&self) -> String {
        let mac = match self.mac {
            MacClaim::None => "none".to_string(),
            MacClaim::One(m) => m.to_string(),
            MacClaim::Ambiguous => "ambiguous".to_string(),
        };
        let subject: String = self.subject.chars().filter(|c| !c.is_control()).collect();
        format!("mac={mac}; sha256={}; subject={subject}", self.sha256)
    }

    /// Reads a header value written by `to_header`.
    pub fn from_header(value: &str) -> Option<ClientIdentity> {
        let mut parts = value.splitn(3, "; ");
        let mac = parts.next()?.strip_prefix("mac=")?;
        let sha256 = parts.next()?.strip_prefix("sha256=")?;
        let subject = parts.next()?.strip_prefix("subject=")?;
        let mac = match mac {
            "none" => MacClaim::None,
            "ambiguous" => MacClaim::Ambiguous,
            m => MacClaim::One(Mac::from_bare(m)?),
        };
        Some(ClientIdentity {
            mac,
            sha256: sha256.into(),
            subject: subject.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(cn: &str, sans: &[&str]) -> Vec<u8> {
        let mut params =
            rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let key = rcgen::KeyPair::generate().expect("key");
        params.self_signed(&key).expect("cert").der().to_vec()
    }

    #[test]
    fn a_mac_in_the_common_name_or_a_san_is_the_identity() {
        let id = ClientIdentity::from_der(&cert("SEP0004F2AABBCC", &[])).expect("id");
        assert_eq!(
            id.mac,
            MacClaim::One(Mac::from_bare("0004f2aabbcc").expect("mac"))
        );
        let id = ClientIdentity::from_der(&cert("Front desk", &["00-04-f2-aa-bb-cc"])).expect("id");
        assert_eq!(
            id.mac,
            MacClaim::One(Mac::from_bare("0004f2aabbcc").expect("mac"))
        );
        let id = ClientIdentity::from_der(&cert("phone", &["phone.example.com"])).expect("id");
        assert_eq!(id.mac, MacClaim::None);
        let id = ClientIdentity::from_der(&cert("0004f2aabbcc", &["0004f2000001"])).expect("id");
        assert_eq!(id.mac, MacClaim::Ambiguous);
    }

    #[test]
    fn the_header_round_trips_and_rejects_what_it_did_not_write() {
        let id = ClientIdentity::from_der(&cert("0004f2aabbcc; evil=1", &[])).expect("id");
        let back = ClientIdentity::from_header(&id.to_header()).expect("parse");
        assert_eq!(back, id);
        assert_eq!(ClientIdentity::from_header("mac=0004f2aabbcc"), None);
        assert_eq!(ClientIdentity::from_header("garbage"), None);
    }

    #[test]
    fn info_lists_names_and_fingerprint() {
        let der = cert("zerotouch", &["zt.example.com", "10.0.0.5"]);
        let i = info(&der).expect("info");
        assert_eq!(i.subject, "CN=zerotouch");
        assert!(i.names("zt.example.com") && i.names("10.0.0.5") && !i.names("other"));
        assert_eq!(i.sha256.len(), 64);
        assert_eq!(i.key, "EC 256");
        assert!(info(b"not a cert").is_err());
    }
}
