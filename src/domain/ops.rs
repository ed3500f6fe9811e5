//! Actions on accounts, profiles and devices, shared by the command line, the admin UI and
//! the API: validate everything first, then write in one transaction, so a refused input
//! leaves nothing half-written.

use std::collections::BTreeMap;

use rusqlite::Connection;

use super::account::{self, Account, AccountId, UnknownDevices};
use super::device::{DeviceInput, NewDevice};
use super::mac::Mac;
use super::polycom::render::{DeviceView, profile_file_name};
use super::profile::{self, ProfileFields, ProfileFile};
use super::provserver::ServerUrl;
use super::provstate::{PhoneTrust, Reach};
use super::template::Vars;
use crate::db::{self, accounts, devices, profiles};
use crate::error::{Error, FieldError, Result};

/// The addresses of this server, to refuse provisioning-server fields that point back at
/// it (rendering those into `device.prov.*` could lock phones out).
#[derive(Debug, Clone, Default)]
pub struct OwnAddresses {
    /// Lowercase host names and IPs (no brackets).
    pub hosts: Vec<String>,
    /// Device listener ports.
    pub ports: Vec<u16>,
}

impl OwnAddresses {
    /// From the configuration: public names, the listen addresses, loopback and the host name.
    pub fn from_config(config: &crate::config::Config) -> OwnAddresses {
        let mut hosts: Vec<String> = config
            .device
            .public_names
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        hosts.extend(["localhost", "127.0.0.1", "::1"].map(String::from));
        if let Ok(name) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
            let name = name.trim().to_ascii_lowercase();
            if !name.is_empty() {
                hosts.push(name);
            }
        }
        let mut ports = Vec::new();
        if let Some(addr) = config.device_http_addr() {
            if !addr.ip().is_unspecified() {
                hosts.push(addr.ip().to_string());
            }
            // Port 0 is chosen at start and not known here: then any port of ours matches.
            if addr.port() != 0 {
                ports.push(addr.port());
            }
        }
        OwnAddresses { hosts, ports }
    }

    /// Whether an address names this server: a known host, on one of our ports (or with
    /// no port, when we listen on the scheme's default port).
    pub fn matches(&self, url: &ServerUrl) -> bool {
        if !self.hosts.contains(&url.host_key()) {
            return false;
        }
        let default = match url.server_type {
            Some("HTTPS") => 443,
            _ => 80,
        };
        let port = url.port.unwrap_or(default);
        self.ports.is_empty() || self.ports.contains(&port)
    }

    /// Adds a problem for `field` when `value` points at this server.
    pub fn check_field(&self, field: &str, value: &str, problems: &mut Vec<FieldError>) {
        self.check(field, value, problems)
    }

    fn check(&self, field: &str, value: &str, problems: &mut Vec<FieldError>) {
        if value.is_empty() {
            return;
        }
        if let Ok(url) = ServerUrl::parse(value)
            && self.matches(&url)
        {
            problems.push(FieldError::new(
                field,
                format!(
                    "`{}` points at this server; leave it empty (phones already reach this \
                     server) and set the account's device credentials instead",
                    url.server_name()
                ),
            ));
        }
    }
}

/// The default account, created on first use.
pub fn default_account(conn: &Connection) -> Result<Account> {
    Ok(accounts::ensure_default(conn)?.0)
}

/// Sets an account's device credentials (a new credential generation).
pub fn set_credentials(
    conn: &Connection,
    id: AccountId,
    user: &str,
    password: &str,
) -> Result<i64> {
    account::validate_credentials(user, password)?;
    accounts::update_credentials(conn, id, user, password)
}

