//! "Apply now": SIP check-sync to a device or a selection (MACs, a group, a site, the
//! account), shared by the CLI (`device apply-now`), the API (`POST
//! /api/v1/devices/apply-now`) and the console's device page.
//!
//! Count, then confirm: phones the state machine knows will restart (pending `device.*`
//! values, new software, `alwaysReboot`) are counted first (`impact`) and nothing is sent
//! without confirmation. Then each device's target is decided by `domain::checksync` —
//! only the address of its latest proven request (recorded by
//! `Provisioner::note_proven_address`), else the admin's fallback, inside `sip.networks`,
//! on its effective `voIpProt.SIP.local.port` — and requests go out in waves at
//! `sip.rate_per_sec`, restarting phones at most `sip.reboot_share_percent` of a site per
//! wave. The report gives each device's outcome and each change as "applied" (the phone
//! fetched its configuration after the send and the state machine no longer has it
//! pending) or "waiting for next poll". One audit entry per apply-now.

mod send;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use super::Actor;
use super::render::DeviceData;
use crate::config::SipConfig;
use crate::db::{self, credentials, policies};
use crate::domain::checksync::{self, Known, NotSent, Origin};
use crate::domain::device::Device;
use crate::domain::enrolment::Access;
use crate::domain::firmware::{firmware_state, same_version};
use crate::domain::mac::Mac;
use crate::domain::provstate::{self, Reach};
use crate::domain::users::Action;
use crate::error::{Error, Result};
use crate::sip::{DigestCredentials, Method, Outcome, RequestSpec, Sender};

pub use send::{Job, send_all};

/// Which devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Macs(Vec<String>),
    Group(String),
    Site(String),
    /// Every associated device of the actor's account.
    Account,
    /// The devices a change the actor just made affects (`after_change`, which the change's
    /// own permission already allowed).
    AfterChange(Vec<String>),
}

impl Selection {
    fn describe(&self) -> String {
        match self {
            Selection::Macs(m) if m.len() == 1 => m[0].clone(),
            Selection::Macs(m) => format!("{} devices", m.len()),
            Selection::Group(g) => format!("group {g}"),
            Selection::Site(s) => format!("site {s}"),
            Selection::Account => "every device of the account".into(),
            Selection::AfterChange(m) => format!("{} devices after a change", m.len()),
        }
    }
}

/// One change and whether it reached the phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeState {
    /// `configuration` (its files), or a pending `device.*` parameter.
    pub change: String,
    /// `applied` or `waiting for next poll`.
    pub state: &'static str,
}

/// What happened to one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceResult {
    pub mac: String,
    /// `answered`, `challenged`, `unreachable`, `failed` or `not sent`.
    pub result: &'static str,
    /// The SIP status of a final response.
    pub status: Option<u16>,
    /// Why (not sent, unreachable, challenged) or the reason phrase.
    pub detail: String,
    /// Where it was sent, and whether that is its proven address or the admin's.
    pub target: Option<String>,
    pub origin: Option<&'static str>,
    /// The wave it was sent in (0 first).
    pub wave: Option<usize>,
    /// Why check-sync restarts it (empty: it only re-reads its configuration).
    pub restarts: Vec<String>,
    pub changes: Vec<ChangeState>,
}

/// The report of one apply-now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub sent: usize,
    pub answered: usize,
    /// Sent through the PBX command (exit code 0), among `sent`.
    pub via_pbx: usize,
    pub unreachable: usize,
    pub not_sent: usize,
    pub restarts: usize,
    pub waves: usize,
    /// Devices that fetched their configuration after the send.
    pub repolled: usize,
    /// Milliseconds spent deciding each device's target and restarts, and sending (all
    /// waves, until every transaction ended).
    pub planned_ms: u64,
    pub sent_ms: u64,
    pub devices: Vec<DeviceResult>,
}

impl Report {
    /// What apply-now did, in words (the console's result page, a job's outcome).
    pub fn summary(&self) -> String {
        let pbx = if self.via_pbx > 0 {
            format!(" ({} through the PBX)", self.via_pbx)
        } else {
            String::new()
        };
        format!(
            "Check-sync sent to {} device(s){pbx}: {} answered, {} unreachable, {} not sent (no \
             proven address or outside the device networks), {} restart(s).",
            self.sent, self.answered, self.unreachable, self.not_sent, self.restarts
        )
    }
}

/// One device, planned.
struct Planned {
    device: Device,
    site: Option<i64>,
    target: std::result::Result<(SocketAddr, Origin), NotSent>,
    user: Option<String>,
    creds: Option<DigestCredentials>,
    restarts: Vec<String>,
    pending: Vec<String>,
    /// Reached through the PBX command (`sip.pbx_command`) instead of our own check-sync.
    via_pbx: bool,
}

impl Planned {
    /// Whether apply-now reaches it at all: at its own target, or through the PBX.
    fn reachable(&self) -> bool {
        self.via_pbx || self.target.is_ok()
    }
}

