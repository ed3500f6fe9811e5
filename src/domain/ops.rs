//! Actions on profiles and devices, shared by the command line, the admin UI and the API:
//! validate everything first, then write in one transaction with its audit entry, so a
//! refused input leaves nothing half-written. (Account actions: `domain::accounts`.)

use std::collections::BTreeMap;

use rusqlite::Connection;
use serde_json::json;

use super::account::{Account, AccountId, UnknownDevices};
use super::audit::{self, Actor, Change};
use super::device::{DeviceInput, NewDevice};
use super::mac::Mac;
use super::polycom::render::DeviceView;
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

/// Sets what an account does with unknown phones.
pub fn set_unknown_devices(
    conn: &mut Connection,
    actor: &Actor,
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
        accounts::update_unknown_devices(tx, account.id, policy, profile_id)?;
        audit::record(
            tx,
            actor,
            Change::new(
                Some(account.id.0),
                "account.set-unknown-devices",
                account.slug.clone(),
            )
            .before(json!({"unknown_devices": account.unknown_devices.as_str()}))
            .after(json!({"unknown_devices": policy.as_str(), "default_profile": default_profile})),
        )
    })
}

/// Validates and checks a profile's files against the built-in variables; the errors name
/// each file.
pub fn check_files(files: Vec<(String, Vec<u8>)>) -> Result<Vec<ProfileFile>> {
    check_files_with(files, &Vars::default())
}

