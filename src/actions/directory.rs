//! Directory sign-in: checks a user name and password against LDAP or Active Directory
//! (`[directory]`) and says which role the user's groups give. Search, then bind: the
//! service account (`bind_dn`, its password read from `bind_password_file`) finds the one
//! entry whose `user_attribute` is the name typed (escaped, RFC 4515), then a bind as that
//! entry's DN with the typed password proves it. The connection is TLS (LDAPS or StartTLS)
//! with rustls, verified against `ca_file` or the system's CAs.
//!
//! What a caller can tell apart: the user is refused (unknown, wrong password, or a bind
//! refused, e.g. a disabled account: all alike), the user is in no mapped group, or the
//! directory is unavailable (unreachable, TLS failure, timeout, the service account
//! refused). No password — the user's or the service account's — is ever put in a log line
//! or an error; the log says what failed and where.

use std::sync::Arc;
use std::time::Duration;

use ldap3::{LdapConn, LdapConnSettings, Scope, SearchEntry};

use crate::config::DirectoryConfig;
use crate::domain::dirauth;
use crate::domain::users::Role;
use crate::error::{Error, Result};

/// What a user sees when the directory cannot be asked.
pub const UNAVAILABLE: &str = "directory unavailable: sign-in with a directory account is not possible right now; local users can still sign in";

/// A directory user whose password was right, with what their groups give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUser {
    /// The name as the directory spells it (its `user_attribute`).
    pub username: String,
    pub dn: String,
    pub role: Role,
    pub company: String,
    /// The accounts their groups give, `(slug, role)`; empty: every account, with `role`.
    pub accounts: Vec<(String, Role)>,
}

/// The outcome of a directory sign-in that reached the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Accepted(DirectoryUser),
    /// Unknown user, wrong password, or a bind the directory refused.
    Refused,
    /// The password was right but no mapped group lists the user.
    NoMappedGroup,
}

fn unavailable(what: &str, detail: impl std::fmt::Display) -> Error {
    log::warn!("directory sign-in: {what}: {detail}");
    Error::Unavailable(UNAVAILABLE.into())
}

/// The service account's password: the first line of `bind_password_file`.
fn bind_password(cfg: &DirectoryConfig) -> Result<String> {
    if cfg.bind_dn.is_empty() {
        return Ok(String::new());
    }
    let text = std::fs::read_to_string(&cfg.bind_password_file).map_err(|e| {
        unavailable(
            &format!(
                "cannot read directory.bind_password_file {}",
                cfg.bind_password_file.display()
            ),
            e,
        )
    })?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

fn settings(cfg: &DirectoryConfig) -> Result<LdapConnSettings> {
    let timeout = Duration::from_secs(cfg.timeout_secs);
    let mut s = LdapConnSettings::new()
        .set_conn_timeout(timeout)
        .set_starttls(cfg.starttls);
    if !cfg.ca_file.as_os_str().is_empty() {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(&cfg.ca_file)
            .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| {
                unavailable(
                    &format!("cannot read directory.ca_file {}", cfg.ca_file.display()),
                    e,
                )
            })?;
        for c in certs {
            roots
                .add(c)
                .map_err(|e| unavailable("a certificate of directory.ca_file", e))?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| unavailable("TLS", e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        s = s.set_config(Arc::new(config));
    }
    Ok(s)
}

/// The values of `attr` in an entry, whatever the case of its name.
fn values(entry: &SearchEntry, attr: &str) -> Vec<String> {
    entry
        .attrs
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(attr))
        .flat_map(|(_, v)| v.iter().cloned())
        .collect()
}

/// Parses search results; a malformed entry (the parser panics on one) is an error, not a
/// crash of the worker.
fn entries(raw: Vec<ldap3::ResultEntry>) -> Result<Vec<SearchEntry>> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        raw.into_iter().map(SearchEntry::construct).collect()
    }))
    .map_err(|_| unavailable("search", "the directory answered a malformed entry"))
}

/// Checks `username` and `password` against the directory.
pub fn authenticate(cfg: &DirectoryConfig, username: &str, password: &str) -> Result<Outcome> {
    // An empty password would make the bind an unauthenticated one, which directories
    // accept (RFC 4513, 5.1.2): never sent.
    if username.is_empty() || password.is_empty() || username.len() > 256 {
        return Ok(Outcome::Refused);
    }
    let timeout = Duration::from_secs(cfg.timeout_secs);
    let service_password = bind_password(cfg)?;
    let mut conn = LdapConn::with_settings(settings(cfg)?, &cfg.url)
        .map_err(|e| unavailable(&format!("connecting to {}", cfg.url), e))?;
    let outcome = search_then_bind(
        cfg,
        &mut conn,
        timeout,
        &service_password,
        username,
        password,
    );
    let _ = conn.unbind();
    outcome
}

