//! The second factor of console users (TOTP, RFC 6238): enrolment (a secret kept sealed
//! and pending until the user confirms it with a code, then recovery codes shown once),
//! the check at sign-in (a code accepted once: the last accepted time step is stored; or
//! a recovery code, each usable once), and its removal by an admin. API tokens never pass
//! here. Wrong codes count against the sign-in throttle like wrong passwords.

use std::time::Instant;

use rusqlite::Connection;
use serde_json::json;

use super::signin::token_hash;
use crate::db::{self, users as q};
use crate::domain::audit::{Actor, Change};
use crate::domain::throttle::{LoginThrottle, Verdict};
use crate::domain::totp::{self, TotpSecret};
use crate::domain::users::User;
use crate::error::{Error, Result};

/// The issuer authenticator apps show next to the account.
pub const ISSUER: &str = "zerotouch";

fn now_unix() -> u64 {
    u64::try_from(db::now_secs()).unwrap_or(0)
}

/// Whether a user has a second factor.
pub fn enabled(conn: &Connection, user: &User) -> Result<bool> {
    Ok(q::find_totp(conn, user.id)?.is_some_and(|t| t.secret.is_some()))
}

/// The secret being enrolled, made (and stored sealed) if there is none yet, so a reload
/// of the enrolment page shows the same one.
pub fn start_enrolment(conn: &Connection, user: &User) -> Result<TotpSecret> {
    let row = q::find_totp(conn, user.id)?.ok_or_else(|| Error::not_found("user"))?;
    if let Some(p) = row.pending {
        return Ok(TotpSecret::from_base32(&p));
    }
    let secret = TotpSecret::generate();
    q::set_totp_pending(conn, user.id, secret.base32())?;
    Ok(secret)
}

/// Confirms the enrolment with a code of the pending secret; returns the recovery codes
/// (shown once, stored hashed).
pub fn confirm_enrolment(conn: &Connection, user: &User, code: &str) -> Result<Vec<String>> {
    let row = q::find_totp(conn, user.id)?.ok_or_else(|| Error::not_found("user"))?;
    let Some(pending) = row.pending else {
        return Err(Error::invalid(
            "code",
            "no enrolment is in progress: open the page again",
        ));
    };
    let secret = TotpSecret::from_base32(&pending);
    let Some(step) = secret.accept(code, now_unix(), 0) else {
        return Err(Error::invalid(
            "code",
            "is not the code your authenticator app shows now",
        ));
    };
    let codes = totp::recovery_codes();
    let hashes: Vec<String> = codes.iter().map(|c| totp::recovery_hash(c)).collect();
    db::atomic(conn, |tx| {
        q::enable_totp(tx, user.id, secret.base32(), step as i64, &hashes)?;
        crate::db::audit::record(
            tx,
            &Actor::person(&user.username),
            Change::new(None, "user.totp-enrol", user.username.clone())
                .after(json!({"recovery_codes": hashes.len()})),
        )
    })?;
    Ok(codes)
}

/// Checks the second factor of a session waiting for it (`code`: six digits, or a
/// recovery code) under the sign-in throttle. Wrong: `Unauthorized`, counted.
pub fn check(
    conn: &Connection,
    throttle: &LoginThrottle,
    ip: &str,
    user: &User,
    code: &str,
) -> Result<()> {
    let now = Instant::now();
    if let Verdict::Blocked(wait) = throttle.check(ip, &user.username, now) {
        return Err(Error::TooManyAttempts(wait));
    }
    let ok = if totp::is_recovery_code(code) {
        let used = q::use_recovery_code(conn, user.id, &totp::recovery_hash(code))?;
        if used {
            crate::db::audit::record(
                conn,
                &Actor::person(&user.username),
                Change::new(None, "user.totp-recovery-code", user.username.clone())
                    .after(json!({"recovery_codes_left": q::count_recovery_codes(conn, user.id)?})),
            )?;
        }
        used
    } else {
        let row = q::find_totp(conn, user.id)?.ok_or_else(|| Error::not_found("user"))?;
        match row.secret.map(|s| TotpSecret::from_base32(&s)) {
            Some(secret) => {
                let last = u64::try_from(row.last_step).unwrap_or(0);
                match secret.accept(code, now_unix(), last) {
                    // Recorded only if no other sign-in took this step meanwhile.
                    Some(step) => q::advance_totp_step(conn, user.id, step as i64)?,
                    None => false,
                }
            }
            None => false,
        }
    };
    if ok {
        throttle.success(ip, &user.username, now);
        Ok(())
    } else {
        throttle.failure(ip, &user.username, now);
        Err(Error::Unauthorized)
    }
}

