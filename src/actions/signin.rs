//! Signing in and out of the console, sessions, API tokens and user management: the
//! actions behind the sign-in page, the API's bearer tokens and `zerotouch user`.
//!
//! Session cookies and API tokens are random; only their SHA-256 hashes are stored, so a
//! copy of the database signs nobody in. Passwords are argon2 hashes. The first start
//! creates an `admin` user with a one-time password that must be changed at first sign-in.
//! Every change to users and tokens is audited (never a password or a token's secret).

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde_json::json;

use crate::db::{self, users as q};
use crate::domain::audit::{Actor, Change};
use crate::domain::throttle::{LoginThrottle, Verdict};
use crate::domain::users::{self, Role, User};
use crate::error::{Error, FieldError, Result};

/// Prefix of API tokens, so they are recognisable in logs and secret scanners.
pub const TOKEN_PREFIX: &str = "zt_";

/// A new session: the cookie value (shown once) and its CSRF token.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub user: User,
    pub token: String,
    pub csrf: String,
    /// Whether the session is signed in, or waits for the second factor.
    pub stage: Stage,
}

/// Hash under which a token is stored.
pub fn token_hash(token: &str) -> String {
    crate::domain::sha256_hex(token.as_bytes())
}

/// Creates the first admin when there are no users; returns its one-time password.
pub fn bootstrap_admin(conn: &Connection) -> Result<Option<String>> {
    if q::count_users(conn)? > 0 {
        return Ok(None);
    }
    let password = users::one_time_password();
    q::insert_user(
        conn,
        "admin",
        &users::hash_password(&password)?,
        Role::Admin,
        "",
        true,
    )?;
    Ok(Some(password))
}

/// Password checks running at once, and waiting, across the process: argon2 takes about
/// 19 MiB per check, so unbounded concurrent sign-ins grew memory by a gigabyte (200 at
/// once). Past the queue, a sign-in is answered 503 with Retry-After at once.
struct HashGate {
    state: Mutex<(usize, usize)>,
    freed: Condvar,
    /// Working memory of the checks, one per slot, reused (`users::HashMemory`).
    memory: Mutex<Vec<users::HashMemory>>,
}

static HASH_GATE: HashGate = HashGate {
    state: Mutex::new((0, 0)),
    freed: Condvar::new(),
    memory: Mutex::new(Vec::new()),
};

/// Checks running at once: one per core, at least two.
fn hash_slots() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}

/// Checks that may wait for a slot.
const HASH_QUEUE: usize = 16;
/// Longest wait for a slot before answering busy.
const HASH_WAIT: Duration = Duration::from_secs(5);

/// Runs a password check (`f`, given the slot's working memory) in a slot of the
/// process-wide gate, or says busy.
pub fn bounded_hash<T>(f: impl FnOnce(&mut users::HashMemory) -> T) -> Result<T> {
    let slots = hash_slots();
    {
        let mut s = HASH_GATE.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.0 >= slots {
            if s.1 >= HASH_QUEUE {
                return Err(Error::Busy(2));
            }
            s.1 += 1;
            let deadline = Instant::now() + HASH_WAIT;
            while s.0 >= slots {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    s.1 -= 1;
                    return Err(Error::Busy(2));
                }
                s = HASH_GATE
                    .freed
                    .wait_timeout(s, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            s.1 -= 1;
        }
        s.0 += 1;
    }
    // Released however `f` ends.
    struct Release;
    impl Drop for Release {
        fn drop(&mut self) {
            let mut s = HASH_GATE.state.lock().unwrap_or_else(|p| p.into_inner());
            s.0 -= 1;
            HASH_GATE.freed.notify_one();
        }
    }
    let _release = Release;
    let mut memory = HASH_GATE
        .memory
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .pop()
        .unwrap_or_default();
    let out = f(&mut memory);
    HASH_GATE
        .memory
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(memory);
    Ok(out)
}

/// Waits the pause the rate limit puts on attempts for `username` from `ip` (a name
/// guessed from many addresses: `domain::throttle`), or refuses a blocked one. Called
/// before `sign_in`, holding nothing: no database connection, no place in the
/// password-check queue.
pub fn wait_turn(throttle: &LoginThrottle, ip: &str, username: &str) -> Result<()> {
    match throttle.check(ip, username.trim(), Instant::now()) {
        Verdict::Blocked(wait) => Err(Error::TooManyAttempts(wait)),
        Verdict::Proceed(pause) => {
            if !pause.is_zero() {
                std::thread::sleep(pause);
            }
            Ok(())
        }
    }
}

/// What sign-in needs of the configuration: the directory (if on) and the roles that
/// must use a second factor.
#[derive(Debug, Clone, Default)]
pub struct SignInPolicy {
    pub directory: Option<crate::config::DirectoryConfig>,
    pub totp_required: Vec<Role>,
}

impl SignInPolicy {
    pub fn from_config(c: &crate::config::Config) -> SignInPolicy {
        SignInPolicy {
            directory: c.directory.enabled.then(|| c.directory.clone()),
            totp_required: Role::ALL
                .into_iter()
                .filter(|r| c.auth.totp_required(*r))
                .collect(),
        }
    }
}

/// How far a new session is signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Signed in.
    SignedIn,
    /// The password was right; the second factor (TOTP or a recovery code) is next.
    Totp,
    /// The password was right; the user's role requires a second factor they have not
    /// enrolled: enrolment is next.
    Enrol,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::SignedIn => "",
            Stage::Totp => "totp",
            Stage::Enrol => "enrol",
        }
    }
}

