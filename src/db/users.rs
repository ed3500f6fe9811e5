//! Queries on `users`, `sessions` and `api_tokens`. Tokens arrive here already hashed:
//! nothing in this file ever sees a session cookie or an API token in clear.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::now_secs;
use crate::domain::users::{Accounts, Grant, Role, User};
use crate::error::{Error, Result};

/// A user's columns, the table aliased `u`: the last two are whether they act in every
/// account and, if not, their grants as `account_id:role,…` (read by `from_row`).
const COLUMNS: &str = "u.id, u.username, u.role, u.company, u.must_change_password, \
     u.all_accounts, (SELECT group_concat(ua.account_id || ':' || ua.role, ',') \
     FROM user_accounts ua WHERE ua.user_id = u.id)";

/// How many columns `COLUMNS` has: what a query selects after them starts here.
const NEXT: usize = 7;

fn from_row(r: &Row<'_>) -> rusqlite::Result<User> {
    let role: String = r.get(2)?;
    // The CHECK constraints admit only the four roles.
    let mut role = Role::parse(&role).unwrap_or(Role::Viewer);
    let accounts = if r.get::<_, bool>(5)? {
        Accounts::Installation
    } else {
        let grants: Vec<Grant> = r
            .get::<_, Option<String>>(6)?
            .unwrap_or_default()
            .split(',')
            .filter_map(|g| {
                let (id, role) = g.split_once(':')?;
                Some(Grant {
                    account_id: id.parse().ok()?,
                    role: Role::parse(role).ok()?,
                })
            })
            .collect();
        role = Accounts::broadest(&grants);
        Accounts::Only(grants)
    };
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        role,
        company: r.get(3)?,
        must_change_password: r.get(4)?,
        accounts,
    })
}

pub fn count_users(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?)
}

pub fn list_users(conn: &Connection) -> Result<Vec<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users u ORDER BY u.username");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn find_user_by_name(conn: &Connection, username: &str) -> Result<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users u WHERE u.username = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([username], from_row)
        .optional()?)
}

/// The user and their password hash, for signing in.
pub fn find_login(conn: &Connection, username: &str) -> Result<Option<(User, String)>> {
    let sql = format!("SELECT {COLUMNS}, password_hash FROM users u WHERE u.username = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([username], |r| Ok((from_row(r)?, r.get(NEXT)?)))
        .optional()?)
}

/// Where a user's password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The argon2 hash in `users`.
    Local,
    /// A bind to the directory (`[directory]`); the row's hash never matches.
    Directory,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Local => "local",
            Source::Directory => "directory",
        }
    }

    fn parse(s: &str) -> Source {
        if s == "directory" {
            Source::Directory
        } else {
            Source::Local
        }
    }
}

/// What sign-in needs to know of a user: their password hash, where their password is
/// checked, and whether they have a second factor.
#[derive(Debug, Clone)]
pub struct SignInRow {
    pub user: User,
    pub hash: String,
    pub source: Source,
    pub totp: bool,
}

pub fn find_sign_in(conn: &Connection, username: &str) -> Result<Option<SignInRow>> {
    let sql = format!(
        "SELECT {COLUMNS}, password_hash, source, totp_secret IS NOT NULL FROM users u WHERE u.username = ?1"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([username], |r| {
            Ok(SignInRow {
                user: from_row(r)?,
                hash: r.get(NEXT)?,
                source: Source::parse(&r.get::<_, String>(NEXT + 1)?),
                totp: r.get(NEXT + 2)?,
            })
        })
        .optional()?)
}

