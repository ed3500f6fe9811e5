//! Parameter names per device family, with the secret flag.
//!
//! Everything zerotouch writes into a generated file goes through this table, so a name
//! that turns out wrong on a real device is corrected here and nowhere else. Names marked
//! *(verify)* come from documents, not from a device. Poly OS names sit behind
//! `Family::PolyOs` and are used only where the account enables them.

use super::models::Family;

/// What a generated parameter means, independent of how a family spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    DeviceSet,
    ProvServerName,
    ProvServerType,
    ProvUser,
    ProvPassword,
    ProvZtpEnabled,
    ProvTagSerialNo,
    DhcpBootSrvUseOpt,
    DhcpBootSrvOpt,
    DhcpOption60Type,
    PollingEnabled,
    PollingMode,
    PollingPeriod,
    QuickSetup,
    Language,
    /// Per line: `reg.N.*`.
    RegAddress,
    RegAuthUserId,
    RegAuthPassword,
    RegLabel,
    RegDisplayName,
    RegServerAddress,
    RegOutboundProxy,
    /// Platform CA used for provisioning over HTTPS *(verify)*. Slot 1 only: slot 2 stays
    /// free for a CA rollover.
    PlatformCaCert,
    /// Which CAs platform TLS profile 1 trusts *(verify)*.
    PlatformCaList,
    /// Which platform TLS profile provisioning uses *(verify)*.
    ProvTlsProfile,
}

/// Value of `Key::ProvTlsProfile`: platform profile 1 *(verify)*.
pub const PROV_TLS_PROFILE: &str = "PlatformProfile1";

/// One entry of a family's table: the name (with `N` standing for the line number), whether
/// its value is a secret, and whether it is a `device.*` parameter (needs `.set` and
/// `device.set`, and is rendered only while a change is pending).
#[derive(Debug, Clone, Copy)]
pub struct ParamDef {
    pub key: Key,
    pub name: &'static str,
    pub secret: bool,
}

const UCS: &[ParamDef] = &[
    ParamDef {
        key: Key::DeviceSet,
        name: "device.set",
        secret: false,
    },
    ParamDef {
        key: Key::ProvServerName,
        name: "device.prov.serverName",
        secret: false,
    },
    ParamDef {
        key: Key::ProvServerType,
        name: "device.prov.serverType",
        secret: false,
    },
    ParamDef {
        key: Key::ProvUser,
        name: "device.prov.user",
        secret: false,
    },
    ParamDef {
        key: Key::ProvPassword,
        name: "device.prov.password",
        secret: true,
    },
    ParamDef {
        key: Key::ProvZtpEnabled,
        name: "device.prov.ztpEnabled",
        secret: false,
    },
    ParamDef {
        key: Key::ProvTagSerialNo,
        name: "device.prov.tagSerialNo",
        secret: false,
    },
    ParamDef {
        key: Key::DhcpBootSrvUseOpt,
        name: "device.dhcp.bootSrvUseOpt",
        secret: false,
    },
    ParamDef {
        key: Key::DhcpBootSrvOpt,
        name: "device.dhcp.bootSrvOpt",
        secret: false,
    },
    ParamDef {
        key: Key::DhcpOption60Type,
        name: "device.dhcp.option60Type",
        secret: false,
    },
    ParamDef {
        key: Key::PollingEnabled,
        name: "prov.polling.enabled",
        secret: false,
    },
    ParamDef {
        key: Key::PollingMode,
        name: "prov.polling.mode",
        secret: false,
    },
    ParamDef {
        key: Key::PollingPeriod,
        name: "prov.polling.period",
        secret: false,
    },
    ParamDef {
        key: Key::QuickSetup,
        name: "prov.quickSetup.enabled",
        secret: false,
    },
    ParamDef {
        key: Key::Language,
        name: "lcl.ml.lang",
        secret: false,
    },
    ParamDef {
        key: Key::RegAddress,
        name: "reg.N.address",
        secret: false,
    },
    ParamDef {
        key: Key::RegAuthUserId,
        name: "reg.N.auth.userId",
        secret: false,
    },
    ParamDef {
        key: Key::RegAuthPassword,
        name: "reg.N.auth.password",
        secret: true,
    },
    ParamDef {
        key: Key::RegLabel,
        name: "reg.N.label",
        secret: false,
    },
    ParamDef {
        key: Key::RegDisplayName,
        name: "reg.N.displayName",
        secret: false,
    },
    ParamDef {
        key: Key::RegServerAddress,
        name: "reg.N.server.1.address",
        secret: false,
    },
    // (verify) the outbound-proxy name is not confirmed on a device.
    ParamDef {
        key: Key::RegOutboundProxy,
        name: "reg.N.outboundProxy.address",
        secret: false,
    },
    // (verify) platform trust list used for provisioning, not sec.TLS.customCaCert.N (SIP).
    ParamDef {
        key: Key::PlatformCaCert,
        name: "device.sec.TLS.customCaCert1",
        secret: false,
    },
    // CA list of platform profile 1. Never rendered: the value zerotouch once sent
    // (`BuiltinAndPlatform1`) has no public source (the only production value seen is
    // `Platform1`) and a value out of range is ignored by the phone, so the list stays at the
    // phone's default (docs/design.md §6.2). Owned by the machine all the same:
    // no profile or policy may change which CAs provisioning trusts.
    ParamDef {
        key: Key::PlatformCaList,
        name: "device.sec.TLS.profile.caCertList1",
        secret: false,
    },
    // (verify) profile selection for provisioning (device.sec.TLS.profileSelection.*).
    ParamDef {
        key: Key::ProvTlsProfile,
        name: "device.sec.TLS.profileSelection.provisioning",
        secret: false,
    },
];

