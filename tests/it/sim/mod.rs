//! A phone simulator that behaves like a Polycom phone and fails loudly, for end-to-end
//! tests, the model-based test and the boot-storm benchmark (`benches/bootstorm.rs`
//! includes this module).
//!
//! A `SimPhone` holds what a phone holds — its `device.*` values (server address and type,
//! credentials, boot-server option, serial tag, CA), the DHCP boot server it was given, its
//! model, part number and running firmware — and boots the way docs/design.md §2
//! (sections 1–4 and 8) says a phone does (`boot.rs`): the updater's boot-log PUT, `<mac>.cfg`
//! (`000000000000.cfg` on 404), the firmware APP_FILE_PATH names (by its part-number name,
//! when its version differs from the running one), every CONFIG_FILES entry left to right
//! (first file wins), overrides, licences, call lists, directories and the application log.
//! HTTP is `client.rs`: no credentials on a connection's first request, the 401 answered
//! as its `WWW-Authenticate` offers (Digest preferred, as phones do; `AuthMode::Basic`
//! forces Basic), credentials sent at once later on an authenticated connection.
//!
//! It is strict: a CONFIG_FILES entry answered with anything but 2xx, an empty or
//! unparseable file, a firmware download that fails, and a keep-alive connection the
//! server dropped without saying so are failures the boot reports (`Boot::Incomplete`);
//! only optional files (overrides, licences, directories, call lists, log uploads) may
//! 404. A scheme-less `serverName` is used with the held `serverType`; a server type or
//! scheme it cannot speak (FTP, TFTP, FTPS) ends the boot as `Boot::Stranded`, never as
//! HTTP. It adopts a `device.*` value only with `device.set="1"` and the value's
//! `.set="1"`, and after adopting any change (or a new firmware) it reboots: the next boot
//! uses the new values.
//!
//! Poly OS (`SimPhone::poly_os`, a Studio X30): User-Agent `FileTransport
//! G_SERIES-PolyStudioX30-UA/3.10.0_362035 Type/Application`, a full-URL `serverName` and no
//! server type, Basic only, only the master and its CONFIG_FILES. *Assumption*: it adopts
//! `device.prov.*` without `device.set`/`.set`, because docs/design.md §2 says a third-party
//! export sends them that way; that a unit applies them is not confirmed. That it does not
//! fall back to `000000000000.cfg` is an assumption too (unconfirmed, docs/design.md §2).

#![allow(dead_code)]

mod boot;
mod client;
pub mod digest;
pub mod files;
pub mod sip;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

#[allow(unused_imports)]
pub use client::{Client, ConnStats, Cred, Outgoing, Request, Target};
#[allow(unused_imports)]
pub use digest::{AuthMode, Challenge, parse_challenges};

/// `device.*` parameters that change how the phone reaches its server.
pub const SERVER_NAME: &str = "device.prov.serverName";
pub const SERVER_TYPE: &str = "device.prov.serverType";
pub const USER: &str = "device.prov.user";
pub const PASSWORD: &str = "device.prov.password";
pub const BOOT_SERVER: &str = "device.dhcp.bootSrvUseOpt";
pub const TAG_SERIAL: &str = "device.prov.tagSerialNo";
pub const CA_CERT: &str = "device.sec.TLS.customCaCert1";
/// The name `Boot::Rebooted` lists when a new firmware image was installed.
pub const FIRMWARE: &str = "firmware";

/// UCS (SoundPoint IP, VVX, Trio, ...) or Poly OS (Studio X, G7500).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Ucs,
    PolyOs,
}

/// A phone model: how its User-Agent names it, its model token (`APP_FILE_PATH_<token>`)
/// and its part number (the images it asks for). Part numbers are copied from
/// `src/domain/polycom/parts.rs`, not imported: the simulator must not share the server's
/// tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Model {
    /// `PolycomVVX-VVX_500`
    pub product: &'static str,
    /// `VVX500`
    pub token: &'static str,
    /// `3111-44500-001`; empty when no part number is known.
    pub part: &'static str,
    pub family: Family,
}

