//! Rendering what a phone receives: the master file, the generated per-device file, the
//! profile's files with variables expanded, and the files for unknown phones.
//!
//! Output is byte-stable: parameters sorted, no timestamps, so the same data renders the
//! same bytes in any process and phones that poll only re-apply (and, for `device.*`,
//! reboot) when something really changed. The generated file is listed first in
//! CONFIG_FILES because the phone lets the leftmost file win.

use std::collections::BTreeMap;

use super::models::Family;
use super::params::{self, Key};
use crate::domain::account::Account;
use crate::domain::device::Device;
use crate::domain::machine;
use crate::domain::policy::Layers;
use crate::domain::precedence::{self, Layer, Level, Resolution};
use crate::domain::profile::{Polling, Profile};
use crate::domain::provstate::{self, Desired, ParamState, PhoneTrust, Reach, Source};
use crate::domain::template::{self, Vars};
use crate::domain::variables::{self, Context, DeviceVarSet, Subject};
use crate::domain::xml::escape_attr;

const XML_DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n";

/// Polling period for staged phones: just over an hour, so an association made now reaches
/// the phone within the hour.
pub const STAGE_POLL_PERIOD_SECS: u32 = 3660;

/// Directory attributes of the master file: where phones PUT what they upload.
pub const LOG_DIR: &str = "logs";
pub const OVERRIDES_DIR: &str = "overrides";
pub const CONTACTS_DIR: &str = "contacts";
pub const CALL_LISTS_DIR: &str = "calllists";
pub const COREDUMP_DIR: &str = "coredumps";

/// One parameter of a device's effective configuration, with its source.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EffectiveParam {
    pub name: String,
    pub value: String,
    pub source: Source,
    pub secret: bool,
    /// Which site, group, file or mechanism: `group lobby (priority 10)`, `site hq`,
    /// `Auto-Sync`, `site.cfg`; empty when the source says it all.
    pub detail: String,
}

/// Everything the renderers need about one device.
pub struct DeviceView<'a> {
    pub account: &'a Account,
    pub device: &'a Device,
    pub profile: &'a Profile,
    pub state: &'a BTreeMap<String, ParamState>,
    pub reach: &'a Reach,
    /// The CA to deliver as the platform trust anchor, when delivery is on.
    pub trust: Option<&'a PhoneTrust>,
    /// Auto-Sync and the policies of the device's groups, site and account.
    pub layers: &'a Layers,
    /// The credentials the request carries (user, password): a credential change is pending
    /// for this request when they differ from the desired ones.
    pub held: Option<(&'a str, &'a str)>,
}

