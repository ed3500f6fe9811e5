//! Reading the audit log, without a database: the filter of the audit page, its downloads
//! and the API (`Filter`, parsed from what a person typed, each bad value named by its
//! field), action names in plain words (`action_label`), field labels (`field_label`) and
//! the per-field comparison of an entry's values before and after (`field_changes`), which
//! shows values as they were recorded: masked secrets stay masked.

use serde_json::Value;

use super::iso_time;
use crate::error::Result;

/// The most entries one download gives.
pub const MAX_DOWNLOAD: u32 = 10_000;

/// Which entries to read: every condition given must hold. Built by `Filter::parse` from
/// what a person typed, so each bad value is named by its field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Entries of one account (its id); `None`: every account.
    pub account_id: Option<i64>,
    /// The actor's name, exactly or as its beginning (`alice` matches `alice (API token)`).
    pub who: Option<String>,
    /// The action, exactly (`device.modify`).
    pub what: Option<String>,
    /// A piece of the target, lowercase; a MAC typed with separators is normalised.
    pub target: Option<String>,
    /// The first day, as its first second (UTC).
    pub from: Option<i64>,
    /// The day after the last one, as its first second (UTC): entries before it.
    pub until: Option<i64>,
}

/// What a person typed in the filter form, as text.
#[derive(Debug, Clone, Default)]
pub struct FilterText<'a> {
    pub who: &'a str,
    pub what: &'a str,
    pub target: &'a str,
    pub from: &'a str,
    pub to: &'a str,
}

impl Filter {
    /// Checks and normalises typed values (the account is set by the caller). Dates are
    /// `YYYY-MM-DD` in UTC, both inclusive; `from` after `to` is refused.
    pub fn parse(text: &FilterText<'_>) -> Result<Filter> {
        let some = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let too_long = |field: &str, s: &Option<String>| -> Result<()> {
            if s.as_ref().is_some_and(|s| s.len() > 200) {
                return Err(crate::Error::invalid(
                    field,
                    "is longer than 200 characters",
                ));
            }
            Ok(())
        };
        let who = some(text.who);
        too_long("who", &who)?;
        let what = some(text.what);
        too_long("what", &what)?;
        let target = some(text.target).map(|t| normal_target(&t));
        too_long("target", &target)?;
        let from = some(text.from).map(|d| day_start("from", &d)).transpose()?;
        let until = some(text.to)
            .map(|d| day_start("to", &d).map(|t| t + 86_400))
            .transpose()?;
        if let (Some(f), Some(u)) = (from, until)
            && f >= u
        {
            return Err(crate::Error::invalid("to", "is before the date in from"));
        }
        Ok(Filter {
            account_id: None,
            who,
            what,
            target,
            from,
            until,
        })
    }

    /// The filter as query-string pairs (`who`, `what`, `target`, `from`, `to`), for links
    /// that keep it; the account is added by the caller.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        let day = |t: i64| iso_time(t).chars().take(10).collect::<String>();
        let mut v = Vec::new();
        if let Some(w) = &self.who {
            v.push(("who", w.clone()));
        }
        if let Some(w) = &self.what {
            v.push(("what", w.clone()));
        }
        if let Some(t) = &self.target {
            v.push(("target", t.clone()));
        }
        if let Some(f) = self.from {
            v.push(("from", day(f)));
        }
        if let Some(u) = self.until {
            v.push(("to", day(u - 86_400)));
        }
        v
    }
}

/// A typed target as it is matched: lowercase, and a MAC (or the end of one) typed with
/// `:`, `-` or `.` separators as the bare hex digits the log records.
fn normal_target(t: &str) -> String {
    if let Some(mac) = crate::domain::mac::Mac::parse_lenient(t) {
        return mac.as_str().to_string();
    }
    let groups: Vec<&str> = t.split([':', '-', '.']).collect();
    if groups.len() > 1
        && groups
            .iter()
            .all(|g| g.len() == 2 && g.chars().all(|c| c.is_ascii_hexdigit()))
    {
        return groups.concat().to_ascii_lowercase();
    }
    t.to_lowercase()
}

