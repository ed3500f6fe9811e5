//! TLS material and the rustls configurations built from it: which certificate and key the
//! HTTPS listeners serve (the generated one from `generate`, or the admin's files), which
//! CAs may issue client certificates, and swapping all of it without a restart.
//!
//! Every problem with a file is a `Config` error naming the file and saying what to do: a
//! PEM without a certificate, a key file that is not a key, a key that does not belong to
//! the certificate, an expired certificate, a certificate from a CA the phones were not
//! given. At start such an error stops the server; on reload (SIGHUP, the daily renewal
//! check, or an admin action calling `Tls::reload`) it is returned and the configuration
//! in service stays as it was. Connections pick up a new configuration on their next
//! handshake; open ones keep theirs.

pub mod generate;
pub mod inspect;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};

use crate::config::{ClientAuth, Config};
use crate::domain::provstate::PhoneTrust;
use crate::error::{Error, Result};
use inspect::CertInfo;

/// TLS sessions remembered for resumption, per configuration.
const SESSION_CACHE: usize = 4096;

/// A rustls server configuration that can be replaced while connections use it.
pub struct SharedConfig(RwLock<Arc<ServerConfig>>);

impl SharedConfig {
    pub fn new(config: Arc<ServerConfig>) -> SharedConfig {
        SharedConfig(RwLock::new(config))
    }

    /// The configuration for a new connection.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn replace(&self, config: Arc<ServerConfig>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = config;
    }
}

/// Every certificate in a PEM text, skipping other sections.
pub fn pem_certs(text: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(text.as_bytes())
        .filter_map(|c| c.ok())
        .collect()
}

/// What is being served, for pages, `tls show` and the log.
#[derive(Debug, Clone)]
pub struct Status {
    /// The served chain, leaf first.
    pub chain: Vec<CertInfo>,
    pub cert_file: PathBuf,
    /// Whether the served certificate is the generated one.
    pub generated: bool,
    /// The local CA (PEM), if one exists: what phones are given.
    pub local_ca_pem: Option<String>,
}

/// Loaded and checked material.
struct Material {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    status: Status,
    client_roots: Option<Arc<RootCertStore>>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn cfg_err(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::Config(format!("{}: {what}", path.display()))
}

/// The served certificate and key files of a configuration.
pub fn served_files(config: &Config) -> (PathBuf, PathBuf) {
    if config.tls_generated() {
        let p = generate::Paths::under(&config.tls_dir());
        (p.cert, p.key)
    } else {
        (config.tls.cert_file.clone(), config.tls.key_file.clone())
    }
}

/// The local CA certificate (PEM), if it exists.
pub fn local_ca_pem(config: &Config) -> Option<String> {
    let path = generate::Paths::under(&config.tls_dir()).ca_cert;
    std::fs::read_to_string(path)
        .ok()
        .filter(|t| !pem_certs(t).is_empty())
}

/// The CA to deliver to phones, when `tls.deliver_ca_to_phones` is on and a local CA
/// exists. `https_port`: the bound HTTPS port (default: the configured one).
pub fn phone_trust(config: &Config, https_port: Option<u16>) -> Option<PhoneTrust> {
    if !config.tls.deliver_ca_to_phones {
        return None;
    }
    let port = https_port.or_else(|| {
        config
            .device
            .https_listen
            .parse::<std::net::SocketAddr>()
            .ok()
            .map(|a| a.port())
    })?;
    Some(PhoneTrust {
        ca_pem: local_ca_pem(config)?,
        https_port: port,
    })
}

/// Reads a certificate chain (leaf first).
fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let text =
        std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let mut chain = Vec::new();
    for item in CertificateDer::pem_slice_iter(&text) {
        chain.push(item.map_err(|e| cfg_err(path, format!("unreadable PEM ({e})")))?);
    }
    if chain.is_empty() {
        return Err(cfg_err(
            path,
            "no certificate found (expected PEM `BEGIN CERTIFICATE`)",
        ));
    }
    Ok(chain)
}

/// Reads a private key: PKCS#8, PKCS#1 RSA or SEC1 EC, in PEM.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let text =
        std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    PrivateKeyDer::from_pem_slice(&text).map_err(|e| {
        cfg_err(
            path,
            format!(
                "not a private key ({e}); expected PEM with a PKCS#8, PKCS#1 RSA or SEC1 EC key"
            ),
        )
    })
}

