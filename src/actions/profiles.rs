//! Profiles (Profile Management of the ZTP guide): create, modify and delete under the acting
//! user's role — one path for the console, the API and the CLI.
//!
//! Providers of a company manage the profiles their company created; admins (and the CLI's
//! operator) manage all. Fields and files are checked — well-formed XML, known variables
//! (built-in and custom), provisioning-server fields that do not name this server, software
//! versions in the catalogue — before anything is written; a refused input leaves nothing
//! behind. Files are also linted (`domain::lint`), parameter names and values against the
//! parameter dictionary too: those findings are warnings returned to the caller, except a
//! near miss of a known name (`reg.1.adress`), which refuses the profile naming file, line
//! and parameter. A profile in use cannot be deleted (the error says by how
//! many devices). Every change is audited (passwords masked). A stored file is read back
//! with the values of secret parameters masked; as stored only by users allowed to see
//! secrets, and that read is audited too.

use rusqlite::Connection;
use serde_json::json;

use super::Actor;
use crate::db::{self, profiles};
use crate::domain::lint::{self, LintFinding, Transport};
use crate::domain::polycom::models::VIDEO_VENDOR_MODEL;
use crate::domain::profile::{self, Profile, ProfileFields, ProfileFile};
use crate::domain::template::Vars;
use crate::domain::users::{Action, Role};
use crate::error::{Error, FieldError, Result};

/// A profile's files as uploaded: name and bytes.
pub type Upload = Vec<(String, Vec<u8>)>;

/// How phones fetch profile files under `config` (the lint's secrets check): over plain
/// HTTP when the device HTTP listener is on.
pub fn transport(config: &crate::config::Config) -> Transport {
    if config.device_http_addr().is_some() {
        Transport::PlainHttp
    } else {
        Transport::HttpsOnly
    }
}

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

/// The actor's account's profiles, each with the devices the actor sees among those using
/// it: an installer's count is their company's devices, as Find lists them.
pub fn list_profiles(
    conn: &Connection,
    actor: &Actor<'_>,
) -> Result<Vec<crate::db::profiles::ProfileSummary>> {
    crate::db::profiles::list_profiles_seen_by(conn, actor.account.id.0, &actor.user.scope())
}

/// The profile with this name in the actor's account, and the company that created it.
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

/// One stored file of a profile of the actor's account, by its exact name, with the values
/// of parameters the dictionary marks secret masked (as the preview masks them). `None`
/// for a name the profile does not hold: the name is only ever compared, never a path.
pub fn profile_file(
    conn: &Connection,
    actor: &Actor<'_>,
    name: &str,
    file: &str,
) -> Result<Option<(String, String)>> {
    let (p, _) = profile(conn, actor, name)?;
    Ok(p.files.into_iter().find(|f| f.file_name == file).map(|f| {
        (
            f.file_name,
            crate::domain::xml::mask_secret_values(&String::from_utf8_lossy(&f.content)),
        )
    }))
}

/// One stored file of a profile as stored, secrets included: only for users allowed to see
/// secrets (`Action::ManageSettings`, as the preview's "show secrets"), and recorded in the
/// audit log. `None` for a name the profile does not hold.
pub fn reveal_profile_file(
    conn: &mut Connection,
    actor: &Actor<'_>,
    name: &str,
    file: &str,
) -> Result<Option<(String, Vec<u8>)>> {
    actor.user.require(Action::ManageSettings)?;
    let (p, _) = profile(conn, actor, name)?;
    let Some(f) = p.files.into_iter().find(|f| f.file_name == file) else {
        return Ok(None);
    };
    db::write_tx(conn, |tx| {
        db::audit::record(
            tx,
            &actor.who,
            crate::domain::audit::Change::new(
                Some(actor.account.id.0),
                "profile.file-secrets",
                format!("{name}/{file}"),
            ),
        )
    })?;
    Ok(Some((f.file_name, f.content)))
}

/// Checks a profile's files against the built-in and the custom variables of `conn`; the
/// errors name each file.
pub fn check_files(conn: &Connection, files: Upload) -> Result<Vec<ProfileFile>> {
    let vars = super::templating::check_vars(conn)?;
    check_files_with(files, &vars)
}

