//! The top of the device page: what an admin of many phones reads first — the device's
//! state in words (association, enrolment, values delivered and never confirmed, Auto-Sync
//! credentials), its site and groups with a link to change them, its lines (never a SIP
//! password: only whether one is set) and every action on it as one row. Built from
//! `actions::standing`; nothing here queries or writes.

use maud::{Markup, html};

use super::super::{Ctx, percent_encode};
use crate::actions::enrolment::State as Enrolment;
use crate::actions::standing::Standing;
use crate::domain::autosync::{OWN_CREDENTIAL, SyncState};
use crate::domain::device::Device;
use crate::domain::mac::Mac;
use crate::domain::users::Action;
use crate::http::admin::views::csrf_field;

/// What the summary shows besides the device and its standing.
pub struct Extras<'a> {
    /// The state of docs/design.md §7 (`unassociated`, `staged`, …).
    pub state: &'static str,
    /// The device has stored override files (clearing them is offered).
    pub has_overrides: bool,
    /// Apply now (SIP check-sync) is on.
    pub sip: bool,
    pub ctx: &'a Ctx,
}

fn state_words(state: &str) -> &'static str {
    match state {
        "unassociated" => "seen, not associated with a profile",
        "staged" => "associated, never provisioned yet",
        "provisioned-active" => "provisioned, seen in the last 24 hours",
        _ => "provisioned, not seen for more than a day",
    }
}

fn enrolment_words(s: Enrolment) -> &'static str {
    match s {
        Enrolment::Waiting => "waiting to enrol",
        Enrolment::Contested => "contested: another client claimed it; needs re-enrolment",
        Enrolment::Delivered => "its own credential was sent, not used yet",
        s => s.label(),
    }
}

fn credentials_words(s: &SyncState) -> Markup {
    html! {
        @match s {
            SyncState::Synced { generation } if *generation == OWN_CREDENTIAL => { "current: its own credential" }
            SyncState::Synced { generation } => { "current (generation " (generation) ")" }
            SyncState::Pending { generation } => { "pending: holds generation " (generation) ", takes the current one at its next poll" }
            SyncState::LockedOut { generation, why } => { strong { "locked out" } ": generation " (generation) " is refused — " (why.explain()) }
            SyncState::NeverSeen { .. } => { "never seen: no request with the account's credentials yet" }
        }
    }
}

/// The summary section of the device page.
pub fn summary(d: &Device, st: &Standing, x: &Extras<'_>) -> Markup {
    let mac: &Mac = &d.mac;
    let ctx = x.ctx;
    let base = format!("/accounts/{}", st.account.slug);
    let may_associate = ctx.user.require(Action::Associate).is_ok();
    let may_clear = ctx.user.require(Action::ManageAssets).is_ok();
    html! {
        section.summary aria-label="summary" {
            table.kv {
                tr { th { "State" } td { strong { (x.state) } " — " (state_words(x.state)) } }
                @if let Some(e) = &st.enrolment {
                    tr { th { "Enrolment" } td {
                        @if e.state == Enrolment::Contested { strong { (enrolment_words(e.state)) } } @else { (enrolment_words(e.state)) }
                        @if let Some(w) = &e.window { " · window " (w) }
                        " · " a href=(format!("{base}/enrolment")) { "Enrolment" }
                    } }
                }
                @if !st.unconfirmed.is_empty() {
                    tr { th { "Delivered, never confirmed" } td {
                        @for (i, p) in st.unconfirmed.iter().enumerate() {
                            @if i > 0 { ", " }
                            code { (p) }
                            @if st.given_up.contains(p) { " (given up: no longer sent)" }
                        }
                        span.hint { " Sent to the phone; no request of it has shown the value applied since." }
                    } }
                }
                @if let Some(s) = &st.credentials {
                    tr { th { "Auto-Sync credentials" } td {
                        (credentials_words(s)) " · " a href=(format!("{base}/autosync")) { "Auto-Sync progress" }
                    } }
                }
                tr { th { "Site" } td {
                    @if let Some(s) = &st.site { a href=(format!("{base}/sites/{}", percent_encode(s))) { (s) } } @else { span.muted { "(none)" } }
                } }
                tr { th { "Groups" } td {
                    @if st.groups.is_empty() { span.muted { "(none)" } }
                    @for (i, g) in st.groups.iter().enumerate() {
                        @if i > 0 { ", " }
                        a href=(format!("{base}/groups/{}", percent_encode(g))) { (g) }
                    }
                    @if d.is_associated() {
                        " · " a href=(format!("/devices/{mac}/settings#site-groups")) { "Change site and groups" }
                    }
                } }
            }
            @if d.lines.is_empty() {
                p.muted { "No SIP lines." }
            } @else {
                table.list.lines {
                    thead { tr { th.num { "Line" } th { "User" } th { "Display name" } th { "Label" } th { "SIP user ID" } th { "SIP password" } } }
                    tbody {
                        @for l in &d.lines {
                            @let user = format!("{} {}", l.first_name, l.last_name);
                            tr {
                                td.num { (l.line) }
                                td { (dash(user.trim())) @if !l.extension.is_empty() { " · ext. " (l.extension) } }
                                td { (dash(&l.display_name)) }
                                td { (dash(&l.label)) }
                                td { (dash(&l.auth_user_id)) }
                                td { (if l.auth_password.is_empty() { "(none)" } else { "(set)" }) }
                            }
                        }
                    }
                }
            }
            p.ops {
                @if d.is_associated() {
                    a.button.secondary href=(format!("/devices/{mac}/settings")) { "Effective settings" } " "
                }
                @if may_associate {
                    @if d.is_associated() {
                        a.button href=(format!("/devices/{mac}/edit")) { "Modify" } " "
                        a.button.secondary href=(format!("/devices/{mac}/values")) { "Template values" } " "
                        @if x.sip {
                            a.button.secondary href=(format!("/devices/{mac}/apply-now")) { "Apply now" } " "
                        }
                        a.button.secondary href=(format!("/devices/{mac}/replace")) { "Change (replace device)" } " "
                        a.button.secondary href=(format!("/devices/{mac}/copy")) { "Copy" } " "
                    } @else {
                        a.button href=(format!("/devices/new?mac={mac}")) { "Associate" } " "
                    }
                }
                @if may_clear && x.has_overrides {
                    form.inline method="post" action=(format!("/devices/{mac}/overrides/clear")) {
                        (csrf_field(&ctx.csrf))
                        button.secondary type="submit" { "Clear overrides" }
                    }
                    " "
                }
                @if may_associate {
                    a.button.danger href=(format!("/devices/{mac}/delete")) { "Delete" }
                }
            }
        }
    }
}

fn dash(s: &str) -> &str {
    if s.is_empty() { "--" } else { s }
}