/// Checks that the chain leads to the local CA. `Err` says why not.
fn issued_by(
    chain: &[CertificateDer<'static>],
    ca: &CertificateDer<'static>,
) -> Result<(), String> {
    let anchor = webpki::anchor_from_trusted_cert(ca).map_err(|e| format!("local CA: {e}"))?;
    let leaf = webpki::EndEntityCert::try_from(&chain[0]).map_err(|e| e.to_string())?;
    leaf.verify_for_usage(
        provider().signature_verification_algorithms.all,
        &[anchor],
        &chain[1..],
        UnixTime::now(),
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .map(|_| ())
    .map_err(|e| format!("{e:?}"))
}

/// Loads and checks everything the HTTPS listeners need.
fn load(config: &Config) -> Result<Material> {
    let (cert_file, key_file) = served_files(config);
    let chain = read_chain(&cert_file)?;
    let key = read_key(&key_file)?;
    let mut infos = Vec::new();
    for (i, der) in chain.iter().enumerate() {
        infos.push(
            inspect::info(der)
                .map_err(|e| cfg_err(&cert_file, format!("certificate {}: {e}", i + 1)))?,
        );
    }
    match CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider()) {
        Ok(_) => {}
        Err(rustls::Error::InconsistentKeys(_)) => {
            return Err(cfg_err(
                &key_file,
                format!(
                    "this key does not belong to the certificate in {}",
                    cert_file.display()
                ),
            ));
        }
        Err(e) => return Err(cfg_err(&key_file, format!("unusable key ({e})"))),
    }
    let now = UnixTime::now().as_secs() as i64;
    if infos[0].not_after < now {
        return Err(cfg_err(
            &cert_file,
            format!(
                "the certificate expired {} days ago",
                -infos[0].days_left(now)
            ),
        ));
    }
    let local_ca_pem = local_ca_pem(config);
    if !config.tls_generated()
        && !config.tls.confirm_foreign_ca
        && let Some(ca) = local_ca_pem
            .as_deref()
            .and_then(|p| pem_certs(p).into_iter().next())
        && let Err(why) = issued_by(&chain, &ca)
    {
        return Err(cfg_err(
            &cert_file,
            format!(
                "not issued by the local CA that phones may have been given ({}; {why}). Phones \
                 that trust only that CA could no longer connect. If they trust this \
                 certificate's issuer, set tls.confirm_foreign_ca = true",
                generate::Paths::under(&config.tls_dir()).ca_cert.display()
            ),
        ));
    }
    let client_roots = match config.tls.client_auth {
        ClientAuth::Off => None,
        ClientAuth::Optional | ClientAuth::Required => {
            let path = &config.tls.client_ca_file;
            let mut roots = RootCertStore::empty();
            for der in read_chain(path)? {
                roots
                    .add(der)
                    .map_err(|e| cfg_err(path, format!("not a usable CA certificate ({e})")))?;
            }
            Some(Arc::new(roots))
        }
    };
    Ok(Material {
        chain,
        key,
        status: Status {
            chain: infos,
            cert_file,
            generated: config.tls_generated(),
            local_ca_pem,
        },
        client_roots,
    })
}

/// Serves whatever certificate `shared` serves at each handshake (reloads included): for
/// a listener that keeps one configuration for its life (FTP's explicit TLS).
#[derive(Debug)]
struct Following(Arc<SharedConfig>);

impl rustls::server::ResolvesServerCert for Following {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.0.current().cert_resolver.resolve(hello)
    }
}

impl std::fmt::Debug for SharedConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedConfig")
    }
}