/// Checks a profile's files; `vars` says which variables exist besides the built-ins.
pub fn check_files_with(files: Upload, vars: &Vars) -> Result<Vec<ProfileFile>> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for (name, content) in files {
        match profile::check_file(&name, content, vars) {
            Ok(f) => out.push(f),
            Err(Error::Invalid(p)) => problems.extend(p),
            Err(e) => return Err(e),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(Error::Invalid(problems))
    }
}

/// Lints files in CONFIG_FILES order, with the custom variables of `conn` and the
/// account's deliberate parameter names known: warnings, except near misses of known
/// parameter names (`lint::near_miss_problems`), which refuse the profile. `transport`
/// says whether phones fetch them over plain HTTP (the secrets check).
pub fn lint_files(
    conn: &Connection,
    account: &crate::domain::account::Account,
    files: &Upload,
    transport: Transport,
) -> Result<Vec<LintFinding>> {
    let vars = super::templating::check_vars(conn)?;
    let deliberate = super::params::deliberate_names(conn, account)?;
    Ok(lint::lint_files_with(files, transport, &vars, &deliberate))
}

/// Every problem of `fields` and `files` for a profile, each naming its field or file;
/// `current_files` tells whether a profile keeping its files has any; `lint` holds the
/// files' lint findings (their near misses refuse the profile).
fn check_profile(
    conn: &Connection,
    actor: &Actor<'_>,
    fields: &ProfileFields,
    files: Option<Upload>,
    current_files: bool,
    lint: &[LintFinding],
) -> Result<Option<Vec<ProfileFile>>> {
    let mut problems = match fields.validate() {
        Ok(()) => Vec::new(),
        Err(Error::Invalid(p)) => p,
        Err(e) => return Err(e),
    };
    problems.extend(lint::near_miss_problems(lint));
    actor
        .own
        .check_field("prov_server", &fields.prov_server, &mut problems);
    super::firmware::check_software(conn, &fields.software, &mut problems)?;
    let checked = match files {
        Some(f) => match check_files(conn, f) {
            Ok(f) => Some(f),
            Err(Error::Invalid(p)) => {
                problems.extend(p);
                None
            }
            Err(e) => return Err(e),
        },
        None => None,
    };
    let has_files = checked.as_ref().map_or(current_files, |f| !f.is_empty());
    if fields.vendor_model == VIDEO_VENDOR_MODEL && has_files {
        problems.push(FieldError::new(
            "file",
            "Polycom Video Endpoint profiles take no configuration file",
        ));
    }
    if problems.is_empty() {
        Ok(checked)
    } else {
        Err(Error::Invalid(problems))
    }
}

fn file_names(files: &[ProfileFile]) -> Vec<serde_json::Value> {
    files
        .iter()
        .map(|f| json!({"name": f.file_name, "sha256": f.sha256}))
        .collect()
}

/// Creates a profile with its files, recording the creator's company. Returns its id and
/// the lint findings of its files (warnings for the caller to show).
pub fn create_profile(
    conn: &mut Connection,
    actor: &Actor<'_>,
    fields: &ProfileFields,
    files: Upload,
    transport: Transport,
) -> Result<(i64, Vec<LintFinding>)> {
    actor.user.require(Action::ManageProfiles)?;
    let lint = lint_files(conn, actor.account, &files, transport)?;
    let files = check_profile(conn, actor, fields, Some(files), false, &lint)?.unwrap_or_default();
    let id = db::write_tx(conn, |tx| {
        let id = profiles::insert_profile(tx, actor.account.id.0, fields, &files)?;
        tx.execute(
            "UPDATE profiles SET created_by = ?2 WHERE id = ?1",
            rusqlite::params![id, actor.user.company],
        )?;
        actor.record(
            tx,
            actor.change("profile.add", &fields.name).after(json!({
                "fields": fields,
                "files": file_names(&files),
            })),
        )?;
        Ok(id)
    })?;
    Ok((id, lint))
}

