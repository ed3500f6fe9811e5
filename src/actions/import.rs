//! Bulk association jobs (docs/design.md §8.3): parse the CSV, check every line against the
//! database, then apply the good lines in ONE transaction and record the rejected ones with
//! their line numbers and reasons. The job ends `Completed` or `Completed with Errors` (or
//! `Failed`, with nothing applied, when the file as a whole is refused or the transaction
//! fails). A dry run stops before writing.
//!
//! Checks run outside the write transaction so other writers and the status page are not
//! held up; a MAC that someone associates in between is caught again while applying and
//! rejected on its own line. Progress is written every `PROGRESS_EVERY` lines. A job that
//! applies lines records one audit entry with its counts, in the same transaction.

use std::collections::HashMap;

use rusqlite::Connection;
use serde_json::json;

use super::{Actor, associations};
use crate::db::{self, jobs, profiles, subscribers};
use crate::domain::audit::Change;
use crate::domain::csvimport::{self, Rejected};
use crate::domain::device::NewDevice;
use crate::error::{Error, Result};

const PROGRESS_EVERY: usize = 2000;

/// What was uploaded, and how to treat it.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub file_name: String,
    pub reference_id: Option<String>,
    pub dry_run: bool,
    pub max_rows: usize,
}

/// The newest import jobs the actor may see (of `reference_id` if given): their company's
/// unless they see every device; the account they act in unless they act in every account.
pub fn recent_jobs(
    conn: &Connection,
    actor: &Actor<'_>,
    reference_id: Option<&str>,
    limit: i64,
) -> Result<Vec<jobs::Job>> {
    let company = match actor.user.scope() {
        crate::domain::users::Scope::All => None,
        _ => Some(actor.user.company.as_str()),
    };
    let account = (!actor.user.installation_wide()).then_some(actor.account.id.0);
    jobs::list_jobs(conn, company, reference_id, account, limit)
}

/// The import job `id` names, if the user may see it: a job of an account they do not act
/// in is not found (as one that does not exist); another company's is forbidden.
pub fn job_for(
    conn: &Connection,
    user: &crate::domain::users::User,
    id: &str,
) -> Result<jobs::Job> {
    let id: i64 = id
        .parse()
        .map_err(|_| Error::not_found(format!("import job `{id}`")))?;
    let job = jobs::find_job(conn, id)?
        .filter(|j| user.may_act_in(j.account_id))
        .ok_or_else(|| Error::not_found(format!("import job {id}")))?;
    match user.scope() {
        crate::domain::users::Scope::All => Ok(job),
        _ if job.owner_company == user.company => Ok(job),
        _ => Err(Error::Forbidden(format!(
            "import job {id} belongs to another company"
        ))),
    }
}

/// Creates a queued job for an upload; the caller then runs `run_job` (at once, or on a
/// worker thread so the status page can show progress).
pub fn create_job(conn: &Connection, actor: &Actor<'_>, req: &ImportRequest) -> Result<i64> {
    if let Some(r) = req.reference_id.as_deref().filter(|r| !r.trim().is_empty()) {
        associations::subscriber(conn, actor, r.trim())?;
    }
    let name: String = req
        .file_name
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    jobs::insert_job(
        conn,
        actor.account.id.0,
        &actor.user.username,
        actor.user.owner_company(),
        &name,
        req.reference_id.as_deref().unwrap_or("").trim(),
        req.dry_run,
    )
}

/// Runs a job to its end and returns its final state. Errors of the file as a whole (too
/// many lines, not CSV) end the job `Failed` with the reason; the job row is always
/// finished, so a status page never waits forever.
pub fn run_job(
    conn: &mut Connection,
    actor: &Actor<'_>,
    job_id: i64,
    req: &ImportRequest,
    bytes: &[u8],
) -> Result<jobs::Job> {
    let outcome = process(conn, actor, job_id, req, bytes);
    match outcome {
        // Applied and finished in one transaction (a crash leaves both or neither).
        Ok((_, _, true, _)) => {}
        Ok((applied, rejected, false, note)) => {
            let status = if rejected.is_empty() {
                "Completed"
            } else {
                "Completed with Errors"
            };
            let message = if req.dry_run {
                format!("dry run: {applied} line(s) would be applied, nothing was written{note}")
            } else {
                format!("{applied} device(s) associated{note}")
            };
            jobs::finish_job(conn, job_id, status, applied as i64, &rejected, &message)?;
        }
        Err(e) => {
            let message = match &e {
                Error::Invalid(_)
                | Error::Conflict(_)
                | Error::NotFound { .. }
                | Error::Forbidden(_) => e.to_string(),
                _ => {
                    log::error!("import job {job_id}: {e}");
                    "internal error; nothing was applied (the server log has the details)"
                        .to_string()
                }
            };
            jobs::finish_job(conn, job_id, "Failed", 0, &[], &message)?;
        }
    }
    jobs::find_job(conn, job_id)?.ok_or_else(|| Error::not_found(format!("import job {job_id}")))
}