/// Each user's source and whether they have a second factor, by user id (for listings).
pub fn list_sign_in_kinds(
    conn: &Connection,
) -> Result<std::collections::HashMap<i64, (Source, bool)>> {
    let mut stmt = conn.prepare_cached("SELECT id, source, totp_secret IS NOT NULL FROM users")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            (Source::parse(&r.get::<_, String>(1)?), r.get::<_, bool>(2)?),
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The hash of a directory user's row: not a PHC string, so no password ever matches it.
pub const DIRECTORY_HASH: &str = "!directory";

/// Creates or updates the row of a directory user at sign-in (role and company from
/// their groups). Returns the user id. A local user of that name is a conflict: local
/// users never become directory users by signing in.
pub fn upsert_directory_user(
    conn: &Connection,
    username: &str,
    role: Role,
    company: &str,
) -> Result<i64> {
    let now = now_secs();
    let existing: Option<(i64, String)> = conn
        .query_row(
            "SELECT id, source FROM users u WHERE u.username = ?1",
            [username],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match existing {
        Some((_, source)) if source != "directory" => Err(Error::Conflict(format!(
            "user `{username}` is a local user"
        ))),
        Some((id, _)) => {
            conn.execute(
                "UPDATE users SET role = ?2, company = ?3, must_change_password = 0,
                        password_hash = ?4, updated_at = ?5 WHERE id = ?1",
                params![id, role.as_str(), company, DIRECTORY_HASH, now],
            )?;
            Ok(id)
        }
        None => {
            conn.execute(
                "INSERT INTO users (username, password_hash, role, company, must_change_password,
                                    created_at, updated_at, source)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5, 'directory')",
                params![username, DIRECTORY_HASH, role.as_str(), company, now],
            )?;
            Ok(conn.last_insert_rowid())
        }
    }
}

/// A user's second factor as stored: the secret (opened), one being enrolled (opened),
/// and the last time step accepted.
pub struct TotpRow {
    pub secret: Option<String>,
    pub pending: Option<String>,
    pub last_step: i64,
}

impl std::fmt::Debug for TotpRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpRow(..)")
    }
}

pub fn find_totp(conn: &Connection, user_id: i64) -> Result<Option<TotpRow>> {
    use super::secrets::{Credential, open_in_sql};
    Ok(conn
        .prepare_cached(
            "SELECT totp_secret, totp_pending, totp_last_step FROM users WHERE id = ?1",
        )?
        .query_row([user_id], |r| {
            let secret: Option<String> = r.get(0)?;
            let pending: Option<String> = r.get(1)?;
            Ok(TotpRow {
                secret: secret
                    .map(|s| open_in_sql(Credential::Totp(user_id), s))
                    .transpose()?,
                pending: pending
                    .map(|s| open_in_sql(Credential::TotpPending(user_id), s))
                    .transpose()?,
                last_step: r.get(2)?,
            })
        })
        .optional()?)
}

/// Stores a secret being enrolled (sealed), replacing any earlier one not confirmed.
pub fn set_totp_pending(conn: &Connection, user_id: i64, secret: &str) -> Result<()> {
    use super::secrets::{Credential, seal_in};
    conn.execute(
        "UPDATE users SET totp_pending = ?2 WHERE id = ?1",
        params![user_id, seal_in(Credential::TotpPending(user_id), secret)],
    )?;
    Ok(())
}

/// Makes the enrolled secret the user's second factor, `step` the last accepted, and
/// replaces their recovery codes with `recovery_hashes`.
pub fn enable_totp(
    conn: &Connection,
    user_id: i64,
    secret: &str,
    step: i64,
    recovery_hashes: &[String],
) -> Result<()> {
    use super::secrets::{Credential, seal_in};
    conn.execute(
        "UPDATE users SET totp_secret = ?2, totp_pending = NULL, totp_last_step = ?3,
                updated_at = ?4 WHERE id = ?1",
        params![
            user_id,
            seal_in(Credential::Totp(user_id), secret),
            step,
            now_secs()
        ],
    )?;
    conn.execute(
        "DELETE FROM totp_recovery_codes WHERE user_id = ?1",
        [user_id],
    )?;
    for h in recovery_hashes {
        conn.execute(
            "INSERT INTO totp_recovery_codes (user_id, code_hash) VALUES (?1, ?2)",
            params![user_id, h],
        )?;
    }
    Ok(())
}

/// Removes a user's second factor and recovery codes.
pub fn disable_totp(conn: &Connection, user_id: i64) -> Result<()> {
    conn.execute(
        "UPDATE users SET totp_secret = NULL, totp_pending = NULL, totp_last_step = 0,
                updated_at = ?2 WHERE id = ?1",
        params![user_id, now_secs()],
    )?;
    conn.execute(
        "DELETE FROM totp_recovery_codes WHERE user_id = ?1",
        [user_id],
    )?;
    Ok(())
}

