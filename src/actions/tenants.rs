//! Accounts as tenants: which account a user acts in, with which role, and what of the
//! installation they see. Every request of the API, every console page and every command
//! becomes "this user, with this role, in this account" here (`act_in`,
//! `console_account`), and the reads that cross accounts by a key typed by someone (a MAC,
//! a reference ID, a Find) are limited here and in `associations` — never in a handler.
//!
//! The scoping invariants (`tests/it/tenants.rs` checks them through the API, the console
//! and a randomized model):
//! - A user scoped to accounts S (`users::Accounts::Only`) acts only in S, in each with the
//!   role given there; an installation-wide user acts in every account with their role, as
//!   every user did before schema 17.
//! - An account outside S answers exactly as an account that does not exist (404
//!   "account `x` not found"), on its API routes, its console pages and the switcher.
//! - Acting in account A, a scoped user sees exactly the devices, reference IDs, profiles,
//!   imports, unassociated phones, inventory, exports, audit entries and own shared files
//!   of A (narrowed by company as before); counts equal the visible rows. Find covers the
//!   account it acts in only, for every user: the console's (the switcher's),
//!   `/api/v1/accounts/{a}/find`'s, and the default account for the alias `/api/v1/find`.
//!   An installation-wide user's device pages and unassociated phones, and the CLI's `find`
//!   without `--account`, cover every account, as before accounts were tenants.
//! - A MAC or reference ID held by another account is indistinguishable from one that
//!   exists nowhere — 404, not listed by Find, not counted — except that associating such
//!   a MAC answers 409 "already associated elsewhere", naming neither the account nor the
//!   company (as ZTP does).

use rusqlite::Connection;
use serde_json::json;

use crate::actions::accounts::{self, AccountSummary};
use crate::db::find::{self, DeviceHit, FindQuery, Page, SubscriberHit};
use crate::db::users as uq;
use crate::domain::account::Account;
use crate::domain::audit::{Actor as Who, Change};
use crate::domain::users::{Accounts, Grant, Role, User};
use crate::error::{Error, Result};

/// The user as they act in the account `slug` names (`None`: the default account), and
/// that account. An account the user has no role in is "not found", as one that does not
/// exist.
pub fn act_in(conn: &Connection, user: &User, slug: Option<&str>) -> Result<(User, Account)> {
    let account = accounts::find_account(conn, slug)?;
    match user.in_account(account.id.0) {
        Some(u) => Ok((u, account)),
        None => Err(Error::not_found(format!("account `{}`", account.slug))),
    }
}

/// The account the console acts on for this user: the one they chose last (the
/// switcher), else the default account, else the first they have a role in.
pub fn console_account(conn: &Connection, user: &User) -> Result<(User, Account)> {
    let chosen = uq::find_current_account(conn, user.id)?;
    let default = accounts::default_account(conn)?;
    let mut candidates = Vec::new();
    candidates.extend(chosen);
    candidates.push(default.id.0);
    if let Accounts::Only(grants) = &user.accounts {
        candidates.extend(grants.iter().map(|g| g.account_id));
    }
    for id in candidates {
        if let Some(u) = user.in_account(id)
            && let Some(a) =
                crate::db::accounts::find_by_id(conn, crate::domain::account::AccountId(id))?
        {
            return Ok((u, a));
        }
    }
    Err(Error::Forbidden(format!(
        "user `{}` has a role in no account: an admin gives them one",
        user.username
    )))
}

/// Makes the console act on the account `slug` names for this user from now on.
pub fn switch_account(conn: &Connection, user: &User, slug: &str) -> Result<Account> {
    let (_, account) = act_in(conn, user, Some(slug))?;
    uq::set_current_account(conn, user.id, account.id.0)?;
    Ok(account)
}

/// The accounts this user may act in, summarized.
pub fn list_accounts(conn: &Connection, user: &User) -> Result<Vec<AccountSummary>> {
    Ok(accounts::list_accounts(conn)?
        .into_iter()
        .filter(|a| user.may_act_in(a.id))
        .collect())
}

/// Every account's slug by id, for `accounts_label`.
pub fn slugs(conn: &Connection) -> Result<std::collections::HashMap<i64, String>> {
    Ok(crate::db::accounts::list_accounts(conn)?
        .into_iter()
        .map(|a| (a.id.0, a.slug))
        .collect())
}

