//! The local CA and the server certificate it signs: generated on first start when no
//! certificate is configured, and the server certificate renewed from the CA before it
//! expires, when the names it must carry change, or when the configured key type changes.
//!
//! Everything lives under `<data_dir>/tls/`: `ca.pem`, `ca.key`, `server.pem`,
//! `server.key`. Private keys are written with mode 0600, every file atomically (temporary
//! file, then rename), so a crash leaves either the old or the new file. The CA is never
//! replaced here: phones may trust it, and a new one would lock them out; losing `ca.key`
//! is a clear error, not a silent new CA. RSA keys come from the pure-Rust `rsa` crate
//! (ring cannot generate them) and are handed to rcgen as PKCS#8; `notBefore` is
//! back-dated a day for phones whose clock is behind.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use super::inspect;
use crate::config::{Config, KeyType};
use crate::error::{Error, Result};

/// Lifetime of the local CA: phones keep trusting it for that long.
const CA_YEARS: i64 = 20;

/// Files of the generated material.
#[derive(Debug, Clone)]
pub struct Paths {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Paths {
    pub fn under(dir: &Path) -> Paths {
        Paths {
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca.key"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        }
    }
}

fn tls_err(context: String, e: impl std::fmt::Display) -> Error {
    Error::Config(format!("{context}: {e}"))
}

/// A new key pair of the given type.
pub fn new_key(kind: KeyType) -> Result<KeyPair> {
    match kind {
        KeyType::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| tls_err("generating an ECDSA key".into(), e)),
        KeyType::Rsa2048 => {
            use rsa::pkcs8::EncodePrivateKey;
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
                .map_err(|e| tls_err("generating an RSA key".into(), e))?;
            let der = key
                .to_pkcs8_der()
                .map_err(|e| tls_err("encoding an RSA key".into(), e))?;
            let pkcs8 = rustls_pki_types::PrivatePkcs8KeyDer::from(der.as_bytes());
            KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256)
                .map_err(|e| tls_err("loading a generated RSA key".into(), e))
        }
    }
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    // A failing system RNG would already have failed key generation.
    let _ = getrandom::fill(&mut bytes);
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "zerotouch");
    dn.push(DnType::CommonName, cn);
    dn
}

/// This host's name, if the kernel says.
pub fn hostname() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = h.trim();
    (!h.is_empty()).then(|| h.to_string())
}

/// IPv4 addresses of this host's interfaces (Linux: the kernel's routing trie).
fn interface_addresses() -> Vec<IpAddr> {
    let Ok(trie) = std::fs::read_to_string("/proc/net/fib_trie") else {
        return Vec::new();
    };
    let mut out: Vec<IpAddr> = Vec::new();
    let mut last: Option<IpAddr> = None;
    for line in trie.lines() {
        let t = line.trim_start_matches([' ', '|', '-', '+']);
        if let Ok(ip) = t.trim().parse::<IpAddr>() {
            last = Some(ip);
        } else if t.contains("/32 host LOCAL")
            && let Some(ip) = last
            && !out.contains(&ip)
        {
            out.push(ip);
        }
    }
    out
}

/// The names a generated server certificate carries: `device.public_names`, the listen
/// addresses (this host's interface addresses where a listener binds all of them),
/// loopback, `localhost` and the host name.
pub fn wanted_names(config: &Config) -> Vec<String> {
    let mut names: Vec<String> = config.device.public_names.clone();
    let listens = [
        &config.device.http_listen,
        &config.device.https_listen,
        &config.admin.listen,
    ];
    let mut any_unspecified = false;
    for l in listens {
        if let Ok(addr) = l.parse::<std::net::SocketAddr>() {
            if addr.ip().is_unspecified() {
                any_unspecified = true;
            } else {
                names.push(addr.ip().to_string());
            }
        }
    }
    if any_unspecified {
        names.extend(interface_addresses().iter().map(IpAddr::to_string));
    }
    names.extend(["127.0.0.1".into(), "::1".into(), "localhost".into()]);
    names.extend(hostname());
    let mut seen = Vec::new();
    for n in names {
        let n = n.to_ascii_lowercase();
        if !seen.contains(&n) {
            seen.push(n);
        }
    }
    seen
}

fn san(name: &str) -> Result<SanType> {
    match name.parse::<IpAddr>() {
        Ok(ip) => Ok(SanType::IpAddress(ip)),
        Err(_) => Ok(SanType::DnsName(name.try_into().map_err(|e| {
            Error::invalid("device.public_names", format!("`{name}`: {e}"))
        })?)),
    }
}