/// A configuration without client authentication that serves the certificate of
/// `shared`, as it is at each handshake (`Tls::reload` and renewals reach it).
pub fn following(shared: &Arc<SharedConfig>) -> Result<Arc<ServerConfig>> {
    let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
    let c = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&versions)
        .map_err(|e| Error::Config(format!("TLS configuration: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Following(shared.clone())));
    Ok(Arc::new(c))
}

/// Builds the device and admin server configurations.
fn build(config: &Config, m: &Material) -> Result<(Arc<ServerConfig>, Arc<ServerConfig>)> {
    let tls = |e: rustls::Error| Error::Config(format!("TLS configuration: {e}"));
    let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
    let builder = || {
        ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&versions)
            .map_err(tls)
    };
    let device = match (&m.client_roots, config.tls.client_auth) {
        (Some(roots), mode) => {
            let v = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider());
            let v = if mode == ClientAuth::Optional {
                v.allow_unauthenticated()
            } else {
                v
            };
            let v = v
                .build()
                .map_err(|e| cfg_err(&config.tls.client_ca_file, format!("{e}")))?;
            builder()?.with_client_cert_verifier(v)
        }
        (None, _) => builder()?.with_no_client_auth(),
    };
    let admin = builder()?.with_no_client_auth();
    let finish = |b: rustls::ConfigBuilder<ServerConfig, rustls::server::WantsServerCert>| {
        let mut c = b
            .with_single_cert(m.chain.clone(), m.key.clone_key())
            .map_err(tls)?;
        c.alpn_protocols = vec![b"http/1.1".to_vec()];
        if config.tls.session_resumption {
            c.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE);
            c.ticketer = rustls::crypto::ring::Ticketer::new().map_err(tls)?;
        } else {
            c.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
            c.send_tls13_tickets = 0;
        }
        Ok::<_, Error>(Arc::new(c))
    };
    Ok((finish(device)?, finish(admin)?))
}

/// The TLS side of a running server.
pub struct Tls {
    config: Config,
    pub device: Arc<SharedConfig>,
    pub admin: Arc<SharedConfig>,
    status: RwLock<Status>,
}

impl Tls {
    /// Generates what is missing (no `tls.cert_file`), loads and checks the material.
    pub fn start(config: &Config) -> Result<Tls> {
        if config.tls_generated() && config.tls.key_type == crate::config::KeyType::EcdsaP256 {
            log::warn!(
                "tls: tls.key_type = \"ecdsa-p256\" is not for UCS phones (EC server keys are \
                 reported to break Polycom phones); keep \"rsa-2048\" unless every device \
                 served over HTTPS was tested with it"
            );
        }
        if config.tls_generated()
            && let Some(done) = generate::ensure(config)?
        {
            log::info!("tls: {done}");
        }
        let m = load(config)?;
        let (device, admin) = build(config, &m)?;
        log_serving(&m.status);
        Ok(Tls {
            config: config.clone(),
            device: Arc::new(SharedConfig::new(device)),
            admin: Arc::new(SharedConfig::new(admin)),
            status: RwLock::new(m.status),
        })
    }

    /// Reads the files again and serves them from the next handshake on. On error the
    /// configuration in service is kept. This is what SIGHUP and admin actions call.
    pub fn reload(&self) -> Result<String> {
        if self.config.tls_generated()
            && let Some(done) = generate::ensure(&self.config)?
        {
            log::info!("tls: {done}");
        }
        let m = load(&self.config)?;
        let (device, admin) = build(&self.config, &m)?;
        self.device.replace(device);
        self.admin.replace(admin);
        log_serving(&m.status);
        let summary = summary(&m.status);
        *self.status.write().unwrap_or_else(|p| p.into_inner()) = m.status;
        Ok(summary)
    }

    /// Renews the generated server certificate if it is due (and reloads). Returns what
    /// was done, if anything.
    pub fn renew_if_due(&self) -> Result<Option<String>> {
        if !self.config.tls_generated() {
            return Ok(None);
        }
        let Some(done) = generate::ensure(&self.config)? else {
            return Ok(None);
        };
        log::info!("tls: {done}");
        self.reload().map(|s| Some(format!("{done}; {s}")))
    }

    /// What is being served.
    pub fn status(&self) -> Status {
        self.status
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

fn summary(s: &Status) -> String {
    let leaf = &s.chain[0];
    format!(
        "serving {} ({}), expires in {} days, SHA-256 {}",
        leaf.subject,
        s.cert_file.display(),
        leaf.days_left(UnixTime::now().as_secs() as i64),
        leaf.sha256
    )
}

fn log_serving(s: &Status) {
    log::info!("tls: {}", summary(s));
}