/// Checks a user name and password under the rate limit and opens a session (after
/// `wait_turn`). A local user's password is checked here, always, even with a directory
/// configured (break-glass); any other name is checked against the directory when one is
/// configured. A user with a second factor, or whose role requires one, gets a session
/// that is not signed in yet (`Stage`).
pub fn sign_in(
    conn: &Connection,
    throttle: &LoginThrottle,
    policy: &SignInPolicy,
    ip: &str,
    username: &str,
    password: &str,
    lifetime_secs: i64,
) -> Result<NewSession> {
    let username = username.trim();
    let now = Instant::now();
    // The pause, if any, was waited in `wait_turn`.
    if let Verdict::Blocked(wait) = throttle.check(ip, username, now) {
        return Err(Error::TooManyAttempts(wait));
    }
    let found = q::find_sign_in(conn, username)?;
    let local = found.as_ref().filter(|f| f.source == q::Source::Local);
    let (user, totp) = match (local, &policy.directory) {
        (None, Some(dir)) => match super::directory::authenticate(dir, username, password)? {
            super::directory::Outcome::Accepted(d) => {
                let before = found
                    .as_ref()
                    .map(|f| (f.user.role, f.user.company.clone()));
                let id = db::atomic(conn, |tx| {
                    let id = q::upsert_directory_user(tx, &d.username, d.role, &d.company)?;
                    // The accounts the groups give, at every sign-in (a mapping naming an
                    // account that does not exist gives nothing).
                    let grants = if d.accounts.is_empty() {
                        None
                    } else {
                        let mut grants = Vec::new();
                        for (slug, role) in &d.accounts {
                            if let Some(a) = db::accounts::find_by_slug(tx, slug)? {
                                grants.push(users::Grant {
                                    account_id: a.id.0,
                                    role: *role,
                                });
                            }
                        }
                        if grants.is_empty() {
                            return Err(Error::Forbidden(
                                "Your directory groups name accounts this server does not \
                                 have. Ask an administrator to check the group mapping."
                                    .into(),
                            ));
                        }
                        Some(grants)
                    };
                    q::set_user_accounts(tx, id, grants.as_deref())?;
                    let after = json!({
                        "username": d.username, "role": d.role.as_str(),
                        "company": d.company, "source": "directory",
                        "accounts": d.accounts.iter().map(|(a, r)| json!({"account": a, "role": r.as_str()})).collect::<Vec<_>>(),
                    });
                    match &before {
                        None => crate::db::audit::record(
                            tx,
                            &Actor::system(),
                            Change::new(None, "user.add", d.username.clone()).after(after),
                        )?,
                        Some((role, company)) if *role != d.role || *company != d.company => {
                            crate::db::audit::record(
                                tx,
                                &Actor::system(),
                                Change::new(None, "user.directory-role", d.username.clone())
                                    .before(json!({"role": role.as_str(), "company": company}))
                                    .after(after),
                            )?
                        }
                        Some(_) => {}
                    }
                    Ok(id)
                })?;
                let row = q::find_sign_in(conn, &d.username)?
                    .filter(|r| r.user.id == id)
                    .ok_or_else(|| Error::not_found("user"))?;
                (row.user, row.totp)
            }
            super::directory::Outcome::Refused => {
                throttle.failure(ip, username, now);
                return Err(Error::Unauthorized);
            }
            super::directory::Outcome::NoMappedGroup => {
                throttle.failure(ip, username, now);
                return Err(Error::Forbidden(
                    "Your directory account is in no group allowed to use zerotouch. Ask an \
                     administrator to add you to one."
                        .into(),
                ));
            }
        },
        _ => {
            let hash = local
                .map(|f| f.hash.as_str())
                .unwrap_or(users::dummy_hash());
            let ok = bounded_hash(|memory| users::verify_password_in(password, hash, memory))?;
            match local {
                Some(f) if ok => (f.user.clone(), f.totp),
                _ => {
                    throttle.failure(ip, username, now);
                    return Err(Error::Unauthorized);
                }
            }
        }
    };
    throttle.success(ip, username, now);
    let stage = if totp {
        Stage::Totp
    } else if policy.totp_required.contains(&user.role) {
        Stage::Enrol
    } else {
        Stage::SignedIn
    };
    let token = crate::domain::account::random_token(40);
    let csrf = crate::domain::account::random_token(32);
    q::insert_staged_session(
        conn,
        &token_hash(&token),
        user.id,
        &csrf,
        lifetime_secs,
        stage.as_str(),
    )?;
    Ok(NewSession {
        user,
        token,
        csrf,
        stage,
    })
}

