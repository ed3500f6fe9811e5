//! The parameter dictionary where values enter: the deliberate names of an account
//! (marking, unmarking, listing, audited) and the check of one policy parameter, shared by
//! the console, the API, the CLI and the transfer import. Profile files are checked by
//! `actions::profiles` through the lint with the same deliberate names.

use rusqlite::Connection;
use serde_json::json;

use crate::db::{self, deliberate};
use crate::domain::account::Account;
use crate::domain::lint::LintFinding;
use crate::domain::paramcheck::{self, Deliberate};
use crate::domain::polycom::dictionary;
use crate::domain::users::Action;
use crate::error::{Error, FieldError, Result};

pub use crate::db::deliberate::DeliberateName;

/// The names an account's admins marked deliberate.
pub fn deliberate_names(conn: &Connection, account: &Account) -> Result<Deliberate> {
    Ok(Deliberate(
        deliberate::list_deliberate(conn, account.id.0)?
            .into_iter()
            .map(|d| (d.name, d.reason))
            .collect(),
    ))
}

/// Lists the deliberate names of the actor's account.
pub fn list_deliberate(conn: &Connection, actor: &super::Actor<'_>) -> Result<Vec<DeliberateName>> {
    actor.user.require(Action::Read)?;
    deliberate::list_deliberate(conn, actor.account.id.0)
}

fn check_name(name: &str) -> Result<()> {
    let ok = (3..=128).contains(&name.len())
        && name.contains('.')
        && !name.split('.').any(str::is_empty)
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "name",
            format!("`{name}` is not a parameter name (dotted letters, digits, `_`, `-`)"),
        ))
    }
}

/// The rule for a deliberate name and its reason, on every path that marks one (the policy
/// pages, the CLI, the API, an import).
pub fn check_deliberate(name: &str, reason: &str) -> Result<()> {
    check_name(name)?;
    if reason.is_empty() || reason.chars().count() > 200 || reason.chars().any(char::is_control) {
        return Err(Error::invalid(
            "reason",
            "say why the name is deliberate (1 to 200 characters, one line)",
        ));
    }
    if dictionary::builtin().lookup(name).is_some() {
        return Err(Error::invalid(
            "name",
            format!("`{name}` is in the parameter dictionary already"),
        ));
    }
    Ok(())
}

/// Marks a parameter name (or a pattern with `N` for indices) deliberate in the actor's
/// account, with a reason; admins and providers who manage policies may.
pub fn mark_deliberate(
    conn: &mut Connection,
    actor: &super::Actor<'_>,
    name: &str,
    reason: &str,
) -> Result<()> {
    actor.user.require(Action::ManagePolicies)?;
    let name = name.trim();
    let reason = reason.trim();
    check_deliberate(name, reason)?;
    db::write_tx(conn, |tx| {
        let before =
            deliberate::upsert_deliberate(tx, actor.account.id.0, name, reason, &actor.who.name)?;
        actor.record(
            tx,
            actor
                .change("parameter.deliberate", name)
                .before(json!({ "reason": before }))
                .after(json!({ "reason": reason })),
        )
    })
}

/// Removes a deliberate mark.
pub fn unmark_deliberate(
    conn: &mut Connection,
    actor: &super::Actor<'_>,
    name: &str,
) -> Result<()> {
    actor.user.require(Action::ManagePolicies)?;
    db::write_tx(conn, |tx| {
        let Some(before) = deliberate::delete_deliberate(tx, actor.account.id.0, name.trim())?
        else {
            return Err(Error::not_found(format!("deliberate parameter `{name}`")));
        };
        actor.record(
            tx,
            actor
                .change("parameter.undeliberate", name)
                .before(json!({ "reason": before })),
        )
    })
}

/// Checks a policy's parameter and value against the dictionary: a near miss is refused
/// (naming the field), the rest comes back as warnings. `place` names the policy
/// (`policy site:hq`).
pub fn check_policy_param(
    conn: &Connection,
    account: &Account,
    place: &str,
    parameter: &str,
    value: &str,
) -> Result<Vec<LintFinding>> {
    let findings = paramcheck::check(
        dictionary::builtin(),
        &deliberate_names(conn, account)?,
        place,
        0,
        parameter,
        value,
        true,
    );
    let typos: Vec<FieldError> = findings
        .iter()
        .filter(|f| f.code == paramcheck::NEAR_MISS)
        .map(|f| {
            FieldError::new(
                "parameter",
                format!("{place}: `{}`: {}", f.param, f.message),
            )
        })
        .collect();
    if typos.is_empty() {
        Ok(findings)
    } else {
        Err(Error::Invalid(typos))
    }
}
