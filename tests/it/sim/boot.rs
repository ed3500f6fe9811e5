//! A phone's boot and poll: where it looks for its server, the requests of docs/design.md §2 in
//! order, what counts as a failure, and which `device.*` values it adopts.

use std::collections::BTreeMap;

use super::client::{Outgoing, Response, Target};
use super::files::{self, Master};
use super::{
    BOOT_SERVER, Boot, BootReport, CA_CERT, FIRMWARE, Failure, Family, Firmware, PASSWORD,
    SERVER_NAME, SERVER_TYPE, Sequence, SimPhone, USER,
};

const BOOT_LOG: &[u8] = b"0101000000|boot |1|00|Bootstrap: application starting\n";

/// The provisioning server a boot uses.
#[derive(Debug, Clone)]
struct Server {
    scheme: String,
    host: String,
    /// Base path, starting and ending with `/`.
    base: String,
    /// A `.cfg` named in the address itself: the master file to ask for first.
    master: Option<String>,
    /// Credentials in the address (`user:pass@`).
    userinfo: Option<(String, String)>,
}

impl Server {
    fn at(&self, path: &str) -> Target {
        Target {
            scheme: self.scheme.clone(),
            host: self.host.clone(),
            path: format!("{}{}", self.base, path.trim_start_matches('/')),
        }
    }

    /// A CONFIG_FILES entry or firmware path: relative to the base path, or an absolute URL.
    fn resolve(&self, entry: &str) -> Result<Target, String> {
        if entry.contains("://") {
            let (scheme, host, path) = split_url(entry)?;
            if scheme != "http" && scheme != "https" {
                return Err(format!(
                    "{} entry: this phone speaks HTTP and HTTPS here",
                    scheme.to_ascii_uppercase()
                ));
            }
            Ok(Target { scheme, host, path })
        } else {
            Ok(self.at(entry))
        }
    }

    /// A file in one of the master's directories (relative to the base, or an absolute URL).
    fn in_dir(&self, dir: &str, file: &str) -> Result<Target, String> {
        let dir = dir.trim_end_matches('/');
        if dir.is_empty() {
            Ok(self.at(file))
        } else {
            self.resolve(&format!("{dir}/{file}"))
        }
    }
}

/// `scheme://[user:pass@]host[:port][/path]` → (scheme, authority, path).
fn split_url(url: &str) -> Result<(String, String, String), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("not a URL: {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Ok((scheme.to_ascii_lowercase(), host.to_string(), path))
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// What one run (boot or poll) collects.
#[derive(Default)]
struct Run {
    failures: Vec<Failure>,
    adopted: Vec<String>,
    firmware: Option<Firmware>,
}

impl Run {
    fn fail(&mut self, url: String, status: Option<u16>, what: impl Into<String>) {
        self.failures.push(Failure {
            url,
            status,
            what: what.into(),
        });
    }
}

/// Whether a boot or a poll.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Boot,
    Poll,
}

impl SimPhone {
    /// One boot: boot log, master file, firmware, CONFIG_FILES, the optional files,
    /// application log (the first three and the last four only with `Sequence::Full`).
    /// When it adopts values it reboots at once (the rest of the sequence is left out).
    pub fn boot(&mut self) -> Boot {
        self.boots += 1;
        self.run(Kind::Boot)
    }

    /// A poll (`prov.polling`): master file, firmware, CONFIG_FILES; adopted values reboot
    /// it as in a boot.
    pub fn poll(&mut self) -> Boot {
        self.polls += 1;
        self.run(Kind::Poll)
    }

    fn run(&mut self, kind: Kind) -> Boot {
        let first_request = self.client.log.len();
        let stats = self.client.stats;
        let first_event = self.client.events.len();
        if let Some(b) = self.bodies.as_mut() {
            b.clear();
        }
        self.client.disconnect();
        self.client.trust = format!("{}\n{}", self.factory_trust, self.trust_held());
        let mut run = Run::default();
        let ended = self.sequence(kind, &mut run);
        // A connection the server dropped without notice is a failure of this boot.
        for e in &self.client.events[first_event..] {
            run.fail(String::new(), None, e.clone());
        }
        let boot = match ended {
            Some(b) => b,
            None if !run.failures.is_empty() => Boot::Incomplete {
                failed: run.failures.clone(),
                adopted: run.adopted.clone(),
            },
            None if !run.adopted.is_empty() => Boot::Rebooted(run.adopted.clone()),
            None => Boot::Configured,
        };
        if !run.adopted.is_empty() {
            self.reboots += 1;
        }
        // A reboot, or quiet until the next poll: its connections close.
        self.client.disconnect();
        let now = self.client.stats;
        self.last = Some(BootReport {
            boot: boot.clone(),
            adopted: run.adopted,
            failures: run.failures,
            firmware: run.firmware,
            requests: first_request..self.client.log.len(),
            conns: super::ConnStats {
                opened: now.opened - stats.opened,
                server_closes: now.server_closes - stats.server_closes,
                drops: now.drops - stats.drops,
                stale: now.stale - stats.stale,
            },
        });
        boot
    }