/// The devices of `sel` in the actor's account, in order.
fn select(conn: &Connection, actor: &Actor<'_>, sel: &Selection) -> Result<Vec<Device>> {
    let account = actor.account.id.0;
    // One device: whoever may change it; a group, a site or the account reaches every
    // device of a scope, like a policy.
    match sel {
        Selection::AfterChange(_) => {}
        Selection::Macs(_) => actor.user.require(Action::Associate)?,
        _ => actor.user.require(Action::ManagePolicies)?,
    }
    let macs: Vec<String> = match sel {
        Selection::Macs(m) if m.is_empty() => {
            return Err(Error::invalid("devices", "name at least one device"));
        }
        Selection::Macs(m) | Selection::AfterChange(m) => m.clone(),
        Selection::Group(name) => {
            let g = policies::find_group(conn, account, name)?
                .ok_or_else(|| Error::not_found(format!("group `{name}`")))?;
            policies::list_members(conn, g.id)?
        }
        Selection::Site(name) => {
            let s = policies::find_site(conn, account, name)?
                .ok_or_else(|| Error::not_found(format!("site `{name}`")))?;
            policies::list_site_devices(conn, s.id)?
        }
        Selection::Account => {
            let mut stmt = conn.prepare_cached(
                "SELECT mac FROM devices WHERE account_id = ?1 AND profile_id IS NOT NULL
                 ORDER BY mac",
            )?;
            let rows = stmt.query_map([account], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        }
    };
    let mut out = Vec::with_capacity(macs.len());
    for m in macs {
        let mac: Mac = m
            .parse()
            .map_err(|_| Error::invalid("devices", format!("`{m}` is not a MAC address")))?;
        // A device another company associated is refused (scope), as on its page.
        let d = super::associations::device(conn, actor, &mac)?;
        let d = Some(d)
            .filter(|d| d.account_id == account && d.profile_id.is_some())
            .ok_or_else(|| Error::not_found(format!("associated device {mac}")))?;
        if !out.iter().any(|o: &Device| o.id == d.id) {
            out.push(d);
        }
    }
    Ok(out)
}

/// Plans each device: its target, its line, and why check-sync restarts it.
fn plan(
    conn: &Connection,
    actor: &Actor<'_>,
    cfg: &SipConfig,
    list: Vec<Device>,
) -> Result<Vec<Planned>> {
    let account = actor.account;
    let settings = credentials::load_settings(conn, account.id)?;
    let history = credentials::load_history(conn, account.id)?;
    let context = super::templating::load_context(conn)?;
    let networks = cfg.device_networks();
    let mut profiles: HashMap<i64, std::sync::Arc<crate::domain::profile::Profile>> =
        HashMap::new();
    let mut out = Vec::with_capacity(list.len());
    for device in list {
        let Some(pid) = device.profile_id else {
            continue;
        };
        let profile = match profiles.get(&pid) {
            Some(p) => p.clone(),
            None => {
                let p = std::sync::Arc::new(
                    db::profiles::find_profile_by_id(conn, pid)?
                        .ok_or_else(|| Error::not_found("profile"))?,
                );
                profiles.insert(pid, p.clone());
                p
            }
        };
        let data = DeviceData::load(
            conn,
            device.clone(),
            Some(account),
            Some(&settings),
            Some(profile),
        )?;
        let reach = reach_of(&data, account);
        let (access, held) = super::render::access_as(account, &data, super::render::As::Device);
        let effective: BTreeMap<String, String> = data
            .effective_settings(
                account,
                &reach,
                access,
                super::render::pair(&held),
                None,
                &context,
            )
            .unwrap_or_default()
            .into_iter()
            .map(|p| (p.name, p.value))
            .collect();
        let get = |k: &str| effective.get(k).map(String::as_str);
        let pending = pending_device_values(&data, account, &reach, &history);
        let new_software = new_software(conn, &data)?;
        let restarts = checksync::restart_reasons(
            &pending,
            new_software.as_deref(),
            get(checksync::ALWAYS_REBOOT_PARAM),
        );
        let known = crate::db::sip::find_device_sip(conn, device.id)?
            .map(|s| Known {
                proven_ip: s.proven_ip,
                override_ip: s.override_ip,
                override_port: s.override_port,
            })
            .unwrap_or_default();
        let line = get("reg.1.address").filter(|a| !a.trim().is_empty());
        let target = checksync::sip_port(get(checksync::PORT_PARAM))
            .and_then(|port| {
                checksync::udp_transport(
                    get("reg.1.server.1.transport").or(get("voIpProt.server.1.transport")),
                )?;
                Ok(port)
            })
            .and_then(|port| {
                if line.is_none() {
                    return Err(NotSent::NoLine);
                }
                checksync::target(&known, port, &networks)
            });
        // The line's credentials answer a phone's Digest challenge: only towards the
        // address the device proved is its own, never the admin's fallback.
        let creds = match (
            &target,
            get("reg.1.auth.userId"),
            get("reg.1.auth.password"),
        ) {
            (Ok((_, Origin::Proven)), Some(user), Some(password)) if !password.is_empty() => {
                Some(DigestCredentials {
                    user: user.to_string(),
                    password: password.to_string(),
                    expected_realm: Some(
                        get(checksync::REALM_PARAM)
                            .filter(|r| !r.is_empty())
                            .unwrap_or(checksync::DEFAULT_VALIDATION_REALM)
                            .to_string(),
                    ),
                })
            }
            _ => None,
        };
        let site = policies::device_site(conn, device.id)?.map(|s| s.id);
        let via_pbx = cfg.pbx_enabled() && checksync::through_pbx(cfg.pbx_for, &target);
        out.push(Planned {
            via_pbx,
            user: line.and_then(checksync::line_user),
            device,
            site,
            target,
            creds,
            restarts,
            pending,
        });
    }
    Ok(out)
}

/// The address the device's files are rendered for: the server name the phone confirmed
/// (so its own address is not counted as a pending change), else this account's path.
fn reach_of(data: &DeviceData, account: &crate::domain::account::Account) -> Reach {
    let base_path = if account.is_default {
        "/".to_string()
    } else {
        account.service_path()
    };
    let confirmed = data
        .state
        .get("device.prov.serverName")
        .and_then(|s| s.confirmed.clone())
        .unwrap_or_default();
    let host = confirmed
        .split('/')
        .next()
        .filter(|h| !h.is_empty())
        .unwrap_or("localhost")
        .to_string();
    Reach {
        host,
        base_path,
        secure: false,
    }
}

/// The `device.*` values the state machine has pending for the device, judged with the
/// credentials it is known to hold: its current own credential once it used it, else the
/// account's current pair when its latest request used the current generation.
fn pending_device_values(
    data: &DeviceData,
    account: &crate::domain::account::Account,
    reach: &Reach,
    history: &crate::domain::autosync::History,
) -> Vec<String> {
    let mac = data.device.mac.to_string();
    let own = data
        .credential
        .as_ref()
        .filter(|c| c.confirmed_at.is_some())
        .map(|c| (mac.clone(), c.password.clone()));
    let held = own.or_else(|| {
        (data.sync.generation == Some(history.current()) && !data.sync.last_refused)
            .then(|| {
                account
                    .device_user
                    .clone()
                    .zip(account.device_password.clone())
            })
            .flatten()
    });
    let pair = held.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
    let layers = data.layers_for(account, Access::Full, pair);
    let Some(view) = data.view(account, reach, None, &layers, pair) else {
        return Vec::new();
    };
    let desired = view.desired();
    provstate::pending(&desired, &data.state, pair)
        .into_iter()
        .filter(|(name, _)| {
            // A value given up after repeated deliveries is reported elsewhere, not retried.
            !data.state.get(*name).is_some_and(|s| s.gave_up)
        })
        .map(|(name, _)| name.to_string())
        .collect()
}

/// The software version the device will install on check-sync, if it differs from what it
/// reported running.
fn new_software(conn: &Connection, data: &DeviceData) -> Result<Option<String>> {
    let (Some(pid), Some(family)) = (data.device.profile_id, data.sync.family) else {
        return Ok(None);
    };
    let target: Option<String> = conn
        .prepare_cached(
            "SELECT version FROM profile_firmware WHERE profile_id = ?1 AND family = ?2",
        )?
        .query_row(rusqlite::params![pid, family.name()], |r| r.get(0))
        .optional()?;
    let Some(target) = target else {
        return Ok(None);
    };
    let running: String = conn
        .prepare_cached("SELECT firmware FROM device_activity WHERE device_id = ?1")?
        .query_row([data.device.id], |r| r.get(0))
        .optional()?
        .unwrap_or_default();
    if running.is_empty() || same_version(&running, &target) {
        return Ok(None);
    }
    // Only a device on another version needs the catalogue: does the release hold an
    // image its model would fetch (`data.model`, from its User-Agent)?
    let model = crate::domain::useragent::model_token("", &data.model);
    let image = crate::db::firmware::image_cover(conn)?.holds(&target, Some(family), &model);
    Ok(firmware_state(&running, Some(&target), image)
        .will_change()
        .then_some(target))
}

/// `Ok` when apply-now is on (`sip.enabled`), else the error naming the keys to set.
pub fn require_enabled(cfg: &SipConfig) -> Result<()> {
    if cfg.enabled {
        Ok(())
    } else {
        Err(Error::Conflict(
            "apply-now is off: set `sip.enabled = true` and `sip.networks` in the configuration"
                .into(),
        ))
    }
}

/// The phones apply-now on `sel` would restart, each with why (count, then confirm).
pub fn impact(
    conn: &Connection,
    actor: &Actor<'_>,
    cfg: &SipConfig,
    sel: &Selection,
) -> Result<super::Impact> {
    require_enabled(cfg)?;
    let planned = plan(conn, actor, cfg, select(conn, actor, sel)?)?;
    Ok(restart_impact(&planned))
}

fn restart_impact(planned: &[Planned]) -> super::Impact {
    super::Impact::of(
        planned
            .iter()
            .filter(|p| p.reachable() && !p.restarts.is_empty())
            .map(|p| {
                (
                    p.device.mac.to_string(),
                    format!("restarts: {}", p.restarts.join("; ")),
                )
            }),
    )
}

/// Sends check-sync to the devices of `sel` and reports. Without `confirm`, when any phone
/// would restart, nothing is sent: `Error::NeedsConfirmation` names them.
pub fn apply_now(
    conn: &mut Connection,
    actor: &Actor<'_>,
    cfg: &SipConfig,
    sel: &Selection,
    confirm: bool,
) -> Result<Report> {
    apply_now_watched(conn, actor, cfg, sel, confirm, &mut super::Unwatched)
}

/// `apply_now`, telling `watch` the devices gone through (those not sent at once, then each
/// wave's as it is sent) and, in the transaction of its audit entry, the outcome
/// (`Report::summary`). No write lock is held while the waves go out.
pub fn apply_now_watched(
    conn: &mut Connection,
    actor: &Actor<'_>,
    cfg: &SipConfig,
    sel: &Selection,
    confirm: bool,
    watch: &mut dyn super::Watch,
) -> Result<Report> {
    run(conn, actor, cfg, sel, Method::Notify, confirm, watch)
}

/// Sends `OPTIONS` to the devices of `sel` (is each reachable at its proven address) and
/// keeps each answer as online evidence. Changes nothing on the phones.
pub fn ping(
    conn: &mut Connection,
    actor: &Actor<'_>,
    cfg: &SipConfig,
    sel: &Selection,
) -> Result<Report> {
    run(
        conn,
        actor,
        cfg,
        sel,
        Method::Options,
        true,
        &mut super::Unwatched,
    )
}

fn run(
    conn: &mut Connection,
    actor: &Actor<'_>,
    cfg: &SipConfig,
    sel: &Selection,
    method: Method,
    confirm: bool,
    watch: &mut dyn super::Watch,
) -> Result<Report> {
    require_enabled(cfg)?;
    let started = Instant::now();
    let planned = plan(conn, actor, cfg, select(conn, actor, sel)?)?;
    let planned_in = started.elapsed();
    let notify = method == Method::Notify;
    // `OPTIONS` asks the phone itself whether it is reachable: never through the PBX.
    let mut planned = planned;
    if !notify {
        for p in &mut planned {
            p.via_pbx = false;
        }
    }
    let impact = restart_impact(&planned);
    if notify && impact.locked_out > 0 && !confirm {
        return Err(impact.ask(
            "apply now restarts phones",
            " (pending device.* changes or new software need a restart)",
        ));
    }
    let site_sizes = site_sizes(conn, actor.account.id.0)?;
    let sendable: Vec<usize> = (0..planned.len())
        .filter(|&i| planned[i].reachable())
        .collect();
    let waves = checksync::waves(
        &sendable
            .iter()
            .map(|&i| (planned[i].site, notify && !planned[i].restarts.is_empty()))
            .collect::<Vec<_>>(),
        &site_sizes,
        cfg.reboot_share_percent,
    );
    let wave_count = waves.iter().max().map_or(0, |w| w + 1);
    // Devices not sent are gone through at once; the others as their wave is sent.
    let total = planned.len();
    let mut done = total - sendable.len();
    watch.progress(done, total);
    let mut wave_of: HashMap<usize, usize> = HashMap::new();
    let mut outcomes: HashMap<usize, (Outcome, i64)> = HashMap::new();
    let sender = Sender::new(cfg.timers());
    for wave in 0..wave_count {
        if wave > 0 {
            std::thread::sleep(Duration::from_secs(cfg.wave_gap_secs));
        }
        let members: Vec<usize> = sendable
            .iter()
            .zip(&waves)
            .filter(|(_, w)| **w == wave)
            .map(|(i, _)| *i)
            .collect();
        let (pbx, members): (Vec<usize>, Vec<usize>) =
            members.into_iter().partition(|&i| planned[i].via_pbx);
        for &i in &pbx {
            let (run, at) = run_pbx_command(cfg, actor, &planned[i]);
            let outcome = match run.exit {
                Some(0) => Outcome::Answered {
                    status: 200,
                    reason: run.outcome().summary,
                    authenticated: false,
                    retransmissions: 0,
                },
                _ => Outcome::Failed(run.outcome().summary),
            };
            wave_of.insert(i, wave);
            outcomes.insert(i, (outcome, at));
            done = (done + 1).min(total);
            watch.progress(done, total);
            std::thread::sleep(Duration::from_secs(1) / cfg.rate_per_sec.max(1));
        }
        let jobs = members
            .iter()
            .map(|&i| {
                let p = &planned[i];
                Job {
                    spec: RequestSpec {
                        method,
                        target: p
                            .target
                            .as_ref()
                            .map(|(a, _)| *a)
                            .unwrap_or(([0, 0, 0, 0], 0).into()),
                        user: p.user.clone(),
                    },
                    creds: p.creds.clone(),
                }
            })
            .collect();
        for (i, out) in members.iter().zip(send_all(jobs, sender, cfg.rate_per_sec)) {
            wave_of.insert(*i, wave);
            outcomes.insert(*i, out);
        }
        done = (done + members.len()).min(total);
        watch.progress(done, total);
    }
    let sent_in = started.elapsed() - planned_in;
    record_answers(conn, &planned, &outcomes)?;
    let repolled = if notify {
        wait_for_repolls(conn, cfg, &planned, &outcomes)?
    } else {
        HashMap::new()
    };
    // Judge each change again from the state the phones' requests left.
    let after: HashMap<i64, Vec<String>> = {
        let answered: Vec<Device> = planned
            .iter()
            .enumerate()
            .filter(|(i, _)| repolled.get(i).copied().unwrap_or(false))
            .map(|(_, p)| p.device.clone())
            .collect();
        plan(conn, actor, cfg, answered)?
            .into_iter()
            .map(|p| (p.device.id, p.pending))
            .collect()
    };
    let mut report = Report {
        waves: wave_count,
        planned_ms: planned_in.as_millis() as u64,
        sent_ms: sent_in.as_millis() as u64,
        ..Report::default()
    };
    for (i, p) in planned.iter().enumerate() {
        let did_repoll = repolled.get(&i).copied().unwrap_or(false);
        let mut changes = vec![ChangeState {
            change: "configuration".into(),
            state: if did_repoll {
                "applied"
            } else {
                "waiting for next poll"
            },
        }];
        let still = after.get(&p.device.id);
        for name in &p.pending {
            let applied = did_repoll && still.is_some_and(|s| !s.contains(name));
            changes.push(ChangeState {
                change: name.clone(),
                state: if applied {
                    "applied"
                } else {
                    "waiting for next poll"
                },
            });
        }
        let (result, status, detail) = match (&p.target, outcomes.get(&i)) {
            _ if p.via_pbx => match outcomes.get(&i) {
                Some((o @ Outcome::Answered { reason, .. }, _)) if o.reached() => {
                    ("sent via PBX", None, reason.clone())
                }
                Some((Outcome::Failed(why), _)) => ("failed", None, why.clone()),
                _ => ("not sent", None, "not sent".to_string()),
            },
            (Err(why), _) => ("not sent", None, why.to_string()),
            (Ok(_), None) => ("not sent", None, "not sent".to_string()),
            (Ok(_), Some((o, _))) => match o {
                Outcome::Answered { status, reason, .. } => {
                    ("answered", Some(*status), reason.clone())
                }
                Outcome::Challenged { status, why } => ("challenged", Some(*status), why.clone()),
                Outcome::Unreachable { why, .. } => ("unreachable", None, why.clone()),
                Outcome::Failed(why) => ("failed", None, why.clone()),
            },
        };
        match result {
            "not sent" => report.not_sent += 1,
            "unreachable" => {
                report.sent += 1;
                report.unreachable += 1
            }
            "answered" | "challenged" => {
                report.sent += 1;
                report.answered += 1
            }
            "sent via PBX" => {
                report.sent += 1;
                report.via_pbx += 1
            }
            _ => report.sent += 1,
        }
        if notify && p.reachable() && !p.restarts.is_empty() {
            report.restarts += 1;
        }
        if did_repoll {
            report.repolled += 1;
        }
        report.devices.push(DeviceResult {
            mac: p.device.mac.to_string(),
            result,
            status,
            detail,
            target: if p.via_pbx {
                Some("PBX command".to_string())
            } else {
                p.target.as_ref().ok().map(|(a, _)| a.to_string())
            },
            origin: if p.via_pbx {
                Some("pbx")
            } else {
                p.target.as_ref().ok().map(|(_, o)| match o {
                    Origin::Proven => "proven",
                    Origin::Override => "admin",
                })
            },
            wave: wave_of.get(&i).copied(),
            restarts: if p.reachable() {
                p.restarts.clone()
            } else {
                Vec::new()
            },
            changes,
        });
    }
    log::info!(
        "{} {}: {} devices planned in {} ms, {} sent in {} ms",
        method.as_str(),
        sel.describe(),
        planned.len(),
        planned_in.as_millis(),
        report.sent,
        sent_in.as_millis()
    );
    if !notify {
        return Ok(report);
    }
    db::write_tx(conn, |tx| {
        watch.committing(tx, total, &report.summary())?;
        actor.record(
            tx,
            actor
                .change("device.apply-now", &sel.describe())
                .after(serde_json::json!({
                    "sent": report.sent,
                    "answered": report.answered,
                    "via_pbx": report.via_pbx,
                    "unreachable": report.unreachable,
                    "not_sent": report.not_sent,
                    "restarts": report.restarts,
                    "waves": report.waves,
                    "confirmed": confirm,
                    "devices": report.devices.iter().take(200).map(|d| serde_json::json!({
                        "mac": d.mac, "result": d.result, "status": d.status, "detail": d.detail
                    })).collect::<Vec<_>>(),
                })),
        )
    })?;
    log::info!(
        "apply-now {}: {} sent, {} answered, {} unreachable, {} not sent, {} restarting, {} re-polled",
        sel.describe(),
        report.sent,
        report.answered,
        report.unreachable,
        report.not_sent,
        report.restarts,
        report.repolled
    );
    Ok(report)
}

/// Runs `sip.pbx_command` for one device: `COMMAND MAC SIP_USER`, with the MAC, the
/// account and the line's SIP user in a clean environment (never a password). Returns the
/// run and when it started (ms), from which the device's re-poll counts.
fn run_pbx_command(
    cfg: &SipConfig,
    actor: &Actor<'_>,
    p: &Planned,
) -> (crate::external::script::ScriptRun, i64) {
    let at = db::now_ms();
    let mac = p.device.mac.to_string();
    let user = p.user.clone().unwrap_or_default();
    let run = crate::external::script::run_command(
        &cfg.pbx_command,
        &[mac.clone(), user.clone()],
        &[
            ("PROV_MAC", mac.clone()),
            ("PROV_TENANT", actor.account.slug.clone()),
            ("PROV_SIP_USER", user),
            ("PROV_EVENT", "check-sync".to_string()),
        ],
        None,
        Duration::from_secs(cfg.pbx_timeout_secs),
    );
    let outcome = run.outcome();
    if outcome.ok {
        log::info!("apply-now {mac} through the PBX: {}", outcome.summary);
    } else {
        log::warn!(
            "apply-now {mac} through the PBX failed: {}",
            outcome.summary
        );
    }
    (run, at)
}

/// How many associated phones each site of the account has (`None`: without a site).
fn site_sizes(conn: &Connection, account: i64) -> Result<HashMap<Option<i64>, usize>> {
    let mut stmt = conn.prepare_cached(
        "SELECT ds.site_id, count(*) FROM devices d LEFT JOIN device_sites ds ON ds.device_id = d.id
         WHERE d.account_id = ?1 AND d.profile_id IS NOT NULL GROUP BY ds.site_id",
    )?;
    let rows = stmt.query_map([account], |r| {
        Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, i64>(1)?))
    })?;
    let mut out = HashMap::new();
    for row in rows {
        let (site, n) = row?;
        out.insert(site, n as usize);
    }
    Ok(out)
}