impl DeviceView<'_> {
    /// Desired platform parameters (see `provstate`).
    pub fn desired(&self) -> BTreeMap<String, Desired> {
        provstate::desired(
            self.account,
            self.device,
            self.profile,
            self.reach,
            self.trust,
            self.state,
            self.layers,
        )
    }

    /// The device's configuration as layers, highest precedence first (`domain::precedence`):
    /// pending platform changes with `device.set`, the device (lines, vendor extensions),
    /// the policies of the device, its groups, its site and the account, the profile's
    /// fields, and — with `files` (the variables to expand them with) — the profile's files
    /// in CONFIG_FILES order. `device.*` values of policies and profile fields reach the
    /// phone only as pending changes (`desired`), so they are left out of their own levels.
    pub fn layers(&self, files: Option<&DeviceVarSet>) -> Vec<Layer> {
        let family = Family::Vvx;
        let name = |key: Key, line: u32| params::name(family, key, line);
        let mut out = Vec::new();

        let mut pending_layer = Layer::new(Level::Pending);
        let desired = self.desired();
        let pending = provstate::pending(&desired, self.state, self.held);
        // Poly OS takes its values as they are: no `device.set` or `.set` switches (a Studio
        // X30 provisioned that way; docs/design.md §2).
        let switches = !self.layers.is_poly_os();
        if !pending.is_empty() {
            if switches {
                pending_layer.push("device.set", "1", Source::Pending, "");
            }
            for (n, d) in &pending {
                let detail = d.source.label();
                pending_layer.push(*n, d.value.clone(), Source::Pending, detail);
                if switches {
                    pending_layer.push(format!("{n}.set"), "1", Source::Pending, detail);
                }
            }
        }
        out.push(pending_layer);

        let d = self.device;
        let mut device = Layer::new(Level::Device);
        // Lines: the vendor extensions of the ZTP guide fill line 1; more lines come from the
        // device's line table.
        let mut lines = d.lines.clone();
        if lines.is_empty() && (!d.ext.sip_server.is_empty() || !d.ext.outbound_proxy.is_empty()) {
            lines.push(crate::domain::device::Line {
                line: 1,
                ..Default::default()
            });
        }
        for line in &lines {
            let n = line.line;
            for (key, value) in [
                (Key::RegAddress, &line.auth_user_id),
                (Key::RegAuthUserId, &line.auth_user_id),
                (Key::RegAuthPassword, &line.auth_password),
                (Key::RegLabel, &line.label),
                (Key::RegDisplayName, &line.display_name),
                (Key::RegServerAddress, &d.ext.sip_server),
                (Key::RegOutboundProxy, &d.ext.outbound_proxy),
            ] {
                if let Some(name) = name(key, n) {
                    device.push_set(name, value, Source::Device, "");
                }
            }
        }
        if let Some(n) = name(Key::PollingEnabled, 0) {
            device.push_set(n, &d.ext.polling, Source::Device, "");
        }
        // The account's choice that phones accept check-sync only with Digest: above the
        // policies and the profile's files, so none of them can turn it off unnoticed.
        if self.account.sip.validation {
            for (n, v) in crate::domain::checksync::VALIDATION_PARAMS {
                device.push(n, v, Source::Server, "request validation (account)");
            }
        }
        out.push(device);

        // Policies: device, groups, site, account (already in precedence order), one layer
        // per scope.
        for p in &self.layers.policies {
            if params::is_device_param(&p.parameter) || machine::owned(&p.parameter) {
                continue;
            }
            let level = policy_level(p.source);
            let same = out
                .last()
                .is_some_and(|l: &Layer| l.level == level && l.detail_is(&p.detail));
            if !same {
                out.push(Layer::new(level));
            }
            if let Some(l) = out.last_mut() {
                l.push(
                    p.parameter.clone(),
                    p.value.clone(),
                    p.source,
                    p.detail.clone(),
                );
            }
        }

        let pf = &self.profile.fields;
        let mut profile = Layer::new(Level::Profile);
        let polling = match pf.polling {
            Polling::Enable => "1",
            Polling::Disable => "0",
            Polling::None => "",
        };
        let quick_setup = match pf.quick_setup.as_str() {
            "enable" => "1",
            "disable" => "0",
            _ => "",
        };
        for (key, value) in [
            (Key::PollingEnabled, polling),
            (Key::QuickSetup, quick_setup),
            (Key::Language, pf.language.as_str()),
        ] {
            if let Some(n) = name(key, 0) {
                profile.push_set(n, value, Source::Profile, "");
            }
        }
        out.push(profile);

        if let Some(vars) = files
            && !self.profile.is_video_endpoint()
        {
            for (i, file) in self.profile.files.iter().enumerate() {
                let Some(bytes) = self.profile_file_with(i, vars) else {
                    continue;
                };
                let Ok(found) = crate::domain::xml::parse_params(&file.file_name, &bytes) else {
                    continue;
                };
                let mut layer = Layer::new(Level::ProfileFile);
                // Owned parameters are never served from a profile file (I6).
                let owned_served =
                    crate::domain::regress::on(crate::domain::regress::Defect::OwnedInProfile);
                for p in found
                    .into_iter()
                    .filter(|p| owned_served || !machine::owned(&p.name))
                {
                    layer.push(p.name, p.value, Source::ProfileFile, file.file_name.clone());
                }
                out.push(layer);
            }
        }
        out
    }

    /// Every parameter of the device with its winner and the values it hides.
    pub fn resolution(&self, files: Option<&DeviceVarSet>) -> Resolution {
        precedence::resolve(self.layers(files))
    }

    /// The effective parameters of the generated file (the first source wins: pending
    /// platform changes, the device, its groups, its site, the account policy, the
    /// profile's fields), by name.
    pub fn effective(&self) -> Vec<EffectiveParam> {
        effective_params(self.resolution(None))
    }

    /// Everything the device ends up with from this server, as the phone reads it (first
    /// file wins): the generated file's parameters, then those of the profile's files that
    /// nothing earlier set (`Source::ProfileFile`, with the file's name), the files expanded
    /// with `vars`. Lens "My Settings".
    pub fn effective_settings_with(&self, vars: &DeviceVarSet) -> Vec<EffectiveParam> {
        effective_params(self.resolution(Some(vars)))
    }

    /// `effective_settings_with` the default settings and no custom variables.
    pub fn effective_settings(&self) -> Vec<EffectiveParam> {
        self.effective_settings_with(&self.default_var_set())
    }

    /// The generated `<mac>-device.cfg`, and the pending platform values it carries (which
    /// the caller records as delivered).
    pub fn device_file(&self) -> (Vec<u8>, Vec<(String, String)>) {
        let effective = self.effective();
        let delivered = effective
            .iter()
            .filter(|p| p.source == Source::Pending && !p.name.ends_with(".set"))
            .map(|p| (p.name.clone(), p.value.clone()))
            .collect();
        let mut out = String::with_capacity(256 + effective.len() * 48);
        out.push_str(XML_DECL);
        out.push_str(&format!(
            "<!-- zerotouch: generated for {}; this file comes first in CONFIG_FILES and wins over the profile's files -->\n",
            self.device.mac
        ));
        out.push_str("<polycomConfig");
        for p in &effective {
            out.push_str(&format!("\n  {}=\"{}\"", p.name, escape_attr(&p.value)));
        }
        out.push_str("\n/>\n");
        (out.into_bytes(), delivered)
    }

    /// Names of the profile's files as this device requests them: `<mac>-profile.cfg`,
    /// `<mac>-profile-2.cfg`, …
    pub fn profile_file_names(&self) -> Vec<String> {
        (0..self.profile.files.len())
            .map(|i| profile_file_name(&self.device.mac.to_string(), i))
            .collect()
    }

    /// The master file `<mac>.cfg`.
    pub fn master_file(&self) -> Vec<u8> {
        self.master_file_at("firmware/")
    }

    /// The master file with firmware under `firmware_base` (relative to the master, or an
    /// absolute URL ending with `/` when firmware lives elsewhere, as in External mode).
    pub fn master_file_at(&self, firmware_base: &str) -> Vec<u8> {
        let mac = self.device.mac.to_string();
        let mut files = vec![format!("{mac}-device.cfg")];
        if !self.profile.is_video_endpoint() {
            files.extend(self.profile_file_names());
        }
        // While the CA is pending, the probe comes last: a phone that cannot fetch it yet
        // (it does not trust us yet) still gets every other file first (verify that a
        // failing entry does not stop the boot).
        if let Some(t) = self.trust {
            let desired = self.desired();
            if provstate::trust_pending(
                provstate::pending(&desired, self.state, self.held).into_keys(),
            ) {
                files.push(t.probe_url(self.reach, &mac));
            }
        }
        let mut per_model = String::new();
        for (family, version) in &self.profile.fields.software {
            for model in family.models() {
                per_model.push_str(&format!(
                    "  <APPLICATION_{model} APP_FILE_PATH_{model}=\"{}{}/sip.ld\"/>\n",
                    escape_attr(firmware_base),
                    escape_attr(version)
                ));
            }
        }
        master(&files.join(", "), true, &per_model)
    }

    /// Variables for expanding the profile's files with the default settings and no custom
    /// variables (`domain::variables::for_device` with a `Context` is the full form).
    pub fn vars(&self) -> Vars {
        self.default_var_set().device
    }

    fn default_var_set(&self) -> DeviceVarSet {
        variables::for_device(
            &Context::default(),
            &Subject {
                account: self.account,
                device: self.device,
                profile: self.profile,
                reach: self.reach,
                model: "",
            },
        )
    }

    /// The profile's file at `index`, variables expanded with the default settings.
    pub fn profile_file(&self, index: usize) -> Option<Vec<u8>> {
        if !self
            .profile
            .files
            .get(index)
            .is_some_and(|f| template::has_variables(&f.content))
        {
            return self.profile.files.get(index).map(|f| f.content.clone());
        }
        self.profile_file_with(index, &self.default_var_set())
    }

    /// The profile's file at `index`, variables expanded with `vars` (line blocks once per
    /// device line). Files without variables are served exactly as stored.
    pub fn profile_file_with(&self, index: usize, vars: &DeviceVarSet) -> Option<Vec<u8>> {
        let file = self.profile.files.get(index)?;
        if !template::has_variables(&file.content) {
            return Some(file.content.clone());
        }
        let text = String::from_utf8_lossy(&file.content);
        let e = template::render(&text, &vars.device, &vars.lines);
        if !e.unknown.is_empty() {
            log::warn!(
                "profile {} file {}: unknown variables {:?} expanded to nothing",
                self.profile.fields.name,
                file.file_name,
                e.unknown
            );
        }
        Some(e.text.into_bytes())
    }
}