    /// The CA PEMs the phone was given in files it adopted.
    fn trust_held(&self) -> String {
        let mut pem = self.held(CA_CERT).to_string();
        if self.model.family == Family::PolyOs {
            for n in 1..=3 {
                if let Some(c) = self.config.get(&format!("sec.TLS.customCaCert.{n}")) {
                    pem.push('\n');
                    pem.push_str(c);
                }
            }
        }
        pem
    }

    /// Where this boot goes: the DHCP boot server unless the boot-server option is
    /// `Static` (or no DHCP server was given), else the held server name, with the held
    /// server type when the address has no scheme.
    fn server(&self) -> Result<Server, Boot> {
        let address = match &self.dhcp {
            Some(d) if self.held(BOOT_SERVER) != "Static" => d.clone(),
            _ => self.held(SERVER_NAME).to_string(),
        };
        let address = address.trim();
        if address.is_empty() {
            return Err(Boot::Unreachable("no provisioning server address".into()));
        }
        let url = if address.contains("://") {
            address.to_string()
        } else {
            match self.model.family {
                Family::PolyOs => {
                    return Err(Boot::Stranded {
                        protocol: format!(
                            "none: `{address}` has no scheme and Poly OS has no server type"
                        ),
                    });
                }
                Family::Ucs => {
                    let t = self.held(SERVER_TYPE);
                    let t = if t.is_empty() { "FTP" } else { t };
                    format!("{}://{address}", t.to_ascii_lowercase())
                }
            }
        };
        let (scheme, host, path) = split_url(&url).map_err(Boot::Unreachable)?;
        if scheme != "http" && scheme != "https" {
            return Err(Boot::Stranded {
                protocol: scheme.to_ascii_uppercase(),
            });
        }
        let rest = url.split_once("://").map_or("", |(_, r)| r);
        let authority = rest.split('/').next().unwrap_or("");
        let userinfo = authority.rsplit_once('@').map(|(ui, _)| {
            let (u, p) = ui.split_once(':').unwrap_or((ui, ""));
            (decode(u), decode(p))
        });
        let (base, master) = if path.ends_with(".cfg") {
            let (dir, _) = path.rsplit_once('/').unwrap_or(("", ""));
            (format!("{dir}/"), Some(path.clone()))
        } else {
            (format!("{}/", path.trim_end_matches('/')), None)
        };
        Ok(Server {
            scheme,
            host,
            base,
            master,
            userinfo,
        })
    }

    /// The whole sequence; `Some` when it ended early (no master, stranded, unreachable).
    fn sequence(&mut self, kind: Kind, run: &mut Run) -> Option<Boot> {
        let server = match self.server() {
            Ok(s) => s,
            Err(b) => return Some(b),
        };
        let full = self.sequence == Sequence::Full && self.model.family == Family::Ucs;
        if full && kind == Kind::Boot {
            // The boot-stage updater uploads its boot log before anything else.
            let t = server.at(&format!("{}-boot.log", self.mac));
            let ua = self.ua("Updater");
            match self.request(&server, "PUT", &t, &ua, BOOT_LOG, true) {
                Err(e) => return Some(Boot::Unreachable(e)),
                Ok(r) => optional_upload(run, &t, &r),
            }
        }
        let master_target = match &server.master {
            Some(m) => Target {
                scheme: server.scheme.clone(),
                host: server.host.clone(),
                path: m.clone(),
            },
            None => server.at(&format!("{}.cfg", self.mac)),
        };
        let mut resp = match self.get(&server, &master_target, true) {
            Ok(r) => r,
            Err(e) => return Some(Boot::Unreachable(e)),
        };
        let mut master_path = master_target.path.clone();
        if resp.status == 404 && server.master.is_none() && self.model.family == Family::Ucs {
            let t = server.at("000000000000.cfg");
            master_path = t.path.clone();
            resp = match self.get(&server, &t, true) {
                Ok(r) => r,
                Err(e) => return Some(Boot::Unreachable(e)),
            };
        }
        if !(200..300).contains(&resp.status) {
            return Some(Boot::Refused {
                status: resp.status,
                path: master_path,
            });
        }
        let master = match files::master(&resp.body, &self.mac, self.model.token, self.model.part) {
            Ok(m) => m,
            Err(e) => {
                run.fail(
                    master_target.url(),
                    Some(resp.status),
                    format!("master file: {e}"),
                );
                return Some(Boot::Incomplete {
                    failed: run.failures.clone(),
                    adopted: Vec::new(),
                });
            }
        };
        let new_version = self.firmware(&server, &master, run);
        let merged = self.config_files(&server, &master, run);
        run.adopted = self.adopt(&merged);
        if let Some(v) = new_version {
            self.version = v;
            run.adopted.push(FIRMWARE.to_string());
        }
        let mut config: BTreeMap<String, String> = merged
            .into_iter()
            .filter(|(k, _)| !k.starts_with("device."))
            .collect();
        if !run.adopted.is_empty() {
            self.config = config;
            return None; // it reboots now
        }
        if full && kind == Kind::Boot {
            for (k, v) in self.optional_files(&server, &master, run) {
                config.insert(k, v); // the phone's own overrides beat every server file
            }
            self.app_log(&server, &master, run);
        }
        self.config = config;
        None
    }

