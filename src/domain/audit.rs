//! The audit log: who changed what, when, with the values before and after (docs/design.md §3).
//!
//! Every action a person, an API token or the CLI takes records one entry in the same
//! transaction as the change, so an entry exists exactly when the change does. Values pass
//! through `mask` first: a secret never reaches the log in clear, whether it is a field
//! named like a password or a policy whose parameter is secret (`params::is_secret`).
//! This module does not decide what an action is; the actions describe themselves. What
//! reading the log needs (its filter, entries in words) is in `read.rs`.

use serde::Serialize;
use serde_json::Value;

use super::polycom::params;
use crate::error::Result;

mod read;
pub use read::*;

/// What shows in place of a secret.
pub const MASK: &str = "********";

/// Who acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    /// A signed-in admin console user.
    Person,
    /// An API token.
    Token,
    /// The command line, as the operating-system user who ran it.
    Cli,
    /// zerotouch itself (e.g. an alias retired after the last device moved).
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Person => "person",
            ActorKind::Token => "token",
            ActorKind::Cli => "cli",
            ActorKind::System => "system",
        }
    }

    pub fn parse(s: &str) -> ActorKind {
        match s {
            "person" => ActorKind::Person,
            "token" => ActorKind::Token,
            "cli" => ActorKind::Cli,
            _ => ActorKind::System,
        }
    }
}

/// Who acts, as recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    pub kind: ActorKind,
    pub name: String,
}

impl Actor {
    /// A console user, by user name.
    pub fn person(name: impl Into<String>) -> Actor {
        Actor {
            kind: ActorKind::Person,
            name: name.into(),
        }
    }

    /// An API token, by its name (never its secret).
    pub fn token(name: impl Into<String>) -> Actor {
        Actor {
            kind: ActorKind::Token,
            name: name.into(),
        }
    }

    pub fn system() -> Actor {
        Actor {
            kind: ActorKind::System,
            name: "zerotouch".into(),
        }
    }

    /// The command line, run by the operating-system user `name`.
    pub fn cli(name: impl Into<String>) -> Actor {
        Actor {
            kind: ActorKind::Cli,
            name: name.into(),
        }
    }
}

/// One change, as an action describes it.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub account_id: Option<i64>,
    /// A short verb phrase, e.g. `account.set-credentials`, `policy.set`.
    pub action: String,
    /// What was changed: a MAC, a slug, `site hq`, ...
    pub target: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl Change {
    pub fn new(account_id: Option<i64>, action: &str, target: impl Into<String>) -> Change {
        Change {
            account_id,
            action: action.into(),
            target: target.into(),
            before: None,
            after: None,
        }
    }

    pub fn before(mut self, v: Value) -> Change {
        self.before = Some(v);
        self
    }

    pub fn after(mut self, v: Value) -> Change {
        self.after = Some(v);
        self
    }
}

/// Field names whose values are secrets wherever they appear.
fn secret_field(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.ends_with("password") || k == "secret" || k == "token" || params::is_secret(key)
}

/// Masks every secret in a JSON value: fields named like passwords, parameters that are
/// secrets, `{"parameter": <secret name>, "value": ...}` pairs (policies), and passwords
/// embedded in addresses (`scheme://user:password@host`).
pub fn mask(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let secret_param = map
                .get("parameter")
                .and_then(Value::as_str)
                .is_some_and(params::is_secret);
            Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let hide = secret_field(k) || (secret_param && k == "value");
                        let v = match v {
                            Value::String(s) if hide && !s.is_empty() => Value::String(MASK.into()),
                            Value::String(s) => {
                                Value::String(super::provserver::mask_password(s).into_owned())
                            }
                            Value::Null => Value::Null,
                            _ if hide && !v.is_string() => Value::String(MASK.into()),
                            other => mask(other),
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(mask).collect()),
        other => other.clone(),
    }
}

/// A stored entry.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub id: i64,
    pub ts: i64,
    pub actor: String,
    pub actor_kind: ActorKind,
    pub account_id: Option<i64>,
    pub action: String,
    pub target: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// A time as ISO 8601 in UTC (`2025-05-01T12:00:00Z`), for exported files.
pub fn iso_time(ts: i64) -> String {
    super::time::rfc3339(ts)
}

/// Entries as CSV (`id,time,actor_kind,actor,account_id,action,target,before,after`, the
/// values as JSON), for the console's and the API's download. They are masked already.
pub fn to_csv(entries: &[Entry]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let json = |v: &Option<Value>| v.as_ref().map(Value::to_string).unwrap_or_default();
    let fail = |e: csv::Error| crate::Error::invalid("audit", e.to_string());
    w.write_record([
        "id",
        "time",
        "actor_kind",
        "actor",
        "account_id",
        "action",
        "target",
        "before",
        "after",
    ])
    .map_err(fail)?;
    for e in entries {
        w.write_record(
            [
                e.id.to_string(),
                iso_time(e.ts),
                e.actor_kind.as_str().to_string(),
                e.actor.clone(),
                e.account_id.map(|a| a.to_string()).unwrap_or_default(),
                e.action.clone(),
                e.target.clone(),
                json(&e.before),
                json(&e.after),
            ]
            .map(|c| super::csvcell::neutral(&c).into_owned()),
        )
        .map_err(fail)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| crate::Error::invalid("audit", e.to_string()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_masked_by_name_and_by_parameter() {
        let v = json!({
            "user": "phones",
            "password": "hunter2hunter2",
            "prov_password": "",
            "lines": [{"auth_password": "sip-secret", "label": "1001"}],
            "policy": {"parameter": "reg.1.auth.password", "value": "p0licy"},
            "other": {"parameter": "lcl.ml.lang", "value": "German_Germany"},
            "reg.2.auth.password": "x",
        });
        let text = mask(&v).to_string();
        for secret in ["hunter2hunter2", "sip-secret", "p0licy", "\"x\""] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        for kept in ["phones", "1001", "German_Germany"] {
            assert!(text.contains(kept), "{kept} missing from {text}");
        }
        assert!(text.contains("\"prov_password\":\"\""), "empty stays empty");
    }
}