/// Validates and checks a profile's files; `vars` says which variables exist besides the
/// built-ins (`templating::check_vars`: the custom variables).
pub fn check_files_with(files: Vec<(String, Vec<u8>)>, vars: &Vars) -> Result<Vec<ProfileFile>> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (name, content) in files {
        match profile::check_file(&name, content, vars) {
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
    actor: &Actor,
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
    let vars = super::templating::check_vars(conn)?;
    let files = match check_files_with(files, &vars) {
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
        let id = profiles::insert_profile(tx, account.id.0, fields, &files)?;
        audit::record(
            tx,
            actor,
            Change::new(Some(account.id.0), "profile.add", fields.name.clone()).after(json!({
                "fields": fields,
                "files": files.iter().map(|f| json!({"name": f.file_name, "sha256": f.sha256})).collect::<Vec<_>>(),
            })),
        )?;
        Ok(id)
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

/// Like `lint_profile_files`, with the custom variables of `conn` known.
pub fn lint_profile_files_in(
    conn: &Connection,
    files: &[(String, Vec<u8>)],
    transport: crate::diag::lint::Transport,
) -> Result<Vec<crate::diag::lint::LintFinding>> {
    let vars = super::templating::check_vars(conn)?;
    Ok(crate::diag::lint::lint_files(files, transport, &vars))
}

/// Creates a profile like `add_profile` and returns, with its id, the lint findings of its
/// files, for the caller to show as warnings.
pub fn add_profile_checked(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    fields: &ProfileFields,
    files: Vec<(String, Vec<u8>)>,
    own: &OwnAddresses,
    transport: crate::diag::lint::Transport,
) -> Result<(i64, Vec<crate::diag::lint::LintFinding>)> {
    let lint = lint_profile_files_in(conn, &files, transport)?;
    let id = add_profile(conn, actor, account, fields, files, own)?;
    Ok((id, lint))
}

/// Deletes a profile by name (refused while devices use it).
pub fn delete_profile(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    name: &str,
) -> Result<()> {
    db::write_tx(conn, |tx| {
        let p = profiles::find_profile_by_name(tx, account.id.0, name)?
            .ok_or_else(|| Error::not_found(format!("profile `{name}`")))?;
        profiles::delete_profile(tx, p.id, name)?;
        audit::record(
            tx,
            actor,
            Change::new(Some(account.id.0), "profile.delete", name)
                .before(json!({"fields": p.fields})),
        )
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

/// The audit view of a device: its fields, extensions and lines (secrets are masked when
/// recorded).
pub fn device_json(d: &super::device::Device) -> serde_json::Value {
    json!({
        "mac": d.mac.as_str(), "serial": d.serial, "vendor_model": d.vendor_model,
        "profile": d.profile_name, "ext": d.ext, "lines": d.lines,
    })
}

/// Associates a device with a profile.
pub fn add_device(
    conn: &mut Connection,
    actor: &Actor,
    account: &Account,
    input: &DeviceInput,
    own: &OwnAddresses,
) -> Result<i64> {
    db::write_tx(conn, |tx| {
        let (new, profile_id) = check_device(tx, account, input, own)?;
        let id = devices::insert_device(tx, account.id.0, &new, profile_id, false)?;
        if let Some(d) = devices::find_device_by_mac(tx, &new.mac)? {
            audit::record(
                tx,
                actor,
                Change::new(Some(account.id.0), "device.add", new.mac.as_str())
                    .after(device_json(&d)),
            )?;
        }
        Ok(id)
    })
}

/// Deletes a device.
pub fn delete_device(conn: &mut Connection, actor: &Actor, mac: &Mac) -> Result<()> {
    db::write_tx(conn, |tx| {
        let before = devices::find_device_by_mac(tx, mac)?;
        devices::delete_device(tx, mac)?;
        if let Some(d) = before {
            audit::record(
                tx,
                actor,
                Change::new(Some(d.account_id), "device.delete", mac.as_str())
                    .before(device_json(&d)),
            )?;
        }
        Ok(())
    })
}

/// Everything a device's files are rendered from, read from the database.
pub struct ViewParts {
    pub account: Account,
    pub device: super::device::Device,
    pub profile: super::profile::Profile,
    pub state: BTreeMap<String, super::provstate::ParamState>,
    pub layers: super::policy::Layers,
}

impl ViewParts {
    /// Loads an associated device and what applies to it.
    pub fn load(conn: &Connection, mac: &Mac) -> Result<ViewParts> {
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
        let settings = crate::db::credentials::load_settings(conn, account.id)?;
        let sync = crate::db::credentials::find_sync(conn, device.id)?.unwrap_or_default();
        let layers = super::policy::Layers {
            sync: super::accounts::sync_target(
                &account,
                &settings,
                &device,
                Some(&profile),
                &sync,
                db::now_secs(),
            ),
            policies: super::policy::device_policies(conn, &device)?,
            ..Default::default()
        };
        Ok(ViewParts {
            account,
            device,
            profile,
            state,
            layers,
        })
    }

    /// The view of these parts as the phone reaches the server at `reach`.
    pub fn view<'a>(&'a self, reach: &'a Reach, trust: Option<&'a PhoneTrust>) -> DeviceView<'a> {
        DeviceView {
            account: &self.account,
            device: &self.device,
            profile: &self.profile,
            state: &self.state,
            reach,
            trust,
            layers: &self.layers,
        }
    }
}

/// The files a device receives, by name, as it would receive them at `reach` (Local
/// mode), or as they are generated to disk (External mode).
pub fn render_device(
    conn: &Connection,
    mac: &Mac,
    reach: &Reach,
    trust: Option<&PhoneTrust>,
) -> Result<Vec<(String, Vec<u8>)>> {
    let loaded = super::templating::load_device(conn, mac)?;
    let ctx = super::templating::load_context(conn)?;
    Ok(loaded.files(&ctx, reach, trust).files)
}

/// A device's effective settings with provenance (Lens "My Settings"; `render --explain`):
/// every parameter it gets from this server as the phone reads its files (first file
/// wins), the value (the caller masks secrets: `EffectiveParam::secret`), and its source.
pub fn explain_device(
    conn: &Connection,
    mac: &Mac,
    reach: &Reach,
    trust: Option<&PhoneTrust>,
) -> Result<Vec<super::polycom::render::EffectiveParam>> {
    let parts = ViewParts::load(conn, mac)?;
    Ok(parts.view(reach, trust).effective_settings())
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
        let err = add_profile(
            &mut conn,
            &Actor::system(),
            &account,
            &fields,
            vec![],
            &own(),
        )
        .expect_err("refused");
        assert!(err.to_string().starts_with("prov_server:"), "{err}");
        let elsewhere = ProfileFields {
            prov_server: "http://other.example.com/".into(),
            ..fields
        };
        add_profile(
            &mut conn,
            &Actor::system(),
            &account,
            &elsewhere,
            vec![],
            &own(),
        )
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
        let err = add_profile(
            &mut conn,
            &Actor::system(),
            &account,
            &fields,
            files,
            &own(),
        )
        .expect_err("bad file");
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
            &Actor::system(),
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
        let err = add_device(&mut conn, &Actor::system(), &account, &input, &own())
            .expect_err("unknown profile");
        assert!(
            err.to_string().contains("profile: no profile named `nope`"),
            "{err}"
        );
    }
}
