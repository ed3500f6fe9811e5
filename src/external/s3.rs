//! The S3-compatible transport: uploads a device's generated files, and syncs the shared
//! assets and firmware, to a bucket (AWS S3, MinIO, R2, B2, ...).
//!
//! Requests are signed with AWS Signature V4 as presigned URLs (`rusty-s3`, sans-I/O) and
//! sent with `ureq` over rustls (ring) — no OpenSSL, no async runtime, static-build
//! friendly; names are resolved by `resolve` (no NSS). Keys mirror the disk:
//! `<prefix><model segment>/<file>` for devices, `<prefix>assets/<path>` and
//! `<prefix>firmware/<path>` for shared files. The endpoint uses path-style addressing
//! except for `*.amazonaws.com`, where the bucket is part of the host name. HTTPS endpoints
//! are verified against the system's CA bundle (`/etc/ssl/certs/ca-certificates.crt`), or
//! the bundled web roots when there is none.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use serde::{Deserialize, Serialize};
use ureq::tls::{PemItem, RootCerts, TlsConfig};

use super::resolve::PureResolver;
use super::{Job, Outcome};
use crate::domain::settings::ProvSettings;
use crate::error::{Error, Result};

/// How long presigned URLs stay valid (they are used at once).
const SIGNED_FOR: Duration = Duration::from_secs(300);
/// The system CA bundle (Debian's).
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The asset manifest, in the external directory: what was uploaded, by key.
pub const MANIFEST: &str = ".s3-assets.json";

/// A bucket to upload to.
pub struct S3Target {
    bucket: Bucket,
    creds: Credentials,
    agent: ureq::Agent,
    prefix: String,
    endpoint: String,
}

fn roots() -> RootCerts {
    let Ok(pem) = std::fs::read(CA_BUNDLE) else {
        return RootCerts::WebPki;
    };
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        RootCerts::WebPki
    } else {
        RootCerts::new_with_certs(&certs)
    }
}

/// The text of an S3 error answer: its `Code` and `Message`, when it has them.
fn error_text(body: &str) -> String {
    let Ok(doc) = roxmltree::Document::parse(body) else {
        return String::new();
    };
    let get = |name: &str| {
        doc.descendants()
            .find(|n| n.has_tag_name(name))
            .and_then(|n| n.text())
            .unwrap_or("")
            .to_string()
    };
    match (get("Code"), get("Message")) {
        (c, m) if c.is_empty() && m.is_empty() => String::new(),
        (c, m) => format!(" ({c}: {m})"),
    }
}

fn read_body(resp: &mut ureq::http::Response<ureq::Body>) -> String {
    let mut text = String::new();
    let _ = resp
        .body_mut()
        .as_reader()
        .take(16 * 1024)
        .read_to_string(&mut text);
    text
}

/// A fingerprint of a file for the asset manifest: size and modification time.
fn fingerprint(meta: &std::fs::Metadata) -> String {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}:{mtime}", meta.len())
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    /// Endpoint, bucket and prefix the files went to: another target starts afresh.
    target: String,
    files: BTreeMap<String, String>,
}

/// Every regular file under `root`, with its path relative to `root` (`/`-separated),
/// skipping hidden files and directories.
fn walk(root: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push((e.path(), rel)),
                Ok(t) if t.is_file() => out.push((e.path(), rel)),
                _ => {}
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

fn content_type(key: &str) -> &'static str {
    if key.ends_with(".cfg") || key.ends_with(".xml") {
        "application/xml"
    } else {
        "application/octet-stream"
    }
}

impl S3Target {
    /// A target from the settings; errors name the field.
    pub fn new(settings: &ProvSettings, timeout: Duration) -> Result<S3Target> {
        let endpoint = url::Url::parse(&settings.s3_endpoint).map_err(|e| {
            Error::invalid("s3_endpoint", format!("`{}`: {e}", settings.s3_endpoint))
        })?;
        let style = if endpoint
            .host_str()
            .is_some_and(|h| h.ends_with("amazonaws.com"))
        {
            UrlStyle::VirtualHost
        } else {
            UrlStyle::Path
        };
        let bucket = Bucket::new(
            endpoint,
            style,
            settings.s3_bucket.clone(),
            settings.s3_region.clone(),
        )
        .map_err(|e| Error::invalid("s3_bucket", format!("`{}`: {e}", settings.s3_bucket)))?;
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .tls_config(TlsConfig::builder().root_certs(roots()).build())
            .build();
        let agent = ureq::Agent::with_parts(
            config,
            ureq::unversioned::transport::DefaultConnector::new(),
            PureResolver,
        );
        Ok(S3Target {
            bucket,
            creds: Credentials::new(
                settings.s3_access_key.clone(),
                settings.s3_secret_key.clone(),
            ),
            agent,
            prefix: settings.s3_key_prefix(),
            endpoint: settings.s3_endpoint.clone(),
        })
    }