/// Sets what an account does with unknown phones.
pub fn set_unknown_devices(
    conn: &mut Connection,
    account: &Account,
    policy: UnknownDevices,
    default_profile: Option<&str>,
) -> Result<()> {
    db::write_tx(conn, |tx| {
        let profile_id = match (policy, default_profile) {
            (UnknownDevices::DefaultProfile, None) => {
                return Err(Error::invalid(
                    "default_profile",
                    "the default-profile policy needs a profile",
                ));
            }
            (_, Some(name)) => Some(
                profiles::find_profile_by_name(tx, account.id.0, name)?
                    .ok_or_else(|| {
                        Error::invalid("default_profile", format!("no profile named `{name}`"))
                    })?
                    .id,
            ),
            (_, None) => account.default_profile_id,
        };
        accounts::update_unknown_devices(tx, account.id, policy, profile_id)
    })
}

/// Validates and checks a profile's files; the errors name each file.
pub fn check_files(files: Vec<(String, Vec<u8>)>) -> Result<Vec<ProfileFile>> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let vars = Vars::default();
    for (name, content) in files {
        match profile::check_file(&name, content, &vars) {
            Ok(f) => out.push(f),
            Err(Error::Invalid(p)) => problems.extend(p),
            Err(e) => return Err(e),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(Error::Invalid(problems))
    }
}