fn search_then_bind(
    cfg: &DirectoryConfig,
    conn: &mut LdapConn,
    timeout: Duration,
    service_password: &str,
    username: &str,
    password: &str,
) -> Result<Outcome> {
    if !cfg.bind_dn.is_empty() {
        let r = conn
            .with_timeout(timeout)
            .simple_bind(&cfg.bind_dn, service_password)
            .map_err(|e| unavailable("binding as the service account", e))?;
        if r.rc != 0 {
            return Err(unavailable(
                &format!("the service account {} was refused", cfg.bind_dn),
                format!("result code {}", r.rc),
            ));
        }
    }
    let filter = dirauth::user_filter(&cfg.user_attribute, username, &cfg.user_filter);
    let found = conn
        .with_timeout(timeout)
        .search(
            &cfg.user_base,
            Scope::Subtree,
            &filter,
            vec![cfg.user_attribute.as_str(), cfg.group_attribute.as_str()],
        )
        .map_err(|e| unavailable("searching for the user", e))?;
    // No such object (32): the base is empty of users, like an unknown user.
    let (raw, result) = (found.0, found.1);
    if result.rc != 0 && result.rc != 32 {
        return Err(unavailable(
            "searching for the user",
            format!("result code {}", result.rc),
        ));
    }
    let mut list = entries(raw)?;
    if list.len() != 1 {
        if list.len() > 1 {
            log::warn!(
                "directory sign-in: {} entries match one user name; refused",
                list.len()
            );
        }
        return Ok(Outcome::Refused);
    }
    let entry = list.remove(0);
    let name = values(&entry, &cfg.user_attribute)
        .into_iter()
        .find(|v| v.eq_ignore_ascii_case(username))
        .unwrap_or_else(|| username.to_string());
    let mut groups = values(&entry, &cfg.group_attribute);
    let mappings = cfg.mappings();
    if cfg.nested_groups {
        // Membership through nested groups: Active Directory evaluates the in-chain rule
        // on the user's own entry, one mapped group at a time.
        for m in &mappings {
            let r = conn
                .with_timeout(timeout)
                .search(
                    &entry.dn,
                    Scope::Base,
                    &dirauth::nested_member_filter(&m.group),
                    vec!["1.1"],
                )
                .map_err(|e| unavailable("searching nested groups", e))?;
            if !r.0.is_empty() {
                groups.push(m.group.clone());
            }
        }
    }
    let r = conn
        .with_timeout(timeout)
        .simple_bind(&entry.dn, password)
        .map_err(|e| unavailable("binding as the user", e))?;
    if r.rc != 0 {
        // 49 invalid credentials (a disabled or locked account too, on most servers).
        return Ok(Outcome::Refused);
    }
    Ok(match dirauth::role_for(&mappings, &groups) {
        Some(m) => Outcome::Accepted(DirectoryUser {
            username: name,
            dn: entry.dn,
            role: m.role,
            company: m.company.clone(),
            accounts: dirauth::accounts_for(&mappings, &groups),
        }),
        None => Outcome::NoMappedGroup,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> DirectoryConfig {
        DirectoryConfig {
            enabled: true,
            url: url.into(),
            bind_dn: "cn=svc,dc=example".into(),
            bind_password_file: "/nonexistent/zerotouch-test/bind-password".into(),
            user_base: "dc=example".into(),
            timeout_secs: 2,
            ..DirectoryConfig::default()
        }
    }

    #[test]
    fn an_empty_password_is_refused_without_asking_the_directory() {
        // The directory is unreachable and the password file missing: neither is touched.
        let c = config("ldaps://127.0.0.1:1");
        assert_eq!(
            authenticate(&c, "alice", "").expect("no contact"),
            Outcome::Refused
        );
        assert_eq!(
            authenticate(&c, "", "pw").expect("no contact"),
            Outcome::Refused
        );
    }

    #[test]
    fn an_unreadable_password_file_or_a_closed_port_is_unavailable_naming_no_secret() {
        let c = config("ldaps://127.0.0.1:1");
        let e = authenticate(&c, "alice", "alice-secret-1").expect_err("no file");
        assert!(matches!(&e, Error::Unavailable(m) if m.starts_with("directory unavailable")));
        assert!(!e.to_string().contains("alice-secret-1"));
        let dir = tempfile::tempdir().expect("tempdir");
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "svc-secret-1\n").expect("write");
        let c = DirectoryConfig {
            bind_password_file: pw,
            ..config("ldaps://127.0.0.1:1")
        };
        let e = authenticate(&c, "alice", "alice-secret-1").expect_err("closed port");
        assert!(matches!(&e, Error::Unavailable(_)), "{e}");
        assert!(!e.to_string().contains("svc-secret-1"));
    }
}