/// Poly OS (VideoOS) names seen in a Studio X30 export (docs/design.md §2): no server
/// type (addresses are full URLs), no boot-server setting, no platform TLS profile.
const POLY_OS: &[ParamDef] = &[
    ParamDef {
        key: Key::ProvServerName,
        name: "device.prov.serverName",
        secret: false,
    },
    ParamDef {
        key: Key::ProvUser,
        name: "device.prov.user",
        secret: false,
    },
    ParamDef {
        key: Key::ProvPassword,
        name: "device.prov.password",
        secret: true,
    },
    ParamDef {
        key: Key::PollingPeriod,
        name: "prov.polling.period",
        secret: false,
    },
    // Poly OS trusts custom CAs under `sec.TLS.customCaCert.1..3`, not the UCS platform
    // name (a Studio X30 export; docs/design.md §2).
    ParamDef {
        key: Key::PlatformCaCert,
        name: "sec.TLS.customCaCert.1",
        secret: false,
    },
];

/// The table of a family.
pub fn table(family: Family) -> &'static [ParamDef] {
    if family.is_ucs() { UCS } else { POLY_OS }
}

/// The parameter name for `key` in `family`, with `N` replaced by `line`; `None` when the
/// family has no such parameter.
pub fn name(family: Family, key: Key, line: u32) -> Option<String> {
    let def = table(family).iter().find(|d| d.key == key)?;
    Some(if def.name.contains(".N.") {
        def.name.replacen(".N.", &format!(".{line}."), 1)
    } else {
        def.name.to_string()
    })
}

/// Whether a parameter's value is a secret: listed as secret in any family's table, or
/// named like one (`*.password`, `*Password`, `*.secret`, `*.key`). Covers parameters in
/// uploaded profile files too, so masking and withholding apply to them.
pub fn is_secret(param: &str) -> bool {
    let last = param.rsplit('.').next().unwrap_or(param);
    let lower = last.to_ascii_lowercase();
    lower.ends_with("password")
        || lower == "secret"
        || lower == "passphrase"
        || lower == "key" && param.contains(".tls.")
        || [UCS, POLY_OS]
            .iter()
            .any(|t| t.iter().any(|d| d.secret && d.name == param))
}

/// Whether a parameter is a platform (`device.*`) parameter, which a phone applies only with
/// `device.set="1"` and its own `.set="1"`, and which reboots the phone when it changes.
pub fn is_device_param(param: &str) -> bool {
    param.starts_with("device.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_parameters_take_the_line_number() {
        assert_eq!(
            name(Family::Vvx, Key::RegAuthPassword, 2).as_deref(),
            Some("reg.2.auth.password")
        );
        assert_eq!(
            name(Family::Vvx, Key::RegServerAddress, 1).as_deref(),
            Some("reg.1.server.1.address")
        );
        assert_eq!(name(Family::PolyOs, Key::RegLabel, 1), None);
    }

    #[test]
    fn secrets_are_recognised_by_table_and_by_pattern() {
        assert!(is_secret("device.prov.password"));
        assert!(is_secret("reg.3.auth.password"));
        assert!(is_secret("device.auth.localAdminPassword"));
        assert!(is_secret("voIpProt.SIP.serverFeatureControl.password"));
        assert!(!is_secret("reg.1.auth.userId"));
        assert!(!is_secret("device.prov.serverName"));
    }
}
