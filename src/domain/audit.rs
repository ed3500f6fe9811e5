//! The audit log: who changed what, when, with the values before and after (DESIGN §3).
//!
//! Every action a person, an API token or the CLI takes records one entry in the same
//! transaction as the change, so an entry exists exactly when the change does. Values pass
//! through `mask` first: a secret never reaches the log in clear, whether it is a field
//! named like a password or a policy whose parameter is secret (`params::is_secret`).
//! This module does not decide what an action is; the actions describe themselves.

use rusqlite::Connection;
use serde::Serialize;
use serde_json::Value;

use super::polycom::params;
use crate::db;
use crate::error::Result;

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

    /// The operating-system user running this process (the CLI): `$USER`, `$LOGNAME`, else
    /// the numeric uid.
    pub fn os_user() -> Actor {
        let name = ["USER", "LOGNAME"]
            .iter()
            .filter_map(|v| std::env::var(v).ok())
            .find(|v| !v.is_empty())
            .or_else(|| {
                let status = std::fs::read_to_string("/proc/self/status").ok()?;
                let uid = status
                    .lines()
                    .find_map(|l| l.strip_prefix("Uid:"))?
                    .split_whitespace()
                    .next()?
                    .to_string();
                Some(format!("uid {uid}"))
            })
            .unwrap_or_else(|| "unknown".into());
        Actor {
            kind: ActorKind::Cli,
            name,
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
/// secrets, and `{"parameter": <secret name>, "value": ...}` pairs (policies).
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

/// Records a change (masked) in the caller's transaction.
pub fn record(conn: &Connection, actor: &Actor, change: Change) -> Result<()> {
    db::audit::insert_entry(
        conn,
        &db::audit::NewEntry {
            ts: db::now_secs(),
            actor,
            account_id: change.account_id,
            action: &change.action,
            target: &change.target,
            before: change.before.as_ref().map(mask),
            after: change.after.as_ref().map(mask),
        },
    )
}

/// The newest entries, newest first (for the CLI, the console and the API).
pub fn list(
    conn: &Connection,
    account_id: Option<i64>,
    limit: u32,
) -> Result<Vec<db::audit::Entry>> {
    db::audit::list_entries(conn, account_id, limit)
}

/// A time as ISO 8601 in UTC (`2025-05-01T12:00:00Z`), for exported files.
pub fn iso_time(ts: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(ts) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => ts.to_string(),
    }
}

/// Entries as CSV (`id,time,actor_kind,actor,account_id,action,target,before,after`, the
/// values as JSON), for the console's and the API's download. They are masked already.
pub fn to_csv(entries: &[db::audit::Entry]) -> Result<String> {
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
        w.write_record([
            e.id.to_string(),
            iso_time(e.ts),
            e.actor_kind.as_str().to_string(),
            e.actor.clone(),
            e.account_id.map(|a| a.to_string()).unwrap_or_default(),
            e.action.clone(),
            e.target.clone(),
            json(&e.before),
            json(&e.after),
        ])
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

    #[test]
    fn entries_are_written_masked_and_listed_newest_first() {
        let conn = db::open_in_memory().expect("db");
        let actor = Actor::person("alice");
        record(
            &conn,
            &actor,
            Change::new(Some(1), "account.set-credentials", "default")
                .before(json!({"user": "a", "password": "old-secret"}))
                .after(json!({"user": "b", "password": "new-secret"})),
        )
        .expect("record");
        record(
            &conn,
            &Actor::os_user(),
            Change::new(None, "site.add", "hq"),
        )
        .expect("record");
        let rows = list(&conn, None, 10).expect("list");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].action, "site.add");
        assert_eq!(rows[0].actor_kind, ActorKind::Cli);
        let first = &rows[1];
        assert_eq!(first.actor, "alice");
        let text = format!("{:?}{:?}", first.before, first.after);
        assert!(!text.contains("secret"), "{text}");
        assert_eq!(list(&conn, Some(1), 10).expect("list").len(), 1);
        let csv = to_csv(&rows).expect("csv");
        assert!(csv.starts_with("id,time,actor_kind,actor,"), "{csv}");
        assert!(
            csv.contains(",person,alice,1,account.set-credentials,default,"),
            "{csv}"
        );
        assert!(
            !csv.contains("old-secret") && csv.contains("********"),
            "{csv}"
        );
        assert_eq!(iso_time(86_400 + 61), "1970-01-02T00:01:01Z");
    }
}
