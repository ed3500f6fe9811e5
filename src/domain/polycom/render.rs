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
use crate::domain::policy::Layers;
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

    /// The effective parameters of the generated file, first source wins: pending platform
    /// changes, then the device (vendor extensions, lines, device policy), its groups, its
    /// site, the account policy, then the profile's fields.
    pub fn effective(&self) -> Vec<EffectiveParam> {
        let mut map: BTreeMap<String, (String, Source, String)> = BTreeMap::new();
        let desired = self.desired();
        let pending = provstate::pending(&desired, self.state);
        if !pending.is_empty() {
            map.insert(
                "device.set".into(),
                ("1".into(), Source::Pending, String::new()),
            );
            for (name, d) in &pending {
                let detail = d.source.label().to_string();
                map.insert(
                    (*name).to_string(),
                    (d.value.clone(), Source::Pending, detail.clone()),
                );
                map.insert(format!("{name}.set"), ("1".into(), Source::Pending, detail));
            }
        }
        let family = Family::Vvx;
        let mut put = |key: Key, line: u32, value: &str, source: Source| {
            if value.is_empty() {
                return;
            }
            if let Some(name) = params::name(family, key, line) {
                map.entry(name)
                    .or_insert_with(|| (value.to_string(), source, String::new()));
            }
        };
        let d = self.device;
        // Lines: the vendor extensions of seed 000 fill line 1; more lines come from the
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
            put(Key::RegAddress, n, &line.auth_user_id, Source::Device);
            put(Key::RegAuthUserId, n, &line.auth_user_id, Source::Device);
            put(Key::RegAuthPassword, n, &line.auth_password, Source::Device);
            put(Key::RegLabel, n, &line.label, Source::Device);
            put(Key::RegDisplayName, n, &line.display_name, Source::Device);
            put(Key::RegServerAddress, n, &d.ext.sip_server, Source::Device);
            put(
                Key::RegOutboundProxy,
                n,
                &d.ext.outbound_proxy,
                Source::Device,
            );
        }
        put(Key::PollingEnabled, 0, &d.ext.polling, Source::Device);
        // Policies: device, groups, site, account (already in precedence order). Platform
        // parameters went through the desired state above.
        for p in &self.layers.policies {
            if params::is_device_param(&p.parameter) {
                continue;
            }
            map.entry(p.parameter.clone())
                .or_insert_with(|| (p.value.clone(), p.source, p.detail.clone()));
        }
        let mut put = |key: Key, line: u32, value: &str, source: Source| {
            if value.is_empty() {
                return;
            }
            if let Some(name) = params::name(family, key, line) {
                map.entry(name)
                    .or_insert_with(|| (value.to_string(), source, String::new()));
            }
        };
        let pf = &self.profile.fields;
        match pf.polling {
            Polling::Enable => put(Key::PollingEnabled, 0, "1", Source::Profile),
            Polling::Disable => put(Key::PollingEnabled, 0, "0", Source::Profile),
            Polling::None => {}
        }
        match pf.quick_setup.as_str() {
            "enable" => put(Key::QuickSetup, 0, "1", Source::Profile),
            "disable" => put(Key::QuickSetup, 0, "0", Source::Profile),
            _ => {}
        }
        put(Key::Language, 0, &pf.language, Source::Profile);
        map.into_iter()
            .map(|(name, (value, source, detail))| {
                let secret = params::is_secret(&name);
                EffectiveParam {
                    name,
                    value,
                    source,
                    secret,
                    detail,
                }
            })
            .collect()
    }

    /// Everything the device ends up with from this server, as the phone reads it (first
    /// file wins): the generated file's parameters, then those of the profile's files that
    /// nothing earlier set (`Source::ProfileFile`, with the file's name). Lens "My Settings".
    pub fn effective_settings(&self) -> Vec<EffectiveParam> {
        let mut out = self.effective();
        if self.profile.is_video_endpoint() {
            return out;
        }
        let mut seen: std::collections::BTreeSet<String> =
            out.iter().map(|p| p.name.clone()).collect();
        for (i, file) in self.profile.files.iter().enumerate() {
            let Some(bytes) = self.profile_file(i) else {
                continue;
            };
            let Ok(found) = crate::domain::xml::parse_params(&file.file_name, &bytes) else {
                continue;
            };
            for p in found {
                if seen.insert(p.name.clone()) {
                    out.push(EffectiveParam {
                        secret: params::is_secret(&p.name),
                        name: p.name,
                        value: p.value,
                        source: Source::ProfileFile,
                        detail: file.file_name.clone(),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
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
            if provstate::trust_pending(provstate::pending(&desired, self.state).into_keys()) {
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

/// `<mac>-ztp.cfg`: what Polycom's ZTP serves unassociated phones (seed 000): ZTP off and
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