/// Modifies a profile; `files`, when given, replace its files. Keeps the stored password
/// when the form left it empty (`keep_password`). Returns the lint findings of the new
/// files.
pub fn update_profile(
    conn: &mut Connection,
    actor: &Actor<'_>,
    name: &str,
    fields: &ProfileFields,
    files: Option<Upload>,
    keep_password: bool,
    transport: Transport,
) -> Result<Vec<LintFinding>> {
    let (current, created_by) = profile(conn, actor, name)?;
    may_manage(actor, &created_by)?;
    let mut fields = fields.clone();
    if keep_password && fields.prov_password.is_empty() {
        fields.prov_password = current.fields.prov_password.clone();
    }
    // An address sent back as shown (its password masked) keeps the stored one.
    if crate::domain::provserver::is_masked_form_of(
        &fields.prov_server,
        &current.fields.prov_server,
    ) {
        fields.prov_server = current.fields.prov_server.clone();
    }
    let lint = match &files {
        Some(f) => lint_files(conn, actor.account, f, transport)?,
        None => Vec::new(),
    };
    let checked = check_profile(
        conn,
        actor,
        &fields,
        files,
        !current.files.is_empty(),
        &lint,
    )?;
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
        actor.record(
            tx,
            actor
                .change("profile.modify", name)
                .before(json!({"fields": current.fields, "files": file_names(&current.files)}))
                .after(json!({
                    "fields": fields,
                    "files": checked.as_deref().map_or_else(|| file_names(&current.files), file_names),
                })),
        )
    })?;
    Ok(lint)
}