pub const VVX_410: Model = Model {
    product: "PolycomVVX-VVX_410",
    token: "VVX410",
    part: "3111-46162-001",
    family: Family::Ucs,
};
pub const VVX_500: Model = Model {
    product: "PolycomVVX-VVX_500",
    token: "VVX500",
    part: "3111-44500-001",
    family: Family::Ucs,
};
pub const VVX_501: Model = Model {
    product: "PolycomVVX-VVX_501",
    token: "VVX501",
    part: "3111-48500-001",
    family: Family::Ucs,
};
pub const TRIO_8800: Model = Model {
    product: "PolycomRealPresenceTrio-Trio_8800",
    token: "Trio8800",
    part: "3111-65290-001",
    family: Family::Ucs,
};
pub const STUDIO_X30: Model = Model {
    product: "G_SERIES-PolyStudioX30",
    token: "StudioX30",
    part: "",
    family: Family::PolyOs,
};

/// Whether the User-Agent carries `(SN:<mac>)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerialTag {
    /// As the phone holds it: after adopting `device.prov.tagSerialNo=1`.
    Held,
    On,
    Off,
}

/// Which requests a boot makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sequence {
    /// Everything of docs/design.md §2: boot log, master, firmware, CONFIG_FILES, overrides,
    /// licences, call list, directories, application log.
    Full,
    /// Master, firmware and CONFIG_FILES only.
    Config,
}

/// Something that went wrong in a boot without ending it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub url: String,
    /// The status it was answered with, if it was answered.
    pub status: Option<u16>,
    pub what: String,
}

/// How a boot (or poll) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boot {
    /// Master and every file read; nothing platform-level changed.
    Configured,
    /// `device.*` values adopted (named; `FIRMWARE` for a new image): the phone reboots to
    /// apply them, and its next boot uses them.
    Rebooted(Vec<String>),
    /// Files failed (a CONFIG_FILES entry not 2xx, an empty or broken file, a failed
    /// firmware download, a dropped connection). The phone went on with the rest (whether
    /// a real phone does is unconfirmed, docs/design.md §2) and adopted `adopted` (it reboots
    /// when that is not empty).
    Incomplete {
        failed: Vec<Failure>,
        adopted: Vec<String>,
    },
    /// The master file was refused (401 with credentials, 403, 404, ...).
    Refused { status: u16, path: String },
    /// No connection, no TLS trust, or no server at all.
    Unreachable(String),
    /// The server type or scheme it holds is one it does not speak here (FTP, TFTP, FTPS;
    /// for Poly OS an address without a scheme): it fetched nothing.
    Stranded { protocol: String },
}

/// A firmware image a boot downloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firmware {
    pub url: String,
    /// The version its path names, if it names one.
    pub version: Option<String>,
    pub bytes: u64,
}

/// Everything about the last boot.
#[derive(Debug, Clone)]
pub struct BootReport {
    pub boot: Boot,
    pub adopted: Vec<String>,
    pub failures: Vec<Failure>,
    pub firmware: Option<Firmware>,
    /// Indices of its requests in `requests()`.
    pub requests: std::ops::Range<usize>,
    /// Connections opened, closed by the server with `Connection: close`, and dropped by
    /// it without notice, during this boot.
    pub conns: ConnStats,
}