/// Keeps each final answer as online evidence.
fn record_answers(
    conn: &mut Connection,
    planned: &[Planned],
    outcomes: &HashMap<usize, (Outcome, i64)>,
) -> Result<()> {
    db::write_tx(conn, |tx| {
        for (i, (o, at)) in outcomes {
            // The PBX accepting a request is not the phone answering.
            if planned[*i].via_pbx {
                continue;
            }
            if let Outcome::Answered { status, .. } | Outcome::Challenged { status, .. } = o {
                crate::db::sip::record_answer(tx, planned[*i].device.id, *status, *at / 1000)?;
            }
        }
        Ok(())
    })
}

/// Waits up to `sip.confirm_wait_secs` for the devices that answered to fetch their
/// configuration (their last configuration fetch at or after the send, both to the
/// millisecond: a fetch earlier in the same second is not a re-poll); returns which did.
fn wait_for_repolls(
    conn: &Connection,
    cfg: &SipConfig,
    planned: &[Planned],
    outcomes: &HashMap<usize, (Outcome, i64)>,
) -> Result<HashMap<usize, bool>> {
    let deadline = Instant::now() + Duration::from_secs(cfg.confirm_wait_secs);
    let mut done: HashMap<usize, bool> = HashMap::new();
    loop {
        let mut waiting = 0;
        for (i, (o, at)) in outcomes {
            if done.get(i) == Some(&true) {
                continue;
            }
            let synced: Option<i64> = conn
                .prepare_cached("SELECT last_sync_ms FROM device_activity WHERE device_id = ?1")?
                .query_row([planned[*i].device.id], |r| r.get(0))
                .optional()?
                .flatten();
            let yes = synced.is_some_and(|s| s >= *at);
            done.insert(*i, yes);
            if !yes && o.reached() {
                waiting += 1;
            }
        }
        if waiting == 0 || Instant::now() >= deadline {
            return Ok(done);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// What the account's "after a change that affects devices" setting did with one change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AfterChange {
    /// `applying now` (check-sync goes out in the background) or `waiting for next poll`.
    pub mode: &'static str,
    /// Devices sent check-sync in the background.
    pub sending: usize,
    /// Devices the change restarts: never sent automatically (they need the admin's
    /// count-and-confirm), so they wait for their next poll.
    pub restarting: Vec<String>,
    /// Why, for people.
    pub detail: String,
}

impl AfterChange {
    fn waiting(detail: impl Into<String>) -> AfterChange {
        AfterChange {
            mode: "waiting for next poll",
            detail: detail.into(),
            ..AfterChange::default()
        }
    }
}

/// Where the background sender opens its own database connection.
#[derive(Debug, Clone)]
pub struct DbAt {
    pub path: std::path::PathBuf,
    pub busy_timeout: Duration,
}

/// The devices of `sel` (a policy's target, a profile's devices) in `account`, for
/// `after_change`: the MACs of its associated devices.
pub fn affected_by_target(
    conn: &Connection,
    account: &crate::domain::account::Account,
    target: &crate::domain::policy::Target,
) -> Result<Vec<String>> {
    use crate::domain::policy::Target;
    Ok(match target {
        Target::Device(m) => vec![m.to_string()],
        Target::Group(name) => match policies::find_group(conn, account.id.0, name)? {
            Some(g) => policies::list_members(conn, g.id)?,
            None => Vec::new(),
        },
        Target::Site(name) => match policies::find_site(conn, account.id.0, name)? {
            Some(s) => policies::list_site_devices(conn, s.id)?,
            None => Vec::new(),
        },
        Target::Account => {
            let mut stmt = conn.prepare_cached(
                "SELECT mac FROM devices WHERE account_id = ?1 AND profile_id IS NOT NULL
                 ORDER BY mac",
            )?;
            let rows = stmt.query_map([account.id.0], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        }
    })
}

/// The associated devices of a profile.
pub fn affected_by_profile(conn: &Connection, profile_id: i64) -> Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT mac FROM devices WHERE profile_id = ?1 ORDER BY mac")?;
    let rows = stmt.query_map([profile_id], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// After a committed change that affects `macs`: with the account's setting "apply now"
/// (`Account::sip.apply_after_change`) and `sip.enabled`, plans here (the only part the
/// admin's request waits for) and sends check-sync in a background thread, at
/// `sip.rate_per_sec`, to the devices it does not restart. Phones the change restarts are
/// never sent automatically: they wait for their next poll (or an apply-now the admin
/// confirms), and the result names them. Never fails the change: a problem is the result's
/// detail. The returned thread is for callers that must outlive it (the CLI).
pub fn after_change(
    conn: &Connection,
    actor: &Actor<'_>,
    cfg: &SipConfig,
    db: &DbAt,
    macs: Vec<String>,
) -> (AfterChange, Option<std::thread::JoinHandle<()>>) {
    if !actor.account.sip.apply_after_change {
        return (
            AfterChange::waiting("the account applies changes at the next poll"),
            None,
        );
    }
    if !cfg.enabled {
        return (AfterChange::waiting("apply-now is off (sip.enabled)"), None);
    }
    if macs.is_empty() {
        return (
            AfterChange::waiting("no associated device is affected"),
            None,
        );
    }
    let planned = match select(conn, actor, &Selection::AfterChange(macs))
        .and_then(|list| plan(conn, actor, cfg, list))
    {
        Ok(p) => p,
        Err(e) => {
            log::warn!("apply after change: {e}");
            return (AfterChange::waiting(e.to_string()), None);
        }
    };
    let restarting: Vec<String> = planned
        .iter()
        .filter(|p| p.target.is_ok() && !p.restarts.is_empty())
        .map(|p| p.device.mac.to_string())
        .collect();
    let send: Vec<String> = planned
        .iter()
        .filter(|p| p.target.is_ok() && p.restarts.is_empty())
        .map(|p| p.device.mac.to_string())
        .collect();
    let not_sent = planned.len() - restarting.len() - send.len();
    let mut detail = format!("check-sync to {} device(s) in the background", send.len());
    if !restarting.is_empty() {
        detail.push_str(&format!(
            "; {} the change restarts wait for their next poll (apply now and confirm to send them)",
            restarting.len()
        ));
    }
    if not_sent > 0 {
        detail.push_str(&format!(
            "; {not_sent} cannot be reached (no proven address, outside sip.networks or no line)"
        ));
    }
    let out = AfterChange {
        mode: if send.is_empty() {
            "waiting for next poll"
        } else {
            "applying now"
        },
        sending: send.len(),
        restarting,
        detail,
    };
    if send.is_empty() {
        return (out, None);
    }
    let (user, account, own, who) = (
        actor.user.clone(),
        actor.account.clone(),
        actor.own.clone(),
        actor.who.clone(),
    );
    let (cfg, db, partial) = (cfg.clone(), db.clone(), actor.partial_expiry_secs);
    let handle = std::thread::Builder::new()
        .name("apply-after-change".into())
        .spawn(move || {
            let actor = Actor {
                user: &user,
                account: &account,
                own: &own,
                partial_expiry_secs: partial,
                who,
            };
            let result = crate::db::open(&db.path, db.busy_timeout).and_then(|mut conn| {
                // Without confirmation: a phone that now restarts (the state changed since
                // planning) stops the send rather than restarting unasked.
                run(
                    &mut conn,
                    &actor,
                    &cfg,
                    &Selection::AfterChange(send),
                    Method::Notify,
                    false,
                    &mut super::Unwatched,
                )
            });
            if let Err(e) = result {
                log::warn!("apply after change in {}: {e}", account.slug);
            }
        })
        .ok();
    (out, handle)
}

/// One round of the background online check: for every account with `Account::sip
/// .online_check` on, the associated devices with a proven address and no poll, no SIP
/// answer and no check within `sip.online_check_interval_secs` (oldest check first, at most
/// `sip.online_check_per_minute` over every account) are sent `OPTIONS` at
/// `sip.online_check_rate_per_sec` — through `ping`, so only to proven addresses inside
/// `sip.networks` — and each answer is kept as online evidence. Returns how many were
/// asked.
pub fn online_check_round(
    conn: &mut Connection,
    cfg: &SipConfig,
    own: &crate::domain::provserver::OwnAddresses,
) -> Result<usize> {
    if !cfg.enabled {
        return Ok(0);
    }
    let now = db::now_secs();
    let stale_before = now - cfg.online_check_interval_secs as i64;
    let mut budget = cfg.online_check_per_minute as usize;
    let mut asked = 0;
    let round_cfg = SipConfig {
        rate_per_sec: cfg.online_check_rate_per_sec.min(cfg.rate_per_sec).max(1),
        ..cfg.clone()
    };
    let user = super::operator("online check");
    for account in crate::db::accounts::list_accounts(conn)? {
        if !account.sip.online_check || budget == 0 {
            continue;
        }
        let macs: Vec<String> = {
            let mut stmt = conn.prepare_cached(
                "SELECT d.mac FROM devices d
                 JOIN device_sip s ON s.device_id = d.id
                 LEFT JOIN device_activity a ON a.device_id = d.id
                 WHERE d.account_id = ?1 AND d.profile_id IS NOT NULL
                   AND s.proven_ip IS NOT NULL
                   AND coalesce(a.last_seen, 0) < ?2 AND coalesce(s.answered_at, 0) < ?2
                   AND coalesce(s.online_checked_at, 0) < ?2
                 ORDER BY coalesce(s.online_checked_at, 0), d.mac LIMIT ?3",
            )?;
            let rows = stmt.query_map(
                rusqlite::params![account.id.0, stale_before, budget as i64],
                |r| r.get(0),
            )?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        if macs.is_empty() {
            continue;
        }
        budget -= macs.len();
        asked += macs.len();
        db::write_tx(conn, |tx| {
            for m in &macs {
                tx.prepare_cached(
                    "UPDATE device_sip SET online_checked_at = ?2
                     WHERE device_id = (SELECT id FROM devices WHERE mac = ?1)",
                )?
                .execute(rusqlite::params![m, now])?;
            }
            Ok(())
        })?;
        let actor = Actor {
            user: &user,
            account: &account,
            own,
            partial_expiry_secs: 0,
            who: crate::domain::audit::Actor::system(),
        };
        let report = ping(conn, &actor, &round_cfg, &Selection::AfterChange(macs))?;
        log::info!(
            "online check {}: {} asked, {} answered",
            account.slug,
            report.sent,
            report.answered
        );
    }
    Ok(asked)
}

/// Sets (or with `None` clears) the admin's fallback address of a device, used only while
/// no request of the device proved its address. Refused outside `sip.networks`.
pub fn set_override(
    conn: &mut Connection,
    actor: &Actor<'_>,
    cfg: &SipConfig,
    mac: &Mac,
    addr: Option<&str>,
) -> Result<()> {
    actor.user.require(Action::Associate)?;
    let device = Some(super::associations::device(conn, actor, mac)?)
        .filter(|d| d.account_id == actor.account.id.0)
        .ok_or_else(|| Error::not_found(format!("device {mac}")))?;
    let parsed = match addr.map(str::trim).filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => {
            let (ip, port) = match a.parse::<SocketAddr>() {
                Ok(sa) => (sa.ip(), Some(sa.port()).filter(|p| *p != 0)),
                Err(_) => (
                    a.parse::<std::net::IpAddr>().map_err(|_| {
                        Error::invalid("address", format!("`{a}` is not an IP address or IP:port"))
                    })?,
                    None,
                ),
            };
            if !crate::domain::ipnet::any_contains(&cfg.device_networks(), ip) {
                return Err(Error::invalid(
                    "address",
                    format!("{ip} is outside the configured device networks (sip.networks)"),
                ));
            }
            Some((ip, port))
        }
    };
    db::write_tx(conn, |tx| {
        crate::db::sip::set_override(tx, device.id, parsed)?;
        actor.record(
            tx,
            actor
                .change("device.sip-address", mac.as_str())
                .after(serde_json::json!({
                    "address": parsed.map(|(ip, port)| match port {
                        Some(p) => SocketAddr::new(ip, p).to_string(),
                        None => ip.to_string(),
                    }),
                })),
        )
    })
}