/// The precedence level of a policy's source.
fn policy_level(source: Source) -> Level {
    match source {
        Source::Group => Level::Group,
        Source::Site => Level::Site,
        Source::Account => Level::Account,
        _ => Level::Device,
    }
}

/// The winners of a resolution as the rows admins read (secret flag, source, detail).
fn effective_params(r: Resolution) -> Vec<EffectiveParam> {
    r.into_winners()
        .map(|(name, c)| EffectiveParam {
            secret: params::is_secret(&name),
            name,
            value: c.value,
            source: c.source,
            detail: c.detail,
        })
        .collect()
}

/// `<mac>-profile.cfg` for the first file, `<mac>-profile-N.cfg` for the N-th.
pub fn profile_file_name(mac: &str, index: usize) -> String {
    if index == 0 {
        format!("{mac}-profile.cfg")
    } else {
        format!("{mac}-profile-{}.cfg", index + 1)
    }
}

/// A master file. `directories` names the upload directories (associated devices only).
fn master(config_files: &str, directories: bool, children: &str) -> Vec<u8> {
    let dir = |d: &'static str| if directories { d } else { "" };
    let mut out = String::new();
    out.push_str(XML_DECL);
    out.push_str(&format!(
        "<APPLICATION APP_FILE_PATH=\"\" CONFIG_FILES=\"{}\" MISC_FILES=\"\" \
         LOG_FILE_DIRECTORY=\"{}\" OVERRIDES_DIRECTORY=\"{}\" CONTACTS_DIRECTORY=\"{}\" \
         LICENSE_DIRECTORY=\"\" USER_PROFILES_DIRECTORY=\"\" CALL_LISTS_DIRECTORY=\"{}\" \
         COREFILE_DIRECTORY=\"{}\"",
        escape_attr(config_files),
        dir(LOG_DIR),
        dir(OVERRIDES_DIR),
        dir(CONTACTS_DIR),
        dir(CALL_LISTS_DIR),
        dir(COREDUMP_DIR),
    ));
    if children.is_empty() {
        out.push_str("/>\n");
    } else {
        out.push_str(">\n");
        out.push_str(children);
        out.push_str("</APPLICATION>\n");
    }
    out.into_bytes()
}