/// Records `step` as the last accepted, only if it is later than the one recorded: false
/// when another sign-in used this step (or a later one) first.
pub fn advance_totp_step(conn: &Connection, user_id: i64, step: i64) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE users SET totp_last_step = ?2 WHERE id = ?1 AND totp_last_step < ?2",
        params![user_id, step],
    )? == 1)
}

/// Uses a recovery code (by hash): true once, false after (or for an unknown code).
pub fn use_recovery_code(conn: &Connection, user_id: i64, code_hash: &str) -> Result<bool> {
    Ok(conn.execute(
        "UPDATE totp_recovery_codes SET used_at = ?3
         WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL",
        params![user_id, code_hash, now_secs()],
    )? == 1)
}

/// Recovery codes a user has not used yet.
pub fn count_recovery_codes(conn: &Connection, user_id: i64) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM totp_recovery_codes WHERE user_id = ?1 AND used_at IS NULL",
        [user_id],
        |r| r.get(0),
    )?)
}

/// Inserts a user; a taken name is a conflict.
pub fn insert_user(
    conn: &Connection,
    username: &str,
    hash: &str,
    role: Role,
    company: &str,
    must_change: bool,
) -> Result<i64> {
    if find_user_by_name(conn, username)?.is_some() {
        return Err(Error::Conflict(format!("user `{username}` already exists")));
    }
    let now = now_secs();
    conn.execute(
        "INSERT INTO users (username, password_hash, role, company, must_change_password,
                            created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        params![username, hash, role.as_str(), company, must_change, now],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Sets a password hash. `must_change` marks it one-time. Signs the user out everywhere.
pub fn update_password(
    conn: &Connection,
    user_id: i64,
    hash: &str,
    must_change: bool,
) -> Result<()> {
    let n = conn.execute(
        "UPDATE users SET password_hash = ?2, must_change_password = ?3, updated_at = ?4 WHERE id = ?1",
        params![user_id, hash, must_change, now_secs()],
    )?;
    if n == 0 {
        return Err(Error::not_found(format!("user {user_id}")));
    }
    Ok(())
}

pub fn delete_user(conn: &Connection, username: &str) -> Result<()> {
    let n = conn.execute("DELETE FROM users WHERE username = ?1", [username])?;
    if n == 0 {
        return Err(Error::not_found(format!("user `{username}`")));
    }
    Ok(())
}

/// Installation-wide admins (an admin of some accounts cannot manage users).
pub fn count_admins(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM users WHERE role = 'admin' AND all_accounts = 1",
        [],
        |r| r.get(0),
    )?)
}

/// Makes a user act in every account (`None`, with their `users.role`) or only in the
/// accounts of `grants`, each with its role (`users.role` then keeps their broadest).
pub fn set_user_accounts(conn: &Connection, user_id: i64, grants: Option<&[Grant]>) -> Result<()> {
    conn.execute("DELETE FROM user_accounts WHERE user_id = ?1", [user_id])?;
    let n = match grants {
        None => conn.execute(
            "UPDATE users SET all_accounts = 1, updated_at = ?2 WHERE id = ?1",
            params![user_id, now_secs()],
        )?,
        Some(grants) => {
            for g in grants {
                conn.execute(
                    "INSERT INTO user_accounts (user_id, account_id, role) VALUES (?1, ?2, ?3)
                     ON CONFLICT (user_id, account_id) DO UPDATE SET role = excluded.role",
                    params![user_id, g.account_id, g.role.as_str()],
                )?;
            }
            conn.execute(
                "UPDATE users SET all_accounts = 0, role = ?2, updated_at = ?3 WHERE id = ?1",
                params![user_id, Accounts::broadest(grants).as_str(), now_secs()],
            )?
        }
    };
    if n == 0 {
        return Err(Error::not_found(format!("user {user_id}")));
    }
    Ok(())
}

/// The account the console acts on for this user (the switcher), if one was chosen.
pub fn find_current_account(conn: &Connection, user_id: i64) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT current_account_id FROM users WHERE id = ?1")?
        .query_row([user_id], |r| r.get::<_, Option<i64>>(0))
        .optional()?
        .flatten())
}

/// Remembers the account the console acts on for this user.
pub fn set_current_account(conn: &Connection, user_id: i64, account_id: i64) -> Result<()> {
    conn.execute(
        "UPDATE users SET current_account_id = ?2 WHERE id = ?1",
        params![user_id, account_id],
    )?;
    Ok(())
}