/// The first second (UTC) of a `YYYY-MM-DD` day; `field` names it in the error.
fn day_start(field: &str, text: &str) -> Result<i64> {
    let bad = || crate::Error::invalid(field, format!("`{text}` is not a date as YYYY-MM-DD"));
    let parts: Vec<&str> = text.split('-').collect();
    let [y, m, d] = parts[..] else {
        return Err(bad());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let num = |s: &str| {
        s.parse::<u16>()
            .ok()
            .filter(|_| s.bytes().all(|b| b.is_ascii_digit()))
    };
    let (Some(y), Some(m), Some(d)) = (num(y), num(m), num(d)) else {
        return Err(bad());
    };
    let month = u8::try_from(m)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .ok_or_else(bad)?;
    let day = u8::try_from(d).map_err(|_| bad())?;
    let date = time::Date::from_calendar_date(i32::from(y), month, day).map_err(|_| bad())?;
    Ok(date.midnight().assume_utc().unix_timestamp())
}

/// An action in plain words (`device.modify` → "Device changed"); an action this release
/// does not know is shown as recorded.
pub fn action_label(action: &str) -> &str {
    match action {
        "account.add" => "Account added",
        "account.enable" => "Account provisioning enabled",
        "account.disable" => "Account provisioning disabled",
        "account.device-secrets" => "Account's device secrets changed",
        "account.regenerate-address" => "Account service address regenerated",
        "account.retire-alias" => "Account alias retired",
        "account.set-autosync" => "Auto-Sync switched",
        "account.set-autosync-options" => "Auto-Sync options changed",
        "account.set-credentials" => "Server credentials changed",
        "account.set-ftp-factory-login" => "FTP factory login switched",
        "account.set-sip" => "Account SIP settings changed",
        "account.set-tftp-credential" => "TFTP credential switched",
        "account.set-unknown-devices" => "Unknown-device handling changed",
        "autosync.readmit" => "Phone re-admitted to Auto-Sync",
        "device.apply-now" => "Changes applied now",
        "device.associate" => "Device associated",
        "device.confirm" => "Device state confirmed",
        "device.copy" => "Device copied",
        "device.delete" => "Device deleted",
        "device.delete-line" => "Device line deleted",
        "device.modify" | "device.update" => "Device changed",
        "device.preview-secrets" => "Device secrets revealed in a preview",
        "device.replace" => "Device replaced",
        "device.set-line" => "Device line set",
        "device.set-site" => "Device site set",
        "device.set-vars" => "Device variables set",
        "device.sip-address" => "Device SIP address set",
        "enrolment.close" => "Enrolment closed",
        "enrolment.dismiss" => "Enrolment claims dismissed",
        "enrolment.max-age" => "Enrolment maximum age set",
        "enrolment.open" => "Enrolment opened",
        "enrolment.reenrol" => "Re-enrolment opened",
        "enrolment.reset" => "Enrolment reset",
        "enrolment.rotate" => "Enrolment credential rotated",
        "external.push" => "Files pushed to the external server",
        "group.add" => "Group added",
        "group.add-member" => "Device added to a group",
        "group.delete" => "Group deleted",
        "group.remove-member" => "Device removed from a group",
        "group.set-priority" => "Group priority set",
        "import.installation" => "Installation imported",
        "import.job" => "Bulk association imported",
        "parameter.deliberate" => "Parameter marked deliberate",
        "parameter.undeliberate" => "Parameter no longer deliberate",
        "policy.set" => "Policy set",
        "policy.unset" => "Policy removed",
        "profile.add" => "Profile added",
        "profile.delete" => "Profile deleted",
        "profile.modify" => "Profile changed",
        "settings.set" => "Provisioning settings changed",
        "site.add" => "Site added",
        "site.delete" => "Site deleted",
        "subscriber.add" => "Reference ID added",
        "subscriber.delete" => "Reference ID deleted",
        "subscriber.modify" => "Contact changed",
        "token.create" => "API token created",
        "token.revoke" => "API token revoked",
        "user.add" => "User added",
        "user.change-password" => "Password changed",
        "user.delete" => "User deleted",
        "user.directory-role" => "Directory user's role set",
        "user.reset-password" => "Password reset",
        "user.set-accounts" => "User's accounts set",
        "user.totp-enrol" => "Two-factor sign-in set up",
        "user.totp-recovery-code" => "Two-factor recovery code used",
        "user.totp-remove" => "Two-factor sign-in removed",
        "variable.delete" => "Variable deleted",
        "variable.set" => "Variable set",
        other => other,
    }
}

/// A recorded field name as people read it (`sip_auth_password` → "SIP authentication
/// password"); a Polycom parameter name (with dots) is shown as it is.
pub fn field_label(key: &str) -> String {
    if key.contains('.') || key.is_empty() {
        return key.to_string();
    }
    let words: Vec<String> = key
        .split(['_', '-'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            match w.to_ascii_lowercase().as_str() {
                "sip" => "SIP",
                "mac" => "MAC",
                "url" => "URL",
                "id" => "ID",
                "ip" => "IP",
                "api" => "API",
                "csv" => "CSV",
                "ftp" => "FTP",
                "tftp" => "TFTP",
                "http" => "HTTP",
                "https" => "HTTPS",
                "ntp" => "NTP",
                "dhcp" => "DHCP",
                "dns" => "DNS",
                "totp" => "two-factor",
                "auth" => "authentication",
                "prov" => "provisioning",
                "autosync" => "Auto-Sync",
                "vars" => "variables",
                "pw" => "password",
                _ => return w.to_string(),
            }
            .to_string()
        })
        .collect();
    let text = words.join(" ");
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => key.to_string(),
    }
}

/// One field of an entry's values, before and after, shown as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    /// The field as recorded.
    pub key: String,
    /// The field as people read it (`field_label`).
    pub label: String,
    pub before: Option<String>,
    pub after: Option<String>,
    /// Whether the values differ (a field only before or only after counts).
    pub changed: bool,
}

