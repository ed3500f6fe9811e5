//! Overrides made on the phone (docs/design.md §5, level 0): the `<mac>-phone.cfg`, `-web.cfg` and
//! `-system.cfg` files phones upload, which beat every file this server serves. They are
//! never merged into what a phone gets; they are parsed and shown per device as
//! "overridden on the phone", next to the server value each one hides.
//!
//! Clearing a device's overrides replaces each stored file with an empty override file
//! (the phone reads its override file from the server at boot, and then has none). The
//! phone also keeps the settings in its own memory and may upload them again: what must
//! also be reset on the phone (the Lync deployment guide) is in `RESET_ON_PHONE`.

use serde::Serialize;

/// The override files phones upload, with what writes each.
pub const OVERRIDE_FILES: [(&str, &str); 3] = [
    ("-phone.cfg", "settings made on the phone's menus"),
    ("-web.cfg", "settings made in the phone's web interface"),
    ("-system.cfg", "settings made on the device (Trio, CX5100)"),
];

/// What a cleared override file holds: no parameter at all.
pub const EMPTY_OVERRIDES: &[u8] =
    b"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n\
<!-- zerotouch: overrides cleared on the server; the phone gets none from here -->\n\
<PHONE_CONFIG>\n  <OVERRIDES/>\n</PHONE_CONFIG>\n";

/// What must also be done on the phone, from the Lync deployment guide ("Reset the Phone to
/// Factory Default Settings"): settings live on the server, in the per-device file the
/// phone uploads, and in the phone's own memory; each source is reset separately.
pub const RESET_ON_PHONE: [&str; 4] = [
    "The phone also keeps these settings in its own memory and may upload them again. Reset them on the phone:",
    "Local settings: Settings > Advanced (administrator password, default 456) > Administration Settings > Reset to Defaults > Reset Local Configuration.",
    "Web settings: Settings > Advanced > Administration Settings > Reset to Defaults > Reset Web Configuration (the phone may reboot).",
    "Reset to Factory clears everything, including a provisioning server address and credentials entered on the phone: keep them at hand.",
];

/// Which redirect an overridden parameter makes, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Redirect {
    /// The provisioning server (`device.prov.serverName`).
    Server,
    /// The SIP registration (`reg.N.server.*`, `reg.N.outboundProxy.*`, `voIpProt.server.*`,
    /// `voIpProt.SIP.outboundProxy.*`).
    Registration,
}

/// Whether a parameter set on the phone sends it to another provisioning server or SIP
/// registrar (the diagnostics finding `overrides.server` / `overrides.registration`).
pub fn redirect_kind(name: &str) -> Option<Redirect> {
    if name == "device.prov.serverName" {
        return Some(Redirect::Server);
    }
    let registration = (name.starts_with("reg.")
        && (name.contains(".server.") || name.contains(".outboundProxy.")))
        || name.starts_with("voIpProt.server.")
        || name.starts_with("voIpProt.SIP.outboundProxy.");
    registration.then_some(Redirect::Registration)
}

/// What the server sets for a parameter, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerValue {
    pub value: String,
    /// The file (and for the generated file, the source of the value).
    pub source: String,
}

/// One parameter overridden on the phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Override {
    pub name: String,
    /// The phone's value (masked when secret).
    pub value: String,
    pub line: u32,
    pub secret: bool,
    /// The server value it hides (masked when secret), if the server sets one.
    pub server: Option<ServerValue>,
    pub redirect: Option<Redirect>,
}

/// A stored override file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OverrideFile {
    pub file: String,
    /// What writes it.
    pub written_by: &'static str,
    pub size: u64,
    pub updated_at: i64,
    /// Why it could not be read, if it could not.
    pub error: Option<String>,
    pub params: Vec<Override>,
}

/// A device's overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeviceOverrides {
    pub files: Vec<OverrideFile>,
}

impl DeviceOverrides {
    /// Parameters overridden over all files.
    pub fn count(&self) -> usize {
        self.files.iter().map(|f| f.params.len()).sum()
    }

    /// The inventory's `overridden` flag: some override hides a value the server sets.
    pub fn hides_server_values(&self) -> bool {
        self.files
            .iter()
            .flat_map(|f| &f.params)
            .any(|p| p.server.is_some())
    }

    /// The server value hidden by a parameter, unmasked name lookup.
    pub fn server_value(&self, name: &str) -> Option<&ServerValue> {
        self.files
            .iter()
            .flat_map(|f| &f.params)
            .find(|p| p.name == name)
            .and_then(|p| p.server.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_are_the_server_and_the_registration() {
        assert_eq!(
            redirect_kind("device.prov.serverName"),
            Some(Redirect::Server)
        );
        assert_eq!(
            redirect_kind("reg.1.server.1.address"),
            Some(Redirect::Registration)
        );
        assert_eq!(
            redirect_kind("voIpProt.server.2.address"),
            Some(Redirect::Registration)
        );
        assert_eq!(redirect_kind("reg.1.label"), None);
        assert_eq!(redirect_kind("up.backlight.idleIntensity"), None);
    }

    #[test]
    fn the_empty_file_sets_nothing() {
        let params = crate::domain::xml::parse_params("x-phone.cfg", EMPTY_OVERRIDES).expect("xml");
        assert!(params.is_empty());
    }
}
