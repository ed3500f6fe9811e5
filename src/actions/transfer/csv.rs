//! The CSV form of an export: four columns, `record,target,field,value`, one value per row
//! (see the module above). Parsing reports every problem with its line. It carries an
//! account's devices (with their template values, `device,<mac>,var.label,...`), sites,
//! groups and policies, never secrets; profiles, custom variables, deliberate names and
//! settings travel only in the JSON archive, so a CSV import leaves them as they are.

use std::collections::BTreeMap;

use super::{DeviceRec, Export, FORMAT, GroupRec, LineRec, PolicyRec, SiteRec};
use crate::error::{Error, FieldError, Result};

/// The export as the four-column CSV.
pub fn to_csv(e: &Export) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut row = |record: &str, target: &str, field: &str, value: &str| {
        w.write_record(
            [record, target, field, value].map(|c| crate::domain::csvcell::neutral(c).into_owned()),
        )
        .map_err(|err| Error::invalid("export", err.to_string()))
    };
    row("record", "target", "field", "value")?;
    row("meta", "", "format", &e.format)?;
    row("meta", "", "version", &e.version.to_string())?;
    row("meta", "", "account", &e.account)?;
    row(
        "meta",
        "",
        "secrets_included",
        &e.secrets_included.to_string(),
    )?;
    for s in &e.sites {
        row("site", &s.name, "description", &s.description)?;
    }
    for g in &e.groups {
        row("group", &g.name, "priority", &g.priority.to_string())?;
        if !g.description.is_empty() {
            row("group", &g.name, "description", &g.description)?;
        }
    }
    for d in &e.devices {
        let m = d.mac.as_str();
        row("device", m, "profile", &d.profile)?;
        for (field, value) in [
            ("serial", &d.serial),
            ("vendor_model", &d.vendor_model),
            ("sip_server", &d.sip_server),
            ("outbound_proxy", &d.outbound_proxy),
            ("prov_server", &d.prov_server),
            ("prov_user", &d.prov_user),
            ("polling", &d.polling),
        ] {
            if !value.is_empty() {
                row("device", m, field, value)?;
            }
        }
        if let Some(p) = &d.prov_password {
            row("device", m, "prov_password", p)?;
        }
        if let Some(s) = &d.site {
            row("device", m, "site", s)?;
        }
        if let Some(v) = &d.vars {
            for (field, value) in [
                ("var.label", &v.label),
                ("var.tl_timezone", &v.tl_timezone),
                ("var.tl_timezone_name", &v.tl_timezone_name),
                ("var.default_parkext", &v.default_parkext),
                ("var.override", &v.override_attrs),
            ] {
                if !value.is_empty() {
                    row("device", m, field, value)?;
                }
            }
        }
        for g in &d.groups {
            row("device", m, "group", g)?;
        }
        for l in &d.lines {
            let n = l.line;
            row(
                "device",
                m,
                &format!("line.{n}.auth_user_id"),
                &l.auth_user_id,
            )?;
            if let Some(p) = &l.auth_password {
                row("device", m, &format!("line.{n}.auth_password"), p)?;
            }
            row("device", m, &format!("line.{n}.label"), &l.label)?;
            row(
                "device",
                m,
                &format!("line.{n}.display_name"),
                &l.display_name,
            )?;
            for (field, value) in [
                ("extension", &l.extension),
                ("first_name", &l.first_name),
                ("last_name", &l.last_name),
            ] {
                if !value.is_empty() {
                    row("device", m, &format!("line.{n}.{field}"), value)?;
                }
            }
        }
    }
    for p in &e.policies {
        if let Some(v) = &p.value {
            row("policy", &p.scope, &p.parameter, v)?;
        }
    }
    let bytes = w
        .into_inner()
        .map_err(|err| Error::invalid("export", err.to_string()))?;
    String::from_utf8(bytes).map_err(|err| Error::invalid("export", err.to_string()))
}