    /// Downloads the image APP_FILE_PATH names when its version differs from the running
    /// one; returns the version to run after the reboot.
    fn firmware(&mut self, server: &Server, master: &Master, run: &mut Run) -> Option<String> {
        if master.app_file_path.is_empty() {
            return None;
        }
        let version = files::version_in(&master.app_file_path);
        if version.as_deref() == Some(self.version.as_str()) {
            return None;
        }
        let path = files::image_path(&master.app_file_path, self.model.part);
        let target = match server.resolve(&path) {
            Ok(t) => t,
            Err(e) => {
                run.fail(path, None, e);
                return None;
            }
        };
        match self.get(server, &target, false) {
            Err(e) => run.fail(target.url(), None, format!("firmware: {e}")),
            Ok(r) if !(200..300).contains(&r.status) => {
                run.fail(target.url(), Some(r.status), "firmware not served")
            }
            Ok(r) => {
                let fw = Firmware {
                    url: target.url(),
                    version: version.clone(),
                    bytes: r.len,
                };
                self.firmware_updates.push(fw.clone());
                run.firmware = Some(fw);
                return version;
            }
        }
        None
    }

    /// Every CONFIG_FILES entry, left to right, first file wins.
    fn config_files(
        &mut self,
        server: &Server,
        master: &Master,
        run: &mut Run,
    ) -> BTreeMap<String, String> {
        let mut merged = BTreeMap::new();
        for entry in &master.config_files {
            let target = match server.resolve(entry) {
                Ok(t) => t,
                Err(e) => {
                    run.fail(entry.clone(), None, e);
                    continue;
                }
            };
            let r = match self.get(server, &target, true) {
                Ok(r) => r,
                Err(e) => {
                    run.fail(target.url(), None, e);
                    continue;
                }
            };
            if !(200..300).contains(&r.status) {
                run.fail(
                    target.url(),
                    Some(r.status),
                    "CONFIG_FILES entry not served",
                );
                continue;
            }
            match files::params(&r.body) {
                Ok(ps) => {
                    for (k, v) in ps {
                        merged.entry(k).or_insert(v);
                    }
                }
                Err(e) => run.fail(target.url(), Some(r.status), e),
            }
        }
        merged
    }

    /// Adopts `device.*` values: with `device.set="1"` and the value's `.set="1"` (Poly OS:
    /// `device.prov.*` without them, an assumption). Only values that differ count.
    fn adopt(&mut self, merged: &BTreeMap<String, String>) -> Vec<String> {
        let on = |k: &str| merged.get(k).is_some_and(|v| v == "1");
        let device_set = on("device.set");
        let mut adopted = Vec::new();
        for (k, v) in merged {
            if !k.starts_with("device.") || k == "device.set" || k.ends_with(".set") {
                continue;
            }
            let allowed = device_set && on(&format!("{k}.set"))
                || self.model.family == Family::PolyOs && k.starts_with("device.prov.");
            if allowed && self.device.get(k) != Some(v) {
                adopted.push(k.clone());
            }
        }
        for k in &adopted {
            self.device.insert(k.clone(), merged[k].clone());
            self.adoptions
                .push((self.boots + self.polls, k.clone(), merged[k].clone()));
        }
        adopted
    }