    /// Checks that the endpoint answers and the bucket exists and accepts the credentials
    /// (HEAD bucket). Errors name the field to fix.
    pub fn check(&self) -> Result<()> {
        let url = self.bucket.head_bucket(Some(&self.creds)).sign(SIGNED_FOR);
        let resp = self.agent.head(url.as_str()).call().map_err(|e| {
            Error::invalid(
                "s3_endpoint",
                format!("cannot reach {}: {e}", self.endpoint),
            )
        })?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            404 => Err(Error::invalid(
                "s3_bucket",
                format!(
                    "bucket `{}` does not exist at {} (404)",
                    self.bucket.name(),
                    self.endpoint
                ),
            )),
            401 | 403 => Err(Error::invalid(
                "s3_access_key",
                format!(
                    "{} refused the credentials for bucket `{}` ({})",
                    self.endpoint,
                    self.bucket.name(),
                    resp.status().as_u16()
                ),
            )),
            301 | 307 | 400 => Err(Error::invalid(
                "s3_region",
                format!(
                    "{} answered {} for bucket `{}`: is region `{}` the bucket's?",
                    self.endpoint,
                    resp.status().as_u16(),
                    self.bucket.name(),
                    self.bucket.region()
                ),
            )),
            other => Err(Error::invalid(
                "s3_endpoint",
                format!(
                    "{} answered {other} for bucket `{}`",
                    self.endpoint,
                    self.bucket.name()
                ),
            )),
        }
    }

    /// The key of a relative path.
    pub fn key(&self, rel: &str) -> String {
        format!("{}{rel}", self.prefix)
    }

    /// Uploads one file under `key` (streamed from disk, with its length).
    pub fn put_file(&self, key: &str, path: &Path) -> Result<()> {
        let file = std::fs::File::open(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let url = self
            .bucket
            .put_object(Some(&self.creds), key)
            .sign(SIGNED_FOR);
        let mut resp = self
            .agent
            .put(url.as_str())
            .header("content-type", content_type(key))
            .send(file)
            .map_err(|e| Error::Config(format!("S3 upload of {key} to {}: {e}", self.endpoint)))?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            Ok(())
        } else {
            let body = read_body(&mut resp);
            Err(Error::Config(format!(
                "S3 upload of {key} to {}: status {status}{}",
                self.endpoint,
                error_text(&body)
            )))
        }
    }

    /// Uploads every file of a device.
    pub fn push_job(&self, job: &Job) -> Outcome {
        let mut keys = Vec::new();
        for path in &job.files {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let key = self.key(&format!("{}/{name}", job.segment));
            if let Err(e) = self.put_file(&key, path) {
                return Outcome {
                    ok: false,
                    summary: format!(
                        "{e} ({} of {} files uploaded; files kept on disk)",
                        keys.len(),
                        job.files.len()
                    ),
                };
            }
            keys.push(key);
        }
        Outcome {
            ok: true,
            summary: format!(
                "uploaded {} files to bucket {}: {}",
                keys.len(),
                self.bucket.name(),
                keys.join(", ")
            ),
        }
    }

    /// Uploads shared assets (`<data_dir>/assets`) and firmware (`<data_dir>/firmware`) that
    /// changed since the last sync to this target, as recorded in `manifest`. Returns how
    /// many files were uploaded and how many were unchanged.
    pub fn sync_assets(&self, data_dir: &Path, manifest: &Path) -> Result<(usize, usize)> {
        let target = format!("{}|{}|{}", self.endpoint, self.bucket.name(), self.prefix);
        let mut m: Manifest = std::fs::read(manifest)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .filter(|m: &Manifest| m.target == target)
            .unwrap_or_else(|| Manifest {
                target: target.clone(),
                files: BTreeMap::new(),
            });
        let (mut uploaded, mut unchanged) = (0, 0);
        let mut result = Ok(());
        'dirs: for dir in ["assets", "firmware"] {
            for (path, rel) in walk(&data_dir.join(dir)) {
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                let key = self.key(&format!("{dir}/{rel}"));
                let print = fingerprint(&meta);
                if m.files.get(&key) == Some(&print) {
                    unchanged += 1;
                    continue;
                }
                if let Err(e) = self.put_file(&key, &path) {
                    result = Err(e);
                    break 'dirs;
                }
                m.files.insert(key, print);
                uploaded += 1;
            }
        }
        // Record progress even after a failure, so the next sync resumes.
        if let Some(parent) = manifest.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let json = serde_json::to_vec_pretty(&m).unwrap_or_default();
        std::fs::write(manifest, json)
            .map_err(|e| Error::io(format!("writing {}", manifest.display()), e))?;
        result.map(|()| (uploaded, unchanged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_error_answers_are_summarised() {
        let body = "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The \
                    specified bucket does not exist</Message></Error>";
        assert_eq!(
            error_text(body),
            " (NoSuchBucket: The specified bucket does not exist)"
        );
        assert_eq!(error_text("not xml"), "");
    }

    #[test]
    fn keys_carry_the_prefix() {
        let settings = ProvSettings {
            s3_endpoint: "http://127.0.0.1:9".into(),
            s3_bucket: "configs".into(),
            s3_access_key: "a".into(),
            s3_secret_key: "s".into(),
            s3_prefix: "site1".into(),
            ..Default::default()
        };
        let t = S3Target::new(&settings, Duration::from_secs(1)).expect("target");
        assert_eq!(t.key("VVX_500/x.cfg"), "site1/VVX_500/x.cfg");
    }

    #[test]
    fn walking_skips_hidden_files_and_sorts() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(dir.path().join("5.9/sub")).expect("mkdir");
        std::fs::write(dir.path().join("5.9/sip.ld"), b"x").expect("w");
        std::fs::write(dir.path().join("5.9/sub/a"), b"x").expect("w");
        std::fs::write(dir.path().join(".hidden"), b"x").expect("w");
        let rels: Vec<String> = walk(dir.path()).into_iter().map(|(_, r)| r).collect();
        assert_eq!(rels, ["5.9/sip.ld", "5.9/sub/a"]);
    }
}