/// Reads a CSV export; every problem names its line.
pub fn parse_csv(text: &str) -> Result<Export> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let mut problems = Vec::new();
    let mut meta: BTreeMap<String, String> = BTreeMap::new();
    let mut sites: Vec<SiteRec> = Vec::new();
    let mut groups: Vec<GroupRec> = Vec::new();
    let mut device_recs: Vec<DeviceRec> = Vec::new();
    let mut policy_recs = Vec::new();
    let headers = r
        .headers()
        .map_err(|err| Error::invalid("line 1", err.to_string()))?
        .clone();
    if headers.iter().collect::<Vec<_>>() != ["record", "target", "field", "value"] {
        return Err(Error::invalid(
            "line 1",
            "the header must be `record,target,field,value`",
        ));
    }
    for result in r.records() {
        let rec = match result {
            Ok(rec) => rec,
            Err(err) => {
                let line = err.position().map_or(0, |p| p.line());
                problems.push(FieldError::new(format!("line {line}"), err.to_string()));
                continue;
            }
        };
        let line = rec.position().map_or(0, |p| p.line());
        let at = format!("line {line}");
        let cell = |i: usize| crate::domain::csvcell::restore(&rec[i]);
        let (kind, target, field, value) = (cell(0), cell(1), cell(2), cell(3));
        let mut bad = |msg: String| problems.push(FieldError::new(at.clone(), msg));
        match kind {
            "meta" => {
                meta.insert(field.to_string(), value.to_string());
            }
            "site" => {
                let s = match sites.iter_mut().find(|s| s.name == target) {
                    Some(s) => s,
                    None => {
                        sites.push(SiteRec {
                            name: target.into(),
                            description: String::new(),
                            at: at.clone(),
                        });
                        sites.last_mut().expect("just pushed")
                    }
                };
                match field {
                    "description" => s.description = value.into(),
                    f => bad(format!(
                        "site `{target}`: unknown field `{f}` (description)"
                    )),
                }
            }
            "group" => {
                let g = match groups.iter_mut().find(|g| g.name == target) {
                    Some(g) => g,
                    None => {
                        groups.push(GroupRec {
                            name: target.into(),
                            priority: 0,
                            description: String::new(),
                            at: at.clone(),
                        });
                        groups.last_mut().expect("just pushed")
                    }
                };
                match field {
                    "priority" => match value.parse() {
                        Ok(p) => g.priority = p,
                        Err(_) => bad(format!(
                            "group `{target}`: priority `{value}` is not a whole number"
                        )),
                    },
                    "description" => g.description = value.into(),
                    f => bad(format!(
                        "group `{target}`: unknown field `{f}` (priority, description)"
                    )),
                }
            }
            "device" => {
                let d = match device_recs.iter_mut().find(|d| d.mac == target) {
                    Some(d) => d,
                    None => {
                        device_recs.push(DeviceRec {
                            mac: target.into(),
                            at: at.clone(),
                            ..Default::default()
                        });
                        device_recs.last_mut().expect("just pushed")
                    }
                };
                if let Err(msg) = set_device_field(d, field, value) {
                    bad(format!("device `{target}`: {msg}"));
                }
            }
            "policy" => policy_recs.push(PolicyRec {
                scope: target.into(),
                parameter: field.into(),
                value: Some(value.into()),
                at: at.clone(),
            }),
            k => bad(format!(
                "unknown record `{k}` (meta, site, group, device, policy)"
            )),
        }
    }
    if meta.get("format").map(String::as_str) != Some(FORMAT) {
        problems.push(FieldError::new(
            "meta",
            format!("not a zerotouch export (no `meta,,format,{FORMAT}` row)"),
        ));
    }
    let version = meta
        .get("version")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    Ok(Export {
        format: FORMAT.into(),
        version,
        account: meta.get("account").cloned().unwrap_or_default(),
        account_name: String::new(),
        secrets_included: meta.get("secrets_included").is_some_and(|v| v == "true"),
        sealed: None,
        settings: None,
        custom_variables: Vec::new(),
        deliberate: Vec::new(),
        profiles: Vec::new(),
        sites,
        groups,
        devices: device_recs,
        policies: policy_recs,
    })
}

/// Sets one CSV field of a device record.
fn set_device_field(
    d: &mut DeviceRec,
    field: &str,
    value: &str,
) -> std::result::Result<(), String> {
    let v = value.to_string();
    match field {
        "serial" => d.serial = v,
        "vendor_model" => d.vendor_model = v,
        "profile" => d.profile = v,
        "site" => d.site = Some(v),
        "group" => d.groups.push(v),
        "sip_server" => d.sip_server = v,
        "outbound_proxy" => d.outbound_proxy = v,
        "prov_server" => d.prov_server = v,
        "prov_user" => d.prov_user = v,
        "prov_password" => d.prov_password = Some(v),
        "polling" => d.polling = v,
        f if f.starts_with("var.") => {
            let vars = d.vars.get_or_insert_with(Default::default);
            match &f[4..] {
                "label" => vars.label = v,
                "tl_timezone" => vars.tl_timezone = v,
                "tl_timezone_name" => vars.tl_timezone_name = v,
                "default_parkext" => vars.default_parkext = v,
                "override" => vars.override_attrs = v,
                other => {
                    return Err(format!(
                        "unknown template value `{other}` (label, tl_timezone, \
                         tl_timezone_name, default_parkext, override)"
                    ));
                }
            }
        }
        f => {
            let parts: Vec<&str> = f.splitn(3, '.').collect();
            let (Some(&"line"), Some(n), Some(&what)) = (parts.first(), parts.get(1), parts.get(2))
            else {
                return Err(format!("unknown field `{f}`"));
            };
            let n: u32 = n
                .parse()
                .ok()
                .filter(|n| (1..=64).contains(n))
                .ok_or_else(|| format!("`{f}`: the line number must be 1 to 64"))?;
            if !d.lines.iter().any(|l| l.line == n) {
                d.lines.push(LineRec {
                    line: n,
                    ..Default::default()
                });
            }
            let line = d
                .lines
                .iter_mut()
                .find(|l| l.line == n)
                .ok_or_else(|| "line vanished".to_string())?;
            match what {
                "auth_user_id" => line.auth_user_id = v,
                "auth_password" => line.auth_password = Some(v),
                "label" => line.label = v,
                "display_name" => line.display_name = v,
                "extension" => line.extension = v,
                "first_name" => line.first_name = v,
                "last_name" => line.last_name = v,
                other => {
                    return Err(format!(
                        "unknown line field `{other}` (auth_user_id, auth_password, label, \
                         display_name, extension, first_name, last_name)"
                    ));
                }
            }
        }
    }
    Ok(())
}