/// Stores a new session, signed in.
pub fn insert_session(
    conn: &Connection,
    token_hash: &str,
    user_id: i64,
    csrf: &str,
    lifetime_secs: i64,
) -> Result<()> {
    insert_staged_session(conn, token_hash, user_id, csrf, lifetime_secs, "")
}

/// Stores a new session at `stage`: `""` signed in, `"totp"` waiting for the second
/// factor, `"enrol"` waiting for its enrolment.
pub fn insert_staged_session(
    conn: &Connection,
    token_hash: &str,
    user_id: i64,
    csrf: &str,
    lifetime_secs: i64,
    stage: &str,
) -> Result<()> {
    let now = now_secs();
    conn.execute(
        "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, last_seen, expires_at, stage)
         VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6)",
        params![token_hash, user_id, csrf, now, now + lifetime_secs, stage],
    )?;
    Ok(())
}

/// The user, CSRF token and stage of a live session that is not signed in yet (its stage
/// is not `""`).
pub fn find_staged_session(
    conn: &Connection,
    token_hash: &str,
    idle_secs: i64,
) -> Result<Option<(User, String, String)>> {
    let now = now_secs();
    let sql = format!(
        "SELECT {COLUMNS}, s.csrf_token, s.stage
         FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND s.last_seen > ?2 - ?3 AND s.stage <> ''"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![token_hash, now, idle_secs], |r| {
            Ok((from_row(r)?, r.get(NEXT)?, r.get(NEXT + 1)?))
        })
        .optional()?)
}

/// Moves a session to another stage (`""`: signed in).
pub fn set_session_stage(conn: &Connection, token_hash: &str, stage: &str) -> Result<()> {
    conn.execute(
        "UPDATE sessions SET stage = ?2, last_seen = ?3 WHERE token_hash = ?1",
        params![token_hash, stage, now_secs()],
    )?;
    Ok(())
}

/// The user and CSRF token of a live session, sliding its idle expiry forward: a write at
/// most once a minute, only when the session was last seen over a minute ago (a statement
/// that might write waits for the write lock, which a long bulk job holds while it runs).
/// A slide that cannot be written (the database busy) is left to a later request.
pub fn find_session(
    conn: &Connection,
    token_hash: &str,
    idle_secs: i64,
) -> Result<Option<(User, String)>> {
    let now = now_secs();
    let sql = format!(
        "SELECT {COLUMNS}, s.csrf_token, s.last_seen
         FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND s.last_seen > ?2 - ?3
           AND s.stage = ''"
    );
    let found = conn
        .prepare_cached(&sql)?
        .query_row(params![token_hash, now, idle_secs], |r| {
            Ok((from_row(r)?, r.get(NEXT)?, r.get::<_, i64>(NEXT + 1)?))
        })
        .optional()?;
    let Some((user, csrf, last_seen)) = found else {
        return Ok(None);
    };
    if last_seen < now - 60
        && let Err(e) = conn.execute(
            "UPDATE sessions SET last_seen = ?2 WHERE token_hash = ?1 AND last_seen < ?2 - 60",
            params![token_hash, now],
        )
    {
        log::debug!("sliding a session's idle expiry: {e}");
    }
    Ok(Some((user, csrf)))
}

pub fn delete_session(conn: &Connection, token_hash: &str) -> Result<()> {
    conn.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
    Ok(())
}

/// Signs a user out everywhere (after a password change), except `keep`.
pub fn delete_user_sessions(conn: &Connection, user_id: i64, keep: Option<&str>) -> Result<()> {
    conn.execute(
        "DELETE FROM sessions WHERE user_id = ?1 AND token_hash IS NOT ?2",
        params![user_id, keep],
    )?;
    Ok(())
}

/// Revokes every API token of a user (after a password reset); returns how many.
pub fn delete_user_tokens(conn: &Connection, user_id: i64) -> Result<usize> {
    Ok(conn.execute("DELETE FROM api_tokens WHERE user_id = ?1", [user_id])?)
}

/// Removes expired sessions.
pub fn prune_sessions(conn: &Connection) -> Result<usize> {
    Ok(conn.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now_secs()])?)
}