/// Creates a profile with its files.
pub fn add_profile(
    conn: &mut Connection,
    account: &Account,
    fields: &ProfileFields,
    files: Vec<(String, Vec<u8>)>,
    own: &OwnAddresses,
) -> Result<i64> {
    let mut problems = match fields.validate() {
        Ok(()) => Vec::new(),
        Err(Error::Invalid(p)) => p,
        Err(e) => return Err(e),
    };
    own.check("prov_server", &fields.prov_server, &mut problems);
    super::firmware::check_software(conn, &fields.software, &mut problems)?;
    if fields.vendor_model == super::polycom::models::VIDEO_VENDOR_MODEL && !files.is_empty() {
        problems.push(FieldError::new(
            "file",
            "Polycom Video Endpoint profiles take no configuration file",
        ));
    }
    let files = match check_files(files) {
        Ok(f) => f,
        Err(Error::Invalid(p)) => {
            problems.extend(p);
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    db::write_tx(conn, |tx| {
        profiles::insert_profile(tx, account.id.0, fields, &files)
    })
}

/// Lints a profile's files in CONFIG_FILES order (`diag::lint`): warnings that never refuse
/// a profile. `transport` says whether phones fetch them over plain HTTP (secrets check).
pub fn lint_profile_files(
    files: &[(String, Vec<u8>)],
    transport: crate::diag::lint::Transport,
) -> Vec<crate::diag::lint::LintFinding> {
    crate::diag::lint::lint_files(files, transport, &Vars::default())
}

/// Creates a profile like `add_profile` and returns, with its id, the lint findings of its
/// files, for the caller to show as warnings.
pub fn add_profile_checked(
    conn: &mut Connection,
    account: &Account,
    fields: &ProfileFields,
    files: Vec<(String, Vec<u8>)>,
    own: &OwnAddresses,
    transport: crate::diag::lint::Transport,
) -> Result<(i64, Vec<crate::diag::lint::LintFinding>)> {
    let lint = lint_profile_files(&files, transport);
    let id = add_profile(conn, account, fields, files, own)?;
    Ok((id, lint))
}

/// Deletes a profile by name (refused while devices use it).
pub fn delete_profile(conn: &mut Connection, account: &Account, name: &str) -> Result<()> {
    db::write_tx(conn, |tx| {
        let p = profiles::find_profile_by_name(tx, account.id.0, name)?
            .ok_or_else(|| Error::not_found(format!("profile `{name}`")))?;
        profiles::delete_profile(tx, p.id, name)
    })
}

/// Validates an association (fields, profile, addresses) without writing.
pub fn check_device(
    conn: &Connection,
    account: &Account,
    input: &DeviceInput,
    own: &OwnAddresses,
) -> Result<(NewDevice, i64)> {
    let (new, mut problems) = match input.validate() {
        Ok(d) => (Some(d), Vec::new()),
        Err(Error::Invalid(p)) => (None, p),
        Err(e) => return Err(e),
    };
    own.check("prov_server", input.ext.prov_server.trim(), &mut problems);
    let profile = profiles::find_profile_by_name(conn, account.id.0, input.profile.trim())?;
    if profile.is_none() && !problems.iter().any(|p| p.field == "profile") {
        problems.push(FieldError::new(
            "profile",
            format!("no profile named `{}`", input.profile.trim()),
        ));
    }
    match (new, profile) {
        (Some(d), Some(p)) if problems.is_empty() => Ok((d, p.id)),
        _ => Err(Error::Invalid(problems)),
    }
}

/// Associates a device with a profile.
pub fn add_device(
    conn: &mut Connection,
    account: &Account,
    input: &DeviceInput,
    own: &OwnAddresses,
) -> Result<i64> {
    db::write_tx(conn, |tx| {
        let (new, profile_id) = check_device(tx, account, input, own)?;
        devices::insert_device(tx, account.id.0, &new, profile_id, false)
    })
}

/// Deletes a device.
pub fn delete_device(conn: &mut Connection, mac: &Mac) -> Result<()> {
    db::write_tx(conn, |tx| devices::delete_device(tx, mac))
}

/// The files a device receives, by name, as it would receive them at `reach`.
pub fn render_device(
    conn: &Connection,
    mac: &Mac,
    reach: &Reach,
    trust: Option<&PhoneTrust>,
) -> Result<Vec<(String, Vec<u8>)>> {
    let device = devices::find_device_by_mac(conn, mac)?
        .ok_or_else(|| Error::not_found(format!("device {mac}")))?;
    let Some(profile_id) = device.profile_id else {
        return Err(Error::Conflict(format!(
            "device {mac} has been seen but is not associated with a profile"
        )));
    };
    let profile = profiles::find_profile_by_id(conn, profile_id)?
        .ok_or_else(|| Error::not_found("profile"))?;
    let account = accounts::find_by_id(conn, AccountId(device.account_id))?
        .ok_or_else(|| Error::not_found("account"))?;
    let state = devices::load_prov_state(conn, device.id)?;
    let view = DeviceView {
        account: &account,
        device: &device,
        profile: &profile,
        state: &state,
        reach,
        trust,
    };
    let mut out = vec![
        (format!("{mac}.cfg"), view.master_file()),
        (format!("{mac}-device.cfg"), view.device_file().0),
    ];
    if !profile.is_video_endpoint() {
        for i in 0..profile.files.len() {
            if let Some(bytes) = view.profile_file(i) {
                out.push((profile_file_name(mac.as_str(), i), bytes));
            }
        }
    }
    Ok(out)
}

/// The effective parameters of a device's generated file, with their sources.
pub fn explain_device(
    conn: &Connection,
    mac: &Mac,
    reach: &Reach,
    trust: Option<&PhoneTrust>,
) -> Result<Vec<super::polycom::render::EffectiveParam>> {
    let device = devices::find_device_by_mac(conn, mac)?
        .ok_or_else(|| Error::not_found(format!("device {mac}")))?;
    let profile_id = device
        .profile_id
        .ok_or_else(|| Error::Conflict(format!("device {mac} is not associated")))?;
    let profile = profiles::find_profile_by_id(conn, profile_id)?
        .ok_or_else(|| Error::not_found("profile"))?;
    let account = accounts::find_by_id(conn, AccountId(device.account_id))?
        .ok_or_else(|| Error::not_found("account"))?;
    let state = devices::load_prov_state(conn, device.id)?;
    let view = DeviceView {
        account: &account,
        device: &device,
        profile: &profile,
        state: &state,
        reach,
        trust,
    };
    Ok(view.effective())
}

/// Parses `FAMILY=VERSION` pairs for a profile's software versions.
pub fn parse_software(
    pairs: &[String],
) -> Result<BTreeMap<super::polycom::models::Family, String>> {
    let mut out = BTreeMap::new();
    for pair in pairs {
        let Some((family, version)) = pair.split_once('=') else {
            return Err(Error::invalid(
                "software",
                format!("`{pair}` is not FAMILY=VERSION (e.g. VVX=5.9.8.1234)"),
            ));
        };
        let f = super::polycom::models::Family::from_name(family.trim()).ok_or_else(|| {
            let names: Vec<&str> = super::polycom::models::Family::ALL
                .iter()
                .map(|f| f.name())
                .collect();
            Error::invalid(
                "software",
                format!("`{family}` is not a model family ({})", names.join(", ")),
            )
        })?;
        out.insert(f, version.trim().to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::polycom::models::UCS_VENDOR_MODEL;

    fn own() -> OwnAddresses {
        OwnAddresses {
            hosts: vec!["prov.example.com".into(), "10.0.0.5".into()],
            ports: vec![80],
        }
    }

    #[test]
    fn a_server_field_pointing_here_is_refused() {
        let mut conn = db::open_in_memory().expect("db");
        let account = default_account(&conn).expect("account");
        let fields = ProfileFields {
            name: "p1".into(),
            vendor_model: UCS_VENDOR_MODEL.into(),
            prov_server: "http://u:p@prov.example.com/".into(),
            ..Default::default()
        };
        let err = add_profile(&mut conn, &account, &fields, vec![], &own()).expect_err("refused");
        assert!(err.to_string().starts_with("prov_server:"), "{err}");
        let elsewhere = ProfileFields {
            prov_server: "http://other.example.com/".into(),
            ..fields
        };
        add_profile(&mut conn, &account, &elsewhere, vec![], &own())
            .expect("another server is fine");
    }

    #[test]
    fn a_refused_profile_leaves_nothing_behind() {
        let mut conn = db::open_in_memory().expect("db");
        let account = default_account(&conn).expect("account");
        let fields = ProfileFields {
            name: "p1".into(),
            vendor_model: UCS_VENDOR_MODEL.into(),
            ..Default::default()
        };
        let files = vec![
            ("good.cfg".to_string(), b"<a x.y=\"1\"/>".to_vec()),
            ("bad.cfg".to_string(), b"<a>".to_vec()),
        ];
        let err = add_profile(&mut conn, &account, &fields, files, &own()).expect_err("bad file");
        assert!(err.to_string().contains("bad.cfg"), "{err}");
        assert!(
            profiles::list_profiles(&conn, account.id.0)
                .expect("list")
                .is_empty()
        );
    }

    #[test]
    fn lint_warnings_come_back_without_refusing_the_profile() {
        let mut conn = db::open_in_memory().expect("db");
        let account = default_account(&conn).expect("account");
        let fields = ProfileFields {
            name: "p1".into(),
            vendor_model: UCS_VENDOR_MODEL.into(),
            ..Default::default()
        };
        let files = vec![(
            "site.cfg".to_string(),
            b"<a device.set=\"1\" device.prov.serverName=\"x\"/>".to_vec(),
        )];
        let (_, lint) = add_profile_checked(
            &mut conn,
            &account,
            &fields,
            files,
            &own(),
            crate::diag::lint::Transport::PlainHttp,
        )
        .expect("stored despite warnings");
        let codes: Vec<&str> = lint.iter().map(|f| f.code.as_str()).collect();
        assert!(codes.contains(&"lint.device-set-left-on"), "{codes:?}");
        assert!(codes.contains(&"lint.device-without-set"), "{codes:?}");
    }

    #[test]
    fn a_device_with_an_unknown_profile_names_the_field() {
        let mut conn = db::open_in_memory().expect("db");
        let account = default_account(&conn).expect("account");
        let input = DeviceInput {
            mac: "0004f2000001".into(),
            profile: "nope".into(),
            ..Default::default()
        };
        let err = add_device(&mut conn, &account, &input, &own()).expect_err("unknown profile");
        assert!(
            err.to_string().contains("profile: no profile named `nope`"),
            "{err}"
        );
    }
}
