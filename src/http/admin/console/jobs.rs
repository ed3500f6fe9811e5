//! Device jobs (`actions::device_jobs`): a long bulk action or apply-now started from the
//! device list runs on a thread of its own, with its own database connection, and
//! `GET /accounts/<slug>/jobs/<id>` shows it — the action, "N of M devices", a `<progress>`
//! bar and the time it has taken, reloading itself (`Nav::refresh`, no JavaScript) until it
//! ends, then its outcome with links back to the device list and the audit log. A job is
//! found only in its own account: anyone else gets 404.

use maud::html;
use rouille::Response;

use super::{Console, Ctx, html_page};
use crate::actions::device_jobs::{self, Work};
use crate::db::device_jobs::DeviceJob;
use crate::domain::account::Account;
use crate::domain::users::User;
use crate::error::Result;
use crate::http::admin::views;

/// The page of job `id` of `account`.
pub fn path(account: &Account, id: i64) -> String {
    format!("/accounts/{}/jobs/{id}", account.slug)
}

/// Creates the job for confirmed `work` and runs it on its own thread; returns its id.
pub fn start(
    c: &Console,
    user: &User,
    account: &Account,
    who: crate::domain::audit::Actor,
    work: Work,
) -> Result<i64> {
    let id = {
        let mut actor = c.actor(user, account);
        actor.who = who.clone();
        device_jobs::create(&*c.conn()?, &actor, &work)?
    };
    let pool = c.pool.clone();
    let own = c.own.clone();
    let registry = c.jobs.clone();
    let user = user.clone();
    let account = account.clone();
    let expiry = (c.config().console.partial_expiry_hours * 3600) as i64;
    let spawned = std::thread::Builder::new()
        .name(format!("job-{id}"))
        .spawn(move || {
            let actor = crate::actions::Actor {
                user: &user,
                account: &account,
                own: &own,
                partial_expiry_secs: expiry,
                who,
            };
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut conn = pool.get()?;
                device_jobs::run(&mut conn, &actor, id, &work, &registry)
            }));
            match ran {
                Ok(Ok(_)) => return,
                Ok(Err(e)) => log::error!("device job {id}: {e}"),
                Err(_) => log::error!("device job {id}: its thread panicked"),
            }
            // The row always ends, so its page never waits forever.
            match pool.get() {
                Ok(conn) => device_jobs::abandon(&conn, &registry, id),
                Err(e) => log::error!("device job {id}: {e}"),
            }
        });
    if let Err(e) = spawned {
        log::error!("cannot start device job {id}: {e}");
        device_jobs::abandon(&*c.conn()?, &c.jobs, id);
    }
    Ok(id)
}

/// "12 s", "3 min 4 s", "1 h 2 min".
fn duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

fn state_label(j: &DeviceJob) -> &'static str {
    match j.state.as_str() {
        "queued" => "Queued",
        "running" => "Running",
        "done" => "Done",
        "failed" => "Failed",
        _ => "Interrupted",
    }
}

/// `GET /accounts/<slug>/jobs/<id>`
pub fn page(c: &Console, ctx: &Ctx, a: &Account, id: &str) -> Result<Response> {
    let actor = c.actor(&ctx.user, a);
    let j = device_jobs::job_for(&*c.conn()?, &actor, &c.jobs, id)?;
    let mut nav = ctx.nav("inventory");
    if !j.is_finished() {
        nav.refresh = Some(1);
    }
    let start = j.started_at.unwrap_or(j.created_at);
    let elapsed = j.finished_at.unwrap_or_else(crate::db::now_secs) - start;
    let back = format!("/accounts/{}/inventory", a.slug);
    let waiting = j.kind == "apply-now" && !j.is_finished() && j.total > 0 && j.done == j.total;
    Ok(html_page(
        200,
        views::page(
            &format!("Job {}", j.id),
            &nav,
            html! {
                div.narrow.wide {
                    h1 { (j.description) }
                    table.kv {
                        tr { th { "Status" } td { strong class=(format!("status {}", j.state)) { (state_label(&j)) } } }
                        tr { th { "Devices" } td { span.job-count { (j.done) " of " (j.total) " devices" } } }
                        tr { th { "Progress" } td { progress max=(j.total.max(1)) value=(j.done) { (j.done) " of " (j.total) } } }
                        tr { th { @if j.is_finished() { "Took" } @else { "Elapsed" } } td { (duration(elapsed)) } }
                        tr { th { "Started by" } td { (j.username) } }
                    }
                    @if !j.is_finished() {
                        p.muted {
                            @if waiting { "Every device was sent check-sync; waiting for the phones to fetch their configuration. " }
                            "This page reloads itself until the job ends; you may leave it, the job goes on."
                        }
                    } @else if j.state == "done" {
                        div.notice role="status" { (j.outcome) }
                    } @else {
                        div.errors role="alert" { p { (j.outcome) } }
                    }
                    p { a href=(back) { "Back to the device list" } " · " a href="/audit" { "Audit log" } }
                }
            },
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::duration;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(-3), "0 s");
        assert_eq!(duration(59), "59 s");
        assert_eq!(duration(184), "3 min 4 s");
        assert_eq!(duration(3720), "1 h 2 min");
    }
}