/// `<mac>-tls-probe.cfg`: carries nothing; fetching it over HTTPS is the evidence.
pub fn tls_probe_file() -> Vec<u8> {
    let mut out = String::from(XML_DECL);
    out.push_str(
        "<!-- zerotouch: TLS probe; fetching this over HTTPS shows the phone trusts the server -->\n<polycomConfig/>\n",
    );
    out.into_bytes()
}

/// `000000000000.cfg` under the `stage` policy: the phone fetches its own staging file.
pub fn stage_master() -> Vec<u8> {
    master("[PHONE_MAC_ADDRESS]-stage.cfg", false, "")
}

/// `<mac>-stage.cfg`: polling on, so the phone picks up its association at its next poll.
/// No secrets, no software.
pub fn stage_file() -> Vec<u8> {
    let mut out = String::from(XML_DECL);
    out.push_str(
        "<!-- zerotouch: this phone is not associated yet; it polls for its configuration -->\n",
    );
    out.push_str(&format!(
        "<polycomConfig\n  prov.polling.enabled=\"1\"\n  prov.polling.mode=\"rel\"\n  prov.polling.period=\"{STAGE_POLL_PERIOD_SECS}\"\n/>\n"
    ));
    out.into_bytes()
}

/// `000000000000.cfg` under the `ztp` policy.
pub fn ztp_master() -> Vec<u8> {
    master("[PHONE_MAC_ADDRESS]-ztp.cfg", false, "")
}

/// `<mac>-ztp.cfg`: what Polycom's ZTP serves unassociated phones (the ZTP guide): ZTP off and
/// an empty provisioning server address.
pub fn ztp_file() -> Vec<u8> {
    let mut out = String::from(XML_DECL);
    out.push_str(
        "<polycomConfig\n  device.prov.serverName=\"\"\n  device.prov.serverName.set=\"1\"\n  \
         device.prov.ztpEnabled=\"0\"\n  device.prov.ztpEnabled.set=\"1\"\n  device.set=\"1\"\n/>\n",
    );
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::xml;

    #[test]
    fn fixed_files_are_well_formed() {
        for (name, bytes) in [
            ("stage master", stage_master()),
            ("stage", stage_file()),
            ("ztp master", ztp_master()),
            ("ztp", ztp_file()),
            ("probe", tls_probe_file()),
        ] {
            xml::check_well_formed(name, &bytes).expect(name);
        }
        let params = xml::parse_params("ztp", &ztp_file()).expect("parse");
        assert!(
            params
                .iter()
                .any(|p| p.name == "device.prov.ztpEnabled" && p.value == "0")
        );
    }

    #[test]
    fn profile_file_names_count_from_two() {
        assert_eq!(
            profile_file_name("0004f2aabbcc", 0),
            "0004f2aabbcc-profile.cfg"
        );
        assert_eq!(
            profile_file_name("0004f2aabbcc", 1),
            "0004f2aabbcc-profile-2.cfg"
        );
    }
}