/// A simulated phone.
pub struct SimPhone {
    pub mac: String,
    pub model: Model,
    /// The running application's version (as in its User-Agent).
    pub version: String,
    /// Every `device.*` value the phone holds.
    pub device: BTreeMap<String, String>,
    /// The other parameters of its last complete boot (overrides it was served included).
    pub config: BTreeMap<String, String>,
    /// The boot server DHCP gave it (option 160 or 66), used unless its boot-server option
    /// is `Static`.
    pub dhcp: Option<String>,
    /// Boots and polls run, and reboots to apply adopted values or firmware.
    pub boots: u32,
    pub polls: u32,
    pub reboots: u32,
    /// Every `device.*` value adopted: (boot number, parameter, value).
    pub adoptions: Vec<(u32, String, String)>,
    pub firmware_updates: Vec<Firmware>,
    pub serial_tag: SerialTag,
    pub sequence: Sequence,
    /// CAs it trusts besides the one it was given in `device.sec.TLS.customCaCert1`.
    pub factory_trust: String,
    /// Bodies of the 2xx GETs of the last boot (path, bytes), when `keep_bodies` is on.
    pub bodies: Option<Vec<(String, Vec<u8>)>>,
    client: client::Client,
    app_log: Vec<u8>,
    last: Option<BootReport>,
}

impl SimPhone {
    /// A VVX 500 that reaches its server at `server` (`host:port` or `host:port/path`, as
    /// typed on the phone) over HTTP with these credentials, boot server `Default` with
    /// no DHCP boot server (so it uses its own address).
    pub fn new(mac: &str, server: &str, user: &str, password: &str) -> SimPhone {
        SimPhone::factory(mac, VVX_500)
            .hold(SERVER_NAME, server)
            .hold(SERVER_TYPE, "HTTP")
            .hold(USER, user)
            .hold(PASSWORD, password)
            .hold(BOOT_SERVER, "Default")
    }

    /// A phone as it leaves the factory: server type FTP (docs/design.md §2), boot server
    /// `CustomAndDefault`, no address, no credentials, version 5.9.7.47435 (Poly OS:
    /// 3.10.0_362035). Give it a boot server with `dhcp` or `hold`.
    pub fn factory(mac: &str, model: Model) -> SimPhone {
        let mut device = BTreeMap::new();
        if model.family == Family::Ucs {
            device.insert(SERVER_TYPE.to_string(), "FTP".to_string());
            device.insert(BOOT_SERVER.to_string(), "CustomAndDefault".to_string());
        }
        SimPhone {
            mac: mac.to_ascii_lowercase(),
            model,
            version: match model.family {
                Family::Ucs => "5.9.7.47435".into(),
                Family::PolyOs => "3.10.0_362035".into(),
            },
            device,
            config: BTreeMap::new(),
            dhcp: None,
            boots: 0,
            polls: 0,
            reboots: 0,
            adoptions: Vec::new(),
            firmware_updates: Vec::new(),
            serial_tag: SerialTag::Held,
            sequence: match model.family {
                Family::Ucs => Sequence::Full,
                Family::PolyOs => Sequence::Config,
            },
            factory_trust: String::new(),
            bodies: None,
            client: client::Client::new(match model.family {
                Family::Ucs => AuthMode::PreferDigest,
                Family::PolyOs => AuthMode::Basic,
            }),
            app_log: Vec::new(),
            last: None,
        }
    }

    /// A Poly Studio X30 provisioned at `url` (a full URL, as Poly OS takes it).
    pub fn poly_os(mac: &str, url: &str, user: &str, password: &str) -> SimPhone {
        SimPhone::factory(mac, STUDIO_X30)
            .hold(SERVER_NAME, url)
            .hold(USER, user)
            .hold(PASSWORD, password)
    }

    /// The boot server DHCP hands it (option 160 or 66): a URL, possibly with
    /// `user:pass@`, or a bare host (then the held server type applies).
    pub fn dhcp(mut self, value: &str) -> SimPhone {
        self.dhcp = Some(value.to_string());
        self
    }

    /// Holds `value` for a `device.*` parameter (set on the phone's menu).
    pub fn hold(mut self, param: &str, value: &str) -> SimPhone {
        self.device.insert(param.to_string(), value.to_string());
        self
    }

    pub fn with_model(mut self, model: Model) -> SimPhone {
        self.model = model;
        self
    }