    /// Overrides, licences, call list and directories: a 404 is normal, anything else but
    /// 2xx a failure, and a 2xx must be XML. Returns the overrides' parameters.
    fn optional_files(
        &mut self,
        server: &Server,
        master: &Master,
        run: &mut Run,
    ) -> Vec<(String, String)> {
        let mac = self.mac.clone();
        let ui = if self.model.token.starts_with("Trio") {
            "system"
        } else {
            "web"
        };
        let overrides = master.dir("OVERRIDES_DIRECTORY");
        let files = [
            (overrides, format!("{mac}-phone.cfg"), true),
            (overrides, format!("{mac}-{ui}.cfg"), true),
            (
                master.dir("LICENSE_DIRECTORY"),
                "000000000000-license.cfg".into(),
                false,
            ),
            (
                master.dir("LICENSE_DIRECTORY"),
                format!("{mac}-license.cfg"),
                false,
            ),
            (
                master.dir("CALL_LISTS_DIRECTORY"),
                format!("{mac}-calls.xml"),
                false,
            ),
            (
                master.dir("CONTACTS_DIRECTORY"),
                format!("{mac}-directory.xml"),
                false,
            ),
            ("", "000000000000-directory.xml".into(), false),
        ];
        let mut out = Vec::new();
        for (dir, file, is_override) in files {
            let target = match server.in_dir(dir, &file) {
                Ok(t) => t,
                Err(e) => {
                    run.fail(file, None, e);
                    continue;
                }
            };
            let r = match self.get(server, &target, true) {
                Ok(r) => r,
                Err(e) => {
                    run.fail(target.url(), None, e);
                    continue;
                }
            };
            if r.status == 404 {
                continue;
            }
            if !(200..300).contains(&r.status) {
                run.fail(
                    target.url(),
                    Some(r.status),
                    "optional file answered neither 2xx nor 404",
                );
                continue;
            }
            match files::params(&r.body) {
                Ok(ps) if is_override => out.extend(ps),
                Ok(_) => {}
                Err(e) => run.fail(target.url(), Some(r.status), e),
            }
        }
        out
    }

    /// The application log: HEAD, then PUT of the whole (grown) log.
    fn app_log(&mut self, server: &Server, master: &Master, run: &mut Run) {
        let target = match server.in_dir(
            master.dir("LOG_FILE_DIRECTORY"),
            &format!("{}-app.log", self.mac),
        ) {
            Ok(t) => t,
            Err(e) => return run.fail("app log".into(), None, e),
        };
        let ua = self.user_agent();
        match self.request(server, "HEAD", &target, &ua, b"", true) {
            Err(e) => return run.fail(target.url(), None, e),
            Ok(r) if r.status != 404 && !(200..300).contains(&r.status) => {
                return run.fail(target.url(), Some(r.status), "log HEAD");
            }
            Ok(_) => {}
        }
        self.app_log.extend_from_slice(
            format!(
                "01{:08}|app1 |1|00|Application, main: Starting (boot {})\n",
                self.boots, self.boots
            )
            .as_bytes(),
        );
        let body = self.app_log.clone();
        match self.request(server, "PUT", &target, &ua, &body, true) {
            Err(e) => run.fail(target.url(), None, e),
            Ok(r) => optional_upload(run, &target, &r),
        }
    }

    fn get(&mut self, server: &Server, target: &Target, keep: bool) -> Result<Response, String> {
        let ua = self.user_agent();
        let r = self.request(server, "GET", target, &ua, b"", keep)?;
        if keep
            && (200..300).contains(&r.status)
            && let Some(b) = self.bodies.as_mut()
        {
            b.push((target.path.clone(), r.body.clone()));
        }
        Ok(r)
    }

    fn request(
        &mut self,
        server: &Server,
        method: &str,
        target: &Target,
        ua: &str,
        body: &[u8],
        keep: bool,
    ) -> Result<Response, String> {
        let (user, password) = match &server.userinfo {
            Some((u, p)) => (u.clone(), p.clone()),
            None => (self.held(USER).to_string(), self.held(PASSWORD).to_string()),
        };
        let x_device = format!(
            "{}/{}/{}",
            self.mac.to_ascii_uppercase(),
            self.mac,
            self.client
                .local
                .map_or("127.0.0.1".to_string(), |a| a.to_string())
        );
        let poly_os = [("X-Device", x_device.as_str())];
        let headers: &[(&str, &str)] = if self.model.family == Family::PolyOs {
            &poly_os
        } else {
            &[]
        };
        self.client.send(&Outgoing {
            method,
            target,
            user_agent: ua,
            headers,
            body,
            credentials: (!user.is_empty()).then_some((user.as_str(), password.as_str())),
            keep_body: keep,
        })
    }
}

/// A log upload: stored (2xx) or refused with 404 is normal, and so is 403 (a server
/// that stores per-device files only from a device that proved itself); anything else
/// is a failure.
fn optional_upload(run: &mut Run, target: &Target, r: &Response) {
    if !matches!(r.status, 403 | 404) && !(200..300).contains(&r.status) {
        run.fail(
            target.url(),
            Some(r.status),
            "upload answered neither 2xx nor 404",
        );
    }
}