/// The user and CSRF token of a session cookie, if it is live.
pub fn session(conn: &Connection, token: &str, idle_secs: i64) -> Result<Option<(User, String)>> {
    if token.is_empty() || token.len() > 100 {
        return Ok(None);
    }
    q::find_session(conn, &token_hash(token), idle_secs)
}

pub fn sign_out(conn: &Connection, token: &str) -> Result<()> {
    q::delete_session(conn, &token_hash(token))
}

/// Changes the signed-in user's own password (the current one is needed), ends their
/// other sessions, and clears a one-time password's flag.
pub fn change_password(
    conn: &mut Connection,
    user: &User,
    current: &str,
    new: &str,
    repeat: &str,
    keep_session: Option<&str>,
) -> Result<()> {
    let mut p = Vec::new();
    users::check_password("new_password", new, &mut p);
    if new != repeat {
        p.push(FieldError::new(
            "repeat_password",
            "does not match the new password",
        ));
    }
    if new == current {
        p.push(FieldError::new(
            "new_password",
            "must differ from the current password",
        ));
    }
    let row = q::find_sign_in(conn, &user.username)?.ok_or_else(|| Error::not_found("user"))?;
    if row.source == q::Source::Directory {
        return Err(Error::invalid(
            "current_password",
            "your password is managed by the directory: change it there",
        ));
    }
    let hash = row.hash;
    if !users::verify_password(current, &hash) {
        p.insert(
            0,
            FieldError::new("current_password", "is not your current password"),
        );
    }
    if !p.is_empty() {
        return Err(Error::Invalid(p));
    }
    let new_hash = users::hash_password(new)?;
    let keep = keep_session.map(token_hash);
    db::write_tx(conn, |tx| {
        q::update_password(tx, user.id, &new_hash, false)?;
        q::delete_user_sessions(tx, user.id, keep.as_deref())?;
        crate::db::audit::record(
            tx,
            &Actor::person(&user.username),
            Change::new(None, "user.change-password", user.username.clone()),
        )
    })
}

/// Creates a user. Without a password, a one-time password is generated and returned.
pub fn create_user(
    conn: &mut Connection,
    who: &Actor,
    username: &str,
    role: Role,
    company: &str,
    password: Option<&str>,
) -> Result<(i64, Option<String>)> {
    create_user_in(conn, who, username, (role, None), company, password)
}

