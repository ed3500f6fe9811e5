//! Console actions on profiles (Profile Management of seed 000): create, modify and delete
//! under the acting user's role, shared by the admin UI, the API and the CLI.
//!
//! Providers of a company manage the profiles their company created; admins manage all.
//! Files are checked (well-formed XML, known variables) before anything is written, and
//! a profile in use cannot be deleted (the error says by how many devices). Every change
//! is audited (passwords masked).

use rusqlite::Connection;
use serde_json::json;

use super::assoc::Actor;
use super::audit::{self, Change};
use super::ops;
use super::profile::{Profile, ProfileFields};
use super::users::{Action, Role};
use crate::db::{self, profiles};
use crate::error::{Error, FieldError, Result};

fn may_manage(actor: &Actor<'_>, created_by: &str) -> Result<()> {
    actor.user.require(Action::ManageProfiles)?;
    if actor.user.role == Role::Provider
        && !actor.user.company.is_empty()
        && created_by != actor.user.company
    {
        return Err(Error::Forbidden(format!(
            "this profile was created by another company; `{}` manages only profiles of `{}`",
            actor.user.username, actor.user.company
        )));
    }
    Ok(())
}

/// The profile with this name.
pub fn profile(conn: &Connection, actor: &Actor<'_>, name: &str) -> Result<(Profile, String)> {
    let p = profiles::find_profile_by_name(conn, actor.account.id.0, name)?
        .ok_or_else(|| Error::not_found(format!("profile `{name}`")))?;
    let created_by: String = conn.query_row(
        "SELECT created_by FROM profiles WHERE id = ?1",
        [p.id],
        |r| r.get(0),
    )?;
    Ok((p, created_by))
}

/// Creates a profile with its files, recording the creator's company.
pub fn create_profile(
    conn: &mut Connection,
    actor: &Actor<'_>,
    fields: &ProfileFields,
    files: Vec<(String, Vec<u8>)>,
) -> Result<i64> {
    actor.user.require(Action::ManageProfiles)?;
    let id = ops::add_profile(conn, &actor.who, actor.account, fields, files, actor.own)?;
    conn.execute(
        "UPDATE profiles SET created_by = ?2 WHERE id = ?1",
        rusqlite::params![id, actor.user.company],
    )?;
    Ok(id)
}

/// Modifies a profile; `files`, when given, replace its files. Keeps secrets the form left
/// empty (`keep_password`).
pub fn update_profile(
    conn: &mut Connection,
    actor: &Actor<'_>,
    name: &str,
    fields: &ProfileFields,
    files: Option<Vec<(String, Vec<u8>)>>,
    keep_password: bool,
) -> Result<()> {
    let (current, created_by) = profile(conn, actor, name)?;
    may_manage(actor, &created_by)?;
    let mut fields = fields.clone();
    if keep_password && fields.prov_password.is_empty() {
        fields.prov_password = current.fields.prov_password.clone();
    }
    let mut problems = match fields.validate() {
        Ok(()) => Vec::new(),
        Err(Error::Invalid(p)) => p,
        Err(e) => return Err(e),
    };
    actor
        .own
        .check_field("prov_server", &fields.prov_server, &mut problems);
    super::firmware::check_software(conn, &fields.software, &mut problems)?;
    let checked = match files {
        Some(f) => match ops::check_files(f) {
            Ok(f) => Some(f),
            Err(Error::Invalid(p)) => {
                problems.extend(p);
                None
            }
            Err(e) => return Err(e),
        },
        None => None,
    };
    let video = fields.vendor_model == super::polycom::models::VIDEO_VENDOR_MODEL;
    let has_files = checked
        .as_ref()
        .map(|f| !f.is_empty())
        .unwrap_or(!current.files.is_empty());
    if video && has_files {
        problems.push(FieldError::new(
            "file",
            "Polycom Video Endpoint profiles take no configuration file",
        ));
    }
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    db::write_tx(conn, |tx| {
        if fields.name != current.fields.name
            && profiles::find_profile_by_name(tx, actor.account.id.0, &fields.name)?.is_some()
        {
            return Err(Error::Conflict(format!(
                "a profile named `{}` already exists",
                fields.name
            )));
        }
        profiles::update_profile(tx, current.id, &fields, checked.as_deref())?;
        let names = |files: &[super::profile::ProfileFile]| -> Vec<serde_json::Value> {
            files
                .iter()
                .map(|f| json!({"name": f.file_name, "sha256": f.sha256}))
                .collect()
        };
        audit::record(
            tx,
            &actor.who,
            Change::new(Some(actor.account.id.0), "profile.modify", name)
                .before(json!({"fields": current.fields, "files": names(&current.files)}))
                .after(json!({
                    "fields": fields,
                    "files": checked.as_deref().map_or_else(|| names(&current.files), names),
                })),
        )
    })
}

/// Deletes a profile; refused while devices use it, saying how many.
pub fn delete_profile(conn: &mut Connection, actor: &Actor<'_>, name: &str) -> Result<()> {
    let (_, created_by) = profile(conn, actor, name)?;
    may_manage(actor, &created_by)?;
    ops::delete_profile(conn, &actor.who, actor.account, name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ops::OwnAddresses;
    use crate::domain::users::User;

    #[test]
    fn a_profile_is_modified_and_a_used_one_is_not_deleted() {
        let mut conn = db::open_in_memory().expect("db");
        let account = ops::default_account(&conn).expect("account");
        let own = OwnAddresses::default();
        let user = User {
            id: 1,
            username: "p".into(),
            role: Role::Provider,
            company: "acme".into(),
            must_change_password: false,
        };
        let actor = Actor {
            user: &user,
            account: &account,
            own: &own,
            partial_expiry_secs: 60,
            who: crate::domain::audit::Actor::system(),
        };
        let mut f = ProfileFields {
            name: "office".into(),
            vendor_model: "Polycom_UCS_Device".into(),
            prov_password: "secret-1".into(),
            ..Default::default()
        };
        create_profile(
            &mut conn,
            &actor,
            &f,
            vec![("a.cfg".into(), b"<a/>".to_vec())],
        )
        .expect("create");
        f.name = "office2".into();
        f.prov_password.clear();
        update_profile(&mut conn, &actor, "office", &f, None, true).expect("modify");
        let (p, _) = profile(&conn, &actor, "office2").expect("renamed");
        assert_eq!(p.fields.prov_password, "secret-1", "kept");
        assert_eq!(p.files.len(), 1, "files kept");
        let err = update_profile(
            &mut conn,
            &actor,
            "office2",
            &f,
            Some(vec![("b.cfg".into(), b"<a>".to_vec())]),
            true,
        )
        .expect_err("bad xml");
        assert!(err.to_string().contains("b.cfg"), "{err}");
        let other = User {
            company: "globex".into(),
            ..user.clone()
        };
        let actor2 = Actor {
            user: &other,
            ..actor
        };
        assert!(matches!(
            delete_profile(&mut conn, &actor2, "office2"),
            Err(Error::Forbidden(_))
        ));
    }
}