/// An API token as listed (never the token itself).
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenRow {
    pub id: i64,
    pub username: String,
    pub name: String,
    pub prefix: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

pub fn insert_token(
    conn: &Connection,
    user_id: i64,
    name: &str,
    token_hash: &str,
    prefix: &str,
) -> Result<i64> {
    conn.execute(
        "INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![user_id, name, token_hash, prefix, now_secs()],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Tokens of one user, or of everyone (`None`).
pub fn list_tokens(conn: &Connection, user_id: Option<i64>) -> Result<Vec<TokenRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT t.id, u.username, t.name, t.prefix, t.created_at, t.last_used_at
         FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE ?1 IS NULL OR t.user_id = ?1 ORDER BY t.id",
    )?;
    let rows = stmt.query_map([user_id], |r| {
        Ok(TokenRow {
            id: r.get(0)?,
            username: r.get(1)?,
            name: r.get(2)?,
            prefix: r.get(3)?,
            created_at: r.get(4)?,
            last_used_at: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Revokes a token; `user_id` limits it to that user's tokens.
pub fn delete_token(conn: &Connection, id: i64, user_id: Option<i64>) -> Result<()> {
    let n = conn.execute(
        "DELETE FROM api_tokens WHERE id = ?1 AND (?2 IS NULL OR user_id = ?2)",
        params![id, user_id],
    )?;
    if n == 0 {
        return Err(Error::not_found(format!("API token {id}")));
    }
    Ok(())
}

/// The user of an API token, noting its use: a write at most once a minute, only when the
/// use noted is older (a statement that might write waits for the write lock, which a long
/// bulk job holds while it runs); a note that cannot be written (the database busy) is left
/// to a later request.
pub fn find_token_user(conn: &Connection, token_hash: &str) -> Result<Option<User>> {
    let sql = format!(
        "SELECT {COLUMNS}, t.last_used_at FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = ?1"
    );
    let found = conn
        .prepare_cached(&sql)?
        .query_row([token_hash], |r| {
            Ok((from_row(r)?, r.get::<_, Option<i64>>(NEXT)?))
        })
        .optional()?;
    let Some((user, last_used)) = found else {
        return Ok(None);
    };
    let now = now_secs();
    if last_used.is_none_or(|t| t < now - 60)
        && let Err(e) = conn.execute(
            "UPDATE api_tokens SET last_used_at = ?2 WHERE token_hash = ?1
             AND (last_used_at IS NULL OR last_used_at < ?2 - 60)",
            params![token_hash, now],
        )
    {
        log::debug!("noting an API token's use: {e}");
    }
    Ok(Some(user))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::open_in_memory;

    #[test]
    fn sessions_expire_and_follow_their_user() {
        let conn = open_in_memory().expect("db");
        let id = insert_user(&conn, "alice", "h", Role::Admin, "", false).expect("user");
        assert!(
            insert_user(&conn, "ALICE", "h", Role::Admin, "", false).is_err(),
            "names ignore case"
        );
        insert_session(&conn, "tok", id, "csrf", 3600).expect("session");
        let (u, csrf) = find_session(&conn, "tok", 600)
            .expect("find")
            .expect("live");
        assert_eq!((u.username.as_str(), csrf.as_str()), ("alice", "csrf"));
        insert_session(&conn, "old", id, "c", -1).expect("expired");
        assert!(find_session(&conn, "old", 600).expect("find").is_none());
        delete_user(&conn, "alice").expect("delete");
        assert!(find_session(&conn, "tok", 600).expect("find").is_none());
    }

    #[test]
    fn tokens_are_found_by_hash_and_revoked() {
        let conn = open_in_memory().expect("db");
        let id = insert_user(&conn, "bot", "h", Role::Installer, "acme", false).expect("user");
        let t = insert_token(&conn, id, "ci", "hash1", "zt_ab").expect("token");
        assert_eq!(
            find_token_user(&conn, "hash1")
                .expect("find")
                .map(|u| u.company),
            Some("acme".into())
        );
        assert!(
            delete_token(&conn, t, Some(id + 1)).is_err(),
            "not another user's"
        );
        delete_token(&conn, t, Some(id)).expect("revoke");
        assert!(find_token_user(&conn, "hash1").expect("find").is_none());
    }
}