/// Creates a user acting in every account with `role.0` (`role.1` `None`), or only in the
/// accounts typed as `(slug, role)`, each with its role (checked, an unknown account named
/// under `account_role`), in one transaction. Without a password, a one-time password is
/// generated and returned.
pub fn create_user_in(
    conn: &mut Connection,
    who: &Actor,
    username: &str,
    role: (Role, Option<&[(String, Role)]>),
    company: &str,
    password: Option<&str>,
) -> Result<(i64, Option<String>)> {
    let (role, accounts) = role;
    let mut p = Vec::new();
    users::check_username(username, &mut p);
    match accounts {
        None => users::check_company(role, company, &mut p),
        Some([]) => p.push(FieldError::new(
            "account_role",
            "give at least one ACCOUNT=ROLE, or let the user act in every account",
        )),
        Some(typed) => {
            for (_, r) in typed {
                users::check_company(*r, company, &mut p);
            }
            p.dedup();
        }
    }
    if let Some(pw) = password {
        users::check_password("password", pw, &mut p);
    }
    if !p.is_empty() {
        return Err(Error::Invalid(p));
    }
    let (pw, one_time) = match password {
        Some(pw) => (pw.to_string(), None),
        None => {
            let pw = users::one_time_password();
            (pw.clone(), Some(pw))
        }
    };
    let hash = users::hash_password(&pw)?;
    let id = db::write_tx(conn, |tx| {
        let id = q::insert_user(
            tx,
            username,
            &hash,
            role,
            company.trim(),
            one_time.is_some(),
        )?;
        if let Some(typed) = accounts {
            let grants = super::tenants::grants_of(tx, "account_role", typed)?;
            q::set_user_accounts(tx, id, Some(&grants))?;
        }
        crate::db::audit::record(
            tx,
            who,
            Change::new(None, "user.add", username).after(json!({
                "username": username, "role": role.as_str(), "company": company.trim(),
                "one_time_password": one_time.is_some(),
                "accounts": accounts.map(|t| t
                    .iter()
                    .map(|(a, r)| json!({"account": a, "role": r.as_str()}))
                    .collect::<Vec<_>>()),
            })),
        )?;
        Ok(id)
    })?;
    Ok((id, one_time))
}

/// Sets a new one-time password for a user (or the given one), signing them out and
/// revoking their API tokens: a reset is what an admin does when the account may be in
/// someone else's hands, and a token is as good as the password.
pub fn reset_password(
    conn: &mut Connection,
    who: &Actor,
    username: &str,
    password: Option<&str>,
) -> Result<Option<String>> {
    let user = q::find_user_by_name(conn, username)?
        .ok_or_else(|| Error::not_found(format!("user `{username}`")))?;
    if let Some(pw) = password {
        let mut p = Vec::new();
        users::check_password("password", pw, &mut p);
        if !p.is_empty() {
            return Err(Error::Invalid(p));
        }
    }
    let (pw, one_time) = match password {
        Some(pw) => (pw.to_string(), None),
        None => {
            let pw = users::one_time_password();
            (pw.clone(), Some(pw))
        }
    };
    let hash = users::hash_password(&pw)?;
    db::write_tx(conn, |tx| {
        q::update_password(tx, user.id, &hash, one_time.is_some())?;
        q::delete_user_sessions(tx, user.id, None)?;
        let revoked = q::delete_user_tokens(tx, user.id)?;
        crate::db::audit::record(
            tx,
            who,
            Change::new(None, "user.reset-password", username)
                .after(json!({"one_time_password": one_time.is_some(), "tokens_revoked": revoked})),
        )
    })?;
    Ok(one_time)
}

/// Deletes a user; the last admin cannot be deleted.
pub fn delete_user(conn: &mut Connection, who: &Actor, username: &str) -> Result<()> {
    db::write_tx(conn, |tx| {
        let user = q::find_user_by_name(tx, username)?
            .ok_or_else(|| Error::not_found(format!("user `{username}`")))?;
        if user.role == Role::Admin && q::count_admins(tx)? <= 1 {
            return Err(Error::Conflict(format!(
                "`{username}` is the last admin; create another admin first"
            )));
        }
        q::delete_user(tx, username)?;
        crate::db::audit::record(
            tx,
            who,
            Change::new(None, "user.delete", username).before(json!({
                "username": user.username, "role": user.role.as_str(), "company": user.company,
            })),
        )
    })
}

/// Creates an API token for a user; the token is returned once and stored hashed.
pub fn create_token(conn: &mut Connection, who: &Actor, user: &User, name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control()) {
        return Err(Error::invalid(
            "name",
            "must be 1 to 64 printable characters",
        ));
    }
    let token = format!("{TOKEN_PREFIX}{}", crate::domain::account::random_token(40));
    db::write_tx(conn, |tx| {
        q::insert_token(tx, user.id, name, &token_hash(&token), &token[..8])?;
        crate::db::audit::record(
            tx,
            who,
            Change::new(
                None,
                "token.create",
                format!("{} ({})", name, user.username),
            )
            .after(json!({"name": name, "user": user.username, "prefix": &token[..8]})),
        )
    })?;
    Ok(token)
}