/// The fields of an entry's values before and after, in recorded order (the fields of
/// `before` first, then those only `after` has). A value that is not an object is one
/// field named `value`. Values are shown as recorded: masked secrets stay masked.
pub fn field_changes(before: Option<&Value>, after: Option<&Value>) -> Vec<FieldChange> {
    fn fields(v: Option<&Value>) -> Vec<(String, &Value)> {
        match v {
            Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
            Some(other) => vec![("value".to_string(), other)],
            None => Vec::new(),
        }
    }
    let show = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "--".into(),
        other => other.to_string(),
    };
    let b = fields(before);
    let a = fields(after);
    let mut keys: Vec<&String> = b.iter().map(|(k, _)| k).collect();
    for (k, _) in &a {
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .map(|k| {
            let old = b.iter().find(|(x, _)| x == k).map(|(_, v)| *v);
            let new = a.iter().find(|(x, _)| x == k).map(|(_, v)| *v);
            FieldChange {
                key: k.clone(),
                label: field_label(k),
                before: old.map(show),
                after: new.map(show),
                // Only one side recorded (a creation, a deletion): nothing to compare.
                changed: before.is_some() && after.is_some() && old != new,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::{MASK, mask};
    use serde_json::json;

    #[test]
    fn filters_are_checked_and_named_by_field() {
        let f = Filter::parse(&FilterText {
            who: " alice ",
            what: "device.modify",
            target: "00:04:F2:AA:BB:CC",
            from: "2025-05-01",
            to: "2025-05-01",
        })
        .expect("filter");
        assert_eq!(f.who.as_deref(), Some("alice"));
        assert_eq!(f.target.as_deref(), Some("0004f2aabbcc"));
        assert_eq!(f.from, Some(1_746_057_600));
        assert_eq!(f.until, Some(1_746_057_600 + 86_400));
        assert_eq!(
            f.pairs(),
            vec![
                ("who", "alice".to_string()),
                ("what", "device.modify".to_string()),
                ("target", "0004f2aabbcc".to_string()),
                ("from", "2025-05-01".to_string()),
                ("to", "2025-05-01".to_string()),
            ]
        );
        for (t, want) in [
            ("AA-BB-CC", "aabbcc"),
            ("0004.f2aa.bbcc", "0004f2aabbcc"),
            ("Lab", "lab"),
        ] {
            let f = Filter::parse(&FilterText {
                target: t,
                ..Default::default()
            })
            .expect("target");
            assert_eq!(f.target.as_deref(), Some(want), "{t}");
        }
        for (text, field) in [
            (
                FilterText {
                    from: "2025-13-01",
                    ..Default::default()
                },
                "from",
            ),
            (
                FilterText {
                    from: "yesterday",
                    ..Default::default()
                },
                "from",
            ),
            (
                FilterText {
                    to: "2025-02-30",
                    ..Default::default()
                },
                "to",
            ),
            (
                FilterText {
                    from: "2025-05-02",
                    to: "2025-05-01",
                    ..Default::default()
                },
                "to",
            ),
        ] {
            match Filter::parse(&text) {
                Err(crate::Error::Invalid(p)) => assert_eq!(p[0].field, field, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
        assert_eq!(
            Filter::parse(&FilterText::default()).expect("empty"),
            Filter::default()
        );
    }

    #[test]
    fn actions_and_fields_read_as_words_and_unknown_ones_as_recorded() {
        assert_eq!(action_label("device.modify"), "Device changed");
        assert_eq!(action_label("device.update"), "Device changed");
        assert_eq!(action_label("user.reset-password"), "Password reset");
        assert_eq!(action_label("thing.frobnicate"), "thing.frobnicate");
        assert_eq!(
            field_label("sip_auth_password"),
            "SIP authentication password"
        );
        assert_eq!(field_label("mac"), "MAC");
        assert_eq!(field_label("reg.1.auth.password"), "reg.1.auth.password");
    }

    #[test]
    fn field_changes_mark_only_what_changed_and_keep_masks() {
        let before = mask(&json!({"label": "1001", "sip_auth_password": "old", "site": "hq"}));
        let after =
            mask(&json!({"label": "1002", "sip_auth_password": "new", "site": "hq", "extra": 1}));
        let rows = field_changes(Some(&before), Some(&after));
        let by = |k: &str| rows.iter().find(|r| r.key == k).expect(k);
        assert!(by("label").changed);
        assert!(!by("site").changed);
        assert!(by("extra").changed && by("extra").before.is_none());
        let pw = by("sip_auth_password");
        assert_eq!(pw.before.as_deref(), Some(MASK));
        assert_eq!(pw.after.as_deref(), Some(MASK));
        assert_eq!(pw.label, "SIP authentication password");
        let created = field_changes(None, Some(&json!({"name": "x"})));
        assert!(!created[0].changed && created[0].after.as_deref() == Some("x"));
    }
}