    /// The running application version.
    pub fn with_version(mut self, version: &str) -> SimPhone {
        self.version = version.to_string();
        self
    }

    pub fn auth_mode(mut self, mode: AuthMode) -> SimPhone {
        self.client.mode = mode;
        self
    }

    /// Binds its sockets to this local address (e.g. 127.0.0.5: phones on other addresses,
    /// or many behind one).
    pub fn bind(mut self, local: IpAddr) -> SimPhone {
        self.client.local = Some(local);
        self
    }

    pub fn with_serial_tag(mut self, tag: SerialTag) -> SimPhone {
        self.serial_tag = tag;
        self
    }

    pub fn with_sequence(mut self, sequence: Sequence) -> SimPhone {
        self.sequence = sequence;
        self
    }

    /// Trusts these CAs (PEM) for HTTPS from the start.
    pub fn trust(mut self, pem: &str) -> SimPhone {
        self.factory_trust = pem.to_string();
        self
    }

    /// Keeps the bodies of every 2xx GET of each boot in `bodies` (not firmware images).
    pub fn keep_bodies(mut self) -> SimPhone {
        self.bodies = Some(Vec::new());
        self
    }

    /// Socket timeout for connects, reads and writes (default 20 s).
    pub fn timeout(mut self, t: Duration) -> SimPhone {
        self.client.timeout = t;
        self
    }

    /// A value it holds (`""` when none).
    pub fn held(&self, param: &str) -> &str {
        self.device.get(param).map(String::as_str).unwrap_or("")
    }

    pub fn user(&self) -> &str {
        self.held(USER)
    }

    pub fn password(&self) -> &str {
        self.held(PASSWORD)
    }

    /// Sets its credentials by hand (as typed on the phone).
    pub fn set_credentials(&mut self, user: &str, password: &str) {
        self.device.insert(USER.into(), user.into());
        self.device.insert(PASSWORD.into(), password.into());
        self.client.disconnect();
    }

    /// Every request made, oldest first (a 401 and its answer are two).
    pub fn requests(&self) -> &[Request] {
        &self.client.log
    }

    /// The status of the last request for `path` (a path or a full URL).
    pub fn last_status_of(&self, path: &str) -> Option<u16> {
        self.client
            .log
            .iter()
            .rev()
            .find(|r| r.path() == path || r.url == path)
            .map(|r| r.status)
    }

    /// The last boot's report.
    pub fn last_boot(&self) -> &BootReport {
        self.last.as_ref().expect("the phone has booted")
    }

    /// Connection counts over the phone's life.
    pub fn conn_stats(&self) -> ConnStats {
        self.client.stats
    }

    /// Connections dropped without notice, and other events, over the phone's life.
    pub fn events(&self) -> &[String] {
        &self.client.events
    }

    pub fn user_agent(&self) -> String {
        self.ua("Application")
    }

    fn ua(&self, kind: &str) -> String {
        let tagged = self.model.family == Family::Ucs
            && match self.serial_tag {
                SerialTag::On => true,
                SerialTag::Off => false,
                SerialTag::Held => self.held(TAG_SERIAL) == "1",
            };
        let tag = if tagged {
            format!(" (SN:{})", self.mac)
        } else {
            String::new()
        };
        format!(
            "FileTransport {}-UA/{}{tag} Type/{kind}",
            self.model.product, self.version
        )
    }

    /// Boots until nothing changes any more (at most `max` boots); returns the last outcome.
    pub fn boot_until_stable(&mut self, max: u32) -> Boot {
        let mut last = Boot::Configured;
        for _ in 0..max {
            last = self.boot();
            let rebooting = match &last {
                Boot::Rebooted(_) => true,
                Boot::Incomplete { adopted, .. } => !adopted.is_empty(),
                _ => false,
            };
            if !rebooting {
                return last;
            }
        }
        last
    }

    /// A power cycle (or an admin's reboot): a boot like any other.
    pub fn reboot(&mut self) -> Boot {
        self.boot()
    }
}