/// Revokes an API token; `only_of` limits it to that user's tokens.
pub fn revoke_token(
    conn: &mut Connection,
    who: &Actor,
    id: i64,
    only_of: Option<i64>,
) -> Result<()> {
    db::write_tx(conn, |tx| {
        let row = q::list_tokens(tx, only_of)?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or_else(|| Error::not_found(format!("API token {id}")))?;
        q::delete_token(tx, id, only_of)?;
        crate::db::audit::record(
            tx,
            who,
            Change::new(
                None,
                "token.revoke",
                format!("{} ({})", row.name, row.username),
            )
            .before(json!({"name": row.name, "user": row.username, "prefix": row.prefix})),
        )
    })
}

/// The user of a bearer token.
pub fn token_user(conn: &Connection, token: &str) -> Result<Option<User>> {
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 100 {
        return Ok(None);
    }
    q::find_token_user(conn, &token_hash(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::throttle::ThrottleLimits;
    use std::time::Duration;

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(ThrottleLimits {
            per_user: 3,
            per_ip: 10,
            window: Duration::from_secs(60),
            block: Duration::from_secs(60),
        })
    }

    #[test]
    fn the_first_admin_signs_in_with_the_one_time_password_and_must_change_it() {
        let mut conn = db::open_in_memory().expect("db");
        let pw = bootstrap_admin(&conn).expect("bootstrap").expect("created");
        assert!(
            bootstrap_admin(&conn).expect("again").is_none(),
            "only once"
        );
        let t = throttle();
        let s = sign_in(
            &conn,
            &t,
            &SignInPolicy::default(),
            "127.0.0.1",
            "admin",
            &pw,
            3600,
        )
        .expect("sign in");
        assert!(s.user.must_change_password);
        let err = change_password(
            &mut conn,
            &s.user,
            "wrong",
            "a-new-password-1",
            "a-new-password-1",
            None,
        )
        .expect_err("wrong");
        assert!(err.to_string().contains("current_password"), "{err}");
        change_password(
            &mut conn,
            &s.user,
            &pw,
            "a-new-password-1",
            "a-new-password-1",
            Some(&s.token),
        )
        .expect("change");
        let (u, _) = session(&conn, &s.token, 600)
            .expect("session")
            .expect("kept");
        assert!(!u.must_change_password);
    }

    #[test]
    fn wrong_passwords_are_throttled_but_not_forever() {
        let mut conn = db::open_in_memory().expect("db");
        create_user(
            &mut conn,
            &Actor::system(),
            "kim",
            Role::Viewer,
            "",
            Some("kims-password-1"),
        )
        .expect("user");
        let t = throttle();
        for _ in 0..3 {
            assert!(matches!(
                sign_in(
                    &conn,
                    &t,
                    &SignInPolicy::default(),
                    "10.0.0.1",
                    "kim",
                    "nope",
                    60
                ),
                Err(Error::Unauthorized)
            ));
        }
        assert!(matches!(
            sign_in(
                &conn,
                &t,
                &SignInPolicy::default(),
                "10.0.0.1",
                "kim",
                "kims-password-1",
                60
            ),
            Err(Error::TooManyAttempts(_))
        ));
    }

    #[test]
    fn tokens_work_until_revoked_and_the_last_admin_stays() {
        let mut conn = db::open_in_memory().expect("db");
        bootstrap_admin(&conn).expect("admin");
        let admin = q::find_user_by_name(&conn, "admin")
            .expect("find")
            .expect("admin");
        let who = Actor::person("admin");
        let token = create_token(&mut conn, &who, &admin, "ci").expect("token");
        assert_eq!(
            token_user(&conn, &token).expect("lookup").map(|u| u.id),
            Some(admin.id)
        );
        assert!(token_user(&conn, "zt_wrong").expect("lookup").is_none());
        assert!(delete_user(&mut conn, &who, "admin").is_err());
        let id = q::list_tokens(&conn, None).expect("tokens")[0].id;
        revoke_token(&mut conn, &who, id, None).expect("revoke");
        assert!(token_user(&conn, &token).expect("lookup").is_none());
        let log = crate::db::audit::list_entries(&conn, None, 10).expect("audit");
        let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["token.revoke", "token.create"]);
        let text = format!("{:?}", log);
        assert!(
            !text.contains(&token[8..]),
            "the token's secret is never logged: {text}"
        );
    }
}