/// Deletes a profile; refused while devices use it, saying how many.
pub fn delete_profile(conn: &mut Connection, actor: &Actor<'_>, name: &str) -> Result<()> {
    let (_, created_by) = profile(conn, actor, name)?;
    may_manage(actor, &created_by)?;
    db::write_tx(conn, |tx| {
        let p = profiles::find_profile_by_name(tx, actor.account.id.0, name)?
            .ok_or_else(|| Error::not_found(format!("profile `{name}`")))?;
        profiles::delete_profile(tx, p.id, name)?;
        actor.record(
            tx,
            actor
                .change("profile.delete", name)
                .before(json!({"fields": p.fields})),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::polycom::models::UCS_VENDOR_MODEL;
    use crate::domain::provserver::OwnAddresses;
    use crate::domain::users::User;

    fn own() -> OwnAddresses {
        OwnAddresses {
            hosts: vec!["prov.example.com".into(), "10.0.0.5".into()],
            http_ports: vec![80],
            https_ports: Vec::new(),
            tftp_ports: Vec::new(),
            ftp_ports: Vec::new(),
        }
    }

    fn fields(name: &str) -> ProfileFields {
        ProfileFields {
            name: name.into(),
            vendor_model: UCS_VENDOR_MODEL.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_profile_is_modified_and_a_used_one_is_not_deleted() {
        let mut conn = db::open_in_memory().expect("db");
        let account = super::super::accounts::default_account(&conn).expect("account");
        let own = OwnAddresses::default();
        let user = User {
            id: 1,
            username: "p".into(),
            role: Role::Provider,
            company: "acme".into(),
            must_change_password: false,
            accounts: crate::domain::users::Accounts::Installation,
        };
        let actor = Actor {
            user: &user,
            account: &account,
            own: &own,
            partial_expiry_secs: 60,
            who: crate::domain::audit::Actor::system(),
        };
        let mut f = ProfileFields {
            prov_password: "secret-1".into(),
            ..fields("office")
        };
        create_profile(
            &mut conn,
            &actor,
            &f,
            vec![("a.cfg".into(), b"<a/>".to_vec())],
            Transport::PlainHttp,
        )
        .expect("create");
        f.name = "office2".into();
        f.prov_password.clear();
        update_profile(
            &mut conn,
            &actor,
            "office",
            &f,
            None,
            true,
            Transport::PlainHttp,
        )
        .expect("modify");
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
            Transport::PlainHttp,
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

    #[test]
    fn a_server_field_pointing_here_is_refused() {
        let mut conn = db::open_in_memory().expect("db");
        let account = super::super::accounts::default_account(&conn).expect("account");
        let user = super::super::operator("root");
        let own = own();
        let actor = Actor {
            user: &user,
            account: &account,
            own: &own,
            partial_expiry_secs: 60,
            who: crate::domain::audit::Actor::system(),
        };
        let here = ProfileFields {
            prov_server: "http://u:p@prov.example.com/".into(),
            ..fields("p1")
        };
        let err = create_profile(&mut conn, &actor, &here, vec![], Transport::PlainHttp)
            .expect_err("refused");
        assert!(err.to_string().starts_with("prov_server:"), "{err}");
        let elsewhere = ProfileFields {
            prov_server: "http://other.example.com/".into(),
            ..here
        };
        create_profile(&mut conn, &actor, &elsewhere, vec![], Transport::PlainHttp)
            .expect("another server is fine");
    }

    #[test]
    fn a_refused_profile_leaves_nothing_behind() {
        let mut conn = db::open_in_memory().expect("db");
        let account = super::super::accounts::default_account(&conn).expect("account");
        let user = super::super::operator("root");
        let own = own();
        let actor = Actor {
            user: &user,
            account: &account,
            own: &own,
            partial_expiry_secs: 60,
            who: crate::domain::audit::Actor::system(),
        };
        let files = vec![
            ("good.cfg".to_string(), b"<a x.y=\"1\"/>".to_vec()),
            ("bad.cfg".to_string(), b"<a>".to_vec()),
        ];
        let err = create_profile(
            &mut conn,
            &actor,
            &fields("p1"),
            files,
            Transport::PlainHttp,
        )
        .expect_err("bad file");
        assert!(err.to_string().contains("bad.cfg"), "{err}");
        assert!(
            profiles::list_profiles(&conn, account.id.0)
                .expect("list")
                .is_empty()
        );
    }

    #[test]
    fn lint_warnings_come_back_without_refusing_the_profile() {
        let mut conn = db::open_in_memory().expect("db");
        let account = super::super::accounts::default_account(&conn).expect("account");
        let user = super::super::operator("root");
        let own = own();
        let actor = Actor {
            user: &user,
            account: &account,
            own: &own,
            partial_expiry_secs: 60,
            who: crate::domain::audit::Actor::system(),
        };
        let files = vec![(
            "site.cfg".to_string(),
            b"<a device.sntp.serverName=\"x\"/>".to_vec(),
        )];
        let (_, lint) = create_profile(
            &mut conn,
            &actor,
            &fields("p1"),
            files,
            Transport::PlainHttp,
        )
        .expect("stored despite warnings");
        let codes: Vec<&str> = lint.iter().map(|f| f.code.as_str()).collect();
        assert!(codes.contains(&"lint.device-without-set"), "{codes:?}");
    }

    #[test]
    fn an_update_knows_the_custom_variables_like_a_creation() {
        let mut conn = db::open_in_memory().expect("db");
        let account = super::super::accounts::default_account(&conn).expect("account");
        let user = super::super::operator("root");
        let own = OwnAddresses::default();
        let actor = Actor {
            user: &user,
            account: &account,
            own: &own,
            partial_expiry_secs: 60,
            who: crate::domain::audit::Actor::system(),
        };
        super::super::templating::set_custom_variable(&mut conn, &actor.who, "SITE_NTP", "ntp.lan")
            .expect("variable");
        let file = || {
            vec![(
                "a.cfg".to_string(),
                b"<a tcpIpApp.sntp.address=\"${SITE_NTP}\"/>".to_vec(),
            )]
        };
        create_profile(
            &mut conn,
            &actor,
            &fields("p1"),
            file(),
            Transport::PlainHttp,
        )
        .expect("create with a custom variable");
        update_profile(
            &mut conn,
            &actor,
            "p1",
            &fields("p1"),
            Some(file()),
            true,
            Transport::PlainHttp,
        )
        .expect("update with the same custom variable");
    }
}