/// Marks a session signed in (after its second factor or enrolment).
pub fn finish_sign_in(conn: &Connection, token: &str) -> Result<()> {
    q::set_session_stage(conn, &token_hash(token), "")
}

/// Removes a user's second factor (an admin, for a user who lost it): signs them out
/// everywhere; their role may make them enrol again at the next sign-in.
pub fn remove(conn: &mut Connection, who: &Actor, username: &str) -> Result<()> {
    let user = q::find_user_by_name(conn, username)?
        .ok_or_else(|| Error::not_found(format!("user `{username}`")))?;
    db::write_tx(conn, |tx| {
        q::disable_totp(tx, user.id)?;
        q::delete_user_sessions(tx, user.id, None)?;
        crate::db::audit::record(
            tx,
            who,
            Change::new(None, "user.totp-remove", username.to_string()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::signin::{self, SignInPolicy, Stage};
    use crate::domain::throttle::ThrottleLimits;
    use crate::domain::users::Role;
    use std::time::Duration;

    #[test]
    fn enrolment_then_sign_in_needs_a_fresh_code_or_an_unused_recovery_code() {
        let mut conn = db::open_in_memory().expect("db");
        signin::create_user(
            &mut conn,
            &Actor::system(),
            "kim",
            Role::Admin,
            "",
            Some("kims-password-1"),
        )
        .expect("user");
        let t = LoginThrottle::new(ThrottleLimits {
            per_user: 20,
            per_ip: 20,
            window: Duration::from_secs(60),
            block: Duration::from_secs(60),
        });
        let policy = SignInPolicy {
            directory: None,
            totp_required: vec![Role::Admin],
        };
        let s = signin::sign_in(&conn, &t, &policy, "10.0.0.1", "kim", "kims-password-1", 60)
            .expect("password");
        assert_eq!(s.stage, Stage::Enrol);
        assert!(signin::session(&conn, &s.token, 600).expect("s").is_none());
        let secret = start_enrolment(&conn, &s.user).expect("start");
        assert_eq!(
            start_enrolment(&conn, &s.user).expect("again").base32(),
            secret.base32()
        );
        assert!(confirm_enrolment(&conn, &s.user, "abcdef").is_err());
        let code = secret.code_at(now_unix()).expect("code");
        let recovery = confirm_enrolment(&conn, &s.user, &code).expect("confirm");
        finish_sign_in(&conn, &s.token).expect("finish");
        assert!(signin::session(&conn, &s.token, 600).expect("s").is_some());
        // The next sign-in asks for a code; the one used at enrolment is refused.
        let s2 = signin::sign_in(&conn, &t, &policy, "10.0.0.1", "kim", "kims-password-1", 60)
            .expect("password");
        assert_eq!(s2.stage, Stage::Totp);
        assert!(matches!(
            check(&conn, &t, "10.0.0.1", &s2.user, &code),
            Err(Error::Unauthorized)
        ));
        check(&conn, &t, "10.0.0.1", &s2.user, &recovery[0]).expect("recovery");
        assert!(check(&conn, &t, "10.0.0.1", &s2.user, &recovery[0]).is_err());
        let log = format!(
            "{:?}",
            crate::db::audit::list_entries(&conn, None, 20).expect("audit")
        );
        assert!(!log.contains(secret.base32()), "{log}");
    }
}