fn process(
    conn: &mut Connection,
    actor: &Actor<'_>,
    job_id: i64,
    req: &ImportRequest,
    bytes: &[u8],
) -> Result<(usize, Vec<Rejected>, bool, &'static str)> {
    let parsed = csvimport::parse(bytes, req.max_rows)?;
    let note = csvimport::separator_note(parsed.separator);
    // A large file touches many index pages: a bigger page cache keeps them in memory
    // instead of spilling the transaction to the WAL page by page.
    db::set_cache_kib(conn, 65_536)?;
    let total = parsed.total() as i64;
    jobs::update_progress(
        conn,
        job_id,
        "Processing",
        total,
        parsed.rejected.len() as i64,
    )?;
    let mut rejected = parsed.rejected;
    let mut profile_ids: HashMap<String, Option<i64>> = HashMap::new();
    let mut good: Vec<(u64, String, NewDevice, i64)> = Vec::with_capacity(parsed.rows.len());
    for (i, row) in parsed.rows.into_iter().enumerate() {
        if i > 0 && i % PROGRESS_EVERY == 0 {
            jobs::update_progress(
                conn,
                job_id,
                "Processing",
                total,
                (rejected.len() + i) as i64,
            )?;
        }
        let reject = |reason: String| Rejected {
            line: row.line,
            content: row.content.clone(),
            reason,
        };
        // The export's account column: a line of another account is not this import's.
        if !row.account.is_empty() && row.account != actor.account.slug {
            rejected.push(reject(format!(
                "{}: the line is for account `{}`; this import is into `{}`",
                csvimport::ACCOUNT_COLUMN,
                row.account,
                actor.account.slug
            )));
            continue;
        }
        let new = row.device;
        let pid = match profile_ids.get(&new.profile) {
            Some(p) => *p,
            None => {
                let p = profiles::find_profile_by_name(conn, actor.account.id.0, &new.profile)?
                    .map(|p| p.id);
                profile_ids.insert(new.profile.clone(), p);
                p
            }
        };
        let Some(pid) = pid else {
            rejected.push(reject(format!(
                "{}: no profile named `{}`",
                csvimport::column_label("profile"),
                new.profile
            )));
            continue;
        };
        let mut own = Vec::new();
        actor
            .own
            .check_field("prov_server", &new.ext.prov_server, &mut own);
        if !own.is_empty() {
            rejected.push(reject(csvimport::reason_for(&own)));
            continue;
        }
        match associations::check_mac_free(conn, actor, &new.mac) {
            Ok(()) => good.push((row.line, row.content, new, pid)),
            Err(Error::Conflict(m)) => rejected.push(reject(m)),
            Err(e) => return Err(e),
        }
    }
    if req.dry_run {
        rejected.sort_by_key(|r| r.line);
        return Ok((good.len(), rejected, false, note));
    }
    rejected.sort_by_key(|r| r.line);
    let applied = db::write_tx(conn, |tx| {
        let sub = match req.reference_id.as_deref().filter(|r| !r.trim().is_empty()) {
            Some(r) => Some(associations::subscriber(tx, actor, r.trim())?),
            None => None,
        };
        let mut applied = 0;
        for (line, content, new, pid) in &good {
            match crate::db::assoc::insert_association(
                tx,
                actor.account.id.0,
                new,
                *pid,
                sub.as_ref().map(|s| s.id),
                actor.user.owner_company(),
            ) {
                Ok(_) => {
                    super::enrolment::open_until_enrolled(
                        tx,
                        actor.account,
                        &new.mac,
                        &actor.who.name,
                    )?;
                    applied += 1;
                }
                // Associated by someone else since the check: only this line is refused
                // (insert_association writes nothing before it refuses).
                Err(Error::Conflict(m)) => rejected.push(Rejected {
                    line: *line,
                    content: content.clone(),
                    reason: m,
                }),
                Err(e) => return Err(e),
            }
        }
        if let Some(s) = &sub {
            subscribers::refresh_status(tx, s.id, db::now_secs() + actor.partial_expiry_secs)?;
        }
        // One entry per job, with its counts: the devices themselves are in the job.
        crate::db::audit::record(
            tx,
            &actor.who,
            Change::new(
                Some(actor.account.id.0),
                "import.job",
                format!("job {job_id}"),
            )
            .after(json!({
                "file": req.file_name, "reference_id": req.reference_id,
                "total": total, "applied": applied, "rejected": rejected.len(),
            })),
        )?;
        // The job's outcome commits with its associations: a job is never shown as failed
        // (or still running) with its lines applied, nor finished without them.
        rejected.sort_by_key(|r| r.line);
        let status = if rejected.is_empty() {
            "Completed"
        } else {
            "Completed with Errors"
        };
        let message = format!("{applied} device(s) associated{note}");
        jobs::finish_job(tx, job_id, status, applied as i64, &rejected, &message)?;
        Ok(applied)
    })?;
    Ok((applied, rejected, true, note))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::profile::ProfileFields;
    use crate::domain::provserver::OwnAddresses;
    use crate::domain::users::{Role, User};

    fn admin() -> User {
        User {
            id: 1,
            username: "admin".into(),
            role: Role::Admin,
            company: String::new(),
            must_change_password: false,
            accounts: crate::domain::users::Accounts::Installation,
        }
    }

    fn setup() -> (Connection, crate::domain::account::Account) {
        let mut conn = db::open_in_memory().expect("db");
        let account = crate::actions::accounts::default_account(&conn).expect("account");
        let f = ProfileFields {
            name: "profile1".into(),
            vendor_model: "Polycom_UCS_Device".into(),
            ..Default::default()
        };
        crate::actions::testing::add_profile(&mut conn, &account, &f, vec![]).expect("profile");
        (conn, account)
    }

    fn run(
        conn: &mut Connection,
        user: &User,
        account: &crate::domain::account::Account,
        csv: &str,
        dry: bool,
    ) -> (jobs::Job, Vec<Rejected>) {
        let own = OwnAddresses::default();
        let actor = Actor {
            user,
            account,
            own: &own,
            partial_expiry_secs: 3600,
            who: crate::domain::audit::Actor::system(),
        };
        let req = ImportRequest {
            file_name: "t.csv".into(),
            reference_id: None,
            dry_run: dry,
            max_rows: 1000,
        };
        let id = create_job(conn, &actor, &req).expect("job");
        let job = run_job(conn, &actor, id, &req, csv.as_bytes()).expect("run");
        let errors = jobs::list_job_errors(conn, id).expect("errors");
        (job, errors)
    }

    fn count(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM devices", [], |r| r.get(0))
            .expect("count")
    }

    #[test]
    fn bulk_import_keeps_good_rows_and_reports_bad_ones() {
        let (mut conn, account) = setup();
        let csv = "0004f2000001,,,profile1\n0004f2000002,,,nosuchprofile\n0004f2000003,,,profile1,sip.example.com\n0004f2000001,,,profile1\n";
        let (job, errors) = run(&mut conn, &admin(), &account, csv, false);
        assert_eq!(job.status, "Completed with Errors");
        assert_eq!(
            (job.applied_rows, job.rejected_rows, job.total_rows),
            (2, 2, 4)
        );
        assert_eq!(errors[0].line, 2);
        assert!(
            errors[0]
                .reason
                .contains("no profile named `nosuchprofile`"),
            "{}",
            errors[0].reason
        );
        assert_eq!(
            (errors[1].line, errors[1].reason.as_str()),
            (4, "duplicate of line 1")
        );
        assert_eq!(count(&conn), 2);
        let log: Vec<_> = crate::db::audit::list_entries(&conn, None, 10)
            .expect("audit")
            .into_iter()
            .filter(|e| e.action == "import.job")
            .collect();
        assert_eq!(log.len(), 1, "one entry per job: {log:?}");
        let after = log[0].after.as_ref().expect("after");
        assert_eq!(
            (after["applied"].as_u64(), after["rejected"].as_u64()),
            (Some(2), Some(2))
        );
        // Re-uploading only the corrected line works.
        let (job, _) = run(
            &mut conn,
            &admin(),
            &account,
            "0004f2000002,,,profile1\n",
            false,
        );
        assert_eq!(job.status, "Completed");
        assert_eq!(count(&conn), 3);
    }

    #[test]
    fn the_account_column_takes_lines_of_this_account_only() {
        let (mut conn, account) = setup();
        let csv = format!(
            "0004f2000001,,,profile1,,,,,,,,,,,{}\n0004f2000002,,,profile1,,,,,,,,,,,elsewhere\n\
             0004f2000003,,,profile1\n",
            account.slug
        );
        let (job, errors) = run(&mut conn, &admin(), &account, &csv, false);
        assert_eq!((job.applied_rows, job.rejected_rows), (2, 1));
        assert_eq!(errors[0].line, 2);
        assert!(
            errors[0].reason.contains("column 15 (Account)")
                && errors[0].reason.contains("`elsewhere`"),
            "{}",
            errors[0].reason
        );
    }

    #[test]
    fn a_dry_run_writes_nothing_and_a_refused_file_applies_nothing() {
        let (mut conn, account) = setup();
        let (job, _) = run(
            &mut conn,
            &admin(),
            &account,
            "0004f2000001,,,profile1\n",
            true,
        );
        assert_eq!((job.status.as_str(), job.applied_rows), ("Completed", 1));
        assert_eq!(count(&conn), 0);
        let big: String = (0..1001)
            .map(|i| format!("0004f2{i:06x},,,profile1\n"))
            .collect();
        let (job, _) = run(&mut conn, &admin(), &account, &big, false);
        assert_eq!(job.status, "Failed");
        assert!(job.message.contains("1000"), "{}", job.message);
        assert_eq!(count(&conn), 0, "nothing half-written");
    }

    #[test]
    fn a_mac_of_another_company_is_rejected_with_that_reason() {
        let (mut conn, account) = setup();
        let acme = User {
            id: 2,
            username: "a".into(),
            role: Role::Installer,
            company: "acme".into(),
            must_change_password: false,
            accounts: crate::domain::users::Accounts::Installation,
        };
        let other = User {
            id: 3,
            username: "b".into(),
            role: Role::Installer,
            company: "globex".into(),
            must_change_password: false,
            accounts: crate::domain::users::Accounts::Installation,
        };
        run(
            &mut conn,
            &acme,
            &account,
            "0004f2000001,,,profile1\n",
            false,
        );
        let (job, errors) = run(
            &mut conn,
            &other,
            &account,
            "0004f2000001,,,profile1\n0004f2000002,,,profile1\n",
            false,
        );
        assert_eq!(job.applied_rows, 1);
        assert!(
            errors[0].reason.contains("already associated elsewhere"),
            "{}",
            errors[0].reason
        );
    }

    #[test]
    fn a_failure_while_applying_leaves_nothing_half_written() {
        let (mut conn, account) = setup();
        conn.execute_batch(
            "CREATE TRIGGER boom BEFORE INSERT ON devices WHEN NEW.mac = '0004f2000003'
             BEGIN SELECT RAISE(ABORT, 'disk on fire'); END;",
        )
        .expect("trigger");
        let csv = "0004f2000001,,,profile1\n0004f2000002,,,profile1\n0004f2000003,,,profile1\n";
        let (job, _) = run(&mut conn, &admin(), &account, csv, false);
        assert_eq!(job.status, "Failed");
        assert!(
            job.message.contains("nothing was applied"),
            "{}",
            job.message
        );
        assert_eq!(
            count(&conn),
            0,
            "the lines before the failure were rolled back too"
        );
        let lines: i64 = conn
            .query_row("SELECT count(*) FROM device_lines", [], |r| r.get(0))
            .expect("lines");
        assert_eq!(lines, 0);
    }

    #[test]
    fn a_reference_id_links_every_line_and_completes_it() {
        let (mut conn, account) = setup();
        let own = OwnAddresses::default();
        let user = admin();
        let actor = Actor {
            user: &user,
            account: &account,
            own: &own,
            partial_expiry_secs: 3600,
            who: crate::domain::audit::Actor::system(),
        };
        let s = crate::domain::subscriber::SubscriberInput {
            reference_id: "REF001".into(),
            ..Default::default()
        };
        crate::actions::associations::create_subscriber(&mut conn, &actor, &s).expect("subscriber");
        let req = ImportRequest {
            file_name: "t.csv".into(),
            reference_id: Some("REF001".into()),
            dry_run: false,
            max_rows: 10,
        };
        let id = create_job(&conn, &actor, &req).expect("job");
        run_job(
            &mut conn,
            &actor,
            id,
            &req,
            b"0004f2000001,,,profile1\n0004f2000002,,,profile1\n",
        )
        .expect("run");
        let sub = crate::db::subscribers::find_subscriber(&conn, "REF001")
            .expect("find")
            .expect("present");
        assert_eq!(
            (sub.status.as_str(), sub.devices, sub.expires_at),
            ("complete", 2, None)
        );
        let missing = ImportRequest {
            reference_id: Some("NOPE1".into()),
            ..req
        };
        assert!(matches!(
            create_job(&conn, &actor, &missing),
            Err(Error::NotFound { .. })
        ));
    }
}