/// A new self-signed CA: certificate PEM and key PEM.
pub fn issue_ca(kind: KeyType, now: OffsetDateTime) -> Result<(String, String)> {
    let key = new_key(kind)?;
    let mut p = CertificateParams::default();
    let host = hostname().unwrap_or_else(|| "zerotouch".into());
    p.distinguished_name = dn(&format!("zerotouch local CA {host} {}", now.date()));
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = now - Duration::days(1);
    p.not_after = now + Duration::days(CA_YEARS * 365 + CA_YEARS / 4);
    p.serial_number = Some(random_serial());
    let cert = p
        .self_signed(&key)
        .map_err(|e| tls_err("signing the local CA".into(), e))?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A new server certificate for `names`, signed by the CA: certificate PEM, key PEM.
pub fn issue_leaf(
    ca_cert_pem: &str,
    ca_key_pem: &str,
    names: &[String],
    kind: KeyType,
    days: u32,
    now: OffsetDateTime,
) -> Result<(String, String)> {
    let ca_key =
        KeyPair::from_pem(ca_key_pem).map_err(|e| tls_err("reading the local CA key".into(), e))?;
    let issuer = Issuer::from_ca_cert_pem(ca_cert_pem, ca_key)
        .map_err(|e| tls_err("reading the local CA certificate".into(), e))?;
    let key = new_key(kind)?;
    let mut p = CertificateParams::default();
    // The common name: the first name phones use, else the host name.
    let cn = names
        .iter()
        .find(|n| n.parse::<IpAddr>().is_err() && *n != "localhost")
        .or(names.first())
        .map(String::as_str)
        .unwrap_or("zerotouch");
    p.distinguished_name = dn(cn);
    p.subject_alt_names = names.iter().map(|n| san(n)).collect::<Result<_>>()?;
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.use_authority_key_identifier_extension = true;
    p.not_before = now - Duration::days(1);
    p.not_after = now + Duration::days(days.into());
    p.serial_number = Some(random_serial());
    let cert = p
        .signed_by(&key, &issuer)
        .map_err(|e| tls_err("signing the server certificate".into(), e))?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes a file atomically; `private` files get mode 0600 from the start.
pub fn write_atomic(path: &Path, contents: &[u8], private: bool) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let io = |e| Error::io(format!("writing {}", path.display()), e);
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(&tmp)
        .map_err(io)?;
    f.write_all(contents).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Why the server certificate must be (re)issued, if it must.
fn leaf_due(config: &Config, paths: &Paths, ca_subject: &str, now: i64) -> Option<String> {
    let (Ok(cert), Ok(key)) = (
        std::fs::read_to_string(&paths.cert),
        std::fs::read_to_string(&paths.key),
    ) else {
        return Some("none yet".into());
    };
    let Some(der) = super::pem_certs(&cert).into_iter().next() else {
        return Some("server.pem holds no certificate".into());
    };
    let Ok(info) = inspect::info(&der) else {
        return Some("server.pem is unreadable".into());
    };
    let Ok(key) = KeyPair::from_pem(&key) else {
        return Some("server.key is unreadable".into());
    };
    if !inspect::public_key_matches(&der, key.public_key_raw()) {
        return Some("server.key does not match server.pem".into());
    }
    if info.issuer != ca_subject {
        return Some("it was not issued by the local CA".into());
    }
    let left = info.days_left(now);
    if left < i64::from(config.tls.renew_before_days) {
        return Some(format!("it expires in {left} days"));
    }
    let want_rsa = config.tls.key_type == KeyType::Rsa2048;
    if want_rsa != info.key.starts_with("RSA") {
        return Some(format!("tls.key_type changed (the key is {})", info.key));
    }
    if let Some(missing) = wanted_names(config).iter().find(|n| !info.names(n)) {
        return Some(format!("it does not name {missing}"));
    }
    None
}

/// Makes sure the local CA and a current server certificate signed by it exist. Returns
/// what was done, for the log, or `None` when nothing was needed.
pub fn ensure(config: &Config) -> Result<Option<String>> {
    let dir = config.tls_dir();
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let paths = Paths::under(&dir);
    let now = OffsetDateTime::now_utc();
    let mut done = Vec::new();
    let (ca_exists, key_exists) = (paths.ca_cert.exists(), paths.ca_key.exists());
    if !ca_exists && !key_exists {
        let (cert, key) = issue_ca(config.tls.key_type, now)?;
        write_atomic(&paths.ca_key, key.as_bytes(), true)?;
        write_atomic(&paths.ca_cert, cert.as_bytes(), false)?;
        done.push(format!(
            "generated a local CA in {}",
            paths.ca_cert.display()
        ));
    } else if !key_exists {
        return Err(Error::Config(format!(
            "{}: the local CA's key is missing (restore it from a backup; a new CA would lock \
             out phones that trust the old one — to start over, remove {} too)",
            paths.ca_key.display(),
            paths.ca_cert.display()
        )));
    } else if !ca_exists {
        return Err(Error::Config(format!(
            "{}: the local CA certificate is missing but its key exists (restore it from a backup)",
            paths.ca_cert.display()
        )));
    }
    let read = |p: &Path| {
        std::fs::read_to_string(p).map_err(|e| Error::io(format!("reading {}", p.display()), e))
    };
    let (ca_cert, ca_key) = (read(&paths.ca_cert)?, read(&paths.ca_key)?);
    let ca_der = super::pem_certs(&ca_cert)
        .into_iter()
        .next()
        .ok_or_else(|| {
            Error::Config(format!("{}: no certificate found", paths.ca_cert.display()))
        })?;
    let ca_info = inspect::info(&ca_der)
        .map_err(|e| Error::Config(format!("{}: {e}", paths.ca_cert.display())))?;
    if let Some(why) = leaf_due(config, &paths, &ca_info.subject, now.unix_timestamp()) {
        let names = wanted_names(config);
        let (cert, key) = issue_leaf(
            &ca_cert,
            &ca_key,
            &names,
            config.tls.key_type,
            config.tls.leaf_validity_days,
            now,
        )?;
        write_atomic(&paths.key, key.as_bytes(), true)?;
        write_atomic(&paths.cert, cert.as_bytes(), false)?;
        done.push(format!(
            "issued a server certificate ({why}) for {}",
            names.join(", ")
        ));
    }
    Ok((!done.is_empty()).then(|| done.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> Config {
        let mut c = Config {
            data_dir: dir.to_path_buf(),
            ..Default::default()
        };
        c.device.http_listen = "127.0.0.1:0".into();
        c.device.https_listen = "127.0.0.1:0".into();
        c.admin.listen = "127.0.0.1:0".into();
        c.tls.key_type = KeyType::EcdsaP256;
        c
    }

    #[test]
    fn first_start_generates_a_ca_and_a_server_certificate_it_signs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = config(dir.path());
        c.device.public_names = vec!["prov.example.com".into(), "10.1.2.3".into()];
        let done = ensure(&c)
            .expect("ensure")
            .expect("something was generated");
        assert!(done.contains("local CA"), "{done}");
        let p = Paths::under(&c.tls_dir());
        let read = |p: &Path| std::fs::read_to_string(p).expect("read");
        let ca = super::super::pem_certs(&read(&p.ca_cert)).remove(0);
        let leaf = super::super::pem_certs(&read(&p.cert));
        assert!(super::super::issued_by(&leaf, &ca).is_ok());
        let info = inspect::info(&leaf[0]).expect("info");
        for name in ["prov.example.com", "10.1.2.3", "127.0.0.1", "localhost"] {
            assert!(info.names(name), "{name}: {:?}", info.sans);
        }
        assert!(
            info.subject.contains("CN=prov.example.com"),
            "{}",
            info.subject
        );
        let now = OffsetDateTime::now_utc().unix_timestamp();
        assert!(info.not_before <= now - 86_000, "back-dated a day");
        // 825 days from the moment it was made, read a moment later (a second may have
        // passed since, which rounds down to 824).
        assert!(
            (824..=825).contains(&info.days_left(now)),
            "{}",
            info.days_left(now)
        );
        let ca_info = inspect::info(&ca).expect("ca");
        assert!(ca_info.is_ca && ca_info.days_left(now) > 20 * 365 - 2);
        for key in [&p.ca_key, &p.key] {
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(key).expect("meta").permissions(),
            );
            assert_eq!(mode & 0o777, 0o600, "{}", key.display());
        }
        assert_eq!(
            ensure(&c).expect("ensure"),
            None,
            "nothing to do the second time"
        );
    }

    #[test]
    fn the_server_certificate_is_reissued_for_new_names_and_before_expiry_never_the_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = config(dir.path());
        ensure(&c).expect("ensure");
        let p = Paths::under(&c.tls_dir());
        let ca_before = std::fs::read(&p.ca_cert).expect("ca");
        c.device.public_names = vec!["new.example.com".into()];
        let done = ensure(&c).expect("ensure").expect("reissued");
        assert!(done.contains("does not name new.example.com"), "{done}");
        c.tls.leaf_validity_days = 900;
        c.tls.renew_before_days = 825;
        // 825 days left is not fewer than 825: still fine; one more day of margin renews.
        assert_eq!(ensure(&c).expect("ensure"), None);
        c.tls.renew_before_days = 826;
        let done = ensure(&c).expect("ensure").expect("renewed");
        assert!(done.contains("expires in"), "{done}");
        assert_eq!(
            std::fs::read(&p.ca_cert).expect("ca"),
            ca_before,
            "the CA stays"
        );
        std::fs::remove_file(&p.ca_key).expect("rm");
        let err = ensure(&c).expect_err("a lost CA key is an error");
        assert!(err.to_string().contains("ca.key"), "{err}");
    }

    #[test]
    fn rsa_keys_are_generated_for_old_firmware() {
        let key = new_key(KeyType::Rsa2048).expect("rsa");
        assert!(key.is_compatible(&rcgen::PKCS_RSA_SHA256));
    }
}