/// The accounts a user acts in, as they are typed (`branch=installer, hq=viewer`); empty
/// for every account.
pub fn accounts_label(slugs: &std::collections::HashMap<i64, String>, user: &User) -> String {
    match &user.accounts {
        Accounts::Installation => String::new(),
        Accounts::Only(grants) => grants
            .iter()
            .map(|g| {
                let slug = slugs.get(&g.account_id).map_or("?", String::as_str);
                format!("{slug}={}", g.role)
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The grants typed as `(slug, role)`, each account looked up; an unknown one is an error
/// naming `field`.
pub fn grants_of(conn: &Connection, field: &str, typed: &[(String, Role)]) -> Result<Vec<Grant>> {
    let mut problems = Vec::new();
    let mut grants: Vec<Grant> = Vec::new();
    for (slug, role) in typed {
        match crate::db::accounts::find_by_slug(conn, slug)? {
            Some(a) if grants.iter().any(|g| g.account_id == a.id.0) => problems.push(
                crate::error::FieldError::new(field, format!("account `{slug}` is given twice")),
            ),
            Some(a) => grants.push(Grant {
                account_id: a.id.0,
                role: *role,
            }),
            None => problems.push(crate::error::FieldError::new(
                field,
                format!("no account `{slug}`"),
            )),
        }
    }
    if problems.is_empty() {
        Ok(grants)
    } else {
        Err(Error::Invalid(problems))
    }
}

/// Makes a user installation-wide (`typed` `None`, with their role) or scoped to the
/// accounts typed, each with its role; audited. At least one installation-wide admin stays.
pub fn set_user_accounts(
    conn: &mut Connection,
    who: &Who,
    username: &str,
    typed: Option<&[(String, Role)]>,
) -> Result<()> {
    crate::db::write_tx(conn, |tx| {
        let user = uq::find_user_by_name(tx, username)?
            .ok_or_else(|| Error::not_found(format!("user `{username}`")))?;
        let grants = match typed {
            None => None,
            Some([]) => {
                return Err(Error::invalid(
                    "account_role",
                    "give at least one ACCOUNT=ROLE, or make the user installation-wide",
                ));
            }
            Some(t) => Some(grants_of(tx, "account_role", t)?),
        };
        uq::set_user_accounts(tx, user.id, grants.as_deref())?;
        if uq::count_admins(tx)? == 0 {
            return Err(Error::Conflict(
                "the last installation-wide admin cannot be limited to accounts".into(),
            ));
        }
        let after = match typed {
            None => json!({"accounts": "installation", "role": user.role.as_str()}),
            Some(t) => json!({"accounts": t
                .iter()
                .map(|(s, r)| json!({"account": s, "role": r.as_str()}))
                .collect::<Vec<_>>()}),
        };
        crate::db::audit::record(
            tx,
            who,
            Change::new(None, "user.set-accounts", username).after(after),
        )
    })
}

/// The Find query as this user may run it: the accounts the query asks for (the account a
/// console page or an account route acts on; `None`: every account) narrowed to those the
/// user sees (the account they act in, for a scoped user resolved by `act_in`; every
/// account for an installation-wide user).
fn scoped(user: &User, q: &FindQuery) -> FindQuery {
    let seen: Option<Vec<i64>> = match &user.accounts {
        Accounts::Installation => None,
        Accounts::Only(grants) => Some(grants.iter().map(|g| g.account_id).collect()),
    };
    let accounts = match (seen, &q.accounts) {
        (None, asked) => asked.clone(),
        (Some(seen), None) => Some(seen),
        (Some(seen), Some(asked)) => Some(seen.into_iter().filter(|a| asked.contains(a)).collect()),
    };
    FindQuery {
        accounts,
        ..q.clone()
    }
}

/// A page of Find's device view, as this user sees it.
pub fn find_devices(
    conn: &Connection,
    user: &User,
    q: &FindQuery,
    offset: usize,
    per_page: usize,
) -> Result<Page<DeviceHit>> {
    find::find_devices(conn, &scoped(user, q), &user.scope(), offset, per_page)
}

/// A page of Find's reference-ID view, as this user sees it.
pub fn find_subscribers(
    conn: &Connection,
    user: &User,
    q: &FindQuery,
    offset: usize,
    per_page: usize,
) -> Result<Page<SubscriberHit>> {
    find::find_subscribers(conn, &scoped(user, q), &user.scope(), offset, per_page)
}

/// Up to `max` device rows for a download, as this user sees them.
pub fn all_devices(
    conn: &Connection,
    user: &User,
    q: &FindQuery,
    max: usize,
) -> Result<Vec<DeviceHit>> {
    find::all_devices(conn, &scoped(user, q), &user.scope(), max)
}

/// Up to `max` reference-ID rows for a download, as this user sees them.
pub fn all_subscribers(
    conn: &Connection,
    user: &User,
    q: &FindQuery,
    max: usize,
) -> Result<Vec<SubscriberHit>> {
    find::all_subscribers(conn, &scoped(user, q), &user.scope(), max)
}
